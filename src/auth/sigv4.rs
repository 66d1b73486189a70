//! AWS Signature Version 4 for HTTP requests with an `Authorization` header, as botocore signs
//! `sagemaker-runtime` calls.
//!
//! The canonical request is the method; the URI path with dot segments removed and every byte
//! but the unreserved ones and `/` percent-encoded (so an already encoded path is encoded
//! again, as botocore and the AWS SDKs do for every service but S3); the query pairs decoded,
//! re-encoded and sorted; each signed header's values trimmed, inner runs of spaces collapsed
//! and joined with `,`; the signed-header list; and the payload's SHA-256. The string to sign
//! adds the algorithm, `x-amz-date` and the credential scope `date/region/service/aws4_request`;
//! the key is derived from the secret through the scope's four parts.
//!
//! [`Verifier::check_headers`] does every check the headers allow before the body is read (so
//! an unauthenticated client cannot make the server read a large body);
//! [`Pending::finish`] hashes the body and compares signatures in constant time.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::credentials::{Credentials, KeyPair, Secret};

type HmacSha256 = Hmac<Sha256>;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's `x-amz-date` may be from the server's clock, either way (AWS's 5 min).
pub const MAX_SKEW: Duration = Duration::from_secs(300);
/// The longest `Authorization` header accepted (a real one is about 200 bytes).
pub const MAX_AUTHORIZATION_BYTES: usize = 4096;
/// Headers that change what a request means: when present they must be signed.
pub const MUST_SIGN: [&str; 7] = [
    "host",
    "x-amz-date",
    "content-type",
    "accept",
    "x-amz-content-sha256",
    "x-amz-security-token",
    "x-amzn-sagemaker-custom-attributes",
];

/// Where a signature is valid: the region and service of its credential scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub region: String,
    pub service: String,
}

/// The error codes the AWS SDKs know for a refused signature (`X-Amzn-ErrorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCode {
    MissingAuthenticationToken,
    IncompleteSignature,
    InvalidSignature,
    UnrecognizedClient,
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            RefusalCode::IncompleteSignature => "IncompleteSignatureException",
            RefusalCode::InvalidSignature => "InvalidSignatureException",
            RefusalCode::UnrecognizedClient => "UnrecognizedClientException",
        }
    }
}

/// Why a request was refused: the SDK's error code, a short reason (a metric label) and a
/// message for the caller that never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: RefusalCode,
    pub reason: &'static str,
    pub message: String,
}

fn refuse(code: RefusalCode, reason: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        reason,
        message: message.into(),
    }
}

fn incomplete(reason: &'static str, message: impl Into<String>) -> Refusal {
    refuse(RefusalCode::IncompleteSignature, reason, message)
}

fn invalid(reason: &'static str, message: impl Into<String>) -> Refusal {
    refuse(RefusalCode::InvalidSignature, reason, message)
}

/// Percent-encodes every byte but `A-Z a-z 0-9 - _ . ~` (and `/` when `keep_slash`).
fn uri_encode(s: &[u8], keep_slash: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else if b == b'/' && keep_slash {
            out.push('/');
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The path with `.` and `..` segments removed (RFC 3986 §5.2.4), then encoded again.
pub fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let trailing = path.ends_with('/') && path.len() > 1;
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut joined = String::from("/");
    joined.push_str(&segments.join("/"));
    if trailing && !segments.is_empty() {
        joined.push('/');
    }
    let mut out = String::with_capacity(joined.len() + 8);
    uri_encode(joined.as_bytes(), true, &mut out);
    out
}

/// The query's pairs decoded, strictly re-encoded and sorted by name, then value.
pub fn canonical_query(query: Option<&str>) -> String {
    let Some(q) = query else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let mut ke = String::new();
            let mut ve = String::new();
            uri_encode(&percent_decode(k), false, &mut ke);
            uri_encode(&percent_decode(v), false, &mut ve);
            (ke, ve)
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value as SigV4 canonicalises it: trimmed, inner runs of spaces collapsed to one.
fn canonical_value(v: &str, out: &mut String) {
    let mut space = false;
    for c in v.trim().chars() {
        if c == ' ' || c == '\t' {
            space = true;
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
}

/// The canonical request: `headers` are (lower-case name, its values) in signed order.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &[(&str, Vec<&str>)],
    payload_hash: &str,
) -> String {
    let mut s = String::with_capacity(256);
    s.push_str(method);
    s.push('\n');
    s.push_str(&canonical_uri(path));
    s.push('\n');
    s.push_str(&canonical_query(query));
    s.push('\n');
    for (name, values) in headers {
        s.push_str(name);
        s.push(':');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            canonical_value(v, &mut s);
        }
        s.push('\n');
    }
    s.push('\n');
    s.push_str(
        &headers
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(";"),
    );
    s.push('\n');
    s.push_str(payload_hash);
    s
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// The signing key for one day, region and service.
pub fn signing_key(secret: &Secret, date: &str, scope: &Scope) -> [u8; 32] {
    let k_date = hmac(
        format!("AWS4{}", secret.expose()).as_bytes(),
        date.as_bytes(),
    );
    let k_region = hmac(&k_date, scope.region.as_bytes());
    let k_service = hmac(&k_region, scope.service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn string_to_sign(amz_date: &str, credential_scope: &str, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{credential_scope}\n{}",
        sha256_hex(canonical.as_bytes())
    )
}

const AMZ_DATE: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");

pub fn format_amz_date(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(AMZ_DATE)
        .expect("a UTC time formats")
}

/// `YYYYMMDDTHHMMSSZ`, parsed by hand (it is on every request's path).
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u32)
        })
    };
    let month = time::Month::try_from(num(4..6)? as u8).ok()?;
    let date = time::Date::from_calendar_date(num(0..4)? as i32, month, num(6..8)? as u8).ok()?;
    let t = time::Time::from_hms(num(9..11)? as u8, num(11..13)? as u8, num(13..15)? as u8).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc().into())
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What a signature covers: the request as the client sends it.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub method: &'a str,
    /// The authority the client sends as `host` (e.g. `127.0.0.1:8080`).
    pub host: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// The other headers it sends (all signed).
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// Signs the requests rcfops sends to its own endpoints.
#[derive(Debug, Clone)]
pub struct Signer {
    pub key: KeyPair,
    pub scope: Scope,
}

impl Signer {
    /// The headers to add to `req` (`x-amz-date`, `authorization`) to sign it at `now`.
    pub fn sign(&self, req: &Outgoing<'_>, now: SystemTime) -> Vec<(&'static str, String)> {
        let Outgoing {
            method,
            host,
            path,
            query,
            headers,
            body,
        } = *req;
        let amz_date = format_amz_date(now);
        let mut all: Vec<(String, &str)> = headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), *v))
            .collect();
        all.push(("host".into(), host));
        all.push(("x-amz-date".into(), &amz_date));
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let list: Vec<(&str, Vec<&str>)> =
            all.iter().map(|(n, v)| (n.as_str(), vec![*v])).collect();
        let canonical = canonical_request(method, path, query, &list, &sha256_hex(body));
        let date = &amz_date[..8];
        let scope = format!(
            "{date}/{}/{}/aws4_request",
            self.scope.region, self.scope.service
        );
        let key = signing_key(&self.key.secret, date, &self.scope);
        let signature = hmac(
            &key,
            string_to_sign(&amz_date, &scope, &canonical).as_bytes(),
        );
        let signed: Vec<&str> = list.iter().map(|(n, _)| *n).collect();
        let authorization = format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={}",
            self.key.access_key_id,
            signed.join(";"),
            signature
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        vec![("x-amz-date", amz_date), ("authorization", authorization)]
    }
}

/// Checks requests against a credentials file and one scope.
#[derive(Clone)]
pub struct Verifier {
    credentials: Arc<Credentials>,
    scope: Scope,
    /// Keyed HMAC states of the day's signing keys, by (access key id, date): the four-step
    /// derivation and the key schedule run once a day per key, not once a request.
    keys: Arc<std::sync::RwLock<std::collections::HashMap<(String, String), HmacSha256>>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("credentials", &self.credentials)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Signing keys kept at most (one a day per key; older days are dropped when it fills).
const KEY_CACHE: usize = 256;

/// A request whose headers passed: what the body's hash completes.
#[derive(Debug)]
pub struct Pending {
    /// The canonical request up to (and without) the payload hash.
    head: String,
    claimed_payload: Option<String>,
    amz_date: String,
    credential_scope: String,
    mac: HmacSha256,
    signature: Vec<u8>,
    access_key_id: String,
}

impl Verifier {
    pub fn new(credentials: Arc<Credentials>, scope: Scope) -> Verifier {
        Verifier {
            credentials,
            scope,
            keys: Arc::default(),
        }
    }

    /// The keyed HMAC for `pair` on `date`, derived once and cached.
    fn keyed(&self, pair: &KeyPair, date: &str) -> HmacSha256 {
        let id = (pair.access_key_id.clone(), date.to_string());
        if let Some(m) = self.keys.read().unwrap_or_else(|e| e.into_inner()).get(&id) {
            return m.clone();
        }
        let key = signing_key(&pair.secret, date, &self.scope);
        let mac = HmacSha256::new_from_slice(&key).expect("HMAC takes any key length");
        let mut cache = self.keys.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= KEY_CACHE {
            cache.clear();
        }
        cache.insert(id, mac.clone());
        mac
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// A signer with the credentials file's first key, for rcfops's own requests.
    pub fn signer(&self) -> Signer {
        Signer {
            key: self.credentials.first().clone(),
            scope: self.scope.clone(),
        }
    }

    /// Every check the method, path, query and headers allow.
    pub fn check_headers(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        now: SystemTime,
    ) -> Result<Pending, Refusal> {
        let mut auth = headers.get_all("authorization").iter();
        let Some(value) = auth.next() else {
            if query.is_some_and(|q| q.to_ascii_lowercase().contains("x-amz-signature=")) {
                return Err(incomplete(
                    "presigned",
                    "presigned URLs are not accepted: sign with an Authorization header",
                ));
            }
            return Err(refuse(
                RefusalCode::MissingAuthenticationToken,
                "missing",
                "Missing Authentication Token: this endpoint requires requests signed with AWS \
                 Signature Version 4 (an Authorization header); use an AWS SDK or the AWS CLI \
                 with credentials from the endpoint's credentials file",
            ));
        };
        if auth.next().is_some() {
            return Err(incomplete(
                "duplicate_authorization",
                "the request has more than one Authorization header; send exactly one",
            ));
        }
        if value.len() > MAX_AUTHORIZATION_BYTES {
            return Err(incomplete(
                "oversized_authorization",
                format!(
                    "the Authorization header is {} bytes; at most {MAX_AUTHORIZATION_BYTES} are accepted",
                    value.len()
                ),
            ));
        }
        let value = value.to_str().map_err(|_| {
            incomplete(
                "malformed",
                "the Authorization header is not printable ASCII",
            )
        })?;
        let Some(params) = value.strip_prefix(ALGORITHM).filter(|r| r.starts_with(' ')) else {
            let alg = value.split_whitespace().next().unwrap_or("");
            return Err(incomplete(
                "algorithm",
                format!("unsupported authorization scheme {alg:?}: only {ALGORITHM} is accepted"),
            ));
        };
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in params.split(',') {
            let part = part.trim();
            let Some((k, v)) = part.split_once('=') else {
                return Err(incomplete(
                    "malformed",
                    format!(
                        "Authorization parameter {part:?} is not name=value; expected \
                         Credential=..., SignedHeaders=..., Signature=..."
                    ),
                ));
            };
            let slot = match k.trim() {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed,
                "Signature" => &mut signature,
                other => {
                    return Err(incomplete(
                        "malformed",
                        format!(
                            "unknown Authorization parameter {other:?}; expected Credential, \
                             SignedHeaders and Signature"
                        ),
                    ))
                }
            };
            if slot.replace(v.trim()).is_some() {
                return Err(incomplete(
                    "malformed",
                    format!("Authorization parameter {} appears twice", k.trim()),
                ));
            }
        }
        fn need<'a>(v: Option<&'a str>, name: &str) -> Result<&'a str, Refusal> {
            v.ok_or_else(|| {
                incomplete(
                    "malformed",
                    format!("Authorization header requires '{name}' parameter"),
                )
            })
        }
        let credential = need(credential, "Credential")?;
        let signed = need(signed, "SignedHeaders")?;
        let signature = need(signature, "Signature")?;
        let parts: Vec<&str> = credential.split('/').collect();
        let [key_id, date, region, service, terminator] = parts[..] else {
            return Err(incomplete(
                "malformed",
                format!(
                    "Credential {credential:?} is not KEY_ID/YYYYMMDD/region/service/aws4_request"
                ),
            ));
        };
        if terminator != "aws4_request" || key_id.is_empty() || date.len() != 8 {
            return Err(incomplete(
                "malformed",
                format!(
                    "Credential {credential:?} is not KEY_ID/YYYYMMDD/region/service/aws4_request"
                ),
            ));
        }
        let signature = match decode_hex(signature) {
            Some(s) if s.len() == 32 => s,
            _ => {
                return Err(incomplete(
                    "signature_format",
                    "Signature must be 64 hexadecimal characters (an HMAC-SHA256)",
                ))
            }
        };
        let names: Vec<&str> = signed.split(';').collect();
        let well_formed = names.iter().all(|n| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        }) && names.windows(2).all(|w| w[0] < w[1]);
        if !well_formed {
            return Err(incomplete(
                "malformed",
                format!("SignedHeaders {signed:?} must be lower-case header names, sorted, unique, separated by ;"),
            ));
        }
        for required in ["host", "x-amz-date"] {
            if !names.contains(&required) {
                return Err(incomplete(
                    "unsigned_header",
                    format!("'{required}' must be a SignedHeader in the Authorization header"),
                ));
            }
        }
        for must in MUST_SIGN {
            if headers.contains_key(must) && !names.contains(&must) {
                return Err(incomplete(
                    "unsigned_header",
                    format!(
                        "the request's {must} header is not signed; it must be in SignedHeaders"
                    ),
                ));
            }
        }
        let mut canonical_headers: Vec<(&str, Vec<&str>)> = Vec::with_capacity(names.len());
        for n in &names {
            let mut values = Vec::new();
            for v in headers.get_all(*n) {
                values.push(v.to_str().map_err(|_| {
                    incomplete(
                        "malformed",
                        format!("signed header {n} is not printable ASCII"),
                    )
                })?);
            }
            if values.is_empty() {
                return Err(incomplete(
                    "signed_header_missing",
                    format!("signed header {n} is not in the request"),
                ));
            }
            canonical_headers.push((n, values));
        }
        if headers.contains_key("x-amz-security-token") {
            return Err(refuse(
                RefusalCode::UnrecognizedClient,
                "session_token",
                "temporary credentials (x-amz-security-token) are not accepted: sign with a key \
                 from the endpoint's credentials file",
            ));
        }
        let Some(pair) = self.credentials.get(key_id) else {
            return Err(refuse(
                RefusalCode::UnrecognizedClient,
                "unknown_key",
                format!(
                    "The security token included in the request is invalid: access key id \
                     {key_id} is not in this endpoint's credentials file"
                ),
            ));
        };
        let mut dates = headers.get_all("x-amz-date").iter();
        let amz_date =
            match (dates.next(), dates.next()) {
                (None, _) => return Err(incomplete(
                    "missing_date",
                    "the request has no x-amz-date header (YYYYMMDDTHHMMSSZ); SigV4 requires it",
                )),
                (Some(_), Some(_)) => {
                    return Err(incomplete(
                        "bad_date",
                        "the request has more than one x-amz-date header",
                    ))
                }
                (Some(d), None) => d.to_str().unwrap_or(""),
            };
        let Some(when) = parse_amz_date(amz_date) else {
            return Err(incomplete(
                "bad_date",
                format!("x-amz-date {amz_date:?} is not YYYYMMDDTHHMMSSZ"),
            ));
        };
        if !amz_date.starts_with(date) {
            return Err(invalid(
                "scope_date",
                format!("Date in Credential scope ({date}) does not match the date of x-amz-date ({amz_date})"),
            ));
        }
        let server = || format_amz_date(now);
        match now.duration_since(when) {
            Ok(age) if age > MAX_SKEW => {
                return Err(invalid(
                    "expired",
                    format!("Signature expired: {amz_date} is now earlier than 5 minutes before the server's time {}; check the client's clock", server()),
                ))
            }
            Err(e) if e.duration() > MAX_SKEW => {
                return Err(invalid(
                    "not_yet_valid",
                    format!("Signature not yet current: {amz_date} is more than 5 minutes after the server's time {}; check the client's clock", server()),
                ))
            }
            _ => {}
        }
        if region != self.scope.region {
            return Err(invalid(
                "wrong_region",
                format!(
                    "Credential should be scoped to a valid region: this endpoint is in '{}', not '{region}'",
                    self.scope.region
                ),
            ));
        }
        if service != self.scope.service {
            return Err(invalid(
                "wrong_service",
                format!(
                    "Credential should be scoped to correct service: '{}', not '{service}'",
                    self.scope.service
                ),
            ));
        }
        let claimed_payload = match headers.get("x-amz-content-sha256") {
            None => None,
            Some(v) => {
                let v = v.to_str().unwrap_or("").to_ascii_lowercase();
                if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(incomplete(
                        "payload_hash",
                        "x-amz-content-sha256 must be the body's SHA-256 in hex (unsigned payloads are not accepted)",
                    ));
                }
                Some(v)
            }
        };
        let mut head = canonical_request(method, path, query, &canonical_headers, "");
        // `canonical_request` ended with the (empty) payload hash: the body's completes it.
        debug_assert!(head.ends_with('\n'));
        head.shrink_to_fit();
        Ok(Pending {
            head,
            claimed_payload,
            credential_scope: format!("{date}/{region}/{service}/aws4_request"),
            mac: self.keyed(pair, date),
            amz_date: amz_date.to_string(),
            signature,
            access_key_id: key_id.to_string(),
        })
    }
}

impl Pending {
    /// Completes the check with the body: its hash (and `x-amz-content-sha256`, when sent)
    /// and the signature, compared in constant time. `Ok` names the access key id.
    pub fn finish(self, body: &[u8]) -> Result<String, Refusal> {
        let hash = sha256_hex(body);
        if let Some(claimed) = &self.claimed_payload {
            if *claimed != hash {
                return Err(invalid(
                    "payload_hash",
                    "the body's SHA-256 differs from x-amz-content-sha256: the body was changed after signing",
                ));
            }
        }
        let mut canonical = self.head;
        canonical.push_str(&hash);
        let sts = string_to_sign(&self.amz_date, &self.credential_scope, &canonical);
        let mut mac = self.mac;
        mac.update(sts.as_bytes());
        mac.verify_slice(&self.signature).map_err(|_| {
            invalid(
                "signature_mismatch",
                "The request signature we calculated does not match the signature you provided. \
                 Check your AWS secret access key and signing method (the path, query, signed \
                 headers and body must be sent exactly as signed)",
            )
        })?;
        Ok(self.access_key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// AWS's published example (the SigV4 documentation's IAM `ListUsers` GET).
    #[test]
    fn the_published_example_signs_to_its_published_signature() {
        let headers = [
            (
                "content-type",
                vec!["application/x-www-form-urlencoded; charset=utf-8"],
            ),
            ("host", vec!["iam.amazonaws.com"]),
            ("x-amz-date", vec!["20150830T123600Z"]),
        ];
        let canonical = canonical_request(
            "GET",
            "/",
            Some("Action=ListUsers&Version=2010-05-08"),
            &headers,
            &sha256_hex(b""),
        );
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let scope = Scope {
            region: "us-east-1".into(),
            service: "iam".into(),
        };
        let key = signing_key(
            &Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            "20150830",
            &scope,
        );
        let sts = string_to_sign(
            "20150830T123600Z",
            "20150830/us-east-1/iam/aws4_request",
            &canonical,
        );
        let sig: String = hmac(&key, sts.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            sig,
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn paths_are_normalised_and_encoded_again() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/a/./b/../c"), "/a/c");
        assert_eq!(canonical_uri("/a//b/"), "/a/b/");
        assert_eq!(canonical_uri("/a%20b"), "/a%2520b");
        assert_eq!(canonical_uri("/é"), "/%C3%A9");
        assert_eq!(canonical_query(Some("b=2&a=1&a=0")), "a=0&a=1&b=2");
        assert_eq!(canonical_query(Some("x=a%20b&y")), "x=a%20b&y=");
        assert_eq!(canonical_query(Some("k=a+b")), "k=a%2Bb");
    }

    fn verifier() -> Verifier {
        let creds = Credentials::parse(
            "[default]\naws_access_key_id=AKIDTEST\naws_secret_access_key=secret-one\n",
        )
        .unwrap();
        Verifier::new(
            Arc::new(creds),
            Scope {
                region: "eu-west-1".into(),
                service: "sagemaker".into(),
            },
        )
    }

    fn signed(v: &Verifier, body: &[u8], now: SystemTime) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("text/csv"));
        let req = Outgoing {
            method: "POST",
            host: "127.0.0.1:8080",
            path: "/endpoints/prod/invocations",
            query: None,
            headers: &[("content-type", "text/csv")],
            body,
        };
        for (n, val) in v.signer().sign(&req, now) {
            h.insert(n, HeaderValue::from_str(&val).unwrap());
        }
        h.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
        h
    }

    #[test]
    fn a_signed_request_passes_and_any_change_fails() {
        let v = verifier();
        let now = SystemTime::now();
        let h = signed(&v, b"1,2,3", now);
        let check = |path: &str, h: &HeaderMap, body: &[u8], at: SystemTime| {
            v.check_headers("POST", path, None, h, at)
                .and_then(|p| p.finish(body))
        };
        let path = "/endpoints/prod/invocations";
        assert_eq!(check(path, &h, b"1,2,3", now).unwrap(), "AKIDTEST");
        let e = check(path, &h, b"1,2,4", now).unwrap_err();
        assert_eq!(e.reason, "signature_mismatch");
        let e = check("/endpoints/prod2/invocations", &h, b"1,2,3", now).unwrap_err();
        assert_eq!(e.reason, "signature_mismatch");
        let late = now + Duration::from_secs(301);
        assert_eq!(
            check(path, &h, b"1,2,3", late).unwrap_err().reason,
            "expired"
        );
        let early = now - Duration::from_secs(301);
        assert_eq!(
            check(path, &h, b"1,2,3", early).unwrap_err().reason,
            "not_yet_valid"
        );
        // 4 minutes either way is inside the window.
        assert!(check(path, &h, b"1,2,3", now + Duration::from_secs(240)).is_ok());
        assert!(check(path, &h, b"1,2,3", now - Duration::from_secs(240)).is_ok());
        // Header-value whitespace is normalised.
        let mut spaced = h.clone();
        spaced.insert("content-type", HeaderValue::from_static("  text/csv  "));
        assert!(check(path, &spaced, b"1,2,3", now).is_ok());
        // Upper-case hex in the signature is the same signature.
        let mut upper = h.clone();
        let a = upper["authorization"].to_str().unwrap().to_string();
        let (head, sig) = a.rsplit_once("Signature=").unwrap();
        upper.insert(
            "authorization",
            HeaderValue::from_str(&format!("{head}Signature={}", sig.to_uppercase())).unwrap(),
        );
        assert!(check(path, &upper, b"1,2,3", now).is_ok());
    }

    #[test]
    fn refusals_name_the_problem_never_the_secret() {
        let v = verifier();
        let now = SystemTime::now();
        let h = signed(&v, b"x", now);
        let e = v
            .check_headers("POST", "/invocations", None, &HeaderMap::new(), now)
            .unwrap_err();
        assert_eq!(e.code, RefusalCode::MissingAuthenticationToken);
        let mut dup = h.clone();
        dup.append("authorization", h["authorization"].clone());
        let e = v.check_headers("POST", "/", None, &dup, now).unwrap_err();
        assert_eq!(e.reason, "duplicate_authorization");
        let mut no_date = h.clone();
        no_date.remove("x-amz-date");
        let e = v
            .check_headers("POST", "/", None, &no_date, now)
            .unwrap_err();
        assert_eq!(e.reason, "signed_header_missing");
        let mut unsigned = h.clone();
        unsigned.insert("accept", HeaderValue::from_static("application/json"));
        let e = v
            .check_headers("POST", "/", None, &unsigned, now)
            .unwrap_err();
        assert_eq!(e.reason, "unsigned_header");
        assert!(!format!("{e:?}").contains("secret-one"));
    }
}
