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

#[test]
fn exit_codes_tell_a_failed_operation_from_a_usage_error() {
    let p = Project::new("");
    let out = p.rcfops(&["run"]);
    assert!(out.status.success());
    // Usage: a malformed version number, an unknown stage.
    for args in [&["approve", "x1"][..], &["rollback", "prod"][..]] {
        let out = p.rcfops(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
    // A failed operation: the endpoint cannot be reached (no agent runs).
    let out = output_with_stdin(
        p.cmd(&["score", "--stage", "production"]),
        sample_records(1)[0].as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the production endpoint"));
}

#[test]
fn eval_takes_the_model_repos_pipeline_toml_gate_included() {
    let p = Project::new("");
    let spec = p.repo_path.join("pipeline.toml");
    let out = p.rcfops(&["eval", "--spec", spec.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Exactly what a commit runs: the registered v1 has the same metrics.
    assert!(p.rcfops(&["run"]).status.success());
    let v1 = p.registry().version(1).unwrap().unwrap();
    assert_eq!(doc["metrics"], v1.metrics);
    assert_eq!(doc["gate"]["passed"], true);

    // A gate the model cannot meet: exit 1, and the verdict says what a commit would do.
    let text = std::fs::read_to_string(&spec).unwrap();
    let strict = p.dir.path().join("strict.toml");
    let data = p.repo_path.join("data/transactions.csv");
    std::fs::write(
        &strict,
        text.replace("min_roc_auc = 0.85", "min_roc_auc = 0.999"),
    )
    .unwrap();
    let out = p.rcfops(&[
        "eval",
        "--spec",
        strict.to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("gate failed: roc_auc") && stdout.contains("would register nothing"),
        "{stdout}"
    );
    // Flags that the spec decides are refused beside it.
    let out = p.rcfops(&["eval", "--spec", spec.to_str().unwrap(), "--trees", "50"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn stream_reads_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let csv: String = std::iter::once("timestamp,value".to_string())
        .chain((0..300).map(|i| format!("{i},{}", (i as f64 / 7.0).sin())))
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.path().join("s.csv");
    std::fs::write(&path, &csv).unwrap();
    let from_file = std::process::Command::new(BIN)
        .args(["stream", path.to_str().unwrap()])
        .output()
        .unwrap();
    let mut stream = std::process::Command::new(BIN);
    stream.args(["stream", "-"]);
    let from_stdin = output_with_stdin(stream, csv.as_bytes());
    assert!(from_stdin.status.success());
    assert_eq!(from_stdin.stdout, from_file.stdout);
    assert_eq!(
        String::from_utf8_lossy(&from_stdin.stdout).lines().count(),
        300
    );
}

#[test]
fn logs_take_a_line_count_and_a_start_time() {
    let p = Project::new("");
    assert!(p.rcfops(&["run"]).status.success());
    let all = String::from_utf8(p.rcfops(&["logs"]).stdout).unwrap();
    let n = all.lines().count();
    assert!(n > 3, "{all}");
    let last2 = String::from_utf8(p.rcfops(&["logs", "-n", "2"]).stdout).unwrap();
    assert_eq!(
        last2.lines().collect::<Vec<_>>(),
        all.lines().skip(n - 2).collect::<Vec<_>>()
    );
    // The human form keeps the fields the JSON has (step timings, metrics).
    assert!(all.contains("step=train") && all.contains(" ms="), "{all}");
    assert!(all.contains("roc_auc="), "{all}");
    assert!(!all.contains('\u{1b}'), "no colour codes in a pipe");
    let future = String::from_utf8(
        p.rcfops(&["logs", "--since", "2099-01-01T00:00:00Z"])
            .stdout,
    )
    .unwrap();
    assert!(future.is_empty(), "{future}");
    let recent = String::from_utf8(p.rcfops(&["logs", "--since", "1h"]).stdout).unwrap();
    assert_eq!(recent.lines().count(), n);
    let out = p.rcfops(&["logs", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since \"yesterday\""));
}
