//! Typed events on [EventoDB](https://github.com/eventodb-hq/eventodb): a client for every RPC
//! method, a transactional outbox on PostgreSQL and SQLite, and consumers that track their
//! position, skip what they already handled and wake on server pokes.

pub mod client;
mod error;
pub mod event;

pub use client::Client;
pub use error::{Error, ErrorCode, Result};
pub use event::{Event, ValidationError, Violation};

/// Derive [`Event`] for a hand-written struct or enum.
pub use eventodb_kit_macros::Event;

/// Items the macros and generated code refer to. Not a public API: anything here may change
/// in any release.
#[doc(hidden)]
pub mod __private {
    pub use serde;
    pub use serde_json;
}
