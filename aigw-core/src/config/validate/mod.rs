//! Validation: the upstream CRD rules (limits, CEL `XValidation`s) and cross-references.
//!
//! One file per kind module of the configuration (`aigateway`, `envoy_gateway`,
//! `security_policy`, `mcp`) plus Secret references; this module holds the issue sink,
//! the helpers several kinds share and [`validate`], which runs every step.

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

mod aigateway;
mod envoy_gateway;
mod mcp;
mod secrets;
mod security_policy;

pub(crate) use secrets::check_secret_refs;

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
        aigateway::route(config, r, issues, warnings);
    }
    for b in &config.ai_service_backends {
        aigateway::ai_service_backend(config, b, issues, warnings);
    }
    for b in &config.backends {
        envoy_gateway::eg_backend(b, issues, warnings);
    }
    security_policy::security_policies(config, issues, warnings);
    for m in &config.mcp_routes {
        mcp::mcp_route(config, m, issues, warnings);
    }
    for g in &config.gateway_configs {
        aigateway::gateway_config(g, issues);
    }
    for gw in &config.gateways {
        envoy_gateway::gateway(config, gw, issues);
    }
    for q in &config.quota_policies {
        aigateway::quota_policy(config, q, issues);
    }
    for p in &config.backend_tls_policies {
        envoy_gateway::backend_tls_policy(config, p, issues, warnings);
    }
    for p in &config.backend_traffic_policies {
        envoy_gateway::backend_traffic_policy(config, p, issues, warnings);
    }
    for p in &config.client_traffic_policies {
        envoy_gateway::client_traffic_policy(p, issues, warnings);
    }
    secrets::check_secret_refs(config, None, issues, warnings);
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
