//! Model Monitor against the real agent: capture files read back by an independent JSON-lines
//! reader (Python's `json`), sampling, ground truth with every kind of bad line, a live
//! quality ALERT, kill -9 in the middle of traffic, a version without a baseline, and a
//! capture folder that cannot be written.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use rcfops::domain::{Stage, Verdict};
use serde_json::Value;

const MONITORING: &str = "\n[monitoring]\ncapture = true\nwindow_records = 50\nmin_window_records = 20\npoll_ms = 100\npr_auc_margin = 0.1\nmin_labelled_frauds = 5\n\n[monitoring.staging]\nsampling_percent = 50\n";

/// Complete lines (ending in a newline) of every capture file of `endpoint`.
fn capture_lines(state: &Path, endpoint: &str) -> usize {
    let mut n = 0;
    for f in files(&state.join("capture").join(endpoint)) {
        let bytes = std::fs::read(&f).unwrap();
        n += bytes.iter().filter(|b| **b == b'\n').count();
    }
    n
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Posts `body` to production with an inference id; returns the answer's body text.
fn invoke(url: &str, content_type: &str, body: &str, id: &str) -> String {
    let r = http()
        .post(format!("{url}/invocations"))
        .header("content-type", content_type)
        .header("x-amzn-sagemaker-inference-id", id)
        .body(body.to_string())
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    assert_eq!(status, 200, "{text}");
    text
}

/// The independent reader: Python's `json` module checks every line of every capture file
/// field by field against SageMaker's format and prints what it read.
const READER: &str = r#"
import base64, datetime, json, os, re, sys
root = sys.argv[1]
uuid = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$')
name = re.compile(r'^\d{2}-\d{2}-\d{3}-[0-9a-f-]{36}\.jsonl$')
out = []
for dirpath, _, names in os.walk(root):
    for n in sorted(names):
        path = os.path.join(dirpath, n)
        rel = os.path.relpath(path, root).split(os.sep)
        assert len(rel) == 7 and rel[1] == 'AllTraffic', rel
        assert name.match(rel[6]), rel[6]
        with open(path) as f:
            for line in f:
                if not line.endswith('\n'):
                    continue
                r = json.loads(line)
                assert set(r) == {'captureData', 'eventMetadata', 'eventVersion'}, set(r)
                assert r['eventVersion'] == '0'
                cd = r['captureData']
                assert set(cd) == {'endpointInput', 'endpointOutput'}
                decoded = {}
                for key, mode in (('endpointInput', 'INPUT'), ('endpointOutput', 'OUTPUT')):
                    p = cd[key]
                    assert set(p) == {'observedContentType', 'mode', 'data', 'encoding'}, set(p)
                    assert p['mode'] == mode
                    assert p['encoding'] in ('CSV', 'JSON', 'BASE64')
                    data = p['data']
                    if p['encoding'] == 'BASE64':
                        data = base64.b64decode(data).decode()
                    if p['encoding'] == 'JSON':
                        json.loads(data)
                    decoded[mode] = (p['observedContentType'], p['encoding'], data)
                m = r['eventMetadata']
                assert uuid.match(m['eventId']), m['eventId']
                t = datetime.datetime.strptime(m['inferenceTime'], '%Y-%m-%dT%H:%M:%S.%fZ')
                assert [f'{t.year:04}', f'{t.month:02}', f'{t.day:02}', f'{t.hour:02}'] == rel[2:6], (t, rel)
                x = m['rcfops']
                out.append({
                    'endpoint': rel[0], 'eventId': m['eventId'], 'inferenceId': m.get('inferenceId'),
                    'input': decoded['INPUT'], 'output': decoded['OUTPUT'],
                    'stage': x['stage'], 'version': x['modelVersion'], 'scores': x['scores'],
                })
print(json.dumps(out))
"#;

fn read_back(state: &Path) -> Vec<Value> {
    let python = std::env::var("RCFOPS_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .args(["-c", READER])
        .arg(state.join("capture"))
        .output()
        .expect("python3 runs the independent reader");
    assert!(
        out.status.success(),
        "the capture files do not read back: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

fn gt_line(event: (&str, &str), data: &str) -> String {
    format!(
        "{{\"groundTruthData\":{{\"data\":\"{data}\",\"encoding\":\"CSV\"}},\"eventMetadata\":{{\"{}\":\"{}\"}},\"eventVersion\":\"0\"}}",
        event.0, event.1
    )
}

#[test]
fn capture_format_sampling_ground_truth_crash_and_old_versions() {
    let p = Project::new(MONITORING);
    let mut agent = p.start();
    p.v1_live();
    let url = agent.production.clone();
    let prod = "card-fraud-prod";
    let records = sample_records(300);

    // 1. The three request formats, read back field by field by the independent reader.
    let csv = records[..3].join("\n") + "\n";
    let csv_answer = invoke(&url, "text/csv", &csv, "csv-1");
    let features = |i: usize| -> String { format!("[{}]", records[i]) };
    let json = format!("{{\"instances\":[{{\"features\":{}}}]}}", features(3));
    let json_answer = invoke(&url, "application/json", &json, "json-1");
    let jsonl = format!(
        "{{\"features\":{}}}\n{{\"features\":{}}}\n",
        features(4),
        features(5)
    );
    let jsonl_answer = invoke(&url, "application/jsonlines", &jsonl, "jsonl-1");
    assert!(wait_until(Duration::from_secs(10), || {
        read_back(&p.state)
            .iter()
            .filter(|r| r["endpoint"] == prod)
            .count()
            >= 3
    }));
    let lines = read_back(&p.state);
    let find = |id: &str| {
        lines
            .iter()
            .find(|r| r["inferenceId"] == id)
            .unwrap_or_else(|| panic!("no capture of {id}: {lines:#?}"))
            .clone()
    };
    for (id, ct, encoding, body, answer) in [
        ("csv-1", "text/csv", "CSV", &csv, &csv_answer),
        ("json-1", "application/json", "JSON", &json, &json_answer),
        (
            "jsonl-1",
            "application/jsonlines",
            "BASE64",
            &jsonl,
            &jsonl_answer,
        ),
    ] {
        let r = find(id);
        assert_eq!(r["endpoint"], prod);
        assert_eq!(r["stage"], "production");
        assert_eq!(r["version"], 1);
        assert_eq!(r["input"], serde_json::json!([ct, encoding, body]), "{id}");
        assert_eq!(r["output"][0], "application/json");
        assert_eq!(r["output"][2], answer.as_str(), "{id}");
        let answered: Value = serde_json::from_str(answer).unwrap();
        let scores: Vec<f64> = answered["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["score"].as_f64().unwrap())
            .collect();
        let captured: Vec<f64> = serde_json::from_value(r["scores"].clone()).unwrap();
        assert_eq!(captured, scores, "{id}");
    }

    let metrics = http()
        .get(format!("{url}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("rcfops_endpoint_capture_written_total{stage=\"production\"} 3")
            && metrics.contains("rcfops_endpoint_capture_dropped_total{stage=\"production\"} 0"),
        "{metrics}"
    );

    // 2. Staging captures exactly half of its requests (a running share).
    let staging_name = "card-fraud-staging";
    std::thread::sleep(Duration::from_millis(400));
    let before = capture_lines(&p.state, staging_name);
    for r in &records[..10] {
        let (status, _, _) = post_csv(&agent.staging, "/invocations", r);
        assert_eq!(status, 200);
    }
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(capture_lines(&p.state, staging_name) - before, 5);

    // 3. Ground truth with every kind of bad line, each named with file and line.
    let csv_event = find("csv-1")["eventId"].as_str().unwrap().to_string();
    let json_event = find("json-1")["eventId"].as_str().unwrap().to_string();
    // The agent indexes captures within a poll.
    assert!(wait_until(Duration::from_secs(10), || {
        !p.registry()
            .events_for(Some(&csv_event), None)
            .unwrap()
            .is_empty()
            && !p
                .registry()
                .events_for(Some(&json_event), None)
                .unwrap()
                .is_empty()
    }));
    let bad = p.dir.path().join("labels-1.jsonl");
    let text = [
        "{not json".to_string(),
        gt_line(("eventId", "00000000-0000-4000-8000-000000000000"), "1"),
        gt_line(("eventId", &csv_event), "0,1,0"),
        gt_line(("eventId", &csv_event), "0,0,0"),
        gt_line(("eventId", &json_event), "1,0"),
        "{\"groundTruthData\":{\"data\":\"1\",\"encoding\":\"CSV\"}}".to_string(),
        gt_line(("inferenceId", "jsonl-1"), "1,2"),
    ]
    .join("\n");
    std::fs::write(&bad, text + "\n").unwrap();
    let out = p.rcfops(&["label", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let f = bad.display().to_string();
    for (line, says) in [
        (1, "not a JSON object"),
        (2, "unknown eventId"),
        (4, "duplicate"),
        (5, "has 1 record(s) but the line gives 2 label(s)"),
        (6, "missing eventMetadata"),
        (7, "label \"2\" is not 0 or 1"),
    ] {
        assert!(
            stderr.contains(&format!("{f}:{line}: ")) && stderr.contains(says),
            "line {line} ({says}):\n{stderr}"
        );
    }
    assert!(!stderr.contains(&format!("{f}:3:")), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 labels merged, 6 lines not merged"));
    assert_eq!(p.registry().label_count().unwrap(), 3);
    // The same file again: nothing merged twice.
    let again = p.rcfops(&["label", bad.to_str().unwrap()]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));
    // A corrected file repeating a merged line: that line is a duplicate, the rest merges.
    let fixed = p.dir.path().join("labels-2.jsonl");
    std::fs::write(
        &fixed,
        [
            gt_line(("eventId", &csv_event), "0,1,0"),
            gt_line(("eventId", &json_event), "1"),
            gt_line(("inferenceId", "jsonl-1"), "0,1"),
        ]
        .join("\n"),
    )
    .unwrap();
    let out = p.rcfops(&["label", fixed.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:1: duplicate", fixed.display()))
            && stderr.contains(&format!("was labelled by {f}:3")),
        "{stderr}"
    );
    assert_eq!(p.registry().label_count().unwrap(), 6);
    // A bad file dropped in the folder: the agent merges what it can and the report says why.
    let gt = p.state.join("ground-truth");
    std::fs::create_dir_all(&gt).unwrap();
    std::fs::write(
        gt.join("dropped.jsonl"),
        "{\"eventMetadata\":{\"eventId\":\"x\"}}\n",
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        String::from_utf8_lossy(&p.rcfops(&["monitor"]).stdout)
            .contains("ground truth dropped.jsonl")
    }));
    let report = String::from_utf8_lossy(&p.rcfops(&["monitor"]).stdout).to_string();
    assert!(
        report.contains("dropped.jsonl:1: missing groundTruthData"),
        "{report}"
    );

    // 4. Live quality ALERT: 200 records whose frauds are the ones the model scores lowest.
    let mut sent: Vec<(String, Vec<f64>)> = Vec::new();
    for k in 0..20 {
        let body = records[10 + k * 10..20 + k * 10].join("\n");
        let answer: Value =
            serde_json::from_str(&invoke(&url, "text/csv", &body, &format!("q-{k}"))).unwrap();
        let scores = answer["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["score"].as_f64().unwrap())
            .collect();
        sent.push((format!("q-{k}"), scores));
    }
    let mut all: Vec<f64> = sent.iter().flat_map(|s| s.1.clone()).collect();
    all.sort_by(f64::total_cmp);
    let cut = all[20];
    let labels: String = sent
        .iter()
        .map(|(id, scores)| {
            let l: Vec<&str> = scores
                .iter()
                .map(|s| if *s < cut { "1" } else { "0" })
                .collect();
            gt_line(("inferenceId", id), &l.join(",")) + "\n"
        })
        .collect();
    assert!(wait_until(Duration::from_secs(10), || {
        !p.registry()
            .events_for(None, Some("q-19"))
            .unwrap()
            .is_empty()
    }));
    let qfile = p.dir.path().join("quality.jsonl");
    std::fs::write(&qfile, labels).unwrap();
    assert!(p
        .rcfops(&["label", qfile.to_str().unwrap()])
        .status
        .success());
    let quality = || {
        p.registry()
            .monitor_states()
            .unwrap()
            .into_iter()
            .find(|s| s.stage == Stage::Production && s.version == 1 && s.kind == "quality")
    };
    assert!(wait_until(Duration::from_secs(10), || quality().is_some()));
    let q = quality().unwrap();
    assert_eq!(q.verdict, Verdict::Alert, "{q:?}");
    assert!(q.reasons[0].contains("live PR-AUC"), "{:?}", q.reasons);
    let audit = p.registry().audit_log(500).unwrap();
    assert!(audit.iter().any(|a| a.event == "monitor.drift"
        && a.detail
            .as_deref()
            .is_some_and(|d| d.contains("quality none → ALERT"))));
    let status = p.status();
    assert_eq!(
        status["endpoints"]["production"]["monitor"]["quality"],
        "ALERT"
    );

    // 5. kill -9 in the middle of traffic: after the restart every record in the capture
    // files is indexed and windowed exactly once.
    let stream = {
        let url = url.clone();
        let records = records.clone();
        std::thread::spawn(move || {
            let client = http();
            let mut ok = 0;
            // Until the kill cuts it off.
            for k in 0..10_000_000 {
                let r = client
                    .post(format!("{url}/invocations"))
                    .header("content-type", "text/csv")
                    .body(records[k % 300].clone())
                    .send();
                match r {
                    Ok(r) if r.status().is_success() => ok += 1,
                    _ => break,
                }
            }
            ok
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    agent.kill9();
    let answered = stream.join().unwrap();
    assert!(
        answered > 0 && answered < 10_000_000,
        "{answered} answered before the kill"
    );
    let _agent = p.start();
    let in_files = || -> usize {
        read_back(&p.state)
            .iter()
            .filter(|r| r["endpoint"] == prod)
            .map(|r| r["scores"].as_array().unwrap().len())
            .sum()
    };
    let indexed = || -> usize {
        p.registry()
            .capture_counts()
            .unwrap()
            .iter()
            .filter(|(s, _, _)| *s == Stage::Production)
            .map(|c| c.2 as usize)
            .sum()
    };
    let windowed = || -> usize {
        let reg = p.registry();
        let closed: usize = reg
            .monitor_windows(Some(Stage::Production), Some(1), 100_000)
            .unwrap()
            .iter()
            .map(|w| w.records as usize)
            .sum();
        let open: usize = reg
            .open_windows()
            .unwrap()
            .iter()
            .filter(|(s, v, _)| *s == Stage::Production && *v == 1)
            .map(|(_, _, w)| w.records())
            .sum();
        closed + open
    };
    assert!(
        wait_until(Duration::from_secs(20), || indexed() == in_files()
            && windowed() == in_files()),
        "files {} / indexed {} / windowed {}",
        in_files(),
        indexed(),
        windowed()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!((indexed(), windowed()), (in_files(), in_files()));
    assert_eq!(p.registry().integrity_check().unwrap(), "ok");
    drop(_agent);

    // 6. A version registered before baselines were kept: "no baseline", not compared.
    {
        let conn = rusqlite::Connection::open(p.state.join("registry.sqlite")).unwrap();
        conn.execute("DELETE FROM baselines WHERE version = 1", [])
            .unwrap();
    }
    let _agent = p.start();
    let before = p
        .registry()
        .monitor_windows(Some(Stage::Production), Some(1), 100_000)
        .unwrap()
        .len();
    let url = _agent.production.clone();
    let serving = || {
        http()
            .get(format!("{url}/ping"))
            .send()
            .is_ok_and(|r| r.status().is_success())
    };
    assert!(wait_until(Duration::from_secs(20), serving));
    for k in 0..10 {
        invoke(
            &url,
            "text/csv",
            &records[..20].join("\n"),
            &format!("old-{k}"),
        );
    }
    assert!(wait_until(Duration::from_secs(10), || indexed() == in_files()));
    let text = String::from_utf8_lossy(&p.rcfops(&["monitor", "--stage", "production"]).stdout)
        .to_string();
    assert!(
        text.contains("no baseline (registered before monitoring): not compared"),
        "{text}"
    );
    let after = p
        .registry()
        .monitor_windows(Some(Stage::Production), Some(1), 100_000)
        .unwrap()
        .len();
    assert_eq!(
        before, after,
        "a version without a baseline got new windows"
    );
    let status = p.status();
    assert_eq!(
        status["endpoints"]["production"]["monitor"]["baseline"],
        false
    );
    let table = String::from_utf8_lossy(&p.rcfops(&["status"]).stdout).to_string();
    assert!(table.contains("no baseline (not compared)"), "{table}");
}

#[test]
fn an_unwritable_capture_folder_stops_capture_once_and_serving_goes_on() {
    let p = Project::new("\n[monitoring]\ncapture = true\npoll_ms = 100\n");
    // A file where the capture folder should be: nothing can be created below it.
    std::fs::create_dir_all(&p.state).unwrap();
    std::fs::File::create(p.state.join("capture"))
        .unwrap()
        .write_all(b"not a folder")
        .unwrap();
    let agent = p.start();
    p.v1_live();
    for i in 0..20 {
        let (status, v, _) = post_csv(&agent.production, "/invocations", &sample_records(20)[i]);
        assert_eq!((status, v), (200, Some(1)));
    }
    let status = p.wait_status("capture stopped on production", |s| {
        s["endpoints"]["production"]["monitor"]["capture"]["dropped"] == 20
    });
    let capture = &status["endpoints"]["production"]["monitor"]["capture"];
    assert!(
        capture["error"].as_str().unwrap().contains("cannot create"),
        "{capture}"
    );
    assert_eq!(capture["dropped"].as_u64(), Some(20), "{capture}");
    let table = String::from_utf8_lossy(&p.rcfops(&["status"]).stdout).to_string();
    assert!(table.contains("capture STOPPED: cannot create"), "{table}");
    let metrics = http()
        .get(format!("{}/metrics", agent.production))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("rcfops_endpoint_capture_dropped_total{stage=\"production\"} 20"),
        "{metrics}"
    );
    let log = p.agent_stderr();
    let errors = log
        .lines()
        .filter(|l| l.contains("data capture for production stopped"))
        .count();
    assert_eq!(errors, 1, "{log}");
    assert_eq!(
        std::fs::read(p.state.join("capture")).unwrap(),
        b"not a folder"
    );
    assert_eq!(p.registry().integrity_check().unwrap(), "ok");
    assert_eq!(p.status()["endpoints"]["production"]["version"], 1);
}
