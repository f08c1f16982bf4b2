//! Anthropic Messages (client) → OpenAI Chat Completions (backend), and back.
//!
//! Mapping decisions (also in `docs/translation-matrix.md`):
//! * `system` becomes one leading system message; `cache_control` markers are dropped
//!   (OpenAI caches prompts automatically and has no breakpoints).
//! * `tool_result` blocks become `tool` messages placed before the rest of the user
//!   turn; `is_error: true` is carried by prefixing the result text with `[error] `
//!   (OpenAI tool messages have no error flag). Images inside tool results open the
//!   user message that follows the tool messages (tool messages carry text only).
//! * `thinking` blocks are replayed as `reasoning_content` + `reasoning_signature`;
//!   `redacted_thinking` as `redacted_reasoning_content`.
//! * `thinking.budget_tokens` becomes `reasoning_effort` (< 2048 low, < 8192 medium,
//!   else high); `max_tokens` becomes `max_completion_tokens`.
//! * `output_config.format` / `output_format` (`json_schema`) becomes
//!   `response_format: json_schema` (strict); `output_config.effort` becomes
//!   `reasoning_effort` (`xhigh`/`max` → `high`).
//! * Server tools, document blocks and other block types without an OpenAI
//!   counterpart → 422. Unknown top-level fields (e.g. `top_k`) pass through as vendor
//!   fields for OpenAI-compatible servers.
//! * Streams always request `stream_options.include_usage` so the Anthropic client
//!   gets real input token counts in `message_delta`.
//! * A mid-conversation `system` message becomes an OpenAI `system` message at the same
//!   position; message-level `output_config.effort` (per-turn control) of the last
//!   message that has one wins over the top-level effort.
//! * `context_management`, `thinking.display`, `cache_control` and tools with
//!   `defer_loading` follow [`super::fields`]: applied by the gateway, refused with a
//!   422, or dropped and reported when they cannot change the answer.

use super::fields;
use super::response::merge_usage;
use crate::json_out::push_serde as push_json;
use aigw_core::api::anthropic as an;
use aigw_core::api::openai as oa;
use aigw_core::{DroppedField, Error, Result, TokenUsage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::borrow::Cow;

fn untranslatable(field: impl Into<String>, backend: &str, reason: &str) -> Error {
    Error::untranslatable(field, backend, reason)
}

/// `reasoning_effort` for a thinking budget.
pub fn budget_effort(budget: u64) -> &'static str {
    if budget < 2048 {
        "low"
    } else if budget < 8192 {
        "medium"
    } else {
        "high"
    }
}

fn text_part(text: String) -> oa::ContentPart {
    oa::ContentPart::Known(oa::KnownContentPart::Text {
        text,
        extra: Map::new(),
    })
}

fn image_part(source: &an::ImageSource, path: &str, backend: &str) -> Result<oa::ContentPart> {
    let url = match (
        source.kind.as_str(),
        &source.media_type,
        &source.data,
        &source.url,
    ) {
        ("base64", Some(mt), Some(data), _) => format!("data:{mt};base64,{data}"),
        ("url", _, _, Some(url)) => url.clone(),
        _ => {
            return Err(untranslatable(
                format!("{path}.source"),
                backend,
                "only base64 and url image sources can be translated",
            ));
        }
    };
    Ok(oa::ContentPart::Known(oa::KnownContentPart::ImageUrl {
        image_url: oa::ImageUrl {
            url,
            detail: None,
            extra: Map::new(),
        },
        extra: Map::new(),
    }))
}

/// A `document` block as an OpenAI content part: base64 data as a `file` part (a data
/// URL, which OpenAI reads for PDFs), a text document as its text.
fn document_part(v: &Value, path: &str, backend: &str) -> Result<oa::ContentPart> {
    let src = v.get("source");
    let field = |k: &str| src.and_then(|s| s.get(k)).and_then(Value::as_str);
    match (field("type"), field("media_type"), field("data")) {
        (Some("base64"), Some(mt), Some(data)) => {
            let ext = match mt {
                "application/pdf" => "pdf",
                "text/plain" => "txt",
                _ => "bin",
            };
            Ok(oa::ContentPart::Other(json!({
                "type": "file",
                "file": {"filename": format!("document.{ext}"), "file_data": format!("data:{mt};base64,{data}")},
            })))
        }
        (Some("text"), _, Some(text)) => Ok(text_part(text.to_owned())),
        _ => Err(untranslatable(
            format!("{path}.source"),
            backend,
            "only base64 and text documents can be translated",
        )),
    }
}

fn is_document(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("document")
}

fn blocks_of(content: &an::MessageContent) -> Vec<an::ContentBlock> {
    match content {
        an::MessageContent::Text(t) => vec![
            an::KnownBlock::Text {
                text: t.clone(),
                cache_control: None,
                extra: Map::new(),
            }
            .into(),
        ],
        an::MessageContent::Blocks(b) => b.clone(),
    }
}

fn other_type(v: &Value) -> String {
    v.get("type")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned()
}

fn finish_parts(parts: Vec<oa::ContentPart>) -> Option<oa::MessageContent> {
    if parts.is_empty() {
        return None;
    }
    if parts
        .iter()
        .all(|p| matches!(p, oa::ContentPart::Known(oa::KnownContentPart::Text { .. })))
        && parts.len() == 1
    {
        if let Some(oa::ContentPart::Known(oa::KnownContentPart::Text { text, .. })) =
            parts.into_iter().next()
        {
            return Some(oa::MessageContent::Text(text));
        }
        return None;
    }
    Some(oa::MessageContent::Parts(parts))
}

/// The text of a system prompt or mid-conversation system message (text blocks only,
/// joined by blank lines); notes whether any block carried a cache breakpoint.
fn system_text(
    content: &an::SystemPrompt,
    field: &str,
    backend: &str,
    cache: &mut bool,
) -> Result<String> {
    match content {
        an::SystemPrompt::Text(t) => Ok(t.clone()),
        an::SystemPrompt::Blocks(b) => {
            let mut s = Vec::new();
            for (i, block) in b.iter().enumerate() {
                match block {
                    an::ContentBlock::Known(an::KnownBlock::Text {
                        text,
                        cache_control,
                        ..
                    }) => {
                        *cache |= cache_control.is_some();
                        s.push(text.as_str());
                    }
                    _ => {
                        return Err(untranslatable(
                            format!("{field}[{i}]"),
                            backend,
                            "system prompts can only contain text",
                        ));
                    }
                }
            }
            Ok(s.join("\n\n"))
        }
    }
}

/// Converts an Anthropic Messages request into an OpenAI chat request. Fields left out
/// because they cannot change the answer are added to `dropped`.
pub fn messages_to_chat_request(
    req: &an::MessagesRequest,
    backend: &str,
    dropped: &mut Vec<DroppedField>,
) -> Result<oa::ChatCompletionRequest> {
    let mut messages = Vec::new();
    let mut cache = false;
    if let Some(system) = &req.system {
        let text = system_text(system, "system", backend, &mut cache)?;
        messages.push(oa::ChatMessage::text(oa::Role::System, text));
    }
    let mut turn_effort = None;
    let mut loaded: Vec<String> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        if let Some(e) = m.extra.get("output_config").and_then(|c| c.get("effort")) {
            turn_effort = Some(e.clone());
        }
        if m.role == an::Role::System {
            let content = match &m.content {
                an::MessageContent::Text(t) => an::SystemPrompt::Text(t.clone()),
                an::MessageContent::Blocks(b) => an::SystemPrompt::Blocks(b.clone()),
            };
            let text = system_text(&content, &format!("{path}.content"), backend, &mut cache)?;
            messages.push(oa::ChatMessage::text(oa::Role::System, text));
            continue;
        }
        cache |= has_cache_marks(&m.content);
        let blocks = blocks_of(&m.content);
        match m.role {
            an::Role::System => {}
            an::Role::User => user_turn(&path, blocks, backend, &mut messages, &mut loaded)?,
            an::Role::Assistant => messages.push(assistant_turn(&path, blocks, backend)?),
        }
    }

    let mut out = oa::ChatCompletionRequest {
        model: req.model.clone().unwrap_or_default(),
        messages,
        stream: req.stream,
        max_completion_tokens: req.max_tokens,
        temperature: req.temperature.clone(),
        top_p: req.top_p.clone(),
        stop: req.stop_sequences.clone().map(oa::Stop::Many),
        ..Default::default()
    };
    if req.stream == Some(true) {
        out.stream_options = Some(oa::StreamOptions {
            include_usage: Some(true),
            extra: Map::new(),
        });
    }
    if let Some(user) = req
        .metadata
        .as_ref()
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        out.user = Some(user.to_owned());
    }
    if let Some(k) = req.top_k {
        out.extra.insert("top_k".into(), json!(k));
    }
    if let Some(t) = &req.thinking {
        match (t.kind.as_str(), t.budget_tokens) {
            ("enabled", Some(b)) => out.reasoning_effort = Some(budget_effort(b).into()),
            ("adaptive", _) => out.reasoning_effort = Some("medium".into()),
            ("disabled", _) => {}
            _ => return Err(untranslatable("thinking", backend, "unknown thinking type")),
        }
    }
    if let Some(tools) = &req.tools {
        cache |= tools.iter().any(|t| t.cache_control.is_some());
        out.tools = Some(function_tools(tools, &loaded, backend)?);
    }
    if let Some(c) = &req.tool_choice {
        out.tool_choice = Some(tool_choice(c, backend)?);
        if c.disable_parallel_tool_use == Some(true) {
            out.parallel_tool_calls = Some(false);
        }
    }
    extra_fields(&req.extra, &mut out, backend, dropped)?;
    if let Some(e) = turn_effort {
        out.reasoning_effort = Some(effort_level(&e, backend)?.into());
    }
    if req
        .thinking
        .as_ref()
        .is_some_and(|t| t.extra.contains_key("display"))
    {
        dropped.push(fields::DROP_THINKING_DISPLAY);
    }
    if cache {
        dropped.push(fields::DROP_CACHE_CONTROL);
    }
    Ok(out)
}

/// The Messages fields this module's types keep in `extra`: structured output and
/// effort, context editing, preferences without an OpenAI counterpart; anything else
/// passes through as a vendor field for OpenAI-compatible servers.
fn extra_fields(
    extra: &Map<String, Value>,
    out: &mut oa::ChatCompletionRequest,
    backend: &str,
    dropped: &mut Vec<DroppedField>,
) -> Result<()> {
    for (k, v) in extra {
        match k.as_str() {
            // `output_format` is the structured-outputs beta; `output_config.format` the
            // GA form, next to `output_config.effort`.
            "output_format" => {
                out.response_format = Some(output_format(v, "output_format", backend)?);
            }
            "output_config" => {
                for (ck, cv) in v.as_object().into_iter().flatten() {
                    match ck.as_str() {
                        "format" => {
                            out.response_format =
                                Some(output_format(cv, "output_config.format", backend)?);
                        }
                        "effort" => {
                            out.reasoning_effort = Some(effort_level(cv, backend)?.into());
                        }
                        _ => {
                            return Err(untranslatable(
                                format!("output_config.{ck}"),
                                backend,
                                "no OpenAI counterpart",
                            ));
                        }
                    }
                }
            }
            "context_management" => {
                let edits = fields::context_edits(v, backend, dropped)?;
                if let Some(keep) = edits.keep_thinking_turns {
                    clear_reasoning(&mut out.messages, keep);
                }
            }
            // Anthropic's tiers, region and fast mode: preferences that cannot change
            // the answer (OpenAI's own `service_tier` values differ).
            "service_tier" => dropped.push(fields::DROP_SERVICE_TIER),
            "inference_geo" => dropped.push(fields::DROP_INFERENCE_GEO),
            "speed" => dropped.push(fields::DROP_SPEED),
            "container" | "mcp_servers" => {
                return Err(untranslatable(k.as_str(), backend, "no OpenAI counterpart"));
            }
            _ => {
                out.extra.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(())
}

/// Whether any block of a message carries a cache breakpoint.
fn has_cache_marks(content: &an::MessageContent) -> bool {
    let an::MessageContent::Blocks(blocks) = content else {
        return false;
    };
    blocks.iter().any(|b| {
        matches!(
            b,
            an::ContentBlock::Known(
                an::KnownBlock::Text {
                    cache_control: Some(_),
                    ..
                } | an::KnownBlock::Image {
                    cache_control: Some(_),
                    ..
                } | an::KnownBlock::ToolUse {
                    cache_control: Some(_),
                    ..
                } | an::KnownBlock::ToolResult {
                    cache_control: Some(_),
                    ..
                }
            )
        )
    })
}

/// Client tools as OpenAI function tools. Deferred tools (`defer_loading`) are not in
/// a first-party model's context until a tool search loads them (`loaded`); server
/// tools cannot run here.
fn function_tools(tools: &[an::Tool], loaded: &[String], backend: &str) -> Result<Vec<oa::Tool>> {
    let mut list = Vec::new();
    for (i, t) in tools.iter().enumerate() {
        if t.extra.get("defer_loading") == Some(&Value::Bool(true)) && !loaded.contains(&t.name) {
            continue;
        }
        if t.kind.as_deref().is_some_and(|k| k != "custom") {
            return Err(untranslatable(
                format!("tools[{i}]"),
                backend,
                "Anthropic server tools cannot run on an OpenAI backend",
            ));
        }
        list.push(oa::Tool {
            kind: "function".into(),
            function: Some(oa::FunctionDefinition {
                name: t.name.clone(),
                description: t.description.clone(),
                parameters: t.input_schema.clone(),
                strict: None,
                extra: Map::new(),
            }),
            extra: Map::new(),
        });
    }
    Ok(list)
}

/// `tool_choice` in OpenAI's form.
fn tool_choice(c: &an::ToolChoice, backend: &str) -> Result<oa::ToolChoice> {
    Ok(match (c.kind.as_str(), &c.name) {
        ("auto", _) => oa::ToolChoice::Mode("auto".into()),
        ("any", _) => oa::ToolChoice::Mode("required".into()),
        ("none", _) => oa::ToolChoice::Mode("none".into()),
        ("tool", Some(name)) => oa::ToolChoice::Named(oa::NamedToolChoice {
            kind: "function".into(),
            function: Some(oa::FunctionName {
                name: name.clone(),
                extra: Map::new(),
            }),
            extra: Map::new(),
        }),
        _ => {
            return Err(untranslatable(
                "tool_choice",
                backend,
                "unknown tool_choice type",
            ));
        }
    })
}

/// A user turn: its tool results become `tool` messages, then the rest (with any
/// images and documents the tools returned first) one user message.
fn user_turn(
    path: &str,
    blocks: Vec<an::ContentBlock>,
    backend: &str,
    messages: &mut Vec<oa::ChatMessage>,
    loaded: &mut Vec<String>,
) -> Result<()> {
    let mut parts = Vec::new();
    let mut attachments = Vec::new();
    for (j, b) in blocks.into_iter().enumerate() {
        let bpath = format!("{path}.content[{j}]");
        match b {
            an::ContentBlock::Known(an::KnownBlock::Text { text, .. }) => {
                parts.push(text_part(text))
            }
            an::ContentBlock::Known(an::KnownBlock::Image { source, .. }) => {
                parts.push(image_part(&source, &bpath, backend)?)
            }
            an::ContentBlock::Known(an::KnownBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
                ..
            }) => {
                messages.push(tool_message(
                    &bpath,
                    tool_use_id,
                    content,
                    is_error,
                    backend,
                    &mut attachments,
                    loaded,
                )?);
            }
            an::ContentBlock::Known(_) => {
                return Err(untranslatable(
                    format!("{bpath}.type"),
                    backend,
                    "not allowed in user messages",
                ));
            }
            an::ContentBlock::Other(v) if is_document(&v) => {
                parts.push(document_part(&v, &bpath, backend)?)
            }
            an::ContentBlock::Other(v) => {
                return Err(untranslatable(
                    format!("{bpath}.type"),
                    backend,
                    &format!("block type {:?} has no OpenAI counterpart", other_type(&v)),
                ));
            }
        }
    }
    // Images and documents from tool results open the user message that follows the
    // tool messages.
    attachments.append(&mut parts);
    if let Some(content) = finish_parts(attachments) {
        let mut msg = oa::ChatMessage::text(oa::Role::User, "");
        msg.content = Some(content);
        messages.push(msg);
    }
    Ok(())
}

/// A `tool_result` as an OpenAI `tool` message. Tool messages carry text only: images
/// and documents go to `attachments` (the next user message), labelled with the call;
/// `tool_reference` blocks (tool search results) name the tools they load in `loaded`.
fn tool_message(
    bpath: &str,
    tool_use_id: String,
    content: Option<an::MessageContent>,
    is_error: Option<bool>,
    backend: &str,
    attachments: &mut Vec<oa::ContentPart>,
    loaded: &mut Vec<String>,
) -> Result<oa::ChatMessage> {
    let mut text = String::new();
    if is_error == Some(true) {
        text.push_str("[error] ");
    }
    for (k, rb) in content
        .as_ref()
        .map(blocks_of)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        match rb {
            an::ContentBlock::Known(an::KnownBlock::Text { text: t, .. }) => {
                if k > 0 {
                    text.push('\n');
                }
                text.push_str(&t);
            }
            // A tool search result loads the deferred tool (see
            // `fields`): it joins the tool list, the result
            // says so in text.
            an::ContentBlock::Other(v)
                if v.get("type").and_then(Value::as_str) == Some("tool_reference") =>
            {
                let name = v
                    .get("tool_name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if k > 0 {
                    text.push('\n');
                }
                text.push_str("Tool loaded: ");
                text.push_str(name);
                loaded.push(name.to_owned());
            }
            an::ContentBlock::Other(v) if is_document(&v) => {
                attachments.push(text_part(format!(
                    "Document returned by tool call {tool_use_id}:"
                )));
                attachments.push(document_part(
                    &v,
                    &format!("{bpath}.content[{k}]"),
                    backend,
                )?);
            }
            // Tool messages carry text only: images the tool
            // returned follow in the user message after the
            // tool messages, labelled with the call.
            an::ContentBlock::Known(an::KnownBlock::Image { source, .. }) => {
                attachments.push(text_part(format!(
                    "Image returned by tool call {tool_use_id}:"
                )));
                attachments.push(image_part(
                    &source,
                    &format!("{bpath}.content[{k}]"),
                    backend,
                )?);
            }
            _ => {
                return Err(untranslatable(
                    format!("{bpath}.content[{k}]"),
                    backend,
                    "OpenAI tool messages carry text and images only",
                ));
            }
        }
    }
    let mut msg = oa::ChatMessage::text(oa::Role::Tool, text);
    msg.tool_call_id = Some(tool_use_id);
    Ok(msg)
}

/// An assistant turn: text, reasoning and tool calls in one message.
fn assistant_turn(
    path: &str,
    blocks: Vec<an::ContentBlock>,
    backend: &str,
) -> Result<oa::ChatMessage> {
    let mut msg = oa::ChatMessage::text(oa::Role::Assistant, "");
    msg.content = None;
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, b) in blocks.into_iter().enumerate() {
        let bpath = format!("{path}.content[{j}]");
        match b {
            an::ContentBlock::Known(an::KnownBlock::Text { text: t, .. }) => text.push_str(&t),
            an::ContentBlock::Known(an::KnownBlock::Thinking {
                thinking,
                signature,
                ..
            }) => {
                msg.reasoning_content
                    .get_or_insert_with(String::new)
                    .push_str(&thinking);
                if signature.is_some() {
                    msg.reasoning_signature = signature;
                }
            }
            an::ContentBlock::Known(an::KnownBlock::RedactedThinking { data, .. }) => {
                msg.extra
                    .insert("redacted_reasoning_content".into(), Value::String(data));
            }
            an::ContentBlock::Known(an::KnownBlock::ToolUse {
                id, name, input, ..
            }) => calls.push(oa::ToolCall {
                id,
                kind: "function".into(),
                function: oa::FunctionCall {
                    name,
                    arguments: input.to_string(),
                    extra: Map::new(),
                },
                extra: Map::new(),
            }),
            an::ContentBlock::Known(_) => {
                return Err(untranslatable(
                    format!("{bpath}.type"),
                    backend,
                    "not allowed in assistant messages",
                ));
            }
            an::ContentBlock::Other(v) => {
                return Err(untranslatable(
                    format!("{bpath}.type"),
                    backend,
                    &format!("block type {:?} has no OpenAI counterpart", other_type(&v)),
                ));
            }
        }
    }
    if !text.is_empty() || calls.is_empty() {
        msg.content = Some(oa::MessageContent::Text(text));
    }
    if !calls.is_empty() {
        msg.tool_calls = Some(calls);
    }
    Ok(msg)
}

/// OpenAI's `reasoning_effort` for an Anthropic effort level.
fn effort_level(v: &Value, backend: &str) -> Result<&'static str> {
    match v.as_str() {
        Some("low") => Ok("low"),
        Some("medium") => Ok("medium"),
        Some("high" | "xhigh" | "max") => Ok("high"),
        _ => Err(untranslatable(
            "output_config.effort",
            backend,
            "unknown effort level",
        )),
    }
}

/// Leaves out the reasoning of all but the last `keep` assistant messages that have any.
fn clear_reasoning(messages: &mut [oa::ChatMessage], keep: usize) {
    let mut seen = 0;
    for m in messages.iter_mut().rev() {
        let has =
            m.reasoning_content.is_some() || m.extra.contains_key("redacted_reasoning_content");
        if m.role != oa::Role::Assistant || !has {
            continue;
        }
        seen += 1;
        if seen > keep {
            m.reasoning_content = None;
            m.reasoning_signature = None;
            m.extra.remove("redacted_reasoning_content");
        }
    }
}

fn output_format(v: &Value, field: &str, backend: &str) -> Result<oa::ResponseFormat> {
    let schema = v.get("schema").cloned();
    if v.get("type").and_then(Value::as_str) != Some("json_schema") || schema.is_none() {
        return Err(untranslatable(
            field,
            backend,
            "only json_schema output formats can be translated",
        ));
    }
    Ok(oa::ResponseFormat {
        kind: "json_schema".into(),
        json_schema: Some(oa::JsonSchemaFormat {
            name: "output".into(),
            description: None,
            schema,
            strict: Some(true),
            extra: Map::new(),
        }),
        extra: Map::new(),
    })
}

/// Maps an OpenAI `finish_reason` to an Anthropic `stop_reason`.
pub fn stop_reason(finish: &str) -> &'static str {
    match finish {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// OpenAI usage as Anthropic usage (input excludes cache reads and writes).
pub fn usage_to_anthropic(u: &oa::Usage) -> an::Usage {
    let cached = u
        .prompt_tokens_details
        .as_ref()
        .and_then(|d| d.cached_tokens);
    let created = u
        .prompt_tokens_details
        .as_ref()
        .and_then(|d| d.cache_creation_tokens);
    an::Usage {
        input_tokens: Some(
            u.prompt_tokens
                .saturating_sub(cached.unwrap_or(0))
                .saturating_sub(created.unwrap_or(0)),
        ),
        output_tokens: Some(u.completion_tokens),
        cache_read_input_tokens: cached,
        cache_creation_input_tokens: created,
        // Reasoning tokens in Anthropic's shape (beta `thinking-token-count`).
        extra: u
            .completion_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens)
            .map(|r| {
                Map::from_iter([(
                    "output_tokens_details".to_owned(),
                    json!({ "thinking_tokens": r }),
                )])
            })
            .unwrap_or_default(),
    }
}

fn parse_args(args: &str) -> Value {
    // A truncated or malformed argument string (e.g. at max_tokens) cannot become an
    // object; the client still gets the call, with empty input, and `max_tokens`.
    serde_json::from_str::<Value>(args)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}))
}

/// Converts an OpenAI chat completion into an Anthropic Messages response.
pub fn chat_to_messages_response(resp: oa::ChatCompletion) -> Result<an::MessagesResponse> {
    let choice = resp
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| Error::malformed_upstream("chat completion without choices"))?;
    let m = choice.message;
    let mut content: Vec<an::ContentBlock> = Vec::new();
    if let Some(r) = m.reasoning_content.filter(|r| !r.is_empty()) {
        content.push(
            an::KnownBlock::Thinking {
                thinking: r,
                signature: Some(m.reasoning_signature.unwrap_or_default()),
                extra: Map::new(),
            }
            .into(),
        );
    }
    let text = match m.content {
        Some(oa::MessageContent::Text(t)) => t,
        Some(oa::MessageContent::Parts(p)) => p
            .into_iter()
            .filter_map(|p| match p {
                oa::ContentPart::Known(oa::KnownContentPart::Text { text, .. }) => Some(text),
                _ => None,
            })
            .collect(),
        None => String::new(),
    };
    if !text.is_empty() {
        content.push(
            an::KnownBlock::Text {
                text,
                cache_control: None,
                extra: Map::new(),
            }
            .into(),
        );
    }
    if let Some(r) = m.refusal.filter(|r| !r.is_empty()) {
        content.push(
            an::KnownBlock::Text {
                text: r,
                cache_control: None,
                extra: Map::new(),
            }
            .into(),
        );
    }
    for call in m.tool_calls.unwrap_or_default() {
        content.push(
            an::KnownBlock::ToolUse {
                id: call.id,
                name: call.function.name,
                input: parse_args(&call.function.arguments),
                cache_control: None,
                extra: Map::new(),
            }
            .into(),
        );
    }
    Ok(an::MessagesResponse {
        id: resp.id,
        kind: "message".into(),
        role: "assistant".into(),
        model: resp.model,
        content,
        stop_reason: Some(stop_reason(choice.finish_reason.as_deref().unwrap_or("stop")).into()),
        stop_sequence: None,
        usage: resp
            .usage
            .as_ref()
            .map(usage_to_anthropic)
            .unwrap_or_default(),
        extra: Map::new(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    Tool(u32),
}

/// OpenAI `chat.completion.chunk`s → Anthropic stream events.
#[derive(Debug, Default)]
pub struct MessagesStreamEncoder {
    started: bool,
    finished: bool,
    open: Option<Open>,
    next_block: u32,
    stop: Option<String>,
    usage: an::Usage,
    /// The upstream's own counters (they include reasoning tokens, which the Anthropic
    /// usage object cannot carry).
    token_usage: TokenUsage,
    model: String,
}

impl MessagesStreamEncoder {
    /// A fresh encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cumulative usage so far.
    pub fn usage(&self) -> TokenUsage {
        self.token_usage
    }

    /// The answering model, once seen.
    pub fn model(&self) -> Option<&str> {
        (!self.model.is_empty()).then_some(self.model.as_str())
    }

    // The once-per-block and once-per-message events are written as bytes, in the key
    // order of the `json!` trees they replace (the goldens hold them): building and
    // serialising those trees was most of the fixed cost of a short stream.

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open.take().is_some() {
            let index = self.next_block - 1;
            crate::sse::encode_with(out, "content_block_stop", |o| {
                o.extend_from_slice(br#"{"type":"content_block_stop","index":"#);
                push_json(o, &index);
                o.push(b'}');
            });
        }
    }

    /// Makes `kind` the open block, starting it with the `content_block` that `block`
    /// writes if it is new (written only then: most calls continue the open block).
    fn open(&mut self, kind: Open, block: impl FnOnce(&mut Vec<u8>), out: &mut Vec<u8>) -> u32 {
        if self.open == Some(kind) {
            return self.next_block - 1;
        }
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some(kind);
        crate::sse::encode_with(out, "content_block_start", |o| {
            o.extend_from_slice(br#"{"type":"content_block_start","index":"#);
            push_json(o, &index);
            o.extend_from_slice(br#","content_block":"#);
            block(o);
            o.push(b'}');
        });
        index
    }

    fn delta(out: &mut Vec<u8>, index: u32, delta: DeltaOut<'_>) {
        crate::sse::encode_json(
            out,
            Some("content_block_delta"),
            &BlockDeltaOut {
                kind: "content_block_delta",
                index,
                delta,
            },
        );
    }

    /// Translates one chunk's JSON text (the `data:` of an OpenAI stream event).
    /// Returns `false` when it is not a chat completion chunk (it is then skipped).
    pub fn on_data(&mut self, data: &str, out: &mut Vec<u8>) -> bool {
        let Ok(chunk) = serde_json::from_str::<LeanChunk<'_>>(data) else {
            return false;
        };
        if !self.started {
            self.started = true;
            self.model = chunk.model.clone().into_owned();
            crate::sse::encode_with(out, "message_start", |o| {
                o.extend_from_slice(br#"{"type":"message_start","message":{"id":"#);
                push_json(o, chunk.id.as_ref());
                o.extend_from_slice(br#","type":"message","role":"assistant","model":"#);
                push_json(o, chunk.model.as_ref());
                o.extend_from_slice(
                    br#","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}"#,
                );
            });
        }
        if let Some(u) = &chunk.usage {
            merge_usage(&mut self.usage, &usage_to_anthropic(u));
            self.token_usage.update(&u.to_token_usage());
        }
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            let d = &choice.delta;
            if let Some(r) = d.reasoning_content.as_deref().filter(|r| !r.is_empty()) {
                let i = self.open(Open::Thinking, thinking_start, out);
                Self::delta(out, i, DeltaOut::ThinkingDelta { thinking: r });
            }
            if let Some(sig) = d.reasoning_signature.as_deref().filter(|s| !s.is_empty()) {
                let i = self.open(Open::Thinking, thinking_start, out);
                Self::delta(out, i, DeltaOut::SignatureDelta { signature: sig });
            }
            if let Some(t) = d.content.as_deref().filter(|t| !t.is_empty()) {
                let i = self.open(
                    Open::Text,
                    |o| o.extend_from_slice(br#"{"type":"text","text":""}"#),
                    out,
                );
                Self::delta(out, i, DeltaOut::TextDelta { text: t });
            }
            for call in d.tool_calls.iter().flatten() {
                let (name, args) = match &call.function {
                    Some(f) => (f.name.as_deref(), f.arguments.as_deref()),
                    None => (None, None),
                };
                let i = if self.open == Some(Open::Tool(call.index)) {
                    self.next_block - 1
                } else {
                    let id = call.id.as_deref().unwrap_or_default();
                    self.open(
                        Open::Tool(call.index),
                        |o| {
                            o.extend_from_slice(br#"{"type":"tool_use","id":"#);
                            push_json(o, id);
                            o.extend_from_slice(br#","name":"#);
                            push_json(o, name.unwrap_or_default());
                            o.extend_from_slice(br#","input":{}}"#);
                        },
                        out,
                    )
                };
                if let Some(args) = args.filter(|a| !a.is_empty()) {
                    Self::delta(out, i, DeltaOut::InputJsonDelta { partial_json: args });
                }
            }
            if let Some(f) = &choice.finish_reason {
                self.stop = Some(stop_reason(f).into());
            }
        }
        true
    }

    /// Ends the message: closes the open block and emits `message_delta` (stop reason
    /// and cumulative usage) and `message_stop`. Idempotent.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.started || self.finished {
            return;
        }
        self.finished = true;
        self.close(out);
        let (stop, usage) = (self.stop.as_deref().unwrap_or("end_turn"), &self.usage);
        crate::sse::encode_with(out, "message_delta", |o| {
            o.extend_from_slice(br#"{"type":"message_delta","delta":{"stop_reason":"#);
            push_json(o, stop);
            o.extend_from_slice(br#","stop_sequence":null},"usage":"#);
            push_json(o, usage);
            o.push(b'}');
        });
        crate::sse::encode_with(out, "message_stop", |o| {
            o.extend_from_slice(br#"{"type":"message_stop"}"#);
        });
    }
}

fn thinking_start(o: &mut Vec<u8>) {
    o.extend_from_slice(br#"{"type":"thinking","thinking":"","signature":""}"#);
}

// Lean, borrowing views of an OpenAI chunk: a stream event is parsed without building
// the full wire type (no `flatten` buffering), which keeps per-event cost low.

#[derive(Deserialize)]
struct LeanChunk<'a> {
    #[serde(borrow, default)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    #[serde(borrow, default)]
    choices: Vec<LeanChoice<'a>>,
    #[serde(default)]
    usage: Option<oa::Usage>,
}

#[derive(Deserialize)]
struct LeanChoice<'a> {
    #[serde(default)]
    index: u32,
    #[serde(borrow, default)]
    delta: LeanDelta<'a>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Default, Deserialize)]
struct LeanDelta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<LeanToolCall<'a>>>,
}

#[derive(Deserialize)]
struct LeanToolCall<'a> {
    #[serde(default)]
    index: u32,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<LeanFunction<'a>>,
}

#[derive(Deserialize)]
struct LeanFunction<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct BlockDeltaOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    delta: DeltaOut<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::enum_variant_names)] // the names are Anthropic's delta types
enum DeltaOut<'a> {
    TextDelta { text: &'a str },
    ThinkingDelta { thinking: &'a str },
    SignatureDelta { signature: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_result_images_open_the_next_user_message() {
        let req: an::MessagesRequest = serde_json::from_value(json!({
            "model": "m", "max_tokens": 5, "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": [
                        {"type": "text", "text": "saved"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "aGk="}}]},
                    {"type": "text", "text": "what is on it?"}]}]
        }))
        .unwrap();
        let out = messages_to_chat_request(&req, "OpenAI", &mut Vec::new()).unwrap();
        let v = serde_json::to_value(&out.messages[2..]).unwrap();
        assert_eq!(
            v,
            json!([
                {"role": "tool", "content": "saved", "tool_call_id": "t1"},
                {"role": "user", "content": [
                    {"type": "text", "text": "Image returned by tool call t1:"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGk="}},
                    {"type": "text", "text": "what is on it?"}]}
            ])
        );
    }
}
