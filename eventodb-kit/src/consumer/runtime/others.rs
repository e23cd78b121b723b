//! Moving a group member past the events of the other members.
//!
//! A member reads the category with `consumerGroup` and moves its position only past the
//! messages it was given. On a Pebble-backed server a grouped `category.get` looks at only
//! `batchSize × size` messages from the position and answers the member's among them
//! (protocol §9): when that window holds none of the member's, the answer is `[]` although
//! its messages follow, and every later read looks at the same window, for good. SQLite and
//! PostgreSQL filter before they limit, so there a short answer means "nothing more for
//! you". The runtime cannot tell the two apart, and must not have to: after a short grouped
//! read it looks at the category without the group and passes what is not its own.

use crate::client::{CategoryMessage, MAX_BATCH_SIZE};
use crate::consumer::group;
use crate::consumer::handler::Consumer;
use crate::error::Result;
use crate::outbox::Backend;

use super::Runtime;

/// What a member learned by looking past its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Passed {
    /// Read again at once: a message of its own is next, or there may be more of the others'
    /// events beyond what it looked at.
    Again,
    /// Nothing of its own after the position, as of the look: wait for a poke or a poll.
    CaughtUp,
    /// The look failed (a transient error, logged): wait, and look again on the next
    /// wake-up.
    Unknown,
}

impl<DB: Backend, C: Consumer<DB>> Runtime<DB, C> {
    /// After a grouped read came back short (with fewer messages than asked, `[]` included),
    /// and its messages were dealt with: reads the category from the position without the
    /// group (same correlation filter, `batch_size × size` messages, the size of Pebble's
    /// window, at most 10000), and moves the position past the leading messages that are
    /// not this member's ([`group::stream_member`]), so that the next grouped read starts
    /// beyond them. It stops before the first message of its own: a message is never
    /// passed that the server would give this member.
    ///
    /// The look costs one read, and only follows a short grouped read: a member busy with a
    /// backlog of its own never looks. An idle member looks once per wake-up (a poke or the
    /// poll interval): one more small read, which starts at the category's head and so
    /// answers `[]` from an index. That is accepted rather than avoided: a wake-up for
    /// another member's event (live wake-ups come for every event of the category) is
    /// exactly when the look is needed, as on Pebble those events would otherwise pile up
    /// in the window; and a poll, or a lost poke, says nothing about whose events came. A
    /// member that is not in a group never looks.
    ///
    /// # Errors
    ///
    /// A read that fails for good (not [`Error::is_transient`](crate::Error::is_transient)).
    pub(super) async fn pass_others(&mut self) -> Result<Passed> {
        let Some((member, size)) = self.options.group else {
            return Ok(Passed::CaughtUp);
        };
        match self.try_pass_others(member, size).await {
            Ok(passed) => Ok(passed),
            Err(error) if error.is_transient() => {
                tracing::warn!(consumer = %self.key.consumer, error = crate::error::log_field(&error), position = self.position, "category.get past the position failed; trying again on the next wake-up");
                Ok(Passed::Unknown)
            }
            Err(error) => Err(error),
        }
    }

    async fn try_pass_others(&mut self, member: i64, size: i64) -> Result<Passed> {
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
            let Some(at) = first_of_member(rest, member, size) else {
                upto = rest.last().map_or(upto, |m| m.global_position);
                break false;
            };
            if let Some(before) = at.checked_sub(1) {
                upto = rest[before].global_position;
            }
            // Others' events passed: the next grouped read starts right before this one,
            // so it is the first message the server looks at, on every backend.
            if upto > self.position {
                break true;
            }
            // It is the first message after the position, and the grouped read just now did
            // not give it: it came since, or the server gives it to no member (a stream like
            // `account-` with an empty cardinal id, which PostgreSQL assigns by md5 of "" and
            // the other backends to nobody, §3.4). Asking for it alone tells which.
            let message = &rest[at];
            if self.given(message).await? {
                break true;
            }
            tracing::debug!(consumer = %self.key.consumer, stream = %message.stream_name, position = message.global_position, "passed a message the server gives to no member");
            upto = message.global_position;
            rest = &rest[at + 1..];
        };
        if upto > self.position {
            tracing::debug!(consumer = %self.key.consumer, from = self.position, position = upto, "passed other members' events");
            self.advance(upto);
            self.shared.publish();
        }
        Ok(if blocked || full {
            Passed::Again
        } else {
            Passed::CaughtUp
        })
    }

    /// Whether the server gives `message` to this member: a grouped read of one message
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

/// The index of the first message that the md5 rule gives to `member` of `size`.
fn first_of_member(messages: &[CategoryMessage], member: i64, size: i64) -> Option<usize> {
    messages
        .iter()
        .position(|m| group::stream_member(&m.stream_name, size) == Some(member))
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
        assert_eq!(first_of_member(&window, 1, 2), Some(3));
        assert_eq!(first_of_member(&window, 0, 2), Some(0));
        assert_eq!(first_of_member(&window[..3], 1, 2), None);
        assert_eq!(first_of_member(&[], 0, 2), None);
    }
}
