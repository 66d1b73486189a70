//! The dashboard over real HTTP against a live agent on a real repo: every page, the JSON
//! behind it, live refresh events, bad requests, and a dashboard port already in use.

mod common;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn get(url: &str) -> (u16, String, String) {
    let r = http().get(url).send().unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, r.text().unwrap())
}

#[test]
fn pages_api_live_events_and_bad_requests() {
    let p = Project::new("");
    let agent = p.start();
    let base = agent.dashboard.clone().expect("the dashboard is served");
    assert!(p.agent_stderr().contains(&format!("dashboard on {base}")));
    p.wait_version(1);

    // Overview: v1 waits for a staging approver, with the command and the tag.
    let (status, ct, page) = get(&format!("{base}/"));
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(
        page.contains("id=\"step-pending\"") && page.contains("<a href=\"/versions/1\">v1</a>")
    );
    assert!(page.contains("rcfops approve 1"), "{page}");
    assert!(page.contains(&format!(
        "git tag -a approve/v1 {}",
        &p.version_commit(1)[..12]
    )));
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http"),
        "no external resource"
    );

    // The version page: curves with the stored number of points, axis labels, histogram.
    let (_, _, api) = get(&format!("{base}/api/versions/1"));
    let api: Value = serde_json::from_str(&api).unwrap();
    let roc_points = api["curves"]["roc"].as_array().unwrap().len();
    assert!(roc_points > 10);
    let (status, _, page) = get(&format!("{base}/versions/1"));
    assert_eq!(status, 200);
    assert!(page.contains("id=\"roc\"") && page.contains(&format!("data-points=\"{roc_points}\"")));
    assert!(
        page.contains(">false-positive rate</text>") && page.contains(">true-positive rate</text>")
    );
    assert!(page.contains("id=\"hist\"") && page.contains("class=\"threshold\""));
    assert!(page.contains("id=\"confusion\"") && page.contains("id=\"lineage\""));
    assert!(page.contains(&api["version"]["artifact_sha256"].as_str().unwrap()[..16]));
    assert!(
        page.contains("version.registered"),
        "the version's audit events"
    );

    // Every page answers, and /api/status is the status document.
    for path in [
        "/versions",
        "/versions?sort=roc_auc&order=asc",
        "/runs",
        "/timeline",
        "/audit",
        "/audit?event=version&version=1",
        "/monitor",
    ] {
        let (status, _, page) = get(&format!("{base}{path}"));
        assert_eq!(status, 200, "{path}: {page}");
        assert!(page.contains("<main id=\"main\">"), "{path}");
        assert!(
            page.contains("id=\"next-step\"") && page.contains("rcfops approve 1"),
            "{path}"
        );
    }
    let (_, ct, api_status) = get(&format!("{base}/api/status"));
    assert!(ct.starts_with("application/json"));
    let api_status: Value = serde_json::from_str(&api_status).unwrap();
    assert_eq!(api_status["versions"], p.status()["versions"]);
    for path in [
        "/api/runs",
        "/api/timeline",
        "/api/audit?version=1",
        "/api/monitor",
    ] {
        let (status, _, body) = get(&format!("{base}{path}"));
        assert_eq!(status, 200, "{path}");
        serde_json::from_str::<Value>(&body).unwrap_or_else(|e| panic!("{path}: {e}"));
    }

    // Bad requests: clear pages, nothing written.
    let before = p.registry().change_stamp().unwrap();
    for (path, code, says) in [
        ("/versions/999", 404, "there is no version v999"),
        ("/versions/abc", 400, "is not a version number"),
        ("/versions?sort=colour", 400, "is not a column"),
        ("/versions?order=up", 400, "use asc or desc"),
        ("/versions?bogus=1", 400, "bad query string"),
        ("/audit?version=x", 400, "is not a version number"),
        ("/nowhere", 404, "is not a dashboard page"),
        (
            "/versions/1/../../etc/passwd",
            404,
            "is not a dashboard page",
        ),
        ("/api/versions/999", 404, "there is no version v999"),
        ("/api/nowhere", 404, "is not a dashboard page"),
    ] {
        let (status, _, body) = get(&format!("{base}{path}"));
        assert_eq!(status, code, "{path}: {body}");
        assert!(body.contains(says), "{path}: {body}");
    }
    let r = http().post(format!("{base}/")).send().unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(p.registry().change_stamp().unwrap(), before);

    // Live: an event arrives within 2 s of an approval.
    let resp = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{base}/events"))
        .send()
        .unwrap();
    assert!(resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(resp).lines() {
            let Ok(line) = line else { return };
            if line.starts_with("data:") && tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(700));
    let tagged = Instant::now();
    p.tag("approve/v1", &p.version_commit(1), "dana@bank.example");
    let (at, line) = rx.recv_timeout(Duration::from_secs(10)).expect("an event");
    assert!(
        at.duration_since(tagged) < Duration::from_secs(2),
        "{line} after {:?}",
        at.duration_since(tagged)
    );
    p.wait_status("v1 in staging", |s| stage_version(s, "staging") == Some(1));
    let (_, _, page) = get(&format!("{base}/"));
    assert!(
        page.contains("id=\"endpoint-staging\" data-version=\"1\""),
        "{page}"
    );
    let (_, _, page) = get(&format!("{base}/timeline"));
    assert!(page.contains("data-stage=\"staging\""), "{page}");
    drop(agent);
}

#[test]
fn a_dashboard_port_in_use_leaves_the_agent_running_without_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let p = Project::new("");
    // The template's `[dashboard]` table points at the taken port.
    let cfg = std::fs::read_to_string(&p.cfg_path).unwrap().replace(
        "[dashboard]\nlisten = \"127.0.0.1:0\"",
        &format!("[dashboard]\nlisten = \"127.0.0.1:{port}\""),
    );
    std::fs::write(&p.cfg_path, cfg).unwrap();
    let agent = p.start();
    assert_eq!(agent.dashboard, None);
    let log = p.agent_stderr();
    assert!(
        log.contains(&format!("cannot serve the dashboard on 127.0.0.1:{port}"))
            && log.contains("the agent runs on without it"),
        "{log}"
    );
    p.wait_version(1);
    p.approve_and_wait(1);
    let (status, v, _) = post_csv(&agent.staging, "/invocations", &sample_records(1)[0]);
    assert_eq!((status, v), (200, Some(1)));
    drop(taken);
}
