//! The wire formats: request content types (`text/csv`, `application/json`,
//! `application/jsonlines`) into records, the `Accept` choice of the answer, and the score
//! documents. One table of media types serves the parser, the `Accept` choice and the metrics.

use super::*;

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Format {
    Csv,
    Json,
    JsonLines,
}

/// The media types each format answers to (case-insensitive); the first is its name.
const MEDIA_TYPES: [(Format, &str); 4] = [
    (Format::Csv, "text/csv"),
    (Format::Json, "application/json"),
    (Format::JsonLines, "application/jsonlines"),
    (Format::JsonLines, "application/x-jsonlines"),
];

impl Format {
    /// The format a Content-Type or Accept element names; parameters (`charset`, `q`) are
    /// ignored. The one mapping from media types to formats (parser, `Accept`, metrics).
    pub fn of_media_type(v: &str) -> Option<Format> {
        let m = media_type(v);
        MEDIA_TYPES
            .iter()
            .find(|(_, name)| m.eq_ignore_ascii_case(name))
            .map(|(f, _)| *f)
    }
}

/// The media type of a Content-Type or Accept element, parameters (`charset`, `q`) dropped.
pub(super) fn media_type(v: &str) -> &str {
    v.split(';').next().unwrap_or("").trim()
}

pub(super) fn parse_content_type(h: &HeaderMap) -> Result<Format, ApiError> {
    let ct = h
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().map(media_type).unwrap_or("?"))
        .unwrap_or("");
    if let Some(f) = Format::of_media_type(ct) {
        Ok(f)
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

pub(super) fn parse_accept(h: &HeaderMap) -> Result<Format, ApiError> {
    let Some(accept) = h.get(header::ACCEPT) else {
        return Ok(Format::Json);
    };
    let accept = accept.to_str().unwrap_or("?");
    for part in accept.split(',') {
        let m = media_type(part);
        match Format::of_media_type(m) {
            // Answers are JSON or JSON lines; JSON is also the answer to anything-goes.
            Some(f @ (Format::Json | Format::JsonLines)) => return Ok(f),
            _ if m.is_empty() || m == "*/*" || m.eq_ignore_ascii_case("application/*") => {
                return Ok(Format::Json)
            }
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

pub(super) struct Invalid(pub(super) usize, pub(super) String);

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
pub(super) fn parse_records(
    fmt: Format,
    body: &[u8],
    dim: usize,
) -> Result<(Vec<f64>, usize), Invalid> {
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

pub(super) fn json_number(v: &serde_json::Value) -> Result<f64, String> {
    match v.as_f64() {
        Some(x) if x.is_finite() => Ok(x),
        _ => Err(format!("{v} is not a finite number")),
    }
}

#[derive(Serialize)]
pub(super) struct ScoreOut {
    pub(super) score: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) attribution: Option<Vec<crate::model::Attribution>>,
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
