//! Endpoint request bodies in every content type: records of finite numbers of the right
//! width, or an error naming a record — never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let ct = ["text/csv", "application/json", "application/jsonlines; charset=utf-8"][sel as usize % 3];
    let dim = 1 + (sel as usize / 3) % 8;
    if let Ok((flat, rows)) = rcfops::serve::parse_request(ct, body, dim) {
        assert_eq!(flat.len(), rows * dim);
        assert!(flat.iter().all(|v| v.is_finite()));
    }
});
