//! Dashboard render times with 1,000 versions and 10,000 audit events: each page fetched over
//! real HTTP from the dashboard router (in-process, loopback), one request at a time, 40
//! times; prints p50 and p95 per page against the 100 ms goal.
//!
//! The registry is filled directly (one transaction) with what a long-lived project holds:
//! 1,000 runs with their 7 steps, 1,000 versions with metrics and evaluation curves (7,000
//! held-out scores each), 300 deployments and 10,000 audit events.
//!
//! Run: `cargo bench --bench dashboard`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rcfops::config::Config;
use rcfops::pipeline::metrics::Metrics;
use rcfops::registry::Registry;
use rusqlite::params;

const VERSIONS: i64 = 1000;
const AUDIT: i64 = 10_000;
const ROUNDS: usize = 40;
const GOAL_MS: f64 = 100.0;

fn fill(path: &std::path::Path) {
    let mut c = rusqlite::Connection::open(path).unwrap();
    let tx = c.transaction().unwrap();
    let mut s = 7u64;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let t0 = 1_796_000_000.0;
    for v in 1..=VERSIONS {
        let commit = format!("{:040x}", v as u128 * 0x9e3779b97f4a7c15);
        let ts = t0 + v as f64 * 600.0;
        tx.execute(
            "INSERT INTO runs (run, commit_sha, status, trigger, started_ts, finished_ts, version) VALUES (?1, ?2, 'Succeeded', 'commit', ?3, ?4, ?1)",
            params![v, commit, ts, ts + 3.0],
        )
        .unwrap();
        for (k, step) in [
            "load", "validate", "train", "compare", "gate", "store", "register",
        ]
        .iter()
        .enumerate()
        {
            tx.execute(
                "INSERT INTO steps (run, step, status, started_ts, duration_ms) VALUES (?1, ?2, 'Succeeded', ?3, ?4)",
                params![v, step, ts + k as f64 * 0.3, 10.0 + 300.0 * next()],
            )
            .unwrap();
        }
        let scores: Vec<f64> = (0..7000).map(|_| next() * 2.0).collect();
        let labels: Vec<bool> = scores.iter().map(|s| *s > 1.6 && next() > 0.3).collect();
        let threshold = 1.5;
        let metrics = Metrics::evaluate(&scores, &labels, threshold, 16_800);
        let curves = rcfops::pipeline::curves::curves(&scores, &labels, threshold);
        let approval = match v % 3 {
            0 => "Approved",
            1 => "PendingManualApproval",
            _ => "Rejected",
        };
        tx.execute(
            "INSERT INTO versions (version, model_group, commit_sha, run, registered_ts, author_email, spec_sha256, data_sha256,
                 hyperparameters, metrics, artifact_sha256, approval, staging_test, staging_result, staging_detail)
             VALUES (?1, 'card-fraud', ?2, ?1, ?3, 'ds@bank.example', ?4, ?4, ?5, ?6, ?4, ?7, '{}', ?8, ?9)",
            params![
                v,
                commit,
                ts + 3.0,
                format!("{:064x}", v),
                serde_json::json!({"num_trees": 100, "num_samples_per_tree": 256, "seed": v}).to_string(),
                serde_json::to_string(&metrics).unwrap(),
                approval,
                (approval == "Approved").then_some("Passed"),
                (approval == "Approved").then_some("scores identical to evaluation"),
            ],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO curves (version, data) VALUES (?1, ?2)",
            params![v, serde_json::to_string(&curves).unwrap()],
        )
        .unwrap();
        if v % 10 == 0 {
            for stage in ["staging", "production"] {
                tx.execute(
                    "INSERT INTO deployments (stage, version, at_ts, reason) VALUES (?1, ?2, ?3, 'deployed')",
                    params![stage, v, ts + 60.0],
                )
                .unwrap();
            }
        }
    }
    for i in 0..AUDIT {
        let v = 1 + i % VERSIONS;
        let event = [
            "version.registered",
            "approve.accepted",
            "staging.deploy",
            "staging.passed",
            "promote.accepted",
            "production.deploy",
        ][(i % 6) as usize];
        tx.execute(
            "INSERT INTO audit (at_ts, actor, how, event, version, detail) VALUES (?1, 'lead@bank.example', 'tag', ?2, ?3, 'a detail line a person reads')",
            params![t0 + i as f64, event, v],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::parse(
        "[state]\ndir = \"state\"\n[dashboard]\nlisten = \"127.0.0.1:0\"\n",
        "config.toml",
        dir.path(),
    )
    .unwrap();
    let registry = Arc::new(Registry::open(&cfg.registry_path()).unwrap());
    let t = Instant::now();
    fill(&cfg.registry_path());
    let filled = t.elapsed();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let d = rcfops::dashboard::Dashboard::new(cfg, registry, Vec::new(), stop_rx);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        axum::serve(listener, rcfops::dashboard::router(d))
            .await
            .unwrap()
    });
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    println!(
        "dashboard render: {VERSIONS} versions, {AUDIT} audit events (registry filled in {:.1} s); {ROUNDS} sequential requests a page over loopback HTTP",
        filled.as_secs_f64()
    );
    println!(
        "{:<28} {:>10} {:>9} {:>9} {:>8}",
        "page", "bytes", "p50 ms", "p95 ms", "goal"
    );
    let mut worst: f64 = 0.0;
    for path in [
        "/",
        "/versions",
        "/versions?sort=pr_auc&order=desc",
        "/versions/500",
        "/runs",
        "/timeline",
        "/audit",
        "/audit?event=approve&version=7",
        "/monitor",
        "/api/status",
        "/api/versions/500",
    ] {
        let url = format!("http://{addr}{path}");
        let mut times = Vec::with_capacity(ROUNDS);
        let mut bytes = 0;
        for _ in 0..ROUNDS + 2 {
            let t = Instant::now();
            let r = client.get(&url).send().unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            bytes = r.bytes().unwrap().len();
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let mut times = times.split_off(2);
        let p95 = pct(&mut times, 0.95);
        let p50 = pct(&mut times, 0.5);
        worst = worst.max(p95);
        println!(
            "{:<28} {:>10} {:>9.2} {:>9.2} {:>8}",
            path,
            bytes,
            p50,
            p95,
            if p95 < GOAL_MS { "< 100" } else { "MISSED" }
        );
    }
    println!("slowest page p95: {worst:.1} ms (goal {GOAL_MS} ms)");
}
