//! The deployable model: preprocessing + forest + threshold, and its artifact file format.
//!
//! Owns what a model artifact contains and how it scores raw records. The endpoints, the
//! staging tests, the pipeline's evaluation and `rcfops eval` all score through
//! [`Model::score_rows`], so the scores a version was evaluated with are the scores it serves.
//!
//! Artifact format: the 8-byte magic `RCFOPSM2`, a little-endian u32 header length, a JSON
//! header ([`ModelHeader`]), the header's FNV-1a 64 checksum (little-endian u64), then the
//! forest in `rcf_core`'s own checksummed binary format. Every byte is covered by a checksum,
//! so a damaged artifact fails to load rather than scoring differently.

pub mod preprocess;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::model::preprocess::Preprocessor;

const MAGIC: &[u8; 8] = b"RCFOPSM2";

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelHeader {
    pub features: Vec<String>,
    pub preprocessor: Preprocessor,
    /// Flag threshold: mean + 3σ of the training scores.
    pub threshold: f64,
    pub train_score_mean: f64,
    pub train_score_std: f64,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub header: ModelHeader,
    pub forest: rcf_core::Forest,
}

/// One record's per-feature attribution (model space), named by feature.
#[derive(Debug, Clone, Serialize)]
pub struct Attribution {
    pub feature: String,
    pub high: f64,
    pub low: f64,
}

impl Model {
    pub fn dim(&self) -> usize {
        self.header.features.len()
    }

    /// Transforms raw records into model space, refusing a value that leaves the model's 32-bit
    /// range after preprocessing: `Err((row, feature, value))`.
    pub fn try_transform(
        &self,
        raw: &[f64],
        rows: usize,
    ) -> Result<Array2<f32>, (usize, usize, f64)> {
        let dim = self.dim();
        let mut x = Array2::<f32>::zeros((rows, dim));
        for (r, mut out) in x.rows_mut().into_iter().enumerate() {
            let row = &raw[r * dim..(r + 1) * dim];
            let out = out.as_slice_mut().expect("standard layout");
            self.header.preprocessor.transform_row(row, out);
            if let Some(j) = out.iter().position(|v| !v.is_finite()) {
                return Err((r, j, row[j]));
            }
        }
        Ok(x)
    }

    /// Scores raw records, or names the first record with a value out of the model's range.
    /// A single record (the endpoint's common request) goes down every tree at once
    /// (`Forest::score_batch` does that below 16 rows).
    pub fn try_score_rows(
        &self,
        raw: &[f64],
        rows: usize,
    ) -> Result<Vec<f64>, (usize, usize, f64)> {
        let x = self.try_transform(raw, rows)?;
        Ok(if rows >= 2048 {
            self.forest.score_batch_parallel(x.view(), 2)
        } else {
            self.forest.score_batch(x.view())
        })
    }

    /// Scores raw records (rows × features, raw units).
    pub fn score_rows(&self, raw: &[f64], rows: usize) -> Vec<f64> {
        let dim = self.dim();
        debug_assert_eq!(raw.len(), rows * dim);
        let mut x = Array2::<f32>::zeros((rows, dim));
        for (r, mut out) in x.rows_mut().into_iter().enumerate() {
            self.header.preprocessor.transform_row(
                &raw[r * dim..(r + 1) * dim],
                out.as_slice_mut().expect("standard layout"),
            );
        }
        if rows >= 2048 {
            self.forest.score_batch_parallel(x.view(), 2)
        } else {
            self.forest.score_batch(x.view())
        }
    }

    /// Per-feature attribution of one raw record.
    pub fn attribution(&self, raw: &[f64]) -> Vec<Attribution> {
        let mut x = vec![0f32; self.dim()];
        self.header.preprocessor.transform_row(raw, &mut x);
        let d = self.forest.attribution(&x);
        self.header
            .features
            .iter()
            .enumerate()
            .map(|(i, f)| Attribution {
                feature: f.clone(),
                high: d.high[i],
                low: d.low[i],
            })
            .collect()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).expect("header serialises");
        let forest = self.forest.to_bytes();
        let mut out = Vec::with_capacity(12 + header.len() + forest.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&fnv1a(&header).to_le_bytes());
        out.extend_from_slice(&forest);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Model, String> {
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err("not an rcfops model artifact (bad magic)".into());
        }
        let len = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        let body = &bytes[12..];
        if body.len() < len + 8 {
            return Err("model artifact is truncated (header)".into());
        }
        let sum = u64::from_le_bytes(body[len..len + 8].try_into().expect("8 bytes"));
        if fnv1a(&body[..len]) != sum {
            return Err("model artifact header is corrupt (checksum mismatch)".into());
        }
        let header: ModelHeader = serde_json::from_slice(&body[..len])
            .map_err(|e| format!("model artifact header is corrupt: {e}"))?;
        let forest = rcf_core::Forest::from_bytes(&body[len + 8..])
            .map_err(|e| format!("model artifact forest is corrupt: {e}"))?;
        if forest.dim() != header.features.len()
            || header.preprocessor.dim() != header.features.len()
        {
            return Err("model artifact is inconsistent: feature counts differ".into());
        }
        Ok(Model { header, forest })
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::data::Table;
    use crate::pipeline::spec::PipelineSpec;
    use crate::pipeline::{select, train_and_evaluate};

    #[test]
    fn single_record_scores_equal_batch_scores() {
        let mut csv = String::from("a,b,c,label\n");
        for i in 0..400 {
            csv.push_str(&format!(
                "{},{},{},{}\n",
                i % 23,
                (i * 7) % 13,
                (i * i) % 31,
                u8::from(i % 40 == 0)
            ));
        }
        let t = Table::parse_csv(csv.as_bytes(), "x.csv").unwrap();
        let spec = PipelineSpec::parse("[data]\npath = \"x.csv\"\nlabel = \"label\"\n").unwrap();
        let d = select(&t, &spec.data, "x.csv").unwrap();
        let m = train_and_evaluate(&d, &spec.preprocess, spec.forest_config(), 0.3, 1, 10)
            .unwrap()
            .model;
        let flat: Vec<f64> = d.x.iter().copied().collect();
        let batch = m.try_score_rows(&flat, d.x.nrows()).unwrap();
        for (r, want) in batch.iter().enumerate() {
            let one = m.try_score_rows(&flat[r * 3..(r + 1) * 3], 1).unwrap();
            assert_eq!(one[0], *want, "row {r}");
        }
        assert_eq!(m.try_score_rows(&[1e308, 0.0, 0.0], 1).unwrap_err().0, 0);
    }
}
