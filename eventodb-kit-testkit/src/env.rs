//! The EventoDB a test runs against: the embedded server, or a real one named by
//! `EVENTODB_URL`, so that one test suite runs on both.

use std::time::Duration;

use serde_json::{Value, json};

use crate::TestServer;

/// The variable naming a real EventoDB (e.g. `http://127.0.0.1:8080`).
pub const URL_VAR: &str = "EVENTODB_URL";
/// The variable with a token of that server (any namespace's: `ns.create` and `ns.delete` take
/// any valid token), for a server that is not in test mode.
pub const TOKEN_VAR: &str = "EVENTODB_TOKEN";

/// Why [`TestEventoDb`] could not give a test its EventoDB.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// The embedded server did not start.
    #[error("the embedded EventoDB did not start")]
    Start(#[from] crate::Error),
    /// The real server did not answer `ns.create` as EventoDB does.
    #[error("ns.create on {url} failed: {message}")]
    Namespace {
        /// The server.
        url: String,
        /// What went wrong (the server's error, or the transport's).
        message: String,
    },
}

/// The EventoDB of one test: with `EVENTODB_URL` set, a fresh namespace on that server (made
/// with `ns.create`, the token in `EVENTODB_TOKEN` when the server wants one; deleted by
/// [`TestEventoDb::cleanup`]); without it, the embedded [`TestServer`]. Tests that use only
/// [`url`](Self::url) and [`token`](Self::token) run unchanged against both, and reach for
/// [`embedded`](Self::embedded) only for fault injection.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let eventodb = eventodb_kit_testkit::TestEventoDb::from_env("orders").await?;
/// // Kit::builder(eventodb.url()).token(eventodb.token()) ...
/// if let Some(server) = eventodb.embedded() {
///     server.faults().fail_next(1);
/// }
/// eventodb.cleanup().await;
/// # Ok(()) }
/// ```
pub struct TestEventoDb {
    url: String,
    token: String,
    /// The namespace made on a real server, deleted by `cleanup`.
    namespace: Option<String>,
    admin_token: Option<String>,
    server: Option<TestServer>,
}

/// Shows no token: on a real server the admin token can create and delete any namespace.
impl std::fmt::Debug for TestEventoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEventoDb")
            .field("url", &self.url)
            .field("namespace", &self.namespace)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl TestEventoDb {
    /// A real EventoDB when `EVENTODB_URL` is set (a new namespace there, whose name starts
    /// with `prefix`), else the embedded server.
    ///
    /// # Errors
    /// [`EnvError`] when the embedded server does not start, or the real one refuses the
    /// namespace.
    pub async fn from_env(prefix: &str) -> Result<Self, EnvError> {
        match std::env::var(URL_VAR) {
            Ok(url) => Self::real(&url, std::env::var(TOKEN_VAR).ok(), prefix).await,
            Err(_) => Self::embedded_server().await,
        }
    }

    /// The embedded server.
    ///
    /// # Errors
    /// [`EnvError::Start`].
    pub async fn embedded_server() -> Result<Self, EnvError> {
        let server = TestServer::start().await?;
        Ok(Self {
            url: server.url(),
            token: server.default_token().to_owned(),
            namespace: None,
            admin_token: None,
            server: Some(server),
        })
    }

    /// A new namespace, named `prefix` and a random suffix, on the EventoDB at `url`.
    ///
    /// # Errors
    /// [`EnvError::Namespace`].
    pub async fn real(
        url: &str,
        admin_token: Option<String>,
        prefix: &str,
    ) -> Result<Self, EnvError> {
        let url = url.trim_end_matches('/').to_owned();
        let failed = |message: String| EnvError::Namespace {
            url: url.clone(),
            message,
        };
        let client = http_client().map_err(|error| failed(error.to_string()))?;
        // A name that is taken already: draw another.
        for _ in 0..20 {
            let namespace = format!(
                "{prefix}{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let reply = rpc(
                &client,
                &url,
                admin_token.as_deref(),
                json!(["ns.create", namespace, {"description": "a test's namespace"}]),
            )
            .await
            .map_err(failed)?;
            match reply {
                Ok(created) => {
                    let token = created["token"]
                        .as_str()
                        .ok_or_else(|| failed(format!("no token in {created}")))?
                        .to_owned();
                    return Ok(Self {
                        url,
                        token,
                        namespace: Some(namespace),
                        admin_token,
                        server: None,
                    });
                }
                Err(error) if error["code"] == "NAMESPACE_EXISTS" => {}
                Err(error) => return Err(failed(error.to_string())),
            }
        }
        Err(failed("20 random names were all taken".to_owned()))
    }

    /// The server's base URL (give it to `Kit::builder` or `Client::builder`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A token for the test's namespace.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The embedded server, for fault injection and request counts; `None` on a real
    /// EventoDB (skip what needs it there).
    pub fn embedded(&self) -> Option<&TestServer> {
        self.server.as_ref()
    }

    /// Deletes the namespace made on a real server (best effort: a test that failed may have
    /// left the server unreachable); stops the embedded server.
    pub async fn cleanup(self) {
        if let Some(namespace) = &self.namespace
            && let Ok(client) = http_client()
        {
            let _ = rpc(
                &client,
                &self.url,
                self.admin_token.as_deref(),
                json!(["ns.delete", namespace]),
            )
            .await;
        }
    }
}

fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
}

/// One RPC call: `Ok(Ok(result))`, `Ok(Err(error object))`, or `Err` when the server did not
/// answer in EventoDB's envelope.
async fn rpc(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> Result<Result<Value, Value>, String> {
    let mut request = client.post(format!("{url}/rpc")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let reply: Value = request
        .send()
        .await
        .map_err(|error| error.to_string())?
        .json()
        .await
        .map_err(|error| error.to_string())?;
    match reply.get("error") {
        Some(error) => Ok(Err(error.clone())),
        None => Ok(Ok(reply)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a "real" server (another embedded one, reached only by URL): a namespace of
    /// its own, whose token writes there, deleted by `cleanup`.
    #[tokio::test]
    async fn a_real_server_gets_a_namespace_of_its_own() {
        let real = TestServer::start().await.unwrap();
        let eventodb = TestEventoDb::real(
            &real.url(),
            Some(real.default_token().to_owned()),
            "envtest",
        )
        .await
        .unwrap();
        assert!(eventodb.embedded().is_none());
        assert!(eventodb.token().starts_with("ns_"));
        let shown = format!("{eventodb:?}");
        assert!(
            !shown.contains(eventodb.token()) && !shown.contains(real.default_token()),
            "no token in Debug: {shown}"
        );
        let client = http_client().unwrap();
        let written = rpc(
            &client,
            eventodb.url(),
            Some(eventodb.token()),
            json!(["stream.write", "order-1", {"type": "Placed", "data": {}}]),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(written["position"], 0);
        let namespace = eventodb.namespace.clone().unwrap();
        assert!(namespace.starts_with("envtest"));
        eventodb.cleanup().await;
        let info = rpc(
            &client,
            &real.url(),
            Some(real.default_token()),
            json!(["ns.info", namespace]),
        )
        .await
        .unwrap();
        assert_eq!(info.unwrap_err()["code"], "NAMESPACE_NOT_FOUND");
    }

    #[tokio::test]
    async fn the_embedded_server_is_there_for_faults() {
        let eventodb = TestEventoDb::embedded_server().await.unwrap();
        let server = eventodb.embedded().expect("embedded");
        assert_eq!(eventodb.url(), server.url());
        assert_eq!(eventodb.token(), server.default_token());
        eventodb.cleanup().await;
    }

    /// A server that does not speak EventoDB's envelope is a clear error.
    #[tokio::test]
    async fn a_server_that_is_not_eventodb_is_named() {
        let error = TestEventoDb::real("http://127.0.0.1:9", None, "x")
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("ns.create on http://127.0.0.1:9"),
            "{error}"
        );
    }
}
