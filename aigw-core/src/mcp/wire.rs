//! What both the request handlers and the fan-outs use: MCP's HTTP headers, how one
//! backend is addressed within a client session, and the gateway's responses.

use super::backend::McpBackend;
use super::jsonrpc::Message;
use super::upstream::{UpstreamBody, UpstreamError};
use super::{McpBody, McpGateway};
use crate::telemetry::SpanContext;
use crate::telemetry::mcp::{McpBackendSpan, McpErrorType, McpSpan};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt as _, Full, StreamBody};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::mpsc;

/// `Mcp-Session-Id`.
pub(crate) const SESSION_HEADER: &str = "mcp-session-id";
/// `MCP-Protocol-Version`.
pub(crate) const VERSION_HEADER: &str = "mcp-protocol-version";
/// `Last-Event-ID`.
pub(crate) const LAST_EVENT_HEADER: &str = "last-event-id";
/// Prefix of the ids of the gateway's own heartbeat pings.
pub(crate) const PING_PREFIX: &str = "aigw-ping-";

/// Who is calling: the verified token's claims (routes with OAuth only).
#[derive(Debug, Default)]
pub(crate) struct Auth {
    pub(crate) claims: Option<Arc<serde_json::Map<String, Value>>>,
    pub(crate) subject: String,
    /// `claimToHeaders`, for every backend request.
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// Client headers never forwarded (the API key, when `sanitize` is set).
    pub(crate) withheld: Vec<HeaderName>,
    /// What authorization rules and the backend selector check.
    pub(crate) who: Arc<super::authz::Subject>,
    /// The span of the message being served: every backend request is its child.
    pub(crate) trace: Option<McpSpan>,
}

/// A backend and how to address it within one client session.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) backend: Arc<McpBackend>,
    pub(crate) session: Option<String>,
    pub(crate) version: String,
    pub(crate) forwarded: Vec<(HeaderName, HeaderValue)>,
    /// The client message's span, parent of this backend's requests.
    pub(crate) trace: Option<McpSpan>,
}

impl Target {
    /// A backend with the client's forwarded headers and the token's claim headers (a
    /// client header of the same name is never forwarded in their place).
    pub(crate) fn new(
        backend: Arc<McpBackend>,
        client: &HeaderMap,
        version: &str,
        auth: &Auth,
    ) -> Self {
        let mut forwarded: Vec<(HeaderName, HeaderValue)> = backend
            .forward
            .iter()
            .filter(|(_, to)| !auth.headers.iter().any(|(n, _)| n == to))
            .filter(|(from, _)| !auth.withheld.contains(from))
            .filter_map(|(from, to)| Some((to.clone(), client.get(from)?.clone())))
            .collect();
        forwarded.extend(auth.headers.iter().cloned());
        Self {
            backend,
            session: None,
            version: version.to_string(),
            forwarded,
            trace: auth.trace.clone(),
        }
    }

    /// Sends a message (or, for GET and DELETE, none).
    pub(crate) async fn send(
        &self,
        gw: &McpGateway,
        method: Method,
        body: Option<&Message>,
        last_event: Option<&str>,
    ) -> Result<http::Response<UpstreamBody>, UpstreamError> {
        let b = &self.backend;
        let mut uri = b.url();
        let mut builder = http::Request::builder().method(method.clone());
        match &b.api_key {
            Some(super::backend::ApiKey::Query(q, v)) => {
                uri.push(if uri.contains('?') { '&' } else { '?' });
                uri.push_str(&form_encode(q));
                uri.push('=');
                uri.push_str(&form_encode(v.expose()));
            }
            Some(super::backend::ApiKey::Header(h, v)) => {
                let value = if h == header::AUTHORIZATION {
                    format!("Bearer {}", v.expose())
                } else {
                    v.expose().to_string()
                };
                let mut hv = HeaderValue::try_from(value)
                    .map_err(|_| UpstreamError("the API key is not a valid header value".into()))?;
                hv.set_sensitive(true);
                builder = builder.header(h, hv);
            }
            None => {}
        }
        for (k, v) in &self.forwarded {
            builder = builder.header(k, v);
        }
        for (k, v) in &b.fixed_headers {
            builder = builder.header(k, v);
        }
        if b.via_envoy
            && let Some(m) = body
        {
            for (k, v) in envoy_metadata_headers(m) {
                builder = builder.header(k, v);
            }
        }
        builder = builder.uri(uri).header(
            header::ACCEPT,
            if method == Method::GET {
                "text/event-stream"
            } else {
                "application/json, text/event-stream"
            },
        );
        if let Some(s) = &self.session {
            builder = builder.header(SESSION_HEADER, s);
        }
        if !self.version.is_empty() {
            builder = builder.header(VERSION_HEADER, &self.version);
        }
        if let Some(id) = last_event {
            builder = builder.header(LAST_EVENT_HEADER, id);
        }
        let mut trace_headers = HeaderMap::new();
        let mut span = self.trace.as_ref().map(|s| {
            let m = body.map_or_else(|| method.as_str(), Message::method);
            s.backend(&b.name, m, &mut trace_headers)
        });
        for (k, v) in &trace_headers {
            builder = builder.header(k, v);
        }
        let payload = match body {
            Some(m) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                match span.as_ref().and_then(McpBackendSpan::context) {
                    Some(ctx) => Bytes::from(with_trace_meta(m, ctx).encode()),
                    None => Bytes::from(m.encode()),
                }
            }
            None => Bytes::new(),
        };
        let req = builder
            .body(payload)
            .map_err(|e| UpstreamError(format!("cannot build the request: {e}")))?;
        let result = gw.upstream.send(b, req).await;
        let Some(mut span) = span.take() else {
            return result;
        };
        match &result {
            Ok(r) => span.status(r.status().as_u16()),
            Err(e) => span.failed(&e.0),
        }
        // The child span lasts as long as the backend's answer is being read.
        result.map(|r| {
            r.map(|body| {
                use futures::StreamExt as _;
                Box::pin(body.map(move |chunk| {
                    let _ = &span;
                    chunk
                })) as UpstreamBody
            })
        })
    }
}

/// The message with the backend span's W3C context in `params._meta` (where MCP
/// servers look for it, as upstream puts it), replacing any the client sent.
fn with_trace_meta(m: &Message, ctx: &SpanContext) -> Message {
    let mut m = m.clone();
    if let Some(p) = m.params_mut() {
        let meta = p
            .entry("_meta")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Some(meta) = meta.as_object_mut() {
            let mut h = HeaderMap::new();
            ctx.inject(&mut h);
            meta.remove("tracestate");
            for (k, v) in &h {
                if let Ok(v) = v.to_str() {
                    meta.insert(k.as_str().to_owned(), Value::String(v.to_owned()));
                }
            }
        }
    }
    m
}

/// Upstream's `x-ai-eg-mcp-metadata-*` headers, which its Envoy configuration turns into
/// access-log attributes of the backend request: the request id and method, the tool
/// name of a call, the resource URI of a read or (un)subscribe. Values over 1 KiB or
/// not valid in a header are left out, as upstream does.
fn envoy_metadata_headers(m: &Message) -> Vec<(&'static str, HeaderValue)> {
    const PREFIX_MAX: usize = 1024;
    let mut out = Vec::new();
    if m.kind() != Some(super::jsonrpc::Kind::Request) {
        return out;
    }
    let mut push = |k: &'static str, v: String| {
        if v.len() <= PREFIX_MAX
            && let Ok(v) = HeaderValue::try_from(v)
        {
            out.push((k, v));
        }
    };
    if let Some(id) = m.id() {
        push(
            "x-ai-eg-mcp-metadata-request-id",
            id.as_str().map_or_else(|| id.to_string(), str::to_string),
        );
    }
    push("x-ai-eg-mcp-metadata-method", m.method().to_string());
    match m.method() {
        "tools/call" => {
            if let Some(n) = m.param_str("name") {
                push("x-ai-eg-mcp-metadata-tool-name", n.to_string());
            }
        }
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            if let Some(u) = m.param_str("uri") {
                push("x-ai-eg-mcp-metadata-resource-uri", u.to_string());
            }
        }
        _ => {}
    }
    out
}

fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The first bytes of an error body, for the message.
pub(crate) async fn snippet(resp: http::Response<UpstreamBody>) -> String {
    use futures::StreamExt as _;
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while out.len() < 512 {
        match body.next().await {
            Some(Ok(c)) => out.extend_from_slice(&c),
            _ => break,
        }
    }
    out.truncate(512);
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON answer.
pub(crate) fn json_response(
    status: StatusCode,
    m: &Message,
    sid: Option<&str>,
) -> http::Response<McpBody> {
    let mut r = http::Response::new(Full::new(Bytes::from(m.encode())).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set_session(&mut r, sid);
    r
}

/// Why the gateway refused or failed a request, attached to its error responses so
/// the request's span and log can say it.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) kind: McpErrorType,
    pub(crate) code: i64,
    pub(crate) message: String,
}

/// A JSON-RPC error with an HTTP status (upstream answers these statuses; the body
/// lets a JSON-RPC client read the reason too).
pub(crate) fn error(
    status: StatusCode,
    id: Option<Value>,
    code: i64,
    message: &str,
) -> http::Response<McpBody> {
    failed(status, id, code, McpErrorType::from_code(code), message)
}

/// [`error`] of an explicit class.
pub(crate) fn failed(
    status: StatusCode,
    id: Option<Value>,
    code: i64,
    kind: McpErrorType,
    message: &str,
) -> http::Response<McpBody> {
    let mut r = json_response(status, &Message::error_response(id, code, message), None);
    r.extensions_mut().insert(Failure {
        kind,
        code,
        message: message.to_owned(),
    });
    r
}

/// 202 Accepted.
pub(crate) fn accepted(sid: &str) -> http::Response<McpBody> {
    empty(StatusCode::ACCEPTED, Some(sid))
}

pub(crate) fn empty(status: StatusCode, sid: Option<&str>) -> http::Response<McpBody> {
    let mut r = http::Response::new(Full::new(Bytes::new()).boxed_unsync());
    *r.status_mut() = status;
    set_session(&mut r, sid);
    r
}

fn set_session(r: &mut http::Response<McpBody>, sid: Option<&str>) {
    if let Some(v) = sid.and_then(|s| HeaderValue::try_from(s).ok()) {
        r.headers_mut().insert(SESSION_HEADER, v);
    }
}

/// An event stream fed by `rx`.
pub(crate) fn sse_response(rx: mpsc::Receiver<Bytes>, sid: &str) -> http::Response<McpBody> {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok(http_body::Frame::data(b)), rx))
    });
    let mut r = http::Response::new(StreamBody::new(stream).boxed_unsync());
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    set_session(&mut r, Some(sid));
    r
}
