//! The shape of one value: its Rust type, nullability, and the checks serde cannot make.

use super::{At, Converter, Result, keywords, title_name};
use crate::model::{Check, Format, Int, Shape, Ty};
use serde_json::{Number, Value};

/// Keywords copied into the schemars schema so it accepts what the source accepts.
const EXTEND: &[&str] = &[
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "const",
];

const TYPES: &[&str] = &[
    "string", "integer", "number", "boolean", "array", "object", "null",
];

impl<'a> Converter<'a> {
    /// The shape of a schema node and whether it is nullable. Objects, enums and unions become
    /// named types; `hint` names them when they have no `title`.
    pub(crate) fn shape(&mut self, at: &At<'a>, hint: &str) -> Result<(Shape, bool)> {
        match at.value {
            Value::Bool(true) => return Ok((Shape::new(Ty::Any), false)),
            Value::Bool(false) => {
                return Err(at.err("the `false` schema (no value allowed) is not supported"));
            }
            Value::Object(_) => {}
            _ => return Err(at.err("a schema must be a JSON object or a boolean")),
        }
        if let Some(option) = nullable_ref(at) {
            keywords::check_only_annotations(at, option.combinator)?;
            let (shape, _) = self.shape(&option.reference, hint)?;
            return Ok((shape, true));
        }
        if let Some(reference) = at.get("$ref") {
            keywords::check(at, &[])?;
            let target = self.resolve(&reference)?;
            if self.union_options.contains(&target.key()) {
                // Reported here, at the reference, whichever file is converted first.
                return Err(reference.err(format!(
                    "`$ref` to `{}`, an option of a tagged `oneOf`: it is generated as a variant's payload (without its tag) and cannot also be used on its own; refer to the union, or copy the schema",
                    target.key()
                )));
            }
            if is_named(&target) {
                let name = self.ref_name(&target);
                let (name, boxed) = self.named(&target, &name, None)?;
                // The target's own `null` (`"type": ["object", "null"]`, `null` in an `enum`)
                // makes the reference nullable too.
                let (_, nullable) = json_type(&target)?;
                return Ok((Shape::new(Ty::Named { name, boxed }), nullable));
            }
            // A referenced scalar, array or map is inlined. Reaching one again while inlining
            // it is a type that contains itself with no named type to break the cycle (the
            // array of itself, `List = Vec<List>`): without this check the recursion would
            // never end and overflow the build script's stack.
            let key = target.key();
            if self.inlining.contains(&key) {
                return Err(reference.err(format!(
                    "`$ref` to `{key}` refers back to itself through arrays, maps or other references; a recursive type must pass through an object with `properties` (e.g. items that are `{{\"type\": \"object\", \"properties\": {{\"children\": ...}}}}`)"
                )));
            }
            self.inlining.push(key);
            let name = self.ref_name(&target);
            let result = self.shape(&target, &name);
            self.inlining.pop();
            return result;
        }
        keywords::check(at, &[])?;
        let (ty, nullable) = json_type(at)?;
        keywords::check(at, &[ty])?;
        // An integer enum keeps its own type, but a format it could not have is still wrong.
        if ty == "integer" {
            integer_type(at)?;
        } else if ty == "number" {
            number_type(at)?;
        }
        if is_named(at) {
            let name = title_name(at).unwrap_or_else(|| hint.to_owned());
            let (name, boxed) = self.named(at, &name, None)?;
            return Ok((Shape::new(Ty::Named { name, boxed }), nullable));
        }
        let mut shape = match ty {
            "string" => string(at)?,
            "integer" => {
                let mut shape = Shape::new(Ty::Int(integer_type(at)?));
                numeric(at, &mut shape)?;
                shape
            }
            "number" => {
                let mut shape = Shape::new(number_type(at)?);
                numeric(at, &mut shape)?;
                shape
            }
            "boolean" => Shape::new(Ty::Bool),
            "array" => {
                let Some(items) = at.get("items") else {
                    return Err(at.err("an array needs `items`: the schema of its elements"));
                };
                if items.value.is_array() {
                    return Err(items.err(
                        "tuple `items` (an array of schemas) is not supported; use one schema",
                    ));
                }
                let (mut item, item_nullable) = self.shape(&items, &format!("{hint}Item"))?;
                item.nullable = item_nullable;
                unbox(&mut item);
                let mut shape = Shape::new(Ty::Vec(Box::new(item)));
                for (key, check) in [
                    ("minItems", Check::MinItems as fn(u64) -> Check),
                    ("maxItems", Check::MaxItems),
                ] {
                    // A minimum of 0 is no rule at all.
                    if let Some(n) = count(at, key)?.filter(|n| *n > 0 || key == "maxItems") {
                        shape.checks.push(check(n));
                    }
                }
                if let Some(unique) = at.get("uniqueItems") {
                    match unique.value {
                        Value::Bool(true) => shape.checks.push(Check::UniqueItems),
                        Value::Bool(false) => {}
                        _ => return Err(unique.err("`uniqueItems` must be a boolean")),
                    }
                }
                shape
            }
            "object" => {
                let Some(values) = at.get("additionalProperties") else {
                    return Err(at.err(
                        "an object needs `properties`, or an `additionalProperties` schema for a map (`true` for any values)",
                    ));
                };
                if let Some(required) = at.get("required") {
                    // A map's keys are not known, so nothing could check them.
                    return Err(required.err(
                        "`required` on a map (an object with only `additionalProperties`) is not supported; list the properties in `properties`",
                    ));
                }
                if values.value == false {
                    return Err(values.err(
                        "an object with no `properties` and `additionalProperties: false` can only be empty; add `properties`",
                    ));
                }
                let (mut value, value_nullable) = self.shape(&values, &format!("{hint}Value"))?;
                value.nullable = value_nullable;
                unbox(&mut value);
                let mut shape = Shape::new(Ty::Map(Box::new(value)));
                for (key, check) in [
                    ("minProperties", Check::MinProperties as fn(u64) -> Check),
                    ("maxProperties", Check::MaxProperties),
                ] {
                    if let Some(n) = count(at, key)?.filter(|n| *n > 0 || key == "maxProperties") {
                        shape.checks.push(check(n));
                    }
                }
                shape
            }
            _ => return Err(at.err("a value that is always `null` is not supported")),
        };
        if let Some(constant) = at.get("const") {
            let fits = match shape.ty {
                Ty::String => constant.value.is_string(),
                Ty::Int(int) => int.holds(constant.value),
                Ty::F64 => constant.value.is_number(),
                Ty::F32 => super::fits_f32(constant.value),
                Ty::Bool => constant.value.is_boolean(),
                _ => false,
            };
            if !fits {
                return Err(constant.err(
                    "`const` is supported for strings, numbers and booleans, matching the `type`",
                ));
            }
            shape.checks.push(Check::Const(constant.value.clone()));
        }
        if !matches!(shape.ty, Ty::Uuid | Ty::DateTime | Ty::Date) {
            for key in EXTEND {
                if let Some(value) = at.value.get(*key) {
                    shape.extend.insert((*key).to_owned(), value.clone());
                }
            }
            if let Some(format) = at.value.get("format") {
                shape.extend.insert("format".to_owned(), format.clone());
            }
        }
        Ok((shape, nullable))
    }
}

/// Whether a schema becomes a named type: an object with `properties`, an `enum`, a `oneOf`
/// (other than a nullable reference).
pub(super) fn is_named(at: &At<'_>) -> bool {
    ["properties", "enum", "oneOf"]
        .iter()
        .any(|key| at.value.get(*key).is_some())
        && nullable_ref(at).is_none()
}

/// The reference in a nullable reference: `oneOf` or `anyOf` of a `$ref` and
/// `{"type": "null"}`, in either order.
pub(super) struct NullableRef<'a> {
    /// `oneOf` or `anyOf`.
    pub(super) combinator: &'static str,
    /// The option holding the `$ref`.
    pub(super) reference: At<'a>,
}

/// The common spelling of "this type or null" for a referenced type, which a `$ref` cannot
/// say with `type` beside it. Both combinators mean the same here: the options overlap only
/// when the referenced type is itself nullable (then `oneOf` would refuse `null`, surely not
/// what was meant), so either reads as nullable.
pub(super) fn nullable_ref<'a>(at: &At<'a>) -> Option<NullableRef<'a>> {
    ["oneOf", "anyOf"].into_iter().find_map(|combinator| {
        let list = at.get(combinator)?;
        let [first, second] = list.value.as_array()?.as_slice() else {
            return None;
        };
        // `{"type": "null"}`, perhaps with a `description` or other annotations.
        let is_null = |option: &Value| {
            option.as_object().is_some_and(|object| {
                object.get("type") == Some(&Value::from("null"))
                    && object
                        .keys()
                        .all(|key| key == "type" || keywords::is_annotation(key))
            })
        };
        let (index, option) = match (is_null(first), is_null(second)) {
            (false, true) => (0, first),
            (true, false) => (1, second),
            _ => return None,
        };
        option.get("$ref")?;
        Some(NullableRef {
            combinator,
            reference: list.child(&index.to_string(), option),
        })
    })
}

/// The one non-null JSON type of a node, and whether `null` is allowed too.
pub(super) fn json_type<'v>(at: &At<'v>) -> Result<(&'v str, bool)> {
    let mut nullable = false;
    let mut types: Vec<&'v str> = Vec::new();
    match at.value.get("type") {
        Some(Value::String(ty)) => types.push(ty),
        Some(Value::Array(list)) => {
            for ty in list {
                let Some(ty) = ty.as_str() else {
                    return Err(at.err_at("type", "`type` must be a string or an array of strings"));
                };
                types.push(ty);
            }
        }
        Some(_) => return Err(at.err_at("type", "`type` must be a string or an array of strings")),
        None => {}
    }
    if let Some(unknown) = types.iter().find(|ty| !TYPES.contains(ty)) {
        return Err(at.err_at("type", format!("unknown type `{unknown}`")));
    }
    if types.contains(&"null") {
        nullable = true;
        types.retain(|ty| *ty != "null");
    }
    if let Some(Value::Array(values)) = at.value.get("enum")
        && values.iter().any(Value::is_null)
    {
        // `null` in the list makes the value nullable only when `type` allows it too: with
        // `"type": "string"` it can never validate, and reading it as nullable would accept
        // what the schema refuses. An impossible rule is refused, as the `false` schema is.
        if at.value.get("type").is_some() && !nullable {
            return Err(at.err_at(
                "enum",
                "`enum` lists `null` but `type` does not allow it, so it can never match; add \"null\" to `type`, or remove `null` from the `enum`",
            ));
        }
        nullable = true;
    }
    match types.as_slice() {
        [one] => return Ok((one, nullable)),
        [] if nullable && at.value.get("type").is_some() => {
            return Err(at.err_at("type", "a value that is always `null` is not supported"));
        }
        [] => {}
        many => {
            return Err(at.err_at(
                "type",
                format!(
                    "a value of several types ({}) is not supported; use `oneOf` of objects with a tag",
                    many.join(", ")
                ),
            ));
        }
    }
    // No `type`: infer it from the keywords that imply one.
    let value = at.value;
    let inferred = if value.get("properties").is_some()
        || value.get("additionalProperties").is_some()
        || value.get("oneOf").is_some()
    {
        "object"
    } else if value.get("items").is_some() {
        "array"
    } else if let Some(Value::Array(values)) = value.get("enum") {
        let values = || values.iter().filter(|v| !v.is_null());
        if values().all(Value::is_string) {
            "string"
        } else if values().all(|v| v.is_i64()) {
            "integer"
        } else if values().all(Value::is_number) {
            // Refused by `named` as an enum of numbers.
            "number"
        } else {
            return Err(at.err_at(
                "enum",
                "`enum` values must be all strings or all integers (with `null` for a nullable value)",
            ));
        }
    } else {
        match value.get("const") {
            Some(Value::String(_)) => "string",
            Some(Value::Bool(_)) => "boolean",
            Some(Value::Number(n)) if n.is_f64() => "number",
            Some(Value::Number(_)) => "integer",
            _ => {
                return Err(at.err(
                    "the schema has no `type`; say what the value is, e.g. `\"type\": \"string\"`",
                ));
            }
        }
    };
    Ok((inferred, nullable))
}

/// The Rust type of an integer: the one its `format` names, else `u64` when a lower bound
/// rules out negative numbers, else `i64`.
fn integer_type(at: &At<'_>) -> Result<Int> {
    if let Some(format) = at.get("format") {
        let name = format.value.as_str().unwrap_or_default();
        return Int::from_format(name).ok_or_else(|| {
            let names: Vec<&str> = Int::FORMATS.iter().map(|(name, _)| *name).collect();
            format.err(format!(
                "unsupported format {} for an integer; supported: {}",
                format.value,
                names.join(", ")
            ))
        });
    }
    let unsigned = [at.get("minimum"), at.get("exclusiveMinimum")]
        .iter()
        .flatten()
        .any(|bound| bound.value.as_f64().is_some_and(|min| min >= 0.0));
    Ok(if unsigned { Int::U64 } else { Int::I64 })
}

/// The Rust type of a number: `f32` for `"format": "float"`, else `f64`.
fn number_type(at: &At<'_>) -> Result<Ty> {
    let Some(format) = at.get("format") else {
        return Ok(Ty::F64);
    };
    match format.value.as_str() {
        Some("float") => Ok(Ty::F32),
        Some("double") => Ok(Ty::F64),
        _ => Err(format.err(format!(
            "unsupported format {} for a number; supported: float, double",
            format.value
        ))),
    }
}

fn string(at: &At<'_>) -> Result<Shape> {
    let mut shape = Shape::new(Ty::String);
    if let Some(format) = at.get("format") {
        let name = format.value.as_str().unwrap_or_default();
        let typed = match name {
            "uuid" => Some(Ty::Uuid),
            "date-time" => Some(Ty::DateTime),
            "date" => Some(Ty::Date),
            "email" => {
                shape.checks.push(Check::Format(Format::Email));
                None
            }
            "uri" => {
                shape.checks.push(Check::Format(Format::Uri));
                None
            }
            "ipv4" => {
                shape.checks.push(Check::Format(Format::Ipv4));
                None
            }
            "ipv6" => {
                shape.checks.push(Check::Format(Format::Ipv6));
                None
            }
            _ => {
                return Err(format.err(format!(
                    "unsupported format {}; supported: uuid, date-time, date, email, uri, ipv4, ipv6",
                    format.value
                )));
            }
        };
        if let Some(ty) = typed {
            for key in ["minLength", "maxLength", "pattern", "const"] {
                if at.value.get(key).is_some() {
                    return Err(at.err_at(
                        key,
                        format!("keyword `{key}` is not supported together with format `{name}`"),
                    ));
                }
            }
            return Ok(Shape::new(ty));
        }
    }
    if let Some(n) = count(at, "minLength")?.filter(|n| *n > 0) {
        shape.checks.push(Check::MinLength(n));
    }
    if let Some(n) = count(at, "maxLength")? {
        shape.checks.push(Check::MaxLength(n));
    }
    if let Some(pattern) = at.get("pattern") {
        let Some(text) = pattern.value.as_str() else {
            return Err(pattern.err("`pattern` must be a string"));
        };
        if let Err(error) = regex::Regex::new(text) {
            return Err(pattern.err(format!(
                "`pattern` does not compile as a Rust regex (no look-around or backreferences): {error}"
            )));
        }
        shape.checks.push(Check::Pattern(text.to_owned()));
    }
    Ok(shape)
}

fn numeric(at: &At<'_>, shape: &mut Shape) -> Result<()> {
    type MakeCheck = fn(Number) -> Check;
    let keys: [(&str, MakeCheck); 5] = [
        ("minimum", Check::Minimum),
        ("maximum", Check::Maximum),
        ("exclusiveMinimum", Check::ExclusiveMinimum),
        ("exclusiveMaximum", Check::ExclusiveMaximum),
        ("multipleOf", Check::MultipleOf),
    ];
    for (key, check) in keys {
        if let Some(bound) = at.get(key) {
            let Value::Number(number) = bound.value else {
                return Err(bound.err(format!(
                    "`{key}` must be a number (draft-04 boolean `exclusiveMinimum` is not supported)"
                )));
            };
            if key == "multipleOf" && number.as_f64().is_none_or(|n| n <= 0.0) {
                return Err(bound.err("`multipleOf` must be greater than 0"));
            }
            // `u64` already guarantees a lower bound of 0 or less; integers are multiples of 1.
            let integer = matches!(shape.ty, Ty::Int(_));
            let unsigned = matches!(shape.ty, Ty::Int(int) if !int.signed());
            let moot = match key {
                "minimum" => unsigned && number.as_f64().is_some_and(|n| n <= 0.0),
                "exclusiveMinimum" => unsigned && number.as_f64().is_some_and(|n| n < 0.0),
                "multipleOf" => integer && number.as_u64() == Some(1),
                _ => false,
            };
            if !moot {
                shape.checks.push(check(number.clone()));
            }
        }
    }
    Ok(())
}

/// A non-negative integer keyword (`minLength`, `maxItems`, ...).
fn count(at: &At<'_>, key: &str) -> Result<Option<u64>> {
    match at.get(key) {
        None => Ok(None),
        Some(value) => value
            .value
            .as_u64()
            .map(Some)
            .ok_or_else(|| value.err(format!("`{key}` must be a non-negative integer"))),
    }
}

/// A recursive reference inside a `Vec` or a map needs no `Box`: the collection already
/// allocates.
fn unbox(shape: &mut Shape) {
    if let Ty::Named { boxed, .. } = &mut shape.ty {
        *boxed = false;
    }
}
