//! Consumer scenarios, written once and run on SQLite (`consumer_sqlite.rs`) and PostgreSQL
//! (`consumer_postgres.rs`). Each scenario gets a fresh database (file or schema) and its own
//! embedded EventoDB server, or a fresh namespace on the real EventoDB at `EVENTODB_URL`
//! (scenarios that need fault injection skip there, with a printed reason).

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventodb_kit::client::{
    CategoryMessage, GetCategoryOptions, MessageId, NewMessage, WriteOptions, WritePosition,
};
use eventodb_kit::consumer::{
    BoxFuture, Consumer, ConsumerAdmin, ConsumerOptions, Context, FailurePolicy, Handled,
    HandlerError, HubOptions, MemberState, RetryPolicy, consumer_fn,
};
use eventodb_kit::outbox::{RawMessage, SenderOptions};
use eventodb_kit::{Backend, Error, Kit, RunningWorkers};
use serde_json::json;
use sqlx::Pool;
use uuid::Uuid;

pub(crate) use crate::eventodb_env::Env;

/// Generates one `#[tokio::test]` per scenario, each with a fresh pool from `$fresh`.
#[macro_export]
macro_rules! consumer_scenarios {
    ($fresh:path, $cleanup:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                consumer_scenarios::init_tracing();
                let Some(db) = $fresh().await else { return };
                consumer_scenarios::$name(db.pool.clone()).await;
                $cleanup(db).await;
            }
        )*
    };
}

/// What a scenario needs of its database beyond the kit: a table for handler effects.
pub(crate) trait Db: Backend {
    /// Creates `consumer_effects (event_id, stream)`.
    fn create_effects(pool: &Pool<Self>) -> impl Future<Output = ()> + Send;
    /// Inserts one effect row on `conn` (the handler's transaction).
    fn insert_effect(
        conn: &mut Self::Connection,
        event_id: &str,
        stream: &str,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Effect rows per event id.
    fn effect_counts(pool: &Pool<Self>) -> impl Future<Output = HashMap<String, i64>> + Send;
    /// Effect rows as `conn` sees them (its transaction's own rows included).
    fn effects_seen_by(
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<i64, sqlx::Error>> + Send;
    /// Marks `stream` released in the consumer tables with SQL, as another process (the CLI)
    /// does: nothing in this process hears of it.
    fn release_elsewhere(pool: &Pool<Self>, stream: &str) -> impl Future<Output = ()> + Send;
    /// Gives every consumer member row to `owner` for an hour with SQL, as a takeover by an
    /// instance elsewhere does (a change of owner counts as a reset), or frees every row
    /// (`None`), as that instance's shutdown does.
    fn hand_members_to(pool: &Pool<Self>, owner: Option<&str>) -> impl Future<Output = ()> + Send;
    /// Runs a statement that fails, on `conn` (on PostgreSQL, its transaction is then
    /// aborted).
    fn fail_a_statement(
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Makes every insert of a processed batch fail (a trigger raises), or lets them through
    /// again: saves that record processed events fail, heartbeats and the rest go on.
    fn block_processed_batches(pool: &Pool<Self>, blocked: bool)
    -> impl Future<Output = ()> + Send;
    /// The event ids the processed batches record, every consumer's.
    fn processed_batch_ids(pool: &Pool<Self>) -> impl Future<Output = Vec<String>> + Send;
    /// Creates `test_parents (id)` and `test_children (parent)`, whose foreign key is
    /// checked at the commit (`DEFERRABLE INITIALLY DEFERRED`).
    fn create_deferred_foreign_key(pool: &Pool<Self>) -> impl Future<Output = ()> + Send;
    /// Inserts a child of no parent on `conn`: accepted now, refused at the commit.
    fn insert_orphan(
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// `test_parents (id)` and `test_children (parent)`, whose foreign key is checked at the
/// commit: the same SQL on both databases.
pub(crate) const DEFERRED_FOREIGN_KEY: &str = "CREATE TABLE test_parents (id BIGINT PRIMARY KEY);
CREATE TABLE test_children (parent BIGINT NOT NULL
    REFERENCES test_parents (id) DEFERRABLE INITIALLY DEFERRED);";

/// A child of no parent (see [`DEFERRED_FOREIGN_KEY`]).
pub(crate) const INSERT_ORPHAN: &str = "INSERT INTO test_children (parent) VALUES (42)";

/// Logs to the test output when `RUST_LOG` is set.
pub(crate) fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

const LONG: Duration = Duration::from_secs(30);

/// What the consumer scenarios add to the shared EventoDB environment.
impl Env {
    /// Writes one message and returns where it landed.
    pub(crate) async fn write(
        &self,
        stream: &str,
        message_type: &str,
        n: i64,
    ) -> (Uuid, WritePosition) {
        let id = Uuid::now_v7();
        let position = self
            .client
            .stream_write(
                stream,
                &NewMessage::new(message_type, json!({ "n": n })),
                &WriteOptions::new().id(id),
            )
            .await
            .expect("stream.write");
        (id, position)
    }
}

/// Polls `check` until it returns `true`, or panics with `what` after `timeout`.
pub(crate) async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The UUID of a message these scenarios wrote (they write UUIDs only; a foreign id here
/// is a bug in the scenario).
pub(crate) fn uuid_of(id: &MessageId) -> Uuid {
    id.as_uuid()
        .unwrap_or_else(|| panic!("{id} was not written by a scenario"))
}

/// What the recorders saw: (tag, message), in handling order.
#[derive(Clone, Default)]
pub(crate) struct Log(Arc<Mutex<Vec<(String, CategoryMessage)>>>);

impl Log {
    pub(crate) fn ids(&self) -> Vec<Uuid> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, m)| uuid_of(&m.id))
            .collect()
    }
    pub(crate) fn ids_of(&self, tag: &str) -> Vec<Uuid> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t == tag)
            .map(|(_, m)| uuid_of(&m.id))
            .collect()
    }
    pub(crate) fn ids_in_stream(&self, stream: &str) -> Vec<Uuid> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, m)| m.stream_name == stream)
            .map(|(_, m)| uuid_of(&m.id))
            .collect()
    }
    pub(crate) fn counts(&self) -> HashMap<Uuid, usize> {
        let mut counts = HashMap::new();
        for id in self.ids() {
            *counts.entry(id).or_insert(0) += 1;
        }
        counts
    }
    /// The ids handled, as the server returned them.
    pub(crate) fn id_texts(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, m)| m.id.to_string())
            .collect()
    }
    pub(crate) fn contains(&self, id: Uuid) -> bool {
        self.ids().contains(&id)
    }
    /// The global position of the last message handled.
    pub(crate) fn last_global_position(&self) -> Option<i64> {
        self.0
            .lock()
            .unwrap()
            .last()
            .map(|(_, m)| m.global_position)
    }
}

/// A consumer that records what it handles; message types in `failing` fail, types in
/// `unknown` have no handler; with `effects` it writes a row in its transaction.
#[derive(Clone)]
pub(crate) struct Recorder {
    category: String,
    tag: String,
    log: Log,
    failing: Arc<Mutex<HashSet<String>>>,
    flaky: HashSet<String>,
    unknown: HashSet<String>,
    failures: Arc<AtomicU32>,
    delay: Duration,
    effects: bool,
}

impl Recorder {
    pub(crate) fn new(category: &str, tag: &str, log: &Log) -> Self {
        Self {
            category: category.into(),
            tag: tag.into(),
            log: log.clone(),
            failing: Arc::default(),
            flaky: HashSet::new(),
            unknown: HashSet::new(),
            failures: Arc::default(),
            delay: Duration::ZERO,
            effects: false,
        }
    }
    pub(crate) fn failing(self, message_type: &str) -> Self {
        self.failing.lock().unwrap().insert(message_type.into());
        self
    }
    /// Messages of this type fail on their first try (after writing their effect).
    pub(crate) fn flaky(mut self, message_type: &str) -> Self {
        self.flaky.insert(message_type.into());
        self
    }
    pub(crate) fn heal(&self) {
        self.failing.lock().unwrap().clear();
    }
    pub(crate) fn unknown(mut self, message_type: &str) -> Self {
        self.unknown.insert(message_type.into());
        self
    }
    pub(crate) fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
    pub(crate) fn effects(mut self) -> Self {
        self.effects = true;
        self
    }
    pub(crate) fn failures(&self) -> u32 {
        self.failures.load(Ordering::SeqCst)
    }
}

impl<DB: Db> Consumer<DB> for Recorder {
    fn category(&self) -> &str {
        &self.category
    }

    fn handle<'a>(
        &'a self,
        message: &'a CategoryMessage,
        ctx: &'a mut Context<'_, DB>,
    ) -> BoxFuture<'a, Result<Handled, HandlerError>> {
        Box::pin(async move {
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            if self.unknown.contains(&message.message_type) {
                return Ok(Handled::Unknown);
            }
            if self.failing.lock().unwrap().contains(&message.message_type) {
                self.failures.fetch_add(1, Ordering::SeqCst);
                return Err(HandlerError::new(format!("poison {}", message.id)));
            }
            if self.effects {
                insert_effect(ctx, message).await?;
            }
            if ctx.attempt() == 1 && self.flaky.contains(&message.message_type) {
                self.failures.fetch_add(1, Ordering::SeqCst);
                return Err(HandlerError::new(format!("flaky {}", message.id)));
            }
            self.log
                .0
                .lock()
                .unwrap()
                .push((self.tag.clone(), message.clone()));
            Ok(Handled::Done)
        })
    }
}

/// Writes the effect row of `message` in the handler's transaction.
async fn insert_effect<DB: Db>(
    ctx: &mut Context<'_, DB>,
    message: &CategoryMessage,
) -> Result<(), HandlerError> {
    DB::insert_effect(
        ctx.transaction()?,
        message.id.as_str(),
        &message.stream_name,
    )
    .await?;
    Ok(())
}

/// For a consumer the test kills as a crash would: the one started after it takes the
/// member over a second after the kill (the dead one's heartbeats stop), not 30 s.
fn crashable(options: ConsumerOptions) -> ConsumerOptions {
    options
        .poll_interval(Duration::from_millis(250))
        .takeover_after(Duration::from_secs(1))
}

/// Runs `consumer` with the stop policy and quick retries until it reports a failure (a
/// failure retried for good times out here).
async fn stopped_by<DB: Db, C: Consumer<DB>>(
    kit: &Kit<DB>,
    consumer: C,
    options: ConsumerOptions,
) -> (RunningWorkers, Error) {
    let options = options
        .failure_policy(FailurePolicy::Stop)
        .retry(fast_retry());
    first_failure(kit, consumer, options, "a failure reported").await
}

/// Runs `consumer` alone until it reports a failure; panics with `what` if none comes.
async fn first_failure<DB: Db, C: Consumer<DB>>(
    kit: &Kit<DB>,
    consumer: C,
    options: ConsumerOptions,
    what: &str,
) -> (RunningWorkers, Error) {
    let mut workers = kit
        .workers()
        .consumer(consumer, options)
        .spawn()
        .await
        .expect("spawn");
    let failure = tokio::time::timeout(LONG, workers.next_failure())
        .await
        .expect(what)
        .expect("an error");
    (workers, failure)
}

/// Starts `consumer` alone and waits until it has dealt with `global_position`.
async fn running_until<DB: Db, C: Consumer<DB>>(
    kit: &Kit<DB>,
    consumer: C,
    options: ConsumerOptions,
    global_position: i64,
) -> RunningWorkers {
    let workers = kit
        .workers()
        .consumer(consumer, options)
        .spawn()
        .await
        .expect("spawn");
    workers.consumers()[0]
        .wait_for(global_position, LONG)
        .await
        .unwrap();
    workers
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy::new(3, Duration::from_millis(1), Duration::from_millis(5))
}

/// The ids of a consumer's parked events, oldest first.
async fn parked_ids<DB: Db>(admin: &ConsumerAdmin<DB>, category: &str, name: &str) -> Vec<Uuid> {
    admin
        .parked(category, name)
        .await
        .unwrap()
        .iter()
        .map(|e| uuid_of(&e.id))
        .collect()
}

/// Waits until a consumer has no parked stream left.
async fn unparked<DB: Db>(admin: &ConsumerAdmin<DB>, category: &str, name: &str) {
    eventually("the stream is unparked", LONG, || async {
        admin
            .parked_streams(category, name)
            .await
            .unwrap()
            .is_empty()
    })
    .await;
}

/// Waits until every consumer of `workers` has dealt with `last`.
async fn caught_up(workers: &RunningWorkers, last: i64) {
    for handle in workers.consumers() {
        handle.wait_for(last, LONG).await.expect("caught up");
    }
}

/// The ids the server gives member `k` of a group of `size` (up to 10000 events).
async fn server_share(env: &Env, category: &str, k: i64, size: i64) -> HashSet<Uuid> {
    env.client
        .category_get(
            category,
            &GetCategoryOptions::new()
                .position(1)
                .batch_size(10_000)
                .consumer_group(k, size),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|m| uuid_of(&m.id))
        .collect()
}

/// Member `k` of a group, tagged `m<k>`.
fn member(name: &str, k: i64, size: i64) -> ConsumerOptions {
    ConsumerOptions::new(name).group(k, size).batch_size(7)
}

// ---------------------------------------------------------------- scenarios

/// A consumer killed mid-batch and restarted handles every event; a transactional
/// handler's effects happen exactly once.
pub(crate) async fn killed_mid_batch_resumes_exactly_once<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    DB::create_effects(&pool).await;
    let mut ids = Vec::new();
    let mut last = 0;
    for i in 0..60 {
        let (id, at) = env.write(&format!("order-{}", i % 7), "Placed", i).await;
        ids.push(id);
        last = at.global_position;
    }
    let log = Log::default();
    let start = |log: &Log| {
        kit.workers()
            .consumer(
                Recorder::new("order", "projector", log)
                    .effects()
                    .delay(Duration::from_millis(3)),
                crashable(ConsumerOptions::new("projector"))
                    .batch_size(25)
                    .transactional(true),
            )
            .consumer(
                Recorder::new("order", "audit", log).delay(Duration::from_millis(3)),
                crashable(ConsumerOptions::new("audit"))
                    .batch_size(25)
                    .position_update_interval(10),
            )
            .spawn()
    };
    let workers = start(&log).await.expect("spawn");
    let projector = workers.consumer("projector").unwrap().clone();
    eventually("the projector is midway", LONG, || async {
        projector.position() >= 20
    })
    .await;
    assert!(projector.position() < last, "killed before the end");
    workers.kill();

    let workers = start(&log).await.expect("spawn again");
    for handle in workers.consumers() {
        handle.wait_for(last, LONG).await.expect("caught up");
    }
    workers.shutdown().await.expect("shutdown");

    let effects = DB::effect_counts(&pool).await;
    assert_eq!(effects.len(), ids.len(), "every event has an effect");
    for id in &ids {
        assert_eq!(
            effects.get(&id.to_string()),
            Some(&1),
            "event {id}: exactly one effect"
        );
    }
    let audited: HashSet<Uuid> = log.ids_of("audit").into_iter().collect();
    assert_eq!(
        audited,
        ids.iter().copied().collect::<HashSet<_>>(),
        "audit saw every event"
    );
    let admin = ConsumerAdmin::for_kit(&kit);
    for name in ["projector", "audit"] {
        let positions = admin.positions("order", name).await.unwrap();
        assert_eq!(positions.len(), 1);
        assert_eq!(
            positions[0].global_position, last,
            "{name} saved its position"
        );
    }
}

/// Three members together handle each event exactly once, each exactly the server's share.
pub(crate) async fn group_of_three_matches_the_server_partition<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let mut ids = Vec::new();
    let mut last = 0;
    for round in 0..2 {
        for i in 0..30 {
            let (id, at) = env.write(&format!("account-{i}"), "Deposited", round).await;
            ids.push(id);
            last = at.global_position;
        }
    }
    let log = Log::default();
    let mut workers = kit.workers();
    for k in 0..3 {
        workers = workers.consumer(
            Recorder::new("account", &format!("m{k}"), &log),
            member("balances", k, 3),
        );
    }
    let workers = workers.spawn().await.expect("spawn");
    for handle in workers.consumers() {
        handle.wait_for(last, LONG).await.expect("caught up");
    }
    workers.shutdown().await.expect("shutdown");

    let counts = log.counts();
    assert_eq!(counts.len(), ids.len(), "every event handled");
    assert!(
        counts.values().all(|&n| n == 1),
        "each event handled once: {counts:?}"
    );
    for k in 0..3 {
        let share = server_share(&env, "account", k, 3).await;
        let handled: HashSet<Uuid> = log.ids_of(&format!("m{k}")).into_iter().collect();
        assert!(!share.is_empty(), "member {k} has a share");
        assert_eq!(
            handled, share,
            "member {k} handled exactly the server's share"
        );
    }
}

/// A group resized from 2 to 3 members in a rolling restart loses and repeats nothing.
/// Member 0 of 2 stops behind member 1 of 2; member 1 of 2 keeps running while members 0
/// and 2 of 3 start, catch up and stop; member 1 of 2 then handles another batch and saves
/// after them; member 1 of 3 starts last, alone. Positions are kept per group size, so the
/// old member's saves never move the new size's rows: member 1 of 3 starts from where
/// member 0 of 2 stopped and handles its share of what member 0 of 2 left behind. (With one
/// row per member, the old member's save replaced member 1 of 3's row, member 1 of 3 started
/// after the others' positions, and those events were lost.)
pub(crate) async fn resizing_a_group_loses_and_repeats_nothing<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let admin = ConsumerAdmin::for_kit(&kit);
    let log = Log::default();
    let mut ids = Vec::new();
    let write_batch = |round: i64| {
        let env = &env;
        async move {
            let mut written = Vec::new();
            let mut last = 0;
            for i in 0..24 {
                let (id, at) = env.write(&format!("cart-{i}"), "Added", round).await;
                written.push(id);
                last = at.global_position;
            }
            (written, last)
        }
    };
    let spawn = |members: &[(i64, i64)]| {
        let mut workers = kit.workers();
        for &(k, size) in members {
            workers = workers.consumer(
                Recorder::new("cart", &format!("m{k}/{size}"), &log),
                member("carts", k, size),
            );
        }
        workers.spawn()
    };
    let (batch, last) = write_batch(0).await;
    ids.extend(batch);
    let workers = spawn(&[(0, 2), (1, 2)]).await.expect("spawn");
    caught_up(&workers, last).await;
    workers.shutdown().await.expect("shutdown");
    let first = last;

    // Member 1 of 2 goes on alone through a second batch; member 0 of 2 stays behind.
    let (batch, last) = write_batch(1).await;
    ids.extend(batch);
    let second = last;
    let old = spawn(&[(1, 2)]).await.expect("spawn");
    caught_up(&old, last).await;
    // Its processed records are saved before the new members look (a plain handler is
    // at-least-once while the save is in flight).
    let reached = old.consumers()[0].position();
    eventually("member 1 of 2 saved", LONG, || async {
        admin
            .positions("cart", "carts")
            .await
            .unwrap()
            .iter()
            .any(|row| (row.member, row.size, row.global_position) == (1, 2, reached))
    })
    .await;

    // Rolling restart: members 0 and 2 of 3 start while member 1 of 2 still runs.
    let new = spawn(&[(0, 3), (2, 3)]).await.expect("spawn");
    caught_up(&new, last).await;
    new.shutdown().await.expect("shutdown");
    // The old member handles a third batch and saves last.
    let (batch, last) = write_batch(2).await;
    ids.extend(batch);
    caught_up(&old, last).await;
    old.shutdown().await.expect("shutdown");
    // The scenario needs events only member 1 of 3 can still handle: member 0 of 2's share
    // of the second batch that falls to member 1 of 3.
    let share = |k: i64, size: i64| {
        let client = env.client.clone();
        async move {
            client
                .category_get(
                    "cart",
                    &GetCategoryOptions::new()
                        .position(first + 1)
                        .batch_size(10_000)
                        .consumer_group(k, size),
                )
                .await
                .unwrap()
                .into_iter()
                .filter(|m| m.global_position <= second)
                .map(|m| uuid_of(&m.id))
                .collect::<HashSet<Uuid>>()
        }
    };
    let left_behind: HashSet<Uuid> = share(0, 2)
        .await
        .intersection(&share(1, 3).await)
        .copied()
        .collect();
    assert!(!left_behind.is_empty(), "a meaningful scenario");

    let later = spawn(&[(1, 3)]).await.expect("spawn");
    caught_up(&later, last).await;
    later.shutdown().await.expect("shutdown");
    let handled_by_later: HashSet<Uuid> = log.ids_of("m1/3").into_iter().collect();
    assert!(
        left_behind.is_subset(&handled_by_later),
        "member 1 of 3 handled what member 0 of 2 left behind"
    );

    // A fourth batch flows to the new members only.
    let (batch, last) = write_batch(3).await;
    ids.extend(batch);
    let workers = spawn(&[(0, 3), (1, 3), (2, 3)]).await.expect("spawn");
    caught_up(&workers, last).await;
    workers.shutdown().await.expect("shutdown");
    let counts = log.counts();
    let lost: Vec<&Uuid> = ids.iter().filter(|id| !counts.contains_key(id)).collect();
    assert!(lost.is_empty(), "nothing lost: {lost:?}");
    assert_eq!(counts.len(), ids.len());
    let repeated: Vec<(&Uuid, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "nothing repeated: {repeated:?}");
}

/// A handler that panics fails its try like one that returns an error: plain, transactional
/// (tried in a batch's savepoint first, then alone), the retries and the stop policy apply,
/// the failure reaches `next_failure` with the panic's message, and the handle says the
/// consumer stopped. Before, the panic ended the consumer's task with nothing recorded.
pub(crate) async fn a_panicking_handler_fails_like_an_error<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let (_ok, ok_at) = env.write("panic-1", "Ok", 0).await;
    let (poison, poison_at) = env.write("panic-1", "Panic", 1).await;
    env.write("panic-2", "Ok", 2).await;
    for transactional in [false, true] {
        let name = format!("panicky-{transactional}");
        let tries = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&tries);
        let handler = consumer_fn("panic", move |message| {
            let counted = Arc::clone(&counted);
            async move {
                if message.message_type == "Panic" {
                    counted.fetch_add(1, Ordering::SeqCst);
                    panic!("no handler for {}", message.message_type);
                }
                Ok::<_, HandlerError>(Handled::Done)
            }
        });
        let options = ConsumerOptions::new(&name).transactional(transactional);
        let (workers, failure) = stopped_by(&kit, handler, options).await;
        match failure {
            Error::ConsumerStopped {
                event_id,
                global_position,
                message,
                ..
            } => {
                assert_eq!(event_id, poison);
                assert_eq!(global_position, poison_at.global_position);
                assert!(
                    message.contains("handler panicked: no handler for Panic"),
                    "{message}"
                );
            }
            other => panic!("unexpected error {other:?}"),
        }
        // Three tries by the policy (a transactional consumer's try in the batch's savepoint
        // is the first of them).
        assert_eq!(tries.load(Ordering::SeqCst), 3, "{name}");
        let handle = workers.consumer(&name).unwrap();
        assert!(!handle.is_running(), "{name}");
        assert!(handle.failure().is_some(), "{name}");
        let positions = ConsumerAdmin::for_kit(&kit)
            .positions("panic", &name)
            .await
            .unwrap();
        assert_eq!(positions[0].global_position, ok_at.global_position);
        workers
            .shutdown()
            .await
            .expect("the failure was already taken");
    }
}

/// One instance at a time runs a consumer member: a second one started with the same name
/// (a second replica, a deploy's new process) stands by while the first runs, takes over at
/// once when the first shuts down and a second after a crash, and stands by again when
/// another instance takes the member over; every event is handled once, by the instance
/// that runs the member. (Both instances handled every event.)
pub(crate) async fn a_second_instance_stands_by<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let log = Log::default();
    let spawn = |tag: &'static str| {
        kit.workers()
            .consumer(
                Recorder::new("solo", tag, &log),
                crashable(ConsumerOptions::new("solo")),
            )
            .spawn()
    };
    let mut n = 0;
    let mut write_some = async |count: i64| {
        let mut last = 0;
        for _ in 0..count {
            n += 1;
            last = env
                .write(&format!("solo-{}", n % 3), "Ok", n)
                .await
                .1
                .global_position;
        }
        last
    };
    let last = write_some(3).await;
    let first = spawn("a").await.expect("spawn a");
    caught_up(&first, last).await;
    let second = spawn("b").await.expect("spawn b");
    let last = write_some(3).await;
    caught_up(&first, last).await;
    // Several of the standby's looks (one a second) pass while the first runs; its handle
    // follows the position the running instance saves.
    let standby = second.consumer("solo").unwrap().clone();
    standby
        .wait_for(last, LONG)
        .await
        .expect("the standby's position follows the saved one");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(log.ids_of("b").is_empty(), "the standby handled nothing");
    assert_eq!(log.ids_of("a").len(), 6);

    first.shutdown().await.expect("shutdown a");
    let last = write_some(3).await;
    caught_up(&second, last).await;
    assert_eq!(log.ids_of("b").len(), 3, "b took over after a's shutdown");

    // Killed once its position is saved (a plain handler's events after the saved position
    // are handled again after a crash, which is not what this looks at).
    let admin = ConsumerAdmin::for_kit(&kit);
    eventually("b saved its position", LONG, || async {
        admin.positions("solo", "solo").await.unwrap()[0].global_position == last
    })
    .await;
    second.kill();
    let third = spawn("c").await.expect("spawn c");
    let last = write_some(3).await;
    caught_up(&third, last).await;
    assert_eq!(log.ids_of("c").len(), 3, "c took over after b's crash");

    // Taken over elsewhere: c stands by from its next heartbeat, and its saves are refused.
    eventually("c saved its position", LONG, || async {
        admin.positions("solo", "solo").await.unwrap()[0].global_position == last
    })
    .await;
    DB::hand_members_to(&pool, Some("elsewhere")).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let last = write_some(2).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        log.ids_of("c").len(),
        3,
        "c stood by while the member was elsewhere"
    );
    DB::hand_members_to(&pool, None).await;
    caught_up(&third, last).await;
    assert_eq!(log.ids_of("c").len(), 5, "c took the freed member back");
    third.shutdown().await.expect("shutdown c");

    let counts = log.counts();
    assert_eq!(counts.len(), 14, "every event handled");
    assert!(counts.values().all(|&n| n == 1), "each once: {counts:?}");
}

/// A spawn that fails after some consumers took their members (here, a consumer added
/// twice) frees those members: the next start runs at once instead of standing by behind
/// the failed one's claim until it lapses (30 s by default).
pub(crate) async fn a_failed_spawn_frees_its_members<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let (_, at) = env.write("freed-1", "Ok", 0).await;
    let log = Log::default();
    let failed = kit
        .workers()
        .consumer(
            Recorder::new("freed", "first", &log),
            ConsumerOptions::new("freed"),
        )
        .consumer(
            Recorder::new("freed", "twice", &log),
            ConsumerOptions::new("freed"),
        )
        .spawn()
        .await;
    assert!(
        matches!(failed, Err(Error::InvalidArgument(_))),
        "{failed:?}"
    );
    let workers = kit
        .workers()
        .consumer(
            Recorder::new("freed", "next", &log),
            ConsumerOptions::new("freed"),
        )
        .spawn()
        .await
        .expect("spawn");
    workers
        .consumer("freed")
        .unwrap()
        .wait_for(at.global_position, Duration::from_secs(10))
        .await
        .expect("runs at once");
    workers.shutdown().await.expect("shutdown");
    assert_eq!(log.ids_of("next").len(), 1);
}

/// A shared transaction that takes longer than `takeover_after` renews its member's claim
/// between events (inside the transaction): the standby does not take the member over
/// midway, and every event is handled once, by the first instance. (On SQLite the standby's
/// take waits for the write lock the transaction holds anyway; on PostgreSQL the two
/// instances took the member from each other for good.)
pub(crate) async fn a_long_shared_transaction_keeps_its_member<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    DB::create_effects(&pool).await;
    let written = write_round_robin(&env, "longtx", 4, 40, &[]).await;
    let last = written.last().unwrap().1;
    let log = Log::default();
    let spawn = |tag: &'static str| {
        kit.workers()
            .consumer(
                Recorder::new("longtx", tag, &log)
                    .effects()
                    .delay(Duration::from_millis(60)),
                crashable(ConsumerOptions::new("longtx"))
                    .transactional(true)
                    .batch_size(100)
                    .transaction_batch(100),
            )
            .spawn()
    };
    // 40 events of 60 ms in one transaction: 2.4 s, past the 1 s takeover.
    let first = spawn("a").await.expect("spawn a");
    let second = spawn("b").await.expect("spawn b");
    caught_up(&first, last).await;
    first.shutdown().await.expect("shutdown a");
    second.shutdown().await.expect("shutdown b");
    assert!(log.ids_of("b").is_empty(), "b never took the member over");
    let all: Vec<Uuid> = written.iter().map(|(id, _)| *id).collect();
    assert_effects_once(&DB::effect_counts(&pool).await, &all);
    let counts = log.counts();
    assert!(
        counts.values().all(|&n| n == 1),
        "each handled once: {counts:?}"
    );
}

/// A transactional handler that ignores a failed statement and says it is done: PostgreSQL
/// has aborted its transaction, so the position cannot be saved. That is the handler's
/// failure (retried, then the failure policy), not database trouble retried for good, which
/// ran the handler again and again without a word.
pub(crate) async fn a_handler_that_breaks_its_transaction_fails<DB: Db>(pool: Pool<DB>) {
    struct IgnoresItsError(Arc<AtomicU32>);
    impl<DB: Db> Consumer<DB> for IgnoresItsError {
        fn category(&self) -> &str {
            "broken"
        }
        fn handle<'a>(
            &'a self,
            message: &'a CategoryMessage,
            ctx: &'a mut Context<'_, DB>,
        ) -> BoxFuture<'a, Result<Handled, HandlerError>> {
            Box::pin(async move {
                if message.message_type == "Broken" {
                    self.0.fetch_add(1, Ordering::SeqCst);
                    // Tolerated, as `let _ =` would: the transaction is aborted all the same.
                    let _ = DB::fail_a_statement(ctx.transaction()?).await;
                }
                Ok(Handled::Done)
            })
        }
    }
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let (_, ok_at) = env.write("broken-1", "Ok", 0).await;
    let (broken, _) = env.write("broken-1", "Broken", 1).await;
    let tries = Arc::new(AtomicU32::new(0));
    let consumer = IgnoresItsError(Arc::clone(&tries));
    stops_when_it_cannot_commit(&kit, consumer, "breaker", broken, ok_at.global_position).await;
    assert_eq!(tries.load(Ordering::SeqCst), 3, "the policy's three tries");
}

/// Runs `consumer` as the transactional consumer `name` and checks that it stops at the
/// event `broken` because the handler's transaction could not commit, with its position
/// left at `before`, the event ahead of it.
async fn stops_when_it_cannot_commit<DB: Db, C: Consumer<DB>>(
    kit: &Kit<DB>,
    consumer: C,
    name: &str,
    broken: Uuid,
    before: i64,
) {
    let category = consumer.category().to_owned();
    let options = ConsumerOptions::new(name).transactional(true);
    let (workers, failure) = stopped_by(kit, consumer, options).await;
    match failure {
        Error::ConsumerStopped {
            event_id, message, ..
        } => {
            assert_eq!(event_id, broken);
            assert!(message.contains("could not commit"), "{message}");
        }
        other => panic!("unexpected error {other:?}"),
    }
    let positions = ConsumerAdmin::for_kit(kit)
        .positions(&category, name)
        .await
        .unwrap();
    assert_eq!(positions[0].global_position, before);
    workers
        .shutdown()
        .await
        .expect("the failure was already taken");
}

/// A transactional handler whose work breaks a foreign key checked at the commit: the
/// commit fails every time, which is the handler's failure (retried, then the failure
/// policy). On SQLite it was taken for database trouble and retried for good, running the
/// handler again and again with only a warning.
pub(crate) async fn a_handler_whose_commit_breaks_a_constraint_fails<DB: Db>(pool: Pool<DB>) {
    struct WritesAnOrphan(Arc<AtomicU32>);
    impl<DB: Db> Consumer<DB> for WritesAnOrphan {
        fn category(&self) -> &str {
            "orphan"
        }
        fn handle<'a>(
            &'a self,
            message: &'a CategoryMessage,
            ctx: &'a mut Context<'_, DB>,
        ) -> BoxFuture<'a, Result<Handled, HandlerError>> {
            Box::pin(async move {
                if message.message_type == "Orphan" {
                    self.0.fetch_add(1, Ordering::SeqCst);
                    DB::insert_orphan(ctx.transaction()?)
                        .await
                        .map_err(HandlerError::new)?;
                }
                Ok(Handled::Done)
            })
        }
    }
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    DB::create_deferred_foreign_key(&pool).await;
    let (_, ok_at) = env.write("orphan-1", "Ok", 0).await;
    let (orphan, _) = env.write("orphan-1", "Orphan", 1).await;
    let tries = Arc::new(AtomicU32::new(0));
    let consumer = WritesAnOrphan(Arc::clone(&tries));
    stops_when_it_cannot_commit(&kit, consumer, "orphans", orphan, ok_at.global_position).await;
    // The policy's three tries, after the one in the transaction it shared with the event
    // before it, when the batch took both: its commit failed as a whole and fell back to
    // one event at a time.
    let tries = tries.load(Ordering::SeqCst);
    assert!((3..=4).contains(&tries), "{tries} tries");
}

/// PostgreSQL cannot store a NUL in JSONB; EventoDB on Pebble (or SQLite) stores one. A
/// failing event whose data holds one cannot be parked there, however often the park is
/// tried: the consumer stops with the database's error, before the event, where it kept
/// retrying the park for good with only a warning.
pub(crate) async fn an_event_the_database_cannot_park_stops_the_consumer<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let (_, ok_at) = env.write("nul-1", "Ok", 0).await;
    let message = json!({ "type": "Poison", "data": { "text": "a\u{0}b" } });
    let id = Uuid::now_v7().to_string();
    let written = env
        .client
        .call_raw(
            "stream.write",
            &[json!("nul-1"), message, json!({ "id": id })],
        )
        .await;
    if let Err(error) = written {
        eprintln!("skipped: this EventoDB refuses a NUL in data ({error})");
        return;
    }
    let log = Log::default();
    let (workers, failure) = first_failure(
        &kit,
        Recorder::new("nul", "parker", &log).failing("Poison"),
        ConsumerOptions::new("parker")
            .failure_policy(FailurePolicy::ParkStream)
            .retry(fast_retry()),
        "a failure reported, not a park retried for good",
    )
    .await;
    let text = error_chain(&failure);
    assert!(text.contains("Unicode"), "{text}");
    let admin = ConsumerAdmin::for_kit(&kit);
    assert!(admin.parked("nul", "parker").await.unwrap().is_empty());
    let positions = admin.positions("nul", "parker").await.unwrap();
    assert_eq!(positions[0].global_position, ok_at.global_position);
    let _ = workers.shutdown().await;
}

/// `error` and its sources, as one line.
fn error_chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text = format!("{text}: {inner}");
        cause = inner.source();
    }
    text
}

/// An event whose stream name the database cannot store as text (a NUL, which EventoDB's
/// in-memory and Pebble stores keep): a transactional consumer cannot record it as
/// processed, and no retry changes that. It stops with the database's error, where it
/// retried for good with only warnings.
pub(crate) async fn an_event_the_database_cannot_record_stops_the_consumer<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let (_, ok_at) = env.write("nulname-1", "Ok", 0).await;
    let written = env
        .client
        .call_raw(
            "stream.write",
            &[
                json!("nulname-a\u{0}b"),
                json!({ "type": "Ok", "data": {} }),
                json!({ "id": Uuid::now_v7().to_string() }),
            ],
        )
        .await;
    if let Err(error) = written {
        eprintln!("skipped: this EventoDB refuses a NUL in a stream name ({error})");
        return;
    }
    let log = Log::default();
    let (workers, failure) = first_failure(
        &kit,
        Recorder::new("nulname", "recorder", &log),
        ConsumerOptions::new("recorder")
            .transactional(true)
            .retry(fast_retry()),
        "a failure reported, not a record retried for good",
    )
    .await;
    let text = error_chain(&failure);
    assert!(text.contains("Unicode") || text.contains("0x00"), "{text}");
    let admin = ConsumerAdmin::for_kit(&kit);
    let positions = admin.positions("nulname", "recorder").await.unwrap();
    assert_eq!(positions[0].global_position, ok_at.global_position);
    let _ = workers.shutdown().await;
}

/// A poison event with the stop policy stops the consumer with a typed error, before it.
pub(crate) async fn poison_event_stops_the_consumer<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let (ok, ok_at) = env.write("stop-1", "Ok", 0).await;
    let (poison, poison_at) = env.write("stop-1", "Poison", 1).await;
    let (_after, _) = env.write("stop-2", "Ok", 2).await;
    let log = Log::default();
    let recorder = Recorder::new("stop", "stopper", &log).failing("Poison");
    let (workers, failure) =
        stopped_by(&kit, recorder.clone(), ConsumerOptions::new("stopper")).await;
    match failure {
        Error::ConsumerStopped {
            consumer,
            event_id,
            global_position,
            stream,
            ..
        } => {
            assert_eq!(consumer, "stopper");
            assert_eq!(event_id, poison);
            assert_eq!(global_position, poison_at.global_position);
            assert_eq!(stream, "stop-1");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(recorder.failures(), 3, "tried three times");
    assert_eq!(
        log.ids(),
        vec![ok],
        "nothing after the poison event was handled"
    );
    let handle = workers.consumer("stopper").unwrap();
    assert!(!handle.is_running());
    assert!(handle.failure().is_some());
    let positions = ConsumerAdmin::for_kit(&kit)
        .positions("stop", "stopper")
        .await
        .unwrap();
    assert_eq!(
        positions[0].global_position, ok_at.global_position,
        "position before the poison"
    );
    workers
        .shutdown()
        .await
        .expect("the failure was already taken");

    // Restarted (and fixed), it tries the event again.
    recorder.heal();
    let workers = running_until(
        &kit,
        recorder,
        ConsumerOptions::new("stopper"),
        poison_at.global_position,
    )
    .await;
    assert_eq!(log.ids()[..2], [ok, poison]);
    workers.shutdown().await.unwrap();
}

/// A poison event with the park policy parks its stream (and every later event of it),
/// other streams go on, and a released stream is handled in order.
pub(crate) async fn poison_event_parks_its_stream_until_released<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let (a1, _) = env.write("park-1", "Ok", 1).await;
    let (p, _) = env.write("park-1", "Poison", 2).await;
    let (a2, _) = env.write("park-1", "Ok", 3).await;
    let (b1, _) = env.write("park-2", "Ok", 4).await;
    let (b2, at) = env.write("park-2", "Ok", 5).await;
    let log = Log::default();
    let recorder = Recorder::new("park", "parker", &log).failing("Poison");
    let workers = kit
        .workers()
        .consumer(
            recorder.clone(),
            ConsumerOptions::new("parker")
                .failure_policy(FailurePolicy::ParkStream)
                .retry(fast_retry()),
        )
        .spawn()
        .await
        .expect("spawn");
    let handle = workers.consumer("parker").unwrap().clone();
    handle.wait_for(at.global_position, LONG).await.unwrap();
    assert_eq!(log.ids(), vec![a1, b1, b2], "other streams go on");
    let admin = ConsumerAdmin::for_kit(&kit);
    assert_eq!(
        parked_ids(&admin, "park", "parker").await,
        vec![p, a2],
        "the poison event and the one after it are parked"
    );
    assert_eq!(
        admin.parked_streams("park", "parker").await.unwrap(),
        vec!["park-1".to_string()]
    );
    let first = &admin.parked("park", "parker").await.unwrap()[0];
    assert_eq!(first.attempts, 3);
    assert!(first.error.contains("poison"), "{}", first.error);

    // Later events of the parked stream wait too.
    let (a3, at) = env.write("park-1", "Ok", 6).await;
    handle.wait_for(at.global_position, LONG).await.unwrap();
    assert!(!log.contains(a3));
    assert_eq!(admin.parked("park", "parker").await.unwrap().len(), 3);
    assert_eq!(
        handle.position(),
        at.global_position,
        "the position moves past parked events"
    );

    // Released while still failing: the replay fails again and parks the stream again,
    // with the new tries counted and nothing handled out of order.
    assert!(
        admin
            .release_stream("park", "parker", "park-1")
            .await
            .unwrap()
    );
    eventually("the stream is parked again", LONG, || async {
        admin.parked("park", "parker").await.unwrap()[0].attempts == 6
    })
    .await;
    let parked = admin.parked("park", "parker").await.unwrap();
    assert_eq!(parked.len(), 3, "{parked:?}");
    assert!(parked[0].error.contains("poison"), "{}", parked[0].error);
    assert_eq!(log.ids(), vec![a1, b1, b2]);

    // Fixed and released: the parked events are handled in order.
    recorder.heal();
    assert!(
        admin
            .release_stream("park", "parker", "park-1")
            .await
            .unwrap()
    );
    assert!(
        !admin
            .release_stream("park", "parker", "park-2")
            .await
            .unwrap(),
        "not parked"
    );
    unparked(&admin, "park", "parker").await;
    assert!(admin.parked("park", "parker").await.unwrap().is_empty());
    assert_eq!(log.ids_in_stream("park-1"), vec![a1, p, a2, a3]);
    let (a4, at) = env.write("park-1", "Ok", 7).await;
    handle.wait_for(at.global_position, LONG).await.unwrap();
    assert_eq!(log.ids_in_stream("park-1"), vec![a1, p, a2, a3, a4]);
    workers.shutdown().await.unwrap();
}

/// Ids other producers chose, on a server that stores any string (the embedded server with
/// the Pebble backend's rules; the real Pebble backend does the same): a batch holding
/// `order-42` and a verbatim `urn:uuid:` id is handled whole, a poison event with such an id
/// is parked and listed under it, replays when released, and a restarted consumer goes on
/// from where it stopped.
pub(crate) async fn foreign_ids_are_handled_parked_and_released<DB: Db>(pool: Pool<DB>) {
    let Some(env) = Env::pebble("foreign_ids_are_handled_parked_and_released").await else {
        return;
    };
    let kit = env.kit(&pool);
    DB::create_effects(&pool).await;
    let urn = "urn:uuid:0192E4A0-7B1A-7C3D-8E4F-5A6B7C8D9E0F";
    let (a, _) = env.write("foreign-1", "Ok", 1).await;
    env.write_with_id("foreign-1", "Ok", "order-42").await;
    env.write_with_id("foreign-2", "Ok", urn).await;
    env.write_with_id("foreign-3", "Poison", "order-43").await;
    let (b, at) = env.write("foreign-2", "Ok", 5).await;
    let log = Log::default();
    let recorder = Recorder::new("foreign", "reader", &log)
        .failing("Poison")
        .effects();
    let options = || {
        ConsumerOptions::new("reader")
            .transactional(true)
            .failure_policy(FailurePolicy::ParkStream)
            .retry(fast_retry())
    };
    let workers = kit
        .workers()
        .consumer(recorder.clone(), options())
        .spawn()
        .await
        .expect("spawn");
    let handle = workers.consumer("reader").unwrap().clone();
    handle.wait_for(at.global_position, LONG).await.unwrap();
    let (a, b) = (a.to_string(), b.to_string());
    assert_eq!(log.id_texts(), [&*a, "order-42", urn, &b]);
    let admin = ConsumerAdmin::for_kit(&kit);
    let parked = admin.parked("foreign", "reader").await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].id, "order-43");
    assert_eq!(parked[0].id.as_uuid(), None);

    recorder.heal();
    assert!(
        admin
            .release_stream("foreign", "reader", "foreign-3")
            .await
            .unwrap()
    );
    unparked(&admin, "foreign", "reader").await;
    assert_eq!(log.id_texts(), [&*a, "order-42", urn, &b, "order-43"]);
    let effects = DB::effect_counts(&pool).await;
    for id in [&*a, "order-42", urn, &b, "order-43"] {
        assert_eq!(
            effects.get(id),
            Some(&1),
            "one effect for {id}: {effects:?}"
        );
    }
    workers.shutdown().await.unwrap();

    // A restart goes on past the foreign ids instead of failing on them again.
    let at = env.write_with_id("foreign-1", "Ok", "order-44").await;
    let workers = kit
        .workers()
        .consumer(recorder, options())
        .spawn()
        .await
        .expect("spawn");
    let handle = workers.consumer("reader").unwrap().clone();
    handle.wait_for(at, LONG).await.unwrap();
    assert_eq!(
        log.id_texts(),
        [&*a, "order-42", urn, &b, "order-43", "order-44"]
    );
    workers.shutdown().await.unwrap();
}

/// A poison event with the skip policy is recorded as skipped and the consumer goes on.
pub(crate) async fn poison_event_is_skipped_with_a_record<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let (a, _) = env.write("skip-1", "Ok", 1).await;
    let (p, _) = env.write("skip-1", "Poison", 2).await;
    let (m, _) = env.write("skip-1", "Mystery", 3).await;
    let (c, at) = env.write("skip-1", "Ok", 4).await;
    let log = Log::default();
    let workers = kit
        .workers()
        .consumer(
            Recorder::new("skip", "skipper", &log)
                .failing("Poison")
                .unknown("Mystery"),
            ConsumerOptions::new("skipper")
                .failure_policy(FailurePolicy::Skip)
                .retry(fast_retry()),
        )
        .consumer(
            Recorder::new("skip", "strict", &log).unknown("Mystery"),
            ConsumerOptions::new("strict")
                .strict_types(true)
                .failure_policy(FailurePolicy::Skip)
                .retry(fast_retry()),
        )
        .spawn()
        .await
        .expect("spawn");
    for handle in workers.consumers() {
        handle.wait_for(at.global_position, LONG).await.unwrap();
    }
    workers.shutdown().await.unwrap();
    assert_eq!(
        log.ids_of("skipper"),
        vec![a, c],
        "unknown types are ignored by default"
    );
    assert_eq!(log.ids_of("strict"), vec![a, p, c]);
    let admin = ConsumerAdmin::for_kit(&kit);
    let skipped = admin.skipped("skip", "skipper").await.unwrap();
    assert_eq!(
        skipped.iter().map(|e| uuid_of(&e.id)).collect::<Vec<_>>(),
        vec![p]
    );
    assert_eq!(skipped[0].attempts, 3);
    assert!(admin.parked("skip", "skipper").await.unwrap().is_empty());
    let strict = admin.skipped("skip", "strict").await.unwrap();
    assert_eq!(
        strict.iter().map(|e| uuid_of(&e.id)).collect::<Vec<_>>(),
        vec![m],
        "strict: unknown type fails"
    );
    assert!(strict[0].error.contains("Mystery"));
    for name in ["skipper", "strict"] {
        let positions = admin.positions("skip", name).await.unwrap();
        assert_eq!(positions[0].global_position, at.global_position);
    }
}

/// Live wake-ups: a poke wakes a consumer that would not poll for an hour; after the SSE
/// connection drops, the hub reconnects and pokes work again.
pub(crate) async fn sse_outage_reconnects<DB: Db>(pool: Pool<DB>) {
    let Some(env) = Env::ours("sse_outage_reconnects").await else {
        return;
    };
    let kit = env.kit(&pool);
    let log = Log::default();
    let workers = kit
        .workers()
        .live_wakeups(
            HubOptions::default().backoff(Duration::from_millis(20), Duration::from_millis(200)),
        )
        .consumer(
            Recorder::new("live", "live", &log),
            ConsumerOptions::new("live").poll_interval(Duration::from_secs(3600)),
        )
        .spawn()
        .await
        .expect("spawn");
    eventually("connected", LONG, || async {
        workers.live_connections() >= 1
    })
    .await;
    let (e1, _) = env.write("live-1", "Ok", 1).await;
    eventually("woken by a poke", LONG, || async { log.contains(e1) }).await;
    // The consumer's own first read can handle the event before the hub has taken its poke
    // off the connection; dropping the connection then discards that poke, and the count
    // below would wait for a second poke that never comes.
    eventually("the first poke", LONG, || async {
        workers.live_pokes() >= 1
    })
    .await;

    env.server().faults().drop_sse_connections();
    eventually("reconnected", LONG, || async {
        workers.live_connections() >= 2
    })
    .await;
    let (e2, _) = env.write("live-2", "Ok", 2).await;
    eventually("woken after reconnecting", LONG, || async {
        log.contains(e2)
    })
    .await;
    // The read the reconnection itself starts (pokes may have been missed while it was down)
    // can handle the event before its poke arrives: wait for the poke, do not race it.
    eventually("a poke after reconnecting", LONG, || async {
        workers.live_pokes() >= 2
    })
    .await;
    workers.shutdown().await.unwrap();
}

/// EventoDB loses the events a consumer has read (a crashed Pebble-backed server forgets every
/// write since it opened) and gives their global positions to new events: the idle consumer
/// reads its last event back, finds it gone, and stops with `ConsumerPositionLost` instead of
/// skipping the new events; reset, it handles them. It used to wait, silently, for the new
/// events to pass its old position. Here it looks when its live wake-ups reconnect after the
/// crash (its poll interval is an hour).
pub(crate) async fn a_consumer_stops_when_eventodb_loses_its_position<DB: Db>(pool: Pool<DB>) {
    let Some(env) = Env::ours("a_consumer_stops_when_eventodb_loses_its_position").await else {
        return;
    };
    lost_position_stops_the_consumer(&env, pool, Duration::from_secs(3600)).await;
}

/// The same, found by the look every six poll intervals (short ones here), whether or not
/// the live wake-ups reconnected by then.
pub(crate) async fn a_polling_consumer_stops_when_eventodb_loses_its_position<DB: Db>(
    pool: Pool<DB>,
) {
    let Some(env) = Env::ours("a_polling_consumer_stops_when_eventodb_loses_its_position").await
    else {
        return;
    };
    lost_position_stops_the_consumer(&env, pool, Duration::from_millis(50)).await;
}

async fn lost_position_stops_the_consumer<DB: Db>(env: &Env, pool: Pool<DB>, poll: Duration) {
    let kit = env.kit(&pool);
    let log = Log::default();
    let recorder = Recorder::new("gone", "gone", &log);
    let options = || ConsumerOptions::new("gone").poll_interval(poll);
    let mut workers = kit
        .workers()
        .consumer(recorder.clone(), options())
        .spawn()
        .await
        .expect("spawn");
    let mut before = Vec::new();
    for n in 0..3 {
        before.push(env.write("gone-1", "Ok", n).await.0);
    }
    let (_, last) = env.write("gone-2", "Ok", 3).await;
    workers.consumers()[0]
        .wait_for(last.global_position, LONG)
        .await
        .unwrap();
    env.server().faults().crash();
    // The first call may meet a pooled connection the crash closed: try again (the write
    // reached no server then).
    let after = Uuid::now_v7();
    let mut attempt = 0;
    let at = loop {
        let written = env
            .client
            .stream_write(
                "gone-3",
                &NewMessage::new("Ok", json!({ "n": 4 })),
                &WriteOptions::new().id(after),
            )
            .await;
        match written {
            Ok(written) => break written,
            Err(error) if attempt < 3 && error.is_transient() => attempt += 1,
            Err(error) => panic!("write: {error}"),
        }
    };
    assert!(
        at.global_position < last.global_position,
        "a position given again"
    );
    let failure = tokio::time::timeout(LONG, workers.next_failure())
        .await
        .expect("a failure reported")
        .expect("an error");
    assert!(
        matches!(&failure, Error::ConsumerPositionLost { consumer, category, position }
            if consumer == "gone" && category == "gone" && *position == last.global_position),
        "{failure:?}"
    );
    assert!(!log.contains(after), "stopped before anything was skipped");
    workers
        .shutdown()
        .await
        .expect("the failure was already taken");

    // Another instance (a standby, a restart, or a member of a new group size) does not go
    // on from the lost position: the consumer is held until an operator resets it.
    let workers = kit
        .workers()
        .consumer(recorder.clone(), options())
        .spawn()
        .await
        .expect("spawn");
    let resized = kit
        .workers()
        .consumer(recorder, options().group(0, 2))
        .spawn()
        .await
        .expect("spawn");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!log.contains(after), "held until a reset");
    let admin = ConsumerAdmin::for_kit(&kit);
    let positions = admin.positions("gone", "gone").await.unwrap();
    resized.shutdown().await.unwrap();
    assert_eq!(
        positions.len(),
        3,
        "the new size's rows were made: {positions:?}"
    );
    for position in &positions {
        let state = &position.state;
        if position.size == 1 {
            assert!(
                matches!(state, MemberState::Stopped { error: Some(error), .. }
                    if error.contains("no longer holds")),
                "{state:?}"
            );
        } else {
            assert!(
                !matches!(state, MemberState::Running { .. }),
                "{position:?}"
            );
        }
    }
    admin.reset_position("gone", "gone", 0).await.unwrap();
    // (Standing by, its handle showed the old position: wait for the event itself.)
    eventually("handled after the reset", LONG, || async {
        log.contains(after)
    })
    .await;
    workers.shutdown().await.unwrap();
}

/// While the SSE connection is down, polling still delivers.
pub(crate) async fn sse_outage_falls_back_to_polling<DB: Db>(pool: Pool<DB>) {
    let Some(env) = Env::ours("sse_outage_falls_back_to_polling").await else {
        return;
    };
    let kit = env.kit(&pool);
    let log = Log::default();
    let workers = kit
        .workers()
        .live_wakeups(
            HubOptions::default().backoff(Duration::from_secs(3600), Duration::from_secs(3600)),
        )
        .consumer(
            Recorder::new("poll", "poll", &log),
            ConsumerOptions::new("poll").poll_interval(Duration::from_millis(100)),
        )
        .spawn()
        .await
        .expect("spawn");
    eventually("connected", LONG, || async {
        workers.live_connections() >= 1
    })
    .await;
    env.server().faults().drop_sse_connections();
    let (e1, _) = env.write("poll-1", "Ok", 1).await;
    eventually("found by polling", LONG, || async { log.contains(e1) }).await;
    assert_eq!(
        workers.live_connections(),
        1,
        "no reconnection within the hour"
    );
    assert_eq!(workers.live_pokes(), 0, "no poke delivered it");
    workers.shutdown().await.unwrap();
}

/// Two consumers with different names on one category both see every event; waiting for a
/// position of another category returns once caught up; lag is zero then.
pub(crate) async fn two_consumers_both_see_every_event<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let mut ids = Vec::new();
    let mut last = 0;
    for i in 0..20 {
        let (id, at) = env.write(&format!("shared-{}", i % 4), "Ok", i).await;
        ids.push(id);
        last = at.global_position;
    }
    let (_, elsewhere) = env.write("elsewhere-1", "Ok", 0).await;
    let log = Log::default();
    let workers = kit
        .workers()
        .consumer(
            Recorder::new("shared", "a", &log),
            ConsumerOptions::new("a").batch_size(6),
        )
        .consumer(
            Recorder::new("shared", "b", &log),
            ConsumerOptions::new("b").batch_size(6),
        )
        .spawn()
        .await
        .expect("spawn");
    for handle in workers.consumers() {
        handle
            .wait_for(elsewhere.global_position, LONG)
            .await
            .unwrap();
        let lag = handle.lag();
        assert_eq!(lag.position, last);
        assert_eq!(lag.behind(), 0);
    }
    workers.shutdown().await.unwrap();
    assert_eq!(log.ids_of("a"), ids);
    assert_eq!(log.ids_of("b"), ids);
    let admin = ConsumerAdmin::for_kit(&kit);
    for name in ["a", "b"] {
        assert_eq!(
            admin.positions("shared", name).await.unwrap()[0].global_position,
            last
        );
    }
}

/// `wait_for` times out while the consumer is behind.
pub(crate) async fn wait_for_times_out_while_behind<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let mut last = 0;
    for i in 0..5 {
        last = env.write("slow-1", "Ok", i).await.1.global_position;
    }
    let log = Log::default();
    let workers = kit
        .workers()
        .consumer(
            Recorder::new("slow", "slow", &log).delay(Duration::from_millis(300)),
            ConsumerOptions::new("slow"),
        )
        .spawn()
        .await
        .expect("spawn");
    let handle = workers.consumer("slow").unwrap().clone();
    match handle.wait_for(last, Duration::from_millis(50)).await {
        Err(Error::WaitTimeout {
            global_position, ..
        }) => assert_eq!(global_position, last),
        other => panic!("expected a timeout, got {other:?}"),
    }
    handle.wait_for(last, LONG).await.unwrap();
    workers.shutdown().await.unwrap();
    match handle.wait_for(last + 1, LONG).await {
        Err(Error::ConsumerNotRunning { consumer }) => assert_eq!(consumer, "slow"),
        other => panic!("expected not running, got {other:?}"),
    }
}

/// The workers builder runs the outbox sender and a consumer together: a committed outbox
/// row reaches the handler.
pub(crate) async fn outbox_commit_reaches_the_handler<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let log = Log::default();
    let workers = kit
        .workers()
        .outbox_sender(SenderOptions::default())
        .consumer(
            Recorder::new("e2e", "e2e", &log),
            ConsumerOptions::new("e2e"),
        )
        .spawn()
        .await
        .expect("spawn");
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut tx = pool.begin().await.unwrap();
        let written = kit
            .outbox()
            .write(&mut *tx, "e2e-1", RawMessage::new("Ok", json!({ "n": i })))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        ids.push(written.id);
    }
    eventually("handled", LONG, || async { log.ids().len() == 5 }).await;
    assert_eq!(log.ids(), ids);
    workers.shutdown().await.unwrap();
}

/// A consumer with a correlation filter sees only the events whose
/// `metadata.correlationStreamName` is a stream of that category (not one of another
/// category, not one of a category that merely starts with the same letters, not an event
/// without metadata), in order, and its position still moves past the events it never sees.
pub(crate) async fn correlation_filter_sees_only_matching_events<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let mut matching = Vec::new();
    let mut last = 0;
    for i in 0..24 {
        // Every third event matches (the last one too), so each window of a few events has
        // one whatever the backend's scan.
        let metadata = match i % 3 {
            2 => Some(json!({ "correlationStreamName": format!("checkout-{i}") })),
            1 if i % 2 == 0 => Some(json!({ "correlationStreamName": format!("refund-{i}") })),
            1 => Some(json!({ "correlationStreamName": format!("checkouts-{i}") })),
            _ => None,
        };
        let mut message = NewMessage::new("Paid", json!({ "n": i }));
        if let Some(metadata) = &metadata {
            message = message.metadata(metadata.clone());
        }
        let id = Uuid::now_v7();
        let at = env
            .client
            .stream_write(
                &format!("payment-{}", i % 5),
                &message,
                &WriteOptions::new().id(id),
            )
            .await
            .expect("stream.write");
        if i % 3 == 2 {
            matching.push(id);
        }
        last = at.global_position;
    }
    let log = Log::default();
    let workers = kit
        .workers()
        .consumer(
            Recorder::new("payment", "checkouts", &log),
            ConsumerOptions::new("checkouts")
                .correlation("checkout")
                .batch_size(4)
                .poll_interval(Duration::from_millis(20)),
        )
        .spawn()
        .await
        .expect("spawn");
    let handle = workers.consumer("checkouts").unwrap().clone();
    eventually("the last matching event is handled", LONG, || async {
        handle.position() == last
    })
    .await;
    workers.shutdown().await.expect("shutdown");
    assert_eq!(log.ids(), matching, "only the matching events, in order");
    // The saved position is past every event it did not see.
    assert_one_saved_position(&kit, "payment", "checkouts", last).await;
}

/// The consumer saved one position, `last`.
async fn assert_one_saved_position<DB: Db>(
    kit: &Kit<DB>,
    category: &str,
    consumer: &str,
    last: i64,
) {
    let saved = ConsumerAdmin::for_kit(kit)
        .positions(category, consumer)
        .await
        .unwrap();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(saved[0].global_position, last, "{saved:?}");
}

/// Idle consumers do not read in a loop (the poll interval is 5 s, far longer than the
/// half second watched; a loop would read hundreds of times, so the bound is loose).
async fn assert_no_read_loop(env: &Env) {
    if let Some(before) = env.count("category.get") {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let reads = env.count("category.get").unwrap_or(0) - before;
        assert!(reads <= 20, "{reads} reads while idle");
    }
}

/// A consumer with a correlation filter gets past long runs of events that do not match.
/// A Pebble-backed server looks at only `batch_size` events per filtered read: the
/// consumer's first window holds none that match, and it used to wait there for good.
pub(crate) async fn correlation_consumer_gets_past_a_window_of_unmatched_events<DB: Db>(
    pool: Pool<DB>,
) {
    correlation_consumer_passes_unmatched_events(pool, Env::pebble_or_real("consumer").await).await;
}

/// The same on a server that filters before it limits (SQLite, PostgreSQL): the position
/// also moves past the unmatched events after the last matching one.
pub(crate) async fn correlation_consumer_passes_unmatched_events_on_a_filtering_server<DB: Db>(
    pool: Pool<DB>,
) {
    correlation_consumer_passes_unmatched_events(pool, Env::new("consumer").await).await;
}

async fn correlation_consumer_passes_unmatched_events<DB: Db>(pool: Pool<DB>, env: Env) {
    let kit = env.kit(&pool);
    // Runs of events no backend's rule matches to `checkout` (no metadata, another
    // category, a category that only starts like it), each far longer than the batch size,
    // with a matching event after each of the first two runs.
    let write = |i: usize, name: Option<&str>| {
        let mut message = NewMessage::new("Paid", json!({ "n": i }));
        if let Some(name) = name {
            message = message.metadata(json!({ "correlationStreamName": name }));
        }
        let client = env.client.clone();
        async move {
            let id = Uuid::now_v7();
            let at = client
                .stream_write(
                    &format!("payment-{}", i % 5),
                    &message,
                    &WriteOptions::new().id(id),
                )
                .await
                .expect("stream.write");
            (id, at.global_position)
        }
    };
    let unmatched = |i: usize| match i % 3 {
        0 => None,
        1 => Some(format!("refund-{i}")),
        _ => Some(format!("checkouts-{i}")),
    };
    let mut matching = Vec::new();
    let mut last = 0;
    for run in 0..3 {
        for i in 0..40 {
            last = write(i, unmatched(i).as_deref()).await.1;
        }
        if run < 2 {
            let (id, at) = write(run, Some(&format!("checkout-{run}"))).await;
            matching.push(id);
            last = at;
        }
    }
    let log = Log::default();
    let workers = kit
        .workers()
        .consumer(
            Recorder::new("payment", "checkouts", &log),
            ConsumerOptions::new("checkouts")
                .correlation("checkout")
                .batch_size(5),
        )
        .spawn()
        .await
        .expect("spawn");
    let handle = workers.consumer("checkouts").unwrap().clone();
    eventually("both matching events are handled", LONG, || async {
        log.ids().len() == 2
    })
    .await;
    eventually("the position reaches the head", LONG, || async {
        handle.position() == last
    })
    .await;
    // A poke for an event that does not match: the consumer passes it and waits again.
    last = write(7, None).await.1;
    eventually("the new event is passed", LONG, || async {
        handle.position() == last
    })
    .await;
    assert_no_read_loop(&env).await;
    workers.shutdown().await.expect("shutdown");
    assert_eq!(log.ids(), matching, "only the matching events, in order");
    // The passed events are saved.
    assert_one_saved_position(&kit, "payment", "checkouts", last).await;
}

/// A database without the kit's tables is named as such when the consumers start, not as a
/// bare database error.
pub(crate) async fn an_unmigrated_database_is_named_as_such<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    eventodb_kit::migrate_down(&pool, 0).await.unwrap();
    let log = Log::default();
    let result = kit
        .workers()
        .consumer(Recorder::new("ok", "x", &log), ConsumerOptions::new("x"))
        .spawn()
        .await;
    match result {
        Err(error @ Error::NotMigrated { .. }) => assert!(
            error.to_string().contains("eventodb_kit::migrate(&pool)"),
            "{error}"
        ),
        other => panic!("{:?}", other.map(|_| "running")),
    }
    eventodb_kit::migrate(&pool).await.unwrap();
}

/// Bad options are refused before anything runs.
pub(crate) async fn bad_options_are_refused<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let log = Log::default();
    for options in [
        ConsumerOptions::new(""),
        ConsumerOptions::new("x").group(3, 3),
        ConsumerOptions::new("x").category("has-dash"),
        // The empty category reads the whole namespace.
        ConsumerOptions::new("x").category(""),
        // A correlation filter names a category.
        ConsumerOptions::new("x").correlation(""),
        ConsumerOptions::new("x").correlation("checkout-7"),
    ] {
        let result = kit
            .workers()
            .consumer(Recorder::new("ok", "x", &log), options)
            .spawn()
            .await;
        assert!(
            matches!(result, Err(Error::InvalidArgument(_))),
            "{result:?}"
        );
    }
    let twice = kit
        .workers()
        .consumer(Recorder::new("ok", "x", &log), ConsumerOptions::new("x"))
        .consumer(Recorder::new("ok", "x", &log), ConsumerOptions::new("x"))
        .spawn()
        .await;
    assert!(matches!(twice, Err(Error::InvalidArgument(_))));
    let declared_empty = kit
        .workers()
        .consumer(Recorder::new("", "x", &log), ConsumerOptions::new("x"))
        .spawn()
        .await;
    assert!(
        matches!(declared_empty, Err(Error::InvalidArgument(_))),
        "{declared_empty:?}"
    );
}

// ------------------------------------------------ transactions shared by a batch

/// A transactional consumer that writes an effect and notes how many effects of earlier
/// events its transaction sees that are not committed yet: 0 with one transaction per
/// event, up to `transaction_batch - 1` when events share one.
struct Peeker<DB: Db> {
    category: String,
    pool: Pool<DB>,
    ahead: Arc<Mutex<Vec<i64>>>,
}

impl<DB: Db> Consumer<DB> for Peeker<DB> {
    fn category(&self) -> &str {
        &self.category
    }

    fn transactional(&self) -> bool {
        true
    }

    fn handle<'a>(
        &'a self,
        message: &'a CategoryMessage,
        ctx: &'a mut Context<'_, DB>,
    ) -> BoxFuture<'a, Result<Handled, HandlerError>> {
        Box::pin(async move {
            insert_effect(ctx, message).await?;
            let inside = DB::effects_seen_by(ctx.transaction()?).await?;
            let mut other = self.pool.acquire().await?;
            let committed = DB::effects_seen_by(&mut other).await?;
            self.ahead.lock().unwrap().push(inside - committed - 1);
            Ok(Handled::Done)
        })
    }
}

/// Writes `n` events of `message_type` round-robin over `streams` streams of `category`
/// (`poison` at the indexes given); returns their ids and global positions in order.
async fn write_round_robin(
    env: &Env,
    category: &str,
    streams: i64,
    n: i64,
    poison: &[(i64, &str)],
) -> Vec<(Uuid, i64)> {
    let mut written = Vec::new();
    for i in 0..n {
        let message_type = poison
            .iter()
            .find(|(at, _)| *at == i)
            .map_or("Ok", |(_, kind)| kind);
        let (id, at) = env
            .write(&format!("{category}-{}", i % streams), message_type, i)
            .await;
        written.push((id, at.global_position));
    }
    written
}

/// Asserts that exactly the events `expected` have one effect each, and no other event any.
fn assert_effects_once(effects: &HashMap<String, i64>, expected: &[Uuid]) {
    let want: HashMap<String, i64> = expected.iter().map(|id| (id.to_string(), 1)).collect();
    assert_eq!(effects, &want, "exactly one effect per expected event");
}

/// Events of a read share transactions of `transaction_batch` events: a handler sees the
/// uncommitted effects of the earlier events of its transaction (never more than the
/// bound), each effect happens once, and the position is saved with the last commit. With
/// `transaction_batch(1)` every event commits alone.
pub(crate) async fn batched_transactions_commit_effects_once<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    DB::create_effects(&pool).await;
    let written = write_round_robin(&env, "batch", 5, 40, &[]).await;
    let last = written.last().unwrap().1;
    let admin = ConsumerAdmin::for_kit(&kit);
    let mut seen = Vec::new();
    // One after the other: each counts the effects of the whole table.
    for (name, per_transaction) in [("alone", 1), ("together", 10)] {
        let ahead = Arc::new(Mutex::new(Vec::new()));
        let workers = kit
            .workers()
            .consumer(
                Peeker {
                    category: "batch".into(),
                    pool: pool.clone(),
                    ahead: ahead.clone(),
                },
                ConsumerOptions::new(name)
                    .batch_size(25)
                    .transaction_batch(per_transaction),
            )
            .spawn()
            .await
            .expect("spawn");
        caught_up(&workers, last).await;
        workers.shutdown().await.expect("shutdown");
        let positions = admin.positions("batch", name).await.unwrap();
        assert_eq!(positions[0].global_position, last, "{name} saved");
        seen.push(ahead.lock().unwrap().clone());
    }
    assert_eq!(seen[0].len(), 40);
    assert!(
        seen[0].iter().all(|&n| n == 0),
        "one transaction per event: {:?}",
        seen[0]
    );
    assert_eq!(seen[1].len(), 40);
    assert_eq!(
        seen[1].iter().max(),
        Some(&9),
        "ten events per transaction: {:?}",
        seen[1]
    );
    let effects = DB::effect_counts(&pool).await;
    assert_eq!(effects.len(), 40);
    assert!(
        effects.values().all(|&n| n == 2),
        "one effect per event and consumer: {effects:?}"
    );
}

/// A transactional recorder with effects, started on 12 events of `category` (3 streams,
/// round-robin) whose event `at` has type `kind`, and waited for until it has dealt with
/// the last one. Transactions span whole reads (`batch_size(50)`, the default
/// `transaction_batch`), so event `at` fails in the middle of one.
struct MidBatch {
    written: Vec<(Uuid, i64)>,
    log: Log,
    recorder: Recorder,
    workers: RunningWorkers,
}

async fn mid_batch<DB: Db>(
    env: &Env,
    pool: &Pool<DB>,
    category: &str,
    (at, kind): (i64, &str),
    policy: FailurePolicy,
) -> MidBatch {
    DB::create_effects(pool).await;
    let written = write_round_robin(env, category, 3, 12, &[(at, kind)]).await;
    let last = written.last().unwrap().1;
    let log = Log::default();
    let recorder = Recorder::new(category, category, &log)
        .effects()
        .flaky("Flaky")
        .failing("Poison");
    let workers = env
        .kit(pool)
        .workers()
        .consumer(
            recorder.clone(),
            ConsumerOptions::new(category)
                .transactional(true)
                .batch_size(50)
                .failure_policy(policy)
                .retry(fast_retry()),
        )
        .spawn()
        .await
        .expect("spawn");
    caught_up(&workers, last).await;
    MidBatch {
        written,
        log,
        recorder,
        workers,
    }
}

/// A handler that fails on its first try in the middle of a shared transaction: the events
/// before it are committed, it is retried on its own (its second try is attempt 2) and
/// handled, the events after it are handled; every effect happens once.
pub(crate) async fn failure_mid_batch_is_retried_alone<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let run = mid_batch(&env, &pool, "flaky", (5, "Flaky"), FailurePolicy::Stop).await;
    run.workers.shutdown().await.expect("shutdown");
    let ids: Vec<Uuid> = run.written.iter().map(|(id, _)| *id).collect();
    assert_eq!(run.recorder.failures(), 1, "one failed try");
    assert_eq!(run.log.ids(), ids, "each handled once, in order");
    assert_effects_once(&DB::effect_counts(&pool).await, &ids);
    let positions = ConsumerAdmin::for_kit(&env.kit(&pool))
        .positions("flaky", "flaky")
        .await
        .unwrap();
    assert_eq!(positions[0].global_position, run.written[11].1);
}

/// A poison event in the middle of a shared transaction, with the skip policy: it gets
/// all its tries (the first in the shared transaction counts), is recorded as skipped
/// without an effect, and every other event has its effect once.
pub(crate) async fn poison_mid_batch_is_skipped_alone<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let run = mid_batch(&env, &pool, "skipb", (5, "Poison"), FailurePolicy::Skip).await;
    run.workers.shutdown().await.expect("shutdown");
    let MidBatch {
        written,
        log,
        recorder,
        ..
    } = run;
    let poison = written[5].0;
    let others: Vec<Uuid> = written
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| *id != poison)
        .collect();
    assert_eq!(log.ids(), others);
    assert_effects_once(&DB::effect_counts(&pool).await, &others);
    assert_eq!(recorder.failures(), 3, "three tries in all");
    let skipped = ConsumerAdmin::for_kit(&kit)
        .skipped("skipb", "skipb")
        .await
        .unwrap();
    assert_eq!(
        skipped.iter().map(|e| uuid_of(&e.id)).collect::<Vec<_>>(),
        vec![poison]
    );
    assert_eq!(skipped[0].attempts, 3);
}

/// A poison event in the middle of a shared transaction, with the park policy: its stream
/// is parked from it on, the other streams' events are handled once; released after the
/// fix, the parked events are handled once, in order.
pub(crate) async fn poison_mid_batch_parks_only_its_stream<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let MidBatch {
        written,
        log,
        recorder,
        workers,
    } = mid_batch(
        &env,
        &pool,
        "parkb",
        (4, "Poison"),
        FailurePolicy::ParkStream,
    )
    .await;
    // Stream parkb-1 is events 1, 4, 7, 10: parked from 4 on.
    let parked: Vec<Uuid> = [4, 7, 10].iter().map(|&i| written[i].0).collect();
    let others: Vec<Uuid> = written
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !parked.contains(id))
        .collect();
    assert_eq!(log.ids(), others, "the other streams go on");
    assert_effects_once(&DB::effect_counts(&pool).await, &others);
    let admin = ConsumerAdmin::for_kit(&kit);
    assert_eq!(parked_ids(&admin, "parkb", "parkb").await, parked);

    recorder.heal();
    assert!(
        admin
            .release_stream("parkb", "parkb", "parkb-1")
            .await
            .unwrap()
    );
    unparked(&admin, "parkb", "parkb").await;
    workers.shutdown().await.expect("shutdown");
    let all: Vec<Uuid> = written.iter().map(|(id, _)| *id).collect();
    assert_effects_once(&DB::effect_counts(&pool).await, &all);
    assert_eq!(
        log.ids_in_stream("parkb-1"),
        vec![written[1].0, written[4].0, written[7].0, written[10].0]
    );
}

/// A consumer killed while a shared transaction is open leaves no part of it: the
/// committed effects are exactly those of the events up to the saved position. Restarted,
/// it handles the rest, every effect once.
pub(crate) async fn killed_inside_a_batch_transaction_leaves_no_partial_effects<DB: Db>(
    pool: Pool<DB>,
) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    DB::create_effects(&pool).await;
    let written = write_round_robin(&env, "crash", 8, 80, &[]).await;
    let last = written.last().unwrap().1;
    let log = Log::default();
    let start = || {
        kit.workers()
            .consumer(
                Recorder::new("crash", "crash", &log)
                    .effects()
                    .delay(Duration::from_millis(5)),
                crashable(ConsumerOptions::new("crash"))
                    .transactional(true)
                    .batch_size(50)
                    .transaction_batch(20),
            )
            .spawn()
    };
    let workers = start().await.expect("spawn");
    // Handled 28: 20 committed, 8 in the open transaction.
    eventually("inside the second transaction", LONG, || async {
        log.ids().len() >= 28
    })
    .await;
    workers.kill();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let handled_before = log.ids().len();
    let admin = ConsumerAdmin::for_kit(&kit);
    let saved = admin.positions("crash", "crash").await.unwrap()[0].global_position;
    assert!(saved < last, "killed before the end");
    let committed: Vec<Uuid> = written
        .iter()
        .filter(|(_, gp)| *gp <= saved)
        .map(|(id, _)| *id)
        .collect();
    assert_effects_once(&DB::effect_counts(&pool).await, &committed);
    assert!(
        handled_before > committed.len(),
        "killed with handled events not committed ({handled_before} handled, {} committed)",
        committed.len()
    );

    let workers = start().await.expect("spawn again");
    caught_up(&workers, last).await;
    workers.shutdown().await.expect("shutdown");
    let all: Vec<Uuid> = written.iter().map(|(id, _)| *id).collect();
    assert_effects_once(&DB::effect_counts(&pool).await, &all);
}

/// Two copies of the same group members started at once with shared transactions (as a
/// deploy that starts the new processes before the old ones stop would): the copies stand by
/// while the first run, take over when they stop, and every effect happens once. (Should two
/// copies ever run together, after a lease lapsed, each claims an event's processed record in
/// the event's savepoint.) Member 2 runs only at the end: until every member has saved a
/// position, no processed record is purged.
pub(crate) async fn doubled_group_members_never_handle_twice<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    DB::create_effects(&pool).await;
    let written = write_round_robin(&env, "dup", 12, 60, &[]).await;
    let last = written.last().unwrap().1;
    let log = Log::default();
    let spawn = |members: &[i64]| {
        let mut workers = kit.workers();
        for &k in members {
            workers = workers.consumer(
                Recorder::new("dup", &format!("m{k}"), &log)
                    .effects()
                    .delay(Duration::from_millis(2)),
                member("dups", k, 3)
                    .transactional(true)
                    .transaction_batch(4),
            );
        }
        workers.spawn()
    };
    let first = spawn(&[0, 1]).await.expect("spawn");
    let second = spawn(&[0, 1]).await.expect("spawn copies");
    caught_up(&first, last).await;
    first.shutdown().await.expect("shutdown");
    caught_up(&second, last).await;
    second.shutdown().await.expect("shutdown");
    let third = spawn(&[2]).await.expect("spawn member 2");
    caught_up(&third, last).await;
    third.shutdown().await.expect("shutdown");
    let all: Vec<Uuid> = written.iter().map(|(id, _)| *id).collect();
    assert_effects_once(&DB::effect_counts(&pool).await, &all);
    let counts = log.counts();
    assert_eq!(counts.len(), all.len(), "every event handled");
}

/// A stream parked in a group of three and released: only the member the server gives the
/// stream replays its parked events, so each is handled once. (Every member replayed every
/// released stream: each parked event was handled three times.)
pub(crate) async fn released_stream_replays_on_its_member_only<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let (a1, _) = env.write("gpark-1", "Ok", 1).await;
    let (p, _) = env.write("gpark-1", "Poison", 2).await;
    let (a2, _) = env.write("gpark-1", "Ok", 3).await;
    let mut last = 0;
    for i in 2..8 {
        last = env
            .write(&format!("gpark-{i}"), "Ok", i)
            .await
            .1
            .global_position;
    }
    let log = Log::default();
    // Slow handlers: every member that replays reads the parked events before the first
    // replay deletes them.
    let recorder = Recorder::new("gpark", "m", &log)
        .failing("Poison")
        .delay(Duration::from_millis(30));
    let mut workers = kit.workers();
    for k in 0..3 {
        workers = workers.consumer(
            recorder.clone(),
            member("grouped", k, 3)
                .failure_policy(FailurePolicy::ParkStream)
                .retry(fast_retry()),
        );
    }
    let workers = workers.spawn().await.expect("spawn");
    caught_up(&workers, last).await;
    let admin = ConsumerAdmin::for_kit(&kit);
    assert_eq!(parked_ids(&admin, "gpark", "grouped").await, vec![p, a2]);

    recorder.heal();
    assert!(
        admin
            .release_stream("gpark", "grouped", "gpark-1")
            .await
            .unwrap()
    );
    unparked(&admin, "gpark", "grouped").await;
    // One more read by every member: a member that replays does so before it reads.
    let (a3, at) = env.write("gpark-1", "Ok", 4).await;
    caught_up(&workers, at.global_position).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    workers.shutdown().await.expect("shutdown");
    assert_eq!(log.ids_in_stream("gpark-1"), vec![a1, p, a2, a3]);
    let counts = log.counts();
    assert!(
        counts.values().all(|&n| n == 1),
        "each event handled once: {counts:?}"
    );
}

/// A release made in another process (SQL here, the CLI in real life) is seen within a
/// poll interval while the category is so busy that pokes never let the poll timer fire.
/// (Parked streams were reloaded only when the poll timer fired, which every poke reset.)
pub(crate) async fn release_elsewhere_is_seen_while_busy<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let (p, _) = env.write("stuck-1", "Poison", 1).await;
    let (s2, at) = env.write("stuck-1", "Ok", 2).await;
    let log = Log::default();
    let recorder = Recorder::new("stuck", "busy", &log).failing("Poison");
    let workers = kit
        .workers()
        .consumer(
            recorder.clone(),
            ConsumerOptions::new("busy")
                .failure_policy(FailurePolicy::ParkStream)
                .poll_interval(Duration::from_millis(300))
                .retry(fast_retry()),
        )
        .spawn()
        .await
        .expect("spawn");
    let handle = workers.consumer("busy").unwrap().clone();
    handle.wait_for(at.global_position, LONG).await.unwrap();
    let admin = ConsumerAdmin::for_kit(&kit);
    assert_eq!(parked_ids(&admin, "stuck", "busy").await, vec![p, s2]);

    recorder.heal();
    // Busy: an event every 5 ms, each one a poke.
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = {
        let client = env.client.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.is_cancelled() {
                i += 1;
                client
                    .stream_write(
                        "stuck-2",
                        &NewMessage::new("Ok", json!({ "n": i })),
                        &WriteOptions::new(),
                    )
                    .await
                    .expect("stream.write");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    DB::release_elsewhere(&pool, "stuck-1").await;
    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        while !admin
            .parked_streams("stuck", "busy")
            .await
            .unwrap()
            .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    stop.cancel();
    writer.await.unwrap();
    workers.shutdown().await.expect("shutdown");
    assert!(seen.is_ok(), "the release was not seen while busy");
    assert_eq!(log.ids_in_stream("stuck-1"), vec![p, s2]);
}

/// A plain consumer re-reading events it already handled (after a resize, from the lowest
/// position of the group) skips them even when their stream is parked: they are not held
/// back and handled again on release. (The parked check came before the processed one.)
pub(crate) async fn processed_events_are_not_parked_again<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    // Under a group of two, `redo-1` is member 0's and `redo-2` member 1's (protocol §3.5).
    let (e1, _) = env.write("redo-1", "Ok", 1).await;
    let (p, first_last) = env.write("redo-1", "Poison", 2).await;
    let (o1, at) = env.write("redo-2", "Ok", 3).await;
    let log = Log::default();
    let recorder = Recorder::new("redo", "m0", &log).failing("Poison");
    // Member 0 of 2 alone: it handles e1 and parks redo-1; member 1 never starts, so the
    // group's lowest position stays at the beginning.
    let workers = kit
        .workers()
        .consumer(
            recorder.clone(),
            member("redo", 0, 2)
                .failure_policy(FailurePolicy::ParkStream)
                .retry(fast_retry()),
        )
        .spawn()
        .await
        .expect("spawn");
    caught_up(&workers, first_last.global_position).await;
    workers.shutdown().await.expect("shutdown");
    assert_eq!(log.ids(), vec![e1]);
    let admin = ConsumerAdmin::for_kit(&kit);
    assert_eq!(parked_ids(&admin, "redo", "redo").await, vec![p]);

    // Shrunk to one member: it starts from the beginning and meets e1 again.
    let recorder = Recorder::new("redo", "one", &log).failing("Poison");
    let workers = kit
        .workers()
        .consumer(
            recorder.clone(),
            ConsumerOptions::new("redo")
                .failure_policy(FailurePolicy::ParkStream)
                .retry(fast_retry()),
        )
        .spawn()
        .await
        .expect("spawn");
    caught_up(&workers, at.global_position).await;
    assert_eq!(
        parked_ids(&admin, "redo", "redo").await,
        vec![p],
        "the handled event is not held back"
    );
    recorder.heal();
    assert!(
        admin
            .release_stream("redo", "redo", "redo-1")
            .await
            .unwrap()
    );
    unparked(&admin, "redo", "redo").await;
    workers.shutdown().await.expect("shutdown");
    assert_eq!(log.ids_in_stream("redo-1"), vec![e1, p]);
    assert_eq!(log.ids_in_stream("redo-2"), vec![o1]);
}

/// Two members on a server whose grouped `category.get` looks at only `batchSize × size`
/// messages from the position and answers the member's among them (the Pebble backend):
/// the first 1050 events are member 0's, so member 1's first reads all answer `[]` while
/// its events follow. It still handles every one of them, and both members reach the head,
/// past a stream that the server gives to no member.
pub(crate) async fn group_member_gets_past_a_window_of_others_events<DB: Db>(pool: Pool<DB>) {
    group_members_pass_each_others_events(pool, Env::pebble_or_real("consumer").await).await;
}

/// The same on a server that filters by member before it limits (SQLite, PostgreSQL):
/// every member handles exactly its own events, none twice.
pub(crate) async fn group_members_pass_others_events_on_a_filtering_server<DB: Db>(pool: Pool<DB>) {
    group_members_pass_each_others_events(pool, Env::new("consumer").await).await;
}

async fn group_members_pass_each_others_events<DB: Db>(pool: Pool<DB>, env: Env) {
    let kit = env.kit(&pool);
    // Under a group of two, `ledger-1` and `ledger-3` are member 0's, `ledger-2` and
    // `ledger-4` member 1's (protocol §3.5). `ledger` goes to nobody; `ledger-` (an empty
    // cardinal id) to nobody on SQLite and Pebble, to member 0 on PostgreSQL.
    for i in 0..1050 {
        env.write(&format!("ledger-{}", 1 + 2 * (i % 2)), "Posted", i)
            .await;
    }
    env.write("ledger", "Posted", 0).await;
    let mut theirs = Vec::new();
    for i in 0..30 {
        let (id, _) = env
            .write(&format!("ledger-{}", 2 + 2 * (i % 2)), "Posted", i)
            .await;
        theirs.push(id);
    }
    let (_, at) = env.write("ledger-", "Posted", 0).await;
    let mut last = at.global_position;

    let log = Log::default();
    let mut workers = kit.workers();
    for k in 0..2 {
        workers = workers.consumer(
            Recorder::new("ledger", &format!("m{k}"), &log),
            ConsumerOptions::new("pass").group(k, 2).batch_size(100),
        );
    }
    let workers = workers.spawn().await.expect("spawn");
    let reached = |last: i64| {
        let workers = &workers;
        async move {
            workers
                .consumers()
                .iter()
                .all(|handle| handle.position() >= last)
        }
    };
    let theirs: HashSet<Uuid> = theirs.into_iter().collect();
    eventually("member 1 handles all of its events", LONG, || async {
        log.ids_of("m1").into_iter().collect::<HashSet<_>>() == theirs
    })
    .await;
    // Its position moves past the other members' events too (new: it used to stay at its
    // own last event), and is saved like a position after handling.
    eventually("both members reach the head", LONG, || reached(last)).await;

    // A poke for member 0's event wakes member 1 too: it passes the event and waits again.
    let (id, at) = env.write("ledger-1", "Posted", 0).await;
    last = at.global_position;
    eventually("both members pass the new event", LONG, || reached(last)).await;
    eventually("member 0 handles it", LONG, || async { log.contains(id) }).await;
    assert_no_read_loop(&env).await;
    workers.shutdown().await.expect("shutdown");

    let counts = log.counts();
    assert!(
        counts.values().all(|&n| n == 1),
        "each event handled once: {counts:?}"
    );
    let mut handled = HashSet::new();
    for k in 0..2 {
        let share = server_share(&env, "ledger", k, 2).await;
        let mine: HashSet<Uuid> = log.ids_of(&format!("m{k}")).into_iter().collect();
        assert_eq!(mine, share, "member {k} handled exactly the server's share");
        handled.extend(mine);
    }
    assert_eq!(handled.len(), counts.len(), "no event outside the shares");
    // The positions passed were saved, as after handling.
    let admin = ConsumerAdmin::for_kit(&kit);
    let positions = admin.positions("ledger", "pass").await.unwrap();
    assert_eq!(positions.len(), 2);
    assert!(
        positions
            .iter()
            .all(|p| p.size == 2 && p.global_position == last),
        "{positions:?}"
    );
}

/// An operator's reset takes effect on running consumers: idle ones (plain, and
/// transactional) start again from the reset position at once, and the events after it are
/// handled again, in order; a busy one starts again at its next save. Before, a running
/// consumer saved its own position over the reset, and nothing was handled again.
pub(crate) async fn a_reset_takes_effect_while_running<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    DB::create_effects(&pool).await;
    let mut ids = Vec::new();
    let mut last = 0;
    for i in 0..10 {
        let (id, at) = env.write(&format!("replay-{}", i % 3), "Ok", i).await;
        ids.push(id);
        last = at.global_position;
    }
    let log = Log::default();
    let workers = kit
        .workers()
        .consumer(
            Recorder::new("replay", "plain", &log),
            ConsumerOptions::new("plain"),
        )
        .consumer(
            Recorder::new("replay", "tx", &log).effects(),
            ConsumerOptions::new("tx").transactional(true),
        )
        .spawn()
        .await
        .expect("spawn");
    for handle in workers.consumers() {
        handle.wait_for(last, LONG).await.unwrap();
    }
    let admin = ConsumerAdmin::for_kit(&kit);
    let first_of_second_half = ids.len() / 2;
    let reset_to = {
        // The global position of the event before the second half.
        let before = env
            .client
            .category_get(
                "replay",
                &GetCategoryOptions::new().position(0).batch_size(100),
            )
            .await
            .expect("category.get");
        before[first_of_second_half - 1].global_position
    };
    for name in ["plain", "tx"] {
        assert_eq!(
            admin
                .reset_position("replay", name, reset_to)
                .await
                .unwrap(),
            1
        );
    }
    let mut again: Vec<Uuid> = ids.clone();
    again.extend_from_slice(&ids[first_of_second_half..]);
    eventually(
        "both consumers handle the second half again",
        LONG,
        || async {
            log.ids_of("plain") == again
                && DB::effect_counts(&pool).await.values().sum::<i64>() == again.len() as i64
        },
    )
    .await;
    let effects = DB::effect_counts(&pool).await;
    for (n, id) in ids.iter().enumerate() {
        let expected = if n < first_of_second_half { 1 } else { 2 };
        assert_eq!(effects[&id.to_string()], expected, "effects of event {n}");
    }
    for handle in workers.consumers() {
        handle.wait_for(last, LONG).await.unwrap();
    }

    // A busy consumer: reset while it works through a backlog, one event at a time.
    let busy_log = Log::default();
    let busy = kit
        .workers()
        .consumer(
            Recorder::new("replay", "busy", &busy_log).delay(Duration::from_millis(20)),
            ConsumerOptions::new("busy")
                .batch_size(2)
                .position_update_interval(1),
        )
        .spawn()
        .await
        .expect("spawn");
    eventually("the busy consumer is midway", LONG, || async {
        busy_log.ids().len() >= 3
    })
    .await;
    let before_reset = busy_log.ids().len();
    assert!(before_reset < ids.len(), "still midway: {before_reset}");
    assert_eq!(admin.reset_position("replay", "busy", 0).await.unwrap(), 1);
    busy.consumers()[0].wait_for(last, LONG).await.unwrap();
    eventually("the busy consumer reaches the head again", LONG, || async {
        busy_log.ids().ends_with(&ids) && busy_log.ids().len() >= ids.len() + before_reset
    })
    .await;
    busy.shutdown().await.unwrap();
    workers.shutdown().await.unwrap();
    for name in ["plain", "tx", "busy"] {
        assert_eq!(
            admin.positions("replay", name).await.unwrap()[0].global_position,
            last,
            "{name} saved the head"
        );
    }
    assert_eq!(log.ids_of("plain"), again, "nothing more was handled");
}

/// A consumer whose `Gate` events wait at a gate the test opens, so that the test acts
/// while the handler is busy with one. By default a `Gate` event fails for good once through
/// the gate; [`Gated::replaying`] makes it fail at once until its stream is released, then
/// wait in the replay and succeed.
#[derive(Clone)]
struct Gated {
    tag: String,
    log: Log,
    entered: Arc<AtomicU32>,
    gate: Arc<tokio::sync::Semaphore>,
    failing: Arc<std::sync::atomic::AtomicBool>,
    in_replay: bool,
}

impl Gated {
    fn new(tag: &str, log: &Log) -> Self {
        Self {
            tag: tag.into(),
            log: log.clone(),
            entered: Arc::default(),
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
            failing: Arc::new(true.into()),
            in_replay: false,
        }
    }
    fn replaying(tag: &str, log: &Log) -> Self {
        Self {
            in_replay: true,
            ..Self::new(tag, log)
        }
    }
    /// How many `Gate` events wait at the gate or went through it failing.
    fn entered(&self) -> u32 {
        self.entered.load(Ordering::SeqCst)
    }
    /// Lets the waiting handler fail; later `Gate` events succeed.
    fn open(&self) {
        self.failing.store(false, Ordering::SeqCst);
        self.gate.add_permits(1);
    }
}

impl<DB: Db> Consumer<DB> for Gated {
    fn category(&self) -> &str {
        "gated"
    }

    fn handle<'a>(
        &'a self,
        message: &'a CategoryMessage,
        ctx: &'a mut Context<'_, DB>,
    ) -> BoxFuture<'a, Result<Handled, HandlerError>> {
        Box::pin(async move {
            if message.message_type == "Gate" && self.failing.load(Ordering::SeqCst) {
                if self.in_replay && !ctx.is_replay() {
                    return Err(HandlerError::new("fails until its stream is released"));
                }
                self.entered.fetch_add(1, Ordering::SeqCst);
                self.gate.acquire().await.expect("gate").forget();
                if !self.in_replay {
                    return Err(HandlerError::new("failed before the reset"));
                }
            }
            self.log
                .0
                .lock()
                .unwrap()
                .push((self.tag.clone(), message.clone()));
            Ok(Handled::Done)
        })
    }
}

/// An event whose handler failed for good while an operator reset the position is handled
/// again from the reset position, not skipped or parked by the run the reset ended: the
/// skip's processed record and the park go with that run.
pub(crate) async fn a_failure_before_a_reset_is_handled_again<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let (before, _) = env.write("gated-1", "Ok", 0).await;
    let (gate, _) = env.write("gated-2", "Gate", 1).await;
    let (after, _) = env.write("gated-1", "Ok", 2).await;
    let log = Log::default();
    let skipper = Gated::new("skipper", &log);
    let parker = Gated::new("parker", &log);
    let workers = kit
        .workers()
        .consumer(
            skipper.clone(),
            ConsumerOptions::new("skipper")
                .failure_policy(FailurePolicy::Skip)
                .retry(RetryPolicy::none()),
        )
        .consumer(
            parker.clone(),
            ConsumerOptions::new("parker")
                .failure_policy(FailurePolicy::ParkStream)
                .retry(RetryPolicy::none()),
        )
        .spawn()
        .await
        .expect("spawn");
    let admin = ConsumerAdmin::for_kit(&kit);
    for gated in [&skipper, &parker] {
        eventually("the handler waits to fail", LONG, || async {
            gated.entered() == 1
        })
        .await;
        assert_eq!(
            admin.reset_position("gated", &gated.tag, 0).await.unwrap(),
            1,
            "{}: its position row is reset",
            gated.tag
        );
        gated.open();
    }
    // The first run handled `before`, then failed on `gate`; the second starts over.
    let expected = vec![before, before, gate, after];
    eventually("both handle every event again", LONG, || async {
        log.ids_of("skipper") == expected && log.ids_of("parker") == expected
    })
    .await;
    assert!(admin.skipped("gated", "skipper").await.unwrap().is_empty());
    assert!(admin.parked("gated", "parker").await.unwrap().is_empty());
    assert!(
        admin
            .parked_streams("gated", "parker")
            .await
            .unwrap()
            .is_empty()
    );
    workers.shutdown().await.unwrap();
    assert_eq!(skipper.entered() + parker.entered(), 2, "each failed once");
}

/// A released stream's event replayed while an operator reset the position is handled again
/// after the reset: the replay's processed record goes with the run the reset ended.
pub(crate) async fn a_replay_before_a_reset_is_handled_again<DB: Db>(pool: Pool<DB>) {
    replay_then_reset(pool, false).await;
}

/// [`a_replay_before_a_reset_is_handled_again`] for a plain or a transactional consumer. A
/// transactional one holds its transaction open while its handler waits, and on SQLite that
/// is the database's write lock, which the reset needs: that variant runs on PostgreSQL.
pub(crate) async fn replay_then_reset<DB: Db>(pool: Pool<DB>, transactional: bool) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let (before, _) = env.write("gated-1", "Ok", 0).await;
    let (gate, _) = env.write("gated-2", "Gate", 1).await;
    let (after, last) = env.write("gated-1", "Ok", 2).await;
    let log = Log::default();
    let replayer = Gated::replaying("replayer", &log);
    let workers = kit
        .workers()
        .consumer(
            replayer.clone(),
            ConsumerOptions::new("replayer")
                .transactional(transactional)
                .failure_policy(FailurePolicy::ParkStream)
                .retry(RetryPolicy::none()),
        )
        .spawn()
        .await
        .expect("spawn");
    let admin = ConsumerAdmin::for_kit(&kit);
    workers.consumers()[0]
        .wait_for(last.global_position, LONG)
        .await
        .unwrap();
    assert_eq!(log.ids_of("replayer"), vec![before, after]);
    assert_eq!(
        admin.parked_streams("gated", "replayer").await.unwrap(),
        vec!["gated-2".to_owned()]
    );
    assert!(
        admin
            .release_stream("gated", "replayer", "gated-2")
            .await
            .unwrap()
    );
    eventually("the replay waits at the gate", LONG, || async {
        replayer.entered() == 1
    })
    .await;
    assert_eq!(
        admin.reset_position("gated", "replayer", 0).await.unwrap(),
        1
    );
    replayer.open();
    // Replayed before the reset (the log keeps that try), then again from the reset
    // position: each event twice in all.
    eventually(
        "every event is handled again after the reset",
        LONG,
        || async {
            let counts = log.counts();
            [before, gate, after]
                .iter()
                .all(|id| counts.get(id) == Some(&2))
        },
    )
    .await;
    // The replay after the reset comes once the read is back at the gate: the stream is
    // unparked after that event's second try.
    unparked(&admin, "gated", "replayer").await;
    workers.shutdown().await.unwrap();
    assert_eq!(log.counts().values().sum::<usize>(), 6, "nothing more");
    assert!(admin.parked("gated", "replayer").await.unwrap().is_empty());
}

/// A background save still trying when the consumer shuts down (the database refused it)
/// hands its processed records back: the final save, with the database answering again,
/// writes them with the position. Before, that save failed with the background one's error,
/// or, when the loop saw the given-up save first, saved the position without its records.
pub(crate) async fn a_save_given_up_at_shutdown_is_made_by_the_last<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let mut ids = Vec::new();
    let mut last = 0;
    for i in 0..3 {
        let (id, at) = env.write("kept-1", "Ok", i).await;
        ids.push(id);
        last = at.global_position;
    }
    DB::block_processed_batches(&pool, true).await;
    let log = Log::default();
    let workers = kit
        .workers()
        .consumer(
            Recorder::new("kept", "keeper", &log),
            ConsumerOptions::new("keeper"),
        )
        .spawn()
        .await
        .expect("spawn");
    eventually("every event is handled", LONG, || async {
        log.ids().len() == 3
    })
    .await;
    // Past the first tries of the background save (100 ms, then 200 ms, ...).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let admin = ConsumerAdmin::for_kit(&kit);
    let saved = |positions: Vec<eventodb_kit::consumer::ConsumerPosition>| {
        positions.iter().map(|p| p.global_position).max()
    };
    assert_ne!(
        saved(admin.positions("kept", "keeper").await.unwrap()),
        Some(last),
        "nothing saved while the records are refused"
    );
    DB::block_processed_batches(&pool, false).await;
    workers.shutdown().await.expect("a clean shutdown");
    assert_eq!(
        saved(admin.positions("kept", "keeper").await.unwrap()),
        Some(last),
        "the final save wrote the position"
    );
    let recorded = DB::processed_batch_ids(&pool).await;
    for id in &ids {
        assert!(
            recorded.contains(&id.to_string()),
            "{id} is recorded as processed: {recorded:?}"
        );
    }
    assert_eq!(log.ids(), ids, "each handled once");
}

/// The same while busy: a consumer that handled enough events ahead of a refused save
/// waits for that save; shut down then, it ends cleanly, and the final save writes the
/// position and the records of every event it handled.
pub(crate) async fn a_save_given_up_while_busy_is_made_by_the_last<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    let mut last = 0;
    for i in 0..20 {
        last = env.write("busy-1", "Ok", i).await.1.global_position;
    }
    DB::block_processed_batches(&pool, true).await;
    let log = Log::default();
    let workers = kit
        .workers()
        .consumer(
            Recorder::new("busy", "busy", &log).delay(Duration::from_millis(20)),
            ConsumerOptions::new("busy").position_update_interval(1),
        )
        .spawn()
        .await
        .expect("spawn");
    // Eight events ahead of the first save (which the database refuses), it waits for it.
    eventually("the consumer waits for its save", LONG, || async {
        let before = log.ids().len();
        tokio::time::sleep(Duration::from_millis(300)).await;
        before >= 2 && log.ids().len() == before
    })
    .await;
    let handled = log.ids();
    assert!(
        handled.len() < 20,
        "stopped by the refused save: {}",
        handled.len()
    );
    DB::block_processed_batches(&pool, false).await;
    workers.shutdown().await.expect("a clean shutdown");
    let admin = ConsumerAdmin::for_kit(&kit);
    let saved = admin
        .positions("busy", "busy")
        .await
        .unwrap()
        .iter()
        .map(|p| p.global_position)
        .max();
    let recorded = DB::processed_batch_ids(&pool).await;
    let handled = log.ids();
    for id in &handled {
        assert!(
            recorded.contains(&id.to_string()),
            "{id} is recorded as processed"
        );
    }
    let positions = env
        .client
        .category_get(
            "busy",
            &GetCategoryOptions::new().position(0).batch_size(100),
        )
        .await
        .expect("category.get");
    let last_handled = positions
        .iter()
        .find(|m| uuid_of(&m.id) == *handled.last().unwrap())
        .map(|m| m.global_position);
    assert_eq!(saved, last_handled, "saved up to the last event handled");
    assert!(saved < Some(last));
}

/// A stream released after its consumer was reset below the parked events: the stream's
/// earlier events, read again from the reset position, come before the parked ones, whose
/// replay waits until the read has reached them. Released before the consumer starts again,
/// so the release is seen before the read gets there.
/// Read whole, and one event per read (the parked events then replay in parts, the stream
/// held between them).
pub(crate) async fn a_release_after_a_reset_keeps_the_stream_in_order<DB: Db>(pool: Pool<DB>) {
    release_after_reset(&pool, 1).await;
    release_after_reset(&pool, 100).await;
}

async fn release_after_reset<DB: Db>(pool: &Pool<DB>, batch_size: i64) {
    let env = Env::new("consumer").await;
    // Each run its own consumer: the namespace, and so the consumer tables' key, may be
    // the same.
    let name = format!("orderly-{batch_size}");
    let kit = env.kit(pool);
    let (first, _) = env.write("order-1", "Ok", 1).await;
    let (poison, _) = env.write("order-1", "Poison", 2).await;
    let (held, _) = env.write("order-1", "Ok", 3).await;
    let (other, last) = env.write("order-2", "Ok", 4).await;
    let log = Log::default();
    let recorder = Recorder::new("order", &name, &log).failing("Poison");
    let options = ConsumerOptions::new(&name)
        .failure_policy(FailurePolicy::ParkStream)
        .retry(fast_retry())
        .batch_size(batch_size);
    let workers = kit
        .workers()
        .consumer(recorder.clone(), options.clone())
        .spawn()
        .await
        .expect("spawn");
    workers.consumers()[0]
        .wait_for(last.global_position, LONG)
        .await
        .unwrap();
    workers.shutdown().await.unwrap();
    let admin = ConsumerAdmin::for_kit(&kit);
    assert_eq!(
        parked_ids(&admin, "order", &name).await,
        vec![poison, held],
        "parked, reading {batch_size} at a time"
    );
    assert_eq!(log.ids(), vec![first, other]);

    assert_eq!(admin.reset_position("order", &name, 0).await.unwrap(), 1);
    recorder.heal();
    assert!(
        admin
            .release_stream("order", &name, "order-1")
            .await
            .unwrap()
    );
    let workers = kit
        .workers()
        .consumer(recorder.clone(), options)
        .spawn()
        .await
        .expect("spawn again");
    unparked(&admin, "order", &name).await;
    caught_up(&workers, last.global_position).await;
    workers.shutdown().await.unwrap();
    assert_eq!(
        log.ids_in_stream("order-1"),
        vec![first, first, poison, held],
        "handled again from the reset position, in the stream's order"
    );
    assert_eq!(log.ids_in_stream("order-2"), vec![other, other]);
    assert!(admin.parked("order", &name).await.unwrap().is_empty());
}

/// Each member records whether it runs: running while its task runs (idle or not), stopped
/// after a shutdown, failed with its error when its failure policy stopped it, and silent
/// once a killed one has missed its heartbeats.
pub(crate) async fn a_consumer_records_whether_it_runs<DB: Db>(pool: Pool<DB>) {
    let env = Env::new("consumer").await;
    let kit = env.kit(&pool);
    env.write("state-1", "Ok", 0).await;
    env.write("state-1", "Poison", 1).await;
    let (_, last) = env.write("state-2", "Ok", 2).await;
    let log = Log::default();
    let fast = |name: &str| ConsumerOptions::new(name).poll_interval(Duration::from_millis(50));
    let workers = kit
        .workers()
        .consumer(Recorder::new("state", "alive", &log), fast("alive"))
        .consumer(
            Recorder::new("state", "stopper", &log).failing("Poison"),
            fast("stopper")
                .failure_policy(FailurePolicy::Stop)
                .retry(fast_retry()),
        )
        .spawn()
        .await
        .expect("spawn");
    let admin = ConsumerAdmin::for_kit(&kit);
    let state = |name: &'static str| {
        let admin = &admin;
        async move {
            admin.positions("state", name).await.unwrap()[0]
                .state
                .clone()
        }
    };
    workers
        .consumer("alive")
        .unwrap()
        .wait_for(last.global_position, LONG)
        .await
        .unwrap();
    eventually("the stopper stops", LONG, || async {
        matches!(state("stopper").await, MemberState::Stopped { .. })
    })
    .await;
    match state("stopper").await {
        MemberState::Stopped {
            error: Some(error), ..
        } => assert!(error.contains("poison"), "{error}"),
        other => panic!("stopped by its policy, with the error: {other:?}"),
    }
    // Idle for several poll intervals: still running, seen lately.
    tokio::time::sleep(Duration::from_millis(300)).await;
    match state("alive").await {
        MemberState::Running { last_seen } => {
            assert!(last_seen < Duration::from_millis(300), "{last_seen:?}")
        }
        other => panic!("idle and running: {other:?}"),
    }
    workers.shutdown().await.expect_err("the stopper failed");

    // A handler retrying with a backoff longer than the silence threshold (3 poll intervals
    // and 1 s) is still running: it says so while it waits. The wait is jittered down to
    // half the backoff: 6 s leaves at least 3 s, well past the 1.6 s looked at below (3 s
    // left 1.5 s, and a second failure came first once).
    let patient = Recorder::new("state", "patient", &log).failing("Poison");
    let failures = patient.failures.clone();
    let waiting = kit
        .workers()
        .consumer(
            patient,
            fast("patient").retry(RetryPolicy::new(
                5,
                Duration::from_secs(6),
                Duration::from_secs(6),
            )),
        )
        .spawn()
        .await
        .expect("spawn");
    eventually("the first failure", LONG, || async {
        failures.load(Ordering::SeqCst) >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert_eq!(failures.load(Ordering::SeqCst), 1, "still in its backoff");
    match state("patient").await {
        MemberState::Running { .. } => {}
        other => panic!("running while it waits to retry: {other:?}"),
    }
    waiting.shutdown().await.unwrap();
    assert!(
        matches!(
            state("alive").await,
            MemberState::Stopped { error: None, .. }
        ),
        "shut down: {:?}",
        state("alive").await
    );

    // Started again, then killed as a crash would: silent once its heartbeats are missed.
    let workers = kit
        .workers()
        .consumer(Recorder::new("state", "alive", &log), fast("alive"))
        .spawn()
        .await
        .expect("spawn");
    eventually("running again", LONG, || async {
        matches!(state("alive").await, MemberState::Running { .. })
    })
    .await;
    workers.kill();
    eventually("silent after missed heartbeats", LONG, || async {
        matches!(state("alive").await, MemberState::Silent { .. })
    })
    .await;
}
