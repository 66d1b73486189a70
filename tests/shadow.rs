//! Shadow traffic in staging: production mirrors its requests to the staging model off the
//! request path; the statistics per staging version match an offline computation on the same
//! records, and `min_shadow_records` holds a promote back until they are there.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use rcfops::model::Model;

fn artifact_model(p: &Project, n: i64) -> Model {
    let digest = p.registry().version(n).unwrap().unwrap().artifact_sha256;
    Model::from_bytes(
        &std::fs::read(p.state.join(format!("artifacts/sha256-{digest}.rcfm"))).unwrap(),
    )
    .unwrap()
}

fn parse(line: &str) -> Vec<f64> {
    line.split(',').map(|c| c.parse().unwrap()).collect()
}

#[test]
fn shadow_statistics_match_an_offline_computation_and_gate_the_promote() {
    let p = Project::new("");
    let cfg = std::fs::read_to_string(&p.cfg_path).unwrap().replace(
        "[endpoints.staging]\nlisten = \"127.0.0.1:0\"\n",
        "[endpoints.staging]\nlisten = \"127.0.0.1:0\"\nshadow_percent = 100\nmin_shadow_records = 300\n",
    );
    std::fs::write(&p.cfg_path, cfg).unwrap();
    let agent = p.start();
    p.v1_live();
    p.commit_spec(|t| t.replace("seed = 42", "seed = 7"), "reseed");
    p.wait_version(2);
    p.approve_and_wait(2);

    // Not enough shadow records yet.
    let oid = p.promote_tag(2, "lead@bank.example");
    let (o, why) = p.wait_decision(&format!("tag:promote/v2@{oid}"));
    assert_eq!(o, "refused");
    assert!(
        why.contains("min_shadow_records asks for 300; 300 still missing"),
        "{why}"
    );
    p.delete_tag("promote/v2");

    // Load: 4 clients, single records and small batches, all answered by production.
    let records = sample_records(480);
    let sent: Arc<Mutex<Vec<Vec<f64>>>> = Arc::default();
    let threads: Vec<_> = records
        .chunks(120)
        .map(|chunk| {
            let chunk = chunk.to_vec();
            let base = agent.production.clone();
            let sent = sent.clone();
            std::thread::spawn(move || {
                for (i, group) in chunk.chunks(10).enumerate() {
                    // Every other group as a 10-record batch, the rest one record a request.
                    let bodies: Vec<String> = if i % 2 == 0 {
                        vec![group.join("\n")]
                    } else {
                        group.to_vec()
                    };
                    for body in bodies {
                        let (code, served, v) = post_csv(&base, "/invocations", &body);
                        assert_eq!((code, served), (200, Some(1)), "{v}");
                    }
                    sent.lock().unwrap().extend(group.iter().map(|l| parse(l)));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 480);
    let s = p.wait_status("shadow records stored", |s| {
        version(s, 2).unwrap()["shadow"]["records"] == 480
    });
    let shadow = version(&s, 2).unwrap()["shadow"].clone();

    // The same numbers, computed here from the two artifacts.
    let (v1, v2) = (artifact_model(&p, 1), artifact_model(&p, 2));
    let flat: Vec<f64> = sent.iter().flatten().copied().collect();
    let prod = v1.score_rows(&flat, sent.len());
    let stag = v2.score_rows(&flat, sent.len());
    let (pt, st) = (v1.header.threshold, v2.header.threshold);
    let n = sent.len() as f64;
    let agree = prod
        .iter()
        .zip(&stag)
        .filter(|(p, s)| (**p > pt) == (**s > st))
        .count() as f64
        / n;
    let prod_rate = prod.iter().filter(|p| **p > pt).count() as f64 / n;
    let stag_rate = stag.iter().filter(|s| **s > st).count() as f64 / n;
    let rho = rcfops::pipeline::champion::spearman(&prod, &stag);
    let close = |key: &str, want: f64| {
        let got = shadow[key].as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-9,
            "{key}: {got} vs offline {want}; {shadow}"
        );
    };
    close("alert_agreement", agree);
    close("production_alert_rate", prod_rate);
    close("staging_alert_rate", stag_rate);
    close("alert_rate_difference", stag_rate - prod_rate);
    close("rank_agreement", rho);
    assert_eq!(shadow["production_version"], 1);
    assert!(
        rho > 0.5 && rho < 1.0,
        "two seeds rank alike but not identically: {rho}"
    );

    // Enough records now: the promote is honoured.
    let oid = p.tag_with(
        "promote/v2",
        &p.version_commit(2),
        "lead@bank.example",
        "ship v2",
        None,
    );
    let (o, why) = p.wait_decision(&format!("tag:promote/v2@{oid}"));
    assert_eq!(o, "accepted", "{why}");
    p.wait_status("v2 in production", |s| {
        stage_version(s, "production") == Some(2)
    });
}
