//! QuotaPolicies: what the operator does with them, and what it says about those it
//! cannot enforce as written.
//!
//! Upstream's controller feeds a separately deployed Envoy rate-limit service (an xDS
//! runner serving `RateLimitConfig`s in the domain `ai-gateway-quota`) and its extension
//! server inserts an `envoy.filters.http.ratelimit/ai-gateway-quota` filter, the
//! `ai_gateway_ratelimit_cluster` and per-route rate-limit actions (descriptors from the
//! ExtProc's `ai_service_backend_name` / `model_name_override` metadata, charged with
//! the `quota_cost` metadata when the stream is done). Here the QuotaPolicies travel in
//! the Gateway's ExtProc configuration bundle and the `aigw-extproc` sidecar enforces
//! them itself, as every other packaging does; no rate-limit filter, cluster or
//! rate-limit service configuration is generated, so nothing is counted twice
//! (docs/deploy-kubernetes.md, *QuotaPolicy*).
//!
//! Nothing is dropped silently: a policy that no route can reach, or whose counters
//! would be per Envoy pod where upstream's are shared, is named in a warning.

use aigw_core::config::{Config, GATEWAY_CONFIG_ANNOTATION, QuotaPolicySpec, Resource};
use std::collections::BTreeSet;

/// The variable that gives the sidecar its Redis (shared counters).
const REDIS_ENV: &str = "AIGW_REDIS_URL";

/// The warnings about `config`'s QuotaPolicies.
pub(crate) fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for q in &config.quota_policies {
        out.extend(policy_warnings(config, q));
    }
    out
}

fn policy_warnings(config: &Config, q: &Resource<QuotaPolicySpec>) -> Vec<String> {
    let label = format!("QuotaPolicy {}", q.key());
    let mut out = Vec::new();
    let mut gateways = BTreeSet::new();
    for t in &q.spec.target_refs {
        if config.ai_service_backend(q.namespace(), &t.name).is_none() {
            out.push(format!(
                "{label}: targetRefs names AIServiceBackend {}/{}, which is not defined: nothing is enforced for it",
                q.namespace(),
                t.name
            ));
            continue;
        }
        let routes: Vec<_> = config
            .ai_gateway_routes
            .iter()
            .filter(|r| {
                r.namespace() == q.namespace()
                    && r.spec
                        .rules
                        .iter()
                        .any(|rule| rule.backend_refs.iter().any(|b| b.name == t.name))
            })
            .collect();
        if routes.is_empty() {
            out.push(format!(
                "{label}: no AIGatewayRoute sends to AIServiceBackend {}/{}: the quota is in the ExtProc configuration but no request is counted against it",
                q.namespace(),
                t.name
            ));
        }
        for r in routes {
            for p in &r.spec.parent_refs {
                let ns = p
                    .namespace
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(r.namespace());
                gateways.insert((ns.to_string(), p.name.clone()));
            }
        }
    }
    for (ns, gw) in gateways {
        if !redis_configured(config, &ns, &gw) {
            out.push(format!(
                "{label}: counted by the aigw-extproc sidecar of each Envoy pod of Gateway {ns}/{gw} (upstream counts in one rate-limit service): set {REDIS_ENV} in the GatewayConfig's spec.extProc.kubernetes.env to share the counters between pods"
            ));
        }
    }
    out
}

/// Whether the Gateway's GatewayConfig gives the sidecar a Redis.
fn redis_configured(config: &Config, ns: &str, gw: &str) -> bool {
    let Some(gateway) = config
        .gateways
        .iter()
        .find(|g| g.namespace() == ns && g.name() == gw)
    else {
        return false;
    };
    let Some(name) = gateway.metadata.annotations.get(GATEWAY_CONFIG_ANNOTATION) else {
        return false;
    };
    config
        .gateway_configs
        .iter()
        .filter(|c| c.namespace() == ns && c.name() == name)
        .filter_map(|c| c.spec.ext_proc.as_ref()?.kubernetes.as_ref())
        .any(|k| k.env.iter().any(|e| e.name == REDIS_ENV))
}
