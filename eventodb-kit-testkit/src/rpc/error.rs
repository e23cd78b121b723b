//! The JSON error envelope and argument helpers shared by the method handlers.

use crate::json::{Json, Object, quote};

/// An error answered as `{"error":{"code","message","details"?}}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RpcError {
    pub(crate) status: u16,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) details: Option<Json>,
}

impl RpcError {
    /// An error with the status the server maps its code to (protocol §1.4).
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        let status = match code {
            "INVALID_REQUEST" => 400,
            "METHOD_NOT_FOUND" | "NAMESPACE_NOT_FOUND" | "STREAM_NOT_FOUND" | "NOT_FOUND" => 404,
            "AUTH_REQUIRED" | "AUTH_INVALID_TOKEN" => 401,
            "AUTH_UNAUTHORIZED" => 403,
            "STREAM_VERSION_CONFLICT" | "NAMESPACE_EXISTS" => 409,
            _ => 500,
        };
        RpcError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        RpcError::new("INVALID_REQUEST", message)
    }

    pub(crate) fn backend(message: impl Into<String>) -> Self {
        RpcError::new("BACKEND_ERROR", message)
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub(crate) fn with_details(mut self, details: Json) -> Self {
        self.details = Some(details);
        self
    }

    /// The body without the trailing newline. `RPCError` is a Go struct, so its fields come in
    /// declaration order (code, message, details); only `details` (a map) is sorted.
    pub(crate) fn body(&self) -> String {
        let details = self
            .details
            .as_ref()
            .map(|d| format!(",\"details\":{}", d.encode()))
            .unwrap_or_default();
        format!(
            "{{\"error\":{{\"code\":{},\"message\":{}{details}}}}}",
            quote(self.code),
            quote(&self.message)
        )
    }
}

/// Handler result.
pub(crate) type RpcResult = Result<Json, RpcError>;

/// The options argument at `index`: absent → empty; present but not an object → error.
pub(crate) fn options(args: &[Json], index: usize) -> Result<Option<&Object>, RpcError> {
    match args.get(index) {
        None => Ok(None),
        Some(Json::Object(map)) => Ok(Some(map)),
        Some(_) => Err(RpcError::invalid("options must be an object")),
    }
}

/// An optional number, truncated toward zero like Go's `int64(float64)`.
pub(crate) fn opt_int(
    map: Option<&Object>,
    key: &str,
    message: &str,
) -> Result<Option<i64>, RpcError> {
    match map.and_then(|m| m.get(key)) {
        None => Ok(None),
        Some(Json::Number(n)) => Ok(Some(go_int64(*n))),
        Some(_) => Err(RpcError::invalid(message)),
    }
}

/// Go's `int64(f)` on amd64: truncation toward zero, and `MinInt64` for anything out of
/// range (Rust's `as` would saturate instead).
pub(crate) fn go_int64(f: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if f.is_nan() || !(-LIMIT..LIMIT).contains(&f) {
        i64::MIN
    } else {
        f.trunc() as i64
    }
}

/// An optional string.
pub(crate) fn opt_str<'a>(
    map: Option<&'a Object>,
    key: &str,
    message: &str,
) -> Result<Option<&'a str>, RpcError> {
    match map.and_then(|m| m.get(key)) {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(_) => Err(RpcError::invalid(message)),
    }
}

/// A required non-empty string argument.
pub(crate) fn non_empty<'a>(arg: Option<&'a Json>, message: &str) -> Result<&'a str, RpcError> {
    match arg {
        Some(Json::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(RpcError::invalid(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::object;

    #[test]
    fn error_bodies_are_go_encoded() {
        let e = RpcError::invalid("options.batchSize must be <= 10000 or -1 for unlimited");
        assert_eq!(
            e.body(),
            r#"{"error":{"code":"INVALID_REQUEST","message":"options.batchSize must be \u003c= 10000 or -1 for unlimited"}}"#
        );
        let e = RpcError::new("STREAM_VERSION_CONFLICT", "m").with_details(object([
            ("expected", Json::int(5)),
            ("actual", Json::int(1)),
        ]));
        assert_eq!(e.status, 409);
        assert_eq!(
            e.body(),
            r#"{"error":{"code":"STREAM_VERSION_CONFLICT","message":"m","details":{"actual":1,"expected":5}}}"#
        );
    }

    #[test]
    fn numbers_truncate_toward_zero() {
        let map: Object = [
            ("a".to_owned(), Json::Number(5.9)),
            ("b".to_owned(), Json::Number(-1.9)),
        ]
        .into_iter()
        .collect();
        assert_eq!(opt_int(Some(&map), "a", "x").unwrap(), Some(5));
        assert_eq!(opt_int(Some(&map), "b", "x").unwrap(), Some(-1));
        assert_eq!(opt_int(Some(&map), "c", "x").unwrap(), None);
        assert_eq!(go_int64(1e20), i64::MIN);
        assert_eq!(go_int64(-1e20), i64::MIN);
        assert_eq!(go_int64(-0.5), 0);
        let null: Object = [("a".to_owned(), Json::Null)].into_iter().collect();
        assert_eq!(
            opt_int(Some(&null), "a", "a must be a number")
                .unwrap_err()
                .message,
            "a must be a number"
        );
    }
}
