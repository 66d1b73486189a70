//! Evaluation metrics for a scored, labelled hold-out set: ROC-AUC, PR-AUC (average
//! precision, as scikit-learn computes it) and precision / recall / F1 at a threshold.
//! Pure computation.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Metrics {
    pub roc_auc: f64,
    pub pr_auc: f64,
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub test_rows: usize,
    pub test_anomalies: usize,
    pub train_rows: usize,
}

impl Metrics {
    /// The evaluation metrics of `scores` against `labels`, at `threshold`, for a model
    /// trained on `train_rows` rows.
    pub fn evaluate(scores: &[f64], labels: &[bool], threshold: f64, train_rows: usize) -> Metrics {
        let (precision, recall, f1) = at_threshold(scores, labels, threshold);
        Metrics {
            roc_auc: roc_auc(scores, labels).unwrap_or(f64::NAN),
            pr_auc: average_precision(scores, labels).unwrap_or(f64::NAN),
            threshold,
            precision,
            recall,
            f1,
            test_rows: scores.len(),
            test_anomalies: labels.iter().filter(|&&l| l).count(),
            train_rows,
        }
    }
}

/// ROC-AUC with ties counted half (Mann-Whitney U). `None` when a class is missing.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let n = scores.len();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] {
                rank_sum_pos += avg_rank;
            }
        }
        i = j + 1;
    }
    let pos = labels.iter().filter(|&&l| l).count() as f64;
    let neg = n as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return None;
    }
    Some((rank_sum_pos - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// Average precision (area under the precision-recall curve, step-wise, ties grouped).
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let pos = labels.iter().filter(|&&l| l).count();
    if pos == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp, mut ap, mut prev_recall) = (0usize, 0usize, 0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j < idx.len() && scores[idx[j]] == scores[idx[i]] {
            if labels[idx[j]] {
                tp += 1;
            } else {
                fp += 1;
            }
            j += 1;
        }
        let recall = tp as f64 / pos as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
        i = j;
    }
    Some(ap)
}

/// Precision, recall and F1 when every score `>= threshold` is flagged.
pub fn at_threshold(scores: &[f64], labels: &[bool], threshold: f64) -> (f64, f64, f64) {
    let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
    for (&s, &l) in scores.iter().zip(labels) {
        match (s >= threshold, l) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fneg += 1,
            _ => {}
        }
    }
    let p = if tp + fp == 0 {
        0.0
    } else {
        tp as f64 / (tp + fp) as f64
    };
    let r = if tp + fneg == 0 {
        0.0
    } else {
        tp as f64 / (tp + fneg) as f64
    };
    let f1 = if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    };
    (p, r, f1)
}

/// SageMaker's threshold convention: mean + 3 standard deviations of the training scores.
pub fn three_sigma_threshold(train_scores: &[f64]) -> f64 {
    let n = train_scores.len().max(1) as f64;
    let mean = train_scores.iter().sum::<f64>() / n;
    let var = train_scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n;
    mean + 3.0 * var.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_inverted_rankings() {
        let l = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &l), Some(1.0));
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &l), Some(0.0));
        assert_eq!(roc_auc(&[0.5; 4], &l), Some(0.5));
        assert_eq!(average_precision(&[0.1, 0.2, 0.8, 0.9], &l), Some(1.0));
    }

    #[test]
    fn average_precision_matches_sklearn_example() {
        // sklearn docs: average_precision_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.8333...
        let ap = average_precision(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert!((ap - 0.833_333_333).abs() < 1e-6, "{ap}");
        let auc = roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert!((auc - 0.75).abs() < 1e-12);
    }

    #[test]
    fn threshold_counts() {
        let (p, r, f) = at_threshold(&[0.1, 0.9, 0.95, 0.2], &[false, false, true, true], 0.5);
        assert_eq!((p, r), (0.5, 0.5));
        assert!((f - 0.5).abs() < 1e-12);
        assert_eq!(roc_auc(&[1.0], &[true]), None);
    }
}
