//! One MCPRoute → what upstream's controller writes for it
//! (`internal/controller/mcp_route.go`): the main HTTPRoute that sends MCP clients to
//! the MCP proxy, one HTTPRoute per backendRef that the proxy's upstream requests match
//! (moved behind the proxy by the extension server), one HTTPRouteFilter per
//! backendRef (host rewrite, credential injection), the managed credential Secrets of
//! `secretRef` API keys, the per-namespace placeholder Backend of the proxy, and what
//! the route's `securityPolicy` needs ([`mcp_security`]).

use super::http_route::MANAGED_BY;
use super::mcp_security;
use super::owner_reference;
use aigw_core::config::{Config, MCPBackendAPIKey, MCPRouteBackendRef, MCPRouteSpec, Resource};
use base64::Engine as _;
use serde_json::{Value, json};

pub use super::mcp_names::{DEFAULT_PATH, PREFIX};
/// Prefix of the main HTTPRoute.
pub const MAIN_ROUTE_PREFIX: &str = "ai-eg-mcp-main-";
/// Prefix of the per-backendRef HTTPRoutes.
pub const BACKEND_ROUTE_PREFIX: &str = "ai-eg-mcp-br-";
/// Prefix of the per-backendRef HTTPRouteFilters.
pub const BACKEND_FILTER_PREFIX: &str = "ai-eg-mcp-brf-";
/// Prefix of the managed credential Secrets.
pub const CREDENTIAL_SECRET_PREFIX: &str = "ai-eg-mcp-cred-";
/// The shared per-namespace Backend the main HTTPRoutes point at.
pub const PROXY_BACKEND: &str = "ai-eg-mcp-proxy";
/// Where the MCP proxy listens.
pub const PROXY_PORT: u16 = 9856;
/// The placeholder address of the proxy Backend (RFC 5737 TEST-NET-2): the extension
/// server points the cluster at the in-pod proxy whatever this says.
pub const PROXY_DUMMY_IP: &str = "192.0.2.42";
/// Which MCPRoute a request is for (set by the main route, read by the proxy).
pub const ROUTE_HEADER: &str = "x-ai-eg-mcp-route";
/// Which backend the proxy sends a request to.
pub const BACKEND_HEADER: &str = "x-ai-eg-mcp-backend";
/// Request and backend-request timeout of the generated rules (long-lived sessions).
const TIMEOUT: &str = "30m";
/// Envoy Gateway's key for an injected credential (`InjectedCredentialKey`).
const INJECTED_CREDENTIAL_KEY: &str = "credential";

/// The objects of one MCPRoute, and what could not be rendered.
pub fn objects(route: &Resource<MCPRouteSpec>, config: &Config) -> (Vec<Value>, Vec<String>) {
    let mut warnings = Vec::new();
    let main_name = format!("{MAIN_ROUTE_PREFIX}{}", route.name());
    let security = match mcp_security::render(route, &main_name) {
        Ok(s) => s,
        Err(e) => {
            // Fail closed: without its client authentication the route is not exposed.
            warnings.push(format!(
                "MCPRoute/{}: {e}; no route to its MCP endpoint is written",
                route.key()
            ));
            return (Vec::new(), warnings);
        }
    };
    let mut objects = vec![main_route(route, security.rules)];
    objects.extend(security.objects.into_iter().map(|mut o| {
        let name = o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        o["metadata"] = metadata(route, name, false);
        o
    }));
    for (i, r) in route.spec.backend_refs.iter().enumerate() {
        match backend_objects(route, r, config) {
            Ok(mut objs) => objects.append(&mut objs),
            Err(e) => warnings.push(format!(
                "MCPRoute/{}: spec.backendRefs[{i}] ({}): {e}; no route to this backend is written",
                route.key(),
                r.name
            )),
        }
    }
    (objects, warnings)
}

/// The shared placeholder Backend of the MCP proxy in `namespace` (not owned by any
/// MCPRoute: every MCPRoute of the namespace uses it).
pub fn proxy_backend(namespace: &str) -> Value {
    json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "Backend",
        "metadata": {
            "name": PROXY_BACKEND,
            "namespace": namespace,
            "labels": { MANAGED_BY.0: MANAGED_BY.1 },
        },
        "spec": { "endpoints": [{ "ip": { "address": PROXY_DUMMY_IP, "port": PROXY_PORT } }] },
    })
}

fn route_header_value(route: &Resource<MCPRouteSpec>) -> String {
    format!("{}/{}", route.namespace(), route.name())
}

/// Metadata of a generated object: the MCPRoute's labels and annotations, the
/// managed-by label, the owner reference.
fn metadata(route: &Resource<MCPRouteSpec>, name: String, copy: bool) -> Value {
    let mut labels = if copy {
        route.metadata.labels.clone()
    } else {
        Default::default()
    };
    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    let mut m = json!({ "name": name, "namespace": route.namespace(), "labels": labels });
    if copy {
        m["annotations"] = json!(route.metadata.annotations);
    }
    if let Some(o) = owner_reference(route) {
        m["ownerReferences"] = json!([o]);
    }
    m
}

fn http_route(route: &Resource<MCPRouteSpec>, name: String, rules: Vec<Value>) -> Value {
    super::http_route::route_object(
        metadata(route, name, true),
        &route.spec.parent_refs,
        &route.spec.hostnames,
        rules,
    )
}

/// MCP clients → the proxy: an exact match on the route's path (and its header
/// matches), the route header set for the proxy.
fn main_route(route: &Resource<MCPRouteSpec>, extra_rules: Vec<Value>) -> Value {
    let path = route.spec.path.as_deref().unwrap_or(DEFAULT_PATH);
    let mut m = json!({ "path": { "type": "Exact", "value": path } });
    if !route.spec.headers.is_empty() {
        m["headers"] = json!(route.spec.headers);
    }
    let rule = json!({
        "matches": [m],
        "backendRefs": [{
            "group": "gateway.envoyproxy.io",
            "kind": "Backend",
            "name": PROXY_BACKEND,
            "namespace": route.namespace(),
            "port": PROXY_PORT,
        }],
        "timeouts": { "request": TIMEOUT, "backendRequest": TIMEOUT },
        "filters": [{
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": { "set": [{ "name": ROUTE_HEADER, "value": route_header_value(route) }] },
        }],
    });
    let mut rules = vec![rule];
    rules.extend(extra_rules);
    http_route(route, format!("{MAIN_ROUTE_PREFIX}{}", route.name()), rules)
}

/// The HTTPRoute, filter and credential Secret of one backendRef.
fn backend_objects(
    route: &Resource<MCPRouteSpec>,
    r: &MCPRouteBackendRef,
    config: &Config,
) -> Result<Vec<Value>, String> {
    if let Some(ns) = r.namespace.as_deref().filter(|n| *n != route.namespace()) {
        return Err(format!(
            "cross-namespace backend reference {ns}/{} is not supported (as upstream)",
            r.name
        ));
    }
    let suffix = format!("{}-{}", route.name(), r.name);
    let filter_name = format!("{BACKEND_FILTER_PREFIX}{suffix}");
    let mut full_path = r.path.clone().unwrap_or_else(|| DEFAULT_PATH.into());
    let mut header_filter = None;
    let mut credential = None;
    let mut out = Vec::new();
    if let Some(key) = r.security_policy.as_ref().and_then(|p| p.api_key.as_ref()) {
        let header = key.header.as_deref().unwrap_or("Authorization");
        let bearer = |v: &str| {
            if header == "Authorization" {
                format!("Bearer {v}")
            } else {
                v.to_owned()
            }
        };
        if let Some(param) = &key.query_param {
            // Envoy Gateway has no filter for query parameters: upstream puts the key in
            // the rewritten path.
            full_path = format!("{full_path}?{param}={}", api_key(route, key, config)?);
        } else if let Some(inline) = &key.inline {
            header_filter = Some(json!({
                "type": "RequestHeaderModifier",
                "requestHeaderModifier": { "set": [{ "name": header, "value": bearer(inline) }] },
            }));
        } else if key.secret_ref.is_some() {
            let name = format!("{CREDENTIAL_SECRET_PREFIX}{suffix}");
            let value = bearer(&api_key(route, key, config)?);
            out.push(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": metadata(route, name.clone(), false),
                "type": "Opaque",
                "data": { INJECTED_CREDENTIAL_KEY: base64::engine::general_purpose::STANDARD.encode(value) },
            }));
            credential = Some((name, key.header.clone()));
        }
    }
    out.push(backend_filter(route, filter_name.clone(), credential));
    let mut filters = vec![json!({
        "type": "ExtensionRef",
        "extensionRef": { "group": "gateway.envoyproxy.io", "kind": "HTTPRouteFilter", "name": filter_name },
    })];
    filters.extend(header_filter);
    filters.push(json!({
        "type": "URLRewrite",
        "urlRewrite": { "path": { "type": "ReplaceFullPath", "replaceFullPath": full_path } },
    }));
    let mut backend_ref = json!({ "name": r.name });
    for (k, v) in [
        ("group", &r.group),
        ("kind", &r.kind),
        ("namespace", &r.namespace),
    ] {
        if let Some(v) = v {
            backend_ref[k] = json!(v);
        }
    }
    if let Some(p) = r.port {
        backend_ref["port"] = json!(p);
    }
    let rule = json!({
        "matches": [{
            "path": { "type": "PathPrefix", "value": "/" },
            "headers": [
                { "name": BACKEND_HEADER, "value": r.name },
                { "name": ROUTE_HEADER, "value": route_header_value(route) },
            ],
        }],
        "filters": filters,
        "backendRefs": [backend_ref],
        "timeouts": { "request": TIMEOUT, "backendRequest": TIMEOUT },
    });
    out.push(http_route(
        route,
        format!("{BACKEND_ROUTE_PREFIX}{suffix}"),
        vec![rule],
    ));
    Ok(out)
}

/// Host rewrite to the backend (SNI of public MCP servers), and credential injection
/// from the managed Secret.
fn backend_filter(
    route: &Resource<MCPRouteSpec>,
    name: String,
    credential: Option<(String, Option<String>)>,
) -> Value {
    let mut spec = json!({ "urlRewrite": { "hostname": { "type": "Backend" } } });
    if let Some((secret, header)) = credential {
        let mut c = json!({ "overwrite": true, "credential": { "valueRef": { "name": secret } } });
        if let Some(h) = header {
            c["header"] = json!(h);
        }
        spec["credentialInjection"] = c;
    }
    json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "HTTPRouteFilter",
        "metadata": metadata(route, name, false),
        "spec": spec,
    })
}

/// The API key: inline, or key `apiKey` of the referenced Secret (the route's
/// namespace).
fn api_key(
    route: &Resource<MCPRouteSpec>,
    key: &MCPBackendAPIKey,
    config: &Config,
) -> Result<String, String> {
    if let Some(v) = key.inline.as_deref().filter(|v| !v.is_empty()) {
        return Ok(v.to_owned());
    }
    let Some(r) = &key.secret_ref else {
        return Err("the API key has neither inline nor secretRef".into());
    };
    let ns = route.namespace();
    config
        .secrets
        .iter()
        .find(|s| s.metadata.namespace() == ns && s.metadata.name == r.name)
        .and_then(|s| s.data.get("apiKey"))
        .map(|v| v.expose().to_owned())
        .ok_or_else(|| format!("Secret {ns}/{} with key apiKey is not defined", r.name))
}
