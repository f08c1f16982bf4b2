//! Envoy Gateway (`gateway.envoyproxy.io`) and Gateway API (`gateway.networking.k8s.io`)
//! kinds the gateway reads: Backend, BackendTLSPolicy, BackendTrafficPolicy,
//! ClientTrafficPolicy and Gateway.
//!
//! Traffic policies configure Envoy itself. The settings that matter to a gateway
//! (retries, timeouts, rate limits, body buffer limit) are typed and strict; every other
//! top-level setting is kept in `other` and reported as ignored.

use super::meta::{ParentReference, PolicyTargetReference, SecretObjectReference};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Envoy Gateway `Backend.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendSpec {
    /// `Endpoints` (default) or `DynamicResolver`.
    #[serde(default, rename = "type")]
    pub backend_type: Option<String>,
    /// Endpoints.
    #[serde(default)]
    pub endpoints: Vec<BackendEndpoint>,
    /// Application protocols (`gateway.envoyproxy.io/h2c`, …).
    #[serde(default)]
    pub app_protocols: Vec<String>,
    /// Whether the backend is a fallback.
    #[serde(default)]
    pub fallback: Option<bool>,
    /// Upstream TLS settings.
    #[serde(default)]
    pub tls: Option<BackendTlsSettings>,
}

/// One endpoint: exactly one of `fqdn`, `ip`, `unix`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendEndpoint {
    /// DNS name and port.
    #[serde(default)]
    pub fqdn: Option<HostPort>,
    /// IP address and port.
    #[serde(default)]
    pub ip: Option<IpPort>,
    /// Unix domain socket.
    #[serde(default)]
    pub unix: Option<UnixSocket>,
    /// Zone.
    #[serde(default)]
    pub zone: Option<String>,
    /// Hostname override.
    #[serde(default)]
    pub hostname: Option<String>,
}

/// `fqdn` endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostPort {
    /// Host name.
    pub hostname: String,
    /// Port.
    pub port: u16,
}

/// `ip` endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IpPort {
    /// IPv4 or IPv6 address.
    pub address: String,
    /// Port.
    pub port: u16,
}

/// `unix` endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UnixSocket {
    /// Socket path.
    pub path: String,
}

/// `Backend.spec.tls`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendTlsSettings {
    /// SNI to send.
    #[serde(default)]
    pub sni: Option<String>,
    /// `System` to verify with the system roots.
    #[serde(default, rename = "wellKnownCACertificates")]
    pub well_known_ca_certificates: Option<String>,
    /// CA bundles (ConfigMap or Secret, key `ca.crt`).
    #[serde(default)]
    pub ca_certificate_refs: Vec<LocalObjectReference>,
    /// Skip verification.
    #[serde(default)]
    pub insecure_skip_verify: Option<bool>,
    /// Client certificate (a `kubernetes.io/tls` Secret).
    #[serde(default)]
    pub client_certificate_ref: Option<SecretObjectReference>,
    /// Minimum TLS version.
    #[serde(default)]
    pub min_version: Option<String>,
    /// Maximum TLS version.
    #[serde(default)]
    pub max_version: Option<String>,
    /// Cipher suites.
    #[serde(default)]
    pub ciphers: Vec<String>,
    /// ECDH curves.
    #[serde(default)]
    pub ecdh_curves: Vec<String>,
    /// Signature algorithms.
    #[serde(default)]
    pub signature_algorithms: Vec<String>,
    /// ALPN protocols.
    #[serde(default)]
    pub alpn_protocols: Vec<String>,
}

/// Gateway API `LocalObjectReference`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LocalObjectReference {
    /// Group (empty for core).
    #[serde(default)]
    pub group: String,
    /// `ConfigMap` or `Secret`.
    pub kind: String,
    /// Name.
    pub name: String,
}

/// Gateway API `BackendTLSPolicy.spec` (v1alpha3 and v1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendTlsPolicySpec {
    /// Targets (Backends or Services).
    #[serde(default)]
    pub target_refs: Vec<PolicyTargetReference>,
    /// Validation settings.
    pub validation: BackendTlsValidation,
    /// Implementation-specific options.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// `BackendTLSPolicy.spec.validation`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendTlsValidation {
    /// CA bundles (ConfigMap or Secret, key `ca.crt`).
    #[serde(default)]
    pub ca_certificate_refs: Vec<LocalObjectReference>,
    /// `System` for the system roots.
    #[serde(default, rename = "wellKnownCACertificates")]
    pub well_known_ca_certificates: Option<String>,
    /// SNI and the name to verify.
    pub hostname: String,
    /// Extra SANs to accept.
    #[serde(default)]
    pub subject_alt_names: Vec<SubjectAltName>,
}

/// Gateway API `SubjectAltName`: `type: Hostname` with `hostname`, or `type: URI` with
/// `uri`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubjectAltName {
    /// `Hostname` or `URI`.
    #[serde(rename = "type")]
    pub san_type: String,
    /// For `Hostname`.
    #[serde(default)]
    pub hostname: Option<String>,
    /// For `URI`.
    #[serde(default)]
    pub uri: Option<String>,
}

/// Envoy Gateway `BackendTrafficPolicy.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendTrafficPolicySpec {
    /// Single target (deprecated form).
    #[serde(default)]
    pub target_ref: Option<PolicyTargetReference>,
    /// Targets: a Gateway or an HTTPRoute (the one generated for an AIGatewayRoute has
    /// its name).
    #[serde(default)]
    pub target_refs: Vec<PolicyTargetReference>,
    /// Retries.
    #[serde(default)]
    pub retry: Option<RetrySettings>,
    /// Timeouts.
    #[serde(default)]
    pub timeout: Option<TimeoutSettings>,
    /// Rate limits.
    #[serde(default)]
    pub rate_limit: Option<RateLimitSettings>,
    /// Circuit breaking.
    #[serde(default)]
    pub circuit_breaker: Option<CircuitBreakerSettings>,
    /// Passive (outlier ejection) and active health checks.
    #[serde(default)]
    pub health_check: Option<HealthCheckSettings>,
    /// Every other setting; not applied by aigw's own data plane.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `circuitBreaker` (Envoy Gateway defaults each threshold to 1024).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CircuitBreakerSettings {
    /// Connections to the backend.
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// Requests waiting for a connection.
    #[serde(default)]
    pub max_pending_requests: Option<u32>,
    /// Requests in flight to the backend.
    #[serde(default)]
    pub max_parallel_requests: Option<u32>,
    /// Everything else (`maxParallelRetries`, `maxRequestsPerConnection`,
    /// `perEndpoint`, `retryBudget`): not applied by aigw's own data plane.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `healthCheck`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckSettings {
    /// Active checks.
    #[serde(default)]
    pub active: Option<ActiveHealthCheckSettings>,
    /// Passive checks (outlier detection).
    #[serde(default)]
    pub passive: Option<PassiveHealthCheckSettings>,
    /// Everything else (`panicThreshold`).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `healthCheck.active`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveHealthCheckSettings {
    /// `HTTP`, `TCP` or `GRPC`.
    #[serde(default, rename = "type")]
    pub check_type: Option<String>,
    /// Time to wait for a check's answer (default 1s).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Time between checks (default 3s).
    #[serde(default)]
    pub interval: Option<String>,
    /// Failed checks before a healthy backend is marked unhealthy (default 3).
    #[serde(default)]
    pub unhealthy_threshold: Option<u32>,
    /// Passed checks before an unhealthy backend is marked healthy (default 1).
    #[serde(default)]
    pub healthy_threshold: Option<u32>,
    /// The HTTP checker.
    #[serde(default)]
    pub http: Option<HttpHealthCheckSettings>,
    /// Everything else (`tcp`, `grpc`, `initialJitter`, `overrides`, `healthCheckLog`).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `healthCheck.active.http`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpHealthCheckSettings {
    /// Path requested.
    #[serde(default)]
    pub path: String,
    /// Method (default GET).
    #[serde(default)]
    pub method: Option<String>,
    /// Statuses counted as healthy (default 200).
    #[serde(default)]
    pub expected_statuses: Vec<u16>,
    /// `Host` header of the check.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Everything else (`expectedResponse`, `requestBody`, `retriableStatuses`).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `healthCheck.passive`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PassiveHealthCheckSettings {
    /// Count local-origin failures (connect, reset, timeout) apart from upstream 5xx.
    #[serde(default)]
    pub split_external_local_origin_errors: Option<bool>,
    /// Sweep interval (default 3s).
    #[serde(default)]
    pub interval: Option<String>,
    /// Consecutive local-origin failures that eject, when split (default 5).
    #[serde(default)]
    pub consecutive_local_origin_failures: Option<u32>,
    /// Consecutive gateway errors (502, 503, 504) that eject (unset: off).
    #[serde(default)]
    pub consecutive_gateway_errors: Option<u32>,
    /// Consecutive 5xx that eject (default 5).
    #[serde(default, rename = "consecutive5XxErrors")]
    pub consecutive_5xx_errors: Option<u32>,
    /// Base ejection time, multiplied by the times ejected in a row (default 30s).
    #[serde(default)]
    pub base_ejection_time: Option<String>,
    /// Largest share of the rule's backends ejected at once (default 10).
    #[serde(default)]
    pub max_ejection_percent: Option<u32>,
    /// Eject one backend even when that exceeds the percentage.
    #[serde(default)]
    pub always_eject_one_endpoint: Option<bool>,
    /// Everything else (`failurePercentageThreshold`).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `retry`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetrySettings {
    /// Retries after the first attempt (Envoy Gateway default 2).
    #[serde(default)]
    pub num_retries: Option<u32>,
    /// Attempts per priority level before failing over.
    #[serde(default)]
    pub num_attempts_per_priority: Option<u32>,
    /// Per-attempt settings.
    #[serde(default)]
    pub per_retry: Option<PerRetry>,
    /// Retry conditions.
    #[serde(default)]
    pub retry_on: Option<RetryOn>,
}

/// `retry.perRetry`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PerRetry {
    /// Per-attempt timeout.
    #[serde(default)]
    pub timeout: Option<String>,
    /// Backoff.
    #[serde(default)]
    pub back_off: Option<BackOff>,
}

/// `retry.perRetry.backOff`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackOff {
    /// Base interval.
    #[serde(default)]
    pub base_interval: Option<String>,
    /// Maximum interval.
    #[serde(default)]
    pub max_interval: Option<String>,
}

/// `retry.retryOn`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryOn {
    /// Status codes that trigger a retry (with trigger `retriable-status-codes`).
    #[serde(default)]
    pub http_status_codes: Vec<u16>,
    /// Envoy retry triggers (`connect-failure`, `retriable-status-codes`, `5xx`, …).
    #[serde(default)]
    pub triggers: Vec<String>,
}

/// `timeout`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimeoutSettings {
    /// TCP timeouts.
    #[serde(default)]
    pub tcp: Option<TcpTimeout>,
    /// HTTP timeouts.
    #[serde(default)]
    pub http: Option<HttpTimeout>,
}

/// `timeout.tcp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpTimeout {
    /// Connect timeout.
    #[serde(default)]
    pub connect_timeout: Option<String>,
}

/// `timeout.http`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpTimeout {
    /// Whole-request timeout.
    #[serde(default)]
    pub request_timeout: Option<String>,
    /// Idle connection timeout.
    #[serde(default)]
    pub connection_idle_timeout: Option<String>,
    /// Maximum connection lifetime.
    #[serde(default)]
    pub max_connection_duration: Option<String>,
    /// Maximum stream duration.
    #[serde(default)]
    pub max_stream_duration: Option<String>,
}

/// `rateLimit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitSettings {
    /// `Global` or `Local`.
    #[serde(default, rename = "type")]
    pub limit_type: Option<String>,
    /// Global (shared) rules.
    #[serde(default)]
    pub global: Option<RateLimitRules>,
    /// Local (per-instance) rules.
    #[serde(default)]
    pub local: Option<RateLimitRules>,
}

/// `{rules}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitRules {
    /// The rules.
    #[serde(default)]
    pub rules: Vec<RateLimitRule>,
}

/// One rate-limit rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitRule {
    /// Client selectors (headers, source CIDRs …), kept as written.
    #[serde(default)]
    pub client_selectors: Vec<Value>,
    /// The limit.
    pub limit: RateLimitValue,
    /// How much each request and response costs.
    #[serde(default)]
    pub cost: Option<RateLimitCost>,
    /// Count but do not enforce.
    #[serde(default)]
    pub shadow_mode: Option<bool>,
    /// Shared across routes.
    #[serde(default)]
    pub shared: Option<bool>,
}

/// `{requests, unit}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitValue {
    /// Units allowed per `unit`.
    pub requests: u64,
    /// `Second`, `Minute`, `Hour`, `Day` (also `Month`, `Year`).
    pub unit: String,
}

/// `cost`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitCost {
    /// Charged when the request arrives.
    #[serde(default)]
    pub request: Option<RateLimitCostSpecifier>,
    /// Charged when the response completes.
    #[serde(default)]
    pub response: Option<RateLimitCostSpecifier>,
}

/// A cost: a number or a dynamic metadata value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitCostSpecifier {
    /// `Number` or `Metadata`.
    pub from: String,
    /// For `Number`.
    #[serde(default)]
    pub number: Option<u64>,
    /// For `Metadata`.
    #[serde(default)]
    pub metadata: Option<MetadataKey>,
}

/// `{namespace, key}` of dynamic metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetadataKey {
    /// Namespace, e.g. `io.envoy.ai_gateway`.
    pub namespace: String,
    /// Key, e.g. `llm_total_token`.
    pub key: String,
}

/// Envoy Gateway `ClientTrafficPolicy.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientTrafficPolicySpec {
    /// Single target (deprecated form).
    #[serde(default)]
    pub target_ref: Option<PolicyTargetReference>,
    /// Targets (Gateways).
    #[serde(default)]
    pub target_refs: Vec<PolicyTargetReference>,
    /// Connection settings.
    #[serde(default)]
    pub connection: Option<ClientConnection>,
    /// Every other setting; not applied by aigw's own data plane.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `ClientTrafficPolicy.spec.connection`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientConnection {
    /// Per-connection buffer limit (Kubernetes quantity, e.g. `50Mi`): the largest
    /// request body the gateway buffers.
    #[serde(default)]
    pub buffer_limit: Option<String>,
    /// Every other connection setting.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// Gateway API `Gateway.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewaySpec {
    /// The GatewayClass.
    #[serde(default)]
    pub gateway_class_name: String,
    /// Listeners.
    #[serde(default)]
    pub listeners: Vec<Listener>,
    /// Requested addresses.
    #[serde(default)]
    pub addresses: Vec<GatewayAddress>,
    /// Infrastructure parameters (EnvoyProxy reference).
    #[serde(default)]
    pub infrastructure: Option<GatewayInfrastructure>,
    /// Gateway-level backend TLS.
    #[serde(rename = "backendTLS", default)]
    pub backend_tls: Option<Value>,
    /// Listener sets.
    #[serde(default)]
    pub allowed_listeners: Option<Value>,
}

/// A Gateway listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Listener {
    /// Name.
    pub name: String,
    /// Hostname.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Port (the standalone runner listens here).
    pub port: u16,
    /// `HTTP`, `HTTPS`, …
    pub protocol: String,
    /// TLS settings.
    #[serde(default)]
    pub tls: Option<ListenerTls>,
    /// Allowed routes.
    #[serde(default)]
    pub allowed_routes: Option<AllowedRoutes>,
}

/// Gateway API `GatewayAddress`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayAddress {
    /// `IPAddress` (default), `Hostname` or a vendor type.
    #[serde(default, rename = "type")]
    pub address_type: Option<String>,
    /// The address.
    #[serde(default)]
    pub value: Option<String>,
}

/// Gateway API `GatewayInfrastructure`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayInfrastructure {
    /// Labels for the generated resources.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations for the generated resources.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Implementation parameters (Envoy Gateway: an `EnvoyProxy`).
    #[serde(default)]
    pub parameters_ref: Option<LocalObjectReference>,
}

/// Gateway API `GatewayTLSConfig` of a listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListenerTls {
    /// `Terminate` (default) or `Passthrough`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Server certificates (`kubernetes.io/tls` Secrets).
    #[serde(default)]
    pub certificate_refs: Vec<SecretObjectReference>,
    /// Client certificate validation, kept as written.
    #[serde(default)]
    pub frontend_validation: Option<Value>,
    /// Implementation-specific options.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// Gateway API `AllowedRoutes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AllowedRoutes {
    /// Namespaces routes may attach from.
    #[serde(default)]
    pub namespaces: Option<RouteNamespaces>,
    /// Route kinds allowed.
    #[serde(default)]
    pub kinds: Vec<RouteGroupKind>,
}

/// `allowedRoutes.namespaces`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteNamespaces {
    /// `Same` (default), `All` or `Selector`.
    #[serde(default)]
    pub from: Option<String>,
    /// Label selector for `Selector`, kept as written.
    #[serde(default)]
    pub selector: Option<Value>,
}

/// `allowedRoutes.kinds[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteGroupKind {
    /// Group, default `gateway.networking.k8s.io`.
    #[serde(default)]
    pub group: Option<String>,
    /// Kind.
    pub kind: String,
}

/// Gateway API `HTTPRoute.spec`, kept loosely: aigw serves AIGatewayRoutes, but a
/// user's own HTTPRoute may be referenced by a traffic policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    /// Parent Gateways.
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    /// Hostnames.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// Rules, kept as written.
    #[serde(default)]
    pub rules: Vec<Value>,
}

/// Gateway API `ReferenceGrant.spec`: allows references into its namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReferenceGrantSpec {
    /// Who may refer.
    #[serde(default)]
    pub from: Vec<ReferenceGrantFrom>,
    /// What may be referred to.
    #[serde(default)]
    pub to: Vec<ReferenceGrantTo>,
}

/// `ReferenceGrant.spec.from[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReferenceGrantFrom {
    /// Group of the referrer.
    #[serde(default)]
    pub group: String,
    /// Kind of the referrer.
    pub kind: String,
    /// Namespace of the referrer.
    pub namespace: String,
}

/// `ReferenceGrant.spec.to[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReferenceGrantTo {
    /// Group of the referent.
    #[serde(default)]
    pub group: String,
    /// Kind of the referent.
    pub kind: String,
    /// Name (all when unset).
    #[serde(default)]
    pub name: Option<String>,
}
