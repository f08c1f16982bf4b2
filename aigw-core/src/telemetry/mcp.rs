//! MCP request spans, in upstream's two MCP vocabularies (its `internal/tracing/mcp_legacy.go`
//! under the OpenInference setting, `mcp_otel.go` — the OpenTelemetry MCP semantic
//! conventions — under `gen_ai`), plus a child span per backend request so a fan-out
//! shows which backend took how long.
//!
//! One [`McpSpan`] per JSON-RPC message a client POSTs (requests and notifications;
//! not the client's answers to server requests, as upstream). It is a cheap handle:
//! every backend call and response stream holding one keeps the span open, and the
//! span ends when the last holder is gone — at the end of the client's response
//! stream.

use super::attr::{Attr, AttrValue, Attrs, AttrsExt as _, SpanEvent, SpanKind, SpanStatus};
use super::config::SemConv;
use super::{Inner, LiveSpan, MAX_HEADER_VALUE, SpanContext, SpanEnd, SpanStart, Telemetry};
use http::HeaderMap;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

/// Name of the per-backend child span.
pub const BACKEND_SPAN: &str = "aigw.mcp.backend";
/// The MCP revision upstream records when the request does not name one.
const DEFAULT_VERSION: &str = "2025-06-18";

/// Upstream's MCP error classes (`internal/metrics` `MCPErrorType`), recorded as the
/// exception type and, under `gen_ai`, as `error.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpErrorType {
    /// A malformed JSON-RPC message.
    InvalidJsonRpc,
    /// A method the gateway does not serve.
    UnsupportedMethod,
    /// A JSON-RPC message kind the gateway does not accept.
    UnsupportedResponse,
    /// Invalid parameters (unknown backend or tool, bad name).
    InvalidParam,
    /// A missing, invalid or foreign session id.
    InvalidSessionId,
    /// An `MCP-Protocol-Version` not served.
    UnsupportedProtocolVersion,
    /// Anything else (a backend that failed, a tool that returned an error).
    Internal,
}

impl McpErrorType {
    /// Upstream's name for it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJsonRpc => "invalid_json_rpc",
            Self::UnsupportedMethod => "unsupported_method",
            Self::UnsupportedResponse => "unsupported_response",
            Self::InvalidParam => "invalid_param",
            Self::InvalidSessionId => "invalid_session_id",
            Self::UnsupportedProtocolVersion => "unsupported_protocol_version",
            Self::Internal => "internal_error",
        }
    }

    /// The class of a JSON-RPC error code, as upstream maps it.
    pub const fn from_code(code: i64) -> Self {
        match code {
            -32602 => Self::InvalidParam,
            -32601 => Self::UnsupportedMethod,
            -32600 | -32700 => Self::InvalidJsonRpc,
            _ => Self::Internal,
        }
    }
}

/// What an MCP span starts from: one JSON-RPC message of the client.
#[derive(Debug, Clone, Copy)]
pub struct McpMessage<'a> {
    /// The JSON-RPC method.
    pub method: &'a str,
    /// The request id (`None` for a notification).
    pub id: Option<&'a Value>,
    /// The params object, if any.
    pub params: Option<&'a Map<String, Value>>,
    /// The HTTP request's headers.
    pub headers: &'a HeaderMap,
}

impl Telemetry {
    /// Starts the span of one MCP message; `None` when spans are off.
    pub fn mcp_span(&self, msg: McpMessage<'_>) -> Option<McpSpan> {
        let inner = self.inner.as_ref()?;
        let sink = inner.sink.as_ref()?;
        let gen_ai = inner.semconv == SemConv::GenAi;
        let meta = msg
            .params
            .and_then(|p| p.get("_meta"))
            .and_then(Value::as_object);
        let parent = if inner.propagate {
            meta.and_then(meta_context)
                .or_else(|| SpanContext::from_headers(msg.headers))
        } else {
            None
        };
        let state = parent.as_ref().and_then(|p| p.state.clone());
        let span = sink.start(SpanStart {
            name: span_name(gen_ai, msg.method, msg.params),
            kind: SpanKind::Client,
            time: SystemTime::now(),
            parent,
        });
        let mut attrs = request_attrs(gen_ai, inner.genai_capture, &msg);
        // Upstream's custom mappings look in `_meta` first, then the headers.
        for (h, name) in &inner.span_headers {
            let from_meta = meta.and_then(|m| {
                m.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(h.as_str()))
                    .and_then(|(_, v)| v.as_str())
            });
            let v = from_meta.or_else(|| msg.headers.get(h).and_then(|v| v.to_str().ok()));
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                attrs.str(
                    name.clone(),
                    v.chars().take(MAX_HEADER_VALUE).collect::<String>(),
                );
            }
        }
        let mut ctx = span.context();
        ctx.state = state;
        Some(McpSpan(Arc::new(Shared {
            inner: inner.clone(),
            gen_ai,
            ctx,
            span: Some(span),
            state: Mutex::new(State {
                attrs,
                events: Vec::new(),
                failure: None,
            }),
        })))
    }
}

/// A W3C context carried in `_meta` (`traceparent`, `tracestate`), as upstream reads it.
fn meta_context(meta: &Map<String, Value>) -> Option<SpanContext> {
    let mut h = HeaderMap::new();
    for key in [super::TRACEPARENT, super::TRACESTATE] {
        if let Some(v) = meta
            .get(key.as_str())
            .and_then(Value::as_str)
            .and_then(|v| http::HeaderValue::from_str(v).ok())
        {
            h.insert(key, v);
        }
    }
    SpanContext::from_headers(&h)
}

fn span_name(gen_ai: bool, method: &str, params: Option<&Map<String, Value>>) -> Cow<'static, str> {
    if gen_ai {
        let target = match method {
            "tools/call" | "prompts/get" => params
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty()),
            _ => None,
        };
        return match target {
            Some(t) => Cow::Owned(format!("{method} {t}")),
            None => Cow::Owned(method.to_owned()),
        };
    }
    Cow::Borrowed(match method {
        "initialize" => "Initialize",
        "tools/list" => "ListTools",
        "tools/call" => "CallTool",
        "prompts/list" => "ListPrompts",
        "prompts/get" => "GetPrompt",
        "resources/list" => "ListResources",
        "resources/read" => "ReadResource",
        "resources/subscribe" => "Subscribe",
        "resources/unsubscribe" => "Unsubscribe",
        "resources/templates/list" => "ListResourceTemplates",
        "logging/setLevel" => "SetLoggingLevel",
        "completion/complete" => "Complete",
        "ping" => "Ping",
        other => return Cow::Owned(other.to_owned()),
    })
}

/// `fmt.Sprintf("%v", id)`: a string id bare, a number as written.
fn id_text(id: Option<&Value>) -> String {
    match id {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

fn request_attrs(gen_ai: bool, capture: bool, msg: &McpMessage<'_>) -> Attrs {
    let mut a = Attrs::new();
    // The negotiated revision the client names on every request after `initialize`.
    let version = msg
        .headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(DEFAULT_VERSION);
    a.str("mcp.protocol.version", version);
    let id_key = if gen_ai {
        a.str("network.transport", "tcp");
        a.str("network.protocol.name", "http");
        a.str("network.protocol.version", "1.1");
        "jsonrpc.request.id"
    } else {
        a.str("mcp.transport", "http");
        "mcp.request.id"
    };
    // A notification has no id: no attribute rather than an empty one.
    if msg.id.is_some() {
        a.str(id_key, id_text(msg.id));
    }
    a.str("mcp.method.name", msg.method);
    let Some(p) = msg.params else { return a };
    let s = |k: &str| p.get(k).and_then(Value::as_str);
    match msg.method {
        "initialize" => {
            if let Some(info) = p.get("clientInfo").and_then(Value::as_object) {
                let f = |k: &str| info.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                a.str("mcp.client.name", f("name"));
                a.str("mcp.client.title", f("title"));
                a.str("mcp.client.version", f("version"));
            }
        }
        "tools/call" => {
            let name = s("name").unwrap_or("");
            if gen_ai {
                a.str("gen_ai.operation.name", "execute_tool");
                a.str("gen_ai.tool.name", name);
                // Tool arguments are message content: only with the GenAI opt-in.
                if capture && let Some(args) = p.get("arguments").filter(|v| !v.is_null()) {
                    a.str("gen_ai.tool.call.arguments", args.to_string());
                }
            } else {
                a.str("mcp.tool.name", name);
            }
        }
        "prompts/get" => {
            let key = if gen_ai {
                "gen_ai.prompt.name"
            } else {
                "mcp.prompt.name"
            };
            a.str(key, s("name").unwrap_or(""));
        }
        "logging/setLevel" => a.str("mcp.logging.level", s("level").unwrap_or("")),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            a.str("mcp.resource.uri", s("uri").unwrap_or(""));
        }
        "notifications/progress" => {
            if let Some(v) = p
                .get("progress")
                .and_then(Value::as_f64)
                .filter(|v| *v != 0.0)
            {
                a.f64("mcp.notifications.progress", v);
            }
            if let Some(t) = p.get("progressToken").filter(|v| !v.is_null()) {
                a.str("mcp.notifications.progress.token", id_text(Some(t)));
            }
            if let Some(m) = s("message").filter(|m| !m.is_empty()) {
                a.str("mcp.notifications.progress.message", m);
            }
        }
        "completion/complete" => {
            let arg = p.get("argument");
            let f = |k: &str| arg.and_then(|x| x.get(k)).and_then(Value::as_str);
            if let Some(n) = f("name").filter(|v| !v.is_empty()) {
                a.str("mcp.complete.argument.name", n);
            }
            if let Some(v) = f("value").filter(|v| !v.is_empty()) {
                a.str("mcp.complete.argument.value", v);
            }
        }
        _ => {}
    }
    a
}

struct State {
    attrs: Attrs,
    events: Vec<SpanEvent>,
    failure: Option<(McpErrorType, String, Option<i64>)>,
}

struct Shared {
    inner: Arc<Inner>,
    gen_ai: bool,
    ctx: SpanContext,
    span: Option<Box<dyn LiveSpan>>,
    state: Mutex<State>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let Some(span) = self.span.take() else { return };
        let st = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        let mut attrs = std::mem::take(&mut st.attrs);
        let mut events = std::mem::take(&mut st.events);
        let status = match st.failure.take() {
            Some((kind, message, code)) => {
                if self.gen_ai {
                    attrs.str("error.type", kind.as_str());
                    if let Some(c) = code {
                        attrs.int("rpc.response.status_code", c);
                    }
                }
                let mut e = Attrs::new();
                e.str("exception.type", kind.as_str());
                e.str("exception.message", message.clone());
                events.push(SpanEvent {
                    name: "exception".into(),
                    time: SystemTime::now(),
                    attrs: e,
                });
                SpanStatus::Error(message)
            }
            None => SpanStatus::Ok,
        };
        span.end(SpanEnd {
            attrs: super::attr::dedupe(attrs),
            events,
            status,
            time: SystemTime::now(),
        });
    }
}

/// The span of one MCP message in flight; clones share it, and it ends when the last
/// clone is dropped.
#[derive(Clone)]
pub struct McpSpan(Arc<Shared>);

impl fmt::Debug for McpSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpSpan")
            .field("trace_id", &format_args!("{:032x}", self.0.ctx.trace_id))
            .finish_non_exhaustive()
    }
}

impl McpSpan {
    fn with(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.0.state.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn event(&self, name: impl Into<Cow<'static, str>>, attrs: Attrs) {
        let ev = SpanEvent {
            name: name.into(),
            time: SystemTime::now(),
            attrs,
        };
        self.with(|s| s.events.push(ev));
    }

    /// The span's identity.
    pub fn context(&self) -> &SpanContext {
        &self.0.ctx
    }

    /// Records that the request went to `backend` within its backend session
    /// (upstream's `route to backend` event, in both vocabularies).
    pub fn route_to_backend(&self, backend: &str, session: &str, new: bool) {
        let mut a = Attrs::new();
        a.str("mcp.backend.name", backend);
        a.str("mcp.session.id", session);
        a.push(Attr {
            key: "mcp.session.new".into(),
            value: AttrValue::Bool(new),
        });
        self.event("route to backend", a);
    }

    /// Records the client-facing session (`gen_ai` only, as upstream).
    pub fn client_session(&self, session: &str) {
        if self.0.gen_ai && !session.is_empty() {
            let session = session.to_owned();
            self.with(|s| s.attrs.str("mcp.session.id", session));
        }
    }

    /// A timeline event of a list aggregation (`gen_ai` only, as upstream).
    pub fn aggregation(&self, method: &str, phase: &str) {
        if self.0.gen_ai {
            self.event(format!("{method} aggregation {phase}"), Attrs::new());
        }
    }

    /// The size of an aggregated list (`gen_ai` only): `key` is the result's list key
    /// (`tools`, `prompts`, `resources`, `resourceTemplates`).
    pub fn list_result(&self, key: &str, count: usize) {
        let attr = match key {
            "tools" => "mcp.tools.count",
            "prompts" => "mcp.prompts.count",
            "resources" => "mcp.resources.count",
            "resourceTemplates" => "mcp.resource_templates.count",
            _ => return,
        };
        if self.0.gen_ai {
            let n = i64::try_from(count).unwrap_or(i64::MAX);
            self.with(|s| s.attrs.int(attr, n));
        }
    }

    /// The result of a `tools/call` (`gen_ai` with content capture only).
    pub fn tool_call_result(&self, result: &Value) {
        if self.0.gen_ai && self.0.inner.genai_capture {
            let text = result.to_string();
            self.with(|s| s.attrs.str("gen_ai.tool.call.result", text));
        }
    }

    /// Marks the request failed (the first failure recorded wins).
    pub fn fail(&self, kind: McpErrorType, message: &str, code: Option<i64>) {
        let message = message.to_owned();
        self.with(|s| {
            s.failure.get_or_insert((kind, message, code));
        });
    }

    /// Starts the child span of one backend request; it names itself as the parent on
    /// `headers` (and returns the context for the message's `_meta`) when trace
    /// propagation is on.
    pub fn backend(&self, backend: &str, method: &str, headers: &mut HeaderMap) -> McpBackendSpan {
        let sink = self.0.inner.sink.as_ref();
        let span = sink.map(|s| {
            s.start(SpanStart {
                name: Cow::Borrowed(BACKEND_SPAN),
                kind: SpanKind::Client,
                time: SystemTime::now(),
                parent: Some(self.0.ctx.clone()),
            })
        });
        let mut context = None;
        if self.0.inner.propagate
            && let Some(s) = &span
        {
            let mut ctx = s.context();
            ctx.state = self.0.ctx.state.clone();
            ctx.inject(headers);
            context = Some(ctx);
        }
        let mut attrs = Attrs::new();
        attrs.str("mcp.backend.name", backend);
        if !method.is_empty() {
            attrs.str("mcp.method.name", method);
        }
        McpBackendSpan {
            span,
            context,
            attrs,
            failure: None,
        }
    }
}

/// The span of one request to one backend; ends when dropped (hold it until the
/// backend's response body is read).
pub struct McpBackendSpan {
    span: Option<Box<dyn LiveSpan>>,
    context: Option<SpanContext>,
    attrs: Attrs,
    failure: Option<String>,
}

impl fmt::Debug for McpBackendSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpBackendSpan").finish_non_exhaustive()
    }
}

impl McpBackendSpan {
    /// The context to put in the message's `_meta`, when propagation is on.
    pub fn context(&self) -> Option<&SpanContext> {
        self.context.as_ref()
    }

    /// Records the backend's HTTP status (4xx and 5xx mark the span failed).
    pub fn status(&mut self, status: u16) {
        self.attrs
            .int("http.response.status_code", i64::from(status));
        if status >= 400 && self.failure.is_none() {
            self.failure = Some(format!("backend answered {status}"));
        }
    }

    /// Records a transport failure.
    pub fn failed(&mut self, reason: &str) {
        self.failure = Some(reason.to_owned());
    }
}

impl Drop for McpBackendSpan {
    fn drop(&mut self) {
        let Some(span) = self.span.take() else { return };
        let mut attrs = std::mem::take(&mut self.attrs);
        let status = match self.failure.take() {
            Some(r) => {
                attrs.str("error.type", "backend_error");
                SpanStatus::Error(r)
            }
            None => SpanStatus::Unset,
        };
        span.end(SpanEnd {
            attrs,
            events: Vec::new(),
            status,
            time: SystemTime::now(),
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::telemetry::config::TelemetryConfig;
    use crate::telemetry::memory::MemorySink;
    use serde_json::json;

    fn telemetry(vars: &[(&str, &str)]) -> (Telemetry, MemorySink) {
        let m: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let cfg = TelemetryConfig::from_source(&move |n: &str| m.get(n).cloned()).unwrap();
        let sink = MemorySink::new();
        (Telemetry::new(&cfg, Some(Arc::new(sink.clone()))), sink)
    }

    fn attr<'a>(a: &'a Attrs, k: &str) -> Option<&'a AttrValue> {
        a.iter().find(|x| x.key == k).map(|x| &x.value)
    }

    fn call(t: &Telemetry, headers: &HeaderMap) -> McpSpan {
        let params = json!({"name": "gh__search", "arguments": {"q": "rust"},
            "_meta": {"x-tenant": "acme"}});
        t.mcp_span(McpMessage {
            method: "tools/call",
            id: Some(&json!(7)),
            params: params.as_object(),
            headers,
        })
        .unwrap()
    }

    #[test]
    fn legacy_vocabulary_names_and_attributes() {
        let (t, sink) = telemetry(&[(
            "OTEL_AIGW_SPAN_REQUEST_HEADER_ATTRIBUTES",
            "x-tenant:tenant",
        )]);
        let span = call(&t, &HeaderMap::new());
        span.route_to_backend("gh", "s1", false);
        span.client_session("client-1");
        span.list_result("tools", 3);
        span.tool_call_result(&json!({"content": []}));
        drop(span);
        let s = &sink.spans()[0];
        assert_eq!(s.name, "CallTool");
        assert_eq!(s.kind, SpanKind::Client);
        let a = &s.end.attrs;
        assert_eq!(attr(a, "mcp.request.id"), Some(&AttrValue::Str("7".into())));
        assert_eq!(
            attr(a, "mcp.tool.name"),
            Some(&AttrValue::Str("gh__search".into()))
        );
        assert_eq!(
            attr(a, "mcp.transport"),
            Some(&AttrValue::Str("http".into()))
        );
        // The custom mapping is read from `_meta` before the headers.
        assert_eq!(attr(a, "tenant"), Some(&AttrValue::Str("acme".into())));
        // Signals of the OTel vocabulary only.
        for k in [
            "mcp.session.id",
            "mcp.tools.count",
            "gen_ai.tool.call.result",
        ] {
            assert!(attr(a, k).is_none(), "{k}");
        }
        assert_eq!(s.end.events[0].name, "route to backend");
        assert_eq!(s.end.status, SpanStatus::Ok);
    }

    #[test]
    fn otel_vocabulary_with_content_and_an_error() {
        let (t, sink) = telemetry(&[
            ("AI_GATEWAY_TRACING_SEMCONV", "gen_ai"),
            ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true"),
        ]);
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let span = call(&t, &h);
        let mut out = HeaderMap::new();
        let child = span.backend("gh", "tools/call", &mut out);
        let ctx = child.context().cloned().unwrap();
        assert_eq!(out.get("traceparent").unwrap(), &ctx.traceparent());
        drop(child);
        span.tool_call_result(&json!({"isError": true}));
        span.fail(McpErrorType::from_code(-32602), "bad", Some(-32602));
        span.fail(McpErrorType::Internal, "later", None);
        drop(span);
        let spans = sink.spans();
        let (backend, req) = (&spans[0], &spans[1]);
        assert_eq!(backend.name, BACKEND_SPAN);
        assert_eq!(backend.parent, Some(req.context.span_id));
        assert_eq!(req.name, "tools/call gh__search");
        assert_eq!(req.parent, Some(0x00f0_67aa_0ba9_02b7));
        let a = &req.end.attrs;
        assert_eq!(
            attr(a, "gen_ai.tool.call.arguments"),
            Some(&AttrValue::Str(r#"{"q":"rust"}"#.into()))
        );
        assert_eq!(
            attr(a, "gen_ai.tool.call.result"),
            Some(&AttrValue::Str(r#"{"isError":true}"#.into()))
        );
        assert_eq!(
            attr(a, "error.type"),
            Some(&AttrValue::Str("invalid_param".into()))
        );
        assert_eq!(
            attr(a, "rpc.response.status_code"),
            Some(&AttrValue::Int(-32602))
        );
        assert_eq!(req.end.status, SpanStatus::Error("bad".into()));
        assert_eq!(req.end.events.last().unwrap().name, "exception");
    }

    #[test]
    fn no_content_without_the_opt_in_and_no_span_when_disabled() {
        let (t, sink) = telemetry(&[("AI_GATEWAY_TRACING_SEMCONV", "gen_ai")]);
        let span = call(&t, &HeaderMap::new());
        span.tool_call_result(&json!({"content": []}));
        drop(span);
        let a = &sink.spans()[0].end.attrs;
        assert!(attr(a, "gen_ai.tool.call.arguments").is_none());
        assert!(attr(a, "gen_ai.tool.call.result").is_none());
        assert!(
            Telemetry::disabled()
                .mcp_span(McpMessage {
                    method: "ping",
                    id: None,
                    params: None,
                    headers: &HeaderMap::new(),
                })
                .is_none()
        );
    }
}
