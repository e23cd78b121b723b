//! Counting and timing: when each entity's transaction committed, and how long until a
//! consumer handled its event.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// What one consumer is expected to handle and what it did.
#[derive(Debug, Default)]
pub(crate) struct Track {
    committed: Mutex<HashMap<Uuid, Instant>>,
    latencies: Mutex<Vec<Duration>>,
    handled: AtomicU64,
}

impl Track {
    /// The event about `id` is about to commit.
    pub(crate) fn committing(&self, id: Uuid) {
        lock(&self.committed).insert(id, Instant::now());
    }

    /// A consumer handled the event about `id`. Events of other runs (on a shared server)
    /// and repeats are not counted.
    pub(crate) fn handled(&self, id: Uuid) {
        if let Some(at) = lock(&self.committed).remove(&id) {
            lock(&self.latencies).push(at.elapsed());
            self.handled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many of this run's events were handled.
    pub(crate) fn count(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    /// Every latency, sorted.
    pub(crate) fn latencies(&self) -> Vec<Duration> {
        let mut latencies = lock(&self.latencies).clone();
        latencies.sort_unstable();
        latencies
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The `p`-th percentile (0 < p ≤ 100) of sorted `values`, by the nearest-rank method.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn nearest_rank() {
        let values = ms(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(percentile(&values, 50.0), Some(Duration::from_millis(5)));
        assert_eq!(percentile(&values, 90.0), Some(Duration::from_millis(9)));
        assert_eq!(percentile(&values, 99.0), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&ms(&[7]), 50.0), Some(Duration::from_millis(7)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn counts_each_committed_event_once() {
        let track = Track::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        track.committing(a);
        track.handled(a);
        track.handled(a);
        track.handled(b);
        assert_eq!(track.count(), 1);
        assert_eq!(track.latencies().len(), 1);
    }
}
