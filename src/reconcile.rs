//! The reconciler: derives what to do from observed state and does it.
//!
//! Level-triggered, in the manner of a Flux reconciler: every [`Reconciler::tick`] reads the
//! branch head, the approval tags, the approvals folder and the registry, and converges:
//!
//! 1. decide every approval not decided yet ([`crate::approvals`]);
//! 2. make each stage serve the version the registry derives for it, and run the staging tests
//!    for a staging version that has no result yet;
//! 3. make sure the head commit has a run (newest commit wins: an in-flight run of an older
//!    commit is cancelled, and commits in between are recorded as skipped).
//!
//! File-system events and timers only call `tick`; what it does never depends on which event
//! woke it, so a missed, duplicated or reordered event, or a restart, changes nothing.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::artifacts::ArtifactStore;
use crate::config::Config;
use crate::domain::{
    Action, ApprovalSource, ApprovalStatus, Outcome as Decided, Stage, StagingResult,
};
use crate::model::Model;
use crate::pipeline::{self, Cancel, Outcome, RunEnv, StagingSample};
use crate::registry::Registry;
use crate::repo::ModelRepo;
use crate::serve::{Deployed, Endpoint};
use crate::stagetest;

/// A pipeline run in progress on a worker thread.
struct InFlight {
    commit: String,
    cancel: Arc<Cancel>,
    done: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Outcome>,
}

/// The two stage endpoints the agent serves, with the base URLs they actually listen on
/// (ports may be ephemeral in tests).
pub struct StageEndpoints {
    pub staging: Arc<Endpoint>,
    pub production: Arc<Endpoint>,
    pub staging_url: String,
}

/// What the reconciler works on: the configuration, the registry and artifact store, and the
/// endpoints it deploys to.
pub struct Reconciler {
    pub cfg: Config,
    pub registry: Arc<Registry>,
    pub store: ArtifactStore,
    pub staging: Arc<Endpoint>,
    pub production: Arc<Endpoint>,
    pub staging_url: String,
    in_flight: Option<InFlight>,
    wake: mpsc::UnboundedSender<()>,
    last_problem: Option<String>,
    /// Accepted tag decisions already reported as deleted or moved (logged once each).
    reported_vanished: std::collections::HashSet<ApprovalSource>,
    /// Deployments refused (stage, version), audited once until they succeed.
    refused_deploys: std::collections::HashSet<(Stage, i64)>,
    /// Approval files read in earlier passes (re-read only when changed).
    approval_files: crate::approvals::FileCache,
}

impl Reconciler {
    pub fn new(
        cfg: Config,
        registry: Arc<Registry>,
        store: ArtifactStore,
        endpoints: StageEndpoints,
        wake: mpsc::UnboundedSender<()>,
    ) -> Reconciler {
        let StageEndpoints {
            staging,
            production,
            staging_url,
        } = endpoints;
        Reconciler {
            cfg,
            registry,
            store,
            staging,
            production,
            staging_url,
            in_flight: None,
            wake,
            last_problem: None,
            reported_vanished: Default::default(),
            refused_deploys: Default::default(),
            approval_files: Default::default(),
        }
    }

    fn problem(&mut self, msg: String) {
        if self.last_problem.as_deref() != Some(&msg) {
            tracing::error!("{msg}");
            self.last_problem = Some(msg);
        }
    }

    /// One full reconciliation pass.
    pub async fn tick(&mut self) {
        let repo = match ModelRepo::open(&self.cfg.repo.path) {
            Ok(r) => r,
            Err(e) => return self.problem(e.to_string()),
        };
        if let Err(e) =
            crate::approvals::process(&repo, &self.cfg, &self.registry, &mut self.approval_files)
        {
            self.problem(format!("approvals: {e}"));
        }
        self.report_vanished_tags(&repo);
        // Before approvals are judged next pass, so a promote sees the shadow records.
        self.record_shadow();
        self.converge_stages().await;
        self.refresh_names();
        if let Err(e) = self.converge_runs(&repo) {
            self.problem(format!("runs: {e}"));
        }
    }

    /// Stores the shadow-traffic statistics gathered in memory (level-triggered: the whole
    /// current state of each staging version, replaced in place).
    fn record_shadow(&mut self) {
        let Some(shadow) = self.production.shadow() else {
            return;
        };
        for (version, stats) in shadow.stats() {
            let json = serde_json::to_value(&stats).expect("numbers serialise");
            if let Err(e) = self.registry.record_shadow(version, &json) {
                return self.problem(e.to_string());
            }
        }
    }

    /// Each endpoint answers to the name of the version it serves (see
    /// [`Registry::endpoint_group`]); the head commit never renames a live endpoint.
    fn refresh_names(&mut self) {
        for ep in [self.staging.clone(), self.production.clone()] {
            match self.registry.endpoint_group(ep.stage) {
                Ok(group) => {
                    let name = ep.stage.endpoint_name(&group);
                    let old = ep.name();
                    if old != name {
                        if ep.version().is_some() {
                            tracing::info!(
                                stage = %ep.stage,
                                "the {} endpoint is now named {name} (was {old}), after the version it serves",
                                ep.stage
                            );
                        }
                        ep.set_name(name);
                    }
                }
                Err(e) => self.problem(e.to_string()),
            }
        }
    }

    async fn converge_stages(&mut self) {
        // Staging may move several times in one pass (a failed test rolls it back).
        for _ in 0..16 {
            let target = match self.registry.staging_target() {
                Ok(t) => t,
                Err(e) => return self.problem(e.to_string()),
            };
            let ep = self.staging.clone();
            if !self.deploy(Stage::Staging, &ep, target) {
                break;
            }
            // The staging tests call the endpoint by the name of the version it now serves.
            self.refresh_names();
            let Some(n) = target else { break };
            let Ok(Some(v)) = self.registry.version(n) else {
                break;
            };
            if v.staging_result.is_some() {
                break;
            }
            self.staging_tests(n).await;
        }
        let target = match self.registry.production_target() {
            Ok(t) => t,
            Err(e) => return self.problem(e.to_string()),
        };
        let ep = self.production.clone();
        self.deploy(Stage::Production, &ep, target);
    }

    /// Makes `ep` serve `target`; returns false if it could not.
    fn deploy(&mut self, stage: Stage, ep: &Endpoint, target: Option<i64>) -> bool {
        // The last recorded deployment is what the stage served when last observed (also
        // across restarts); the endpoint slot is what it serves now.
        let last = match self.registry.deployed(stage) {
            Ok(l) => l,
            Err(e) => {
                self.problem(e.to_string());
                return false;
            }
        };
        if let crate::config::DeployTarget::Kubernetes { .. } = self.cfg.endpoint(stage).target {
            return match self.render_to_env_repo(stage, target) {
                Ok(commit) => {
                    let via = format!("environment repo commit {commit}");
                    self.record_if_changed(stage, last, target, Some(&via))
                }
                Err(e) => {
                    self.problem(format!("{stage} on Kubernetes: {e}"));
                    false
                }
            };
        }
        let serving = ep.version();
        if serving != target {
            let deployed = match target {
                None => None,
                Some(n) => match self.load(n) {
                    Ok(m) => {
                        self.refused_deploys.remove(&(stage, n));
                        Some(Deployed {
                            version: n,
                            model: m,
                        })
                    }
                    Err(e) => {
                        let msg = format!("deployment of v{n} to {stage} refused: {e}");
                        if self.refused_deploys.insert((stage, n)) {
                            if let Err(e) = self.registry.record_audit(
                                "agent",
                                "deploy",
                                &format!("{stage}.deploy-refused"),
                                Some(n),
                                &msg,
                            ) {
                                // Audited on a later pass instead.
                                self.refused_deploys.remove(&(stage, n));
                                tracing::error!("cannot audit the refused deployment: {e}");
                            }
                        }
                        self.problem(msg);
                        return false;
                    }
                },
            };
            if stage == Stage::Production && target.is_some() {
                crate::failpoint::hit("promote.before-deploy");
            }
            ep.swap(deployed);
            crate::failpoint::hit("deploy.after-swap");
            if serving.is_none() && last == target {
                if let Some(n) = target {
                    tracing::info!(
                        stage = %stage,
                        version = n,
                        "serving v{n} in {stage} again, as before the restart"
                    );
                }
            }
        }
        self.record_if_changed(stage, last, target, None)
    }

    /// Records a change of what `stage` serves (the deployment history and its audit event).
    /// `via`: where the change went out (a Kubernetes stage's environment-repo commit).
    fn record_if_changed(
        &mut self,
        stage: Stage,
        last: Option<i64>,
        target: Option<i64>,
        via: Option<&str>,
    ) -> bool {
        if last != target {
            let mut reason = match (last, target) {
                (Some(p), Some(n)) if n < p => format!("rolled back from v{p} to v{n}"),
                (Some(p), Some(n)) => format!("v{p} replaced by v{n}"),
                (None, Some(n)) => format!("v{n} deployed"),
                (Some(p), None) => format!("v{p} withdrawn; no version left for {stage}"),
                (None, None) => unreachable!("last != target"),
            };
            if let Some(via) = via {
                reason.push_str(&format!(" ({via})"));
            }
            tracing::info!(stage = %stage, version = target, "{stage}: {reason}");
            if let Err(e) = self.registry.record_deployment(stage, target, &reason) {
                self.problem(e.to_string());
            }
        }
        true
    }

    /// Level-triggered: renders what `stage` should run into its folder of the environment
    /// repo and commits when that changes the folder (a withdrawn stage's folder is removed).
    /// Returns the commit that renders it.
    fn render_to_env_repo(&mut self, stage: Stage, target: Option<i64>) -> Result<String, String> {
        let k = self.cfg.kubernetes.clone().ok_or("no [kubernetes] table")?;
        let group = self
            .registry
            .endpoint_group(stage)
            .map_err(|e| e.to_string())?;
        let env =
            crate::envrepo::EnvRepo::init(&k.env_repo, &k.env_branch).map_err(|e| e.to_string())?;
        let dir = format!("{group}/{stage}");
        let Some(n) = target else {
            return env
                .converge(
                    &dir,
                    &[],
                    &format!("{group} {stage}: withdrawn, no version to serve"),
                )
                .map(|c| c.commit().to_string())
                .map_err(|e| e.to_string());
        };
        let v = self
            .registry
            .version(n)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("v{n} is not in the registry"))?;
        // The artifact, content-addressed, where pods fetch it.
        let bytes = self.store.get(&v.artifact_sha256)?;
        let store = ArtifactStore::open(&k.artifact_store).map_err(|e| {
            format!(
                "cannot write the artifact store {}: {e}",
                k.artifact_store.display()
            )
        })?;
        store.put(&bytes).map_err(|e| {
            format!(
                "cannot write the artifact store {}: {e}",
                k.artifact_store.display()
            )
        })?;
        let action = match stage {
            Stage::Staging => crate::domain::Action::Approve,
            Stage::Production => crate::domain::Action::Promote,
        };
        let approvals = self.registry.approvals().map_err(|e| e.to_string())?;
        let approval = approvals.iter().rev().find(|a| {
            a.version == Some(n)
                && a.action == Some(action)
                && a.outcome == crate::domain::Outcome::Accepted
        });
        let approved_by = approval
            .map(|a| format!("{} via {}", a.approver, a.method))
            .unwrap_or_else(|| "a rollback".to_string());
        let auth = self
            .cfg
            .endpoint(stage)
            .auth
            .verifier()
            .map(|ver| crate::k8s::PodAuth {
                secret: k
                    .credentials_secret
                    .clone()
                    .unwrap_or_else(|| format!("{group}-sigv4")),
                region: ver.scope().region.clone(),
                service: ver.scope().service.clone(),
            });
        let w = crate::k8s::Workload {
            project: group.clone(),
            stage,
            version: n,
            sha256: v.artifact_sha256.clone(),
            approved_by: approved_by.clone(),
            image: k.image.clone(),
            namespace: k.namespace.clone(),
            artifact_url: format!("{}/sha256-{}.rcfm", k.artifact_base_url, v.artifact_sha256),
            min_replicas: k.min_replicas,
            max_replicas: k.max_replicas,
            cpu_request: k.cpu_request.clone(),
            memory_request: k.memory_request.clone(),
            cpu_limit: k.cpu_limit.clone(),
            memory_limit: k.memory_limit.clone(),
            auth,
        };
        let files = crate::k8s::render_files(&w);
        let event = approval
            .map(|a| format!("decision {} ({})", a.id, a.source))
            .unwrap_or_else(|| "rollback".into());
        let message = format!(
            "{group} {stage}: v{n}\n\nartifact sha256 {}\napproved by {approved_by}\naudit: {stage} {event}\ncommit {}",
            v.artifact_sha256, v.commit
        );
        crate::failpoint::hit("envrepo.before-commit");
        env.converge(&dir, &files, &message)
            .map(|c| c.commit().to_string())
            .map_err(|e| e.to_string())
    }

    fn load(&self, n: i64) -> Result<Model, String> {
        let v = self
            .registry
            .version(n)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("v{n} is not in the registry"))?;
        let bytes = self.store.get(&v.artifact_sha256)?;
        Model::from_bytes(&bytes)
    }

    async fn staging_tests(&mut self, n: i64) {
        let sample = match self.registry.staging_test(n) {
            Ok(s) => s,
            // Not a test failure: the registry could not be read; the next pass tries again.
            Err(e) => return self.problem(e.to_string()),
        };
        let sample: Option<StagingSample> = sample.and_then(|v| serde_json::from_value(v).ok());
        let result = match sample {
            None => Err("the version has no staging test records".to_string()),
            Some(sample) => {
                let name = self.staging.name();
                let signer = self.cfg.staging.auth.verifier().map(|v| v.signer());
                let trust = stagetest::trust_for(&self.cfg.staging);
                let (base_url, wait_ready) = match &self.cfg.staging.target {
                    crate::config::DeployTarget::Kubernetes { url } => (
                        url.clone(),
                        Some(std::time::Duration::from_millis(
                            self.cfg.agent.rollout_timeout_ms,
                        )),
                    ),
                    crate::config::DeployTarget::Local => (self.staging_url.clone(), None),
                };
                let target = stagetest::StagingTarget {
                    base_url: &base_url,
                    wait_ready,
                    endpoint_name: &name,
                    version: n,
                    latency_budget_ms: self.cfg.staging.latency_budget_ms,
                    signer: signer.as_ref(),
                    trust: &trust,
                };
                stagetest::run(&target, &sample).await
            }
        };
        let (result, detail) = match result {
            Ok(d) => {
                tracing::info!(version = n, "staging tests passed for v{n}: {d}");
                (StagingResult::Passed, d)
            }
            Err(d) => {
                tracing::error!(
                    version = n,
                    "staging tests failed for v{n}: {d}; staging rolls back"
                );
                (StagingResult::Failed, d)
            }
        };
        crate::failpoint::hit("staging.before-record");
        if let Err(e) = self.registry.record_staging_result(n, result, &detail) {
            self.problem(e.to_string());
        }
    }

    /// An accepted approval stays in force when its tag is later deleted or moved: git tags
    /// are not an authority to revoke (use `reject/vN`). Say so once per tag.
    fn report_vanished_tags(&mut self, repo: &ModelRepo) {
        let Ok(tags) = repo.approval_tags() else {
            return;
        };
        let present: std::collections::HashSet<ApprovalSource> = tags
            .iter()
            .map(|t| ApprovalSource::Tag {
                name: t.name.clone(),
                object: t.object.clone(),
            })
            .collect();
        let Ok(approvals) = self.registry.approvals() else {
            return;
        };
        let Ok(versions) = self.registry.versions() else {
            return;
        };
        // Once a version is rejected, nothing its earlier approvals granted is still in force.
        let rejected: std::collections::HashSet<i64> = versions
            .iter()
            .filter(|v| v.approval == ApprovalStatus::Rejected)
            .map(|v| v.version)
            .collect();
        for a in approvals {
            let Some(action) = a.action else { continue };
            if !a.source.is_tag()
                || a.outcome != Decided::Accepted
                || action == Action::Reject
                || a.version.is_some_and(|n| rejected.contains(&n))
                || present.contains(&a.source)
            {
                continue;
            }
            if self.reported_vanished.insert(a.source.clone()) {
                let name = a.source.name();
                tracing::warn!(
                    version = a.version,
                    "tag {name} was deleted or moved after it was honoured; the {action} of v{} stands (revoke with reject/v{})",
                    a.version.unwrap_or(0),
                    a.version.unwrap_or(0)
                );
            }
        }
    }

    /// Notices history rewrites of the watched branch and says what happens.
    fn note_head_move(&mut self, repo: &ModelRepo, head: &str) -> Result<(), String> {
        let last = self.registry.meta("last_head").map_err(|e| e.to_string())?;
        if last.as_deref() == Some(head) {
            return Ok(());
        }
        if let Some(prev) = &last {
            let exists = repo.commit_info(prev).is_ok();
            if !exists || !repo.is_ancestor(prev, head).unwrap_or(false) {
                tracing::warn!(
                    from = &prev[..12],
                    to = &head[..12],
                    "branch {} was rewritten (force-push or reset): the head moved from {} to {}, which does not contain it; versions built from dropped commits stay registered with their approvals and stages, and only the new head is run",
                    self.cfg.repo.branch,
                    &prev[..12],
                    &head[..12]
                );
            }
        }
        self.registry
            .set_meta("last_head", head)
            .map_err(|e| e.to_string())
    }

    fn converge_runs(&mut self, repo: &ModelRepo) -> Result<(), String> {
        if let Some(f) = &self.in_flight {
            if f.done.load(std::sync::atomic::Ordering::SeqCst) {
                let f = self.in_flight.take().expect("present");
                let _ = f.thread.join();
            }
        }
        let branch = &self.cfg.repo.branch;
        let Some(head) = repo.head(branch).map_err(|e| e.to_string())? else {
            self.problem(format!(
                "branch {branch:?} does not exist in {}; nothing to run (deployed versions keep serving)",
                repo.path.display()
            ));
            return Ok(());
        };
        self.note_head_move(repo, &head)?;
        let reg = &self.registry;
        // Commits between the last settled one and the head, newest first.
        let mut unsettled = Vec::new();
        let has_history = !reg.runs(1).map_err(|e| e.to_string())?.is_empty();
        if has_history {
            for c in repo
                .first_parent_range(&head, None, 500)
                .map_err(|e| e.to_string())?
            {
                if reg.commit_settled(&c).map_err(|e| e.to_string())? {
                    break;
                }
                unsettled.push(c);
            }
        }
        let target = if self.cfg.agent.run_every_commit {
            unsettled.last().cloned().unwrap_or_else(|| head.clone())
        } else {
            if let Some(f) = &self.in_flight {
                if f.commit != head && !f.cancel.is_cancelled() {
                    f.cancel
                        .cancel(format!("superseded by newer commit {}", &head[..12]));
                }
            }
            for c in &unsettled {
                if self.in_flight.as_ref().is_some_and(|f| &f.commit == c) {
                    continue;
                }
                reg.record_skipped(c, &format!("superseded by newer commit {}", &head[..12]))
                    .map_err(|e| e.to_string())?;
                tracing::info!(
                    commit = &c[..12],
                    "commit skipped: superseded by {}",
                    &head[..12]
                );
            }
            head
        };
        if self.in_flight.is_some() || !reg.head_needs_run(&target).map_err(|e| e.to_string())? {
            return Ok(());
        }
        self.start_run(target, "watch")
    }

    fn start_run(&mut self, commit: String, trigger: &str) -> Result<(), String> {
        let run = self
            .registry
            .begin_run(&commit, trigger)
            .map_err(|e| e.to_string())?;
        let cancel = Arc::new(Cancel::default());
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let registry = self.registry.clone();
        let store = self.store.clone();
        let repo_path: PathBuf = self.cfg.repo.path.clone();
        let sample = self.cfg.agent.staging_test_records;
        let wake = self.wake.clone();
        let (c2, d2, commit2) = (cancel.clone(), done.clone(), commit.clone());
        let span = tracing::Span::current();
        let thread = std::thread::Builder::new()
            .name(format!("run-{run}"))
            .spawn(move || {
                let _g = span.enter();
                let env = RunEnv {
                    registry: &registry,
                    store: &store,
                    repo_path: &repo_path,
                    staging_sample: sample,
                };
                let out = pipeline::execute(&env, run, &commit2, &c2);
                d2.store(true, std::sync::atomic::Ordering::SeqCst);
                let _ = wake.send(());
                out
            })
            .map_err(|e| format!("cannot start a run thread: {e}"))?;
        self.in_flight = Some(InFlight {
            commit,
            cancel,
            done,
            thread,
        });
        Ok(())
    }

    /// Whether a run is in progress.
    pub fn busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Stops an in-flight run at its next step boundary and waits for it; the registry marks it
    /// interrupted so the next start runs it again.
    pub fn shutdown(&mut self) {
        if let Some(f) = self.in_flight.take() {
            f.cancel.interrupt();
            let _ = f.thread.join();
            if let Err(e) = self.registry.mark_interrupted_runs() {
                // The next start marks it instead (startup recovery does the same).
                tracing::error!("cannot mark the interrupted run: {e}");
            }
        }
    }
}
