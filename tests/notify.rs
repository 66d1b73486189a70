//! Notifications against real receivers on loopback: a Python receiver that checks every
//! signature with the `standardwebhooks` package, answers from a plan (fail N times, 410,
//! redirect, hang), and logs what it got. The agent is a real process, killed and restarted.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use serde_json::{json, Value};

struct Receiver {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
}

impl Receiver {
    /// Starts a receiver; with `secret`, every request is verified with standardwebhooks.
    fn start(python: &Path, secret: Option<&Path>, plan: Value) -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        std::fs::write(dir.path().join("plan.json"), plan.to_string()).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/webhook_receiver.py");
        let mut cmd = Command::new(python);
        cmd.arg(script)
            .arg(&port_file)
            .arg(dir.path().join("log.jsonl"))
            .arg(dir.path().join("plan.json"));
        if let Some(s) = secret {
            cmd.arg(s);
        }
        let child = cmd
            .stdout(Stdio::null())
            .spawn()
            .expect("start the receiver");
        assert!(
            wait_until(Duration::from_secs(20), || port_file.exists()),
            "the receiver did not start"
        );
        let port = std::fs::read_to_string(&port_file).unwrap();
        Receiver {
            child,
            url: format!("http://127.0.0.1:{}", port.trim()),
            dir,
        }
    }

    fn set_plan(&self, plan: Value) {
        let tmp = self.dir.path().join("plan.tmp");
        std::fs::write(&tmp, plan.to_string()).unwrap();
        std::fs::rename(tmp, self.dir.path().join("plan.json")).unwrap();
    }

    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("log.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits until at least `n` requests arrived.
    fn wait_requests(&self, n: usize, p: &Project) -> Vec<Value> {
        let mut got = Vec::new();
        let ok = wait_until(Duration::from_secs(60), || {
            got = self.requests();
            got.len() >= n
        });
        assert!(
            ok,
            "the receiver got {} of {n} requests; agent log:\n{}",
            got.len(),
            p.agent_stderr()
        );
        got
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python(test: &str) -> Option<PathBuf> {
    python_with("standardwebhooks", test)
}

/// A fresh `whsec_` secret in a file readable by its owner only.
fn secret_file(dir: &Path) -> PathBuf {
    let key: Vec<u8> = (0..32)
        .map(|i| (rcfops::registry::now_ts().to_bits() >> (i % 8)) as u8 ^ (i * 37) as u8)
        .collect();
    let path = dir.join("webhook-secret");
    std::fs::write(
        &path,
        format!(
            "whsec_{}\n",
            base64::engine::general_purpose::STANDARD.encode(key)
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

fn webhook_sink(name: &str, url: &str, secret: &Path, more: &str) -> String {
    format!(
        "\n[[notify.sinks]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"{url}/hooks\"\nsecret_file = \"{}\"\nbackoff_ms = 50\nmax_backoff_ms = 3000\n{more}\n",
        secret.display()
    )
}

fn body(req: &Value) -> Value {
    serde_json::from_str(req["body"].as_str().unwrap()).unwrap()
}

fn outbox(p: &Project) -> Vec<rcfops::registry::OutboxRow> {
    p.registry().outbox(1000).unwrap()
}

fn notify_json(p: &Project) -> Value {
    let out = p.rcfops(&["notify", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every delivery of `sink` in `notify list --json`, by event id.
fn states(p: &Project, sink: &str) -> Vec<(i64, String)> {
    notify_json(p)["events"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| {
            e["sinks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["sink"] == sink)
                .map(|s| {
                    (
                        e["id"].as_i64().unwrap(),
                        s["state"].as_str().unwrap().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn assert_all_verified(reqs: &[Value]) {
    for r in reqs {
        assert_eq!(
            r["verified"], true,
            "standardwebhooks refused a request: {}",
            r["verify_error"]
        );
    }
}

#[test]
fn every_transition_reaches_a_verifying_receiver_with_what_to_do_next() {
    let Some(py) = python("every_transition_reaches_a_verifying_receiver_with_what_to_do_next")
    else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let secret = secret_file(keys.path());
    let rx = Receiver::start(&py, Some(&secret), json!({"then": {"status": 204}}));
    let p = Project::new(&webhook_sink("ops", &rx.url, &secret, ""));
    let _agent = p.start();
    p.v1_live();
    let commit = p.version_commit(1);
    // Refused approvals: tags that name no version.
    for i in 0..14 {
        p.tag_with(
            &format!("approve/v{}", 100 + i),
            &commit,
            "dana@bank.example",
            &format!("try {i}"),
            None,
        );
    }
    let want = 6 + 14;
    let reqs = rx.wait_requests(want, &p);
    let rows = outbox(&p);
    assert_eq!(reqs.len(), rows.len(), "one request per event, no more");
    assert_all_verified(&reqs);

    let types: Vec<String> = rows.iter().map(|r| r.data.event.to_string()).collect();
    assert_eq!(
        &types[..6],
        [
            "version.pending",
            "version.approved",
            "stage.deployed",
            "staging.tests_passed",
            "version.approved",
            "stage.deployed",
        ]
    );
    assert_eq!(
        types.iter().filter(|t| *t == "approval.refused").count(),
        14,
        "{types:?}"
    );
    let audit = p.registry().audit_log(1000).unwrap();
    let instance = p.registry().instance_id().unwrap();
    for (req, row) in reqs.iter().zip(&rows) {
        let ce = body(req);
        assert_eq!(
            req["headers"]["content-type"],
            "application/cloudevents+json"
        );
        assert_eq!(ce["specversion"], "1.0");
        let id = format!("msg_{instance}_{}", row.id);
        assert_eq!(ce["id"], id.as_str());
        assert_eq!(req["headers"]["webhook-id"], id.as_str());
        assert_eq!(ce["type"], format!("dev.rcfops.{}", row.data.event));
        assert_eq!(ce["source"], "/rcfops/card-fraud");
        let a = audit
            .iter()
            .find(|a| Some(a.id) == ce["data"]["audit_id"].as_i64())
            .expect("the event names its audit row");
        assert_eq!(ce["data"]["audit_event"], a.event.as_str());
        assert_eq!(ce["data"]["actor"], a.actor.as_str());
    }
    let first = body(&reqs[0]);
    assert_eq!(first["data"]["version"], 1);
    assert_eq!(first["data"]["commit"], commit.as_str());
    assert_eq!(first["data"]["next"]["command"], "rcfops approve 1");
    assert_eq!(
        first["data"]["next"]["tag"],
        format!("git tag -a approve/v1 {commit} -m \"approve v1\"")
    );
    let passed = body(&reqs[3]);
    assert_eq!(passed["data"]["next"]["command"], "rcfops promote 1");
    let promoted = body(&reqs[4]);
    assert_eq!(promoted["data"]["stage"], "production");
    assert_eq!(promoted["data"]["actor"], "lead@bank.example");
    assert_eq!(promoted["data"]["how"], "tag");
    assert_eq!(body(&reqs[5])["data"]["stage"], "production");
    // The delivered state is recorded, and `notify list` shows it.
    assert!(wait_until(Duration::from_secs(10), || states(&p, "ops")
        .iter()
        .all(|(_, s)| s == "delivered")
        && states(&p, "ops").len() == rows.len()));

    // Transition to receiver, over ≥ 20 events.
    let mut lat: Vec<f64> = reqs
        .iter()
        .zip(&rows)
        .map(|(r, row)| r["t"].as_f64().unwrap() - row.at_ts)
        .collect();
    lat.sort_by(f64::total_cmp);
    eprintln!(
        "delivery latency over {} events: median {:.1} ms, max {:.1} ms",
        lat.len(),
        lat[lat.len() / 2] * 1e3,
        lat[lat.len() - 1] * 1e3
    );
    assert!(lat[0] >= -0.01, "a request cannot precede its event");
}

#[test]
fn a_failing_receiver_gets_the_same_message_until_it_answers_and_redirects_are_not_followed() {
    let Some(py) = python("a_failing_receiver_gets_the_same_message") else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let secret = secret_file(keys.path());
    let elsewhere = Receiver::start(&py, None, json!({"then": {"status": 204}}));
    let rx = Receiver::start(
        &py,
        Some(&secret),
        json!({"steps": [
            {"status": 500, "body": "database down"},
            {"status": 503, "retry_after": "2"},
            {"status": 302, "location": format!("{}/moved", elsewhere.url)},
        ], "then": {"status": 200}}),
    );
    let all = Receiver::start(&py, Some(&secret), json!({"then": {"status": 204}}));
    let p = Project::new(&format!(
        "{}{}",
        webhook_sink(
            "pending-only",
            &rx.url,
            &secret,
            "events = [\"version.pending\"]"
        ),
        webhook_sink("all", &all.url, &secret, "")
    ));
    let _agent = p.start();
    p.wait_version(1);
    let reqs = rx.wait_requests(4, &p);
    assert_all_verified(&reqs);
    let ids: Vec<&Value> = reqs.iter().map(|r| &r["headers"]["webhook-id"]).collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "one webhook-id across retries: {ids:?}"
    );
    assert!(
        reqs.iter().all(|r| r["body"] == reqs[0]["body"]),
        "the same body every time"
    );
    let t: Vec<f64> = reqs.iter().map(|r| r["t"].as_f64().unwrap()).collect();
    assert!(
        t[2] - t[1] >= 1.9,
        "Retry-After: 2 was honoured (waited {:.2} s)",
        t[2] - t[1]
    );
    assert!(
        t[1] - t[0] < 1.9,
        "the first retry follows the backoff, not Retry-After"
    );
    assert!(
        elsewhere.requests().is_empty(),
        "the redirect was not followed"
    );
    assert!(wait_until(Duration::from_secs(10), || states(
        &p,
        "pending-only"
    ) == vec![(
        1,
        "delivered".to_string()
    )]));
    let list = String::from_utf8(p.rcfops(&["notify", "list"]).stdout).unwrap();
    assert!(list.contains("pending-only: delivered"), "{list}");

    // The filter: once the other sink has the staging events, this one still has only its one.
    p.approve_and_wait(1);
    all.wait_requests(4, &p);
    assert!(
        all.requests()
            .iter()
            .any(|r| body(r)["data"]["event"] == "staging.tests_passed"),
        "the unfiltered sink gets everything"
    );
    assert_eq!(rx.requests().len(), 4);
    let attempts = &notify_json(&p)["events"][0]["sinks"];
    let a = attempts
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sink"] == "pending-only")
        .unwrap();
    assert_eq!(a["attempts"], 4, "{a}");
}

#[test]
fn a_dead_receiver_is_dead_lettered_shown_in_status_and_sent_again_on_retry() {
    let Some(py) = python("a_dead_receiver_is_dead_lettered") else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let secret = secret_file(keys.path());
    let rx = Receiver::start(
        &py,
        Some(&secret),
        json!({"then": {"status": 500, "body": "no"}}),
    );
    let p = Project::new(&webhook_sink(
        "ops",
        &rx.url,
        &secret,
        "max_attempts = 3\nevents = [\"version.pending\"]",
    ));
    let _agent = p.start();
    p.wait_version(1);
    rx.wait_requests(3, &p);
    assert!(wait_until(Duration::from_secs(10), || states(&p, "ops")
        == vec![(1, "dead".to_string())]));
    let status = String::from_utf8(p.rcfops(&["status"]).stdout).unwrap();
    assert!(
        status.contains("notifications: 1 dead-lettered")
            && status
                .contains("event 1 version.pending to ops: HTTP 500 Internal Server Error: no"),
        "{status}"
    );
    let s = p.status();
    assert_eq!(s["notifications"]["dead"][0]["id"], 1);
    assert_eq!(s["notifications"]["dead"][0]["type"], "version.pending");
    let dead = String::from_utf8(p.rcfops(&["notify", "list", "--state", "dead"]).stdout).unwrap();
    assert!(dead.contains("ops: dead after 3 attempt(s)"), "{dead}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rx.requests().len(), 3, "no attempt after the last one");

    rx.set_plan(json!({"then": {"status": 204}}));
    let out = p.rcfops(&["notify", "retry", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reqs = rx.wait_requests(4, &p);
    assert_eq!(
        reqs[3]["headers"]["webhook-id"],
        reqs[0]["headers"]["webhook-id"]
    );
    assert!(wait_until(Duration::from_secs(10), || states(&p, "ops")
        == vec![(1, "delivered".to_string())]));
    assert!(p.status()["notifications"]["dead"]
        .as_array()
        .unwrap()
        .is_empty());

    let again = p.rcfops(&["notify", "retry", "1"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("event 1 has nothing to retry"));
    let none = p.rcfops(&["notify", "retry", "999"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("there is no event 999"));
}

#[test]
fn a_410_disables_the_sink_until_retry() {
    let Some(py) = python("a_410_disables_the_sink_until_retry") else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let secret = secret_file(keys.path());
    let rx = Receiver::start(
        &py,
        Some(&secret),
        json!({"steps": [{"status": 410}], "then": {"status": 204}}),
    );
    let p = Project::new(&webhook_sink("ops", &rx.url, &secret, ""));
    let _agent = p.start();
    p.wait_version(1);
    rx.wait_requests(1, &p);
    assert!(wait_until(Duration::from_secs(10), || p.status()
        ["notifications"]["disabled_sinks"]
        == json!(["ops"])));
    p.approve_and_wait(1);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(rx.requests().len(), 1, "a disabled sink is not called");
    let status = String::from_utf8(p.rcfops(&["status"]).stdout).unwrap();
    assert!(
        status.contains("sink ops is disabled (it answered 410 Gone)"),
        "{status}"
    );

    let out = p.rcfops(&["notify", "retry", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = outbox(&p).len();
    let reqs = rx.wait_requests(n + 1, &p);
    assert_all_verified(&reqs);
    assert!(wait_until(Duration::from_secs(10), || {
        let s = states(&p, "ops");
        s.len() == n && s.iter().all(|(_, st)| st == "delivered")
    }));
}

#[test]
fn a_hanging_receiver_or_command_delays_no_deployment() {
    let Some(py) = python("a_hanging_receiver_or_command_delays_no_deployment") else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let secret = secret_file(keys.path());
    let rx = Receiver::start(&py, Some(&secret), json!({"then": {"hang": 600}}));
    let p = Project::new(&format!(
        "{}\n[[notify.sinks]]\nname = \"slow-script\"\nkind = \"command\"\ncommand = [\"sleep\", \"600\"]\ntimeout_ms = 120000\n",
        webhook_sink("stuck", &rx.url, &secret, "timeout_ms = 120000")
    ));
    let mut agent = p.start();
    let start = Instant::now();
    p.wait_version(1);
    rx.wait_requests(1, &p);
    p.approve_and_wait(1);
    p.promote_and_wait(1);
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(100),
        "the flow finished while every delivery was still hanging ({took:?})"
    );
    // The hanging requests are still open: nothing was recorded for them.
    assert!(states(&p, "stuck").iter().all(|(_, s)| s == "pending"));
    assert_eq!(
        rx.requests().len(),
        1,
        "one request at a time per sink, still waiting"
    );
    // Runs are not held up either: a new commit is trained and registered.
    let c = p.commit_spec(|t| t.replace("seed = 42", "seed = 7"), "reseed");
    p.wait_commit_registered(&c);
    agent.stop(); // SIGTERM ends the agent with deliveries in flight
}

/// A project whose agent died at failure point `point` (SIGABRT: what kill -9 does to the
/// registry) with a webhook sink; then restarted and taken through approval. Returns the
/// requests the receiver got once they stopped coming, and the number of events written.
fn crash_at(
    point: &str,
    test: &str,
    before_restart: impl FnOnce(&Receiver),
) -> Option<(Vec<Value>, usize, Project)> {
    let py = python(test)?;
    let keys = tempfile::tempdir().unwrap();
    let secret = secret_file(keys.path());
    let rx = Receiver::start(&py, Some(&secret), json!({"then": {"status": 204}}));
    let p = Project::new(&webhook_sink("ops", &rx.url, &secret, ""));
    let spec = format!("{point}=abort");
    let mut agent = p.start_with(&[("RCFOPS_FAILPOINTS", spec.as_str())]);
    let exit = agent.wait_exit(Duration::from_secs(60));
    assert!(
        exit.is_some_and(|s| !s.success()),
        "the agent died at {point}"
    );
    let written = outbox(&p);
    assert_eq!(
        written.first().map(|e| e.data.event.to_string()).as_deref(),
        Some("version.pending"),
        "the transition and its event were committed"
    );
    before_restart(&rx);
    let _agent = p.start();
    p.approve_and_wait(1);
    let n = outbox(&p).len();
    assert_all_verified(&rx.wait_requests(n, &p));
    assert!(wait_until(Duration::from_secs(10), || states(&p, "ops")
        .iter()
        .all(|(_, s)| s == "delivered")));
    std::thread::sleep(Duration::from_millis(500));
    Some((rx.requests(), n, p))
}

#[test]
fn kill_9_between_the_transition_and_the_post_loses_nothing() {
    let Some((reqs, n, _p)) = crash_at(
        "notify.before-send",
        "kill_9_between_the_transition_and_the_post_loses_nothing",
        |rx| {
            assert!(
                rx.requests().is_empty(),
                "nothing was sent before the crash"
            )
        },
    ) else {
        return;
    };
    let mut ids: Vec<&str> = reqs
        .iter()
        .map(|r| r["headers"]["webhook-id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "every event arrived");
    assert_eq!(reqs.len(), n, "none twice");
}

#[test]
fn kill_9_between_the_2xx_and_the_mark_resends_one_event_with_the_same_id() {
    let Some((reqs, n, _p)) = crash_at(
        "notify.after-send",
        "kill_9_between_the_2xx_and_the_mark_resends_one_event_with_the_same_id",
        |rx| assert_eq!(rx.requests().len(), 1, "the receiver answered 2xx once"),
    ) else {
        return;
    };
    assert_eq!(reqs.len(), n + 1, "exactly one duplicate");
    let first_id = &reqs[0]["headers"]["webhook-id"];
    let copies: Vec<&Value> = reqs
        .iter()
        .filter(|r| r["headers"]["webhook-id"] == *first_id)
        .collect();
    assert_eq!(
        copies.len(),
        2,
        "the duplicate is the event in flight at the crash"
    );
    assert_eq!(
        copies[0]["body"], copies[1]["body"],
        "same CloudEvent, same id"
    );
}

#[test]
fn slack_gets_text_and_blocks_and_its_url_is_never_shown() {
    let Some(py) = python("slack_gets_text_and_blocks_and_its_url_is_never_shown") else {
        return;
    };
    let token = "T0001/B0002/SeCrEtToKeN42";
    let rx = Receiver::start(&py, None, json!({"then": {"status": 200, "body": "ok"}}));
    let keys = tempfile::tempdir().unwrap();
    let good = keys.path().join("slack-url");
    std::fs::write(&good, format!("{}/services/{token}\n", rx.url)).unwrap();
    // A second Slack sink nobody listens on: its errors must not show the URL either.
    let dead = keys.path().join("slack-url-dead");
    std::fs::write(&dead, format!("http://127.0.0.1:9/services/{token}\n")).unwrap();
    let p = Project::new(&format!(
        "\n[[notify.sinks]]\nname = \"team\"\nkind = \"slack\"\nsecret_file = \"{}\"\n\n[[notify.sinks]]\nname = \"gone\"\nkind = \"slack\"\nsecret_file = \"{}\"\nmax_attempts = 2\nbackoff_ms = 20\n",
        good.display(),
        dead.display()
    ));
    let mut agent = p.start();
    p.wait_version(1);
    let reqs = rx.wait_requests(1, &p);
    assert_eq!(reqs[0]["path"], format!("/services/{token}"));
    let msg = body(&reqs[0]);
    let text = msg["text"].as_str().unwrap();
    assert!(
        text.contains("v1 is waiting for approval. Next: rcfops approve 1"),
        "{text}"
    );
    let blocks = msg["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "section");
    assert!(blocks.iter().any(|b| b["text"]["text"]
        .as_str()
        .is_some_and(|t| t.contains("git tag -a approve/v1"))));
    assert!(wait_until(Duration::from_secs(20), || states(&p, "gone")
        == vec![(1, "dead".to_string())]));

    let test_dead = p.rcfops(&["notify", "test", "gone"]);
    assert_eq!(test_dead.status.code(), Some(1));
    agent.stop();
    let mut shown = vec![
        ("agent stderr", p.agent_stderr()),
        ("agent log", p.log_lines()),
        ("notify test", format!("{test_dead:?}")),
    ];
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["notify", "list"],
        &["notify", "list", "--json"],
        &["notify", "test", "team"],
    ] {
        let out = p.rcfops(args);
        shown.push((
            "a command",
            format!(
                "{args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ));
    }
    assert!(shown[2].1.contains("slack (URL redacted"), "{}", shown[2].1);
    for (what, text) in shown {
        assert!(
            !text.contains("SeCrEtToKeN42"),
            "{what} shows the Slack URL: {text}"
        );
    }
}

#[test]
fn a_command_sink_gets_the_event_on_stdin_and_is_timed_out() {
    let work = tempfile::tempdir().unwrap();
    let out_file = work.path().join("events.jsonl");
    let p = Project::new(&format!(
        r#"
[[notify.sinks]]
name = "script"
kind = "command"
command = ["sh", "-c", "cat >> {out}; echo >> {out}; echo filed"]
events = ["version.pending"]

[[notify.sinks]]
name = "broken"
kind = "command"
command = ["sh", "-c", "echo cannot reach the pager >&2; exit 3"]
events = ["version.pending"]
max_attempts = 2
backoff_ms = 20

[[notify.sinks]]
name = "slow"
kind = "command"
command = ["sleep", "30"]
events = ["version.pending"]
timeout_ms = 300
max_attempts = 1
"#,
        out = out_file.display()
    ));
    let _agent = p.start();
    p.wait_version(1);
    let mut last = Value::Null;
    let settled = wait_until(Duration::from_secs(60), || {
        last = notify_json(&p);
        last["events"][0]["sinks"]
            .as_array()
            .is_some_and(|v| v.len() == 3 && v.iter().all(|d| d["state"] != "pending"))
    });
    assert!(settled, "{last:#}\nagent log:\n{}", p.agent_stderr());
    let got = std::fs::read_to_string(&out_file).unwrap();
    let ce: Value = serde_json::from_str(got.lines().next().unwrap()).unwrap();
    assert_eq!(ce["type"], "dev.rcfops.version.pending");
    assert_eq!(ce["data"]["next"]["command"], "rcfops approve 1");
    let list = notify_json(&p);
    let sinks = list["events"][0]["sinks"].as_array().unwrap();
    let by = |n: &str| sinks.iter().find(|s| s["sink"] == n).unwrap().clone();
    assert_eq!(by("script")["state"], "delivered");
    assert_eq!(by("broken")["state"], "dead");
    assert_eq!(by("broken")["attempts"], 2);
    assert!(
        by("broken")["last_error"]
            .as_str()
            .unwrap()
            .contains("exit status: 3: cannot reach the pager"),
        "{}",
        by("broken")
    );
    assert_eq!(by("slow")["state"], "dead");
    assert!(
        by("slow")["last_error"]
            .as_str()
            .unwrap()
            .contains("did not finish within 300 ms (killed)"),
        "{}",
        by("slow")
    );
}

#[test]
fn notify_test_prints_the_receivers_answer() {
    let Some(py) = python("notify_test_prints_the_receivers_answer") else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let secret = secret_file(keys.path());
    let rx = Receiver::start(
        &py,
        Some(&secret),
        json!({"steps": [{"status": 200, "body": "hello from the receiver"}], "then": {"status": 410}}),
    );
    let p = Project::new(&webhook_sink("ops", &rx.url, &secret, ""));
    let out = p.rcfops(&["notify", "test", "ops"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("HTTP 200 OK: hello from the receiver"),
        "{stdout}"
    );
    let reqs = rx.requests();
    assert_all_verified(&reqs);
    assert_eq!(body(&reqs[0])["type"], "dev.rcfops.notify.test");
    let gone = p.rcfops(&["notify", "test", "ops"]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stdout).contains("HTTP 410 Gone"));
    let unknown = p.rcfops(&["notify", "test", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr)
        .contains("no sink is named \"nope\" (configured: ops)"));
}

#[test]
fn rejections_rollbacks_and_failed_runs_are_announced() {
    let work = tempfile::tempdir().unwrap();
    let out_file = work.path().join("events.jsonl");
    let p = Project::new(&format!(
        "\n[[notify.sinks]]\nname = \"script\"\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"cat >> {0}; echo >> {0}\"]\nevents = [\"version.rejected\", \"stage.rolled_back\", \"run.failed\"]\n",
        out_file.display()
    ));
    let _agent = p.start();
    p.v1_live();
    let c2 = p.commit_spec(|t| t.replace("seed = 42", "seed = 9"), "reseed");
    p.wait_commit_registered(&c2);
    p.approve_and_wait(2);
    p.tag_with(
        "reject/v2",
        &c2,
        "lead@bank.example",
        "drifts on weekends",
        None,
    );
    p.wait_status("staging back on v1", |s| {
        stage_version(s, "staging") == Some(1)
    });
    let bad = p.commit_spec(
        |t| t.replace("num_trees = 100", "num_trees = 5"),
        "too few trees",
    );
    let events = || -> Vec<Value> {
        std::fs::read_to_string(&out_file)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(60), || events().len() >= 3),
        "got {:?}; log:\n{}",
        events(),
        p.agent_stderr()
    );
    let got = events();
    let types: Vec<&str> = got
        .iter()
        .map(|e| e["data"]["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["version.rejected", "stage.rolled_back", "run.failed"]
    );
    assert_eq!(got[0]["data"]["version"], 2);
    assert_eq!(got[0]["data"]["actor"], "lead@bank.example");
    assert!(got[0]["data"]["detail"]
        .as_str()
        .unwrap()
        .contains("drifts on weekends"));
    assert_eq!(got[1]["data"]["stage"], "staging");
    assert_eq!(got[1]["data"]["version"], 1);
    assert_eq!(got[1]["data"]["audit_event"], "staging.rollback");
    assert_eq!(got[2]["data"]["commit"], bad.as_str());
    assert!(got[2]["data"]["detail"]
        .as_str()
        .unwrap()
        .contains("num_trees"));
    assert_eq!(got[2]["data"]["next"]["command"], "rcfops logs");
}
