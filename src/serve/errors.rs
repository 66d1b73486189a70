//! SageMaker-style error answers: a status, an `x-amzn-errortype` code and a JSON body that
//! names the problem (and the record at fault, when there is one).

use super::*;

#[derive(Serialize)]
pub(super) struct ErrorBody<'a> {
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
    /// An authentication refusal: the body is AWS's `{"__type", "message"}`.
    auth: bool,
}

#[derive(Serialize)]
struct AuthErrorBody<'a> {
    #[serde(rename = "__type")]
    code: &'a str,
    message: &'a str,
}

/// 403 with the AWS SDKs' error code for a refused signature.
pub(super) fn refused(r: crate::auth::Refusal) -> ApiError {
    ApiError {
        status: StatusCode::FORBIDDEN,
        code: r.code.as_str(),
        message: r.message,
        record: None,
        auth: true,
    }
}

pub(super) fn error(
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
        auth: false,
    }
}

impl ApiError {
    /// An authentication refusal.
    pub(super) fn is_auth(&self) -> bool {
        self.auth
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = if self.auth {
            serde_json::to_vec(&AuthErrorBody {
                code: self.code,
                message: &self.message,
            })
        } else {
            serde_json::to_vec(&ErrorBody {
                code: self.code,
                message: self.message,
                record: self.record,
            })
        }
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

pub(super) async fn not_found(method: Method, uri: Uri) -> Response {
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

pub(super) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
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

pub(super) fn no_model(ep: &Endpoint) -> ApiError {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        format!("no model is deployed to {} yet", ep.stage),
        None,
    )
}

pub(super) fn model_failed() -> ApiError {
    error(
        StatusCode::FAILED_DEPENDENCY,
        "ModelError",
        "the model failed to score the request".into(),
        None,
    )
}

pub(super) fn too_large() -> ApiError {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "ValidationError",
        format!(
            "request body exceeds {MAX_BODY} bytes (SageMaker's payload limit); split the batch"
        ),
        None,
    )
}
