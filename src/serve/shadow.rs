//! Shadow traffic: the production endpoint mirrors a share of its requests to the model the
//! staging endpoint serves, off the request path, and keeps per staging version how the two
//! agree.
//!
//! A production answer never waits for the shadow: the request hands its records and scores
//! to a bounded queue (`try_send`; a full queue drops the item and counts it) and one worker
//! thread scores them with staging's model. Per staging version it keeps the number of
//! records, both score lists (for the Spearman rank correlation; the first
//! [`MAX_PAIRS`] pairs), how often the alert decisions agree (each model at its own
//! threshold) and each side's alert rate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::Endpoint;

/// Score pairs kept per staging version for the rank correlation.
pub const MAX_PAIRS: usize = 1_000_000;
/// Requests waiting for the shadow worker; beyond this they are dropped (and counted).
const QUEUE: usize = 4096;

/// What one staging version's shadow traffic showed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowStats {
    /// The version production served for these records (the last one seen).
    pub production_version: i64,
    pub records: u64,
    /// Spearman correlation of production's and staging's scores (over the first pairs).
    pub rank_agreement: Option<f64>,
    /// Share of records where both alert or both do not, each at its own threshold.
    pub alert_agreement: Option<f64>,
    pub production_alert_rate: Option<f64>,
    pub staging_alert_rate: Option<f64>,
    /// Staging's alert rate minus production's.
    pub alert_rate_difference: Option<f64>,
}

#[derive(Default)]
struct Acc {
    production_version: i64,
    records: u64,
    agree: u64,
    production_alerts: u64,
    staging_alerts: u64,
    production_scores: Vec<f64>,
    staging_scores: Vec<f64>,
}

impl Acc {
    fn stats(&self) -> ShadowStats {
        let n = self.records as f64;
        let rate = |k: u64| (self.records > 0).then(|| k as f64 / n);
        let (p, s) = (rate(self.production_alerts), rate(self.staging_alerts));
        ShadowStats {
            production_version: self.production_version,
            records: self.records,
            rank_agreement: (self.production_scores.len() > 1)
                .then(|| {
                    crate::pipeline::champion::spearman(
                        &self.production_scores,
                        &self.staging_scores,
                    )
                })
                .filter(|r| r.is_finite()),
            alert_agreement: rate(self.agree),
            production_alert_rate: p,
            staging_alert_rate: s,
            alert_rate_difference: p.zip(s).map(|(p, s)| s - p),
        }
    }
}

/// One mirrored request.
struct Item {
    production_version: i64,
    threshold: f64,
    records: Vec<f64>,
    rows: usize,
    scores: Vec<f64>,
}

/// The mirror from production to staging.
pub struct Shadow {
    staging: Arc<Endpoint>,
    /// Requests to mirror, in percent; a running total picks exactly that share.
    percent: f64,
    seen: AtomicU64,
    tx: SyncSender<Item>,
    dropped: AtomicU64,
    stats: Mutex<HashMap<i64, Acc>>,
}

impl Shadow {
    /// Starts the worker thread; it ends when the `Shadow` is dropped.
    pub fn start(staging: Arc<Endpoint>, percent: f64) -> Arc<Shadow> {
        let (tx, rx) = sync_channel(QUEUE);
        let shadow = Arc::new(Shadow {
            staging,
            percent: percent.clamp(0.0, 100.0),
            seen: AtomicU64::new(0),
            tx,
            dropped: AtomicU64::new(0),
            stats: Mutex::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&shadow);
        std::thread::Builder::new()
            .name("shadow".into())
            .spawn(move || worker(rx, weak))
            .expect("start the shadow thread");
        shadow
    }

    /// Offers a scored production request; never blocks.
    pub fn offer(
        &self,
        production_version: i64,
        threshold: f64,
        records: &[f64],
        rows: usize,
        scores: &[f64],
    ) {
        let k = self.seen.fetch_add(1, Ordering::Relaxed);
        // Mirror request k when the running share crosses a whole request.
        let before = (k as f64 * self.percent / 100.0).floor();
        let after = ((k + 1) as f64 * self.percent / 100.0).floor();
        if after <= before {
            return;
        }
        let item = Item {
            production_version,
            threshold,
            records: records.to_vec(),
            rows,
            scores: scores.to_vec(),
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(item) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests dropped because the shadow queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The statistics per staging version so far.
    pub fn stats(&self) -> HashMap<i64, ShadowStats> {
        let map = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(v, a)| (*v, a.stats())).collect()
    }

    /// Continues counting for `version` from what was stored before a restart (counts only:
    /// the rank correlation covers the pairs seen since).
    pub fn resume(&self, version: i64, stored: &ShadowStats) {
        let mut map = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let acc = map.entry(version).or_default();
        if acc.records == 0 && stored.records > 0 {
            let n = stored.records as f64;
            let count = |r: Option<f64>| r.map(|r| (r * n).round() as u64).unwrap_or(0);
            acc.records = stored.records;
            acc.production_version = stored.production_version;
            acc.agree = count(stored.alert_agreement);
            acc.production_alerts = count(stored.production_alert_rate);
            acc.staging_alerts = count(stored.staging_alert_rate);
        }
    }

    fn process(&self, item: Item) {
        let Some(staging) = self.staging.current() else {
            return;
        };
        // The same version on both sides has nothing to compare.
        if staging.version == item.production_version {
            return;
        }
        let Ok(scores) = staging.model.try_score_rows(&item.records, item.rows) else {
            return;
        };
        let st = staging.model.header.threshold;
        let mut map = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let acc = map.entry(staging.version).or_default();
        acc.production_version = item.production_version;
        for (p, s) in item.scores.iter().zip(&scores) {
            let (pa, sa) = (*p > item.threshold, *s > st);
            acc.records += 1;
            acc.agree += u64::from(pa == sa);
            acc.production_alerts += u64::from(pa);
            acc.staging_alerts += u64::from(sa);
            if acc.production_scores.len() < MAX_PAIRS {
                acc.production_scores.push(*p);
                acc.staging_scores.push(*s);
            }
        }
    }
}

fn worker(rx: Receiver<Item>, shadow: std::sync::Weak<Shadow>) {
    // The lowest CPU priority: the shadow runs in the time production leaves idle. When the
    // machine is saturated its queue fills and items are dropped (counted), so production
    // answers are never slowed by it.
    #[cfg(target_os = "linux")]
    // SAFETY: scheduling calls on the calling thread (pid 0 / its own id) with a valid,
    // initialised parameter; no other memory is touched.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19);
        }
    }
    // Polls instead of blocking on the queue, so a production request never has to wake this
    // thread; each pass drains what queued up. The sender lives in the `Shadow`: once it is
    // dropped, the queue reports it disconnected and the loop ends.
    loop {
        std::thread::sleep(std::time::Duration::from_millis(10));
        let Some(s) = shadow.upgrade() else {
            return;
        };
        loop {
            match rx.try_recv() {
                Ok(item) => s.process(item),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_share_mirrors_exactly_the_percentage() {
        for (percent, of_100) in [(100.0, 100), (25.0, 25), (0.0, 0), (33.3, 33)] {
            let mirrored = (0..100u64)
                .filter(|&k| {
                    ((k + 1) as f64 * percent / 100.0).floor()
                        > (k as f64 * percent / 100.0).floor()
                })
                .count();
            assert_eq!(mirrored, of_100, "{percent}");
        }
    }

    #[test]
    fn stats_are_rates_over_the_records() {
        let a = Acc {
            production_version: 1,
            records: 4,
            agree: 3,
            production_alerts: 1,
            staging_alerts: 2,
            production_scores: vec![1.0, 2.0, 3.0, 4.0],
            staging_scores: vec![1.0, 3.0, 2.0, 4.0],
        };
        let s = a.stats();
        assert_eq!(s.alert_agreement, Some(0.75));
        assert_eq!(s.alert_rate_difference, Some(0.25));
        assert!((s.rank_agreement.unwrap() - 0.8).abs() < 1e-12);
    }
}
