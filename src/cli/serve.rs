//! `rcfops serve`: one stage endpoint alone, as a container runs it (SageMaker's container
//! contract: the model under `/opt/ml/model`, port 8080, `/ping` and `/invocations`). The same
//! router, limits, metrics, SigV4 and TLS as the agent's endpoints; no registry, no repo.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Result};

use super::*;
use crate::model::Model;
use crate::serve::{Access, Deployed, Endpoint, Limits};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The model artifact, or a folder holding exactly one `*.rcfm` (SageMaker unpacks the
    /// model there).
    #[arg(long, default_value = "/opt/ml/model")]
    pub model: PathBuf,
    /// Refuse to start unless the artifact's SHA-256 is this (hex).
    #[arg(long)]
    pub sha256: Option<String>,
    /// The endpoint name `/endpoints/{name}/invocations` answers to.
    #[arg(long, default_value = "rcf-model-prod")]
    pub name: String,
    /// The stage it serves (the `stage` label of its metrics).
    #[arg(long, default_value = "production")]
    pub stage: Stage,
    /// The registry version it serves (the `x-rcfops-model-version` header).
    #[arg(long, default_value_t = 0)]
    pub model_version: i64,
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: std::net::SocketAddr,
    /// Serve `/metrics` on this address instead of `--listen`.
    #[arg(long)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Check SigV4 signatures against the keys of this file (`~/.aws/credentials` format,
    /// e.g. a mounted Kubernetes secret).
    #[arg(long)]
    pub credentials_file: Option<PathBuf>,
    /// The region clients sign for (with --credentials-file).
    #[arg(long)]
    pub region: Option<String>,
    #[arg(long, default_value = "sagemaker")]
    pub service: String,
    /// Answer unsigned requests on an address other machines can reach.
    #[arg(long)]
    pub allow_unauthenticated: bool,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key); re-read on change.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds a SIGTERM waits for the requests in flight.
    #[arg(long, default_value_t = 25)]
    pub shutdown_grace_seconds: u64,
}

/// The artifact file: `path` itself, or the one `*.rcfm` inside the folder `path`.
fn artifact_file(path: &Path) -> Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| anyhow!("cannot read the model folder {}: {e}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rcfm"))
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "no model artifact (*.rcfm) in {}: pass --model FILE",
            path.display()
        ),
        n => bail!(
            "{n} model artifacts (*.rcfm) in {}: pass --model FILE to choose one",
            path.display()
        ),
    }
}

/// Reads, verifies and loads the model; every error is one line saying what is wrong.
pub fn load_model(path: &Path, sha256: Option<&str>) -> Result<Model> {
    let file = artifact_file(path)?;
    let bytes = std::fs::read(&file)
        .map_err(|e| anyhow!("cannot read the model {}: {e}", file.display()))?;
    if let Some(want) = sha256 {
        let got = crate::artifacts::sha256_hex(&bytes);
        if !want.eq_ignore_ascii_case(&got) {
            bail!(
                "the model {} has sha256 {got}, not the expected {want}: refusing to serve it",
                file.display()
            );
        }
    }
    Model::from_bytes(&bytes).map_err(|e| {
        anyhow!(
            "the model {} is damaged: {e}; refusing to serve it",
            file.display()
        )
    })
}

pub(super) fn cmd_serve(a: ServeArgs, verbose: bool) -> Result<i32> {
    crate::logging::init(None, verbose).map_err(|e| anyhow!("cannot start logging: {e}"))?;
    let model = load_model(&a.model, a.sha256.as_deref())?;
    let mut warnings = Vec::new();
    let sigv4 = match &a.credentials_file {
        None => {
            if a.region.is_some() {
                bail!(
                    "--region applies with --credentials-file (SigV4); add it or remove --region"
                );
            }
            crate::config::check_exposure(a.listen, a.allow_unauthenticated).map_err(|m| {
                anyhow!(
                    "{m}: pass --credentials-file FILE --region REGION (SigV4), or \
                     --allow-unauthenticated when something in front authenticates"
                )
            })?;
            None
        }
        Some(file) => {
            let Some(region) = &a.region else {
                bail!("--credentials-file needs --region (the region clients sign for, e.g. eu-west-1)");
            };
            let creds = crate::config::read_credentials(file, a.stage, &mut warnings)
                .map_err(|e| anyhow!(e))?;
            Some(crate::auth::Verifier::new(
                Arc::new(creds),
                crate::auth::Scope {
                    region: region.clone(),
                    service: a.service.clone(),
                },
            ))
        }
    };
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(c), Some(k)) => Some(
            crate::serve::tls::server_config(&crate::serve::tls::TlsFiles::new(c, k))
                .map_err(|e| anyhow!(e))?,
        ),
        _ => None,
    };
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let ep = Endpoint::new(a.stage, a.name.clone());
    ep.swap(Some(Deployed {
        version: a.model_version,
        model,
    }));
    let limits = Limits {
        shutdown_grace: std::time::Duration::from_secs(a.shutdown_grace_seconds),
        ..Limits::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .map_err(|e| anyhow!("cannot listen on {}: {e}", a.listen))?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let mut tasks = Vec::new();
        if let Some(addr) = a.metrics_listen {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow!("cannot listen on {addr} for /metrics: {e}"))?;
            let app = crate::serve::metrics_router(ep.clone());
            let stop = stopped(stop_rx.clone());
            let limits = limits.clone();
            tasks.push(tokio::spawn(async move {
                crate::serve::serve_app(l, app, &limits, None, stop).await
            }));
        }
        let app = crate::serve::router_for(
            ep.clone(),
            limits.clone(),
            Access {
                sigv4,
                metrics: a.metrics_listen.is_none(),
            },
        );
        let scheme = if tls.is_some() { "https" } else { "http" };
        let addr = listener.local_addr()?;
        let stop = stopped(stop_rx.clone());
        let limits2 = limits.clone();
        tasks.push(tokio::spawn(async move {
            crate::serve::serve_app(listener, app, &limits2, tls, stop).await
        }));
        tracing::info!(
            "serving {} (version {}) on {scheme}://{addr}",
            a.name,
            a.model_version
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        tracing::info!(
            "stopping: no new connections; requests in flight get up to {} s",
            a.shutdown_grace_seconds
        );
        let _ = stop_tx.send(true);
        for t in tasks {
            let _ = t.await;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(0)
}
