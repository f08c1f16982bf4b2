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
//! Without a configured token the API is not served at all. The keys calls are the
//! core's ([`aigw_core::admin`]), which `aigw-extproc` serves too.

use aigw_core::admin::AdminApi as CoreApi;
use aigw_core::config::Config;
use aigw_core::keys::KeyRegistry;
use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http::StatusCode;
use serde::Serialize;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

pub use aigw_core::admin::AdminToken;

/// A middleware refusing requests without the admin token (401, audited), for any
/// admin route (`axum::middleware::from_fn_with_state(token, admin_api::guard)`).
pub async fn guard(State(token): State<AdminToken>, request: Request, next: Next) -> Response {
    if token.admits(request.headers()) {
        return next.run(request).await;
    }
    let r = AdminToken::refusal(request.headers(), request.uri().path(), peer_of(&request));
    r.map(Body::from)
}

fn peer_of<B>(request: &http::Request<B>) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Bodies of admin calls larger than this are refused.
const MAX_ADMIN_BODY: usize = 64 * 1024;

/// Hands an admin request to the core's API ([`aigw_core::admin::AdminApi`]).
pub(crate) async fn serve_core(api: &CoreApi, request: Request) -> Response {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_ADMIN_BODY).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        );
    };
    match api.handle_parts(&parts, peer, &body).await {
        Some(r) => r.map(Body::from),
        None => error(StatusCode::NOT_FOUND, "no such admin resource"),
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
    core: Arc<CoreApi>,
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
            core: Arc::new(CoreApi::new(Some(token.clone()))),
            token,
            keys: None,
            routes: Arc::new(ArcSwap::from_pointee(Vec::new())),
        }
    }

    /// Serves the virtual keys of `registry`.
    #[must_use]
    pub fn keys(mut self, registry: Arc<KeyRegistry>) -> Self {
        self.core = Arc::new(CoreApi::new(Some(self.token.clone())).keys(registry.clone()));
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
            .route("/admin/keys", any(keys))
            .route("/admin/keys/{id}", any(keys))
            .route("/admin/keys/{id}/rotate", any(keys))
            .route("/admin/routes", get(list_routes))
            .route("/admin/status", get(status))
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(
                self.token.clone(),
                guard,
            ));
        guarded.merge(crate::console::router())
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": {"message": message}}))).into_response()
}

async fn keys(State(api): State<AdminApi>, request: Request) -> Response {
    serve_core(&api.core, request).await
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
