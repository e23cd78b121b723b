//! Rust names made from JSON names: any name either becomes a valid identifier or fails with a
//! schema error naming the file and the node; never a panic, never code that does not parse.
//! (`tests/golden/names.rs`, compiled by `tests/codegen-user`, covers the names that work.)

use eventodb_kit_codegen::{Error, SchemaError, Settings};

/// An event whose extra properties are `properties`, with `defs` as its `$defs`.
fn event(title: &str, category: &str, properties: &str, defs: &str) -> String {
    format!(
        r#"{{
  "title": "{title}",
  "x-eventodb": {{ "category": "{category}", "stream": "{category}-{{id}}" }},
  "type": "object",
  "required": ["id"],
  "properties": {{ "id": {{ "type": "string" }}{properties} }},
  "$defs": {{ {defs} }}
}}"#
    )
}

fn generate(files: &[(&str, &str)]) -> Result<String, Error> {
    Settings::new("unused")
        .generate_sources(files.iter().copied())?
        .to_pretty_string()
}

/// The one schema error, checked for file, pointer and a part of the message.
fn one(files: &[(&str, &str)], file: &str, pointer: &str, message: &str) {
    let errors: Vec<SchemaError> = match generate(files) {
        Err(Error::Schema { errors }) => errors,
        other => panic!("expected a schema error, got {other:?}"),
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    let error = &errors[0];
    assert_eq!(
        (error.file.as_str(), error.pointer.as_str()),
        (file, pointer),
        "{error}"
    );
    assert!(error.message.contains(message), "{error}");
}

#[test]
fn non_identifier_characters_are_dropped_and_the_json_name_kept() {
    // `²` is alphanumeric but not an identifier character: this used to panic in `Ident::new`.
    let schema = event(
        "Measured",
        "measure",
        r#", "area_m²": { "type": "number" }, "unit": { "enum": ["m²", "ft²"] }"#,
        "",
    );
    let code = generate(&[("measured.json", &schema)]).expect("generates");
    for expected in [
        "#[serde(rename = \"area_m²\")]",
        "pub area_m: ::core::option::Option<f64>,",
        "#[serde(rename = \"m²\")]",
        "    M,",
    ] {
        assert!(code.contains(expected), "{expected} not in {code}");
    }
}

#[test]
fn a_property_with_nothing_usable_is_a_schema_error() {
    let schema = event("Measured", "measure", r#", "²": { "type": "number" }"#, "");
    one(
        &[("measured.json", &schema)],
        "measured.json",
        "/properties/²",
        "property `²` has no ASCII letter or digit to name its Rust field",
    );
}

#[test]
fn an_enum_value_with_nothing_usable_is_a_schema_error() {
    let schema = event(
        "Measured",
        "measure",
        r#", "unit": { "enum": ["m", "²"] }"#,
        "",
    );
    one(
        &[("measured.json", &schema)],
        "measured.json",
        "/properties/unit/enum",
        "`enum` value \"²\" has no ASCII letter or digit",
    );
}

#[test]
fn a_type_with_nothing_usable_is_a_schema_error() {
    let schema = event(
        "Measured",
        "measure",
        r##", "a": { "$ref": "#/$defs/²" }"##,
        r#""²": { "type": "object", "properties": {} }"#,
    );
    one(
        &[("measured.json", &schema)],
        "measured.json",
        "/$defs/²",
        "no Rust type name can be made from this schema's name",
    );
}

#[test]
fn a_keyword_type_name_gets_a_suffix() {
    // `self` used to become `pub struct Self`, which does not parse.
    let schema = event(
        "Measured",
        "measure",
        r##", "a": { "$ref": "#/$defs/self" }, "b": { "title": "Self", "type": "object", "properties": {} }"##,
        r#""self": { "type": "object", "properties": {} }"#,
    );
    one(
        &[("measured.json", &schema)],
        "measured.json",
        "/properties/b",
        "type name `SelfType` is already generated from `measured.json#/$defs/self`",
    );
    let schema = event(
        "Measured",
        "measure",
        r##", "a": { "$ref": "#/$defs/self" }"##,
        r#""self": { "type": "object", "properties": {} }"#,
    );
    let code = generate(&[("measured.json", &schema)]).expect("generates");
    assert!(code.contains("pub struct SelfType {"), "{code}");
}

#[test]
fn an_event_titled_self_is_refused() {
    let schema = event("Self", "measure", "", "");
    one(
        &[("self.json", &schema)],
        "self.json",
        "",
        "not a Rust keyword",
    );
}

#[test]
fn registry_names_are_refused() {
    for name in ["Events", "AnyEvent"] {
        let schema = event(name, "measure", "", "");
        one(
            &[("event.json", &schema)],
            "event.json",
            "",
            &format!("type name `{name}` is the generated registry's own"),
        );
        let schema = event(
            "Measured",
            "measure",
            &format!(r#", "a": {{ "title": "{name}", "type": "object", "properties": {{}} }}"#),
            "",
        );
        one(
            &[("event.json", &schema)],
            "event.json",
            "/properties/a",
            "the generated registry's own",
        );
    }
}

#[test]
fn two_categories_with_one_constant_are_refused() {
    let first = event("First", "user_command", "", "");
    let second = event("Second", "user:command", "", "");
    one(
        &[("a.json", &first), ("b.json", &second)],
        "b.json",
        "/x-eventodb/category",
        "categories `user_command` (in `a.json`) and `user:command` both become the constant `categories::USER_COMMAND`",
    );
    // One category in several files is fine.
    let second = event("Second", "user_command", "", "");
    generate(&[("a.json", &first), ("b.json", &second)]).expect("generates");
}

#[test]
fn a_category_with_nothing_usable_is_a_schema_error() {
    let schema = event("Measured", "€", "", "");
    one(
        &[("measured.json", &schema)],
        "measured.json",
        "/x-eventodb/category",
        "category `€` has no ASCII letter or digit",
    );
}

/// Every awkward name, as a property, an enum value, a `$defs` key, a title and a category:
/// generation either succeeds with code that parses or returns a schema error.
#[test]
fn no_name_panics_or_breaks_the_code() {
    let names = [
        "",
        "_",
        "__",
        "$",
        "²",
        "a²",
        "m²",
        "é",
        "😀",
        "0",
        "2fa",
        "self",
        "Self",
        "crate",
        "super",
        "type",
        "r#type",
        "a b",
        "-",
        "Option",
        "String",
        "Vec",
        "Box",
        "Result",
        "Events",
        "AnyEvent",
        "categories",
        "__eventodb",
    ];
    for name in names {
        let quoted = serde_json::to_string(name).expect("a string");
        let defs = format!(r#"{quoted}: {{ "type": "object", "properties": {{}} }}"#);
        let reference = serde_json::to_string(&format!(
            "#/$defs/{}",
            name.replace('~', "~0").replace('/', "~1")
        ))
        .expect("a string");
        let properties = format!(
            r#", {quoted}: {{ "type": "string" }}, "e": {{ "enum": [{quoted}] }}, "d": {{ "$ref": {reference} }}, "t": {{ "title": {quoted}, "type": "object", "properties": {{}} }}"#
        );
        let category = name.replace(['-', '{', '"', '\\'], "");
        for schema in [
            event("Awkward", "thing", &properties, &defs),
            event("Awkward", &category, "", ""),
        ] {
            match generate(&[("awkward.json", &schema)]) {
                Ok(_) | Err(Error::Schema { .. }) => {}
                Err(other) => panic!("{name:?}: {other}"),
            }
        }
    }
}

#[test]
fn a_type_referenced_inside_another_file_is_named_the_same_in_any_file_order() {
    // `user_created.json#/properties/address` is the struct `UserCreatedAddress` whether the
    // file that refers to it is converted before (`a_…`) or after (`z_…`) `user_created.json`;
    // it used to be named after the file, `UserCreated`, and clash with the event.
    let user = event(
        "UserCreated",
        "user",
        r##", "address": { "type": "object", "properties": { "zip": { "type": "string" } } },
            "lines": { "$ref": "#/$defs/Lines" }"##,
        r#""Lines": { "type": "array", "items": { "type": "object", "properties": { "sku": { "type": "string" } } } },
           "Tags": { "title": "TagList", "type": "array", "items": { "type": "object", "properties": { "tag": { "type": "string" } } } }"#,
    );
    let order = event(
        "OrderPlaced",
        "order",
        r#", "ship_to": { "$ref": "user_created.json#/properties/address" },
            "lines": { "$ref": "user_created.json#/$defs/Lines" },
            "tags": { "$ref": "user_created.json#/$defs/Tags" },
            "tag": { "$ref": "user_created.json#/$defs/Tags/items" }"#,
        "",
    );
    let mut outputs = Vec::new();
    for referrer in ["a_order.json", "z_order.json"] {
        let code = generate(&[(referrer, &order), ("user_created.json", &user)])
            .unwrap_or_else(|error| panic!("{referrer}: {error}"));
        for expected in [
            "pub struct UserCreatedAddress {",
            "pub ship_to: ::core::option::Option<UserCreatedAddress>,",
            "pub struct LinesItem {",
            "pub lines: ::core::option::Option<::std::vec::Vec<LinesItem>>,",
            // A definition's `title` names it even when it is an array, as before.
            "pub tags: ::core::option::Option<::std::vec::Vec<TagListItem>>,",
            "pub tag: ::core::option::Option<TagListItem>,",
        ] {
            assert!(
                code.contains(expected),
                "{referrer}: {expected} not in {code}"
            );
        }
        outputs.push(code.replace(referrer, "order.json"));
    }
    assert_eq!(outputs[0], outputs[1]);
}

/// An integer enum kept in `$defs`, referenced twice and once nullable: one type, its
/// variants named by value (`ValueMinus1` for a negative one), `Option` where `null` is
/// allowed.
#[test]
fn integer_enums_are_named_by_value_and_shared() {
    let schema = event(
        "LevelSet",
        "level",
        r##", "now": { "$ref": "#/$defs/Level" },
            "before": { "type": ["integer", "null"], "enum": [-1, 1, null] }"##,
        r#""Level": { "type": "integer", "enum": [7, -1, 0] }"#,
    );
    let code = generate(&[("level.json", &schema)]).expect("generates");
    for expected in [
        "pub enum Level {",
        "ValueMinus1,",
        "Value0,",
        "Value7,",
        "pub now: ::core::option::Option<Level>",
        "pub before: ::core::option::Option<LevelSetBefore>",
        "-1 => ::core::result::Result::Ok(Self::ValueMinus1)",
    ] {
        assert!(code.contains(expected), "{expected} in:\n{code}");
    }
    assert_eq!(code.matches("pub enum Level {").count(), 1);
    // Declared in order of value, whatever the list's.
    let declared = &code[code.find("pub enum Level {").unwrap()..];
    let at = |variant: &str| declared.find(variant).unwrap();
    assert!(at("ValueMinus1,") < at("Value0,") && at("Value0,") < at("Value7,"));
}
