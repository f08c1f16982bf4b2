//! `MCPRoute`: aggregation of MCP servers behind one Streamable HTTP endpoint.

use super::meta::{HttpHeaderMatch, ParentReference, SecretObjectReference};
use super::security_policy::{ApiKeyAuth, ClaimToHeader, ExtAuth, JwtClaim, LocalJwks, RemoteJwks};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Default MCP endpoint path, for the route and for each backend.
pub const DEFAULT_MCP_PATH: &str = "/mcp";
/// Maximum backendRefs of an MCPRoute.
pub const MAX_MCP_BACKENDS: usize = 256;
/// Maximum entries in each tool selector list.
pub const MAX_TOOL_SELECTORS: usize = 32;

/// `MCPRoute.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MCPRouteSpec {
    /// Gateways (same namespace), 1–16.
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    /// Endpoint path, default `/mcp`.
    #[serde(default)]
    pub path: Option<String>,
    /// Header matches, AND-ed.
    #[serde(default)]
    pub headers: Vec<HttpHeaderMatch>,
    /// Hostnames.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// MCP servers, 1–256, unique names.
    #[serde(default)]
    pub backend_refs: Vec<MCPRouteBackendRef>,
    /// Client-facing authentication and authorization.
    #[serde(default)]
    pub security_policy: Option<MCPRouteSecurityPolicy>,
    /// CEL-based selection of backends at initialize.
    #[serde(default)]
    pub backend_selector: Option<Value>,
}

/// One MCP server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MCPRouteBackendRef {
    /// Group, `gateway.envoyproxy.io` for a Backend.
    #[serde(default)]
    pub group: Option<String>,
    /// Kind, `Backend`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Name, unique in the route.
    pub name: String,
    /// Namespace (must be the route's).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Port.
    #[serde(default)]
    pub port: Option<u16>,
    /// Server path, default `/mcp`.
    #[serde(default)]
    pub path: Option<String>,
    /// Tool filter.
    #[serde(default)]
    pub tool_selector: Option<MCPToolFilter>,
    /// Upstream authentication.
    #[serde(default)]
    pub security_policy: Option<MCPBackendSecurityPolicy>,
    /// Client headers forwarded to this server.
    #[serde(default)]
    pub forward_headers: Vec<MCPHeaderForward>,
}

/// Tool include/exclude filter (exclude wins).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MCPToolFilter {
    /// Exact tool names to include.
    #[serde(default)]
    pub include: Option<Vec<String>>,
    /// RE2 patterns to include.
    #[serde(default)]
    pub include_regex: Option<Vec<String>>,
    /// Exact tool names to exclude.
    #[serde(default)]
    pub exclude: Option<Vec<String>>,
    /// RE2 patterns to exclude.
    #[serde(default)]
    pub exclude_regex: Option<Vec<String>>,
}

/// Upstream authentication of an MCP server: `apiKey`. (`tokenExchange` is read only to
/// be refused with a clear error: upstream v1.1 defines no such field.)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MCPBackendSecurityPolicy {
    /// API key injection.
    #[serde(default)]
    pub api_key: Option<MCPBackendAPIKey>,
    /// Not an upstream v1.1 field (a design proposal there); refused by validation.
    #[serde(default)]
    pub token_exchange: Option<Value>,
}

/// API key for an MCP server: exactly one of `secretRef`/`inline`, at most one of
/// `header`/`queryParam` (default `Authorization: Bearer`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MCPBackendAPIKey {
    /// Secret with key `apiKey`.
    #[serde(default)]
    pub secret_ref: Option<SecretObjectReference>,
    /// The key inline.
    #[serde(default)]
    pub inline: Option<String>,
    /// Header to carry the key.
    #[serde(default)]
    pub header: Option<String>,
    /// Query parameter to carry the key.
    #[serde(default)]
    pub query_param: Option<String>,
}

/// A forwarded client header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MCPHeaderForward {
    /// Client header name.
    pub name: String,
    /// Upstream header name, default the same.
    #[serde(default)]
    pub backend_header: Option<String>,
}

/// Route-level security.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MCPRouteSecurityPolicy {
    /// MCP-spec OAuth.
    #[serde(default)]
    pub oauth: Option<MCPRouteOAuth>,
    /// Envoy Gateway `APIKeyAuth`.
    #[serde(default)]
    pub api_key_auth: Option<ApiKeyAuth>,
    /// Envoy Gateway `ExtAuth`.
    #[serde(default)]
    pub ext_auth: Option<ExtAuth>,
    /// MCP authorization rules.
    #[serde(default)]
    pub authorization: Option<MCPRouteAuthorization>,
}

/// MCP-spec OAuth settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MCPRouteOAuth {
    /// Issuer URL.
    pub issuer: String,
    /// Allowed audiences.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// JWKS source (discovered from the issuer when unset).
    #[serde(default)]
    pub jwks: Option<MCPJwks>,
    /// RFC 9728 protected resource metadata.
    #[serde(default)]
    pub protected_resource_metadata: Option<ProtectedResourceMetadata>,
    /// Claims copied to backend headers.
    #[serde(default)]
    pub claim_to_headers: Vec<ClaimToHeader>,
}

/// `oauth.jwks`: exactly one of `remoteJWKS`, `localJWKS`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MCPJwks {
    /// Keys fetched from a URL.
    #[serde(default, rename = "remoteJWKS")]
    pub remote_jwks: Option<RemoteJwks>,
    /// Keys given in the route.
    #[serde(default, rename = "localJWKS")]
    pub local_jwks: Option<LocalJwks>,
}

/// RFC 9728 protected resource metadata served to MCP clients.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProtectedResourceMetadata {
    /// The resource identifier (the route's URL).
    pub resource: String,
    /// Human-readable name.
    #[serde(default)]
    pub resource_name: Option<String>,
    /// Scopes needed for basic use.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// JWS algorithms the resource accepts.
    #[serde(default)]
    pub resource_signing_alg_values_supported: Vec<String>,
    /// Documentation URL.
    #[serde(default)]
    pub resource_documentation: Option<String>,
    /// Policy URL.
    #[serde(default, rename = "resourcePolicyUri")]
    pub resource_policy_uri: Option<String>,
}

/// `securityPolicy.authorization`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MCPRouteAuthorization {
    /// `Allow` or `Deny` (default) when no rule matches.
    #[serde(default)]
    pub default_action: Option<String>,
    /// Rules, first match decides.
    #[serde(default)]
    pub rules: Vec<MCPRouteAuthorizationRule>,
}

/// One MCP authorization rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MCPRouteAuthorizationRule {
    /// Who (all when unset).
    #[serde(default)]
    pub source: Option<MCPAuthorizationSource>,
    /// Which tools (all when unset).
    #[serde(default)]
    pub target: Option<MCPAuthorizationTarget>,
    /// A CEL condition over the request.
    #[serde(default)]
    pub cel: Option<String>,
    /// `Allow` (default) or `Deny`.
    #[serde(default)]
    pub action: Option<String>,
}

/// `rules[].source`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MCPAuthorizationSource {
    /// Required JWT scopes and claims.
    pub jwt: MCPJwtSource,
}

/// `rules[].source.jwt`: scopes and claims, AND-ed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MCPJwtSource {
    /// Scopes that must all be present.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Claims that must match.
    #[serde(default)]
    pub claims: Vec<JwtClaim>,
}

/// `rules[].target`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MCPAuthorizationTarget {
    /// Tools the rule applies to.
    #[serde(default)]
    pub tools: Vec<MCPToolCall>,
}

/// A tool of a backend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MCPToolCall {
    /// The backendRef name.
    pub backend: String,
    /// The tool name.
    pub tool: String,
}
