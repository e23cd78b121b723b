//! Results of the namespace (`ns.*`) and system (`sys.*`) methods.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::message::{de_opt_time, de_time};
use super::token::Token;

/// The result of `ns.create`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NamespaceCreated {
    /// The namespace id.
    pub namespace: String,
    /// Its token: the only time the server reveals it.
    #[serde(deserialize_with = "de_token")]
    pub token: Token,
    /// When it was created.
    #[serde(deserialize_with = "de_time")]
    pub created_at: DateTime<Utc>,
}

fn de_token<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Token, D::Error> {
    let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
    Token::parse(&s).map_err(serde::de::Error::custom)
}

/// The result of `ns.delete`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NamespaceDeleted {
    /// The namespace id.
    pub namespace: String,
    /// When it was deleted.
    #[serde(deserialize_with = "de_time")]
    pub deleted_at: DateTime<Utc>,
    /// Always 0 on EventoDB 0.7.
    #[serde(default)]
    pub messages_deleted: i64,
}

/// One entry of `ns.list`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NamespaceSummary {
    /// The namespace id.
    pub namespace: String,
    /// Its description (empty when none was given).
    #[serde(default)]
    pub description: String,
    /// When it was created (whole seconds on some backends).
    #[serde(deserialize_with = "de_time")]
    pub created_at: DateTime<Utc>,
    /// Always 0 on EventoDB 0.7.
    #[serde(default)]
    pub message_count: i64,
}

/// The result of `ns.info`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NamespaceInfo {
    /// The namespace id.
    pub namespace: String,
    /// Its description (empty when none was given).
    #[serde(default)]
    pub description: String,
    /// When it was created.
    #[serde(deserialize_with = "de_time")]
    pub created_at: DateTime<Utc>,
    /// Number of messages in the namespace.
    #[serde(default)]
    pub message_count: i64,
    /// Always 0 on EventoDB 0.7.
    #[serde(default)]
    pub stream_count: i64,
    /// Always `None` on EventoDB 0.7.
    #[serde(default, deserialize_with = "de_opt_time")]
    pub last_activity: Option<DateTime<Utc>>,
}

/// One entry of `ns.streams`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StreamSummary {
    /// The stream name.
    pub stream: String,
    /// The position of its last message.
    pub version: i64,
    /// When it was last written (whole seconds).
    #[serde(deserialize_with = "de_time")]
    pub last_activity: DateTime<Utc>,
}

/// One entry of `ns.categories`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CategorySummary {
    /// The category name.
    pub category: String,
    /// Number of streams in it.
    pub stream_count: i64,
    /// Number of messages in it (Pebble also counts categories that start with `<name>:`).
    pub message_count: i64,
}

/// The result of `sys.health`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Health {
    /// `"ok"`.
    pub status: String,
    /// Always `"unknown"` on EventoDB 0.7.
    #[serde(default)]
    pub backend: Option<String>,
    /// Always 0 on EventoDB 0.7.
    #[serde(default)]
    pub connections: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_servers_shapes() {
        let token = format!("ns_dDE_{}", "0".repeat(64));
        let created: NamespaceCreated = serde_json::from_str(&format!(
            r#"{{"createdAt":"2026-11-26T12:00:00.123456789Z","namespace":"t1","token":"{token}"}}"#
        ))
        .unwrap();
        assert_eq!(created.token.namespace(), "t1");
        let info: NamespaceInfo = serde_json::from_str(
            r#"{"createdAt":"2026-11-26T12:00:00Z","description":"","lastActivity":null,"messageCount":5,"namespace":"t1","streamCount":0}"#,
        )
        .unwrap();
        assert_eq!((info.message_count, info.last_activity), (5, None));
        let streams: Vec<StreamSummary> = serde_json::from_str(
            r#"[{"lastActivity":"2026-11-26T12:00:00Z","stream":"a-1","version":2}]"#,
        )
        .unwrap();
        assert_eq!(streams[0].version, 2);
        let health: Health = serde_json::from_str(r#"{"status":"ok"}"#).unwrap();
        assert_eq!(health.status, "ok");
    }
}
