//! Round-trip tests for the Anthropic wire types: parse → serialise gives the same JSON,
//! unknown fields included, at every nesting level.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aigw_core::api::anthropic::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const SAMPLES: &str = "/work/shared/reference/provider-wire-samples";

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
    serde_json::from_str(&std::fs::read_to_string(format!("{SAMPLES}/{path}")).unwrap()).unwrap()
}

#[test]
fn messages_request_samples_round_trip() {
    for name in [
        "basic",
        "cache_control_responses",
        "gpt_adaptive_thinking_with_tools",
        "metadata",
        "reasoning",
        "reasoning_replay",
        "responses_agent_subset",
        "server_tools",
        "structured-output",
        "tool_history_without_tools",
        "tool_result_error",
        "tools",
        // `"role": "system"` inside `messages`: mid-conversation system messages
        // (beta `mid-conversation-system-2026-04-07`), which current clients send.
        "cache_control",
        "system_message",
    ] {
        let v = sample(&format!("requests/messages/{name}.json"));
        let _: MessagesRequest = round_trip(&v);
    }
}

#[test]
fn messages_request_keeps_unknown_fields_at_every_level() {
    let v = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "x_top": [1],
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "hi", "citations": [], "x_text": 1},
                {"type": "image", "source": {"type": "url", "url": "https://x/y.png", "x_src": 2}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "d"}}
            ], "x_msg": 3},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}, "x_tu": 4}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "is_error": true, "content": [{"type": "text", "text": "boom"}]}
            ]}
        ],
        "tools": [
            {"name": "f", "description": "d", "input_schema": {"type": "object"}, "x_tool": 5},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true, "x_tc": 6},
        "thinking": {"type": "enabled", "budget_tokens": 2048, "x_th": 7},
        "temperature": 1,
        "top_k": 5,
        "stop_sequences": ["END"],
        "stream": true
    });
    let r: MessagesRequest = round_trip(&v);
    assert_eq!(r.extra["x_top"], json!([1]));
    let MessageContent::Blocks(b) = &r.messages[0].content else {
        panic!()
    };
    assert!(matches!(b[2], ContentBlock::Other(_)));
    assert!(matches!(
        b[1],
        ContentBlock::Known(KnownBlock::Image { .. })
    ));
    let MessageContent::Blocks(b) = &r.messages[1].content else {
        panic!()
    };
    assert!(matches!(
        b[0],
        ContentBlock::Known(KnownBlock::Thinking { .. })
    ));
    assert!(matches!(
        b[1],
        ContentBlock::Known(KnownBlock::RedactedThinking { .. })
    ));
    assert_eq!(r.tools.as_ref().unwrap()[1].extra["max_uses"], 5);
}

#[test]
fn messages_response_samples_round_trip() {
    for name in ["basic", "multiple_text_blocks", "thinking", "tool"] {
        let v = sample(&format!("response/anthropic/{name}.json"));
        let r: MessagesResponse = round_trip(&v);
        assert_eq!(r.kind, "message");
    }
    let v = sample("response/anthropic/basic.json");
    let r: MessagesResponse = serde_json::from_value(v.clone()).unwrap();
    let u = r.usage.to_token_usage();
    let raw = &v["usage"];
    let expected_input = raw["input_tokens"].as_u64().unwrap()
        + raw["cache_read_input_tokens"].as_u64().unwrap_or(0)
        + raw["cache_creation_input_tokens"].as_u64().unwrap_or(0);
    assert_eq!(u.input, Some(expected_input));
}

#[test]
fn stream_events_round_trip() {
    for name in [
        "stream_basic",
        "stream_message_delta_usage",
        "stream_thinking",
        "stream_tool",
        "stream_tool_empty_args",
    ] {
        let text =
            std::fs::read_to_string(format!("{SAMPLES}/response/anthropic/{name}.json")).unwrap();
        let mut known = 0;
        for line in text.lines() {
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            let v: Value = serde_json::from_str(data.trim()).unwrap();
            let e: StreamEvent = round_trip(&v);
            if let StreamEvent::Known(_) = e {
                known += 1;
            }
        }
        assert!(known >= 3, "{name}");
    }
    let unknown: StreamEvent = round_trip(&json!({"type": "future_event", "x": 1}));
    assert!(matches!(unknown, StreamEvent::Other(_)));
    let delta: StreamEvent = round_trip(
        &json!({"type": "content_block_delta", "index": 2, "delta": {"type": "citations_delta", "citation": {}}}),
    );
    assert!(matches!(
        delta,
        StreamEvent::Known(KnownStreamEvent::ContentBlockDelta {
            delta: BlockDelta::Other(_),
            ..
        })
    ));
}

#[test]
fn count_tokens_round_trip() {
    for name in ["basic", "with_system"] {
        let v = sample(&format!("requests/count-tokens/{name}.json"));
        let _: CountTokensRequest = round_trip(&v);
    }
    let v = sample("response/anthropic/count_tokens.json");
    let r: CountTokensResponse = round_trip(&v);
    assert!(r.input_tokens > 0);
}

#[test]
fn models_and_errors_round_trip() {
    let v = json!({"data": [{"id": "claude-x", "type": "model", "display_name": "Claude X", "created_at": "2025-01-01T00:00:00Z"}],
        "has_more": false, "first_id": "claude-x", "last_id": "claude-x"});
    let l: ModelList = round_trip(&v);
    assert_eq!(serde_json::to_value(ModelList::new(l.data)).unwrap(), v);
    let e: ErrorEnvelope = round_trip(
        &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}, "request_id": "req_1"}),
    );
    assert_eq!(e.error.kind, "overloaded_error");
}
