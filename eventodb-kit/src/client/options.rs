//! Option builders for the RPC methods.
//!
//! Every builder serializes to a JSON object with the server's exact camelCase keys and
//! omits unset options (the server rejects `null` for every optional field). Values the
//! server, or one of its backends, would reject or treat inconsistently are refused with
//! [`Error::InvalidArgument`] before anything is sent.

use serde::Serialize;
use uuid::Uuid;

use crate::error::{Error, Result};

use super::token::Token;

/// The largest `batchSize` the server accepts.
pub const MAX_BATCH_SIZE: i64 = 10_000;

/// The largest position or version a request can carry: the server reads JSON numbers as
/// float64, exact only up to 2^53, and what it does beyond that is undefined.
pub const MAX_POSITION: i64 = (1 << 53) - 1;

/// Refuses a position the server could not read exactly.
fn check_position(what: &str, value: Option<i64>) -> Result<()> {
    match value {
        Some(value) if value > MAX_POSITION => Err(Error::InvalidArgument(format!(
            "{what} {value} is past {MAX_POSITION}: EventoDB reads numbers as float64"
        ))),
        _ => Ok(()),
    }
}

/// Options of [`Client::stream_write`](super::Client::stream_write).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_version: Option<i64>,
}

impl WriteOptions {
    /// No options: the server generates the id, no version check.
    pub fn new() -> Self {
        Self::default()
    }

    /// The message id, sent lowercase and hyphenated. Generate it client-side when you may
    /// need to retry: a retried write with the same id fails as a duplicate instead of
    /// writing twice (except on Pebble, which accepts duplicates).
    pub fn id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }

    /// Only write when the stream's last position is `version` (`-1`: the stream must be
    /// empty). Otherwise the write fails with
    /// [`Error::VersionConflict`].
    pub fn expected_version(mut self, version: i64) -> Self {
        self.expected_version = Some(version);
        self
    }

    /// The id set with [`WriteOptions::id`].
    pub fn id_value(&self) -> Option<Uuid> {
        self.id
    }

    /// The version set with [`WriteOptions::expected_version`].
    pub fn expected_version_value(&self) -> Option<i64> {
        self.expected_version
    }

    /// Refuses an expected version the server would read as another number.
    pub(super) fn validate(&self) -> Result<()> {
        check_position("expectedVersion", self.expected_version)
    }
}

/// Options of [`Client::stream_get`](super::Client::stream_get).
///
/// `batchSize` must be `1..=10000`, or `-1` for "unlimited" (safe on every backend for
/// `stream.get`). `0` is refused: the backends disagree on what it means (unlimited on
/// SQLite, nothing on PostgreSQL, 1000 on Pebble).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetStreamOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    global_position: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_size: Option<i64>,
}

impl GetStreamOptions {
    /// No options: from position 0, up to 1000 messages.
    pub fn new() -> Self {
        Self::default()
    }

    /// First stream position to return (inclusive). Negative values mean "from the start".
    pub fn position(mut self, position: i64) -> Self {
        self.position = Some(position);
        self
    }

    /// Only messages at or after this global position. Not together with
    /// [`position`](Self::position): Pebble applies both, the other backends ignore
    /// `position`, so the pair is refused.
    pub fn global_position(mut self, global_position: i64) -> Self {
        self.global_position = Some(global_position);
        self
    }

    /// At most this many messages: `1..=10000`, or `-1` for all.
    pub fn batch_size(mut self, batch_size: i64) -> Self {
        self.batch_size = Some(batch_size);
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.position.is_some() && self.global_position.is_some() {
            return Err(Error::InvalidArgument(
                "stream.get with both position and globalPosition is refused: Pebble applies \
                 both, the other backends ignore position; give one"
                    .into(),
            ));
        }
        check_position("position", self.position)?;
        check_position("globalPosition", self.global_position)?;
        match self.batch_size {
            None | Some(-1) | Some(1..=MAX_BATCH_SIZE) => Ok(()),
            Some(0) => Err(Error::InvalidArgument(
                "batchSize 0 is refused: its meaning differs between EventoDB backends; use 1..=10000 or -1 for all"
                    .into(),
            )),
            Some(other) => Err(Error::InvalidArgument(format!(
                "batchSize {other} is out of range: use 1..=10000, or -1 for all"
            ))),
        }
    }
}

/// Options of [`Client::category_get`](super::Client::category_get).
///
/// `batchSize` must be `1..=10000`: `-1` on `category.get` crashes a Pebble-backed server,
/// and `0` means something different on every backend. Read larger categories in pages.
/// The cursor is always sent as `position` (an inclusive **global** position); Pebble
/// ignores `globalPosition` on `category.get`, so this builder has no such option.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetCategoryOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_size: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer_group: Option<ConsumerGroup>,
}

/// A consumer-group member: `member` of `size` (`0 <= member < size`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ConsumerGroup {
    /// This member's index.
    pub member: i64,
    /// The number of members.
    pub size: i64,
}

impl ConsumerGroup {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.size <= 0 || self.member < 0 || self.member >= self.size {
            return Err(Error::InvalidArgument(format!(
                "consumer group member {} of size {} is invalid: need 0 <= member < size",
                self.member, self.size
            )));
        }
        Ok(())
    }
}

impl GetCategoryOptions {
    /// No options: from global position 1, up to 1000 messages.
    pub fn new() -> Self {
        Self::default()
    }

    /// First **global** position to return (inclusive). A consumer that handled global
    /// position `gp` continues from `gp + 1`.
    pub fn position(mut self, global_position: i64) -> Self {
        self.position = Some(global_position);
        self
    }

    /// At most this many messages: `1..=10000`.
    pub fn batch_size(mut self, batch_size: i64) -> Self {
        self.batch_size = Some(batch_size);
        self
    }

    /// Only messages whose `metadata.correlationStreamName` is in this category.
    ///
    /// The backends agree only on a plain category name: an empty value, or one with a `-`
    /// (a stream name) or a `%` (a wildcard to SQLite's `LIKE`), is refused with
    /// [`Error::InvalidArgument`] when the request is made. SQLite-backed servers (test mode)
    /// also match the name without regard to ASCII case and read `_` as any one character.
    pub fn correlation(mut self, correlation: impl Into<String>) -> Self {
        self.correlation = Some(correlation.into());
        self
    }

    /// Only the streams assigned to `member` of a group of `size` (md5 of the cardinal id).
    pub fn consumer_group(mut self, member: i64, size: i64) -> Self {
        self.consumer_group = Some(ConsumerGroup { member, size });
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match self.batch_size {
            None | Some(1..=MAX_BATCH_SIZE) => {}
            Some(-1) => {
                return Err(Error::InvalidArgument(
                    "batchSize -1 is refused for category.get: it crashes Pebble-backed servers; read in pages of 1..=10000"
                        .into(),
                ));
            }
            Some(0) => {
                return Err(Error::InvalidArgument(
                    "batchSize 0 is refused: its meaning differs between EventoDB backends; use 1..=10000"
                        .into(),
                ));
            }
            Some(other) => {
                return Err(Error::InvalidArgument(format!(
                    "batchSize {other} is out of range: use 1..=10000"
                )));
            }
        }
        if let Some(group) = &self.consumer_group {
            group.validate()?;
        }
        match self.correlation.as_deref() {
            Some("") => {
                return Err(Error::InvalidArgument(
                    "an empty correlation is refused: it means no filter on Pebble and SQLite, \
                     and only empty correlation categories on PostgreSQL"
                        .into(),
                ));
            }
            // PostgreSQL compares the correlation stream's category with the filter, so a
            // filter with a '-' matches nothing there, while SQLite reads it as a prefix and
            // Pebble takes the part before the '-'; SQLite's LIKE reads '%' as a wildcard.
            Some(correlation) if correlation.contains(['-', '%']) => {
                return Err(Error::InvalidArgument(format!(
                    "correlation {correlation:?} is refused: it must be a category (no '-'; \
                     no '%', a wildcard on SQLite-backed servers), which every backend \
                     matches alike"
                )));
            }
            _ => {}
        }
        check_position("position", self.position)
    }

    /// Whether a consumer group is set.
    pub(crate) fn has_consumer_group(&self) -> bool {
        self.consumer_group.is_some()
    }
}

/// Options of [`Client::ns_create`](super::Client::ns_create).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NsCreateOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_token"
    )]
    token: Option<Token>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<serde_json::Value>,
}

fn serialize_token<S: serde::Serializer>(
    token: &Option<Token>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match token {
        Some(token) => s.serialize_str(token.expose_secret()),
        None => s.serialize_none(),
    }
}

impl NsCreateOptions {
    /// No options: the server generates the token.
    pub fn new() -> Self {
        Self::default()
    }

    /// A human-readable description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Use this token instead of a generated one. It must be for the namespace created.
    pub fn token(mut self, token: Token) -> Self {
        self.token = Some(token);
        self
    }

    /// Metadata (a JSON object; the server accepts it but does not store it).
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    pub(crate) fn validate(&self, namespace: &str) -> Result<()> {
        if let Some(token) = &self.token {
            if token.namespace() != namespace {
                return Err(Error::InvalidArgument(format!(
                    "the token is for namespace {:?}, not {namespace:?}",
                    token.namespace()
                )));
            }
        }
        if let Some(metadata) = &self.metadata {
            if !metadata.is_object() {
                return Err(Error::InvalidArgument(
                    "namespace metadata must be a JSON object".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Options of [`Client::ns_streams`](super::Client::ns_streams).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NsStreamsOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<i64>,
}

impl NsStreamsOptions {
    /// No options: the first 100 streams by name.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only streams whose name starts with this literal, case-sensitive prefix. `%` and `_`
    /// are refused: some backends treat them as SQL `LIKE` wildcards.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Only streams whose name sorts after this one (exclusive), for paging.
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// At most this many streams, `1..=1000` (default 100). Out-of-range values are sent
    /// as given and the server answers `INVALID_REQUEST`.
    pub fn limit(mut self, limit: i64) -> Self {
        self.limit = Some(limit);
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(prefix) = &self.prefix {
            if prefix.contains(['%', '_']) {
                return Err(Error::InvalidArgument(format!(
                    "stream prefix {prefix:?} contains % or _, which some backends treat as wildcards"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json_of<T: Serialize>(value: &T) -> serde_json::Value {
        serde_json::to_value(value).unwrap()
    }

    #[test]
    fn empty_options_are_empty_objects() {
        assert_eq!(json_of(&WriteOptions::new()), json!({}));
        assert_eq!(json_of(&GetStreamOptions::new()), json!({}));
        assert_eq!(json_of(&GetCategoryOptions::new()), json!({}));
        assert_eq!(json_of(&NsCreateOptions::new()), json!({}));
        assert_eq!(json_of(&NsStreamsOptions::new()), json!({}));
    }

    #[test]
    fn keys_are_exact_camel_case_and_ids_lowercase_hyphenated() {
        let id = Uuid::parse_str("0192E4A0-7B1A-7C3D-8E4F-5A6B7C8D9E0F").unwrap();
        assert_eq!(
            json_of(&WriteOptions::new().id(id).expected_version(-1)),
            json!({"id": "0192e4a0-7b1a-7c3d-8e4f-5a6b7c8d9e0f", "expectedVersion": -1})
        );
        assert_eq!(
            json_of(&GetStreamOptions::new().position(5).batch_size(10)),
            json!({"position": 5, "batchSize": 10})
        );
        assert_eq!(
            json_of(&GetStreamOptions::new().global_position(7)),
            json!({"globalPosition": 7})
        );
        assert_eq!(
            json_of(
                &GetCategoryOptions::new()
                    .position(9)
                    .batch_size(100)
                    .correlation("workflow")
                    .consumer_group(1, 3)
            ),
            json!({"position": 9, "batchSize": 100, "correlation": "workflow",
                   "consumerGroup": {"member": 1, "size": 3}})
        );
        let token = Token::generate("t1").unwrap();
        assert_eq!(
            json_of(&NsCreateOptions::new().description("d").token(token.clone())),
            json!({"description": "d", "token": token.expose_secret()})
        );
        assert_eq!(
            json_of(
                &NsStreamsOptions::new()
                    .prefix("acc")
                    .cursor("acc-1")
                    .limit(2)
            ),
            json!({"prefix": "acc", "cursor": "acc-1", "limit": 2})
        );
    }

    /// What the backends read differently is refused before anything is sent.
    #[test]
    fn options_the_backends_disagree_on_are_refused() {
        let both = GetStreamOptions::new().position(1).global_position(2);
        assert!(matches!(both.validate(), Err(Error::InvalidArgument(_))));
        for refused in ["", "workflow-1", "work%"] {
            let options = GetCategoryOptions::new().correlation(refused);
            assert!(
                matches!(options.validate(), Err(Error::InvalidArgument(_))),
                "{refused:?}"
            );
        }
        assert!(
            GetCategoryOptions::new()
                .correlation("workflow")
                .validate()
                .is_ok()
        );
        for past in [MAX_POSITION + 1, i64::MAX] {
            assert!(GetStreamOptions::new().position(past).validate().is_err());
            assert!(
                GetStreamOptions::new()
                    .global_position(past)
                    .validate()
                    .is_err()
            );
            assert!(GetCategoryOptions::new().position(past).validate().is_err());
            assert!(
                WriteOptions::new()
                    .expected_version(past)
                    .validate()
                    .is_err()
            );
        }
        assert!(
            WriteOptions::new()
                .expected_version(MAX_POSITION)
                .validate()
                .is_ok()
        );
        assert!(
            GetStreamOptions::new()
                .position(MAX_POSITION)
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn batch_sizes() {
        for ok in [1, 100, 10_000, -1] {
            assert!(
                GetStreamOptions::new().batch_size(ok).validate().is_ok(),
                "{ok}"
            );
        }
        for bad in [0, -2, 10_001, 1_000_000] {
            assert!(
                GetStreamOptions::new().batch_size(bad).validate().is_err(),
                "{bad}"
            );
        }
        for ok in [1, 100, 10_000] {
            assert!(
                GetCategoryOptions::new().batch_size(ok).validate().is_ok(),
                "{ok}"
            );
        }
        for bad in [-1, 0, -5, 10_001] {
            assert!(
                GetCategoryOptions::new()
                    .batch_size(bad)
                    .validate()
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn consumer_groups_and_prefixes() {
        assert!(
            GetCategoryOptions::new()
                .consumer_group(0, 1)
                .validate()
                .is_ok()
        );
        for (m, s) in [(1, 1), (-1, 2), (0, 0), (3, 2)] {
            assert!(
                GetCategoryOptions::new()
                    .consumer_group(m, s)
                    .validate()
                    .is_err(),
                "{m}/{s}"
            );
        }
        assert!(
            NsStreamsOptions::new()
                .prefix("account-")
                .validate()
                .is_ok()
        );
        assert!(NsStreamsOptions::new().prefix("a%").validate().is_err());
        assert!(NsStreamsOptions::new().prefix("a_b").validate().is_err());
    }

    #[test]
    fn ns_create_token_must_match() {
        let token = Token::generate("one").unwrap();
        assert!(
            NsCreateOptions::new()
                .token(token.clone())
                .validate("one")
                .is_ok()
        );
        assert!(NsCreateOptions::new().token(token).validate("two").is_err());
        assert!(
            NsCreateOptions::new()
                .metadata(json!([]))
                .validate("x")
                .is_err()
        );
    }
}
