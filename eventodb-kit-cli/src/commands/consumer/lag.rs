//! Lag: how many events of a member's share of a category lie after its position, counted
//! by reading the category from EventoDB (bounded by [`CAP`]).

use std::error::Error as _;

use eventodb_kit::Client;
use eventodb_kit::client::GetCategoryOptions;
use eventodb_kit::consumer::group_member;
use serde::Serialize;

/// Events read per request.
const BATCH: i64 = 1000;
/// Counting stops after reading this many events of the category (the lag is then "at
/// least" what was counted).
pub(super) const CAP: u64 = 10_000;

/// A counted lag.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lag {
    /// Events after the position (at most [`CAP`]).
    pub(super) events: u64,
    /// Counting stopped at [`CAP`].
    pub(super) capped: bool,
}

/// Whether EventoDB answered.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Reachability {
    /// The server's URL.
    url: String,
    /// It answered every lag query.
    pub(super) reachable: bool,
    /// The first error, when it did not.
    pub(super) error: Option<String>,
}

/// Counts lags; after the first failure it stops asking.
pub(super) struct Counter<'a> {
    client: &'a Client,
    asked: bool,
    error: Option<String>,
}

impl<'a> Counter<'a> {
    pub(super) fn new(client: &'a Client) -> Self {
        Self {
            client,
            asked: false,
            error: None,
        }
    }

    /// The lag of member `member` of `size` at `position` (the last handled global
    /// position); `None` once EventoDB has failed.
    pub(super) async fn count(
        &mut self,
        category: &str,
        member: i64,
        size: i64,
        position: i64,
    ) -> Option<Lag> {
        if self.error.is_some() {
            return None;
        }
        self.asked = true;
        let mut events = 0_u64;
        let mut read = 0_u64;
        // The category is read whole and each stream's member worked out here: with a
        // consumer group, Pebble scans only `batchSize × size` keys, so a short page of a
        // filtered read does not mean the end.
        // At most CAP events are read per member, as the filtered read did: past that, the
        // lag is reported as at least what was counted.
        let size = size.max(1);
        let most_read = CAP;
        let mut next = position.saturating_add(1).max(1);
        loop {
            let options = GetCategoryOptions::new().position(next).batch_size(BATCH);
            let page = match self.client.category_get(category, &options).await {
                Ok(page) => page,
                Err(error) => {
                    self.error = Some(describe(&error));
                    return None;
                }
            };
            read += page.len() as u64;
            events += page
                .iter()
                .filter(|m| size == 1 || group_member(&m.stream_name, size) == Some(member))
                .count() as u64;
            if events >= CAP || read >= most_read {
                return Some(Lag {
                    events: events.min(CAP),
                    capped: true,
                });
            }
            match page.last() {
                Some(last) if page.len() as u64 == BATCH as u64 => {
                    next = last.global_position + 1;
                }
                _ => {
                    return Some(Lag {
                        events,
                        capped: false,
                    });
                }
            }
        }
    }

    /// Whether EventoDB answered; asks it once when no lag was counted.
    pub(super) async fn into_reachability(mut self) -> Reachability {
        if !self.asked && self.error.is_none() {
            if let Err(error) = self.client.sys_version().await {
                self.error = Some(describe(&error));
            }
        }
        Reachability {
            url: self.client.base_url().to_owned(),
            reachable: self.error.is_none(),
            error: self.error,
        }
    }
}

/// The error and its causes on one line (the client never puts the token in them).
fn describe(error: &eventodb_kit::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use eventodb_kit::client::{NewMessage, WriteOptions};
    use eventodb_kit_testkit::{Backend, TestServer};
    use serde_json::json;

    use super::*;

    /// On Pebble a member's filtered read comes back empty while other members' events
    /// fill its window of keys: the lag still counts the member's events behind them.
    #[tokio::test]
    async fn a_member_behind_other_members_events_has_its_lag_counted() {
        for backend in [Backend::Pebble, Backend::Sqlite] {
            let server = TestServer::builder()
                .backend(backend)
                .start()
                .await
                .unwrap();
            let client = Client::builder(server.url())
                .token(server.default_token().parse().unwrap())
                .build()
                .unwrap();
            let message = NewMessage::new("T", json!({}));
            // Under a group of two, `k-1` is member 0's and `k-2` member 1's (§3.5).
            for _ in 0..2 * BATCH {
                client
                    .stream_write("k-1", &message, &WriteOptions::new())
                    .await
                    .unwrap();
            }
            for _ in 0..3 {
                client
                    .stream_write("k-2", &message, &WriteOptions::new())
                    .await
                    .unwrap();
            }
            let mut counter = Counter::new(&client);
            let lag = counter.count("k", 1, 2, 0).await.unwrap();
            assert_eq!((lag.events, lag.capped), (3, false), "{backend:?}");
            let lag = counter.count("k", 0, 2, 0).await.unwrap();
            assert_eq!((lag.events, lag.capped), (2000, false), "{backend:?}");
            let lag = counter.count("k", 0, 1, 1000).await.unwrap();
            assert_eq!((lag.events, lag.capped), (1003, false), "{backend:?}");
        }
    }
}
