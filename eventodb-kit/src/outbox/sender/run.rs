//! The sender's main loop: claim, hand each stream to a task, wait for a wake-up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::SenderOptions;
use super::send::{StreamBatch, send_stream};
use crate::error::Result;
use crate::outbox::Outbox;
use crate::outbox::backend::{Backend, Claimed, DialectKind};

/// What every stream task of one sender shares.
pub(super) struct Shared<DB: Backend> {
    pub(super) outbox: Outbox<DB>,
    pub(super) options: SenderOptions,
    pub(super) owner: String,
    pub(super) cancel: CancellationToken,
    pub(super) permits: Semaphore,
    /// Sends to record, written in batches.
    pub(super) marks: mpsc::UnboundedSender<Mark>,
    /// Leases to give back once the database answers again.
    pub(super) releases: std::sync::Mutex<Vec<Release>>,
    /// Rows became sendable without a commit to wake the sender (the sweep put lost rows
    /// back): claim now, not at the next poll.
    pub(super) claim_now: Notify,
    /// Streams may be waiting for a slot: the last claim filled every free slot before its
    /// scan had visited every stream. Stream tasks then give their slot up after a time
    /// slice (see `send::SLICE`).
    pub(super) streams_waiting: AtomicBool,
}

/// A lease the sender could not give back when it was done with it (the database did not
/// answer). Left alone, it would hold its stream back until it ran out (30 s by default), and
/// its rows would then be looked up in EventoDB as if they might have been sent.
#[derive(Debug)]
pub(super) enum Release {
    /// Every lease of a claim that failed: its commit may have taken effect, and nothing was
    /// sent under it.
    Claim { owner: String },
    /// A stream task's lease, to shrink to the rows up to `after_seq` (sent, and perhaps not
    /// recorded yet: those stay fenced).
    Stream {
        stream: String,
        owner: String,
        after_seq: i64,
    },
}

impl<DB: Backend> Shared<DB> {
    /// Keeps `release` for the next try.
    pub(super) fn release_later(&self, release: Release) {
        self.releases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(release);
    }

    /// Tries the releases kept for later, in order. At the first that fails (the database
    /// still does not answer, and each try may wait for the pool's acquire timeout) it keeps
    /// that one and the rest for the next time.
    async fn retry_releases(&self) {
        let mut pending = std::mem::take(
            &mut *self
                .releases
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_iter();
        while let Some(release) = pending.next() {
            let (pool, namespace) = (self.outbox.pool(), self.outbox.namespace());
            let done = match &release {
                Release::Claim { owner } => DB::drop_leases(pool, namespace, owner).await,
                Release::Stream {
                    stream,
                    owner,
                    after_seq,
                } => DB::release(pool, namespace, stream, owner, *after_seq).await,
            };
            if done.is_err() {
                let mut kept = self
                    .releases
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                kept.splice(0..0, std::iter::once(release).chain(pending));
                return;
            }
            tracing::debug!(?release, "outbox lease given back");
        }
    }
}

/// Runs until `cancel`; then waits for the stream tasks, which finish their current send.
pub(super) async fn run<DB: Backend>(
    outbox: Outbox<DB>,
    options: SenderOptions,
    owner: String,
    cancel: CancellationToken,
    mut wake: watch::Receiver<u64>,
) -> Result<()> {
    let span = tracing::info_span!(
        "outbox_sender",
        namespace = %outbox.namespace(),
        worker = %owner
    );
    let (marks, marks_rx) = mpsc::unbounded_channel();
    let recorder = record(outbox.pool().clone(), marks_rx, options.lease).instrument(span.clone());
    let shared = Arc::new(Shared {
        permits: Semaphore::new(options.concurrency),
        marks,
        releases: std::sync::Mutex::default(),
        claim_now: Notify::new(),
        streams_waiting: AtomicBool::new(false),
        outbox,
        options,
        owner,
        cancel: cancel.clone(),
    });
    // Beside the claims, never in their way: see `housekeeping`.
    let purging = super::housekeeping::purge_loop(Arc::clone(&shared)).instrument(span.clone());
    let verifying = super::housekeeping::verify_loop(Arc::clone(&shared)).instrument(span.clone());
    let main = async move {
        tracing::info!("outbox sender started");
        let options = &shared.options;
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut wake_alive = true;
        // Recorded sends unblock their streams' next rows (a stream whose last sent row was
        // not yet recorded is not claimable): claim again then, not at the next poll.
        let mut recorded = crate::outbox::wake::sent_rows();
        let mut db_failures = 0u32;
        let mut gauges = crate::metrics::OutboxGauges::new();
        // Where the next claim's scan of stream heads starts (round robin over streams).
        let mut cursor = String::new();
        // Numbers the claims: each leases its rows under a token of its own.
        let mut claims = 0u64;
        let mut rounds = super::pace::ClaimRounds::default();
        while !cancel.is_cancelled() {
            if let Some(at) = rounds.paused_until(Instant::now()) {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep_until(at) => {}
                }
            }
            // Free the slots of every task that has finished, not only the one that woke us:
            // the claim below then fills them all at once (joining one task per claim let a
            // wave of streams that ended together be replaced one stream per claim).
            while let Some(joined) = tasks.try_join_next() {
                report(joined);
            }
            gauges.refresh(&shared.outbox);
            shared.retry_releases().await;
            let mut claimed = 0;
            let mut scan_on = false;
            if tasks.len() < options.concurrency {
                let free = options.concurrency - tasks.len();
                let started = Instant::now();
                let claim = claim(&shared, free, &mut cursor, &mut claims, |batch| {
                    tasks.spawn(send_stream(Arc::clone(&shared), batch).in_current_span());
                });
                match claim.await {
                    Ok(ClaimOutcome { rows, reached_end }) => {
                        tracing::trace!(claimed_rows = rows, reached_end, "outbox claim");
                        db_failures = 0;
                        claimed = rows;
                        scan_on = rounds.claimed(
                            started,
                            Instant::now(),
                            rows,
                            reached_end,
                            options.poll_interval,
                        );
                        // Streams not yet visited may be sendable.
                        shared.streams_waiting.store(!reached_end, Ordering::Relaxed);
                    }
                    Err(error) => {
                        db_failures = db_failures.saturating_add(1);
                        let delay = super::send::backoff(
                            options.retry_initial,
                            options.retry_max,
                            i64::from(db_failures),
                        );
                        tracing::warn!(error = crate::error::log_field(&error), retry_in = ?delay, "outbox claim failed");
                        tokio::select! {
                            () = cancel.cancelled() => break,
                            () = tokio::time::sleep(delay) => continue,
                        }
                    }
                }
            }
            if (claimed > 0 || scan_on) && tasks.len() < options.concurrency {
                continue;
            }
            let mut sleep_for = options.poll_interval;
            if claimed == 0 && tasks.is_empty() {
                match DB::next_due(shared.outbox.pool(), shared.outbox.namespace()).await {
                    Ok(Some(due)) => sleep_for = sleep_for.min(due + Duration::from_millis(1)),
                    Ok(None) => {}
                    Err(error) => tracing::warn!(error = crate::error::log_field(&error), "outbox next-due query failed"),
                }
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => report(joined),
                changed = wake.changed(), if wake_alive => {
                    if changed.is_err() {
                        wake_alive = false;
                    }
                }
                _ = recorded.changed() => {}
                () = shared.claim_now.notified() => {}
                () = tokio::time::sleep(sleep_for) => {}
            }
        }
        tracing::debug!(in_flight = tasks.len(), "outbox sender stopping");
        while let Some(joined) = tasks.join_next().await {
            report(joined);
        }
        shared.retry_releases().await;
        // Dropping `shared` closes the record channel once the housekeeping loops have
        // stopped too: the recorder writes what is left.
        drop(shared);
        Ok(())
    }
    .instrument(span);
    let (result, (), (), ()) = tokio::join!(main, recorder, purging, verifying);
    tracing::info!("outbox sender stopped");
    result
}

/// A send to record.
pub(super) struct Mark {
    /// `(seq, position, global_position)`
    pub(super) row: (i64, i64, i64),
    /// The sending task's sends not written yet.
    pub(super) unrecorded: Arc<super::settle::Unrecorded>,
}

/// Writes recorded sends in batches (one statement each), so the database is not the
/// bottleneck. A batch that cannot be written is tried again, with backoff, for up to
/// `patience` (the lease): a database that restarts or fails over comes back within that, and
/// the streams then go on at once. Until the sends are recorded, the lease keeps their rows
/// from being sent again. A batch given up leaves its rows leased: the next claimer after the
/// lease checks them against EventoDB (they are found, not sent again). Written late, after
/// another sender found them, a record changes nothing: the rows are sent either way.
async fn record<DB: Backend>(
    pool: sqlx::Pool<DB>,
    mut marks: mpsc::UnboundedReceiver<Mark>,
    patience: Duration,
) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    let mut rows = Vec::with_capacity(RECORD_BATCH);
    let mut busy = false;
    while next_batch(&mut marks, &mut batch, busy).await {
        busy = batch.len() >= RECORD_BUSY;
        rows.clear();
        rows.extend(batch.iter().map(|mark| mark.row));
        let give_up_at = Instant::now() + patience;
        let mut failures = 0i64;
        loop {
            match DB::mark_sent_many(&pool, &rows).await {
                Ok(()) => {
                    crate::outbox::wake::rows_sent();
                    batch
                        .iter()
                        .for_each(|mark| mark.unrecorded.written(mark.row.0));
                    break;
                }
                Err(error) => {
                    failures += 1;
                    let wait = super::send::backoff(RECORD_RETRY, RECORD_RETRY_MAX, failures);
                    if Instant::now() + wait >= give_up_at {
                        tracing::error!(
                            error = crate::error::log_field(&error),
                            rows = batch.len(),
                            "outbox could not record sends; they are checked against EventoDB after the lease"
                        );
                        break;
                    }
                    tracing::warn!(error = crate::error::log_field(&error), rows = batch.len(), retry_in = ?wait, "outbox could not record sends; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
        batch.clear();
    }
}

/// First and longest wait between tries of a record that failed.
const RECORD_RETRY: Duration = Duration::from_millis(10);
const RECORD_RETRY_MAX: Duration = Duration::from_secs(1);

/// Most sends one record statement writes.
const RECORD_BATCH: usize = 1000;

/// A batch at least this large means sends arrive faster than they are recorded.
const RECORD_BUSY: usize = 16;

/// How long a busy recorder waits for more sends before it writes. Each statement rewrites
/// every page its rows touch (index leaves of each stream, table pages), so larger batches
/// cost less per row: on SQLite, 25 µs per row in batches of 40 against 14 in batches of
/// 100 (measured outside the sender). In the outbox bench it made a fourth to a fifth as many
/// record statements, and PostgreSQL's processes used about a third less CPU per event. An
/// idle recorder writes a lone send at once.
const RECORD_LINGER: Duration = Duration::from_millis(2);

/// Waits for the next sends to record and puts them in `batch` (empty on entry): all that are
/// waiting, and when `busy`, those arriving within [`RECORD_LINGER`]. False once every sender
/// is gone and nothing is left.
async fn next_batch<T>(
    marks: &mut mpsc::UnboundedReceiver<T>,
    batch: &mut Vec<T>,
    busy: bool,
) -> bool {
    if marks.recv_many(batch, RECORD_BATCH).await == 0 {
        return false;
    }
    if busy {
        let linger = tokio::time::sleep(RECORD_LINGER);
        tokio::pin!(linger);
        while batch.len() < RECORD_BATCH {
            let room = RECORD_BATCH - batch.len();
            tokio::select! {
                received = marks.recv_many(batch, room) => if received == 0 { break },
                () = &mut linger => break,
            }
        }
    }
    true
}

/// What one claim handed out.
struct ClaimOutcome {
    /// Rows leased and handed to stream tasks.
    rows: usize,
    /// The scan reached the last stream without filling the free slots.
    reached_end: bool,
}

/// Fills up to `free` slots: scans the stream heads and leases the picked streams in
/// transactions of at least [`first_lease_rows`] rows, then twice as many each time, handing
/// each transaction's streams to `spawn` as soon as it commits. Each transaction leases under
/// a token of its own, so a failed one gives back only its own leases.
async fn claim<DB: Backend>(
    shared: &Shared<DB>,
    free: usize,
    cursor: &mut String,
    claims: &mut u64,
    mut spawn: impl FnMut(StreamBatch),
) -> Result<ClaimOutcome> {
    let (pool, namespace) = (shared.outbox.pool(), shared.outbox.namespace());
    let (lease, per_stream) = (shared.options.lease, shared.options.batch_size);
    let mut token = || {
        *claims += 1;
        (format!("{}#{claims}", shared.owner), Instant::now())
    };
    // Its commit may have taken effect: its leases are given back once the database answers
    // (nothing was sent under them).
    let failed = |owner: String| shared.release_later(Release::Claim { owner });
    let mut min_rows = first_lease_rows(DB::KIND, per_stream);
    let (owner, claimed_at) = token();
    let claim = match DB::claim(
        pool, namespace, &owner, lease, free, per_stream, cursor, min_rows,
    )
    .await
    {
        Ok(claim) => claim,
        Err(error) => {
            failed(owner);
            return Err(error);
        }
    };
    let mut rows = claim.rows.len();
    by_stream(claim.rows, &owner, claimed_at)
        .into_iter()
        .for_each(&mut spawn);
    let mut rest = claim.rest.as_slice();
    while !rest.is_empty() {
        min_rows = min_rows.saturating_mul(2);
        let (owner, claimed_at) = token();
        let leased =
            DB::lease_streams(pool, namespace, &owner, lease, per_stream, rest, min_rows).await;
        let (leased, used) = match leased {
            Ok(leased) => leased,
            Err(error) => {
                failed(owner);
                return Err(error);
            }
        };
        rows += leased.len();
        by_stream(leased, &owner, claimed_at)
            .into_iter()
            .for_each(&mut spawn);
        rest = &rest[used..];
    }
    Ok(ClaimOutcome {
        rows,
        reached_end: claim.reached_end,
    })
}

/// How many rows a claim's first transaction leases at least before it commits (each next
/// one leases twice as many). Leasing a stream reads its rows (on SQLite 1.5 to 2 ms for a
/// batch of 200), and no stream is sent before its transaction commits.
/// - SQLite: one batch (`batch_size`). With all streams in one transaction, every free slot
///   stayed idle for 50 to 60 ms, at the start and whenever a wave of streams ended together:
///   in the statement log of a 20,000-event drain the first send came 65 ms after the sender
///   started, against 12 to 18 ms with doubling transactions. In three interleaved pairs of
///   outbox bench runs, SQLite drained 28,599 to 29,521 events/s against 24,213 to 27,049 in
///   one transaction. Counting rows, not streams, keeps many short streams in one
///   transaction: a transaction per stream or two made the quick start's sender (one SQLite
///   connection, the application writing beside it) fall behind, commit to handled p50 250
///   to 780 ms against 70 to 130.
/// - PostgreSQL: all of them. Doubling did not make its drain faster (the database's own CPU
///   bounds it there), and each transaction is one more commit.
fn first_lease_rows(kind: DialectKind, batch_size: i64) -> usize {
    match kind {
        DialectKind::Sqlite => usize::try_from(batch_size).unwrap_or(usize::MAX).max(1),
        DialectKind::Postgres => usize::MAX,
    }
}

/// Groups claimed rows by stream, keeping `seq` order within each stream.
fn by_stream(rows: Vec<Claimed>, lease_owner: &str, claimed_at: Instant) -> Vec<StreamBatch> {
    let mut batches: Vec<StreamBatch> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for row in rows {
        match index.get(&row.stream) {
            Some(&at) => batches[at].rows.push(row),
            None => {
                index.insert(row.stream.clone(), batches.len());
                batches.push(StreamBatch {
                    stream: row.stream.clone(),
                    rows: vec![row],
                    lease_owner: lease_owner.to_owned(),
                    claimed_at,
                });
            }
        }
    }
    batches
}

fn report(joined: std::result::Result<(), tokio::task::JoinError>) {
    if let Err(error) = joined
        && error.is_panic()
    {
        tracing::error!(%error, "outbox stream task panicked; its rows are retried after the lease");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(seq: i64, stream: &str) -> Claimed {
        Claimed {
            seq,
            id: format!("id-{seq}"),
            stream: stream.into(),
            message: crate::client::NewMessage::new("T", json!({})),
            expected_version: None,
            attempts: 0,
            outcome_unknown: false,
            more_after: false,
        }
    }

    /// The sender's shared state over `pool`.
    fn shared(pool: sqlx::SqlitePool) -> Shared<sqlx::Sqlite> {
        let kit = crate::Kit::builder("http://127.0.0.1:9")
            .database(pool)
            .build()
            .unwrap();
        Shared {
            outbox: kit.outbox().clone(),
            options: SenderOptions::default(),
            owner: "test".into(),
            cancel: CancellationToken::new(),
            permits: Semaphore::new(1),
            marks: mpsc::unbounded_channel().0,
            releases: std::sync::Mutex::default(),
            claim_now: Notify::new(),
            streams_waiting: AtomicBool::new(false),
        }
    }

    #[tokio::test]
    async fn kept_releases_wait_for_the_database_in_order_and_then_go() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("outbox.db").display()
        );
        let up = sqlx::SqlitePool::connect(&url).await.unwrap();
        crate::migrate(&up).await.unwrap();
        for owner in ["a#1", "b#2"] {
            sqlx::query(
                "INSERT INTO eventodb_kit_outbox_leases
                    (namespace, stream, owner, lease_until, from_seq, through_seq)
                VALUES ('default', ?1, ?1, '9999-01-01T00:00:00.000Z', 1, 5)",
            )
            .bind(owner)
            .execute(&up)
            .await
            .unwrap();
        }
        // A sender whose database does not answer keeps both, in order, after one try.
        let down = sqlx::SqlitePool::connect(&url).await.unwrap();
        down.close().await;
        let down = shared(down);
        down.release_later(Release::Claim {
            owner: "a#1".into(),
        });
        down.release_later(Release::Stream {
            stream: "b#2".into(),
            owner: "b#2".into(),
            after_seq: 2,
        });
        down.retry_releases().await;
        let kept = std::mem::take(&mut *down.releases.lock().unwrap());
        let owners: Vec<&str> = kept
            .iter()
            .map(|release| match release {
                Release::Claim { owner } | Release::Stream { owner, .. } => owner.as_str(),
            })
            .collect();
        assert_eq!(owners, ["a#1", "b#2"]);
        // Once it answers, both go: the failed claim's lease is deleted, the stream task's
        // shrunk to the rows it sent.
        let back = shared(up.clone());
        back.releases.lock().unwrap().extend(kept);
        back.retry_releases().await;
        assert!(back.releases.lock().unwrap().is_empty());
        let leases: Vec<(String, i64)> = sqlx::query_as(
            "SELECT owner, through_seq FROM eventodb_kit_outbox_leases ORDER BY owner",
        )
        .fetch_all(&up)
        .await
        .unwrap();
        assert_eq!(leases, vec![("b#2".to_owned(), 2)]);
    }

    /// Counts the sender's claims (its `outbox claim` trace events).
    struct CountClaims(Arc<std::sync::atomic::AtomicUsize>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountClaims {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            if event.metadata().fields().field("claimed_rows").is_some() {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// With more streams held back than one claim scans (EventoDB is down and every stream
    /// waits out its backoff), a round that finds nothing ends, and the sender waits for a
    /// wake-up: before, such a round never ended, and the sender scanned without a pause
    /// for as long as the streams were held.
    #[tokio::test(flavor = "current_thread")]
    async fn held_streams_are_not_scanned_over_and_over() {
        use tracing_subscriber::layer::SubscriberExt as _;

        let claims = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry().with(CountClaims(Arc::clone(&claims)));
        let _guard = tracing::subscriber::set_default(subscriber);
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::outbox::backend::sqlite_file_pool(&dir).await;
        let outbox = shared(pool.clone()).outbox;
        let streams = crate::outbox::backend::HEAD_SCAN + 44;
        let messages = (0..streams)
            .map(|n| {
                crate::outbox::OutboxMessage::new(
                    format!("held-{n}"),
                    crate::outbox::RawMessage::new("T", json!({ "n": n })),
                )
            })
            .collect();
        let mut tx = pool.begin().await.unwrap();
        outbox.write_batch(&mut *tx, messages).await.unwrap();
        tx.commit().await.unwrap();
        let poll = Duration::from_millis(500);
        let options = SenderOptions::default()
            .poll_interval(poll)
            .retry_backoff(Duration::from_secs(600), Duration::from_secs(600));
        let sender = outbox.spawn_sender(options).await.unwrap();
        let tried = tokio::time::timeout(Duration::from_secs(120), async {
            loop {
                let (untried,): (i64,) =
                    sqlx::query_as("SELECT count(*) FROM eventodb_kit_outbox WHERE attempts = 0")
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                if untried == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(tried.is_ok(), "every stream was tried once");
        let before = claims.load(Ordering::Relaxed);
        tokio::time::sleep(poll * 4).await;
        let scanned = claims.load(Ordering::Relaxed) - before;
        sender.shutdown().await.unwrap();
        // A round is two claims here; a poll starts one. (Without a pause: thousands.)
        assert!(scanned <= 16, "{scanned} claims in four poll intervals");
    }

    #[test]
    fn sqlite_leases_one_batch_first_and_postgres_all() {
        assert_eq!(first_lease_rows(DialectKind::Sqlite, 200), 200);
        assert_eq!(first_lease_rows(DialectKind::Postgres, 200), usize::MAX);
    }

    /// One claim over 7 streams of 2 rows each, with `batch_size` rows per stream: what went
    /// to the stream tasks, `(lease token, stream, rows)`, and the lease table (token, stream).
    async fn claim_seven_streams(
        batch_size: i64,
    ) -> (Vec<(String, String, usize)>, Vec<(String, String)>) {
        let (batches, leases) = claim_seven_streams_batches(batch_size).await;
        let handed = batches
            .into_iter()
            .map(|batch| (batch.lease_owner, batch.stream, batch.rows.len()))
            .collect();
        (handed, leases)
    }

    /// What [`claim_seven_streams`] hands to the stream tasks, whole.
    async fn claim_seven_streams_batches(
        batch_size: i64,
    ) -> (Vec<StreamBatch>, Vec<(String, String)>) {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::outbox::backend::sqlite_file_pool(&dir).await;
        let mut shared = shared(pool.clone());
        shared.options = shared.options.clone().batch_size(batch_size);
        let mut tx = pool.begin().await.unwrap();
        let messages = (0..14)
            .map(|n| {
                crate::outbox::OutboxMessage::new(
                    format!("s-{}", n % 7),
                    crate::outbox::RawMessage::new("T", json!({ "n": n })),
                )
            })
            .collect();
        shared.outbox.write_batch(&mut *tx, messages).await.unwrap();
        tx.commit().await.unwrap();

        let (mut cursor, mut claims) = (String::new(), 0);
        let mut handed = Vec::new();
        let outcome = claim(&shared, 8, &mut cursor, &mut claims, |batch| {
            handed.push(batch);
        })
        .await
        .unwrap();
        assert_eq!(
            (outcome.rows, outcome.reached_end),
            (7 * batch_size.min(2) as usize, true)
        );
        let leases =
            sqlx::query_as("SELECT owner, stream FROM eventodb_kit_outbox_leases ORDER BY stream")
                .fetch_all(&pool)
                .await
                .unwrap();
        (handed, leases)
    }

    /// Each lease transaction's streams go to their tasks under a token of its own, whole
    /// and in name order, and every stream with rows is taken once. On SQLite the first
    /// transaction leases one batch of rows, the next ones twice as many each.
    #[tokio::test]
    async fn a_claim_hands_out_each_lease_transaction_under_its_own_token() {
        // Batches of 2 rows: transactions of 2, 4 and 8 rows (1, 2 and 4 streams).
        let (handed, leases) = claim_seven_streams(2).await;
        let expected: Vec<(String, String, usize)> = [1, 2, 2, 3, 3, 3, 3]
            .iter()
            .zip(0..)
            .map(|(claim, stream)| (format!("test#{claim}"), format!("s-{stream}"), 2))
            .collect();
        assert_eq!(handed, expected);
        let owners: Vec<(String, String)> = expected
            .into_iter()
            .map(|(owner, stream, _)| (owner, stream))
            .collect();
        assert_eq!(leases, owners);

        // Batches of 200: short streams all go in one transaction.
        let (handed, leases) = claim_seven_streams(200).await;
        let expected: Vec<(String, String, usize)> = (0..7)
            .map(|stream| ("test#1".to_owned(), format!("s-{stream}"), 2))
            .collect();
        assert_eq!(handed, expected);
        assert!(leases.iter().all(|(owner, _)| owner == "test#1"));
    }

    /// A stream task claims on only when its stream had a row after its batch: a batch that
    /// took the stream's last row (a full one included) ends the task.
    #[tokio::test]
    async fn a_claim_says_whether_a_stream_has_rows_after_the_batch() {
        for (batch_size, rows, more) in [(1, 1, true), (2, 2, false), (3, 2, false)] {
            let (batches, _) = claim_seven_streams_batches(batch_size).await;
            assert_eq!(batches.len(), 7);
            for batch in batches {
                let flags: Vec<bool> = batch.rows.iter().map(|row| row.more_after).collect();
                let mut expected = vec![false; rows];
                expected[rows - 1] = more;
                assert_eq!(flags, expected, "batches of {batch_size}, {}", batch.stream);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_recorder_writes_at_once_and_a_busy_one_waits_for_more() {
        let (marks, mut rx) = mpsc::unbounded_channel();
        let mut batch = Vec::new();
        marks.send((1, 0, 0)).unwrap();
        let started = Instant::now();
        assert!(next_batch(&mut rx, &mut batch, false).await);
        assert_eq!(batch, vec![(1, 0, 0)]);
        assert_eq!(started.elapsed(), Duration::ZERO, "idle: no wait");

        batch.clear();
        let late = marks.clone();
        tokio::spawn(async move {
            // Tokio's timers tick in milliseconds: 1 ms is inside the 2 ms linger, 5 ms is not.
            late.send((2, 0, 0)).unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
            late.send((3, 0, 0)).unwrap();
            tokio::time::sleep(Duration::from_millis(4)).await;
            late.send((4, 0, 0)).unwrap();
        });
        let started = Instant::now();
        assert!(next_batch(&mut rx, &mut batch, true).await);
        let seqs: Vec<i64> = batch.iter().map(|mark| mark.0).collect();
        assert_eq!(seqs, vec![2, 3], "busy: what arrives within the linger");
        assert_eq!(started.elapsed(), RECORD_LINGER);

        batch.clear();
        assert!(next_batch(&mut rx, &mut batch, false).await);
        assert_eq!(batch, vec![(4, 0, 0)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_recorder_writes_a_full_batch_without_waiting() {
        let (marks, mut rx) = mpsc::unbounded_channel();
        for seq in 0..=i64::try_from(RECORD_BATCH).unwrap() {
            marks.send((seq, 0, 0)).unwrap();
        }
        let mut batch = Vec::new();
        let started = Instant::now();
        assert!(next_batch(&mut rx, &mut batch, true).await);
        assert_eq!(batch.len(), RECORD_BATCH);
        assert_eq!(started.elapsed(), Duration::ZERO);
        batch.clear();
        drop(marks);
        assert!(next_batch(&mut rx, &mut batch, true).await, "the rest");
        assert_eq!(batch.len(), 1);
        batch.clear();
        assert!(
            !next_batch(&mut rx, &mut batch, true).await,
            "closed and empty"
        );
    }

    #[test]
    fn groups_by_stream_in_order() {
        let batches = by_stream(
            vec![
                row(1, "a"),
                row(2, "b"),
                row(3, "a"),
                row(4, "c"),
                row(5, "b"),
            ],
            "sender#1",
            Instant::now(),
        );
        let seen: Vec<(String, Vec<i64>)> = batches
            .into_iter()
            .map(|b| (b.stream, b.rows.iter().map(|r| r.seq).collect()))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("a".into(), vec![1, 3]),
                ("b".into(), vec![2, 5]),
                ("c".into(), vec![4])
            ]
        );
    }
}
