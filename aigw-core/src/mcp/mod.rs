//! The MCP gateway: one Streamable HTTP endpoint per MCPRoute, fanning out to the
//! route's MCP servers (feature `mcp`).
//!
//! Every packaging mounts the same [`McpService`] (a tower `Service` over
//! `http::Request`s): `aigw run` and an axum embedder beside the LLM routes, the ExtProc
//! on its MCP listener that Envoy routes `/mcp` to. The packaging only supplies
//! [`McpUpstream`], its HTTP client.
//!
//! Semantics follow upstream Envoy AI Gateway (`internal/mcpproxy`), so an MCPRoute
//! behaves the same behind either gateway:
//! * `initialize` goes to every backend concurrently; the client gets the union of their
//!   capabilities and one `Mcp-Session-Id` that seals every backend's session
//!   ([`SessionCrypto`]): no replica keeps state, any replica serves any request;
//! * `tools/list`, `prompts/list`, `resources/list`, `resources/templates/list` are
//!   aggregated, each entry named `{backend}__{name}` (URIs `{backend}+{uri}`); a backend
//!   that fails is left out and named in the result's `_meta`, never fatal to the others;
//! * `tools/call`, `prompts/get`, `resources/read|subscribe|unsubscribe` and
//!   `completion/complete` are routed by that prefix; the answer is streamed back;
//! * requests a server sends the client (`sampling/createMessage`, `roots/list`,
//!   `elicitation/create`, …) get ids naming their backend, so the client's answer
//!   finds its way back; notifications are relayed; the GET stream merges every
//!   backend's, with heartbeat pings and `Last-Event-Id` resumption;
//! * each backend's `toolSelector` filters both the list and the calls;
//! * clients are authenticated by the route's `apiKeyAuth`, `oauth` (verified JWTs,
//!   RFC 9728 and the issuer's RFC 8414 metadata) and `extAuth` (HTTP, and gRPC with
//!   the feature `mcp-ext-authz-grpc`); `authorization`
//!   rules (scopes, claims, tools, CEL over upstream's `request.*`) decide calls and
//!   filter `tools/list`; `backendSelector` (CEL) picks a session's backends.
//!
//! docs/mcp.md has the full description and the differences from upstream.

mod apikey;
mod auth;
mod authz;
mod backend;
mod config;
mod crypto;
mod extauth;
#[cfg(feature = "mcp-ext-authz-grpc")]
mod extauth_grpc;
mod extauth_verdict;
mod fanout;
mod filter;
mod filter_config;
mod jsonrpc;
mod metrics;
mod names;
mod proxy;
mod rewrite;
mod session;
mod sse;
mod upstream;
mod wire;

pub use backend::McpBackend;
pub use config::McpRoute;
pub use crypto::{DEFAULT_ITERATIONS, InvalidSealedId, SessionCrypto, derive_key};
pub use metrics::McpMetrics;
pub use upstream::{
    McpUpstream, UpstreamBody, UpstreamError, document_request, error_chain, read_document,
    stream_response,
};

use crate::config::{Config, SecretSource};
use arc_swap::ArcSwap;
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::combinators::UnsyncBoxBody;
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// The body of the gateway's responses (JSON, or an event stream).
pub type McpBody = UnsyncBoxBody<Bytes, Infallible>;

/// Protocol revisions served, newest first.
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-06-18", "2025-03-26"];

/// Tunables.
#[derive(Debug, Clone)]
pub struct McpSettings {
    /// Largest request body accepted (413 above), upstream's 4 MiB by default.
    pub max_request_body: usize,
    /// Longest time to receive a whole request body (408 beyond; `None`: no bound). A
    /// client trickling its body otherwise holds its request open for as long as it
    /// likes: the listener's idle timeout does not apply while a request is in flight.
    pub body_timeout: Option<Duration>,
    /// Interval of the `ping` requests on an idle GET stream (`None`: none).
    pub heartbeat: Option<Duration>,
    /// How long `initialize` and list fan-outs wait for a backend.
    pub backend_timeout: Duration,
    /// `serverInfo.name` answered to `initialize`.
    pub server_name: String,
    /// Where requests are counted (keep one across reloads).
    pub metrics: Arc<McpMetrics>,
    /// Where request spans go (disabled by default).
    pub telemetry: crate::telemetry::Telemetry,
}

impl Default for McpSettings {
    fn default() -> Self {
        Self {
            max_request_body: 4 * 1024 * 1024,
            body_timeout: Some(Duration::from_secs(120)),
            heartbeat: Some(Duration::from_secs(60)),
            backend_timeout: Duration::from_secs(30),
            server_name: "aigw".into(),
            metrics: Arc::new(McpMetrics::default()),
            telemetry: crate::telemetry::Telemetry::disabled(),
        }
    }
}

/// The compiled MCPRoutes of one configuration, ready to serve.
pub struct McpGateway {
    routes: Vec<McpRoute>,
    crypto: SessionCrypto,
    settings: McpSettings,
    upstream: Arc<dyn McpUpstream>,
}

impl fmt::Debug for McpGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpGateway")
            .field(
                "routes",
                &self.routes.iter().map(McpRoute::key).collect::<Vec<_>>(),
            )
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl McpGateway {
    /// Compiles the MCPRoutes of `config`; a route that cannot be served as written
    /// fails the whole load with every issue listed.
    pub fn new(
        config: &Config,
        secrets: &SecretSource,
        crypto: SessionCrypto,
        settings: McpSettings,
        upstream: Arc<dyn McpUpstream>,
    ) -> crate::Result<Self> {
        let routes = config::compile(config, secrets)
            .map_err(|issues| crate::Error::InvalidConfig { issues })?;
        let mut issues = Vec::new();
        for (r, m) in routes.iter().zip(&config.mcp_routes) {
            for (i, b) in r.backends.iter().enumerate() {
                if let Err(message) = upstream.check(b) {
                    issues.push(crate::error::ConfigIssue {
                        file: m.source.file.clone(),
                        line: None,
                        document: m.label(),
                        field: format!("spec.backendRefs[{i}]"),
                        message,
                    });
                }
            }
        }
        #[cfg(feature = "mcp-ext-authz-grpc")]
        for (r, m) in routes.iter().zip(&config.mcp_routes) {
            if let Err(message) = r.connect_ext_auth(upstream.as_ref()) {
                issues.push(crate::error::ConfigIssue {
                    file: m.source.file.clone(),
                    line: None,
                    document: m.label(),
                    field: "spec.securityPolicy.extAuth.grpc".into(),
                    message,
                });
            }
        }
        if !issues.is_empty() {
            return Err(crate::Error::InvalidConfig { issues });
        }
        Ok(Self {
            routes,
            crypto,
            settings,
            upstream,
        })
    }

    /// Serves the `mcpConfig` of upstream's filter configuration (`file` names it in
    /// errors), in upstream's topology: Envoy in front names the route in
    /// `x-ai-eg-mcp-route` and has verified the client; every backend request goes to
    /// Envoy's MCP backend listener, which routes it to the server.
    pub fn from_filter_config(
        mcp: &crate::filterapi::McpConfig,
        file: &str,
        crypto: SessionCrypto,
        settings: McpSettings,
        upstream: Arc<dyn McpUpstream>,
    ) -> crate::Result<Self> {
        let routes = filter_config::compile(mcp, file)
            .map_err(|issues| crate::Error::InvalidConfig { issues })?;
        Ok(Self {
            routes,
            crypto,
            settings,
            upstream,
        })
    }

    /// The routes served.
    pub fn routes(&self) -> &[McpRoute] {
        &self.routes
    }

    /// Whether a request is for one of the routes or their OAuth protected-resource
    /// metadata (the adapter's dispatch test).
    pub fn serves<B>(&self, req: &http::Request<B>) -> bool {
        // Every LLM request asks: without routes, no `Host` lookup for it.
        if self.routes.is_empty() {
            return false;
        }
        let path = req.uri().path();
        self.route_for(req).is_some()
            || self.metadata_for(path).is_some()
            || self.as_metadata_for(path).is_some()
    }

    /// The OAuth route whose authorization-server metadata is served at `path`
    /// (`/.well-known/oauth-authorization-server{route path}` and
    /// `/.well-known/openid-configuration{route path}`, as upstream routes them).
    fn as_metadata_for(&self, path: &str) -> Option<&auth::OAuth> {
        let suffix = path
            .strip_prefix("/.well-known/oauth-authorization-server")
            .or_else(|| path.strip_prefix("/.well-known/openid-configuration"))?;
        self.routes
            .iter()
            .find(|r| r.oauth.is_some() && r.path.trim_end_matches('/') == suffix)
            .and_then(|r| r.oauth.as_deref())
    }

    /// The route (`namespace/name`) a request is for when that route has no client
    /// authentication of its own (no `securityPolicy.oauth`, `apiKeyAuth` or `extAuth`): a packaging puts its
    /// gateway-level client authentication in front of such requests, as Envoy applies
    /// a Gateway's SecurityPolicy to every route of the Gateway.
    pub fn unguarded_route<B>(&self, req: &http::Request<B>) -> Option<&str> {
        self.route_for(req)
            .filter(|r| r.oauth.is_none() && r.api_keys.is_none() && r.ext_auth.is_none())
            .map(McpRoute::key)
    }

    /// The RFC 9728 document served at `path`, if any route's is.
    fn metadata_for(&self, path: &str) -> Option<&serde_json::Value> {
        let suffix = path.strip_prefix("/.well-known/oauth-protected-resource")?;
        self.routes
            .iter()
            .filter_map(|r| r.oauth.as_deref())
            .find_map(|o| {
                let own = o
                    .metadata_url
                    .split_once("/.well-known/oauth-protected-resource")?
                    .1;
                (suffix.is_empty() || suffix == own).then_some(&o.metadata)
            })
    }

    fn route_for<B>(&self, req: &http::Request<B>) -> Option<&McpRoute> {
        let host = req
            .uri()
            .host()
            .or_else(|| req.headers().get(http::header::HOST)?.to_str().ok());
        self.routes
            .iter()
            .find(|r| r.matches(req.uri().path(), host, req.headers()))
    }
}

/// The MCP gateway as a tower `Service`, with a swappable configuration.
#[derive(Clone)]
pub struct McpService {
    current: Arc<ArcSwap<McpGateway>>,
}

impl fmt::Debug for McpService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("McpService")
            .field(&self.current.load())
            .finish()
    }
}

impl McpService {
    /// Serves `gateway`.
    pub fn new(gateway: McpGateway) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(gateway)),
        }
    }

    /// Replaces the configuration; requests in flight finish on the old one. Sessions
    /// stay valid across a swap as long as the session key does.
    pub fn swap(&self, gateway: McpGateway) {
        self.current.store(Arc::new(gateway));
    }

    /// The configuration being served.
    pub fn gateway(&self) -> Arc<McpGateway> {
        self.current.load_full()
    }
}

impl<B> tower_service::Service<http::Request<B>> for McpService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<McpBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let gw = self.current.load_full();
        Box::pin(async move { Ok(proxy::handle(gw, req).await) })
    }
}
