//! The fault harness: the workers as restartable units (two senders, three group members,
//! the plain consumer) and a seeded random schedule of faults against them, their database
//! sessions and EventoDB.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use eventodb_kit::outbox::{Sender, SenderOptions};
use eventodb_kit::{Kit, RunningWorkers};
use eventodb_kit_testkit::TestServer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::Postgres;
use tokio::time::Instant;

use crate::consumers::{self, Effects, GROUP, Seen};
use crate::pg_schema;

/// Faults injected, by kind.
pub(crate) type Counts = BTreeMap<&'static str, u64>;

/// What a unit runs.
enum Running {
    Sender(Sender),
    Workers(RunningWorkers),
}

/// Which worker a unit is.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Sender(usize),
    Member(i64),
    Audit,
}

/// One restartable worker.
struct Unit {
    kind: Kind,
    running: Option<Running>,
    /// When a stopped unit starts again.
    up_at: Instant,
}

/// The workers and the server under fault.
pub(crate) struct Harness {
    /// The workers' kit: its pool's sessions carry `sessions.name`.
    kit: Kit<Postgres>,
    sessions: Sessions,
    server: Arc<TestServer>,
    seen: Seen,
    units: Vec<Unit>,
    rng: StdRng,
    pub(crate) counts: Counts,
    /// The workers' database sessions ended by `db_sessions_end` faults.
    pub(crate) sessions_ended: u64,
    /// Why workers stopped by themselves (not by the harness).
    pub(crate) worker_failures: Vec<String>,
    paused_until: Option<Instant>,
    latency_until: Option<Instant>,
    /// When the workers' database comes back.
    db_down_until: Option<Instant>,
}

/// The senders' options. The lease is short (a killed sender's streams wait for it) but not
/// too short: a stream task renews its lease, one UPDATE of every row it holds, whenever
/// half of it has passed, and with a 2 s lease those renewals (and their waits for the rows'
/// locks) were over half of PostgreSQL's work in a 50,000-event run.
fn sender_options(slot: usize) -> SenderOptions {
    SenderOptions::default()
        .worker_id(format!(
            "soak-sender-{slot}-{}",
            uuid::Uuid::new_v4().simple()
        ))
        .lease(Duration::from_secs(5))
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(500))
        .poll_interval(Duration::from_millis(250))
        .concurrency(16)
        .verification(Duration::from_secs(2), Duration::from_secs(1))
        .shutdown_timeout(Duration::from_secs(10))
}

/// The workers' database sessions, which faults end or cut off (as a PostgreSQL restart,
/// failover or crash does).
pub(crate) struct Sessions {
    /// A pool whose sessions are never ended (the writers' and the checks').
    pub(crate) admin: sqlx::PgPool,
    /// The `application_name` of the workers' sessions.
    pub(crate) name: String,
    /// The proxy the workers reach PostgreSQL through.
    pub(crate) proxy: pg_schema::DbProxy,
}

impl Harness {
    pub(crate) fn new(
        kit: Kit<Postgres>,
        sessions: Sessions,
        server: Arc<TestServer>,
        seen: Seen,
        seed: u64,
    ) -> Self {
        let mut units = vec![
            Unit::new(Kind::Sender(0)),
            Unit::new(Kind::Sender(1)),
            Unit::new(Kind::Audit),
        ];
        units.extend((0..GROUP).map(|k| Unit::new(Kind::Member(k))));
        Self {
            kit,
            sessions,
            server,
            seen,
            units,
            rng: StdRng::seed_from_u64(seed),
            counts: Counts::new(),
            sessions_ended: 0,
            worker_failures: Vec::new(),
            paused_until: None,
            latency_until: None,
            db_down_until: None,
        }
    }

    fn count(&mut self, kind: &'static str) {
        *self.counts.entry(kind).or_default() += 1;
    }

    /// Starts every unit that is down and due, and replaces units that stopped by themselves.
    pub(crate) async fn supervise(&mut self, force: bool) {
        let now = Instant::now();
        for i in 0..self.units.len() {
            if let Some(message) = self.units[i].stopped_by_itself() {
                self.worker_failures
                    .push(format!("{:?}: {message}", self.units[i].kind));
                self.units[i].running = None;
            }
            let unit = &self.units[i];
            if unit.running.is_none() && (force || unit.up_at <= now) {
                match start(&self.kit, &self.seen, unit.kind).await {
                    Ok(running) => self.units[i].running = Some(running),
                    Err(error) => {
                        self.worker_failures
                            .push(format!("{:?} did not start: {error}", unit.kind));
                        self.units[i].up_at = now + Duration::from_millis(200);
                    }
                }
            }
        }
    }

    /// One random fault.
    pub(crate) async fn inject(&mut self) {
        let now = Instant::now();
        if self.paused_until.is_some_and(|t| t <= now) {
            self.server.resume().await.expect("resume EventoDB");
            self.paused_until = None;
        }
        if self.latency_until.is_some_and(|t| t <= now) {
            self.server.faults().latency(Duration::ZERO);
            self.latency_until = None;
        }
        if self.db_down_until.is_some_and(|t| t <= now) {
            self.sessions.proxy.come_up();
            self.db_down_until = None;
        }
        let faults = self.server.faults();
        match self.rng.random_range(0..100) {
            0..=17 => self.stop_unit().await,
            18..=21 if self.paused_until.is_none() => {
                self.server.restart().await.expect("restart EventoDB");
                self.count("eventodb_restart");
            }
            22..=24 if self.paused_until.is_none() => {
                self.server.pause().await;
                let down = self.rng.random_range(100..1500);
                self.paused_until = Some(now + Duration::from_millis(down));
                self.count("eventodb_down");
            }
            25..=39 => {
                faults.fail_next(self.rng.random_range(1..=5));
                self.count("fail_next");
            }
            40..=54 => {
                faults.fail_after_apply(self.rng.random_range(1..=3));
                self.count("fail_after_apply");
            }
            55..=69 => {
                faults.drop_after_apply(self.rng.random_range(1..=3));
                self.count("drop_after_apply");
            }
            70..=77 => {
                let latency = Duration::from_millis(self.rng.random_range(1..=80));
                faults.latency(latency);
                let lasting = self.rng.random_range(200..3000);
                self.latency_until = Some(now + Duration::from_millis(lasting));
                self.count("latency");
            }
            78..=87 => {
                faults.drop_sse_connections();
                self.count("drop_sse");
            }
            88..=93 => {
                let ended =
                    pg_schema::end_sessions(&self.sessions.admin, &self.sessions.name).await;
                self.count("db_sessions_end");
                self.sessions_ended += ended;
            }
            94..=96 if self.db_down_until.is_none() => {
                self.sessions.proxy.go_down();
                let down = self.rng.random_range(200..2000);
                self.db_down_until = Some(now + Duration::from_millis(down));
                self.count("db_down");
            }
            _ => {}
        }
    }

    /// Stops a random running unit: aborted, dropped or shut down gracefully.
    async fn stop_unit(&mut self) {
        let i = self.rng.random_range(0..self.units.len());
        let how = self.rng.random_range(0..3);
        let down = Duration::from_millis(self.rng.random_range(0..2000));
        let Some(running) = self.units[i].running.take() else {
            return;
        };
        self.units[i].up_at = Instant::now() + down;
        let sender = matches!(running, Running::Sender(_));
        let kind = match (how, running) {
            (0, Running::Sender(sender)) => {
                sender.kill();
                "abort"
            }
            (0, Running::Workers(workers)) => {
                workers.kill();
                "abort"
            }
            (1, running) => {
                drop(running);
                "drop"
            }
            (_, Running::Sender(sender)) => {
                if let Err(error) = sender.shutdown().await {
                    self.worker_failures
                        .push(format!("sender shutdown: {error}"));
                }
                "shutdown"
            }
            (_, Running::Workers(workers)) => {
                if let Err(error) = workers.shutdown().await {
                    self.worker_failures
                        .push(format!("consumer shutdown: {error}"));
                }
                "shutdown"
            }
        };
        self.count(match (sender, kind) {
            (true, "abort") => "sender_abort",
            (true, "drop") => "sender_drop",
            (true, _) => "sender_shutdown",
            (false, "abort") => "consumer_abort",
            (false, "drop") => "consumer_drop",
            (false, _) => "consumer_shutdown",
        });
    }

    /// Turns every fault off and brings EventoDB and every unit up.
    pub(crate) async fn calm(&mut self) {
        self.server.faults().clear();
        if self.paused_until.take().is_some() {
            self.server.resume().await.expect("resume EventoDB");
        }
        if self.db_down_until.take().is_some() {
            self.sessions.proxy.come_up();
        }
        self.supervise(true).await;
    }

    /// Shuts every unit down gracefully.
    pub(crate) async fn shutdown(&mut self) {
        for unit in &mut self.units {
            match unit.running.take() {
                Some(Running::Sender(sender)) => {
                    if let Err(error) = sender.shutdown().await {
                        self.worker_failures
                            .push(format!("final sender shutdown: {error}"));
                    }
                }
                Some(Running::Workers(workers)) => {
                    if let Err(error) = workers.shutdown().await {
                        self.worker_failures
                            .push(format!("final consumer shutdown: {error}"));
                    }
                }
                None => {}
            }
        }
    }

    /// The handles of the running consumers.
    pub(crate) fn consumer_positions(&self) -> Vec<(String, i64)> {
        self.units
            .iter()
            .filter_map(|unit| match &unit.running {
                Some(Running::Workers(workers)) => Some(workers.consumers()),
                _ => None,
            })
            .flatten()
            .map(|handle| {
                (
                    format!("{}{:?}", handle.name(), handle.group()),
                    handle.position(),
                )
            })
            .collect()
    }
}

impl Unit {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            running: None,
            up_at: Instant::now(),
        }
    }

    /// Why the unit stopped on its own, if it did.
    fn stopped_by_itself(&self) -> Option<String> {
        match &self.running {
            Some(Running::Sender(sender)) if sender.is_finished() => {
                Some("the sender task ended".into())
            }
            Some(Running::Workers(workers)) => workers
                .consumers()
                .iter()
                .find(|handle| !handle.is_running())
                .map(|handle| {
                    handle
                        .failure()
                        .unwrap_or_else(|| "the consumer task ended".into())
                }),
            _ => None,
        }
    }
}

async fn start(kit: &Kit<Postgres>, seen: &Seen, kind: Kind) -> eventodb_kit::Result<Running> {
    Ok(match kind {
        Kind::Sender(slot) => {
            Running::Sender(kit.outbox().spawn_sender(sender_options(slot)).await?)
        }
        Kind::Member(member) => Running::Workers(
            kit.workers()
                .consumer(Effects { member }, consumers::effects_options(member))
                .shutdown_timeout(Duration::from_secs(10))
                .spawn()
                .await?,
        ),
        Kind::Audit => Running::Workers(
            kit.workers()
                .consumer(consumers::audit(seen), consumers::audit_options())
                .shutdown_timeout(Duration::from_secs(10))
                .spawn()
                .await?,
        ),
    })
}
