//! The metric gate of `pipeline.toml` (`[gate] min_roc_auc`, ...): a version below any bar is
//! not registered. Not to be confused with approvals, which come after registration.

use super::champion::{Champions, Comparison};
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

/// Applies `[gate] vs_production`: the deltas against production's version must reach the
/// bars. Nothing in production passes (there is nothing to beat); a champion that cannot be
/// compared fails, with the reason (a gate is never skipped silently).
pub fn gate_vs_production(spec: &PipelineSpec, champions: &Champions) -> Result<(), String> {
    let Some(vs) = &spec.gate.vs_production else {
        return Ok(());
    };
    let delta = match &champions.production {
        None => return Ok(()),
        Some(c @ Comparison::NotComparable { .. }) => {
            return Err(format!(
                "gate failed: [gate] vs_production needs a comparison with production, but {}",
                c.summary()
            ))
        }
        Some(Comparison::Comparable { delta, .. }) => delta,
    };
    let mut failed = Vec::new();
    for (name, value, min) in [
        ("roc_auc", delta.roc_auc, vs.min_roc_auc_delta),
        ("pr_auc", delta.pr_auc, vs.min_pr_auc_delta),
    ] {
        if let Some(min) = min {
            if value.is_nan() || value < min {
                failed.push(format!("{name} delta {value:+.4} < {min:+}"));
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "gate failed against production: {} ({}; thresholds from {SPEC_FILE} [gate] vs_production)",
            failed.join(", "),
            champions.production.as_ref().expect("compared").summary()
        ))
    }
}
