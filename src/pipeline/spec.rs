//! The pipeline spec: `pipeline.toml` in the model repo.
//!
//! Owns parsing and validating the spec text (as read from a commit) into a [`PipelineSpec`].
//! It never reads files: the caller hands it the blob's text, so a run can only see what the
//! commit contains. Errors name `pipeline.toml`, the line and the key.

use serde::{Deserialize, Serialize};

use crate::config::line_col;

/// Name of the spec file at the root of the model repo.
pub const SPEC_FILE: &str = "pipeline.toml";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    #[serde(default)]
    pub project: ProjectSpec,
    pub data: DataSpec,
    #[serde(default)]
    pub preprocess: PreprocessSpec,
    #[serde(default)]
    pub model: ModelSpec,
    #[serde(default)]
    pub evaluation: EvaluationSpec,
    #[serde(default)]
    pub gate: GateSpec,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectSpec {
    /// Model package group; endpoints are named `<name>-staging` and `<name>-prod`.
    pub name: String,
}

/// The model package group when `[project] name` is not set.
pub const DEFAULT_PROJECT: &str = "rcf-model";

impl Default for ProjectSpec {
    fn default() -> Self {
        ProjectSpec {
            name: DEFAULT_PROJECT.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// CSV path inside the repo.
    pub path: String,
    /// 0/1 label column (evaluation only; never a feature).
    pub label: String,
    /// Feature columns in order; `None` = every column but the label and `exclude`.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Largest data file a run loads (bytes); larger files fail the run before loading.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
}

fn default_max_bytes() -> u64 {
    100 * 1024 * 1024
}

/// Per-column scaling before the forest (see `crate::model::preprocess` for the formulas and why
/// `auto` is the default).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    /// Median / inter-quartile range: robust to the outliers the model looks for.
    Robust,
    /// Mean / standard deviation.
    Standard,
    /// Raw values.
    None,
    /// The default: median / IQR, except for columns where one value fills a quarter or more
    /// of the rows (their IQR is degenerate), which get the standard deviation.
    #[default]
    Auto,
}

impl Scaling {
    /// The name used in `pipeline.toml` and by `rcfops eval --scaling`.
    pub fn name(self) -> &'static str {
        match self {
            Scaling::Robust => "robust",
            Scaling::Standard => "standard",
            Scaling::None => "none",
            Scaling::Auto => "auto",
        }
    }

    /// Parses a name as written in `pipeline.toml`.
    pub fn from_name(name: &str) -> Option<Scaling> {
        [
            Scaling::Auto,
            Scaling::Robust,
            Scaling::Standard,
            Scaling::None,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PreprocessSpec {
    pub scaling: Scaling,
    /// Columns transformed with `sign(x)·ln(1+|x|)` before scaling (heavy-tailed columns).
    pub log_transform: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSpec {
    pub num_trees: usize,
    pub num_samples_per_tree: usize,
    pub seed: u64,
}

impl Default for ModelSpec {
    fn default() -> Self {
        ModelSpec {
            num_trees: 100,
            num_samples_per_tree: 256,
            seed: 42,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluationSpec {
    /// Share of rows held out for evaluation (stratified by label).
    pub test_fraction: f64,
    pub split_seed: u64,
}

impl Default for EvaluationSpec {
    fn default() -> Self {
        EvaluationSpec {
            test_fraction: 0.3,
            split_seed: 7,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GateSpec {
    pub min_roc_auc: Option<f64>,
    pub min_pr_auc: Option<f64>,
    pub min_recall: Option<f64>,
    pub min_precision: Option<f64>,
    /// Bars relative to the version production serves when the run starts.
    pub vs_production: Option<VsProduction>,
}

/// `[gate] vs_production = { min_roc_auc_delta = …, min_pr_auc_delta = … }`: the candidate's
/// metrics minus production's, on the candidate's held-out rows, must reach these.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct VsProduction {
    pub min_roc_auc_delta: Option<f64>,
    pub min_pr_auc_delta: Option<f64>,
}

/// A spec error, phrased for the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

impl PipelineSpec {
    pub fn parse(text: &str) -> Result<PipelineSpec, SpecError> {
        // Where notifications go is the agent's to say, never a commit's.
        if let Some(i) = text.lines().position(|l| {
            let t = l.trim_start().trim_start_matches('[').trim_start();
            l.trim_start().starts_with('[')
                && (t.starts_with("notify]") || t.starts_with("notify."))
        }) {
            return Err(SpecError(format!(
                "{SPEC_FILE}:{}: [notify]: notification sinks are set in the agent's config.toml, never by a commit (a commit could send the team's events anywhere); remove the table",
                i + 1
            )));
        }
        let spec: PipelineSpec = toml::from_str(text).map_err(|e| {
            let place = e
                .span()
                .map(|s| {
                    let (l, c) = line_col(text, s.start);
                    format!("{SPEC_FILE}:{l}:{c}")
                })
                .unwrap_or_else(|| SPEC_FILE.to_string());
            SpecError(format!("{place}: {}", e.message().trim_end()))
        })?;
        let err = |key: &str, msg: String| {
            let line = text
                .lines()
                .position(|l| {
                    let t = l.trim_start();
                    t.starts_with(key) && t[key.len()..].trim_start().starts_with('=')
                })
                .map(|i| format!(":{}", i + 1))
                .unwrap_or_default();
            SpecError(format!("{SPEC_FILE}{line}: `{key}`: {msg}"))
        };
        let cfg = spec.forest_config();
        if let Err(e) = cfg.validate() {
            let key = if !(50..=1000).contains(&spec.model.num_trees) {
                "num_trees"
            } else {
                "num_samples_per_tree"
            };
            return Err(err(key, e.to_string()));
        }
        let tf = spec.evaluation.test_fraction;
        if !(0.0..1.0).contains(&tf) || tf.is_nan() {
            return Err(err(
                "test_fraction",
                format!("{tf} is out of range: use a share in [0, 1), e.g. 0.3"),
            ));
        }
        for (key, v) in [
            ("min_roc_auc", spec.gate.min_roc_auc),
            ("min_pr_auc", spec.gate.min_pr_auc),
            ("min_recall", spec.gate.min_recall),
            ("min_precision", spec.gate.min_precision),
        ] {
            if let Some(v) = v {
                if !(0.0..=1.0).contains(&v) {
                    return Err(err(key, format!("{v} is out of range [0, 1]")));
                }
            }
        }
        if let Some(vs) = &spec.gate.vs_production {
            for (key, v) in [
                ("min_roc_auc_delta", vs.min_roc_auc_delta),
                ("min_pr_auc_delta", vs.min_pr_auc_delta),
            ] {
                if let Some(v) = v {
                    if !(-1.0..=1.0).contains(&v) {
                        return Err(err(
                            "vs_production",
                            format!("{key} = {v} is out of range [-1, 1]"),
                        ));
                    }
                }
            }
        }
        if spec.data.path.trim().is_empty() {
            return Err(err("path", "the data path is empty".into()));
        }
        if spec.data.label.trim().is_empty() {
            return Err(err("label", "the label column name is empty".into()));
        }
        if let Some(f) = &spec.data.features {
            if f.is_empty() {
                return Err(err(
                    "features",
                    "the feature list is empty; list columns or remove the key to use all".into(),
                ));
            }
            if f.iter().any(|c| c == &spec.data.label) {
                return Err(err(
                    "features",
                    format!("the label column {:?} cannot be a feature", spec.data.label),
                ));
            }
            let mut seen = std::collections::HashSet::new();
            for c in f {
                if !seen.insert(c) {
                    return Err(err("features", format!("column {c:?} is listed twice")));
                }
            }
        }
        let name = &spec.project.name;
        if name.is_empty()
            || name.len() > 50
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            || name.starts_with('-')
        {
            return Err(err(
                "name",
                format!("project name {name:?} must be 1-50 characters of letters, digits and '-' (it names the endpoints)"),
            ));
        }
        Ok(spec)
    }

    pub fn forest_config(&self) -> rcf_core::ForestConfig {
        rcf_core::ForestConfig {
            num_trees: self.model.num_trees,
            num_samples_per_tree: self.model.num_samples_per_tree,
            seed: self.model.seed,
            time_decay: 0.0,
        }
    }

    pub fn staging_endpoint_name(&self) -> String {
        crate::domain::Stage::Staging.endpoint_name(&self.project.name)
    }

    pub fn production_endpoint_name(&self) -> String {
        crate::domain::Stage::Production.endpoint_name(&self.project.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "[data]\npath = \"d.csv\"\nlabel = \"y\"\n";

    #[test]
    fn minimal_spec_gets_sagemaker_defaults() {
        let s = PipelineSpec::parse(OK).unwrap();
        assert_eq!(s.model.num_trees, 100);
        assert_eq!(s.model.num_samples_per_tree, 256);
        assert_eq!(s.preprocess.scaling, Scaling::Auto);
    }

    #[test]
    fn scaling_names_round_trip() {
        for name in ["auto", "robust", "standard", "none"] {
            let s =
                PipelineSpec::parse(&format!("{OK}[preprocess]\nscaling = \"{name}\"\n")).unwrap();
            assert_eq!(s.preprocess.scaling.name(), name);
            assert_eq!(Scaling::from_name(name), Some(s.preprocess.scaling));
        }
        assert_eq!(Scaling::from_name("minmax"), None);
    }

    #[test]
    fn out_of_range_trees_names_key_and_line() {
        let e = PipelineSpec::parse(&format!("{OK}[model]\nnum_trees = 5\n"))
            .unwrap_err()
            .0;
        assert!(e.starts_with("pipeline.toml:5: `num_trees`"), "{e}");
    }

    #[test]
    fn syntax_error_names_line() {
        let e = PipelineSpec::parse("[data\npath=1").unwrap_err().0;
        assert!(e.starts_with("pipeline.toml:1"), "{e}");
    }

    #[test]
    fn label_as_feature_is_refused() {
        let e = PipelineSpec::parse(
            &OK.replace("label = \"y\"", "label = \"y\"\nfeatures = [\"a\", \"y\"]"),
        )
        .unwrap_err()
        .0;
        assert!(e.contains("cannot be a feature"), "{e}");
    }
}
