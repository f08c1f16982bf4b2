//! The Streamable HTTP endpoint: POST (one JSON-RPC message, answered as JSON or an
//! event stream), GET (the session's notification stream), DELETE (end the session).

use super::authz::{Decision, McpCall, Subject, insufficient_scope};
use super::config::McpRoute;
use super::fanout::{self, ListKind};
use super::jsonrpc::{Kind, Message, code};
use super::names;
use super::rewrite;
use super::session::{EventIds, Session};
use super::sse::SseEvent;
use super::upstream::{Incoming, Item, is_sse};
use super::wire::{
    Auth, Failure, LAST_EVENT_HEADER, PING_PREFIX, SESSION_HEADER, Target, VERSION_HEADER,
    accepted, empty, error, failed, json_response, snippet, sse_response,
};
use super::{McpBody, McpGateway, PROTOCOL_VERSIONS};
use crate::telemetry::mcp::{McpErrorType, McpMessage, McpSpan};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt as _, Either, Full, Limited};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What the access log says about one request.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) mcp_method: String,
    pub(crate) backend: Option<String>,
    pub(crate) tool: Option<String>,
}

/// Serves one request.
pub(crate) async fn handle<B>(gw: Arc<McpGateway>, req: http::Request<B>) -> http::Response<McpBody>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let start = Instant::now();
    if req.method() == Method::GET
        && let Some(doc) = gw.metadata_for(req.uri().path())
    {
        let mut r = http::Response::new(Full::new(Bytes::from(doc.to_string())).boxed_unsync());
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return r;
    }
    if req.method() == Method::GET
        && let Some(oauth) = gw.as_metadata_for(req.uri().path())
    {
        let doc = oauth.as_metadata(gw.upstream.as_ref()).await;
        let mut r = http::Response::new(Full::new(Bytes::from(doc.to_string())).boxed_unsync());
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return r;
    }
    let Some(route) = gw.route_for(&req) else {
        return error(
            StatusCode::NOT_FOUND,
            None,
            code::INVALID_REQUEST,
            "no MCPRoute matches this request",
        );
    };
    let route_key = route.key.clone();
    let http_method = req.method().clone();
    let mut outcome = Outcome::default();
    let mut auth = match authenticate(&gw, route, req.uri(), req.headers()).await {
        Ok(a) => a,
        Err(r) => {
            if r.status() == StatusCode::UNAUTHORIZED {
                let reason = r.extensions().get::<Failure>().map(|f| f.message.as_str());
                audit_refusal(&req, &route_key, reason.unwrap_or("refused"));
            }
            return *r;
        }
    };
    let (req, respond) = match route.ext_auth.as_deref() {
        Some(ext) => match ext_authorize(&gw, ext, &route_key, req, &mut auth).await {
            Ok(x) => x,
            Err(r) => return *r,
        },
        None => (req.map(Either::Left), Vec::new()),
    };
    gateway_claims(route, &req, &mut auth);
    if route.checks_requests() {
        auth.who = Arc::new(Subject::new(&req, auth.claims.clone(), route.uses_cel()));
    }
    let resp = match http_method {
        Method::POST => post(&gw, route, req, &mut auth, &mut outcome).await,
        Method::GET => get(&gw, route, req.headers(), &auth),
        Method::DELETE => delete(&gw, route, req.headers(), &auth).await,
        _ => {
            let mut r = error(
                StatusCode::METHOD_NOT_ALLOWED,
                None,
                code::INVALID_REQUEST,
                "method not allowed",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
            r
        }
    };
    let mut resp = resp;
    for (k, v) in respond {
        resp.headers_mut().append(k, v);
    }
    let resp = match auth.trace.take() {
        Some(span) => traced(span, resp),
        None => resp,
    };
    gw.settings.metrics.request(
        &outcome.mcp_method,
        outcome.backend.as_deref().unwrap_or(""),
        outcome.tool.as_deref().unwrap_or(""),
        resp.status().is_success(),
        start.elapsed().as_secs_f64(),
    );
    tracing::info!(
        target: "aigw::mcp",
        route = %route_key,
        http_method = %http_method,
        mcp_method = %outcome.mcp_method,
        backend = outcome.backend.as_deref().unwrap_or(""),
        tool = outcome.tool.as_deref().unwrap_or(""),
        status = resp.status().as_u16(),
        duration_ms = start.elapsed().as_millis() as u64,
        "mcp request"
    );
    resp
}

/// A request whose body may have been read for the authorization service.
type Checked<B> = http::Request<Either<B, Full<Bytes>>>;

/// Whether a body declares (by `content-length`, which hyper turns into its exact size
/// hint) more than `max` bytes: it is refused with 413 before any of it is read.
fn declared_over<B: http_body::Body>(body: &B, max: usize) -> bool {
    body.size_hint().lower() > u64::try_from(max).unwrap_or(u64::MAX)
}

/// Why a request body could not be read.
enum BodyRead {
    /// Over the size limit.
    TooLarge,
    /// Not received within the body timeout.
    TimedOut,
    /// The client's stream failed.
    Failed(String),
}

/// Reads a request body of at most `max` bytes, within `timeout` when one is set.
async fn read_body<B>(body: B, max: usize, timeout: Option<Duration>) -> Result<Bytes, BodyRead>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let collect = Limited::new(body, max).collect();
    let collected = match timeout {
        Some(t) => tokio::time::timeout(t, collect)
            .await
            .map_err(|_| BodyRead::TimedOut)?,
        None => collect.await,
    };
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(BodyRead::TooLarge)
        }
        Err(e) => Err(BodyRead::Failed(e.to_string())),
    }
}

/// The answer to a body that could not be read; `too_large` names the limit's owner.
fn body_error(e: BodyRead, too_large: &str) -> http::Response<McpBody> {
    let (status, msg) = match e {
        BodyRead::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, too_large.to_string()),
        BodyRead::TimedOut => (
            StatusCode::REQUEST_TIMEOUT,
            "request body not received in time".to_string(),
        ),
        BodyRead::Failed(e) => (
            StatusCode::BAD_REQUEST,
            format!("cannot read the request body: {e}"),
        ),
    };
    error(status, None, code::INVALID_REQUEST, &msg)
}

/// Asks the route's authorization service (`extAuth`) about a request, reading the
/// body first when `bodyToExtAuth` wants it (413 above its cap, as Envoy). Allowed:
/// the request (its body intact) and the headers for the client's answer.
async fn ext_authorize<B>(
    gw: &McpGateway,
    ext: &super::extauth::ExtAuth,
    route_key: &str,
    req: http::Request<B>,
    auth: &mut Auth,
) -> Result<(Checked<B>, Vec<(http::HeaderName, HeaderValue)>), Box<http::Response<McpBody>>>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (req, body) = match ext.wants_body() {
        Some(max) if req.method() == Method::POST => {
            let (parts, body) = req.into_parts();
            if declared_over(&body, max) {
                // Refused on its declared length, before a byte of it is read.
                return Err(Box::new(error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    None,
                    code::INVALID_REQUEST,
                    "request body too large for the authorization service",
                )));
            }
            let bytes = read_body(body, max, gw.settings.body_timeout)
                .await
                .map_err(|e| {
                    Box::new(body_error(
                        e,
                        "request body too large for the authorization service",
                    ))
                })?;
            let req = http::Request::from_parts(parts, Either::Right(Full::new(bytes.clone())));
            (req, Some(bytes))
        }
        _ => (req.map(Either::Left), None),
    };
    let checked = super::extauth::Checked {
        method: req.method(),
        uri: req.uri(),
        headers: req.headers(),
        body: body.as_ref(),
        peer: req.extensions().get::<std::net::SocketAddr>().copied(),
    };
    match ext.check(gw.upstream.as_ref(), checked).await {
        super::extauth::Verdict::Allow {
            add,
            remove,
            respond,
        } => {
            auth.headers.retain(|(n, _)| !remove.contains(n));
            auth.headers.extend(add);
            auth.withheld.extend(remove);
            Ok((req, respond))
        }
        super::extauth::Verdict::Deny {
            status,
            headers,
            body,
        } => {
            let reason = format!("extAuth answered {}", status.as_u16());
            audit_refusal(&req, route_key, &reason);
            let mut r = http::Response::new(Full::new(body).boxed_unsync());
            *r.status_mut() = status;
            for (k, v) in headers {
                r.headers_mut().append(k, v);
            }
            Err(Box::new(r))
        }
    }
}

/// Writes a refused client to the audit trail: its address (when the packaging
/// put the connection's `SocketAddr` in the request's extensions), how it presented
/// itself, the path, the route and why — never what it presented.
fn audit_refusal<B>(req: &http::Request<B>, route: &str, reason: &str) {
    if !crate::audit::enabled() {
        return;
    }
    crate::audit::emit(&crate::audit::AuditEvent::AuthFailure {
        peer: req
            .extensions()
            .get::<std::net::SocketAddr>()
            .map(std::net::SocketAddr::ip),
        claimed: None,
        scheme: crate::audit::presented_scheme(req.headers()),
        path: req.uri().path(),
        route: Some(route),
        reason,
    });
}

/// Records how the request ended on its span and keeps the span open until the
/// response body (a stream, possibly) is done.
fn traced(span: McpSpan, resp: http::Response<McpBody>) -> http::Response<McpBody> {
    if let Some(f) = resp.extensions().get::<Failure>() {
        span.fail(f.kind, &f.message, Some(f.code));
    } else if !resp.status().is_success() {
        span.fail(
            McpErrorType::Internal,
            &format!("answered {}", resp.status()),
            None,
        );
    }
    if let Some(sid) = resp
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        span.client_session(sid);
    }
    resp.map(|body| {
        body.map_frame(move |f| {
            let _ = &span;
            f
        })
        .boxed_unsync()
    })
}

/// Checks the client's API key (`apiKeyAuth`) and bearer token (`oauth`), each when the
/// route asks for it: 401 (with the RFC 9728 challenge on OAuth routes) when one is
/// missing or refused, 503 when the signing keys cannot be had.
/// A route without OAuth of its own is guarded by the gateway-level client
/// authentication (Envoy applies a Gateway's SecurityPolicy to every route): the claims
/// of the JWT it verified are the ones the route's authorization rules and backend
/// selector read, and its subject binds the session.
fn gateway_claims<B>(route: &McpRoute, req: &http::Request<B>, auth: &mut Auth) {
    if route.oauth.is_some() || auth.claims.is_some() {
        return;
    }
    if let Some(c) = req.extensions().get::<crate::identity::VerifiedClaims>() {
        auth.subject = c.subject().to_owned();
        auth.claims = Some(c.0.clone());
    }
}

async fn authenticate(
    gw: &McpGateway,
    route: &McpRoute,
    uri: &http::Uri,
    headers: &HeaderMap,
) -> Result<Auth, Box<http::Response<McpBody>>> {
    let mut auth = Auth::default();
    let challenge = |r: &mut http::Response<McpBody>, refused: Option<&super::auth::Refused>| {
        if let Some(v) = route
            .oauth
            .as_deref()
            .and_then(|o| HeaderValue::try_from(o.challenge(refused)).ok())
        {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    };
    if let Some(keys) = route.api_keys.as_deref() {
        match keys.check(uri, headers) {
            Ok(client) => {
                if let Some(h) = &keys.client_header
                    && let Ok(v) = HeaderValue::try_from(&*client)
                {
                    auth.headers.push((h.clone(), v));
                }
                if keys.sanitize {
                    auth.withheld.extend(keys.key_headers().cloned());
                }
            }
            Err(e) => {
                let mut r = error(
                    StatusCode::UNAUTHORIZED,
                    None,
                    code::INVALID_REQUEST,
                    e.message(),
                );
                challenge(&mut r, None);
                return Err(Box::new(r));
            }
        }
    }
    let Some(oauth) = route.oauth.as_deref() else {
        if route.trust_bearer
            && let Some(claims) = bearer(headers).and_then(super::authz::unverified_claims)
        {
            auth.subject = claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            auth.claims = Some(Arc::new(claims));
        }
        return Ok(auth);
    };
    let unauthorized = |refused: Option<&super::auth::Refused>| {
        let msg = refused.map_or("missing bearer token", |r| r.0);
        let mut r = error(StatusCode::UNAUTHORIZED, None, code::INVALID_REQUEST, msg);
        challenge(&mut r, refused);
        Box::new(r)
    };
    let Some(token) = bearer(headers) else {
        return Err(unauthorized(None));
    };
    let keys = oauth.keys(gw.upstream.as_ref()).await.map_err(|e| {
        tracing::warn!(target: "aigw::mcp", route = %route.key, error = %e.0, "no JWKS to verify MCP clients");
        Box::new(error(StatusCode::SERVICE_UNAVAILABLE, None, code::INTERNAL_ERROR, "token signing keys unavailable"))
    })?;
    let claims = oauth
        .verify(&keys, token)
        .map_err(|r| unauthorized(Some(&r)))?;
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    for (path, name) in &route.claim_headers {
        let mut cur = claims.get(&path[0]);
        for p in &path[1..] {
            cur = cur.and_then(|v| v.get(p));
        }
        let text = match cur {
            Some(Value::String(s)) => s.clone(),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
            _ => continue,
        };
        if let Ok(v) = HeaderValue::try_from(text) {
            auth.headers.push((name.clone(), v));
        }
    }
    auth.claims = Some(Arc::new(claims));
    auth.subject = subject;
    Ok(auth)
}

/// The bearer token of `Authorization`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
}

/// The session's targets (every backend it holds a session with).
pub(crate) fn targets(
    route: &McpRoute,
    session: &Session,
    client: &HeaderMap,
    auth: &Auth,
) -> Vec<Target> {
    session
        .backends
        .iter()
        .filter_map(|bs| {
            let mut t = Target::new(route.backend(&bs.name)?.clone(), client, &bs.version, auth);
            t.session = bs.id.clone();
            Some(t)
        })
        .collect()
}

enum SessionCheck {
    None,
    Valid(Session, String),
    Invalid,
}

fn session_of(gw: &McpGateway, route: &McpRoute, headers: &HeaderMap, auth: &Auth) -> SessionCheck {
    let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return SessionCheck::None;
    };
    match Session::open(&gw.crypto, id) {
        // A session opened with a token is bound to its subject.
        Some(s)
            if s.route == route.key
                && ((route.oauth.is_none() && !route.trust_bearer)
                    || s.subject == auth.subject) =>
        {
            SessionCheck::Valid(s, id.to_string())
        }
        _ => SessionCheck::Invalid,
    }
}

fn wants_sse(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream") || v.contains("*/*"))
}

async fn post<B>(
    gw: &Arc<McpGateway>,
    route: &McpRoute,
    req: http::Request<B>,
    auth: &mut Auth,
    out: &mut Outcome,
) -> http::Response<McpBody>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let session = session_of(gw, route, &headers, auth);
    if matches!(session, SessionCheck::Invalid) {
        return error(
            StatusCode::BAD_REQUEST,
            None,
            code::INVALID_REQUEST,
            "invalid session ID",
        );
    }
    if declared_over(&body, gw.settings.max_request_body) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            code::INVALID_REQUEST,
            "request body too large",
        );
    }
    let bytes = match read_body(body, gw.settings.max_request_body, gw.settings.body_timeout).await
    {
        Ok(b) => b,
        Err(e) => return body_error(e, "request body too large"),
    };
    let msg = match Message::decode(&bytes) {
        Ok(m) => m,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                None,
                code::PARSE_ERROR,
                &format!("invalid JSON-RPC message: {e}"),
            );
        }
    };
    out.mcp_method = msg.method().to_string();
    if msg.kind() != Some(Kind::Response) {
        auth.trace = gw.settings.telemetry.mcp_span(McpMessage {
            method: msg.method(),
            id: msg.id(),
            params: msg.params(),
            headers: &headers,
        });
    }
    let auth = &*auth;
    if msg.method() != "initialize"
        && let Some(v) = headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok())
        && !PROTOCOL_VERSIONS.contains(&v)
    {
        return failed(
            StatusCode::BAD_REQUEST,
            msg.id().cloned(),
            code::INVALID_REQUEST,
            McpErrorType::UnsupportedProtocolVersion,
            &format!(
                "unsupported MCP-Protocol-Version {v:?}; supported: {}",
                PROTOCOL_VERSIONS.join(", ")
            ),
        );
    }
    let (session, sid) = match session {
        SessionCheck::Valid(s, id) => (s, id),
        _ if msg.method() == "initialize" => {
            return fanout::initialize(gw.clone(), route, msg, &headers, auth).await;
        }
        _ => {
            return failed(
                StatusCode::BAD_REQUEST,
                msg.id().cloned(),
                code::INVALID_REQUEST,
                McpErrorType::InvalidSessionId,
                "missing session ID",
            );
        }
    };
    if let Some(span) = &auth.trace {
        span.client_session(&sid);
    }
    let s = Call {
        gw,
        route,
        session: &session,
        sid: &sid,
        headers: &headers,
        auth,
        sse: wants_sse(&headers),
    };
    match msg.kind() {
        Some(Kind::Response) => s.client_response(msg, out).await,
        Some(Kind::Notification) => s.notification(msg, out).await,
        _ => s.request(msg, out).await,
    }
}

/// One POST within a session.
struct Call<'a> {
    gw: &'a Arc<McpGateway>,
    route: &'a McpRoute,
    session: &'a Session,
    sid: &'a str,
    headers: &'a HeaderMap,
    auth: &'a Auth,
    sse: bool,
}

impl Call<'_> {
    async fn request(&self, mut msg: Message, out: &mut Outcome) -> http::Response<McpBody> {
        let id = msg.id().cloned();
        let list = match msg.method() {
            "ping" => {
                return self.json(&Message::response(
                    id.unwrap_or(Value::Null),
                    serde_json::json!({}),
                ));
            }
            "initialize" => {
                return error(
                    StatusCode::BAD_REQUEST,
                    id,
                    code::INVALID_REQUEST,
                    "the session is already initialized",
                );
            }
            "tools/list" => ListKind::Tools,
            "prompts/list" => ListKind::Prompts,
            "resources/list" => ListKind::Resources,
            "resources/templates/list" => ListKind::Templates,
            "logging/setLevel" => ListKind::Logging,
            "tools/call" | "prompts/get" => return self.route_by_name(msg, "name", out).await,
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                return self.route_by_uri(msg, out).await;
            }
            "completion/complete" => {
                let r = msg
                    .params()
                    .and_then(|p| p.get("ref"))
                    .cloned()
                    .unwrap_or_default();
                return match r.get("type").and_then(Value::as_str) {
                    Some("ref/prompt") => {
                        let name = r
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        let Some((b, n)) = names::upstream_name(&name) else {
                            return error(
                                StatusCode::BAD_REQUEST,
                                id,
                                code::INVALID_PARAMS,
                                &format!("invalid prompt name {name}"),
                            );
                        };
                        let (b, n) = (b.to_string(), n.to_string());
                        if let Some(p) = msg.params_mut().and_then(|p| p.get_mut("ref")) {
                            p["name"] = Value::String(n);
                        }
                        self.forward_to(&b, msg, out).await
                    }
                    Some("ref/resource") => {
                        let uri = r
                            .get("uri")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        let Some((b, u)) = names::upstream_uri(&uri) else {
                            return error(
                                StatusCode::BAD_REQUEST,
                                id,
                                code::INVALID_PARAMS,
                                &format!("invalid resource URI {uri}"),
                            );
                        };
                        let b = b.to_string();
                        if let Some(p) = msg.params_mut().and_then(|p| p.get_mut("ref")) {
                            p["uri"] = Value::String(u);
                        }
                        self.forward_to(&b, msg, out).await
                    }
                    _ => error(
                        StatusCode::BAD_REQUEST,
                        id,
                        code::INVALID_PARAMS,
                        "completion/complete needs a ref/prompt or ref/resource",
                    ),
                };
            }
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    id,
                    code::METHOD_NOT_FOUND,
                    &format!("unsupported method: {other}"),
                );
            }
        };
        let targets = targets(self.route, self.session, self.headers, self.auth)
            .into_iter()
            .filter(|t| {
                self.session
                    .backend(&t.backend.name)
                    .is_some_and(|b| b.has(list.capability()))
            })
            .collect();
        // tools/list shows only what the caller may call.
        // As upstream, each tool is checked as a `tools/call` of it without parameters.
        let allowed: Option<fanout::ToolFilter> = self.route.authz.clone().map(|a| {
            let who = self.auth.who.clone();
            Arc::new(move |b: &str, t: &str| {
                let call = McpCall {
                    method: "tools/call",
                    backend: b,
                    tool: t,
                    params: None,
                };
                a.decide(&who, &call) == Decision::Allow
            }) as fanout::ToolFilter
        });
        fanout::aggregate(
            self.gw.clone(),
            list,
            targets,
            msg,
            allowed,
            self.sse,
            self.sid.to_string(),
        )
        .await
    }

    async fn route_by_name(
        &self,
        mut msg: Message,
        field: &str,
        out: &mut Outcome,
    ) -> http::Response<McpBody> {
        let id = msg.id().cloned();
        let full = msg.param_str(field).unwrap_or("").to_string();
        let Some((backend, name)) = names::upstream_name(&full) else {
            return error(
                StatusCode::BAD_REQUEST,
                id,
                code::INVALID_PARAMS,
                &format!("invalid name {full}: not {{backend}}__{{name}}"),
            );
        };
        let (backend, name) = (backend.to_string(), name.to_string());
        if msg.method() == "tools/call" {
            out.tool = Some(name.clone());
            let call = McpCall {
                method: "tools/call",
                backend: &backend,
                tool: &name,
                params: msg.params(),
            };
            if let Some(a) = &self.route.authz
                && let Decision::Deny(scopes) = a.decide(&self.auth.who, &call)
            {
                out.backend = Some(backend);
                let mut r = error(
                    StatusCode::FORBIDDEN,
                    id,
                    code::INVALID_REQUEST,
                    "access denied",
                );
                let url = self
                    .route
                    .oauth
                    .as_ref()
                    .map(|o| o.metadata_url.as_str())
                    .or(self.route.challenge_url.as_deref());
                if let Some(Ok(v)) = insufficient_scope(&scopes, url).map(HeaderValue::try_from) {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                return r;
            }
            let b = self.route.backend(&backend);
            if b.and_then(|b| b.selector.as_ref())
                .is_some_and(|s| !s.allows(&name))
            {
                out.backend = Some(backend);
                return error(
                    StatusCode::BAD_REQUEST,
                    id,
                    code::INVALID_PARAMS,
                    &format!("invalid tool name: {name}"),
                );
            }
        }
        if let Some(p) = msg.params_mut() {
            p.insert(field.into(), Value::String(name));
        }
        self.forward_to(&backend, msg, out).await
    }

    async fn route_by_uri(&self, mut msg: Message, out: &mut Outcome) -> http::Response<McpBody> {
        let id = msg.id().cloned();
        let full = msg.param_str("uri").unwrap_or("").to_string();
        let Some((backend, uri)) = names::upstream_uri(&full) else {
            return error(
                StatusCode::BAD_REQUEST,
                id,
                code::INVALID_PARAMS,
                &format!("invalid resource URI {full}"),
            );
        };
        let backend = backend.to_string();
        if let Some(p) = msg.params_mut() {
            p.insert("uri".into(), Value::String(uri));
        }
        self.forward_to(&backend, msg, out).await
    }

    fn target(
        &self,
        backend: &str,
        id: Option<Value>,
    ) -> Result<Target, Box<http::Response<McpBody>>> {
        let Some(b) = self.route.backend(backend) else {
            return Err(Box::new(error(
                StatusCode::NOT_FOUND,
                id,
                code::INVALID_PARAMS,
                &format!("unknown backend {backend}"),
            )));
        };
        let Some(bs) = self.session.backend(backend) else {
            return Err(Box::new(error(
                StatusCode::FORBIDDEN,
                id,
                code::INVALID_PARAMS,
                &format!("no MCP session found for backend {backend}"),
            )));
        };
        let mut t = Target::new(b.clone(), self.headers, &bs.version, self.auth);
        t.session = bs.id.clone();
        Ok(t)
    }

    async fn forward_to(
        &self,
        backend: &str,
        msg: Message,
        out: &mut Outcome,
    ) -> http::Response<McpBody> {
        out.backend = Some(backend.to_string());
        let t = match self.target(backend, msg.id().cloned()) {
            Ok(t) => t,
            Err(r) => return *r,
        };
        forward(self.gw.clone(), t, msg, self.sse, self.sid.to_string()).await
    }

    async fn notification(&self, mut msg: Message, out: &mut Outcome) -> http::Response<McpBody> {
        match msg.method() {
            "notifications/progress" => {
                let token = msg
                    .params()
                    .and_then(|p| p.get("progressToken"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let Some((backend, original)) =
                    names::decode_id(token).map(|(b, o)| (b.to_string(), o))
                else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        None,
                        code::INVALID_PARAMS,
                        &format!("invalid progressToken {token}"),
                    );
                };
                if let Some(p) = msg.params_mut() {
                    p.insert("progressToken".into(), original);
                }
                out.backend = Some(backend.clone());
                match self.target(&backend, None) {
                    Ok(t) => relay_and_accept(self.gw, &t, &msg, self.sid).await,
                    Err(r) => *r,
                }
            }
            "notifications/cancelled" | "notifications/roots/list_changed" => {
                // Request ids pass through unchanged, so the backend serving a cancelled
                // request is not known here: every backend gets the notification (one
                // that did not see the id ignores it, as the spec requires).
                fanout::broadcast(
                    self.gw.clone(),
                    targets(self.route, self.session, self.headers, self.auth),
                    msg,
                );
                accepted(self.sid)
            }
            _ => accepted(self.sid),
        }
    }

    async fn client_response(
        &self,
        mut msg: Message,
        out: &mut Outcome,
    ) -> http::Response<McpBody> {
        let id = msg.id().and_then(Value::as_str).unwrap_or("").to_string();
        if id.starts_with(PING_PREFIX) {
            return accepted(self.sid);
        }
        let Some((backend, original)) = names::decode_id(&id).map(|(b, o)| (b.to_string(), o))
        else {
            return error(
                StatusCode::BAD_REQUEST,
                None,
                code::INVALID_REQUEST,
                &format!("invalid response ID format: {id}"),
            );
        };
        msg.set_id(original);
        out.backend = Some(backend.clone());
        match self.target(&backend, None) {
            Ok(t) => relay_and_accept(self.gw, &t, &msg, self.sid).await,
            Err(r) => *r,
        }
    }

    fn json(&self, m: &Message) -> http::Response<McpBody> {
        json_response(StatusCode::OK, m, Some(self.sid))
    }
}

/// Sends a notification or response to one backend; the client gets 202.
async fn relay_and_accept(
    gw: &McpGateway,
    t: &Target,
    msg: &Message,
    sid: &str,
) -> http::Response<McpBody> {
    if let Some(s) = &t.trace {
        s.route_to_backend(&t.backend.name, t.session.as_deref().unwrap_or(""), false);
    }
    match t.send(gw, Method::POST, Some(msg), None).await {
        Ok(r) if r.status().is_success() => accepted(sid),
        Ok(r) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            code::INTERNAL_ERROR,
            &format!("backend {} answered {}", t.backend.name, r.status()),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            code::INTERNAL_ERROR,
            &format!("call to {} failed: {e}", t.backend.name),
        ),
    }
}

/// Sends a client request to one backend and relays its answer (and whatever the
/// backend sends before it) back.
async fn forward(
    gw: Arc<McpGateway>,
    t: Target,
    msg: Message,
    sse: bool,
    sid: String,
) -> http::Response<McpBody> {
    let client_id = msg.id().cloned().unwrap_or(Value::Null);
    let method = msg.method().to_string();
    let name = t.backend.name.clone();
    let span = t.trace.clone();
    if let Some(s) = &span {
        s.route_to_backend(&name, t.session.as_deref().unwrap_or(""), false);
    }
    let resp = match t.send(&gw, Method::POST, Some(&msg), None).await {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(client_id),
                code::INTERNAL_ERROR,
                &format!("call to {name} failed: {e}"),
            );
        }
    };
    if !resp.status().is_success() {
        let status = resp.status();
        let body = snippet(resp).await;
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(client_id),
            code::INTERNAL_ERROR,
            &format!(
                "call to {name} failed with status code {}, body={body}",
                status.as_u16()
            ),
        );
    }
    let stream = is_sse(resp.headers());
    let mut inc = Incoming::new(resp, gw.settings.max_request_body.max(16 * 1024 * 1024));
    if !stream || !sse {
        // The client reads one JSON answer: relay the backend's final message only.
        while let Some(item) = inc.next().await {
            match item {
                Ok(Item {
                    msg: Some(mut m), ..
                }) if is_answer(&m, &client_id) => {
                    record_answer(span.as_ref(), &method, &m);
                    rewrite::from_backend(&mut m, &name, Some((&method, &client_id)));
                    return json_response(StatusCode::OK, &m, Some(&sid));
                }
                Ok(_) => {}
                Err(e) => {
                    return error(
                        StatusCode::BAD_GATEWAY,
                        Some(client_id),
                        code::INTERNAL_ERROR,
                        &format!("reading {name}'s answer failed: {e}"),
                    );
                }
            }
        }
        return error(
            StatusCode::BAD_GATEWAY,
            Some(client_id),
            code::INTERNAL_ERROR,
            &format!("{name} closed the response without answering"),
        );
    }
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut answered = false;
        loop {
            let item = tokio::select! {
                i = inc.next() => i,
                () = tx.closed() => break,
            };
            let Some(item) = item else { break };
            match item {
                Ok(Item {
                    msg: Some(mut m), ..
                }) => {
                    answered = is_answer(&m, &client_id);
                    if answered {
                        record_answer(span.as_ref(), &method, &m);
                    }
                    rewrite::from_backend(&mut m, &name, Some((&method, &client_id)));
                    if tx
                        .send(SseEvent::message(m.encode(), None).encode())
                        .await
                        .is_err()
                        || answered
                    {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(target: "aigw::mcp", backend = %name, error = %e, "MCP backend stream failed");
                    break;
                }
            }
        }
        if !answered {
            if let Some(s) = &span {
                s.fail(
                    McpErrorType::Internal,
                    &format!("{name} closed the stream before answering"),
                    Some(code::INTERNAL_ERROR),
                );
            }
            let m = Message::error_response(
                Some(client_id),
                code::INTERNAL_ERROR,
                &format!("{name} closed the stream before answering"),
            );
            let _ = tx.send(SseEvent::message(m.encode(), None).encode()).await;
        }
    });
    sse_response(rx, &sid)
}

/// Records a backend's answer on the request's span: its result for `tools/call`, and
/// a JSON-RPC error or a tool's `isError` as the request's failure, as upstream does.
fn record_answer(span: Option<&McpSpan>, method: &str, m: &Message) {
    let Some(span) = span else { return };
    if let Some(e) = m.error() {
        let code = e.get("code").and_then(Value::as_i64);
        let message = e.get("message").and_then(Value::as_str).unwrap_or("");
        let kind = code.map_or(McpErrorType::Internal, McpErrorType::from_code);
        span.fail(kind, message, code);
        return;
    }
    let Some(result) = m.result().filter(|_| method == "tools/call") else {
        return;
    };
    span.tool_call_result(result);
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        let text: Vec<&str> = result
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("text").and_then(Value::as_str))
            .collect();
        let text = text.join("; ");
        // Upstream's heuristic: the Go SDK reports argument validation this way.
        let kind = if text.contains("validating") {
            McpErrorType::InvalidParam
        } else {
            McpErrorType::Internal
        };
        span.fail(kind, &format!("tool returned isError=true: {text}"), None);
    }
}

fn is_answer(m: &Message, id: &Value) -> bool {
    m.kind() == Some(Kind::Response) && m.id() == Some(id)
}

/// The session a GET or DELETE needs: 400 when missing or invalid, as upstream.
fn required_session(
    gw: &McpGateway,
    route: &McpRoute,
    headers: &HeaderMap,
    auth: &Auth,
) -> Result<(Session, String), Box<http::Response<McpBody>>> {
    let reason = match session_of(gw, route, headers, auth) {
        SessionCheck::Valid(s, id) => return Ok((s, id)),
        SessionCheck::None => "missing session ID",
        SessionCheck::Invalid => "invalid session ID",
    };
    Err(Box::new(error(
        StatusCode::BAD_REQUEST,
        None,
        code::INVALID_REQUEST,
        reason,
    )))
}

fn get(
    gw: &Arc<McpGateway>,
    route: &McpRoute,
    headers: &HeaderMap,
    auth: &Auth,
) -> http::Response<McpBody> {
    let (session, sid) = match required_session(gw, route, headers, auth) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let resume = headers
        .get(LAST_EVENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|id| EventIds::open(&gw.crypto, id))
        .unwrap_or_default();
    let rx =
        fanout::notification_stream(gw.clone(), targets(route, &session, headers, auth), resume);
    sse_response(rx, &sid)
}

async fn delete(
    gw: &Arc<McpGateway>,
    route: &McpRoute,
    headers: &HeaderMap,
    auth: &Auth,
) -> http::Response<McpBody> {
    let session = match required_session(gw, route, headers, auth) {
        Ok((s, _)) => s,
        Err(r) => return *r,
    };
    fanout::close(gw, targets(route, &session, headers, auth)).await;
    empty(StatusCode::OK, None)
}
