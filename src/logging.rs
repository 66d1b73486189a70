//! Logging: human-readable lines on stderr and JSON lines in the state folder.
//!
//! Owns the tracing subscriber. Run lines carry the run id and commit through the `run` span;
//! the JSON file is what `rcfops logs [-f] [--run N]` reads. When the agent starts, a log over
//! [`ROTATE_BYTES`] is moved to `<name>.1` (replacing the previous one), so it stays bounded.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// Size over which the JSON log is rotated when the agent starts.
pub const ROTATE_BYTES: u64 = 64 << 20;

/// Moves `path` to `path.1` when it is larger than `limit`; returns whether it did.
pub fn rotate_if_large(path: &Path, limit: u64) -> std::io::Result<bool> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > limit => {
            let mut old = path.as_os_str().to_owned();
            old.push(".1");
            std::fs::rename(path, old)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Installs the global subscriber. `json_file`: where to append JSON lines (created if needed).
pub fn init(json_file: Option<&Path>, verbose: bool) -> std::io::Result<()> {
    let level = if verbose { "debug" } else { "info" };
    let filter = || {
        EnvFilter::try_from_env("RCFOPS_LOG").unwrap_or_else(|_| {
            EnvFilter::new(format!("{level},hyper=warn,reqwest=warn,notify=warn"))
        })
    };
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .compact()
        .with_filter(filter());
    let json = match json_file {
        Some(p) => {
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d)?;
            }
            let f = OpenOptions::new().create(true).append(true).open(p)?;
            Some(
                fmt::layer()
                    .json()
                    .with_writer(Mutex::new(f))
                    .with_current_span(true)
                    .with_span_list(false)
                    .flatten_event(true)
                    .with_filter(filter()),
            )
        }
        None => None,
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(json)
        .try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn large_logs_move_aside() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("agent.log.jsonl");
        std::fs::write(&p, vec![b'x'; 100]).unwrap();
        assert!(!super::rotate_if_large(&p, 100).unwrap());
        std::fs::write(&p, vec![b'x'; 101]).unwrap();
        assert!(super::rotate_if_large(&p, 100).unwrap());
        assert!(!p.exists());
        assert_eq!(
            std::fs::read(d.path().join("agent.log.jsonl.1"))
                .unwrap()
                .len(),
            101
        );
    }
}
