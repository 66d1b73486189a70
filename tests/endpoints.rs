//! The stage endpoints against live servers: the SageMaker contract (ping, Accept, Content-Type
//! parameters, JSON errors for 404/405/406/415), attribution, `/metrics`, a hot swap under
//! concurrent load through a promotion and a rollback, a real AWS SDK client (boto3), and
//! slow clients that must not stall the server.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rcfops::model::Model;
use serde_json::{json, Value};

/// The registered artifact of version `n`, loaded as the endpoint loads it.
fn artifact(p: &Project, n: i64) -> Model {
    let digest = p.registry().version(n).unwrap().unwrap().artifact_sha256;
    let bytes = std::fs::read(p.state.join(format!("artifacts/sha256-{digest}.rcfm"))).unwrap();
    Model::from_bytes(&bytes).unwrap()
}

fn flat(records: &[String]) -> Vec<f64> {
    records
        .iter()
        .flat_map(|l| l.split(',').map(|c| c.parse::<f64>().unwrap()))
        .collect()
}

/// The `"score"` values of a JSON or JSON-lines answer, parsed exactly (serde_json's default
/// float parsing may be one ULP off; the standard library's is correctly rounded).
fn scores_of(text: &str) -> Vec<f64> {
    let scores: Vec<f64> = text
        .split("\"score\":")
        .skip(1)
        .map(|rest| {
            let end = rest.find([',', '}']).unwrap_or(rest.len());
            rest[..end].trim().parse().unwrap()
        })
        .collect();
    assert!(!scores.is_empty(), "no scores in {text}");
    scores
}

fn version_header(r: &reqwest::blocking::Response) -> Option<i64> {
    r.headers()
        .get("x-rcfops-model-version")
        .and_then(|h| h.to_str().ok())
        .and_then(|s| s.parse().ok())
}

/// The value of the first sample line of a scrape that starts with `prefix` (labels included).
fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix) && l[prefix.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn scrape(base: &str) -> String {
    let r = http().get(format!("{base}/metrics")).send().unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = r.text().unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    text
}

/// An error answer: the status, a JSON body with ErrorCode and Message, and the error type header.
fn assert_json_error(r: reqwest::blocking::Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers()["x-amzn-errortype"], code);
    let body: Value = serde_json::from_str(&r.text().unwrap()).expect("error body is JSON");
    assert_eq!(body["ErrorCode"], code, "{body}");
    assert!(body["Message"].as_str().is_some_and(|m| !m.is_empty()));
    body
}

#[test]
fn contract_ping_accept_errors_attribution_and_metrics() {
    let p = Project::new("");
    let agent = p.start();
    let base = agent.staging.clone();
    let c = http();
    p.wait_version(1);

    // Before a deploy: ping is 503 with a JSON error; /metrics already scrapes.
    let r = c.get(format!("{base}/ping")).send().unwrap();
    assert_json_error(r, 503, "ServiceUnavailable");
    let before = scrape(&base);
    assert_eq!(
        metric(&before, "rcfops_endpoint_model_version{stage=\"staging\"}"),
        0.0
    );

    p.approve_and_wait(1);
    // The staging tests have called the endpoint too: count from here.
    let before = scrape(&base);
    let records = sample_records(5);
    let csv = records.join("\n");
    let model = artifact(&p, 1);
    let expected = model.score_rows(&flat(&records), records.len());

    // Ping: 200, an empty body, the version header.
    let r = c.get(format!("{base}/ping")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(version_header(&r), Some(1));
    assert_eq!(r.bytes().unwrap().len(), 0, "ping body must be empty");

    let post = |path: &str, ct: &str, accept: Option<&str>, body: &str| {
        let mut b = c
            .post(format!("{base}{path}"))
            .header("content-type", ct)
            .body(body.to_string());
        if let Some(a) = accept {
            b = b.header("accept", a);
        }
        b.send().unwrap()
    };
    let runtime = "/endpoints/card-fraud-staging/invocations";

    // Accept: missing, */*, application/json → JSON; jsonlines → one score a line.
    for accept in [
        None,
        Some("*/*"),
        Some("application/json"),
        Some("text/html, */*;q=0.1"),
    ] {
        let r = post(runtime, "text/csv", accept, &csv);
        assert_eq!(r.status(), 200, "Accept {accept:?}");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(version_header(&r), Some(1));
        assert_eq!(scores_of(&r.text().unwrap()), expected, "Accept {accept:?}");
    }
    let r = post(runtime, "text/csv", Some("application/jsonlines"), &csv);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/jsonlines");
    let text = r.text().unwrap();
    assert_eq!(text.lines().count(), 5);
    assert_eq!(scores_of(&text), expected);
    let r = post(runtime, "text/csv", Some("text/html"), &csv);
    assert_json_error(r, 406, "ValidationError");

    // Content-Type parameters are accepted, in any case; CRLF and a trailing newline too.
    let crlf = format!("{}\r\n", records.join("\r\n"));
    for ct in ["text/csv; charset=utf-8", "Text/CSV;charset=UTF-8"] {
        let r = post("/invocations", ct, None, &crlf);
        assert_eq!(r.status(), 200, "{ct}");
        assert_eq!(scores_of(&r.text().unwrap()), expected, "{ct}");
    }
    let json_body = json!({"instances": flat(&records).chunks(8).map(|f| json!({"features": f})).collect::<Vec<_>>()});
    let r = post(
        "/invocations",
        "application/json; charset=utf-8",
        None,
        &json_body.to_string(),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(scores_of(&r.text().unwrap()), expected);
    let r = post("/invocations", "application/xml", None, &csv);
    assert_json_error(r, 415, "ValidationError");
    let r = post("/invocations", "text/csv", None, "1,2,3");
    let body = assert_json_error(r, 400, "ValidationError");
    assert_eq!(body["record"], 0);

    // Every error body is JSON: unknown routes, wrong methods, another endpoint's name.
    let r = c.get(format!("{base}/nope")).send().unwrap();
    assert_json_error(r, 404, "NotFound");
    let r = c.get(format!("{base}/invocations")).send().unwrap();
    assert_eq!(r.headers()["allow"], "POST");
    assert_json_error(r, 405, "MethodNotAllowed");
    let r = c.get(format!("{base}{runtime}")).send().unwrap();
    assert_json_error(r, 405, "MethodNotAllowed");
    let r = c.delete(format!("{base}/ping")).send().unwrap();
    assert_json_error(r, 405, "MethodNotAllowed");
    let r = c.post(format!("{base}/metrics")).send().unwrap();
    assert_json_error(r, 405, "MethodNotAllowed");
    let r = post(
        "/endpoints/card-fraud-prod/invocations",
        "text/csv",
        None,
        &csv,
    );
    assert_json_error(r, 404, "ValidationError");

    // Attribution on request: per feature, summing to the score.
    let r = c
        .post(format!("{base}{runtime}"))
        .header("content-type", "text/csv")
        .header(
            "X-Amzn-SageMaker-Custom-Attributes",
            "trace=abc,attribution=true",
        )
        .body(records[..2].join("\n"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().unwrap();
    for (i, s) in body["scores"].as_array().unwrap().iter().enumerate() {
        let attr = s["attribution"].as_array().expect("attribution");
        assert_eq!(attr.len(), 8);
        assert_eq!(attr[0]["feature"], "amount");
        let total: f64 = attr
            .iter()
            .map(|a| a["high"].as_f64().unwrap() + a["low"].as_f64().unwrap())
            .sum();
        assert!(
            (total - expected[i]).abs() < 1e-6 * expected[i].max(1.0),
            "attribution sums to {total}, score {}",
            expected[i]
        );
    }
    // Without the attribute there is none.
    let r = post(runtime, "text/csv", None, &records[0]);
    assert!(r.json::<Value>().unwrap()["scores"][0]
        .get("attribution")
        .is_none());

    // /metrics moved: the answers above, by status and content type.
    let after = scrape(&base);
    let m = |name: &str| metric(&after, name) - metric(&before, name);
    let st = "stage=\"staging\"";
    assert_eq!(
        m(&format!(
            "rcfops_endpoint_invocations_total{{{st},status=\"200\",content_type=\"text/csv\"}}"
        )),
        // 4 Accept variants + jsonlines + 2 charset + attribution + no attribution
        9.0,
        "{after}"
    );
    assert_eq!(
        m(&format!("rcfops_endpoint_invocations_total{{{st},status=\"200\",content_type=\"application/json\"}}")),
        1.0
    );
    for (status, ct, n) in [
        (406, "text/csv", 1.0),
        (415, "other", 1.0),
        (400, "text/csv", 1.0),
        (404, "text/csv", 1.0),
    ] {
        assert_eq!(
            m(&format!("rcfops_endpoint_invocations_total{{{st},status=\"{status}\",content_type=\"{ct}\"}}")),
            n,
            "{status} {ct}\n{after}"
        );
    }
    // Records: 5 × (5 Accept/jsonlines + 2 charset + 1 JSON) + 2 + 1.
    assert_eq!(
        m(&format!("rcfops_endpoint_records_scored_total{{{st}}}")),
        43.0
    );
    assert_eq!(m(&format!("rcfops_endpoint_score_count{{{st}}}")), 43.0);
    assert!(m(&format!("rcfops_endpoint_score_sum{{{st}}}")) > 0.0);
    assert_eq!(
        m(&format!(
            "rcfops_endpoint_request_duration_seconds_count{{{st}}}"
        )),
        14.0
    );
    assert_eq!(
        m(&format!(
            "rcfops_endpoint_request_duration_seconds_bucket{{{st},le=\"+Inf\"}}"
        )),
        14.0
    );
    let m = |name: &str| metric(&after, name);
    assert_eq!(m(&format!("rcfops_endpoint_model_version{{{st}}}")), 1.0);
    assert_eq!(
        m(&format!(
            "rcfops_endpoint_model{{{st},endpoint=\"card-fraud-staging\",version=\"1\"}}"
        )),
        1.0
    );
    assert_eq!(
        m(&format!("rcfops_endpoint_model_swaps_total{{{st}}}")),
        1.0
    );
    // Production is its own endpoint with its own metrics.
    let prod = scrape(&agent.production);
    assert!(prod.contains("stage=\"production\""), "{prod}");
    assert!(!prod.contains("stage=\"staging\""), "{prod}");
}

/// 8 clients send continuous requests through a promotion (v1 → v2) and a production
/// rollback (v2 → v1). No request may fail; every answer comes from v1 or v2 with exactly that
/// version's scores (never a mix inside a batch), and each client sees the versions in order.
#[test]
fn hot_swap_under_load_never_fails_or_mixes_versions() {
    let p = Project::new("");
    let agent = p.start();
    p.v1_live();
    p.commit_spec(|t| t.replace("seed = 42", "seed = 43"), "reseed the forest");
    p.wait_version(2);
    p.approve_and_wait(2);

    let records = sample_records(40);
    let x = flat(&records);
    let batch = records.join("\n");
    let single = records[0].clone();
    let v1 = artifact(&p, 1);
    let v2 = artifact(&p, 2);
    let expect = Arc::new([
        (v1.score_rows(&x, 40), v1.score_rows(&x[..8], 1)),
        (v2.score_rows(&x, 40), v2.score_rows(&x[..8], 1)),
    ]);
    assert_ne!(expect[0].0, expect[1].0, "v1 and v2 must score differently");

    let url = format!("{}/endpoints/card-fraud-prod/invocations", agent.production);
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(120);
    let clients: Vec<_> = (0..8)
        .map(|t| {
            let (url, stop, expect) = (url.clone(), stop.clone(), expect.clone());
            let body = if t % 2 == 0 {
                batch.clone()
            } else {
                single.clone()
            };
            std::thread::spawn(move || {
                let c = http();
                let mut seen: Vec<i64> = Vec::new();
                let mut failures: Vec<String> = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && n < 200_000 {
                    n += 1;
                    let r = match c
                        .post(&url)
                        .header("content-type", "text/csv")
                        .body(body.clone())
                        .send()
                    {
                        Ok(r) => r,
                        Err(e) => {
                            failures.push(format!("request {n}: {e}"));
                            continue;
                        }
                    };
                    let status = r.status();
                    let v = version_header(&r);
                    let text = r.text().unwrap_or_default();
                    if status != 200 {
                        failures.push(format!("request {n}: {status} {text}"));
                        continue;
                    }
                    let Some(v @ (1 | 2)) = v else {
                        failures.push(format!("request {n}: version header {v:?}"));
                        continue;
                    };
                    let got = scores_of(&text);
                    let (b, s) = &expect[(v - 1) as usize];
                    let want = if t % 2 == 0 { b } else { s };
                    if &got != want {
                        failures.push(format!(
                            "request {n}: scores are not v{v}'s (a mix of versions?): got {got:?}, v{v} gives {want:?}"
                        ));
                    }
                    if seen.last() != Some(&v) {
                        seen.push(v);
                    }
                }
                (n, seen, failures)
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(500));
    p.promote_and_wait(2);
    std::thread::sleep(Duration::from_millis(500));
    let out = p.rcfops(&["rollback", "production", "--reason", "load test rollback"]);
    assert!(
        out.status.success(),
        "rollback failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    p.wait_status("production back on v1", |s| {
        stage_version(s, "production") == Some(1)
    });
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);

    let mut total = 0;
    for (i, h) in clients.into_iter().enumerate() {
        let (n, seen, failures) = h.join().unwrap();
        total += n;
        assert!(
            failures.is_empty(),
            "client {i}: {} of {n} requests failed, first: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        // Each client's requests are sequential, so it sees v1, then v2, then v1 again.
        assert_eq!(
            seen,
            vec![1, 2, 1],
            "client {i} saw versions in order {seen:?}"
        );
    }
    assert!(
        Instant::now() < deadline,
        "the load ran into its time bound"
    );
    eprintln!("hot swap under load: {total} requests, none failed");
    let m = scrape(&agent.production);
    assert_eq!(
        metric(
            &m,
            "rcfops_endpoint_model_swaps_total{stage=\"production\"}"
        ),
        3.0,
        "{m}"
    );
}

/// Existing SageMaker client code works by changing only the endpoint URL: boto3's
/// `sagemaker-runtime` `invoke_endpoint` against the local staging endpoint.
#[test]
fn boto3_sagemaker_runtime_client_gets_the_same_scores() {
    let Some(python) = python_with(
        "boto3",
        "boto3_sagemaker_runtime_client_gets_the_same_scores",
    ) else {
        return;
    };
    let p = Project::new("");
    let agent = p.start();
    p.wait_version(1);
    p.approve_and_wait(1);

    let records = sample_records(6);
    let csv = format!("{}\n", records.join("\n"));
    let direct = http()
        .post(format!(
            "{}/endpoints/card-fraud-staging/invocations",
            agent.staging
        ))
        .header("content-type", "text/csv")
        .body(csv.clone())
        .send()
        .unwrap();
    assert_eq!(direct.status(), 200);
    let direct = scores_of(&direct.text().unwrap());
    assert_eq!(direct, artifact(&p, 1).score_rows(&flat(&records), 6));

    let instances: Vec<Value> = flat(&records)
        .chunks(8)
        .map(|f| json!({"features": f}))
        .collect();
    let calls = json!([
        {"content_type": "text/csv", "body": csv},
        {"content_type": "application/json", "accept": "application/json",
         "body": json!({"instances": instances}).to_string()},
        {"content_type": "text/csv", "accept": "application/jsonlines", "body": csv},
        {"content_type": "text/csv", "body": records[0], "custom_attributes": "attribution=true"},
        {"content_type": "text/csv", "body": "1,2,3\n"},
        {"content_type": "text/csv", "body": csv, "endpoint": "card-fraud-prod"},
    ]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/boto3_invoke.py");
    let mut child = std::process::Command::new(&python)
        .arg(&script)
        .arg(&agent.staging)
        .arg("card-fraud-staging")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the boto3 script");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(calls.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "boto3 script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "boto3 script printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let ok = |i: usize| -> &Value {
        let r = &results[i];
        assert_eq!(r["ok"], true, "call {i}: {r}");
        assert_eq!(r["http_status"], 200);
        assert_eq!(r["version"], "1", "call {i}: {r}");
        r
    };
    let text = |i: usize| -> &str { ok(i)["body"].as_str().unwrap() };

    // CSV and JSON through boto3 score exactly as a direct HTTP call does.
    assert_eq!(ok(0)["content_type"], "application/json");
    assert_eq!(scores_of(text(0)), direct, "boto3 CSV");
    assert_eq!(scores_of(text(1)), direct, "boto3 JSON");
    assert_eq!(ok(2)["content_type"], "application/jsonlines");
    assert_eq!(text(2).lines().count(), 6);
    assert_eq!(scores_of(text(2)), direct, "boto3 JSON lines");
    // CustomAttributes reach the endpoint.
    let attr = &serde_json::from_str::<Value>(text(3)).unwrap()["scores"][0]["attribution"];
    assert_eq!(attr.as_array().map(|a| a.len()), Some(8), "{attr}");
    // Errors surface as boto3 ClientErrors with SageMaker's error code.
    assert_eq!(results[4]["ok"], false, "{}", results[4]);
    assert_eq!(results[4]["http_status"], 400);
    assert_eq!(
        results[4]["error_code"], "ValidationError",
        "{}",
        results[4]
    );
    assert!(results[4]["message"]
        .as_str()
        .unwrap()
        .contains("expected 8 features, got 3"));
    assert_eq!(results[5]["ok"], false, "{}", results[5]);
    assert_eq!(results[5]["http_status"], 404);
    assert_eq!(
        results[5]["error_code"], "ValidationError",
        "{}",
        results[5]
    );
}

/// Reads an HTTP/1.1 answer (head and Content-Length body) or EOF; None on EOF/reset.
fn read_answer(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Some(text);
            }
        }
    }
    (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).to_string())
}

/// Slow or stalled clients get a timeout answer or a closed connection, while everyone else
/// keeps being served; the in-flight limit queues rather than fails.
#[test]
fn slow_clients_time_out_without_stalling_the_server() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ep =
        rcfops::serve::Endpoint::new(rcfops::domain::Stage::Staging, "card-fraud-staging".into());
    ep.swap(Some(rcfops::serve::Deployed {
        version: 7,
        model: sample_model(),
    }));
    let limits = rcfops::serve::Limits {
        header_timeout: Duration::from_millis(500),
        body_timeout: Duration::from_millis(700),
        max_inflight: 1,
        ..Default::default()
    };
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(rcfops::serve::serve_with(listener, ep, limits, async {
        let _ = rx.await;
    }));
    let base = format!("http://{addr}");
    let record = sample_records(1).remove(0);

    // A body that never completes: 408 with a JSON error after the body timeout.
    let t0 = Instant::now();
    let mut slow_body = TcpStream::connect(addr).unwrap();
    slow_body
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        slow_body,
        "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 1000\r\n\r\n33.87,"
    )
    .unwrap();
    // A request head that never completes: the connection is closed after the head timeout.
    let mut slow_head = TcpStream::connect(addr).unwrap();
    slow_head
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        slow_head,
        "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Ty"
    )
    .unwrap();

    // Meanwhile: ping and metrics answer at once; an invocation waits for the single in-flight
    // slot (held by the stalled body) and is then answered, not failed.
    std::thread::sleep(Duration::from_millis(100));
    let c = http();
    let r = c.get(format!("{base}/ping")).send().unwrap();
    assert_eq!((r.status().as_u16(), version_header(&r)), (200, Some(7)));
    assert!(t0.elapsed() < Duration::from_millis(500));
    let (code, v, body) = post_csv(&base, "/invocations", &record);
    assert_eq!((code, v), (200, Some(7)), "{body}");

    let answer = read_answer(&mut slow_body).expect("an answer to the stalled body");
    let waited = t0.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("\"ErrorCode\":\"RequestTimeout\""),
        "{answer}"
    );
    assert!(
        waited >= Duration::from_millis(650) && waited < Duration::from_secs(5),
        "408 after {waited:?}"
    );
    let head = read_answer(&mut slow_head);
    assert!(
        head.as_deref()
            .is_none_or(|h| h.starts_with("HTTP/1.1 408")),
        "{head:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));

    // An oversized body: 413 with a JSON error.
    let big = format!("{record}\n").repeat(rcfops::serve::MAX_BODY / record.len() + 10);
    let r = c
        .post(format!("{base}/invocations"))
        .header("content-type", "text/csv")
        .body(big)
        .send()
        .unwrap();
    assert_json_error(r, 413, "ValidationError");
    // Attribution is bounded per request.
    let many = format!("{record}\n").repeat(1001);
    let r = c
        .post(format!("{base}/invocations"))
        .header("content-type", "text/csv")
        .header("x-amzn-sagemaker-custom-attributes", "attribution=true")
        .body(many)
        .send()
        .unwrap();
    let body = assert_json_error(r, 400, "ValidationError");
    assert!(body["Message"].as_str().unwrap().contains("1000"), "{body}");

    // Still serving; then a graceful stop.
    let (code, _, _) = post_csv(&base, "/invocations", &record);
    assert_eq!(code, 200);
    let _ = tx.send(());
    rt.block_on(server).unwrap().unwrap();
}
