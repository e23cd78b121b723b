//! One API over two databases: the sealed [`Backend`] trait, implemented for
//! [`sqlx::Postgres`] and [`sqlx::Sqlite`], holds each dialect's SQL.
//!
//! Every statement lives in a [`Sql`] table per dialect (`sql`); the code that runs them is
//! shared (`shared`: generated once per database by `backend_impl!`), so both databases
//! behave the same.

use std::time::Duration;

pub(crate) mod begin;
mod busy;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod private;
mod shared;
mod sql;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

pub(crate) use begin::begin_in_task;
pub(crate) use busy::{BUSY_FIRST_POLL, BUSY_POLL, LOCK_WAIT, is_busy, retry_busy};
pub(crate) use shared::backend_impl;
pub(crate) use sql::{Sql, lease_fences};

/// A database the outbox and the consumers can keep their tables in: PostgreSQL
/// ([`sqlx::Postgres`]) or SQLite ([`sqlx::Sqlite`]). Sealed: the SQL of each dialect lives
/// in this crate.
pub trait Backend:
    sqlx::Database + private::Dialect + crate::consumer::store::private::Store
{
}

#[cfg(feature = "postgres")]
impl Backend for sqlx::Postgres {}
#[cfg(feature = "sqlite")]
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

pub(crate) use private::{Claim, Claimed, Discard, DiscardState, Inserted, SentRow, Unverified};

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
    /// Why rows are waiting: the error of the last failed attempt of a row the sender put off
    /// for a retry (EventoDB down, a timeout), `None` when no row is waiting for a retry.
    pub retry_error: Option<String>,
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

/// The longest duration the database is asked about (a retention, a verification delay, a
/// backoff): beyond it, PostgreSQL's intervals overflow and SQLite's date arithmetic gives
/// nothing.
pub(crate) const LONGEST_AGE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Converts a [`Duration`] to fractional seconds for an interval bind, at most
/// [`LONGEST_AGE`]: every duration on its way to the database passes here.
pub(crate) fn secs(duration: Duration) -> f64 {
    duration.min(LONGEST_AGE).as_secs_f64()
}
