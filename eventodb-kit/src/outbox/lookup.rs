//! Finding an outbox row's event in EventoDB: the one way to learn whether an attempt whose
//! outcome was unknown landed (the sender before it sends again, an operator's discard
//! before it gives the row up).

use uuid::Uuid;

use crate::client::{Client, GetStreamOptions, WritePosition};
use crate::error::Result;

/// Page size when looking for an id in a stream.
const PAGE: i64 = 1000;

/// Where `stream` holds the message `id`, if it does (see [`StreamSearch`]).
///
/// # Errors
/// The client's, when the stream cannot be read.
pub(crate) async fn find_in_stream(
    client: &Client,
    stream: &str,
    expected_version: Option<i64>,
    id: Uuid,
) -> Result<Option<WritePosition>> {
    let mut search = StreamSearch::new(client, stream, expected_version, id);
    loop {
        if let Some(found) = search.next_page().await? {
            return Ok(found);
        }
    }
}

/// A look for the message `id` in `stream`, one read at a time, so that a caller can keep
/// its lease between reads of a long stream.
///
/// A row that carries an expected version `V` was written with it on every attempt
/// (clearing it takes an operator's retry, which keeps the row's unknown outcome, so the
/// row is then looked for through the whole stream), so only position `V + 1` can hold it:
/// one read, however long the stream. Other rows are looked for page by page from the start.
pub(crate) struct StreamSearch<'a> {
    client: &'a Client,
    stream: &'a str,
    id: Uuid,
    /// Where the next read starts.
    from: i64,
    /// Read only the one position (`expected_version + 1`).
    one: bool,
}

impl<'a> StreamSearch<'a> {
    pub(crate) fn new(
        client: &'a Client,
        stream: &'a str,
        expected_version: Option<i64>,
        id: Uuid,
    ) -> Self {
        StreamSearch {
            client,
            stream,
            id,
            from: expected_version.map_or(0, |version| version + 1),
            one: expected_version.is_some(),
        }
    }

    /// Reads the next page: `Some(Some(position))` when found, `Some(None)` when the
    /// stream does not hold it, `None` when there is more to read.
    ///
    /// # Errors
    /// The client's, when the stream cannot be read.
    pub(crate) async fn next_page(&mut self) -> Result<Option<Option<WritePosition>>> {
        let size = if self.one { 1 } else { PAGE };
        let page = self
            .client
            .stream_get(
                self.stream,
                &GetStreamOptions::new().position(self.from).batch_size(size),
            )
            .await?;
        let found = page
            .iter()
            // Compared as UUIDs: PostgreSQL echoes the canonical form, SQLite and Pebble
            // the text as written; another producer's non-UUID id never matches.
            .find(|message| message.id == self.id)
            .map(|message| WritePosition {
                position: message.position,
                global_position: message.global_position,
            });
        if found.is_some() || self.one {
            return Ok(Some(found));
        }
        match page.last() {
            Some(last) if i64::try_from(page.len()).unwrap_or(0) >= PAGE => {
                self.from = last.position + 1;
                Ok(None)
            }
            _ => Ok(Some(None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use eventodb_kit_testkit::TestServer;
    use serde_json::json;

    use super::*;
    use crate::client::{NewMessage, Token, WriteOptions};

    async fn stream_of(server: &TestServer, events: usize, then: Option<Uuid>) -> Client {
        let client = Client::builder(server.url())
            .token(Token::parse(server.default_token()).unwrap())
            .build()
            .unwrap();
        let message = NewMessage::new("T", json!({}));
        for _ in 0..events {
            client
                .stream_write("long-1", &message, &WriteOptions::new())
                .await
                .unwrap();
        }
        if let Some(id) = then {
            client
                .stream_write("long-1", &message, &WriteOptions::new().id(id))
                .await
                .unwrap();
        }
        client
    }

    /// A row with an expected version is looked for where its write would have gone only:
    /// one read, found or not, however long the stream.
    #[tokio::test]
    async fn a_row_with_an_expected_version_is_looked_for_at_one_position() {
        let server = TestServer::start().await.unwrap();
        let id = Uuid::now_v7();
        let client = stream_of(&server, 2500, Some(id)).await;
        let reads = || server.stats().count("stream.get");

        let before = reads();
        let found = find_in_stream(&client, "long-1", Some(2499), id)
            .await
            .unwrap();
        assert_eq!(found.map(|at| at.position), Some(2500));
        assert_eq!(reads() - before, 1);

        let before = reads();
        let missing = find_in_stream(&client, "long-1", Some(2500), Uuid::now_v7())
            .await
            .unwrap();
        assert_eq!(missing, None);
        assert_eq!(reads() - before, 1, "no scan of the stream");

        // Without one: page by page through the stream.
        let before = reads();
        let found = find_in_stream(&client, "long-1", None, id).await.unwrap();
        assert_eq!(found.map(|at| at.position), Some(2500));
        assert_eq!(reads() - before, 3);
    }
}
