//! SQLite's write lock: how long and how often the sender tries again for it.

use std::time::Duration;

use super::DialectKind;

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
