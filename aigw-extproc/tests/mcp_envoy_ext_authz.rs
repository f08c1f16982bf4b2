//! An MCPRoute's gRPC `extAuth` behind Envoy 1.40: the bootstrap of `aigw-extproc
//! envoy-config --mcp-addr` routes the MCPRoute's path to the ExtProc's MCP listener,
//! which asks the route's `envoy.service.auth.v3.Authorization` service (a tonic server
//! over envoy-types' protobuf service) before serving; the official `mcp` Python SDK
//! client connects through Envoy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

#[path = "../../aigw-axum/tests/peers/authz_grpc.rs"]
mod authz_grpc;
mod common;

use authz_grpc::{http_of, start_authz};
use common::envoy::{Proc, envoy_binary, free_port, mcp_stack, py_script, wait_port};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn config(alpha: u16, authz: u16) -> String {
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
    - name: alpha
      group: gateway.envoyproxy.io
      kind: Backend
      forwardHeaders: [{{name: x-drop-me}}, {{name: x-keep}}]
  securityPolicy:
    extAuth:
      grpc:
        backendRefs: [{{name: authz, group: gateway.envoyproxy.io, kind: Backend}}]
      bodyToExtAuth: {{maxRequestBytes: 4096}}
      contextExtensions: [{{name: tenant, type: Value, value: acme}}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: alpha, namespace: default}}
spec:
  endpoints: [{{ip: {{address: 127.0.0.1, port: {alpha}}}}}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: authz, namespace: default}}
spec:
  endpoints: [{{ip: {{address: 127.0.0.1, port: {authz}}}}}]
"#
    )
}

async fn sdk_client(python: PathBuf, url: String, user: &'static str) -> Value {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(py_script("mcp_ext_authz_client.py"))
            .args([&url, user])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_ext_authz_through_envoy_and_the_mcp_listener() {
    let Some(envoy_bin) = envoy_binary() else {
        return;
    };
    let python = PathBuf::from(std::env::var_os("AIGW_PYTHON").expect("AIGW_PYTHON"));
    let alpha = free_port();
    let _alpha = Proc(
        Command::new(&python)
            .arg(py_script("mcp_backend.py"))
            .args(["alpha", &alpha.to_string(), "--headers"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(alpha);
    let (authz, authz_addr) = start_authz().await;

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mcp.yaml");
    std::fs::write(&cfg, config(alpha, authz_addr.port())).unwrap();
    let stack = mcp_stack(&envoy_bin, &cfg, dir.path()).await;
    let url = stack.url.clone();

    let ok = sdk_client(python.clone(), url.clone(), "alice").await;
    assert!(ok.get("error").is_none(), "{ok}");
    assert_eq!(ok["headers"]["x-authz-user"], "alice", "{ok}");
    assert_eq!(ok["headers"]["x-keep"], "1", "{ok}");
    assert!(ok["headers"].get("x-drop-me").is_none(), "{ok}");
    let checks = authz.seen.lock().unwrap().clone();
    let call = checks
        .iter()
        .map(http_of)
        .find(|h| h.body.contains("\"tools/call\""))
        .expect("the body reaches the service");
    // Without headersToExtAuth every header goes, Envoy's own among them.
    assert_eq!(
        call.headers.get("x-user").map(String::as_str),
        Some("alice")
    );
    assert!(
        call.headers.contains_key("x-request-id"),
        "{:?}",
        call.headers
    );
    let ext = &checks[0].attributes.as_ref().unwrap().context_extensions;
    assert_eq!(ext.get("tenant").map(String::as_str), Some("acme"));

    let denied = sdk_client(python, url.clone(), "mallory").await;
    assert!(denied.get("error").is_some(), "{denied}");
    assert_eq!(denied["statuses"], json!([401]), "{denied}");
    let resp = reqwest::Client::new()
        .post(&url)
        .header("x-user", "mallory")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Custom realm=\"authz\"");
    assert_eq!(resp.text().await.unwrap(), "who are you?");
}
