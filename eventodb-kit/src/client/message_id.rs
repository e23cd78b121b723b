//! [`MessageId`]: the id of a message read back from EventoDB.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The id of a message read from EventoDB, exactly as the server holds it.
///
/// Ids are not always UUIDs: the Pebble backend stores any string (`"order-42"`), and the
/// SQLite and Pebble backends echo an id verbatim (`urn:uuid:…`, braces, uppercase), while
/// PostgreSQL echoes the canonical lowercase form. So a read never fails on an id, and
/// [`as_uuid`](Self::as_uuid) says whether it is a UUID.
///
/// Equality between two `MessageId`s (and `Hash`, `Ord`) is on the text, as the server
/// returned it. Equality with a [`Uuid`] parses the id, so the canonical or a verbatim echo of
/// a UUID the SDK wrote compares equal to it.
///
/// Ids the SDK writes ([`WriteOptions::id`](super::WriteOptions::id), outbox rows) stay
/// [`Uuid`]s: PostgreSQL and SQLite reject anything else.
///
/// # Examples
/// ```
/// use eventodb_kit::client::MessageId;
/// use uuid::Uuid;
///
/// let written = Uuid::parse_str("0192e4a0-7b1a-7c3d-8e4f-5a6b7c8d9e0f").unwrap();
/// let echoed = MessageId::new("urn:uuid:0192E4A0-7B1A-7C3D-8E4F-5A6B7C8D9E0F");
/// assert_eq!(echoed, written);
/// assert_eq!(echoed.as_uuid(), Some(written));
///
/// let foreign = MessageId::new("order-42");
/// assert_eq!(foreign.as_str(), "order-42");
/// assert_eq!(foreign.as_uuid(), None);
/// ```
// `Box<str>`, not `String`: an id never grows, and the two words saved keep
// `Error::ConsumerStopped`, which carries one, within clippy's `result_large_err` limit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(Box<str>);

impl MessageId {
    /// An id with this text.
    pub fn new(id: impl Into<String>) -> Self {
        MessageId(id.into().into_boxed_str())
    }

    /// The id as the server returned it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as the server returned it, owned.
    pub fn into_string(self) -> String {
        self.0.into_string()
    }

    /// The id as a UUID, when it is one in any spelling the server's UUID parser accepts:
    /// hyphenated, 32 hex digits, `{…}`, or `urn:uuid:…` (prefix in any case), hex digits in
    /// any case. `None` for any other id.
    pub fn as_uuid(&self) -> Option<Uuid> {
        let id = &*self.0;
        // Go's `uuid.Parse` (which the backends that check ids use) takes the prefix in any
        // case; the uuid crate only in lowercase.
        let id = match id.get(..9) {
            Some(prefix) if id.len() == 45 && prefix.eq_ignore_ascii_case("urn:uuid:") => &id[9..],
            _ => id,
        };
        Uuid::try_parse(id).ok()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Uuid> for MessageId {
    /// The canonical (lowercase, hyphenated) form, which is what the SDK writes.
    fn from(id: Uuid) -> Self {
        MessageId::new(id.to_string())
    }
}

impl From<String> for MessageId {
    fn from(id: String) -> Self {
        MessageId::new(id)
    }
}

impl From<&str> for MessageId {
    fn from(id: &str) -> Self {
        MessageId(id.into())
    }
}

impl From<MessageId> for String {
    fn from(id: MessageId) -> Self {
        id.into_string()
    }
}

impl AsRef<str> for MessageId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// Sound because `Eq`, `Hash` and `Ord` are the string's: sets of ids can be searched by text.
impl Borrow<str> for MessageId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<Uuid> for MessageId {
    fn eq(&self, other: &Uuid) -> bool {
        self.as_uuid() == Some(*other)
    }
}

impl PartialEq<MessageId> for Uuid {
    fn eq(&self, other: &MessageId) -> bool {
        other == self
    }
}

impl PartialEq<str> for MessageId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for MessageId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const ID: &str = "0192e4a0-7b1a-7c3d-8e4f-5a6b7c8d9e0f";

    fn uuid() -> Uuid {
        Uuid::parse_str(ID).unwrap()
    }

    #[test]
    fn a_canonical_uuid() {
        let id = MessageId::new(ID);
        assert_eq!(id.as_uuid(), Some(uuid()));
        assert_eq!(id, uuid());
        assert_eq!(uuid(), id);
        assert_eq!(MessageId::from(uuid()), id);
        assert_eq!(id.to_string(), ID);
    }

    #[test]
    fn every_spelling_of_a_uuid_equals_it_and_stays_verbatim() {
        let upper = ID.to_uppercase();
        for spelling in [
            format!("urn:uuid:{ID}"),
            format!("URN:UUID:{upper}"),
            format!("{{{ID}}}"),
            ID.replace('-', ""),
            upper.clone(),
        ] {
            let id = MessageId::new(spelling.clone());
            assert_eq!(id.as_uuid(), Some(uuid()), "{spelling}");
            assert_eq!(id, uuid(), "{spelling}");
            assert_eq!(id.as_str(), spelling);
            assert_ne!(id, MessageId::new(ID), "ids compare as text: {spelling}");
        }
    }

    #[test]
    fn any_other_string() {
        for text in ["order-42", "", "urn:uuid:order-42", "not-a-uuid", "{x}"] {
            let id = MessageId::new(text);
            assert_eq!(id.as_uuid(), None, "{text:?}");
            assert_ne!(id, uuid());
            assert_eq!(id, text);
            assert_eq!(id.to_string(), text);
            assert_eq!(String::from(id), text);
        }
    }

    #[test]
    fn serde_is_a_plain_string() {
        for text in [
            ID,
            "order-42",
            "urn:uuid:0192E4A0-7B1A-7C3D-8E4F-5A6B7C8D9E0F",
        ] {
            let id = MessageId::new(text);
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, serde_json::to_string(text).unwrap());
            assert_eq!(serde_json::from_str::<MessageId>(&json).unwrap(), id);
        }
        assert!(serde_json::from_str::<MessageId>("42").is_err());
    }

    #[test]
    fn sets_of_ids_are_searched_by_text() {
        let set: HashSet<MessageId> = [MessageId::new("order-42"), MessageId::from(uuid())]
            .into_iter()
            .collect();
        assert!(set.contains("order-42"));
        assert!(set.contains(ID));
        assert!(!set.contains(ID.to_uppercase().as_str()));
    }
}
