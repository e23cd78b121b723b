//! Benchmark of the code generator (filled in below).
fn main() {}
