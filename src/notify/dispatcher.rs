//! Delivers the outbox: one task per sink, off the reconciler's path, so a slow or dead sink
//! delays nothing but its own deliveries. Level-triggered: each pass asks the registry which
//! events are due for the sink (never tried, or pending with their retry due), so a restart
//! continues where the last process stopped. An event whose 2xx arrived just before a crash
//! is sent once more, with the same `webhook-id`.

use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use tokio::sync::watch;

use super::deliver::Deliverer;
use super::policy::{self, Attempt, Next};
use crate::config::SinkConfig;
use crate::registry::{now_ts, Registry};

/// The longest a sink's task sleeps before looking again (a `notify retry` from the CLI is
/// seen within this).
const POLL: Duration = Duration::from_secs(1);
/// Events taken per pass.
const BATCH: usize = 16;

/// Starts one task per sink; they stop when `stop` turns true.
pub fn start(
    registry: Arc<Registry>,
    sinks: Vec<SinkConfig>,
    stop: watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
    if sinks.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = sinks.iter().map(|s| s.name.as_str()).collect();
    registry.register_sinks(&names).map_err(|e| e.to_string())?;
    let instance = registry.instance_id().map_err(|e| e.to_string())?;
    let deliverer = Arc::new(Deliverer::new(instance)?);
    Ok(sinks
        .into_iter()
        .map(|sink| {
            tokio::spawn(run_sink(
                registry.clone(),
                deliverer.clone(),
                sink,
                stop.clone(),
            ))
        })
        .collect())
}

async fn run_sink(
    registry: Arc<Registry>,
    deliverer: Arc<Deliverer>,
    sink: SinkConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut signal = registry.outbox_signal();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(now_ts().to_bits() ^ std::process::id() as u64);
    tracing::info!(sink = %sink.name, "notifications to {}: {}", sink.name, sink.target.describe());
    loop {
        if *stop.borrow() {
            return;
        }
        signal.borrow_and_update();
        let now = now_ts();
        let due = match registry.due_events(&sink.name, &sink.events, now, BATCH) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(sink = %sink.name, "cannot read the outbox: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = stop.changed() => return,
                }
                continue;
            }
        };
        if due.is_empty() {
            let wait = match registry.next_retry(&sink.name) {
                Ok(Some(t)) => Duration::from_secs_f64((t - now).clamp(0.0, POLL.as_secs_f64())),
                _ => POLL,
            };
            tokio::select! {
                _ = signal.changed() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        for (event, attempts) in due {
            crate::failpoint::hit("notify.before-send");
            let answered = tokio::select! {
                a = deliverer.attempt(&sink, &event) => a,
                // Not recorded: the next process sends it again, with the same id.
                _ = stop.changed() => return,
            };
            let attempt = attempts + 1;
            if matches!(answered.attempt, Attempt::Delivered { .. }) {
                crate::failpoint::hit("notify.after-send");
            }
            let next = policy::after(
                &answered.attempt,
                attempt,
                &sink.retry,
                now_ts(),
                rand::Rng::random::<f64>(&mut rng),
            );
            let (status, error) = match &answered.attempt {
                Attempt::Delivered { status } => (Some(*status), None),
                Attempt::Gone => (Some(410), Some(answered.answer.as_str())),
                Attempt::Failed { status, error, .. } => (*status, Some(error.as_str())),
            };
            let ty = event.data.event;
            match &next {
                Next::Delivered => tracing::info!(
                    sink = %sink.name, event = event.id, "notified {}: {ty} (event {})", sink.name, event.id
                ),
                Next::RetryAt(t) => tracing::warn!(
                    sink = %sink.name, event = event.id,
                    "notification {} ({ty}) to {} failed (attempt {attempt} of {}): {}; next attempt in {:.1} s",
                    event.id, sink.name, sink.retry.max_attempts, answered.answer, (t - now_ts()).max(0.0)
                ),
                Next::Dead => tracing::error!(
                    sink = %sink.name, event = event.id,
                    "notification {} ({ty}) to {} dead-lettered after {attempt} attempts: {}; `rcfops notify retry {}` sends it again",
                    event.id, sink.name, answered.answer, event.id
                ),
                Next::DisableSink => tracing::error!(
                    sink = %sink.name, event = event.id,
                    "sink {} answered 410 Gone: it is disabled; `rcfops notify retry {}` enables it again",
                    sink.name, event.id
                ),
            }
            if let Err(e) =
                registry.record_attempt(event.id, &sink.name, attempt, status, error, &next)
            {
                tracing::error!(sink = %sink.name, "cannot record the notification attempt: {e}");
            }
            if next == Next::DisableSink {
                break;
            }
        }
    }
}
