//! `rcfops status`, `rcfops runs` and `rcfops audit`: what the registry holds, for people and scripts.

use anyhow::Result;
use serde::Serialize;

use super::*;
use crate::domain::{ApprovalStatus, Method, Outcome, RunStatus, StagingResult};
use crate::pipeline::champion::{Champions, Comparison};
use crate::pipeline::metrics::Metrics;
use crate::serve::shadow::ShadowStats;

/// The `status --json` document (README's "`rcfops status --json` prints", plus extra fields). The one source of
/// both `status --json` and the `status` table.
#[derive(Debug, Clone, Serialize)]
pub struct StatusDoc {
    pub versions: Vec<VersionDoc>,
    pub runs: Vec<RunDoc>,
    pub endpoints: EndpointsDoc,
    pub agent_running: bool,
    /// `self-asserted` or `signed`: whether approver identities are proven.
    pub approver_identities: &'static str,
    /// Things a person should know, e.g. that identities are self-asserted.
    pub notices: Vec<String>,
    pub notifications: NotificationsDoc,
}

/// Notifications that need a person: dead letters and sinks a 410 disabled.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationsDoc {
    pub dead: Vec<crate::registry::DeadLetter>,
    pub disabled_sinks: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionDoc {
    pub version: i64,
    pub commit: String,
    pub approval: ApprovalStatus,
    /// The last of `stages` (`production` when in both).
    pub stage: Option<Stage>,
    pub stages: Vec<Stage>,
    pub metrics: Metrics,
    pub hyperparameters: serde_json::Value,
    pub model_group: String,
    pub artifact_sha256: String,
    pub registered_at: String,
    pub staging_tests: Option<StagingResult>,
    pub staging_detail: Option<String>,
    pub reject_reason: Option<String>,
    /// The candidate against the version production served when it was registered:
    /// `{"version", "metrics", "delta", "rank_agreement"}`, `{"version", "comparable": false,
    /// "reason"}`, or `null` when nothing served production (or it was not recorded).
    pub champion: Option<Comparison>,
    /// The same against the staging version, when that differed from production's.
    pub vs_staging: Option<Comparison>,
    /// Shadow traffic while this version served staging (`[endpoints.staging]
    /// shadow_percent`): records, rank and alert agreement with production, alert rates.
    pub shadow: Option<ShadowStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunDoc {
    pub run: i64,
    pub commit: String,
    pub status: RunStatus,
    pub error: Option<String>,
    pub version: Option<i64>,
    pub trigger: String,
    pub interrupted: bool,
    pub started_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EndpointsDoc {
    pub staging: EndpointDoc,
    pub production: EndpointDoc,
}

#[derive(Debug, Clone, Serialize)]
pub struct EndpointDoc {
    pub name: String,
    pub url: String,
    pub version: Option<i64>,
    /// Production only: the rollback that holds it, until the next promotion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<Option<RollbackDoc>>,
    /// A stage on Kubernetes: the environment repo commit that renders it (`null` before the
    /// first render).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_commit: Option<Option<String>>,
    /// Model Monitor: capture, and the served version's drift and quality verdicts.
    pub monitor: super::monitor::MonitorStatus,
}

#[derive(Debug, Clone, Serialize)]
pub struct RollbackDoc {
    /// The version rolled back from.
    pub from: Option<i64>,
    pub by: String,
    pub how: Method,
    pub reason: Option<String>,
    pub forced: bool,
    pub at: String,
}

impl StatusDoc {
    pub fn endpoint(&self, stage: Stage) -> &EndpointDoc {
        match stage {
            Stage::Staging => &self.endpoints.staging,
            Stage::Production => &self.endpoints.production,
        }
    }
}

/// Builds the status document from the registry.
pub fn status_doc(cfg: &Config, reg: &Registry) -> Result<StatusDoc> {
    // What each stage serves: its latest deployment, as recorded by the agent.
    let staging = reg.deployed(Stage::Staging)?;
    let production = reg.deployed(Stage::Production)?;
    let (staging_url, production_url) = agent::endpoint_urls(cfg);
    let mut shadows = reg.shadows()?;
    let mut versions = Vec::new();
    for v in reg.versions()? {
        let stages: Vec<Stage> = [(Stage::Staging, staging), (Stage::Production, production)]
            .into_iter()
            .filter(|(_, served)| *served == Some(v.version))
            .map(|(s, _)| s)
            .collect();
        let metrics: Metrics = serde_json::from_value(v.metrics.clone()).map_err(|e| {
            Failed(format!(
                "registry: the metrics of v{} cannot be read ({e})",
                v.version
            ))
        })?;
        let champions: Champions = v
            .champion
            .clone()
            .and_then(|c| serde_json::from_value(c).ok())
            .unwrap_or_default();
        versions.push(VersionDoc {
            version: v.version,
            commit: v.commit,
            approval: v.approval,
            stage: stages.last().copied(),
            stages,
            metrics,
            hyperparameters: v.hyperparameters,
            model_group: v.model_group,
            artifact_sha256: v.artifact_sha256,
            registered_at: format_ts(v.registered_ts),
            staging_tests: v.staging_result,
            staging_detail: v.staging_detail,
            reject_reason: v.reject_reason,
            champion: champions.production,
            vs_staging: champions.staging,
            shadow: shadows
                .remove(&v.version)
                .and_then(|s| serde_json::from_value(s).ok()),
        });
    }
    let runs = reg
        .runs(50)?
        .into_iter()
        .map(|r| RunDoc {
            run: r.run,
            commit: r.commit,
            status: r.status,
            error: r.error,
            version: r.version,
            trigger: r.trigger,
            interrupted: r.interrupted,
            started_at: format_ts(r.started_ts),
        })
        .collect();
    let endpoint = |stage: Stage, url: String, version: Option<i64>| -> Result<EndpointDoc> {
        let group = reg.endpoint_group(stage)?;
        let ecfg = cfg.endpoint(stage);
        let (url, env_commit) = match (&ecfg.target, &cfg.kubernetes) {
            (crate::config::DeployTarget::Kubernetes { url }, Some(k)) => {
                let commit = crate::envrepo::EnvRepo::open(&k.env_repo, &k.env_branch)
                    .ok()
                    .and_then(|e| e.last_change(&format!("{group}/{stage}")).ok().flatten());
                (url.clone(), Some(commit))
            }
            _ => (url, None),
        };
        Ok(EndpointDoc {
            name: stage.endpoint_name(&group),
            url,
            version,
            rolled_back: None,
            env_commit,
            monitor: super::monitor::monitor_status(cfg, reg, stage, version)?,
        })
    };
    let mut production_ep = endpoint(Stage::Production, production_url, production)?;
    production_ep.rolled_back = Some(production_rollback(reg)?.map(|a| RollbackDoc {
        from: a.version,
        by: a.approver,
        how: a.method,
        reason: a.note,
        forced: a.forced,
        at: format_ts(a.given_ts),
    }));
    Ok(StatusDoc {
        versions,
        runs,
        endpoints: EndpointsDoc {
            staging: endpoint(Stage::Staging, staging_url, staging)?,
            production: production_ep,
        },
        agent_running: agent::agent_running(cfg),
        approver_identities: if cfg.approvals.require_signed {
            "signed"
        } else {
            "self-asserted"
        },
        notices: cfg.identity_notice().into_iter().collect(),
        notifications: NotificationsDoc {
            dead: reg.dead_letters()?,
            disabled_sinks: reg
                .sinks()?
                .into_iter()
                .filter(|s| s.disabled_ts.is_some())
                .map(|s| s.name)
                .collect(),
        },
    })
}

/// The production rollback in force: the newest accepted one with no promotion after it.
fn production_rollback(reg: &Registry) -> Result<Option<crate::registry::ApprovalRow>> {
    let mut held = None;
    for a in reg.approvals()? {
        if a.outcome != Outcome::Accepted {
            continue;
        }
        match (a.action, a.stage) {
            (Some(Action::Rollback), Some(Stage::Production)) => held = Some(a),
            (Some(Action::Promote), _) => held = None,
            _ => {}
        }
    }
    Ok(held)
}

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
