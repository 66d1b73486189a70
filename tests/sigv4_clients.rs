//! SigV4 with real clients against the real agent: the staging tests and `rcfops score` sign
//! their own requests; boto3 (keys from a credentials-file profile) and the AWS CLI
//! (`aws sagemaker-runtime invoke-endpoint --endpoint-url`) pass; wrong keys surface as the
//! SDK's `ClientError` codes. And the safe default: a non-loopback address without auth does
//! not start.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};

const REGION: &str = "eu-west-1";

/// A credentials file with the team's keys and a profile whose secret is wrong.
fn credentials(dir: &Path) -> PathBuf {
    let path = dir.join("credentials");
    std::fs::write(
        &path,
        "[default]\naws_access_key_id = AKIDAGENT\naws_secret_access_key = agent-secret\n\n\
         [fraud-team]\naws_access_key_id = AKIDFRAUD\naws_secret_access_key = fraud/Secret+1\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

/// The client side: the team profile, a wrong secret and an unknown key id.
fn client_credentials(dir: &Path) -> PathBuf {
    let path = dir.join("client-credentials");
    std::fs::write(
        &path,
        "[fraud-team]\naws_access_key_id = AKIDFRAUD\naws_secret_access_key = fraud/Secret+1\n\n\
         [wrong-secret]\naws_access_key_id = AKIDFRAUD\naws_secret_access_key = guessed\n\n\
         [stranger]\naws_access_key_id = AKIDSTRANGER\naws_secret_access_key = whatever\n",
    )
    .unwrap();
    path
}

fn auth_tables(creds: &Path) -> String {
    let mut s = String::new();
    for stage in ["staging", "production"] {
        s.push_str(&format!(
            "[endpoints.{stage}.auth]\nmode = \"sigv4\"\ncredentials_file = \"{}\"\nregion = \"{REGION}\"\n\n",
            creds.display()
        ));
    }
    s
}

fn scores_of(text: &str) -> Vec<f64> {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    v["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["score"].as_f64().unwrap())
        .collect()
}

/// `tests/py/boto3_invoke.py` against the staging endpoint at `url`, signing with `profile`
/// of the client credentials file (and verifying TLS with `ca`, when given); its results.
fn run_boto3(
    python: &Path,
    url: &str,
    profile: &str,
    creds: &Path,
    ca: Option<&Path>,
    calls: &Value,
) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/boto3_invoke.py");
    let mut cmd = std::process::Command::new(python);
    cmd.arg(&script)
        .args([url, "card-fraud-staging", profile, REGION])
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", creds)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_CA_BUNDLE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(ca) = ca {
        cmd.env("RCFOPS_CA_BUNDLE", ca);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(calls.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn boto3_the_aws_cli_rcfops_score_and_staging_tests_sign_and_pass() {
    let python = python_with(
        "boto3",
        "boto3_the_aws_cli_rcfops_score_and_staging_tests_sign_and_pass",
    );
    let keys = tempfile::tempdir().unwrap();
    let creds = credentials(keys.path());
    let client_creds = client_credentials(keys.path());
    let p = Project::new(&auth_tables(&creds));
    // Production's /metrics on its own port.
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(&p.cfg_path).unwrap();
    let from = "[endpoints.production]\nlisten = \"127.0.0.1:0\"\n";
    assert!(text.contains(from));
    std::fs::write(
        &p.cfg_path,
        text.replace(
            from,
            &format!("{from}metrics_listen = \"127.0.0.1:{metrics_port}\"\n"),
        ),
    )
    .unwrap();
    let agent = p.start();
    p.wait_version(1);
    let scrape = http()
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .unwrap();
    assert_eq!(scrape.status(), 200);
    assert!(scrape
        .text()
        .unwrap()
        .contains("rcfops_endpoint_model_version{stage=\"production\"}"));
    assert_eq!(
        http()
            .get(format!("{}/metrics", agent.production))
            .send()
            .unwrap()
            .status(),
        404,
        "/metrics moved off the endpoint's own address"
    );
    assert_eq!(
        http()
            .get(format!("{}/metrics", agent.staging))
            .send()
            .unwrap()
            .status(),
        200,
        "staging keeps /metrics beside its invocations"
    );
    // The staging tests sign their requests: v1 only reaches "Passed" if they do.
    p.approve_and_wait(1);

    let records = sample_records(6);
    let csv = format!("{}\n", records.join("\n"));
    // Unsigned: refused, with the SDK's code.
    let r = http()
        .post(format!(
            "{}/endpoints/card-fraud-staging/invocations",
            agent.staging
        ))
        .header("content-type", "text/csv")
        .body(csv.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    // /ping stays open for probes.
    assert_eq!(
        http()
            .get(format!("{}/ping", agent.staging))
            .send()
            .unwrap()
            .status(),
        200
    );

    // rcfops score signs with the first key of the stage's credentials file.
    let file = keys.path().join("records.csv");
    std::fs::write(&file, &csv).unwrap();
    let out = p.rcfops(&["score", "--stage", "staging", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "rcfops score: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let by_score: Vec<f64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(by_score.len(), 6);

    let Some(python) = python else {
        return;
    };
    let instances: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({"features": r.split(',').map(|v| v.parse::<f64>().unwrap()).collect::<Vec<_>>()})
        })
        .collect();
    let calls = json!([
        {"content_type": "text/csv", "body": csv},
        {"content_type": "application/json", "accept": "application/json",
         "body": json!({"instances": instances}).to_string()},
        {"content_type": "text/csv", "body": records[0], "custom_attributes": "attribution=true"},
    ]);
    let boto3 = |profile: &str, calls: &Value| -> Vec<Value> {
        run_boto3(&python, &agent.staging, profile, &client_creds, None, calls)
    };
    let results = boto3("fraud-team", &calls);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["ok"], true, "boto3 call {i}: {r}");
        assert_eq!(r["version"], "1");
    }
    let csv_scores = scores_of(results[0]["body"].as_str().unwrap());
    assert_eq!(csv_scores, by_score, "boto3 CSV = rcfops score");
    assert_eq!(scores_of(results[1]["body"].as_str().unwrap()), by_score);
    // Wrong keys are ClientErrors with the codes AWS uses.
    let one = json!([{"content_type": "text/csv", "body": records[0]}]);
    for (profile, code) in [
        ("wrong-secret", "InvalidSignatureException"),
        ("stranger", "UnrecognizedClientException"),
    ] {
        let r = &boto3(profile, &one)[0];
        assert_eq!(r["ok"], false, "{profile}: {r}");
        assert_eq!(r["http_status"], 403, "{profile}: {r}");
        assert_eq!(r["error_code"], code, "{profile}: {r}");
        assert!(!r["message"].as_str().unwrap_or("").is_empty());
    }

    // The AWS CLI.
    let aws = python.parent().unwrap().join("aws");
    if !aws.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI requires the AWS CLI at {} (pip install awscli)",
            aws.display()
        );
        eprintln!("SKIPPED the AWS CLI part: no {}", aws.display());
        return;
    }
    let body = keys.path().join("body.csv");
    std::fs::write(&body, &csv).unwrap();
    let cli = |profile: &str, outfile: &Path| {
        std::process::Command::new(&python)
            .arg(&aws)
            .args([
                "sagemaker-runtime",
                "invoke-endpoint",
                "--endpoint-name",
                "card-fraud-staging",
                "--content-type",
                "text/csv",
                "--body",
                &format!("fileb://{}", body.display()),
                "--endpoint-url",
                &agent.staging,
                "--region",
                REGION,
                "--profile",
                profile,
                "--cli-read-timeout",
                "30",
            ])
            .arg(outfile)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", &client_creds)
            .env("AWS_MAX_ATTEMPTS", "1")
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap()
    };
    let outfile = keys.path().join("cli-out.json");
    let out = cli("fraud-team", &outfile);
    assert!(
        out.status.success(),
        "aws cli: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(meta["ContentType"], "application/json", "{meta}");
    assert_eq!(
        scores_of(&std::fs::read_to_string(&outfile).unwrap()),
        by_score,
        "AWS CLI = rcfops score"
    );
    let out = cli("wrong-secret", &keys.path().join("never.json"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("InvalidSignatureException"), "{err}");
    assert!(!keys.path().join("never.json").exists());

    // No secret in the agent's logs (both forms) or in status.
    let status = String::from_utf8(p.rcfops(&["status", "--json"]).stdout).unwrap();
    let logs = format!(
        "{}{}{}",
        p.agent_stderr(),
        std::fs::read_to_string(p.state.join("agent.log.jsonl")).unwrap_or_default(),
        status
    );
    assert!(
        logs.contains("endpoint auth: sigv4 (region eu-west-1"),
        "{logs}"
    );
    for secret in ["agent-secret", "fraud/Secret+1"] {
        assert!(!logs.contains(secret), "{secret} leaked");
    }
}

#[test]
fn a_network_address_without_auth_does_not_start_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "[endpoints.production]\nlisten = \"0.0.0.0:0\"\n[endpoints.staging]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rcfops"))
        .arg("--config")
        .arg(&cfg)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("0.0.0.0:0")
            && err.contains("mode = \"sigv4\"")
            && err.contains("allow_unauthenticated = true"),
        "{err}"
    );
    assert!(err.contains("config.toml:2"), "names the line: {err}");
    // A world-readable credentials file is a warning, and its secrets never show.
    let keys = dir.path().join("creds");
    std::fs::write(
        &keys,
        "[default]\naws_access_key_id = AKIDX\naws_secret_access_key = do-not-print-me\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let cfg_text = format!(
        "[endpoints.production]\nlisten = \"0.0.0.0:0\"\n[endpoints.production.auth]\nmode = \"sigv4\"\ncredentials_file = \"{}\"\nregion = \"{REGION}\"\n",
        keys.display()
    );
    let c = rcfops::config::Config::parse(&cfg_text, "config.toml", dir.path()).unwrap();
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("readable by others") && w.contains("chmod 600")),
        "{:?}",
        c.warnings
    );
    let shown = format!("{c:?}");
    assert!(!shown.contains("do-not-print-me"), "a secret in Debug");
    // Explicitly allowed: it starts with a warning.
    let allowed = rcfops::config::Config::parse(
        "[endpoints.production]\nlisten = \"0.0.0.0:0\"\n[endpoints.production.auth]\nallow_unauthenticated = true\n",
        "config.toml",
        dir.path(),
    )
    .unwrap();
    assert!(allowed
        .warnings
        .iter()
        .any(|w| w.contains("unauthenticated")));
}

/// A CA and a server certificate for 127.0.0.1 and localhost signed by it: (chain PEM with
/// the CA last, key PEM, CA PEM).
fn test_pki(name: &str) -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("rcfops test CA {name}"));
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    (
        format!("{}{}", leaf.pem(), ca.pem()),
        leaf_key.serialize_pem(),
        ca.pem(),
    )
}

/// Writes `text` to `path` atomically (as a certificate renewal should).
fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn https_client(ca_pem: &str) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

#[test]
fn tls_serves_boto3_with_a_test_ca_and_follows_a_renewed_certificate() {
    let python = python_with(
        "boto3",
        "tls_serves_boto3_with_a_test_ca_and_follows_a_renewed_certificate",
    );
    let keys = tempfile::tempdir().unwrap();
    let creds = credentials(keys.path());
    let client_creds = client_credentials(keys.path());
    let (chain1, key1, ca1) = test_pki("one");
    let cert = keys.path().join("tls.crt");
    let key = keys.path().join("tls.key");
    std::fs::write(&cert, &chain1).unwrap();
    std::fs::write(&key, &key1).unwrap();
    let ca1_file = keys.path().join("ca1.pem");
    std::fs::write(&ca1_file, &ca1).unwrap();
    let p = Project::new(&auth_tables(&creds));
    // TLS on staging: the keys go into the [endpoints.staging] table the project wrote.
    let text = std::fs::read_to_string(&p.cfg_path).unwrap();
    let from = "[endpoints.staging]\nlisten = \"127.0.0.1:0\"\n";
    assert!(text.contains(from));
    let text = text.replace(
        from,
        &format!(
            "{from}tls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    );
    std::fs::write(&p.cfg_path, text).unwrap();
    let agent = p.start();
    assert!(agent.staging.starts_with("https://"), "{}", agent.staging);
    p.wait_version(1);
    // The staging tests reach the endpoint over TLS (trusting the chain's CA) and sign.
    p.approve_and_wait(1);
    let ping = https_client(&ca1)
        .get(format!("{}/ping", agent.staging))
        .send()
        .unwrap();
    assert_eq!(ping.status(), 200);

    let records = sample_records(3);
    let csv = format!("{}\n", records.join("\n"));
    let boto3 = |ca: &Path| -> Option<Vec<Value>> {
        let calls = json!([{"content_type": "text/csv", "body": csv}]);
        Some(run_boto3(
            python.as_ref()?,
            &agent.staging,
            "fraud-team",
            &client_creds,
            Some(ca),
            &calls,
        ))
    };
    let first = boto3(&ca1_file).map(|r| {
        assert_eq!(r[0]["ok"], true, "{}", r[0]);
        scores_of(r[0]["body"].as_str().unwrap())
    });

    // Renew: a certificate from another CA, written while the agent runs.
    let (chain2, key2, ca2) = test_pki("two");
    replace_file(&key, &key2);
    replace_file(&cert, &chain2);
    let ca2_file = keys.path().join("ca2.pem");
    std::fs::write(&ca2_file, &ca2).unwrap();
    let ok = wait_until(std::time::Duration::from_secs(10), || {
        https_client(&ca2)
            .get(format!("{}/ping", agent.staging))
            .send()
            .is_ok_and(|r| r.status() == 200)
    });
    assert!(ok, "the renewed certificate is not served");
    assert!(
        https_client(&ca1)
            .get(format!("{}/ping", agent.staging))
            .send()
            .is_err(),
        "the old CA still verifies: the old certificate is still served"
    );
    if let (Some(a), Some(b)) = (first, boto3(&ca2_file)) {
        assert_eq!(b[0]["ok"], true, "{}", b[0]);
        assert_eq!(scores_of(b[0]["body"].as_str().unwrap()), a);
    }
    // A broken renewal (a key that does not match) keeps the last good pair in service.
    let (_, other_key, _) = test_pki("three");
    replace_file(&key, &other_key);
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(
        https_client(&ca2)
            .get(format!("{}/ping", agent.staging))
            .send()
            .unwrap()
            .status(),
        200
    );
}
