//! History rewrites of the watched branch and of approval tags, each handled deliberately:
//! a reset or force-push runs only the new head and keeps what was registered; a deleted
//! branch keeps the stages serving; a tag deleted or moved after it was honoured does not
//! revoke the approval (reject does); a superseded commit that becomes the head again runs.

mod common;

use common::*;

fn set_branch(p: &Project, commit: &str) {
    p.repo()
        .reference(
            "refs/heads/main",
            git2::Oid::from_str(commit).unwrap(),
            true,
            "reset",
        )
        .unwrap();
}

#[test]
fn resets_force_pushes_and_deleted_branches() {
    let p = Project::new("");
    let agent = p.start();
    p.wait_version(1);
    let c1 = p.version_commit(1);
    p.tag("approve/v1", &c1, "dana@bank.example");
    p.wait_status("staging", |s| stage_version(s, "staging") == Some(1));
    let c2 = p.commit(&[("NOTES.md", b"two\n")], "two");
    p.wait_version(2);

    // Reset back to v1's commit: nothing to run, nothing lost, the rewrite is logged.
    set_branch(&p, &c1);
    assert!(wait_until(std::time::Duration::from_secs(20), || p
        .log_lines()
        .contains("was rewritten")));
    std::thread::sleep(std::time::Duration::from_millis(600));
    let reg = p.registry();
    assert_eq!(reg.versions().unwrap().len(), 2);
    assert_eq!(reg.runs(100).unwrap().len(), 2);

    // Force-push a new line on top of v1: it runs; v2 stays registered.
    let c3 = p.commit(&[("NOTES.md", b"three\n")], "three, on a rewritten line");
    let s = p.wait_version(3);
    assert_eq!(version(&s, 3).unwrap()["commit"], c3.as_str());
    assert_eq!(version(&s, 2).unwrap()["commit"], c2.as_str());

    // Delete the branch: logged, the stages keep serving.
    p.repo()
        .find_reference("refs/heads/main")
        .unwrap()
        .delete()
        .unwrap();
    assert!(wait_until(std::time::Duration::from_secs(20), || p
        .agent_stderr()
        .contains("branch \"main\" does not exist")));
    let (code, v, _) = post_csv(&agent.staging, "/invocations", &sample_records(1)[0]);
    assert_eq!((code, v), (200, Some(1)));
    set_branch(&p, &c3);

    // A tag deleted after it was honoured: the approval stands, and it is said once.
    p.delete_tag("approve/v1");
    assert!(wait_until(std::time::Duration::from_secs(20), || p
        .log_lines()
        .contains(
            "tag approve/v1 was deleted or moved after it was honoured"
        )));
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert_eq!(
        p.log_lines().matches("tag approve/v1 was deleted").count(),
        1
    );
    assert_eq!(stage_version(&p.status(), "staging"), Some(1));
    // Moving it (a new tag object) is judged afresh: v1 is already approved.
    p.tag("approve/v1", &c1, "dana@bank.example");
    let reg = p.registry();
    assert!(wait_until(std::time::Duration::from_secs(20), || reg
        .approvals()
        .unwrap()
        .iter()
        .any(|a| a.source.to_string().starts_with("tag:approve/v1@")
            && a.reason
                .as_deref()
                .is_some_and(|r| r.contains("already approved")))));
}

#[test]
fn a_skipped_commit_runs_when_it_becomes_the_head_again() {
    let p = Project::new("");
    let mut agent = p.start();
    p.wait_version(1);
    agent.stop();
    let a = p.commit(&[("NOTES.md", b"a\n")], "a");
    let _b = p.commit(&[("NOTES.md", b"b\n")], "b");
    let _agent = p.start();
    p.wait_version(2);
    let reg = p.registry();
    assert!(reg
        .runs(100)
        .unwrap()
        .iter()
        .any(|r| r.commit == a && r.status == "Skipped"));
    set_branch(&p, &a);
    let s = p.wait_version(3);
    assert_eq!(version(&s, 3).unwrap()["commit"], a.as_str());
}
