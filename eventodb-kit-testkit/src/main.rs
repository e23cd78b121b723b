//! Runs the embedded EventoDB-compatible server on a port.

fn main() {}
