//! Golden tests: OpenAI chat and Anthropic Messages ⇄ Bedrock Converse / ConverseStream,
//! and OpenAI embeddings → Bedrock Titan / Cohere.
//!
//! Inputs are the request fixtures under `tests/fixtures/bedrock/requests/` and the
//! Bedrock response captures under `tests/fixtures/bedrock/responses/`; the expected
//! outputs are the reviewed `insta` snapshots in `tests/snapshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "golden_bedrock_support/mod.rs"]
mod support;

use aigw_core::api::Endpoint;
use aigw_core::{ClientApi, Translator};
use aigw_providers::bedrock::{ConverseTranslator, EmbeddingsTranslator};
use aigw_providers::eventstream::{encode_event, encode_exception};
use http::{HeaderMap, HeaderValue, StatusCode};
use support::*;

const OPENAI_STREAM: &[u8] =
    br#"{"model":"anthropic.claude-3-5-sonnet-20240620-v1:0","messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true}}"#;
const OPENAI_STREAM_NO_USAGE: &[u8] =
    br#"{"model":"anthropic.claude-3-5-sonnet-20240620-v1:0","messages":[{"role":"user","content":"Hi"}],"stream":true}"#;
const OPENAI_PLAIN: &[u8] =
    br#"{"model":"anthropic.claude-3-5-sonnet-20240620-v1:0","messages":[{"role":"user","content":"Hi"}]}"#;
const ANTHROPIC_STREAM: &[u8] =
    br#"{"model":"anthropic.claude-3-5-sonnet-20240620-v1:0","max_tokens":10,"messages":[{"role":"user","content":"Hi"}],"stream":true}"#;
const ANTHROPIC_PLAIN: &[u8] =
    br#"{"model":"anthropic.claude-3-5-sonnet-20240620-v1:0","max_tokens":10,"messages":[{"role":"user","content":"Hi"}]}"#;

fn translator(api: ClientApi) -> ConverseTranslator {
    ConverseTranslator::new(api, None)
}

fn endpoint(api: ClientApi) -> Endpoint {
    match api {
        ClientApi::OpenAI => Endpoint::ChatCompletions,
        ClientApi::Anthropic => Endpoint::Messages,
    }
}

fn amz_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-amzn-requestid", HeaderValue::from_static("req-0001"));
    h
}

#[test]
fn openai_requests() {
    for (name, body) in json_files("bedrock/requests/openai") {
        let snap = request_snapshot(
            &mut translator(ClientApi::OpenAI),
            Endpoint::ChatCompletions,
            &body,
            &HeaderMap::new(),
        );
        insta::assert_snapshot!(format!("bedrock_openai_request__{name}"), snap);
    }
}

#[test]
fn anthropic_requests() {
    for (name, body) in json_files("bedrock/requests/anthropic") {
        let snap = request_snapshot(
            &mut translator(ClientApi::Anthropic),
            Endpoint::Messages,
            &body,
            &HeaderMap::new(),
        );
        insta::assert_snapshot!(format!("bedrock_anthropic_request__{name}"), snap);
    }
}

#[test]
fn model_override_changes_path_and_response_model() {
    let mut t = ConverseTranslator::new(ClientApi::OpenAI, Some("us.amazon.nova-pro-v1:0"));
    let snap = request_snapshot(
        &mut t,
        Endpoint::ChatCompletions,
        OPENAI_PLAIN,
        &HeaderMap::new(),
    );
    assert!(
        snap.starts_with("POST /model/us.amazon.nova-pro-v1%3A0/converse\n"),
        "{snap}"
    );
}

#[test]
fn responses() {
    for (name, body) in json_files("bedrock/responses") {
        if name.contains("embeddings") {
            continue;
        }
        for api in [ClientApi::OpenAI, ClientApi::Anthropic] {
            let req = if api == ClientApi::OpenAI {
                OPENAI_PLAIN
            } else {
                ANTHROPIC_PLAIN
            };
            let snap = response_snapshot(
                &mut translator(api),
                endpoint(api),
                req,
                &amz_headers(),
                &body,
            );
            insta::assert_snapshot!(
                format!("bedrock_{api:?}_response__{name}").to_lowercase(),
                snap
            );
        }
    }
}

fn stream_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(&format!("bedrock/responses/{name}.bin"))).unwrap()
}

/// A synthesized ConverseStream: text, a cache-using usage report, then nothing else.
fn cache_stream() -> Vec<u8> {
    let mut w = Vec::new();
    for (t, p) in [
        ("messageStart", r#"{"role":"assistant"}"#),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"ok"}}"#,
        ),
        ("contentBlockStop", r#"{"contentBlockIndex":0}"#),
        ("messageStop", r#"{"stopReason":"end_turn"}"#),
        (
            "metadata",
            r#"{"usage":{"inputTokens":16,"outputTokens":9,"totalTokens":2412,"cacheReadInputTokens":100,"cacheWriteInputTokens":2287},"metrics":{"latencyMs":10}}"#,
        ),
    ] {
        w.extend_from_slice(&encode_event(t, p.as_bytes()).unwrap());
    }
    w
}

/// Text, then a throttling exception mid-stream.
fn exception_stream() -> Vec<u8> {
    let mut w = Vec::new();
    w.extend_from_slice(&encode_event("messageStart", br#"{"role":"assistant"}"#).unwrap());
    w.extend_from_slice(
        &encode_event(
            "contentBlockDelta",
            br#"{"contentBlockIndex":0,"delta":{"text":"Hel"}}"#,
        )
        .unwrap(),
    );
    w.extend_from_slice(
        &encode_exception(
            "throttlingException",
            br#"{"message":"Too many requests, please wait before trying again."}"#,
        )
        .unwrap(),
    );
    w
}

fn streams() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("basic", stream_fixture("basic")),
        ("tool", stream_fixture("tool")),
        ("reasoning", stream_fixture("reasoning")),
        ("broken", stream_fixture("broken")),
        ("cache", cache_stream()),
        ("exception", exception_stream()),
    ]
}

fn stream_request(api: ClientApi) -> &'static [u8] {
    if api == ClientApi::OpenAI {
        OPENAI_STREAM
    } else {
        ANTHROPIC_STREAM
    }
}

#[test]
fn stream_responses() {
    for (name, wire) in streams() {
        for api in [ClientApi::OpenAI, ClientApi::Anthropic] {
            let snap = response_snapshot(
                &mut translator(api),
                endpoint(api),
                stream_request(api),
                &amz_headers(),
                &wire,
            );
            insta::assert_snapshot!(
                format!("bedrock_{api:?}_stream__{name}").to_lowercase(),
                snap
            );
        }
    }
}

#[test]
fn stream_without_include_usage_has_no_usage_chunk_but_still_meters() {
    let mut t = translator(ClientApi::OpenAI);
    let snap = response_snapshot(
        &mut t,
        Endpoint::ChatCompletions,
        OPENAI_STREAM_NO_USAGE,
        &amz_headers(),
        &stream_fixture("basic"),
    );
    assert!(!snap.contains("\"usage\""), "{snap}");
    assert!(snap.contains("input: Some("), "{snap}");
    assert!(snap.trim_end().ends_with("data: [DONE]"), "{snap}");
}

#[test]
fn stream_content_type_becomes_sse() {
    let mut t = translator(ClientApi::OpenAI);
    let snap = response_snapshot(
        &mut t,
        Endpoint::ChatCompletions,
        OPENAI_STREAM,
        &amz_headers(),
        &stream_fixture("basic"),
    );
    assert!(
        snap.starts_with("headers: content-type: text/event-stream"),
        "{snap}"
    );
}

#[test]
fn every_split_gives_identical_output() {
    // Exhaustive over two-piece splits, plus byte-at-a-time, for every stream fixture.
    for (name, wire) in streams() {
        for api in [ClientApi::OpenAI, ClientApi::Anthropic] {
            let whole = run_stream(api, &[&wire]);
            let bytes: Vec<&[u8]> = wire.chunks(1).collect();
            assert_eq!(
                run_stream(api, &bytes),
                whole,
                "{name} {api:?} byte-by-byte"
            );
            for cut in (0..=wire.len()).step_by(7) {
                let (a, b) = wire.split_at(cut);
                assert_eq!(
                    run_stream(api, &[a, b]),
                    whole,
                    "{name} {api:?} cut at {cut}"
                );
            }
        }
    }
}

fn run_stream(api: ClientApi, chunks: &[&[u8]]) -> (String, aigw_core::TokenUsage) {
    let mut t = translator(api);
    let body = bytes::Bytes::from_static(stream_request(api));
    let info = aigw_core::api::sniff(endpoint(api), &body).unwrap();
    let headers = HeaderMap::new();
    t.request(&aigw_core::RequestContext {
        body: &body,
        info: &info,
        headers: &headers,
        force_include_usage: false,
    })
    .unwrap();
    t.response_headers(StatusCode::OK, &amz_headers()).unwrap();
    let (out, usage, _) = feed(&mut t, chunks);
    (normalize(&String::from_utf8(out).unwrap()), usage)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn any_chunking_gives_identical_output_and_usage(
        which in 0usize..6,
        cuts in proptest::collection::vec(0usize..4000, 0..12),
        openai in proptest::bool::ANY,
    ) {
        let all = streams();
        let wire = &all[which].1;
        let api = if openai { ClientApi::OpenAI } else { ClientApi::Anthropic };
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (wire.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for c in cuts {
            chunks.push(&wire[prev..c]);
            prev = c;
        }
        chunks.push(&wire[prev..]);
        proptest::prop_assert_eq!(run_stream(api, &chunks), run_stream(api, &[wire]));
    }
}

#[test]
fn errors_are_normalised_with_faithful_status() {
    let cases: [(&str, u16, Option<&str>, &[u8]); 4] = [
        (
            "throttling",
            429,
            Some("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            br#"{"message":"Too many requests, please wait before trying again."}"#,
        ),
        (
            "validation",
            400,
            Some("ValidationException"),
            br#"{"message":"The model returned the following errors: max_tokens: Field required"}"#,
        ),
        (
            "access_denied",
            403,
            Some("AccessDeniedException"),
            br#"{"Message":"You don't have access to the model with the specified model ID."}"#,
        ),
        ("non_json", 503, None, b"<html>Service Unavailable</html>"),
    ];
    for (name, status, kind, body) in cases {
        let mut headers = HeaderMap::new();
        if let Some(k) = kind {
            headers.insert("x-amzn-errortype", HeaderValue::from_static(k));
        }
        for api in [ClientApi::OpenAI, ClientApi::Anthropic] {
            let mut t = translator(api);
            let e = t
                .response_error(StatusCode::from_u16(status).unwrap(), &headers, body)
                .unwrap();
            assert_eq!(e.status.as_u16(), status);
            let v: serde_json::Value = serde_json::from_slice(&e.body).unwrap();
            insta::assert_snapshot!(
                format!("bedrock_{api:?}_error__{name}").to_lowercase(),
                serde_json::to_string_pretty(&v).unwrap()
            );
        }
    }
}

#[test]
fn embeddings() {
    let cases: [(&str, &[u8], &str); 3] = [
        ("titan", br#"{"model":"amazon.titan-embed-text-v2:0","input":"hello world","dimensions":1024}"#, "titan_embeddings"),
        ("cohere_batch", br#"{"model":"cohere.embed-english-v3","input":["hello","world"]}"#, "cohere_embeddings"),
        ("titan_base64", br#"{"model":"amazon.titan-embed-text-v2:0","input":["hello world"],"encoding_format":"base64"}"#, "titan_embeddings"),
    ];
    for (name, req, resp) in cases {
        let mut t = EmbeddingsTranslator::new(None);
        let rq = request_snapshot(&mut t, Endpoint::Embeddings, req, &HeaderMap::new());
        let mut h = HeaderMap::new();
        h.insert(
            "x-amzn-bedrock-input-token-count",
            HeaderValue::from_static("2"),
        );
        let body = std::fs::read(fixture(&format!("bedrock/responses/{resp}.json"))).unwrap();
        let mut t = EmbeddingsTranslator::new(None);
        let rs = response_snapshot(&mut t, Endpoint::Embeddings, req, &h, &body);
        insta::assert_snapshot!(
            format!("bedrock_embeddings__{name}"),
            format!("{rq}\n\n---\n\n{rs}")
        );
    }
    let mut t = EmbeddingsTranslator::new(None);
    let e = request_snapshot(
        &mut t,
        Endpoint::Embeddings,
        br#"{"model":"amazon.titan-embed-text-v2:0","input":["a","b"]}"#,
        &HeaderMap::new(),
    );
    assert!(e.starts_with("ERROR 422"), "{e}");
    let e = request_snapshot(
        &mut t,
        Endpoint::Embeddings,
        br#"{"model":"amazon.titan-embed-text-v2:0","input":[1,2,3]}"#,
        &HeaderMap::new(),
    );
    assert!(e.starts_with("ERROR 422"), "{e}");
}

#[test]
fn factory_arms_build_the_right_cells() {
    use aigw_core::translate::TranslatorSpec;
    use aigw_core::{ApiSchema, VersionedSchema};
    let build = |e: Endpoint, s: ApiSchema| {
        let schema = VersionedSchema::new(s);
        let spec = TranslatorSpec {
            endpoint: e,
            schema: &schema,
            model_override: None,
        };
        match s {
            ApiSchema::GCPVertexAI => aigw_providers::vertex::translator(&spec).map(|_| ()),
            _ => aigw_providers::bedrock::translator(&spec).map(|_| ()),
        }
    };
    for (e, s) in [
        (Endpoint::ChatCompletions, ApiSchema::AWSBedrock),
        (Endpoint::Messages, ApiSchema::AWSBedrock),
        (Endpoint::Embeddings, ApiSchema::AWSBedrock),
        (Endpoint::ChatCompletions, ApiSchema::AWSAnthropic),
        (Endpoint::Messages, ApiSchema::AWSAnthropic),
        (Endpoint::CountTokens, ApiSchema::AWSBedrock),
        (Endpoint::CountTokens, ApiSchema::AWSAnthropic),
        (Endpoint::ChatCompletions, ApiSchema::GCPVertexAI),
        (Endpoint::Messages, ApiSchema::GCPVertexAI),
        (Endpoint::Embeddings, ApiSchema::GCPVertexAI),
        (Endpoint::CountTokens, ApiSchema::GCPVertexAI),
    ] {
        assert!(build(e, s).is_ok(), "{e:?} -> {s:?}");
    }
    for (e, s) in [
        (Endpoint::Completions, ApiSchema::AWSBedrock),
        (Endpoint::Embeddings, ApiSchema::AWSAnthropic),
        (Endpoint::Completions, ApiSchema::GCPVertexAI),
    ] {
        let err = build(e, s).unwrap_err();
        assert_eq!(
            err.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{e:?} -> {s:?}"
        );
    }
}

#[test]
fn count_tokens() {
    use aigw_providers::bedrock::{CountMode, CountTokensTranslator};
    let req = br#"{"model":"anthropic.claude-3-5-sonnet-20240620-v1:0","system":"Be brief.","messages":[{"role":"user","content":"Hello, Claude"}]}"#;
    let mut beta = HeaderMap::new();
    beta.insert(
        "anthropic-beta",
        HeaderValue::from_static("token-counting-2024-11-01"),
    );
    for (name, mode) in [
        ("converse", CountMode::Converse),
        ("invoke_model", CountMode::InvokeModel),
    ] {
        let rq = request_snapshot(
            &mut CountTokensTranslator::new(mode, None, None),
            Endpoint::CountTokens,
            req,
            &beta,
        );
        let rs = response_snapshot(
            &mut CountTokensTranslator::new(mode, None, None),
            Endpoint::CountTokens,
            req,
            &HeaderMap::new(),
            br#"{"inputTokens":14}"#,
        );
        insta::assert_snapshot!(
            format!("bedrock_count_tokens__{name}"),
            format!("{rq}\n\n---\n\n{rs}")
        );
    }
}

#[test]
fn stream_exception_is_reported_in_band_and_clean_streams_are_not() {
    for api in [ClientApi::OpenAI, ClientApi::Anthropic] {
        let mut t = translator(api);
        response_snapshot(
            &mut t,
            endpoint(api),
            stream_request(api),
            &amz_headers(),
            &exception_stream(),
        );
        let e = t.in_band_error().unwrap_or_default();
        assert!(
            e.starts_with("429 throttlingException: Too many"),
            "{api:?}: {e}"
        );

        let mut t = translator(api);
        response_snapshot(
            &mut t,
            endpoint(api),
            stream_request(api),
            &amz_headers(),
            &stream_fixture("basic"),
        );
        assert_eq!(t.in_band_error(), None, "{api:?}");
    }
}

/// One generated Converse stream event: its type and JSON payload.
fn converse_event() -> impl proptest::strategy::Strategy<Value = (&'static str, serde_json::Value)>
{
    use proptest::prelude::*;
    use serde_json::json;
    // Text with quotes, escapes, control characters and non-ASCII.
    let text = || proptest::string::string_regex("(.|[\"\\\\\\n\\t\\u{1}é☃😀]){0,12}").unwrap();
    let index = 0u32..3;
    prop_oneof![
        (index.clone(), text()).prop_map(|(i, t)| (
            "contentBlockDelta",
            json!({"contentBlockIndex": i, "delta": {"text": t}})
        )),
        (index.clone(), text()).prop_map(|(i, t)| (
            "contentBlockDelta",
            json!({"contentBlockIndex": i, "delta": {"reasoningContent": {"text": t}}})
        )),
        (index.clone(), text()).prop_map(|(i, t)| (
            "contentBlockDelta",
            json!({"contentBlockIndex": i, "delta": {"reasoningContent": {"signature": t}}})
        )),
        (index.clone(), text(), text()).prop_map(|(i, id, name)| (
            "contentBlockStart",
            json!({"contentBlockIndex": i, "start": {"toolUse": {"toolUseId": id, "name": name}}})
        )),
        (index.clone(), text()).prop_map(|(i, t)| (
            "contentBlockDelta",
            json!({"contentBlockIndex": i, "delta": {"toolUse": {"input": t}}})
        )),
        index.prop_map(|i| ("contentBlockStop", json!({"contentBlockIndex": i}))),
        Just(("messageStop", json!({"stopReason": "tool_use"}))),
        Just((
            "metadata",
            json!({"usage": {"inputTokens": 3, "outputTokens": 5, "totalTokens": 8}})
        )),
    ]
}

/// Feeds `chunks` to a stream translator for `api` and keeps what was delivered twice:
/// from the text the translator reports, and read back from the bytes it wrote.
fn delivered_both_ways(
    api: ClientApi,
    chunks: &[&[u8]],
) -> (
    aigw_core::estimate::Delivered,
    aigw_core::estimate::Delivered,
) {
    let mut t = translator(api);
    let body = bytes::Bytes::from_static(stream_request(api));
    let info = aigw_core::api::sniff(endpoint(api), &body).unwrap();
    t.request(&aigw_core::RequestContext {
        body: &body,
        info: &info,
        headers: &HeaderMap::new(),
        force_include_usage: false,
    })
    .unwrap();
    t.response_headers(StatusCode::OK, &amz_headers()).unwrap();
    let mut reported = aigw_core::estimate::Delivered::default();
    let mut read = aigw_core::estimate::Delivered::default();
    for (i, c) in chunks.iter().enumerate() {
        let out = t.response_chunk(c, i + 1 == chunks.len()).unwrap();
        reported.push_text(t.event_text().expect("a stream reports its text"));
        read.push(&out.body.unwrap());
    }
    (reported, read)
}

fn split_at<'a>(wire: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    cuts.sort_unstable();
    let (mut chunks, mut prev) = (Vec::new(), 0);
    for c in cuts {
        chunks.push(&wire[prev..c]);
        prev = c;
    }
    chunks.push(&wire[prev..]);
    chunks
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    /// The text a stream translator reports for the estimate is the text the estimate
    /// reads back from the events it wrote, for any split of the upstream stream.
    #[test]
    fn reported_text_is_the_text_of_the_written_events(
        events in proptest::collection::vec(converse_event(), 0..16),
        exception in proptest::bool::ANY,
        cuts in proptest::collection::vec(0usize..4000, 0..8),
        openai in proptest::bool::ANY,
    ) {
        let mut wire = encode_event("messageStart", br#"{"role":"assistant"}"#).unwrap().to_vec();
        for (kind, payload) in &events {
            wire.extend_from_slice(&encode_event(kind, payload.to_string().as_bytes()).unwrap());
        }
        if exception {
            wire.extend_from_slice(
                &encode_exception("throttlingException", br#"{"message":"slow down"}"#).unwrap(),
            );
        }
        let api = if openai { ClientApi::OpenAI } else { ClientApi::Anthropic };
        let (reported, read) = delivered_both_ways(api, &split_at(&wire, &cuts));
        proptest::prop_assert_eq!(format!("{reported:?}"), format!("{read:?}"));
    }

    /// The same over the captured streams (text, tools, reasoning, a broken frame, an
    /// exception).
    #[test]
    fn reported_text_matches_on_the_captures(
        which in 0usize..6,
        cuts in proptest::collection::vec(0usize..4000, 0..12),
        openai in proptest::bool::ANY,
    ) {
        let all = streams();
        let api = if openai { ClientApi::OpenAI } else { ClientApi::Anthropic };
        let (reported, read) = delivered_both_ways(api, &split_at(&all[which].1, &cuts));
        proptest::prop_assert!(which == 3 || read.bytes() > 0, "the capture has text");
        proptest::prop_assert_eq!(format!("{reported:?}"), format!("{read:?}"));
    }
}
