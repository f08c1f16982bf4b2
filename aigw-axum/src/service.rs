//! The gateway as a `tower::Service`: every request goes through the proxy.

use crate::gateway::Gateway;
use axum::body::Body;
use http::{Request, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

impl Gateway {
    /// Handles one request.
    pub async fn handle(&self, request: Request<Body>) -> Response<Body> {
        crate::proxy::handle(self.inner.clone(), request).await
    }
}

impl tower::Service<Request<Body>> for Gateway {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        // Boxed in place: the request's whole future is kilobytes.
        crate::proxy::boxed(move || async move { Ok(crate::proxy::handle(inner, request).await) })
    }
}
