//! MCPRoute.

use super::*;

pub(super) fn tool_selector(d: &mut Doc<'_>, base: &str, t: &MCPToolFilter) {
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

pub(super) fn mcp_route(
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
            if sp.token_exchange.is_some() {
                d.err(
                    format!("{sf}.tokenExchange"),
                    "tokenExchange is not a field of MCPRoute in Envoy AI Gateway v1.1 (only a design proposal); use apiKey or forwardHeaders",
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
        if let Some(j) = sp.oauth.as_ref().and_then(|o| o.jwks.as_ref()) {
            let f = "spec.securityPolicy.oauth.jwks";
            match (j.remote_jwks.is_some(), j.local_jwks.is_some()) {
                (false, false) => d.err(f, "either remoteJWKS or localJWKS must be specified."),
                (true, true) => d.err(f, "remoteJWKS and localJWKS cannot both be specified."),
                _ => {}
            }
        }
        for (i, r) in sp
            .authorization
            .iter()
            .flat_map(|a| a.rules.iter())
            .enumerate()
        {
            let Some(src) = &r.source else { continue };
            let f = format!("spec.securityPolicy.authorization.rules[{i}].source.jwt");
            if src.jwt.scopes.is_empty() && src.jwt.claims.is_empty() {
                d.err(f.clone(), "either scopes or claims must be specified");
            }
            if src.jwt.claims.iter().any(|c| c.name == "scope") {
                d.err(
                    format!("{f}.claims"),
                    "'scope' claim name is reserved for OAuth scopes",
                );
            }
        }
    }
    gateway_warnings(config, m, &s.parent_refs, warnings);
}
