//! The API server's half of validation: the upstream CRDs' OpenAPI constraints,
//! defaults and CEL rules, attached to the configuration types they constrain.
//!
//! The types (fields, names, nesting, enums, required fields) come from `aigw-core`;
//! this table adds what a Rust type cannot say. Rules are keyed by type, so a type used
//! by several kinds (a `ParentReference`, a header mutation) carries the same rules
//! everywhere, as in the upstream Go types. Limits the loader also enforces come from
//! the core's constants, so both sides move together.

use aigw_core::config::{
    DEFAULT_MCP_PATH, DEFAULT_MODELS_OWNED_BY, MAX_BACKEND_REFS, MAX_COSTS, MAX_HEADER_MATCHES,
    MAX_MATCHES, MAX_MCP_BACKENDS, MAX_MUTATIONS, MAX_PARENT_REFS, MAX_RULES, MAX_TOOL_SELECTORS,
    RESERVED_RULE_NAME,
};
use serde_json::{Value, json};

/// What a rule does to the node it names.
#[derive(Debug, Clone)]
pub enum Action {
    /// Merge these keys (constraints, defaults, `x-kubernetes-*`) into the node.
    Add(Value),
    /// Replace the node (a free-form value whose upstream schema is a known shape).
    Replace(Value),
    /// Drop the field from the CRD: the loader reads it from manifests of older releases,
    /// but no served version of the upstream API has it, so a cluster cannot hold it.
    Omit,
}

/// One rule: `field` of type `ty` (`""` for the type itself, `f[]` for the items of a
/// list field `f`, `f{}` for the values of a map field `f`).
#[derive(Debug, Clone)]
pub struct Rule {
    /// The schemars name of the Rust type.
    pub ty: &'static str,
    /// The field (serialized name), with the suffixes above.
    pub field: &'static str,
    /// What to do.
    pub action: Action,
}

fn add(ty: &'static str, field: &'static str, v: Value) -> Rule {
    Rule {
        ty,
        field,
        action: Action::Add(v),
    }
}

fn omit(ty: &'static str, field: &'static str) -> Rule {
    Rule {
        ty,
        field,
        action: Action::Omit,
    }
}

fn replace(ty: &'static str, field: &'static str, v: Value) -> Rule {
    Rule {
        ty,
        field,
        action: Action::Replace(v),
    }
}

fn cel(rule: &str, message: &str) -> Value {
    json!({ "rule": rule, "message": message })
}

const GROUP: &str = r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const KIND: &str = r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$";
const OPTIONAL_KIND: &str = r"^$|^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$";
const NAMESPACE: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
const SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const HOSTNAME: &str = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const HEADER_NAME: &str = r"^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$";
const DURATION: &str = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$";

fn group(default: Option<&str>) -> Value {
    let mut v = json!({ "maxLength": 253, "pattern": GROUP });
    if let Some(d) = default {
        v["default"] = json!(d);
    }
    v
}

fn kind(default: Option<&str>) -> Value {
    let mut v = json!({ "maxLength": 63, "minLength": 1, "pattern": KIND });
    if let Some(d) = default {
        v["default"] = json!(d);
    }
    v
}

fn object_name() -> Value {
    json!({ "maxLength": 253, "minLength": 1 })
}

fn namespace() -> Value {
    json!({ "maxLength": 63, "minLength": 1, "pattern": NAMESPACE })
}

fn port() -> Value {
    json!({ "minimum": 1, "maximum": 65535 })
}

fn non_empty() -> Value {
    json!({ "minLength": 1 })
}

fn max_items(n: usize) -> Value {
    json!({ "maxItems": n })
}

fn required(fields: &[&str]) -> Value {
    json!({ "required": fields })
}

fn map_list(key: &str, max: Option<usize>) -> Value {
    let mut v = json!({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key] });
    if let Some(m) = max {
        v["maxItems"] = json!(m);
    }
    v
}

fn set_list(max: usize) -> Value {
    json!({ "x-kubernetes-list-type": "set", "maxItems": max })
}

/// Every rule, in the order of the types' files in `aigw-core`.
pub fn rules() -> Vec<Rule> {
    let mut r = Vec::new();
    r.extend(gateway_api_rules());
    r.extend(route_rules());
    r.extend(backend_rules());
    r.extend(security_policy_rules());
    r.extend(gateway_config_rules());
    r.extend(quota_rules());
    r.extend(mcp_rules());
    r.extend(envoy_gateway_rules());
    r.extend(free_form_rules());
    r
}

/// Gateway API building blocks, with the constraints of their upstream definitions.
fn gateway_api_rules() -> Vec<Rule> {
    vec![
        add(
            "ParentReference",
            "group",
            group(Some("gateway.networking.k8s.io")),
        ),
        add("ParentReference", "kind", kind(Some("Gateway"))),
        add("ParentReference", "name", object_name()),
        add("ParentReference", "namespace", namespace()),
        add("ParentReference", "port", port()),
        add(
            "ParentReference",
            "sectionName",
            json!({ "maxLength": 253, "minLength": 1, "pattern": SUBDOMAIN }),
        ),
        add(
            "BackendObjectReference",
            "",
            json!({ "x-kubernetes-validations": [
                cel("(size(self.group) == 0 && self.kind == 'Service') ? has(self.port) : true", "Must have port for Service reference"),
            ]}),
        ),
        add("BackendObjectReference", "group", group(Some(""))),
        add("BackendObjectReference", "kind", kind(Some("Service"))),
        add("BackendObjectReference", "name", object_name()),
        add("BackendObjectReference", "namespace", namespace()),
        add("BackendObjectReference", "port", port()),
        add("SecretObjectReference", "group", group(Some(""))),
        add("SecretObjectReference", "kind", kind(Some("Secret"))),
        add("SecretObjectReference", "name", object_name()),
        add("SecretObjectReference", "namespace", namespace()),
        add(
            "PolicyTargetReference",
            "",
            required(&["group", "kind", "name"]),
        ),
        add("PolicyTargetReference", "group", group(None)),
        add("PolicyTargetReference", "kind", kind(None)),
        add("PolicyTargetReference", "name", object_name()),
        omit("PolicyTargetReference", "sectionName"),
        add(
            "HttpHeaderMatch",
            "name",
            json!({ "maxLength": 256, "minLength": 1, "pattern": HEADER_NAME }),
        ),
        add(
            "HttpHeaderMatch",
            "value",
            json!({ "maxLength": 4096, "minLength": 1 }),
        ),
        add("HttpHeaderMatch", "type", json!({ "default": "Exact" })),
        add(
            "HttpHeader",
            "name",
            json!({ "maxLength": 256, "minLength": 1, "pattern": HEADER_NAME }),
        ),
        add(
            "HttpHeader",
            "value",
            json!({ "maxLength": 4096, "minLength": 1 }),
        ),
        add(
            "HttpRouteTimeouts",
            "",
            json!({ "x-kubernetes-validations": [cel(
                "!(has(self.request) && has(self.backendRequest) && duration(self.request) != duration('0s') && duration(self.backendRequest) > duration(self.request))",
                "backendRequest timeout cannot be longer than request timeout",
            )]}),
        ),
        add(
            "HttpRouteTimeouts",
            "request",
            json!({ "pattern": DURATION }),
        ),
        add(
            "HttpRouteTimeouts",
            "backendRequest",
            json!({ "pattern": DURATION }),
        ),
    ]
}

fn route_rules() -> Vec<Rule> {
    let reserved = format!("!has(self.name) || self.name != '{RESERVED_RULE_NAME}'");
    vec![
        add("AIGatewayRouteSpec", "", required(&["rules"])),
        add(
            "AIGatewayRouteSpec",
            "parentRefs",
            json!({ "maxItems": MAX_PARENT_REFS, "x-kubernetes-validations": [
                cel("self.all(match, match.kind == 'Gateway')", "only Gateway is supported"),
            ]}),
        ),
        add(
            "AIGatewayRouteSpec",
            "hostnames",
            max_items(MAX_PARENT_REFS),
        ),
        add(
            "AIGatewayRouteSpec",
            "hostnames[]",
            json!({ "maxLength": 253, "minLength": 1, "pattern": HOSTNAME }),
        ),
        add(
            "AIGatewayRouteSpec",
            "rules",
            json!({ "maxItems": MAX_RULES, "x-kubernetes-validations": [
                cel("self.all(r1, !has(r1.name) || self.exists_one(r2, has(r2.name) && r1.name == r2.name))", "rule name must be unique within the route"),
            ]}),
        ),
        add(
            "AIGatewayRouteSpec",
            "llmRequestCosts",
            max_items(MAX_COSTS),
        ),
        omit("AIGatewayRouteSpec", "rateLimitsFromHeaders"),
        omit("AIGatewayRouteSpec", "schema"),
        omit("AIGatewayRouteSpec", "targetRefs"),
        omit("AIGatewayRouteSpec", "filterConfig"),
        add(
            "AIGatewayRouteRule",
            "",
            json!({ "x-kubernetes-validations": [
                cel(&reserved, &format!("rule name {RESERVED_RULE_NAME} is reserved")),
                cel("!has(self.backendRefs) || size(self.backendRefs) == 0 || (self.backendRefs.all(ref, !has(ref.group) && !has(ref.kind)) || self.backendRefs.all(ref, has(ref.group) && has(ref.kind)))",
                    "cannot mix InferencePool and AIServiceBackend references in the same rule"),
                cel("!has(self.backendRefs) || size(self.backendRefs) == 0 || !self.backendRefs.exists(ref, has(ref.group) && has(ref.kind)) || size(self.backendRefs) == 1",
                    "only one InferencePool backend is allowed per rule"),
            ]}),
        ),
        add(
            "AIGatewayRouteRule",
            "name",
            json!({ "maxLength": 253, "minLength": 1, "pattern": SUBDOMAIN }),
        ),
        add(
            "AIGatewayRouteRule",
            "backendRefs",
            max_items(MAX_BACKEND_REFS),
        ),
        add("AIGatewayRouteRule", "matches", max_items(MAX_MATCHES)),
        add(
            "AIGatewayRouteRule",
            "streamIdleTimeout",
            json!({ "pattern": DURATION }),
        ),
        add(
            "AIGatewayRouteRule",
            "modelsOwnedBy",
            json!({ "default": DEFAULT_MODELS_OWNED_BY }),
        ),
        add(
            "AIGatewayRouteRule",
            "modelsCreatedAt",
            json!({ "format": "date-time" }),
        ),
        add(
            "AIGatewayRouteRuleMatch",
            "headers",
            map_list("name", Some(MAX_HEADER_MATCHES)),
        ),
        add(
            "AIGatewayRouteRuleBackendRef",
            "",
            json!({ "x-kubernetes-validations": [
                cel("!has(self.group) && !has(self.kind) || (has(self.group) && has(self.kind))", "group and kind must be specified together"),
                cel("!has(self.group) || (self.group == 'inference.networking.k8s.io' && self.kind == 'InferencePool')",
                    "only InferencePool from inference.networking.k8s.io group is supported"),
            ]}),
        ),
        add("AIGatewayRouteRuleBackendRef", "name", non_empty()),
        add("AIGatewayRouteRuleBackendRef", "namespace", namespace()),
        add(
            "AIGatewayRouteRuleBackendRef",
            "group",
            json!({ "maxLength": 253, "pattern": GROUP }),
        ),
        add(
            "AIGatewayRouteRuleBackendRef",
            "kind",
            json!({ "maxLength": 63, "pattern": OPTIONAL_KIND }),
        ),
        add(
            "AIGatewayRouteRuleBackendRef",
            "weight",
            json!({ "default": 1, "minimum": 0, "format": "int32" }),
        ),
        add(
            "AIGatewayRouteRuleBackendRef",
            "priority",
            json!({ "default": 0, "minimum": 0, "format": "int32" }),
        ),
        add(
            "HttpHeaderMutation",
            "set",
            map_list("name", Some(MAX_MUTATIONS)),
        ),
        add("HttpHeaderMutation", "remove", set_list(MAX_MUTATIONS)),
        add(
            "HttpBodyMutation",
            "set",
            map_list("path", Some(MAX_MUTATIONS)),
        ),
        add("HttpBodyMutation", "remove", set_list(MAX_MUTATIONS)),
        add("HttpBodyField", "path", non_empty()),
        add("LlmRequestCost", "", required(&["metadataKey", "type"])),
    ]
}

fn backend_rules() -> Vec<Rule> {
    vec![
        add(
            "AIServiceBackendSpec",
            "backendRef",
            json!({ "x-kubernetes-validations": [
                cel("has(self.kind) && self.kind == 'Backend' && has(self.group) && self.group == 'gateway.envoyproxy.io'",
                    "BackendRef must be a Backend resource of Envoy Gateway. See https://github.com/envoyproxy/ai-gateway/issues/902 for more details."),
            ]}),
        ),
        // `timeouts` (used by upstream's own examples) and the v1alpha1
        // `backendSecurityPolicyRef` are honoured by the gateway, so the CRD keeps them;
        // `responseBodyMutation` is read by no packaging yet.
        omit("AIServiceBackendSpec", "responseBodyMutation"),
    ]
}

fn security_policy_rules() -> Vec<Rule> {
    let types = [
        ("APIKey", "apiKey"),
        ("AWSCredentials", "awsCredentials"),
        ("AzureAPIKey", "azureAPIKey"),
        ("AzureCredentials", "azureCredentials"),
        ("GCPCredentials", "gcpCredentials"),
        ("AnthropicAPIKey", "anthropicAPIKey"),
    ];
    // "When type is X, only x should be set": the field of the type present, every
    // other credential field absent.
    let one_of: Vec<Value> = types
        .iter()
        .map(|(ty, field)| {
            let others: Vec<String> = types
                .iter()
                .filter(|(_, f)| f != field)
                .map(|(_, f)| format!("!has(self.{f})"))
                .collect();
            cel(
                &format!(
                    "self.type == '{ty}' ? (has(self.{field}) && {}) : true",
                    others.join(" && ")
                ),
                &format!("When type is {ty}, only {field} field should be set"),
            )
        })
        .collect();
    vec![
        add(
            "BackendSecurityPolicySpec",
            "",
            json!({ "maxProperties": 4, "x-kubernetes-validations": one_of }),
        ),
        add(
            "BackendSecurityPolicySpec",
            "targetRefs",
            json!({ "maxItems": 16, "x-kubernetes-validations": [cel(
                "self.all(ref, (ref.group == 'aigateway.envoyproxy.io' && ref.kind == 'AIServiceBackend') || (ref.group == 'inference.networking.k8s.io' && ref.kind == 'InferencePool'))",
                "targetRefs must reference AIServiceBackend or InferencePool resources",
            )]}),
        ),
        add("AwsCredentials", "", required(&["region"])),
        add("AwsCredentials", "region", non_empty()),
        add(
            "AwsCredentialsFile",
            "profile",
            json!({ "default": "default" }),
        ),
        add("OidcExchangeToken", "awsRoleArn", non_empty()),
        add(
            "AwsCredentials",
            "oidcExchangeToken",
            required(&["awsRoleArn", "oidc"]),
        ),
        add(
            "AzureCredentials",
            "",
            json!({ "required": ["clientID", "tenantID"], "x-kubernetes-validations": [cel(
                "(has(self.clientSecretRef) && !has(self.oidcExchangeToken)) || (!has(self.clientSecretRef) && has(self.oidcExchangeToken))",
                "Exactly one of clientSecretRef or oidcExchangeToken must be specified",
            )]}),
        ),
        add("AzureCredentials", "clientID", non_empty()),
        add("AzureCredentials", "tenantID", non_empty()),
        add(
            "GcpCredentials",
            "",
            json!({ "required": ["projectName", "region"], "x-kubernetes-validations": [cel(
                "!(has(self.credentialsFile) && has(self.workloadIdentityFederationConfig))",
                "At most one of credentialsFile or workloadIdentityFederationConfig may be specified",
            )]}),
        ),
        add("GcpCredentials", "projectName", non_empty()),
        add("GcpCredentials", "region", non_empty()),
        add("GcpWorkloadIdentityFederation", "projectID", non_empty()),
        add(
            "GcpWorkloadIdentityFederation",
            "workloadIdentityPoolName",
            non_empty(),
        ),
        add(
            "GcpWorkloadIdentityFederation",
            "workloadIdentityProviderName",
            non_empty(),
        ),
        add(
            "GcpServiceAccountImpersonation",
            "serviceAccountName",
            non_empty(),
        ),
        add(
            "CredentialOverride",
            "",
            json!({ "minProperties": 1, "maxProperties": 1 }),
        ),
        add(
            "CredentialOverrideFromHeaders",
            "fallbackToConfigured",
            json!({ "default": true }),
        ),
        add(
            "CredentialOverrideFromMetadata",
            "fallbackToConfigured",
            json!({ "default": true }),
        ),
        add("CredentialOverrideFromMetadata", "namespace", non_empty()),
        add(
            "Oidc",
            "",
            json!({ "x-kubernetes-validations": [
                cel("(has(self.clientID) && !has(self.clientIDRef)) || (!has(self.clientID) && has(self.clientIDRef))", "only one of clientID or clientIDRef must be set"),
                cel("!(has(self.forwardAccessToken) && self.forwardAccessToken && has(self.forwardIDToken) && self.forwardIDToken.header.lowerAscii() == 'authorization')",
                    "forwardAccessToken cannot be true when forwardIDToken.header is Authorization"),
            ]}),
        ),
    ]
}

fn gateway_config_rules() -> Vec<Rule> {
    vec![
        add(
            "GatewayConfigSpec",
            "globalLLMRequestCosts",
            map_list("metadataKey", None),
        ),
        omit("GatewayConfigSpec", "globalRateLimitsFromHeaders"),
        add(
            "KubernetesContainerSpec",
            "",
            json!({ "x-kubernetes-validations": [
                cel("!has(self.image) || !has(self.imageRepository)", "Either image or imageRepository can be set."),
            ]}),
        ),
        add(
            "KubernetesContainerSpec",
            "image",
            json!({ "x-kubernetes-validations": [cel(
                "self.matches('^[a-zA-Z0-9._-]+(:[0-9]+)?(/[a-zA-Z0-9._/-]+)?(:[a-zA-Z0-9._-]+)?(@sha256:[a-z0-9]+)?$')",
                "Image must include a tag and allowed characters only (e.g., 'repo:tag').",
            )]}),
        ),
        add(
            "KubernetesContainerSpec",
            "imageRepository",
            json!({ "x-kubernetes-validations": [cel(
                "self.matches('^[a-zA-Z0-9._-]+(:[0-9]+)?[a-zA-Z0-9._/-]+$')",
                "ImageRepository must contain only allowed characters and must not include a tag.",
            )]}),
        ),
        add("ForwardProxy", "address", non_empty()),
    ]
}

fn quota_rules() -> Vec<Rule> {
    vec![
        add(
            "QuotaPolicySpec",
            "targetRefs",
            json!({ "maxItems": 16, "x-kubernetes-validations": [cel(
                "self.all(ref, ref.group == 'aigateway.envoyproxy.io' && ref.kind == 'AIServiceBackend')",
                "targetRefs must reference AIServiceBackend resources",
            )]}),
        ),
        add("QuotaPolicySpec", "perModelQuotas", max_items(128)),
        add("PerModelQuota", "modelName", non_empty()),
        add(
            "QuotaValue",
            "duration",
            json!({ "enum": ["1s", "1m", "1h", "1d"] }),
        ),
        add(
            "ModelQuota",
            "mode",
            json!({ "default": "Shared", "enum": ["Shared"] }),
        ),
    ]
}

/// Envoy Gateway types embedded in the AI kinds (OIDC, JWKS, backend references), with
/// the constraints of their Envoy Gateway definitions.
fn envoy_gateway_rules() -> Vec<Rule> {
    let provider_rules = json!({ "x-kubernetes-validations": [
        cel("!has(self.backendRef)", "BackendRefs must be used, backendRef is not supported."),
        cel("has(self.backendSettings)? (has(self.backendSettings.retry)?(has(self.backendSettings.retry.perRetry)? !has(self.backendSettings.retry.perRetry.timeout):true):true):true",
            "Retry timeout is not supported."),
        cel("has(self.backendSettings)? (has(self.backendSettings.retry)?(has(self.backendSettings.retry.retryOn)? !has(self.backendSettings.retry.retryOn.httpStatusCodes):true):true):true",
            "HTTPStatusCodes is not supported."),
    ]});
    let settings = backend_settings();
    vec![
        add("Oidc", "", required(&["clientSecret", "provider"])),
        add("Oidc", "clientID", non_empty()),
        add(
            "Oidc",
            "cookieDomain",
            json!({ "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9]))*$" }),
        ),
        add("Oidc", "csrfTokenTTL", json!({ "pattern": DURATION })),
        add("Oidc", "defaultTokenTTL", json!({ "pattern": DURATION })),
        add(
            "Oidc",
            "defaultRefreshTokenTTL",
            json!({ "pattern": DURATION }),
        ),
        add("Oidc", "refreshToken", json!({ "default": true })),
        add(
            "OidcCookieConfig",
            "sameSite",
            json!({ "enum": ["Lax", "Strict", "None"] }),
        ),
        add("OidcDenyRedirect", "", required(&["headers"])),
        add(
            "OidcDenyRedirect",
            "headers",
            json!({ "minItems": 1, "maxItems": 16 }),
        ),
        add("OidcDenyRedirectHeader", "name", non_empty()),
        add(
            "OidcDenyRedirectHeader",
            "value",
            json!({ "minLength": 1, "maxLength": 1024 }),
        ),
        add(
            "OidcDenyRedirectHeader",
            "type",
            json!({ "default": "Exact", "enum": ["Exact", "Prefix", "Suffix", "RegularExpression"] }),
        ),
        add("OidcProvider", "", provider_rules.clone()),
        add("OidcProvider", "", required(&["issuer"])),
        add("OidcProvider", "issuer", non_empty()),
        add("OidcProvider", "backendRefs", max_items(16)),
        add("OidcProvider", "backendSettings", settings.clone()),
        add("RemoteJwks", "", provider_rules),
        add(
            "RemoteJwks",
            "uri",
            json!({ "minLength": 1, "maxLength": 253 }),
        ),
        add(
            "RemoteJwks",
            "cacheDuration",
            json!({ "default": "300s", "pattern": DURATION }),
        ),
        add("RemoteJwks", "backendRefs", max_items(16)),
        add("RemoteJwks", "backendSettings", settings),
        add(
            "EgBackendRef",
            "",
            json!({ "x-kubernetes-validations": [
                cel("(size(self.group) == 0 && self.kind == 'Service') ? has(self.port) : true", "Must have port for Service reference"),
            ]}),
        ),
        add("EgBackendRef", "group", group(Some(""))),
        add("EgBackendRef", "kind", kind(Some("Service"))),
        add("EgBackendRef", "name", object_name()),
        add("EgBackendRef", "namespace", namespace()),
        add("EgBackendRef", "port", port()),
        add(
            "EgBackendRef",
            "weight",
            json!({ "default": 1, "minimum": 0, "maximum": 1_000_000 }),
        ),
        add(
            "LocalJwks",
            "",
            json!({ "required": ["type"], "x-kubernetes-validations": [cel(
                "(self.type == 'Inline' && has(self.inline) && !has(self.valueRef)) || (self.type == 'ValueRef' && !has(self.inline) && has(self.valueRef))",
                "Exactly one of inline or valueRef must be set with correct type.",
            )]}),
        ),
        add(
            "LocalJwks",
            "type",
            json!({ "default": "Inline", "enum": ["Inline", "ValueRef"] }),
        ),
        add(
            "ExtAuth",
            "",
            json!({ "x-kubernetes-validations": [
                cel("(has(self.grpc) || has(self.http))", "one of grpc or http must be specified"),
                cel("(has(self.grpc) && !has(self.http)) || (!has(self.grpc) && has(self.http))", "only one of grpc or http can be specified"),
            ]}),
        ),
        add("ExtAuth", "timeout", json!({ "pattern": DURATION })),
        add("ExtAuth", "failOpen", json!({ "default": false })),
        add(
            "ExtAuth",
            "statusOnError",
            json!({ "enum": [
                400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415,
                416, 417, 421, 422, 423, 424, 426, 428, 429, 431, 500, 501, 502, 503, 504, 505,
                506, 507, 508, 510, 511
            ] }),
        ),
        add("BodyToExtAuth", "maxRequestBytes", json!({ "minimum": 1 })),
        add(
            "ApiKeyAuth",
            "",
            required(&["credentialRefs", "extractFrom"]),
        ),
        add("GrpcExtAuthService", "", ext_auth_service(false)),
        add("GrpcExtAuthService", "backendRefs", max_items(16)),
        add("GrpcExtAuthService", "backendSettings", backend_settings()),
        add("HttpExtAuthService", "", ext_auth_service(true)),
        add("HttpExtAuthService", "backendRefs", max_items(16)),
        add("HttpExtAuthService", "backendSettings", backend_settings()),
        add("JwtClaim", "", required(&["name", "values"])),
        add(
            "JwtClaim",
            "name",
            json!({ "minLength": 1, "maxLength": 253 }),
        ),
        add(
            "JwtClaim",
            "valueType",
            json!({ "default": "String", "enum": ["String", "StringArray"] }),
        ),
        add(
            "JwtClaim",
            "values",
            json!({ "minItems": 1, "maxItems": 128 }),
        ),
        add("LocalObjectRef", "", required(&["group", "kind", "name"])),
        add("LocalObjectRef", "group", group(None)),
        add("LocalObjectRef", "kind", kind(None)),
        add("LocalObjectRef", "name", object_name()),
    ]
}

/// Envoy Gateway `ClusterSettings`, kept as written.
fn backend_settings() -> Value {
    json!({ "type": "object", "x-kubernetes-validations": [cel(
        "!((has(self.connection) && has(self.connection.preconnect) && has(self.connection.preconnect.predictivePercent)) && !(has(self.loadBalancer) && has(self.loadBalancer.type) && self.loadBalancer.type in ['Random', 'RoundRobin']))",
        "predictivePercent in preconnect policy only works with RoundRobin or Random load balancers",
    )]})
}

fn ext_auth_service(http: bool) -> Value {
    let mut rules = vec![
        cel(
            "has(self.backendRef) || self.backendRefs.size() > 0",
            "backendRef or backendRefs needs to be set",
        ),
        cel(
            "has(self.backendRefs) ? self.backendRefs.all(f, f.kind == 'Service' || f.kind == 'ServiceImport' || f.kind == 'Backend') : true",
            "BackendRefs only supports Service, ServiceImport, and Backend kind.",
        ),
        cel(
            "has(self.backendRefs) ? (self.backendRefs.all(f, f.group == \"\" || f.group == 'multicluster.x-k8s.io' || f.group == 'gateway.envoyproxy.io')) : true",
            "BackendRefs only supports Core, multicluster.x-k8s.io, and gateway.envoyproxy.io groups.",
        ),
    ];
    if http {
        rules.insert(
            0,
            cel(
                "!(has(self.path) && has(self.pathOverride))",
                "only one of path or pathOverride can be specified",
            ),
        );
    }
    json!({ "x-kubernetes-validations": rules })
}

/// Kubernetes core sub-objects the loader keeps as written: typed as objects here, with
/// their content preserved.
fn free_form_rules() -> Vec<Rule> {
    let quantity = json!({
        "anyOf": [{ "type": "integer" }, { "type": "string" }],
        "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
        "x-kubernetes-int-or-string": true,
    });
    vec![
        add(
            "KubernetesContainerSpec",
            "securityContext",
            json!({ "type": "object" }),
        ),
        add("EnvVar", "valueFrom", json!({ "type": "object" })),
        replace("ResourceRequirements", "limits{}", quantity.clone()),
        replace("ResourceRequirements", "requests{}", quantity),
        add("ResourceRequirements", "claims", map_list("name", None)),
        add(
            "ResourceRequirements",
            "claims[]",
            json!({ "type": "object", "required": ["name"] }),
        ),
        add("QuotaRule", "clientSelectors", max_items(8)),
        add(
            "QuotaRule",
            "clientSelectors[]",
            json!({ "type": "object", "x-kubernetes-validations": [cel(
                "has(self.headers) || has(self.methods) || has(self.path) || has(self.sourceCIDR) || has(self.queryParams)",
                "at least one of headers, methods, path, sourceCIDR or queryParams must be specified",
            )]}),
        ),
        add(
            "MCPRouteSpec",
            "backendSelector",
            json!({ "type": "object" }),
        ),
    ]
}

fn mcp_rules() -> Vec<Rule> {
    vec![
        add("MCPRouteSpec", "", required(&["backendRefs", "parentRefs"])),
        add(
            "MCPRouteSpec",
            "parentRefs",
            json!({ "minItems": 1, "maxItems": MAX_PARENT_REFS, "x-kubernetes-validations": [
                cel("self.all(match, match.kind == 'Gateway')", "only Gateway is supported"),
            ]}),
        ),
        add(
            "MCPRouteSpec",
            "path",
            json!({ "default": DEFAULT_MCP_PATH, "maxLength": 1024 }),
        ),
        add(
            "MCPRouteSpec",
            "headers",
            map_list("name", Some(MAX_HEADER_MATCHES)),
        ),
        add("MCPRouteSpec", "hostnames", max_items(MAX_PARENT_REFS)),
        add(
            "MCPRouteSpec",
            "hostnames[]",
            json!({ "maxLength": 253, "minLength": 1, "pattern": HOSTNAME }),
        ),
        add(
            "MCPRouteSpec",
            "backendRefs",
            json!({ "minItems": 1, "maxItems": MAX_MCP_BACKENDS, "x-kubernetes-validations": [
                cel("self.all(i, self.exists_one(j, j.name == i.name))", "all backendRefs names must be unique"),
            ]}),
        ),
        add(
            "MCPRouteBackendRef",
            "",
            json!({ "x-kubernetes-validations": [
                cel("(size(self.group) == 0 && self.kind == 'Service') ? has(self.port) : true", "Must have port for Service reference"),
            ]}),
        ),
        add("MCPRouteBackendRef", "group", group(Some(""))),
        add("MCPRouteBackendRef", "kind", kind(Some("Service"))),
        add("MCPRouteBackendRef", "name", object_name()),
        add("MCPRouteBackendRef", "namespace", namespace()),
        add("MCPRouteBackendRef", "port", port()),
        add(
            "MCPRouteBackendRef",
            "path",
            json!({ "default": DEFAULT_MCP_PATH, "maxLength": 1024 }),
        ),
        add("MCPRouteBackendRef", "forwardHeaders", max_items(32)),
        add(
            "MCPToolFilter",
            "",
            json!({ "x-kubernetes-validations": [
                cel("!(has(self.include) && has(self.includeRegex))", "include and includeRegex are mutually exclusive"),
                cel("!(has(self.exclude) && has(self.excludeRegex))", "exclude and excludeRegex are mutually exclusive"),
                cel("has(self.include) || has(self.includeRegex) || has(self.exclude) || has(self.excludeRegex)",
                    "at least one of include, includeRegex, exclude, or excludeRegex must be specified"),
            ]}),
        ),
        add("MCPToolFilter", "include", max_items(MAX_TOOL_SELECTORS)),
        add(
            "MCPToolFilter",
            "includeRegex",
            max_items(MAX_TOOL_SELECTORS),
        ),
        add("MCPToolFilter", "exclude", max_items(MAX_TOOL_SELECTORS)),
        add(
            "MCPToolFilter",
            "excludeRegex",
            max_items(MAX_TOOL_SELECTORS),
        ),
        add(
            "MCPBackendAPIKey",
            "",
            json!({ "x-kubernetes-validations": [
                cel("(has(self.secretRef) && !has(self.inline)) || (!has(self.secretRef) && has(self.inline))", "exactly one of secretRef or inline must be set"),
                cel("!(has(self.header) && has(self.queryParam))", "only one of header or queryParam can be set"),
            ]}),
        ),
        add(
            "MCPRouteSecurityPolicy",
            "",
            json!({ "x-kubernetes-validations": [cel(
                "!(has(self.authorization) && self.authorization.rules.exists(r, has(r.source) && has(r.source.jwt)) && !has(self.oauth))",
                "oauth must be configured when any authorization rule uses a jwt source",
            )]}),
        ),
        add(
            "MCPRouteOAuth",
            "",
            required(&["issuer", "protectedResourceMetadata"]),
        ),
        add("MCPRouteOAuth", "issuer", json!({ "format": "uri" })),
        add("MCPRouteOAuth", "audiences", max_items(32)),
        add("MCPRouteOAuth", "claimToHeaders", max_items(16)),
        add(
            "MCPJwks",
            "",
            json!({ "x-kubernetes-validations": [
                cel("has(self.remoteJWKS) || has(self.localJWKS)", "either remoteJWKS or localJWKS must be specified."),
                cel("!(has(self.remoteJWKS) && has(self.localJWKS))", "remoteJWKS and localJWKS cannot both be specified."),
            ]}),
        ),
        add(
            "ProtectedResourceMetadata",
            "resource",
            json!({ "format": "uri" }),
        ),
        add(
            "ProtectedResourceMetadata",
            "resourceDocumentation",
            json!({ "format": "uri" }),
        ),
        add(
            "ProtectedResourceMetadata",
            "resourcePolicyUri",
            json!({ "format": "uri" }),
        ),
        add(
            "ProtectedResourceMetadata",
            "resourceName",
            json!({ "maxLength": 256 }),
        ),
        add(
            "ProtectedResourceMetadata",
            "resourceSigningAlgValuesSupported",
            json!({ "minItems": 1, "maxItems": 16 }),
        ),
        add(
            "ProtectedResourceMetadata",
            "scopesSupported",
            max_items(32),
        ),
        add(
            "MCPRouteAuthorization",
            "defaultAction",
            json!({ "default": "Deny", "enum": ["Allow", "Deny"] }),
        ),
        add("MCPRouteAuthorization", "rules", max_items(32)),
        add(
            "MCPRouteAuthorizationRule",
            "action",
            json!({ "default": "Allow", "enum": ["Allow", "Deny"] }),
        ),
        add(
            "MCPRouteAuthorizationRule",
            "cel",
            json!({ "maxLength": 4096 }),
        ),
        add(
            "MCPJwtSource",
            "",
            json!({ "x-kubernetes-validations": [cel(
                "(has(self.scopes) && size(self.scopes) > 0) || (has(self.claims) && size(self.claims) > 0)",
                "either scopes or claims must be specified",
            )]}),
        ),
        add("MCPJwtSource", "scopes", max_items(16)),
        add(
            "MCPJwtSource",
            "scopes[]",
            json!({ "minLength": 1, "maxLength": 253 }),
        ),
        add(
            "MCPJwtSource",
            "claims",
            json!({ "maxItems": 16, "x-kubernetes-validations": [
                cel("!self.exists(c, c.name == 'scope')", "'scope' claim name is reserved for OAuth scopes"),
            ]}),
        ),
        add("MCPAuthorizationTarget", "", required(&["tools"])),
        add(
            "MCPAuthorizationTarget",
            "tools",
            json!({ "minItems": 1, "maxItems": 16 }),
        ),
        add("MCPHeaderForward", "name", non_empty()),
        add("MCPHeaderForward", "backendHeader", non_empty()),
        add("MCPBackendAPIKey", "header", non_empty()),
        add("MCPBackendAPIKey", "queryParam", non_empty()),
    ]
}
