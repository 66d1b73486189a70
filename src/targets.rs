//! Which version each stage serves: a pure function of the stored facts.
//!
//! Staging serves the newest Approved version whose staging tests have not failed.
//! Production serves the top of a stack folded over the accepted decisions in order: a
//! promotion pushes the version, a production rollback pops the top, a rejection removes the
//! version. Nothing here touches SQLite, git or HTTP; the registry loads the facts and asks.
//!
//! The same functions answer "what would this decision do?" ([`Facts::after`]), which is how a
//! reject or rollback that would leave a stage without a model is caught before it is applied.

use crate::domain::{Action, ApprovalStatus, Stage, StagingResult};

/// What the targets depend on for one version.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionFacts {
    pub version: i64,
    pub approval: ApprovalStatus,
    /// `None`: not tested yet.
    pub staging: Option<StagingResult>,
}

/// An accepted decision, as far as the targets are concerned.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub action: Action,
    pub version: Option<i64>,
    /// The stage a rollback names.
    pub stage: Option<Stage>,
}

/// Every fact the stage targets are derived from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub versions: Vec<VersionFacts>,
    /// Accepted decisions, oldest first.
    pub moves: Vec<Move>,
}

/// What each stage should serve.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    pub staging: Option<i64>,
    /// Production's history; production serves the last entry.
    pub production_stack: Vec<i64>,
}

impl Targets {
    pub fn production(&self) -> Option<i64> {
        self.production_stack.last().copied()
    }

    pub fn get(&self, stage: Stage) -> Option<i64> {
        match stage {
            Stage::Staging => self.staging,
            Stage::Production => self.production(),
        }
    }
}

/// Staging: the newest Approved version whose staging tests did not fail.
pub fn staging_target(versions: &[VersionFacts]) -> Option<i64> {
    versions
        .iter()
        .filter(|v| {
            v.approval == ApprovalStatus::Approved && v.staging != Some(StagingResult::Failed)
        })
        .map(|v| v.version)
        .max()
}

/// Production's stack, folded over accepted decisions in order.
pub fn production_stack(moves: &[Move]) -> Vec<i64> {
    let mut stack: Vec<i64> = Vec::new();
    for m in moves {
        match (m.action, m.version) {
            (Action::Promote, Some(n)) => {
                stack.retain(|&v| v != n);
                stack.push(n);
            }
            (Action::Reject, Some(n)) => stack.retain(|&v| v != n),
            (Action::Rollback, _) if m.stage == Some(Stage::Production) => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack
}

impl Facts {
    pub fn targets(&self) -> Targets {
        Targets {
            staging: staging_target(&self.versions),
            production_stack: production_stack(&self.moves),
        }
    }

    /// The facts as they would be once `m` is accepted.
    pub fn after(&self, m: &Move) -> Facts {
        let mut next = self.clone();
        let status = match m.action {
            Action::Reject => Some(ApprovalStatus::Rejected),
            Action::Approve => Some(ApprovalStatus::Approved),
            _ => None,
        };
        if let (Some(status), Some(n)) = (status, m.version) {
            for v in next.versions.iter_mut().filter(|v| v.version == n) {
                v.approval = status;
            }
        }
        next.moves.push(m.clone());
        next
    }
}

/// The stages that serve a model now and would serve none once `m` is accepted.
pub fn stages_left_empty(facts: &Facts, m: &Move) -> Vec<Stage> {
    let before = facts.targets();
    let after = facts.after(m).targets();
    Stage::ALL
        .iter()
        .copied()
        .filter(|&s| before.get(s).is_some() && after.get(s).is_none())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ApprovalStatus::{
        Approved as APPROVED, Pending as PENDING, Rejected as REJECTED,
    };

    fn v(version: i64, approval: ApprovalStatus, passed: Option<bool>) -> VersionFacts {
        VersionFacts {
            version,
            approval,
            staging: passed.map(|p| {
                if p {
                    StagingResult::Passed
                } else {
                    StagingResult::Failed
                }
            }),
        }
    }

    fn mv(action: &str, version: Option<i64>, stage: Option<&str>) -> Move {
        Move {
            action: action.parse().unwrap(),
            version,
            stage: stage.map(|s| s.parse().unwrap()),
        }
    }

    #[test]
    fn staging_is_the_newest_approved_untested_or_passed_version() {
        let versions = vec![
            v(1, APPROVED, Some(true)),
            v(2, APPROVED, Some(false)),
            v(3, PENDING, None),
            v(4, REJECTED, Some(true)),
        ];
        assert_eq!(staging_target(&versions), Some(1));
        let mut more = versions.clone();
        more.push(v(5, APPROVED, None));
        assert_eq!(staging_target(&more), Some(5));
        assert_eq!(staging_target(&[]), None);
    }

    #[test]
    fn production_is_a_stack_of_promotions() {
        let moves = vec![
            mv("promote", Some(1), None),
            mv("promote", Some(2), None),
            mv("promote", Some(3), None),
            mv("rollback", None, Some("production")),
            mv("reject", Some(1), None),
            // A staging rollback never touches the production stack itself.
            mv("rollback", None, Some("staging")),
        ];
        assert_eq!(production_stack(&moves), vec![2]);
        // Promoting a version again moves it to the top instead of duplicating it.
        let again = vec![
            mv("promote", Some(1), None),
            mv("promote", Some(2), None),
            mv("promote", Some(1), None),
        ];
        assert_eq!(production_stack(&again), vec![2, 1]);
    }

    #[test]
    fn rejecting_the_only_live_version_empties_both_stages() {
        let facts = Facts {
            versions: vec![v(1, APPROVED, Some(true))],
            moves: vec![mv("approve", Some(1), None), mv("promote", Some(1), None)],
        };
        let reject = mv("reject", Some(1), None);
        assert_eq!(
            stages_left_empty(&facts, &reject),
            vec![Stage::Staging, Stage::Production]
        );
        // With an earlier version both stages fall back to it: nothing is left empty.
        let facts = Facts {
            versions: vec![v(1, APPROVED, Some(true)), v(2, APPROVED, Some(true))],
            moves: vec![mv("promote", Some(1), None), mv("promote", Some(2), None)],
        };
        assert!(stages_left_empty(&facts, &mv("reject", Some(2), None)).is_empty());
        let after = facts.after(&mv("reject", Some(2), None)).targets();
        assert_eq!((after.staging, after.production()), (Some(1), Some(1)));
    }

    #[test]
    fn a_production_rollback_with_nothing_before_empties_production() {
        let facts = Facts {
            versions: vec![v(1, APPROVED, Some(true))],
            moves: vec![mv("promote", Some(1), None)],
        };
        let rb = mv("rollback", None, Some("production"));
        assert_eq!(stages_left_empty(&facts, &rb), vec![Stage::Production]);
    }

    #[test]
    fn rejecting_a_version_nobody_serves_leaves_nothing_empty() {
        let facts = Facts {
            versions: vec![v(1, APPROVED, Some(true)), v(2, PENDING, None)],
            moves: vec![mv("approve", Some(1), None), mv("promote", Some(1), None)],
        };
        assert!(stages_left_empty(&facts, &mv("reject", Some(2), None)).is_empty());
    }
}
