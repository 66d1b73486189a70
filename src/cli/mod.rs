//! The `rcfops` command line: argument parsing here, one file per command group below.
//!
//! Owns what a user types and sees: tables a person reads at a glance, `--json` shapes for
//! scripts, and errors that say what to do. Commands read the registry directly; the only
//! writes are `init`, `run` (a foreground pipeline run), and approvals, which go through the
//! same annotated tags or approval files a user could create by hand.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use clap::{Args, Parser, Subcommand};

mod approvals;
mod artifact;
mod eval;
mod logs;
pub mod monitor;
mod notify;
mod run;
mod score;
pub mod serve;
mod status;

pub use approvals::with_signing_enabled;
pub use eval::read_in_halves;
pub use logs::{human_log_line, parse_since};
pub use status::{status_doc, StatusDoc, VersionDoc};

use approvals::{cmd_approval, cmd_rollback, cmd_signing_setup};
use eval::{cmd_eval, cmd_stream};
use logs::cmd_logs;
use notify::{cmd_notify_list, cmd_notify_retry, cmd_notify_test};
use run::{cmd_init, cmd_run, cmd_up};
use score::cmd_score;
use serve::cmd_serve;
use status::{cmd_audit, cmd_runs, cmd_status};

use crate::agent;
use crate::artifacts::ArtifactStore;
use crate::config::Config;
use crate::domain::{Action, Stage};
use crate::pipeline::spec::{PreprocessSpec, Scaling};
use crate::pipeline::{self, Cancel, Outcome, RunEnv};
use crate::registry::{format_ts, Registry};
use crate::repo::ModelRepo;

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
        stage: Stage,
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
    /// Notifications: `list` the outbox, `retry ID` a dead letter, `test SINK`.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// One stage endpoint alone, as a container runs it (`/ping`, `/invocations`, port 8080,
    /// the model under /opt/ml/model).
    Serve(serve::ServeArgs),
    /// Model artifacts: `fetch URI --sha256 HEX --dest DIR` (for a pod's initContainer).
    #[command(subcommand)]
    Artifact(ArtifactCommand),
    /// Model Monitor's report: drift windows, statistics, verdicts, drifted features and
    /// live quality, per stage and version.
    Monitor {
        #[arg(long)]
        stage: Option<Stage>,
        #[arg(long)]
        version: Option<i64>,
        /// Windows shown per version (the most recent).
        #[arg(long, default_value_t = 20)]
        windows: usize,
        #[arg(long)]
        json: bool,
    },
    /// Merge a SageMaker ground-truth JSON-lines file with the captured requests.
    Label {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The audit trail: every transition, who, when, how.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ArtifactCommand {
    /// Fetch an artifact (file:// or http(s)://), verify its SHA-256 and write it into DIR
    /// atomically; a wrong digest or a cut-off download leaves nothing behind.
    Fetch(artifact::FetchArgs),
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

#[derive(Subcommand, Debug)]
pub enum NotifyCommand {
    /// Events and where each stands with each sink: pending, delivered or dead.
    List {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Only events with a delivery in this state (pending, delivered, dead).
        #[arg(long)]
        state: Option<crate::domain::DeliveryState>,
        #[arg(long)]
        json: bool,
    },
    /// Send event ID again to every sink that has not got it (a 410-disabled sink is enabled).
    Retry { id: i64 },
    /// Send a test event to SINK now and print the receiver's answer.
    Test { sink: String },
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
    /// Print NAB's form: score / log2(samples) (8 at 256), clipped to [0, 1] (raw only).
    #[arg(long)]
    pub normalized: bool,
    /// What each line is: `alert` (the alert detector: anomaly likelihood of the score,
    /// out-of-range rule, refractory period; a value in [0, 1]) or `raw` (the RCF score).
    #[arg(long, value_enum, default_value_t = Detector::Alert)]
    pub detector: Detector,
}

/// What `rcfops stream` prints a line for each point.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detector {
    /// The alert detector (`stream::alert`): one value in [0, 1] a point.
    Alert,
    /// The raw RCF score.
    Raw,
}

/// An operation that was tried and failed (exit code 1), as opposed to a mistake in how
/// rcfops was called or configured (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);

/// The exit code for an error that ended a command: 1 for a failed operation (the registry
/// failed, an endpoint could not be reached, ...), 2 for usage or configuration.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    let failed = e.downcast_ref::<Failed>().is_some()
        || e.chain()
            .any(|c| c.is::<Failed>() || c.is::<crate::registry::RegistryError>());
    if failed {
        1
    } else {
        2
    }
}

pub fn main_with(cli: Cli) -> Result<i32> {
    // A container has no config.toml: `serve` takes everything from its arguments.
    let command = match cli.command {
        Command::Serve(a) => return cmd_serve(a, cli.verbose),
        Command::Artifact(ArtifactCommand::Fetch(a)) => return artifact::cmd_artifact_fetch(a),
        c => c,
    };
    let cli = Cli { command, ..cli };
    let is_default = cli.config == Path::new("config.toml");
    let cfg = Config::load(&cli.config, is_default)?;
    match cli.command {
        Command::Init => cmd_init(&cfg, cli.verbose),
        Command::Up => cmd_up(cfg, cli.verbose),
        Command::Run { commit } => cmd_run(&cfg, commit, cli.verbose),
        Command::Status { json } => cmd_status(&cfg, json),
        Command::Runs { limit, json } => cmd_runs(&cfg, limit, json),
        Command::Approve(a) => cmd_approval(&cfg, Action::Approve, a),
        Command::Promote(a) => cmd_approval(&cfg, Action::Promote, a),
        Command::Reject(a) => cmd_approval(&cfg, Action::Reject, a),
        Command::Rollback {
            stage,
            reason,
            force,
            no_wait,
        } => cmd_rollback(&cfg, stage, reason, force, no_wait),
        Command::Logs(a) => cmd_logs(&cfg, a),
        Command::Score { stage, file } => cmd_score(&cfg, &stage, file),
        Command::Eval(a) => cmd_eval(a),
        Command::Signing(SigningCommand::Setup { key, email }) => {
            cmd_signing_setup(&cli.config, &cfg, &key, email)
        }
        Command::Stream(a) => cmd_stream(a),
        Command::Audit { limit, json } => cmd_audit(&cfg, limit, json),
        Command::Monitor {
            stage,
            version,
            windows,
            json,
        } => monitor::cmd_monitor(&cfg, stage, version, windows, json),
        Command::Label { file, json } => monitor::cmd_label(&cfg, &file, json),
        Command::Serve(_) | Command::Artifact(_) => {
            unreachable!("handled before the config is read")
        }
        Command::Notify(NotifyCommand::List { limit, state, json }) => {
            cmd_notify_list(&cfg, limit, state, json)
        }
        Command::Notify(NotifyCommand::Retry { id }) => cmd_notify_retry(&cfg, id),
        Command::Notify(NotifyCommand::Test { sink }) => cmd_notify_test(&cfg, &sink),
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

fn parse_n(s: &str) -> Result<i64> {
    s.trim_start_matches('v')
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| anyhow!("{s:?} is not a version number (use N or vN, e.g. 3)"))
}
