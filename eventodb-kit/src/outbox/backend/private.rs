//! The sealed half of [`Backend`](super::Backend): only this crate can implement it.
//! Its items are unnameable outside the crate, so crate-private types in its signatures
//! leak nothing.
#![allow(unreachable_pub, private_interfaces)]

use std::future::Future;
use std::time::Duration;

use sqlx::Pool;

use super::{DialectKind, Migration, OutboxRow, OutboxStatus};
use crate::error::Result;
use crate::outbox::message::CheckedMessage;

/// Outcome of inserting an outbox row.
#[derive(Debug)]
pub enum Inserted {
    /// A new row.
    New,
    /// The idempotency key was taken: the winner's id and content hash.
    Existing { id: String, content_hash: String },
}

/// An outbox row as a discard decides on it: read once before the row is looked up in
/// EventoDB and again under the claim lock, to see that nothing moved in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscardState {
    pub stream: String,
    pub status: String,
    pub attempts: i64,
    pub outcome_unknown: bool,
    pub expected_version: Option<i64>,
    /// The stream's lease: owner, end (as text), first and last `seq` it covers.
    pub lease: Option<(String, String, i64, i64)>,
    /// A live lease covers the row while it is pending: a sender holds it. Or its last
    /// attempt's outcome is unknown and the wait before its lookup has not passed: that
    /// write may still be running in EventoDB, and land after a lookup made now.
    pub in_flight: bool,
    /// A lease that ran out covers the row while it is pending: a send made under it may
    /// have landed without being recorded.
    pub lapsed: bool,
}

impl DiscardState {
    /// Pending or failed.
    pub fn unsent(&self) -> bool {
        matches!(self.status.as_str(), "pending" | "failed")
    }
}

/// What [`Backend::discard`](super::Backend) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    /// The row is discarded.
    Done,
    /// There is no unsent row with that id (any more).
    Gone,
    /// A sender holds the row.
    InFlight,
    /// The row or its lease changed since it was read: decide again.
    Moved,
}

/// A row claimed by a sender, with everything needed to send it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub seq: i64,
    pub id: String,
    pub stream: String,
    /// Built once at the claim: every attempt sends it as it is, without a copy.
    pub message: crate::client::NewMessage,
    pub expected_version: Option<i64>,
    pub attempts: i64,
    pub outcome_unknown: bool,
    /// Set on the last row a claim took of its stream when the stream had a row after
    /// it: only then does the stream task claim on (see `lease_stream_rows`).
    pub more_after: bool,
}

/// What one claim found.
#[derive(Debug)]
pub struct Claim {
    /// The rows leased, stream after stream, each stream's rows in `seq` order.
    pub rows: Vec<Claimed>,
    /// Streams picked but not leased yet (the caller leases them with `lease_streams`).
    pub rest: Vec<String>,
    /// The scan reached the last stream without filling the free slots (the next one starts
    /// from the first stream again).
    pub reached_end: bool,
}

/// A sent row as the sweep's queries read it: (seq, id, stream, position, global position,
/// requeued, unverified again).
pub(crate) type SentRow = (i64, String, String, Option<i64>, Option<i64>, i64, i64);

impl From<SentRow> for Unverified {
    fn from(
        (seq, id, stream, position, global_position, requeued, unverified_again): SentRow,
    ) -> Self {
        Unverified {
            seq,
            id,
            stream,
            position: position.unwrap_or(-1),
            global_position: global_position.unwrap_or(-1),
            requeued,
            unverified_again,
        }
    }
}

/// A sent row awaiting verification (or, for the sweep's check of the newest verified rows,
/// verified already).
#[derive(Debug, Clone)]
pub struct Unverified {
    pub seq: i64,
    pub id: String,
    pub stream: String,
    pub position: i64,
    pub global_position: i64,
    /// How often the row was put back before: the sweep puts it back only if no other
    /// sweep did since it read the row.
    pub requeued: i64,
    /// How often a loss made the row unverified again: the sweep marks it verified only if
    /// no other sweep did since it read the row (its check may predate the loss).
    pub unverified_again: i64,
}

/// The statements of one database, and the operations built on them.
#[allow(private_interfaces)]
pub trait Dialect: sqlx::Database + Sized {
    /// Which dialect this is.
    const KIND: DialectKind;
    /// The migrations, in order.
    const MIGRATIONS: &'static [Migration];

    /// Applies the missing migrations (under a lock; one transaction).
    fn migrate_up(pool: &Pool<Self>) -> impl Future<Output = Result<Vec<i64>>> + Send;
    /// Reverts migrations above `target` (under a lock; one transaction).
    fn migrate_down(
        pool: &Pool<Self>,
        target: i64,
    ) -> impl Future<Output = Result<Vec<i64>>> + Send;

    /// Inserts a row in the caller's transaction; on an idempotency-key conflict, reads the
    /// winner.
    fn insert(
        conn: &mut Self::Connection,
        namespace: &str,
        message: &CheckedMessage,
    ) -> impl Future<Output = Result<Inserted>> + Send;
    /// Arranges for the sender to be woken when the next write on `conn` commits (the
    /// caller's transaction, or on a bare connection the insert itself).
    fn after_insert(conn: &mut Self::Connection) -> impl Future<Output = Result<()>> + Send;
    /// A channel that changes when rows of `namespace` may have been committed; any
    /// task it needs stops on `cancel`.
    fn wake_source(
        pool: &Pool<Self>,
        namespace: &str,
        cancel: tokio_util::sync::CancellationToken,
    ) -> impl Future<Output = Result<tokio::sync::watch::Receiver<u64>>> + Send;
    /// A transaction for the application to write in, safe to drop midway: `BEGIN
    /// IMMEDIATE` on SQLite (see [`Kit::begin`](crate::Kit::begin)), a plain `BEGIN` on
    /// PostgreSQL.
    fn begin_application(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, Self>>> + Send;
    /// A pool of the sender's own for the database of `pool`, when it needs one (SQLite:
    /// connections that never wait in SQLite's busy handler, and whose statements the
    /// sender's operations try again themselves). `None`: the sender uses `pool`.
    fn sender_pool(pool: &Pool<Self>) -> impl Future<Output = Result<Option<Pool<Self>>>> + Send;

    /// Picks up to `streams` streams whose head (oldest unsent row) can be sent now, and
    /// leases them in one transaction under the claim lock, in order, until it holds
    /// `first_rows` rows: per stream a prefix of at most `per_stream` rows, to `owner` for
    /// `lease`. The scan visits at most [`HEAD_SCAN`](super::HEAD_SCAN) streams, in name
    /// order from `cursor`, and advances it: successive claims go round all streams, so
    /// none starves behind busy, parked or backing-off ones. The streams picked and not
    /// leased are returned for `lease_streams`.
    #[allow(clippy::too_many_arguments)]
    fn claim(
        pool: &Pool<Self>,
        namespace: &str,
        owner: &str,
        lease: Duration,
        streams: usize,
        per_stream: i64,
        cursor: &mut String,
        first_rows: usize,
    ) -> impl Future<Output = Result<Claim>> + Send;
    /// Leases, in one transaction under the claim lock, a prefix of at most `per_stream`
    /// sendable rows of `streams` (picked by a `claim`), in order, to `owner` for `lease`,
    /// until it holds `min_rows` rows. A stream another lease still fences, or whose head
    /// cannot be sent any more, gives nothing. Returns the rows, stream after stream, each
    /// stream's rows in `seq` order, and how many of `streams` it went through.
    fn lease_streams(
        pool: &Pool<Self>,
        namespace: &str,
        owner: &str,
        lease: Duration,
        per_stream: i64,
        streams: &[String],
        min_rows: usize,
    ) -> impl Future<Output = Result<(Vec<Claimed>, usize)>> + Send;
    /// Claims the next rows of one stream for the task already sending it: its own rows
    /// (sent, perhaps not recorded yet) do not hold the stream back; any other lease does
    /// (also one of the same owner: another task of this sender), and so does a missing
    /// one. `taken` is the task's rows that may still be unsent in the database (its sends
    /// not recorded yet), in order, ending with the last row it sent (nothing is claimed for
    /// a task that sent none). Any other unsent row below that one must go first: a row
    /// whose transaction drew its `seq` before the task's rows and committed after the
    /// claim, or one the verification sweep put back. Nothing is claimed then; the task
    /// settles and the main claim takes the stream from that row. On PostgreSQL it takes no
    /// claim lock, only the stream's lease row.
    fn claim_stream(
        pool: &Pool<Self>,
        namespace: &str,
        stream: &str,
        owner: &str,
        lease: Duration,
        limit: i64,
        taken: &[i64],
    ) -> impl Future<Output = Result<Vec<Claimed>>> + Send;
    /// Extends the lease of `owner` on `stream`; returns 1, or 0 when the lease was lost
    /// to another sender.
    fn renew(
        pool: &Pool<Self>,
        namespace: &str,
        stream: &str,
        owner: &str,
        lease: Duration,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Shrinks the lease of `owner` on `stream` to the rows up to `after_seq` (those
    /// sent and perhaps not yet recorded stay fenced).
    fn release(
        pool: &Pool<Self>,
        namespace: &str,
        stream: &str,
        owner: &str,
        after_seq: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Shrinks the lease of `owner` on `stream` to no row, once every send made under it is
    /// recorded (pending rows in its range are then none of its own). True if a pending row
    /// lay in the range: one committed after the claim, inside it, that can be claimed now.
    fn settle(
        pool: &Pool<Self>,
        namespace: &str,
        stream: &str,
        owner: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Deletes every lease of `owner`: the token of a claim that failed, so that nothing
    /// was sent under it, though its commit may have taken effect.
    fn drop_leases(
        pool: &Pool<Self>,
        namespace: &str,
        owner: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Records several sends in one statement: `(seq, position, global_position)`;
    /// positions and time set.
    fn mark_sent_many(
        pool: &Pool<Self>,
        sent: &[(i64, i64, i64)],
    ) -> impl Future<Output = Result<()>> + Send;
    /// Records a transient failure: retry after `delay`.
    fn mark_retry(
        pool: &Pool<Self>,
        seq: i64,
        error: &str,
        delay: Duration,
        outcome_unknown: bool,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Records a permanent failure: the row parks its stream.
    fn mark_failed(
        pool: &Pool<Self>,
        seq: i64,
        error: &str,
        outcome_unknown: bool,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Clears the outcome-unknown flag after the stream proved the event absent, if the row
    /// was not tried again since the claim read `attempts`; returns whether it did. A
    /// sender that took the stream over after this one's lease ran out may have tried it
    /// meanwhile, with an outcome unknown again: that flag must stay for its next lookup.
    fn clear_unknown(
        pool: &Pool<Self>,
        seq: i64,
        attempts: i64,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Counts for health checks.
    fn status(
        pool: &Pool<Self>,
        namespace: &str,
    ) -> impl Future<Output = Result<OutboxStatus>> + Send;
    /// One row by id.
    fn row(
        pool: &Pool<Self>,
        namespace: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<OutboxRow>>> + Send;
    /// Rows parked by a permanent failure, oldest first.
    fn failed(
        pool: &Pool<Self>,
        namespace: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<OutboxRow>>> + Send;
    /// Failed → pending, due now. `false` if no failed row has that id.
    fn retry(
        pool: &Pool<Self>,
        namespace: &str,
        id: &str,
        drop_expected_version: bool,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// The row's state and its stream's lease, `None` when there is no such row.
    fn discard_state(
        pool: &Pool<Self>,
        namespace: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<DiscardState>>> + Send;
    /// Failed or pending → discarded, under the claim lock and the stream's lease row, if the
    /// row's state is still `seen` and no sender holds it.
    fn discard(
        pool: &Pool<Self>,
        namespace: &str,
        id: &str,
        seen: &DiscardState,
    ) -> impl Future<Output = Result<Discard>> + Send;
    /// Deletes up to `batch` sent (and, if `require_verified`, verified) or discarded
    /// rows older than `retention`, and up to `batch` stream leases that ran out and
    /// fence no unsent row.
    fn purge(
        pool: &Pool<Self>,
        namespace: &str,
        retention: Duration,
        batch: i64,
        require_verified: bool,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Up to `limit` sent rows not yet verified, sent at least `older_than` ago.
    fn unverified(
        pool: &Pool<Self>,
        namespace: &str,
        older_than: Duration,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Unverified>>> + Send;
    /// Up to `limit` verified rows, the most recently sent first.
    fn newest_verified(
        pool: &Pool<Self>,
        namespace: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Unverified>>> + Send;
    /// Makes the verified rows `seqs` unverified, for the sweep to read back again; returns
    /// how many.
    fn unverify_many(pool: &Pool<Self>, seqs: &[i64]) -> impl Future<Output = Result<u64>> + Send;
    /// Marks rows verified (one statement), given as `(seq, requeued, unverified_again)` as
    /// the sweep read them: a row put back and sent again since (by another process's sweep)
    /// is not the send this sweep found in EventoDB, and one made unverified again since (a
    /// loss another sweep found) may be gone from EventoDB since this sweep's check: both
    /// stay unverified.
    fn mark_verified_many(
        pool: &Pool<Self>,
        rows: &[(i64, i64, i64)],
    ) -> impl Future<Output = Result<()>> + Send;
    /// Puts a sent row whose event EventoDB lost back to pending (without its expected
    /// version). `false` if the row was not sent, or was put back since the sweep read it
    /// (`requeued` differs: another process's sweep put it back, and it may be sent again
    /// already).
    fn requeue_lost(
        pool: &Pool<Self>,
        seq: i64,
        requeued: i64,
        error: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Time until the earliest pending row that is not yet due becomes due.
    fn next_due(
        pool: &Pool<Self>,
        namespace: &str,
    ) -> impl Future<Output = Result<Option<Duration>>> + Send;
}
