//! Listeners: the ext_proc gRPC service (with the gRPC health service) over TCP or a
//! Unix domain socket, and the admin HTTP endpoint.

use crate::error::ExtProcError;
use crate::grpc_limits::{self, GrpcLimits};
use crate::metrics::Metrics;
use crate::processor::Processor;
use aigw_core::server::Incoming;
use aigw_core::server::{Drained, ServerLimits};
use futures::StreamExt;
use http::Request;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};

/// Default cap on one gRPC message: buffered request and response bodies travel whole,
/// and tonic's 4 MiB default rejects large prompts. Upstream's controller passes 512 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 512 * 1024 * 1024;

pub use crate::grpc_limits::{GRPC_KEEPALIVE_INTERVAL, GRPC_KEEPALIVE_TIMEOUT};

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP socket.
    Tcp(SocketAddr),
    /// A Unix domain socket path.
    Unix(PathBuf),
}

impl ListenAddr {
    /// Parses `unix:///path`, `host:port` or `:port` (all interfaces).
    pub fn parse(s: &str) -> Result<Self, ExtProcError> {
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(ExtProcError::InvalidAddress { addr: s.to_owned() });
            }
            return Ok(Self::Unix(PathBuf::from(p)));
        }
        let full = if s.starts_with(':') {
            format!("0.0.0.0{s}")
        } else {
            s.to_owned()
        };
        let full = full.replace("localhost:", "127.0.0.1:");
        full.parse()
            .map(Self::Tcp)
            .map_err(|_| ExtProcError::InvalidAddress { addr: s.to_owned() })
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "{a}"),
            Self::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

/// A bound ext_proc listener.
#[derive(Debug)]
pub enum Bound {
    /// TCP.
    Tcp(TcpListener),
    /// Unix domain socket.
    Unix(UnixListener, PathBuf),
}

impl Bound {
    /// Binds the address; a stale socket file is replaced.
    pub async fn bind(addr: &ListenAddr) -> Result<Self, ExtProcError> {
        let io = |source| ExtProcError::Io {
            what: "binding",
            addr: addr.to_string(),
            source,
        };
        match addr {
            ListenAddr::Tcp(a) => TcpListener::bind(a).await.map(Self::Tcp).map_err(io),
            ListenAddr::Unix(p) => {
                if p.exists() {
                    std::fs::remove_file(p).map_err(io)?;
                }
                let l = UnixListener::bind(p).map_err(io)?;
                // Envoy often runs as another user in the same pod.
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o775)).map_err(io)?;
                Ok(Self::Unix(l, p.clone()))
            }
        }
    }

    /// The bound address (the real port when `:0` was asked for).
    pub fn local_addr(&self) -> Option<ListenAddr> {
        match self {
            Self::Tcp(l) => l.local_addr().ok().map(ListenAddr::Tcp),
            Self::Unix(_, p) => Some(ListenAddr::Unix(p.clone())),
        }
    }
}

/// Serves the processor and the gRPC health service on a bound listener until
/// `shutdown` resolves, within the default [`GrpcLimits`].
pub async fn serve_grpc(
    listener: Bound,
    processor: Processor,
    max_message_size: usize,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ExtProcError> {
    let limits = GrpcLimits::default();
    serve_grpc_with(
        listener,
        processor,
        max_message_size,
        &limits,
        ready,
        shutdown,
    )
    .await
}

/// Serves the processor and the gRPC health service on a bound listener within
/// `limits` until `shutdown` resolves; open streams then have the drain deadline to
/// finish.
pub async fn serve_grpc_with(
    listener: Bound,
    processor: Processor,
    max_message_size: usize,
    limits: &GrpcLimits,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ExtProcError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    let service = processor.into_service(max_message_size);
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    reporter
        .set_service_status(
            "envoy.service.ext_proc.v3.ExternalProcessor",
            tonic_health::ServingStatus::Serving,
        )
        .await;
    let builder = tonic::transport::Server::builder()
        // A peer that vanishes without a FIN (a node lost, a partition) would otherwise
        // hold its streams' state until the kernel's TCP keep-alive notices, hours
        // later.
        .http2_keepalive_interval(limits.keepalive_interval)
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        // Generous: Envoy multiplexes every request's stream over one connection per
        // worker, and opens another when the peer's limit is reached.
        .max_concurrent_streams(limits.max_concurrent_streams)
        // Fixed, large windows: Envoy multiplexes every request's streams over one
        // connection, and adaptive windows cost a BDP ping per data frame.
        .initial_stream_window_size(Some(1 << 20))
        .initial_connection_window_size(Some(16 << 20))
        .add_service(health)
        .add_service(service);
    let (stopping_tx, stopping) = tokio::sync::oneshot::channel::<()>();
    let draining = ready.clone();
    let shutdown = async move {
        shutdown.await;
        // Health answers 503 while the streams drain: no new work is routed here.
        draining.store(false, Ordering::Release);
        let _ = stopping_tx.send(());
    };
    ready.store(true, Ordering::Release);
    let serve = async {
        match listener {
            Bound::Tcp(l) => {
                let incoming = TcpListenerStream::new(l).inspect(|accepted| {
                    if let Ok(tcp) = accepted {
                        aigw_core::server::set_nodelay(tcp);
                    }
                });
                builder
                    .serve_with_incoming_shutdown(grpc_limits::capped(incoming, limits), shutdown)
                    .await
            }
            Bound::Unix(l, path) => {
                let incoming = grpc_limits::capped(UnixListenerStream::new(l), limits);
                let r = builder
                    .serve_with_incoming_shutdown(incoming, shutdown)
                    .await;
                let _ = std::fs::remove_file(path);
                r
            }
        }
    };
    let deadline = limits.drain_timeout;
    let cut = async move {
        if stopping.await.is_ok() {
            tokio::time::sleep(deadline).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        r = serve => r,
        () = cut => {
            tracing::warn!(
                ?deadline,
                "drain deadline reached: closing the remaining ext_proc streams"
            );
            Ok(())
        }
    };
    ready.store(false, Ordering::Release);
    result.map_err(|e| ExtProcError::Transport(e.to_string()))
}

/// The admin HTTP router: `/health` (200 once the gRPC listener serves), `/metrics`
/// (Prometheus) and `/stats` (processor counters as JSON).
pub fn admin_router(metrics: Arc<Metrics>, ready: Arc<AtomicBool>) -> axum::Router {
    use axum::http::{StatusCode, header};
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/health",
            get(move || {
                let ok = ready.load(Ordering::Acquire);
                async move {
                    if ok {
                        (StatusCode::OK, "OK")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not serving")
                    }
                }
            }),
        )
        .route(
            "/stats",
            get({
                let metrics = metrics.clone();
                move || {
                    let body = serde_json::json!({
                        "grpc_messages": metrics.messages(),
                        "requests": metrics.requests(),
                    });
                    async move { axum::Json(body) }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let body = metrics.encode();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                }
            }),
        )
}

/// `/memory`: the allocator's figures (`probe`, e.g. [`aigw_core::memory::jemalloc`])
/// as JSON, to merge into the admin router; 503 if the probe cannot read them.
pub fn memory_router(probe: aigw_core::memory::MemoryProbe) -> axum::Router {
    use axum::response::IntoResponse;
    axum::Router::new().route(
        "/memory",
        axum::routing::get(move || async move {
            match probe() {
                Some(stats) => axum::Json(stats).into_response(),
                None => (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "the allocator's statistics could not be read\n",
                )
                    .into_response(),
            }
        }),
    )
}

/// The keys and spend admin API ([`aigw_core::admin`]) under `/admin/`, to merge into
/// the admin router.
pub fn admin_api(api: aigw_core::admin::AdminApi) -> axum::Router {
    let api = Arc::new(api);
    axum::Router::new().route(
        "/admin/{*rest}",
        axum::routing::any(move |request: axum::extract::Request| {
            let api = api.clone();
            async move { serve_admin_call(&api, request).await }
        }),
    )
}

/// Admin call bodies larger than this are refused.
const MAX_ADMIN_BODY: usize = 64 * 1024;

async fn serve_admin_call(
    api: &aigw_core::admin::AdminApi,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_ADMIN_BODY).await else {
        return aigw_core::admin::error(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        )
        .map(axum::body::Body::from);
    };
    match api.handle_parts(&parts, peer, &body).await {
        Some(r) => r.map(axum::body::Body::from),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

/// Serves the admin router on a TCP listener within `limits` until `shutdown`
/// resolves (see [`aigw_core::server::serve`]). Admin API calls see the client's
/// address as `ConnectInfo`.
pub async fn serve_admin(
    listener: TcpListener,
    router: axum::Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Drained {
    let make = move |peer: &SocketAddr| WithPeer::new(router.clone(), Some(*peer));
    aigw_core::server::serve(listener, make, limits, shutdown).await
}

/// An axum router served by [`aigw_core::server::serve`]: requests get axum's body
/// type and, on TCP, the client's address as `ConnectInfo<SocketAddr>` (what
/// `into_make_service_with_connect_info` gives under `axum::serve`).
#[derive(Clone)]
pub(crate) struct WithPeer {
    router: axum::Router,
    peer: Option<SocketAddr>,
}

impl WithPeer {
    pub(crate) fn new(router: axum::Router, peer: Option<SocketAddr>) -> Self {
        Self { router, peer }
    }
}

impl tower::Service<Request<Incoming>> for WithPeer {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = axum::routing::future::RouteFuture<std::convert::Infallible>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        tower::Service::<Request<axum::body::Body>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let mut req = req.map(axum::body::Body::new);
        if let Some(peer) = self.peer {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
        }
        tower::Service::call(&mut self.router, req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        assert_eq!(
            ListenAddr::parse("unix:///tmp/x.sock").unwrap(),
            ListenAddr::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            ListenAddr::parse(":1063").unwrap(),
            ListenAddr::Tcp("0.0.0.0:1063".parse().unwrap())
        );
        assert_eq!(
            ListenAddr::parse("localhost:1").unwrap(),
            ListenAddr::Tcp("127.0.0.1:1".parse().unwrap())
        );
        assert!(ListenAddr::parse("unix://").is_err());
        assert!(ListenAddr::parse("nope").is_err());
    }
}
