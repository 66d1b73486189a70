//! Model versions: registration (once per commit), the staging-test sample and result.

use super::*;

impl Registry {
    // versions ---------------------------------------------------------------------

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
                     data_sha256, hyperparameters, metrics, artifact_sha256, approval, staging_test, champion)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
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
                    v.champion.to_string(),
                ],
            )?;
            if let Some(c) = &v.curves {
                tx.execute(
                    "INSERT INTO curves (version, data) VALUES (?1, ?2)",
                    params![n, serde_json::to_string(c).expect("numbers")],
                )?;
            }
            if let Some(b) = &v.baseline {
                tx.execute(
                    "INSERT INTO baselines (version, data) VALUES (?1, ?2)",
                    params![n, serde_json::to_string(b).expect("numbers and names")],
                )?;
            }
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

    /// The evaluation curves stored with `version` (`None`: registered before they were kept).
    pub fn curves(&self, version: i64) -> Result<Option<crate::pipeline::curves::Curves>> {
        let rows = self.query(
            "SELECT data FROM curves WHERE version = ?1",
            [version],
            |r| r.get::<_, String>(0),
        )?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|s| serde_json::from_str(&s).ok()))
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
}
