//! QuotaPolicies through `render`: they travel in the Gateway's ExtProc configuration
//! bundle (where the `aigw-extproc` sidecar enforces them), no Envoy rate-limit wiring
//! is generated beside it (it would count every request twice), and what cannot be
//! enforced as written is named in a warning.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aigw_core::config::Config;
use aigw_operator::render::{self, Manifests, Options, bundle};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/quota/quota_policy.yaml")
}

fn rendered(paths: &[PathBuf]) -> render::Rendered {
    let m = Manifests::load(paths).unwrap();
    render::render(&m, &Options::default()).unwrap()
}

#[test]
fn quota_policies_go_to_the_sidecar_bundle_and_nothing_else() {
    let out = rendered(&[fixture()]);
    let mut text = String::new();
    for w in &out.warnings {
        text.push_str(&format!("# warning: {w}\n"));
    }
    text.push_str(&render::to_yaml(&out.objects).unwrap());
    insta::assert_snapshot!("quota_policy", text);

    // Only the route's objects and the ExtProc configuration: no rate-limit filter,
    // cluster, EnvoyPatchPolicy or rate-limit service configuration.
    let kinds: Vec<&str> = out
        .objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds
            .iter()
            .all(|k| ["HTTPRoute", "HTTPRouteFilter", "Secret"].contains(k)),
        "{kinds:?}"
    );
    let all = serde_json::to_string(&out.objects).unwrap();
    for wiring in [
        "envoy.filters.http.ratelimit",
        "ai_gateway_ratelimit_cluster",
        // upstream's rate-limit domain, as a whole string
        "\"ai-gateway-quota\"",
    ] {
        assert!(!all.contains(wiring), "{wiring}");
    }

    // Both policies reach the sidecar unchanged, and the sidecar's loader takes them.
    let secrets: Vec<&Value> = out
        .objects
        .iter()
        .filter(|o| o["kind"] == "Secret")
        .collect();
    assert_eq!(secrets.len(), 1);
    let config = secrets[0]["stringData"][bundle::PART_KEY].as_str().unwrap();
    let loaded = Config::from_yaml_str(config, "config.yaml").unwrap();
    let names: Vec<String> = loaded.quota_policies.iter().map(|q| q.key()).collect();
    assert_eq!(
        names,
        [
            "default/envoy-ai-gateway-quota-ratelimit-policy",
            "default/tenants"
        ]
    );
    let original = Config::load_paths(&[fixture()]).unwrap();
    assert_eq!(
        loaded.quota_policies[0].spec,
        original.quota_policies[0].spec
    );
    // The target no route of this Gateway reaches is not in its configuration, so
    // it is left out of the policy's targetRefs; the rest is as written.
    let mut tenants = original.quota_policies[1].spec.clone();
    tenants.target_refs.retain(|t| t.name != "unrouted");
    assert_eq!(loaded.quota_policies[1].spec, tenants);
    assert_eq!(loaded.quota_policies[1].spec.target_refs.len(), 1);

    // Nothing silent: the target no route reaches, and the per-pod counting.
    let warned = |needle: &str| out.warnings.iter().any(|w| w.contains(needle));
    assert!(warned(
        "QuotaPolicy default/tenants: no AIGatewayRoute sends to AIServiceBackend default/unrouted"
    ));
    for policy in [
        "default/tenants",
        "default/envoy-ai-gateway-quota-ratelimit-policy",
    ] {
        assert!(
            warned(&format!(
                "QuotaPolicy {policy}: counted by the aigw-extproc sidecar of each Envoy pod"
            )),
            "{:?}",
            out.warnings
        );
    }
}

#[test]
fn a_sidecar_with_redis_shares_the_counters_and_is_not_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture()).unwrap().replacen(
        "  namespace: default\nspec:\n  gatewayClassName",
        "  namespace: default\n  annotations: {aigateway.envoyproxy.io/gateway-config: shared}\nspec:\n  gatewayClassName",
        1,
    ) + r#"---
apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: GatewayConfig
metadata: {name: shared, namespace: default}
spec:
  extProc:
    kubernetes:
      env:
        - name: AIGW_REDIS_URL
          valueFrom: {secretKeyRef: {name: redis, key: url}}
"#;
    let path = dir.path().join("quota.yaml");
    std::fs::write(&path, text).unwrap();
    let out = rendered(&[path]);
    assert!(
        !out.warnings.iter().any(|w| w.contains("each Envoy pod")),
        "{:?}",
        out.warnings
    );
    assert!(out.warnings.iter().any(|w| w.contains("default/unrouted")));
}
