//! An MCPRoute end to end the way the operator deploys it: `render` writes the Gateway's
//! ExtProc configuration, the webhook's sidecar (its command line and its session seed
//! from the MCP session Secret) serves MCP from it, the extension server's output for
//! the MCPRoute's xDS (`tests/extension/mcp_sidecar.input.yaml`) runs in Envoy 1.40, and
//! the official `mcp` Python SDK client drives a whole session through Envoy against two
//! MCP servers built with the same SDK (the scripts the other MCP tests use).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aigw_operator::extension::modify::{self, Options, Routes};
use aigw_operator::render::{self, Manifests, bundle};
use aigw_operator::sidecar::{self, McpSession, SidecarOptions};
use clap::Parser as _;
use common::xds::{
    bootstrap, envoy, envoy_output, free_port, pool, request, response_json, start_envoy,
};
use serde_json::{Value, json};

/// The seed in the test's MCP session Secret.
const SEED: &str = "a-seed-only-this-test-knows";

fn wait_port(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "port {port} never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed (and reaped) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn py_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../aigw-axum/tests/py")
        .join(name)
}

/// An MCP server built with the official `mcp` Python SDK.
fn mcp_backend(python: &Path, name: &str, port: u16, json: bool) -> Proc {
    let mut c = Command::new(python);
    c.arg(py_script("mcp_backend.py"))
        .arg(name)
        .arg(port.to_string());
    if json {
        c.arg("--json");
    }
    let p = Proc(c.stdout(Stdio::null()).spawn().unwrap());
    wait_port(port);
    p
}

/// The Gateway, the MCPRoute and its two Backends, as a user applies them.
fn manifests(alpha: u16, beta: u16) -> String {
    format!(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: aigw
  listeners: [{{name: http, protocol: HTTP, port: 80}}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: MCPRoute
metadata: {{name: tools, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  backendRefs:
    - {{name: alpha, group: gateway.envoyproxy.io, kind: Backend, toolSelector: {{exclude: [secret_admin]}}}}
    - {{name: beta, group: gateway.envoyproxy.io, kind: Backend}}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: alpha, namespace: default}}
spec:
  endpoints: [{{ip: {{address: 127.0.0.1, port: {alpha}}}}}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: beta, namespace: default}}
spec:
  endpoints: [{{ip: {{address: 127.0.0.1, port: {beta}}}}}]
"#
    )
}

/// The `aigw-extproc` options the sidecar's command line sets (the flags of its CLI;
/// an unknown flag fails the parse).
#[derive(Debug, clap::Parser)]
struct SidecarCli {
    #[arg(long)]
    config: Vec<PathBuf>,
    #[arg(long)]
    listen: String,
    #[arg(long)]
    admin: String,
    #[arg(long)]
    mcp_addr: SocketAddr,
    #[command(flatten)]
    mcp: aigw_extproc::mcp::McpArgs,
}

/// The injected sidecar of the Gateway's Envoy pod.
fn sidecar_container(m: &Manifests, opts: &SidecarOptions) -> Value {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "namespace": "envoy-gateway-system", "labels": {
            sidecar::OWNING_GATEWAY_NAME: "gw",
            sidecar::OWNING_GATEWAY_NAMESPACE: "default",
        } },
        "spec": { "containers": [{ "name": "envoy", "image": "envoy" }] },
    });
    sidecar::patch(&pod, m, opts)
        .into_iter()
        .find(|o| o["path"] == "/spec/initContainers")
        .expect("the sidecar is injected")["value"][0]
        .clone()
}

/// The sidecar's options as the kubelet would start it: its arguments, with the
/// environment resolved from `secret` (name, data) as `secretKeyRef` does; the
/// configuration directory and the MCP address moved to `config_dir` and `mcp`.
fn sidecar_cli(
    container: &Value,
    secret: (&str, &[(&str, &str)]),
    config_dir: &Path,
    mcp: u16,
) -> SidecarCli {
    let mut args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    for (flag, value) in [
        ("--config", config_dir.display().to_string()),
        ("--mcp-addr", format!("127.0.0.1:{mcp}")),
    ] {
        let i = args.iter().position(|a| a == flag).unwrap();
        args[i + 1] = value;
    }
    let mut cli =
        SidecarCli::try_parse_from(std::iter::once("aigw-extproc".to_owned()).chain(args)).unwrap();
    for e in container["env"].as_array().into_iter().flatten() {
        let r = &e["valueFrom"]["secretKeyRef"];
        let value = if r.is_object() {
            assert_eq!(r["name"], secret.0, "{e}");
            match secret.1.iter().find(|(k, _)| r["key"] == *k) {
                Some((_, v)) => (*v).to_owned(),
                None => {
                    assert_eq!(
                        r["optional"], true,
                        "a missing key of a required reference: {e}"
                    );
                    continue;
                }
            }
        } else {
            e["value"].as_str().unwrap_or_default().to_owned()
        };
        match e["name"].as_str().unwrap() {
            sidecar::MCP_SEED_ENV => cli.mcp.mcp_session_seed = Some(aigw_core::Secret::new(value)),
            sidecar::MCP_FALLBACK_SEED_ENV => {
                cli.mcp.mcp_fallback_session_seed = Some(aigw_core::Secret::new(value))
            }
            _ => {}
        }
    }
    cli
}

/// Starts the sidecar's MCP listener in process (`aigw-extproc`'s own code path).
async fn start_mcp(cli: &SidecarCli, addr: SocketAddr) {
    aigw_extproc::mcp::spawn(
        addr,
        &cli.config,
        &cli.mcp,
        &aigw_extproc::metrics::Metrics::default(),
        aigw_core::telemetry::Telemetry::disabled(),
        std::future::pending(),
    )
    .await
    .unwrap();
    wait_port(addr.port());
}

/// The extension server's output for the MCPRoute's xDS as a static bootstrap: the
/// Gateway listener on `listen`, the proxy rule's cluster at the sidecar's MCP listener
/// (the extension server points it at `127.0.0.1:9856`; only the port changes), the
/// backend listener on `backend_listener`, the backend clusters at the servers.
fn envoy_bootstrap(
    listen: u16,
    mcp: u16,
    backend_listener: u16,
    backends: [u16; 2],
    admin: u16,
) -> Value {
    let pool = pool();
    let req = request(&pool, "mcp_sidecar");
    let out = modify::modify(req, &Routes::new(), &Options::new("/tmp/unused.sock")).unwrap();
    let mut b = bootstrap(&response_json(&pool, &out));
    let listeners = b["staticResources"]["listeners"].as_array_mut().unwrap();
    let names: Vec<&str> = listeners
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default/gw/http", "aigateway-mcp-backend-listener"]);
    for l in listeners.iter_mut() {
        let port = if l["name"] == "default/gw/http" {
            listen
        } else {
            backend_listener
        };
        l["address"]["socketAddress"] = json!({ "address": "127.0.0.1", "portValue": port });
    }
    for c in b["staticResources"]["clusters"].as_array_mut().unwrap() {
        let name = c["name"].as_str().unwrap().to_owned();
        let port = if name.contains("ai-eg-mcp-main-tools") {
            mcp
        } else if name.contains("-tools-alpha") {
            backends[0]
        } else if name.contains("-tools-beta") {
            backends[1]
        } else {
            continue;
        };
        let addr = &mut c["loadAssignment"]["endpoints"][0]["lbEndpoints"][0]["endpoint"]["address"]
            ["socketAddress"];
        assert_eq!(addr["address"], "127.0.0.1", "{name}: {addr}");
        if name.contains("ai-eg-mcp-main-tools") {
            assert_eq!(addr["portValue"], 9856, "the extension server's proxy port");
        }
        addr["portValue"] = json!(port);
    }
    b["admin"] =
        json!({ "address": { "socketAddress": { "address": "127.0.0.1", "portValue": admin } } });
    b
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

async fn post_mcp(url: &str, body: &str, session: Option<&str>) -> reqwest::Response {
    let mut r = reqwest::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_owned());
    if let Some(s) = session {
        r = r.header("mcp-session-id", s);
    }
    r.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_sdk_mcp_session_through_envoy_and_the_injected_sidecar() {
    let Some(envoy_bin) = envoy() else { return };
    let python = PathBuf::from(std::env::var_os("AIGW_PYTHON").expect("AIGW_PYTHON"));
    let (alpha, beta) = (free_port(), free_port());
    let _a = mcp_backend(&python, "alpha", alpha, false);
    let b = mcp_backend(&python, "beta", beta, true);
    let dir = tempfile::tempdir().unwrap();

    // What the operator writes for the Gateway: the HTTPRoutes Envoy Gateway translated
    // into the fixture's xDS, and the ExtProc configuration Secret.
    let manifest = dir.path().join("manifests.yaml");
    std::fs::write(&manifest, manifests(alpha, beta)).unwrap();
    let m = Manifests::load(&[manifest]).unwrap();
    let rendered = render::render(&m, &render::Options::default()).unwrap();
    assert!(rendered.warnings.is_empty(), "{:?}", rendered.warnings);
    let mut routes: Vec<&str> = rendered
        .objects
        .iter()
        .filter(|o| o["kind"] == "HTTPRoute")
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    routes.sort_unstable();
    assert_eq!(
        routes,
        [
            "ai-eg-mcp-br-tools-alpha",
            "ai-eg-mcp-br-tools-beta",
            "ai-eg-mcp-main-tools"
        ],
        "the routes the fixture's xDS was translated from"
    );
    let part = rendered
        .objects
        .iter()
        .find(|o| {
            o["kind"] == "Secret" && o["metadata"]["labels"][bundle::GATEWAY_LABEL] == "default.gw"
        })
        .expect("the Gateway's ExtProc configuration Secret");
    // Mounted as the sidecar's projected volume mounts it.
    let config_dir = dir.path().join("config");
    std::fs::create_dir(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("part-000.yaml"),
        part["stringData"][bundle::PART_KEY].as_str().unwrap(),
    )
    .unwrap();

    // The sidecar the webhook injects, its seed from the MCP session Secret.
    let opts = SidecarOptions {
        mcp_session: McpSession {
            secret: Some("mcp-session".into()),
            iterations: Some(1000),
        },
        ..SidecarOptions::default()
    };
    let container = sidecar_container(&m, &opts);
    let mcp = free_port();
    let secret: (&str, &[(&str, &str)]) = ("mcp-session", &[("seed", SEED)]);
    let cli = sidecar_cli(&container, secret, &config_dir, mcp);
    assert!(cli.listen.starts_with("unix://"), "{}", cli.listen);
    start_mcp(&cli, cli.mcp_addr).await;

    let (listen, backend_listener, admin) = (free_port(), free_port(), free_port());
    let b_json = envoy_bootstrap(listen, mcp, backend_listener, [alpha, beta], admin);
    let mut envoy_child = start_envoy(&envoy_bin, &b_json, dir.path(), admin).await;
    let envoy_out = || envoy_output(dir.path());

    // The SDK client's whole session through Envoy's MCPRoute (one backend killed
    // mid-session: the other goes on).
    let url = format!("http://127.0.0.1:{listen}/mcp");
    let kill = b.0.id();
    let out = tokio::task::spawn_blocking({
        let (python, url) = (python.clone(), url.clone());
        move || {
            Command::new(&python)
                .arg(py_script("mcp_client.py"))
                .arg(url)
                .arg(kill.to_string())
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "client failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        envoy_out()
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["server"], "aigw", "{v}");
    let tools = v["tools"].as_array().unwrap();
    assert!(tools.contains(&json!("alpha__echo")), "{v}");
    assert!(tools.contains(&json!("beta__add")), "{v}");
    assert!(!tools.contains(&json!("alpha__secret_admin")), "{v}");
    assert_eq!(v["echo"], json!(["alpha: hi"]));
    assert_eq!(v["add"], json!(["5"]));
    assert_eq!(v["prompt"], json!(["beta greets ann"]));
    assert_eq!(
        v["read"],
        json!([["alpha+mem://alpha/info", "info of alpha"]])
    );
    assert_eq!(v["progress"].as_array().unwrap().len(), 3);
    assert_eq!(v["ask"], json!(["alpha heard: forty-two"]));
    assert_eq!(v["after_kill_alpha"], json!(["alpha: still here"]));
    assert_eq!(
        v["after_kill_meta"]["aigw/failedBackends"][0]["backend"],
        "beta"
    );

    // The session id the sidecar seals with the Secret's seed: another sidecar (a second
    // Envoy replica, or this one restarted) with the same Secret continues the session;
    // one with another seed does not know it.
    let init = post_mcp(&url, INITIALIZE, None).await;
    assert_eq!(init.status(), 200, "{}", envoy_out());
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let same = free_port();
    start_mcp(
        &sidecar_cli(&container, secret, &config_dir, same),
        ([127, 0, 0, 1], same).into(),
    )
    .await;
    let r = post_mcp(
        &format!("http://127.0.0.1:{same}/mcp"),
        list,
        Some(&session),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("alpha__echo"));
    let other = free_port();
    let other_secret: (&str, &[(&str, &str)]) = ("mcp-session", &[("seed", "another-seed")]);
    start_mcp(
        &sidecar_cli(&container, other_secret, &config_dir, other),
        ([127, 0, 0, 1], other).into(),
    )
    .await;
    let r = post_mcp(
        &format!("http://127.0.0.1:{other}/mcp"),
        list,
        Some(&session),
    )
    .await;
    assert_eq!(
        r.status(),
        400,
        "a session sealed with another seed is not opened"
    );
    assert!(r.text().await.unwrap().contains("invalid session ID"));

    // The per-backend routes the extension server moved to the backend listener reach
    // their server with the path rewritten (upstream's proxy topology).
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{backend_listener}/anything"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("x-ai-eg-mcp-backend", "alpha")
        .header("x-ai-eg-mcp-route", "default/tools")
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", envoy_out());
    assert!(r.text().await.unwrap().contains(r#""name":"alpha""#));
    let _ = envoy_child.start_kill();
}
