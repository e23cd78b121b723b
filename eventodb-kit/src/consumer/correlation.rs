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
/// whose category (before its first `-`) differs from the filter's, ignoring ASCII case,
/// matches on no backend: SQLite's pattern needs the name to start with the filter and a
/// `-`, which gives both the same category. Everything else may match: a filter with a
/// wildcard or an empty one (no filter on SQLite and Pebble), and a name that is not a
/// string (SQLite compares its JSON text).
pub(crate) fn may_match(correlation: &str, metadata: Option<&Value>) -> bool {
    if correlation.is_empty() || correlation.contains(['%', '_']) {
        return true;
    }
    match metadata.and_then(|metadata| metadata.get("correlationStreamName")) {
        None | Some(Value::Null) => false,
        Some(Value::String(name)) => category(name).eq_ignore_ascii_case(category(correlation)),
        Some(_) => true,
    }
}

/// The category of a stream name: the part before the first `-` (Message DB's rule).
fn category(stream: &str) -> &str {
    stream
        .split_once('-')
        .map_or(stream, |(category, _)| category)
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
    fn wildcards_empty_filters_and_odd_names_are_left_to_the_server() {
        assert!(may_match("check%", Some(&named("checkouts-1"))));
        assert!(may_match("check_ut", Some(&named("checkout-1"))));
        assert!(may_match("", None));
        assert!(may_match(
            "checkout",
            Some(&json!({ "correlationStreamName": 7 }))
        ));
    }
}
