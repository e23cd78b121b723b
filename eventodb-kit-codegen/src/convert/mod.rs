//! JSON Schema to [`Model`]: events, shared types, `$ref` resolution and naming.

mod keywords;
mod shape;

use crate::error::SchemaError;
use crate::load::{self, Folder};
use crate::model::{
    EventInfo, Field, Int, Model, Presence, StructDef, TemplatePart, Ty, TypeDef, TypeKind,
    UnionVariant,
};
use crate::naming;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

type Result<T, E = SchemaError> = std::result::Result<T, E>;

/// `$schema` values the dialect accepts.
const DIALECTS: &[&str] = &[
    "https://json-schema.org/draft/2020-12/schema",
    "http://json-schema.org/draft-07/schema",
    "https://json-schema.org/draft-07/schema",
    "https://json-schema.org/draft/2019-09/schema",
];

/// A node with an owned pointer (children are built on the fly).
#[derive(Clone)]
pub(crate) struct At<'a> {
    pub(crate) file: &'a str,
    pub(crate) pointer: String,
    pub(crate) value: &'a Value,
}

impl<'a> At<'a> {
    fn root(file: &'a str, value: &'a Value) -> Self {
        Self {
            file,
            pointer: String::new(),
            value,
        }
    }

    pub(crate) fn child(&self, key: &str, value: &'a Value) -> Self {
        let escaped = key.replace('~', "~0").replace('/', "~1");
        Self {
            file: self.file,
            pointer: format!("{}/{escaped}", self.pointer),
            value,
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<At<'a>> {
        self.value.get(key).map(|value| self.child(key, value))
    }

    pub(crate) fn object(&self) -> Option<&'a Map<String, Value>> {
        self.value.as_object()
    }

    pub(crate) fn err(&self, message: impl Into<String>) -> SchemaError {
        SchemaError::new(self.file, &self.pointer, message)
    }

    pub(crate) fn err_at(&self, key: &str, message: impl Into<String>) -> SchemaError {
        let escaped = key.replace('~', "~0").replace('/', "~1");
        SchemaError::new(self.file, &format!("{}/{escaped}", self.pointer), message)
    }

    pub(crate) fn key(&self) -> String {
        format!("{}#{}", self.file, self.pointer)
    }
}

/// Builds the model of a whole folder, collecting every error.
pub(crate) fn convert(folder: &Folder) -> Result<Model, Vec<SchemaError>> {
    let mut converter = Converter {
        folder,
        model: Model::default(),
        located: BTreeMap::new(),
        names: BTreeMap::new(),
        in_progress: BTreeSet::new(),
        inlining: Vec::new(),
        events: BTreeMap::new(),
        categories: BTreeMap::new(),
        union_options: BTreeSet::new(),
    };
    for (file, value) in &folder.files {
        converter.collect_union_options(&At::root(file, value));
    }
    let mut errors = Vec::new();
    for (file, value) in &folder.files {
        // A type that failed when reached through a `$ref` fails again when its own file is
        // converted: the user sees the mistake once.
        if let Err(error) = converter.file(file, value)
            && !errors.contains(&error)
        {
            errors.push(error);
        }
    }
    if errors.is_empty() {
        Ok(converter.model)
    } else {
        Err(errors)
    }
}

pub(crate) struct Converter<'a> {
    folder: &'a Folder,
    model: Model,
    /// `file#pointer` (plus `|tag` for union payloads) -> Rust name.
    located: BTreeMap<String, String>,
    /// Rust name -> where it was defined, to report clashes.
    names: BTreeMap<String, String>,
    in_progress: BTreeSet<String>,
    /// `file#pointer` of each referenced non-named schema being inlined, innermost last: a
    /// `$ref` back to one of them is a cycle no Rust type can hold.
    inlining: Vec<String>,
    /// Event type -> file.
    events: BTreeMap<String, String>,
    /// Constant name in `categories` -> the category and the file that first used it, so two
    /// categories spelled differently (`user_command`, `user:command`) cannot share a constant.
    categories: BTreeMap<String, (String, String)>,
    /// `file#pointer` of every option of a tagged `oneOf` (the option itself, or what its
    /// `$ref` points to), found before any conversion: such a schema becomes a variant's
    /// payload without its tag, and whether it may also be used on its own must not depend on
    /// which file is converted first.
    union_options: BTreeSet<String>,
}

impl<'a> Converter<'a> {
    fn file(&mut self, file: &'a str, value: &'a Value) -> Result<()> {
        let at = At::root(file, value);
        let Some(object) = at.object() else {
            return Err(at.err("a schema file must hold a JSON object"));
        };
        if let Some(dialect) = at.get("$schema") {
            let text = dialect.value.as_str().unwrap_or_default();
            if !DIALECTS.contains(&text.trim_end_matches('#')) {
                return Err(dialect.err(format!(
                    "unsupported `$schema` {}; use draft 2020-12 (https://json-schema.org/draft/2020-12/schema) or draft-07",
                    dialect.value
                )));
            }
        }
        if object.contains_key("x-eventodb") {
            return self.event(&at);
        }
        let is_type = ["type", "properties", "enum", "oneOf"]
            .iter()
            .any(|key| object.contains_key(*key));
        // A file whose root is a `oneOf` option is generated with the union that holds it.
        if is_type && !self.union_options.contains(&at.key()) {
            let name = self.ref_name(&at);
            let (shape, _) = self.shape(&at, &name)?;
            if !matches!(shape.ty, Ty::Named { .. }) {
                // A shared scalar definition: nothing to generate until it is used.
                return Ok(());
            }
        }
        Ok(())
    }

    fn event(&mut self, at: &At<'a>) -> Result<()> {
        let title = at
            .get("title")
            .and_then(|title| title.value.as_str().map(str::to_owned))
            .filter(|title| naming::is_upper_camel(title))
            .ok_or_else(|| {
                at.err("an event schema needs a `title` in UpperCamelCase that is not a Rust keyword: its event type, e.g. \"UserCreated\"")
            })?;
        let Some(meta) = at.get("x-eventodb") else {
            unreachable!("checked by the caller")
        };
        let (category, stream) = parse_meta(&meta)?;
        let category_const = self.category_const(&meta, &category)?;
        if let Some(other) = self.events.get(&title) {
            return Err(at.err_at(
                "title",
                format!("event type `{title}` is already defined by `{other}`; each event type needs its own file"),
            ));
        }
        self.events.insert(title.clone(), at.file.to_owned());
        let is_object = at.get("type").is_some_and(|ty| ty.value == "object")
            && at.get("properties").is_some_and(|p| p.value.is_object());
        if !is_object {
            return Err(at.err(
                "an event must be an object: write `\"type\": \"object\"` with `properties`",
            ));
        }
        let name = self.named(at, &title, None)?.0;
        let parts = self.template(&meta, &stream, &category, &name)?;
        let Some(TypeKind::Struct(def)) = self.model.types.get_mut(&name).map(|ty| &mut ty.kind)
        else {
            return Err(not_a_struct(at));
        };
        def.event = Some(EventInfo {
            event_type: title,
            category,
            category_const,
            stream,
            parts,
        });
        Ok(())
    }

    /// The category's constant in `categories`, checked to be one no other category makes.
    fn category_const(&mut self, meta: &At<'a>, category: &str) -> Result<String> {
        let Some(name) = naming::shouty(category) else {
            return Err(meta.err_at(
                "category",
                format!("category `{category}` has no ASCII letter or digit to name its constant in `categories`"),
            ));
        };
        match self.categories.get(&name) {
            Some((other, file)) if other != category => Err(meta.err_at(
                "category",
                format!(
                    "categories `{other}` (in `{file}`) and `{category}` both become the constant `categories::{name}`; spell them alike or rename one"
                ),
            )),
            Some(_) => Ok(name),
            None => {
                self.categories
                    .insert(name.clone(), (category.to_owned(), meta.file.to_owned()));
                Ok(name)
            }
        }
    }

    /// Splits the stream template and checks each placeholder names a required scalar field.
    fn template(
        &self,
        meta: &At<'a>,
        stream: &str,
        category: &str,
        name: &str,
    ) -> Result<Vec<TemplatePart>> {
        let at = meta.get("stream").unwrap_or_else(|| meta.clone());
        let prefix = stream.split('-').next().unwrap_or_default();
        if prefix != category || !stream.contains('-') {
            return Err(at.err(format!(
                "stream template `{stream}` must start with the category and a dash, e.g. `{category}-{{id}}`"
            )));
        }
        let Some(TypeKind::Struct(def)) = self.model.types.get(name).map(|ty| &ty.kind) else {
            return Err(not_a_struct(meta));
        };
        let mut parts = Vec::new();
        let mut rest = stream;
        while let Some(open) = rest.find('{') {
            let text = &rest[..open];
            if text.contains('}') {
                return Err(at.err(format!("stream template `{stream}` has an unmatched `}}`")));
            }
            if !text.is_empty() {
                parts.push(TemplatePart::Text(text.to_owned()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(at.err(format!("stream template `{stream}` has an unclosed `{{`")));
            };
            let placeholder = &rest[open + 1..open + close];
            let field = def
                .fields
                .iter()
                .find(|field| field.json_name == placeholder)
                .ok_or_else(|| {
                    at.err(format!(
                        "stream placeholder `{{{placeholder}}}` is not a property of the event"
                    ))
                })?;
            if field.presence != Presence::Required {
                return Err(at.err(format!(
                    "stream placeholder `{{{placeholder}}}` must be a required, non-nullable property: add it to `required`"
                )));
            }
            if !matches!(field.shape.ty, Ty::String | Ty::Uuid | Ty::Int(_)) {
                return Err(at.err(format!(
                    "stream placeholder `{{{placeholder}}}` must be a string, uuid or integer property"
                )));
            }
            parts.push(TemplatePart::Field(field.ident.clone()));
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            return Err(at.err(format!("stream template `{stream}` has an unmatched `}}`")));
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Text(rest.to_owned()));
        }
        if !parts
            .iter()
            .any(|part| matches!(part, TemplatePart::Field(_)))
        {
            return Err(at.err(format!(
                "stream template `{stream}` has no placeholder; name the id property, e.g. `{category}-{{id}}`"
            )));
        }
        Ok(parts)
    }

    /// The Rust type for a schema that becomes a named type (struct, enum or union), generated
    /// once per location. Returns the name and whether it refers to a type being built (a
    /// recursive reference, to be boxed).
    pub(crate) fn named(
        &mut self,
        at: &At<'a>,
        name: &str,
        omit_tag: Option<&str>,
    ) -> Result<(String, bool)> {
        let key = match omit_tag {
            Some(tag) => format!("{}|{tag}", at.key()),
            None => at.key(),
        };
        if let Some(existing) = self.located.get(&key) {
            return Ok((existing.clone(), self.in_progress.contains(&key)));
        }
        let name = &naming::type_name(name);
        if name.is_empty() {
            return Err(at.err(
                "no Rust type name can be made from this schema's name (it has no ASCII letter or digit); give it a `title` in UpperCamelCase",
            ));
        }
        if naming::REGISTRY_NAMES.contains(&name.as_str()) {
            return Err(at.err(format!(
                "type name `{name}` is the generated registry's own; give the schema a different `title`"
            )));
        }
        let expected = if at.value.get("enum").is_some() {
            "string"
        } else {
            "object"
        };
        let (ty, _) = shape::json_type(at)?;
        let expected = if expected == "string" && ty == "integer" {
            "integer"
        } else {
            expected
        };
        if expected == "string" && ty != "string" {
            // Only string and integer enums become Rust enums; saying "`type` must be
            // `string`" would read as if the `type` were the mistake.
            return Err(at.err_at(
                "enum",
                format!(
                    "an `enum` of `{ty}` values is not supported: enums must list strings or integers; for a range of numbers use `minimum` and `maximum`"
                ),
            ));
        }
        if ty != expected {
            return Err(at.err_at(
                "type",
                format!("`type` must be `{expected}` for this schema, not `{ty}`"),
            ));
        }
        keywords::check(at, &[ty])?;
        let kind = if at.value.get("oneOf").is_some() {
            keywords::Named::Union
        } else if at.value.get("enum").is_some() && ty == "integer" {
            keywords::Named::IntEnum
        } else if at.value.get("enum").is_some() {
            keywords::Named::Enum
        } else {
            keywords::Named::Struct
        };
        if at.value.get("oneOf").is_some() && at.value.get("properties").is_some() {
            return Err(at.err_at(
                "properties",
                "`properties` beside `oneOf` is not supported; put them in each option",
            ));
        }
        keywords::check_named(at, kind)?;
        if omit_tag.is_none() && self.union_options.contains(&at.key()) {
            return Err(at.err(
                "this schema is an option of a tagged `oneOf` (a variant's payload, without its tag) and cannot also be used on its own",
            ));
        }
        if let Some(other) = self.names.get(name) {
            return Err(at.err(format!(
                "type name `{name}` is already generated from `{other}`; give one of them a different `title`"
            )));
        }
        self.names.insert(name.to_owned(), at.key());
        self.located.insert(key.clone(), name.to_owned());
        self.in_progress.insert(key.clone());
        // A named type breaks any cycle of inlined references (a `$ref` back to it is boxed
        // or sits in a collection), so its properties start a fresh chain.
        let outer = std::mem::take(&mut self.inlining);
        let kind = self.type_kind(at, name, omit_tag);
        self.inlining = outer;
        self.in_progress.remove(&key);
        let kind = match kind {
            Ok(kind) => kind,
            Err(error) => {
                // Forget the name, so a later `$ref` to this schema (or its own file, for an
                // event) converts it again and meets the same error, rather than a name with
                // no type behind it.
                self.located.remove(&key);
                self.names.remove(name);
                return Err(error);
            }
        };
        let doc = at
            .get("description")
            .and_then(|d| d.value.as_str())
            .map(str::to_owned)
            .unwrap_or_default();
        self.model.types.insert(
            name.to_owned(),
            TypeDef {
                name: name.to_owned(),
                doc,
                origin: if at.pointer.is_empty() {
                    at.file.to_owned()
                } else {
                    at.key()
                },
                kind,
            },
        );
        Ok((name.to_owned(), false))
    }

    fn type_kind(&mut self, at: &At<'a>, name: &str, omit_tag: Option<&str>) -> Result<TypeKind> {
        if let Some(one_of) = at.get("oneOf") {
            return self.union(at, &one_of, name);
        }
        if let Some(values) = at.get("enum") {
            return if shape::json_type(at)?.0 == "integer" {
                integer_enum(at, &values)
            } else {
                string_enum(&values)
            };
        }
        self.object(at, name, omit_tag).map(TypeKind::Struct)
    }

    fn object(&mut self, at: &At<'a>, name: &str, omit_tag: Option<&str>) -> Result<StructDef> {
        static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        let properties = match at.get("properties") {
            Some(properties) => properties
                .object()
                .ok_or_else(|| properties.err("`properties` must be an object"))?,
            None => &*EMPTY,
        };
        let properties_at = at.get("properties");
        let required = required_list(at)?;
        for name in &required {
            if !properties.contains_key(name) {
                return Err(at.err_at(
                    "required",
                    format!("required property `{name}` is not in `properties`"),
                ));
            }
        }
        let deny_unknown_fields = match at.get("additionalProperties") {
            None => false,
            Some(extra) => match extra.value {
                Value::Bool(allowed) => !allowed,
                _ => {
                    return Err(extra.err(
                        "`additionalProperties` with a schema beside `properties` is not supported; use `false`, `true`, or a map without `properties`",
                    ));
                }
            },
        };
        let mut fields = Vec::new();
        let mut idents = BTreeMap::new();
        // Sorted here: serde_json's map keeps file order when some crate in the build enables
        // its `preserve_order` feature, and the output must not depend on that.
        let mut properties: Vec<_> = properties.iter().collect();
        properties.sort_unstable_by_key(|(json_name, _)| *json_name);
        for (json_name, value) in properties {
            if Some(json_name.as_str()) == omit_tag {
                continue;
            }
            let Some(properties_at) = &properties_at else {
                unreachable!("there are properties")
            };
            let property = properties_at.child(json_name, value);
            let Some((ident, rename)) = naming::field_ident(json_name) else {
                return Err(property.err(format!(
                    "property `{json_name}` has no ASCII letter or digit to name its Rust field; rename the property"
                )));
            };
            if let Some(other) = idents.insert(ident.clone(), json_name.clone()) {
                return Err(property.err(format!(
                    "properties `{other}` and `{json_name}` both become the Rust field `{ident}`"
                )));
            }
            let hint = format!("{name}{}", naming::upper_camel(json_name));
            let (shape, nullable) = self.shape(&property, &hint)?;
            let is_required = required.contains(json_name);
            let presence = match (is_required, nullable, property.get("default")) {
                (true, false, _) => Presence::Required,
                (true, true, _) => Presence::RequiredNullable,
                // `"default": null` (Pydantic writes it on every optional property) says
                // what absence means, which `OptionalNullable` already reads as `None`.
                (false, true, None) => Presence::OptionalNullable,
                (false, true, Some(default)) if default.value.is_null() => {
                    Presence::OptionalNullable
                }
                (false, false, None) => Presence::Optional,
                (false, true, Some(default)) => {
                    return Err(default.err("`default` on a nullable property is not supported"));
                }
                (false, false, Some(default)) => {
                    self.check_default(&default, &shape)?;
                    Presence::Defaulted(default.value.clone())
                }
            };
            let doc = property
                .get("description")
                .and_then(|d| d.value.as_str())
                .map(str::to_owned);
            fields.push(Field {
                json_name: json_name.clone(),
                ident,
                rename,
                doc,
                shape,
                presence,
            });
        }
        Ok(StructDef {
            fields,
            deny_unknown_fields,
            event: None,
        })
    }

    fn check_default(&self, default: &At<'a>, shape: &crate::model::Shape) -> Result<()> {
        let ok = match &shape.ty {
            Ty::String => default.value.is_string(),
            Ty::Int(int) => int.holds(default.value),
            Ty::F64 => default.value.is_number(),
            Ty::F32 => fits_f32(default.value),
            Ty::Bool => default.value.is_boolean(),
            Ty::Named { name, .. } => match self.model.types.get(name).map(|ty| &ty.kind) {
                Some(TypeKind::Enum(variants)) => variants
                    .iter()
                    .any(|(_, value)| default.value.as_str() == Some(value)),
                Some(TypeKind::IntEnum(variants)) => variants
                    .iter()
                    .any(|(_, value)| default.value.as_i64() == Some(*value)),
                _ => false,
            },
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(default.err(
                "`default` is supported for strings, integers, numbers, booleans and enum values, and must match the property's type",
            ))
        }
    }

    fn union(&mut self, at: &At<'a>, one_of: &At<'a>, name: &str) -> Result<TypeKind> {
        let Some(options) = one_of
            .value
            .as_array()
            .filter(|options| !options.is_empty())
        else {
            return Err(one_of.err("`oneOf` must be a non-empty array"));
        };
        let need_tag = "`oneOf` is supported for objects told apart by a tag: every option an object whose required property holds a `const` string";
        let mut resolved = Vec::new();
        for (index, option) in options.iter().enumerate() {
            let option_at = one_of.child(&index.to_string(), option);
            let (target, via_ref) = match option_at.get("$ref") {
                Some(reference) => (self.resolve(&reference)?, true),
                None => (option_at.clone(), false),
            };
            let is_object = target
                .get("properties")
                .is_some_and(|p| p.value.is_object());
            if !is_object {
                return Err(option_at.err(need_tag));
            }
            resolved.push((option_at, target, via_ref));
        }
        // The tag: a property that is required and `const` in every option; the first such by
        // name, whatever order serde_json's map keeps (see `object`).
        let first = &resolved[0].1;
        let mut candidates = first
            .get("properties")
            .and_then(|p| {
                p.object()
                    .map(|map| map.keys().cloned().collect::<Vec<_>>())
            })
            .unwrap_or_default();
        candidates.sort_unstable();
        let tag = candidates
            .into_iter()
            .find(|candidate| {
                resolved.iter().all(|(_, target, _)| {
                    tag_value(target, candidate).is_some()
                        && required_list(target).is_ok_and(|req| req.contains(candidate))
                })
            })
            .ok_or_else(|| one_of.err(need_tag))?;
        // `required` beside the `oneOf` (`["kind"]`, a common spelling) holds when every
        // option requires the same names, as the generated enum then does; any other name
        // would be a rule the enum drops.
        if let Some(required) = at.get("required") {
            for name in required_list(at)? {
                let everywhere = resolved.iter().all(|(_, target, _)| {
                    required_list(target).is_ok_and(|names| names.contains(&name))
                });
                if !everywhere {
                    return Err(required.err(format!(
                        "`required` beside a tagged `oneOf` may only name properties every option requires; `{name}` is not required by every option"
                    )));
                }
            }
        }
        let mut variants: Vec<UnionVariant> = Vec::new();
        for (option_at, target, via_ref) in resolved {
            let value = tag_value(&target, &tag).unwrap_or_default();
            let Some(variant) = naming::variant_ident(&value) else {
                return Err(option_at.err(format!(
                    "tag value \"{value}\" has no ASCII letter or digit to name its Rust variant"
                )));
            };
            if variants.iter().any(|other| other.name == variant) {
                return Err(option_at.err(format!(
                    "two `oneOf` options have the tag `{tag}` = \"{value}\" (or names that clash as `{variant}`)"
                )));
            }
            let payload_name = if via_ref {
                self.ref_name(&target)
            } else {
                title_name(&target).unwrap_or_else(|| format!("{name}{variant}"))
            };
            let (payload, _) = self.named(&target, &payload_name, Some(&tag))?;
            let doc = target
                .get("description")
                .and_then(|d| d.value.as_str())
                .map(str::to_owned);
            variants.push(UnionVariant {
                name: variant,
                value,
                doc,
                payload,
            });
        }
        Ok(TypeKind::Union { tag, variants })
    }

    /// Records in `union_options` the options of every tagged `oneOf` under `at`, walking the
    /// keywords that hold schemas (not `examples`, `default` or a property named `oneOf`). A
    /// `$ref` that does not resolve is left for the conversion to report.
    fn collect_union_options(&mut self, at: &At<'a>) {
        if !at.value.is_object() {
            return;
        }
        if let Some(one_of) = at.get("oneOf")
            && let Some(options) = one_of.value.as_array()
            && shape::nullable_ref(at).is_none()
        {
            for (index, option) in options.iter().enumerate() {
                let option_at = one_of.child(&index.to_string(), option);
                match option_at.get("$ref") {
                    Some(reference) => {
                        if let Ok(target) = self.resolve(&reference) {
                            self.union_options.insert(target.key());
                        }
                    }
                    None => {
                        self.union_options.insert(option_at.key());
                    }
                }
            }
        }
        for keyword in ["properties", "$defs", "definitions"] {
            if let Some(map) = at.get(keyword)
                && let Some(object) = map.object()
            {
                for (key, child) in object {
                    self.collect_union_options(&map.child(key, child));
                }
            }
        }
        for keyword in ["items", "additionalProperties"] {
            if let Some(child) = at.get(keyword) {
                self.collect_union_options(&child);
            }
        }
        for keyword in ["oneOf", "anyOf"] {
            if let Some(list) = at.get(keyword)
                && let Some(items) = list.value.as_array()
            {
                for (index, item) in items.iter().enumerate() {
                    self.collect_union_options(&list.child(&index.to_string(), item));
                }
            }
        }
    }

    /// The node a `$ref` points to.
    pub(crate) fn resolve(&self, reference: &At<'a>) -> Result<At<'a>> {
        let Some(text) = reference.value.as_str() else {
            return Err(reference.err("`$ref` must be a string"));
        };
        if text.contains("://") || text.starts_with("urn:") {
            return Err(reference.err(format!(
                "remote `$ref` \"{text}\" is not supported; put the schema in the folder and refer to it by relative path"
            )));
        }
        let (path, fragment) = text.split_once('#').unwrap_or((text, ""));
        let path = percent_decoded(path);
        let path = path.as_str();
        let file = if path.is_empty() {
            reference.file.to_owned()
        } else {
            load::join(reference.file, path).ok_or_else(|| {
                reference.err(format!(
                    "unknown `$ref` \"{text}\": it leaves the schema folder"
                ))
            })?
        };
        let Some((file, root)) = self.folder.files.get_key_value(&file) else {
            return Err(reference.err(format!(
                "unknown `$ref` \"{text}\": no file `{file}` in the schema folder"
            )));
        };
        if fragment.is_empty() {
            return Ok(At::root(file, root));
        }
        // A fragment is URI text: `#/$defs/Foo%20Bar` names the key `Foo Bar`. A `%` that
        // starts no escape (`#/$defs/100%`) is read as written, as it was before escapes
        // were decoded, and as the file part is.
        let fragment = percent_decoded(fragment);
        let fragment = fragment.as_str();
        if !fragment.starts_with('/') {
            return Err(reference.err(format!(
                "unknown `$ref` \"{text}\": only JSON pointer fragments (`#/$defs/Name`) are supported"
            )));
        }
        let value = root.pointer(fragment).ok_or_else(|| {
            reference.err(format!(
                "unknown `$ref` \"{text}\": `{file}` has nothing at `{fragment}`"
            ))
        })?;
        Ok(At {
            file,
            pointer: fragment.to_owned(),
            value,
        })
    }

    /// The Rust name of a referenced type, the name the walk from its file's root gives it: a
    /// named node's `title`; else a `$defs` key; else its parent's name and the property name
    /// (`Item` for array items, `Value` for map values); the file's root is named by its `title`,
    /// else its file name.
    ///
    /// Computed from the pointer alone, so a type reached first through a `$ref` from another
    /// file gets the same name as when its own file is converted first: the names, and whether
    /// two of them clash, do not depend on the order of the files.
    pub(crate) fn ref_name(&self, target: &At<'a>) -> String {
        let Some((file, root)) = self.folder.files.get_key_value(target.file) else {
            unreachable!("references resolve to files of the folder")
        };
        let mut at = At::root(file, root);
        let mut name = if root.get("x-eventodb").is_some() {
            // An event is named by its title as written (see `event`).
            root.get("title")
                .and_then(Value::as_str)
                .map(naming::type_name)
                .unwrap_or_default()
        } else {
            title_name(&at).unwrap_or_else(|| {
                let stem = file.rsplit('/').next().unwrap_or(file);
                naming::upper_camel(stem.trim_end_matches(".json"))
            })
        };
        let mut segments = target
            .pointer
            .split('/')
            .skip(1)
            .map(|segment| segment.replace("~1", "/").replace("~0", "~"));
        while let Some(segment) = segments.next() {
            // A definition is reached only through references, which take its `title` whatever
            // its kind; a property's title counts only when it makes a named type.
            let definition = segment == "$defs" || segment == "definitions";
            let hint = match segment.as_str() {
                "$defs" | "definitions" | "properties" => {
                    let Some(key) = segments.next() else { break };
                    let Some(map) = at.value.get(&segment) else {
                        break;
                    };
                    let Some(child) = map.get(&key) else { break };
                    let hint = if segment == "properties" {
                        format!("{name}{}", naming::upper_camel(&key))
                    } else {
                        naming::upper_camel(&key)
                    };
                    at = at.child(&segment, map).child(&key, child);
                    hint
                }
                other => {
                    let child = match at.value {
                        Value::Array(items) => {
                            other.parse::<usize>().ok().and_then(|i| items.get(i))
                        }
                        value => value.get(other),
                    };
                    let Some(child) = child else { break };
                    let hint = match other {
                        "items" => format!("{name}Item"),
                        "additionalProperties" => format!("{name}Value"),
                        _ => format!("{name}{}", naming::upper_camel(other)),
                    };
                    at = at.child(other, child);
                    hint
                }
            };
            // A scalar, array or map passes its hint on to its items or values as is; a named
            // type passes its Rust name (see `named`).
            let named = shape::is_named(&at);
            let title = (named || definition).then(|| title_name(&at)).flatten();
            let base = title.unwrap_or(hint);
            name = if named {
                naming::type_name(&base)
            } else {
                base
            };
        }
        name
    }
}

/// `text` with its `%XX` escapes decoded, or as written when a `%` starts no escape or the
/// bytes are not UTF-8 (`100%` is a key as it stands).
fn percent_decoded(text: &str) -> String {
    decode_escapes(text).unwrap_or_else(|| text.to_owned())
}

/// `text` with its `%XX` escapes decoded; `None` for a bad escape or bytes that are not UTF-8.
fn decode_escapes(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An event whose name leads to no struct. `named` keeps no name whose conversion failed, so
/// this is a generator bug; still an error, not a panic in the user's build script.
fn not_a_struct(at: &At<'_>) -> SchemaError {
    at.err("internal error: this event did not become a struct; please report it with this schema")
}

fn parse_meta(meta: &At<'_>) -> Result<(String, String)> {
    let Some(object) = meta.object() else {
        return Err(meta.err("`x-eventodb` must be an object with `category` and `stream`"));
    };
    // Sorted, so the key reported does not depend on serde_json's `preserve_order`.
    let mut keys: Vec<&String> = object.keys().collect();
    keys.sort_unstable();
    for key in keys {
        if key != "category" && key != "stream" {
            return Err(meta.err_at(
                key,
                format!("unknown `x-eventodb` key `{key}`; the keys are `category` and `stream`"),
            ));
        }
    }
    let text = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| meta.err(format!("`x-eventodb` needs a non-empty string `{key}`")))
    };
    let category = text("category")?;
    if let Some(problem) = category_problem(&category) {
        return Err(meta.err_at("category", format!("category `{category}`: {problem}")));
    }
    Ok((category, text("stream")?))
}

/// What makes a category one `#[derive(Event)]` refuses, if anything. The same rules as the
/// derive's (eventodb-kit-macros `event/valid.rs`): a category it refuses would fail inside
/// the generated file in `OUT_DIR`, where the user cannot see which schema is at fault. The
/// generated impl (`derive_event(false)`) keeps them too, so both settings accept the same
/// schemas.
fn category_problem(category: &str) -> Option<&'static str> {
    if category.contains('-') {
        Some("a category must not contain `-`: EventoDB ends a stream's category at its first `-`")
    } else if category.contains(['{', '}']) {
        Some("a category must not contain `{` or `}`: it is the literal start of every stream name")
    } else if category
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        Some("a category must not contain spaces or control characters")
    } else {
        None
    }
}

fn required_list(at: &At<'_>) -> Result<BTreeSet<String>> {
    match at.get("required") {
        None => Ok(BTreeSet::new()),
        Some(required) => required
            .value
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect::<Option<BTreeSet<_>>>()
            })
            .ok_or_else(|| required.err("`required` must be an array of property names")),
    }
}

fn string_enum(values: &At<'_>) -> Result<TypeKind> {
    let Some(items) = values.value.as_array().filter(|items| !items.is_empty()) else {
        return Err(values.err("`enum` must be a non-empty array"));
    };
    let mut variants: Vec<(String, String)> = Vec::new();
    for item in items {
        let Some(text) = item.as_str() else {
            if item.is_null() {
                continue;
            }
            return Err(values.err(format!(
                "`enum` value {item} is not supported: enums must list strings"
            )));
        };
        let Some(name) = naming::variant_ident(text) else {
            return Err(values.err(format!(
                "`enum` value \"{text}\" has no ASCII letter or digit to name its Rust variant"
            )));
        };
        if variants.iter().any(|(other, _)| *other == name) {
            return Err(values.err(format!(
                "`enum` values clash: two of them become the Rust variant `{name}`"
            )));
        }
        variants.push((name, text.to_owned()));
    }
    Ok(TypeKind::Enum(variants))
}

/// An integer enum. Its variants are named by `x-enum-varnames` when the schema has it (the
/// OpenAPI generators' extension, one name per value, in order), otherwise by the values:
/// `Value1`, `ValueMinus1`; they are declared in order of value.
fn integer_enum(at: &At<'_>, values: &At<'_>) -> Result<TypeKind> {
    let Some(items) = values.value.as_array().filter(|items| !items.is_empty()) else {
        return Err(values.err("`enum` must be a non-empty array"));
    };
    // `null` in the list makes the property nullable (its `type` says so too), as in a
    // string enum: it is no variant.
    let items: Vec<&Value> = items.iter().filter(|item| !item.is_null()).collect();
    let names = match at.get("x-enum-varnames") {
        None => None,
        Some(names) => {
            let list = names
                .value
                .as_array()
                .and_then(|list| list.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
                .filter(|list| list.len() == items.len())
                .ok_or_else(|| {
                    names.err(format!(
                        "`x-enum-varnames` must list one name (a string) per `enum` value: {} of them",
                        items.len()
                    ))
                })?;
            Some(list)
        }
    };
    let mut variants: Vec<(String, i64)> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some(value) = item.as_i64() else {
            return Err(values.err(format!(
                "`enum` value {item} is not supported in an `integer` enum: list integers (from -2^63 to 2^63 - 1)"
            )));
        };
        if variants.iter().any(|(_, other)| *other == value) {
            return Err(values.err(format!("`enum` value {value} is listed twice")));
        }
        // The enum is generated as `i64` whatever the format; a value the format's type
        // cannot hold is still a schema no producer using that format could satisfy.
        let format = at.get("format");
        let format_name = format.as_ref().and_then(|format| format.value.as_str());
        if let Some((name, int)) =
            format_name.and_then(|name| Some((name, Int::from_format(name)?)))
        {
            let (min, max) = int.range();
            if !(min..=max).contains(&i128::from(value)) {
                return Err(values.err(format!(
                    "`enum` value {value} does not fit `format` \"{name}\" ({min} to {max})"
                )));
            }
        }
        let name = match &names {
            Some(names) => naming::variant_ident(names[index]).ok_or_else(|| {
                let at_names = at.get("x-enum-varnames").unwrap_or_else(|| values.clone());
                at_names.err(format!(
                    "`x-enum-varnames` name \"{}\" has no ASCII letter or digit to name a Rust variant",
                    names[index]
                ))
            })?,
            None if value < 0 => format!("ValueMinus{}", value.unsigned_abs()),
            None => format!("Value{value}"),
        };
        if variants.iter().any(|(other, _)| *other == name) {
            return Err(values.err(format!(
                "`enum` values clash: two of them become the Rust variant `{name}`"
            )));
        }
        variants.push((name, value));
    }
    // In order of value, whatever the list's: a user's `.derive("PartialOrd")` (or `Ord`)
    // then orders the variants as their numbers.
    variants.sort_by_key(|(_, value)| *value);
    Ok(TypeKind::IntEnum(variants))
}

fn tag_value(target: &At<'_>, property: &str) -> Option<String> {
    target
        .value
        .get("properties")?
        .get(property)?
        .get("const")?
        .as_str()
        .map(str::to_owned)
}

/// The `title` of a node as a type name, when it has one.
pub(crate) fn title_name(at: &At<'_>) -> Option<String> {
    at.value
        .get("title")
        .and_then(Value::as_str)
        .map(naming::upper_camel)
        .filter(|name| !name.is_empty())
}

/// Whether `value` is a number an `f32` holds (not rounded to infinity).
pub(super) fn fits_f32(value: &Value) -> bool {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the question is whether it fits"
    )]
    value.as_f64().is_some_and(|n| (n as f32).is_finite())
}
