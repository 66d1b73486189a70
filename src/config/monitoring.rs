//! `[monitoring]`: data capture, the drift windows and their thresholds, live quality.

use serde::Deserialize;

use crate::domain::Stage;
use crate::monitor::drift::Policy;

/// Model Monitor's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitoringConfig {
    /// Endpoints write their requests and answers to capture files.
    pub capture: bool,
    /// Per stage: the share of requests captured, in percent.
    pub staging_sampling_percent: f64,
    pub production_sampling_percent: f64,
    /// Requests waiting for a capture writer before new ones are dropped (and counted).
    pub queue: usize,
    pub retention_hours: u64,
    /// Per endpoint, in MiB.
    pub retention_mb: u64,
    /// How often the agent reads new capture lines and ground-truth files.
    pub poll_ms: u64,
    /// When a window closes and what moves its verdict.
    pub policy: Policy,
    /// A version's live PR-AUC this far below its evaluation PR-AUC is an ALERT.
    pub pr_auc_margin: f64,
    /// Labelled frauds a version and day need before its live quality is judged.
    pub min_labelled_frauds: usize,
}

impl MonitoringConfig {
    pub fn sampling_percent(&self, stage: Stage) -> f64 {
        match stage {
            Stage::Staging => self.staging_sampling_percent,
            Stage::Production => self.production_sampling_percent,
        }
    }
}

impl Default for MonitoringConfig {
    fn default() -> MonitoringConfig {
        MonitoringConfig {
            capture: false,
            staging_sampling_percent: 100.0,
            production_sampling_percent: 100.0,
            queue: 8192,
            retention_hours: 7 * 24,
            retention_mb: 1024,
            poll_ms: 1000,
            policy: Policy::default(),
            pr_auc_margin: 0.1,
            min_labelled_frauds: 10,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMonitoring {
    capture: Option<bool>,
    queue: Option<usize>,
    retention_hours: Option<u64>,
    retention_mb: Option<u64>,
    poll_ms: Option<u64>,
    window_records: Option<usize>,
    window_minutes: Option<f64>,
    min_window_records: Option<usize>,
    psi_warn: Option<f64>,
    psi_alert: Option<f64>,
    ks_alpha: Option<f64>,
    ks_min_effect: Option<f64>,
    rate_alpha_warn: Option<f64>,
    rate_alpha_alert: Option<f64>,
    raise_after: Option<usize>,
    clear_after: Option<usize>,
    pr_auc_margin: Option<f64>,
    min_labelled_frauds: Option<usize>,
    staging: Option<RawStageMonitoring>,
    production: Option<RawStageMonitoring>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStageMonitoring {
    sampling_percent: Option<f64>,
}

type Err<'a> = &'a dyn Fn(&str, String) -> super::ConfigError;

pub(super) fn parse(
    raw: &RawMonitoring,
    err: Err<'_>,
) -> Result<MonitoringConfig, super::ConfigError> {
    let d = MonitoringConfig::default();
    let key = |k: &str| format!("monitoring.{k}");
    let at_least_1 = |k: &str, v: Option<u64>, default: u64| -> Result<u64, super::ConfigError> {
        match v {
            Some(0) => Err(err(&key(k), "must be at least 1".into())),
            Some(v) => Ok(v),
            None => Ok(default),
        }
    };
    let in_range = |k: &str,
                    v: Option<f64>,
                    default: f64,
                    lo: f64,
                    hi: f64|
     -> Result<f64, super::ConfigError> {
        match v {
            Some(v) if !(lo..=hi).contains(&v) || !v.is_finite() => {
                Err(err(k, format!("{v} is out of range [{lo}, {hi}]")))
            }
            Some(v) => Ok(v),
            None => Ok(default),
        }
    };
    let percent = |stage: Stage, r: &Option<RawStageMonitoring>| {
        in_range(
            &format!("monitoring.{stage}.sampling_percent"),
            r.as_ref().and_then(|r| r.sampling_percent),
            100.0,
            0.0,
            100.0,
        )
    };
    let p = &d.policy;
    let window_records = at_least_1(
        "window_records",
        raw.window_records.map(|v| v as u64),
        p.window_records as u64,
    )? as usize;
    let min_records = raw
        .min_window_records
        .unwrap_or(p.min_records.min(window_records));
    if min_records > window_records {
        return Err(err(
            &key("min_window_records"),
            format!("{min_records} is more than window_records ({window_records})"),
        ));
    }
    let window_minutes = in_range(
        &key("window_minutes"),
        raw.window_minutes,
        p.window_ms as f64 / 60_000.0,
        0.001,
        7.0 * 24.0 * 60.0,
    )?;
    let psi_warn = in_range(&key("psi_warn"), raw.psi_warn, p.psi_warn, 0.0, 100.0)?;
    let psi_alert = in_range(&key("psi_alert"), raw.psi_alert, p.psi_alert, 0.0, 100.0)?;
    if psi_alert < psi_warn {
        return Err(err(
            &key("psi_alert"),
            format!("{psi_alert} is below psi_warn ({psi_warn})"),
        ));
    }
    let rate_alpha_warn = in_range(
        &key("rate_alpha_warn"),
        raw.rate_alpha_warn,
        p.rate_alpha_warn,
        0.0,
        1.0,
    )?;
    let rate_alpha_alert = in_range(
        &key("rate_alpha_alert"),
        raw.rate_alpha_alert,
        p.rate_alpha_alert,
        0.0,
        1.0,
    )?;
    if rate_alpha_alert > rate_alpha_warn {
        return Err(err(
            &key("rate_alpha_alert"),
            format!("{rate_alpha_alert} is above rate_alpha_warn ({rate_alpha_warn}); the alert level must be the stricter one"),
        ));
    }
    Ok(MonitoringConfig {
        capture: raw.capture.unwrap_or(d.capture),
        staging_sampling_percent: percent(Stage::Staging, &raw.staging)?,
        production_sampling_percent: percent(Stage::Production, &raw.production)?,
        queue: at_least_1("queue", raw.queue.map(|v| v as u64), d.queue as u64)? as usize,
        retention_hours: at_least_1("retention_hours", raw.retention_hours, d.retention_hours)?,
        retention_mb: at_least_1("retention_mb", raw.retention_mb, d.retention_mb)?,
        poll_ms: at_least_1("poll_ms", raw.poll_ms, d.poll_ms)?,
        policy: Policy {
            window_records,
            window_ms: (window_minutes * 60_000.0).round() as i64,
            min_records: min_records.max(1),
            psi_warn,
            psi_alert,
            ks_alpha: in_range(&key("ks_alpha"), raw.ks_alpha, p.ks_alpha, 0.0, 1.0)?,
            ks_min_effect: in_range(
                &key("ks_min_effect"),
                raw.ks_min_effect,
                p.ks_min_effect,
                0.0,
                1.0,
            )?,
            rate_alpha_warn,
            rate_alpha_alert,
            raise_after: at_least_1(
                "raise_after",
                raw.raise_after.map(|v| v as u64),
                p.raise_after as u64,
            )? as usize,
            clear_after: at_least_1(
                "clear_after",
                raw.clear_after.map(|v| v as u64),
                p.clear_after as u64,
            )? as usize,
        },
        pr_auc_margin: in_range(
            &key("pr_auc_margin"),
            raw.pr_auc_margin,
            d.pr_auc_margin,
            0.0,
            1.0,
        )?,
        min_labelled_frauds: raw.min_labelled_frauds.unwrap_or(d.min_labelled_frauds),
    })
}
