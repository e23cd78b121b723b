//! The RPC round trip: envelope out, typed result or typed error back.

use std::time::Instant;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

use crate::error::{Error, ErrorCode, Result};

use super::Client;

/// How much of a body an error carries.
const SNIPPET_BYTES: usize = 1024;

impl Client {
    /// Sends `envelope` (`[method, args..]`) to `/rpc` and decodes a 200 reply as `T`.
    pub(super) async fn call<A, T>(&self, method: &str, envelope: &A, expected: &str) -> Result<T>
    where
        A: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let body = serde_json::to_vec(envelope).map_err(|e| {
            Error::InvalidArgument(format!("could not encode the {method} request: {e}"))
        })?;
        let span = tracing::debug_span!("eventodb.rpc", method, bytes = body.len());
        async {
            let (status, reply) = self.post_rpc(body).await?;
            if status == StatusCode::OK {
                serde_json::from_slice(&reply).map_err(|e| Error::Decode {
                    expected: format!("{expected} ({e})"),
                    body: snippet(&reply),
                })
            } else {
                let error = error_from_reply(&self.inner.rpc_url_str, status.as_u16(), &reply);
                tracing::debug!(
                    status = status.as_u16(),
                    error = crate::error::log_field(&error),
                    "rpc failed"
                );
                Err(error)
            }
        }
        .instrument(span)
        .await
    }

    /// POSTs the body and reads the whole reply, within the request timeout.
    async fn post_rpc(&self, body: Vec<u8>) -> Result<(StatusCode, Bytes)> {
        let inner = &self.inner;
        let mut request = inner
            .http
            .post(inner.rpc_url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            // reqwest's own per-request timeout covers connecting, sending, the headers
            // and the whole body; it measured cheaper than wrapping the exchange in
            // `tokio::time::timeout` (about 5 us less per sequential call).
            .timeout(inner.request_timeout);
        if let Some(auth) = &inner.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let started = Instant::now();
        let exchange = async {
            let response = request.send().await?;
            let status = response.status();
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes))
        };
        let result = exchange
            .await
            .map_err(|e| self.map_transport(&inner.rpc_url_str, e));
        let elapsed_us = started.elapsed().as_micros() as u64;
        match &result {
            Ok((status, bytes)) => tracing::debug!(
                status = status.as_u16(),
                reply_bytes = bytes.len(),
                elapsed_us,
                "rpc reply"
            ),
            Err(error) => tracing::debug!(
                error = crate::error::log_field(error),
                elapsed_us,
                "rpc transport failure"
            ),
        }
        result
    }

    /// A reqwest error as [`Error::Timeout`] or [`Error::Transport`].
    pub(super) fn map_transport(&self, url: &str, e: reqwest::Error) -> Error {
        // A connect that timed out sent nothing: it stays a transport error, whose outcome
        // is known (not applied), so the outbox does not look up a write that never left.
        if e.is_timeout() && !e.is_connect() {
            Error::Timeout {
                url: url.to_owned(),
                after: self.inner.request_timeout,
            }
        } else {
            Error::Transport {
                url: url.to_owned(),
                source: e.without_url(),
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Option<Value>,
}

/// The typed error for a non-200 reply: the JSON error envelope when there is one, else
/// [`Error::Http`] with the body.
pub(super) fn error_from_reply(url: &str, status: u16, body: &[u8]) -> Error {
    match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(ErrorEnvelope { error }) => {
            let code = ErrorCode::parse(&error.code);
            if code == ErrorCode::StreamVersionConflict {
                let field = |name: &str| {
                    error
                        .details
                        .as_ref()
                        .and_then(|d| d.get(name))
                        .and_then(Value::as_i64)
                };
                Error::VersionConflict {
                    expected: field("expected"),
                    actual: field("actual"),
                    message: error.message,
                }
            } else {
                Error::Server {
                    code,
                    status,
                    message: error.message,
                    details: error.details,
                }
            }
        }
        Err(_) => Error::Http {
            url: url.to_owned(),
            status,
            body: snippet(body),
        },
    }
}

/// The start of a body as text, cut at a character boundary after [`SNIPPET_BYTES`].
pub(super) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(SNIPPET_BYTES)]);
    let mut text = text.trim_end().to_owned();
    if body.len() > SNIPPET_BYTES {
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URL: &str = "http://127.0.0.1:9/rpc";

    #[test]
    fn json_errors_become_server_errors() {
        let body = br#"{"error":{"code":"AUTH_UNAUTHORIZED","message":"Token not authorized for namespace","details":{"namespace":"x"}}}
"#;
        match error_from_reply(URL, 403, body) {
            Error::Server {
                code,
                status,
                message,
                details,
            } => {
                assert_eq!(code, ErrorCode::AuthUnauthorized);
                assert_eq!(status, 403);
                assert_eq!(message, "Token not authorized for namespace");
                assert_eq!(details, Some(json!({"namespace": "x"})));
            }
            other => panic!("{other:?}"),
        }
        let unknown = error_from_reply(URL, 418, br#"{"error":{"code":"TEAPOT","message":"no"}}"#);
        assert_eq!(unknown.code(), Some(&ErrorCode::Unknown("TEAPOT".into())));
    }

    #[test]
    fn version_conflicts_with_and_without_details() {
        let sqlite = br#"{"error":{"code":"STREAM_VERSION_CONFLICT","message":"Expected version 5, stream is at version 1","details":{"actual":1,"expected":5}}}"#;
        match error_from_reply(URL, 409, sqlite) {
            Error::VersionConflict {
                expected, actual, ..
            } => assert_eq!((expected, actual), (Some(5), Some(1))),
            other => panic!("{other:?}"),
        }
        let pebble = br#"{"error":{"code":"STREAM_VERSION_CONFLICT","message":"version conflict: expected version does not match stream version"}}"#;
        match error_from_reply(URL, 409, pebble) {
            Error::VersionConflict {
                expected,
                actual,
                message,
            } => {
                assert_eq!((expected, actual), (None, None));
                assert!(message.starts_with("version conflict"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn non_json_bodies_keep_status_and_body() {
        for (status, body) in [
            (400, "Error when parsing request"),
            (431, "Too big request header"),
            (408, "Request timeout"),
            (500, "Internal Server Error"),
        ] {
            match error_from_reply(URL, status, body.as_bytes()) {
                Error::Http {
                    status: s,
                    body: b,
                    url,
                } => {
                    assert_eq!((s, b.as_str(), url.as_str()), (status, body, URL));
                }
                other => panic!("{other:?}"),
            }
        }
        // JSON, but not an error envelope.
        assert!(matches!(
            error_from_reply(URL, 502, br#"{"oops":1}"#),
            Error::Http { status: 502, .. }
        ));
    }

    #[test]
    fn snippets_are_bounded_and_lossy() {
        let long = "é".repeat(2000);
        let s = snippet(long.as_bytes());
        assert!(s.len() <= SNIPPET_BYTES + 3 && s.ends_with("..."));
        assert_eq!(snippet(b"\xffabc"), "\u{fffd}abc");
    }

    /// A connect that stalls past the request timeout is a known "not sent", not a
    /// timeout of unknown outcome.
    #[tokio::test]
    async fn a_stalled_connect_is_not_an_unknown_outcome() {
        // A listener that never accepts, with its queue full: the kernel drops the next
        // handshake, so the client's connect stalls.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        let stalled = loop {
            let connect = tokio::net::TcpStream::connect(addr);
            match tokio::time::timeout(std::time::Duration::from_millis(200), connect).await {
                Ok(stream) => queued.push(stream.unwrap()),
                Err(_) => break true,
            }
            if queued.len() > 64 {
                break false;
            }
        };
        if !stalled {
            eprintln!("skipped: this kernel queues every connect");
            return;
        }
        let client = crate::client::Client::builder(format!("http://{addr}"))
            .request_timeout(std::time::Duration::from_millis(300))
            .build()
            .unwrap();
        let error = client.sys_version().await.unwrap_err();
        assert!(!error.outcome_unknown(), "{error:?}");
        assert!(error.is_transient(), "{error:?}");
        drop(queued);
    }
}
