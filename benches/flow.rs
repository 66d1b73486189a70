//! Flow latency benchmark: commit → version pending, and approve tag → staging serving, on the
//! sample repo with the real release binary and the shipped agent settings (debounce 100 ms).
//! Median of 7 rounds. Run: `cargo bench --bench flow`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let p = Project::new("");
    let cfg = std::fs::read_to_string(&p.cfg_path)
        .unwrap()
        .replace("debounce_ms = 20", "debounce_ms = 100")
        .replace("resync_ms = 300", "resync_ms = 2000")
        .replace("staging_test_records = 60", "staging_test_records = 200");
    std::fs::write(&p.cfg_path, cfg).unwrap();
    let agent = p.start();
    p.wait_version(1);
    let reg = p.registry();
    let client = http();
    let rounds = 7;
    let (mut pending, mut staging, mut train) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..rounds {
        let n = i as i64 + 2;
        let t0 = Instant::now();
        p.commit_spec(
            |t| t.replace("seed = 42", &format!("seed = {}", 100 + i)),
            "reseed",
        );
        while reg.version(n).unwrap().is_none() {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "v{n} never registered"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        pending.push(t0.elapsed().as_secs_f64() * 1e3);
        let run = reg.version(n).unwrap().unwrap().run;
        train.push(
            reg.steps(run)
                .unwrap()
                .iter()
                .filter_map(|s| s.duration_ms)
                .sum::<f64>(),
        );

        let t1 = Instant::now();
        p.tag(
            &format!("approve/v{n}"),
            &p.version_commit(n),
            "dana@bank.example",
        );
        loop {
            let served = client
                .get(format!("{}/ping", agent.staging))
                .send()
                .ok()
                .and_then(|r| {
                    r.headers()
                        .get("x-rcfops-model-version")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                });
            if served.as_deref() == Some(n.to_string().as_str()) {
                break;
            }
            assert!(
                t1.elapsed() < Duration::from_secs(60),
                "v{n} never reached staging"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        staging.push(t1.elapsed().as_secs_f64() * 1e3);
        // Let the staging tests finish before the next round.
        while reg.version(n).unwrap().unwrap().staging_result.is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    println!(
        "flow latency on the sample repo ({} rows), median of {rounds}:",
        24_000
    );
    println!("  commit → version pending      {:>7.1} ms   (goal < 1000 ms; of which run steps {:.1} ms)", median(pending.clone()), median(train));
    println!(
        "  approve tag → staging serving {:>7.1} ms   (goal < 1000 ms)",
        median(staging.clone())
    );
    println!("  all rounds: pending {pending:.0?} ms; staging {staging:.0?} ms");
}
