//! Crash safety: the real agent is aborted at each named failure point (no destructors, no
//! flushing — as kill -9), restarted without it, and must converge with the registry intact,
//! nothing done twice, every approval given before the crash honoured, and each stage
//! serving exactly what the registry says.

mod common;

use std::collections::HashSet;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::*;

/// Drives the flow far enough to reach `point`.
fn drive_to(p: &Project, point: &str) {
    if point.starts_with("run.") {
        return; // the first run starts on its own
    }
    p.wait_version(1);
    p.tag("approve/v1", &p.version_commit(1), "dana@bank.example");
    if point == "promote.before-deploy" {
        p.wait_status("staging passed", |s| {
            version(s, 1).unwrap()["staging_tests"] == "Passed"
        });
        std::thread::sleep(Duration::from_millis(1100));
        p.tag("promote/v1", &p.version_commit(1), "lead@bank.example");
    }
}

fn served_version(base: &str) -> Option<i64> {
    http()
        .get(format!("{base}/ping"))
        .send()
        .ok()
        .filter(|r| r.status() == 200)
        .and_then(|r| {
            r.headers()
                .get("x-rcfops-model-version")?
                .to_str()
                .ok()?
                .parse()
                .ok()
        })
}

fn check_invariants(p: &Project, agent: &Agent) -> String {
    let reg = p.registry();
    assert_eq!(reg.integrity_check().unwrap(), "ok");
    let versions = reg.versions().unwrap();
    let commits: HashSet<_> = versions.iter().map(|v| v.commit.clone()).collect();
    assert_eq!(commits.len(), versions.len(), "a commit has two versions");
    for v in &versions {
        let path = p
            .state
            .join(format!("artifacts/sha256-{}.rcfm", v.artifact_sha256));
        let bytes = std::fs::read(&path).expect("a registered version's artifact exists");
        assert_eq!(
            rcfops::artifacts::sha256_hex(&bytes),
            v.artifact_sha256,
            "artifact intact"
        );
    }
    for e in std::fs::read_dir(p.state.join("artifacts"))
        .unwrap()
        .flatten()
    {
        assert!(
            !e.file_name().to_string_lossy().starts_with(".tmp-"),
            "half-written artifact left behind"
        );
    }
    // Each stage serves exactly the version the registry derives for it.
    let staging = reg.staging_target().unwrap();
    let production = reg.production_target().unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || served_version(&agent.staging)
            == staging
            && served_version(&agent.production) == production),
        "stages serve {:?}/{:?}, registry says {staging:?}/{production:?}",
        served_version(&agent.staging),
        served_version(&agent.production)
    );
    let runs = reg.runs(100).unwrap();
    let interrupted = runs.iter().filter(|r| r.interrupted).count();
    format!(
        "{} version(s), {} run(s) ({} interrupted and redone), staging {:?}, production {:?}",
        versions.len(),
        runs.len(),
        interrupted,
        staging,
        production
    )
}

#[test]
fn every_failure_point_recovers() {
    let mut table = Vec::new();
    // A notification sink, so the dispatcher is at work through every crash.
    let sink = "\n[[notify.sinks]]\nname = \"log\"\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"cat > /dev/null\"]\n";
    for &point in rcfops::failpoint::POINTS {
        let p = Project::new(sink);
        let spec = format!("{point}=abort");
        let mut agent = p.start_with(&[("RCFOPS_FAILPOINTS", spec.as_str())]);
        drive_to(&p, point);
        let status = agent.wait_exit(Duration::from_secs(60));
        let status = status.unwrap_or_else(|| {
            panic!(
                "{point}: the agent never reached the failure point\n{}",
                p.agent_stderr()
            )
        });
        assert_eq!(status.signal(), Some(libc_sigabrt()), "{point}: {status:?}");
        drop(agent);

        let agent = p.start();
        // Converge: v1 registered; approvals given before the crash honoured.
        p.wait_version(1);
        match point {
            "deploy.after-swap" | "staging.before-record" => {
                p.wait_status("staging passed after restart", |s| {
                    stage_version(s, "staging") == Some(1)
                        && version(s, 1).unwrap()["staging_tests"] == "Passed"
                });
            }
            "promote.before-deploy" => {
                p.wait_status("production after restart", |s| {
                    stage_version(s, "production") == Some(1)
                });
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(700));
        let outcome = check_invariants(&p, &agent);
        let reg = p.registry();
        // Every transition was announced and, after the restart, delivered.
        let delivered = wait_until(Duration::from_secs(20), || {
            let events = reg.outbox(1000).unwrap();
            !events.is_empty()
                && events.iter().all(|e| {
                    e.deliveries.iter().any(|d| {
                        d.sink == "log" && d.state == rcfops::domain::DeliveryState::Delivered
                    })
                })
        });
        assert!(
            delivered,
            "{point}: an event was not delivered: {:?}",
            reg.outbox(1000).unwrap()
        );
        let runs = reg.runs(100).unwrap();
        match point {
            "run.after-load" | "run.mid-train" | "run.after-artifact" => {
                assert_eq!(
                    runs.len(),
                    2,
                    "{point}: interrupted run + its redo: {runs:?}"
                );
                assert!(
                    runs.iter().any(|r| r.interrupted && r.status == "Failed"),
                    "{point}"
                );
                assert!(
                    runs.iter()
                        .any(|r| r.status == "Succeeded" && r.version == Some(1)),
                    "{point}"
                );
            }
            _ => assert_eq!(runs.len(), 1, "{point}: nothing redone: {runs:?}"),
        }
        let deploys = reg
            .audit_log(1000)
            .unwrap()
            .into_iter()
            .filter(|a| a.event == "staging.deploy")
            .count();
        if point == "deploy.after-swap" || point == "staging.before-record" {
            assert_eq!(deploys, 1, "{point}: one staging deployment recorded");
        }
        table.push(format!("| {point} | {outcome} |"));
    }
    println!("| failure point | state after restart |\n|---|---|");
    for row in table {
        println!("{row}");
    }
}

fn libc_sigabrt() -> i32 {
    6
}

#[test]
fn commit_storm_registers_the_head_once() {
    let p = Project::new("");
    let agent = p.start();
    p.wait_version(1);
    let pid = agent.child.id();
    let mut commits = Vec::new();
    for i in 0..50 {
        commits.push(p.commit(
            &[("NOTES.md", format!("storm {i}\n").as_bytes())],
            &format!("storm {i}"),
        ));
        std::thread::sleep(Duration::from_millis(40));
    }
    let head = commits.last().unwrap().clone();
    p.wait_commit_registered(&head);
    std::thread::sleep(Duration::from_millis(700));
    let reg = p.registry();
    let versions = reg.versions().unwrap();
    let unique: HashSet<_> = versions.iter().map(|v| &v.commit).collect();
    assert_eq!(unique.len(), versions.len(), "no duplicates");
    let runs = reg.runs(1000).unwrap();
    for c in &commits {
        let rs: Vec<_> = runs.iter().filter(|r| &r.commit == c).collect();
        assert!(!rs.is_empty(), "commit {c} has no run record");
        assert!(
            rs.iter()
                .all(|r| r.status == "Skipped" || r.status == "Succeeded"),
            "{rs:?}"
        );
        assert!(rs.iter().filter(|r| r.status == "Succeeded").count() <= 1);
    }
    let skipped = runs.iter().filter(|r| r.status == "Skipped").count();
    assert!(
        skipped >= 30,
        "most of the storm is skipped, not trained: {skipped}"
    );
    // Memory stays bounded.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(rss_kb < 400 * 1024, "agent RSS {rss_kb} kB after the storm");
}
