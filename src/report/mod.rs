//! The documents people and scripts read, built from the registry: the status document and
//! the monitor report, and what a running agent publishes in the state folder. One source for
//! the CLI's tables and `--json`, the dashboard's pages and its `/api/…`.
//!
//! Not: write anything, render a table or a page (the CLI and the dashboard do).

pub mod monitor;
pub mod published;
pub mod status;

pub use monitor::{monitor_doc, MonitorDoc};
pub use status::{status_doc, StatusDoc, VersionDoc};
