//! Streaming anomaly scores for a time series: score-then-update in arrival order.
//!
//! Owns the streaming protocol behind `rcfops stream` and the NAB check (`cargo bench --bench
//! nab`): every value is pushed into a shingle (the last `shingle` values, oldest first); once
//! the shingle is full the point is first scored against the forest built from the points
//! before it and then offered to the forest ([`rcf_core::Forest::update`]: time-decayed
//! reservoir sampling, insertion into and deletion from the trees). Rows before the first full
//! shingle, and the first point (empty forest), score 0. Scores are the reference RCF scale
//! (about 1 for ordinary points, up to `log2(samples + 1)`); [`nab_normalize`] gives the form
//! the Numenta Anomaly Benchmark used for AWS's RCF (score / log2(samples), clipped to [0, 1]).
//!
//! The defaults are NAB's RCF settings: shingle 1, 100 trees, 256 samples per tree, time
//! decay 1e-5. Deterministic for a fixed seed. Also reads a CSV of timestamps and values
//! ([`read_series`]). Pure computation apart from the bytes it is handed.
//!
//! [`alert`] turns the raw scores into alerts (anomaly likelihood, out-of-range rule,
//! refractory period): `rcfops stream --detector alert`, the default, is [`alert_stream`].
//! [`StreamScorer`] is score-then-update one value at a time, for embedding.

pub mod alert;

use rcf_core::{Forest, ForestConfig, Shingle};

pub use alert::{AlertConfig, AlertDetector, AlertPoint};

/// Streaming hyperparameters (NAB's RCF settings by default).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConfig {
    /// Consecutive values per point (1 = the value alone).
    pub shingle: usize,
    pub num_trees: usize,
    pub num_samples_per_tree: usize,
    /// Time decay λ of the samplers (0 = uniform reservoir over the whole stream).
    pub time_decay: f64,
    pub seed: u64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            shingle: 1,
            num_trees: 100,
            num_samples_per_tree: 256,
            time_decay: 1e-5,
            seed: 0,
        }
    }
}

impl StreamConfig {
    fn forest_config(&self) -> ForestConfig {
        ForestConfig {
            num_trees: self.num_trees,
            num_samples_per_tree: self.num_samples_per_tree,
            seed: self.seed,
            time_decay: self.time_decay,
        }
    }

    /// Checks every setting; errors are phrased for the user.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=1024).contains(&self.shingle) {
            return Err(format!(
                "shingle size {} is out of range: use an integer between 1 and 1024",
                self.shingle
            ));
        }
        self.forest_config().validate().map_err(|e| e.to_string())
    }
}

/// Score-then-update one value at a time (see the module doc): what [`score_stream`] does
/// over a slice.
#[derive(Debug)]
pub struct StreamScorer {
    forest: Forest,
    shingle: Shingle,
}

impl StreamScorer {
    pub fn new(config: &StreamConfig) -> Result<StreamScorer, String> {
        config.validate()?;
        Ok(StreamScorer {
            forest: Forest::new(config.shingle, config.forest_config())
                .map_err(|e| e.to_string())?,
            shingle: Shingle::new(1, config.shingle),
        })
    }

    /// The next value's raw score (reference RCF scale; 0 before the first full shingle and
    /// for the first point), after which the point joins the forest. `value` must be finite.
    pub fn push(&mut self, value: f64) -> Result<f64, String> {
        if !value.is_finite() {
            return Err(format!("value {value} is not finite"));
        }
        Ok(match self.shingle.push(&[value as f32]) {
            Some(point) => {
                let score = self.forest.score(point);
                self.forest.update(point);
                score
            }
            None => 0.0,
        })
    }
}

/// Score-then-update over `values` in order; one score per value (see the module doc).
pub fn score_stream(values: &[f64], config: &StreamConfig) -> Result<Vec<f64>, String> {
    config.validate()?;
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(format!("value {} (index {i}) is not finite", values[i]));
    }
    let mut scorer = StreamScorer::new(config)?;
    values.iter().map(|&v| scorer.push(v)).collect()
}

/// Score-then-update over `values`, each raw score ([`nab_normalize`]d) and value through an
/// [`AlertDetector`]: one [`AlertPoint`] per value, whose `output` is what `rcfops stream
/// --detector alert` prints. `input_range` is the series' (min, max) when known in advance
/// (NAB allows it); `None` is strictly streaming.
pub fn alert_stream(
    values: &[f64],
    config: &StreamConfig,
    alert: &AlertConfig,
    input_range: Option<(f64, f64)>,
) -> Result<Vec<AlertPoint>, String> {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(format!("value {} (index {i}) is not finite", values[i]));
    }
    let mut scorer = StreamScorer::new(config)?;
    let mut detector = match input_range {
        Some((lo, hi)) => AlertDetector::with_input_range(alert.clone(), lo, hi)?,
        None => AlertDetector::new(alert.clone())?,
    };
    values
        .iter()
        .map(|&v| {
            let s = scorer.push(v)?;
            Ok(detector.push(v, nab_normalize(s, config.num_samples_per_tree)))
        })
        .collect()
}

/// NAB's form of an RCF score: divided by `log2(samples)` (8 at 256 samples) and clipped to
/// [0, 1].
pub fn nab_normalize(score: f64, num_samples_per_tree: usize) -> f64 {
    let scale = (num_samples_per_tree.max(2) as f64).log2();
    (score / scale).clamp(0.0, 1.0)
}

/// A time series read from CSV: the timestamps (first column, passed through) and the values.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Name of the value column.
    pub column: String,
    /// First column of every row, as text.
    pub timestamps: Vec<String>,
    pub values: Vec<f64>,
}

/// Reads a CSV with a header row: the value column is `column` when given, else the last
/// column whose every cell is a finite number, leaving out a column named `label` (NAB's
/// labelled copies carry one). The first column is kept as the timestamp. Errors name the
/// file, line and column.
pub fn read_series(bytes: &[u8], name: &str, column: Option<&str>) -> Result<Series, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| format!("{name}: line 1: cannot read the header: {e}"))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    if header.is_empty() || header.iter().all(|h| h.is_empty()) {
        return Err(format!(
            "{name}: the file is empty (expected a header line, then timestamp,value rows)"
        ));
    }
    let mut rows: Vec<csv::StringRecord> = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            format!("{name}: line {line}: {e}")
        })?;
        if rec.iter().all(|c| c.is_empty()) {
            continue;
        }
        rows.push(rec);
    }
    let numeric = |j: usize| {
        rows.iter().all(|r| {
            r.get(j)
                .and_then(|c| c.parse::<f64>().ok())
                .is_some_and(f64::is_finite)
        })
    };
    let j = match column {
        Some(c) => header.iter().position(|h| h == c).ok_or_else(|| {
            format!(
                "{name}: column {c:?} is not in the header (columns: {})",
                header.join(", ")
            )
        })?,
        None => (0..header.len())
            .rev()
            .find(|&j| header[j] != "label" && numeric(j))
            .ok_or_else(|| {
                format!(
                    "{name}: no numeric value column (columns: {}); name one with --column",
                    header.join(", ")
                )
            })?,
    };
    let mut values = Vec::with_capacity(rows.len());
    let mut timestamps = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let line = r.position().map(|p| p.line()).unwrap_or(i as u64 + 2);
        let cell = r.get(j).unwrap_or("");
        let v = cell
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                format!(
                    "{name}: line {line}, column {:?}: {cell:?} is not a finite number",
                    header[j]
                )
            })?;
        values.push(v);
        timestamps.push(r.get(0).unwrap_or("").to_string());
    }
    Ok(Series {
        column: header[j].clone(),
        timestamps,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| 10.0 + (i as f64 * 0.3).sin() + 0.01 * (i % 7) as f64)
            .collect()
    }

    #[test]
    fn a_spike_outscores_the_rest_of_the_stream() {
        let mut v = wave(1500);
        v[1200] = 40.0;
        let s = score_stream(&v, &StreamConfig::default()).unwrap();
        assert_eq!(s.len(), v.len());
        assert_eq!(s[0], 0.0, "the first point meets an empty forest");
        let spike = s[1200];
        assert!(
            s[300..]
                .iter()
                .enumerate()
                .all(|(i, &x)| i + 300 == 1200 || x < spike),
            "spike {spike}"
        );
        assert!(nab_normalize(spike, 256) > 0.5);
        assert!(s.iter().all(|x| x.is_finite() && *x >= 0.0));
    }

    #[test]
    fn shingles_pad_the_start_and_the_run_is_deterministic() {
        let v = wave(400);
        let cfg = StreamConfig {
            shingle: 4,
            seed: 9,
            ..StreamConfig::default()
        };
        let a = score_stream(&v, &cfg).unwrap();
        assert_eq!(a.len(), 400);
        assert!(
            a[..4].iter().all(|&x| x == 0.0),
            "3 padding rows + empty forest"
        );
        assert!(a[5..].iter().all(|&x| x > 0.0));
        assert_eq!(a, score_stream(&v, &cfg).unwrap());
        let bad = StreamConfig {
            shingle: 0,
            ..StreamConfig::default()
        };
        assert!(score_stream(&v, &bad).unwrap_err().contains("shingle"));
        let bad = StreamConfig {
            num_trees: 5,
            ..StreamConfig::default()
        };
        assert!(score_stream(&v, &bad).unwrap_err().contains("num_trees"));
    }

    #[test]
    fn alert_stream_matches_the_scorer_and_detector_and_flags_a_shift() {
        let mut v = wave(2000);
        for x in &mut v[1500..] {
            *x += 3.0;
        }
        let cfg = StreamConfig::default();
        let points = alert_stream(&v, &cfg, &AlertConfig::default(), None).unwrap();
        assert_eq!(points.len(), v.len());
        let scores = score_stream(&v, &cfg).unwrap();
        let mut det = AlertDetector::new(AlertConfig::default()).unwrap();
        for ((&x, &s), p) in v.iter().zip(&scores).zip(&points) {
            assert_eq!(*p, det.push(x, nab_normalize(s, 256)));
        }
        assert!(points[1500].out_of_range && points[1500].alert);
        assert!(points[400..1500].iter().all(|p| !p.alert));
        assert!(points.iter().all(|p| (0.0..=1.0).contains(&p.output)));
        let mut bad = v.clone();
        bad[7] = f64::NAN;
        let e = alert_stream(&bad, &cfg, &AlertConfig::default(), None).unwrap_err();
        assert!(e.contains("index 7"), "{e}");
    }

    #[test]
    fn nab_normalize_divides_by_log2_samples_and_clips() {
        assert_eq!(nab_normalize(4.0, 256), 0.5);
        assert_eq!(nab_normalize(8.2, 256), 1.0);
        assert_eq!(nab_normalize(-1.0, 256), 0.0);
    }

    #[test]
    fn read_series_picks_the_last_numeric_column_but_not_label() {
        let csv = b"timestamp,value,label\n2014-04-01 00:00:00,1.5,0\n2014-04-01 00:05:00,2,1\n";
        let s = read_series(csv, "t.csv", None).unwrap();
        assert_eq!(s.column, "value");
        assert_eq!(s.values, vec![1.5, 2.0]);
        assert_eq!(s.timestamps[1], "2014-04-01 00:05:00");
        let s = read_series(csv, "t.csv", Some("label")).unwrap();
        assert_eq!(s.values, vec![0.0, 1.0]);
        let e = read_series(csv, "t.csv", Some("val")).unwrap_err();
        assert!(e.contains("column \"val\" is not in the header"), "{e}");
        let e = read_series(b"timestamp,value\nx,1\ny,abc\n", "t.csv", Some("value")).unwrap_err();
        assert!(
            e.contains("t.csv: line 3, column \"value\": \"abc\""),
            "{e}"
        );
        let e = read_series(b"timestamp\nx\n", "t.csv", None).unwrap_err();
        assert!(e.contains("no numeric value column"), "{e}");
        assert!(read_series(b"", "t.csv", None).is_err());
    }
}
