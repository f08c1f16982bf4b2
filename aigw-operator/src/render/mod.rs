//! The whole reconcile as pure functions: manifests in, every object the controller
//! writes out. `aigw-operator render` prints them (for GitOps, reviews and tests); the
//! controller applies exactly these objects.
//!
//! Input goes through `aigw-core`'s loader and validation, the same as in every other
//! packaging, so a manifest set the gateway would reject renders nothing.

pub mod bundle;
pub mod http_route;
pub mod mcp_names;
pub mod mcp_route;
pub mod mcp_security;
mod quota;

use crate::error::{Error, Result};
use aigw_core::config::{Config, Resource};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;

/// Where and how objects are written.
#[derive(Debug, Clone)]
pub struct Options {
    /// The path prefix of every generated route match (upstream's `rootPrefix`).
    pub root_prefix: String,
    /// Namespace of the ExtProc configuration Secrets: where the Gateway's Envoy pods
    /// run (Envoy Gateway's namespace unless it deploys proxies into the Gateway's).
    /// `None`: the Gateway's own namespace.
    pub config_namespace: Option<String>,
    /// Largest configuration part, in bytes (Kubernetes objects are limited to 1 MiB).
    pub part_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            root_prefix: "/".into(),
            config_namespace: Some("envoy-gateway-system".into()),
            part_limit: 700 * 1024,
        }
    }
}

/// Validated configuration plus the documents as written (the ExtProc configuration
/// carries them unchanged).
#[derive(Debug, Clone)]
pub struct Manifests {
    /// The typed, validated configuration.
    pub config: Config,
    /// Every document, in load order.
    pub docs: Vec<Value>,
}

impl Manifests {
    /// Loads files and directories with the core's loader.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<Self> {
        let config = Config::load_paths(paths)?;
        let mut docs = Vec::new();
        for file in &config.files {
            let text =
                std::fs::read_to_string(file).map_err(|e| Error::Render(format!("{file}: {e}")))?;
            docs.extend(parse_documents(&text)?);
        }
        Ok(Self { config, docs })
    }

    /// Builds from documents (objects read from a cluster): they go through the same
    /// loader as files.
    pub fn from_documents(docs: Vec<Value>, label: &str) -> Result<Self> {
        let mut text = String::new();
        let docs: Vec<Value> = docs.into_iter().map(clean_server_fields).collect();
        for d in &docs {
            text.push_str("---\n");
            text.push_str(&serde_saphyr::to_string(d).map_err(|e| Error::Yaml(e.to_string()))?);
        }
        let config = Config::from_yaml_str(&text, label)?;
        Ok(Self { config, docs })
    }
}

fn parse_documents(text: &str) -> Result<Vec<Value>> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| Error::Yaml(e.to_string()))?;
    Ok(docs.into_iter().filter(|d| d.is_object()).collect())
}

/// Drops what the API server adds and no configuration needs.
fn clean_server_fields(mut doc: Value) -> Value {
    if let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    if let Some(o) = doc.as_object_mut() {
        o.remove("status");
    }
    doc
}

/// `(kind, namespace, name)` of a document (`default` namespace when unset).
pub fn doc_key(doc: &Value) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let ns = doc["metadata"]["namespace"]
        .as_str()
        .filter(|n| !n.is_empty())
        .unwrap_or("default");
    (s(&doc["kind"]), ns.to_string(), s(&doc["metadata"]["name"]))
}

/// The owner reference to a source object, when it has a `uid` (objects read from a
/// cluster; files usually have none).
pub fn owner_reference<S>(r: &Resource<S>) -> Option<Value> {
    let uid = r.metadata.uid.as_deref()?;
    Some(json!({
        "apiVersion": r.api_version,
        "kind": r.kind,
        "name": r.name(),
        "uid": uid,
        "controller": true,
        "blockOwnerDeletion": true,
    }))
}

/// What a reconcile writes.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// The objects, in apply order.
    pub objects: Vec<Value>,
    /// What was not rendered and why (never silent).
    pub warnings: Vec<String>,
}

/// Every object the controller writes for these manifests: per AIGatewayRoute its
/// HTTPRouteFilters and HTTPRoute; per Gateway with AI or MCP routes its ExtProc
/// configuration Secrets; per MCPRoute its HTTPRoutes, filters and credential Secrets,
/// and per namespace with MCPRoutes the MCP proxy's Backend.
pub fn render(m: &Manifests, opts: &Options) -> Result<Rendered> {
    let mut out = Rendered::default();
    for route in &m.config.ai_gateway_routes {
        out.objects.extend(http_route::filters(route));
        out.objects
            .push(http_route::http_route(route, &m.config, opts));
    }
    for (ns, name) in gateways(&m.config) {
        if !m
            .config
            .gateways
            .iter()
            .any(|g| g.namespace() == ns && g.name() == name)
        {
            out.warnings.push(format!(
                "Gateway {ns}/{name} is referenced by routes but not defined: no ExtProc configuration is written for it"
            ));
            continue;
        }
        out.objects.extend(bundle::secrets(m, &ns, &name, opts)?);
    }
    let mut proxy_namespaces = BTreeSet::new();
    for mcp in &m.config.mcp_routes {
        if proxy_namespaces.insert(mcp.namespace().to_owned()) {
            out.objects.push(mcp_route::proxy_backend(mcp.namespace()));
        }
        let (objects, warnings) = mcp_route::objects(mcp, &m.config);
        out.objects.extend(objects);
        out.warnings.extend(warnings);
    }
    out.warnings.extend(quota::warnings(&m.config));
    out.objects.iter_mut().for_each(prune);
    Ok(out)
}

/// Gateways (namespace, name) that AI or MCP routes attach to, sorted.
pub fn gateways(config: &Config) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let refs = config
        .ai_gateway_routes
        .iter()
        .map(|r| (r.namespace(), &r.spec.parent_refs))
        .chain(
            config
                .mcp_routes
                .iter()
                .map(|r| (r.namespace(), &r.spec.parent_refs)),
        );
    for (ns, parents) in refs {
        for p in parents {
            let pns = p
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(ns);
            out.insert((pns.to_string(), p.name.clone()));
        }
    }
    out
}

/// Removes `null`s and empty label/annotation maps, which serialization of optional
/// fields leaves behind and an API server would store as noise.
fn prune(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.retain(|k, x| {
                !(x.is_null()
                    || (matches!(k.as_str(), "labels" | "annotations")
                        && x.as_object().is_some_and(|m| m.is_empty())))
            });
            o.values_mut().for_each(prune);
        }
        Value::Array(a) => a.iter_mut().for_each(prune),
        _ => {}
    }
}

/// The objects as one multi-document YAML stream.
pub fn to_yaml(objects: &[Value]) -> Result<String> {
    crate::crd::to_yaml(objects)
}
