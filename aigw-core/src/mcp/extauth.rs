//! `securityPolicy.extAuth` of an MCPRoute with an HTTP authorization service: Envoy
//! Gateway's `ExtAuth`, which upstream turns into a SecurityPolicy on the route (Envoy's
//! `ext_authz` HTTP client). Every request is first sent to the service — same method,
//! the service's `path` prefix before the request's path and query, the `Authorization`
//! header and those `headersToExtAuth` names, no body. A 2xx answer lets it through and
//! copies the `headersToBackend` the service set onto every backend request; any other
//! answer is returned to the client as the service gave it (status, body, content
//! type). A service that cannot be reached or times out refuses with 403, or lets the
//! request through with `failOpen`.

use super::backend::McpBackend;
use super::upstream::UpstreamBody;
use bytes::Bytes;
use futures::StreamExt as _;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use std::sync::Arc;
use std::time::Duration;

/// Largest denial body relayed to the client.
const MAX_DENIAL_BODY: usize = 64 * 1024;

/// A route's HTTP authorization service.
#[derive(Debug)]
pub(crate) struct ExtAuth {
    pub(crate) service: Arc<McpBackend>,
    pub(crate) headers_to_ext_auth: Vec<HeaderName>,
    pub(crate) headers_to_backend: Vec<HeaderName>,
    pub(crate) timeout: Duration,
    pub(crate) fail_open: bool,
}

/// The service's decision.
pub(crate) enum Verdict {
    /// Go ahead, with these headers for the backends.
    Allow(Vec<(HeaderName, HeaderValue)>),
    /// Refused: the response for the client.
    Deny(StatusCode, Option<HeaderValue>, Bytes),
}

impl ExtAuth {
    /// The check request for a client request.
    fn request(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Option<http::Request<Bytes>> {
        let mut target = self.service.url().trim_end_matches('/').to_string();
        target.push_str(uri.path_and_query().map_or("/", |p| p.as_str()));
        let mut b = http::Request::builder()
            .method(method.clone())
            .uri(target)
            .header(header::CONTENT_LENGTH, "0");
        let names = std::iter::once(&header::AUTHORIZATION).chain(&self.headers_to_ext_auth);
        for name in names {
            for v in headers.get_all(name) {
                b = b.header(name, v);
            }
        }
        b.body(Bytes::new()).ok()
    }

    /// Asks the service about a request.
    pub(crate) async fn check(
        &self,
        upstream: &dyn super::McpUpstream,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Verdict {
        let Some(req) = self.request(method, uri, headers) else {
            return self.unreachable("cannot build the authorization request");
        };
        let sent = tokio::time::timeout(self.timeout, upstream.send(&self.service, req)).await;
        let resp = match sent {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return self.unreachable(&e.0),
            Err(_) => return self.unreachable("timed out"),
        };
        if resp.status().is_success() {
            let copied = self
                .headers_to_backend
                .iter()
                .flat_map(|n| {
                    resp.headers()
                        .get_all(n)
                        .iter()
                        .map(|v| (n.clone(), v.clone()))
                })
                .collect();
            return Verdict::Allow(copied);
        }
        let status = resp.status();
        let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
        let body = read_limited(resp.into_body()).await;
        Verdict::Deny(status, content_type, body)
    }

    fn unreachable(&self, why: &str) -> Verdict {
        tracing::warn!(target: "aigw::mcp", service = %self.service.url(), error = %why, fail_open = self.fail_open, "external authorization service failed");
        if self.fail_open {
            Verdict::Allow(Vec::new())
        } else {
            Verdict::Deny(StatusCode::FORBIDDEN, None, Bytes::new())
        }
    }
}

async fn read_limited(mut body: UpstreamBody) -> Bytes {
    let mut out = Vec::new();
    while let Some(Ok(chunk)) = body.next().await {
        let room = MAX_DENIAL_BODY.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= MAX_DENIAL_BODY {
            break;
        }
    }
    Bytes::from(out)
}
