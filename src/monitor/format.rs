//! The files Model Monitor reads and writes, in SageMaker's formats (pure).
//!
//! - A **capture line** is one request and its answer: SageMaker's data-capture JSON line
//!   (`captureData.endpointInput` / `endpointOutput`, `eventMetadata`, `eventVersion: "0"`),
//!   with the stage, the served version and the scores under `eventMetadata.rcfops`.
//! - A **ground-truth line** is SageMaker's ground-truth JSON line: `groundTruthData` (`data`,
//!   `encoding`) and `eventMetadata.eventId` (or `inferenceId`).
//! - The capture path is `<endpoint>/AllTraffic/yyyy/mm/dd/hh/<mm>-<ss>-<ms>-<uuid>.jsonl`, so
//!   file names sort in time order within an hour, as SageMaker's do.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::domain::Stage;

/// SageMaker's name for the one variant an rcfops endpoint has.
pub const VARIANT: &str = "AllTraffic";

/// One captured request (a line of a capture file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptureLine {
    pub capture_data: CaptureData,
    pub event_metadata: EventMetadata,
    pub event_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptureData {
    pub endpoint_input: Payload,
    pub endpoint_output: Payload,
}

/// A request or response body as SageMaker captures it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub observed_content_type: String,
    /// `INPUT` or `OUTPUT`.
    pub mode: String,
    pub data: String,
    /// `CSV`, `JSON` or `BASE64`.
    pub encoding: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMetadata {
    pub event_id: String,
    /// From the request's `X-Amzn-SageMaker-Inference-Id` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_id: Option<String>,
    /// RFC 3339, UTC, milliseconds.
    pub inference_time: String,
    /// What rcfops adds: which stage and version answered, and the scores it gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcfops: Option<Served>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Served {
    pub stage: Stage,
    pub model_version: i64,
    pub threshold: f64,
    pub scores: Vec<f64>,
}

/// A body as SageMaker's capture encodes it by default: `text/csv` as CSV text,
/// `application/json` as JSON text, anything else (or bytes that are not UTF-8) as base64.
fn encode<'a>(content_type: &str, body: &'a [u8]) -> (std::borrow::Cow<'a, str>, &'static str) {
    let media = content_type.split(';').next().unwrap_or("").trim();
    match std::str::from_utf8(body) {
        Ok(s) if media.eq_ignore_ascii_case("text/csv") => (s.into(), "CSV"),
        Ok(s) if media.eq_ignore_ascii_case("application/json") => (s.into(), "JSON"),
        _ => (
            base64::engine::general_purpose::STANDARD
                .encode(body)
                .into(),
            "BASE64",
        ),
    }
}

/// One captured request, borrowed, as [`write_line`] writes it.
pub struct Event<'a> {
    pub input_type: &'a str,
    pub input: &'a [u8],
    pub output_type: &'a str,
    pub output: &'a [u8],
    pub event_id: &'a str,
    pub inference_id: Option<&'a str>,
    pub inference_time: &'a str,
    pub stage: Stage,
    pub version: i64,
    pub threshold: f64,
    pub scores: &'a [f64],
}

/// Appends `e` as one capture line (with its newline) to `out`: the same JSON as
/// serialising a [`CaptureLine`], written without building one.
pub fn write_line(out: &mut Vec<u8>, e: &Event) {
    let text = |out: &mut Vec<u8>, s: &str| {
        serde_json::to_writer(&mut *out, s).expect("a string serialises");
    };
    let payload = |out: &mut Vec<u8>, ct: &str, mode: &str, body: &[u8]| {
        let (data, encoding) = encode(ct, body);
        out.extend_from_slice(b"{\"observedContentType\":");
        text(out, ct);
        out.extend_from_slice(b",\"mode\":\"");
        out.extend_from_slice(mode.as_bytes());
        out.extend_from_slice(b"\",\"data\":");
        text(out, &data);
        out.extend_from_slice(b",\"encoding\":\"");
        out.extend_from_slice(encoding.as_bytes());
        out.extend_from_slice(b"\"}");
    };
    out.extend_from_slice(b"{\"captureData\":{\"endpointInput\":");
    payload(out, e.input_type, "INPUT", e.input);
    out.extend_from_slice(b",\"endpointOutput\":");
    payload(out, e.output_type, "OUTPUT", e.output);
    out.extend_from_slice(b"},\"eventMetadata\":{\"eventId\":");
    text(out, e.event_id);
    if let Some(id) = e.inference_id {
        out.extend_from_slice(b",\"inferenceId\":");
        text(out, id);
    }
    out.extend_from_slice(b",\"inferenceTime\":");
    text(out, e.inference_time);
    out.extend_from_slice(b",\"rcfops\":{\"stage\":\"");
    out.extend_from_slice(e.stage.as_str().as_bytes());
    out.extend_from_slice(b"\",\"modelVersion\":");
    out.extend_from_slice(e.version.to_string().as_bytes());
    out.extend_from_slice(b",\"threshold\":");
    serde_json::to_writer(&mut *out, &e.threshold).expect("a number serialises");
    out.extend_from_slice(b",\"scores\":");
    serde_json::to_writer(&mut *out, e.scores).expect("numbers serialise");
    out.extend_from_slice(b"}},\"eventVersion\":\"0\"}\n");
}

impl Payload {
    /// A body as SageMaker's capture encodes it (see [`write_line`]).
    pub fn new(content_type: &str, mode: &str, body: &[u8]) -> Payload {
        let (data, encoding) = encode(content_type, body);
        Payload {
            observed_content_type: content_type.to_string(),
            mode: mode.to_string(),
            data: data.into_owned(),
            encoding: encoding.to_string(),
        }
    }

    /// The body bytes back.
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        match self.encoding.as_str() {
            "CSV" | "JSON" => Ok(self.data.as_bytes().to_vec()),
            "BASE64" => base64::engine::general_purpose::STANDARD
                .decode(&self.data)
                .map_err(|e| format!("data is not valid base64: {e}")),
            other => Err(format!(
                "unknown encoding {other:?} (expected CSV, JSON or BASE64)"
            )),
        }
    }
}

/// `inferenceTime` of a unix time in milliseconds.
pub fn inference_time(unix_ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(unix_ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_default()
}

/// Unix seconds of an `inferenceTime`.
pub fn parse_inference_time(s: &str) -> Option<f64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp_nanos() as f64 / 1e9)
}

/// The capture file's path below `<state>/capture` for a file opened at `unix_ms`.
pub fn capture_path(endpoint: &str, unix_ms: i64, id: &str) -> std::path::PathBuf {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(unix_ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    std::path::PathBuf::from(endpoint)
        .join(VARIANT)
        .join(format!("{:04}", t.year()))
        .join(format!("{:02}", u8::from(t.month())))
        .join(format!("{:02}", t.day()))
        .join(format!("{:02}", t.hour()))
        .join(format!(
            "{:02}-{:02}-{:03}-{id}.jsonl",
            t.minute(),
            t.second(),
            t.millisecond()
        ))
}

/// The hour a unix time in milliseconds falls in (the rotation period of capture files).
pub fn hour_of(unix_ms: i64) -> i64 {
    unix_ms.div_euclid(3_600_000)
}

/// A random (version 4) UUID in its text form.
pub fn uuid4(rng: &mut impl rand::Rng) -> String {
    let mut b: [u8; 16] = rng.random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[(x >> 4) as usize] as char);
        out.push(HEX[(x & 15) as usize] as char);
    }
    out
}

/// `inferenceTime` text, formatting the date and time once a second.
#[derive(Default)]
pub struct TimeText {
    second: Option<i64>,
    prefix: String,
}

impl TimeText {
    /// The `inferenceTime` of `unix_ms` (equal to [`inference_time`]).
    pub fn of(&mut self, unix_ms: i64) -> String {
        let second = unix_ms.div_euclid(1000);
        if self.second != Some(second) {
            let full = inference_time(second * 1000);
            self.prefix = full[..full.len() - 4].to_string();
            self.second = Some(second);
        }
        format!("{}{:03}Z", self.prefix, unix_ms.rem_euclid(1000))
    }
}

/// Every `.jsonl` file below `dir`, with its modification time and size.
pub fn capture_files(
    dir: &std::path::Path,
    out: &mut Vec<(std::path::PathBuf, std::time::SystemTime, u64)>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_dir() {
            capture_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "jsonl") {
            let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            out.push((path, modified, meta.len()));
        }
    }
}

/// What a ground-truth line names.
#[derive(Debug, Clone, PartialEq)]
pub enum EventRef {
    EventId(String),
    InferenceId(String),
}

impl std::fmt::Display for EventRef {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            EventRef::EventId(id) => write!(f, "eventId {id:?}"),
            EventRef::InferenceId(id) => write!(f, "inferenceId {id:?}"),
        }
    }
}

/// One ground-truth line: the event it labels and one label per record of that request.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    pub event: EventRef,
    pub labels: Vec<bool>,
}

/// Parses one ground-truth line. `data` holds the request's labels in record order, separated
/// by commas or newlines (`CSV`), or as a JSON number, boolean or array (`JSON`); a label is
/// 1/true (fraud) or 0/false.
pub fn parse_ground_truth(line: &str) -> Result<GroundTruth, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw {
        ground_truth_data: Option<RawData>,
        event_metadata: Option<RawMeta>,
        event_version: Option<String>,
    }
    #[derive(Deserialize)]
    struct RawData {
        data: Option<serde_json::Value>,
        encoding: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct RawMeta {
        event_id: Option<String>,
        inference_id: Option<String>,
    }
    let raw: Raw = serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    if let Some(v) = &raw.event_version {
        if v != "0" {
            return Err(format!(
                "eventVersion {v:?} is not supported (expected \"0\")"
            ));
        }
    }
    let meta = raw
        .event_metadata
        .ok_or("missing eventMetadata (with eventId or inferenceId)")?;
    let event = match (meta.event_id, meta.inference_id) {
        (Some(id), _) if !id.trim().is_empty() => EventRef::EventId(id),
        (_, Some(id)) if !id.trim().is_empty() => EventRef::InferenceId(id),
        _ => return Err("eventMetadata has neither eventId nor inferenceId".into()),
    };
    let gt = raw
        .ground_truth_data
        .ok_or("missing groundTruthData (with data and encoding)")?;
    let data = gt.data.ok_or("missing groundTruthData.data")?;
    let encoding = gt.encoding.unwrap_or_else(|| "CSV".into());
    let label_of = |v: &serde_json::Value| -> Result<bool, String> {
        match v {
            serde_json::Value::Bool(b) => Ok(*b),
            serde_json::Value::Number(n) if n.as_f64() == Some(1.0) => Ok(true),
            serde_json::Value::Number(n) if n.as_f64() == Some(0.0) => Ok(false),
            serde_json::Value::String(s) => label_text(s),
            other => Err(format!("label {other} is not 0 or 1")),
        }
    };
    let labels = match encoding.to_ascii_uppercase().as_str() {
        "CSV" => {
            let text = match &data {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            text.split([',', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(label_text)
                .collect::<Result<Vec<_>, _>>()?
        }
        "JSON" => {
            let v = match &data {
                serde_json::Value::String(s) => serde_json::from_str(s)
                    .map_err(|e| format!("groundTruthData.data is not JSON: {e}"))?,
                other => other.clone(),
            };
            match &v {
                serde_json::Value::Array(a) => a.iter().map(label_of).collect::<Result<_, _>>()?,
                one => vec![label_of(one)?],
            }
        }
        other => {
            return Err(format!(
                "groundTruthData.encoding {other:?} is not supported (use CSV or JSON)"
            ))
        }
    };
    if labels.is_empty() {
        return Err("groundTruthData.data holds no label".into());
    }
    Ok(GroundTruth { event, labels })
}

fn label_text(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "1.0" | "true" => Ok(true),
        "0" | "0.0" | "false" => Ok(false),
        other => Err(format!("label {other:?} is not 0 or 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_encodings_follow_sagemaker_defaults() {
        let csv = Payload::new("text/csv; charset=utf-8", "INPUT", b"1,2\n3,4");
        assert_eq!(
            (csv.encoding.as_str(), csv.data.as_str()),
            ("CSV", "1,2\n3,4")
        );
        let json = Payload::new("application/json", "OUTPUT", b"{\"scores\":[]}");
        assert_eq!(json.encoding, "JSON");
        let lines = Payload::new("application/jsonlines", "INPUT", b"[1,2]\n");
        assert_eq!(lines.encoding, "BASE64");
        assert_eq!(lines.bytes().unwrap(), b"[1,2]\n");
        let binary = Payload::new("text/csv", "INPUT", &[0xff, 0xfe]);
        assert_eq!(binary.encoding, "BASE64");
        assert_eq!(binary.bytes().unwrap(), vec![0xff, 0xfe]);
    }

    #[test]
    fn paths_and_times_are_utc_and_sort_in_time_order() {
        // 2026-12-02T17:05:09.042Z
        let ms = 1_796_231_109_042;
        let p = capture_path("fraud-prod", ms, "u");
        assert_eq!(
            p,
            std::path::Path::new("fraud-prod/AllTraffic/2026/12/02/17/05-09-042-u.jsonl")
        );
        assert_eq!(inference_time(ms), "2026-12-02T17:05:09.042Z");
        let back = parse_inference_time(&inference_time(ms)).unwrap();
        assert_eq!((back * 1e3).round() as i64, ms);
        assert_eq!(hour_of(ms), hour_of(ms - 5 * 60_000 - 9_042));
        assert_ne!(hour_of(ms), hour_of(ms - 5 * 60_000 - 9_043));
    }

    #[test]
    fn a_written_line_reads_back_as_the_capture_line() {
        let mut out = Vec::new();
        let mut times = TimeText::default();
        let e = Event {
            input_type: "text/csv",
            input: b"1,\"2\"\n3,4",
            output_type: "application/jsonlines",
            output: b"{\"score\":1.5}\n",
            event_id: "e-1",
            inference_id: Some("caller \"7\""),
            inference_time: &times.of(1_796_231_109_042),
            stage: Stage::Production,
            version: 3,
            threshold: 1.25,
            scores: &[1.5, 0.25],
        };
        write_line(&mut out, &e);
        assert_eq!(out.last(), Some(&b'\n'));
        let read: CaptureLine = serde_json::from_slice(&out).unwrap();
        let want = CaptureLine {
            capture_data: CaptureData {
                endpoint_input: Payload::new("text/csv", "INPUT", e.input),
                endpoint_output: Payload::new("application/jsonlines", "OUTPUT", e.output),
            },
            event_metadata: EventMetadata {
                event_id: "e-1".into(),
                inference_id: Some("caller \"7\"".into()),
                inference_time: "2026-12-02T17:05:09.042Z".into(),
                rcfops: Some(Served {
                    stage: Stage::Production,
                    model_version: 3,
                    threshold: 1.25,
                    scores: vec![1.5, 0.25],
                }),
            },
            event_version: "0".into(),
        };
        assert_eq!(read, want);
        assert_eq!(serde_json::to_vec(&want).unwrap(), out[..out.len() - 1]);
        for ms in [0, 999, 1_000, 1_796_231_109_999] {
            assert_eq!(times.of(ms), inference_time(ms));
        }
    }

    #[test]
    fn uuids_are_version_4() {
        let mut rng = rand_pcg::Pcg64Mcg::new(7);
        let u = uuid4(&mut rng);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(u, uuid4(&mut rng));
    }

    #[test]
    fn ground_truth_lines_in_every_form() {
        let g = parse_ground_truth(
            r#"{"groundTruthData":{"data":"1","encoding":"CSV"},"eventMetadata":{"eventId":"e1"},"eventVersion":"0"}"#,
        )
        .unwrap();
        assert_eq!(g.event, EventRef::EventId("e1".into()));
        assert_eq!(g.labels, vec![true]);
        let g = parse_ground_truth(
            r#"{"groundTruthData":{"data":"0,1,0","encoding":"CSV"},"eventMetadata":{"inferenceId":"i9"}}"#,
        )
        .unwrap();
        assert_eq!(g.event, EventRef::InferenceId("i9".into()));
        assert_eq!(g.labels, vec![false, true, false]);
        let g = parse_ground_truth(
            r#"{"groundTruthData":{"data":"[true,0]","encoding":"JSON"},"eventMetadata":{"eventId":"e"}}"#,
        )
        .unwrap();
        assert_eq!(g.labels, vec![true, false]);
    }

    #[test]
    fn malformed_ground_truth_is_named() {
        for (line, says) in [
            ("not json", "not a JSON object"),
            (
                r#"{"groundTruthData":{"data":"1"}}"#,
                "missing eventMetadata",
            ),
            (
                r#"{"groundTruthData":{"data":"1"},"eventMetadata":{}}"#,
                "neither eventId nor inferenceId",
            ),
            (
                r#"{"eventMetadata":{"eventId":"e"}}"#,
                "missing groundTruthData",
            ),
            (
                r#"{"groundTruthData":{"data":"2"},"eventMetadata":{"eventId":"e"}}"#,
                "is not 0 or 1",
            ),
            (
                r#"{"groundTruthData":{"data":"1","encoding":"XML"},"eventMetadata":{"eventId":"e"}}"#,
                "not supported",
            ),
            (
                r#"{"groundTruthData":{"data":"1"},"eventMetadata":{"eventId":"e"},"eventVersion":"2"}"#,
                "eventVersion",
            ),
            (
                r#"{"groundTruthData":{"data":""},"eventMetadata":{"eventId":"e"}}"#,
                "no label",
            ),
        ] {
            let e = parse_ground_truth(line).unwrap_err();
            assert!(e.contains(says), "{line}: {e}");
        }
    }
}
