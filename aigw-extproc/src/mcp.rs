//! The MCP listener (`--mcp-addr`): Envoy routes the MCPRoutes' paths here, as upstream
//! routes `/mcp` to its MCP proxy, and [`aigw_core::mcp::McpService`] serves them —
//! the same gateway `aigw run` and axum embedders mount. Backends are dialled directly
//! (plain HTTP, or TLS verified against the system roots).
//!
//! With upstream's flags (`-mcpAddr`), the routes come from the filter configuration's
//! `mcpConfig` instead, in upstream's topology ([`spawn_filter_config`]).

use crate::error::ExtProcError;
use crate::server::WithPeer;
use aigw_core::config::{Config, SecretSource};
use aigw_core::mcp::{
    McpBackend, McpGateway, McpService, McpSettings, McpUpstream, SessionCrypto, UpstreamBody,
    UpstreamError, document_request, error_chain, read_document, stream_response,
};
use aigw_core::routing::TlsRoots;
use aigw_core::server::{Drained, Listener, ServerLimits};
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The MCP options of the `aigw-extproc` command line.
#[derive(Debug, Clone, clap::Args)]
pub struct McpArgs {
    /// Seed of the key that seals MCP session ids (every replica needs the same);
    /// without one a random key is used and sessions end with the process.
    #[arg(long, env = "AIGW_MCP_SESSION_SEED", hide_env_values = true)]
    pub mcp_session_seed: Option<aigw_core::Secret>,
    /// Previous seed, still accepted for session ids sealed before a rotation.
    #[arg(long, env = "AIGW_MCP_FALLBACK_SESSION_SEED", hide_env_values = true)]
    pub mcp_fallback_session_seed: Option<aigw_core::Secret>,
    /// PBKDF2 iterations deriving the MCP session key from its seed (once, at start).
    #[arg(long, default_value_t = aigw_core::mcp::DEFAULT_ITERATIONS)]
    pub mcp_session_iterations: u32,
    /// Largest MCP request body accepted, in bytes (413 beyond).
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub mcp_max_body_bytes: usize,
    /// Seconds between heartbeat pings on an idle MCP notification stream (0: none).
    #[arg(long, default_value_t = 60)]
    pub mcp_heartbeat_secs: u64,
}

impl McpArgs {
    fn crypto(&self) -> SessionCrypto {
        match &self.mcp_session_seed {
            Some(seed) => SessionCrypto::new(
                seed,
                self.mcp_fallback_session_seed.as_ref(),
                self.mcp_session_iterations,
            ),
            None => {
                tracing::warn!(
                    "no --mcp-session-seed: MCP session ids are sealed with a random key and end with this process"
                );
                SessionCrypto::random()
            }
        }
    }

    fn settings(&self) -> McpSettings {
        McpSettings {
            max_request_body: self.mcp_max_body_bytes,
            heartbeat: (self.mcp_heartbeat_secs > 0)
                .then(|| Duration::from_secs(self.mcp_heartbeat_secs)),
            ..McpSettings::default()
        }
    }
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// [`McpUpstream`] over a pooled hyper client, and one that speaks HTTP/2 with prior
/// knowledge for Backends whose `appProtocols` name `gateway.envoyproxy.io/h2c`.
#[derive(Debug, Clone)]
pub struct DirectUpstream {
    client: HttpsClient,
    h2c: HttpsClient,
}

impl DirectUpstream {
    /// A client trusting the system roots.
    pub fn new() -> Result<Self, ExtProcError> {
        let connector = connector()?;
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector.clone()),
            h2c: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build(connector),
        })
    }
}

/// Plain HTTP, or TLS verified against the system roots; HTTP/2 by ALPN.
fn connector() -> Result<hyper_rustls::HttpsConnector<HttpConnector>, ExtProcError> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|source| ExtProcError::Io {
            what: "loading the system CA certificates for",
            addr: "MCP backends".into(),
            source,
        })?
        .https_or_http()
        .enable_all_versions()
        .wrap_connector({
            let mut h = HttpConnector::new();
            h.enforce_http(false);
            h.set_nodelay(true);
            h.set_connect_timeout(Some(Duration::from_secs(10)));
            h
        });
    Ok(https)
}

impl McpUpstream for DirectUpstream {
    fn send(
        &self,
        backend: &McpBackend,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'static, Result<http::Response<UpstreamBody>, UpstreamError>> {
        let client = if backend.http2_prior_knowledge() {
            self.h2c.clone()
        } else {
            self.client.clone()
        };
        Box::pin(async move {
            client
                .request(request.map(Full::new))
                .await
                .map(stream_response)
                .map_err(|e| UpstreamError(error_chain(&e)))
        })
    }

    fn fetch(&self, url: &str) -> BoxFuture<'static, Result<Bytes, UpstreamError>> {
        let client = self.client.clone();
        let url = url.to_string();
        Box::pin(async move {
            let req = document_request(&url)?;
            read_document(&url, client.request(req)).await
        })
    }

    /// A gRPC authorization service: plain HTTP/2, or TLS as [`Self::check`] allows.
    fn grpc_channel(&self, service: &McpBackend) -> Result<tonic::transport::Channel, String> {
        self.check(service)?;
        let endpoint = tonic::transport::Endpoint::from_shared(service.url())
            .map_err(|e| format!("{}: {e}", service.url()))?
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true);
        Ok(match service.tls() {
            None => endpoint.connect_lazy(),
            Some(_) => {
                endpoint.connect_with_connector_lazy(connector().map_err(|e| e.to_string())?)
            }
        })
    }

    fn check(&self, backend: &McpBackend) -> Result<(), String> {
        match backend.tls() {
            None => Ok(()),
            Some(t)
                if t.roots == TlsRoots::System
                    && backend.url().contains(&format!("//{}", t.sni)) =>
            {
                Ok(())
            }
            Some(t) => Err(format!(
                "{}: the ExtProc's MCP listener verifies backends against the system roots and their own host name only (no CA bundle, SNI override or insecureSkipVerify)",
                t.origin
            )),
        }
    }
}

fn load(
    paths: &[PathBuf],
    crypto: &SessionCrypto,
    settings: &McpSettings,
    upstream: &Arc<dyn McpUpstream>,
) -> aigw_core::Result<McpGateway> {
    let config = Config::load_paths(paths)?;
    McpGateway::new(
        &config,
        &SecretSource::from_config(&config),
        crypto.clone(),
        settings.clone(),
        upstream.clone(),
    )
}

/// Binds `addr` and serves the MCPRoutes of `paths` there (hot-reloaded with them)
/// until `shutdown`, within the default listener limits.
pub async fn spawn(
    addr: SocketAddr,
    paths: &[PathBuf],
    args: &McpArgs,
    metrics: &crate::metrics::Metrics,
    telemetry: aigw_core::telemetry::Telemetry,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ExtProcError> {
    let listener = McpListener {
        addr,
        limits: ServerLimits::default(),
    };
    spawn_with(listener, paths, args, metrics, telemetry, shutdown)
        .await
        .map(drop)
}

/// Where and within which limits the MCP listener serves.
#[derive(Debug, Clone)]
pub struct McpListener {
    /// The address to bind.
    pub addr: SocketAddr,
    /// Timeouts, connection cap and drain deadline.
    pub limits: ServerLimits,
}

/// Binds the listener and serves the MCPRoutes of `paths` there (hot-reloaded with
/// them) until `shutdown`, then drains; the task ends once drained.
pub async fn spawn_with(
    listener: McpListener,
    paths: &[PathBuf],
    args: &McpArgs,
    metrics: &crate::metrics::Metrics,
    telemetry: aigw_core::telemetry::Telemetry,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<JoinHandle<Drained>, ExtProcError> {
    let (crypto, mut settings) = (args.crypto(), args.settings());
    settings.telemetry = telemetry;
    metrics.set_mcp_metrics(settings.metrics.clone());
    let upstream: Arc<dyn McpUpstream> = Arc::new(DirectUpstream::new()?);
    let gateway =
        load(paths, &crypto, &settings, &upstream).map_err(|source| ExtProcError::Config {
            path: paths.first().cloned().unwrap_or_default(),
            source,
        })?;
    for r in gateway.routes() {
        tracing::info!(route = r.key(), path = r.path(), "serving MCPRoute");
    }
    let service = McpService::new(gateway);
    let addr = listener.addr;
    let tcp = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ExtProcError::Io {
            what: "binding",
            addr: addr.to_string(),
            source,
        })?;
    let swap = service.clone();
    spawn_reloader(aigw_core::planner::Reloader::new(
        paths.to_vec(),
        move |p: &[PathBuf]| load(p, &crypto, &settings, &upstream),
        move |g| swap.swap(g),
    ));
    tracing::info!(mcp = %addr, "MCP listener ready");
    Ok(tokio::spawn(serve(
        tcp,
        service,
        listener.limits,
        shutdown,
        |a: &SocketAddr| Some(*a),
    )))
}

/// Polls the configuration files for changes and swaps the gateway on each.
fn spawn_reloader(mut reloader: aigw_core::planner::Reloader<McpGateway>) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(crate::reload::DEFAULT_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            reloader.poll();
        }
    });
}

/// Serves `service` on `listener` within `limits` until `shutdown`, then drains.
/// `peer` gives a connection's TCP address (a Unix-socket peer has none).
async fn serve<L: Listener>(
    listener: L,
    service: McpService,
    limits: ServerLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    peer: fn(&L::Addr) -> Option<SocketAddr>,
) -> Drained {
    let app = axum::Router::new()
        .fallback_service(service)
        .layer(axum::middleware::map_request(peer_address));
    let make = move |addr: &L::Addr| WithPeer::new(app.clone(), peer(addr));
    let drained = aigw_core::server::serve(listener, make, limits, shutdown).await;
    if drained.cut > 0 {
        tracing::warn!(
            connections = drained.cut,
            "MCP connections cut at the drain deadline"
        );
    }
    drained
}

/// Hands the client's TCP address to the MCP gateway (which names it in audit records
/// of refused clients); a Unix-socket peer has none.
async fn peer_address(mut req: axum::extract::Request) -> axum::extract::Request {
    if let Some(axum::extract::ConnectInfo(addr)) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .cloned()
    {
        req.extensions_mut().insert(addr);
    }
    req
}

/// Upstream's MCP flags: `-mcpAddr` and the session-key flags, with upstream's defaults.
#[derive(Debug, Clone)]
pub struct UpstreamMcp {
    /// `-mcpAddr` (`:9856`, `host:port` or `unix:///path`).
    pub addr: crate::server::ListenAddr,
    /// `-mcpSessionEncryptionSeed` (upstream's default `default-insecure-seed`).
    pub seed: aigw_core::Secret,
    /// `-mcpSessionEncryptionIterations` (100000).
    pub iterations: u32,
    /// `-mcpFallbackSessionEncryptionSeed` and its iterations.
    pub fallback: Option<(aigw_core::Secret, u32)>,
}

/// Upstream's default seed, public: sessions sealed with it can be opened by anyone.
const UPSTREAM_DEFAULT_SEED: &str = "default-insecure-seed";

impl UpstreamMcp {
    /// Reads the MCP flags (name, value) upstream's command line set; `None` without a
    /// non-empty `-mcpAddr` (upstream then serves no MCP).
    pub fn from_flags(flags: &[(String, String)]) -> Result<Option<Self>, ExtProcError> {
        let get = |n: &str| {
            flags
                .iter()
                .rev()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        let Some(addr) = get("mcpAddr").filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        let num = |n: &str| -> Result<u32, ExtProcError> {
            get(n).map_or(Ok(aigw_core::mcp::DEFAULT_ITERATIONS), |v| {
                v.parse().map_err(|_| ExtProcError::InvalidAddress {
                    addr: format!("-{n} {v:?}: not a positive number"),
                })
            })
        };
        let seed = get("mcpSessionEncryptionSeed").unwrap_or(UPSTREAM_DEFAULT_SEED);
        if seed == UPSTREAM_DEFAULT_SEED {
            tracing::warn!(
                "-mcpSessionEncryptionSeed is upstream's public default: MCP session ids can be opened by anyone who knows it; set a secret seed"
            );
        }
        if get("mcpWriteTimeout").is_some() {
            tracing::warn!(
                "-mcpWriteTimeout is not applied: MCP responses stream without a write deadline (a client that stops reading is dropped when its connection closes)"
            );
        }
        Ok(Some(Self {
            addr: crate::server::ListenAddr::parse(addr)?,
            seed: aigw_core::Secret::new(seed),
            iterations: num("mcpSessionEncryptionIterations")?,
            fallback: match get("mcpFallbackSessionEncryptionSeed").filter(|s| !s.is_empty()) {
                Some(f) => Some((
                    aigw_core::Secret::new(f),
                    num("mcpFallbackSessionEncryptionIterations")?,
                )),
                None => None,
            },
        }))
    }

    fn crypto(&self) -> SessionCrypto {
        let c = SessionCrypto::new(&self.seed, None, self.iterations);
        match &self.fallback {
            Some((seed, n)) => c.with_fallback(seed, *n),
            None => c,
        }
    }
}

fn load_filter_config(
    source: &aigw_core::filterapi::Source,
    versions: &aigw_core::filterapi::VersionPolicy,
    crypto: &SessionCrypto,
    settings: &McpSettings,
    upstream: &Arc<dyn McpUpstream>,
) -> aigw_core::Result<McpGateway> {
    let loaded = aigw_core::filterapi::load(source, versions)?;
    McpGateway::from_filter_config(
        &loaded.config.mcp_config.unwrap_or_default(),
        &source.display(),
        crypto.clone(),
        settings.clone(),
        upstream.clone(),
    )
}

/// Serves the `mcpConfig` of upstream's filter configuration on `-mcpAddr` (reloaded
/// with the configuration) until `shutdown`, as upstream's MCP proxy: Envoy routes the
/// MCPRoutes here with `x-ai-eg-mcp-route`, and every backend request goes back to
/// Envoy's MCP backend listener (`backendListenerAddr`).
pub async fn spawn_filter_config(
    mcp: UpstreamMcp,
    source: aigw_core::filterapi::Source,
    versions: aigw_core::filterapi::VersionPolicy,
    metrics: &crate::metrics::Metrics,
    telemetry: aigw_core::telemetry::Telemetry,
    limits: ServerLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<JoinHandle<Drained>, ExtProcError> {
    let crypto = mcp.crypto();
    let settings = McpSettings {
        telemetry,
        ..McpSettings::default()
    };
    metrics.set_mcp_metrics(settings.metrics.clone());
    let upstream: Arc<dyn McpUpstream> = Arc::new(DirectUpstream::new()?);
    let gateway =
        load_filter_config(&source, &versions, &crypto, &settings, &upstream).map_err(|e| {
            ExtProcError::Config {
                path: source.files().first().cloned().unwrap_or_default(),
                source: e,
            }
        })?;
    for r in gateway.routes() {
        tracing::info!(
            route = r.key(),
            "serving MCPRoute of the filter configuration"
        );
    }
    let service = McpService::new(gateway);
    let swap = service.clone();
    let watch = source.files();
    spawn_reloader(aigw_core::planner::Reloader::new(
        watch,
        move |_: &[PathBuf]| load_filter_config(&source, &versions, &crypto, &settings, &upstream),
        move |g| swap.swap(g),
    ));
    tracing::info!(mcp = %mcp.addr, "MCP proxy ready");
    match &mcp.addr {
        crate::server::ListenAddr::Tcp(a) => {
            let listener =
                tokio::net::TcpListener::bind(a)
                    .await
                    .map_err(|source| ExtProcError::Io {
                        what: "binding",
                        addr: a.to_string(),
                        source,
                    })?;
            Ok(tokio::spawn(serve(
                listener,
                service,
                limits,
                shutdown,
                |a: &SocketAddr| Some(*a),
            )))
        }
        crate::server::ListenAddr::Unix(p) => {
            let _ = std::fs::remove_file(p);
            let listener =
                tokio::net::UnixListener::bind(p).map_err(|source| ExtProcError::Io {
                    what: "binding",
                    addr: p.display().to_string(),
                    source,
                })?;
            // As upstream: the socket is shared with Envoy's container.
            {
                use std::os::unix::fs::PermissionsExt as _;
                let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o775));
            }
            Ok(tokio::spawn(serve(
                listener,
                service,
                limits,
                shutdown,
                |_| None,
            )))
        }
    }
}
