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

use crate::data::parse_cell;
use crate::endpoint_metrics::{content_type_index, EndpointMetrics};
use crate::model::Model;

/// SageMaker's maximum request payload.
pub const MAX_BODY: usize = 6_291_456;
/// Response header naming the model version that answered.
pub const VERSION_HEADER: &str = "x-rcfops-model-version";
/// Header carrying SageMaker custom attributes (`attribution=true`).
pub const CUSTOM_ATTRIBUTES: &str = "x-amzn-sagemaker-custom-attributes";
/// Bodies at least this large (about 100 records, a millisecond of scoring) are parsed and
/// scored on the blocking pool: a long poll on a runtime worker would hold up the connections
/// queued behind it on that worker. Smaller ones are scored inline (no thread hand-off).
const BLOCKING_BYTES: usize = 4 * 1024;

/// Bounds that keep any client from stalling or exhausting a stage server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A connection that has not sent a complete request head within this is closed; hyper
    /// also runs this timer while a keep-alive connection waits for its next request, so it is
    /// the idle timeout too (60 s, like an AWS load balancer's default).
    pub header_timeout: Duration,
    /// A request whose body is not complete within this is answered 408.
    pub body_timeout: Duration,
    /// Invocations being read or scored at once; more wait (up to `body_timeout`, then 503).
    pub max_inflight: usize,
    /// Open connections; beyond this the server stops accepting until one closes.
    pub max_connections: usize,
    /// Records per request for which an attribution may be asked (it costs ~100x a score).
    pub max_attribution_records: usize,
    /// How long a graceful shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            max_inflight: 256,
            max_connections: 4096,
            max_attribution_records: 1000,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

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
}

impl Endpoint {
    pub fn new(stage: Stage, name: String) -> Arc<Endpoint> {
        let metrics = EndpointMetrics::new(stage.as_str());
        metrics.set_model(&name, None);
        Arc::new(Endpoint {
            stage,
            name: ArcSwap::from_pointee(name),
            slot: ArcSwapOption::empty(),
            metrics,
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

    pub fn metrics(&self) -> &EndpointMetrics {
        &self.metrics
    }
}

/// What the handlers share: the endpoint, the limits and the in-flight budget.
struct Ctx {
    ep: Arc<Endpoint>,
    limits: Limits,
    inflight: Semaphore,
}

type St = State<Arc<Ctx>>;

pub fn router(ep: Arc<Endpoint>) -> Router {
    router_with(ep, Limits::default())
}

pub fn router_with(ep: Arc<Endpoint>, limits: Limits) -> Router {
    let ctx = Arc::new(Ctx {
        ep,
        inflight: Semaphore::new(limits.max_inflight),
        limits,
    });
    Router::new()
        .route("/ping", get(ping))
        .route("/metrics", get(metrics))
        .route("/invocations", post(invoke_default))
        .route("/endpoints/{name}/invocations", post(invoke_named))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(ctx)
}

/// Serves `ep` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ep: Arc<Endpoint>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, ep, Limits::default(), shutdown).await
}

/// [`serve`] with explicit limits: HTTP/1.1 with keep-alive, `TCP_NODELAY`, a request-head
/// timeout, a connection cap, and a graceful shutdown that lets requests in flight finish
/// (up to `shutdown_grace`).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    ep: Arc<Endpoint>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let grace = limits.shutdown_grace;
    let header_timeout = limits.header_timeout;
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let app = router_with(ep, limits);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => p.expect("never closed"),
            () = &mut shutdown => break,
        };
        let (stream, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = TowerToHyperService::new(app.clone());
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), svc));
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
    Ok(())
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "ErrorCode")]
    code: &'a str,
    #[serde(rename = "Message")]
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<usize>,
}

/// An error answer: status, SageMaker error code and a message naming the problem.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    record: Option<usize>,
}

fn error(
    status: StatusCode,
    code: &'static str,
    message: String,
    record: Option<usize>,
) -> ApiError {
    ApiError {
        status,
        code,
        message,
        record,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ErrorBody {
            code: self.code,
            message: self.message,
            record: self.record,
        })
        .unwrap_or_default();
        let mut r = (self.status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r.headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(self.code));
        r
    }
}

async fn not_found(method: Method, uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!(
            "no route for {method} {}: use GET /ping, GET /metrics, POST /invocations or \
             POST /endpoints/{{name}}/invocations",
            uri.path()
        ),
        None,
    )
    .into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let allow = if uri.path().ends_with("/invocations") {
        "POST"
    } else {
        "GET,HEAD"
    };
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("{method} is not allowed on {}: use {allow}", uri.path()),
        None,
    )
    .into_response();
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
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
        HeaderValue::from_static(crate::endpoint_metrics::CONTENT_TYPE),
    );
    r
}

fn no_model(ep: &Endpoint) -> ApiError {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        format!("no model is deployed to {} yet", ep.stage),
        None,
    )
}

async fn invoke_named(
    State(ctx): St,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let t0 = Instant::now();
    let response = match name {
        Ok(Path(name)) => {
            let expected = ctx.ep.name.load();
            if name == **expected {
                invoke(&ctx, &headers, body).await
            } else {
                error(
                    StatusCode::NOT_FOUND,
                    "ValidationError",
                    format!(
                        "Endpoint {name} not found: this is the {} endpoint, named {expected}",
                        ctx.ep.stage
                    ),
                    None,
                )
                .into_response()
            }
        }
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            format!("bad endpoint name in the path: {e}"),
            None,
        )
        .into_response(),
    };
    count(&ctx, &headers, &response, t0);
    response
}

async fn invoke_default(State(ctx): St, headers: HeaderMap, body: Body) -> Response {
    let t0 = Instant::now();
    let response = invoke(&ctx, &headers, body).await;
    count(&ctx, &headers, &response, t0);
    response
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

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Csv,
    Json,
    JsonLines,
}

/// The media type of a Content-Type or Accept element, parameters (`charset`, `q`) dropped.
fn media_type(v: &str) -> &str {
    v.split(';').next().unwrap_or("").trim()
}

fn parse_content_type(h: &HeaderMap) -> Result<Format, ApiError> {
    let ct = h
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().map(media_type).unwrap_or("?"))
        .unwrap_or("");
    let is = |m: &str| ct.eq_ignore_ascii_case(m);
    if is("text/csv") {
        Ok(Format::Csv)
    } else if is("application/json") {
        Ok(Format::Json)
    } else if is("application/jsonlines") || is("application/x-jsonlines") {
        Ok(Format::JsonLines)
    } else if ct.is_empty() {
        Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "ValidationError",
            "missing Content-Type: send text/csv, application/json or application/jsonlines".into(),
            None,
        ))
    } else {
        Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "ValidationError",
            format!("unsupported Content-Type {ct:?}: send text/csv, application/json or application/jsonlines"),
            None,
        ))
    }
}

fn parse_accept(h: &HeaderMap) -> Result<Format, ApiError> {
    let Some(accept) = h.get(header::ACCEPT) else {
        return Ok(Format::Json);
    };
    let accept = accept.to_str().unwrap_or("?");
    for part in accept.split(',') {
        let m = media_type(part);
        let is = |x: &str| m.eq_ignore_ascii_case(x);
        if m.is_empty() || is("application/json") || is("*/*") || is("application/*") {
            return Ok(Format::Json);
        }
        if is("application/jsonlines") || is("application/x-jsonlines") {
            return Ok(Format::JsonLines);
        }
    }
    Err(error(
        StatusCode::NOT_ACCEPTABLE,
        "ValidationError",
        format!(
            "cannot answer with Accept {accept:?}: use application/json or application/jsonlines"
        ),
        None,
    ))
}

struct Invalid(usize, String);

/// Parses a request body of `content_type` into records of `dim` features: `Ok((flat, rows))`
/// or `Err((record, problem))`. The entry point of the `request_body` fuzz target; the server
/// goes through the same parser.
pub fn parse_request(
    content_type: &str,
    body: &[u8],
    dim: usize,
) -> Result<(Vec<f64>, usize), (usize, String)> {
    let fmt = match media_type(content_type).to_ascii_lowercase().as_str() {
        "text/csv" => Format::Csv,
        "application/json" => Format::Json,
        "application/jsonlines" | "application/x-jsonlines" => Format::JsonLines,
        other => return Err((0, format!("unsupported Content-Type {other:?}"))),
    };
    parse_records(fmt, body, dim).map_err(|Invalid(r, m)| (r, m))
}

/// Parses a request body into a flat row-major matrix with `dim` columns.
fn parse_records(fmt: Format, body: &[u8], dim: usize) -> Result<(Vec<f64>, usize), Invalid> {
    let mut flat = Vec::new();
    let mut rows = 0usize;
    fn push(
        flat: &mut Vec<f64>,
        rows: &mut usize,
        dim: usize,
        rec: usize,
        values: &mut dyn Iterator<Item = Result<f64, String>>,
    ) -> Result<(), Invalid> {
        let start = flat.len();
        for v in values {
            flat.push(v.map_err(|e| Invalid(rec, e))?);
        }
        let n = flat.len() - start;
        if n != dim {
            return Err(Invalid(rec, format!("expected {dim} features, got {n}")));
        }
        *rows += 1;
        Ok(())
    }
    match fmt {
        Format::Csv => {
            let text = std::str::from_utf8(body)
                .map_err(|_| Invalid(0, "the body is not valid UTF-8".into()))?;
            for line in text.split('\n') {
                let line = line.strip_suffix('\r').unwrap_or(line);
                if line.trim().is_empty() {
                    continue;
                }
                let rec = rows;
                push(
                    &mut flat,
                    &mut rows,
                    dim,
                    rec,
                    &mut line.split(',').map(|f| parse_cell(f.as_bytes())),
                )?;
            }
        }
        Format::Json => {
            let v: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| Invalid(0, format!("malformed JSON: {e}")))?;
            let instances = v
                .get("instances")
                .and_then(|i| i.as_array())
                .ok_or_else(|| {
                    Invalid(
                        0,
                        "expected {\"instances\": [{\"features\": [...]}, ...]}".into(),
                    )
                })?;
            for (i, inst) in instances.iter().enumerate() {
                let feats = inst
                    .get("features")
                    .or_else(|| {
                        inst.get("data")
                            .and_then(|d| d.get("features"))
                            .and_then(|f| f.get("values"))
                    })
                    .and_then(|f| f.as_array())
                    .ok_or_else(|| Invalid(i, "instance has no \"features\" array".into()))?;
                push(
                    &mut flat,
                    &mut rows,
                    dim,
                    i,
                    &mut feats.iter().map(json_number),
                )?;
            }
        }
        Format::JsonLines => {
            let text = std::str::from_utf8(body)
                .map_err(|_| Invalid(0, "the body is not valid UTF-8".into()))?;
            for line in text.split('\n') {
                if line.trim().is_empty() {
                    continue;
                }
                let rec = rows;
                let v: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| Invalid(rec, format!("malformed JSON line: {e}")))?;
                let feats = v
                    .get("features")
                    .and_then(|f| f.as_array())
                    .ok_or_else(|| Invalid(rec, "line has no \"features\" array".into()))?;
                push(
                    &mut flat,
                    &mut rows,
                    dim,
                    rec,
                    &mut feats.iter().map(json_number),
                )?;
            }
        }
    }
    if rows == 0 {
        return Err(Invalid(0, "the request has no records".into()));
    }
    Ok((flat, rows))
}

fn json_number(v: &serde_json::Value) -> Result<f64, String> {
    match v.as_f64() {
        Some(x) if x.is_finite() => Ok(x),
        _ => Err(format!("{v} is not a finite number")),
    }
}

#[derive(Serialize)]
struct ScoreOut {
    score: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    attribution: Option<Vec<crate::model::Attribution>>,
}

async fn invoke(ctx: &Ctx, headers: &HeaderMap, body: Body) -> Response {
    // One snapshot of the slot per request: the whole batch is scored by this version, and
    // every answer (errors included) names it.
    let deployed = ctx.ep.current();
    let version = deployed.as_ref().map(|d| d.version);
    let mut r = match invoke_inner(ctx, deployed, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if let Some(v) = version {
        r.headers_mut().insert(VERSION_HEADER, HeaderValue::from(v));
    }
    r
}

async fn invoke_inner(
    ctx: &Ctx,
    deployed: Option<Arc<Deployed>>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let deployed = deployed.ok_or_else(|| no_model(&ctx.ep))?;
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
    let max_attr = ctx.limits.max_attribution_records;
    let large = bytes.len() >= BLOCKING_BYTES;
    let work = move || score(&deployed.model, fmt, &bytes, attribution, max_attr);
    let scores = if large {
        tokio::task::spawn_blocking(work)
            .await
            .unwrap_or_else(|_| Err(model_failed()))?
    } else {
        work()?
    };
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
) -> Result<Vec<ScoreOut>, ApiError> {
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
        Ok(Ok(s)) if s.iter().all(|s| s.score.is_finite()) => Ok(s),
        Ok(Err(invalid)) => Err(invalid),
        _ => Err(model_failed()),
    }
}

fn model_failed() -> ApiError {
    error(
        StatusCode::FAILED_DEPENDENCY,
        "ModelError",
        "the model failed to score the request".into(),
        None,
    )
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

fn too_large() -> ApiError {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "ValidationError",
        format!(
            "request body exceeds {MAX_BODY} bytes (SageMaker's payload limit); split the batch"
        ),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_tolerates_crlf_and_trailing_newline() {
        let (flat, rows) = parse_records(Format::Csv, b"1,2\r\n3,4\r\n\r\n", 2)
            .ok()
            .unwrap();
        assert_eq!(rows, 2);
        assert_eq!(flat, vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn errors_name_the_record() {
        let e = parse_records(Format::Csv, b"1,2\n3\n", 2).err().unwrap();
        assert_eq!((e.0, e.1.as_str()), (1, "expected 2 features, got 1"));
        let e = parse_records(
            Format::Json,
            br#"{"instances":[{"features":[1,2]},{"features":[1,"x"]}]}"#,
            2,
        )
        .err()
        .unwrap();
        assert_eq!(e.0, 1);
        let e = parse_records(Format::JsonLines, b"{\"features\":[1,2]}\nnope\n", 2)
            .err()
            .unwrap();
        assert_eq!(e.0, 1);
        assert!(parse_records(Format::Csv, b"", 2).is_err());
    }

    #[test]
    fn json_forms() {
        let (f, n) = parse_records(
            Format::Json,
            br#"{"instances":[{"data":{"features":{"values":[1,2]}}},{"features":[3,4]}]}"#,
            2,
        )
        .ok()
        .unwrap();
        assert_eq!((f, n), (vec![1.0, 2.0, 3.0, 4.0], 2));
    }
}
