//! The in-memory message store: namespaces, messages, writes (protocol §2, SQLite rules).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::backend::Backend;
use crate::json::Json;
use crate::time::TimePrecision;

/// One stored message.
#[derive(Debug, Clone)]
pub(crate) struct StoredMessage {
    pub(crate) id: String,
    pub(crate) stream: String,
    pub(crate) message_type: String,
    pub(crate) position: i64,
    pub(crate) global_position: i64,
    pub(crate) data: Json,
    pub(crate) metadata: Option<Json>,
    pub(crate) time: DateTime<Utc>,
}

/// One namespace: its own messages and its own global-position counter.
#[derive(Debug)]
pub(crate) struct Namespace {
    pub(crate) token_hash: String,
    pub(crate) description: String,
    pub(crate) created_at: DateTime<Utc>,
    created_seq: u64,
    /// All messages in global-position order.
    pub(crate) messages: Vec<Arc<StoredMessage>>,
    /// Indexes into `messages` per stream, in position order.
    pub(crate) streams: HashMap<String, Vec<usize>>,
    ids: HashSet<String>,
    next_global_position: i64,
}

impl Namespace {
    fn new(token_hash: String, description: String, created_seq: u64, backend: Backend) -> Self {
        let precision = match backend {
            Backend::Pebble => TimePrecision::Nanoseconds,
            _ => TimePrecision::Seconds,
        };
        Namespace {
            token_hash,
            description,
            created_at: precision.now(),
            created_seq,
            messages: Vec::new(),
            streams: HashMap::new(),
            ids: HashSet::new(),
            next_global_position: 1,
        }
    }

    /// Messages of one stream in position order.
    pub(crate) fn stream_messages(
        &self,
        stream: &str,
    ) -> impl Iterator<Item = &Arc<StoredMessage>> {
        self.streams
            .get(stream)
            .into_iter()
            .flatten()
            .map(|i| &self.messages[*i])
    }

    /// The last position of a stream, `-1` when it has no messages.
    pub(crate) fn stream_version(&self, stream: &str) -> i64 {
        self.streams
            .get(stream)
            .and_then(|v| v.last())
            .map_or(-1, |i| self.messages[*i].position)
    }
}

/// A message to write.
#[derive(Debug)]
pub(crate) struct NewMessage {
    pub(crate) stream: String,
    pub(crate) message_type: String,
    pub(crate) data: Json,
    pub(crate) metadata: Option<Json>,
    /// `""` means "generate one".
    pub(crate) id: String,
    pub(crate) expected_version: Option<i64>,
}

/// Store errors; `Display` is the text the server puts after `Failed to <action>: `.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("namespace {0} not found")]
    NamespaceNotFound(String),
    #[error("invalid UUID format: {0}")]
    InvalidUuid(String),
    #[error("version conflict: expected version does not match stream version")]
    VersionConflict { expected: i64, actual: i64 },
    #[error("failed to insert message: UNIQUE constraint failed: messages.id")]
    DuplicateId,
    #[error("namespace already exists")]
    NamespaceExists,
}

/// Where a write landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) position: i64,
    pub(crate) global_position: i64,
}

/// All namespaces, plus the log of acknowledged writes used by `forget_last_writes`.
#[derive(Debug, Default)]
pub(crate) struct Store {
    namespaces: HashMap<String, Namespace>,
    write_log: Vec<(String, i64)>,
    /// Length of `write_log` when the server last (re)started.
    start_mark: usize,
    seq: u64,
    pub(crate) precision: TimePrecision,
    pub(crate) backend: Backend,
}

impl Store {
    pub(crate) fn new(precision: TimePrecision) -> Self {
        Store {
            precision,
            ..Store::default()
        }
    }

    pub(crate) fn namespace(&self, name: &str) -> Result<&Namespace, StoreError> {
        self.namespaces
            .get(name)
            .ok_or_else(|| StoreError::NamespaceNotFound(name.to_owned()))
    }

    pub(crate) fn create_namespace(
        &mut self,
        name: &str,
        token_hash: String,
        description: String,
    ) -> Result<(), StoreError> {
        if self.namespaces.contains_key(name) {
            return Err(StoreError::NamespaceExists);
        }
        self.seq += 1;
        self.namespaces.insert(
            name.to_owned(),
            Namespace::new(token_hash, description, self.seq, self.backend),
        );
        Ok(())
    }

    pub(crate) fn delete_namespace(&mut self, name: &str) -> Result<(), StoreError> {
        self.namespaces
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| StoreError::NamespaceNotFound(name.to_owned()))
    }

    /// Namespaces newest first (SQLite `ORDER BY created_at DESC`), or by name (Pebble).
    pub(crate) fn list_namespaces(&self) -> Vec<(&str, &Namespace)> {
        let mut all: Vec<(&str, &Namespace)> = self
            .namespaces
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        match self.backend {
            Backend::Pebble => all.sort_by(|a, b| a.0.cmp(b.0)),
            _ => all.sort_by(|a, b| {
                (b.1.created_at, b.1.created_seq).cmp(&(a.1.created_at, a.1.created_seq))
            }),
        }
        all
    }

    /// Writes one message under the store lock (serialized per namespace and globally).
    pub(crate) fn write(
        &mut self,
        namespace: &str,
        msg: NewMessage,
    ) -> Result<Written, StoreError> {
        let precision = self.precision;
        let checked = self.backend != Backend::Pebble;
        let ns = self
            .namespaces
            .get_mut(namespace)
            .ok_or_else(|| StoreError::NamespaceNotFound(namespace.to_owned()))?;
        let id = if msg.id.is_empty() {
            uuid::Uuid::now_v7().to_string()
        } else {
            msg.id
        };
        if checked {
            check_uuid(&id).map_err(StoreError::InvalidUuid)?;
        }
        let current = ns.stream_version(&msg.stream);
        if let Some(expected) = msg.expected_version {
            if expected != current {
                return Err(StoreError::VersionConflict {
                    expected,
                    actual: current,
                });
            }
        }
        if checked && ns.ids.contains(&id) {
            return Err(StoreError::DuplicateId);
        }
        let written = Written {
            position: current + 1,
            global_position: ns.next_global_position,
        };
        ns.next_global_position += 1;
        ns.ids.insert(id.clone());
        let index = ns.messages.len();
        ns.streams
            .entry(msg.stream.clone())
            .or_default()
            .push(index);
        ns.messages.push(Arc::new(StoredMessage {
            id,
            stream: msg.stream,
            message_type: msg.message_type,
            position: written.position,
            global_position: written.global_position,
            data: msg.data,
            metadata: msg.metadata,
            time: precision.now(),
        }));
        self.write_log
            .push((namespace.to_owned(), written.global_position));
        Ok(written)
    }

    /// Number of writes acknowledged since the last (re)start.
    pub(crate) fn writes_since_start(&self) -> usize {
        self.write_log.len().saturating_sub(self.start_mark)
    }

    /// Records a (re)start, for `writes_since_start`.
    pub(crate) fn mark_start(&mut self) {
        self.start_mark = self.write_log.len();
    }

    /// Removes the last `n` acknowledged writes (as a crashed Pebble server does).
    ///
    /// The global-position counter of each namespace goes back to its highest remaining
    /// message, so the lost positions are handed out again, as on Pebble.
    pub(crate) fn forget_last_writes(&mut self, n: usize) -> usize {
        let mut forgotten = 0;
        for _ in 0..n {
            let Some((namespace, gp)) = self.write_log.pop() else {
                break;
            };
            let Some(ns) = self.namespaces.get_mut(&namespace) else {
                continue;
            };
            if ns.messages.last().map(|m| m.global_position) != Some(gp) {
                continue;
            }
            if let Some(msg) = ns.messages.pop() {
                if let Some(indexes) = ns.streams.get_mut(&msg.stream) {
                    indexes.pop();
                    if indexes.is_empty() {
                        ns.streams.remove(&msg.stream);
                    }
                }
                ns.ids.remove(&msg.id);
                ns.next_global_position = ns.messages.last().map_or(1, |m| m.global_position + 1);
                forgotten += 1;
            }
        }
        forgotten
    }
}

/// Go `github.com/google/uuid.Parse`: the error text, or `Ok` for an accepted id.
pub(crate) fn check_uuid(s: &str) -> Result<(), String> {
    let bytes = s.as_bytes();
    let body: &[u8] = match bytes.len() {
        36 => bytes,
        45 => {
            if !bytes[..9].eq_ignore_ascii_case(b"urn:uuid:") {
                return Err(format!(
                    "invalid urn prefix: {}",
                    crate::json::quote(&String::from_utf8_lossy(&bytes[..9]))
                ));
            }
            &bytes[9..]
        }
        38 => &bytes[1..],
        32 => {
            return if bytes.iter().all(u8::is_ascii_hexdigit) {
                Ok(())
            } else {
                Err("invalid UUID format".to_owned())
            };
        }
        n => return Err(format!("invalid UUID length: {n}")),
    };
    let dashes_ok = [8, 13, 18, 23].iter().all(|i| body[*i] == b'-');
    let hex_ok = body[..36]
        .iter()
        .enumerate()
        .all(|(i, b)| matches!(i, 8 | 13 | 18 | 23) || b.is_ascii_hexdigit());
    if dashes_ok && hex_ok {
        Ok(())
    } else {
        Err("invalid UUID format".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(stream: &str) -> NewMessage {
        NewMessage {
            stream: stream.to_owned(),
            message_type: "T".to_owned(),
            data: Json::Object(Default::default()),
            metadata: None,
            id: String::new(),
            expected_version: None,
        }
    }

    fn store() -> Store {
        let mut s = Store::new(TimePrecision::Seconds);
        s.create_namespace("a", "h".into(), String::new()).unwrap();
        s.create_namespace("b", "h".into(), String::new()).unwrap();
        s
    }

    #[test]
    fn positions_per_stream_and_global_per_namespace() {
        let mut s = store();
        assert_eq!(
            s.write("a", msg("x-1")).unwrap(),
            Written {
                position: 0,
                global_position: 1
            }
        );
        assert_eq!(
            s.write("a", msg("x-2")).unwrap(),
            Written {
                position: 0,
                global_position: 2
            }
        );
        assert_eq!(
            s.write("a", msg("x-1")).unwrap(),
            Written {
                position: 1,
                global_position: 3
            }
        );
        assert_eq!(
            s.write("b", msg("x-1")).unwrap(),
            Written {
                position: 0,
                global_position: 1
            }
        );
    }

    #[test]
    fn expected_version_rules() {
        let mut s = store();
        let mut m = msg("s");
        m.expected_version = Some(0);
        assert!(matches!(
            s.write("a", m),
            Err(StoreError::VersionConflict {
                expected: 0,
                actual: -1
            })
        ));
        let mut m = msg("s");
        m.expected_version = Some(-1);
        s.write("a", m).unwrap();
        let mut m = msg("s");
        m.expected_version = Some(-2);
        assert!(s.write("a", m).is_err());
        let mut m = msg("s");
        m.expected_version = Some(0);
        assert_eq!(s.write("a", m).unwrap().position, 1);
    }

    #[test]
    fn ids_must_be_uuids_and_unique() {
        let mut s = store();
        let id = "550e8400-e29b-41d4-a716-446655440000";
        let mut m = msg("s");
        m.id = id.to_owned();
        s.write("a", m).unwrap();
        let mut m = msg("t");
        m.id = id.to_owned();
        assert!(matches!(s.write("a", m), Err(StoreError::DuplicateId)));
        let mut m = msg("t");
        m.id = id.to_uppercase();
        assert!(s.write("a", m).is_ok(), "uniqueness is textual on SQLite");
        let mut m = msg("t");
        m.id = "not-a-uuid".to_owned();
        assert_eq!(
            s.write("a", m).unwrap_err().to_string(),
            "invalid UUID format: invalid UUID length: 10"
        );
    }

    #[test]
    fn uuid_forms_follow_google_uuid() {
        assert!(check_uuid("550e8400-e29b-41d4-a716-446655440000").is_ok());
        assert!(check_uuid("{550e8400-e29b-41d4-a716-446655440000}").is_ok());
        assert!(check_uuid("urn:uuid:550e8400-e29b-41d4-a716-446655440000").is_ok());
        assert!(check_uuid("550e8400e29b41d4a716446655440000").is_ok());
        assert_eq!(
            check_uuid("550e8400-e29b-41d4-a716-44665544000g").unwrap_err(),
            "invalid UUID format"
        );
        assert_eq!(
            check_uuid("urx:uuid:550e8400-e29b-41d4-a716-446655440000").unwrap_err(),
            "invalid urn prefix: \"urx:uuid:\""
        );
    }

    #[test]
    fn forgetting_removes_the_newest_writes() {
        let mut s = store();
        s.write("a", msg("s")).unwrap();
        s.write("b", msg("s")).unwrap();
        s.write("a", msg("s")).unwrap();
        assert_eq!(s.forget_last_writes(2), 2);
        assert_eq!(s.namespace("a").unwrap().stream_version("s"), 0);
        assert_eq!(s.namespace("b").unwrap().stream_version("s"), -1);
        assert_eq!(
            s.write("a", msg("s")).unwrap(),
            Written {
                position: 1,
                global_position: 2
            }
        );
    }

    #[test]
    fn counts_writes_since_the_last_start() {
        let mut s = store();
        s.write("a", msg("s")).unwrap();
        s.mark_start();
        s.write("a", msg("s")).unwrap();
        s.write("b", msg("s")).unwrap();
        assert_eq!(s.writes_since_start(), 2);
        let n = s.writes_since_start();
        assert_eq!(s.forget_last_writes(n), 2);
        s.mark_start();
        assert_eq!(s.writes_since_start(), 0);
        assert_eq!(s.namespace("a").unwrap().stream_version("s"), 0);
    }
}
