//! Golden tests for the OpenAI Chat Completions field map: each request field an OpenAI
//! client can send, in every cell where the gateway translates it (Anthropic native,
//! Claude on Vertex, Claude on Bedrock InvokeModel, Bedrock Converse, Gemini). Each
//! snapshot holds the upstream request and the fields reported dropped, or the 4xx
//! naming the field. The decisions are in `docs/translation-matrix.md` ("OpenAI Chat
//! Completions field map").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod golden_openai_support;

use aigw_core::api::Endpoint;
use aigw_core::{ClientApi, Translator};
use aigw_providers::anthropic::{ChatToAnthropic, Platform};
use aigw_providers::bedrock::{ConverseTranslator, InvokeTranslator};
use aigw_providers::vertex::GeminiTranslator;
use golden_openai_support::*;
use serde_json::{Value, json};

/// Every cell an OpenAI chat request is translated in.
fn cells() -> Vec<(&'static str, Box<dyn Translator>)> {
    vec![
        (
            "anthropic",
            Box::new(ChatToAnthropic::new(
                Platform::Native {
                    prefix: None,
                    version: None,
                },
                Some("claude-opus-5-5"),
            )),
        ),
        (
            "gcp_anthropic",
            Box::new(ChatToAnthropic::new(
                Platform::Vertex {
                    version: "vertex-2023-10-16".into(),
                },
                Some("claude-opus-5-5"),
            )),
        ),
        (
            "aws_anthropic",
            Box::new(InvokeTranslator::new(
                ClientApi::OpenAI,
                Some("global.anthropic.claude-opus-5-5-v1:0"),
                None,
            )),
        ),
        (
            "converse",
            Box::new(ConverseTranslator::new(
                ClientApi::OpenAI,
                Some("amazon.nova-premier-v1:0"),
            )),
        ),
        (
            "gemini",
            Box::new(GeminiTranslator::new(
                ClientApi::OpenAI,
                Some("gemini-3.5-pro"),
            )),
        ),
    ]
}

const PDF: &str = "data:application/pdf;base64,JVBERi0xLjQK";
const PNG: &str = "data:image/png;base64,iVBORw0KGgo=";

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

/// One request per field (or group of fields with the same decision).
fn cases() -> Vec<(&'static str, Value)> {
    vec![
        (
            "mid_conversation_system",
            json!({"messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
                user("List the files."),
                {"role": "assistant", "content": "a.txt b.txt"},
                {"role": "developer", "content": "From now on, answer in French."},
                user("And now?"),
                {"role": "system", "content": "The user is on a mobile device."}
            ]}),
        ),
        (
            "bookkeeping_fields",
            json!({
                "messages": [
                    {"role": "user", "name": "alice", "content": [
                        {"type": "text", "text": "What is in this picture?"},
                        {"type": "image_url", "image_url": {"url": PNG, "detail": "high"}}
                    ]}
                ],
                "user": "end-user-42",
                "safety_identifier": "hashed-user-42",
                "metadata": {"team": "search"},
                "store": true,
                "service_tier": "flex",
                "prompt_cache_key": "tenant-7",
                "prompt_cache_retention": "24h"
            }),
        ),
        (
            "file_part_inline",
            json!({"messages": [{"role": "user", "content": [
                {"type": "text", "text": "Summarise the report."},
                {"type": "file", "file": {"filename": "report.pdf", "file_data": PDF}}
            ]}]}),
        ),
        (
            "file_part_id",
            json!({"messages": [{"role": "user", "content": [
                {"type": "file", "file": {"file_id": "file-abc123"}}
            ]}]}),
        ),
        (
            "input_audio",
            json!({"messages": [{"role": "user", "content": [
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
            ]}]}),
        ),
        (
            "web_search_options",
            json!({"messages": [user("Latest Rust release?")], "web_search_options": {}}),
        ),
        (
            "web_search_user_location",
            json!({"messages": [user("Weather?")], "web_search_options": {
                "user_location": {"type": "approximate", "approximate": {"city": "Paris"}}
            }}),
        ),
        (
            "verbosity_low",
            json!({"messages": [user("Hi")], "verbosity": "low"}),
        ),
        (
            "modalities_audio",
            json!({"messages": [user("Hi")], "modalities": ["text", "audio"],
                   "audio": {"voice": "alloy", "format": "wav"}}),
        ),
        (
            "modalities_text",
            json!({"messages": [user("Hi")], "modalities": ["text"]}),
        ),
        (
            "top_logprobs",
            json!({"messages": [user("Hi")], "logprobs": false, "top_logprobs": 3}),
        ),
        (
            "logit_bias",
            json!({"messages": [user("Hi")], "logit_bias": {"1234": -100}}),
        ),
        (
            "prediction",
            json!({"messages": [user("Hi")], "prediction": {"type": "content", "content": "Hello"}}),
        ),
        (
            "legacy_functions",
            json!({"messages": [user("Hi")], "functions": [{"name": "f", "parameters": {"type": "object"}}]}),
        ),
        (
            "sampling",
            json!({"messages": [user("Hi")], "temperature": 0.3, "top_p": 0.9,
                   "stop": ["END"], "max_completion_tokens": 300, "max_tokens": 100, "n": 1}),
        ),
        (
            "seed_and_penalties",
            json!({"messages": [user("Hi")], "seed": 7, "presence_penalty": 0.5,
                   "frequency_penalty": 0.25}),
        ),
        ("n_two", json!({"messages": [user("Hi")], "n": 2})),
        (
            "reasoning_effort",
            json!({"messages": [user("Prove it.")], "reasoning_effort": "high",
                   "max_completion_tokens": 32000}),
        ),
        (
            "tools_parallel_off",
            json!({"messages": [user("Weather in Oslo?")],
                   "tools": [{"type": "function", "function": {"name": "weather",
                       "description": "Current weather", "parameters": {"type": "object",
                       "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
                   "tool_choice": {"type": "function", "function": {"name": "weather"}},
                   "parallel_tool_calls": false}),
        ),
        (
            "response_format_json_schema",
            json!({"messages": [user("Give me a city.")], "response_format": {
                "type": "json_schema", "json_schema": {"name": "city", "strict": true,
                "schema": {"type": "object", "properties": {"name": {"type": "string"}},
                "required": ["name"], "additionalProperties": false}}}}),
        ),
        (
            "response_format_json_object",
            json!({"messages": [user("Give me JSON.")], "response_format": {"type": "json_object"}}),
        ),
        (
            "stream_include_usage",
            json!({"messages": [user("Hi")], "stream": true,
                   "stream_options": {"include_usage": true}}),
        ),
    ]
}

fn translate(t: &mut dyn Translator, body: &Value) -> Value {
    let body = serde_json::to_vec(body).unwrap();
    match request(t, Endpoint::ChatCompletions, &body, &headers(&[]), false) {
        Ok(v) => {
            let dropped: Vec<_> = t.dropped_fields().iter().map(|d| d.field).collect();
            json!({"request": v, "dropped": dropped})
        }
        Err(e) => json!({"error": e.status().as_u16(), "message": e.to_string()}),
    }
}

#[test]
fn chat_fields_in_every_cell() {
    for (name, mut body) in cases() {
        body["model"] = json!("client-model");
        for (cell, mut t) in cells() {
            let v = translate(t.as_mut(), &body);
            insta::assert_json_snapshot!(format!("{name}__{cell}"), v);
        }
    }
}

/// A field that can change the answer is never dropped: each such case is a 4xx naming
/// the field in every cell without a counterpart.
#[test]
fn untranslatable_fields_are_named_in_the_error() {
    let named = [
        ("file_part_id", ".file"),
        ("input_audio", "content[0]"),
        ("verbosity_low", "verbosity"),
        ("modalities_audio", ""),
        ("top_logprobs", "logprobs"),
        ("logit_bias", "logit_bias"),
        ("prediction", "prediction"),
        ("legacy_functions", "functions"),
        ("web_search_user_location", "web_search_options"),
    ];
    let cases = cases();
    for (name, field) in named {
        let (_, mut body) = cases.iter().find(|(n, _)| *n == name).unwrap().clone();
        body["model"] = json!("client-model");
        for (cell, mut t) in cells() {
            let v = translate(t.as_mut(), &body);
            let status = v["error"]
                .as_u64()
                .unwrap_or_else(|| panic!("{name} → {cell}: {v}"));
            assert!((400..500).contains(&status), "{name} → {cell}: {v}");
            let msg = v["message"].as_str().unwrap();
            assert!(msg.contains(field), "{name} → {cell}: {msg}");
        }
    }
}

/// The bookkeeping fields are dropped, and reported, in every cell.
#[test]
fn bookkeeping_fields_are_reported_dropped() {
    let (_, mut body) = cases()
        .into_iter()
        .find(|(n, _)| *n == "bookkeeping_fields")
        .unwrap();
    body["model"] = json!("client-model");
    for (cell, mut t) in cells() {
        let v = translate(t.as_mut(), &body);
        let dropped: Vec<&str> = v["dropped"]
            .as_array()
            .unwrap_or_else(|| panic!("{cell}: {v}"))
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        for f in [
            "metadata",
            "store",
            "service_tier",
            "prompt_cache_key",
            "prompt_cache_retention",
            "messages.name",
            "image_url.detail",
        ] {
            assert!(
                dropped.contains(&f),
                "{cell}: {f} not reported in {dropped:?}"
            );
        }
    }
}
