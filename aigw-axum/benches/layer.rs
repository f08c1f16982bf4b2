//! What the gateway adds in-process, over what an application would write by hand.
//!
//! All cases run on one current-thread runtime (as `aigw run` does on small machines),
//! driven with `Router::oneshot`, no subscriber installed (tracing off), against a
//! minimal hyper HTTP/1 upstream on loopback that answers every request with the same
//! OpenAI chat completion (usage included):
//!
//! * `chat/bare_handler_forward` — an axum handler that reads the body and forwards it
//!   with the gateway's own pooled client, bearer key added: the floor for one hop.
//! * `chat/gateway_passthrough` — the gateway's router (`Gateway::router`) on an
//!   OpenAI backend: body sniffed, routed, key injected, usage read, record written.
//!   The difference from the floor is the gateway's own overhead.
//! * `chat/bare_handler_local` — the same handler answering without an upstream, for
//!   the size of the loopback hop itself.
//! * `miss/*` — a request the gateway layer passes to the application's own route,
//!   with and without the layer in front.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aigw_axum::client::{ClientSettings, HttpClient, build_client};
use aigw_axum::{Gateway, config, credentials};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::routing::{get, post};
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response, header};
use http_body_util::{BodyExt, Full};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

const REPLY: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Roll it out behind a canary with 5% of traffic and watch p99 latency and error ratio."},"finish_reason":"stop"}],"usage":{"prompt_tokens":120,"completion_tokens":24,"total_tokens":144}}"#;

fn config_yaml(upstream: SocketAddr) -> String {
    format!(
        r#"
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata: {{name: bench, namespace: default}}
spec:
  parentRefs: [{{name: bench, kind: Gateway, group: gateway.networking.k8s.io}}]
  rules:
    - matches: [{{headers: [{{type: Exact, name: x-ai-eg-model, value: bench-openai}}]}}]
      backendRefs: [{{name: up}}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata: {{name: up, namespace: default}}
spec:
  schema: {{name: OpenAI}}
  backendRef: {{name: up, kind: Backend, group: gateway.envoyproxy.io}}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: up, namespace: default}}
spec:
  endpoints: [{{ip: {{address: 127.0.0.1, port: {port}}}}}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: BackendSecurityPolicy
metadata: {{name: key, namespace: default}}
spec:
  targetRefs: [{{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: up}}]
  type: APIKey
  apiKey: {{secretRef: {{name: key}}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: key, namespace: default}}
type: Opaque
stringData: {{apiKey: sk-bench}}
"#,
        port = upstream.port()
    )
}

/// A minimal HTTP/1 upstream: every request is read whole and answered with [`REPLY`].
async fn upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let svc = hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async {
                let _ = req.into_body().collect().await;
                let mut r = Response::new(Full::new(Bytes::from_static(REPLY.as_bytes())));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                Ok::<_, Infallible>(r)
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc),
            );
        }
    });
    addr
}

#[derive(Clone)]
struct Forward {
    client: HttpClient,
    uri: Arc<str>,
}

/// What an application writes by hand: read the body, forward it with a key, return
/// the upstream's answer.
async fn forward(State(f): State<Forward>, body: Bytes) -> Response<Body> {
    let req = Request::post(&*f.uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, "Bearer sk-bench")
        .body(Full::new(body))
        .unwrap();
    let response = f.client.request(req).await.unwrap();
    let (parts, incoming) = response.into_parts();
    let body = incoming.collect().await.unwrap().to_bytes();
    Response::from_parts(parts, Body::from(body))
}

async fn local(_body: Bytes) -> Response<Body> {
    let mut r = Response::new(Body::from(REPLY));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn chat_request() -> Request<Body> {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../benches/e2e/body-openai.json"
    ))
    .unwrap();
    Request::post("/v1/chat/completions")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, "Bearer sk-client")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .unwrap()
}

async fn call(router: &Router, req: Request<Body>) -> usize {
    let response = router.clone().oneshot(req).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .len()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (gateway, bare, bare_local) = rt.block_on(async {
        let addr = upstream().await;
        let cfg = aigw_core::config::Config::from_yaml_str(&config_yaml(addr), "bench").unwrap();
        let snapshot = config::snapshot(
            &cfg,
            Arc::new(aigw_providers::ProviderFactory),
            &credentials::default_resolver(),
        )
        .unwrap();
        let gateway = Gateway::builder(snapshot).build().unwrap();
        let state = Forward {
            client: build_client(&ClientSettings::default()).unwrap(),
            uri: format!("http://{addr}/v1/chat/completions").into(),
        };
        let bare = Router::new()
            .route("/v1/chat/completions", post(forward))
            .with_state(state);
        let bare_local = Router::new().route("/v1/chat/completions", post(local));
        (gateway, bare, bare_local)
    });
    let router = gateway.router();
    // Connections pooled, lazy state built, before measuring.
    for r in [&router, &bare, &bare_local] {
        for _ in 0..100 {
            rt.block_on(call(r, chat_request()));
        }
    }
    let mut g = c.benchmark_group("chat");
    g.bench_function("bare_handler_forward", |b| {
        b.iter_batched(
            chat_request,
            |req| rt.block_on(call(&bare, req)),
            criterion::BatchSize::SmallInput,
        );
    });
    g.bench_function("gateway_passthrough", |b| {
        b.iter_batched(
            chat_request,
            |req| rt.block_on(call(&router, req)),
            criterion::BatchSize::SmallInput,
        );
    });
    g.bench_function("bare_handler_local", |b| {
        b.iter_batched(
            chat_request,
            |req| rt.block_on(call(&bare_local, req)),
            criterion::BatchSize::SmallInput,
        );
    });
    g.finish();

    let app = Router::new().route("/hello", get(|| async { "hello" }));
    let layered = app.clone().layer(gateway.layer());
    let hello = || Request::get("/hello").body(Body::empty()).unwrap();
    let mut g = c.benchmark_group("miss");
    g.bench_function("bare_route", |b| {
        b.iter_batched(
            hello,
            |req| rt.block_on(call(&app, req)),
            criterion::BatchSize::SmallInput,
        );
    });
    g.bench_function("behind_gateway_layer", |b| {
        b.iter_batched(
            hello,
            |req| rt.block_on(call(&layered, req)),
            criterion::BatchSize::SmallInput,
        );
    });
    g.finish();
}

criterion_group! {
    name = layer;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(layer);
