//! One API over two databases: the sealed [`Backend`] trait, implemented for
//! [`sqlx::Postgres`] and [`sqlx::Sqlite`], holds each dialect's SQL.
//!
//! Every statement lives in a [`Sql`] table per dialect; the code that runs them is shared
//! (generated once per database by `backend_impl!`), so both databases behave the same.

use std::time::Duration;

mod postgres;
mod sqlite;

/// A database the outbox and the consumers can keep their tables in: PostgreSQL
/// ([`sqlx::Postgres`]) or SQLite ([`sqlx::Sqlite`]). Sealed: the SQL of each dialect lives
/// in this crate.
pub trait Backend:
    sqlx::Database + private::Dialect + crate::consumer::store::private::Store
{
}

impl Backend for sqlx::Postgres {}
impl Backend for sqlx::Sqlite {}

/// Which SQL dialect a [`Backend`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialectKind {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

pub(crate) use private::{Claim, Claimed, Inserted, Unverified};

/// Counts for health checks and metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboxStatus {
    /// Rows waiting to be sent (including those waiting for a retry).
    pub pending: u64,
    /// Rows parked by a permanent failure; each holds back its stream.
    pub failed: u64,
    /// Rows sent and not yet purged.
    pub sent: u64,
    /// Sent rows not yet read back from EventoDB (see the verification sweep).
    pub unverified: u64,
    /// Rows whose event EventoDB lost after acknowledging it, found by the verification
    /// sweep and sent again (still counted after they are re-sent, until purged).
    pub lost: u64,
    /// Age of the oldest pending row.
    pub oldest_pending_age: Option<Duration>,
}

/// The state of one outbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RowStatus {
    /// Waiting to be sent.
    Pending,
    /// In EventoDB.
    Sent,
    /// Parked by a permanent failure until an operator retries or discards it.
    Failed,
    /// Discarded by an operator: never sent.
    Discarded,
}

impl RowStatus {
    pub(crate) fn parse(text: &str) -> Self {
        match text {
            "sent" => Self::Sent,
            "failed" => Self::Failed,
            "discarded" => Self::Discarded,
            _ => Self::Pending,
        }
    }
}

/// One outbox row, as an operator or a test sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// The message id (what EventoDB stores).
    pub id: uuid::Uuid,
    /// The stream the message goes to.
    pub stream: String,
    /// The message type.
    pub message_type: String,
    /// Where the row is.
    pub status: RowStatus,
    /// How many times a send was attempted.
    pub attempts: i64,
    /// The last error, for a failed or retrying row.
    pub last_error: Option<String>,
    /// An attempt may have reached EventoDB without an answer.
    pub outcome_unknown: bool,
    /// The stream position EventoDB returned.
    pub position: Option<i64>,
    /// The global position EventoDB returned.
    pub global_position: Option<i64>,
    /// The expected version the write carries.
    pub expected_version: Option<i64>,
    /// The idempotency key, if any.
    pub idempotency_key: Option<String>,
}

/// A migration step, applied by [`migrate`](crate::migrate()) and shipped as SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Version number, from 1, without gaps.
    pub version: i64,
    /// Short name, e.g. `outbox`.
    pub name: &'static str,
    /// The SQL that applies it.
    pub up: &'static str,
    /// The SQL that reverts it.
    pub down: &'static str,
}

/// How many streams one claim's skip scan visits at most (bounds the cost of a claim when
/// many streams are parked, backing off or already being sent).
pub(crate) const HEAD_SCAN: i64 = 256;

/// For tests: a pool on a new SQLite file `app.db` in `dir`, in WAL mode and migrated, as an
/// application would hand it to the outbox.
#[cfg(test)]
pub(crate) async fn sqlite_file_pool(dir: &tempfile::TempDir) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("app.db"))
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    crate::migrate(&pool).await.unwrap();
    pool
}

/// Converts a [`Duration`] to fractional seconds for an interval bind.
pub(crate) fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// How long the sender keeps trying a statement that SQLite refuses because another
/// connection holds the write lock (sqlx's default busy timeout). After that the statement
/// fails as any database error does: the sender backs off and tries again later.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(5);

/// How often the sender tries again for SQLite's write lock.
///
/// SQLite's own busy handler sleeps 1, 2, 5, 10, … and then 100 ms between tries, so a
/// connection that has waited a while checks the lock only every 100 ms, while writers that
/// just started waiting check it every few: under a steady stream of application writes the
/// sender's statements waited 0.1–1.8 s for the lock (measured in the quick start). Its own
/// connections therefore do not wait in SQLite (busy timeout 0), and it tries again itself,
/// every 10 ms (the first time sooner: [`BUSY_FIRST_POLL`]), for up to [`LOCK_WAIT`].
///
/// Not faster: a sender that tries again sooner than the application's fresh waiters seems
/// to take the lock each time it comes free, and they back off to 100 ms. In the quick start
/// (2000 events; its writer commits as fast as it can), trying every 1 ms, or after 1, 2, 5
/// and then 10 ms, gave runs of 10–19 s, against 5–7 s at 5 to 20 ms (runs one after the
/// other, so the machine's drift is in these figures). In seven interleaved runs
/// each: with SQLite's busy handler the runs took 5.5–13.0 s and the sender fell 338–1341
/// events behind the writer; trying after 1 ms and then every 10 ms, 5.5–9.0 s and 59–231.
pub(crate) const BUSY_POLL: Duration = Duration::from_millis(10);

/// The first try again comes sooner: a commit wakes the sender while its writer still holds
/// the lock (SQLite calls the commit hook before the commit ends), and the claim it starts
/// finds the lock free a moment later. Waiting the full [`BUSY_POLL`] there put commit → sent
/// at a p50 of 12.6 ms in the outbox bench, against 2.8 ms with SQLite's busy handler (one
/// run each).
pub(crate) const BUSY_FIRST_POLL: Duration = Duration::from_millis(1);

/// Whether `error` is SQLite's "the database is locked" (`SQLITE_BUSY` and its extended
/// codes): a statement that did nothing and can be tried again.
pub(crate) fn is_busy(kind: DialectKind, error: &crate::error::Error) -> bool {
    let crate::error::Error::Database {
        source: sqlx::Error::Database(error),
    } = error
    else {
        return false;
    };
    kind == DialectKind::Sqlite
        && error
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| code & 0xff == SQLITE_BUSY)
}

/// SQLite's primary result code for "the database file is locked".
const SQLITE_BUSY: i32 = 5;

/// Runs `$operation` (an `async` block, created anew for each try) until it does not fail
/// with [`is_busy`] or [`LOCK_WAIT`] has passed, trying again after [`BUSY_FIRST_POLL`] and
/// then every [`BUSY_POLL`]. Only for operations that are whole transactions (an autocommit
/// statement, or a transaction of their own): a refused statement inside a larger
/// transaction cannot be tried again alone.
macro_rules! retry_busy {
    ($operation:expr) => {{
        let started = tokio::time::Instant::now();
        let mut first = true;
        loop {
            match $operation.await {
                Err(error)
                    if $crate::outbox::backend::is_busy(KIND, &error)
                        && started.elapsed() < $crate::outbox::backend::LOCK_WAIT =>
                {
                    let wait = if first {
                        $crate::outbox::backend::BUSY_FIRST_POLL
                    } else {
                        $crate::outbox::backend::BUSY_POLL
                    };
                    first = false;
                    tokio::time::sleep(wait).await;
                }
                done => break done,
            }
        }
    }};
}

pub(crate) use retry_busy;

pub(crate) mod private {
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
        /// The scan went round every stream, from the first to the last, without filling the
        /// free slots: nothing else can be claimed now.
        pub round_done: bool,
    }

    /// A sent row awaiting verification.
    #[derive(Debug, Clone)]
    pub struct Unverified {
        pub seq: i64,
        pub id: String,
        pub stream: String,
        pub position: i64,
        pub global_position: i64,
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
        /// Arranges for the sender to be woken when the caller's transaction commits.
        fn after_insert(conn: &mut Self::Connection) -> impl Future<Output = Result<()>> + Send;
        /// A channel that changes when rows of `namespace` may have been committed; any
        /// task it needs stops on `cancel`.
        fn wake_source(
            pool: &Pool<Self>,
            namespace: &str,
            cancel: tokio_util::sync::CancellationToken,
        ) -> impl Future<Output = Result<tokio::sync::watch::Receiver<u64>>> + Send;
        /// A pool of the sender's own for the database of `pool`, when it needs one (SQLite:
        /// connections that never wait in SQLite's busy handler, and whose statements the
        /// sender's operations try again themselves). `None`: the sender uses `pool`.
        fn sender_pool(
            pool: &Pool<Self>,
        ) -> impl Future<Output = Result<Option<Pool<Self>>>> + Send;

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
        /// up to `sent_seq` (sent, not yet recorded) do not hold the stream back; any other
        /// lease does (also one of the same owner: another task of this sender), and so does
        /// a missing one. `sent_seq` is the last row the task sent (nothing is claimed for a
        /// task that sent none). On PostgreSQL it takes no claim lock, only the stream's lease
        /// row.
        fn claim_stream(
            pool: &Pool<Self>,
            namespace: &str,
            stream: &str,
            owner: &str,
            lease: Duration,
            limit: i64,
            sent_seq: i64,
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
        /// Clears the outcome-unknown flag after the stream proved the event absent.
        fn clear_unknown(pool: &Pool<Self>, seq: i64) -> impl Future<Output = Result<()>> + Send;

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
        /// Failed or pending → discarded. `false` if no such unsent row.
        fn discard(
            pool: &Pool<Self>,
            namespace: &str,
            id: &str,
        ) -> impl Future<Output = Result<bool>> + Send;
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
        /// Marks rows verified (one statement).
        fn mark_verified_many(
            pool: &Pool<Self>,
            seqs: &[i64],
        ) -> impl Future<Output = Result<()>> + Send;
        /// Puts a sent row whose event EventoDB lost back to pending (without its expected
        /// version). `false` if the row was not sent.
        fn requeue_lost(
            pool: &Pool<Self>,
            seq: i64,
            error: &str,
        ) -> impl Future<Output = Result<bool>> + Send;
        /// Time until the earliest pending row that is not yet due becomes due.
        fn next_due(
            pool: &Pool<Self>,
            namespace: &str,
        ) -> impl Future<Output = Result<Option<Duration>>> + Send;
    }
}

/// SQL, one rule for both dialects: true while the lease aliased `l` fences its stream,
/// that is while one of the rows it took is still pending (sent, maybe, but not recorded).
/// `$namespace` and `$stream` are SQL expressions. Each dialect writes the rule so that its
/// planner can only answer it from the per-stream index (namespace, stream, seq), which keeps
/// the check to the lease's own rows:
/// - SQLite uses a partial index only when a query repeats its condition, so the status
///   condition is written twice.
/// - PostgreSQL picks indexes by cost, and right after a burst of writes its statistics may
///   not know the table grew. It then took the pending rows' index (namespace, seq) and read
///   every pending row of every stream in the lease's range: 7,000 rows and 1.5 ms per check
///   while a 20,000-row backlog drained, with the claim lock held. Written as below, neither
///   that index (its condition `status = 'pending'` does not follow from this one) nor the
///   primary key (`seq` appears only after `stream` in a row comparison) can serve it.
macro_rules! lease_fences {
    (sqlite, $namespace:literal, $stream:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM eventodb_kit_outbox AS p WHERE p.namespace = ",
            $namespace,
            " AND p.stream = ",
            $stream,
            " AND p.status IN ('pending', 'failed') AND p.status = 'pending'",
            " AND p.seq BETWEEN l.from_seq AND l.through_seq)"
        )
    };
    (postgres, $namespace:literal, $stream:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM eventodb_kit_outbox AS p WHERE p.namespace = ",
            $namespace,
            " AND p.stream = ",
            $stream,
            " AND p.status IN ('pending', 'failed') AND p.status <> 'failed'",
            " AND (p.stream, p.seq) BETWEEN (",
            $stream,
            ", l.from_seq) AND (",
            $stream,
            ", l.through_seq))"
        )
    };
}

pub(crate) use lease_fences;

/// Generates the shared part of a [`private::Dialect`] impl from a dialect's `SQL` table.
macro_rules! backend_impl {
    ($db:ty, $conn:ty, $sql:expr, $interval:path, $begin_locked:path) => {
        #[allow(private_interfaces)]
        impl $crate::outbox::backend::private::Dialect for $db {
            const KIND: $crate::outbox::backend::DialectKind = KIND;
            const MIGRATIONS: &'static [$crate::outbox::backend::Migration] = MIGRATIONS;

            async fn migrate_up(pool: &sqlx::Pool<Self>) -> $crate::error::Result<Vec<i64>> {
                let mut tx = $begin_locked(pool).await?;
                exec_script(&mut *tx, $sql.create_version_table).await.map_err(db)?;
                let applied: Vec<(i64,)> = sqlx::query_as($sql.applied_versions)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?;
                let applied: Vec<i64> = applied.into_iter().map(|(v,)| v).collect();
                let mut done = Vec::new();
                for migration in MIGRATIONS {
                    if applied.contains(&migration.version) {
                        continue;
                    }
                    exec_script(&mut *tx, migration.up).await.map_err(|source| {
                        $crate::error::Error::Migration {
                            version: migration.version,
                            message: source.to_string(),
                        }
                    })?;
                    sqlx::query($sql.record_version)
                        .bind(migration.version)
                        .bind(migration.name)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    done.push(migration.version);
                }
                tx.commit().await.map_err(db)?;
                Ok(done)
            }

            async fn migrate_down(
                pool: &sqlx::Pool<Self>,
                target: i64,
            ) -> $crate::error::Result<Vec<i64>> {
                let mut tx = $begin_locked(pool).await?;
                exec_script(&mut *tx, $sql.create_version_table).await.map_err(db)?;
                let applied: Vec<(i64,)> = sqlx::query_as($sql.applied_versions)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?;
                let mut done = Vec::new();
                for migration in MIGRATIONS.iter().rev() {
                    if migration.version <= target
                        || !applied.iter().any(|(v,)| *v == migration.version)
                    {
                        continue;
                    }
                    exec_script(&mut *tx, migration.down).await.map_err(|source| {
                        $crate::error::Error::Migration {
                            version: migration.version,
                            message: source.to_string(),
                        }
                    })?;
                    sqlx::query($sql.forget_version)
                        .bind(migration.version)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    done.push(migration.version);
                }
                tx.commit().await.map_err(db)?;
                Ok(done)
            }

            async fn insert(
                conn: &mut $conn,
                namespace: &str,
                message: &$crate::outbox::message::CheckedMessage,
            ) -> $crate::error::Result<$crate::outbox::backend::Inserted> {
                use $crate::outbox::backend::Inserted;
                let id = message.id.to_string();
                let inserted: Option<(i64,)> = sqlx::query_as($sql.insert)
                    .bind(&id)
                    .bind(namespace)
                    .bind(&message.stream)
                    .bind(&message.message_type)
                    .bind(sqlx::types::Json(&message.data))
                    .bind(message.metadata.as_ref().map(sqlx::types::Json))
                    .bind(sqlx::types::Json(message.write_options()))
                    .bind(message.expected_version)
                    .bind(message.idempotency_key.as_deref())
                    .bind(&message.content_hash)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(|error| insert_error(error, &id))?;
                if inserted.is_some() {
                    return Ok(Inserted::New);
                }
                let Some(key) = message.idempotency_key.as_deref() else {
                    return Err($crate::error::Error::OutboxIdempotencyRace {
                        key: String::new(),
                    });
                };
                let winner: Option<(String, String)> = sqlx::query_as($sql.find_by_key)
                    .bind(namespace)
                    .bind(key)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
                match winner {
                    Some((id, content_hash)) => Ok(Inserted::Existing { id, content_hash }),
                    None => Err($crate::error::Error::OutboxIdempotencyRace {
                        key: key.to_owned(),
                    }),
                }
            }

            async fn after_insert(conn: &mut $conn) -> $crate::error::Result<()> {
                after_insert_hook(conn).await
            }

            async fn wake_source(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                cancel: tokio_util::sync::CancellationToken,
            ) -> $crate::error::Result<tokio::sync::watch::Receiver<u64>> {
                wake_source(pool, namespace, cancel).await
            }

            async fn sender_pool(
                pool: &sqlx::Pool<Self>,
            ) -> $crate::error::Result<Option<sqlx::Pool<Self>>> {
                sender_pool(pool).await
            }

            async fn claim(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                owner: &str,
                lease: std::time::Duration,
                streams: usize,
                per_stream: i64,
                cursor: &mut String,
                first_rows: usize,
            ) -> $crate::error::Result<$crate::outbox::backend::Claim> {
                retry_busy!(async {
                    use $crate::outbox::backend::HEAD_SCAN;
                    // The scan only picks candidates (`lease_stream_rows` decides under the
                    // lock), so where it can, it runs outside the lock: an idle claim takes no
                    // lock at all.
                    let mut locked = if SCAN_UNDER_LOCK {
                        Some(claim_begin(pool, namespace).await?)
                    } else {
                        None
                    };
                    let scan = sqlx::query_as($sql.heads)
                        .bind(namespace)
                        .bind(cursor.as_str())
                        .bind(HEAD_SCAN);
                    let heads: Vec<(String, bool)> = match locked.as_mut() {
                        Some(tx) => scan.fetch_all(&mut **tx).await,
                        None => scan.fetch_all(pool).await,
                    }
                    .map_err(db)?;
                    let from_first = cursor.is_empty();
                    let reached_last =
                        heads.len() < usize::try_from(HEAD_SCAN).unwrap_or(usize::MAX);
                    let mut picked: Vec<String> = Vec::new();
                    let mut stopped_early = false;
                    for (stream, claimable) in heads {
                        if picked.len() >= streams {
                            stopped_early = true;
                            break;
                        }
                        if claimable {
                            picked.push(stream.clone());
                        }
                        *cursor = stream;
                    }
                    let mut round_done = false;
                    if reached_last && !stopped_early {
                        // The next scan starts from the first stream again.
                        cursor.clear();
                        round_done = from_first;
                    }
                    if picked.is_empty() {
                        if let Some(tx) = locked {
                            tx.commit().await.map_err(db)?;
                        }
                        return Ok($crate::outbox::backend::Claim {
                            rows: Vec::new(),
                            rest: Vec::new(),
                            round_done,
                        });
                    }
                    let mut tx = match locked {
                        Some(tx) => tx,
                        None => claim_begin(pool, namespace).await?,
                    };
                    let (rows, used) = lease_each(
                        &mut tx, namespace, owner, lease, per_stream, &picked, first_rows,
                    )
                    .await?;
                    tx.commit().await.map_err(db)?;
                    let rest = picked.split_off(used);
                    Ok($crate::outbox::backend::Claim {
                        rows,
                        rest,
                        round_done,
                    })
                })
            }

            async fn lease_streams(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                owner: &str,
                lease: std::time::Duration,
                per_stream: i64,
                streams: &[String],
                min_rows: usize,
            ) -> $crate::error::Result<(Vec<$crate::outbox::backend::Claimed>, usize)> {
                if streams.is_empty() {
                    return Ok((Vec::new(), 0));
                }
                retry_busy!(async {
                    let mut tx = claim_begin(pool, namespace).await?;
                    let leased = lease_each(
                        &mut tx, namespace, owner, lease, per_stream, streams, min_rows,
                    )
                    .await?;
                    tx.commit().await.map_err(db)?;
                    Ok(leased)
                })
            }

            async fn claim_stream(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                stream: &str,
                owner: &str,
                lease: std::time::Duration,
                limit: i64,
                sent_seq: i64,
            ) -> $crate::error::Result<Vec<$crate::outbox::backend::Claimed>> {
                if sent_seq <= 0 {
                    // A task that sent nothing has no lease to go on with.
                    return Ok(Vec::new());
                }
                retry_busy!(async {
                    let mut tx = continue_begin(pool, namespace).await?;
                    let rows = lease_stream_rows(
                        &mut tx, namespace, stream, owner, lease, limit, sent_seq,
                    )
                    .await?;
                    tx.commit().await.map_err(db)?;
                    Ok(rows)
                })
            }

            async fn renew(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                stream: &str,
                owner: &str,
                lease: std::time::Duration,
            ) -> $crate::error::Result<u64> {
                retry_busy!(async {
                    let done = sqlx::query($sql.renew)
                        .bind(namespace)
                        .bind(stream)
                        .bind(owner)
                        .bind($interval(lease))
                        .execute(pool)
                        .await
                        .map_err(db)?;
                    Ok(done.rows_affected())
                })
            }

            async fn release(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                stream: &str,
                owner: &str,
                after_seq: i64,
            ) -> $crate::error::Result<()> {
                retry_busy!(async {
                    sqlx::query($sql.release)
                        .bind(namespace)
                        .bind(stream)
                        .bind(owner)
                        .bind(after_seq)
                        .execute(pool)
                        .await
                        .map_err(db)?;
                    Ok(())
                })
            }

            async fn drop_leases(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                owner: &str,
            ) -> $crate::error::Result<()> {
                retry_busy!(async {
                    sqlx::query($sql.drop_leases)
                        .bind(namespace)
                        .bind(owner)
                        .execute(pool)
                        .await
                        .map_err(db)?;
                    Ok(())
                })
            }

            async fn mark_sent_many(
                pool: &sqlx::Pool<Self>,
                sent: &[(i64, i64, i64)],
            ) -> $crate::error::Result<()> {
                // One statement for the whole batch: one round trip, whatever its size.
                record_sends(pool, sent).await
            }

            async fn mark_retry(
                pool: &sqlx::Pool<Self>,
                seq: i64,
                error: &str,
                delay: std::time::Duration,
                outcome_unknown: bool,
            ) -> $crate::error::Result<()> {
                retry_busy!(async {
                    sqlx::query($sql.mark_retry)
                        .bind(seq)
                        .bind(error)
                        .bind($interval(delay))
                        .bind(outcome_unknown)
                        .execute(pool)
                        .await
                        .map_err(db)?;
                    Ok(())
                })
            }

            async fn mark_failed(
                pool: &sqlx::Pool<Self>,
                seq: i64,
                error: &str,
                outcome_unknown: bool,
            ) -> $crate::error::Result<()> {
                retry_busy!(async {
                    sqlx::query($sql.mark_failed)
                        .bind(seq)
                        .bind(error)
                        .bind(outcome_unknown)
                        .execute(pool)
                        .await
                        .map_err(db)?;
                    Ok(())
                })
            }

            async fn clear_unknown(pool: &sqlx::Pool<Self>, seq: i64) -> $crate::error::Result<()> {
                retry_busy!(async {
                    sqlx::query($sql.clear_unknown).bind(seq).execute(pool).await.map_err(db)?;
                    Ok(())
                })
            }

            async fn status(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
            ) -> $crate::error::Result<$crate::outbox::backend::OutboxStatus> {
                retry_busy!(async {
                    let (pending, failed, verified, unverified, age, lost): (
                        Option<i64>,
                        Option<i64>,
                        Option<i64>,
                        Option<i64>,
                        Option<f64>,
                        Option<i64>,
                    ) = sqlx::query_as($sql.status)
                        .bind(namespace)
                        .fetch_one(pool)
                        .await
                        .map_err(db)?;
                    let count = |value: Option<i64>| u64::try_from(value.unwrap_or(0)).unwrap_or(0);
                    Ok($crate::outbox::backend::OutboxStatus {
                        pending: count(pending),
                        failed: count(failed),
                        sent: count(verified) + count(unverified),
                        unverified: count(unverified),
                        lost: count(lost),
                        oldest_pending_age: age
                            .map(|secs| std::time::Duration::from_secs_f64(secs.max(0.0))),
                    })
                })
            }

            async fn row(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                id: &str,
            ) -> $crate::error::Result<Option<$crate::outbox::backend::OutboxRow>> {
                let row = sqlx::query($sql.row)
                    .bind(namespace)
                    .bind(id)
                    .fetch_optional(pool)
                    .await
                    .map_err(db)?;
                row.map(|row| decode_row(&row)).transpose()
            }

            async fn failed(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                limit: i64,
            ) -> $crate::error::Result<Vec<$crate::outbox::backend::OutboxRow>> {
                let rows = sqlx::query($sql.failed)
                    .bind(namespace)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
                    .map_err(db)?;
                rows.iter().map(decode_row).collect()
            }

            async fn retry(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                id: &str,
                drop_expected_version: bool,
            ) -> $crate::error::Result<bool> {
                let done = sqlx::query($sql.retry)
                    .bind(namespace)
                    .bind(id)
                    .bind(drop_expected_version)
                    .execute(pool)
                    .await
                    .map_err(db)?;
                Ok(done.rows_affected() > 0)
            }

            async fn discard(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                id: &str,
            ) -> $crate::error::Result<bool> {
                let done = sqlx::query($sql.discard)
                    .bind(namespace)
                    .bind(id)
                    .execute(pool)
                    .await
                    .map_err(db)?;
                Ok(done.rows_affected() > 0)
            }

            async fn purge(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                retention: std::time::Duration,
                batch: i64,
                require_verified: bool,
            ) -> $crate::error::Result<u64> {
                // Two statements, each tried again on its own: a refused second one does not
                // run the first again.
                let done = retry_busy!(async {
                    sqlx::query($sql.purge)
                        .bind(namespace)
                        .bind($interval(retention))
                        .bind(batch)
                        .bind(require_verified)
                        .execute(pool)
                        .await
                        .map_err(db)
                })?;
                // Leases of streams that went quiet: one row per stream ever sent otherwise.
                retry_busy!(async {
                    sqlx::query($sql.purge_leases)
                        .bind(namespace)
                        .bind(batch)
                        .execute(pool)
                        .await
                        .map_err(db)
                })?;
                Ok(done.rows_affected())
            }

            async fn unverified(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
                older_than: std::time::Duration,
                limit: i64,
            ) -> $crate::error::Result<Vec<$crate::outbox::backend::Unverified>> {
                retry_busy!(async {
                    let rows: Vec<(i64, String, String, Option<i64>, Option<i64>)> =
                        sqlx::query_as($sql.unverified)
                            .bind(namespace)
                            .bind($interval(older_than))
                            .bind(limit)
                            .fetch_all(pool)
                            .await
                            .map_err(db)?;
                    Ok(rows
                        .into_iter()
                        .map(|(seq, id, stream, position, global_position)| {
                            $crate::outbox::backend::Unverified {
                                seq,
                                id,
                                stream,
                                position: position.unwrap_or(-1),
                                global_position: global_position.unwrap_or(-1),
                            }
                        })
                        .collect())
                })
            }

            async fn mark_verified_many(
                pool: &sqlx::Pool<Self>,
                seqs: &[i64],
            ) -> $crate::error::Result<()> {
                retry_busy!(async {
                    sqlx::query($sql.mark_verified_many)
                        .bind(sqlx::types::Json(seqs))
                        .execute(pool)
                        .await
                        .map_err(db)?;
                    Ok(())
                })
            }

            async fn requeue_lost(
                pool: &sqlx::Pool<Self>,
                seq: i64,
                error: &str,
            ) -> $crate::error::Result<bool> {
                retry_busy!(async {
                    let done = sqlx::query($sql.requeue_lost)
                        .bind(seq)
                        .bind(error)
                        .execute(pool)
                        .await
                        .map_err(db)?;
                    Ok(done.rows_affected() > 0)
                })
            }

            async fn next_due(
                pool: &sqlx::Pool<Self>,
                namespace: &str,
            ) -> $crate::error::Result<Option<std::time::Duration>> {
                retry_busy!(async {
                    let (secs,): (Option<f64>,) = sqlx::query_as($sql.next_due)
                        .bind(namespace)
                        .fetch_one(pool)
                        .await
                        .map_err(db)?;
                    Ok(secs.map(|secs| std::time::Duration::from_secs_f64(secs.max(0.0))))
                })
            }
        }

        /// Leases the sendable head rows of `streams`, in order, inside the caller's claim
        /// transaction (see `lease_stream_rows`), until it holds `min_rows` rows (at least one
        /// stream). Returns the rows and how many streams it went through.
        async fn lease_each(
            tx: &mut sqlx::Transaction<'static, $db>,
            namespace: &str,
            owner: &str,
            lease: std::time::Duration,
            per_stream: i64,
            streams: &[String],
            min_rows: usize,
        ) -> $crate::error::Result<(Vec<$crate::outbox::backend::Claimed>, usize)> {
            let mut rows = Vec::new();
            let mut used = 0;
            for stream in streams {
                rows.extend(
                    lease_stream_rows(tx, namespace, stream, owner, lease, per_stream, 0).await?,
                );
                used += 1;
                if rows.len() >= min_rows {
                    break;
                }
            }
            Ok((rows, used))
        }

        /// Leases up to `limit` sendable rows of `stream` after `sent_seq`, inside the
        /// caller's claim transaction. Claims of one stream are serialized: by SQLite's write
        /// lock, and on PostgreSQL by the lease row (read `FOR UPDATE` first; a stream with no
        /// lease row yet is only ever claimed under the advisory claim lock). One lease row
        /// per stream, not a write per row: see migration `outbox_stream_leases`.
        async fn lease_stream_rows(
            tx: &mut sqlx::Transaction<'static, $db>,
            namespace: &str,
            stream: &str,
            owner: &str,
            lease: std::time::Duration,
            limit: i64,
            sent_seq: i64,
        ) -> $crate::error::Result<Vec<$crate::outbox::backend::Claimed>> {
            use sqlx::Row as _;
            // (owner, live, from_seq, through_seq, fencing); locked on PostgreSQL against a
            // concurrent renewal.
            let current: Option<(String, bool, i64, i64, bool)> = sqlx::query_as($sql.lease_read)
                .bind(namespace)
                .bind(stream)
                .fetch_optional(&mut **tx)
                .await
                .map_err(db)?;
            match current {
                // The caller's own lease is gone (purged after it ran out): the stream goes
                // back to the main claim, which takes the claim lock before it leases anew.
                None if sent_seq > 0 => return Ok(Vec::new()),
                Some((holder, ..)) if sent_seq > 0 && holder != owner => {
                    // The caller's own lease passed to another task.
                    return Ok(Vec::new());
                }
                // Another task's lease still covers pending rows (it then reaches the head: a
                // lease whose rows are all recorded, or that lies below the head, fences
                // nothing).
                Some((holder, live, from, through, true)) if holder != owner => {
                    if live {
                        return Ok(Vec::new());
                    }
                    // It ran out: that task may have sent these rows without recording it,
                    // so each is looked up before it is sent again (marked before they are
                    // read, so the rows below carry the mark).
                    sqlx::query($sql.mark_unknown_between)
                        .bind(namespace)
                        .bind(stream)
                        .bind(from)
                        .bind(through)
                        .execute(&mut **tx)
                        .await
                        .map_err(db)?;
                }
                _ => {}
            }
            // One row more than it takes, to tell the stream task whether to claim on: a
            // stream task whose batch was full claimed again as a rule, and at the end of a
            // stream that claim found nothing. On PostgreSQL each such claim locks the lease
            // row and commits synchronously. In the outbox bench (100 streams of 200 rows,
            // batches of 200) every stream ended that way, 32 at once, and those claims took
            // the pool's connections just when the main claim needed one to refill the
            // slots: sends stopped for 30 to 90 ms at each wave of streams.
            let mut rows = sqlx::query($sql.stream_rows)
                .bind(namespace)
                .bind(stream)
                .bind(sent_seq)
                .bind(limit.saturating_add(1))
                .fetch_all(&mut **tx)
                .await
                .map_err(db)?;
            let more_after = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
            if more_after {
                rows.pop();
            }
            let mut taken = Vec::with_capacity(rows.len());
            for row in &rows {
                // The rows before the first one that holds the stream back (parked, or
                // waiting for its retry).
                if row.try_get::<bool, _>("held").map_err(db)? {
                    break;
                }
                taken.push(row);
            }
            // A held row stops the stream task anyway.
            let more_after = more_after && taken.len() == rows.len();
            let (Some(first), Some(last)) = (taken.first(), taken.last()) else {
                return Ok(Vec::new());
            };
            let from_seq: i64 = first.try_get("seq").map_err(db)?;
            let through_seq: i64 = last.try_get("seq").map_err(db)?;
            // A continuation keeps its lease's start: its earlier rows may not be recorded yet.
            sqlx::query($sql.lease_upsert)
                .bind(namespace)
                .bind(stream)
                .bind(owner)
                .bind($interval(lease))
                .bind(from_seq)
                .bind(through_seq)
                .execute(&mut **tx)
                .await
                .map_err(db)?;
            let mut claimed = decode_claimed(taken)?;
            if let Some(last) = claimed.last_mut() {
                last.more_after = more_after;
            }
            Ok(claimed)
        }

        fn decode_claimed(
            rows: Vec<&<$db as sqlx::Database>::Row>,
        ) -> $crate::error::Result<Vec<$crate::outbox::backend::Claimed>> {
            use sqlx::Row as _;
            // `stream_rows` reads them in `seq` order.
            rows.into_iter()
                .map(|row| {
                    let data = row.try_get::<sqlx::types::Json<serde_json::Value>, _>("data")?.0;
                    let metadata = row
                        .try_get::<Option<sqlx::types::Json<serde_json::Value>>, _>("metadata")?
                        .map(|json| json.0);
                    let mut message = $crate::client::NewMessage::new(
                        row.try_get::<String, _>("message_type")?,
                        data,
                    );
                    if let Some(metadata) = metadata {
                        message = message.metadata(metadata);
                    }
                    Ok($crate::outbox::backend::Claimed {
                        seq: row.try_get("seq")?,
                        id: row.try_get("id")?,
                        stream: row.try_get("stream")?,
                        message,
                        expected_version: row.try_get("expected_version")?,
                        attempts: row.try_get::<i64, _>("attempts")?,
                        outcome_unknown: row.try_get("outcome_unknown")?,
                        more_after: false,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(db)
        }

        fn decode_row(
            row: &<$db as sqlx::Database>::Row,
        ) -> $crate::error::Result<$crate::outbox::backend::OutboxRow> {
            use sqlx::Row as _;
            let decode = || -> Result<$crate::outbox::backend::OutboxRow, sqlx::Error> {
                let id: String = row.try_get("id")?;
                Ok($crate::outbox::backend::OutboxRow {
                    id: uuid::Uuid::parse_str(&id)
                        .map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
                    stream: row.try_get("stream")?,
                    message_type: row.try_get("message_type")?,
                    status: $crate::outbox::backend::RowStatus::parse(
                        &row.try_get::<String, _>("status")?,
                    ),
                    attempts: row.try_get::<i64, _>("attempts")?,
                    last_error: row.try_get("last_error")?,
                    outcome_unknown: row.try_get("outcome_unknown")?,
                    position: row.try_get("position")?,
                    global_position: row.try_get("global_position")?,
                    expected_version: row.try_get("expected_version")?,
                    idempotency_key: row.try_get("idempotency_key")?,
                })
            };
            decode().map_err(db)
        }

        /// Runs a multi-statement script.
        fn exec_script<'c>(
            conn: &'c mut $conn,
            sql: &'static str,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), sqlx::Error>> + Send + 'c>,
        > {
            // A query without arguments runs as a simple query: several statements at once.
            Box::pin(async move {
                sqlx::Executor::execute(conn, sql).await?;
                Ok(())
            })
        }

        fn db(source: sqlx::Error) -> $crate::error::Error {
            $crate::error::Error::Database { source }
        }

        /// A unique violation on the id column means the caller reused a custom id.
        fn insert_error(source: sqlx::Error, id: &str) -> $crate::error::Error {
            if let sqlx::Error::Database(error) = &source {
                let message = error.message();
                if error.is_unique_violation()
                    && (error.constraint() == Some("eventodb_kit_outbox_id_key")
                        || message.contains("eventodb_kit_outbox.id"))
                {
                    return $crate::error::Error::OutboxDuplicateId { id: id.to_owned() };
                }
            }
            db(source)
        }
    };
}

pub(crate) use backend_impl;

/// The statements of one dialect. Parameters are listed in each doc comment.
pub(crate) struct Sql {
    /// Creates the version table if missing.
    pub(crate) create_version_table: &'static str,
    /// `version` of every applied migration.
    pub(crate) applied_versions: &'static str,
    /// (version, name)
    pub(crate) record_version: &'static str,
    /// (version)
    pub(crate) forget_version: &'static str,
    /// (id, namespace, stream, type, data, metadata, write_options, expected_version, key, hash)
    /// → `seq`, or no row on an idempotency-key conflict.
    pub(crate) insert: &'static str,
    /// (namespace, key) → (id, content_hash)
    pub(crate) find_by_key: &'static str,
    /// (namespace, after_stream, max_streams) → (stream, claimable) for the streams with
    /// unsent rows after `after_stream`, in name order: an index skip scan, one probe per
    /// stream, whatever the number of rows pending.
    pub(crate) heads: &'static str,
    /// (namespace, stream) → (owner, live, from_seq, through_seq, fencing: a pending row lies
    /// between them) of the stream's lease; locks it where a renewal could otherwise slip in
    /// between this read and the claim's write.
    pub(crate) lease_read: &'static str,
    /// (namespace, stream, after_seq, limit) → the stream's first unsent rows after
    /// `after_seq` (claim columns, and `held`: parked or not yet due)
    pub(crate) stream_rows: &'static str,
    /// (namespace, stream, from_seq, through_seq): marks the stream's pending rows between
    /// them outcome unknown
    pub(crate) mark_unknown_between: &'static str,
    /// (namespace, stream, owner, lease, from_seq, through_seq): takes the stream's lease, or
    /// extends the caller's own (keeping its `from_seq`)
    pub(crate) lease_upsert: &'static str,
    /// (namespace, stream, owner, lease) → 1 while `owner` holds the stream's lease
    pub(crate) renew: &'static str,
    /// (namespace, stream, owner, after_seq): the lease covers no row after `after_seq`
    pub(crate) release: &'static str,
    /// (namespace, owner): deletes every lease of `owner`
    pub(crate) drop_leases: &'static str,
    /// (namespace, batch): deletes leases that ran out and fence no unsent row
    pub(crate) purge_leases: &'static str,
    /// (JSON array of `[seq, position, global_position]`)
    pub(crate) mark_sent_many: &'static str,
    /// (seq, error, delay, outcome_unknown)
    pub(crate) mark_retry: &'static str,
    /// (seq, error, outcome_unknown)
    pub(crate) mark_failed: &'static str,
    /// (seq)
    pub(crate) clear_unknown: &'static str,
    /// (namespace) → (pending, failed, sent, unverified, oldest pending age in seconds, lost)
    pub(crate) status: &'static str,
    /// (namespace, id) → row
    pub(crate) row: &'static str,
    /// (namespace, limit) → rows
    pub(crate) failed: &'static str,
    /// (namespace, id, drop_expected_version)
    pub(crate) retry: &'static str,
    /// (namespace, id)
    pub(crate) discard: &'static str,
    /// (namespace, retention, batch, require_verified)
    pub(crate) purge: &'static str,
    /// (namespace, older_than, limit) → (seq, id, stream, position, global_position)
    pub(crate) unverified: &'static str,
    /// (JSON array of `seq`)
    pub(crate) mark_verified_many: &'static str,
    /// (seq, error)
    pub(crate) requeue_lost: &'static str,
    /// (namespace) → seconds until the earliest pending row is due
    pub(crate) next_due: &'static str,
}
