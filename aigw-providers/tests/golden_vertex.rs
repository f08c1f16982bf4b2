//! Golden tests: OpenAI chat and Anthropic Messages ⇄ Gemini on Vertex AI
//! (`generateContent`, `streamGenerateContent?alt=sse`), and OpenAI embeddings →
//! Vertex `:predict` / `:embedContent`.
//!
//! Requests reuse the chat fixtures of the Bedrock tests (with the backendRef model
//! override `gemini-2.5-pro`); responses are the Gemini samples under
//! `tests/fixtures/vertex/responses/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "golden_bedrock_support/mod.rs"]
mod support;

use aigw_core::api::Endpoint;
use aigw_core::{ClientApi, Translator};
use aigw_providers::vertex::{EmbeddingsTranslator, GeminiTranslator};
use http::{HeaderMap, StatusCode};
use support::*;

const MODEL: &str = "gemini-2.5-pro";
const OPENAI_STREAM: &[u8] =
    br#"{"model":"gemini","messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true}}"#;
const OPENAI_PLAIN: &[u8] = br#"{"model":"gemini","messages":[{"role":"user","content":"Hi"}]}"#;
const ANTHROPIC_STREAM: &[u8] =
    br#"{"model":"gemini","max_tokens":10,"messages":[{"role":"user","content":"Hi"}],"stream":true}"#;
const ANTHROPIC_PLAIN: &[u8] =
    br#"{"model":"gemini","max_tokens":10,"messages":[{"role":"user","content":"Hi"}]}"#;

fn translator(api: ClientApi) -> GeminiTranslator {
    GeminiTranslator::new(api, Some(MODEL))
}

fn endpoint(api: ClientApi) -> Endpoint {
    match api {
        ClientApi::OpenAI => Endpoint::ChatCompletions,
        ClientApi::Anthropic => Endpoint::Messages,
    }
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
        insta::assert_snapshot!(format!("vertex_openai_request__{name}"), snap);
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
        insta::assert_snapshot!(format!("vertex_anthropic_request__{name}"), snap);
    }
}

#[test]
fn gemini_signed_tool_call_ids_replay_the_signature() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"w?"},
      {"role":"assistant","tool_calls":[{"id":"fc_1__thought__U0lH","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Tokyo\"}"}}]},
      {"role":"tool","tool_call_id":"fc_1__thought__U0lH","content":"sunny"}]}"#;
    let snap = request_snapshot(
        &mut translator(ClientApi::OpenAI),
        Endpoint::ChatCompletions,
        body,
        &HeaderMap::new(),
    );
    assert!(snap.contains("\"thoughtSignature\": \"U0lH\""), "{snap}");
    assert!(snap.contains("\"id\": \"fc_1\""), "{snap}");
    assert!(snap.contains("\"functionResponse\""), "{snap}");
}

#[test]
fn n_maps_to_candidate_count_and_choices() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"flip"}],"n":2}"#;
    let snap = request_snapshot(
        &mut translator(ClientApi::OpenAI),
        Endpoint::ChatCompletions,
        body,
        &HeaderMap::new(),
    );
    assert!(snap.contains("\"candidateCount\": 2"), "{snap}");
    let resp = std::fs::read(fixture("vertex/responses/two_candidates.json")).unwrap();
    let snap = response_snapshot(
        &mut translator(ClientApi::OpenAI),
        Endpoint::ChatCompletions,
        body,
        &HeaderMap::new(),
        &resp,
    );
    insta::assert_snapshot!("vertex_openai_response__two_candidates", snap);
}

#[test]
fn responses() {
    for (name, body) in json_files("vertex/responses") {
        if name.contains("embeddings") || name == "two_candidates" {
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
                &HeaderMap::new(),
                &body,
            );
            insta::assert_snapshot!(
                format!("vertex_{api:?}_response__{name}").to_lowercase(),
                snap
            );
        }
    }
}

fn streams() -> Vec<(&'static str, Vec<u8>)> {
    ["stream_tool", "stream_text", "stream_error"]
        .into_iter()
        .map(|n| {
            (
                n,
                std::fs::read(fixture(&format!("vertex/responses/{n}.sse"))).unwrap(),
            )
        })
        .collect()
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
            let mut t = translator(api);
            let snap = response_snapshot(
                &mut t,
                endpoint(api),
                stream_request(api),
                &HeaderMap::new(),
                &wire,
            );
            insta::assert_snapshot!(format!("vertex_{api:?}_{name}").to_lowercase(), snap);
            // A failure already rendered into the 200 stream is reported in-band, so
            // the exchange records the request as failed; clean streams report none.
            assert_eq!(
                t.in_band_error().is_some(),
                ["stream_error"].contains(&name),
                "{name} {api:?}: {:?}",
                t.in_band_error()
            );
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
    t.response_headers(StatusCode::OK, &headers).unwrap();
    let (out, usage, _) = feed(&mut t, chunks);
    (normalize(&String::from_utf8(out).unwrap()), usage)
}

#[test]
fn every_split_gives_identical_output() {
    for (name, wire) in streams() {
        for api in [ClientApi::OpenAI, ClientApi::Anthropic] {
            let whole = run_stream(api, &[&wire]);
            for cut in 0..=wire.len() {
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

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn any_chunking_gives_identical_output_and_usage(
        which in 0usize..3,
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
    let cases: [(&str, u16, &[u8]); 4] = [
        ("resource_exhausted", 429, br#"{"error":{"code":429,"message":"Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_per_base_model","status":"RESOURCE_EXHAUSTED"}}"#),
        ("invalid_argument", 400, br#"[{"error":{"code":400,"message":"Request contains an invalid argument.","status":"INVALID_ARGUMENT"}}]"#),
        ("not_found", 404, br#"{"error":{"code":404,"message":"Publisher Model `gemini-9` was not found.","status":"NOT_FOUND"}}"#),
        ("non_json", 502, b"upstream connect error or disconnect/reset before headers"),
    ];
    for (name, status, body) in cases {
        for api in [ClientApi::OpenAI, ClientApi::Anthropic] {
            let e = translator(api)
                .response_error(
                    StatusCode::from_u16(status).unwrap(),
                    &HeaderMap::new(),
                    body,
                )
                .unwrap();
            assert_eq!(e.status.as_u16(), status);
            let v: serde_json::Value = serde_json::from_slice(&e.body).unwrap();
            insta::assert_snapshot!(
                format!("vertex_{api:?}_error__{name}").to_lowercase(),
                serde_json::to_string_pretty(&v).unwrap()
            );
        }
    }
}

#[test]
fn embeddings() {
    let predict_resp = std::fs::read(fixture("vertex/responses/embeddings.json")).unwrap();
    let embed_resp =
        br#"{"embedding":{"values":[0.25,-0.5]},"usageMetadata":{"promptTokenCount":3}}"#;
    let cases: [(&str, &[u8], &[u8]); 2] = [
        ("predict_batch", br#"{"model":"text-embedding-004","input":["hello","world"],"dimensions":512,"task_type":"RETRIEVAL_DOCUMENT","title":"My Document","auto_truncate":true}"#, &predict_resp),
        ("embed_content", br#"{"model":"gemini-embedding-2-preview","input":"hello world","dimensions":256}"#, embed_resp),
    ];
    for (name, req, resp) in cases {
        let rq = request_snapshot(
            &mut EmbeddingsTranslator::new(None),
            Endpoint::Embeddings,
            req,
            &HeaderMap::new(),
        );
        let rs = response_snapshot(
            &mut EmbeddingsTranslator::new(None),
            Endpoint::Embeddings,
            req,
            &HeaderMap::new(),
            resp,
        );
        insta::assert_snapshot!(
            format!("vertex_embeddings__{name}"),
            format!("{rq}\n\n---\n\n{rs}")
        );
    }
    let e = request_snapshot(
        &mut EmbeddingsTranslator::new(None),
        Endpoint::Embeddings,
        br#"{"model":"gemini-embedding-2-preview","input":["a","b"]}"#,
        &HeaderMap::new(),
    );
    assert!(e.starts_with("ERROR 422"), "{e}");
}

#[test]
fn count_tokens() {
    use aigw_providers::vertex::CountTokensTranslator;
    let req = br#"{"model":"m","system":"Be brief.","messages":[{"role":"user","content":"Hello"}],"tools":[{"name":"f","input_schema":{"type":"object"}}]}"#;
    let rq = request_snapshot(
        &mut CountTokensTranslator::new(Some(MODEL)),
        Endpoint::CountTokens,
        req,
        &HeaderMap::new(),
    );
    let rs = response_snapshot(
        &mut CountTokensTranslator::new(Some(MODEL)),
        Endpoint::CountTokens,
        req,
        &HeaderMap::new(),
        br#"{"totalTokens":31,"totalBillableCharacters":96}"#,
    );
    insta::assert_snapshot!("vertex_count_tokens", format!("{rq}\n\n---\n\n{rs}"));
}

#[test]
fn tool_result_images_follow_the_function_response_for_gemini() {
    // Function responses are JSON; the image a tool returned follows as an inline part
    // of the same turn (Claude Code's Read tool on a screenshot).
    let body = br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"},
      {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"shot","input":{}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"saved"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"aGk="}}]}]}]}"#;
    let snap = request_snapshot(
        &mut translator(ClientApi::Anthropic),
        Endpoint::Messages,
        body,
        &HeaderMap::new(),
    );
    let at = |s: &str| snap.find(s).unwrap_or_else(|| panic!("{s}: {snap}"));
    assert!(at("\"functionResponse\"") < at("\"inlineData\""), "{snap}");
    assert!(snap.contains("\"data\": \"aGk=\""), "{snap}");
}
