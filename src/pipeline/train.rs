//! Training and evaluation with the pipeline's semantics: select the spec's columns, split
//! stratified by label, fit the preprocessing and the forest on the training rows, score the
//! held-out rows, compute the metrics and keep the staging-test sample. Shared by a run and
//! by `rcfops eval`. Pure computation over in-memory data.

use std::time::Instant;

use ndarray::{Array2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use super::data::Table;
use super::metrics::{self, Metrics};
use super::spec::{DataSpec, PreprocessSpec, SPEC_FILE};
use crate::model::preprocess::Preprocessor;
use crate::model::{Model, ModelHeader};

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
    /// The held-out rows (indices into the dataset), their labels and the model's scores.
    pub held_out: HeldOutRows,
}

/// The evaluation split as scored: what a champion is compared on.
pub struct HeldOutRows {
    pub rows: Vec<usize>,
    pub labels: Vec<bool>,
    pub scores: Vec<f64>,
}

pub(super) fn ms(t: Instant) -> f64 {
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
    // Copies only where the split asks for them: training on every row in file order reads
    // the table itself, and without a held-out split the evaluation rows are the training rows.
    let all_rows = train_rows.iter().copied().eq(0..data.x.nrows());
    let train_copy = (!all_rows).then(|| data.x.select(Axis(0), &train_rows));
    let x_train_raw = train_copy.as_ref().map_or(data.x.view(), |a| a.view());
    let test_copy = (test_rows != train_rows).then(|| data.x.select(Axis(0), &test_rows));
    let x_test_raw = test_copy.as_ref().map_or(x_train_raw, |a| a.view());
    let pp = Preprocessor::fit(x_train_raw, &data.features, pre.scaling, &pre.log_transform);
    let x_train = pp.transform(x_train_raw);
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
    // With no held-out split the evaluation rows are the training rows, already scored
    // (bit-identical to scoring them through the model: same preprocessing, same trees).
    let scores = if test_rows == train_rows {
        train_scores
    } else {
        let flat: Vec<f64> = x_test_raw.iter().copied().collect();
        model
            .try_score_rows(&flat, test_rows.len())
            .map_err(|(r, j, raw)| {
                out_of_range(&data.features[j], test_rows[r], raw, f32::INFINITY)
            })?
    };
    let score_ms = ms(t);

    let metrics = Metrics::evaluate(&scores, &test_labels, threshold, train_rows.len());

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
        held_out: HeldOutRows {
            rows: test_rows,
            labels: test_labels,
            scores,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a held-out split the training scores are reused, and they are exactly what
    /// the deployed model answers for those rows (what the staging tests compare).
    #[test]
    fn no_split_reuses_the_training_scores_bit_for_bit() {
        let n = 600;
        let mut s = 11u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let labels: Vec<bool> = (0..n).map(|i| i % 50 == 0).collect();
        let x = Array2::from_shape_fn((n, 3), |(i, j)| {
            next() * 10.0
                + if labels[i] {
                    40.0 * (j + 1) as f64
                } else {
                    0.0
                }
        });
        let data = Dataset {
            features: vec!["a".into(), "b".into(), "c".into()],
            x,
            labels,
        };
        let pre = PreprocessSpec {
            scaling: crate::pipeline::spec::Scaling::Robust,
            log_transform: vec!["b".into()],
        };
        let config = rcf_core::ForestConfig {
            num_trees: 50,
            num_samples_per_tree: 64,
            ..rcf_core::ForestConfig::default()
        };
        let t = train_and_evaluate(&data, &pre, config, 0.0, 7, 10).unwrap();
        assert_eq!(t.held_out.rows.len(), n);
        let flat: Vec<f64> = data.x.iter().copied().collect();
        let direct = t.model.score_rows(&flat, n);
        assert_eq!(t.held_out.scores, direct);
    }
}
