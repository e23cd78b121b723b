//! Moving a consumer past the messages its filtered reads will never give it.
//!
//! A consumer in a group, or with a correlation filter, reads the category with
//! `consumerGroup` or `correlation` and moves its position only past the messages it was
//! given. On a Pebble-backed server such a `category.get` looks at only `batchSize` messages
//! from the position (`batchSize × size` in a group) and answers those that pass the filter
//! (protocol §9): when that window holds none, the answer is `[]` although matching messages
//! follow, and every later read looks at the same window, for good. SQLite and PostgreSQL
//! filter before they limit, so there a short answer means "nothing more for you". The
//! runtime cannot tell the two apart, and must not have to: after a short filtered read it
//! looks at the category without the filters and passes what cannot be its own.

use crate::client::{CategoryMessage, MAX_BATCH_SIZE};
use crate::consumer::correlation;
use crate::consumer::group;
use crate::consumer::handler::Consumer;
use crate::consumer::options::ConsumerOptions;
use crate::error::Result;
use crate::outbox::Backend;

use super::Runtime;

/// What a consumer learned by looking past its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Passed {
    /// Read again at once: a message that may be its own is next, or there may be more
    /// messages to pass beyond what it looked at.
    Again,
    /// Nothing of its own after the position, as of the look: wait for a poke or a poll.
    CaughtUp,
    /// The look failed (a transient error, logged): wait, and look again on the next
    /// wake-up.
    Unknown,
}

impl<DB: Backend, C: Consumer<DB>> Runtime<DB, C> {
    /// After a filtered read (group or correlation) came back short (with fewer messages
    /// than asked, `[]` included), and its messages were dealt with: reads the category
    /// from the position without the filters (`batch_size × size` messages, the size of
    /// Pebble's window, at most 10000), and moves the position past the leading messages
    /// that cannot be this consumer's: another member's by the md5 rule
    /// ([`group::stream_member`]), or one its correlation filter matches on no backend
    /// ([`correlation::may_match`]). It stops before the first message that may be its
    /// own: a message is never passed that the server would give this consumer.
    ///
    /// The look costs one read, and only follows a short filtered read: a consumer busy
    /// with a backlog of its own never looks. An idle one looks once per wake-up (a poke or
    /// the poll interval): one more small read, which starts at the category's head and so
    /// answers `[]` from an index. That is accepted rather than avoided: a wake-up for a
    /// message that is not its own (live wake-ups come for every message of the category)
    /// is exactly when the look is needed, as on Pebble those messages would otherwise pile
    /// up in the window; and a poll, or a lost poke, says nothing about whose messages came.
    /// A consumer without a group or a correlation filter never looks.
    ///
    /// # Errors
    ///
    /// A read that fails for good (not [`Error::is_transient`](crate::Error::is_transient)).
    pub(super) async fn pass_others(&mut self) -> Result<Passed> {
        if self.options.group.is_none() && self.options.correlation.is_none() {
            return Ok(Passed::CaughtUp);
        }
        match self.try_pass_others().await {
            Ok(passed) => Ok(passed),
            Err(error) if error.is_transient() => {
                tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&error), position = self.position, "category.get past the position failed; trying again on the next wake-up");
                Ok(Passed::Unknown)
            }
            Err(error) => Err(error),
        }
    }

    async fn try_pass_others(&mut self) -> Result<Passed> {
        let size = self.options.group.map_or(1, |(_, size)| size);
        let asked = self
            .options
            .batch_size
            .saturating_mul(size)
            .clamp(1, MAX_BATCH_SIZE);
        let options = self.category_options(self.position + 1, asked, false);
        let window = self
            .client
            .category_get(&self.key.category, &options)
            .await?;
        let Some(last) = window.last() else {
            return Ok(Passed::CaughtUp);
        };
        self.shared
            .waker
            .head
            .fetch_max(last.global_position, std::sync::atomic::Ordering::Relaxed);
        let full = i64::try_from(window.len()).unwrap_or(i64::MAX) >= asked;
        let mut upto = self.position;
        let mut rest = window.as_slice();
        let blocked = loop {
            let Some(at) = first_maybe_own(rest, &self.options) else {
                upto = rest.last().map_or(upto, |m| m.global_position);
                break false;
            };
            if let Some(before) = at.checked_sub(1) {
                upto = rest[before].global_position;
            }
            // Messages passed: the next filtered read starts right before this one, so it
            // is the first message the server looks at, on every backend.
            if upto > self.position {
                break true;
            }
            // It is the first message after the position, and the filtered read just now
            // did not give it: it came since, or the server's rule turns it away where ours
            // cannot tell (a stream like `account-` with an empty cardinal id, which
            // PostgreSQL assigns by md5 of "" and the other backends to nobody, §3.4; a
            // correlation name that only some backends match). Asking for it alone tells.
            let message = &rest[at];
            if self.given(message).await? {
                break true;
            }
            tracing::debug!(consumer = %self.key.consumer, stream = %message.stream_name, position = message.global_position, "passed a message the server does not give this consumer");
            upto = message.global_position;
            rest = &rest[at + 1..];
        };
        if upto > self.position {
            if let Some(last) = window.iter().find(|m| m.global_position == upto) {
                self.last_read = Some(super::LastRead::of(last));
            }
            self.warn_of_streams_no_member_gets(&window, upto);
            tracing::debug!(consumer = %self.key.consumer, from = self.position, position = upto, "passed messages that are not this consumer's");
            self.advance(upto);
            self.shared.publish();
        }
        Ok(if blocked || full {
            Passed::Again
        } else {
            Passed::CaughtUp
        })
    }

    /// Warns, once per stream and from member 0 only, of the streams among the messages
    /// passed up to `upto` that the server gives to no member of the group (a name with no
    /// `-`): no member handles their events, which would otherwise go by unseen.
    fn warn_of_streams_no_member_gets(&mut self, window: &[CategoryMessage], upto: i64) {
        const MOST_WARNED: usize = 1000;
        let Some((0, size)) = self.options.group else {
            return;
        };
        for message in window
            .iter()
            .filter(|m| m.global_position > self.position && m.global_position <= upto)
        {
            if self.warned_no_member.len() >= MOST_WARNED {
                return;
            }
            // No member is exactly no `-` (see `group::stream_member`), and this costs no
            // md5 per passed message.
            if size > 0
                && !message.stream_name.contains('-')
                && self.warned_no_member.insert(message.stream_name.clone())
            {
                tracing::warn!(consumer = %self.key.consumer, stream = %message.stream_name, "the server gives this stream to no member of the group (its name has no `-`): its events are not handled");
            }
        }
    }

    /// Whether the server gives `message` to this consumer: a filtered read of one message
    /// from its position answers it first exactly then (on Pebble too: the window starts
    /// with it).
    async fn given(&self, message: &CategoryMessage) -> Result<bool> {
        let options = self.category_options(message.global_position, 1, true);
        let got = self
            .client
            .category_get(&self.key.category, &options)
            .await?;
        Ok(got
            .first()
            .is_some_and(|m| m.global_position == message.global_position))
    }
}

/// The index of the first message that may pass the consumer's filters: the md5 rule gives
/// it to its member, and its correlation filter may match it.
fn first_maybe_own(messages: &[CategoryMessage], options: &ConsumerOptions) -> Option<usize> {
    messages.iter().position(|m| {
        options
            .group
            .is_none_or(|(member, size)| group::stream_member(&m.stream_name, size) == Some(member))
            && options
                .correlation
                .as_deref()
                .is_none_or(|filter| correlation::may_match(filter, m.metadata.as_ref()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(stream: &str, global_position: i64) -> CategoryMessage {
        CategoryMessage {
            id: uuid::Uuid::now_v7().into(),
            stream_name: stream.to_owned(),
            message_type: "T".to_owned(),
            position: 0,
            global_position,
            data: serde_json::json!({}),
            metadata: None,
            time: chrono::DateTime::default(),
        }
    }

    fn correlated(stream: &str, global_position: i64, name: &str) -> CategoryMessage {
        CategoryMessage {
            metadata: Some(serde_json::json!({ "correlationStreamName": name })),
            ..message(stream, global_position)
        }
    }

    #[test]
    fn the_first_message_of_a_member_is_found_by_its_cardinal_id() {
        // Under a group of two, `test-1` and `test-3` are member 0's, `test-2` member 1's
        // (protocol §3.5); `test` goes to nobody.
        let window = [
            message("test-1", 1),
            message("test", 2),
            message("test-3+x", 3),
            message("test-2", 4),
        ];
        let member = |member| ConsumerOptions::new("c").group(member, 2);
        assert_eq!(first_maybe_own(&window, &member(1)), Some(3));
        assert_eq!(first_maybe_own(&window, &member(0)), Some(0));
        assert_eq!(first_maybe_own(&window[..3], &member(1)), None);
        assert_eq!(first_maybe_own(&[], &member(0)), None);
    }

    #[test]
    fn the_first_message_that_may_match_the_correlation_is_found() {
        let window = [
            message("test-1", 1),
            correlated("test-2", 2, "checkouts-1"),
            correlated("test-1", 3, "Checkout-7"),
            correlated("test-2", 4, "checkout-8"),
        ];
        let filter = ConsumerOptions::new("c").correlation("checkout");
        assert_eq!(first_maybe_own(&window, &filter), Some(2));
        assert_eq!(first_maybe_own(&window[..2], &filter), None);
        // Both filters: member 1 of 2 owns `test-2` only.
        assert_eq!(first_maybe_own(&window, &filter.group(1, 2)), Some(3));
        // No filter at all: every message may be its own.
        assert_eq!(
            first_maybe_own(&window, &ConsumerOptions::new("c")),
            Some(0)
        );
    }
}
