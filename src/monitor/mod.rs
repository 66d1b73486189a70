//! Model Monitor: what the live endpoints saw, compared with what each version was trained
//! and evaluated on.
//!
//! The capture files (written by `serve::capture`) are the facts. Each pass of [`Monitor`]
//! reads the complete lines past the stored position in every capture file, indexes each
//! scored record (for the ground-truth join), fills one window per stage and version, judges
//! each window that closes against the version's baseline (`drift`), moves the verdict with
//! hysteresis, and stores all of it, positions included, in one registry transaction. A crash
//! at any instant therefore repeats nothing and loses nothing: the next pass starts from the
//! stored positions and the stored open windows. Ground-truth files dropped in
//! `<state>/ground-truth/` (or given to `rcfops label`) are merged once each (by content
//! digest); live quality is derived from the merged labels whenever they change.
//!
//! `format`, `stats`, `drift` and `quality` are pure; this file and `labels` do the reading.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::MonitoringConfig;
use crate::domain::{Stage, Verdict};
use crate::registry::{CaptureRow, MonitorBatch, Registry, RegistryError, VerdictChange};

pub mod drift;
pub mod format;
pub mod labels;
pub mod quality;
pub mod stats;

use drift::{judge, next_verdict, Baseline, Window};

/// Capture lines read in one pass at most (one transaction); the next pass goes on.
const MAX_LINES_PER_PASS: usize = 100_000;

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PassReport {
    pub lines: usize,
    pub records: usize,
    pub windows: usize,
    /// Lines that are not capture records of this agent (counted and skipped).
    pub unreadable: usize,
    pub changes: Vec<VerdictChange>,
    /// Lines are still waiting (the pass stopped at its budget).
    pub more: bool,
}

/// Reads a request body back into records: `(content type, body, features) → (row-major
/// values, rows)`. The endpoints' codec, handed in by the agent (the monitor does not
/// depend on the server).
pub type ParseRequest = fn(&str, &[u8], usize) -> Result<(Vec<f64>, usize), (usize, String)>;

/// The monitor's state between passes: only caches; every fact is in the registry.
pub struct Monitor {
    parse: ParseRequest,
    capture_dir: PathBuf,
    ground_truth_dir: PathBuf,
    cfg: MonitoringConfig,
    baselines: HashMap<i64, Option<Arc<Baseline>>>,
    /// Label count when live quality was last judged.
    labels_seen: Option<i64>,
    /// Ground-truth files already handled, by size and modification time.
    ground_truth_seen: HashMap<PathBuf, (u64, std::time::SystemTime)>,
}

impl Monitor {
    pub fn new(
        capture_dir: PathBuf,
        ground_truth_dir: PathBuf,
        cfg: MonitoringConfig,
        parse: ParseRequest,
    ) -> Monitor {
        Monitor {
            parse,
            capture_dir,
            ground_truth_dir,
            cfg,
            baselines: HashMap::new(),
            labels_seen: None,
            ground_truth_seen: HashMap::new(),
        }
    }

    fn baseline(
        &mut self,
        reg: &Registry,
        version: i64,
    ) -> Result<Option<Arc<Baseline>>, RegistryError> {
        if let Some(b) = self.baselines.get(&version) {
            return Ok(b.clone());
        }
        let b = reg.baseline(version)?.map(Arc::new);
        self.baselines.insert(version, b.clone());
        Ok(b)
    }

    /// Reads new capture lines, closes and judges windows, and stores it all.
    pub fn pass(&mut self, reg: &Registry, now_ms: i64) -> Result<PassReport, RegistryError> {
        let policy = self.cfg.policy.clone();
        let cursors = reg.capture_cursors()?;
        let mut open: HashMap<(Stage, i64), Window> = reg
            .open_windows()?
            .into_iter()
            .map(|(s, v, w)| ((s, v), w))
            .collect();
        let stored_open: Vec<(Stage, i64)> = open.keys().copied().collect();
        let mut states: HashMap<(Stage, i64), Verdict> = reg
            .monitor_states()?
            .into_iter()
            .filter(|s| s.kind == "drift")
            .map(|s| ((s.stage, s.version), s.verdict))
            .collect();
        let mut recent: HashMap<(Stage, i64), Vec<Verdict>> = HashMap::new();
        let mut files = Vec::new();
        format::capture_files(&self.capture_dir, &mut files);
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut report = PassReport::default();
        let mut batch = MonitorBatch::default();
        let mut closed: Vec<(Stage, i64, Window)> = Vec::new();
        let keys: Vec<String> = files.iter().map(|f| self.key(&f.0)).collect();
        let gone: Vec<String> = cursors
            .keys()
            .filter(|k| !keys.contains(k))
            .cloned()
            .collect();
        for ((path, _, size), key) in files.iter().zip(keys) {
            let offset = cursors.get(&key).copied().unwrap_or(0);
            if *size <= offset || report.lines >= MAX_LINES_PER_PASS {
                report.more |= *size > offset;
                continue;
            }
            let Ok(bytes) = read_from(path, offset, *size) else {
                continue;
            };
            let mut consumed = 0usize;
            for line in bytes.split_inclusive(|b| *b == b'\n') {
                if line.last() != Some(&b'\n') {
                    break; // a line still being written
                }
                if report.lines >= MAX_LINES_PER_PASS {
                    report.more = true;
                    break;
                }
                consumed += line.len();
                report.lines += 1;
                self.ingest(
                    reg,
                    line,
                    &mut open,
                    &mut closed,
                    &mut batch,
                    &mut report,
                    &policy,
                )?;
            }
            if consumed > 0 {
                batch.cursors.push((key, offset + consumed as u64));
            }
        }
        // Windows that the clock closes (a quiet endpoint still gets judged).
        let due: Vec<(Stage, i64)> = open
            .iter()
            .filter(|(_, w)| w.is_full(now_ms, &policy))
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            if let Some(w) = open.remove(&k) {
                closed.push((k.0, k.1, w));
            }
        }
        for (stage, version, w) in closed {
            let Some(b) = self.baseline(reg, version)? else {
                continue;
            };
            let stats = judge(&w, &b, &policy);
            let key = (stage, version);
            let current = states.get(&key).copied();
            let levels = match recent.entry(key) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(reg.recent_levels(
                    stage,
                    version,
                    policy.raise_after.max(policy.clear_after),
                )?),
            };
            let mut verdict = current.unwrap_or(Verdict::Ok);
            if let Some(level) = stats.level {
                levels.push(level);
                verdict = next_verdict(verdict, levels, &policy);
                if current != Some(verdict) {
                    let change = VerdictChange {
                        stage,
                        version,
                        kind: "drift",
                        from: current,
                        to: verdict,
                        reasons: stats.reasons.clone(),
                    };
                    report.changes.push(change.clone());
                    batch.changes.push(change);
                    states.insert(key, verdict);
                }
            }
            report.windows += 1;
            batch.windows.push((stage, version, w, stats, verdict));
        }
        for (k, w) in open {
            batch.open.push((k.0, k.1, w));
        }
        batch.closed_open = stored_open
            .into_iter()
            .filter(|k| !batch.open.iter().any(|(s, v, _)| (*s, *v) == *k))
            .collect();
        // Only windows that changed need writing back.
        if batch.cursors.is_empty() && batch.windows.is_empty() {
            batch.open.clear();
        }
        batch.prune_before_ts =
            Some(now_ms as f64 / 1e3 - self.cfg.retention_hours as f64 * 3600.0);
        if !batch.is_empty() {
            reg.monitor_apply(&batch)?;
        }
        if !gone.is_empty() {
            reg.forget_cursors(&gone)?;
        }
        Ok(report)
    }

    fn key(&self, path: &Path) -> String {
        path.strip_prefix(&self.capture_dir)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }

    #[allow(clippy::too_many_arguments)]
    fn ingest(
        &mut self,
        reg: &Registry,
        line: &[u8],
        open: &mut HashMap<(Stage, i64), Window>,
        closed: &mut Vec<(Stage, i64, Window)>,
        batch: &mut MonitorBatch,
        report: &mut PassReport,
        policy: &drift::Policy,
    ) -> Result<(), RegistryError> {
        let Ok(line) = serde_json::from_slice::<format::CaptureLine>(line) else {
            report.unreadable += 1;
            return Ok(());
        };
        let meta = &line.event_metadata;
        let (Some(served), Some(at)) = (
            meta.rcfops.as_ref(),
            format::parse_inference_time(&meta.inference_time),
        ) else {
            report.unreadable += 1;
            return Ok(());
        };
        let at_ms = (at * 1e3).round() as i64;
        for (i, s) in served.scores.iter().enumerate() {
            batch.captures.push(CaptureRow {
                event_id: meta.event_id.clone(),
                idx: i as i64,
                inference_id: meta.inference_id.clone(),
                stage: served.stage,
                version: served.model_version,
                at_ts: at,
                score: *s,
                threshold: served.threshold,
            });
        }
        report.records += served.scores.len();
        let Some(b) = self.baseline(reg, served.model_version)? else {
            return Ok(()); // registered before baselines: not compared
        };
        let d = b.features.len();
        let input = &line.capture_data.endpoint_input;
        let flat = input.bytes().ok().and_then(|bytes| {
            (self.parse)(&input.observed_content_type, &bytes, d)
                .ok()
                .filter(|(_, rows)| *rows == served.scores.len())
                .map(|(flat, _)| flat)
        });
        let key = (served.stage, served.model_version);
        for (i, s) in served.scores.iter().enumerate() {
            let w = open.entry(key).or_insert_with(|| Window::new(at_ms, &b));
            let x = flat.as_ref().map(|f| &f[i * d..(i + 1) * d]);
            w.add(at_ms, *s, x, &b);
            if w.is_full(at_ms, policy) {
                let full = open.remove(&key).expect("just filled");
                closed.push((key.0, key.1, full));
            }
        }
        Ok(())
    }

    /// Merges new files of the ground-truth folder, then re-judges live quality when the
    /// labels changed. Returns the reports of the files merged and the verdicts that moved.
    pub fn ground_truth(
        &mut self,
        reg: &Registry,
    ) -> Result<(Vec<labels::Report>, Vec<VerdictChange>), RegistryError> {
        let mut reports = Vec::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&self.ground_truth_dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for path in entries {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !meta.is_file() || hidden {
                continue;
            }
            let stamp = (meta.len(), meta.modified().unwrap_or(std::time::UNIX_EPOCH));
            if self.ground_truth_seen.get(&path) == Some(&stamp) {
                continue;
            }
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    reports.push(labels::ingest(reg, &name, &bytes)?);
                }
                Err(e) => tracing::warn!("cannot read ground truth {}: {e}", path.display()),
            }
            self.ground_truth_seen.insert(path, stamp);
        }
        let changes = self.judge_quality(reg)?;
        Ok((reports, changes))
    }

    /// Live quality per stage and version, judged when the labels changed.
    fn judge_quality(&mut self, reg: &Registry) -> Result<Vec<VerdictChange>, RegistryError> {
        let count = reg.label_count()?;
        if self.labels_seen == Some(count) {
            return Ok(Vec::new());
        }
        self.labels_seen = Some(count);
        let days = quality::live_quality(&labelled(reg)?);
        let states: HashMap<(Stage, i64), Verdict> = reg
            .monitor_states()?
            .into_iter()
            .filter(|s| s.kind == "quality")
            .map(|s| ((s.stage, s.version), s.verdict))
            .collect();
        let mut keys: Vec<(Stage, i64)> = days.iter().map(|d| (d.stage, d.version)).collect();
        keys.dedup();
        let mut batch = MonitorBatch::default();
        for (stage, version) in keys {
            let Some(eval) = reg
                .version(version)?
                .and_then(|v| v.metrics.get("pr_auc").and_then(|p| p.as_f64()))
            else {
                continue;
            };
            let mine: Vec<&quality::DayQuality> = days
                .iter()
                .filter(|d| d.stage == stage && d.version == version)
                .collect();
            let Some((verdict, why)) = quality::judge(
                &mine,
                eval,
                self.cfg.pr_auc_margin,
                self.cfg.min_labelled_frauds,
            ) else {
                continue;
            };
            let current = states.get(&(stage, version)).copied();
            if current != Some(verdict) {
                batch.changes.push(VerdictChange {
                    stage,
                    version,
                    kind: "quality",
                    from: current,
                    to: verdict,
                    reasons: vec![format!("{verdict}: {why}")],
                });
            }
        }
        if !batch.is_empty() {
            reg.monitor_apply(&batch)?;
        }
        Ok(batch.changes)
    }
}

/// Every labelled captured record, for live quality.
pub fn labelled(reg: &Registry) -> Result<Vec<quality::Labelled>, RegistryError> {
    reg.labelled_records()
}

fn read_from(path: &Path, offset: u64, size: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    f.seek(std::io::SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity((size - offset) as usize);
    f.take(size - offset).read_to_end(&mut buf)?;
    Ok(buf)
}
