//! The model registry: one SQLite file in the state folder.
//!
//! Owns every durable fact: runs and their steps, model versions (source commit, digests,
//! hyperparameters, metrics, artifact digest, approval status, staging-test result), approval
//! decisions (accepted or refused, one row per tag object or approval file), deployments and the
//! audit trail. Each state change is one SQLite transaction that also writes its audit event
//! (and, for the events people hear about, the notification outbox row), so
//! a crash at any instant leaves either the whole change or none of it. A commit can be
//! registered once only (`UNIQUE(commit_sha)`).
//!
//! Which version each stage should serve is *derived* here from those facts (see
//! [`Registry::staging_target`] and [`Registry::production_target`]); nothing else decides it.

use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

mod audit;
mod decisions;
mod monitor;
mod outbox;
mod runs;
mod stages;
#[cfg(test)]
mod tests;
mod versions;

pub use monitor::{
    CaptureRow, LabelFileRow, LabelRow, MonitorBatch, StateRow, VerdictChange, WindowRow,
};
pub use outbox::{DeadLetter, DeliveryRow, OutboxRow, SinkRow};

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

pub use crate::domain::format_ts;

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
    reject_reason    TEXT,
    champion         TEXT
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
CREATE TABLE IF NOT EXISTS shadow (
    version     INTEGER PRIMARY KEY REFERENCES versions(version),
    stats       TEXT NOT NULL,
    updated_ts  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    audit_id  INTEGER NOT NULL UNIQUE REFERENCES audit(id),
    type      TEXT NOT NULL,
    at_ts     REAL NOT NULL,
    version   INTEGER,
    data      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sinks (
    name             TEXT PRIMARY KEY,
    first_event      INTEGER NOT NULL,
    disabled_ts      REAL,
    disabled_reason  TEXT
);
CREATE TABLE IF NOT EXISTS deliveries (
    event        INTEGER NOT NULL REFERENCES outbox(id),
    sink         TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending','delivered','dead')),
    attempts     INTEGER NOT NULL,
    next_ts      REAL,
    last_status  INTEGER,
    last_error   TEXT,
    updated_ts   REAL NOT NULL,
    PRIMARY KEY (event, sink)
);
CREATE TABLE IF NOT EXISTS baselines (
    version  INTEGER PRIMARY KEY REFERENCES versions(version),
    data     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS curves (
    version  INTEGER PRIMARY KEY REFERENCES versions(version),
    data     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS capture_cursors (
    path    TEXT PRIMARY KEY,
    offset  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS monitor_open (
    stage    TEXT NOT NULL,
    version  INTEGER NOT NULL,
    data     TEXT NOT NULL,
    PRIMARY KEY (stage, version)
);
CREATE TABLE IF NOT EXISTS monitor_windows (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    stage      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    opened_ts  REAL NOT NULL,
    closed_ts  REAL NOT NULL,
    records    INTEGER NOT NULL,
    level      TEXT,
    verdict    TEXT NOT NULL,
    stats      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS monitor_windows_sv ON monitor_windows(stage, version, id);
CREATE TABLE IF NOT EXISTS monitor_state (
    stage     TEXT NOT NULL,
    version   INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    verdict   TEXT NOT NULL,
    since_ts  REAL NOT NULL,
    reasons   TEXT NOT NULL,
    PRIMARY KEY (stage, version, kind)
);
CREATE TABLE IF NOT EXISTS captures (
    event_id      TEXT NOT NULL,
    idx           INTEGER NOT NULL,
    inference_id  TEXT,
    stage         TEXT NOT NULL,
    version       INTEGER NOT NULL,
    at_ts         REAL NOT NULL,
    score         REAL NOT NULL,
    threshold     REAL NOT NULL,
    PRIMARY KEY (event_id, idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS captures_inference ON captures(inference_id);
CREATE INDEX IF NOT EXISTS captures_at ON captures(at_ts);
CREATE TABLE IF NOT EXISTS labels (
    event_id  TEXT NOT NULL,
    idx       INTEGER NOT NULL,
    label     INTEGER NOT NULL,
    source    TEXT NOT NULL,
    line      INTEGER NOT NULL,
    at_ts     REAL NOT NULL,
    PRIMARY KEY (event_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS label_files (
    digest    TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    at_ts     REAL NOT NULL,
    merged    INTEGER NOT NULL,
    problems  TEXT NOT NULL
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
    /// The champion/challenger comparisons recorded at registration (`None`: registered
    /// before they were recorded).
    pub champion: Option<serde_json::Value>,
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

/// One change of what a stage serves.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentRow {
    pub stage: Stage,
    /// `None`: the stage was left without a model.
    pub version: Option<i64>,
    pub at_ts: f64,
    pub reason: String,
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
    /// The champion/challenger comparisons (`pipeline::champion::Champions`).
    pub champion: serde_json::Value,
    /// What Model Monitor compares this version's live traffic with.
    pub baseline: Option<crate::monitor::drift::Baseline>,
    /// The evaluation's curves, histogram and confusion counts (for the dashboard).
    pub curves: Option<crate::pipeline::curves::Curves>,
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
    /// The newest outbox id written through this handle; dispatchers wait on it.
    outbox_tx: tokio::sync::watch::Sender<i64>,
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
const VERSION_COLS: &str = "version, model_group, commit_sha, run, registered_ts, author_email, spec_sha256, data_sha256, hyperparameters, metrics, artifact_sha256, approval, approval_ts, staging_result, staging_detail, staging_ts, reject_reason, champion";

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
        champion: r
            .get::<_, Option<String>>(17)?
            .and_then(|s| serde_json::from_str(&s).ok()),
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
    let at = now_ts();
    tx.execute(
        "INSERT INTO audit (at_ts, actor, how, event, version, run, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![at, actor, how, event, version, run, detail],
    )?;
    // The announcement, if this event has one, commits or rolls back with the transition.
    let id = tx.last_insert_rowid();
    outbox::announce(tx, id, at, actor, how, event, version, run, detail)
}

/// Brings a registry written by an earlier release up to this schema. Only ever adds
/// nullable or defaulted columns, so the earlier release still opens the file.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let columns = |table: &str| -> rusqlite::Result<Vec<String>> {
        let mut st = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
        let v = st
            .query_map([table], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    };
    for (table, col, ddl) in [
        (
            "approvals",
            "note",
            "ALTER TABLE approvals ADD COLUMN note TEXT",
        ),
        (
            "approvals",
            "forced",
            "ALTER TABLE approvals ADD COLUMN forced INTEGER NOT NULL DEFAULT 0",
        ),
        (
            "versions",
            "champion",
            "ALTER TABLE versions ADD COLUMN champion TEXT",
        ),
    ] {
        if !columns(table)?.iter().any(|c| c == col) {
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
        let head: i64 =
            conn.query_row("SELECT COALESCE(MAX(id), 0) FROM outbox", [], |r| r.get(0))?;
        Ok(Registry {
            conn: Mutex::new(conn),
            outbox_tx: tokio::sync::watch::Sender::new(head),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let before = c.total_changes();
        let out = f(&mut c)?;
        if c.total_changes() != before {
            // A write: wake the dispatchers if it announced something.
            if let Ok(head) =
                c.query_row("SELECT COALESCE(MAX(id), 0) FROM outbox", [], |r| r.get(0))
            {
                self.outbox_tx.send_if_modified(|h| {
                    let changed = *h != head;
                    *h = head;
                    changed
                });
            }
        }
        Ok(out)
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
}
