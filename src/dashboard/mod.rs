//! The dashboard: read-only HTML pages and `/api/…` JSON over the registry, served by the
//! agent on `[dashboard] listen` (default `127.0.0.1:8090`).
//!
//! Pages are rendered on the server (`pages`, pure) with inline SVG charts (`svg`, pure); the
//! one script (`html`) only refreshes an open page when `/events` (server-sent events) says
//! something changed: the registry's change stamp is polled twice a second. Nothing here
//! writes anything: approvals stay git tags, and each page names the command or tag that
//! moves the flow on.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::config::Config;
use crate::domain::Stage;
use crate::registry::Registry;
use crate::report::{monitor_doc, status_doc};
use crate::serve::Endpoint;

pub mod html;
pub mod pages;
pub mod svg;

use pages::{Approvers, AuditFilter, EndpointPanel, SortKey, VersionPage};

/// Audit events shown on the audit page and on a version page at most.
const AUDIT_LIMIT: usize = 500;
/// Runs shown on the runs page.
const RUNS_LIMIT: usize = 50;

/// What the handlers share.
pub struct Dashboard {
    cfg: Config,
    registry: Arc<Registry>,
    endpoints: Vec<Arc<Endpoint>>,
    /// Per stage: when the request count was last read, and its value (for req/s).
    last: Mutex<HashMap<Stage, (Instant, u64)>>,
    /// Becomes true when the agent stops: open event streams end so the server can.
    stopping: tokio::sync::watch::Receiver<bool>,
}

type St = State<Arc<Dashboard>>;

impl Dashboard {
    pub fn new(
        cfg: Config,
        registry: Arc<Registry>,
        endpoints: Vec<Arc<Endpoint>>,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> Arc<Self> {
        Arc::new(Dashboard {
            cfg,
            registry,
            endpoints,
            last: Mutex::new(HashMap::new()),
            stopping,
        })
    }

    fn panels(&self) -> Vec<EndpointPanel> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        self.endpoints
            .iter()
            .map(|ep| {
                let t = ep.metrics().totals();
                let now = Instant::now();
                let rate = last.get(&ep.stage).and_then(|(at, n)| {
                    let secs = now.duration_since(*at).as_secs_f64();
                    (secs > 0.05).then(|| (t.requests.saturating_sub(*n)) as f64 / secs)
                });
                last.insert(ep.stage, (now, t.requests));
                EndpointPanel {
                    stage: ep.stage,
                    requests: t.requests,
                    errors: t.errors,
                    requests_per_s: rate,
                    p50_ms: t.p50_s.map(|s| s * 1e3),
                    p99_ms: t.p99_s.map(|s| s * 1e3),
                }
            })
            .collect()
    }

    fn approvers(&self) -> Approvers {
        let list = |l: &[String]| {
            if l.is_empty() && self.cfg.approvals.approvers.is_empty() {
                "anyone".to_string()
            } else if l.is_empty() {
                self.cfg.approvals.approvers.join(", ")
            } else {
                l.join(", ")
            }
        };
        Approvers {
            staging: list(&self.cfg.approvals.staging_approvers),
            production: list(&self.cfg.approvals.production_approvers),
        }
    }

    fn head(&self) -> Option<String> {
        crate::repo::ModelRepo::open(&self.cfg.repo.path)
            .ok()?
            .head(&self.cfg.repo.branch)
            .ok()?
    }
}

/// A page or an answer that went wrong, as the user sees it.
enum Failure {
    BadRequest(String),
    NotFound(String),
    Internal(String),
}

impl Failure {
    fn page(self) -> Response {
        let (code, msg) = match self {
            Failure::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            Failure::NotFound(m) => (StatusCode::NOT_FOUND, m),
            Failure::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
        };
        (code, Html(pages::error(code.as_u16(), &msg).render(""))).into_response()
    }

    fn json(self) -> Response {
        let (code, msg) = match self {
            Failure::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            Failure::NotFound(m) => (StatusCode::NOT_FOUND, m),
            Failure::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
        };
        (code, axum::Json(serde_json::json!({ "error": msg }))).into_response()
    }
}

impl From<crate::registry::RegistryError> for Failure {
    fn from(e: crate::registry::RegistryError) -> Failure {
        Failure::Internal(e.to_string())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Internal(format!("{e:#}"))
    }
}

/// Runs a registry read on the blocking pool.
async fn blocking<T: Send + 'static>(
    d: &Arc<Dashboard>,
    f: impl FnOnce(&Dashboard) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    let d = d.clone();
    tokio::task::spawn_blocking(move || f(&d))
        .await
        .unwrap_or_else(|_| Err(Failure::Internal("the page failed to render".into())))
}

/// Frames a page with the line that says what moves the flow on.
fn framed(d: &Dashboard, p: html::Page) -> Result<String, Failure> {
    let status = status_doc(&d.cfg, &d.registry)?;
    Ok(p.render(&pages::next_line(&status, &d.approvers())))
}

fn html_page(r: Result<String, Failure>) -> Response {
    match r {
        Ok(body) => {
            let mut resp = Html(body).into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(f) => f.page(),
    }
}

fn json<T: serde::Serialize>(r: Result<T, Failure>) -> Response {
    match r {
        Ok(v) => axum::Json(v).into_response(),
        Err(f) => f.json(),
    }
}

fn version_arg(p: Result<Path<String>, PathRejection>) -> Result<i64, Failure> {
    let Ok(Path(text)) = p else {
        return Err(Failure::BadRequest("bad version in the path".into()));
    };
    let digits = text.strip_prefix('v').unwrap_or(&text);
    digits.parse::<i64>().map_err(|_| {
        Failure::BadRequest(format!(
            "{text:?} is not a version number (use /versions/7 or /versions/v7)"
        ))
    })
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, Failure> {
    q.map(|Query(t)| t)
        .map_err(|e| Failure::BadRequest(format!("bad query string: {}", e.body_text())))
}

pub fn router(d: Arc<Dashboard>) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/versions", get(versions))
        .route("/versions/{n}", get(version))
        .route("/runs", get(runs))
        .route("/timeline", get(timeline))
        .route("/audit", get(audit))
        .route("/monitor", get(monitor))
        .route("/events", get(events))
        .route("/api/status", get(api_status))
        .route("/api/versions/{n}", get(api_version))
        .route("/api/runs", get(api_runs))
        .route("/api/timeline", get(api_timeline))
        .route("/api/audit", get(api_audit))
        .route("/api/monitor", get(api_monitor))
        .fallback(not_found)
        .with_state(d)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    let f = Failure::NotFound(format!(
        "{} is not a dashboard page; the pages are /, /versions, /runs, /timeline, /audit and /monitor",
        uri.path()
    ));
    if uri.path().starts_with("/api/") {
        f.json()
    } else {
        f.page()
    }
}

async fn overview(State(d): St) -> Response {
    html_page(
        blocking(&d, |d| {
            let status = status_doc(&d.cfg, &d.registry)?;
            let head = d.head();
            let who = d.approvers();
            Ok(pages::overview(&status, head.as_deref(), &d.panels(), &who)
                .render(&pages::next_line(&status, &who)))
        })
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SortQuery {
    sort: Option<String>,
    order: Option<String>,
}

async fn versions(State(d): St, q: Result<Query<SortQuery>, QueryRejection>) -> Response {
    let parsed = query(q).and_then(|q| {
        let sort = match q.sort.as_deref() {
            None => SortKey::Version,
            Some(s) => s.parse().map_err(Failure::BadRequest)?,
        };
        let desc = match q.order.as_deref() {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(o) => return Err(Failure::BadRequest(format!("order={o:?}: use asc or desc"))),
        };
        Ok((sort, desc))
    });
    let (sort, desc) = match parsed {
        Ok(p) => p,
        Err(f) => return f.page(),
    };
    html_page(
        blocking(&d, move |d| {
            let status = status_doc(&d.cfg, &d.registry)?;
            Ok(pages::versions(&status, sort, desc)
                .render(&pages::next_line(&status, &d.approvers())))
        })
        .await,
    )
}

fn version_page(d: &Dashboard, n: i64) -> Result<String, Failure> {
    let status = status_doc(&d.cfg, &d.registry)?;
    let Some(v) = status.versions.iter().find(|v| v.version == n) else {
        return Err(Failure::NotFound(format!(
            "there is no version v{n} (the registry has {})",
            match status.versions.first() {
                Some(first) => format!("v1 to v{}", first.version.max(1)),
                None => "none yet".into(),
            }
        )));
    };
    let row = d
        .registry
        .version(n)?
        .ok_or_else(|| Failure::NotFound(format!("there is no version v{n}")))?;
    let curves = d.registry.curves(n)?;
    let production = match status.endpoint(Stage::Production).version {
        Some(p) if p != n => d.registry.curves(p)?.map(|c| (p, c)),
        _ => None,
    };
    let audit = d
        .registry
        .audit_filtered(None, Some(n), None, AUDIT_LIMIT)?;
    let who = d.approvers();
    Ok(pages::version(&VersionPage {
        status: &status,
        approvers: &who,
        version: v,
        data_sha256: &row.data_sha256,
        curves: curves.as_ref(),
        production: production.as_ref().map(|(p, c)| (*p, c)),
        audit: &audit,
    })
    .render(&pages::next_line(&status, &who)))
}

async fn version(State(d): St, n: Result<Path<String>, PathRejection>) -> Response {
    match version_arg(n) {
        Ok(n) => html_page(blocking(&d, move |d| version_page(d, n)).await),
        Err(f) => f.page(),
    }
}

fn runs_with_steps(
    d: &Dashboard,
) -> Result<Vec<(crate::registry::RunRow, Vec<crate::registry::StepRow>)>, Failure> {
    let runs = d.registry.runs(RUNS_LIMIT)?;
    let mut out = Vec::with_capacity(runs.len());
    for r in runs {
        let steps = d.registry.steps(r.run)?;
        out.push((r, steps));
    }
    Ok(out)
}

async fn runs(State(d): St) -> Response {
    html_page(blocking(&d, |d| framed(d, pages::runs(&runs_with_steps(d)?))).await)
}

async fn timeline(State(d): St) -> Response {
    html_page(
        blocking(&d, |d| {
            framed(
                d,
                pages::timeline(&d.registry.deployments()?, crate::registry::now_ts()),
            )
        })
        .await,
    )
}

fn filtered(d: &Dashboard, f: &AuditFilter) -> Result<Vec<crate::registry::AuditRow>, Failure> {
    let nonempty = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    Ok(d.registry.audit_filtered(
        nonempty(&f.event).as_deref(),
        f.version,
        nonempty(&f.actor).as_deref(),
        AUDIT_LIMIT,
    )?)
}

/// The audit filter, where an empty `version=` (an untouched form field) means "any".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuditFilter {
    event: Option<String>,
    version: Option<String>,
    actor: Option<String>,
}

fn audit_filter(q: Result<Query<RawAuditFilter>, QueryRejection>) -> Result<AuditFilter, Failure> {
    let q = query(q)?;
    let version = match q.version.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => Some(
            v.strip_prefix('v')
                .unwrap_or(v)
                .parse::<i64>()
                .map_err(|_| {
                    Failure::BadRequest(format!("version={v:?} is not a version number"))
                })?,
        ),
    };
    Ok(AuditFilter {
        event: q.event,
        version,
        actor: q.actor,
    })
}

async fn audit(State(d): St, q: Result<Query<RawAuditFilter>, QueryRejection>) -> Response {
    match audit_filter(q) {
        Ok(f) => {
            html_page(blocking(&d, move |d| framed(d, pages::audit(&filtered(d, &f)?, &f))).await)
        }
        Err(f) => f.page(),
    }
}

async fn monitor(State(d): St) -> Response {
    html_page(
        blocking(&d, |d| {
            framed(
                d,
                pages::monitor(&monitor_doc(&d.cfg, &d.registry, None, None, 100)?),
            )
        })
        .await,
    )
}

/// Server-sent events: one `change` event whenever the registry's change stamp moves.
async fn events(State(d): St) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let stream = futures_util::stream::unfold((d, None), |(d, last)| async move {
        let mut last = last;
        let mut stopping = d.stopping.clone();
        loop {
            if *stopping.borrow() {
                return None;
            }
            let reg = d.registry.clone();
            let stamp = tokio::task::spawn_blocking(move || reg.change_stamp().ok())
                .await
                .ok()
                .flatten();
            if stamp.is_some() && stamp != last {
                let first = last.is_none();
                last = stamp;
                if !first {
                    let (a, r, s) = stamp.unwrap_or_default();
                    let ev = Event::default()
                        .event("message")
                        .data(format!("{a}.{r}.{s}"));
                    return Some((Ok(ev), (d, last)));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stopping.changed() => {}
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn api_status(State(d): St) -> Response {
    json(blocking(&d, |d| Ok(status_doc(&d.cfg, &d.registry)?)).await)
}

async fn api_version(State(d): St, n: Result<Path<String>, PathRejection>) -> Response {
    let n = match version_arg(n) {
        Ok(n) => n,
        Err(f) => return f.json(),
    };
    json(
        blocking(&d, move |d| {
            let status = status_doc(&d.cfg, &d.registry)?;
            let v = status
                .versions
                .into_iter()
                .find(|v| v.version == n)
                .ok_or_else(|| Failure::NotFound(format!("there is no version v{n}")))?;
            Ok(serde_json::json!({
                "version": v,
                "curves": d.registry.curves(n)?,
                "audit": d.registry.audit_filtered(None, Some(n), None, AUDIT_LIMIT)?,
            }))
        })
        .await,
    )
}

async fn api_runs(State(d): St) -> Response {
    json(
        blocking(&d, |d| {
            Ok(runs_with_steps(d)?
                .into_iter()
                .map(|(r, s)| serde_json::json!({ "run": r, "steps": s }))
                .collect::<Vec<_>>())
        })
        .await,
    )
}

async fn api_timeline(State(d): St) -> Response {
    json(blocking(&d, |d| Ok(d.registry.deployments()?)).await)
}

async fn api_audit(State(d): St, q: Result<Query<RawAuditFilter>, QueryRejection>) -> Response {
    match audit_filter(q) {
        Ok(f) => json(blocking(&d, move |d| filtered(d, &f)).await),
        Err(f) => f.json(),
    }
}

async fn api_monitor(State(d): St) -> Response {
    json(
        blocking(&d, |d| {
            Ok(monitor_doc(&d.cfg, &d.registry, None, None, 100)?)
        })
        .await,
    )
}

/// Serves the dashboard on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    d: Arc<Dashboard>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(d))
        .with_graceful_shutdown(shutdown)
        .await
}
