//! Finding an outbox row's event in EventoDB: the one way to learn whether an attempt whose
//! outcome was unknown landed (the sender before it sends again, an operator's discard
//! before it gives the row up).

use uuid::Uuid;

use crate::client::{Client, GetStreamOptions, Message, WritePosition};
use crate::error::Result;

/// Page size when looking for an id in a stream.
const PAGE: i64 = 1000;

/// Where `stream` holds the message `id`, if it does: first at `expected_version + 1` when
/// the row carries an expected version (where its write would have gone), else page by page
/// from the start.
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
        if let Some(position) = found(&page) {
            return Ok(Some(position));
        }
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
