//! An MCP server (Streamable HTTP, JSON answers) that speaks only HTTP/2 over cleartext,
//! for the tests of Backends marked `appProtocols: [gateway.envoyproxy.io/h2c]`: an
//! HTTP/1.1 request fails its connection preface.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What the server saw.
#[derive(Default)]
pub(crate) struct Seen {
    /// TCP connections accepted.
    pub(crate) connections: AtomicUsize,
    /// Requests that arrived over HTTP/2.
    pub(crate) http2_requests: AtomicUsize,
}

/// Serves `initialize`, `tools/list` with one tool (`echo`) and `tools/call` echoing its
/// `text`, on a free loopback port.
pub(crate) async fn serve() -> (SocketAddr, Arc<Seen>) {
    serve_with(mcp_answer).await
}

/// Serves `answer` over HTTP/2 alone on a free loopback port, counting connections and
/// HTTP/2 requests.
pub(crate) async fn serve_with<F, Fut>(answer: F) -> (SocketAddr, Arc<Seen>)
where
    F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<hyper::Response<Full<Bytes>>, Infallible>>
        + Send
        + 'static,
{
    let seen = Arc::new(Seen::default());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = l.accept().await.unwrap();
            s.connections.fetch_add(1, Ordering::SeqCst);
            let (s, answer) = (s.clone(), answer.clone());
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    if req.version() == hyper::Version::HTTP_2 {
                        s.http2_requests.fetch_add(1, Ordering::SeqCst);
                    }
                    answer(req)
                });
            tokio::spawn(
                http2::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(tcp), svc),
            );
        }
    });
    (addr, seen)
}

/// An MCPRoute with one Backend, marked h2c, at `port`.
pub(crate) fn mcp_route(port: u16) -> String {
    format!(
        r#"apiVersion: aigateway.envoyproxy.io/v1beta1
kind: MCPRoute
metadata: {{name: tools, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  backendRefs: [{{name: h2, group: gateway.envoyproxy.io, kind: Backend}}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: h2, namespace: default}}
spec:
  appProtocols: [gateway.envoyproxy.io/h2c]
  endpoints: [{{ip: {{address: 127.0.0.1, port: {port}}}}}]
"#
    )
}

async fn mcp_answer(
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    use http_body_util::BodyExt as _;
    let respond = |status: u16, body: String| {
        Ok(hyper::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("mcp-session-id", "h2c-session")
            .body(Full::new(Bytes::from(body)))
            .unwrap())
    };
    if req.method() != hyper::Method::POST {
        return respond(405, String::new());
    }
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let msg: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let Some(id) = msg.get("id").cloned() else {
        return respond(202, String::new());
    };
    let result = match msg["method"].as_str().unwrap_or_default() {
        "initialize" => serde_json::json!({
            "protocolVersion": msg["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "h2c-only", "version": "1"}
        }),
        "tools/list" => serde_json::json!({"tools": [{
            "name": "echo",
            "description": "echoes text",
            "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}
        }]}),
        "tools/call" => serde_json::json!({"content": [{
            "type": "text",
            "text": format!("h2: {}", msg["params"]["arguments"]["text"].as_str().unwrap_or_default())
        }]}),
        other => {
            return respond(
                200,
                serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": other}})
                    .to_string(),
            );
        }
    };
    respond(
        200,
        serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
    )
}
