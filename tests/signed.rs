//! Signed approvals: with `require_signed`, only tags signed (`git tag -s`, gpg.format=ssh)
//! by a key listed for the tagger in the allowed-signers file are accepted. Keys are made in
//! the test with ssh-keygen and tags signed by the real git CLI; the agent verifies in Rust.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn keygen(dir: &Path, name: &str) -> (String, String) {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen is needed for signed-tag tests");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key.display().to_string(), public.trim().to_string())
}

/// Runs the git CLI in the model repo as `email`, with `config` as extra `-c` settings.
fn git_as(p: &Project, email: &str, config: &[String], args: &[&str]) {
    let mut cmd = Command::new("git");
    cmd.current_dir(&p.repo_path)
        .args(["-c", "user.name=Approver", "-c"])
        .arg(format!("user.email={email}"));
    for c in config {
        cmd.arg("-c").arg(c);
    }
    let out = cmd.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn signed_tag(p: &Project, name: &str, commit: &str, email: &str, key: &str) {
    let config = [
        "gpg.format=ssh".to_string(),
        format!("user.signingkey={key}"),
    ];
    git_as(
        p,
        email,
        &config,
        &["tag", "-s", name, "-m", "signed approval", commit],
    );
}

#[test]
fn only_tags_signed_by_allowed_keys_are_accepted() {
    let keys = tempfile::tempdir().unwrap();
    let (lead_key, lead_pub) = keygen(keys.path(), "lead");
    let (rogue_key, _) = keygen(keys.path(), "rogue");
    let signers = keys.path().join("allowed_signers");
    std::fs::write(
        &signers,
        format!("# who may sign approvals\nlead@bank.example namespaces=\"git\" {lead_pub}\n"),
    )
    .unwrap();
    let p = Project::new(&format!(
        "require_signed = true\nallowed_signers = \"{}\"",
        signers.display()
    ));
    let _agent = p.start();
    p.wait_version(1);
    let c1 = p.version_commit(1);

    // An annotated but unsigned tag.
    p.tag("approve/v1", &c1, "lead@bank.example");
    let (o, why) = p.wait_decision("tag:approve/v1@");
    assert_eq!(o, "refused");
    assert!(
        why.contains("require_signed is on and it is not signed"),
        "{why}"
    );
    p.delete_tag("approve/v1");

    // Signed, but by a key that is not listed.
    signed_tag(&p, "approve/v1", &c1, "lead@bank.example", &rogue_key);
    let oid = p
        .repo()
        .refname_to_id("refs/tags/approve/v1")
        .unwrap()
        .to_string();
    let (o, why) = p.wait_decision(&format!("tag:approve/v1@{oid}"));
    assert_eq!(o, "refused");
    assert!(why.contains("not listed for lead@bank.example"), "{why}");
    p.delete_tag("approve/v1");

    // Signed with the lead's key but claiming another tagger.
    signed_tag(&p, "approve/v1", &c1, "mallory@bank.example", &lead_key);
    let oid = p
        .repo()
        .refname_to_id("refs/tags/approve/v1")
        .unwrap()
        .to_string();
    let (o, why) = p.wait_decision(&format!("tag:approve/v1@{oid}"));
    assert_eq!(o, "refused");
    assert!(why.contains("mallory@bank.example has no key"), "{why}");
    p.delete_tag("approve/v1");

    // `rcfops approve` would make an unsigned tag: it makes none and says which command signs.
    let mut git_cfg = p.repo().config().unwrap();
    git_cfg.set_str("user.name", "Lead").unwrap();
    git_cfg.set_str("user.email", "lead@bank.example").unwrap();
    let out = p.rcfops(&["approve", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("require_signed is on, so approve/v1 must be a signed tag")
            && text.contains("tag -s approve/v1"),
        "{text}"
    );
    assert!(p.repo().revparse_single("refs/tags/approve/v1").is_err());

    // An approval file cannot be signed.
    let out = p.rcfops(&["approve", "1", "--file"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("needs a signed tag"));
    assert_eq!(
        p.status()["versions"][0]["approval"],
        "PendingManualApproval"
    );

    // The real thing.
    signed_tag(&p, "approve/v1", &c1, "lead@bank.example", &lead_key);
    p.wait_status("staging", |s| stage_version(s, "staging") == Some(1));
}

#[test]
fn a_forged_signature_is_refused() {
    let keys = tempfile::tempdir().unwrap();
    let (lead_key, lead_pub) = keygen(keys.path(), "lead");
    let signers = rcfops::approvals::signing::AllowedSigners::parse(
        &format!("lead@bank.example {lead_pub}\n"),
        "allowed_signers",
    )
    .unwrap();
    let p = Project::new("");
    let c = p.head();
    signed_tag(&p, "approve/v1", &c, "lead@bank.example", &lead_key);
    let repo = p.repo();
    let oid = repo.refname_to_id("refs/tags/approve/v1").unwrap();
    let raw = repo.odb().unwrap().read(oid).unwrap().data().to_vec();
    assert_eq!(signers.verify_tag(&raw, "lead@bank.example"), Ok(()));
    // Change one byte of the signed content: the same signature no longer verifies.
    let text = String::from_utf8(raw)
        .unwrap()
        .replacen("signed approval", "signed approvaL", 1);
    let err = signers
        .verify_tag(text.as_bytes(), "lead@bank.example")
        .unwrap_err();
    assert!(err.contains("forged or altered"), "{err}");
}

/// `git tag -a` in the model repo as `email`, with whatever signing the repo's git config asks.
fn git_tag(p: &Project, name: &str, commit: &str, email: &str) {
    git_as(
        p,
        email,
        &[],
        &["tag", "-a", name, "-m", "reviewed", commit],
    );
}

#[test]
fn one_command_turns_signed_approvals_on() {
    let keys = tempfile::tempdir().unwrap();
    keygen(keys.path(), "lead");
    let p = Project::new("");
    let key = keys.path().join("lead.pub");
    let setup = || {
        p.rcfops(&[
            "signing",
            "setup",
            "--key",
            key.to_str().unwrap(),
            "--email",
            "lead@bank.example",
        ])
    };
    let out = setup();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = std::fs::read_to_string(&p.cfg_path).unwrap();
    assert!(cfg.contains("require_signed = true"), "{cfg}");
    let signers = p.dir.path().join("allowed_signers");
    let listed = std::fs::read_to_string(&signers).unwrap();
    assert!(
        listed.starts_with("lead@bank.example namespaces=\"git\" ssh-ed25519 "),
        "{listed}"
    );
    // Running it again changes nothing.
    let again = setup();
    assert!(again.status.success());
    assert_eq!(std::fs::read_to_string(&signers).unwrap(), listed);
    assert_eq!(std::fs::read_to_string(&p.cfg_path).unwrap(), cfg);

    let _agent = p.start();
    p.wait_version(1);
    let c1 = p.version_commit(1);
    // The status says identities are proven now.
    assert_eq!(p.status()["approver_identities"], "signed");
    // An unsigned tag (git2 does not sign) is refused; plain `git tag -a` now signs.
    let oid = p.tag("approve/v1", &c1, "lead@bank.example");
    let (o, why) = p.wait_decision(&format!("tag:approve/v1@{oid}"));
    assert_eq!(o, "refused", "{why}");
    p.delete_tag("approve/v1");
    git_tag(&p, "approve/v1", &c1, "lead@bank.example");
    p.wait_status("staging passed", |s| {
        version(s, 1).unwrap()["staging_tests"] == "Passed"
    });
    std::thread::sleep(std::time::Duration::from_millis(1100));
    git_tag(&p, "promote/v1", &c1, "lead@bank.example");
    p.wait_status("production", |s| stage_version(s, "production") == Some(1));
}
