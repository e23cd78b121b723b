//! Stage timings of one generation (development aid).
use std::time::Instant;
fn main() {
    let dir = std::env::args().nth(1).expect("a schema folder");
    let start = Instant::now();
    let generated = eventodb_kit_codegen::Settings::new(&dir)
        .generate()
        .expect("generates");
    let generated_at = start.elapsed();
    let tokens = generated.tokens().to_string().len();
    let file: syn::File = syn::parse2(generated.tokens()).expect("parses");
    let parsed_at = start.elapsed();
    let text = prettyplease::unparse(&file);
    let printed_at = start.elapsed();
    let parallel = generated.to_pretty_string().expect("formats");
    println!(
        "parallel pretty string: {:?}, same text: {}",
        start.elapsed() - printed_at,
        parallel.ends_with(&text)
    );
    println!(
        "generate {generated_at:?}, parse {:?}, print {:?}, {tokens} token chars, {} bytes",
        parsed_at - generated_at,
        printed_at - parsed_at,
        text.len()
    );
}
