//! Notifications: which transitions are announced, what the announcement says, and how it
//! reaches people (webhooks signed the Standard Webhooks way, Slack, local commands).
//!
//! The outbox lives in the registry: the row announcing a transition is written by the same
//! SQLite transaction as the transition (see `registry::outbox`), so a transition that happened
//! is announced even across a kill -9. This module holds:
//!
//! - the pure part: [`event_for_audit`] (which audit events are announced), [`next_step`]
//!   (the command a person runs next), [`cloudevent`] (the envelope), [`policy`] (what follows
//!   an attempt: delivered, retry at, dead, sink disabled) and [`sign`] (Standard Webhooks);
//! - the effects at the edge: [`deliver`] (one attempt against one sink) and [`dispatcher`]
//!   (one task per sink, off the reconciler's path, level-triggered from the stored rows).

pub mod deliver;
pub mod dispatcher;
pub mod policy;
pub mod sign;

use serde::{Deserialize, Serialize};

use crate::domain::{EventType, Stage};

/// What an announcement carries (the CloudEvent's `data`), derived from the audit event it
/// announces and stored in the outbox row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventData {
    pub event: EventType,
    /// The audit event's id (`rcfops logs`, `status --json` audit trail).
    pub audit_id: i64,
    pub version: Option<i64>,
    /// The version's source commit, or the run's commit.
    pub commit: Option<String>,
    pub model_group: Option<String>,
    pub stage: Option<Stage>,
    pub run: Option<i64>,
    /// Who acted: a tagger e-mail, an approver, or `agent`.
    pub actor: String,
    /// How: tag, file, cli, pipeline, deploy, staging-tests.
    pub how: String,
    /// The audit event as recorded (e.g. `production.rollback`).
    pub audit_event: String,
    pub detail: String,
    /// Where a person is needed: the exact command (and the tag) to run next.
    pub next: Option<NextStep>,
}

/// The next step a person takes, as a CLI command and as the equivalent git tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextStep {
    pub command: String,
    pub tag: Option<String>,
    pub why: String,
}

/// Which notification an audit event raises, if any. `event` is the audit event name as the
/// registry writes it (`version.registered`, `promote.accepted`, `staging.deploy`, ...).
pub fn event_for_audit(event: &str) -> Option<EventType> {
    use EventType::*;
    let (head, tail) = event.split_once('.')?;
    let stage = head.parse::<Stage>().is_ok();
    Some(match (head, tail) {
        ("version", "registered") => VersionPending,
        ("approve" | "promote", "accepted") => VersionApproved,
        ("reject", "accepted") => VersionRejected,
        (_, "refused") => ApprovalRefused,
        ("run", "failed") => RunFailed,
        ("monitor", "drift") => MonitorDrift,
        ("staging", "passed") => StagingTestsPassed,
        ("staging", "failed") => StagingTestsFailed,
        (_, "deploy") if stage => StageDeployed,
        (_, "rollback" | "undeploy") if stage => StageRolledBack,
        (_, "deploy-refused") if stage => StageDeployFailed,
        _ => return None,
    })
}

/// The stage an audit event is about, when its name starts with one.
pub fn stage_of_audit(event: &str, ty: EventType) -> Option<Stage> {
    match ty {
        EventType::StagingTestsPassed | EventType::StagingTestsFailed => Some(Stage::Staging),
        EventType::VersionApproved if event.starts_with("promote.") => Some(Stage::Production),
        EventType::VersionApproved => Some(Stage::Staging),
        _ => event.split_once('.').and_then(|(h, _)| h.parse().ok()),
    }
}

/// The step a person takes after `ty`, when one is needed.
pub fn next_step(ty: EventType, version: Option<i64>, commit: Option<&str>) -> Option<NextStep> {
    let tag = |action: &str, n: i64| {
        commit.map(|c| format!("git tag -a {action}/v{n} {c} -m \"{action} v{n}\""))
    };
    match (ty, version) {
        (EventType::VersionPending, Some(n)) => Some(NextStep {
            command: format!("rcfops approve {n}"),
            tag: tag("approve", n),
            why: format!("v{n} waits for approval to be deployed to staging"),
        }),
        (EventType::StagingTestsPassed, Some(n)) => Some(NextStep {
            command: format!("rcfops promote {n}"),
            tag: tag("promote", n),
            why: format!("v{n} passed its staging tests and waits for promotion to production"),
        }),
        (EventType::StagingTestsFailed, Some(n)) => Some(NextStep {
            command: format!("rcfops status; rcfops reject {n}"),
            tag: tag("reject", n),
            why: format!(
                "v{n} failed its staging tests: read the detail, then reject it or commit a fix"
            ),
        }),
        (EventType::RunFailed, _) => Some(NextStep {
            command: "rcfops logs".into(),
            tag: None,
            why: "the run failed: fix the commit and push a new one".into(),
        }),
        (EventType::MonitorDrift, Some(n)) => Some(NextStep {
            command: format!("rcfops monitor --version {n}"),
            tag: None,
            why: format!(
                "v{n}'s live traffic or live quality moved: read the windows and the drifted features, then retrain, roll back or accept"
            ),
        }),
        (EventType::ApprovalRefused, _) => Some(NextStep {
            command: "rcfops status".into(),
            tag: None,
            why: "an approval was refused: read the reason, then create a new tag or approval file"
                .into(),
        }),
        (EventType::StageDeployFailed, _) => Some(NextStep {
            command: "rcfops logs".into(),
            tag: None,
            why: "a deployment was refused: the stage keeps its previous model".into(),
        }),
        _ => None,
    }
}

/// One line a person reads (Slack text, `notify list`).
pub fn summary(d: &EventData) -> String {
    let v = d.version.map(|n| format!("v{n}")).unwrap_or_default();
    let what = match d.event {
        EventType::VersionPending => format!("{v} is waiting for approval"),
        EventType::VersionApproved => match d.stage {
            Some(Stage::Production) => format!("{v} was promoted to production by {}", d.actor),
            _ => format!("{v} was approved for staging by {}", d.actor),
        },
        EventType::VersionRejected => format!("{v} was rejected by {}", d.actor),
        EventType::StageDeployed => format!("{} now serves {v}", stage_text(d.stage)),
        EventType::StageRolledBack => format!("{}: {}", stage_text(d.stage), d.detail),
        EventType::StageDeployFailed => format!("{}: {}", stage_text(d.stage), d.detail),
        EventType::StagingTestsPassed => format!("{v} passed its staging tests"),
        EventType::StagingTestsFailed => format!("{v} failed its staging tests: {}", d.detail),
        EventType::RunFailed => format!(
            "run {} failed: {}",
            d.run.map(|r| r.to_string()).unwrap_or_default(),
            d.detail
        ),
        EventType::ApprovalRefused => format!("approval refused: {}", d.detail),
        EventType::MonitorDrift => format!("model monitor: {}", d.detail),
        EventType::Test => "test notification from rcfops".to_string(),
    };
    match &d.next {
        Some(n) => format!("{what}. Next: {}", n.command),
        None => what,
    }
}

fn stage_text(s: Option<Stage>) -> &'static str {
    s.map(Stage::as_str).unwrap_or("a stage")
}

/// A stored announcement, as the dispatcher reads it back.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The outbox row id.
    pub id: i64,
    pub at_ts: f64,
    pub data: EventData,
}

/// The message id: the Standard Webhooks `webhook-id` and the CloudEvent `id`, the same on
/// every attempt. `instance` makes ids from two registries distinct.
pub fn message_id(instance: &str, id: i64) -> String {
    format!("msg_{instance}_{id}")
}

/// The CloudEvents 1.0 envelope (structured JSON mode) of a stored announcement.
pub fn cloudevent(instance: &str, e: &Stored) -> serde_json::Value {
    let source = match &e.data.model_group {
        Some(g) => format!("/rcfops/{g}"),
        None => "/rcfops".to_string(),
    };
    let mut ce = serde_json::json!({
        "specversion": "1.0",
        "id": message_id(instance, e.id),
        "source": source,
        "type": format!("dev.rcfops.{}", e.data.event),
        "time": crate::domain::format_ts(e.at_ts),
        "datacontenttype": "application/json",
        "data": e.data,
    });
    if let Some(n) = e.data.version {
        ce["subject"] = format!("v{n}").into();
    }
    ce
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_transition_is_announced_once_and_measurements_never() {
        let rows = [
            ("version.registered", Some(EventType::VersionPending)),
            ("approve.accepted", Some(EventType::VersionApproved)),
            ("promote.accepted", Some(EventType::VersionApproved)),
            ("reject.accepted", Some(EventType::VersionRejected)),
            ("rollback.accepted", None), // the deployment that follows is announced
            ("approve.refused", Some(EventType::ApprovalRefused)),
            ("unknown.refused", Some(EventType::ApprovalRefused)),
            ("staging.deploy", Some(EventType::StageDeployed)),
            ("production.deploy", Some(EventType::StageDeployed)),
            ("production.rollback", Some(EventType::StageRolledBack)),
            ("staging.undeploy", Some(EventType::StageRolledBack)),
            (
                "production.deploy-refused",
                Some(EventType::StageDeployFailed),
            ),
            ("staging.passed", Some(EventType::StagingTestsPassed)),
            ("staging.failed", Some(EventType::StagingTestsFailed)),
            ("run.failed", Some(EventType::RunFailed)),
            ("run.started", None),
            ("run.skipped", None),
            ("run.interrupted", None),
            ("monitor.drift", Some(EventType::MonitorDrift)),
            ("nonsense", None),
            ("qa.deploy", None),
        ];
        for (audit, want) in rows {
            assert_eq!(event_for_audit(audit), want, "{audit}");
        }
    }

    #[test]
    fn stages_follow_the_audit_event() {
        let s = |e| stage_of_audit(e, event_for_audit(e).unwrap());
        assert_eq!(s("promote.accepted"), Some(Stage::Production));
        assert_eq!(s("approve.accepted"), Some(Stage::Staging));
        assert_eq!(s("production.rollback"), Some(Stage::Production));
        assert_eq!(s("staging.failed"), Some(Stage::Staging));
        assert_eq!(s("version.registered"), None);
    }

    #[test]
    fn a_pending_version_names_the_command_and_the_tag() {
        let n = next_step(EventType::VersionPending, Some(7), Some("abc123")).unwrap();
        assert_eq!(n.command, "rcfops approve 7");
        assert_eq!(
            n.tag.as_deref(),
            Some("git tag -a approve/v7 abc123 -m \"approve v7\"")
        );
        let p = next_step(EventType::StagingTestsPassed, Some(7), Some("abc123")).unwrap();
        assert_eq!(p.command, "rcfops promote 7");
        assert!(next_step(EventType::StageDeployed, Some(7), None).is_none());
        assert!(next_step(EventType::VersionRejected, Some(7), None).is_none());
    }

    #[test]
    fn the_envelope_is_cloudevents_1_0() {
        let data = EventData {
            event: EventType::VersionPending,
            audit_id: 12,
            version: Some(3),
            commit: Some("c0ffee".into()),
            model_group: Some("card-fraud".into()),
            stage: None,
            run: Some(4),
            actor: "agent".into(),
            how: "pipeline".into(),
            audit_event: "version.registered".into(),
            detail: "v3 from c0ffee is PendingManualApproval".into(),
            next: next_step(EventType::VersionPending, Some(3), Some("c0ffee")),
        };
        let e = Stored {
            id: 9,
            at_ts: 1_700_000_000.0,
            data,
        };
        let ce = cloudevent("ab12", &e);
        for key in ["specversion", "id", "source", "type"] {
            assert!(ce[key].is_string(), "{key} is required");
        }
        assert_eq!(ce["specversion"], "1.0");
        assert_eq!(ce["id"], "msg_ab12_9");
        assert_eq!(ce["type"], "dev.rcfops.version.pending");
        assert_eq!(ce["subject"], "v3");
        assert_eq!(ce["time"], "2023-11-14T22:13:20Z");
        assert_eq!(ce["data"]["next"]["command"], "rcfops approve 3");
        let back: EventData = serde_json::from_value(ce["data"].clone()).unwrap();
        assert_eq!(back, e.data);
        assert!(summary(&e.data).contains("v3 is waiting for approval. Next: rcfops approve 3"));
    }
}
