//! Golden tests: the OpenAI Responses API on every backend.
//!
//! Requests (`tests/fixtures/responses/requests/`, including a request captured from
//! Codex CLI 0.171.0) are translated for each backend cell; backend responses are the
//! existing provider captures (Anthropic SSE, Bedrock ConverseStream eventstream,
//! Claude on Bedrock InvokeModel, Gemini SSE) rendered as the Responses event stream or
//! response object. Every stream is also checked split at every position and byte by
//! byte, and under random splits (proptest).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "golden_bedrock_support/mod.rs"]
mod support;

use aigw_core::api::Endpoint;
use aigw_core::api::responses::{AnyStreamEvent, Response};
use aigw_core::translate::TranslatorSpec;
use aigw_core::{ApiSchema, RequestContext, Translator, TranslatorFactory, VersionedSchema};
use aigw_providers::ProviderFactory;
use aigw_providers::eventstream::encode_event;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use proptest::prelude::*;
use support::*;

const TRANSLATED: [ApiSchema; 5] = [
    ApiSchema::Anthropic,
    ApiSchema::GCPAnthropic,
    ApiSchema::AWSBedrock,
    ApiSchema::AWSAnthropic,
    ApiSchema::GCPVertexAI,
];

fn translator(schema: ApiSchema) -> Box<dyn Translator> {
    let schema = VersionedSchema::new(schema);
    ProviderFactory
        .translator(&TranslatorSpec {
            endpoint: Endpoint::Responses,
            schema: &schema,
            model_override: None,
        })
        .unwrap()
}

fn name(schema: ApiSchema) -> &'static str {
    schema.as_str()
}

#[test]
fn requests_per_backend() {
    for (fixture_name, body) in json_files("responses/requests") {
        // The Codex capture is large: snapshot it for the two backends its end-to-end
        // test drives; the others are covered by the smaller fixtures.
        let schemas: &[ApiSchema] = if fixture_name == "codex_exec" {
            &[ApiSchema::Anthropic, ApiSchema::AWSBedrock]
        } else {
            &TRANSLATED
        };
        for &schema in schemas {
            let snap = request_snapshot(
                &mut translator(schema),
                Endpoint::Responses,
                &body,
                &HeaderMap::new(),
            );
            insta::assert_snapshot!(
                format!("responses_request_{}__{fixture_name}", name(schema)),
                snap
            );
        }
    }
}

#[test]
fn passthrough_to_openai_and_azure_is_byte_exact() {
    let body = std::fs::read(fixture("responses/requests/codex_exec.json")).unwrap();
    for (schema, path) in [
        (ApiSchema::OpenAI, "/v1/responses"),
        (ApiSchema::AzureOpenAI, "/openai/v1/responses"),
    ] {
        let snap = request_snapshot(
            &mut translator(schema),
            Endpoint::Responses,
            &body,
            &HeaderMap::new(),
        );
        assert_eq!(snap, format!("POST {path}\n\n<unchanged>"), "{schema:?}");
    }
}

/// The Responses request every response fixture is answered to: streamed, with
/// reasoning summaries asked for, not stored (so repeated runs keep their ids).
const STREAM_REQUEST: &[u8] = br#"{"model":"m","input":"Hi","stream":true,"store":false,"reasoning":{"effort":"high","summary":"auto"},"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}]}"#;
const PLAIN_REQUEST: &[u8] = br#"{"model":"m","input":"Hi","store":false,"reasoning":{"effort":"high","summary":"auto"},"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}]}"#;

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(fixture(rel)).unwrap()
}

/// Re-frames an Anthropic SSE capture as Bedrock's invoke-with-response-stream.
fn invoke_stream(sse: &[u8]) -> Vec<u8> {
    let mut w = Vec::new();
    for line in String::from_utf8_lossy(sse).lines() {
        if let Some(data) = line.strip_prefix("data: ") {
            let b64 = base64::engine::general_purpose::STANDARD.encode(data.trim_end());
            let payload = format!(r#"{{"bytes":"{b64}"}}"#);
            w.extend_from_slice(&encode_event("chunk", payload.as_bytes()).unwrap());
        }
    }
    w
}

/// (backend, capture name, wire bytes) for every streamed backend response.
fn streams() -> Vec<(ApiSchema, String, Vec<u8>)> {
    let mut v = Vec::new();
    for n in [
        "stream_basic",
        "stream_thinking",
        "stream_tool",
        "stream_tool_empty_args",
        "stream_parallel_tools",
        "stream_error",
    ] {
        v.push((
            ApiSchema::Anthropic,
            n.to_owned(),
            read(&format!("anthropic/responses/{n}.sse")),
        ));
    }
    for n in ["basic", "reasoning", "tool"] {
        v.push((
            ApiSchema::AWSBedrock,
            n.to_owned(),
            read(&format!("bedrock/responses/{n}.bin")),
        ));
    }
    for n in ["stream_basic", "stream_thinking", "stream_tool"] {
        v.push((
            ApiSchema::AWSAnthropic,
            n.to_owned(),
            invoke_stream(&read(&format!("bedrock/invoke/{n}.sse"))),
        ));
    }
    for n in ["stream_text", "stream_tool", "stream_error"] {
        v.push((
            ApiSchema::GCPVertexAI,
            n.to_owned(),
            read(&format!("vertex/responses/{n}.sse")),
        ));
    }
    v
}

/// The response headers of an SSE stream.
fn sse_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    h
}

fn backend_headers(schema: ApiSchema) -> HeaderMap {
    let mut h = HeaderMap::new();
    let ct = match schema {
        ApiSchema::AWSBedrock | ApiSchema::AWSAnthropic => "application/vnd.amazon.eventstream",
        _ => "text/event-stream",
    };
    h.insert("content-type", HeaderValue::from_static(ct));
    h.insert("x-amzn-requestid", HeaderValue::from_static("req-0001"));
    h
}

fn run(schema: ApiSchema, request: &[u8], chunks: &[&[u8]]) -> (String, aigw_core::TokenUsage) {
    run_on(
        translator(schema),
        &backend_headers(schema),
        request,
        chunks,
    )
}

fn run_on(
    mut t: Box<dyn Translator>,
    headers: &HeaderMap,
    request: &[u8],
    chunks: &[&[u8]],
) -> (String, aigw_core::TokenUsage) {
    begin(&mut *t, Endpoint::Responses, request, headers);
    let (out, usage, _) = feed(&mut *t, chunks);
    (normalize_responses(&String::from_utf8(out).unwrap()), usage)
}

/// Sends `request` (a client body for `endpoint`) through `t` and answers with a 200
/// head of `headers`, as the exchange does before the response body.
fn begin(t: &mut dyn Translator, endpoint: Endpoint, request: &[u8], headers: &HeaderMap) {
    let body = Bytes::copy_from_slice(request);
    let info = aigw_core::api::sniff(endpoint, &body).unwrap();
    t.request(&RequestContext {
        body: &body,
        info: &info,
        headers: &HeaderMap::new(),
        force_include_usage: false,
    })
    .unwrap();
    t.response_headers(StatusCode::OK, headers).unwrap();
}

/// Sets `created_at` to 0 so snapshots do not depend on the clock.
fn normalize_responses(s: &str) -> String {
    normalize(&s.replace("\"created_at\":", "\"created\":"))
        .replace("\"created\":", "\"created_at\":")
}

/// Checks a rendered stream against the Responses event grammar: every event parses
/// as a typed event, `event:` equals `type`, sequence numbers count from 0, the first
/// two are `response.created` and `response.in_progress` and the last is terminal.
fn check_grammar(sse: &str) {
    let mut types = Vec::new();
    for (seq, block) in sse.split("\n\n").filter(|b| !b.is_empty()).enumerate() {
        let (event, data) = block.split_once('\n').unwrap();
        let event = event.strip_prefix("event: ").unwrap();
        let data = data.strip_prefix("data: ").unwrap();
        let ev: AnyStreamEvent = serde_json::from_str(data).unwrap();
        let AnyStreamEvent::Known(ev) = ev else {
            panic!("untyped event {data}")
        };
        assert_eq!(ev.kind.name(), event);
        assert_eq!(ev.sequence_number, seq as u64);
        types.push(event.to_owned());
    }
    assert_eq!(types[0], "response.created");
    assert_eq!(types[1], "response.in_progress");
    let last = types.last().unwrap();
    assert!(
        matches!(
            last.as_str(),
            "response.completed" | "response.incomplete" | "response.failed"
        ),
        "{types:?}"
    );
}

#[test]
fn streams_per_backend() {
    for (schema, n, wire) in streams() {
        let (out, usage) = run(schema, STREAM_REQUEST, &[&wire]);
        check_grammar(&out);
        insta::assert_snapshot!(
            format!("responses_stream_{}__{n}", name(schema)),
            format!("usage: {usage:?}\n\n{out}")
        );
    }
}

#[test]
fn every_split_gives_identical_events() {
    for (schema, n, wire) in streams() {
        let whole = run(schema, STREAM_REQUEST, &[&wire]);
        for cut in (0..=wire.len()).step_by(7) {
            let (a, b) = wire.split_at(cut);
            assert_eq!(
                run(schema, STREAM_REQUEST, &[a, b]),
                whole,
                "{schema:?} {n} cut at {cut}"
            );
        }
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(
            run(schema, STREAM_REQUEST, &bytes),
            whole,
            "{schema:?} {n} byte by byte"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_splits_give_identical_events(which in 0usize..64, cuts in proptest::collection::vec(0usize..4096, 0..12)) {
        let all = streams();
        let (schema, _, wire) = &all[which % all.len()];
        let whole = run(*schema, STREAM_REQUEST, &[wire]);
        let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (wire.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut at = 0;
        for p in points {
            chunks.push(&wire[at..p]);
            at = p;
        }
        chunks.push(&wire[at..]);
        prop_assert_eq!(run(*schema, STREAM_REQUEST, &chunks), whole);
    }
}

#[test]
fn whole_responses_per_backend() {
    let cells: Vec<(ApiSchema, &str)> = vec![
        (ApiSchema::Anthropic, "anthropic/responses/basic.json"),
        (ApiSchema::Anthropic, "anthropic/responses/cache_usage.json"),
        (ApiSchema::AWSBedrock, "bedrock/responses/basic.json"),
        (ApiSchema::AWSBedrock, "bedrock/responses/reasoning.json"),
        (ApiSchema::AWSBedrock, "bedrock/responses/tool.json"),
        (ApiSchema::AWSBedrock, "bedrock/responses/max_tokens.json"),
        (ApiSchema::AWSAnthropic, "bedrock/invoke/thinking.json"),
        (ApiSchema::AWSAnthropic, "bedrock/invoke/tool.json"),
        (ApiSchema::GCPVertexAI, "vertex/responses/reasoning.json"),
        (ApiSchema::GCPVertexAI, "vertex/responses/tool.json"),
        (ApiSchema::GCPVertexAI, "vertex/responses/cache_usage.json"),
    ];
    for (schema, rel) in cells {
        let body = read(rel);
        let mut h = backend_headers(schema);
        h.insert("content-type", HeaderValue::from_static("application/json"));
        let mut t = translator(schema);
        begin(&mut *t, Endpoint::Responses, PLAIN_REQUEST, &h);
        let (out, usage, _) = feed(&mut *t, &[&body]);
        let parsed: Response = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed.object, "response");
        let mut v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        v["created_at"] = 0.into();
        let stem = rel.rsplit('/').next().unwrap().trim_end_matches(".json");
        insta::assert_snapshot!(
            format!("responses_whole_{}__{stem}", name(schema)),
            format!(
                "usage: {usage:?}\n\n{}",
                serde_json::to_string_pretty(&v).unwrap()
            )
        );
    }
}

#[test]
fn previous_response_id_continues_a_stored_conversation() {
    // Turn one (stored: `store` absent) ends with a tool call on Anthropic.
    let first = br#"{"model":"m","input":"Weather in Paris?","tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}]}"#;
    let mut t = translator(ApiSchema::Anthropic);
    let body = Bytes::from_static(first);
    let info = aigw_core::api::sniff(Endpoint::Responses, &body).unwrap();
    let ctx = RequestContext {
        body: &body,
        info: &info,
        headers: &HeaderMap::new(),
        force_include_usage: false,
    };
    t.request(&ctx).unwrap();
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    t.response_headers(StatusCode::OK, &h).unwrap();
    let (out, _, _) = feed(&mut *t, &[&read("anthropic/responses/basic.json")]);
    let r: Response = serde_json::from_slice(&out).unwrap();
    assert_eq!(r.extra["store"], true);
    // Turn two names it; the backend gets the whole conversation.
    let second = format!(
        r#"{{"model":"m","previous_response_id":"{}","input":"And tomorrow?","store":false}}"#,
        r.id
    );
    let snap = request_snapshot(
        &mut translator(ApiSchema::AWSBedrock),
        Endpoint::Responses,
        second.as_bytes(),
        &HeaderMap::new(),
    );
    assert!(snap.contains("Weather in Paris?"), "{snap}");
    assert!(snap.contains("And tomorrow?"), "{snap}");
    let n_messages = snap.matches("\"role\"").count();
    assert_eq!(n_messages, 3, "user, assistant, user: {snap}");
}

#[test]
fn upstream_errors_keep_the_openai_shape() {
    for schema in TRANSLATED {
        let mut t = translator(schema);
        let body =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let e = t
            .response_error(StatusCode::from_u16(529).unwrap(), &HeaderMap::new(), body)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&e.body).unwrap();
        assert!(v["error"]["message"].is_string(), "{schema:?}: {v}");
    }
}

/// The client's query string reaches OpenAI and Azure passthrough backends unchanged
/// (appended to the backend path through the exchange), and never a translated one,
/// whose backend has a different API.
#[test]
fn client_query_reaches_passthrough_backends_only() {
    use aigw_core::exchange::{BodyMutation, Exchange, Target, UpstreamAddr};
    use std::sync::Arc;
    let target = |schema: VersionedSchema| Target {
        backend: Arc::from("default/b"),
        schema,
        upstream: UpstreamAddr {
            scheme: "http".into(),
            authority: "127.0.0.1:9".into(),
        },
        model_override: None,
        headers: aigw_core::HeaderMutation::default(),
        body: BodyMutation::default(),
        credential: None,
        priority: 0,
    };
    let body = Bytes::from_static(br#"{"model":"m","input":"Hi"}"#);
    let query = "api-version=preview&trace=a%20b";
    let mut azure = VersionedSchema::new(ApiSchema::AzureOpenAI);
    azure.version = Some("2025-04-01-preview".into());
    for (schema, path) in [
        (
            VersionedSchema::new(ApiSchema::OpenAI),
            format!("/v1/responses?{query}"),
        ),
        (azure, format!("/openai/v1/responses?{query}")),
        (
            VersionedSchema::new(ApiSchema::Anthropic),
            "/v1/messages".to_owned(),
        ),
    ] {
        let mut ex = Exchange::new(Endpoint::Responses, HeaderMap::new(), body.clone()).unwrap();
        ex.set_query(Some(query));
        let a = ex.attempt(&target(schema), &ProviderFactory).unwrap();
        assert_eq!(a.request().path, path);
    }
}

/// An OpenAI-schema backend annotated `aigw.run/responses: translate` (vLLM, Ollama: Chat
/// Completions only).
fn chat_only_openai() -> Box<dyn Translator> {
    let mut schema = VersionedSchema::new(ApiSchema::OpenAI);
    schema.responses_over_chat = true;
    ProviderFactory
        .translator(&TranslatorSpec {
            endpoint: Endpoint::Responses,
            schema: &schema,
            model_override: None,
        })
        .unwrap()
}

/// Chat-only OpenAI-compatible servers get the Responses request as Chat Completions on
/// `/v1/chat/completions` (streamed with usage asked for), and their chat output —
/// whole or streamed, text or tool calls — rendered as the response object or the
/// typed event stream.
#[test]
fn chat_only_openai_compatible_servers_are_translated() {
    for fixture_name in ["conversation", "json_schema"] {
        let body = read(&format!("responses/requests/{fixture_name}.json"));
        let snap = request_snapshot(
            &mut chat_only_openai(),
            Endpoint::Responses,
            &body,
            &HeaderMap::new(),
        );
        assert!(snap.starts_with("POST /v1/chat/completions\n"), "{snap}");
        insta::assert_snapshot!(
            format!("responses_request_openai_chat_only__{fixture_name}"),
            snap
        );
    }
    // Chat Completions has no token-count endpoint.
    let mut schema = VersionedSchema::new(ApiSchema::OpenAI);
    schema.responses_over_chat = true;
    let err = ProviderFactory
        .translator(&TranslatorSpec {
            endpoint: Endpoint::ResponsesInputTokens,
            schema: &schema,
            model_override: None,
        })
        .err()
        .unwrap();
    assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let sse = sse_headers();
    for n in ["stream", "stream_parallel_tools"] {
        let wire = read(&format!("openai/responses/{n}.sse"));
        let (out, usage) = run_on(chat_only_openai(), &sse, STREAM_REQUEST, &[&wire]);
        check_grammar(&out);
        insta::assert_snapshot!(
            format!("responses_stream_openai_chat_only__{n}"),
            format!("usage: {usage:?}\n\n{out}")
        );
    }
    let mut json = HeaderMap::new();
    json.insert("content-type", HeaderValue::from_static("application/json"));
    for n in ["basic", "tool_call"] {
        let wire = read(&format!("openai/responses/{n}.json"));
        let (out, usage) = run_on(chat_only_openai(), &json, PLAIN_REQUEST, &[&wire]);
        let r: Response = serde_json::from_str(&out).unwrap();
        assert_eq!(r.object, "response");
        insta::assert_snapshot!(
            format!("responses_whole_openai_chat_only__{n}"),
            format!("usage: {usage:?}\n\n{out}")
        );
    }
}

/// A chat-only server's stream is rendered from the events the OpenAI translator decoded
/// for its usage sniff: however the upstream bytes are split, the same Responses events
/// and usage.
#[test]
fn chat_only_openai_any_split_gives_identical_events() {
    let sse = sse_headers();
    for n in ["stream", "stream_parallel_tools"] {
        let wire = read(&format!("openai/responses/{n}.sse"));
        let whole = run_on(chat_only_openai(), &sse, STREAM_REQUEST, &[&wire]);
        for cut in (0..=wire.len()).step_by(11) {
            let (a, b) = wire.split_at(cut);
            let split = run_on(chat_only_openai(), &sse, STREAM_REQUEST, &[a, b]);
            assert_eq!(split, whole, "{n} cut at {cut}");
        }
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        let split = run_on(chat_only_openai(), &sse, STREAM_REQUEST, &bytes);
        assert_eq!(split, whole, "{n} byte by byte");
    }
}

/// A chat-only server's stream reports the usage and answering model that the OpenAI
/// translator reads from the same stream for a Chat Completions client, however the
/// bytes are split (the wrapper reads them from the chunks it renders).
#[test]
fn chat_only_openai_streams_report_the_upstream_usage_and_model() {
    let sse = sse_headers();
    let mut chat_schema = VersionedSchema::new(ApiSchema::OpenAI);
    chat_schema.responses_over_chat = true;
    let chat_request = br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]}"#;
    for n in ["stream", "stream_parallel_tools"] {
        let wire = read(&format!("openai/responses/{n}.sse"));
        let mut chat = ProviderFactory
            .translator(&TranslatorSpec {
                endpoint: Endpoint::ChatCompletions,
                schema: &chat_schema,
                model_override: None,
            })
            .unwrap();
        begin(&mut *chat, Endpoint::ChatCompletions, chat_request, &sse);
        // Passed through: no body of its own, only what it read.
        let r = chat.response_chunk(&wire, true).unwrap();
        let (chat_usage, chat_model) = (r.usage, r.response_model);
        assert!(chat_model.is_some() && chat_usage.input.is_some(), "{n}");
        for cut in (0..=wire.len()).step_by(37) {
            let mut t = chat_only_openai();
            begin(&mut *t, Endpoint::Responses, STREAM_REQUEST, &sse);
            let (a, b) = wire.split_at(cut);
            let (_, usage, model) = feed(&mut *t, &[a, b]);
            assert_eq!(
                (usage, &model),
                (chat_usage, &chat_model),
                "{n} cut at {cut}"
            );
        }
    }
}

/// The chat translator of `schema` wrapped to serve Responses through its chat chunk
/// bytes, the path the backends without neutral events take.
fn over_chat_bytes(schema: ApiSchema) -> Box<dyn Translator> {
    let versioned = VersionedSchema::new(schema);
    let chat = ProviderFactory
        .translator(&TranslatorSpec {
            endpoint: Endpoint::ChatCompletions,
            schema: &versioned,
            model_override: None,
        })
        .unwrap();
    Box::new(aigw_providers::responses::ResponsesOverChat::new(
        chat,
        schema.as_str(),
    ))
}

/// Bedrock and Gemini streams are rendered from the backend's neutral events, not from
/// re-parsed chat chunks: both give the same bytes and usage, a mid-stream exception
/// included.
#[test]
fn neutral_event_rendering_matches_the_chat_chunk_path() {
    let mut exception = Vec::new();
    exception.extend_from_slice(&encode_event("messageStart", br#"{"role":"assistant"}"#).unwrap());
    exception.extend_from_slice(
        &encode_event(
            "contentBlockDelta",
            br#"{"contentBlockIndex":0,"delta":{"text":"Hel"}}"#,
        )
        .unwrap(),
    );
    exception.extend_from_slice(
        &aigw_providers::eventstream::encode_exception(
            "throttlingException",
            br#"{"message":"Too many requests"}"#,
        )
        .unwrap(),
    );
    let mut cases: Vec<_> = streams()
        .into_iter()
        .filter(|(s, _, _)| {
            matches!(
                s,
                ApiSchema::AWSBedrock | ApiSchema::AWSAnthropic | ApiSchema::GCPVertexAI
            )
        })
        .collect();
    assert_eq!(cases.len(), 9);
    cases.push((ApiSchema::AWSBedrock, "exception".into(), exception));
    for (schema, n, wire) in cases {
        let headers = backend_headers(schema);
        let events = run(schema, STREAM_REQUEST, &[&wire]);
        let bytes = run_on(over_chat_bytes(schema), &headers, STREAM_REQUEST, &[&wire]);
        assert_eq!(events, bytes, "{schema:?} {n}");
        if n == "exception" {
            assert!(events.0.contains("event: response.failed"), "{}", events.0);
            assert!(events.0.contains("throttlingException"), "{}", events.0);
        }
    }
}

/// Anthropic streams are rendered from the chunks the chat writer hands over as values,
/// not from its re-parsed SSE bytes: both give the same bytes and usage, error events
/// included.
#[test]
fn handed_over_chunks_match_the_chat_chunk_path() {
    let cases: Vec<_> = streams()
        .into_iter()
        .filter(|(s, _, _)| *s == ApiSchema::Anthropic)
        .collect();
    assert_eq!(cases.len(), 6);
    for (schema, n, wire) in cases {
        let headers = backend_headers(schema);
        let values = run(schema, STREAM_REQUEST, &[&wire]);
        let bytes = run_on(over_chat_bytes(schema), &headers, STREAM_REQUEST, &[&wire]);
        assert_eq!(values, bytes, "{schema:?} {n}");
        if n == "stream_error" {
            assert!(values.0.contains("event: response.failed"), "{}", values.0);
        }
    }
}
