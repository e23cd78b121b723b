//! The EventoDB a scenario talks to: its own embedded server, or, when `EVENTODB_URL` is set,
//! a fresh namespace on that real server (created with `EVENTODB_TOKEN`), so that every
//! scenario that does not need fault injection also runs against a real EventoDB.

#![allow(dead_code)]

use std::time::Duration;

use eventodb_kit::client::{Client, NsCreateOptions, Token};
use eventodb_kit::{Backend, Error, Kit};
use eventodb_kit_testkit::{Backend as ServerBackend, TestServer};
use sqlx::Pool;
use uuid::Uuid;

/// The variable naming a real EventoDB.
pub(crate) const URL_VAR: &str = "EVENTODB_URL";

/// An EventoDB for one scenario.
pub(crate) struct Env {
    /// The embedded server; `None` on a real EventoDB.
    pub(crate) server: Option<TestServer>,
    /// A client for the scenario's namespace.
    pub(crate) client: Client,
}

impl Env {
    /// The embedded server, or with `EVENTODB_URL` a new namespace there (its name starts
    /// with `prefix`).
    pub(crate) async fn new(prefix: &str) -> Env {
        match std::env::var(URL_VAR) {
            Ok(url) => Env::real(&url, prefix).await,
            Err(_) => Env::embedded().await,
        }
    }

    /// The embedded server only (for fault injection and request counts); `None` with a
    /// printed reason when `EVENTODB_URL` is set.
    pub(crate) async fn ours(test: &str) -> Option<Env> {
        if std::env::var_os(URL_VAR).is_some() {
            eprintln!("skipped {test}: needs the embedded server's fault injection");
            return None;
        }
        Some(Env::embedded().await)
    }

    /// Like [`Env::new`], but the embedded server follows the Pebble backend's rules
    /// ([`ServerBackend::Pebble`]: among them, a grouped `category.get` looks at only
    /// `batchSize × size` messages). A real EventoDB is whatever backend it runs.
    pub(crate) async fn pebble_or_real(prefix: &str) -> Env {
        match std::env::var(URL_VAR) {
            Ok(url) => Env::real(&url, prefix).await,
            Err(_) => Env::embedded_on(ServerBackend::Pebble).await,
        }
    }

    /// The embedded server following the Pebble backend's rules (any string is accepted as
    /// a message id and echoed verbatim), for scenarios about ids other producers chose;
    /// `None` with a printed reason when `EVENTODB_URL` is set (its backend may reject them).
    pub(crate) async fn pebble(test: &str) -> Option<Env> {
        if std::env::var_os(URL_VAR).is_some() {
            eprintln!("skipped {test}: needs the embedded server's Pebble rules");
            return None;
        }
        Some(Env::embedded_on(ServerBackend::Pebble).await)
    }

    async fn embedded() -> Env {
        Env::embedded_on(ServerBackend::default()).await
    }

    async fn embedded_on(backend: ServerBackend) -> Env {
        let server = TestServer::builder()
            .backend(backend)
            .start()
            .await
            .expect("test server");
        let client = Client::builder(server.url())
            .token(Token::parse(server.default_token()).expect("token"))
            .request_timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        Env {
            server: Some(server),
            client,
        }
    }

    async fn real(url: &str, prefix: &str) -> Env {
        let mut admin = Client::builder(url.to_owned());
        if let Ok(token) = std::env::var("EVENTODB_TOKEN") {
            admin = admin.token(Token::parse(&token).expect("EVENTODB_TOKEN"));
        }
        let admin = admin.build().expect("client");
        for _ in 0..20 {
            let namespace = format!("{prefix}{}", &Uuid::new_v4().simple().to_string()[..12]);
            match admin.ns_create(&namespace, &NsCreateOptions::new()).await {
                Ok(created) => {
                    let client = Client::builder(url.to_owned())
                        .token(created.token)
                        .request_timeout(Duration::from_secs(10))
                        .build()
                        .expect("client");
                    return Env {
                        server: None,
                        client,
                    };
                }
                // A taken name: draw another.
                Err(Error::InvalidArgument(_)) => continue,
                Err(error) => panic!("ns.create on {url}: {error}"),
            }
        }
        panic!("could not name a namespace on {url}");
    }

    /// Writes one message under an id of another producer's choosing (the SDK itself only
    /// writes UUIDs), with a raw call.
    pub(crate) async fn write_with_id(&self, stream: &str, message_type: &str, id: &str) -> i64 {
        let written = self
            .client
            .call_raw(
                "stream.write",
                &[
                    serde_json::json!(stream),
                    serde_json::json!({ "type": message_type, "data": {} }),
                    serde_json::json!({ "id": id }),
                ],
            )
            .await
            .expect("stream.write");
        written["globalPosition"].as_i64().expect("globalPosition")
    }

    /// The embedded server (panics on a real EventoDB: use [`Env::ours`] for such tests).
    pub(crate) fn server(&self) -> &TestServer {
        self.server.as_ref().expect("embedded server")
    }

    /// A kit on `pool` for this EventoDB.
    pub(crate) fn kit<DB: Backend>(&self, pool: &Pool<DB>) -> Kit<DB> {
        Kit::builder("unused")
            .client(self.client.clone())
            .database(pool.clone())
            .build()
            .expect("kit")
    }

    /// How many `method` requests the embedded server answered (`None` on a real EventoDB,
    /// which does not say).
    pub(crate) fn count(&self, method: &str) -> Option<u64> {
        self.server
            .as_ref()
            .map(|server| server.stats().count(method))
    }
}
