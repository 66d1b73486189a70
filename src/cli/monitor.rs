//! `rcfops monitor` (the report as text: windows, statistics, verdicts, drifted features,
//! live quality) and `rcfops label FILE` (merge ground truth).

use anyhow::Result;

use super::*;
use crate::registry::StateRow;
pub use crate::report::monitor::*;

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
