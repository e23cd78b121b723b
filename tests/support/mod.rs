//! Helpers shared by the workspace's integration tests.
//!
//! [`Env`] gives each test a server URL and a token for a fresh namespace of its own:
//!
//! * with `EVENTODB_URL` set, a real EventoDB at that URL (with `EVENTODB_TOKEN`, the token
//!   of an existing namespace, needed unless the server runs in test mode); namespaces are
//!   created with `ns.create`;
//! * otherwise an embedded [`TestServer`] started for the test.
//!
//! Tests that need fault injection or a particular server mode ask for it
//! ([`Env::server`], [`Env::normal_mode`], [`Env::test_mode`]) and skip with a printed
//! reason when the server cannot provide it.

use std::time::Duration;

use eventodb_kit::client::{Client, ClientBuilder, NsCreateOptions, Token};
use eventodb_kit_testkit::{Faults, TestServer};

/// The environment variable naming a real EventoDB server.
pub const URL_VAR: &str = "EVENTODB_URL";
/// The environment variable holding a token for an existing namespace of that server.
pub const TOKEN_VAR: &str = "EVENTODB_TOKEN";

/// Whether a server enforces authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Tokens are required and checked.
    Normal,
    /// `--test-mode`: missing or bad tokens act on the `default` namespace.
    Test,
}

/// One test's server and fresh namespace.
pub struct Env {
    url: String,
    namespace: String,
    token: Token,
    /// A token of the server that can create namespaces (`None` in test mode without one).
    admin_token: Option<Token>,
    server: Option<TestServer>,
    mode: Mode,
    /// Namespaces this `Env` created, deleted on drop on a real server.
    created: std::sync::Mutex<Vec<String>>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("url", &self.url)
            .field("namespace", &self.namespace)
            .field("ours", &self.server.is_some())
            .field("mode", &self.mode)
            .finish()
    }
}

/// Prints why a test is skipped. Use as `return skip("test_name", "reason")`.
pub fn skip(test: &str, reason: &str) {
    eprintln!("SKIPPED {test}: {reason}");
}

/// `true` when the tests run against a real EventoDB (`EVENTODB_URL` is set).
pub fn real_server() -> bool {
    std::env::var(URL_VAR).is_ok_and(|url| !url.is_empty())
}

/// A stream name no other test uses: `<category>-<uuid without dashes>`.
pub fn unique_stream(category: &str) -> String {
    format!("{category}-{}", uuid::Uuid::new_v4().simple())
}

/// A category name no other test uses (letters and digits only, no `-`).
pub fn unique_category(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// A namespace id no other test uses, safe for tokens (its base64url has no `_`).
pub fn unique_namespace() -> String {
    format!("t-{}", uuid::Uuid::new_v4().simple())
}

impl Env {
    /// A fresh namespace on the real server, or on a new embedded server in normal (auth)
    /// mode.
    ///
    /// # Panics
    /// When the server cannot be started or reached, or the namespace cannot be created:
    /// a test cannot run without them.
    pub async fn new() -> Env {
        if real_server() {
            Self::real().await
        } else {
            Self::embedded(Mode::Normal).await
        }
    }

    /// Like [`Env::new`], but the server must enforce authentication; `None` (after
    /// printing why) against a real server in test mode.
    pub async fn normal_mode(test: &str) -> Option<Env> {
        let env = Self::new().await;
        if env.mode != Mode::Normal {
            skip(test, "the real server runs in test mode (no auth errors)");
            return None;
        }
        Some(env)
    }

    /// A server in test mode: a new embedded one, or the real one if it runs in test mode;
    /// `None` (after printing why) otherwise.
    pub async fn test_mode(test: &str) -> Option<Env> {
        if !real_server() {
            return Some(Self::embedded(Mode::Test).await);
        }
        let env = Self::real().await;
        if env.mode != Mode::Test {
            skip(test, "the real server is not in test mode");
            return None;
        }
        Some(env)
    }

    /// An embedded server (fault injection available); `None` (after printing why) against
    /// a real server.
    pub async fn ours(test: &str) -> Option<Env> {
        if real_server() {
            skip(
                test,
                "needs the embedded server (fault injection), EVENTODB_URL is set",
            );
            return None;
        }
        Some(Self::embedded(Mode::Normal).await)
    }

    async fn embedded(mode: Mode) -> Env {
        let server = TestServer::builder()
            .test_mode(mode == Mode::Test)
            .start()
            .await
            .expect("start the embedded EventoDB");
        let url = server.url();
        let admin = Token::parse(server.default_token()).expect("the default token parses");
        let mut env = Env {
            url,
            namespace: String::new(),
            token: admin.clone(),
            admin_token: Some(admin),
            server: Some(server),
            mode,
            created: Default::default(),
        };
        env.use_fresh_namespace().await;
        env
    }

    async fn real() -> Env {
        let url = std::env::var(URL_VAR).expect("EVENTODB_URL");
        let admin_token = match std::env::var(TOKEN_VAR) {
            Ok(token) if !token.is_empty() => {
                Some(Token::parse(&token).expect("EVENTODB_TOKEN must be a valid token"))
            }
            _ => None,
        };
        // Without a token, a server in normal mode answers 401; in test mode it serves the
        // `default` namespace.
        let anonymous = Client::builder(url.clone())
            .request_timeout(Duration::from_secs(10))
            .build()
            .expect("EVENTODB_URL must be an http URL");
        let mode = match anonymous.sys_health().await {
            Ok(_) => Mode::Test,
            Err(e) if e.is_auth() => Mode::Normal,
            Err(e) => panic!("cannot reach the EventoDB at {url}: {e}"),
        };
        if mode == Mode::Normal && admin_token.is_none() {
            panic!("the EventoDB at {url} needs a token: set EVENTODB_TOKEN");
        }
        let fallback = Token::from_parts("default", &"0".repeat(64)).expect("well-known token");
        let mut env = Env {
            url,
            namespace: String::new(),
            token: admin_token.clone().unwrap_or(fallback),
            admin_token,
            server: None,
            mode,
            created: Default::default(),
        };
        env.use_fresh_namespace().await;
        env
    }

    async fn use_fresh_namespace(&mut self) {
        let (namespace, token) = self.create_namespace().await;
        self.namespace = namespace;
        self.token = token;
    }

    /// Creates one more fresh namespace on the same server; returns its id and token.
    ///
    /// # Panics
    /// When `ns.create` fails.
    pub async fn create_namespace(&self) -> (String, Token) {
        let namespace = unique_namespace();
        let created = self
            .admin_client()
            .ns_create(
                &namespace,
                &NsCreateOptions::new().description("eventodb-kit test"),
            )
            .await
            .unwrap_or_else(|e| panic!("ns.create {namespace}: {e}"));
        if let Ok(mut names) = self.created.lock() {
            names.push(namespace.clone());
        }
        (namespace, created.token)
    }

    /// Deletes `namespace` when this `Env` is dropped (real servers only), for namespaces a
    /// test creates itself.
    pub fn delete_on_drop(&self, namespace: impl Into<String>) {
        if let Ok(mut names) = self.created.lock() {
            names.push(namespace.into());
        }
    }

    /// A client for the server with a token that may create namespaces (the `default`
    /// namespace's, or `EVENTODB_TOKEN`'s).
    pub fn admin_client(&self) -> Client {
        let builder = Client::builder(self.url.clone());
        match &self.admin_token {
            Some(token) => builder.token(token.clone()),
            None => builder,
        }
        .build()
        .expect("client for the test server")
    }

    /// The server URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// This test's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The token of this test's namespace.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// A client builder for this test's namespace (token set).
    pub fn client_builder(&self) -> ClientBuilder {
        Client::builder(self.url.clone()).token(self.token.clone())
    }

    /// A client for this test's namespace.
    pub fn client(&self) -> Client {
        self.client_builder()
            .build()
            .expect("client for the test server")
    }

    /// A client without a token.
    pub fn anonymous_client(&self) -> Client {
        Client::builder(self.url.clone())
            .build()
            .expect("client for the test server")
    }

    /// Whether the server enforces authentication.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether the server is the embedded one ("ours").
    pub fn is_ours(&self) -> bool {
        self.server.is_some()
    }

    /// The embedded server, `None` against a real EventoDB.
    pub fn server(&self) -> Option<&TestServer> {
        self.server.as_ref()
    }

    /// The embedded server's fault injection; `None` (after printing why) against a real
    /// EventoDB.
    pub fn faults(&self, test: &str) -> Option<Faults> {
        match &self.server {
            Some(server) => Some(server.faults()),
            None => {
                skip(test, "fault injection needs the embedded server");
                None
            }
        }
    }
}

/// Set to keep the namespaces the tests create on a real server (for debugging).
pub const KEEP_VAR: &str = "EVENTODB_KEEP_NAMESPACES";

impl Drop for Env {
    /// On a real server, deletes the namespaces this `Env` created (unless
    /// `EVENTODB_KEEP_NAMESPACES` is set). The embedded server simply goes away.
    fn drop(&mut self) {
        if self.server.is_some() || std::env::var_os(KEEP_VAR).is_some() {
            return;
        }
        let names = std::mem::take(&mut *self.created.lock().unwrap_or_else(|e| e.into_inner()));
        if names.is_empty() {
            return;
        }
        let admin = self.admin_client();
        // Drop may run inside the test's runtime, which cannot be blocked on: use a thread
        // with a runtime of its own, and wait for it.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                for name in names {
                    // Already deleted (e.g. by the test) is fine.
                    let _ = admin.ns_delete(&name).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// ERROR-002 and ERROR-003 of the conformance list (missing arguments, arguments of the
/// wrong type) cannot be expressed with the typed client: such calls do not compile.
///
/// The well-formed call compiles:
/// ```no_run
/// # async fn f(client: eventodb_kit::client::Client) -> eventodb_kit::Result<()> {
/// use eventodb_kit::client::{NewMessage, WriteOptions};
/// client.stream_write("test-1", &NewMessage::new("T", serde_json::json!({})), &WriteOptions::new()).await?;
/// # Ok(()) }
/// ```
/// ERROR-002, a missing argument:
/// ```compile_fail
/// # async fn f(client: eventodb_kit::client::Client) -> eventodb_kit::Result<()> {
/// use eventodb_kit::client::NewMessage;
/// client.stream_write("test-1", &NewMessage::new("T", serde_json::json!({}))).await?;
/// # Ok(()) }
/// ```
/// ERROR-003, an argument of the wrong type:
/// ```compile_fail
/// # async fn f(client: eventodb_kit::client::Client) -> eventodb_kit::Result<()> {
/// use eventodb_kit::client::GetStreamOptions;
/// client.stream_get(42, &GetStreamOptions::new().batch_size("ten")).await?;
/// # Ok(()) }
/// ```
pub mod typed_api {}
