//! Who may approve: per-stage allow-lists, separation of duties for production, and approvals
//! bound to the artifact digest (a model file changed on disk is never deployed).

mod common;

use common::*;

#[test]
fn per_stage_approvers_and_separation_of_duties() {
    let p = Project::new(
        "staging_approvers = [\"qa@bank.example\"]\nproduction_approvers = [\"lead@bank.example\", \"dana@bank.example\"]",
    );
    let _agent = p.start();
    // v2 is authored by dana@bank.example (the harness's committer).
    p.wait_version(1);
    p.commit(&[("NOTES.md", b"dana's change\n")], "dana's change");
    p.wait_version(2);
    let c2 = p.version_commit(2);

    // A production approver is not a staging approver.
    p.tag("approve/v2", &c2, "lead@bank.example");
    let (o, why) = p.wait_decision("tag:approve/v2@");
    assert_eq!(o, "refused");
    assert!(
        why.contains("lead@bank.example is not in [approvals] staging_approvers"),
        "{why}"
    );
    p.delete_tag("approve/v2");
    p.tag("approve/v2", &c2, "qa@bank.example");
    p.wait_status("staging passed", |s| {
        version(s, 2).unwrap()["staging_tests"] == "Passed"
    });
    std::thread::sleep(std::time::Duration::from_millis(1100));

    // A staging approver is not a production approver.
    p.tag("promote/v2", &c2, "qa@bank.example");
    let (o, why) = p.wait_decision("tag:promote/v2@");
    assert_eq!(o, "refused");
    assert!(
        why.contains("not in [approvals] production_approvers"),
        "{why}"
    );

    // The author of the source commit may not promote it, even from the production list.
    p.delete_tag("promote/v2");
    let oid = p.tag("promote/v2", &c2, "dana@bank.example");
    let (o, why) = p.wait_decision(&format!("tag:promote/v2@{oid}"));
    assert_eq!(o, "refused");
    assert!(
        why.contains("separation of duties: dana@bank.example authored v2"),
        "{why}"
    );
    assert!(stage_version(&p.status(), "production").is_none());

    p.delete_tag("promote/v2");
    p.tag("promote/v2", &c2, "lead@bank.example");
    p.wait_status("production", |s| stage_version(s, "production") == Some(2));
    let refusals = p
        .registry()
        .audit_log(1000)
        .unwrap()
        .into_iter()
        .filter(|a| a.event.ends_with(".refused"))
        .count();
    assert_eq!(refusals, 3, "every refusal is an audit event");
}

#[test]
fn separation_of_duties_can_be_turned_off() {
    let p = Project::new("separation_of_duties = false");
    let _agent = p.start();
    p.wait_version(1);
    p.commit(&[("NOTES.md", b"solo\n")], "solo");
    p.wait_version(2);
    let c2 = p.version_commit(2);
    p.tag("approve/v2", &c2, "dana@bank.example");
    p.wait_status("staging passed", |s| {
        version(s, 2).unwrap()["staging_tests"] == "Passed"
    });
    std::thread::sleep(std::time::Duration::from_millis(1100));
    p.tag("promote/v2", &c2, "dana@bank.example");
    p.wait_status("production", |s| stage_version(s, "production") == Some(2));
}

#[test]
fn a_tampered_artifact_is_never_deployed() {
    let p = Project::new("");
    let agent = p.start();
    p.wait_version(1);
    p.tag("approve/v1", &p.version_commit(1), "dana@bank.example");
    p.wait_status("staging v1", |s| stage_version(s, "staging") == Some(1));
    p.commit(&[("NOTES.md", b"v2\n")], "v2");
    p.wait_version(2);
    let reg = p.registry();
    let v2 = reg.version(2).unwrap().unwrap();
    let path = p
        .state
        .join(format!("artifacts/sha256-{}.rcfm", v2.artifact_sha256));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();

    p.tag("approve/v2", &v2.commit, "dana@bank.example");
    assert!(wait_until(std::time::Duration::from_secs(20), || reg
        .audit_log(1000)
        .unwrap()
        .iter()
        .any(
            |a| a.event == "staging.deploy-refused" && a.version == Some(2)
        )));
    let detail = reg
        .audit_log(1000)
        .unwrap()
        .into_iter()
        .find(|a| a.event == "staging.deploy-refused")
        .unwrap()
        .detail
        .unwrap();
    assert!(detail.contains("changed on disk"), "{detail}");
    std::thread::sleep(std::time::Duration::from_millis(700));
    // Staging keeps serving v1; the refusal is audited once.
    let (code, v, _) = post_csv(&agent.staging, "/invocations", &sample_records(1)[0]);
    assert_eq!((code, v), (200, Some(1)));
    assert_eq!(
        reg.audit_log(1000)
            .unwrap()
            .iter()
            .filter(|a| a.event == "staging.deploy-refused")
            .count(),
        1
    );
    assert!(p
        .agent_stderr()
        .contains("deployment of v2 to staging refused"));
}
