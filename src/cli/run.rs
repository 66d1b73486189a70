//! `rcfops init`, `rcfops up` and `rcfops run`: the model repo, the agent, one run in the foreground.

use std::sync::Arc;

use anyhow::{anyhow, Result};

use super::*;

pub(super) fn cmd_init(cfg: &Config, verbose: bool) -> Result<i32> {
    crate::logging::init(None, verbose)?;
    if agent::init_repo(cfg)? {
        println!(
            "created {} from {} (branch {})",
            cfg.repo.path.display(),
            cfg.repo.template.display(),
            cfg.repo.branch
        );
    } else {
        println!("{} already exists; nothing to do", cfg.repo.path.display());
    }
    Ok(0)
}

pub(super) fn cmd_up(cfg: Config, verbose: bool) -> Result<i32> {
    if !agent::agent_running(&cfg) {
        crate::logging::rotate_if_large(&cfg.log_path(), crate::logging::ROTATE_BYTES)?;
    }
    crate::logging::init(Some(&cfg.log_path()), verbose)?;
    if agent::init_repo(&cfg)? {
        tracing::info!(
            "created the model repo {} from {}",
            cfg.repo.path.display(),
            cfg.repo.template.display()
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(agent::run(cfg, agent::shutdown_signal()))?;
    Ok(0)
}

pub(super) fn cmd_run(cfg: &Config, commit: Option<String>, verbose: bool) -> Result<i32> {
    crate::logging::init(Some(&cfg.log_path()), verbose)?;
    let repo = ModelRepo::open(&cfg.repo.path)?;
    let commit = match commit {
        Some(c) => repo.resolve(&c)?,
        None => repo
            .head(&cfg.repo.branch)?
            .ok_or_else(|| anyhow!("branch {} does not exist", cfg.repo.branch))?,
    };
    let registry = Registry::open(&cfg.registry_path())?;
    let store = ArtifactStore::open(&cfg.artifacts_dir())?;
    let run = registry.begin_run(&commit, "cli")?;
    let env = RunEnv {
        registry: &registry,
        store: &store,
        repo_path: &cfg.repo.path,
        staging_sample: cfg.agent.staging_test_records,
    };
    match pipeline::execute(&env, run, &commit, &Arc::new(Cancel::default())) {
        Outcome::Registered { version, new: true } => {
            println!(
                "run {run}: registered v{version} from {} (PendingManualApproval)",
                short(&commit)
            );
            Ok(0)
        }
        Outcome::Registered {
            version,
            new: false,
        } => {
            println!(
                "run {run}: commit {} is already v{version}; nothing registered twice",
                short(&commit)
            );
            Ok(0)
        }
        Outcome::Failed(e) => {
            eprintln!("run {run} failed: {e}");
            Ok(1)
        }
        Outcome::Skipped(e) => {
            eprintln!("run {run} skipped: {e}");
            Ok(1)
        }
        Outcome::Interrupted => Ok(1),
    }
}
