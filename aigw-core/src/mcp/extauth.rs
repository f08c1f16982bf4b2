//! `securityPolicy.extAuth` of an MCPRoute: Envoy Gateway's `ExtAuth`, which upstream
//! turns into a SecurityPolicy on the route (Envoy's `ext_authz` filter). Every request
//! is first checked with the authorization service; the gateway does what Envoy's
//! filter does with the answer.
//!
//! * An `http` service gets the same method, the service's `path` prefix before the
//!   request's path and query, the `Authorization` header and those `headersToExtAuth`
//!   names (and, with `bodyToExtAuth`, the body). A 2xx answer lets the request through
//!   and copies the `headersToBackend` the service set onto every backend request; any
//!   other answer is returned to the client as the service gave it (status, body,
//!   content type).
//! * A `grpc` service (feature `mcp-ext-authz-grpc`) gets an
//!   `envoy.service.auth.v3.Authorization/Check` call ([`super::extauth_grpc`]).
//!
//! A service that cannot be reached or times out refuses with `statusOnError` (403 by
//! default), or lets the request through with `failOpen`. A body larger than `bodyToExtAuth.maxRequestBytes` gets 413
//! without a check, as Envoy's filter answers (it has precedence over `failOpen`).

use super::backend::McpBackend;
pub(crate) use super::extauth_verdict::{Checked, Verdict};
use super::upstream::UpstreamBody;
use bytes::Bytes;
use futures::StreamExt as _;
use http::{HeaderName, StatusCode, header};
use std::sync::Arc;
use std::time::Duration;

/// Largest denial body relayed to the client.
const MAX_DENIAL_BODY: usize = 64 * 1024;

/// A route's authorization service.
#[derive(Debug)]
pub(crate) struct ExtAuth {
    pub(crate) service: Arc<McpBackend>,
    pub(crate) protocol: Protocol,
    pub(crate) headers_to_ext_auth: Vec<HeaderName>,
    /// `bodyToExtAuth.maxRequestBytes`: the body goes to the service, up to this size.
    pub(crate) max_body: Option<usize>,
    pub(crate) timeout: Duration,
    pub(crate) fail_open: bool,
    /// `statusOnError`: the refusal when the service gives no decision.
    pub(crate) status_on_error: StatusCode,
}

/// How the service is asked.
#[derive(Debug)]
pub(crate) enum Protocol {
    /// Envoy's HTTP `ext_authz` client.
    Http {
        /// `http.headersToBackend`.
        headers_to_backend: Vec<HeaderName>,
    },
    /// `envoy.service.auth.v3.Authorization/Check`.
    #[cfg(feature = "mcp-ext-authz-grpc")]
    Grpc(super::extauth_grpc::GrpcAuth),
}

impl ExtAuth {
    /// Whether the body must be read before the check.
    pub(crate) fn wants_body(&self) -> Option<usize> {
        self.max_body
    }

    /// Asks the service about a request.
    pub(crate) async fn check(
        &self,
        upstream: &dyn super::McpUpstream,
        req: Checked<'_>,
    ) -> Verdict {
        match &self.protocol {
            Protocol::Http { headers_to_backend } => {
                self.check_http(upstream, req, headers_to_backend).await
            }
            #[cfg(feature = "mcp-ext-authz-grpc")]
            Protocol::Grpc(g) => match g
                .check(
                    upstream,
                    &self.service,
                    &self.headers_to_ext_auth,
                    self.timeout,
                    req,
                )
                .await
            {
                Ok(v) => v,
                Err(e) => self.unreachable(&e),
            },
        }
    }

    /// The check request of Envoy's HTTP client.
    fn http_request(&self, req: Checked<'_>) -> Option<http::Request<Bytes>> {
        let mut target = self.service.url().trim_end_matches('/').to_string();
        target.push_str(req.uri.path_and_query().map_or("/", |p| p.as_str()));
        let body = req.body.cloned().unwrap_or_default();
        let mut b = http::Request::builder()
            .method(req.method.clone())
            .uri(target)
            .header(header::CONTENT_LENGTH, body.len());
        let names = std::iter::once(&header::AUTHORIZATION).chain(&self.headers_to_ext_auth);
        for name in names {
            if name == header::CONTENT_LENGTH {
                continue;
            }
            for v in req.headers.get_all(name) {
                b = b.header(name, v);
            }
        }
        b.body(body).ok()
    }

    async fn check_http(
        &self,
        upstream: &dyn super::McpUpstream,
        req: Checked<'_>,
        headers_to_backend: &[HeaderName],
    ) -> Verdict {
        let Some(req) = self.http_request(req) else {
            return self.unreachable("cannot build the authorization request");
        };
        let sent = tokio::time::timeout(self.timeout, upstream.send(&self.service, req)).await;
        let resp = match sent {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return self.unreachable(&e.0),
            Err(_) => return self.unreachable("timed out"),
        };
        if resp.status().is_success() {
            let copied = headers_to_backend
                .iter()
                .flat_map(|n| {
                    resp.headers()
                        .get_all(n)
                        .iter()
                        .map(|v| (n.clone(), v.clone()))
                })
                .collect();
            return Verdict::allow(copied);
        }
        let status = resp.status();
        let headers = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|ct| (header::CONTENT_TYPE, ct.clone()))
            .into_iter()
            .collect();
        let body = read_limited(resp.into_body()).await;
        Verdict::Deny {
            status,
            headers,
            body,
        }
    }

    /// The service could not answer: 403, or through with `failOpen`.
    pub(crate) fn unreachable(&self, why: &str) -> Verdict {
        tracing::warn!(target: "aigw::mcp", service = %self.service.url(), error = %why, fail_open = self.fail_open, "external authorization service failed");
        if self.fail_open {
            Verdict::allow(Vec::new())
        } else {
            Verdict::Deny {
                status: self.status_on_error,
                headers: Vec::new(),
                body: Bytes::new(),
            }
        }
    }
}

/// One `contextExtensions` entry: `{name, type: Value|ValueRef, value | valueRef}`.
pub(crate) fn context_extension(
    namespace: &str,
    config: &crate::config::Config,
    secrets: &crate::config::SecretSource,
    x: &serde_json::Value,
) -> Result<(String, String), String> {
    let name = x
        .get("name")
        .and_then(serde_json::Value::as_str)
        .ok_or("name is required")?
        .to_string();
    let kind = x
        .get("type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("Value");
    match (kind, x.get("value"), x.get("valueRef")) {
        ("Value", Some(v), None) => v
            .as_str()
            .map(|v| (name, v.to_string()))
            .ok_or_else(|| "value must be a string".into()),
        ("ValueRef", None, Some(r)) => {
            let field = |k: &str| r.get(k).and_then(serde_json::Value::as_str).unwrap_or("");
            let (kind, obj, key) = (field("kind"), field("name"), field("key"));
            if !matches!(field("group"), "" | "v1") {
                return Err("valueRef must name a core ConfigMap or Secret".into());
            }
            let value = match kind {
                "Secret" => secrets
                    .resolve(namespace, obj, key)
                    .map(|s| s.expose().to_string())
                    .map_err(|e| e.to_string())?,
                "ConfigMap" => config
                    .config_maps
                    .iter()
                    .find(|c| c.namespace() == namespace && c.name() == obj)
                    .ok_or_else(|| format!("ConfigMap {namespace}/{obj} is not defined"))?
                    .spec
                    .get(key)
                    .cloned()
                    .ok_or_else(|| format!("ConfigMap {namespace}/{obj} has no key {key:?}"))?,
                _ => return Err("valueRef must name a ConfigMap or Secret".into()),
            };
            Ok((name, value))
        }
        _ => {
            Err("exactly one of value (type Value) or valueRef (type ValueRef) must be set".into())
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
