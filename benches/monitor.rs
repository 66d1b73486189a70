//! Model Monitor's detection on the 13 labelled sets in `../shared/datasets`: false alarms on
//! normal traffic, and the delay to an ALERT for a shifted feature and for a fraud burst.
//!
//! Per set: rows shuffled (fixed seed); the first third is the "repo data", trained and
//! evaluated exactly as a pipeline run does (`train_and_evaluate`, 30 % held out) and turned
//! into the version's `Baseline`; the other two thirds are the live traffic, scored by the
//! model and cut into windows (200 records, fewer for small sets so that there are at least 30).
//! The drift code is the agent's (`monitor::drift::{judge, next_verdict}`, default policy).
//!
//! - **normal**: the live rows in order; ALERT verdicts, and the share of windows where each
//!   statistic reached ALERT level.
//! - **shift**: for every feature, 3 windows with that feature + 0.5 σ (its training standard
//!   deviation); how many features reach an ALERT verdict within 3 windows, the median delay,
//!   and how often the ALERT names that feature first.
//! - **burst**: 3 windows with 40 % anomalies (drawn from the live anomalies); the delay.
//!
//! Run: `cargo bench --bench monitor` (a few seconds). `DATASETS=dir` overrides the folder.

use std::path::PathBuf;

use rcfops::domain::Verdict;
use rcfops::monitor::drift::{judge, next_verdict, Baseline, Policy, Window};
use rcfops::pipeline::spec::PreprocessSpec;
use rcfops::pipeline::{self, Dataset};

const SETS: [&str; 13] = [
    "breastw",
    "ionosphere",
    "cardio",
    "musk",
    "thyroid",
    "creditcard_subset",
    "satimage-2",
    "satellite",
    "pendigits",
    "annthyroid",
    "mammography",
    "shuttle",
    "smtp",
];

fn shuffle(n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..n).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        idx.swap(i, (s % (i as u64 + 1)) as usize);
    }
    idx
}

/// Runs windows of `rows` (row-major, `d` wide) through the judge from an OK verdict; returns
/// each window's statistics and the verdict after it.
fn run(
    model: &rcfops::model::Model,
    b: &Baseline,
    p: &Policy,
    rows: &[f64],
    d: usize,
    w: usize,
) -> Vec<(rcfops::monitor::drift::WindowStats, Verdict)> {
    let n = rows.len() / d;
    let scores = model.score_rows(rows, n);
    let mut verdict = Verdict::Ok;
    let mut levels = Vec::new();
    let mut out = Vec::new();
    for start in (0..n).step_by(w) {
        if start + w > n {
            break;
        }
        let mut win = Window::new(0, b);
        for i in start..start + w {
            win.add(i as i64, scores[i], Some(&rows[i * d..(i + 1) * d]), b);
        }
        let stats = judge(&win, b, p);
        if let Some(l) = stats.level {
            levels.push(l);
            verdict = next_verdict(verdict, &levels, p);
        }
        out.push((stats, verdict));
    }
    out
}

fn first_alert(ws: &[(rcfops::monitor::drift::WindowStats, Verdict)]) -> Option<usize> {
    ws.iter()
        .position(|(_, v)| *v == Verdict::Alert)
        .map(|i| i + 1)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = std::env::var_os("DATASETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets"));
    let policy = Policy::default();
    println!(
        "Model Monitor on the labelled sets: train on a third (30 % of it held out for the baseline), replay the rest; default policy (PSI 0.1/0.25, KS α 0.001 with effect ≥ 0.1, alert rate α 0.001, raise after 2, clear after 3)"
    );
    println!(
        "{:<18} {:>6} {:>4} {:>5} | {:>6} {:>6} {:>6} {:>6} {:>6} | {:>9} {:>6} {:>6} | {:>6}",
        "set",
        "live",
        "W",
        "wins",
        "ALERTs",
        "PSI%",
        "KS%",
        "rate%",
        "feat%",
        "shift det",
        "delay",
        "named",
        "burst"
    );
    let (mut all_windows, mut all_false) = (0usize, 0usize);
    let mut stat_alerts = [0usize; 4];
    let (mut shifts, mut detected, mut named) = (0usize, 0usize, 0usize);
    for name in SETS {
        let path = dir.join(format!("{name}.csv"));
        let Ok(bytes) = std::fs::read(&path) else {
            println!("{name:<18} missing: {}", path.display());
            continue;
        };
        let data = pipeline::load_labelled(&bytes, name, "label", &[]).unwrap();
        let d = data.features.len();
        let order = shuffle(data.labels.len());
        let cut = order.len() / 3;
        let (train_idx, live_idx) = order.split_at(cut);
        let pick = |idx: &[usize]| Dataset {
            features: data.features.clone(),
            x: data.x.select(ndarray::Axis(0), idx),
            labels: idx.iter().map(|&i| data.labels[i]).collect(),
        };
        let repo = pick(train_idx);
        let trained = match pipeline::train_and_evaluate(
            &repo,
            &PreprocessSpec::default(),
            rcf_core::ForestConfig {
                seed: 1,
                ..Default::default()
            },
            0.3,
            7,
            0,
        ) {
            Ok(t) => t,
            Err(e) => {
                println!("{name:<18} not trained: {e}");
                continue;
            }
        };
        let (fit_rows, _) = pipeline::train::split(&repo.labels, 0.3, 7);
        let fit: Vec<f64> = fit_rows
            .iter()
            .flat_map(|&r| repo.x.row(r).to_vec())
            .collect();
        let baseline = Baseline::build(
            &data.features,
            &fit,
            &trained.held_out.scores,
            trained.model.header.threshold,
            trained.metrics.roc_auc,
            trained.metrics.pr_auc,
        );
        let live = pick(live_idx);
        let n = live.labels.len();
        let w = (n / 30).clamp(policy.min_records, 200);
        let rows: Vec<f64> = live.x.iter().copied().collect();
        let model = &trained.model;

        // Normal traffic.
        let normal = run(model, &baseline, &policy, &rows, d, w);
        let false_alerts = normal.iter().filter(|(_, v)| *v == Verdict::Alert).count();
        let mut per = [0usize; 4];
        for (s, _) in &normal {
            for (k, prefix) in [
                "ALERT: score PSI",
                "ALERT: score KS",
                "ALERT: alert rate",
                "ALERT: feature",
            ]
            .iter()
            .enumerate()
            {
                per[k] += usize::from(s.reasons.iter().any(|r| r.starts_with(prefix)));
            }
        }
        all_windows += normal.len();
        all_false += false_alerts;
        for k in 0..4 {
            stat_alerts[k] += per[k];
        }

        // A shifted feature, each in turn, on the first 3 windows of live rows.
        let head = &rows[..(3 * w).min(n) * d];
        let mut delays = Vec::new();
        let (mut det, mut nam, mut tried) = (0, 0, 0);
        for j in 0..d {
            let col: Vec<f64> = fit.iter().skip(j).step_by(d).copied().collect();
            let mean = col.iter().sum::<f64>() / col.len() as f64;
            let sd =
                (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / col.len() as f64).sqrt();
            if sd == 0.0 {
                continue;
            }
            tried += 1;
            let mut shifted = head.to_vec();
            for r in 0..shifted.len() / d {
                shifted[r * d + j] += 0.5 * sd;
            }
            let ws = run(model, &baseline, &policy, &shifted, d, w);
            if let Some(k) = first_alert(&ws) {
                det += 1;
                delays.push(k);
                let first = &ws[k - 1].0.drifted_features;
                nam += usize::from(first.first() == Some(&data.features[j]));
            }
        }
        delays.sort_unstable();
        shifts += tried;
        detected += det;
        named += nam;

        // A fraud burst: 40 % anomalies.
        let anomalies: Vec<usize> = (0..n).filter(|&i| live.labels[i]).collect();
        let normals: Vec<usize> = (0..n).filter(|&i| !live.labels[i]).collect();
        let burst_rows: Vec<f64> = (0..3 * w)
            .flat_map(|i| {
                let r = if i % 5 < 2 {
                    anomalies[(i / 5 * 2 + i % 5) % anomalies.len()]
                } else {
                    normals[i % normals.len()]
                };
                rows[r * d..(r + 1) * d].to_vec()
            })
            .collect();
        let burst = first_alert(&run(model, &baseline, &policy, &burst_rows, d, w));

        let pct = |k: usize| 100.0 * k as f64 / normal.len().max(1) as f64;
        println!(
            "{:<18} {:>6} {:>4} {:>5} | {:>6} {:>6.1} {:>6.1} {:>6.1} {:>6.1} | {:>4}/{:<4} {:>6} {:>6} | {:>6}",
            name,
            n,
            w,
            normal.len(),
            false_alerts,
            pct(per[0]),
            pct(per[1]),
            pct(per[2]),
            pct(per[3]),
            det,
            tried,
            delays
                .get(delays.len() / 2)
                .map(|k| k.to_string())
                .unwrap_or_else(|| "-".into()),
            format!("{nam}/{det}"),
            burst.map(|k| k.to_string()).unwrap_or_else(|| "none".into())
        );
    }
    let pct = |k: usize| 100.0 * k as f64 / all_windows.max(1) as f64;
    println!(
        "all sets: {all_windows} normal windows, {all_false} with an ALERT verdict ({:.2} %); ALERT-level windows: score PSI {:.2} %, KS {:.2} %, alert rate {:.2} %, a feature's PSI {:.2} %",
        pct(all_false),
        pct(stat_alerts[0]),
        pct(stat_alerts[1]),
        pct(stat_alerts[2]),
        pct(stat_alerts[3])
    );
    println!(
        "shift by 0.5 σ: {detected} of {shifts} features alerted within 3 windows; the ALERT named the shifted feature first in {named} of {detected}"
    );
}
