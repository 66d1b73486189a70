//! The audit trail: events that change no other state, and reading the trail.

use super::*;

impl Registry {
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

    /// The newest `limit` audit events matching the filters (an event-name prefix, a version,
    /// an actor), oldest first.
    pub fn audit_filtered(
        &self,
        event: Option<&str>,
        version: Option<i64>,
        actor: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditRow>> {
        let mut v = self.query(
            "SELECT id, at_ts, actor, how, event, version, run, detail FROM audit
             WHERE (?1 IS NULL OR substr(event, 1, length(?1)) = ?1) AND (?2 IS NULL OR version = ?2)
               AND (?3 IS NULL OR actor = ?3)
             ORDER BY id DESC LIMIT ?4",
            params![event, version, actor, limit as i64],
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
