//! Giving a stream back once a task's sends are recorded.
//!
//! A stream task's lease covers the rows it took, from the first to the last, and holds the
//! stream back while one of the rows in that range is pending: a row sent but not recorded
//! yet must not be sent again by another task. A row that another transaction committed
//! after the claim, with a `seq` inside that range (its transaction drew the number before
//! the rows around it and committed after them), is pending in the range too, although no
//! task ever took it. The lease then held the stream until it ran out (30 s by default), and
//! the row was looked up in EventoDB before it was sent, as if it might have been sent.
//!
//! Once every send of the task is recorded, none of the pending rows in its range is its
//! own: the task shrinks its lease to nothing, and the row is claimed at once, like any
//! other.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::run::Shared;
use crate::outbox::backend::Backend;

/// How many of a stream task's sends the recorder has not written yet.
#[derive(Debug, Default)]
pub(super) struct Unrecorded {
    count: AtomicUsize,
    all_written: Notify,
}

impl Unrecorded {
    /// A send was handed to the recorder.
    pub(super) fn add(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// The recorder wrote one of the sends.
    pub(super) fn written(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.all_written.notify_waiters();
        }
    }

    /// Returns once every send handed over so far is written. A batch the recorder gave up
    /// on is never written: then this never returns.
    pub(super) async fn all_written(&self) {
        loop {
            let notified = self.all_written.notified();
            tokio::pin!(notified);
            // Registered before the check, so a last write between the two is not missed.
            notified.as_mut().enable();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// After a stream task has ended: once its sends are recorded (before `lease_ends`, and
/// while the sender runs), shrinks its lease on `stream` to no row, and wakes the main claim
/// if a row was waiting in its range. Runs beside the sender; holds no reference that keeps
/// the sender alive.
pub(super) fn settle<DB: Backend>(
    shared: &Arc<Shared<DB>>,
    stream: String,
    lease_owner: String,
    unrecorded: Arc<Unrecorded>,
    lease_ends: Instant,
) {
    let weak: Weak<Shared<DB>> = Arc::downgrade(shared);
    let cancel = shared.cancel.clone();
    let pool = shared.outbox.pool().clone();
    let namespace = shared.outbox.namespace().to_owned();
    tokio::spawn(async move {
        tokio::select! {
            () = cancel.cancelled() => return,
            written = tokio::time::timeout_at(lease_ends, unrecorded.all_written()) => {
                if written.is_err() {
                    // Not recorded within the lease: the next claimer looks the rows up.
                    return;
                }
            }
        }
        match DB::settle(&pool, &namespace, &stream, &lease_owner).await {
            Ok(true) => {
                if let Some(shared) = weak.upgrade() {
                    shared.claim_now.notify_one();
                }
            }
            Ok(false) => {}
            // The lease keeps its recorded rows only, which fence nothing once recorded: a
            // row committed late in its range waits for the lease to run out, as before.
            Err(error) => tracing::debug!(
                error = crate::error::log_field(&error),
                %stream,
                "outbox lease not given back after its sends were recorded"
            ),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn all_written_waits_for_every_send_handed_over() {
        let unrecorded = Arc::new(Unrecorded::default());
        unrecorded.all_written().await;
        unrecorded.add();
        unrecorded.add();
        let waiting = tokio::spawn({
            let unrecorded = Arc::clone(&unrecorded);
            async move { unrecorded.all_written().await }
        });
        unrecorded.written();
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        unrecorded.written();
        waiting.await.unwrap();
    }
}
