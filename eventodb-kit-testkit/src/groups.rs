//! Stream-name parsing and the two consumer-group partition functions (protocol §3.5, §4, §6.5).

use md5::{Digest, Md5};

/// The category: text before the first `-`, or the whole name.
pub(crate) fn category(stream: &str) -> &str {
    stream.split_once('-').map_or(stream, |(c, _)| c)
}

/// The cardinal id: after the first `-`, up to the first `+`; `""` when there is no `-`.
pub(crate) fn cardinal_id(stream: &str) -> &str {
    match stream.split_once('-') {
        None => "",
        Some((_, id)) => id.split_once('+').map_or(id, |(c, _)| c),
    }
}

/// The md5 rule used by `category.get` and SSE catch-up.
pub(crate) fn is_assigned(stream: &str, member: i64, size: i64) -> bool {
    if size <= 0 || member < 0 || member >= size {
        return false;
    }
    let cardinal = cardinal_id(stream);
    if cardinal.is_empty() {
        return false;
    }
    let digest = Md5::digest(cardinal.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let mut h = i64::from_be_bytes(first);
    if h < 0 {
        h = h.wrapping_neg();
    }
    // h is MinInt64 only with probability 2^-64; Go's % then gives a negative result.
    h.wrapping_rem(size) == member
}

/// The polynomial hash the production server uses for live category pokes.
pub(crate) fn live_poke_matches(stream: &str, member: i64, size: i64) -> bool {
    let mut h: u64 = 0;
    for ch in stream.chars() {
        h = h.wrapping_mul(31).wrapping_add(u64::from(u32::from(ch)));
    }
    // Go converts with uint64(size) and compares to uint64(member).
    let size = size as u64;
    if size == 0 {
        return false;
    }
    h % size == member as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5_member(stream: &str, size: i64) -> Option<i64> {
        let found: Vec<i64> = (0..size)
            .filter(|m| is_assigned(stream, *m, size))
            .collect();
        assert!(found.len() <= 1, "{stream} assigned to several members");
        found.first().copied()
    }

    fn live_member(stream: &str, size: i64) -> Option<i64> {
        (0..size).find(|m| live_poke_matches(stream, *m, size))
    }

    #[test]
    fn parses_categories_and_cardinal_ids() {
        assert_eq!(category("account-123+x"), "account");
        assert_eq!(category("account"), "account");
        assert_eq!(category("-abc"), "");
        assert_eq!(category("account:command-123"), "account:command");
        assert_eq!(cardinal_id("account-123+retry"), "123");
        assert_eq!(cardinal_id("user-42+x+y"), "42");
        assert_eq!(cardinal_id("a-b-c"), "b-c");
        assert_eq!(cardinal_id("account"), "");
        assert_eq!(cardinal_id("account-"), "");
        assert_eq!(cardinal_id("account-+x"), "");
    }

    #[test]
    fn worked_examples_of_protocol_3_5() {
        let table: &[(&str, i64, Option<i64>, Option<i64>)] = &[
            ("account-123", 2, Some(1), Some(0)),
            ("account-123+retry", 2, Some(1), Some(1)),
            ("account-123", 4, Some(3), Some(2)),
            ("account-456", 3, Some(1), Some(2)),
            ("order-abc", 5, Some(4), Some(4)),
            ("user-42+x+y", 7, Some(4), Some(1)),
            ("test-1", 2, Some(0), Some(0)),
            ("test-2", 2, Some(1), Some(1)),
            ("test-3", 2, Some(0), Some(0)),
            ("test-4", 2, Some(1), Some(1)),
            ("account:command-123", 4, Some(3), Some(3)),
            (
                "account-550e8400-e29b-41d4-a716-446655440000",
                4,
                Some(0),
                Some(1),
            ),
            ("café-ü", 3, Some(2), Some(0)),
            ("account", 2, None, Some(1)),
            ("account-", 2, None, Some(0)),
        ];
        for (stream, size, read, live) in table {
            assert_eq!(md5_member(stream, *size), *read, "md5 {stream}/{size}");
            assert_eq!(live_member(stream, *size), *live, "live {stream}/{size}");
        }
    }

    #[test]
    fn all_recorded_consumer_group_vectors() {
        let raw = include_str!("../tests/vectors/consumer-groups.json");
        let file: serde_json::Value = serde_json::from_str(raw).expect("vector file");
        let vectors = file["vectors"].as_array().expect("vectors");
        assert_eq!(vectors.len(), 469);
        for v in vectors {
            let stream = v["stream"].as_str().expect("stream");
            let size = v["size"].as_i64().expect("size");
            let member = v["member"].as_i64();
            assert_eq!(md5_member(stream, size), member, "{stream}/{size}");
        }
    }

    #[test]
    fn invalid_groups_match_nothing() {
        assert!(!is_assigned("account-123", -1, 2));
        assert!(!is_assigned("account-123", 2, 2));
        assert!(!is_assigned("account-123", 0, 0));
        assert!(!live_poke_matches("account-123", -1, 2));
    }
}
