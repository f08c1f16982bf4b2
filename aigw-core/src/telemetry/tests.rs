//! The request span's lifecycle through an exchange, with an in-memory sink, and the
//! conventions against the upstream's expected spans.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::attr::{AttrValue, SpanKind, SpanStatus};
use super::config::TelemetryConfig;
use super::memory::{FinishedSpan, MemorySink};
use super::*;
use crate::exchange::{BodyMutation, Exchange, Target, UpstreamAddr};
use crate::schema::{ApiSchema, VersionedSchema};
use crate::translate::{
    BodyChange, ErrorResponse, HeaderMutation, RequestContext, ResponseChunk, Translator,
    TranslatorFactory, TranslatorSpec, UpstreamRequest,
};
use crate::{Error, Result, TokenUsage};
use http::{Method, StatusCode};
use std::collections::HashMap;

struct Pass;
impl Translator for Pass {
    fn request(&mut self, _r: &RequestContext<'_>) -> Result<UpstreamRequest> {
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
    fn response_chunk(&mut self, _c: &[u8], _end: bool) -> Result<ResponseChunk> {
        Ok(ResponseChunk {
            body: None,
            usage: TokenUsage::default(),
            response_model: None,
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

struct PassFactory;
impl TranslatorFactory for PassFactory {
    fn translator(&self, _s: &TranslatorSpec<'_>) -> Result<Box<dyn Translator>> {
        Ok(Box::new(Pass))
    }
}

fn target() -> Target {
    Target {
        backend: Arc::from("default/openai"),
        schema: VersionedSchema::new(ApiSchema::OpenAI),
        upstream: UpstreamAddr {
            scheme: "http".into(),
            authority: "127.0.0.1:9".into(),
        },
        model_override: None,
        headers: HeaderMutation::default(),
        body: BodyMutation::default(),
        credential: None,
        priority: 0,
    }
}

fn telemetry(vars: &[(&str, &str)]) -> (Telemetry, MemorySink) {
    let m: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    let cfg = TelemetryConfig::from_source(&move |n: &str| m.get(n).cloned()).unwrap();
    let sink = MemorySink::new();
    (Telemetry::new(&cfg, Some(Arc::new(sink.clone()))), sink)
}

fn attr<'a>(s: &'a FinishedSpan, key: &str) -> Option<&'a AttrValue> {
    s.end.attrs.iter().find(|a| a.key == key).map(|a| &a.value)
}

fn str_attr<'a>(s: &'a FinishedSpan, key: &str) -> &'a str {
    match attr(s, key) {
        Some(AttrValue::Str(v)) => v,
        other => panic!("{key}: {other:?}"),
    }
}

const CHAT_BASIC: &str =
    r#"{"messages": [{"content": "Hello!", "role": "user"}], "model": "gpt-5-nano"}"#;
const CHAT_BASIC_RESPONSE: &str = r#"{"id":"chatcmpl-C4Gm9xikLXbgE8He0BHWeoM03aa72","choices":[{"finish_reason":"stop","index":0,"message":{"content":"Hi there!","refusal":null,"role":"assistant","annotations":[]}}],"created":1755133833,"model":"gpt-5-nano-2025-08-07","object":"chat.completion","service_tier":"default","system_fingerprint":null,"usage":{"completion_tokens":377,"prompt_tokens":8,"total_tokens":385,"completion_tokens_details":{"accepted_prediction_tokens":0,"audio_tokens":0,"reasoning_tokens":320,"rejected_prediction_tokens":0},"prompt_tokens_details":{"audio_tokens":0,"cached_tokens":0}}}"#;

fn run(
    tel: &Telemetry,
    headers: HeaderMap,
    body: &str,
    response: &[&str],
    status: StatusCode,
) -> HeaderMap {
    run_on(
        Endpoint::ChatCompletions,
        tel,
        headers,
        body,
        response,
        status,
    )
}

fn run_on(
    endpoint: Endpoint,
    tel: &Telemetry,
    headers: HeaderMap,
    body: &str,
    response: &[&str],
    status: StatusCode,
) -> HeaderMap {
    let mut ex = Exchange::new(endpoint, headers, Bytes::from(body.to_owned())).unwrap();
    ex.set_telemetry(tel);
    let mut attempt = ex.attempt(&target(), &PassFactory).unwrap();
    let sent = attempt.request().headers.clone();
    attempt.response_headers(status, &HeaderMap::new()).unwrap();
    if status.is_success() {
        let n = response.len();
        for (i, c) in response.iter().enumerate() {
            ex.chunk(&mut attempt, Bytes::from((*c).to_owned()), i + 1 == n)
                .unwrap();
        }
        drop(attempt);
        ex.finish(status, None);
    } else {
        drop(attempt);
        let e = Error::Upstream {
            status,
            message: "upstream said no".into(),
        };
        ex.finish(status, Some(&e));
    }
    sent
}

#[test]
fn chat_span_matches_the_upstream_openinference_attributes() {
    let (tel, sink) = telemetry(&[]);
    run(
        &tel,
        HeaderMap::new(),
        CHAT_BASIC,
        &[CHAT_BASIC_RESPONSE],
        StatusCode::OK,
    );
    let spans = sink.spans();
    assert_eq!(spans.len(), 2, "attempt and request spans");
    let s = spans.iter().find(|s| s.name == "ChatCompletion").unwrap();
    assert_eq!(s.kind, SpanKind::Internal);
    assert_eq!(s.end.status, SpanStatus::Ok);
    let mut keys: Vec<&str> = s.end.attrs.iter().map(|a| a.key.as_ref()).collect();
    keys.sort_unstable();
    // The upstream's chat-basic.json, with zero-valued token details (which its
    // comparison filters out) included.
    assert_eq!(
        keys,
        [
            "input.mime_type",
            "input.value",
            "llm.input_messages.0.message.content",
            "llm.input_messages.0.message.role",
            "llm.invocation_parameters",
            "llm.model_name",
            "llm.output_messages.0.message.content",
            "llm.output_messages.0.message.role",
            "llm.system",
            "llm.token_count.completion",
            "llm.token_count.completion_details.audio",
            "llm.token_count.completion_details.reasoning",
            "llm.token_count.prompt",
            "llm.token_count.prompt_details.audio",
            "llm.token_count.prompt_details.cache_creation",
            "llm.token_count.prompt_details.cache_read",
            "llm.token_count.total",
            "openinference.span.kind",
            "output.mime_type",
            "output.value",
        ]
    );
    assert_eq!(str_attr(s, "llm.model_name"), "gpt-5-nano-2025-08-07");
    assert_eq!(
        str_attr(s, "llm.invocation_parameters"),
        r#"{"model":"gpt-5-nano"}"#
    );
    assert_eq!(str_attr(s, "input.value"), CHAT_BASIC);
    assert_eq!(attr(s, "llm.token_count.total"), Some(&AttrValue::Int(385)));
    assert_eq!(
        attr(s, "llm.token_count.completion_details.reasoning"),
        Some(&AttrValue::Int(320))
    );
}

#[test]
fn hidden_inputs_and_outputs_carry_the_redaction_marker() {
    let (tel, sink) = telemetry(&[
        ("OPENINFERENCE_HIDE_INPUTS", "true"),
        ("OPENINFERENCE_HIDE_OUTPUTS", "true"),
    ]);
    run(
        &tel,
        HeaderMap::new(),
        CHAT_BASIC,
        &[CHAT_BASIC_RESPONSE],
        StatusCode::OK,
    );
    let s = sink
        .spans()
        .into_iter()
        .find(|s| s.name == "ChatCompletion")
        .unwrap();
    assert_eq!(str_attr(&s, "input.value"), "__REDACTED__");
    assert_eq!(str_attr(&s, "output.value"), "__REDACTED__");
    assert!(attr(&s, "llm.input_messages.0.message.content").is_none());
    assert!(attr(&s, "llm.output_messages.0.message.content").is_none());
    let all = format!("{:?}", s.end.attrs);
    assert!(!all.contains("Hello!") && !all.contains("Hi there!"));
}

#[test]
fn genai_span_has_no_content_unless_asked() {
    let (tel, sink) = telemetry(&[("AI_GATEWAY_TRACING_SEMCONV", "gen_ai")]);
    run(
        &tel,
        HeaderMap::new(),
        CHAT_BASIC,
        &[CHAT_BASIC_RESPONSE],
        StatusCode::OK,
    );
    let s = sink
        .spans()
        .into_iter()
        .find(|s| s.name == "chat gpt-5-nano")
        .unwrap();
    assert_eq!(s.kind, SpanKind::Client);
    assert_eq!(str_attr(&s, "gen_ai.operation.name"), "chat");
    assert_eq!(str_attr(&s, "gen_ai.provider.name"), "openai");
    assert_eq!(str_attr(&s, "gen_ai.request.model"), "gpt-5-nano");
    assert_eq!(
        str_attr(&s, "gen_ai.response.model"),
        "gpt-5-nano-2025-08-07"
    );
    assert_eq!(
        str_attr(&s, "gen_ai.response.id"),
        "chatcmpl-C4Gm9xikLXbgE8He0BHWeoM03aa72"
    );
    assert_eq!(
        attr(&s, "gen_ai.usage.input_tokens"),
        Some(&AttrValue::Int(8))
    );
    assert_eq!(
        attr(&s, "gen_ai.usage.output_tokens"),
        Some(&AttrValue::Int(377))
    );
    assert_eq!(
        attr(&s, "gen_ai.usage.reasoning.output_tokens"),
        Some(&AttrValue::Int(320))
    );
    assert_eq!(
        attr(&s, "gen_ai.response.finish_reasons"),
        Some(&AttrValue::StrList(vec!["stop".into()]))
    );
    assert!(attr(&s, "gen_ai.input.messages").is_none());
    assert!(attr(&s, "gen_ai.output.messages").is_none());

    let (tel, sink) = telemetry(&[
        ("AI_GATEWAY_TRACING_SEMCONV", "gen_ai"),
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true"),
    ]);
    run(
        &tel,
        HeaderMap::new(),
        CHAT_BASIC,
        &[CHAT_BASIC_RESPONSE],
        StatusCode::OK,
    );
    let s = sink
        .spans()
        .into_iter()
        .find(|s| s.name == "chat gpt-5-nano")
        .unwrap();
    assert_eq!(
        str_attr(&s, "gen_ai.input.messages"),
        r#"[{"role":"user","parts":[{"type":"text","content":"Hello!"}]}]"#
    );
    assert!(str_attr(&s, "gen_ai.output.messages").contains("Hi there!"));
}

#[test]
fn the_clients_traceparent_is_the_parent_and_the_attempt_is_propagated() {
    let (tel, sink) = telemetry(&[]);
    let mut h = HeaderMap::new();
    h.insert(
        TRACEPARENT,
        HeaderValue::from_static("00-12345678901234567890123456789012-1234567890123456-01"),
    );
    h.insert(TRACESTATE, HeaderValue::from_static("v=1"));
    h.insert("agent-session-id", HeaderValue::from_static("sess-1"));
    let sent = run(&tel, h, CHAT_BASIC, &[CHAT_BASIC_RESPONSE], StatusCode::OK);
    let spans = sink.spans();
    let req = spans.iter().find(|s| s.name == "ChatCompletion").unwrap();
    let att = spans.iter().find(|s| s.name == "aigw.attempt").unwrap();
    assert_eq!(
        req.context.trace_id,
        0x1234_5678_9012_3456_7890_1234_5678_9012
    );
    assert_eq!(req.parent, Some(0x1234_5678_9012_3456));
    assert_eq!(att.parent, Some(req.context.span_id));
    assert_eq!(str_attr(req, "session.id"), "sess-1");
    let up = SpanContext::from_headers(&sent).unwrap();
    assert_eq!(up.trace_id, req.context.trace_id);
    assert_eq!(up.span_id, att.context.span_id);
    assert_eq!(sent[TRACESTATE], "v=1");
    assert_eq!(
        attr(att, "http.response.status_code"),
        Some(&AttrValue::Int(200))
    );
    assert_eq!(str_attr(att, "aigw.backend"), "default/openai");
}

#[test]
fn an_upstream_error_is_the_span_status_with_an_exception_event() {
    let (tel, sink) = telemetry(&[]);
    run(
        &tel,
        HeaderMap::new(),
        CHAT_BASIC,
        &[],
        StatusCode::TOO_MANY_REQUESTS,
    );
    let spans = sink.spans();
    let s = spans.iter().find(|s| s.name == "ChatCompletion").unwrap();
    let SpanStatus::Error(msg) = &s.end.status else {
        panic!("{:?}", s.end.status)
    };
    assert!(msg.starts_with("Error code: 429 - "), "{msg}");
    let ev = &s.end.events[0];
    assert_eq!(ev.name, "exception");
    assert_eq!(ev.attrs[0].value, AttrValue::Str("RateLimitError".into()));
    let att = spans.iter().find(|s| s.name == "aigw.attempt").unwrap();
    assert!(matches!(att.end.status, SpanStatus::Error(_)));
}

#[test]
fn a_stream_records_the_first_token_event_and_folds_the_answer() {
    let (tel, sink) = telemetry(&[]);
    let body = r#"{"messages": [{"content": "Hello!", "role": "user"}], "model": "gpt-5-nano", "stream": true}"#;
    run(
        &tel,
        HeaderMap::new(),
        body,
        &[
            "data: {\"id\":\"c\",\"model\":\"gpt-5-nano-2025-08-07\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"}}]}\n\n",
            "data: {\"id\":\"c\",\"model\":\"gpt-5-nano-2025-08-07\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
        ],
        StatusCode::OK,
    );
    let s = sink
        .spans()
        .into_iter()
        .find(|s| s.name == "ChatCompletion")
        .unwrap();
    assert_eq!(s.end.events[0].name, "First Token Stream Event");
    assert_eq!(
        str_attr(&s, "llm.output_messages.0.message.content"),
        "Hi there"
    );
    assert_eq!(
        str_attr(&s, "llm.invocation_parameters"),
        r#"{"model":"gpt-5-nano","stream":true}"#
    );
}

#[test]
fn a_dropped_exchange_still_ends_its_span() {
    let (tel, sink) = telemetry(&[]);
    let mut ex = Exchange::new(
        Endpoint::ChatCompletions,
        HeaderMap::new(),
        Bytes::from_static(CHAT_BASIC.as_bytes()),
    )
    .unwrap();
    ex.set_telemetry(&tel);
    drop(ex);
    let s = &sink.spans()[0];
    assert_eq!(
        s.end.status,
        SpanStatus::Error("client closed the request".into())
    );
}

#[test]
fn disabled_telemetry_leaves_requests_untouched() {
    let sent = run(
        &Telemetry::disabled(),
        HeaderMap::new(),
        CHAT_BASIC,
        &[CHAT_BASIC_RESPONSE],
        StatusCode::OK,
    );
    assert!(!sent.contains_key(TRACEPARENT));
}

#[test]
fn image_generation_span_matches_the_upstream_openinference_attributes() {
    // Upstream's tests/internal/testopeninference/spans/image-generation-basic.json.
    const REQ: &str = r#"{"prompt": "A simple black-and-white line drawing of a cat playing with yarn", "model": "gpt-image-1-mini", "quality": "low", "size": "1024x1024"}"#;
    const RESP: &str =
        r#"{"created":1760092079,"data":[{"url":"https://example.invalid/img.png"}]}"#;
    let (tel, sink) = telemetry(&[]);
    run_on(
        Endpoint::ImageGenerations,
        &tel,
        HeaderMap::new(),
        REQ,
        &[RESP],
        StatusCode::OK,
    );
    let spans = sink.spans();
    let s = spans.iter().find(|s| s.name == "ImagesResponse").unwrap();
    assert_eq!(s.kind, SpanKind::Internal);
    assert_eq!(s.end.status, SpanStatus::Ok);
    let mut keys: Vec<&str> = s.end.attrs.iter().map(|a| a.key.as_ref()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "input.mime_type",
            "input.value",
            "llm.invocation_parameters",
            "llm.system",
            "openinference.span.kind",
            "output.mime_type",
            "output.value",
        ]
    );
    assert_eq!(str_attr(s, "llm.invocation_parameters"), REQ);
    assert_eq!(str_attr(s, "input.value"), REQ);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(str_attr(s, "output.value")).unwrap(),
        serde_json::from_str::<serde_json::Value>(RESP).unwrap()
    );
}

fn keys(s: &FinishedSpan) -> Vec<&str> {
    let mut k: Vec<&str> = s.end.attrs.iter().map(|a| a.key.as_ref()).collect();
    k.sort_unstable();
    k
}

/// A transcription (or translation) form with a 44-byte file.
fn audio_form(fields: &[(&str, &str)]) -> (HeaderMap, String) {
    let b = "aigwformboundary";
    let mut body = String::new();
    for (name, value) in fields {
        if *name == "file" {
            body.push_str(&format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{value}\"\r\nContent-Type: audio/wav\r\n\r\n{}\r\n",
                "x".repeat(44)
            ));
        } else {
            body.push_str(&format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
    }
    body.push_str(&format!("--{b}--\r\n"));
    let mut h = HeaderMap::new();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_str(&format!("multipart/form-data; boundary={b}")).unwrap(),
    );
    (h, body)
}

/// Upstream's transcription recorder: a JSON summary of the form (the file by name and
/// size) as `input.value`, the text as `output.value` (`text/plain`), the duration and
/// language the answer reports.
#[test]
fn transcription_span_matches_the_upstream_recorder() {
    let (tel, sink) = telemetry(&[]);
    let (h, body) = audio_form(&[
        ("model", "whisper-1"),
        ("file", "test.wav"),
        ("language", "en"),
        ("response_format", "verbose_json"),
    ]);
    let resp = r#"{"task":"transcribe","language":"english","duration":5.5,"text":"Hello world, this is a test.","segments":[]}"#;
    run_on(
        Endpoint::AudioTranscriptions,
        &tel,
        h,
        &body,
        &[resp],
        StatusCode::OK,
    );
    let spans = sink.spans();
    let s = spans.iter().find(|s| s.name == "Transcription").unwrap();
    assert_eq!(s.kind, SpanKind::Internal);
    assert_eq!(s.end.status, SpanStatus::Ok);
    assert_eq!(
        keys(s),
        [
            "input.mime_type",
            "input.value",
            "llm.model_name",
            "llm.system",
            "openinference.span.kind",
            "output.audio_duration",
            "output.language",
            "output.mime_type",
            "output.value",
        ]
    );
    assert_eq!(
        str_attr(s, "input.value"),
        r#"{"model":"whisper-1","file_name":"test.wav","file_size":44,"language":"en","response_format":"verbose_json"}"#
    );
    assert_eq!(str_attr(s, "output.value"), "Hello world, this is a test.");
    assert_eq!(str_attr(s, "output.mime_type"), "text/plain");
    assert_eq!(str_attr(s, "output.language"), "english");
    assert_eq!(str_attr(s, "llm.model_name"), "whisper-1");
    assert_eq!(str_attr(s, "openinference.span.kind"), "LLM");
    assert_eq!(attr(s, "output.audio_duration"), Some(&AttrValue::F64(5.5)));
}

/// A plain-text answer is the text; a stream's text is its `done` event's (deltas
/// until then); hidden inputs and outputs leave the marker and no output.
#[test]
fn transcription_text_stream_and_hidden() {
    let (tel, sink) = telemetry(&[]);
    let (h, body) = audio_form(&[
        ("model", "whisper-1"),
        ("file", "a.mp3"),
        ("response_format", "text"),
    ]);
    run_on(
        Endpoint::AudioTranscriptions,
        &tel,
        h,
        &body,
        &["Hello there.\n"],
        StatusCode::OK,
    );
    let (h, body) = audio_form(&[
        ("model", "gpt-4o-transcribe"),
        ("file", "a.mp3"),
        ("stream", "true"),
    ]);
    let events = [
        "data: {\"type\":\"transcript.text.delta\",\"delta\":\"Hel\"}\n\n",
        "data: {\"type\":\"transcript.text.delta\",\"delta\":\"lo\"}\n\n",
        "data: {\"type\":\"transcript.text.done\",\"text\":\"Hello.\"}\n\n",
    ];
    run_on(
        Endpoint::AudioTranscriptions,
        &tel,
        h,
        &body,
        &events,
        StatusCode::OK,
    );
    let spans = sink.spans();
    let t: Vec<&FinishedSpan> = spans.iter().filter(|s| s.name == "Transcription").collect();
    assert_eq!(str_attr(t[0], "output.value"), "Hello there.\n");
    assert_eq!(str_attr(t[1], "output.value"), "Hello.");
    assert_eq!(str_attr(t[1], "output.mime_type"), "text/plain");

    let (tel, sink) = telemetry(&[
        ("OPENINFERENCE_HIDE_INPUTS", "true"),
        ("OPENINFERENCE_HIDE_OUTPUTS", "true"),
    ]);
    let (h, body) = audio_form(&[("model", "whisper-1"), ("file", "secret.wav")]);
    run_on(
        Endpoint::AudioTranscriptions,
        &tel,
        h,
        &body,
        &[r#"{"text":"private words"}"#],
        StatusCode::OK,
    );
    let spans = sink.spans();
    let s = spans.iter().find(|s| s.name == "Transcription").unwrap();
    assert_eq!(str_attr(s, "input.value"), super::openinference::REDACTED);
    assert!(attr(s, "output.value").is_none());
    let all = format!("{:?}", s.end.attrs);
    assert!(
        !all.contains("private words") && !all.contains("secret.wav"),
        "{all}"
    );
}

#[test]
fn translation_span_matches_the_upstream_recorder() {
    let (tel, sink) = telemetry(&[]);
    let (h, body) = audio_form(&[
        ("model", "whisper-1"),
        ("file", "fr.wav"),
        ("response_format", "json"),
    ]);
    run_on(
        Endpoint::AudioTranslations,
        &tel,
        h,
        &body,
        &[r#"{"text":"The sun rises."}"#],
        StatusCode::OK,
    );
    let spans = sink.spans();
    let s = spans.iter().find(|s| s.name == "Translation").unwrap();
    assert_eq!(
        keys(s),
        [
            "input.mime_type",
            "input.value",
            "llm.model_name",
            "llm.system",
            "openinference.span.kind",
            "output.mime_type",
            "output.value",
        ]
    );
    assert_eq!(
        str_attr(s, "input.value"),
        r#"{"model":"whisper-1","file_name":"fr.wav","file_size":44,"response_format":"json"}"#
    );
    assert_eq!(str_attr(s, "output.value"), "The sun rises.");
}

/// Upstream's speech recorder: the text and voice settings as `input.value` (a map, so
/// keys sorted, absent options null), the request as `llm.invocation_parameters`, the
/// audio by size only.
#[test]
fn speech_span_matches_the_upstream_recorder() {
    const REQ: &str = r#"{"model":"tts-1","input":"Hello there","voice":"alloy","speed":1.25}"#;
    let (tel, sink) = telemetry(&[]);
    run_on(
        Endpoint::AudioSpeech,
        &tel,
        HeaderMap::new(),
        REQ,
        &["ID3\u{1}audio-bytes", "more-audio"],
        StatusCode::OK,
    );
    let spans = sink.spans();
    let s = spans.iter().find(|s| s.name == "AudioSpeech").unwrap();
    assert_eq!(s.kind, SpanKind::Internal);
    assert_eq!(
        keys(s),
        [
            "input.mime_type",
            "input.value",
            "llm.invocation_parameters",
            "llm.model_name",
            "llm.system",
            "openinference.span.kind",
            "output.audio_bytes",
            "output.mime_type",
        ]
    );
    assert_eq!(
        str_attr(s, "input.value"),
        r#"{"input":"Hello there","instructions":null,"response_format":null,"speed":1.25,"voice":"alloy"}"#
    );
    assert_eq!(str_attr(s, "llm.invocation_parameters"), REQ);
    assert_eq!(str_attr(s, "output.mime_type"), "audio/mpeg");
    assert_eq!(attr(s, "output.audio_bytes"), Some(&AttrValue::Int(25)));
}

/// Upstream's rerank recorder (`RERANKER` kind): `reranker.*` request attributes and
/// documents, scores per result, token counts even with outputs hidden.
#[test]
fn rerank_span_matches_the_upstream_recorder() {
    const REQ: &str = r#"{"model":"rerank-v3.5","query":"capital of France?","documents":["Paris is the capital of France.","Berlin is in Germany."],"top_n":2}"#;
    const RESP: &str = r#"{"id":"r-1","results":[{"index":0,"relevance_score":0.98},{"index":1,"relevance_score":0.02}],"meta":{"api_version":{"version":"2"},"billed_units":{"search_units":1},"tokens":{"input_tokens":21.0,"output_tokens":0}}}"#;
    let (tel, sink) = telemetry(&[]);
    run_on(
        Endpoint::Rerank,
        &tel,
        HeaderMap::new(),
        REQ,
        &[RESP],
        StatusCode::OK,
    );
    let spans = sink.spans();
    let s = spans.iter().find(|s| s.name == "Rerank").unwrap();
    assert_eq!(s.kind, SpanKind::Internal);
    assert_eq!(s.end.status, SpanStatus::Ok);
    assert_eq!(
        keys(s),
        [
            "input.mime_type",
            "input.value",
            "llm.system",
            "llm.token_count.prompt",
            "llm.token_count.total",
            "openinference.span.kind",
            "output.mime_type",
            "output.value",
            "reranker.input_documents.0.document.content",
            "reranker.input_documents.1.document.content",
            "reranker.model_name",
            "reranker.output_documents.0.document.score",
            "reranker.output_documents.1.document.score",
            "reranker.query",
            "reranker.top_k",
        ]
    );
    assert_eq!(str_attr(s, "openinference.span.kind"), "RERANKER");
    assert_eq!(str_attr(s, "llm.system"), "cohere");
    assert_eq!(str_attr(s, "reranker.model_name"), "rerank-v3.5");
    assert_eq!(attr(s, "reranker.top_k"), Some(&AttrValue::Int(2)));
    assert_eq!(
        str_attr(s, "reranker.input_documents.1.document.content"),
        "Berlin is in Germany."
    );
    assert_eq!(
        attr(s, "reranker.output_documents.0.document.score"),
        Some(&AttrValue::F64(0.98))
    );
    assert_eq!(attr(s, "llm.token_count.total"), Some(&AttrValue::Int(21)));
    assert_eq!(str_attr(s, "input.value"), REQ);

    let (tel, sink) = telemetry(&[
        ("OPENINFERENCE_HIDE_INPUTS", "true"),
        ("OPENINFERENCE_HIDE_OUTPUTS", "true"),
    ]);
    run_on(
        Endpoint::Rerank,
        &tel,
        HeaderMap::new(),
        REQ,
        &[RESP],
        StatusCode::OK,
    );
    let spans = sink.spans();
    let s = spans.iter().find(|s| s.name == "Rerank").unwrap();
    assert_eq!(
        keys(s),
        [
            "input.value",
            "llm.system",
            "llm.token_count.prompt",
            "llm.token_count.total",
            "openinference.span.kind",
            "output.value",
            "reranker.model_name",
            "reranker.query",
            "reranker.top_k",
        ]
    );
    assert_eq!(str_attr(s, "output.value"), super::openinference::REDACTED);
}

/// A fallback chain shows as sibling attempt spans under the request span: the failed
/// attempts with their reason (a connect failure, an upstream 503), the last with its
/// backend and status.
#[test]
fn a_fallback_chain_is_sibling_attempt_spans_with_their_failures() {
    let (tel, sink) = telemetry(&[]);
    let mut ex = Exchange::new(
        Endpoint::ChatCompletions,
        HeaderMap::new(),
        Bytes::from_static(CHAT_BASIC.as_bytes()),
    )
    .unwrap();
    ex.set_telemetry(&tel);
    let mut first = ex.attempt(&target(), &PassFactory).unwrap();
    first.record_failure("connect error: connection refused");
    drop(first);
    let mut second = ex.attempt(&target(), &PassFactory).unwrap();
    let _ = second
        .response_headers(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new())
        .unwrap();
    drop(second);
    let mut backup = target();
    backup.backend = Arc::from("default/backup");
    let mut third = ex.attempt(&backup, &PassFactory).unwrap();
    third
        .response_headers(StatusCode::OK, &HeaderMap::new())
        .unwrap();
    ex.chunk(
        &mut third,
        Bytes::from_static(CHAT_BASIC_RESPONSE.as_bytes()),
        true,
    )
    .unwrap();
    drop(third);
    ex.finish(StatusCode::OK, None);
    let spans = sink.spans();
    let req = spans.iter().find(|s| s.name == "ChatCompletion").unwrap();
    let attempts: Vec<&FinishedSpan> = spans.iter().filter(|s| s.name == "aigw.attempt").collect();
    assert_eq!(attempts.len(), 3);
    let req_id = req.context.span_id;
    for (i, a) in attempts.iter().enumerate() {
        assert_eq!(a.kind, SpanKind::Client);
        assert_eq!(a.parent, Some(req_id));
        assert_eq!(
            attr(a, "aigw.attempt.number"),
            Some(&AttrValue::Int(i as i64 + 1))
        );
    }
    assert_eq!(
        str_attr(attempts[0], "aigw.attempt.failure"),
        "connect error: connection refused"
    );
    assert!(matches!(attempts[0].end.status, SpanStatus::Error(_)));
    assert_eq!(str_attr(attempts[1], "error.type"), "503");
    assert_eq!(
        attr(attempts[1], "http.response.status_code"),
        Some(&AttrValue::Int(503))
    );
    assert_eq!(str_attr(attempts[2], "aigw.backend"), "default/backup");
    assert_eq!(
        attr(attempts[2], "http.response.status_code"),
        Some(&AttrValue::Int(200))
    );
    assert_eq!(attempts[2].end.status, SpanStatus::Unset);
}

#[test]
fn tokenize_span_matches_the_upstream_recorder() {
    const REQ: &str =
        r#"{"model":"qwen","messages":[{"role":"user","content":"hi"}],"return_token_strs":true}"#;
    const RESP: &str =
        r#"{"count":3,"max_model_len":8192,"tokens":[1,2,3],"token_strs":["<s>","hi","</s>"]}"#;
    let (tel, sink) = telemetry(&[]);
    run_on(
        Endpoint::Tokenize,
        &tel,
        HeaderMap::new(),
        REQ,
        &[RESP],
        StatusCode::OK,
    );
    let spans = sink.spans();
    let s = spans.iter().find(|s| s.name == "Tokenize").unwrap();
    assert_eq!(s.end.status, SpanStatus::Ok);
    assert_eq!(
        keys(s),
        [
            "input.mime_type",
            "input.value",
            "llm.model_name",
            "llm.system",
            "openinference.span.kind",
            "output.mime_type",
            "output.value",
            "tokenize.add_generation_prompt",
            "tokenize.add_special_tokens",
            "tokenize.continue_final_message",
            "tokenize.max_model_len",
            "tokenize.message_count",
            "tokenize.request_type",
            "tokenize.return_token_strs",
            "tokenize.token_count",
            "tokenize.token_strings_returned",
            "tokenize.tokens_returned",
        ]
    );
    assert_eq!(str_attr(s, "openinference.span.kind"), "TOKEN_COUNTER");
    assert_eq!(str_attr(s, "tokenize.request_type"), "chat");
    // Upstream's defaults for a chat request: a generation prompt, no special tokens.
    let b = |k: &str| attr(s, k).cloned();
    assert_eq!(
        b("tokenize.add_generation_prompt"),
        Some(AttrValue::Bool(true))
    );
    assert_eq!(
        b("tokenize.add_special_tokens"),
        Some(AttrValue::Bool(false))
    );
    assert_eq!(b("tokenize.return_token_strs"), Some(AttrValue::Bool(true)));
    assert_eq!(b("tokenize.message_count"), Some(AttrValue::Int(1)));
    assert_eq!(b("tokenize.token_count"), Some(AttrValue::Int(3)));
    assert_eq!(b("tokenize.max_model_len"), Some(AttrValue::Int(8192)));
    assert_eq!(str_attr(s, "input.value"), REQ);
}

#[test]
fn completion_tokenize_and_hidden_content() {
    const REQ: &str = r#"{"model":"qwen","prompt":"hi"}"#;
    let (tel, sink) = telemetry(&[
        ("OPENINFERENCE_HIDE_INPUTS", "true"),
        ("OPENINFERENCE_HIDE_OUTPUTS", "true"),
    ]);
    run_on(
        Endpoint::Tokenize,
        &tel,
        HeaderMap::new(),
        REQ,
        &[r#"{"count":1,"tokens":[7]}"#],
        StatusCode::OK,
    );
    let spans = sink.spans();
    let s = spans.iter().find(|s| s.name == "Tokenize").unwrap();
    assert_eq!(str_attr(s, "tokenize.request_type"), "completion");
    assert_eq!(
        attr(s, "tokenize.add_special_tokens"),
        Some(&AttrValue::Bool(true))
    );
    // Hidden inputs leave `input.value` out, as upstream's token counters do.
    assert_eq!(attr(s, "input.value"), None);
    assert_eq!(str_attr(s, "output.value"), super::openinference::REDACTED);
    assert_eq!(attr(s, "tokenize.max_model_len"), None);
}

#[test]
fn count_tokens_span_matches_the_upstream_recorder() {
    const REQ: &str = r#"{"model":"claude-sonnet-4","messages":[{"role":"user","content":"hi"}]}"#;
    let (tel, sink) = telemetry(&[]);
    run_on(
        Endpoint::CountTokens,
        &tel,
        HeaderMap::new(),
        REQ,
        &[r#"{"input_tokens":12}"#],
        StatusCode::OK,
    );
    let spans = sink.spans();
    let s = spans.iter().find(|s| s.name == "CountTokens").unwrap();
    assert_eq!(
        keys(s),
        [
            "input.mime_type",
            "input.value",
            "llm.model_name",
            "llm.system",
            "llm.token_count.prompt",
            "openinference.span.kind",
        ]
    );
    assert_eq!(str_attr(s, "llm.system"), "anthropic");
    assert_eq!(attr(s, "llm.token_count.prompt"), Some(&AttrValue::Int(12)));
}
