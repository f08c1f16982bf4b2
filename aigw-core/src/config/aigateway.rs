//! The `aigateway.envoyproxy.io` kinds (v1alpha1 and v1beta1 share one shape):
//! AIGatewayRoute, AIServiceBackend, BackendSecurityPolicy, GatewayConfig and QuotaPolicy.
//! MCPRoute lives in [`super::mcp`].

use super::meta::{
    BackendObjectReference, HttpHeader, HttpHeaderMatch, HttpRouteTimeouts, ParentReference,
    PolicyTargetReference, SecretObjectReference,
};
use super::security_policy::Oidc;
use crate::schema::VersionedSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The header the gateway fills with the request body's model.
pub const MODEL_HEADER: &str = "x-ai-eg-model";
/// Maximum rules per AIGatewayRoute (one HTTPRoute slot is reserved for `route-not-found`).
pub const MAX_RULES: usize = 15;
/// Maximum backendRefs per rule.
pub const MAX_BACKEND_REFS: usize = 128;
/// Maximum matches per rule.
pub const MAX_MATCHES: usize = 128;
/// Maximum header matches per match.
pub const MAX_HEADER_MATCHES: usize = 16;
/// Maximum parentRefs and hostnames.
pub const MAX_PARENT_REFS: usize = 16;
/// Maximum `llmRequestCosts` per route.
pub const MAX_COSTS: usize = 36;
/// Maximum set/remove entries in a header or body mutation.
pub const MAX_MUTATIONS: usize = 16;
/// The rule name the controller reserves for its catch-all 404 rule.
pub const RESERVED_RULE_NAME: &str = "route-not-found";
/// Default `modelsOwnedBy`.
pub const DEFAULT_MODELS_OWNED_BY: &str = "Envoy AI Gateway";

/// `AIGatewayRoute.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AIGatewayRouteSpec {
    /// Gateways this route attaches to (Gateway only).
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    /// Hostnames the route serves; also scopes `/v1/models`.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// Rules, at most 15.
    #[serde(default)]
    pub rules: Vec<AIGatewayRouteRule>,
    /// Cost captures.
    #[serde(default, rename = "llmRequestCosts")]
    pub llm_request_costs: Vec<LlmRequestCost>,
    /// Rate-limit overrides read from trusted request headers.
    #[serde(default)]
    pub rate_limits_from_headers: Vec<RateLimitFromHeader>,
    /// Deprecated (v1alpha1) input schema; accepted and ignored: the client API is
    /// decided by the request path.
    #[serde(default)]
    pub schema: Option<VersionedSchema>,
    /// Deprecated (v1alpha1) target refs; accepted and ignored.
    #[serde(default)]
    pub target_refs: Option<Vec<PolicyTargetReference>>,
    /// Deprecated (v1alpha1) filter config; accepted and ignored.
    #[serde(default)]
    pub filter_config: Option<AIGatewayFilterConfig>,
}

/// Deprecated (v1alpha1) `AIGatewayRoute.spec.filterConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AIGatewayFilterConfig {
    /// `ExternalProcessor` or `DynamicModule`.
    #[serde(default, rename = "type")]
    pub filter_type: Option<String>,
    /// External processor container settings.
    #[serde(default)]
    pub external_processor: Option<AIGatewayFilterConfigExternalProcessor>,
}

/// `filterConfig.externalProcessor`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AIGatewayFilterConfigExternalProcessor {
    /// Container resources.
    #[serde(default)]
    pub resources: Option<ResourceRequirements>,
}

/// One rule of an AIGatewayRoute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AIGatewayRouteRule {
    /// Optional unique name.
    #[serde(default)]
    pub name: Option<String>,
    /// Backends this rule routes to.
    #[serde(default)]
    pub backend_refs: Vec<AIGatewayRouteRuleBackendRef>,
    /// Matches (OR-ed); each match's headers are AND-ed. No match = match everything.
    #[serde(default)]
    pub matches: Vec<AIGatewayRouteRuleMatch>,
    /// Timeouts; request timeout defaults to 60 s.
    #[serde(default)]
    pub timeouts: Option<HttpRouteTimeouts>,
    /// Maximum time without upstream bytes.
    #[serde(default)]
    pub stream_idle_timeout: Option<String>,
    /// `owned_by` of models listed by `/v1/models`.
    #[serde(default)]
    pub models_owned_by: Option<String>,
    /// `created` of models listed by `/v1/models` (RFC 3339).
    #[serde(default)]
    pub models_created_at: Option<String>,
}

/// A backend reference of a rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AIGatewayRouteRuleBackendRef {
    /// AIServiceBackend name (or InferencePool name with group/kind).
    pub name: String,
    /// Namespace, default the route's.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Only `inference.networking.k8s.io` (with kind `InferencePool`).
    #[serde(default)]
    pub group: Option<String>,
    /// Only `InferencePool` (with the group).
    #[serde(default)]
    pub kind: Option<String>,
    /// Model name sent upstream instead of the client's.
    #[serde(default)]
    pub model_name_override: Option<String>,
    /// Route-level header mutation (wins over the backend's).
    #[serde(default)]
    pub header_mutation: Option<HttpHeaderMutation>,
    /// Route-level body mutation (wins over the backend's).
    #[serde(default)]
    pub body_mutation: Option<HttpBodyMutation>,
    /// Weight, default 1; 0 disables the backend.
    #[serde(default)]
    pub weight: Option<i64>,
    /// Priority, default 0; lower is tried first.
    #[serde(default)]
    pub priority: Option<i64>,
}

impl AIGatewayRouteRuleBackendRef {
    /// Whether this reference names an InferencePool.
    pub fn is_inference_pool(&self) -> bool {
        self.group.is_some() || self.kind.is_some()
    }
}

/// A match of a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AIGatewayRouteRuleMatch {
    /// Header matches, AND-ed.
    #[serde(default)]
    pub headers: Vec<HttpHeaderMatch>,
}

/// Header mutation (`set` then `remove`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpHeaderMutation {
    /// Headers to set (overwrite or add).
    #[serde(default)]
    pub set: Vec<HttpHeader>,
    /// Headers to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// Body mutation of top-level JSON fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpBodyMutation {
    /// Fields to set; each value is JSON text.
    #[serde(default)]
    pub set: Vec<HttpBodyField>,
    /// Top-level fields to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// One body field to set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpBodyField {
    /// Top-level field name.
    pub path: String,
    /// The JSON value, as text (`"\"scale\""`, `42`, `true`, …).
    pub value: String,
}

/// `LLMRequestCost.type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum LlmRequestCostType {
    /// Output tokens (the default).
    #[default]
    OutputToken,
    /// Input tokens (including cached ones).
    InputToken,
    /// Cache-read input tokens.
    CachedInputToken,
    /// Cache-write input tokens.
    CacheCreationInputToken,
    /// Total tokens.
    TotalToken,
    /// Reasoning tokens.
    ReasoningToken,
    /// A CEL expression.
    #[serde(rename = "CEL")]
    Cel,
}

/// One `llmRequestCosts` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LlmRequestCost {
    /// Dynamic metadata key (namespace `io.envoy.ai_gateway`).
    pub metadata_key: String,
    /// What to count; default `OutputToken`.
    #[serde(default, rename = "type")]
    pub cost_type: LlmRequestCostType,
    /// The expression for type `CEL`.
    #[serde(default)]
    pub cel: Option<String>,
}

/// A rate-limit override read from a trusted header (`"<count>/<unit>"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitFromHeader {
    /// Dynamic metadata key.
    pub metadata_key: String,
    /// The header.
    pub header: String,
}

/// `AIServiceBackend.spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AIServiceBackendSpec {
    /// The API the backend speaks.
    pub schema: VersionedSchema,
    /// The Envoy Gateway `Backend` with the endpoints.
    pub backend_ref: BackendObjectReference,
    /// Backend-level header mutation.
    #[serde(default)]
    pub header_mutation: Option<HttpHeaderMutation>,
    /// Backend-level body mutation.
    #[serde(default)]
    pub body_mutation: Option<HttpBodyMutation>,
    /// Response body mutation.
    #[serde(default)]
    pub response_body_mutation: Option<HttpBodyMutation>,
    /// Deprecated per-backend timeouts; `request` is honoured as the per-attempt
    /// timeout of this backend ([`crate::routing::BackendTarget::request_timeout`]).
    #[serde(default)]
    pub timeouts: Option<HttpRouteTimeouts>,
    /// Deprecated (v1alpha1) link to a BackendSecurityPolicy by name (same namespace);
    /// honoured when no policy targets this backend.
    #[serde(default)]
    pub backend_security_policy_ref: Option<LocalPolicyRef>,
}

/// Gateway API `LocalObjectReference` used by the deprecated `backendSecurityPolicyRef`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LocalPolicyRef {
    /// Group.
    #[serde(default)]
    pub group: Option<String>,
    /// Kind.
    #[serde(default)]
    pub kind: Option<String>,
    /// Name.
    pub name: String,
}

/// `BackendSecurityPolicy.spec.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum BackendSecurityPolicyType {
    /// `Authorization: Bearer`.
    APIKey,
    /// AWS SigV4.
    AWSCredentials,
    /// Azure `api-key`.
    AzureAPIKey,
    /// Azure Entra ID token.
    AzureCredentials,
    /// GCP access token.
    GCPCredentials,
    /// Anthropic `x-api-key`.
    AnthropicAPIKey,
}

impl BackendSecurityPolicyType {
    /// The spec field that must be set for this type.
    pub const fn field(self) -> &'static str {
        match self {
            Self::APIKey => "apiKey",
            Self::AWSCredentials => "awsCredentials",
            Self::AzureAPIKey => "azureAPIKey",
            Self::AzureCredentials => "azureCredentials",
            Self::GCPCredentials => "gcpCredentials",
            Self::AnthropicAPIKey => "anthropicAPIKey",
        }
    }
}

/// `BackendSecurityPolicy.spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendSecurityPolicySpec {
    /// AIServiceBackends or InferencePools this policy applies to.
    #[serde(default)]
    pub target_refs: Vec<PolicyTargetReference>,
    /// Which mechanism.
    #[serde(rename = "type")]
    pub policy_type: BackendSecurityPolicyType,
    /// For `APIKey`.
    #[serde(default)]
    pub api_key: Option<SecretRefHolder>,
    /// For `AWSCredentials`.
    #[serde(default)]
    pub aws_credentials: Option<AwsCredentials>,
    /// For `AzureAPIKey`.
    #[serde(default, rename = "azureAPIKey")]
    pub azure_api_key: Option<SecretRefHolder>,
    /// For `AzureCredentials`.
    #[serde(default)]
    pub azure_credentials: Option<AzureCredentials>,
    /// For `GCPCredentials`.
    #[serde(default)]
    pub gcp_credentials: Option<GcpCredentials>,
    /// For `AnthropicAPIKey`.
    #[serde(default, rename = "anthropicAPIKey")]
    pub anthropic_api_key: Option<SecretRefHolder>,
    /// Per-request credential source.
    #[serde(default)]
    pub credential_override: Option<CredentialOverride>,
}

/// `{ secretRef }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretRefHolder {
    /// The Secret (key `apiKey`).
    pub secret_ref: SecretObjectReference,
}

/// `awsCredentials`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AwsCredentials {
    /// Region, required.
    #[serde(default)]
    pub region: String,
    /// A credentials INI file in a Secret (key `credentials`).
    #[serde(default)]
    pub credentials_file: Option<AwsCredentialsFile>,
    /// OIDC → STS AssumeRoleWithWebIdentity.
    #[serde(default)]
    pub oidc_exchange_token: Option<OidcExchangeToken>,
}

/// `awsCredentials.credentialsFile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AwsCredentialsFile {
    /// The Secret.
    pub secret_ref: SecretObjectReference,
    /// Profile, default `default`.
    #[serde(default)]
    pub profile: Option<String>,
}

/// OIDC token exchange settings shared by AWS, Azure and GCP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OidcExchangeToken {
    /// Envoy Gateway `OIDC` settings (provider, clientID, clientSecret, scopes…).
    pub oidc: Oidc,
    /// Grant type.
    #[serde(default)]
    pub grant_type: Option<String>,
    /// Audience.
    #[serde(default)]
    pub aud: Option<String>,
    /// AWS only: the role to assume.
    #[serde(default)]
    pub aws_role_arn: Option<String>,
}

/// `azureCredentials`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AzureCredentials {
    /// Application (client) id.
    #[serde(default, rename = "clientID")]
    pub client_id: String,
    /// Tenant id.
    #[serde(default, rename = "tenantID")]
    pub tenant_id: String,
    /// Secret with key `client-secret`.
    #[serde(default, rename = "clientSecretRef")]
    pub client_secret_ref: Option<SecretObjectReference>,
    /// OIDC federation.
    #[serde(default, rename = "oidcExchangeToken")]
    pub oidc_exchange_token: Option<OidcExchangeToken>,
}

/// `gcpCredentials`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GcpCredentials {
    /// Project.
    #[serde(default)]
    pub project_name: Option<String>,
    /// Region.
    #[serde(default)]
    pub region: Option<String>,
    /// Service account JSON in a Secret (key `service_account.json`).
    #[serde(default)]
    pub credentials_file: Option<SecretRefHolder>,
    /// Workload identity federation.
    #[serde(default)]
    pub workload_identity_federation_config: Option<GcpWorkloadIdentityFederation>,
    /// Project and region come from request headers; no credentials are managed.
    #[serde(default, rename = "isPassthrough")]
    pub is_passthrough: bool,
}

/// `gcpCredentials.workloadIdentityFederationConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct GcpWorkloadIdentityFederation {
    /// Project id.
    #[serde(rename = "projectID")]
    pub project_id: String,
    /// Provider name.
    #[serde(rename = "workloadIdentityProviderName")]
    pub workload_identity_provider_name: String,
    /// Pool name.
    #[serde(rename = "workloadIdentityPoolName")]
    pub workload_identity_pool_name: String,
    /// OIDC settings.
    #[serde(rename = "oidcExchangeToken")]
    pub oidc_exchange_token: OidcExchangeToken,
    /// Optional service account impersonation.
    #[serde(default, rename = "serviceAccountImpersonation")]
    pub service_account_impersonation: Option<GcpServiceAccountImpersonation>,
}

/// Service account impersonation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GcpServiceAccountImpersonation {
    /// The service account name (before `@project.iam.gserviceaccount.com`).
    pub service_account_name: String,
}

/// `credentialOverride`: exactly one source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CredentialOverride {
    /// From a request header (stripped before upstream).
    #[serde(default)]
    pub from_request_headers: Option<CredentialOverrideFromHeaders>,
    /// From Envoy dynamic metadata.
    #[serde(default)]
    pub from_dynamic_metadata: Option<CredentialOverrideFromMetadata>,
}

/// `credentialOverride.fromRequestHeaders`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CredentialOverrideFromHeaders {
    /// Header (or AWS header prefix); defaults per type.
    #[serde(default)]
    pub header: Option<String>,
    /// Fall back to the configured credential when absent; default true.
    #[serde(default)]
    pub fallback_to_configured: Option<bool>,
}

/// `credentialOverride.fromDynamicMetadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CredentialOverrideFromMetadata {
    /// Metadata namespace.
    pub namespace: String,
    /// Key; defaults per type.
    #[serde(default)]
    pub key: Option<String>,
    /// Fall back to the configured credential when absent; default true.
    #[serde(default)]
    pub fallback_to_configured: Option<bool>,
}

/// `GatewayConfig.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayConfigSpec {
    /// ExtProc container settings (Envoy Gateway `KubernetesContainerSpec`); only the
    /// operator uses them.
    #[serde(default)]
    pub ext_proc: Option<GatewayConfigExtProc>,
    /// Costs applied to every route of Gateways referencing this config.
    #[serde(default, rename = "globalLLMRequestCosts")]
    pub global_llm_request_costs: Vec<LlmRequestCost>,
    /// Gateway-wide rate-limit header overrides.
    #[serde(default)]
    pub global_rate_limits_from_headers: Vec<RateLimitFromHeader>,
    /// HTTP CONNECT egress proxy.
    #[serde(default)]
    pub forward_proxy: Option<ForwardProxy>,
}

/// `GatewayConfig.spec.extProc`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayConfigExtProc {
    /// The container spec.
    #[serde(default)]
    pub kubernetes: Option<KubernetesContainerSpec>,
}

/// Envoy Gateway `KubernetesContainerSpec`: the ExtProc container's settings (used by
/// the operator). Kubernetes core sub-objects (`valueFrom`, `securityContext`) are kept
/// as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubernetesContainerSpec {
    /// Environment variables.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// Resource requests and limits.
    #[serde(default)]
    pub resources: Option<ResourceRequirements>,
    /// Security context.
    #[serde(default)]
    pub security_context: Option<Value>,
    /// Image.
    #[serde(default)]
    pub image: Option<String>,
    /// Image repository (the tag stays the controller's).
    #[serde(default)]
    pub image_repository: Option<String>,
    /// Volume mounts.
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
}

/// Kubernetes `EnvVar`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvVar {
    /// Name.
    pub name: String,
    /// Value.
    #[serde(default)]
    pub value: Option<String>,
    /// Source (Secret, ConfigMap, field), kept as written.
    #[serde(default)]
    pub value_from: Option<Value>,
}

/// Kubernetes `ResourceRequirements`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourceRequirements {
    /// Limits (`cpu`, `memory`, …).
    #[serde(default)]
    pub limits: BTreeMap<String, Value>,
    /// Requests.
    #[serde(default)]
    pub requests: BTreeMap<String, Value>,
    /// Dynamic resource claims.
    #[serde(default)]
    pub claims: Vec<Value>,
}

/// Kubernetes `VolumeMount`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeMount {
    /// Volume name.
    pub name: String,
    /// Mount path.
    pub mount_path: String,
    /// Read only.
    #[serde(default)]
    pub read_only: Option<bool>,
    /// Recursive read-only mode.
    #[serde(default)]
    pub recursive_read_only: Option<String>,
    /// Sub path.
    #[serde(default)]
    pub sub_path: Option<String>,
    /// Sub path with environment expansion.
    #[serde(default)]
    pub sub_path_expr: Option<String>,
    /// Mount propagation.
    #[serde(default)]
    pub mount_propagation: Option<String>,
}

/// `GatewayConfig.spec.forwardProxy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ForwardProxy {
    /// `host:port`.
    pub address: String,
}

/// `QuotaPolicy.spec` (v1alpha1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QuotaPolicySpec {
    /// AIServiceBackends.
    #[serde(default)]
    pub target_refs: Vec<PolicyTargetReference>,
    /// Quota for the whole service.
    #[serde(default)]
    pub service_quota: Option<ServiceQuota>,
    /// Per-model quotas.
    #[serde(default)]
    pub per_model_quotas: Vec<PerModelQuota>,
}

/// A service-wide quota.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceQuota {
    /// CEL cost expression.
    #[serde(default)]
    pub cost_expression: Option<String>,
    /// The limit.
    pub quota: QuotaValue,
}

/// `{limit, duration}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QuotaValue {
    /// Units per duration.
    pub limit: u64,
    /// `1s`, `1m`, `1h` or `1d`.
    pub duration: String,
}

/// Per-model quota.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PerModelQuota {
    /// The model (must equal a modelNameOverride).
    pub model_name: String,
    /// The quota definition.
    pub quota: ModelQuota,
}

/// Per-model quota definition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelQuota {
    /// CEL cost expression.
    #[serde(default)]
    pub cost_expression: Option<String>,
    /// `Shared` (default).
    #[serde(default)]
    pub mode: Option<String>,
    /// The default bucket.
    #[serde(default)]
    pub default_bucket: Option<QuotaValue>,
    /// Buckets by client selector.
    #[serde(default)]
    pub bucket_rules: Vec<QuotaRule>,
}

/// `perModelQuotas[].quota.bucketRules[]`: a quota for the requests its selectors match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QuotaRule {
    /// Envoy Gateway `RateLimitSelectCondition`s (headers, source CIDR …), at most 8,
    /// kept as written.
    #[serde(default)]
    pub client_selectors: Vec<Value>,
    /// The quota of the matched requests.
    pub quota: QuotaValue,
    /// Count but do not enforce.
    #[serde(default)]
    pub shadow_mode: Option<bool>,
}
