//! Whether EventoDB still holds the event a consumer read last. A crashed Pebble-backed
//! server comes back without every write since it opened (protocol §8) and hands their global
//! positions out again: a consumer whose position is past the new head would skip every event
//! written at those positions, silently. An idle consumer reads its last event back when its
//! live wake-ups reconnect (as they do after EventoDB restarts) and every
//! [`CHECK_EVERY_POLLS`] poll intervals, and stops with [`Error::ConsumerPositionLost`] when
//! it is gone.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{Runtime, backoff};
use crate::client::{CategoryMessage, GetCategoryOptions, MessageId};
use crate::consumer::handler::Consumer;
use crate::error::{Error, Result};
use crate::outbox::Backend;

/// How many poll intervals apart an idle consumer reads its last event back, when its live
/// wake-ups did not reconnect meanwhile: one read in six idle polls (of one read each, for a
/// consumer without a group or a correlation filter).
const CHECK_EVERY_POLLS: u32 = 6;

/// The last event a consumer read, by global position and id.
#[derive(Debug, Clone)]
pub(super) struct LastRead {
    global_position: i64,
    id: MessageId,
}

impl LastRead {
    pub(super) fn of(message: &CategoryMessage) -> LastRead {
        LastRead {
            global_position: message.global_position,
            id: message.id.clone(),
        }
    }
}

impl<DB: Backend, C: Consumer<DB>> Runtime<DB, C> {
    /// Reads the event at the consumer's position back (see the module's docs), when this
    /// instance read that event itself: a position set otherwise (loaded at the start, or
    /// reset by an operator) names no event it knows the id of.
    ///
    /// # Errors
    /// [`Error::ConsumerPositionLost`] when EventoDB no longer holds it; a permanent error of
    /// the read. A transient one is left to the next look.
    pub(super) async fn check_position_kept(&mut self, cancel: &CancellationToken) -> Result<()> {
        let Some(last) = self
            .last_read
            .clone()
            .filter(|last| last.global_position == self.position)
        else {
            return Ok(());
        };
        let reconnected = self
            .shared
            .waker
            .reconnected
            .swap(false, std::sync::atomic::Ordering::Relaxed);
        let due = self.position_checked_at.is_none_or(|at| {
            at.elapsed() >= self.options.poll_interval.saturating_mul(CHECK_EVERY_POLLS)
        });
        if !reconnected && !due {
            return Ok(());
        }
        self.position_checked_at = Some(Instant::now());
        // Unfiltered: the event is the category's whatever the group and the correlation.
        let options = GetCategoryOptions::new()
            .position(last.global_position)
            .batch_size(1);
        let found = match self.client.category_get(&self.key.category, &options).await {
            Ok(found) => found,
            Err(error) if error.is_transient() => {
                tracing::debug!(consumer = %self.key.consumer, error = crate::error::log_field(&error), "reading the last event back failed; trying again later");
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        match found.first() {
            Some(held) if held.global_position == last.global_position && held.id == last.id => {
                Ok(())
            }
            now_there => {
                // An operator may have reset the position meanwhile (the event is then
                // rightly not where this instance left it), or another instance taken the
                // member over: that is a reset, which starts it again.
                self.heartbeat().await?;
                self.position_lost = true;
                let error = Error::ConsumerPositionLost {
                    consumer: self.key.consumer.clone(),
                    category: self.key.category.clone(),
                    position: last.global_position,
                };
                tracing::error!(
                    consumer = %self.key.consumer,
                    category = %self.key.category,
                    position = last.global_position,
                    id = %last.id,
                    found = ?now_there.map(|m| (m.global_position, &m.id)),
                    "EventoDB no longer holds the event this consumer read last; stopping"
                );
                if let Err(reset) = self.hold_member(&error, cancel).await {
                    // Reset or taken over meanwhile: no longer this instance's to hold.
                    if matches!(reset, Error::ConsumerPositionReset { .. }) {
                        self.position_lost = false;
                    }
                    return Err(reset);
                }
                Err(error)
            }
        }
    }

    /// Holds the member until an operator resets its position (see the store's
    /// `mark_stopped`), before the task stops: were it only freed, another instance would
    /// take it over from the lost position and skip what this one stopped for. Tries again
    /// on any database error but one the database gives for good (the task's final
    /// bookkeeping tries once more then).
    ///
    /// # Errors
    /// [`Error::ConsumerPositionReset`] when the row was reset or taken over meanwhile;
    /// [`Error::Database`] for a permanent failure.
    async fn hold_member(&self, lost: &Error, cancel: &CancellationToken) -> Result<()> {
        let text = crate::error::with_causes(lost);
        let mut attempt = 0;
        loop {
            let held = DB::mark_stopped(
                &self.pool,
                &self.key,
                self.member,
                self.size,
                &self.owner,
                Some(&text),
                true,
                self.resets,
            )
            .await;
            match held {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    return Err(Error::ConsumerPositionReset {
                        consumer: self.key.consumer.clone(),
                    });
                }
                Err(Error::Database { source })
                    if !crate::error::database_refuses_for_good(&source) =>
                {
                    attempt += 1;
                    let wait =
                        backoff::delay(Duration::from_millis(100), Duration::from_secs(5), attempt);
                    tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&source), ?wait, "could not hold the consumer member for a reset; trying again");
                    tokio::select! {
                        () = cancel.cancelled() => return Ok(()),
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }
}
