//! The upstream ExtProc's own configuration: the filter configuration the Envoy AI
//! Gateway controller renders from the CRDs and mounts into the ExtProc sidecar
//! (Go package `internal/filterapi`, v1.1).
//!
//! It is already resolved: backends are keyed by their per-rule name
//! (`{ns}/{backend}/route/{route}/rule/{i}/ref/{j}`), secrets are literal, routing is
//! Envoy's (the controller wrote it into the HTTPRoutes). [`FilterConfig::planner`]
//! turns it into the same [`Planner`](crate::planner::Planner) the CRD path builds —
//! one target per per-rule backend, each route's costs over the global ones, the model
//! list — so requests are translated, authenticated and metered by the same code
//! whichever configuration a process was given. [`render`] goes the other way, as the
//! controller does, for tests and for operators who want to see what the controller
//! would write.
//!
//! Two deliveries, as upstream: one file (`-configPath`) or a bundle directory
//! (`-configBundlePath`: `index.yaml` naming parts whose concatenation has the
//! index's SHA-256), see [`load`]. A `version` other than the one this build accepts
//! is rejected, so a rolling upgrade keeps the previous configuration serving.

mod convert;
mod load;
mod render;

pub use load::{
    BUNDLE_INDEX, Loaded, Source, VersionPolicy, bundle_checksum, load, parse, read_bundle,
};
pub use render::render;

use crate::config::LlmRequestCostType;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The filter configuration (`filterapi.Config`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FilterConfig {
    /// The controller's version; see [`VersionPolicy`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Identifies one rendering.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uuid: String,
    /// Gateway-wide costs (GatewayConfig), used for keys no route-scoped entry sets.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        rename = "globalLLMRequestCosts"
    )]
    pub global_llm_request_costs: Vec<FilterCost>,
    /// Route-scoped costs.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        rename = "llmRequestCosts"
    )]
    pub llm_request_costs: Vec<FilterCost>,
    /// Every per-rule backend.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<FilterBackend>,
    /// Models for `/v1/models` (every host, when `modelsByHost` is empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<FilterModel>,
    /// Models by exact host name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models_by_host: BTreeMap<String, Vec<FilterModel>>,
    /// Models of routes without hostnames, for hosts `modelsByHost` does not name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unscoped_models: Vec<FilterModel>,
    /// The MCPRoutes, for the MCP proxy: read and checked, not served yet (see
    /// [`FilterConfig::warnings`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_config: Option<McpConfig>,
}

/// One cost entry (`LLMRequestCost`, or `GlobalLLMRequestCost` without the scopes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FilterCost {
    /// Dynamic metadata key.
    pub metadata_key: String,
    /// The route (`ns/name`) it applies to; required for route-scoped entries.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub route_name: String,
    /// What to count.
    #[serde(rename = "type")]
    pub cost_type: LlmRequestCostType,
    /// The expression for `CEL`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cel: String,
    /// Only when the serving backend's `ns/name` is this (QuotaPolicy).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub backend: String,
    /// Only when the request's model is this (QuotaPolicy).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
}

/// A model of the `/v1/models` list. Upstream's Go struct has no JSON tags, so the
/// controller writes `Name`/`OwnedBy`/`CreatedAt`; the lower-case forms are accepted
/// too, as Go's decoder matches names case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterModel {
    /// The id.
    #[serde(rename = "Name", alias = "name")]
    pub name: String,
    /// `owned_by`.
    #[serde(rename = "OwnedBy", alias = "ownedBy", default)]
    pub owned_by: String,
    /// RFC 3339.
    #[serde(rename = "CreatedAt", alias = "createdAt", default)]
    pub created_at: String,
}

/// `VersionedAPISchema`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSchema {
    /// `OpenAI`, `AWSBedrock`, ….
    pub name: String,
    /// Azure `api-version`, Anthropic-on-cloud `anthropic_version`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Path prefix of OpenAI-/Anthropic-compatible servers (`v1` when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
}

/// One per-rule backend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FilterBackend {
    /// `{ns}/{backend}/route/{route}/rule/{i}/ref/{j}`, as Envoy's endpoint metadata
    /// names it (any string Envoy's metadata carries is accepted).
    pub name: String,
    /// Model sent upstream instead of the client's.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model_name_override: String,
    /// The backend's API.
    pub schema: FilterSchema,
    /// Credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<FilterAuth>,
    /// Header mutation (route-level already merged over backend-level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_header_mutation: Option<FilterHeaderMutation>,
    /// Body mutation (merged likewise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_body_mutation: Option<FilterBodyMutation>,
}

/// `HTTPHeaderMutation`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterHeaderMutation {
    /// Headers to set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<FilterHeader>,
    /// Headers to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// One header to set. Values can be credentials: never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterHeader {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

impl std::fmt::Debug for FilterHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilterHeader")
            .field("name", &self.name)
            .field("value", &"[REDACTED]")
            .finish()
    }
}

/// `HTTPBodyMutation`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterBodyMutation {
    /// Top-level fields to set; values are JSON text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<FilterBodyField>,
    /// Top-level fields to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// One body field to set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterBodyField {
    /// The field.
    pub path: String,
    /// JSON text.
    pub value: String,
}

/// `BackendAuth`: exactly one mechanism, plus an optional per-request override.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FilterAuth {
    /// `Authorization: Bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<KeyAuth>,
    /// SigV4.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "aws")]
    pub aws: Option<AwsAuth>,
    /// `api-key`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "azureAPIKey"
    )]
    pub azure_api_key: Option<KeyAuth>,
    /// `x-api-key`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "anthropicAPIKey"
    )]
    pub anthropic_api_key: Option<KeyAuth>,
    /// An Entra ID access token the controller minted.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "azure")]
    pub azure: Option<AzureTokenAuth>,
    /// A GCP access token (or none: application default credentials) with the
    /// project and region of the path prefix.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "gcp")]
    pub gcp: Option<GcpAuth>,
    /// Per-request credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_override: Option<FilterCredentialOverride>,
}

/// A literal key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAuth {
    /// The key.
    #[serde(with = "secret_text")]
    pub key: Secret,
}

/// `AWSAuth`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AwsAuth {
    /// An AWS credentials file; empty means the SDK default chain.
    #[serde(
        default,
        with = "secret_text_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub credential_file_literal: Option<Secret>,
    /// Region.
    pub region: String,
}

/// `AzureAuth`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AzureTokenAuth {
    /// The token.
    #[serde(with = "secret_text")]
    pub access_token: Secret,
}

/// `GCPAuth`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GcpAuth {
    /// The token; empty means application default credentials.
    #[serde(default, with = "secret_text_opt")]
    pub access_token: Option<Secret>,
    /// Region.
    pub region: String,
    /// Project.
    pub project_name: String,
}

/// `CredentialOverride`: exactly one of `headerName` and `dynamicMetadataNamespace`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FilterCredentialOverride {
    /// The request header (for AWS, the header prefix).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub header_name: String,
    /// The metadata namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dynamic_metadata_namespace: String,
    /// The metadata key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dynamic_metadata_key: String,
    /// Use the configured credential when the request carries none.
    #[serde(default)]
    pub fallback_to_configured: bool,
    /// Headers removed before the backend (the controller also lists them in the
    /// header mutation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_headers_to_remove: Vec<String>,
}

impl FilterConfig {
    /// The configuration as the controller writes it (YAML, literal credentials).
    pub fn to_yaml(&self) -> crate::Result<String> {
        serde_saphyr::to_string(self)
            .map_err(|e| crate::Error::internal(format!("rendering the filter configuration: {e}")))
    }

    /// Non-fatal findings: what this build reads but does not serve yet. (`mcpConfig`
    /// is served by the ExtProc's MCP proxy when `-mcpAddr` is set, as upstream's; the
    /// ExtProc warns when it is present without one.)
    pub fn warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// The MCPRoutes of `mcpConfig`, by name.
    pub fn mcp_route_names(&self) -> Vec<&str> {
        self.mcp_config
            .iter()
            .flat_map(|m| &m.routes)
            .map(|r| r.name.as_str())
            .collect()
    }
}

/// A [`Secret`] as plain YAML text (the file holds literal credentials).
mod secret_text {
    use crate::secret::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(s: &Secret, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.expose())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Secret, D::Error> {
        String::deserialize(de).map(Secret::from)
    }
}

/// An optional [`Secret`]; the empty string reads as none, as upstream treats it.
mod secret_text_opt {
    use crate::secret::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(s: &Option<Secret>, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.as_ref().map_or("", Secret::expose))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        de: D,
    ) -> Result<Option<Secret>, D::Error> {
        let s = Option::<String>::deserialize(de)?;
        Ok(s.filter(|s| !s.is_empty()).map(Secret::from))
    }
}

/// `MCPConfig`: what the MCP proxy serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpConfig {
    /// Where Envoy's MCP backend listener is.
    #[serde(default)]
    pub backend_listener_addr: String,
    /// The MCPRoutes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<McpRoute>,
}

/// `MCPRoute`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpRoute {
    /// `ns/name`.
    pub name: String,
    /// The MCP servers.
    #[serde(default)]
    pub backends: Vec<McpBackend>,
    /// Tool-call authorization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<McpAuthorization>,
    /// Backend selection rules (same shape as authorization).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_selector: Option<McpAuthorization>,
    /// Client headers forwarded to every backend.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forward_headers: Vec<String>,
}

/// `MCPBackend`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpBackend {
    /// The backend name.
    pub name: String,
    /// Which tools are exposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_selector: Option<McpToolSelector>,
    /// Client headers forwarded to this backend (optionally renamed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forward_headers: Vec<McpHeaderForward>,
}

/// `MCPHeaderForward`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpHeaderForward {
    /// The client header.
    pub name: String,
    /// The name sent to the backend (default: the same).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub backend_header: String,
}

/// `MCPToolSelector`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpToolSelector {
    /// Tool names to include.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Tool-name patterns to include.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_regex: Vec<String>,
    /// Tool names to exclude.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Tool-name patterns to exclude.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_regex: Vec<String>,
}

/// `MCPRouteAuthorization`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpAuthorization {
    /// `Allow` or `Deny`.
    #[serde(default)]
    pub default_action: String,
    /// Rules, first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<McpAuthorizationRule>,
    /// OAuth protected-resource metadata URL.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        rename = "resourceMetadataURL"
    )]
    pub resource_metadata_url: String,
}

/// `MCPRouteAuthorizationRule`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpAuthorizationRule {
    /// `Allow` or `Deny`.
    pub action: String,
    /// Who (JWT scopes and claims).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<serde_json::Value>,
    /// Which tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<serde_json::Value>,
    /// A CEL condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cel: Option<String>,
}
