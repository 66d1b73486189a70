//! The pages, rendered from typed data (pure): no registry, clock or file here, so each page is
//! a function a unit test or a benchmark can call.

use std::fmt::Write;

use super::html::{badge, esc, Page};
use super::svg::{self, Series};
use crate::domain::{ApprovalStatus, Stage, StagingResult};
use crate::pipeline::curves::Curves;
use crate::registry::{format_ts, AuditRow, DeploymentRow, RunRow, StepRow};
use crate::report::{MonitorDoc, StatusDoc};

/// An endpoint's live numbers, from its metrics.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EndpointPanel {
    pub stage: Stage,
    pub requests: u64,
    pub errors: u64,
    /// Since the previous look (`None` on the first).
    pub requests_per_s: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// Who may approve each stage, as the overview names them.
#[derive(Debug, Clone)]
pub struct Approvers {
    pub staging: String,
    pub production: String,
}

fn short(c: &str) -> &str {
    &c[..12.min(c.len())]
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "–".into())
}

/// What waits on whom: one row per version a person must act on.
pub fn waiting(status: &StatusDoc, who: &Approvers) -> Vec<(i64, String, String, String)> {
    let mut rows = Vec::new();
    for v in &status.versions {
        let tag = |action: &str| {
            format!(
                "git tag -a {action}/v{n} {} -m \"{action} v{n}\"",
                short(&v.commit),
                n = v.version
            )
        };
        match (v.approval, v.staging_tests, v.stages.as_slice()) {
            (ApprovalStatus::Pending, _, _) => rows.push((
                v.version,
                format!("approval for staging by {}", who.staging),
                format!("rcfops approve {}", v.version),
                tag("approve"),
            )),
            (ApprovalStatus::Approved, Some(StagingResult::Passed), s) if s == [Stage::Staging] => {
                rows.push((
                    v.version,
                    format!("promotion to production by {}", who.production),
                    format!("rcfops promote {}", v.version),
                    tag("promote"),
                ))
            }
            (ApprovalStatus::Approved, Some(StagingResult::Failed), s) if !s.is_empty() => rows
                .push((
                    v.version,
                    "a decision: its staging tests failed".into(),
                    format!("rcfops reject {}", v.version),
                    tag("reject"),
                )),
            (ApprovalStatus::Approved, None, s) if s == [Stage::Staging] => rows.push((
                v.version,
                "its staging tests (running)".into(),
                "rcfops status".into(),
                String::new(),
            )),
            _ => {}
        }
    }
    rows
}

pub fn overview(
    status: &StatusDoc,
    head: Option<&str>,
    panels: &[EndpointPanel],
    who: &Approvers,
) -> Page {
    let mut b = String::with_capacity(8192);
    b.push_str("<h1>Overview</h1>");
    // The flow as a picture: head → run → pending → staging → production.
    let run = status.runs.first();
    let pending: Vec<String> = status
        .versions
        .iter()
        .filter(|v| v.approval == ApprovalStatus::Pending)
        .map(|v| format!("<a href=\"/versions/{0}\">v{0}</a>", v.version))
        .collect();
    let stage_box = |stage: Stage| {
        let e = status.endpoint(stage);
        match e.version {
            Some(n) => {
                let tests = status
                    .versions
                    .iter()
                    .find(|v| v.version == n)
                    .and_then(|v| v.staging_tests)
                    .map(|t| badge(t.as_str()))
                    .unwrap_or_default();
                let drift = e
                    .monitor
                    .drift
                    .map(|d| format!(" drift {}", badge(d.as_str())))
                    .unwrap_or_default();
                format!("<a href=\"/versions/{n}\">v{n}</a> {tests}{drift}")
            }
            None => "<span class=\"muted\">no model</span>".into(),
        }
    };
    let _ = write!(
        b,
        "<section aria-labelledby=\"flow-h\"><h2 id=\"flow-h\">The flow</h2><div class=\"flow\" id=\"flow\" role=\"list\">\
<div class=\"step\" role=\"listitem\" id=\"step-head\"><strong>Head commit</strong><br>{}</div><span class=\"arrow\" aria-hidden=\"true\">→</span>\
<div class=\"step\" role=\"listitem\" id=\"step-run\"><strong>Latest run</strong><br>{}</div><span class=\"arrow\" aria-hidden=\"true\">→</span>\
<div class=\"step\" role=\"listitem\" id=\"step-pending\"><strong>Pending approval</strong><br>{}</div><span class=\"arrow\" aria-hidden=\"true\">→</span>\
<div class=\"step\" role=\"listitem\" id=\"step-staging\"><strong>Staging</strong><br>{}</div><span class=\"arrow\" aria-hidden=\"true\">→</span>\
<div class=\"step\" role=\"listitem\" id=\"step-production\"><strong>Production</strong><br>{}</div></div></section>",
        head.map(|h| format!("<code>{}</code>", esc(short(h))))
            .unwrap_or_else(|| "<span class=\"muted\">none</span>".into()),
        run.map(|r| format!(
            "run {} {} <code>{}</code>{}",
            r.run,
            badge(r.status.as_str()),
            esc(short(&r.commit)),
            r.error
                .as_deref()
                .map(|e| format!("<br><span class=\"bad\">{}</span>", esc(e)))
                .unwrap_or_default()
        ))
        .unwrap_or_else(|| "<span class=\"muted\">no run yet</span>".into()),
        if pending.is_empty() {
            "<span class=\"muted\">none</span>".to_string()
        } else {
            pending.join(", ")
        },
        stage_box(Stage::Staging),
        stage_box(Stage::Production),
    );
    // What waits on whom.
    b.push_str("<section aria-labelledby=\"wait-h\"><h2 id=\"wait-h\">Waiting on</h2>");
    let rows = waiting(status, who);
    if rows.is_empty() {
        b.push_str("<p class=\"muted\" id=\"waiting-none\">Nothing waits on anyone.</p>");
    } else {
        b.push_str("<div class=\"scroll\"><table id=\"waiting\"><caption class=\"muted\">Versions that wait for a person, and the command or tag that moves them on</caption><thead><tr><th scope=\"col\">version</th><th scope=\"col\">waits for</th><th scope=\"col\">command</th><th scope=\"col\">or the tag</th></tr></thead><tbody>");
        for (n, what, cmd, tag) in rows {
            let _ = write!(
                b,
                "<tr data-version=\"{n}\"><td><a href=\"/versions/{n}\">v{n}</a></td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                esc(&what),
                esc(&cmd),
                esc(&tag)
            );
        }
        b.push_str("</tbody></table></div>");
    }
    b.push_str("</section>");
    // The endpoints.
    b.push_str("<section aria-labelledby=\"ep-h\"><h2 id=\"ep-h\">Endpoints</h2><div class=\"scroll\"><table id=\"endpoints\"><thead><tr><th scope=\"col\">stage</th><th scope=\"col\">name</th><th scope=\"col\">URL</th><th scope=\"col\">version</th><th scope=\"col\" class=\"num\">req/s</th><th scope=\"col\" class=\"num\">p50 ms</th><th scope=\"col\" class=\"num\">p99 ms</th><th scope=\"col\" class=\"num\">requests</th><th scope=\"col\" class=\"num\">errors</th><th scope=\"col\">monitor</th></tr></thead><tbody>");
    for stage in Stage::ALL.iter().copied() {
        let e = status.endpoint(stage);
        let p = panels.iter().find(|p| p.stage == stage);
        let m = &e.monitor;
        let monitor = match (&m.capture, m.drift) {
            (None, _) => "<span class=\"muted\">capture off</span>".to_string(),
            (Some(c), d) => format!(
                "capture {}%{}{}",
                c.sampling_percent,
                d.map(|d| format!(", drift {}", badge(d.as_str())))
                    .unwrap_or_default(),
                c.error
                    .as_deref()
                    .map(|e| format!(", <span class=\"bad\">stopped: {}</span>", esc(e)))
                    .unwrap_or_default()
            ),
        };
        let _ = write!(
            b,
            "<tr id=\"endpoint-{stage}\" data-version=\"{}\"><th scope=\"row\">{stage}</th><td>{}</td><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{monitor}</td></tr>",
            e.version.map(|v| v.to_string()).unwrap_or_default(),
            esc(&e.name),
            esc(&e.url),
            e.version
                .map(|v| format!("<a href=\"/versions/{v}\">v{v}</a>"))
                .unwrap_or_else(|| "<span class=\"muted\">no model</span>".into()),
            opt(p.and_then(|p| p.requests_per_s), 1),
            opt(p.and_then(|p| p.p50_ms), 2),
            opt(p.and_then(|p| p.p99_ms), 2),
            p.map(|p| p.requests).unwrap_or(0),
            p.map(|p| p.errors).unwrap_or(0),
        );
    }
    b.push_str("</tbody></table></div></section>");
    Page::new("Overview", "/", b)
}

/// The versions table's sort keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Version,
    RocAuc,
    PrAuc,
    Approval,
}

impl std::str::FromStr for SortKey {
    type Err = String;
    fn from_str(s: &str) -> Result<SortKey, String> {
        Ok(match s {
            "version" => SortKey::Version,
            "roc_auc" => SortKey::RocAuc,
            "pr_auc" => SortKey::PrAuc,
            "approval" => SortKey::Approval,
            other => {
                return Err(format!(
                    "sort={other:?} is not a column: use version, roc_auc, pr_auc or approval"
                ))
            }
        })
    }
}

pub fn versions(status: &StatusDoc, sort: SortKey, descending: bool) -> Page {
    let mut vs: Vec<_> = status.versions.iter().collect();
    vs.sort_by(|a, b| {
        let o = match sort {
            SortKey::Version => a.version.cmp(&b.version),
            SortKey::RocAuc => a.metrics.roc_auc.total_cmp(&b.metrics.roc_auc),
            SortKey::PrAuc => a.metrics.pr_auc.total_cmp(&b.metrics.pr_auc),
            SortKey::Approval => a.approval.as_str().cmp(b.approval.as_str()),
        };
        if descending {
            o.reverse()
        } else {
            o
        }
    });
    let head = |key: &str, label: &str, k: SortKey| {
        let (order, mark, aria) = match (sort == k, descending) {
            (true, true) => ("asc", " ▼", "descending"),
            (true, false) => ("desc", " ▲", "ascending"),
            _ => ("desc", "", "none"),
        };
        format!(
            "<th scope=\"col\" aria-sort=\"{aria}\"><a href=\"/versions?sort={key}&amp;order={order}\">{label}{mark}</a></th>"
        )
    };
    let mut b = String::with_capacity(256 + 400 * vs.len());
    let _ = write!(
        b,
        "<h1>Versions</h1><div class=\"scroll\"><table id=\"versions\"><caption class=\"muted\">{} versions; click a column to sort</caption><thead><tr>{}<th scope=\"col\">commit</th>{}{}{}<th scope=\"col\">stage</th><th scope=\"col\">staging tests</th><th scope=\"col\">registered</th></tr></thead><tbody>",
        vs.len(),
        head("version", "version", SortKey::Version),
        head("approval", "approval", SortKey::Approval),
        head("roc_auc", "ROC-AUC", SortKey::RocAuc),
        head("pr_auc", "PR-AUC", SortKey::PrAuc),
    );
    for v in vs {
        let _ = write!(
            b,
            "<tr data-version=\"{n}\"><td><a href=\"/versions/{n}\">v{n}</a></td><td><code>{}</code></td><td>{}</td><td class=\"num\">{:.4}</td><td class=\"num\">{:.4}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(short(&v.commit)),
            badge(v.approval.as_str()),
            v.metrics.roc_auc,
            v.metrics.pr_auc,
            v.stages
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            v.staging_tests
                .map(|t| badge(t.as_str()))
                .unwrap_or_else(|| "–".into()),
            esc(&v.registered_at),
            n = v.version
        );
    }
    b.push_str("</tbody></table></div>");
    Page::new("Versions", "/versions", b)
}

/// Everything the version page shows.
pub struct VersionPage<'a> {
    pub status: &'a StatusDoc,
    pub approvers: &'a Approvers,
    pub version: &'a crate::report::VersionDoc,
    pub data_sha256: &'a str,
    pub curves: Option<&'a Curves>,
    /// The production version's curves, when another version serves production.
    pub production: Option<(i64, &'a Curves)>,
    pub audit: &'a [AuditRow],
}

pub fn version(p: &VersionPage) -> Page {
    let v = p.version;
    let n = v.version;
    let mut b = String::with_capacity(32 * 1024);
    let _ = write!(
        b,
        "<h1>Version v{n} {}</h1><div class=\"cards\"><section class=\"card\" aria-labelledby=\"lin-h\"><h2 id=\"lin-h\">Lineage</h2><dl id=\"lineage\"><dt>commit</dt><dd><code>{}</code></dd><dt>model group</dt><dd>{}</dd><dt>data sha256</dt><dd><code>{}</code></dd><dt>artifact sha256</dt><dd><code>{}</code></dd><dt>registered</dt><dd>{}</dd><dt>stages</dt><dd>{}</dd></dl></section>",
        badge(v.approval.as_str()),
        esc(&v.commit),
        esc(&v.model_group),
        esc(p.data_sha256),
        esc(&v.artifact_sha256),
        esc(&v.registered_at),
        if v.stages.is_empty() {
            "none".to_string()
        } else {
            v.stages.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        }
    );
    let next: Vec<_> = waiting(p.status, p.approvers)
        .into_iter()
        .filter(|w| w.0 == n)
        .collect();
    if let Some((_, what, cmd, tag)) = next.first() {
        let _ = write!(
            b,
            "<section class=\"card\" id=\"next\" aria-labelledby=\"next-h\"><h2 id=\"next-h\">Next</h2><p>v{n} waits for {}: <code>{}</code>{}</p></section>",
            esc(what),
            esc(cmd),
            if tag.is_empty() {
                String::new()
            } else {
                format!(" or <code>{}</code>", esc(tag))
            }
        );
    }
    let m = &v.metrics;
    let _ = write!(
        b,
        "<section class=\"card\" aria-labelledby=\"met-h\"><h2 id=\"met-h\">Evaluation</h2><table id=\"metrics\"><tbody><tr><th scope=\"row\">ROC-AUC</th><td class=\"num\">{:.4}</td></tr><tr><th scope=\"row\">PR-AUC</th><td class=\"num\">{:.4}</td></tr><tr><th scope=\"row\">threshold</th><td class=\"num\">{:.4}</td></tr><tr><th scope=\"row\">precision</th><td class=\"num\">{:.4}</td></tr><tr><th scope=\"row\">recall</th><td class=\"num\">{:.4}</td></tr><tr><th scope=\"row\">held-out rows / anomalies</th><td class=\"num\">{} / {}</td></tr></tbody></table></section></div>",
        m.roc_auc, m.pr_auc, m.threshold, m.precision, m.recall, m.test_rows, m.test_anomalies
    );
    b.push_str("<section aria-labelledby=\"cur-h\"><h2 id=\"cur-h\">Curves</h2>");
    match p.curves {
        None => b.push_str("<p class=\"muted\" id=\"curves-none\">Curves not recorded (registered before they were kept).</p>"),
        Some(c) => {
            let own = format!("v{n}");
            let prod = p.production.map(|(pv, pc)| (format!("v{pv} (production)"), pc));
            let mut roc = vec![Series {
                name: &own,
                class: "s0",
                points: &c.roc,
            }];
            let mut pr = vec![Series {
                name: &own,
                class: "s0",
                points: &c.pr,
            }];
            if let Some((name, pc)) = &prod {
                roc.push(Series {
                    name,
                    class: "s1",
                    points: &pc.roc,
                });
                pr.push(Series {
                    name,
                    class: "s1",
                    points: &pc.pr,
                });
            }
            let vs = prod
                .as_ref()
                .map(|(name, _)| format!(", overlaid on {name}"))
                .unwrap_or_default();
            b.push_str("<div class=\"charts\">");
            b.push_str(&svg::line_chart(
                "roc",
                &format!("ROC curve, v{n}{vs}"),
                &format!(
                    "ROC-AUC {:.4} over {} held-out records ({} frauds); {} points",
                    m.roc_auc,
                    c.records,
                    c.frauds,
                    c.roc.len()
                ),
                "false-positive rate",
                "true-positive rate",
                (0.0, 1.0),
                (0.0, 1.0),
                &roc,
            ));
            b.push_str(&svg::line_chart(
                "pr",
                &format!("Precision–recall curve, v{n}{vs}"),
                &format!("PR-AUC {:.4}; {} points", m.pr_auc, c.pr.len()),
                "recall",
                "precision",
                (0.0, 1.0),
                (0.0, 1.0),
                &pr,
            ));
            b.push_str(&svg::histogram(
                "hist",
                &format!("Evaluation scores, v{n}"),
                &format!(
                    "Scores of {} normal and {} fraud records; the threshold {:.4} alerts on {} frauds and {} normals",
                    c.records - c.frauds,
                    c.frauds,
                    c.threshold,
                    c.confusion.true_positives,
                    c.confusion.false_positives
                ),
                &c.histogram.edges,
                &[
                    ("normal", "s0", &c.histogram.normal),
                    ("fraud", "s1", &c.histogram.fraud),
                ],
                c.threshold,
            ));
            b.push_str("</div>");
            let k = &c.confusion;
            let _ = write!(
                b,
                "<h2 id=\"conf-h\">At the threshold</h2><table id=\"confusion\" aria-labelledby=\"conf-h\"><thead><tr><th></th><th scope=\"col\">fraud</th><th scope=\"col\">normal</th></tr></thead><tbody><tr><th scope=\"row\">alert</th><td class=\"num\">{}</td><td class=\"num\">{}</td></tr><tr><th scope=\"row\">no alert</th><td class=\"num\">{}</td><td class=\"num\">{}</td></tr></tbody></table>",
                k.true_positives, k.false_positives, k.false_negatives, k.true_negatives
            );
        }
    }
    b.push_str("</section>");
    let _ = write!(
        b,
        "<section aria-labelledby=\"st-h\"><h2 id=\"st-h\">Staging tests</h2><p id=\"staging\">{} {}</p></section>",
        v.staging_tests
            .map(|t| badge(t.as_str()))
            .unwrap_or_else(|| "<span class=\"muted\">not run</span>".into()),
        esc(v.staging_detail.as_deref().unwrap_or(""))
    );
    let _ = write!(
        b,
        "<section aria-labelledby=\"hp-h\"><h2 id=\"hp-h\">Hyperparameters</h2><pre id=\"hyperparameters\">{}</pre></section>",
        esc(&serde_json::to_string_pretty(&v.hyperparameters).unwrap_or_default())
    );
    b.push_str("<section aria-labelledby=\"au-h\"><h2 id=\"au-h\">Audit events</h2>");
    b.push_str(&audit_table(p.audit));
    b.push_str("</section>");
    Page::new(&format!("v{n}"), "/versions", b)
}

fn audit_table(rows: &[AuditRow]) -> String {
    let mut b = String::with_capacity(128 + 200 * rows.len());
    b.push_str("<div class=\"scroll\"><table class=\"audit\"><thead><tr><th scope=\"col\">#</th><th scope=\"col\">when</th><th scope=\"col\">event</th><th scope=\"col\">version</th><th scope=\"col\">who</th><th scope=\"col\">how</th><th scope=\"col\">detail</th></tr></thead><tbody>");
    for a in rows {
        let _ = write!(
            b,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            a.id,
            format_ts(a.at_ts),
            esc(&a.event),
            a.version
                .map(|v| format!("<a href=\"/versions/{v}\">v{v}</a>"))
                .unwrap_or_default(),
            esc(&a.actor),
            esc(&a.how),
            esc(a.detail.as_deref().unwrap_or(""))
        );
    }
    b.push_str("</tbody></table></div>");
    b
}

pub fn runs(runs: &[(RunRow, Vec<StepRow>)]) -> Page {
    let mut b = String::from("<h1>Runs</h1>");
    if runs.is_empty() {
        b.push_str("<p class=\"muted\">No run yet: commit to the model repo.</p>");
    }
    for (r, steps) in runs {
        let mut at = 0.0;
        let rows: Vec<(String, f64, f64)> = steps
            .iter()
            .map(|s| {
                let d = s.duration_ms.unwrap_or(0.0);
                let row = (format!("{} ({})", s.step, s.status), at, d);
                at += d;
                row
            })
            .collect();
        let _ = write!(
            b,
            "<section class=\"card run\" id=\"run-{}\" aria-labelledby=\"run-{}-h\"><h2 id=\"run-{}-h\">Run {} {} <code>{}</code> {}</h2>{}",
            r.run,
            r.run,
            r.run,
            r.run,
            badge(r.status.as_str()),
            esc(short(&r.commit)),
            r.version
                .map(|v| format!("→ <a href=\"/versions/{v}\">v{v}</a>"))
                .unwrap_or_default(),
            r.error
                .as_deref()
                .map(|e| format!("<p class=\"bad\">{}</p>", esc(e)))
                .unwrap_or_default()
        );
        if !rows.is_empty() {
            b.push_str(&svg::bars(
                &format!("run-{}-steps", r.run),
                &format!("Run {} steps", r.run),
                &rows
                    .iter()
                    .map(|(l, _, d)| format!("{l} {d:.0} ms"))
                    .collect::<Vec<_>>()
                    .join(", "),
                "milliseconds since the run started",
                &rows,
            ));
        }
        b.push_str("</section>");
    }
    Page::new("Runs", "/runs", b)
}

pub fn timeline(deployments: &[DeploymentRow], now_ts: f64) -> Page {
    let mut b = String::from("<h1>Stage timeline</h1><p class=\"muted\">Which version served each stage, and when.</p><div class=\"scroll\"><table id=\"timeline\"><thead><tr><th scope=\"col\">stage</th><th scope=\"col\">version</th><th scope=\"col\">from</th><th scope=\"col\">until</th><th scope=\"col\">why</th></tr></thead><tbody>");
    for stage in Stage::ALL.iter().copied() {
        let mine: Vec<&DeploymentRow> = deployments.iter().filter(|d| d.stage == stage).collect();
        for (i, d) in mine.iter().enumerate() {
            let until = mine
                .get(i + 1)
                .map(|n| format_ts(n.at_ts))
                .unwrap_or_else(|| format!("now ({})", format_ts(now_ts)));
            let _ = write!(
                b,
                "<tr data-stage=\"{stage}\"><th scope=\"row\">{stage}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                d.version
                    .map(|v| format!("<a href=\"/versions/{v}\">v{v}</a>"))
                    .unwrap_or_else(|| "<span class=\"muted\">no model</span>".into()),
                format_ts(d.at_ts),
                esc(&until),
                esc(&d.reason)
            );
        }
    }
    b.push_str("</tbody></table></div>");
    Page::new("Stage timeline", "/timeline", b)
}

/// The audit page's filter, as given in the query string.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    pub event: Option<String>,
    pub version: Option<i64>,
    pub actor: Option<String>,
}

pub fn audit(rows: &[AuditRow], f: &AuditFilter) -> Page {
    let mut b = String::from("<h1>Audit trail</h1>");
    let _ = write!(
        b,
        "<form class=\"filter\" method=\"get\" action=\"/audit\" role=\"search\"><label>event starts with<input name=\"event\" value=\"{}\"></label><label>version<input name=\"version\" inputmode=\"numeric\" value=\"{}\"></label><label>actor<input name=\"actor\" value=\"{}\"></label><button type=\"submit\">Filter</button> <a href=\"/audit\">clear</a></form><p class=\"muted\" id=\"audit-count\">{} events</p>",
        esc(f.event.as_deref().unwrap_or("")),
        f.version.map(|v| v.to_string()).unwrap_or_default(),
        esc(f.actor.as_deref().unwrap_or("")),
        rows.len()
    );
    b.push_str(&audit_table(rows));
    Page::new("Audit trail", "/audit", b)
}

pub fn monitor(doc: &MonitorDoc) -> Page {
    let mut b = String::from("<h1>Model Monitor</h1>");
    if !doc.capture {
        b.push_str("<p class=\"muted\" id=\"monitor-off\">Data capture is off: set <code>[monitoring] capture = true</code> in config.toml and restart the agent.</p>");
    }
    for s in &doc.stages {
        let _ = write!(
            b,
            "<section aria-labelledby=\"mon-{0}-h\"><h2 id=\"mon-{0}-h\">{0}</h2>",
            s.stage
        );
        for v in &s.versions {
            let _ = write!(
                b,
                "<div class=\"card\" id=\"monitor-{}-v{}\"><h3>v{} · {} records captured · drift {} · quality {}</h3>",
                s.stage,
                v.version,
                v.version,
                v.captured_records,
                v.drift
                    .as_ref()
                    .map(|d| badge(d.verdict.as_str()))
                    .unwrap_or_else(|| "–".into()),
                v.quality
                    .as_ref()
                    .map(|d| badge(d.verdict.as_str()))
                    .unwrap_or_else(|| "–".into()),
            );
            if !v.baseline {
                b.push_str("<p class=\"muted\">No baseline (registered before monitoring): not compared.</p></div>");
                continue;
            }
            if !v.windows.is_empty() {
                let idx = |i: usize| i as f64;
                let psi: Vec<(f64, f64)> = v
                    .windows
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (idx(i), w.stats.score_psi))
                    .collect();
                let ks: Vec<(f64, f64)> = v
                    .windows
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (idx(i), w.stats.ks_statistic))
                    .collect();
                let top = psi.iter().chain(&ks).map(|p| p.1).fold(0.3f64, f64::max);
                b.push_str("<div class=\"charts\">");
                b.push_str(&svg::line_chart(
                    &format!("drift-{}-{}", s.stage, v.version),
                    &format!("Score drift per window, v{}", v.version),
                    &format!(
                        "{} windows; latest score PSI {:.3}, KS {:.3}",
                        v.windows.len(),
                        psi.last().map(|p| p.1).unwrap_or(0.0),
                        ks.last().map(|p| p.1).unwrap_or(0.0)
                    ),
                    "window",
                    "statistic",
                    (0.0, (v.windows.len().max(2) - 1) as f64),
                    (0.0, top),
                    &[
                        Series {
                            name: "score PSI",
                            class: "s0",
                            points: &psi,
                        },
                        Series {
                            name: "KS",
                            class: "s1",
                            points: &ks,
                        },
                    ],
                ));
                b.push_str("</div><div class=\"scroll\"><table><thead><tr><th scope=\"col\">closed</th><th scope=\"col\" class=\"num\">records</th><th scope=\"col\" class=\"num\">PSI</th><th scope=\"col\" class=\"num\">KS</th><th scope=\"col\" class=\"num\">alert rate</th><th scope=\"col\">level</th><th scope=\"col\">verdict</th><th scope=\"col\">drifted</th></tr></thead><tbody>");
                for w in v.windows.iter().rev().take(20) {
                    let _ = write!(
                        b,
                        "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.2}%</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        format_ts(w.closed_ts),
                        w.records,
                        w.stats.score_psi,
                        w.stats.ks_statistic,
                        w.stats.alert_rate * 100.0,
                        w.level.map(|l| badge(l.as_str())).unwrap_or_else(|| "–".into()),
                        badge(w.verdict.as_str()),
                        esc(&w.stats.drifted_features.join(", "))
                    );
                }
                b.push_str("</tbody></table></div>");
            }
            if !v.live_quality.is_empty() {
                b.push_str("<table><caption>Live quality</caption><thead><tr><th scope=\"col\">day</th><th scope=\"col\" class=\"num\">labels</th><th scope=\"col\" class=\"num\">frauds</th><th scope=\"col\" class=\"num\">ROC-AUC</th><th scope=\"col\" class=\"num\">PR-AUC</th><th scope=\"col\" class=\"num\">precision</th><th scope=\"col\" class=\"num\">recall</th></tr></thead><tbody>");
                for q in &v.live_quality {
                    let _ = write!(
                        b,
                        "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.4}</td><td class=\"num\">{:.4}</td></tr>",
                        q.day,
                        q.records,
                        q.frauds,
                        opt(q.roc_auc, 4),
                        opt(q.pr_auc, 4),
                        q.precision,
                        q.recall
                    );
                }
                b.push_str("</tbody></table>");
                let live: Vec<(f64, f64)> = v
                    .live_quality
                    .iter()
                    .enumerate()
                    .filter_map(|(i, q)| q.pr_auc.map(|p| (i as f64, p)))
                    .collect();
                let last = (v.live_quality.len().max(2) - 1) as f64;
                let eval: Vec<(f64, f64)> = v
                    .eval_pr_auc
                    .map(|e| vec![(0.0, e), (last, e)])
                    .unwrap_or_default();
                b.push_str("<div class=\"charts\">");
                b.push_str(&svg::line_chart(
                    &format!("quality-{}-{}", s.stage, v.version),
                    &format!("Live PR-AUC per day, v{}", v.version),
                    &format!(
                        "{} days with labels; latest live PR-AUC {}; evaluation PR-AUC {}",
                        v.live_quality.len(),
                        opt(live.last().map(|p| p.1), 4),
                        opt(v.eval_pr_auc, 4)
                    ),
                    "day",
                    "PR-AUC",
                    (0.0, last),
                    (0.0, 1.0),
                    &[
                        Series {
                            name: "live",
                            class: "s0",
                            points: &live,
                        },
                        Series {
                            name: "evaluation",
                            class: "s2",
                            points: &eval,
                        },
                    ],
                ));
                b.push_str("</div>");
            }
            b.push_str("</div>");
        }
        if s.versions.is_empty() {
            b.push_str("<p class=\"muted\">No live traffic captured yet.</p>");
        }
        b.push_str("</section>");
    }
    Page::new("Monitor", "/monitor", b)
}

/// The line every page carries: the first thing that waits on someone, and how to move it.
pub fn next_line(status: &StatusDoc, who: &Approvers) -> String {
    match waiting(status, who).into_iter().next() {
        Some((n, what, cmd, tag)) => format!(
            "<strong>Next:</strong> v{n} waits for {}: <code>{}</code>{}",
            esc(&what),
            esc(&cmd),
            if tag.is_empty() {
                String::new()
            } else {
                format!(" or <code>{}</code>", esc(&tag))
            }
        ),
        None => "Nothing waits on anyone.".into(),
    }
}

/// A 400 or 404 page that says what was wrong and where to go.
pub fn error(status: u16, message: &str) -> Page {
    Page::new(
        &format!("{status}"),
        "",
        format!(
            "<h1>{}</h1><p id=\"error\">{}</p><p><a href=\"/\">Back to the overview</a></p>",
            if status == 404 {
                "Not found"
            } else {
                "Bad request"
            },
            esc(message)
        ),
    )
}
