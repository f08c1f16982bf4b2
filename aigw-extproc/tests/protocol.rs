//! Drives the ext_proc gRPC service directly with the message sequences Envoy sends for
//! the router-level and upstream-level filters (see docs/deploy-envoy.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use aigw_core::TranslatorFactory;
use aigw_extproc::metrics::Metrics;
use aigw_extproc::server::{Bound, ListenAddr, serve_grpc};
use aigw_extproc::wire::{self, METADATA_NAMESPACE};
use aigw_extproc::{Processor, Runtime};
use arc_swap::ArcSwap;
use common::{OPENAI_BACKEND, OTHER_BACKEND, TestCatalog, TestFactory};
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::processing_mode::BodySendMode;
use envoy_types::pb::envoy::service::ext_proc::v3::common_response::ResponseStatus;
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_client::ExternalProcessorClient;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Msg;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response as Reply;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    CommonResponse, HttpBody, HttpHeaders, ProcessingRequest, ProcessingResponse, body_mutation,
};
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

struct Harness {
    client: ExternalProcessorClient<Channel>,
    processor: Processor,
    metrics: Arc<Metrics>,
}

async fn start() -> Harness {
    start_with(Arc::new(TestFactory)).await
}

async fn start_with(factory: Arc<dyn TranslatorFactory>) -> Harness {
    start_full(factory, aigw_core::telemetry::Telemetry::disabled()).await
}

async fn start_priced(
    factory: Arc<dyn TranslatorFactory>,
    spending: Option<Arc<aigw_core::budget::Spending>>,
) -> Harness {
    start_all(
        factory,
        aigw_core::telemetry::Telemetry::disabled(),
        spending,
    )
    .await
}

async fn start_full(
    factory: Arc<dyn TranslatorFactory>,
    telemetry: aigw_core::telemetry::Telemetry,
) -> Harness {
    start_all(factory, telemetry, None).await
}

async fn start_all(
    factory: Arc<dyn TranslatorFactory>,
    telemetry: aigw_core::telemetry::Telemetry,
    spending: Option<Arc<aigw_core::budget::Spending>>,
) -> Harness {
    let runtime = Runtime::new(
        Arc::new(TestCatalog {
            upstream: "upstream.test:443".into(),
        }),
        factory,
    );
    let metrics = Arc::new(Metrics::default());
    let mut processor = Processor::new(Arc::new(ArcSwap::from_pointee(runtime)), metrics.clone())
        .with_telemetry(telemetry);
    if let Some(s) = spending {
        processor = processor.with_spending(s);
    }
    let bound = Bound::bind(&ListenAddr::parse("127.0.0.1:0").unwrap())
        .await
        .unwrap();
    let Some(ListenAddr::Tcp(addr)) = bound.local_addr() else {
        panic!("tcp")
    };
    tokio::spawn(serve_grpc(
        bound,
        processor.clone(),
        64 << 20,
        Arc::new(AtomicBool::new(false)),
        std::future::pending(),
    ));
    let client = ExternalProcessorClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    Harness {
        client,
        processor,
        metrics,
    }
}

struct Stream {
    tx: mpsc::Sender<ProcessingRequest>,
    rx: Streaming<ProcessingResponse>,
}

impl Harness {
    async fn open(&mut self) -> Stream {
        let (tx, rx) = mpsc::channel(8);
        let rx = self
            .client
            .process(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        Stream { tx, rx }
    }
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

fn req_headers(pairs: &[(&str, &str)], eos: bool) -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Msg::RequestHeaders(HttpHeaders {
            headers: Some(hmap(pairs)),
            end_of_stream: eos,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn req_body(body: &[u8]) -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Msg::RequestBody(HttpBody {
            body: body.to_vec(),
            end_of_stream: true,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn resp_headers(status: &str, extra: &[(&str, &str)]) -> ProcessingRequest {
    let mut pairs = vec![(":status", status)];
    pairs.extend_from_slice(extra);
    ProcessingRequest {
        request: Some(Msg::ResponseHeaders(HttpHeaders {
            headers: Some(hmap(&pairs)),
            end_of_stream: false,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn resp_body(body: &[u8], eos: bool) -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Msg::ResponseBody(HttpBody {
            body: body.to_vec(),
            end_of_stream: eos,
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// The upstream-level filter's message: request headers plus the request attributes.
fn upstream_headers(id: &str, backend: &str, path: &str) -> ProcessingRequest {
    let mut fields = std::collections::BTreeMap::new();
    fields.insert(
        wire::ATTR_HOST_BACKEND.to_owned(),
        Value {
            kind: Some(Kind::StringValue(backend.into())),
        },
    );
    let mut attributes = HashMap::new();
    attributes.insert(
        "envoy.filters.http.ext_proc".to_owned(),
        Struct {
            fields: fields.into_iter().collect(),
        },
    );
    let mut r = req_headers(
        &[
            (":path", path),
            (":method", "POST"),
            (":authority", "upstream.test"),
            ("authorization", "Bearer client-key"),
            ("content-type", "application/json"),
            ("x-ai-eg-model", "gpt-test"),
            (wire::INTERNAL_REQUEST_ID, id),
        ],
        false,
    );
    r.attributes = attributes;
    r
}

fn common(r: &ProcessingResponse) -> &CommonResponse {
    match r.response.as_ref().unwrap() {
        Reply::RequestHeaders(h) | Reply::ResponseHeaders(h) => h.response.as_ref().unwrap(),
        Reply::RequestBody(b) | Reply::ResponseBody(b) => b.response.as_ref().unwrap(),
        other => panic!("not a common response: {other:?}"),
    }
}

fn set_header<'a>(c: &'a CommonResponse, name: &str) -> Option<&'a str> {
    c.header_mutation
        .as_ref()?
        .set_headers
        .iter()
        .filter_map(|o| o.header.as_ref())
        .find(|h| h.key == name)
        .map(|h| std::str::from_utf8(&h.raw_value).unwrap())
}

fn removed(c: &CommonResponse, name: &str) -> bool {
    c.header_mutation
        .as_ref()
        .is_some_and(|m| m.remove_headers.iter().any(|h| h == name))
}

fn body_of(c: &CommonResponse) -> Option<&[u8]> {
    match c.body_mutation.as_ref()?.mutation.as_ref()? {
        body_mutation::Mutation::Body(b) => Some(b),
        _ => None,
    }
}

fn md(r: &ProcessingResponse) -> HashMap<String, Kind> {
    let Some(s) = r.dynamic_metadata.as_ref() else {
        return HashMap::new();
    };
    let Some(Kind::StructValue(inner)) = &s.fields[METADATA_NAMESPACE].kind else {
        panic!("namespace is not a struct")
    };
    inner
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), v.kind.clone().unwrap()))
        .collect()
}

const CHAT: &[u8] =
    br#"{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

/// Runs the router stream's request phase and returns the internal id.
async fn router_request(router: &mut Stream, body: &[u8]) -> String {
    let r = router
        .send(req_headers(
            &[
                (":path", "/v1/chat/completions"),
                (":method", "POST"),
                ("x-request-id", "rid-1"),
                ("x-ai-eg-model", "spoofed"),
                ("authorization", "Bearer client-key"),
                ("content-type", "application/json"),
            ],
            false,
        ))
        .await;
    let c = common(&r);
    assert_eq!(c.status, ResponseStatus::Continue as i32);
    let id = set_header(c, wire::INTERNAL_REQUEST_ID)
        .expect("internal id header")
        .to_owned();
    assert!(id.starts_with("rid-1-"), "{id}");

    let r = router.send(req_body(body)).await;
    let c = common(&r);
    assert!(c.clear_route_cache, "route cache must be cleared");
    assert_eq!(set_header(c, "x-ai-eg-model"), Some("gpt-test"));
    assert_eq!(
        set_header(c, "x-ai-eg-original-path"),
        Some("/v1/chat/completions")
    );
    assert_eq!(
        set_header(c, "x-envoy-original-path"),
        Some("/v1/chat/completions")
    );
    assert!(
        c.body_mutation.is_none(),
        "router stage never edits the body"
    );
    id
}

#[tokio::test]
async fn two_stage_streaming_translates_and_emits_metadata() {
    let mut h = start().await;
    let mut router = h.open().await;
    let id = router_request(&mut router, CHAT).await;
    assert_eq!(h.processor.registry().len(), 1);

    // Upstream-level stream, one attempt against the translating backend.
    let mut up = h.open().await;
    let r = up
        .send(upstream_headers(&id, OTHER_BACKEND, "/v1/chat/completions"))
        .await;
    let c = common(&r);
    assert_eq!(c.status, ResponseStatus::ContinueAndReplace as i32);
    assert_eq!(set_header(c, ":path"), Some("/other"));
    assert_eq!(set_header(c, "x-other"), Some("1"));
    assert!(
        removed(c, "authorization"),
        "client credentials are dropped"
    );
    assert!(removed(c, wire::UPSTREAM_HOST_HEADER));
    let body = body_of(c).expect("translated body");
    assert_eq!(body, CHAT.to_ascii_uppercase().as_slice());
    let m = md(&r);
    assert_eq!(m["content_length"], Kind::NumberValue(CHAT.len() as f64));
    assert_eq!(m["backend_name"], Kind::StringValue(OTHER_BACKEND.into()));
    drop(up);

    // Response: 200 stream → switch to STREAMED, translate chunk by chunk.
    let r = router
        .send(resp_headers(
            "200",
            &[
                ("content-type", "text/event-stream"),
                ("content-length", "99"),
            ],
        ))
        .await;
    assert_eq!(
        r.mode_override.as_ref().unwrap().response_body_mode,
        BodySendMode::Streamed as i32
    );
    let c = common(&r);
    assert_eq!(set_header(c, "x-translated"), Some("yes"));
    assert!(removed(c, "content-length"));

    let r = router.send(resp_body(b"data: a\n\n", false)).await;
    assert_eq!(body_of(common(&r)), Some(&b"DATA: A\n\n"[..]));
    assert!(r.dynamic_metadata.is_none(), "metadata only at the end");
    let r = router.send(resp_body(b"data: [done]\n\n", true)).await;
    assert_eq!(body_of(common(&r)), Some(&b"DATA: [DONE]\n\n"[..]));
    let m = md(&r);
    // output = 9 + 14 bytes, input = 3.
    assert_eq!(m["llm_total_token"], Kind::NumberValue(26.0));
    assert_eq!(
        m["response_model"],
        Kind::StringValue("gpt-test-2025".into())
    );
    assert_eq!(m["route_name"], Kind::StringValue("default/chat".into()));
    assert_eq!(
        m["ai_service_backend_name"],
        Kind::StringValue("default/other".into())
    );
    assert_eq!(m["backend_name"], Kind::StringValue(OTHER_BACKEND.into()));
    assert_eq!(
        m["model_name_override"],
        Kind::StringValue("gpt-test".into())
    );
    assert!(m.contains_key("token_latency_ttft"));

    drop(router);
    // The registration ends with the router stream.
    for _ in 0..50 {
        if h.processor.registry().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(h.processor.registry().is_empty());
    let text = h.metrics.encode();
    assert!(
        text.contains("gen_ai_client_token_usage_count{")
            && text.contains("gen_ai_token_type=\"output\""),
        "{text}"
    );
}

#[tokio::test]
async fn passthrough_sends_no_bodies_back() {
    let mut h = start().await;
    let mut router = h.open().await;
    let body = br#"{"model":"gpt-test","messages":[]}"#;
    let id = router_request(&mut router, body).await;
    let mut up = h.open().await;
    let r = up
        .send(upstream_headers(
            &id,
            OPENAI_BACKEND,
            "/v1/chat/completions",
        ))
        .await;
    let c = common(&r);
    // Unchanged body: plain CONTINUE keeps Envoy's body and content-length.
    assert_eq!(c.status, ResponseStatus::Continue as i32);
    assert!(c.body_mutation.is_none());
    assert!(set_header(c, ":path").is_none());
    assert!(removed(c, "authorization"));

    let r = router
        .send(resp_headers("200", &[("content-type", "application/json")]))
        .await;
    assert!(r.mode_override.is_none(), "non-streaming stays buffered");
    let r = router.send(resp_body(br#"{"id":"x"}"#, true)).await;
    assert!(
        body_of(common(&r)).is_none(),
        "unchanged body is not echoed"
    );
    let m = md(&r);
    assert_eq!(m["llm_total_token"], Kind::NumberValue(13.0));
}

#[tokio::test]
async fn retry_retranslates_from_original_and_restores_headers() {
    let mut h = start().await;
    let mut router = h.open().await;
    let id = router_request(&mut router, CHAT).await;

    // Attempt 1: the translating backend (fails upstream, Envoy retries).
    let mut up = h.open().await;
    let r = up
        .send(upstream_headers(&id, OTHER_BACKEND, "/v1/chat/completions"))
        .await;
    assert_eq!(set_header(common(&r), "x-other"), Some("1"));
    drop(up);

    // Attempt 2: Envoy replays the request with attempt 1's edits applied.
    let mut retry = upstream_headers(&id, OPENAI_BACKEND, "/other");
    if let Some(Msg::RequestHeaders(hh)) = retry.request.as_mut() {
        hh.headers.as_mut().unwrap().headers.push(HeaderValue {
            key: "x-other".into(),
            value: String::new(),
            raw_value: b"1".to_vec(),
        });
    }
    let mut up = h.open().await;
    let r = up.send(retry).await;
    let c = common(&r);
    assert_eq!(set_header(c, ":path"), Some("/v1/chat/completions"));
    assert!(removed(c, "x-other"), "attempt 1's header is dropped");
    // The original body is unchanged for OpenAI: Envoy replays the original buffer.
    assert_eq!(c.status, ResponseStatus::Continue as i32);

    let r = router
        .send(resp_headers(
            "200",
            &[("content-type", "text/event-stream")],
        ))
        .await;
    assert!(
        common(&r).header_mutation.is_none() || set_header(common(&r), "x-translated").is_none()
    );
    let r = router.send(resp_body(b"data: x\n\n", true)).await;
    assert!(
        body_of(common(&r)).is_none(),
        "OpenAI answer is passed through"
    );
    assert_eq!(
        md(&r)["ai_service_backend_name"],
        Kind::StringValue("default/openai".into())
    );
}

#[tokio::test]
async fn upstream_error_is_normalised_in_buffered_mode() {
    let mut h = start().await;
    let mut router = h.open().await;
    let id = router_request(&mut router, CHAT).await;
    let mut up = h.open().await;
    up.send(upstream_headers(&id, OTHER_BACKEND, "/v1/chat/completions"))
        .await;
    let r = router
        .send(resp_headers("503", &[("content-type", "text/plain")]))
        .await;
    assert!(r.mode_override.is_none(), "errors are read whole");
    let r = router.send(resp_body(b"overloaded", true)).await;
    let c = common(&r);
    let v: serde_json::Value = serde_json::from_slice(body_of(c).unwrap()).unwrap();
    assert_eq!(v["error"]["message"], "overloaded");
    assert_eq!(set_header(c, "content-type"), Some("application/json"));
}

fn immediate(r: &ProcessingResponse) -> (i32, serde_json::Value) {
    match r.response.as_ref().unwrap() {
        Reply::ImmediateResponse(i) => (
            i.status.as_ref().unwrap().code,
            serde_json::from_slice(&i.body).unwrap(),
        ),
        other => panic!("expected an immediate response, got {other:?}"),
    }
}

#[tokio::test]
async fn errors_become_immediate_responses() {
    let mut h = start().await;

    // Unknown model → 404 in the OpenAI envelope.
    let mut s = h.open().await;
    s.send(req_headers(&[(":path", "/v1/chat/completions")], false))
        .await;
    let (code, v) = immediate(&s.send(req_body(br#"{"model":"nope"}"#)).await);
    assert_eq!(code, 404);
    assert!(v["error"]["message"].as_str().unwrap().contains("nope"));

    // Malformed JSON → 400, Anthropic envelope on the Messages endpoint.
    let mut s = h.open().await;
    s.send(req_headers(&[(":path", "/v1/messages")], false))
        .await;
    let (code, v) = immediate(&s.send(req_body(b"{\"model\":")).await);
    assert_eq!(code, 400);
    assert_eq!(v["type"], "error");

    // Over the configured body limit → 413.
    let mut s = h.open().await;
    s.send(req_headers(&[(":path", "/v1/chat/completions")], false))
        .await;
    let big = format!(r#"{{"model":"gpt-test","x":"{}"}}"#, "y".repeat(9 << 20));
    let (code, v) = immediate(&s.send(req_body(big.as_bytes())).await);
    assert_eq!(code, 413);
    assert!(v["error"]["message"].as_str().unwrap().contains("limit"));

    // Unknown path → 404.
    let mut s = h.open().await;
    let (code, _) = immediate(
        &s.send(req_headers(&[(":path", "/v2/nothing")], false))
            .await,
    );
    assert_eq!(code, 404);

    // /v1/models is answered locally from the configuration.
    let mut s = h.open().await;
    let (code, v) = immediate(
        &s.send(req_headers(
            &[(":path", "/v1/models"), (":method", "GET")],
            true,
        ))
        .await,
    );
    assert_eq!(code, 200);
    assert_eq!(v["data"][0]["id"], "gpt-test");

    // Stored Responses API responses (no `model` to route by) are answered from the
    // conversation store: retrieve, list input items, delete, then 404.
    let r: aigw_core::api::responses::Response = serde_json::from_value(serde_json::json!({
        "id": "resp_extproc", "object": "response", "status": "completed", "model": "m",
        "output": [],
    }))
    .unwrap();
    let input =
        vec![serde_json::from_value(serde_json::json!({"role": "user", "content": "hi"})).unwrap()];
    aigw_providers::responses::store::with(|s| {
        s.put_response(input, &r, std::time::Instant::now());
    });
    for (method, path, status) in [
        ("GET", "/v1/responses/resp_extproc", 200),
        (
            "GET",
            "/v1/responses/resp_extproc/input_items?order=asc",
            200,
        ),
        ("DELETE", "/v1/responses/resp_extproc", 200),
        ("GET", "/v1/responses/resp_extproc", 404),
    ] {
        let mut s = h.open().await;
        let (code, v) = immediate(
            &s.send(req_headers(&[(":path", path), (":method", method)], true))
                .await,
        );
        assert_eq!(code, status, "{method} {path}: {v}");
        if path.ends_with("input_items?order=asc") {
            assert_eq!(v["data"][0]["content"][0]["text"], "hi", "{v}");
        }
    }

    // An upstream stream for a request the router never saw is refused, not forwarded
    // untranslated.
    let mut s = h.open().await;
    let (code, _) = immediate(
        &s.send(upstream_headers(
            "unknown",
            OPENAI_BACKEND,
            "/v1/chat/completions",
        ))
        .await,
    );
    assert_eq!(code, 500);
}

#[tokio::test]
async fn large_buffered_body_is_accepted() {
    let mut h = start().await;
    let mut router = h.open().await;
    let big = "x".repeat(6 << 20);
    let body =
        format!(r#"{{"model":"gpt-test","messages":[{{"role":"user","content":"{big}"}}]}}"#);
    router_request(&mut router, body.as_bytes()).await;
}

/// A client that goes away mid-request (Envoy resets the stream) leaves no state behind.
#[tokio::test]
async fn cancelled_request_releases_its_state() {
    let mut h = start().await;
    let mut router = h.open().await;
    let id = router_request(&mut router, CHAT).await;
    let mut up = h.open().await;
    let r = up
        .send(upstream_headers(
            &id,
            OPENAI_BACKEND,
            "/v1/chat/completions",
        ))
        .await;
    assert_eq!(common(&r).status, ResponseStatus::Continue as i32);
    assert_eq!(h.processor.registry().len(), 1);
    // Reset both streams before any response arrives.
    drop(up);
    drop(router);
    for _ in 0..100 {
        if h.processor.registry().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(h.processor.registry().is_empty(), "state leaked");
}

/// `POST /v1/messages?beta=true` (Claude Code): the native Anthropic backend receives the
/// query (Envoy's `:path` already carries it, so the path is left alone); a translated
/// backend (here the OpenAI schema) gets its own path without the client's query.
#[tokio::test]
async fn client_query_reaches_only_the_native_backend() {
    let mut h = start_with(Arc::new(aigw_providers::ProviderFactory)).await;
    let path = "/v1/messages?beta=true";
    let body =
        br#"{"model":"gpt-test","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#;
    for (backend, want) in [
        (OTHER_BACKEND, None),
        (OPENAI_BACKEND, Some("/v1/chat/completions")),
    ] {
        let mut router = h.open().await;
        let r = router
            .send(req_headers(
                &[
                    (":path", path),
                    (":method", "POST"),
                    ("x-request-id", "rid-q"),
                    ("anthropic-version", "2023-06-01"),
                    ("content-type", "application/json"),
                ],
                false,
            ))
            .await;
        let id = set_header(common(&r), wire::INTERNAL_REQUEST_ID)
            .expect("internal id")
            .to_owned();
        let r = router.send(req_body(body)).await;
        assert_eq!(set_header(common(&r), "x-ai-eg-original-path"), Some(path));
        let mut up = h.open().await;
        let r = up.send(upstream_headers(&id, backend, path)).await;
        let c = common(&r);
        assert_eq!(set_header(c, ":path"), want, "{backend}");
    }
}

/// An OpenAI chat field the Anthropic backend has no equivalent for and that cannot
/// change the answer (`store`) is counted per field and backend once the exchange ends.
#[tokio::test]
async fn dropped_chat_fields_are_counted_per_backend() {
    let mut h = start_with(Arc::new(aigw_providers::ProviderFactory)).await;
    let body = br#"{"model":"gpt-test","store":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let mut router = h.open().await;
    let id = router_request(&mut router, body).await;
    let mut up = h.open().await;
    let r = up
        .send(upstream_headers(&id, OTHER_BACKEND, "/v1/chat/completions"))
        .await;
    assert_eq!(set_header(common(&r), ":path"), Some("/v1/messages"));
    drop(up);
    router
        .send(resp_headers("200", &[("content-type", "application/json")]))
        .await;
    let answer = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"hello"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}"#;
    let r = router.send(resp_body(answer, true)).await;
    assert!(
        body_of(common(&r)).is_some(),
        "translated to a chat completion"
    );
    drop(router);
    let mut text = String::new();
    for _ in 0..50 {
        text = h.metrics.encode();
        if text.contains("aigw_dropped_fields_total{") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("aigw_dropped_fields_total{")
                && l.contains("field=\"store\"")
                && l.contains("backend=\"default/other\"")
                && l.ends_with(" 1")),
        "{text}"
    );
}

/// A route budget with `cutoff` running out mid-stream: the client gets the OpenAI error
/// event in place of the chunk that ran it out, later chunks are read for their usage
/// only, and the request is settled at the price table times its usage.
#[tokio::test]
async fn a_budget_running_out_mid_stream_ends_the_client_stream_with_an_error_event() {
    use aigw_core::budget::{BudgetRules, Budgets, MemorySpendStore, Spending};
    use aigw_core::pricing::{PriceTable, Pricing};
    // One micro-dollar per output token; the route may spend 20.
    let prices = PriceTable::parse(
        "prices: [{model: gpt-test, input: \"0\", output: \"1\"}]",
        "test",
    )
    .unwrap();
    let budgets = BudgetRules::parse(
        "budgets: [{name: chat, route: default/chat, limit_usd: \"0.000020\", period: day, cutoff: true}]",
        "test",
    )
    .unwrap();
    // The request names no max_tokens: it reserves 8 tokens of output (8 µ$).
    let spending = Arc::new(
        Spending::new(
            Arc::new(Pricing::new(prices)),
            Arc::new(Budgets::new(budgets)),
            Arc::new(MemorySpendStore::default()),
        )
        .with_default_output_tokens(8),
    );
    let mut h = start_priced(Arc::new(TestFactory), Some(spending.clone())).await;
    let mut router = h.open().await;
    let id = router_request(&mut router, CHAT).await;
    let mut up = h.open().await;
    up.send(upstream_headers(&id, OTHER_BACKEND, "/v1/chat/completions"))
        .await;
    drop(up);
    router
        .send(resp_headers(
            "200",
            &[("content-type", "text/event-stream")],
        ))
        .await;
    let r = router.send(resp_body(b"data: a\n\n", false)).await;
    assert_eq!(body_of(common(&r)), Some(&b"DATA: A\n\n"[..]));
    // 9 + 16 bytes of output: 25 µ$ of the 20 left.
    let r = router.send(resp_body(b"data: bbbbbbbb\n\n", false)).await;
    let event = String::from_utf8(body_of(common(&r)).unwrap().to_vec()).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(event.strip_prefix("data: ").unwrap().trim_end()).unwrap();
    assert_eq!(json["error"]["type"], "insufficient_quota", "{event}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ran out during the response"),
        "{event}"
    );
    let r = router.send(resp_body(b"data: [done]\n\n", true)).await;
    assert_eq!(body_of(common(&r)), Some(&b""[..]), "read for usage only");
    drop(router);
    // Settled with the whole answer's usage: 9 + 16 + 14 bytes of output.
    let mut spent = String::new();
    for _ in 0..50 {
        let states = spending.budget_states().await.unwrap();
        spent.clone_from(&states[0].spent_usd);
        if spent != "0.000000" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(spent, "0.000039");
    // The next request is refused before any upstream is involved (when Envoy has
    // picked the backend, as this catalog leaves it to), not to be retried.
    let mut router = h.open().await;
    let id = router_request(&mut router, CHAT).await;
    let mut up = h.open().await;
    let r = up
        .send(upstream_headers(&id, OTHER_BACKEND, "/v1/chat/completions"))
        .await;
    let (status, body) = immediate(&r);
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "insufficient_quota", "{body}");
    let Some(Reply::ImmediateResponse(i)) = r.response.as_ref() else {
        panic!("immediate")
    };
    let headers = i.headers.as_ref().unwrap();
    assert!(
        headers.set_headers.iter().any(|h| {
            h.header.as_ref().is_some_and(|h| {
                h.key == "x-should-retry" && (h.value == "false" || h.raw_value == b"false")
            })
        }),
        "{headers:?}"
    );
    h.metrics.set_spending(spending);
    assert!(
        h.metrics
            .encode()
            .contains("aigw_budget_cutoffs_total{budget=\"chat\"} 1")
    );
}

#[tokio::test]
async fn log_header_attributes_are_access_log_metadata() {
    // `-logRequestHeaderAttributes x-request-id:request.id` (and a metric-only mapping,
    // which stays out of the access log's metadata).
    let vars = [
        (
            "OTEL_AIGW_LOG_REQUEST_HEADER_ATTRIBUTES",
            "x-request-id:request.id",
        ),
        (
            "OTEL_AIGW_METRICS_REQUEST_HEADER_ATTRIBUTES",
            "content-type:ctype",
        ),
    ];
    let cfg = aigw_core::telemetry::config::TelemetryConfig::from_source(&|n: &str| {
        vars.iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap();
    let mut h = start_full(
        Arc::new(TestFactory),
        aigw_core::telemetry::Telemetry::new(&cfg, None),
    )
    .await;
    let mut router = h.open().await;
    let id = router_request(&mut router, CHAT).await;
    let mut up = h.open().await;
    up.send(upstream_headers(&id, OTHER_BACKEND, "/v1/chat/completions"))
        .await;
    drop(up);
    router
        .send(resp_headers(
            "200",
            &[("content-type", "text/event-stream")],
        ))
        .await;
    let r = router.send(resp_body(b"data: [done]\n\n", true)).await;
    let m = md(&r);
    assert_eq!(m["request.id"], Kind::StringValue("rid-1".into()));
    assert!(!m.contains_key("ctype"), "{m:?}");
}
