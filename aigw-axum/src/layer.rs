//! A tower [`Layer`] that puts the gateway in front of an existing service.

use crate::gateway::Gateway;
use aigw_core::api::Endpoint;
use axum::body::Body;
use futures::future::{BoxFuture, FutureExt};
use http::{Request, Response};
use std::convert::Infallible;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Wraps a service so that gateway endpoints (`/v1/chat/completions`, `/v1/messages`, …)
/// are answered by the gateway and everything else reaches the wrapped service.
#[derive(Debug, Clone)]
pub struct GatewayLayer {
    gateway: Gateway,
}

impl GatewayLayer {
    /// A layer over `gateway`.
    pub const fn new(gateway: Gateway) -> Self {
        Self { gateway }
    }
}

impl Gateway {
    /// A layer that answers gateway endpoints and passes every other request to the
    /// wrapped service.
    pub fn layer(&self) -> GatewayLayer {
        GatewayLayer::new(self.clone())
    }
}

impl<S> Layer<S> for GatewayLayer {
    type Service = GatewayService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GatewayService {
            gateway: self.gateway.clone(),
            inner,
        }
    }
}

/// The service produced by [`GatewayLayer`].
#[derive(Debug, Clone)]
pub struct GatewayService<S> {
    gateway: Gateway,
    inner: S,
}

impl<S> Service<Request<Body>> for GatewayService<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if Endpoint::from_path(request.uri().path()).is_some() {
            let gateway = self.gateway.clone();
            async move { Ok(gateway.handle(request).await) }.boxed()
        } else {
            self.inner.call(request).boxed()
        }
    }
}
