//! Provider error normalisation: any upstream error body, in any provider's shape (or
//! no JSON at all), becomes a well-formed error envelope of the client's API.
//!
//! Parsing ([`parse_upstream_error`]) recognises the OpenAI, Anthropic, Google
//! (Vertex/Gemini) and AWS (Bedrock) shapes and the `x-amzn-errortype` header;
//! rendering ([`render`]) builds the OpenAI (`{"error":{message,type,param,code}}`) or
//! Anthropic (`{"type":"error","error":{type,message}}`) envelope. Translators for other
//! providers call [`normalize`] (or parse themselves and call [`render`]).
//!
//! ```
//! use aigw_core::ClientApi;
//! use aigw_providers::error_map::normalize;
//! use http::{HeaderMap, StatusCode};
//! let e = normalize(ClientApi::Anthropic, StatusCode::BAD_GATEWAY, &HeaderMap::new(), b"<html>oops</html>");
//! let v: serde_json::Value = serde_json::from_slice(&e.body).unwrap();
//! assert_eq!(v["type"], "error");
//! assert_eq!(v["error"]["type"], "api_error");
//! ```

use aigw_core::error::{anthropic_error_type, openai_error_type};
use aigw_core::{ClientApi, ErrorResponse, HeaderMutation};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

/// Longest upstream text kept in a message when the body is not JSON.
const MAX_TEXT: usize = 1024;

/// The provider family whose error vocabulary an upstream `type` belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFamily {
    /// OpenAI and OpenAI-compatible servers.
    OpenAI,
    /// Anthropic (native, Vertex, Bedrock InvokeModel).
    Anthropic,
    /// Anything else (Google, AWS, plain text).
    Other,
}

/// An upstream error, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamError {
    /// The upstream status.
    pub status: StatusCode,
    /// The upstream's message (or the body text, or the status reason).
    pub message: String,
    /// The upstream's error type/code word, if it had one.
    pub kind: Option<String>,
    /// Which vocabulary `kind` is in.
    pub family: ErrorFamily,
    /// OpenAI `param`.
    pub param: Option<Value>,
    /// OpenAI `code`.
    pub code: Option<Value>,
}

impl UpstreamError {
    /// An error with a message and nothing else.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind: None,
            family: ErrorFamily::Other,
            param: None,
            code: None,
        }
    }
}

/// Parses an upstream error body in any known provider shape; never fails.
pub fn parse_upstream_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> UpstreamError {
    let mut e = match serde_json::from_slice::<Value>(body) {
        Ok(v) => from_json(status, &v),
        Err(_) => None,
    }
    .unwrap_or_else(|| UpstreamError::new(status, text_message(status, body)));
    if e.kind.is_none() {
        // Bedrock: `x-amzn-errortype: ThrottlingException:http://internal.amazon.com/…`.
        if let Some(t) = headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
        {
            let t = t.split(':').next().unwrap_or(t);
            if !t.is_empty() {
                e.kind = Some(t.to_owned());
            }
        }
    }
    e
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn from_json(status: StatusCode, v: &Value) -> Option<UpstreamError> {
    // Google sometimes wraps the error in a one-element array.
    let v = match v {
        Value::Array(a) => a.first()?,
        v => v,
    };
    let obj = v.as_object()?;
    if let Some(err) = obj.get("error") {
        if let Some(message) = err.as_str() {
            return Some(UpstreamError::new(status, message));
        }
        let message = str_field(err, "message").unwrap_or_else(|| err.to_string());
        if obj.get("type").and_then(Value::as_str) == Some("error") {
            return Some(UpstreamError {
                kind: str_field(err, "type"),
                family: ErrorFamily::Anthropic,
                ..UpstreamError::new(status, message)
            });
        }
        if err.get("status").is_some_and(Value::is_string)
            && err.get("code").is_some_and(Value::is_number)
        {
            // Google: {"error":{"code":400,"message":…,"status":"INVALID_ARGUMENT"}}.
            return Some(UpstreamError {
                kind: str_field(err, "status"),
                ..UpstreamError::new(status, message)
            });
        }
        return Some(UpstreamError {
            kind: str_field(err, "type"),
            family: ErrorFamily::OpenAI,
            param: err.get("param").filter(|p| !p.is_null()).cloned(),
            code: err.get("code").filter(|c| !c.is_null()).cloned(),
            ..UpstreamError::new(status, message)
        });
    }
    // AWS: {"message": …} or {"Message": …}, with `__type` on some services.
    let message = str_field(v, "message").or_else(|| str_field(v, "Message"))?;
    Some(UpstreamError {
        kind: str_field(v, "__type").map(|t| t.rsplit('#').next().unwrap_or(&t).to_owned()),
        ..UpstreamError::new(status, message)
    })
}

fn text_message(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return format!(
            "upstream returned {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("error")
        );
    }
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// The status the client sees for an upstream status.
///
/// Error statuses pass through unchanged, except that 529 (Anthropic "overloaded")
/// becomes 503 for OpenAI clients, whose SDKs know no 529; a non-error status given as
/// an error (a bug upstream) becomes 502.
pub fn client_status(api: ClientApi, upstream: StatusCode) -> StatusCode {
    match (api, upstream.as_u16()) {
        (_, 400..=599) if upstream.as_u16() != 529 => upstream,
        (ClientApi::OpenAI, 529) => StatusCode::SERVICE_UNAVAILABLE,
        (ClientApi::Anthropic, 529) => upstream,
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// Renders an OpenAI error envelope.
pub fn openai_envelope(
    message: &str,
    kind: &str,
    param: Option<&Value>,
    code: Option<&Value>,
) -> Bytes {
    Bytes::from(
        json!({"error": {
            "message": message,
            "type": kind,
            "param": param.cloned().unwrap_or(Value::Null),
            "code": code.cloned().unwrap_or(Value::Null),
        }})
        .to_string(),
    )
}

/// Renders an Anthropic error envelope.
pub fn anthropic_envelope(kind: &str, message: &str) -> Bytes {
    Bytes::from(json!({"type": "error", "error": {"type": kind, "message": message}}).to_string())
}

/// Renders a parsed upstream error as the client API's error response.
///
/// The upstream's own `type` is kept when it is in the client API's vocabulary (an
/// OpenAI error to an OpenAI client, an Anthropic error to an Anthropic client);
/// otherwise the type is derived from the status.
pub fn render(api: ClientApi, e: &UpstreamError) -> ErrorResponse {
    let status = client_status(api, e.status);
    let body = match api {
        ClientApi::OpenAI => {
            let kind = match (&e.kind, e.family) {
                (Some(k), ErrorFamily::OpenAI) => k.as_str(),
                _ => openai_error_type(status),
            };
            let code = e.code.clone().or_else(|| {
                (e.family != ErrorFamily::OpenAI)
                    .then(|| e.kind.clone().map(Value::String))
                    .flatten()
            });
            openai_envelope(&e.message, kind, e.param.as_ref(), code.as_ref())
        }
        ClientApi::Anthropic => {
            let kind = match (&e.kind, e.family) {
                (Some(k), ErrorFamily::Anthropic) => k.as_str(),
                _ => anthropic_error_type(status),
            };
            anthropic_envelope(kind, &e.message)
        }
    };
    let mut headers = HeaderMutation::default();
    headers.set_static("content-type", "application/json");
    headers.remove(http::header::CONTENT_ENCODING);
    ErrorResponse {
        status,
        headers,
        body,
    }
}

/// Parses and renders in one step.
pub fn normalize(
    api: ClientApi,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ErrorResponse {
    render(api, &parse_upstream_error(status, headers, body))
}

/// Headers that identify a request at the provider; a translated error carries them
/// so a client (and its support ticket) can still name the provider's request.
const REQUEST_ID_HEADERS: [&str; 5] = [
    "x-request-id",
    "request-id",
    "apim-request-id",
    "x-amzn-requestid",
    "x-ms-request-id",
];

/// Whether a provider header reaches the client with an error passed through: request
/// ids, OpenAI's processing time, version and organisation, rate-limit state and retry
/// hints, which the official SDKs expose (`request_id`, `response.headers`) and act on.
fn is_provider_header(name: &str) -> bool {
    REQUEST_ID_HEADERS.contains(&name)
        || matches!(
            name,
            "openai-processing-ms"
                | "openai-version"
                | "openai-organization"
                | "openai-project"
                | "retry-after"
                | "retry-after-ms"
                | "x-should-retry"
        )
        || name.starts_with("x-ratelimit-")
        || name.starts_with("anthropic-ratelimit-")
}

/// Copies the headers `keep` selects from the upstream response.
fn copy_headers(headers: &HeaderMap, keep: impl Fn(&str) -> bool, out: &mut HeaderMutation) {
    for (name, value) in headers {
        if keep(name.as_str()) {
            out.set(name.clone(), value.clone());
        }
    }
}

/// [`normalize`] for a translated error, keeping the provider's request id headers.
pub fn translated(
    api: ClientApi,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ErrorResponse {
    let mut r = normalize(api, status, headers, body);
    keep_request_ids(headers, &mut r.headers);
    r
}

/// Adds the provider's request id headers to a translated error's headers.
pub fn keep_request_ids(headers: &HeaderMap, out: &mut HeaderMutation) {
    copy_headers(headers, |n| REQUEST_ID_HEADERS.contains(&n), out);
}

/// An upstream error for a client that speaks the backend's own API: status and body
/// byte for byte (decoded, when the upstream compressed it) with the provider's
/// headers ([`is_provider_header`]) and content type. A body that is not JSON (empty,
/// or an HTML page from a proxy in front of the provider) is not the provider's error:
/// it is replaced by the normalised envelope, so an SDK always has an error to read.
pub fn passthrough(
    api: ClientApi,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ErrorResponse {
    let decoded = decode(headers, body);
    let body = decoded.as_deref().unwrap_or(body);
    let provider_json = serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok();
    let mut r = if !provider_json {
        normalize(api, status, headers, body)
    } else {
        let mut h = HeaderMutation::default();
        match headers.get(http::header::CONTENT_TYPE) {
            Some(ct) => h.set(http::header::CONTENT_TYPE, ct.clone()),
            None => h.set_static("content-type", "application/json"),
        };
        h.remove(http::header::CONTENT_ENCODING);
        ErrorResponse {
            status,
            headers: h,
            body: Bytes::copy_from_slice(body),
        }
    };
    copy_headers(headers, is_provider_header, &mut r.headers);
    r
}

/// The body decoded per its `content-encoding`, when it has one (`None`: identity, or
/// undecodable — then the bytes are kept as they are).
fn decode(headers: &HeaderMap, body: &[u8]) -> Option<Vec<u8>> {
    use crate::compression::{Decompressor, Encoding};
    let enc = Encoding::from_headers(headers).ok()?;
    if enc.is_identity() {
        return None;
    }
    let mut d = Decompressor::new(enc);
    let mut v = d.decompress(body).ok()?;
    v.extend(d.finish().ok()?);
    Some(v)
}

/// An error event for a client stream when the upstream reports an error mid-stream.
pub fn stream_error_event(api: ClientApi, e: &UpstreamError) -> Bytes {
    let r = render(api, e);
    let mut out = Vec::with_capacity(r.body.len() + 24);
    match api {
        ClientApi::OpenAI => {
            crate::sse::encode_event(&mut out, None, &String::from_utf8_lossy(&r.body))
        }
        ClientApi::Anthropic => {
            crate::sse::encode_event(&mut out, Some("error"), &String::from_utf8_lossy(&r.body))
        }
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passthrough_keeps_bytes_status_and_provider_headers() {
        let raw = b"{\n  \"error\": {\n    \"message\": \"Rate limit reached\",\n    \"type\": \"requests\",\n    \"param\": null,\n    \"code\": \"rate_limit_exceeded\"\n  }\n}\n";
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-request-id", "req_123"),
            ("openai-processing-ms", "12"),
            ("x-ratelimit-remaining-requests", "0"),
            ("retry-after", "7"),
            ("content-type", "application/json; charset=utf-8"),
            ("set-cookie", "__cf_bm=x"),
            ("content-length", "999"),
        ] {
            h.insert(http::HeaderName::from_static(k), v.parse().unwrap());
        }
        let r = passthrough(ClientApi::OpenAI, StatusCode::TOO_MANY_REQUESTS, &h, raw);
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(&r.body[..], &raw[..]);
        let mut out = HeaderMap::new();
        r.headers.apply_to(&mut out);
        for k in [
            "x-request-id",
            "openai-processing-ms",
            "x-ratelimit-remaining-requests",
            "retry-after",
        ] {
            assert_eq!(out.get(k), h.get(k), "{k}");
        }
        assert_eq!(out["content-type"], "application/json; charset=utf-8");
        assert!(out.get("set-cookie").is_none() && out.get("content-length").is_none());
        // A body that is not JSON gets the envelope; a translated error keeps the
        // request id.
        for junk in [&b""[..], b"<html>bad gateway</html>"] {
            let r = passthrough(ClientApi::OpenAI, StatusCode::BAD_GATEWAY, &h, junk);
            assert_eq!(body(&r)["error"]["type"], "server_error");
        }
        let r = translated(ClientApi::Anthropic, StatusCode::TOO_MANY_REQUESTS, &h, raw);
        let mut out = HeaderMap::new();
        r.headers.apply_to(&mut out);
        assert_eq!(out["x-request-id"], "req_123");
        assert!(out.get("x-ratelimit-remaining-requests").is_none());
        assert_eq!(body(&r)["type"], "error");
    }

    fn body(r: &ErrorResponse) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn openai_error_to_openai_keeps_type_code_param() {
        let b = br#"{"error":{"message":"bad model","type":"invalid_request_error","param":"model","code":"model_not_found"}}"#;
        let r = normalize(
            ClientApi::OpenAI,
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            b,
        );
        assert_eq!(r.status, 404);
        let v = body(&r);
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "model");
        assert_eq!(v["error"]["code"], "model_not_found");
    }

    #[test]
    fn anthropic_overloaded_maps_per_client() {
        let b = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"r"}"#;
        let s = StatusCode::from_u16(529).unwrap();
        let a = normalize(ClientApi::Anthropic, s, &HeaderMap::new(), b);
        assert_eq!(a.status.as_u16(), 529);
        assert_eq!(body(&a)["error"]["type"], "overloaded_error");
        let o = normalize(ClientApi::OpenAI, s, &HeaderMap::new(), b);
        assert_eq!(o.status, 503);
        assert_eq!(body(&o)["error"]["message"], "Overloaded");
        assert_eq!(body(&o)["error"]["type"], "service_unavailable");
    }

    #[test]
    fn google_and_aws_shapes() {
        let g =
            br#"[{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}]"#;
        let r = normalize(
            ClientApi::Anthropic,
            StatusCode::TOO_MANY_REQUESTS,
            &HeaderMap::new(),
            g,
        );
        assert_eq!(body(&r)["error"]["type"], "rate_limit_error");
        assert_eq!(body(&r)["error"]["message"], "Quota exceeded");
        let mut h = HeaderMap::new();
        h.insert(
            "x-amzn-errortype",
            "ValidationException:http://internal.amazon.com/coral/"
                .parse()
                .unwrap(),
        );
        let r = normalize(
            ClientApi::OpenAI,
            StatusCode::BAD_REQUEST,
            &h,
            br#"{"message":"max_tokens too big"}"#,
        );
        let v = body(&r);
        assert_eq!(v["error"]["message"], "max_tokens too big");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], "ValidationException");
    }

    #[test]
    fn non_json_and_empty_bodies_still_render() {
        for (status, b) in [
            (500u16, &b"<html>Internal</html>"[..]),
            (503, b""),
            (413, b"\xff\xfe"),
        ] {
            let s = StatusCode::from_u16(status).unwrap();
            for api in [ClientApi::OpenAI, ClientApi::Anthropic] {
                let r = normalize(api, s, &HeaderMap::new(), b);
                assert_eq!(r.status, s);
                let v = body(&r);
                assert!(!v["error"]["message"].as_str().unwrap().is_empty());
                if api == ClientApi::Anthropic {
                    assert_eq!(v["type"], "error");
                }
            }
        }
        let r = normalize(
            ClientApi::Anthropic,
            StatusCode::PAYLOAD_TOO_LARGE,
            &HeaderMap::new(),
            b"too big",
        );
        assert_eq!(body(&r)["error"]["type"], "request_too_large");
    }

    #[test]
    fn status_mapping_table() {
        for s in [400u16, 401, 403, 404, 413, 429, 500, 503] {
            let st = StatusCode::from_u16(s).unwrap();
            assert_eq!(client_status(ClientApi::OpenAI, st), st);
            assert_eq!(client_status(ClientApi::Anthropic, st), st);
        }
        assert_eq!(
            client_status(ClientApi::OpenAI, StatusCode::OK),
            StatusCode::BAD_GATEWAY
        );
    }

    #[test]
    fn long_text_is_truncated_on_a_char_boundary() {
        let long = "é".repeat(2000);
        let r = normalize(
            ClientApi::OpenAI,
            StatusCode::INTERNAL_SERVER_ERROR,
            &HeaderMap::new(),
            long.as_bytes(),
        );
        assert!(body(&r)["error"]["message"].as_str().unwrap().len() <= MAX_TEXT);
    }
}
