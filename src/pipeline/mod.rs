//! One pipeline run: load → validate → preprocess → train → evaluate → gate → register.
//!
//! Owns the semantics of a run and of `rcfops eval` (both go through [`train_and_evaluate`]).
//! A run reads `pipeline.toml` and the data from the commit object (git2 tree → blob), never
//! from the working tree. Every step is recorded in the registry with its status, duration and
//! error; a failed step or gate registers nothing. The artifact is written (atomically,
//! content-addressed) before the version row, so a registered version always has its file.

pub mod champion;
pub mod curves;
pub mod data;
pub mod gate;
pub mod metrics;
pub mod run;
pub mod spec;
pub mod train;

pub use gate::{gate, gate_vs_production};
pub use run::{execute, Cancel, Outcome, RunEnv};
pub use train::{
    load_labelled, select, split, train_and_evaluate, Dataset, StagingSample, Timings, Trained,
};
