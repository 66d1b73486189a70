//! The approval rules, as one pure function: [`verdict`] of a [`Request`] against the
//! [`Facts`] it depends on. No SQLite, no git, no clock, no files: the caller loads the facts
//! (and checks a signature when one is required), and stores the outcome.
//!
//! Every rule of README's "Approval rules" is a row in the tests below.

use crate::config::ApprovalsConfig;
use crate::domain::{Action, ApprovalSource, ApprovalStatus, Stage, StagingResult};
use crate::registry::VersionRow;
use crate::targets::{self, stages_left_empty, Move};

use super::requests::{Request, FORCE_TRAILER};

/// How far in the future an approval may be stamped (clock skew between machines).
pub const MAX_CLOCK_SKEW_S: f64 = 120.0;

/// What a request is judged against.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The agent's clock (unix seconds).
    pub now: f64,
    pub rules: &'a ApprovalsConfig,
    /// The version the request names, if it names one that is registered.
    pub version: Option<&'a VersionRow>,
    /// What the stage targets are derived from.
    pub stages: &'a targets::Facts,
    /// With `require_signed`, the signature check of the request's tag, done by the caller.
    pub signature: Option<&'a Result<(), String>>,
    /// Shadow records the named version has had in staging so far.
    pub shadow_records: u64,
    /// `[endpoints.staging] min_shadow_records`: what a promote needs (0: no bar).
    pub min_shadow_records: u64,
}

/// What an accepted request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Approve(i64),
    Promote(i64),
    Reject(i64),
    /// Production returns to the version promoted before `from`.
    RollbackProduction {
        from: i64,
    },
    /// Staging rolls back by rejecting the version live there.
    RollbackStaging {
        rejects: i64,
    },
}

impl Effect {
    /// As the registry stores it (action, version, stage): a staging rollback is the reject of
    /// the version it removes, with stage `staging`, as earlier releases stored it.
    pub fn stored(self) -> (Action, Option<i64>, Option<Stage>) {
        match self {
            Effect::Approve(n) => (Action::Approve, Some(n), None),
            Effect::Promote(n) => (Action::Promote, Some(n), None),
            Effect::Reject(n) => (Action::Reject, Some(n), None),
            Effect::RollbackProduction { from } => {
                (Action::Rollback, Some(from), Some(Stage::Production))
            }
            Effect::RollbackStaging { rejects } => {
                (Action::Reject, Some(rejects), Some(Stage::Staging))
            }
        }
    }

    /// The move the stage targets fold over.
    pub fn as_move(self) -> Move {
        let (action, version, stage) = self.stored();
        Move {
            action,
            version,
            stage,
        }
    }
}

/// The decision about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept(Effect),
    /// Why, in one sentence that names the source and what to do.
    Refuse(String),
}

/// Whether `email` may take `action` (on `stage`). Approving uses the staging list, promoting
/// and rolling production back the production list (each falling back to `approvers`);
/// rejecting, which only ever takes a model out of service, is open to anyone on any list.
/// Empty lists: anyone.
pub fn may(rules: &ApprovalsConfig, action: Action, stage: Option<Stage>, email: &str) -> bool {
    let pick = |l: &Vec<String>| {
        if l.is_empty() {
            rules.approvers.clone()
        } else {
            l.clone()
        }
    };
    let list: Vec<String> = match (action, stage) {
        (Action::Approve, _) => pick(&rules.staging_approvers),
        (Action::Promote, _) | (Action::Rollback, Some(Stage::Production)) => {
            pick(&rules.production_approvers)
        }
        _ => {
            let mut all = rules.approvers.clone();
            all.extend(rules.staging_approvers.iter().cloned());
            all.extend(rules.production_approvers.iter().cloned());
            all
        }
    };
    list.is_empty() || list.iter().any(|x| x.eq_ignore_ascii_case(email.trim()))
}

/// The config list that decided `may` for `action`.
fn list_name(rules: &ApprovalsConfig, action: Action, stage: Option<Stage>) -> &'static str {
    match (action, stage) {
        (Action::Approve, _) if !rules.staging_approvers.is_empty() => "staging_approvers",
        (Action::Promote, _) | (Action::Rollback, Some(Stage::Production))
            if !rules.production_approvers.is_empty() =>
        {
            "production_approvers"
        }
        _ => "approvers",
    }
}

/// Judges `req` against `facts`.
pub fn verdict(req: &Request, facts: &Facts) -> Verdict {
    match judge(req, facts) {
        Ok(effect) => Verdict::Accept(effect),
        Err(why) => Verdict::Refuse(why),
    }
}

fn judge(req: &Request, f: &Facts) -> Result<Effect, String> {
    let label = &req.label;
    if let Some(defect) = &req.defect {
        return Err(defect.clone());
    }
    let action = req
        .action
        .ok_or_else(|| format!("{label} ignored: it names no action"))?;
    if !may(f.rules, action, req.stage, &req.approver) {
        return Err(format!(
            "{label} refused: {} is not in [approvals] {} in the config",
            if req.approver.is_empty() {
                "an approver without e-mail"
            } else {
                &req.approver
            },
            list_name(f.rules, action, req.stage)
        ));
    }
    if f.rules.require_signed && matches!(action, Action::Approve | Action::Promote) {
        if !req.source.is_tag() {
            return Err(format!(
                "{label} refused: require_signed is on, so {action} needs a signed tag (git tag -s {action}/vN); approval files cannot be signed"
            ));
        }
        match f.signature {
            Some(Ok(())) => {}
            Some(Err(why)) => {
                return Err(format!("{label} refused: require_signed is on and {why}"))
            }
            None => return Err(format!("{label} refused: its signature was not checked")),
        }
    }
    if req.given_ts > f.now + MAX_CLOCK_SKEW_S {
        return Err(format!(
            "{label} refused: it is stamped {}, in the future (more than {MAX_CLOCK_SKEW_S:.0} s ahead of this machine's clock); check the clock of the machine that made it and give the approval again",
            crate::domain::format_ts(req.given_ts)
        ));
    }
    if action == Action::Rollback {
        return rollback_rule(req, f);
    }
    let n = req
        .version
        .ok_or_else(|| format!("{label} ignored: it names no version"))?;
    let Some(v) = f.version.filter(|v| v.version == n) else {
        return Err(format!("{label} refused: there is no version v{n}"));
    };
    if req.commit.as_deref() != Some(v.commit.as_str()) {
        return Err(format!(
            "{label} refused: it points at {} but v{n} was built from commit {}",
            short(req.commit.as_deref().unwrap_or("nothing")),
            short(&v.commit)
        ));
    }
    match action {
        Action::Approve => approve_rule(req, v).map(|()| Effect::Approve(n)),
        Action::Promote => promote_rule(req, v, f).map(|()| Effect::Promote(n)),
        Action::Reject if v.approval == ApprovalStatus::Rejected => {
            Err(format!("{label} refused: v{n} is already rejected"))
        }
        Action::Reject => {
            let effect = Effect::Reject(n);
            let empty = stages_left_empty(f.stages, &effect.as_move());
            if !empty.is_empty() && !req.forced {
                let stages = join(&empty);
                return Err(format!(
                    "{label} refused: v{n} is the only version left for {stages}, so rejecting it would leave {stages} without a model; nothing changed. {}",
                    force_hint(req)
                ));
            }
            Ok(effect)
        }
        Action::Rollback => unreachable!("handled above"),
    }
}

fn rollback_rule(req: &Request, f: &Facts) -> Result<Effect, String> {
    let label = &req.label;
    let targets = f.stages.targets();
    match req.stage {
        Some(Stage::Production) => {
            let stack = &targets.production_stack;
            match stack.last() {
                None => Err(format!(
                    "{label} refused: production has no previous version to roll back to: it serves no model"
                )),
                Some(_) if stack.len() < 2 && !req.forced => Err(format!(
                    "{label} refused: production has no previous version to roll back to, so it would be left without a model; nothing changed. {}",
                    force_hint(req)
                )),
                Some(&from) => Ok(Effect::RollbackProduction { from }),
            }
        }
        Some(Stage::Staging) => {
            let Some(n) = targets.staging else {
                return Err(format!("{label} refused: nothing is deployed to staging"));
            };
            let effect = Effect::RollbackStaging { rejects: n };
            let empty = stages_left_empty(f.stages, &effect.as_move());
            if !empty.is_empty() && !req.forced {
                let also = if targets.production() == Some(n) {
                    format!(" It rejects v{n}, which production serves too.")
                } else {
                    String::new()
                };
                return Err(format!(
                    "{label} refused: it would leave {} without a model;{also} nothing changed. {}",
                    join(&empty),
                    force_hint(req)
                ));
            }
            Ok(effect)
        }
        None => Err(format!(
            "{label} ignored: rollback needs stage = \"staging\" or \"production\""
        )),
    }
}

fn approve_rule(req: &Request, v: &VersionRow) -> Result<(), String> {
    let (label, n) = (&req.label, v.version);
    match v.approval {
        ApprovalStatus::Rejected => Err(format!(
            "{label} refused: v{n} was rejected; a rejected version cannot be approved"
        )),
        ApprovalStatus::Approved => Err(format!("{label} refused: v{n} is already approved")),
        ApprovalStatus::Pending if req.given_ts < v.registered_ts.floor() => Err(format!(
            "{label} refused: it was given before v{n} was registered"
        )),
        ApprovalStatus::Pending => Ok(()),
    }
}

fn promote_rule(req: &Request, v: &VersionRow, f: &Facts) -> Result<(), String> {
    let (label, n) = (&req.label, v.version);
    if f.rules.separation_of_duties
        && !v.author_email.is_empty()
        && v.author_email.eq_ignore_ascii_case(req.approver.trim())
    {
        return Err(format!(
            "{label} refused: separation of duties: {} authored v{n}'s source commit and may not promote it to production; another approver must (or set [approvals] separation_of_duties = false)",
            req.approver
        ));
    }
    match v.approval {
        ApprovalStatus::Rejected => return Err(format!("{label} refused: v{n} was rejected")),
        ApprovalStatus::Pending => {
            return Err(format!(
            "{label} refused: v{n} is {}; approve it (approve/v{n}) and let it pass staging first",
            v.approval
        ))
        }
        ApprovalStatus::Approved => {}
    }
    match (v.staging_result, v.staging_ts) {
        // Tag times have one-second resolution: a promotion stamped in the very second the
        // tests passed cannot be shown to come after them, so it is refused too.
        (Some(StagingResult::Passed), Some(ts)) if req.given_ts > ts.floor() => {}
        (Some(StagingResult::Passed), Some(ts)) if req.given_ts == ts.floor() => {
            return Err(format!(
                "{label} refused: it is stamped in the same second v{n} passed its staging tests, so it cannot be shown to come after them; {} a second later",
                give_again(req)
            ))
        }
        (Some(StagingResult::Passed), _) => {
            return Err(format!(
                "{label} refused: it was given before v{n} passed its staging tests; {}",
                give_again(req)
            ))
        }
        (Some(StagingResult::Failed), _) => {
            return Err(format!("{label} refused: v{n} failed its staging tests"))
        }
        (None, _) => {
            return Err(format!(
                "{label} refused: v{n} has not passed its staging tests yet; promote after staging passes"
            ))
        }
    }
    if f.stages.targets().production() == Some(n) {
        return Err(format!("{label} refused: v{n} is already in production"));
    }
    // Shadow records come from production's traffic: with nothing in production there is
    // nothing to mirror, and the first promotion needs none.
    let mirrored = f.stages.targets().production().is_some();
    if mirrored && f.shadow_records < f.min_shadow_records {
        return Err(format!(
            "{label} refused: v{n} has {} shadow records in staging and [endpoints.staging] min_shadow_records asks for {}; {} still missing ({})",
            f.shadow_records,
            f.min_shadow_records,
            f.min_shadow_records - f.shadow_records,
            give_again(req)
        ));
    }
    Ok(())
}

fn join(stages: &[Stage]) -> String {
    stages
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// How to ask again for a decision that leaves a stage without a model.
fn force_hint(req: &Request) -> String {
    let how = match (&req.source, req.action, req.version) {
        (ApprovalSource::Tag { .. }, Some(a), Some(n)) => format!(
            "`rcfops {a} {n} --force`, or a new tag whose message has the line `{FORCE_TRAILER}`"
        ),
        (_, Some(Action::Rollback), _) => format!(
            "`rcfops rollback {} --force`, or a new approval file with `force = true`",
            req.stage.map(|s| s.as_str()).unwrap_or("STAGE")
        ),
        _ => "a new approval file with `force = true`".to_string(),
    };
    format!("To do it anyway, ask again with {how}")
}

/// "create a new promote tag" or "write a new approval file", after the source at hand.
fn give_again(req: &Request) -> String {
    match (&req.source, req.action) {
        (ApprovalSource::Tag { .. }, Some(a)) => format!("create a new {a} tag"),
        _ => "write a new approval file".to_string(),
    }
}

fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}

#[cfg(test)]
mod tests;
