//! Champion/challenger at registration: is the candidate better than the version a stage
//! serves, on the same held-out records?
//!
//! The champion (the version production serves when the run starts, and the staging version
//! when that differs) scores the candidate's held-out rows with its own features and its own
//! threshold; the result is the champion's metrics on those rows, the deltas (candidate −
//! champion) and the Spearman rank agreement of the two score lists. When the champion cannot
//! be scored on this data (a feature it needs is not in the file, a value it cannot
//! represent), the result says "not comparable" and why: never a silent skip. Pure
//! computation.

use ndarray::Axis;
use serde::{Deserialize, Serialize};

use super::data::Table;
use super::metrics::Metrics;
use crate::model::Model;

/// Candidate − champion, on the candidate's held-out rows (each model at its own threshold).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    pub roc_auc: f64,
    pub pr_auc: f64,
    pub recall: f64,
    pub precision: f64,
}

/// The comparison of a candidate with one champion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Comparison {
    Comparable {
        version: i64,
        /// The champion's metrics on the candidate's held-out rows.
        metrics: Metrics,
        delta: Delta,
        /// Spearman correlation of the two score lists.
        rank_agreement: f64,
    },
    NotComparable {
        version: i64,
        comparable: bool,
        reason: String,
    },
}

impl Comparison {
    pub fn version(&self) -> i64 {
        match self {
            Comparison::Comparable { version, .. } | Comparison::NotComparable { version, .. } => {
                *version
            }
        }
    }

    pub fn delta(&self) -> Option<&Delta> {
        match self {
            Comparison::Comparable { delta, .. } => Some(delta),
            Comparison::NotComparable { .. } => None,
        }
    }

    /// One line for logs and the status table: `vs v1: ROC-AUC +0.0123, PR-AUC -0.0301`.
    pub fn summary(&self) -> String {
        match self {
            Comparison::Comparable { version, delta, .. } => format!(
                "vs v{version}: ROC-AUC {:+.4}, PR-AUC {:+.4}, recall {:+.4}, precision {:+.4}",
                delta.roc_auc, delta.pr_auc, delta.recall, delta.precision
            ),
            Comparison::NotComparable {
                version, reason, ..
            } => format!("vs v{version}: not comparable ({reason})"),
        }
    }
}

/// What is stored with a candidate: the comparison with production's version and, when
/// staging serves another one, with staging's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Champions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production: Option<Comparison>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging: Option<Comparison>,
}

/// The candidate's held-out rows: their indices in the table, labels and candidate scores.
pub struct HeldOut<'a> {
    pub rows: &'a [usize],
    pub labels: &'a [bool],
    pub scores: &'a [f64],
    pub metrics: &'a Metrics,
}

/// Scores the candidate's held-out rows with `champion` (version `version`) and compares.
pub fn compare(version: i64, champion: &Model, table: &Table, held: &HeldOut) -> Comparison {
    let not = |reason: String| Comparison::NotComparable {
        version,
        comparable: false,
        reason,
    };
    let mut idx = Vec::with_capacity(champion.header.features.len());
    for f in &champion.header.features {
        match table.column_index(f) {
            Some(i) => idx.push(i),
            None => {
                return not(format!(
                    "v{version} uses feature {f:?}, which this commit's data does not have"
                ))
            }
        }
    }
    let x = table
        .values
        .select(Axis(0), held.rows)
        .select(Axis(1), &idx);
    let flat: Vec<f64> = x.iter().copied().collect();
    let scores = match champion.try_score_rows(&flat, held.rows.len()) {
        Ok(s) => s,
        Err((r, j, raw)) => {
            return not(format!(
                "v{version} cannot score line {} (column {:?} = {raw:e})",
                held.rows[r] + 2,
                champion.header.features[j]
            ))
        }
    };
    let m = Metrics::evaluate(&scores, held.labels, champion.header.threshold, 0);
    let c = held.metrics;
    Comparison::Comparable {
        version,
        delta: Delta {
            roc_auc: c.roc_auc - m.roc_auc,
            pr_auc: c.pr_auc - m.pr_auc,
            recall: c.recall - m.recall,
            precision: c.precision - m.precision,
        },
        metrics: m,
        rank_agreement: spearman(held.scores, &scores),
    }
}

/// Ranks (1-based, ties get the mean of their ranks).
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = mean;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation of two equally long lists (NaN when either is constant).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        cov += (x - ma) * (y - mb);
        va += (x - ma).powi(2);
        vb += (y - mb).powi(2);
    }
    cov / (va * vb).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_is_rank_correlation() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 300.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // Ties take their mean rank: [1, 2.5, 2.5, 4] against [1, 2, 3, 4].
        let r = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]);
        assert!((r - 0.9486832980505138).abs() < 1e-12, "{r}");
        assert!(spearman(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
    }

    fn trained(features: &[&str]) -> (Table, super::super::Trained) {
        // A cloud of normal points and a few far ones, 3 columns + label.
        let n = 400;
        let mut values = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let far = i % 40 == 0;
            let v = (i as f64 * 0.37).sin();
            values.extend([v, (i as f64 * 0.11).cos(), if far { 9.0 } else { v * 0.5 }]);
            values.push(if far { 1.0 } else { 0.0 });
            labels.push(far);
        }
        let table = Table {
            columns: vec!["a".into(), "b".into(), "c".into(), "label".into()],
            values: ndarray::Array2::from_shape_vec((n, 4), values).unwrap(),
        };
        let idx: Vec<usize> = features
            .iter()
            .map(|f| table.column_index(f).unwrap())
            .collect();
        let data = super::super::Dataset {
            features: features.iter().map(|f| f.to_string()).collect(),
            x: table.values.select(Axis(1), &idx),
            labels,
        };
        let pre = super::super::spec::PreprocessSpec {
            scaling: super::super::spec::Scaling::None,
            log_transform: vec![],
        };
        let forest = rcf_core::ForestConfig {
            num_trees: 50,
            num_samples_per_tree: 64,
            seed: 1,
            time_decay: 0.0,
        };
        let t = super::super::train_and_evaluate(&data, &pre, forest, 0.3, 7, 0).unwrap();
        (table, t)
    }

    #[test]
    fn a_champion_is_scored_with_its_own_features() {
        let (table, champion) = trained(&["a", "b", "c"]);
        let (_, candidate) = trained(&["a", "b"]);
        let held = HeldOut {
            rows: &candidate.held_out.rows,
            labels: &candidate.held_out.labels,
            scores: &candidate.held_out.scores,
            metrics: &candidate.metrics,
        };
        let c = compare(1, &champion.model, &table, &held);
        let Comparison::Comparable { metrics, delta, .. } = &c else {
            panic!("{c:?}")
        };
        // Same split: the champion's metrics on these rows are its own evaluation metrics.
        assert_eq!(metrics.roc_auc, champion.metrics.roc_auc);
        assert!(
            delta.roc_auc < 0.0,
            "the candidate lost the feature that finds them: {c:?}"
        );

        // A table without a column the champion needs: not comparable, and why.
        let mut narrow = table.clone();
        narrow.columns[2] = "renamed".into();
        let c = compare(1, &champion.model, &narrow, &held);
        assert_eq!(
            c,
            Comparison::NotComparable {
                version: 1,
                comparable: false,
                reason: "v1 uses feature \"c\", which this commit's data does not have".into(),
            }
        );
    }

    #[test]
    fn the_json_shapes_are_the_contract() {
        let m = Metrics {
            roc_auc: 0.9,
            pr_auc: 0.3,
            threshold: 1.2,
            precision: 0.2,
            recall: 0.4,
            f1: 0.27,
            test_rows: 10,
            test_anomalies: 2,
            train_rows: 0,
        };
        let c = Comparison::Comparable {
            version: 1,
            metrics: m,
            delta: Delta {
                roc_auc: 0.01,
                pr_auc: -0.02,
                recall: 0.0,
                precision: 0.0,
            },
            rank_agreement: 0.9,
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["delta"]["pr_auc"], -0.02);
        assert_eq!(v["metrics"]["roc_auc"], 0.9);
        let back: Comparison = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
        let n = Comparison::NotComparable {
            version: 2,
            comparable: false,
            reason: "no".into(),
        };
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"version": 2, "comparable": false, "reason": "no"})
        );
        assert_eq!(serde_json::from_value::<Comparison>(v).unwrap(), n);
        assert_eq!(
            c.summary(),
            "vs v1: ROC-AUC +0.0100, PR-AUC -0.0200, recall +0.0000, precision +0.0000"
        );
    }
}
