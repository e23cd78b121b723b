//! `cargo bench -p eventodb-kit-codegen-user --bench validate`
//!
//! Generated checks versus the source schema evaluated by the `jsonschema` crate, on an
//! `OrderPlaced` (nested lines, a tagged union, patterns, a map): what `decode` costs either
//! way (serde into the struct is needed in both), and the checks alone. Ends with one JSON line.

use eventodb_kit::Event;
use eventodb_kit_codegen_user::events::OrderPlaced;
use serde_json::{Value, json};
use std::hint::black_box;
use std::time::Instant;

fn per_op(iterations: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(iterations)
}

fn main() {
    let quick = !std::env::args().any(|arg| arg == "--bench");
    let iterations = if quick { 100 } else { 20_000 };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let path = root
        .join("order/order_placed.json")
        .canonicalize()
        .expect("schema");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    let valid = schema["examples"][0].clone();
    let mut invalid = valid.clone();
    invalid["lines"][0]["sku"] = json!("bad");
    invalid["coupon_codes"] = json!(["SAVE10", "SAVE10"]);

    let build_start = Instant::now();
    let validator = jsonschema::options()
        .with_base_uri(format!("file://{}", path.display()))
        .should_validate_formats(true)
        .build(&schema)
        .expect("compiles");
    let compile_us = build_start.elapsed().as_secs_f64() * 1e6;
    assert!(validator.is_valid(&valid) && !validator.is_valid(&invalid));
    assert!(OrderPlaced::decode(&valid).is_ok() && OrderPlaced::decode(&invalid).is_err());

    let typed: OrderPlaced = serde_json::from_value(valid.clone()).expect("typed");
    let generated_checks = per_op(iterations, || {
        black_box(black_box(&typed).validate().is_ok());
    });
    let jsonschema_checks = per_op(iterations, || {
        black_box(validator.is_valid(black_box(&valid)));
    });
    let generated_decode = per_op(iterations, || {
        black_box(OrderPlaced::decode(black_box(&valid)).is_ok());
    });
    let jsonschema_decode = per_op(iterations, || {
        let ok = validator.is_valid(black_box(&valid));
        let event: Result<OrderPlaced, _> = serde_json::from_value(valid.clone());
        black_box((ok, event.is_ok()));
    });
    let generated_invalid = per_op(iterations, || {
        black_box(
            OrderPlaced::decode(black_box(&invalid))
                .err()
                .map(|e| e.violations().len()),
        );
    });
    let jsonschema_invalid = per_op(iterations, || {
        let errors: Vec<String> = validator
            .iter_errors(black_box(&invalid))
            .map(|error| error.instance_path().to_string())
            .collect();
        black_box(errors.len());
    });
    println!(
        "checks only (valid):  generated {generated_checks:.0} ns, jsonschema {jsonschema_checks:.0} ns"
    );
    println!(
        "decode (valid):       generated {generated_decode:.0} ns, jsonschema + serde {jsonschema_decode:.0} ns"
    );
    println!(
        "decode (invalid, all violations): generated {generated_invalid:.0} ns, jsonschema {jsonschema_invalid:.0} ns"
    );
    println!("jsonschema validator compile: {compile_us:.0} us (once per type)");
    println!(
        "{{\"bench\":\"validate\",\"generated_checks_ns\":{generated_checks:.0},\"jsonschema_checks_ns\":{jsonschema_checks:.0},\"generated_decode_ns\":{generated_decode:.0},\"jsonschema_decode_ns\":{jsonschema_decode:.0},\"generated_invalid_ns\":{generated_invalid:.0},\"jsonschema_invalid_ns\":{jsonschema_invalid:.0},\"jsonschema_compile_us\":{compile_us:.0}}}"
    );
}
