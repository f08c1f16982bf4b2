//! Golden tests for the Anthropic-backend cells of the matrix: OpenAI chat → Anthropic
//! and GCPAnthropic, Anthropic Messages → Anthropic (passthrough) and GCPAnthropic,
//! count_tokens. Each stream case also proves split invariance (see the support module).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod golden_openai_support;

use aigw_core::api::Endpoint;
use aigw_core::{BodyChange, Translator};
use aigw_providers::anthropic::{ChatToAnthropic, MessagesPassthrough, Platform};
use golden_openai_support::*;
use http::HeaderMap;
use serde_json::{Value, json};

const CREATED: u64 = 1_700_000_000;

fn native() -> Platform {
    Platform::Native {
        prefix: None,
        version: None,
    }
}

fn vertex() -> Platform {
    Platform::Vertex {
        version: "vertex-2023-10-16".into(),
    }
}

fn chat_req(platform: Platform, file: &str) -> Result<Value, aigw_core::Error> {
    let mut t = ChatToAnthropic::new(platform, None).with_created(CREATED);
    request(
        &mut t,
        Endpoint::ChatCompletions,
        &fixture(&format!("openai/requests/{file}")),
        &HeaderMap::new(),
        false,
    )
}

#[test]
fn openai_chat_to_anthropic_requests() {
    for (case, file) in [
        ("basic", "basic.json"),
        ("multi_turn_tool_results", "multi-turn-tools.json"),
        ("tools", "tool-call.json"),
        ("parallel_tools", "parallel-tool-call.json"),
        ("tool_result_error_parallel_off", "tool-result-error.json"),
        ("image_base64", "image-inline.json"),
        ("image_url", "image-url.json"),
        ("structured_output", "structured-output.json"),
        ("json_object", "json-object.json"),
        ("reasoning", "reasoning.json"),
        ("reasoning_replay", "reasoning_replay.json"),
        (
            "reasoning_replay_unsigned",
            "reasoning_replay_unsigned.json",
        ),
        ("cache_control", "cache_control.json"),
        ("stop_and_sampling", "stop.json"),
        ("vendor_fields", "vendor-fields.json"),
    ] {
        let v = chat_req(native(), file).unwrap_or_else(|e| panic!("{case}: {e}"));
        insta::assert_json_snapshot!(format!("chat_to_anthropic_request_{case}"), v);
    }
}

#[test]
fn openai_chat_to_anthropic_request_semantics() {
    // System prompts leave `messages`; tool results share one user turn after the call.
    let v = chat_req(native(), "tool-result-error.json").unwrap();
    assert_eq!(v["body"]["system"], "Use the tools.");
    let msgs = v["body"]["messages"].as_array().unwrap();
    assert_eq!(msgs[1]["content"][1]["type"], "tool_use");
    assert_eq!(msgs[2]["content"][0]["type"], "tool_result");
    assert_eq!(msgs[2]["content"][0]["is_error"], true);
    assert_eq!(msgs[2]["content"][1]["tool_use_id"], "call_p");
    assert_eq!(msgs[2]["content"][2]["text"], "Thanks. And tomorrow?");
    assert_eq!(
        v["body"]["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    assert_eq!(v["headers"]["set"]["anthropic-version"], "2023-06-01");
    assert_eq!(v["path"], "/v1/messages");
    // Images: data URLs become base64 sources, https URLs url sources.
    let v = chat_req(native(), "image-inline.json").unwrap();
    assert_eq!(
        v["body"]["messages"][0]["content"][1]["source"]["type"],
        "base64"
    );
    // reasoning_effort medium → budget 4096, max_tokens raised above it.
    let v = chat_req(native(), "reasoning.json").unwrap();
    assert_eq!(
        v["body"]["thinking"],
        json!({"type": "enabled", "budget_tokens": 4096})
    );
    assert!(v["body"]["max_tokens"].as_u64().unwrap() > 4096);
    // Signed reasoning is replayed as a thinking block ahead of the text.
    let v = chat_req(native(), "reasoning_replay.json").unwrap();
    assert_eq!(
        v["body"]["messages"][1]["content"][0],
        json!({"type": "thinking", "thinking": "Two plus two.", "signature": "SIG-replay=="})
    );
    // Structured output is a forced tool.
    let v = chat_req(native(), "structured-output.json").unwrap();
    assert_eq!(
        v["body"]["tool_choice"],
        json!({"type": "tool", "name": "person"})
    );
}

#[test]
fn openai_chat_to_anthropic_untranslatable_fields_are_422() {
    for (file, field) in [
        ("full.json", "n"),
        ("generation-config.json", "n"),
        ("audio-rejected.json", "messages[0].content[0].type"),
        ("n-rejected.json", "n"),
    ] {
        let e = chat_req(native(), file).unwrap_err();
        assert_eq!(e.status(), http::StatusCode::UNPROCESSABLE_ENTITY, "{file}");
        match e {
            aigw_core::Error::Untranslatable {
                field: f, backend, ..
            } => {
                assert_eq!(f, field, "{file}");
                assert_eq!(backend, "Anthropic");
            }
            other => panic!("{file}: {other}"),
        }
    }
}

#[test]
fn openai_chat_to_gcp_anthropic_requests() {
    let v = chat_req(vertex(), "basic.json").unwrap();
    assert_eq!(
        v["path"],
        "/publishers/anthropic/models/replaceme:rawPredict"
    );
    assert_eq!(v["body"]["anthropic_version"], "vertex-2023-10-16");
    assert!(v["body"].get("model").is_none());
    insta::assert_json_snapshot!("chat_to_gcp_anthropic_request_basic", v);
    let v = chat_req(vertex(), "stop.json").unwrap();
    assert_eq!(
        v["path"],
        "/publishers/anthropic/models/claude-sonnet-4-5:streamRawPredict"
    );
    assert_eq!(v["body"]["stream"], true);
    insta::assert_json_snapshot!("chat_to_gcp_anthropic_request_stream", v);
}

fn chat_resp(file: &str, req_file: &str, stream: bool) -> Output {
    let make = || -> Box<dyn Translator> {
        Box::new(ChatToAnthropic::new(native(), None).with_created(CREATED))
    };
    response(
        &make,
        Endpoint::ChatCompletions,
        &fixture(&format!("openai/requests/{req_file}")),
        &if stream { sse() } else { json_ct() },
        &fixture(&format!("anthropic/responses/{file}")),
    )
}

#[test]
fn anthropic_to_openai_chat_responses() {
    for (case, file, req) in [
        ("basic", "basic.json", "basic.json"),
        (
            "multiple_text_blocks",
            "multiple_text_blocks.json",
            "basic.json",
        ),
        ("tool", "tool.json", "tool-call.json"),
        ("thinking", "thinking.json", "reasoning.json"),
        ("cache_usage", "cache_usage.json", "cache_control.json"),
        (
            "structured_output",
            "structured_output.json",
            "structured-output.json",
        ),
        ("stop_sequence", "stop_sequence.json", "basic.json"),
    ] {
        let out = chat_resp(file, req, false);
        insta::assert_json_snapshot!(
            format!("anthropic_to_chat_response_{case}"),
            snapshot(&out, false)
        );
    }
    // Usage: input includes cache reads and writes (15 + 12 + 13).
    let out = chat_resp("basic.json", "basic.json", false);
    assert_eq!(out.json()["usage"]["prompt_tokens"], 40);
    assert_eq!(
        out.json()["usage"]["prompt_tokens_details"]["cached_tokens"],
        12
    );
    assert_eq!(out.usage.input, Some(40));
    assert_eq!(out.usage.cache_creation_input, Some(13));
    // The forced output tool comes back as text with finish_reason stop.
    let out = chat_resp("structured_output.json", "structured-output.json", false);
    let c = &out.json()["choices"][0];
    assert_eq!(c["finish_reason"], "stop");
    assert_eq!(
        serde_json::from_str::<Value>(c["message"]["content"].as_str().unwrap()).unwrap()["person"]
            ["name"],
        "Ada Lovelace"
    );
    assert!(c["message"].get("tool_calls").is_none());
}

#[test]
fn anthropic_to_openai_chat_streams() {
    for (case, file, req) in [
        ("basic", "stream_basic.sse", "stop.json"),
        ("tool", "stream_tool.sse", "stop.json"),
        ("tool_empty_args", "stream_tool_empty_args.sse", "stop.json"),
        ("thinking", "stream_thinking.sse", "stop.json"),
        (
            "message_delta_usage",
            "stream_message_delta_usage.sse",
            "stop.json",
        ),
        ("parallel_tools", "stream_parallel_tools.sse", "stop.json"),
        (
            "structured_output",
            "stream_structured_output.sse",
            "structured-output.json",
        ),
        ("error", "stream_error.sse", "stop.json"),
    ] {
        let out = chat_resp(file, req, true);
        insta::assert_snapshot!(
            format!("anthropic_to_chat_stream_{case}"),
            format!("{}\n---\n{:?}", out.text(), out.usage)
        );
    }
    // Parallel tool_use blocks at Anthropic indices 1 and 2 are OpenAI tool calls 0 and 1.
    let out = chat_resp("stream_parallel_tools.sse", "stop.json", true);
    let chunks: Vec<Value> = out
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(calls[0]["index"], 0);
    assert_eq!(calls[0]["id"], "toolu_a");
    let args0: String = calls
        .iter()
        .filter(|c| c["index"] == 0)
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args0, "{\"city\": \"Paris\"}");
    assert!(
        calls
            .iter()
            .any(|c| c["index"] == 1 && c["id"] == "toolu_b")
    );
    assert_eq!(
        chunks
            .iter()
            .rev()
            .find_map(|c| c["choices"][0]["finish_reason"].as_str()),
        Some("tool_calls")
    );
    // The client asked include_usage: the last chunk before [DONE] carries it.
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 2400);
    assert_eq!(out.usage.input, Some(2400));
    assert_eq!(out.usage.cached_input, Some(2000));
    assert_eq!(out.usage.output, Some(61));
    assert!(out.text().ends_with("data: [DONE]\n\n"));
}

#[test]
fn anthropic_errors_for_openai_clients() {
    let mut t = ChatToAnthropic::new(native(), None);
    let v = error(
        &mut t,
        529,
        &HeaderMap::new(),
        &fixture("anthropic/responses/error_overloaded.json"),
    );
    assert_eq!(v["status"], 503);
    insta::assert_json_snapshot!("anthropic_error_for_openai_client", v);
    let v = error(&mut t, 502, &HeaderMap::new(), b"<html>bad gateway</html>");
    assert_eq!(v["body"]["error"]["message"], "<html>bad gateway</html>");
}

// --------------------------------------------------------------------------------------
// Anthropic Messages → Anthropic
// --------------------------------------------------------------------------------------

#[test]
fn messages_native_passthrough_is_untouched() {
    let body = fixture("anthropic/requests/tools.json");
    let mut t = MessagesPassthrough::new(native(), None);
    let v = request(
        &mut t,
        Endpoint::Messages,
        &body,
        &headers(&[("anthropic-beta", "prompt-caching-2024-07-31")]),
        true,
    )
    .unwrap();
    assert_eq!(v["body"], "<unchanged>");
    assert_eq!(v["path"], "/v1/messages");
    assert_eq!(v["headers"]["set"]["anthropic-version"], "2023-06-01");
    // The beta header is the client's and goes upstream as sent.
    assert_eq!(v["headers"]["remove"], json!([]));
    // A client-sent version is honoured (not overwritten).
    let mut t = MessagesPassthrough::new(native(), None);
    let v = request(
        &mut t,
        Endpoint::Messages,
        &body,
        &headers(&[("anthropic-version", "2023-01-01")]),
        false,
    )
    .unwrap();
    assert!(v["headers"]["set"].get("anthropic-version").is_none());
    // Model override rewrites only the model.
    let mut t = MessagesPassthrough::new(
        Platform::Native {
            prefix: Some("/anthropic/v1".into()),
            version: None,
        },
        Some("claude-opus-4-6"),
    );
    let v = request(&mut t, Endpoint::Messages, &body, &HeaderMap::new(), false).unwrap();
    let mut expected: Value = serde_json::from_slice(&body).unwrap();
    expected["model"] = json!("claude-opus-4-6");
    assert_eq!(v["body"], expected);
    assert_eq!(v["path"], "/anthropic/v1/messages");
}

#[test]
fn messages_native_stream_sniffs_usage_and_forwards_bytes() {
    for file in [
        "stream_basic.sse",
        "stream_thinking.sse",
        "stream_message_delta_usage.sse",
        "stream_tool.sse",
    ] {
        let input = fixture(&format!("anthropic/responses/{file}"));
        let make = || -> Box<dyn Translator> { Box::new(MessagesPassthrough::new(native(), None)) };
        let out = response(
            &make,
            Endpoint::Messages,
            &fixture("anthropic/requests/basic.json"),
            &sse(),
            &input,
        );
        assert!(out.body == input, "{file}: passthrough output is the input");
        insta::assert_json_snapshot!(
            format!(
                "messages_passthrough_usage_{}",
                file.trim_end_matches(".sse")
            ),
            json!({"usage": out.usage, "model": out.model})
        );
    }
    // message_delta carries cumulative usage including cache reads (3883 + 30464).
    let make = || -> Box<dyn Translator> { Box::new(MessagesPassthrough::new(native(), None)) };
    let out = response(
        &make,
        Endpoint::Messages,
        &fixture("anthropic/requests/basic.json"),
        &sse(),
        &fixture("anthropic/responses/stream_message_delta_usage.sse"),
    );
    assert_eq!(out.usage.input, Some(3883 + 30464));
    assert_eq!(out.usage.output, Some(49));
}

#[test]
fn messages_native_json_usage() {
    let make = || -> Box<dyn Translator> { Box::new(MessagesPassthrough::new(native(), None)) };
    let input = fixture("anthropic/responses/thinking.json");
    let out = response(
        &make,
        Endpoint::Messages,
        &fixture("anthropic/requests/basic.json"),
        &json_ct(),
        &input,
    );
    assert!(out.body == input, "output body is the input");
    let raw: Value = serde_json::from_slice(&input).unwrap();
    assert_eq!(out.usage.output, raw["usage"]["output_tokens"].as_u64());
    assert_eq!(out.model.as_deref(), raw["model"].as_str());
}

#[test]
fn messages_to_gcp_anthropic() {
    for (case, file) in [
        ("basic", "basic.json"),
        ("image_stream", "image.json"),
        ("tool_result_error", "tool_result_error.json"),
    ] {
        let mut t = MessagesPassthrough::new(vertex(), None);
        let v = request(
            &mut t,
            Endpoint::Messages,
            &fixture(&format!("anthropic/requests/{file}")),
            &HeaderMap::new(),
            false,
        )
        .unwrap();
        assert!(v["body"].get("model").is_none());
        assert_eq!(v["body"]["anthropic_version"], "vertex-2023-10-16");
        insta::assert_json_snapshot!(format!("messages_to_gcp_anthropic_request_{case}"), v);
    }
    let mut t = MessagesPassthrough::new(vertex(), Some("claude-sonnet-4-5@20250929"));
    let v = request(
        &mut t,
        Endpoint::Messages,
        &fixture("anthropic/requests/image.json"),
        &HeaderMap::new(),
        false,
    )
    .unwrap();
    assert_eq!(
        v["path"],
        "/publishers/anthropic/models/claude-sonnet-4-5%4020250929:streamRawPredict"
    );
}

#[test]
fn count_tokens() {
    let body = fixture("anthropic/requests/count_tokens.json");
    let mut t = MessagesPassthrough::count_tokens(native(), None);
    let v = request(
        &mut t,
        Endpoint::CountTokens,
        &body,
        &HeaderMap::new(),
        false,
    )
    .unwrap();
    assert_eq!(v["path"], "/v1/messages/count_tokens");
    assert_eq!(v["body"], "<unchanged>");
    let mut t = MessagesPassthrough::count_tokens(vertex(), None);
    let v = request(
        &mut t,
        Endpoint::CountTokens,
        &body,
        &HeaderMap::new(),
        false,
    )
    .unwrap();
    assert_eq!(
        v["path"],
        "/publishers/anthropic/models/count-tokens:rawPredict"
    );
    insta::assert_json_snapshot!("count_tokens_gcp_anthropic_request", v);
    let make =
        || -> Box<dyn Translator> { Box::new(MessagesPassthrough::count_tokens(native(), None)) };
    let input = fixture("anthropic/responses/count_tokens.json");
    let out = response(&make, Endpoint::CountTokens, &body, &json_ct(), &input);
    assert!(out.body == input, "output body is the input");
    assert!(out.usage.is_empty(), "counting tokens consumes none");
}

#[test]
fn anthropic_errors_for_anthropic_clients() {
    let mut t = MessagesPassthrough::new(native(), None);
    let v = error(
        &mut t,
        529,
        &HeaderMap::new(),
        &fixture("anthropic/responses/error_overloaded.json"),
    );
    assert_eq!(v["status"], 529);
    assert_eq!(v["body"]["error"]["type"], "overloaded_error");
    let v = error(&mut t, 413, &HeaderMap::new(), b"request entity too large");
    assert_eq!(
        v["body"],
        json!({"type": "error", "error": {"type": "request_too_large", "message": "request entity too large"}})
    );
}

#[test]
fn passthrough_request_body_is_the_input_bytes() {
    // The adapter forwards the original `Bytes` when the body is Unchanged.
    let body = bytes::Bytes::from_static(br#"{"model":"claude","max_tokens":5,"messages":[]}"#);
    let info = aigw_core::api::sniff(Endpoint::Messages, &body).unwrap();
    let mut t = MessagesPassthrough::new(native(), None);
    let up = t
        .request(&aigw_core::RequestContext {
            body: &body,
            info: &info,
            headers: &HeaderMap::new(),
            force_include_usage: true,
        })
        .unwrap();
    assert_eq!(up.body, BodyChange::Unchanged);
}
