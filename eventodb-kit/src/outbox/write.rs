//! Writing rows inside the caller's transaction.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use serde_json::Value;
use uuid::Uuid;

use super::Outbox;
use super::backend::{Backend, Inserted};
use super::message::{self, CheckedMessage, RawMessage, WriteSpec};
use crate::error::{Error, Result};
use crate::event::Event;

/// What a write stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The message id: the id EventoDB will store.
    pub id: Uuid,
    /// `true` when the idempotency key already named a row with the same content: nothing
    /// new was stored and `id` is that row's.
    pub replayed: bool,
}

/// A pending [`Outbox::write`] or [`Outbox::publish`]: set options, then `.await` it.
///
/// # Errors
/// Awaiting gives [`Error::InvalidArgument`] (bad stream, type, data, metadata, key),
/// [`Error::InvalidEvent`] (an event's own validation), [`Error::IdempotencyConflict`] (the
/// key names a row with other content), [`Error::OutboxDuplicateId`] (a custom id already in
/// the outbox), [`Error::NotMigrated`] (no outbox table: run [`migrate`](crate::migrate())
/// first) or [`Error::Database`]. Input errors come before anything touches the database.
#[must_use = "a write does nothing until it is awaited"]
pub struct Write<'a, DB: Backend> {
    outbox: &'a Outbox<DB>,
    conn: &'a mut DB::Connection,
    stream: String,
    message: Result<RawMessage>,
    spec: WriteSpec,
}

impl<'a, DB: Backend> Write<'a, DB> {
    pub(super) fn new(
        outbox: &'a Outbox<DB>,
        conn: &'a mut DB::Connection,
        stream: String,
        message: Result<RawMessage>,
    ) -> Self {
        Self {
            outbox,
            conn,
            stream,
            message,
            spec: WriteSpec::default(),
        }
    }

    /// EventoDB accepts the write only if the stream is at this version (`-1`: no stream).
    /// A mismatch parks the stream in the outbox (see [`Outbox::failed`]).
    pub fn expected_version(mut self, version: i64) -> Self {
        self.spec.expected_version = Some(version);
        self
    }

    /// The message id to store (default: a fresh UUIDv7).
    pub fn id(mut self, id: Uuid) -> Self {
        self.spec.id = Some(id);
        self
    }

    /// Metadata for the message (a JSON object); replaces metadata set on the message.
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.spec.metadata = Some(metadata);
        self
    }

    /// A key unique per namespace: a second write with the same key stores nothing and
    /// returns the first one's id (or [`Error::IdempotencyConflict`] if its content differs).
    /// Without it, a string `data.idempotency_key` serves as the key.
    ///
    /// The key is remembered while its row is in the outbox (until it is purged after the
    /// sender's retention).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.spec.idempotency_key = Some(key.into());
        self
    }

    async fn run(self) -> Result<Written> {
        let mut checked = message::check(&self.stream, self.message?, self.spec)?;
        crate::trace_context::inject(&mut checked.metadata);
        insert(self.outbox, self.conn, &checked).await
    }
}

impl<'a, DB: Backend> IntoFuture for Write<'a, DB> {
    type Output = Result<Written>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Written>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// One message of an [`Outbox::write_batch`].
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    stream: String,
    message: RawMessage,
    spec: WriteSpec,
}

impl OutboxMessage {
    /// A message for `stream`.
    pub fn new(stream: impl Into<String>, message: RawMessage) -> Self {
        Self {
            stream: stream.into(),
            message,
            spec: WriteSpec::default(),
        }
    }

    /// A typed event, for its own stream. Validated when the batch is written.
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] when the event breaks its schema, [`Error::InvalidArgument`]
    /// when it does not serialize to a JSON object.
    pub fn event<E: Event>(event: &E) -> Result<Self> {
        Ok(Self::new(event.stream_name(), event_message(event)?))
    }

    /// See [`Write::expected_version`].
    pub fn expected_version(mut self, version: i64) -> Self {
        self.spec.expected_version = Some(version);
        self
    }

    /// See [`Write::id`].
    pub fn id(mut self, id: Uuid) -> Self {
        self.spec.id = Some(id);
        self
    }

    /// See [`Write::idempotency_key`].
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.spec.idempotency_key = Some(key.into());
        self
    }
}

/// Checks every message, then inserts them in order.
pub(super) async fn write_batch<DB: Backend>(
    outbox: &Outbox<DB>,
    conn: &mut DB::Connection,
    messages: Vec<OutboxMessage>,
) -> Result<Vec<Written>> {
    let mut checked = messages
        .into_iter()
        .map(|item| message::check(&item.stream, item.message, item.spec))
        .collect::<Result<Vec<_>>>()?;
    for message in &mut checked {
        // After the content hash: a replayed idempotent write matches whatever its trace.
        crate::trace_context::inject(&mut message.metadata);
    }
    // All rows or none, whatever the caller passed. Inside the caller's transaction this is
    // a savepoint: a failed insert (a custom id already used, a key reused with other
    // content) takes the batch's earlier rows back with it, and on PostgreSQL the caller's
    // transaction stays usable. On a bare connection it is a transaction of its own: each
    // insert would otherwise commit by itself, and the rows before the failure be sent.
    let db = |source| Error::Database { source };
    let mut unit = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
    let mut written = Vec::with_capacity(checked.len());
    for message in &checked {
        match insert(outbox, &mut *unit, message).await {
            Ok(one) => written.push(one),
            Err(error) => {
                unit.rollback().await.map_err(db)?;
                return Err(error);
            }
        }
    }
    unit.commit().await.map_err(db)?;
    Ok(written)
}

/// Serializes and validates a typed event.
pub(super) fn event_message<E: Event>(event: &E) -> Result<RawMessage> {
    event.validate()?;
    let data = serde_json::to_value(event)
        .map_err(|error| Error::InvalidArgument(format!("event does not serialize: {error}")))?;
    Ok(RawMessage::new(E::TYPE, data))
}

async fn insert<DB: Backend>(
    outbox: &Outbox<DB>,
    conn: &mut DB::Connection,
    checked: &CheckedMessage,
) -> Result<Written> {
    // Before the insert: on a bare SQLite connection the insert commits by itself, and a
    // hook set after it would wake the sender only at the connection's next commit. Armed
    // for an insert that adds nothing, it costs at most one wake-up for nothing.
    DB::after_insert(conn).await?;
    match DB::insert(conn, outbox.namespace(), checked).await? {
        Inserted::New => {
            tracing::debug!(
                stream = %checked.stream,
                id = %checked.id,
                message_type = %checked.message_type,
                "outbox row written"
            );
            Ok(Written {
                id: checked.id,
                replayed: false,
            })
        }
        Inserted::Existing { id, content_hash } => {
            let existing_id = Uuid::parse_str(&id)
                .map_err(|error| Error::Internal(format!("outbox id {id:?}: {error}")))?;
            let key = checked.idempotency_key.clone().unwrap_or_default();
            if content_hash == checked.content_hash {
                tracing::debug!(%key, id = %existing_id, "outbox write replayed");
                Ok(Written {
                    id: existing_id,
                    replayed: true,
                })
            } else {
                Err(Error::IdempotencyConflict { key, existing_id })
            }
        }
    }
}
