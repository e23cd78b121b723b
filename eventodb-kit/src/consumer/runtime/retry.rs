//! The consumer's own database work outside a handler's tries (processed-record lookups,
//! parking, holding back, replaying), retried while the database is in trouble.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::consumer::backoff;
use crate::consumer::handler::Consumer;
use crate::error::{Error, Result};
use crate::outbox::Backend;

use super::Runtime;

impl<DB: Backend, C: Consumer<DB>> Runtime<DB, C> {
    /// The wait before the next try of database work after `failures` failures in a row:
    /// 100 ms doubled per failure up to `read_retry_max`, as for reads.
    pub(super) fn database_wait(&self, failures: u32) -> Duration {
        backoff::delay(
            Duration::from_millis(100),
            self.options.read_retry_max,
            failures,
        )
    }

    /// Runs `work` until it succeeds. A database error is retried with
    /// [`Runtime::database_wait`], as database trouble in a handler's transaction is (see
    /// `attempts`): the README promises that database trouble pauses a consumer and is no
    /// handler failure, so it must not end the consumer either. `None` when cancelled
    /// first; the caller then leaves its position before the message in hand. Other errors
    /// are returned, and so is a database error that no retry can mend (e.g. PostgreSQL
    /// refusing to park an event whose data holds a NUL, which a Pebble-backed EventoDB
    /// stores): retried, it would hold the consumer for good with only a warning.
    pub(super) async fn retrying_database<T, F, Fut>(
        &self,
        cancel: &CancellationToken,
        what: &str,
        mut work: F,
    ) -> Result<Option<T>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut failures: u32 = 0;
        loop {
            if cancel.is_cancelled() {
                return Ok(None);
            }
            let error = match work().await {
                Ok(value) => return Ok(Some(value)),
                Err(Error::Database { source })
                    if crate::error::database_refuses_for_good(&source) =>
                {
                    tracing::error!(consumer = %self.key.consumer, error = %source, "the database refuses {what} for good; the consumer stops");
                    return Err(Error::Database { source });
                }
                Err(error @ Error::Database { .. }) => error,
                Err(error) => return Err(error),
            };
            failures = failures.saturating_add(1);
            let wait = self.database_wait(failures);
            tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&error), ?wait, "database error while {what}; retrying");
            tokio::select! {
                () = cancel.cancelled() => return Ok(None),
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}
