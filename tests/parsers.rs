//! No input can make a loader panic: arbitrary and mutated bytes through every parser a user
//! or a client can feed (pipeline spec, data CSV, config, approval files, model artifacts).
//! The same entry points are the cargo-fuzz targets in `fuzz/`.

use proptest::prelude::*;
use rcfops::approvals::ApprovalFile;
use rcfops::config::Config;
use rcfops::model::Model;
use rcfops::pipeline::data::Table;
use rcfops::pipeline::spec::PipelineSpec;

fn csv_like() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b','),
            Just(b'\n'),
            Just(b'\r'),
            Just(b'"'),
            Just(b'.'),
            Just(b'-'),
            Just(b'e'),
            b'0'..=b'9',
            any::<u8>()
        ],
        0..400,
    )
}

fn artifact() -> Vec<u8> {
    use rcfops::pipeline::{select, train_and_evaluate};
    let mut csv = String::from("a,b,label\n");
    for i in 0..300 {
        csv.push_str(&format!(
            "{},{},{}\n",
            i % 17,
            (i * 7) % 13,
            u8::from(i % 50 == 0)
        ));
    }
    let t = Table::parse_csv(csv.as_bytes(), "x.csv").unwrap();
    let spec = PipelineSpec::parse("[data]\npath = \"x.csv\"\nlabel = \"label\"\n").unwrap();
    let d = select(&t, &spec.data, "x.csv").unwrap();
    let mut cfg = spec.forest_config();
    cfg.num_trees = 50;
    cfg.num_samples_per_tree = 32;
    let trained = train_and_evaluate(&d, &spec.preprocess, cfg, 0.3, 1, 10).unwrap();
    trained.model.to_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn csv_never_panics(bytes in csv_like()) {
        let mut with_header = b"a,b,label\n".to_vec();
        with_header.extend_from_slice(&bytes);
        let _ = Table::parse_csv(&bytes, "x.csv");
        if let Ok(t) = Table::parse_csv(&with_header, "x.csv") {
            prop_assert!(t.values.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn request_bodies_never_panic(sel in 0usize..24, bytes in csv_like()) {
        let ct = ["text/csv", "application/json", "application/jsonlines"][sel % 3];
        let dim = 1 + sel / 3;
        if let Ok((flat, rows)) = rcfops::serve::parse_request(ct, &bytes, dim) {
            prop_assert_eq!(flat.len(), rows * dim);
            prop_assert!(flat.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn spec_never_panics(text in "[\\[\\]a-z_=\" 0-9.\\n-]{0,300}") {
        let _ = PipelineSpec::parse(&text);
        let _ = Config::parse(&text, "config.toml", std::path::Path::new("/tmp"));
        let _ = ApprovalFile::parse(text.as_bytes());
    }

    #[test]
    fn spec_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = ApprovalFile::parse(&bytes);
        if let Ok(t) = std::str::from_utf8(&bytes) {
            let _ = PipelineSpec::parse(t);
        }
    }
}

#[test]
fn mutated_artifacts_are_errors_or_intact() {
    let good = artifact();
    let model = Model::from_bytes(&good).unwrap();
    let probe = [3.0, 5.0];
    let want = model.score_rows(&probe, 1)[0];
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for _ in 0..2000 {
        let mut b = good.clone();
        match next() % 3 {
            0 => {
                let i = (next() as usize) % b.len();
                b[i] ^= 1 << (next() % 8);
            }
            1 => b.truncate((next() as usize) % b.len()),
            _ => {
                let i = (next() as usize) % b.len();
                b.insert(i, next() as u8);
            }
        }
        // Every byte is under a checksum: a changed artifact never loads.
        if let Ok(m) = Model::from_bytes(&b) {
            assert_eq!(b, good, "a corrupted artifact loaded");
            assert_eq!(m.score_rows(&probe, 1)[0], want);
        }
    }
}
