//! The data loader on arbitrary bytes: an error or a fully finite table, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = rcfops::pipeline::data::Table::parse_csv(data, "fuzz.csv") {
        assert!(t.values.iter().all(|v| v.is_finite()));
    }
});
