//! Model Monitor on real data: a model trained on part of the Statlog Shuttle set
//! (`../shared/datasets/shuttle.csv`, 49,097 rows, 7 % anomalies), and the rest of the set
//! replayed through the live production endpoint as real HTTP requests, captured, windowed and
//! judged by the running agent.
//!
//! - Normal traffic (held-out rows as they come): 100 windows, no ALERT; the false-alarm rate
//!   of each statistic is printed.
//! - A shifted feature (f2 + 6, about 0.7 σ): an ALERT within 2 windows that names f2.
//! - A fraud burst (40 % anomalies instead of 7 %): an ALERT within 2 windows, on the alert rate.
//! - Ground truth for the replayed requests (by inferenceId): the live metrics equal those
//!   computed offline from the same answers and labels.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use rcfops::domain::{Stage, Verdict};

const WINDOW: usize = 200;
const PER_REQUEST: usize = 20;

fn shuttle() -> (String, Vec<(Vec<String>, bool)>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/shuttle.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the shared data sets beside the clone)",
            path.display()
        )
    });
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let mut rows: Vec<(Vec<String>, bool)> = lines
        .map(|l| {
            let mut cells: Vec<String> = l.split(',').map(str::to_string).collect();
            let label = cells.pop().unwrap() == "1";
            (cells, label)
        })
        .collect();
    // A fixed shuffle (the file keeps the source order).
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..rows.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        rows.swap(i, (s % (i as u64 + 1)) as usize);
    }
    (header, rows)
}

fn template(header: &str, train: &[(Vec<String>, bool)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let mut csv = format!("{header}\n");
    for (cells, label) in train {
        csv.push_str(&cells.join(","));
        csv.push_str(if *label { ",1\n" } else { ",0\n" });
    }
    std::fs::write(dir.path().join("data/transactions.csv"), csv).unwrap();
    std::fs::write(
        dir.path().join("pipeline.toml"),
        r#"[project]
name = "shuttle"

[data]
path = "data/transactions.csv"
label = "label"

[model]
num_trees = 50
num_samples_per_tree = 256
seed = 3

[evaluation]
test_fraction = 0.3
split_seed = 7

[gate]
min_roc_auc = 0.5
min_pr_auc = 0.05
"#,
    )
    .unwrap();
    dir
}

/// One replayed request: its inference id, its labels and the scores production answered.
struct Sent {
    id: String,
    labels: Vec<bool>,
    scores: Vec<f64>,
}

fn replay(
    url: &str,
    rows: &[(Vec<String>, bool)],
    tag: &str,
    shift: Option<(usize, f64)>,
) -> Vec<Sent> {
    let client = http();
    rows.chunks(PER_REQUEST)
        .enumerate()
        .map(|(k, chunk)| {
            let body: String = chunk
                .iter()
                .map(|(cells, _)| {
                    let mut c = cells.clone();
                    if let Some((j, by)) = shift {
                        c[j] = (c[j].parse::<f64>().unwrap() + by).to_string();
                    }
                    c.join(",") + "\n"
                })
                .collect();
            let id = format!("{tag}-{k}");
            let r = client
                .post(format!("{url}/invocations"))
                .header("content-type", "text/csv")
                .header("x-amzn-sagemaker-inference-id", &id)
                .body(body)
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            let v: serde_json::Value = r.json().unwrap();
            let scores = v["scores"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["score"].as_f64().unwrap())
                .collect();
            Sent {
                id,
                labels: chunk.iter().map(|(_, l)| *l).collect(),
                scores,
            }
        })
        .collect()
}

fn windows(p: &Project) -> Vec<rcfops::registry::WindowRow> {
    p.registry()
        .monitor_windows(Some(Stage::Production), Some(1), 100_000)
        .unwrap()
}

fn wait_windows(p: &Project, n: usize) -> Vec<rcfops::registry::WindowRow> {
    assert!(
        wait_until(std::time::Duration::from_secs(60), || windows(p).len() >= n),
        "expected {n} production windows, have {}; agent log:\n{}",
        windows(p).len(),
        p.agent_stderr()
    );
    windows(p)
}

fn drift_state(p: &Project) -> Option<rcfops::registry::StateRow> {
    p.registry()
        .monitor_states()
        .unwrap()
        .into_iter()
        .find(|s| s.stage == Stage::Production && s.version == 1 && s.kind == "drift")
}

/// The windows (counted from `from`) until the verdict first reads ALERT.
fn delay(ws: &[rcfops::registry::WindowRow], from: usize) -> Option<usize> {
    ws[from..]
        .iter()
        .position(|w| w.verdict == Verdict::Alert)
        .map(|i| i + 1)
}

fn ground_truth(sent: &[Sent]) -> String {
    sent.iter()
        .map(|s| {
            let data: Vec<&str> = s.labels.iter().map(|l| if *l { "1" } else { "0" }).collect();
            format!(
                "{{\"groundTruthData\":{{\"data\":\"{}\",\"encoding\":\"CSV\"}},\"eventMetadata\":{{\"inferenceId\":\"{}\"}},\"eventVersion\":\"0\"}}\n",
                data.join(","),
                s.id
            )
        })
        .collect()
}

#[test]
fn replayed_shuttle_traffic_drift_bursts_and_live_quality() {
    let (header, rows) = shuttle();
    let (train, pool) = rows.split_at(16_000);
    let tpl = template(&header, train);
    let p = Project::with_template(
        tpl.path(),
        "\n[monitoring]\ncapture = true\nwindow_records = 200\nmin_window_records = 50\npoll_ms = 100\n",
    );
    let agent = p.start();
    p.v1_live();
    let url = agent.production.clone();
    let normal: Vec<_> = pool.to_vec();

    // 1. Normal traffic: 100 windows.
    let n_normal = 100 * WINDOW;
    let sent_normal = replay(&url, &normal[..n_normal], "normal", None);
    let ws = wait_windows(&p, 100);
    assert_eq!(ws.len(), 100);
    let mut alarms: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for w in &ws {
        assert_eq!(w.records as usize, WINDOW);
        for (stat, prefix) in [
            ("score PSI", "score PSI"),
            ("score KS", "score KS"),
            ("alert rate", "alert rate"),
            ("feature PSI", "feature "),
        ] {
            let e = alarms.entry(stat).or_default();
            for r in &w.stats.reasons {
                let (level, what) = r.split_once(": ").unwrap();
                if what.starts_with(prefix) {
                    match level {
                        "ALERT" => e.0 += 1,
                        _ => e.1 += 1,
                    }
                    break;
                }
            }
        }
    }
    eprintln!("normal traffic, {} windows of {WINDOW} records:", ws.len());
    for (stat, (alert, warn)) in &alarms {
        eprintln!(
            "  {stat:<12} ALERT-level windows {alert} ({:.1}%), WARN-level {warn} ({:.1}%)",
            100.0 * *alert as f64 / ws.len() as f64,
            100.0 * *warn as f64 / ws.len() as f64
        );
        assert!(
            *alert * 20 <= ws.len(),
            "{stat}: {alert} of {} normal windows at ALERT level",
            ws.len()
        );
    }
    assert!(
        ws.iter().all(|w| w.verdict != Verdict::Alert),
        "normal traffic raised an ALERT: {:?}",
        ws.iter()
            .find(|w| w.verdict == Verdict::Alert)
            .map(|w| &w.stats.reasons)
    );
    assert_ne!(drift_state(&p).map(|s| s.verdict), Some(Verdict::Alert));

    // 2. A shifted feature: f2 + 6 on 3 windows of otherwise normal rows.
    let mut cursor = n_normal;
    let shifted = &normal[cursor..cursor + 3 * WINDOW];
    cursor += 3 * WINDOW;
    let sent_shift = replay(&url, shifted, "shift", Some((2, 6.0)));
    let ws = wait_windows(&p, 103);
    let shift_delay = delay(&ws, 100).expect("the shift raised no ALERT");
    eprintln!("shifted f2: ALERT after {shift_delay} windows");
    assert!(shift_delay <= 2, "ALERT after {shift_delay} windows");
    let state = drift_state(&p).unwrap();
    assert_eq!(state.verdict, Verdict::Alert);
    assert!(
        state.reasons.iter().any(|r| r.contains("feature f2 PSI")),
        "{:?}",
        state.reasons
    );
    assert!(ws[100..]
        .iter()
        .all(|w| w.stats.drifted_features.first().map(String::as_str) == Some("f2")));
    let audit = p.registry().audit_log(1000).unwrap();
    assert!(audit.iter().any(|a| a.event == "monitor.drift"
        && a.detail.as_deref().unwrap_or("").contains("OK → ALERT")
        && a.detail.as_deref().unwrap_or("").contains("f2")));

    // 3. Normal again: the verdict falls after 3 quiet windows.
    replay(&url, &normal[cursor..cursor + 4 * WINDOW], "calm", None);
    cursor += 4 * WINDOW;
    wait_windows(&p, 107);
    assert_ne!(drift_state(&p).unwrap().verdict, Verdict::Alert);

    // 4. A fraud burst: 40 % anomalies.
    let frauds: Vec<_> = normal[cursor..].iter().filter(|r| r.1).cloned().collect();
    let normals: Vec<_> = normal[cursor..].iter().filter(|r| !r.1).cloned().collect();
    let burst: Vec<_> = (0..3 * WINDOW)
        .map(|i| {
            if i % 5 < 2 {
                frauds[i].clone()
            } else {
                normals[i].clone()
            }
        })
        .collect();
    replay(&url, &burst, "burst", None);
    let ws = wait_windows(&p, 110);
    let burst_delay = delay(&ws, 107).expect("the burst raised no ALERT");
    eprintln!("fraud burst: ALERT after {burst_delay} windows");
    assert!(burst_delay <= 2);
    // At the mean + 3σ threshold most shuttle anomalies score below it (the alert rate goes
    // from 0.7 % to about 1.5 %, inside a 200-record window's binomial interval): the burst
    // shows in the score distribution and in the features.
    for w in &ws[107..] {
        eprintln!(
            "  burst window: alert rate {:.2}% (expected {:.2}%, interval {:.2}–{:.2}%), score PSI {:.3}, KS {:.3}",
            w.stats.alert_rate * 100.0,
            w.stats.expected_alert_rate * 100.0,
            w.stats.alert_rate_interval.0 * 100.0,
            w.stats.alert_rate_interval.1 * 100.0,
            w.stats.score_psi,
            w.stats.ks_statistic
        );
    }
    let state = drift_state(&p).unwrap();
    assert!(
        state
            .reasons
            .iter()
            .any(|r| r.starts_with("ALERT: score PSI"))
            && state
                .reasons
                .iter()
                .any(|r| r.starts_with("ALERT: score KS")),
        "{:?}",
        state.reasons
    );

    // 5. Ground truth: the normal phase through the drop folder, the shift through the CLI.
    let gt = p.state.join("ground-truth");
    std::fs::create_dir_all(&gt).unwrap();
    let tmp: PathBuf = gt.join(".normal.jsonl.tmp");
    std::fs::write(&tmp, ground_truth(&sent_normal)).unwrap();
    std::fs::rename(&tmp, gt.join("normal.jsonl")).unwrap();
    let shift_file = p.dir.path().join("shift-labels.jsonl");
    std::fs::write(&shift_file, ground_truth(&sent_shift)).unwrap();
    let out = p.rcfops(&["label", shift_file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("600 labels merged, 0 lines not merged"));
    let expected = n_normal + 3 * WINDOW;
    assert!(
        wait_until(std::time::Duration::from_secs(30), || {
            p.registry().label_count().unwrap() as usize == expected
        }),
        "labels merged: {}",
        p.registry().label_count().unwrap()
    );
    // Offline: the same answers and labels, measured directly.
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
    for s in sent_normal.iter().chain(&sent_shift) {
        scores.extend_from_slice(&s.scores);
        labels.extend_from_slice(&s.labels);
    }
    let threshold = p.registry().baseline(1).unwrap().unwrap().threshold;
    let roc = rcfops::pipeline::metrics::roc_auc(&scores, &labels).unwrap();
    let pr = rcfops::pipeline::metrics::average_precision(&scores, &labels).unwrap();
    let (precision, recall, _) =
        rcfops::pipeline::metrics::at_threshold(&scores, &labels, threshold);
    let out = p.rcfops(&["monitor", "--stage", "production", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let v1 = &doc["stages"][0]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["version"] == 1)
        .unwrap()
        .clone();
    let days = v1["live_quality"].as_array().unwrap();
    if days.len() == 1 {
        let d = &days[0];
        assert_eq!(d["records"], expected);
        assert_eq!(d["roc_auc"].as_f64().unwrap(), roc);
        assert_eq!(d["pr_auc"].as_f64().unwrap(), pr);
        assert_eq!(d["precision"].as_f64().unwrap(), precision);
        assert_eq!(d["recall"].as_f64().unwrap(), recall);
        eprintln!("live quality = offline: ROC-AUC {roc:.4}, PR-AUC {pr:.4}, precision {precision:.4}, recall {recall:.4}");
    } else {
        eprintln!("the replay crossed midnight UTC; live quality is split by day: {days:?}");
        let total: u64 = days.iter().map(|d| d["records"].as_u64().unwrap()).sum();
        assert_eq!(total as usize, expected);
    }
    // Live PR-AUC on unseen rows is close to evaluation: no quality ALERT.
    let quality = || {
        p.registry()
            .monitor_states()
            .unwrap()
            .into_iter()
            .find(|s| s.version == 1 && s.kind == "quality")
    };
    assert!(wait_until(std::time::Duration::from_secs(30), || quality().is_some()));
    let q = quality().unwrap();
    eprintln!("live quality verdict: {} ({:?})", q.verdict, q.reasons);
    assert_eq!(q.verdict, Verdict::Ok);
    // The report a person reads names the features and the verdicts.
    let text = String::from_utf8(p.rcfops(&["monitor", "--stage", "production"]).stdout).unwrap();
    assert!(
        text.contains("v1: ") && text.contains("drift ALERT") && text.contains("f2"),
        "{text}"
    );
    // The dashboard draws the same windows and the live quality.
    let base = agent.dashboard.clone().expect("dashboard");
    let page = http()
        .get(format!("{base}/monitor"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("id=\"drift-production-1\"")
            && page.contains("data-series=\"score PSI\" data-points=\"100\""),
        "{page}"
    );
    assert!(page.contains("id=\"quality-production-1\"") && page.contains("f2"));
    drop(agent);
}
