//! `rcfops serve`, the real binary: it refuses a damaged model or a wrong digest with exit 2
//! and one line; refuses to answer unsigned requests on a network address; checks SigV4 with a
//! mounted credentials file; and on SIGTERM finishes the request in flight, then exits.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use rcfops::model::Model;

const BIN: &str = env!("CARGO_BIN_EXE_rcfops");

/// A model folder as SageMaker lays it out: `<dir>/model/model.rcfm`.
fn model_dir(dir: &Path, model: &Model) -> (PathBuf, String) {
    let folder = dir.join("model");
    std::fs::create_dir_all(&folder).unwrap();
    let bytes = model.to_bytes();
    std::fs::write(folder.join("model.rcfm"), &bytes).unwrap();
    (folder, rcfops::artifacts::sha256_hex(&bytes))
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN).arg("serve").args(args).output().unwrap()
}

/// Starts `rcfops serve` and returns it with the address from its "serving ... on" line.
fn start(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(args)
        .env("RCFOPS_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let addr = loop {
        if Instant::now() > deadline {
            break None;
        }
        let Some(Ok(line)) = lines.next() else {
            break None;
        };
        if let (true, Some(i)) = (line.contains("serving"), line.find("://")) {
            break Some(line[i + 3..].trim().to_string());
        }
        seen.push(line);
    };
    match addr {
        Some(addr) => {
            std::thread::spawn(move || for _ in lines {});
            (child, addr)
        }
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rcfops serve did not start: {seen:?}");
        }
    }
}

fn one_line_error(out: &std::process::Output, want: &str) {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(want), "{err}");
}

#[test]
fn damaged_or_unexpected_models_and_open_network_addresses_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (folder, sha) = model_dir(dir.path(), &common::sample_model());
    let file = folder.join("model.rcfm");
    let f = file.to_str().unwrap();
    let wrong = "0".repeat(64);
    one_line_error(
        &run(&["--model", f, "--sha256", &wrong, "--listen", "127.0.0.1:0"]),
        &format!("has sha256 {sha}, not the expected {wrong}"),
    );
    let damaged = dir.path().join("damaged.rcfm");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
    one_line_error(
        &run(&[
            "--model",
            damaged.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ]),
        "is damaged",
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    one_line_error(
        &run(&[
            "--model",
            empty.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ]),
        "no model artifact (*.rcfm)",
    );
    // The container default, 0.0.0.0:8080, without auth.
    one_line_error(
        &run(&["--model", folder.to_str().unwrap(), "--listen", "0.0.0.0:0"]),
        "--allow-unauthenticated",
    );
}

fn request(addr: &str, head: &str, body: &[u8]) -> String {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(body).unwrap();
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    out
}

#[test]
fn sigv4_from_a_mounted_file_and_sigterm_drains_the_request_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::sample_model();
    let (folder, sha) = model_dir(dir.path(), &model);
    let creds = dir.path().join("credentials");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = AKIDPOD\naws_secret_access_key = pod-secret\n",
    )
    .unwrap();
    let (mut child, addr) = start(&[
        "--model",
        folder.to_str().unwrap(),
        "--sha256",
        &sha,
        "--name",
        "card-fraud-prod",
        "--model-version",
        "4",
        "--listen",
        "127.0.0.1:0",
        "--credentials-file",
        creds.to_str().unwrap(),
        "--region",
        "eu-west-1",
    ]);
    let body = b"120.5,3,0.2,14,1,0,2.5,0\n";
    let want = model.score_rows(&[120.5, 3.0, 0.2, 14.0, 1.0, 0.0, 2.5, 0.0], 1)[0];
    let unsigned = request(
        &addr,
        &format!(
            "POST /invocations HTTP/1.1\r\nhost: {addr}\r\ncontent-type: text/csv\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        ),
        body,
    );
    assert!(unsigned.starts_with("HTTP/1.1 403"), "{unsigned}");
    assert!(unsigned.contains("MissingAuthenticationTokenException"));
    let creds_parsed =
        rcfops::auth::Credentials::parse(&std::fs::read_to_string(&creds).unwrap()).unwrap();
    let signer = rcfops::auth::Signer {
        key: creds_parsed.first().clone(),
        scope: rcfops::auth::Scope {
            region: "eu-west-1".into(),
            service: "sagemaker".into(),
        },
    };
    let path = "/endpoints/card-fraud-prod/invocations";
    let signed = signer.sign(
        &rcfops::auth::Outgoing {
            method: "POST",
            host: &addr,
            path,
            query: None,
            headers: &[("content-type", "text/csv")],
            body,
        },
        SystemTime::now(),
    );
    let mut head = format!("POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: text/csv\r\n");
    for (n, v) in &signed {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let ok = request(
        &addr,
        &head.replace("\r\n\r\n", "\r\nconnection: close\r\n\r\n"),
        body,
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("x-rcfops-model-version: 4"), "{ok}");
    let json: serde_json::Value =
        serde_json::from_str(ok.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(json["scores"][0]["score"].as_f64().unwrap(), want);

    // A request in flight: head and half the body sent, then SIGTERM.
    let mut c = TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&body[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    std::thread::sleep(Duration::from_millis(300));
    // No new connections once it stops accepting.
    assert!(
        TcpStream::connect(&addr).is_err(),
        "still accepting after SIGTERM"
    );
    c.write_all(&body[10..]).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = c.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if text.contains("\"scores\"") && text.ends_with('}') {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "in-flight request: {answer}"
    );
    drop(c);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(25),
            "did not exit within the grace period"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

fn fetch(uri: &str, sha: &str, dest: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(["artifact", "fetch", uri, "--sha256", sha, "--dest"])
        .arg(dest)
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .unwrap()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn artifact_fetch_verifies_and_leaves_nothing_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::sample_model();
    let bytes = model.to_bytes();
    let sha = rcfops::artifacts::sha256_hex(&bytes);
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let name = format!("sha256-{sha}.rcfm");
    std::fs::write(store.join(&name), &bytes).unwrap();
    let file_uri = format!("file://{}", store.join(&name).display());

    // file://, then `rcfops serve --model DIR --sha256` takes what it wrote.
    let dest = dir.path().join("emptydir");
    let out = fetch(&file_uri, &sha, &dest);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(listing(&dest), vec![name.clone()]);
    assert_eq!(std::fs::read(dest.join(&name)).unwrap(), bytes);
    rcfops::cli::serve::load_model(&dest, Some(&sha)).unwrap();

    // A wrong digest: exit 1, nothing written.
    let other = dir.path().join("other");
    let wrong = "ab".repeat(32);
    let out = fetch(&file_uri, &wrong, &other);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("has sha256 {sha}, not {wrong}"))
    );
    assert!(listing(&other).is_empty(), "{:?}", listing(&other));

    // http://, whole: the bytes arrive and verify.
    let url = common::http_file_server(bytes.clone(), None);
    let http_dest = dir.path().join("http");
    let out = fetch(&format!("{url}/artifacts/{name}"), &sha, &http_dest);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(http_dest.join(&name)).unwrap(), bytes);

    // http://, cut off half way: non-zero, nothing left (no partial file either).
    let url = common::http_file_server(bytes.clone(), Some(bytes.len() / 2));
    let cut_dest = dir.path().join("cut");
    let out = fetch(&format!("{url}/artifacts/{name}"), &sha, &cut_dest);
    assert!(!out.status.success(), "{out:?}");
    assert!(listing(&cut_dest).is_empty(), "{:?}", listing(&cut_dest));

    // Usage errors: exit 2.
    assert_eq!(fetch("s3://bucket/x", &sha, &other).status.code(), Some(2));
    assert_eq!(fetch(&file_uri, "xyz", &other).status.code(), Some(2));
    // A missing source file: exit 1, nothing left.
    let out = fetch("file:///no/such/artifact.rcfm", &sha, &other);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(listing(&other).is_empty());
}
