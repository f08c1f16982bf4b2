//! Golden tests: vendor-specific top-level fields of an OpenAI chat request reach the
//! backends that accept them (Gemini `safetySettings`, `cachedContent`, `labels`, extra
//! `generationConfig`, the `google_search` tool; Bedrock `additionalModelRequestFields`,
//! `guardrailConfig`, `performanceConfig`, `promptVariables`; Anthropic `metadata`,
//! `top_k`, `service_tier`) and are refused or dropped where they mean nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "golden_bedrock_support/mod.rs"]
mod support;

use aigw_core::ClientApi;
use aigw_core::api::Endpoint;
use aigw_providers::anthropic::{ChatToAnthropic, Platform};
use aigw_providers::bedrock::ConverseTranslator;
use aigw_providers::vertex::GeminiTranslator;
use http::HeaderMap;
use support::*;

const GEMINI: &[u8] = br#"{
  "model": "gemini-2.5-pro",
  "messages": [{"role": "user", "content": "Latest Rust release?"}],
  "temperature": 0.3,
  "reasoning_effort": "low",
  "tools": [
    {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}},
    {"type": "google_search"}
  ],
  "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
  "cachedContent": "projects/p/locations/us-central1/cachedContents/c1",
  "labels": {"team": "search", "env": "prod"},
  "generationConfig": {
    "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": false},
    "responseModalities": ["TEXT"],
    "mediaResolution": "MEDIA_RESOLUTION_LOW",
    "seed": 7
  }
}"#;

fn gemini(body: &[u8]) -> String {
    request_snapshot(
        &mut GeminiTranslator::new(ClientApi::OpenAI, None),
        Endpoint::ChatCompletions,
        body,
        &HeaderMap::new(),
    )
}

#[test]
fn gemini_vendor_fields_pass_through() {
    let snap = gemini(GEMINI);
    // The client's Gemini-native thinkingConfig replaces the one derived from
    // reasoning_effort; the derived temperature stays.
    assert!(snap.contains("\"thinkingBudget\": 2048"), "{snap}");
    assert!(!snap.contains("\"thinkingBudget\": 1024"), "{snap}");
    assert!(snap.contains("\"temperature\": 0.3"), "{snap}");
    assert!(snap.contains("\"googleSearch\": {}"), "{snap}");
    assert!(snap.contains("\"safetySettings\""), "{snap}");
    assert!(snap.contains("\"cachedContent\""), "{snap}");
    assert!(snap.contains("\"labels\""), "{snap}");
    assert!(snap.contains("\"mediaResolution\""), "{snap}");
    insta::assert_snapshot!("gemini_vendor_fields", snap);
}

#[test]
fn gemini_accepts_snake_case_and_google_search_object_form() {
    let snap = gemini(
        br#"{"model":"m","messages":[{"role":"user","content":"q"}],
        "tools":[{"googleSearch":{"excludeDomains":["example.com"]}}],
        "safety_settings":[{"category":"HARM_CATEGORY_HATE_SPEECH","threshold":"OFF"}],
        "generation_config":{"responseModalities":["TEXT"]}}"#,
    );
    assert!(snap.contains("\"excludeDomains\""), "{snap}");
    assert!(snap.contains("HARM_CATEGORY_HATE_SPEECH"), "{snap}");
    assert!(snap.contains("\"responseModalities\""), "{snap}");
    // No function tools: only the grounding tool is sent.
    assert!(!snap.contains("functionDeclarations"), "{snap}");
}

#[test]
fn gemini_generation_config_must_be_an_object() {
    let snap = gemini(
        br#"{"model":"m","messages":[{"role":"user","content":"q"}],"generationConfig":[1]}"#,
    );
    assert!(snap.contains("400"), "{snap}");
    assert!(snap.contains("generationConfig"), "{snap}");
}

const BEDROCK: &[u8] = br#"{
  "model": "anthropic.claude-3-5-sonnet-20240620-v1:0",
  "messages": [{"role": "user", "content": "Summarise {{doc}}"}],
  "top_k": 40,
  "additionalModelRequestFields": {"anthropic_beta": ["context-1m-2025-08-07"]},
  "guardrailConfig": {"guardrailIdentifier": "gr-1", "guardrailVersion": "2", "trace": "enabled"},
  "performanceConfig": {"latency": "optimized"},
  "promptVariables": {"doc": {"text": "the report"}}
}"#;

fn bedrock(body: &[u8]) -> String {
    request_snapshot(
        &mut ConverseTranslator::new(ClientApi::OpenAI, None),
        Endpoint::ChatCompletions,
        body,
        &HeaderMap::new(),
    )
}

#[test]
fn bedrock_vendor_fields_pass_through() {
    let snap = bedrock(BEDROCK);
    // Client fields merge with the derived ones (top_k) rather than replacing them.
    assert!(snap.contains("\"top_k\": 40"), "{snap}");
    assert!(snap.contains("\"anthropic_beta\""), "{snap}");
    assert!(snap.contains("\"guardrailConfig\""), "{snap}");
    assert!(snap.contains("\"performanceConfig\""), "{snap}");
    assert!(snap.contains("\"promptVariables\""), "{snap}");
    insta::assert_snapshot!("bedrock_vendor_fields", snap);
}

#[test]
fn bedrock_refuses_the_google_search_tool() {
    let snap = bedrock(
        br#"{"model":"anthropic.claude-3-5-sonnet-20240620-v1:0","messages":[{"role":"user","content":"q"}],"tools":[{"type":"google_search"}]}"#,
    );
    assert!(snap.contains("422"), "{snap}");
    assert!(snap.contains("google_search"), "{snap}");
}

fn anthropic(body: &[u8]) -> String {
    request_snapshot(
        &mut ChatToAnthropic::new(
            Platform::Native {
                prefix: None,
                version: None,
            },
            None,
        ),
        Endpoint::ChatCompletions,
        body,
        &HeaderMap::new(),
    )
}

#[test]
fn anthropic_vendor_fields_pass_through() {
    let snap = anthropic(
        br#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"q"}],"user":"u-1",
        "metadata":{"user_id":"tenant-7"},"top_k":5,"service_tier":"standard_only"}"#,
    );
    // Anthropic-shaped metadata wins over the OpenAI `user` mapping.
    assert!(snap.contains("\"user_id\": \"tenant-7\""), "{snap}");
    assert!(!snap.contains("u-1"), "{snap}");
    assert!(snap.contains("\"top_k\": 5"), "{snap}");
    assert!(
        snap.contains("\"service_tier\": \"standard_only\""),
        "{snap}"
    );
    insta::assert_snapshot!("anthropic_vendor_fields", snap);
}

#[test]
fn anthropic_drops_openai_only_metadata_and_tiers() {
    let snap = anthropic(
        br#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"q"}],"user":"u-1",
        "metadata":{"trace":"abc"},"service_tier":"flex"}"#,
    );
    assert!(snap.contains("\"user_id\": \"u-1\""), "{snap}");
    assert!(!snap.contains("trace"), "{snap}");
    assert!(!snap.contains("service_tier"), "{snap}");
}
