//! OpenAI Chat Completions request → Anthropic Messages request.
//!
//! [`chat_to_messages`] is shared by every backend that speaks the Messages body:
//! native Anthropic, Anthropic on Vertex (GCPAnthropic) and Anthropic on Bedrock
//! (AWSAnthropic). The caller finishes the body for its platform: native sets `model`
//! and `stream`; Vertex removes `model` and sets `anthropic_version`; Bedrock removes
//! `model` and `stream` and sets `anthropic_version` (see [`super::finish_for_platform`]).
//!
//! Mapping decisions (also in `docs/translation-matrix.md`):
//! * `system`/`developer` messages that open the conversation become the top-level
//!   `system` blocks, in order; later ones keep their position as user-turn text wrapped
//!   in `<system-reminder>` tags (the Messages APIs of Anthropic, Vertex and Bedrock have
//!   no system role inside `messages`).
//! * Consecutive messages of the same Anthropic role are merged (tool results of one
//!   turn must share one user message).
//! * `response_format` (`json_object` / `json_schema`) is mapped by *tool forcing*: a
//!   tool named after the schema is added with `tool_choice: {type: tool}`, and its
//!   `tool_use` input comes back as the message text. It works on every Claude model
//!   and platform, unlike the newer `output_format` beta. It cannot be combined with
//!   client tools or with extended thinking (422).
//! * `reasoning_effort` becomes `thinking.budget_tokens` ([`effort_budget`]).
//! * Assistant `reasoning_content` + `reasoning_signature` are replayed as a `thinking`
//!   block; unsigned reasoning is omitted (Anthropic rejects unsigned thinking blocks).
//! * `name` on messages, `store`, `prompt_cache_key` and `prompt_cache_retention` have
//!   no Anthropic counterpart and no effect on the generation: they are dropped, logged
//!   and counted. `metadata` is passed when it has Anthropic's shape (`{"user_id": …}`,
//!   which wins over `safety_identifier` and `user`) and dropped (counted) otherwise;
//!   `service_tier` is passed when it is an Anthropic tier (`auto`, `standard_only`),
//!   dropped (counted) otherwise.
//! * Other unknown top-level fields are vendor fields and are passed through verbatim
//!   (`top_k`, `thinking`, `container`, …).
//! * Everything else without a counterpart is a 422 naming the field.

use crate::canonical::openai::{
    DROP_IMAGE_DETAIL, DROP_MESSAGE_NAME, DROP_METADATA, DROP_PROMPT_CACHE_KEY,
    DROP_PROMPT_CACHE_RETENTION, DROP_SERVICE_TIER, DROP_STORE,
};
use aigw_core::api::anthropic as an;
use aigw_core::api::openai as oa;
use aigw_core::{DroppedField, Error, Result};
use serde_json::{Map, Value, json};

/// `max_tokens` sent when the client set no limit (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Thinking budget for a `reasoning_effort` value.
pub fn effort_budget(effort: &str) -> Option<u64> {
    match effort {
        "minimal" | "low" => Some(1024),
        "medium" => Some(4096),
        "high" => Some(16384),
        _ => None,
    }
}

/// Name of the forced tool used for `response_format` when the schema has no usable name.
pub const JSON_TOOL_DEFAULT: &str = "json_response";

/// What [`chat_to_messages`] needs to remember for the response direction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatToMessagesInfo {
    /// The forced tool standing in for `response_format`, if any: its `tool_use` input
    /// is returned to the client as message text.
    pub json_tool: Option<String>,
}

fn untranslatable(field: impl Into<String>, backend: &str, reason: &str) -> Error {
    Error::untranslatable(field, backend, reason)
}

fn num_is(n: &serde_json::Number, v: f64) -> bool {
    n.as_f64() == Some(v)
}

/// Converts an OpenAI chat request into an Anthropic Messages request.
///
/// `backend` names the backend in 422 messages; fields left out because they cannot
/// change the answer are added to `dropped`. The result has `model` and `stream`
/// copied from the request; platform specifics are the caller's.
///
/// The steps run in a fixed order, which is also the order in which a request with
/// several problems reports them: sampling settings, top-level extras, thinking and
/// `max_tokens`, messages, tools, `tool_choice`, `response_format`.
pub fn chat_to_messages(
    req: &oa::ChatCompletionRequest,
    backend: &str,
    dropped: &mut Vec<DroppedField>,
) -> Result<(an::MessagesRequest, ChatToMessagesInfo)> {
    refuse_sampling_fields(req, backend)?;
    let mut out = an::MessagesRequest {
        model: Some(req.model.clone()),
        stream: req.stream,
        temperature: req.temperature.clone(),
        top_p: req.top_p.clone(),
        stop_sequences: req.stop.as_ref().map(oa::Stop::to_vec),
        ..Default::default()
    };
    map_extras(req, &mut out, dropped, backend)?;
    let thinking = map_thinking(req, &mut out, backend)?;
    note_message_drops(req, dropped);
    let (system, messages) = map_messages(req, backend)?;
    out.system = system;
    out.messages = messages;
    out.tools = map_tools(req, backend)?;
    let mut choice = map_tool_choice(req, out.tools.is_some(), backend)?;
    let mut info = ChatToMessagesInfo::default();
    if let Some(tool) = response_format_tool(req, backend)? {
        refuse_forced_tool_conflicts(&out, thinking.as_ref(), backend)?;
        choice = Some(tool_choice("tool", Some(tool.name.clone())));
        info.json_tool = Some(tool.name.clone());
        out.tools = Some(vec![tool]);
    }
    out.tool_choice = choice;
    out.thinking = thinking;
    Ok((out, info))
}

/// Sampling settings Anthropic cannot honour: a 422 naming the first one set.
fn refuse_sampling_fields(req: &oa::ChatCompletionRequest, backend: &str) -> Result<()> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(untranslatable(
            "n",
            backend,
            "Anthropic returns a single choice",
        ));
    }
    for (field, v) in [
        ("presence_penalty", &req.presence_penalty),
        ("frequency_penalty", &req.frequency_penalty),
    ] {
        if v.as_ref().is_some_and(|n| !num_is(n, 0.0)) {
            return Err(untranslatable(field, backend, "Anthropic has no penalties"));
        }
    }
    if req.logit_bias.as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(untranslatable(
            "logit_bias",
            backend,
            "Anthropic has no logit bias",
        ));
    }
    if req.logprobs == Some(true) || req.top_logprobs.is_some_and(|n| n > 0) {
        return Err(untranslatable(
            "logprobs",
            backend,
            "Anthropic returns no log probabilities",
        ));
    }
    if req.seed.is_some() {
        return Err(untranslatable(
            "seed",
            backend,
            "Anthropic has no deterministic sampling seed",
        ));
    }
    if let Some(t) = &req.temperature
        && t.as_f64().is_some_and(|t| t > 1.0)
    {
        return Err(untranslatable(
            "temperature",
            backend,
            "Anthropic accepts temperatures from 0 to 1",
        ));
    }
    Ok(())
}

/// Top-level extras: drop the OpenAI-only bookkeeping fields, refuse the ones that
/// change the output, pass the rest through as vendor fields. Also derives `metadata`
/// from `safety_identifier` or `user` when the request carries no Anthropic-shaped one.
fn map_extras(
    req: &oa::ChatCompletionRequest,
    out: &mut an::MessagesRequest,
    dropped: &mut Vec<DroppedField>,
    backend: &str,
) -> Result<()> {
    for (k, v) in &req.extra {
        match k.as_str() {
            _ if v.is_null() => {}
            "store" => dropped.push(DROP_STORE),
            "prompt_cache_key" => dropped.push(DROP_PROMPT_CACHE_KEY),
            "prompt_cache_retention" => dropped.push(DROP_PROMPT_CACHE_RETENTION),
            // The successor of `user`: an end-user id, which is what Anthropic's
            // `metadata.user_id` is.
            "safety_identifier" => {
                if let Some(id) = v.as_str()
                    && out.metadata.is_none()
                {
                    out.metadata = Some(json!({"user_id": id}));
                }
            }
            // Anthropic's `metadata` carries only `user_id`; OpenAI's is stored-completion
            // tagging with no Anthropic counterpart. Pass the Anthropic shape, drop the other.
            "metadata" => {
                if let Some(m) = v.as_object()
                    && !m.is_empty()
                    && m.keys().all(|k| k == "user_id")
                {
                    out.metadata = Some(v.clone());
                } else {
                    dropped.push(DROP_METADATA);
                }
            }
            // Anthropic's tiers are `auto` and `standard_only`; OpenAI's `default`, `flex`
            // and `priority` mean nothing there and are dropped.
            "service_tier" => {
                if matches!(v.as_str(), Some("auto" | "standard_only")) {
                    out.extra.insert(k.clone(), v.clone());
                } else {
                    dropped.push(DROP_SERVICE_TIER);
                }
            }
            "audio" | "modalities" | "prediction" | "web_search_options" | "functions"
            | "function_call" | "verbosity" => {
                if !(v.is_null() || k == "modalities" && v == &json!(["text"])) {
                    return Err(untranslatable(
                        k.as_str(),
                        backend,
                        "no Anthropic counterpart",
                    ));
                }
            }
            _ => {
                out.extra.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(user) = &req.user
        && out.metadata.is_none()
    {
        out.metadata = Some(json!({"user_id": user}));
    }
    Ok(())
}

/// Extended thinking — the vendor field `thinking` (taken out of `out.extra`) or else
/// `reasoning_effort` — and the `max_tokens` it has to fit under, set on `out`.
fn map_thinking(
    req: &oa::ChatCompletionRequest,
    out: &mut an::MessagesRequest,
    backend: &str,
) -> Result<Option<an::Thinking>> {
    let mut thinking = match out.extra.remove("thinking") {
        Some(v) => Some(
            serde_json::from_value::<an::Thinking>(v)
                .map_err(|e| Error::bad_request(format!("invalid `thinking`: {e}")))?,
        ),
        None => effort_thinking(req.reasoning_effort.as_deref(), backend)?,
    };
    let asked_max = req.max_completion_tokens.or(req.max_tokens);
    let mut max_tokens = asked_max.unwrap_or(DEFAULT_MAX_TOKENS);
    if let Some(t) = thinking.as_mut()
        && let Some(budget) = t.budget_tokens
        && budget >= max_tokens
    {
        match asked_max {
            None => max_tokens = budget + DEFAULT_MAX_TOKENS,
            Some(m) if m > 1024 => t.budget_tokens = Some(m - 1),
            Some(_) => {
                return Err(untranslatable(
                    "max_completion_tokens",
                    backend,
                    "extended thinking needs a budget of at least 1024 tokens below max_tokens",
                ));
            }
        }
    }
    out.max_tokens = Some(max_tokens);
    Ok(thinking)
}

/// The thinking block a `reasoning_effort` value stands for.
fn effort_thinking(effort: Option<&str>, backend: &str) -> Result<Option<an::Thinking>> {
    let Some(effort) = effort.filter(|e| *e != "none") else {
        return Ok(None);
    };
    let budget = effort_budget(effort).ok_or_else(|| {
        untranslatable(
            "reasoning_effort",
            backend,
            "expected minimal, low, medium or high",
        )
    })?;
    Ok(Some(an::Thinking {
        kind: "enabled".into(),
        budget_tokens: Some(budget),
        extra: Map::new(),
    }))
}

/// The conversation: the leading system/developer messages as the system prompt, the
/// rest as alternating user/assistant messages.
fn map_messages(
    req: &oa::ChatCompletionRequest,
    backend: &str,
) -> Result<(Option<an::SystemPrompt>, Vec<an::Message>)> {
    let mut system: Vec<an::ContentBlock> = Vec::new();
    let mut messages: Vec<an::Message> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        match m.role {
            oa::Role::System | oa::Role::Developer if messages.is_empty() => {
                system.extend(text_blocks(m.content.as_ref(), &path, backend)?);
            }
            oa::Role::System | oa::Role::Developer => {
                let blocks = reminder_blocks(text_blocks(m.content.as_ref(), &path, backend)?);
                push(&mut messages, an::Role::User, blocks);
            }
            oa::Role::User => {
                let blocks = user_blocks(m.content.as_ref(), &path, backend)?;
                push(&mut messages, an::Role::User, blocks);
            }
            oa::Role::Assistant => {
                let blocks = assistant_blocks(m, &path, backend)?;
                push(&mut messages, an::Role::Assistant, blocks);
            }
            oa::Role::Tool => {
                let block = tool_result_block(m, &path, backend)?;
                push(&mut messages, an::Role::User, vec![block]);
            }
            oa::Role::Function => {
                return Err(untranslatable(
                    format!("{path}.role"),
                    backend,
                    "legacy function messages are not supported; use tool messages",
                ));
            }
        }
    }
    Ok((system_prompt(system), messages))
}

/// A `tool` message as a `tool_result` block.
fn tool_result_block(m: &oa::ChatMessage, path: &str, backend: &str) -> Result<an::ContentBlock> {
    let id = m.tool_call_id.clone().ok_or_else(|| {
        Error::bad_request(format!("{path}.tool_call_id is required on tool messages"))
    })?;
    let content = match &m.content {
        None => None,
        Some(oa::MessageContent::Text(t)) => Some(an::MessageContent::Text(t.clone())),
        Some(c) => Some(an::MessageContent::Blocks(user_blocks(
            Some(c),
            path,
            backend,
        )?)),
    };
    let is_error = m.extra.get("is_error").and_then(Value::as_bool);
    Ok(an::KnownBlock::ToolResult {
        tool_use_id: id,
        content,
        is_error,
        cache_control: m.extra.get("cache_control").cloned(),
        extra: Map::new(),
    }
    .into())
}

/// The system blocks as Anthropic's `system`: a plain string when it is one text block
/// with nothing attached, the blocks otherwise, absent when there are none.
fn system_prompt(system: Vec<an::ContentBlock>) -> Option<an::SystemPrompt> {
    if system.is_empty() {
        return None;
    }
    Some(match system.as_slice() {
        [
            an::ContentBlock::Known(an::KnownBlock::Text {
                text,
                cache_control: None,
                extra,
            }),
        ] if extra.is_empty() => an::SystemPrompt::Text(text.clone()),
        _ => an::SystemPrompt::Blocks(system),
    })
}

/// Function tools as Anthropic tools; absent when the request lists none.
fn map_tools(req: &oa::ChatCompletionRequest, backend: &str) -> Result<Option<Vec<an::Tool>>> {
    let Some(tools) = &req.tools else {
        return Ok(None);
    };
    let mut list = Vec::with_capacity(tools.len());
    for (i, t) in tools.iter().enumerate() {
        let f = match (&t.function, t.kind.as_str()) {
            (Some(f), "function") => f,
            _ => {
                return Err(untranslatable(
                    format!("tools[{i}].type"),
                    backend,
                    "only function tools can be translated",
                ));
            }
        };
        list.push(an::Tool {
            name: f.name.clone(),
            kind: None,
            description: f.description.clone(),
            input_schema: Some(
                f.parameters
                    .clone()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            ),
            cache_control: t
                .extra
                .get("cache_control")
                .or_else(|| f.extra.get("cache_control"))
                .cloned(),
            extra: Map::new(),
        });
    }
    Ok((!list.is_empty()).then_some(list))
}

/// `tool_choice` and `parallel_tool_calls: false` (which only means something when
/// tools are sent) as Anthropic's `tool_choice`.
fn map_tool_choice(
    req: &oa::ChatCompletionRequest,
    has_tools: bool,
    backend: &str,
) -> Result<Option<an::ToolChoice>> {
    let mut choice = match &req.tool_choice {
        None => None,
        Some(oa::ToolChoice::Mode(m)) => Some(match m.as_str() {
            "auto" => tool_choice("auto", None),
            "none" => tool_choice("none", None),
            "required" => tool_choice("any", None),
            _ => {
                return Err(untranslatable(
                    "tool_choice",
                    backend,
                    "unknown tool_choice mode",
                ));
            }
        }),
        Some(oa::ToolChoice::Named(n)) => match &n.function {
            Some(f) if n.kind == "function" => Some(tool_choice("tool", Some(f.name.clone()))),
            _ => {
                return Err(untranslatable(
                    "tool_choice",
                    backend,
                    "only function tools can be forced",
                ));
            }
        },
    };
    if req.parallel_tool_calls == Some(false) && has_tools {
        let c = choice.get_or_insert_with(|| tool_choice("auto", None));
        if c.kind != "none" {
            c.disable_parallel_tool_use = Some(true);
        }
    }
    Ok(choice)
}

/// The forced tool standing in for a JSON `response_format`; none for `text` or no
/// format.
fn response_format_tool(
    req: &oa::ChatCompletionRequest,
    backend: &str,
) -> Result<Option<an::Tool>> {
    let Some(rf) = &req.response_format else {
        return Ok(None);
    };
    let (name, description, schema) = match (rf.kind.as_str(), &rf.json_schema) {
        ("text", _) => return Ok(None),
        ("json_object", _) => (
            JSON_TOOL_DEFAULT.to_owned(),
            "Respond with a JSON object.".to_owned(),
            json!({"type": "object"}),
        ),
        ("json_schema", Some(js)) => (
            tool_name(&js.name),
            js.description
                .clone()
                .unwrap_or_else(|| "Respond with JSON that matches this schema.".into()),
            js.schema
                .clone()
                .unwrap_or_else(|| json!({"type": "object"})),
        ),
        _ => {
            return Err(untranslatable(
                "response_format.type",
                backend,
                "unknown response format",
            ));
        }
    };
    Ok(Some(an::Tool {
        name,
        kind: None,
        description: Some(description),
        input_schema: Some(schema),
        cache_control: None,
        extra: Map::new(),
    }))
}

/// A forced tool cannot sit beside client tools or extended thinking.
fn refuse_forced_tool_conflicts(
    out: &an::MessagesRequest,
    thinking: Option<&an::Thinking>,
    backend: &str,
) -> Result<()> {
    if out.tools.is_some() {
        return Err(untranslatable(
            "response_format",
            backend,
            "structured output is mapped to a forced tool and cannot be combined with tools",
        ));
    }
    if thinking.is_some_and(|t| t.kind != "disabled") {
        return Err(untranslatable(
            "response_format",
            backend,
            "structured output is mapped to a forced tool, which Anthropic does not allow with extended thinking",
        ));
    }
    Ok(())
}

/// Message-level fields without an Anthropic counterpart that cannot change the answer.
fn note_message_drops(req: &oa::ChatCompletionRequest, dropped: &mut Vec<DroppedField>) {
    if req.messages.iter().any(|m| m.name.is_some()) {
        dropped.push(DROP_MESSAGE_NAME);
    }
    let detail = |m: &oa::ChatMessage| match &m.content {
        Some(oa::MessageContent::Parts(p)) => p.iter().any(|p| {
            matches!(p, oa::ContentPart::Known(oa::KnownContentPart::ImageUrl { image_url, .. })
                if image_url.detail.as_deref().is_some_and(|d| d != "auto"))
        }),
        _ => false,
    };
    if req.messages.iter().any(detail) {
        dropped.push(DROP_IMAGE_DETAIL);
    }
}

/// A mid-conversation system message's text blocks as user-turn text at the same
/// position, in the `<system-reminder>` form Anthropic clients use themselves.
fn reminder_blocks(mut blocks: Vec<an::ContentBlock>) -> Vec<an::ContentBlock> {
    for b in &mut blocks {
        if let an::ContentBlock::Known(an::KnownBlock::Text { text, .. }) = b {
            *text = crate::anthropic::fields::system_reminder(text);
        }
    }
    blocks
}

fn tool_name(name: &str) -> String {
    let n: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect();
    if n.is_empty() {
        JSON_TOOL_DEFAULT.to_owned()
    } else {
        n
    }
}

fn tool_choice(kind: &str, name: Option<String>) -> an::ToolChoice {
    an::ToolChoice {
        kind: kind.into(),
        name,
        disable_parallel_tool_use: None,
        extra: Map::new(),
    }
}

fn push(messages: &mut Vec<an::Message>, role: an::Role, blocks: Vec<an::ContentBlock>) {
    if let Some(last) = messages.last_mut()
        && last.role == role
    {
        match &mut last.content {
            an::MessageContent::Blocks(b) => b.extend(blocks),
            an::MessageContent::Text(t) => {
                let mut b = vec![text_block(std::mem::take(t), None)];
                b.extend(blocks);
                last.content = an::MessageContent::Blocks(b);
            }
        }
        return;
    }
    // A lone plain-text message stays a string, as clients usually send it.
    let content = match blocks.as_slice() {
        [
            an::ContentBlock::Known(an::KnownBlock::Text {
                text,
                cache_control: None,
                extra,
            }),
        ] if extra.is_empty() => an::MessageContent::Text(text.clone()),
        _ => an::MessageContent::Blocks(blocks),
    };
    messages.push(an::Message {
        role,
        content,
        extra: Map::new(),
    });
}

fn text_block(text: String, cache_control: Option<Value>) -> an::ContentBlock {
    an::KnownBlock::Text {
        text,
        cache_control,
        extra: Map::new(),
    }
    .into()
}

fn text_blocks(
    content: Option<&oa::MessageContent>,
    path: &str,
    backend: &str,
) -> Result<Vec<an::ContentBlock>> {
    let blocks = user_blocks(content, path, backend)?;
    for b in &blocks {
        if !matches!(b, an::ContentBlock::Known(an::KnownBlock::Text { .. })) {
            return Err(untranslatable(
                format!("{path}.content"),
                backend,
                "system prompts can only contain text",
            ));
        }
    }
    Ok(blocks)
}

/// Converts user-side content (text, images, PDFs) to Anthropic blocks.
fn user_blocks(
    content: Option<&oa::MessageContent>,
    path: &str,
    backend: &str,
) -> Result<Vec<an::ContentBlock>> {
    let parts = match content {
        None => return Ok(Vec::new()),
        Some(oa::MessageContent::Text(t)) => return Ok(vec![text_block(t.clone(), None)]),
        Some(oa::MessageContent::Parts(p)) => p,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let ppath = format!("{path}.content[{j}]");
        let known = match part {
            oa::ContentPart::Known(k) => k,
            oa::ContentPart::Other(v) => {
                let kind = v.get("type").and_then(Value::as_str).unwrap_or("?");
                return Err(untranslatable(
                    format!("{ppath}.type"),
                    backend,
                    &format!("content part type {kind:?} has no Anthropic counterpart"),
                ));
            }
        };
        out.push(match known {
            oa::KnownContentPart::Text { text, extra } => {
                text_block(text.clone(), extra.get("cache_control").cloned())
            }
            oa::KnownContentPart::Refusal { refusal, .. } => text_block(refusal.clone(), None),
            oa::KnownContentPart::ImageUrl { image_url, extra } => an::KnownBlock::Image {
                source: image_source(&image_url.url, &ppath, backend)?,
                cache_control: extra.get("cache_control").cloned(),
                extra: Map::new(),
            }
            .into(),
            oa::KnownContentPart::File { file, extra } => {
                let data = file
                    .get("file_data")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        untranslatable(
                            format!("{ppath}.file"),
                            backend,
                            "only inline file_data can be translated, not file ids",
                        )
                    })?;
                let (media_type, b64) = parse_data_url(data).ok_or_else(|| {
                    untranslatable(
                        format!("{ppath}.file.file_data"),
                        backend,
                        "expected a base64 data URL",
                    )
                })?;
                if media_type != "application/pdf" {
                    return Err(untranslatable(
                        format!("{ppath}.file"),
                        backend,
                        "Anthropic accepts PDF documents only",
                    ));
                }
                let mut doc = Map::new();
                doc.insert("type".into(), json!("document"));
                doc.insert(
                    "source".into(),
                    json!({"type": "base64", "media_type": media_type, "data": b64}),
                );
                if let Some(cc) = extra.get("cache_control") {
                    doc.insert("cache_control".into(), cc.clone());
                }
                an::ContentBlock::Other(Value::Object(doc))
            }
            oa::KnownContentPart::InputAudio { .. } => {
                return Err(untranslatable(
                    format!("{ppath}.type"),
                    backend,
                    "Anthropic does not accept audio input",
                ));
            }
        });
    }
    Ok(out)
}

/// Splits `data:{media};base64,{data}`.
pub fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media = meta.strip_suffix(";base64")?;
    Some((media, data))
}

fn image_source(url: &str, path: &str, backend: &str) -> Result<an::ImageSource> {
    if url.starts_with("data:") {
        let (media_type, data) = parse_data_url(url).ok_or_else(|| {
            untranslatable(
                format!("{path}.image_url.url"),
                backend,
                "expected a base64 data URL",
            )
        })?;
        return Ok(an::ImageSource {
            kind: "base64".into(),
            media_type: Some(media_type.into()),
            data: Some(data.into()),
            url: None,
            extra: Map::new(),
        });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(an::ImageSource {
            kind: "url".into(),
            media_type: None,
            data: None,
            url: Some(url.into()),
            extra: Map::new(),
        });
    }
    Err(untranslatable(
        format!("{path}.image_url.url"),
        backend,
        "expected an http(s) or data URL",
    ))
}

fn assistant_blocks(
    m: &oa::ChatMessage,
    path: &str,
    backend: &str,
) -> Result<Vec<an::ContentBlock>> {
    let mut out = Vec::new();
    if let (Some(thinking), Some(signature)) = (&m.reasoning_content, &m.reasoning_signature) {
        out.push(
            an::KnownBlock::Thinking {
                thinking: thinking.clone(),
                signature: Some(signature.clone()),
                extra: Map::new(),
            }
            .into(),
        );
    }
    if let Some(data) = m
        .extra
        .get("redacted_reasoning_content")
        .and_then(Value::as_str)
    {
        out.push(
            an::KnownBlock::RedactedThinking {
                data: data.into(),
                extra: Map::new(),
            }
            .into(),
        );
    }
    match &m.content {
        None => {}
        Some(oa::MessageContent::Text(t)) if t.is_empty() => {}
        Some(oa::MessageContent::Text(t)) => out.push(text_block(t.clone(), None)),
        Some(c) => out.extend(user_blocks(Some(c), path, backend)?),
    }
    if let Some(r) = &m.refusal {
        out.push(text_block(r.clone(), None));
    }
    for (k, call) in m.tool_calls.iter().flatten().enumerate() {
        let args = call.function.arguments.trim();
        let input = if args.is_empty() {
            json!({})
        } else {
            serde_json::from_str::<Value>(args).map_err(|e| {
                Error::bad_request(format!(
                    "{path}.tool_calls[{k}].function.arguments is not JSON: {e}"
                ))
            })?
        };
        out.push(
            an::KnownBlock::ToolUse {
                id: call.id.clone(),
                name: call.function.name.clone(),
                input,
                cache_control: call.extra.get("cache_control").cloned(),
                extra: Map::new(),
            }
            .into(),
        );
    }
    Ok(out)
}
