//! The keys and spend admin API on `aigw-extproc`'s admin listener, behind
//! `--admin-token`: the same calls `aigw run` serves (`aigw_core::admin`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::envoy::free_port;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "extproc-admin-token";

const CONFIG: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: c
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata: {name: chat, namespace: default}
spec:
  parentRefs: [{name: gw, kind: Gateway, group: gateway.networking.k8s.io}]
  rules:
    - backendRefs: [{name: openai}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata: {name: openai, namespace: default}
spec:
  schema: {name: OpenAI}
  backendRef: {name: sim, kind: Backend, group: gateway.envoyproxy.io}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: sim, namespace: default}
spec:
  endpoints: [{ip: {address: 127.0.0.1, port: 9}}]
"#;

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `aigw-extproc` with virtual keys in a file, prices and budgets, and `token`.
async fn start(dir: &Path, token: Option<&str>) -> (Proc, String) {
    let admin = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aigw-extproc"));
    cmd.arg("--config")
        .arg(dir.join("gateway.yaml"))
        .arg("--listen")
        .arg(format!(
            "unix://{}",
            dir.join(format!("{admin}.sock")).display()
        ))
        .args(["--admin", &format!("127.0.0.1:{admin}")])
        .arg("--virtual-keys")
        .arg("--virtual-keys-file")
        .arg(dir.join("keys.json"))
        .arg("--pricing-file")
        .arg(dir.join("prices.yaml"))
        .arg("--budgets-file")
        .arg(dir.join("budgets.yaml"))
        .env_remove("AIGW_REDIS_URL")
        .env_remove("AIGW_ADMIN_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(t) = token {
        cmd.env("AIGW_ADMIN_TOKEN", t);
    }
    let p = Proc(cmd.spawn().unwrap());
    let url = format!("http://127.0.0.1:{admin}");
    let started = Instant::now();
    while !reqwest::get(format!("{url}/health"))
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(started.elapsed() < Duration::from_secs(20), "never healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (p, url)
}

async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = reqwest::Client::new().request(method, url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extproc_serves_the_keys_and_spend_admin_api_behind_its_token() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.yaml"), CONFIG).unwrap();
    std::fs::write(
        dir.path().join("prices.yaml"),
        "prices: [{model: gpt-4o-mini, input: \"1\", output: \"2\"}]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("budgets.yaml"),
        "budgets: [{name: chat-daily, route: default/chat, limit_usd: \"5\", period: day}]\n",
    )
    .unwrap();
    let (_p, admin) = start(dir.path(), Some(TOKEN)).await;
    use reqwest::Method;

    // The allocator's figures, open like `/metrics` (the binary allocates with jemalloc).
    let (s, memory) = call(Method::GET, &format!("{admin}/memory"), None, None).await;
    assert_eq!(s, 200, "{memory}");
    let field = |k: &str| memory[k].as_u64().unwrap_or(0);
    assert!(
        field("allocated") > 0 && field("allocated") <= field("active"),
        "{memory}"
    );

    // Without the token, or with a wrong one: 401, for every call.
    for path in ["/admin/keys", "/admin/usage", "/admin/budgets"] {
        let (s, _) = call(Method::GET, &format!("{admin}{path}"), None, None).await;
        assert_eq!(s, 401, "{path}");
        let (s, _) = call(Method::GET, &format!("{admin}{path}"), Some("wrong"), None).await;
        assert_eq!(s, 401, "{path}");
    }

    // Issue, list, rotate, revoke.
    let (s, created) = call(
        Method::POST,
        &format!("{admin}/admin/keys"),
        Some(TOKEN),
        Some(json!({"name": "ci", "team": "platform", "rpm": 10})),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-aigw-"), "{created}");
    let (s, list) = call(
        Method::GET,
        &format!("{admin}/admin/keys"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(list["keys"][0]["id"], id.as_str(), "{list}");
    assert_eq!(list["keys"][0]["team"], "platform", "{list}");
    assert_eq!(list["keys"][0]["status"], "active", "{list}");
    let secret = key.rsplit('-').next().unwrap();
    assert!(
        !list.to_string().contains(secret),
        "a listing never holds a secret"
    );
    let stored = std::fs::read_to_string(dir.path().join("keys.json")).unwrap();
    assert!(!stored.contains(secret), "the store holds hashes only");
    let (s, rotated) = call(
        Method::POST,
        &format!("{admin}/admin/keys/{id}/rotate"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_ne!(rotated["key"], key.as_str());
    let (s, revoked) = call(
        Method::DELETE,
        &format!("{admin}/admin/keys/{id}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(revoked["status"], "revoked", "{revoked}");
    let (s, _) = call(
        Method::GET,
        &format!("{admin}/admin/keys/nope"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = call(
        Method::PUT,
        &format!("{admin}/admin/keys"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, 405);

    // Spend: the route budget and an (empty) usage report.
    let (s, budgets) = call(
        Method::GET,
        &format!("{admin}/admin/budgets"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(budgets["budgets"][0]["name"], "chat-daily", "{budgets}");
    assert_eq!(
        budgets["budgets"][0]["remaining_usd"], "5.000000",
        "{budgets}"
    );
    let (s, usage) = call(
        Method::GET,
        &format!("{admin}/admin/usage?group_by=key%2Cmodel&from=2026-01-01T00%3A00%3A00Z"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, 400, "a range longer than 93 days is refused: {usage}");
    let (s, usage) = call(
        Method::GET,
        &format!("{admin}/admin/usage?group_by=key%2Cmodel"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, 200, "{usage}");
    assert_eq!(usage["group_by"], "key,model", "{usage}");

    // Without a configured token the API is refused outright.
    let (_q, bare) = start(dir.path(), None).await;
    let (s, _) = call(
        Method::GET,
        &format!("{bare}/admin/keys"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, 403);
}
