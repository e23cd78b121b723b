//! Typed events on [EventoDB](https://github.com/eventodb-hq/eventodb): a client for every RPC
//! method, a transactional outbox on PostgreSQL and SQLite, and consumers that track their
//! position, skip what they already handled and wake on server pokes.
//!
//! - Events are Rust types: generated from JSON Schema files by `eventodb-kit-codegen` (in
//!   `build.rs`, brought in with [`include_events!`]), or hand-written with
//!   [`#[derive(Event)]`](derive@Event).
//! - [`Outbox`]: an event is written in the application's own database transaction and sent
//!   to EventoDB in the background, exactly once, in commit order per stream.
//! - [`consumer`](mod@consumer): `#[consumer(category = "...")]` on an impl block of per-event handlers; the
//!   position, processed events and parked streams live in the application's database.
//! - [`Kit`] ties a [`Client`] to a sqlx pool; [`Kit::workers`] runs the sender and the
//!   consumers under one handle.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use eventodb_kit::consumer::{ConsumerOptions, HandlerError};
//! use eventodb_kit::outbox::SenderOptions;
//! use eventodb_kit::{Event, Kit, consumer};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, Serialize, Deserialize, Event)]
//! #[event(category = "account", stream = "account-{account_id}")]
//! struct Deposited {
//!     account_id: u64,
//!     amount: u64,
//! }
//!
//! struct Audit;
//!
//! #[consumer(category = "account")]
//! impl Audit {
//!     async fn deposited(&self, event: Deposited) -> Result<(), HandlerError> {
//!         println!("account {} got {}", event.account_id, event.amount);
//!         Ok(())
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = eventodb_kit::sqlx::SqlitePool::connect("sqlite://app.db?mode=rwc").await?;
//! eventodb_kit::migrate(&pool).await?; // the kit's tables, in its own version table
//! let kit = Kit::builder("http://127.0.0.1:8080")
//!     .token("ns_...")
//!     .database(pool)
//!     .build()?;
//! let workers = kit
//!     .workers()
//!     .outbox_sender(SenderOptions::default())
//!     .consumer(Audit, ConsumerOptions::new("audit"))
//!     .spawn()
//!     .await?;
//!
//! let mut tx = kit.begin().await?; // your transaction: your rows and the event commit together
//! let written = kit
//!     .outbox()
//!     .publish(&mut tx, &Deposited { account_id: 7, amount: 5 })
//!     .await?;
//! tx.commit().await?;
//!
//! let sent = kit.outbox().wait_sent(written.id, Duration::from_secs(5)).await?;
//! println!("stored at global position {}", sent.global_position);
//! workers.shutdown().await?; // finishes in-flight work, saves positions
//! # Ok(()) }
//! ```

// The integration tests' PostgreSQL schema helper, shared with unit tests, names the crate.
#[cfg(test)]
extern crate self as eventodb_kit;

pub mod client;
#[doc(hidden)]
pub mod codegen_support;
pub mod consumer;
#[doc(hidden)]
pub mod consumer_support;
mod error;
pub mod event;
mod kit;
pub mod metrics;
pub mod migrate;
pub mod outbox;
pub mod registry;
pub mod trace_context;
mod workers;

pub use client::{Client, MessageId};
pub use error::{Error, ErrorCode, Result};
pub use event::{Event, ValidationError, Violation};
pub use kit::{Kit, KitBuilder};
pub use migrate::{migrate, migrate_down, migrations};
pub use outbox::{Backend, Outbox, RawMessage};
pub use workers::{RunningWorkers, Workers};

/// The crates that appear in this crate's API, at the versions it is built with: an
/// application that names their types through these paths (`eventodb_kit::sqlx::SqlitePool`,
/// `eventodb_kit::uuid::Uuid`) cannot pick a version that does not fit (sqlx 0.8 here: a
/// pool of another sqlx is not a [`Backend`]).
pub use {chrono, serde_json, sqlx, uuid};

/// Derive [`Event`] for a hand-written struct or enum.
pub use eventodb_kit_macros::Event;

/// Implement [`Consumer`](consumer::Consumer) for an impl block of typed event handlers.
pub use eventodb_kit_macros::consumer;

/// Items the macros and generated code refer to. Not a public API: anything here may change
/// in any release.
#[doc(hidden)]
pub mod __private {
    pub use serde;
    pub use serde_json;

    // For `#[derive(Event)]`.
    pub use std::format;
    pub use std::string::String;

    /// A value that can fill a stream-name placeholder: anything `Display`. The trait exists
    /// for its diagnostic, which says what to do at the field's type.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot fill a stream-name placeholder: it does not implement `Display`",
        label = "placeholder field without `Display`",
        note = "stream-name placeholders are formatted with `Display`: implement it for `{Self}`, or name another field in the template"
    )]
    pub trait StreamPart {
        /// The value, as the `format!` of `stream_name` sees it.
        fn as_display(&self) -> &dyn std::fmt::Display;
    }

    impl<T: std::fmt::Display> StreamPart for T {
        #[inline]
        fn as_display(&self) -> &dyn std::fmt::Display {
            self
        }
    }

    /// A stream-name placeholder's value. The derive spans each call at the field's type, so
    /// a field without `Display` is reported there, and only there (the `format!` sees a
    /// `dyn Display`).
    #[inline]
    pub fn stream_part<T: StreamPart>(value: &T) -> &dyn std::fmt::Display {
        value.as_display()
    }

    // For code generated by `eventodb-kit-codegen`: the types and derives it names.
    pub use crate::codegen_support as codegen;
    pub use chrono;
    pub use regex;
    pub use schemars;
    pub use uuid;

    // For `#[consumer]`.
    pub use crate::consumer_support as consumer;
}

/// Includes the events `eventodb-kit-codegen` generated into `$OUT_DIR` (by default
/// `eventodb_events.rs`; pass another file name if the build script set one).
///
/// # Examples
///
/// ```ignore
/// // build.rs: eventodb_kit_codegen::Settings::new("schemas").run();
/// pub mod events {
///     eventodb_kit::include_events!();
/// }
/// ```
#[macro_export]
macro_rules! include_events {
    () => {
        include!(concat!(env!("OUT_DIR"), "/eventodb_events.rs"));
    };
    ($file:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $file));
    };
}
