//! `rcfops approve|promote|reject|rollback` and `rcfops signing setup`: approvals made as the
//! same annotated tags or approval files a person could make, then the agent's decision.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use super::*;
use crate::approvals::{self, ApprovalFile};
use crate::domain::{ApprovalSource, Outcome, StagingResult};

fn approver_identity(repo: &ModelRepo) -> String {
    repo.identity()
        .map(|(_, e)| e)
        .or_else(|| std::env::var("USER").ok().map(|u| format!("{u}@localhost")))
        .unwrap_or_else(|| "unknown@localhost".into())
}

/// Waits until both stages serve what the registry derives for them (and a new staging version
/// has its test result), then prints where each stage stands. Returns false when the stages
/// did not settle in time.
fn wait_for_stages(reg: &Registry, deadline: std::time::Instant) -> Result<bool> {
    let settled = || -> Result<bool> {
        let targets = reg.targets()?;
        let tested = match targets.staging {
            Some(n) => reg.version(n)?.is_some_and(|v| v.staging_result.is_some()),
            None => true,
        };
        Ok(tested
            && reg.deployed(Stage::Staging)? == targets.staging
            && reg.deployed(Stage::Production)? == targets.production())
    };
    while !settled()? {
        if std::time::Instant::now() > deadline {
            println!("the stages are still converging; see `rcfops status`");
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let show = |stage: Stage| -> Result<String> {
        Ok(match reg.deployed(stage)? {
            Some(n) => {
                let tests = reg
                    .version(n)?
                    .and_then(|v| v.staging_result)
                    .filter(|_| stage == Stage::Staging)
                    .map(|r| format!(" (staging tests {r})"))
                    .unwrap_or_default();
                format!("v{n}{tests}")
            }
            None => "no model".into(),
        })
    };
    println!(
        "staging: {}; production: {}",
        show(Stage::Staging)?,
        show(Stage::Production)?
    );
    Ok(true)
}

/// What became of an approval the CLI submitted.
enum Decided {
    /// Not waited for (`--no-wait`, the agent is not running, or no decision within the wait).
    NotYet,
    Accepted,
    Refused,
}

fn wait_for_decision(
    cfg: &Config,
    source: impl Fn(&ApprovalSource) -> bool,
    no_wait: bool,
) -> Result<Decided> {
    if no_wait {
        return Ok(Decided::NotYet);
    }
    if !agent::agent_running(cfg) {
        println!("the agent is not running; it will decide when it starts (`rcfops up`)");
        return Ok(Decided::NotYet);
    }
    let reg = open_registry(cfg)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Some(a) = reg
            .approvals()?
            .into_iter()
            .rev()
            .find(|a| source(&a.source))
        {
            if a.outcome == Outcome::Accepted {
                println!(
                    "accepted by the agent: {} v{}{}",
                    a.action.map(|a| a.as_str()).unwrap_or("unknown"),
                    a.version.unwrap_or(0),
                    if a.forced { " (forced)" } else { "" }
                );
                wait_for_stages(&reg, deadline)?;
                return Ok(Decided::Accepted);
            }
            println!("refused by the agent: {}", a.reason.unwrap_or_default());
            return Ok(Decided::Refused);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("the agent has not decided yet; see `rcfops logs`");
    Ok(Decided::NotYet)
}

/// After an accepted `approve`: exit 1, with the reason, when vN failed its staging tests.
fn approve_outcome(cfg: &Config, n: i64) -> Result<i32> {
    let reg = open_registry(cfg)?;
    let Some(v) = reg.version(n)? else {
        return Ok(0);
    };
    if v.staging_result == Some(StagingResult::Failed) {
        println!(
            "v{n} failed its staging tests: {}; it will not be promoted (fix it and commit again)",
            v.staging_detail.unwrap_or_default()
        );
        return Ok(1);
    }
    Ok(0)
}

pub(super) fn cmd_approval(cfg: &Config, action: Action, a: ApprovalArgs) -> Result<i32> {
    let n = parse_n(&a.version)?;
    if a.force && action != Action::Reject {
        bail!("--force applies to `rcfops reject` and `rcfops rollback` only");
    }
    let reg = open_registry(cfg)?;
    let v = reg
        .version(n)?
        .ok_or_else(|| anyhow!("there is no version v{n}; see `rcfops status`"))?;
    let repo = ModelRepo::open(&cfg.repo.path)?;
    let message = a
        .message
        .unwrap_or_else(|| format!("{action} v{n} via rcfops"));
    if cfg.approvals.require_signed && action != Action::Reject && !a.file {
        bail!(
            "[approvals] require_signed is on, so {action}/v{n} must be a signed tag, which only you can make: git -C {} tag -s {action}/v{n} {} -m {message:?}",
            cfg.repo.path.display(),
            v.commit
        );
    }
    if action == Action::Promote {
        // Approval times have one-second resolution and a promotion stamped in the second the
        // staging tests passed is refused as ambiguous: wait that second out.
        if let Some(ts) = v.staging_ts {
            let next = ts.floor() + 1.0;
            let now = crate::registry::now_ts();
            if now < next {
                std::thread::sleep(Duration::from_secs_f64(next - now));
            }
        }
    }
    let decided = if a.file {
        let file = ApprovalFile {
            action,
            version: Some(n),
            commit: Some(v.commit.clone()),
            stage: None,
            approver: approver_identity(&repo),
            created: format_ts(crate::registry::now_ts().ceil()),
            reason: Some(message),
            via: Some("cli".into()),
            force: a.force,
        };
        submit_file(cfg, &file, a.no_wait)?
    } else {
        let name = format!("{action}/v{n}");
        let mut text = format!("{message}\n\n{}", approvals::CLI_TRAILER);
        if a.force {
            text.push('\n');
            text.push_str(approvals::FORCE_TRAILER);
        }
        let oid = repo.create_tag(&name, &v.commit, &text)?;
        println!("created annotated tag {name} on {}", short(&v.commit));
        let source = ApprovalSource::Tag {
            name: name.clone(),
            object: oid.clone(),
        };
        let decided = wait_for_decision(cfg, |s| *s == source, a.no_wait)?;
        if matches!(decided, Decided::Refused) && repo.delete_tag_if(&name, &oid)? {
            // The refusal belongs to that tag object; removing it lets the next try reuse the name.
            println!("deleted the refused tag {name} (it was made by this command)");
        }
        decided
    };
    Ok(match decided {
        Decided::Refused => 1,
        Decided::Accepted if action == Action::Approve => approve_outcome(cfg, n)?,
        _ => 0,
    })
}

pub(super) fn cmd_rollback(
    cfg: &Config,
    stage: Stage,
    reason: Option<String>,
    force: bool,
    no_wait: bool,
) -> Result<i32> {
    let repo = ModelRepo::open(&cfg.repo.path)?;
    let file = ApprovalFile {
        action: Action::Rollback,
        version: None,
        commit: None,
        stage: Some(stage.to_string()),
        approver: approver_identity(&repo),
        created: format_ts(crate::registry::now_ts().ceil()),
        reason: Some(reason.unwrap_or_else(|| format!("rollback {stage} via rcfops"))),
        via: Some("cli".into()),
        force,
    };
    Ok(match submit_file(cfg, &file, no_wait)? {
        Decided::Refused => 1,
        _ => 0,
    })
}

/// Writes an approval file and waits for the agent's decision on it.
fn submit_file(cfg: &Config, file: &ApprovalFile, no_wait: bool) -> Result<Decided> {
    let path = approvals::write_file(&cfg.approvals.dir, file)?;
    println!("wrote {}", path.display());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    wait_for_decision(
        cfg,
        |s| matches!(s, ApprovalSource::File { name: n, .. } if *n == name),
        no_wait,
    )
}

/// The `[approvals]` lines `rcfops signing setup` needs in the config text, or `None` when
/// they are there already. Refuses to overwrite different values the user set.
pub fn with_signing_enabled(text: &str, signers: &str) -> Result<Option<String>> {
    let doc: toml::Table = text.parse().context("the config is not valid TOML")?;
    let approvals = doc.get("approvals").and_then(|a| a.as_table());
    let signed = approvals.and_then(|a| a.get("require_signed"));
    let file = approvals.and_then(|a| a.get("allowed_signers"));
    match (signed, file) {
        (Some(toml::Value::Boolean(true)), Some(toml::Value::String(_))) => return Ok(None),
        (None, None) => {}
        _ => bail!(
            "[approvals] already sets require_signed or allowed_signers; set require_signed = true and allowed_signers = {signers:?} there by hand"
        ),
    }
    let lines = format!("require_signed = true\nallowed_signers = {signers:?}\n");
    let mut out = String::new();
    let mut done = false;
    for l in text.split_inclusive('\n') {
        out.push_str(l);
        if !done && l.trim() == "[approvals]" {
            if !l.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&lines);
            done = true;
        }
    }
    if !done {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("\n[approvals]\n{lines}"));
    }
    Ok(Some(out))
}

pub(super) fn cmd_signing_setup(
    config_path: &Path,
    cfg: &Config,
    key: &Path,
    email: Option<String>,
) -> Result<i32> {
    let text = std::fs::read_to_string(key)
        .with_context(|| format!("cannot read the public key {}", key.display()))?;
    let public = ssh_key::PublicKey::from_openssh(text.trim()).map_err(|e| {
        anyhow!(
            "{} is not an OpenSSH public key ({e}); pass the .pub file, e.g. --key ~/.ssh/id_ed25519.pub",
            key.display()
        )
    })?;
    let repo = ModelRepo::open(&cfg.repo.path)?;
    let email = match email.or_else(|| repo.identity().map(|(_, e)| e)) {
        Some(e) if e.contains('@') => e,
        _ => {
            bail!("no e-mail for the key: pass --email, or set git's user.email in the model repo")
        }
    };
    let public = public
        .to_openssh()
        .map_err(|e| anyhow!("cannot encode the key: {e}"))?;
    let signers = cfg.approvals.allowed_signers.clone().unwrap_or_else(|| {
        config_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join("allowed_signers")
    });
    let existing = std::fs::read_to_string(&signers).unwrap_or_default();
    let entry = format!("{email} namespaces=\"git\" {public}");
    if existing.lines().any(|l| l.trim() == entry) {
        println!("{} already lists this key for {email}", signers.display());
    } else {
        let mut all = existing;
        if !all.is_empty() && !all.ends_with('\n') {
            all.push('\n');
        }
        all.push_str(&entry);
        all.push('\n');
        approvals::signing::AllowedSigners::parse(&all, &signers.display().to_string())
            .map_err(|e| anyhow!(e))?;
        crate::artifacts::write_atomic(&signers, all.as_bytes())
            .with_context(|| format!("cannot write {}", signers.display()))?;
        println!("{}: listed the key for {email}", signers.display());
    }
    // git signs with the private half when it is beside the public key.
    let private = key.with_extension("");
    let signing_key = if key.extension().is_some_and(|e| e == "pub") && private.exists() {
        private
    } else {
        key.to_path_buf()
    };
    repo.configure_ssh_signing(&signing_key)?;
    println!(
        "{}: `git tag -a` now signs with {} (gpg.format = ssh, tag.gpgSign = true)",
        cfg.repo.path.display(),
        signing_key.display()
    );
    let config_text = std::fs::read_to_string(config_path).unwrap_or_default();
    let signers_text = std::path::absolute(&signers)
        .unwrap_or(signers.clone())
        .display()
        .to_string();
    match with_signing_enabled(&config_text, &signers_text)? {
        None => println!("{}: require_signed is already on", config_path.display()),
        Some(new_text) => {
            Config::parse(
                &new_text,
                &config_path.display().to_string(),
                std::path::Path::new("/"),
            )?;
            crate::artifacts::write_atomic(config_path, new_text.as_bytes())
                .with_context(|| format!("cannot write {}", config_path.display()))?;
            println!(
                "{}: require_signed = true (restart the agent to apply it)",
                config_path.display()
            );
        }
    }
    println!(
        "approve and promote with signed tags now: git -C {} tag -a promote/vN COMMIT -m \"...\"",
        cfg.repo.path.display()
    );
    Ok(0)
}
