//! Rust names from JSON names: type names in UpperCamelCase, field names in snake_case, and
//! keywords made usable.

/// Rust keywords (strict and reserved, 2024 edition).
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Keywords that cannot be raw identifiers.
const NOT_RAW: &[&str] = &["crate", "self", "Self", "super", "_"];

/// Names the generated module defines itself: a schema type with one of these names would
/// clash with them.
pub(crate) const REGISTRY_NAMES: &[&str] = &["AnyEvent", "Events"];

/// Splits a name into lowercase words at `_`, `-`, spaces, other punctuation and case changes.
///
/// Only ASCII letters and digits make words: anything else (`²`, `é`, `€`) could be invalid in an
/// identifier (`char::is_alphanumeric` accepts `²`) or trip rustc's non-ASCII lints, and the JSON
/// name is kept through `#[serde(rename)]` anyway.
fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (index, &ch) in chars.iter().enumerate() {
        if !ch.is_ascii_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        let boundary = ch.is_uppercase()
            && !current.is_empty()
            && index > 0
            && (chars[index - 1].is_lowercase()
                || chars[index - 1].is_ascii_digit()
                || chars.get(index + 1).is_some_and(|next| next.is_lowercase()));
        if boundary {
            words.push(std::mem::take(&mut current));
        }
        current.extend(ch.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// `user_created`, `user-created`, `userCreated` -> `UserCreated`.
pub(crate) fn upper_camel(name: &str) -> String {
    let mut out = String::new();
    for word in words(name) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    if out.starts_with(|ch: char| ch.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    out
}

/// `userId`, `user-id`, `User ID` -> `user_id`.
pub(crate) fn snake(name: &str) -> String {
    let mut out = words(name).join("_");
    if out.starts_with(|ch: char| ch.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Whether `name` is a plain Rust identifier (ASCII, not starting with a digit).
pub(crate) fn is_ident(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_')
        && chars.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        && name != "_"
}

/// Whether `name` is already UpperCamelCase (what an event `title` must be).
pub(crate) fn is_upper_camel(name: &str) -> bool {
    is_ident(name)
        && name.starts_with(|ch: char| ch.is_ascii_uppercase())
        && !name.contains('_')
        && !KEYWORDS.contains(&name)
}

/// The Rust field for a JSON property: the identifier text (`r#type` for keywords) and whether
/// serde needs a `rename` to the original name. `None` when a non-empty name has no character
/// usable in an identifier (`"²"`): there is nothing to name the field after.
pub(crate) fn field_ident(json_name: &str) -> Option<(String, bool)> {
    let mut ident = snake(json_name);
    if ident.is_empty() {
        if !json_name.is_empty() {
            return None;
        }
        ident = "field".to_owned();
    }
    if NOT_RAW.contains(&ident.as_str()) {
        ident.push('_');
        return Some((ident, true));
    }
    let rename = ident != json_name;
    if KEYWORDS.contains(&ident.as_str()) {
        // serde strips `r#`, so a raw identifier keeps the JSON name without a rename.
        return Some((format!("r#{ident}"), rename));
    }
    Some((ident, rename))
}

/// The Rust variant name for an enum value, `Empty` for the empty string; `None` when a
/// non-empty value has no character usable in an identifier.
pub(crate) fn variant_ident(value: &str) -> Option<String> {
    let name = upper_camel(value);
    if name.is_empty() {
        value.is_empty().then(|| "Empty".to_owned())
    } else if KEYWORDS.contains(&name.as_str()) {
        Some(format!("{name}Value"))
    } else {
        Some(name)
    }
}

/// A type name that is a valid identifier: `Self` (the one UpperCamelCase keyword, which
/// cannot be a raw identifier) gets a suffix, as keyword enum variants do. Empty stays empty,
/// for the caller to report.
pub(crate) fn type_name(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("{name}Type")
    } else {
        name.to_owned()
    }
}

/// `USER` style constant name for a category; `None` when it has no character usable in an
/// identifier.
pub(crate) fn shouty(name: &str) -> Option<String> {
    let out = snake(name).to_uppercase();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_and_snake() {
        assert_eq!(upper_camel("user_created"), "UserCreated");
        assert_eq!(upper_camel("level-completed"), "LevelCompleted");
        assert_eq!(upper_camel("HTTPServer"), "HttpServer");
        assert_eq!(upper_camel("2fa"), "V2fa");
        assert_eq!(snake("userId"), "user_id");
        assert_eq!(snake("User ID"), "user_id");
        assert_eq!(snake("ip_address"), "ip_address");
        assert_eq!(snake("$ref"), "ref");
    }

    #[test]
    fn fields() {
        let field = |name: &str, rename| Some((name.to_owned(), rename));
        assert_eq!(field_ident("email"), field("email", false));
        assert_eq!(field_ident("type"), field("r#type", false));
        assert_eq!(field_ident("self"), field("self_", true));
        assert_eq!(field_ident("first-name"), field("first_name", true));
        assert_eq!(field_ident("Type"), field("r#type", true));
        assert_eq!(field_ident("2fa"), field("_2fa", true));
        assert_eq!(field_ident(""), field("field", true));
    }

    #[test]
    fn only_identifier_characters() {
        // `²` is alphanumeric but not valid in an identifier: it used to reach `Ident::new`.
        assert_eq!(field_ident("area_m²"), Some(("area_m".to_owned(), true)));
        assert_eq!(field_ident("größe"), Some(("gr_e".to_owned(), true)));
        assert_eq!(field_ident("²"), None);
        assert_eq!(variant_ident("m²"), Some("M".to_owned()));
        assert_eq!(variant_ident("²"), None);
        assert_eq!(upper_camel("área"), "Rea");
        assert_eq!(shouty("€"), None);
        assert_eq!(shouty("user:command"), Some("USER_COMMAND".to_owned()));
        assert_eq!(type_name("Self"), "SelfType");
        assert_eq!(type_name("Option"), "Option");
    }

    #[test]
    fn checks() {
        assert!(is_upper_camel("UserCreated"));
        assert!(!is_upper_camel("user_created"));
        assert!(!is_upper_camel("User_Created"));
        assert!(!is_upper_camel("Self"));
        assert_eq!(variant_ident(""), Some("Empty".to_owned()));
        assert_eq!(variant_ident("self"), Some("SelfValue".to_owned()));
        assert_eq!(
            shouty("class_membership"),
            Some("CLASS_MEMBERSHIP".to_owned())
        );
    }
}
