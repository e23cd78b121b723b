//! For every event schema (the workspace's `schemas/` and the codegen's `basics` test folder):
//! each example round-trips unchanged, and on the examples plus hundreds of mutations of them,
//! three judges agree on what is valid: the source schema (evaluated by the `jsonschema` crate,
//! formats on), the generated type's `decode` (serde + generated `validate()`), and the schemars
//! schema of the generated type.

use eventodb_kit::registry::EventRegistry;
use eventodb_kit_codegen_user::{events, golden};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

struct Case {
    path: PathBuf,
    schema: Value,
    title: String,
    examples: Vec<Value>,
}

fn cases(dir: &Path) -> Vec<Case> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("schema folder")
        .map(|entry| entry.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            out.extend(cases(&path));
            continue;
        }
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        if schema.get("x-eventodb").is_none() {
            continue;
        }
        out.push(Case {
            title: schema["title"].as_str().expect("title").to_owned(),
            examples: schema
                .get("examples")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            path: path.canonicalize().expect("path"),
            schema,
        });
    }
    out
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every document obtained by changing one thing in `doc`: a property removed, set to a value
/// of another type or to an edge-case value, an unknown property added, an array emptied or
/// given a duplicate. The flag marks an object replaced by an array: serde reads a struct from
/// a JSON array of its fields in order (a known, documented difference of `decode`), so for
/// those documents only the source and schemars schemas are compared.
fn mutations(doc: &Value) -> Vec<(Value, bool)> {
    let replacements = [
        Value::Null,
        json!(12345),
        json!(-1),
        json!(1.5),
        json!(true),
        json!(""),
        json!("x".repeat(300)),
        json!("not-an-email"),
        json!("ABC"),
        json!([]),
        json!({}),
    ];
    let mut out = Vec::new();
    let mut paths = Vec::new();
    collect_paths(doc, String::new(), &mut paths);
    for (pointer, value) in &paths {
        if let Value::Object(map) = value {
            let mut copy = doc.clone();
            target(&mut copy, pointer)
                .as_object_mut()
                .expect("object")
                .insert("zz_unknown".to_owned(), json!(1));
            out.push((copy, false));
            for key in map.keys() {
                let mut copy = doc.clone();
                target(&mut copy, pointer)
                    .as_object_mut()
                    .expect("object")
                    .remove(key);
                out.push((copy, false));
            }
        }
        if let Value::Array(items) = value
            && let Some(first) = items.first()
        {
            let mut copy = doc.clone();
            target(&mut copy, pointer)
                .as_array_mut()
                .expect("array")
                .push(first.clone());
            out.push((copy, false));
        }
        if pointer.is_empty() {
            continue;
        }
        for replacement in &replacements {
            let mut copy = doc.clone();
            *target(&mut copy, pointer) = replacement.clone();
            out.push((copy, value.is_object() && replacement.is_array()));
        }
    }
    out
}

fn collect_paths<'a>(value: &'a Value, pointer: String, out: &mut Vec<(String, &'a Value)>) {
    out.push((pointer.clone(), value));
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                collect_paths(child, format!("{pointer}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                collect_paths(child, format!("{pointer}/{index}"), out);
            }
        }
        _ => {}
    }
}

fn target<'a>(doc: &'a mut Value, pointer: &str) -> &'a mut Value {
    doc.pointer_mut(pointer).expect("pointer exists")
}

/// Runs the three judges over every document of every case, returning the disagreements.
fn judge<R: EventRegistry>(
    cases: &[Case],
    schemars: impl Fn(&str) -> Option<Value>,
    to_data: impl Fn(&R::Event) -> Value,
) -> (usize, Vec<String>) {
    let mut documents = 0;
    let mut problems = Vec::new();
    for case in cases {
        // The dialect reads `format` with 2020-12 meaning in draft-07 files too (draft-07 has
        // no `uuid` format), so the source is judged as 2020-12.
        let source = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .with_base_uri(format!("file://{}", case.path.display()))
            .should_validate_formats(true)
            .build(&case.schema)
            .unwrap_or_else(|error| panic!("{}: {error}", case.path.display()));
        let derived_schema = schemars(&case.title).expect("a schemars schema");
        let derived = jsonschema::options()
            .should_validate_formats(true)
            .build(&derived_schema)
            .unwrap_or_else(|error| panic!("schemars schema of {}: {error}", case.title));
        assert!(!case.examples.is_empty(), "{} has no examples", case.title);
        for example in &case.examples {
            // Round trip: decode, encode, compare.
            let event = R::decode(&case.title, example)
                .unwrap_or_else(|error| panic!("{} example: {error:?}", case.title));
            assert_eq!(
                &to_data(&event),
                example,
                "{} example round trip",
                case.title
            );
            let mut docs = vec![(example.clone(), false)];
            docs.extend(mutations(example));
            for (doc, array_for_object) in docs {
                documents += 1;
                let by_source = source.is_valid(&doc);
                let by_schemars = derived.is_valid(&doc);
                let by_decode = if array_for_object {
                    by_source
                } else {
                    R::decode(&case.title, &doc).is_ok()
                };
                if by_source != by_decode || by_source != by_schemars {
                    problems.push(format!(
                        "{}: source {by_source}, decode {by_decode}, schemars {by_schemars}: {doc}",
                        case.title
                    ));
                }
            }
        }
    }
    (documents, problems)
}

fn check(documents: usize, problems: Vec<String>) {
    println!("{documents} documents judged");
    assert!(documents > 100, "too few documents: {documents}");
    assert!(
        problems.is_empty(),
        "{} disagreements, first ones:\n{}",
        problems.len(),
        problems
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn workspace_schemas_agree_with_generated_types() {
    let cases = cases(&root().join("schemas"));
    assert_eq!(cases.len(), 13);
    let (documents, problems) = judge::<events::Events>(
        &cases,
        |title| events::Events::json_schema(title).map(|s| s.to_value()),
        |event| event.to_data().expect("serializes"),
    );
    check(documents, problems);
}

#[test]
fn basics_schemas_agree_with_generated_types() {
    let cases = cases(&root().join("eventodb-kit-codegen/tests/schemas/basics"));
    assert_eq!(cases.len(), 4);
    let (documents, problems) = judge::<golden::basics::Events>(
        &cases,
        |title| golden::basics::Events::json_schema(title).map(|s| s.to_value()),
        |event| event.to_data().expect("serializes"),
    );
    check(documents, problems);
}
