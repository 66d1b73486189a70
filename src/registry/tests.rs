use super::*;

fn new_version(commit: &str, group: &str) -> NewVersion {
    NewVersion {
        model_group: group.into(),
        commit: commit.into(),
        author_email: "dana@bank.example".into(),
        spec_sha256: "s".into(),
        data_sha256: "d".into(),
        hyperparameters: serde_json::json!({}),
        metrics: serde_json::json!({"roc_auc": 0.9}),
        artifact_sha256: "a".into(),
        staging_test: serde_json::json!({"records": [], "scores": []}),
        champion: serde_json::Value::Null,
        baseline: None,
        curves: None,
    }
}

fn decision(
    source: &str,
    action: Action,
    n: i64,
    outcome: std::result::Result<(), String>,
) -> Decision {
    Decision {
        source: source.parse().unwrap(),
        action: Some(action),
        version: Some(n),
        stage: None,
        approver: "risk@bank.example".into(),
        method: Method::Tag,
        given_ts: now_ts(),
        note: "looks wrong".into(),
        forced: false,
        outcome,
    }
}

#[test]
fn a_commit_is_registered_once() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(&dir.path().join("r.sqlite")).unwrap();
    let run = reg.begin_run("c1", "watch").unwrap();
    assert_eq!(
        reg.register_version(run, &new_version("c1", "g")).unwrap(),
        (1, true)
    );
    let again = reg.begin_run("c1", "cli").unwrap();
    assert_eq!(
        reg.register_version(again, &new_version("c1", "g"))
            .unwrap(),
        (1, false)
    );
    assert_eq!(reg.versions().unwrap().len(), 1);
    assert_eq!(
        reg.run(again).unwrap().unwrap().status,
        RunStatus::Succeeded
    );
}

#[test]
fn every_decision_is_an_audit_event_in_the_same_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(&dir.path().join("r.sqlite")).unwrap();
    let run = reg.begin_run("c1", "watch").unwrap();
    reg.register_version(run, &new_version("c1", "g")).unwrap();
    reg.record_decision(&decision(
        "tag:approve/v1@a",
        Action::Approve,
        1,
        Err("no".into()),
    ))
    .unwrap();
    let mut reject = decision("tag:reject/v1@b", Action::Reject, 1, Ok(()));
    reject.forced = true;
    reg.record_decision(&reject).unwrap();
    let audit = reg.audit_log(100).unwrap();
    let events: Vec<(&str, Option<&str>)> = audit
        .iter()
        .map(|a| (a.event.as_str(), a.detail.as_deref()))
        .collect();
    assert!(
        events.contains(&("approve.refused", Some("tag:approve/v1@a: no"))),
        "{events:?}"
    );
    assert!(
        events.contains(&(
            "reject.accepted",
            Some("tag:reject/v1@b (forced): looks wrong")
        )),
        "{events:?}"
    );
    let v = reg.version(1).unwrap().unwrap();
    assert_eq!(v.approval, ApprovalStatus::Rejected);
    assert!(v.reject_reason.unwrap().ends_with(": looks wrong"));
    let rows = reg.approvals().unwrap();
    assert_eq!(
        (rows[1].forced, rows[1].note.as_deref()),
        (true, Some("looks wrong"))
    );
    // A source is decided once.
    assert!(reg
        .record_decision(&decision("tag:reject/v1@b", Action::Reject, 1, Ok(())))
        .is_err());
}

#[test]
fn an_endpoint_is_named_after_the_version_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(&dir.path().join("r.sqlite")).unwrap();
    let run = reg.begin_run("c1", "watch").unwrap();
    reg.register_version(run, &new_version("c1", "card-fraud"))
        .unwrap();
    assert_eq!(reg.endpoint_group(Stage::Production).unwrap(), "card-fraud");
    reg.record_deployment(Stage::Production, Some(1), "v1 deployed")
        .unwrap();
    let run = reg.begin_run("c2", "watch").unwrap();
    reg.register_version(run, &new_version("c2", "payments"))
        .unwrap();
    // v2 is newer but serves nowhere: production keeps v1's name, even once withdrawn.
    assert_eq!(reg.endpoint_group(Stage::Production).unwrap(), "card-fraud");
    reg.record_deployment(Stage::Production, None, "withdrawn")
        .unwrap();
    assert_eq!(reg.endpoint_group(Stage::Production).unwrap(), "card-fraud");
    // A stage that never served is named after the newest version.
    assert_eq!(reg.endpoint_group(Stage::Staging).unwrap(), "payments");
}

#[test]
fn a_registry_from_an_earlier_release_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite");
    {
        // The approvals table as earlier releases made it: no `note`, no `forced`; a
        // refused file whose action could not be read, and a misspelt rollback stage.
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
                "CREATE TABLE approvals (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL UNIQUE,
                    action TEXT NOT NULL, version INTEGER, stage TEXT, approver TEXT NOT NULL,
                    method TEXT NOT NULL, given_ts REAL NOT NULL, seen_ts REAL NOT NULL,
                    outcome TEXT NOT NULL CHECK (outcome IN ('accepted','refused')), reason TEXT);
                 INSERT INTO approvals (source, action, version, stage, approver, method, given_ts, seen_ts, outcome, reason)
                 VALUES ('file:garbage.toml@00', 'unknown', NULL, NULL, 'unknown', 'file', 0, 0, 'refused', 'bad'),
                        ('file:rb.toml@01', 'rollback', NULL, 'prod', 'x@y', 'file', 0, 0, 'refused', 'bad stage');",
            )
            .unwrap();
    }
    let reg = Registry::open(&path).unwrap();
    let rows = reg.approvals().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].action, None);
    assert_eq!(
        (rows[1].action, rows[1].stage),
        (Some(Action::Rollback), None)
    );
    assert!(!rows[0].forced && rows[0].note.is_none());
    assert_eq!(reg.targets().unwrap(), Targets::default());
    // Opening twice migrates once.
    drop(reg);
    Registry::open(&path).unwrap();
}
