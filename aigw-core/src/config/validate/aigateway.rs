//! AIGatewayRoute, AIServiceBackend, GatewayConfig and QuotaPolicy.

use super::*;

pub(super) fn route(
    config: &Config,
    r: &Resource<AIGatewayRouteSpec>,
    issues: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<ConfigIssue>,
) {
    let mut d = doc(r, issues);
    let spec = &r.spec;
    parent_refs_gateway_only(&mut d, &spec.parent_refs);
    if spec.hostnames.len() > MAX_PARENT_REFS {
        d.err(
            "spec.hostnames",
            format!(
                "at most {MAX_PARENT_REFS} hostnames are allowed, found {}",
                spec.hostnames.len()
            ),
        );
    }
    if spec.rules.len() > MAX_RULES {
        d.err(
            "spec.rules",
            format!(
                "at most {MAX_RULES} rules are allowed per AIGatewayRoute (one HTTPRoute slot is reserved for the catch-all rule), found {}; split the rules across several AIGatewayRoutes",
                spec.rules.len()
            ),
        );
    }
    let mut names = BTreeMap::new();
    for (i, rule) in spec.rules.iter().enumerate() {
        let rf = format!("spec.rules[{i}]");
        if let Some(name) = rule.name.as_deref() {
            if name == RESERVED_RULE_NAME {
                d.err(format!("{rf}.name"), format!("{RESERVED_RULE_NAME:?} is reserved for the gateway's catch-all rule; choose another name"));
            } else if let Some(first) = names.insert(name.to_string(), i) {
                d.err(format!("{rf}.name"), format!("rule name {name:?} is already used by spec.rules[{first}]; rule names must be unique"));
            }
        }
        if rule.matches.len() > MAX_MATCHES {
            d.err(
                format!("{rf}.matches"),
                format!(
                    "at most {MAX_MATCHES} matches are allowed, found {}",
                    rule.matches.len()
                ),
            );
        }
        for (j, m) in rule.matches.iter().enumerate() {
            header_matches(&mut d, &format!("{rf}.matches[{j}].headers"), &m.headers);
        }
        if rule.backend_refs.len() > MAX_BACKEND_REFS {
            d.err(
                format!("{rf}.backendRefs"),
                format!(
                    "at most {MAX_BACKEND_REFS} backendRefs are allowed per rule, found {}",
                    rule.backend_refs.len()
                ),
            );
        }
        let pools = rule
            .backend_refs
            .iter()
            .filter(|b| b.is_inference_pool())
            .count();
        if pools > 0 && pools < rule.backend_refs.len() {
            d.err(
                format!("{rf}.backendRefs"),
                "cannot mix InferencePool and AIServiceBackend references in the same rule",
            );
        } else if pools > 1 {
            d.err(
                format!("{rf}.backendRefs"),
                "only one InferencePool backend is allowed per rule",
            );
        }
        for (j, b) in rule.backend_refs.iter().enumerate() {
            let bf = format!("{rf}.backendRefs[{j}]");
            if b.name.is_empty() {
                d.err(format!("{bf}.name"), "name is required");
            }
            match (&b.group, &b.kind) {
                (Some(_), None) | (None, Some(_)) => {
                    d.err(bf.clone(), "group and kind must be specified together");
                }
                (Some(g), Some(k)) if g != INFERENCE_GROUP || k != "InferencePool" => {
                    d.err(format!("{bf}.group"), format!("only InferencePool from {INFERENCE_GROUP} is supported, found {k} in group {g:?}"));
                }
                _ => {}
            }
            if let Some(w) = b.weight
                && (w < 0 || w > i64::from(i32::MAX))
            {
                d.err(
                    format!("{bf}.weight"),
                    format!("weight must be between 0 and {}, found {w}", i32::MAX),
                );
            }
            if let Some(p) = b.priority
                && (p < 0 || p > i64::from(u32::MAX))
            {
                d.err(
                    format!("{bf}.priority"),
                    format!("priority must be 0 or greater, found {p}"),
                );
            }
            if let Some(m) = &b.header_mutation {
                header_mutation(&mut d, &format!("{bf}.headerMutation"), m);
            }
            if let Some(m) = &b.body_mutation {
                body_mutation(&mut d, &format!("{bf}.bodyMutation"), m);
            }
            let ns = non_empty(b.namespace.as_deref()).unwrap_or(r.namespace());
            if b.is_inference_pool() {
                if find(&config.inference_pools, ns, &b.name).is_none() {
                    warnings.push(ConfigIssue {
                        file: r.source.file.clone(),
                        line: None,
                        document: r.label(),
                        field: format!("{bf}.name"),
                        message: format!(
                            "InferencePool {ns}/{} is not defined in the loaded files",
                            b.name
                        ),
                    });
                }
            } else if !b.name.is_empty() && find(&config.ai_service_backends, ns, &b.name).is_none()
            {
                d.err(
                    format!("{bf}.name"),
                    format!(
                        "AIServiceBackend {ns}/{} referenced by AIGatewayRoute {} is not defined",
                        b.name,
                        r.key()
                    ),
                );
            }
            if !b.is_inference_pool()
                && !config.reference_allowed(
                    (AIGW_GROUP, "AIGatewayRoute", r.namespace()),
                    (AIGW_GROUP, "AIServiceBackend", ns, &b.name),
                )
            {
                warnings.push(cross_namespace(
                    r,
                    &format!("{bf}.namespace"),
                    "AIServiceBackend",
                    ns,
                    &b.name,
                ));
            }
        }
        if let Some(t) = &rule.timeouts {
            dur_field(&mut d, &format!("{rf}.timeouts.request"), &t.request);
            dur_field(
                &mut d,
                &format!("{rf}.timeouts.backendRequest"),
                &t.backend_request,
            );
            if let (Some(Ok(req)), Some(Ok(back))) = (
                t.request.as_deref().map(parse_duration),
                t.backend_request.as_deref().map(parse_duration),
            ) && !req.is_zero()
                && back > req
            {
                d.err(
                    format!("{rf}.timeouts.backendRequest"),
                    "backendRequest must not be longer than request",
                );
            }
        }
        dur_field(
            &mut d,
            &format!("{rf}.streamIdleTimeout"),
            &rule.stream_idle_timeout,
        );
        if let Some(ts) = &rule.models_created_at
            && !is_rfc3339(ts)
        {
            d.err(
                format!("{rf}.modelsCreatedAt"),
                format!("{ts:?} is not an RFC 3339 timestamp such as 2024-05-21T10:00:00Z"),
            );
        }
    }
    costs(
        &mut d,
        "spec.llmRequestCosts",
        &spec.llm_request_costs,
        MAX_COSTS,
    );
    gateway_warnings(config, r, &spec.parent_refs, warnings);
}

/// `aigw.run/responses`: `passthrough` or `translate`, and only on an OpenAI-schema
/// backend (every other schema is translated anyway; Azure has the Responses API).
fn responses_annotation(d: &mut Doc<'_>, b: &Resource<AIServiceBackendSpec>) {
    use crate::schema::{ApiSchema, RESPONSES_ANNOTATION};
    let Some(v) = b.metadata.annotations.get(RESPONSES_ANNOTATION) else {
        return;
    };
    let field = format!("metadata.annotations[{RESPONSES_ANNOTATION}]");
    if v != "translate" && v != "passthrough" {
        d.err(
            &field,
            format!("must be `translate` or `passthrough`, not {v:?}"),
        );
    } else if b.spec.schema.name != ApiSchema::OpenAI {
        d.err(
            &field,
            format!(
                "applies only to schema OpenAI (OpenAI-compatible servers such as vLLM or \
                 Ollama); {} backends are {}",
                b.spec.schema.name,
                if b.spec.schema.name == ApiSchema::AzureOpenAI {
                    "passed through"
                } else {
                    "always translated"
                }
            ),
        );
    }
}

pub(super) fn ai_service_backend(
    config: &Config,
    b: &Resource<AIServiceBackendSpec>,
    issues: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<ConfigIssue>,
) {
    let mut d = doc(b, issues);
    let r = &b.spec.backend_ref;
    let kind_ok = r.kind.as_deref() == Some("Backend");
    let group_ok = r.group.as_deref() == Some(EG_GROUP);
    if !kind_ok || !group_ok {
        d.err(
            if kind_ok { "spec.backendRef.group" } else { "spec.backendRef.kind" },
            format!(
                "backendRef must be a Backend resource of Envoy Gateway (kind: Backend, group: {EG_GROUP}); Kubernetes Services are not supported (see envoyproxy/ai-gateway#902)"
            ),
        );
    } else {
        let ns = non_empty(r.namespace.as_deref()).unwrap_or(b.namespace());
        if !config.reference_allowed(
            (AIGW_GROUP, "AIServiceBackend", b.namespace()),
            (EG_GROUP, "Backend", ns, &r.name),
        ) {
            warnings.push(cross_namespace(
                b,
                "spec.backendRef.namespace",
                "Backend",
                ns,
                &r.name,
            ));
        }
        if find(&config.backends, ns, &r.name).is_none() {
            d.err(
                "spec.backendRef.name",
                format!(
                    "Backend {ns}/{} referenced by AIServiceBackend {} is not defined",
                    r.name,
                    b.key()
                ),
            );
        }
    }
    if let Some(m) = &b.spec.header_mutation {
        header_mutation(&mut d, "spec.headerMutation", m);
    }
    if let Some(m) = &b.spec.body_mutation {
        body_mutation(&mut d, "spec.bodyMutation", m);
    }
    if let Some(m) = &b.spec.response_body_mutation {
        body_mutation(&mut d, "spec.responseBodyMutation", m);
    }
    responses_annotation(&mut d, b);
    if let Some(r) = &b.spec.backend_security_policy_ref
        && find(&config.backend_security_policies, b.namespace(), &r.name).is_none()
    {
        d.err(
            "spec.backendSecurityPolicyRef.name",
            format!(
                "BackendSecurityPolicy {}/{} referenced by AIServiceBackend {} is not defined",
                b.namespace(),
                r.name,
                b.key()
            ),
        );
    }
    if let Some(t) = &b.spec.timeouts {
        dur_field(&mut d, "spec.timeouts.request", &t.request);
        dur_field(&mut d, "spec.timeouts.backendRequest", &t.backend_request);
    }
}

/// Upstream's CRD limits and rules for a QuotaPolicy, and its cost expressions
/// compiled as `llmRequestCosts` CEL is.
pub(super) fn quota_policy(
    config: &Config,
    q: &Resource<QuotaPolicySpec>,
    issues: &mut Vec<ConfigIssue>,
) {
    let mut d = doc(q, issues);
    if q.spec.target_refs.len() > 16 {
        d.err(
            "spec.targetRefs",
            format!(
                "at most 16 targetRefs are allowed, found {}",
                q.spec.target_refs.len()
            ),
        );
    }
    for (i, t) in q.spec.target_refs.iter().enumerate() {
        if t.kind != "AIServiceBackend" || t.group != AIGW_GROUP {
            d.err(
                format!("spec.targetRefs[{i}]"),
                format!(
                    "targetRefs must reference AIServiceBackend resources (group {AIGW_GROUP}, kind AIServiceBackend); found group {:?}, kind {:?}",
                    t.group, t.kind
                ),
            );
        } else if find(&config.ai_service_backends, q.namespace(), &t.name).is_none() {
            d.err(
                format!("spec.targetRefs[{i}].name"),
                format!(
                    "AIServiceBackend {}/{} is not defined",
                    q.namespace(),
                    t.name
                ),
            );
        }
    }
    fn quota_value(d: &mut Doc<'_>, base: &str, v: &QuotaValue) {
        if !matches!(v.duration.as_str(), "1s" | "1m" | "1h" | "1d") {
            d.err(
                format!("{base}.duration"),
                format!("duration {:?} must be one of 1s, 1m, 1h, 1d", v.duration),
            );
        }
    }
    fn cost_expression(d: &mut Doc<'_>, field: &str, expression: Option<&str>) {
        if let Some(e) = expression
            && let Err(err) = CelCost::compile(e)
        {
            d.err(field.to_string(), err.message);
        }
    }
    if let Some(sq) = &q.spec.service_quota {
        cost_expression(
            &mut d,
            "spec.serviceQuota.costExpression",
            sq.cost_expression.as_deref(),
        );
        quota_value(&mut d, "spec.serviceQuota.quota", &sq.quota);
    }
    if q.spec.per_model_quotas.len() > 128 {
        d.err(
            "spec.perModelQuotas",
            format!(
                "at most 128 perModelQuotas are allowed, found {}",
                q.spec.per_model_quotas.len()
            ),
        );
    }
    for (i, pm) in q.spec.per_model_quotas.iter().enumerate() {
        let base = format!("spec.perModelQuotas[{i}]");
        if pm.model_name.is_empty() {
            d.err(format!("{base}.modelName"), "modelName must not be empty");
        } else if !quota_model_overridden(config, q, &pm.model_name) {
            d.err(
                format!("{base}.modelName"),
                format!(
                    "no AIGatewayRoute backendRef to a targeted backend has modelNameOverride {:?}; per-model quotas apply to overridden model names",
                    pm.model_name
                ),
            );
        }
        cost_expression(
            &mut d,
            &format!("{base}.quota.costExpression"),
            pm.quota.cost_expression.as_deref(),
        );
        if let Some(mode) = &pm.quota.mode
            && !matches!(mode.as_str(), "Shared" | "Exclusive" | "MostGenerous")
        {
            d.err(
                format!("{base}.quota.mode"),
                format!("mode {mode:?} must be Shared, Exclusive or MostGenerous"),
            );
        }
        if let Some(b) = &pm.quota.default_bucket {
            quota_value(&mut d, &format!("{base}.quota.defaultBucket"), b);
        }
        if pm.quota.bucket_rules.len() > 128 {
            d.err(
                format!("{base}.quota.bucketRules"),
                format!(
                    "at most 128 bucketRules are allowed, found {}",
                    pm.quota.bucket_rules.len()
                ),
            );
        }
        for (k, r) in pm.quota.bucket_rules.iter().enumerate() {
            let rf = format!("{base}.quota.bucketRules[{k}]");
            if r.client_selectors.len() > 8 {
                d.err(
                    format!("{rf}.clientSelectors"),
                    format!(
                        "at most 8 clientSelectors are allowed, found {}",
                        r.client_selectors.len()
                    ),
                );
            }
            quota_value(&mut d, &format!("{rf}.quota"), &r.quota);
        }
    }
}

/// Whether some route's backendRef to one of the policy's targets overrides the model
/// name to `model`.
pub(super) fn quota_model_overridden(
    config: &Config,
    q: &Resource<QuotaPolicySpec>,
    model: &str,
) -> bool {
    config.ai_gateway_routes.iter().any(|r| {
        r.spec
            .rules
            .iter()
            .flat_map(|rule| &rule.backend_refs)
            .any(|b| {
                let ns = non_empty(b.namespace.as_deref()).unwrap_or(r.namespace());
                b.model_name_override.as_deref() == Some(model)
                    && ns == q.namespace()
                    && q.spec.target_refs.iter().any(|t| t.name == b.name)
            })
    })
}

/// A GatewayConfig: its global `llmRequestCosts`.
pub(super) fn gateway_config(g: &Resource<GatewayConfigSpec>, issues: &mut Vec<ConfigIssue>) {
    let mut d = doc(g, issues);
    costs(
        &mut d,
        "spec.globalLLMRequestCosts",
        &g.spec.global_llm_request_costs,
        usize::MAX,
    );
}
