//! The MCP gateway in-process (feature `mcp`): [`aigw_core::mcp::McpService`] over this
//! crate's pooled upstream client.
//!
//! ```no_run
//! # async fn demo(config: aigw_core::config::Config) -> Result<(), Box<dyn std::error::Error>> {
//! use aigw_core::config::SecretSource;
//! use aigw_core::mcp::{McpGateway, McpService, McpSettings, SessionCrypto};
//! use std::sync::Arc;
//!
//! let upstream = Arc::new(aigw_axum::mcp::HyperUpstream::new(Default::default())?);
//! let crypto = SessionCrypto::new(&aigw_core::Secret::new("a long random seed"), None, 100_000);
//! let gateway = McpGateway::new(&config, &SecretSource::from_config(&config), crypto,
//!     McpSettings::default(), upstream)?;
//! let app: axum::Router = axum::Router::new().route_service("/mcp", McpService::new(gateway));
//! # Ok(()) }
//! ```

use crate::client::{ClientSettings, HttpClient, build_client, build_tls_client};
use crate::error::GatewayError;
use aigw_core::mcp::{
    McpBackend, McpService, McpUpstream, UpstreamBody, UpstreamError, document_request,
    error_chain, read_document, stream_response,
};
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::Full;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Mutex;
use std::task::{Context, Poll};

/// [`McpUpstream`] over hyper: one pooled client, plus one per backend TLS policy and
/// one speaking HTTP/2 with prior knowledge for `h2c` Backends, made when first needed.
#[derive(Debug)]
pub struct HyperUpstream {
    settings: ClientSettings,
    plain: HttpClient,
    others: Mutex<HashMap<String, HttpClient>>,
}

impl HyperUpstream {
    /// A client with these settings.
    pub fn new(settings: ClientSettings) -> Result<Self, GatewayError> {
        Ok(Self {
            plain: build_client(&settings)?,
            settings,
            others: Mutex::new(HashMap::new()),
        })
    }

    fn client(&self, backend: &McpBackend) -> Result<HttpClient, UpstreamError> {
        let h2c = backend.http2_prior_knowledge();
        if backend.tls().is_none() && !h2c {
            return Ok(self.plain.clone());
        }
        // As for the LLM routes: an h2c Backend gets an HTTP/2-only client, over TLS too.
        let key = match backend.tls() {
            Some(tls) => format!("{}|{}|{h2c}", tls.origin, tls.sni),
            None => "h2c".to_string(),
        };
        let mut map = self
            .others
            .lock()
            .map_err(|_| UpstreamError("client cache poisoned".into()))?;
        if let Some(c) = map.get(&key) {
            return Ok(c.clone());
        }
        let settings = ClientSettings {
            http2_only: h2c,
            ..self.settings.clone()
        };
        let c = match backend.tls() {
            Some(tls) => build_tls_client(&settings, tls),
            None => build_client(&settings),
        }
        .map_err(|e| UpstreamError(e.to_string()))?;
        map.insert(key, c.clone());
        Ok(c)
    }
}

impl McpUpstream for HyperUpstream {
    fn send(
        &self,
        backend: &McpBackend,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'static, Result<http::Response<UpstreamBody>, UpstreamError>> {
        let client = self.client(backend);
        Box::pin(async move {
            client?
                .request(request.map(Full::new))
                .await
                .map(stream_response)
                .map_err(|e| UpstreamError(error_chain(&e)))
        })
    }

    /// A gRPC authorization service, dialled like any backend: plain HTTP/2, or TLS
    /// with its Backend's or BackendTLSPolicy's settings.
    #[cfg(feature = "mcp-ext-authz-grpc")]
    fn grpc_channel(&self, service: &McpBackend) -> Result<tonic::transport::Channel, String> {
        let endpoint = tonic::transport::Endpoint::from_shared(service.url())
            .map_err(|e| format!("{}: {e}", service.url()))?
            .connect_timeout(self.settings.connect_timeout)
            .tcp_nodelay(true);
        Ok(match service.tls() {
            None => endpoint.connect_lazy(),
            Some(tls) => endpoint.connect_with_connector_lazy(
                crate::client::tls_connector(&self.settings, tls).map_err(|e| e.to_string())?,
            ),
        })
    }

    fn fetch(&self, url: &str) -> BoxFuture<'static, Result<Bytes, UpstreamError>> {
        let client = self.plain.clone();
        let url = url.to_string();
        Box::pin(async move {
            let req = document_request(&url)?;
            read_document(&url, client.request(req)).await
        })
    }
}

/// Sends requests an [`McpService`] serves to it and everything else to `inner` (the
/// `aigw` binary's one listener serves LLM and MCP routes alike).
#[derive(Debug, Clone)]
pub struct McpDispatch<S> {
    mcp: McpService,
    inner: S,
    client_auth: Option<crate::client_auth::ClientAuthLayer>,
}

impl<S> McpDispatch<S> {
    /// MCP requests to `mcp`, the rest to `inner`.
    pub fn new(mcp: McpService, inner: S) -> Self {
        Self {
            mcp,
            inner,
            client_auth: None,
        }
    }

    /// Puts the gateway-level client authentication (the layer in front of `inner`) in
    /// front of the MCPRoutes that have no `securityPolicy.oauth` of their own too, as
    /// Envoy applies a Gateway's SecurityPolicy to every route of the Gateway. Routes
    /// with their own OAuth keep it alone: the layer would strip the bearer token they
    /// verify.
    pub fn with_client_auth(mut self, layer: crate::client_auth::ClientAuthLayer) -> Self {
        self.client_auth = Some(layer);
        self
    }
}

impl<S> tower::Service<axum::extract::Request> for McpDispatch<S>
where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<axum::response::Response, Infallible>>;

    /// Ready when the inner service is: most requests go to it, called at once
    /// (an MCP request leaves it ready and unused).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: axum::extract::Request) -> Self::Future {
        let method = req.method().clone();
        if self.mcp.gateway().serves(&req) {
            // The gateway names the client's address in audit records of refusals.
            if let Some(axum::extract::ConnectInfo(addr)) = req
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .cloned()
            {
                req.extensions_mut().insert(addr);
            }
            let (req, counted) = match (&self.client_auth, self.mcp.gateway().unguarded_route(&req))
            {
                (Some(auth), Some(route)) => {
                    let route = route.to_owned();
                    match auth.admit(&route, req) {
                        // Each JSON-RPC message (a POST) counts against a virtual
                        // key's requests per minute; the event stream (GET) and the
                        // session's end (DELETE) are not calls.
                        Ok(req) if req.method() == http::Method::POST => {
                            (req, Some((auth.clone(), route)))
                        }
                        Ok(req) => (req, None),
                        Err(rejected) => {
                            return Box::pin(async move { Ok(top_level(&method, *rejected)) });
                        }
                    }
                }
                _ => (req, None),
            };
            let mut mcp = self.mcp.clone();
            return Box::pin(async move {
                let req = match counted {
                    Some((auth, route)) => match auth.count_virtual_key(&route, req).await {
                        Ok(req) => req,
                        Err(rejected) => return Ok(top_level(&method, *rejected)),
                    },
                    None => req,
                };
                let resp = tower::Service::call(&mut mcp, req).await?;
                Ok(top_level(&method, resp.map(axum::body::Body::new)))
            });
        }
        // `poll_ready` readied `inner`: called here, the request is handed over now and
        // not carried (and moved) inside this future.
        let response = self.inner.call(req);
        crate::proxy::boxed(move || async move { Ok(top_level(&method, response.await?)) })
    }
}

/// What an axum `Router` in front of the dispatcher did to each response (its fallback
/// service is not answered as a top-level route: no `content-length` or HEAD handling):
/// a successful answer to CONNECT carries no body. Done here so the `aigw` binary
/// serves the dispatcher without a `Router`, whose route lookup, service clone and
/// boxed future cost more per request than the rest of this layer.
fn top_level(
    method: &http::Method,
    mut resp: axum::response::Response,
) -> axum::response::Response {
    use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    use hyper::body::Body as _;
    if *method == http::Method::CONNECT
        && resp.status().is_success()
        && (resp.headers().contains_key(CONTENT_LENGTH)
            || resp.headers().contains_key(TRANSFER_ENCODING)
            || resp.body().size_hint().lower() != 0)
    {
        tracing::error!("response to CONNECT with nonempty body");
        *resp.body_mut() = axum::body::Body::empty();
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::top_level;
    use axum::body::Body;
    use http::{Method, Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    /// What a client receives: status, headers, body.
    async fn seen(r: axum::response::Response) -> (StatusCode, http::HeaderMap, bytes::Bytes) {
        let (parts, body) = r.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        (parts.status, parts.headers, bytes)
    }

    /// A response of each kind the gateway answers with.
    fn response(kind: u8) -> axum::response::Response {
        let mut r = match kind {
            0 => axum::response::Response::new(Body::from("hello")),
            1 => axum::response::Response::new(Body::empty()),
            2 => {
                let chunks =
                    futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from("a"))]);
                axum::response::Response::new(Body::from_stream(chunks))
            }
            _ => {
                let mut r = axum::response::Response::new(Body::from("hello"));
                r.headers_mut()
                    .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(5u64));
                r
            }
        };
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
        r
    }

    #[tokio::test]
    async fn finishes_responses_as_a_router_does() {
        for method in [Method::GET, Method::POST, Method::HEAD, Method::CONNECT] {
            for kind in 0..4 {
                let svc = tower::service_fn(move |_: Request<Body>| async move {
                    Ok::<_, std::convert::Infallible>(response(kind))
                });
                let router = axum::Router::new().fallback_service(svc);
                let req = Request::builder()
                    .method(method.clone())
                    .uri("/v1/chat/completions")
                    .body(Body::empty())
                    .unwrap();
                let via_router = router.oneshot(req).await.unwrap();
                let direct = top_level(&method, response(kind));
                assert_eq!(
                    seen(direct).await,
                    seen(via_router).await,
                    "{method} {kind}"
                );
            }
        }
    }
}
