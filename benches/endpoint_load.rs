//! Endpoint load benchmark (in progress).
fn main() {}
