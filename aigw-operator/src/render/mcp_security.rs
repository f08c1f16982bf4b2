//! An MCPRoute's `securityPolicy` → what upstream's controller writes for it
//! (`internal/controller/mcp_route_security_policy.go`): an Envoy Gateway
//! `SecurityPolicy` on the main HTTPRoute (JWT validation for `oauth`, `apiKeyAuth`,
//! `extAuth`), and for `oauth` the RFC 9728 / RFC 8414 metadata MCP clients discover the
//! authorization server with — two direct-response `HTTPRouteFilter`s and the main
//! route's rules serving them — plus a `BackendTrafficPolicy` that puts the
//! `WWW-Authenticate` challenge pointing at that metadata on 401 responses.
//!
//! `authorization` is not Envoy's: the MCP proxy enforces it from the ExtProc
//! configuration, as upstream's does.

use aigw_core::config::{MCPRouteOAuth, MCPRouteSpec, Resource};
use serde::Serialize;
use serde_json::{Value, json};

use super::mcp_names::{DEFAULT_PATH, PREFIX};

const PROTECTED_RESOURCE_PATH: &str = "/.well-known/oauth-protected-resource";
const AUTH_SERVER_PATH: &str = "/.well-known/oauth-authorization-server";
const OIDC_PATH: &str = "/.well-known/openid-configuration";
/// The JWT provider's name in the SecurityPolicy, as upstream's.
const JWT_PROVIDER: &str = "mcp-jwt-provider";

/// The SecurityPolicy's name.
pub fn policy_name(route: &str) -> String {
    format!("{PREFIX}{route}")
}

/// The protected-resource metadata filter's and the BackendTrafficPolicy's name.
pub fn protected_resource_name(route: &str) -> String {
    format!("{PREFIX}{route}-oauth-protected-resource-metadata")
}

/// The authorization-server metadata filter's name.
pub fn auth_server_name(route: &str) -> String {
    format!("{PREFIX}{route}-oauth-authorization-server-metadata")
}

/// What an MCPRoute's securityPolicy renders to.
#[derive(Debug, Default)]
pub struct Rendered {
    /// SecurityPolicy, BackendTrafficPolicy and HTTPRouteFilters (metadata to be set by
    /// the caller).
    pub objects: Vec<Value>,
    /// Extra rules of the main HTTPRoute (the OAuth metadata endpoints).
    pub rules: Vec<Value>,
}

/// Renders the route's client authentication; `Err` names what cannot be rendered, in
/// which case nothing of the route may be exposed.
pub fn render(route: &Resource<MCPRouteSpec>, main_route: &str) -> Result<Rendered, String> {
    let Some(p) = &route.spec.security_policy else {
        return Ok(Rendered::default());
    };
    if p.oauth.is_none() && p.api_key_auth.is_none() && p.ext_auth.is_none() {
        return Ok(Rendered::default());
    }
    let target =
        json!([{ "group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": main_route }]);
    let mut spec = json!({ "targetRefs": target });
    let mut out = Rendered::default();
    if let Some(oauth) = &p.oauth {
        spec["jwt"] = json!({ "providers": [jwt_provider(oauth)?] });
        let path = route.spec.path.as_deref().unwrap_or(DEFAULT_PATH);
        out.objects
            .extend(oauth_objects(route.name(), oauth, &target));
        out.rules = oauth_rules(route.name(), path);
    }
    if let Some(a) = &p.api_key_auth {
        spec["apiKeyAuth"] = plain(a);
    }
    if let Some(a) = &p.ext_auth {
        spec["extAuth"] = plain(a);
    }
    out.objects.insert(
        0,
        json!({
            "apiVersion": "gateway.envoyproxy.io/v1alpha1",
            "kind": "SecurityPolicy",
            "metadata": { "name": policy_name(route.name()) },
            "spec": spec,
        }),
    );
    Ok(out)
}

/// A config type as Envoy Gateway's JSON: unset fields and empty lists left out.
fn plain<T: Serialize>(v: &T) -> Value {
    fn prune(v: Value) -> Option<Value> {
        match v {
            Value::Null => None,
            Value::Array(a) if a.is_empty() => None,
            Value::Array(a) => Some(Value::Array(a.into_iter().filter_map(prune).collect())),
            Value::Object(o) => Some(Value::Object(
                o.into_iter()
                    .filter_map(|(k, v)| prune(v).map(|v| (k, v)))
                    .collect(),
            )),
            other => Some(other),
        }
    }
    serde_json::to_value(v)
        .ok()
        .and_then(prune)
        .unwrap_or(Value::Null)
}

fn jwt_provider(oauth: &MCPRouteOAuth) -> Result<Value, String> {
    let mut provider = json!({ "name": JWT_PROVIDER });
    if !oauth.audiences.is_empty() {
        provider["audiences"] = json!(oauth.audiences);
    }
    let jwks = oauth.jwks.as_ref();
    match (
        jwks.and_then(|j| j.remote_jwks.as_ref()),
        jwks.and_then(|j| j.local_jwks.as_ref()),
    ) {
        (Some(remote), _) => provider["remoteJWKS"] = plain(remote),
        (None, Some(local)) => provider["localJWKS"] = plain(local),
        // Upstream discovers jwks_uri from the issuer's metadata at reconcile time; a
        // render is reproducible and offline, so the keys must be named.
        (None, None) => {
            return Err(format!(
                "spec.securityPolicy.oauth.jwks is not set: discovering the keys from {} is not supported; set remoteJWKS (the issuer's jwks_uri) or localJWKS",
                oauth.issuer
            ));
        }
    }
    if !oauth.claim_to_headers.is_empty() {
        provider["claimToHeaders"] = plain(&oauth.claim_to_headers);
    }
    Ok(provider)
}

/// The resource_metadata URL of RFC 9728: the well-known path inserted between the
/// resource's origin and its path.
fn resource_metadata_url(resource: &str) -> String {
    let resource = resource.trim_end_matches('/');
    let scheme_len = ["https://", "http://"]
        .iter()
        .find(|p| resource.starts_with(*p))
        .map_or(0, |p| p.len());
    match resource[scheme_len..].find('/') {
        Some(i) => {
            let (origin, path) = resource.split_at(scheme_len + i);
            format!("{origin}{PROTECTED_RESOURCE_PATH}{path}")
        }
        None => format!("{resource}{PROTECTED_RESOURCE_PATH}"),
    }
}

fn www_authenticate(oauth: &MCPRouteOAuth) -> String {
    let meta = oauth
        .protected_resource_metadata
        .clone()
        .unwrap_or_default();
    let mut v = format!(
        "Bearer error=\"invalid_token\", error_description=\"The access token is missing or invalid\", resource_metadata=\"{}\"",
        resource_metadata_url(&meta.resource)
    );
    if !meta.scopes_supported.is_empty() {
        v.push_str(&format!(", scope=\"{}\"", meta.scopes_supported.join(" ")));
    }
    v
}

/// CORS headers the browser-based MCP inspector needs.
fn cors() -> Vec<Value> {
    vec![
        json!({ "name": "Access-Control-Allow-Origin", "value": "*" }),
        json!({ "name": "Access-Control-Allow-Methods", "value": "GET" }),
        json!({ "name": "Access-Control-Allow-Headers", "value": "mcp-protocol-version" }),
    ]
}

fn protected_resource_metadata(oauth: &MCPRouteOAuth) -> Value {
    let meta = oauth
        .protected_resource_metadata
        .clone()
        .unwrap_or_default();
    let mut m = json!({
        "resource": meta.resource,
        "authorization_servers": [oauth.issuer],
        "bearer_methods_supported": ["header"],
    });
    let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    if let Some(n) = non_empty(&meta.resource_name) {
        m["resource_name"] = json!(n);
    }
    if !meta.scopes_supported.is_empty() {
        m["scopes_supported"] = json!(meta.scopes_supported);
    }
    if !meta.resource_signing_alg_values_supported.is_empty() {
        m["resource_signing_alg_values_supported"] =
            json!(meta.resource_signing_alg_values_supported);
    }
    if let Some(d) = non_empty(&meta.resource_documentation) {
        m["resource_documentation"] = json!(d);
    }
    if let Some(p) = non_empty(&meta.resource_policy_uri) {
        m["resource_policy_uri"] = json!(p);
    }
    m
}

/// RFC 8414 metadata for clients of the 2025-03-26 MCP revision. Upstream fetches it
/// from the issuer and falls back to these values when it cannot; a render does not
/// call out, so it serves these.
fn auth_server_metadata(oauth: &MCPRouteOAuth) -> Value {
    let issuer = oauth.issuer.trim_end_matches('/');
    let scopes = oauth
        .protected_resource_metadata
        .as_ref()
        .map(|m| m.scopes_supported.clone())
        .unwrap_or_default();
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/protocol/openid-connect/auth"),
        "token_endpoint": format!("{issuer}/protocol/openid-connect/token"),
        "jwks_uri": format!("{issuer}/protocol/openid-connect/certs"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
    })
}

/// JSON text with object keys in order, as upstream's encoder writes its metadata.
fn sorted_json(v: &Value) -> String {
    let sorted: std::collections::BTreeMap<&String, &Value> = v
        .as_object()
        .map(|o| o.iter().collect())
        .unwrap_or_default();
    serde_json::to_string(&sorted).unwrap_or_default()
}

fn direct_response_filter(name: String, body: &Value) -> Value {
    json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "HTTPRouteFilter",
        "metadata": { "name": name },
        "spec": { "directResponse": {
            "contentType": "application/json",
            "statusCode": 200,
            "body": { "type": "Inline", "inline": sorted_json(body) },
            "header": { "set": cors() },
        } },
    })
}

fn oauth_objects(route: &str, oauth: &MCPRouteOAuth, target: &Value) -> Vec<Value> {
    let mut headers = vec![json!({ "name": "WWW-Authenticate", "value": www_authenticate(oauth) })];
    headers.extend(cors());
    let btp = json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "BackendTrafficPolicy",
        "metadata": { "name": protected_resource_name(route) },
        "spec": {
            "targetRefs": target,
            "responseOverride": [{
                "match": { "statusCodes": [{ "type": "Value", "value": 401 }] },
                "response": { "statusCode": 401, "header": { "set": headers } },
            }],
        },
    });
    vec![
        btp,
        direct_response_filter(
            protected_resource_name(route),
            &protected_resource_metadata(oauth),
        ),
        direct_response_filter(auth_server_name(route), &auth_server_metadata(oauth)),
    ]
}

fn metadata_rule(section: &str, path: String, filter: String) -> Value {
    json!({
        "name": section,
        "matches": [{ "path": { "type": "Exact", "value": path } }],
        "filters": [{
            "type": "ExtensionRef",
            "extensionRef": { "group": "gateway.envoyproxy.io", "kind": "HTTPRouteFilter", "name": filter },
        }],
    })
}

/// The well-known metadata rules, suffixed with the route's path as RFC 9728 and RFC
/// 8414 place them.
fn oauth_rules(route: &str, path: &str) -> Vec<Value> {
    let trimmed = path.trim_end_matches('/');
    vec![
        metadata_rule(
            "oauth-protected-resource-metadata",
            format!("{PROTECTED_RESOURCE_PATH}{trimmed}"),
            protected_resource_name(route),
        ),
        metadata_rule(
            "oauth-authorization-server-metadata",
            format!("{AUTH_SERVER_PATH}{trimmed}"),
            auth_server_name(route),
        ),
        metadata_rule(
            "oauth-authorization-server-metadata-oidc",
            format!("{OIDC_PATH}{path}"),
            auth_server_name(route),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_metadata_url_inserts_the_well_known_path() {
        assert_eq!(
            resource_metadata_url("https://foo.bar.com/mcp/"),
            "https://foo.bar.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            resource_metadata_url("http://127.0.0.1:1975"),
            "http://127.0.0.1:1975/.well-known/oauth-protected-resource"
        );
    }
}
