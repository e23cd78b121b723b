//! The transactional outbox: events written inside the application's own database
//! transaction, sent to EventoDB in the background, exactly once and in commit order per
//! stream.
//!
//! # Examples
//! ```no_run
//! use eventodb_kit::Kit;
//! use eventodb_kit::outbox::{RawMessage, SenderOptions};
//! use serde_json::json;
//! use sqlx::SqlitePool;
//!
//! # async fn run() -> eventodb_kit::Result<()> {
//! let pool = SqlitePool::connect("sqlite://app.db?mode=rwc").await.unwrap();
//! eventodb_kit::migrate(&pool).await?;
//! let kit = Kit::builder("http://127.0.0.1:8080").database(pool.clone()).build()?;
//!
//! let mut tx = pool.begin().await.unwrap();
//! kit.outbox()
//!     .write(&mut tx, "account-7", RawMessage::new("Deposited", json!({ "amount": 5 })))
//!     .expected_version(3)
//!     .idempotency_key("deposit-7-2026-11-26")
//!     .await?;
//! tx.commit().await.unwrap(); // rolled back: nothing is ever sent
//!
//! let sender = kit.outbox().spawn_sender(SenderOptions::default()).await?;
//! // ...
//! sender.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! # How it keeps its promises
//! * **Exactly once.** The message id is fixed when the row is written and reused on every
//!   attempt. A duplicate-id error from EventoDB proves an earlier attempt landed. A row whose
//!   last attempt had an unknown outcome (timeout, lost connection, 5xx, a sender that died
//!   holding its lease) is looked up in its stream before it is sent again, and so is a row
//!   that meets a version conflict.
//! * **Order.** Per stream, rows go out in `seq` order; a stream whose head waits (for a
//!   retry, or parked by a permanent failure) holds back its later rows, other streams flow.
//! * **Several processes.** A sender leases each stream it claims (one lease row per stream,
//!   covering the rows it took); claims of a stream are serialized (on PostgreSQL by an
//!   advisory lock and the stream's lease row, on SQLite by its single writer), so two senders
//!   never hold rows of one stream at once. A lease keeps fencing the rows sent under it until
//!   their sends are recorded.
//! * **Verification.** Sent rows are read back from EventoDB before they may be purged; an
//!   event EventoDB lost after acknowledging it is sent again (see
//!   [`SenderOptions::verification`]) and counted in [`OutboxStatus::lost`].

mod admin;
pub(crate) mod backend;
mod lookup;
mod message;
mod sender;
pub(crate) mod wake;
mod write;

use std::fmt;
use std::sync::Arc;

use sqlx::Pool;

pub use backend::{Backend, DialectKind, Migration, OutboxRow, OutboxStatus, RowStatus};
pub use message::RawMessage;
pub use sender::{Sender, SenderOptions};
pub use write::{OutboxMessage, Write, Written};

use crate::client::Client;
use crate::error::Result;
use crate::event::Event;

/// The outbox of one namespace in one database. Cheap to clone.
pub struct Outbox<DB: Backend> {
    inner: Arc<Inner<DB>>,
}

struct Inner<DB: Backend> {
    pool: Pool<DB>,
    client: Client,
    namespace: String,
}

impl<DB: Backend> Clone for Outbox<DB> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<DB: Backend> fmt::Debug for Outbox<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox")
            .field("namespace", &self.inner.namespace)
            .finish_non_exhaustive()
    }
}

impl<DB: Backend> Outbox<DB> {
    /// An outbox in `pool` for the namespace of `client`'s token (`default` without one).
    /// Run [`migrate`](crate::migrate()) on the pool first.
    pub fn new(pool: Pool<DB>, client: Client) -> Self {
        let namespace = client.namespace().unwrap_or("default").to_owned();
        Self {
            inner: Arc::new(Inner {
                pool,
                client,
                namespace,
            }),
        }
    }

    /// The same outbox over another pool to the same database (the sender's own; see
    /// `Dialect::sender_pool`).
    pub(crate) fn with_pool(&self, pool: Pool<DB>) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                client: self.inner.client.clone(),
                namespace: self.inner.namespace.clone(),
            }),
        }
    }

    /// The namespace the rows are written for.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The database pool.
    pub fn pool(&self) -> &Pool<DB> {
        &self.inner.pool
    }

    /// The EventoDB client the sender uses.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Writes `message` for `stream` inside the caller's transaction (pass `&mut tx`) or on
    /// a connection. Set options on the returned [`Write`], then `.await` it. A rolled-back
    /// transaction leaves nothing to send.
    ///
    /// On PostgreSQL a failing statement aborts the caller's transaction; input errors are
    /// caught before any statement runs.
    pub fn write<'a>(
        &'a self,
        conn: &'a mut DB::Connection,
        stream: impl Into<String>,
        message: RawMessage,
    ) -> Write<'a, DB> {
        Write::new(self, conn, stream.into(), Ok(message))
    }

    /// Writes a typed event to its stream ([`Event::stream_name`]) with type [`Event::TYPE`],
    /// after [`Event::validate`]. Options as for [`Outbox::write`].
    pub fn publish<'a, E: Event>(
        &'a self,
        conn: &'a mut DB::Connection,
        event: &E,
    ) -> Write<'a, DB> {
        Write::new(self, conn, event.stream_name(), write::event_message(event))
    }

    /// Writes several messages in order; every message is checked before the first row is
    /// inserted.
    ///
    /// The batch is all or nothing. Inside the caller's transaction it runs in a savepoint:
    /// when a row cannot be written (a custom id already in the outbox, an idempotency key
    /// reused with other content), the batch's earlier rows are taken back and the caller's
    /// transaction stays usable, on PostgreSQL too. On a bare connection it commits as one
    /// transaction of its own; there, on PostgreSQL, do not drop the future before it
    /// completes (sqlx 0.8's `begin` can leave the connection inside the transaction it began:
    /// upstream issue 4385), or pass a transaction ([`Kit::begin`](crate::Kit::begin)).
    ///
    /// # Errors
    /// As for [`Write`].
    pub async fn write_batch(
        &self,
        conn: &mut DB::Connection,
        messages: Vec<OutboxMessage>,
    ) -> Result<Vec<Written>> {
        write::write_batch(self, conn, messages).await
    }

    /// Starts a sender: a background task that sends committed rows to EventoDB.
    ///
    /// A PostgreSQL database that cannot be reached yet (refused, reset, starting up) is
    /// waited for: the sender starts, and delivers once the database answers.
    ///
    /// # Errors
    /// [`Error::NotMigrated`](crate::Error::NotMigrated) when the outbox tables are missing
    /// (run [`migrate`](crate::migrate()) first).
    /// [`Error::Database`](crate::Error::Database) when PostgreSQL refuses the sender's
    /// listening connection for a reason waiting cannot mend (authentication, a missing
    /// database), or when a SQLite pool fails the query that asks which file it holds.
    pub async fn spawn_sender(&self, options: SenderOptions) -> Result<Sender> {
        sender::spawn(self.clone(), options).await
    }
}
