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

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::run::Shared;
use crate::outbox::backend::Backend;

/// A stream task's sends the recorder has not written yet, by `seq`.
#[derive(Debug, Default)]
pub(super) struct Unrecorded {
    seqs: Mutex<BTreeSet<i64>>,
    all_written: Notify,
}

impl Unrecorded {
    fn seqs(&self) -> MutexGuard<'_, BTreeSet<i64>> {
        // A panic while holding the lock leaves the set itself whole.
        self.seqs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The send of row `seq` was handed to the recorder.
    pub(super) fn add(&self, seq: i64) {
        self.seqs().insert(seq);
    }

    /// The recorder wrote the send of row `seq` (and committed it).
    pub(super) fn written(&self, seq: i64) {
        let mut seqs = self.seqs();
        seqs.remove(&seq);
        if seqs.is_empty() {
            self.all_written.notify_waiters();
        }
    }

    /// The rows of the task that may still be unsent in the database: its sends not
    /// written yet, then `sent_seq` (its last send, written or not), in `seq` order. Taken
    /// before a claim reads the table, it holds every row of the task the claim can see
    /// unsent below `sent_seq`: a send leaves the set only after its record committed.
    pub(super) fn up_to(&self, sent_seq: i64) -> Vec<i64> {
        let mut rows: Vec<i64> = self.seqs().range(..sent_seq).copied().collect();
        rows.push(sent_seq);
        rows
    }

    /// Returns once every send handed over so far is written. A batch the recorder gave up
    /// on is never written: then this never returns.
    pub(super) async fn all_written(&self) {
        loop {
            let notified = self.all_written.notified();
            tokio::pin!(notified);
            // Registered before the check, so a last write between the two is not missed.
            notified.as_mut().enable();
            if self.seqs().is_empty() {
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
        unrecorded.add(1);
        unrecorded.add(2);
        let waiting = tokio::spawn({
            let unrecorded = Arc::clone(&unrecorded);
            async move { unrecorded.all_written().await }
        });
        unrecorded.written(2);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        unrecorded.written(1);
        waiting.await.unwrap();
    }

    #[test]
    fn up_to_lists_the_unwritten_sends_below_the_last_then_the_last() {
        let unrecorded = Unrecorded::default();
        assert_eq!(unrecorded.up_to(7), vec![7]);
        for seq in [3, 5, 7] {
            unrecorded.add(seq);
        }
        unrecorded.written(3);
        assert_eq!(unrecorded.up_to(7), vec![5, 7]);
        unrecorded.written(7);
        assert_eq!(
            unrecorded.up_to(7),
            vec![5, 7],
            "the last send whether written or not"
        );
    }
}
