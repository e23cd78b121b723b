//! Routing and HTTP responses (protocol §1.1, §1.4): `/rpc`, `/subscribe`, `/health`,
//! `/version`, and `404 NOT_FOUND` for everything else.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use crate::auth::authenticate;
use crate::rpc::{self, error::RpcError};
use crate::sse;
use crate::state::Shared;

/// Response body: a full buffer or an SSE stream.
pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Returned instead of a response to close the connection without answering.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by the test server")]
pub(crate) struct Dropped;

/// Handles one request.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Dropped> {
    let latency = shared.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if shared.faults.refusing() {
        return Err(Dropped);
    }
    if header_size(&req) > shared.config.header_limit {
        return Ok(closing(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Too big request header",
        ));
    }
    match req.uri().path() {
        "/rpc" => handle_rpc(shared, req).await,
        "/subscribe" => handle_subscribe(shared, req).await,
        "/health" => {
            shared.faults.count("/health");
            Ok(json(StatusCode::OK, r#"{"status":"ok"}"#.to_owned()))
        }
        "/version" => {
            shared.faults.count("/version");
            let body = format!(
                "{{\"version\":{}}}",
                crate::json::quote(&shared.config.version)
            );
            Ok(json(StatusCode::OK, body))
        }
        _ => Ok(json(
            StatusCode::NOT_FOUND,
            r#"{"error":{"code":"NOT_FOUND","message":"Endpoint not found"}}"#.to_owned(),
        )),
    }
}

async fn handle_rpc(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Dropped> {
    let shared = &shared;
    let (parts, body) = req.into_parts();
    let body = match read_body(shared, &parts.headers, body).await? {
        Read::Whole(body) => body,
        Read::TooLarge => return Ok(too_large()),
        Read::Stalled => return Ok(request_timeout()),
    };
    let envelope = rpc::Envelope::parse(&body);
    shared.faults.count(envelope.label());
    if shared.faults.take_fail_next() {
        return Ok(error(&injected()));
    }
    let namespace = match authenticate(shared, parts.uri.query(), auth_header(&parts.headers)) {
        Ok(ns) => ns,
        Err(e) => return Ok(error(&e)),
    };
    if parts.method != Method::POST {
        return Ok(error(
            &RpcError::invalid("Only POST method allowed").with_status(405),
        ));
    }
    if shared.faults.crash_on_unlimited_category_get() && envelope.is_unlimited_category_get() {
        crate::faults::crash(shared);
        return Err(Dropped);
    }
    let result = match envelope.label() {
        "stream.write" => match shared.faults.take_write_delay() {
            Some(delay) => apply_later(shared, namespace, envelope, delay).await?,
            None => rpc::call(shared, &namespace, envelope),
        },
        _ => rpc::call(shared, &namespace, envelope),
    };
    if shared.faults.take_drop_after_apply() {
        return Err(Dropped);
    }
    if shared.faults.take_fail_after_apply() {
        return Ok(error(&injected()));
    }
    if shared.faults.take_garble_after_apply() {
        return Ok(json(StatusCode::OK, "{\"status\":\"ok\"}\n".to_owned()));
    }
    Ok(match result {
        Ok(value) => json(StatusCode::OK, value.encode() + "\n"),
        Err(e) => error(&e),
    })
}

/// Applies a call `delay` from now in a task of its own, which goes on if this request is
/// dropped (the client gave up), and waits for its result.
async fn apply_later(
    shared: &Arc<Shared>,
    namespace: String,
    envelope: rpc::Envelope,
    delay: std::time::Duration,
) -> Result<crate::rpc::error::RpcResult, Dropped> {
    let shared = Arc::clone(shared);
    let applied = tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        rpc::call(&shared, &namespace, envelope)
    });
    applied.await.map_err(|_| Dropped)
}

async fn handle_subscribe(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Dropped> {
    let (parts, body) = req.into_parts();
    match read_body(&shared, &parts.headers, body).await? {
        Read::Whole(_) => {}
        Read::TooLarge => return Ok(too_large()),
        Read::Stalled => return Ok(request_timeout()),
    }
    shared.faults.count("/subscribe");
    if shared.faults.take_fail_next() {
        return Ok(error(&injected()));
    }
    let namespace = match authenticate(&shared, parts.uri.query(), auth_header(&parts.headers)) {
        Ok(ns) => ns,
        Err(e) => return Ok(error(&e)),
    };
    sse::subscribe(shared, namespace, parts.uri.query()).await
}

/// Bytes of the request line and headers as sent (fasthttp reads them into a 4 KiB buffer).
fn header_size<B>(req: &Request<B>) -> usize {
    let line =
        req.method().as_str().len() + 1 + req.uri().to_string().len() + " HTTP/1.1\r\n".len();
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    line + headers + 2
}

fn auth_header(headers: &http::HeaderMap) -> Option<&[u8]> {
    headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
}

/// What reading a request body came to.
enum Read {
    Whole(Bytes),
    /// Over the body limit.
    TooLarge,
    /// Not in full within the read timeout.
    Stalled,
}

/// Reads the whole body, within the body limit and the read timeout.
async fn read_body(
    shared: &Shared,
    headers: &http::HeaderMap,
    body: Incoming,
) -> Result<Read, Dropped> {
    let limit = shared.config.body_limit;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Ok(Read::TooLarge);
    }
    let reading = Limited::new(body, limit).collect();
    match tokio::time::timeout(shared.config.read_timeout, reading).await {
        Err(_) => Ok(Read::Stalled),
        Ok(Ok(collected)) => Ok(Read::Whole(collected.to_bytes())),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Ok(Read::TooLarge)
        }
        Ok(Err(_)) => Err(Dropped),
    }
}

/// The real server's answer to a request that did not arrive within its read timeout.
fn request_timeout() -> Response<Body> {
    closing(StatusCode::REQUEST_TIMEOUT, "Request timeout")
}

fn injected() -> RpcError {
    RpcError::backend("Injected fault: the test server failed this request")
}

/// A full response with the server's headers.
pub(crate) fn full(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let body = Full::new(body.into())
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::SERVER, HeaderValue::from_static("EventoDB/0.7.0"));
    response
}

fn json(status: StatusCode, body: String) -> Response<Body> {
    full(status, "application/json", body)
}

/// An error envelope with the trailing newline of Go's encoder.
pub(crate) fn error(e: &RpcError) -> Response<Body> {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, e.body() + "\n")
}

/// A plain-text response, as fasthttp and the SSE handler send them.
pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    full(status, "text/plain; charset=utf-8", body)
}

/// fasthttp's answer to a body over `MaxRequestBodySize` (there is no 413).
fn too_large() -> Response<Body> {
    closing(StatusCode::BAD_REQUEST, "Error when parsing request")
}

/// A plain-text answer after which the server closes the connection, as the real one does
/// for a request it could not read.
fn closing(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = text(status, body);
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
