//! Staging tests: real requests to the live staging endpoint after each staging deploy.
//!
//! Owns the checks a version must pass before it may be promoted: the endpoint answers
//! `/ping` as the expected version; held-out records sent as CSV, JSON and JSON lines get
//! exactly the scores evaluation computed for them (so the deployed artifact is the evaluated
//! one); and single-record latency stays within the stage's budget. It only reads the endpoint;
//! recording the result is the reconciler's job.

use std::time::{Duration, Instant};

use crate::auth::Signer;
use crate::pipeline::StagingSample;
use crate::serve::VERSION_HEADER;

pub struct StagingTarget<'a> {
    pub base_url: &'a str,
    pub endpoint_name: &'a str,
    pub version: i64,
    pub latency_budget_ms: u64,
    /// Signs every invocation when the endpoint checks SigV4.
    pub signer: Option<&'a Signer>,
    /// Certificates (DER) trusted beside the system's roots: the endpoint's own chain when it
    /// serves TLS.
    pub trust: &'a [Vec<u8>],
    /// A stage rolled out elsewhere (Kubernetes): wait up to this long for `/ping` to answer
    /// as `version` before testing; `None`: it must answer at once.
    pub wait_ready: Option<Duration>,
}

/// What rcfops's own clients trust for a stage beside the system's roots: the certificates
/// of its `tls_cert` (end the chain with the CA), or nothing without TLS.
pub fn trust_for(ecfg: &crate::config::EndpointConfig) -> Vec<Vec<u8>> {
    ecfg.tls
        .as_ref()
        .map(|t| crate::serve::tls::chain_der(&crate::serve::tls::TlsFiles::new(&t.cert, &t.key)))
        .unwrap_or_default()
}

/// An HTTP client for rcfops's own endpoints: no proxy, `timeout`, and `trust` added to the
/// system's roots.
pub fn client(timeout: Duration, trust: &[Vec<u8>]) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder().timeout(timeout).no_proxy();
    for der in trust {
        let cert = reqwest::Certificate::from_der(der)
            .map_err(|e| format!("bad certificate in the endpoint's chain: {e}"))?;
        b = b.add_root_certificate(cert);
    }
    b.build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// A POST of `body` to `url` with `headers`, signed with SigV4 when `signer` is given (what
/// the endpoint checks when its auth is on).
pub fn post(
    client: &reqwest::Client,
    signer: Option<&Signer>,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<reqwest::RequestBuilder, String> {
    // reqwest sends `accept: */*` unless told otherwise; a signed request must sign it.
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if !all.iter().any(|(n, _)| n.eq_ignore_ascii_case("accept")) {
        all.push(("accept", "*/*"));
    }
    let headers = &all[..];
    let mut req = client.post(url);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    if let Some(signer) = signer {
        let u = reqwest::Url::parse(url).map_err(|e| format!("bad URL {url}: {e}"))?;
        let host = match u.port() {
            Some(p) => format!("{}:{p}", u.host_str().unwrap_or("")),
            None => u.host_str().unwrap_or("").to_string(),
        };
        let out = crate::auth::sigv4::Outgoing {
            method: "POST",
            host: &host,
            path: u.path(),
            query: u.query(),
            headers,
            body: &body,
        };
        for (n, v) in signer.sign(&out, std::time::SystemTime::now()) {
            req = req.header(n, v);
        }
        req = req.header("host", host);
    }
    Ok(req.body(body))
}

fn fmt_records(records: &[Vec<f64>], f: impl Fn(&[f64]) -> String) -> String {
    let mut s = String::new();
    for r in records {
        s.push_str(&f(r));
        s.push('\n');
    }
    s
}

fn csv_line(r: &[f64]) -> String {
    r.iter()
        .map(|v| format!("{v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn json_array(r: &[f64]) -> String {
    format!(
        "[{}]",
        r.iter()
            .map(|v| format!("{v}"))
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// Runs every check; `Ok(detail)` when all pass, `Err(what failed)` otherwise.
pub async fn run(t: &StagingTarget<'_>, sample: &StagingSample) -> Result<String, String> {
    let client = client(Duration::from_secs(30), t.trust)?;
    let url = format!("{}/endpoints/{}/invocations", t.base_url, t.endpoint_name);

    if let Some(limit) = t.wait_ready {
        let deadline = Instant::now() + limit;
        let mut last;
        loop {
            match client.get(format!("{}/ping", t.base_url)).send().await {
                Ok(r)
                    if r.status() == 200
                        && check_version(r.headers(), t.version, "/ping").is_ok() =>
                {
                    break
                }
                Ok(r) => {
                    last = format!(
                        "answered {} as {:?}",
                        r.status(),
                        r.headers().get(VERSION_HEADER)
                    )
                }
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the staging Service at {} did not answer /ping as v{} within {} s (last: {last})",
                    t.base_url,
                    t.version,
                    limit.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let ping = client
        .get(format!("{}/ping", t.base_url))
        .send()
        .await
        .map_err(|e| format!("GET /ping failed: {e}"))?;
    if ping.status() != 200 {
        return Err(format!("GET /ping answered {}", ping.status()));
    }
    check_version(ping.headers(), t.version, "/ping")?;

    let bodies = [
        (
            "text/csv",
            "application/json",
            fmt_records(&sample.records, csv_line),
        ),
        (
            "application/json",
            "application/jsonlines",
            format!(
                "{{\"instances\":[{}]}}",
                sample
                    .records
                    .iter()
                    .map(|r| format!("{{\"features\":{}}}", json_array(r)))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ),
        (
            "application/jsonlines",
            "application/json",
            fmt_records(&sample.records, |r| {
                format!("{{\"features\":{}}}", json_array(r))
            }),
        ),
    ];
    for (ct, accept, body) in bodies {
        let resp = post(
            &client,
            t.signer,
            &url,
            &[("content-type", ct), ("accept", accept)],
            body.into_bytes(),
        )?
        .send()
        .await
        .map_err(|e| format!("POST {ct} failed: {e}"))?;
        let status = resp.status();
        if status != 200 {
            let text = resp.text().await.unwrap_or_default();
            return Err(format!("POST {ct} answered {status}: {text}"));
        }
        check_version(resp.headers(), t.version, ct)?;
        let got_ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if !got_ct.starts_with(accept) {
            return Err(format!(
                "POST {ct} with Accept {accept} answered Content-Type {got_ct:?}"
            ));
        }
        let text = resp
            .text()
            .await
            .map_err(|e| format!("reading the {ct} response: {e}"))?;
        let scores = parse_scores(&text, accept)?;
        if scores.len() != sample.scores.len() {
            return Err(format!(
                "{ct}: {} scores for {} records",
                scores.len(),
                sample.scores.len()
            ));
        }
        for (i, (got, want)) in scores.iter().zip(&sample.scores).enumerate() {
            if got != want {
                return Err(format!(
                    "{ct}: record {i} scored {got} on staging but {want} in evaluation: the deployed model is not the evaluated one"
                ));
            }
        }
    }

    let mut lat = Vec::new();
    for r in sample
        .records
        .iter()
        .cycle()
        .take(sample.records.len().clamp(1, 50))
    {
        let t0 = Instant::now();
        let resp = post(
            &client,
            t.signer,
            &url,
            &[("content-type", "text/csv")],
            csv_line(r).into_bytes(),
        )?
        .send()
        .await
        .map_err(|e| format!("single-record request failed: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status != 200 {
            return Err(format!("a single-record request answered {status}: {text}"));
        }
        lat.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let p50 = lat[lat.len() / 2];
    let p99 = lat[((lat.len() as f64 * 0.99).ceil() as usize).min(lat.len()) - 1];
    if p99 > t.latency_budget_ms as f64 {
        return Err(format!(
            "p99 latency {p99:.1} ms exceeds the budget of {} ms",
            t.latency_budget_ms
        ));
    }
    Ok(format!(
        "scores identical to evaluation on {} held-out records as text/csv, application/json and application/jsonlines; p50 {p50:.2} ms, p99 {p99:.2} ms over {} single-record requests (budget {} ms)",
        sample.records.len(),
        lat.len(),
        t.latency_budget_ms
    ))
}

fn check_version(h: &reqwest::header::HeaderMap, want: i64, what: &str) -> Result<(), String> {
    let got = h
        .get(VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none");
    if got != want.to_string() {
        return Err(format!(
            "{what} was answered by model version {got}, expected v{want}"
        ));
    }
    Ok(())
}

/// Parses `{"scores":[{"score":x},...]}` or JSON lines of `{"score":x}`.
pub fn parse_scores(text: &str, accept: &str) -> Result<Vec<f64>, String> {
    let get = |v: &serde_json::Value| {
        v.get("score")
            .and_then(|s| s.as_f64())
            .ok_or("a score is missing")
    };
    if accept == "application/jsonlines" {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).map_err(|e| e.to_string())?;
                get(&v).map_err(str::to_string)
            })
            .collect()
    } else {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        v.get("scores")
            .and_then(|s| s.as_array())
            .ok_or("no \"scores\" array")?
            .iter()
            .map(|s| get(s).map_err(str::to_string))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::parse_scores;

    #[test]
    fn scores_parse_back_to_the_exact_same_bits() {
        // Shortest round-trip texts whose nearest f64 a fast, not correctly rounded parser can
        // miss by one ulp; the staging tests compare scores for bit equality.
        let xs = [
            0.5229772732153215,
            1.4707069804958892,
            2.2250738585072014e-308,
            0.1 + 0.2,
            1.0 / 3.0,
            9007199254740993.0,
            5e-324,
        ];
        let body = format!(
            "{{\"scores\":[{}]}}",
            xs.iter()
                .map(|x| format!("{{\"score\":{x}}}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(parse_scores(&body, "application/json").unwrap(), xs);
        for i in 0..20_000u64 {
            let x = (i as f64).mul_add(0.000_137_1, 1.0).ln() * std::f64::consts::PI;
            let back =
                parse_scores(&format!("{{\"score\":{x}}}\n"), "application/jsonlines").unwrap();
            assert_eq!(back[0].to_bits(), x.to_bits(), "{x}");
        }
    }
}
