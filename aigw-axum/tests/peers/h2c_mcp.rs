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
    let seen = Arc::new(Seen::default());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = l.accept().await.unwrap();
            s.connections.fetch_add(1, Ordering::SeqCst);
            let s = s.clone();
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    if req.version() == hyper::Version::HTTP_2 {
                        s.http2_requests.fetch_add(1, Ordering::SeqCst);
                    }
                    mcp_answer(req)
                });
            tokio::spawn(
                http2::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(tcp), svc),
            );
        }
    });
    (addr, seen)
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
