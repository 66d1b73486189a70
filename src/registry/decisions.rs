//! Approval decisions: one row per tag object or approval file, with its effect on the version.

use super::*;

impl Registry {
    // approvals --------------------------------------------------------------------

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
}
