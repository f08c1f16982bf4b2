//! Round-trip tests for the OpenAI wire types: parse → serialise gives the same JSON,
//! unknown fields included, at every nesting level.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aigw_core::api::openai::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const SAMPLES: &str = "/work/shared/reference/provider-wire-samples";

/// Known optional fields read `null` as absent, so compare without nulls.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn round_trip<T: Serialize + DeserializeOwned>(input: &Value) -> T {
    let parsed: T = serde_json::from_value(input.clone()).expect("parse");
    let mut out = serde_json::to_value(&parsed).unwrap();
    let mut expected = input.clone();
    strip_nulls(&mut out);
    strip_nulls(&mut expected);
    assert_eq!(out, expected);
    parsed
}

fn sample(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{SAMPLES}/{path}"))
        .or_else(|_| std::fs::read_to_string(format!("tests/fixtures/{path}")))
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn chat_request_samples_round_trip() {
    for name in [
        "basic",
        "full",
        "generation-config",
        "image-file",
        "image-inline",
        "image-url",
        "multi-turn-tools",
        "parallel-tool-call",
        "reasoning",
        "reasoning_max",
        "reasoning_replay",
        "reasoning_replay_unsigned",
        "structured-output",
        "tool-call",
    ] {
        let v = sample(&format!("requests/completions/{name}.json"));
        let _: ChatCompletionRequest = round_trip(&v);
    }
}

#[test]
fn chat_request_keeps_unknown_fields_at_every_level() {
    let v = json!({
        "model": "gpt-4o",
        "x_top": {"a": 1},
        "stream": true,
        "stream_options": {"include_usage": true, "x_so": 1},
        "temperature": 1,
        "top_p": 0.25,
        "n": 2,
        "stop": "END",
        "messages": [
            {"role": "developer", "content": "be brief", "x_msg": true},
            {"role": "user", "content": [
                {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low", "x_img": 2}},
                {"type": "input_audio", "input_audio": {"data": "AAA=", "format": "wav"}},
                {"type": "future_part", "payload": [1, 2]}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}", "x_fn": 3}, "x_call": 4}
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"}
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": true, "x_def": 5}, "x_tool": 6}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "parallel_tool_calls": false,
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}, "strict": true, "x_js": 7}},
        "reasoning_effort": "low",
        "logprobs": true,
        "top_logprobs": 3,
        "max_completion_tokens": 100
    });
    let r: ChatCompletionRequest = round_trip(&v);
    assert_eq!(r.extra["x_top"], json!({"a": 1}));
    assert_eq!(r.stream_options.unwrap().extra["x_so"], 1);
    assert_eq!(r.temperature.unwrap().to_string(), "1");
    assert_eq!(r.stop.unwrap().to_vec(), vec!["END"]);
    assert!(matches!(r.tool_choice, Some(ToolChoice::Named(_))));
    let Some(MessageContent::Parts(parts)) = &r.messages[1].content else {
        panic!("parts")
    };
    assert!(matches!(parts[3], ContentPart::Other(_)));
    assert!(matches!(
        parts[1],
        ContentPart::Known(KnownContentPart::ImageUrl { .. })
    ));
}

#[test]
fn chat_response_samples_round_trip() {
    for name in [
        "basic",
        "cache_write",
        "gemini_with_completion_tokens",
        "gemini_zero_completion_tokens",
        "openrouter_reasoning",
        "tool_call",
        "truncated_tool_call",
        "audio",
    ] {
        let v = sample(&format!("response/completions/{name}.json"));
        let c: ChatCompletion = round_trip(&v);
        assert!(!c.choices.is_empty(), "{name}");
    }
}

#[test]
fn chat_response_usage_maps_to_token_usage() {
    let v = sample("response/completions/cache_write.json");
    let c: ChatCompletion = serde_json::from_value(v.clone()).unwrap();
    let u = c.usage.unwrap().to_token_usage();
    assert_eq!(u.input, v["usage"]["prompt_tokens"].as_u64());
    assert_eq!(u.output, v["usage"]["completion_tokens"].as_u64());
}

#[test]
fn stream_chunks_round_trip() {
    let text =
        std::fs::read_to_string(format!("{SAMPLES}/response/completions/stream.json")).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        let c: ChatCompletionChunk = round_trip(&v);
        assert!(c.extra.contains_key("obfuscation"));
        n += 1;
    }
    assert!(n > 10);
    let tool_delta = json!({
        "id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": null, "delta": {"tool_calls": [
            {"index": 1, "id": "c", "type": "function", "function": {"name": "f", "arguments": "{\"", "x": 1}}
        ]}}]
    });
    let c: ChatCompletionChunk = round_trip(&tool_delta);
    assert_eq!(c.choices[0].delta.tool_calls.as_ref().unwrap()[0].index, 1);
    // `finish_reason` is always present on the wire, null until the last delta.
    assert!(
        serde_json::to_value(&c).unwrap()["choices"][0]
            .as_object()
            .unwrap()
            .contains_key("finish_reason")
    );
}

#[test]
fn completions_round_trip() {
    let req = json!({"model": "m", "prompt": ["a", "b"], "max_tokens": 5, "echo": true, "suffix": "z",
        "stream": true, "stream_options": {"include_usage": true}});
    let r: CompletionRequest = round_trip(&req);
    assert_eq!(r.extra["echo"], true);
    let resp = json!({"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
        "choices": [{"text": "hi", "index": 0, "finish_reason": "stop", "logprobs": null, "x": 1}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}, "system_fingerprint": "fp"});
    let c: Completion = round_trip(&resp);
    assert_eq!(c.choices[0].text, "hi");
}

#[test]
fn embeddings_round_trip() {
    for name in ["array", "basic", "cohere-v4", "full"] {
        let v = sample(&format!("requests/embeddings/{name}.json"));
        let _: EmbeddingRequest = round_trip(&v);
    }
    let tokens: EmbeddingRequest = round_trip(
        &json!({"model": "m", "input": [[1, 2], [3]], "encoding_format": "base64", "dimensions": 256}),
    );
    assert_eq!(tokens.input.len(), 2);
    assert!(matches!(tokens.input, EmbeddingInput::TokenBatches(_)));
    let one: EmbeddingRequest = round_trip(&json!({"model": "m", "input": [1, 2, 3]}));
    assert!(matches!(one.input, EmbeddingInput::Tokens(_)));
    for name in ["openai/embeddings", "openai/gemini-embeddings"] {
        let v = sample(&format!("response/{name}.json"));
        let _: EmbeddingResponse = round_trip(&v);
    }
    let b64: EmbeddingResponse = round_trip(&json!({"object": "list", "model": "m",
        "data": [{"object": "embedding", "index": 0, "embedding": "AACAPw=="}],
        "usage": {"prompt_tokens": 2, "total_tokens": 2}}));
    assert!(matches!(b64.data[0].embedding, EmbeddingVector::Base64(_)));
}

#[test]
fn models_round_trip() {
    let v = json!({"object": "list", "data": [{"id": "gpt-4o", "object": "model", "created": 1, "owned_by": "openai", "x": 1}]});
    let l: ModelList = round_trip(&v);
    assert_eq!(l.data[0].id, "gpt-4o");
    assert_eq!(
        serde_json::to_value(ModelList::new(vec![])).unwrap(),
        json!({"object": "list", "data": []})
    );
}
