//! Approvals: turning approval tags and approval files into accepted or refused decisions.
//!
//! - [`requests`] reads requests from tags (via `repo`) and from the approvals folder;
//! - [`rules`] judges one request against the facts, as a pure function;
//! - [`mod@file`] is the approval-file format `rcfops ... --file` writes;
//! - [`signing`] verifies SSH-signed tags.
//!
//! [`process`] ties them together on each reconciler pass: it collects the requests not decided
//! yet, oldest first, loads the facts each depends on from the registry, asks the rules and
//! stores each decision with its effect. Each tag object or file (by content digest) is decided
//! exactly once, so a refusal belongs to that object: a corrected tag or file is a new object
//! and is judged afresh.

pub mod file;
pub mod requests;
pub mod rules;
pub mod signing;

pub use file::{write_file, ApprovalFile};
pub use requests::{FileCache, Request, CLI_TRAILER, FORCE_TRAILER};
pub use rules::{verdict, Effect, Facts, Verdict};

use crate::config::Config;
use crate::domain::Action;
use crate::registry::{Decision, Registry};
use crate::repo::ModelRepo;
use crate::targets::Targets;

/// Why approvals could not be processed this pass (nothing was decided wrongly; the next pass
/// tries again).
#[derive(Debug, thiserror::Error)]
pub enum ApprovalsError {
    #[error("cannot list the approval tags")]
    Tags(#[source] crate::repo::RepoError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error("{0}")]
    Signers(String),
}

/// Collects every request not decided yet, oldest first.
pub fn pending_requests(
    repo: &ModelRepo,
    cfg: &Config,
    reg: &Registry,
    files: &mut FileCache,
) -> Result<Vec<Request>, ApprovalsError> {
    let mut reqs: Vec<Request> = repo
        .approval_tags()
        .map_err(ApprovalsError::Tags)?
        .iter()
        .map(requests::from_tag)
        .collect();
    reqs.extend(requests::read_files(&cfg.approvals.dir, files));
    let seen = reg.approval_sources()?;
    let mut fresh: Vec<Request> = reqs
        .into_iter()
        .filter(|r| !seen.contains(&r.source))
        .collect();
    fresh.sort_by(|a, b| {
        a.given_ts
            .total_cmp(&b.given_ts)
            .then_with(|| a.source.to_string().cmp(&b.source.to_string()))
    });
    Ok(fresh)
}

/// Judges one request against the registry as it is now; the decision to store.
pub fn judge(req: &Request, cfg: &Config, reg: &Registry) -> Result<Decision, ApprovalsError> {
    let version = match req.version {
        Some(n) => reg.version(n)?,
        None => None,
    };
    let stages = reg.target_facts()?;
    let signed = cfg.approvals.require_signed
        && req.source.is_tag()
        && matches!(req.action, Some(Action::Approve | Action::Promote));
    let signature = if signed {
        let path = cfg
            .approvals
            .allowed_signers
            .as_deref()
            .expect("checked by config");
        let signers = signing::AllowedSigners::load(path).map_err(ApprovalsError::Signers)?;
        Some(signers.verify_tag(&req.raw, &req.approver))
    } else {
        None
    };
    let shadow_records = match (cfg.staging.min_shadow_records, req.version) {
        (0, _) | (_, None) => 0,
        (_, Some(n)) => reg
            .shadows()?
            .get(&n)
            .and_then(|s| s["records"].as_u64())
            .unwrap_or(0),
    };
    let facts = Facts {
        now: crate::registry::now_ts(),
        rules: &cfg.approvals,
        version: version.as_ref(),
        stages: &stages,
        signature: signature.as_ref(),
        shadow_records,
        min_shadow_records: cfg.staging.min_shadow_records,
    };
    let (action, version, stage, outcome) = match verdict(req, &facts) {
        Verdict::Accept(effect) => {
            let (a, v, s) = effect.stored();
            (Some(a), v, s, Ok(()))
        }
        Verdict::Refuse(why) => (req.action, req.version, req.stage, Err(why)),
    };
    Ok(Decision {
        source: req.source.clone(),
        action,
        version,
        stage,
        approver: if req.approver.is_empty() {
            "unknown".into()
        } else {
            req.approver.clone()
        },
        method: req.method,
        given_ts: req.given_ts,
        note: req.note.clone(),
        forced: req.forced,
        outcome,
    })
}

/// Decides every pending request in order; returns how many were accepted.
pub fn process(
    repo: &ModelRepo,
    cfg: &Config,
    reg: &Registry,
    files: &mut FileCache,
) -> Result<usize, ApprovalsError> {
    let mut accepted = 0;
    for req in pending_requests(repo, cfg, reg, files)? {
        let d = judge(&req, cfg, reg)?;
        let before = reg.targets()?;
        reg.record_decision(&d)?;
        match &d.outcome {
            Ok(()) => {
                accepted += 1;
                let after = reg.targets()?;
                let vs = champion_summary(reg, d.action, d.version)?;
                let action = d.action.map(|a| a.as_str()).unwrap_or("unknown");
                tracing::info!(
                    version = d.version,
                    approver = %d.approver,
                    how = %d.method,
                    forced = d.forced,
                    "{} accepted: {action} v{} by {}{}{}{vs}",
                    req.label,
                    d.version.unwrap_or(0),
                    d.approver,
                    if d.forced { " (forced)" } else { "" },
                    describe_moves(&before, &after)
                );
            }
            Err(why) => tracing::warn!(approver = %d.approver, how = %d.method, "{why}"),
        }
    }
    Ok(accepted)
}

/// "; vs production v1: ROC-AUC +0.0123, ..." for an approve or promote, so the reviewer's log
/// line says whether the version beats the one in production.
fn champion_summary(
    reg: &Registry,
    action: Option<Action>,
    version: Option<i64>,
) -> Result<String, ApprovalsError> {
    let (Some(Action::Approve | Action::Promote), Some(n)) = (action, version) else {
        return Ok(String::new());
    };
    let champions: Option<crate::pipeline::champion::Champions> = reg
        .version(n)?
        .and_then(|v| v.champion)
        .and_then(|c| serde_json::from_value(c).ok());
    Ok(match champions.and_then(|c| c.production) {
        Some(c) => format!("; production {}", c.summary()),
        None => String::new(),
    })
}

/// "; staging v2 → v1, production v2 → no model" for the stages a decision moves.
fn describe_moves(before: &Targets, after: &Targets) -> String {
    let show = |v: Option<i64>| {
        v.map(|n| format!("v{n}"))
            .unwrap_or_else(|| "no model".into())
    };
    let moved: Vec<String> = crate::domain::Stage::ALL
        .iter()
        .filter(|&&s| before.get(s) != after.get(s))
        .map(|&s| format!("{s} {} → {}", show(before.get(s)), show(after.get(s))))
        .collect();
    if moved.is_empty() {
        String::new()
    } else {
        format!("; {}", moved.join(", "))
    }
}
