//! The model registry: one SQLite file in the state folder.
//!
//! Owns every durable fact: runs and their steps, model versions (source commit, digests,
//! hyperparameters, metrics, artifact digest, approval status, staging-test result), approval
//! decisions (accepted or refused, one row per tag object or approval file), deployments and the
//! audit trail. Each state change is one SQLite transaction that also writes its audit event, so
//! a crash at any instant leaves either the whole change or none of it. A commit can be
//! registered once only (`UNIQUE(commit_sha)`).
//!
//! Which version each stage should serve is *derived* here from those facts (see
//! [`Registry::staging_target`] and [`Registry::production_target`]); nothing else decides it.

use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;

use crate::domain::{
    Action, ApprovalSource, ApprovalStatus, Method, Outcome, RunStatus, Stage, StagingResult,
    StepStatus,
};
use crate::targets::{Facts, Move, Targets, VersionFacts};

pub type Result<T> = std::result::Result<T, RegistryError>;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("registry: {0}")]
    Other(String),
}

pub fn now_ts() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// RFC 3339 rendering of a unix timestamp (UTC, seconds).
pub fn format_ts(ts: f64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ts.floor() as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run          INTEGER PRIMARY KEY AUTOINCREMENT,
    commit_sha   TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('Running','Succeeded','Failed','Skipped')),
    error        TEXT,
    interrupted  INTEGER NOT NULL DEFAULT 0,
    trigger      TEXT NOT NULL,
    started_ts   REAL NOT NULL,
    finished_ts  REAL,
    version      INTEGER
);
CREATE INDEX IF NOT EXISTS runs_commit ON runs(commit_sha);
CREATE TABLE IF NOT EXISTS steps (
    run          INTEGER NOT NULL REFERENCES runs(run),
    step         TEXT NOT NULL,
    status       TEXT NOT NULL,
    started_ts   REAL NOT NULL,
    duration_ms  REAL,
    error        TEXT,
    PRIMARY KEY (run, step)
);
CREATE TABLE IF NOT EXISTS versions (
    version          INTEGER PRIMARY KEY,
    model_group      TEXT NOT NULL,
    commit_sha       TEXT NOT NULL UNIQUE,
    run              INTEGER NOT NULL REFERENCES runs(run),
    registered_ts    REAL NOT NULL,
    author_email     TEXT NOT NULL,
    spec_sha256      TEXT NOT NULL,
    data_sha256      TEXT NOT NULL,
    hyperparameters  TEXT NOT NULL,
    metrics          TEXT NOT NULL,
    artifact_sha256  TEXT NOT NULL,
    approval         TEXT NOT NULL CHECK (approval IN ('PendingManualApproval','Approved','Rejected')),
    approval_ts      REAL,
    staging_test     TEXT NOT NULL,
    staging_result   TEXT CHECK (staging_result IN ('Passed','Failed')),
    staging_detail   TEXT,
    staging_ts       REAL,
    reject_reason    TEXT
);
CREATE TABLE IF NOT EXISTS approvals (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    source     TEXT NOT NULL UNIQUE,
    action     TEXT NOT NULL,
    version    INTEGER,
    stage      TEXT,
    approver   TEXT NOT NULL,
    method     TEXT NOT NULL,
    given_ts   REAL NOT NULL,
    seen_ts    REAL NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('accepted','refused')),
    reason     TEXT,
    note       TEXT,
    forced     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS deployments (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    stage    TEXT NOT NULL,
    version  INTEGER,
    at_ts    REAL NOT NULL,
    reason   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ts    REAL NOT NULL,
    actor    TEXT NOT NULL,
    how      TEXT NOT NULL,
    event    TEXT NOT NULL,
    version  INTEGER,
    run      INTEGER,
    detail   TEXT
);
"#;

#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub run: i64,
    pub commit: String,
    pub status: RunStatus,
    pub error: Option<String>,
    pub interrupted: bool,
    pub trigger: String,
    pub started_ts: f64,
    pub finished_ts: Option<f64>,
    pub version: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    pub step: String,
    pub status: StepStatus,
    pub duration_ms: Option<f64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionRow {
    pub version: i64,
    pub model_group: String,
    pub commit: String,
    pub run: i64,
    pub registered_ts: f64,
    pub author_email: String,
    pub spec_sha256: String,
    pub data_sha256: String,
    pub hyperparameters: serde_json::Value,
    pub metrics: serde_json::Value,
    pub artifact_sha256: String,
    pub approval: ApprovalStatus,
    pub approval_ts: Option<f64>,
    pub staging_result: Option<StagingResult>,
    pub staging_detail: Option<String>,
    pub staging_ts: Option<f64>,
    pub reject_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRow {
    pub id: i64,
    pub source: ApprovalSource,
    /// `None`: a refused file whose action could not be read (stored as `unknown`).
    pub action: Option<Action>,
    pub version: Option<i64>,
    pub stage: Option<Stage>,
    pub approver: String,
    pub method: Method,
    pub given_ts: f64,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// The approver's words (tag message or file `reason`).
    pub note: Option<String>,
    pub forced: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at_ts: f64,
    pub actor: String,
    pub how: String,
    pub event: String,
    pub version: Option<i64>,
    pub run: Option<i64>,
    pub detail: Option<String>,
}

/// What a new version brings to the registry.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub model_group: String,
    pub commit: String,
    pub author_email: String,
    pub spec_sha256: String,
    pub data_sha256: String,
    pub hyperparameters: serde_json::Value,
    pub metrics: serde_json::Value,
    pub artifact_sha256: String,
    pub staging_test: serde_json::Value,
}

/// A decision about one approval source (tag object or file), with its effect.
#[derive(Debug, Clone)]
pub struct Decision {
    pub source: ApprovalSource,
    /// What is stored: a staging rollback is stored as the reject of the version it removes,
    /// with `stage` staging. `None`: a file whose action could not be read.
    pub action: Option<Action>,
    pub version: Option<i64>,
    pub stage: Option<Stage>,
    pub approver: String,
    pub method: Method,
    pub given_ts: f64,
    /// The approver's words: the tag message or the file's `reason`.
    pub note: String,
    /// The approver asked for a decision that leaves a stage without a model (`--force`).
    pub forced: bool,
    /// `Ok(())` = accepted (the effect is applied), `Err(reason)` = refused.
    pub outcome: std::result::Result<(), String>,
}

pub struct Registry {
    conn: Mutex<Connection>,
}

/// The stored text of an action (`unknown` for a file whose action could not be read).
fn action_text(a: Option<Action>) -> &'static str {
    a.map(Action::as_str).unwrap_or("unknown")
}

/// A column read leniently: text that names no value (`unknown`, or a stage a refused file
/// misspelt in a release that stored it) reads as `None`.
fn lenient<T: std::str::FromStr>(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Option<T>> {
    Ok(r.get::<_, Option<String>>(i)?.and_then(|s| s.parse().ok()))
}

/// What is recorded on a rejected version: who, how, from where, and their words.
fn reject_reason(d: &Decision) -> String {
    let mut r = format!("rejected by {} via {} ({})", d.approver, d.method, d.source);
    let note = d.note.trim();
    if !note.is_empty() {
        r.push_str(": ");
        r.push_str(note);
    }
    r
}

fn run_row(r: &rusqlite::Row) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        run: r.get(0)?,
        commit: r.get(1)?,
        status: r.get(2)?,
        error: r.get(3)?,
        interrupted: r.get::<_, i64>(4)? != 0,
        trigger: r.get(5)?,
        started_ts: r.get(6)?,
        finished_ts: r.get(7)?,
        version: r.get(8)?,
    })
}

const RUN_COLS: &str =
    "run, commit_sha, status, error, interrupted, trigger, started_ts, finished_ts, version";
const VERSION_COLS: &str = "version, model_group, commit_sha, run, registered_ts, author_email, spec_sha256, data_sha256, hyperparameters, metrics, artifact_sha256, approval, approval_ts, staging_result, staging_detail, staging_ts, reject_reason";

fn version_row(r: &rusqlite::Row) -> rusqlite::Result<VersionRow> {
    let json = |i: usize| -> rusqlite::Result<serde_json::Value> {
        let s: String = r.get(i)?;
        Ok(serde_json::from_str(&s).unwrap_or(serde_json::Value::Null))
    };
    Ok(VersionRow {
        version: r.get(0)?,
        model_group: r.get(1)?,
        commit: r.get(2)?,
        run: r.get(3)?,
        registered_ts: r.get(4)?,
        author_email: r.get(5)?,
        spec_sha256: r.get(6)?,
        data_sha256: r.get(7)?,
        hyperparameters: json(8)?,
        metrics: json(9)?,
        artifact_sha256: r.get(10)?,
        approval: r.get(11)?,
        approval_ts: r.get(12)?,
        staging_result: r.get(13)?,
        staging_detail: r.get(14)?,
        staging_ts: r.get(15)?,
        reject_reason: r.get(16)?,
    })
}

fn audit(
    tx: &Transaction,
    actor: &str,
    how: &str,
    event: &str,
    version: Option<i64>,
    run: Option<i64>,
    detail: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO audit (at_ts, actor, how, event, version, run, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![now_ts(), actor, how, event, version, run, detail],
    )?;
    Ok(())
}

/// Brings a registry written by an earlier release up to this schema. Only ever adds
/// nullable or defaulted columns, so the earlier release still opens the file.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let cols: Vec<String> = {
        let mut st = conn.prepare("SELECT name FROM pragma_table_info('approvals')")?;
        let v = st
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        v
    };
    for (col, ddl) in [
        ("note", "ALTER TABLE approvals ADD COLUMN note TEXT"),
        (
            "forced",
            "ALTER TABLE approvals ADD COLUMN forced INTEGER NOT NULL DEFAULT 0",
        ),
    ] {
        if !cols.iter().any(|c| c == col) {
            conn.execute_batch(ddl)?;
        }
    }
    Ok(())
}

impl Registry {
    /// Opens (creating if needed) the registry file.
    pub fn open(path: &Path) -> Result<Registry> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                RegistryError::Other(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        migrate(&conn)?;
        Ok(Registry {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&mut c)?)
    }

    /// Runs a query and maps every row (statements are cached per connection).
    fn query<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        map: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        self.with(|c| {
            let mut st = c.prepare_cached(sql)?;
            let v = st
                .query_map(params, map)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(v)
        })
    }

    pub fn integrity_check(&self) -> Result<String> {
        self.with(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get(0)))
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
        })
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
    }

    // ---- runs -------------------------------------------------------------------------

    pub fn begin_run(&self, commit: &str, trigger: &str) -> Result<i64> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO runs (commit_sha, status, trigger, started_ts) VALUES (?1, 'Running', ?2, ?3)",
                params![commit, trigger, now_ts()],
            )?;
            let run = tx.last_insert_rowid();
            audit(&tx, "agent", trigger, "run.started", None, Some(run), commit)?;
            tx.commit()?;
            Ok(run)
        })
    }

    pub fn record_step(
        &self,
        run: i64,
        step: &str,
        status: StepStatus,
        started_ts: f64,
        duration_ms: Option<f64>,
        error: Option<&str>,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO steps (run, step, status, started_ts, duration_ms, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(run, step) DO UPDATE SET status = excluded.status, duration_ms = excluded.duration_ms, error = excluded.error",
                params![run, step, status, started_ts, duration_ms, error],
            )?;
            Ok(())
        })
    }

    /// Ends a run that registered nothing (failed, or skipped because superseded).
    pub fn finish_run(&self, run: i64, status: RunStatus, error: Option<&str>) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE runs SET status = ?2, error = ?3, finished_ts = ?4 WHERE run = ?1 AND status = 'Running'",
                params![run, status, error, now_ts()],
            )?;
            let event = match status {
                RunStatus::Failed => "run.failed",
                RunStatus::Skipped => "run.skipped",
                _ => "run.finished",
            };
            audit(&tx, "agent", "pipeline", event, None, Some(run), error.unwrap_or(""))?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Records a commit that was never run because a newer one superseded it.
    pub fn record_skipped(&self, commit: &str, reason: &str) -> Result<i64> {
        self.with(|c| {
            let tx = c.transaction()?;
            let ts = now_ts();
            tx.execute(
                "INSERT INTO runs (commit_sha, status, error, trigger, started_ts, finished_ts) VALUES (?1, 'Skipped', ?2, 'watch', ?3, ?3)",
                params![commit, reason, ts],
            )?;
            let run = tx.last_insert_rowid();
            audit(&tx, "agent", "watch", "run.skipped", None, Some(run), reason)?;
            tx.commit()?;
            Ok(run)
        })
    }

    /// Marks runs left `Running` by a previous agent process as interrupted (Failed).
    pub fn mark_interrupted_runs(&self) -> Result<Vec<RunRow>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let rows: Vec<RunRow> = {
                let mut st = tx.prepare(&format!("SELECT {RUN_COLS} FROM runs WHERE status = 'Running'"))?;
                let v = st.query_map([], run_row)?.collect::<rusqlite::Result<_>>()?;
                v
            };
            for r in &rows {
                tx.execute(
                    "UPDATE runs SET status = 'Failed', interrupted = 1, finished_ts = ?2,
                     error = 'interrupted: the agent stopped during this run; it will be run again' WHERE run = ?1",
                    params![r.run, now_ts()],
                )?;
                tx.execute(
                    "UPDATE steps SET status = 'Interrupted' WHERE run = ?1 AND status = 'Running'",
                    params![r.run],
                )?;
                audit(&tx, "agent", "restart", "run.interrupted", None, Some(r.run), &r.commit)?;
            }
            tx.commit()?;
            Ok(rows)
        })
    }

    /// Whether `commit` needs no (further) run: it has a version, or a finished run that was
    /// not interrupted.
    pub fn commit_settled(&self, commit: &str) -> Result<bool> {
        self.with(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM versions WHERE commit_sha = ?1)
                     OR EXISTS (SELECT 1 FROM runs WHERE commit_sha = ?1
                                AND (status IN ('Succeeded','Skipped','Running') OR (status = 'Failed' AND interrupted = 0)))",
                [commit],
                |r| r.get(0),
            )
        })
    }

    /// Whether the branch head `commit` still needs a run. Unlike [`Self::commit_settled`], a
    /// commit skipped earlier (superseded) is run once it is the head again, e.g. after a reset.
    pub fn head_needs_run(&self, commit: &str) -> Result<bool> {
        self.with(|c| {
            c.query_row(
                "SELECT NOT (EXISTS (SELECT 1 FROM versions WHERE commit_sha = ?1)
                     OR EXISTS (SELECT 1 FROM runs WHERE commit_sha = ?1
                                AND (status IN ('Succeeded','Running') OR (status = 'Failed' AND interrupted = 0))))",
                [commit],
                |r| r.get(0),
            )
        })
    }

    pub fn runs(&self, limit: usize) -> Result<Vec<RunRow>> {
        self.query(
            &format!("SELECT {RUN_COLS} FROM runs ORDER BY run DESC LIMIT ?1"),
            [limit as i64],
            run_row,
        )
    }

    pub fn run(&self, run: i64) -> Result<Option<RunRow>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {RUN_COLS} FROM runs WHERE run = ?1"),
                [run],
                run_row,
            )
            .optional()
        })
    }

    pub fn steps(&self, run: i64) -> Result<Vec<StepRow>> {
        self.query(
            "SELECT step, status, duration_ms, error FROM steps
             WHERE run = ?1 ORDER BY started_ts, rowid",
            [run],
            |r| {
                Ok(StepRow {
                    step: r.get(0)?,
                    status: r.get(1)?,
                    duration_ms: r.get(2)?,
                    error: r.get(3)?,
                })
            },
        )
    }

    // ---- versions ---------------------------------------------------------------------

    /// Registers a version for `run` (PendingManualApproval) and marks the run Succeeded, in
    /// one transaction. A commit that already has a version is not registered again: its
    /// existing number is returned with `false`.
    pub fn register_version(&self, run: i64, v: &NewVersion) -> Result<(i64, bool)> {
        self.with(|c| {
            let tx = c.transaction()?;
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT version FROM versions WHERE commit_sha = ?1",
                    [&v.commit],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(n) = existing {
                tx.execute(
                    "UPDATE runs SET status = 'Succeeded', version = ?2, finished_ts = ?3 WHERE run = ?1",
                    params![run, n, now_ts()],
                )?;
                tx.commit()?;
                return Ok((n, false));
            }
            let n: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) + 1 FROM versions", [], |r| r.get(0))?;
            tx.execute(
                "INSERT INTO versions (version, model_group, commit_sha, run, registered_ts, author_email, spec_sha256,
                     data_sha256, hyperparameters, metrics, artifact_sha256, approval, staging_test)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    n,
                    v.model_group,
                    v.commit,
                    run,
                    now_ts(),
                    v.author_email,
                    v.spec_sha256,
                    v.data_sha256,
                    v.hyperparameters.to_string(),
                    v.metrics.to_string(),
                    v.artifact_sha256,
                    ApprovalStatus::Pending,
                    v.staging_test.to_string(),
                ],
            )?;
            tx.execute(
                "UPDATE runs SET status = 'Succeeded', version = ?2, finished_ts = ?3 WHERE run = ?1",
                params![run, n, now_ts()],
            )?;
            audit(
                &tx,
                "agent",
                "pipeline",
                "version.registered",
                Some(n),
                Some(run),
                &format!("v{n} from {} is {}", v.commit, ApprovalStatus::Pending),
            )?;
            tx.commit()?;
            Ok((n, true))
        })
    }

    pub fn versions(&self) -> Result<Vec<VersionRow>> {
        self.query(
            &format!("SELECT {VERSION_COLS} FROM versions ORDER BY version"),
            [],
            version_row,
        )
    }

    pub fn version(&self, n: i64) -> Result<Option<VersionRow>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {VERSION_COLS} FROM versions WHERE version = ?1"),
                [n],
                version_row,
            )
            .optional()
        })
    }

    pub fn staging_test(&self, n: i64) -> Result<Option<serde_json::Value>> {
        self.with(|c| {
            let s: Option<String> = c
                .query_row(
                    "SELECT staging_test FROM versions WHERE version = ?1",
                    [n],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(s.and_then(|s| serde_json::from_str(&s).ok()))
        })
    }

    pub fn record_staging_result(&self, n: i64, result: StagingResult, detail: &str) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            let passed = result == StagingResult::Passed;
            tx.execute(
                "UPDATE versions SET staging_result = ?2, staging_detail = ?3, staging_ts = ?4 WHERE version = ?1",
                params![n, result, detail, now_ts()],
            )?;
            let event = if passed { "staging.passed" } else { "staging.failed" };
            audit(&tx, "agent", "staging-tests", event, Some(n), None, detail)?;
            tx.commit()?;
            Ok(())
        })
    }

    // ---- approvals --------------------------------------------------------------------

    /// Every approval source decided so far.
    pub fn approval_sources(&self) -> Result<std::collections::HashSet<ApprovalSource>> {
        Ok(self
            .query("SELECT source FROM approvals", [], |r| r.get(0))?
            .into_iter()
            .collect())
    }

    /// Records a decision and, when accepted, its effect, in one transaction.
    pub fn record_decision(&self, d: &Decision) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            let (outcome, reason) = match &d.outcome {
                Ok(()) => (Outcome::Accepted, None),
                Err(r) => (Outcome::Refused, Some(r.as_str())),
            };
            tx.execute(
                "INSERT INTO approvals (source, action, version, stage, approver, method, given_ts, seen_ts, outcome, reason, note, forced)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![d.source, action_text(d.action), d.version, d.stage, d.approver, d.method, d.given_ts, now_ts(), outcome, reason,
                        Some(d.note.trim()).filter(|n| !n.is_empty()), d.forced],
            )?;
            if d.outcome.is_ok() {
                match (d.action, d.version) {
                    (Some(Action::Approve), Some(n)) => {
                        tx.execute(
                            "UPDATE versions SET approval = ?3, approval_ts = ?2 WHERE version = ?1",
                            params![n, now_ts(), ApprovalStatus::Approved],
                        )?;
                    }
                    (Some(Action::Reject), Some(n)) => {
                        tx.execute(
                            "UPDATE versions SET approval = ?4, approval_ts = ?2, reject_reason = ?3 WHERE version = ?1",
                            params![n, now_ts(), reject_reason(d), ApprovalStatus::Rejected],
                        )?;
                    }
                    _ => {}
                }
            }
            let event = format!("{}.{}", action_text(d.action), outcome);
            let mut detail = match &d.outcome {
                Ok(()) => d.source.to_string(),
                Err(r) => format!("{}: {r}", d.source),
            };
            if d.outcome.is_ok() && d.forced {
                detail.push_str(" (forced)");
            }
            let note = d.note.trim();
            if d.outcome.is_ok() && !note.is_empty() {
                detail.push_str(": ");
                detail.push_str(note);
            }
            audit(&tx, &d.approver, d.method.as_str(), &event, d.version, None, &detail)?;
            tx.commit()?;
            Ok(())
        })
    }

    pub fn approvals(&self) -> Result<Vec<ApprovalRow>> {
        self.query(
            "SELECT id, source, action, version, stage, approver, method, given_ts, outcome, reason, note, forced
             FROM approvals ORDER BY id",
            [],
            |r| {
                Ok(ApprovalRow {
                    id: r.get(0)?,
                    source: r.get(1)?,
                    action: lenient(r, 2)?,
                    version: r.get(3)?,
                    stage: lenient(r, 4)?,
                    approver: r.get(5)?,
                    method: r.get(6)?,
                    given_ts: r.get(7)?,
                    outcome: r.get(8)?,
                    reason: r.get(9)?,
                    note: r.get(10)?,
                    forced: r.get::<_, i64>(11)? != 0,
                })
            },
        )
    }

    // ---- stages -----------------------------------------------------------------------

    /// The facts the stage targets are derived from (see [`crate::targets`]).
    pub fn target_facts(&self) -> Result<Facts> {
        let versions = self.query(
            "SELECT version, approval, staging_result FROM versions ORDER BY version",
            [],
            |r| {
                Ok(VersionFacts {
                    version: r.get(0)?,
                    approval: r.get(1)?,
                    staging: r.get(2)?,
                })
            },
        )?;
        let moves = self
            .query(
                "SELECT action, version, stage FROM approvals WHERE outcome = ?1 ORDER BY id",
                [Outcome::Accepted],
                |r| {
                    Ok(
                        lenient::<Action>(r, 0)?.map(|action| -> rusqlite::Result<Move> {
                            Ok(Move {
                                action,
                                version: r.get(1)?,
                                stage: lenient(r, 2)?,
                            })
                        }),
                    )
                },
            )?
            .into_iter()
            .flatten()
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Facts { versions, moves })
    }

    /// What each stage should serve now.
    pub fn targets(&self) -> Result<Targets> {
        Ok(self.target_facts()?.targets())
    }

    /// Staging serves the newest Approved version whose staging tests have not failed.
    pub fn staging_target(&self) -> Result<Option<i64>> {
        Ok(self.targets()?.staging)
    }

    /// Production's history as a stack folded over accepted decisions: a promotion pushes
    /// the version, a production rollback pops the top, a rejection removes the version.
    /// Production serves the top.
    pub fn production_stack(&self) -> Result<Vec<i64>> {
        Ok(self.targets()?.production_stack)
    }

    pub fn production_target(&self) -> Result<Option<i64>> {
        Ok(self.targets()?.production())
    }

    pub fn record_deployment(
        &self,
        stage: Stage,
        version: Option<i64>,
        reason: &str,
    ) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO deployments (stage, version, at_ts, reason) VALUES (?1, ?2, ?3, ?4)",
                params![stage, version, now_ts(), reason],
            )?;
            let event = if version.is_some() {
                "deploy"
            } else {
                "undeploy"
            };
            audit(
                &tx,
                "agent",
                "deploy",
                &format!("{stage}.{event}"),
                version,
                None,
                reason,
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// The version most recently deployed to `stage` (what it served when the agent stopped).
    pub fn deployed(&self, stage: Stage) -> Result<Option<i64>> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT version FROM deployments WHERE stage = ?1 ORDER BY id DESC LIMIT 1",
                [stage],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten())
        })
    }

    /// The model package group whose name `stage`'s endpoint answers to: that of the version
    /// it serves; when it serves none, of the version it served last; when it never served,
    /// of the newest version. Never the head commit's: an unapproved commit renames nothing.
    pub fn endpoint_group(&self, stage: Stage) -> Result<String> {
        self.with(|c| {
            let served: Option<String> = c
                .query_row(
                    "SELECT v.model_group FROM deployments d JOIN versions v ON v.version = d.version
                     WHERE d.stage = ?1 AND d.version IS NOT NULL ORDER BY d.id DESC LIMIT 1",
                    [stage],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(g) = served {
                return Ok(g);
            }
            let newest: Option<String> = c
                .query_row(
                    "SELECT model_group FROM versions ORDER BY version DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(newest.unwrap_or_else(|| crate::spec::DEFAULT_PROJECT.to_string()))
        })
    }

    /// Records an audit event that changes no other state (e.g. a refused deployment).
    pub fn record_audit(
        &self,
        actor: &str,
        how: &str,
        event: &str,
        version: Option<i64>,
        detail: &str,
    ) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            audit(&tx, actor, how, event, version, None, detail)?;
            tx.commit()?;
            Ok(())
        })
    }

    pub fn audit_log(&self, limit: usize) -> Result<Vec<AuditRow>> {
        let mut v = self.query(
            "SELECT id, at_ts, actor, how, event, version, run, detail
             FROM audit ORDER BY id DESC LIMIT ?1",
            [limit as i64],
            |r| {
                Ok(AuditRow {
                    id: r.get(0)?,
                    at_ts: r.get(1)?,
                    actor: r.get(2)?,
                    how: r.get(3)?,
                    event: r.get(4)?,
                    version: r.get(5)?,
                    run: r.get(6)?,
                    detail: r.get(7)?,
                })
            },
        )?;
        v.reverse();
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
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
}
