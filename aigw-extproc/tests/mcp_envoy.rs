//! The MCP gateway behind Envoy 1.40: the bootstrap `aigw-extproc envoy-config
//! --mcp-addr` prints routes the MCPRoute's path to `aigw-extproc`'s MCP listener; two
//! MCP servers built with the official `mcp` Python SDK behind it, driven by the SDK's
//! own client (the scripts `aigw run`'s test uses).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod common;

use common::envoy::{envoy_binary, free_port, mcp_backend, mcp_stack, run_mcp_client};
use serde_json::json;
use std::path::PathBuf;

fn config(alpha: u16, beta: u16) -> String {
    format!(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: aigw
  listeners: [{{name: http, protocol: HTTP, port: 1975}}]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_client_through_envoy_and_the_mcp_listener() {
    let Some(envoy_bin) = envoy_binary() else {
        return;
    };
    let python = PathBuf::from(std::env::var_os("AIGW_PYTHON").expect("AIGW_PYTHON"));
    let (alpha, beta) = (free_port(), free_port());
    let _a = mcp_backend(&python, "alpha", alpha, false);
    let b = mcp_backend(&python, "beta", beta, true);

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mcp.yaml");
    std::fs::write(&cfg, config(alpha, beta)).unwrap();
    let stack = mcp_stack(&envoy_bin, &cfg, dir.path()).await;
    let url = stack.url.clone();
    let v = run_mcp_client(python, url, b.0.id()).await;
    assert_eq!(v["server"], "aigw");
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
}

#[path = "../../aigw-axum/tests/peers/h2c_mcp.rs"]
mod h2c_mcp;

/// The MCP listener's client speaks HTTP/2 with prior knowledge to a Backend marked
/// `appProtocols: [gateway.envoyproxy.io/h2c]`, which here answers nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_backends_marked_h2c_are_spoken_to_in_http2() {
    use aigw_core::config::{Config, SecretSource};
    use aigw_core::mcp::{McpGateway, McpService, McpSettings, SessionCrypto};
    use http_body_util::{BodyExt as _, Full};
    use std::sync::atomic::Ordering;
    use tower::ServiceExt as _;

    let (addr, seen) = h2c_mcp::serve().await;
    let yaml = h2c_mcp::mcp_route(addr.port());
    let c = Config::from_yaml_str(&yaml, "mcp.yaml").unwrap();
    let upstream = std::sync::Arc::new(aigw_extproc::mcp::DirectUpstream::new().unwrap());
    let svc = McpService::new(
        McpGateway::new(
            &c,
            &SecretSource::from_config(&c),
            SessionCrypto::random(),
            McpSettings::default(),
            upstream,
        )
        .unwrap(),
    );
    let post = |session: Option<String>, body: serde_json::Value| {
        let mut r = http::Request::post("/mcp")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(s) = session {
            r = r.header("mcp-session-id", s);
        }
        r.body(Full::new(bytes::Bytes::from(body.to_string())))
            .unwrap()
    };
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let r = svc.clone().oneshot(post(None, init)).await.unwrap();
    assert_eq!(r.status(), 200);
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let r = svc.oneshot(post(Some(session), list)).await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("\"h2__echo\""), "{body}");
    assert!(seen.http2_requests.load(Ordering::SeqCst) >= 2);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}
