//! Streaming alerts on top of raw anomaly scores: `rcfops stream --detector alert`.
//!
//! A raw RCF score says how unusual a point is against the points before it; on its own it is
//! a poor alert: a noisy series scores high all the time, a quiet one fires on every blip, and
//! an event scores high for many points in a row. [`AlertDetector`] turns the raw score (in
//! [0, 1], e.g. [`super::nab_normalize`]) and the value itself into one output in [0, 1] per
//! point, in three layers:
//!
//! 1. **Anomaly likelihood** (the layer of Numenta's HTM detector): the raw scores are
//!    smoothed by a short moving average; a Gaussian is fitted to the averages of a long
//!    rolling window and re-fitted periodically; the likelihood is the Gaussian's CDF at the
//!    current average, so it measures how unusual the score is *for this series*. It is
//!    reported on a log scale, `ln(1 - likelihood + 1e-10) / ln(1e-10)`: 0.5 is a tail
//!    probability of 1e-5, 1 one of 1e-10. During the learning period (the first
//!    `learning_period + estimation_samples` points) the likelihood is 0.5 and nothing alerts.
//! 2. **Out of range**: a value beyond the running min/max by more than
//!    `out_of_range_tolerance` of the range outputs 1 (a new extreme is news even when the
//!    forest has seen a similar jump). The range is the one seen so far, or the series' range
//!    when it is known in advance ([`AlertDetector::with_input_range`]).
//! 3. **Refractory period**: after an alert (output ≥ `alert_threshold`), the likelihood's
//!    output for the next `refractory_period` points is held at or below the neutral value:
//!    one event, one alert. An out-of-range value still alerts (and starts a new period): the
//!    period exists because the moving average stays high for a while after an event, and a
//!    new extreme is a new fact that the range rule cannot repeat (each one widens the range).
//!
//! Pure computation: no I/O, no logging, no randomness; the same inputs give the same outputs.

use std::collections::VecDeque;

/// The settings of an [`AlertDetector`]. Each default is a published setting of HTM's
/// anomaly likelihood (or of its NAB detector) or follows from the others; none is fitted to a
/// data set.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    /// Smoothed scores kept for the Gaussian fit (8640: HTM's historic window, 30 days of
    /// 5-minute points).
    pub historic_window: usize,
    /// Raw scores in the short moving average (10: HTM's).
    pub averaging_window: usize,
    /// Points between two fits of the Gaussian (100: HTM's).
    pub reestimation_period: usize,
    /// Points at the start whose scores the fit leaves out (288: HTM's, one day of 5-minute
    /// points; it also covers the forest filling its 256 samples).
    pub learning_period: usize,
    /// Points after the learning period before the first fit (100: HTM's).
    pub estimation_samples: usize,
    /// Lower bound of the fitted variance (0.0003: HTM's, on the same [0, 1] score scale), so
    /// that a series whose score barely moves does not alert on every blip.
    pub min_variance: f64,
    /// A value more than this fraction of the range beyond the running min/max is out of range
    /// (0.05: HTM's NAB detector).
    pub out_of_range_tolerance: f64,
    /// An output at or above this is an alert (0.5: a tail probability of 1e-5 on the log
    /// scale, HTM's "red" likelihood 0.99999).
    pub alert_threshold: f64,
    /// Points after an alert whose likelihood alerts are suppressed (100: one re-estimation
    /// period, so the Gaussian has been re-fitted with the alert's scores before the next
    /// alert). Out-of-range values are never suppressed.
    pub refractory_period: usize,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            historic_window: 8640,
            averaging_window: 10,
            reestimation_period: 100,
            learning_period: 288,
            estimation_samples: 100,
            min_variance: 0.0003,
            out_of_range_tolerance: 0.05,
            alert_threshold: 0.5,
            refractory_period: 100,
        }
    }
}

impl AlertConfig {
    /// Checks every setting; errors are phrased for the user.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("historic_window", self.historic_window),
            ("averaging_window", self.averaging_window),
            ("reestimation_period", self.reestimation_period),
            ("estimation_samples", self.estimation_samples),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("{name} is 0: use at least 1"));
            }
        }
        if self.estimation_samples > self.historic_window {
            return Err(format!(
                "estimation_samples {} is larger than historic_window {}: the window must hold \
                 the points of the first fit",
                self.estimation_samples, self.historic_window
            ));
        }
        if !(self.min_variance.is_finite() && self.min_variance > 0.0) {
            return Err(format!(
                "min_variance {} is out of range: use a positive number (e.g. 0.0003)",
                self.min_variance
            ));
        }
        if !(self.out_of_range_tolerance.is_finite() && self.out_of_range_tolerance >= 0.0) {
            return Err(format!(
                "out_of_range_tolerance {} is out of range: use a fraction ≥ 0 (e.g. 0.05)",
                self.out_of_range_tolerance
            ));
        }
        if !(self.alert_threshold > 0.0 && self.alert_threshold <= 1.0) {
            return Err(format!(
                "alert_threshold {} is out of range: use a number in (0, 1]",
                self.alert_threshold
            ));
        }
        Ok(())
    }
}

/// The output during the learning period and the ceiling during a refractory period: a
/// likelihood of 0.5 on the log scale (about 0.030).
pub fn neutral() -> f64 {
    log_scale(0.5)
}

/// A tail probability on NAB's log scale: `ln(tail + 1e-10) / ln(1e-10)`, in [0, 1] (1 for a
/// tail probability of 0, 0.5 for 1e-5, about 0 for 1).
pub fn log_scale(tail: f64) -> f64 {
    const EPS: f64 = 1e-10;
    ((tail.clamp(0.0, 1.0) + EPS).ln() / EPS.ln()).clamp(0.0, 1.0)
}

/// What the detector made of one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertPoint {
    /// The raw score it was given, clipped to [0, 1].
    pub raw: f64,
    /// Mean of the last `averaging_window` raw scores.
    pub average: f64,
    /// The Gaussian's CDF at `average` (0.5 during the learning period).
    pub likelihood: f64,
    /// The value is beyond the range by more than the tolerance (never in the learning
    /// period).
    pub out_of_range: bool,
    /// The output is at or above the alert threshold.
    pub alert: bool,
    /// An alert that the refractory period held back.
    pub suppressed: bool,
    /// The detector's answer, in [0, 1]: 1 when out of range, else the likelihood's log
    /// score; at most [`neutral`] while suppressed.
    pub output: f64,
}

/// The streaming alert detector (see the module doc): push each point's value and raw score in
/// arrival order.
#[derive(Debug, Clone)]
pub struct AlertDetector {
    config: AlertConfig,
    /// Range known in advance (min, max), when given.
    input_range: Option<(f64, f64)>,
    seen: u64,
    /// The last `averaging_window` raw scores.
    recent: VecDeque<f64>,
    /// Smoothed scores after the learning period, the last `historic_window` of them.
    history: VecDeque<f64>,
    /// Fitted (mean, standard deviation) and the points since the fit.
    fit: Option<(f64, f64)>,
    since_fit: usize,
    min: f64,
    max: f64,
    /// Points since the last alert (None: no alert yet).
    since_alert: Option<u64>,
}

impl AlertDetector {
    /// A detector that learns the range as it goes (strictly streaming).
    pub fn new(config: AlertConfig) -> Result<AlertDetector, String> {
        config.validate()?;
        Ok(AlertDetector {
            recent: VecDeque::with_capacity(config.averaging_window),
            history: VecDeque::with_capacity(config.historic_window.min(1 << 16)),
            config,
            input_range: None,
            seen: 0,
            fit: None,
            since_fit: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            since_alert: None,
        })
    }

    /// A detector told the series' min and max in advance (NAB's `inputMin`/`inputMax`): the
    /// out-of-range tolerance is a fraction of that range from the first point on.
    pub fn with_input_range(
        config: AlertConfig,
        min: f64,
        max: f64,
    ) -> Result<AlertDetector, String> {
        if !(min.is_finite() && max.is_finite() && min <= max) {
            return Err(format!(
                "input range [{min}, {max}] is not a range: give finite min ≤ max"
            ));
        }
        let mut d = AlertDetector::new(config)?;
        d.input_range = Some((min, max));
        Ok(d)
    }

    pub fn config(&self) -> &AlertConfig {
        &self.config
    }

    /// Points pushed so far.
    pub fn points_seen(&self) -> u64 {
        self.seen
    }

    /// The point's value and its raw score in [0, 1] (clipped; NaN counts as 0), in arrival
    /// order.
    pub fn push(&mut self, value: f64, raw_score: f64) -> AlertPoint {
        let c = &self.config;
        let raw = if raw_score.is_nan() {
            0.0
        } else {
            raw_score.clamp(0.0, 1.0)
        };
        if self.recent.len() == c.averaging_window {
            self.recent.pop_front();
        }
        self.recent.push_back(raw);
        let average = self.recent.iter().sum::<f64>() / self.recent.len() as f64;

        let learning = self.seen < (c.learning_period + c.estimation_samples) as u64;
        let out_of_range = !learning && self.beyond_range(value);
        if value.is_finite() {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }

        let (likelihood, tail) = if learning {
            (0.5, 0.5)
        } else {
            if self.fit.is_none() || self.since_fit >= c.reestimation_period {
                self.fit = Some(fit_gaussian(&self.history, c.min_variance));
                self.since_fit = 0;
            }
            self.since_fit += 1;
            let (mean, std) = self.fit.expect("fitted above");
            let z = (average - mean) / std;
            (normal_cdf(z), normal_sf(z))
        };
        if self.seen >= c.learning_period as u64 {
            if self.history.len() == c.historic_window {
                self.history.pop_front();
            }
            self.history.push_back(average);
        }
        self.seen += 1;

        let score = if out_of_range { 1.0 } else { log_scale(tail) };
        let wants_alert = !learning && score >= c.alert_threshold;
        // An out-of-range value is never held back: the period is there for the likelihood,
        // whose moving average stays high for a while after one event, while a new extreme
        // moves the range, so the same jump cannot fire the rule twice.
        let refractory = !out_of_range
            && self
                .since_alert
                .is_some_and(|n| n < c.refractory_period as u64);
        let (alert, suppressed, output) = if wants_alert && refractory {
            (false, true, score.min(neutral()))
        } else if refractory {
            (false, false, score.min(neutral()))
        } else {
            (wants_alert, false, score)
        };
        self.since_alert = if alert {
            Some(0)
        } else {
            self.since_alert.map(|n| n + 1)
        };
        AlertPoint {
            raw,
            average,
            likelihood,
            out_of_range,
            alert,
            suppressed,
            output,
        }
    }

    fn beyond_range(&self, value: f64) -> bool {
        if !value.is_finite() || self.min > self.max {
            return false;
        }
        let span = match self.input_range {
            Some((lo, hi)) => hi - lo,
            None => self.max - self.min,
        };
        if span <= 0.0 {
            return false;
        }
        let tol = self.config.out_of_range_tolerance * span;
        value > self.max + tol || value < self.min - tol
    }
}

/// Mean and standard deviation (population; variance at least `min_variance`) of `xs`.
fn fit_gaussian(xs: &VecDeque<f64>, min_variance: f64) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.max(min_variance).sqrt())
}

/// P(Z > z) for a standard normal Z, accurate far into the tail.
fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// P(Z ≤ z) for a standard normal Z.
fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// The complementary error function, by the Chebyshev-fitted form
/// `t · exp(-x² + P(t))`, `t = 1 / (1 + |x| / 2)` (fractional error below 1.2e-7 everywhere,
/// so tail probabilities stay accurate where `1 - erf` would cancel).
fn erfc(x: f64) -> f64 {
    const C: [f64; 10] = [
        -1.265_512_23,
        1.000_023_68,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_203_98,
        1.488_515_87,
        -0.822_152_23,
        0.170_872_77,
    ];
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = C.iter().rev().fold(0.0, |acc, &c| acc * t + c);
    let r = t * (-z * z + poly).exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A quiet noisy score around 0.12 (what RCF gives ordinary points, normalised), from a
    /// fixed-seed generator.
    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                0.10 + 0.04 * ((s >> 11) as f64 / (1u64 << 53) as f64)
            })
            .collect()
    }

    fn run(det: &mut AlertDetector, values: &[f64], scores: &[f64]) -> Vec<AlertPoint> {
        values
            .iter()
            .zip(scores)
            .map(|(&v, &s)| det.push(v, s))
            .collect()
    }

    #[test]
    fn erfc_matches_known_values() {
        assert!((erfc(0.0) - 1.0).abs() < 1e-7);
        assert!((erfc(1.0) - 0.157_299_207).abs() < 1e-7);
        assert!((erfc(-1.0) - 1.842_700_793).abs() < 1e-7);
        // P(Z > 4.264891) = 1e-5: the alert threshold's z.
        let q = normal_sf(4.264_891);
        assert!((q / 1e-5 - 1.0).abs() < 1e-4, "{q}");
        assert!((log_scale(1e-5) - 0.5).abs() < 1e-4);
        assert!((neutral() - 0.0301).abs() < 1e-4);
    }

    #[test]
    fn the_learning_period_is_neutral() {
        let c = AlertConfig::default();
        let n = c.learning_period + c.estimation_samples;
        let mut det = AlertDetector::new(c).unwrap();
        // Wild values and scores: still neutral, no alert, no out-of-range.
        let values: Vec<f64> = (0..n).map(|i| (i * i) as f64).collect();
        let scores: Vec<f64> = (0..n).map(|i| (i % 3) as f64 / 2.0).collect();
        let out = run(&mut det, &values, &scores);
        assert!(out
            .iter()
            .all(|p| p.likelihood == 0.5 && p.output == neutral() && !p.alert && !p.out_of_range));
        // The first point after it is judged.
        let p = det.push(1e9, 1.0);
        assert!(p.out_of_range && p.alert && p.output == 1.0, "{p:?}");
    }

    #[test]
    fn a_score_spike_or_level_shift_raises_the_likelihood() {
        let scores = noise(3000, 1);
        let values = vec![5.0; 3000];
        let mut det = AlertDetector::new(AlertConfig::default()).unwrap();
        let quiet = run(&mut det, &values[..2000], &scores[..2000]);
        let before = quiet.last().unwrap().likelihood;
        assert!(
            quiet[400..].iter().all(|p| !p.alert),
            "noise alone never alerts"
        );
        // One high score lifts the 10-point average well past the fitted spread.
        let spike = det.push(5.0, 1.0);
        assert!(
            spike.likelihood > 0.999_99 && spike.alert,
            "{spike:?} vs {before}"
        );
        assert!(spike.output >= 0.5);
        // A lasting shift of the score level.
        let mut det = AlertDetector::new(AlertConfig::default()).unwrap();
        run(&mut det, &values[..2000], &scores[..2000]);
        let shifted: Vec<AlertPoint> = scores[2000..2010]
            .iter()
            .map(|s| det.push(5.0, s + 0.1))
            .collect();
        assert!(shifted.last().unwrap().likelihood > 0.999, "{shifted:?}");
        assert!(shifted.iter().any(|p| p.alert));
    }

    #[test]
    fn the_out_of_range_rule_fires() {
        let c = AlertConfig::default();
        let scores = noise(1000, 2);
        let values: Vec<f64> = (0..1000).map(|i| (i % 20) as f64).collect(); // range 0..19
        let mut det = AlertDetector::new(c.clone()).unwrap();
        run(&mut det, &values, &scores);
        // Within 5 % of the range (0.95): not out of range; well beyond: out of range even
        // though the raw score is ordinary.
        let p = det.push(19.9, 0.12);
        assert!(!p.out_of_range, "{p:?}");
        let p = det.push(25.0, 0.12);
        assert!(p.out_of_range && p.alert && p.output == 1.0, "{p:?}");
        // Inside the refractory period of that alert, a new extreme still alerts...
        let p = det.push(-30.0, 0.12);
        assert!(
            p.out_of_range && p.alert && !p.suppressed && p.output == 1.0,
            "{p:?}"
        );
        // ...while an ordinary value right after it is held at the neutral value.
        let p = det.push(5.0, 1.0);
        assert!(
            !p.out_of_range && !p.alert && p.output <= neutral(),
            "{p:?}"
        );
        // Known in advance: the tolerance is 5 % of the given range.
        let mut det = AlertDetector::with_input_range(c.clone(), 0.0, 100.0).unwrap();
        run(&mut det, &values, &scores);
        assert!(!det.push(23.0, 0.12).out_of_range, "within 5 of 19");
        assert!(!det.push(25.0, 0.12).out_of_range, "within 5 of 23");
        assert!(det.push(30.5, 0.12).out_of_range);
        assert!(AlertDetector::with_input_range(c, 2.0, 1.0)
            .unwrap_err()
            .contains("min ≤ max"));
    }

    #[test]
    fn the_refractory_period_suppresses_a_second_alert() {
        let c = AlertConfig::default();
        let scores = noise(2000, 3);
        let values = vec![1.0; 2000];
        let mut det = AlertDetector::new(c.clone()).unwrap();
        run(&mut det, &values, &scores);
        let first = det.push(1.0, 1.0);
        assert!(first.alert);
        // Quiet until the average forgets the spike, then another spike inside the period.
        for s in &scores[..20] {
            det.push(1.0, *s);
        }
        let second = det.push(1.0, 1.0);
        assert!(!second.alert && second.suppressed, "{second:?}");
        assert!(second.output <= neutral());
        for s in &scores[20..c.refractory_period + 30] {
            assert!(det.push(1.0, *s).output <= 0.5);
        }
        let third = det.push(1.0, 1.0);
        assert!(third.alert && !third.suppressed, "{third:?}");
        // Without a refractory period the second spike alerts.
        let mut det = AlertDetector::new(AlertConfig {
            refractory_period: 0,
            ..c
        })
        .unwrap();
        run(&mut det, &values, &scores);
        assert!(det.push(1.0, 1.0).alert);
        for s in &scores[..20] {
            det.push(1.0, *s);
        }
        assert!(det.push(1.0, 1.0).alert);
    }

    #[test]
    fn outputs_stay_in_unit_range_and_runs_are_deterministic() {
        let n = 5000;
        let mut s = 7u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let values: Vec<f64> = (0..n)
            .map(|i| (i as f64 * 0.1).sin() * 1e6 * next())
            .collect();
        // Scores of every kind, including out-of-range ones and NaN.
        let scores: Vec<f64> = (0..n)
            .map(|i| match i % 97 {
                0 => f64::NAN,
                1 => 7.0,
                2 => -3.0,
                _ => next().powi(4),
            })
            .collect();
        for c in [
            AlertConfig::default(),
            AlertConfig {
                historic_window: 50,
                averaging_window: 1,
                learning_period: 0,
                estimation_samples: 1,
                reestimation_period: 1,
                refractory_period: 0,
                ..AlertConfig::default()
            },
        ] {
            let a = run(
                &mut AlertDetector::new(c.clone()).unwrap(),
                &values,
                &scores,
            );
            let b = run(&mut AlertDetector::new(c).unwrap(), &values, &scores);
            assert_eq!(a, b);
            assert!(a.iter().all(|p| (0.0..=1.0).contains(&p.output)
                && (0.0..=1.0).contains(&p.likelihood)
                && (0.0..=1.0).contains(&p.raw)));
            assert!(a.iter().any(|p| p.alert));
        }
    }

    #[test]
    fn bad_settings_are_refused_with_the_fix() {
        let bad = |c: AlertConfig| AlertDetector::new(c).unwrap_err();
        let d = AlertConfig::default;
        assert!(bad(AlertConfig {
            averaging_window: 0,
            ..d()
        })
        .contains("averaging_window is 0"));
        assert!(bad(AlertConfig {
            estimation_samples: 9000,
            ..d()
        })
        .contains("larger than historic_window"));
        assert!(bad(AlertConfig {
            alert_threshold: 0.0,
            ..d()
        })
        .contains("(0, 1]"));
        assert!(bad(AlertConfig {
            min_variance: 0.0,
            ..d()
        })
        .contains("positive"));
        assert!(bad(AlertConfig {
            out_of_range_tolerance: f64::NAN,
            ..d()
        })
        .contains("fraction"));
    }
}
