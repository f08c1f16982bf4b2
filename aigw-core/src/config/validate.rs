//! Validation: the upstream CRD rules (limits, CEL `XValidation`s) and cross-references.

use super::aigateway::*;
use super::envoy_gateway::BackendSpec;
use super::lines::Lines;
use super::mcp::{MAX_MCP_BACKENDS, MAX_TOOL_SELECTORS, MCPRouteSpec, MCPToolFilter};
use super::meta::{
    HeaderMatchType, HttpHeaderMatch, Source, non_empty, parse_duration, parse_quantity_bytes,
};
use super::parse::{AIGW_GROUP, EG_GROUP, GWAPI_GROUP, INFERENCE_GROUP};
use super::secret::SecretSource;
use super::{Config, GATEWAY_CONFIG_ANNOTATION, Resource, find};
use crate::cost::{CelCost, CompiledCost};
use crate::error::ConfigIssue;
use std::collections::{BTreeMap, BTreeSet};

/// Issue sink for one document.
struct Doc<'a> {
    file: &'a str,
    document: String,
    issues: &'a mut Vec<ConfigIssue>,
}

impl Doc<'_> {
    fn err(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.issues.push(ConfigIssue {
            file: self.file.to_string(),
            line: None,
            document: self.document.clone(),
            field: field.into(),
            message: message.into(),
        });
    }
}

fn doc<'a, S>(r: &'a Resource<S>, issues: &'a mut Vec<ConfigIssue>) -> Doc<'a> {
    Doc {
        file: &r.source.file,
        document: r.label(),
        issues,
    }
}

fn at(s: &Source) -> String {
    format!("{} document #{}", s.file, s.index + 1)
}

pub(crate) fn validate(
    config: &Config,
    issues: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<ConfigIssue>,
    lines: &Lines,
) {
    duplicates(config, issues, lines);
    for r in &config.ai_gateway_routes {
        route(config, r, issues, warnings);
    }
    for b in &config.ai_service_backends {
        ai_service_backend(config, b, issues, warnings);
    }
    for b in &config.backends {
        eg_backend(b, issues);
    }
    security_policies(config, issues, warnings);
    for m in &config.mcp_routes {
        mcp_route(config, m, issues, warnings);
    }
    for g in &config.gateway_configs {
        let mut d = doc(g, issues);
        costs(
            &mut d,
            "spec.globalLLMRequestCosts",
            &g.spec.global_llm_request_costs,
            usize::MAX,
        );
    }
    for gw in &config.gateways {
        if let Some(name) = gw.metadata.annotations.get(GATEWAY_CONFIG_ANNOTATION)
            && find(&config.gateway_configs, gw.namespace(), name).is_none()
        {
            doc(gw, issues).err(
                    format!("metadata.annotations[{GATEWAY_CONFIG_ANNOTATION}]"),
                    format!(
                        "GatewayConfig {}/{name} referenced by Gateway {} is not defined (it must be in the Gateway's namespace)",
                        gw.namespace(),
                        gw.key()
                    ),
                );
        }
    }
    for q in &config.quota_policies {
        quota_policy(config, q, issues);
    }
    for p in &config.backend_tls_policies {
        let mut d = doc(p, issues);
        if p.spec.validation.hostname.is_empty() {
            d.err(
                "spec.validation.hostname",
                "hostname is required (it is the SNI and the name verified)",
            );
        }
        if p.spec.validation.ca_certificate_refs.is_empty()
            && p.spec.validation.well_known_ca_certificates.is_none()
        {
            d.err(
                "spec.validation",
                "set wellKnownCACertificates: System or caCertificateRefs",
            );
        }
        for (i, t) in p.spec.target_refs.iter().enumerate() {
            if t.kind == "Backend" && find(&config.backends, p.namespace(), &t.name).is_none() {
                warnings.push(ConfigIssue {
                    file: p.source.file.clone(),
                    line: None,
                    document: p.label(),
                    field: format!("spec.targetRefs[{i}].name"),
                    message: format!(
                        "Backend {}/{} is not defined in the loaded files",
                        p.namespace(),
                        t.name
                    ),
                });
            }
        }
    }
    for p in &config.backend_traffic_policies {
        let mut d = doc(p, issues);
        if let Some(r) = &p.spec.retry {
            if let Some(per) = &r.per_retry {
                dur_field(&mut d, "spec.retry.perRetry.timeout", &per.timeout);
                if let Some(b) = &per.back_off {
                    dur_field(
                        &mut d,
                        "spec.retry.perRetry.backOff.baseInterval",
                        &b.base_interval,
                    );
                    dur_field(
                        &mut d,
                        "spec.retry.perRetry.backOff.maxInterval",
                        &b.max_interval,
                    );
                }
            }
            if let Some(on) = &r.retry_on {
                for (i, c) in on.http_status_codes.iter().enumerate() {
                    if !(100..=599).contains(c) {
                        d.err(
                            format!("spec.retry.retryOn.httpStatusCodes[{i}]"),
                            format!("{c} is not an HTTP status"),
                        );
                    }
                }
            }
        }
        if let Some(t) = &p.spec.timeout {
            if let Some(h) = &t.http {
                dur_field(
                    &mut d,
                    "spec.timeout.http.requestTimeout",
                    &h.request_timeout,
                );
                dur_field(
                    &mut d,
                    "spec.timeout.http.connectionIdleTimeout",
                    &h.connection_idle_timeout,
                );
                dur_field(
                    &mut d,
                    "spec.timeout.http.maxConnectionDuration",
                    &h.max_connection_duration,
                );
            }
            if let Some(tcp) = &t.tcp {
                dur_field(
                    &mut d,
                    "spec.timeout.tcp.connectTimeout",
                    &tcp.connect_timeout,
                );
            }
        }
        if let Some(rl) = &p.spec.rate_limit {
            for (scope, rules) in [("global", &rl.global), ("local", &rl.local)] {
                for (i, r) in rules.iter().flat_map(|r| r.rules.iter()).enumerate() {
                    if super::traffic::unit_window(&r.limit.unit).is_none() {
                        d.err(
                            format!("spec.rateLimit.{scope}.rules[{i}].limit.unit"),
                            format!(
                                "unit {:?} must be Second, Minute, Hour, Day, Month or Year",
                                r.limit.unit
                            ),
                        );
                    }
                    for (which, c) in r
                        .cost
                        .iter()
                        .flat_map(|c| [("request", &c.request), ("response", &c.response)])
                    {
                        if let Some(c) = c {
                            let field = format!("spec.rateLimit.{scope}.rules[{i}].cost.{which}");
                            match c.from.as_str() {
                                "Number" => {}
                                "Metadata" if c.metadata.is_some() => {}
                                "Metadata" => d.err(
                                    format!("{field}.metadata"),
                                    "required when from is Metadata",
                                ),
                                other => d.err(
                                    format!("{field}.from"),
                                    format!("{other:?} must be Number or Metadata"),
                                ),
                            }
                        }
                    }
                }
            }
        }
        let ns = p.namespace().to_string();
        for (i, t) in p.spec.target_refs.iter().enumerate() {
            let known = match t.kind.as_str() {
                "HTTPRoute" => {
                    find(&config.ai_gateway_routes, &ns, &t.name).is_some()
                        || find(&config.http_routes, &ns, &t.name).is_some()
                }
                "Gateway" => find(&config.gateways, &ns, &t.name).is_some(),
                _ => true,
            };
            if !known {
                warnings.push(ConfigIssue {
                    file: p.source.file.clone(),
                    line: None,
                    document: p.label(),
                    field: format!("spec.targetRefs[{i}].name"),
                    message: format!(
                        "{} {ns}/{} is not defined in the loaded files (an HTTPRoute target must be named like its AIGatewayRoute)",
                        t.kind, t.name
                    ),
                });
            }
        }
        if !p.spec.other.is_empty() {
            warnings.push(ConfigIssue {
                file: p.source.file.clone(),
                line: None,
                document: p.label(),
                field: "spec".into(),
                message: format!(
                    "settings not applied by aigw's own data plane: {}",
                    p.spec.other.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    for p in &config.client_traffic_policies {
        let ignored = super::traffic::ClientSettings::from_policy(p).ignored;
        if !ignored.is_empty() {
            warnings.push(ConfigIssue {
                file: p.source.file.clone(),
                line: None,
                document: p.label(),
                field: "spec".into(),
                message: format!(
                    "settings not applied by aigw's own data plane: {}",
                    ignored.join(", ")
                ),
            });
        }
        if let Some(limit) = p
            .spec
            .connection
            .as_ref()
            .and_then(|c| c.buffer_limit.as_deref())
            && parse_quantity_bytes(limit).is_none()
        {
            doc(p, issues).err(
                "spec.connection.bufferLimit",
                format!("{limit:?} is not a Kubernetes quantity such as 50Mi or 32768"),
            );
        }
    }
    check_secret_refs(config, None, issues, warnings);
}

/// Upstream's CRD limits and rules for a QuotaPolicy, and its cost expressions
/// compiled as `llmRequestCosts` CEL is.
fn quota_policy(config: &Config, q: &Resource<QuotaPolicySpec>, issues: &mut Vec<ConfigIssue>) {
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
fn quota_model_overridden(config: &Config, q: &Resource<QuotaPolicySpec>, model: &str) -> bool {
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

fn dur_field(d: &mut Doc<'_>, field: &str, v: &Option<String>) {
    if let Some(v) = v
        && let Err(e) = parse_duration(v)
    {
        d.err(field, e.to_string());
    }
}

/// A second definition names the line of its own `metadata.name`: looking the line up
/// by label afterwards would find the first definition.
fn duplicates(config: &Config, issues: &mut Vec<ConfigIssue>, lines: &Lines) {
    fn check<S>(list: &[Resource<S>], issues: &mut Vec<ConfigIssue>, lines: &Lines) {
        let mut seen: BTreeMap<String, &Source> = BTreeMap::new();
        for r in list {
            if let Some(first) = seen.get(&r.key()) {
                issues.push(ConfigIssue {
                    file: r.source.file.clone(),
                    line: lines.line_at(&r.source, "metadata.name"),
                    document: r.label(),
                    field: "metadata.name".into(),
                    message: format!("{} is defined twice (first at {})", r.label(), at(first)),
                });
            } else {
                seen.insert(r.key(), &r.source);
            }
        }
    }
    check(&config.ai_gateway_routes, issues, lines);
    check(&config.ai_service_backends, issues, lines);
    check(&config.backend_security_policies, issues, lines);
    check(&config.mcp_routes, issues, lines);
    check(&config.gateway_configs, issues, lines);
    check(&config.quota_policies, issues, lines);
    check(&config.backends, issues, lines);
    check(&config.gateways, issues, lines);
    let mut seen: BTreeMap<String, &Source> = BTreeMap::new();
    for s in &config.secrets {
        if let Some(first) = seen.get(&s.key()) {
            issues.push(ConfigIssue {
                file: s.source.file.clone(),
                line: lines.line_at(&s.source, "metadata.name"),
                document: format!("Secret/{}", s.key()),
                field: "metadata.name".into(),
                message: format!(
                    "Secret {} is defined twice (first at {})",
                    s.key(),
                    at(first)
                ),
            });
        } else {
            seen.insert(s.key(), &s.source);
        }
    }
}

fn header_matches(d: &mut Doc<'_>, base: &str, headers: &[HttpHeaderMatch]) {
    if headers.len() > MAX_HEADER_MATCHES {
        d.err(
            base.to_string(),
            format!(
                "at most {MAX_HEADER_MATCHES} header matches are allowed, found {}",
                headers.len()
            ),
        );
    }
    let mut names = BTreeSet::new();
    for (k, h) in headers.iter().enumerate() {
        let f = format!("{base}[{k}]");
        if h.name.is_empty() || http::HeaderName::try_from(h.name.as_str()).is_err() {
            d.err(
                format!("{f}.name"),
                format!("{:?} is not a valid header name", h.name),
            );
        }
        if !names.insert(h.name.to_ascii_lowercase()) {
            d.err(
                format!("{f}.name"),
                format!(
                    "header {:?} is matched twice in the same match; combine the conditions",
                    h.name
                ),
            );
        }
        if h.match_type == HeaderMatchType::RegularExpression
            && let Err(e) = regex::Regex::new(&h.value)
        {
            d.err(
                format!("{f}.value"),
                format!("invalid regular expression: {e}"),
            );
        }
    }
}

fn header_mutation(d: &mut Doc<'_>, base: &str, m: &HttpHeaderMutation) {
    if m.set.len() > MAX_MUTATIONS {
        d.err(
            format!("{base}.set"),
            format!(
                "at most {MAX_MUTATIONS} entries are allowed, found {}",
                m.set.len()
            ),
        );
    }
    if m.remove.len() > MAX_MUTATIONS {
        d.err(
            format!("{base}.remove"),
            format!(
                "at most {MAX_MUTATIONS} entries are allowed, found {}",
                m.remove.len()
            ),
        );
    }
    let mut names = BTreeSet::new();
    for (i, h) in m.set.iter().enumerate() {
        if http::HeaderName::try_from(h.name.as_str()).is_err() {
            d.err(
                format!("{base}.set[{i}].name"),
                format!("{:?} is not a valid header name", h.name),
            );
        }
        if http::HeaderValue::try_from(h.value.as_str()).is_err() {
            d.err(
                format!("{base}.set[{i}].value"),
                "not a valid header value (control characters are not allowed)",
            );
        }
        if !names.insert(h.name.to_ascii_lowercase()) {
            d.err(
                format!("{base}.set[{i}].name"),
                format!("header {:?} is set twice", h.name),
            );
        }
    }
    for (i, r) in m.remove.iter().enumerate() {
        if http::HeaderName::try_from(r.as_str()).is_err() {
            d.err(
                format!("{base}.remove[{i}]"),
                format!("{r:?} is not a valid header name"),
            );
        }
    }
}

fn body_mutation(d: &mut Doc<'_>, base: &str, m: &HttpBodyMutation) {
    if m.set.len() > MAX_MUTATIONS {
        d.err(
            format!("{base}.set"),
            format!(
                "at most {MAX_MUTATIONS} entries are allowed, found {}",
                m.set.len()
            ),
        );
    }
    if m.remove.len() > MAX_MUTATIONS {
        d.err(
            format!("{base}.remove"),
            format!(
                "at most {MAX_MUTATIONS} entries are allowed, found {}",
                m.remove.len()
            ),
        );
    }
    let mut paths = BTreeSet::new();
    for (i, f) in m.set.iter().enumerate() {
        if f.path.is_empty() {
            d.err(
                format!("{base}.set[{i}].path"),
                "path must name a top-level JSON field",
            );
        }
        if !paths.insert(f.path.clone()) {
            d.err(
                format!("{base}.set[{i}].path"),
                format!("field {:?} is set twice", f.path),
            );
        }
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&f.value) {
            d.err(
                format!("{base}.set[{i}].value"),
                format!("value must be JSON text (a string needs quotes, e.g. '\"scale\"'): {e}"),
            );
        }
    }
}

fn costs(d: &mut Doc<'_>, base: &str, list: &[LlmRequestCost], max: usize) {
    if list.len() > max {
        d.err(
            base.to_string(),
            format!("at most {max} costs are allowed, found {}", list.len()),
        );
    }
    let mut keys = BTreeSet::new();
    for (i, c) in list.iter().enumerate() {
        if let Err(e) = CompiledCost::compile(c) {
            d.err(format!("{base}[{i}].{}", e.field), e.message);
        }
        if !keys.insert(c.metadata_key.clone()) {
            d.err(
                format!("{base}[{i}].metadataKey"),
                format!("metadataKey {:?} is used twice", c.metadata_key),
            );
        }
    }
}

fn parent_refs_gateway_only(d: &mut Doc<'_>, refs: &[super::meta::ParentReference]) {
    if refs.len() > MAX_PARENT_REFS {
        d.err(
            "spec.parentRefs",
            format!(
                "at most {MAX_PARENT_REFS} parentRefs are allowed, found {}",
                refs.len()
            ),
        );
    }
    for (i, p) in refs.iter().enumerate() {
        if let Some(kind) = non_empty(p.kind.as_deref())
            && kind != "Gateway"
        {
            d.err(
                format!("spec.parentRefs[{i}].kind"),
                format!("only Gateway is supported, found {kind:?}"),
            );
        }
        if let Some(group) = non_empty(p.group.as_deref())
            && group != GWAPI_GROUP
        {
            d.err(
                format!("spec.parentRefs[{i}].group"),
                format!("must be {GWAPI_GROUP}, found {group:?}"),
            );
        }
    }
}

fn gateway_warnings<S>(
    config: &Config,
    r: &Resource<S>,
    refs: &[super::meta::ParentReference],
    warnings: &mut Vec<ConfigIssue>,
) {
    for (i, p) in refs.iter().enumerate() {
        let ns = non_empty(p.namespace.as_deref()).unwrap_or(r.namespace());
        if find(&config.gateways, ns, &p.name).is_none() {
            warnings.push(ConfigIssue {
                file: r.source.file.clone(),
                line: None,
                document: r.label(),
                field: format!("spec.parentRefs[{i}].name"),
                message: format!("Gateway {ns}/{} is not defined in the loaded files", p.name),
            });
        }
    }
}

fn is_rfc3339(s: &str) -> bool {
    // Kubernetes metav1.Time: date, `T`, time, optional fraction, `Z` or an offset.
    regex::Regex::new(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
        .map(|re| re.is_match(s))
        .unwrap_or(false)
}

fn route(
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

fn ai_service_backend(
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

fn eg_backend(b: &Resource<BackendSpec>, issues: &mut Vec<ConfigIssue>) {
    let mut d = doc(b, issues);
    let dynamic = b.spec.backend_type.as_deref() == Some("DynamicResolver");
    if b.spec.endpoints.is_empty() && !dynamic {
        d.err("spec.endpoints", "at least one endpoint is required");
    }
    for (i, e) in b.spec.endpoints.iter().enumerate() {
        let n = usize::from(e.fqdn.is_some())
            + usize::from(e.ip.is_some())
            + usize::from(e.unix.is_some());
        if n != 1 {
            d.err(
                format!("spec.endpoints[{i}]"),
                "exactly one of fqdn, ip or unix must be set",
            );
        }
        if let Some(ip) = &e.ip
            && ip.address.parse::<std::net::IpAddr>().is_err()
        {
            d.err(
                format!("spec.endpoints[{i}].ip.address"),
                format!("{:?} is not an IP address", ip.address),
            );
        }
    }
}

fn security_policies(
    config: &Config,
    issues: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<ConfigIssue>,
) {
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    for p in &config.backend_security_policies {
        let mut d = doc(p, issues);
        let s = &p.spec;
        let set: [(&str, bool); 6] = [
            ("apiKey", s.api_key.is_some()),
            ("awsCredentials", s.aws_credentials.is_some()),
            ("azureAPIKey", s.azure_api_key.is_some()),
            ("azureCredentials", s.azure_credentials.is_some()),
            ("gcpCredentials", s.gcp_credentials.is_some()),
            ("anthropicAPIKey", s.anthropic_api_key.is_some()),
        ];
        let want = s.policy_type.field();
        for (field, present) in set {
            if field == want && !present {
                d.err(
                    format!("spec.{field}"),
                    format!("required when type is {:?}", s.policy_type),
                );
            } else if field != want && present {
                d.err(
                    format!("spec.{field}"),
                    format!(
                        "type is {:?}, so only {want} may be set; remove {field} or change type",
                        s.policy_type
                    ),
                );
            }
        }
        if s.target_refs.len() > 16 {
            d.err(
                "spec.targetRefs",
                format!(
                    "at most 16 targetRefs are allowed, found {}",
                    s.target_refs.len()
                ),
            );
        }
        for (i, t) in s.target_refs.iter().enumerate() {
            let f = format!("spec.targetRefs[{i}]");
            let is_backend = t.group == AIGW_GROUP && t.kind == "AIServiceBackend";
            let is_pool = t.group == INFERENCE_GROUP && t.kind == "InferencePool";
            if !is_backend && !is_pool {
                d.err(
                    f,
                    format!("targetRefs must reference AIServiceBackend ({AIGW_GROUP}) or InferencePool ({INFERENCE_GROUP}), found {} in group {:?}", t.kind, t.group),
                );
                continue;
            }
            let target = format!("{}/{}/{}", t.kind, p.namespace(), t.name);
            if is_backend && find(&config.ai_service_backends, p.namespace(), &t.name).is_none() {
                d.err(
                    format!("{f}.name"),
                    format!("AIServiceBackend {}/{} targeted by BackendSecurityPolicy {} is not defined", p.namespace(), t.name, p.key()),
                );
            }
            if is_pool && find(&config.inference_pools, p.namespace(), &t.name).is_none() {
                warnings.push(ConfigIssue {
                    file: p.source.file.clone(),
                    line: None,
                    document: p.label(),
                    field: format!("{f}.name"),
                    message: format!(
                        "InferencePool {}/{} is not defined in the loaded files",
                        p.namespace(),
                        t.name
                    ),
                });
            }
            if let Some(other) = claimed.insert(target.clone(), p.key()) {
                d.err(
                    format!("{f}.name"),
                    format!("{target} is already targeted by BackendSecurityPolicy {other}; only one policy may target a backend"),
                );
            }
        }
        if let Some(a) = &s.aws_credentials {
            if a.region.is_empty() {
                d.err("spec.awsCredentials.region", "region is required");
            }
            if a.credentials_file.is_some() && a.oidc_exchange_token.is_some() {
                d.err(
                    "spec.awsCredentials",
                    "set at most one of credentialsFile or oidcExchangeToken",
                );
            }
            if let Some(o) = &a.oidc_exchange_token
                && non_empty(o.aws_role_arn.as_deref()).is_none()
            {
                d.err(
                    "spec.awsCredentials.oidcExchangeToken.awsRoleArn",
                    "awsRoleArn is required",
                );
            }
        }
        if let Some(a) = &s.azure_credentials {
            if a.client_id.is_empty() {
                d.err("spec.azureCredentials.clientID", "clientID is required");
            }
            if a.tenant_id.is_empty() {
                d.err("spec.azureCredentials.tenantID", "tenantID is required");
            }
            if a.client_secret_ref.is_some() == a.oidc_exchange_token.is_some() {
                d.err(
                    "spec.azureCredentials",
                    "exactly one of clientSecretRef or oidcExchangeToken must be specified",
                );
            }
        }
        if let Some(g) = &s.gcp_credentials {
            if g.credentials_file.is_some() && g.workload_identity_federation_config.is_some() {
                d.err("spec.gcpCredentials", "at most one of credentialsFile or workloadIdentityFederationConfig may be specified");
            }
            if !g.is_passthrough {
                if non_empty(g.project_name.as_deref()).is_none() {
                    d.err(
                        "spec.gcpCredentials.projectName",
                        "projectName is required unless isPassthrough is true",
                    );
                }
                if non_empty(g.region.as_deref()).is_none() {
                    d.err(
                        "spec.gcpCredentials.region",
                        "region is required unless isPassthrough is true",
                    );
                }
            }
        }
        if let Some(o) = &s.credential_override {
            if o.from_request_headers.is_some() == o.from_dynamic_metadata.is_some() {
                d.err(
                    "spec.credentialOverride",
                    "exactly one of fromRequestHeaders or fromDynamicMetadata must be set",
                );
            }
            if let Some(m) = &o.from_dynamic_metadata
                && m.namespace.is_empty()
            {
                d.err(
                    "spec.credentialOverride.fromDynamicMetadata.namespace",
                    "namespace is required",
                );
            }
        }
    }
}

fn tool_selector(d: &mut Doc<'_>, base: &str, t: &MCPToolFilter) {
    if t.include.is_some() && t.include_regex.is_some() {
        d.err(
            base.to_string(),
            "include and includeRegex are mutually exclusive",
        );
    }
    if t.exclude.is_some() && t.exclude_regex.is_some() {
        d.err(
            base.to_string(),
            "exclude and excludeRegex are mutually exclusive",
        );
    }
    if t.include.is_none()
        && t.include_regex.is_none()
        && t.exclude.is_none()
        && t.exclude_regex.is_none()
    {
        d.err(
            base.to_string(),
            "at least one of include, includeRegex, exclude, or excludeRegex must be specified",
        );
    }
    for (name, list, is_regex) in [
        ("include", &t.include, false),
        ("includeRegex", &t.include_regex, true),
        ("exclude", &t.exclude, false),
        ("excludeRegex", &t.exclude_regex, true),
    ] {
        let Some(list) = list else { continue };
        if list.len() > MAX_TOOL_SELECTORS {
            d.err(
                format!("{base}.{name}"),
                format!(
                    "at most {MAX_TOOL_SELECTORS} entries are allowed, found {}",
                    list.len()
                ),
            );
        }
        if is_regex {
            for (k, re) in list.iter().enumerate() {
                if let Err(e) = regex::Regex::new(re) {
                    d.err(
                        format!("{base}.{name}[{k}]"),
                        format!("invalid regular expression: {e}"),
                    );
                }
            }
        }
    }
}

fn mcp_route(
    config: &Config,
    m: &Resource<MCPRouteSpec>,
    issues: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<ConfigIssue>,
) {
    let mut d = doc(m, issues);
    let s = &m.spec;
    if s.parent_refs.is_empty() {
        d.err(
            "spec.parentRefs",
            "at least one parentRef (a Gateway) is required",
        );
    }
    parent_refs_gateway_only(&mut d, &s.parent_refs);
    for (i, p) in s.parent_refs.iter().enumerate() {
        if let Some(ns) = non_empty(p.namespace.as_deref())
            && ns != m.namespace()
        {
            d.err(format!("spec.parentRefs[{i}].namespace"), "cross-namespace parentRefs are not supported; the Gateway must be in the MCPRoute's namespace");
        }
    }
    if let Some(p) = &s.path
        && (!p.starts_with('/') || p.len() > 1024)
    {
        d.err(
            "spec.path",
            "path must start with '/' and be at most 1024 characters",
        );
    }
    header_matches(&mut d, "spec.headers", &s.headers);
    if s.backend_refs.is_empty() {
        d.err("spec.backendRefs", "at least one backendRef is required");
    }
    if s.backend_refs.len() > MAX_MCP_BACKENDS {
        d.err(
            "spec.backendRefs",
            format!(
                "at most {MAX_MCP_BACKENDS} backendRefs are allowed, found {}",
                s.backend_refs.len()
            ),
        );
    }
    let mut names = BTreeMap::new();
    for (i, b) in s.backend_refs.iter().enumerate() {
        let bf = format!("spec.backendRefs[{i}]");
        if let Some(first) = names.insert(b.name.clone(), i) {
            d.err(format!("{bf}.name"), format!("backend name {:?} is already used by spec.backendRefs[{first}]; all backendRefs names must be unique", b.name));
        }
        if let Some(ns) = non_empty(b.namespace.as_deref())
            && ns != m.namespace()
        {
            d.err(
                format!("{bf}.namespace"),
                "cross-namespace backendRefs are not supported",
            );
        }
        if let Some(p) = &b.path
            && (!p.starts_with('/') || p.len() > 1024)
        {
            d.err(
                format!("{bf}.path"),
                "path must start with '/' and be at most 1024 characters",
            );
        }
        let is_eg_backend =
            b.kind.as_deref() == Some("Backend") && b.group.as_deref() == Some(EG_GROUP);
        if is_eg_backend {
            if find(&config.backends, m.namespace(), &b.name).is_none() {
                d.err(
                    format!("{bf}.name"),
                    format!(
                        "Backend {}/{} referenced by MCPRoute {} is not defined",
                        m.namespace(),
                        b.name,
                        m.key()
                    ),
                );
            }
        } else {
            warnings.push(ConfigIssue {
                file: m.source.file.clone(),
                line: None,
                document: m.label(),
                field: bf.clone(),
                message: format!("{} is not an Envoy Gateway Backend; the standalone gateway cannot resolve its address", b.name),
            });
        }
        if let Some(t) = &b.tool_selector {
            tool_selector(&mut d, &format!("{bf}.toolSelector"), t);
        }
        if let Some(sp) = &b.security_policy {
            let sf = format!("{bf}.securityPolicy");
            if sp.api_key.is_some() == sp.token_exchange.is_some() {
                d.err(
                    sf.clone(),
                    "exactly one of apiKey or tokenExchange must be set",
                );
            }
            if let Some(k) = &sp.api_key {
                if k.secret_ref.is_some() == k.inline.is_some() {
                    d.err(
                        format!("{sf}.apiKey"),
                        "exactly one of secretRef or inline must be set",
                    );
                }
                if k.header.is_some() && k.query_param.is_some() {
                    d.err(
                        format!("{sf}.apiKey"),
                        "only one of header or queryParam can be set",
                    );
                }
            }
        }
        if b.forward_headers.len() > 32 {
            d.err(
                format!("{bf}.forwardHeaders"),
                "at most 32 forwardHeaders are allowed",
            );
        }
    }
    if let Some(sp) = &s.security_policy {
        let uses_jwt = sp
            .authorization
            .as_ref()
            .is_some_and(|a| a.rules.iter().any(|r| r.source.is_some()));
        if uses_jwt && sp.oauth.is_none() {
            d.err(
                "spec.securityPolicy.authorization",
                "oauth must be configured when any authorization rule uses a jwt source",
            );
        }
    }
    gateway_warnings(config, m, &s.parent_refs, warnings);
}

/// Secret references of policies and MCP routes. With `source`, each must resolve
/// (issues are errors); without, references to Secrets not in the loaded files are
/// reported as warnings, and a loaded Secret missing the key is reported.
pub(crate) fn check_secret_refs(
    config: &Config,
    source: Option<&SecretSource>,
    errors: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<ConfigIssue>,
) {
    let loaded = SecretSource::from_config(config).with_env_lookup(|_| Some(String::new()));
    for p in &config.backend_security_policies {
        let mut refs: Vec<(String, &super::meta::SecretObjectReference, &str)> = Vec::new();
        let s = &p.spec;
        if let Some(h) = &s.api_key {
            refs.push(("spec.apiKey.secretRef".into(), &h.secret_ref, "apiKey"));
        }
        if let Some(h) = &s.azure_api_key {
            refs.push(("spec.azureAPIKey.secretRef".into(), &h.secret_ref, "apiKey"));
        }
        if let Some(h) = &s.anthropic_api_key {
            refs.push((
                "spec.anthropicAPIKey.secretRef".into(),
                &h.secret_ref,
                "apiKey",
            ));
        }
        if let Some(f) = s
            .aws_credentials
            .as_ref()
            .and_then(|a| a.credentials_file.as_ref())
        {
            refs.push((
                "spec.awsCredentials.credentialsFile.secretRef".into(),
                &f.secret_ref,
                "credentials",
            ));
        }
        if let Some(r) = s
            .azure_credentials
            .as_ref()
            .and_then(|a| a.client_secret_ref.as_ref())
        {
            refs.push((
                "spec.azureCredentials.clientSecretRef".into(),
                r,
                "client-secret",
            ));
        }
        if let Some(f) = s
            .gcp_credentials
            .as_ref()
            .and_then(|g| g.credentials_file.as_ref())
        {
            refs.push((
                "spec.gcpCredentials.credentialsFile.secretRef".into(),
                &f.secret_ref,
                "service_account.json",
            ));
        }
        for (field, r, key) in refs {
            check_one(p, &field, r, key, source, &loaded, errors, warnings);
        }
    }
    for m in &config.mcp_routes {
        for (i, b) in m.spec.backend_refs.iter().enumerate() {
            if let Some(r) = b
                .security_policy
                .as_ref()
                .and_then(|s| s.api_key.as_ref())
                .and_then(|k| k.secret_ref.as_ref())
            {
                let field = format!("spec.backendRefs[{i}].securityPolicy.apiKey.secretRef");
                check_one(m, &field, r, "apiKey", source, &loaded, errors, warnings);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn check_one<S>(
    owner: &Resource<S>,
    field: &str,
    r: &super::meta::SecretObjectReference,
    key: &str,
    source: Option<&SecretSource>,
    loaded: &SecretSource,
    errors: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<ConfigIssue>,
) {
    let ns = non_empty(r.namespace.as_deref()).unwrap_or(owner.namespace());
    let issue = |message: String| ConfigIssue {
        file: owner.source.file.clone(),
        line: None,
        document: owner.label(),
        field: field.to_string(),
        message,
    };
    match source {
        Some(src) => {
            if let Err(e) = src.resolve(ns, &r.name, key) {
                errors.push(issue(format!("{e} (referenced by {} {field})", owner.label())));
            }
        }
        None => match loaded.resolve(ns, &r.name, key) {
            Ok(_) => {}
            Err(super::secret::SecretLookupError::NotFound { .. }) => warnings.push(issue(format!(
                "Secret {ns}/{} (key {key:?}) referenced by {} is not in the loaded files; it must be provided when the gateway starts (Secret document, secrets directory or environment)",
                r.name,
                owner.label()
            ))),
            // The Secret is loaded but cannot serve the key: a definite mistake.
            Err(e) => errors.push(issue(e.to_string())),
        },
    }
}

fn cross_namespace<S>(
    from: &Resource<S>,
    field: &str,
    kind: &str,
    ns: &str,
    name: &str,
) -> ConfigIssue {
    ConfigIssue {
        file: from.source.file.clone(),
        line: None,
        document: from.label(),
        field: field.to_string(),
        message: format!(
            "{kind} {ns}/{name} is in another namespace and no ReferenceGrant in {ns} allows {} {} to refer to it (Kubernetes would reject the reference)",
            from.kind,
            from.key()
        ),
    }
}
