//! Champion/challenger at registration, on the sample repo's real pipeline: a candidate is
//! scored against the version production serves, on the candidate's own held-out rows.

mod common;

use common::*;

/// The sample spec without `distance_from_home_km`, the feature that catches the far-from-home
/// fraud pattern.
fn without_distance(spec: &str) -> String {
    spec.replace("  \"distance_from_home_km\",\n", "")
}

#[test]
fn candidates_are_compared_with_production_and_gated_on_the_deltas() {
    let p = Project::new("");
    let _agent = p.start();
    p.v1_live();
    let s = p.status();
    let v1 = version(&s, 1).unwrap().clone();
    assert!(
        v1["champion"].is_null(),
        "nothing served production: {}",
        v1["champion"]
    );

    // A worse candidate under a gate against production: refused, with the deltas.
    let gated = p.commit_spec(
        |t| {
            without_distance(t).replace(
                "min_pr_auc = 0.15",
                "min_pr_auc = 0.15\nvs_production = { min_pr_auc_delta = 0.0 }",
            )
        },
        "drop distance, gate on production",
    );
    let s = p.wait_status("gated run fails", |s| {
        s["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["commit"] == gated.as_str() && r["status"] == "Failed")
    });
    let run = s["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["commit"] == gated.as_str())
        .unwrap();
    let err = run["error"].as_str().unwrap();
    assert!(
        err.starts_with("gate: gate failed against production: pr_auc delta -")
            && err.contains("vs v1: ROC-AUC"),
        "{err}"
    );
    assert!(
        version(&s, 2).is_none(),
        "a gated candidate is not registered"
    );

    // The same candidate without the gate registers, with negative deltas.
    p.commit_spec(
        |t| t.replace("vs_production = { min_pr_auc_delta = 0.0 }\n", ""),
        "no gate",
    );
    let s = p.wait_version(2);
    let c = &version(&s, 2).unwrap()["champion"];
    assert_eq!(c["version"], 1, "{c}");
    assert!(c["delta"]["pr_auc"].as_f64().unwrap() < 0.0, "{c}");
    assert!(c["delta"]["roc_auc"].as_f64().unwrap() < 0.0, "{c}");
    // The split is the same, so the champion scored on the candidate's held-out rows gives
    // exactly the metrics it was registered with.
    assert_eq!(c["metrics"]["roc_auc"], v1["metrics"]["roc_auc"]);
    assert_eq!(c["metrics"]["pr_auc"], v1["metrics"]["pr_auc"]);
    let rho = c["rank_agreement"].as_f64().unwrap();
    assert!(rho > 0.5 && rho < 1.0, "{rho}");
    // Staging serves the same v1: no separate comparison.
    assert!(version(&s, 2).unwrap()["vs_staging"].is_null());
    let table = String::from_utf8(p.rcfops(&["status"]).stdout).unwrap();
    assert!(
        table.contains("VS PROD") && table.contains("v1 -0."),
        "{table}"
    );

    // Promote the worse one; the full feature set comes back as an improvement.
    p.approve_and_wait(2);
    p.promote_and_wait(2);
    p.commit_spec(
        |_| std::fs::read_to_string(sample_repo().join("pipeline.toml")).unwrap(),
        "bring distance back",
    );
    let s = p.wait_version(3);
    let c = &version(&s, 3).unwrap()["champion"];
    assert_eq!(c["version"], 2, "{c}");
    assert!(c["delta"]["pr_auc"].as_f64().unwrap() > 0.0, "{c}");
    assert!(c["delta"]["roc_auc"].as_f64().unwrap() > 0.0, "{c}");
    // The reviewer's log line says it too.
    p.approve_and_wait(3);
    let log = p.log_lines();
    assert!(
        log.contains("tag approve/v3 accepted: approve v3 by dana@bank.example")
            && log.contains("production vs v2: ROC-AUC +"),
        "{log}"
    );
}
