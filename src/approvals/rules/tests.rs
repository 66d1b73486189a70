//! One row per rule of README's "Approval rules", and property tests over random sequences of
//! decisions. Everything runs on plain data: no registry, no git, no clock.

use proptest::prelude::*;

use super::*;
use crate::domain::{ApprovalSource, Method};
use crate::targets::{Facts as StageFacts, VersionFacts};

const NOW: f64 = 1_800_000_000.0;

fn commit(n: i64) -> String {
    format!("{n:0>40}")
}

fn rules() -> ApprovalsConfig {
    ApprovalsConfig {
        dir: "approvals".into(),
        approvers: vec![],
        staging_approvers: vec![],
        production_approvers: vec![],
        separation_of_duties: true,
        require_signed: false,
        allowed_signers: None,
    }
}

fn version(n: i64, approval: ApprovalStatus, staging: Option<StagingResult>) -> VersionRow {
    VersionRow {
        version: n,
        model_group: "card-fraud".into(),
        commit: commit(n),
        run: n,
        registered_ts: NOW - 1000.0,
        author_email: "dana@bank.example".into(),
        spec_sha256: String::new(),
        data_sha256: String::new(),
        hyperparameters: serde_json::Value::Null,
        metrics: serde_json::Value::Null,
        artifact_sha256: String::new(),
        approval,
        approval_ts: None,
        staging_result: staging,
        staging_detail: None,
        staging_ts: staging.map(|_| NOW - 100.0),
        reject_reason: None,
        champion: None,
    }
}

fn tag(action: Action, n: i64) -> Request {
    Request {
        source: ApprovalSource::Tag {
            name: format!("{action}/v{n}"),
            object: "a".repeat(40),
        },
        label: format!("tag {action}/v{n}"),
        action: Some(action),
        version: Some(n),
        stage: None,
        commit: Some(commit(n)),
        approver: "lead@bank.example".into(),
        method: Method::Tag,
        given_ts: NOW - 10.0,
        defect: None,
        raw: Vec::new(),
        note: String::new(),
        forced: false,
    }
}

fn file(action: Action, n: Option<i64>, stage: Option<Stage>) -> Request {
    Request {
        source: ApprovalSource::File {
            name: "x.toml".into(),
            digest: "d".into(),
        },
        label: "approval file x.toml".into(),
        stage,
        version: n,
        commit: n.map(commit),
        method: Method::File,
        ..tag(action, n.unwrap_or(1))
    }
}

/// A world: registered versions and the accepted moves so far.
struct World {
    versions: Vec<VersionRow>,
    stages: StageFacts,
    rules: ApprovalsConfig,
    shadow_records: u64,
    min_shadow_records: u64,
}

impl World {
    fn new(versions: Vec<VersionRow>, moves: &[(Action, i64)]) -> World {
        let stages = StageFacts {
            versions: versions
                .iter()
                .map(|v| VersionFacts {
                    version: v.version,
                    approval: v.approval,
                    staging: v.staging_result,
                })
                .collect(),
            moves: moves
                .iter()
                .map(|&(action, n)| Move {
                    action,
                    version: Some(n),
                    stage: None,
                })
                .collect(),
        };
        World {
            versions,
            stages,
            rules: rules(),
            shadow_records: 0,
            min_shadow_records: 0,
        }
    }

    fn judge(&self, req: &Request) -> Verdict {
        self.judge_signed(req, None)
    }

    fn judge_signed(&self, req: &Request, signature: Option<&Result<(), String>>) -> Verdict {
        let facts = Facts {
            now: NOW,
            rules: &self.rules,
            version: req
                .version
                .and_then(|n| self.versions.iter().find(|v| v.version == n)),
            stages: &self.stages,
            signature,
            shadow_records: self.shadow_records,
            min_shadow_records: self.min_shadow_records,
        };
        verdict(req, &facts)
    }
}

fn refused(v: Verdict) -> String {
    match v {
        Verdict::Refuse(why) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// v1 Approved, passed staging, in staging and production; v2 pending.
fn live_v1() -> World {
    World::new(
        vec![
            version(1, ApprovalStatus::Approved, Some(StagingResult::Passed)),
            version(2, ApprovalStatus::Pending, None),
        ],
        &[(Action::Approve, 1), (Action::Promote, 1)],
    )
}

#[test]
fn defects_found_while_reading_are_refusals() {
    let w = live_v1();
    let mut r = tag(Action::Approve, 2);
    r.defect = Some("lightweight tag approve/v2 ignored: approval tags must be annotated".into());
    assert!(refused(w.judge(&r)).starts_with("lightweight tag approve/v2 ignored"));
}

#[test]
fn an_approval_names_a_registered_version_and_its_commit() {
    let w = live_v1();
    assert!(refused(w.judge(&tag(Action::Approve, 9))).ends_with("there is no version v9"));
    let mut r = tag(Action::Approve, 2);
    r.commit = Some(commit(1));
    assert!(refused(w.judge(&r)).contains("but v2 was built from commit"));
    assert_eq!(
        w.judge(&tag(Action::Approve, 2)),
        Verdict::Accept(Effect::Approve(2))
    );
}

#[test]
fn approve_only_a_pending_version_given_after_registration() {
    let w = live_v1();
    assert!(refused(w.judge(&tag(Action::Approve, 1))).ends_with("v1 is already approved"));
    let mut early = tag(Action::Approve, 2);
    early.given_ts = NOW - 5000.0;
    assert!(refused(w.judge(&early)).ends_with("it was given before v2 was registered"));
    let mut w = live_v1();
    w.versions[1].approval = ApprovalStatus::Rejected;
    assert!(refused(w.judge(&tag(Action::Approve, 2)))
        .ends_with("v2 was rejected; a rejected version cannot be approved"));
}

#[test]
fn promote_only_after_passed_staging_tests_given_after_them() {
    let mut w = World::new(
        vec![
            version(1, ApprovalStatus::Approved, Some(StagingResult::Passed)),
            version(2, ApprovalStatus::Approved, None),
            version(3, ApprovalStatus::Approved, Some(StagingResult::Failed)),
            version(4, ApprovalStatus::Pending, None),
        ],
        &[(Action::Approve, 1)],
    );
    assert_eq!(
        w.judge(&tag(Action::Promote, 1)),
        Verdict::Accept(Effect::Promote(1))
    );
    assert!(
        refused(w.judge(&tag(Action::Promote, 2))).contains("has not passed its staging tests yet")
    );
    assert!(refused(w.judge(&tag(Action::Promote, 3))).ends_with("v3 failed its staging tests"));
    assert!(refused(w.judge(&tag(Action::Promote, 4)))
        .contains("v4 is PendingManualApproval; approve it"));
    // Given before the tests passed; in the very same second (ambiguous).
    let mut before = tag(Action::Promote, 1);
    before.given_ts = NOW - 200.0;
    assert!(refused(w.judge(&before))
        .ends_with("it was given before v1 passed its staging tests; create a new promote tag"));
    let mut same = tag(Action::Promote, 1);
    same.given_ts = (NOW - 100.0).floor();
    assert!(refused(w.judge(&same)).contains("stamped in the same second"));
    // A file is told to write a new file, not to make a tag.
    let mut f = file(Action::Promote, Some(1), None);
    f.given_ts = NOW - 200.0;
    assert!(refused(w.judge(&f)).ends_with("write a new approval file"));
    // Already in production.
    w.stages.moves.push(Move {
        action: Action::Promote,
        version: Some(1),
        stage: None,
    });
    assert!(refused(w.judge(&tag(Action::Promote, 1))).ends_with("v1 is already in production"));
}

#[test]
fn a_promote_waits_for_enough_shadow_records() {
    let mut w = World::new(
        vec![version(
            1,
            ApprovalStatus::Approved,
            Some(StagingResult::Passed),
        )],
        &[(Action::Approve, 1)],
    );
    w.min_shadow_records = 500;
    w.shadow_records = 120;
    // Nothing in production: no traffic to mirror, so the first promotion needs none.
    assert_eq!(
        w.judge(&tag(Action::Promote, 1)),
        Verdict::Accept(Effect::Promote(1))
    );
    w.versions.push(version(
        2,
        ApprovalStatus::Approved,
        Some(StagingResult::Passed),
    ));
    w.stages.moves.push(Move {
        action: Action::Promote,
        version: Some(2),
        stage: None,
    });
    assert!(refused(w.judge(&tag(Action::Promote, 1))).contains(
        "v1 has 120 shadow records in staging and [endpoints.staging] min_shadow_records asks for 500; 380 still missing"
    ));
    w.shadow_records = 500;
    assert_eq!(
        w.judge(&tag(Action::Promote, 1)),
        Verdict::Accept(Effect::Promote(1))
    );
}

#[test]
fn a_second_reject_is_refused() {
    let mut w = live_v1();
    w.versions[1].approval = ApprovalStatus::Rejected;
    assert!(refused(w.judge(&tag(Action::Reject, 2))).ends_with("v2 is already rejected"));
}

#[test]
fn who_may_approve_follows_the_lists() {
    let mut w = live_v1();
    w.rules.approvers = vec!["lead@bank.example".into()];
    let mut r = tag(Action::Approve, 2);
    r.approver = "mallory@bank.example".into();
    assert!(refused(w.judge(&r)).ends_with("is not in [approvals] approvers in the config"));
    r.approver = "LEAD@bank.example".into();
    assert_eq!(
        w.judge(&r),
        Verdict::Accept(Effect::Approve(2)),
        "case-insensitive"
    );

    // The staging list replaces `approvers` for approve; the production list for promote.
    w.rules.staging_approvers = vec!["dana@bank.example".into()];
    w.rules.production_approvers = vec!["boss@bank.example".into()];
    assert!(refused(w.judge(&r)).contains("[approvals] staging_approvers"));
    let mut p = tag(Action::Promote, 1);
    p.approver = "dana@bank.example".into();
    assert!(refused(w.judge(&p)).contains("[approvals] production_approvers"));
    let mut rb = file(Action::Rollback, None, Some(Stage::Production));
    rb.approver = "dana@bank.example".into();
    assert!(refused(w.judge(&rb)).contains("[approvals] production_approvers"));
    // Rejecting is open to anyone on any list.
    let mut rj = tag(Action::Reject, 2);
    rj.approver = "dana@bank.example".into();
    assert_eq!(w.judge(&rj), Verdict::Accept(Effect::Reject(2)));
    rj.approver = "mallory@bank.example".into();
    assert!(refused(w.judge(&rj)).contains("is not in [approvals] approvers"));
}

#[test]
fn separation_of_duties_keeps_the_author_from_promoting() {
    let mut w = World::new(
        vec![version(
            1,
            ApprovalStatus::Approved,
            Some(StagingResult::Passed),
        )],
        &[(Action::Approve, 1)],
    );
    let mut r = tag(Action::Promote, 1);
    r.approver = "Dana@Bank.example".into();
    assert!(refused(w.judge(&r)).contains("separation of duties: Dana@Bank.example authored v1"));
    // Even from the production list.
    w.rules.production_approvers = vec!["dana@bank.example".into(), "lead@bank.example".into()];
    assert!(refused(w.judge(&r)).contains("separation of duties"));
    assert_eq!(
        w.judge(&tag(Action::Promote, 1)),
        Verdict::Accept(Effect::Promote(1))
    );
    w.rules.separation_of_duties = false;
    assert_eq!(w.judge(&r), Verdict::Accept(Effect::Promote(1)));
}

#[test]
fn signed_approvals_need_a_good_signature_on_a_tag() {
    let mut w = live_v1();
    w.rules.require_signed = true;
    let r = tag(Action::Approve, 2);
    assert_eq!(
        w.judge_signed(&r, Some(&Ok(()))),
        Verdict::Accept(Effect::Approve(2))
    );
    let bad = Err("it is not signed".to_string());
    assert!(refused(w.judge_signed(&r, Some(&bad)))
        .ends_with("require_signed is on and it is not signed"));
    assert!(refused(w.judge(&file(Action::Approve, Some(2), None)))
        .contains("approval files cannot be signed"));
    // Reject and rollback need no signature.
    let mut w = World::new(
        vec![
            version(1, ApprovalStatus::Approved, Some(StagingResult::Passed)),
            version(2, ApprovalStatus::Approved, Some(StagingResult::Passed)),
        ],
        &[(Action::Promote, 1), (Action::Promote, 2)],
    );
    w.rules.require_signed = true;
    assert_eq!(
        w.judge(&tag(Action::Reject, 2)),
        Verdict::Accept(Effect::Reject(2))
    );
}

#[test]
fn approvals_stamped_in_the_future_are_refused() {
    let w = live_v1();
    let mut r = tag(Action::Approve, 2);
    r.given_ts = NOW + MAX_CLOCK_SKEW_S - 1.0;
    assert_eq!(
        w.judge(&r),
        Verdict::Accept(Effect::Approve(2)),
        "within the skew"
    );
    r.given_ts = NOW + MAX_CLOCK_SKEW_S + 1.0;
    assert!(refused(w.judge(&r)).contains("in the future"));
}

#[test]
fn nothing_is_left_without_a_model_unless_forced() {
    let w = live_v1();
    let why = refused(w.judge(&tag(Action::Reject, 1)));
    assert!(
        why.contains("would leave staging and production without a model"),
        "{why}"
    );
    assert!(why.contains("rcfops reject 1 --force"), "{why}");
    let mut forced = tag(Action::Reject, 1);
    forced.forced = true;
    assert_eq!(w.judge(&forced), Verdict::Accept(Effect::Reject(1)));

    let rb = file(Action::Rollback, None, Some(Stage::Staging));
    let why = refused(w.judge(&rb));
    assert!(why.contains("which production serves too"), "{why}");
    assert!(why.contains("rcfops rollback staging --force"), "{why}");
    let rb = Request { forced: true, ..rb };
    assert_eq!(
        w.judge(&rb),
        Verdict::Accept(Effect::RollbackStaging { rejects: 1 })
    );

    let rb = file(Action::Rollback, None, Some(Stage::Production));
    assert!(refused(w.judge(&rb)).contains("production has no previous version to roll back to"));
    let rb = Request { forced: true, ..rb };
    assert_eq!(
        w.judge(&rb),
        Verdict::Accept(Effect::RollbackProduction { from: 1 })
    );
}

#[test]
fn rollbacks_need_something_to_roll_back() {
    let w = World::new(vec![version(1, ApprovalStatus::Pending, None)], &[]);
    assert!(
        refused(w.judge(&file(Action::Rollback, None, Some(Stage::Staging))))
            .ends_with("nothing is deployed to staging")
    );
    assert!(
        refused(w.judge(&file(Action::Rollback, None, Some(Stage::Production))))
            .contains("it serves no model")
    );
    // With an earlier promotion, production returns to it.
    let w = World::new(
        vec![
            version(1, ApprovalStatus::Approved, Some(StagingResult::Passed)),
            version(2, ApprovalStatus::Approved, Some(StagingResult::Passed)),
        ],
        &[(Action::Promote, 1), (Action::Promote, 2)],
    );
    assert_eq!(
        w.judge(&file(Action::Rollback, None, Some(Stage::Production))),
        Verdict::Accept(Effect::RollbackProduction { from: 2 })
    );
}

#[test]
fn a_staging_rollback_is_stored_as_the_reject_it_is() {
    assert_eq!(
        Effect::RollbackStaging { rejects: 3 }.stored(),
        (Action::Reject, Some(3), Some(Stage::Staging))
    );
    assert_eq!(
        Effect::RollbackProduction { from: 2 }.stored(),
        (Action::Rollback, Some(2), Some(Stage::Production))
    );
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Op {
    Ask {
        action: Action,
        n: i64,
        stage: Stage,
        forced: bool,
    },
    /// The agent runs the staging tests of the staging version, with this result.
    Test(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4usize, 1..5i64, any::<bool>(), any::<bool>()).prop_map(|(a, n, s, forced)| Op::Ask {
            action: Action::ALL[a],
            n,
            stage: if s { Stage::Staging } else { Stage::Production },
            forced,
        }),
        any::<bool>().prop_map(Op::Test),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_histories_keep_the_invariants(ops in proptest::collection::vec(op(), 1..60)) {
        let mut w = World::new(
            (1..=4).map(|n| version(n, ApprovalStatus::Pending, None)).collect(),
            &[],
        );
        w.rules.separation_of_duties = false;
        for (i, op) in ops.into_iter().enumerate() {
            let now = NOW + i as f64 * 10.0;
            let before = w.stages.targets();
            match op {
                Op::Test(pass) => {
                    if let Some(n) = before.staging {
                        let v = w.versions.iter_mut().find(|v| v.version == n).unwrap();
                        if v.staging_result.is_none() {
                            let r = if pass { StagingResult::Passed } else { StagingResult::Failed };
                            v.staging_result = Some(r);
                            v.staging_ts = Some(now);
                            w.stages.versions[(n - 1) as usize].staging = Some(r);
                        }
                    }
                }
                Op::Ask { action, n, stage, forced } => {
                    let mut r = if action == Action::Rollback {
                        file(action, None, Some(stage))
                    } else {
                        tag(action, n)
                    };
                    r.given_ts = now + 1.0;
                    r.forced = forced;
                    let facts = Facts {
                        now: now + 1.0,
                        rules: &w.rules,
                        version: r.version.and_then(|n| w.versions.iter().find(|v| v.version == n)),
                        stages: &w.stages,
                        signature: None,
                        shadow_records: 0,
                        min_shadow_records: 0,
                    };
                    if let Verdict::Accept(effect) = verdict(&r, &facts) {
                        let m = effect.as_move();
                        w.stages = w.stages.after(&m);
                        for v in w.versions.iter_mut() {
                            v.approval = w.stages.versions[(v.version - 1) as usize].approval;
                        }
                        let after = w.stages.targets();
                        if !forced {
                            for s in Stage::ALL {
                                prop_assert!(
                                    before.get(*s).is_none() || after.get(*s).is_some(),
                                    "{effect:?} emptied {s} without force"
                                );
                            }
                        }
                        if let Effect::RollbackProduction { .. } = effect {
                            let stack = &before.production_stack;
                            prop_assert_eq!(
                                after.production(),
                                stack.len().checked_sub(2).map(|i| stack[i]),
                                "a rollback returns exactly the previous promotion"
                            );
                        }
                    }
                }
            }
            let t = w.stages.targets();
            let get = |n: i64| w.versions.iter().find(|v| v.version == n).unwrap();
            for n in t.staging.into_iter().chain(t.production()) {
                prop_assert!(get(n).approval != ApprovalStatus::Rejected, "v{n} is rejected and live");
            }
            if let Some(n) = t.staging {
                prop_assert!(get(n).staging_result != Some(StagingResult::Failed));
            }
            if let Some(n) = t.production() {
                prop_assert_eq!(
                    get(n).staging_result,
                    Some(StagingResult::Passed),
                    "production serves v{} without passed staging tests", n
                );
            }
        }
    }
}
