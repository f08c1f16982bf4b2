//! MCP calls count against a virtual key's requests per minute, through `aigw run`:
//! each JSON-RPC message a client POSTs to an MCPRoute is one request of its key, as
//! an LLM request is, and the key's LLM and MCP requests share one window.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "peers/mod.rs"]
mod peers;

use peers::{Proc, free_addr, wait_listening};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ADMIN_TOKEN: &str = "mcp-admin-token";

fn backend(python: &PathBuf, name: &str, addr: SocketAddr) -> Proc {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/mcp_backend.py");
    let p = Proc(
        Command::new(python)
            .arg(script)
            .arg(name)
            .arg(addr.port().to_string())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(addr);
    p
}

fn config(alpha: SocketAddr, sim: SocketAddr) -> String {
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
    - {{name: alpha, group: gateway.envoyproxy.io, kind: Backend}}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: alpha, namespace: default}}
spec:
  endpoints: [{{ip: {{address: 127.0.0.1, port: {}}}}}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata: {{name: llm, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
    - backendRefs: [{{name: sim}}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata: {{name: sim, namespace: default}}
spec:
  schema: {{name: OpenAI}}
  backendRef: {{name: sim-backend, kind: Backend, group: gateway.envoyproxy.io}}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: sim-backend, namespace: default}}
spec:
  endpoints: [{{ip: {{address: 127.0.0.1, port: {}}}}}]
"#,
        alpha.port(),
        sim.port()
    )
}

async fn simulator() -> SocketAddr {
    use aigw_axum::simulator::{Simulator, SimulatorConfig};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Simulator::new(SimulatorConfig::default()).serve(listener, std::future::pending()),
    );
    addr
}

/// An MCP `initialize` POSTed with `key`: the response's status.
async fn initialize(url: &str, key: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{url}/mcp"))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "probe", "version": "1"}}
        }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn chat(url: &str, key: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "gpt-sim", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_calls_count_against_a_virtual_keys_requests_per_minute() {
    let Some(python) = peers::external("AIGW_PYTHON") else {
        return;
    };
    let alpha = free_addr();
    let _alpha = backend(&python, "alpha", alpha);
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gw.yaml");
    std::fs::write(&cfg, config(alpha, sim)).unwrap();
    let (listen, admin) = (free_addr(), free_addr());
    let _gw = Proc(
        Command::new(env!("CARGO_BIN_EXE_aigw"))
            .arg("run")
            .arg(&cfg)
            .args([
                "--listen",
                &listen.to_string(),
                "--admin",
                &admin.to_string(),
            ])
            .args(["--virtual-keys", "--admin-token", ADMIN_TOKEN])
            .arg("--virtual-keys-file")
            .arg(dir.path().join("keys.json"))
            .args([
                "--mcp-session-seed",
                "test-seed",
                "--mcp-session-iterations",
                "1000",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(listen);
    wait_listening(admin);
    let url = format!("http://{listen}");
    // The five requests below must fall in one minute.
    let second = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if second > 45 {
        tokio::time::sleep(Duration::from_secs(61 - second)).await;
    }
    let created: Value = reqwest::Client::new()
        .post(format!("http://{admin}/admin/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "agent", "rpm": 4}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(initialize(&url, &key).await, 200);
    }
    // The key's LLM requests share the window.
    assert_eq!(chat(&url, &key).await, 200);
    assert_eq!(
        initialize(&url, &key).await,
        429,
        "the fifth request in a minute"
    );
    assert_eq!(chat(&url, &key).await, 429);
    // Another key has its own window.
    let other: Value = reqwest::Client::new()
        .post(format!("http://{admin}/admin/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "other", "rpm": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other = other["key"].as_str().unwrap().to_owned();
    assert_eq!(initialize(&url, &other).await, 200);
    assert_eq!(initialize(&url, &other).await, 429);
}
