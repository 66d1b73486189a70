//! The whole flow against the real binary: commit → v1 pending → approve → staging (tests
//! pass, scores served) → promote → production; reject and rollback; restart after kill -9;
//! newest commit wins; runs read the commit, not the working tree.

mod common;

use common::*;
use rcfops::model::Model;

#[test]
fn happy_path_commit_to_production() {
    let p = Project::new("");
    let agent = p.start();
    let s = p.wait_version(1);
    let v1 = version(&s, 1).unwrap();
    assert_eq!(v1["approval"], "PendingManualApproval");
    assert!(v1["stage"].is_null());
    assert_eq!(v1["commit"], p.head());
    let roc = v1["metrics"]["roc_auc"].as_f64().unwrap();
    assert!(
        roc > 0.85,
        "sample data should give a good model, got ROC-AUC {roc}"
    );
    assert!(v1["metrics"]["pr_auc"].as_f64().unwrap() > 0.1);
    assert_eq!(s["runs"][0]["status"], "Succeeded");
    assert!(s["runs"][0]["error"].is_null());
    assert_eq!(s["endpoints"]["staging"]["name"], "card-fraud-staging");
    assert_eq!(s["endpoints"]["production"]["name"], "card-fraud-prod");
    assert!(s["endpoints"]["staging"]["version"].is_null());

    // Nothing is served before approval.
    let ping = http()
        .get(format!("{}/ping", agent.staging))
        .send()
        .unwrap();
    assert_eq!(ping.status(), 503);
    let (code, _, body) = post_csv(&agent.staging, "/invocations", &sample_records(1)[0]);
    assert_eq!(code, 503, "{body}");

    p.approve_and_wait(1);
    assert_eq!(
        http()
            .get(format!("{}/ping", agent.staging))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http()
            .get(format!("{}/ping", agent.production))
            .send()
            .unwrap()
            .status(),
        503
    );

    // Staging serves exactly the registered artifact.
    let records = sample_records(25);
    let reg = p.registry();
    let digest = reg.version(1).unwrap().unwrap().artifact_sha256;
    let bytes = std::fs::read(p.state.join(format!("artifacts/sha256-{digest}.rcfm"))).unwrap();
    assert_eq!(rcfops::artifacts::sha256_hex(&bytes), digest);
    let model = Model::from_bytes(&bytes).unwrap();
    let flat: Vec<f64> = records
        .iter()
        .flat_map(|l| {
            l.split(',')
                .map(|c| c.parse::<f64>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let expected = model.score_rows(&flat, records.len());
    let (code, served_by, body) = post_csv(
        &agent.staging,
        "/endpoints/card-fraud-staging/invocations",
        &records.join("\n"),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(served_by, Some(1));
    let got: Vec<f64> = body["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["score"].as_f64().unwrap())
        .collect();
    assert_eq!(got, expected);

    p.promote_and_wait(1);
    let (code, served_by, body) = post_csv(
        &agent.production,
        "/endpoints/card-fraud-prod/invocations",
        &records.join("\n"),
    );
    assert_eq!((code, served_by), (200, Some(1)), "{body}");
    let prod: Vec<f64> = body["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["score"].as_f64().unwrap())
        .collect();
    assert_eq!(prod, expected);
    // `rcfops score` prints one score a line, the same ones.
    let file = p.dir.path().join("records.csv");
    std::fs::write(&file, records.join("\n")).unwrap();
    let out = p.rcfops(&["score", "--stage", "production", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Vec<f64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(printed, expected);
    // The runtime path must name this stage's endpoint.
    let (code, _, body) = post_csv(
        &agent.production,
        "/endpoints/card-fraud-staging/invocations",
        &records[0],
    );
    assert_eq!(code, 404, "{body}");

    let s = p.status();
    let v1 = version(&s, 1).unwrap();
    assert_eq!(v1["approval"], "Approved");
    assert_eq!(v1["stage"], "production");
    let events: Vec<String> = reg
        .audit_log(100)
        .unwrap()
        .into_iter()
        .map(|a| a.event)
        .collect();
    for e in [
        "run.started",
        "version.registered",
        "approve.accepted",
        "staging.deploy",
        "staging.passed",
        "promote.accepted",
        "production.deploy",
    ] {
        assert!(
            events.iter().any(|x| x == e),
            "missing audit event {e}: {events:?}"
        );
    }
    let approve = reg
        .approvals()
        .unwrap()
        .into_iter()
        .find(|a| a.action.is_some_and(|x| x == "approve"))
        .unwrap();
    assert_eq!(
        (approve.approver.as_str(), approve.method.as_str()),
        ("dana@bank.example", "tag")
    );

    // Every run log line carries the run id and commit.
    let log = p.log_lines();
    let run_lines: Vec<&str> = log.lines().filter(|l| l.contains("\"step\"")).collect();
    assert!(!run_lines.is_empty());
    for l in run_lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["span"]["run"], 1, "{l}");
        assert!(
            p.head().starts_with(v["span"]["commit"].as_str().unwrap()),
            "{l}"
        );
    }
    let out = p.rcfops(&["logs", "--run", "1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("registered v1") && text.contains("run=1"),
        "{text}"
    );
}

#[test]
fn reject_and_rollback_move_stages_back() {
    let p = Project::new("");
    let _agent = p.start();
    p.v1_live();
    p.commit_spec(
        |t| t.replace("num_trees = 100", "num_trees = 60"),
        "fewer trees",
    );
    p.wait_version(2);
    p.approve_and_wait(2);
    p.promote_and_wait(2);

    // Production rollback: back to v1 and held there; staging keeps v2.
    let out = p.rcfops(&["rollback", "production", "--reason", "latency regression"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = p.wait_status("production back on v1", |s| {
        stage_version(s, "production") == Some(1)
    });
    assert_eq!(stage_version(&s, "staging"), Some(2));
    // The reason is in the status (until the next promotion) and in the audit.
    let rb = &s["endpoints"]["production"]["rolled_back"];
    assert_eq!(
        (rb["from"].as_i64(), rb["reason"].as_str()),
        (Some(2), Some("latency regression")),
        "{rb}"
    );
    let table = String::from_utf8_lossy(&p.rcfops(&["status"]).stdout).to_string();
    assert!(
        table.contains("(rolled back from v2 by") && table.contains(": latency regression)"),
        "{table}"
    );
    assert!(p
        .registry()
        .audit_log(1000)
        .unwrap()
        .iter()
        .any(|a| a.event == "rollback.accepted"
            && a.detail
                .as_deref()
                .is_some_and(|d| d.ends_with(": latency regression"))));

    // Rejecting the live staging version rolls staging back to the previous approved one.
    p.tag("reject/v2", &p.version_commit(2), "risk@bank.example");
    let s = p.wait_status("staging back on v1", |s| {
        stage_version(s, "staging") == Some(1)
    });
    assert_eq!(version(&s, 2).unwrap()["approval"], "Rejected");
    assert!(version(&s, 2).unwrap()["reject_reason"]
        .as_str()
        .unwrap()
        .contains("risk@bank.example"));
    assert_eq!(stage_version(&s, "production"), Some(1));

    // Production has nothing older: the rollback is refused and changes nothing.
    let out = p.rcfops(&["rollback", "production"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no previous version"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(stage_version(&p.status(), "production"), Some(1));

    // `rollback staging` rejects the staging version with the reason recorded. v1 is the only
    // version either stage has, so it takes --force.
    let out = p.rcfops(&["rollback", "staging", "--reason", "bad scores", "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let s = p.wait_status("staging empty", |s| stage_version(s, "staging").is_none());
    assert_eq!(version(&s, 1).unwrap()["approval"], "Rejected");
    let why = version(&s, 1).unwrap()["reject_reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        why.ends_with(": bad scores"),
        "the reason given is recorded: {why}"
    );
    // A rejected production version is withdrawn: nothing approved remains.
    assert_eq!(stage_version(&s, "production"), None);
}

#[test]
fn restart_after_kill_registers_nothing_twice_and_reserves() {
    let p = Project::new("");
    let mut agent = p.start();
    p.v1_live();
    p.commit_spec(|t| t.replace("seed = 42", "seed = 9"), "reseed");
    p.wait_version(2);
    p.approve_and_wait(2);
    let before = p.registry();
    let runs_before = before.runs(100).unwrap().len();
    let deployments_before = before
        .audit_log(1000)
        .unwrap()
        .iter()
        .filter(|a| a.event.ends_with(".deploy"))
        .count();
    agent.kill9();

    let agent = p.start();
    assert!(wait_until(std::time::Duration::from_secs(20), || {
        http()
            .get(format!("{}/ping", agent.production))
            .send()
            .map(|r| r.status() == 200)
            .unwrap_or(false)
            && http()
                .get(format!("{}/ping", agent.staging))
                .send()
                .map(|r| r.status() == 200)
                .unwrap_or(false)
    }));
    let s = p.status();
    assert_eq!(
        (
            stage_version(&s, "staging"),
            stage_version(&s, "production")
        ),
        (Some(2), Some(1))
    );
    assert_eq!(s["versions"].as_array().unwrap().len(), 2);
    let (code, v, _) = post_csv(&agent.staging, "/invocations", &sample_records(1)[0]);
    assert_eq!((code, v), (200, Some(2)));
    let (code, v, _) = post_csv(&agent.production, "/invocations", &sample_records(1)[0]);
    assert_eq!((code, v), (200, Some(1)));
    std::thread::sleep(std::time::Duration::from_millis(800)); // a few resync passes
    let reg = p.registry();
    assert_eq!(
        reg.runs(100).unwrap().len(),
        runs_before,
        "no run was repeated"
    );
    assert_eq!(reg.versions().unwrap().len(), 2);
    let deployments = reg
        .audit_log(1000)
        .unwrap()
        .iter()
        .filter(|a| a.event.ends_with(".deploy"))
        .count();
    assert_eq!(
        deployments, deployments_before,
        "re-serving is not a new deployment"
    );
    assert_eq!(reg.integrity_check().unwrap(), "ok");
}

#[test]
fn newest_commit_wins_and_superseded_commits_are_skipped() {
    let p = Project::new("");
    let mut agent = p.start();
    p.wait_version(1);
    agent.stop();
    let mut commits = Vec::new();
    for i in 0..4 {
        commits.push(p.commit(
            &[("NOTES.md", format!("experiment {i}\n").as_bytes())],
            &format!("experiment {i}"),
        ));
    }
    let _agent = p.start();
    let s = p.wait_version(2);
    assert_eq!(version(&s, 2).unwrap()["commit"], commits[3].as_str());
    let reg = p.registry();
    for c in &commits[..3] {
        let runs: Vec<_> = reg
            .runs(100)
            .unwrap()
            .into_iter()
            .filter(|r| &r.commit == c)
            .collect();
        assert_eq!(runs.len(), 1, "one run row per superseded commit");
        assert_eq!(runs[0].status, "Skipped");
        assert!(runs[0].error.as_deref().unwrap().contains("superseded"));
    }
    // Commits arriving while a run is in flight: whatever wins, no commit has two versions
    // and the head ends registered.
    let mut more = Vec::new();
    for i in 0..5 {
        more.push(p.commit(
            &[("NOTES.md", format!("burst {i}\n").as_bytes())],
            &format!("burst {i}"),
        ));
        std::thread::sleep(std::time::Duration::from_millis(60));
    }
    let head = more.last().unwrap().clone();
    p.wait_commit_registered(&head);
    let versions = reg.versions().unwrap();
    let mut seen = std::collections::HashSet::new();
    for v in &versions {
        assert!(seen.insert(v.commit.clone()), "commit registered twice");
    }
    for c in &more {
        let settled = reg
            .runs(100)
            .unwrap()
            .into_iter()
            .any(|r| &r.commit == c && (r.status == "Skipped" || r.status == "Succeeded"));
        assert!(settled, "commit {c} has no run record");
    }
}

#[test]
fn runs_read_the_commit_not_the_working_tree() {
    let p = Project::new("");
    let _agent = p.start();
    p.wait_version(1);
    // A broken, uncommitted pipeline.toml must not leak into the next run.
    std::fs::write(p.repo_path.join("pipeline.toml"), "this is not toml").unwrap();
    let c = p.commit(&[("NOTES.md", b"data looks fine\n")], "notes only");
    let s = p.wait_version(2);
    assert_eq!(version(&s, 2).unwrap()["commit"], c.as_str());
}

#[test]
fn run_every_commit_runs_each_commit_in_order() {
    let p = Project::new("");
    let cfg = std::fs::read_to_string(&p.cfg_path)
        .unwrap()
        .replace("[agent]\n", "[agent]\nrun_every_commit = true\n");
    std::fs::write(&p.cfg_path, cfg).unwrap();
    let mut agent = p.start();
    p.wait_version(1);
    agent.stop();
    let commits: Vec<String> = (0..3)
        .map(|i| {
            p.commit(
                &[("NOTES.md", format!("step {i}\n").as_bytes())],
                &format!("step {i}"),
            )
        })
        .collect();
    let _agent = p.start();
    let s = p.wait_version(4);
    for (i, c) in commits.iter().enumerate() {
        assert_eq!(
            version(&s, i as i64 + 2).unwrap()["commit"],
            c.as_str(),
            "versions follow commit order"
        );
    }
    assert!(p
        .registry()
        .runs(100)
        .unwrap()
        .iter()
        .all(|r| r.status == "Succeeded"));
}

#[test]
fn decisions_made_while_the_agent_is_down_apply_at_start() {
    let p = Project::new("");
    let mut agent = p.start();
    p.wait_version(1);
    p.approve_and_wait(1);
    agent.stop();
    // v1 is all staging has: rejecting it takes the tag's `Force: true` trailer.
    p.tag_with(
        "reject/v1",
        &p.version_commit(1),
        "risk@bank.example",
        "withdraw v1\n\nForce: true",
        None,
    );
    let agent = p.start();
    let s = p.wait_status("staging withdrawn", |s| {
        stage_version(s, "staging").is_none()
    });
    assert_eq!(version(&s, 1).unwrap()["approval"], "Rejected");
    let (code, _, _) = post_csv(&agent.staging, "/invocations", &sample_records(1)[0]);
    assert_eq!(code, 503);
}

#[test]
fn logs_follow_shows_new_runs_as_they_happen() {
    use std::io::BufRead;
    let p = Project::new("");
    let _agent = p.start();
    p.wait_version(1);
    let mut follow = p
        .cmd(&["logs", "-f"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The history is printed first...
    let first = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    assert!(
        first.contains(" INFO ") || first.contains(" WARN "),
        "{first}"
    );
    // ...then lines of a run that starts after `logs -f` did.
    p.commit(&[("NOTES.md", b"follow me\n")], "follow me");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = false;
    while std::time::Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            if l.contains("registered v2") && l.contains("run=2") {
                seen = true;
                break;
            }
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(seen, "`rcfops logs -f` did not show run 2 registering v2");
}

#[test]
fn a_registry_written_by_the_earlier_release_opens_and_serves() {
    let p = Project::new("");
    let mut agent = p.start();
    p.v1_live();
    agent.stop();
    // Take the registry back to the earlier release's schema: no approvals.note/forced.
    let conn = rusqlite::Connection::open(p.state.join("registry.sqlite")).unwrap();
    conn.execute_batch(
        "ALTER TABLE approvals DROP COLUMN note; ALTER TABLE approvals DROP COLUMN forced;",
    )
    .unwrap();
    drop(conn);
    let agent = p.start();
    let s = p.wait_status("production serves v1 again", |s| {
        stage_version(s, "production") == Some(1)
    });
    assert_eq!(version(&s, 1).unwrap()["approval"], "Approved");
    assert!(wait_until(std::time::Duration::from_secs(20), || {
        http()
            .get(format!("{}/ping", agent.production))
            .send()
            .is_ok_and(|r| r.status() == 200)
    }));
    let (code, served, body) = post_csv(&agent.production, "/invocations", &sample_records(1)[0]);
    assert_eq!((code, served), (200, Some(1)), "{body}");
}
