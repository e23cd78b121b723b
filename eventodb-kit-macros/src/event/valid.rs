//! Checks a parsed input against the rules in the derive's docs and resolves the template's
//! placeholders to fields. Every mistake is recorded; nothing stops at the first one.

use std::collections::BTreeSet;
use std::ops::Range;

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::{ExprPath, Field, Ident, LitStr, Path};

use super::parse::{Input, Shape};
use super::template::{self, ShapeError, Template};
use crate::attr::Errors;

/// An input that passed every check: what the expansion needs.
pub(crate) struct Checked<'a> {
    pub(crate) type_name: String,
    pub(crate) category: String,
    /// The template as written.
    pub(crate) template: String,
    /// The template as a `format!` string.
    pub(crate) format: String,
    pub(crate) cases: Cases<'a>,
    pub(crate) validate: Option<ExprPath>,
}

/// How to reach the placeholder fields: for each case (the struct, or each variant), the
/// field of each placeholder, in template order.
pub(crate) enum Cases<'a> {
    Struct(Vec<&'a Field>),
    Enum(Vec<(&'a Ident, Vec<&'a Field>)>),
}

/// The path of the eventodb-kit crate: `crate = "..."` or `::eventodb_kit`.
pub(crate) fn krate(input: &Input<'_>, errors: &mut Errors) -> Path {
    if let Some(lit) = &input.attrs.krate {
        match lit.parse::<Path>() {
            Ok(path) => return path,
            Err(_) => errors.at(
                lit.span(),
                "`crate` takes the path of the eventodb-kit crate, e.g. `crate = \"::my_kit\"`",
            ),
        }
    }
    syn::parse_quote!(::eventodb_kit)
}

/// The event type name: `type = "..."` or the Rust type's name.
pub(crate) fn type_name(input: &Input<'_>) -> String {
    match &input.attrs.type_name {
        Some(lit) => lit.value(),
        None => input.original.ident.unraw().to_string(),
    }
}

/// Runs every check; `None` when one failed (the errors are in `errors`).
pub(crate) fn check<'a>(input: &Input<'a>, errors: &mut Errors) -> Option<Checked<'a>> {
    let ident = &input.original.ident;
    let attrs = &input.attrs;

    if let Some(lit) = &attrs.type_name {
        check_type_name(lit, ident, errors);
    }
    let validate = attrs
        .validate
        .as_ref()
        .and_then(|lit| match lit.parse::<ExprPath>() {
            Ok(path) => Some(path),
            Err(_) => {
                errors.at(
                    lit.span(),
                    "`validate` takes the path of a function `fn(&Self) -> Result<(), \
                 eventodb_kit::ValidationError>`, e.g. `validate = \"Self::check\"`",
                );
                None
            }
        });

    // A type that cannot be an event gets that one error, not template errors on top.
    let template = match input.shape {
        Some(_) => attrs
            .stream
            .as_ref()
            .and_then(|lit| parse_template(lit, errors)),
        None => None,
    };
    let category = attrs
        .category
        .as_ref()
        .and_then(|lit| check_category(lit, errors).then(|| lit.value()));
    if !attrs.has("category") || !attrs.has("stream") {
        missing(input, template.as_ref(), errors);
    }

    // The template's placeholders are checked against the fields whatever else is wrong;
    // its category only against a valid `category`.
    let (Some(stream), Some(template)) = (&attrs.stream, template) else {
        return None;
    };
    let cases = match input.shape.as_ref()? {
        Shape::Struct(fields) => {
            struct_fields(ident, fields, stream, &template, errors).map(Cases::Struct)
        }
        Shape::Enum(variants) => {
            enum_fields(ident, variants, stream, &template, errors).map(Cases::Enum)
        }
    };
    let category = category?;
    if let Err(shape) = template.check_category(&category) {
        report_shape(stream, &category, shape, errors);
        return None;
    }
    let cases = cases?;
    Some(Checked {
        type_name: type_name(input),
        category,
        template: stream.value(),
        format: template.format_string(),
        cases,
        validate,
    })
}

fn check_type_name(lit: &LitStr, ident: &Ident, errors: &mut Errors) {
    let value = lit.value();
    if value.is_empty() {
        errors.at(
            lit.span(),
            format_args!(
                "the event type cannot be empty: write e.g. `type = \"{ident}\"`, or leave \
                 `type` out to use the type's name"
            ),
        );
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        errors.at(
            lit.span(),
            format_args!(
                "an event type is a name without spaces or control characters, e.g. \
                 `type = \"{ident}\"`"
            ),
        );
    }
}

fn check_category(lit: &LitStr, errors: &mut Errors) -> bool {
    let value = lit.value();
    let problem = if value.is_empty() {
        "the category cannot be empty: write e.g. `category = \"user\"`"
    } else if value.contains('-') {
        "a category cannot contain `-`: EventoDB ends a stream's category at its first `-`"
    } else if value.contains(['{', '}']) {
        "a category cannot contain `{` or `}`: it is the literal start of every stream name"
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "a category cannot contain spaces or control characters"
    } else {
        return true;
    };
    errors.at(lit.span(), problem);
    false
}

/// Reports a missing `category` and/or `stream`, with an example built from what is there.
fn missing(input: &Input<'_>, template: Option<&Template>, errors: &mut Errors) {
    let attrs = &input.attrs;
    let first_field = input
        .shape
        .as_ref()
        .and_then(|shape| match shape {
            Shape::Struct(fields) => fields.first().copied(),
            Shape::Enum(variants) => variants.first().and_then(|v| v.fields.first().copied()),
        })
        .and_then(|field| field.ident.as_ref())
        .map_or_else(|| "id".to_owned(), |ident| ident.unraw().to_string());
    let message = match (attrs.has("category"), &attrs.category, attrs.has("stream")) {
        (false, _, false) => format!(
            "`#[derive(Event)]` needs `#[event(category = \"...\", stream = \"...\")]`, e.g. \
             `#[event(category = \"user\", stream = \"user-{{{first_field}}}\")]`"
        ),
        (false, _, true) => match template.and_then(stream_category) {
            Some(category) => format!(
                "`#[derive(Event)]` needs `#[event(category = \"...\")]`: here \
                 `category = \"{category}\"`, the stream's category"
            ),
            None => "`#[derive(Event)]` needs `#[event(category = \"...\")]`".to_owned(),
        },
        (true, Some(category), false) => format!(
            "`#[derive(Event)]` needs `#[event(stream = \"...\")]`, the stream-name template, \
             e.g. `stream = \"{}-{{{first_field}}}\"`",
            category.value()
        ),
        (true, None, false) => {
            "`#[derive(Event)]` needs `#[event(stream = \"...\")]`, the stream-name template"
                .to_owned()
        }
        (true, _, true) => return,
    };
    match attrs.first {
        Some(attr) => errors.spanned(attr, message),
        None => errors.at(input.original.ident.span(), message),
    }
}

/// The literal text before the first `-`, if the template starts that way.
fn stream_category(template: &Template) -> Option<String> {
    match template.segments.first()? {
        template::Segment::Text(text) => text.split_once('-').map(|(c, _)| c.to_owned()),
        template::Segment::Field { .. } => None,
    }
}

fn parse_template(lit: &LitStr, errors: &mut Errors) -> Option<Template> {
    match template::parse(&lit.value()) {
        Ok(template) => Some(template),
        Err(list) => {
            for error in list {
                errors.at(span_in(lit, error.range), error.message);
            }
            None
        }
    }
}

fn report_shape(stream: &LitStr, category: &str, shape: ShapeError, errors: &mut Errors) {
    let (span, message) = match shape {
        ShapeError::NoDash => (
            stream.span(),
            format!(
                "a stream template is `{category}-` followed by the id, e.g. \
                 `{category}-{{user_id}}`: EventoDB takes the text before the first `-` as the \
                 category"
            ),
        ),
        ShapeError::PlaceholderInCategory { range } => (
            span_in(stream, range),
            format!(
                "the stream's category (the text before the first `-`) must be literal: start \
                 the template with `{category}-`"
            ),
        ),
        ShapeError::OtherCategory { found } => (
            stream.span(),
            format!(
                "this stream is in category `{found}` but the event's category is \
                 `{category}`: start the template with `{category}-`"
            ),
        ),
        ShapeError::EmptyId => (
            stream.span(),
            format!(
                "the stream id after `{category}-` is empty: add the id, e.g. \
                 `{category}-{{user_id}}`"
            ),
        ),
    };
    errors.at(span, message);
}

/// The span of `range` (byte offsets in the literal's value) within the literal, when the
/// compiler can point inside literals and the literal has no escapes; else the literal.
fn span_in(lit: &LitStr, range: Range<usize>) -> Span {
    let token = lit.token();
    let source = token.to_string();
    let value = lit.value();
    if source.len() == value.len() + 2 && source.get(1..source.len() - 1) == Some(value.as_str()) {
        token
            .subspan(range.start + 1..range.end + 1)
            .unwrap_or_else(|| lit.span())
    } else {
        lit.span()
    }
}

fn find<'a>(fields: &[&'a Field], name: &str) -> Option<&'a Field> {
    fields.iter().copied().find(|field| {
        field
            .ident
            .as_ref()
            .is_some_and(|ident| ident.unraw() == name)
    })
}

fn list_fields(fields: &[&Field]) -> String {
    if fields.is_empty() {
        return "it has no named fields".to_owned();
    }
    let names: Vec<String> = fields
        .iter()
        .filter_map(|field| field.ident.as_ref())
        .map(|ident| format!("`{}`", ident.unraw()))
        .collect();
    format!("its fields are {}", names.join(", "))
}

fn struct_fields<'a>(
    ident: &Ident,
    fields: &[&'a Field],
    stream: &LitStr,
    template: &Template,
    errors: &mut Errors,
) -> Option<Vec<&'a Field>> {
    let mut resolved = Vec::new();
    let mut ok = true;
    for (name, range) in template.fields() {
        match find(fields, name) {
            Some(field) => resolved.push(field),
            None => {
                ok = false;
                errors.at(
                    span_in(stream, range.clone()),
                    format_args!(
                        "the stream template names `{{{name}}}`, but `{ident}` has no field \
                         `{name}`: {}",
                        list_fields(fields)
                    ),
                );
            }
        }
    }
    ok.then_some(resolved)
}

fn enum_fields<'a>(
    ident: &Ident,
    variants: &[super::parse::Variant<'a>],
    stream: &LitStr,
    template: &Template,
    errors: &mut Errors,
) -> Option<Vec<(&'a Ident, Vec<&'a Field>)>> {
    let mut ok = true;
    // Each missing name is reported once: on the placeholder when no variant has it, else on
    // each variant that lacks it.
    let mut reported = BTreeSet::new();
    for (name, range) in template.fields() {
        if !reported.insert(name) {
            continue;
        }
        let lacking: Vec<_> = variants
            .iter()
            .filter(|variant| find(&variant.fields, name).is_none())
            .collect();
        if lacking.is_empty() {
            continue;
        }
        ok = false;
        if lacking.len() == variants.len() {
            errors.at(
                span_in(stream, range.clone()),
                format_args!(
                    "the stream template names `{{{name}}}`, but no variant of `{ident}` has a \
                     field `{name}`: every variant needs each placeholder's field"
                ),
            );
        } else {
            for variant in lacking {
                errors.at(
                    variant.ident.span(),
                    format_args!(
                        "variant `{}` has no field `{name}`, which the stream template \
                         `{{{name}}}` needs: every variant of an event enum needs each \
                         placeholder's field ({})",
                        variant.ident,
                        list_fields(&variant.fields)
                    ),
                );
            }
        }
    }
    if !ok {
        return None;
    }
    let cases = variants
        .iter()
        .map(|variant| {
            let fields = template
                .fields()
                .filter_map(|(name, _)| find(&variant.fields, name))
                .collect();
            (variant.ident, fields)
        })
        .collect();
    Some(cases)
}
