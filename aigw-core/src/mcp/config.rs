//! MCPRoutes compiled for serving: each backend's URL, TLS, credential, forwarded
//! headers and tool selector resolved once at load. Whatever a route asks for that the
//! gateway cannot honour fails the load, naming the route and field — a route never
//! serves with part of its configuration silently dropped.

use super::apikey::ClientKeys;
use super::auth::OAuth;
use super::authz::Authorization;
use super::backend::{ApiKey, McpBackend};
use super::extauth::{ExtAuth, Protocol};
use super::filter::ToolSelector;
use crate::Secret;
use crate::config::{
    Config, DEFAULT_MCP_PATH, HeaderMatchType, MCPRouteBackendRef, MCPRouteSpec, Resource,
    SecretSource,
};
use crate::error::ConfigIssue;
use crate::routing::target;
use http::{HeaderMap, HeaderName};
use regex::Regex;
use std::sync::Arc;

/// Upstream's header naming the MCPRoute of a request (`namespace/name`), set by the
/// Envoy route in front of its MCP proxy and sent to its MCP backend listener.
pub(crate) const ROUTE_HEADER: &str = "x-ai-eg-mcp-route";
/// Upstream's header naming the backend, which its MCP backend listener routes by.
pub(crate) const BACKEND_HEADER: &str = "x-ai-eg-mcp-backend";

/// Envoy Gateway's API group (a `Backend` backendRef).
const EG_GROUP: &str = "gateway.envoyproxy.io";

#[derive(Debug, Clone)]
pub(crate) enum HeaderMatch {
    Exact(HeaderName, String),
    Regex(HeaderName, Regex),
}

/// One MCPRoute.
#[derive(Debug, Clone)]
pub struct McpRoute {
    pub(crate) key: String,
    pub(crate) path: String,
    pub(crate) hostnames: Vec<String>,
    pub(crate) headers: Vec<HeaderMatch>,
    pub(crate) backends: Vec<Arc<McpBackend>>,
    pub(crate) oauth: Option<Arc<OAuth>>,
    pub(crate) authz: Option<Arc<Authorization>>,
    /// `securityPolicy.apiKeyAuth`.
    pub(crate) api_keys: Option<Arc<ClientKeys>>,
    /// `securityPolicy.extAuth` (an HTTP authorization service).
    pub(crate) ext_auth: Option<Arc<ExtAuth>>,
    /// `spec.backendSelector`, checked per backend at `initialize`.
    pub(crate) selector: Option<Arc<Authorization>>,
    /// Chosen by upstream's `x-ai-eg-mcp-route` header (set by Envoy) instead of by
    /// path, host and headers.
    pub(crate) by_route_header: bool,
    /// Bearer tokens were verified by Envoy in front (upstream's topology): their
    /// claims are read without verification, as upstream's proxy does.
    pub(crate) trust_bearer: bool,
    /// The RFC 9728 URL named in `insufficient_scope` challenges when the route has no
    /// `oauth` of its own (the filter configuration's `resourceMetadataURL`).
    pub(crate) challenge_url: Option<String>,
    /// `oauth.claimToHeaders`: claim path → backend header.
    pub(crate) claim_headers: Vec<(Vec<String>, HeaderName)>,
}

impl McpRoute {
    /// `namespace/name`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The endpoint path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The backends, in configuration order.
    pub fn backends(&self) -> impl Iterator<Item = &McpBackend> {
        self.backends.iter().map(|b| b.as_ref())
    }

    /// Whether authorization rules or a backend selector look at the request.
    pub(crate) fn checks_requests(&self) -> bool {
        self.authz.is_some() || self.selector.is_some()
    }

    /// Whether a CEL condition needs the request's attributes.
    pub(crate) fn uses_cel(&self) -> bool {
        [&self.authz, &self.selector]
            .into_iter()
            .flatten()
            .any(|a| a.uses_cel())
    }

    /// Gets the connection to a `grpc` authorization service from the packaging.
    #[cfg(feature = "mcp-ext-authz-grpc")]
    pub(crate) fn connect_ext_auth(&self, upstream: &dyn super::McpUpstream) -> Result<(), String> {
        let Some(ext) = self.ext_auth.as_deref() else {
            return Ok(());
        };
        // A channel needs a runtime to start in; loaded outside one (a validation), the
        // first check connects.
        if let Protocol::Grpc(g) = &ext.protocol
            && tokio::runtime::Handle::try_current().is_ok()
        {
            let channel = upstream.grpc_channel(&ext.service)?;
            // Set once, right after compiling: a second set cannot happen.
            let _ = g.channel.set(channel);
        }
        Ok(())
    }

    pub(crate) fn backend(&self, name: &str) -> Option<&Arc<McpBackend>> {
        self.backends.iter().find(|b| b.name == name)
    }

    /// Whether a request with this path, host and headers is for the route.
    pub(crate) fn matches(&self, path: &str, host: Option<&str>, headers: &HeaderMap) -> bool {
        if self.by_route_header {
            return headers
                .get(ROUTE_HEADER)
                .is_some_and(|v| v.as_bytes() == self.key.as_bytes());
        }
        if path != self.path {
            return false;
        }
        if !self.hostnames.is_empty() {
            let host = host.map(|h| h.rsplit_once(':').map_or(h, |(n, _)| n));
            let Some(host) = host else { return false };
            if !self.hostnames.iter().any(|p| host_matches(p, host)) {
                return false;
            }
        }
        self.headers.iter().all(|m| match m {
            HeaderMatch::Exact(n, v) => {
                headers.get(n).is_some_and(|h| h.as_bytes() == v.as_bytes())
            }
            HeaderMatch::Regex(n, re) => headers
                .get(n)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|h| re.is_match(h)),
        })
    }
}

fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|p| p.ends_with('.') && p.len() > 1),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// Compiles every MCPRoute of a configuration.
pub(crate) fn compile(
    config: &Config,
    secrets: &SecretSource,
) -> Result<Vec<McpRoute>, Vec<ConfigIssue>> {
    let mut issues = Vec::new();
    let mut routes = Vec::new();
    for r in &config.mcp_routes {
        let mut c = Ctx {
            r,
            issues: &mut issues,
        };
        if let Some(route) = c.route(config, secrets) {
            routes.push(route);
        }
    }
    if issues.is_empty() {
        Ok(routes)
    } else {
        Err(issues)
    }
}

struct Ctx<'a> {
    r: &'a Resource<MCPRouteSpec>,
    issues: &'a mut Vec<ConfigIssue>,
}

impl Ctx<'_> {
    fn err(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.issues.push(ConfigIssue {
            file: self.r.source.file.clone(),
            line: None,
            document: self.r.label(),
            field: field.into(),
            message: message.into(),
        });
    }

    fn route(&mut self, config: &Config, secrets: &SecretSource) -> Option<McpRoute> {
        let s = &self.r.spec;
        let selector = match s
            .backend_selector
            .as_ref()
            .map(Authorization::compile_selector)
        {
            Some(Ok(x)) => Some(Arc::new(x)),
            Some(Err(e)) => {
                self.err("spec.backendSelector", e);
                None
            }
            None => None,
        };
        let path = s
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| DEFAULT_MCP_PATH.into());
        let (mut oauth, mut authz, mut claim_headers, mut api_keys, mut ext_auth) =
            (None, None, Vec::new(), None, None);
        if let Some(sp) = &s.security_policy {
            if let Some(e) = &sp.ext_auth {
                ext_auth = self.ext_auth(config, secrets, e).map(Arc::new);
            }
            if let Some(a) = &sp.api_key_auth {
                match ClientKeys::compile(a, self.r.namespace(), secrets) {
                    Ok(k) => api_keys = Some(Arc::new(k)),
                    Err((f, e)) => self.err(format!("spec.securityPolicy.apiKeyAuth.{f}"), e),
                }
            }
            if let Some(o) = &sp.oauth {
                match OAuth::compile(o, &path) {
                    Ok(x) => oauth = Some(Arc::new(x)),
                    Err(e) => self.err("spec.securityPolicy.oauth", e),
                }
                for (i, c) in o.claim_to_headers.iter().enumerate() {
                    match HeaderName::try_from(c.header.as_str()) {
                        Ok(h) => claim_headers
                            .push((c.claim.split('.').map(str::to_string).collect(), h)),
                        Err(_) => self.err(
                            format!("spec.securityPolicy.oauth.claimToHeaders[{i}].header"),
                            "invalid header name",
                        ),
                    }
                }
            }
            if let Some(a) = &sp.authorization {
                match Authorization::compile(a) {
                    Ok(x) => authz = Some(Arc::new(x)),
                    Err(e) => self.err("spec.securityPolicy.authorization", e),
                }
            }
        }
        let mut headers = Vec::new();
        for (i, h) in s.headers.iter().enumerate() {
            let Ok(name) = HeaderName::try_from(h.name.as_str()) else {
                self.err(format!("spec.headers[{i}].name"), "invalid header name");
                continue;
            };
            match h.match_type {
                HeaderMatchType::Exact => headers.push(HeaderMatch::Exact(name, h.value.clone())),
                HeaderMatchType::RegularExpression => {
                    match Regex::new(&format!("^(?:{})$", h.value)) {
                        Ok(re) => headers.push(HeaderMatch::Regex(name, re)),
                        Err(e) => self.err(
                            format!("spec.headers[{i}].value"),
                            format!("invalid regular expression: {e}"),
                        ),
                    }
                }
            }
        }
        let backends = s
            .backend_refs
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                self.backend(config, secrets, format!("spec.backendRefs[{i}]"), b)
                    .map(Arc::new)
            })
            .collect();
        Some(McpRoute {
            key: self.r.key(),
            path,
            hostnames: s.hostnames.clone(),
            headers,
            backends,
            oauth,
            authz,
            api_keys,
            ext_auth,
            selector,
            by_route_header: false,
            trust_bearer: false,
            challenge_url: None,
            claim_headers,
        })
    }

    /// `securityPolicy.extAuth`: an `http` service, or a `grpc` one with the feature
    /// `mcp-ext-authz-grpc` (refused without it, naming the field).
    fn ext_auth(
        &mut self,
        config: &Config,
        secrets: &SecretSource,
        e: &crate::config::ExtAuth,
    ) -> Option<ExtAuth> {
        let f = "spec.securityPolicy.extAuth";
        let (refs, field) = match (&e.http, &e.grpc) {
            (Some(h), None) => ((&h.backend_ref, h.backend_refs.as_slice()), "http"),
            (None, Some(g)) => ((&g.backend_ref, g.backend_refs.as_slice()), "grpc"),
            _ => {
                self.err(f, "exactly one of grpc or http must be set");
                return None;
            }
        };
        if e.http
            .as_ref()
            .is_some_and(|h| h.backend_settings.is_some())
            || e.grpc
                .as_ref()
                .is_some_and(|g| g.backend_settings.is_some())
            || e.recompute_route.is_some()
        {
            tracing::warn!(route = %self.r.label(), "extAuth.{field}.backendSettings and recomputeRoute are not applied by the MCP gateway");
        }
        let r = match refs {
            (Some(r), []) => MCPRouteBackendRef {
                group: r.group.clone(),
                kind: r.kind.clone(),
                name: r.name.clone(),
                namespace: r.namespace.clone(),
                port: r.port,
                ..Default::default()
            },
            (None, [r]) => MCPRouteBackendRef {
                group: r.group.clone(),
                kind: r.kind.clone(),
                name: r.name.clone(),
                namespace: r.namespace.clone(),
                port: r.port,
                ..Default::default()
            },
            _ => {
                self.err(
                    format!("{f}.{field}.backendRefs"),
                    "exactly one backend is required",
                );
                return None;
            }
        };
        let path = e.http.as_ref().and_then(|h| h.path.clone());
        let r = MCPRouteBackendRef {
            path: Some(path.filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into())),
            ..r
        };
        let service = self.backend(config, secrets, format!("{f}.{field}.backendRef"), &r)?;
        let names = |list: &[String], field: &str, this: &mut Self| -> Vec<HeaderName> {
            list.iter()
                .filter_map(|n| match HeaderName::try_from(n.as_str()) {
                    Ok(h) => Some(h),
                    Err(_) => {
                        this.err(format!("{f}.{field}"), format!("invalid header name {n:?}"));
                        None
                    }
                })
                .collect()
        };
        let headers_to_ext_auth = names(&e.headers_to_ext_auth, "headersToExtAuth", self);
        let extensions = self.context_extensions(config, secrets, &e.context_extensions);
        let protocol = match &e.http {
            Some(h) => {
                if !e.context_extensions.is_empty() || e.include_route_metadata == Some(true) {
                    // Envoy's HTTP ext_authz client has no place for them either.
                    tracing::warn!(route = %self.r.label(), "extAuth.contextExtensions and includeRouteMetadata are sent to gRPC authorization services only; the http service does not get them");
                }
                Protocol::Http {
                    headers_to_backend: names(&h.headers_to_backend, "http.headersToBackend", self),
                }
            }
            None => self.grpc_protocol(extensions?, e.include_route_metadata == Some(true))?,
        };
        let timeout = match e.timeout.as_deref().map(crate::config::parse_duration) {
            None => std::time::Duration::from_secs(10),
            Some(Ok(d)) => d,
            Some(Err(_)) => {
                self.err(format!("{f}.timeout"), "invalid duration");
                return None;
            }
        };
        let max_body = e
            .body_to_ext_auth
            .as_ref()
            .map(|b| usize::try_from(b.max_request_bytes).unwrap_or(usize::MAX));
        let status_on_error = match e.status_on_error {
            None => http::StatusCode::FORBIDDEN,
            Some(c) => match u16::try_from(c)
                .ok()
                .and_then(|c| http::StatusCode::from_u16(c).ok())
            {
                Some(s) if s.is_client_error() || s.is_server_error() => s,
                _ => {
                    self.err(format!("{f}.statusOnError"), "must be a 4xx or 5xx status");
                    return None;
                }
            },
        };
        Some(ExtAuth {
            status_on_error,
            service: Arc::new(service),
            protocol,
            headers_to_ext_auth,
            max_body,
            timeout,
            fail_open: e.fail_open.unwrap_or(false),
        })
    }

    #[cfg(feature = "mcp-ext-authz-grpc")]
    fn grpc_protocol(
        &mut self,
        context_extensions: std::collections::BTreeMap<String, String>,
        route_metadata: bool,
    ) -> Option<Protocol> {
        Some(Protocol::Grpc(super::extauth_grpc::GrpcAuth {
            context_extensions,
            route: route_metadata
                .then(|| (self.r.namespace().to_string(), self.r.name().to_string())),
            channel: std::sync::OnceLock::new(),
        }))
    }

    #[cfg(not(feature = "mcp-ext-authz-grpc"))]
    fn grpc_protocol(
        &mut self,
        _context_extensions: std::collections::BTreeMap<String, String>,
        _route_metadata: bool,
    ) -> Option<Protocol> {
        self.err(
            "spec.securityPolicy.extAuth.grpc",
            "gRPC authorization services need aigw-core's feature mcp-ext-authz-grpc, which this build lacks",
        );
        None
    }

    /// `extAuth.contextExtensions`: each `name` with its `value`, or the key of a
    /// Secret or ConfigMap (`valueRef`).
    fn context_extensions(
        &mut self,
        config: &Config,
        secrets: &SecretSource,
        list: &[serde_json::Value],
    ) -> Option<std::collections::BTreeMap<String, String>> {
        let mut out = std::collections::BTreeMap::new();
        let mut ok = true;
        for (i, x) in list.iter().enumerate() {
            let f = format!("spec.securityPolicy.extAuth.contextExtensions[{i}]");
            match super::extauth::context_extension(self.r.namespace(), config, secrets, x) {
                Ok((k, v)) => {
                    out.insert(k, v);
                }
                Err(e) => {
                    self.err(f, e);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn backend(
        &mut self,
        config: &Config,
        secrets: &SecretSource,
        f: String,
        b: &MCPRouteBackendRef,
    ) -> Option<McpBackend> {
        let ns = self.r.namespace().to_string();
        let mut h2c = false;
        let (origin, tls) = if b.kind.as_deref() == Some("Backend")
            && b.group.as_deref() == Some(EG_GROUP)
        {
            let Some(eg) = config
                .backends
                .iter()
                .find(|x| x.namespace() == ns && x.name() == b.name)
            else {
                self.err(
                    format!("{f}.name"),
                    format!("Backend {ns}/{} is not defined", b.name),
                );
                return None;
            };
            let endpoints = target::endpoints(eg);
            let Some(ep) = endpoints.first() else {
                self.err(
                    format!("{f}.name"),
                    format!("Backend {ns}/{} has no fqdn or ip endpoint", b.name),
                );
                return None;
            };
            if matches!(ep, crate::routing::Endpoint::Unix { .. }) {
                self.err(
                    format!("{f}.name"),
                    "unix-socket endpoints are not supported for MCP backends",
                );
                return None;
            }
            if endpoints.len() > 1 {
                tracing::warn!(route = %self.r.label(), backend = %b.name, "MCP backend has several endpoints; the first is used");
            }
            let tls = target::tls_for_backend(config, eg, self.issues);
            let scheme = if tls.is_some() { "https" } else { "http" };
            h2c = target::http2_prior_knowledge(eg);
            (format!("{scheme}://{}", ep.authority()), tls)
        } else {
            // A Kubernetes Service, dialled by its cluster DNS name as Envoy would.
            let Some(port) = b.port else {
                self.err(
                    format!("{f}.port"),
                    "port is required for a Service backendRef",
                );
                return None;
            };
            (format!("http://{}.{ns}.svc:{port}", b.name), None)
        };
        let mut path = b
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| DEFAULT_MCP_PATH.into());
        let mut api_key = None;
        if let Some(k) = b
            .security_policy
            .as_ref()
            .and_then(|sp| sp.api_key.as_ref())
        {
            let value = match (&k.inline, &k.secret_ref) {
                (Some(v), _) => Some(Secret::new(v.as_str())),
                (None, Some(r)) => {
                    let sns = r
                        .namespace
                        .as_deref()
                        .filter(|n| !n.is_empty())
                        .unwrap_or(&ns);
                    match secrets.resolve(sns, &r.name, "apiKey") {
                        Ok(v) => Some(v),
                        Err(e) => {
                            self.err(
                                format!("{f}.securityPolicy.apiKey.secretRef"),
                                e.to_string(),
                            );
                            None
                        }
                    }
                }
                (None, None) => None,
            };
            if let Some(value) = value {
                api_key = match (&k.query_param, &k.header) {
                    (Some(q), _) => Some(ApiKey::Query(q.clone(), value)),
                    (None, h) => {
                        match HeaderName::try_from(h.as_deref().unwrap_or("Authorization")) {
                            Ok(h) => Some(ApiKey::Header(h, value)),
                            Err(_) => {
                                self.err(
                                    format!("{f}.securityPolicy.apiKey.header"),
                                    "invalid header name",
                                );
                                None
                            }
                        }
                    }
                };
            }
        }
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        let mut forward = Vec::new();
        for (j, h) in b.forward_headers.iter().enumerate() {
            let to = h
                .backend_header
                .as_deref()
                .filter(|s| !s.is_empty())
                .unwrap_or(&h.name);
            match (
                HeaderName::try_from(h.name.as_str()),
                HeaderName::try_from(to),
            ) {
                (Ok(from), Ok(to)) => forward.push((from, to)),
                _ => self.err(format!("{f}.forwardHeaders[{j}]"), "invalid header name"),
            }
        }
        let selector = match b.tool_selector.as_ref().map(ToolSelector::compile) {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                self.err(format!("{f}.toolSelector"), e);
                None
            }
            None => None,
        };
        Some(McpBackend {
            name: b.name.clone(),
            origin,
            path,
            tls,
            http2_prior_knowledge: h2c,
            api_key,
            forward,
            selector,
            fixed_headers: Vec::new(),
            via_envoy: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(host_matches("a.example.com", "A.example.com"));
        assert!(host_matches("*.example.com", "x.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("*.example.com", "xexample.com"));
    }
}
