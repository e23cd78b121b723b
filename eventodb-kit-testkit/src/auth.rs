//! The auth middleware of `/rpc` and `/subscribe` (protocol §5.2, §5.3).

use crate::json::{Json, object};
use crate::query;
use crate::rpc::error::RpcError;
use crate::state::Shared;
use crate::token::{hash_token, parse_token};

/// The namespace a request acts on, or the 401/403 error to answer.
pub(crate) fn authenticate(
    shared: &Shared,
    query_string: Option<&str>,
    authorization: Option<&[u8]>,
) -> Result<String, RpcError> {
    let test_mode = shared.config.test_mode;
    let fallback = |err: RpcError| {
        if test_mode {
            Ok("default".to_owned())
        } else {
            Err(err)
        }
    };

    let token = match query::get(query_string, "token").filter(|t| !t.is_empty()) {
        Some(t) => t,
        None => {
            // fasthttp trims trailing whitespace from header values.
            let header = authorization
                .map(|h| {
                    String::from_utf8_lossy(h)
                        .trim_end_matches([' ', '\t'])
                        .to_owned()
                })
                .unwrap_or_default();
            if header.is_empty() {
                return fallback(RpcError::new(
                    "AUTH_REQUIRED",
                    "Authorization header required",
                ));
            }
            match header.strip_prefix("Bearer ") {
                Some(t) => t.to_owned(),
                None => {
                    return fallback(RpcError::new(
                        "AUTH_REQUIRED",
                        "Authorization header must use Bearer scheme",
                    ));
                }
            }
        }
    };
    if token.is_empty() {
        return fallback(RpcError::new("AUTH_REQUIRED", "Token required"));
    }
    let namespace = match parse_token(&token) {
        Ok(ns) => ns,
        Err(e) => {
            return fallback(
                RpcError::new("AUTH_INVALID_TOKEN", "Invalid token format")
                    .with_details(object([("error", Json::str(e))])),
            );
        }
    };
    if test_mode {
        return Ok(namespace);
    }
    let unauthorized = || {
        RpcError::new("AUTH_UNAUTHORIZED", "Token not authorized for namespace")
            .with_details(object([("namespace", Json::str(namespace.clone()))]))
    };
    let store = shared.store();
    match store.namespace(&namespace) {
        Ok(ns) if ns.token_hash == hash_token(&token) => Ok(namespace),
        _ => Err(unauthorized()),
    }
}
