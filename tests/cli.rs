//! The command line as a user meets it: config errors, init, eval, status output.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn config_errors_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[repo]\nbranch = \"main\"\ntemplate_dir = \"x\"\n").unwrap();
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:3:") && err.contains("template_dir"),
        "{err}"
    );

    std::fs::write(&cfg, "[endpoints.staging]\nlisten = \"localhost\"\n").unwrap();
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("status")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:2") && err.contains("listen"),
        "{err}"
    );

    // An explicitly named config that does not exist is an error, not silent defaults.
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(dir.path().join("nope.toml"))
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.toml: cannot read"));
}

#[test]
fn init_creates_one_commit_and_is_idempotent() {
    let p = Project::new("");
    let repo = p.repo();
    let head = repo.head().unwrap();
    assert_eq!(head.shorthand(), Some("main"));
    let c = head.peel_to_commit().unwrap();
    assert_eq!(c.parent_count(), 0);
    assert!(c
        .tree()
        .unwrap()
        .get_path(std::path::Path::new("data/transactions.csv"))
        .is_ok());
    let out = p.rcfops(&["init"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already exists"));
    assert_eq!(p.head(), c.id().to_string());
}

#[test]
fn eval_prints_metrics_and_json() {
    let data = sample_repo().join("data/transactions.csv");
    let out = std::process::Command::new(BIN)
        .args([
            "eval",
            data.to_str().unwrap(),
            "--label",
            "is_fraud",
            "--exclude",
            "transaction_id",
            "--json",
            "--trees",
            "50",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let roc = v["metrics"]["roc_auc"].as_f64().unwrap();
    assert!((0.8..=1.0).contains(&roc), "{v}");
    assert!(v["metrics"]["pr_auc"].as_f64().unwrap() > 0.05);
    assert!(v["metrics"]["threshold"].as_f64().unwrap() > 0.0);
    assert!(v["timings"]["train_ms"].as_f64().unwrap() > 0.0);

    // --test-fraction 0: train on all rows and score the same rows.
    let out = std::process::Command::new(BIN)
        .args([
            "eval",
            data.to_str().unwrap(),
            "--label",
            "is_fraud",
            "--test-fraction",
            "0",
            "--json",
        ])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["metrics"]["test_rows"], 24000);
    assert_eq!(v["metrics"]["train_rows"], 24000);

    // Same seed, same numbers.
    let run = || {
        let out = std::process::Command::new(BIN)
            .args([
                "eval",
                data.to_str().unwrap(),
                "--label",
                "is_fraud",
                "--json",
                "--seed",
                "3",
            ])
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["metrics"].clone()
    };
    assert_eq!(run(), run());

    let out = std::process::Command::new(BIN)
        .args(["eval", data.to_str().unwrap(), "--label", "fraud"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("label column \"fraud\" is not in the header"));
    let out = std::process::Command::new(BIN)
        .args([
            "eval",
            data.to_str().unwrap(),
            "--label",
            "is_fraud",
            "--trees",
            "10",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("num_trees"));
}

#[test]
fn status_and_runs_read_the_registry() {
    let p = Project::new("");
    let out = p.rcfops(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("start the agent first"));
    // A foreground run registers v1 without the agent.
    let out = p.rcfops(&["run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("registered v1"));
    let out = p.rcfops(&["run"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("already v1"));
    let s = p.status();
    assert_eq!(s["versions"].as_array().unwrap().len(), 1);
    assert_eq!(s["versions"][0]["approval"], "PendingManualApproval");
    assert!(s["versions"][0]["stage"].is_null());
    for key in [
        "roc_auc",
        "pr_auc",
        "threshold",
        "precision",
        "recall",
        "f1",
    ] {
        assert!(s["versions"][0]["metrics"][key].is_number(), "{key}");
    }
    assert_eq!(s["runs"][0]["status"], "Succeeded");
    assert!(s["endpoints"]["staging"]["url"]
        .as_str()
        .unwrap()
        .starts_with("http://"));
    let table = String::from_utf8(p.rcfops(&["status"]).stdout).unwrap();
    assert!(
        table.contains("v1") && table.contains("PendingManualApproval"),
        "{table}"
    );
    let runs = String::from_utf8(p.rcfops(&["runs"]).stdout).unwrap();
    assert!(
        runs.contains("Succeeded") && runs.contains("train"),
        "{runs}"
    );
}

#[test]
fn one_agent_per_state_folder() {
    let p = Project::new("");
    let _agent = p.start();
    p.wait_version(1);
    let out = p
        .cmd(&["up"])
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another rcfops agent is already running"),
        "{err}"
    );
    // The running agent is unaffected.
    assert_eq!(p.status()["agent_running"], true);
}
