//! Generates the events from the workspace's `schemas/` folder, as an application would.

fn main() {
    eventodb_kit_codegen::Settings::new("../../schemas").run();
}
