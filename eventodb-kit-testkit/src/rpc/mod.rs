//! The `/rpc` envelope: `["method", args...]` in, bare result or error envelope out (§1.2).

pub(crate) mod error;
mod ns;
mod streams;

use crate::json::{Json, object};
use crate::state::Shared;
use error::{RpcError, RpcResult};

/// The method name, for statistics: the name sent, or a placeholder for a bad envelope.
pub(crate) fn method_label(body: &[u8]) -> String {
    match Json::parse(body) {
        Ok(Json::Array(items)) => match items.first() {
            Some(Json::String(name)) => name.clone(),
            _ => "<invalid>".to_owned(),
        },
        _ => "<invalid>".to_owned(),
    }
}

/// Runs one request body for `namespace` (already authenticated).
pub(crate) fn call(shared: &Shared, namespace: &str, body: &[u8]) -> RpcResult {
    let request = Json::parse(body).map_err(malformed)?;
    let items = match request {
        Json::Array(items) => items,
        Json::Null => Vec::new(),
        other => {
            return Err(malformed(format!(
                "json: cannot unmarshal {} into Go value of type []interface {{}}",
                go_kind(&other)
            )));
        }
    };
    let Some(first) = items.first() else {
        return Err(RpcError::invalid("Missing method name"));
    };
    let Json::String(method) = first else {
        return Err(RpcError::invalid("Method name must be a string"));
    };
    let args = &items[1..];
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
            test_mode: false,
            body_limit: 1024,
            header_limit: 4096,
            poke_buffer: None,
            idle_timeout: None,
            subscribe_gap: None,
            version: "0.7.0".to_owned(),
        };
        Shared::new(config, store)
    }

    fn run(body: &str) -> Result<String, (u16, String)> {
        call(&shared(), "default", body.as_bytes())
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
