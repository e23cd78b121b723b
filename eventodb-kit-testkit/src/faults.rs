//! Fault injection and request statistics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::Shared;

/// The switches behind [`Faults`], shared with every connection.
#[derive(Default)]
pub(crate) struct FaultState {
    refusing: AtomicBool,
    fail_next: AtomicU64,
    fail_after_apply: AtomicU64,
    drop_after_apply: AtomicU64,
    garble_after_apply: AtomicU64,
    forget_since_start: AtomicBool,
    crash_on_unlimited_category_get: AtomicBool,
    latency: Mutex<Duration>,
    /// `stream.write` requests still to hold back, and for how long each.
    delayed_writes: Mutex<(u64, Duration)>,
    forget_on_restart: AtomicUsize,
    /// Cancelled (and replaced) to drop every SSE connection.
    sse: Mutex<CancellationToken>,
    /// Cancelled (and replaced) to drop every open connection.
    connections: Mutex<CancellationToken>,
    stats: Mutex<BTreeMap<String, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn take_one(counter: &AtomicU64) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

impl FaultState {
    pub(crate) fn refusing(&self) -> bool {
        self.refusing.load(Ordering::SeqCst)
    }

    /// Consumes one "fail before applying" token.
    pub(crate) fn take_fail_next(&self) -> bool {
        take_one(&self.fail_next)
    }

    /// Consumes one "apply, then fail" token.
    pub(crate) fn take_fail_after_apply(&self) -> bool {
        take_one(&self.fail_after_apply)
    }

    /// Consumes one "apply, then close without answering" token.
    pub(crate) fn take_drop_after_apply(&self) -> bool {
        take_one(&self.drop_after_apply)
    }

    pub(crate) fn take_garble_after_apply(&self) -> bool {
        take_one(&self.garble_after_apply)
    }

    /// Whether the next restart loses every write since the last start.
    pub(crate) fn take_forget_since_start(&self) -> bool {
        self.forget_since_start.swap(false, Ordering::SeqCst)
    }

    pub(crate) fn crash_on_unlimited_category_get(&self) -> bool {
        self.crash_on_unlimited_category_get.load(Ordering::SeqCst)
    }

    pub(crate) fn latency(&self) -> Duration {
        *lock(&self.latency)
    }

    /// Consumes one "apply this write later" token: how much later.
    pub(crate) fn take_write_delay(&self) -> Option<Duration> {
        let mut delayed = lock(&self.delayed_writes);
        let (left, delay) = &mut *delayed;
        let taken = left.checked_sub(1)?;
        *left = taken;
        Some(*delay)
    }

    pub(crate) fn sse_token(&self) -> CancellationToken {
        lock(&self.sse).clone()
    }

    pub(crate) fn connection_token(&self) -> CancellationToken {
        lock(&self.connections).clone()
    }

    pub(crate) fn take_forget_count(&self) -> usize {
        self.forget_on_restart.swap(0, Ordering::SeqCst)
    }

    pub(crate) fn count(&self, label: &str) {
        *lock(&self.stats).entry(label.to_owned()).or_default() += 1;
    }

    fn replace(token: &Mutex<CancellationToken>) {
        let old = std::mem::take(&mut *lock(token));
        old.cancel();
    }
}

/// Fault injection for one [`TestServer`](crate::TestServer); cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), eventodb_kit_testkit::Error> {
/// use std::time::Duration;
/// let server = eventodb_kit_testkit::TestServer::start().await?;
/// let faults = server.faults();
/// faults.fail_next(2);                         // the next two requests get a 500
/// faults.latency(Duration::from_millis(50));   // every request waits 50 ms first
/// faults.refuse_connections(true);             // connections are closed at once
/// faults.refuse_connections(false);
/// faults.forget_last_writes(3);                // lost on the next restart
/// server.restart().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Faults {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").finish_non_exhaustive()
    }
}

impl Faults {
    fn state(&self) -> &FaultState {
        &self.shared.faults
    }

    /// While `true`, every accepted connection is closed at once without a response, and
    /// every open connection (SSE included) is closed now. The port stays bound, so clients
    /// see the connection closed or reset (not `ECONNREFUSED`); nothing is applied.
    /// For refusal at the TCP level use [`TestServer::pause`](crate::TestServer::pause).
    pub fn refuse_connections(&self, refuse: bool) -> &Self {
        self.state().refusing.store(refuse, Ordering::SeqCst);
        if refuse {
            FaultState::replace(&self.state().connections);
        }
        self
    }

    /// The next `n` requests to `/rpc` or `/subscribe` get `500` `BACKEND_ERROR` JSON
    /// without being applied. Adds to any count still pending.
    pub fn fail_next(&self, n: u64) -> &Self {
        self.state().fail_next.fetch_add(n, Ordering::SeqCst);
        self
    }

    /// The next `n` requests to `/rpc` are applied, then answered with `500`
    /// `BACKEND_ERROR`: the outcome-unknown case (the write happened, the client cannot know).
    pub fn fail_after_apply(&self, n: u64) -> &Self {
        self.state().fail_after_apply.fetch_add(n, Ordering::SeqCst);
        self
    }

    /// The next `n` requests to `/rpc` are applied, then their connection is closed without
    /// an answer: a server that crashed right after committing.
    pub fn drop_after_apply(&self, n: u64) -> &Self {
        self.state().drop_after_apply.fetch_add(n, Ordering::SeqCst);
        self
    }

    /// The next `n` requests to `/rpc` are applied, then answered `200` with a JSON body
    /// that is not the method's result (as from a proxy, or a server of another version):
    /// the write happened, and the reply does not say where.
    pub fn garble_after_apply(&self, n: u64) -> &Self {
        self.state()
            .garble_after_apply
            .fetch_add(n, Ordering::SeqCst);
        self
    }

    /// The next `n` `stream.write` requests are applied `delay` after they arrive, by a task
    /// of their own that goes on when the client gives up waiting (EventoDB's handler does not
    /// stop when its client goes away, and a write can queue behind a stalled one): a write
    /// whose outcome the client could not know lands later. Other requests are not held up.
    /// Replaces any count still pending.
    pub fn delay_next_writes(&self, n: u64, delay: Duration) -> &Self {
        *lock(&self.state().delayed_writes) = (n, delay);
        self
    }

    /// Every request waits this long before it is handled (`Duration::ZERO` turns it off).
    pub fn latency(&self, latency: Duration) -> &Self {
        *lock(&self.state().latency) = latency;
        self
    }

    /// Closes every open `/subscribe` connection now (also ones still waiting for their first
    /// poke). New subscriptions work as before.
    pub fn drop_sse_connections(&self) -> &Self {
        FaultState::replace(&self.state().sse);
        self
    }

    /// On the next [`TestServer::restart`](crate::TestServer::restart), the last `n`
    /// acknowledged writes (across namespaces) vanish, as on a Pebble server that crashed.
    /// Their global positions are handed out again.
    pub fn forget_last_writes(&self, n: usize) -> &Self {
        self.state()
            .forget_on_restart
            .fetch_add(n, Ordering::SeqCst);
        self
    }

    /// On the next restart, every write acknowledged since the server last (re)started
    /// vanishes: what the real Pebble backend did after a crash (protocol §8).
    pub fn forget_writes_since_start(&self) -> &Self {
        self.state()
            .forget_since_start
            .store(true, Ordering::SeqCst);
        self
    }

    /// Crashes now, the way the real Pebble server did: every connection (SSE included) is
    /// closed without an answer, subscriptions are gone, and every write acknowledged since
    /// the server last (re)started is lost. The server is serving again at once (a crash
    /// followed by an immediate restart), on the same port.
    pub fn crash(&self) -> &Self {
        crash(&self.shared);
        self
    }

    /// While on, a `category.get` with `batchSize: -1` crashes the server as
    /// [`crash`](Self::crash) does (the requester gets no answer), which is what a real
    /// Pebble-backed server does (protocol §3.1). Off by default.
    pub fn crash_on_unlimited_category_get(&self, on: bool) -> &Self {
        self.state()
            .crash_on_unlimited_category_get
            .store(on, Ordering::SeqCst);
        self
    }

    /// Turns every fault off (pending counts included).
    pub fn clear(&self) -> &Self {
        let s = self.state();
        s.refusing.store(false, Ordering::SeqCst);
        s.fail_next.store(0, Ordering::SeqCst);
        s.fail_after_apply.store(0, Ordering::SeqCst);
        s.drop_after_apply.store(0, Ordering::SeqCst);
        s.garble_after_apply.store(0, Ordering::SeqCst);
        s.forget_since_start.store(false, Ordering::SeqCst);
        s.crash_on_unlimited_category_get
            .store(false, Ordering::SeqCst);
        s.forget_on_restart.store(0, Ordering::SeqCst);
        *lock(&s.latency) = Duration::ZERO;
        *lock(&s.delayed_writes) = (0, Duration::ZERO);
        self
    }
}

/// A crash and immediate restart: writes since the last start lost, everything dropped.
pub(crate) fn crash(shared: &Shared) {
    {
        let mut store = shared.store();
        let n = store.writes_since_start();
        let forgotten = store.forget_last_writes(n);
        store.mark_start();
        tracing::debug!(forgotten, "test server crashed");
    }
    shared.hub.clear();
    FaultState::replace(&shared.faults.sse);
    FaultState::replace(&shared.faults.connections);
}

/// Requests received, by RPC method (`"stream.write"`, ...) or route (`"/subscribe"`,
/// `"/health"`, `"/version"`). A body that is not a valid envelope counts as `"<invalid>"`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestStats {
    by_label: BTreeMap<String, u64>,
}

impl RequestStats {
    pub(crate) fn snapshot(shared: &Shared) -> Self {
        RequestStats {
            by_label: lock(&shared.faults.stats).clone(),
        }
    }

    pub(crate) fn reset(shared: &Shared) {
        lock(&shared.faults.stats).clear();
    }

    /// All requests counted.
    pub fn total(&self) -> u64 {
        self.by_label.values().sum()
    }

    /// Requests of one method or route.
    pub fn count(&self, label: &str) -> u64 {
        self.by_label.get(label).copied().unwrap_or(0)
    }

    /// Every label with its count, sorted by label.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.by_label.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_consumed_one_by_one() {
        let s = FaultState::default();
        s.fail_next.store(2, Ordering::SeqCst);
        assert!(s.take_fail_next());
        assert!(s.take_fail_next());
        assert!(!s.take_fail_next());
    }

    #[test]
    fn replacing_a_token_cancels_the_old_one_only() {
        let s = FaultState::default();
        let old = s.sse_token();
        FaultState::replace(&s.sse);
        assert!(old.is_cancelled());
        assert!(!s.sse_token().is_cancelled());
    }
}
