//! The Envoy bootstrap generated from the upstream project's example manifests: a golden
//! snapshot, structural checks, and Envoy's own validation (`envoy --mode validate`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use aigw_core::config::Config;
use aigw_extproc::envoy::{Options, Plan};
use aigw_extproc::server::ListenAddr;
use serde_json::Value;
use std::path::PathBuf;

const FIXTURES: [&str; 5] = [
    "provider_fallback__base.yaml",
    "basic__basic.yaml",
    "basic__aws-bedrock-openai-anthropic.yaml",
    "credential_override__metadata.yaml",
    "hostnames.yaml",
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn bootstrap(name: &str) -> Value {
    let config = Config::load_paths(&[fixture(name)]).unwrap();
    let plan = Plan::from_config(&config).unwrap();
    let mut opts = Options::new(ListenAddr::parse("unix:///run/aigw/extproc.sock").unwrap());
    opts.listen = ([127, 0, 0, 1], 1975).into();
    opts.admin = Some(([127, 0, 0, 1], 9901).into());
    plan.bootstrap(&opts).unwrap()
}

#[test]
fn fallback_manifest_golden() {
    insta::assert_json_snapshot!(bootstrap("provider_fallback__base.yaml"));
}

#[test]
fn fallback_rule_is_one_cluster_with_priorities_and_retries() {
    let b = bootstrap("provider_fallback__base.yaml");
    let clusters = b["static_resources"]["clusters"].as_array().unwrap();
    let c = clusters
        .iter()
        .find(|c| c["name"] == "httproute/default/provider-fallback/rule/0")
        .unwrap();
    let localities = c["load_assignment"]["endpoints"].as_array().unwrap();
    assert_eq!(localities.len(), 2, "one locality per priority");
    assert_eq!(localities[0]["priority"], 0);
    let primary = &localities[0]["lb_endpoints"][0];
    assert_eq!(
        primary["metadata"]["filter_metadata"]["aigateway.envoy.io"]["per_route_rule_backend_name"],
        "default/provider-fallback-always-failing-upstream/route/provider-fallback/rule/0/ref/0"
    );
    assert_eq!(localities[1]["priority"], 1);
    assert_eq!(
        localities[1]["lb_endpoints"][0]["endpoint"]["hostname"],
        "bedrock-runtime.us-east-1.amazonaws.com"
    );
    assert_eq!(
        c["transport_socket"]["name"], "envoy.transport_sockets.tls",
        "both backends speak TLS"
    );
    let filters = c["typed_extension_protocol_options"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"]
        .as_array()
        .unwrap();
    let names: Vec<_> = filters
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "envoy.filters.http.ext_proc",
            "envoy.filters.http.header_mutation",
            "envoy.filters.http.upstream_codec"
        ]
    );
    let mode = &filters[0]["typed_config"]["processing_mode"];
    assert_eq!(mode["request_body_mode"], "NONE");
    assert_eq!(mode["response_header_mode"], "SKIP");
    assert_eq!(
        filters[0]["typed_config"]["request_attributes"]
            .as_array()
            .unwrap()
            .len(),
        4
    );

    let hcm =
        &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let route = &hcm["route_config"]["virtual_hosts"][0]["routes"][0];
    assert_eq!(
        route["match"]["headers"][0]["string_match"]["exact"],
        "us.amazon.nova-micro-v1:0"
    );
    assert_eq!(route["route"]["retry_policy"]["num_retries"], 1);
    let router = &hcm["http_filters"][0]["typed_config"];
    assert_eq!(router["processing_mode"]["request_body_mode"], "BUFFERED");
    assert_eq!(router["allow_mode_override"], true);
    // The client's address, for rate-limit sourceCIDR selectors.
    assert_eq!(
        router["request_attributes"],
        serde_json::json!(["source.address"])
    );
}

/// A policy reading its credential from dynamic metadata makes the router-level filter
/// forward that namespace; without one nothing is forwarded.
#[test]
fn metadata_credentials_forward_their_namespace() {
    let router = |name: &str| {
        let b = bootstrap(name);
        b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            ["http_filters"][0]["typed_config"]["metadata_options"]
            .clone()
    };
    let with = router("credential_override__metadata.yaml");
    assert_eq!(
        with["forwarding_namespaces"]["untyped"],
        serde_json::json!(["envoy.filters.http.ext_authz"])
    );
    assert_eq!(
        with["receiving_namespaces"]["untyped"],
        serde_json::json!(["io.envoy.ai_gateway"])
    );
    assert!(
        router("basic__basic.yaml")
            .get("forwarding_namespaces")
            .is_none()
    );
}

/// Route hostnames become virtual hosts: the scoped route only under its domain, the
/// unscoped one everywhere.
#[test]
fn hostnames_become_virtual_hosts() {
    let b = bootstrap("hostnames.yaml");
    let hcm =
        &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    assert_eq!(hcm["strip_any_host_port"], true);
    let vhosts = hcm["route_config"]["virtual_hosts"].as_array().unwrap();
    let routes_of = |v: &Value| -> Vec<String> {
        v["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r["match"]["headers"][0]["string_match"]["exact"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(vhosts.len(), 2);
    assert_eq!(
        vhosts[0]["domains"],
        serde_json::json!(["*.tenant.example"])
    );
    assert_eq!(routes_of(&vhosts[0]), ["tenant-model", "shared-model"]);
    assert_eq!(vhosts[1]["domains"], serde_json::json!(["*"]));
    assert_eq!(routes_of(&vhosts[1]), ["shared-model"]);
}

/// Envoy itself accepts every generated bootstrap.
#[test]
fn envoy_validates_generated_bootstraps() {
    let Some(envoy) = common::envoy::envoy_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        envoy_validate(
            &envoy,
            &dir.path().join(format!("{name}.json")),
            &bootstrap(name),
        );
    }
}

/// Writes `bootstrap` to `path` and has Envoy validate it.
fn envoy_validate(envoy: &std::path::Path, path: &std::path::Path, bootstrap: &Value) {
    std::fs::write(path, serde_json::to_vec(bootstrap).unwrap()).unwrap();
    let out = std::process::Command::new(envoy)
        .args(["--mode", "validate", "-l", "error", "-c"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The upstream fallback example's BackendTrafficPolicy (`retryOn: connect-failure,
/// retriable-status-codes` on 500, `numRetries: 5`, 100 ms–10 s backoff, 30 s per try)
/// becomes the route's Envoy retry policy as Envoy Gateway would write it.
#[test]
fn backend_traffic_policy_retry_becomes_the_routes_retry_policy() {
    let overlay = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../aigw-core/tests/fixtures/config/upstream/provider_fallback__fallback.yaml");
    let config = Config::load_paths(&[fixture("provider_fallback__base.yaml"), overlay]).unwrap();
    let plan = Plan::from_config(&config).unwrap();
    let opts = Options::new(ListenAddr::parse("unix:///run/aigw/extproc.sock").unwrap());
    let b = plan.bootstrap(&opts).unwrap();
    let hcm =
        &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let policy = &hcm["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["retry_policy"];
    assert_eq!(policy["retry_on"], "connect-failure,retriable-status-codes");
    assert_eq!(policy["retriable_status_codes"], serde_json::json!([500]));
    assert_eq!(policy["num_retries"], 5);
    assert_eq!(policy["per_try_timeout"], "30s");
    assert_eq!(policy["retry_back_off"]["base_interval"], "0.100s");
    assert_eq!(policy["retry_back_off"]["max_interval"], "10s");
}

/// A BackendTrafficPolicy's circuit breaker, passive and active health checks and
/// timeouts, as an overlay on the fallback example.
const PROTECTION: &str = r"apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata:
  name: protection
  namespace: default
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: HTTPRoute
      name: provider-fallback
  timeout:
    tcp:
      connectTimeout: 2s
    http:
      connectionIdleTimeout: 45s
  circuitBreaker:
    maxConnections: 64
    maxPendingRequests: 8
    maxParallelRequests: 32
  healthCheck:
    passive:
      consecutive5XxErrors: 4
      consecutiveGatewayErrors: 2
      interval: 2s
      baseEjectionTime: 20s
      maxEjectionPercent: 50
    active:
      type: HTTP
      timeout: 500ms
      interval: 5s
      unhealthyThreshold: 2
      healthyThreshold: 1
      http:
        path: /healthz
        expectedStatuses: [200, 204]
";

fn protected_bootstrap(dir: &std::path::Path) -> Value {
    let overlay = dir.join("protection.yaml");
    std::fs::write(&overlay, PROTECTION).unwrap();
    let config = Config::load_paths(&[fixture("provider_fallback__base.yaml"), overlay]).unwrap();
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
    let plan = Plan::from_config(&config).unwrap();
    let mut opts = Options::new(ListenAddr::parse("unix:///run/aigw/extproc.sock").unwrap());
    opts.listen = ([127, 0, 0, 1], 1975).into();
    plan.bootstrap(&opts).unwrap()
}

/// The policy lands in the rule's cluster as Envoy Gateway writes it, and Envoy accepts
/// the result.
#[test]
fn backend_traffic_policy_protection_becomes_cluster_settings() {
    let dir = tempfile::tempdir().unwrap();
    let b = protected_bootstrap(dir.path());
    let c = b["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "httproute/default/provider-fallback/rule/0")
        .unwrap()
        .clone();
    assert_eq!(c["connect_timeout"], "2s");
    let t = &c["circuit_breakers"]["thresholds"][0];
    assert_eq!(t["max_connections"], 64);
    assert_eq!(t["max_pending_requests"], 8);
    assert_eq!(t["max_requests"], 32);
    let o = &c["outlier_detection"];
    assert_eq!(o["consecutive_5xx"], 4);
    assert_eq!(o["consecutive_gateway_failure"], 2);
    assert_eq!(o["enforcing_consecutive_gateway_failure"], 100);
    assert_eq!(o["interval"], "2s");
    assert_eq!(o["base_ejection_time"], "20s");
    assert_eq!(o["max_ejection_percent"], 50);
    let h = &c["health_checks"][0];
    assert_eq!(h["timeout"], "0.500s");
    assert_eq!(h["interval"], "5s");
    assert_eq!(h["unhealthy_threshold"], 2);
    assert_eq!(h["http_health_check"]["path"], "/healthz");
    assert_eq!(
        h["http_health_check"]["expected_statuses"],
        serde_json::json!([{"start": 200, "end": 201}, {"start": 204, "end": 205}])
    );
    let opts = &c["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert_eq!(opts["common_http_protocol_options"]["idle_timeout"], "45s");

    let Some(envoy) = common::envoy::envoy_binary() else {
        return;
    };
    envoy_validate(&envoy, &dir.path().join("protected.json"), &b);
}

/// The configuration of [`pool_rules_ask_their_endpoint_picker`]: upstream's basic
/// example plus an AIGatewayRoute with two InferencePool rules (one buffered,
/// fail-open).
fn pools_yaml() -> String {
    let base = std::fs::read_to_string(fixture("basic__basic.yaml")).unwrap();
    let pool = |name: &str, extra: &str| {
        format!(
            "---\napiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata:\n  name: {name}\n  namespace: default\n{extra}spec:\n  targetPorts: [{{number: 8000}}]\n  selector: {{matchLabels: {{app: {name}}}}}\n  endpointPickerRef: {{name: {name}-epp, port: {{number: 9002}}{}}}\n",
            if extra.is_empty() {
                ""
            } else {
                ", failureMode: FailOpen"
            }
        )
    };
    format!(
        "{base}\n---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIGatewayRoute\nmetadata:\n  name: llama\n  namespace: default\nspec:\n  rules:\n    - matches:\n        - headers:\n            - {{type: Exact, name: x-ai-eg-model, value: llama}}\n      backendRefs:\n        - {{group: inference.networking.k8s.io, kind: InferencePool, name: vllm}}\n    - matches:\n        - headers:\n            - {{type: Exact, name: x-ai-eg-model, value: mistral}}\n      backendRefs:\n        - {{group: inference.networking.k8s.io, kind: InferencePool, name: mistral}}\n{}{}",
        pool("vllm", ""),
        pool(
            "mistral",
            "  annotations:\n    aigateway.envoyproxy.io/processing-body-mode: buffered\n"
        ),
    )
}

/// InferencePool rules as upstream's extension server wires them: an ORIGINAL_DST
/// cluster on `x-gateway-destination-endpoint` carrying the backend name, per pool the
/// picker's cluster and ext_proc filter (after the AI filter, before the router), each
/// disabled on the routes of other pools and of none; Envoy accepts it.
#[test]
fn pool_rules_ask_their_endpoint_picker() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pools.yaml");
    std::fs::write(&cfg, pools_yaml()).unwrap();
    let config = Config::load_paths(&[&cfg]).unwrap();
    let plan = Plan::from_config(&config).unwrap();
    let mut opts = Options::new(ListenAddr::parse("unix:///run/aigw/extproc.sock").unwrap());
    opts.listen = ([127, 0, 0, 1], 1975).into();
    opts.pickers
        .insert("default/mistral".into(), "http://127.0.0.1:9002".into());
    let b = plan.bootstrap(&opts).unwrap();
    insta::assert_json_snapshot!(b);

    let clusters = b["static_resources"]["clusters"].as_array().unwrap();
    let by_name = |n: &str| clusters.iter().find(|c| c["name"] == n).unwrap();
    let pool = by_name("httproute/default/llama/rule/0");
    assert_eq!(pool["type"], "ORIGINAL_DST");
    assert_eq!(
        pool["original_dst_lb_config"]["http_header_name"],
        "x-gateway-destination-endpoint"
    );
    assert_eq!(
        pool["metadata"]["filter_metadata"]["aigateway.envoy.io"]["per_route_rule_backend_name"],
        "default/vllm/route/llama/rule/0/ref/0"
    );
    let picker = by_name("envoy.clusters.endpointpicker_vllm_default_ext_proc");
    assert_eq!(picker["type"], "STRICT_DNS");
    assert_eq!(
        picker["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"],
        serde_json::json!({ "address": "vllm-epp.default.svc", "port_value": 9002 })
    );
    assert!(picker["transport_socket"].is_object(), "TLS by default");
    let mistral = by_name("envoy.clusters.endpointpicker_mistral_default_ext_proc");
    assert_eq!(mistral["type"], "STATIC");
    assert!(
        mistral.get("transport_socket").is_none(),
        "http:// is plain text"
    );

    let hcm =
        &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let filters: Vec<&str> = hcm["http_filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        filters,
        [
            "envoy.filters.http.header_mutation/endpointpicker",
            "envoy.filters.http.ext_proc",
            "envoy.filters.http.ext_proc/endpointpicker/mistral_default_ext_proc",
            "envoy.filters.http.ext_proc/endpointpicker/vllm_default_ext_proc",
            "envoy.filters.http.router"
        ]
    );
    let mode = |i: usize| {
        hcm["http_filters"][i]["typed_config"]["processing_mode"]["request_body_mode"].clone()
    };
    assert_eq!(mode(2), "BUFFERED");
    assert_eq!(mode(3), "FULL_DUPLEX_STREAMED");
    // FailOpen has nowhere to send a request the picker failed on: fail closed.
    assert_eq!(
        hcm["http_filters"][2]["typed_config"]["failure_mode_allow"],
        false
    );
    let routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
        .as_array()
        .unwrap();
    let route = |cluster: &str| {
        routes
            .iter()
            .find(|r| r["route"]["cluster"] == cluster)
            .unwrap()
    };
    let vllm = route("httproute/default/llama/rule/0");
    let per = vllm["typed_per_filter_config"].as_object().unwrap();
    assert_eq!(per.len(), 1, "{per:?}");
    assert_eq!(
        per["envoy.filters.http.ext_proc/endpointpicker/mistral_default_ext_proc"]["disabled"],
        true
    );
    assert_eq!(vllm["route"]["auto_host_rewrite"], false);
    let plain = route("httproute/default/envoy-ai-gateway-basic/rule/0");
    assert_eq!(
        plain["typed_per_filter_config"].as_object().unwrap().len(),
        2,
        "no picker on a route without a pool"
    );

    let Some(envoy) = common::envoy::envoy_binary() else {
        return;
    };
    envoy_validate(&envoy, &dir.path().join("pools.json"), &b);
}

/// A picker address that is not `http(s)://HOST:PORT` is an error naming the pool.
#[test]
fn a_bad_picker_address_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pools.yaml");
    std::fs::write(&cfg, pools_yaml()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aigw-extproc"))
        .arg("envoy-config")
        .arg(&cfg)
        .args(["--extproc", "unix:///run/aigw/extproc.sock"])
        .args(["--endpoint-picker", "default/vllm=grpc://epp:9002"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("InferencePool default/mistral: failureMode FailOpen is not honoured"),
        "{stderr}"
    );
    assert!(
        stderr.contains("endpoint picker of InferencePool default/vllm")
            && stderr.contains("grpc://epp:9002"),
        "{stderr}"
    );
}

/// A route to one Backend with `appProtocols: [gateway.envoyproxy.io/h2c]`.
const H2C: &str = r"apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata:
  name: h2c
  namespace: default
spec:
  rules:
    - matches:
        - headers:
            - type: Exact
              name: x-ai-eg-model
              value: m
      backendRefs:
        - name: up
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata:
  name: up
  namespace: default
spec:
  schema:
    name: OpenAI
  backendRef:
    name: up
    kind: Backend
    group: gateway.envoyproxy.io
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata:
  name: up
  namespace: default
spec:
  appProtocols:
    - gateway.envoyproxy.io/h2c
  endpoints:
    - ip:
        address: 127.0.0.1
        port: 8000
";

/// An h2c Backend's cluster speaks HTTP/2 (prior knowledge on plain text), and Envoy
/// accepts it.
#[test]
fn h2c_backends_get_http2_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h2c.yaml");
    std::fs::write(&path, H2C).unwrap();
    let config = Config::load_paths(&[path]).unwrap();
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
    let plan = Plan::from_config(&config).unwrap();
    let mut opts = Options::new(ListenAddr::parse("unix:///run/aigw/extproc.sock").unwrap());
    opts.listen = ([127, 0, 0, 1], 1975).into();
    let b = plan.bootstrap(&opts).unwrap();
    let c = b["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "httproute/default/h2c/rule/0")
        .unwrap()
        .clone();
    let opts = &c["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert_eq!(
        opts["explicit_http_config"],
        serde_json::json!({"http2_protocol_options": {}})
    );
    let Some(envoy) = common::envoy::envoy_binary() else {
        return;
    };
    envoy_validate(&envoy, &dir.path().join("h2c.json"), &b);
}
