//! The bad input catalogue (issue 5, docs/BAD_INPUT.md): malformed input of every kind a user
//! can hand rcfops — the agent's `config.toml`, `pipeline.toml`, the training data, approval
//! tags, approval files and HTTP request bodies. Each case asserts the exact message the user
//! sees (CLI stderr, the run's `error` in `rcfops status --json`, the refusal `reason` in the
//! registry, or the endpoint's JSON `Message`) and that nothing stored changed.
//!
//! One test per category; each iterates over its table, collects every broken case and fails
//! once at the end, so a single run reports all of them. Pipeline and data cases share one
//! project and run the pipeline in the foreground (`rcfops run --commit SHA`) on commits built
//! in memory on top of the seed commit (no branch moves); tag, file and HTTP cases share one
//! running agent per test.

mod common;

use rcfops::domain::Stage;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use git2::{Oid, Signature};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------

/// Collects broken cases so one run reports all of them.
struct Report {
    category: &'static str,
    cases: usize,
    broken: Vec<String>,
}

impl Report {
    fn new(category: &'static str) -> Report {
        Report {
            category,
            cases: 0,
            broken: Vec::new(),
        }
    }

    /// Records one case and the problems found with it (none: the case passed).
    fn case(&mut self, name: &str, problems: Vec<String>) {
        self.cases += 1;
        if !problems.is_empty() {
            self.broken
                .push(format!("[{name}]\n    {}", problems.join("\n    ")));
        }
    }

    fn finish(self, at_least: usize) {
        eprintln!(
            "{}: {} cases, {} broken",
            self.category,
            self.cases,
            self.broken.len()
        );
        assert!(
            self.cases >= at_least,
            "{}: only {} cases",
            self.category,
            self.cases
        );
        if !self.broken.is_empty() {
            panic!(
                "{}: {} of {} cases broken:\n{}",
                self.category,
                self.broken.len(),
                self.cases,
                self.broken.join("\n")
            );
        }
    }
}

/// Owned expectations from string literals.
fn ex(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// One problem per expected fragment missing from `got`.
fn missing(what: &str, got: &str, expected: &[String]) -> Vec<String> {
    expected
        .iter()
        .filter(|e| !got.contains(e.as_str()))
        .map(|e| format!("{what}: expected {e:?} in {got:?}"))
        .collect()
}

/// What the registry holds that bad input must never change: the versions (with approval
/// state, staging result and artifact), what each stage serves, the accepted decisions and
/// the artifact files.
#[derive(Debug, PartialEq, Clone)]
struct Stored {
    versions: Vec<(i64, String, String, Option<String>, String)>,
    staging: Option<i64>,
    production: Option<i64>,
    staging_target: Option<i64>,
    production_target: Option<i64>,
    accepted: Vec<String>,
    artifacts: Vec<String>,
}

fn stored(p: &Project) -> Stored {
    let reg = p.registry();
    let mut artifacts: Vec<String> = std::fs::read_dir(p.state.join("artifacts"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    artifacts.sort();
    Stored {
        versions: reg
            .versions()
            .unwrap()
            .into_iter()
            .map(|v| {
                (
                    v.version,
                    v.commit,
                    v.approval.to_string(),
                    v.staging_result.map(|r| r.to_string()),
                    v.artifact_sha256,
                )
            })
            .collect(),
        staging: reg.deployed(Stage::Staging).unwrap(),
        production: reg.deployed(Stage::Production).unwrap(),
        staging_target: reg.staging_target().unwrap(),
        production_target: reg.production_target().unwrap(),
        accepted: reg
            .approvals()
            .unwrap()
            .into_iter()
            .filter(|a| a.outcome == "accepted")
            .map(|a| a.source.to_string())
            .collect(),
        artifacts,
    }
}

fn unchanged(before: &Stored, after: &Stored) -> Vec<String> {
    if before == after {
        Vec::new()
    } else {
        vec![format!(
            "stored state changed:\n      before {before:?}\n      after  {after:?}"
        )]
    }
}

fn short(s: &str) -> &str {
    &s[..12]
}

// ---------------------------------------------------------------------------------------------
// config.toml
// ---------------------------------------------------------------------------------------------

/// Every file under `root` (recursively, but not top-level entries named `bad-*`, which are the
/// cases' own files): size, modification time and content digest.
fn tree_snapshot(root: &Path) -> BTreeMap<String, (u64, std::time::SystemTime, String)> {
    fn walk(
        dir: &Path,
        rel: &str,
        out: &mut BTreeMap<String, (u64, std::time::SystemTime, String)>,
    ) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if rel.is_empty() && name.starts_with("bad-") {
                continue;
            }
            let path = e.path();
            let key = format!("{rel}/{name}");
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let digest = if meta.is_file() {
                rcfops::artifacts::sha256_hex(&std::fs::read(&path).unwrap())
            } else {
                String::new()
            };
            out.insert(key.clone(), (meta.len(), meta.modified().unwrap(), digest));
            if meta.is_dir() {
                walk(&path, &key, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, "", &mut out);
    out
}

fn base_config(template: &Path) -> String {
    format!(
        r#"[repo]
path = "model-repo"
branch = "main"
template = "{}"

[state]
dir = "state"

[approvals]
dir = "state/approvals"

[endpoints.staging]
listen = "127.0.0.1:0"

[endpoints.production]
listen = "127.0.0.1:0"

[agent]
debounce_ms = 20
resync_ms = 300
"#,
        template.display()
    )
}

/// `text` with `from` replaced by `to`; panics if `from` is not there (a broken case table).
fn rep(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in the text");
    text.replacen(from, to, 1)
}

struct ConfigCase {
    name: &'static str,
    /// The config file's bytes (`None`: the file does not exist).
    text: Option<Vec<u8>>,
    args: &'static [&'static str],
    /// Fragments of stderr; `{f}` stands for the config file's path.
    expected: Vec<String>,
}

#[test]
fn config_toml_cases() {
    let p = Project::new("");
    // A registry with v1, so "nothing stored changed" is about real state.
    let out = p.rcfops(&["run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = base_config(&sample_repo());
    let b = |s: String| Some(s.into_bytes());
    // Line numbers in `base`: 3 branch, 4 template, 7 state dir, 10 approvals dir, 13 staging
    // listen, 16 production listen, 19 debounce_ms, 20 resync_ms.
    let cases = vec![
        ConfigCase {
            name: "unknown section",
            text: b(format!("{base}\n[watcher]\ninterval = 5\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:22:", "unknown field `watcher`"]),
        },
        ConfigCase {
            name: "unknown key in [repo] (typo)",
            text: b(rep(&base, "branch = \"main\"\n", "branch = \"main\"\nbrnach = \"dev\"\n")),
            args: &["status", "--json"],
            expected: ex(&[
                "{f}:4:1: unknown field `brnach`, expected one of `path`, `branch`, `template`",
            ]),
        },
        ConfigCase {
            name: "unknown key in [agent]",
            text: b(format!("{base}resync_secs = 3\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:21:1: unknown field `resync_secs`"]),
        },
        ConfigCase {
            name: "unknown key in [endpoints.staging]",
            text: b(rep(
                &base,
                "[endpoints.staging]\nlisten = \"127.0.0.1:0\"\n",
                "[endpoints.staging]\nlisten = \"127.0.0.1:0\"\nport = 8081\n",
            )),
            args: &["status", "--json"],
            expected: ex(&["{f}:14:1: unknown field `port`"]),
        },
        ConfigCase {
            name: "wrong type: number given as a string",
            text: b(rep(&base, "resync_ms = 300", "resync_ms = \"300\"")),
            args: &["status", "--json"],
            expected: ex(&["{f}:20:13: invalid type: string \"300\", expected u64"]),
        },
        ConfigCase {
            name: "wrong type: approvers as a string, not a list",
            text: b(rep(
                &base,
                "dir = \"state/approvals\"\n",
                "dir = \"state/approvals\"\napprovers = \"bob@bank.example\"\n",
            )),
            args: &["status", "--json"],
            expected: ex(&["{f}:11:13: invalid type: string \"bob@bank.example\", expected a sequence"]),
        },
        ConfigCase {
            name: "wrong type: boolean given as 1",
            text: b(format!("{base}run_every_commit = 1\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:21:20: invalid type: integer `1`, expected a boolean"]),
        },
        ConfigCase {
            name: "wrong type: negative duration",
            text: b(rep(&base, "debounce_ms = 20", "debounce_ms = -5")),
            args: &["status", "--json"],
            expected: ex(&["{f}:19:15: invalid value: integer `-5`, expected u64"]),
        },
        ConfigCase {
            name: "wrong type: latency budget as text",
            text: b(rep(
                &base,
                "[endpoints.production]\nlisten = \"127.0.0.1:0\"\n",
                "[endpoints.production]\nlisten = \"127.0.0.1:0\"\nlatency_budget_ms = \"fast\"\n",
            )),
            args: &["status", "--json"],
            expected: ex(&["{f}:17:21: invalid type: string \"fast\", expected u64"]),
        },
        ConfigCase {
            name: "bad address: host name instead of IP",
            text: b(rep(&base, "listen = \"127.0.0.1:0\"", "listen = \"localhost:8081\"")),
            args: &["status", "--json"],
            expected: ex(&[
                "{f}:13: `listen`: [endpoints.staging] listen = \"localhost:8081\" is not an address like \"127.0.0.1:8080\"",
            ]),
        },
        ConfigCase {
            name: "bad address: port out of range",
            text: b(rep(&base, "listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:99999\"")),
            args: &["status", "--json"],
            expected: ex(&[
                "{f}:13: `listen`: [endpoints.staging] listen = \"127.0.0.1:99999\" is not an address",
            ]),
        },
        ConfigCase {
            // The error must point at production's `listen` (line 16), not staging's.
            name: "bad address: production without a port",
            text: b(rep(
                &base,
                "[endpoints.production]\nlisten = \"127.0.0.1:0\"",
                "[endpoints.production]\nlisten = \"127.0.0.1\"",
            )),
            args: &["status", "--json"],
            expected: ex(&[
                "{f}:16: `listen`: [endpoints.production] listen = \"127.0.0.1\" is not an address",
            ]),
        },
        ConfigCase {
            name: "bad address: both stages on one port",
            text: b(base.replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:18080\"")),
            args: &["status", "--json"],
            expected: ex(&[
                "`listen`: staging and production both listen on 127.0.0.1:18080; give each stage its own address",
            ]),
        },
        ConfigCase {
            name: "approver is not an e-mail",
            text: b(rep(
                &base,
                "dir = \"state/approvals\"\n",
                "dir = \"state/approvals\"\napprovers = [\"bob\"]\n",
            )),
            args: &["status", "--json"],
            expected: ex(&[
                "{f}:11: `approvers`: \"bob\" is not an e-mail address (approvers are tagger e-mails)",
            ]),
        },
        ConfigCase {
            name: "require_signed without allowed_signers",
            text: b(rep(
                &base,
                "dir = \"state/approvals\"\n",
                "dir = \"state/approvals\"\nrequire_signed = true\n",
            )),
            args: &["status", "--json"],
            expected: ex(&[
                "{f}:11: `require_signed`: needs `allowed_signers = \"PATH\"` (git's allowed-signers file) in [approvals]",
            ]),
        },
        ConfigCase {
            name: "resync_ms = 0",
            text: b(rep(&base, "resync_ms = 300", "resync_ms = 0")),
            args: &["status", "--json"],
            expected: ex(&["{f}:20: `resync_ms`: must be at least 1"]),
        },
        ConfigCase {
            name: "staging_test_records = 0",
            text: b(format!("{base}staging_test_records = 0\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:21: `staging_test_records`: must be at least 1"]),
        },
        ConfigCase {
            name: "latency_budget_ms = 0",
            text: b(rep(
                &base,
                "[endpoints.staging]\nlisten = \"127.0.0.1:0\"\n",
                "[endpoints.staging]\nlisten = \"127.0.0.1:0\"\nlatency_budget_ms = 0\n",
            )),
            args: &["status", "--json"],
            expected: ex(&["{f}:14: `latency_budget_ms`: must be at least 1"]),
        },
        ConfigCase {
            name: "shadow_percent above 100",
            text: b(rep(
                &base,
                "[endpoints.staging]\nlisten = \"127.0.0.1:0\"\n",
                "[endpoints.staging]\nlisten = \"127.0.0.1:0\"\nshadow_percent = 150\n",
            )),
            args: &["status", "--json"],
            expected: ex(&["{f}:14: `shadow_percent`: 150 is out of range [0, 100]"]),
        },
        ConfigCase {
            name: "shadow_percent under [endpoints.production]",
            text: b(rep(
                &base,
                "[endpoints.production]\nlisten = \"127.0.0.1:0\"\n",
                "[endpoints.production]\nlisten = \"127.0.0.1:0\"\nshadow_percent = 10\n",
            )),
            args: &["status", "--json"],
            expected: ex(&["{f}:17: `shadow_percent`: belongs to [endpoints.staging]"]),
        },
        ConfigCase {
            name: "invalid branch name (a..b)",
            text: b(rep(&base, "branch = \"main\"", "branch = \"main..dev\"")),
            args: &["status", "--json"],
            expected: ex(&["{f}:3: `branch`: \"main..dev\" is not a valid branch name"]),
        },
        ConfigCase {
            name: "invalid branch name (space)",
            text: b(rep(&base, "branch = \"main\"", "branch = \"my branch\"")),
            args: &["init"],
            expected: ex(&["{f}:3: `branch`: \"my branch\" is not a valid branch name"]),
        },
        ConfigCase {
            name: "invalid branch name (leading dash)",
            text: b(rep(&base, "branch = \"main\"", "branch = \"-main\"")),
            args: &["status", "--json"],
            expected: ex(&["{f}:3: `branch`: \"-main\" is not a valid branch name"]),
        },
        ConfigCase {
            name: "empty branch name",
            text: b(rep(&base, "branch = \"main\"", "branch = \"\"")),
            args: &["status", "--json"],
            expected: ex(&["{f}:3: `branch`: \"\" is not a valid branch name"]),
        },
        ConfigCase {
            name: "TOML syntax error (unclosed table header)",
            text: b(rep(&base, "[state]", "[state")),
            args: &["status", "--json"],
            expected: ex(&["{f}:6:", "invalid table header"]),
        },
        ConfigCase {
            name: "TOML syntax error (unterminated string)",
            text: b(rep(&base, "dir = \"state\"", "dir = \"state")),
            args: &["status", "--json"],
            expected: ex(&["{f}:7:", "invalid basic string"]),
        },
        ConfigCase {
            name: "duplicate key",
            text: b(rep(&base, "branch = \"main\"\n", "branch = \"main\"\nbranch = \"dev\"\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:4:", "duplicate key `branch`"]),
        },
        ConfigCase {
            name: "config file is not UTF-8",
            text: Some(
                [&base.as_bytes()[..10], b"\xff\xfe", &base.as_bytes()[10..]].concat(),
            ),
            args: &["status", "--json"],
            expected: ex(&[
                "{f}: cannot read the configuration: stream did not contain valid UTF-8",
            ]),
        },
        ConfigCase {
            name: "config file does not exist",
            text: None,
            args: &["status", "--json"],
            expected: ex(&[
                "{f}: cannot read the configuration: No such file or directory",
                "(pass --config PATH to use another file)",
            ]),
        },
        ConfigCase {
            name: "template folder does not exist (init)",
            text: b(rep(
                &rep(&base, "path = \"model-repo\"", "path = \"new-repo\""),
                &format!("template = \"{}\"", sample_repo().display()),
                "template = \"no-such-template\"",
            )),
            args: &["init"],
            expected: ex(&[
                "no-such-template has no pipeline.toml; set [repo] template in config.toml to a model-build folder",
            ]),
        },
        ConfigCase {
            name: "template folder without pipeline.toml (init)",
            text: b(rep(
                &rep(&base, "path = \"model-repo\"", "path = \"new-repo\""),
                &format!("template = \"{}\"", sample_repo().display()),
                "template = \"state\"",
            )),
            args: &["init"],
            expected: ex(&["state has no pipeline.toml; set [repo] template"]),
        },
        ConfigCase {
            name: "repo folder does not exist (run)",
            text: b(rep(&base, "path = \"model-repo\"", "path = \"no-such-repo\"")),
            args: &["run"],
            expected: ex(&[
                "no-such-repo: not a git repository",
                "run `rcfops init` to create it from the template",
            ]),
        },
        ConfigCase {
            name: "state folder does not exist (status)",
            text: b(rep(&base, "dir = \"state\"", "dir = \"no-such-state\"")),
            args: &["status", "--json"],
            expected: ex(&[
                "no-such-state/registry.sqlite: start the agent first (`rcfops up`)",
            ]),
        },
        ConfigCase {
            name: "repo path is a file (init)",
            text: b(rep(&base, "path = \"model-repo\"", "path = \"bad-plain-file\"")),
            args: &["init"],
            expected: ex(&["cannot create", "bad-plain-file"]),
        },
    ];
    // [[notify.sinks]]: the table starts on line 22, its keys from line 23.
    let sink = |body: &str| b(format!("{base}\n[[notify.sinks]]\n{body}"));
    let hook =
        "kind = \"webhook\"\nurl = \"http://127.0.0.1:9/hooks\"\nsecret_file = \"whsec.txt\"\n";
    let notify_cases = vec![
        ConfigCase {
            name: "notify: unknown event type in a filter",
            text: sink(&format!("{hook}events = [\"version.pending\", \"version.pendng\"]\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:26: [[notify.sinks]] `events`: \"version.pendng\" is not a notification event type (expected one of: version.pending version.approved"]),
        },
        ConfigCase {
            name: "notify: secret file missing",
            text: sink(&rep(hook, "whsec.txt", "no-such-secret")),
            args: &["status", "--json"],
            expected: ex(&["{f}:25: [[notify.sinks]] `secret_file`: cannot read", "no-such-secret: No such file", "chmod 600"]),
        },
        ConfigCase {
            name: "notify: secret file unreadable (a folder)",
            text: sink(&rep(hook, "whsec.txt", "secret-dir")),
            args: &["status", "--json"],
            expected: ex(&["{f}:25: [[notify.sinks]] `secret_file`: cannot read", "secret-dir: Is a directory"]),
        },
        ConfigCase {
            name: "notify: secret without whsec_",
            text: sink(&rep(hook, "whsec.txt", "bad-secret.txt")),
            args: &["status", "--json"],
            expected: ex(&["{f}:25: [[notify.sinks]] `secret_file`: the secret does not start with `whsec_`"]),
        },
        ConfigCase {
            name: "notify: URL not http(s)",
            text: sink(&rep(hook, "http://127.0.0.1:9/hooks", "ftp://127.0.0.1/hooks")),
            args: &["status", "--json"],
            expected: ex(&["{f}:24: [[notify.sinks]] `url`: \"ftp://127.0.0.1/hooks\" is not an http(s) URL with a host"]),
        },
        ConfigCase {
            name: "notify: URL not a URL",
            text: sink(&rep(hook, "http://127.0.0.1:9/hooks", "hooks.example/x")),
            args: &["status", "--json"],
            expected: ex(&["{f}:24: [[notify.sinks]] `url`: \"hooks.example/x\" is not a URL"]),
        },
        ConfigCase {
            name: "notify: secret file inside the model repo (from a commit)",
            text: sink(&rep(hook, "whsec.txt", "model-repo/hook-secret")),
            args: &["status", "--json"],
            expected: ex(&["{f}:25: [[notify.sinks]] `secret_file`:", "is inside the model repo: a notification target or secret never comes from a commit's content"]),
        },
        ConfigCase {
            name: "notify: Slack URL in the configuration",
            text: sink("kind = \"slack\"\nurl = \"https://hooks.slack.com/services/T/B/x\"\n"),
            args: &["status", "--json"],
            expected: ex(&["{f}:24: [[notify.sinks]] `url`: a Slack webhook URL is a secret: put it in the file named by `secret_file`"]),
        },
        ConfigCase {
            name: "notify: Slack URL file inside the model repo (from a commit)",
            text: sink("kind = \"slack\"\nsecret_file = \"model-repo/slack-url\"\n"),
            args: &["status", "--json"],
            expected: ex(&["{f}:24: [[notify.sinks]] `secret_file`:", "is inside the model repo"]),
        },
        ConfigCase {
            name: "notify: Slack URL file holding no URL",
            text: sink("kind = \"slack\"\nsecret_file = \"whsec.txt\"\n"),
            args: &["status", "--json"],
            expected: ex(&["{f}:24: [[notify.sinks]] `secret_file`: the file's content is not a URL"]),
        },
        ConfigCase {
            name: "notify: command inside the model repo (from a commit)",
            text: sink("kind = \"command\"\ncommand = [\"model-repo/notify.sh\"]\n"),
            args: &["status", "--json"],
            expected: ex(&["{f}:24: [[notify.sinks]] `command`:", "is inside the model repo"]),
        },
        ConfigCase {
            name: "notify: command program missing",
            text: sink("kind = \"command\"\ncommand = [\"bin/no-such-notifier\", \"--x\"]\n"),
            args: &["status", "--json"],
            expected: ex(&["{f}:24: [[notify.sinks]] `command`:", "bin/no-such-notifier does not exist"]),
        },
        ConfigCase {
            name: "notify: unknown kind",
            text: sink("kind = \"email\"\n"),
            args: &["status", "--json"],
            expected: ex(&["{f}:23:", "\"email\" is not a sink kind (expected one of: webhook slack command)"]),
        },
        ConfigCase {
            name: "notify: unknown key",
            text: sink(&format!("{hook}headers = {{ x = \"y\" }}\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:", "unknown field `headers`"]),
        },
        ConfigCase {
            name: "notify: webhook without url",
            text: sink("kind = \"webhook\"\nsecret_file = \"whsec.txt\"\n"),
            args: &["status", "--json"],
            expected: ex(&["{f}:23: [[notify.sinks]] `url`: a webhook sink needs `url = \"https://...\"`"]),
        },
        ConfigCase {
            name: "notify: webhook without secret",
            text: sink("kind = \"webhook\"\nurl = \"http://127.0.0.1:9/hooks\"\n"),
            args: &["status", "--json"],
            expected: ex(&["{f}:23: [[notify.sinks]] `secret_file`: a webhook sink needs `secret_file = \"PATH\"`"]),
        },
        ConfigCase {
            name: "notify: two sinks with one name",
            text: sink(&format!("name = \"ops\"\n{hook}\n[[notify.sinks]]\nname = \"ops\"\n{hook}")),
            args: &["status", "--json"],
            expected: ex(&["{f}:29: [[notify.sinks]] `name`: two sinks are named \"ops\""]),
        },
        ConfigCase {
            name: "notify: zero attempts",
            text: sink(&format!("{hook}max_attempts = 0\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:26: [[notify.sinks]] `max_attempts`: must be at least 1"]),
        },
    ];
    // [endpoints.production.auth] at the end: the table on line 22, its keys from line 23.
    let auth = |body: &str| b(format!("{base}\n[endpoints.production.auth]\n{body}"));
    let sigv4 = "mode = \"sigv4\"\ncredentials_file = \"creds-ok\"\nregion = \"eu-west-1\"\n";
    let auth_cases = vec![
        ConfigCase {
            name: "auth: unknown mode",
            text: auth("mode = \"basic\"\n"),
            args: &["status", "--json"],
            expected: ex(&[
                "{f}:23: `mode`: \"basic\" is not an auth mode: use \"none\" or \"sigv4\"",
            ]),
        },
        ConfigCase {
            name: "auth: sigv4 without a credentials file",
            text: auth("mode = \"sigv4\"\nregion = \"eu-west-1\"\n"),
            args: &["status", "--json"],
            expected: ex(&["{f}:23: `mode`: mode = \"sigv4\" needs credentials_file = \"PATH\""]),
        },
        ConfigCase {
            name: "auth: sigv4 without a region",
            text: auth("mode = \"sigv4\"\ncredentials_file = \"creds-ok\"\n"),
            args: &["status", "--json"],
            expected: ex(&["{f}:23: `mode`: mode = \"sigv4\" needs region"]),
        },
        ConfigCase {
            name: "auth: credentials file missing",
            text: auth(&rep(sigv4, "creds-ok", "no-such-creds")),
            args: &["status", "--json"],
            expected: ex(&[
                "{f}:24: `credentials_file`: cannot read the production credentials file",
                "no-such-creds",
            ]),
        },
        ConfigCase {
            name: "auth: credentials file without a key",
            text: auth(&rep(sigv4, "creds-ok", "bad-creds-empty")),
            args: &["status", "--json"],
            expected: ex(&[
                "{f}:24: `credentials_file`:",
                "no profile with aws_access_key_id and aws_secret_access_key",
            ]),
        },
        ConfigCase {
            name: "auth: credentials profile with a secret but no key id",
            text: auth(&rep(sigv4, "creds-ok", "bad-creds-noid")),
            args: &["status", "--json"],
            expected: ex(&[
                "{f}:24: `credentials_file`:",
                "line 1: profile [default] has aws_secret_access_key but no aws_access_key_id",
            ]),
        },
        ConfigCase {
            name: "auth: bad region name",
            text: auth(&rep(sigv4, "eu-west-1", "EU West")),
            args: &["status", "--json"],
            expected: ex(&["{f}:25: `region`: \"EU West\" is not a region name"]),
        },
        ConfigCase {
            name: "auth: unknown key",
            text: auth(&format!("{sigv4}token = \"x\"\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:", "unknown field `token`"]),
        },
        ConfigCase {
            name: "auth: region without sigv4",
            text: auth("region = \"eu-west-1\"\n"),
            args: &["status", "--json"],
            expected: ex(&["{f}:23: `region`: applies only with mode = \"sigv4\""]),
        },
        ConfigCase {
            name: "auth: sigv4 and allow_unauthenticated",
            text: auth(&format!("{sigv4}allow_unauthenticated = true\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:26: `allow_unauthenticated`: contradicts mode = \"sigv4\""]),
        },
        ConfigCase {
            name: "auth: a network address without auth",
            text: b(rep(
                &base,
                "[endpoints.production]\nlisten = \"127.0.0.1:0\"",
                "[endpoints.production]\nlisten = \"0.0.0.0:0\"",
            )),
            args: &["status", "--json"],
            expected: ex(&[
                "{f}:16: `listen`: the production endpoint listens on 0.0.0.0:0",
                "allow_unauthenticated = true",
            ]),
        },
        ConfigCase {
            name: "endpoints: tls_cert without tls_key",
            text: b(rep(
                &base,
                "[endpoints.production]\n",
                "[endpoints.production]\ntls_cert = \"tls.crt\"\n",
            )),
            args: &["status", "--json"],
            expected: ex(&[
                "{f}:16: `tls_cert`: needs tls_key = \"PATH\" (the PEM private key) beside it",
            ]),
        },
        ConfigCase {
            name: "deploy: unknown target",
            text: b(format!("{base}\n[deploy.production]\ntarget = \"nomad\"\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:23: `target`: \"nomad\" is not a deploy target: use \"local\" or \"kubernetes\""]),
        },
        ConfigCase {
            name: "deploy: kubernetes without a url",
            text: b(format!("{base}\n[deploy.production]\ntarget = \"kubernetes\"\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:23: `target`: target = \"kubernetes\" needs url = \"http://...\""]),
        },
        ConfigCase {
            name: "deploy: kubernetes without [kubernetes]",
            text: b(format!("{base}\n[deploy.production]\ntarget = \"kubernetes\"\nurl = \"http://scoring.svc\"\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:23: `target`: a kubernetes target needs a [kubernetes] table"]),
        },
        ConfigCase {
            name: "kubernetes: no image",
            text: b(format!("{base}\n[deploy.production]\ntarget = \"kubernetes\"\nurl = \"http://scoring.svc\"\n\n[kubernetes]\nenv_repo = \"env\"\nnamespace = \"fraud\"\nartifact_store = \"store\"\nartifact_base_url = \"https://a.example\"\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}: `image`: [kubernetes] needs image = \"registry.example/rcfops:TAG\""]),
        },
        ConfigCase {
            name: "kubernetes: bad namespace",
            text: b(format!("{base}\n[deploy.production]\ntarget = \"kubernetes\"\nurl = \"http://scoring.svc\"\n\n[kubernetes]\nenv_repo = \"env\"\nimage = \"r/i:1\"\nnamespace = \"Fraud_Scoring\"\nartifact_store = \"store\"\nartifact_base_url = \"https://a.example\"\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:29: `namespace`: \"Fraud_Scoring\" is not a Kubernetes namespace name"]),
        },
        ConfigCase {
            name: "monitoring: unknown key",
            text: b(format!("{base}\n[monitoring]\ncapture_percent = 5\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:23:1: unknown field `capture_percent`"]),
        },
        ConfigCase {
            name: "monitoring: empty windows",
            text: b(format!("{base}\n[monitoring]\ncapture = true\nwindow_records = 0\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:24: `window_records`: must be at least 1"]),
        },
        ConfigCase {
            name: "monitoring: sampling beyond 100 %",
            text: b(format!("{base}\n[monitoring]\ncapture = true\n\n[monitoring.staging]\nsampling_percent = 150\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:26: `sampling_percent`: 150 is out of range [0, 100]"]),
        },
        ConfigCase {
            name: "monitoring: ALERT below WARN",
            text: b(format!("{base}\n[monitoring]\npsi_warn = 0.3\npsi_alert = 0.2\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:24: `psi_alert`: 0.2 is below psi_warn (0.3)"]),
        },
        ConfigCase {
            name: "monitoring: min window above the window",
            text: b(format!("{base}\n[monitoring]\nwindow_records = 50\nmin_window_records = 80\n")),
            args: &["status", "--json"],
            expected: ex(&["{f}:24: `min_window_records`: 80 is more than window_records (50)"]),
        },
        ConfigCase {
            name: "endpoints: bad metrics_listen",
            text: b(rep(
                &base,
                "[endpoints.production]\n",
                "[endpoints.production]\nmetrics_listen = \"port 9\"\n",
            )),
            args: &["status", "--json"],
            expected: ex(&["{f}:16: `metrics_listen`: \"port 9\" is not an address like"]),
        },
    ];
    let cases: Vec<ConfigCase> = cases
        .into_iter()
        .chain(notify_cases)
        .chain(auth_cases)
        .collect();
    std::fs::write(
        p.dir.path().join("creds-ok"),
        "[default]\naws_access_key_id = AKIDOK\naws_secret_access_key = ok-secret\n",
    )
    .unwrap();
    std::fs::write(p.dir.path().join("bad-creds-empty"), "# nothing\n").unwrap();
    std::fs::write(
        p.dir.path().join("bad-creds-noid"),
        "[default]\naws_secret_access_key = do-not-echo\n",
    )
    .unwrap();
    std::fs::write(
        p.dir.path().join("whsec.txt"),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
    )
    .unwrap();
    std::fs::write(p.dir.path().join("bad-secret.txt"), "hunter2\n").unwrap();
    std::fs::create_dir(p.dir.path().join("secret-dir")).unwrap();
    std::fs::write(p.dir.path().join("bad-plain-file"), "not a folder\n").unwrap();
    std::fs::create_dir(p.dir.path().join("bad-folder.toml")).unwrap();
    let mut report = Report::new("config.toml");
    let before = tree_snapshot(p.dir.path());
    for (i, case) in cases.iter().enumerate() {
        let file = p.dir.path().join(format!("bad-{i:02}.toml"));
        if let Some(text) = &case.text {
            std::fs::write(&file, text).unwrap();
        }
        let out = std::process::Command::new(BIN)
            .arg("--config")
            .arg(&file)
            .args(case.args)
            .env("RCFOPS_LOG", "info")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let expected: Vec<String> = case
            .expected
            .iter()
            .map(|e| e.replace("{f}", &file.display().to_string()))
            .collect();
        let mut problems = missing("stderr", &stderr, &expected);
        if out.status.code() != Some(2) {
            problems.push(format!("exit code {:?}, expected 2", out.status.code()));
        }
        if !out.stdout.is_empty() {
            problems.push(format!(
                "unexpected stdout {:?}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        let after = tree_snapshot(p.dir.path());
        if after != before {
            let changed: Vec<&String> = after
                .keys()
                .chain(before.keys())
                .filter(|k| after.get(*k) != before.get(*k))
                .collect();
            problems.push(format!("files changed: {changed:?}"));
        }
        report.case(case.name, problems);
    }
    // A folder given as the config file.
    let folder = p.dir.path().join("bad-folder.toml");
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&folder)
        .args(["status"])
        .output()
        .unwrap();
    let mut problems = missing(
        "stderr",
        &String::from_utf8_lossy(&out.stderr),
        &[format!(
            "{}: cannot read the configuration: Is a directory",
            folder.display()
        )],
    );
    if out.status.code() != Some(2) {
        problems.push(format!("exit code {:?}", out.status.code()));
    }
    if tree_snapshot(p.dir.path()) != before {
        problems.push("files changed".into());
    }
    report.case("config path is a folder", problems);
    report.finish(48);
}

// ---------------------------------------------------------------------------------------------
// pipeline.toml and data: foreground runs on commits built in memory
// ---------------------------------------------------------------------------------------------

/// A project with v1 registered and a way to run the pipeline on arbitrary commits.
struct Bench {
    p: Project,
    base: Oid,
}

enum Change {
    Put(Oid),
    Delete,
}

impl Bench {
    fn new() -> Bench {
        let p = Project::new("");
        let out = p.rcfops(&["run"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let base = Oid::from_str(&p.head()).unwrap();
        Bench { p, base }
    }

    fn blob(&self, bytes: &[u8]) -> Oid {
        self.p.repo().blob(bytes).unwrap()
    }

    /// A commit on top of the seed commit with `changes`, on no branch (the head never moves).
    fn commit(&self, message: &str, changes: &[(&str, Change)]) -> String {
        let repo = self.p.repo();
        let base = repo.find_commit(self.base).unwrap();
        let mut index = git2::Index::new().unwrap();
        index.read_tree(&base.tree().unwrap()).unwrap();
        for (path, change) in changes {
            match change {
                Change::Put(id) => {
                    let size = repo.odb().unwrap().read_header(*id).unwrap().0;
                    index
                        .add(&git2::IndexEntry {
                            ctime: git2::IndexTime::new(0, 0),
                            mtime: git2::IndexTime::new(0, 0),
                            dev: 0,
                            ino: 0,
                            mode: 0o100644,
                            uid: 0,
                            gid: 0,
                            file_size: size as u32,
                            id: *id,
                            flags: path.len().min(0xfff) as u16,
                            flags_extended: 0,
                            path: path.as_bytes().to_vec(),
                        })
                        .unwrap();
                }
                Change::Delete => index.remove_path(Path::new(path)).unwrap(),
            }
        }
        let tree = repo.find_tree(index.write_tree_to(&repo).unwrap()).unwrap();
        let sig = Signature::now("Dana Scientist", "dana@bank.example").unwrap();
        repo.commit(None, &sig, &sig, message, &tree, &[&base])
            .unwrap()
            .to_string()
    }

    fn commit_files(&self, message: &str, files: &[(&str, &[u8])]) -> String {
        let changes: Vec<(&str, Change)> = files
            .iter()
            .map(|(p, b)| (*p, Change::Put(self.blob(b))))
            .collect();
        self.commit(message, &changes)
    }

    /// Runs the pipeline on `commit` in the foreground: it must fail with every fragment of
    /// `expected` in the CLI's stderr and in the run's `error` in `status --json`, and leave
    /// the stored state as it was.
    fn expect_failure(&self, commit: &str, expected: &[String]) -> Vec<String> {
        let before = stored(&self.p);
        let out = self.p.rcfops(&["run", "--commit", commit]);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let mut problems = Vec::new();
        if out.status.code() != Some(1) {
            problems.push(format!(
                "exit code {:?}, expected 1; stdout {:?}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        let Some(line) = stderr
            .lines()
            .find(|l| l.starts_with("run ") && l.contains(" failed: "))
        else {
            problems.push(format!("no `run N failed:` line in stderr {stderr:?}"));
            return problems;
        };
        problems.extend(missing("stderr", line, expected));
        let run: i64 = line[4..].split(' ').next().unwrap().parse().unwrap();
        let status = self.p.status();
        match status["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["run"] == run)
        {
            Some(r) => {
                if r["status"] != "Failed" {
                    problems.push(format!("run {run} is {} in status", r["status"]));
                }
                problems.extend(missing(
                    "status --json error",
                    r["error"].as_str().unwrap_or(""),
                    expected,
                ));
            }
            None => problems.push(format!("run {run} not in status --json")),
        }
        problems.extend(unchanged(&before, &stored(&self.p)));
        problems
    }

    /// Runs the pipeline on `commit`: it must register exactly one new version from it,
    /// pending approval, and change nothing else.
    fn expect_version(&self, commit: &str) -> Vec<String> {
        let before = stored(&self.p);
        let out = self.p.rcfops(&["run", "--commit", commit]);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let mut problems = Vec::new();
        if out.status.code() != Some(0) || !stdout.contains("(PendingManualApproval)") {
            let stderr = String::from_utf8_lossy(&out.stderr);
            problems.push(format!(
                "expected a new version; exit {:?}, stdout {stdout:?}, stderr {:?}",
                out.status.code(),
                stderr.lines().last().unwrap_or("")
            ));
            return problems;
        }
        let after = stored(&self.p);
        let new: Vec<_> = after
            .versions
            .iter()
            .filter(|v| !before.versions.contains(v))
            .collect();
        if new.len() != 1 || new[0].1 != commit || new[0].2 != "PendingManualApproval" {
            problems.push(format!("new versions {new:?}"));
        }
        let mut expected = before.clone();
        expected.versions = after.versions.clone();
        expected.artifacts = after.artifacts.clone();
        problems.extend(unchanged(&expected, &after));
        // Artifacts are content-addressed: identical data (e.g. with a BOM or CRLF) trains the
        // identical model, which shares its file with the earlier version.
        if let Some(v) = new.first() {
            let file = format!("sha256-{}.rcfm", v.4);
            if !after.artifacts.contains(&file) {
                problems.push(format!("artifact {file} missing"));
            }
        }
        problems
    }
}

enum Outcome {
    Fails(Vec<String>),
    Registers,
}

#[test]
fn pipeline_toml_cases() {
    let bench = Bench::new();
    let good = std::fs::read_to_string(bench.p.repo_path.join("pipeline.toml")).unwrap();
    let spec = |from: &str, to: &str| rep(&good, from, to);
    let fails = |v: &[&str]| Outcome::Fails(ex(v));
    let features_block = "features = [\n  \"amount\",\n  \"hour\",\n  \"merchant_category\",\n  \"distance_from_home_km\",\n  \"minutes_since_last_txn\",\n  \"txns_last_24h\",\n  \"amount_to_avg_ratio\",\n  \"card_present\",\n]";
    // Line numbers in the sample spec: 6 name, 9 path, 10 label, 11 features, 21 exclude,
    // 24 scaling, 25 log_transform, 33 num_trees, 34 num_samples_per_tree, 35 seed,
    // 38 test_fraction, 45 min_roc_auc, 46 min_pr_auc.
    let cases: Vec<(&str, Option<String>, Outcome)> = vec![
        (
            "syntax error: unclosed table header",
            Some(spec("[data]", "[data")),
            fails(&["load: pipeline.toml:8:", "invalid table header"]),
        ),
        (
            "syntax error: unterminated string",
            Some(spec("name = \"card-fraud\"", "name = \"card-fraud")),
            fails(&["load: pipeline.toml:6:", "invalid basic string"]),
        ),
        (
            "syntax error: missing value",
            Some(spec("seed = 42", "seed =")),
            fails(&["load: pipeline.toml:35:7: invalid string"]),
        ),
        (
            "duplicate key",
            Some(spec("seed = 42", "seed = 42\nseed = 43")),
            fails(&["load: pipeline.toml:36:", "duplicate key `seed`"]),
        ),
        (
            "num_trees below the range (5)",
            Some(spec("num_trees = 100", "num_trees = 5")),
            fails(&["load: pipeline.toml:33: `num_trees`: hyperparameter `num_trees` must be an integer between 50 and 1000 (inclusive), but the given value is 5"]),
        ),
        (
            "num_trees zero",
            Some(spec("num_trees = 100", "num_trees = 0")),
            fails(&["load: pipeline.toml:33: `num_trees`: hyperparameter `num_trees` must be an integer between 50 and 1000 (inclusive), but the given value is 0"]),
        ),
        (
            "num_trees above the range (100000)",
            Some(spec("num_trees = 100", "num_trees = 100000")),
            fails(&["load: pipeline.toml:33: `num_trees`: hyperparameter `num_trees` must be an integer between 50 and 1000 (inclusive), but the given value is 100000"]),
        ),
        (
            "num_trees negative",
            Some(spec("num_trees = 100", "num_trees = -1")),
            fails(&["load: pipeline.toml:33:", "invalid value: integer `-1`, expected usize"]),
        ),
        (
            "num_trees as a string",
            Some(spec("num_trees = 100", "num_trees = \"100\"")),
            fails(&["load: pipeline.toml:33:", "invalid type: string \"100\", expected usize"]),
        ),
        (
            "num_samples_per_tree below the range (0)",
            Some(spec("num_samples_per_tree = 256", "num_samples_per_tree = 0")),
            fails(&["load: pipeline.toml:34: `num_samples_per_tree`: hyperparameter `num_samples_per_tree` must be an integer between 1 and 2048 (inclusive), but the given value is 0"]),
        ),
        (
            "num_samples_per_tree above the range (10^7)",
            Some(spec("num_samples_per_tree = 256", "num_samples_per_tree = 10000000")),
            fails(&["load: pipeline.toml:34: `num_samples_per_tree`: hyperparameter `num_samples_per_tree` must be an integer between 1 and 2048 (inclusive), but the given value is 10000000"]),
        ),
        (
            "seed negative",
            Some(spec("seed = 42", "seed = -1")),
            fails(&["load: pipeline.toml:35:", "invalid value: integer `-1`, expected u64"]),
        ),
        (
            "test_fraction = 1",
            Some(spec("test_fraction = 0.3", "test_fraction = 1.0")),
            fails(&["load: pipeline.toml:38: `test_fraction`: 1 is out of range: use a share in [0, 1), e.g. 0.3"]),
        ),
        (
            "test_fraction negative",
            Some(spec("test_fraction = 0.3", "test_fraction = -0.1")),
            fails(&["load: pipeline.toml:38: `test_fraction`: -0.1 is out of range"]),
        ),
        (
            "test_fraction NaN",
            Some(spec("test_fraction = 0.3", "test_fraction = nan")),
            fails(&["load: pipeline.toml:38: `test_fraction`: NaN is out of range"]),
        ),
        (
            "gate min_roc_auc above 1",
            Some(spec("min_roc_auc = 0.85", "min_roc_auc = 1.5")),
            fails(&["load: pipeline.toml:45: `min_roc_auc`: 1.5 is out of range [0, 1]"]),
        ),
        (
            "gate min_pr_auc negative",
            Some(spec("min_pr_auc = 0.15", "min_pr_auc = -0.1")),
            fails(&["load: pipeline.toml:46: `min_pr_auc`: -0.1 is out of range [0, 1]"]),
        ),
        (
            "gate min_recall NaN",
            Some(format!("{good}min_recall = nan\n")),
            fails(&["load: pipeline.toml:47: `min_recall`: NaN is out of range [0, 1]"]),
        ),
        (
            "gate min_precision as an integer 2",
            Some(format!("{good}min_precision = 2\n")),
            fails(&["load: pipeline.toml:47: `min_precision`: 2 is out of range [0, 1]"]),
        ),
        (
            "gate vs_production delta out of range",
            Some(format!("{good}vs_production = {{ min_pr_auc_delta = 2 }}\n")),
            fails(&["load: pipeline.toml:47: `vs_production`: min_pr_auc_delta = 2 is out of range [-1, 1]"]),
        ),
        (
            "gate vs_production unknown key",
            Some(format!("{good}vs_production = {{ min_auc_delta = 0.1 }}\n")),
            fails(&["load: pipeline.toml:47:", "unknown field `min_auc_delta`, expected `min_roc_auc_delta` or `min_pr_auc_delta`"]),
        ),
        (
            "gate out of reach (min_roc_auc = 0.9999)",
            Some(spec("min_roc_auc = 0.85", "min_roc_auc = 0.9999")),
            fails(&["gate: gate failed: roc_auc ", " < 0.9999 (thresholds from pipeline.toml [gate])"]),
        ),
        (
            "unknown key in [model] (typo num_tree)",
            Some(spec("num_trees = 100", "num_tree = 100")),
            fails(&["load: pipeline.toml:33:1: unknown field `num_tree`, expected one of `num_trees`, `num_samples_per_tree`, `seed`"]),
        ),
        (
            "unknown section",
            Some(format!("{good}\n[deploy]\ninstances = 2\n")),
            fails(&["load: pipeline.toml:48:", "unknown field `deploy`"]),
        ),
        (
            "a notification sink in a commit",
            Some(format!("{good}\n[[notify.sinks]]\nkind = \"webhook\"\nurl = \"http://collector.example/\"\n")),
            fails(&["load: pipeline.toml:48: [notify]: notification sinks are set in the agent's config.toml, never by a commit"]),
        ),
        (
            "unknown key in [gate]",
            Some(format!("{good}min_f1 = 0.5\n")),
            fails(&["load: pipeline.toml:47:1: unknown field `min_f1`"]),
        ),
        (
            "missing [data] section",
            Some(good.replace("[data]", "[dataset]")),
            fails(&["load: pipeline.toml", "unknown field `dataset`"]),
        ),
        (
            "missing label key",
            Some(spec("label = \"is_fraud\"", "")),
            fails(&["load: pipeline.toml", "missing field `label`"]),
        ),
        (
            "empty label",
            Some(spec("label = \"is_fraud\"", "label = \"\"")),
            fails(&["load: pipeline.toml:10: `label`: the label column name is empty"]),
        ),
        (
            "empty data path",
            Some(spec("path = \"data/transactions.csv\"", "path = \"\"")),
            fails(&["load: pipeline.toml:9: `path`: the data path is empty"]),
        ),
        (
            "data file not in the commit",
            Some(spec("data/transactions.csv", "data/missing.csv")),
            fails(&["load: data file \"data/missing.csv\" (from pipeline.toml [data] path) is not in commit"]),
        ),
        (
            "data path is a folder",
            Some(spec("path = \"data/transactions.csv\"", "path = \"data\"")),
            fails(&["load: data in commit ", " is not a file"]),
        ),
        (
            "data path outside the repo (../)",
            Some(spec("data/transactions.csv", "../state/registry.sqlite")),
            fails(&["load: repo path `../state/registry.sqlite` should not start with `..`"]),
        ),
        (
            "absolute data path",
            Some(spec("data/transactions.csv", "/etc/passwd")),
            fails(&["load: repo path `/etc/passwd` should be relative"]),
        ),
        (
            "feature column not in the data",
            Some(spec("\"hour\"", "\"hour_of_day\"")),
            fails(&["validate: data/transactions.csv: feature column \"hour_of_day\" (from pipeline.toml) is not in the header (columns: transaction_id, amount,"]),
        ),
        (
            "label column not in the data",
            Some(spec("label = \"is_fraud\"", "label = \"fraud\"")),
            fails(&["validate: data/transactions.csv: label column \"fraud\" is not in the header"]),
        ),
        (
            "label column not binary",
            Some(spec("label = \"is_fraud\"", "label = \"txns_last_24h\"").replace("  \"txns_last_24h\",\n", "")),
            fails(&["validate: data/transactions.csv: line 2, column \"txns_last_24h\": label must be 0 or 1, found 4"]),
        ),
        (
            "label listed as a feature",
            Some(spec("  \"card_present\",\n", "  \"card_present\",\n  \"is_fraud\",\n")),
            fails(&["load: pipeline.toml:11: `features`: the label column \"is_fraud\" cannot be a feature"]),
        ),
        (
            "duplicate feature",
            Some(spec("  \"card_present\",\n", "  \"card_present\",\n  \"amount\",\n")),
            fails(&["load: pipeline.toml:11: `features`: column \"amount\" is listed twice"]),
        ),
        (
            "empty feature list",
            Some(spec(features_block, "features = []")),
            fails(&["load: pipeline.toml:11: `features`: the feature list is empty; list columns or remove the key to use all"]),
        ),
        (
            "features as a string",
            Some(spec(features_block, "features = \"amount\"")),
            fails(&["load: pipeline.toml:11:", "invalid type: string \"amount\", expected a sequence"]),
        ),
        (
            "excluded column not in the data",
            Some(spec("exclude = [\"transaction_id\"]", "exclude = [\"txn_id\"]")),
            fails(&["validate: data/transactions.csv: excluded column \"txn_id\" is not in the header"]),
        ),
        (
            "log_transform names a non-feature",
            Some(spec("log_transform = [", "log_transform = [\n  \"amout\",")),
            fails(&["train: pipeline.toml: `log_transform` names \"amout\", which is not a feature column"]),
        ),
        (
            "unknown scaling",
            Some(spec("scaling = \"robust\"", "scaling = \"minmax\"")),
            fails(&["load: pipeline.toml:24:", "unknown variant `minmax`, expected one of `robust`"]),
        ),
        (
            "project name with spaces",
            Some(spec("name = \"card-fraud\"", "name = \"Card Fraud!\"")),
            fails(&["load: pipeline.toml:6: `name`: project name \"Card Fraud!\" must be 1-50 characters of letters, digits and '-' (it names the endpoints)"]),
        ),
        (
            "max_bytes below the data size",
            Some(spec("label = \"is_fraud\"", "label = \"is_fraud\"\nmax_bytes = 1000")),
            fails(&["load: data file \"data/transactions.csv\" is ", " bytes, which is larger than the limit of 1000 bytes ([data] max_bytes in pipeline.toml)"]),
        ),
        (
            "max_bytes as text",
            Some(spec("label = \"is_fraud\"", "label = \"is_fraud\"\nmax_bytes = \"100MB\"")),
            fails(&["load: pipeline.toml:11:", "invalid type: string \"100MB\", expected u64"]),
        ),
        (
            "pipeline.toml empty",
            Some(String::new()),
            fails(&["load: pipeline.toml", "missing field `data`"]),
        ),
        (
            "pipeline.toml not in the commit",
            None,
            fails(&["load: pipeline.toml is not in commit "]),
        ),
    ];
    let mut report = Report::new("pipeline.toml");
    for (name, text, outcome) in cases {
        let change = match &text {
            Some(t) => Change::Put(bench.blob(t.as_bytes())),
            None => Change::Delete,
        };
        let c = bench.commit(name, &[("pipeline.toml", change)]);
        let problems = match outcome {
            Outcome::Fails(e) => bench.expect_failure(&c, &e),
            Outcome::Registers => bench.expect_version(&c),
        };
        report.case(name, problems);
    }
    // Not UTF-8 (a Latin-1 comment).
    let mut bytes = b"# caf\xe9\n".to_vec();
    bytes.extend_from_slice(good.as_bytes());
    let c = bench.commit_files("latin-1 spec", &[("pipeline.toml", &bytes)]);
    report.case(
        "pipeline.toml not UTF-8",
        bench.expect_failure(&c, &ex(&["load: pipeline.toml is not valid UTF-8"])),
    );
    // pipeline.toml is a folder.
    let c = bench.commit_files("spec folder", &[("pipeline.toml/x", b"x")]);
    report.case(
        "pipeline.toml is a folder",
        bench.expect_failure(
            &c,
            &ex(&["load: pipeline.toml in commit ", " is not a file"]),
        ),
    );
    report.finish(40);
}

#[test]
fn data_cases() {
    let bench = Bench::new();
    let good = std::fs::read_to_string(bench.p.repo_path.join("data/transactions.csv")).unwrap();
    let mut lines = good.lines();
    let header = lines.next().unwrap().to_string();
    let rows: Vec<String> = lines.map(str::to_string).collect();
    let columns: Vec<&str> = header.split(',').collect();
    let col = |name: &str| columns.iter().position(|c| *c == name).unwrap();
    let csv = |header: &str, rows: &[String]| -> Vec<u8> {
        let mut s = String::with_capacity(good.len() * 2);
        s.push_str(header);
        s.push('\n');
        for r in rows {
            s.push_str(r);
            s.push('\n');
        }
        s.into_bytes()
    };
    // `rows` with cell (`row`, `column`) set to `value`.
    let set = |rows: &[String], row: usize, column: &str, value: &str| -> Vec<String> {
        let mut out = rows.to_vec();
        let mut cells: Vec<String> = out[row].split(',').map(str::to_string).collect();
        cells[col(column)] = value.to_string();
        out[row] = cells.join(",");
        out
    };
    let with_cell =
        |row: usize, column: &str, value: &str| csv(&header, &set(&rows, row, column, value));
    let fails = |v: &[&str]| Outcome::Fails(ex(v));
    let features = [
        "amount",
        "hour",
        "merchant_category",
        "distance_from_home_km",
        "minutes_since_last_txn",
        "txns_last_24h",
        "amount_to_avg_ratio",
        "card_present",
    ];

    let cases: Vec<(&str, Vec<u8>, Outcome)> = vec![
        (
            "empty file",
            Vec::new(),
            fails(&["validate: data/transactions.csv: the file is empty (expected a header line and data rows)"]),
        ),
        (
            "only blank lines",
            b"\n  \n\r\n".to_vec(),
            fails(&["validate: data/transactions.csv: the file is empty"]),
        ),
        (
            "header only",
            format!("{header}\n").into_bytes(),
            fails(&["validate: data/transactions.csv: no data rows after the header"]),
        ),
        (
            "header and blank lines",
            format!("{header}\n\n\n").into_bytes(),
            fails(&["validate: data/transactions.csv: no data rows after the header"]),
        ),
        (
            "ragged row: a field short",
            csv(&header, &{
                let mut r = rows.clone();
                r[1] = r[1].rsplit_once(',').unwrap().0.to_string();
                r
            }),
            fails(&["validate: data/transactions.csv: line 3: expected 10 fields like the header, found 9"]),
        ),
        (
            "ragged row: trailing comma",
            csv(&header, &{
                let mut r = rows.clone();
                r[4].push(',');
                r
            }),
            fails(&["validate: data/transactions.csv: line 6: expected 10 fields like the header, found 11"]),
        ),
        (
            "non-numeric value",
            with_cell(0, "amount", "abc"),
            fails(&["validate: data/transactions.csv: line 2, column \"amount\": \"abc\" is not a number"]),
        ),
        (
            "hexadecimal value",
            with_cell(9, "merchant_category", "0x1F"),
            fails(&["validate: data/transactions.csv: line 11, column \"merchant_category\": \"0x1F\" is not a number"]),
        ),
        (
            "quoted number with a thousands separator",
            with_cell(2, "amount", "\"1,234.50\""),
            fails(&["validate: data/transactions.csv: line 4, column \"amount\": \"1,234.50\" is not a number"]),
        ),
        (
            "empty cell",
            with_cell(3, "hour", ""),
            fails(&["validate: data/transactions.csv: line 5, column \"hour\": empty value (missing values are not allowed)"]),
        ),
        (
            "NaN",
            with_cell(0, "distance_from_home_km", "NaN"),
            fails(&["validate: data/transactions.csv: line 2, column \"distance_from_home_km\": \"NaN\" is not a finite number"]),
        ),
        (
            "inf",
            with_cell(1, "amount", "inf"),
            fails(&["validate: data/transactions.csv: line 3, column \"amount\": \"inf\" is not a finite number"]),
        ),
        (
            "-infinity",
            with_cell(1, "amount_to_avg_ratio", "-infinity"),
            fails(&["validate: data/transactions.csv: line 3, column \"amount_to_avg_ratio\": \"-infinity\" is not a finite number"]),
        ),
        (
            "1e309 overflows to infinity",
            with_cell(7, "amount", "1e309"),
            fails(&["validate: data/transactions.csv: line 9, column \"amount\": \"1e309\" is not a finite number"]),
        ),
        (
            "non-UTF-8 byte in a value",
            {
                let mut b = csv(&header, &set(&rows, 0, "amount", "12X5"));
                let at = header.len() + 1 + rows[0].find(',').unwrap() + 3;
                assert_eq!(b[at], b'X');
                b[at] = 0xff;
                b
            },
            fails(&["validate: data/transactions.csv: line 2, column \"amount\": the value is not valid UTF-8"]),
        ),
        (
            "non-UTF-8 header (Latin-1 name)",
            {
                let mut b = b"transaction_id,montant_r\xe9el".to_vec();
                b.extend_from_slice(&csv(&header, &rows)[header.find(",hour").unwrap()..]);
                b
            },
            fails(&["validate: data/transactions.csv: line 1, column 2: the header is not valid UTF-8"]),
        ),
        (
            "UTF-16 file",
            {
                let mut b = vec![0xff, 0xfe];
                for u in String::from_utf8(csv(&header, &rows[..50])).unwrap().encode_utf16() {
                    b.extend_from_slice(&u.to_le_bytes());
                }
                b
            },
            fails(&["validate: data/transactions.csv: line 1, column 1: the header is not valid UTF-8"]),
        ),
        (
            "duplicate header name",
            csv(&header.replace(",hour,", ",amount,"), &rows),
            fails(&["validate: data/transactions.csv: line 1: column \"amount\" appears twice in the header"]),
        ),
        (
            "empty header cell",
            csv(&header.replace(",hour,", ",,"), &rows),
            fails(&["validate: data/transactions.csv: line 1, column 3: empty column name"]),
        ),
        (
            "semicolon-separated file",
            csv(&header.replace(',', ";"), &rows.iter().map(|r| r.replace(',', ";")).collect::<Vec<_>>()),
            fails(&["validate: data/transactions.csv: line 1: the header is a single column \"transaction_id;amount;", "; the file must be comma-separated (it looks separated by ';')"]),
        ),
        (
            "label value 2",
            with_cell(3, "is_fraud", "2"),
            fails(&["validate: data/transactions.csv: line 5, column \"is_fraud\": label must be 0 or 1, found 2"]),
        ),
        (
            "label value 0.5",
            with_cell(0, "is_fraud", "0.5"),
            fails(&["validate: data/transactions.csv: line 2, column \"is_fraud\": label must be 0 or 1, found 0.5"]),
        ),
        (
            "no fraud rows (label all 0)",
            csv(&header, &rows.iter().filter(|r| r.ends_with(",0")).cloned().collect::<Vec<_>>()),
            fails(&["train: the evaluation split has 0 anomalies among ", " rows; the label column needs both 0 and 1 rows to measure the model"]),
        ),
        (
            "a single row",
            csv(&header, &rows[..1]),
            fails(&["train: the evaluation split has 0 anomalies among 0 rows; the label column needs both 0 and 1 rows"]),
        ),
        (
            "unterminated quote",
            with_cell(5, "hour", "\"12"),
            fails(&["validate: data/transactions.csv: line 7, column \"hour\": a quoted value runs over several lines (is a closing quote missing?)"]),
        ),
        (
            "every feature constant",
            csv(&header, &{
                let idx: Vec<usize> = features.iter().map(|f| col(f)).collect();
                rows.iter()
                    .map(|row| {
                        let mut cells: Vec<&str> = row.split(',').collect();
                        for &c in &idx {
                            cells[c] = "1";
                        }
                        cells.join(",")
                    })
                    .collect::<Vec<_>>()
            }),
            fails(&["gate: gate failed: roc_auc 0.5000 < 0.85, pr_auc "]),
        ),
        (
            "one constant column (card_present all 1) works",
            csv(&header, &{
                let c = col("card_present");
                rows.iter()
                    .map(|row| {
                        let mut cells: Vec<&str> = row.split(',').collect();
                        cells[c] = "1";
                        cells.join(",")
                    })
                    .collect::<Vec<_>>()
            }),
            Outcome::Registers,
        ),
        (
            "duplicate rows (every row twice) work",
            csv(&header, &rows.iter().flat_map(|r| [r.clone(), r.clone()]).collect::<Vec<_>>()),
            Outcome::Registers,
        ),
        (
            "huge values (1e308 in a log-transformed column, 1e30 in a scaled one) work",
            csv(&header, &{
                let mut r = rows.clone();
                for i in [0, 100, 200, 300, 400] {
                    r = set(&r, i, "amount", "1e308");
                    r = set(&r, i, "minutes_since_last_txn", "-1e308");
                    r = set(&r, i, "hour", "1e30");
                }
                r
            }),
            Outcome::Registers,
        ),
        (
            // The model computes in single precision: 1e308 in a column that is only scaled
            // cannot be represented. The error must name the file's line and column and the
            // value, like every other data error.
            "1e308 in a scaled column (beyond single precision)",
            with_cell(4, "hour", "1e308"),
            fails(&["data/transactions.csv: line 6, column \"hour\"", "1e308"]),
        ),
        (
            "UTF-8 byte-order mark works",
            {
                let mut b = "\u{feff}".as_bytes().to_vec();
                b.extend_from_slice(&csv(&header, &rows));
                b
            },
            Outcome::Registers,
        ),
        (
            "CRLF line endings work",
            good.replace('\n', "\r\n").into_bytes(),
            Outcome::Registers,
        ),
    ];

    let mut report = Report::new("data");
    for (name, bytes, outcome) in cases {
        let c = bench.commit_files(name, &[("data/transactions.csv", &bytes)]);
        let problems = match outcome {
            Outcome::Fails(e) => bench.expect_failure(&c, &e),
            Outcome::Registers => bench.expect_version(&c),
        };
        report.case(name, problems);
    }

    // A 200 MB data file: refused from its size (the object header), never loaded. The blob is
    // a header plus one row repeated, streamed into git so the test never holds it in memory.
    let started = Instant::now();
    let repo = bench.p.repo();
    let mut w = repo.blob_writer(None).unwrap();
    w.write_all(format!("{header}\n").as_bytes()).unwrap();
    let chunk: String = rows[..1000].iter().map(|r| format!("{r}\n")).collect();
    let mut size = header.len() as u64 + 1;
    while size < 200_000_000 {
        w.write_all(chunk.as_bytes()).unwrap();
        size += chunk.len() as u64;
    }
    let big = w.commit().unwrap();
    drop(repo);
    let c = bench.commit(
        "200 MB data",
        &[("data/transactions.csv", Change::Put(big))],
    );
    let mut problems = bench.expect_failure(
        &c,
        &[format!(
            "load: data file \"data/transactions.csv\" is {size} bytes, which is larger than the limit of 104857600 bytes ([data] max_bytes in pipeline.toml)"
        )],
    );
    if started.elapsed() > Duration::from_secs(60) {
        problems.push(format!("took {:?}", started.elapsed()));
    }
    report.case("a 200 MB file", problems);
    report.finish(30);
}

// ---------------------------------------------------------------------------------------------
// Approval tags and files: one running agent each
// ---------------------------------------------------------------------------------------------

/// Waits for the agent's decision on exactly `source`: (outcome, reason).
fn decision(p: &Project, source: &str) -> Option<(String, String)> {
    let reg = p.registry();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(a) = reg
            .approvals()
            .unwrap()
            .into_iter()
            .find(|a| a.source.to_string() == source)
        {
            return Some((a.outcome.to_string(), a.reason.unwrap_or_default()));
        }
        std::thread::sleep(Duration::from_millis(40));
    }
    None
}

/// Waits for a decision on the source starting with `prefix` (file sources end in a digest).
fn decision_prefix(p: &Project, prefix: &str) -> Option<(String, String, String)> {
    let reg = p.registry();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(a) = reg
            .approvals()
            .unwrap()
            .into_iter()
            .find(|a| a.source.to_string().starts_with(prefix))
        {
            return Some((
                a.source.to_string(),
                a.outcome.to_string(),
                a.reason.unwrap_or_default(),
            ));
        }
        std::thread::sleep(Duration::from_millis(40));
    }
    None
}

/// Checks a refusal: outcome `refused`, every fragment in the reason, nothing stored changed.
fn check_refusal(
    p: &Project,
    before: &Stored,
    got: Option<(String, String)>,
    expected: &[String],
) -> Vec<String> {
    let mut problems = Vec::new();
    match got {
        None => problems.push("no decision within 20 s".into()),
        Some((outcome, reason)) => {
            if outcome != "refused" {
                problems.push(format!("outcome {outcome}, expected refused ({reason})"));
            }
            problems.extend(missing("reason", &reason, expected));
        }
    }
    problems.extend(unchanged(before, &stored(p)));
    problems
}

/// Writes a raw annotated tag object (any tagger line, or none) and its ref.
fn raw_tag(p: &Project, name: &str, target: &str, tagger: Option<(&str, i64)>) -> String {
    let mut raw = format!("object {target}\ntype commit\ntag {name}\n");
    if let Some((email, ts)) = tagger {
        raw.push_str(&format!("tagger Approver <{email}> {ts} +0000\n"));
    }
    raw.push_str("\napproved in review\n");
    let repo = p.repo();
    let oid = repo
        .odb()
        .unwrap()
        .write(git2::ObjectType::Tag, raw.as_bytes())
        .unwrap();
    repo.reference(&format!("refs/tags/{name}"), oid, false, "bad input")
        .unwrap();
    oid.to_string()
}

fn annotated_on(p: &Project, name: &str, oid: Oid) -> String {
    let repo = p.repo();
    let obj = repo.find_object(oid, None).unwrap();
    let sig = Signature::now("Approver", "dana@bank.example").unwrap();
    repo.tag(name, &obj, &sig, "approved in review", false)
        .unwrap()
        .to_string()
}

/// An agent with v1 (seed commit) and v2 (a second commit) registered, both pending.
fn two_versions() -> (Project, Agent, String, String) {
    let p = Project::new("");
    let agent = p.start();
    p.wait_version(1);
    p.commit(&[("NOTES.md", b"second version\n")], "second version");
    p.wait_version(2);
    let v1 = p.version_commit(1);
    let v2 = p.version_commit(2);
    (p, agent, v1, v2)
}

/// How a tag case makes its tag.
enum Make<'a> {
    Lightweight(&'a str, &'a str),
    /// Name, target commit, tagger e-mail.
    Annotated(&'a str, &'a str, &'a str),
    /// An annotated tag on any object (a tree, a blob).
    On(&'a str, Oid),
    /// A tag object written by hand: tagger (e-mail, time) or none.
    Raw(&'a str, &'a str, Option<(&'a str, i64)>),
}

/// One row of the tag table: the tag to make and what the refusal must say.
struct TagCase<'a> {
    name: String,
    make: Make<'a>,
    expected: Vec<String>,
}

impl<'a> TagCase<'a> {
    fn new(name: &str, make: Make<'a>, expected: &[&str]) -> TagCase<'a> {
        TagCase {
            name: name.to_string(),
            make,
            expected: ex(expected),
        }
    }
}

/// Makes each row's tag, checks that it is refused with its words and that nothing stored
/// changed, then deletes the tag so the name can be reused.
fn run_tag_cases(p: &Project, report: &mut Report, cases: Vec<TagCase>) {
    let before = stored(p);
    for case in cases {
        let (name, source) = match case.make {
            Make::Lightweight(name, target) => {
                p.lightweight_tag(name, target);
                (name, format!("tag:{name}@{target}"))
            }
            Make::Annotated(name, target, email) => {
                (name, format!("tag:{name}@{}", p.tag(name, target, email)))
            }
            Make::On(name, oid) => (name, format!("tag:{name}@{}", annotated_on(p, name, oid))),
            Make::Raw(name, target, tagger) => (
                name,
                format!("tag:{name}@{}", raw_tag(p, name, target, tagger)),
            ),
        };
        let got = decision(p, &source);
        report.case(&case.name, check_refusal(p, &before, got, &case.expected));
        p.delete_tag(name);
    }
}

#[test]
fn approval_tag_cases() {
    let (p, _agent, v1, v2) = two_versions();
    let mut report = Report::new("tags");
    let tagname_hint = |n: &str, a: &str| {
        format!("tag {n} ignored: the name must be {a}/vN with N a version number, e.g. {a}/v1")
    };

    // Refused tags; each is deleted afterwards so the name can be reused.
    let tree = p
        .repo()
        .find_commit(Oid::from_str(&v1).unwrap())
        .unwrap()
        .tree_id();
    let blob = p.repo().blob(b"not a commit\n").unwrap();
    let malformed = [
        ("approve/v0", "approve"),
        ("approve/v01", "approve"),
        ("approve/1", "approve"),
        ("approve/vx", "approve"),
        ("approve/V1", "approve"),
        ("approve/v-1", "approve"),
        ("approve/v1.0", "approve"),
        ("approve/v1000000000000", "approve"),
        ("promote/v1/extra", "promote"),
        ("reject/version1", "reject"),
    ];
    let mut pending: Vec<TagCase> = vec![TagCase::new(
        "lightweight tag",
        Make::Lightweight("approve/v1", &v1),
        &["lightweight tag approve/v1 ignored: approval tags must be annotated (git tag -a approve/v1 -m \"...\") so they carry the approver and the time"],
    )];
    for (name, action) in malformed {
        let hint = tagname_hint(name, action);
        pending.push(TagCase {
            name: format!("malformed name {name}"),
            make: Make::Annotated(name, &v1, "dana@bank.example"),
            expected: vec![hint],
        });
    }
    let wrong_commit = format!(
        "tag approve/v1 refused: it points at {} but v1 was built from commit {}",
        short(&v2),
        short(&v1)
    );
    pending.extend([
        TagCase::new(
            "unknown version (approve/v9)",
            Make::Annotated("approve/v9", &v1, "dana@bank.example"),
            &["tag approve/v9 refused: there is no version v9"],
        ),
        TagCase::new(
            "unknown version (reject/v7)",
            Make::Annotated("reject/v7", &v1, "dana@bank.example"),
            &["tag reject/v7 refused: there is no version v7"],
        ),
        TagCase::new(
            "wrong commit",
            Make::Annotated("approve/v1", &v2, "dana@bank.example"),
            &[&wrong_commit],
        ),
        TagCase::new(
            "tag on a tree, not a commit",
            Make::On("approve/v1", tree),
            &["tag approve/v1 does not point at a commit"],
        ),
        TagCase::new(
            "tag on a blob, not a commit",
            Make::On("approve/v2", blob),
            &["tag approve/v2 does not point at a commit"],
        ),
        TagCase::new(
            "annotated tag without a tagger",
            Make::Raw("approve/v1", &v1, None),
            &["tag approve/v1", "tagger"],
        ),
        TagCase::new(
            "backdated tag (tagger time 2001)",
            Make::Raw("approve/v1", &v1, Some(("dana@bank.example", 1_000_000_000))),
            &["tag approve/v1 refused: it was given before v1 was registered"],
        ),
        TagCase::new(
            "tag stamped a day ahead",
            Make::Raw(
                "approve/v1",
                &v1,
                Some(("dana@bank.example", rcfops::registry::now_ts() as i64 + 86_400)),
            ),
            &["tag approve/v1 refused: it is stamped", "in the future"],
        ),
        TagCase::new(
            "promote a pending version",
            Make::Annotated("promote/v1", &v1, "lead@bank.example"),
            &["tag promote/v1 refused: v1 is PendingManualApproval; approve it (approve/v1) and let it pass staging first"],
        ),
    ]);
    run_tag_cases(&p, &mut report, pending);

    // Approve v1 for real, then try the same approval again with a second tag object.
    let oid = p.tag("approve/v1", &v1, "dana@bank.example");
    assert_eq!(
        decision(&p, &format!("tag:approve/v1@{oid}")).unwrap().0,
        "accepted"
    );
    p.wait_status("v1 passes staging", |s| {
        version(s, 1).unwrap()["staging_tests"] == "Passed"
            && stage_version(s, "staging") == Some(1)
    });
    p.delete_tag("approve/v1");
    run_tag_cases(
        &p,
        &mut report,
        vec![
            TagCase::new(
                "duplicate approval (second approve/v1 tag object)",
                Make::Annotated("approve/v1", &v1, "lead@bank.example"),
                &["tag approve/v1 refused: v1 is already approved"],
            ),
            TagCase::new(
                "promote given before staging passed (backdated)",
                Make::Raw("promote/v1", &v1, Some(("lead@bank.example", 1_000_000_000))),
                &["tag promote/v1 refused: it was given before v1 passed its staging tests; create a new promote tag"],
            ),
            TagCase::new(
                "lightweight promote tag",
                Make::Lightweight("promote/v1", &v1),
                &["lightweight tag promote/v1 ignored: approval tags must be annotated"],
            ),
            TagCase::new(
                "reject of the only version in staging, without force",
                Make::Annotated("reject/v1", &v1, "risk@bank.example"),
                &["tag reject/v1 refused: v1 is the only version left for staging, so rejecting it would leave staging without a model; nothing changed"],
            ),
        ],
    );

    // Reject v2, then approve it and reject it again.
    let oid = p.tag("reject/v2", &v2, "risk@bank.example");
    assert_eq!(
        decision(&p, &format!("tag:reject/v2@{oid}")).unwrap().0,
        "accepted"
    );
    run_tag_cases(
        &p,
        &mut report,
        vec![TagCase::new(
            "approve a rejected version",
            Make::Annotated("approve/v2", &v2, "dana@bank.example"),
            &["tag approve/v2 refused: v2 was rejected; a rejected version cannot be approved"],
        )],
    );
    p.delete_tag("reject/v2");
    run_tag_cases(
        &p,
        &mut report,
        vec![TagCase::new(
            "duplicate rejection (second reject/v2 tag object)",
            Make::Annotated("reject/v2", &v2, "lead@bank.example"),
            &["tag reject/v2 refused: v2 is already rejected"],
        )],
    );
    let before = stored(&p);

    // Tags outside the approval namespaces are not approvals: no decision, nothing changes.
    for name in ["approved/v1", "v1", "release/approve/v1"] {
        p.tag(name, &v1, "dana@bank.example");
    }
    std::thread::sleep(Duration::from_millis(1200));
    let reg = p.registry();
    let stray: Vec<String> = reg
        .approvals()
        .unwrap()
        .into_iter()
        .map(|a| a.source.to_string())
        .filter(|s| {
            s.starts_with("tag:approved/")
                || s.starts_with("tag:v1")
                || s.starts_with("tag:release/")
        })
        .collect();
    let mut problems: Vec<String> = stray.iter().map(|s| format!("decided {s}")).collect();
    problems.extend(unchanged(&before, &stored(&p)));
    report.case(
        "tags outside approve/ promote/ reject/ are ignored",
        problems,
    );
    report.finish(20);
}

/// Writes an approval file the way a careful tool does: a hidden temporary, then a rename, so
/// the agent never sees it half-written.
fn put(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[test]
fn approval_file_cases() {
    let (p, _agent, v1, v2) = two_versions();
    let dir = p.state.join("approvals");
    std::fs::create_dir_all(&dir).unwrap();
    let now = rcfops::registry::format_ts(rcfops::registry::now_ts().ceil() + 1.0);
    let file = |action: &str, version: i64, commit: &str| {
        format!(
            "action = \"{action}\"\nversion = {version}\ncommit = \"{commit}\"\napprover = \"dana@bank.example\"\ncreated = \"{now}\"\n"
        )
    };
    let approve_v1 = file("approve", 1, &v1);
    let ignored = |name: &str, why: &str| {
        format!("approval file {name} ignored: {why} (see README, \"Approval files\")")
    };
    let mut report = Report::new("approval files");
    let before = stored(&p);

    let cases: Vec<(&str, Vec<u8>, Vec<String>)> = vec![
        ("garbage.toml", b"approve = [[[".to_vec(), vec![
            "approval file garbage.toml ignored: ".into(),
            "(see README, \"Approval files\")".into(),
        ]),
        ("binary.toml", vec![0, 159, 146, 150, 0, 1], vec![ignored("binary.toml", "not valid UTF-8")]),
        ("empty.toml", Vec::new(), vec![ignored("empty.toml", "the file is empty")]),
        ("blank.toml", b"\n   \n\t\n".to_vec(), vec![ignored("blank.toml", "the file is empty")]),
        ("latin1.toml", approve_v1.replace("dana@", "dan\u{e9}@").replace('\u{e9}', "\u{1}").into_bytes().iter().map(|&b| if b == 1 { 0xe9 } else { b }).collect(), vec![ignored("latin1.toml", "not valid UTF-8")]),
        ("unknown-action.toml", approve_v1.replace("\"approve\"", "\"deploy\"").into_bytes(), vec![
            "approval file unknown-action.toml ignored: unknown action \"deploy\" (approve, promote, reject or rollback)".into(),
        ]),
        ("action-number.toml", approve_v1.replace("\"approve\"", "1").into_bytes(), vec![
            "approval file action-number.toml ignored: invalid type: integer `1`, expected a string".into(),
        ]),
        ("no-approver.toml", approve_v1.replace("approver = \"dana@bank.example\"\n", "").into_bytes(), vec![ignored("no-approver.toml", "missing field `approver`")]),
        ("no-created.toml", approve_v1.replace(&format!("created = \"{now}\"\n"), "").into_bytes(), vec![ignored("no-created.toml", "missing field `created`")]),
        ("no-commit.toml", approve_v1.replace(&format!("commit = \"{v1}\"\n"), "").into_bytes(), vec![
            "approval file no-commit.toml ignored: approve needs `version` and `commit`".into(),
        ]),
        ("no-version.toml", approve_v1.replace("version = 1\n", "").into_bytes(), vec![
            "approval file no-version.toml ignored: approve needs `version` and `commit`".into(),
        ]),
        ("version-string.toml", approve_v1.replace("version = 1", "version = \"v1\"").into_bytes(), vec![
            "approval file version-string.toml ignored: invalid type: string \"v1\", expected i64".into(),
        ]),
        ("unknown-key.toml", format!("{approve_v1}approved_by = \"boss\"\n").into_bytes(), vec![
            "approval file unknown-key.toml ignored: unknown field `approved_by`".into(),
        ]),
        ("bad-created.toml", approve_v1.replace(&now, "yesterday").into_bytes(), vec![
            "approval file bad-created.toml ignored: created = \"yesterday\" is not an RFC 3339 time".into(),
        ]),
        ("date-only.toml", approve_v1.replace(&now, "2026-01-01").into_bytes(), vec![
            "approval file date-only.toml ignored: created = \"2026-01-01\" is not an RFC 3339 time".into(),
        ]),
        ("backdated.toml", approve_v1.replace(&now, "2001-09-09T01:46:40Z").into_bytes(), vec![
            "approval file backdated.toml refused: it was given before v1 was registered".into(),
        ]),
        ("unknown-version.toml", file("approve", 9, &v1).into_bytes(), vec![
            "approval file unknown-version.toml refused: there is no version v9".into(),
        ]),
        ("wrong-commit.toml", file("approve", 1, &v2).into_bytes(), vec![format!(
            "approval file wrong-commit.toml refused: it points at {} but v1 was built from commit {}",
            short(&v2),
            short(&v1)
        )]),
        ("short-commit.toml", file("approve", 1, short(&v1)).into_bytes(), vec![format!(
            "approval file short-commit.toml refused: it points at {} but v1 was built from commit {}",
            short(&v1),
            short(&v1)
        )]),
        ("promote-pending.toml", file("promote", 1, &v1).into_bytes(), vec![
            "approval file promote-pending.toml refused: v1 is PendingManualApproval; approve it (approve/v1) and let it pass staging first".into(),
        ]),
        ("rollback-no-stage.toml", format!("action = \"rollback\"\napprover = \"dana@bank.example\"\ncreated = \"{now}\"\n").into_bytes(), vec![
            "approval file rollback-no-stage.toml ignored: rollback needs stage = \"staging\" or \"production\"".into(),
        ]),
        ("rollback-bad-stage.toml", format!("action = \"rollback\"\nstage = \"prod\"\napprover = \"dana@bank.example\"\ncreated = \"{now}\"\n").into_bytes(), vec![
            "approval file rollback-bad-stage.toml ignored: rollback needs stage = \"staging\" or \"production\"".into(),
        ]),
        ("rollback-production.toml", format!("action = \"rollback\"\nstage = \"production\"\napprover = \"dana@bank.example\"\ncreated = \"{now}\"\n").into_bytes(), vec![
            "approval file rollback-production.toml refused: production has no previous version to roll back to".into(),
        ]),
        ("rollback-staging.toml", format!("action = \"rollback\"\nstage = \"staging\"\napprover = \"dana@bank.example\"\ncreated = \"{now}\"\n").into_bytes(), vec![
            "approval file rollback-staging.toml refused: nothing is deployed to staging".into(),
        ]),
        ("bad-action-no-approver.toml", format!("action = \"aprove\"\nversion = 1\ncommit = \"{v1}\"\ncreated = \"{now}\"\n").into_bytes(), vec![
            ignored("bad-action-no-approver.toml", "unknown action \"aprove\" (approve, promote, reject or rollback)"),
        ]),
        ("no-action.toml", format!("version = 1\ncommit = \"{v1}\"\napprover = \"dana@bank.example\"\ncreated = \"{now}\"\n").into_bytes(), vec![
            ignored("no-action.toml", "missing field `action` (approve, promote, reject or rollback)"),
        ]),
        ("force-on-approve.toml", format!("{approve_v1}force = true\n").into_bytes(), vec![
            "approval file force-on-approve.toml ignored: `force` applies to reject and rollback only".into(),
        ]),
        ("future.toml", approve_v1.replace(&now, "2099-01-01T00:00:00Z").into_bytes(), vec![
            "approval file future.toml refused: it is stamped 2099-01-01T00:00:00Z, in the future (more than 120 s ahead of this machine's clock)".into(),
        ]),
        ("big.toml", format!("{approve_v1}reason = \"{}\"\n", "x".repeat(70_000)).into_bytes(), vec![
            "approval file big.toml ignored: larger than 65536 bytes".into(),
        ]),
    ];
    for (name, bytes, expected) in &cases {
        put(&dir, name, bytes);
        let got = decision_prefix(&p, &format!("file:{name}@")).map(|(_, o, r)| (o, r));
        report.case(name, check_refusal(&p, &before, got, expected));
    }

    // Path tricks.
    let outside = p.dir.path().join("outside.toml");
    std::fs::write(&outside, &approve_v1).unwrap();
    std::os::unix::fs::symlink("../../outside.toml", dir.join("outside-link.toml")).unwrap();
    let got = decision_prefix(&p, "file:outside-link.toml@").map(|(_, o, r)| (o, r));
    report.case(
        "symlink to a file outside the folder",
        check_refusal(&p, &before, got, &ex(&[
            "approval file outside-link.toml ignored: it is a symlink or not a regular file; write the file itself into the approvals folder",
        ])),
    );
    std::os::unix::fs::symlink("/nonexistent/approve.toml", dir.join("dangling.toml")).unwrap();
    let got = decision_prefix(&p, "file:dangling.toml@").map(|(_, o, r)| (o, r));
    report.case(
        "dangling symlink",
        check_refusal(
            &p,
            &before,
            got,
            &ex(&["approval file dangling.toml ignored: it is a symlink or not a regular file"]),
        ),
    );
    std::fs::create_dir(dir.join("x.toml")).unwrap();
    std::fs::write(dir.join("x.toml/approve.toml"), &approve_v1).unwrap();
    let got = decision_prefix(&p, "file:x.toml@").map(|(_, o, r)| (o, r));
    report.case(
        "subdirectory named x.toml (with a valid file inside)",
        check_refusal(
            &p,
            &before,
            got,
            &ex(&["approval file x.toml ignored: it is a symlink or not a regular file"]),
        ),
    );

    // Not approval files at all: hidden, other extensions, the subdirectory's content.
    put(&dir, ".hidden.toml", approve_v1.as_bytes());
    put(&dir, "approve.txt", approve_v1.as_bytes());
    put(&dir, "approve.toml.bak", approve_v1.as_bytes());

    // A real approval, then the same approval again in a second file.
    put(&dir, "approve-v1.toml", approve_v1.as_bytes());
    let (_, o, why) = decision_prefix(&p, "file:approve-v1.toml@").unwrap();
    assert_eq!(o, "accepted", "{why}");
    let mut problems = Vec::new();
    for (name, _, _) in &cases {
        if !p.registry().approvals().unwrap().iter().any(|a| {
            a.source.to_string().starts_with(&format!("file:{name}@")) && a.outcome == "refused"
        }) {
            problems.push(format!("{name} lost its refusal"));
        }
    }
    for name in [
        ".hidden.toml",
        "approve.txt",
        "approve.toml.bak",
        "approve.toml",
    ] {
        if p.registry()
            .approvals()
            .unwrap()
            .iter()
            .any(|a| a.source.to_string().starts_with(&format!("file:{name}@")))
        {
            problems.push(format!("{name} was read as an approval"));
        }
    }
    report.case(
        "hidden files, other extensions and subfolder contents are not read",
        problems,
    );
    p.wait_status("v1 passes staging", |s| {
        version(s, 1).unwrap()["staging_tests"] == "Passed"
            && stage_version(s, "staging") == Some(1)
    });
    let before = stored(&p);
    put(
        &dir,
        "approve-v1-again.toml",
        file("approve", 1, &v1).replace("dana@", "lead@").as_bytes(),
    );
    let got = decision_prefix(&p, "file:approve-v1-again.toml@").map(|(_, o, r)| (o, r));
    report.case(
        "duplicate approval (second file)",
        check_refusal(
            &p,
            &before,
            got,
            &ex(&["approval file approve-v1-again.toml refused: v1 is already approved"]),
        ),
    );
    // The same bytes under the accepted file's name again: already decided, no second decision.
    put(&dir, "approve-v1.toml", approve_v1.as_bytes());
    std::thread::sleep(Duration::from_millis(800));
    let n = p
        .registry()
        .approvals()
        .unwrap()
        .iter()
        .filter(|a| a.source.to_string().starts_with("file:approve-v1.toml@"))
        .count();
    let mut problems = if n == 1 {
        Vec::new()
    } else {
        vec![format!("{n} decisions for approve-v1.toml")]
    };
    problems.extend(unchanged(&before, &stored(&p)));
    report.case("rewriting a decided file with the same bytes", problems);
    report.finish(25);
}

// ---------------------------------------------------------------------------------------------
// HTTP bodies
// ---------------------------------------------------------------------------------------------

#[test]
fn http_body_cases() {
    let p = Project::new("");
    let agent = p.start();
    p.wait_version(1);
    p.tag("approve/v1", &p.version_commit(1), "dana@bank.example");
    p.wait_status("v1 passes staging", |s| {
        version(s, 1).unwrap()["staging_tests"] == "Passed"
            && stage_version(s, "staging") == Some(1)
    });
    let good = sample_records(2);
    let rec = good[0].clone();
    let json_rec = format!("{{\"features\":[{rec}]}}");
    let before = stored(&p);
    let status_before = p.status();

    // (name, path, content type, accept, body, status, message fragments)
    type Case = (
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        Vec<u8>,
        u16,
        Vec<String>,
    );
    let inv = "/invocations";
    let csv = Some("text/csv");
    let json = Some("application/json");
    let jsonl = Some("application/jsonlines");
    let cases: Vec<Case> = vec![
        ("CSV: too few features", inv, csv, None, b"1,2,3\n".to_vec(), 400, ex(&["record 0: expected 8 features, got 3"])),
        ("CSV: too many features", inv, csv, None, format!("{rec},1\n").into_bytes(), 400, ex(&["record 0: expected 8 features, got 9"])),
        ("CSV: second record short", inv, csv, None, format!("{rec}\n1,2\n").into_bytes(), 400, ex(&["record 1: expected 8 features, got 2"])),
        ("CSV: non-numeric", inv, csv, None, rec.replacen(|c: char| c.is_ascii_digit(), "x", 1).into_bytes(), 400, ex(&["record 0: ", " is not a number"])),
        ("CSV: header line sent", inv, csv, None, format!("amount,hour,merchant_category,distance_from_home_km,minutes_since_last_txn,txns_last_24h,amount_to_avg_ratio,card_present\n{rec}\n").into_bytes(), 400, ex(&["record 0: \"amount\" is not a number"])),
        ("CSV: NaN", inv, csv, None, b"1,2,3,4,5,6,7,NaN\n".to_vec(), 400, ex(&["record 0: \"NaN\" is not a finite number"])),
        ("CSV: inf", inv, csv, None, b"inf,2,3,4,5,6,7,8\n".to_vec(), 400, ex(&["record 0: \"inf\" is not a finite number"])),
        ("CSV: empty value", inv, csv, None, b"1,,3,4,5,6,7,8\n".to_vec(), 400, ex(&["record 0: empty value (missing values are not allowed)"])),
        ("CSV: empty body", inv, csv, None, Vec::new(), 400, ex(&["record 0: the request has no records"])),
        ("CSV: only blank lines", inv, csv, None, b"\n\r\n  \n".to_vec(), 400, ex(&["record 0: the request has no records"])),
        ("CSV: not UTF-8", inv, csv, None, vec![b'1', b',', 0xff, b'\n'], 400, ex(&["record 0: the body is not valid UTF-8"])),
        ("JSON: malformed", inv, json, None, b"{\"instances\": [".to_vec(), 400, ex(&["record 0: malformed JSON: "])),
        ("JSON: empty body", inv, json, None, Vec::new(), 400, ex(&["record 0: malformed JSON: EOF while parsing"])),
        ("JSON: wrong shape (rows)", inv, json, None, b"{\"rows\": []}".to_vec(), 400, ex(&["record 0: expected {\"instances\": [{\"features\": [...]}, ...]}"])),
        ("JSON: top-level array", inv, json, None, format!("[[{rec}]]").into_bytes(), 400, ex(&["record 0: expected {\"instances\": [{\"features\": [...]}, ...]}"])),
        ("JSON: instances not a list", inv, json, None, b"{\"instances\": 5}".to_vec(), 400, ex(&["record 0: expected {\"instances\""])),
        ("JSON: instance without features", inv, json, None, format!("{{\"instances\":[{json_rec},{{\"values\":[1]}}]}}").into_bytes(), 400, ex(&["record 1: instance has no \"features\" array"])),
        ("JSON: features not a list", inv, json, None, b"{\"instances\":[{\"features\":\"1,2\"}]}".to_vec(), 400, ex(&["record 0: instance has no \"features\" array"])),
        ("JSON: string feature", inv, json, None, b"{\"instances\":[{\"features\":[\"1\",2,3,4,5,6,7,8]}]}".to_vec(), 400, ex(&["record 0: \"1\" is not a finite number"])),
        ("JSON: null feature", inv, json, None, b"{\"instances\":[{\"features\":[1,2,3,4,5,6,7,null]}]}".to_vec(), 400, ex(&["record 0: null is not a finite number"])),
        ("JSON: number out of range", inv, json, None, b"{\"instances\":[{\"features\":[1e400,2,3,4,5,6,7,8]}]}".to_vec(), 400, ex(&["record 0: malformed JSON: number out of range"])),
        ("JSON: wrong feature count", inv, json, None, b"{\"instances\":[{\"features\":[1]}]}".to_vec(), 400, ex(&["record 0: expected 8 features, got 1"])),
        ("JSON: no instances", inv, json, None, b"{\"instances\":[]}".to_vec(), 400, ex(&["record 0: the request has no records"])),
        ("JSON lines: bad second line", inv, jsonl, None, format!("{json_rec}\nnot json\n").into_bytes(), 400, ex(&["record 1: malformed JSON line: "])),
        ("JSON lines: no features", inv, jsonl, None, b"{\"values\":[1,2]}\n".to_vec(), 400, ex(&["record 0: line has no \"features\" array"])),
        ("JSON lines: wrong feature count", inv, jsonl, None, b"{\"features\":[1,2]}\n".to_vec(), 400, ex(&["record 0: expected 8 features, got 2"])),
        ("JSON lines: not UTF-8", inv, jsonl, None, vec![b'{', 0xc3, 0x28, b'}'], 400, ex(&["record 0: the body is not valid UTF-8"])),
        ("JSON lines: empty", inv, jsonl, None, b"\n\n".to_vec(), 400, ex(&["record 0: the request has no records"])),
        ("unsupported content type", inv, Some("application/x-recordio-protobuf"), None, b"x".to_vec(), 415, ex(&["unsupported Content-Type \"application/x-recordio-protobuf\": send text/csv, application/json or application/jsonlines"])),
        ("text/plain content type", inv, Some("text/plain"), None, rec.clone().into_bytes(), 415, ex(&["unsupported Content-Type \"text/plain\""])),
        ("missing content type", inv, None, None, rec.clone().into_bytes(), 415, ex(&["missing Content-Type: send text/csv, application/json or application/jsonlines"])),
        ("unsupported Accept", inv, csv, Some("text/html"), rec.clone().into_bytes(), 406, ex(&["cannot answer with Accept \"text/html\": use application/json or application/jsonlines"])),
        ("oversized body (6 MB + 1)", inv, csv, None, vec![b'1'; 6_291_457], 413, ex(&["request body exceeds 6291456 bytes (SageMaker's payload limit); split the batch"])),
        ("wrong endpoint name", "/endpoints/card-fraud-prod/invocations", csv, None, rec.clone().into_bytes(), 404, ex(&["Endpoint card-fraud-prod not found: this is the staging endpoint, named card-fraud-staging"])),
        ("unknown route", "/predict", csv, None, rec.clone().into_bytes(), 404, ex(&["no route for POST /predict: use GET /ping, ", "POST /invocations or POST /endpoints/{name}/invocations"])),
    ];

    let mut report = Report::new("http");
    let client = http();
    let ping = |base: &str| -> Option<i64> {
        client
            .get(format!("{base}/ping"))
            .send()
            .ok()?
            .headers()
            .get("x-rcfops-model-version")?
            .to_str()
            .ok()?
            .parse()
            .ok()
    };
    for (name, path, ct, accept, body, code, expected) in cases {
        let mut req = client.post(format!("{}{path}", agent.staging)).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let mut problems = Vec::new();
        match req.send() {
            Err(e) => problems.push(format!("request failed: {e}")),
            Ok(r) => {
                if r.status().as_u16() != code {
                    problems.push(format!("status {}, expected {code}", r.status()));
                }
                if r.headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    != Some("application/json")
                {
                    problems.push(format!(
                        "content-type {:?}",
                        r.headers().get("content-type")
                    ));
                }
                let text = r.text().unwrap_or_default();
                match serde_json::from_str::<Value>(&text) {
                    Ok(v) => {
                        if v["ErrorCode"].as_str().is_none() {
                            problems.push(format!("no ErrorCode in {v}"));
                        }
                        problems.extend(missing(
                            "Message",
                            v["Message"].as_str().unwrap_or(""),
                            &expected,
                        ));
                    }
                    Err(_) => problems.push(format!("body is not JSON: {text:?}")),
                }
            }
        }
        if ping(&agent.staging) != Some(1) {
            problems.push("staging no longer serves v1".into());
        }
        problems.extend(unchanged(&before, &stored(&p)));
        report.case(name, problems);
    }

    // Production has no model yet: a clear 503, not a hang or a 500.
    let (code, _, v) = post_csv(&agent.production, "/invocations", &rec);
    let mut problems = missing(
        "Message",
        v["Message"].as_str().unwrap_or(""),
        &ex(&["no model is deployed to production yet"]),
    );
    if code != 503 {
        problems.push(format!("status {code}, expected 503"));
    }
    report.case("production without a model", problems);

    // Huge values in a log-transformed feature (amount) are scored.
    let huge_amount = format!("1e308{}", &rec[rec.find(',').unwrap()..]);
    let (code, served, v) = post_csv(&agent.staging, "/invocations", &huge_amount);
    let mut problems = Vec::new();
    if !(code == 200 && served == Some(1) && v["scores"][0]["score"].is_number()) {
        problems.push(format!("1e308 in amount: {code} {v}"));
    }
    report.case(
        "CSV: 1e308 in a log-transformed feature is scored",
        problems,
    );
    // 1e308 in a feature that is only scaled cannot be represented by the single-precision
    // model: that is the client's bad input (400 naming the record and the value), not a
    // model failure (424).
    let (code, _, v) = post_csv(&agent.staging, "/invocations", "1,1e308,5411,1,1,1,1,1");
    let mut problems = missing(
        "Message",
        v["Message"].as_str().unwrap_or(""),
        &ex(&["record 0: ", "1e308"]),
    );
    if code != 400 {
        problems.push(format!("status {code}, expected 400: {v}"));
    }
    report.case("CSV: 1e308 in a scaled feature", problems);

    // Still serving the same model; the registry and status are as before.
    let (code, served, _) = post_csv(&agent.staging, "/invocations", &good.join("\n"));
    let mut problems = Vec::new();
    if (code, served) != (200, Some(1)) {
        problems.push(format!("good request after bad ones: {code} {served:?}"));
    }
    let status_after = p.status();
    if status_after["versions"] != status_before["versions"]
        || status_after["endpoints"] != status_before["endpoints"]
    {
        problems.push("status --json changed".into());
    }
    report.case("endpoint keeps serving after every bad request", problems);
    report.finish(35);
}
