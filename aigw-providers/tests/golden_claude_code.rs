//! Golden tests for the requests a current coding agent (Claude Code 2.1.332) sends, in
//! every Anthropic Messages cell of the matrix.
//!
//! The fixtures `anthropic/requests/claude_code_*.json` have the structure of requests
//! recorded from a real `claude -p` run with a tool round trip (field order, block
//! shapes, betas, `role: "system"` messages, `context_management`, adaptive thinking,
//! per-turn `output_config`, deferred tools, cache breakpoints on tool results); their
//! prompt and tool-description text is our own. Each snapshot holds the upstream
//! request and the fields the translator reported as dropped. The decisions are in
//! `docs/translation-matrix.md` ("Anthropic Messages field map").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod golden_openai_support;

use aigw_core::api::Endpoint;
use aigw_core::{ClientApi, Translator};
use aigw_providers::anthropic::{MessagesPassthrough, MessagesToOpenAi, Platform};
use aigw_providers::bedrock::{ConverseTranslator, InvokeTranslator};
use aigw_providers::openai::Flavor;
use aigw_providers::vertex::GeminiTranslator;
use golden_openai_support::*;
use http::HeaderMap;
use serde_json::{Value, json};

/// The `anthropic-beta` header Claude Code 2.1.332 sends with the newest models.
const BETAS: &str = "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,per-turn-control-2026-07-01,mid-conversation-tool-changes-2026-07-01,thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20,effort-2025-11-24";

const FIXTURES: [&str; 5] = [
    "claude_code_first_turn",
    "claude_code_tool_round_trip",
    "claude_code_budget_thinking",
    "claude_code_tool_search",
    "claude_code_pdf_read",
];

fn client_headers() -> HeaderMap {
    headers(&[
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", BETAS),
    ])
}

/// Every cell an Anthropic Messages request can reach, with the model each backend
/// would be configured with.
fn cells() -> Vec<(&'static str, Box<dyn Translator>)> {
    vec![
        (
            "anthropic",
            Box::new(MessagesPassthrough::new(
                Platform::Native {
                    prefix: None,
                    version: None,
                },
                None,
            )),
        ),
        (
            "gcp_anthropic",
            Box::new(MessagesPassthrough::new(
                Platform::Vertex {
                    version: "vertex-2023-10-16".into(),
                },
                None,
            )),
        ),
        (
            "aws_anthropic",
            Box::new(InvokeTranslator::new(
                ClientApi::Anthropic,
                Some("global.anthropic.claude-opus-5-5-v1:0"),
                None,
            )),
        ),
        (
            "converse_claude",
            Box::new(ConverseTranslator::new(
                ClientApi::Anthropic,
                Some("global.anthropic.claude-opus-5-5-v1:0"),
            )),
        ),
        (
            "converse_nova",
            Box::new(ConverseTranslator::new(
                ClientApi::Anthropic,
                Some("amazon.nova-premier-v1:0"),
            )),
        ),
        (
            "gemini",
            Box::new(GeminiTranslator::new(
                ClientApi::Anthropic,
                Some("gemini-3.5-pro"),
            )),
        ),
        (
            "gemini_2",
            Box::new(GeminiTranslator::new(
                ClientApi::Anthropic,
                Some("gemini-2.5-pro"),
            )),
        ),
        (
            "openai",
            Box::new(MessagesToOpenAi::new(
                Flavor::OpenAI { prefix: None },
                Some("gpt-5.5"),
            )),
        ),
    ]
}

fn translate(t: &mut dyn Translator, fixture_name: &str) -> Value {
    let body = fixture(&format!("anthropic/requests/{fixture_name}.json"));
    match request(t, Endpoint::Messages, &body, &client_headers(), false) {
        Ok(v) => {
            let dropped: Vec<_> = t.dropped_fields().iter().map(|d| d.field).collect();
            json!({"request": v, "dropped": dropped})
        }
        Err(e) => json!({"error": e.status().as_u16(), "message": e.to_string()}),
    }
}

#[test]
fn claude_code_requests_in_every_cell() {
    for name in FIXTURES {
        for (cell, mut t) in cells() {
            let v = translate(t.as_mut(), name);
            assert!(v.get("error").is_none(), "{name} → {cell}: {v}");
            insta::assert_json_snapshot!(format!("{name}__{cell}"), v);
        }
    }
}

#[test]
fn native_passthrough_keeps_every_byte_and_the_query() {
    for name in FIXTURES {
        let mut t = MessagesPassthrough::new(
            Platform::Native {
                prefix: None,
                version: None,
            },
            None,
        );
        let v = translate(&mut t, name);
        assert_eq!(v["request"]["body"], json!("<unchanged>"), "{name}");
        assert!(t.forwards_client_query());
        assert_eq!(v["dropped"], json!([]));
    }
}

/// Mid-conversation system messages keep their position and text in every cell; no
/// cell sends `role: "system"` inside a Claude-on-Bedrock/Vertex body.
#[test]
fn system_messages_keep_their_position() {
    // As serialised JSON text: the newline is escaped.
    let reminder = r"<system-reminder>\n# Environment";
    for (cell, mut t) in cells() {
        let v = translate(t.as_mut(), "claude_code_tool_round_trip");
        let body = v["request"]["body"].to_string();
        match cell {
            "anthropic" => {}
            "openai" => {
                let msgs = v["request"]["body"]["messages"].as_array().unwrap();
                let roles: Vec<_> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
                assert_eq!(
                    roles,
                    ["system", "user", "system", "assistant", "tool", "system"],
                    "{cell}"
                );
            }
            _ => {
                assert!(body.contains(reminder), "{cell}: {body}");
                assert!(!body.contains("\"role\":\"system\""), "{cell}: {body}");
            }
        }
    }
}

/// A tool search result (`tool_reference`) loads the deferred tool it names: off
/// Anthropic's API the tool joins the backend's tool list, other deferred tools stay out.
#[test]
fn tool_search_loads_the_referenced_deferred_tool() {
    for (cell, mut t) in cells() {
        let v = translate(t.as_mut(), "claude_code_tool_search");
        let body = v["request"]["body"].to_string();
        match cell {
            "anthropic" => {}
            "gcp_anthropic" | "aws_anthropic" => {
                assert!(body.contains("tool_reference"), "{cell}: {body}")
            }
            _ => {
                assert!(body.contains("\"WebFetch\""), "{cell}: {body}");
                assert!(body.contains("Tool loaded: WebFetch"), "{cell}: {body}");
                assert!(!body.contains("DeferredToolPlaceholder"), "{cell}: {body}");
            }
        }
    }
}

#[test]
fn context_edits_that_need_a_token_count_are_a_422_off_anthropic() {
    let mut body: Value =
        serde_json::from_slice(&fixture("anthropic/requests/claude_code_first_turn.json")).unwrap();
    body["context_management"] = json!({"edits": [{"type": "clear_tool_uses_20250919"}]});
    let bytes = serde_json::to_vec(&body).unwrap();
    for (cell, mut t) in cells() {
        let r = request(
            t.as_mut(),
            Endpoint::Messages,
            &bytes,
            &client_headers(),
            false,
        );
        match cell {
            // Anthropic's API (first party, Bedrock, Vertex) applies the edit itself.
            "anthropic" | "gcp_anthropic" | "aws_anthropic" => assert!(r.is_ok(), "{cell}"),
            _ => {
                let e = r.unwrap_err();
                assert_eq!(e.status().as_u16(), 422, "{cell}");
                let msg = String::from_utf8(e.to_body(ClientApi::Anthropic).to_vec()).unwrap();
                assert!(msg.contains("context_management.edits[0]"), "{cell}: {msg}");
                assert!(msg.contains("invalid_request_error"), "{cell}: {msg}");
            }
        }
    }
}

/// Botocore's validator over its `bedrock-runtime` service model (AWS's API reference
/// in machine form), reading `{"op", "body"}` lines on stdin.
const BOTOCORE_CHECK: &str = r#"
import json, sys, botocore.session
from botocore.validate import ParamValidator
model = botocore.session.get_session().get_service_model("bedrock-runtime")
bad = []
for line in sys.stdin:
    case = json.loads(line)
    params = dict(case["body"], modelId="m")
    report = ParamValidator().validate(params, model.operation_model(case["op"]).input_shape)
    if report.has_errors():
        bad.append(case["name"] + ": " + report.generate_report())
print("\n".join(bad))
sys.exit(1 if bad else 0)
"#;

/// Every Converse body of the Claude Code set passes botocore's validation.
#[test]
fn converse_bodies_pass_botocore_validation() {
    let python = match std::env::var_os("AIGW_PYTHON") {
        Some(p) => p,
        None if std::env::var("AIGW_REQUIRE_EXTERNAL").as_deref() == Ok("1") => {
            panic!("AIGW_PYTHON is not set but AIGW_REQUIRE_EXTERNAL=1")
        }
        None => return,
    };
    let mut input = String::new();
    for name in FIXTURES {
        for (cell, mut t) in cells() {
            if !cell.starts_with("converse") {
                continue;
            }
            let v = translate(t.as_mut(), name);
            let op = if v["request"]["path"].as_str().unwrap().ends_with("-stream") {
                "ConverseStream"
            } else {
                "Converse"
            };
            let line =
                json!({"name": format!("{name}/{cell}"), "op": op, "body": v["request"]["body"]});
            input.push_str(&format!("{line}\n"));
        }
    }
    let mut child = std::process::Command::new(python)
        .args(["-c", BOTOCORE_CHECK])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
