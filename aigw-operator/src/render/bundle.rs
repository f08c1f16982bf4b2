//! The ExtProc configuration of one Gateway, stored in Secrets.
//!
//! `aigw-extproc` loads the same YAML as every other packaging, so the configuration of
//! a Gateway is the subset of the cluster's documents its routes need: the Gateway, its
//! AIGatewayRoutes and MCPRoutes, the AIServiceBackends and Envoy Gateway Backends they
//! reach, the policies targeting any of those (BackendSecurityPolicy, BackendTLSPolicy,
//! traffic and security policies, QuotaPolicy), the GatewayConfig, ReferenceGrants and
//! exactly the Secrets and ConfigMaps those policies reference — nothing else, so no
//! unrelated credential reaches the sidecar.
//!
//! Documents are split into parts at document boundaries so each part stays below
//! [`super::Options::part_limit`] (the 1 MiB object limit, with headroom) and every part
//! is itself valid YAML: the ExtProc loads the mounted directory of parts as one
//! configuration. Every part starts with a comment naming the bundle's SHA-256 and its
//! position, and every Secret carries the checksum as an annotation, so a reader can
//! tell a complete set from one caught mid-update.

use super::{Manifests, Options, doc_key};
use crate::error::{Error, Result};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// Annotation with the SHA-256 of the whole configuration (all parts, in order).
pub const CHECKSUM_ANNOTATION: &str = "aigateway.envoyproxy.io/config-checksum";
/// Label naming the Gateway (`namespace.name`) a configuration Secret belongs to.
pub const GATEWAY_LABEL: &str = "aigateway.envoyproxy.io/gateway";
/// Most parts a configuration may span (the pod mounts this many optional slots).
pub const MAX_PARTS: usize = 8;
/// The key of a part inside its Secret.
pub const PART_KEY: &str = "config.yaml";

/// `(kind, namespace, name)`.
type Key = (String, String, String);

fn key(kind: &str, ns: &str, name: &str) -> Key {
    (kind.to_string(), ns.to_string(), name.to_string())
}

/// Whether a policy document targets `(kind, name)` in its own namespace.
fn targets(doc: &Value, kind: &str, name: &str) -> bool {
    let spec = &doc["spec"];
    let one = spec.get("targetRef").into_iter();
    let many = spec
        .get("targetRefs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    one.chain(many)
        .any(|t| t["kind"] == kind && t["name"] == name)
}

/// Names of Secrets a document references: every `name` under a key that holds a
/// Secret reference in the upstream and Envoy Gateway APIs.
pub(crate) fn secret_refs(v: &Value, doc_ns: &str, out: &mut BTreeSet<Key>) {
    const KEYS: &[&str] = &[
        "secretRef",
        "clientSecret",
        "clientSecretRef",
        "clientIDRef",
        "credentialRefs",
    ];
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                if KEYS.contains(&k.as_str()) {
                    let refs = child
                        .as_array()
                        .cloned()
                        .unwrap_or_else(|| vec![child.clone()]);
                    for r in refs {
                        if let Some(name) = r["name"].as_str() {
                            let ns = r["namespace"].as_str().unwrap_or(doc_ns);
                            out.insert(key("Secret", ns, name));
                        }
                    }
                }
                secret_refs(child, doc_ns, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|c| secret_refs(c, doc_ns, out)),
        _ => {}
    }
}

/// ConfigMaps (CA bundles) a BackendTLSPolicy references.
pub(crate) fn config_map_refs(doc: &Value, doc_ns: &str, out: &mut BTreeSet<Key>) {
    if let Some(refs) = doc["spec"]["validation"]["caCertificateRefs"].as_array() {
        for r in refs {
            if let Some(name) = r["name"].as_str() {
                let kind = r["kind"].as_str().unwrap_or("ConfigMap");
                out.insert(key(kind, doc_ns, name));
            }
        }
    }
}

/// Drops the Secrets and ConfigMaps no other document references: a cluster holds many
/// (tokens, certificates, Helm releases) that no configuration reads, and none of them
/// should be loaded, let alone copied anywhere.
pub fn referenced_only(docs: Vec<Value>) -> Vec<Value> {
    let mut refs = BTreeSet::new();
    for doc in &docs {
        let (kind, ns, _) = doc_key(doc);
        if kind != "Secret" && kind != "ConfigMap" {
            secret_refs(&doc["spec"], &ns, &mut refs);
            config_map_refs(doc, &ns, &mut refs);
        }
    }
    docs.into_iter()
        .filter(|d| {
            let k = doc_key(d);
            !(k.0 == "Secret" || k.0 == "ConfigMap") || refs.contains(&k)
        })
        .collect()
}

/// The documents the ExtProc of Gateway `gw_ns/gw_name` needs, in load order.
pub fn gateway_documents(m: &Manifests, gw_ns: &str, gw_name: &str) -> Vec<Value> {
    let c = &m.config;
    let mut want: BTreeSet<Key> = BTreeSet::new();
    want.insert(key("Gateway", gw_ns, gw_name));
    let attached = |refs: &[aigw_core::config::ParentReference], ns: &str| {
        refs.iter().any(|p| {
            p.name == gw_name
                && p.namespace
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(ns)
                    == gw_ns
        })
    };
    let mut backends: BTreeSet<Key> = BTreeSet::new();
    let mut routes: BTreeSet<Key> = BTreeSet::new();
    for r in &c.ai_gateway_routes {
        if !attached(&r.spec.parent_refs, r.namespace()) {
            continue;
        }
        want.insert(key("AIGatewayRoute", r.namespace(), r.name()));
        routes.insert(key("HTTPRoute", r.namespace(), r.name()));
        for br in r.spec.rules.iter().flat_map(|rule| &rule.backend_refs) {
            let ns = br
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(r.namespace());
            if br.is_inference_pool() {
                want.insert(key("InferencePool", ns, &br.name));
                backends.insert(key("InferencePool", ns, &br.name));
            } else if let Some(b) = c.ai_service_backend(ns, &br.name) {
                want.insert(key("AIServiceBackend", ns, &br.name));
                backends.insert(key("AIServiceBackend", ns, &br.name));
                let bns = b.spec.backend_ref.namespace.as_deref().unwrap_or(ns);
                want.insert(key("Backend", bns, &b.spec.backend_ref.name));
                backends.insert(key("Backend", bns, &b.spec.backend_ref.name));
                if let Some(p) = &b.spec.backend_security_policy_ref {
                    want.insert(key("BackendSecurityPolicy", ns, &p.name));
                }
            }
        }
    }
    for r in &c.mcp_routes {
        if !attached(&r.spec.parent_refs, r.namespace()) {
            continue;
        }
        want.insert(key("MCPRoute", r.namespace(), r.name()));
        for br in &r.spec.backend_refs {
            let ns = br.namespace.as_deref().unwrap_or(r.namespace());
            want.insert(key("Backend", ns, &br.name));
            backends.insert(key("Backend", ns, &br.name));
        }
    }
    if let Some(gw) = c
        .gateways
        .iter()
        .find(|g| g.namespace() == gw_ns && g.name() == gw_name)
        && let Some(cfg) = gw
            .metadata
            .annotations
            .get(aigw_core::config::GATEWAY_CONFIG_ANNOTATION)
    {
        want.insert(key("GatewayConfig", gw_ns, cfg));
    }
    // Policies targeting the Gateway, its routes or the backends they reach.
    let policy_kinds = [
        "BackendSecurityPolicy",
        "QuotaPolicy",
        "BackendTLSPolicy",
        "BackendTrafficPolicy",
        "ClientTrafficPolicy",
        "SecurityPolicy",
    ];
    let mut targets_of_interest: Vec<&Key> = backends.iter().chain(routes.iter()).collect();
    let gateway_key = key("Gateway", gw_ns, gw_name);
    targets_of_interest.push(&gateway_key);
    for doc in &m.docs {
        let (kind, ns, _) = doc_key(doc);
        if policy_kinds.contains(&kind.as_str())
            && targets_of_interest
                .iter()
                .any(|(k, tns, n)| *tns == ns && targets(doc, k, n))
        {
            want.insert(doc_key(doc));
        }
        if kind == "ReferenceGrant" {
            want.insert(doc_key(doc));
        }
    }
    // What the selected documents reference.
    let mut refs = BTreeSet::new();
    for doc in m.docs.iter().filter(|d| want.contains(&doc_key(d))) {
        let (kind, ns, _) = doc_key(doc);
        if kind != "Secret" {
            secret_refs(&doc["spec"], &ns, &mut refs);
        }
        if kind == "BackendTLSPolicy" {
            config_map_refs(doc, &ns, &mut refs);
        }
    }
    want.extend(refs);
    m.docs
        .iter()
        .filter(|d| want.contains(&doc_key(d)))
        .map(|d| without_foreign_backends(d, &want))
        .collect()
}

/// A policy as this Gateway's ExtProc loads it: `targetRefs` to AIServiceBackends that
/// none of its routes reach are left out (they are not in its configuration, so the
/// loader would refuse the reference; requests to them never pass this Gateway).
fn without_foreign_backends(doc: &Value, want: &BTreeSet<Key>) -> Value {
    let (kind, ns, _) = doc_key(doc);
    let mut doc = doc.clone();
    if kind == "AIServiceBackend" || kind == "Secret" || kind == "ConfigMap" {
        return doc;
    }
    // `get_mut`, not indexing: an index would insert the missing key as null.
    if let Some(refs) = doc
        .get_mut("spec")
        .and_then(|s| s.get_mut("targetRefs"))
        .and_then(Value::as_array_mut)
    {
        refs.retain(|r| {
            r["kind"].as_str() != Some("AIServiceBackend")
                || r["name"]
                    .as_str()
                    .is_some_and(|n| want.contains(&key("AIServiceBackend", &ns, n)))
        });
    }
    doc
}

/// Splits documents into parts of at most `limit` bytes at document boundaries.
fn split(docs: &[String], limit: usize) -> Result<Vec<String>> {
    let mut parts: Vec<String> = Vec::new();
    let mut current = String::new();
    for d in docs {
        if d.len() > limit {
            return Err(Error::Render(format!(
                "a document of {} bytes exceeds the part limit of {limit} bytes",
                d.len()
            )));
        }
        if !current.is_empty() && current.len() + d.len() > limit {
            parts.push(std::mem::take(&mut current));
        }
        current.push_str(d);
    }
    if !current.is_empty() || parts.is_empty() {
        parts.push(current);
    }
    Ok(parts)
}

/// Name of part `i` of Gateway `ns/name`'s configuration (stable, ≤ 253 characters).
pub fn part_name(gw_ns: &str, gw_name: &str, i: usize) -> String {
    let hash = hex::encode(&Sha256::digest(format!("{gw_ns}/{gw_name}").as_bytes())[..6]);
    let suffix = format!("-part-{i:03}");
    let mut base = format!("aigw-{gw_name}-{gw_ns}");
    let max = 253 - hash.len() - suffix.len() - 1;
    if base.len() > max {
        base.truncate(max);
        base = base.trim_end_matches('-').to_string();
    }
    format!("{base}-{hash}{suffix}")
}

/// The configuration Secrets of one Gateway.
pub fn secrets(m: &Manifests, gw_ns: &str, gw_name: &str, opts: &Options) -> Result<Vec<Value>> {
    let docs = gateway_documents(m, gw_ns, gw_name);
    let texts: Vec<String> = docs
        .iter()
        .map(|d| {
            serde_saphyr::to_string(d)
                .map(|t| format!("---\n{t}"))
                .map_err(|e| Error::Yaml(e.to_string()))
        })
        .collect::<Result<_>>()?;
    let parts = split(&texts, opts.part_limit)?;
    if parts.len() > MAX_PARTS {
        return Err(Error::Render(format!(
            "the configuration of Gateway {gw_ns}/{gw_name} needs {} parts; at most {MAX_PARTS} are mounted",
            parts.len()
        )));
    }
    let checksum = aigw_core::config::parts_checksum(&parts);
    let namespace = opts.config_namespace.as_deref().unwrap_or(gw_ns);
    let n = parts.len();
    Ok(parts
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let header =
                aigw_core::config::part_header(&format!("{gw_ns}/{gw_name}"), i + 1, n, &checksum);
            let text = format!("{header}\n{body}");
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": part_name(gw_ns, gw_name, i),
                    "namespace": namespace,
                    "labels": {
                        super::http_route::MANAGED_BY.0: super::http_route::MANAGED_BY.1,
                        GATEWAY_LABEL: format!("{gw_ns}.{gw_name}"),
                    },
                    "annotations": { CHECKSUM_ANNOTATION: checksum },
                },
                "type": "Opaque",
                "stringData": { PART_KEY: text },
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_split_at_document_boundaries() {
        let docs: Vec<String> = (0..5).map(|i| format!("---\nn: {i}\n")).collect();
        let parts = split(&docs, 20).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), docs.concat());
        assert!(parts.iter().all(|p| p.len() <= 20));
        assert!(split(&["x".repeat(30)], 20).is_err());
    }

    #[test]
    fn only_referenced_secrets_and_config_maps_are_kept() {
        let docs = vec![
            json!({"kind": "BackendSecurityPolicy", "metadata": {"name": "p", "namespace": "a"},
                   "spec": {"type": "APIKey", "apiKey": {"secretRef": {"name": "key"}}}}),
            json!({"kind": "BackendTLSPolicy", "metadata": {"name": "t", "namespace": "a"},
                   "spec": {"validation": {"caCertificateRefs": [{"name": "ca", "kind": "ConfigMap"}]}}}),
            json!({"kind": "Secret", "metadata": {"name": "key", "namespace": "a"}}),
            json!({"kind": "Secret", "metadata": {"name": "key", "namespace": "b"}}),
            json!({"kind": "Secret", "metadata": {"name": "helm-release", "namespace": "a"}}),
            json!({"kind": "ConfigMap", "metadata": {"name": "ca", "namespace": "a"}}),
            json!({"kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt", "namespace": "a"}}),
        ];
        let kept: Vec<(String, String, String)> =
            referenced_only(docs).iter().map(doc_key).collect();
        assert_eq!(
            kept,
            vec![
                key("BackendSecurityPolicy", "a", "p"),
                key("BackendTLSPolicy", "a", "t"),
                key("Secret", "a", "key"),
                key("ConfigMap", "a", "ca"),
            ]
        );
    }

    #[test]
    fn part_names_are_bounded_and_stable() {
        let long = "g".repeat(300);
        let name = part_name("default", &long, 7);
        assert!(name.len() <= 253, "{}", name.len());
        assert!(name.ends_with("-part-007"));
        assert_eq!(part_name("ns", "gw", 0), part_name("ns", "gw", 0));
        assert_ne!(part_name("ns", "gw", 0), part_name("ns2", "gw", 0));
    }
}
