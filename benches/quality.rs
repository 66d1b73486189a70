//! Detection-quality benchmark over the 13 labelled sets in `../shared/datasets` (issue 3).
//!
//! The baselines' protocol: train on all rows, score all rows (`rcfops eval DATA --label label
//! --test-fraction 0 --json --seed S`, here through the same library call,
//! `pipeline::train_and_evaluate`), 100 trees × 256 samples, median ROC-AUC and PR-AUC over
//! seeds 0–4. Prints
//!
//! * (a) raw features (`--scaling none`) beside the reference RCF's batch figures and the
//!   difference (goal: ROC-AUC within 0.01 on every set), and
//! * (b) the product's default pipeline (`pipeline.toml` without `[preprocess]`, `rcfops eval`
//!   without `--scaling`) beside scikit-learn's IsolationForest and the reference RCF, with
//!   means (goal: mean ROC-AUC ≥ 0.915 and mean PR-AUC ≥ 0.612).
//!
//! Run: `cargo bench --bench quality` (about a minute on 2 cores). Options: set names as
//! arguments to run a subset; `SEEDS=n` (default 5); `DATASETS=dir` (default
//! `../shared/datasets` beside the crate).

use std::path::PathBuf;

use rcfops::pipeline::spec::{PreprocessSpec, Scaling};
use rcfops::pipeline::{self, Dataset};

/// Baselines from `../shared/datasets/README.md`: table "Measured baselines" (scikit-learn
/// `IsolationForest(n_estimators=100, max_samples=256)`, median of seeds 0–4) and table
/// "Reference RCF (AWS open-source library) measured", columns "batch ROC" / "batch PR"
/// (crate `rcf` 4.0.0, 100 trees, 256 samples, rows streamed in a seeded shuffle, then all
/// rows scored; median of seeds 0–4).
/// Columns: name, iForest ROC, iForest PR, reference RCF batch ROC, reference RCF batch PR.
const BASELINES: [(&str, f64, f64, f64, f64); 13] = [
    ("breastw", 0.987, 0.971, 0.962, 0.882),
    ("ionosphere", 0.843, 0.796, 0.865, 0.838),
    ("cardio", 0.936, 0.577, 0.923, 0.488),
    ("musk", 0.999, 0.984, 1.000, 1.000),
    ("thyroid", 0.979, 0.533, 0.959, 0.326),
    ("creditcard_subset", 0.950, 0.800, 0.908, 0.481),
    ("satimage-2", 0.994, 0.928, 0.996, 0.913),
    ("satellite", 0.690, 0.654, 0.735, 0.625),
    ("pendigits", 0.935, 0.230, 0.936, 0.216),
    ("annthyroid", 0.824, 0.309, 0.726, 0.212),
    ("mammography", 0.858, 0.192, 0.859, 0.186),
    ("shuttle", 0.997, 0.978, 0.990, 0.743),
    ("smtp", 0.903, 0.004, 0.901, 0.600),
];

const RAW_ROC_TOLERANCE: f64 = 0.01;
const GOAL_MEAN_ROC: f64 = 0.915;
const GOAL_MEAN_PR: f64 = 0.612;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn load(dir: &std::path::Path, name: &str) -> Dataset {
    let path = dir.join(format!("{name}.csv"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (the labelled sets live in ../shared/datasets beside the \
             crate; set DATASETS=dir to point elsewhere)",
            path.display()
        )
    });
    let file = path.display().to_string();
    pipeline::load_labelled(&bytes, &file, "label", &[]).unwrap_or_else(|e| panic!("{e}"))
}

/// Median (ROC-AUC, PR-AUC) over seeds `0..seeds`: train on all rows, score all rows.
fn evaluate(data: &Dataset, pre: &PreprocessSpec, seeds: u64) -> (f64, f64) {
    let (mut rocs, mut prs) = (Vec::new(), Vec::new());
    for seed in 0..seeds {
        let forest = rcf_core::ForestConfig {
            num_trees: 100,
            num_samples_per_tree: 256,
            seed,
            time_decay: 0.0,
        };
        let t = pipeline::train_and_evaluate(data, pre, forest, 0.0, 7, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        rocs.push(t.metrics.roc_auc);
        prs.push(t.metrics.pr_auc);
    }
    (median(rocs), median(prs))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let wanted: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let dir = std::env::var_os("DATASETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets"));
    let seeds: u64 = std::env::var("SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let raw = PreprocessSpec {
        scaling: Scaling::None,
        log_transform: vec![],
    };
    let default = PreprocessSpec::default();
    println!(
        "Detection quality: train on all rows, score all rows, 100 trees × 256 samples, \
         median of seeds 0..{}; data {}",
        seeds - 1,
        dir.display()
    );
    println!(
        "default pipeline: scaling = {:?}, log_transform = {:?}\n",
        default.scaling.name(),
        default.log_transform
    );

    struct Row {
        name: &'static str,
        raw: (f64, f64),
        def: (f64, f64),
        iforest: (f64, f64),
        reference: (f64, f64),
        secs: f64,
    }
    let mut rows = Vec::new();
    for &(name, if_roc, if_pr, ref_roc, ref_pr) in &BASELINES {
        if !wanted.is_empty() && !wanted.iter().any(|w| w.as_str() == name) {
            continue;
        }
        let t = std::time::Instant::now();
        let data = load(&dir, name);
        let raw_m = evaluate(&data, &raw, seeds);
        let def_m = evaluate(&data, &default, seeds);
        rows.push(Row {
            name,
            raw: raw_m,
            def: def_m,
            iforest: (if_roc, if_pr),
            reference: (ref_roc, ref_pr),
            secs: t.elapsed().as_secs_f64(),
        });
        eprintln!("  {name}: {:.1} s", t.elapsed().as_secs_f64());
    }
    if rows.is_empty() {
        eprintln!("no data set selected; names: {:?}", BASELINES.map(|b| b.0));
        std::process::exit(2);
    }
    let n = rows.len() as f64;
    let mean = |f: &dyn Fn(&Row) -> f64| rows.iter().map(f).sum::<f64>() / n;

    println!("(a) raw features (--scaling none) vs the reference RCF (batch)");
    println!(
        "| data set | ROC | ref ROC | ΔROC | PR | ref PR | ΔPR | within {RAW_ROC_TOLERANCE} |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|:-:|");
    let mut all_within = true;
    for r in &rows {
        let d = r.raw.0 - r.reference.0;
        // The reference figures are rounded to 3 decimals: allow that half unit.
        let ok = d.abs() <= RAW_ROC_TOLERANCE + 5e-4;
        all_within &= ok;
        println!(
            "| {} | {:.3} | {:.3} | {:+.3} | {:.3} | {:.3} | {:+.3} | {} |",
            r.name,
            r.raw.0,
            r.reference.0,
            d,
            r.raw.1,
            r.reference.1,
            r.raw.1 - r.reference.1,
            if ok { "yes" } else { "NO" }
        );
    }
    println!(
        "| **mean** | {:.3} | {:.3} | {:+.3} | {:.3} | {:.3} | {:+.3} | |",
        mean(&|r| r.raw.0),
        mean(&|r| r.reference.0),
        mean(&|r| r.raw.0 - r.reference.0),
        mean(&|r| r.raw.1),
        mean(&|r| r.reference.1),
        mean(&|r| r.raw.1 - r.reference.1),
    );

    println!(
        "\n(b) default pipeline (scaling = {:?}) vs IsolationForest and the reference RCF",
        default.scaling.name()
    );
    println!("| data set | ROC | iForest ROC | ref ROC | PR | iForest PR | ref PR | s |");
    println!("|---|--:|--:|--:|--:|--:|--:|--:|");
    for r in &rows {
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} |",
            r.name,
            r.def.0,
            r.iforest.0,
            r.reference.0,
            r.def.1,
            r.iforest.1,
            r.reference.1,
            r.secs
        );
    }
    let (m_roc, m_pr) = (mean(&|r| r.def.0), mean(&|r| r.def.1));
    println!(
        "| **mean** | **{:.3}** | {:.3} | {:.3} | **{:.3}** | {:.3} | {:.3} | |",
        m_roc,
        mean(&|r| r.iforest.0),
        mean(&|r| r.reference.0),
        m_pr,
        mean(&|r| r.iforest.1),
        mean(&|r| r.reference.1),
    );
    println!();
    println!(
        "correctness (raw ROC-AUC within {RAW_ROC_TOLERANCE} of the reference on every set): {}",
        if all_within { "met" } else { "NOT met" }
    );
    if rows.len() == BASELINES.len() {
        println!(
            "default pipeline: mean ROC-AUC {m_roc:.3} (goal ≥ {GOAL_MEAN_ROC}: {}), mean PR-AUC \
             {m_pr:.3} (goal ≥ {GOAL_MEAN_PR}: {})",
            if m_roc >= GOAL_MEAN_ROC {
                "met"
            } else {
                "NOT met"
            },
            if m_pr >= GOAL_MEAN_PR {
                "met"
            } else {
                "NOT met"
            },
        );
    } else {
        println!("(subset: the mean goals apply to all 13 sets)");
    }
}
