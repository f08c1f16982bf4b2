//! aigw-extproc as upstream's ExtProc image serving MCP: started with upstream's flags
//! (`-configPath`, `-mcpAddr`, `-mcpSessionEncryptionSeed`, …) and a filter
//! configuration whose `mcpConfig` the upstream controller would write, behind a real
//! Envoy 1.40 wired as upstream's extension server wires it: the front listener routes
//! `/mcp` to the MCP proxy with `x-ai-eg-mcp-route`; the MCP backend listener routes
//! each backend request by `x-ai-eg-mcp-backend` to its server, rewriting the path.
//! Two MCP servers built with the official `mcp` Python SDK, driven by the SDK's client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod common;

use common::envoy::{
    Envoy, Proc, envoy_binary, free_port, mcp_backend, run_mcp_client, wait_http_ok, wait_port,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What upstream's controller writes for an MCPRoute `default/tools` with two backends.
fn filter_config(backend_listener: u16) -> String {
    format!(
        r#"version: v1.1.0
uuid: mcp-test
mcpConfig:
  backendListenerAddr: http://127.0.0.1:{backend_listener}
  routes:
    - name: default/tools
      backends:
        - name: alpha
          toolSelector: {{exclude: [secret_admin]}}
        - name: beta
      backendSelector:
        defaultAction: Deny
        rules:
          - action: Allow
            cel: '!("x-deny-backend" in request.headers) || (request.headers["x-deny-backend"] != request.mcp.backend && request.headers["x-deny-backend"] != "all")'
"#
    )
}

fn backend_route(name: &str) -> String {
    format!(
        r#"
                      - match:
                          prefix: /
                          headers: [{{name: x-ai-eg-mcp-backend, string_match: {{exact: {name}}}}}]
                        route: {{cluster: {name}, prefix_rewrite: /mcp, timeout: 0s}}"#
    )
}

fn cluster(name: &str, port: u16) -> String {
    format!(
        r#"
    - name: {name}
      connect_timeout: 1s
      type: STATIC
      load_assignment:
        cluster_name: {name}
        endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}}}}}]}}]"#
    )
}

fn envoy_yaml(
    admin: u16,
    front: u16,
    backend: u16,
    mcp: u16,
    ports: [u16; 2],
    log: &Path,
) -> String {
    let hcm = |name: &str, routes: String, log: Option<&Path>| {
        let access_log = log.map_or(String::new(), |p| {
            format!(
                r#"
                access_log:
                  - name: envoy.access_loggers.file
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
                      path: {}
                      log_format:
                        json_format:
                          backend: "%REQ(x-ai-eg-mcp-backend)%"
                          route: "%REQ(x-ai-eg-mcp-route)%"
                          method: "%REQ(x-ai-eg-mcp-metadata-method)%"
                          tool: "%REQ(x-ai-eg-mcp-metadata-tool-name)%"
                          path: "%REQ(:path)%""#,
                p.display()
            )
        });
        format!(
            r#"
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: {name}
                stream_idle_timeout: 0s{access_log}
                route_config:
                  virtual_hosts:
                    - name: {name}
                      domains: ["*"]
                      routes:{routes}
                http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"#
        )
    };
    let front_routes = r#"
                      - match: {prefix: /mcp}
                        request_headers_to_add:
                          - header: {key: x-ai-eg-mcp-route, value: default/tools}
                            append_action: OVERWRITE_IF_EXISTS_OR_ADD
                        route: {cluster: mcp_proxy, timeout: 0s}"#
        .to_string();
    let backend_routes = backend_route("alpha") + &backend_route("beta");
    format!(
        r#"admin:
  address:
    socket_address: {{address: 127.0.0.1, port_value: {admin}}}
static_resources:
  listeners:
    - name: front
      address:
        socket_address: {{address: 127.0.0.1, port_value: {front}}}{front_hcm}
    - name: mcp_backend_listener
      address:
        socket_address: {{address: 127.0.0.1, port_value: {backend}}}{backend_hcm}
  clusters:{c_mcp}{c_alpha}{c_beta}
"#,
        front_hcm = hcm("front", front_routes, None),
        backend_hcm = hcm("mcp_backend", backend_routes, Some(log)),
        c_mcp = cluster("mcp_proxy", mcp),
        c_alpha = cluster("alpha", ports[0]),
        c_beta = cluster("beta", ports[1]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_flags_serve_mcp_config_through_envoys_backend_listener() {
    let Some(envoy_bin) = envoy_binary() else {
        return;
    };
    let python = PathBuf::from(std::env::var_os("AIGW_PYTHON").expect("AIGW_PYTHON"));
    let (alpha, beta) = (free_port(), free_port());
    let _a = mcp_backend(&python, "alpha", alpha, false);
    let b = mcp_backend(&python, "beta", beta, true);

    let dir = tempfile::tempdir().unwrap();
    let (admin, mcp, front, backend, envoy_admin) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let cfg = dir.path().join("filter-config.yaml");
    std::fs::write(&cfg, filter_config(backend)).unwrap();
    let log = dir.path().join("backend-listener.log");
    let bootstrap = dir.path().join("envoy.yaml");
    std::fs::write(
        &bootstrap,
        envoy_yaml(envoy_admin, front, backend, mcp, [alpha, beta], &log),
    )
    .unwrap();
    let sock = dir.path().join("run.sock");
    let _extproc = Proc(
        Command::new(env!("CARGO_BIN_EXE_aigw-extproc"))
            .arg("-configPath")
            .arg(&cfg)
            .arg(format!("-extProcAddr=unix://{}", sock.display()))
            .args(["-adminPort", &admin.to_string()])
            .args(["-mcpAddr", &format!("127.0.0.1:{mcp}")])
            .args(["-mcpSessionEncryptionSeed", "upstream-flags-seed"])
            .arg("-mcpSessionEncryptionIterations=1000")
            .args(["-mcpWriteTimeout", "120s"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_http_ok(&format!("http://127.0.0.1:{admin}/health")).await;
    wait_port(mcp);
    let _envoy = Envoy::start(&envoy_bin, &bootstrap, dir.path(), envoy_admin).await;

    // Without the route header (not through Envoy's route), nothing is served.
    let direct = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{mcp}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 404);
    // The backend selector (CEL over the request) can leave every backend out: 403.
    let denied = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{front}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("x-deny-backend", "all")
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);

    let url = format!("http://127.0.0.1:{front}/mcp");
    let v = run_mcp_client(python, url, b.0.id()).await;
    assert!(v["tools"].as_array().unwrap().contains(&json!("beta__add")));
    assert!(
        !v["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("alpha__secret_admin"))
    );
    assert_eq!(v["echo"], json!(["alpha: hi"]));
    assert_eq!(v["add"], json!(["5"]));
    assert_eq!(v["prompt"], json!(["beta greets ann"]));
    assert_eq!(v["progress"].as_array().unwrap().len(), 3);
    assert_eq!(v["ask"], json!(["alpha heard: forty-two"]));
    assert_eq!(v["after_kill_alpha"], json!(["alpha: still here"]));

    // Every backend request went through Envoy's MCP backend listener, named by the
    // headers upstream's proxy sets, with its access-log metadata.
    let start = Instant::now();
    let lines: Vec<Value> = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if lines.iter().any(|l| l["tool"] == "add") || start.elapsed() > Duration::from_secs(10) {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        lines.iter().all(|l| l["route"] == "default/tools"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["backend"] == "alpha" && l["method"] == "initialize")
    );
    assert!(
        lines
            .iter()
            .any(|l| l["backend"] == "beta" && l["method"] == "tools/call" && l["tool"] == "add"),
        "{lines:?}"
    );
}
