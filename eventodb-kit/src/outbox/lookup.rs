//! Finding an outbox row's event in EventoDB: the one way to learn whether an attempt whose
//! outcome was unknown landed (the sender before it sends again, an operator's discard
//! before it gives the row up).

use uuid::Uuid;

use crate::client::{Client, GetStreamOptions, Message, WritePosition};
use crate::error::Result;

/// Page size when looking for an id in a stream.
const PAGE: i64 = 1000;

/// Where `stream` holds the message `id`, if it does. A row that carries an expected version
/// `V` was written with it on every attempt (clearing it needs an operator's retry, which
/// keeps the row's unknown outcome and so looks the whole stream through), so only position
/// `V + 1` can hold it: one read, however long the stream. Other rows are looked for page by
/// page from the start.
///
/// # Errors
/// The client's, when the stream cannot be read.
pub(crate) async fn find_in_stream(
    client: &Client,
    stream: &str,
    expected_version: Option<i64>,
    id: Uuid,
) -> Result<Option<WritePosition>> {
    let found = |messages: &[Message]| {
        messages
            .iter()
            // Compared as UUIDs: PostgreSQL echoes the canonical form, SQLite and Pebble
            // the text as written; another producer's non-UUID id never matches.
            .find(|message| message.id == id)
            .map(|message| WritePosition {
                position: message.position,
                global_position: message.global_position,
            })
    };
    if let Some(version) = expected_version {
        let page = client
            .stream_get(
                stream,
                &GetStreamOptions::new().position(version + 1).batch_size(1),
            )
            .await?;
        return Ok(found(&page));
    }
    let mut from = 0;
    loop {
        let page = client
            .stream_get(
                stream,
                &GetStreamOptions::new().position(from).batch_size(PAGE),
            )
            .await?;
        if let Some(position) = found(&page) {
            return Ok(Some(position));
        }
        match page.last() {
            Some(last) if i64::try_from(page.len()).unwrap_or(0) >= PAGE => {
                from = last.position + 1;
            }
            _ => return Ok(None),
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
