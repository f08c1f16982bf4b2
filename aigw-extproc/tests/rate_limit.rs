//! Token rate limits at the protocol level: the processor over a configuration shaped
//! like upstream's `token_ratelimit` example, driven with the message sequences Envoy
//! sends (router-level stream, upstream-level stream per attempt), the counters read
//! straight from the store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aigw_core::config::Config;
use aigw_core::limits::RateLimits;
use aigw_core::limits::{
    Increment, LimitStats, LimitStore, MemoryStore, RateLimitMeter, bucket_key, window_start,
};
use aigw_extproc::config::{ConfigCatalog, runtime_for};
use aigw_extproc::metrics::Metrics;
use aigw_extproc::server::{Bound, ListenAddr, serve_grpc};
use aigw_extproc::{Processor, Runtime, wire};
use arc_swap::ArcSwap;
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_client::ExternalProcessorClient;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Msg;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response as Reply;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    HttpBody, HttpHeaders, ImmediateResponse, ProcessingRequest, ProcessingResponse,
};
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

/// Total tokens per tenant per hour.
const BUDGET: u64 = 30;
const OPENAI_BACKEND: &str = "default/openai/route/limited/rule/0/ref/0";
const ANTHROPIC_BACKEND: &str = "default/anthropic/route/limited/rule/1/ref/0";

fn yaml(rules: &str) -> String {
    // Never dialled: the processor only translates.
    rate_limit_yaml(9, rules)
}

/// The shared rate-limit test configuration with the simulator's port and `rules`.
fn rate_limit_yaml(sim_port: u16, rules: &str) -> String {
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../aigw-core/tests/fixtures/config/rate-limit.yaml.in"
    ))
    .replace("SIM_PORT", &sim_port.to_string())
    .replace("RULES", rules)
}

fn token_rules() -> String {
    format!(
        r#"
        - clientSelectors: [{{headers: [{{name: x-tenant-id, type: Distinct}}]}}]
          limit: {{requests: {BUDGET}, unit: Hour}}
          cost:
            request: {{from: Number, number: 0}}
            response:
              from: Metadata
              metadata: {{namespace: io.envoy.ai_gateway, key: llm_total_token}}"#
    )
}

fn config(rules: &str) -> Config {
    Config::from_yaml_str(&yaml(rules), "rate-limit.yaml").unwrap()
}

struct Harness {
    client: ExternalProcessorClient<Channel>,
    store: Arc<MemoryStore>,
}

async fn serve(runtime: Runtime) -> ExternalProcessorClient<Channel> {
    let processor = Processor::new(
        Arc::new(ArcSwap::from_pointee(runtime)),
        Arc::new(Metrics::default()),
    );
    let bound = Bound::bind(&ListenAddr::parse("127.0.0.1:0").unwrap())
        .await
        .unwrap();
    let Some(ListenAddr::Tcp(addr)) = bound.local_addr() else {
        panic!("tcp")
    };
    tokio::spawn(serve_grpc(
        bound,
        processor,
        64 << 20,
        Arc::new(AtomicBool::new(false)),
        std::future::pending(),
    ));
    ExternalProcessorClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

/// The processor over `rules`, counting in a store the test can read.
async fn start(rules: &str) -> Harness {
    let config = config(rules);
    let store = Arc::new(MemoryStore::default());
    let meter = RateLimitMeter::from_config(
        &config,
        store.clone(),
        store.clone(),
        Arc::new(LimitStats::default()),
    )
    .unwrap();
    let runtime = Runtime::new(
        Arc::new(ConfigCatalog::new(&config).unwrap()),
        Arc::new(aigw_providers::ProviderFactory),
    )
    .with_meter(Arc::new(meter));
    Harness {
        client: serve(runtime).await,
        store,
    }
}

struct Stream {
    tx: mpsc::Sender<ProcessingRequest>,
    rx: Streaming<ProcessingResponse>,
}

async fn open(client: &mut ExternalProcessorClient<Channel>) -> Stream {
    let (tx, rx) = mpsc::channel(8);
    let rx = client
        .process(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    Stream { tx, rx }
}

impl Stream {
    async fn send(&mut self, req: ProcessingRequest) -> ProcessingResponse {
        self.tx.send(req).await.unwrap();
        self.rx.message().await.unwrap().expect("a reply")
    }
}

fn hmap(pairs: &[(&str, &str)]) -> HeaderMap {
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

fn attributes(name: &str, value: &str) -> HashMap<String, Struct> {
    let mut fields = std::collections::BTreeMap::new();
    fields.insert(
        name.to_owned(),
        Value {
            kind: Some(Kind::StringValue(value.into())),
        },
    );
    [(
        "envoy.filters.http.ext_proc".to_owned(),
        Struct {
            fields: fields.into_iter().collect(),
        },
    )]
    .into_iter()
    .collect()
}

fn headers_msg(pairs: &[(&str, &str)]) -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Msg::RequestHeaders(HttpHeaders {
            headers: Some(hmap(pairs)),
            end_of_stream: false,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn body_msg(body: &[u8], response: bool, eos: bool) -> ProcessingRequest {
    let b = HttpBody {
        body: body.to_vec(),
        end_of_stream: eos,
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

fn set_header(r: &ProcessingResponse, name: &str) -> Option<String> {
    let c = match r.response.as_ref()? {
        Reply::RequestHeaders(h) | Reply::ResponseHeaders(h) => h.response.as_ref()?,
        Reply::RequestBody(b) | Reply::ResponseBody(b) => b.response.as_ref()?,
        _ => return None,
    };
    c.header_mutation
        .as_ref()?
        .set_headers
        .iter()
        .filter_map(|o| o.header.as_ref())
        .find(|h| h.key == name)
        .map(|h| String::from_utf8(h.raw_value.clone()).unwrap())
}

fn immediate(r: &ProcessingResponse) -> Option<&ImmediateResponse> {
    match r.response.as_ref()? {
        Reply::ImmediateResponse(i) => Some(i),
        _ => None,
    }
}

fn immediate_header(i: &ImmediateResponse, name: &str) -> Option<String> {
    i.headers
        .as_ref()?
        .set_headers
        .iter()
        .filter_map(|o| o.header.as_ref())
        .find(|h| h.key == name)
        .map(|h| String::from_utf8(h.raw_value.clone()).unwrap())
}

/// A client request as the router-level filter sees it.
struct Call<'a> {
    path: &'a str,
    body: serde_json::Value,
    tenant: Option<&'a str>,
    address: &'a str,
}

impl<'a> Call<'a> {
    fn chat(tenant: &'a str) -> Self {
        Self {
            path: "/v1/chat/completions",
            body: json!({"model": "gpt-sim", "messages": [{"role": "user", "content": "hi"}]}),
            tenant: Some(tenant),
            address: "10.0.0.5:41000",
        }
    }

    fn messages(tenant: &'a str, stream: bool) -> Self {
        Self {
            path: "/v1/messages",
            body: json!({"model": "claude-sim", "max_tokens": 64, "stream": stream,
                "messages": [{"role": "user", "content": "hi"}]}),
            tenant: Some(tenant),
            address: "10.0.0.5:41000",
        }
    }
}

/// The request phase on a fresh router stream: `Ok((stream, internal id))` when the
/// request goes on to Envoy's router, `Err(reply)` with the local reply otherwise.
async fn request(
    client: &mut ExternalProcessorClient<Channel>,
    call: &Call<'_>,
) -> Result<(Stream, String), ProcessingResponse> {
    let mut router = open(client).await;
    let mut pairs = vec![
        (":path", call.path),
        (":method", "POST"),
        (":authority", "gw.test"),
        ("content-type", "application/json"),
    ];
    if let Some(t) = call.tenant {
        pairs.push(("x-tenant-id", t));
    }
    let mut msg = headers_msg(&pairs);
    msg.attributes = attributes(wire::ATTR_SOURCE_ADDRESS, call.address);
    let r = router.send(msg).await;
    let id = set_header(&r, wire::INTERNAL_REQUEST_ID).expect("internal id");
    let r = router
        .send(body_msg(call.body.to_string().as_bytes(), false, true))
        .await;
    if immediate(&r).is_some() {
        return Err(r);
    }
    assert_eq!(
        set_header(&r, wire::MODEL_HEADER).as_deref(),
        Some(call.body["model"].as_str().unwrap())
    );
    Ok((router, id))
}

/// The upstream-level filter's one message for an attempt.
async fn attempt(client: &mut ExternalProcessorClient<Channel>, id: &str, backend: &str) {
    let mut up = open(client).await;
    let mut msg = headers_msg(&[
        (":path", "/v1/chat/completions"),
        (":method", "POST"),
        (":authority", "127.0.0.1:9"),
        ("content-type", "application/json"),
        (wire::INTERNAL_REQUEST_ID, id),
    ]);
    msg.attributes = attributes(wire::ATTR_HOST_BACKEND, backend);
    let r = up.send(msg).await;
    assert!(immediate(&r).is_none(), "{r:?}");
}

/// A whole chat completion that reports `total` tokens; `None` when refused (the 429).
async fn chat(
    client: &mut ExternalProcessorClient<Channel>,
    tenant: &str,
    total: u64,
) -> Result<(), ProcessingResponse> {
    let (mut router, id) = request(client, &Call::chat(tenant)).await?;
    attempt(client, &id, OPENAI_BACKEND).await;
    let mut h = headers_msg(&[(":status", "200"), ("content-type", "application/json")]);
    if let Some(Msg::RequestHeaders(x)) = h.request.take() {
        h.request = Some(Msg::ResponseHeaders(x));
    }
    router.send(h).await;
    let body = json!({
        "id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-sim",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 2, "completion_tokens": total - 2, "total_tokens": total}
    });
    let r = router
        .send(body_msg(body.to_string().as_bytes(), true, true))
        .await;
    assert!(r.dynamic_metadata.is_some(), "cost metadata at the end");
    Ok(())
}

/// The tokens counted in `tenant`'s bucket for the current window.
async fn spent(store: &MemoryStore, tenant: &str) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let start = window_start(now, 3600);
    let base = format!("aigw_default/token-limits_0_default/limited_x-tenant-id={tenant}");
    store
        .incr(
            now,
            &[Increment {
                key: bucket_key(&base, start),
                cost: 0,
                expires_at: start + 3600,
            }],
        )
        .await
        .unwrap()[0]
}

fn assert_429(r: &ProcessingResponse) -> serde_json::Value {
    let i = immediate(r).unwrap_or_else(|| panic!("not a local reply: {r:?}"));
    assert_eq!(i.status.as_ref().unwrap().code, 429);
    let after: u64 = immediate_header(i, "retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&after), "Retry-After {after}");
    assert_eq!(
        immediate_header(i, "x-envoy-ratelimited").as_deref(),
        Some("true")
    );
    assert_eq!(
        immediate_header(i, "content-type").as_deref(),
        Some("application/json")
    );
    serde_json::from_slice(&i.body).unwrap()
}

#[tokio::test]
async fn tenant_budget_is_spent_then_refused_in_the_request_phase() {
    let mut h = start(&token_rules()).await;

    // Each answer reports 12 tokens: a check-only request cost lets requests in while
    // the bucket is under 30, so the fourth is the first refused.
    for n in 1..=3 {
        chat(&mut h.client, "tenant-a", 12)
            .await
            .unwrap_or_else(|r| panic!("request {n} refused: {r:?}"));
        assert_eq!(spent(&h.store, "tenant-a").await, 12 * n);
    }
    let refused = chat(&mut h.client, "tenant-a", 12).await.unwrap_err();
    let body = assert_429(&refused);
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("30 per hour"),
        "{body}"
    );
    // A refusal costs nothing (request cost 0) and no upstream attempt was made.
    assert_eq!(spent(&h.store, "tenant-a").await, 36);

    // The Anthropic API answers in its own error shape from the same bucket.
    let refused = request(&mut h.client, &Call::messages("tenant-a", false))
        .await
        .map(|_| ())
        .unwrap_err();
    let body = assert_429(&refused);
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");

    // Another tenant has its own budget; a request without the header is not limited.
    for _ in 0..3 {
        chat(&mut h.client, "tenant-b", 12).await.unwrap();
    }
    assert_eq!(spent(&h.store, "tenant-b").await, 36);
    let mut anonymous = Call::chat("unused");
    anonymous.tenant = None;
    assert!(request(&mut h.client, &anonymous).await.is_ok());
}

#[tokio::test]
async fn cancelled_stream_is_charged_the_tokens_seen() {
    let mut h = start(&token_rules()).await;
    let (mut router, id) = request(&mut h.client, &Call::messages("tenant-c", true))
        .await
        .unwrap();
    attempt(&mut h.client, &id, ANTHROPIC_BACKEND).await;
    let mut head = headers_msg(&[(":status", "200"), ("content-type", "text/event-stream")]);
    if let Some(Msg::RequestHeaders(x)) = head.request.take() {
        head.request = Some(Msg::ResponseHeaders(x));
    }
    router.send(head).await;
    let start = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m1\",\"type\":\"message\",\"role\":\"assistant\",",
        "\"model\":\"claude-sim\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,",
        "\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n"
    );
    let r = router.send(body_msg(start.as_bytes(), true, false)).await;
    assert!(r.dynamic_metadata.is_none(), "the stream has not ended");
    assert_eq!(spent(&h.store, "tenant-c").await, 0, "charged at the end");

    // The client hangs up: Envoy cancels the ext_proc stream mid-response.
    drop(router);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = spent(&h.store, "tenant-c").await;
        if n > 0 {
            // input 10 + output 1 seen so far: the route's llm_total_token.
            assert_eq!(n, 11);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a cancelled stream was never charged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And the charge counts against the budget: 11 + 12 + 12 leaves no room.
    chat(&mut h.client, "tenant-c", 12).await.unwrap();
    chat(&mut h.client, "tenant-c", 12).await.unwrap();
    assert_429(&chat(&mut h.client, "tenant-c", 12).await.unwrap_err());
}

/// `sourceCIDR` selectors match the address Envoy reports as `source.address`.
#[tokio::test]
async fn client_address_comes_from_the_source_address_attribute() {
    let rules = r#"
        - clientSelectors: [{sourceCIDR: {type: Distinct, value: 10.0.0.0/8}}]
          limit: {requests: 2, unit: Hour}"#;
    let mut h = start(rules).await;
    fn from(address: &str) -> Call<'_> {
        Call {
            address,
            ..Call::chat("any")
        }
    }
    assert!(request(&mut h.client, &from("10.0.0.5:1000")).await.is_ok());
    assert!(request(&mut h.client, &from("10.0.0.5:1001")).await.is_ok());
    let refused = request(&mut h.client, &from("10.0.0.5:1002"))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_429(&refused);
    // Another address in the range has its own budget; one outside is not limited.
    assert!(request(&mut h.client, &from("10.9.9.9:1000")).await.is_ok());
    for port in 0..4 {
        let addr = format!("192.0.2.1:{port}");
        assert!(request(&mut h.client, &from(&addr)).await.is_ok());
    }
    assert!(
        request(&mut h.client, &from("[2001:db8::1]:443"))
            .await
            .is_ok()
    );
}

/// Runtimes built over the same [`RateLimits`] (what a reload does) share the counters.
#[tokio::test]
async fn reloaded_runtime_keeps_the_spent_budget() {
    let config = config(&token_rules());
    let limits = RateLimits::default();
    let mut first = serve(runtime_for(&config, None, &limits).unwrap()).await;
    for _ in 0..3 {
        chat(&mut first, "tenant-a", 12).await.unwrap();
    }
    assert_429(&chat(&mut first, "tenant-a", 12).await.unwrap_err());
    let mut reloaded = serve(runtime_for(&config, None, &limits).unwrap()).await;
    assert_429(&chat(&mut reloaded, "tenant-a", 12).await.unwrap_err());
    chat(&mut reloaded, "tenant-b", 12).await.unwrap();
    assert!(limits.stats().over_limit.load(Ordering::Relaxed) >= 2);
    assert!(limits.stats().ok.load(Ordering::Relaxed) >= 4);
}
