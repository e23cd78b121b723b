//! What the sender does beside its claims: the verification sweep and the purge of sent rows.
//!
//! Each runs on a loop of its own, so neither holds back a claim. A purge deletes everything
//! past the retention in batches, and at a sustained rate that is a lot of statements at
//! once: a minute's worth of rows at 1,000 events/s is 120 batches of the default 500. A
//! sweep page waits on one `stream.get` per stream it holds. Run inline, both stopped every
//! claim until they were done. Running beside the claims adds no concurrency the outbox did
//! not already have: other processes' senders purge and sweep while this one claims.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::run::Shared;
use crate::outbox::backend::Backend;

/// When the first purge runs after the sender starts.
const FIRST_PURGE: Duration = Duration::from_millis(200);
/// When the first sweep runs after the sender starts.
const FIRST_SWEEP: Duration = Duration::from_millis(100);

/// Purges sent rows past the retention every purge interval, until the sender stops. A purge
/// stops between batches when the sender stops; each batch is one statement.
pub(super) async fn purge_loop<DB: Backend>(shared: Arc<Shared<DB>>) {
    let mut next = Instant::now() + FIRST_PURGE;
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            () = tokio::time::sleep_until(next) => {}
        }
        purge(&shared).await;
        next = Instant::now() + shared.options.purge_interval;
    }
}

/// Runs the verification sweep every verify interval (at once again after a full page),
/// until the sender stops; returns at once when verification is off.
pub(super) async fn verify_loop<DB: Backend>(shared: Arc<Shared<DB>>) {
    let Some(interval) = shared.options.verify_interval else {
        return;
    };
    let mut next = Instant::now() + FIRST_SWEEP;
    // The newest verified rows are read back again once per `verify_after` (at most once per
    // sweep): an idle outbox costs EventoDB one read per stream of them that often.
    let every = shared.options.verify_after.max(interval);
    let mut newest_due = Instant::now();
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            () = tokio::time::sleep_until(next) => {}
        }
        next = Instant::now() + interval;
        // Half an interval early: due at the sweep's own time, not skipped for a timer tick.
        let check_newest = Instant::now() + interval / 2 >= newest_due;
        if check_newest {
            newest_due = Instant::now() + every;
        }
        match super::verify::sweep(&shared, check_newest).await {
            Ok(swept) => {
                if swept.verified > 0 || swept.lost > 0 {
                    tracing::debug!(
                        verified = swept.verified,
                        lost = swept.lost,
                        "outbox verification sweep"
                    );
                }
                if swept.again_at_once() {
                    next = Instant::now();
                }
                if swept.newest_unknown {
                    newest_due = Instant::now();
                }
            }
            Err(error) => tracing::warn!(
                error = crate::error::log_field(&error),
                "outbox verification sweep failed"
            ),
        }
    }
}

/// Deletes sent rows past the retention, one batch per statement, until a batch comes back
/// short, the database fails, or the sender stops.
async fn purge<DB: Backend>(shared: &Shared<DB>) {
    let options = &shared.options;
    let full = u64::try_from(options.purge_batch).unwrap_or(u64::MAX);
    let mut total = 0u64;
    while !shared.cancel.is_cancelled() {
        match DB::purge(
            shared.outbox.pool(),
            shared.outbox.namespace(),
            options.retention,
            options.purge_batch,
            options.verify_interval.is_some(),
        )
        .await
        {
            Ok(deleted) => {
                total += deleted;
                if deleted < full {
                    break;
                }
            }
            Err(error) => {
                tracing::warn!(
                    error = crate::error::log_field(&error),
                    "outbox purge failed"
                );
                break;
            }
        }
    }
    if total > 0 {
        tracing::debug!(rows = total, "outbox rows purged");
    }
}
