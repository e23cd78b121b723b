//! The `/rpc` envelope: `["method", args...]` in, bare result or error envelope out (§1.2).

pub(crate) mod error;
mod ns;
mod streams;

use crate::json::{Json, object};
use crate::state::Shared;
use error::{RpcError, RpcResult};

/// A request body parsed into `[method, args...]`, or the envelope error to answer once
/// auth and the HTTP method have been checked.
pub(crate) struct Envelope(Result<(String, Vec<Json>), RpcError>);

impl Envelope {
    /// Parses a body (once; the label and the call both use the result).
    pub(crate) fn parse(body: &[u8]) -> Envelope {
        Envelope(split(body))
    }

    /// `category.get` with `batchSize: -1`: the request that crashes a Pebble server.
    pub(crate) fn is_unlimited_category_get(&self) -> bool {
        match &self.0 {
            Ok((method, args)) if method == "category.get" => match args.get(1) {
                Some(Json::Object(opts)) => matches!(
                    opts.get("batchSize"),
                    Some(Json::Number(n)) if error::go_int64(*n) == -1
                ),
                _ => false,
            },
            _ => false,
        }
    }

    /// The method name, for statistics: the name sent, or a placeholder for a bad envelope.
    pub(crate) fn label(&self) -> &str {
        match &self.0 {
            Ok((method, _)) => method,
            Err(_) => "<invalid>",
        }
    }
}

fn split(body: &[u8]) -> Result<(String, Vec<Json>), RpcError> {
    let request = Json::parse(body).map_err(malformed)?;
    let mut items = match request {
        Json::Array(items) => items,
        Json::Null => Vec::new(),
        other => {
            return Err(malformed(format!(
                "json: cannot unmarshal {} into Go value of type []interface {{}}",
                go_kind(&other)
            )));
        }
    };
    if items.is_empty() {
        return Err(RpcError::invalid("Missing method name"));
    }
    match items.remove(0) {
        Json::String(method) => Ok((method, items)),
        _ => Err(RpcError::invalid("Method name must be a string")),
    }
}

/// Runs one request for `namespace` (already authenticated).
pub(crate) fn call(shared: &Shared, namespace: &str, envelope: Envelope) -> RpcResult {
    let (method, args) = envelope.0?;
    let args = &args[..];
    let ctx = Ctx { shared, namespace };
    match method.as_str() {
        "stream.write" => streams::write(&ctx, args),
        "stream.get" => streams::get(&ctx, args),
        "stream.last" => streams::last(&ctx, args),
        "stream.version" => streams::version(&ctx, args),
        "category.get" => streams::category(&ctx, args),
        "ns.create" => ns::create(&ctx, args),
        "ns.delete" => ns::delete(&ctx, args),
        "ns.list" => ns::list(&ctx),
        "ns.info" => ns::info(&ctx, args),
        "ns.streams" => ns::streams(&ctx, args),
        "ns.categories" => ns::categories(&ctx),
        "sys.version" => Ok(Json::str(shared.config.version.clone())),
        "sys.health" => Ok(object([
            ("backend", Json::str("unknown")),
            ("connections", Json::int(0)),
            ("status", Json::str("ok")),
        ])),
        other => Err(RpcError::new(
            "METHOD_NOT_FOUND",
            format!("Unknown method: {other}"),
        )),
    }
}

/// What a handler sees.
pub(crate) struct Ctx<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) namespace: &'a str,
}

fn malformed(error: String) -> RpcError {
    RpcError::invalid("Malformed JSON request").with_details(object([("error", Json::str(error))]))
}

fn go_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Config;
    use crate::store::Store;
    use crate::time::TimePrecision;

    fn shared() -> Shared {
        let mut store = Store::new(TimePrecision::Seconds);
        store
            .create_namespace("default", String::new(), String::new())
            .unwrap();
        let config = Config {
            backend: crate::backend::Backend::Sqlite,
            test_mode: false,
            body_limit: 1024,
            header_limit: 4096,
            poke_buffer: None,
            idle_timeout: None,
            read_timeout: crate::server::DEFAULT_READ_TIMEOUT,
            subscribe_gap: None,
            version: "0.7.0".to_owned(),
        };
        Shared::new(config, store)
    }

    fn run(body: &str) -> Result<String, (u16, String)> {
        call(&shared(), "default", Envelope::parse(body.as_bytes()))
            .map(|j| j.encode())
            .map_err(|e| (e.status, e.body()))
    }

    #[test]
    fn envelope_errors() {
        assert_eq!(
            run("{}").unwrap_err().1,
            r#"{"error":{"code":"INVALID_REQUEST","message":"Malformed JSON request","details":{"error":"json: cannot unmarshal object into Go value of type []interface {}"}}}"#
        );
        assert!(
            run("")
                .unwrap_err()
                .1
                .contains("unexpected end of JSON input")
        );
        assert!(
            run("[] x")
                .unwrap_err()
                .1
                .contains("Malformed JSON request")
        );
        assert!(run("[]").unwrap_err().1.contains("Missing method name"));
        assert!(run("null").unwrap_err().1.contains("Missing method name"));
        assert!(
            run("[1]")
                .unwrap_err()
                .1
                .contains("Method name must be a string")
        );
        let (status, body) = run(r#"["nope.nope"]"#).unwrap_err();
        assert_eq!(status, 404);
        assert!(
            body.contains(r#""code":"METHOD_NOT_FOUND","message":"Unknown method: nope.nope""#)
        );
    }

    #[test]
    fn sys_methods() {
        assert_eq!(run(r#"["sys.version"]"#).unwrap(), r#""0.7.0""#);
        assert_eq!(
            run(r#"["sys.health", 1, 2]"#).unwrap(),
            r#"{"backend":"unknown","connections":0,"status":"ok"}"#
        );
    }
}
