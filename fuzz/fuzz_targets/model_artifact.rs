//! Model artifacts on arbitrary bytes: an error, or a model that scores finitely.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = rcfops::model::Model::from_bytes(data) {
        let row = vec![0.5; m.dim()];
        assert!(m.score_rows(&row, 1)[0].is_finite());
    }
});
