//! The recommended way to serve the gateway (or any axum router) on a TCP listener:
//! every connection phase is bounded in time, connections are capped, and shutdown
//! drains in-flight requests up to a deadline.
//!
//! The serve loop is the core's ([`aigw_core::server`], where its bounds are listed);
//! this module mounts an axum service on it. Requests carry
//! `ConnectInfo<SocketAddr>` like `into_make_service_with_connect_info`.
//!
//! Request-level bounds (body timeouts, the in-flight request cap, body memory) are the
//! [`crate::Gateway`]'s own ([`crate::Settings`]), so they hold under any server.

pub use aigw_core::server::{Drained, ServerLimits};

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, Response};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Serves `service` on `listener` within `limits` until `shutdown` resolves, then
/// drains (see [`aigw_core::server`]). Requests carry `ConnectInfo<SocketAddr>` like
/// `into_make_service_with_connect_info`; accepted sockets have `TCP_NODELAY` (see
/// [`crate::net`]). Streams cut from the moment `shutdown` resolves settle at once.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> Drained
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let shutdown = async move {
        shutdown.await;
        crate::stream::shutting_down();
    };
    let make = move |peer: &SocketAddr| {
        let peer = *peer;
        service.clone().map_request(move |req: Request<Incoming>| {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        })
    };
    aigw_core::server::serve(listener, make, limits, shutdown).await
}
