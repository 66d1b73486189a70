//! `[deploy.<stage>]` and `[kubernetes]`: where a stage runs. `local` (the default) is the
//! agent's own endpoint; `kubernetes` is a folder of manifests in a GitOps environment repo,
//! which Argo CD or Flux applies, and the Service URL the agent calls.

use std::path::PathBuf;

use serde::Deserialize;

use crate::domain::Stage;

/// Where a stage runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployTarget {
    Local,
    /// Rendered into the environment repo; `url` is the stage's Service as the agent reaches
    /// it (staging tests, status, `rcfops score`).
    Kubernetes {
        url: String,
    },
}

/// `[kubernetes]`: what the rendered manifests need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesConfig {
    pub env_repo: PathBuf,
    pub env_branch: String,
    pub image: String,
    pub namespace: String,
    pub artifact_store: PathBuf,
    pub artifact_base_url: String,
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub cpu_request: String,
    pub memory_request: String,
    pub cpu_limit: String,
    pub memory_limit: String,
    /// The Secret with a `credentials` file the pods check SigV4 against (stages with SigV4).
    pub credentials_secret: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeploy {
    #[serde(default)]
    staging: Option<RawStageDeploy>,
    #[serde(default)]
    production: Option<RawStageDeploy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStageDeploy {
    target: Option<String>,
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKubernetes {
    env_repo: Option<String>,
    env_branch: Option<String>,
    image: Option<String>,
    namespace: Option<String>,
    artifact_store: Option<String>,
    artifact_base_url: Option<String>,
    min_replicas: Option<u32>,
    max_replicas: Option<u32>,
    cpu_request: Option<String>,
    memory_request: Option<String>,
    cpu_limit: Option<String>,
    memory_limit: Option<String>,
    credentials_secret: Option<String>,
}

type Err<'a> = &'a dyn Fn(&str, String) -> super::ConfigError;

/// The targets of both stages and the `[kubernetes]` table when a stage needs it.
pub(super) fn parse(
    deploy: &RawDeploy,
    kube: Option<&RawKubernetes>,
    resolve: &dyn Fn(&str) -> PathBuf,
    err: Err<'_>,
) -> Result<(DeployTarget, DeployTarget, Option<KubernetesConfig>), super::ConfigError> {
    let target = |stage: Stage, raw: &Option<RawStageDeploy>| -> Result<DeployTarget, _> {
        let Some(r) = raw else {
            return Ok(DeployTarget::Local);
        };
        let key = |k: &str| format!("deploy.{stage}.{k}");
        match r.target.as_deref().unwrap_or("local") {
            "local" => {
                if r.url.is_some() {
                    return Err(err(
                        &key("url"),
                        "applies only with target = \"kubernetes\" (a local stage's URL is its listen address)".into(),
                    ));
                }
                Ok(DeployTarget::Local)
            }
            "kubernetes" => {
                let Some(url) = &r.url else {
                    return Err(err(
                        &key("target"),
                        format!("target = \"kubernetes\" needs url = \"http://...\" in [deploy.{stage}] (the stage's Service as the agent reaches it)"),
                    ));
                };
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(err(
                        &key("url"),
                        format!("{url:?} is not an http:// or https:// URL"),
                    ));
                }
                Ok(DeployTarget::Kubernetes {
                    url: url.trim_end_matches('/').to_string(),
                })
            }
            other => Err(err(
                &key("target"),
                format!("{other:?} is not a deploy target: use \"local\" or \"kubernetes\""),
            )),
        }
    };
    let staging = target(Stage::Staging, &deploy.staging)?;
    let production = target(Stage::Production, &deploy.production)?;
    let needed = matches!(staging, DeployTarget::Kubernetes { .. })
        || matches!(production, DeployTarget::Kubernetes { .. });
    let kube = match (needed, kube) {
        (false, None) => None,
        (false, Some(_)) => {
            return Err(err(
                "kubernetes.env_repo",
                "[kubernetes] is set but no stage has [deploy.<stage>] target = \"kubernetes\"".into(),
            ))
        }
        (true, None) => {
            return Err(err(
                "deploy.production.target",
                "a kubernetes target needs a [kubernetes] table (env_repo, image, namespace, artifact_store, artifact_base_url)".into(),
            ))
        }
        (true, Some(k)) => Some(kubernetes(k, resolve, err)?),
    };
    Ok((staging, production, kube))
}

fn kubernetes(
    k: &RawKubernetes,
    resolve: &dyn Fn(&str) -> PathBuf,
    err: Err<'_>,
) -> Result<KubernetesConfig, super::ConfigError> {
    let need =
        |v: &Option<String>, key: &str, example: &str| -> Result<String, super::ConfigError> {
            match v.as_deref().map(str::trim) {
                Some(s) if !s.is_empty() => Ok(s.to_string()),
                _ => Err(err(
                    &format!("kubernetes.{key}"),
                    format!("[kubernetes] needs {key} = {example}"),
                )),
            }
        };
    let env_repo = need(&k.env_repo, "env_repo", "\"PATH\" (the environment repo)")?;
    let image = need(&k.image, "image", "\"registry.example/rcfops:TAG\"")?;
    let namespace = need(&k.namespace, "namespace", "\"fraud-scoring\"")?;
    let store = need(
        &k.artifact_store,
        "artifact_store",
        "\"PATH\" (a folder served over HTTP)",
    )?;
    let base = need(
        &k.artifact_base_url,
        "artifact_base_url",
        "\"https://artifacts.example\" (where pods reach artifact_store)",
    )?;
    if !(base.starts_with("http://") || base.starts_with("https://") || base.starts_with("file://"))
    {
        return Err(err(
            "kubernetes.artifact_base_url",
            format!("{base:?} is not an http(s):// or file:// URL"),
        ));
    }
    let dns = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    if !dns(&namespace) {
        return Err(err(
            "kubernetes.namespace",
            format!("{namespace:?} is not a Kubernetes namespace name (lower-case letters, digits and -, at most 63)"),
        ));
    }
    let min = k.min_replicas.unwrap_or(2);
    let max = k.max_replicas.unwrap_or(6);
    if min == 0 || max < min {
        return Err(err(
            "kubernetes.max_replicas",
            format!("replicas must satisfy 1 ≤ min_replicas ≤ max_replicas (got {min} and {max})"),
        ));
    }
    let branch = k.env_branch.clone().unwrap_or_else(|| "main".into());
    if !crate::repo::branch_name_is_valid(&branch) {
        return Err(err(
            "kubernetes.env_branch",
            format!("{branch:?} is not a valid branch name"),
        ));
    }
    if let Some(s) = &k.credentials_secret {
        if !dns(s) {
            return Err(err(
                "kubernetes.credentials_secret",
                format!("{s:?} is not a Kubernetes Secret name"),
            ));
        }
    }
    Ok(KubernetesConfig {
        env_repo: resolve(&env_repo),
        env_branch: branch,
        image,
        namespace,
        artifact_store: resolve(&store),
        artifact_base_url: base.trim_end_matches('/').to_string(),
        min_replicas: min,
        max_replicas: max,
        cpu_request: k.cpu_request.clone().unwrap_or_else(|| "500m".into()),
        memory_request: k.memory_request.clone().unwrap_or_else(|| "256Mi".into()),
        cpu_limit: k.cpu_limit.clone().unwrap_or_else(|| "2".into()),
        memory_limit: k.memory_limit.clone().unwrap_or_else(|| "512Mi".into()),
        credentials_secret: k.credentials_secret.clone(),
    })
}
