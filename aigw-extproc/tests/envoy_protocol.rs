//! A real Envoy in front of a recording upstream, with the bootstrap this crate
//! generates and the processor on a Unix domain socket: proves the wire behaviour
//! (two-stage processing, path and body rewrite, content-length restore, STREAMED mode
//! override, priority fallback, metadata in the access log) against Envoy itself.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod common;

use aigw_extproc::envoy::{ClusterPlan, EndpointPlan, HeaderMatch, Options, Plan, RoutePlan};
use aigw_extproc::metrics::Metrics;
use aigw_extproc::server::{Bound, ListenAddr, serve_grpc};
use aigw_extproc::{Processor, Runtime};
use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use common::envoy::{Envoy, envoy_binary, free_port};
use common::{OPENAI_BACKEND, OTHER_BACKEND, TestCatalog, TestFactory};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Seen>>>;

async fn upstream(
    State((log, fail)): State<(Log, bool)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    log.lock().unwrap().push(Seen {
        path: uri.path().to_owned(),
        headers,
        body: body.clone(),
    });
    if fail {
        return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
    }
    // The translating test backend upper-cases bodies, so look at the bytes.
    let stream = body
        .to_ascii_lowercase()
        .windows(13)
        .any(|w| w == b"\"stream\":true");
    if stream {
        let chunks = futures::stream::iter(
            [
                "data: {\"a\":1}\n\n",
                "data: {\"b\":2}\n\n",
                "data: [DONE]\n\n",
            ]
            .into_iter()
            .map(|s| Ok::<_, std::io::Error>(Bytes::from(s))),
        );
        (
            [("content-type", "text/event-stream")],
            axum::body::Body::from_stream(chunks),
        )
            .into_response()
    } else {
        ([("content-type", "application/json")], r#"{"id":"ok"}"#).into_response()
    }
}

async fn spawn_upstream(fail: bool) -> (u16, Log) {
    let log: Log = Arc::default();
    let app = axum::Router::new()
        .fallback(upstream)
        .with_state((log.clone(), fail));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await });
    (port, log)
}

struct Setup {
    _dir: tempfile::TempDir,
    envoy: Envoy,
    port: u16,
    good: Log,
    bad: Log,
}

async fn setup() -> Option<Setup> {
    let bin = envoy_binary()?;
    let dir = tempfile::tempdir().unwrap();
    let (good_port, good) = spawn_upstream(false).await;
    let (bad_port, bad) = spawn_upstream(true).await;

    let sock = dir.path().join("extproc.sock");
    let addr = ListenAddr::Unix(sock.clone());
    let runtime = Runtime::new(
        Arc::new(TestCatalog {
            upstream: format!("127.0.0.1:{good_port}"),
        }),
        Arc::new(TestFactory),
    );
    let processor = Processor::new(
        Arc::new(ArcSwap::from_pointee(runtime)),
        Arc::new(Metrics::default()),
    );
    let bound = Bound::bind(&addr).await.unwrap();
    tokio::spawn(serve_grpc(
        bound,
        processor,
        64 << 20,
        Arc::new(AtomicBool::new(false)),
        std::future::pending(),
    ));

    let endpoint = |port, priority, backend: &str| EndpointPlan {
        host: "127.0.0.1".into(),
        port,
        priority,
        weight: 1,
        backend_name: backend.into(),
        tls_sni: None,
        http2: false,
    };
    let plan = Plan {
        routes: vec![
            RoutePlan {
                route: "default/chat".into(),
                hostnames: Vec::new(),
                headers: vec![HeaderMatch::Exact {
                    name: "x-ai-eg-model".into(),
                    value: "gpt-test".into(),
                }],
                cluster: "httproute/default/chat/rule/0".into(),
                timeout: Some(Duration::from_secs(30)),
                per_try_timeout: None,
                retries: 2,
                retry: None,
            },
            RoutePlan {
                route: "default/chat".into(),
                hostnames: Vec::new(),
                headers: vec![HeaderMatch::Exact {
                    name: "x-ai-eg-model".into(),
                    value: "gpt-other".into(),
                }],
                cluster: "httproute/default/chat/rule/1".into(),
                timeout: None,
                per_try_timeout: None,
                retries: 0,
                retry: None,
            },
        ],
        clusters: vec![
            ClusterPlan {
                name: "httproute/default/chat/rule/0".into(),
                // Priority 0 always fails; Envoy falls back to priority 1.
                endpoints: vec![
                    endpoint(bad_port, 0, OTHER_BACKEND),
                    endpoint(good_port, 1, OPENAI_BACKEND),
                ],
                protection: Default::default(),
                pool: None,
            },
            ClusterPlan {
                name: "httproute/default/chat/rule/1".into(),
                endpoints: vec![endpoint(good_port, 0, OTHER_BACKEND)],
                protection: Default::default(),
                pool: None,
            },
        ],
        metadata_namespaces: Vec::new(),
        mcp_paths: Vec::new(),
    };
    let port = free_port();
    let admin = free_port();
    let mut opts = Options::new(addr);
    opts.listen = ([127, 0, 0, 1], port).into();
    opts.admin = Some(([127, 0, 0, 1], admin).into());
    let cfg = dir.path().join("envoy.yaml");
    std::fs::write(
        &cfg,
        serde_json::to_vec_pretty(&plan.bootstrap(&opts).unwrap()).unwrap(),
    )
    .unwrap();
    let envoy = Envoy::start(&bin, &cfg, dir.path(), admin).await;
    Some(Setup {
        _dir: dir,
        envoy,
        port,
        good,
        bad,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_envoy_round_trip() {
    let Some(s) = setup().await else { return };
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}/v1/chat/completions", s.port);

    // 1. Translating backend (rule 1): path, body and headers rewritten upstream; the
    //    streamed answer is translated chunk by chunk.
    let body = r#"{"model":"gpt-other","stream":true,"messages":[]}"#;
    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .header("authorization", "Bearer client-secret")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let translated = r.headers().get("x-translated").cloned();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}\n{}", s.envoy.output());
    assert_eq!(translated.unwrap(), "yes");
    assert_eq!(
        text,
        "DATA: {\"A\":1}\n\nDATA: {\"B\":2}\n\nDATA: [DONE]\n\n"
    );
    let seen = s.good.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen.path, "/other");
    assert_eq!(seen.body, body.to_ascii_uppercase());
    assert_eq!(seen.headers["x-other"], "1");
    assert_eq!(seen.headers["x-ai-eg-model"], "gpt-other");
    assert_eq!(seen.headers["content-length"], body.len().to_string());
    assert!(
        seen.headers.get("authorization").is_none(),
        "client key leaked"
    );

    // 2. Fallback: priority 0 answers 500, Envoy retries on priority 1 (OpenAI
    //    passthrough), which re-translates from the original body.
    let body = r#"{"model":"gpt-test","messages":[]}"#;
    let r = client.post(&url).body(body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"id":"ok"}"#);
    let bad = s.bad.lock().unwrap().last().cloned().unwrap();
    assert_eq!(bad.path, "/other", "priority 0 got the translated request");
    let good = s.good.lock().unwrap().last().cloned().unwrap();
    assert_eq!(good.path, "/v1/chat/completions");
    assert_eq!(good.body, body, "retry got the original body");
    assert!(
        good.headers.get("x-other").is_none(),
        "attempt 1's header restored"
    );

    // 3. Unknown model: 404 JSON from the processor, not Envoy's empty 404.
    let r = client
        .post(&url)
        .body(r#"{"model":"nope","messages":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("nope"));

    // 4. The access log carries the token metadata.
    let line = s
        .envoy
        .access_log_line(|v| v["gen_ai.request.model"] == "gpt-other")
        .await;
    // input 3 + one output token per upstream byte (3 SSE events, 44 bytes).
    assert_eq!(line["gen_ai.usage.total_tokens"], 47, "{line}");
    assert_eq!(line["gen_ai.provider.name"], OTHER_BACKEND, "{line}");
    assert_eq!(line["ai_gateway.route"], "default/chat", "{line}");
}
