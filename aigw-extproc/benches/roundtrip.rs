//! aigw-extproc against the gRPC round-trip floor.
//!
//! One request as Envoy sends it to an ExtProc in upstream's two-stage setup: a router
//! stream (request headers, request body), an upstream stream (request headers with
//! the per-rule backend), then the router stream again (response headers, response
//! body) — five messages, each awaited before the next, over loopback TCP with the
//! server settings `aigw-extproc` serves with (`server::serve_grpc`).
//!
//! * `request/echo` — a bare tonic `ExternalProcessor` that answers every message
//!   with an empty `ProcessingResponse`: gRPC, HTTP/2 and prost alone, the floor.
//! * `request/aigw_extproc` — the same five messages through `aigw-extproc`'s
//!   processor, on a configuration with one OpenAI backend (API key injected, usage
//!   read from the response, cost metadata emitted).
//! * `message/*` — one request-headers round trip on an open stream, the per-message
//!   floor and the processor's cost for its cheapest message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aigw_core::config::{Config, SecretSource};
use aigw_core::limits::RateLimits;
use aigw_core::planner::{Inputs, Planner};
use aigw_extproc::Processor;
use aigw_extproc::config::runtime_from;
use aigw_extproc::metrics::Metrics;
use aigw_extproc::server::{Bound, ListenAddr, serve_grpc};
use arc_swap::ArcSwap;
use criterion::{Criterion, criterion_group, criterion_main};
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_client::ExternalProcessorClient;
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::{
    ExternalProcessor, ExternalProcessorServer,
};
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Msg;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    HttpBody, HttpHeaders, ProcessingRequest, ProcessingResponse,
};
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use futures::StreamExt;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

const CONFIG: &str = r#"
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata: {name: bench, namespace: default}
spec:
  parentRefs: [{name: bench, kind: Gateway, group: gateway.networking.k8s.io}]
  rules:
    - matches: [{headers: [{type: Exact, name: x-ai-eg-model, value: bench-openai}]}]
      backendRefs: [{name: up}]
  llmRequestCosts:
    - {metadataKey: llm_total_token, type: TotalToken}
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata: {name: up, namespace: default}
spec:
  schema: {name: OpenAI}
  backendRef: {name: up, kind: Backend, group: gateway.envoyproxy.io}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: up, namespace: default}
spec:
  endpoints: [{ip: {address: 127.0.0.1, port: 9}}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: BackendSecurityPolicy
metadata: {name: key, namespace: default}
spec:
  targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: up}]
  type: APIKey
  apiKey: {secretRef: {name: key}}
---
apiVersion: v1
kind: Secret
metadata: {name: key, namespace: default}
type: Opaque
stringData: {apiKey: sk-bench}
"#;

const REPLY: &[u8] = br#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Roll it out behind a canary with 5% of traffic and watch p99 latency and error ratio."},"finish_reason":"stop"}],"usage":{"prompt_tokens":120,"completion_tokens":24,"total_tokens":144}}"#;

/// The floor: answers every message at once with an empty response.
struct Echo;

type Replies = Pin<Box<dyn futures::Stream<Item = Result<ProcessingResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ExternalProcessor for Echo {
    type ProcessStream = Replies;

    async fn process(
        &self,
        request: Request<Streaming<ProcessingRequest>>,
    ) -> Result<Response<Replies>, Status> {
        let inbound = request.into_inner();
        let out = inbound.map(|m| m.map(|_| ProcessingResponse::default()));
        Ok(Response::new(Box::pin(out)))
    }
}

fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    HeaderMap {
        headers: pairs
            .iter()
            .map(|(k, v)| HeaderValue {
                key: (*k).into(),
                value: String::new(),
                raw_value: v.as_bytes().to_vec(),
            })
            .collect(),
    }
}

fn headers_msg(pairs: &[(&str, &str)], response: bool) -> ProcessingRequest {
    let h = HttpHeaders {
        headers: Some(header_map(pairs)),
        end_of_stream: false,
        ..Default::default()
    };
    ProcessingRequest {
        request: Some(if response {
            Msg::ResponseHeaders(h)
        } else {
            Msg::RequestHeaders(h)
        }),
        ..Default::default()
    }
}

fn body_msg(body: &[u8], response: bool) -> ProcessingRequest {
    let b = HttpBody {
        body: body.to_vec(),
        end_of_stream: true,
        ..Default::default()
    };
    ProcessingRequest {
        request: Some(if response {
            Msg::ResponseBody(b)
        } else {
            Msg::RequestBody(b)
        }),
        ..Default::default()
    }
}

const REQUEST_ID: &str = aigw_extproc::wire::INTERNAL_REQUEST_ID;

fn router_headers() -> ProcessingRequest {
    headers_msg(
        &[
            (":path", "/v1/chat/completions"),
            (":method", "POST"),
            (":authority", "gw"),
            ("x-request-id", "rid-1"),
            ("authorization", "Bearer client-key"),
            ("content-type", "application/json"),
        ],
        false,
    )
}

fn upstream_headers(id: &str, backend: &str) -> ProcessingRequest {
    let mut r = headers_msg(
        &[
            (":path", "/v1/chat/completions"),
            (":method", "POST"),
            (":authority", "127.0.0.1:9"),
            ("authorization", "Bearer client-key"),
            ("content-type", "application/json"),
            ("x-ai-eg-model", "bench-openai"),
            (REQUEST_ID, id),
        ],
        false,
    );
    let fields = [(
        aigw_extproc::wire::ATTR_HOST_BACKEND.to_owned(),
        Value {
            kind: Some(Kind::StringValue(backend.into())),
        },
    )];
    let mut attributes = HashMap::new();
    attributes.insert(
        "envoy.filters.http.ext_proc".to_owned(),
        Struct {
            fields: fields.into_iter().collect(),
        },
    );
    r.attributes = attributes;
    r
}

/// The internal request id the router stream handed Envoy (the echo sends none).
fn request_id(r: &ProcessingResponse) -> Option<String> {
    use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response as Reply;
    let Some(Reply::RequestHeaders(h)) = r.response.as_ref() else {
        return None;
    };
    h.response
        .as_ref()?
        .header_mutation
        .as_ref()?
        .set_headers
        .iter()
        .filter_map(|o| o.header.as_ref())
        .find(|h| h.key == REQUEST_ID)
        .map(|h| String::from_utf8_lossy(&h.raw_value).into_owned())
}

struct Stream {
    tx: mpsc::Sender<ProcessingRequest>,
    rx: Streaming<ProcessingResponse>,
}

impl Stream {
    async fn open(client: &mut ExternalProcessorClient<Channel>) -> Self {
        let (tx, rx) = mpsc::channel(4);
        let rx = client
            .process(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        Self { tx, rx }
    }

    async fn send(&mut self, m: ProcessingRequest) -> ProcessingResponse {
        self.tx.send(m).await.unwrap();
        self.rx.message().await.unwrap().unwrap()
    }
}

struct Setup {
    client: ExternalProcessorClient<Channel>,
    body: Vec<u8>,
    backend: String,
}

/// One request's five messages on two streams, as Envoy sends them.
async fn request(s: &mut Setup) {
    let mut router = Stream::open(&mut s.client).await;
    let r = router.send(router_headers()).await;
    let id = request_id(&r).unwrap_or_else(|| "rid-1-0".into());
    router.send(body_msg(&s.body, false)).await;
    let mut up = Stream::open(&mut s.client).await;
    up.send(upstream_headers(&id, &s.backend)).await;
    drop(up);
    router
        .send(headers_msg(
            &[(":status", "200"), ("content-type", "application/json")],
            true,
        ))
        .await;
    router.send(body_msg(REPLY, true)).await;
}

async fn connect(addr: SocketAddr) -> ExternalProcessorClient<Channel> {
    ExternalProcessorClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20)
}

async fn serve_echo() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .initial_stream_window_size(Some(1 << 20))
            .initial_connection_window_size(Some(16 << 20))
            .add_service(ExternalProcessorServer::new(Echo))
            .serve_with_incoming(incoming),
    );
    addr
}

async fn serve_aigw() -> (SocketAddr, String) {
    let config = Config::from_yaml_str(CONFIG, "bench").unwrap();
    let planner = Planner::compile(
        &config,
        Inputs {
            secrets: &SecretSource::from_config(&config),
            credentials: &aigw_extproc::config::resolver(Default::default()),
            providers: None,
            limits: &RateLimits::default(),
        },
    )
    .unwrap();
    let backend = planner.targets().next().unwrap().0.to_owned();
    let runtime = runtime_from(Arc::new(planner));
    let processor = Processor::new(
        Arc::new(ArcSwap::from_pointee(runtime)),
        Arc::new(Metrics::default()),
    );
    let bound = Bound::bind(&ListenAddr::parse("127.0.0.1:0").unwrap())
        .await
        .unwrap();
    let Some(ListenAddr::Tcp(addr)) = bound.local_addr() else {
        panic!("not a TCP listener")
    };
    tokio::spawn(serve_grpc(
        bound,
        processor,
        64 << 20,
        Arc::new(AtomicBool::new(false)),
        std::future::pending(),
    ));
    (addr, backend)
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../benches/e2e/body-openai.json"
    ))
    .unwrap();
    let (mut echo, mut aigw) = rt.block_on(async {
        let echo_addr = serve_echo().await;
        let (aigw_addr, backend) = serve_aigw().await;
        (
            Setup {
                client: connect(echo_addr).await,
                body: body.clone(),
                backend: backend.clone(),
            },
            Setup {
                client: connect(aigw_addr).await,
                body,
                backend,
            },
        )
    });
    for s in [&mut echo, &mut aigw] {
        for _ in 0..100 {
            rt.block_on(request(s));
        }
    }
    let mut g = c.benchmark_group("request");
    g.bench_function("echo", |b| b.iter(|| rt.block_on(request(&mut echo))));
    g.bench_function("aigw_extproc", |b| {
        b.iter(|| rt.block_on(request(&mut aigw)))
    });
    g.finish();

    // One message on a stream kept open: the processor answers a router stream's
    // request headers with CONTINUE and an id, and a stream takes one headers message
    // only, so each iteration opens a fresh stream on both sides.
    let mut g = c.benchmark_group("message");
    for (name, s) in [("echo", &mut echo), ("aigw_extproc", &mut aigw)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut st = Stream::open(&mut s.client).await;
                    st.send(router_headers()).await;
                })
            });
        });
    }
    g.finish();
}

criterion_group! {
    name = roundtrip;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(roundtrip);
