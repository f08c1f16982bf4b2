//! Golden tests for the OpenAI-backend cells of the matrix: OpenAI chat, completions
//! and embeddings to OpenAI / OpenAI-compatible / Azure OpenAI (passthrough), and
//! Anthropic Messages → OpenAI / Azure OpenAI. Stream cases prove split invariance.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod golden_openai_support;

use aigw_core::api::Endpoint;
use aigw_core::{BodyChange, RequestContext, Translator};
use aigw_providers::anthropic::MessagesToOpenAi;
use aigw_providers::openai::{Flavor, OpenAiTranslator, Operation};
use golden_openai_support::*;
use http::HeaderMap;
use serde_json::{Value, json};

fn openai() -> Flavor {
    Flavor::OpenAI { prefix: None }
}

fn azure() -> Flavor {
    Flavor::Azure {
        version: "2024-10-21".into(),
    }
}

#[test]
fn chat_passthrough_body_is_the_input_bytes() {
    // The issue's speed contract: no model override → the output body is the input.
    for file in ["full.json", "parallel-tool-call.json", "image-inline.json"] {
        let body = bytes::Bytes::from(fixture(&format!("openai/requests/{file}")));
        let info = aigw_core::api::sniff(Endpoint::ChatCompletions, &body).unwrap();
        for flavor in [
            openai(),
            azure(),
            Flavor::OpenAI {
                prefix: Some("/api/v1".into()),
            },
        ] {
            let mut t = OpenAiTranslator::new(Operation::ChatCompletions, flavor, None);
            let up = t
                .request(&RequestContext {
                    body: &body,
                    info: &info,
                    headers: &HeaderMap::new(),
                    force_include_usage: false,
                })
                .unwrap();
            assert_eq!(up.body, BodyChange::Unchanged, "{file}");
        }
    }
}

#[test]
fn chat_passthrough_paths_and_overrides() {
    let body = fixture("openai/requests/tool-call.json");
    let mut rows = Vec::new();
    for (name, flavor, ovr) in [
        ("openai", openai(), None),
        (
            "compatible_prefix",
            Flavor::OpenAI {
                prefix: Some("/v1beta/openai".into()),
            },
            None,
        ),
        ("openai_override", openai(), Some("gpt-4o-mini")),
        ("azure", azure(), None),
        ("azure_override", azure(), Some("my-deployment")),
    ] {
        let mut t = OpenAiTranslator::new(Operation::ChatCompletions, flavor, ovr);
        let v = request(
            &mut t,
            Endpoint::ChatCompletions,
            &body,
            &HeaderMap::new(),
            false,
        )
        .unwrap();
        let model = if v["body"].is_object() {
            v["body"]["model"].clone()
        } else {
            v["body"].clone()
        };
        rows.push(json!({"case": name, "path": v["path"], "body_model": model}));
    }
    insta::assert_json_snapshot!("chat_passthrough_paths", rows);
}

#[test]
fn chat_passthrough_streams() {
    for (case, file, req, force) in [
        (
            "stream_client_usage",
            "stream.sse",
            r#"{"model":"gpt-5-nano","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#,
            false,
        ),
        (
            "stream_forced_usage_stripped",
            "stream.sse",
            r#"{"model":"gpt-5-nano","stream":true,"messages":[]}"#,
            true,
        ),
        (
            "stream_tool_empty_content",
            "stream_tool_empty_content.sse",
            r#"{"model":"claude-opus","stream":true,"messages":[]}"#,
            true,
        ),
        (
            "stream_parallel_tools",
            "stream_parallel_tools.sse",
            r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#,
            false,
        ),
    ] {
        let input = fixture(&format!("openai/responses/{file}"));
        let make = move || -> Box<dyn Translator> {
            struct Forced(OpenAiTranslator, bool);
            impl Translator for Forced {
                fn request(
                    &mut self,
                    r: &RequestContext<'_>,
                ) -> aigw_core::Result<aigw_core::UpstreamRequest> {
                    self.0.request(&RequestContext {
                        force_include_usage: self.1,
                        ..*r
                    })
                }
                fn response_headers(
                    &mut self,
                    s: http::StatusCode,
                    h: &HeaderMap,
                ) -> aigw_core::Result<aigw_core::HeaderMutation> {
                    self.0.response_headers(s, h)
                }
                fn response_chunk(
                    &mut self,
                    c: &[u8],
                    e: bool,
                ) -> aigw_core::Result<aigw_core::ResponseChunk> {
                    self.0.response_chunk(c, e)
                }
                fn response_error(
                    &mut self,
                    s: http::StatusCode,
                    h: &HeaderMap,
                    b: &[u8],
                ) -> aigw_core::Result<aigw_core::ErrorResponse> {
                    self.0.response_error(s, h, b)
                }
            }
            Box::new(Forced(
                OpenAiTranslator::new(
                    Operation::ChatCompletions,
                    Flavor::OpenAI { prefix: None },
                    None,
                ),
                force,
            ))
        };
        let out = response(
            &make,
            Endpoint::ChatCompletions,
            req.as_bytes(),
            &sse(),
            &input,
        );
        if force {
            let text = out.text();
            let input_text = String::from_utf8(input.clone()).unwrap();
            assert!(
                !text.contains("\"prompt_tokens\""),
                "{case}: the forced usage chunk is stripped"
            );
            assert_eq!(
                text.matches("data: ").count(),
                input_text.matches("data: ").count() - 1,
                "{case}"
            );
            assert!(text.ends_with("data: [DONE]\n\n"));
        } else {
            assert!(
                out.body == input,
                "{case}: passthrough forwards the stream as received"
            );
        }
        insta::assert_json_snapshot!(
            format!("chat_passthrough_usage_{case}"),
            json!({"usage": out.usage, "model": out.model})
        );
    }
}

#[test]
fn chat_passthrough_json_responses() {
    for (case, file) in [
        ("basic", "basic.json"),
        ("cache_write", "cache_write.json"),
        ("tool_call", "tool_call.json"),
        ("reasoning", "openrouter_reasoning.json"),
        ("cache_usage", "cache_usage.json"),
    ] {
        let input = fixture(&format!("openai/responses/{file}"));
        let make = || -> Box<dyn Translator> {
            Box::new(OpenAiTranslator::new(
                Operation::ChatCompletions,
                openai(),
                None,
            ))
        };
        let out = response(
            &make,
            Endpoint::ChatCompletions,
            br#"{"model":"m","messages":[]}"#,
            &json_ct(),
            &input,
        );
        assert_eq!(out.body, input);
        let raw: Value = serde_json::from_slice(&input).unwrap();
        assert_eq!(
            out.usage.input,
            raw["usage"]["prompt_tokens"].as_u64(),
            "{case}"
        );
        assert_eq!(
            out.usage.output,
            raw["usage"]["completion_tokens"].as_u64(),
            "{case}"
        );
        assert_eq!(
            out.usage.cached_input,
            raw["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64(),
            "{case}"
        );
        insta::assert_json_snapshot!(
            format!("chat_passthrough_usage_json_{case}"),
            json!({"usage": out.usage, "model": out.model})
        );
    }
}

#[test]
fn embeddings_and_completions() {
    let body = fixture("openai/requests/embeddings-basic.json");
    let mut t = OpenAiTranslator::new(Operation::Embeddings, azure(), None);
    let v = request(&mut t, Endpoint::Embeddings, &body, &HeaderMap::new(), true).unwrap();
    assert_eq!(v["body"], "<unchanged>");
    insta::assert_json_snapshot!("embeddings_azure_request", v);
    let input = fixture("openai/responses/embeddings.json");
    let make = || -> Box<dyn Translator> {
        Box::new(OpenAiTranslator::new(Operation::Embeddings, openai(), None))
    };
    let out = response(&make, Endpoint::Embeddings, &body, &json_ct(), &input);
    assert_eq!(out.body, input);
    let raw: Value = serde_json::from_slice(&input).unwrap();
    assert_eq!(out.usage.input, raw["usage"]["prompt_tokens"].as_u64());
    assert_eq!(out.usage.output, None);

    let creq =
        br#"{"model":"gpt-3.5-turbo-instruct","prompt":"Say hi","stream":true,"max_tokens":5}"#;
    let mut t = OpenAiTranslator::new(
        Operation::Completions,
        Flavor::OpenAI {
            prefix: Some("/v1".into()),
        },
        None,
    );
    let v = request(&mut t, Endpoint::Completions, creq, &HeaderMap::new(), true).unwrap();
    assert_eq!(v["path"], "/v1/completions");
    assert_eq!(v["body"]["stream_options"], json!({"include_usage": true}));
    let stream = b"data: {\"id\":\"c\",\"object\":\"text_completion\",\"created\":1,\"model\":\"gpt-3.5-turbo-instruct\",\"choices\":[{\"text\":\"Hi\",\"index\":0,\"finish_reason\":\"stop\",\"logprobs\":null}]}\n\ndata: {\"id\":\"c\",\"object\":\"text_completion\",\"created\":1,\"model\":\"gpt-3.5-turbo-instruct\",\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1,\"total_tokens\":3}}\n\ndata: [DONE]\n\n";
    let make = || -> Box<dyn Translator> {
        struct F(OpenAiTranslator);
        impl Translator for F {
            fn request(
                &mut self,
                r: &RequestContext<'_>,
            ) -> aigw_core::Result<aigw_core::UpstreamRequest> {
                self.0.request(&RequestContext {
                    force_include_usage: true,
                    ..*r
                })
            }
            fn response_headers(
                &mut self,
                s: http::StatusCode,
                h: &HeaderMap,
            ) -> aigw_core::Result<aigw_core::HeaderMutation> {
                self.0.response_headers(s, h)
            }
            fn response_chunk(
                &mut self,
                c: &[u8],
                e: bool,
            ) -> aigw_core::Result<aigw_core::ResponseChunk> {
                self.0.response_chunk(c, e)
            }
            fn response_error(
                &mut self,
                s: http::StatusCode,
                h: &HeaderMap,
                b: &[u8],
            ) -> aigw_core::Result<aigw_core::ErrorResponse> {
                self.0.response_error(s, h, b)
            }
        }
        Box::new(F(OpenAiTranslator::new(
            Operation::Completions,
            Flavor::OpenAI { prefix: None },
            None,
        )))
    };
    let out = response(&make, Endpoint::Completions, creq, &sse(), stream);
    assert_eq!(out.usage.total, Some(3));
    assert!(!out.text().contains("usage"));
    assert!(out.text().contains("\"text\":\"Hi\""));
}

#[test]
fn openai_errors_for_openai_clients() {
    let mut t = OpenAiTranslator::new(Operation::ChatCompletions, openai(), None);
    let v = error(
        &mut t,
        429,
        &HeaderMap::new(),
        &fixture("openai/responses/error_rate_limit.json"),
    );
    assert_eq!(v["status"], 429);
    assert_eq!(v["body"]["error"]["code"], "rate_limit_exceeded");
    insta::assert_json_snapshot!("openai_error_rate_limit", v);
}

// --------------------------------------------------------------------------------------
// Anthropic Messages → OpenAI
// --------------------------------------------------------------------------------------

fn msgs_req(flavor: Flavor, file: &str) -> Result<Value, aigw_core::Error> {
    let mut t = MessagesToOpenAi::new(flavor, None);
    request(
        &mut t,
        Endpoint::Messages,
        &fixture(&format!("anthropic/requests/{file}")),
        &headers(&[("anthropic-version", "2023-06-01")]),
        false,
    )
}

#[test]
fn messages_to_openai_requests() {
    for (case, file) in [
        ("basic", "basic.json"),
        ("metadata", "metadata.json"),
        ("tools", "tools.json"),
        ("tool_result_error", "tool_result_error.json"),
        (
            "tool_history_without_tools",
            "tool_history_without_tools.json",
        ),
        ("reasoning_replay", "reasoning_replay.json"),
        ("structured_output", "structured-output.json"),
        ("image_stream_system_stop", "image.json"),
        ("cache_control", "cache_control_responses.json"),
    ] {
        let v = msgs_req(openai(), file).unwrap_or_else(|e| panic!("{case}: {e}"));
        insta::assert_json_snapshot!(format!("messages_to_openai_request_{case}"), v);
    }
    let v = msgs_req(openai(), "tool_result_error.json").unwrap();
    let tool = v["body"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap()
        .clone();
    assert_eq!(tool["tool_call_id"], "toolu_01");
    assert_eq!(tool["content"], "[error] Error: location not found");
    let v = msgs_req(openai(), "image.json").unwrap();
    assert_eq!(v["body"]["stream_options"], json!({"include_usage": true}));
    assert_eq!(
        v["body"]["messages"][1]["content"][0]["image_url"]["url"],
        "data:image/png;base64,iVBORw0KGgo="
    );
    assert_eq!(v["body"]["parallel_tool_calls"], false);
    assert_eq!(v["body"]["reasoning_effort"], "medium");
    assert_eq!(
        v["headers"]["remove"],
        json!(["anthropic-version", "anthropic-beta"])
    );
    let v = msgs_req(azure(), "basic.json").unwrap();
    assert!(
        v["path"]
            .as_str()
            .unwrap()
            .starts_with("/openai/deployments/")
    );
}

#[test]
fn messages_to_openai_untranslatable() {
    // `output_format: "markdown"` is not a JSON schema.
    let e = msgs_req(openai(), "reasoning.json").unwrap_err();
    assert!(e.to_string().contains("output_format"), "{e}");
    let e = msgs_req(openai(), "server_tools.json").unwrap_err();
    assert_eq!(e.status(), http::StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e.to_string().contains("tools[0]"), "{e}");
}

fn msgs_resp(file: &str, req: &str, stream: bool) -> Output {
    let make = || -> Box<dyn Translator> { Box::new(MessagesToOpenAi::new(openai(), None)) };
    response(
        &make,
        Endpoint::Messages,
        &fixture(&format!("anthropic/requests/{req}")),
        &if stream { sse() } else { json_ct() },
        &fixture(&format!("openai/responses/{file}")),
    )
}

#[test]
fn openai_to_messages_responses() {
    for (case, file) in [
        ("basic", "basic.json"),
        ("cache_write", "cache_write.json"),
        ("tool_call", "tool_call.json"),
        ("truncated_tool_call", "truncated_tool_call.json"),
        ("reasoning", "openrouter_reasoning.json"),
        ("cache_usage", "cache_usage.json"),
    ] {
        let out = msgs_resp(file, "basic.json", false);
        insta::assert_json_snapshot!(
            format!("openai_to_messages_response_{case}"),
            snapshot(&out, false)
        );
    }
    // Anthropic input excludes cache reads: 2100 − 2048.
    let out = msgs_resp("cache_usage.json", "basic.json", false);
    assert_eq!(out.json()["usage"]["input_tokens"], 52);
    assert_eq!(out.json()["usage"]["cache_read_input_tokens"], 2048);
    assert_eq!(out.usage.input, Some(2100));
}

#[test]
fn openai_to_messages_streams() {
    for (case, file) in [
        ("basic", "stream.sse"),
        ("tool_empty_content", "stream_tool_empty_content.sse"),
        ("parallel_tools", "stream_parallel_tools.sse"),
        ("reasoning", "stream_reasoning.sse"),
    ] {
        let out = msgs_resp(file, "image.json", true);
        insta::assert_snapshot!(
            format!("openai_to_messages_stream_{case}"),
            format!("{}\n---\n{:?}", out.text(), out.usage)
        );
    }
    let out = msgs_resp("stream_parallel_tools.sse", "image.json", true);
    let events: Vec<Value> = out
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"message_start"));
    assert_eq!(kinds.last(), Some(&"message_stop"));
    let starts: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "content_block_start")
        .collect();
    assert_eq!(starts.len(), 3);
    assert_eq!(starts[1]["content_block"]["id"], "call_1");
    assert_eq!(starts[2]["index"], 2);
    let delta = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        delta["usage"]["input_tokens"], 16,
        "input excludes the 64 cached tokens"
    );
    assert_eq!(delta["usage"]["cache_read_input_tokens"], 64);
    assert_eq!(out.usage.input, Some(80));
}

#[test]
fn openai_errors_for_anthropic_clients() {
    let mut t = MessagesToOpenAi::new(openai(), None);
    let v = error(
        &mut t,
        429,
        &HeaderMap::new(),
        &fixture("openai/responses/error_rate_limit.json"),
    );
    assert_eq!(v["status"], 429);
    assert_eq!(v["body"]["type"], "error");
    assert_eq!(v["body"]["error"]["type"], "rate_limit_error");
    insta::assert_json_snapshot!("openai_error_for_anthropic_client", v);
}
