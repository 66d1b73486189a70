//! Runs and their steps: begun, finished, skipped, interrupted; which commits still need one.

use super::*;

impl Registry {
    // runs -------------------------------------------------------------------------

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
}
