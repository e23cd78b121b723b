//! [`ClientBuilder`]: server URL, token, timeouts, connection pool.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::HeaderValue;

use crate::error::{Error, Result};

use super::token::Token;
use super::{Client, Inner};

/// Default time allowed to open a TCP connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time allowed for one RPC call, from sending to the last byte of the reply.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default idle time after which a pooled connection is closed: below the server's 120 s,
/// so the client never reuses a connection the server is closing.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Builds a [`Client`]. Start with [`Client::builder`].
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use eventodb_kit::client::Client;
/// let client = Client::builder("http://127.0.0.1:8080")
///     .connect_timeout(Duration::from_secs(2))
///     .request_timeout(Duration::from_secs(10))
///     .build()?;
/// assert_eq!(client.namespace(), None);
/// # Ok::<(), eventodb_kit::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "call .build() to get a Client"]
pub struct ClientBuilder {
    url: String,
    token: Option<Token>,
    connect_timeout: Duration,
    request_timeout: Duration,
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
}

impl ClientBuilder {
    pub(super) fn new(url: impl Into<String>) -> Self {
        ClientBuilder {
            url: url.into(),
            token: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            pool_max_idle_per_host: 64,
        }
    }

    /// Authenticate with this token (sent as `Authorization: Bearer`, never logged).
    /// Without one, only a test-mode server answers (as namespace `default`).
    pub fn token(mut self, token: Token) -> Self {
        self.token = Some(token);
        self
    }

    /// Time allowed to open a connection (default 5 s; at most 90% of the request timeout,
    /// so that a connect that stalls is known not to have sent anything).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for one RPC call, connecting included, until the last byte of the reply
    /// (default 30 s). SSE subscriptions have no such limit.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Idle time after which a pooled keep-alive connection is closed (default 90 s). Keep
    /// it below the server's 120 s.
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// How many idle connections to keep (default 64).
    pub fn pool_max_idle(mut self, connections: usize) -> Self {
        self.pool_max_idle_per_host = connections;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the URL is not an absolute `http`/`https` URL or the
    /// HTTP client cannot be set up.
    pub fn build(self) -> Result<Client> {
        let base_url = Url::parse(&self.url).map_err(|e| {
            Error::InvalidArgument(format!("invalid server URL {:?}: {e}", self.url))
        })?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.cannot_be_a_base() {
            return Err(Error::InvalidArgument(format!(
                "server URL {:?} must be an http:// or https:// URL",
                self.url
            )));
        }
        if base_url.query().is_some() || base_url.fragment().is_some() {
            return Err(Error::InvalidArgument(format!(
                "server URL {:?} must not have a query or fragment",
                self.url
            )));
        }
        let rpc_url = endpoint(&base_url, "rpc")?;
        // A connect cut short by the request timeout would be reported as a request that
        // timed out, whose outcome is unknown, and the outbox would look up a write that
        // never left. Ending the connect first keeps it a known "not sent"; with equal
        // limits the request's, started first, would still end first.
        // Subtracted, not multiplied: `Duration::MAX` (no timeout) must not overflow.
        let connect_timeout = self
            .connect_timeout
            .min(self.request_timeout - self.request_timeout / 10);
        let http = reqwest::Client::builder()
            .http1_only()
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .tcp_nodelay(true)
            .user_agent(concat!("eventodb-kit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::InvalidArgument(format!("could not set up the HTTP client: {e}"))
            })?;
        let auth = self.token.as_ref().map(auth_header);
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                rpc_url_str: rpc_url.to_string(),
                rpc_url,
                base_url,
                token: self.token,
                auth,
                connect_timeout: self.connect_timeout,
                request_timeout: self.request_timeout,
            }),
        })
    }
}

/// `<base>/<path>`, keeping any path prefix of the base URL.
pub(super) fn endpoint(base: &Url, path: &str) -> Result<Url> {
    let joined = format!("{}/{path}", base.as_str().trim_end_matches('/'));
    Url::parse(&joined)
        .map_err(|e| Error::InvalidArgument(format!("invalid endpoint URL {joined:?}: {e}")))
}

/// `Bearer <token>`, marked sensitive so that HTTP-level debug output hides it.
pub(super) fn auth_header(token: &Token) -> HeaderValue {
    // A parsed token is `ns_`, base64url and hex: always a valid header value.
    let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose_secret()))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
    value.set_sensitive(true);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let c = Client::builder("http://127.0.0.1:8080").build().unwrap();
        assert_eq!(c.inner.rpc_url.as_str(), "http://127.0.0.1:8080/rpc");
        let c = Client::builder("http://h:1/prefix/").build().unwrap();
        assert_eq!(c.inner.rpc_url.as_str(), "http://h:1/prefix/rpc");
        for bad in [
            "",
            "127.0.0.1:8080",
            "ftp://h/",
            "http://h/?x=1",
            "mailto:a@b",
        ] {
            assert!(
                matches!(Client::builder(bad).build(), Err(Error::InvalidArgument(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn auth_header_is_sensitive() {
        let h = auth_header(&Token::generate("x").unwrap());
        assert!(h.is_sensitive());
        assert!(h.to_str().unwrap().starts_with("Bearer ns_"));
    }

    #[test]
    fn the_longest_timeouts_are_accepted() {
        let built = Client::builder("http://127.0.0.1:8080")
            .request_timeout(Duration::MAX)
            .connect_timeout(Duration::MAX)
            .build();
        assert!(built.is_ok());
    }
}
