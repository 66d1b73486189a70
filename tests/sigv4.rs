//! SigV4 on a real listening stage endpoint: the bad-request table (each refused with the
//! status and AWS error code the SDKs know, nothing scored, the endpoint still serving, the
//! refusal counted in /metrics), the normalisations that must still pass, and a cross-check of
//! the signatures against the AWS SDK for Rust's signer (`aws-sigv4`).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcfops::auth::{Credentials, Scope, Signer, Verifier};
use rcfops::domain::Stage;
use rcfops::model::Model;
use rcfops::serve::{Access, Deployed, Endpoint, Limits};

const NAME: &str = "card-fraud-prod";
const PATH: &str = "/endpoints/card-fraud-prod/invocations";
const REGION: &str = "eu-west-1";
const CREDENTIALS: &str = "[default]\naws_access_key_id = AKIDFRAUDTEAM\naws_secret_access_key = team/secret+KEY\n\n[ops]\naws_access_key_id = AKIDOPS\naws_secret_access_key = ops-secret\n";

fn scope() -> Scope {
    Scope {
        region: REGION.into(),
        service: "sagemaker".into(),
    }
}

fn verifier() -> Verifier {
    Verifier::new(Arc::new(Credentials::parse(CREDENTIALS).unwrap()), scope())
}

/// A production endpoint with SigV4 on, on a real port, in a background runtime.
struct Server {
    addr: std::net::SocketAddr,
    _rt: tokio::runtime::Runtime,
}

fn start(model: Model) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ep = Endpoint::new(Stage::Production, NAME.into());
    ep.swap(Some(Deployed { version: 3, model }));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = Limits::default();
    let app = rcfops::serve::router_for(
        ep,
        limits.clone(),
        Access {
            sigv4: Some(verifier()),
            metrics: true,
        },
    );
    rt.spawn(async move {
        rcfops::serve::serve_app(listener, app, &limits, None, std::future::pending()).await
    });
    Server { addr, _rt: rt }
}

/// One HTTP/1.1 request, written byte for byte as the table says.
#[derive(Clone, Debug)]
struct Req {
    method: &'static str,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn set(mut self, name: &str, value: &str) -> Req {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }
    fn add(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.into(), value.into()));
        self
    }
    fn remove(mut self, name: &str) -> Req {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }
    fn auth(self, f: impl Fn(&str) -> String) -> Req {
        let a = f(self.header("authorization").unwrap());
        self.set("authorization", &a)
    }
    fn body(mut self, b: &[u8]) -> Req {
        self.body = b.to_vec();
        self
    }
    fn target(mut self, t: &str) -> Req {
        self.target = t.into();
        self
    }
}

const BODY: &[u8] = b"120.5,3,0.2,14,1,0,2.5,0\n";

fn host(s: &Server) -> String {
    s.addr.to_string()
}

/// A request signed by rcfops's signer with `key` at `at`, `extra` headers signed too.
fn signed_with(
    s: &Server,
    signer: &Signer,
    target: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    at: SystemTime,
) -> Req {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut headers: Vec<(&str, &str)> = vec![("content-type", "text/csv")];
    headers.extend_from_slice(extra);
    let h = host(s);
    let added = signer.sign(
        &rcfops::auth::sigv4::Outgoing {
            method: "POST",
            host: &h,
            path,
            query,
            headers: &headers,
            body,
        },
        at,
    );
    let mut out: Vec<(String, String)> = vec![("host".into(), host(s))];
    out.extend(headers.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    out.extend(added.into_iter().map(|(n, v)| (n.to_string(), v)));
    Req {
        method: "POST",
        target: target.into(),
        headers: out,
        body: body.to_vec(),
    }
}

fn signer_for(key: &str, secret: &str, region: &str, service: &str) -> Signer {
    let text = format!("[k]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n");
    Signer {
        key: Credentials::parse(&text).unwrap().first().clone(),
        scope: Scope {
            region: region.into(),
            service: service.into(),
        },
    }
}

fn team() -> Signer {
    verifier().signer()
}

fn good(s: &Server) -> Req {
    signed_with(s, &team(), PATH, &[], BODY, SystemTime::now())
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

fn send(s: &Server, r: &Req) -> Answer {
    let mut raw = format!("{} {} HTTP/1.1\r\n", r.method, r.target).into_bytes();
    for (n, v) in &r.headers {
        raw.extend_from_slice(n.as_bytes());
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(v.as_bytes());
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            r.body.len()
        )
        .as_bytes(),
    );
    raw.extend_from_slice(&r.body);
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(&raw).unwrap();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn metrics(s: &Server) -> String {
    send(
        s,
        &Req {
            method: "GET",
            target: "/metrics".into(),
            headers: vec![("host".into(), host(s))],
            body: vec![],
        },
    )
    .body
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn refusals(text: &str, code: &str, reason: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with("rcfops_endpoint_auth_refusals_total")
                && l.contains(&format!("code=\"{code}\""))
                && l.contains(&format!("reason=\"{reason}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn replace_signature(a: &str, sig: &str) -> String {
    let (head, _) = a.rsplit_once("Signature=").unwrap();
    format!("{head}Signature={sig}")
}

#[test]
fn bad_requests_are_refused_with_the_sdk_codes_and_nothing_is_scored() {
    let s = start(common::sample_model());
    let now = SystemTime::now();
    let min = |m: u64| Duration::from_secs(60 * m);
    const MISSING: &str = "MissingAuthenticationTokenException";
    const INCOMPLETE: &str = "IncompleteSignatureException";
    const INVALID: &str = "InvalidSignatureException";
    const UNRECOGNIZED: &str = "UnrecognizedClientException";
    let other_body_sig = {
        let r = signed_with(&s, &team(), PATH, &[], b"1,2,3,4,5,6,7,8\n", now);
        r.header("authorization")
            .unwrap()
            .rsplit_once("Signature=")
            .unwrap()
            .1
            .to_string()
    };
    let huge = "a".repeat(5000);
    // (what, request, status, error code, refusal reason counted in /metrics)
    let table: Vec<(&str, Req, u16, &str, &str)> = vec![
        (
            "no Authorization header",
            good(&s).remove("authorization"),
            403,
            MISSING,
            "missing",
        ),
        (
            "no Authorization on /invocations",
            good(&s).remove("authorization").target("/invocations"),
            403,
            MISSING,
            "missing",
        ),
        (
            "wrong secret",
            signed_with(
                &s,
                &signer_for("AKIDFRAUDTEAM", "not-the-secret", REGION, "sagemaker"),
                PATH,
                &[],
                BODY,
                now,
            ),
            403,
            INVALID,
            "signature_mismatch",
        ),
        (
            "unknown key id",
            signed_with(
                &s,
                &signer_for("AKIDSTRANGER", "team/secret+KEY", REGION, "sagemaker"),
                PATH,
                &[],
                BODY,
                now,
            ),
            403,
            UNRECOGNIZED,
            "unknown_key",
        ),
        (
            "6 min in the past",
            signed_with(&s, &team(), PATH, &[], BODY, now - min(6)),
            403,
            INVALID,
            "expired",
        ),
        (
            "a day in the past",
            signed_with(&s, &team(), PATH, &[], BODY, now - min(24 * 60)),
            403,
            INVALID,
            "expired",
        ),
        (
            "6 min in the future",
            signed_with(&s, &team(), PATH, &[], BODY, now + min(6)),
            403,
            INVALID,
            "not_yet_valid",
        ),
        (
            "a year in the future",
            signed_with(&s, &team(), PATH, &[], BODY, now + min(365 * 24 * 60)),
            403,
            INVALID,
            "not_yet_valid",
        ),
        (
            "wrong region",
            signed_with(
                &s,
                &signer_for("AKIDFRAUDTEAM", "team/secret+KEY", "us-east-1", "sagemaker"),
                PATH,
                &[],
                BODY,
                now,
            ),
            403,
            INVALID,
            "wrong_region",
        ),
        (
            "wrong service",
            signed_with(
                &s,
                &signer_for("AKIDFRAUDTEAM", "team/secret+KEY", REGION, "execute-api"),
                PATH,
                &[],
                BODY,
                now,
            ),
            403,
            INVALID,
            "wrong_service",
        ),
        (
            "body altered after signing",
            good(&s).body(b"999999,3,0.2,14,1,0,2.5,0\n"),
            403,
            INVALID,
            "signature_mismatch",
        ),
        (
            "a byte appended to the body",
            good(&s).body(b"120.5,3,0.2,14,1,0,2.5,0\n\n"),
            403,
            INVALID,
            "signature_mismatch",
        ),
        (
            "body emptied",
            good(&s).body(b""),
            403,
            INVALID,
            "signature_mismatch",
        ),
        (
            "path altered to /invocations",
            good(&s).target("/invocations"),
            403,
            INVALID,
            "signature_mismatch",
        ),
        (
            "path altered to another endpoint name",
            good(&s).target("/endpoints/card-fraud-staging/invocations"),
            403,
            INVALID,
            "signature_mismatch",
        ),
        (
            "query added after signing",
            good(&s).target(&format!("{PATH}?x=1")),
            403,
            INVALID,
            "signature_mismatch",
        ),
        (
            "query value altered",
            signed_with(&s, &team(), &format!("{PATH}?a=1"), &[], BODY, now)
                .target(&format!("{PATH}?a=2")),
            403,
            INVALID,
            "signature_mismatch",
        ),
        (
            "signed content type changed",
            good(&s).set("content-type", "application/jsonlines"),
            403,
            INVALID,
            "signature_mismatch",
        ),
        (
            "host changed",
            good(&s).set("host", "evil.example:8080"),
            403,
            INVALID,
            "signature_mismatch",
        ),
        (
            "unsigned Accept added",
            good(&s).add("accept", "application/json"),
            403,
            INCOMPLETE,
            "unsigned_header",
        ),
        (
            "unsigned custom attributes added",
            good(&s).add("x-amzn-sagemaker-custom-attributes", "attribution=true"),
            403,
            INCOMPLETE,
            "unsigned_header",
        ),
        (
            "host not among the signed headers",
            good(&s).auth(|a| {
                a.replace(
                    "SignedHeaders=content-type;host;",
                    "SignedHeaders=content-type;",
                )
            }),
            403,
            INCOMPLETE,
            "unsigned_header",
        ),
        (
            "content-type sent but not signed",
            good(&s).auth(|a| a.replace("SignedHeaders=content-type;", "SignedHeaders=")),
            403,
            INCOMPLETE,
            "unsigned_header",
        ),
        (
            "a signed header missing from the request",
            signed_with(&s, &team(), PATH, &[("x-trace", "abc")], BODY, now).remove("x-trace"),
            403,
            INCOMPLETE,
            "signed_header_missing",
        ),
        (
            "x-amz-date missing",
            good(&s)
                .remove("x-amz-date")
                .auth(|a| a.replace(";x-amz-date", "")),
            403,
            INCOMPLETE,
            "unsigned_header",
        ),
        (
            "x-amz-date removed but signed",
            good(&s).remove("x-amz-date"),
            403,
            INCOMPLETE,
            "signed_header_missing",
        ),
        (
            "x-amz-date not ISO 8601 basic",
            good(&s).set("x-amz-date", "2026-12-02T10:00:00Z"),
            403,
            INCOMPLETE,
            "bad_date",
        ),
        (
            "two x-amz-date headers",
            {
                let r = good(&s);
                let d = r.header("x-amz-date").unwrap().to_string();
                r.add("x-amz-date", &d)
            },
            403,
            INCOMPLETE,
            "bad_date",
        ),
        (
            "two Authorization headers",
            {
                let r = good(&s);
                let a = r.header("authorization").unwrap().to_string();
                r.add("authorization", &a)
            },
            403,
            INCOMPLETE,
            "duplicate_authorization",
        ),
        (
            "algorithm only",
            good(&s).set("authorization", "AWS4-HMAC-SHA256"),
            403,
            INCOMPLETE,
            "algorithm",
        ),
        (
            "another algorithm",
            good(&s).auth(|a| a.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512")),
            403,
            INCOMPLETE,
            "algorithm",
        ),
        (
            "Basic auth",
            good(&s).set("authorization", "Basic dXNlcjpwYXNz"),
            403,
            INCOMPLETE,
            "algorithm",
        ),
        (
            "Bearer token",
            good(&s).set("authorization", "Bearer eyJhbGciOi"),
            403,
            INCOMPLETE,
            "algorithm",
        ),
        (
            "no Signature parameter",
            good(&s).auth(|a| a.rsplit_once(", Signature=").unwrap().0.to_string()),
            403,
            INCOMPLETE,
            "malformed",
        ),
        (
            "no Credential parameter",
            good(&s).auth(|a| format!("AWS4-HMAC-SHA256 {}", a.split_once(", ").unwrap().1)),
            403,
            INCOMPLETE,
            "malformed",
        ),
        (
            "Signature given twice",
            good(&s).auth(|a| {
                let sig = a.rsplit_once("Signature=").unwrap().1;
                format!("{a}, Signature={sig}")
            }),
            403,
            INCOMPLETE,
            "malformed",
        ),
        (
            "unknown parameter",
            good(&s).auth(|a| format!("{a}, Extra=1")),
            403,
            INCOMPLETE,
            "malformed",
        ),
        (
            "parameter without =",
            good(&s).auth(|a| format!("{a}, junk")),
            403,
            INCOMPLETE,
            "malformed",
        ),
        (
            "Credential with four parts",
            good(&s).auth(|a| a.replace("/aws4_request", "")),
            403,
            INCOMPLETE,
            "malformed",
        ),
        (
            "Credential with a wrong terminator",
            good(&s).auth(|a| a.replace("/aws4_request", "/aws4_reques")),
            403,
            INCOMPLETE,
            "malformed",
        ),
        (
            "Credential date not matching x-amz-date",
            good(&s).auth(|a| {
                a.replace(
                    &format!("/{}/", &good(&s).header("x-amz-date").unwrap()[..8]),
                    "/20000101/",
                )
            }),
            403,
            INVALID,
            "scope_date",
        ),
        (
            "non-hex signature",
            good(&s).auth(|a| replace_signature(a, &"zz".repeat(32))),
            403,
            INCOMPLETE,
            "signature_format",
        ),
        (
            "63-character signature",
            good(&s).auth(|a| replace_signature(a, &"a".repeat(63))),
            403,
            INCOMPLETE,
            "signature_format",
        ),
        (
            "empty signature",
            good(&s).auth(|a| replace_signature(a, "")),
            403,
            INCOMPLETE,
            "signature_format",
        ),
        (
            "another request's signature",
            good(&s).auth(|a| replace_signature(a, &other_body_sig)),
            403,
            INVALID,
            "signature_mismatch",
        ),
        (
            "SignedHeaders not sorted",
            good(&s).auth(|a| {
                a.replace(
                    "content-type;host;x-amz-date",
                    "host;content-type;x-amz-date",
                )
            }),
            403,
            INCOMPLETE,
            "malformed",
        ),
        (
            "SignedHeaders in upper case",
            good(&s).auth(|a| {
                a.replace(
                    "content-type;host;x-amz-date",
                    "Content-Type;Host;X-Amz-Date",
                )
            }),
            403,
            INCOMPLETE,
            "malformed",
        ),
        (
            "oversized Authorization header",
            good(&s).auth(|a| format!("{a}{huge}")),
            403,
            INCOMPLETE,
            "oversized_authorization",
        ),
        (
            "x-amz-content-sha256 of another body",
            signed_with(
                &s,
                &team(),
                PATH,
                &[(
                    "x-amz-content-sha256",
                    &rcfops::auth::sigv4::sha256_hex(b"other"),
                )],
                BODY,
                now,
            ),
            403,
            INVALID,
            "payload_hash",
        ),
        (
            "unsigned payload",
            signed_with(
                &s,
                &team(),
                PATH,
                &[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")],
                BODY,
                now,
            ),
            403,
            INCOMPLETE,
            "payload_hash",
        ),
        (
            "temporary credentials",
            signed_with(
                &s,
                &team(),
                PATH,
                &[("x-amz-security-token", "FwoGZXIvYXdzE")],
                BODY,
                now,
            ),
            403,
            UNRECOGNIZED,
            "session_token",
        ),
        (
            "presigned URL",
            good(&s).remove("authorization").target(&format!(
                "{PATH}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc"
            )),
            403,
            INCOMPLETE,
            "presigned",
        ),
    ];
    assert!(table.len() >= 40, "{} rows", table.len());
    let mut m = metrics(&s);
    for (what, req, status, code, reason) in &table {
        let scored = metric(&m, "rcfops_endpoint_records_scored_total");
        let before = refusals(&m, code, reason);
        let a = send(&s, req);
        assert_eq!(a.status, *status, "{what}: {} {}", a.head, a.body);
        assert_eq!(
            a.header("x-amzn-errortype").as_deref(),
            Some(*code),
            "{what}: {}",
            a.head
        );
        let body: serde_json::Value = serde_json::from_str(&a.body)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", a.body));
        let message = body["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{what}: {body}");
        assert!(
            !a.body.contains("team/secret") && !a.body.contains("ops-secret"),
            "{what}: a secret in the answer"
        );
        assert!(
            a.header("x-rcfops-model-version").is_none(),
            "{what}: a refused request learns nothing about the model"
        );
        m = metrics(&s);
        assert_eq!(
            metric(&m, "rcfops_endpoint_records_scored_total"),
            scored,
            "{what}: something was scored"
        );
        assert_eq!(
            refusals(&m, code, reason),
            before + 1.0,
            "{what}: refusal not counted as {code}/{reason}"
        );
        // The endpoint keeps serving signed requests.
        let ok = send(&s, &good(&s));
        assert_eq!(ok.status, 200, "after {what}: {}", ok.body);
        m = metrics(&s);
    }
    // A request head beyond the server's limit never reaches the handler: 431, still serving.
    let flood = good(&s).add("x-padding", &"p".repeat(1 << 20));
    let a = send(&s, &flood);
    assert!(matches!(a.status, 431 | 400), "{}", a.head);
    assert_eq!(send(&s, &good(&s)).status, 200);
    eprintln!("bad-request table: {} rows", table.len() + 1);
}

#[test]
fn normalised_variations_and_every_key_pass() {
    let s = start(common::sample_model());
    let now = SystemTime::now();
    let base = send(&s, &good(&s));
    assert_eq!(base.status, 200, "{}", base.body);
    let mut cases: Vec<(&str, Req)> = vec![
        ("header names in upper case", {
            let mut r = good(&s);
            for (n, _) in r.headers.iter_mut() {
                *n = n.to_uppercase();
            }
            r
        }),
        ("header names in mixed case", {
            let mut r = good(&s);
            for (n, _) in r.headers.iter_mut() {
                *n = n
                    .split('-')
                    .map(|w| {
                        let mut c = w.chars();
                        c.next()
                            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
                    .join("-");
            }
            r
        }),
        (
            "spaces around a header value",
            good(&s).set("content-type", "   text/csv   "),
        ),
        (
            "upper-case hex signature",
            good(&s).auth(|a| {
                let (h, sig) = a.rsplit_once("Signature=").unwrap();
                format!("{h}Signature={}", sig.to_uppercase())
            }),
        ),
        (
            "extra spaces between parameters",
            good(&s).auth(|a| a.replace(", ", " ,   ")),
        ),
        (
            "query pairs in another order",
            signed_with(&s, &team(), &format!("{PATH}?a=1&b=2"), &[], BODY, now)
                .target(&format!("{PATH}?b=2&a=1")),
        ),
        (
            "an unsigned User-Agent",
            good(&s).add("user-agent", "curl/8"),
        ),
        (
            "4 min in the past",
            signed_with(&s, &team(), PATH, &[], BODY, now - Duration::from_secs(240)),
        ),
        (
            "4 min in the future",
            signed_with(&s, &team(), PATH, &[], BODY, now + Duration::from_secs(240)),
        ),
        (
            "the second key in the file",
            signed_with(
                &s,
                &signer_for("AKIDOPS", "ops-secret", REGION, "sagemaker"),
                PATH,
                &[],
                BODY,
                now,
            ),
        ),
        (
            "x-amz-content-sha256 of the body, signed",
            signed_with(
                &s,
                &team(),
                PATH,
                &[(
                    "x-amz-content-sha256",
                    &rcfops::auth::sigv4::sha256_hex(BODY),
                )],
                BODY,
                now,
            ),
        ),
        (
            "signed Accept and custom attributes",
            signed_with(
                &s,
                &team(),
                PATH,
                &[
                    ("accept", "application/json"),
                    ("x-amzn-sagemaker-custom-attributes", "attribution=true"),
                ],
                BODY,
                now,
            ),
        ),
        (
            "signed by the AWS SDK for Rust",
            aws_signed(&s, "AKIDFRAUDTEAM", "team/secret+KEY", PATH, BODY, now),
        ),
    ];
    cases.push((
        "the default route, signed",
        signed_with(&s, &team(), "/invocations", &[], BODY, now),
    ));
    for (what, req) in &cases {
        let a = send(&s, req);
        assert_eq!(a.status, 200, "{what}: {} {}", a.head, a.body);
        assert_eq!(a.header("x-rcfops-model-version").as_deref(), Some("3"));
        if !what.contains("attributes") {
            assert_eq!(a.body, base.body, "{what}: same record, same score");
        }
    }
}

/// A request signed by `aws-sigv4` (the AWS SDK for Rust's signer).
fn aws_signed(
    s: &Server,
    key: &str,
    secret: &str,
    target: &str,
    body: &[u8],
    at: SystemTime,
) -> Req {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    let identity = aws_credential_types::Credentials::from_keys(key, secret, None).into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("sagemaker")
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let url = format!("http://{}{target}", host(s));
    let headers = [("host", host(s)), ("content-type", "text/csv".to_string())];
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().map(|(n, v)| (*n, v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut out: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect();
    for (n, v) in instructions.headers() {
        out.push((n.to_string(), v.to_string()));
    }
    Req {
        method: "POST",
        target: target.into(),
        headers: out,
        body: body.to_vec(),
    }
}

/// rcfops's signer and the AWS SDK's agree byte for byte, over keys, bodies, paths and times.
#[test]
fn signatures_match_the_aws_sdk_signer() {
    let s = start(common::sample_model());
    let v = verifier();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_672_000);
    let mut checked = 0;
    for (i, body) in [&b""[..], BODY, b"{\"instances\":[]}", &[0xff, 0, 13, 10]]
        .iter()
        .enumerate()
    {
        for target in [
            PATH,
            "/invocations",
            "/endpoints/a%20b/invocations",
            "/endpoints/x/invocations?b=2&a=1&a=0",
        ] {
            let at = t0 + Duration::from_secs(977 * i as u64 + 13);
            let ours = signed_with(&s, &v.signer(), target, &[], body, at);
            let theirs = aws_signed(&s, "AKIDFRAUDTEAM", "team/secret+KEY", target, body, at);
            assert_eq!(
                ours.header("authorization"),
                theirs.header("authorization"),
                "{target} body {i}"
            );
            assert_eq!(ours.header("x-amz-date"), theirs.header("x-amz-date"));
            // And the verifier accepts the SDK's signature at that time.
            let mut h = axum::http::HeaderMap::new();
            for (n, val) in &theirs.headers {
                h.append(
                    axum::http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    val.parse().unwrap(),
                );
            }
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (target, None),
            };
            v.check_headers("POST", path, query, &h, at)
                .and_then(|p| p.finish(body))
                .unwrap_or_else(|e| panic!("{target}: {e:?}"));
            checked += 1;
        }
    }
    assert_eq!(checked, 16);
}
