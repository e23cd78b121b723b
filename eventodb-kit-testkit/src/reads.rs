//! Read queries over one namespace, with the SQLite backend's semantics (protocol §3).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::groups;
use crate::json::Json;
use crate::store::{Namespace, StoredMessage};

/// `stream.get` options after validation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamQuery {
    pub(crate) position: i64,
    pub(crate) global_position: Option<i64>,
    pub(crate) batch_size: i64,
    /// Apply `position` as well when `global_position` is given (Pebble).
    pub(crate) both: bool,
}

/// `category.get` options after validation.
#[derive(Debug, Clone, Default)]
pub(crate) struct CategoryQuery {
    /// Minimum global position (inclusive); `globalPosition` already folded in.
    pub(crate) position: i64,
    pub(crate) batch_size: i64,
    pub(crate) correlation: Option<String>,
    /// `(member, size)`.
    pub(crate) group: Option<(i64, i64)>,
    /// Correlation by category equality (Pebble) instead of `LIKE '<c>-%'` (SQLite).
    pub(crate) correlation_by_category: bool,
    /// Pebble's key-scan limit: look at only the first `batch_size` messages of the
    /// category from the position (`batch_size × size` with a group), and filter those, so
    /// a group member or a correlation filter may get fewer than `batch_size`, even none,
    /// while later messages match (protocol §9). SQLite filters first, then limits.
    pub(crate) scan_limit: bool,
}

/// SQLite applies `LIMIT` only for a positive batch size.
fn limit(batch_size: i64) -> usize {
    if batch_size > 0 {
        usize::try_from(batch_size).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    }
}

pub(crate) fn stream_get(ns: &Namespace, stream: &str, q: StreamQuery) -> Vec<Arc<StoredMessage>> {
    let Some(indexes) = ns.streams.get(stream) else {
        return Vec::new();
    };
    // Positions are 0..n in index order, and global positions increase with them.
    let by_position = usize::try_from(q.position.max(0))
        .unwrap_or(usize::MAX)
        .min(indexes.len());
    let start = match q.global_position {
        Some(gp) => {
            let by_global = indexes.partition_point(|i| ns.messages[*i].global_position < gp);
            if q.both {
                by_global.max(by_position)
            } else {
                by_global
            }
        }
        None => by_position,
    };
    indexes[start..]
        .iter()
        .take(limit(q.batch_size))
        .map(|i| ns.messages[*i].clone())
        .collect()
}

/// The last message, optionally of one type (`""` means no filter on SQLite).
pub(crate) fn stream_last(
    ns: &Namespace,
    stream: &str,
    message_type: Option<&str>,
) -> Option<Arc<StoredMessage>> {
    let wanted = message_type.filter(|t| !t.is_empty());
    ns.stream_messages(stream)
        .filter(|m| wanted.is_none_or(|t| m.message_type == t))
        .last()
        .cloned()
}

pub(crate) fn category_get(
    ns: &Namespace,
    category: &str,
    q: &CategoryQuery,
) -> Vec<Arc<StoredMessage>> {
    let correlation = q.correlation.as_deref().filter(|c| !c.is_empty());
    let pattern = correlation.map(|c| format!("{c}-%"));
    let correlated = |m: &StoredMessage| match (correlation, &pattern) {
        (Some(c), _) if q.correlation_by_category => {
            correlation_of(m).is_some_and(|v| groups::category(v) == groups::category(c))
        }
        (_, Some(p)) => correlation_of(m).is_some_and(|v| like(p, v)),
        _ => true,
    };
    let start = ns
        .messages
        .partition_point(|m| m.global_position < q.position);
    // Pebble scans its category index, not the whole store, for a named category; `""`
    // walks every message until the batch is full, with no scan limit.
    let scanned = if q.scan_limit && !category.is_empty() && q.batch_size > 0 {
        let size = q.group.map_or(1, |(_, size)| size);
        usize::try_from(q.batch_size.saturating_mul(size)).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    ns.messages[start..]
        .iter()
        .filter(|m| category.is_empty() || groups::category(&m.stream) == category)
        .take(scanned)
        .filter(|m| correlated(m))
        .filter(|m| match q.group {
            None => true,
            Some((member, size)) => groups::is_assigned(&m.stream, member, size),
        })
        .take(limit(q.batch_size))
        .cloned()
        .collect()
}

fn correlation_of(m: &StoredMessage) -> Option<&str> {
    match &m.metadata {
        Some(Json::Object(map)) => match map.get("correlationStreamName") {
            Some(Json::String(s)) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

/// One row of `ns.streams`.
#[derive(Debug)]
pub(crate) struct StreamInfo {
    pub(crate) stream: String,
    pub(crate) version: i64,
    pub(crate) last_activity: DateTime<Utc>,
}

pub(crate) fn list_streams(
    ns: &Namespace,
    prefix: &str,
    cursor: &str,
    limit: i64,
    literal_prefix: bool,
) -> Vec<StreamInfo> {
    let pattern = format!("{prefix}%");
    let matches = |s: &str| {
        prefix.is_empty()
            || if literal_prefix {
                s.starts_with(prefix)
            } else {
                like(&pattern, s)
            }
    };
    let mut names: Vec<&String> = ns
        .streams
        .keys()
        .filter(|s| matches(s))
        .filter(|s| cursor.is_empty() || s.as_str() > cursor)
        .collect();
    names.sort();
    names
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(0))
        .filter_map(|name| {
            let last = ns.stream_messages(name).last()?;
            Some(StreamInfo {
                stream: name.clone(),
                version: last.position,
                last_activity: last.time,
            })
        })
        .collect()
}

/// `(category, stream count, message count)` sorted by category. With `count_prefixed`
/// (Pebble), a category's message count also includes every category `C:...` under it.
pub(crate) fn list_categories(ns: &Namespace, count_prefixed: bool) -> Vec<(String, i64, i64)> {
    let mut by_category: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (stream, indexes) in &ns.streams {
        let entry = by_category.entry(groups::category(stream)).or_default();
        entry.0 += 1;
        entry.1 += indexes.len() as i64;
    }
    let own: Vec<(&str, i64)> = by_category.iter().map(|(c, (_, m))| (*c, *m)).collect();
    by_category
        .iter()
        .map(|(c, (streams, messages))| {
            let extra: i64 = if count_prefixed {
                let prefix = format!("{c}:");
                own.iter()
                    .filter(|(other, _)| other.starts_with(&prefix))
                    .map(|(_, m)| m)
                    .sum()
            } else {
                0
            };
            ((*c).to_owned(), *streams, messages + extra)
        })
        .collect()
}

/// SQLite `LIKE` without an escape character: `%` any run, `_` one character, ASCII
/// case-insensitive.
pub(crate) fn like(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '_' || p[pi].eq_ignore_ascii_case(&t[ti])) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::object;
    use crate::store::{NewMessage, Store};
    use crate::time::TimePrecision;

    fn write(s: &mut Store, stream: &str, ty: &str, correlation: Option<&str>) {
        s.write(
            "n",
            NewMessage {
                stream: stream.to_owned(),
                message_type: ty.to_owned(),
                data: Json::Object(Default::default()),
                metadata: correlation.map(|c| object([("correlationStreamName", Json::str(c))])),
                id: String::new(),
                expected_version: None,
            },
        )
        .unwrap();
    }

    fn fixture() -> Store {
        let mut s = Store::new(TimePrecision::Seconds);
        s.create_namespace("n", String::new(), String::new())
            .unwrap();
        write(&mut s, "account-1", "Opened", Some("workflow-1"));
        write(&mut s, "account-2", "Opened", Some("Workflow-2+x"));
        write(&mut s, "account-1", "Deposited", Some("workflow"));
        write(&mut s, "order-1", "Placed", None);
        write(&mut s, "account-3", "Opened", Some("other-1"));
        s
    }

    fn gps(v: &[Arc<StoredMessage>]) -> Vec<i64> {
        v.iter().map(|m| m.global_position).collect()
    }

    #[test]
    fn like_matches_sqlite() {
        assert!(like("acc%", "ACCOUNT-1"));
        assert!(like("pfx_%", "pfxba-1"));
        assert!(like("workflow-%", "workflow-"));
        assert!(!like("workflow-%", "workflow"));
        assert!(like("a%c", "abbbc"));
        assert!(!like("a%c", "abbbd"));
        assert!(like("é%", "é-1"));
    }

    #[test]
    fn stream_get_ignores_position_when_global_position_is_given() {
        let s = fixture();
        let ns = s.namespace("n").unwrap();
        let q = StreamQuery {
            position: 5,
            global_position: Some(2),
            batch_size: 1000,
            both: false,
        };
        assert_eq!(gps(&stream_get(ns, "account-1", q)), vec![3]);
        let q = StreamQuery {
            position: -3,
            global_position: None,
            batch_size: 0,
            both: false,
        };
        assert_eq!(gps(&stream_get(ns, "account-1", q)), vec![1, 3]);
        let q = StreamQuery {
            position: 0,
            global_position: None,
            batch_size: 1,
            both: false,
        };
        assert_eq!(gps(&stream_get(ns, "account-1", q)), vec![1]);
        let q = StreamQuery {
            position: 0,
            global_position: None,
            batch_size: 10,
            both: false,
        };
        assert!(stream_get(ns, "account", q).is_empty());
    }

    #[test]
    fn stream_last_with_type_filter() {
        let s = fixture();
        let ns = s.namespace("n").unwrap();
        assert_eq!(
            stream_last(ns, "account-1", None).unwrap().global_position,
            3
        );
        assert_eq!(
            stream_last(ns, "account-1", Some("Opened"))
                .unwrap()
                .global_position,
            1
        );
        assert_eq!(
            stream_last(ns, "account-1", Some(""))
                .unwrap()
                .global_position,
            3
        );
        assert!(stream_last(ns, "account-1", Some("Nope")).is_none());
    }

    #[test]
    fn category_filters() {
        let s = fixture();
        let ns = s.namespace("n").unwrap();
        let q = |position, correlation: Option<&str>| CategoryQuery {
            position,
            batch_size: 1000,
            correlation: correlation.map(str::to_owned),
            group: None,
            correlation_by_category: false,
            scan_limit: false,
        };
        assert_eq!(
            gps(&category_get(ns, "account", &q(1, None))),
            vec![1, 2, 3, 5]
        );
        assert_eq!(gps(&category_get(ns, "account", &q(3, None))), vec![3, 5]);
        assert_eq!(gps(&category_get(ns, "", &q(1, None))), vec![1, 2, 3, 4, 5]);
        assert!(category_get(ns, "account-1", &q(1, None)).is_empty());
        assert_eq!(
            gps(&category_get(ns, "account", &q(1, Some("workflow")))),
            vec![1, 2]
        );
        assert_eq!(
            gps(&category_get(ns, "account", &q(1, Some("")))),
            vec![1, 2, 3, 5]
        );
    }

    #[test]
    fn consumer_group_filters_before_the_limit() {
        let mut s = Store::new(TimePrecision::Seconds);
        s.create_namespace("n", String::new(), String::new())
            .unwrap();
        for i in 1..=20 {
            write(&mut s, &format!("test-{i}"), "T", None);
        }
        let ns = s.namespace("n").unwrap();
        let q = |member| CategoryQuery {
            position: 1,
            batch_size: 3,
            correlation: None,
            group: Some((member, 2)),
            correlation_by_category: false,
            scan_limit: false,
        };
        let m0 = category_get(ns, "test", &q(0));
        let m1 = category_get(ns, "test", &q(1));
        assert_eq!(m0.len(), 3);
        assert_eq!(m1.len(), 3);
        assert!(m0.iter().all(|m| groups::is_assigned(&m.stream, 0, 2)));
        assert!(m1.iter().all(|m| groups::is_assigned(&m.stream, 1, 2)));
    }

    #[test]
    fn streams_and_categories() {
        let s = fixture();
        let ns = s.namespace("n").unwrap();
        let names = |v: Vec<StreamInfo>| v.into_iter().map(|i| i.stream).collect::<Vec<_>>();
        assert_eq!(
            names(list_streams(ns, "ACC", "", 100, false)),
            vec!["account-1", "account-2", "account-3"]
        );
        assert_eq!(
            names(list_streams(ns, "", "account-2", 100, false)),
            vec!["account-3", "order-1"]
        );
        assert_eq!(
            names(list_streams(ns, "", "", 2, false)),
            vec!["account-1", "account-2"]
        );
        assert_eq!(list_streams(ns, "account-1", "", 1, false)[0].version, 1);
        assert_eq!(
            list_categories(ns, false),
            vec![("account".to_owned(), 3, 4), ("order".to_owned(), 1, 1)]
        );
    }

    #[test]
    fn pebble_rules() {
        let mut s = fixture();
        write(&mut s, "account:command-1", "Do", None);
        let ns = s.namespace("n").unwrap();
        let q = StreamQuery {
            position: 1,
            global_position: Some(1),
            batch_size: 1000,
            both: true,
        };
        assert_eq!(gps(&stream_get(ns, "account-1", q)), vec![3]);
        let q = CategoryQuery {
            position: 1,
            batch_size: 1000,
            correlation: Some("workflow-77".to_owned()),
            group: None,
            correlation_by_category: true,
            scan_limit: false,
        };
        // category("workflow-1") == category("workflow") == "workflow"; "Workflow-2+x" differs.
        assert_eq!(gps(&category_get(ns, "account", &q)), vec![1, 3]);
        let names = |v: Vec<StreamInfo>| v.into_iter().map(|i| i.stream).collect::<Vec<_>>();
        assert!(list_streams(ns, "ACC", "", 100, true).is_empty());
        assert_eq!(
            names(list_streams(ns, "order", "", 100, true)),
            vec!["order-1"]
        );
        assert_eq!(
            list_categories(ns, true)[0],
            ("account".to_owned(), 3, 5),
            "account:command's message counted under account"
        );
        assert_eq!(
            list_categories(ns, true)[1],
            ("account:command".to_owned(), 1, 1)
        );
    }
}
