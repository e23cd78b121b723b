//! Live wake-ups: one SSE subscription (`all=true`) per process and namespace, shared by
//! every consumer, waking the consumers of the poked category at once.
//!
//! Pokes are hints. A consumer always reads from its own position with `category.get`; a
//! poke only cuts its wait short. Group membership never comes from a poke (live pokes are
//! partitioned by another hash than reads, protocol 6.5), and a lost poke costs at most one
//! poll interval. The hub reconnects with capped backoff and jitter, treats a silent
//! connection as dead after the silence timeout (the server sends no heartbeats), and wakes
//! every consumer after each (re)connect, since pokes may have been missed meanwhile.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::backoff;
use crate::client::{Client, Subscription};

/// The shortest wait between reconnection attempts.
const MIN_BACKOFF: Duration = Duration::from_millis(10);

/// How the shared SSE subscription behaves.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use eventodb_kit::consumer::HubOptions;
///
/// let options = HubOptions::default().silence_timeout(Duration::from_secs(120));
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubOptions {
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) silence_timeout: Duration,
}

impl Default for HubOptions {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            silence_timeout: Duration::from_secs(60),
        }
    }
}

impl HubOptions {
    /// First and longest wait between reconnection attempts (default 1 s and 30 s); the
    /// wait doubles per failed attempt, with jitter. Both are at least 10 ms.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        // A zero wait doubles to zero forever: the hub would reconnect in a busy loop
        // while the server is away, and hammer it when it comes back.
        self.initial_backoff = initial.max(MIN_BACKOFF);
        self.max_backoff = max.max(self.initial_backoff);
        self
    }

    /// Reconnect when nothing arrived for this long (default 60 s): the server sends no
    /// heartbeats, so a silent connection may be dead.
    pub fn silence_timeout(mut self, timeout: Duration) -> Self {
        self.silence_timeout = timeout.max(Duration::from_millis(10));
        self
    }
}

/// What the hub pokes for one consumer: a wake-up and the highest global position seen.
#[derive(Debug, Default)]
pub(crate) struct Waker {
    pub(crate) notify: Notify,
    pub(crate) head: AtomicI64,
    /// The hub (re)connected since the consumer last looked: EventoDB may have restarted,
    /// and lost events (see `runtime::kept`).
    pub(crate) reconnected: AtomicBool,
}

impl Waker {
    pub(crate) fn wake(&self, global_position: Option<i64>) {
        if let Some(position) = global_position {
            self.head.fetch_max(position, Ordering::Relaxed);
        }
        self.notify.notify_one();
    }
}

#[derive(Debug, Default)]
struct Routes {
    next: u64,
    by_category: HashMap<String, Vec<(u64, Weak<Waker>)>>,
}

#[derive(Debug)]
struct Inner {
    routes: Mutex<Routes>,
    cancel: CancellationToken,
    connections: AtomicU64,
    pokes: AtomicU64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A handle on a running hub; the hub stops when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Hub {
    inner: Arc<Inner>,
}

type HubKey = (String, String);

static HUBS: LazyLock<Mutex<HashMap<HubKey, Weak<Inner>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Hub {
    /// The hub of `client`'s server and namespace, started if none runs. `options` apply
    /// only when it starts here.
    pub(crate) fn shared(client: &Client, options: HubOptions) -> Hub {
        let key = (
            client.base_url().to_owned(),
            client.namespace().unwrap_or("").to_owned(),
        );
        let mut hubs = lock(&HUBS);
        hubs.retain(|_, hub| hub.strong_count() > 0);
        if let Some(inner) = hubs.get(&key).and_then(Weak::upgrade) {
            return Hub { inner };
        }
        let inner = Arc::new(Inner {
            routes: Mutex::new(Routes::default()),
            cancel: CancellationToken::new(),
            connections: AtomicU64::new(0),
            pokes: AtomicU64::new(0),
        });
        hubs.insert(key, Arc::downgrade(&inner));
        tokio::spawn(run(
            client.clone(),
            options,
            Arc::downgrade(&inner),
            inner.cancel.clone(),
        ));
        Hub { inner }
    }

    /// Routes pokes of `category` (`""`: every poke) to `waker` while the returned guard
    /// lives.
    pub(crate) fn register(&self, category: &str, waker: &Arc<Waker>) -> Registration {
        let mut routes = lock(&self.inner.routes);
        routes.next += 1;
        let id = routes.next;
        routes
            .by_category
            .entry(category.to_owned())
            .or_default()
            .push((id, Arc::downgrade(waker)));
        Registration {
            hub: self.clone(),
            category: category.to_owned(),
            id,
        }
    }

    /// How many times the subscription was (re)established.
    pub(crate) fn connections(&self) -> u64 {
        self.inner.connections.load(Ordering::Relaxed)
    }

    /// Pokes received.
    pub(crate) fn pokes(&self) -> u64 {
        self.inner.pokes.load(Ordering::Relaxed)
    }
}

/// Removes a consumer's route when dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    hub: Hub,
    category: String,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut routes = lock(&self.hub.inner.routes);
        if let Some(list) = routes.by_category.get_mut(&self.category) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                routes.by_category.remove(&self.category);
            }
        }
    }
}

/// The category of a stream name: the text before the first `-` (protocol 4).
fn category_of(stream: &str) -> &str {
    stream
        .split_once('-')
        .map_or(stream, |(category, _)| category)
}

/// Calls `each` with every consumer's waker.
fn for_each_waker(inner: &Inner, each: impl Fn(&Waker)) {
    let routes = lock(&inner.routes);
    for list in routes.by_category.values() {
        for (_, waker) in list {
            if let Some(waker) = waker.upgrade() {
                each(&waker);
            }
        }
    }
}

fn wake(inner: &Inner, category: Option<&str>, global_position: Option<i64>) {
    let routes = lock(&inner.routes);
    for (route, list) in &routes.by_category {
        let matches = match category {
            None => true,
            Some(category) => route.is_empty() || route == category,
        };
        if matches {
            for (_, waker) in list {
                if let Some(waker) = waker.upgrade() {
                    waker.wake(global_position);
                }
            }
        }
    }
}

async fn run(client: Client, options: HubOptions, inner: Weak<Inner>, cancel: CancellationToken) {
    let mut failures: u32 = 0;
    let all = Subscription::all();
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let subscribed = tokio::select! {
            () = cancel.cancelled() => return,
            subscribed = client.subscribe(&all) => subscribed,
        };
        match subscribed {
            Ok(mut pokes) => {
                let Some(hub) = inner.upgrade() else { return };
                hub.connections.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("live wake-ups connected");
                // Pokes may have been missed while disconnected.
                for_each_waker(&hub, |waker| {
                    waker.reconnected.store(true, Ordering::Relaxed);
                    waker.wake(None);
                });
                drop(hub);
                failures = 0;
                loop {
                    let next = tokio::select! {
                        () = cancel.cancelled() => return,
                        next = tokio::time::timeout(options.silence_timeout, pokes.next()) => next,
                    };
                    let Some(hub) = inner.upgrade() else { return };
                    match next {
                        Ok(Some(Ok(poke))) => {
                            hub.pokes.fetch_add(1, Ordering::Relaxed);
                            wake(
                                &hub,
                                Some(category_of(&poke.stream)),
                                Some(poke.global_position),
                            );
                        }
                        Ok(Some(Err(error))) => {
                            tracing::debug!(
                                error = crate::error::log_field(&error),
                                "live wake-ups: bad poke or lost connection"
                            );
                            if !pokes_continue(&error) {
                                break;
                            }
                        }
                        Ok(None) => {
                            tracing::debug!("live wake-ups: connection closed");
                            break;
                        }
                        Err(_) => {
                            tracing::debug!(
                                after = ?options.silence_timeout,
                                "live wake-ups: silent; reconnecting"
                            );
                            break;
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(
                    error = crate::error::log_field(&error),
                    "live wake-ups: cannot subscribe"
                );
            }
        }
        failures = failures.saturating_add(1);
        let wait = backoff::delay(options.initial_backoff, options.max_backoff, failures);
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// A malformed poke is skipped; anything else ends the connection.
fn pokes_continue(error: &crate::Error) -> bool {
    matches!(error, crate::Error::Decode { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reconnect_backoff_is_never_zero() {
        let options = HubOptions::default().backoff(Duration::ZERO, Duration::ZERO);
        assert_eq!(options.initial_backoff, MIN_BACKOFF);
        assert_eq!(options.max_backoff, MIN_BACKOFF);
        for failures in 1..5 {
            let wait = backoff::delay(options.initial_backoff, options.max_backoff, failures);
            assert!(wait >= MIN_BACKOFF / 2, "{wait:?}");
        }
        let options = HubOptions::default().backoff(Duration::from_secs(2), Duration::ZERO);
        assert_eq!(options.max_backoff, Duration::from_secs(2));
    }

    #[test]
    fn routes_by_the_text_before_the_first_dash() {
        assert_eq!(category_of("account-1+x"), "account");
        assert_eq!(category_of("account"), "account");
        assert_eq!(category_of("a-b-c"), "a");
        assert_eq!(category_of("account:command-9"), "account:command");
    }

    #[test]
    fn wakes_only_the_poked_category_and_tracks_the_head() {
        let inner = Inner {
            routes: Mutex::new(Routes::default()),
            cancel: CancellationToken::new(),
            connections: AtomicU64::new(0),
            pokes: AtomicU64::new(0),
        };
        let user = Arc::new(Waker::default());
        let order = Arc::new(Waker::default());
        {
            let mut routes = lock(&inner.routes);
            routes
                .by_category
                .insert("user".into(), vec![(1, Arc::downgrade(&user))]);
            routes
                .by_category
                .insert("order".into(), vec![(2, Arc::downgrade(&order))]);
        }
        wake(&inner, Some("user"), Some(42));
        assert_eq!(user.head.load(Ordering::Relaxed), 42);
        assert_eq!(order.head.load(Ordering::Relaxed), 0);
        wake(&inner, None, None);
        assert_eq!(order.head.load(Ordering::Relaxed), 0);
    }
}
