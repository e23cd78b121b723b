//! The stream-name template: `user-{user_id}`, `class_membership-{class_id}+{student_id}`.
//!
//! Grammar: literal text and `{field}` placeholders. A placeholder names a field (a Rust
//! identifier, raw identifiers written with or without `r#`). Braces have no escape: a stream
//! name cannot contain `{` or `}`, so `{{` and `}}` are rejected with a message saying so,
//! and every `{` in a template opens a placeholder. Format specs (`{id:?}`) are rejected too:
//! placeholders are formatted with `Display`.
//!
//! The stream's category is the text before the first `-` (EventoDB's rule); it must be
//! literal text and equal the event's category, and the id after it must not be empty.

use std::ops::Range;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pub(crate) segments: Vec<Segment>,
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// Literal text.
    Text(String),
    /// `{name}`: the field `name`, formatted with `Display`.
    Field {
        /// The field name, without any `r#`.
        name: String,
        /// Byte range of `{name}` in the template, braces included.
        range: Range<usize>,
    },
}

/// A mistake in a template, with the byte range it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError {
    pub(crate) range: Range<usize>,
    pub(crate) message: String,
}

impl TemplateError {
    fn new(range: Range<usize>, message: impl Into<String>) -> Self {
        Self {
            range,
            message: message.into(),
        }
    }
}

/// Parses `template` into text and placeholders, reporting every syntax mistake.
pub(crate) fn parse(template: &str) -> Result<Template, Vec<TemplateError>> {
    let mut segments = Vec::new();
    let mut errors = Vec::new();
    let mut text = String::new();
    let mut chars = template.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        match c {
            '{' if chars.peek().is_some_and(|&(_, next)| next == '{') => {
                chars.next();
                errors.push(TemplateError::new(start..start + 2, ESCAPE));
            }
            '}' if chars.peek().is_some_and(|&(_, next)| next == '}') => {
                chars.next();
                errors.push(TemplateError::new(start..start + 2, ESCAPE));
            }
            '}' => errors.push(TemplateError::new(
                start..start + 1,
                "unmatched `}` in stream template: placeholders are written `{field}`",
            )),
            '{' => {
                let Some(close) = template[start..].find('}').map(|i| start + i) else {
                    errors.push(TemplateError::new(
                        start..template.len(),
                        "unclosed `{` in stream template: close the placeholder with `}`",
                    ));
                    break;
                };
                // Skip the placeholder's characters.
                while chars.next_if(|&(i, _)| i <= close).is_some() {}
                let range = start..close + 1;
                let inner = &template[start + 1..close];
                match placeholder_name(inner) {
                    Ok(name) => {
                        if !text.is_empty() {
                            segments.push(Segment::Text(std::mem::take(&mut text)));
                        }
                        segments.push(Segment::Field { name, range });
                    }
                    Err(message) => errors.push(TemplateError::new(range, message)),
                }
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        segments.push(Segment::Text(text));
    }
    if errors.is_empty() {
        Ok(Template { segments })
    } else {
        Err(errors)
    }
}

const ESCAPE: &str = "stream names cannot contain braces, and `{{`/`}}` escapes are not \
                      supported: every `{` opens a `{field}` placeholder";

/// The field name of a placeholder's inside (`user_id`, `r#type`), or what is wrong with it.
fn placeholder_name(inner: &str) -> Result<String, String> {
    if inner.trim().is_empty() {
        return Err("empty placeholder: name a field, e.g. `{user_id}`".into());
    }
    if let Some((name, _)) = inner.split_once(':') {
        return Err(format!(
            "format specs are not supported in stream templates: write `{{{}}}` \
             (placeholders are formatted with `Display`)",
            name.trim()
        ));
    }
    let name = inner.strip_prefix("r#").unwrap_or(inner);
    if is_identifier(name) {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "`{{{inner}}}` is not a placeholder: write a field name, e.g. `{{user_id}}`"
        ))
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) if first == '_' || first.is_alphabetic() => {
            name != "_" && chars.all(|c| c == '_' || c.is_alphanumeric())
        }
        _ => false,
    }
}

/// A mistake in how a template relates to the event's category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ShapeError {
    /// No `-` in the literal text: the stream would be a bare category.
    NoDash,
    /// A placeholder before the first `-`: the category would depend on the data.
    PlaceholderInCategory { range: Range<usize> },
    /// The text before the first `-` is not the category.
    OtherCategory { found: String },
    /// Nothing after the first `-`.
    EmptyId,
}

impl Template {
    /// The field names of the placeholders, in order (repeats included).
    pub(crate) fn fields(&self) -> impl Iterator<Item = (&str, &Range<usize>)> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Field { name, range } => Some((name.as_str(), range)),
            Segment::Text(_) => None,
        })
    }

    /// Checks that the stream's category (text before the first `-`) is `category` and that
    /// an id follows it.
    pub(crate) fn check_category(&self, category: &str) -> Result<(), ShapeError> {
        let mut prefix = String::new();
        for (index, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Field { range, .. } => {
                    return Err(ShapeError::PlaceholderInCategory {
                        range: range.clone(),
                    });
                }
                Segment::Text(text) => {
                    let Some((before, after)) = text.split_once('-') else {
                        prefix.push_str(text);
                        continue;
                    };
                    prefix.push_str(before);
                    if prefix != category {
                        return Err(ShapeError::OtherCategory { found: prefix });
                    }
                    if after.is_empty() && index + 1 == self.segments.len() {
                        return Err(ShapeError::EmptyId);
                    }
                    return Ok(());
                }
            }
        }
        Err(ShapeError::NoDash)
    }

    /// The template as a `format!` string: each placeholder becomes `{}`.
    pub(crate) fn format_string(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(&text.replace('{', "{{").replace('}', "}}")),
                Segment::Field { .. } => out.push_str("{}"),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Segment {
        Segment::Text(s.into())
    }

    fn field(name: &str, range: Range<usize>) -> Segment {
        Segment::Field {
            name: name.into(),
            range,
        }
    }

    fn messages(template: &str) -> Vec<(Range<usize>, String)> {
        parse(template)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.range, e.message))
            .collect()
    }

    #[test]
    fn simple_template() {
        let template = parse("user-{user_id}").unwrap();
        assert_eq!(template.segments, [text("user-"), field("user_id", 5..14)]);
        assert_eq!(template.format_string(), "user-{}");
        assert_eq!(template.check_category("user"), Ok(()));
    }

    #[test]
    fn compound_id() {
        let template = parse("class_membership-{class_id}+{student_id}").unwrap();
        assert_eq!(
            template.segments,
            [
                text("class_membership-"),
                field("class_id", 17..27),
                text("+"),
                field("student_id", 28..40),
            ]
        );
        assert_eq!(
            template.fields().map(|(name, _)| name).collect::<Vec<_>>(),
            ["class_id", "student_id"]
        );
        assert_eq!(template.format_string(), "class_membership-{}+{}");
        assert_eq!(template.check_category("class_membership"), Ok(()));
    }

    #[test]
    fn constant_stream_and_repeated_field() {
        let template = parse("settings-global").unwrap();
        assert_eq!(template.segments, [text("settings-global")]);
        assert_eq!(template.check_category("settings"), Ok(()));

        let template = parse("a-{x}-{x}").unwrap();
        assert_eq!(template.fields().count(), 2);
        assert_eq!(template.format_string(), "a-{}-{}");
    }

    #[test]
    fn raw_identifiers_and_unicode() {
        let template = parse("t-{r#type}+{größe}").unwrap();
        assert_eq!(
            template.segments,
            [
                text("t-"),
                field("type", 2..10),
                text("+"),
                field("größe", 11..20),
            ]
        );
    }

    #[test]
    fn category_may_contain_colon() {
        let template = parse("account:command-{id}").unwrap();
        assert_eq!(template.check_category("account:command"), Ok(()));
        assert_eq!(
            template.check_category("account"),
            Err(ShapeError::OtherCategory {
                found: "account:command".into()
            })
        );
    }

    #[test]
    fn escapes_are_rejected() {
        assert_eq!(
            messages("a-{{x}}"),
            [(2..4, ESCAPE.to_owned()), (5..7, ESCAPE.to_owned())]
        );
    }

    #[test]
    fn unmatched_and_unclosed_braces() {
        assert_eq!(
            messages("a-x}"),
            [(
                3..4,
                "unmatched `}` in stream template: placeholders are written `{field}`".into()
            )]
        );
        assert_eq!(
            messages("a-{x"),
            [(
                2..4,
                "unclosed `{` in stream template: close the placeholder with `}`".into()
            )]
        );
    }

    #[test]
    fn bad_placeholders_are_all_reported() {
        let errors = messages("a-{}+{id:?}+{1x}+{_}+{a b}");
        let ranges: Vec<_> = errors.iter().map(|(range, _)| range.clone()).collect();
        assert_eq!(ranges, [2..4, 5..11, 12..16, 17..20, 21..26]);
        assert_eq!(
            errors[0].1,
            "empty placeholder: name a field, e.g. `{user_id}`"
        );
        assert_eq!(
            errors[1].1,
            "format specs are not supported in stream templates: write `{id}` \
             (placeholders are formatted with `Display`)"
        );
        assert_eq!(
            errors[2].1,
            "`{1x}` is not a placeholder: write a field name, e.g. `{user_id}`"
        );
    }

    #[test]
    fn category_shape_errors() {
        let check =
            |template: &str, category: &str| parse(template).unwrap().check_category(category);
        assert_eq!(check("user", "user"), Err(ShapeError::NoDash));
        assert_eq!(
            check("{user_id}", "user"),
            Err(ShapeError::PlaceholderInCategory { range: 0..9 })
        );
        assert_eq!(
            check("us{x}-1", "user"),
            Err(ShapeError::PlaceholderInCategory { range: 2..5 })
        );
        assert_eq!(
            check("users-{id}", "user"),
            Err(ShapeError::OtherCategory {
                found: "users".into()
            })
        );
        assert_eq!(check("user-", "user"), Err(ShapeError::EmptyId));
        assert_eq!(check("user--", "user"), Ok(()));
        assert_eq!(check("-{id}", ""), Ok(()));
    }
}
