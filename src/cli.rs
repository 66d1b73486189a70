//! The `rcfops` command line: argument parsing and one function per command.
//!
//! Owns what a user types and sees: tables a person reads at a glance, `--json` shapes for
//! scripts, and errors that say what to do. Commands read the registry directly; the only
//! writes are `init`, `run` (a foreground pipeline run), and approvals, which go through the
//! same annotated tags or approval files a user could create by hand.

use std::io::{BufRead, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::agent;
use crate::artifacts::ArtifactStore;
use crate::config::Config;
use crate::gates::{self, ApprovalFile};
use crate::pipeline::{self, Cancel, Outcome, RunEnv};
use crate::registry::{format_ts, Registry};
use crate::repo::ModelRepo;
use crate::spec::{PreprocessSpec, Scaling};

#[derive(Parser, Debug)]
#[command(
    name = "rcfops",
    version,
    about = "GitOps MLOps agent for Random Cut Forest fraud models: commit → train → approve → staging → production"
)]
pub struct Cli {
    /// Configuration file (relative paths in it resolve against its folder).
    #[arg(long, global = true, default_value = "config.toml")]
    pub config: PathBuf,
    /// More detailed logs.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create the model repo from the template (one commit on the configured branch).
    Init,
    /// Init if needed, then run the agent until Ctrl-C.
    Up,
    /// Run the pipeline once for the branch head (or --commit) in the foreground.
    Run {
        #[arg(long)]
        commit: Option<String>,
    },
    /// Versions, stages, endpoints and recent runs.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Pipeline runs with their steps.
    Runs {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Approve vN for staging (creates the annotated tag approve/vN).
    Approve(ApprovalArgs),
    /// Promote vN to production (creates promote/vN); needs passed staging tests.
    Promote(ApprovalArgs),
    /// Reject vN (creates reject/vN); a stage running it rolls back.
    Reject(ApprovalArgs),
    /// Roll a stage back: production to its previous version; staging by rejecting its version.
    Rollback {
        /// `staging` or `production`.
        stage: String,
        #[arg(long)]
        reason: Option<String>,
        /// Roll back even when that leaves a stage without a model (recorded in the audit).
        #[arg(long)]
        force: bool,
        #[arg(long)]
        no_wait: bool,
    },
    /// Show the agent's log (JSON lines in the state folder), optionally following it.
    Logs(LogsArgs),
    /// Score CSV records (one a line; FILE or stdin) on a stage's endpoint.
    Score {
        #[arg(long)]
        stage: String,
        file: Option<PathBuf>,
    },
    /// Train and evaluate on a local CSV with the pipeline's semantics.
    Eval(EvalArgs),
    /// Streaming scores of a time series CSV (score, then update, in order): one a line.
    Stream(StreamArgs),
    /// Signed approvals: `rcfops signing setup --key ~/.ssh/id_ed25519.pub` turns them on.
    #[command(subcommand)]
    Signing(SigningCommand),
    /// The audit trail: every transition, who, when, how.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum SigningCommand {
    /// One command to require SSH-signed approve/promote tags: lists the key for the e-mail in
    /// the allowed-signers file, makes `git tag -a` in the model repo sign with it, and turns on
    /// `require_signed` in the config. Run it once per approver key.
    Setup {
        /// The SSH public key (`.pub`); its private half, when beside it, signs the tags.
        #[arg(long)]
        key: PathBuf,
        /// Whose key it is (default: the model repo's git user.email).
        #[arg(long)]
        email: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct ApprovalArgs {
    /// Version number (N or vN).
    pub version: String,
    /// Write an approval file instead of a tag.
    #[arg(long)]
    pub file: bool,
    /// Message stored in the tag or file.
    #[arg(long, short)]
    pub message: Option<String>,
    /// Do not wait for the agent's decision.
    #[arg(long)]
    pub no_wait: bool,
    /// Reject even when that leaves a stage without a model (recorded in the audit).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Keep printing lines as they are written (starts with the last 10, as `tail -f` does).
    #[arg(short, long)]
    pub follow: bool,
    /// Print only the last N lines (after --run and --since), then follow with -f.
    #[arg(short = 'n', long = "lines", value_name = "N")]
    pub lines: Option<usize>,
    /// Only lines at or after TIME: RFC 3339 (2026-11-25T04:56:00Z) or an age (90s, 10m, 2h, 1d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only lines of run N.
    #[arg(long)]
    pub run: Option<i64>,
    /// Print the raw JSON lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The labelled CSV (with --spec: default the spec's `[data] path`, beside the spec).
    pub data: Option<PathBuf>,
    /// Evaluate exactly what a commit of this pipeline.toml would run, gate included.
    #[arg(long, value_name = "PIPELINE_TOML")]
    pub spec: Option<PathBuf>,
    #[arg(long, required_unless_present = "spec", conflicts_with = "spec")]
    pub label: Option<String>,
    #[arg(long, default_value_t = 100, conflicts_with = "spec")]
    pub trees: usize,
    #[arg(long, default_value_t = 256, conflicts_with = "spec")]
    pub samples: usize,
    #[arg(long, default_value_t = 42, conflicts_with = "spec")]
    pub seed: u64,
    #[arg(long, default_value_t = 0.3, conflicts_with = "spec")]
    pub test_fraction: f64,
    #[arg(long, default_value_t = 7, conflicts_with = "spec")]
    pub split_seed: u64,
    /// auto (the default of pipeline.toml: median/IQR, standard deviation for columns with a
    /// large tie), robust, standard or none (raw features).
    #[arg(long, default_value = "auto", conflicts_with = "spec")]
    pub scaling: String,
    /// Columns to log-transform (comma separated).
    #[arg(long, value_delimiter = ',', conflicts_with = "spec")]
    pub log: Vec<String>,
    /// Columns to leave out (comma separated).
    #[arg(long, value_delimiter = ',', conflicts_with = "spec")]
    pub exclude: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StreamArgs {
    /// CSV with a header row: a timestamp column (passed through, ignored) and values;
    /// `-` reads standard input.
    pub data: PathBuf,
    /// Value column; default: the last numeric column (other than one named `label`).
    #[arg(long)]
    pub column: Option<String>,
    /// Consecutive values per point (1 = each value alone).
    #[arg(long, default_value_t = 1)]
    pub shingle: usize,
    #[arg(long, default_value_t = 100)]
    pub trees: usize,
    #[arg(long, default_value_t = 256)]
    pub samples: usize,
    /// Time decay of the samplers (0 = uniform over the whole stream).
    #[arg(long, default_value_t = 1e-5)]
    pub time_decay: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print NAB's form: score / log2(samples) (8 at 256), clipped to [0, 1].
    #[arg(long)]
    pub normalized: bool,
}

pub fn main_with(cli: Cli) -> Result<i32> {
    let is_default = cli.config == Path::new("config.toml");
    let cfg = Config::load(&cli.config, is_default).map_err(|e| anyhow!("{e}"))?;
    match cli.command {
        Command::Init => {
            crate::logging::init(None, cli.verbose)?;
            if agent::init_repo(&cfg)? {
                println!(
                    "created {} from {} (branch {})",
                    cfg.repo.path.display(),
                    cfg.repo.template.display(),
                    cfg.repo.branch
                );
            } else {
                println!("{} already exists; nothing to do", cfg.repo.path.display());
            }
            Ok(0)
        }
        Command::Up => {
            if !agent::agent_running(&cfg) {
                crate::logging::rotate_if_large(&cfg.log_path(), crate::logging::ROTATE_BYTES)?;
            }
            crate::logging::init(Some(&cfg.log_path()), cli.verbose)?;
            if agent::init_repo(&cfg)? {
                tracing::info!(
                    "created the model repo {} from {}",
                    cfg.repo.path.display(),
                    cfg.repo.template.display()
                );
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(agent::run(cfg, agent::shutdown_signal()))?;
            Ok(0)
        }
        Command::Run { commit } => cmd_run(&cfg, commit, cli.verbose),
        Command::Status { json } => cmd_status(&cfg, json),
        Command::Runs { limit, json } => cmd_runs(&cfg, limit, json),
        Command::Approve(a) => cmd_approval(&cfg, "approve", a),
        Command::Promote(a) => cmd_approval(&cfg, "promote", a),
        Command::Reject(a) => cmd_approval(&cfg, "reject", a),
        Command::Rollback {
            stage,
            reason,
            force,
            no_wait,
        } => cmd_rollback(&cfg, &stage, reason, force, no_wait),
        Command::Logs(a) => cmd_logs(&cfg, a),
        Command::Score { stage, file } => cmd_score(&cfg, &stage, file),
        Command::Eval(a) => cmd_eval(a),
        Command::Signing(SigningCommand::Setup { key, email }) => {
            cmd_signing_setup(&cli.config, &cfg, &key, email)
        }
        Command::Stream(a) => cmd_stream(a),
        Command::Audit { limit, json } => cmd_audit(&cfg, limit, json),
    }
}

fn open_registry(cfg: &Config) -> Result<Registry> {
    if !cfg.registry_path().exists() {
        bail!(
            "no registry at {}: start the agent first (`rcfops up`)",
            cfg.registry_path().display()
        );
    }
    Ok(Registry::open(&cfg.registry_path())?)
}

fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}

fn cmd_run(cfg: &Config, commit: Option<String>, verbose: bool) -> Result<i32> {
    crate::logging::init(Some(&cfg.log_path()), verbose)?;
    let repo = ModelRepo::open(&cfg.repo.path).map_err(|e| anyhow!("{e}"))?;
    let commit = match commit {
        Some(c) => repo.resolve(&c).map_err(|e| anyhow!("{e}"))?,
        None => repo
            .head(&cfg.repo.branch)
            .map_err(|e| anyhow!("{e}"))?
            .ok_or_else(|| anyhow!("branch {} does not exist", cfg.repo.branch))?,
    };
    let registry = Registry::open(&cfg.registry_path())?;
    let store = ArtifactStore::open(&cfg.artifacts_dir())?;
    let run = registry.begin_run(&commit, "cli")?;
    let env = RunEnv {
        registry: &registry,
        store: &store,
        repo_path: &cfg.repo.path,
        staging_sample: cfg.agent.staging_test_records,
    };
    match pipeline::execute(&env, run, &commit, &Arc::new(Cancel::default())) {
        Outcome::Registered { version, new: true } => {
            println!(
                "run {run}: registered v{version} from {} (PendingManualApproval)",
                short(&commit)
            );
            Ok(0)
        }
        Outcome::Registered {
            version,
            new: false,
        } => {
            println!(
                "run {run}: commit {} is already v{version}; nothing registered twice",
                short(&commit)
            );
            Ok(0)
        }
        Outcome::Failed(e) => {
            eprintln!("run {run} failed: {e}");
            Ok(1)
        }
        Outcome::Skipped(e) => {
            eprintln!("run {run} skipped: {e}");
            Ok(1)
        }
        Outcome::Interrupted => Ok(1),
    }
}

/// The `status --json` document (the contract in DESIGN.md, plus extra fields).
pub fn status_json(cfg: &Config, reg: &Registry) -> Result<serde_json::Value> {
    // What each stage serves: its latest deployment, as recorded by the agent.
    let staging = reg.deployed("staging")?;
    let production = reg.deployed("production")?;
    let (staging_url, production_url) = agent::endpoint_urls(cfg);
    let versions: Vec<serde_json::Value> = reg
        .versions()?
        .into_iter()
        .map(|v| {
            let mut stages = Vec::new();
            if staging == Some(v.version) {
                stages.push("staging");
            }
            if production == Some(v.version) {
                stages.push("production");
            }
            let stage = stages.last().copied();
            serde_json::json!({
                "version": v.version,
                "commit": v.commit,
                "approval": v.approval,
                "stage": stage,
                "stages": stages,
                "metrics": v.metrics,
                "hyperparameters": v.hyperparameters,
                "model_group": v.model_group,
                "artifact_sha256": v.artifact_sha256,
                "registered_at": format_ts(v.registered_ts),
                "staging_tests": v.staging_result,
                "staging_detail": v.staging_detail,
                "reject_reason": v.reject_reason,
            })
        })
        .collect();
    let runs: Vec<serde_json::Value> = reg
        .runs(50)?
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "run": r.run,
                "commit": r.commit,
                "status": r.status,
                "error": r.error,
                "version": r.version,
                "trigger": r.trigger,
                "interrupted": r.interrupted,
                "started_at": format_ts(r.started_ts),
            })
        })
        .collect();
    let endpoint = |stage: &str, url: String, version: Option<i64>| -> Result<serde_json::Value> {
        let name = crate::spec::endpoint_name(&reg.endpoint_group(stage)?, stage);
        Ok(serde_json::json!({"name": name, "url": url, "version": version}))
    };
    let mut production_ep = endpoint("production", production_url, production)?;
    production_ep["rolled_back"] = match production_rollback(reg)? {
        Some(a) => serde_json::json!({
            "from": a.version,
            "by": a.approver,
            "how": a.method,
            "reason": a.note,
            "forced": a.forced,
            "at": format_ts(a.given_ts),
        }),
        None => serde_json::Value::Null,
    };
    Ok(serde_json::json!({
        "versions": versions,
        "runs": runs,
        "endpoints": {
            "staging": endpoint("staging", staging_url, staging)?,
            "production": production_ep,
        },
        "agent_running": agent::agent_running(cfg),
        "approver_identities": if cfg.approvals.require_signed { "signed" } else { "self-asserted" },
        "notices": cfg.identity_notice().into_iter().collect::<Vec<_>>(),
    }))
}

/// The production rollback in force: the newest accepted one with no promotion after it.
fn production_rollback(reg: &Registry) -> Result<Option<crate::registry::ApprovalRow>> {
    let mut held = None;
    for a in reg.approvals()? {
        if a.outcome != "accepted" {
            continue;
        }
        match (a.action.as_str(), a.stage.as_deref()) {
            ("rollback", Some("production")) => held = Some(a),
            ("promote", _) => held = None,
            _ => {}
        }
    }
    Ok(held)
}

fn cmd_status(cfg: &Config, json: bool) -> Result<i32> {
    let reg = open_registry(cfg)?;
    let doc = status_json(cfg, &reg)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    let mut out = String::new();
    out.push_str(&format!(
        "{:<8} {:<13} {:<22} {:<19} {:>8} {:>8} {:<8} {}\n",
        "VERSION", "COMMIT", "APPROVAL", "STAGE", "ROC-AUC", "PR-AUC", "STAGING", "REGISTERED"
    ));
    for v in doc["versions"].as_array().into_iter().flatten() {
        let stages = v["stages"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<8} {:<13} {:<22} {:<19} {:>8.4} {:>8.4} {:<8} {}\n",
            format!("v{}", v["version"]),
            short(v["commit"].as_str().unwrap_or("")),
            v["approval"].as_str().unwrap_or(""),
            if stages.is_empty() {
                "-".to_string()
            } else {
                stages
            },
            v["metrics"]["roc_auc"].as_f64().unwrap_or(f64::NAN),
            v["metrics"]["pr_auc"].as_f64().unwrap_or(f64::NAN),
            v["staging_tests"].as_str().unwrap_or("-"),
            v["registered_at"].as_str().unwrap_or(""),
        ));
    }
    if doc["versions"].as_array().is_none_or(|a| a.is_empty()) {
        out.push_str("(no versions yet)\n");
    }
    out.push('\n');
    for stage in ["staging", "production"] {
        let e = &doc["endpoints"][stage];
        let rb = &e["rolled_back"];
        let held = if rb.is_object() {
            format!(
                "  (rolled back from v{} by {}{})",
                rb["from"],
                rb["by"].as_str().unwrap_or(""),
                rb["reason"]
                    .as_str()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{:<11} {:<28} {:<28} {}{held}\n",
            stage,
            e["name"].as_str().unwrap_or(""),
            e["url"].as_str().unwrap_or(""),
            e["version"]
                .as_i64()
                .map(|v| format!("v{v}"))
                .unwrap_or_else(|| "no model".into())
        ));
    }
    for n in doc["notices"].as_array().into_iter().flatten() {
        out.push_str(&format!("note: {}\n", n.as_str().unwrap_or("")));
    }
    out.push_str(&format!(
        "agent: {}\n\nrecent runs:\n",
        if doc["agent_running"].as_bool() == Some(true) {
            "running"
        } else {
            "not running"
        }
    ));
    for r in doc["runs"].as_array().into_iter().flatten().take(5) {
        out.push_str(&format!(
            "  run {:<4} {:<13} {:<10} {}\n",
            r["run"].to_string(),
            short(r["commit"].as_str().unwrap_or("")),
            r["status"].as_str().unwrap_or(""),
            r["version"]
                .as_i64()
                .map(|v| format!("v{v}"))
                .or_else(|| r["error"].as_str().map(str::to_string))
                .unwrap_or_default()
        ));
    }
    print!("{out}");
    Ok(0)
}

fn cmd_runs(cfg: &Config, limit: usize, json: bool) -> Result<i32> {
    let reg = open_registry(cfg)?;
    let runs = reg.runs(limit)?;
    if json {
        let v: Vec<serde_json::Value> = runs
            .iter()
            .map(|r| {
                let mut j = serde_json::to_value(r).unwrap_or_default();
                j["steps"] =
                    serde_json::to_value(reg.steps(r.run).unwrap_or_default()).unwrap_or_default();
                j
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!(
        "{:<5} {:<13} {:<10} {:<8} {:<21} DETAIL",
        "RUN", "COMMIT", "STATUS", "VERSION", "STARTED"
    );
    for r in runs {
        let steps = reg.steps(r.run)?;
        let detail = match (&r.error, r.version) {
            (Some(e), _) => e.clone(),
            (None, _) => steps
                .iter()
                .map(|s| format!("{} {:.0}ms", s.step, s.duration_ms.unwrap_or(0.0)))
                .collect::<Vec<_>>()
                .join(" → "),
        };
        println!(
            "{:<5} {:<13} {:<10} {:<8} {:<21} {}",
            r.run,
            short(&r.commit),
            r.status,
            r.version
                .map(|v| format!("v{v}"))
                .unwrap_or_else(|| "-".into()),
            format_ts(r.started_ts),
            detail
        );
    }
    Ok(0)
}

fn parse_n(s: &str) -> Result<i64> {
    s.trim_start_matches('v')
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| anyhow!("{s:?} is not a version number (use N or vN, e.g. 3)"))
}

fn approver_identity(repo: &ModelRepo) -> String {
    repo.identity()
        .map(|(_, e)| e)
        .or_else(|| std::env::var("USER").ok().map(|u| format!("{u}@localhost")))
        .unwrap_or_else(|| "unknown@localhost".into())
}

/// Waits until both stages serve what the registry derives for them (and a new staging version
/// has its test result), then prints where each stage stands. Returns false when the stages
/// did not settle in time.
fn wait_for_stages(reg: &Registry, deadline: std::time::Instant) -> Result<bool> {
    let settled = || -> Result<bool> {
        let targets = reg.targets()?;
        let tested = match targets.staging {
            Some(n) => reg.version(n)?.is_some_and(|v| v.staging_result.is_some()),
            None => true,
        };
        Ok(tested
            && reg.deployed("staging")? == targets.staging
            && reg.deployed("production")? == targets.production())
    };
    while !settled()? {
        if std::time::Instant::now() > deadline {
            println!("the stages are still converging; see `rcfops status`");
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let show = |stage: &str| -> Result<String> {
        Ok(match reg.deployed(stage)? {
            Some(n) => {
                let tests = reg
                    .version(n)?
                    .and_then(|v| v.staging_result)
                    .filter(|_| stage == "staging")
                    .map(|r| format!(" (staging tests {r})"))
                    .unwrap_or_default();
                format!("v{n}{tests}")
            }
            None => "no model".into(),
        })
    };
    println!(
        "staging: {}; production: {}",
        show("staging")?,
        show("production")?
    );
    Ok(true)
}

/// What became of an approval the CLI submitted.
enum Decided {
    /// Not waited for (`--no-wait`, the agent is not running, or no decision within the wait).
    NotYet,
    Accepted,
    Refused,
}

fn wait_for_decision(cfg: &Config, source_prefix: &str, no_wait: bool) -> Result<Decided> {
    if no_wait {
        return Ok(Decided::NotYet);
    }
    if !agent::agent_running(cfg) {
        println!("the agent is not running; it will decide when it starts (`rcfops up`)");
        return Ok(Decided::NotYet);
    }
    let reg = open_registry(cfg)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Some(a) = reg
            .approvals()?
            .into_iter()
            .rev()
            .find(|a| a.source.starts_with(source_prefix))
        {
            if a.outcome == "accepted" {
                println!(
                    "accepted by the agent: {} v{}{}",
                    a.action,
                    a.version.unwrap_or(0),
                    if a.forced { " (forced)" } else { "" }
                );
                wait_for_stages(&reg, deadline)?;
                return Ok(Decided::Accepted);
            }
            println!("refused by the agent: {}", a.reason.unwrap_or_default());
            return Ok(Decided::Refused);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("the agent has not decided yet; see `rcfops logs`");
    Ok(Decided::NotYet)
}

/// After an accepted `approve`: exit 1, with the reason, when vN failed its staging tests.
fn approve_outcome(cfg: &Config, n: i64) -> Result<i32> {
    let reg = open_registry(cfg)?;
    let Some(v) = reg.version(n)? else {
        return Ok(0);
    };
    if v.staging_result.as_deref() == Some("Failed") {
        println!(
            "v{n} failed its staging tests: {}; it will not be promoted (fix it and commit again)",
            v.staging_detail.unwrap_or_default()
        );
        return Ok(1);
    }
    Ok(0)
}

fn cmd_approval(cfg: &Config, action: &str, a: ApprovalArgs) -> Result<i32> {
    let n = parse_n(&a.version)?;
    if a.force && action != "reject" {
        bail!("--force applies to `rcfops reject` and `rcfops rollback` only");
    }
    let reg = open_registry(cfg)?;
    let v = reg
        .version(n)?
        .ok_or_else(|| anyhow!("there is no version v{n}; see `rcfops status`"))?;
    let repo = ModelRepo::open(&cfg.repo.path)?;
    let message = a
        .message
        .unwrap_or_else(|| format!("{action} v{n} via rcfops"));
    if cfg.approvals.require_signed && action != "reject" && !a.file {
        bail!(
            "[approvals] require_signed is on, so {action}/v{n} must be a signed tag, which only you can make: git -C {} tag -s {action}/v{n} {} -m {message:?}",
            cfg.repo.path.display(),
            v.commit
        );
    }
    if action == "promote" {
        // Approval times have one-second resolution and a promotion stamped in the second the
        // staging tests passed is refused as ambiguous: wait that second out.
        if let Some(ts) = v.staging_ts {
            let next = ts.floor() + 1.0;
            let now = crate::registry::now_ts();
            if now < next {
                std::thread::sleep(Duration::from_secs_f64(next - now));
            }
        }
    }
    let decided = if a.file {
        let file = ApprovalFile {
            action: action.into(),
            version: Some(n),
            commit: Some(v.commit.clone()),
            stage: None,
            approver: approver_identity(&repo),
            created: format_ts(crate::registry::now_ts().ceil()),
            reason: Some(message),
            via: Some("cli".into()),
            force: a.force,
        };
        submit_file(cfg, &file, a.no_wait)?
    } else {
        let name = format!("{action}/v{n}");
        let mut text = format!("{message}\n\n{}", gates::CLI_TRAILER);
        if a.force {
            text.push('\n');
            text.push_str(gates::FORCE_TRAILER);
        }
        let oid = repo.create_tag(&name, &v.commit, &text)?;
        println!("created annotated tag {name} on {}", short(&v.commit));
        let decided = wait_for_decision(cfg, &format!("tag:{name}@{oid}"), a.no_wait)?;
        if matches!(decided, Decided::Refused) && repo.delete_tag_if(&name, &oid)? {
            // The refusal belongs to that tag object; removing it lets the next try reuse the name.
            println!("deleted the refused tag {name} (it was made by this command)");
        }
        decided
    };
    Ok(match decided {
        Decided::Refused => 1,
        Decided::Accepted if action == "approve" => approve_outcome(cfg, n)?,
        _ => 0,
    })
}

fn cmd_rollback(
    cfg: &Config,
    stage: &str,
    reason: Option<String>,
    force: bool,
    no_wait: bool,
) -> Result<i32> {
    if stage != "staging" && stage != "production" {
        bail!("unknown stage {stage:?}: use `staging` or `production`");
    }
    let repo = ModelRepo::open(&cfg.repo.path)?;
    let file = ApprovalFile {
        action: "rollback".into(),
        version: None,
        commit: None,
        stage: Some(stage.into()),
        approver: approver_identity(&repo),
        created: format_ts(crate::registry::now_ts().ceil()),
        reason: Some(reason.unwrap_or_else(|| format!("rollback {stage} via rcfops"))),
        via: Some("cli".into()),
        force,
    };
    Ok(match submit_file(cfg, &file, no_wait)? {
        Decided::Refused => 1,
        _ => 0,
    })
}

/// Writes an approval file and waits for the agent's decision on it.
fn submit_file(cfg: &Config, file: &ApprovalFile, no_wait: bool) -> Result<Decided> {
    let path = gates::write_file(&cfg.approvals.dir, file)?;
    println!("wrote {}", path.display());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    wait_for_decision(cfg, &format!("file:{name}@"), no_wait)
}

/// `--since`: an RFC 3339 time or an age such as `90s`, `10m`, `2h`, `1d`; as a unix time.
pub fn parse_since(text: &str, now: f64) -> Result<f64> {
    let t = text.trim();
    if let Ok(at) = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339) {
        return Ok(at.unix_timestamp_nanos() as f64 / 1e9);
    }
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let scale = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => 0.0,
    };
    match num.parse::<u64>() {
        Ok(n) if scale > 0.0 => Ok(now - n as f64 * scale),
        _ => bail!(
            "--since {text:?}: use an RFC 3339 time (2026-11-25T04:56:00Z) or an age such as 90s, 10m, 2h or 1d"
        ),
    }
}

/// Which log lines `rcfops logs` prints.
struct LogFilter {
    run: Option<i64>,
    since: Option<f64>,
}

impl LogFilter {
    fn keep(&self, v: &serde_json::Value) -> bool {
        if let Some(n) = self.run {
            if v["span"]["run"].as_i64() != Some(n) {
                return false;
            }
        }
        if let Some(since) = self.since {
            let at = v["timestamp"].as_str().and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            });
            if at.is_some_and(|at| (at.unix_timestamp_nanos() as f64 / 1e9) < since) {
                return false;
            }
        }
        true
    }
}

/// The human form of one JSON log line: time, level, message, then every field the JSON
/// line has (step timings, metrics, versions, ...) as `key=value`.
pub fn human_log_line(v: &serde_json::Value) -> String {
    let mut out = format!(
        "{} {:>5} {}",
        v["timestamp"].as_str().unwrap_or(""),
        v["level"].as_str().unwrap_or(""),
        v["message"].as_str().unwrap_or("")
    );
    if let Some(r) = v["span"]["run"].as_i64() {
        out.push_str(&format!(
            " run={r} commit={}",
            v["span"]["commit"].as_str().unwrap_or("")
        ));
    }
    if let Some(fields) = v.as_object() {
        for (k, val) in fields {
            if matches!(
                k.as_str(),
                "timestamp" | "level" | "message" | "span" | "target"
            ) {
                continue;
            }
            match val {
                serde_json::Value::String(s) => out.push_str(&format!(" {k}={s}")),
                other => out.push_str(&format!(" {k}={other}")),
            }
        }
    }
    out
}

fn format_log_line(line: &str, filter: &LogFilter, json: bool) -> Option<String> {
    let v = serde_json::from_str::<serde_json::Value>(line).ok()?;
    if !filter.keep(&v) {
        return None;
    }
    Some(if json {
        line.to_string()
    } else {
        human_log_line(&v)
    })
}

fn cmd_logs(cfg: &Config, a: LogsArgs) -> Result<i32> {
    let filter = LogFilter {
        run: a.run,
        since: a
            .since
            .as_deref()
            .map(|t| parse_since(t, crate::registry::now_ts()))
            .transpose()?,
    };
    // Like `tail -f`: following starts with the last 10 lines unless told otherwise.
    let last = a.lines.or(if a.follow { Some(10) } else { None });
    let path = cfg.log_path();
    let mut f = loop {
        match std::fs::File::open(&path) {
            Ok(f) => break f,
            Err(_) if a.follow => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => bail!(
                "cannot open the log {}: {e}; has the agent run yet?",
                path.display()
            ),
        }
    };
    let mut reader = std::io::BufReader::new(&mut f);
    let mut line = String::new();
    let stdout = std::io::stdout();
    // What is in the file now: filtered, and cut to the last N lines when asked.
    let mut backlog = std::collections::VecDeque::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 || !line.ends_with('\n') {
            let pos = reader.stream_position()? - n as u64;
            reader.seek(std::io::SeekFrom::Start(pos))?;
            break;
        }
        if let Some(out) = format_log_line(line.trim_end(), &filter, a.json) {
            backlog.push_back(out);
            if last.is_some_and(|n| backlog.len() > n) {
                backlog.pop_front();
            }
        }
    }
    {
        let mut w = stdout.lock();
        for l in backlog {
            writeln!(w, "{l}")?;
        }
        w.flush()?;
    }
    if !a.follow {
        return Ok(0);
    }
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            stdout.lock().flush()?;
            std::thread::sleep(Duration::from_millis(200));
            // Start again from the top if the file was truncated or replaced.
            let pos = reader.stream_position()?;
            if std::fs::metadata(&path)
                .map(|m| m.len() < pos)
                .unwrap_or(false)
            {
                reader.seek(std::io::SeekFrom::Start(0))?;
            }
            continue;
        }
        if !line.ends_with('\n') {
            // A partial line: wait for the rest.
            let pos = reader.stream_position()? - n as u64;
            std::thread::sleep(Duration::from_millis(50));
            reader.seek(std::io::SeekFrom::Start(pos))?;
            continue;
        }
        if let Some(out) = format_log_line(line.trim_end(), &filter, a.json) {
            println!("{out}");
        }
    }
}

fn cmd_score(cfg: &Config, stage: &str, file: Option<PathBuf>) -> Result<i32> {
    let (staging, production) = agent::endpoint_urls(cfg);
    let url = match stage {
        "staging" => staging,
        "production" | "prod" => production,
        other => bail!("unknown stage {other:?}: use `staging` or `production`"),
    };
    let mut body = Vec::new();
    match &file {
        Some(p) => {
            body = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
        }
        None => {
            std::io::stdin().read_to_end(&mut body)?;
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, text) = rt
        .block_on(async {
            let resp = reqwest::Client::builder()
                .no_proxy()
                .build()?
                .post(format!("{url}/invocations"))
                .header("content-type", "text/csv")
                .header("accept", "application/jsonlines")
                .body(body)
                .send()
                .await?;
            let status = resp.status();
            Ok::<_, reqwest::Error>((status, resp.text().await?))
        })
        .with_context(|| {
            format!(
                "cannot reach the {stage} endpoint at {url}; is the agent running (`rcfops up`)?"
            )
        })?;
    if !status.is_success() {
        eprintln!("{stage} endpoint answered {status}: {text}");
        return Ok(1);
    }
    for s in
        crate::stagetest::parse_scores(&text, "application/jsonlines").map_err(|e| anyhow!(e))?
    {
        println!("{s}");
    }
    Ok(0)
}

/// What `rcfops eval` trains: from `--spec` (exactly what a commit would run) or the flags.
struct EvalPlan {
    data: PathBuf,
    dataset: pipeline::Dataset,
    pre: PreprocessSpec,
    forest: rcf_core::ForestConfig,
    test_fraction: f64,
    split_seed: u64,
    scaling: &'static str,
    spec: Option<crate::spec::PipelineSpec>,
}

fn read_data(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn eval_plan(a: &EvalArgs) -> Result<EvalPlan> {
    if let Some(spec_path) = &a.spec {
        let text = std::fs::read_to_string(spec_path)
            .with_context(|| format!("cannot read {}", spec_path.display()))?;
        let spec = crate::spec::PipelineSpec::parse(&text).map_err(|e| {
            anyhow!(
                "{}",
                e.0.replacen(crate::spec::SPEC_FILE, &spec_path.display().to_string(), 1)
            )
        })?;
        let data = a.data.clone().unwrap_or_else(|| {
            spec_path
                .parent()
                .unwrap_or(Path::new("."))
                .join(&spec.data.path)
        });
        let size = std::fs::metadata(&data)
            .with_context(|| format!("cannot read {}", data.display()))?
            .len();
        if size > spec.data.max_bytes {
            bail!(
                "{} is {size} bytes, larger than [data] max_bytes = {} in {}",
                data.display(),
                spec.data.max_bytes,
                spec_path.display()
            );
        }
        let name = data.display().to_string();
        let table = crate::data::Table::parse_csv(&read_data(&data)?, &name)?;
        let dataset = pipeline::select(&table, &spec.data, &name).map_err(|e| anyhow!(e))?;
        return Ok(EvalPlan {
            data,
            dataset,
            pre: spec.preprocess.clone(),
            forest: spec.forest_config(),
            test_fraction: spec.evaluation.test_fraction,
            split_seed: spec.evaluation.split_seed,
            scaling: spec.preprocess.scaling.name(),
            spec: Some(spec),
        });
    }
    let Some(data) = a.data.clone() else {
        bail!("give the data file: rcfops eval DATA.csv --label COLUMN (or --spec pipeline.toml)");
    };
    let label = a
        .label
        .as_deref()
        .expect("clap requires --label without --spec");
    let name = data.display().to_string();
    let dataset = pipeline::load_labelled(&read_data(&data)?, &name, label, &a.exclude)
        .map_err(|e| anyhow!(e))?;
    let Some(scaling) = Scaling::from_name(&a.scaling) else {
        bail!(
            "--scaling {:?}: use auto, robust, standard or none",
            a.scaling
        );
    };
    if !(0.0..1.0).contains(&a.test_fraction) {
        bail!(
            "--test-fraction {} is out of range: use a share in [0, 1)",
            a.test_fraction
        );
    }
    Ok(EvalPlan {
        data,
        dataset,
        pre: PreprocessSpec {
            scaling,
            log_transform: a.log.clone(),
        },
        forest: rcf_core::ForestConfig {
            num_trees: a.trees,
            num_samples_per_tree: a.samples,
            seed: a.seed,
            time_decay: 0.0,
        },
        test_fraction: a.test_fraction,
        split_seed: a.split_seed,
        scaling: scaling.name(),
        spec: None,
    })
}

fn cmd_eval(a: EvalArgs) -> Result<i32> {
    let t0 = std::time::Instant::now();
    let plan = eval_plan(&a)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let data = &plan.dataset;
    let name = plan.data.display().to_string();
    let t = pipeline::train_and_evaluate(
        data,
        &plan.pre,
        plan.forest.clone(),
        plan.test_fraction,
        plan.split_seed,
        0,
    )
    .map_err(|e| anyhow!(e))?;
    // With --spec, the gate decides as it would in a run: a failed gate registers nothing.
    let gate = plan
        .spec
        .as_ref()
        .map(|spec| pipeline::gate(spec, &t.metrics));
    let code = if matches!(gate, Some(Err(_))) { 1 } else { 0 };
    if a.json {
        let doc = serde_json::json!({
            "metrics": t.metrics,
            "timings": {
                "load_ms": load_ms,
                "preprocess_ms": t.timings.preprocess_ms,
                "train_ms": t.timings.train_ms,
                "score_ms": t.timings.score_ms,
                "total_ms": t.timings.total_ms + load_ms,
            },
            "rows": data.x.nrows(),
            "features": data.features,
            "gate": match &gate {
                None => serde_json::Value::Null,
                Some(Ok(())) => serde_json::json!({"passed": true, "error": null}),
                Some(Err(e)) => serde_json::json!({"passed": false, "error": e}),
            },
        });
        println!("{}", serde_json::to_string(&doc)?);
        return Ok(code);
    }
    let m = &t.metrics;
    println!(
        "data        {name}: {} rows, {} features",
        data.x.nrows(),
        data.features.len()
    );
    println!(
        "model       {} trees × {} samples, seed {}, scaling {}",
        plan.forest.num_trees, plan.forest.num_samples_per_tree, plan.forest.seed, plan.scaling
    );
    println!(
        "split       train {} rows, evaluate {} rows ({} anomalies){}",
        m.train_rows,
        m.test_rows,
        m.test_anomalies,
        if plan.test_fraction == 0.0 {
            " — trained and scored on all rows"
        } else {
            ""
        }
    );
    println!("ROC-AUC     {:.4}", m.roc_auc);
    println!("PR-AUC      {:.4}", m.pr_auc);
    println!(
        "threshold   {:.4} (mean + 3σ of training scores)",
        m.threshold
    );
    println!(
        "at threshold: precision {:.4}, recall {:.4}, F1 {:.4}",
        m.precision, m.recall, m.f1
    );
    println!(
        "timings     load {load_ms:.0} ms, preprocess {:.0} ms, train {:.0} ms, score {:.0} ms",
        t.timings.preprocess_ms, t.timings.train_ms, t.timings.score_ms
    );
    match &gate {
        None => {}
        Some(Ok(())) => {
            println!("gate        passed: a commit of this spec would register a version")
        }
        Some(Err(e)) => println!("gate        {e}: a commit of this spec would register nothing"),
    }
    Ok(code)
}

fn cmd_stream(a: StreamArgs) -> Result<i32> {
    let (bytes, name) = if a.data == Path::new("-") {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("cannot read standard input")?;
        (b, "<stdin>".to_string())
    } else {
        (
            std::fs::read(&a.data).with_context(|| format!("cannot read {}", a.data.display()))?,
            a.data.display().to_string(),
        )
    };
    let series =
        crate::stream::read_series(&bytes, &name, a.column.as_deref()).map_err(|e| anyhow!(e))?;
    let config = crate::stream::StreamConfig {
        shingle: a.shingle,
        num_trees: a.trees,
        num_samples_per_tree: a.samples,
        time_decay: a.time_decay,
        seed: a.seed,
    };
    config.validate().map_err(|e| anyhow!(e))?;
    let scores = crate::stream::score_stream(&series.values, &config).map_err(|e| anyhow!(e))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for s in scores {
        let s = if a.normalized {
            crate::stream::nab_normalize(s, a.samples)
        } else {
            s
        };
        if let Err(e) = writeln!(out, "{s}") {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(0);
            }
            return Err(e.into());
        }
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(0),
    }
}

/// The `[approvals]` lines `rcfops signing setup` needs in the config text, or `None` when
/// they are there already. Refuses to overwrite different values the user set.
pub fn with_signing_enabled(text: &str, signers: &str) -> Result<Option<String>> {
    let doc: toml::Table = text.parse().context("the config is not valid TOML")?;
    let approvals = doc.get("approvals").and_then(|a| a.as_table());
    let signed = approvals.and_then(|a| a.get("require_signed"));
    let file = approvals.and_then(|a| a.get("allowed_signers"));
    match (signed, file) {
        (Some(toml::Value::Boolean(true)), Some(toml::Value::String(_))) => return Ok(None),
        (None, None) => {}
        _ => bail!(
            "[approvals] already sets require_signed or allowed_signers; set require_signed = true and allowed_signers = {signers:?} there by hand"
        ),
    }
    let lines = format!("require_signed = true\nallowed_signers = {signers:?}\n");
    let mut out = String::new();
    let mut done = false;
    for l in text.split_inclusive('\n') {
        out.push_str(l);
        if !done && l.trim() == "[approvals]" {
            if !l.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&lines);
            done = true;
        }
    }
    if !done {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("\n[approvals]\n{lines}"));
    }
    Ok(Some(out))
}

fn cmd_signing_setup(
    config_path: &Path,
    cfg: &Config,
    key: &Path,
    email: Option<String>,
) -> Result<i32> {
    let text = std::fs::read_to_string(key)
        .with_context(|| format!("cannot read the public key {}", key.display()))?;
    let public = ssh_key::PublicKey::from_openssh(text.trim()).map_err(|e| {
        anyhow!(
            "{} is not an OpenSSH public key ({e}); pass the .pub file, e.g. --key ~/.ssh/id_ed25519.pub",
            key.display()
        )
    })?;
    let repo = ModelRepo::open(&cfg.repo.path)?;
    let email = match email.or_else(|| repo.identity().map(|(_, e)| e)) {
        Some(e) if e.contains('@') => e,
        _ => {
            bail!("no e-mail for the key: pass --email, or set git's user.email in the model repo")
        }
    };
    let public = public
        .to_openssh()
        .map_err(|e| anyhow!("cannot encode the key: {e}"))?;
    let signers = cfg.approvals.allowed_signers.clone().unwrap_or_else(|| {
        config_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join("allowed_signers")
    });
    let existing = std::fs::read_to_string(&signers).unwrap_or_default();
    let entry = format!("{email} namespaces=\"git\" {public}");
    if existing.lines().any(|l| l.trim() == entry) {
        println!("{} already lists this key for {email}", signers.display());
    } else {
        let mut all = existing;
        if !all.is_empty() && !all.ends_with('\n') {
            all.push('\n');
        }
        all.push_str(&entry);
        all.push('\n');
        crate::signing::AllowedSigners::parse(&all, &signers.display().to_string())
            .map_err(|e| anyhow!(e))?;
        crate::artifacts::write_atomic(&signers, all.as_bytes())
            .with_context(|| format!("cannot write {}", signers.display()))?;
        println!("{}: listed the key for {email}", signers.display());
    }
    // git signs with the private half when it is beside the public key.
    let private = key.with_extension("");
    let signing_key = if key.extension().is_some_and(|e| e == "pub") && private.exists() {
        private
    } else {
        key.to_path_buf()
    };
    repo.configure_ssh_signing(&signing_key)?;
    println!(
        "{}: `git tag -a` now signs with {} (gpg.format = ssh, tag.gpgSign = true)",
        cfg.repo.path.display(),
        signing_key.display()
    );
    let config_text = std::fs::read_to_string(config_path).unwrap_or_default();
    let signers_text = std::path::absolute(&signers)
        .unwrap_or(signers.clone())
        .display()
        .to_string();
    match with_signing_enabled(&config_text, &signers_text)? {
        None => println!("{}: require_signed is already on", config_path.display()),
        Some(new_text) => {
            Config::parse(
                &new_text,
                &config_path.display().to_string(),
                std::path::Path::new("/"),
            )
            .map_err(|e| anyhow!("{e}"))?;
            crate::artifacts::write_atomic(config_path, new_text.as_bytes())
                .with_context(|| format!("cannot write {}", config_path.display()))?;
            println!(
                "{}: require_signed = true (restart the agent to apply it)",
                config_path.display()
            );
        }
    }
    println!(
        "approve and promote with signed tags now: git -C {} tag -a promote/vN COMMIT -m \"...\"",
        cfg.repo.path.display()
    );
    Ok(0)
}

fn cmd_audit(cfg: &Config, limit: usize, json: bool) -> Result<i32> {
    let reg = open_registry(cfg)?;
    let rows = reg.audit_log(limit)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    for a in rows {
        println!(
            "{} {:<24} {:<6} by {:<24} via {:<14} {}",
            format_ts(a.at_ts),
            a.event,
            a.version.map(|v| format!("v{v}")).unwrap_or_default(),
            a.actor,
            a.how,
            a.detail.unwrap_or_default()
        );
    }
    Ok(0)
}
