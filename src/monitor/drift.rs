//! Drift, pure: the baseline a version is registered with, a window of live records, the
//! statistics of a closed window against the baseline, and the verdict with hysteresis.

use serde::{Deserialize, Serialize};

use super::stats::{binomial_check, ks, psi, psi_noise, Bins};
use crate::domain::Verdict;

/// Quantile bins per feature and for the scores.
pub const BINS: usize = 10;
/// Evaluation scores kept for the KS test (evenly spaced order statistics beyond this).
pub const MAX_BASELINE_SCORES: usize = 4096;

/// What live traffic is compared with, stored with the version at registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub threshold: f64,
    /// Evaluation records the distribution was taken from.
    pub eval_records: usize,
    /// The evaluation scores, sorted (order statistics when there were more than
    /// [`MAX_BASELINE_SCORES`]).
    pub scores: Vec<f64>,
    pub score_bins: Bins,
    /// Share of evaluation records scoring at or above the threshold.
    pub expected_alert_rate: f64,
    pub eval_pr_auc: f64,
    pub eval_roc_auc: f64,
    /// Per-feature quantile bins of the training data, in the model's feature order.
    pub features: Vec<FeatureBins>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureBins {
    pub name: String,
    pub bins: Bins,
}

impl Baseline {
    /// The baseline of a model: `train` is the raw training data (row-major, `features.len()`
    /// columns), `eval_scores` the evaluation scores.
    pub fn build(
        features: &[String],
        train: &[f64],
        eval_scores: &[f64],
        threshold: f64,
        eval_roc_auc: f64,
        eval_pr_auc: f64,
    ) -> Baseline {
        let d = features.len().max(1);
        let rows = train.len() / d;
        let features = features
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let mut col: Vec<f64> = (0..rows).map(|r| train[r * d + j]).collect();
                FeatureBins {
                    name: name.clone(),
                    bins: Bins::fit(&mut col, BINS),
                }
            })
            .collect();
        let mut sorted = eval_scores.to_vec();
        let score_bins = Bins::fit(&mut sorted, BINS);
        let n = sorted.len();
        let alerts = sorted.iter().filter(|s| **s >= threshold).count();
        let scores = if n > MAX_BASELINE_SCORES {
            (0..MAX_BASELINE_SCORES)
                .map(|i| sorted[(i * n + n / 2) / MAX_BASELINE_SCORES])
                .collect()
        } else {
            sorted
        };
        Baseline {
            threshold,
            eval_records: n,
            scores,
            score_bins,
            expected_alert_rate: if n == 0 {
                0.0
            } else {
                alerts as f64 / n as f64
            },
            eval_pr_auc,
            eval_roc_auc,
            features,
        }
    }
}

/// When a window closes and what its statistics must show for each verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// A window closes after this many records …
    pub window_records: usize,
    /// … or this long after it opened, once it has `min_records`.
    pub window_ms: i64,
    pub min_records: usize,
    pub psi_warn: f64,
    pub psi_alert: f64,
    /// KS: significance level, and the smallest statistic that counts at all.
    pub ks_alpha: f64,
    pub ks_min_effect: f64,
    /// Alert rate: outside the central `1 − alpha` binomial interval.
    pub rate_alpha_warn: f64,
    pub rate_alpha_alert: f64,
    /// Hysteresis: windows in a row at a level before the verdict rises to it, and below the
    /// verdict before it falls.
    pub raise_after: usize,
    pub clear_after: usize,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            window_records: 1000,
            window_ms: 10 * 60_000,
            min_records: 100,
            psi_warn: 0.1,
            psi_alert: 0.25,
            ks_alpha: 0.001,
            ks_min_effect: 0.1,
            rate_alpha_warn: 0.01,
            rate_alpha_alert: 0.001,
            raise_after: 2,
            clear_after: 3,
        }
    }
}

/// A window being filled: one stage, one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub opened_ms: i64,
    pub last_ms: i64,
    pub scores: Vec<f64>,
    pub alerts: u64,
    /// Per feature, the count of records in each baseline bin.
    pub feature_counts: Vec<Vec<u64>>,
    /// Records whose features could not be read back (counted, not binned).
    pub unreadable: u64,
}

impl Window {
    pub fn new(opened_ms: i64, baseline: &Baseline) -> Window {
        Window {
            opened_ms,
            last_ms: opened_ms,
            scores: Vec::new(),
            alerts: 0,
            feature_counts: baseline
                .features
                .iter()
                .map(|f| vec![0; f.bins.len()])
                .collect(),
            unreadable: 0,
        }
    }

    pub fn records(&self) -> usize {
        self.scores.len()
    }

    /// Adds one record: its score and, when readable, its raw features.
    pub fn add(&mut self, at_ms: i64, score: f64, features: Option<&[f64]>, baseline: &Baseline) {
        self.last_ms = self.last_ms.max(at_ms);
        self.scores.push(score);
        self.alerts += u64::from(score >= baseline.threshold);
        match features {
            Some(x) if x.len() == baseline.features.len() => {
                for ((counts, f), v) in self
                    .feature_counts
                    .iter_mut()
                    .zip(&baseline.features)
                    .zip(x)
                {
                    counts[f.bins.index(*v)] += 1;
                }
            }
            _ => self.unreadable += 1,
        }
    }

    /// Whether the window is complete at `now_ms`.
    pub fn is_full(&self, now_ms: i64, p: &Policy) -> bool {
        self.records() >= p.window_records
            || (self.records() >= p.min_records && now_ms - self.opened_ms >= p.window_ms)
    }
}

/// A closed window's statistics against the baseline, and the level they show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    pub records: usize,
    pub score_psi: f64,
    pub ks_statistic: f64,
    pub ks_p_value: f64,
    pub alert_rate: f64,
    pub expected_alert_rate: f64,
    /// The central interval of alert counts at `rate_alpha_alert`, as rates.
    pub alert_rate_interval: (f64, f64),
    pub alert_rate_p_value: f64,
    /// `(feature, psi)` for every feature, in model order.
    pub feature_psi: Vec<(String, f64)>,
    /// Features whose PSI reached the warning level (beyond chance), largest first.
    pub drifted_features: Vec<String>,
    /// `None`: fewer than `min_records` records, not judged.
    pub level: Option<Verdict>,
    /// Why the level is what it is, one phrase per statistic that moved.
    pub reasons: Vec<String>,
}

/// Judges a closed window.
pub fn judge(w: &Window, b: &Baseline, p: &Policy) -> WindowStats {
    let n = w.records();
    let mut score_counts = vec![0u64; b.score_bins.len()];
    for s in &w.scores {
        score_counts[b.score_bins.index(*s)] += 1;
    }
    let score_psi = psi(&b.score_bins.expected, &score_counts);
    let mut sorted = w.scores.clone();
    sorted.sort_unstable_by(f64::total_cmp);
    let (ks_statistic, ks_p_value) = ks(&b.scores, &sorted, b.eval_records, n);
    let rate = binomial_check(
        w.alerts,
        n as u64,
        b.expected_alert_rate,
        p.rate_alpha_alert,
    );
    let feature_psi: Vec<(String, f64)> = b
        .features
        .iter()
        .zip(&w.feature_counts)
        .map(|(f, c)| (f.name.clone(), psi(&f.bins.expected, c)))
        .collect();
    // A PSI counts only beyond what chance gives a window this small (and, for the features,
    // across all of them: Bonferroni over the feature count).
    let d = b.features.len().max(1) as f64;
    let score_floor = |alpha: f64| psi_noise(b.score_bins.len(), n, b.score_bins.n, alpha);
    let feature_floor =
        |f: &FeatureBins, alpha: f64| psi_noise(f.bins.len(), n, f.bins.n, alpha / d);
    let level_of = |v: f64, warn_floor: f64, alert_floor: f64| {
        if v >= p.psi_alert.max(alert_floor) {
            Some(Verdict::Alert)
        } else if v >= p.psi_warn.max(warn_floor) {
            Some(Verdict::Warn)
        } else {
            None
        }
    };
    let mut drifted: Vec<(&(String, f64), Verdict)> = b
        .features
        .iter()
        .zip(&feature_psi)
        .filter_map(|(f, fp)| {
            level_of(
                fp.1,
                feature_floor(f, p.rate_alpha_warn),
                feature_floor(f, p.rate_alpha_alert),
            )
            .map(|l| (fp, l))
        })
        .collect();
    drifted.sort_by(|a, b| b.0 .1.total_cmp(&a.0 .1));

    let mut level = Verdict::Ok;
    let mut reasons = Vec::new();
    let mut raise = |l: Verdict, why: String| {
        level = level.max(l);
        reasons.push(format!("{l}: {why}"));
    };
    if let Some(l) = level_of(
        score_psi,
        score_floor(p.rate_alpha_warn),
        score_floor(p.rate_alpha_alert),
    ) {
        raise(l, format!("score PSI {score_psi:.3}"));
    }
    if ks_p_value < p.ks_alpha && ks_statistic >= p.ks_min_effect {
        raise(
            Verdict::Alert,
            format!("score KS {ks_statistic:.3} (p = {ks_p_value:.1e})"),
        );
    } else if ks_p_value < p.ks_alpha && ks_statistic >= p.ks_min_effect / 2.0 {
        raise(
            Verdict::Warn,
            format!("score KS {ks_statistic:.3} (p = {ks_p_value:.1e})"),
        );
    }
    let alert_rate = if n == 0 {
        0.0
    } else {
        w.alerts as f64 / n as f64
    };
    let interval = (
        rate.low as f64 / n.max(1) as f64,
        rate.high as f64 / n.max(1) as f64,
    );
    let rate_phrase = || {
        format!(
            "alert rate {:.2}% outside {:.2}–{:.2}% (expected {:.2}%)",
            alert_rate * 100.0,
            interval.0 * 100.0,
            interval.1 * 100.0,
            b.expected_alert_rate * 100.0
        )
    };
    if rate.p_value < p.rate_alpha_alert {
        raise(Verdict::Alert, rate_phrase());
    } else if rate.p_value < p.rate_alpha_warn {
        raise(Verdict::Warn, rate_phrase());
    }
    for ((name, v), l) in &drifted {
        raise(*l, format!("feature {name} PSI {v:.3}"));
    }
    WindowStats {
        records: n,
        score_psi,
        ks_statistic,
        ks_p_value,
        alert_rate,
        expected_alert_rate: b.expected_alert_rate,
        alert_rate_interval: interval,
        alert_rate_p_value: rate.p_value,
        drifted_features: drifted.iter().map(|((n, _), _)| n.clone()).collect(),
        feature_psi,
        level: (n >= p.min_records).then_some(level),
        reasons,
    }
}

/// The stage's verdict after a window: it rises to a level once the last `raise_after`
/// judged windows all reached it, and falls once the last `clear_after` were all below the
/// current verdict (to the highest level among them). `recent` is newest last.
pub fn next_verdict(current: Verdict, recent: &[Verdict], p: &Policy) -> Verdict {
    let last = |k: usize| (recent.len() >= k.max(1)).then(|| &recent[recent.len() - k.max(1)..]);
    if let Some(w) = last(p.raise_after) {
        let floor = w.iter().copied().min().unwrap_or(Verdict::Ok);
        if floor > current {
            return floor;
        }
    }
    if let Some(w) = last(p.clear_after) {
        let top = w.iter().copied().max().unwrap_or(Verdict::Ok);
        if top < current {
            return top;
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::*;

    fn baseline() -> Baseline {
        // Two features uniform on [0, 1000), scores uniform on [0, 1) with threshold 0.95.
        let train: Vec<f64> = (0..10_000)
            .flat_map(|i| [(i % 1000) as f64, ((i * 7) % 1000) as f64])
            .collect();
        let scores: Vec<f64> = (0..10_000).map(|i| i as f64 / 10_000.0).collect();
        Baseline::build(&["a".into(), "b".into()], &train, &scores, 0.95, 0.9, 0.5)
    }

    fn window(
        b: &Baseline,
        n: usize,
        score: impl Fn(usize) -> f64,
        a: impl Fn(usize) -> f64,
    ) -> Window {
        let mut w = Window::new(0, b);
        for i in 0..n {
            w.add(
                i as i64,
                score(i),
                Some(&[a(i), ((i * 7) % 1000) as f64]),
                b,
            );
        }
        w
    }

    #[test]
    fn a_baseline_keeps_order_statistics_and_the_alert_rate() {
        let b = baseline();
        assert_eq!(b.eval_records, 10_000);
        assert_eq!(b.scores.len(), MAX_BASELINE_SCORES);
        assert!(b.scores.windows(2).all(|w| w[0] <= w[1]));
        assert!((b.expected_alert_rate - 0.05).abs() < 1e-9);
        assert_eq!(b.features.len(), 2);
        assert_eq!(b.features[0].bins.len(), BINS);
    }

    #[test]
    fn traffic_like_the_baseline_is_ok() {
        let b = baseline();
        let p = Policy::default();
        // A stride through [0, 1): the same distribution as the baseline.
        let w = window(
            &b,
            1000,
            |i| ((i * 3037) % 1000) as f64 / 1000.0,
            |i| ((i * 13) % 1000) as f64,
        );
        let s = judge(&w, &b, &p);
        assert_eq!(s.level, Some(Ok), "{s:?}");
        assert!(s.drifted_features.is_empty());
        assert!(s.score_psi < 0.01 && s.ks_statistic < 0.02, "{s:?}");
    }

    #[test]
    fn a_shifted_feature_is_named() {
        let b = baseline();
        let p = Policy::default();
        let w = window(
            &b,
            1000,
            |i| ((i * 3037) % 1000) as f64 / 1000.0,
            |i| 500.0 + ((i * 13) % 1000) as f64,
        );
        let s = judge(&w, &b, &p);
        assert_eq!(s.level, Some(Alert), "{s:?}");
        assert_eq!(s.drifted_features, vec!["a".to_string()]);
        assert!(
            s.reasons.iter().any(|r| r.contains("feature a PSI")),
            "{:?}",
            s.reasons
        );
    }

    #[test]
    fn a_burst_of_alerts_breaks_the_binomial_interval() {
        let b = baseline();
        let p = Policy::default();
        // 15% of records above the threshold instead of 5%.
        let w = window(
            &b,
            1000,
            |i| {
                if i % 100 < 15 {
                    0.99
                } else {
                    (i % 100) as f64 / 110.0
                }
            },
            |i| ((i * 13) % 1000) as f64,
        );
        let s = judge(&w, &b, &p);
        assert_eq!(s.level, Some(Alert));
        assert!(s.alert_rate_p_value < 1e-6);
        assert!(
            s.reasons.iter().any(|r| r.contains("alert rate 15.00%")),
            "{:?}",
            s.reasons
        );
        assert!(s.alert_rate_interval.1 < 0.15);
    }

    #[test]
    fn a_small_window_is_not_judged() {
        let b = baseline();
        let w = window(&b, 10, |_| 0.99, |_| 5.0);
        assert_eq!(judge(&w, &b, &Policy::default()).level, None);
        assert!(!w.is_full(1, &Policy::default()));
        assert!(!w.is_full(i64::MAX / 2, &Policy::default()));
        let full = window(&b, 100, |_| 0.5, |_| 5.0);
        assert!(full.is_full(10 * 60_000, &Policy::default()));
        assert!(!full.is_full(60_000, &Policy::default()));
    }

    #[test]
    fn hysteresis_rises_after_two_and_falls_after_three() {
        let p = Policy::default();
        assert_eq!(next_verdict(Ok, &[Alert], &p), Ok);
        assert_eq!(next_verdict(Ok, &[Ok, Alert, Alert], &p), Alert);
        assert_eq!(next_verdict(Ok, &[Warn, Alert], &p), Warn);
        assert_eq!(next_verdict(Alert, &[Alert, Ok, Ok], &p), Alert);
        assert_eq!(next_verdict(Alert, &[Ok, Ok, Ok], &p), Ok);
        assert_eq!(next_verdict(Alert, &[Warn, Ok, Warn], &p), Warn);
        assert_eq!(next_verdict(Warn, &[Warn, Ok, Ok], &p), Warn);
        let eager = Policy {
            raise_after: 1,
            ..Policy::default()
        };
        assert_eq!(next_verdict(Ok, &[Alert], &eager), Alert);
    }
}
