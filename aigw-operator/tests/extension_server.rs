//! The Envoy Gateway Extension Server: xDS in → modified xDS out (golden files), the
//! modified listeners, routes and clusters accepted by the real Envoy, and one chat
//! completion carried by that Envoy through `aigw-extproc` running the configuration
//! `aigw-operator render` writes for the same Gateway.
//!
//! Inputs are written as proto-JSON (YAML) in `tests/extension/*.input.yaml`; they are
//! converted to and from the `envoy-types` structs through the Envoy descriptors that
//! `envoy-types` ships, so the golden files read as Envoy's own JSON.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]
mod common;

use std::path::PathBuf;

use aigw_operator::extension::inference_pool::{self, Pool};
use aigw_operator::extension::modify::{self, Options, Routes};
use aigw_operator::extension::proto::{ExtensionResource, PostTranslateModifyRequest};
use aigw_operator::extension::server::rules_of;
use common::xds::{
    bootstrap, envoy, envoy_output, free_port, from_json, on_loopback, point_cluster, pool,
    rendered_config, request, response_json, start_envoy, start_extproc,
};
use prost_reflect::DescriptorPool;
use serde_json::{Value, json};

const UDS: &str = "/etc/ai-gateway-extproc-uds/run.sock";

/// The AIGatewayRoutes of upstream example manifests, as the server would look them up.
fn ai_routes(manifests: &[&str]) -> Routes {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../aigw-core/tests/fixtures/config/upstream");
    let mut routes = Routes::new();
    for m in manifests {
        let text = std::fs::read_to_string(dir.join(m)).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        for d in docs.iter().filter(|d| d["kind"] == "AIGatewayRoute") {
            let key = (
                d["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_owned(),
                d["metadata"]["name"].as_str().unwrap().to_owned(),
            );
            routes.insert(key, rules_of(d));
        }
    }
    routes
}

/// A route configuration as JSON. A `FilterConfig` whose `config` is an empty `Any` (how
/// a route enables a filter the listener disables) has no proto-JSON form with a type URL;
/// The InferencePools of the InferencePool example, as Envoy Gateway passes them to the
/// per-route and per-cluster hooks.
fn inference_pools() -> Vec<(usize, Pool)> {
    let vllm = json!({
        "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
        "metadata": { "name": "vllm-llama3-8b-instruct", "namespace": "default" },
        "spec": { "targetPorts": [{ "number": 8000 }], "selector": { "matchLabels": { "app": "vllm-llama3-8b-instruct" } },
                  "endpointPickerRef": { "name": "vllm-llama3-8b-instruct-epp", "port": { "number": 9002 } } },
    });
    let mistral = json!({
        "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
        "metadata": { "name": "mistral", "namespace": "default",
                      "annotations": { "aigateway.envoyproxy.io/processing-body-mode": "buffered" } },
        "spec": { "targetPorts": [{ "number": 8080 }], "selector": { "matchLabels": { "app": "mistral" } },
                  "endpointPickerRef": { "name": "mistral-epp", "port": { "number": 9002 } } },
    });
    let resource = |v: &Value| ExtensionResource {
        unstructured_bytes: serde_json::to_vec(v).unwrap(),
    };
    [(0, vllm), (1, mistral)]
        .iter()
        .map(|(rule, obj)| {
            (
                *rule,
                inference_pool::pool_of(&[resource(obj)]).unwrap().unwrap(),
            )
        })
        .collect()
}

/// Envoy Gateway's PostRouteModify and PostClusterModify calls for the pool rules.
fn per_resource_hooks(req: &mut PostTranslateModifyRequest) {
    for (rule, pool) in inference_pools() {
        let cluster = format!("httproute/default/inference-pool-with-aigwroute/rule/{rule}");
        for c in req.clusters.iter_mut().filter(|c| c.name == cluster) {
            inference_pool::modify_cluster(c, &pool);
        }
        for rc in &mut req.routes {
            for vh in &mut rc.virtual_hosts {
                for r in vh
                    .routes
                    .iter_mut()
                    .filter(|r| r.name.contains(&format!("/rule/{rule}/")))
                {
                    inference_pool::modify_route(r, &pool);
                }
            }
        }
    }
}

fn run(pool: &DescriptorPool, fixture: &str, manifests: &[&str]) -> Value {
    run_at(pool, fixture, manifests, UDS)
}

/// [`run`] with the ExtProc's socket at `uds`.
fn run_at(pool: &DescriptorPool, fixture: &str, manifests: &[&str], uds: &str) -> Value {
    let mut req = request(pool, fixture);
    if fixture == "inference_pool" {
        per_resource_hooks(&mut req);
    }
    let routes = ai_routes(manifests);
    // HTTPRoutes that are not AIGatewayRoutes: `plain`, and the MCPRoute's three.
    let others = match fixture {
        "basic" => 1,
        "mcp" => 4,
        "mcp_sidecar" => 3,
        _ => 0,
    };
    assert_eq!(modify::referenced_routes(&req).len(), routes.len() + others);
    let out = modify::modify(req, &routes, &Options::new(uds)).unwrap();
    // A second pass (Envoy Gateway may send what it was given back) changes nothing.
    let again = modify::modify(
        PostTranslateModifyRequest {
            post_translate_context: None,
            clusters: out.clusters.clone(),
            secrets: out.secrets.clone(),
            listeners: out.listeners.clone(),
            routes: out.routes.clone(),
        },
        &routes,
        &Options::new(uds),
    )
    .unwrap();
    assert_eq!(again, out, "{fixture}: the modification is idempotent");
    response_json(pool, &out)
}

const CASES: &[(&str, &[&str])] = &[
    ("basic", &["basic__basic.yaml"]),
    (
        "fallback",
        &[
            "provider_fallback__base.yaml",
            "provider_fallback__fallback.yaml",
        ],
    ),
    ("inference_pool", &["inference-pool__aigwroute.yaml"]),
    ("mcp", &[]),
    ("mcp_sidecar", &[]),
    (
        "stream_idle_timeout",
        &[
            "stream_idle_timeout__base.yaml",
            "stream_idle_timeout__backends.yaml",
        ],
    ),
];

#[test]
fn post_translate_modify_golden() {
    let pool = pool();
    for (fixture, manifests) in CASES {
        insta::assert_yaml_snapshot!(
            format!("post_translate_modify_{fixture}"),
            run(&pool, fixture, manifests)
        );
    }
}

/// The routes of other owners keep no AI wiring, and clusters of other HTTPRoutes are untouched.
#[test]
fn non_ai_routes_and_clusters_are_left_alone() {
    let pool = pool();
    let req = request(&pool, "basic");
    let plain_before = req.clusters[1].clone();
    let out = modify::modify(req, &ai_routes(&["basic__basic.yaml"]), &Options::new(UDS)).unwrap();
    assert_eq!(out.clusters[1], plain_before);
    let plain_route = &out.routes[0].virtual_hosts[0].routes[2];
    assert!(plain_route.typed_per_filter_config.is_empty());
    let names: Vec<&str> = out.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "ai-gateway-extproc-uds")
            .count(),
        1
    );
    // The stats listener is Envoy Gateway's own: no filter added.
    assert_eq!(out.listeners[1], request(&pool, "basic").listeners[1]);
}

/// An MCPRoute's per-backend routes and filters move to the internal backend listener,
/// the proxy rule reaches the in-pod proxy, the metadata rules lose the client
/// authentication, and other routes stay where they are.
#[test]
fn mcp_routes_move_behind_the_backend_listener() {
    let pool = pool();
    let out = run(&pool, "mcp", &[]);
    let listener = |name: &str| {
        out["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap()
            .clone()
    };
    let filters = |l: &Value| -> Vec<String> {
        l.pointer("/filterChains/0/filters/0/typedConfig/httpFilters")
            .or_else(|| l.pointer("/defaultFilterChain/filters/0/typedConfig/httpFilters"))
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let backend = listener("aigateway-mcp-backend-listener");
    assert_eq!(
        backend["address"]["socketAddress"],
        json!({ "address": "127.0.0.1", "portValue": 10088 })
    );
    assert_eq!(
        filters(&backend),
        [
            "envoy.filters.http.credential_injector/httproutefilter/default/ai-eg-mcp-brf-mcp-route-github",
            "envoy.filters.http.header_to_metadata",
            "envoy.filters.http.router"
        ]
    );
    assert!(
        backend
            .pointer("/filterChains/0/filters/0/typedConfig/accessLog/0")
            .is_some()
    );
    let gateway = listener("default/aigw-run/http");
    assert_eq!(
        filters(&gateway),
        [
            "envoy.filters.http.jwt_authn",
            "envoy.filters.http.header_to_metadata",
            "envoy.filters.http.router"
        ]
    );
    let routes = |rc: &str| -> Vec<Value> {
        out["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == rc)
            .unwrap()["virtualHosts"][0]["routes"]
            .as_array()
            .unwrap()
            .clone()
    };
    let names = |rs: &[Value]| -> Vec<String> {
        rs.iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let main = routes("default/aigw-run/http");
    assert_eq!(
        names(&main),
        [
            "httproute/default/ai-eg-mcp-main-mcp-route/rule/0/match/0/*",
            "httproute/default/ai-eg-mcp-main-mcp-route/rule/1/match/0/*",
            "httproute/default/plain/rule/0/match/0/*"
        ]
    );
    assert!(main[0]["typedPerFilterConfig"]["envoy.filters.http.jwt_authn"].is_object());
    assert!(main[1].get("typedPerFilterConfig").is_none());
    let subset = &main[0]["requestHeadersToAdd"][1];
    assert_eq!(subset["header"]["key"], "x-ai-eg-mcp-backend-subset");
    assert_eq!(
        subset["header"]["value"],
        "%DYNAMIC_METADATA([\"aigateway.envoy.io\", \"mcp_backend_subset\"])%"
    );
    assert_eq!(
        names(&routes("aigateway-mcp-backend-listener-route-config")),
        [
            "httproute/default/ai-eg-mcp-br-mcp-route-github/rule/0/match/0/*",
            "httproute/default/ai-eg-mcp-br-mcp-route-kiwi/rule/0/match/0/*"
        ]
    );
    let proxy = out["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "httproute/default/ai-eg-mcp-main-mcp-route/rule/0")
        .unwrap();
    assert_eq!(
        proxy["loadAssignment"]["endpoints"][0]["lbEndpoints"][0]["endpoint"]["address"]["socketAddress"],
        json!({ "address": "127.0.0.1", "portValue": 9856 })
    );
}

/// Envoy 1.40 accepts the modified listeners, routes and clusters.
#[test]
fn envoy_accepts_the_modified_xds() {
    let Some(envoy) = envoy() else { return };
    let pool = pool();
    let dir = tempfile::tempdir().unwrap();
    for (fixture, manifests) in CASES {
        let path = dir.path().join(format!("{fixture}.json"));
        std::fs::write(
            &path,
            serde_json::to_vec(&bootstrap(&run(&pool, fixture, manifests))).unwrap(),
        )
        .unwrap();
        let out = std::process::Command::new(&envoy)
            .args(["--mode", "validate", "-l", "error", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{fixture}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Envoy runs the extension server's output for upstream's basic example as a static
/// bootstrap (the UDS cluster at a socket in a temp dir, the AI cluster at the bundled
/// simulator), `aigw-extproc` serves the configuration Secret `render` writes for the
/// Gateway, and a chat completion goes through: the answer, the upstream request the
/// simulator saw, and the usage in Envoy's access log (the ExtProc's dynamic metadata).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_completion_through_envoy_and_aigw_extproc() {
    use aigw_axum::simulator::{Simulator, SimulatorConfig};
    let Some(envoy) = envoy() else { return };
    let dir = tempfile::tempdir().unwrap();

    // The simulator, recording what reaches the upstream.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = l.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, Value)>::new()));
    let record = seen.clone();
    let upstream = axum_proxy(sim, record).await;
    tokio::spawn(Simulator::new(SimulatorConfig::default()).serve(l, std::future::pending()));

    // The configuration the operator writes for the Gateway, loaded by the ExtProc.
    // Upstream's basic example plus token costs, so the usage lands in dynamic metadata.
    let text = std::fs::read_to_string(shared().join("basic__basic.yaml")).unwrap();
    let anchor = "        - name: envoy-ai-gateway-basic-testupstream\n";
    assert!(text.contains(anchor));
    let text = text.replacen(
        anchor,
        &format!(
            "{anchor}  llmRequestCosts:\n    - metadataKey: llm_input_token\n      type: InputToken\n    - metadataKey: llm_output_token\n      type: OutputToken\n    - metadataKey: llm_total_token\n      type: TotalToken\n"
        ),
        1,
    );
    let manifest = dir.path().join("basic.yaml");
    std::fs::write(&manifest, text).unwrap();
    let cfg = rendered_config(&[manifest], "default.envoy-ai-gateway-basic", dir.path());
    let sock = start_extproc(&cfg, dir.path()).await;

    // The extension server's xDS as a bootstrap: loopback addresses, an access log.
    let pool = pool();
    let resp = run_at(
        &pool,
        "basic",
        &["basic__basic.yaml"],
        &sock.display().to_string(),
    );
    let mut b = bootstrap(&resp);
    let (listen, admin) = (free_port(), free_port());
    let listener = on_loopback(&mut b, "default/envoy-ai-gateway-basic/http", listen, admin);
    let log = dir.path().join("access.log");
    let md = |k: &str| format!("%DYNAMIC_METADATA(io.envoy.ai_gateway:{k})%");
    listener["defaultFilterChain"]["filters"][0]["typedConfig"]["accessLog"] = json!([{
        "name": "envoy.access_loggers.file",
        "typedConfig": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": log.display().to_string(),
            "logFormat": { "jsonFormat": {
                "code": "%RESPONSE_CODE%",
                "model": "%REQ(X-AI-EG-MODEL)%",
                "backend": md("backend_name"),
                "input": md("llm_input_token"),
                "output": md("llm_output_token"),
                "total": md("llm_total_token"),
            } },
        },
    }]);
    point_cluster(
        &mut b,
        "httproute/default/envoy-ai-gateway-basic/rule/0",
        upstream,
    );
    let mut child = start_envoy(&envoy, &b, dir.path(), admin).await;
    let envoy_out = || envoy_output(dir.path());

    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{listen}/v1/chat/completions"))
        .json(&json!({
            "model": "some-cool-self-hosted-model",
            "messages": [{ "role": "user", "content": "Say hi" }],
        }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap_or_default();
    assert_eq!(status, 200, "{body}\n{}", envoy_out());
    assert_eq!(body["object"], "chat.completion", "{body}");
    assert!(
        body["choices"][0]["message"]["content"].is_string(),
        "{body}"
    );
    let total = body["usage"]["total_tokens"].as_u64().unwrap();
    assert!(total > 0, "{body}");

    // What the upstream received: the OpenAI path, the model, the backend's host.
    let (req_line, upstream_body) = seen
        .lock()
        .unwrap()
        .first()
        .cloned()
        .expect("an upstream request");
    assert!(
        req_line.starts_with("POST /v1/chat/completions"),
        "{req_line}"
    );
    assert_eq!(upstream_body["model"], "some-cool-self-hosted-model");

    // The usage the ExtProc put in dynamic metadata, in Envoy's access log.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let line = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(v) = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .next()
        {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no access log line:\n{}",
            envoy_out()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(line["code"], 200, "{line}");
    assert_eq!(line["model"], "some-cool-self-hosted-model", "{line}");
    assert_eq!(
        line["backend"],
        "default/envoy-ai-gateway-basic-testupstream/route/envoy-ai-gateway-basic/rule/0/ref/0",
        "{line}"
    );
    assert_eq!(line["total"].as_u64(), Some(total), "{line}");
    assert_eq!(
        line["input"].as_u64().unwrap() + line["output"].as_u64().unwrap(),
        total,
        "{line}"
    );
    let _ = child.start_kill();
}

/// An InferencePool whose endpoint picker is down: Envoy's ext_proc filter fails the
/// request itself, and the client gets the error in the OpenAI shape from the local-reply
/// mapping the extension server adds (not Envoy's empty 500), read by the official
/// OpenAI Python SDK as an `InternalServerError` with its message; the Anthropic
/// Messages endpoint gets Anthropic's shape. Upstream's InferencePool example, run by
/// Envoy 1.40 with `aigw-extproc` serving the configuration `render` writes for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_endpoint_picker_answers_in_the_clients_error_shape() {
    let Some(envoy) = envoy() else { return };
    let dir = tempfile::tempdir().unwrap();
    // With the basic example's backend, which the pool example's third rule names.
    let cfg = rendered_config(
        &[
            shared().join("inference-pool__aigwroute.yaml"),
            shared().join("basic__basic.yaml"),
        ],
        "default.inference-pool-with-aigwroute",
        dir.path(),
    );
    let sock = start_extproc(&cfg, dir.path()).await;
    let pool = pool();
    let resp = run_at(
        &pool,
        "inference_pool",
        &["inference-pool__aigwroute.yaml"],
        &sock.display().to_string(),
    );
    let mut b = bootstrap(&resp);
    let (listen, admin, dead) = (free_port(), free_port(), free_port());
    on_loopback(
        &mut b,
        "default/inference-pool-with-aigwroute/http",
        listen,
        admin,
    );
    // The mistral pool's picker: nothing listens there.
    point_cluster(
        &mut b,
        "envoy.clusters.endpointpicker_mistral_default_ext_proc",
        dead,
    );
    let _child = start_envoy(&envoy, &b, dir.path(), admin).await;

    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{listen}/v1/chat/completions"))
        .json(&json!({ "model": "mistral:latest", "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let ct = r.headers().get("content-type").cloned();
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap())
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", envoy_output(dir.path())));
    assert_eq!(status, 500, "{body}");
    assert_eq!(ct.unwrap(), "application/json");
    assert_eq!(body["error"]["type"], "server_error", "{body}");
    assert_eq!(body["error"]["code"], "gateway_processing_failed", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("ext_proc_error_gRPC_error_14"),
        "{message}"
    );

    // The official OpenAI SDK reads it as an API error with that message.
    let python = std::env::var("AIGW_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = format!(
        r#"
import openai
c = openai.OpenAI(base_url="http://127.0.0.1:{listen}/v1", api_key="k", max_retries=0)
try:
    c.chat.completions.create(model="mistral:latest", messages=[{{"role": "user", "content": "hi"}}])
except openai.InternalServerError as e:
    print(e.status_code, e.code, e.message)
"#
    );
    let out = std::process::Command::new(&python)
        .args(["-c", &script])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.starts_with("500 gateway_processing_failed ")
            && printed.contains("endpoint picker"),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Anthropic's Messages endpoint: Anthropic's error shape.
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{listen}/anthropic/v1/messages"))
        .header("x-ai-eg-model", "mistral:latest")
        .json(&json!({ "model": "mistral:latest", "max_tokens": 16, "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "api_error", "{body}");
}

/// A GatewayConfig's forward proxy: Envoy runs the extension server's output for the
/// basic example, the backend reached over TLS (as providers are) and the route's
/// clusters wrapped in `http_11_proxy`; the chat completion reaches the simulator through
/// an HTTP CONNECT proxy (a small tunnel that records what it is asked to connect to)
/// with TLS end to end through the tunnel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_completion_tunnels_through_the_gateways_forward_proxy() {
    use aigw_axum::simulator::{Simulator, SimulatorConfig};
    let Some(envoy) = envoy() else { return };
    let dir = tempfile::tempdir().unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = l.local_addr().unwrap().port();
    tokio::spawn(Simulator::new(SimulatorConfig::default()).serve(l, std::future::pending()));
    let (tls_port, ca) = tls_front(sim).await;
    let (proxy_port, connects) = connect_proxy().await;

    let cfg = rendered_config(
        &[shared().join("basic__basic.yaml")],
        "default.envoy-ai-gateway-basic",
        dir.path(),
    );
    let sock = start_extproc(&cfg, dir.path()).await;
    let pool = pool();
    let mut routes = ai_routes(&["basic__basic.yaml"]);
    for rule in routes.values_mut().flatten() {
        rule.forward_proxy = Some(format!("127.0.0.1:{proxy_port}"));
    }
    let mut req = request(&pool, "basic");
    let tls = json!({
        "name": "envoy.transport_sockets.tls",
        "typedConfig": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": "localhost",
            "commonTlsContext": { "validationContext": { "trustedCa": { "inlineString": ca } } },
        },
    });
    req.clusters[0].transport_socket = Some(from_json(
        &pool,
        "envoy.config.core.v3.TransportSocket",
        &tls,
    ));
    let out = modify::modify(req, &routes, &Options::new(sock.display().to_string())).unwrap();
    let mut b = bootstrap(&response_json(&pool, &out));
    let (listen, admin) = (free_port(), free_port());
    on_loopback(&mut b, "default/envoy-ai-gateway-basic/http", listen, admin);
    point_cluster(
        &mut b,
        "httproute/default/envoy-ai-gateway-basic/rule/0",
        tls_port,
    );
    let _child = start_envoy(&envoy, &b, dir.path(), admin).await;

    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{listen}/v1/chat/completions"))
        .json(&json!({ "model": "some-cool-self-hosted-model", "messages": [{ "role": "user", "content": "Say hi" }] }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap_or_default();
    assert_eq!(
        status,
        200,
        "{body}\n{:?}\n{}",
        connects.lock().unwrap(),
        envoy_output(dir.path())
    );
    assert_eq!(body["object"], "chat.completion", "{body}");
    assert_eq!(
        connects.lock().unwrap().first().map(String::as_str),
        Some(format!("CONNECT 127.0.0.1:{tls_port} HTTP/1.1").as_str())
    );
}

/// A TLS front for `port` (certificate for `localhost`); its port and CA certificate.
async fn tls_front(port: u16) -> (u16, String) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        cert.key_pair.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (tls_port, cert.cert.pem())
}

/// An HTTP CONNECT proxy: its port and the request lines it received.
async fn connect_proxy() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = proxy.local_addr().unwrap().port();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = lines.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = proxy.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                seen.lock().unwrap().push(line.clone());
                let target = match line.split(' ').collect::<Vec<_>>()[..] {
                    ["CONNECT", target, _] => target.to_owned(),
                    _ => {
                        let _ = client
                            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                            .await;
                        return;
                    }
                };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                let _ = client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (port, lines)
}

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/envoy-ai-gateway-manifests")
}

/// A recording hop in front of the simulator: what the upstream receives (request line
/// with the Host, and the JSON body), then the simulator's answer.
async fn axum_proxy(
    sim: u16,
    record: std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
) -> u16 {
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(
        move |method: http::Method,
              uri: http::Uri,
              headers: http::HeaderMap,
              body: axum::body::Bytes| {
            let (client, record) = (client.clone(), record.clone());
            async move {
                let host = headers
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                record.lock().unwrap().push((
                    format!("{method} {uri} host={host}"),
                    serde_json::from_slice(&body).unwrap_or_default(),
                ));
                let mut req = client
                    .request(method, format!("http://127.0.0.1:{sim}{uri}"))
                    .body(body);
                for (k, v) in &headers {
                    if k != "host" && k != "content-length" {
                        req = req.header(k, v);
                    }
                }
                let r = req.send().await.unwrap();
                let status = r.status();
                let ct = r.headers().get("content-type").cloned();
                let bytes = r.bytes().await.unwrap();
                let mut resp = axum::response::Response::new(axum::body::Body::from(bytes));
                *resp.status_mut() = status;
                if let Some(ct) = ct {
                    resp.headers_mut().insert("content-type", ct);
                }
                resp
            }
        },
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await });
    port
}
