//! Stages: the facts their targets are derived from, deployments, and endpoint names.

use super::*;

impl Registry {
    // stages -----------------------------------------------------------------------

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
            let before: Option<i64> = tx
                .query_row(
                    "SELECT version FROM deployments WHERE stage = ?1 ORDER BY id DESC LIMIT 1",
                    [stage],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            tx.execute(
                "INSERT INTO deployments (stage, version, at_ts, reason) VALUES (?1, ?2, ?3, ?4)",
                params![stage, version, now_ts(), reason],
            )?;
            // Back to an older version is a rollback; nothing left is an undeploy.
            let event = match (before, version) {
                (_, None) => "undeploy",
                (Some(b), Some(n)) if n < b => "rollback",
                _ => "deploy",
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

    /// Every deployment, oldest first.
    pub fn deployments(&self) -> Result<Vec<DeploymentRow>> {
        self.query(
            "SELECT stage, version, at_ts, reason FROM deployments ORDER BY id",
            [],
            |r| {
                Ok(DeploymentRow {
                    stage: r.get(0)?,
                    version: r.get(1)?,
                    at_ts: r.get(2)?,
                    reason: r.get(3)?,
                })
            },
        )
    }

    /// Changes whenever anything a page shows may have changed: a new audit event, run or
    /// step (what the dashboard's live refresh polls).
    pub fn change_stamp(&self) -> Result<(i64, i64, i64)> {
        self.with(|c| {
            c.query_row(
                "SELECT (SELECT COALESCE(MAX(id), 0) FROM audit), (SELECT COALESCE(MAX(run), 0) FROM runs),
                        (SELECT COUNT(*) FROM steps)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
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
            Ok(newest.unwrap_or_else(|| crate::pipeline::spec::DEFAULT_PROJECT.to_string()))
        })
    }

    /// Stores the shadow-traffic statistics of staging version `version` (a measurement, not
    /// a transition: replaced in place, no audit event).
    pub fn record_shadow(&self, version: i64, stats: &serde_json::Value) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO shadow (version, stats, updated_ts) VALUES (?1, ?2, ?3)
                 ON CONFLICT(version) DO UPDATE SET stats = excluded.stats, updated_ts = excluded.updated_ts",
                params![version, stats.to_string(), now_ts()],
            )?;
            Ok(())
        })
    }

    /// The stored shadow-traffic statistics, by staging version.
    pub fn shadows(&self) -> Result<std::collections::HashMap<i64, serde_json::Value>> {
        Ok(self
            .query("SELECT version, stats FROM shadow", [], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?
            .into_iter()
            .filter_map(|(v, s)| serde_json::from_str(&s).ok().map(|j| (v, j)))
            .collect())
    }
}
