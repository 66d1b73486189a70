//! `rcfops status`, `rcfops runs` and `rcfops audit`: the status document as a table, runs
//! and the audit trail, for people and scripts.

use anyhow::Result;
use serde::Serialize;

use super::*;
pub use crate::report::status::*;

/// The `rcfops status` table.
pub fn status_table(doc: &StatusDoc) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<8} {:<13} {:<22} {:<19} {:>8} {:>8} {:<8} {:<20} {}\n",
        "VERSION",
        "COMMIT",
        "APPROVAL",
        "STAGE",
        "ROC-AUC",
        "PR-AUC",
        "STAGING",
        "VS PROD (ΔROC/ΔPR)",
        "REGISTERED"
    ));
    for v in &doc.versions {
        let stages = v
            .stages
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("+");
        out.push_str(&format!(
            "{:<8} {:<13} {:<22} {:<19} {:>8.4} {:>8.4} {:<8} {:<20} {}\n",
            format!("v{}", v.version),
            short(&v.commit),
            v.approval.as_str(),
            if stages.is_empty() { "-" } else { &stages },
            v.metrics.roc_auc,
            v.metrics.pr_auc,
            v.staging_tests.map(|r| r.as_str()).unwrap_or("-"),
            match &v.champion {
                None => "-".to_string(),
                Some(c) => match c.delta() {
                    Some(d) => format!("v{} {:+.3}/{:+.3}", c.version(), d.roc_auc, d.pr_auc),
                    None => format!("v{} not comparable", c.version()),
                },
            },
            v.registered_at,
        ));
    }
    if doc.versions.is_empty() {
        out.push_str("(no versions yet)\n");
    }
    out.push('\n');
    for stage in Stage::ALL.iter().copied() {
        let e = doc.endpoint(stage);
        let held = match e.rolled_back.as_ref().and_then(Option::as_ref) {
            Some(rb) => format!(
                "  (rolled back from v{} by {}{})",
                rb.from.unwrap_or(0),
                rb.by,
                rb.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            None => String::new(),
        };
        let env = match &e.env_commit {
            Some(Some(c)) => format!("  (environment repo {})", &c[..12.min(c.len())]),
            Some(None) => "  (environment repo: not rendered yet)".into(),
            None => String::new(),
        };
        out.push_str(&format!(
            "{:<11} {:<28} {:<28} {}{held}{env}\n",
            stage.as_str(),
            e.name,
            e.url,
            e.version
                .map(|v| format!("v{v}"))
                .unwrap_or_else(|| "no model".into())
        ));
        if let Some(line) = monitor_line(&e.monitor, e.version.is_some()) {
            out.push_str(&format!("{:<11} {line}\n", ""));
        }
    }
    for n in &doc.notices {
        out.push_str(&format!("note: {n}\n"));
    }
    let dead = &doc.notifications.dead;
    if !dead.is_empty() {
        out.push_str(&format!(
            "notifications: {} dead-lettered (`rcfops notify list --state dead`; `rcfops notify retry ID` sends one again):\n",
            dead.len()
        ));
        for d in dead.iter().take(5) {
            out.push_str(&format!(
                "  event {} {} to {}: {}\n",
                d.id,
                d.event,
                d.sink,
                d.last_error.as_deref().unwrap_or("")
            ));
        }
    }
    for s in &doc.notifications.disabled_sinks {
        out.push_str(&format!(
            "notifications: sink {s} is disabled (it answered 410 Gone)\n"
        ));
    }
    out.push_str(&format!(
        "agent: {}\n\nrecent runs:\n",
        if doc.agent_running {
            "running"
        } else {
            "not running"
        }
    ));
    for r in doc.runs.iter().take(5) {
        out.push_str(&format!(
            "  run {:<4} {:<13} {:<10} {}\n",
            r.run,
            short(&r.commit),
            r.status.as_str(),
            r.version
                .map(|v| format!("v{v}"))
                .or_else(|| r.error.clone())
                .unwrap_or_default()
        ));
    }
    out
}

/// A stage's monitoring in one line (`None` when capture is off).
fn monitor_line(m: &super::monitor::MonitorStatus, serving: bool) -> Option<String> {
    let c = m.capture.as_ref()?;
    let mut line = format!(
        "monitor: capture {}% ({} written, {} dropped)",
        c.sampling_percent, c.written, c.dropped
    );
    if let Some(e) = &c.error {
        line.push_str(&format!(", capture STOPPED: {e}"));
    }
    if serving {
        match (m.baseline, m.drift) {
            (false, _) => line.push_str(", no baseline (not compared)"),
            (true, Some(v)) => line.push_str(&format!(
                ", drift {v} since {}",
                m.drift_since.as_deref().unwrap_or("?")
            )),
            (true, None) => line.push_str(", drift: no window judged yet"),
        }
        if let Some(q) = m.quality {
            line.push_str(&format!(", live quality {q}"));
        }
    }
    Some(line)
}

pub(super) fn cmd_status(cfg: &Config, json: bool) -> Result<i32> {
    let reg = open_registry(cfg)?;
    let doc = status_doc(cfg, &reg)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", status_table(&doc));
    }
    Ok(0)
}

pub(super) fn cmd_runs(cfg: &Config, limit: usize, json: bool) -> Result<i32> {
    let reg = open_registry(cfg)?;
    let runs = reg.runs(limit)?;
    if json {
        #[derive(Serialize)]
        struct RunWithSteps<'a> {
            #[serde(flatten)]
            run: &'a crate::registry::RunRow,
            steps: Vec<crate::registry::StepRow>,
        }
        let v = runs
            .iter()
            .map(|r| {
                Ok(RunWithSteps {
                    run: r,
                    steps: reg.steps(r.run)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!(
        "{:<5} {:<13} {:<10} {:<8} {:<21} DETAIL",
        "RUN", "COMMIT", "STATUS", "VERSION", "STARTED"
    );
    for r in runs {
        let steps = reg.steps(r.run)?;
        let detail = match (&r.error, r.version) {
            (Some(e), _) => e.clone(),
            (None, _) => steps
                .iter()
                .map(|s| format!("{} {:.0}ms", s.step, s.duration_ms.unwrap_or(0.0)))
                .collect::<Vec<_>>()
                .join(" → "),
        };
        println!(
            "{:<5} {:<13} {:<10} {:<8} {:<21} {}",
            r.run,
            short(&r.commit),
            r.status,
            r.version
                .map(|v| format!("v{v}"))
                .unwrap_or_else(|| "-".into()),
            format_ts(r.started_ts),
            detail
        );
    }
    Ok(0)
}

pub(super) fn cmd_audit(cfg: &Config, limit: usize, json: bool) -> Result<i32> {
    let reg = open_registry(cfg)?;
    let rows = reg.audit_log(limit)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    for a in rows {
        println!(
            "{} {:<24} {:<6} by {:<24} via {:<14} {}",
            format_ts(a.at_ts),
            a.event,
            a.version.map(|v| format!("v{v}")).unwrap_or_default(),
            a.actor,
            a.how,
            a.detail.unwrap_or_default()
        );
    }
    Ok(0)
}
