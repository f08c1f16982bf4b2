//! Golden tests: OpenAI chat and Anthropic Messages → Claude on Bedrock InvokeModel
//! (`AWSAnthropic`): request bodies, whole responses, and
//! `invoke-with-response-stream` eventstreams whose `chunk` events wrap base64
//! Anthropic stream events.
//!
//! The stream inputs are Anthropic SSE captures (`tests/fixtures/bedrock/invoke/*.sse`)
//! re-framed exactly as Bedrock frames them: one eventstream `chunk` event per SSE
//! event, payload `{"bytes": base64(data)}`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "golden_bedrock_support/mod.rs"]
mod support;

use aigw_core::api::Endpoint;
use aigw_core::{ClientApi, Translator};
use aigw_providers::bedrock::InvokeTranslator;
use aigw_providers::eventstream::{encode_event, encode_exception};
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, StatusCode};
use support::*;

const MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";

fn translator(api: ClientApi) -> InvokeTranslator {
    InvokeTranslator::new(api, None, None)
}

fn endpoint(api: ClientApi) -> Endpoint {
    match api {
        ClientApi::OpenAI => Endpoint::ChatCompletions,
        ClientApi::Anthropic => Endpoint::Messages,
    }
}

fn stream_request(api: ClientApi) -> Vec<u8> {
    match api {
        ClientApi::OpenAI => format!(r#"{{"model":"{MODEL}","messages":[{{"role":"user","content":"Hi"}}],"stream":true,"stream_options":{{"include_usage":true}}}}"#),
        ClientApi::Anthropic => format!(r#"{{"model":"{MODEL}","max_tokens":10,"messages":[{{"role":"user","content":"Hi"}}],"stream":true}}"#),
    }
    .into_bytes()
}

fn plain_request(api: ClientApi) -> Vec<u8> {
    String::from_utf8(stream_request(api))
        .unwrap()
        .replace(",\"stream\":true", "")
        .replace(",\"stream_options\":{\"include_usage\":true}", "")
        .into_bytes()
}

/// Re-frames an Anthropic SSE capture as Bedrock's invoke-with-response-stream.
fn invoke_stream(sse: &str) -> Vec<u8> {
    let mut w = Vec::new();
    for line in sse.lines() {
        if let Some(data) = line.strip_prefix("data: ") {
            let data = data.trim_end();
            let b64 = base64::engine::general_purpose::STANDARD.encode(data);
            let payload = format!(r#"{{"bytes":"{b64}"}}"#);
            w.extend_from_slice(&encode_event("chunk", payload.as_bytes()).unwrap());
        }
    }
    w
}

fn streams() -> Vec<(&'static str, Vec<u8>)> {
    let mut v: Vec<(&'static str, Vec<u8>)> = ["stream_basic", "stream_tool", "stream_thinking"]
        .into_iter()
        .map(|n| {
            (
                n,
                invoke_stream(
                    &std::fs::read_to_string(fixture(&format!("bedrock/invoke/{n}.sse"))).unwrap(),
                ),
            )
        })
        .collect();
    let mut exc = invoke_stream(
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_x\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n",
    );
    exc.extend_from_slice(
        &encode_exception(
            "modelStreamErrorException",
            br#"{"message":"The model stream failed."}"#,
        )
        .unwrap(),
    );
    v.push(("stream_exception", exc));
    // A real InvokeModel capture of a non-Claude model: its payloads are not Anthropic
    // events, which must surface as a clean error, not a panic or silence.
    v.push((
        "stream_foreign",
        std::fs::read(fixture("bedrock/responses/invoke.bin")).unwrap(),
    ));
    v
}

fn amz() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-amzn-requestid", HeaderValue::from_static("req-0002"));
    h
}

#[test]
fn requests() {
    let mut beta = HeaderMap::new();
    beta.insert(
        "anthropic-beta",
        HeaderValue::from_static("prompt-caching-2024-07-31, output-128k-2025-02-19"),
    );
    for (name, body) in json_files("bedrock/requests/openai") {
        let snap = request_snapshot(
            &mut translator(ClientApi::OpenAI),
            Endpoint::ChatCompletions,
            &body,
            &HeaderMap::new(),
        );
        insta::assert_snapshot!(format!("invoke_openai_request__{name}"), snap);
    }
    for (name, body) in json_files("bedrock/requests/anthropic") {
        let snap = request_snapshot(
            &mut translator(ClientApi::Anthropic),
            Endpoint::Messages,
            &body,
            &beta,
        );
        insta::assert_snapshot!(format!("invoke_anthropic_request__{name}"), snap);
    }
}

#[test]
fn schema_version_and_override_apply() {
    let mut t = InvokeTranslator::new(
        ClientApi::Anthropic,
        Some("us.anthropic.claude-sonnet-4-20250514-v1:0"),
        Some("bedrock-2023-05-31-custom"),
    );
    let snap = request_snapshot(
        &mut t,
        Endpoint::Messages,
        &plain_request(ClientApi::Anthropic),
        &HeaderMap::new(),
    );
    assert!(
        snap.starts_with("POST /model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke\n"),
        "{snap}"
    );
    assert!(
        snap.contains("\"anthropic_version\": \"bedrock-2023-05-31-custom\""),
        "{snap}"
    );
    assert!(!snap.contains("\"model\""), "{snap}");
}

#[test]
fn responses() {
    for name in ["basic", "tool", "thinking"] {
        let body = std::fs::read(fixture(&format!("bedrock/invoke/{name}.json"))).unwrap();
        for api in [ClientApi::OpenAI, ClientApi::Anthropic] {
            let snap = response_snapshot(
                &mut translator(api),
                endpoint(api),
                &plain_request(api),
                &amz(),
                &body,
            );
            insta::assert_snapshot!(
                format!("invoke_{api:?}_response__{name}").to_lowercase(),
                snap
            );
        }
    }
}

#[test]
fn stream_responses() {
    for (name, wire) in streams() {
        for api in [ClientApi::OpenAI, ClientApi::Anthropic] {
            let mut t = translator(api);
            let snap =
                response_snapshot(&mut t, endpoint(api), &stream_request(api), &amz(), &wire);
            insta::assert_snapshot!(format!("invoke_{api:?}_{name}").to_lowercase(), snap);
            // A failure already rendered into the 200 stream is reported in-band, so
            // the exchange records the request as failed; clean streams report none.
            assert_eq!(
                t.in_band_error().is_some(),
                ["stream_exception", "stream_foreign"].contains(&name),
                "{name} {api:?}: {:?}",
                t.in_band_error()
            );
        }
    }
}

fn run_stream(api: ClientApi, chunks: &[&[u8]]) -> (String, aigw_core::TokenUsage) {
    let mut t = translator(api);
    let body = bytes::Bytes::from(stream_request(api));
    let info = aigw_core::api::sniff(endpoint(api), &body).unwrap();
    let headers = HeaderMap::new();
    t.request(&aigw_core::RequestContext {
        body: &body,
        info: &info,
        headers: &headers,
        force_include_usage: false,
    })
    .unwrap();
    t.response_headers(StatusCode::OK, &amz()).unwrap();
    let (out, usage, _) = feed(&mut t, chunks);
    (normalize(&String::from_utf8(out).unwrap()), usage)
}

#[test]
fn every_split_gives_identical_output() {
    for (name, wire) in streams() {
        for api in [ClientApi::OpenAI, ClientApi::Anthropic] {
            let whole = run_stream(api, &[&wire]);
            for cut in (0..=wire.len()).step_by(5) {
                let (a, b) = wire.split_at(cut);
                assert_eq!(
                    run_stream(api, &[a, b]),
                    whole,
                    "{name} {api:?} cut at {cut}"
                );
            }
            let bytes: Vec<&[u8]> = wire.chunks(1).collect();
            assert_eq!(
                run_stream(api, &bytes),
                whole,
                "{name} {api:?} byte-by-byte"
            );
        }
    }
}

#[test]
fn anthropic_stream_usage_adds_cache_tokens() {
    let (_, usage) = run_stream(ClientApi::Anthropic, &[&streams()[2].1]);
    // stream_thinking: input 47 (+0 cache) in message_start, output from message_delta.
    assert_eq!(usage.input, Some(47));
    assert!(usage.output.is_some_and(|o| o > 4), "{usage:?}");
}
