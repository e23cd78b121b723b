//! Prints the code generated for a schema folder (development aid).
fn main() {
    let dir = std::env::args().nth(1).expect("a schema folder");
    let generated = eventodb_kit_codegen::Settings::new(&dir)
        .generate()
        .expect("generates");
    print!("{}", generated.to_pretty_string().expect("formats"));
}
