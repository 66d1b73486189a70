//! `rcfops eval` end to end against pandas + scikit-learn's IsolationForest, and rcfops' CSV
//! parser against pandas' C parser, on the same files in the same run (issue 16).
//!
//! * **CSV parsing**: `rcfops eval`'s file read + `Table::parse_csv` (best of 5) against
//!   `pandas.read_csv` (best of 5, `benches/baselines/pandas_read.py`) on the labelled sets (every `*.csv`)
//!   in `../shared/datasets` and on the end-to-end workload.
//! * **End to end**: the workload is 200,000 rows × 30 Gaussian features with 0.5 %
//!   anomalies shifted by 4 in every feature, written once to `target/tmp/eval_speed/`. The
//!   release `rcfops eval FILE --label label --test-fraction 0` (its defaults: two threads)
//!   and `benches/baselines/iforest_eval.py FILE` (pandas `read_csv`, `IsolationForest(100
//!   trees, 256 samples, n_jobs=1)`, `score_samples` of every row) run as whole processes, in
//!   turn, `RUNS` times (default 3); prints the medians and the median of the pairwise ratios.
//!
//! The baselines need a Python with pandas and scikit-learn: `BASELINE_PYTHON` (default
//! `python3`). Without them only rcfops' own figures print.
//!
//! Run: `cargo bench --bench eval_speed` (about a minute).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rcfops::pipeline::data::Table;

/// Every labelled set in `dir`: its `*.csv` files, in name order.
fn labelled_sets(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| {
        panic!(
            "cannot list {}: {e} (the labelled sets live in ../shared/datasets beside the \
             workspace; set DATASETS=dir)",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    files
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The end-to-end workload, written once (shortest round-trip decimals, like Python's repr).
fn workload(dir: &Path) -> PathBuf {
    let path = dir.join("gaussian_200k_30.csv");
    if path.exists() {
        return path;
    }
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(16);
    let mut out = String::with_capacity(130 << 20);
    let header: Vec<String> = (0..30).map(|i| format!("f{i}")).collect();
    out.push_str(&header.join(","));
    out.push_str(",label\n");
    for _ in 0..200_000 {
        let anomaly = rng.random::<f64>() < 0.005;
        for _ in 0..30 {
            let u: f64 = 1.0 - rng.random::<f64>();
            let v: f64 = rng.random();
            let g = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
            out.push_str(&format!("{},", g + if anomaly { 4.0 } else { 0.0 }));
        }
        out.push_str(if anomaly { "1\n" } else { "0\n" });
    }
    std::fs::create_dir_all(dir).expect("create target/tmp/eval_speed");
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, out).expect("write the workload");
    std::fs::rename(&tmp, &path).expect("rename the workload");
    path
}

fn ours_parse(path: &Path) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        let bytes = rcfops::cli::read_in_halves(path).expect("read");
        let table = Table::parse_csv(&bytes, &path.display().to_string()).expect("parse");
        assert!(table.rows() > 0);
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

fn python() -> Option<String> {
    let py = std::env::var("BASELINE_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import pandas, sklearn"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(py)
    } else {
        println!(
            "(no baseline: {py} cannot import pandas and scikit-learn; set BASELINE_PYTHON to a \
             Python that has them, e.g. after `python3 -m pip install pandas scikit-learn`)"
        );
        None
    }
}

fn wall(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let out = cmd.output().expect("start the command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let data = std::env::var_os("DATASETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/datasets"));
    let big = workload(&root.join("target/tmp/eval_speed"));
    let mut files = labelled_sets(&data);
    files.push(big.clone());
    let py = python();
    let baselines = root.join("benches/baselines");

    println!("CSV parsing: file read + parse, best of 5 (seconds)");
    let pandas: Vec<Option<f64>> = match &py {
        Some(py) => {
            let out = Command::new(py)
                .arg(baselines.join("pandas_read.py"))
                .args(&files)
                .output()
                .expect("run pandas_read.py");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.split(' ').next().and_then(|s| s.parse().ok()))
                .collect()
        }
        None => vec![None; files.len()],
    };
    println!(
        "{:<22} {:>8} {:>10} {:>10} {:>8}",
        "file", "MiB", "pandas", "rcfops", "speedup"
    );
    let mut speedups = Vec::new();
    for (f, p) in files.iter().zip(&pandas) {
        let ours = ours_parse(f);
        let mib = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0) as f64 / (1 << 20) as f64;
        let name = f.file_stem().unwrap_or_default().to_string_lossy();
        match p {
            Some(p) => {
                speedups.push(p / ours);
                println!(
                    "{name:<22} {mib:>8.1} {p:>10.4} {ours:>10.4} {:>7.2}×",
                    p / ours
                )
            }
            None => println!("{name:<22} {mib:>8.1} {:>10} {ours:>10.4}", "-"),
        }
    }
    if !speedups.is_empty() {
        let worst = speedups.iter().cloned().fold(f64::INFINITY, f64::min);
        println!("smallest speedup over pandas: {worst:.2}× (goal ≥ 1)");
    }

    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let exe = env!("CARGO_BIN_EXE_rcfops");
    println!();
    println!(
        "end to end on {} ({runs} alternating runs, whole processes, wall seconds)",
        big.display()
    );
    let (mut a, mut b, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let ta = wall(Command::new(exe).arg("eval").arg(&big).args([
            "--label",
            "label",
            "--test-fraction",
            "0",
        ]));
        a.push(ta);
        if let Some(py) = &py {
            let tb = wall(
                Command::new(py)
                    .arg(baselines.join("iforest_eval.py"))
                    .arg(&big),
            );
            b.push(tb);
            ratio.push(ta / tb);
        }
    }
    println!("rcfops eval: median {:.3} s", median(a));
    if !b.is_empty() {
        println!("pandas + IsolationForest: median {:.3} s", median(b));
        println!(
            "rcfops ÷ IsolationForest: median {:.3} (goal ≤ 1)",
            median(ratio)
        );
    }
}
