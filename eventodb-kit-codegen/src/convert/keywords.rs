//! Which keywords the dialect reads, ignores or refuses.

use super::{At, Result};

/// Annotations: read for docs or ignored, never an error.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "$anchor",
    "title",
    "description",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$defs",
    "definitions",
    "default",
    "contentMediaType",
    "contentEncoding",
];

/// Whether a keyword only annotates (a `description`, an `x-` extension): read for docs or
/// ignored, never a rule.
pub(super) fn is_annotation(key: &str) -> bool {
    key.starts_with("x-") || ANNOTATIONS.contains(&key)
}

/// Keywords read by the generator, by the JSON type they apply to (`*` = any).
const SUPPORTED: &[(&str, &str)] = &[
    ("type", "*"),
    ("enum", "*"),
    ("const", "*"),
    ("$ref", "*"),
    ("oneOf", "object"),
    ("minLength", "string"),
    ("maxLength", "string"),
    ("pattern", "string"),
    ("format", "scalar"),
    ("minimum", "number"),
    ("maximum", "number"),
    ("exclusiveMinimum", "number"),
    ("exclusiveMaximum", "number"),
    ("multipleOf", "number"),
    ("items", "array"),
    ("minItems", "array"),
    ("maxItems", "array"),
    ("uniqueItems", "array"),
    ("properties", "object"),
    ("required", "object"),
    ("additionalProperties", "object"),
    ("minProperties", "object"),
    ("maxProperties", "object"),
];

/// Keywords of JSON Schema the generator does not support (a clearer message than "unknown").
const UNSUPPORTED: &[&str] = &[
    "allOf",
    "anyOf",
    "not",
    "if",
    "then",
    "else",
    "patternProperties",
    "propertyNames",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "prefixItems",
    "additionalItems",
    "contains",
    "minContains",
    "maxContains",
    "unevaluatedProperties",
    "unevaluatedItems",
    "$dynamicRef",
    "$dynamicAnchor",
    "$recursiveRef",
    "$recursiveAnchor",
    "$vocabulary",
    "contentSchema",
];

/// Checks every keyword of a schema object against the dialect and the node's JSON type
/// (`types`: the non-null types named by `type`, or inferred).
pub(super) fn check(at: &At<'_>, types: &[&str]) -> Result<()> {
    let Some(object) = at.object() else {
        return Ok(());
    };
    // Sorted, so which error is reported does not depend on serde_json's `preserve_order`.
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    for &key in &keys {
        if key == "x-eventodb" {
            if !at.pointer.is_empty() {
                return Err(at.err_at(
                    key,
                    "`x-eventodb` belongs at the root of an event schema file",
                ));
            }
            continue;
        }
        if key.starts_with("x-") || ANNOTATIONS.contains(&key) {
            continue;
        }
        if UNSUPPORTED.contains(&key) {
            return Err(at.err_at(key, format!("keyword `{key}` is not supported")));
        }
        let Some((_, applies_to)) = SUPPORTED.iter().find(|(name, _)| *name == key) else {
            return Err(at.err_at(
                key,
                format!("unknown keyword `{key}` (extensions must start with `x-`)"),
            ));
        };
        // `scalar`: strings, integers and numbers, each with formats of its own.
        let applies = *applies_to == "*"
            || types.is_empty()
            || types.iter().any(|ty| {
                ty == applies_to
                    || (*ty == "integer" && *applies_to == "number")
                    || (*applies_to == "scalar" && ["string", "integer", "number"].contains(ty))
            });
        if !applies {
            let kinds = if *applies_to == "scalar" {
                "strings, integers and numbers".to_owned()
            } else {
                format!("{applies_to}s")
            };
            return Err(at.err_at(
                key,
                format!(
                    "keyword `{key}` applies to {kinds}, not to `{}`",
                    types.join("`, `")
                ),
            ));
        }
    }
    if object.contains_key("$ref") {
        if let Some(extra) = keys
            .iter()
            .find(|&&key| key != "$ref" && !key.starts_with("x-") && !ANNOTATIONS.contains(&key))
        {
            return Err(at.err_at(
                extra,
                format!("keyword `{extra}` beside `$ref` is not supported; move it into the referenced schema"),
            ));
        }
    }
    Ok(())
}

/// What a schema that becomes a named Rust type is, for [`check_named`].
#[derive(Clone, Copy)]
pub(super) enum Named {
    /// An object with `properties`: a struct.
    Struct,
    /// An `enum` of strings: a Rust enum.
    Enum,
    /// An `enum` of integers: a Rust enum; its `format` (OpenAPI's `int32` and the like)
    /// bounds the values it may list.
    IntEnum,
    /// A tagged `oneOf`: a Rust enum of structs.
    Union,
}

/// Checks that a schema becoming a named type has no keyword its type would drop. The other
/// keywords [`check`] accepts for its JSON type (`minProperties` on a struct, `minLength` on a
/// string enum, `const` on either) are checked by `validate()` only on scalars, arrays and
/// maps; on a named type they would be read and then ignored, which the dialect never does.
pub(super) fn check_named(at: &At<'_>, named: Named) -> Result<()> {
    let Some(object) = at.object() else {
        return Ok(());
    };
    let (read, what): (&[&str], &str) = match named {
        Named::Struct => (
            &["type", "properties", "required", "additionalProperties"],
            "an object with `properties` (a generated struct)",
        ),
        Named::Enum => (&["type", "enum"], "an `enum` (a generated Rust enum)"),
        Named::IntEnum => (
            &["type", "enum", "format"],
            "an integer `enum` (a generated Rust enum)",
        ),
        Named::Union => (
            &["type", "oneOf", "required"],
            "a tagged `oneOf` (a generated Rust enum)",
        ),
    };
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    match keys
        .into_iter()
        .find(|key| SUPPORTED.iter().any(|(name, _)| name == key) && !read.contains(key))
    {
        Some(key) => Err(at.err_at(
            key,
            format!(
                "keyword `{key}` is not supported on {what}; only {} are read there",
                read.iter()
                    .map(|key| format!("`{key}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// Checks that a node read through its `combinator` alone (a nullable reference) has nothing
/// else but annotations and extensions.
pub(super) fn check_only_annotations(at: &At<'_>, combinator: &str) -> Result<()> {
    let Some(object) = at.object() else {
        return Ok(());
    };
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    match keys.into_iter().find(|&key| {
        key != combinator && !key.starts_with("x-") && !ANNOTATIONS.contains(&key)
    }) {
        Some(extra) => Err(at.err_at(
            extra,
            format!(
                "keyword `{extra}` beside a nullable reference (`{combinator}` of a `$ref` and `{{\"type\": \"null\"}}`) is not supported; move it into the referenced schema"
            ),
        )),
        None => Ok(()),
    }
}
