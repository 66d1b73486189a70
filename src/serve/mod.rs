//! Stage endpoints: one HTTP server per stage speaking the SageMaker RCF inference contract.
//!
//! Owns request parsing (`text/csv`, `application/json`, `application/jsonlines`), response
//! formatting (chosen by `Accept`), SageMaker-style errors, and the hot-swappable model slot.
//! A request takes one snapshot of the slot, so a batch is scored by exactly one version; a
//! swap never interrupts requests in flight. It does not decide what to deploy: the reconciler
//! calls [`Endpoint::swap`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::Stage;
use arc_swap::{ArcSwap, ArcSwapOption};
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::model::Model;
use crate::pipeline::data::parse_cell;

pub mod capture;
pub mod codec;
pub mod errors;
pub mod metrics;
pub mod server;
pub mod shadow;
pub mod tls;

pub use codec::parse_request;
pub use server::{serve, serve_app, serve_with, Limits};

use codec::*;
use errors::*;
use metrics::{content_type_index, EndpointMetrics};

/// SageMaker's maximum request payload.
pub const MAX_BODY: usize = 6_291_456;
/// Response header naming the model version that answered.
pub const VERSION_HEADER: &str = "x-rcfops-model-version";
/// The caller's id for a request, kept in its capture record (`eventMetadata.inferenceId`).
pub const INFERENCE_ID: &str = "x-amzn-sagemaker-inference-id";
/// Header carrying SageMaker custom attributes (`attribution=true`).
pub const CUSTOM_ATTRIBUTES: &str = "x-amzn-sagemaker-custom-attributes";
/// Bodies at least this large (about 100 records, a millisecond of scoring) are parsed and
/// scored on the blocking pool: a long poll on a runtime worker would hold up the connections
/// queued behind it on that worker. Smaller ones are scored inline (no thread hand-off).
const BLOCKING_BYTES: usize = 4 * 1024;

/// A model in service.
pub struct Deployed {
    pub version: i64,
    pub model: Model,
}

/// One stage's endpoint: its name, the model slot and its metrics.
pub struct Endpoint {
    pub stage: Stage,
    name: ArcSwap<String>,
    slot: ArcSwapOption<Deployed>,
    metrics: EndpointMetrics,
    /// Production only: where a share of the scored requests is mirrored.
    shadow: std::sync::OnceLock<Arc<shadow::Shadow>>,
    /// Data capture of this endpoint's requests, when on.
    capture: std::sync::OnceLock<Arc<capture::Capture>>,
}

impl Endpoint {
    pub fn new(stage: Stage, name: String) -> Arc<Endpoint> {
        let metrics = EndpointMetrics::new(stage);
        metrics.set_model(&name, None);
        Arc::new(Endpoint {
            stage,
            name: ArcSwap::from_pointee(name),
            slot: ArcSwapOption::empty(),
            metrics,
            shadow: std::sync::OnceLock::new(),
            capture: std::sync::OnceLock::new(),
        })
    }

    pub fn name(&self) -> String {
        self.name.load().as_ref().clone()
    }

    pub fn set_name(&self, name: String) {
        if **self.name.load() != name {
            self.metrics.set_model(&name, self.version());
            self.name.store(Arc::new(name));
        }
    }

    /// Replaces the served model; requests in flight keep the one they started with.
    pub fn swap(&self, deployed: Option<Deployed>) {
        let version = deployed.as_ref().map(|d| d.version);
        let old = self.slot.swap(deployed.map(Arc::new));
        if old.map(|d| d.version) != version {
            self.metrics.set_model(&self.name.load(), version);
            self.metrics.swapped();
        }
    }

    pub fn version(&self) -> Option<i64> {
        self.slot.load().as_ref().map(|d| d.version)
    }

    pub fn current(&self) -> Option<Arc<Deployed>> {
        self.slot.load_full()
    }

    /// Mirrors a share of this endpoint's scored requests to `shadow` (set once).
    pub fn set_shadow(&self, shadow: Arc<shadow::Shadow>) {
        let _ = self.shadow.set(shadow);
    }

    pub fn shadow(&self) -> Option<&Arc<shadow::Shadow>> {
        self.shadow.get()
    }

    /// Captures this endpoint's requests through `capture` (set once).
    pub fn set_capture(&self, capture: Arc<capture::Capture>) {
        let _ = self.capture.set(capture);
    }

    pub fn capture(&self) -> Option<&Arc<capture::Capture>> {
        self.capture.get()
    }

    pub fn metrics(&self) -> &EndpointMetrics {
        &self.metrics
    }
}

/// Who may call an endpoint, and whether `/metrics` is served beside the invocations.
#[derive(Debug, Clone)]
pub struct Access {
    /// Invocations must carry a SigV4 signature this verifier accepts (`/ping` stays open:
    /// load balancers and kubelets probe it unsigned, as SageMaker's contract has it).
    pub sigv4: Option<crate::auth::Verifier>,
    /// Serve `/metrics` on this listener (false when it has its own address).
    pub metrics: bool,
}

impl Default for Access {
    fn default() -> Access {
        Access {
            sigv4: None,
            metrics: true,
        }
    }
}

/// What the handlers share: the endpoint, the limits, the in-flight budget and who may call.
struct Ctx {
    ep: Arc<Endpoint>,
    limits: Limits,
    inflight: Semaphore,
    sigv4: Option<crate::auth::Verifier>,
}

type St = State<Arc<Ctx>>;

pub fn router(ep: Arc<Endpoint>) -> Router {
    router_with(ep, Limits::default())
}

pub fn router_with(ep: Arc<Endpoint>, limits: Limits) -> Router {
    router_for(ep, limits, Access::default())
}

/// The endpoint's routes under `access`.
pub fn router_for(ep: Arc<Endpoint>, limits: Limits, access: Access) -> Router {
    let ctx = Arc::new(Ctx {
        ep,
        inflight: Semaphore::new(limits.max_inflight),
        limits,
        sigv4: access.sigv4,
    });
    let mut r = Router::new().route("/ping", get(ping));
    if access.metrics {
        r = r.route("/metrics", get(metrics));
    }
    r.route("/invocations", post(invoke_default))
        .route("/endpoints/{name}/invocations", post(invoke_named))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(ctx)
}

/// 200 with an empty body when a model is loaded (with the version header), else 503.
async fn ping(State(ctx): St) -> Response {
    match ctx.ep.version() {
        Some(v) => {
            let mut r = StatusCode::OK.into_response();
            r.headers_mut().insert(VERSION_HEADER, HeaderValue::from(v));
            r
        }
        None => no_model(&ctx.ep).into_response(),
    }
}

async fn metrics(State(ctx): St) -> Response {
    let mut r = ctx.ep.metrics.encode().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::serve::metrics::CONTENT_TYPE),
    );
    r
}

/// A router serving only `/metrics` (for `[endpoints.<stage>] metrics_listen`).
pub fn metrics_router(ep: Arc<Endpoint>) -> Router {
    let limits = Limits::default();
    let ctx = Arc::new(Ctx {
        ep,
        inflight: Semaphore::new(1),
        limits,
        sigv4: None,
    });
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(ctx)
}

async fn invoke_named(
    State(ctx): St,
    name: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let t0 = Instant::now();
    let response = invoke(&ctx, &uri, &headers, body, Some(name)).await;
    count(&ctx, &headers, &response, t0);
    response
}

async fn invoke_default(State(ctx): St, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let t0 = Instant::now();
    let response = invoke(&ctx, &uri, &headers, body, None).await;
    count(&ctx, &headers, &response, t0);
    response
}

/// The endpoint name in `/endpoints/{name}/invocations` must be this endpoint's.
fn check_name(ctx: &Ctx, name: Result<Path<String>, PathRejection>) -> Result<(), ApiError> {
    match name {
        Ok(Path(name)) => {
            let expected = ctx.ep.name.load();
            if name == **expected {
                Ok(())
            } else {
                Err(error(
                    StatusCode::NOT_FOUND,
                    "ValidationError",
                    format!(
                        "Endpoint {name} not found: this is the {} endpoint, named {expected}",
                        ctx.ep.stage
                    ),
                    None,
                ))
            }
        }
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            format!("bad endpoint name in the path: {e}"),
            None,
        )),
    }
}

fn count(ctx: &Ctx, headers: &HeaderMap, response: &Response, t0: Instant) {
    let ct = content_type_index(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    ctx.ep
        .metrics
        .request(response.status().as_u16(), ct, t0.elapsed().as_secs_f64());
}

async fn invoke(
    ctx: &Ctx,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    name: Option<Result<Path<String>, PathRejection>>,
) -> Response {
    // Headers first: an unsigned or badly signed request is refused before its body is read.
    let pending = match &ctx.sigv4 {
        None => None,
        Some(v) => {
            match v.check_headers(
                "POST",
                uri.path(),
                uri.query(),
                headers,
                std::time::SystemTime::now(),
            ) {
                Ok(p) => Some(p),
                Err(r) => {
                    ctx.ep.metrics.refused(r.code.as_str(), r.reason);
                    return refused(r).into_response();
                }
            }
        }
    };
    // A wrong name is answered at once without auth, and only after the signature with it.
    let wrong_name = match name.map(|n| check_name(ctx, n)) {
        Some(Err(e)) if pending.is_none() => return e.into_response(),
        Some(Err(e)) => Some(e),
        _ => None,
    };
    // One snapshot of the slot per request: the whole batch is scored by this version, and
    // every answer (errors included) names it.
    let deployed = ctx.ep.current();
    let version = deployed.as_ref().map(|d| d.version);
    let (mut r, refused) =
        match invoke_inner(ctx, deployed, pending, wrong_name, headers, body).await {
            Ok(r) => (r, false),
            Err(e) => {
                let auth = e.is_auth();
                (e.into_response(), auth)
            }
        };
    // A refused caller learns nothing about the model, not even its version.
    if let Some(v) = version.filter(|_| !refused) {
        r.headers_mut().insert(VERSION_HEADER, HeaderValue::from(v));
    }
    r
}

async fn invoke_inner(
    ctx: &Ctx,
    deployed: Option<Arc<Deployed>>,
    pending: Option<crate::auth::sigv4::Pending>,
    wrong_name: Option<ApiError>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if pending.is_none() {
        deployed.as_ref().ok_or_else(|| no_model(&ctx.ep))?;
    }
    let fmt = parse_content_type(headers)?;
    let accept = parse_accept(headers)?;
    let attribution = headers
        .get(CUSTOM_ATTRIBUTES)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split([',', ';'])
                .any(|kv| kv.trim().eq_ignore_ascii_case("attribution=true"))
        });
    let deadline = tokio::time::Instant::now() + ctx.limits.body_timeout;
    let _permit = match ctx.inflight.try_acquire() {
        Ok(p) => p,
        Err(_) => match tokio::time::timeout_at(deadline, ctx.inflight.acquire()).await {
            Ok(Ok(p)) => p,
            _ => {
                return Err(error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    format!(
                        "the {} endpoint is overloaded ({} requests in flight); retry later",
                        ctx.ep.stage, ctx.limits.max_inflight
                    ),
                    None,
                ))
            }
        },
    };
    let bytes = match tokio::time::timeout_at(deadline, read_body(body)).await {
        Ok(b) => b?,
        Err(_) => {
            return Err(error(
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeout",
                format!(
                    "the request body did not arrive within {} s",
                    ctx.limits.body_timeout.as_secs_f64()
                ),
                None,
            ))
        }
    };
    if let Some(p) = pending {
        p.finish(&bytes).map_err(|r| {
            ctx.ep.metrics.refused(r.code.as_str(), r.reason);
            refused(r)
        })?;
    }
    if let Some(e) = wrong_name {
        return Err(e);
    }
    let deployed = deployed.ok_or_else(|| no_model(&ctx.ep))?;
    let max_attr = ctx.limits.max_attribution_records;
    let large = bytes.len() >= BLOCKING_BYTES;
    // The body is reference-counted: capturing it copies nothing on this path.
    let captured = ctx
        .ep
        .capture()
        .filter(|c| c.sample())
        .map(|c| (c, bytes.clone()));
    let scoring = deployed.clone();
    let work = move || score(&scoring.model, fmt, &bytes, attribution, max_attr);
    let (flat, scores) = if large {
        tokio::task::spawn_blocking(work)
            .await
            .unwrap_or_else(|_| Err(model_failed()))?
    } else {
        work()?
    };
    if let Some(shadow) = ctx.ep.shadow() {
        let values: Vec<f64> = scores.iter().map(|s| s.score).collect();
        let rows = values.len();
        shadow.offer(
            deployed.version,
            deployed.model.header.threshold,
            &flat,
            rows,
            &values,
        );
    }
    ctx.ep.metrics.scored(scores.iter().map(|s| s.score));
    let (body, ct) = match accept {
        Format::JsonLines => {
            let mut out = Vec::with_capacity(scores.len() * 28);
            for s in &scores {
                serde_json::to_writer(&mut out, s).expect("serialise");
                out.push(b'\n');
            }
            (out, "application/jsonlines")
        }
        _ => {
            #[derive(Serialize)]
            struct Scores<'a> {
                scores: &'a [ScoreOut],
            }
            let mut out = Vec::with_capacity(16 + scores.len() * 32);
            serde_json::to_writer(&mut out, &Scores { scores: &scores }).expect("serialise");
            (out, "application/json")
        }
    };
    let body = Bytes::from(body);
    if let Some((capture, input)) = captured {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        capture.offer(capture::Item {
            at_ms: crate::monitor::now_ms(),
            endpoint: ctx.ep.name.load_full(),
            version: deployed.version,
            threshold: deployed.model.header.threshold,
            input_type: text(header::CONTENT_TYPE.as_str())
                .unwrap_or_default()
                .to_string(),
            input,
            output_type: ct,
            output: body.clone(),
            inference_id: text(INFERENCE_ID).map(str::to_string),
            scores: scores.iter().map(|s| s.score).collect(),
        });
    }
    let mut r = Response::new(Body::from(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(r)
}

/// Parses and scores one request body with one model.
fn score(
    model: &Model,
    fmt: Format,
    bytes: &[u8],
    attribution: bool,
    max_attribution: usize,
) -> Result<(Vec<f64>, Vec<ScoreOut>), ApiError> {
    let dim = model.dim();
    let (flat, rows) = parse_records(fmt, bytes, dim).map_err(|Invalid(rec, msg)| {
        error(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            format!("record {rec}: {msg}"),
            Some(rec),
        )
    })?;
    if attribution && rows > max_attribution {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            format!(
                "attribution=true is limited to {max_attribution} records a request; this one has {rows}"
            ),
            None,
        ));
    }
    let scored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let scores = model.try_score_rows(&flat, rows).map_err(|(rec, j, v)| {
            error(
                StatusCode::BAD_REQUEST,
                "ValidationError",
                format!(
                    "record {rec}: feature {j} ({}) = {v:e} is outside the model's range after preprocessing (±3.4e38)",
                    model.header.features[j]
                ),
                Some(rec),
            )
        })?;
        Ok::<_, ApiError>(
            scores
                .into_iter()
                .enumerate()
                .map(|(i, score)| ScoreOut {
                    score,
                    attribution: attribution
                        .then(|| model.attribution(&flat[i * dim..(i + 1) * dim])),
                })
                .collect::<Vec<_>>(),
        )
    }));
    match scored {
        Ok(Ok(s)) if s.iter().all(|s| s.score.is_finite()) => Ok((flat, s)),
        Ok(Err(invalid)) => Err(invalid),
        _ => Err(model_failed()),
    }
}

/// Bytes of an oversized body read and discarded so the client sees the 413 rather than a
/// reset connection; beyond this the connection is closed.
const DRAIN_LIMIT: usize = 64 << 20;

/// Collects the body up to [`MAX_BODY`]; an oversized body is drained and answered with 413.
/// A body that arrives in one frame (the usual small request) is not copied.
async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut first: Option<Bytes> = None;
    let mut buf: Vec<u8> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "ValidationError",
                "the request body could not be read".into(),
                None,
            ));
        };
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total <= MAX_BODY {
                match first.take() {
                    None if buf.is_empty() => first = Some(data),
                    prev => {
                        if let Some(p) = prev {
                            buf.reserve(p.len() + data.len());
                            buf.extend_from_slice(&p);
                        }
                        buf.extend_from_slice(&data);
                    }
                }
            } else if total > DRAIN_LIMIT {
                break;
            }
        }
    }
    if total > MAX_BODY {
        return Err(too_large());
    }
    Ok(match first {
        Some(b) => b,
        None => Bytes::from(buf),
    })
}
