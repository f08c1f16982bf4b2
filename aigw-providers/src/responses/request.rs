//! Responses request → Chat Completions request, for the backends that speak (or are
//! translated from) Chat Completions.
//!
//! Every field a Responses client sends gets a deliberate mapping: translated, dropped
//! with a reason (logged), or refused with a 422 naming the field. The table lives in
//! `docs/translation-matrix.md`; the code below is its single source.

use super::reasoning;
use aigw_core::api::openai::{
    ChatCompletionRequest, ChatMessage, ContentPart as ChatPart, Extra, FunctionCall,
    FunctionDefinition, FunctionName, ImageUrl, JsonSchemaFormat,
    KnownContentPart as ChatKnownPart, MessageContent as ChatContent, NamedToolChoice,
    ResponseFormat, Role, StreamOptions, Tool as ChatTool, ToolCall, ToolChoice as ChatToolChoice,
};
use aigw_core::api::responses::{
    ContentPart, FunctionCallItem, Input, Item, KnownContentPart, MessageContent, ReasoningItem,
    ResponsesRequest, Tool,
};
use aigw_core::{Error, Result};
use serde_json::Value;
use std::collections::HashMap;

/// Separator between a `namespace` tool's name and its function's name in the flat
/// function name sent to backends that have no namespaces. Two underscores keep the
/// name within Anthropic's and Bedrock's `[a-zA-Z0-9_-]{1,64}` tool-name alphabet.
pub const NAMESPACE_SEPARATOR: &str = "__";

/// Top-level request fields dropped on translated backends, each for a stated reason.
const DROPPED: &[(&str, &str)] = &[
    (
        "client_metadata",
        "client-side metadata, never sent to a model",
    ),
    ("metadata", "only meaningful on a stored response"),
    (
        "prompt_cache_key",
        "an OpenAI cache-routing hint; the backend caches by prefix",
    ),
    (
        "safety_identifier",
        "an OpenAI abuse-monitoring id with no backend counterpart",
    ),
    (
        "stream_options",
        "stream obfuscation is an OpenAI transport detail",
    ),
    (
        "service_tier",
        "service tiers are OpenAI's; the backend's tier is its configuration",
    ),
    ("user", "an end-user id with no backend counterpart"),
];

/// What the response side needs to know about the request.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    /// The request's `reasoning.summary` asks for reasoning summaries.
    pub summary: bool,
    /// Flat function name → (namespace, function name) for `namespace` tools.
    pub namespaced: HashMap<String, (String, String)>,
    /// The request parameters echoed on the response object.
    pub echo: serde_json::Map<String, Value>,
    /// The response is stored for `previous_response_id` (`store` not `false`).
    pub store: bool,
    /// Responses-only fields left out of the chat request, for the dropped-field counter.
    pub dropped: Vec<aigw_core::DroppedField>,
}

/// The request's input as a list of items (a string input is one user message).
pub fn input_items(req: &ResponsesRequest) -> Vec<Item> {
    match &req.input {
        None => Vec::new(),
        Some(Input::Items(items)) => items.clone(),
        Some(Input::Text(t)) => vec![Item::Message(aigw_core::api::responses::MessageItem {
            kind: Some("message".into()),
            id: None,
            role: "user".into(),
            content: MessageContent::Text(t.clone()),
            status: None,
            extra: Extra::new(),
        })],
    }
}

/// Replaces a `previous_response_id` continuation by the whole conversation from the
/// gateway's conversation store (the id stays, for the response to echo it).
pub fn expand_previous(req: &mut ResponsesRequest) -> Result<()> {
    let Some(prev) = req.previous_response_id.clone() else {
        return Ok(());
    };
    let now = std::time::Instant::now();
    let Some(mut items) = super::store::with(|s| s.get(&prev, now)) else {
        return Err(Error::bad_request(format!(
            "previous_response_id: no stored response `{prev}` (translated backends' \
             responses are kept by the gateway process that answered them, for a limited \
             time; send the whole conversation with `store: false` instead)"
        )));
    };
    items.extend(input_items(req));
    req.input = Some(Input::Items(items));
    Ok(())
}

/// Adapts a translated chat request for a chat-only OpenAI-compatible server (vLLM,
/// Ollama, llama.cpp): their chat templates know `system`, `user`, `assistant` and
/// `tool`, and many reject or silently mis-render a `developer` message, so it is sent
/// as `system` (the role OpenAI itself treats it as on non-reasoning models). Earlier
/// reasoning (`reasoning_content`, its signature, redacted reasoning) is not replayed:
/// no such server documents accepting it on input, and templates that do not know it
/// either fail or show it to the model as plain text. The drop is counted.
pub fn for_chat_only_server(
    chat: &mut ChatCompletionRequest,
    dropped: &mut Vec<aigw_core::DroppedField>,
) {
    let mut replayed = false;
    for m in &mut chat.messages {
        if m.role == Role::Developer {
            m.role = Role::System;
        }
        replayed |= m.reasoning_content.take().is_some();
        replayed |= m.reasoning_signature.take().is_some();
        replayed |= m.extra.remove("redacted_reasoning_content").is_some();
    }
    if replayed {
        dropped.push(aigw_core::DroppedField::new(
            "input[].reasoning",
            "chat-only OpenAI-compatible servers take no reasoning on input; the \
             model answers from the visible conversation",
        ));
    }
}

fn reject(field: impl Into<String>, backend: &str, why: &str) -> Error {
    Error::untranslatable(field, backend, why)
}

/// Translates a parsed Responses request into a Chat Completions request.
pub fn to_chat(
    req: &ResponsesRequest,
    backend: &str,
) -> Result<(ChatCompletionRequest, RequestFacts)> {
    let mut facts = RequestFacts {
        dropped: check_top_level(req, backend)?,
        ..RequestFacts::default()
    };
    let mut messages = Vec::new();
    if let Some(i) = &req.instructions {
        messages.push(ChatMessage::text(Role::System, i.clone()));
    }
    match &req.input {
        None => {}
        Some(Input::Text(t)) => messages.push(ChatMessage::text(Role::User, t.clone())),
        Some(Input::Items(items)) => items_to_messages(items, backend, &mut messages)?,
    }
    let tools = tools_to_chat(req.tools.as_deref().unwrap_or(&[]), backend, &mut facts)?;
    let tool_choice = req
        .tool_choice
        .as_ref()
        .map(|c| tool_choice(c, backend))
        .transpose()?;
    let stream = req.stream.unwrap_or(false);
    let mut chat = ChatCompletionRequest {
        model: req.model.clone(),
        messages,
        stream: stream.then_some(true),
        stream_options: stream.then(|| StreamOptions {
            include_usage: Some(true),
            extra: Extra::new(),
        }),
        max_completion_tokens: req.max_output_tokens,
        temperature: req.temperature.clone(),
        top_p: req.top_p.clone(),
        tools: (!tools.is_empty()).then_some(tools),
        tool_choice,
        parallel_tool_calls: req.parallel_tool_calls,
        ..ChatCompletionRequest::default()
    };
    if let Some(r) = &req.reasoning {
        facts.summary = r.summary.as_deref().is_some_and(|s| s != "none");
        chat.reasoning_effort = match r.effort.as_deref() {
            None | Some("none") => None,
            Some(e @ ("minimal" | "low" | "medium" | "high")) => Some(e.to_owned()),
            // Efforts above `high` (Codex offers `xhigh`, `max`, `ultra`) get the largest
            // budget the backends' chat translation defines.
            Some("xhigh" | "max" | "ultra") => Some("high".into()),
            Some(other) => {
                return Err(Error::bad_request(format!(
                    "reasoning.effort: unknown effort `{other}`"
                )));
            }
        };
    }
    if let Some(format) = req.text.as_ref().and_then(|t| t.format.as_ref()) {
        chat.response_format = match format.kind.as_str() {
            "text" => None,
            "json_object" => Some(ResponseFormat {
                kind: "json_object".into(),
                json_schema: None,
                extra: Extra::new(),
            }),
            "json_schema" => Some(ResponseFormat {
                kind: "json_schema".into(),
                json_schema: Some(JsonSchemaFormat {
                    name: format.name.clone().unwrap_or_else(|| "response".into()),
                    description: format.description.clone(),
                    schema: format.schema.clone(),
                    strict: format.strict,
                    extra: Extra::new(),
                }),
                extra: Extra::new(),
            }),
            other => {
                return Err(reject(
                    "text.format.type",
                    backend,
                    &format!("output format `{other}` has no equivalent"),
                ));
            }
        };
    }
    facts.echo = echo(req);
    facts.store = req.store != Some(false);
    Ok((chat, facts))
}

fn check_top_level(req: &ResponsesRequest, backend: &str) -> Result<Vec<aigw_core::DroppedField>> {
    let mut dropped = Vec::new();
    for (i, v) in req.include.iter().flatten().enumerate() {
        if v != "reasoning.encrypted_content" {
            return Err(reject(
                format!("include[{i}]"),
                backend,
                "only `reasoning.encrypted_content` can be produced by this backend",
            ));
        }
    }
    // Typed fields that no backend has: dropped, each with its reason.
    let typed = [
        ("prompt_cache_key", req.prompt_cache_key.is_some()),
        ("metadata", req.metadata.is_some()),
        ("client_metadata", req.client_metadata.is_some()),
        ("user", req.user.is_some()),
    ];
    for (name, why) in DROPPED {
        if typed.iter().any(|(t, present)| t == name && *present) {
            tracing::debug!(field = name, backend, why, "Responses field dropped");
            dropped.push(aigw_core::DroppedField::new(name, why));
        }
    }
    for (k, v) in &req.extra {
        if let Some((name, why)) = DROPPED.iter().find(|(name, _)| name == k) {
            tracing::debug!(field = k.as_str(), backend, why, "Responses field dropped");
            dropped.push(aigw_core::DroppedField::new(name, why));
            continue;
        }
        let harmless = match k.as_str() {
            "truncation" => v.is_null() || v == "disabled",
            "background" => v.is_null() || v == &Value::Bool(false),
            "top_logprobs" => v.is_null() || v == &Value::from(0),
            "max_tool_calls" | "conversation" | "prompt" => v.is_null(),
            _ => false,
        };
        if !harmless {
            return Err(reject(
                k.clone(),
                backend,
                "this Responses field has no equivalent on this backend",
            ));
        }
    }
    Ok(dropped)
}

/// The request parameters a response object echoes.
fn echo(req: &ResponsesRequest) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    let opt = |v: Option<Value>| v.unwrap_or(Value::Null);
    m.insert(
        "instructions".into(),
        opt(req.instructions.clone().map(Value::from)),
    );
    m.insert(
        "max_output_tokens".into(),
        opt(req.max_output_tokens.map(Value::from)),
    );
    m.insert(
        "parallel_tool_calls".into(),
        req.parallel_tool_calls.unwrap_or(true).into(),
    );
    m.insert(
        "previous_response_id".into(),
        opt(req.previous_response_id.clone().map(Value::from)),
    );
    m.insert(
        "reasoning".into(),
        req.reasoning
            .as_ref()
            .and_then(|r| serde_json::to_value(r).ok())
            .unwrap_or_else(|| serde_json::json!({"effort": null, "summary": null})),
    );
    m.insert("store".into(), (req.store != Some(false)).into());
    m.insert(
        "temperature".into(),
        opt(req.temperature.clone().map(Value::Number)),
    );
    m.insert(
        "text".into(),
        req.text
            .as_ref()
            .and_then(|t| serde_json::to_value(t).ok())
            .unwrap_or_else(|| serde_json::json!({"format": {"type": "text"}})),
    );
    m.insert(
        "tool_choice".into(),
        req.tool_choice.clone().unwrap_or_else(|| "auto".into()),
    );
    m.insert(
        "tools".into(),
        req.tools
            .as_ref()
            .and_then(|t| serde_json::to_value(t).ok())
            .unwrap_or_else(|| Value::Array(Vec::new())),
    );
    m.insert("top_p".into(), opt(req.top_p.clone().map(Value::Number)));
    m.insert("truncation".into(), "disabled".into());
    m.insert(
        "metadata".into(),
        req.metadata
            .clone()
            .unwrap_or_else(|| serde_json::json!({})),
    );
    m
}

/// An assistant turn being assembled from consecutive assistant-side items.
#[derive(Default)]
struct PendingAssistant {
    text: Vec<ChatPart>,
    calls: Vec<ToolCall>,
    reasoning: Option<(String, Option<String>)>,
    redacted: Option<String>,
}

impl PendingAssistant {
    fn flush(&mut self, out: &mut Vec<ChatMessage>) {
        let p = std::mem::take(self);
        if p.text.is_empty() && p.calls.is_empty() && p.reasoning.is_none() && p.redacted.is_none()
        {
            return;
        }
        let mut m = ChatMessage::text(Role::Assistant, String::new());
        m.content = (!p.text.is_empty()).then_some(ChatContent::Parts(p.text));
        m.tool_calls = (!p.calls.is_empty()).then_some(p.calls);
        if let Some((text, sig)) = p.reasoning {
            m.reasoning_content = Some(text);
            m.reasoning_signature = sig;
        }
        if let Some(d) = p.redacted {
            m.extra
                .insert("redacted_reasoning_content".into(), d.into());
        }
        out.push(m);
    }
}

fn items_to_messages(items: &[Item], backend: &str, out: &mut Vec<ChatMessage>) -> Result<()> {
    let mut pending = PendingAssistant::default();
    for (i, item) in items.iter().enumerate() {
        match item {
            Item::Message(m) if m.role == "assistant" => {
                pending
                    .text
                    .extend(parts(&m.content, &format!("input[{i}].content"), backend)?);
            }
            Item::Message(m) => {
                pending.flush(out);
                let role = match m.role.as_str() {
                    "user" => Role::User,
                    "system" => Role::System,
                    "developer" => Role::Developer,
                    other => {
                        return Err(Error::bad_request(format!(
                            "input[{i}].role: unknown role `{other}`"
                        )));
                    }
                };
                let content = parts(&m.content, &format!("input[{i}].content"), backend)?;
                let mut msg = ChatMessage::text(role, String::new());
                msg.content = Some(ChatContent::Parts(content));
                out.push(msg);
            }
            Item::FunctionCall(c) => pending.calls.push(tool_call(c)),
            Item::Reasoning(r) => replay_reasoning(r, &mut pending),
            Item::FunctionCallOutput(o) => {
                pending.flush(out);
                let text = match &o.output {
                    MessageContent::Text(t) => t.clone(),
                    MessageContent::Parts(p) => text_of(p, &format!("input[{i}].output"), backend)?,
                };
                let mut msg = ChatMessage::text(Role::Tool, text);
                msg.tool_call_id = Some(o.call_id.clone());
                out.push(msg);
            }
            Item::Other(v) => {
                let kind = v.get("type").and_then(Value::as_str).unwrap_or("?");
                return Err(reject(
                    format!("input[{i}]"),
                    backend,
                    &format!("input items of type `{kind}` have no equivalent on this backend"),
                ));
            }
        }
    }
    pending.flush(out);
    Ok(())
}

fn tool_call(c: &FunctionCallItem) -> ToolCall {
    let name = match &c.namespace {
        Some(ns) => format!("{ns}{NAMESPACE_SEPARATOR}{}", c.name),
        None => c.name.clone(),
    };
    ToolCall {
        id: c.call_id.clone(),
        kind: "function".into(),
        function: FunctionCall {
            name,
            arguments: c.arguments.clone(),
            extra: Extra::new(),
        },
        extra: Extra::new(),
    }
}

/// Replays a reasoning item: the gateway's own encrypted content carries the signed
/// thinking exactly; a foreign one (from OpenAI) means nothing to this backend, and
/// reasoning with no signature cannot be replayed to a backend that verifies it, so
/// both are left out — the conversation stays valid, only the hidden state is lost.
fn replay_reasoning(r: &ReasoningItem, pending: &mut PendingAssistant) {
    match r.encrypted_content.as_deref().and_then(reasoning::decode) {
        Some(reasoning::Sealed::Thinking { text, signature }) => {
            let entry = pending
                .reasoning
                .get_or_insert_with(|| (String::new(), None));
            entry.0.push_str(&text);
            entry.1 = signature;
        }
        Some(reasoning::Sealed::Redacted(d)) => pending.redacted = Some(d),
        None => {
            tracing::debug!("reasoning item without gateway-sealed content not replayed");
        }
    }
}

fn parts(content: &MessageContent, field: &str, backend: &str) -> Result<Vec<ChatPart>> {
    let list = match content {
        MessageContent::Text(t) => {
            return Ok(vec![text_part(t.clone())]);
        }
        MessageContent::Parts(p) => p,
    };
    let mut out = Vec::with_capacity(list.len());
    for (j, p) in list.iter().enumerate() {
        let field = format!("{field}[{j}]");
        out.push(match p {
            ContentPart::Known(KnownContentPart::InputText { text, .. })
            | ContentPart::Known(KnownContentPart::OutputText { text, .. })
            | ContentPart::Known(KnownContentPart::Refusal { refusal: text, .. }) => {
                text_part(text.clone())
            }
            ContentPart::Known(KnownContentPart::InputImage {
                image_url: Some(url),
                detail,
                ..
            }) => ChatPart::Known(ChatKnownPart::ImageUrl {
                image_url: ImageUrl {
                    url: url.clone(),
                    detail: detail.clone(),
                    extra: Extra::new(),
                },
                extra: Extra::new(),
            }),
            ContentPart::Known(KnownContentPart::InputFile {
                file_data: Some(data),
                filename,
                ..
            }) => {
                let mut file = serde_json::json!({ "file_data": data });
                if let Some(n) = filename {
                    file["filename"] = n.clone().into();
                }
                ChatPart::Known(ChatKnownPart::File {
                    file,
                    extra: Extra::new(),
                })
            }
            ContentPart::Known(KnownContentPart::InputImage { .. })
            | ContentPart::Known(KnownContentPart::InputFile { .. }) => {
                return Err(reject(
                    field,
                    backend,
                    "files are referenced by OpenAI file id or URL; send the bytes inline \
                     (a data URL in `image_url` or `file_data`)",
                ));
            }
            ContentPart::Other(v) => {
                let kind = v.get("type").and_then(Value::as_str).unwrap_or("?");
                return Err(reject(
                    field,
                    backend,
                    &format!("content parts of type `{kind}` have no equivalent"),
                ));
            }
        });
    }
    Ok(out)
}

fn text_part(text: String) -> ChatPart {
    ChatPart::Known(ChatKnownPart::Text {
        text,
        extra: Extra::new(),
    })
}

fn text_of(parts: &[ContentPart], field: &str, backend: &str) -> Result<String> {
    let mut out = String::new();
    for (j, p) in parts.iter().enumerate() {
        match p {
            ContentPart::Known(KnownContentPart::InputText { text, .. })
            | ContentPart::Known(KnownContentPart::OutputText { text, .. }) => out.push_str(text),
            _ => {
                return Err(reject(
                    format!("{field}[{j}]"),
                    backend,
                    "function call outputs are translated as text only",
                ));
            }
        }
    }
    Ok(out)
}

fn function_tool(t: &Tool, name: String) -> ChatTool {
    ChatTool {
        kind: "function".into(),
        function: Some(FunctionDefinition {
            name,
            description: t.description.clone(),
            parameters: t.parameters.clone(),
            strict: t.strict,
            extra: Extra::new(),
        }),
        extra: Extra::new(),
    }
}

/// Whether a hosted web search tool may only read the provider's cache (Codex sends
/// `web_search` with `external_web_access: false` on every request unless live search
/// is enabled): with no live access it adds nothing a backend could honour, so it is
/// dropped rather than failing every request of such a client.
fn is_cached_web_search(t: &Tool) -> bool {
    t.kind.starts_with("web_search")
        && t.extra.get("external_web_access") == Some(&Value::Bool(false))
}

fn tools_to_chat(tools: &[Tool], backend: &str, facts: &mut RequestFacts) -> Result<Vec<ChatTool>> {
    let mut out = Vec::with_capacity(tools.len());
    for (i, t) in tools.iter().enumerate() {
        match t.kind.as_str() {
            "function" => {
                let name = t.name.clone().ok_or_else(|| {
                    Error::bad_request(format!("tools[{i}].name: a function tool needs a name"))
                })?;
                out.push(function_tool(t, name));
            }
            "namespace" => {
                let ns = t.name.clone().unwrap_or_default();
                for (j, inner) in t.tools.iter().flatten().enumerate() {
                    let Some(name) = inner.name.clone().filter(|_| inner.kind == "function") else {
                        return Err(reject(
                            format!("tools[{i}].tools[{j}]"),
                            backend,
                            "only function tools are translated inside a namespace",
                        ));
                    };
                    let flat = format!("{ns}{NAMESPACE_SEPARATOR}{name}");
                    facts.namespaced.insert(flat.clone(), (ns.clone(), name));
                    out.push(function_tool(inner, flat));
                }
            }
            _ if is_cached_web_search(t) => {
                crate::responses::note_dropped_tool(&t.kind, backend);
                facts.dropped.push(aigw_core::DroppedField::new(
                    "tools.web_search",
                    "cache-only web search (external_web_access: false); the backend has no search",
                ));
            }
            other => {
                return Err(reject(
                    format!("tools[{i}]"),
                    backend,
                    &format!("the hosted tool `{other}` has no equivalent on this backend"),
                ));
            }
        }
    }
    Ok(out)
}

fn tool_choice(c: &Value, backend: &str) -> Result<ChatToolChoice> {
    match c {
        Value::String(s) if matches!(s.as_str(), "auto" | "none" | "required") => {
            Ok(ChatToolChoice::Mode(s.clone()))
        }
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            let name = o.get("name").and_then(Value::as_str).ok_or_else(|| {
                Error::bad_request("tool_choice.name: a function tool choice needs a name")
            })?;
            Ok(ChatToolChoice::Named(NamedToolChoice {
                kind: "function".into(),
                function: Some(FunctionName {
                    name: name.to_owned(),
                    extra: Extra::new(),
                }),
                extra: Extra::new(),
            }))
        }
        _ => Err(reject(
            "tool_choice",
            backend,
            "only `auto`, `none`, `required` and function tool choices are translated",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> ResponsesRequest {
        serde_json::from_value(v).unwrap()
    }

    fn refused_field(v: Value) -> String {
        match to_chat(&parse(v), "Anthropic") {
            Err(Error::Untranslatable { field, .. }) => field,
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn unknown_and_non_default_fields_are_refused_by_name() {
        let base = |k: &str, v: Value| {
            let mut m = serde_json::json!({"model": "m", "input": "hi"});
            m[k] = v;
            m
        };
        assert_eq!(refused_field(base("frobnicate", 1.into())), "frobnicate");
        assert_eq!(
            refused_field(base("truncation", "auto".into())),
            "truncation"
        );
        assert_eq!(refused_field(base("background", true.into())), "background");
        assert_eq!(
            refused_field(base(
                "tool_choice",
                serde_json::json!({"type": "web_search"})
            )),
            "tool_choice"
        );
        // Defaults and routing hints pass.
        for (k, v) in [
            ("truncation", Value::from("disabled")),
            ("prompt_cache_key", "k".into()),
            ("client_metadata", serde_json::json!({"a": 1})),
            ("service_tier", "auto".into()),
        ] {
            let (_, facts) = to_chat(&parse(base(k, v)), "Anthropic").unwrap();
            let dropped: Vec<_> = facts.dropped.iter().map(|d| d.field).collect();
            let expected: &[&str] = if k == "truncation" { &[] } else { &[k] };
            assert_eq!(dropped, expected, "{k}");
        }
    }

    #[test]
    fn efforts_above_high_map_to_high_and_unknown_efforts_are_400() {
        let req = |e: &str| {
            parse(serde_json::json!({"model": "m", "input": "x", "reasoning": {"effort": e}}))
        };
        for e in ["xhigh", "max", "ultra"] {
            let (chat, _) = to_chat(&req(e), "Anthropic").unwrap();
            assert_eq!(chat.reasoning_effort.as_deref(), Some("high"), "{e}");
        }
        let (chat, _) = to_chat(&req("none"), "Anthropic").unwrap();
        assert_eq!(chat.reasoning_effort, None);
        let e = to_chat(&req("extreme"), "Anthropic").unwrap_err();
        assert_eq!(e.status(), http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn namespace_tools_flatten_and_cache_only_search_is_dropped_and_counted() {
        let before = crate::responses::dropped_tool_count();
        let (chat, facts) = to_chat(
            &parse(serde_json::json!({
                "model": "m", "input": "x",
                "tools": [
                    {"type": "namespace", "name": "mcp", "tools": [{"type": "function", "name": "read"}]},
                    {"type": "web_search", "external_web_access": false}
                ]
            })),
            "Anthropic",
        )
        .unwrap();
        let tools = chat.tools.unwrap();
        assert_eq!(tools.len(), 1);
        assert_eq!(tools[0].function.as_ref().unwrap().name, "mcp__read");
        assert_eq!(
            facts.namespaced.get("mcp__read"),
            Some(&("mcp".to_owned(), "read".to_owned()))
        );
        assert!(crate::responses::dropped_tool_count() > before);
        // Reported to the dropped-field counter like any other dropped field.
        let fields: Vec<_> = facts.dropped.iter().map(|d| d.field).collect();
        assert_eq!(fields, ["tools.web_search"]);
        // Live web search has no equivalent: refused.
        assert_eq!(
            refused_field(serde_json::json!({
                "model": "m", "input": "x", "tools": [{"type": "web_search"}]
            })),
            "tools[0]"
        );
    }
}
