//! [`ConsumerHandle`]: a running consumer seen from the application (position, lag,
//! read-your-writes).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::hub::Waker;
use crate::error::{Error, Result};

/// What a consumer has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The last global position handled, parked or skipped (`0`: none).
    pub(crate) position: i64,
    /// The number of the last read that found the consumer caught up, once its messages were
    /// dealt with.
    pub(crate) caught_up: u64,
    /// Whether the task runs.
    pub(crate) running: bool,
}

/// State shared by a consumer task and its handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) category: String,
    pub(crate) group: Option<(i64, i64)>,
    pub(crate) waker: Arc<Waker>,
    /// Published now and then (see [`Shared::advanced`]); wakes waiters.
    pub(crate) progress: watch::Sender<Progress>,
    /// The last global position handled, parked or skipped, kept up to date per event.
    pub(crate) position: AtomicI64,
    /// The lowest position a [`ConsumerHandle::wait_for`] waits for (`i64::MAX`: none).
    /// Progress is published per event only when it reaches this: waking every waiting
    /// task for every event cost the consumer a thread wake-up per event.
    wanted: AtomicI64,
    /// Reads started so far (each gets the next number).
    pub(crate) reads: AtomicU64,
    pub(crate) failure: Mutex<Option<String>>,
}

impl Shared {
    pub(crate) fn new(
        name: String,
        category: String,
        group: Option<(i64, i64)>,
        position: i64,
    ) -> Self {
        let (progress, _) = watch::channel(Progress {
            position,
            caught_up: 0,
            running: true,
        });
        Self {
            name,
            category,
            group,
            waker: Arc::new(Waker::default()),
            progress,
            position: AtomicI64::new(position),
            wanted: AtomicI64::new(i64::MAX),
            reads: AtomicU64::new(0),
            failure: Mutex::new(None),
        }
    }

    /// The consumer dealt with `position`. Wakes the waiters only when one waits for it.
    pub(crate) fn advanced(&self, position: i64) {
        self.position.store(position, Ordering::SeqCst);
        if position >= self.wanted.load(Ordering::SeqCst) {
            self.wanted.store(i64::MAX, Ordering::SeqCst);
            self.publish();
        }
    }

    /// Wakes the waiters with the current position (at least once per batch, so a waiter
    /// that registered while another was being woken is never left waiting for long).
    pub(crate) fn publish(&self) {
        let position = self.position.load(Ordering::SeqCst);
        self.progress.send_if_modified(|progress| {
            let changed = progress.position != position;
            progress.position = position;
            changed
        });
    }

    /// Asks to be woken once the position reaches `position`.
    fn want(&self, position: i64) {
        self.wanted.fetch_min(position, Ordering::SeqCst);
    }

    pub(crate) fn caught_up(&self, read: u64, position: i64) {
        self.position.store(position, Ordering::SeqCst);
        self.progress.send_modify(|progress| {
            progress.position = position;
            progress.caught_up = progress.caught_up.max(read);
        });
    }

    pub(crate) fn finished(&self, failure: Option<String>) {
        if let Some(failure) = failure {
            *self
                .failure
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(failure);
        }
        self.progress
            .send_modify(|progress| progress.running = false);
    }
}

/// How far a consumer is behind the newest message it knows of in its category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    /// The last global position handled (or parked or skipped); `0` for none.
    pub position: i64,
    /// The highest global position of the category seen in reads or pokes.
    pub head: i64,
}

impl Lag {
    /// Global positions between the position and the head. In a group this counts other
    /// members' messages too, so it is an upper bound.
    pub fn behind(&self) -> i64 {
        (self.head - self.position).max(0)
    }
}

/// A running consumer, from [`RunningWorkers::consumer`](crate::RunningWorkers::consumer).
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct ConsumerHandle {
    pub(crate) shared: Arc<Shared>,
}

impl ConsumerHandle {
    /// The consumer name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The category it reads.
    pub fn category(&self) -> &str {
        &self.shared.category
    }

    /// `(member, size)` of a group member.
    pub fn group(&self) -> Option<(i64, i64)> {
        self.shared.group
    }

    /// The last global position handled, parked or skipped (`0`: none yet, or the consumer
    /// has not read its saved position: its database could not be reached when it started).
    /// While another instance runs the member and this one stands by (see
    /// [`ConsumerOptions::takeover_after`](crate::consumer::ConsumerOptions::takeover_after)),
    /// the position that instance saved last, read once a second.
    pub fn position(&self) -> i64 {
        self.shared.position.load(Ordering::SeqCst)
    }

    /// How far behind it is.
    pub fn lag(&self) -> Lag {
        let position = self.position();
        let head = self.shared.waker.head.load(Ordering::Relaxed).max(position);
        Lag { position, head }
    }

    /// Whether the consumer task still runs (standing by included).
    pub fn is_running(&self) -> bool {
        self.shared.progress.borrow().running
    }

    /// Why it stopped, if it stopped on an error.
    pub fn failure(&self) -> Option<String> {
        self.shared
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Asks it to read now instead of at its next poll.
    pub fn wake(&self) {
        self.shared.waker.notify.notify_one();
    }

    /// Waits until the consumer has dealt with everything up to `global_position` that
    /// is its to handle: its position reached it, or a read started after this call found
    /// nothing more (the position was another category's or another member's). Use it after
    /// a write to read your own writes through a projection.
    ///
    /// # Errors
    /// [`Error::WaitTimeout`] after `timeout`; [`Error::ConsumerNotRunning`] when it
    /// stopped.
    pub async fn wait_for(&self, global_position: i64, timeout: Duration) -> Result<()> {
        let started = self.shared.reads.load(Ordering::SeqCst);
        let mut progress = self.shared.progress.subscribe();
        self.wake();
        // Registered before each look at the position (which the consumer stores before it
        // looks at what is wanted), so one of the two always sees the other.
        let reached = |p: &Progress| {
            self.shared.want(global_position);
            self.shared.position.load(Ordering::SeqCst) >= global_position || p.caught_up > started
        };
        let waited =
            tokio::time::timeout(timeout, progress.wait_for(|p| reached(p) || !p.running)).await;
        match waited {
            Ok(Ok(progress)) if reached(&progress) => Ok(()),
            Ok(_) => Err(Error::ConsumerNotRunning {
                consumer: self.shared.name.clone(),
            }),
            Err(_) => Err(Error::WaitTimeout {
                consumer: self.shared.name.clone(),
                global_position,
                position: self.position(),
                after: timeout,
            }),
        }
    }
}
