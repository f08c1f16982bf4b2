//! The MCP gateway's Streamable HTTP semantics against scripted backends (an in-process
//! `McpUpstream` that answers like an MCP server and records what it was sent).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aigw_core::config::{Config, SecretSource};
use aigw_core::mcp::{
    McpBackend, McpGateway, McpService, McpSettings, McpUpstream, SessionCrypto, UpstreamBody,
    UpstreamError,
};
use bytes::Bytes;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt as _;

type Handler = dyn Fn(&str, &Request<Bytes>) -> http::Response<UpstreamBody> + Send + Sync;

/// What a backend was sent.
#[derive(Debug, Clone)]
struct Sent {
    backend: String,
    method: Method,
    uri: String,
    headers: HeaderMap,
    body: Value,
}

struct Fake {
    handler: Box<Handler>,
    sent: Mutex<Vec<Sent>>,
}

impl std::fmt::Debug for Fake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fake")
    }
}

impl McpUpstream for Fake {
    fn send(
        &self,
        backend: &McpBackend,
        request: Request<Bytes>,
    ) -> BoxFuture<'static, Result<http::Response<UpstreamBody>, UpstreamError>> {
        self.sent.lock().unwrap().push(Sent {
            backend: backend.name().to_string(),
            method: request.method().clone(),
            uri: request.uri().to_string(),
            headers: request.headers().clone(),
            body: serde_json::from_slice(request.body()).unwrap_or(Value::Null),
        });
        if backend.name() == "down" {
            return Box::pin(async { Err(UpstreamError("connection refused".into())) });
        }
        let resp = (self.handler)(backend.name(), &request);
        Box::pin(async move { Ok(resp) })
    }

    /// The `guarded` route's issuer publishes RFC 8414 metadata only at the location
    /// after its path (the third one upstream tries), and its keys at `jwks_uri`.
    fn fetch(&self, url: &str) -> BoxFuture<'static, Result<Bytes, UpstreamError>> {
        self.sent.lock().unwrap().push(Sent {
            backend: "(fetch)".into(),
            method: Method::GET,
            uri: url.to_string(),
            headers: HeaderMap::new(),
            body: Value::Null,
        });
        let body = match url {
            "https://idp2.example/realm/.well-known/oauth-authorization-server" => Ok(json!({
                "issuer": "https://idp2.example/realm",
                "authorization_endpoint": "https://idp2.example/realm/authorize",
                "token_endpoint": "https://idp2.example/realm/token",
                "jwks_uri": "https://idp2.example/realm/keys"
            })
            .to_string()),
            "https://idp2.example/realm/keys" => Ok(JWKS.to_string()),
            _ => Err(UpstreamError("404 Not Found".into())),
        };
        Box::pin(async move { body.map(Bytes::from) })
    }
}

const JWKS: &str = r#"{"keys":[{"kty":"oct","kid":"k1","alg":"HS256","k":"c2VjcmV0LXNpZ25pbmcta2V5LWZvci10ZXN0cy0wMTIz"}]}"#;

fn json_resp(v: Value, session: Option<&str>) -> http::Response<UpstreamBody> {
    let mut b = http::Response::builder().header("content-type", "application/json");
    if let Some(s) = session {
        b = b.header("mcp-session-id", s);
    }
    b.body(futures::stream::iter([Ok(Bytes::from(v.to_string()))]).boxed())
        .unwrap()
}

fn sse_resp(events: Vec<(Option<&str>, Value)>) -> http::Response<UpstreamBody> {
    let chunks: Vec<Result<Bytes, UpstreamError>> = events
        .into_iter()
        .map(|(id, v)| {
            let id = id.map(|i| format!("id: {i}\n")).unwrap_or_default();
            Ok(Bytes::from(format!("event: message\n{id}data: {v}\n\n")))
        })
        .collect();
    http::Response::builder()
        .header("content-type", "text/event-stream")
        .body(futures::stream::iter(chunks).boxed())
        .unwrap()
}

fn status(s: u16) -> http::Response<UpstreamBody> {
    http::Response::builder()
        .status(s)
        .body(futures::stream::empty().boxed())
        .unwrap()
}

/// A well-behaved MCP server: tools on every backend, pages of one tool each on "a".
fn server(backend: &str, req: &Request<Bytes>) -> http::Response<UpstreamBody> {
    if backend == "authz" {
        // An HTTP authorization service: `Bearer good` passes and names the user.
        let ok = req
            .headers()
            .get("authorization")
            .is_some_and(|v| v == "Bearer good");
        let mut r = http::Response::builder();
        r = if ok {
            r.status(200).header("x-user", "alice")
        } else {
            r.status(403).header("content-type", "application/json")
        };
        let body = if ok { "" } else { r#"{"denied":true}"# };
        return r
            .body(futures::stream::iter([Ok(Bytes::from(body))]).boxed())
            .unwrap();
    }
    if req.method() == Method::GET {
        return sse_resp(vec![
            (
                Some("e1"),
                json!({"jsonrpc":"2.0","method":"notifications/tools/list_changed"}),
            ),
            (
                Some("e2"),
                json!({"jsonrpc":"2.0","id":9,"method":"roots/list"}),
            ),
        ]);
    }
    if req.method() == Method::DELETE {
        return status(200);
    }
    let m: Value = serde_json::from_slice(req.body()).unwrap();
    let id = m["id"].clone();
    match m["method"].as_str().unwrap_or("") {
        "initialize" => json_resp(
            json!({"jsonrpc":"2.0","id":id,"result":{"protocolVersion":"2025-06-18","serverInfo":{"name":backend,"version":"1"},
                   "capabilities":{"tools":{"listChanged": backend == "a"},"logging":{}}}}),
            Some(&format!("sess-{backend}")),
        ),
        "tools/list" if backend == "a" => {
            let page = m["params"]["cursor"].as_str().unwrap_or("");
            let (tool, next) = if page.is_empty() {
                ("first", json!("p2"))
            } else {
                ("second", Value::Null)
            };
            sse_resp(vec![
                (
                    None,
                    json!({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"listing"}}),
                ),
                (
                    None,
                    json!({"jsonrpc":"2.0","id":id,"result":{"tools":[{"name":tool,"inputSchema":{"type":"object"}}],"nextCursor":next}}),
                ),
            ])
        }
        "tools/list" => json_resp(
            json!({"jsonrpc":"2.0","id":id,"result":{"tools":[{"name":"only","inputSchema":{"type":"object"}}]}}),
            None,
        ),
        "tools/call" => sse_resp(vec![
            (
                None,
                json!({"jsonrpc":"2.0","id":"srv-1","method":"sampling/createMessage","params":{"messages":[],"maxTokens":5}}),
            ),
            (
                None,
                json!({"jsonrpc":"2.0","id":id,"result":{"content":[{"type":"text","text":format!("{backend}:{}", m["params"]["name"].as_str().unwrap())}]}}),
            ),
        ]),
        _ if m.get("method").is_none() || m.get("id").is_none() => status(202),
        _ => json_resp(
            json!({"jsonrpc":"2.0","id":id,"error":{"code":-32601,"message":"nope"}}),
            None,
        ),
    }
}

const CONFIG: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: aigw
  listeners: [{name: http, protocol: HTTP, port: 1975}]
---
apiVersion: v1
kind: Secret
metadata: {name: b-key, namespace: default}
stringData: {apiKey: secret-b}
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: MCPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{name: gw}]
  backendRefs:
    - name: a
      group: gateway.envoyproxy.io
      kind: Backend
      securityPolicy: {apiKey: {inline: key-a}}
      forwardHeaders: [{name: x-tenant, backendHeader: x-org}]
    - name: b
      group: gateway.envoyproxy.io
      kind: Backend
      path: /custom
      securityPolicy: {apiKey: {secretRef: {name: b-key}, queryParam: token}}
      toolSelector: {exclude: [only]}
    - {name: down, group: gateway.envoyproxy.io, kind: Backend}
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: MCPRoute
metadata: {name: secure, namespace: default}
spec:
  parentRefs: [{name: gw}]
  path: /secure
  backendRefs:
    - {name: a, group: gateway.envoyproxy.io, kind: Backend}
  securityPolicy:
    oauth:
      issuer: https://idp.example
      audiences: [mcp-gateway]
      jwks:
        localJWKS:
          type: Inline
          inline: '{"keys":[{"kty":"oct","kid":"k1","alg":"HS256","k":"c2VjcmV0LXNpZ25pbmcta2V5LWZvci10ZXN0cy0wMTIz"}]}'
      protectedResourceMetadata:
        resource: https://gw.example/secure
        scopesSupported: [read, admin]
      claimToHeaders: [{claim: org.id, header: x-org-id}]
    authorization:
      rules:
        - source: {jwt: {scopes: [admin]}}
        - source: {jwt: {scopes: [read]}}
          target: {tools: [{backend: a, tool: first}]}
---
apiVersion: v1
kind: Secret
metadata: {name: client-keys, namespace: default}
stringData: {alice: k-alice, bob: k-bob}
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: MCPRoute
metadata: {name: guarded, namespace: default}
spec:
  parentRefs: [{name: gw}]
  path: /guarded
  backendRefs:
    - {name: a, group: gateway.envoyproxy.io, kind: Backend, forwardHeaders: [{name: x-api-key}]}
    - {name: b, group: gateway.envoyproxy.io, kind: Backend}
  backendSelector:
    rules:
      - cel: '("," + request.headers["x-subset"] + ",").contains("," + request.mcp.backend + ",")'
  securityPolicy:
    apiKeyAuth:
      credentialRefs: [{name: client-keys}]
      extractFrom: [{headers: [x-api-key]}]
      forwardClientIDHeader: x-client-id
      sanitize: true
    oauth:
      issuer: https://idp2.example/realm
      audiences: [mcp-gateway]
      protectedResourceMetadata: {resource: https://gw.example/guarded}
    authorization:
      rules:
        - cel: 'request.mcp.tool == "first" && request.mcp.params.arguments.n < 10 && request.auth.jwt.claims.org.id == "acme"'
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: MCPRoute
metadata: {name: ext, namespace: default}
spec:
  parentRefs: [{name: gw}]
  path: /ext
  backendRefs:
    - {name: a, group: gateway.envoyproxy.io, kind: Backend}
  securityPolicy:
    extAuth:
      headersToExtAuth: [x-tenant]
      http:
        backendRefs: [{name: authz, group: gateway.envoyproxy.io, kind: Backend}]
        path: /check
        headersToBackend: [x-user]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: authz, namespace: default}
spec: {endpoints: [{ip: {address: 10.0.0.9, port: 9000}}]}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: a, namespace: default}
spec: {endpoints: [{ip: {address: 10.0.0.1, port: 8001}}]}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: b, namespace: default}
spec: {endpoints: [{fqdn: {hostname: b.internal, port: 8002}}]}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: down, namespace: default}
spec: {endpoints: [{ip: {address: 10.0.0.3, port: 8003}}]}
"#;

struct Harness {
    svc: McpService,
    fake: Arc<Fake>,
}

fn harness(settings: McpSettings) -> Harness {
    harness_for(CONFIG, settings)
}

fn harness_for(text: &str, settings: McpSettings) -> Harness {
    let config = Config::from_yaml_str(text, "mcp.yaml").unwrap();
    let fake = Arc::new(Fake {
        handler: Box::new(server),
        sent: Mutex::new(Vec::new()),
    });
    let crypto = SessionCrypto::new(&aigw_core::Secret::new("seed"), None, 1);
    let gw = McpGateway::new(
        &config,
        &SecretSource::from_config(&config),
        crypto,
        settings,
        fake.clone(),
    )
    .unwrap();
    Harness {
        svc: McpService::new(gw),
        fake,
    }
}

impl Harness {
    async fn call(
        &self,
        method: Method,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, String) {
        self.call_at("/mcp", method, headers, body).await
    }

    async fn call_at(
        &self,
        path: &str,
        method: Method,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, String) {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("http://gw{path}"));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let body = body.map(|v| v.to_string()).unwrap_or_default();
        let resp = self
            .svc
            .clone()
            .oneshot(b.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    async fn init(&self) -> String {
        let (s, h, body) = self
            .call(
                Method::POST,
                &[
                    ("accept", "application/json, text/event-stream"),
                    ("x-tenant", "acme"),
                ],
                Some(init_msg("2025-03-26")),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["result"]["protocolVersion"], "2025-03-26");
        assert_eq!(
            v["result"]["capabilities"],
            json!({"tools":{"listChanged":true},"logging":{}})
        );
        h["mcp-session-id"].to_str().unwrap().to_string()
    }

    fn sent(&self) -> Vec<Sent> {
        std::mem::take(&mut *self.fake.sent.lock().unwrap())
    }
}

fn init_msg(version: &str) -> Value {
    json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":version,"capabilities":{"sampling":{}},"clientInfo":{"name":"t","version":"1"}}})
}

fn sse_messages(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|ev| ev.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test]
async fn initialize_fans_out_and_a_dead_backend_is_not_fatal() {
    let h = harness(McpSettings::default());
    let sid = h.init().await;
    let sent = h.sent();
    let inits: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.body["method"] == "initialize")
        .collect();
    assert_eq!(inits.len(), 3, "every backend is asked");
    // Credentials and forwarded headers, as configured per backend.
    let a = inits.iter().find(|s| s.backend == "a").unwrap();
    assert_eq!(a.uri, "http://10.0.0.1:8001/mcp");
    assert_eq!(a.headers["authorization"], "Bearer key-a");
    assert_eq!(a.headers["x-org"], "acme");
    assert!(!a.headers.contains_key("x-tenant"));
    assert_eq!(
        a.body["params"]["capabilities"],
        json!({"sampling":{}}),
        "client capabilities reach backends"
    );
    let b = inits.iter().find(|s| s.backend == "b").unwrap();
    assert_eq!(b.uri, "http://b.internal:8002/custom?token=secret-b");
    assert!(!b.headers.contains_key("x-org"));
    // notifications/initialized follows, with the backend's session.
    let n = sent
        .iter()
        .find(|s| s.backend == "a" && s.body["method"] == "notifications/initialized")
        .unwrap();
    assert_eq!(n.headers["mcp-session-id"], "sess-a");
    assert_eq!(n.headers["mcp-protocol-version"], "2025-06-18");
    assert!(!sid.contains("sess-a"), "backend session ids are sealed");
}

#[tokio::test]
async fn lists_are_aggregated_paged_filtered_and_failures_named() {
    let h = harness(McpSettings::default());
    let sid = h.init().await;
    h.sent();
    let hdr = [
        ("mcp-session-id", sid.as_str()),
        ("accept", "application/json, text/event-stream"),
    ];
    let (s, headers, body) = h
        .call(
            Method::POST,
            &hdr,
            Some(json!({"jsonrpc":"2.0","id":"L","method":"tools/list"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/event-stream");
    let msgs = sse_messages(&body);
    assert_eq!(
        msgs[0]["method"], "notifications/message",
        "backend messages are relayed first"
    );
    let last = msgs.last().unwrap();
    assert_eq!(last["id"], "L");
    let names: Vec<&str> = last["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["a__first", "a__second"],
        "both pages of a; b's only tool is excluded"
    );
    assert!(last["result"].get("nextCursor").is_none());
    // JSON-only client: one JSON answer.
    let (_, headers, body) = h
        .call(
            Method::POST,
            &[
                ("mcp-session-id", sid.as_str()),
                ("accept", "application/json"),
            ],
            Some(json!({"jsonrpc":"2.0","id":2,"method":"tools/list"})),
        )
        .await;
    assert_eq!(headers["content-type"], "application/json");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["result"]["tools"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn calls_are_routed_and_server_requests_find_their_way_back() {
    let h = harness(McpSettings::default());
    let sid = h.init().await;
    h.sent();
    let hdr = [
        ("mcp-session-id", sid.as_str()),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2025-03-26"),
    ];
    let (_, _, body) = h.call(Method::POST, &hdr, Some(json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"b__add","arguments":{}}}))).await;
    let msgs = sse_messages(&body);
    assert_eq!(msgs[0]["method"], "sampling/createMessage");
    assert_eq!(
        msgs[0]["id"], "c3J2LTE=__s__b",
        "upstream's encoding: base64(id)__s__backend"
    );
    assert_eq!(
        msgs[1],
        json!({"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"b:add"}]}})
    );
    let sent = h.sent();
    assert_eq!(sent[0].backend, "b");
    assert_eq!(sent[0].body["params"]["name"], "add");
    assert_eq!(sent[0].headers["mcp-session-id"], "sess-b");
    // The client answers the sampling request: it reaches b with b's own id.
    let (s, _, _) = h.call(Method::POST, &hdr, Some(json!({"jsonrpc":"2.0","id":"c3J2LTE=__s__b","result":{"role":"assistant","content":{"type":"text","text":"x"},"model":"m"}}))).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let sent = h.sent();
    assert_eq!(
        (sent[0].backend.as_str(), &sent[0].body["id"]),
        ("b", &json!("srv-1"))
    );
    // A tool the selector excludes, a backend that is not in the route.
    let (s, _, body) = h
        .call(
            Method::POST,
            &hdr,
            Some(json!({"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"b__only"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("invalid tool name"), "{body}");
    let (s, _, _) = h
        .call(
            Method::POST,
            &hdr,
            Some(json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"zz__x"}})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The dead backend is not part of the session.
    let (s, _, _) = h
        .call(
            Method::POST,
            &hdr,
            Some(
                json!({"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"down__x"}}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn transport_rules() {
    let h = harness(McpSettings {
        max_request_body: 256,
        ..McpSettings::default()
    });
    let sid = h.init().await;
    let big =
        json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"pad":"x".repeat(300)}});
    let (s, _, _) = h
        .call(Method::POST, &[("mcp-session-id", sid.as_str())], Some(big))
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"});
    let (s, _, body) = h
        .call(
            Method::POST,
            &[
                ("mcp-session-id", sid.as_str()),
                ("mcp-protocol-version", "2099-01-01"),
            ],
            Some(list.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("unsupported MCP-Protocol-Version"));
    let (s, _, body) = h.call(Method::POST, &[], Some(list.clone())).await;
    assert_eq!(
        (s, body.contains("missing session ID")),
        (StatusCode::BAD_REQUEST, true)
    );
    let (s, _, body) = h
        .call(
            Method::POST,
            &[("mcp-session-id", "forged")],
            Some(list.clone()),
        )
        .await;
    assert_eq!(
        (s, body.contains("invalid session ID")),
        (StatusCode::BAD_REQUEST, true)
    );
    let (s, _, body) = h
        .call(
            Method::POST,
            &[("mcp-session-id", sid.as_str())],
            Some(json!([list])),
        )
        .await;
    assert_eq!(
        (s, body.contains("batches")),
        (StatusCode::BAD_REQUEST, true)
    );
    let (s, _, _) = h.call(Method::PUT, &[], None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    // An unknown version asked at initialize gets the newest one served.
    let (_, _, body) = h
        .call(Method::POST, &[], Some(init_msg("2024-01-01")))
        .await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["result"]["protocolVersion"],
        "2025-06-18"
    );
    // Ping answers locally.
    let (s, _, body) = h
        .call(
            Method::POST,
            &[("mcp-session-id", sid.as_str())],
            Some(json!({"jsonrpc":"2.0","id":"p","method":"ping"})),
        )
        .await;
    assert_eq!(
        (s, body.as_str()),
        (StatusCode::OK, r#"{"jsonrpc":"2.0","id":"p","result":{}}"#)
    );
}

#[tokio::test]
async fn get_stream_merges_seals_event_ids_and_resumes() {
    let h = harness(McpSettings {
        heartbeat: Some(Duration::from_millis(50)),
        ..McpSettings::default()
    });
    let sid = h.init().await;
    h.sent();
    let req = Request::builder()
        .method(Method::GET)
        .uri("http://gw/mcp")
        .header("mcp-session-id", &sid)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = h.svc.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut text = String::new();
    while text.matches("\n\n").count() < 5 {
        let f = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(f.data_ref().unwrap()).unwrap());
    }
    drop(body);
    let msgs = sse_messages(&text);
    assert!(
        msgs.iter()
            .any(|m| m["method"] == "ping" && m["id"].as_str().unwrap().starts_with("aigw-ping-")),
        "heartbeat"
    );
    assert!(
        msgs.iter()
            .any(|m| m["method"] == "roots/list" && m["id"] == "9__i__a")
    );
    let last_id = text
        .split("\n\n")
        .filter_map(|ev| ev.lines().find_map(|l| l.strip_prefix("id: ")))
        .last()
        .unwrap()
        .to_string();
    assert!(!last_id.contains("e2"), "event ids are sealed");
    h.sent();
    let req = Request::builder()
        .method(Method::GET)
        .uri("http://gw/mcp")
        .header("mcp-session-id", &sid)
        .header("last-event-id", &last_id)
        .body(Full::new(Bytes::new()))
        .unwrap();
    // Held open: the backend streams are opened only while the client listens.
    let _held = h.svc.clone().oneshot(req).await.unwrap();
    // Polled rather than slept on: the backend streams open on the runtime's schedule,
    // which a loaded machine delays.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut resumed = Vec::new();
    loop {
        resumed.extend(
            h.sent()
                .iter()
                .filter(|s| s.method == Method::GET)
                .map(|s| {
                    (
                        s.backend.clone(),
                        s.headers
                            .get("last-event-id")
                            .map(|v| v.to_str().unwrap().to_string()),
                    )
                }),
        );
        let found = resumed.contains(&("a".into(), Some("e2".into())))
            || resumed.contains(&("b".into(), Some("e2".into())));
        if found || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        resumed.contains(&("a".into(), Some("e2".into())))
            || resumed.contains(&("b".into(), Some("e2".into()))),
        "{resumed:?}"
    );
}

#[tokio::test]
async fn delete_closes_every_backend_session() {
    let h = harness(McpSettings::default());
    let sid = h.init().await;
    h.sent();
    let (s, _, _) = h
        .call(Method::DELETE, &[("mcp-session-id", sid.as_str())], None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let mut deleted: Vec<(String, String)> = h
        .sent()
        .into_iter()
        .filter(|s| s.method == Method::DELETE)
        .map(|s| {
            (
                s.backend,
                s.headers["mcp-session-id"].to_str().unwrap().to_string(),
            )
        })
        .collect();
    deleted.sort();
    assert_eq!(
        deleted,
        [
            ("a".to_string(), "sess-a".to_string()),
            ("b".to_string(), "sess-b".to_string())
        ]
    );
}

fn token(claims: Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("k1".into());
    let key = jsonwebtoken::EncodingKey::from_secret(b"secret-signing-key-for-tests-0123");
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn claims(sub: &str, scope: &str, aud: &str, exp_in: i64) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    json!({"iss":"https://idp.example","aud":aud,"sub":sub,"scope":scope,"exp":now + exp_in,"org":{"id":"acme"}})
}

impl Harness {
    async fn secure(
        &self,
        method: Method,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, String) {
        let mut h = vec![("accept", "application/json")];
        h.extend_from_slice(headers);
        self.call_at("/secure", method, &h, body).await
    }
}

#[tokio::test]
async fn oauth_protected_route() {
    let h = harness(McpSettings::default());
    // RFC 9728 metadata, at the path-suffixed well-known URI and the bare one.
    for path in [
        "/.well-known/oauth-protected-resource/secure",
        "/.well-known/oauth-protected-resource",
    ] {
        let req = Request::builder()
            .uri(format!("http://gw{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = h.svc.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let v: Value =
            serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(v["resource"], "https://gw.example/secure");
        assert_eq!(v["authorization_servers"], json!(["https://idp.example"]));
        assert_eq!(v["scopes_supported"], json!(["read", "admin"]));
    }
    let meta =
        "resource_metadata=\"https://gw.example/.well-known/oauth-protected-resource/secure\"";
    let (s, hd, _) = h
        .secure(Method::POST, &[], Some(init_msg("2025-06-18")))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(hd["www-authenticate"], format!("Bearer {meta}"));
    for (bad, why) in [
        (claims("u1", "read", "mcp-gateway", -120), "token expired"),
        (
            claims("u1", "read", "someone-else", 300),
            "token audience not accepted",
        ),
    ] {
        let auth = format!("Bearer {}", token(bad));
        let (s, hd, body) = h
            .secure(
                Method::POST,
                &[("authorization", &auth)],
                Some(init_msg("2025-06-18")),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
        let c = hd["www-authenticate"].to_str().unwrap();
        assert!(
            c.contains("error=\"invalid_token\"") && c.contains(why) && c.contains(meta),
            "{c}"
        );
    }
    let forged = token(claims("u1", "admin", "mcp-gateway", 300)).replace('.', ".x");
    let (s, _, _) = h
        .secure(
            Method::POST,
            &[("authorization", &format!("Bearer {forged}"))],
            Some(init_msg("2025-06-18")),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // A reader: initialize, claims as headers, tools/list filtered, a call denied with the scope needed.
    let reader = format!("Bearer {}", token(claims("u1", "read", "mcp-gateway", 300)));
    h.sent();
    let (s, hd, _) = h
        .secure(
            Method::POST,
            &[("authorization", &reader), ("x-org-id", "forged")],
            Some(init_msg("2025-06-18")),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let sid = hd["mcp-session-id"].to_str().unwrap().to_string();
    let sent = h.sent();
    assert!(sent.iter().all(|s| {
        s.headers
            .get_all("x-org-id")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect::<Vec<_>>()
            == ["acme"]
    }));
    let hdr = [
        ("authorization", reader.as_str()),
        ("mcp-session-id", sid.as_str()),
    ];
    let (_, _, body) = h
        .secure(
            Method::POST,
            &hdr,
            Some(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"})),
        )
        .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["a__first"]
    );
    let (s, _, _) = h
        .secure(
            Method::POST,
            &hdr,
            Some(
                json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a__first"}}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, hd, _) = h
        .secure(
            Method::POST,
            &hdr,
            Some(
                json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"a__second"}}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        hd["www-authenticate"],
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"admin\", {meta}, error_description=\"The token is missing required scopes\""
        )
    );
    // An admin sees and calls everything; the reader's session is not theirs.
    let admin = format!(
        "Bearer {}",
        token(claims("u2", "admin", "mcp-gateway", 300))
    );
    let (s, _, body) = h
        .secure(
            Method::POST,
            &[("authorization", &admin), ("mcp-session-id", &sid)],
            Some(json!({"jsonrpc":"2.0","id":4,"method":"tools/list"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn api_keys_backend_selector_cel_rules_and_issuer_discovery() {
    let h = harness(McpSettings::default());
    let mut c = claims("u1", "", "mcp-gateway", 300);
    c["iss"] = json!("https://idp2.example/realm");
    let bearer = format!("Bearer {}", token(c));
    let guarded = |extra: &[(&'static str, String)]| {
        let mut v: Vec<(&'static str, String)> = vec![("accept", "application/json".into())];
        v.extend(extra.iter().cloned());
        v
    };
    async fn at(
        h: &Harness,
        headers: &[(&'static str, String)],
        body: Value,
    ) -> (StatusCode, HeaderMap, String) {
        let hv: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        h.call_at("/guarded", Method::POST, &hv, Some(body)).await
    }
    // The API key comes first: missing or unknown, 401 with the OAuth challenge.
    let (s, hd, body) = at(
        &h,
        &guarded(&[("authorization", bearer.clone())]),
        init_msg("2025-06-18"),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("missing API key"));
    assert!(
        hd["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("resource_metadata=")
    );
    let (s, _, body) = at(
        &h,
        &guarded(&[
            ("authorization", bearer.clone()),
            ("x-api-key", "k-eve".into()),
        ]),
        init_msg("2025-06-18"),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(body.contains("invalid API key"));
    // A key but no token: the token is still required.
    let (s, _, _) = at(
        &h,
        &guarded(&[("x-api-key", "k-bob".into())]),
        init_msg("2025-06-18"),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // The selector admits no backend: 403.
    let both = |subset: &str| {
        guarded(&[
            ("authorization", bearer.clone()),
            ("x-api-key", "k-bob".into()),
            ("x-subset", subset.to_string()),
        ])
    };
    h.sent();
    let (s, _, body) = at(&h, &both("zzz"), init_msg("2025-06-18")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    // The keys were found through the issuer's metadata (the first two locations 404).
    let fetched: Vec<String> = h
        .sent()
        .into_iter()
        .filter(|s| s.backend == "(fetch)")
        .map(|s| s.uri)
        .collect();
    assert_eq!(
        fetched,
        [
            "https://idp2.example/.well-known/oauth-authorization-server/realm",
            "https://idp2.example/.well-known/openid-configuration/realm",
            "https://idp2.example/realm/.well-known/oauth-authorization-server",
            "https://idp2.example/realm/keys",
        ]
    );
    // Only `a` is selected: `b` is never initialized, calls to it are 403.
    let (s, hd, body) = at(&h, &both("a"), init_msg("2025-06-18")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let sid = hd["mcp-session-id"].to_str().unwrap().to_string();
    let sent = h.sent();
    assert!(sent.iter().all(|s| s.backend != "b"));
    let to_a: Vec<_> = sent.iter().filter(|s| s.backend == "a").collect();
    assert!(!to_a.is_empty());
    for s in &to_a {
        // The client id is forwarded; the key is not, though `a` forwards x-api-key.
        assert_eq!(s.headers["x-client-id"], "bob");
        assert!(s.headers.get("x-api-key").is_none());
    }
    let mut sess = both("a");
    sess.push(("mcp-session-id", sid));
    let call = |name: &str, n: i64| json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":name,"arguments":{"n":n}}});
    let (s, _, body) = at(&h, &sess, call("a__first", 3)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // The CEL rule looks at the arguments; no rule matching, the default denies.
    let (s, hd, body) = at(&h, &sess, call("a__first", 30)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(hd.get("www-authenticate").is_none());
    let (s, _, body) = at(&h, &sess, call("b__first", 1)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("no MCP session found for backend b"));
    // tools/list shows what the rules would let through (a call without arguments
    // fails `arguments.n < 10`, so nothing, as upstream checks the list).
    let (s, _, body) = at(
        &h,
        &sess,
        json!({"jsonrpc":"2.0","id":3,"method":"tools/list"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["result"]["tools"], json!([]));

    // The authorization server's metadata, proxied at both well-known paths.
    for path in [
        "/.well-known/oauth-authorization-server/guarded",
        "/.well-known/openid-configuration/guarded",
    ] {
        let (s, _, body) = h.call_at(path, Method::GET, &[], None).await;
        assert_eq!(s, StatusCode::OK);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["token_endpoint"], "https://idp2.example/realm/token");
    }
    // An issuer that publishes nothing gets upstream's fallback document.
    let (s, _, body) = h
        .call_at(
            "/.well-known/oauth-authorization-server/secure",
            Method::GET,
            &[],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["jwks_uri"],
        "https://idp.example/protocol/openid-connect/certs"
    );
    assert_eq!(v["scopes_supported"], json!(["read", "admin"]));
}

#[tokio::test]
async fn http_ext_auth_decides_and_names_the_user() {
    let h = harness(McpSettings::default());
    let (s, hd, body) = h
        .call_at(
            "/ext",
            Method::POST,
            &[
                ("accept", "application/json"),
                ("authorization", "Bearer bad"),
                ("x-tenant", "acme"),
                ("x-other", "not sent"),
            ],
            Some(init_msg("2025-06-18")),
        )
        .await;
    // The service's refusal, as it gave it.
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(hd["content-type"], "application/json");
    assert_eq!(body, r#"{"denied":true}"#);
    let sent = h.sent();
    assert_eq!(sent.len(), 1, "no backend is asked");
    assert_eq!(sent[0].backend, "authz");
    assert_eq!(sent[0].method, Method::POST);
    assert_eq!(sent[0].uri, "http://10.0.0.9:9000/check/ext");
    assert_eq!(sent[0].headers["authorization"], "Bearer bad");
    assert_eq!(sent[0].headers["x-tenant"], "acme");
    assert!(sent[0].headers.get("x-other").is_none());

    let (s, _, body) = h
        .call_at(
            "/ext",
            Method::POST,
            &[
                ("accept", "application/json"),
                ("authorization", "Bearer good"),
            ],
            Some(init_msg("2025-06-18")),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let to_a: Vec<_> = h.sent().into_iter().filter(|s| s.backend == "a").collect();
    assert!(!to_a.is_empty());
    assert!(to_a.iter().all(|s| s.headers["x-user"] == "alice"));
}

fn gateway_for(text: &str) -> Result<McpGateway, String> {
    let config = Config::from_yaml_str(text, "mcp.yaml").map_err(|e| e.to_string())?;
    let fake = Arc::new(Fake {
        handler: Box::new(server),
        sent: Mutex::new(Vec::new()),
    });
    McpGateway::new(
        &config,
        &SecretSource::from_config(&config),
        SessionCrypto::new(&aigw_core::Secret::new("seed"), None, 1),
        McpSettings::default(),
        fake,
    )
    .map_err(|e| e.to_string())
}

fn grpc_config(extra: &str) -> String {
    let text = CONFIG.replace(
        "      http:\n        backendRefs: [{name: authz, group: gateway.envoyproxy.io, kind: Backend}]\n        path: /check\n        headersToBackend: [x-user]\n",
        &format!("      grpc:\n        backendRefs: [{{name: authz, group: gateway.envoyproxy.io, kind: Backend}}]\n{extra}"),
    );
    assert_ne!(text, CONFIG);
    text
}

#[cfg(not(feature = "mcp-ext-authz-grpc"))]
#[test]
fn grpc_ext_auth_without_the_feature_is_refused_naming_the_field() {
    let e = gateway_for(&grpc_config("")).unwrap_err();
    assert!(e.contains("spec.securityPolicy.extAuth.grpc"), "{e}");
    assert!(e.contains("mcp-ext-authz-grpc"), "{e}");
}

#[cfg(feature = "mcp-ext-authz-grpc")]
#[test]
fn grpc_ext_auth_loads_and_bad_context_extensions_are_refused() {
    let ok = "      contextExtensions:\n        - {name: tenant, type: Value, value: acme}\n";
    gateway_for(&grpc_config(ok)).unwrap();
    let bad = "      contextExtensions:\n        - {name: tenant, type: ValueRef, valueRef: {group: \"\", kind: Secret, name: nowhere, key: k}}\n        - {name: both, type: Value}\n";
    let e = gateway_for(&grpc_config(bad)).unwrap_err();
    assert!(
        e.contains("spec.securityPolicy.extAuth.contextExtensions[0]"),
        "{e}"
    );
    assert!(
        e.contains("spec.securityPolicy.extAuth.contextExtensions[1]"),
        "{e}"
    );
}

#[tokio::test]
async fn http_ext_auth_gets_the_body_up_to_the_cap() {
    let text = CONFIG.replace(
        "      headersToExtAuth: [x-tenant]\n",
        "      headersToExtAuth: [x-tenant]\n      bodyToExtAuth: {maxRequestBytes: 300}\n",
    );
    assert_ne!(text, CONFIG);
    let h = harness_for(&text, McpSettings::default());
    let small = init_msg("2025-06-18");
    let (s, _, _) = h
        .call_at(
            "/ext",
            Method::POST,
            &[
                ("accept", "application/json"),
                ("authorization", "Bearer good"),
            ],
            Some(small.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let check = h.sent().into_iter().find(|s| s.backend == "authz").unwrap();
    assert_eq!(check.body, small, "the body, as the client sent it");
    assert_eq!(
        check.headers["content-length"],
        small.to_string().len().to_string().as_str()
    );

    let mut big = init_msg("2025-06-18");
    big["params"]["_meta"] = json!({"pad": "x".repeat(300)});
    let before = h.sent().len();
    let (s, _, _) = h
        .call_at(
            "/ext",
            Method::POST,
            &[
                ("accept", "application/json"),
                ("authorization", "Bearer good"),
            ],
            Some(big),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        h.sent().len(),
        before,
        "neither the service nor a backend is asked"
    );
}

/// A body that declares `len` bytes (as hyper does from `content-length`) and never
/// sends one.
struct Declared(u64);

impl http_body::Body for Declared {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Pending
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0)
    }
}

#[tokio::test]
async fn a_declared_oversize_body_gets_413_before_it_is_read() {
    let h = harness(McpSettings {
        max_request_body: 256,
        ..McpSettings::default()
    });
    let req = Request::builder()
        .method(Method::POST)
        .uri("http://gw/mcp")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(Declared(100 << 20))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(2), h.svc.clone().oneshot(req))
        .await
        .expect("the gateway waited for the declared body")
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(h.sent().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_body_not_received_in_time_gets_408() {
    let h = harness(McpSettings {
        body_timeout: Some(Duration::from_secs(5)),
        ..McpSettings::default()
    });
    let req = Request::builder()
        .method(Method::POST)
        .uri("http://gw/mcp")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(Declared(64))
        .unwrap();
    let started = tokio::time::Instant::now();
    let resp = h.svc.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "answered after {waited:?}"
    );
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["message"], "request body not received in time");
    assert!(h.sent().is_empty());
}
