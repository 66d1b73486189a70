//! rcfops: a local GitOps MLOps agent for Random Cut Forest fraud models.
//!
//! Data flows one way: [`watch`] → [`reconcile`] → [`pipeline`] → [`registry`] → [`gates`] →
//! deploy ([`reconcile`]) → [`serve`]. See ARCHITECTURE.md for the code map and invariants.

pub mod agent;
pub mod approvals;
pub mod artifacts;
pub mod cli;
pub mod config;
pub mod domain;
pub mod failpoint;
pub mod logging;
pub mod model;
pub mod pipeline;
pub mod reconcile;
pub mod registry;
pub mod repo;
pub mod serve;
pub mod stagetest;
pub mod stream;
pub mod targets;
