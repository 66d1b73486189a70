//! Model Monitor's facts: baselines, the capture index (one row per scored record), the read
//! position in each capture file, open and closed drift windows, verdicts, and ground truth.
//! One pass of the monitor is one transaction ([`Registry::monitor_apply`]), so a crash
//! leaves the cursors, the windows and the verdicts consistent with each other.

use std::collections::HashMap;

use super::*;
use crate::domain::Verdict;
use crate::monitor::drift::{Baseline, Window, WindowStats};
use crate::monitor::quality::Labelled;

/// A merged ground-truth file.
#[derive(Debug, Clone, Serialize)]
pub struct LabelFileRow {
    pub name: String,
    pub at_ts: f64,
    /// Labels merged from it.
    pub merged: i64,
    /// `file:line: what is wrong`, one per line not merged.
    pub problems: Vec<String>,
}

/// One scored record of a captured request.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureRow {
    pub event_id: String,
    pub idx: i64,
    pub inference_id: Option<String>,
    pub stage: Stage,
    pub version: i64,
    pub at_ts: f64,
    pub score: f64,
    pub threshold: f64,
}

/// A closed window as stored.
#[derive(Debug, Clone, Serialize)]
pub struct WindowRow {
    pub id: i64,
    pub stage: Stage,
    pub version: i64,
    pub opened_ts: f64,
    pub closed_ts: f64,
    pub records: i64,
    /// The window's own level (`None`: too few records to judge).
    pub level: Option<Verdict>,
    /// The stage's verdict after this window (with hysteresis).
    pub verdict: Verdict,
    pub stats: WindowStats,
}

/// A verdict that moved.
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictChange {
    pub stage: Stage,
    pub version: i64,
    /// `drift` or `quality`.
    pub kind: &'static str,
    pub from: Option<Verdict>,
    pub to: Verdict,
    pub reasons: Vec<String>,
}

/// The current verdict of one stage and version, of one kind.
#[derive(Debug, Clone, Serialize)]
pub struct StateRow {
    pub stage: Stage,
    pub version: i64,
    pub kind: String,
    pub verdict: Verdict,
    pub since_ts: f64,
    pub reasons: Vec<String>,
}

/// One label to merge.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelRow {
    pub event_id: String,
    pub idx: i64,
    pub label: bool,
    pub line: i64,
}

/// Everything one monitor pass stores.
#[derive(Debug, Default)]
pub struct MonitorBatch {
    pub captures: Vec<CaptureRow>,
    /// Closed windows in order: stage, version, window, its statistics, the verdict after it.
    pub windows: Vec<(Stage, i64, Window, WindowStats, Verdict)>,
    /// Windows still filling (replacing what was stored for that stage and version).
    pub open: Vec<(Stage, i64, Window)>,
    /// Open windows that no longer exist.
    pub closed_open: Vec<(Stage, i64)>,
    pub cursors: Vec<(String, u64)>,
    pub changes: Vec<VerdictChange>,
    /// Capture index rows older than this are removed (retention).
    pub prune_before_ts: Option<f64>,
}

impl MonitorBatch {
    pub fn is_empty(&self) -> bool {
        self.captures.is_empty()
            && self.windows.is_empty()
            && self.open.is_empty()
            && self.closed_open.is_empty()
            && self.cursors.is_empty()
            && self.changes.is_empty()
    }
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain numbers and strings")
}

impl Registry {
    /// The baseline stored with `version` (`None`: registered before baselines were kept).
    pub fn baseline(&self, version: i64) -> Result<Option<Baseline>> {
        let rows = self.query(
            "SELECT data FROM baselines WHERE version = ?1",
            [version],
            |r| r.get::<_, String>(0),
        )?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|s| serde_json::from_str(&s).ok()))
    }

    pub fn capture_cursors(&self) -> Result<HashMap<String, u64>> {
        Ok(self
            .query("SELECT path, offset FROM capture_cursors", [], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })?
            .into_iter()
            .collect())
    }

    pub fn open_windows(&self) -> Result<Vec<(Stage, i64, Window)>> {
        let rows = self.query(
            "SELECT stage, version, data FROM monitor_open ORDER BY stage, version",
            [],
            |r| {
                Ok((
                    r.get::<_, Stage>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|(s, v, d)| serde_json::from_str(&d).ok().map(|w| (s, v, w)))
            .collect())
    }

    /// The levels of the last `k` judged windows of a stage and version, newest last.
    pub fn recent_levels(&self, stage: Stage, version: i64, k: usize) -> Result<Vec<Verdict>> {
        let mut v = self.query(
            "SELECT level FROM monitor_windows WHERE stage = ?1 AND version = ?2 AND level IS NOT NULL ORDER BY id DESC LIMIT ?3",
            params![stage, version, k as i64],
            |r| r.get::<_, Verdict>(0),
        )?;
        v.reverse();
        Ok(v)
    }

    pub fn monitor_states(&self) -> Result<Vec<StateRow>> {
        self.query(
            "SELECT stage, version, kind, verdict, since_ts, reasons FROM monitor_state ORDER BY stage, version, kind",
            [],
            |r| {
                Ok(StateRow {
                    stage: r.get(0)?,
                    version: r.get(1)?,
                    kind: r.get(2)?,
                    verdict: r.get(3)?,
                    since_ts: r.get(4)?,
                    reasons: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
                })
            },
        )
    }

    /// Closed windows, oldest first, optionally of one stage and/or version; the last `limit`.
    pub fn monitor_windows(
        &self,
        stage: Option<Stage>,
        version: Option<i64>,
        limit: usize,
    ) -> Result<Vec<WindowRow>> {
        let mut rows = self.query(
            "SELECT id, stage, version, opened_ts, closed_ts, records, level, verdict, stats FROM monitor_windows
             WHERE (?1 IS NULL OR stage = ?1) AND (?2 IS NULL OR version = ?2) ORDER BY id DESC LIMIT ?3",
            params![stage, version, limit as i64],
            |r| {
                Ok((
                    WindowRow {
                        id: r.get(0)?,
                        stage: r.get(1)?,
                        version: r.get(2)?,
                        opened_ts: r.get(3)?,
                        closed_ts: r.get(4)?,
                        records: r.get(5)?,
                        level: lenient(r, 6)?,
                        verdict: r.get(7)?,
                        stats: empty_stats(),
                    },
                    r.get::<_, String>(8)?,
                ))
            },
        )?;
        rows.reverse();
        Ok(rows
            .into_iter()
            .map(|(mut w, s)| {
                w.stats = serde_json::from_str(&s).unwrap_or_else(|_| empty_stats());
                w
            })
            .collect())
    }

    /// Stores one monitor pass.
    pub fn monitor_apply(&self, b: &MonitorBatch) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut ins = tx.prepare_cached(
                    "INSERT OR IGNORE INTO captures (event_id, idx, inference_id, stage, version, at_ts, score, threshold)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for r in &b.captures {
                    ins.execute(params![
                        r.event_id,
                        r.idx,
                        r.inference_id,
                        r.stage,
                        r.version,
                        r.at_ts,
                        r.score,
                        r.threshold
                    ])?;
                }
            }
            for (stage, version, w, stats, verdict) in &b.windows {
                tx.execute(
                    "INSERT INTO monitor_windows (stage, version, opened_ts, closed_ts, records, level, verdict, stats)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        stage,
                        version,
                        w.opened_ms as f64 / 1e3,
                        w.last_ms as f64 / 1e3,
                        w.records() as i64,
                        stats.level,
                        verdict,
                        json(stats)
                    ],
                )?;
            }
            for (stage, version) in &b.closed_open {
                tx.execute(
                    "DELETE FROM monitor_open WHERE stage = ?1 AND version = ?2",
                    params![stage, version],
                )?;
            }
            for (stage, version, w) in &b.open {
                tx.execute(
                    "INSERT INTO monitor_open (stage, version, data) VALUES (?1, ?2, ?3)
                     ON CONFLICT(stage, version) DO UPDATE SET data = excluded.data",
                    params![stage, version, json(w)],
                )?;
            }
            for (path, offset) in &b.cursors {
                tx.execute(
                    "INSERT INTO capture_cursors (path, offset) VALUES (?1, ?2)
                     ON CONFLICT(path) DO UPDATE SET offset = excluded.offset",
                    params![path, *offset as i64],
                )?;
            }
            for ch in &b.changes {
                tx.execute(
                    "INSERT INTO monitor_state (stage, version, kind, verdict, since_ts, reasons) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(stage, version, kind) DO UPDATE SET verdict = excluded.verdict, since_ts = excluded.since_ts, reasons = excluded.reasons",
                    params![ch.stage, ch.version, ch.kind, ch.to, now_ts(), json(&ch.reasons)],
                )?;
                // The first verdict, when it is OK, is no news: stored, not announced.
                if ch.from.is_none() && ch.to == Verdict::Ok {
                    continue;
                }
                let from = ch.from.map(|v| v.as_str()).unwrap_or("none");
                let why = if ch.reasons.is_empty() {
                    String::new()
                } else {
                    format!(": {}", ch.reasons.join("; "))
                };
                let detail = format!(
                    "{} v{} {} {from} → {}{why}",
                    ch.stage, ch.version, ch.kind, ch.to
                );
                audit(&tx, "monitor", "agent", "monitor.drift", Some(ch.version), None, &detail)?;
            }
            if let Some(ts) = b.prune_before_ts {
                tx.execute("DELETE FROM captures WHERE at_ts < ?1", [ts])?;
            }
            tx.commit()
        })
    }

    /// Forgets read positions in files that no longer exist.
    pub fn forget_cursors(&self, paths: &[String]) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            for p in paths {
                tx.execute("DELETE FROM capture_cursors WHERE path = ?1", [p])?;
            }
            tx.commit()
        })
    }

    // ground truth -------------------------------------------------------------------

    /// When a ground-truth file with this content digest was merged: its name and time.
    pub fn label_file(&self, digest: &str) -> Result<Option<(String, f64)>> {
        Ok(self
            .query(
                "SELECT name, at_ts FROM label_files WHERE digest = ?1",
                [digest],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .into_iter()
            .next())
    }

    /// The captured events a ground-truth line names, with their record counts.
    pub fn events_for(
        &self,
        event_id: Option<&str>,
        inference_id: Option<&str>,
    ) -> Result<Vec<(String, i64)>> {
        match (event_id, inference_id) {
            (Some(e), _) => self.query(
                "SELECT event_id, COUNT(*) FROM captures WHERE event_id = ?1 GROUP BY event_id",
                [e],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ),
            (None, Some(i)) => self.query(
                "SELECT event_id, COUNT(*) FROM captures WHERE inference_id = ?1 GROUP BY event_id",
                [i],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ),
            (None, None) => Ok(Vec::new()),
        }
    }

    /// Where an event's labels came from, if it has any.
    pub fn labelled_by(&self, event_id: &str) -> Result<Option<(String, i64)>> {
        Ok(self
            .query(
                "SELECT source, line FROM labels WHERE event_id = ?1 LIMIT 1",
                [event_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .into_iter()
            .next())
    }

    /// Merges one file's labels and records the file (by digest) in one transaction, so a
    /// file is merged at most once.
    pub fn merge_labels(
        &self,
        digest: &str,
        name: &str,
        labels: &[LabelRow],
        problems: &[String],
    ) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            let at = now_ts();
            {
                let mut ins = tx.prepare_cached(
                    "INSERT OR IGNORE INTO labels (event_id, idx, label, source, line, at_ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for l in labels {
                    ins.execute(params![l.event_id, l.idx, l.label as i64, name, l.line, at])?;
                }
            }
            tx.execute(
                "INSERT INTO label_files (digest, name, at_ts, merged, problems) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![digest, name, at, labels.len() as i64, json(&problems)],
            )?;
            audit(
                &tx,
                "monitor",
                "ground-truth",
                "monitor.labels",
                None,
                None,
                &format!("{name}: {} labels merged, {} problems", labels.len(), problems.len()),
            )?;
            tx.commit()
        })
    }

    /// Ground-truth files merged, oldest first.
    pub fn label_files(&self) -> Result<Vec<LabelFileRow>> {
        self.query(
            "SELECT name, at_ts, merged, problems FROM label_files ORDER BY at_ts",
            [],
            |r| {
                Ok(LabelFileRow {
                    name: r.get(0)?,
                    at_ts: r.get(1)?,
                    merged: r.get(2)?,
                    problems: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
                })
            },
        )
    }

    pub fn label_count(&self) -> Result<i64> {
        self.with(|c| c.query_row("SELECT COUNT(*) FROM labels", [], |r| r.get(0)))
    }

    /// Every labelled captured record, oldest first.
    pub fn labelled_records(&self) -> Result<Vec<Labelled>> {
        self.query(
            "SELECT c.version, c.stage, c.at_ts, c.score, c.threshold, l.label FROM labels l
             JOIN captures c ON c.event_id = l.event_id AND c.idx = l.idx ORDER BY c.at_ts",
            [],
            |r| {
                Ok(Labelled {
                    version: r.get(0)?,
                    stage: r.get(1)?,
                    at_ts: r.get(2)?,
                    score: r.get(3)?,
                    threshold: r.get(4)?,
                    fraud: r.get::<_, i64>(5)? != 0,
                })
            },
        )
    }

    /// Captured records per stage and version.
    pub fn capture_counts(&self) -> Result<Vec<(Stage, i64, i64)>> {
        self.query(
            "SELECT stage, version, COUNT(*) FROM captures GROUP BY stage, version ORDER BY stage, version",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }
}

fn empty_stats() -> WindowStats {
    WindowStats {
        records: 0,
        score_psi: 0.0,
        ks_statistic: 0.0,
        ks_p_value: 1.0,
        alert_rate: 0.0,
        expected_alert_rate: 0.0,
        alert_rate_interval: (0.0, 0.0),
        alert_rate_p_value: 1.0,
        feature_psi: Vec::new(),
        drifted_features: Vec::new(),
        level: None,
        reasons: Vec::new(),
    }
}
