//! File-system watching: wakes the reconciler when refs or approval files change.
//!
//! Owns the notify watchers on the model repo's git folder (branch refs, tags, packed-refs)
//! and on the approvals folder. Events carry no meaning here: each one only sends a wake-up;
//! the reconciler reads the actual state. Missing an event is harmless (the periodic resync
//! catches up), so errors are logged, never fatal.

use std::path::Path;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

/// Keeps the watchers alive; dropping it stops watching.
pub struct Watch {
    _watcher: notify::RecommendedWatcher,
}

/// Watches `git_dir` and `approvals_dir`, sending `()` on `wake` for every relevant change.
pub fn start(
    git_dir: &Path,
    approvals_dir: &Path,
    wake: UnboundedSender<()>,
) -> notify::Result<Watch> {
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        match res {
            Ok(ev) => {
                let relevant = ev.paths.iter().any(|p| {
                    let s = p.to_string_lossy();
                    // Object writes and lock files come and go during a commit; refs are the signal.
                    !s.contains("/objects/") && !s.ends_with(".lock") && !s.contains("/logs/")
                });
                if relevant {
                    let _ = wake.send(());
                }
            }
            Err(e) => tracing::warn!("file watcher error: {e}; the periodic resync continues"),
        }
    })?;
    watcher.watch(&git_dir.join("refs"), RecursiveMode::Recursive)?;
    watcher.watch(git_dir, RecursiveMode::NonRecursive)?;
    std::fs::create_dir_all(approvals_dir).map_err(notify::Error::io)?;
    watcher.watch(approvals_dir, RecursiveMode::NonRecursive)?;
    Ok(Watch { _watcher: watcher })
}
