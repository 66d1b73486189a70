//! The status document: what the registry holds and what the stages serve, typed; the one
//! source of `rcfops status` (table and `--json`), `/api/status` and the dashboard's pages.

use anyhow::Result;
use serde::Serialize;

use crate::config::Config;
use crate::domain::Stage;
use crate::domain::{Action, ApprovalStatus, Method, Outcome, RunStatus, StagingResult};
use crate::pipeline::champion::{Champions, Comparison};
use crate::pipeline::metrics::Metrics;
use crate::registry::{format_ts, Registry};
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
    let (staging_url, production_url) = super::published::endpoint_urls(cfg);
    let mut shadows = reg.shadows()?;
    let mut versions = Vec::new();
    for v in reg.versions()? {
        let stages: Vec<Stage> = [(Stage::Staging, staging), (Stage::Production, production)]
            .into_iter()
            .filter(|(_, served)| *served == Some(v.version))
            .map(|(s, _)| s)
            .collect();
        let metrics: Metrics = serde_json::from_value(v.metrics.clone()).map_err(|e| {
            crate::registry::RegistryError::Other(format!(
                "the metrics of v{} cannot be read ({e})",
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
        agent_running: super::published::agent_running(cfg),
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
