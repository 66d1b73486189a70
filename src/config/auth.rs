//! `[endpoints.<stage>.auth]`: who may call a stage endpoint, and the safe default that keeps
//! an unauthenticated endpoint off the network.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::auth::{Credentials, Scope, Verifier};
use crate::domain::Stage;

/// How a stage endpoint authenticates invocations.
#[derive(Debug, Clone)]
pub enum EndpointAuth {
    /// Anyone who can reach the address may call it.
    None,
    /// AWS Signature Version 4 against the keys of `credentials_file`.
    SigV4 {
        verifier: Verifier,
        credentials_file: PathBuf,
    },
}

impl EndpointAuth {
    pub fn verifier(&self) -> Option<&Verifier> {
        match self {
            EndpointAuth::None => None,
            EndpointAuth::SigV4 { verifier, .. } => Some(verifier),
        }
    }

    /// `none` or `sigv4 (region, service, N keys from FILE)`: never a secret.
    pub fn describe(&self) -> String {
        match self {
            EndpointAuth::None => "none".into(),
            EndpointAuth::SigV4 {
                verifier,
                credentials_file,
            } => format!(
                "sigv4 (region {}, service {}, keys from {})",
                verifier.scope().region,
                verifier.scope().service,
                credentials_file.display()
            ),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    mode: Option<String>,
    credentials_file: Option<String>,
    region: Option<String>,
    service: Option<String>,
    #[serde(default)]
    allow_unauthenticated: bool,
}

/// An endpoint without authentication may listen only on loopback, unless explicitly allowed.
pub fn check_exposure(listen: SocketAddr, allow_unauthenticated: bool) -> Result<(), String> {
    if listen.ip().is_loopback() || allow_unauthenticated {
        Ok(())
    } else {
        Err(format!(
            "{listen} is reachable from other machines and requests would not be authenticated"
        ))
    }
}

/// Reads `[endpoints.<stage>.auth]`; `err(key, msg)` builds an error naming the file, line
/// and key; `warnings` collects what the agent should log at start.
pub(super) fn parse(
    raw: Option<&RawAuth>,
    stage: Stage,
    listen: SocketAddr,
    resolve: &dyn Fn(&str) -> PathBuf,
    err: &dyn Fn(&str, String) -> super::ConfigError,
    warnings: &mut Vec<String>,
) -> Result<EndpointAuth, super::ConfigError> {
    let default = RawAuth::default();
    let raw = raw.unwrap_or(&default);
    let key = |k: &str| format!("endpoints.{stage}.auth.{k}");
    let mode = raw.mode.as_deref().unwrap_or("none");
    match mode {
        "none" => {
            for (k, set) in [
                ("credentials_file", raw.credentials_file.is_some()),
                ("region", raw.region.is_some()),
                ("service", raw.service.is_some()),
            ] {
                if set {
                    return Err(err(
                        &key(k),
                        "applies only with mode = \"sigv4\"; set mode = \"sigv4\" or remove it"
                            .into(),
                    ));
                }
            }
            if check_exposure(listen, raw.allow_unauthenticated).is_err() {
                return Err(err(
                    &format!("endpoints.{stage}.listen"),
                    format!(
                        "the {stage} endpoint listens on {listen}, which other machines can reach, \
                         without authentication: set [endpoints.{stage}.auth] mode = \"sigv4\" \
                         with credentials_file and region, or allow_unauthenticated = true to \
                         let anyone who can reach it score"
                    ),
                ));
            }
            if !listen.ip().is_loopback() {
                warnings.push(format!(
                    "the {stage} endpoint on {listen} accepts unauthenticated requests \
                     (allow_unauthenticated = true)"
                ));
            }
            Ok(EndpointAuth::None)
        }
        "sigv4" => {
            if raw.allow_unauthenticated {
                return Err(err(
                    &key("allow_unauthenticated"),
                    "contradicts mode = \"sigv4\"; remove it".into(),
                ));
            }
            let Some(file) = raw.credentials_file.as_deref() else {
                return Err(err(
                    &key("mode"),
                    format!(
                        "mode = \"sigv4\" needs credentials_file = \"PATH\" (the ~/.aws/credentials \
                         format) in [endpoints.{stage}.auth]"
                    ),
                ));
            };
            let Some(region) = raw.region.as_deref() else {
                return Err(err(
                    &key("mode"),
                    format!(
                        "mode = \"sigv4\" needs region = \"...\" (e.g. \"eu-west-1\", what clients \
                         sign for) in [endpoints.{stage}.auth]"
                    ),
                ));
            };
            let service = raw.service.as_deref().unwrap_or("sagemaker");
            for (k, v) in [("region", region), ("service", service)] {
                if v.is_empty()
                    || !v
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                {
                    return Err(err(
                        &key(k),
                        format!("{v:?} is not a {k} name (lower-case letters, digits and -)"),
                    ));
                }
            }
            let path = resolve(file);
            let credentials = read_credentials(&path, stage, warnings)
                .map_err(|m| err(&key("credentials_file"), m))?;
            Ok(EndpointAuth::SigV4 {
                verifier: Verifier::new(
                    Arc::new(credentials),
                    Scope {
                        region: region.into(),
                        service: service.into(),
                    },
                ),
                credentials_file: path,
            })
        }
        other => Err(err(
            &key("mode"),
            format!("{other:?} is not an auth mode: use \"none\" or \"sigv4\""),
        )),
    }
}

/// Reads and parses a credentials file; warns when others may read it.
pub fn read_credentials(
    path: &Path,
    stage: Stage,
    warnings: &mut Vec<String>,
) -> Result<Credentials, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the {stage} credentials file {}: {e}",
            path.display()
        )
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path) {
            let mode = m.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                warnings.push(format!(
                    "the {stage} credentials file {} is readable by others (mode {mode:o}): \
                     run `chmod 600 {}`",
                    path.display(),
                    path.display()
                ));
            }
        }
    }
    Credentials::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}
