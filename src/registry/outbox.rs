//! The notification outbox: the row announcing a transition is written by the transition's
//! own transaction ([`announce`], called from `audit`), and each sink's deliveries are
//! derived from those rows (a sink sees the events written after it was first configured).

use super::*;
use crate::domain::{DeliveryState, EventType};
use crate::notify::policy::Next;
use crate::notify::{self, EventData, Stored};

/// Writes the announcement of audit event `audit_id`, if its event is announced. Runs inside
/// the transaction that records the transition.
#[allow(clippy::too_many_arguments)]
pub(super) fn announce(
    tx: &Transaction,
    audit_id: i64,
    at_ts: f64,
    actor: &str,
    how: &str,
    event: &str,
    version: Option<i64>,
    run: Option<i64>,
    detail: &str,
) -> rusqlite::Result<()> {
    let Some(ty) = notify::event_for_audit(event) else {
        return Ok(());
    };
    let (commit, model_group) = match (version, run) {
        (Some(n), _) => tx
            .query_row(
                "SELECT commit_sha, model_group FROM versions WHERE version = ?1",
                [n],
                |r| Ok((Some(r.get::<_, String>(0)?), Some(r.get::<_, String>(1)?))),
            )
            .optional()?
            .unwrap_or((None, None)),
        (None, Some(r)) => (
            tx.query_row("SELECT commit_sha FROM runs WHERE run = ?1", [r], |r| {
                r.get::<_, String>(0)
            })
            .optional()?,
            None,
        ),
        (None, None) => (None, None),
    };
    // Events about no version (a refused tag, a failed run) name the newest version's group.
    let model_group = match model_group {
        Some(g) => Some(g),
        None => tx
            .query_row(
                "SELECT model_group FROM versions ORDER BY version DESC LIMIT 1",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()?,
    };
    let data = EventData {
        event: ty,
        audit_id,
        version,
        next: notify::next_step(ty, version, commit.as_deref()),
        commit,
        model_group,
        stage: notify::stage_of_audit(event, ty),
        run,
        actor: actor.to_string(),
        how: how.to_string(),
        audit_event: event.to_string(),
        detail: detail.to_string(),
    };
    tx.execute(
        "INSERT INTO outbox (audit_id, type, at_ts, version, data) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            audit_id,
            ty,
            at_ts,
            version,
            serde_json::to_string(&data).expect("plain data")
        ],
    )?;
    Ok(())
}

/// One event and where it stands with each sink that has tried it.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub at_ts: f64,
    pub data: EventData,
    pub deliveries: Vec<DeliveryRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRow {
    pub sink: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_ts: Option<f64>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub updated_ts: f64,
}

/// An event a sink will not get unless someone retries it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// The outbox id (`rcfops notify retry ID`).
    pub id: i64,
    #[serde(rename = "type")]
    pub event: EventType,
    pub sink: String,
    pub last_error: Option<String>,
}

/// A sink the registry has seen, with its 410 state.
#[derive(Debug, Clone, Serialize)]
pub struct SinkRow {
    pub name: String,
    pub first_event: i64,
    pub disabled_ts: Option<f64>,
    pub disabled_reason: Option<String>,
}

fn stored(r: &rusqlite::Row) -> rusqlite::Result<Stored> {
    let text: String = r.get(2)?;
    let data = serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Stored {
        id: r.get(0)?,
        at_ts: r.get(1)?,
        data,
    })
}

/// `,a,b,` for the SQL filter (empty: every type).
fn type_filter(types: &[EventType]) -> String {
    if types.is_empty() {
        return String::new();
    }
    let mut s = String::from(",");
    for t in types {
        s.push_str(t.as_str());
        s.push(',');
    }
    s
}

impl Registry {
    /// This registry's id, part of every message id (created with the registry).
    pub fn instance_id(&self) -> Result<String> {
        if let Some(id) = self.meta("instance")? {
            return Ok(id);
        }
        let id = {
            use sha2::Digest;
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let h = sha2::Sha256::digest(format!("{nanos}/{}", std::process::id()));
            h[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('instance', ?1)",
                [&id],
            )
        })?;
        Ok(self.meta("instance")?.unwrap_or(id))
    }

    /// Records sinks seen for the first time: they get the events written from now on.
    pub fn register_sinks(&self, names: &[&str]) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            for n in names {
                tx.execute(
                    "INSERT OR IGNORE INTO sinks (name, first_event)
                     VALUES (?1, (SELECT COALESCE(MAX(id), 0) + 1 FROM outbox))",
                    [n],
                )?;
            }
            tx.commit()
        })
    }

    pub fn sinks(&self) -> Result<Vec<SinkRow>> {
        self.query(
            "SELECT name, first_event, disabled_ts, disabled_reason FROM sinks ORDER BY name",
            [],
            |r| {
                Ok(SinkRow {
                    name: r.get(0)?,
                    first_event: r.get(1)?,
                    disabled_ts: r.get(2)?,
                    disabled_reason: r.get(3)?,
                })
            },
        )
    }

    /// The events due for `sink` at `now`, oldest first: never tried, or pending with their
    /// next attempt due. Nothing while the sink is disabled. With the attempts made so far.
    pub fn due_events(
        &self,
        sink: &str,
        types: &[EventType],
        now: f64,
        limit: usize,
    ) -> Result<Vec<(Stored, u32)>> {
        self.query(
            "SELECT o.id, o.at_ts, o.data, COALESCE(d.attempts, 0)
             FROM outbox o JOIN sinks s ON s.name = ?1
             LEFT JOIN deliveries d ON d.event = o.id AND d.sink = ?1
             WHERE o.id >= s.first_event AND s.disabled_ts IS NULL
               AND (d.state IS NULL OR (d.state = 'pending' AND d.next_ts <= ?2))
               AND (?3 = '' OR instr(?3, ',' || o.type || ',') > 0)
             ORDER BY o.id LIMIT ?4",
            params![sink, now, type_filter(types), limit as i64],
            |r| Ok((stored(r)?, r.get::<_, u32>(3)?)),
        )
    }

    /// When `sink`'s next retry is due (`None`: none waits).
    pub fn next_retry(&self, sink: &str) -> Result<Option<f64>> {
        self.with(|c| {
            c.query_row(
                "SELECT MIN(next_ts) FROM deliveries WHERE sink = ?1 AND state = 'pending'",
                [sink],
                |r| r.get(0),
            )
        })
    }

    /// Records attempt number `attempt` of event `event` to `sink` and what follows it.
    pub fn record_attempt(
        &self,
        event: i64,
        sink: &str,
        attempt: u32,
        status: Option<u16>,
        error: Option<&str>,
        next: &Next,
    ) -> Result<()> {
        let now = now_ts();
        let (state, next_ts) = match next {
            Next::Delivered => (DeliveryState::Delivered, None),
            Next::RetryAt(t) => (DeliveryState::Pending, Some(*t)),
            Next::Dead => (DeliveryState::Dead, None),
            Next::DisableSink => (DeliveryState::Pending, Some(now)),
        };
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO deliveries (event, sink, state, attempts, next_ts, last_status, last_error, updated_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(event, sink) DO UPDATE SET state = excluded.state, attempts = excluded.attempts,
                   next_ts = excluded.next_ts, last_status = excluded.last_status,
                   last_error = excluded.last_error, updated_ts = excluded.updated_ts",
                params![event, sink, state, attempt, next_ts, status, error, now],
            )?;
            if *next == Next::DisableSink {
                tx.execute(
                    "UPDATE sinks SET disabled_ts = ?2, disabled_reason = ?3 WHERE name = ?1",
                    params![
                        sink,
                        now,
                        format!("answered 410 Gone to event {event}; `rcfops notify retry {event}` enables it again")
                    ],
                )?;
            }
            tx.commit()
        })
    }

    /// Makes event `id` due again for every sink that has not got it (dead or waiting), with
    /// its attempts reset, and enables again the sinks among them that a 410 disabled.
    /// Returns the sinks concerned (empty: nothing to retry).
    pub fn retry_event(&self, id: i64) -> Result<Vec<String>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let sinks: Vec<String> = {
                let mut st = tx.prepare(
                    "SELECT sink FROM deliveries WHERE event = ?1 AND state != 'delivered' ORDER BY sink",
                )?;
                let v = st.query_map([id], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
                v
            };
            let now = now_ts();
            tx.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_ts = ?2, updated_ts = ?2
                 WHERE event = ?1 AND state != 'delivered'",
                params![id, now],
            )?;
            for s in &sinks {
                tx.execute(
                    "UPDATE sinks SET disabled_ts = NULL, disabled_reason = NULL WHERE name = ?1",
                    [s],
                )?;
            }
            tx.commit()?;
            Ok(sinks)
        })
    }

    /// The newest `limit` events with their deliveries, oldest first.
    pub fn outbox(&self, limit: usize) -> Result<Vec<OutboxRow>> {
        let events = self.query(
            "SELECT id, at_ts, data FROM outbox ORDER BY id DESC LIMIT ?1",
            [limit as i64],
            stored,
        )?;
        let mut rows = Vec::with_capacity(events.len());
        for e in events.into_iter().rev() {
            let deliveries = self.query(
                "SELECT sink, state, attempts, next_ts, last_status, last_error, updated_ts
                 FROM deliveries WHERE event = ?1 ORDER BY sink",
                [e.id],
                |r| {
                    Ok(DeliveryRow {
                        sink: r.get(0)?,
                        state: r.get(1)?,
                        attempts: r.get(2)?,
                        next_ts: r.get(3)?,
                        last_status: r.get(4)?,
                        last_error: r.get(5)?,
                        updated_ts: r.get(6)?,
                    })
                },
            )?;
            rows.push(OutboxRow {
                id: e.id,
                at_ts: e.at_ts,
                data: e.data,
                deliveries,
            });
        }
        Ok(rows)
    }

    /// One event, whatever its age.
    pub fn outbox_event(&self, id: i64) -> Result<Option<Stored>> {
        self.with(|c| {
            c.query_row(
                "SELECT id, at_ts, data FROM outbox WHERE id = ?1",
                [id],
                stored,
            )
            .optional()
        })
    }

    /// Dead-lettered deliveries, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        self.query(
            "SELECT o.id, o.type, d.sink, d.last_error FROM deliveries d JOIN outbox o ON o.id = d.event
             WHERE d.state = 'dead' ORDER BY o.id, d.sink",
            [],
            |r| {
                Ok(DeadLetter {
                    id: r.get(0)?,
                    event: r.get(1)?,
                    sink: r.get(2)?,
                    last_error: r.get(3)?,
                })
            },
        )
    }

    /// The highest outbox id (0: none).
    pub fn outbox_head(&self) -> Result<i64> {
        self.with(|c| c.query_row("SELECT COALESCE(MAX(id), 0) FROM outbox", [], |r| r.get(0)))
    }

    /// A receiver that changes whenever an announcement is written through this handle.
    pub fn outbox_signal(&self) -> tokio::sync::watch::Receiver<i64> {
        self.outbox_tx.subscribe()
    }
}
