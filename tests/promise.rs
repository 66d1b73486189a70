//! The product's central promise, as a new user met it: nothing reaches a live endpoint
//! without approval (an unapproved commit renames nothing that serves), production is never
//! left without a model by accident (a reject or rollback that would empty a stage needs
//! `--force`), and approvals stamped in the future are refused.

mod common;

use common::*;

fn invoke_named(base: &str, name: &str) -> (u16, Option<i64>, serde_json::Value) {
    post_csv(
        base,
        &format!("/endpoints/{name}/invocations"),
        &sample_records(1)[0],
    )
}

#[test]
fn an_unapproved_commit_renames_nothing_that_serves() {
    let p = Project::new("");
    let agent = p.start();
    p.v1_live();

    p.commit_spec(
        |t| t.replace("name = \"card-fraud\"", "name = \"payments\""),
        "rename the project",
    );
    let s = p.wait_version(2);
    assert_eq!(version(&s, 2).unwrap()["model_group"], "payments");
    // Give the agent several passes to (wrongly) rename.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let s = p.status();
    assert_eq!(s["endpoints"]["production"]["name"], "card-fraud-prod");
    assert_eq!(s["endpoints"]["staging"]["name"], "card-fraud-staging");
    for (base, name) in [
        (&agent.production, "card-fraud-prod"),
        (&agent.staging, "card-fraud-staging"),
    ] {
        let (code, served, body) = invoke_named(base, name);
        assert_eq!(code, 200, "{name}: {body}");
        assert_eq!(served, Some(1));
    }
    let (code, _, _) = invoke_named(&agent.production, "payments-prod");
    assert_eq!(code, 404, "the pending version's name serves nothing");

    // Once approved, staging serves v2 and answers to v2's name; production keeps v1's.
    p.approve_and_wait(2);
    let s = p.status();
    assert_eq!(s["endpoints"]["staging"]["name"], "payments-staging");
    assert_eq!(s["endpoints"]["production"]["name"], "card-fraud-prod");
    let (code, served, body) = invoke_named(&agent.staging, "payments-staging");
    assert_eq!((code, served), (200, Some(2)), "{body}");
    let (code, served, body) = invoke_named(&agent.production, "card-fraud-prod");
    assert_eq!((code, served), (200, Some(1)), "{body}");
}

#[test]
fn a_rollback_that_would_empty_production_needs_force() {
    let p = Project::new("");
    let agent = p.start();
    p.v1_live();

    // `rollback staging` rejects v1, which production serves too, and nothing is left.
    let out = p.rcfops(&["rollback", "staging", "--reason", "bad scores"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("would leave staging and production without a model")
            && text.contains("which production serves too")
            && text.contains("rcfops rollback staging --force"),
        "{text}"
    );
    let s = p.status();
    assert_eq!(version(&s, 1).unwrap()["approval"], "Approved");
    assert_eq!(stage_version(&s, "production"), Some(1));
    let (code, served, _) = post_csv(&agent.production, "/invocations", &sample_records(1)[0]);
    assert_eq!((code, served), (200, Some(1)));

    // `rollback production` with nothing before v1 is refused the same way.
    let out = p.rcfops(&["rollback", "production"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("rcfops rollback production --force"));

    // A hand-made reject tag gets the same care.
    let oid = p.tag("reject/v1", &p.version_commit(1), "risk@bank.example");
    let (o, why) = p.wait_decision(&format!("tag:reject/v1@{oid}"));
    assert_eq!(o, "refused");
    assert!(
        why.contains("rejecting it would leave staging and production without a model")
            && why.contains("Force: true"),
        "{why}"
    );
    p.delete_tag("reject/v1");
    assert_eq!(stage_version(&p.status(), "production"), Some(1));

    // With --force it is done, and the audit says it was forced, with the reason.
    let out = p.rcfops(&["rollback", "staging", "--reason", "bad scores", "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let s = p.wait_status("both stages empty", |s| {
        stage_version(s, "production").is_none() && stage_version(s, "staging").is_none()
    });
    assert_eq!(version(&s, 1).unwrap()["approval"], "Rejected");
    let audit = p.registry().audit_log(1000).unwrap();
    assert!(
        audit.iter().any(|a| a.event == "reject.accepted"
            && a.detail
                .as_deref()
                .is_some_and(|d| d.contains("(forced): bad scores"))),
        "{audit:?}"
    );
}

#[test]
fn approvals_stamped_in_the_future_are_refused() {
    let p = Project::new("");
    let _agent = p.start();
    p.wait_version(1);
    p.approve_and_wait(1);
    let v1 = p.version_commit(1);
    let before = p.status();

    let dir = p.state.join("approvals");
    std::fs::create_dir_all(&dir).unwrap();
    let file = format!(
        "action = \"promote\"\nversion = 1\ncommit = \"{v1}\"\napprover = \"lead@bank.example\"\ncreated = \"2099-01-01T00:00:00Z\"\n"
    );
    std::fs::write(dir.join(".promote.tmp"), file).unwrap();
    std::fs::rename(dir.join(".promote.tmp"), dir.join("promote-v1.toml")).unwrap();
    let (o, why) = p.wait_decision("file:promote-v1.toml@");
    assert_eq!(o, "refused");
    assert!(
        why.contains("stamped 2099-01-01T00:00:00Z, in the future"),
        "{why}"
    );
    assert!(
        !why.contains("promote tag"),
        "a file refusal speaks of files: {why}"
    );

    // A tag whose tagger time is a day ahead.
    let ahead = rcfops::registry::now_ts() as i64 + 86_400;
    let oid = p.tag_with("promote/v1", &v1, "lead@bank.example", "ship", Some(ahead));
    let (o, why) = p.wait_decision(&format!("tag:promote/v1@{oid}"));
    assert_eq!(o, "refused");
    assert!(why.contains("in the future"), "{why}");

    let after = p.status();
    assert_eq!(stage_version(&after, "production"), None);
    assert_eq!(before["versions"], after["versions"]);
}

#[test]
fn approve_exits_1_with_the_reason_when_staging_tests_fail() {
    let p = Project::new("");
    let _agent = p.start();
    p.wait_version(1);
    // Make the stored expectations disagree with what the artifact scores.
    let conn = rusqlite::Connection::open(p.state.join("registry.sqlite")).unwrap();
    let sample: String = conn
        .query_row(
            "SELECT staging_test FROM versions WHERE version = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut sample: serde_json::Value = serde_json::from_str(&sample).unwrap();
    for s in sample["scores"].as_array_mut().unwrap() {
        *s = serde_json::json!(s.as_f64().unwrap() + 1.0);
    }
    conn.execute(
        "UPDATE versions SET staging_test = ?1 WHERE version = 1",
        [sample.to_string()],
    )
    .unwrap();
    let mut cfg = p.repo().config().unwrap();
    cfg.set_str("user.name", "Dana").unwrap();
    cfg.set_str("user.email", "dana@bank.example").unwrap();
    let out = p.rcfops(&["approve", "1"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("v1 failed its staging tests: "), "{text}");
    assert_eq!(version(&p.status(), 1).unwrap()["staging_tests"], "Failed");
}

#[test]
fn a_rejected_version_draws_no_warning_about_its_vanished_approval() {
    let p = Project::new("");
    let mut agent = p.start();
    p.wait_version(1);
    p.approve_and_wait(1);
    let mut cfg = p.repo().config().unwrap();
    cfg.set_str("user.name", "Risk").unwrap();
    cfg.set_str("user.email", "risk@bank.example").unwrap();
    let out = p.rcfops(&["reject", "1", "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    p.delete_tag("approve/v1");
    agent.stop();
    let _agent = p.start();
    p.wait_status("staging empty", |s| stage_version(s, "staging").is_none());
    std::thread::sleep(std::time::Duration::from_millis(800));
    let stderr = p.agent_stderr();
    assert!(!stderr.contains("was deleted or moved"), "{stderr}");
    // Human lines written to a file carry no colour codes.
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    assert!(stderr.contains(" INFO "), "{stderr}");
}
