//! One AIGatewayRoute → one Gateway API `HTTPRoute` (same name and namespace) and two
//! Envoy Gateway `HTTPRouteFilter`s, as the upstream controller writes them
//! (`internal/controller/ai_gateway_route.go`).

use super::{Options, owner_reference};
use aigw_core::config::{AIGatewayRouteSpec, Config, RESERVED_RULE_NAME, Resource};
use serde_json::{Map, Value, json};

/// Prefix of the host-rewrite filter's name.
pub const HOST_REWRITE_FILTER: &str = "ai-eg-host-rewrite";
/// Prefix of the catch-all 404 filter's name.
pub const ROUTE_NOT_FOUND_FILTER: &str = "ai-eg-route-not-found-response";
/// Marks an HTTPRoute as generated (Envoy Gateway passes it to the extension server).
pub const GENERATED_ANNOTATION: &str = "gateway.envoyproxy.io/ai-gateway-generated";
/// `rule:backend:priority` triples the extension server turns into endpoint priorities.
pub const PRIORITY_ANNOTATION: &str = "gateway.envoyproxy.io/backend-ref-priority";
/// The body of the catch-all 404.
pub const NOT_FOUND_BODY: &str = "No matching route found. It is likely because the model specified in your request is not configured in the Gateway.";
/// A rule's request timeout when it sets none (Envoy Gateway's own default is 15 s).
pub const DEFAULT_REQUEST_TIMEOUT: &str = "60s";

/// Label on every object the controller writes, so it can find what it wrote.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "aigw-operator");

/// The two filters every generated HTTPRoute references.
pub fn filters(route: &Resource<AIGatewayRouteSpec>) -> Vec<Value> {
    let meta = |name: String| {
        let mut m = json!({
            "name": name,
            "namespace": route.namespace(),
            "labels": { MANAGED_BY.0: MANAGED_BY.1 },
        });
        if let Some(o) = owner_reference(route) {
            m["ownerReferences"] = json!([o]);
        }
        m
    };
    vec![
        json!({
            "apiVersion": "gateway.envoyproxy.io/v1alpha1",
            "kind": "HTTPRouteFilter",
            "metadata": meta(format!("{HOST_REWRITE_FILTER}-{}", route.name())),
            "spec": { "urlRewrite": { "hostname": { "type": "Backend" } } },
        }),
        json!({
            "apiVersion": "gateway.envoyproxy.io/v1alpha1",
            "kind": "HTTPRouteFilter",
            "metadata": meta(format!("{ROUTE_NOT_FOUND_FILTER}-{}", route.name())),
            "spec": { "directResponse": { "statusCode": 404, "body": { "type": "Inline", "inline": NOT_FOUND_BODY } } },
        }),
    ]
}

fn extension_ref(name: String) -> Value {
    json!({
        "type": "ExtensionRef",
        "extensionRef": { "group": "gateway.envoyproxy.io", "kind": "HTTPRouteFilter", "name": name }
    })
}

/// The HTTPRoute of an AIGatewayRoute.
pub fn http_route(route: &Resource<AIGatewayRouteSpec>, config: &Config, opts: &Options) -> Value {
    let ns = route.namespace();
    let host_rewrite = extension_ref(format!("{HOST_REWRITE_FILTER}-{}", route.name()));
    let path = json!({ "type": "PathPrefix", "value": opts.root_prefix });
    let mut rules: Vec<Value> = route
        .spec
        .rules
        .iter()
        .map(|rule| {
            let backend_refs: Vec<Value> = rule
                .backend_refs
                .iter()
                .filter_map(|br| backend_ref(br, ns, config))
                .collect();
            let matches: Vec<Value> = rule
                .matches
                .iter()
                .map(|m| json!({ "headers": m.headers, "path": path }))
                .collect();
            let mut timeouts = Map::new();
            let t = rule.timeouts.clone().unwrap_or_default();
            timeouts.insert(
                "request".into(),
                json!(t.request.unwrap_or_else(|| DEFAULT_REQUEST_TIMEOUT.into())),
            );
            if let Some(b) = t.backend_request {
                timeouts.insert("backendRequest".into(), json!(b));
            }
            let mut r = Map::new();
            if let Some(name) = &rule.name {
                r.insert("name".into(), json!(name));
            }
            if !backend_refs.is_empty() {
                r.insert("backendRefs".into(), json!(backend_refs));
            }
            if !matches.is_empty() {
                r.insert("matches".into(), json!(matches));
            }
            r.insert("filters".into(), json!([host_rewrite]));
            r.insert("timeouts".into(), Value::Object(timeouts));
            Value::Object(r)
        })
        .collect();
    rules.push(json!({
        "name": RESERVED_RULE_NAME,
        "matches": [{ "path": path }],
        "filters": [extension_ref(format!("{ROUTE_NOT_FOUND_FILTER}-{}", route.name()))],
    }));
    let mut labels = route.metadata.labels.clone();
    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    let mut annotations = route.metadata.annotations.clone();
    annotations.insert(PRIORITY_ANNOTATION.into(), priority_annotation(&route.spec));
    annotations.insert(GENERATED_ANNOTATION.into(), "true".into());
    let mut metadata = json!({
        "name": route.name(),
        "namespace": ns,
        "labels": labels,
        "annotations": annotations,
    });
    if let Some(o) = owner_reference(route) {
        metadata["ownerReferences"] = json!([o]);
    }
    route_object(
        metadata,
        &route.spec.parent_refs,
        &route.spec.hostnames,
        rules,
    )
}

/// An HTTPRoute with the source route's parentRefs and hostnames.
pub(crate) fn route_object(
    metadata: Value,
    parent_refs: &[aigw_core::config::ParentReference],
    hostnames: &[String],
    rules: Vec<Value>,
) -> Value {
    let mut spec = json!({ "parentRefs": parent_refs, "rules": rules });
    if !hostnames.is_empty() {
        spec["hostnames"] = json!(hostnames);
    }
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": metadata,
        "spec": spec,
    })
}

/// An AIServiceBackend reference becomes its Envoy Gateway Backend's reference (with
/// the backend's namespace when it differs from the route's); an InferencePool
/// reference is passed through.
fn backend_ref(
    br: &aigw_core::config::AIGatewayRouteRuleBackendRef,
    route_ns: &str,
    config: &Config,
) -> Option<Value> {
    let ns = br
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(route_ns);
    let mut out = if br.is_inference_pool() {
        json!({ "group": br.group, "kind": br.kind, "name": br.name, "namespace": ns })
    } else {
        // The loader has resolved every reference; a miss is impossible after it.
        let backend = config.ai_service_backend(ns, &br.name)?;
        let mut r = serde_json::to_value(&backend.spec.backend_ref).ok()?;
        strip_nulls(&mut r);
        if r.get("namespace").is_none() && ns != route_ns {
            r["namespace"] = json!(ns);
        }
        r
    };
    if let Some(w) = br.weight {
        out["weight"] = json!(w);
    }
    Some(out)
}

fn strip_nulls(v: &mut Value) {
    if let Value::Object(o) = v {
        o.retain(|_, x| !x.is_null());
    }
}

/// `rule:backend:priority` for every backendRef, as upstream's `buildPriorityAnnotation`.
fn priority_annotation(spec: &AIGatewayRouteSpec) -> String {
    let mut parts = Vec::new();
    for (i, rule) in spec.rules.iter().enumerate() {
        for br in &rule.backend_refs {
            parts.push(format!("{i}:{}:{}", br.name, br.priority.unwrap_or(0)));
        }
    }
    parts.join(",")
}
