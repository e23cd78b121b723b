//! Wake-ups: what tells a sleeping sender that rows were committed, and a waiting
//! [`Outbox::wait_sent`](super::Outbox::wait_sent) that rows were sent.
//!
//! SQLite commits are seen in-process (a commit hook on the writing connection bumps
//! [`local_commit`]); PostgreSQL commits arrive by `LISTEN` on the trigger's channel, from any
//! process. Both feed a `watch` channel, so a wake-up that arrives while the sender is busy is
//! kept until it next waits.

use std::sync::LazyLock;

use tokio::sync::watch;

static LOCAL_COMMITS: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::channel(0).0);
static SENT: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::channel(0).0);

/// Called from the SQLite commit hook of a connection that wrote outbox rows.
pub(crate) fn local_commit() {
    LOCAL_COMMITS.send_modify(|generation| *generation = generation.wrapping_add(1));
}

/// Receives a change for every in-process commit of outbox rows (SQLite).
#[cfg(feature = "sqlite")]
pub(crate) fn local_commits() -> watch::Receiver<u64> {
    LOCAL_COMMITS.subscribe()
}

/// Called by a sender in this process after it recorded sends.
pub(crate) fn rows_sent() {
    SENT.send_modify(|generation| *generation = generation.wrapping_add(1));
}

/// Receives a change whenever a sender in this process recorded sends.
pub(crate) fn sent_rows() -> watch::Receiver<u64> {
    SENT.subscribe()
}
