//! Prints the schemars schema of an event type: `cargo run --example schema -- UserDeleted`.
fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let schema = eventodb_kit_codegen_user::events::Events::json_schema(&name)
        .or_else(|| eventodb_kit_codegen_user::golden::basics::Events::json_schema(&name));
    match schema {
        Some(schema) => println!(
            "{}",
            serde_json::to_string_pretty(&schema).unwrap_or_default()
        ),
        None => eprintln!("unknown event type {name}"),
    }
}
