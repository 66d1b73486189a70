//! rcfops: a local GitOps MLOps agent for Random Cut Forest fraud models.
//!
//! A commit to the watched model repo is a pipeline run; a good model is registered as a
//! version pending approval; approval tags (or files) move it to staging, where it is tested,
//! and then to production. ARCHITECTURE.md has the code map and the invariants.
//!
//! Layout, in the order data flows:
//!
//! - [`agent`]: process lifecycle: lock, startup recovery, endpoints, the wake-up loop; `agent::watcher` turns file-system events into wake-ups.
//! - [`reconcile`]: the level-triggered pass: decide approvals, converge the stages, make sure the head has a run.
//! - [`pipeline`]: one run (`run`), training and evaluation (`train`), the metric gate (`gate`), `pipeline.toml` (`spec`), CSV (`data`), metrics.
//! - [`registry`]: the SQLite registry: runs, versions, decisions, stages, audit; each change and its audit event in one transaction.
//! - [`approvals`]: requests from tags and files, the approval rules (pure), the approval-file format, SSH signatures.
//! - [`targets`]: which version each stage serves, derived from stored facts (pure).
//! - [`domain`]: the flow's vocabulary as types (stages, actions, statuses, sources).
//! - [`notify`]: what is announced (pure), CloudEvents, Standard Webhooks signatures, retry policy; the per-sink dispatcher at the edge.
//! - [`stagetest`]: the staging tests against the live staging endpoint.
//! - [`auth`]: SigV4 request signing and verification (pure), the AWS credentials-file format.
//! - [`serve`]: the stage endpoints: accept loop (`server`), wire formats (`codec`), SageMaker errors, metrics.
//! - [`monitor`]: Model Monitor: capture files read back into drift windows judged against each version's baseline (pure `drift`, `stats`, `quality`, `format`), ground truth merged with captures, live quality.
//! - [`k8s`]: a stage's Kubernetes manifests (Deployment, Service, HPA, PDB, kustomization), rendered pure and byte-stable.
//! - [`envrepo`]: the GitOps environment repo: one level-triggered commit per change of a stage's rendered folder.
//! - [`model`]: the deployable model and its artifact format; `model::preprocess` travels inside it.
//! - [`artifacts`]: content-addressed, atomically written, digest-verified model files.
//! - [`repo`]: everything learnt from git (through git2), and the approval tags the CLI makes.
//! - [`config`]: `config.toml` into a typed `Config`, errors naming file, line and key; `config::notify` for the sinks and their secret files.
//! - [`dashboard`]: the read-only dashboard: server-rendered pages with inline SVG charts (pure `pages`, `svg`, `html`), `/api/…` JSON, live refresh by server-sent events.
//! - [`report`]: the status document and the monitor report built from the registry, and what a running agent publishes (`endpoints.json`, the lock); read by the CLI and the dashboard.
//! - [`cli`]: the `rcfops` commands, one file per command group; `StatusDoc` for `status`.
//! - [`stream`]: streaming scores of a time series (`rcfops stream`), outside the flow; `stream::alert` turns them into alerts (anomaly likelihood, out-of-range rule, refractory period).
//! - [`logging`]: human lines on stderr, JSON lines in the state folder.
//! - [`failpoint`]: named crash points for the crash tests.

pub mod agent;
pub mod approvals;
pub mod artifacts;
pub mod auth;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod domain;
pub mod envrepo;
pub mod failpoint;
pub mod k8s;
pub mod logging;
pub mod model;
pub mod monitor;
pub mod notify;
pub mod pipeline;
pub mod reconcile;
pub mod registry;
pub mod repo;
pub mod report;
pub mod serve;
pub mod stagetest;
pub mod stream;
pub mod targets;
