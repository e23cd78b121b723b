//! State shared by every connection of one server (kept across restarts).

use std::sync::{Mutex, MutexGuard};

use crate::faults::FaultState;
use crate::pubsub::Hub;
use crate::store::Store;

/// Fixed settings chosen with the builder.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) backend: crate::backend::Backend,
    pub(crate) test_mode: bool,
    pub(crate) body_limit: usize,
    pub(crate) header_limit: usize,
    pub(crate) poke_buffer: Option<usize>,
    /// `None`: no idle timeout.
    pub(crate) idle_timeout: Option<std::time::Duration>,
    /// How long a request body may take to arrive.
    pub(crate) read_timeout: std::time::Duration,
    /// `Some`: register SSE subscriptions this long after their catch-up (the race).
    pub(crate) subscribe_gap: Option<std::time::Duration>,
    pub(crate) version: String,
}

/// Everything a request handler needs.
pub(crate) struct Shared {
    pub(crate) config: Config,
    store: Mutex<Store>,
    pub(crate) hub: Hub,
    pub(crate) faults: FaultState,
}

impl Shared {
    pub(crate) fn new(config: Config, store: Store) -> Self {
        Shared {
            config,
            store: Mutex::new(store),
            hub: Hub::default(),
            faults: FaultState::default(),
        }
    }

    /// The store; a poisoned lock is recovered (a panic cannot leave it half-written).
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}
