//! Envoy Gateway `SecurityPolicy` (`gateway.envoyproxy.io/v1alpha1`) and the Envoy
//! Gateway authentication types MCPRoute and BackendSecurityPolicy embed.
//!
//! A gateway without Envoy honours `apiKeyAuth` and `jwt` itself. The other sections
//! (CORS, basic auth, OIDC, ext-auth, authorization) configure Envoy; they are typed
//! field for field, per Envoy Gateway's `api/v1alpha1`, so a misspelt field is
//! reported instead of silently ignored. Connection settings to an auth service
//! (`backendSettings`) stay as written: they are Envoy cluster settings.

use super::meta::{BackendObjectReference, PolicyTargetReference, SecretObjectReference};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `SecurityPolicy.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecurityPolicySpec {
    /// Targets (Gateway, HTTPRoute, …).
    #[serde(default)]
    pub target_refs: Vec<PolicyTargetReference>,
    /// Deprecated single target.
    #[serde(default)]
    pub target_ref: Option<PolicyTargetReference>,
    /// Targets chosen by label selector (kept as written; not resolved by aigw).
    #[serde(default)]
    pub target_selectors: Vec<Value>,
    /// Cross-origin resource sharing (configures Envoy).
    #[serde(default)]
    pub cors: Option<Cors>,
    /// HTTP basic authentication (configures Envoy).
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Static API keys.
    #[serde(default)]
    pub api_key_auth: Option<ApiKeyAuth>,
    /// JWT providers.
    #[serde(default)]
    pub jwt: Option<JwtAuth>,
    /// OpenID Connect login (configures Envoy).
    #[serde(default)]
    pub oidc: Option<Oidc>,
    /// External authorization service (configures Envoy).
    #[serde(default)]
    pub ext_auth: Option<ExtAuth>,
    /// Authorization rules (configures Envoy).
    #[serde(default)]
    pub authorization: Option<Authorization>,
}

impl SecurityPolicySpec {
    /// Every target, the deprecated `targetRef` included.
    pub fn targets(&self) -> impl Iterator<Item = &PolicyTargetReference> {
        self.target_refs.iter().chain(self.target_ref.iter())
    }
}

/// `cors`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cors {
    /// Allowed origins (`*`, `https://*.example.com`).
    #[serde(default)]
    pub allow_origins: Vec<String>,
    /// Allowed methods.
    #[serde(default)]
    pub allow_methods: Vec<String>,
    /// Allowed request headers.
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Response headers exposed to the browser.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Preflight cache duration (`600s`).
    #[serde(default)]
    pub max_age: Option<String>,
    /// Whether credentials are allowed.
    #[serde(default)]
    pub allow_credentials: Option<bool>,
}

/// `basicAuth`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BasicAuth {
    /// Secret with key `.htpasswd`.
    pub users: SecretObjectReference,
    /// Header to forward the authenticated user name in.
    #[serde(default)]
    pub forward_username_header: Option<String>,
}

/// `apiKeyAuth`: each key of each referenced Secret's data is a client id, its value
/// that client's key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiKeyAuth {
    /// Secrets holding the keys.
    #[serde(default)]
    pub credential_refs: Vec<SecretObjectReference>,
    /// Where the key is read from.
    #[serde(default)]
    pub extract_from: Vec<ExtractFrom>,
    /// Header to forward the client id in.
    #[serde(default, rename = "forwardClientIDHeader")]
    pub forward_client_id_header: Option<String>,
    /// Remove the key before forwarding.
    #[serde(default, alias = "sanitizeAPIKey")]
    pub sanitize: Option<bool>,
}

/// One `extractFrom` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExtractFrom {
    /// Header names.
    #[serde(default)]
    pub headers: Vec<String>,
    /// Query parameters.
    #[serde(default)]
    pub params: Vec<String>,
    /// Cookies.
    #[serde(default)]
    pub cookies: Vec<String>,
}

/// `jwt`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtAuth {
    /// Providers; a token verified by any of them is accepted.
    #[serde(default)]
    pub providers: Vec<JwtProvider>,
    /// Whether a request without a token is let through.
    #[serde(default)]
    pub optional: Option<bool>,
}

/// One `jwt.providers[]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtProvider {
    /// Provider name.
    #[serde(default)]
    pub name: String,
    /// Required `iss`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Accepted `aud` values.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Keys fetched from a URL.
    #[serde(default, rename = "remoteJWKS")]
    pub remote_jwks: Option<RemoteJwks>,
    /// Keys given in the policy.
    #[serde(default, rename = "localJWKS")]
    pub local_jwks: Option<LocalJwks>,
    /// Claims copied into request headers.
    #[serde(default)]
    pub claim_to_headers: Vec<ClaimToHeader>,
    /// Recompute the route after claims are copied into headers.
    #[serde(default)]
    pub recompute_route: Option<bool>,
    /// Where the token is read from (default `Authorization: Bearer`).
    #[serde(default)]
    pub extract_from: Option<JwtExtractor>,
}

/// `remoteJWKS`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RemoteJwks {
    /// The JWKS URL.
    pub uri: String,
    /// How long fetched keys are cached (default `300s`).
    #[serde(default)]
    pub cache_duration: Option<String>,
    /// Deprecated single backend of the JWKS server.
    #[serde(default)]
    pub backend_ref: Option<BackendObjectReference>,
    /// Backends of the JWKS server.
    #[serde(default)]
    pub backend_refs: Vec<EgBackendRef>,
    /// Envoy cluster settings for the JWKS server, kept as written.
    #[serde(default)]
    pub backend_settings: Option<Value>,
}

/// `localJWKS`: `type: Inline` with `inline`, or `type: ValueRef` naming a ConfigMap
/// whose `jwks` key holds the document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LocalJwks {
    /// `Inline` or `ValueRef`.
    #[serde(default, rename = "type")]
    pub jwks_type: Option<String>,
    /// The JWKS document.
    #[serde(default)]
    pub inline: Option<String>,
    /// A ConfigMap reference.
    #[serde(default)]
    pub value_ref: Option<LocalObjectRef>,
}

/// A local object reference (`group`, `kind`, `name`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LocalObjectRef {
    /// Group.
    #[serde(default)]
    pub group: Option<String>,
    /// Kind.
    #[serde(default)]
    pub kind: Option<String>,
    /// Name.
    pub name: String,
}

/// `claimToHeaders[]`: a JWT claim copied into a request header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimToHeader {
    /// The header to set.
    pub header: String,
    /// The claim (`sub`, or a nested `org.team`).
    pub claim: String,
}

/// `jwt.providers[].extractFrom`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtExtractor {
    /// Headers, with an optional value prefix to strip.
    #[serde(default)]
    pub headers: Vec<JwtHeaderExtractor>,
    /// Cookie names.
    #[serde(default)]
    pub cookies: Vec<String>,
    /// Query parameters.
    #[serde(default)]
    pub params: Vec<String>,
}

/// One header a JWT is read from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtHeaderExtractor {
    /// Header name.
    pub name: String,
    /// Prefix before the token, e.g. `Bearer `.
    #[serde(default)]
    pub value_prefix: Option<String>,
}

/// An Envoy Gateway `BackendRef`: a Service or Backend, with an optional fallback flag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EgBackendRef {
    /// Group (empty is the core group).
    #[serde(default)]
    pub group: Option<String>,
    /// Kind, default `Service`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Name.
    pub name: String,
    /// Namespace, default the referrer's.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Port.
    #[serde(default)]
    pub port: Option<u16>,
    /// Weight.
    #[serde(default)]
    pub weight: Option<u32>,
    /// Used only when the others are unhealthy.
    #[serde(default)]
    pub fallback: Option<bool>,
}

/// Envoy Gateway `OIDC`: login with an OpenID Connect provider. Also the `oidc` of a
/// BackendSecurityPolicy's `oidcExchangeToken`, where the client credentials obtain
/// the token to exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Oidc {
    /// The provider.
    pub provider: OidcProvider,
    /// Client id.
    #[serde(default, rename = "clientID", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Client id from a Secret (key `client-id`), instead of `clientID`.
    #[serde(
        default,
        rename = "clientIDRef",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_id_ref: Option<SecretObjectReference>,
    /// Secret with key `client-secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretObjectReference>,
    /// Cookie name overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_names: Option<OidcCookieNames>,
    /// Cookie attribute overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_config: Option<OidcCookieConfig>,
    /// Domain the token cookies are set on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_domain: Option<String>,
    /// Scopes (`openid` is always added).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Resource indicators.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Redirect URL.
    #[serde(
        default,
        rename = "redirectURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub redirect_url: Option<String>,
    /// Requests never redirected to the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_redirect: Option<OidcDenyRedirect>,
    /// Logout path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logout_path: Option<String>,
    /// Forward the access token upstream as a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_access_token: Option<bool>,
    /// Token lifetime when the provider does not say.
    #[serde(
        default,
        rename = "defaultTokenTTL",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_token_ttl: Option<String>,
    /// Refresh tokens before they expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<bool>,
    /// Refresh token lifetime when the token does not say.
    #[serde(
        default,
        rename = "defaultRefreshTokenTTL",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_refresh_token_ttl: Option<String>,
    /// Skip the login flow for requests that carry a token already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_through_auth_header: Option<bool>,
    /// Store tokens in cookies unencrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_token_encryption: Option<bool>,
    /// CSRF token lifetime.
    #[serde(
        default,
        rename = "csrfTokenTTL",
        skip_serializing_if = "Option::is_none"
    )]
    pub csrf_token_ttl: Option<String>,
}

/// `oidc.provider`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OidcProvider {
    /// Issuer URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Authorization endpoint (discovered from the issuer when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// Token endpoint (discovered from the issuer when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// End-session endpoint for RP-initiated logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    /// Deprecated single backend of the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<BackendObjectReference>,
    /// Backends of the provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_refs: Vec<EgBackendRef>,
    /// Envoy cluster settings for the provider, kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_settings: Option<Value>,
}

/// `oidc.cookieNames`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OidcCookieNames {
    /// Access token cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// ID token cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// `oidc.cookieConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OidcCookieConfig {
    /// `Lax`, `Strict` (default), `None` or `Disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_site: Option<String>,
}

/// `oidc.denyRedirect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OidcDenyRedirect {
    /// Header matches.
    #[serde(default)]
    pub headers: Vec<OidcDenyRedirectHeader>,
}

/// One `denyRedirect.headers[]` match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OidcDenyRedirectHeader {
    /// Header name.
    pub name: String,
    /// `Exact` (default), `Prefix`, `Suffix` or `RegularExpression`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub match_type: Option<String>,
    /// The value or pattern.
    pub value: String,
}

/// `extAuth`: exactly one of `grpc`, `http`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExtAuth {
    /// gRPC authorization service.
    #[serde(default)]
    pub grpc: Option<GrpcExtAuthService>,
    /// HTTP authorization service.
    #[serde(default)]
    pub http: Option<HttpExtAuthService>,
    /// Client headers sent to the service.
    #[serde(default)]
    pub headers_to_ext_auth: Vec<String>,
    /// Request body sent to the service.
    #[serde(default)]
    pub body_to_ext_auth: Option<BodyToExtAuth>,
    /// Call timeout (default `10s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Let requests through when the service cannot be reached.
    #[serde(default)]
    pub fail_open: Option<bool>,
    /// Recompute the route after the service's header changes.
    #[serde(default)]
    pub recompute_route: Option<bool>,
    /// Context extensions sent to the service, kept as written.
    #[serde(default)]
    pub context_extensions: Vec<Value>,
    /// Envoy Gateway's metadata of the matched route sent to the service (namespace
    /// `envoy-gateway`).
    #[serde(default)]
    pub include_route_metadata: Option<bool>,
    /// Status answered when the service fails or cannot be reached (default 403).
    #[serde(default)]
    pub status_on_error: Option<i32>,
}

/// `extAuth.grpc`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrpcExtAuthService {
    /// Deprecated single backend.
    #[serde(default)]
    pub backend_ref: Option<BackendObjectReference>,
    /// Backends.
    #[serde(default)]
    pub backend_refs: Vec<EgBackendRef>,
    /// Envoy cluster settings, kept as written.
    #[serde(default)]
    pub backend_settings: Option<Value>,
}

/// `extAuth.http`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpExtAuthService {
    /// Deprecated single backend.
    #[serde(default)]
    pub backend_ref: Option<BackendObjectReference>,
    /// Backends.
    #[serde(default)]
    pub backend_refs: Vec<EgBackendRef>,
    /// Envoy cluster settings, kept as written.
    #[serde(default)]
    pub backend_settings: Option<Value>,
    /// Path prefix of the authorization request.
    #[serde(default)]
    pub path: Option<String>,
    /// Response headers of the service copied to the upstream request.
    #[serde(default)]
    pub headers_to_backend: Vec<String>,
}

/// `extAuth.bodyToExtAuth`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BodyToExtAuth {
    /// Largest body buffered for the service.
    pub max_request_bytes: u32,
}

/// `authorization`: rules evaluated in order, the first match decides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Authorization {
    /// Rules.
    #[serde(default)]
    pub rules: Vec<AuthorizationRule>,
    /// `Allow` or `Deny` (default) when no rule matches.
    #[serde(default)]
    pub default_action: Option<String>,
}

/// One `authorization.rules[]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthorizationRule {
    /// Rule name.
    #[serde(default)]
    pub name: Option<String>,
    /// `Allow` or `Deny`.
    pub action: String,
    /// Methods matched (all when unset).
    #[serde(default)]
    pub operation: Option<AuthorizationOperation>,
    /// Who the client is; every principal given must match.
    pub principal: AuthorizationPrincipal,
}

/// `authorization.rules[].operation`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthorizationOperation {
    /// HTTP methods.
    #[serde(default)]
    pub methods: Vec<String>,
}

/// `authorization.rules[].principal`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthorizationPrincipal {
    /// Client address ranges.
    #[serde(default, rename = "clientCIDRs")]
    pub client_cidrs: Vec<String>,
    /// JWT claims and scopes.
    #[serde(default)]
    pub jwt: Option<JwtPrincipal>,
    /// Identity headers.
    #[serde(default)]
    pub headers: Vec<AuthorizationHeaderMatch>,
}

/// `principal.jwt`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtPrincipal {
    /// The JWT provider (of the same policy) that verified the token.
    pub provider: String,
    /// Claims that must match.
    #[serde(default)]
    pub claims: Vec<JwtClaim>,
    /// Scopes that must be present.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// A JWT claim match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtClaim {
    /// Claim name (nested with dots).
    pub name: String,
    /// `String` (default) or `StringArray`.
    #[serde(default)]
    pub value_type: Option<String>,
    /// Accepted values.
    #[serde(default)]
    pub values: Vec<String>,
}

/// `principal.headers[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthorizationHeaderMatch {
    /// Header name.
    pub name: String,
    /// Accepted values.
    #[serde(default)]
    pub values: Vec<String>,
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn security_policy_api_keys_and_jwt_are_typed() {
        let yaml = r#"apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata:
  name: client-auth
  namespace: default
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: Gateway
      name: aigw
  cors:
    allowOrigins: ["*"]
  apiKeyAuth:
    credentialRefs:
      - name: client-keys
    extractFrom:
      - headers: ["x-client-key"]
  jwt:
    providers:
      - name: idp
        issuer: https://issuer.example
        audiences: [aigw]
        remoteJWKS:
          uri: https://issuer.example/jwks.json
      - name: local
        localJWKS:
          type: Inline
          inline: '{"keys":[]}'
"#;
        let c = Config::from_yaml_str(yaml, "t.yaml").unwrap();
        assert!(c.ignored.is_empty(), "{:?}", c.ignored);
        let p = &c.envoy_security_policies[0];
        assert_eq!(p.metadata.name, "client-auth");
        assert_eq!(p.spec.targets().next().unwrap().kind, "Gateway");
        let keys = p.spec.api_key_auth.as_ref().unwrap();
        assert_eq!(keys.credential_refs[0].name, "client-keys");
        assert_eq!(keys.extract_from[0].headers, ["x-client-key"]);
        let jwt = p.spec.jwt.as_ref().unwrap();
        assert_eq!(
            jwt.providers[0].issuer.as_deref(),
            Some("https://issuer.example")
        );
        assert_eq!(jwt.providers[0].audiences, ["aigw"]);
        assert_eq!(
            jwt.providers[0].remote_jwks.as_ref().unwrap().uri,
            "https://issuer.example/jwks.json"
        );
        assert_eq!(
            jwt.providers[1]
                .local_jwks
                .as_ref()
                .unwrap()
                .inline
                .as_deref(),
            Some("{\"keys\":[]}")
        );
    }
}
