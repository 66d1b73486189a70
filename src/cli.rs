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
        #[arg(long)]
        no_wait: bool,
    },
    /// Show the agent's log (JSON lines in the state folder), optionally following it.
    Logs {
        #[arg(short, long)]
        follow: bool,
        /// Only lines of run N.
        #[arg(long)]
        run: Option<i64>,
        /// Print the raw JSON lines.
        #[arg(long)]
        json: bool,
    },
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
    /// The audit trail: every transition, who, when, how.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
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
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    pub data: PathBuf,
    #[arg(long)]
    pub label: String,
    #[arg(long, default_value_t = 100)]
    pub trees: usize,
    #[arg(long, default_value_t = 256)]
    pub samples: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value_t = 0.3)]
    pub test_fraction: f64,
    #[arg(long, default_value_t = 7)]
    pub split_seed: u64,
    /// auto (the default of pipeline.toml: median/IQR, standard deviation for columns with a
    /// large tie), robust, standard or none (raw features).
    #[arg(long, default_value = "auto")]
    pub scaling: String,
    /// Columns to log-transform (comma separated).
    #[arg(long, value_delimiter = ',')]
    pub log: Vec<String>,
    /// Columns to leave out (comma separated).
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StreamArgs {
    /// CSV with a header row: a timestamp column (passed through, ignored) and values.
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
            no_wait,
        } => cmd_rollback(&cfg, &stage, reason, no_wait),
        Command::Logs { follow, run, json } => cmd_logs(&cfg, follow, run, json),
        Command::Score { stage, file } => cmd_score(&cfg, &stage, file),
        Command::Eval(a) => cmd_eval(a),
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
    let group = reg
        .versions()?
        .last()
        .map(|v| v.model_group.clone())
        .unwrap_or_else(|| "rcf-model".into());
    Ok(serde_json::json!({
        "versions": versions,
        "runs": runs,
        "endpoints": {
            "staging": {"name": format!("{group}-staging"), "url": staging_url, "version": staging},
            "production": {"name": format!("{group}-prod"), "url": production_url, "version": production},
        },
        "agent_running": agent::agent_running(cfg),
    }))
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
        out.push_str(&format!(
            "{:<11} {:<28} {:<28} {}\n",
            stage,
            e["name"].as_str().unwrap_or(""),
            e["url"].as_str().unwrap_or(""),
            e["version"]
                .as_i64()
                .map(|v| format!("v{v}"))
                .unwrap_or_else(|| "no model".into())
        ));
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

/// Waits for the agent's decision on `source` (if an agent runs) and prints it.
/// Waits until both stages serve what the registry derives for them (and a new staging version
/// has its test result), then prints where each stage stands.
fn wait_for_stages(reg: &Registry, deadline: std::time::Instant) -> Result<()> {
    let settled = || -> Result<bool> {
        let staging = reg.staging_target()?;
        let tested = match staging {
            Some(n) => reg.version(n)?.is_some_and(|v| v.staging_result.is_some()),
            None => true,
        };
        Ok(tested
            && reg.deployed("staging")? == staging
            && reg.deployed("production")? == reg.production_target()?)
    };
    while !settled()? {
        if std::time::Instant::now() > deadline {
            println!("the stages are still converging; see `rcfops status`");
            return Ok(());
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
    Ok(())
}

fn wait_for_decision(cfg: &Config, source_prefix: &str, no_wait: bool) -> Result<i32> {
    if no_wait {
        return Ok(0);
    }
    if !agent::agent_running(cfg) {
        println!("the agent is not running; it will decide when it starts (`rcfops up`)");
        return Ok(0);
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
                    "accepted by the agent: {} v{}",
                    a.action,
                    a.version.unwrap_or(0)
                );
                wait_for_stages(&reg, deadline)?;
                return Ok(0);
            }
            println!("refused by the agent: {}", a.reason.unwrap_or_default());
            return Ok(1);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("the agent has not decided yet; see `rcfops logs`");
    Ok(0)
}

fn cmd_approval(cfg: &Config, action: &str, a: ApprovalArgs) -> Result<i32> {
    let n = parse_n(&a.version)?;
    let reg = open_registry(cfg)?;
    let v = reg
        .version(n)?
        .ok_or_else(|| anyhow!("there is no version v{n}; see `rcfops status`"))?;
    let repo = ModelRepo::open(&cfg.repo.path).map_err(|e| anyhow!("{e}"))?;
    let message = a
        .message
        .unwrap_or_else(|| format!("{action} v{n} via rcfops"));
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
    if a.file {
        let file = ApprovalFile {
            action: action.into(),
            version: Some(n),
            commit: Some(v.commit.clone()),
            stage: None,
            approver: approver_identity(&repo),
            created: format_ts(crate::registry::now_ts().ceil()),
            reason: Some(message),
            via: Some("cli".into()),
        };
        return submit_file(cfg, &file, a.no_wait);
    }
    let name = format!("{action}/v{n}");
    let oid = repo
        .create_tag(
            &name,
            &v.commit,
            &format!("{message}\n\n{}", gates::CLI_TRAILER),
        )
        .map_err(|e| anyhow!("{e}"))?;
    println!("created annotated tag {name} on {}", short(&v.commit));
    wait_for_decision(cfg, &format!("tag:{name}@{oid}"), a.no_wait)
}

fn cmd_rollback(cfg: &Config, stage: &str, reason: Option<String>, no_wait: bool) -> Result<i32> {
    if stage != "staging" && stage != "production" {
        bail!("unknown stage {stage:?}: use `staging` or `production`");
    }
    let repo = ModelRepo::open(&cfg.repo.path).map_err(|e| anyhow!("{e}"))?;
    let file = ApprovalFile {
        action: "rollback".into(),
        version: None,
        commit: None,
        stage: Some(stage.into()),
        approver: approver_identity(&repo),
        created: format_ts(crate::registry::now_ts().ceil()),
        reason: Some(reason.unwrap_or_else(|| format!("rollback {stage} via rcfops"))),
        via: Some("cli".into()),
    };
    submit_file(cfg, &file, no_wait)
}

/// Writes an approval file and waits for the agent's decision on it.
fn submit_file(cfg: &Config, file: &ApprovalFile, no_wait: bool) -> Result<i32> {
    let path = gates::write_file(&cfg.approvals.dir, file)?;
    println!("wrote {}", path.display());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    wait_for_decision(cfg, &format!("file:{name}@"), no_wait)
}

fn print_log_line(line: &str, run: Option<i64>, json: bool) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
        return;
    };
    if let Some(n) = run {
        if v["span"]["run"].as_i64() != Some(n) {
            return;
        }
    }
    if json {
        println!("{line}");
        return;
    }
    let mut extra = String::new();
    if let Some(r) = v["span"]["run"].as_i64() {
        extra.push_str(&format!(
            " run={r} commit={}",
            v["span"]["commit"].as_str().unwrap_or("")
        ));
    }
    println!(
        "{} {:>5} {}{}",
        v["timestamp"].as_str().unwrap_or(""),
        v["level"].as_str().unwrap_or(""),
        v["message"].as_str().unwrap_or(""),
        extra
    );
}

fn cmd_logs(cfg: &Config, follow: bool, run: Option<i64>, json: bool) -> Result<i32> {
    let path = cfg.log_path();
    let mut f = loop {
        match std::fs::File::open(&path) {
            Ok(f) => break f,
            Err(_) if follow => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => bail!(
                "cannot open the log {}: {e}; has the agent run yet?",
                path.display()
            ),
        }
    };
    let mut reader = std::io::BufReader::new(&mut f);
    let mut line = String::new();
    let stdout = std::io::stdout();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            if !follow {
                return Ok(0);
            }
            stdout.lock().flush()?;
            std::thread::sleep(Duration::from_millis(200));
            // Reopen if the file was truncated or replaced.
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
        print_log_line(line.trim_end(), run, json);
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

fn cmd_eval(a: EvalArgs) -> Result<i32> {
    let bytes =
        std::fs::read(&a.data).with_context(|| format!("cannot read {}", a.data.display()))?;
    let name = a.data.display().to_string();
    let t0 = std::time::Instant::now();
    let data =
        pipeline::load_labelled(&bytes, &name, &a.label, &a.exclude).map_err(|e| anyhow!(e))?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
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
    let forest = rcf_core::ForestConfig {
        num_trees: a.trees,
        num_samples_per_tree: a.samples,
        seed: a.seed,
        time_decay: 0.0,
    };
    let pre = PreprocessSpec {
        scaling,
        log_transform: a.log.clone(),
    };
    let t = pipeline::train_and_evaluate(&data, &pre, forest, a.test_fraction, a.split_seed, 0)
        .map_err(|e| anyhow!(e))?;
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
        });
        println!("{}", serde_json::to_string(&doc)?);
        return Ok(0);
    }
    let m = &t.metrics;
    println!(
        "data        {name}: {} rows, {} features",
        data.x.nrows(),
        data.features.len()
    );
    println!(
        "model       {} trees × {} samples, seed {}, scaling {}",
        a.trees, a.samples, a.seed, a.scaling
    );
    println!(
        "split       train {} rows, evaluate {} rows ({} anomalies){}",
        m.train_rows,
        m.test_rows,
        m.test_anomalies,
        if a.test_fraction == 0.0 {
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
    Ok(0)
}

fn cmd_stream(a: StreamArgs) -> Result<i32> {
    let bytes =
        std::fs::read(&a.data).with_context(|| format!("cannot read {}", a.data.display()))?;
    let name = a.data.display().to_string();
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
