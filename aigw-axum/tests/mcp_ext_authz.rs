//! MCPRoute `securityPolicy.extAuth` with a gRPC authorization service, end to end
//! through `aigw run`: a tonic server implementing `envoy.service.auth.v3.Authorization`
//! (envoy-types' protobuf service) decides, an MCP server built with the official `mcp`
//! Python SDK serves, and the SDK's own client connects. Allow (with headers for the
//! backend and the client, and a header removed), deny with the service's status,
//! headers and body, the body forwarded up to `bodyToExtAuth.maxRequestBytes` (413
//! above), `headersToExtAuth`, `contextExtensions` (a value and a Secret key),
//! `includeRouteMetadata`, and fail-closed (`statusOnError`) / fail-open when the
//! service answers an error or is down.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "peers/authz_grpc.rs"]
mod authz_grpc;
#[path = "peers/mod.rs"]
mod peers;

use authz_grpc::{http_of, start_authz};
use peers::{Proc, free_addr, wait_listening};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const AIGW: &str = env!("CARGO_BIN_EXE_aigw");

/// The body cap of the route (`bodyToExtAuth.maxRequestBytes`).
const MAX_BODY: usize = 2048;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

fn config(alpha: SocketAddr, authz: SocketAddr, fail_open: bool, on_error: u16) -> String {
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
      headersToExtAuth: [x-user]
      bodyToExtAuth: {{maxRequestBytes: {MAX_BODY}}}
      contextExtensions:
        - {{name: tenant, type: Value, value: acme}}
        - name: token
          type: ValueRef
          valueRef: {{group: "", kind: Secret, name: authz-context, key: token}}
      includeRouteMetadata: true
      timeout: 2s
      failOpen: {fail_open}
      statusOnError: {on_error}
---
apiVersion: v1
kind: Secret
metadata: {{name: authz-context, namespace: default}}
stringData: {{token: s3cret}}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: alpha, namespace: default}}
spec:
  endpoints: [{{ip: {{address: 127.0.0.1, port: {}}}}}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: authz, namespace: default}}
spec:
  endpoints: [{{ip: {{address: 127.0.0.1, port: {}}}}}]
"#,
        alpha.port(),
        authz.port()
    )
}

fn start_aigw(dir: &std::path::Path, name: &str, cfg: &str) -> (Proc, SocketAddr) {
    let path = dir.join(name);
    std::fs::write(&path, cfg).unwrap();
    let listen = free_addr();
    let p = Proc(
        Command::new(AIGW)
            .args([
                "run",
                path.to_str().unwrap(),
                "--listen",
                &listen.to_string(),
            ])
            .args(["--admin", &free_addr().to_string()])
            .args([
                "--mcp-session-seed",
                "test-seed",
                "--mcp-session-iterations",
                "1000",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(listen);
    (p, listen)
}

/// The official SDK client as `user` (see `mcp_ext_authz_client.py`).
async fn sdk_client(python: PathBuf, url: String, user: &'static str) -> Value {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(python)
            .arg(script("mcp_ext_authz_client.py"))
            .args([&url, user])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    })
    .await
    .unwrap()
}

/// A raw POST of `body` as `user`: status, headers (lower-case) and body.
async fn post(addr: SocketAddr, user: &'static str, body: String) -> (u16, String, String) {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "POST /mcp HTTP/1.0\r\nHost: {addr}\r\ncontent-type: application/json\r\n\
             accept: application/json, text/event-stream\r\nx-user: {user}\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, head.to_lowercase(), body.to_string())
    })
    .await
    .unwrap()
}

fn initialize(pad: usize) -> String {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "probe", "version": "1"},
                   "_meta": {"pad": "x".repeat(pad)}}
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_ext_authz_through_aigw_run() {
    let Some(python) = peers::external("AIGW_PYTHON") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let alpha = free_addr();
    let _alpha = Proc(
        Command::new(&python)
            .arg(script("mcp_backend.py"))
            .args(["alpha", &alpha.port().to_string(), "--headers"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(alpha);
    let (authz, authz_addr) = start_authz().await;
    let (_gw, gw) = start_aigw(
        dir.path(),
        "closed.yaml",
        &config(alpha, authz_addr, false, 403),
    );
    let url = format!("http://{gw}/mcp");

    // Allowed: the SDK's whole session goes through; the service's header reaches the
    // backend in place of the one it removed.
    let ok = sdk_client(python.clone(), url.clone(), "alice").await;
    assert!(ok.get("error").is_none(), "{ok}");
    assert!(
        ok["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("alpha__headers")),
        "{ok}"
    );
    let seen = &ok["headers"];
    assert_eq!(seen["x-authz-user"], "alice", "{ok}");
    assert_eq!(seen["x-keep"], "1", "{ok}");
    assert!(
        seen.get("x-drop-me").is_none(),
        "removed by the service: {ok}"
    );
    assert!(seen.get("x-user").is_none(), "not a forwarded header: {ok}");

    let checks = authz.seen.lock().unwrap().clone();
    assert!(checks.len() >= 4, "one check per request: {}", checks.len());
    let call = checks
        .iter()
        .map(http_of)
        .find(|h| h.body.contains("\"tools/call\"") && h.body.contains("alpha__headers"))
        .expect("a tools/call check carries its body");
    assert_eq!(call.method, "POST");
    assert_eq!(call.path, "/mcp");
    assert_eq!(call.size, call.body.len() as i64);
    // `headersToExtAuth` names the only header sent.
    assert_eq!(
        call.headers.get("x-user").map(String::as_str),
        Some("alice")
    );
    assert!(!call.headers.contains_key("accept"), "{:?}", call.headers);
    let attrs = checks[0].attributes.as_ref().unwrap();
    assert_eq!(
        attrs.context_extensions.get("tenant").map(String::as_str),
        Some("acme")
    );
    assert_eq!(
        attrs.context_extensions.get("token").map(String::as_str),
        Some("s3cret")
    );
    assert!(attrs.source.is_some(), "the client's address");
    // `includeRouteMetadata`: Envoy Gateway's metadata of upstream's generated route.
    let eg = &attrs.metadata_context.as_ref().unwrap().filter_metadata["envoy-gateway"];
    let resources = format!("{:?}", eg.fields["resources"]);
    assert!(resources.contains("ai-eg-mcp-main-tools"), "{resources}");
    assert!(resources.contains("HTTPRoute"), "{resources}");

    // The service's response headers reach the client.
    let (status, head, _) = post(gw, "alice", initialize(0)).await;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("x-authz-decision: allow"), "{head}");

    // Denied: the service's status, headers and body; the SDK sees the refusal.
    let denied = sdk_client(python.clone(), url.clone(), "mallory").await;
    assert!(denied.get("error").is_some(), "{denied}");
    assert_eq!(denied["statuses"], json!([401]), "{denied}");
    let (status, head, body) = post(gw, "mallory", initialize(0)).await;
    assert_eq!(status, 401);
    assert!(
        head.contains("www-authenticate: custom realm=\"authz\""),
        "{head}"
    );
    assert_eq!(body, "who are you?");

    // The body goes to the service up to the cap; above it, 413 and no check.
    let before = authz.seen.lock().unwrap().len();
    let (status, _, _) = post(gw, "alice", initialize(MAX_BODY - 300)).await;
    assert_eq!(status, 200);
    let last = authz.seen.lock().unwrap().last().cloned().unwrap();
    assert!(http_of(&last).body.len() > MAX_BODY - 300);
    let (status, _, _) = post(gw, "alice", initialize(MAX_BODY)).await;
    assert_eq!(status, 413);
    assert_eq!(
        authz.seen.lock().unwrap().len(),
        before + 1,
        "no check above the cap"
    );

    // A gRPC error from the service: fail closed.
    let (status, _, _) = post(gw, "broken", initialize(0)).await;
    assert_eq!(status, 403);

    // The service down: fail closed (403) or, with failOpen, through without its
    // headers.
    let down = free_addr();
    let (_closed, closed) = start_aigw(
        dir.path(),
        "down-closed.yaml",
        &config(alpha, down, false, 503),
    );
    let (status, _, _) = post(closed, "alice", initialize(0)).await;
    assert_eq!(status, 503, "statusOnError");
    let (_open, open) = start_aigw(
        dir.path(),
        "down-open.yaml",
        &config(alpha, down, true, 403),
    );
    let through = sdk_client(python, format!("http://{open}/mcp"), "alice").await;
    assert!(through.get("error").is_none(), "{through}");
    assert!(
        through["headers"].get("x-authz-user").is_none(),
        "{through}"
    );
    assert_eq!(through["headers"]["x-drop-me"], "1", "{through}");
}
