//! Which objects a reconcile can accept.
//!
//! The loader validates the whole configuration at once; in a cluster one bad object
//! must not stop every Gateway. So the documents are loaded, the objects the issues
//! name are set aside (each with its messages, for its `NotAccepted` condition), and the
//! rest is loaded again, until it loads.

use crate::render::{Manifests, doc_key};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Objects set aside, `Kind/namespace/name` → the loader's messages about it.
pub type Rejected = BTreeMap<String, Vec<String>>;

/// Reasons written into conditions.
pub mod reason {
    /// The object is part of the configuration served.
    pub const ACCEPTED: &str = "Accepted";
    /// The loader rejected the object; the message says why.
    pub const INVALID: &str = "InvalidConfiguration";
}

fn label(doc: &Value) -> String {
    let (kind, ns, name) = doc_key(doc);
    format!("{kind}/{ns}/{name}")
}

/// Loads what can be loaded. `None` only when nothing valid remains.
pub fn load_accepting(mut docs: Vec<Value>) -> (Option<Manifests>, Rejected) {
    let mut rejected = Rejected::new();
    // Each round removes at least one document, so this ends.
    loop {
        match Manifests::from_documents(docs.clone(), "cluster") {
            Ok(m) => return (Some(m), rejected),
            Err(crate::Error::Config(aigw_core::Error::InvalidConfig { issues })) => {
                let before = docs.len();
                for issue in &issues {
                    rejected
                        .entry(issue.document.clone())
                        .or_default()
                        .push(format!("{}: {}", issue.field, issue.message));
                }
                docs.retain(|d| !rejected.contains_key(&label(d)));
                if docs.len() == before || docs.is_empty() {
                    return (None, rejected);
                }
            }
            Err(e) => {
                rejected
                    .entry("(configuration)".into())
                    .or_default()
                    .push(e.to_string());
                return (None, rejected);
            }
        }
    }
}

/// The `status` of an AI object: one condition, `Accepted` or `NotAccepted`, keeping
/// the previous transition time when nothing changed (so a reconcile that changes
/// nothing writes nothing).
pub fn status(
    previous: Option<&Value>,
    generation: Option<i64>,
    messages: Option<&[String]>,
    now: &str,
) -> Value {
    let (ty, reason, message) = match messages {
        None => (
            "Accepted",
            reason::ACCEPTED,
            "the configuration is accepted and served".to_string(),
        ),
        Some(m) => ("NotAccepted", reason::INVALID, m.join("; ")),
    };
    let message: String = message.chars().take(32_000).collect();
    let prev = previous
        .and_then(|s| s["conditions"].as_array())
        .and_then(|c| c.iter().find(|c| c["type"] == ty));
    let since = match prev {
        Some(p) if p["status"] == "True" => {
            p["lastTransitionTime"].as_str().unwrap_or(now).to_string()
        }
        _ => now.to_string(),
    };
    let mut condition = json!({
        "type": ty,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
    });
    if let Some(g) = generation {
        condition["observedGeneration"] = json!(g);
    }
    json!({ "conditions": [condition] })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, backend: &str) -> Value {
        json!({
            "apiVersion": "aigateway.envoyproxy.io/v1beta1", "kind": "AIGatewayRoute",
            "metadata": { "name": name, "namespace": "default" },
            "spec": { "parentRefs": [{ "name": "gw" }], "rules": [{ "backendRefs": [{ "name": backend }] }] }
        })
    }

    fn backend() -> Vec<Value> {
        vec![
            json!({
                "apiVersion": "aigateway.envoyproxy.io/v1beta1", "kind": "AIServiceBackend",
                "metadata": { "name": "b", "namespace": "default" },
                "spec": { "schema": { "name": "OpenAI" }, "backendRef": { "name": "b", "kind": "Backend", "group": "gateway.envoyproxy.io" } }
            }),
            json!({
                "apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "Backend",
                "metadata": { "name": "b", "namespace": "default" },
                "spec": { "endpoints": [{ "fqdn": { "hostname": "example.com", "port": 443 } }] }
            }),
        ]
    }

    #[test]
    fn a_bad_route_is_set_aside_and_the_rest_loads() {
        let mut docs = backend();
        docs.push(route("good", "b"));
        docs.push(route("bad", "missing"));
        let (m, rejected) = load_accepting(docs);
        let m = m.unwrap();
        assert_eq!(m.config.ai_gateway_routes.len(), 1);
        assert_eq!(m.config.ai_gateway_routes[0].name(), "good");
        let msgs = &rejected["AIGatewayRoute/default/bad"];
        assert!(
            msgs[0].contains("AIServiceBackend default/missing"),
            "{msgs:?}"
        );
    }

    #[test]
    fn status_keeps_its_transition_time_while_unchanged() {
        let first = status(None, Some(1), None, "2026-01-01T00:00:00Z");
        let again = status(Some(&first), Some(2), None, "2026-02-01T00:00:00Z");
        assert_eq!(
            again["conditions"][0]["lastTransitionTime"],
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(again["conditions"][0]["observedGeneration"], 2);
        let bad = status(
            Some(&again),
            Some(3),
            Some(&["x: y".to_string()]),
            "2026-03-01T00:00:00Z",
        );
        assert_eq!(bad["conditions"][0]["type"], "NotAccepted");
        assert_eq!(
            bad["conditions"][0]["lastTransitionTime"],
            "2026-03-01T00:00:00Z"
        );
        assert_eq!(bad["conditions"][0]["message"], "x: y");
    }
}
