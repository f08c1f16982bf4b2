//! The filter configuration the upstream controller writes for a set of CRDs
//! (`internal/controller/gateway.go: reconcileFilterConfigSecret`), rebuilt here so a
//! CRD configuration and its filter form can be compared and so operators can see what
//! the ExtProc is given.

use super::{
    AwsAuth, AzureTokenAuth, FilterAuth, FilterBackend, FilterBodyField, FilterBodyMutation,
    FilterConfig, FilterCost, FilterCredentialOverride, FilterHeader, FilterHeaderMutation,
    FilterModel, FilterSchema, GcpAuth as FilterGcp, KeyAuth,
};
use crate::config::{
    AIGatewayRouteSpec, AzureAuth, Config, CredentialOverrideSource, DEFAULT_MODELS_OWNED_BY,
    GcpAuth, HeaderMatchType, HttpBodyMutation, HttpHeaderMutation, LlmRequestCostType,
    MODEL_HEADER, ResolvedSecurityPolicy, Resource, SecretSource, SecurityPolicyKind, non_empty,
};
use crate::schema::{ApiSchema, VersionedSchema};
use crate::secret::Secret;

/// Go's zero `time.Time`, which the controller writes when a route has no creation
/// timestamp.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Renders the filter configuration for every AIGatewayRoute of `config`, as the
/// controller does for one Gateway: backends the controller would skip (a missing
/// AIServiceBackend, a policy whose secret is missing) are skipped and named in the
/// returned warnings. Secret references resolve through `secrets`.
pub fn render(
    config: &Config,
    secrets: &SecretSource,
    version: &str,
    uuid: &str,
) -> (FilterConfig, Vec<String>) {
    let mut warnings = Vec::new();
    let mut out = FilterConfig {
        version: version.to_owned(),
        uuid: uuid.to_owned(),
        ..FilterConfig::default()
    };
    if let Some(gc) = config
        .ai_gateway_routes
        .iter()
        .find_map(|r| config.gateway_config_for_route(r))
    {
        out.global_llm_request_costs = gc
            .spec
            .global_llm_request_costs
            .iter()
            .map(|c| cost(c, ""))
            .collect();
    }
    let mut unscoped = Vec::new();
    for route in &config.ai_gateway_routes {
        let route_name = route.key();
        let mut any_backend = false;
        for (i, rule) in route.spec.rules.iter().enumerate() {
            for m in rule.matches.iter().flat_map(|m| &m.headers) {
                if m.match_type != HeaderMatchType::Exact || m.name != MODEL_HEADER {
                    continue;
                }
                let model = FilterModel {
                    name: m.value.clone(),
                    owned_by: rule
                        .models_owned_by
                        .clone()
                        .unwrap_or_else(|| DEFAULT_MODELS_OWNED_BY.to_owned()),
                    created_at: rule
                        .models_created_at
                        .clone()
                        .or_else(|| route.metadata.creation_timestamp.clone())
                        .unwrap_or_else(|| ZERO_TIME.to_owned()),
                };
                out.models.push(model.clone());
                if route.spec.hostnames.is_empty() {
                    unscoped.push(model);
                } else {
                    for h in &route.spec.hostnames {
                        out.models_by_host
                            .entry(h.clone())
                            .or_default()
                            .push(model.clone());
                    }
                }
            }
            for (j, r) in rule.backend_refs.iter().enumerate() {
                match backend(config, secrets, route, i, j) {
                    Ok(b) => {
                        any_backend = true;
                        out.backends.push(b);
                    }
                    Err(w) => warnings.push(format!("{}: {w}; skipped", route.label())),
                }
                let _ = r;
            }
        }
        if any_backend {
            // Last definition per key wins, as the controller dedups.
            let mut costs: Vec<FilterCost> = Vec::new();
            for c in &route.spec.llm_request_costs {
                costs.retain(|x| x.metadata_key != c.metadata_key);
                costs.push(cost(c, &route_name));
            }
            out.llm_request_costs.extend(costs);
        }
    }
    if !out.models_by_host.is_empty() && !unscoped.is_empty() {
        for list in out.models_by_host.values_mut() {
            list.extend(unscoped.iter().cloned());
        }
        out.unscoped_models = unscoped;
    }
    if !config.mcp_routes.is_empty() {
        warnings.push(format!(
            "{} MCPRoute(s) not rendered: mcpConfig is written by the MCP proxy's renderer",
            config.mcp_routes.len()
        ));
    }
    (out, warnings)
}

fn cost(c: &crate::config::LlmRequestCost, route: &str) -> FilterCost {
    FilterCost {
        metadata_key: c.metadata_key.clone(),
        route_name: route.to_owned(),
        cost_type: c.cost_type,
        cel: if c.cost_type == LlmRequestCostType::Cel {
            c.cel.clone().unwrap_or_default()
        } else {
            String::new()
        },
        backend: String::new(),
        model: String::new(),
    }
}

/// `schemaToFilterAPI`: OpenAI and Anthropic keep only the prefix (default `v1`),
/// the others only the version.
fn schema(s: &VersionedSchema) -> FilterSchema {
    let name = s.name.as_str().to_owned();
    if matches!(s.name, ApiSchema::OpenAI | ApiSchema::Anthropic) {
        FilterSchema {
            name,
            version: String::new(),
            prefix: non_empty(s.prefix.as_deref()).unwrap_or("v1").to_owned(),
        }
    } else {
        FilterSchema {
            name,
            version: s.version.clone().unwrap_or_default(),
            prefix: String::new(),
        }
    }
}

fn backend(
    config: &Config,
    secrets: &SecretSource,
    route: &Resource<AIGatewayRouteSpec>,
    i: usize,
    j: usize,
) -> Result<FilterBackend, String> {
    let r = &route.spec.rules[i].backend_refs[j];
    let ns = non_empty(r.namespace.as_deref()).unwrap_or(route.namespace());
    let mut b = FilterBackend {
        name: format!("{ns}/{}/route/{}/rule/{i}/ref/{j}", r.name, route.name()),
        model_name_override: r.model_name_override.clone().unwrap_or_default(),
        ..FilterBackend::default()
    };
    if r.is_inference_pool() {
        b.schema = FilterSchema {
            name: "OpenAI".into(),
            version: "v1".into(),
            prefix: "v1".into(),
        };
        return Ok(b);
    }
    let asb = config
        .ai_service_backend(ns, &r.name)
        .ok_or_else(|| format!("AIServiceBackend {ns}/{} not found", r.name))?;
    b.schema = schema(&asb.spec.schema);
    b.http_header_mutation = header_mutation(
        r.header_mutation.as_ref(),
        asb.spec.header_mutation.as_ref(),
    );
    b.http_body_mutation = body_mutation(r.body_mutation.as_ref(), asb.spec.body_mutation.as_ref());
    if let Some(p) = config.security_policy_for(ns, &r.name) {
        let resolved = ResolvedSecurityPolicy::resolve(p, secrets)
            .map_err(|(field, m)| format!("{} {field}: {m}", p.label()))?;
        let bsp_secret = |key: &str| {
            secrets
                .resolve(p.namespace(), &format!("ai-eg-bsp-{}", p.name()), key)
                .map_err(|e| format!("{}: rotated credential: {e}", p.label()))
        };
        let auth = auth(&resolved, bsp_secret)?;
        if let Some(o) = &auth.credential_override {
            let m = b.http_header_mutation.get_or_insert_with(Default::default);
            m.remove.extend(o.input_headers_to_remove.iter().cloned());
        }
        b.auth = Some(auth);
    }
    Ok(b)
}

fn auth(
    p: &ResolvedSecurityPolicy,
    rotated: impl Fn(&str) -> Result<Secret, String>,
) -> Result<FilterAuth, String> {
    let key = |k: &Secret| Some(KeyAuth { key: k.clone() });
    let mut a = FilterAuth::default();
    let mut aws = false;
    match &p.kind {
        SecurityPolicyKind::APIKey { key: k } => a.api_key = key(k),
        SecurityPolicyKind::AzureAPIKey { key: k } => a.azure_api_key = key(k),
        SecurityPolicyKind::AnthropicAPIKey { key: k } => a.anthropic_api_key = key(k),
        SecurityPolicyKind::AWSCredentials {
            region,
            credentials_file,
            oidc_exchange,
            ..
        } => {
            aws = true;
            let literal = match (credentials_file, oidc_exchange) {
                (Some(f), _) => Some(f.clone()),
                (None, Some(_)) => Some(rotated("credentials")?),
                (None, None) => None,
            };
            a.aws = Some(AwsAuth {
                credential_file_literal: literal,
                region: region.clone(),
            });
        }
        SecurityPolicyKind::AzureCredentials { auth, .. } => {
            let token = match auth {
                AzureAuth::AccessToken(t) => t.clone(),
                _ => rotated("azureAccessToken")?,
            };
            a.azure = Some(AzureTokenAuth {
                access_token: token,
            });
        }
        SecurityPolicyKind::GCPCredentials {
            project,
            region,
            auth,
        } => {
            let token = match auth {
                GcpAuth::ApplicationDefault | GcpAuth::Passthrough => None,
                GcpAuth::AccessToken(t) => Some(t.clone()),
                _ => Some(rotated("gcpAccessToken")?),
            };
            a.gcp = Some(FilterGcp {
                access_token: token,
                region: region.clone().unwrap_or_default(),
                project_name: project.clone().unwrap_or_default(),
            });
        }
    }
    if let Some(o) = &p.credential_override {
        let mut f = FilterCredentialOverride {
            fallback_to_configured: o.fallback_to_configured,
            ..FilterCredentialOverride::default()
        };
        match &o.source {
            CredentialOverrideSource::RequestHeader(h) => {
                f.header_name = h.clone();
                f.input_headers_to_remove = if aws {
                    ["access-key-id", "secret-access-key", "session-token"]
                        .iter()
                        .map(|s| format!("{h}{s}"))
                        .collect()
                } else {
                    vec![h.clone()]
                };
            }
            CredentialOverrideSource::DynamicMetadata { namespace, key } => {
                f.dynamic_metadata_namespace = namespace.clone();
                f.dynamic_metadata_key = key.clone();
            }
        }
        a.credential_override = Some(f);
    }
    Ok(a)
}

/// `mergeHeaderMutations` then `headerMutationToFilterAPI`: the route's entries over
/// the backend's, names lower-cased; `None` when neither level has one.
fn header_mutation(
    route: Option<&HttpHeaderMutation>,
    backend: Option<&HttpHeaderMutation>,
) -> Option<FilterHeaderMutation> {
    if route.is_none() && backend.is_none() {
        return None;
    }
    let mut out = FilterHeaderMutation::default();
    for m in [backend, route].into_iter().flatten() {
        for h in &m.set {
            let name = h.name.to_ascii_lowercase();
            out.set.retain(|x| x.name != name);
            out.set.push(FilterHeader {
                name,
                value: h.value.clone(),
            });
        }
        for r in &m.remove {
            let name = r.to_ascii_lowercase();
            if !out.remove.contains(&name) {
                out.remove.push(name);
            }
        }
    }
    Some(out)
}

/// `mergeBodyMutations` then `bodyMutationToFilterAPI`.
fn body_mutation(
    route: Option<&HttpBodyMutation>,
    backend: Option<&HttpBodyMutation>,
) -> Option<FilterBodyMutation> {
    if route.is_none() && backend.is_none() {
        return None;
    }
    let mut out = FilterBodyMutation::default();
    for m in [backend, route].into_iter().flatten() {
        for f in &m.set {
            out.set.retain(|x| x.path != f.path);
            out.set.push(FilterBodyField {
                path: f.path.clone(),
                value: f.value.clone(),
            });
        }
        for r in &m.remove {
            if !out.remove.contains(r) {
                out.remove.push(r.clone());
            }
        }
    }
    Some(out)
}
