//! Upstream's `mcpConfig` (the MCP part of the filter configuration its controller
//! writes) compiled into routes, with upstream's topology: Envoy verifies clients and
//! names the route in `x-ai-eg-mcp-route`; every backend request goes to Envoy's MCP
//! backend listener (`backendListenerAddr`) with `x-ai-eg-mcp-backend` and
//! `x-ai-eg-mcp-route`, and Envoy routes it to the server (path, TLS and credentials
//! done there).

use super::authz::Authorization;
use super::backend::McpBackend;
use super::config::{BACKEND_HEADER, McpRoute, ROUTE_HEADER};
use super::filter::ToolSelector;
use crate::config::{MCPRouteAuthorization, MCPToolFilter};
use crate::error::ConfigIssue;
use crate::filterapi::{McpAuthorization, McpConfig};
use http::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use std::sync::Arc;

struct Issues<'a> {
    file: &'a str,
    list: Vec<ConfigIssue>,
}

impl Issues<'_> {
    fn push(&mut self, field: String, message: impl Into<String>) {
        self.list.push(ConfigIssue {
            file: self.file.to_string(),
            line: None,
            document: "mcpConfig".into(),
            field,
            message: message.into(),
        });
    }
}

/// Compiles `mcpConfig`; `file` names the configuration in errors.
pub(crate) fn compile(mcp: &McpConfig, file: &str) -> Result<Vec<McpRoute>, Vec<ConfigIssue>> {
    let mut issues = Issues {
        file,
        list: Vec::new(),
    };
    let listener = listener(&mcp.backend_listener_addr);
    if let Err(e) = &listener {
        issues.push("mcpConfig.backendListenerAddr".into(), e.clone());
    }
    let mut routes = Vec::new();
    for (i, r) in mcp.routes.iter().enumerate() {
        let f = format!("mcpConfig.routes[{i}]");
        let route_forward: Vec<HeaderName> = r
            .forward_headers
            .iter()
            .filter_map(|h| match HeaderName::try_from(h.as_str()) {
                Ok(n) => Some(n),
                Err(_) => {
                    issues.push(
                        format!("{f}.forwardHeaders"),
                        format!("invalid header name {h:?}"),
                    );
                    None
                }
            })
            .collect();
        let authz = r.authorization.as_ref().and_then(|a| {
            compile_authorization(a)
                .map_err(|e| issues.push(format!("{f}.authorization"), e))
                .ok()
        });
        let selector = r.backend_selector.as_ref().and_then(|a| {
            serde_json::to_value(a)
                .map_err(|e| e.to_string())
                .and_then(|v| Authorization::compile_selector(&strip_empty(v)))
                .map_err(|e| issues.push(format!("{f}.backendSelector"), e))
                .ok()
        });
        let mut backends = Vec::new();
        for (j, b) in r.backends.iter().enumerate() {
            let bf = format!("{f}.backends[{j}]");
            let mut forward: Vec<(HeaderName, HeaderName)> = Vec::new();
            for h in &b.forward_headers {
                let to = if h.backend_header.is_empty() {
                    &h.name
                } else {
                    &h.backend_header
                };
                match (
                    HeaderName::try_from(h.name.as_str()),
                    HeaderName::try_from(to.as_str()),
                ) {
                    (Ok(a), Ok(b)) => forward.push((a, b)),
                    _ => issues.push(format!("{bf}.forwardHeaders"), "invalid header name"),
                }
            }
            // Route-level headers (claimToHeaders, the API-key client id) go to every
            // backend under their own name, unless the backend sends its own.
            for h in &route_forward {
                if !forward.iter().any(|(_, to)| to == h) {
                    forward.push((h.clone(), h.clone()));
                }
            }
            let selector = b.tool_selector.as_ref().and_then(|t| {
                let filter = MCPToolFilter {
                    include: non_empty(&t.include),
                    include_regex: non_empty(&t.include_regex),
                    exclude: non_empty(&t.exclude),
                    exclude_regex: non_empty(&t.exclude_regex),
                };
                ToolSelector::compile(&filter)
                    .map_err(|e| issues.push(format!("{bf}.toolSelector"), e))
                    .ok()
            });
            let fixed = [(BACKEND_HEADER, &b.name), (ROUTE_HEADER, &r.name)]
                .into_iter()
                .filter_map(|(k, v)| {
                    Some((HeaderName::from_static(k), HeaderValue::try_from(v).ok()?))
                })
                .collect();
            let Ok((origin, path)) = &listener else {
                continue;
            };
            backends.push(Arc::new(McpBackend {
                name: b.name.clone(),
                origin: origin.clone(),
                path: path.clone(),
                tls: None,
                // Envoy's MCP backend listener speaks to the backend; this hop is to
                // Envoy itself.
                http2_prior_knowledge: false,
                api_key: None,
                forward,
                selector,
                fixed_headers: fixed,
                via_envoy: true,
            }));
        }
        routes.push(McpRoute {
            key: r.name.clone(),
            path: String::new(),
            hostnames: Vec::new(),
            headers: Vec::new(),
            backends,
            oauth: None,
            authz: authz.map(Arc::new),
            api_keys: None,
            ext_auth: None,
            selector: selector.map(Arc::new),
            by_route_header: true,
            trust_bearer: true,
            challenge_url: r
                .authorization
                .as_ref()
                .map(|a| a.resource_metadata_url.clone())
                .filter(|u| !u.is_empty()),
            claim_headers: Vec::new(),
        });
    }
    if issues.list.is_empty() {
        Ok(routes)
    } else {
        Err(issues.list)
    }
}

fn non_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// `http://127.0.0.1:10088` → origin and path (`/` when none).
fn listener(addr: &str) -> Result<(String, String), String> {
    let uri: http::Uri = addr
        .parse()
        .map_err(|e| format!("{addr:?} is not a URL: {e}"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(format!(
            "{addr:?} must be an absolute http URL (Envoy's MCP backend listener)"
        ));
    };
    if scheme != "http" {
        return Err(format!(
            "{addr:?}: the MCP backend listener is reached over plain HTTP on the local Envoy"
        ));
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    Ok((format!("{scheme}://{authority}"), path.to_string()))
}

/// Upstream writes an unset default action as `""` (which it reads as Deny).
fn strip_empty(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        if o.get("defaultAction").and_then(Value::as_str) == Some("") {
            o.remove("defaultAction");
        }
        o.remove("resourceMetadataURL");
        if let Some(Value::Array(rules)) = o.get_mut("rules") {
            for r in rules {
                if let Some(r) = r.as_object_mut() {
                    r.retain(|_, x| !x.is_null());
                    if r.get("action").and_then(Value::as_str) == Some("") {
                        r.remove("action");
                    }
                }
            }
        }
    }
    v
}

fn compile_authorization(a: &McpAuthorization) -> Result<Authorization, String> {
    let v = strip_empty(serde_json::to_value(a).map_err(|e| e.to_string())?);
    let rules = v.get("rules").cloned().unwrap_or_else(|| json!([]));
    let mut doc = json!({ "rules": rules });
    if let Some(d) = v.get("defaultAction") {
        doc["defaultAction"] = d.clone();
    }
    let parsed: MCPRouteAuthorization =
        serde_json::from_value(doc).map_err(|e| format!("cannot read the rules: {e}"))?;
    Authorization::compile(&parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_urls() {
        assert_eq!(
            listener("http://127.0.0.1:10088").unwrap(),
            ("http://127.0.0.1:10088".into(), "/".into())
        );
        assert!(listener("127.0.0.1:10088").is_err());
        assert!(listener("https://x:1").is_err());
    }

    #[test]
    fn upstream_mcp_config() {
        let text = r#"
backendListenerAddr: http://127.0.0.1:10088
routes:
  - name: default/tools
    forwardHeaders: [x-user]
    backends:
      - name: github
        toolSelector: {include: [get_issue]}
        forwardHeaders: [{name: x-gh, backendHeader: authorization}]
      - name: search
    authorization:
      defaultAction: Deny
      resourceMetadataURL: https://gw/.well-known/oauth-protected-resource/mcp
      rules:
        - action: Allow
          source: {jwt: {scopes: [read], claims: [{name: org, valueType: String, values: [acme]}]}}
          target: {tools: [{backend: github, tool: get_issue}]}
        - action: Allow
          cel: request.mcp.backend == "search"
    backendSelector:
      defaultAction: Deny
      rules:
        - action: Allow
          cel: request.mcp.backend != "x"
"#;
        let cfg: McpConfig = serde_saphyr::from_str(text).unwrap();
        let routes = compile(&cfg, "f.yaml").unwrap();
        let r = &routes[0];
        assert!(r.by_route_header && r.trust_bearer && r.authz.is_some() && r.selector.is_some());
        assert_eq!(r.backends[0].url(), "http://127.0.0.1:10088/");
        assert_eq!(
            r.backends[0]
                .forward
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect::<Vec<_>>(),
            [("x-gh", "authorization"), ("x-user", "x-user")]
        );
        assert_eq!(r.backends[1].fixed_headers[0].1, "search");
        let mut bad = cfg.clone();
        bad.backend_listener_addr = "nope".into();
        bad.routes[0].authorization.as_mut().unwrap().rules[1].cel = Some("tool ==".into());
        let e = compile(&bad, "f.yaml").unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
    }
}
