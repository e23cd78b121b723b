//! What an application hands the outbox, and the checks made before anything is stored.

use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::client::MAX_POSITION;
use crate::error::{Error, Result};

/// An untyped message for [`Outbox::write`](super::Outbox::write): a type and a JSON object.
///
/// # Examples
/// ```
/// use eventodb_kit::outbox::RawMessage;
/// use serde_json::json;
///
/// let message = RawMessage::new("Deposited", json!({ "amount": 5 }))
///     .metadata(json!({ "correlationStreamName": "transfer-9" }));
/// assert_eq!(message.message_type(), "Deposited");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RawMessage {
    message_type: String,
    data: Value,
    metadata: Option<Value>,
}

impl RawMessage {
    /// A message of `message_type` carrying `data` (must be a JSON object; checked at write).
    pub fn new(message_type: impl Into<String>, data: Value) -> Self {
        Self {
            message_type: message_type.into(),
            data,
            metadata: None,
        }
    }

    /// Attaches metadata (must be a JSON object; checked at write).
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// The message type.
    pub fn message_type(&self) -> &str {
        &self.message_type
    }

    /// The data.
    pub fn data(&self) -> &Value {
        &self.data
    }

    /// The metadata, if any.
    pub fn metadata_value(&self) -> Option<&Value> {
        self.metadata.as_ref()
    }
}

/// A message that passed every check, ready for its row.
#[derive(Debug, Clone)]
pub(crate) struct CheckedMessage {
    pub(crate) id: Uuid,
    pub(crate) stream: String,
    pub(crate) message_type: String,
    pub(crate) data: Value,
    pub(crate) metadata: Option<Value>,
    pub(crate) expected_version: Option<i64>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) content_hash: String,
}

impl CheckedMessage {
    /// The `stream.write` options stored with the row (besides the id).
    pub(crate) fn write_options(&self) -> Value {
        let mut options = serde_json::Map::new();
        if let Some(version) = self.expected_version {
            options.insert("expectedVersion".into(), Value::from(version));
        }
        Value::Object(options)
    }
}

/// The options of one write, as given to the builder.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteSpec {
    pub(crate) id: Option<Uuid>,
    pub(crate) expected_version: Option<i64>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) metadata: Option<Value>,
}

/// The longest stream name, message type or idempotency key the outbox takes, in bytes.
/// Stream names and keys are index keys: PostgreSQL refuses an index entry over 2,704 bytes
/// (after the namespace), and aborts the caller's transaction when it does. One limit on
/// both databases, so that what SQLite takes PostgreSQL takes too.
pub(crate) const MAX_NAME_BYTES: usize = 1024;

/// Checks a message and its options; fixes the id (UUIDv7 unless given) and the idempotency
/// key (the explicit one, else a string `data.idempotency_key`).
pub(crate) fn check(stream: &str, message: RawMessage, spec: WriteSpec) -> Result<CheckedMessage> {
    check_name("stream name", stream)?;
    check_name("message type", &message.message_type)?;
    if !message.data.is_object() {
        return Err(Error::InvalidArgument(format!(
            "message data must be a JSON object, got {}",
            json_kind(&message.data)
        )));
    }
    check_json("data", &message.data)?;
    let metadata = spec.metadata.or(message.metadata);
    if let Some(metadata) = &metadata {
        if !metadata.is_object() {
            return Err(Error::InvalidArgument(format!(
                "message metadata must be a JSON object, got {}",
                json_kind(metadata)
            )));
        }
        check_json("metadata", metadata)?;
    }
    if let Some(version) = spec.expected_version
        && !(-1..=MAX_POSITION).contains(&version)
    {
        return Err(Error::InvalidArgument(format!(
            "expected version must be -1 (no stream) or a position up to {MAX_POSITION}, \
             got {version}"
        )));
    }
    if spec.id.is_some_and(|id| id.is_nil()) {
        return Err(Error::InvalidArgument(
            "message id must not be the nil UUID".into(),
        ));
    }
    let idempotency_key = match spec.idempotency_key {
        Some(key) => Some(key),
        None => match message.data.get("idempotency_key") {
            Some(Value::String(key)) => Some(key.clone()),
            _ => None,
        },
    };
    if let Some(key) = &idempotency_key {
        check_name("idempotency key", key)?;
    }
    let content_hash = content_hash(
        stream,
        &message.message_type,
        &message.data,
        metadata.as_ref(),
        spec.expected_version,
        spec.id,
    );
    Ok(CheckedMessage {
        id: spec.id.unwrap_or_else(Uuid::now_v7),
        stream: stream.to_owned(),
        message_type: message.message_type,
        data: message.data,
        metadata,
        expected_version: spec.expected_version,
        idempotency_key,
        content_hash,
    })
}

fn check_name(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::InvalidArgument(format!("{what} must not be empty")));
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(Error::InvalidArgument(format!(
            "{what} must be at most {MAX_NAME_BYTES} bytes long, got {}",
            value.len()
        )));
    }
    if value.contains('\0') {
        return Err(Error::InvalidArgument(format!(
            "{what} must not contain a NUL character"
        )));
    }
    Ok(())
}

/// PostgreSQL can store no NUL character in text or `jsonb`; refuse them everywhere.
fn check_json(what: &str, value: &Value) -> Result<()> {
    let bad = match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => return items.iter().try_for_each(|item| check_json(what, item)),
        Value::Object(map) => {
            for (key, item) in map {
                if key.contains('\0') {
                    return Err(Error::InvalidArgument(format!(
                        "message {what} must not contain a NUL character (in a key)"
                    )));
                }
                check_json(what, item)?;
            }
            false
        }
        _ => false,
    };
    if bad {
        return Err(Error::InvalidArgument(format!(
            "message {what} must not contain a NUL character"
        )));
    }
    Ok(())
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// SHA-256 over a canonical form (object keys sorted) of what makes two writes "the same".
fn content_hash(
    stream: &str,
    message_type: &str,
    data: &Value,
    metadata: Option<&Value>,
    expected_version: Option<i64>,
    id: Option<Uuid>,
) -> String {
    let mut canonical = String::new();
    let envelope = serde_json::json!({
        "stream": stream,
        "type": message_type,
        "data": data,
        "metadata": metadata,
        "expectedVersion": expected_version,
        "id": id.map(|id| id.to_string()),
    });
    write_canonical(&envelope, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(stream: &str, message: RawMessage) -> CheckedMessage {
        check(stream, message, WriteSpec::default()).expect("valid message")
    }

    fn err(stream: &str, message: RawMessage, spec: WriteSpec) -> String {
        match check(stream, message, spec) {
            Err(Error::InvalidArgument(message)) => message,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn rejects_bad_input() {
        let good = || RawMessage::new("T", json!({}));
        assert!(err("", good(), WriteSpec::default()).contains("stream name"));
        assert!(err("a-\0", good(), WriteSpec::default()).contains("NUL"));
        assert!(err("a-1", RawMessage::new("", json!({})), WriteSpec::default()).contains("type"));
        for data in [json!(null), json!([1]), json!("x"), json!(3)] {
            assert!(
                err("a-1", RawMessage::new("T", data), WriteSpec::default()).contains("object")
            );
        }
        assert!(
            err(
                "a-1",
                RawMessage::new("T", json!({"k": "a\u{0}b"})),
                WriteSpec::default()
            )
            .contains("NUL")
        );
        assert!(
            err(
                "a-1",
                RawMessage::new("T", json!({"k": [{"a\u{0}": 1}]})),
                WriteSpec::default()
            )
            .contains("NUL")
        );
        assert!(
            err("a-1", good().metadata(json!(null)), WriteSpec::default()).contains("metadata")
        );
        let spec = WriteSpec {
            expected_version: Some(-2),
            ..WriteSpec::default()
        };
        assert!(err("a-1", good(), spec).contains("expected version"));
        let spec = WriteSpec {
            idempotency_key: Some(String::new()),
            ..WriteSpec::default()
        };
        assert!(err("a-1", good(), spec).contains("idempotency key"));
    }

    #[test]
    fn fixes_a_lowercase_v7_id_and_the_key() {
        let checked = ok(
            "a-1",
            RawMessage::new("T", json!({"idempotency_key": "k1"})),
        );
        assert_eq!(checked.id.get_version_num(), 7);
        assert_eq!(
            checked.id.to_string(),
            checked.id.to_string().to_lowercase()
        );
        assert_eq!(checked.idempotency_key.as_deref(), Some("k1"));
        let explicit = check(
            "a-1",
            RawMessage::new("T", json!({"idempotency_key": "k1"})),
            WriteSpec {
                idempotency_key: Some("k2".into()),
                ..WriteSpec::default()
            },
        )
        .unwrap();
        assert_eq!(explicit.idempotency_key.as_deref(), Some("k2"));
        assert_eq!(
            ok("a-1", RawMessage::new("T", json!({"idempotency_key": 5}))).idempotency_key,
            None
        );
    }

    #[test]
    fn content_hash_ignores_key_order_but_not_content() {
        let a = ok(
            "a-1",
            RawMessage::new("T", json!({"x": 1, "y": {"b": 2, "a": 1}})),
        );
        let mut reordered = serde_json::Map::new();
        reordered.insert("y".into(), json!({"a": 1, "b": 2}));
        reordered.insert("x".into(), json!(1));
        let b = ok("a-1", RawMessage::new("T", Value::Object(reordered)));
        assert_eq!(a.content_hash, b.content_hash);
        assert_ne!(a.id, b.id, "each write gets its own id");
        let c = ok(
            "a-1",
            RawMessage::new("T", json!({"x": 2, "y": {"b": 2, "a": 1}})),
        );
        assert_ne!(a.content_hash, c.content_hash);
        let d = ok(
            "a-2",
            RawMessage::new("T", json!({"x": 1, "y": {"b": 2, "a": 1}})),
        );
        assert_ne!(a.content_hash, d.content_hash);
    }

    #[test]
    fn write_options_carry_the_expected_version() {
        let spec = WriteSpec {
            expected_version: Some(3),
            ..WriteSpec::default()
        };
        let checked = check("a-1", RawMessage::new("T", json!({})), spec).unwrap();
        assert_eq!(checked.write_options(), json!({"expectedVersion": 3}));
        assert_eq!(
            ok("a-1", RawMessage::new("T", json!({}))).write_options(),
            json!({})
        );
    }
}
