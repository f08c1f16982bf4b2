//! Bedrock Converse responses, ConverseStream events and errors → the neutral model.

use crate::canonical::{ChatResponse, Choice, Event, OutBlock, StopReason};
use aigw_core::{Error, Result, TokenUsage};
use serde::Deserialize;
use serde_json::value::RawValue;

mod scan;

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "camelCase")]
struct Usage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_write_input_tokens: Option<u64>,
}

impl Usage {
    /// Converse reports cache reads and writes apart from `inputTokens`
    /// (`totalTokens` = input + output + cache read + cache write), so the gateway's
    /// cache-inclusive input is their sum.
    fn token_usage(&self) -> TokenUsage {
        TokenUsage::from_explicit_caching(
            self.input_tokens,
            self.cache_read_input_tokens,
            self.cache_write_input_tokens,
            self.output_tokens,
        )
    }
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct ConverseResponse {
    #[serde(default)]
    output: Option<Output>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize, Debug)]
struct Output {
    #[serde(default)]
    message: Option<OutMessage>,
}

#[derive(Deserialize, Debug)]
struct OutMessage {
    #[serde(default)]
    content: Vec<ContentOut>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct ContentOut {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_use: Option<ToolUseOut>,
    #[serde(default)]
    reasoning_content: Option<ReasoningOut>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct ToolUseOut {
    tool_use_id: String,
    name: String,
    #[serde(default)]
    input: Option<Box<RawValue>>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct ReasoningOut {
    #[serde(default)]
    reasoning_text: Option<ReasoningText>,
    #[serde(default)]
    redacted_content: Option<String>,
}

#[derive(Deserialize, Debug)]
struct ReasoningText {
    #[serde(default)]
    text: String,
    #[serde(default)]
    signature: Option<String>,
}

/// Re-serialises JSON without insignificant whitespace (OpenAI clients get the
/// arguments as a string; keep it the way OpenAI itself writes it).
pub(crate) fn compact_json(raw: &str) -> String {
    // The usual arguments object without the `Value` tree; the tree for the rest.
    crate::json_scan::compact(raw).unwrap_or_else(|| {
        serde_json::from_str::<serde_json::Value>(raw)
            .map_or_else(|_| raw.to_owned(), |v| v.to_string())
    })
}

/// Maps Converse's `stopReason`.
pub fn stop_reason(s: &str) -> StopReason {
    match s {
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence(None),
        "tool_use" => StopReason::ToolUse,
        "guardrail_intervened" | "content_filtered" => StopReason::ContentFilter,
        "model_context_window_exceeded" => StopReason::ContextWindow,
        _ => StopReason::EndTurn,
    }
}

/// Parses a complete Converse response.
pub fn parse_response(body: &[u8], id: &str, model: &str) -> Result<ChatResponse> {
    // The usual response is walked by hand (see [`scan`]); serde reads the rest and
    // words every error.
    let scanned = std::str::from_utf8(body).ok().and_then(scan::response);
    let r: ConverseResponse = match scanned {
        Some(r) => r,
        None => serde_json::from_slice(body)
            .map_err(|e| Error::malformed_upstream(format!("Bedrock Converse response: {e}")))?,
    };
    let message = r.output.and_then(|o| o.message).ok_or_else(|| {
        Error::malformed_upstream("Bedrock Converse response has no output.message")
    })?;
    let mut content = Vec::with_capacity(message.content.len());
    for c in message.content {
        if let Some(t) = c.text {
            content.push(OutBlock::Text(t));
        } else if let Some(t) = c.tool_use {
            content.push(OutBlock::ToolUse {
                id: t.tool_use_id,
                name: t.name,
                input: t
                    .input
                    .map_or_else(|| "{}".to_owned(), |i| compact_json(i.get())),
            });
        } else if let Some(r) = c.reasoning_content {
            if let Some(t) = r.reasoning_text {
                content.push(OutBlock::Thinking {
                    text: t.text,
                    signature: t.signature,
                });
            } else if let Some(d) = r.redacted_content {
                content.push(OutBlock::RedactedThinking(d));
            }
        }
    }
    Ok(ChatResponse {
        id: id.to_owned(),
        model: model.to_owned(),
        choices: vec![Choice {
            content,
            stop: r.stop_reason.as_deref().map(stop_reason),
        }],
        usage: r.usage.map(|u| u.token_usage()).unwrap_or_default(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StreamPayload {
    #[serde(default)]
    content_block_index: Option<u32>,
    #[serde(default)]
    start: Option<BlockStart>,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStart {
    #[serde(default)]
    tool_use: Option<ToolStart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolStart {
    tool_use_id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delta {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_use: Option<ToolDelta>,
    #[serde(default)]
    reasoning_content: Option<ReasoningDelta>,
}

#[derive(Deserialize)]
struct ToolDelta {
    #[serde(default)]
    input: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReasoningDelta {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    redacted_content: Option<String>,
}

/// Translates one ConverseStream event (its `:event-type` and JSON payload) into
/// neutral events, appended to `out`.
pub fn stream_event(event_type: &str, payload: &[u8], out: &mut Vec<Event>) -> Result<()> {
    let p: StreamPayload = serde_json::from_slice(payload)
        .map_err(|e| Error::malformed_upstream(format!("Bedrock {event_type} event: {e}")))?;
    let index = p.content_block_index.unwrap_or(0);
    match event_type {
        "messageStart" => out.push(Event::Start),
        "contentBlockStart" => {
            if let Some(t) = p.start.and_then(|s| s.tool_use) {
                out.push(Event::ToolStart {
                    index,
                    id: t.tool_use_id,
                    name: t.name,
                });
            }
        }
        "contentBlockDelta" => {
            let Some(d) = p.delta else { return Ok(()) };
            if let Some(text) = d.text {
                out.push(Event::TextDelta { index, text });
            } else if let Some(t) = d.tool_use {
                out.push(Event::ToolDelta {
                    index,
                    json: t.input,
                });
            } else if let Some(r) = d.reasoning_content {
                if let Some(text) = r.text {
                    out.push(Event::ThinkingDelta { index, text });
                }
                if let Some(signature) = r.signature {
                    out.push(Event::SignatureDelta { index, signature });
                }
                if let Some(data) = r.redacted_content {
                    out.push(Event::RedactedThinking { index, data });
                }
            }
        }
        "contentBlockStop" => out.push(Event::BlockStop { index }),
        "messageStop" => out.push(Event::Stop(stop_reason(
            p.stop_reason.as_deref().unwrap_or("end_turn"),
        ))),
        "metadata" => {
            if let Some(u) = p.usage {
                out.push(Event::Usage(u.token_usage()));
            }
        }
        // Unknown events are skipped: AWS adds event types over time.
        _ => {}
    }
    Ok(())
}

/// The HTTP status an eventstream exception stands for (Converse API reference,
/// "Errors" of ConverseStream).
pub fn exception_status(kind: &str) -> u16 {
    let lower = kind.to_ascii_lowercase();
    match lower.trim_end_matches("exception") {
        "throttling" | "modelnotready" => 429,
        "validation" | "servicequotaexceeded" => 400,
        "accessdenied" => 403,
        "resourcenotfound" => 404,
        "modeltimeout" => 408,
        "modelerror" | "modelstreamerror" => 424,
        "serviceunavailable" => 503,
        _ => 500,
    }
}

/// The message of an AWS JSON error body (`message` or `Message`), or the raw text.
pub fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct E {
        #[serde(default, alias = "Message")]
        message: Option<String>,
    }
    match serde_json::from_slice::<E>(body) {
        Ok(E { message: Some(m) }) => m,
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                "upstream returned an error with an empty body".to_owned()
            } else {
                text.chars().take(1024).collect()
            }
        }
    }
}

/// The error type from `x-amzn-errortype` (`ThrottlingException:http://…` → the part
/// before `:`).
pub fn error_type(header: Option<&str>) -> &str {
    header.map_or("", |h| h.split(':').next().unwrap_or(h))
}
