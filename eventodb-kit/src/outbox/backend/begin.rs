//! Beginning a transaction so that a caller dropped midway leaves none open.
//!
//! sqlx 0.8.6's begin is not safe to drop on either database:
//! - PostgreSQL (upstream sqlx #4385 and #4393, fixed by #4394 after 0.8.6): `BEGIN` is
//!   sent, and the rollback guard only acts once the reply has been read. A future dropped
//!   while it waits for that reply queues no `ROLLBACK`, and the connection goes back to the
//!   pool inside a transaction that sqlx does not know about: the next borrower's
//!   statements (the application's own writes too) run in it and are never committed, and
//!   its row locks stay until the connection is closed.
//! - SQLite, `begin_with` (the cancel-safe begin of sqlx #2057 does not cover it): after
//!   `BEGIN IMMEDIATE` has run, it awaits once more (to check that the statement opened a
//!   transaction). A future dropped there leaves the connection in the pool holding
//!   SQLite's write lock: every writer waits out its busy timeout, and the next
//!   `begin_with` on it fails ("non-zero transaction depth").
//!
//! Our futures are dropped midway by design: a task aborted by
//! [`RunningWorkers::kill`](crate::RunningWorkers::kill) or after a shutdown timeout, a save
//! aborted with its consumer. So every transaction this crate begins is begun in a task of
//! its own: a task runs to its end whatever becomes of its caller, and a transaction that
//! nobody takes is rolled back when it is dropped.

use sqlx::{Pool, Transaction};

use crate::error::{Error, Result};

/// Begins a transaction on `pool`, with `statement` instead of `BEGIN` when given, in a task
/// of its own (see the module's documentation).
///
/// # Errors
///
/// The database's, as [`Error::Database`]; [`Error::Internal`] when the runtime is shutting
/// down and cancelled the task.
pub(crate) async fn begin_in_task<DB: sqlx::Database>(
    pool: &Pool<DB>,
    statement: Option<&'static str>,
) -> Result<Transaction<'static, DB>> {
    let pool = pool.clone();
    let begun = tokio::spawn(async move {
        match statement {
            Some(statement) => pool.begin_with(statement).await,
            None => pool.begin().await,
        }
    });
    match begun.await {
        Ok(begun) => begun.map_err(|source| Error::Database { source }),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => Err(Error::Internal(format!(
            "beginning a database transaction: {error}"
        ))),
    }
}

/// Spawns a task that begins a transaction on `pool` (as [`begin_in_task`] does) and aborts
/// it at a point of the begin that depends on `round` (0 to 7 turns in). Meant for a
/// one-thread runtime: the task runs only while the caller yields, and the database answers
/// while it sleeps between turns.
#[cfg(test)]
pub(crate) async fn begin_and_abort<DB: sqlx::Database>(
    pool: &Pool<DB>,
    statement: Option<&'static str>,
    round: usize,
) {
    let begun = tokio::spawn({
        let pool = pool.clone();
        async move {
            let _tx = begin_in_task(&pool, statement).await;
            std::future::pending::<()>().await;
        }
    });
    for _ in 0..round % 8 {
        std::thread::sleep(std::time::Duration::from_micros(100));
        tokio::task::yield_now().await;
    }
    begun.abort();
    let _ = begun.await;
}
