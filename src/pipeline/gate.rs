//! The metric gate of `pipeline.toml` (`[gate] min_roc_auc`, ...): a version below any bar is
//! not registered. Not to be confused with approvals, which come after registration.

use super::metrics::Metrics;
use super::spec::{PipelineSpec, SPEC_FILE};

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
