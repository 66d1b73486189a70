//! Approvals bound to the artifact digest: a model file changed on disk is never deployed.
//! (Who may approve, per-stage lists and separation of duties, are rules: their rows are the
//! unit tests of `approvals::rules`.)

mod common;

use common::*;

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
