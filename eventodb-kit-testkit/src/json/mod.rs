//! JSON values as the Go server sees them, and Go `encoding/json` style output.
//!
//! The real server decodes every request into Go `interface{}` values: every number becomes a
//! `float64`, objects become maps (so keys come back sorted and duplicate keys collapse, last
//! wins). It encodes with `json.Encoder`, which escapes `<`, `>`, `&`, U+2028 and U+2029 and
//! formats floats in the shortest form, with exponents only below 1e-6 and from 1e21 on.

mod parse;

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A JSON value after Go decoding: numbers are `f64`, objects are sorted maps.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

/// A map with sorted keys, as Go's encoder writes it.
pub(crate) type Object = BTreeMap<String, Json>;

impl Json {
    /// Parses a request body like Go's `json.Unmarshal` into `interface{}`: numbers go
    /// through `f64`, the error text is Go's.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Json, String> {
        parse::parse(bytes)
    }

    /// A string value.
    pub(crate) fn str(s: impl Into<String>) -> Json {
        Json::String(s.into())
    }

    /// An integer value (stored as `f64`, like everything numeric here).
    pub(crate) fn int(n: i64) -> Json {
        Json::Number(n as f64)
    }

    /// Encodes like Go's `json.Encoder.Encode` without the trailing newline.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out);
        out
    }

    fn write_to(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(true) => out.push_str("true"),
            Json::Bool(false) => out.push_str("false"),
            Json::Number(n) => write_number(*n, out),
            Json::String(s) => write_string(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_to(out);
                }
                out.push(']');
            }
            Json::Object(map) => {
                out.push('{');
                for (i, (key, value)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(key, out);
                    out.push(':');
                    value.write_to(out);
                }
                out.push('}');
            }
        }
    }
}

/// Builds an object from key/value pairs.
pub(crate) fn object<const N: usize>(pairs: [(&str, Json); N]) -> Json {
    Json::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Go `strconv.FormatFloat(f, 'f' or 'e', -1, 64)` as `encoding/json` uses it.
fn write_number(n: f64, out: &mut String) {
    if !n.is_finite() {
        // Cannot come from JSON input; Go would fail to encode. Keep the output valid JSON.
        out.push_str("null");
        return;
    }
    let abs = n.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust gives "1e21", "1.5e-7"; Go gives "1e+21", "1.5e-07" cleaned to "1.5e-7".
        let s = format!("{n:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        out.push_str(mantissa);
        out.push('e');
        if let Some(neg) = exp.strip_prefix('-') {
            out.push('-');
            out.push_str(neg);
        } else {
            out.push('+');
            if exp.len() < 2 {
                out.push('0');
            }
            out.push_str(exp);
        }
    } else {
        let _ = write!(out, "{n}");
    }
}

/// Go's string escaping with HTML escaping on.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Encodes a string as a JSON string literal (Go style).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::new();
    write_string(s, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(text: &str) -> String {
        Json::parse(text.as_bytes()).expect("valid json").encode()
    }

    #[test]
    fn every_recorded_vector_round_trips_exactly() {
        let raw = include_str!("../../tests/vectors/json-roundtrip.json");
        let file: serde_json::Value = serde_json::from_str(raw).expect("vector file");
        let vectors = file["vectors"].as_array().expect("vectors");
        assert!(vectors.len() >= 28);
        for v in vectors {
            let sent = v["sent"].as_str().expect("sent");
            let returned = v["returned"].as_str().expect("returned");
            assert_eq!(roundtrip(sent), returned, "sent {sent}");
        }
    }

    #[test]
    fn numbers_use_go_formatting() {
        assert_eq!(
            roundtrip("[1e-7, 1.5e-7, 1e21, 1.5e300, -2.5e-10, 0.000001]"),
            "[1e-7,1.5e-7,1e+21,1.5e+300,-2.5e-10,0.000001]"
        );
        assert_eq!(
            roundtrip("[100, -0.0, 0.1, 123456789.125]"),
            "[100,-0,0.1,123456789.125]"
        );
    }

    #[test]
    fn strings_escape_like_go() {
        assert_eq!(
            roundtrip(r#"["a\"b\\c\n\u0001\u2029\b\f"]"#),
            r#"["a\"b\\c\n\u0001\u2029\b\f"]"#
        );
    }

    #[test]
    fn duplicate_keys_keep_the_last_value() {
        assert_eq!(roundtrip(r#"{"a":1,"a":2}"#), r#"{"a":2}"#);
    }
}
