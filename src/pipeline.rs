//! One pipeline run: load → validate → preprocess → train → evaluate → gate → register.
//!
//! Owns the semantics of a run and of `rcfops eval` (both go through [`train_and_evaluate`]).
//! A run reads `pipeline.toml` and the data from the commit object (git2 tree → blob), never
//! from the working tree. Every step is recorded in the registry with its status, duration and
//! error; a failed step or gate registers nothing. The artifact is written (atomically,
//! content-addressed) before the version row, so a registered version always has its file.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ndarray::{Array2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use crate::artifacts::{sha256_hex, ArtifactStore};
use crate::data::Table;
use crate::domain::{RunStatus, StepStatus};
use crate::metrics::{self, Metrics};
use crate::model::{Model, ModelHeader};
use crate::preprocess::Preprocessor;
use crate::registry::{NewVersion, Registry};
use crate::repo::ModelRepo;
use crate::spec::{DataSpec, PipelineSpec, PreprocessSpec, SPEC_FILE};

/// Raw features and labels selected from a table.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub features: Vec<String>,
    pub x: Array2<f64>,
    pub labels: Vec<bool>,
}

/// Selects the feature and label columns named by the spec; errors name the file and column.
pub fn select(table: &Table, data: &DataSpec, file: &str) -> Result<Dataset, String> {
    let label_idx = table.column_index(&data.label).ok_or_else(|| {
        format!(
            "{file}: label column {:?} is not in the header (columns: {})",
            data.label,
            table.columns.join(", ")
        )
    })?;
    for c in &data.exclude {
        if table.column_index(c).is_none() {
            return Err(format!(
                "{file}: excluded column {c:?} is not in the header"
            ));
        }
    }
    let features: Vec<String> = match &data.features {
        Some(f) => {
            for c in f {
                if table.column_index(c).is_none() {
                    return Err(format!(
                        "{file}: feature column {c:?} (from {SPEC_FILE}) is not in the header (columns: {})",
                        table.columns.join(", ")
                    ));
                }
            }
            f.clone()
        }
        None => table
            .columns
            .iter()
            .filter(|c| **c != data.label && !data.exclude.contains(c))
            .cloned()
            .collect(),
    };
    if features.is_empty() {
        return Err(format!(
            "{file}: no feature columns left after removing the label and `exclude`"
        ));
    }
    let idx: Vec<usize> = features
        .iter()
        .map(|f| table.column_index(f).expect("checked"))
        .collect();
    let x = table.values.select(Axis(1), &idx);
    let mut labels = Vec::with_capacity(table.rows());
    for (r, v) in table.values.column(label_idx).iter().enumerate() {
        match *v {
            0.0 => labels.push(false),
            1.0 => labels.push(true),
            other => {
                return Err(format!(
                    "{file}: line {}, column {:?}: label must be 0 or 1, found {other}",
                    r + 2,
                    data.label
                ))
            }
        }
    }
    Ok(Dataset {
        features,
        x,
        labels,
    })
}

/// Parses a labelled CSV and selects every column but `label` and `exclude` as features:
/// what `rcfops eval` and the quality benchmarks load, with the pipeline's own checks.
pub fn load_labelled(
    bytes: &[u8],
    file: &str,
    label: &str,
    exclude: &[String],
) -> Result<Dataset, String> {
    let table = Table::parse_csv(bytes, file).map_err(|e| e.to_string())?;
    select(
        &table,
        &DataSpec {
            path: file.to_string(),
            label: label.to_string(),
            features: None,
            exclude: exclude.to_vec(),
            max_bytes: u64::MAX,
        },
        file,
    )
}

/// Held-out records the staging tests send to the live endpoint, with the scores evaluation
/// gave them.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct StagingSample {
    pub records: Vec<Vec<f64>>,
    pub scores: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timings {
    pub preprocess_ms: f64,
    pub train_ms: f64,
    pub score_ms: f64,
    pub total_ms: f64,
}

pub struct Trained {
    pub model: Model,
    pub metrics: Metrics,
    pub sample: StagingSample,
    pub timings: Timings,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Stratified split: returns (train rows, test rows). `test_fraction == 0` → all rows in both.
pub fn split(labels: &[bool], test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    if test_fraction <= 0.0 {
        let all: Vec<usize> = (0..labels.len()).collect();
        return (all.clone(), all);
    }
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for class in [false, true] {
        let mut rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        rows.shuffle(&mut rng);
        let n_test = ((rows.len() as f64) * test_fraction).round() as usize;
        let n_test = n_test.min(rows.len().saturating_sub(1));
        test.extend_from_slice(&rows[..n_test]);
        train.extend_from_slice(&rows[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// Trains on the training split and evaluates on the held-out split.
pub fn train_and_evaluate(
    data: &Dataset,
    pre: &PreprocessSpec,
    forest: rcf_core::ForestConfig,
    test_fraction: f64,
    split_seed: u64,
    sample_size: usize,
) -> Result<Trained, String> {
    let total = Instant::now();
    forest.validate().map_err(|e| e.to_string())?;
    for c in &pre.log_transform {
        if !data.features.contains(c) {
            return Err(format!(
                "{SPEC_FILE}: `log_transform` names {c:?}, which is not a feature column"
            ));
        }
    }
    let (train_rows, test_rows) = split(&data.labels, test_fraction, split_seed);
    if train_rows.is_empty() {
        return Err("no rows left for training".into());
    }
    let test_labels: Vec<bool> = test_rows.iter().map(|&i| data.labels[i]).collect();
    let anomalies = test_labels.iter().filter(|&&l| l).count();
    if anomalies == 0 || anomalies == test_labels.len() {
        return Err(format!(
            "the evaluation split has {anomalies} anomalies among {} rows; the label column needs both 0 and 1 rows to measure the model",
            test_labels.len()
        ));
    }
    let t = Instant::now();
    let x_train_raw = data.x.select(Axis(0), &train_rows);
    let x_test_raw = data.x.select(Axis(0), &test_rows);
    let pp = Preprocessor::fit(
        x_train_raw.view(),
        &data.features,
        pre.scaling,
        &pre.log_transform,
    );
    let x_train = pp.transform(x_train_raw.view());
    if let Some(((r, j), v)) = x_train.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(out_of_range(
            &data.features[j],
            train_rows[r],
            x_train_raw[[r, j]],
            *v,
        ));
    }
    let preprocess_ms = ms(t);

    let t = Instant::now();
    let forest = rcf_core::Forest::fit(x_train.view(), forest).map_err(|e| e.to_string())?;
    let train_ms = ms(t);
    crate::failpoint::hit("run.mid-train");

    let t = Instant::now();
    let train_scores = forest.score_batch_parallel(x_train.view(), 2);
    let mean = train_scores.iter().sum::<f64>() / train_scores.len() as f64;
    let std = (train_scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>()
        / train_scores.len() as f64)
        .sqrt();
    let threshold = metrics::three_sigma_threshold(&train_scores);
    let model = Model {
        header: ModelHeader {
            features: data.features.clone(),
            preprocessor: pp,
            threshold,
            train_score_mean: mean,
            train_score_std: std,
        },
        forest,
    };
    let flat: Vec<f64> = x_test_raw.iter().copied().collect();
    let scores = model
        .try_score_rows(&flat, test_rows.len())
        .map_err(|(r, j, raw)| out_of_range(&data.features[j], test_rows[r], raw, f32::INFINITY))?;
    let score_ms = ms(t);

    let roc = metrics::roc_auc(&scores, &test_labels).unwrap_or(f64::NAN);
    let pr = metrics::average_precision(&scores, &test_labels).unwrap_or(f64::NAN);
    let (precision, recall, f1) = metrics::at_threshold(&scores, &test_labels, threshold);
    let metrics = Metrics {
        roc_auc: roc,
        pr_auc: pr,
        threshold,
        precision,
        recall,
        f1,
        test_rows: test_rows.len(),
        test_anomalies: anomalies,
        train_rows: train_rows.len(),
    };

    // Staging sample: every held-out anomaly up to half the sample, then normals, in row order.
    let mut pick: Vec<usize> = (0..test_rows.len())
        .filter(|&i| test_labels[i])
        .take(sample_size / 2)
        .collect();
    pick.extend(
        (0..test_rows.len())
            .filter(|&i| !test_labels[i])
            .take(sample_size.saturating_sub(pick.len())),
    );
    pick.sort_unstable();
    let sample = StagingSample {
        records: pick.iter().map(|&i| x_test_raw.row(i).to_vec()).collect(),
        scores: pick.iter().map(|&i| scores[i]).collect(),
    };
    Ok(Trained {
        model,
        metrics,
        sample,
        timings: Timings {
            preprocess_ms,
            train_ms,
            score_ms,
            total_ms: ms(total),
        },
    })
}

/// The error for a value the model cannot represent after preprocessing. `row` is the data row
/// (0-based; line = row + 2 with the header on line 1).
fn out_of_range(feature: &str, row: usize, raw: f64, scaled: f32) -> String {
    format!(
        "line {}, column {feature:?}: {raw:e} becomes {scaled} after preprocessing, outside the model's 32-bit range (±3.4e38); fix the value or log-transform the column",
        row + 2
    )
}

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

    let dataset = steps.run("validate", || {
        Table::parse_csv(&data_bytes, &spec.data.path)
            .map_err(|e| e.to_string())
            .and_then(|t| select(&t, &spec.data, &spec.data.path))
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

    steps.run("gate", || gate(&spec, &trained.metrics))?;

    let digest = steps.run("store", || {
        env.store
            .put(&trained.model.to_bytes())
            .map_err(|e| format!("cannot write the model artifact: {e}"))
    })?;

    crate::failpoint::hit("run.after-artifact");
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
    };
    let (version, new) = steps.run("register", || {
        let registered = reg.register_version(run, &new).map_err(|e| e.to_string())?;
        crate::failpoint::hit("run.after-register");
        Ok(registered)
    })?;
    Ok(Outcome::Registered { version, new })
}

/// Applies the spec's gate; the error lists every failed condition.
pub fn gate(spec: &PipelineSpec, m: &Metrics) -> Result<(), String> {
    let mut failed = Vec::new();
    let checks = [
        ("roc_auc", m.roc_auc, spec.gate.min_roc_auc),
        ("pr_auc", m.pr_auc, spec.gate.min_pr_auc),
        ("recall", m.recall, spec.gate.min_recall),
        ("precision", m.precision, spec.gate.min_precision),
    ];
    for (name, value, min) in checks {
        if let Some(min) = min {
            if value.is_nan() || value < min {
                failed.push(format!("{name} {value:.4} < {min}"));
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "gate failed: {} (thresholds from {SPEC_FILE} [gate])",
            failed.join(", ")
        ))
    }
}
