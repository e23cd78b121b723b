//! An in-process, in-memory, EventoDB-compatible server for tests and the quick start, with
//! fault injection.
//!
//! It answers like EventoDB 0.7.0 in test mode with its SQLite backend (see
//! `eventodb-protocol.md` section 12): the same routes, JSON envelope, validation messages,
//! status codes, auth rules, positions, consumer groups, correlation, `ns.*` placeholders,
//! Go-style JSON numbers, and SSE framing, including the server's habit of sending no
//! response headers on a stream or category subscription until the first poke.
//!
//! ```no_run
//! use eventodb_kit_testkit::TestServer;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TestServer::start().await?;
//! let body = reqwest::Client::new()
//!     .post(format!("{}/rpc", server.url()))
//!     .bearer_auth(server.default_token())
//!     .body(r#"["stream.write", "account-1", {"type": "Opened", "data": {}}]"#)
//!     .send()
//!     .await?
//!     .text()
//!     .await?;
//! assert_eq!(body, "{\"globalPosition\":1,\"position\":0}\n");
//!
//! server.faults().fail_next(1); // the next request gets a 500 BACKEND_ERROR
//! server.restart().await?;      // same port, data kept
//! # Ok(()) }
//! ```
//!
//! Not emulated: `/import` and `/debug/pprof` (both answer `404 NOT_FOUND`), the 30 s read
//! timeout's `408` (a stalled request is closed after the idle timeout instead), out-of-order
//! publishing (pokes are published in write order), and JSON nesting beyond 1000 levels (Go
//! allows 10000). The catch-up/subscribe race is off by default
//! ([`TestServerBuilder::subscribe_gap`] turns it on).

mod auth;
mod faults;
mod groups;
mod http;
mod json;
mod pubsub;
mod query;
mod reads;
mod rpc;
mod server;
mod sse;
mod state;
mod store;
mod time;
mod token;

pub use faults::{Faults, RequestStats};
pub use server::{
    DEFAULT_BODY_LIMIT, DEFAULT_HEADER_LIMIT, DEFAULT_IDLE_TIMEOUT, Error, TestServer,
    TestServerBuilder, VERSION,
};
pub use time::TimePrecision;
