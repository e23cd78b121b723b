//! Consumers: handlers run for every message of a category, once, in order, with their
//! position and processed records kept in the application's database.
//!
//! # What a consumer promises
//! * **Nothing lost.** The position (the last global position dealt with) is saved in
//!   `eventodb_kit_consumer_positions` and never moves past a message that was not handled,
//!   parked or skipped on purpose; reads continue at position + 1 (`category.get` is
//!   inclusive). A restarted consumer resumes from there.
//! * **Nothing handled twice by accident.** Every handled message is recorded as processed
//!   under (namespace, category, consumer name, event id): consumers with different names
//!   never shadow each other, and the members of a group share their records. A plain
//!   handler is at-least-once (a crash before the next save repeats the messages since);
//!   its records are saved one row per batch (`eventodb_kit_processed_batches`) in the
//!   transaction that saves the position. A transactional one (see
//!   [`ConsumerOptions::transactional`]) commits its writes, its processed record (a row of
//!   `eventodb_kit_processed_events`) and the position together: exactly-once effects.
//! * **Groups.** A member sends its `consumerGroup` to the server, which assigns streams
//!   (md5 of the cardinal id); nothing is filtered here. Each member saves its own
//!   position per group size; after a resize every member of the new size starts from the
//!   lowest saved position and skips what the processed records show as handled, so
//!   resizing loses and repeats nothing (see the `group` module for the rule).
//! * **Failures are visible.** A failing handler is retried with capped backoff, then the
//!   [`FailurePolicy`] stops the consumer with a typed error, parks the stream, or skips the
//!   event with a record.
//! * **Live.** One SSE subscription per process and namespace wakes the consumer of a poked
//!   category at once; polling is the fallback.
//!
//! # Examples
//! ```no_run
//! use std::time::Duration;
//! use eventodb_kit::Kit;
//! use eventodb_kit::consumer::{consumer_fn, ConsumerOptions, Handled, HandlerError};
//!
//! # async fn run(kit: Kit<sqlx::Sqlite>) -> eventodb_kit::Result<()> {
//! let workers = kit
//!     .workers()
//!     .consumer(
//!         consumer_fn("account", |message| async move {
//!             println!("{} {}", message.stream_name, message.message_type);
//!             Ok::<_, HandlerError>(Handled::Done)
//!         }),
//!         ConsumerOptions::new("printer"),
//!     )
//!     .spawn()
//!     .await?;
//! if let Some(printer) = workers.consumer("printer") {
//!     printer.wait_for(42, Duration::from_secs(5)).await?;
//! }
//! workers.shutdown().await?;
//! # Ok(()) }
//! ```

mod admin;
pub(crate) mod backoff;
mod correlation;
mod group;
mod handle;
mod handler;
mod hub;
mod options;
pub(crate) mod runtime;
pub(crate) mod store;

pub use admin::{ConsumerAdmin, ConsumerName, ConsumerPosition, MemberState, ParkedEvent};
pub use futures_util::future::BoxFuture;
pub use group::group_member;
pub use handle::{ConsumerHandle, Lag};
pub use handler::{Consumer, Context, FnConsumer, Handled, HandlerError, consumer_fn};
pub(crate) use hub::Hub;
pub use hub::HubOptions;
pub use options::{ConsumerOptions, FailurePolicy, RetryPolicy};
