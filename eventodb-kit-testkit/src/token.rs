//! Namespace tokens: `ns_<base64url(namespace)>_<64 hex>` (protocol §5.1).

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Parses a token the way the server does and returns the namespace it names.
///
/// The error text is the server's (`invalid token format: ...`).
pub(crate) fn parse_token(token: &str) -> Result<String, String> {
    let Some(rest) = token.strip_prefix("ns_") else {
        return Err("invalid token format: missing 'ns_' prefix".to_owned());
    };
    let parts: Vec<&str> = rest.split('_').collect();
    if parts.len() != 2 {
        return Err(format!(
            "invalid token format: expected 2 parts after prefix, got {}",
            parts.len()
        ));
    }
    let (encoded, random) = (parts[0], parts[1]);
    if random.len() != 64 {
        return Err(format!(
            "invalid token format: random part must be 64 hex characters, got {}",
            random.len()
        ));
    }
    if let Some(bad) = random.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "invalid token format: random part is not valid hexadecimal: encoding/hex: invalid byte: {}",
            go_rune(bad)
        ));
    }
    let bytes = decode_base64url(encoded).map_err(|at| {
        format!(
            "invalid token format: namespace part is not valid base64url: illegal base64 data at input byte {at}"
        )
    })?;
    let namespace = String::from_utf8_lossy(&bytes).into_owned();
    if namespace.is_empty() {
        return Err("invalid token format: namespace is empty".to_owned());
    }
    Ok(namespace)
}

/// Go's `%#U` for the first offending byte of a hex string.
fn go_rune(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{c}'", c as u32)
    }
}

/// Go `base64.RawURLEncoding.DecodeString`: returns the offset of the first bad byte.
fn decode_base64url(s: &str) -> Result<Vec<u8>, usize> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut in_quantum = 0;
    let mut last_start = 0;
    for (i, b) in s.bytes().enumerate() {
        if b == b'\r' || b == b'\n' {
            continue;
        }
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return Err(i),
        };
        if in_quantum == 0 {
            last_start = i;
        }
        in_quantum = (in_quantum + 1) % 4;
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if in_quantum == 1 {
        return Err(last_start);
    }
    Ok(out)
}

/// `sha256_hex(token)`, the value stored per namespace.
pub(crate) fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh random token for a namespace, as `auth.GenerateToken` makes one.
pub(crate) fn generate_token(namespace: &str) -> String {
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    format!(
        "ns_{}_{}",
        encode_base64url(namespace.as_bytes()),
        hex::encode(random)
    )
}

fn encode_base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn parses_the_well_known_test_token() {
        let token = format!("ns_ZGVmYXVsdA_{ZEROS}");
        assert_eq!(parse_token(&token).unwrap(), "default");
        assert!(hash_token(&token).starts_with("6fefedfc989ca8be"));
        assert!(hash_token(&token).ends_with("11fb52"));
    }

    #[test]
    fn generated_tokens_parse_back() {
        let token = generate_token("tenant-a");
        assert_eq!(parse_token(&token).unwrap(), "tenant-a");
    }

    #[test]
    fn parse_errors_use_the_server_text() {
        assert_eq!(
            parse_token("invalid-token").unwrap_err(),
            "invalid token format: missing 'ns_' prefix"
        );
        assert_eq!(
            parse_token(&format!("ns_YWI__{ZEROS}")).unwrap_err(),
            "invalid token format: expected 2 parts after prefix, got 3"
        );
        assert_eq!(
            parse_token("ns_ZGVmYXVsdA_abc").unwrap_err(),
            "invalid token format: random part must be 64 hex characters, got 3"
        );
        let bad_hex = format!("ns_ZGVmYXVsdA_g{}", &ZEROS[1..]);
        assert_eq!(
            parse_token(&bad_hex).unwrap_err(),
            "invalid token format: random part is not valid hexadecimal: encoding/hex: invalid byte: U+0067 'g'"
        );
        assert_eq!(
            parse_token(&format!("ns_ab!c_{ZEROS}")).unwrap_err(),
            "invalid token format: namespace part is not valid base64url: illegal base64 data at input byte 2"
        );
        assert_eq!(
            parse_token(&format!("ns_abcde_{ZEROS}")).unwrap_err(),
            "invalid token format: namespace part is not valid base64url: illegal base64 data at input byte 4"
        );
        assert_eq!(
            parse_token(&format!("ns__{ZEROS}")).unwrap_err(),
            "invalid token format: namespace is empty"
        );
    }
}
