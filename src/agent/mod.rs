//! The agent process: wires the registry, the endpoints, the watcher and the reconciler
//! together, and shuts them down gracefully.
//!
//! Owns the process lifecycle: one agent per state folder (an exclusive lock file), startup
//! recovery (runs interrupted by a crash are marked and redone, half-written artifacts removed),
//! binding both endpoints before anything else, the wake-up loop (file events, debounced, plus
//! a periodic resync), and an orderly stop on Ctrl-C / SIGTERM.

pub mod monitoring;
pub mod watcher;

use std::fs::File;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::artifacts::ArtifactStore;
use crate::config::Config;
use crate::domain::Stage;
use crate::pipeline::spec::DEFAULT_PROJECT;
use crate::reconcile::Reconciler;
use crate::registry::Registry;
use crate::repo::ModelRepo;
use crate::serve::Endpoint;

pub use crate::report::published::{
    agent_running, endpoint_urls, endpoints_file, lock_file, Endpoints,
};

/// Why the agent could not start (or stop cleanly). Each keeps its cause.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("another rcfops agent is already running on {}; stop it first (one agent per state folder)", .0.display())]
    AlreadyRunning(PathBuf),
    #[error(transparent)]
    EnvRepo(#[from] crate::envrepo::EnvRepoError),
    #[error("cannot serve TLS on the {stage} endpoint: {reason}; fix [endpoints.{stage}] tls_cert / tls_key")]
    Tls { stage: Stage, reason: String },
    #[error("cannot listen on {addr} for the {stage} endpoint; is another program using it? Set [endpoints.{stage}] listen in the config")]
    Bind {
        addr: std::net::SocketAddr,
        stage: Stage,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error("notifications: {0}")]
    Notify(String),
}

fn io(what: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> AgentError {
    let path = path.to_path_buf();
    move |source| AgentError::Io { what, path, source }
}

/// Creates the model repo from the template unless it exists. Returns true if created.
pub fn init_repo(cfg: &Config) -> Result<bool, AgentError> {
    init_env_repo(cfg)?;
    if cfg.repo.path.join(".git").exists() {
        return Ok(false);
    }
    ModelRepo::init_from_template(
        &cfg.repo.template,
        crate::pipeline::spec::SPEC_FILE,
        &cfg.repo.path,
        &cfg.repo.branch,
    )?;
    Ok(true)
}

/// With a Kubernetes stage: creates the environment repo (an empty first commit on
/// `env_branch`) when it does not exist.
fn init_env_repo(cfg: &Config) -> Result<(), AgentError> {
    if let Some(k) = &cfg.kubernetes {
        if git2::Repository::open(&k.env_repo).is_err() {
            crate::envrepo::EnvRepo::init(&k.env_repo, &k.env_branch)?;
            tracing::info!(
                "created the environment repo {} (branch {})",
                k.env_repo.display(),
                k.env_branch
            );
        }
    }
    Ok(())
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    std::fs::create_dir_all(&cfg.state_dir)
        .map_err(io("cannot create the state folder", &cfg.state_dir))?;
    let lock_path = lock_file(&cfg);
    let lock = File::create(&lock_path).map_err(io("cannot create the lock file", &lock_path))?;
    if lock.try_lock().is_err() {
        return Err(AgentError::AlreadyRunning(cfg.state_dir.clone()));
    }
    let repo = ModelRepo::open(&cfg.repo.path)?;
    let registry = Arc::new(Registry::open(&cfg.registry_path())?);
    let store = ArtifactStore::open(&cfg.artifacts_dir()).map_err(io(
        "cannot create the artifact folder",
        &cfg.artifacts_dir(),
    ))?;
    store.clean_temporaries();
    for r in registry.mark_interrupted_runs()? {
        tracing::warn!(
            run = r.run,
            commit = &r.commit[..12],
            "run {} was interrupted by a stop or crash; it will run again",
            r.run
        );
    }

    let tls_for = |stage: Stage| -> Result<Option<Arc<rustls::ServerConfig>>, AgentError> {
        cfg.endpoint(stage)
            .tls
            .as_ref()
            .map(|t| {
                crate::serve::tls::server_config(&crate::serve::tls::TlsFiles::new(&t.cert, &t.key))
                    .map_err(|reason| AgentError::Tls { stage, reason })
            })
            .transpose()
    };
    let staging_tls = tls_for(Stage::Staging)?;
    let production_tls = tls_for(Stage::Production)?;
    let bind = |addr: std::net::SocketAddr, stage: Stage, tls: bool| async move {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| AgentError::Bind {
                addr,
                stage,
                source,
            })?;
        let url = l
            .local_addr()
            .map(|a| format!("{}://{a}", if tls { "https" } else { "http" }))
            .map_err(|source| AgentError::Bind {
                addr,
                stage,
                source,
            })?;
        Ok::<_, AgentError>((l, url))
    };
    let (staging_l, staging_url) =
        bind(cfg.staging.listen, Stage::Staging, staging_tls.is_some()).await?;
    let (production_l, production_url) = bind(
        cfg.production.listen,
        Stage::Production,
        production_tls.is_some(),
    )
    .await?;
    // The dashboard is a window on the flow, not part of it: when its address is taken the
    // agent says so and runs on without it.
    let dashboard_l = match cfg.dashboard {
        None => None,
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::error!(
                    "cannot serve the dashboard on {addr}: {e}; the agent runs on without it (set [dashboard] listen to a free address, or \"off\")"
                );
                None
            }
        },
    };
    let dashboard_url = dashboard_l
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| format!("http://{a}"));
    let endpoints = Endpoints {
        pid: std::process::id(),
        staging: staging_url.clone(),
        production: production_url.clone(),
        dashboard: dashboard_url.clone(),
    };
    let endpoints_path = endpoints_file(&cfg);
    let text = serde_json::to_vec_pretty(&endpoints).expect("plain strings and numbers");
    std::fs::write(&endpoints_path, text).map_err(io("cannot write", &endpoints_path))?;

    let staging = Endpoint::new(
        Stage::Staging,
        Stage::Staging.endpoint_name(DEFAULT_PROJECT),
    );
    let production = Endpoint::new(
        Stage::Production,
        Stage::Production.endpoint_name(DEFAULT_PROJECT),
    );
    if cfg.staging.shadow_percent > 0.0 {
        let shadow =
            crate::serve::shadow::Shadow::start(staging.clone(), cfg.staging.shadow_percent);
        // Counts continue from what the last run of the agent stored.
        for (version, stats) in registry.shadows()? {
            if let Ok(stats) = serde_json::from_value(stats) {
                shadow.resume(version, &stats);
            }
        }
        production.set_shadow(shadow);
        tracing::info!(
            "production mirrors {}% of its requests to the staging model (shadow traffic)",
            cfg.staging.shadow_percent
        );
    }
    let mut captures = Vec::new();
    if cfg.monitoring.capture {
        for ep in [&staging, &production] {
            let settings = crate::serve::capture::CaptureSettings {
                root: cfg.capture_dir(),
                sampling_percent: cfg.monitoring.sampling_percent(ep.stage),
                queue: cfg.monitoring.queue,
                max_age: Duration::from_secs(cfg.monitoring.retention_hours * 3600),
                max_bytes: cfg.monitoring.retention_mb << 20,
            };
            tracing::info!(
                "{} captures {}% of its requests to {}",
                ep.stage,
                settings.sampling_percent,
                settings.root.display()
            );
            captures.push(crate::serve::capture::Capture::start(ep, settings));
        }
    }
    let monitor = cfg
        .monitoring
        .capture
        .then(|| monitoring::start(&cfg, registry.clone(), captures));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut servers = Vec::new();
    for (listener, ep, ecfg, tls) in [
        (staging_l, staging.clone(), &cfg.staging, staging_tls),
        (
            production_l,
            production.clone(),
            &cfg.production,
            production_tls,
        ),
    ] {
        let limits = crate::serve::Limits::default();
        let access = crate::serve::Access {
            sigv4: ecfg.auth.verifier().cloned(),
            metrics: ecfg.metrics_listen.is_none(),
        };
        let app = crate::serve::router_for(ep.clone(), limits.clone(), access);
        let stop = stopped(stop_rx.clone());
        servers.push(tokio::spawn(async move {
            crate::serve::serve_app(listener, app, &limits, tls, stop).await
        }));
        if let Some(addr) = ecfg.metrics_listen {
            let (l, url) = bind(addr, ep.stage, false).await?;
            tracing::info!("{} metrics on {url}/metrics", ep.stage);
            let limits = crate::serve::Limits::default();
            let app = crate::serve::metrics_router(ep.clone());
            let stop = stopped(stop_rx.clone());
            servers.push(tokio::spawn(async move {
                crate::serve::serve_app(l, app, &limits, None, stop).await
            }));
        }
        tracing::info!("{} endpoint auth: {}", ep.stage, ecfg.auth.describe());
    }
    if let (Some(l), Some(url)) = (dashboard_l, &dashboard_url) {
        let d = crate::dashboard::Dashboard::new(
            cfg.clone(),
            registry.clone(),
            vec![staging.clone(), production.clone()],
            stop_rx.clone(),
        );
        let stop = stopped(stop_rx.clone());
        servers.push(tokio::spawn(async move {
            crate::dashboard::serve(l, d, stop).await
        }));
        tracing::info!("dashboard on {url}");
    }
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!("staging endpoint on {staging_url}, production endpoint on {production_url}");
    for w in &cfg.notify.warnings {
        tracing::warn!("{w}");
    }
    let notifiers = crate::notify::dispatcher::start(
        registry.clone(),
        cfg.notify.sinks.clone(),
        stop_rx.clone(),
    )
    .map_err(AgentError::Notify)?;

    let (wake_tx, mut wake_rx) = mpsc::unbounded_channel();
    let _watch = match watcher::start(&repo.git_dir(), &cfg.approvals.dir, wake_tx.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("cannot watch the repo ({e}); relying on the periodic resync");
            None
        }
    };
    drop(repo);
    tracing::info!(
        repo = %cfg.repo.path.display(),
        branch = %cfg.repo.branch,
        "agent watching {} (branch {})",
        cfg.repo.path.display(),
        cfg.repo.branch
    );

    if let Some(notice) = cfg.identity_notice() {
        tracing::warn!("{notice}");
    }

    let debounce = Duration::from_millis(cfg.agent.debounce_ms);
    let mut resync = tokio::time::interval(Duration::from_millis(cfg.agent.resync_ms));
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let endpoints = crate::reconcile::StageEndpoints {
        staging,
        production,
        staging_url,
    };
    let mut rec = Reconciler::new(cfg, registry, store, endpoints, wake_tx);
    let shutdown = tokio::spawn(shutdown);
    tokio::pin!(shutdown);
    loop {
        rec.tick().await;
        tokio::select! {
            _ = &mut shutdown => break,
            _ = resync.tick() => {}
            Some(()) = wake_rx.recv() => {
                tokio::time::sleep(debounce).await;
                while wake_rx.try_recv().is_ok() {}
            }
        }
    }
    tracing::info!("shutting down: finishing requests in flight");
    tokio::task::block_in_place(|| rec.shutdown());
    let _ = stop_tx.send(true);
    for s in servers {
        let _ = s.await;
    }
    for n in notifiers {
        let _ = n.await;
    }
    if let Some(m) = monitor {
        tokio::task::block_in_place(|| m.stop());
    }
    let _ = std::fs::remove_file(endpoints_file(&rec.cfg));
    tracing::info!("agent stopped");
    drop(lock);
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
