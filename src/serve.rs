//! Stage endpoints: one HTTP server per stage speaking the SageMaker RCF inference contract.
//!
//! Owns request parsing (`text/csv`, `application/json`, `application/jsonlines`), response
//! formatting (chosen by `Accept`), SageMaker-style errors, and the hot-swappable model slot.
//! A request takes one snapshot of the slot, so a batch is scored by exactly one version; a
//! swap never interrupts requests in flight. It does not decide what to deploy: the reconciler
//! calls [`Endpoint::swap`].

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;

use crate::data::parse_cell;
use crate::model::Model;

/// SageMaker's maximum request payload.
pub const MAX_BODY: usize = 6_291_456;
/// Response header naming the model version that answered.
pub const VERSION_HEADER: &str = "x-rcfops-model-version";

/// A model in service.
pub struct Deployed {
    pub version: i64,
    pub model: Model,
}

/// One stage's endpoint: its name and the model slot.
pub struct Endpoint {
    pub stage: &'static str,
    name: ArcSwap<String>,
    slot: ArcSwapOption<Deployed>,
}

impl Endpoint {
    pub fn new(stage: &'static str, name: String) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            stage,
            name: ArcSwap::from_pointee(name),
            slot: ArcSwapOption::empty(),
        })
    }

    pub fn name(&self) -> String {
        self.name.load().as_ref().clone()
    }

    pub fn set_name(&self, name: String) {
        self.name.store(Arc::new(name));
    }

    /// Replaces the served model; requests in flight keep the one they started with.
    pub fn swap(&self, deployed: Option<Deployed>) {
        self.slot.store(deployed.map(Arc::new));
    }

    pub fn version(&self) -> Option<i64> {
        self.slot.load().as_ref().map(|d| d.version)
    }

    pub fn current(&self) -> Option<Arc<Deployed>> {
        self.slot.load_full()
    }
}

pub fn router(ep: Arc<Endpoint>) -> Router {
    Router::new()
        .route("/ping", get(ping))
        .route("/invocations", post(invoke_default))
        .route("/endpoints/{name}/invocations", post(invoke_named))
        .fallback(not_found)
        .with_state(ep)
}

/// Serves `ep` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ep: Arc<Endpoint>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(ep))
        .with_graceful_shutdown(shutdown)
        .await
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

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NotFound",
        "no such route: use GET /ping, POST /invocations or POST /endpoints/{name}/invocations"
            .into(),
        None,
    )
    .into_response()
}

async fn ping(State(ep): State<Arc<Endpoint>>) -> Response {
    match ep.version() {
        Some(v) => {
            let mut r = StatusCode::OK.into_response();
            r.headers_mut().insert(VERSION_HEADER, HeaderValue::from(v));
            r
        }
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn invoke_named(
    State(ep): State<Arc<Endpoint>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let expected = ep.name();
    if name != expected {
        return error(
            StatusCode::NOT_FOUND,
            "ValidationError",
            format!(
                "Endpoint {name} not found: this is the {} endpoint, named {expected}",
                ep.stage
            ),
            None,
        )
        .into_response();
    }
    invoke(ep, headers, body).await
}

async fn invoke_default(
    State(ep): State<Arc<Endpoint>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    invoke(ep, headers, body).await
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Csv,
    Json,
    JsonLines,
}

fn media_type(v: &str) -> String {
    v.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn parse_content_type(h: &HeaderMap) -> Result<Format, ApiError> {
    let ct = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(media_type)
        .unwrap_or_default();
    match ct.as_str() {
        "text/csv" => Ok(Format::Csv),
        "application/json" => Ok(Format::Json),
        "application/jsonlines" | "application/x-jsonlines" => Ok(Format::JsonLines),
        "" => Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "ValidationError",
            "missing Content-Type: send text/csv, application/json or application/jsonlines".into(),
            None,
        )),
        other => Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "ValidationError",
            format!("unsupported Content-Type {other:?}: send text/csv, application/json or application/jsonlines"),
            None,
        )),
    }
}

fn parse_accept(h: &HeaderMap) -> Result<Format, ApiError> {
    let Some(accept) = h.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Format::Json);
    };
    for part in accept.split(',') {
        match media_type(part).as_str() {
            "application/json" | "*/*" | "application/*" | "" => return Ok(Format::Json),
            "application/jsonlines" | "application/x-jsonlines" => return Ok(Format::JsonLines),
            _ => {}
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

async fn invoke(ep: Arc<Endpoint>, headers: HeaderMap, body: Body) -> Response {
    let Some(deployed) = ep.current() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            format!("no model is deployed to {} yet", ep.stage),
            None,
        )
        .into_response();
    };
    let fmt = match parse_content_type(&headers) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let accept = match parse_accept(&headers) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let bytes: Bytes = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let attribution = headers
        .get("x-amzn-sagemaker-custom-attributes")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split([',', ';'])
                .any(|kv| kv.trim().eq_ignore_ascii_case("attribution=true"))
        });
    let version = deployed.version;
    let work = move || -> Result<Vec<ScoreOut>, ApiError> {
        let dim = deployed.model.dim();
        let (flat, rows) = parse_records(fmt, &bytes, dim).map_err(|Invalid(rec, msg)| {
            error(
                StatusCode::BAD_REQUEST,
                "ValidationError",
                format!("record {rec}: {msg}"),
                Some(rec),
            )
        })?;
        let scored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let scores = deployed.model.score_rows(&flat, rows);
            scores
                .into_iter()
                .enumerate()
                .map(|(i, score)| ScoreOut {
                    score,
                    attribution: attribution
                        .then(|| deployed.model.attribution(&flat[i * dim..(i + 1) * dim])),
                })
                .collect::<Vec<_>>()
        }));
        match scored {
            Ok(s) if s.iter().all(|s| s.score.is_finite()) => Ok(s),
            _ => Err(error(
                StatusCode::FAILED_DEPENDENCY,
                "ModelError",
                "the model failed to score the request".into(),
                None,
            )),
        }
    };
    let result = if bytes_hint(&headers) > 64 * 1024 {
        tokio::task::spawn_blocking(work).await.unwrap_or_else(|_| {
            Err(error(
                StatusCode::FAILED_DEPENDENCY,
                "ModelError",
                "scoring task failed".into(),
                None,
            ))
        })
    } else {
        work()
    };
    let scores = match result {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let (body, ct) = match accept {
        Format::JsonLines => {
            let mut out = Vec::with_capacity(scores.len() * 24);
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
            (
                serde_json::to_vec(&Scores { scores: &scores }).expect("serialise"),
                "application/json",
            )
        }
    };
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r.headers_mut()
        .insert(VERSION_HEADER, HeaderValue::from(version));
    r
}

fn bytes_hint(h: &HeaderMap) -> usize {
    h.get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Bytes of an oversized body read and discarded so the client sees the 413 rather than a
/// reset connection; beyond this the connection is closed.
const DRAIN_LIMIT: usize = 64 << 20;

/// Collects the body up to [`MAX_BODY`]; an oversized body is drained and answered with 413.
async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let mut body = body;
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
                buf.extend_from_slice(&data);
            } else if total > DRAIN_LIMIT {
                break;
            }
        }
    }
    if total > MAX_BODY {
        return Err(too_large());
    }
    Ok(Bytes::from(buf))
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
