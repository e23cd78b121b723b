//! Namespace tokens: `ns_<base64url(namespace)>_<64 hex>`.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::error::{Error, Result};

/// Go's `base64.RawURLEncoding`: no padding, and (not being `Strict`) lenient about the
/// unused bits of the last symbol.
const RAW_URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// An EventoDB namespace token, `ns_<base64url(namespace)>_<64 hex characters>`.
///
/// Parsing follows the server's rules (`auth.ParseToken`) and reports its messages. The
/// token is a secret: [`Debug`](fmt::Debug) and [`Display`](fmt::Display) show only the
/// namespace, and the client never logs it. Use [`Token::expose_secret`] to get the string.
///
/// # Examples
/// ```
/// use eventodb_kit::client::Token;
/// let token = Token::parse(&format!("ns_ZGVmYXVsdA_{}", "0".repeat(64)))?;
/// assert_eq!(token.namespace(), "default");
/// assert!(!format!("{token:?}").contains("0000"));
/// # Ok::<(), eventodb_kit::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Token {
    secret: String,
    namespace: String,
}

impl Token {
    /// Parses a token.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] with the server's message, e.g. `invalid token format:
    /// missing 'ns_' prefix`. The message never contains the token.
    pub fn parse(token: &str) -> Result<Token> {
        let invalid = |why: String| Error::InvalidToken(format!("invalid token format: {why}"));
        let rest = token
            .strip_prefix("ns_")
            .ok_or_else(|| invalid("missing 'ns_' prefix".into()))?;
        let parts: Vec<&str> = rest.split('_').collect();
        let [encoded, random] = parts[..] else {
            return Err(invalid(format!(
                "expected 2 parts after prefix, got {}",
                parts.len()
            )));
        };
        if random.len() != 64 {
            return Err(invalid(format!(
                "random part must be 64 hex characters, got {}",
                random.len()
            )));
        }
        if let Some(bad) = random.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(invalid(format!(
                "random part is not valid hexadecimal: encoding/hex: invalid byte: U+{:04X} {bad:?}",
                bad as u32
            )));
        }
        let bytes = RAW_URL.decode(encoded).map_err(|e| {
            let at = match e {
                base64::DecodeError::InvalidByte(at, _)
                | base64::DecodeError::InvalidLastSymbol(at, _) => at,
                _ => encoded.len(),
            };
            invalid(format!(
                "namespace part is not valid base64url: illegal base64 data at input byte {at}"
            ))
        })?;
        if bytes.is_empty() {
            return Err(invalid("namespace is empty".into()));
        }
        let namespace =
            String::from_utf8(bytes).map_err(|_| invalid("namespace is not valid UTF-8".into()))?;
        Ok(Token {
            secret: token.to_owned(),
            namespace,
        })
    }

    /// The namespace the token is for.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The token string itself. Handle with care: it authenticates as the namespace.
    pub fn expose_secret(&self) -> &str {
        &self.secret
    }

    /// Builds a well-formed token for `namespace` with the given 64-hex suffix. Useful for
    /// test servers, where any suffix is accepted (test mode), or for `ns.create` with a
    /// token of your choosing.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] when the result would not parse, e.g. when the namespace's
    /// base64url form contains `_` (such a namespace can never authenticate).
    pub fn from_parts(namespace: &str, random_hex: &str) -> Result<Token> {
        Token::parse(&format!("ns_{}_{random_hex}", RAW_URL.encode(namespace)))
    }

    /// Builds a token for `namespace` with a fresh random suffix, as the server does.
    ///
    /// # Errors
    /// As [`Token::from_parts`].
    pub fn generate(namespace: &str) -> Result<Token> {
        let random: [u8; 32] = rand::random();
        Token::from_parts(namespace, &hex::encode(random))
    }
}

impl FromStr for Token {
    type Err = Error;

    fn from_str(s: &str) -> Result<Token> {
        Token::parse(s)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("namespace", &self.namespace)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token for namespace {:?} [redacted]", self.namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zeros() -> String {
        "0".repeat(64)
    }

    fn message(token: &str) -> String {
        match Token::parse(token) {
            Err(Error::InvalidToken(m)) => m,
            other => panic!("expected InvalidToken, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_well_known_test_token() {
        let t = Token::parse(&format!("ns_ZGVmYXVsdA_{}", zeros())).unwrap();
        assert_eq!(t.namespace(), "default");
        assert_eq!(t.expose_secret(), format!("ns_ZGVmYXVsdA_{}", zeros()));
        let upper = Token::parse(&format!("ns_ZGVmYXVsdA_{}", "AbCdEf01".repeat(8))).unwrap();
        assert_eq!(upper.namespace(), "default");
    }

    #[test]
    fn reports_the_servers_messages() {
        assert_eq!(
            message("invalid-token"),
            "invalid token format: missing 'ns_' prefix"
        );
        assert_eq!(
            message(&format!("ns_YWI__{}", zeros())),
            "invalid token format: expected 2 parts after prefix, got 3"
        );
        assert_eq!(
            message("ns_ZGVmYXVsdA"),
            "invalid token format: expected 2 parts after prefix, got 1"
        );
        assert_eq!(
            message("ns_ZGVmYXVsdA_abc"),
            "invalid token format: random part must be 64 hex characters, got 3"
        );
        assert!(
            message(&format!("ns_ZGVmYXVsdA_g{}", "0".repeat(63)))
                .starts_with("invalid token format: random part is not valid hexadecimal")
        );
        assert!(
            message(&format!("ns_ZGV*YXVsdA_{}", zeros()))
                .starts_with("invalid token format: namespace part is not valid base64url")
        );
        assert_eq!(
            message(&format!("ns__{}", zeros())),
            "invalid token format: namespace is empty"
        );
    }

    #[test]
    fn never_shows_the_secret() {
        let secret = "ab12".repeat(16);
        let t = Token::parse(&format!("ns_ZGVmYXVsdA_{secret}")).unwrap();
        for shown in [format!("{t:?}"), t.to_string()] {
            assert!(!shown.contains(&secret), "{shown}");
            assert!(!shown.contains("ZGVmYXVsdA"), "{shown}");
            assert!(shown.contains("default"), "{shown}");
        }
        let err = Token::parse(&format!("ns_ZGVmYXVsdA_{secret}x")).unwrap_err();
        assert!(!err.to_string().contains(&secret));
    }

    #[test]
    fn builds_tokens_that_parse_back() {
        let t = Token::generate("orders-eu").unwrap();
        assert_eq!(t.namespace(), "orders-eu");
        assert_eq!(Token::parse(t.expose_secret()).unwrap(), t);
        // base64url of "ab?" contains '_': such a namespace can never authenticate.
        assert!(Token::generate("ab?").is_err());
        // Go's RawURLEncoding tolerates non-zero trailing bits.
        assert_eq!(
            Token::parse(&format!("ns_ZGVmYXVsdB_{}", zeros()))
                .unwrap()
                .namespace(),
            "default"
        );
    }
}
