//! Requests that go to every backend of a session: `initialize`, the list methods,
//! broadcast notifications, the GET notification stream and session close.

use super::McpGateway;
use super::PROTOCOL_VERSIONS;
use super::authz::{Decision, McpCall};
use super::jsonrpc::{Kind, Message, code};
use super::rewrite;
use super::session::{
    BackendSession, Capability, EventIds, Session, caps_bits, merged_capabilities,
};
use super::sse::SseEvent;
use super::upstream::{Incoming, Item, UpstreamError};
use super::wire::{
    Auth, PING_PREFIX, SESSION_HEADER, Target, error, json_response, snippet, sse_response,
};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Most pages read from one backend for one list.
const MAX_PAGES: usize = 100;
/// Largest JSON answer read from a backend.
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// Whether the caller may see a backend's tool (the route's authorization rules).
pub(crate) type ToolFilter = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// An aggregated method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    /// `tools/list`.
    Tools,
    /// `prompts/list`.
    Prompts,
    /// `resources/list`.
    Resources,
    /// `resources/templates/list`.
    Templates,
    /// `logging/setLevel` (no list: every backend that logs gets it).
    Logging,
}

impl ListKind {
    /// The capability a backend needs to be asked.
    pub(crate) fn capability(self) -> Capability {
        match self {
            Self::Tools => Capability::Tools,
            Self::Prompts => Capability::Prompts,
            Self::Resources | Self::Templates => Capability::Resources,
            Self::Logging => Capability::Logging,
        }
    }

    /// The result's list field.
    fn key(self) -> Option<&'static str> {
        match self {
            Self::Tools => Some("tools"),
            Self::Prompts => Some("prompts"),
            Self::Resources => Some("resources"),
            Self::Templates => Some("resourceTemplates"),
            Self::Logging => None,
        }
    }
}

/// `initialize`: a session with every backend that answers.
pub(crate) async fn initialize(
    gw: Arc<McpGateway>,
    route: &super::McpRoute,
    msg: Message,
    headers: &HeaderMap,
    auth: &Auth,
) -> http::Response<super::McpBody> {
    let id = msg.id().cloned().unwrap_or(Value::Null);
    let mut params = msg.params().cloned().unwrap_or_default();
    let asked = params
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let version = if PROTOCOL_VERSIONS.contains(&asked) {
        asked
    } else {
        PROTOCOL_VERSIONS[0]
    }
    .to_string();
    params.insert("protocolVersion".into(), Value::String(version.clone()));
    let params = Value::Object(params);
    // `backendSelector`: decided once per candidate backend, for the whole session.
    let selected: Vec<_> = route
        .backends
        .iter()
        .filter(|b| {
            route.selector.as_ref().is_none_or(|s| {
                let call = McpCall {
                    backend: &b.name,
                    ..McpCall::default()
                };
                s.decide(&auth.who, &call) == Decision::Allow
            })
        })
        .collect();
    if selected.is_empty() {
        tracing::info!(target: "aigw::mcp", route = %route.key, "backendSelector matches no route backends");
        return error(
            StatusCode::FORBIDDEN,
            Some(id),
            code::INVALID_REQUEST,
            "access denied",
        );
    }
    let inits = selected.into_iter().map(|b| {
        let t = Target::new(b.clone(), headers, "", auth);
        let (gw, params) = (gw.clone(), params.clone());
        async move {
            let name = t.backend.name.clone();
            let r = tokio::time::timeout(gw.settings.backend_timeout, init_backend(&gw, t, params))
                .await;
            (
                name,
                r.unwrap_or_else(|_| Err(UpstreamError("timed out".into()))),
            )
        }
    });
    let mut backends = Vec::new();
    let mut caps = Vec::new();
    for (name, r) in futures::future::join_all(inits).await {
        match r {
            Ok((bs, c)) => {
                if let Some(s) = &auth.trace {
                    s.route_to_backend(&bs.name, bs.id.as_deref().unwrap_or(""), true);
                }
                backends.push(bs);
                caps.push(c);
            }
            Err(e) => {
                gw.settings.metrics.backend_error("initialize", &name);
                tracing::warn!(target: "aigw::mcp", route = %route.key, backend = %name, error = %e, "MCP backend failed to initialize; the session goes on without it");
            }
        }
    }
    if backends.is_empty() {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(id),
            code::INTERNAL_ERROR,
            "failed to create MCP session to any backend",
        );
    }
    let session = Session {
        route: route.key.clone(),
        subject: auth.subject.clone(),
        version: version.clone(),
        backends,
    };
    let sid = session.seal(&gw.crypto);
    let result = json!({
        "protocolVersion": version,
        "capabilities": merged_capabilities(&caps),
        "serverInfo": {"name": gw.settings.server_name, "version": env!("CARGO_PKG_VERSION")},
    });
    json_response(StatusCode::OK, &Message::response(id, result), Some(&sid))
}

async fn init_backend(
    gw: &McpGateway,
    mut t: Target,
    params: Value,
) -> Result<(BackendSession, Value), UpstreamError> {
    let req = Message::request(json!("aigw-initialize"), "initialize", params);
    let resp = t.send(gw, Method::POST, Some(&req), None).await?;
    if !resp.status().is_success() {
        let status = resp.status();
        return Err(UpstreamError(format!(
            "initialize answered {status}: {}",
            snippet(resp).await
        )));
    }
    let session = resp
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let answer = read_answer(resp, &json!("aigw-initialize"), None, "").await?;
    if let Some(e) = answer.error() {
        return Err(UpstreamError(format!("initialize failed: {e}")));
    }
    let result = answer.result().cloned().unwrap_or_default();
    let version = result
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let caps = result
        .get("capabilities")
        .cloned()
        .unwrap_or_else(|| json!({}));
    t.session = session.clone();
    t.version = version.clone();
    let note = Message::notification("notifications/initialized", json!({}));
    match t.send(gw, Method::POST, Some(&note), None).await {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => {
            return Err(UpstreamError(format!(
                "notifications/initialized answered {}",
                r.status()
            )));
        }
        Err(e) => return Err(e),
    }
    let bs = BackendSession {
        name: t.backend.name.clone(),
        id: session,
        version,
        caps: caps_bits(&caps),
    };
    Ok((bs, caps))
}

/// Reads a backend's response up to the answer to `id`, relaying what comes before it
/// (notifications, requests to the client) to `relay`.
async fn read_answer(
    resp: http::Response<super::UpstreamBody>,
    id: &Value,
    relay: Option<&mpsc::Sender<Bytes>>,
    backend: &str,
) -> Result<Message, UpstreamError> {
    let mut inc = Incoming::new(resp, MAX_ANSWER);
    while let Some(item) = inc.next().await {
        let Item {
            msg: Some(mut m), ..
        } = item?
        else {
            continue;
        };
        if m.kind() == Some(Kind::Response) && m.id() == Some(id) {
            return Ok(m);
        }
        if let Some(tx) = relay {
            rewrite::from_backend(&mut m, backend, None);
            let _ = tx.send(SseEvent::message(m.encode(), None).encode()).await;
        }
    }
    Err(UpstreamError("the response ended without an answer".into()))
}

/// One backend's entries of an aggregated list, every page of it.
async fn list_backend(
    gw: &McpGateway,
    t: &Target,
    kind: ListKind,
    msg: &Message,
    relay: Option<&mpsc::Sender<Bytes>>,
) -> Result<Vec<Value>, UpstreamError> {
    let id = msg.id().cloned().unwrap_or(Value::Null);
    let mut params = msg.params().cloned().unwrap_or_default();
    params.remove("cursor");
    let mut entries = Vec::new();
    for _ in 0..MAX_PAGES {
        let req = Message::request(id.clone(), msg.method(), Value::Object(params.clone()));
        let resp = t.send(gw, Method::POST, Some(&req), None).await?;
        if !resp.status().is_success() {
            let status = resp.status();
            return Err(UpstreamError(format!(
                "answered {status}: {}",
                snippet(resp).await
            )));
        }
        let answer = read_answer(resp, &id, relay, &t.backend.name).await?;
        if let Some(e) = answer.error() {
            return Err(UpstreamError(format!("error response: {e}")));
        }
        let result = answer.result().cloned().unwrap_or_default();
        let Some(key) = kind.key() else {
            return Ok(entries);
        };
        if let Some(list) = result.get(key).and_then(Value::as_array) {
            entries.extend(list.iter().cloned());
        }
        match result.get("nextCursor").and_then(Value::as_str) {
            Some(c) if !c.is_empty() => {
                params.insert("cursor".into(), Value::String(c.to_string()));
            }
            _ => return Ok(entries),
        }
    }
    Ok(entries)
}

/// An aggregated list: every backend asked concurrently, entries namespaced and
/// filtered, failures named in `_meta` of the result.
pub(crate) async fn aggregate(
    gw: Arc<McpGateway>,
    kind: ListKind,
    targets: Vec<Target>,
    msg: Message,
    allowed: Option<ToolFilter>,
    sse: bool,
    sid: String,
) -> http::Response<super::McpBody> {
    if !sse {
        let m = collect(&gw, kind, &targets, &msg, allowed.as_ref(), None).await;
        return json_response(StatusCode::OK, &m, Some(&sid));
    }
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let m = collect(&gw, kind, &targets, &msg, allowed.as_ref(), Some(&tx)).await;
        let _ = tx.send(SseEvent::message(m.encode(), None).encode()).await;
    });
    sse_response(rx, &sid)
}

async fn collect(
    gw: &McpGateway,
    kind: ListKind,
    targets: &[Target],
    msg: &Message,
    allowed: Option<&ToolFilter>,
    relay: Option<&mpsc::Sender<Bytes>>,
) -> Message {
    let id = msg.id().cloned().unwrap_or(Value::Null);
    // Every target carries the request's span (or none does).
    let span = targets.iter().find_map(|t| t.trace.clone());
    if let Some(s) = &span {
        s.aggregation(msg.method(), "begin");
        for t in targets {
            s.route_to_backend(&t.backend.name, t.session.as_deref().unwrap_or(""), false);
        }
    }
    let calls = targets.iter().map(|t| async move {
        let r = tokio::time::timeout(
            gw.settings.backend_timeout,
            list_backend(gw, t, kind, msg, relay),
        )
        .await;
        (
            t,
            r.unwrap_or_else(|_| Err(UpstreamError("timed out".into()))),
        )
    });
    let mut merged = Vec::new();
    let mut failed = Vec::new();
    for (t, r) in futures::future::join_all(calls).await {
        let b = &t.backend;
        match r {
            Ok(entries) => {
                for mut e in entries {
                    let name = e.get("name").and_then(Value::as_str).unwrap_or("");
                    if kind == ListKind::Tools
                        && (b.selector.as_ref().is_some_and(|s| !s.allows(name))
                            || allowed.is_some_and(|f| !f(&b.name, name)))
                    {
                        continue;
                    }
                    if let Some(key) = kind.key() {
                        rewrite::list_entry(key, &mut e, &b.name);
                    }
                    merged.push(e);
                }
            }
            Err(e) => {
                gw.settings.metrics.backend_error(msg.method(), &b.name);
                tracing::warn!(target: "aigw::mcp", backend = %b.name, method = %msg.method(), error = %e, "MCP backend failed; answering without it");
                failed.push(json!({"backend": b.name, "error": e.0}));
            }
        }
    }
    let mut result = Map::new();
    if let Some(key) = kind.key() {
        if let Some(s) = &span {
            s.list_result(key, merged.len());
        }
        result.insert(key.into(), Value::Array(merged));
    }
    if let Some(s) = &span {
        s.aggregation(msg.method(), "end");
    }
    if !failed.is_empty() {
        result.insert("_meta".into(), json!({"aigw/failedBackends": failed}));
    }
    Message::response(id, Value::Object(result))
}

/// Sends a notification to every backend without waiting.
pub(crate) fn broadcast(gw: Arc<McpGateway>, targets: Vec<Target>, msg: Message) {
    tokio::spawn(async move {
        let sends = targets
            .iter()
            .map(|t| t.send(&gw, Method::POST, Some(&msg), None));
        for r in futures::future::join_all(sends).await {
            if let Err(e) = r {
                tracing::debug!(target: "aigw::mcp", error = %e, method = %msg.method(), "notification not delivered");
            }
        }
    });
}

/// Ends every backend session (DELETE); a backend that does not support it is fine.
pub(crate) async fn close(gw: &McpGateway, targets: Vec<Target>) {
    let deletes = targets
        .iter()
        .filter(|t| t.session.is_some())
        .map(|t| async move { (t, t.send(gw, Method::DELETE, None, None).await) });
    for (t, r) in futures::future::join_all(deletes).await {
        match r {
            Ok(r) if r.status().is_success() || matches!(r.status().as_u16(), 404 | 405) => {}
            Ok(r) => {
                tracing::warn!(target: "aigw::mcp", backend = %t.backend.name, status = %r.status(), "closing the MCP backend session failed")
            }
            Err(e) => {
                tracing::warn!(target: "aigw::mcp", backend = %t.backend.name, error = %e, "closing the MCP backend session failed")
            }
        }
    }
}

/// The GET stream: every backend's notification stream merged, server requests tagged,
/// each event's id sealing the last event id of every backend, pings when idle.
pub(crate) fn notification_stream(
    gw: Arc<McpGateway>,
    targets: Vec<Target>,
    resume: EventIds,
) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let ids = Arc::new(Mutex::new(resume));
    for t in targets {
        let (gw, tx, ids) = (gw.clone(), tx.clone(), ids.clone());
        tokio::spawn(async move {
            let last = ids
                .lock()
                .ok()
                .and_then(|m| m.0.get(&t.backend.name).cloned());
            let resp = tokio::select! {
                r = t.send(&gw, Method::GET, None, last.as_deref()) => r,
                () = tx.closed() => return,
            };
            let resp = match resp {
                Ok(r) if r.status().is_success() => r,
                // 405: the server offers no stream (upstream issue #1924: one such
                // backend must not disturb the others).
                Ok(r) => {
                    tracing::debug!(target: "aigw::mcp", backend = %t.backend.name, status = %r.status(), "no notification stream from MCP backend");
                    return;
                }
                Err(e) => {
                    tracing::warn!(target: "aigw::mcp", backend = %t.backend.name, error = %e, "MCP backend notification stream failed");
                    return;
                }
            };
            let mut inc = Incoming::new(resp, MAX_ANSWER);
            loop {
                let item = tokio::select! {
                    i = inc.next() => i,
                    () = tx.closed() => return,
                };
                let Some(Ok(Item { event_id, msg })) = item else {
                    return;
                };
                let sealed = match (&event_id, ids.lock()) {
                    (Some(e), Ok(mut m)) => {
                        m.0.insert(t.backend.name.clone(), e.clone());
                        Some(m.seal(&gw.crypto))
                    }
                    _ => None,
                };
                let Some(mut m) = msg else { continue };
                rewrite::from_backend(&mut m, &t.backend.name, None);
                if tx
                    .send(SseEvent::message(m.encode(), sealed).encode())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
    if let Some(every) = gw.settings.heartbeat {
        tokio::spawn(async move {
            let mut n: u64 = 0;
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = tx.closed() => return,
                }
                n += 1;
                let ping = Message::request(json!(format!("{PING_PREFIX}{n}")), "ping", json!({}));
                if tx
                    .send(SseEvent::message(ping.encode(), None).encode())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
    rx
}
