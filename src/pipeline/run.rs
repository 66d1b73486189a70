//! One pipeline run: `load → validate → train → gate → store → register`, each step recorded
//! in the registry, with a cancel check at every step boundary.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::champion::{compare, Champions, Comparison, HeldOut};
use super::data::Table;
use super::gate::{gate, gate_vs_production};
use super::spec::{PipelineSpec, SPEC_FILE};
use super::train::Trained;
use super::train::{ms, select, train_and_evaluate};
use crate::artifacts::{sha256_hex, ArtifactStore};
use crate::domain::{RunStatus, Stage, StepStatus};
use crate::registry::{NewVersion, Registry};
use crate::repo::ModelRepo;

/// A request to stop a run at the next step boundary, with the reason recorded.
#[derive(Debug, Default)]
pub struct Cancel {
    flag: AtomicBool,
    shutdown: AtomicBool,
    reason: Mutex<String>,
}

impl Cancel {
    pub fn cancel(&self, reason: String) {
        *self.reason.lock().unwrap_or_else(|p| p.into_inner()) = reason;
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Stops the run because the agent is stopping: it stays runnable for the next start.
    pub fn interrupt(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.cancel("agent shutting down".into());
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    fn outcome(&self) -> Outcome {
        if self.shutdown.load(Ordering::SeqCst) {
            Outcome::Interrupted
        } else {
            Outcome::Skipped(
                self.reason
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            )
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Registered {
        version: i64,
        new: bool,
    },
    Failed(String),
    Skipped(String),
    /// Stopped by the agent's shutdown; left for the next start to mark and redo.
    Interrupted,
}

pub struct RunEnv<'a> {
    pub registry: &'a Registry,
    pub store: &'a ArtifactStore,
    pub repo_path: &'a std::path::Path,
    pub staging_sample: usize,
}

/// Why a run stopped before registering.
enum Stop {
    /// A step failed (or its record could not be written); the message names the step.
    Failed(String),
    /// Cancelled at a step boundary: superseded, or the agent is stopping.
    Cancelled(Outcome),
}

/// Runs the steps of one run: each checks the cancel flag first, is recorded as Running, then
/// Succeeded or Failed with its duration and error. A registry write that fails fails the run.
struct Steps<'a> {
    reg: &'a Registry,
    run: i64,
    cancel: &'a Cancel,
}

impl Steps<'_> {
    fn record(
        &self,
        name: &str,
        status: StepStatus,
        started: f64,
        ms: Option<f64>,
        error: Option<&str>,
    ) -> Result<(), Stop> {
        self.reg
            .record_step(self.run, name, status, started, ms, error)
            .map_err(|e| Stop::Failed(format!("{name}: cannot record the step: {e}")))
    }

    fn run<T>(&self, name: &str, body: impl FnOnce() -> Result<T, String>) -> Result<T, Stop> {
        if self.cancel.is_cancelled() {
            return Err(Stop::Cancelled(self.cancel.outcome()));
        }
        let started = crate::registry::now_ts();
        let t = Instant::now();
        self.record(name, StepStatus::Running, started, None, None)?;
        let r = body();
        let d = ms(t);
        match r {
            Ok(v) => {
                self.record(name, StepStatus::Succeeded, started, Some(d), None)?;
                tracing::info!(step = name, ms = format!("{d:.1}"), "step {name} done");
                Ok(v)
            }
            Err(e) => {
                self.record(name, StepStatus::Failed, started, Some(d), Some(&e))?;
                Err(Stop::Failed(format!("{name}: {e}")))
            }
        }
    }
}

/// Executes run `run` for `commit`, recording everything; never panics on bad input.
pub fn execute(env: &RunEnv, run: i64, commit: &str, cancel: &Arc<Cancel>) -> Outcome {
    let short = &commit[..commit.len().min(12)];
    let span = tracing::info_span!("run", run, commit = short);
    let _enter = span.enter();
    tracing::info!("run started");
    let outcome = match execute_steps(env, run, commit, cancel) {
        Ok(o) | Err(Stop::Cancelled(o)) => o,
        Err(Stop::Failed(msg)) => Outcome::Failed(msg),
    };
    let rec = match &outcome {
        Outcome::Registered { version, new } => {
            if *new {
                tracing::info!(version, "registered v{version} as PendingManualApproval");
            } else {
                tracing::info!(
                    version,
                    "commit was already registered as v{version}; nothing registered twice"
                );
            }
            Ok(())
        }
        Outcome::Failed(msg) => {
            tracing::error!("run failed: {msg}");
            env.registry.finish_run(run, RunStatus::Failed, Some(msg))
        }
        Outcome::Skipped(why) => {
            tracing::info!("run skipped: {why}");
            env.registry.finish_run(run, RunStatus::Skipped, Some(why))
        }
        Outcome::Interrupted => {
            tracing::warn!("run interrupted by shutdown; it will run again at the next start");
            Ok(())
        }
    };
    if let Err(e) = rec {
        tracing::error!("cannot record the run's end: {e}");
    }
    outcome
}

fn execute_steps(
    env: &RunEnv,
    run: i64,
    commit: &str,
    cancel: &Arc<Cancel>,
) -> Result<Outcome, Stop> {
    let reg = env.registry;
    let steps = Steps { reg, run, cancel };

    let (spec, spec_bytes, data_bytes, author) = steps.run("load", || {

        (|| {
            let repo = ModelRepo::open(env.repo_path).map_err(|e| e.to_string())?;
            let info = repo.commit_info(commit).map_err(|e| e.to_string())?;
            let spec_bytes = repo
                .read_file(commit, SPEC_FILE)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{SPEC_FILE} is not in commit {}", &commit[..12]))?;
            let text = std::str::from_utf8(&spec_bytes)
                .map_err(|_| format!("{SPEC_FILE} is not valid UTF-8"))?;
            let spec = PipelineSpec::parse(text).map_err(|e| e.to_string())?;
            if let Some(size) = repo
                .file_size(commit, &spec.data.path)
                .map_err(|e| e.to_string())?
            {
                if size > spec.data.max_bytes {
                    return Err(format!(
                        "data file {:?} is {size} bytes, which is larger than the limit of {} bytes ([data] max_bytes in {SPEC_FILE})",
                        spec.data.path, spec.data.max_bytes
                    ));
                }
            }
            let data = repo
                .read_file(commit, &spec.data.path)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    format!(
                        "data file {:?} (from {SPEC_FILE} [data] path) is not in commit {}; commit it or fix the path",
                        spec.data.path,
                        &commit[..12]
                    )
                })?;
            crate::failpoint::hit("run.after-load");
            Ok((spec, spec_bytes, data, info.author_email))
        })()
    })?;

    let (table, dataset) = steps.run("validate", || {
        let table = Table::parse_csv(&data_bytes, &spec.data.path).map_err(|e| e.to_string())?;
        let dataset = select(&table, &spec.data, &spec.data.path)?;
        Ok((table, dataset))
    })?;

    let trained = steps.run("train", || {
        let path = &spec.data.path;
        train_and_evaluate(
            &dataset,
            &spec.preprocess,
            spec.forest_config(),
            spec.evaluation.test_fraction,
            spec.evaluation.split_seed,
            env.staging_sample,
        )
        .map_err(|e| {
            if e.starts_with("line ") {
                format!("{path}: {e}")
            } else {
                e
            }
        })
    })?;
    tracing::info!(
        roc_auc = trained.metrics.roc_auc,
        pr_auc = trained.metrics.pr_auc,
        threshold = trained.metrics.threshold,
        "evaluation: ROC-AUC {:.4}, PR-AUC {:.4}",
        trained.metrics.roc_auc,
        trained.metrics.pr_auc
    );

    let champions = steps.run("compare", || Ok(champions(env, &table, &trained)))?;
    for c in [&champions.production, &champions.staging]
        .into_iter()
        .flatten()
    {
        tracing::info!(
            champion = c.version(),
            "champion/challenger: {}",
            c.summary()
        );
    }
    drop(table);

    steps.run("gate", || {
        gate(&spec, &trained.metrics)?;
        gate_vs_production(&spec, &champions)
    })?;

    let digest = steps.run("store", || {
        env.store
            .put(&trained.model.to_bytes())
            .map_err(|e| format!("cannot write the model artifact: {e}"))
    })?;

    crate::failpoint::hit("run.after-artifact");
    let baseline = monitoring_baseline(&spec, &dataset, &trained);
    let new = NewVersion {
        model_group: spec.project.name.clone(),
        commit: commit.to_string(),
        author_email: author,
        spec_sha256: sha256_hex(&spec_bytes),
        data_sha256: sha256_hex(&data_bytes),
        hyperparameters: serde_json::json!({
            "num_trees": spec.model.num_trees,
            "num_samples_per_tree": spec.model.num_samples_per_tree,
            "seed": spec.model.seed,
            "feature_dim": trained.model.dim(),
            "features": trained.model.header.features,
            "scaling": spec.preprocess.scaling,
            "log_transform": spec.preprocess.log_transform,
            "test_fraction": spec.evaluation.test_fraction,
        }),
        metrics: serde_json::to_value(&trained.metrics).expect("metrics serialise"),
        artifact_sha256: digest,
        staging_test: serde_json::to_value(&trained.sample).expect("sample serialises"),
        champion: serde_json::to_value(&champions).expect("comparisons serialise"),
        baseline: Some(baseline),
        curves: Some(super::curves::curves(
            &trained.held_out.scores,
            &trained.held_out.labels,
            trained.model.header.threshold,
        )),
    };
    let (version, new) = steps.run("register", || {
        let registered = reg.register_version(run, &new).map_err(|e| e.to_string())?;
        crate::failpoint::hit("run.after-register");
        Ok(registered)
    })?;
    Ok(Outcome::Registered { version, new })
}

/// What Model Monitor compares live traffic with: the training rows' raw features and the
/// evaluation scores.
fn monitoring_baseline(
    spec: &PipelineSpec,
    dataset: &super::train::Dataset,
    trained: &Trained,
) -> crate::monitor::drift::Baseline {
    let (train_rows, _) = super::train::split(
        &dataset.labels,
        spec.evaluation.test_fraction,
        spec.evaluation.split_seed,
    );
    let train: Vec<f64> = train_rows
        .iter()
        .flat_map(|&r| dataset.x.row(r).to_vec())
        .collect();
    crate::monitor::drift::Baseline::build(
        &dataset.features,
        &train,
        &trained.held_out.scores,
        trained.model.header.threshold,
        trained.metrics.roc_auc,
        trained.metrics.pr_auc,
    )
}

/// Compares the candidate with the version production serves now and, when it differs, with
/// the staging version. A champion whose artifact cannot be read is "not comparable".
fn champions(env: &RunEnv, table: &Table, trained: &Trained) -> Champions {
    let held = HeldOut {
        rows: &trained.held_out.rows,
        labels: &trained.held_out.labels,
        scores: &trained.held_out.scores,
        metrics: &trained.metrics,
    };
    let against = |stage: Stage| -> Option<Comparison> {
        let n = match env.registry.deployed(stage) {
            Ok(n) => n?,
            Err(e) => {
                return Some(Comparison::NotComparable {
                    version: 0,
                    comparable: false,
                    reason: format!("the {stage} version cannot be read: {e}"),
                })
            }
        };
        let model = env
            .registry
            .version(n)
            .map_err(|e| e.to_string())
            .and_then(|v| v.ok_or_else(|| format!("v{n} is not in the registry")))
            .and_then(|v| env.store.get(&v.artifact_sha256))
            .and_then(|bytes| crate::model::Model::from_bytes(&bytes));
        Some(match model {
            Ok(m) => compare(n, &m, table, &held),
            Err(e) => Comparison::NotComparable {
                version: n,
                comparable: false,
                reason: format!("the artifact of v{n} cannot be loaded: {e}"),
            },
        })
    };
    let production = against(Stage::Production);
    let staging = against(Stage::Staging)
        .filter(|s| production.as_ref().map(|p| p.version()) != Some(s.version()));
    Champions {
        production,
        staging,
    }
}
