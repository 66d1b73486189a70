//! `rcfops score`: records scored on a stage's live endpoint.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};

use super::*;

pub(super) fn cmd_score(cfg: &Config, stage: &str, file: Option<PathBuf>) -> Result<i32> {
    let (staging, production) = agent::endpoint_urls(cfg);
    // `prod` is accepted too: it is how SageMaker names the production endpoint.
    let (url, ecfg) = match (stage == "prod")
        .then_some(Stage::Production)
        .or(stage.parse().ok())
    {
        Some(Stage::Staging) => (staging, &cfg.staging),
        Some(Stage::Production) => (production, &cfg.production),
        None => bail!("unknown stage {stage:?}: use `staging` or `production`"),
    };
    // A stage on Kubernetes is called through its Service.
    let url = match &ecfg.target {
        crate::config::DeployTarget::Kubernetes { url } => url.clone(),
        crate::config::DeployTarget::Local => url,
    };
    let signer = ecfg.auth.verifier().map(|v| v.signer());
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
            let trust = crate::stagetest::trust_for(ecfg);
            let client = crate::stagetest::client(std::time::Duration::from_secs(60), &trust)
                .map_err(|e| anyhow!(e))?;
            let resp = crate::stagetest::post(
                &client,
                signer.as_ref(),
                &format!("{url}/invocations"),
                &[
                    ("content-type", "text/csv"),
                    ("accept", "application/jsonlines"),
                ],
                body,
            )
            .map_err(|e| anyhow!(e))?
            .send()
            .await?;
            let status = resp.status();
            Ok::<_, anyhow::Error>((status, resp.text().await?))
        })
        .map_err(|e| {
            e.context(Failed(format!(
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
