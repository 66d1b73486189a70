//! Data capture: each endpoint writes a share of its requests and answers to JSON-lines files
//! in SageMaker's data-capture format (`monitor::format`), off the request path.
//!
//! A scored request hands its bodies (reference-counted, not copied) to a bounded queue with
//! `try_send`; a full queue drops the item and counts it. One writer thread per endpoint owns
//! the files: one file per hour (`<endpoint>/AllTraffic/yyyy/mm/dd/hh/…jsonl`), written and
//! flushed every [`POLL`], fsynced when it rotates and at close. Retention removes files older than `max_age` and then the oldest until the folder
//! holds at most `max_bytes`. A write that fails (read-only folder, full disk) stops capture
//! with one logged error; serving goes on, and [`Capture::status`] says why.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};

use crate::domain::Stage;
use crate::monitor::format;

/// How often the writer drains the queue; it flushes what it wrote after each drain.
const POLL: Duration = Duration::from_millis(5);
/// How often retention runs besides each rotation.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Where and how much an endpoint captures.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureSettings {
    /// `<state>/capture`.
    pub root: PathBuf,
    /// Share of requests captured, in percent (a running total picks exactly that share).
    pub sampling_percent: f64,
    /// Requests waiting for the writer; beyond this they are dropped and counted.
    pub queue: usize,
    /// Capture files older than this are removed.
    pub max_age: Duration,
    /// The capture folder of this endpoint is kept at most this large.
    pub max_bytes: u64,
}

/// What status shows about an endpoint's capture.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptureStatus {
    pub sampling_percent: f64,
    /// Requests written to capture files.
    pub written: u64,
    /// Requests dropped because the queue was full or capture had stopped.
    pub dropped: u64,
    /// Why capture stopped, if it did.
    pub error: Option<String>,
}

/// One request as handed to the writer.
pub struct Item {
    pub at_ms: i64,
    pub endpoint: Arc<String>,
    pub version: i64,
    pub threshold: f64,
    pub input_type: String,
    pub input: Bytes,
    pub output_type: &'static str,
    pub output: Bytes,
    pub inference_id: Option<String>,
    pub scores: Vec<f64>,
}

enum Msg {
    Item(Box<Item>),
    Close(SyncSender<()>),
}

/// One endpoint's capture: the queue, its counters and the writer thread.
pub struct Capture {
    stage: Stage,
    percent: f64,
    seen: AtomicU64,
    tx: SyncSender<Msg>,
    written: Counter,
    dropped: Counter,
    stopped: Arc<AtomicBool>,
    error: Arc<Mutex<Option<String>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Capture {
    /// Starts the writer thread for `ep` and makes `ep` capture through it (its counters are
    /// the endpoint's `/metrics`).
    pub fn start(ep: &super::Endpoint, settings: CaptureSettings) -> Arc<Capture> {
        let stage = ep.stage;
        let (tx, rx) = sync_channel(settings.queue.max(1));
        let (written, dropped) = ep.metrics().capture_counters();
        let stopped = Arc::new(AtomicBool::new(false));
        let error = Arc::new(Mutex::new(None));
        let writer = Writer {
            stage,
            settings: settings.clone(),
            file: None,
            written: written.clone(),
            dropped: dropped.clone(),
            stopped: stopped.clone(),
            error: error.clone(),
            rng: seeded_rng(),
            times: format::TimeText::default(),
            line: Vec::with_capacity(1024),
        };
        let thread = std::thread::Builder::new()
            .name(format!("capture-{stage}"))
            .spawn(move || writer.run(rx))
            .expect("start the capture thread");
        let capture = Arc::new(Capture {
            stage,
            percent: settings.sampling_percent.clamp(0.0, 100.0),
            seen: AtomicU64::new(0),
            tx,
            written,
            dropped,
            stopped,
            error,
            thread: Mutex::new(Some(thread)),
        });
        ep.set_capture(capture.clone());
        capture
    }

    /// Whether the next request is captured (the running share crosses a whole request).
    pub fn sample(&self) -> bool {
        let k = self.seen.fetch_add(1, Ordering::Relaxed);
        let before = (k as f64 * self.percent / 100.0).floor();
        let after = ((k + 1) as f64 * self.percent / 100.0).floor();
        after > before
    }

    /// Hands a sampled request to the writer; never blocks.
    pub fn offer(&self, item: Item) {
        if self.stopped.load(Ordering::Relaxed) {
            self.dropped.inc();
            return;
        }
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.tx.try_send(Msg::Item(Box::new(item)))
        {
            self.dropped.inc();
        }
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    pub fn status(&self) -> CaptureStatus {
        CaptureStatus {
            sampling_percent: self.percent,
            written: self.written.get(),
            dropped: self.dropped.get(),
            error: self.error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    /// Writes out what is queued, fsyncs the open file and stops the writer.
    pub fn close(&self) {
        let (ack_tx, ack_rx) = sync_channel(1);
        if self.tx.send(Msg::Close(ack_tx)).is_ok() {
            let _ = ack_rx.recv_timeout(Duration::from_secs(10));
        }
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

/// A generator for file and event ids, seeded from the clock and the process id (no global
/// state, no system call a request).
fn seeded_rng() -> rand_pcg::Pcg64Mcg {
    use rand::SeedableRng;
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    rand_pcg::Pcg64Mcg::from_seed((t ^ ((std::process::id() as u128) << 64)).to_le_bytes())
}

struct Open {
    endpoint: Arc<String>,
    hour: i64,
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

struct Writer {
    stage: Stage,
    settings: CaptureSettings,
    file: Option<Open>,
    written: Counter,
    dropped: Counter,
    stopped: Arc<AtomicBool>,
    error: Arc<Mutex<Option<String>>>,
    rng: rand_pcg::Pcg64Mcg,
    times: format::TimeText,
    /// The line being written (reused).
    line: Vec<u8>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        let mut last_sweep = Instant::now() - SWEEP_EVERY;
        // Polls instead of blocking on the queue, so a request never has to wake this thread
        // (no system call on the request path); each pass drains what queued up.
        loop {
            std::thread::sleep(POLL);
            let mut wrote = false;
            loop {
                match rx.try_recv() {
                    Ok(Msg::Item(item)) => {
                        if let Err(e) = self.write(&item) {
                            self.fail(e);
                            // The failed item is lost, and so is everything queued until
                            // the agent stops.
                            self.dropped.inc();
                            self.discard(rx);
                            return;
                        }
                        wrote = true;
                    }
                    Ok(Msg::Close(ack)) => {
                        if let Err(e) = self.rotate_out() {
                            self.fail(e);
                        }
                        let _ = ack.send(());
                        return;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        let _ = self.rotate_out();
                        return;
                    }
                }
            }
            if wrote {
                let flushed = match &mut self.file {
                    Some(f) => f
                        .out
                        .flush()
                        .map_err(|e| format!("cannot write {}: {e}", f.path.display())),
                    None => Ok(()),
                };
                if let Err(e) = flushed {
                    self.fail(e);
                    self.discard(rx);
                    return;
                }
            }
            if last_sweep.elapsed() >= SWEEP_EVERY {
                self.sweep();
                last_sweep = Instant::now();
            }
        }
    }

    /// After a failure: counts every queued item as dropped until close.
    fn discard(&self, rx: Receiver<Msg>) {
        loop {
            std::thread::sleep(POLL);
            loop {
                match rx.try_recv() {
                    Ok(Msg::Item(_)) => {
                        self.dropped.inc();
                    }
                    Ok(Msg::Close(ack)) => {
                        let _ = ack.send(());
                        return;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
        }
    }

    fn fail(&mut self, e: String) {
        tracing::error!(
            stage = %self.stage,
            "data capture for {} stopped: {e}; serving continues without capture (fix the folder, then restart the agent)",
            self.stage
        );
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        self.stopped.store(true, Ordering::Relaxed);
        self.file = None;
    }

    fn write(&mut self, item: &Item) -> Result<(), String> {
        let hour = format::hour_of(item.at_ms);
        let same = self
            .file
            .as_ref()
            .is_some_and(|f| f.hour == hour && f.endpoint == item.endpoint);
        if !same {
            self.rotate_out()?;
            let id = format::uuid4(&mut self.rng);
            let rel = format::capture_path(&item.endpoint, item.at_ms, &id);
            let path = self.settings.root.join(rel);
            let dir = path.parent().expect("a capture path has folders");
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let file = std::fs::OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            self.file = Some(Open {
                endpoint: item.endpoint.clone(),
                hour,
                path,
                out: std::io::BufWriter::with_capacity(64 << 10, file),
            });
            self.sweep();
        }
        let event_id = format::uuid4(&mut self.rng);
        let time = self.times.of(item.at_ms);
        self.line.clear();
        format::write_line(
            &mut self.line,
            &format::Event {
                input_type: &item.input_type,
                input: &item.input,
                output_type: item.output_type,
                output: &item.output,
                event_id: &event_id,
                inference_id: item.inference_id.as_deref(),
                inference_time: &time,
                stage: self.stage,
                version: item.version,
                threshold: item.threshold,
                scores: &item.scores,
            },
        );
        let f = self.file.as_mut().expect("opened above");
        f.out
            .write_all(&self.line)
            .map_err(|e| format!("cannot write {}: {e}", f.path.display()))?;
        self.written.inc();
        Ok(())
    }

    /// Flushes and fsyncs the open file, and closes it.
    fn rotate_out(&mut self) -> Result<(), String> {
        if let Some(mut f) = self.file.take() {
            f.out
                .flush()
                .and_then(|_| f.out.get_ref().sync_all())
                .map_err(|e| format!("cannot write {}: {e}", f.path.display()))?;
        }
        Ok(())
    }

    /// Retention: files older than `max_age`, then the oldest beyond `max_bytes`. The open
    /// file is never removed. Errors are logged, not fatal: serving and capture go on.
    fn sweep(&mut self) {
        let open = self.file.as_ref().map(|f| f.path.clone());
        let mut files = Vec::new();
        format::capture_files(&self.settings.root, &mut files);
        files.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        let now = std::time::SystemTime::now();
        let mut total: u64 = files.iter().map(|f| f.2).sum();
        for (path, modified, size) in files {
            if Some(&path) == open.as_ref() {
                continue;
            }
            let old = now
                .duration_since(modified)
                .is_ok_and(|age| age > self.settings.max_age);
            if old || total > self.settings.max_bytes {
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        total = total.saturating_sub(size);
                        remove_empty_parents(&path, &self.settings.root);
                    }
                    Err(e) => {
                        tracing::warn!("capture retention cannot remove {}: {e}", path.display())
                    }
                }
            }
        }
    }
}

fn remove_empty_parents(path: &Path, root: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(root: &Path, max_bytes: u64, max_age: Duration) -> Writer {
        Writer {
            stage: Stage::Production,
            settings: CaptureSettings {
                root: root.to_path_buf(),
                sampling_percent: 100.0,
                queue: 16,
                max_age,
                max_bytes,
            },
            file: None,
            written: Counter::default(),
            dropped: Counter::default(),
            stopped: Arc::new(AtomicBool::new(false)),
            error: Arc::new(Mutex::new(None)),
            rng: seeded_rng(),
            times: format::TimeText::default(),
            line: Vec::new(),
        }
    }

    fn item(at_ms: i64) -> Item {
        Item {
            at_ms,
            endpoint: Arc::new("ep".into()),
            version: 1,
            threshold: 1.0,
            input_type: "text/csv".into(),
            input: Bytes::from_static(b"1,2"),
            output_type: "application/json",
            output: Bytes::from_static(b"{}"),
            inference_id: None,
            scores: vec![0.5],
        }
    }

    fn jsonl(root: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        format::capture_files(root, &mut files);
        let mut v: Vec<PathBuf> = files.into_iter().map(|f| f.0).collect();
        v.sort();
        v
    }

    #[test]
    fn a_new_hour_is_a_new_file_and_the_old_one_is_synced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path(), u64::MAX, Duration::from_secs(3600 * 24));
        let h17 = 1_796_230_800_000; // 2026-12-02T17:00:00Z
        for at in [h17 + 1, h17 + 2, h17 + 3_599_999, h17 + 3_600_000] {
            w.write(&item(at)).unwrap();
        }
        w.rotate_out().unwrap();
        let files = jsonl(dir.path());
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files[0]
            .to_string_lossy()
            .contains("/2026/12/02/17/00-00-001-"));
        assert!(files[1]
            .to_string_lossy()
            .contains("/2026/12/02/18/00-00-000-"));
        let lines = |p: &Path| std::fs::read_to_string(p).unwrap().lines().count();
        assert_eq!((lines(&files[0]), lines(&files[1])), (3, 1));
        assert_eq!(w.written.get(), 4);
    }

    #[test]
    fn retention_removes_old_files_then_the_oldest_beyond_the_size_but_never_the_open_one() {
        let dir = tempfile::tempdir().unwrap();
        let h = 1_796_230_800_000;
        // Four hours of capture, one line each.
        let mut w = writer(dir.path(), u64::MAX, Duration::from_secs(3600 * 24));
        for k in 0..4 {
            w.write(&item(h + k * 3_600_000)).unwrap();
        }
        w.rotate_out().unwrap();
        let files = jsonl(dir.path());
        assert_eq!(files.len(), 4);
        let size = std::fs::metadata(&files[0]).unwrap().len();
        // The first is two days old by its modification time.
        let old = std::time::SystemTime::now() - Duration::from_secs(48 * 3600);
        std::fs::File::options()
            .write(true)
            .open(&files[0])
            .unwrap()
            .set_modified(old)
            .unwrap();
        let mut w = writer(dir.path(), 2 * size, Duration::from_secs(24 * 3600));
        w.write(&item(h + 4 * 3_600_000)).unwrap();
        w.sweep();
        let left = jsonl(dir.path());
        // Age removed the first; size then the oldest until two files' worth remain; the open
        // file (nothing flushed to it yet) stays.
        assert_eq!(left.len(), 3, "{left:?}");
        assert!(left.contains(&w.file.as_ref().unwrap().path));
        assert_eq!(&left[..2], &files[2..]);
        // Emptied hour folders are removed too.
        assert!(!files[0].parent().unwrap().exists());
        assert!(!files[1].parent().unwrap().exists());
    }
}
