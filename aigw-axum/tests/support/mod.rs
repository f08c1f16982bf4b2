//! Shared pieces of the gateway's integration tests: a scripted upstream, a test
//! translator (OpenAI passthrough with usage extraction), a static planner and a
//! recording meter.
#![allow(
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code
)]

use aigw_axum::{Gateway, ModelEntry, RecordSink, RetryPolicy, RoutePlanner, Settings, Snapshot};
use aigw_core::api::Endpoint;
use aigw_core::exchange::{BodyMutation, ExchangeRecord, Plan, Target, UpstreamAddr};
use aigw_core::meter::{MeterRequest, Reservation, Settlement, TokenMeter};
use aigw_core::translate::TranslatorSpec;
use aigw_core::{
    ApiSchema, BodyChange, Error, ErrorResponse, HeaderMutation, RequestContext, ResponseChunk,
    Result, TokenUsage, Translator, TranslatorFactory, UpstreamRequest, VersionedSchema,
};
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What a scripted upstream does with every request.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// A chat completion (JSON or SSE by the request's `stream`), `chunks` content
    /// chunks `interval` apart, usage 10 in / `chunks` out.
    Ok { chunks: usize, interval: Duration },
    /// An error status with an OpenAI error body and an optional `Retry-After`.
    Status(u16, Option<&'static str>),
    /// 200 and a body that is not JSON.
    Malformed,
    /// Stream headers and one chunk, then the connection is closed mid-body.
    ResetMidStream,
    /// Stream headers, then nothing (`first` chunks sent before the stall).
    Stall { first: usize },
    /// 200 with this content type and body, sent in two parts.
    Raw {
        content_type: &'static str,
        body: Bytes,
    },
}

/// A scripted upstream on a loopback port.
pub struct Upstream {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    /// Set when a streamed body is dropped before its end (the gateway hung up).
    pub cancelled: Arc<AtomicBool>,
    /// Request bodies received.
    pub bodies: Arc<Mutex<Vec<Bytes>>>,
}

struct CancelFlag(Arc<AtomicBool>, bool);
impl Drop for CancelFlag {
    fn drop(&mut self) {
        if !self.1 {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

fn sse_chunk(i: usize) -> String {
    format!(
        "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up-model\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"finish_reason\":null}}]}}\n\n"
    )
}

fn sse_usage(out: usize) -> String {
    format!(
        "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up-model\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}],\"usage\":{{\"prompt_tokens\":10,\"completion_tokens\":{out},\"total_tokens\":{}}}}}\n\ndata: [DONE]\n\n",
        10 + out
    )
}

fn completion(chunks: usize) -> String {
    let content: String = (0..chunks).map(|i| format!("tok{i} ")).collect();
    serde_json::json!({
        "id": "c1", "object": "chat.completion", "created": 1, "model": "up-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": chunks, "total_tokens": 10 + chunks},
    })
    .to_string()
}

/// Starts an upstream with a fixed behaviour.
pub async fn upstream(behavior: Behavior) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let cancelled = Arc::new(AtomicBool::new(false));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let up = Upstream {
        addr,
        hits: hits.clone(),
        cancelled: cancelled.clone(),
        bodies: bodies.clone(),
    };
    match behavior {
        Behavior::ResetMidStream => {
            tokio::spawn(async move {
                loop {
                    let (mut sock, _) = listener.accept().await.unwrap();
                    hits.fetch_add(1, Ordering::SeqCst);
                    let mut buf = vec![0u8; 65536];
                    let _ = sock.read(&mut buf).await;
                    let chunk = sse_chunk(0);
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n",
                        chunk.len()
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    drop(sock);
                }
            });
        }
        other => {
            let app = axum::Router::new().fallback(move |body: Bytes| {
                let other = other.clone();
                let hits = hits.clone();
                let cancelled = cancelled.clone();
                let bodies = bodies.clone();
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    bodies.lock().unwrap().push(body.clone());
                    let stream = serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["stream"].as_bool())
                        .unwrap_or(false);
                    respond(other, stream, cancelled)
                }
            });
            tokio::spawn(async move {
                axum::serve(listener, app).await.unwrap();
            });
        }
    }
    up
}

fn respond(b: Behavior, stream: bool, cancelled: Arc<AtomicBool>) -> Response<Body> {
    let json = |status: u16, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    match b {
        Behavior::Status(code, retry_after) => {
            let mut r = json(
                code,
                serde_json::json!({"error": {"message": format!("scripted {code}"), "type": "server_error", "param": null, "code": null}}).to_string(),
            );
            if let Some(ra) = retry_after {
                r.headers_mut().insert("retry-after", ra.parse().unwrap());
            }
            r
        }
        Behavior::Malformed => json(200, "{\"id\": \"c1\", \"choices\": [".into()),
        Behavior::Ok { chunks, interval } if !stream => {
            let _ = interval;
            json(200, completion(chunks))
        }
        Behavior::Ok { chunks, interval } => {
            let guard = CancelFlag(cancelled, false);
            let s = futures::stream::unfold((0usize, guard), move |(i, mut g)| async move {
                if i > chunks {
                    return None;
                }
                if i > 0 {
                    tokio::time::sleep(interval).await;
                }
                let text = if i < chunks {
                    sse_chunk(i)
                } else {
                    g.1 = true;
                    sse_usage(chunks)
                };
                Some((
                    Ok::<_, std::convert::Infallible>(Bytes::from(text)),
                    (i + 1, g),
                ))
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(s))
                .unwrap()
        }
        Behavior::Stall { first } => {
            let s = futures::stream::unfold(0usize, move |i| async move {
                if i >= first {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                Some((
                    Ok::<_, std::convert::Infallible>(Bytes::from(sse_chunk(i))),
                    i + 1,
                ))
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(s))
                .unwrap()
        }
        Behavior::Raw { content_type, body } => {
            let half = body.len() / 2;
            let parts = vec![body.slice(..half), body.slice(half..)];
            let s = futures::stream::iter(parts.into_iter().map(Ok::<_, std::convert::Infallible>));
            Response::builder()
                .header("content-type", content_type)
                .body(Body::from_stream(s))
                .unwrap()
        }
        Behavior::ResetMidStream => json(500, String::new()),
    }
}

/// An address nothing listens on.
pub async fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

/// OpenAI passthrough that reads usage and model from JSON or SSE responses.
#[derive(Default)]
pub struct PassthroughTranslator {
    buf: Vec<u8>,
    usage: TokenUsage,
    model: Option<String>,
    streaming: bool,
}

impl PassthroughTranslator {
    fn absorb(&mut self, v: &serde_json::Value) {
        if let Some(m) = v["model"].as_str() {
            self.model = Some(m.to_owned());
        }
        let u = &v["usage"];
        if u.is_object() {
            self.usage.update(&TokenUsage {
                input: u["prompt_tokens"].as_u64(),
                output: u["completion_tokens"].as_u64(),
                total: u["total_tokens"].as_u64(),
                ..Default::default()
            });
        }
    }
}

impl Translator for PassthroughTranslator {
    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        self.streaming = req.info.stream;
        Ok(UpstreamRequest {
            method: Method::POST,
            path: "/v1/chat/completions".into(),
            headers: HeaderMutation::default(),
            body: BodyChange::Unchanged,
        })
    }
    fn response_headers(&mut self, _s: StatusCode, _h: &HeaderMap) -> Result<HeaderMutation> {
        Ok(HeaderMutation::default())
    }
    fn response_chunk(&mut self, chunk: &[u8], end: bool) -> Result<ResponseChunk> {
        if self.streaming {
            self.buf.extend_from_slice(chunk);
            while let Some(pos) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = self.buf.drain(..pos + 2).collect();
                let text = String::from_utf8_lossy(&event);
                for line in text.lines() {
                    if let Some(data) = line.strip_prefix("data: ")
                        && data != "[DONE]"
                    {
                        let v: serde_json::Value = serde_json::from_str(data)
                            .map_err(|e| Error::malformed_upstream(e.to_string()))?;
                        self.absorb(&v);
                    }
                }
            }
            if end && !self.buf.is_empty() {
                return Err(Error::malformed_upstream("stream ended inside an event"));
            }
        } else {
            let v: serde_json::Value = serde_json::from_slice(chunk)
                .map_err(|e| Error::malformed_upstream(e.to_string()))?;
            self.absorb(&v);
        }
        Ok(ResponseChunk {
            body: None,
            usage: self.usage,
            response_model: self.model.clone(),
        })
    }
    fn response_error(
        &mut self,
        status: StatusCode,
        _h: &HeaderMap,
        body: &[u8],
    ) -> Result<ErrorResponse> {
        Ok(ErrorResponse {
            status,
            headers: HeaderMutation::default(),
            body: Bytes::copy_from_slice(body),
        })
    }
}

/// Builds [`PassthroughTranslator`]s.
pub struct PassthroughFactory;
impl TranslatorFactory for PassthroughFactory {
    fn translator(&self, _spec: &TranslatorSpec<'_>) -> Result<Box<dyn Translator>> {
        Ok(Box::new(PassthroughTranslator::default()))
    }
}

/// A planner with one route, for model `m`, over fixed targets.
pub struct StaticPlanner {
    pub targets: Vec<Target>,
    pub idle: Option<Duration>,
    pub timeout: Option<Duration>,
}

impl RoutePlanner for StaticPlanner {
    fn plan(&self, _e: Endpoint, model: &str, _h: &HeaderMap) -> Result<Plan> {
        if model != "m" {
            return Err(Error::NoRoute {
                model: model.to_owned(),
            });
        }
        Ok(Plan {
            route: Arc::from("default/r"),
            targets: self.targets.clone(),
            stream_idle_timeout: self.idle,
            request_timeout: self.timeout,
            per_try_timeout: None,
            costs: None,
            max_attempts: None,
            backoff: None,
            retry_on: None,
        })
    }
    fn models(&self) -> Vec<ModelEntry> {
        vec![ModelEntry {
            id: "m".into(),
            owned_by: "test".into(),
            created: 0,
        }]
    }
}

/// A target for an upstream address.
pub fn target(name: &str, addr: SocketAddr, priority: u32) -> Target {
    Target {
        backend: Arc::from(name),
        schema: VersionedSchema::new(ApiSchema::OpenAI),
        upstream: UpstreamAddr {
            scheme: "http".into(),
            authority: addr.to_string().into(),
        },
        model_override: None,
        headers: HeaderMutation::default(),
        body: BodyMutation::default(),
        credential: None,
        priority,
    }
}

/// Records reservations and settlements.
#[derive(Default)]
pub struct RecordingMeter {
    pub reserved: AtomicUsize,
    pub settled: Mutex<Vec<TokenUsage>>,
}

#[async_trait::async_trait]
impl TokenMeter for RecordingMeter {
    async fn reserve(&self, r: &MeterRequest<'_>) -> Result<Reservation> {
        self.reserved.fetch_add(1, Ordering::SeqCst);
        Ok(Reservation {
            id: 1,
            estimate: r.estimate,
            ..Reservation::default()
        })
    }
    fn settle(&self, _r: Reservation, s: &Settlement<'_>) {
        self.settled.lock().unwrap().push(*s.usage);
    }
}

/// Collects exchange records.
#[derive(Default, Clone)]
pub struct Records(pub Arc<Mutex<Vec<ExchangeRecord>>>);
impl RecordSink for Records {
    fn record(&self, record: &ExchangeRecord) {
        self.0.lock().unwrap().push(record.clone());
    }
}

/// A running gateway over the planner.
pub struct Harness {
    pub url: String,
    pub meter: Arc<RecordingMeter>,
    pub records: Records,
    pub gateway: Gateway,
}

pub async fn gateway(planner: StaticPlanner, settings: Settings) -> Harness {
    gateway_with(planner, settings, Arc::new(PassthroughFactory)).await
}

pub async fn gateway_with(
    planner: StaticPlanner,
    settings: Settings,
    factory: Arc<dyn TranslatorFactory>,
) -> Harness {
    gateway_over(Arc::new(planner), settings, factory).await
}

/// A running gateway over any planner.
pub async fn gateway_over(
    planner: Arc<dyn RoutePlanner>,
    settings: Settings,
    factory: Arc<dyn TranslatorFactory>,
) -> Harness {
    let meter = Arc::new(RecordingMeter::default());
    let records = Records::default();
    let snapshot = Snapshot::new(planner, factory).with_meter(meter.clone());
    let gateway = Gateway::builder(snapshot)
        .settings(settings)
        .record_sink(Arc::new(records.clone()))
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = gateway.router();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Harness {
        url: format!("http://{addr}"),
        meter,
        records,
        gateway,
    }
}

/// Fast retry settings for tests.
pub fn fast_settings() -> Settings {
    Settings {
        retry: RetryPolicy {
            max_attempts: 3,
            backoff: Duration::from_millis(10),
            retry_after_cap: Duration::from_secs(2),
        },
        ..Settings::default()
    }
}

/// Waits until `f` holds or a second passes.
pub async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}
