//! The sender: a background task that claims committed rows and writes them to EventoDB.

mod housekeeping;
mod pace;
mod run;
mod send;
mod settle;
mod verify;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Outbox;
use super::backend::{Backend, LONGEST_AGE, OutboxStatus};
use crate::error::{Error, Result};

/// How a [`Sender`] works. `Default` suits most applications.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use eventodb_kit::outbox::SenderOptions;
///
/// let options = SenderOptions::default()
///     .concurrency(64)
///     .retention(Duration::from_secs(24 * 3600));
/// assert_eq!(options.poll_interval_value(), Duration::from_secs(1));
/// ```
#[derive(Debug, Clone)]
pub struct SenderOptions {
    pub(super) poll_interval: Duration,
    pub(super) batch_size: i64,
    pub(super) concurrency: usize,
    pub(super) lease: Duration,
    pub(super) retry_initial: Duration,
    pub(super) retry_max: Duration,
    pub(super) retention: Duration,
    pub(super) purge_interval: Duration,
    pub(super) purge_batch: i64,
    pub(super) shutdown_timeout: Duration,
    pub(super) worker_id: Option<String>,
    pub(super) verify_interval: Option<Duration>,
    pub(super) verify_after: Duration,
}

/// The longest lease: a lease is added to the clock, and a dead sender's streams wait for it.
const LONGEST_LEASE: Duration = Duration::from_secs(24 * 3600);

impl Default for SenderOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            batch_size: 200,
            concurrency: 32,
            lease: Duration::from_secs(30),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(30),
            retention: Duration::from_secs(7 * 24 * 3600),
            purge_interval: Duration::from_secs(60),
            purge_batch: 500,
            shutdown_timeout: Duration::from_secs(30),
            worker_id: None,
            verify_interval: Some(Duration::from_secs(30)),
            verify_after: Duration::from_secs(60),
        }
    }
}

impl SenderOptions {
    /// How often to look for rows when nothing woke the sender (default 1 s). Commits wake it
    /// at once: `NOTIFY` on PostgreSQL, a commit hook on SQLite (same process only).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The poll interval.
    pub fn poll_interval_value(&self) -> Duration {
        self.poll_interval
    }

    /// Rows of one stream claimed per database round trip (default 200). The sender holds
    /// at most `concurrency × batch_size` rows in memory, however many are pending.
    pub fn batch_size(mut self, rows: i64) -> Self {
        self.batch_size = rows.max(1);
        self
    }

    /// Streams sent at the same time (default 32). Within a stream, one at a time. While
    /// other streams wait for a slot, a stream gives its slot up after 500 ms of sending and
    /// waits for its next turn.
    pub fn concurrency(mut self, streams: usize) -> Self {
        self.concurrency = streams.max(1);
        self
    }

    /// How long claimed rows stay reserved for this sender (default 30 s, renewed while
    /// sending; between 100 ms and 1 day). When a sender dies, other senders take its rows
    /// over after this.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.clamp(Duration::from_millis(100), LONGEST_LEASE);
        self
    }

    /// First and longest wait before retrying a transient failure (default 100 ms and
    /// 30 s); the wait doubles per attempt, with jitter.
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_initial = initial;
        self.retry_max = max.max(initial);
        self
    }

    /// How long sent rows are kept before they are purged (default 7 days, at most 100
    /// years). Idempotency keys are remembered as long as their rows.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention.min(LONGEST_AGE);
        self
    }

    /// How often to purge (default every 60 s) and how many rows per statement (default 500).
    /// The purge runs beside the sending, statement after statement, so a large one delays
    /// no send.
    pub fn purge(mut self, interval: Duration, batch: i64) -> Self {
        self.purge_interval = interval.max(Duration::from_millis(10));
        self.purge_batch = batch.max(1);
        self
    }

    /// How long [`Sender::shutdown`] waits for in-flight sends (default 30 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The reconciliation sweep (on by default): every `interval`, sent rows older than
    /// `after` are read back from EventoDB; found ones are marked verified, lost ones (a
    /// crashed Pebble-backed server forgets every acknowledged write since it opened) are
    /// sent again with the same id and reported (`tracing` error, [`OutboxStatus::lost`]).
    /// Once per `after` (at most once per `interval`), and when a row is found lost, the
    /// newest verified events are read back too: when one is gone, older ones are read back
    /// a page at a time until EventoDB holds a whole page, and every lost row is sent again
    /// in the order it was first sent. With the sweep on, only verified rows are purged.
    /// Defaults: every 30 s, rows sent over 60 s ago.
    ///
    /// [`OutboxStatus::lost`]: crate::outbox::OutboxStatus::lost
    pub fn verification(mut self, interval: Duration, after: Duration) -> Self {
        self.verify_interval = Some(interval.max(Duration::from_millis(10)));
        self.verify_after = after.min(LONGEST_AGE);
        self
    }

    /// Turns the reconciliation sweep off: sent rows are purged after the retention without
    /// being read back.
    pub fn without_verification(mut self) -> Self {
        self.verify_interval = None;
        self
    }

    /// A name for this sender in leases and logs (default: the process id). A random suffix
    /// is added for each run either way: leases are told apart by owner, so two runs under
    /// one name (two processes, or a restart that finds its crashed predecessor's leases)
    /// must never pass for one another.
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }
}

/// A read of the outbox status, boxed.
type StatusRead = Pin<Box<dyn Future<Output = Result<OutboxStatus>> + Send>>;

/// Reads the sender's outbox status (for [`Sender::drain`]), whatever its database.
struct StatusProbe(Box<dyn Fn() -> StatusRead + Send + Sync>);

impl std::fmt::Debug for StatusProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusProbe")
    }
}

/// How often [`Sender::drain`] looks at the status.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// A running sender. [`Sender::shutdown`] stops it gracefully ([`Sender::drain`] first sends
/// what is pending); dropping the handle stops it too (without waiting).
#[derive(Debug)]
#[must_use = "dropping the Sender stops it at once: keep it, and end with .shutdown().await"]
pub struct Sender {
    cancel: CancellationToken,
    wake_cancel: CancellationToken,
    task: Option<JoinHandle<Result<()>>>,
    shutdown_timeout: Duration,
    status: StatusProbe,
}

impl Sender {
    /// Stops claiming, lets in-flight sends finish and be recorded, gives back the leases of
    /// rows not sent, and waits (up to the shutdown timeout).
    ///
    /// # Errors
    /// [`Error::ShutdownTimeout`] when sends did not finish in time (their rows stay leased
    /// and are checked against EventoDB by the next sender); [`Error::WorkerDied`] when the
    /// task had failed.
    pub async fn shutdown(mut self) -> Result<()> {
        self.cancel.cancel();
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        let abort = task.abort_handle();
        match tokio::time::timeout(self.shutdown_timeout, task).await {
            Ok(joined) => joined.map_err(|error| Error::WorkerDied {
                worker: "outbox sender".into(),
                message: error.to_string(),
            })?,
            Err(_) => {
                abort.abort();
                Err(Error::ShutdownTimeout {
                    after: self.shutdown_timeout,
                })
            }
        }
    }

    /// Sends what is pending, then shuts down (see [`Sender::shutdown`]): for a program that
    /// writes events and exits, and wants them in EventoDB first. Waits until no row of the
    /// namespace is pending, whoever wrote it, or until `timeout`. Rows parked by a permanent
    /// failure wait for an operator and do not count, but the rows they hold back in their
    /// stream do: with one, a drain runs to its timeout, and its error says so. Rows waiting
    /// for a retry count too.
    ///
    /// # Errors
    /// [`Error::OutboxDrainTimeout`] with the rows still pending at the deadline (and why
    /// they wait), after the shutdown; the errors of [`Sender::shutdown`];
    /// [`Error::Database`] when the status cannot be read.
    pub async fn drain(self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let left = loop {
            if self.is_finished() {
                // Failed: `shutdown` says how.
                self.shutdown().await?;
                return Err(Error::WorkerDied {
                    worker: "outbox sender".into(),
                    message: "it stopped before the outbox was drained".into(),
                });
            }
            let status = match (self.status.0)().await {
                Ok(status) => status,
                Err(error) => {
                    self.shutdown().await?;
                    return Err(error);
                }
            };
            if status.pending == 0 {
                break None;
            }
            if tokio::time::Instant::now() >= deadline {
                break Some(status);
            }
            tokio::time::sleep(DRAIN_POLL.min(deadline - tokio::time::Instant::now())).await;
        };
        self.shutdown().await?;
        match left {
            None => Ok(()),
            Some(status) => Err(Error::OutboxDrainTimeout {
                pending: status.pending,
                failed: status.failed,
                retry_error: status.retry_error,
                after: timeout,
            }),
        }
    }

    /// Whether the task has stopped (after a shutdown, or because it failed).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the task at once, as a crash would: nothing is recorded or released. For tests
    /// of what a successor does.
    #[doc(hidden)]
    pub fn kill(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.wake_cancel.cancel();
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.cancel.cancel();
        }
    }
}

/// How long [`spawn`] waits for the database to say whether its tables are there.
const MIGRATION_PROBE: Duration = Duration::from_secs(2);

/// Starts the sender task for `outbox`.
pub(super) async fn spawn<DB: Backend>(
    outbox: Outbox<DB>,
    options: SenderOptions,
) -> Result<Sender> {
    // On a SQLite file the sender writes through a connection of its own (see `sender_pool`).
    let own_pool = DB::sender_pool(outbox.pool()).await?;
    // On the application's pool: the sender's own closes when it stops.
    let status = {
        let outbox = outbox.clone();
        StatusProbe(Box::new(move || {
            let outbox = outbox.clone();
            Box::pin(async move { outbox.status().await })
        }))
    };
    let outbox = match &own_pool {
        Some(pool) => outbox.with_pool(pool.clone()),
        None => outbox,
    };
    // A database that was never migrated is a mistake to report at once (the sender would
    // only log failed claims). One that cannot be reached yet is waited for, as documented:
    // the probe gives up after a moment rather than the pool's acquire timeout.
    let probe = tokio::time::timeout(
        MIGRATION_PROBE,
        DB::status(outbox.pool(), outbox.namespace()),
    );
    if let Ok(Err(error)) = probe.await {
        if let error @ crate::Error::NotMigrated { .. } = crate::error::or_not_migrated(error) {
            return Err(error);
        }
    }
    let cancel = CancellationToken::new();
    let wake_cancel = cancel.child_token();
    let wake = DB::wake_source(outbox.pool(), outbox.namespace(), wake_cancel.clone()).await?;
    let name = options
        .worker_id
        .clone()
        .unwrap_or_else(|| format!("pid{}", std::process::id()));
    let owner = format!(
        "{name}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let shutdown_timeout = options.shutdown_timeout;
    let task_cancel = cancel.clone();
    let task = tokio::spawn(async move {
        let result = run::run(outbox, options, owner, task_cancel, wake).await;
        if let Some(pool) = own_pool {
            pool.close().await;
        }
        result
    });
    Ok(Sender {
        cancel,
        wake_cancel,
        task: Some(task),
        shutdown_timeout,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Durations the sender adds to a clock or hands to the database are kept in range: a
    /// lease of `Duration::MAX` panicked when added to the claim's instant, and a retention
    /// of it failed every purge on PostgreSQL (SQLite purged nothing).
    #[test]
    fn durations_are_kept_in_range() {
        let options = SenderOptions::default()
            .lease(Duration::MAX)
            .retention(Duration::MAX)
            .verification(Duration::from_secs(30), Duration::MAX);
        assert_eq!(options.lease, LONGEST_LEASE);
        assert_eq!(options.retention, LONGEST_AGE);
        assert_eq!(options.verify_after, LONGEST_AGE);
        assert!(
            tokio::time::Instant::now()
                .checked_add(options.lease)
                .is_some()
        );
        let short = SenderOptions::default().lease(Duration::ZERO);
        assert_eq!(short.lease, Duration::from_millis(100));
    }
}
