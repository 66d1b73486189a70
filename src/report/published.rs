//! What a running agent publishes in the state folder for the CLI and the dashboard to read:
//! the lock that says it runs, `endpoints.json` (where its endpoints and dashboard listen),
//! and the `meta` key of each stage's capture status.

use std::fs::File;

use serde::{Deserialize, Serialize};

use crate::config::Config;

/// Where the running agent's endpoints actually listen (written at startup).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoints {
    pub pid: u32,
    pub staging: String,
    pub production: String,
    /// The dashboard's URL (`None`: off, or its address was taken).
    #[serde(default)]
    pub dashboard: Option<String>,
}

pub fn endpoints_file(cfg: &Config) -> std::path::PathBuf {
    cfg.state_dir.join("endpoints.json")
}

pub fn lock_file(cfg: &Config) -> std::path::PathBuf {
    cfg.state_dir.join("agent.lock")
}

/// Whether an agent currently holds the state folder's lock.
pub fn agent_running(cfg: &Config) -> bool {
    match File::open(lock_file(cfg)) {
        Ok(f) => match f.try_lock() {
            Ok(()) => {
                let _ = f.unlock();
                false
            }
            Err(_) => true,
        },
        Err(_) => false,
    }
}

/// Base URLs of the stage endpoints: those of the running agent, else the configured ones.
pub fn endpoint_urls(cfg: &Config) -> (String, String) {
    if agent_running(cfg) {
        if let Ok(text) = std::fs::read_to_string(endpoints_file(cfg)) {
            if let Ok(e) = serde_json::from_str::<Endpoints>(&text) {
                return (e.staging, e.production);
            }
        }
    }
    (
        format!("http://{}", cfg.staging.listen),
        format!("http://{}", cfg.production.listen),
    )
}

/// The registry `meta` key holding a stage's capture status (JSON `CaptureStatus`).
pub fn capture_status_key(stage: crate::domain::Stage) -> String {
    format!("capture.{stage}")
}
