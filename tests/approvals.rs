//! Every refusal of the approval rules, with real annotated tags and approval files: each is
//! logged once, recorded, and changes nothing; a refusal belongs to its tag object.

mod common;

use common::*;

fn approval_count(p: &Project) -> (usize, usize) {
    let s = p.status();
    let approved = s["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["approval"] == "Approved")
        .count();
    let rejected = s["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["approval"] == "Rejected")
        .count();
    (approved, rejected)
}

#[test]
fn refusals_change_nothing() {
    let p = Project::new("");
    let _agent = p.start();
    p.wait_version(1);
    let v1 = p.version_commit(1);
    let other = p.commit(&[("NOTES.md", b"x\n")], "another commit");
    p.wait_version(2);

    // A tag on another commit.
    p.tag("approve/v1", &other, "dana@bank.example");
    let (o, why) = p.wait_decision("tag:approve/v1@");
    assert_eq!(o, "refused");
    assert!(why.contains("v1 was built from commit"), "{why}");
    assert_eq!(approval_count(&p), (0, 0));

    // The refusal belongs to that tag object: delete it, create a correct one, and it works.
    p.delete_tag("approve/v1");
    let good = p.tag("approve/v1", &v1, "dana@bank.example");
    let (o, why) = p.wait_decision(&format!("tag:approve/v1@{good}"));
    assert_eq!(o, "accepted", "{why}");

    // Unknown version.
    p.tag("approve/v9", &v1, "dana@bank.example");
    let (o, why) = p.wait_decision("tag:approve/v9@");
    assert_eq!(o, "refused");
    assert!(why.contains("no version v9"), "{why}");

    // Promote before the staging tests passed (v2 is still pending).
    let v2 = p.version_commit(2);
    p.tag("promote/v2", &v2, "lead@bank.example");
    let (o, why) = p.wait_decision("tag:promote/v2@");
    assert_eq!(o, "refused");
    assert!(why.contains("PendingManualApproval"), "{why}");

    // Approve after reject.
    p.tag("reject/v2", &v2, "risk@bank.example");
    assert_eq!(p.wait_decision("tag:reject/v2@").0, "accepted");
    p.tag("approve/v2", &v2, "dana@bank.example");
    let (o, why) = p.wait_decision("tag:approve/v2@");
    assert_eq!(o, "refused");
    assert!(why.contains("rejected"), "{why}");

    // Malformed names and lightweight tags are ignored with a reason.
    p.tag("approve/2", &v2, "dana@bank.example");
    let (o, why) = p.wait_decision("tag:approve/2@");
    assert_eq!(o, "refused");
    assert!(why.contains("approve/vN"), "{why}");
    p.lightweight_tag("promote/v1", &v1);
    let (o, why) = p.wait_decision("tag:promote/v1@");
    assert_eq!(o, "refused");
    assert!(why.contains("lightweight"), "{why}");

    let s = p.status();
    assert_eq!(version(&s, 1).unwrap()["approval"], "Approved");
    assert_eq!(version(&s, 2).unwrap()["approval"], "Rejected");
    assert!(
        stage_version(&s, "production").is_none(),
        "no refused tag may deploy anything"
    );

    // Each refusal is logged once, however many resyncs pass.
    std::thread::sleep(std::time::Duration::from_millis(900));
    let log = p.log_lines();
    assert_eq!(log.matches("tag approve/v9 refused").count(), 1, "{log}");
    let refused = p
        .registry()
        .audit_log(1000)
        .unwrap()
        .into_iter()
        .filter(|a| a.event.ends_with(".refused"))
        .count();
    assert_eq!(refused, 6);
}

#[test]
fn a_promote_given_before_staging_passed_is_not_held() {
    let p = Project::new("");
    let _agent = p.start();
    p.wait_version(1);
    let v1 = p.version_commit(1);
    // Both tags exist before the agent looks: the approve is honoured, the promote was given
    // before the staging tests passed and is refused rather than held until they pass.
    p.tag("approve/v1", &v1, "dana@bank.example");
    p.tag("promote/v1", &v1, "lead@bank.example");
    assert_eq!(p.wait_decision("tag:approve/v1@").0, "accepted");
    let (o, why) = p.wait_decision("tag:promote/v1@");
    assert_eq!(o, "refused", "{why}");
    p.wait_status("staging tests", |s| {
        version(s, 1).unwrap()["staging_tests"] == "Passed"
    });
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert!(stage_version(&p.status(), "production").is_none());
    // A new promote tag after the tests passed works.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    p.delete_tag("promote/v1");
    p.tag("promote/v1", &v1, "lead@bank.example");
    p.wait_status("production", |s| stage_version(s, "production") == Some(1));
}

#[test]
fn approvers_allow_list_is_enforced_for_tags_and_files() {
    let p = Project::new("approvers = [\"lead@bank.example\"]");
    let _agent = p.start();
    p.wait_version(1);
    let v1 = p.version_commit(1);
    p.tag("approve/v1", &v1, "mallory@evil.example");
    let (o, why) = p.wait_decision("tag:approve/v1@");
    assert_eq!(o, "refused");
    assert!(
        why.contains("mallory@evil.example is not in [approvals] approvers"),
        "{why}"
    );

    // An approval file from someone not allowed.
    let file = format!(
        "action = \"approve\"\nversion = 1\ncommit = \"{v1}\"\napprover = \"intern@bank.example\"\ncreated = \"{}\"\n",
        rcfops::registry::format_ts(rcfops::registry::now_ts().ceil())
    );
    std::fs::create_dir_all(p.state.join("approvals")).unwrap();
    std::fs::write(p.state.join("approvals/approve-v1.toml"), &file).unwrap();
    let (o, why) = p.wait_decision("file:approve-v1.toml@");
    assert_eq!(o, "refused", "{why}");

    // Garbage and symlinked files are refused with a reason.
    std::fs::write(p.state.join("approvals/garbage.toml"), "approve = [[[").unwrap();
    let (o, why) = p.wait_decision("file:garbage.toml@");
    assert_eq!(o, "refused");
    assert!(why.contains("garbage.toml ignored"), "{why}");
    std::os::unix::fs::symlink(
        p.state.join("approvals/approve-v1.toml"),
        p.state.join("approvals/link.toml"),
    )
    .unwrap();
    let (o, why) = p.wait_decision("file:link.toml@");
    assert_eq!(o, "refused");
    assert!(why.contains("symlink"), "{why}");
    assert_eq!(
        p.status()["versions"][0]["approval"],
        "PendingManualApproval"
    );

    // The allowed approver, by file written by the CLI path's format, is accepted.
    std::fs::write(
        p.state.join("approvals/approve-v1-lead.toml"),
        file.replace("intern@", "lead@"),
    )
    .unwrap();
    let (o, why) = p.wait_decision("file:approve-v1-lead.toml@");
    assert_eq!(o, "accepted", "{why}");
    p.wait_status("staging", |s| stage_version(s, "staging") == Some(1));
    let reg = p.registry();
    let a = reg
        .approvals()
        .unwrap()
        .into_iter()
        .find(|a| a.outcome == rcfops::domain::Outcome::Accepted)
        .unwrap();
    assert_eq!(
        (a.approver.as_str(), a.method.as_str()),
        ("lead@bank.example", "file")
    );
}

#[test]
fn cli_approval_commands_create_real_tags_and_files() {
    let p = Project::new("");
    let _agent = p.start();
    p.wait_version(1);
    // Tagger identity for the CLI comes from git config.
    let mut cfg = p.repo().config().unwrap();
    cfg.set_str("user.name", "Dana").unwrap();
    cfg.set_str("user.email", "dana@bank.example").unwrap();
    let out = p.rcfops(&["approve", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("accepted by the agent"));
    let repo = p.repo();
    let tag = repo.revparse_single("refs/tags/approve/v1").unwrap();
    let tag = tag.as_tag().expect("annotated tag");
    assert_eq!(tag.tagger().unwrap().email(), Some("dana@bank.example"));
    assert_eq!(tag.target_id().to_string(), p.version_commit(1));
    p.wait_status("staging tests", |s| {
        version(s, 1).unwrap()["staging_tests"] == "Passed"
    });
    let out = p.rcfops(&["promote", "1", "--file"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The command returns once the stages have converged, and says where they stand.
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("staging: v1 (staging tests Passed); production: v1"));
    assert_eq!(stage_version(&p.status(), "production"), Some(1));
    // v1 is all either stage has: a plain reject is refused, says why, changes nothing, and
    // removes the tag it made so the next command can use the name.
    let out = p.rcfops(&["reject", "1"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("would leave staging and production without a model")
            && text.contains("rcfops reject 1 --force")
            && text.contains("deleted the refused tag reject/v1"),
        "{text}"
    );
    assert!(p.repo().revparse_single("refs/tags/reject/v1").is_err());
    assert_eq!(stage_version(&p.status(), "production"), Some(1));
    let out = p.rcfops(&["reject", "1", "--force"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("accepted by the agent: reject v1 (forced)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("staging: no model; production: no model")
    );
    assert_eq!(stage_version(&p.status(), "production"), None);
    // The audit tells CLI approvals from hand-made tags and files.
    let methods: Vec<(String, String)> = p
        .registry()
        .approvals()
        .unwrap()
        .into_iter()
        .map(|a| (a.action.unwrap().to_string(), a.method.to_string()))
        .collect();
    for action in ["approve", "promote", "reject"] {
        assert!(
            methods.contains(&(action.to_string(), "cli".to_string())),
            "{methods:?}"
        );
    }
    let out = p.rcfops(&["approve", "7"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no version v7"));
}
