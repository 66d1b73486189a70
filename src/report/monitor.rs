//! The monitor report: per stage and version, capture, windows with their statistics,
//! verdicts and live quality; and the monitoring part of each stage's status. The one source
//! of `rcfops monitor`, `/api/monitor` and the dashboard's monitor page.

use anyhow::Result;
use serde::Serialize;

use crate::config::Config;
use crate::domain::{Stage, Verdict};
use crate::monitor::quality::{live_quality, DayQuality};
use crate::registry::{format_ts, Registry, StateRow, WindowRow};
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
        reg.meta(&super::published::capture_status_key(stage))?
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
