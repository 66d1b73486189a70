//! Test harness: a real project in a temp folder (config, model repo seeded from the real
//! `sample-repo/`, state folder), the real `rcfops` binary as a child process, real git
//! commits and annotated tags through git2, and the real registry file.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use git2::{Oid, Repository, Signature};
use rcfops::registry::Registry;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_rcfops");

pub struct Project {
    pub dir: tempfile::TempDir,
    pub cfg_path: PathBuf,
    pub repo_path: PathBuf,
    pub state: PathBuf,
}

pub fn sample_repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-repo")
}

impl Project {
    /// A project with the default template and `extra` appended to the config.
    pub fn new(extra: &str) -> Project {
        Self::with_template(&sample_repo(), extra)
    }

    pub fn with_template(template: &Path, extra: &str) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg_path = dir.path().join("config.toml");
        let text = format!(
            r#"[repo]
path = "model-repo"
branch = "main"
template = "{}"

[state]
dir = "state"

[approvals]
dir = "state/approvals"
{extra}

[endpoints.staging]
listen = "127.0.0.1:0"

[endpoints.production]
listen = "127.0.0.1:0"

[dashboard]
listen = "127.0.0.1:0"

[agent]
debounce_ms = 20
resync_ms = 300
staging_test_records = 60
"#,
            template.display()
        );
        std::fs::write(&cfg_path, text).unwrap();
        let p = Project {
            repo_path: dir.path().join("model-repo"),
            state: dir.path().join("state"),
            cfg_path,
            dir,
        };
        let out = p.rcfops(&["init"]);
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        p
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--config").arg(&self.cfg_path).args(args);
        c.env("RCFOPS_LOG", "info");
        c
    }

    pub fn rcfops(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run rcfops")
    }

    pub fn start(&self) -> Agent {
        self.start_with(&[])
    }

    /// Starts the agent with extra environment variables (e.g. failure points).
    pub fn start_with(&self, env: &[(&str, &str)]) -> Agent {
        let endpoints = self.state.join("endpoints.json");
        let _ = std::fs::remove_file(&endpoints);
        let log = std::fs::File::create(self.dir.path().join(format!(
            "agent-{}.stderr",
            Instant::now().elapsed().as_nanos() ^ rand_suffix()
        )))
        .unwrap();
        let mut cmd = self.cmd(&["up"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn agent");
        let pid = child.id();
        let mut agent = Agent {
            child,
            staging: String::new(),
            production: String::new(),
            dashboard: None,
        };
        let ok = wait_until(Duration::from_secs(30), || {
            let Ok(t) = std::fs::read_to_string(&endpoints) else {
                return false;
            };
            let Ok(v) = serde_json::from_str::<Value>(&t) else {
                return false;
            };
            if v["pid"].as_u64() != Some(pid as u64) {
                return false;
            }
            agent.staging = v["staging"].as_str().unwrap().to_string();
            agent.production = v["production"].as_str().unwrap().to_string();
            agent.dashboard = v["dashboard"].as_str().map(str::to_string);
            true
        });
        assert!(ok, "agent did not start; stderr: {}", self.agent_stderr());
        agent
    }

    pub fn agent_stderr(&self) -> String {
        let mut s = String::new();
        for e in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            if e.file_name().to_string_lossy().ends_with(".stderr") {
                s.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        s
    }

    pub fn registry(&self) -> Registry {
        Registry::open(&self.state.join("registry.sqlite")).unwrap()
    }

    pub fn status(&self) -> Value {
        let out = self.rcfops(&["status", "--json"]);
        assert!(
            out.status.success(),
            "status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status json")
    }

    pub fn repo(&self) -> Repository {
        Repository::open(&self.repo_path).unwrap()
    }

    pub fn head(&self) -> String {
        self.repo()
            .refname_to_id("refs/heads/main")
            .unwrap()
            .to_string()
    }

    /// Writes `files` into the working tree and commits them on main.
    pub fn commit(&self, files: &[(&str, &[u8])], message: &str) -> String {
        let repo = self.repo();
        for (path, content) in files {
            let p = self.repo_path.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
        }
        let mut index = repo.index().unwrap();
        for (path, _) in files {
            index.add_path(Path::new(path)).unwrap();
        }
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let parent = repo.head().unwrap().peel_to_commit().unwrap();
        let sig = Signature::now("Dana Scientist", "dana@bank.example").unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &[&parent])
            .unwrap()
            .to_string()
    }

    /// Commits a change of `pipeline.toml` made by `f` on its current text.
    pub fn commit_spec(&self, f: impl FnOnce(&str) -> String, message: &str) -> String {
        let text = std::fs::read_to_string(self.repo_path.join("pipeline.toml")).unwrap();
        self.commit(&[("pipeline.toml", f(&text).as_bytes())], message)
    }

    /// Creates an annotated tag as `email`.
    pub fn tag(&self, name: &str, commit: &str, email: &str) -> String {
        let repo = self.repo();
        let obj = repo
            .find_object(Oid::from_str(commit).unwrap(), None)
            .unwrap();
        let sig = Signature::now("Approver", email).unwrap();
        repo.tag(name, &obj, &sig, "approved in review", false)
            .unwrap()
            .to_string()
    }

    /// Creates an annotated tag as `email` with `message`, stamped at `when` (unix seconds) or now.
    pub fn tag_with(
        &self,
        name: &str,
        commit: &str,
        email: &str,
        message: &str,
        when: Option<i64>,
    ) -> String {
        let repo = self.repo();
        let obj = repo
            .find_object(Oid::from_str(commit).unwrap(), None)
            .unwrap();
        let sig = match when {
            Some(t) => Signature::new("Approver", email, &git2::Time::new(t, 0)).unwrap(),
            None => Signature::now("Approver", email).unwrap(),
        };
        repo.tag(name, &obj, &sig, message, false)
            .unwrap()
            .to_string()
    }

    /// Creates `promote/vN` as `email`, stamped after the second v`n`'s staging tests passed
    /// (a promotion stamped in that very second is refused as ambiguous). git stamps tags with
    /// `time()`, a coarse clock that can lag the precise one by a timer tick: hence the margin.
    pub fn promote_tag(&self, n: i64, email: &str) -> String {
        let v = self.registry().version(n).unwrap().expect("version exists");
        let passed = v.staging_ts.expect("staging tests ran");
        // A whole second past the boundary: under load the registry's time and git's coarse
        // clock can disagree by more than a tick.
        let next = passed.floor() + 1.0;
        let now = rcfops::registry::now_ts();
        std::thread::sleep(Duration::from_secs_f64((next - now).max(0.0) + 1.0));
        self.tag(&format!("promote/v{n}"), &v.commit, email)
    }

    /// Approves vN (as dana@bank.example) and waits until staging serves it, tests passed.
    pub fn approve_and_wait(&self, n: i64) {
        self.tag(
            &format!("approve/v{n}"),
            &self.version_commit(n),
            "dana@bank.example",
        );
        self.wait_status(&format!("v{n} in staging"), |s| {
            stage_version(s, "staging") == Some(n)
                && version(s, n).unwrap()["staging_tests"] == "Passed"
        });
    }

    /// Promotes vN (as lead@bank.example) and waits until production serves it.
    pub fn promote_and_wait(&self, n: i64) {
        self.promote_tag(n, "lead@bank.example");
        self.wait_status(&format!("v{n} in production"), |s| {
            stage_version(s, "production") == Some(n)
        });
    }

    pub fn lightweight_tag(&self, name: &str, commit: &str) {
        let repo = self.repo();
        let obj = repo
            .find_object(Oid::from_str(commit).unwrap(), None)
            .unwrap();
        repo.tag_lightweight(name, &obj, false).unwrap();
    }

    pub fn delete_tag(&self, name: &str) {
        self.repo().tag_delete(name).unwrap();
    }

    pub fn version_commit(&self, n: i64) -> String {
        self.registry()
            .version(n)
            .unwrap()
            .expect("version exists")
            .commit
    }

    /// Waits until `f(status)` holds; panics with the last status otherwise.
    pub fn wait_status(&self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.status();
            if f(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; status: {}\nagent log:\n{}",
                    serde_json::to_string_pretty(&s).unwrap(),
                    self.agent_stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until a version built from `commit` is registered.
    pub fn wait_commit_registered(&self, commit: &str) -> Value {
        self.wait_status(&format!("a version of {commit}"), |s| {
            s["versions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["commit"] == commit)
        })
    }

    /// Waits for v1, approves it and promotes it: v1 live in both stages.
    pub fn v1_live(&self) {
        self.wait_version(1);
        self.approve_and_wait(1);
        self.promote_and_wait(1);
    }

    pub fn wait_version(&self, n: i64) -> Value {
        self.wait_status(&format!("v{n}"), |s| version(s, n).is_some())
    }

    /// Waits for the agent's decision on tag `name` and returns (outcome, reason).
    pub fn wait_decision(&self, prefix: &str) -> (String, String) {
        let reg = self.registry();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(a) = reg
                .approvals()
                .unwrap()
                .into_iter()
                .find(|a| a.source.to_string().starts_with(prefix))
            {
                return (a.outcome.to_string(), a.reason.unwrap_or_default());
            }
            assert!(
                Instant::now() < deadline,
                "no decision for {prefix}; log:\n{}",
                self.agent_stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_lines(&self) -> String {
        std::fs::read_to_string(self.state.join("agent.log.jsonl")).unwrap_or_default()
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

pub fn version(status: &Value, n: i64) -> Option<&Value> {
    status["versions"]
        .as_array()?
        .iter()
        .find(|v| v["version"].as_i64() == Some(n))
}

pub fn stage_version(status: &Value, stage: &str) -> Option<i64> {
    status["endpoints"][stage]["version"].as_i64()
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

pub struct Agent {
    pub child: Child,
    pub staging: String,
    pub production: String,
    /// The dashboard's URL, when it is served.
    pub dashboard: Option<String>,
}

impl Agent {
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to end by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
        panic!("agent did not stop on SIGTERM");
    }

    pub fn url(&self, stage: &str) -> &str {
        if stage == "staging" {
            &self.staging
        } else {
            &self.production
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `cmd` with `input` on its standard input; returns its output.
pub fn output_with_stdin(mut cmd: Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// A blocking HTTP client that ignores proxies.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// First `n` data rows of the sample CSV as feature-only CSV lines (pipeline.toml order).
pub fn sample_records(n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(sample_repo().join("data/transactions.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let spec = std::fs::read_to_string(sample_repo().join("pipeline.toml")).unwrap();
    let spec = rcfops::pipeline::spec::PipelineSpec::parse(&spec).unwrap();
    let features = spec.data.features.unwrap();
    let idx: Vec<usize> = features
        .iter()
        .map(|f| header.iter().position(|h| h == f).unwrap())
        .collect();
    lines
        .take(n)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            idx.iter().map(|&i| cells[i]).collect::<Vec<_>>().join(",")
        })
        .collect()
}

/// POSTs CSV to a stage; returns (status, version header, body).
pub fn post_csv(base: &str, path: &str, body: &str) -> (u16, Option<i64>, Value) {
    let r = http()
        .post(format!("{base}{path}"))
        .header("content-type", "text/csv")
        .body(body.to_string())
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let v = r
        .headers()
        .get("x-rcfops-model-version")
        .and_then(|h| h.to_str().ok())
        .and_then(|s| s.parse().ok());
    let text = r.text().unwrap();
    (
        status,
        v,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The interpreter for tests that drive a Python package (boto3, standardwebhooks):
/// `RCFOPS_TEST_PYTHON`, else the project's `.venv`. `None` (the test skips, saying why)
/// when it is missing, except under CI, where a missing package fails the test.
pub fn python_with(module: &str, test: &str) -> Option<PathBuf> {
    let found = (|| -> Result<PathBuf, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let python = match std::env::var_os("RCFOPS_TEST_PYTHON") {
            Some(p) => PathBuf::from(p),
            None => root.join(".venv/bin/python"),
        };
        if !python.exists() {
            return Err(format!(
                "no Python at {}: set RCFOPS_TEST_PYTHON or run `python3 -m venv .venv && .venv/bin/pip install boto3 awscli standardwebhooks`",
                python.display()
            ));
        }
        let out = Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} cannot import {module}; install it with `{} -m pip install {module}`",
                python.display(),
                python.display()
            ));
        }
        Ok(python)
    })();
    match found {
        Ok(p) => Some(p),
        Err(why) if std::env::var_os("CI").is_some() => panic!("CI requires {test}: {why}"),
        Err(why) => {
            eprintln!("SKIPPED {test}: {why}");
            None
        }
    }
}

/// The sample repo's model, trained in-process exactly as the pipeline trains it.
pub fn sample_model() -> rcfops::model::Model {
    let root = sample_repo();
    let spec = rcfops::pipeline::spec::PipelineSpec::parse(
        &std::fs::read_to_string(root.join("pipeline.toml")).unwrap(),
    )
    .unwrap();
    let bytes = std::fs::read(root.join(&spec.data.path)).unwrap();
    let table = rcfops::pipeline::data::Table::parse_csv(&bytes, "transactions.csv").unwrap();
    let data = rcfops::pipeline::select(&table, &spec.data, "transactions.csv").unwrap();
    rcfops::pipeline::train_and_evaluate(
        &data,
        &spec.preprocess,
        spec.forest_config(),
        spec.evaluation.test_fraction,
        spec.evaluation.split_seed,
        0,
    )
    .unwrap()
    .model
}

/// A plain HTTP file server on a real port (an artifact store): every GET is answered with
/// `body`, or with only its first `cut` bytes under the full Content-Length (a download cut
/// off). Returns its base URL.
pub fn http_file_server(body: Vec<u8>, cut: Option<usize>) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = c.write_all(head.as_bytes());
            let _ = c.write_all(&body[..cut.unwrap_or(body.len())]);
        }
    });
    format!("http://{addr}")
}
