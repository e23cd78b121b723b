//! Messages: what is written ([`NewMessage`]) and what is read ([`Message`],
//! [`CategoryMessage`]), and how read rows are decoded.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::MessageId;
use crate::error::{Error, Result};

/// A message to write with [`Client::stream_write`](super::Client::stream_write).
///
/// # Examples
/// ```
/// use eventodb_kit::client::NewMessage;
/// use serde_json::json;
/// let msg = NewMessage::new("Deposited", json!({"amount": 5}))
///     .metadata(json!({"correlationStreamName": "transfer-1"}));
/// assert_eq!(msg.message_type(), "Deposited");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewMessage {
    #[serde(rename = "type")]
    message_type: String,
    data: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Value>,
}

impl NewMessage {
    /// A message of type `message_type` with `data` (which must be a JSON object).
    pub fn new(message_type: impl Into<String>, data: Value) -> Self {
        NewMessage {
            message_type: message_type.into(),
            data,
            metadata: None,
        }
    }

    /// Sets the metadata (a JSON object). Without it the `metadata` key is not sent and the
    /// message reads back with no metadata.
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

    /// The metadata, if set.
    pub fn metadata_value(&self) -> Option<&Value> {
        self.metadata.as_ref()
    }

    /// Checks what the server (or one of its backends) would reject: an empty type, data or
    /// metadata that is not an object, and NUL characters anywhere in them (PostgreSQL
    /// rejects `\u0000`).
    pub(crate) fn validate(&self) -> Result<()> {
        if self.message_type.is_empty() {
            return Err(Error::InvalidArgument(
                "message type must be a non-empty string".into(),
            ));
        }
        if !self.data.is_object() {
            return Err(Error::InvalidArgument(
                "message data must be a JSON object".into(),
            ));
        }
        if contains_nul(&self.data) {
            return Err(Error::InvalidArgument(
                "message data contains a NUL character (\\u0000), which PostgreSQL rejects".into(),
            ));
        }
        if let Some(metadata) = &self.metadata {
            if !metadata.is_object() {
                return Err(Error::InvalidArgument(
                    "message metadata must be a JSON object".into(),
                ));
            }
            if contains_nul(metadata) {
                return Err(Error::InvalidArgument(
                    "message metadata contains a NUL character (\\u0000), which PostgreSQL rejects"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}

fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map
            .iter()
            .any(|(key, value)| key.contains('\0') || contains_nul(value)),
        _ => false,
    }
}

/// Where a written message landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WritePosition {
    /// Position in its stream (0-based, gapless).
    pub position: i64,
    /// Position in the namespace (starts at 1, increasing, not necessarily gapless).
    pub global_position: i64,
}

/// A message read from a stream (`stream.get`, `stream.last`).
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The message id, as the server holds it (not necessarily a UUID).
    pub id: MessageId,
    /// The message type.
    pub message_type: String,
    /// Position in its stream.
    pub position: i64,
    /// Position in the namespace.
    pub global_position: i64,
    /// The data (a JSON object).
    pub data: Value,
    /// The metadata, `None` when the message was written without.
    pub metadata: Option<Value>,
    /// When the server stored it. Precision depends on the backend (seconds to
    /// nanoseconds).
    pub time: DateTime<Utc>,
}

/// A message read from a category (`category.get`): a [`Message`] plus its stream name.
#[derive(Clone, Debug, PartialEq)]
pub struct CategoryMessage {
    /// The message id, as the server holds it (not necessarily a UUID).
    pub id: MessageId,
    /// The full name of the stream it belongs to.
    pub stream_name: String,
    /// The message type.
    pub message_type: String,
    /// Position in its stream.
    pub position: i64,
    /// Position in the namespace.
    pub global_position: i64,
    /// The data (a JSON object).
    pub data: Value,
    /// The metadata, `None` when the message was written without.
    pub metadata: Option<Value>,
    /// When the server stored it.
    pub time: DateTime<Utc>,
}

impl CategoryMessage {
    /// The message without its stream name.
    pub fn into_message(self) -> Message {
        Message {
            id: self.id,
            message_type: self.message_type,
            position: self.position,
            global_position: self.global_position,
            data: self.data,
            metadata: self.metadata,
            time: self.time,
        }
    }
}

/// Parses an RFC 3339 time with 0 to 9 fractional digits (Go's `RFC3339Nano`), as UTC.
pub(crate) fn parse_time(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    if let Some(time) = parse_utc_fast(s.as_bytes()) {
        return Ok(time);
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("invalid RFC 3339 time {s:?}: {e}"))
}

/// The shape the server always sends, `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`, parsed without the
/// generic format machinery (a page of 100 rows has 100 times); anything else (offsets,
/// leap seconds, malformed text) is left to chrono.
fn parse_utc_fast(s: &[u8]) -> Option<DateTime<Utc>> {
    let digits = |from: usize, to: usize| -> Option<u32> {
        s.get(from..to)?.iter().try_fold(0u32, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    if s.len() < 20
        || s[4] != b'-'
        || s[7] != b'-'
        || s[10] != b'T'
        || s[13] != b':'
        || s[16] != b':'
        || s[s.len() - 1] != b'Z'
    {
        return None;
    }
    let nanos = match s.len() {
        20 => 0,
        22..=30 if s[19] == b'.' => {
            let fraction = digits(20, s.len() - 1)?;
            fraction * 10u32.pow((30 - s.len()) as u32)
        }
        _ => return None,
    };
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::try_from(digits(0, 4)?).ok()?,
        digits(5, 7)?,
        digits(8, 10)?,
    )?;
    let time = date.and_hms_nano_opt(digits(11, 13)?, digits(14, 16)?, digits(17, 19)?, nanos)?;
    Some(time.and_utc())
}

/// Serde helper: a required RFC 3339 time.
pub(crate) fn de_time<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<DateTime<Utc>, D::Error> {
    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    parse_time(&s).map_err(de::Error::custom)
}

/// Serde helper: an optional (nullable) RFC 3339 time.
pub(crate) fn de_opt_time<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<std::borrow::Cow<'de, str>>::deserialize(d)? {
        None => Ok(None),
        Some(s) => parse_time(&s).map(Some).map_err(de::Error::custom),
    }
}

/// Reads the next element of a row, naming the field in the error.
fn next<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(
    seq: &mut A,
    index: usize,
    field: &str,
    arity: usize,
) -> std::result::Result<T, A::Error> {
    seq.next_element()?.ok_or_else(|| {
        de::Error::custom(format!(
            "row has {index} elements, expected {arity} (missing {field})"
        ))
    })
}

fn next_time<'de, A: SeqAccess<'de>>(
    seq: &mut A,
    index: usize,
    arity: usize,
) -> std::result::Result<DateTime<Utc>, A::Error> {
    let time: std::borrow::Cow<'de, str> = next(seq, index, "time", arity)?;
    parse_time(&time).map_err(de::Error::custom)
}

fn no_more<'de, A: SeqAccess<'de>>(seq: &mut A, arity: usize) -> std::result::Result<(), A::Error> {
    if seq.next_element::<de::IgnoredAny>()?.is_some() {
        return Err(de::Error::custom(format!(
            "row has more than {arity} elements"
        )));
    }
    Ok(())
}

/// `[id, type, position, globalPosition, data, metadata, time]`.
impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Row;
        impl<'de> Visitor<'de> for Row {
            type Value = Message;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 7-element message row")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Message, A::Error> {
                let message = Message {
                    id: next(&mut seq, 0, "id", 7)?,
                    message_type: next(&mut seq, 1, "type", 7)?,
                    position: next(&mut seq, 2, "position", 7)?,
                    global_position: next(&mut seq, 3, "globalPosition", 7)?,
                    data: next(&mut seq, 4, "data", 7)?,
                    metadata: next(&mut seq, 5, "metadata", 7)?,
                    time: next_time(&mut seq, 6, 7)?,
                };
                no_more(&mut seq, 7)?;
                Ok(message)
            }
        }
        d.deserialize_seq(Row)
    }
}

/// `[id, streamName, type, position, globalPosition, data, metadata, time]`.
impl<'de> Deserialize<'de> for CategoryMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Row;
        impl<'de> Visitor<'de> for Row {
            type Value = CategoryMessage;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an 8-element category message row")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<CategoryMessage, A::Error> {
                let message = CategoryMessage {
                    id: next(&mut seq, 0, "id", 8)?,
                    stream_name: next(&mut seq, 1, "streamName", 8)?,
                    message_type: next(&mut seq, 2, "type", 8)?,
                    position: next(&mut seq, 3, "position", 8)?,
                    global_position: next(&mut seq, 4, "globalPosition", 8)?,
                    data: next(&mut seq, 5, "data", 8)?,
                    metadata: next(&mut seq, 6, "metadata", 8)?,
                    time: next_time(&mut seq, 7, 8)?,
                };
                no_more(&mut seq, 8)?;
                Ok(message)
            }
        }
        d.deserialize_seq(Row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;
    use serde_json::json;

    const ID: &str = "0192e4a0-7b1a-7c3d-8e4f-5a6b7c8d9e0f";

    #[test]
    fn decodes_a_stream_row() {
        let row =
            format!(r#"["{ID}","Deposited",3,17,{{"amount":5}},null,"2025-01-15T10:30:00Z"]"#);
        let m: Message = serde_json::from_str(&row).unwrap();
        assert_eq!(m.id, uuid::Uuid::parse_str(ID).unwrap());
        assert_eq!(m.id.as_str(), ID);
        assert_eq!(m.message_type, "Deposited");
        assert_eq!((m.position, m.global_position), (3, 17));
        assert_eq!(m.data, json!({"amount": 5}));
        assert_eq!(m.metadata, None);
        assert_eq!(m.time.to_rfc3339(), "2025-01-15T10:30:00+00:00");
    }

    #[test]
    fn decodes_a_category_row_and_keeps_metadata() {
        let row = format!(
            r#"["{ID}","account-1","Opened",0,1,{{}},{{"k":[1,true,null]}},"2025-01-15T10:30:00.123456Z"]"#
        );
        let m: CategoryMessage = serde_json::from_str(&row).unwrap();
        assert_eq!(m.stream_name, "account-1");
        assert_eq!(m.metadata, Some(json!({"k": [1, true, null]})));
        assert_eq!(m.time.nanosecond(), 123_456_000);
        assert_eq!(m.clone().into_message().global_position, 1);
    }

    #[test]
    fn ids_are_decoded_as_the_server_holds_them() {
        // Pebble stores any string; SQLite and Pebble echo `urn:uuid:` ids verbatim.
        for id in [
            "order-42",
            "urn:uuid:0192E4A0-7B1A-7C3D-8E4F-5A6B7C8D9E0F",
            "",
        ] {
            let row = format!(r#"["{id}","T",0,1,{{}},null,"2025-01-15T10:30:00Z"]"#);
            let m: Message = serde_json::from_str(&row).unwrap();
            assert_eq!(m.id.as_str(), id);
            let row = format!(r#"["{id}","s-1","T",0,1,{{}},null,"2025-01-15T10:30:00Z"]"#);
            let m: CategoryMessage = serde_json::from_str(&row).unwrap();
            assert_eq!(m.id.as_str(), id);
        }
    }

    #[test]
    fn a_batch_with_a_foreign_id_decodes_whole() {
        let batch = format!(
            r#"[["{ID}","order-1","T",0,1,{{}},null,"2025-01-15T10:30:00Z"],
               ["order-42","order-2","T",0,2,{{}},null,"2025-01-15T10:30:00Z"],
               ["{ID}","order-3","T",0,3,{{}},null,"2025-01-15T10:30:00Z"]]"#
        );
        let messages: Vec<CategoryMessage> = serde_json::from_str(&batch).unwrap();
        let ids: Vec<&str> = messages.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, [ID, "order-42", ID]);
        assert_eq!(messages[1].id.as_uuid(), None);
    }

    #[test]
    fn times_with_zero_to_nine_fractional_digits() {
        for digits in 0..=9 {
            let frac = if digits == 0 {
                String::new()
            } else {
                format!(".{}", "123456789".get(..digits).unwrap())
            };
            let t = parse_time(&format!("2025-01-15T10:30:00{frac}Z")).unwrap();
            let expect = format!("{:0<9}", "123456789".get(..digits).unwrap());
            assert_eq!(t.nanosecond(), expect.parse::<u32>().unwrap(), "{digits}");
        }
        assert!(parse_time("2025-01-15 10:30").is_err());
    }

    #[test]
    fn the_fast_path_agrees_with_chrono() {
        let samples = [
            "2025-01-15T10:30:00Z",
            "2025-01-15T10:30:00.1Z",
            "2025-01-15T10:30:00.120Z",
            "2024-02-29T23:59:59.999999999Z",
            "1970-01-01T00:00:00Z",
            "2026-11-26T17:05:09.000001Z",
            "9999-12-31T23:59:59.5Z",
        ];
        for s in samples {
            let chrono = DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
            assert_eq!(parse_utc_fast(s.as_bytes()), Some(chrono), "{s}");
        }
        // Left to chrono: offsets, lowercase, leap seconds; rejected by both: nonsense.
        for s in [
            "2025-01-15T10:30:00+02:00",
            "2025-01-15t10:30:00z",
            "2016-12-31T23:59:60Z",
            "2025-02-30T10:30:00Z",
            "2025-01-15T10:30:00.Z",
            "2025-01-15T10:30:00.1234567890Z",
            "2025-01-15T1a:30:00Z",
        ] {
            assert_eq!(parse_utc_fast(s.as_bytes()), None, "{s}");
            assert_eq!(
                parse_time(s).ok(),
                DateTime::parse_from_rfc3339(s)
                    .ok()
                    .map(|t| t.with_timezone(&Utc)),
                "{s}"
            );
        }
        assert_eq!(
            parse_time("2025-01-15T12:30:00+02:00").unwrap(),
            parse_time("2025-01-15T10:30:00Z").unwrap()
        );
    }

    #[test]
    fn rejects_malformed_rows_with_a_reason() {
        let short = format!(r#"["{ID}","T",0,1,{{}},null]"#);
        let err = serde_json::from_str::<Message>(&short)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing time"), "{err}");
        let long = format!(r#"["{ID}","T",0,1,{{}},null,"2025-01-15T10:30:00Z",1]"#);
        let err = serde_json::from_str::<Message>(&long)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 7"), "{err}");
        let number_id = r#"[7,"T",0,1,{},null,"2025-01-15T10:30:00Z"]"#;
        assert!(serde_json::from_str::<Message>(number_id).is_err());
        assert!(serde_json::from_str::<Message>(r#"{"id":1}"#).is_err());
    }

    #[test]
    fn new_message_serializes_without_null_metadata() {
        let m = NewMessage::new("T", json!({}));
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"type":"T","data":{}}"#
        );
        let m = m.metadata(json!({"a": 1}));
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"type":"T","data":{},"metadata":{"a":1}}"#
        );
    }

    #[test]
    fn new_message_validation() {
        assert!(NewMessage::new("T", json!({})).validate().is_ok());
        assert!(NewMessage::new("", json!({})).validate().is_err());
        assert!(NewMessage::new("T", json!([1])).validate().is_err());
        assert!(NewMessage::new("T", json!(null)).validate().is_err());
        assert!(
            NewMessage::new("T", json!({"a": ["x\u{0}"]}))
                .validate()
                .is_err()
        );
        assert!(
            NewMessage::new("T", json!({"a\u{0}": 1}))
                .validate()
                .is_err()
        );
        assert!(
            NewMessage::new("T", json!({}))
                .metadata(json!("x"))
                .validate()
                .is_err()
        );
        assert!(
            NewMessage::new("T", json!({}))
                .metadata(json!({"m": "\u{0}"}))
                .validate()
                .is_err()
        );
    }
}
