//! Query-string parsing as fasthttp does it: `+` is a space, `%XX` is decoded, first key wins.

/// The first value of `key`, decoded; `None` when the key is absent.
pub(crate) fn get(query: Option<&str>, key: &str) -> Option<String> {
    let query = query?;
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(k, _)| decode(k) == key)
        .map(|(_, v)| decode(v))
}

/// Percent-decoding with `+` as space; a malformed escape is kept as is.
pub(crate) fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            ) {
                (Some(h), Some(l)) => {
                    out.push((h << 4) | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_fasthttp() {
        let q = Some("stream=account-1%2Bx&token=&all=true&stream=second&a+b=c+d&bad=%zz&end=%4");
        assert_eq!(get(q, "stream").as_deref(), Some("account-1+x"));
        assert_eq!(get(q, "token").as_deref(), Some(""));
        assert_eq!(get(q, "a b").as_deref(), Some("c d"));
        assert_eq!(get(q, "bad").as_deref(), Some("%zz"));
        assert_eq!(get(q, "end").as_deref(), Some("%4"));
        assert_eq!(get(q, "missing"), None);
        assert_eq!(get(None, "x"), None);
        assert_eq!(
            get(Some("s=account-1+x"), "s").as_deref(),
            Some("account-1 x")
        );
    }
}
