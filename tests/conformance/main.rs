//! The EventoDB SDK conformance cases (`../shared/sdk-conformance.md`), one test per case,
//! named after its id, plus the cases the real server taught us and error paths against
//! deliberately broken HTTP servers.
//!
//! By default every test starts its own embedded `TestServer`; with `EVENTODB_URL` (and
//! `EVENTODB_TOKEN`) set, the tests run against that real EventoDB, each in a namespace of
//! its own created with `ns.create`. Cases the server cannot support (auth errors in test
//! mode, fault injection on a real server) print `SKIPPED <test>: <reason>` and pass.

mod auth;
mod beyond;
mod broken_server;
mod category;
mod edge;
mod encoding;
mod error;
mod last_version;
mod ns;
mod read;
mod sse;
mod sys;
mod util;
mod write;
