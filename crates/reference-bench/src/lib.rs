//! Benchmark-only crate: see `benches/vs_reference.rs`.
