//! The evaluation as pictures need it (pure): ROC and precision–recall curves, the score
//! histogram of normal and fraud records, and the confusion counts at the threshold. Stored
//! with each version at registration, so the dashboard draws them without the held-out rows.

use serde::{Deserialize, Serialize};

/// Points kept per curve at most (evenly spaced along the curve, ends included).
pub const MAX_POINTS: usize = 201;
/// Histogram bins between the lowest and the highest evaluation score.
pub const HISTOGRAM_BINS: usize = 40;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curves {
    /// `(false-positive rate, true-positive rate)`, from (0, 0) to (1, 1).
    pub roc: Vec<(f64, f64)>,
    /// `(recall, precision)`, by falling threshold.
    pub pr: Vec<(f64, f64)>,
    pub histogram: Histogram,
    pub threshold: f64,
    pub confusion: Confusion,
    pub records: usize,
    pub frauds: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// `bins + 1` edges.
    pub edges: Vec<f64>,
    pub normal: Vec<u64>,
    pub fraud: Vec<u64>,
}

/// At the threshold (a score at or above it is an alert).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    pub true_positives: u64,
    pub false_positives: u64,
    pub true_negatives: u64,
    pub false_negatives: u64,
}

/// Keeps at most `max` points, evenly spaced by index, the first and last included.
fn thin(points: Vec<(f64, f64)>, max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 2 {
        return points;
    }
    let n = points.len();
    (0..max).map(|i| points[i * (n - 1) / (max - 1)]).collect()
}

pub fn curves(scores: &[f64], labels: &[bool], threshold: f64) -> Curves {
    let n = scores.len().min(labels.len());
    let frauds = labels[..n].iter().filter(|l| **l).count();
    let normals = n - frauds;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut roc = vec![(0.0, 0.0)];
    let mut pr = Vec::new();
    let mut i = 0;
    while i < n {
        // One point per distinct score: ties move together.
        let s = scores[order[i]];
        while i < n && scores[order[i]] == s {
            if labels[order[i]] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        let tpr = if frauds == 0 {
            0.0
        } else {
            tp as f64 / frauds as f64
        };
        let fpr = if normals == 0 {
            0.0
        } else {
            fp as f64 / normals as f64
        };
        roc.push((fpr, tpr));
        pr.push((tpr, tp as f64 / (tp + fp) as f64));
    }
    let (lo, hi) = scores[..n]
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), s| {
            (l.min(*s), h.max(*s))
        });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let width = (hi - lo) / HISTOGRAM_BINS as f64;
    let edges: Vec<f64> = (0..=HISTOGRAM_BINS)
        .map(|k| lo + k as f64 * width)
        .collect();
    let (mut normal, mut fraud) = (vec![0u64; HISTOGRAM_BINS], vec![0u64; HISTOGRAM_BINS]);
    let mut confusion = Confusion {
        true_positives: 0,
        false_positives: 0,
        true_negatives: 0,
        false_negatives: 0,
    };
    for (s, l) in scores[..n].iter().zip(&labels[..n]) {
        let b = (((s - lo) / width) as usize).min(HISTOGRAM_BINS - 1);
        if *l {
            fraud[b] += 1;
        } else {
            normal[b] += 1;
        }
        match (*s >= threshold, *l) {
            (true, true) => confusion.true_positives += 1,
            (true, false) => confusion.false_positives += 1,
            (false, false) => confusion.true_negatives += 1,
            (false, true) => confusion.false_negatives += 1,
        }
    }
    Curves {
        roc: thin(roc, MAX_POINTS),
        pr: thin(pr, MAX_POINTS),
        histogram: Histogram {
            edges,
            normal,
            fraud,
        },
        threshold,
        confusion,
        records: n,
        frauds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_perfect_ranking_and_a_tie() {
        let scores = [0.9, 0.8, 0.3, 0.2];
        let labels = [true, true, false, false];
        let c = curves(&scores, &labels, 0.5);
        assert_eq!(
            c.roc,
            vec![(0.0, 0.0), (0.0, 0.5), (0.0, 1.0), (0.5, 1.0), (1.0, 1.0)]
        );
        assert_eq!(c.pr[..2], [(0.5, 1.0), (1.0, 1.0)]);
        assert_eq!(
            c.confusion,
            Confusion {
                true_positives: 2,
                false_positives: 0,
                true_negatives: 2,
                false_negatives: 0
            }
        );
        assert_eq!(c.histogram.normal.iter().sum::<u64>(), 2);
        assert_eq!(c.histogram.fraud.iter().sum::<u64>(), 2);
        assert_eq!(*c.histogram.fraud.last().unwrap(), 1);
        // Tied scores are one step, whatever their order.
        let t = curves(&[0.5, 0.5, 0.1], &[true, false, false], 0.4);
        assert_eq!(t.roc, vec![(0.0, 0.0), (0.5, 1.0), (1.0, 1.0)]);
    }

    #[test]
    fn long_curves_are_thinned_to_the_limit_with_their_ends() {
        let scores: Vec<f64> = (0..5000).map(|i| i as f64).collect();
        let labels: Vec<bool> = (0..5000).map(|i| i % 7 == 0).collect();
        let c = curves(&scores, &labels, 4000.0);
        assert_eq!(c.roc.len(), MAX_POINTS);
        assert_eq!(c.roc[0], (0.0, 0.0));
        assert_eq!(*c.roc.last().unwrap(), (1.0, 1.0));
        assert_eq!(c.pr.len(), MAX_POINTS);
        assert_eq!(c.histogram.edges.len(), HISTOGRAM_BINS + 1);
        assert_eq!(c.records, 5000);
    }
}
