//! QuotaPolicy enforced by `aigw run`, driven through the official OpenAI Python SDK:
//! upstream's `backend_quota_ratelimit` e2e manifest (a per-model default bucket) and
//! a policy with per-tenant bucket rules and a shadow-mode rule, in process and with
//! two gateway processes sharing one quota in a real Redis.
//!
//! Needs the test venv (`AIGW_PYTHON`, set by `scripts/test.sh`) and `redis-server`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

use aigw_axum::simulator::{Simulator, SimulatorConfig};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tokio::net::TcpListener;

mod peers;
use peers::{Proc, external, free_addr, redis_server, wait_listening};

const BACKEND: &str = "envoy-ai-gateway-quota-ratelimit-testupstream";

/// Upstream's e2e manifest (route, backend, QuotaPolicy as written there; the Backend
/// points at the simulator), plus a second model with tenant bucket rules.
fn config(sim: SocketAddr) -> String {
    format!(
        r#"apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata:
  name: quota-test-model
  namespace: default
spec:
  rules:
    - matches:
        - headers:
            - type: Exact
              name: x-ai-eg-model
              value: quota-test-model
      backendRefs:
        - name: {BACKEND}
          modelNameOverride: quota-test-model
    - matches:
        - headers:
            - type: Exact
              name: x-ai-eg-model
              value: tenant-model
      backendRefs:
        - name: {BACKEND}
          modelNameOverride: tenant-model
  llmRequestCosts:
    - metadataKey: llm_input_token
      type: InputToken
    - metadataKey: llm_output_token
      type: OutputToken
    - metadataKey: llm_total_token
      type: TotalToken
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata:
  name: {BACKEND}
  namespace: default
spec:
  schema:
    name: OpenAI
  backendRef:
    name: {BACKEND}
    kind: Backend
    group: gateway.envoyproxy.io
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata:
  name: {BACKEND}
  namespace: default
spec:
  endpoints:
    - ip:
        address: 127.0.0.1
        port: {port}
---
apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: QuotaPolicy
metadata:
  name: envoy-ai-gateway-quota-ratelimit-policy
  namespace: default
spec:
  targetRefs:
    - group: aigateway.envoyproxy.io
      kind: AIServiceBackend
      name: {BACKEND}
  perModelQuotas:
    - modelName: "quota-test-model"
      quota:
        mode: Shared
        defaultBucket:
          # Allow 10 total tokens per hour per backend. Once consumed,
          # subsequent requests should be rate limited (429).
          limit: 10
          duration: "1h"
---
apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: QuotaPolicy
metadata:
  name: tenant-quotas
  namespace: default
spec:
  targetRefs:
    - group: aigateway.envoyproxy.io
      kind: AIServiceBackend
      name: {BACKEND}
  perModelQuotas:
    - modelName: tenant-model
      quota:
        costExpression: "input_tokens + output_tokens"
        bucketRules:
          - clientSelectors:
              - headers:
                  - name: x-tenant-id
                    type: Distinct
            quota:
              limit: 60
              duration: "1h"
          - clientSelectors:
              - headers:
                  - name: x-team
                    type: Exact
                    value: canary
            quota:
              limit: 1
              duration: "1h"
            shadowMode: true
"#,
        port = sim.port()
    )
}

async fn simulator() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Simulator::new(SimulatorConfig::default()).serve(listener, std::future::pending()),
    );
    addr
}

fn gateway(config: &Path, redis: Option<&str>) -> (Proc, String, SocketAddr) {
    gateway_with(config, redis, &[])
}

fn gateway_with(config: &Path, redis: Option<&str>, args: &[&str]) -> (Proc, String, SocketAddr) {
    let (listen, admin) = (free_addr(), free_addr());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aigw"));
    cmd.arg("run")
        .arg(config)
        .args(args)
        .args([
            "--listen",
            &listen.to_string(),
            "--admin",
            &admin.to_string(),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    if let Some(url) = redis {
        cmd.env("AIGW_REDIS_URL", url);
    }
    let p = Proc(cmd.spawn().unwrap());
    wait_listening(listen);
    (p, format!("http://{listen}"), admin)
}

fn sdk(python: &PathBuf, plan: &Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/quota_sdk.py");
    let out = Command::new(python)
        .arg(script)
        .arg(plan.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A budget spent to its end: the last admitted request found budget left (admission on
/// the budget already spent), and the refusal came as the SDK's `RateLimitError`.
fn assert_spent_to(r: &Value, limit: u64) {
    let (ok, spent) = (r["ok"].as_u64().unwrap(), r["spent"].as_u64().unwrap());
    assert!(ok >= 1 && spent >= limit, "{r}");
    let per = spent / ok;
    assert!((ok - 1) * per < limit, "admitted past the quota: {r}");
    let refused = &r["refused"];
    assert_eq!(refused["status"], 429, "{r}");
    assert_eq!(refused["code"], "rate_limit_exceeded", "{r}");
    assert!(refused["retry_after"].as_str().is_some(), "{r}");
}

fn metric(admin: SocketAddr, needle: &str) -> u64 {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(admin).unwrap();
    write!(
        c,
        "GET /metrics HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    s.lines()
        .find(|l| l.starts_with(needle))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_policy_through_the_openai_sdk() {
    let Some(py) = external("AIGW_PYTHON") else {
        return;
    };
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("quota.yaml");
    std::fs::write(&cfg, config(sim)).unwrap();
    let (_gw, url, admin) = gateway(&cfg, None);
    let case = |name: &str, model: &str, headers: Value, max: u64| json!({"name": name, "urls": [url], "model": model, "headers": headers, "max": max});
    let mut streamed = case("stream", "tenant-model", json!({"x-tenant-id": "c"}), 60);
    streamed["stream"] = json!(true);
    let r = sdk(
        &py,
        &json!({"cases": [
            case("e2e", "quota-test-model", json!({}), 60),
            case("tenant-a", "tenant-model", json!({"x-tenant-id": "a"}), 60),
            case("tenant-b", "tenant-model", json!({"x-tenant-id": "b"}), 1),
            case("canary", "tenant-model", json!({"x-team": "canary"}), 5),
            streamed,
        ]}),
    );
    // Upstream's e2e: 10 tokens per hour, the first answer uses them up.
    assert_spent_to(&r["e2e"], 10);
    // A tenant's bucket rule is enforced; another tenant has its own bucket.
    assert_spent_to(&r["tenant-a"], 60);
    assert_eq!(r["tenant-b"]["ok"], 1, "{r}");
    assert!(r["tenant-b"]["refused"].is_null(), "{r}");
    // Shadow mode counts but never refuses.
    assert_eq!(r["canary"]["ok"], 5, "{r}");
    assert!(r["canary"]["refused"].is_null(), "{r}");
    assert!(
        metric(
            admin,
            "aigw_ratelimit_decisions_total{decision=\"shadow_over_limit\"}"
        ) >= 4
    );
    // Streams are charged too: the gateway asks the upstream for usage even though
    // the client did not (and keeps it from the client, so the SDK sees none): the
    // same number of answers spends the same budget.
    assert_eq!(r["stream"]["ok"], r["tenant-a"]["ok"], "{r}");
    assert_eq!(r["stream"]["refused"]["status"], 429, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_one_quota_in_redis() {
    let Some(py) = external("AIGW_PYTHON") else {
        return;
    };
    let Some(redis) = redis_server() else {
        return;
    };
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("quota.yaml");
    std::fs::write(&cfg, config(sim)).unwrap();
    let (_a, one, _) = gateway(&cfg, Some(&redis.url));
    let (_b, two, _) = gateway(&cfg, Some(&redis.url));
    // Alternating between the instances spends one budget, not two. The charge of an
    // answer lands in Redis just after it; the pause keeps the next request behind it.
    let r = sdk(
        &py,
        &json!({"cases": [
            {"name": "shared", "urls": [one, two], "model": "tenant-model",
             "headers": {"x-tenant-id": "d"}, "pause": 0.1},
            {"name": "e2e", "urls": [two, one], "model": "quota-test-model", "pause": 0.1},
        ]}),
    );
    assert_spent_to(&r["shared"], 60);
    assert_spent_to(&r["e2e"], 10);
}

async fn tenant_request(url: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .header("x-tenant-id", "outage")
        .json(&json!({"model": "tenant-model", "messages": [{"role": "user", "content": "hi"}]}))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .unwrap()
}

/// Redis killed mid-run: a fail-closed gateway refuses quota'd requests with a 503 (and
/// counts the failures), a fail-open one lets them through, and a policy annotated
/// `closed` refuses on a gateway that fails open by default; all recover once Redis is
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_loss_fails_open_or_closed_and_recovers() {
    let Some(mut redis) = redis_server() else {
        return;
    };
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("quota.yaml");
    std::fs::write(&cfg, config(sim)).unwrap();
    let (listen, admin) = (free_addr(), free_addr());
    let _closed = Proc(
        Command::new(env!("CARGO_BIN_EXE_aigw"))
            .arg("run")
            .arg(&cfg)
            .args([
                "--listen",
                &listen.to_string(),
                "--admin",
                &admin.to_string(),
            ])
            .arg("--quota-fail-closed")
            .env("AIGW_REDIS_URL", &redis.url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(listen);
    let closed = format!("http://{listen}");
    let (_open, open, _) = gateway(&cfg, Some(&redis.url));
    // The same quota annotated `closed` on a gateway whose default is open, in reserve
    // mode: the policy's own failure mode wins.
    let annotated = dir.path().join("annotated.yaml");
    std::fs::write(
        &annotated,
        config(sim).replace(
            "  name: tenant-quotas\n",
            "  name: tenant-quotas\n  annotations:\n    aigw.run/limit-failure-mode: closed\n",
        ),
    )
    .unwrap();
    let (_by_policy, by_policy, policy_admin) = gateway_with(
        &annotated,
        Some(&redis.url),
        &["--limit-mode", "reserve", "--reserve-output-tokens", "8"],
    );
    assert_eq!(tenant_request(&closed).await.status(), 200);
    assert_eq!(tenant_request(&open).await.status(), 200);
    assert_eq!(tenant_request(&by_policy).await.status(), 200);

    redis.kill();
    let started = std::time::Instant::now();
    let r = tenant_request(&closed).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("quota store is unavailable"),
        "{body}"
    );
    assert_eq!(tenant_request(&open).await.status(), 200);
    assert_eq!(tenant_request(&by_policy).await.status(), 503);
    assert!(
        metric(
            policy_admin,
            "aigw_ratelimit_decisions_total{decision=\"store_error_refused\"}"
        ) >= 1
    );
    // Promptly: the store's call is bounded (50 ms), not the client's timeout.
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert!(
        metric(
            admin,
            "aigw_ratelimit_decisions_total{decision=\"store_error\"}"
        ) >= 1
    );

    // Redis returns: the fail-closed gateway serves again once it has reconnected.
    redis.restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if tenant_request(&closed).await.status() == 200
            && tenant_request(&by_policy).await.status() == 200
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never recovered");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
