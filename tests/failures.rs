//! Bad input to runs and endpoints: each gives a failed run with a clear message and no
//! version, or a 4xx with a JSON error, and the agent keeps going.

mod common;

use common::*;
use serde_json::Value;

fn last_run(p: &Project, commit: &str) -> Value {
    let s = p.wait_status(&format!("run of {commit}"), |s| {
        s["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["commit"] == commit && r["status"] != "Running")
    });
    s["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["commit"] == commit)
        .unwrap()
        .clone()
}

#[test]
fn bad_commits_fail_their_run_and_register_nothing() {
    let p = Project::new("");
    let _agent = p.start();
    p.wait_version(1);
    let good_spec = std::fs::read_to_string(p.repo_path.join("pipeline.toml")).unwrap();
    let good_data = std::fs::read(p.repo_path.join("data/transactions.csv")).unwrap();
    let header = String::from_utf8_lossy(&good_data)
        .lines()
        .next()
        .unwrap()
        .to_string();

    type Files<'a> = Vec<(&'a str, Vec<u8>)>;
    let cases: Vec<(&str, Files, &str)> = vec![
        (
            "syntax error",
            vec![("pipeline.toml", b"[data\npath = 1\n".to_vec())],
            "pipeline.toml:1",
        ),
        (
            "out-of-range trees",
            vec![(
                "pipeline.toml",
                good_spec
                    .replace("num_trees = 100", "num_trees = 5")
                    .into_bytes(),
            )],
            "`num_trees`",
        ),
        (
            "missing data file",
            vec![(
                "pipeline.toml",
                good_spec
                    .replace("data/transactions.csv", "data/missing.csv")
                    .into_bytes(),
            )],
            "data file \"data/missing.csv\"",
        ),
        (
            "unknown feature",
            vec![(
                "pipeline.toml",
                good_spec
                    .replace("\"hour\"", "\"hour_of_day\"")
                    .into_bytes(),
            )],
            "feature column \"hour_of_day\"",
        ),
        (
            "non-numeric value",
            vec![("data/transactions.csv", {
                let mut t = String::from_utf8(good_data.clone()).unwrap();
                let at = t.find('\n').unwrap() + 1;
                let end = at + t[at..].find(',').unwrap();
                t.replace_range(at..end, "abc");
                t.into_bytes()
            })],
            "line 2, column \"transaction_id\": \"abc\" is not a number",
        ),
        (
            "NaN value",
            vec![(
                "data/transactions.csv",
                format!(
                    "{header}\n{}\n",
                    vec!["NaN"; header.split(',').count()].join(",")
                )
                .into_bytes(),
            )],
            "line 2, column",
        ),
        (
            "header only",
            vec![("data/transactions.csv", format!("{header}\n").into_bytes())],
            "no data rows",
        ),
        (
            "gate fails",
            vec![(
                "pipeline.toml",
                good_spec
                    .replace("min_roc_auc = 0.85", "min_roc_auc = 0.9999")
                    .into_bytes(),
            )],
            "gate failed: roc_auc",
        ),
    ];
    for (name, files, expected) in cases {
        let files_ref: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (*p, c.as_slice())).collect();
        let c = p.commit(&files_ref, name);
        let r = last_run(&p, &c);
        assert_eq!(r["status"], "Failed", "{name}: {r}");
        let err = r["error"].as_str().unwrap();
        assert!(
            err.contains(expected),
            "{name}: expected {expected:?} in {err:?}"
        );
        // Restore the good files for the next case.
        p.commit(
            &[
                ("pipeline.toml", good_spec.as_bytes()),
                ("data/transactions.csv", &good_data),
            ],
            "restore",
        );
        let head = p.head();
        p.wait_status("restore registered", |s| {
            s["versions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["commit"] == head.as_str())
        });
    }
    // Only the good commits have versions, and the failed ones are never retried.
    let reg = p.registry();
    let versions = reg.versions().unwrap();
    assert_eq!(versions.len(), 9);
    let failed = reg
        .runs(100)
        .unwrap()
        .into_iter()
        .filter(|r| r.status == "Failed")
        .count();
    assert_eq!(failed, 8);
    let steps = reg
        .steps(
            reg.runs(100)
                .unwrap()
                .into_iter()
                .find(|r| r.status == "Failed")
                .unwrap()
                .run,
        )
        .unwrap();
    assert!(steps
        .iter()
        .any(|s| s.status == "Failed" && s.error.is_some()));
}

#[test]
fn bad_request_bodies_get_4xx_and_the_endpoint_keeps_serving() {
    let p = Project::new("");
    let agent = p.start();
    p.wait_version(1);
    p.tag("approve/v1", &p.version_commit(1), "dana@bank.example");
    p.wait_status("staging", |s| stage_version(s, "staging") == Some(1));
    let good = sample_records(3).join("\n");
    let url = format!("{}/invocations", agent.staging);
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "text/csv",
            "*/*",
            b"1,2,3\n".to_vec(),
            400,
            "record 0: expected 8 features, got 3",
        ),
        (
            "text/csv",
            "*/*",
            format!("{good}\n1,2,x,4,5,6,7,8\n").into_bytes(),
            400,
            "record 3",
        ),
        (
            "text/csv",
            "*/*",
            b"1,2,3,4,5,6,7,NaN\n".to_vec(),
            400,
            "not a finite number",
        ),
        ("text/csv", "*/*", Vec::new(), 400, "no records"),
        ("text/csv", "*/*", vec![0xff, 0xfe, b'\n'], 400, "UTF-8"),
        (
            "application/json",
            "*/*",
            b"{\"instances\": [".to_vec(),
            400,
            "malformed JSON",
        ),
        (
            "application/json",
            "*/*",
            b"{\"rows\": []}".to_vec(),
            400,
            "instances",
        ),
        (
            "application/jsonlines",
            "*/*",
            b"{\"features\":[1]}\n".to_vec(),
            400,
            "expected 8 features",
        ),
        (
            "application/x-recordio-protobuf",
            "*/*",
            b"x".to_vec(),
            415,
            "unsupported Content-Type",
        ),
        (
            "text/csv",
            "text/html",
            good.clone().into_bytes(),
            406,
            "Accept",
        ),
        ("text/csv", "*/*", vec![b'1'; 6_291_457], 413, "6291456"),
    ];
    for (ct, accept, body, code, msg) in cases {
        let r = http()
            .post(&url)
            .header("content-type", ct)
            .header("accept", accept)
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), code, "{ct} {msg}");
        // Every answer, errors included, names the version that was serving.
        assert_eq!(r.headers()["x-rcfops-model-version"], "1", "{ct} {msg}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let v: Value = r.json().unwrap();
        assert!(v["Message"].as_str().unwrap().contains(msg), "{ct}: {v}");
        // Still serving.
        let (c, served, _) = post_csv(&agent.staging, "/invocations", &good);
        assert_eq!((c, served), (200, Some(1)));
    }
    // JSON and JSON lines in and out give the same scores as CSV.
    let (_, _, csv) = post_csv(&agent.staging, "/invocations", &good);
    let json_body = format!(
        "{{\"instances\":[{}]}}",
        good.lines()
            .map(|l| format!("{{\"features\":[{l}]}}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let r = http()
        .post(&url)
        .header("content-type", "application/json; charset=utf-8")
        .header("accept", "application/jsonlines")
        .body(json_body)
        .send()
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/jsonlines");
    let lines: Vec<f64> = r
        .text()
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["score"]
                .as_f64()
                .unwrap()
        })
        .collect();
    let expected: Vec<f64> = csv["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["score"].as_f64().unwrap())
        .collect();
    assert_eq!(lines, expected);
    // Attribution on request: per-feature parts that add up to the score.
    let r = http()
        .post(&url)
        .header("content-type", "text/csv")
        .header("x-amzn-sagemaker-custom-attributes", "attribution=true")
        .body(sample_records(1)[0].clone())
        .send()
        .unwrap();
    let v: Value = r.json().unwrap();
    let score = v["scores"][0]["score"].as_f64().unwrap();
    let parts: f64 = v["scores"][0]["attribution"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["high"].as_f64().unwrap() + a["low"].as_f64().unwrap())
        .sum();
    assert!(
        (parts - score).abs() < 1e-6 * score.max(1.0),
        "{parts} vs {score}"
    );
}
