//! Agent configuration: `config.toml`, its embedded defaults, and path resolution.
//!
//! Owns the mapping from the file a user edits to a typed [`Config`]. Every relative path is
//! resolved against the folder of the config file, so the agent behaves the same whatever the
//! working directory. Errors name the file, the line and the key. This module does no other I/O
//! than reading the one file and the secret files its notification sinks name (`notify`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::Stage;

mod auth;
mod deploy;
mod monitoring;
mod notify;
pub use auth::{check_exposure, read_credentials, EndpointAuth};
pub use deploy::{DeployTarget, KubernetesConfig};
pub use monitoring::MonitoringConfig;
pub use notify::{NotifyConfig, SinkConfig, Target};

/// The configuration as the agent uses it: absolute paths, parsed addresses.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file the configuration came from (`None` when running on embedded defaults).
    pub source: Option<PathBuf>,
    pub repo: RepoConfig,
    pub state_dir: PathBuf,
    pub approvals: ApprovalsConfig,
    pub staging: EndpointConfig,
    pub production: EndpointConfig,
    pub agent: AgentConfig,
    pub notify: NotifyConfig,
    /// What the agent logs at start about this configuration (never a secret).
    pub warnings: Vec<String>,
    /// `[kubernetes]`, when a stage deploys there.
    pub kubernetes: Option<KubernetesConfig>,
    /// `[monitoring]`: data capture, drift and live quality.
    pub monitoring: MonitoringConfig,
    /// `[dashboard] listen`: where the dashboard is served (`None`: off).
    pub dashboard: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct RepoConfig {
    pub path: PathBuf,
    pub branch: String,
    pub template: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ApprovalsConfig {
    pub dir: PathBuf,
    /// Tagger / approver e-mails allowed to approve; empty means anyone.
    pub approvers: Vec<String>,
    /// Who may approve for staging (`approve/vN`); empty: `approvers`.
    pub staging_approvers: Vec<String>,
    /// Who may promote to production (`promote/vN`, production rollback); empty: `approvers`.
    pub production_approvers: Vec<String>,
    /// The author of a version's source commit may not promote it to production.
    pub separation_of_duties: bool,
    /// Accept only tags signed with a key in `allowed_signers` (approve and promote).
    pub require_signed: bool,
    /// git's `gpg.ssh.allowedSignersFile` format.
    pub allowed_signers: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub listen: SocketAddr,
    /// Staging tests fail when the p99 latency of a test request exceeds this budget.
    pub latency_budget_ms: u64,
    /// Staging only: the share (%) of production's requests mirrored to the staging model.
    pub shadow_percent: f64,
    /// Staging only: shadow records a staging version needs before a promote is honoured.
    pub min_shadow_records: u64,
    /// Who may invoke it (`[endpoints.<stage>.auth]`).
    pub auth: EndpointAuth,
    /// Serve `/metrics` on this address instead of `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// Serve HTTPS with this PEM certificate chain and key (re-read when they change).
    pub tls: Option<TlsPaths>,
    /// Where the stage runs (`[deploy.<stage>]`).
    pub target: DeployTarget,
}

/// `[endpoints.<stage>] tls_cert` and `tls_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Quiet period after a file-system event before the reconciler runs.
    pub debounce_ms: u64,
    /// Period of the full resync that catches anything the watcher missed.
    pub resync_ms: u64,
    /// Run every commit in order instead of only the newest one.
    pub run_every_commit: bool,
    /// Number of held-out records sent to staging by the staging tests.
    pub staging_test_records: usize,
    /// How long the staging tests wait for a Kubernetes rollout to answer as the new version.
    pub rollout_timeout_ms: u64,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    repo: RawRepo,
    #[serde(default)]
    state: RawState,
    #[serde(default)]
    approvals: RawApprovals,
    #[serde(default)]
    endpoints: RawEndpoints,
    #[serde(default)]
    agent: RawAgent,
    #[serde(default)]
    notify: notify::RawNotify,
    #[serde(default)]
    deploy: deploy::RawDeploy,
    kubernetes: Option<deploy::RawKubernetes>,
    #[serde(default)]
    monitoring: monitoring::RawMonitoring,
    #[serde(default)]
    dashboard: RawDashboard,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDashboard {
    listen: Option<String>,
    allow_remote: Option<bool>,
}

/// Where the dashboard listens unless `[dashboard] listen` says otherwise.
pub const DEFAULT_DASHBOARD: &str = "127.0.0.1:8090";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRepo {
    path: String,
    branch: String,
    template: String,
}

impl Default for RawRepo {
    fn default() -> Self {
        RawRepo {
            path: "model-repo".into(),
            branch: "main".into(),
            template: "sample-repo".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawState {
    dir: String,
}

impl Default for RawState {
    fn default() -> Self {
        RawState {
            dir: ".rcfops".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawApprovals {
    dir: String,
    approvers: Vec<String>,
    staging_approvers: Vec<String>,
    production_approvers: Vec<String>,
    separation_of_duties: bool,
    require_signed: bool,
    allowed_signers: Option<String>,
}

impl Default for RawApprovals {
    fn default() -> Self {
        RawApprovals {
            dir: ".rcfops/approvals".into(),
            approvers: Vec::new(),
            staging_approvers: Vec::new(),
            production_approvers: Vec::new(),
            separation_of_duties: true,
            require_signed: false,
            allowed_signers: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoints {
    #[serde(default = "default_staging")]
    staging: RawEndpoint,
    #[serde(default = "default_production")]
    production: RawEndpoint,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    /// `None`: the stage's default address.
    listen: Option<String>,
    #[serde(default = "default_latency_budget")]
    latency_budget_ms: u64,
    shadow_percent: Option<f64>,
    min_shadow_records: Option<u64>,
    metrics_listen: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    auth: Option<auth::RawAuth>,
}

impl Default for RawEndpoints {
    fn default() -> Self {
        RawEndpoints {
            staging: default_staging(),
            production: default_production(),
        }
    }
}

fn default_staging() -> RawEndpoint {
    RawEndpoint {
        listen: None,
        latency_budget_ms: default_latency_budget(),
        shadow_percent: None,
        min_shadow_records: None,
        metrics_listen: None,
        tls_cert: None,
        tls_key: None,
        auth: None,
    }
}

fn default_production() -> RawEndpoint {
    default_staging()
}

/// Where each stage listens unless `[endpoints.<stage>] listen` says otherwise.
fn default_listen(stage: Stage) -> &'static str {
    match stage {
        Stage::Staging => "127.0.0.1:8081",
        Stage::Production => "127.0.0.1:8080",
    }
}

fn default_latency_budget() -> u64 {
    250
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAgent {
    debounce_ms: u64,
    resync_ms: u64,
    run_every_commit: bool,
    staging_test_records: usize,
    rollout_timeout_ms: u64,
}

impl Default for RawAgent {
    fn default() -> Self {
        RawAgent {
            debounce_ms: 100,
            resync_ms: 2000,
            run_every_commit: false,
            staging_test_records: 200,
            rollout_timeout_ms: 600_000,
        }
    }
}

/// A configuration error, already phrased for the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Loads `path`. When `path` does not exist and `allow_missing` is set, the embedded
    /// defaults apply, resolved against `path`'s folder.
    pub fn load(path: &Path, allow_missing: bool) -> Result<Config, ConfigError> {
        let base = absolute_parent(path);
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let cfg = Self::parse(&text, &path.display().to_string(), &base)?;
                Ok(Config {
                    source: Some(path.to_path_buf()),
                    ..cfg
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && allow_missing => {
                Self::parse("", &path.display().to_string(), &base)
            }
            Err(e) => Err(ConfigError(format!(
                "{}: cannot read the configuration: {e} (pass --config PATH to use another file)",
                path.display()
            ))),
        }
    }

    /// Parses configuration text; `name` is used in messages, `base` resolves relative paths.
    pub fn parse(text: &str, name: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let place = e
                .span()
                .map(|s| {
                    let (line, col) = line_col(text, s.start);
                    format!("{name}:{line}:{col}")
                })
                .unwrap_or_else(|| name.to_string());
            ConfigError(format!("{place}: {}", e.message()))
        })?;
        let resolve = |p: &str| -> PathBuf {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        // `path` is `section.key` (e.g. `endpoints.production.listen`).
        let key_err = |path: &str, msg: String| -> ConfigError {
            let (section, key) = path.rsplit_once('.').unwrap_or(("", path));
            let line = find_key_line(text, section, key)
                .map(|l| format!(":{l}"))
                .unwrap_or_default();
            ConfigError(format!("{name}{line}: `{key}`: {msg}"))
        };
        if raw.repo.branch.trim().is_empty() || !crate::repo::branch_name_is_valid(&raw.repo.branch)
        {
            return Err(key_err(
                "repo.branch",
                format!("{:?} is not a valid branch name", raw.repo.branch),
            ));
        }
        let mut warnings = Vec::new();
        let mut endpoint = |section: Stage,
                            r: &RawEndpoint|
         -> Result<EndpointConfig, ConfigError> {
            let text = r.listen.as_deref().unwrap_or(default_listen(section));
            let listen: SocketAddr = text.parse().map_err(|_| {
                key_err(
                    &format!("endpoints.{section}.listen"),
                    format!(
                        "[endpoints.{section}] listen = {text:?} is not an address like \"127.0.0.1:8080\""
                    ),
                )
            })?;
            if r.latency_budget_ms == 0 {
                return Err(key_err(
                    &format!("endpoints.{section}.latency_budget_ms"),
                    "must be at least 1 (milliseconds of p99 latency the staging tests allow)"
                        .into(),
                ));
            }
            if section == Stage::Production {
                for (key, set) in [
                    ("shadow_percent", r.shadow_percent.is_some()),
                    ("min_shadow_records", r.min_shadow_records.is_some()),
                ] {
                    if set {
                        return Err(key_err(
                            &format!("endpoints.production.{key}"),
                            "belongs to [endpoints.staging]: production mirrors its requests to the staging model".to_string(),
                        ));
                    }
                }
            }
            let shadow_percent = r.shadow_percent.unwrap_or(0.0);
            if !(0.0..=100.0).contains(&shadow_percent) {
                return Err(key_err(
                    "endpoints.staging.shadow_percent",
                    format!("{shadow_percent} is out of range [0, 100]"),
                ));
            }
            let metrics_listen = match &r.metrics_listen {
                None => None,
                Some(t) => Some(t.parse::<SocketAddr>().map_err(|_| {
                    key_err(
                        &format!("endpoints.{section}.metrics_listen"),
                        format!("{t:?} is not an address like \"127.0.0.1:9090\""),
                    )
                })?),
            };
            if metrics_listen == Some(listen) && listen.port() != 0 {
                return Err(key_err(
                    &format!("endpoints.{section}.metrics_listen"),
                    format!("is the endpoint's own address {listen}; give /metrics another port or remove it"),
                ));
            }
            let auth = auth::parse(
                r.auth.as_ref(),
                section,
                listen,
                &resolve,
                &key_err,
                &mut warnings,
            )?;
            let tls = match (&r.tls_cert, &r.tls_key) {
                (None, None) => None,
                (Some(c), Some(k)) => Some(TlsPaths {
                    cert: resolve(c),
                    key: resolve(k),
                }),
                (Some(_), None) => {
                    return Err(key_err(
                        &format!("endpoints.{section}.tls_cert"),
                        "needs tls_key = \"PATH\" (the PEM private key) beside it".into(),
                    ))
                }
                (None, Some(_)) => {
                    return Err(key_err(
                        &format!("endpoints.{section}.tls_key"),
                        "needs tls_cert = \"PATH\" (the PEM certificate chain) beside it".into(),
                    ))
                }
            };
            Ok(EndpointConfig {
                listen,
                auth,
                metrics_listen,
                tls,
                target: DeployTarget::Local,
                latency_budget_ms: r.latency_budget_ms,
                shadow_percent,
                min_shadow_records: r.min_shadow_records.unwrap_or(0),
            })
        };
        let mut staging = endpoint(Stage::Staging, &raw.endpoints.staging)?;
        let mut production = endpoint(Stage::Production, &raw.endpoints.production)?;
        let (st, pt, kubernetes) =
            deploy::parse(&raw.deploy, raw.kubernetes.as_ref(), &resolve, &key_err)?;
        staging.target = st;
        production.target = pt;
        if staging.listen == production.listen && staging.listen.port() != 0 {
            return Err(key_err(
                "endpoints.production.listen",
                format!(
                    "staging and production both listen on {}; give each stage its own address",
                    staging.listen
                ),
            ));
        }
        for (key, list) in [
            ("approvers", &raw.approvals.approvers),
            ("staging_approvers", &raw.approvals.staging_approvers),
            ("production_approvers", &raw.approvals.production_approvers),
        ] {
            for a in list {
                if !a.contains('@') {
                    return Err(key_err(
                        &format!("approvals.{key}"),
                        format!("{a:?} is not an e-mail address (approvers are tagger e-mails)"),
                    ));
                }
            }
        }
        let lower = |l: &[String]| -> Vec<String> {
            l.iter().map(|a| a.trim().to_ascii_lowercase()).collect()
        };
        if raw.approvals.require_signed && raw.approvals.allowed_signers.is_none() {
            return Err(key_err(
                "approvals.require_signed",
                "needs `allowed_signers = \"PATH\"` (git's allowed-signers file) in [approvals]"
                    .into(),
            ));
        }
        if raw.agent.resync_ms == 0 {
            return Err(key_err("agent.resync_ms", "must be at least 1".into()));
        }
        if raw.agent.staging_test_records == 0 {
            return Err(key_err(
                "agent.staging_test_records",
                "must be at least 1 (held-out records kept per version for the staging tests)"
                    .into(),
            ));
        }
        let monitoring = monitoring::parse(&raw.monitoring, &key_err)?;
        let dashboard = match raw.dashboard.listen.as_deref().unwrap_or(DEFAULT_DASHBOARD) {
            "off" => None,
            text => {
                let addr: SocketAddr = text.parse().map_err(|_| {
                    key_err(
                        "dashboard.listen",
                        format!("{text:?} is not an address like \"127.0.0.1:8090\" (or \"off\")"),
                    )
                })?;
                if !addr.ip().is_loopback() && raw.dashboard.allow_remote != Some(true) {
                    return Err(key_err(
                        "dashboard.listen",
                        format!("{addr} is reachable from other machines and the dashboard has no login; listen on 127.0.0.1 (and reach it through an SSH tunnel or a proxy that authenticates), or set allow_remote = true"),
                    ));
                }
                Some(addr)
            }
        };
        let repo_path = resolve(&raw.repo.path);
        let notify = notify::parse(raw.notify, text, name, &resolve, &repo_path)?;
        Ok(Config {
            source: None,
            warnings,
            kubernetes,
            monitoring,
            dashboard,
            notify,
            repo: RepoConfig {
                path: repo_path,
                branch: raw.repo.branch,
                template: resolve(&raw.repo.template),
            },
            state_dir: resolve(&raw.state.dir),
            approvals: ApprovalsConfig {
                dir: resolve(&raw.approvals.dir),
                approvers: lower(&raw.approvals.approvers),
                staging_approvers: lower(&raw.approvals.staging_approvers),
                production_approvers: lower(&raw.approvals.production_approvers),
                separation_of_duties: raw.approvals.separation_of_duties,
                require_signed: raw.approvals.require_signed,
                allowed_signers: raw.approvals.allowed_signers.as_deref().map(resolve),
            },
            staging,
            production,
            agent: AgentConfig {
                debounce_ms: raw.agent.debounce_ms,
                resync_ms: raw.agent.resync_ms,
                run_every_commit: raw.agent.run_every_commit,
                staging_test_records: raw.agent.staging_test_records,
                rollout_timeout_ms: raw.agent.rollout_timeout_ms,
            },
        })
    }

    /// The `[endpoints.<stage>]` (and `[deploy.<stage>]`) settings of `stage`.
    pub fn endpoint(&self, stage: Stage) -> &EndpointConfig {
        match stage {
            Stage::Staging => &self.staging,
            Stage::Production => &self.production,
        }
    }

    /// Path of the SQLite registry.
    pub fn registry_path(&self) -> PathBuf {
        self.state_dir.join("registry.sqlite")
    }

    /// Folder of content-addressed model artifacts.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.state_dir.join("artifacts")
    }

    /// The JSON-lines log file.
    /// `<state>/capture`: the endpoints' data-capture files.
    pub fn capture_dir(&self) -> PathBuf {
        self.state_dir.join("capture")
    }

    /// `<state>/ground-truth`: ground-truth files the agent merges with the captures.
    pub fn ground_truth_dir(&self) -> PathBuf {
        self.state_dir.join("ground-truth")
    }

    pub fn log_path(&self) -> PathBuf {
        self.state_dir.join("agent.log.jsonl")
    }

    /// Whether who approved matters here but cannot be proven: separation of duties or an
    /// approver list is on without `require_signed`, so a tagger e-mail or a file's `approver`
    /// is whatever its author typed. The text says so and what to do.
    pub fn identity_notice(&self) -> Option<String> {
        let a = &self.approvals;
        let lists = !a.approvers.is_empty()
            || !a.staging_approvers.is_empty()
            || !a.production_approvers.is_empty();
        if a.require_signed || !(lists || a.separation_of_duties) {
            return None;
        }
        let what = match (lists, a.separation_of_duties) {
            (true, true) => "separation of duties and the approver lists rely",
            (true, false) => "the approver lists rely",
            _ => "separation of duties relies",
        };
        Some(format!(
            "approver identities are self-asserted: {what} on tagger e-mails and approval-file `approver` fields, which anyone can set; turn on signed approvals (`rcfops signing setup`, see README \"Signed approvals\") to enforce them"
        ))
    }
}

fn absolute_parent(path: &Path) -> PathBuf {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = parent
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::path::absolute(&parent).unwrap_or(parent)
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
    (line, col)
}

/// 1-based line of `key = ...` inside table `[section]` (top level when `section` is empty).
fn find_key_line(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            continue;
        }
        if current == section && t.starts_with(key) && t[key.len()..].trim_start().starts_with('=')
        {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve_against_the_config_folder() {
        let c = Config::parse("", "config.toml", Path::new("/srv/p")).unwrap();
        assert_eq!(c.repo.path, Path::new("/srv/p/model-repo"));
        assert_eq!(c.state_dir, Path::new("/srv/p/.rcfops"));
        assert_eq!(c.approvals.dir, Path::new("/srv/p/.rcfops/approvals"));
        assert_eq!(c.production.listen.port(), 8080);
        assert_eq!(c.staging.listen.port(), 8081);
        assert!(crate::approvals::rules::may(
            &c.approvals,
            crate::domain::Action::Approve,
            None,
            "anyone@x"
        ));
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = Config::parse(
            "[repo]\nbranch = \"main\"\nbrnach = \"x\"\n",
            "c.toml",
            Path::new("/"),
        )
        .unwrap_err()
        .0;
        assert!(e.starts_with("c.toml:3:"), "{e}");
        assert!(e.contains("brnach"), "{e}");
    }

    #[test]
    fn bad_address_is_named() {
        let e = Config::parse(
            "[endpoints.staging]\nlisten = \"nowhere\"\n",
            "c.toml",
            Path::new("/"),
        )
        .unwrap_err()
        .0;
        assert!(e.contains("c.toml:2"), "{e}");
        assert!(e.contains("listen"), "{e}");
    }

    #[test]
    fn the_line_is_the_key_in_its_own_section() {
        let text = "[endpoints.staging]\nlisten = \"127.0.0.1:1\"\n\n[endpoints.production]\nlisten = \"127.0.0.1\"\n";
        let e = Config::parse(text, "c.toml", Path::new("/")).unwrap_err().0;
        assert!(
            e.starts_with("c.toml:5: `listen`: [endpoints.production]"),
            "{e}"
        );
    }

    #[test]
    fn every_endpoint_key_is_optional() {
        let c = Config::parse(
            "[endpoints.staging]\nlatency_budget_ms = 100\n",
            "c.toml",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(c.staging.latency_budget_ms, 100);
        assert_eq!(c.staging.listen.port(), 8081);
        assert_eq!(c.production.listen.port(), 8080);
    }

    #[test]
    fn identities_are_called_self_asserted_until_signed() {
        let c = Config::parse("", "c.toml", Path::new("/")).unwrap();
        assert!(c
            .identity_notice()
            .unwrap()
            .contains("separation of duties relies"));
        let c = Config::parse(
            "[approvals]\nseparation_of_duties = false\n",
            "c.toml",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(c.identity_notice(), None, "nothing relies on who approved");
        let c = Config::parse(
            "[approvals]\napprovers = [\"a@b.c\"]\nrequire_signed = true\nallowed_signers = \"s\"\n",
            "c.toml",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(c.identity_notice(), None, "signed");
    }

    #[test]
    fn wrong_type_is_named() {
        let e = Config::parse(
            "[approvals]\napprovers = \"bob\"\n",
            "c.toml",
            Path::new("/"),
        )
        .unwrap_err()
        .0;
        assert!(e.contains("c.toml:2"), "{e}");
    }
}
