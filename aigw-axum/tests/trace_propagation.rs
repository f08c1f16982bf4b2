//! W3C trace context towards upstreams: an incoming `traceparent` is continued on every
//! attempt (same trace id, fresh span id, `tracestate` forwarded); without one a trace
//! is started only when propagation is on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use aigw_axum::trace_context::TraceParent;
use aigw_axum::{Gateway, Settings, Snapshot};
use axum::extract::State;
use http::HeaderMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use support::*;

type Seen = Arc<Mutex<Vec<HeaderMap>>>;

/// An upstream that records request headers; the first `fail_first` requests get a 503.
async fn recording_upstream(fail_first: usize) -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/v1/chat/completions",
            axum::routing::post(
                move |State(seen): State<Seen>, headers: HeaderMap| async move {
                    let n = {
                        let mut s = seen.lock().unwrap();
                        s.push(headers);
                        s.len()
                    };
                    if n <= fail_first {
                        return (http::StatusCode::SERVICE_UNAVAILABLE, "{}".to_owned());
                    }
                    (
                        http::StatusCode::OK,
                        serde_json::json!({
                            "id": "x", "object": "chat.completion", "model": "up",
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
                        })
                        .to_string(),
                    )
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

async fn gateway_over(addr: SocketAddr, propagation: bool) -> String {
    let planner = StaticPlanner {
        targets: vec![target("b0", addr, 0)],
        idle: None,
        timeout: None,
    };
    let gw = Gateway::builder(Snapshot::new(
        Arc::new(planner),
        Arc::new(PassthroughFactory),
    ))
    .settings(Settings {
        trace_propagation: propagation,
        ..fast_settings()
    })
    .build()
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = gw.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

async fn post(url: &str, headers: &[(&str, &str)]) -> u16 {
    let mut req = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .json(&serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

fn traceparent(h: &HeaderMap) -> TraceParent {
    TraceParent::parse(h["traceparent"].to_str().unwrap()).expect("valid traceparent")
}

const INCOMING: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test]
async fn incoming_trace_is_continued_on_every_attempt() {
    // One failed attempt, then a retry on the same backend.
    let (addr, seen) = recording_upstream(1).await;
    let url = gateway_over(addr, false).await;
    let status = post(
        &url,
        &[
            ("traceparent", INCOMING),
            ("tracestate", "congo=t61rcWkgMzE"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let (a, b) = (traceparent(&seen[0]), traceparent(&seen[1]));
    for t in [a, b] {
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(
            t.parent_id, 0x00f0_67aa_0ba9_02b7,
            "a child span, not the caller's"
        );
        assert_eq!(t.flags, 0x01);
    }
    assert_ne!(a.parent_id, b.parent_id, "one span per attempt");
    assert_eq!(seen[1]["tracestate"], "congo=t61rcWkgMzE");
}

#[tokio::test]
async fn trace_started_only_when_propagation_is_on() {
    let (addr, seen) = recording_upstream(0).await;
    let off = gateway_over(addr, false).await;
    assert_eq!(post(&off, &[]).await, 200);
    assert!(!seen.lock().unwrap()[0].contains_key("traceparent"));

    let on = gateway_over(addr, true).await;
    assert_eq!(post(&on, &[]).await, 200);
    assert_eq!(post(&on, &[("traceparent", "not-a-trace")]).await, 200);
    let seen = seen.lock().unwrap();
    let (a, b) = (traceparent(&seen[1]), traceparent(&seen[2]));
    assert_ne!(a.trace_id, b.trace_id, "a new trace per request");
    assert_eq!(a.flags & 1, 1);
    assert_ne!(
        seen[2]["traceparent"], "not-a-trace",
        "an invalid traceparent is replaced"
    );
}
