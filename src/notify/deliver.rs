//! One delivery attempt of one event to one sink: the HTTP POST (webhook, Slack) or the
//! program run (command). Never follows a redirect; every secret stays out of the answer.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::policy::{parse_retry_after, Attempt};
use super::{cloudevent, message_id, summary, Stored};
use crate::config::{SinkConfig, Target};

/// How much of a receiver's answer is kept (logs, `notify list`, `notify test`).
const ANSWER_BYTES: usize = 500;

/// Delivers events; one per agent (it holds the HTTP connection pool).
pub struct Deliverer {
    client: reqwest::Client,
    instance: String,
}

/// An attempt and what the receiver answered, for people.
#[derive(Debug, Clone)]
pub struct Answered {
    pub attempt: Attempt,
    pub answer: String,
}

impl Deliverer {
    /// `instance`: the registry's id, part of every message id.
    pub fn new(instance: String) -> Result<Deliverer, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rcfops/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Deliverer { client, instance })
    }

    /// One attempt, within the sink's timeout.
    pub async fn attempt(&self, sink: &SinkConfig, e: &Stored) -> Answered {
        let envelope = cloudevent(&self.instance, e);
        match &sink.target {
            Target::Webhook { url, secret } => {
                let body = serde_json::to_vec(&envelope).expect("plain JSON");
                let id = message_id(&self.instance, e.id);
                let ts = crate::registry::now_ts().floor() as i64;
                let req = self
                    .client
                    .post(url.clone())
                    .header("content-type", "application/cloudevents+json")
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", secret.sign(&id, ts, &body))
                    .body(body);
                self.post(req, sink.timeout).await
            }
            Target::Slack { url, .. } => {
                let req = self
                    .client
                    .post(url.clone())
                    .json(&slack_body(&envelope, e));
                self.post(req, sink.timeout).await
            }
            Target::Command { argv } => run_command(argv, &envelope, e, sink.timeout).await,
        }
    }

    async fn post(&self, req: reqwest::RequestBuilder, timeout: Duration) -> Answered {
        let sent = tokio::time::timeout(timeout, async {
            let resp = req.send().await?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let location = resp.headers().contains_key(reqwest::header::LOCATION);
            let text = resp.text().await.unwrap_or_default();
            Ok::<_, reqwest::Error>((status, retry_after, location, text))
        })
        .await;
        match sent {
            Err(_) => failed(None, format!("no answer within {} ms", timeout.as_millis())),
            // `without_url`: a Slack URL is a secret.
            Ok(Err(e)) => failed(None, format!("{}", e.without_url())),
            Ok(Ok((status, retry_after, location, text))) => {
                let code = status.as_u16();
                let answer = format!("HTTP {status}{}", clip(&text));
                if status.is_success() {
                    Answered {
                        attempt: Attempt::Delivered { status: code },
                        answer,
                    }
                } else if code == 410 {
                    Answered {
                        attempt: Attempt::Gone,
                        answer,
                    }
                } else {
                    let redirect = if status.is_redirection() && location {
                        " (redirects are not followed: configure the final URL)"
                    } else {
                        ""
                    };
                    Answered {
                        attempt: Attempt::Failed {
                            status: Some(code),
                            error: format!("{answer}{redirect}"),
                            retry_after: retry_after
                                .and_then(|v| parse_retry_after(&v, crate::registry::now_ts())),
                        },
                        answer: format!("{answer}{redirect}"),
                    }
                }
            }
        }
    }
}

fn failed(status: Option<u16>, error: String) -> Answered {
    Answered {
        attempt: Attempt::Failed {
            status,
            error: error.clone(),
            retry_after: None,
        },
        answer: error,
    }
}

/// `: <the first bytes of text>` (nothing for an empty answer).
fn clip(text: &str) -> String {
    let t = text.trim();
    if t.is_empty() {
        return String::new();
    }
    let mut end = t.len().min(ANSWER_BYTES);
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    let more = if end < t.len() { "…" } else { "" };
    format!(": {}{more}", &t[..end])
}

/// Slack's incoming-webhook body: a `text` fallback and `blocks`.
pub fn slack_body(envelope: &serde_json::Value, e: &Stored) -> serde_json::Value {
    let text = summary(&e.data);
    let mut context = vec![format!("`{}`", e.data.event)];
    if let Some(c) = &e.data.commit {
        context.push(format!("commit `{}`", &c[..c.len().min(12)]));
    }
    context.push(format!("audit event {}", e.data.audit_id));
    context.push(format!("id `{}`", envelope["id"].as_str().unwrap_or("")));
    let mut blocks = vec![
        serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}),
        serde_json::json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context.join(" · ")}]}),
    ];
    if let Some(n) = &e.data.next {
        let mut t = format!("*Next:* `{}`", n.command);
        if let Some(tag) = &n.tag {
            t.push_str(&format!(" or `{tag}`"));
        }
        blocks.insert(
            1,
            serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": t}}),
        );
    }
    serde_json::json!({ "text": text, "blocks": blocks })
}

async fn run_command(
    argv: &[String],
    envelope: &serde_json::Value,
    e: &Stored,
    timeout: Duration,
) -> Answered {
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env("RCFOPS_EVENT_ID", envelope["id"].as_str().unwrap_or(""))
        .env("RCFOPS_EVENT_TYPE", e.data.event.as_str())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(err) => return failed(None, format!("cannot run {}: {err}", argv[0])),
    };
    let body = serde_json::to_vec(envelope).expect("plain JSON");
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A program that does not read its input still gets to answer.
            let _ = stdin.write_all(&body).await;
            let _ = stdin.shutdown().await;
        }
        child.wait_with_output().await
    };
    match tokio::time::timeout(timeout, run).await {
        Err(_) => failed(
            None,
            format!(
                "{} did not finish within {} ms (killed)",
                argv[0],
                timeout.as_millis()
            ),
        ),
        Ok(Err(err)) => failed(None, format!("{}: {err}", argv[0])),
        Ok(Ok(out)) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                Answered {
                    attempt: Attempt::Delivered { status: 0 },
                    answer: format!("exit status 0{}", clip(&stdout)),
                }
            } else {
                failed(None, format!("{}{}", out.status, clip(&stderr)))
            }
        }
    }
}
