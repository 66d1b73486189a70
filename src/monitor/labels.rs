//! Ground truth: a SageMaker ground-truth JSON-lines file merged with the captured requests.
//!
//! A file is merged at most once (by content digest). Each line is checked on its own: a
//! malformed line, an event no captured request has, a label count that is not the request's
//! record count, and a record labelled before (in this file or an earlier one) are each
//! reported with the file and line and not merged; the other lines are.

use serde::Serialize;

use super::format::{parse_ground_truth, EventRef};
use crate::registry::{LabelRow, Registry, RegistryError};

/// What merging one file did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub file: String,
    /// Labels merged (one per record).
    pub merged: usize,
    /// `file:line: what is wrong`, one per line not merged.
    pub problems: Vec<String>,
    /// The same content was merged before (at this time); nothing was done.
    pub already_merged_ts: Option<f64>,
}

/// Merges the ground truth in `bytes` (named `name` in reports).
pub fn ingest(reg: &Registry, name: &str, bytes: &[u8]) -> Result<Report, RegistryError> {
    let digest = crate::artifacts::sha256_hex(bytes);
    if let Some((_, at)) = reg.label_file(&digest)? {
        return Ok(Report {
            file: name.to_string(),
            merged: 0,
            problems: Vec::new(),
            already_merged_ts: Some(at),
        });
    }
    let mut problems = Vec::new();
    let mut rows: Vec<LabelRow> = Vec::new();
    let mut in_file: std::collections::HashMap<String, usize> = Default::default();
    let text = String::from_utf8_lossy(bytes);
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut problem = |msg: String| problems.push(format!("{name}:{n}: {msg}"));
        let gt = match parse_ground_truth(line) {
            Ok(g) => g,
            Err(e) => {
                problem(e);
                continue;
            }
        };
        let events = match &gt.event {
            EventRef::EventId(id) => reg.events_for(Some(id), None)?,
            EventRef::InferenceId(id) => reg.events_for(None, Some(id))?,
        };
        let (event_id, records) = match events.as_slice() {
            [] => {
                problem(format!(
                    "unknown {}: no captured request has it (only captured requests can be labelled; is capture on for that endpoint?)",
                    gt.event
                ));
                continue;
            }
            [one] => one.clone(),
            many => {
                problem(format!(
                    "{} matches {} captured requests; label them by eventId instead",
                    gt.event,
                    many.len()
                ));
                continue;
            }
        };
        if gt.labels.len() as i64 != records {
            problem(format!(
                "{} has {records} record(s) but the line gives {} label(s)",
                gt.event,
                gt.labels.len()
            ));
            continue;
        }
        if let Some(first) = in_file.get(&event_id) {
            problem(format!(
                "duplicate: {} is already labelled on line {first} of this file; not merged twice",
                gt.event
            ));
            continue;
        }
        if let Some((src, l)) = reg.labelled_by(&event_id)? {
            problem(format!(
                "duplicate: {} was labelled by {src}:{l}; not merged twice",
                gt.event
            ));
            continue;
        }
        in_file.insert(event_id.clone(), n);
        rows.extend(gt.labels.iter().enumerate().map(|(idx, l)| LabelRow {
            event_id: event_id.clone(),
            idx: idx as i64,
            label: *l,
            line: n as i64,
        }));
    }
    reg.merge_labels(&digest, name, &rows, &problems)?;
    Ok(Report {
        file: name.to_string(),
        merged: rows.len(),
        problems,
        already_merged_ts: None,
    })
}
