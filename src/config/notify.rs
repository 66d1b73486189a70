//! `[[notify.sinks]]`: where notifications go. Parsed into typed [`SinkConfig`]s, with the
//! secret files read and checked at start: a bad sink is refused with the file and the line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{line_col, ConfigError};
use crate::domain::{EventType, SinkKind};
use crate::notify::policy::Retry;
use crate::notify::sign::Secret;

/// The notification sinks (`[[notify.sinks]]`), in file order.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    pub sinks: Vec<SinkConfig>,
    /// Things worth a warning at start (e.g. a secret file others can read).
    pub warnings: Vec<String>,
}

/// One sink, ready to deliver to.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// `name`, or `KIND-N` with N the sink's position in the file (`webhook-1`).
    pub name: String,
    pub target: Target,
    /// The event types delivered; empty means all.
    pub events: Vec<EventType>,
    /// Per-attempt timeout.
    pub timeout: Duration,
    pub retry: Retry,
}

/// Where a sink delivers.
#[derive(Clone)]
pub enum Target {
    /// CloudEvents JSON, signed with `secret` the Standard Webhooks way.
    Webhook { url: reqwest::Url, secret: Secret },
    /// A Slack incoming webhook; its URL is a secret read from `secret_file`.
    Slack {
        url: reqwest::Url,
        secret_file: PathBuf,
    },
    /// A local program (no shell) that gets the event JSON on stdin.
    Command { argv: Vec<String> },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Target {
    pub fn kind(&self) -> SinkKind {
        match self {
            Target::Webhook { .. } => SinkKind::Webhook,
            Target::Slack { .. } => SinkKind::Slack,
            Target::Command { .. } => SinkKind::Command,
        }
    }

    /// What the sink is, with every secret redacted (logs, `notify list`, status).
    pub fn describe(&self) -> String {
        match self {
            Target::Webhook { url, .. } => format!("webhook {url}"),
            Target::Slack { secret_file, .. } => {
                format!("slack (URL redacted, from {})", secret_file.display())
            }
            Target::Command { argv } => format!("command {}", argv.join(" ")),
        }
    }
}

impl SinkConfig {
    /// Whether this sink takes events of type `t`.
    pub fn wants(&self, t: EventType) -> bool {
        t == EventType::Test || self.events.is_empty() || self.events.contains(&t)
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    #[serde(default)]
    sinks: Vec<RawSink>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    kind: Spanned<SinkKind>,
    name: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    command: Option<Spanned<Command>>,
    secret_file: Option<Spanned<String>>,
    #[serde(default)]
    events: Vec<Spanned<String>>,
    timeout_ms: Option<Spanned<u64>>,
    max_attempts: Option<Spanned<u32>>,
    backoff_ms: Option<Spanned<u64>>,
    max_backoff_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Command {
    Program(String),
    Argv(Vec<String>),
}

/// Parses and checks the sinks; reads their secret files. `repo` is the model repo's
/// folder: nothing a sink uses may live in it (a commit's content never names a target).
pub(super) fn parse(
    raw: RawNotify,
    text: &str,
    name: &str,
    resolve: &dyn Fn(&str) -> PathBuf,
    repo: &Path,
) -> Result<NotifyConfig, ConfigError> {
    let at = |span: std::ops::Range<usize>, key: &str, msg: String| -> ConfigError {
        let (line, _) = line_col(text, span.start);
        ConfigError(format!("{name}:{line}: [[notify.sinks]] `{key}`: {msg}"))
    };
    let mut out = NotifyConfig::default();
    for (i, s) in raw.sinks.into_iter().enumerate() {
        let kind = *s.kind.get_ref();
        let kspan = s.kind.span();
        let sink_name = match &s.name {
            Some(n) => {
                let v = n.get_ref().trim();
                if v.is_empty()
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    return Err(at(
                        n.span(),
                        "name",
                        format!("{v:?} is not a sink name: use letters, digits, '-', '_' or '.'"),
                    ));
                }
                v.to_string()
            }
            None => format!("{kind}-{}", i + 1),
        };
        if out.sinks.iter().any(|o: &SinkConfig| o.name == sink_name) {
            let span = s.name.as_ref().map(|n| n.span()).unwrap_or(kspan.clone());
            return Err(at(
                span,
                "name",
                format!("two sinks are named {sink_name:?}; give each its own `name`"),
            ));
        }
        let mut events = Vec::new();
        for e in &s.events {
            let t: EventType = e
                .get_ref()
                .parse()
                .map_err(|err: crate::domain::UnknownName| {
                    at(e.span(), "events", err.to_string())
                })?;
            if t == EventType::Test {
                return Err(at(
                    e.span(),
                    "events",
                    "`notify.test` is sent by `rcfops notify test` to any sink; it is not a filter"
                        .into(),
                ));
            }
            events.push(t);
        }
        let inside_repo = |p: &Path| -> bool {
            let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            p.starts_with(repo) || canon(p).starts_with(canon(repo))
        };
        let mut secret_path = |key_span: Option<&Spanned<String>>,
                               what: &str|
         -> Result<
            (PathBuf, String, std::ops::Range<usize>),
            ConfigError,
        > {
            let f = key_span.ok_or_else(|| {
                at(
                    kspan.clone(),
                    "secret_file",
                    format!(
                        "a {kind} sink needs `secret_file = \"PATH\"`, the file holding {what}"
                    ),
                )
            })?;
            let path = resolve(f.get_ref());
            if inside_repo(&path) {
                return Err(at(
                    f.span(),
                    "secret_file",
                    format!(
                        "{} is inside the model repo: a notification target or secret never comes from a commit's content; keep it outside {}",
                        path.display(),
                        repo.display()
                    ),
                ));
            }
            let body = std::fs::read_to_string(&path).map_err(|e| {
                at(
                    f.span(),
                    "secret_file",
                    format!(
                        "cannot read {}: {e} (create it, readable by the agent only: chmod 600)",
                        path.display()
                    ),
                )
            })?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if let Ok(m) = std::fs::metadata(&path) {
                    if m.permissions().mode() & 0o077 != 0 {
                        out.warnings.push(format!(
                            "{}: the secret file of sink {sink_name:?} can be read by others; run `chmod 600 {}`",
                            path.display(),
                            path.display()
                        ));
                    }
                }
            }
            Ok((path, body, f.span()))
        };
        let http_url = |v: &str, span: std::ops::Range<usize>, key: &str, shown: &str| {
            let u = reqwest::Url::parse(v.trim())
                .map_err(|e| at(span.clone(), key, format!("{shown} is not a URL ({e})")))?;
            if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                return Err(at(
                    span,
                    key,
                    format!("{shown} is not an http(s) URL with a host"),
                ));
            }
            Ok(u)
        };
        let forbid = |v: Option<std::ops::Range<usize>>, key: &str, why: &str| match v {
            Some(span) => Err(at(span, key, why.to_string())),
            None => Ok(()),
        };
        let target = match kind {
            SinkKind::Webhook => {
                forbid(
                    s.command.as_ref().map(|c| c.span()),
                    "command",
                    "belongs to `kind = \"command\"` sinks; a webhook has a `url`",
                )?;
                let u = s.url.as_ref().ok_or_else(|| {
                    at(
                        kspan.clone(),
                        "url",
                        "a webhook sink needs `url = \"https://...\"`".into(),
                    )
                })?;
                let url = http_url(u.get_ref(), u.span(), "url", &format!("{:?}", u.get_ref()))?;
                let (_, body, span) =
                    secret_path(s.secret_file.as_ref(), "the `whsec_...` signing secret")?;
                let secret = Secret::parse(&body)
                    .map_err(|e| at(span, "secret_file", format!("the secret {e}")))?;
                Target::Webhook { url, secret }
            }
            SinkKind::Slack => {
                forbid(s.url.as_ref().map(|c| c.span()), "url", "a Slack webhook URL is a secret: put it in the file named by `secret_file`, never in the configuration")?;
                forbid(
                    s.command.as_ref().map(|c| c.span()),
                    "command",
                    "belongs to `kind = \"command\"` sinks",
                )?;
                let (path, body, span) =
                    secret_path(s.secret_file.as_ref(), "the Slack incoming-webhook URL")?;
                let url = http_url(&body, span, "secret_file", "the file's content")?;
                Target::Slack {
                    url,
                    secret_file: path,
                }
            }
            SinkKind::Command => {
                forbid(s.url.as_ref().map(|c| c.span()), "url", "belongs to webhook sinks; a command sink has `command = [\"PROGRAM\", \"ARG\", ...]`")?;
                forbid(
                    s.secret_file.as_ref().map(|c| c.span()),
                    "secret_file",
                    "a command sink has no secret: the program gets the event on stdin",
                )?;
                let c = s.command.as_ref().ok_or_else(|| {
                    at(
                        kspan.clone(),
                        "command",
                        "a command sink needs `command = [\"PROGRAM\", \"ARG\", ...]`".into(),
                    )
                })?;
                let mut argv = match c.get_ref() {
                    Command::Program(p) => vec![p.clone()],
                    Command::Argv(v) => v.clone(),
                };
                if argv.first().is_none_or(|p| p.trim().is_empty()) {
                    return Err(at(c.span(), "command", "names no program".into()));
                }
                if argv[0].contains('/') {
                    let p = resolve(&argv[0]);
                    if inside_repo(&p) {
                        return Err(at(c.span(), "command", format!(
                            "{} is inside the model repo: a notification target never comes from a commit's content; keep the program outside {}",
                            p.display(), repo.display())));
                    }
                    if !p.is_file() {
                        return Err(at(
                            c.span(),
                            "command",
                            format!("{} does not exist", p.display()),
                        ));
                    }
                    argv[0] = p.display().to_string();
                }
                Target::Command { argv }
            }
        };
        let ms = |v: &Option<Spanned<u64>>,
                  key: &str,
                  default: u64,
                  min: u64|
         -> Result<Duration, ConfigError> {
            match v {
                None => Ok(Duration::from_millis(default)),
                Some(x) if *x.get_ref() < min => {
                    Err(at(x.span(), key, format!("must be at least {min}")))
                }
                Some(x) => Ok(Duration::from_millis(*x.get_ref())),
            }
        };
        let d = Retry::default();
        let retry = Retry {
            max_attempts: match &s.max_attempts {
                None => d.max_attempts,
                Some(x) if *x.get_ref() == 0 => {
                    return Err(at(x.span(), "max_attempts", "must be at least 1".into()))
                }
                Some(x) => *x.get_ref(),
            },
            base: ms(&s.backoff_ms, "backoff_ms", d.base.as_millis() as u64, 1)?,
            max: ms(
                &s.max_backoff_ms,
                "max_backoff_ms",
                d.max.as_millis() as u64,
                1,
            )?,
        };
        out.sinks.push(SinkConfig {
            name: sink_name,
            target,
            events,
            timeout: ms(&s.timeout_ms, "timeout_ms", 5000, 1)?,
            retry,
        });
    }
    Ok(out)
}
