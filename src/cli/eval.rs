//! `rcfops eval` and `rcfops stream`: experiments outside the flow, with the pipeline's semantics.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::*;

/// What `rcfops eval` trains: from `--spec` (exactly what a commit would run) or the flags.
struct EvalPlan {
    data: PathBuf,
    dataset: pipeline::Dataset,
    pre: PreprocessSpec,
    forest: rcf_core::ForestConfig,
    test_fraction: f64,
    split_seed: u64,
    scaling: &'static str,
    spec: Option<crate::pipeline::spec::PipelineSpec>,
}

fn read_data(path: &Path) -> Result<Vec<u8>> {
    read_in_halves(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The whole file; a large one is read as two halves on two threads, so the copy from the
/// page cache and the first touch of the buffer's pages are shared between the cores.
pub fn read_in_halves(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len < 8 << 20 {
        return std::fs::read(path);
    }
    let len = usize::try_from(len).map_err(std::io::Error::other)?;
    let mut buf = vec![0u8; len];
    let (head, tail) = buf.split_at_mut(len / 2);
    let mid = head.len() as u64;
    std::thread::scope(|s| {
        let t = s.spawn(|| file.read_exact_at(tail, mid));
        file.read_exact_at(head, 0)?;
        t.join().expect("the reading thread panicked")
    })?;
    // A file that grew while it was read: the rest too, as one read would have.
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match file.read_at(&mut chunk, buf.len() as u64)? {
            0 => return Ok(buf),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn eval_plan(a: &EvalArgs) -> Result<EvalPlan> {
    if let Some(spec_path) = &a.spec {
        let text = std::fs::read_to_string(spec_path)
            .with_context(|| format!("cannot read {}", spec_path.display()))?;
        let spec = crate::pipeline::spec::PipelineSpec::parse(&text).map_err(|e| {
            anyhow!(
                "{}",
                e.0.replacen(
                    crate::pipeline::spec::SPEC_FILE,
                    &spec_path.display().to_string(),
                    1
                )
            )
        })?;
        let data = a.data.clone().unwrap_or_else(|| {
            spec_path
                .parent()
                .unwrap_or(Path::new("."))
                .join(&spec.data.path)
        });
        let size = std::fs::metadata(&data)
            .with_context(|| format!("cannot read {}", data.display()))?
            .len();
        if size > spec.data.max_bytes {
            bail!(
                "{} is {size} bytes, larger than [data] max_bytes = {} in {}",
                data.display(),
                spec.data.max_bytes,
                spec_path.display()
            );
        }
        let name = data.display().to_string();
        let table = crate::pipeline::data::Table::parse_csv(&read_data(&data)?, &name)?;
        let dataset = pipeline::select(&table, &spec.data, &name).map_err(|e| anyhow!(e))?;
        return Ok(EvalPlan {
            data,
            dataset,
            pre: spec.preprocess.clone(),
            forest: spec.forest_config(),
            test_fraction: spec.evaluation.test_fraction,
            split_seed: spec.evaluation.split_seed,
            scaling: spec.preprocess.scaling.name(),
            spec: Some(spec),
        });
    }
    let Some(data) = a.data.clone() else {
        bail!("give the data file: rcfops eval DATA.csv --label COLUMN (or --spec pipeline.toml)");
    };
    let label = a
        .label
        .as_deref()
        .expect("clap requires --label without --spec");
    let name = data.display().to_string();
    let dataset = pipeline::load_labelled(&read_data(&data)?, &name, label, &a.exclude)
        .map_err(|e| anyhow!(e))?;
    let Some(scaling) = Scaling::from_name(&a.scaling) else {
        bail!(
            "--scaling {:?}: use auto, robust, standard or none",
            a.scaling
        );
    };
    if !(0.0..1.0).contains(&a.test_fraction) {
        bail!(
            "--test-fraction {} is out of range: use a share in [0, 1)",
            a.test_fraction
        );
    }
    Ok(EvalPlan {
        data,
        dataset,
        pre: PreprocessSpec {
            scaling,
            log_transform: a.log.clone(),
        },
        forest: rcf_core::ForestConfig {
            num_trees: a.trees,
            num_samples_per_tree: a.samples,
            seed: a.seed,
            time_decay: 0.0,
        },
        test_fraction: a.test_fraction,
        split_seed: a.split_seed,
        scaling: scaling.name(),
        spec: None,
    })
}

pub(super) fn cmd_eval(a: EvalArgs) -> Result<i32> {
    let t0 = std::time::Instant::now();
    let plan = eval_plan(&a)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let data = &plan.dataset;
    let name = plan.data.display().to_string();
    let t = pipeline::train_and_evaluate(
        data,
        &plan.pre,
        plan.forest.clone(),
        plan.test_fraction,
        plan.split_seed,
        0,
    )
    .map_err(|e| anyhow!(e))?;
    // With --spec, the gate decides as it would in a run: a failed gate registers nothing.
    let gate = plan
        .spec
        .as_ref()
        .map(|spec| pipeline::gate(spec, &t.metrics));
    let code = if matches!(gate, Some(Err(_))) { 1 } else { 0 };
    if a.json {
        let doc = serde_json::json!({
            "metrics": t.metrics,
            "timings": {
                "load_ms": load_ms,
                "preprocess_ms": t.timings.preprocess_ms,
                "train_ms": t.timings.train_ms,
                "score_ms": t.timings.score_ms,
                "total_ms": t.timings.total_ms + load_ms,
            },
            "rows": data.x.nrows(),
            "features": data.features,
            "gate": match &gate {
                None => serde_json::Value::Null,
                Some(Ok(())) => serde_json::json!({"passed": true, "error": null}),
                Some(Err(e)) => serde_json::json!({"passed": false, "error": e}),
            },
        });
        println!("{}", serde_json::to_string(&doc)?);
        return Ok(code);
    }
    let m = &t.metrics;
    println!(
        "data        {name}: {} rows, {} features",
        data.x.nrows(),
        data.features.len()
    );
    println!(
        "model       {} trees × {} samples, seed {}, scaling {}",
        plan.forest.num_trees, plan.forest.num_samples_per_tree, plan.forest.seed, plan.scaling
    );
    println!(
        "split       train {} rows, evaluate {} rows ({} anomalies){}",
        m.train_rows,
        m.test_rows,
        m.test_anomalies,
        if plan.test_fraction == 0.0 {
            " — trained and scored on all rows"
        } else {
            ""
        }
    );
    println!("ROC-AUC     {:.4}", m.roc_auc);
    println!("PR-AUC      {:.4}", m.pr_auc);
    println!(
        "threshold   {:.4} (mean + 3σ of training scores)",
        m.threshold
    );
    println!(
        "at threshold: precision {:.4}, recall {:.4}, F1 {:.4}",
        m.precision, m.recall, m.f1
    );
    println!(
        "timings     load {load_ms:.0} ms, preprocess {:.0} ms, train {:.0} ms, score {:.0} ms",
        t.timings.preprocess_ms, t.timings.train_ms, t.timings.score_ms
    );
    match &gate {
        None => {}
        Some(Ok(())) => {
            println!("gate        passed: a commit of this spec would register a version")
        }
        Some(Err(e)) => println!("gate        {e}: a commit of this spec would register nothing"),
    }
    Ok(code)
}

pub(super) fn cmd_stream(a: StreamArgs) -> Result<i32> {
    let alert = a.detector == super::Detector::Alert;
    if alert && a.normalized {
        bail!(
            "--normalized applies to the raw score: use --detector raw --normalized (the alert \
             detector's output is already in [0, 1])"
        );
    }
    let (bytes, name) = if a.data == Path::new("-") {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("cannot read standard input")?;
        (b, "<stdin>".to_string())
    } else {
        (
            std::fs::read(&a.data).with_context(|| format!("cannot read {}", a.data.display()))?,
            a.data.display().to_string(),
        )
    };
    let series =
        crate::stream::read_series(&bytes, &name, a.column.as_deref()).map_err(|e| anyhow!(e))?;
    let config = crate::stream::StreamConfig {
        shingle: a.shingle,
        num_trees: a.trees,
        num_samples_per_tree: a.samples,
        time_decay: a.time_decay,
        seed: a.seed,
    };
    config.validate().map_err(|e| anyhow!(e))?;
    let lines: Vec<f64> = if alert {
        crate::stream::alert_stream(
            &series.values,
            &config,
            &crate::stream::AlertConfig::default(),
            None,
        )
        .map_err(|e| anyhow!(e))?
        .into_iter()
        .map(|p| p.output)
        .collect()
    } else {
        let scores =
            crate::stream::score_stream(&series.values, &config).map_err(|e| anyhow!(e))?;
        if a.normalized {
            scores
                .into_iter()
                .map(|s| crate::stream::nab_normalize(s, a.samples))
                .collect()
        } else {
            scores
        }
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for s in lines {
        if let Err(e) = writeln!(out, "{s}") {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(0);
            }
            return Err(e.into());
        }
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(0),
    }
}
