//! The monitor's thread: every `poll_ms`, one monitor pass over the capture files, the
//! ground-truth folder, and the capture writers' status stored for `rcfops status`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::monitor::Monitor;
use crate::registry::Registry;
use crate::serve::capture::Capture;

use crate::report::published::capture_status_key;

pub struct Handle {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    captures: Vec<Arc<Capture>>,
}

impl Handle {
    /// Closes the capture writers (flushing and fsyncing their files), then runs one last
    /// pass so what they wrote is judged, and stops.
    pub fn stop(mut self) {
        for c in &self.captures {
            c.close();
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn start(cfg: &Config, registry: Arc<Registry>, captures: Vec<Arc<Capture>>) -> Handle {
    let stop = Arc::new(AtomicBool::new(false));
    let mut monitor = Monitor::new(
        cfg.capture_dir(),
        cfg.ground_truth_dir(),
        cfg.monitoring.clone(),
        crate::serve::parse_request,
    );
    let poll = Duration::from_millis(cfg.monitoring.poll_ms);
    let flag = stop.clone();
    let writers = captures.clone();
    let thread = std::thread::Builder::new()
        .name("monitor".into())
        .spawn(move || {
            let mut last_status: Vec<Option<String>> = vec![None; writers.len()];
            loop {
                let stopping = flag.load(Ordering::Relaxed);
                loop {
                    match monitor.pass(&registry, crate::monitor::now_ms()) {
                        Ok(r) => {
                            for c in &r.changes {
                                let from = c.from.map(|v| v.as_str()).unwrap_or("none");
                                if c.to == crate::domain::Verdict::Ok {
                                    tracing::info!(
                                        stage = %c.stage,
                                        version = c.version,
                                        "monitor: {} v{} {} {from} → OK",
                                        c.stage,
                                        c.version,
                                        c.kind
                                    );
                                    continue;
                                }
                                let why = c.reasons.join("; ");
                                tracing::warn!(
                                    stage = %c.stage,
                                    version = c.version,
                                    "monitor: {} v{} {} {from} → {}: {why}",
                                    c.stage,
                                    c.version,
                                    c.kind,
                                    c.to
                                );
                            }
                            if !r.more {
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::warn!("monitor pass failed ({e}); retrying next poll");
                            break;
                        }
                    }
                }
                match monitor.ground_truth(&registry) {
                    Ok((reports, changes)) => {
                        for r in reports.iter().filter(|r| r.already_merged_ts.is_none()) {
                            tracing::info!(
                                "ground truth {}: {} labels merged, {} lines not merged",
                                r.file,
                                r.merged,
                                r.problems.len()
                            );
                            for p in r.problems.iter().take(20) {
                                tracing::warn!("ground truth {p}");
                            }
                        }
                        for c in changes {
                            tracing::warn!(
                                "monitor: {} v{} quality → {}: {}",
                                c.stage,
                                c.version,
                                c.to,
                                c.reasons.join("; ")
                            );
                        }
                    }
                    Err(e) => tracing::warn!("ground-truth merge failed ({e}); retrying next poll"),
                }
                for (c, last) in writers.iter().zip(last_status.iter_mut()) {
                    let text = serde_json::to_string(&c.status()).expect("numbers and strings");
                    if last.as_deref() != Some(&text)
                        && registry
                            .set_meta(&capture_status_key(c.stage()), &text)
                            .is_ok()
                    {
                        *last = Some(text);
                    }
                }
                if stopping {
                    return;
                }
                let until = std::time::Instant::now() + poll;
                while std::time::Instant::now() < until && !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        })
        .expect("start the monitor thread");
    Handle {
        stop,
        thread: Some(thread),
        captures,
    }
}
