//! Preprocessing: turning raw feature values into the model's input space.
//!
//! Owns the fitted per-feature transform (optional signed log, then centring and scaling) that
//! travels inside every model artifact, so training, evaluation and the endpoints apply exactly
//! the same arithmetic. Pure computation.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::spec::Scaling;

/// One feature's fitted transform: `y = (f(x) - center) / scale`, `f` = signed log1p or identity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeatureTransform {
    pub name: String,
    pub log: bool,
    pub center: f64,
    pub scale: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Preprocessor {
    pub features: Vec<FeatureTransform>,
}

fn signed_log1p(x: f64) -> f64 {
    x.signum() * x.abs().ln_1p()
}

impl Preprocessor {
    /// Fits on `train` (rows × features, in `names` order).
    pub fn fit(
        train: ArrayView2<f64>,
        names: &[String],
        scaling: Scaling,
        log_cols: &[String],
    ) -> Preprocessor {
        let features = names
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let log = log_cols.iter().any(|c| c == name);
                let mut col: Vec<f64> = train
                    .column(j)
                    .iter()
                    .map(|&x| if log { signed_log1p(x) } else { x })
                    .collect();
                let (center, scale) = match scaling {
                    Scaling::None => (0.0, 1.0),
                    Scaling::Standard => {
                        let n = col.len().max(1) as f64;
                        let mean = col.iter().sum::<f64>() / n;
                        let var = col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
                        (mean, nonzero(var.sqrt()))
                    }
                    Scaling::Robust => {
                        col.sort_by(|a, b| a.total_cmp(b));
                        let median = quantile(&col, 0.5);
                        let iqr = quantile(&col, 0.75) - quantile(&col, 0.25);
                        let scale = if iqr > 0.0 {
                            iqr
                        } else {
                            // Mostly-constant column: fall back to the spread of the whole column.
                            let n = col.len().max(1) as f64;
                            let mean = col.iter().sum::<f64>() / n;
                            (col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt()
                        };
                        (median, nonzero(scale))
                    }
                };
                FeatureTransform {
                    name: name.clone(),
                    log,
                    center,
                    scale,
                }
            })
            .collect();
        Preprocessor { features }
    }

    pub fn dim(&self) -> usize {
        self.features.len()
    }

    /// Transforms one raw row into `out` (model space, f32).
    pub fn transform_row(&self, raw: &[f64], out: &mut [f32]) {
        for ((t, &x), o) in self.features.iter().zip(raw).zip(out.iter_mut()) {
            let v = if t.log { signed_log1p(x) } else { x };
            *o = ((v - t.center) / t.scale) as f32;
        }
    }

    /// Transforms a raw matrix (rows × features).
    pub fn transform(&self, raw: ArrayView2<f64>) -> Array2<f32> {
        let mut out = Array2::<f32>::zeros((raw.nrows(), self.dim()));
        for (r, mut o) in raw.rows().into_iter().zip(out.rows_mut()) {
            let row: Vec<f64> = r.to_vec();
            self.transform_row(&row, o.as_slice_mut().expect("standard layout"));
        }
        out
    }
}

fn nonzero(s: f64) -> f64 {
    if s.is_finite() && s > 1e-12 {
        s
    } else {
        1.0
    }
}

/// Linear-interpolated quantile of sorted data.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let w = pos - lo as f64;
    sorted[lo] * (1.0 - w) + sorted[hi] * w
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn robust_scaling_centres_on_the_median() {
        let x = array![[1.0], [2.0], [3.0], [4.0], [100.0]];
        let p = Preprocessor::fit(x.view(), &["a".into()], Scaling::Robust, &[]);
        assert_eq!(p.features[0].center, 3.0);
        assert_eq!(p.features[0].scale, 2.0);
        let mut out = [0f32];
        p.transform_row(&[5.0], &mut out);
        assert_eq!(out[0], 1.0);
    }

    #[test]
    fn constant_column_does_not_divide_by_zero() {
        let x = array![[7.0], [7.0], [7.0]];
        let p = Preprocessor::fit(x.view(), &["a".into()], Scaling::Standard, &[]);
        let t = p.transform(x.view());
        assert!(t.iter().all(|v| *v == 0.0));
    }
}
