//! BackendTrafficPolicy upstream protection through the configuration path `aigw run`
//! uses: passive outlier ejection, circuit breaking and active HTTP health checks, each
//! against a failing fake OpenAI upstream with a healthy fallback at the next priority.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aigw_axum::Gateway;
use aigw_core::config::Config;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A fake OpenAI server: chat answers with `chat_status` (an OpenAI error body unless
/// 200), after `delay`; `/healthz` answers `health_status`.
#[derive(Default)]
struct Fake {
    chat_status: AtomicU16,
    health_status: AtomicU16,
    chats: AtomicUsize,
    probes: AtomicUsize,
    delay_ms: AtomicUsize,
}

async fn chat(State(f): State<Arc<Fake>>) -> impl IntoResponse {
    f.chats.fetch_add(1, Ordering::SeqCst);
    let delay = f.delay_ms.load(Ordering::SeqCst) as u64;
    tokio::time::sleep(Duration::from_millis(delay)).await;
    let status = StatusCode::from_u16(f.chat_status.load(Ordering::SeqCst)).unwrap();
    let body = if status.is_success() {
        serde_json::json!({"id": "c1", "object": "chat.completion", "created": 1, "model": "up",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})
    } else {
        serde_json::json!({"error": {"message": "upstream is failing", "type": "server_error", "param": null, "code": null}})
    };
    (status, axum::Json(body))
}

async fn healthz(State(f): State<Arc<Fake>>) -> StatusCode {
    f.probes.fetch_add(1, Ordering::SeqCst);
    StatusCode::from_u16(f.health_status.load(Ordering::SeqCst)).unwrap()
}

async fn fake(chat_status: u16) -> (SocketAddr, Arc<Fake>) {
    let f = Arc::new(Fake::default());
    f.chat_status.store(chat_status, Ordering::SeqCst);
    f.health_status.store(200, Ordering::SeqCst);
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/healthz", get(healthz))
        .with_state(f.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (addr, f)
}

fn backend(name: &str, port: u16) -> String {
    format!(
        r#"---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata:
  name: {name}
  namespace: default
spec:
  schema:
    name: OpenAI
  backendRef:
    name: {name}
    kind: Backend
    group: gateway.envoyproxy.io
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata:
  name: {name}
  namespace: default
spec:
  endpoints:
    - ip:
        address: 127.0.0.1
        port: {port}
"#
    )
}

/// Route `m` → `primary` (priority 0), then `fallback` (priority 1), with `policy` as the
/// BackendTrafficPolicy spec (beside its targetRefs).
fn config(primary: u16, fallback: u16, policy: &str) -> Config {
    let c = config_unchecked(primary, fallback, policy);
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    c
}

fn config_unchecked(primary: u16, fallback: u16, policy: &str) -> Config {
    let yaml = format!(
        r#"apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata:
  name: r
  namespace: default
spec:
  rules:
    - matches:
        - headers:
            - type: Exact
              name: x-ai-eg-model
              value: m
      backendRefs:
        - name: primary
          priority: 0
        - name: fallback
          priority: 1
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata:
  name: protect
  namespace: default
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: HTTPRoute
      name: r
{policy}
{}{}"#,
        backend("primary", primary),
        backend("fallback", fallback)
    );
    Config::from_yaml_str(&yaml, "test.yaml").unwrap()
}

async fn gateway(config: &Config) -> String {
    let snapshot = aigw_axum::config::snapshot(
        config,
        Arc::new(aigw_providers::ProviderFactory),
        &aigw_axum::credentials::default_resolver(),
    )
    .unwrap();
    let gw = Gateway::builder(snapshot).build().unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let app = gw.router();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}/v1/chat/completions")
}

async fn ask(url: &str) -> u16 {
    reqwest::Client::new()
        .post(url)
        .json(&serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_backend_that_keeps_failing_is_ejected_and_traffic_goes_to_the_next_priority() {
    let (a, primary) = fake(503).await;
    let (b, fallback) = fake(200).await;
    let policy = r"  healthCheck:
    passive:
      consecutive5XxErrors: 2
      baseEjectionTime: 600ms
      maxEjectionPercent: 100
  retry:
    numRetries: 1
    retryOn:
      triggers: [retriable-status-codes]
      httpStatusCodes: [503]";
    let url = gateway(&config(a.port(), b.port(), policy)).await;
    // Each request fails on the primary, then succeeds on the fallback.
    assert_eq!(ask(&url).await, 200);
    assert_eq!(ask(&url).await, 200);
    assert_eq!(primary.chats.load(Ordering::SeqCst), 2);
    // Two consecutive 5xx: ejected. The next requests skip it entirely.
    for _ in 0..5 {
        assert_eq!(ask(&url).await, 200);
    }
    assert_eq!(
        primary.chats.load(Ordering::SeqCst),
        2,
        "ejected backend was tried"
    );
    assert_eq!(fallback.chats.load(Ordering::SeqCst), 7);
    // After the ejection time it is tried again, and a success keeps it in.
    primary.chat_status.store(200, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(ask(&url).await, 200);
    assert_eq!(primary.chats.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn requests_beyond_the_circuit_breaker_go_to_the_next_backend_at_once() {
    let (a, primary) = fake(200).await;
    let (b, fallback) = fake(200).await;
    primary.delay_ms.store(800, Ordering::SeqCst);
    let policy = r"  circuitBreaker:
    maxParallelRequests: 1
    maxPendingRequests: 0
    maxConnections: 1";
    let url = gateway(&config(a.port(), b.port(), policy)).await;
    let slow = tokio::spawn({
        let url = url.clone();
        async move { ask(&url).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    assert_eq!(ask(&url).await, 200);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "the overflow waited for the busy backend: {:?}",
        started.elapsed()
    );
    assert_eq!(fallback.chats.load(Ordering::SeqCst), 1);
    assert_eq!(slow.await.unwrap(), 200);
    assert_eq!(primary.chats.load(Ordering::SeqCst), 1);
    // Its place is free again.
    primary.delay_ms.store(0, Ordering::SeqCst);
    assert_eq!(ask(&url).await, 200);
    assert_eq!(primary.chats.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_backend_failing_its_active_checks_is_skipped_until_it_passes() {
    let (a, primary) = fake(200).await;
    let (b, fallback) = fake(200).await;
    primary.health_status.store(503, Ordering::SeqCst);
    let policy = r"  healthCheck:
    active:
      type: HTTP
      interval: 100ms
      timeout: 500ms
      unhealthyThreshold: 2
      healthyThreshold: 1
      http:
        path: /healthz
        expectedStatuses: [200]";
    let url = gateway(&config(a.port(), b.port(), policy)).await;
    let start = Instant::now();
    while primary.probes.load(Ordering::SeqCst) < 3 {
        assert!(start.elapsed() < Duration::from_secs(5), "no active checks");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..3 {
        assert_eq!(ask(&url).await, 200);
    }
    assert_eq!(
        primary.chats.load(Ordering::SeqCst),
        0,
        "unhealthy backend used"
    );
    assert_eq!(fallback.chats.load(Ordering::SeqCst), 3);
    assert!(fallback.probes.load(Ordering::SeqCst) > 0);
    primary.health_status.store(200, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ask(&url).await, 200);
    assert_eq!(primary.chats.load(Ordering::SeqCst), 1, "healthy again");
}

#[test]
fn unapplied_settings_are_reported_by_name() {
    let c = config_unchecked(
        1,
        2,
        r"  circuitBreaker:
    maxParallelRetries: 3
  healthCheck:
    active:
      type: TCP
      tcp: {}",
    );
    let w: Vec<String> = c.warnings().iter().map(ToString::to_string).collect();
    let w = w.join("\n");
    assert!(w.contains("circuitBreaker.maxParallelRetries"), "{w}");
    assert!(w.contains("healthCheck.active (type TCP"), "{w}");
    assert!(w.contains("healthCheck.active.tcp"), "{w}");
}
