//! `rcfops monitor` (the report: windows, statistics, verdicts, drifted features, live
//! quality) and `rcfops label FILE` (merge ground truth).

use anyhow::Result;
use serde::Serialize;

use super::*;
use crate::domain::Verdict;
use crate::monitor::quality::{live_quality, DayQuality};
use crate::registry::{StateRow, WindowRow};
use crate::serve::capture::CaptureStatus;

/// What `status` shows of a stage's monitoring.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorStatus {
    /// `null` when capture is off.
    pub capture: Option<CaptureStatus>,
    /// The verdict on the served version's live traffic (`null`: no window judged yet, or no
    /// baseline).
    pub drift: Option<Verdict>,
    pub drift_since: Option<String>,
    /// The served version's live quality verdict, once it has enough labels.
    pub quality: Option<Verdict>,
    /// `false`: the served version was registered before baselines were kept; not compared.
    pub baseline: bool,
}

/// The `monitor --json` document.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorDoc {
    pub capture: bool,
    pub stages: Vec<StageMonitor>,
    /// Ground-truth files merged, newest last.
    pub ground_truth_files: Vec<GroundTruthFile>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroundTruthFile {
    pub name: String,
    pub merged_at: String,
    pub labels: i64,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageMonitor {
    pub stage: Stage,
    pub serving: Option<i64>,
    pub capture: Option<CaptureStatus>,
    pub versions: Vec<VersionMonitor>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionMonitor {
    pub version: i64,
    /// `false`: "no baseline" (registered before baselines were kept); not compared.
    pub baseline: bool,
    pub expected_alert_rate: Option<f64>,
    pub eval_pr_auc: Option<f64>,
    pub captured_records: i64,
    pub drift: Option<StateRow>,
    pub quality: Option<StateRow>,
    /// The most recent windows, oldest first.
    pub windows: Vec<WindowRow>,
    pub live_quality: Vec<DayQuality>,
}

pub fn capture_status(cfg: &Config, reg: &Registry, stage: Stage) -> Result<Option<CaptureStatus>> {
    if !cfg.monitoring.capture {
        return Ok(None);
    }
    Ok(Some(
        reg.meta(&agent::monitoring::capture_status_key(stage))?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(CaptureStatus {
                sampling_percent: cfg.monitoring.sampling_percent(stage),
                ..CaptureStatus::default()
            }),
    ))
}

/// The monitoring part of a stage's status.
pub fn monitor_status(
    cfg: &Config,
    reg: &Registry,
    stage: Stage,
    serving: Option<i64>,
) -> Result<MonitorStatus> {
    let states = reg.monitor_states()?;
    let find = |kind: &str| {
        states
            .iter()
            .find(|s| s.stage == stage && Some(s.version) == serving && s.kind == kind)
    };
    Ok(MonitorStatus {
        capture: capture_status(cfg, reg, stage)?,
        drift: find("drift").map(|s| s.verdict),
        drift_since: find("drift").map(|s| format_ts(s.since_ts)),
        quality: find("quality").map(|s| s.verdict),
        baseline: match serving {
            Some(v) => reg.baseline(v)?.is_some(),
            None => false,
        },
    })
}

pub fn monitor_doc(
    cfg: &Config,
    reg: &Registry,
    stage: Option<Stage>,
    version: Option<i64>,
    windows: usize,
) -> Result<MonitorDoc> {
    let states = reg.monitor_states()?;
    let counts = reg.capture_counts()?;
    let quality = live_quality(&crate::monitor::labelled(reg)?);
    let mut stages = Vec::new();
    for s in Stage::ALL
        .iter()
        .copied()
        .filter(|s| stage.is_none_or(|x| x == *s))
    {
        let serving = reg.deployed(s)?;
        let mut vs: Vec<i64> = counts
            .iter()
            .filter(|(cs, _, _)| *cs == s)
            .map(|(_, v, _)| *v)
            .chain(serving)
            .chain(states.iter().filter(|x| x.stage == s).map(|x| x.version))
            .filter(|v| version.is_none_or(|x| x == *v))
            .collect();
        vs.sort_unstable();
        vs.dedup();
        let mut versions = Vec::new();
        for v in vs {
            let b = reg.baseline(v)?;
            let find = |kind: &str| {
                states
                    .iter()
                    .find(|x| x.stage == s && x.version == v && x.kind == kind)
                    .cloned()
            };
            versions.push(VersionMonitor {
                version: v,
                baseline: b.is_some(),
                expected_alert_rate: b.as_ref().map(|b| b.expected_alert_rate),
                eval_pr_auc: b.as_ref().map(|b| b.eval_pr_auc),
                captured_records: counts
                    .iter()
                    .find(|(cs, cv, _)| *cs == s && *cv == v)
                    .map(|c| c.2)
                    .unwrap_or(0),
                drift: find("drift"),
                quality: find("quality"),
                windows: reg.monitor_windows(Some(s), Some(v), windows)?,
                live_quality: quality
                    .iter()
                    .filter(|q| q.stage == s && q.version == v)
                    .cloned()
                    .collect(),
            });
        }
        stages.push(StageMonitor {
            stage: s,
            serving,
            capture: capture_status(cfg, reg, s)?,
            versions,
        });
    }
    Ok(MonitorDoc {
        capture: cfg.monitoring.capture,
        stages,
        ground_truth_files: reg
            .label_files()?
            .into_iter()
            .map(|f| GroundTruthFile {
                name: f.name,
                merged_at: format_ts(f.at_ts),
                labels: f.merged,
                problems: f.problems,
            })
            .collect(),
    })
}

pub(super) fn cmd_monitor(
    cfg: &Config,
    stage: Option<Stage>,
    version: Option<i64>,
    windows: usize,
    json: bool,
) -> Result<i32> {
    let reg = open_registry(cfg)?;
    let doc = monitor_doc(cfg, &reg, stage, version, windows)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    print!("{}", monitor_text(&doc));
    Ok(0)
}

fn verdict_text(s: &Option<StateRow>) -> String {
    match s {
        Some(s) => format!("{} since {}", s.verdict, format_ts(s.since_ts)),
        None => "-".into(),
    }
}

/// The report a person reads.
pub fn monitor_text(doc: &MonitorDoc) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if !doc.capture {
        out.push_str(
            "data capture is off: set `[monitoring] capture = true` in config.toml and restart the agent\n",
        );
    }
    for s in &doc.stages {
        let _ = write!(
            out,
            "{} (serving {})",
            s.stage,
            s.serving
                .map(|v| format!("v{v}"))
                .unwrap_or_else(|| "nothing".into())
        );
        if let Some(c) = &s.capture {
            let _ = write!(
                out,
                ": capture {}%, {} written, {} dropped",
                c.sampling_percent, c.written, c.dropped
            );
            if let Some(e) = &c.error {
                let _ = write!(out, ", STOPPED: {e}");
            }
        }
        out.push('\n');
        if s.versions.is_empty() {
            out.push_str("  no live traffic captured yet\n");
        }
        for v in &s.versions {
            let _ = writeln!(
                out,
                "  v{}: {} records captured; drift {}; quality {}",
                v.version,
                v.captured_records,
                verdict_text(&v.drift),
                verdict_text(&v.quality)
            );
            if !v.baseline {
                out.push_str("    no baseline (registered before monitoring): not compared\n");
                continue;
            }
            if let Some(d) = &v.drift {
                for r in &d.reasons {
                    let _ = writeln!(out, "    {r}");
                }
            }
            if !v.windows.is_empty() {
                let _ = writeln!(
                    out,
                    "    {:<20} {:>7} {:>6} {:>9} {:>6} {:>15} {:<5} {:<5} DRIFTED",
                    "WINDOW CLOSED",
                    "RECORDS",
                    "PSI",
                    "KS",
                    "ALERTS",
                    "EXPECTED",
                    "LEVEL",
                    "VERDICT"
                );
            }
            for w in &v.windows {
                let st = &w.stats;
                let _ = writeln!(
                    out,
                    "    {:<20} {:>7} {:>6.3} {:>9.3} {:>5.1}% {:>6.1}–{:<6.1}% {:<5} {:<5} {}",
                    format_ts(w.closed_ts),
                    w.records,
                    st.score_psi,
                    st.ks_statistic,
                    st.alert_rate * 100.0,
                    st.alert_rate_interval.0 * 100.0,
                    st.alert_rate_interval.1 * 100.0,
                    w.level.map(|l| l.as_str()).unwrap_or("-"),
                    w.verdict,
                    st.drifted_features.join(", ")
                );
            }
            if !v.live_quality.is_empty() {
                let _ = writeln!(
                    out,
                    "    {:<10} {:>7} {:>6} {:>7} {:>7} {:>9} {:>6}",
                    "DAY", "LABELS", "FRAUDS", "ROC-AUC", "PR-AUC", "PRECISION", "RECALL"
                );
                let f = |x: Option<f64>| x.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into());
                for q in &v.live_quality {
                    let _ = writeln!(
                        out,
                        "    {:<10} {:>7} {:>6} {:>7} {:>7} {:>9.4} {:>6.4}",
                        q.day,
                        q.records,
                        q.frauds,
                        f(q.roc_auc),
                        f(q.pr_auc),
                        q.precision,
                        q.recall
                    );
                }
                if let Some(e) = v.eval_pr_auc {
                    let _ = writeln!(out, "    evaluation PR-AUC {e:.4}");
                }
            }
        }
    }
    for g in doc
        .ground_truth_files
        .iter()
        .filter(|g| !g.problems.is_empty())
    {
        let _ = writeln!(
            out,
            "ground truth {} ({}): {} labels merged, {} lines not merged, e.g. {}",
            g.name,
            g.merged_at,
            g.labels,
            g.problems.len(),
            g.problems[0]
        );
    }
    out
}

pub(super) fn cmd_label(cfg: &Config, file: &Path, json: bool) -> Result<i32> {
    let bytes = std::fs::read(file)
        .map_err(|e| anyhow!("cannot read the ground-truth file {}: {e}", file.display()))?;
    let reg = open_registry(cfg)?;
    let report = crate::monitor::labels::ingest(&reg, &file.display().to_string(), &bytes)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if let Some(at) = report.already_merged_ts {
        println!(
            "{}: this content was merged at {}; nothing to do",
            file.display(),
            format_ts(at)
        );
    } else {
        for p in &report.problems {
            eprintln!("{p}");
        }
        println!(
            "{}: {} labels merged, {} lines not merged",
            file.display(),
            report.merged,
            report.problems.len()
        );
    }
    // Every line merged: 0; some lines refused: 1, so scripts notice.
    Ok(if report.problems.is_empty() { 0 } else { 1 })
}
