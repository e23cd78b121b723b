//! Which messages a correlation filter can let through, whatever the server's backend.
//!
//! `category.get`'s `correlation` is matched against `metadata.correlationStreamName` by a
//! rule that differs per backend (protocol §9): SQLite `LIKE '<c>-%'` (ASCII
//! case-insensitive, `%` and `_` as wildcards), PostgreSQL `category(name) = c`, Pebble
//! `category(name) = category(c)`. The runtime moves a consumer past messages its filter
//! cannot match (see `runtime::others`), so it needs the rule that is safe on all three:
//! "cannot match" must hold under every one of them, and whatever is left is asked of the
//! server.

use serde_json::Value;

/// False only when no backend's rule lets a message with `metadata` through `correlation`.
///
/// A message without metadata, or without a `correlationStreamName`, never matches. A name
/// may match when it matches SQLite's pattern `<correlation>-%`, or its category (the part
/// before its first `-`) equals the filter (PostgreSQL) or the filter's category (Pebble).
/// An empty filter (no filter on SQLite and Pebble) and a name that is not a string (SQLite
/// compares its JSON text) may match anything.
pub(crate) fn may_match(correlation: &str, metadata: Option<&Value>) -> bool {
    if correlation.is_empty() {
        return true;
    }
    match metadata.and_then(|metadata| metadata.get("correlationStreamName")) {
        None | Some(Value::Null) => false,
        Some(Value::String(name)) => {
            like(&format!("{correlation}-%"), name)
                || category(name) == correlation
                || category(name) == category(correlation)
        }
        Some(_) => true,
    }
}

/// The category of a stream name: the part before the first `-` (Message DB's rule).
fn category(stream: &str) -> &str {
    stream
        .split_once('-')
        .map_or(stream, |(category, _)| category)
}

/// SQLite's `LIKE` without `ESCAPE`: `%` any run of characters, `_` any one character,
/// letters compared ignoring ASCII case.
fn like(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where the last `%` was, and the text position it matches up to so far.
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('%') => {
                resume = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '_' || c.eq_ignore_ascii_case(&text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match resume {
                // Let the last `%` take one more character, and try again after it.
                Some((at, upto)) => {
                    resume = Some((at, upto + 1));
                    p = at + 1;
                    t = upto + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '%')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn named(name: &str) -> Value {
        json!({ "correlationStreamName": name })
    }

    #[test]
    fn names_of_the_filters_category_may_match() {
        for name in ["checkout-1", "CheckOut-1", "checkout-1-2", "checkout-"] {
            assert!(may_match("checkout", Some(&named(name))), "{name}");
        }
        // SQLite: `checkout-1-%` matches `checkout-1-x`; Pebble compares categories.
        assert!(may_match("checkout-1", Some(&named("checkout-1-x"))));
        assert!(may_match("checkout-1", Some(&named("checkout-2"))));
        // PostgreSQL: a name that is only a category matches `c`.
        assert!(may_match("checkout", Some(&named("checkout"))));
    }

    #[test]
    fn names_of_another_category_never_match() {
        for name in [
            "checkouts-1",
            "check-1",
            "refund-checkout-1",
            "",
            "-checkout",
        ] {
            assert!(!may_match("checkout", Some(&named(name))), "{name}");
        }
        assert!(!may_match("checkout", None));
        assert!(!may_match("checkout", Some(&json!({}))));
        assert!(!may_match(
            "checkout",
            Some(&json!({ "correlationStreamName": null }))
        ));
        assert!(!may_match("checkout", Some(&json!("not an object"))));
    }

    #[test]
    fn wildcards_follow_sqlites_like() {
        assert!(may_match("check%", Some(&named("checkouts-1"))));
        assert!(may_match("user_account", Some(&named("userXaccount-1"))));
        assert!(may_match("user_account", Some(&named("user_account-1"))));
        assert!(!may_match("user_account", Some(&named("order-1"))));
        assert!(!may_match("check%", Some(&named("order-1"))));
    }

    #[test]
    fn an_empty_filter_and_odd_names_are_left_to_the_server() {
        assert!(may_match("", None));
        assert!(may_match(
            "checkout",
            Some(&json!({ "correlationStreamName": 7 }))
        ));
    }

    #[test]
    fn like_matches_as_sqlite_does() {
        for (pattern, text) in [
            ("a%", "a"),
            ("a%", "abc"),
            ("%c", "abc"),
            ("a%c-%", "abxc-1"),
            ("a_c", "aBc"),
            ("A-%", "a-"),
            ("%%", ""),
            ("a%b%c", "aXbYbZc"),
            ("é_", "éx"),
        ] {
            assert!(like(pattern, text), "{pattern} {text}");
        }
        for (pattern, text) in [
            ("a_c", "ac"),
            ("a-%", "a"),
            ("a%c", "abd"),
            ("abc", "abcd"),
            ("_", ""),
            ("a%b%c", "aXbY"),
        ] {
            assert!(!like(pattern, text), "{pattern} {text}");
        }
    }
}
