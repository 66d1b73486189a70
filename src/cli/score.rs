//! `rcfops score`: records scored on a stage's live endpoint.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};

use super::*;

pub(super) fn cmd_score(cfg: &Config, stage: &str, file: Option<PathBuf>) -> Result<i32> {
    let (staging, production) = agent::endpoint_urls(cfg);
    // `prod` is accepted too: it is how SageMaker names the production endpoint.
    let url = match (stage == "prod")
        .then_some(Stage::Production)
        .or(stage.parse().ok())
    {
        Some(Stage::Staging) => staging,
        Some(Stage::Production) => production,
        None => bail!("unknown stage {stage:?}: use `staging` or `production`"),
    };
    let mut body = Vec::new();
    match &file {
        Some(p) => {
            body = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
        }
        None => {
            std::io::stdin().read_to_end(&mut body)?;
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, text) = rt
        .block_on(async {
            let resp = reqwest::Client::builder()
                .no_proxy()
                .build()?
                .post(format!("{url}/invocations"))
                .header("content-type", "text/csv")
                .header("accept", "application/jsonlines")
                .body(body)
                .send()
                .await?;
            let status = resp.status();
            Ok::<_, reqwest::Error>((status, resp.text().await?))
        })
        .map_err(|e| {
            anyhow::Error::new(e).context(Failed(format!(
                "cannot reach the {stage} endpoint at {url}; is the agent running (`rcfops up`)?"
            )))
        })?;
    if !status.is_success() {
        eprintln!("{stage} endpoint answered {status}: {text}");
        return Ok(1);
    }
    for s in
        crate::stagetest::parse_scores(&text, "application/jsonlines").map_err(|e| anyhow!(e))?
    {
        println!("{s}");
    }
    Ok(0)
}
