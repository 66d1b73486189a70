//! `rcfops notify list|retry|test`: the outbox as people read it, a dead letter sent again, a
//! test event sent to one sink with the receiver's answer printed.

use anyhow::{bail, Result};

use super::{open_registry, Failed};
use crate::config::Config;
use crate::domain::{DeliveryState, EventType};
use crate::notify::deliver::Deliverer;
use crate::notify::{summary, EventData, Stored};
use crate::registry::{format_ts, now_ts, OutboxRow, Registry};

/// Where an event stands with one configured sink (a sink that has not tried it yet reads
/// `pending`; one that does not take its type is left out).
#[derive(Debug, serde::Serialize)]
struct SinkState {
    sink: String,
    state: DeliveryState,
    attempts: u32,
    next_attempt: Option<String>,
    last_status: Option<u16>,
    last_error: Option<String>,
}

fn states(cfg: &Config, reg_sinks: &[crate::registry::SinkRow], row: &OutboxRow) -> Vec<SinkState> {
    let mut out = Vec::new();
    for s in &cfg.notify.sinks {
        if !s.wants(row.data.event) {
            continue;
        }
        let first = reg_sinks
            .iter()
            .find(|r| r.name == s.name)
            .map(|r| r.first_event);
        match row.deliveries.iter().find(|d| d.sink == s.name) {
            Some(d) => out.push(SinkState {
                sink: s.name.clone(),
                state: d.state,
                attempts: d.attempts,
                next_attempt: (d.state == DeliveryState::Pending)
                    .then_some(d.next_ts)
                    .flatten()
                    .map(format_ts),
                last_status: d.last_status,
                last_error: d.last_error.clone(),
            }),
            // Configured after this event was written: never sent to it.
            None if first.is_none_or(|f| row.id < f) => {}
            None => out.push(SinkState {
                sink: s.name.clone(),
                state: DeliveryState::Pending,
                attempts: 0,
                next_attempt: None,
                last_status: None,
                last_error: None,
            }),
        }
    }
    // Deliveries to sinks no longer configured stay visible.
    for d in &row.deliveries {
        if !out.iter().any(|o| o.sink == d.sink) {
            out.push(SinkState {
                sink: d.sink.clone(),
                state: d.state,
                attempts: d.attempts,
                next_attempt: None,
                last_status: d.last_status,
                last_error: d.last_error.clone(),
            });
        }
    }
    out
}

pub fn cmd_notify_list(
    cfg: &Config,
    limit: usize,
    state: Option<DeliveryState>,
    json: bool,
) -> Result<i32> {
    let reg = open_registry(cfg)?;
    let sinks = reg.sinks()?;
    let rows: Vec<(OutboxRow, Vec<SinkState>)> = reg
        .outbox(limit)?
        .into_iter()
        .map(|r| {
            let s = states(cfg, &sinks, &r);
            (r, s)
        })
        .filter(|(_, s)| state.is_none_or(|want| s.iter().any(|x| x.state == want)))
        .collect();
    if json {
        let doc: Vec<_> = rows
            .iter()
            .map(|(r, s)| {
                serde_json::json!({
                    "id": r.id, "time": format_ts(r.at_ts), "type": r.data.event,
                    "version": r.data.version, "summary": summary(&r.data), "sinks": s,
                })
            })
            .collect();
        let disabled: Vec<_> = sinks
            .iter()
            .filter(|s| s.disabled_ts.is_some())
            .map(|s| serde_json::json!({"sink": s.name, "reason": s.disabled_reason}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"events": doc, "disabled_sinks": disabled})
            )?
        );
        return Ok(0);
    }
    if cfg.notify.sinks.is_empty() {
        println!("no sinks configured: add a [[notify.sinks]] table to the config (README \"Notifications\")");
    }
    for s in sinks.iter().filter(|s| s.disabled_ts.is_some()) {
        println!(
            "sink {} is disabled: {}",
            s.name,
            s.disabled_reason.as_deref().unwrap_or("")
        );
    }
    if rows.is_empty() {
        println!("no events");
        return Ok(0);
    }
    println!(
        "{:>5}  {:20}  {:22}  {:8}  SINKS",
        "ID", "TIME", "TYPE", "VERSION"
    );
    for (r, s) in &rows {
        let sinks_text = if s.is_empty() {
            "-".to_string()
        } else {
            s.iter()
                .map(|x| {
                    let mut t = format!("{}: {}", x.sink, x.state);
                    if x.attempts > 0 && x.state != DeliveryState::Delivered {
                        t.push_str(&format!(" after {} attempt(s)", x.attempts));
                    }
                    if let (DeliveryState::Pending | DeliveryState::Dead, Some(e)) =
                        (x.state, &x.last_error)
                    {
                        t.push_str(&format!(" ({e})"));
                    }
                    t
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        println!(
            "{:>5}  {:20}  {:22}  {:8}  {}",
            r.id,
            format_ts(r.at_ts),
            r.data.event.as_str(),
            r.data
                .version
                .map(|n| format!("v{n}"))
                .unwrap_or_else(|| "-".into()),
            sinks_text
        );
        println!("       {}", summary(&r.data));
    }
    Ok(0)
}

pub fn cmd_notify_retry(cfg: &Config, id: i64) -> Result<i32> {
    let reg = open_registry(cfg)?;
    if reg.outbox_event(id)?.is_none() {
        bail!("there is no event {id}: `rcfops notify list` shows their ids");
    }
    let sinks = reg.retry_event(id)?;
    if sinks.is_empty() {
        return Err(Failed(format!(
            "event {id} has nothing to retry: it was delivered, or no attempt has been made yet (the agent sends it when it runs)"
        ))
        .into());
    }
    println!(
        "event {id} will be sent again to {} (by the running agent, within a second)",
        sinks.join(", ")
    );
    Ok(0)
}

pub fn cmd_notify_test(cfg: &Config, sink: &str) -> Result<i32> {
    let Some(s) = cfg.notify.sinks.iter().find(|s| s.name == sink) else {
        let names: Vec<&str> = cfg.notify.sinks.iter().map(|s| s.name.as_str()).collect();
        if names.is_empty() {
            bail!("no sinks are configured: add a [[notify.sinks]] table to the config");
        }
        bail!(
            "no sink is named {sink:?} (configured: {})",
            names.join(", ")
        );
    };
    // The registry's id when there is one, so a receiver sees this agent's id prefix.
    let instance = if cfg.registry_path().exists() {
        Registry::open(&cfg.registry_path())?.instance_id()?
    } else {
        "test".to_string()
    };
    let now = now_ts();
    let event = Stored {
        id: 0,
        at_ts: now,
        data: EventData {
            event: EventType::Test,
            audit_id: 0,
            version: None,
            commit: None,
            model_group: None,
            stage: None,
            run: None,
            actor: whoami(),
            how: "cli".into(),
            audit_event: "notify.test".into(),
            detail: format!("test notification to sink {sink}"),
            next: None,
        },
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answered = rt.block_on(async {
        let d = Deliverer::new(format!("{instance}_test{}", now.floor() as i64))
            .map_err(anyhow::Error::msg)?;
        Ok::<_, anyhow::Error>(d.attempt(s, &event).await)
    })?;
    println!("{}: {}", s.target.describe(), answered.answer);
    match answered.attempt {
        crate::notify::policy::Attempt::Delivered { .. } => Ok(0),
        _ => Err(Failed(format!("sink {sink} did not accept the test event")).into()),
    }
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "cli".into())
}
