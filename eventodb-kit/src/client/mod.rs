//! The EventoDB client: every RPC method, SSE subscriptions, typed errors, timeouts.
//!
//! # Examples
//! ```no_run
//! use eventodb_kit::client::{Client, GetStreamOptions, NewMessage, Token, WriteOptions};
//! use serde_json::json;
//!
//! # async fn run() -> eventodb_kit::Result<()> {
//! let client = Client::builder("http://127.0.0.1:8080")
//!     .token(Token::parse(&std::env::var("EVENTODB_TOKEN").unwrap_or_default())?)
//!     .build()?;
//! let written = client
//!     .stream_write(
//!         "account-7",
//!         &NewMessage::new("Deposited", json!({"amount": 5})),
//!         &WriteOptions::new().id(uuid::Uuid::now_v7()),
//!     )
//!     .await?;
//! let messages = client.stream_get("account-7", &GetStreamOptions::new()).await?;
//! assert_eq!(messages.last().map(|m| m.position), Some(written.position));
//! # Ok(()) }
//! ```
//!
//! # What is refused before sending
//! Empty stream names, `batchSize` values the server rejects or the backends disagree on
//! (`0`; `-1` on `category.get`, which crashes Pebble), data or metadata that is not a JSON
//! object or contains NUL characters, `%`/`_` in `ns.streams` prefixes, invalid consumer
//! groups, a consumer group on the whole namespace (`category.get("")`, where Pebble ignores
//! it), `stream.get` with both `position` and `globalPosition`, an empty correlation, and
//! positions past 2^53 - 1. All of these are [`Error::InvalidArgument`].

mod admin;
mod builder;
mod message;
mod message_id;
mod options;
mod rpc;
mod sse;
mod token;

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::error::{Error, Result};

pub use admin::{
    CategorySummary, Health, NamespaceCreated, NamespaceDeleted, NamespaceInfo, NamespaceSummary,
    StreamSummary,
};
pub use builder::{
    ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_REQUEST_TIMEOUT,
};
pub use message::{CategoryMessage, Message, NewMessage, WritePosition};
pub use message_id::MessageId;
pub use options::{
    ConsumerGroup, GetCategoryOptions, GetStreamOptions, MAX_BATCH_SIZE, MAX_POSITION,
    NsCreateOptions, NsStreamsOptions, WriteOptions,
};
pub use sse::{Poke, PokeStream, SseEvent, SseParser, Subscription};
pub use token::Token;

/// A handle to one EventoDB server and namespace. Cheap to clone (one shared connection
/// pool); `Send + Sync`.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

struct Inner {
    http: reqwest::Client,
    base_url: Url,
    rpc_url: Url,
    /// `rpc_url` as a string, for errors.
    rpc_url_str: String,
    token: Option<Token>,
    /// `Bearer <token>`, marked sensitive.
    auth: Option<HeaderValue>,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.base_url.as_str())
            .field("namespace", &self.token.as_ref().map(Token::namespace))
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

fn require_stream(stream: &str) -> Result<()> {
    if stream.is_empty() {
        return Err(Error::InvalidArgument(
            "stream name must be a non-empty string".into(),
        ));
    }
    Ok(())
}

impl Client {
    /// Starts building a client for the server at `url` (e.g. `http://127.0.0.1:8080`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url)
    }

    /// The same server and connection pool, authenticated with another token (e.g. one
    /// returned by [`Client::ns_create`]).
    pub fn with_token(&self, token: Token) -> Client {
        let auth = builder::auth_header(&token);
        Client {
            inner: Arc::new(Inner {
                http: self.inner.http.clone(),
                base_url: self.inner.base_url.clone(),
                rpc_url: self.inner.rpc_url.clone(),
                rpc_url_str: self.inner.rpc_url_str.clone(),
                token: Some(token),
                auth: Some(auth),
                connect_timeout: self.inner.connect_timeout,
                request_timeout: self.inner.request_timeout,
            }),
        }
    }

    /// The namespace of the token, `None` without a token (test-mode servers then use
    /// `default`).
    pub fn namespace(&self) -> Option<&str> {
        self.inner.token.as_ref().map(Token::namespace)
    }

    /// The token this client authenticates with.
    pub fn token(&self) -> Option<&Token> {
        self.inner.token.as_ref()
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        self.inner.base_url.as_str()
    }

    /// The request timeout (every RPC call; not SSE streams).
    pub fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    /// Writes one message to `stream` (`stream.write`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty stream name, an empty type, data or metadata
    /// that is not an object or contains NUL, an expected version past
    /// [`MAX_POSITION`]; [`Error::VersionConflict`] when
    /// `expected_version` does not match; a `BACKEND_ERROR` [`Error::Server`] for a duplicate
    /// id ([`Error::is_duplicate_id`]); transport errors and timeouts.
    pub async fn stream_write(
        &self,
        stream: &str,
        message: &NewMessage,
        options: &WriteOptions,
    ) -> Result<WritePosition> {
        require_stream(stream)?;
        message.validate()?;
        options.validate()?;
        self.call(
            "stream.write",
            &("stream.write", stream, message, options),
            "stream.write result: {globalPosition, position}",
        )
        .await
    }

    /// Reads messages of `stream` in position order (`stream.get`). An unknown stream gives
    /// an empty list.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty stream name or a batch size outside
    /// `1..=10000` / `-1`; server, transport and decode errors.
    pub async fn stream_get(
        &self,
        stream: &str,
        options: &GetStreamOptions,
    ) -> Result<Vec<Message>> {
        require_stream(stream)?;
        options.validate()?;
        self.call(
            "stream.get",
            &("stream.get", stream, options),
            "stream.get result: array of [id, type, position, globalPosition, data, metadata, time]",
        )
        .await
    }

    /// The last message of `stream`, optionally the last of type `message_type`
    /// (`stream.last`). `None` when there is none.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty stream name or an empty type filter (the
    /// backends disagree on what it means); server, transport and decode errors.
    pub async fn stream_last(
        &self,
        stream: &str,
        message_type: Option<&str>,
    ) -> Result<Option<Message>> {
        require_stream(stream)?;
        let options = match message_type {
            Some("") => {
                return Err(Error::InvalidArgument(
                    "type filter must be non-empty (use None for no filter)".into(),
                ));
            }
            Some(t) => json!({ "type": t }),
            None => json!({}),
        };
        self.call(
            "stream.last",
            &("stream.last", stream, options),
            "stream.last result: null or [id, type, position, globalPosition, data, metadata, time]",
        )
        .await
    }

    /// The position of the last message of `stream` (`stream.version`), `None` when the
    /// stream has no messages.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty stream name; server, transport and decode
    /// errors.
    pub async fn stream_version(&self, stream: &str) -> Result<Option<i64>> {
        require_stream(stream)?;
        self.call(
            "stream.version",
            &("stream.version", stream),
            "stream.version result: integer or null",
        )
        .await
    }

    /// Reads messages of every stream of `category` in global-position order
    /// (`category.get`). `""` reads the whole namespace.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a batch size outside `1..=10000` or an invalid
    /// consumer group; server, transport and decode errors.
    pub async fn category_get(
        &self,
        category: &str,
        options: &GetCategoryOptions,
    ) -> Result<Vec<CategoryMessage>> {
        options.validate()?;
        if category.is_empty() && options.has_consumer_group() {
            // Pebble ignores the group on the whole-namespace read: every member would get
            // every message.
            return Err(Error::InvalidArgument(
                "a consumer group on the whole namespace (category \"\") is refused: Pebble \
                 ignores the group there; read a category"
                    .into(),
            ));
        }
        self.call(
            "category.get",
            &("category.get", category, options),
            "category.get result: array of [id, streamName, type, position, globalPosition, data, metadata, time]",
        )
        .await
    }

    /// Creates a namespace (`ns.create`). Any valid token may do this.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty id, an id that could never authenticate
    /// (its base64url form contains `_`), a token for another namespace; `NAMESPACE_EXISTS`.
    pub async fn ns_create(
        &self,
        namespace: &str,
        options: &NsCreateOptions,
    ) -> Result<NamespaceCreated> {
        if namespace.is_empty() {
            return Err(Error::InvalidArgument(
                "namespace id must be a non-empty string".into(),
            ));
        }
        if Token::from_parts(namespace, &"0".repeat(64)).is_err() {
            return Err(Error::InvalidArgument(format!(
                "namespace id {namespace:?} could never authenticate: its base64url form contains '_'"
            )));
        }
        options.validate(namespace)?;
        self.call(
            "ns.create",
            &("ns.create", namespace, options),
            "ns.create result: {createdAt, namespace, token}",
        )
        .await
        .map_err(|error| match error {
            // The reply holds the new namespace's token: an error must never show it.
            Error::Decode { expected, .. } => Error::Decode {
                expected,
                body: "(not shown: an ns.create reply holds a token)".into(),
            },
            other => other,
        })
    }

    /// Deletes a namespace and its messages (`ns.delete`).
    ///
    /// # Errors
    /// `NAMESPACE_NOT_FOUND`; transport and decode errors.
    pub async fn ns_delete(&self, namespace: &str) -> Result<NamespaceDeleted> {
        self.call(
            "ns.delete",
            &("ns.delete", namespace),
            "ns.delete result: {deletedAt, messagesDeleted, namespace}",
        )
        .await
    }

    /// Lists all namespaces (`ns.list`; order is backend-defined).
    ///
    /// # Errors
    /// Server, transport and decode errors.
    pub async fn ns_list(&self) -> Result<Vec<NamespaceSummary>> {
        self.call(
            "ns.list",
            &("ns.list",),
            "ns.list result: array of {createdAt, description, messageCount, namespace}",
        )
        .await
    }

    /// Describes one namespace (`ns.info`).
    ///
    /// # Errors
    /// `NAMESPACE_NOT_FOUND`; transport and decode errors.
    pub async fn ns_info(&self, namespace: &str) -> Result<NamespaceInfo> {
        self.call(
            "ns.info",
            &("ns.info", namespace),
            "ns.info result: {createdAt, description, lastActivity, messageCount, namespace, streamCount}",
        )
        .await
    }

    /// Lists the streams of this client's namespace, sorted by name (`ns.streams`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for `%`/`_` in the prefix; `INVALID_REQUEST` for a limit
    /// outside `1..=1000`; transport and decode errors.
    pub async fn ns_streams(&self, options: &NsStreamsOptions) -> Result<Vec<StreamSummary>> {
        options.validate()?;
        self.call(
            "ns.streams",
            &("ns.streams", options),
            "ns.streams result: array of {lastActivity, stream, version}",
        )
        .await
    }

    /// Lists the categories of this client's namespace, sorted by name (`ns.categories`).
    ///
    /// # Errors
    /// Server, transport and decode errors.
    pub async fn ns_categories(&self) -> Result<Vec<CategorySummary>> {
        self.call(
            "ns.categories",
            &("ns.categories",),
            "ns.categories result: array of {category, messageCount, streamCount}",
        )
        .await
    }

    /// The server version (`sys.version`): any non-empty string (`dev` in Docker images).
    ///
    /// # Errors
    /// Server, transport and decode errors.
    pub async fn sys_version(&self) -> Result<String> {
        self.call(
            "sys.version",
            &("sys.version",),
            "sys.version result: string",
        )
        .await
    }

    /// The server health (`sys.health`).
    ///
    /// # Errors
    /// Server, transport and decode errors.
    pub async fn sys_health(&self) -> Result<Health> {
        self.call(
            "sys.health",
            &("sys.health",),
            "sys.health result: {status, ..}",
        )
        .await
    }

    /// Calls any RPC method with raw JSON arguments and returns the raw result. An escape
    /// hatch for methods this client does not know; nothing is validated.
    ///
    /// # Errors
    /// Server, transport and decode errors.
    pub async fn call_raw(&self, method: &str, args: &[Value]) -> Result<Value> {
        let mut envelope = Vec::with_capacity(args.len() + 1);
        envelope.push(Value::String(method.to_owned()));
        envelope.extend_from_slice(args);
        self.call(method, &envelope, "a JSON value").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_clone_send_sync_and_debug_hides_the_token() {
        fn assert_traits<T: Clone + Send + Sync + 'static>() {}
        assert_traits::<Client>();
        let token = Token::generate("secret-ns").unwrap();
        let client = Client::builder("http://127.0.0.1:1/")
            .token(token.clone())
            .build()
            .unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains(token.expose_secret()), "{shown}");
        assert!(shown.contains("secret-ns"), "{shown}");
        assert_eq!(client.namespace(), Some("secret-ns"));
        assert_eq!(client.base_url(), "http://127.0.0.1:1/");
        let other = client.with_token(Token::generate("other").unwrap());
        assert_eq!(other.namespace(), Some("other"));
    }

    #[test]
    fn futures_and_streams_are_send() {
        fn send<T: Send>(_: &T) {}
        fn send_unpin<T: Send + Unpin + 'static>() {}
        let client = Client::builder("http://127.0.0.1:1").build().unwrap();
        let msg = NewMessage::new("T", json!({}));
        let options = WriteOptions::new();
        send(&client.stream_write("s-1", &msg, &options));
        send(&client.stream_get("s-1", &GetStreamOptions::new()));
        send(&client.category_get("s", &GetCategoryOptions::new()));
        send(&client.subscribe(Subscription::all()));
        send_unpin::<PokeStream>();
    }

    #[tokio::test]
    async fn bad_arguments_fail_before_sending() {
        // Port 1 on loopback: nothing listens, so anything that was sent would be a
        // transport error instead of InvalidArgument.
        let client = Client::builder("http://127.0.0.1:1").build().unwrap();
        let msg = NewMessage::new("T", json!({}));
        let checks = [
            client
                .stream_write("", &msg, &WriteOptions::new())
                .await
                .map(drop),
            client
                .stream_write(
                    "s-1",
                    &NewMessage::new("T", json!({"x": "\u{0}"})),
                    &WriteOptions::new(),
                )
                .await
                .map(drop),
            client
                .stream_get("s-1", &GetStreamOptions::new().batch_size(0))
                .await
                .map(drop),
            client
                .category_get("s", &GetCategoryOptions::new().batch_size(-1))
                .await
                .map(drop),
            client.stream_last("s-1", Some("")).await.map(drop),
            client.stream_version("").await.map(drop),
            client
                .ns_streams(&NsStreamsOptions::new().prefix("a_"))
                .await
                .map(drop),
            client
                .ns_create("ab?", &NsCreateOptions::new())
                .await
                .map(drop),
            client
                .ns_create("", &NsCreateOptions::new())
                .await
                .map(drop),
        ];
        for (i, check) in checks.into_iter().enumerate() {
            assert!(
                matches!(check, Err(Error::InvalidArgument(_))),
                "check {i}: {check:?}"
            );
        }
    }
}
