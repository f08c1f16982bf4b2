//! The serve loop tells HTTP/1 from HTTP/2 (prior knowledge) by a connection's first
//! bytes: a request over either protocol, whole or sent a few bytes at a time, is
//! answered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use aigw_axum::Settings;
use aigw_axum::server::{self, ServerLimits};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CHAT: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;

async fn serve() -> SocketAddr {
    let up = upstream(Behavior::Ok {
        chunks: 2,
        interval: Duration::from_millis(1),
    })
    .await;
    let h = gateway(
        StaticPlanner {
            targets: vec![target("b0", up.addr, 0)],
            idle: None,
            timeout: None,
        },
        Settings::default(),
    )
    .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = h.gateway.router();
    tokio::spawn(async move {
        let _up = up;
        let _records = h.records;
        server::serve(
            listener,
            router,
            ServerLimits::default(),
            std::future::pending(),
        )
        .await
    });
    addr
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_served() {
    let addr = serve().await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from_static(CHAT.as_bytes())))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(body.starts_with(b"{"), "{body:?}");
}

#[tokio::test]
async fn http1_sent_a_byte_at_a_time_is_served() {
    let addr = serve().await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{CHAT}",
        CHAT.len()
    );
    // "P" could still begin the HTTP/2 preface ("PRI * HTTP/2.0…"); "PO" cannot.
    for b in req.as_bytes().chunks(1).take(6) {
        tcp.write_all(b).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tcp.write_all(&req.as_bytes()[6..]).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}
