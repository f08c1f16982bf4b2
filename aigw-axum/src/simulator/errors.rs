//! Error responses in each provider's own shape (status, headers and body).

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

/// The wire dialect a route speaks; it decides authentication and error shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Provider {
    /// OpenAI and OpenAI-compatible prefixes.
    OpenAi,
    /// Azure OpenAI deployments.
    Azure,
    /// Anthropic's own API.
    Anthropic,
    /// AWS Bedrock runtime.
    Bedrock,
    /// Vertex AI, Google publisher models.
    Vertex,
    /// Vertex AI, Anthropic publisher models (`rawPredict`).
    VertexAnthropic,
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// An error as OpenAI sends it: the body pretty-printed with four-space indents and a
/// final newline, and the headers its SDKs read (`x-request-id` for `request_id`,
/// processing time, rate-limit state).
fn openai_error(status: StatusCode, body: &Value) -> Response {
    let mut bytes = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut bytes, fmt);
    let _ = serde::Serialize::serialize(body, &mut ser);
    bytes.push(b'\n');
    let id = REQUEST_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("req_sim{id:026x}")) {
        h.insert("x-request-id", v);
    }
    for (k, v) in [
        ("openai-processing-ms", "17"),
        ("openai-version", "2020-10-01"),
        ("x-ratelimit-limit-requests", "10000"),
        ("x-ratelimit-remaining-requests", "9999"),
        ("x-ratelimit-reset-requests", "6ms"),
        ("x-ratelimit-limit-tokens", "30000000"),
        ("x-ratelimit-remaining-tokens", "29999990"),
        ("x-ratelimit-reset-tokens", "0s"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    resp
}

static REQUEST_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn openai_type(status: StatusCode) -> (&'static str, Value) {
    match status.as_u16() {
        401 => ("invalid_request_error", json!("invalid_api_key")),
        403 => (
            "invalid_request_error",
            json!("unsupported_country_region_territory"),
        ),
        404 => ("invalid_request_error", json!("model_not_found")),
        429 => ("requests", json!("rate_limit_exceeded")),
        s if s >= 500 => ("server_error", Value::Null),
        _ => ("invalid_request_error", Value::Null),
    }
}

fn anthropic_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

fn bedrock_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "UnrecognizedClientException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        s if s >= 500 => "InternalServerException",
        _ => "ValidationException",
    }
}

fn google_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        s if s >= 500 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

/// A Bedrock error: `x-amzn-ErrorType` names the exception, the body carries `message`.
pub(crate) fn bedrock_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let mut resp = json_response(status, &json!({ "message": message }));
    if let Ok(v) = HeaderValue::from_str(error_type) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}

/// An error with `status` and `message` in the provider's envelope.
pub(crate) fn error(provider: Provider, status: StatusCode, message: &str) -> Response {
    match provider {
        Provider::OpenAi => {
            let (ty, code) = openai_type(status);
            openai_error(
                status,
                &json!({"error": {"message": message, "type": ty, "param": null, "code": code}}),
            )
        }
        Provider::Azure => json_response(
            status,
            &json!({"error": {"code": status.as_u16().to_string(), "message": message}}),
        ),
        Provider::Anthropic | Provider::VertexAnthropic => json_response(
            status,
            &json!({"type": "error", "error": {"type": anthropic_type(status), "message": message}}),
        ),
        Provider::Bedrock => bedrock_error(status, bedrock_type(status), message),
        Provider::Vertex => json_response(
            status,
            &json!({"error": {"code": status.as_u16(), "message": message, "status": google_status(status)}}),
        ),
    }
}

/// A 400 for a request body the provider would reject.
pub(crate) fn bad_request(provider: Provider, message: &str) -> Response {
    error(provider, StatusCode::BAD_REQUEST, message)
}

/// The failure a test asked for with `x-sim-status` (or the configured `fail_status`).
pub(crate) fn scripted(
    provider: Provider,
    status: StatusCode,
    retry_after: Option<&HeaderValue>,
) -> Response {
    let message = format!(
        "simulated failure: {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("error")
    );
    let mut resp = error(provider, status, &message);
    if status == StatusCode::TOO_MANY_REQUESTS {
        let value = retry_after
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("1"));
        resp.headers_mut().insert(header::RETRY_AFTER, value);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(resp: Response) -> Value {
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn shapes() {
        let s = StatusCode::SERVICE_UNAVAILABLE;
        assert_eq!(
            body(error(Provider::OpenAi, s, "m")).await,
            json!({"error":{"message":"m","type":"server_error","param":null,"code":null}})
        );
        assert_eq!(
            body(error(Provider::Anthropic, s, "m")).await,
            json!({"type":"error","error":{"type":"overloaded_error","message":"m"}})
        );
        assert_eq!(
            body(error(Provider::Vertex, s, "m")).await,
            json!({"error":{"code":503,"message":"m","status":"UNAVAILABLE"}})
        );
        let b = error(Provider::Bedrock, StatusCode::TOO_MANY_REQUESTS, "m");
        assert_eq!(b.headers()["x-amzn-errortype"], "ThrottlingException");
        assert_eq!(body(b).await, json!({"message":"m"}));
        let r = scripted(
            Provider::OpenAi,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&HeaderValue::from_static("7")),
        );
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
    }
}
