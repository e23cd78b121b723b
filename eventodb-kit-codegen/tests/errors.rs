//! Every schema error: the build fails with the file, the JSON pointer and what is wrong.

use eventodb_kit_codegen::{Error, SchemaError, Settings};

/// Generates from in-memory files and returns the schema errors (panics if it succeeds).
fn errors(files: &[(&str, &str)]) -> Vec<SchemaError> {
    match Settings::new("unused").generate_sources(files.iter().copied()) {
        Ok(_) => panic!("expected a schema error"),
        Err(Error::Schema { errors }) => errors,
        Err(other) => panic!("expected a schema error, got {other}"),
    }
}

/// The one error, checked for file, pointer and a part of the message.
fn one(files: &[(&str, &str)], file: &str, pointer: &str, message: &str) {
    let errors = errors(files);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let error = &errors[0];
    assert_eq!(error.file, file, "{error}");
    assert_eq!(error.pointer, pointer, "{error}");
    assert!(
        error.message.contains(message),
        "message {:?} does not contain {message:?}",
        error.message
    );
}

/// A valid event schema with `extra` spliced into its properties and top level.
fn event(properties: &str, top: &str) -> String {
    format!(
        r#"{{
  "title": "ThingHappened",
  "x-eventodb": {{ "category": "thing", "stream": "thing-{{thing_id}}" }},
  "type": "object",
  "required": ["thing_id"],
  "properties": {{ "thing_id": {{ "type": "string" }}{properties} }}{top}
}}"#
    )
}

#[test]
fn unknown_ref_to_a_missing_file() {
    let schema = event(r#", "a": { "$ref": "common/nope.json" }"#, "");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/a/$ref",
        "unknown `$ref` \"common/nope.json\": no file `common/nope.json` in the schema folder",
    );
}

#[test]
fn unknown_ref_fragment() {
    let schema = event(r##", "a": { "$ref": "#/$defs/Missing" }"##, "");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/a/$ref",
        "`thing.json` has nothing at `/$defs/Missing`",
    );
}

#[test]
fn remote_refs_are_refused() {
    let schema = event(r#", "a": { "$ref": "https://example.com/a.json" }"#, "");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/a/$ref",
        "remote `$ref`",
    );
}

#[test]
fn placeholder_that_is_not_a_property() {
    let schema = event("", "").replace("thing-{thing_id}", "thing-{thing_key}");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/x-eventodb/stream",
        "stream placeholder `{thing_key}` is not a property of the event",
    );
}

#[test]
fn placeholder_that_is_not_required() {
    let schema = event(r#", "other": { "type": "string" }"#, "")
        .replace("thing-{thing_id}", "thing-{thing_id}+{other}");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/x-eventodb/stream",
        "stream placeholder `{other}` must be a required, non-nullable property",
    );
}

#[test]
fn placeholder_of_an_unsupported_type() {
    let schema = event("", "").replace(
        r#""thing_id": { "type": "string" }"#,
        r#""thing_id": { "type": "boolean" }"#,
    );
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/x-eventodb/stream",
        "must be a string, uuid or integer property",
    );
}

#[test]
fn stream_template_outside_the_category() {
    let schema = event("", "").replace("thing-{thing_id}", "other-{thing_id}");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/x-eventodb/stream",
        "must start with the category and a dash",
    );
}

#[test]
fn two_files_with_one_event_type() {
    let schema = event("", "");
    one(
        &[("a.json", &schema), ("b.json", &schema)],
        "b.json",
        "/title",
        "event type `ThingHappened` is already defined by `a.json`",
    );
}

#[test]
fn non_object_event() {
    let schema = r#"{ "title": "ThingHappened", "x-eventodb": { "category": "thing", "stream": "thing-{id}" }, "type": "string" }"#;
    one(
        &[("thing.json", schema)],
        "thing.json",
        "",
        "an event must be an object",
    );
}

#[test]
fn event_without_an_upper_camel_title() {
    let schema = event("", "").replace("ThingHappened", "thing_happened");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "",
        "needs a `title` in UpperCamelCase",
    );
}

#[test]
fn bad_x_eventodb() {
    let schema = event("", "").replace(
        r#""category": "thing","#,
        r#""category": "thing", "kind": "x","#,
    );
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/x-eventodb/kind",
        "unknown `x-eventodb` key `kind`",
    );
    let schema = event("", "").replace(r#""category": "thing""#, r#""category": "th-ing""#);
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/x-eventodb/category",
        "must not contain `-`",
    );
}

#[test]
fn a_category_the_event_derive_refuses() {
    // Each would otherwise fail inside the generated file, in `#[derive(Event)]`.
    for (category, message) in [
        ("my thing", "must not contain spaces or control characters"),
        (
            "tab\\tthing",
            "must not contain spaces or control characters",
        ),
        ("th}ing", "must not contain `{` or `}`"),
        ("th{ing", "must not contain `{` or `}`"),
    ] {
        let schema = event("", "").replace(
            r#""category": "thing", "stream": "thing-"#,
            &format!(r#""category": "{category}", "stream": "{category}-"#),
        );
        one(
            &[("thing.json", &schema)],
            "thing.json",
            "/x-eventodb/category",
            message,
        );
    }
}

#[test]
fn unknown_type() {
    let schema = event(r#", "a": { "type": "text" }"#, "");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/a/type",
        "unknown type `text`",
    );
}

#[test]
fn several_types() {
    let schema = event(r#", "a": { "type": ["string", "integer"] }"#, "");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/a/type",
        "a value of several types (string, integer) is not supported",
    );
}

#[test]
fn schema_without_a_type() {
    let schema = event(r#", "a": { "description": "anything?" }"#, "");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/a",
        "the schema has no `type`",
    );
}

#[test]
fn unsupported_keyword() {
    let schema = event(r#", "a": { "allOf": [{ "type": "string" }] }"#, "");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/a/allOf",
        "keyword `allOf` is not supported",
    );
}

#[test]
fn unknown_keyword() {
    let schema = event(r#", "a": { "type": "string", "maxLenght": 3 }"#, "");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/a/maxLenght",
        "unknown keyword `maxLenght` (extensions must start with `x-`)",
    );
}

#[test]
fn keyword_for_another_type() {
    let schema = event(r#", "a": { "type": "integer", "minLength": 3 }"#, "");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/a/minLength",
        "keyword `minLength` applies to strings, not to `integer`",
    );
}

#[test]
fn unsupported_format() {
    let schema = event(r#", "a": { "type": "string", "format": "hostname" }"#, "");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/a/format",
        "unsupported format \"hostname\"",
    );
}

#[test]
fn numeric_formats_are_checked() {
    for (property, pointer, message) in [
        (
            r#"{ "type": "integer", "format": "int128" }"#,
            "/properties/a/format",
            "unsupported format \"int128\" for an integer; supported: int8, int16, int32, int64, uint8, uint16, uint32, uint64",
        ),
        (
            r#"{ "type": "number", "format": "decimal" }"#,
            "/properties/a/format",
            "unsupported format \"decimal\" for a number; supported: float, double",
        ),
        (
            r#"{ "type": "integer", "format": "uuid" }"#,
            "/properties/a/format",
            "unsupported format \"uuid\" for an integer",
        ),
        (
            r#"{ "type": "integer", "format": "int3", "enum": [1, 2] }"#,
            "/properties/a/format",
            "unsupported format \"int3\" for an integer",
        ),
        (
            r#"{ "type": "integer", "format": "uint8", "enum": [1, 300] }"#,
            "/properties/a/enum",
            "`enum` value 300 does not fit `format` \"uint8\" (0 to 255)",
        ),
        (
            r#"{ "type": ["integer", "null"], "format": "int16", "enum": [null, -32769] }"#,
            "/properties/a/enum",
            "`enum` value -32769 does not fit `format` \"int16\" (-32768 to 32767)",
        ),
        (
            r#"{ "type": "boolean", "format": "int32" }"#,
            "/properties/a/format",
            "keyword `format` applies to strings, integers and numbers, not to `boolean`",
        ),
        // A value the format's type cannot hold.
        (
            r#"{ "type": "integer", "format": "uint8", "const": 256 }"#,
            "/properties/a/const",
            "`const` is supported for strings, numbers and booleans, matching the `type`",
        ),
        (
            r#"{ "type": "integer", "format": "int8", "const": -129 }"#,
            "/properties/a/const",
            "matching the `type`",
        ),
        (
            r#"{ "type": "integer", "format": "uint32", "default": -1 }"#,
            "/properties/a/default",
            "must match the property's type",
        ),
        (
            r#"{ "type": "number", "format": "float", "default": 1e300 }"#,
            "/properties/a/default",
            "must match the property's type",
        ),
    ] {
        let schema = event(&format!(r#", "a": {property}"#), "");
        one(&[("thing.json", &schema)], "thing.json", pointer, message);
    }
}

#[test]
fn pattern_that_does_not_compile() {
    let schema = event(r#", "a": { "type": "string", "pattern": "^(?!x)" }"#, "");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/a/pattern",
        "does not compile as a Rust regex",
    );
}

#[test]
fn one_of_without_a_tag() {
    let schema = event(
        r#", "a": { "oneOf": [ { "type": "object", "properties": { "x": { "type": "string" } } } ] }"#,
        "",
    );
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/a/oneOf",
        "told apart by a tag",
    );
}

#[test]
fn array_without_items_and_object_without_properties() {
    let schema = event(r#", "a": { "type": "array" }"#, "");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/a",
        "an array needs `items`",
    );
    let schema = event(r#", "a": { "type": "object" }"#, "");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/a",
        "an object needs `properties`",
    );
}

#[test]
fn default_of_the_wrong_type() {
    let schema = event(r#", "a": { "type": "integer", "default": "ten" }"#, "");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/a/default",
        "must match the property's type",
    );
}

#[test]
fn required_property_that_does_not_exist() {
    let schema = event("", "").replace(
        r#""required": ["thing_id"]"#,
        r#""required": ["thing_id", "ghost"]"#,
    );
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/required",
        "required property `ghost` is not in `properties`",
    );
}

#[test]
fn two_types_with_one_name() {
    let schema = event(
        r#", "a": { "title": "Part", "type": "object", "properties": {} }, "b": { "title": "Part", "type": "object", "properties": {} }"#,
        "",
    );
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/b",
        "type name `Part` is already generated from `thing.json#/properties/a`",
    );
}

#[test]
fn unsupported_dialect() {
    let schema = event(
        "",
        r#", "$schema": "http://json-schema.org/draft-04/schema#""#,
    );
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/$schema",
        "unsupported `$schema`",
    );
}

#[test]
fn errors_of_every_file_are_listed() {
    let bad_type = event(r#", "a": { "type": "text" }"#, "").replace("ThingHappened", "First");
    let bad_ref = event(r#", "a": { "$ref": "nope.json" }"#, "").replace("ThingHappened", "Second");
    let errors = errors(&[("one.json", &bad_type), ("two.json", &bad_ref)]);
    let files: Vec<&str> = errors.iter().map(|error| error.file.as_str()).collect();
    assert_eq!(files, ["one.json", "two.json"]);
    let message = Error::Schema { errors }.to_string();
    assert!(message.starts_with("2 schema errors:"), "{message}");
    assert!(
        message.contains("one.json at /properties/a/type: unknown type `text`"),
        "{message}"
    );
}

#[test]
fn invalid_json_names_the_file() {
    match Settings::new("unused").generate_sources([("broken.json", "{ \"title\": ")]) {
        Err(Error::Json { path, .. }) => assert_eq!(path.to_string_lossy(), "broken.json"),
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

#[test]
fn a_folder_that_does_not_exist_is_an_io_error() {
    let missing = std::env::temp_dir().join("eventodb-kit-codegen-no-such-folder");
    assert!(matches!(
        Settings::new(missing).generate(),
        Err(Error::Io { .. })
    ));
}

#[test]
fn an_enum_of_numbers_is_refused_as_such() {
    let schema = event(r#", "level": { "type": "number", "enum": [0.5, 1.5] }"#, "");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/level/enum",
        "an `enum` of `number` values is not supported: enums must list strings or integers",
    );
}

#[test]
fn bad_integer_enums_are_refused() {
    for (property, pointer, message) in [
        (
            r#"{ "type": "integer", "enum": [1, 2.5] }"#,
            "/properties/level/enum",
            "`enum` value 2.5 is not supported in an `integer` enum",
        ),
        (
            r#"{ "type": "integer", "enum": [1, 1] }"#,
            "/properties/level/enum",
            "`enum` value 1 is listed twice",
        ),
        (
            r#"{ "type": "integer", "enum": [1, 2], "x-enum-varnames": ["One"] }"#,
            "/properties/level/x-enum-varnames",
            "`x-enum-varnames` must list one name (a string) per `enum` value: 2 of them",
        ),
        (
            r#"{ "type": "integer", "enum": [1, 2], "x-enum-varnames": ["Same", "same"] }"#,
            "/properties/level/enum",
            "`enum` values clash: two of them become the Rust variant `Same`",
        ),
        (
            r#"{ "type": "integer", "enum": [1, 2], "default": 3 }"#,
            "/properties/level/default",
            "`default` is supported for strings, integers, numbers, booleans and enum values",
        ),
    ] {
        let schema = event(&format!(r#", "level": {property}"#), "");
        one(&[("thing.json", &schema)], "thing.json", pointer, message);
    }
}

#[test]
fn a_type_that_is_an_array_or_map_of_itself_is_refused() {
    // Before, the build script overflowed its stack.
    for (def, pointer) in [
        (
            r##""List": { "type": "array", "items": { "$ref": "#/$defs/List" } }"##,
            "/$defs/List/items/$ref",
        ),
        (
            r##""List": { "type": "object", "additionalProperties": { "$ref": "#/$defs/List" } }"##,
            "/$defs/List/additionalProperties/$ref",
        ),
    ] {
        let schema = event(
            r##", "nested": { "$ref": "#/$defs/List" }"##,
            &format!(r#", "$defs": {{ {def} }}"#),
        );
        one(
            &[("thing.json", &schema)],
            "thing.json",
            pointer,
            "refers back to itself through arrays, maps or other references",
        );
    }
}

#[test]
fn a_keyword_beside_a_nullable_reference() {
    let schema = event(
        r##", "a": { "anyOf": [{ "type": "null" }, { "$ref": "#/$defs/A" }], "minProperties": 1 }"##,
        r#", "$defs": { "A": { "type": "object", "properties": { "b": { "type": "string" } } } }"#,
    );
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/a/minProperties",
        "beside a nullable reference",
    );
}

#[test]
fn a_mistake_in_an_event_referenced_from_a_file_before_it_is_reported_once() {
    // `a_shared.json` sorts first and reaches the event through a `$ref`; the event's own
    // conversion then used to find its name taken with no struct behind it (a panic).
    let event = event(
        r#", "host": { "type": "string", "format": "hostname" }"#,
        "",
    );
    let shared = r#"{ "title": "Holder", "type": "object",
        "properties": { "thing": { "$ref": "thing.json" } } }"#;
    one(
        &[("a_shared.json", shared), ("thing.json", &event)],
        "thing.json",
        "/properties/host/format",
        "unsupported format \"hostname\"",
    );
}

#[test]
fn keywords_a_named_type_would_drop_are_refused() {
    // Each keyword is accepted for the node's JSON type, but a generated struct, enum or
    // union could not check it: it used to be read and then silently ignored.
    for (property, pointer, message) in [
        (
            r#""m": { "type": "object", "additionalProperties": { "type": "string" }, "required": ["a"] }"#,
            "/properties/m/required",
            "`required` on a map",
        ),
        (
            r#""o": { "type": "object", "properties": { "p": { "type": "string" } }, "minProperties": 1 }"#,
            "/properties/o/minProperties",
            "keyword `minProperties` is not supported on an object with `properties`",
        ),
        (
            r#""c": { "type": "object", "properties": { "p": { "type": "string" } }, "const": { "p": "x" } }"#,
            "/properties/c/const",
            "keyword `const` is not supported on an object with `properties`",
        ),
        (
            r#""e": { "type": "string", "enum": ["a", "bb"], "minLength": 2 }"#,
            "/properties/e/minLength",
            "keyword `minLength` is not supported on an `enum`",
        ),
        (
            r#""n": { "type": "integer", "enum": [1, 2], "maximum": 1 }"#,
            "/properties/n/maximum",
            "keyword `maximum` is not supported on an integer `enum` (a generated Rust enum); only `type`, `enum`, `format` are read there",
        ),
        (
            r#""u": { "oneOf": [ { "type": "object", "required": ["k"], "properties": { "k": { "const": "a" } } } ], "required": ["k", "x"] }"#,
            "/properties/u/required",
            "`x` is not required by every option",
        ),
    ] {
        let schema = event(&format!(", {property}"), "");
        one(&[("thing.json", &schema)], "thing.json", pointer, message);
    }
    // Through a `$ref` too: the error is at the referenced schema.
    let schema = event(
        r##", "o": { "$ref": "#/$defs/O" }"##,
        r#", "$defs": { "O": { "type": "object", "properties": { "p": { "type": "string" } }, "maxProperties": 1 } }"#,
    );
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/$defs/O/maxProperties",
        "keyword `maxProperties` is not supported on an object with `properties`",
    );
}

#[test]
fn a_ref_to_a_one_of_option_is_refused_at_the_reference_whatever_the_file_order() {
    let holder = r#"{ "title": "Holder", "type": "object", "properties": { "u": { "oneOf": [
        { "type": "object", "properties": { "k": { "const": "x" }, "v": { "type": "string" } }, "required": ["k"] },
        { "type": "object", "properties": { "k": { "const": "y" } }, "required": ["k"] } ] } } }"#;
    let user = r#"{ "title": "User", "type": "object",
        "properties": { "opt": { "$ref": "b.json#/properties/u/oneOf/0" } } }"#;
    // `a.json` sorts before `b.json`, `z.json` after it: it used to build in one order and
    // fail in the other, with the error in `b.json`.
    for referring in ["a.json", "z.json"] {
        one(
            &[(referring, user), ("b.json", holder)],
            referring,
            "/properties/opt/$ref",
            "`$ref` to `b.json#/properties/u/oneOf/0`, an option of a tagged `oneOf`",
        );
    }
}

#[test]
fn a_file_that_is_a_one_of_option_is_generated_with_its_union_whatever_the_file_order() {
    let circle = r#"{ "title": "Circle", "type": "object", "required": ["kind"],
        "properties": { "kind": { "const": "circle" }, "r": { "type": "number" } } }"#;
    let holder = r#"{ "title": "Holder", "type": "object", "properties": { "shape": { "oneOf": [
        { "$ref": "CIRCLE" },
        { "type": "object", "properties": { "kind": { "const": "dot" } }, "required": ["kind"] } ] } } }"#;
    for (circle_file, holder_file) in [("a.json", "b.json"), ("b.json", "a.json")] {
        let holder = holder.replace("CIRCLE", circle_file);
        let code = Settings::new("unused")
            .generate_sources([(circle_file, circle), (holder_file, holder.as_str())])
            .unwrap_or_else(|error| panic!("{circle_file}: {error}"))
            .to_pretty_string()
            .expect("parses");
        assert!(code.contains("Circle(Circle)"), "{code}");
    }
}

#[test]
fn null_in_an_enum_whose_type_forbids_it_is_refused() {
    for property in [
        r#""tn": { "type": "string", "enum": ["a", null] }"#,
        r#""tn": { "type": "integer", "enum": [1, null] }"#,
    ] {
        let schema = event(&format!(", {property}"), "");
        one(
            &[("thing.json", &schema)],
            "thing.json",
            "/properties/tn/enum",
            "`enum` lists `null` but `type` does not allow it",
        );
    }
}

#[test]
fn common_spellings_that_were_refused_are_accepted() {
    // Each used to be a schema error; each is also in basics/nullable_refs.json, where the
    // codegen-user agreement test judges it.
    let defs = r#", "$defs": { "Place": { "type": "object", "properties": { "name": { "type": "string" } } },
        "Foo Bar": { "type": "object", "properties": { "v": { "type": "string" } } },
        "100%": { "type": "object", "properties": { "w": { "type": "string" } } } }"#;
    for property in [
        r##""p": { "anyOf": [ { "$ref": "#/$defs/Place" }, { "type": "null" } ], "default": null }"##,
        r#""p": { "type": ["string", "null"], "default": null }"#,
        r##""p": { "oneOf": [ { "$ref": "#/$defs/Place" }, { "type": "null", "description": "none" } ] }"##,
        r##""p": { "$ref": "#/$defs/Foo%20Bar" }"##,
        // A `%` that starts no escape is the key as written.
        r##""p": { "$ref": "#/$defs/100%" }"##,
        r#""p": { "enum": [1, 2] }"#,
        // The tag, which every option requires, listed beside the `oneOf` too.
        r#""p": { "oneOf": [ { "type": "object", "required": ["k"], "properties": { "k": { "const": "a" } } } ], "required": ["k"] }"#,
    ] {
        let schema = event(&format!(", {property}"), defs);
        if let Err(error) =
            Settings::new("unused").generate_sources([("thing.json", schema.as_str())])
        {
            panic!("{property}: {error}");
        }
    }
    // A mixed list is refused with what it may hold.
    let schema = event(r#", "p": { "enum": [1, "a"] }"#, "");
    one(
        &[("thing.json", &schema)],
        "thing.json",
        "/properties/p/enum",
        "`enum` values must be all strings or all integers",
    );
}
