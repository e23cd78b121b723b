//! A JSON decoder that accepts and rejects what Go's `encoding/json` does, with its error
//! texts (they reach clients in `details.error` of `Malformed JSON request`).
//!
//! Go specifics kept here: numbers are parsed to the nearest `f64` (overflow is an
//! "cannot unmarshal number" error, reported only if the text is otherwise valid), invalid
//! UTF-8 and lone surrogate escapes become U+FFFD, duplicate keys keep the last value.
//! One difference: nesting is limited to 1000 levels (Go allows 10000) to keep the
//! recursion within a thread's stack.

use std::collections::BTreeMap;

use super::Json;

const MAX_DEPTH: usize = 1000;
const EOF: &str = "unexpected end of JSON input";

/// Parses a whole document.
pub(super) fn parse(bytes: &[u8]) -> Result<Json, String> {
    let mut p = Parser {
        bytes,
        at: 0,
        depth: 0,
        range_error: None,
    };
    p.skip_ws();
    let value = p.value()?;
    p.skip_ws();
    if let Some(b) = p.peek() {
        return Err(format!(
            "invalid character {} after top-level value",
            quote_char(b)
        ));
    }
    match p.range_error {
        Some(e) => Err(e),
        None => Ok(value),
    }
}

/// Go's `quoteChar`: the byte as a rune, quoted with single quotes.
fn quote_char(b: u8) -> String {
    match b {
        b'\'' => "'\\''".to_owned(),
        b'"' => "'\"'".to_owned(),
        b'\n' => "'\\n'".to_owned(),
        b'\r' => "'\\r'".to_owned(),
        b'\t' => "'\\t'".to_owned(),
        0x07 => "'\\a'".to_owned(),
        0x08 => "'\\b'".to_owned(),
        0x0c => "'\\f'".to_owned(),
        0x0b => "'\\v'".to_owned(),
        b'\\' => "'\\\\'".to_owned(),
        b if b < 0x20 || b == 0x7f => format!("'\\x{b:02x}'"),
        b if b < 0x80 => format!("'{}'", b as char),
        b if b <= 0xa0 || b == 0xad => format!("'\\u{b:04x}'"),
        b => format!("'{}'", char::from(b)),
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
    depth: usize,
    /// The first number out of `f64` range; Go reports it only after a valid scan.
    range_error: Option<String>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Result<u8, String> {
        let b = self.peek().ok_or_else(|| EOF.to_owned())?;
        self.at += 1;
        Ok(b)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        match self.peek() {
            None => Err(EOF.to_owned()),
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(Json::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b) => Err(format!(
                "invalid character {} looking for beginning of value",
                quote_char(b)
            )),
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("exceeded max depth".to_owned());
        }
        self.at += 1;
        self.skip_ws();
        Ok(())
    }

    fn object(&mut self) -> Result<Json, String> {
        self.enter()?;
        let mut map = BTreeMap::new();
        if self.peek() == Some(b'}') {
            self.at += 1;
            self.depth -= 1;
            return Ok(Json::Object(map));
        }
        loop {
            match self.peek() {
                None => return Err(EOF.to_owned()),
                Some(b'"') => {}
                Some(b) => {
                    return Err(format!(
                        "invalid character {} looking for beginning of object key string",
                        quote_char(b)
                    ));
                }
            }
            let key = self.string()?;
            self.skip_ws();
            match self.next()? {
                b':' => {}
                b => {
                    return Err(format!(
                        "invalid character {} after object key",
                        quote_char(b)
                    ));
                }
            }
            self.skip_ws();
            let value = self.value()?;
            map.insert(key, value);
            self.skip_ws();
            match self.next()? {
                b',' => self.skip_ws(),
                b'}' => break,
                b => {
                    return Err(format!(
                        "invalid character {} after object key:value pair",
                        quote_char(b)
                    ));
                }
            }
        }
        self.depth -= 1;
        Ok(Json::Object(map))
    }

    fn array(&mut self) -> Result<Json, String> {
        self.enter()?;
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.at += 1;
            self.depth -= 1;
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_ws();
            match self.next()? {
                b',' => self.skip_ws(),
                b']' => break,
                b => {
                    return Err(format!(
                        "invalid character {} after array element",
                        quote_char(b)
                    ));
                }
            }
        }
        self.depth -= 1;
        Ok(Json::Array(items))
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        self.at += 1;
        for expected in word.bytes().skip(1) {
            let b = self.next()?;
            if b != expected {
                return Err(format!(
                    "invalid character {} in literal {word} (expecting '{}')",
                    quote_char(b),
                    expected as char
                ));
            }
        }
        Ok(value)
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            None => return Err(EOF.to_owned()),
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            Some(b) => {
                return Err(format!(
                    "invalid character {} in numeric literal",
                    quote_char(b)
                ));
            }
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(match self.peek() {
                    None => EOF.to_owned(),
                    Some(b) => format!(
                        "invalid character {} after decimal point in numeric literal",
                        quote_char(b)
                    ),
                });
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(match self.peek() {
                    None => EOF.to_owned(),
                    Some(b) => format!(
                        "invalid character {} in exponent of numeric literal",
                        quote_char(b)
                    ),
                });
            }
        }
        let text = std::str::from_utf8(&self.bytes[start..self.at]).unwrap_or("0");
        // Rust's parser rounds correctly, like Go's `strconv.ParseFloat`.
        let value: f64 = text.parse().unwrap_or(f64::NAN);
        if !value.is_finite() && self.range_error.is_none() {
            self.range_error = Some(format!(
                "json: cannot unmarshal number {text} into Go value of type float64"
            ));
        }
        Ok(Json::Number(value))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let mut v = 0;
        for _ in 0..4 {
            let b = self.next()?;
            let d = (b as char).to_digit(16).ok_or_else(|| {
                format!(
                    "invalid character {} in \\u hexadecimal character escape",
                    quote_char(b)
                )
            })?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String, String> {
        self.at += 1; // opening quote
        let mut out: Vec<u8> = Vec::new();
        let mut pending_high: Option<u32> = None;
        let push_char = |out: &mut Vec<u8>, c: char| {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        };
        loop {
            let b = self.next()?;
            if b != b'\\' {
                if let Some(_high) = pending_high.take() {
                    push_char(&mut out, char::REPLACEMENT_CHARACTER);
                }
            }
            match b {
                b'"' => break,
                b'\\' => {
                    let e = self.next()?;
                    let simple = match e {
                        b'"' => Some('"'),
                        b'\\' => Some('\\'),
                        b'/' => Some('/'),
                        b'b' => Some('\u{8}'),
                        b'f' => Some('\u{c}'),
                        b'n' => Some('\n'),
                        b'r' => Some('\r'),
                        b't' => Some('\t'),
                        b'u' => None,
                        other => {
                            return Err(format!(
                                "invalid character {} in string escape code",
                                quote_char(other)
                            ));
                        }
                    };
                    if let Some(c) = simple {
                        if pending_high.take().is_some() {
                            push_char(&mut out, char::REPLACEMENT_CHARACTER);
                        }
                        push_char(&mut out, c);
                        continue;
                    }
                    let unit = self.hex4()?;
                    match (pending_high.take(), unit) {
                        (Some(high), 0xDC00..=0xDFFF) => {
                            let c = 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00);
                            push_char(
                                &mut out,
                                char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER),
                            );
                        }
                        (high, 0xD800..=0xDBFF) => {
                            if high.is_some() {
                                push_char(&mut out, char::REPLACEMENT_CHARACTER);
                            }
                            pending_high = Some(unit);
                        }
                        (high, _) => {
                            if high.is_some() {
                                push_char(&mut out, char::REPLACEMENT_CHARACTER);
                            }
                            push_char(
                                &mut out,
                                char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER),
                            );
                        }
                    }
                }
                b if b < 0x20 => {
                    return Err(format!(
                        "invalid character {} in string literal",
                        quote_char(b)
                    ));
                }
                b => out.push(b),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text.as_bytes()).unwrap_err()
    }

    fn ok(text: &str) -> Json {
        parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn parses_values() {
        assert_eq!(
            ok(" [1, -2.5e3, true, false, null, \"x\"] "),
            Json::Array(vec![
                Json::Number(1.0),
                Json::Number(-2500.0),
                Json::Bool(true),
                Json::Bool(false),
                Json::Null,
                Json::str("x"),
            ])
        );
        assert_eq!(ok(r#"{"a":{},"b":[]}"#).encode(), r#"{"a":{},"b":[]}"#);
        assert_eq!(ok("123456789012345678"), Json::Number(123456789012345680.0));
    }

    #[test]
    fn strings_decode_escapes_and_repair_bad_text() {
        assert_eq!(
            ok(r#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#),
            Json::str("a\"\\/\u{8}\u{c}\n\r\té😀")
        );
        assert_eq!(ok(r#""\ud800x""#), Json::str("\u{fffd}x"));
        assert_eq!(ok(r#""\udc00""#), Json::str("\u{fffd}"));
        assert_eq!(ok(r#""\ud800\ud800\udc00""#), Json::str("\u{fffd}𐀀"));
        assert_eq!(parse(b"\"a\xffb\"").unwrap(), Json::str("a\u{fffd}b"));
    }

    #[test]
    fn syntax_errors_use_go_text() {
        assert_eq!(err(""), "unexpected end of JSON input");
        assert_eq!(err("  "), "unexpected end of JSON input");
        assert_eq!(err("[1,"), "unexpected end of JSON input");
        assert_eq!(err(r#"{"a""#), "unexpected end of JSON input");
        assert_eq!(err("[1] x"), "invalid character 'x' after top-level value");
        assert_eq!(
            err("nope"),
            "invalid character 'o' in literal null (expecting 'u')"
        );
        assert_eq!(
            err("[tru]"),
            "invalid character ']' in literal true (expecting 'e')"
        );
        assert_eq!(
            err("x"),
            "invalid character 'x' looking for beginning of value"
        );
        assert_eq!(
            err("[1,]"),
            "invalid character ']' looking for beginning of value"
        );
        assert_eq!(err("[1 2]"), "invalid character '2' after array element");
        assert_eq!(
            err("{1:2}"),
            "invalid character '1' looking for beginning of object key string"
        );
        assert_eq!(err(r#"{"a" 1}"#), "invalid character '1' after object key");
        assert_eq!(
            err(r#"{"a":1 "b":2}"#),
            "invalid character '\"' after object key:value pair"
        );
        assert_eq!(err("[01]"), "invalid character '1' after array element");
        assert_eq!(err("[-x]"), "invalid character 'x' in numeric literal");
        assert_eq!(
            err("[1.x]"),
            "invalid character 'x' after decimal point in numeric literal"
        );
        assert_eq!(
            err("[1ex]"),
            "invalid character 'x' in exponent of numeric literal"
        );
        assert_eq!(err("\"a\nb\""), "invalid character '\\n' in string literal");
        assert_eq!(
            err(r#""\x""#),
            "invalid character 'x' in string escape code"
        );
        assert_eq!(
            err(r#""\u12g4""#),
            "invalid character 'g' in \\u hexadecimal character escape"
        );
        assert_eq!(
            err("\u{feff}[]"),
            "invalid character 'ï' looking for beginning of value"
        );
    }

    #[test]
    fn number_overflow_is_reported_after_the_scan() {
        assert_eq!(
            err("[1e400]"),
            "json: cannot unmarshal number 1e400 into Go value of type float64"
        );
        assert_eq!(
            err("[1e400, x]"),
            "invalid character 'x' looking for beginning of value"
        );
        assert_eq!(ok("1e-400"), Json::Number(0.0));
    }

    #[test]
    fn nesting_is_limited() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(err(&deep), "exceeded max depth");
        let fine = "[".repeat(200) + &"]".repeat(200);
        assert!(parse(fine.as_bytes()).is_ok());
    }
}
