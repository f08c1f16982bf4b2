//! Configuration: the upstream project's Kubernetes YAML, loaded and validated.
//!
//! [`Config`] holds every document of one or more multi-document YAML files, typed one
//! struct per kind with the upstream field names. Every schema error of a document
//! (unknown field, wrong type, missing field) is reported, not just the first. Validation
//! follows the upstream CRD rules and resolves cross-references (route →
//! AIServiceBackend → Backend, policy → target); every problem is collected into
//! [`Error::InvalidConfig`], each naming the file and line, the document
//! (`Kind/namespace/name`) and the field path:
//! `gateway.yaml:42: AIGatewayRoute/default/r1: spec.rules[0].backendRefs[1].weight: …`.
//!
//! Policy for references to objects a file does not define:
//! * route → AIServiceBackend, AIServiceBackend → Backend, BackendSecurityPolicy →
//!   AIServiceBackend, MCPRoute → Backend, Gateway → GatewayConfig: **errors**.
//! * → Secret, → Gateway (parentRefs), → InferencePool, → ConfigMap: **warnings**
//!   ([`Config::warnings`]); such objects are often created out of band. Secrets must
//!   resolve when the routing snapshot is compiled ([`crate::routing::Snapshot`]) or
//!   when [`Config::check_secrets`] is called.
//!
//! Kinds that configure Envoy itself (GatewayClass, EnvoyProxy, HTTPRouteFilter, …) and unrelated Kubernetes kinds are accepted and
//! listed as ignored. BackendTrafficPolicy and ClientTrafficPolicy are read for the
//! settings a gateway honours (see [`traffic`]); SecurityPolicy for its client
//! authentication (`apiKeyAuth`, `jwt`); its other sections are typed and checked.

mod aigateway;
mod envoy_gateway;
mod lines;
mod load;
mod mcp;
mod meta;
mod mutation;
mod parse;
mod parts;
mod resolve;
mod schema;
mod secret;
mod security_policy;
pub mod traffic;
mod validate;

pub use aigateway::*;
pub use envoy_gateway::*;
pub use mcp::*;
pub use meta::*;
pub use mutation::{BodyMutation, HeaderMutationConfig};
pub use parts::{part_header, parts_checksum};
pub use resolve::{
    AwsOidcExchange, AzureAuth, CredentialOverrideSource, GcpAuth, OidcSettings,
    ResolvedCredentialOverride, ResolvedSecurityPolicy, SecurityPolicyKind,
};
pub use secret::{SecretDocument, SecretLookupError, SecretSource};
pub use security_policy::*;

pub use crate::error::ConfigIssue;
use serde_json::Value;
use std::sync::Arc;

/// A typed Kubernetes object with its source location.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource<S> {
    /// `group/version`.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// The spec.
    pub spec: S,
    /// Where the document was read from.
    pub source: Source,
}

impl<S> Resource<S> {
    /// The name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The namespace (`default` when unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace()
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        self.metadata.key()
    }

    /// `Kind/namespace/name`, as used in error messages.
    pub fn label(&self) -> String {
        format!("{}/{}", self.kind, self.key())
    }
}

/// A document that was accepted but not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredDocument {
    /// `Kind/namespace/name`.
    pub label: String,
    /// `apiVersion`.
    pub api_version: String,
    /// Where it came from.
    pub source: Source,
    /// Why it is not used.
    pub reason: String,
}

/// Counts per file, for `aigw validate`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSummary {
    /// The file.
    pub file: String,
    /// AIGatewayRoutes.
    pub routes: usize,
    /// AIServiceBackends.
    pub ai_service_backends: usize,
    /// Envoy Gateway Backends.
    pub backends: usize,
    /// BackendSecurityPolicies.
    pub security_policies: usize,
    /// MCPRoutes.
    pub mcp_routes: usize,
    /// GatewayConfigs.
    pub gateway_configs: usize,
    /// QuotaPolicies.
    pub quota_policies: usize,
    /// BackendTLSPolicies.
    pub tls_policies: usize,
    /// BackendTrafficPolicies and ClientTrafficPolicies.
    pub traffic_policies: usize,
    /// Gateways.
    pub gateways: usize,
    /// Secrets.
    pub secrets: usize,
    /// Documents accepted and ignored, as `Kind/namespace/name`.
    pub ignored: Vec<String>,
}

/// All loaded documents, typed.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// AIGatewayRoutes.
    pub ai_gateway_routes: Vec<Resource<AIGatewayRouteSpec>>,
    /// AIServiceBackends.
    pub ai_service_backends: Vec<Resource<AIServiceBackendSpec>>,
    /// BackendSecurityPolicies.
    pub backend_security_policies: Vec<Resource<BackendSecurityPolicySpec>>,
    /// MCPRoutes.
    pub mcp_routes: Vec<Resource<MCPRouteSpec>>,
    /// GatewayConfigs.
    pub gateway_configs: Vec<Resource<GatewayConfigSpec>>,
    /// QuotaPolicies.
    pub quota_policies: Vec<Resource<QuotaPolicySpec>>,
    /// Envoy Gateway Backends.
    pub backends: Vec<Resource<BackendSpec>>,
    /// BackendTLSPolicies.
    pub backend_tls_policies: Vec<Resource<BackendTlsPolicySpec>>,
    /// BackendTrafficPolicies.
    pub backend_traffic_policies: Vec<Resource<BackendTrafficPolicySpec>>,
    /// ClientTrafficPolicies.
    pub client_traffic_policies: Vec<Resource<ClientTrafficPolicySpec>>,
    /// Gateways.
    pub gateways: Vec<Resource<GatewaySpec>>,
    /// HTTPRoutes (kept for reference checks; not served).
    pub http_routes: Vec<Resource<HttpRouteSpec>>,
    /// ReferenceGrants (allow cross-namespace references).
    pub reference_grants: Vec<Resource<ReferenceGrantSpec>>,
    /// InferencePools (kept for reference checks).
    pub inference_pools: Vec<Resource<Value>>,
    /// Envoy Gateway SecurityPolicies (client authentication).
    pub envoy_security_policies: Vec<Resource<SecurityPolicySpec>>,
    /// Secrets.
    pub secrets: Vec<SecretDocument>,
    /// ConfigMaps (CA bundles).
    pub config_maps: Vec<Resource<std::collections::BTreeMap<String, String>>>,
    /// Documents accepted and not used.
    pub ignored: Vec<IgnoredDocument>,
    /// Files in load order.
    pub files: Vec<String>,
    warnings: Vec<ConfigIssue>,
    /// Where each document's nodes are, for issues found after loading.
    lines: Arc<lines::Lines>,
}

impl Config {
    /// Gives issues found after loading (by [`crate::routing::Snapshot`], by a meter, by
    /// an embedder) the line of their field, when their file and document name a
    /// loaded document and they have no line yet.
    pub fn locate(&self, issues: &mut [ConfigIssue]) {
        for issue in issues {
            self.lines.fill(issue);
        }
    }

    /// Non-fatal findings: references to objects not in the loaded files (Secrets,
    /// Gateways, InferencePools, CA ConfigMaps), settings that are not honoured.
    pub fn warnings(&self) -> &[ConfigIssue] {
        &self.warnings
    }

    /// One warning per InferencePool backendRef, for packagings that cannot ask an
    /// endpoint picker (`aigw-extproc envoy-config`, an `aigw-axum` built without its
    /// `inference-pool` feature): they route no request to a pool, and since a rule
    /// cannot mix pools and AIServiceBackends, such a rule has no backend at all there.
    /// `not_served` completes "is not served …" with why. Not part of
    /// [`Config::warnings`] because the packagings that ask pickers (the ExtProc behind
    /// the operator's extension server, `aigw run`) do serve pools.
    pub fn inference_pool_warnings(&self, not_served: &str) -> Vec<ConfigIssue> {
        let mut out = Vec::new();
        for route in &self.ai_gateway_routes {
            for (i, rule) in route.spec.rules.iter().enumerate() {
                let rule_name = rule
                    .name
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .map_or_else(|| format!("rule {i}"), |n| format!("rule {i} ({n})"));
                for (j, b) in rule.backend_refs.iter().enumerate() {
                    if !b.is_inference_pool() {
                        continue;
                    }
                    let ns = meta::non_empty(b.namespace.as_deref()).unwrap_or(route.namespace());
                    out.push(ConfigIssue {
                        file: route.source.file.clone(),
                        line: None,
                        document: route.label(),
                        field: format!("spec.rules[{i}].backendRefs[{j}]"),
                        message: format!(
                            "InferencePool {ns}/{} of AIGatewayRoute {} {rule_name} is not served {not_served}; \
                             requests this rule matches have no backend",
                            b.name,
                            route.key(),
                        ),
                    });
                }
            }
        }
        self.locate(&mut out);
        out
    }

    /// Per-file counts and ignored kinds.
    pub fn summaries(&self) -> Vec<FileSummary> {
        let mut out: Vec<FileSummary> = self
            .files
            .iter()
            .map(|f| FileSummary {
                file: f.clone(),
                ..Default::default()
            })
            .collect();
        fn slot<'a>(out: &'a mut [FileSummary], file: &str) -> Option<&'a mut FileSummary> {
            out.iter_mut().find(|s| s.file == file)
        }
        macro_rules! count {
            ($list:expr, $field:ident) => {
                for r in &$list {
                    if let Some(s) = slot(&mut out, &r.source.file) {
                        s.$field += 1;
                    }
                }
            };
        }
        count!(self.ai_gateway_routes, routes);
        count!(self.ai_service_backends, ai_service_backends);
        count!(self.backends, backends);
        count!(self.backend_security_policies, security_policies);
        count!(self.mcp_routes, mcp_routes);
        count!(self.gateway_configs, gateway_configs);
        count!(self.quota_policies, quota_policies);
        count!(self.backend_tls_policies, tls_policies);
        count!(self.backend_traffic_policies, traffic_policies);
        count!(self.client_traffic_policies, traffic_policies);
        count!(self.gateways, gateways);
        for s in &self.secrets {
            if let Some(slot) = slot(&mut out, &s.source.file) {
                slot.secrets += 1;
            }
        }
        for i in &self.ignored {
            if let Some(slot) = slot(&mut out, &i.source.file) {
                slot.ignored.push(i.label.clone());
            }
        }
        out
    }

    /// Looks up an AIServiceBackend by namespace and name.
    pub fn ai_service_backend(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<&Resource<AIServiceBackendSpec>> {
        find(&self.ai_service_backends, namespace, name)
    }

    /// Looks up an Envoy Gateway Backend by namespace and name.
    pub fn backend(&self, namespace: &str, name: &str) -> Option<&Resource<BackendSpec>> {
        find(&self.backends, namespace, name)
    }

    /// The BackendSecurityPolicy targeting an AIServiceBackend, if any.
    pub fn security_policy_for(
        &self,
        namespace: &str,
        backend_name: &str,
    ) -> Option<&Resource<BackendSecurityPolicySpec>> {
        self.backend_security_policies
            .iter()
            .find(|p| {
                p.namespace() == namespace
                    && p.spec
                        .target_refs
                        .iter()
                        .any(|t| t.kind == "AIServiceBackend" && t.name == backend_name)
            })
            .or_else(|| {
                let b = self.ai_service_backend(namespace, backend_name)?;
                let r = b.spec.backend_security_policy_ref.as_ref()?;
                find(&self.backend_security_policies, namespace, &r.name)
            })
    }

    /// The GatewayConfig referenced (by annotation) from the Gateways this route
    /// attaches to; the first one found.
    pub fn gateway_config_for_route(
        &self,
        route: &Resource<AIGatewayRouteSpec>,
    ) -> Option<&Resource<GatewayConfigSpec>> {
        for parent in &route.spec.parent_refs {
            let ns = meta::non_empty(parent.namespace.as_deref()).unwrap_or(route.namespace());
            let Some(gw) = find(&self.gateways, ns, &parent.name) else {
                continue;
            };
            if let Some(cfg_name) = gw.metadata.annotations.get(GATEWAY_CONFIG_ANNOTATION)
                && let Some(cfg) = find(&self.gateway_configs, gw.namespace(), cfg_name)
            {
                return Some(cfg);
            }
        }
        None
    }

    /// Whether a reference from `from_kind` in `from_ns` (group `from_group`) to
    /// `to_kind`/`to_name` in `to_ns` is allowed: same namespace, or a ReferenceGrant in
    /// `to_ns` permits it.
    pub fn reference_allowed(
        &self,
        (from_group, from_kind, from_ns): (&str, &str, &str),
        (to_group, to_kind, to_ns, to_name): (&str, &str, &str, &str),
    ) -> bool {
        from_ns == to_ns
            || self.reference_grants.iter().any(|g| {
                g.namespace() == to_ns
                    && g.spec.from.iter().any(|f| {
                        f.group == from_group && f.kind == from_kind && f.namespace == from_ns
                    })
                    && g.spec.to.iter().any(|t| {
                        t.group == to_group
                            && t.kind == to_kind
                            && t.name.as_deref().is_none_or(|n| n == to_name)
                    })
            })
    }
}

/// The Gateway annotation naming its GatewayConfig (same namespace).
pub const GATEWAY_CONFIG_ANNOTATION: &str = "aigateway.envoyproxy.io/gateway-config";

pub(crate) fn find<'a, S>(
    list: &'a [Resource<S>],
    namespace: &str,
    name: &str,
) -> Option<&'a Resource<S>> {
    list.iter()
        .find(|r| r.name() == name && r.namespace() == namespace)
}
