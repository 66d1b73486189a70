//! Detection-quality regression on real labelled sets (`../shared/datasets`, beside the clone):
//! the baselines' protocol (train on all rows, score all rows, 100 trees × 256 samples) with a
//! fixed seed. Floors sit a little under the figures measured when the default was chosen
//! (`cargo bench --bench quality` prints the full 13-set table).

use std::path::{Path, PathBuf};

use rcfops::pipeline::spec::{PipelineSpec, PreprocessSpec, Scaling};
use rcfops::pipeline::{self, Dataset};

fn datasets() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets");
    assert!(
        dir.join("breastw.csv").is_file(),
        "the labelled data sets are missing: expected {} (the `shared` folder beside the \
         clone, holding datasets/breastw.csv etc.); the quality tests need them",
        dir.display()
    );
    dir
}

fn load(name: &str) -> Dataset {
    let path = datasets().join(format!("{name}.csv"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = path.display().to_string();
    pipeline::load_labelled(&bytes, &file, "label", &[]).unwrap()
}

/// (ROC-AUC, PR-AUC), trained and scored on all rows, seed 0.
fn measure(data: &Dataset, pre: &PreprocessSpec) -> (f64, f64) {
    let forest = rcf_core::ForestConfig {
        seed: 0,
        ..Default::default()
    };
    let t = pipeline::train_and_evaluate(data, pre, forest, 0.0, 7, 0).unwrap();
    (t.metrics.roc_auc, t.metrics.pr_auc)
}

fn with_scaling(scaling: Scaling) -> PreprocessSpec {
    PreprocessSpec {
        scaling,
        log_transform: vec![],
    }
}

#[test]
fn default_pipeline_keeps_its_quality() {
    // The default of a pipeline.toml without [preprocess].
    let default = PipelineSpec::parse("[data]\npath = \"d.csv\"\nlabel = \"label\"\n")
        .unwrap()
        .preprocess;
    assert_eq!(default, PreprocessSpec::default());
    assert_eq!(default.scaling, Scaling::Auto);
    // (set, ROC floor, PR floor); measured at seed 0: breastw 0.962 / 0.888, ionosphere
    // 0.860 / 0.838, thyroid 0.985 / 0.676, cardio 0.914 / 0.471.
    for (name, roc_floor, pr_floor) in [
        ("breastw", 0.95, 0.86),
        ("ionosphere", 0.845, 0.82),
        ("thyroid", 0.975, 0.62),
        ("cardio", 0.90, 0.43),
    ] {
        let (roc, pr) = measure(&load(name), &default);
        assert!(
            roc >= roc_floor && pr >= pr_floor,
            "{name}: default pipeline ROC-AUC {roc:.4} / PR-AUC {pr:.4}, floors {roc_floor} / {pr_floor}"
        );
    }
}

#[test]
fn auto_scaling_beats_raw_and_plain_robust_where_it_should() {
    // thyroid: column ranges differ by orders of magnitude (raw PR-AUC 0.35 at seed 0).
    let thyroid = load("thyroid");
    let (_, raw_pr) = measure(&thyroid, &with_scaling(Scaling::None));
    let (_, auto_pr) = measure(&thyroid, &with_scaling(Scaling::Auto));
    assert!(
        auto_pr > raw_pr + 0.2,
        "thyroid PR-AUC auto {auto_pr:.4}, raw {raw_pr:.4}"
    );
    // cardio: columns where one value fills a quarter of the rows (robust PR-AUC 0.37).
    let cardio = load("cardio");
    let (_, robust_pr) = measure(&cardio, &with_scaling(Scaling::Robust));
    let (_, auto_pr) = measure(&cardio, &with_scaling(Scaling::Auto));
    assert!(
        auto_pr > robust_pr + 0.05,
        "cardio PR-AUC auto {auto_pr:.4}, robust {robust_pr:.4}"
    );
}

#[test]
fn raw_features_match_the_reference_rcf() {
    // Reference RCF (AWS random-cut-forest-by-aws 4.0.0), batch protocol, breastw: ROC-AUC
    // 0.962 (../shared/datasets/README.md, "Reference RCF ... measured").
    let (roc, _) = measure(&load("breastw"), &with_scaling(Scaling::None));
    assert!(
        (roc - 0.962).abs() <= 0.02,
        "breastw raw ROC-AUC {roc:.4}, reference 0.962"
    );
}

#[test]
fn eval_uses_the_pipeline_default() {
    // cardio: `auto` and plain `robust` give different models there.
    let data = datasets().join("cardio.csv");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rcfops"))
        .args(["eval", data.to_str().unwrap(), "--label", "label"])
        .args(["--test-fraction", "0", "--seed", "0", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (roc, pr) = measure(&load("cardio"), &PreprocessSpec::default());
    // Equal up to JSON's float parsing (serde_json may be off by an ulp).
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(
        close(v["metrics"]["roc_auc"].as_f64().unwrap(), roc),
        "{v} vs {roc}"
    );
    assert!(
        close(v["metrics"]["pr_auc"].as_f64().unwrap(), pr),
        "{v} vs {pr}"
    );
}
