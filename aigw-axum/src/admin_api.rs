//! The admin HTTP API on the admin listener, behind the admin token.
//!
//! * `POST /admin/keys` — issues a virtual key; the reply holds the key, once;
//! * `GET /admin/keys`, `GET /admin/keys/{id}` — keys without their secrets;
//! * `POST /admin/keys/{id}/rotate` — a new secret for the same key (shown once);
//! * `DELETE /admin/keys/{id}` — revokes (every replica refuses it within a second);
//! * `GET /admin/routes` — the routes with their models and backends;
//! * `GET /admin/status` — what the console needs to know about this gateway;
//! * `/admin/console` — the web console ([`crate::console`]).
//!
//! Every call presents the admin token as `Authorization: Bearer <token>` (compared in
//! constant time); without it the answer is 401. Every change goes to the audit log.
//! Without a configured token the API is not served at all.

use aigw_core::audit::{self, AuditEvent};
use aigw_core::config::Config;
use aigw_core::keys::{KeyInfo, KeyRegistry, KeySpec};
use aigw_core::{Error, Secret};
use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;

/// The admin token, held as its SHA-256 digest so comparisons take the same time
/// whatever the presented token's length.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken([REDACTED])")
    }
}

impl AdminToken {
    /// A token; `None` when it is empty (an empty token would admit anyone).
    pub fn new(token: &Secret) -> Option<Self> {
        let t = token.expose().trim();
        (!t.is_empty()).then(|| Self {
            digest: Sha256::digest(t.as_bytes()).into(),
        })
    }

    /// Whether `headers` carry this token as a bearer credential.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
        else {
            return false;
        };
        let d: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        aigw_core::secret::constant_time_eq(&d, &self.digest)
    }

    /// A middleware refusing requests without the token (401), for any admin route
    /// (`axum::middleware::from_fn_with_state(token, AdminToken::guard)`).
    pub async fn guard(State(token): State<Self>, request: Request, next: Next) -> Response {
        if token.admits(request.headers()) {
            return next.run(request).await;
        }
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        audit::emit(&AuditEvent::AuthFailure {
            peer,
            claimed: None,
            scheme: if request.headers().contains_key(header::AUTHORIZATION) {
                "bearer"
            } else {
                "none"
            },
            path: request.uri().path(),
            route: None,
            reason: "admin token missing or wrong",
        });
        let mut r = error(StatusCode::UNAUTHORIZED, "admin token missing or wrong");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"aigw-admin\""),
        );
        r
    }
}

/// A route as the admin API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RouteView {
    /// `namespace/name` of the AIGatewayRoute.
    pub name: String,
    /// Hostnames it serves (empty: any).
    pub hostnames: Vec<String>,
    /// Its rules: the models each matches and the backends it sends to.
    pub rules: Vec<RuleView>,
}

/// One rule of a route.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RuleView {
    /// The rule's matches, as `header=value` (`~` for a regular expression).
    pub matches: Vec<String>,
    /// The backends, in order.
    pub backends: Vec<BackendView>,
}

/// One backend of a rule.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BackendView {
    /// `namespace/name` of the AIServiceBackend (or InferencePool).
    pub name: String,
    /// The backend's API schema, when it is an AIServiceBackend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Where it sends (`Backend` / `Service` name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// `weight`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
    /// `priority`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// `modelNameOverride`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_override: Option<String>,
}

/// The routes of a configuration, for `GET /admin/routes`.
pub fn routes_of(config: &Config) -> Vec<RouteView> {
    let backends: std::collections::HashMap<String, _> = config
        .ai_service_backends
        .iter()
        .map(|b| (b.key(), &b.spec))
        .collect();
    config
        .ai_gateway_routes
        .iter()
        .map(|r| {
            let ns = r.namespace();
            RouteView {
                name: r.key(),
                hostnames: r.spec.hostnames.clone(),
                rules: r
                    .spec
                    .rules
                    .iter()
                    .map(|rule| RuleView {
                        matches: rule
                            .matches
                            .iter()
                            .flat_map(|m| &m.headers)
                            .map(|h| {
                                let op = match h.match_type {
                                    aigw_core::config::HeaderMatchType::Exact => "=",
                                    aigw_core::config::HeaderMatchType::RegularExpression => "~",
                                };
                                format!("{}{op}{}", h.name, h.value)
                            })
                            .collect(),
                        backends: rule
                            .backend_refs
                            .iter()
                            .map(|b| {
                                let name =
                                    format!("{}/{}", b.namespace.as_deref().unwrap_or(ns), b.name);
                                let spec = backends.get(&name);
                                BackendView {
                                    schema: spec.map(|s| s.schema.name.to_string()),
                                    upstream: spec.map(|s| s.backend_ref.name.clone()),
                                    name,
                                    weight: b.weight,
                                    priority: b.priority,
                                    model_override: b.model_name_override.clone(),
                                }
                            })
                            .collect(),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// What the admin API serves from.
#[derive(Clone)]
pub struct AdminApi {
    token: AdminToken,
    keys: Option<Arc<KeyRegistry>>,
    routes: Arc<ArcSwap<Vec<RouteView>>>,
}

impl std::fmt::Debug for AdminApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminApi")
            .field("keys", &self.keys.is_some())
            .finish_non_exhaustive()
    }
}

impl AdminApi {
    /// An API guarded by `token`.
    pub fn new(token: AdminToken) -> Self {
        Self {
            token,
            keys: None,
            routes: Arc::new(ArcSwap::from_pointee(Vec::new())),
        }
    }

    /// Serves the virtual keys of `registry`.
    #[must_use]
    pub fn keys(mut self, registry: Arc<KeyRegistry>) -> Self {
        self.keys = Some(registry);
        self
    }

    /// The routes shown by `GET /admin/routes`; replace them on every reload.
    pub fn set_routes(&self, routes: Vec<RouteView>) {
        self.routes.store(Arc::new(routes));
    }

    /// The token guarding the API (to guard further admin routes with the same token).
    pub const fn token(&self) -> &AdminToken {
        &self.token
    }

    /// The API's routes (merge them into the admin router). The console's page and
    /// assets are served without the token — they hold no data; everything they show
    /// comes from calls that need it.
    pub fn router(&self) -> Router {
        let guarded = Router::new()
            .route("/admin/keys", get(list_keys).post(create_key))
            .route("/admin/keys/{id}", get(get_key).delete(revoke_key))
            .route("/admin/keys/{id}/rotate", post(rotate_key))
            .route("/admin/routes", get(list_routes))
            .route("/admin/status", get(status))
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(
                self.token.clone(),
                AdminToken::guard,
            ));
        guarded.merge(crate::console::router())
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": {"message": message}}))).into_response()
}

fn from_core(e: &Error) -> Response {
    let status = match e {
        Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, &e.to_string())
}

fn not_enabled() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "virtual keys are not enabled on this gateway (start it with --virtual-keys)",
    )
}

/// The admin client's address, when the listener records it.
struct Peer(Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

fn audited(peer: &Peer, action: &str, target: &str) {
    let actor = peer.0.map_or_else(
        || "admin-token".to_owned(),
        |ip| format!("admin-token@{ip}"),
    );
    audit::emit(&AuditEvent::Admin {
        action,
        actor: &actor,
        target,
    });
    tracing::info!(action, key = target, "admin action");
}

fn view(info: &KeyInfo) -> Value {
    let mut v = serde_json::to_value(info).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        m.insert("status".into(), Value::from(info.status(now)));
    }
    v
}

/// A reply carrying a key: the only place a key is ever written.
fn with_secret(info: &KeyInfo, key: &Secret, status: StatusCode) -> Response {
    let mut v = view(info);
    if let Value::Object(m) = &mut v {
        m.insert("key".into(), Value::from(key.expose()));
    }
    let mut r = (status, axum::Json(v)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Brings the registry up to date with the store, so a key created or revoked on
/// another replica a moment ago shows as it is.
async fn fresh(keys: &KeyRegistry) {
    if let Err(e) = keys.refresh().await {
        tracing::warn!(error = %e, "virtual key store unreachable: listing the keys last loaded");
    }
}

async fn list_keys(State(api): State<AdminApi>) -> Response {
    if let Some(k) = api.keys.as_ref() {
        fresh(k).await;
    }
    match api.keys.as_ref() {
        Some(k) => axum::Json(json!({"keys": k.list().iter().map(view).collect::<Vec<_>>()}))
            .into_response(),
        None => not_enabled(),
    }
}

async fn get_key(State(api): State<AdminApi>, Path(id): Path<String>) -> Response {
    let Some(keys) = api.keys.as_ref() else {
        return not_enabled();
    };
    fresh(keys).await;
    match keys.get(&id) {
        Some(info) => axum::Json(view(&info)).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such key"),
    }
}

async fn create_key(State(api): State<AdminApi>, peer: Peer, body: axum::body::Bytes) -> Response {
    let Some(keys) = api.keys.as_ref() else {
        return not_enabled();
    };
    let spec: KeySpec = if body.iter().all(u8::is_ascii_whitespace) {
        KeySpec::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(s) => s,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("invalid key request: {e}"),
                );
            }
        }
    };
    match keys.create(spec).await {
        Ok((info, key)) => {
            audited(&peer, "key.create", &info.id);
            with_secret(&info, &key, StatusCode::CREATED)
        }
        Err(e) => from_core(&e),
    }
}

async fn rotate_key(State(api): State<AdminApi>, peer: Peer, Path(id): Path<String>) -> Response {
    let Some(keys) = api.keys.as_ref() else {
        return not_enabled();
    };
    match keys.rotate(&id).await {
        Ok((info, key)) => {
            audited(&peer, "key.rotate", &info.id);
            with_secret(&info, &key, StatusCode::OK)
        }
        Err(e) => from_core(&e),
    }
}

async fn revoke_key(State(api): State<AdminApi>, peer: Peer, Path(id): Path<String>) -> Response {
    let Some(keys) = api.keys.as_ref() else {
        return not_enabled();
    };
    match keys.revoke(&id).await {
        Ok(info) => {
            audited(&peer, "key.revoke", &info.id);
            axum::Json(view(&info)).into_response()
        }
        Err(e) => from_core(&e),
    }
}

async fn list_routes(State(api): State<AdminApi>) -> Response {
    axum::Json(json!({"routes": &**api.routes.load()})).into_response()
}

async fn status(State(api): State<AdminApi>) -> Response {
    axum::Json(json!({
        "virtual_keys": api.keys.as_ref().map(|k| k.describe()),
        "routes": api.routes.load().len(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}
