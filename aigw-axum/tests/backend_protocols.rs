//! A Backend's `appProtocols` through the configuration path `aigw run` uses:
//! `gateway.envoyproxy.io/h2c` makes the gateway speak HTTP/2 with prior knowledge to an
//! upstream that speaks nothing else, concurrent requests sharing one connection; the
//! values the gateway cannot honour are reported, never silently dropped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "peers/h2c_mcp.rs"]
mod h2c_mcp;

use aigw_axum::Gateway;
use aigw_core::config::Config;
use bytes::Bytes;
use http_body_util::Full;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use h2c_mcp::Seen;

const COMPLETION: &str = r#"{"id":"c1","object":"chat.completion","created":1,"model":"up","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;

/// An OpenAI-compatible upstream that speaks only HTTP/2 over cleartext: an HTTP/1
/// request fails its connection preface.
async fn h2c_upstream() -> (SocketAddr, Arc<Seen>) {
    h2c_mcp::serve_with(|_req| async {
        // Hold each request a moment so concurrent ones overlap.
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok::<_, Infallible>(
            hyper::Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(COMPLETION.as_bytes())))
                .unwrap(),
        )
    })
    .await
}

fn config(port: u16, backend_extra: &str) -> String {
    format!(
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
        - name: up
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata:
  name: up
  namespace: default
spec:
  schema:
    name: OpenAI
  backendRef:
    name: up
    kind: Backend
    group: gateway.envoyproxy.io
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata:
  name: up
  namespace: default
spec:
  endpoints:
    - ip:
        address: 127.0.0.1
        port: {port}
{backend_extra}
"#
    )
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

async fn ask(client: &reqwest::Client, url: &str) -> (u16, String) {
    let r = client
        .post(url)
        .json(&serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn h2c_backends_get_http2_with_prior_knowledge_on_one_connection() {
    let (addr, seen) = h2c_upstream().await;
    let yaml = config(
        addr.port(),
        "  appProtocols:\n    - gateway.envoyproxy.io/h2c",
    );
    let c = Config::from_yaml_str(&yaml, "test.yaml").unwrap();
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    let url = gateway(&c).await;
    let client = reqwest::Client::new();
    // Warm: the first request opens the connection.
    let (status, body) = ask(&client, &url).await;
    assert_eq!(status, 200, "{body}");
    let answers = futures::future::join_all((0..8).map(|_| ask(&client, &url))).await;
    for (status, body) in answers {
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"content\":\"ok\""), "{body}");
    }
    assert_eq!(seen.http2_requests.load(Ordering::SeqCst), 9);
    assert_eq!(
        seen.connections.load(Ordering::SeqCst),
        1,
        "concurrent requests share the HTTP/2 connection"
    );
}

#[tokio::test]
async fn without_h2c_an_http2_only_upstream_is_not_reached() {
    let (addr, seen) = h2c_upstream().await;
    let c = Config::from_yaml_str(&config(addr.port(), ""), "test.yaml").unwrap();
    let url = gateway(&c).await;
    let (status, _) = ask(&reqwest::Client::new(), &url).await;
    assert!(status >= 500, "{status}");
    assert_eq!(seen.http2_requests.load(Ordering::SeqCst), 0);
}

#[test]
fn app_protocols_and_fallback_the_gateway_cannot_honour_are_reported() {
    let yaml = config(
        9,
        "  fallback: true\n  appProtocols:\n    - gateway.envoyproxy.io/h2c\n    - gateway.envoyproxy.io/ws",
    );
    let c = Config::from_yaml_str(&yaml, "test.yaml").unwrap();
    let w: Vec<String> = c
        .warnings()
        .iter()
        .map(|w| format!("{} {}: {}", w.document, w.field, w.message))
        .collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w.iter()
            .any(|m| m.contains("spec.appProtocols[1]") && m.contains("WebSocket")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|m| m.contains("spec.fallback") && m.contains("Backend default/up")),
        "{w:?}"
    );

    let bad = config(9, "  appProtocols:\n    - h3");
    let e = Config::from_yaml_str(&bad, "test.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("spec.appProtocols[0]") && e.contains("\"h3\""),
        "{e}"
    );
}

/// An MCPRoute's h2c Backend is spoken to in HTTP/2 with prior knowledge: the official
/// Rust MCP client lists and calls the tool of a server that speaks nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_backends_marked_h2c_are_spoken_to_in_http2() {
    use aigw_core::config::SecretSource;
    use aigw_core::mcp::{McpGateway, McpService, McpSettings, SessionCrypto};
    use rmcp::ServiceExt as _;
    use rmcp::transport::StreamableHttpClientTransport;

    let (addr, seen) = h2c_mcp::serve().await;
    let c = Config::from_yaml_str(&h2c_mcp::mcp_route(addr.port()), "mcp.yaml").unwrap();
    let upstream = Arc::new(aigw_axum::mcp::HyperUpstream::new(Default::default()).unwrap());
    let gateway = McpGateway::new(
        &c,
        &SecretSource::from_config(&c),
        SessionCrypto::random(),
        McpSettings::default(),
        upstream,
    )
    .unwrap();
    let app = axum::Router::new().route_service("/mcp", McpService::new(gateway));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });

    let client = ().serve(StreamableHttpClientTransport::from_uri(url)).await.unwrap();
    let tools: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(tools, ["h2__echo"]);
    let params = rmcp::model::CallToolRequestParams::new("h2__echo".to_string()).with_arguments(
        serde_json::json!({"text": "hi"})
            .as_object()
            .cloned()
            .unwrap(),
    );
    let r = serde_json::to_value(client.call_tool(params).await.unwrap()).unwrap();
    assert_eq!(r["content"][0]["text"], "h2: hi");
    client.cancel().await.unwrap();
    assert!(seen.http2_requests.load(Ordering::SeqCst) >= 3);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}
