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
//! # Faults and knobs
//!
//! | want | use |
//! |---|---|
//! | the next N requests fail with `500 BACKEND_ERROR`, nothing applied | [`Faults::fail_next`] |
//! | the request is applied, then `500` (outcome unknown) | [`Faults::fail_after_apply`] |
//! | the request is applied, then the connection closes without answer | [`Faults::drop_after_apply`] |
//! | the request is applied, then `200` with a body that is not its result | [`Faults::garble_after_apply`] |
//! | slow server | [`Faults::latency`] |
//! | a write that lands after its client gave up waiting | [`Faults::delay_next_writes`] |
//! | connections closed at once (port still bound) | [`Faults::refuse_connections`] |
//! | connection refused by the OS (server down) | [`TestServer::pause`] / [`TestServer::resume`] |
//! | every SSE connection drops | [`Faults::drop_sse_connections`] |
//! | restart, data kept, subscriptions lost | [`TestServer::restart`] |
//! | acknowledged writes lost on restart, like Pebble | [`Faults::forget_last_writes`], [`Faults::forget_writes_since_start`] |
//! | a Pebble crash now (writes since start lost, everything dropped) | [`Faults::crash`] |
//! | Pebble's crash on `category.get` with `batchSize: -1` | [`Faults::crash_on_unlimited_category_get`] |
//! | Pebble's short `category.get` answers (a window of keys scanned, then filtered by group and correlation) | [`Backend::Pebble`] |
//! | "no requests while idle" | [`TestServer::stats`] |
//! | test mode, fixed token, nanosecond times, body/header limits, idle timeout, the 100-poke buffer, the catch-up/subscribe race | [`TestServerBuilder`] |
//!
//! Where the real backends differ, the SQLite rules apply by default (test mode's reference
//! backend; [`Backend::Pebble`] switches to Pebble's):
//! ids must parse as UUIDs and are unique per namespace (textually), `batchSize` ≤ 0 is
//! unlimited, `stream.get` ignores `position` when `globalPosition` is given, correlation
//! is `LIKE '<c>-%'` (case-insensitive), `category.get` filters by group and correlation
//! before it applies `batchSize`, `ns.streams` prefixes are case-insensitive `LIKE`
//! patterns, and message times are whole seconds unless
//! [`TimePrecision::Nanoseconds`] is chosen.
//!
//! Not emulated: `/import` and `/debug/pprof` (both answer `404 NOT_FOUND`), the 30 s read
//! timeout's `408` for stalled *headers* (those are closed after the idle timeout instead; a
//! stalled body gets the `408`, see [`TestServerBuilder::read_timeout`]), out-of-order
//! publishing (pokes are published in write order), and JSON nesting beyond 1000 levels (Go
//! allows 10000). The catch-up/subscribe race is off by default
//! ([`TestServerBuilder::subscribe_gap`] turns it on).

mod auth;
mod backend;
mod env;
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

pub use backend::Backend;
pub use env::{EnvError, TOKEN_VAR, TestEventoDb, URL_VAR};
pub use faults::{Faults, RequestStats};
pub use server::{
    DEFAULT_BODY_LIMIT, DEFAULT_HEADER_LIMIT, DEFAULT_IDLE_TIMEOUT, DEFAULT_READ_TIMEOUT, Error,
    TestServer, TestServerBuilder, VERSION,
};
pub use time::TimePrecision;
