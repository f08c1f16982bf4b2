//! From the filter configuration to the planner's input: per-rule candidates with
//! resolved security policies, route costs over global costs, the model list.

use super::{FilterAuth, FilterBackend, FilterConfig, FilterCost, FilterModel};
use crate::config::{
    AzureAuth, BodyMutation, CredentialOverrideSource, GcpAuth, HeaderMutationConfig,
    HttpBodyField, HttpBodyMutation, HttpHeader, HttpHeaderMutation, LlmRequestCost,
    LlmRequestCostType, ResolvedCredentialOverride, ResolvedSecurityPolicy, SecurityPolicyKind,
};
use crate::cost::{CompiledCost, CostScope, CostSet, short_backend_name};
use crate::error::{ConfigIssue, Error, Result};
use crate::planner::{Inputs, Planner};
use crate::routing::models::rfc3339_to_unix;
use crate::routing::{Assembled, AssembledRoute, BackendTarget, Candidate, ModelInfo};
use crate::schema::{ApiSchema, VersionedSchema};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `(route, rule index, ref index)` of a per-rule backend name
/// `{ns}/{backend}/route/{route}/rule/{i}/ref/{j}`; the route is `{ns}/{route}`.
pub(crate) fn parse_backend_name(name: &str) -> Option<(String, usize, usize)> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        [ns, _backend, "route", route, "rule", i, "ref", j] => {
            Some((format!("{ns}/{route}"), i.parse().ok()?, j.parse().ok()?))
        }
        _ => None,
    }
}

struct Issues(Vec<ConfigIssue>);

impl Issues {
    fn push(&mut self, field: String, message: impl Into<String>) {
        self.0.push(ConfigIssue {
            file: String::new(),
            line: None,
            document: "filter configuration".into(),
            field,
            message: message.into(),
        });
    }
}

fn schema(b: &FilterBackend) -> std::result::Result<VersionedSchema, String> {
    let name: ApiSchema = serde_json::from_value(serde_json::Value::String(b.schema.name.clone()))
        .map_err(|_| format!("unknown schema {:?}", b.schema.name))?;
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Ok(VersionedSchema {
        name,
        version: opt(&b.schema.version),
        prefix: opt(&b.schema.prefix),
        responses_over_chat: false,
    })
}

fn auth_kind(a: &FilterAuth) -> std::result::Result<SecurityPolicyKind, String> {
    let mut kinds = Vec::new();
    if let Some(k) = &a.api_key {
        kinds.push(SecurityPolicyKind::APIKey { key: k.key.clone() });
    }
    if let Some(k) = &a.azure_api_key {
        kinds.push(SecurityPolicyKind::AzureAPIKey { key: k.key.clone() });
    }
    if let Some(k) = &a.anthropic_api_key {
        kinds.push(SecurityPolicyKind::AnthropicAPIKey { key: k.key.clone() });
    }
    if let Some(aws) = &a.aws {
        kinds.push(SecurityPolicyKind::AWSCredentials {
            region: aws.region.clone(),
            credentials_file: aws.credential_file_literal.clone(),
            profile: "default".into(),
            oidc_exchange: None,
        });
    }
    if let Some(az) = &a.azure {
        kinds.push(SecurityPolicyKind::AzureCredentials {
            client_id: String::new(),
            tenant_id: String::new(),
            auth: AzureAuth::AccessToken(az.access_token.clone()),
        });
    }
    if let Some(g) = &a.gcp {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        kinds.push(SecurityPolicyKind::GCPCredentials {
            project: opt(&g.project_name),
            region: opt(&g.region),
            auth: g
                .access_token
                .clone()
                .map_or(GcpAuth::ApplicationDefault, GcpAuth::AccessToken),
        });
    }
    match kinds.len() {
        1 => Ok(kinds.remove(0)),
        0 => Err(
            "no credential: set one of apiKey, aws, azureAPIKey, anthropicAPIKey, azure, gcp"
                .into(),
        ),
        n => Err(format!("{n} credentials set; exactly one is allowed")),
    }
}

fn policy(name: &str, a: &FilterAuth) -> std::result::Result<ResolvedSecurityPolicy, String> {
    let kind = auth_kind(a)?;
    let credential_override = match &a.credential_override {
        None => None,
        Some(o) => {
            let source = match (
                o.header_name.is_empty(),
                o.dynamic_metadata_namespace.is_empty(),
            ) {
                (false, true) => {
                    CredentialOverrideSource::RequestHeader(o.header_name.to_ascii_lowercase())
                }
                (true, false) => CredentialOverrideSource::DynamicMetadata {
                    namespace: o.dynamic_metadata_namespace.clone(),
                    key: o.dynamic_metadata_key.clone(),
                },
                _ => {
                    return Err(
                        "credentialOverride needs exactly one of headerName and dynamicMetadataNamespace"
                            .into(),
                    );
                }
            };
            Some(ResolvedCredentialOverride {
                source,
                fallback_to_configured: o.fallback_to_configured,
            })
        }
    };
    Ok(ResolvedSecurityPolicy {
        name: name.to_owned(),
        kind,
        credential_override,
    })
}

fn candidate(b: &FilterBackend) -> std::result::Result<Candidate, (String, String)> {
    let schema = schema(b).map_err(|m| ("schema.name".to_owned(), m))?;
    let security_policy = b
        .auth
        .as_ref()
        .map(|a| policy(&b.name, a))
        .transpose()
        .map_err(|m| ("auth".to_owned(), m))?
        .map(Arc::new);
    let short = short_backend_name(&b.name).to_owned();
    let header = b.http_header_mutation.as_ref().map(|m| HttpHeaderMutation {
        set: m
            .set
            .iter()
            .map(|h| HttpHeader {
                name: h.name.clone(),
                value: h.value.clone(),
            })
            .collect(),
        remove: m.remove.clone(),
    });
    let body = b.http_body_mutation.as_ref().map(|m| HttpBodyMutation {
        set: m
            .set
            .iter()
            .map(|f| HttpBodyField {
                path: f.path.clone(),
                value: f.value.clone(),
            })
            .collect(),
        remove: m.remove.clone(),
    });
    Ok(Candidate {
        target: Arc::new(BackendTarget {
            name: short.clone(),
            schema,
            backend: short,
            endpoints: Vec::new(),
            tls: None,
            // Envoy dials the backend: its cluster carries the protocol.
            http2_prior_knowledge: false,
            security_policy,
            request_timeout: None,
            inference_pool: None,
        }),
        backend_name: b.name.clone(),
        model_name_override: (!b.model_name_override.is_empty())
            .then(|| b.model_name_override.clone()),
        weight: 1,
        priority: 0,
        header_mutation: HeaderMutationConfig::merge(header.as_ref(), None),
        body_mutation: BodyMutation::merge(body.as_ref(), None),
    })
}

fn compile_cost(c: &FilterCost) -> std::result::Result<CompiledCost, crate::cost::CostError> {
    let cost = LlmRequestCost {
        metadata_key: c.metadata_key.clone(),
        cost_type: c.cost_type,
        cel: (c.cost_type == LlmRequestCostType::Cel).then(|| c.cel.clone()),
    };
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Ok(CompiledCost::compile(&cost)?.scoped(CostScope {
        backend: opt(&c.backend),
        model: opt(&c.model),
    }))
}

fn model_info(m: &FilterModel, hostnames: Vec<String>) -> ModelInfo {
    ModelInfo {
        id: m.name.clone(),
        owned_by: if m.owned_by.is_empty() {
            crate::config::DEFAULT_MODELS_OWNED_BY.to_owned()
        } else {
            m.owned_by.clone()
        },
        created: rfc3339_to_unix(&m.created_at).unwrap_or(0),
        hostnames,
    }
}

/// The model list with upstream's precedence: `modelsByHost` for the hosts it names
/// (each list already holds the unscoped models), `unscopedModels` for the others;
/// `models` for every host when nothing is host-scoped.
fn models(c: &FilterConfig) -> Vec<ModelInfo> {
    if c.models_by_host.is_empty() {
        return c.models.iter().map(|m| model_info(m, Vec::new())).collect();
    }
    let mut out: Vec<ModelInfo> = c
        .unscoped_models
        .iter()
        .map(|m| model_info(m, Vec::new()))
        .collect();
    for (host, list) in &c.models_by_host {
        for m in list {
            if c.unscoped_models.iter().any(|u| u.name == m.name) {
                continue;
            }
            match out
                .iter_mut()
                .find(|o| o.id == m.name && !o.hostnames.is_empty())
            {
                Some(o) => o.hostnames.push(host.clone()),
                None => out.push(model_info(m, vec![host.clone()])),
            }
        }
    }
    out
}

type Rules = BTreeMap<usize, Vec<(usize, Candidate)>>;

impl FilterConfig {
    /// The planner's input: every backend as a candidate of its route's rule (routes
    /// named by the per-rule backend name; other names form one unnamed route), each
    /// route's costs over the global ones, the model list. Every problem is reported.
    pub fn assemble(&self) -> Result<Assembled> {
        let mut issues = Issues(Vec::new());
        let mut routes: BTreeMap<String, (Rules, Vec<CompiledCost>)> = BTreeMap::new();
        for (k, b) in self.backends.iter().enumerate() {
            match candidate(b) {
                Ok(c) => {
                    let (route, rule, r#ref) =
                        parse_backend_name(&b.name).unwrap_or((String::new(), 0, k));
                    let rules = &mut routes.entry(route).or_default().0;
                    rules.entry(rule).or_default().push((r#ref, c));
                }
                Err((field, message)) => {
                    issues.push(format!("backends[{k}] ({}).{field}", b.name), message);
                }
            }
        }
        let mut global = Vec::new();
        for (k, c) in self.global_llm_request_costs.iter().enumerate() {
            match compile_cost(c) {
                Ok(c) => global.push(c),
                Err(e) => issues.push(format!("globalLLMRequestCosts[{k}].{}", e.field), e.message),
            }
        }
        for (k, c) in self.llm_request_costs.iter().enumerate() {
            if c.route_name.is_empty() {
                issues.push(
                    format!("llmRequestCosts[{k}].routeName"),
                    format!(
                        "route-scoped cost {:?} must name its route (use globalLLMRequestCosts for every route)",
                        c.metadata_key
                    ),
                );
                continue;
            }
            match compile_cost(c) {
                Ok(cost) => routes.entry(c.route_name.clone()).or_default().1.push(cost),
                Err(e) => issues.push(format!("llmRequestCosts[{k}].{}", e.field), e.message),
            }
        }
        if !issues.0.is_empty() {
            return Err(Error::InvalidConfig { issues: issues.0 });
        }
        let routes = routes
            .into_iter()
            .map(|(name, (rules, costs))| AssembledRoute {
                name,
                rules: rules
                    .into_iter()
                    .map(|(i, mut refs)| {
                        refs.sort_by_key(|(j, _)| *j);
                        (i, refs.into_iter().map(|(_, c)| c).collect())
                    })
                    .collect(),
                costs: CostSet::merge(costs, global.clone()),
            })
            .collect();
        Ok(Assembled {
            routes,
            models: models(self),
            default_costs: CostSet::merge(Vec::new(), global),
        })
    }

    /// Builds the planner for this configuration.
    pub fn planner(&self, inputs: Inputs<'_>) -> Result<Planner> {
        Planner::assemble(self.assemble()?, inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_rule_names() {
        assert_eq!(
            parse_backend_name("ns/b/route/r/rule/2/ref/1"),
            Some(("ns/r".into(), 2, 1))
        );
        assert_eq!(parse_backend_name("openai"), None);
        assert_eq!(parse_backend_name("ns/b/route/r/rule/x/ref/1"), None);
    }
}
