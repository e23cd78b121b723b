//! Generates the events from the workspace's `schemas/` folder.

fn main() {
    eventodb_kit_codegen::Settings::new("../../schemas").run();
}
