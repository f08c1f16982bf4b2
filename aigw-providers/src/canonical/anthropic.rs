//! Anthropic Messages request → [`ChatRequest`].
//!
//! Fields of the current Messages API with no counterpart on Converse or Gemini follow
//! the shared rules of [`crate::anthropic::fields`]: a mid-conversation `system` message
//! becomes a `<system-reminder>` user turn at its position, the last message-level
//! `output_config.effort` (per-turn control) wins over the top-level one,
//! `context_management` is applied by the gateway or refused, and hints that cannot
//! change the answer are recorded in [`ChatRequest::dropped`].

use super::{Block, ChatRequest, Reasoning, ResponseFormat, Role, Tool, ToolChoice};
use crate::anthropic::fields;
use aigw_core::{Error, Result};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

// Every top-level field of the Messages API is named here, so one this module does
// not know is a 422 naming it rather than a silent drop.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request<'a> {
    #[serde(borrow)]
    model: Cow<'a, str>,
    #[serde(borrow, default)]
    messages: Vec<Msg<'a>>,
    #[serde(borrow, default)]
    system: Option<Content<'a>>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u64>,
    #[serde(borrow, default)]
    stop_sequences: Option<Vec<Cow<'a, str>>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(borrow, default)]
    tools: Option<Vec<ToolDef<'a>>>,
    #[serde(borrow, default)]
    tool_choice: Option<ToolChoiceIn<'a>>,
    #[serde(borrow, default)]
    thinking: Option<ThinkingIn<'a>>,
    #[serde(borrow, default)]
    output_config: Option<OutputConfig<'a>>,
    #[serde(borrow, default)]
    output_format: Option<&'a RawValue>,
    #[serde(borrow, default)]
    context_management: Option<&'a RawValue>,
    #[serde(borrow, default)]
    metadata: Option<Metadata<'a>>,
    /// Capacity, latency and residency preferences: they cannot change the answer.
    #[serde(borrow, default)]
    service_tier: Option<&'a RawValue>,
    #[serde(borrow, default)]
    inference_geo: Option<&'a RawValue>,
    #[serde(borrow, default)]
    speed: Option<&'a RawValue>,
    /// Server-side execution environments: no equivalent off Anthropic's API.
    #[serde(borrow, default)]
    container: Option<&'a RawValue>,
    #[serde(borrow, default)]
    mcp_servers: Option<&'a RawValue>,
    /// Bedrock/Vertex body markers a client may leave in; the gateway sets its own.
    #[serde(borrow, default, rename = "anthropic_version")]
    _anthropic_version: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "anthropic_beta")]
    _anthropic_beta: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ThinkingIn<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(default)]
    budget_tokens: Option<u64>,
    #[serde(borrow, default)]
    display: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow, default)]
    user_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct OutputConfig<'a> {
    #[serde(borrow, default)]
    effort: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    format: Option<Format<'a>>,
}

#[derive(Deserialize)]
struct Format<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    schema: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Msg<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(borrow)]
    content: Content<'a>,
    #[serde(borrow, default)]
    output_config: Option<OutputConfig<'a>>,
}

type Content<'a> = super::TextOr<'a, BlockIn<'a>>;

#[derive(Deserialize)]
struct BlockIn<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    source: Option<Source<'a>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tool_use_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    #[serde(default)]
    is_error: Option<bool>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    cache_control: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tool_name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Source<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    media_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    url: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ToolDef<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    description: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input_schema: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cache_control: Option<&'a RawValue>,
    #[serde(default)]
    defer_loading: Option<bool>,
}

#[derive(Deserialize)]
struct ToolChoiceIn<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    disable_parallel_tool_use: Option<bool>,
}

/// Parses an Anthropic Messages request. `backend` names the target in 422 errors.
pub fn parse(body: &[u8], backend: &str) -> Result<ChatRequest> {
    let req = decode(body, backend)?;
    let mut out = ChatRequest {
        model: req.model.into_owned(),
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        stop: req
            .stop_sequences
            .unwrap_or_default()
            .into_iter()
            .map(Cow::into_owned)
            .collect(),
        stream: req.stream.unwrap_or(false),
        ..ChatRequest::default()
    };
    let mut seen = Seen::default();
    if let Some(system) = req.system {
        out.system = blocks(system, "system", backend, &mut seen)?;
    }
    // Per-turn control: the effort of the last message that sets one governs the
    // answer to this request.
    let turn_effort = req
        .messages
        .iter()
        .rev()
        .find_map(|m| m.output_config.as_ref().and_then(|c| c.effort.clone()));
    let effort = turn_effort.or_else(|| req.output_config.as_ref().and_then(|c| c.effort.clone()));
    out.thinking_omitted = match req.thinking.as_ref().and_then(|t| t.display.as_deref()) {
        Some("omitted") => Some(true),
        Some(_) => Some(false),
        None => None,
    };
    out.reasoning = reasoning(req.thinking, effort);
    if req.metadata.is_some_and(|m| m.user_id.is_some()) {
        out.user_id = true;
    }
    for (set, drop) in [
        (req.service_tier.is_some(), fields::DROP_SERVICE_TIER),
        (req.inference_geo.is_some(), fields::DROP_INFERENCE_GEO),
        (req.speed.is_some(), fields::DROP_SPEED),
    ] {
        if set {
            out.dropped.push(drop);
        }
    }
    let edits = match req.context_management {
        Some(cm) => {
            let v: serde_json::Value = serde_json::from_str(cm.get())
                .map_err(|e| Error::bad_request(format!("invalid context_management: {e}")))?;
            fields::context_edits(&v, backend, &mut out.dropped)?
        }
        None => fields::ContextEdits::default(),
    };
    out.response_format = response_format(
        req.output_config.and_then(|c| c.format),
        req.output_format,
        backend,
    )?;
    let mut deferred = Vec::new();
    for (i, tool) in req.tools.into_iter().flatten().enumerate() {
        if let Some(kind) = tool.kind.as_deref().filter(|k| *k != "custom") {
            return Err(Error::untranslatable(
                format!("tools[{i}].type"),
                backend,
                format!("Anthropic server tool {kind:?} has no equivalent on this backend"),
            ));
        }
        let def = Tool {
            name: tool.name.into_owned(),
            description: tool.description.map(Cow::into_owned),
            parameters: tool.input_schema.map(RawValue::to_owned),
            cache: tool.cache_control.is_some(),
        };
        seen.cache_ttl |= tool.cache_control.is_some_and(|c| has_ttl(c.get()));
        if tool.defer_loading == Some(true) {
            // A deferred tool is not in the model's context until a tool search
            // returns a reference to it (below); Claude Code's own search is a client
            // tool, so the backend sees the tools a first-party model would.
            deferred.push(def);
        } else {
            out.tools.push(def);
        }
    }
    if let Some(tc) = req.tool_choice {
        if tc.disable_parallel_tool_use == Some(true) {
            out.parallel_tool_calls = Some(false);
        }
        out.tool_choice = Some(match tc.kind.as_ref() {
            "auto" => ToolChoice::Auto,
            "any" => ToolChoice::Any,
            "none" => ToolChoice::None,
            "tool" => ToolChoice::Tool(
                tc.name
                    .ok_or_else(|| {
                        Error::bad_request("tool_choice.name is required for type tool")
                    })?
                    .into_owned(),
            ),
            other => {
                return Err(Error::bad_request(format!(
                    "tool_choice.type {other:?} is not one of auto, any, tool, none"
                )));
            }
        });
    }
    for (i, msg) in req.messages.into_iter().enumerate() {
        let field = format!("messages[{i}].content");
        let (role, content) = match msg.role.as_ref() {
            "user" => (Role::User, blocks(msg.content, &field, backend, &mut seen)?),
            "assistant" => (
                Role::Assistant,
                blocks(msg.content, &field, backend, &mut seen)?,
            ),
            "system" => (Role::User, system_turn(msg.content, &field, backend)?),
            other => {
                return Err(Error::bad_request(format!(
                    "messages[{i}].role {other:?} is not user, assistant or system"
                )));
            }
        };
        out.push(role, content);
    }
    if let Some(keep) = edits.keep_thinking_turns {
        out.clear_thinking(keep);
    }
    out.tools.extend(
        deferred
            .into_iter()
            .filter(|t| seen.loaded.contains(&t.name)),
    );
    if seen.cache_ttl {
        out.dropped.push(fields::DROP_CACHE_TTL);
    }
    Ok(out)
}

/// The request, or a 422 naming a field no backend but Anthropic's own has.
fn decode<'a>(body: &'a [u8], backend: &str) -> Result<Request<'a>> {
    let req: Request<'a> = serde_json::from_slice(body).map_err(|e| {
        let msg = e.to_string();
        match msg
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
        {
            Some((field, _)) => Error::untranslatable(
                field,
                backend,
                "a Messages API field this backend has no equivalent for",
            ),
            None => Error::bad_request(format!("invalid messages request: {msg}")),
        }
    })?;
    if req.container.is_some() {
        return Err(Error::untranslatable(
            "container",
            backend,
            "code execution containers run only on Anthropic's API",
        ));
    }
    if req.mcp_servers.is_some() {
        return Err(Error::untranslatable(
            "mcp_servers",
            backend,
            "the MCP connector runs only on Anthropic's API",
        ));
    }
    Ok(req)
}

/// The reasoning a request asks for: `thinking`, with the effort that governs it.
fn reasoning(thinking: Option<ThinkingIn<'_>>, effort: Option<Cow<'_, str>>) -> Option<Reasoning> {
    match (thinking, effort) {
        (Some(t), _) if t.kind == "disabled" => Some(Reasoning::Disabled),
        (Some(t), _) if t.budget_tokens.is_some() => t.budget_tokens.map(Reasoning::Budget),
        (Some(t), effort) if t.kind == "adaptive" => {
            Some(Reasoning::Adaptive(effort.map(Cow::into_owned)))
        }
        (Some(_), Some(effort)) => Some(Reasoning::Effort(effort.into_owned())),
        (Some(_), None) => Some(Reasoning::Effort("medium".to_owned())),
        (None, _) => None,
    }
}

/// `output_config.format`, or the older beta spelling `output_format`.
fn response_format(
    format: Option<Format<'_>>,
    legacy: Option<&RawValue>,
    backend: &str,
) -> Result<Option<ResponseFormat>> {
    if let Some(format) = format {
        if format.kind != "json_schema" {
            return Err(Error::untranslatable(
                "output_config.format.type",
                backend,
                format!("unknown output format {:?}", format.kind),
            ));
        }
        let schema = format
            .schema
            .ok_or_else(|| Error::bad_request("output_config.format.schema is required"))?;
        return Ok(Some(ResponseFormat::JsonSchema {
            name: "response".to_owned(),
            description: None,
            schema: schema.to_owned(),
        }));
    } else if let Some(format) = legacy.filter(|f| f.get().starts_with('{')) {
        // The older beta spelling: `output_format: {"type":"json_schema","schema":{…}}`.
        let f: Format<'_> = serde_json::from_str(format.get())
            .map_err(|e| Error::bad_request(format!("invalid output_format: {e}")))?;
        if let Some(schema) = f.schema.filter(|_| f.kind == "json_schema") {
            return Ok(Some(ResponseFormat::JsonSchema {
                name: "response".to_owned(),
                description: None,
                schema: schema.to_owned(),
            }));
        }
    }
    Ok(None)
}

/// A mid-conversation system message as user-turn text at the same position.
fn system_turn(content: Content<'_>, field: &str, backend: &str) -> Result<Vec<Block>> {
    let mut out = blocks(content, field, backend, &mut Seen::default())?;
    for (j, b) in out.iter_mut().enumerate() {
        match b {
            Block::Text { text, .. } => *text = fields::system_reminder(text),
            _ => {
                return Err(Error::bad_request(format!(
                    "{field}[{j}]: system messages can only contain text"
                )));
            }
        }
    }
    Ok(out)
}

/// Whether a `cache_control` object sets a `ttl`.
fn has_ttl(cache_control: &str) -> bool {
    #[derive(Deserialize)]
    struct CacheControl<'a> {
        #[serde(borrow, default)]
        ttl: Option<&'a RawValue>,
    }
    serde_json::from_str::<CacheControl<'_>>(cache_control).is_ok_and(|c| c.ttl.is_some())
}

/// What a walk over the content blocks noticed besides the blocks themselves.
#[derive(Default)]
struct Seen {
    /// Tools named by `tool_reference` blocks (tool search results): they load
    /// deferred tools.
    loaded: Vec<String>,
    /// A cache breakpoint with a `ttl` (the neutral model keeps breakpoints, not TTLs).
    cache_ttl: bool,
}

/// Content blocks in the neutral model.
fn blocks(content: Content<'_>, field: &str, backend: &str, seen: &mut Seen) -> Result<Vec<Block>> {
    let parts = match content {
        super::TextOr::Text(t) if t.is_empty() => return Ok(Vec::new()),
        super::TextOr::Text(t) => {
            return Ok(vec![Block::Text {
                text: t.into_owned(),
                cache: false,
            }]);
        }
        super::TextOr::List(b) => b,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, b) in parts.into_iter().enumerate() {
        let cache = b.cache_control.is_some();
        seen.cache_ttl |= b.cache_control.is_some_and(|c| has_ttl(c.get()));
        let here = || format!("{field}[{j}]");
        let missing = |what: &str| Error::bad_request(format!("{field}[{j}].{what} is required"));
        match b.kind.as_ref() {
            "text" => out.push(Block::Text {
                text: b.text.map(Cow::into_owned).unwrap_or_default(),
                cache,
            }),
            "image" => {
                let src = b.source.ok_or_else(|| missing("source"))?;
                match src.kind.as_ref() {
                    "base64" => out.push(Block::Image {
                        media_type: src
                            .media_type
                            .ok_or_else(|| missing("source.media_type"))?
                            .into_owned(),
                        data: src.data.ok_or_else(|| missing("source.data"))?.into_owned(),
                        cache,
                    }),
                    "url" => out.push(Block::ImageUrl {
                        url: src.url.ok_or_else(|| missing("source.url"))?.into_owned(),
                        field: format!("{field}[{j}].source.url"),
                    }),
                    other => {
                        return Err(Error::untranslatable(
                            format!("{}.source.type", here()),
                            backend,
                            format!("image source {other:?} is not supported"),
                        ));
                    }
                }
            }
            "document" => {
                let src = b.source.ok_or_else(|| missing("source"))?;
                match src.kind.as_ref() {
                    "base64" => out.push(Block::Document {
                        media_type: src
                            .media_type
                            .ok_or_else(|| missing("source.media_type"))?
                            .into_owned(),
                        data: src.data.ok_or_else(|| missing("source.data"))?.into_owned(),
                        cache,
                    }),
                    // A plain-text document is its text.
                    "text" => out.push(Block::Text {
                        text: src.data.map(Cow::into_owned).unwrap_or_default(),
                        cache,
                    }),
                    other => {
                        return Err(Error::untranslatable(
                            format!("{}.source.type", here()),
                            backend,
                            format!(
                                "document source {other:?} is not supported; send base64 or text"
                            ),
                        ));
                    }
                }
            }
            "tool_use" => out.push(Block::ToolUse {
                id: b.id.ok_or_else(|| missing("id"))?.into_owned(),
                name: b.name.ok_or_else(|| missing("name"))?.into_owned(),
                input: b
                    .input
                    .map_or_else(
                        || RawValue::from_string("{}".to_owned()),
                        |i| Ok(i.to_owned()),
                    )
                    .map_err(|e| Error::internal(e.to_string()))?,
            }),
            "tool_result" => {
                let content = match b.content {
                    Some(c) => blocks(c, &format!("{}.content", here()), backend, seen)?,
                    None => Vec::new(),
                };
                out.push(Block::ToolResult {
                    id: b
                        .tool_use_id
                        .ok_or_else(|| missing("tool_use_id"))?
                        .into_owned(),
                    content,
                    is_error: b.is_error.unwrap_or(false),
                    cache,
                });
            }
            "thinking" => out.push(Block::Thinking {
                text: b.thinking.map(Cow::into_owned).unwrap_or_default(),
                signature: b.signature.map(Cow::into_owned),
            }),
            // A tool search result: on Anthropic's API it loads the deferred tool's
            // definition; here the tool joins the backend's tool list and the result
            // says so in text.
            "tool_reference" => {
                let name = b
                    .tool_name
                    .ok_or_else(|| missing("tool_name"))?
                    .into_owned();
                out.push(Block::Text {
                    text: format!("Tool loaded: {name}"),
                    cache,
                });
                seen.loaded.push(name);
            }
            "redacted_thinking" => out.push(Block::RedactedThinking {
                data: b.data.ok_or_else(|| missing("data"))?.into_owned(),
            }),
            other => {
                return Err(Error::untranslatable(
                    format!("{}.type", here()),
                    backend,
                    format!("content blocks of type {other:?} are not supported"),
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_result_error_and_thinking_survive() {
        let body = br#"{"model":"m","max_tokens":5,"system":"be brief","messages":[
          {"role":"user","content":"q"},
          {"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"S"},
             {"type":"tool_use","id":"t1","name":"f","input":{"a":1}}]},
          {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","is_error":true,"content":"bad"}]}]}"#;
        let r = parse(body, "AWSBedrock").unwrap();
        assert_eq!(r.system.len(), 1);
        assert!(
            matches!(&r.messages[1].content[0], Block::Thinking { signature: Some(s), .. } if s == "S")
        );
        assert!(matches!(
            &r.messages[2].content[0],
            Block::ToolResult { is_error: true, .. }
        ));
    }

    #[test]
    fn mid_conversation_system_becomes_a_reminder_in_the_user_turn() {
        let body = br#"{"model":"m","max_tokens":5,"messages":[
          {"role":"user","content":"q"},
          {"role":"system","content":[{"type":"text","text":"env","cache_control":{"type":"ephemeral"}}],
           "output_config":{"effort":"low"}}],
          "thinking":{"type":"adaptive","display":"omitted"},"output_config":{"effort":"high"},
          "context_management":{"edits":[{"type":"clear_thinking_20251015","keep":"all"}]},
          "tools":[{"name":"a","input_schema":{}},{"name":"b","input_schema":{},"defer_loading":true}]}"#;
        let r = parse(body, "AWSBedrock").unwrap();
        assert_eq!(r.messages.len(), 1);
        assert!(matches!(&r.messages[0].content[1],
            Block::Text { text, cache: true } if text == "<system-reminder>\nenv\n</system-reminder>"));
        assert_eq!(r.reasoning, Some(Reasoning::Adaptive(Some("low".into()))));
        assert_eq!(r.tools.len(), 1);
        let fields: Vec<_> = r.dropped.iter().map(|d| d.field).collect();
        assert_eq!(fields, ["context_management.clear_thinking"]);
        assert_eq!(r.thinking_omitted, Some(true));
    }

    #[test]
    fn tool_search_results_load_deferred_tools() {
        let body = br#"{"model":"m","max_tokens":5,"messages":[
          {"role":"user","content":"find it"},
          {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"ToolSearch","input":{"query":"select:Fetch"}}]},
          {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"tool_reference","tool_name":"Fetch"}]},
            {"type":"text","text":"Tool loaded."}]}],
          "tools":[{"name":"ToolSearch","input_schema":{}},{"name":"Fetch","input_schema":{},"defer_loading":true},
            {"name":"Other","input_schema":{},"defer_loading":true}]}"#;
        let r = parse(body, "GCPVertexAI").unwrap();
        let names: Vec<_> = r.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["ToolSearch", "Fetch"]);
        assert!(matches!(&r.messages[2].content[0],
            Block::ToolResult { content, .. } if matches!(&content[0], Block::Text { text, .. } if text == "Tool loaded: Fetch")));
    }

    #[test]
    fn a_cache_ttl_is_reported_dropped() {
        let body = br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[
          {"type":"text","text":"q","cache_control":{"type":"ephemeral","ttl":"1h"}}]}]}"#;
        let r = parse(body, "AWSBedrock").unwrap();
        assert_eq!(r.dropped, [fields::DROP_CACHE_TTL]);
        let body = br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[
          {"type":"text","text":"q","cache_control":{"type":"ephemeral"}}]}]}"#;
        assert!(parse(body, "AWSBedrock").unwrap().dropped.is_empty());
    }

    #[test]
    fn clear_thinking_keeps_the_last_turns() {
        let body = br#"{"model":"m","max_tokens":5,"messages":[
          {"role":"user","content":"q"},
          {"role":"assistant","content":[{"type":"thinking","thinking":"t1","signature":"S"},{"type":"text","text":"a"}]},
          {"role":"user","content":"q2"},
          {"role":"assistant","content":[{"type":"thinking","thinking":"t2","signature":"S"},{"type":"text","text":"b"}]},
          {"role":"user","content":"q3"}],
          "context_management":{"edits":[{"type":"clear_thinking_20251015","keep":{"type":"thinking_turns","value":1}}]}}"#;
        let r = parse(body, "GCPVertexAI").unwrap();
        assert_eq!(r.messages[1].content.len(), 1);
        assert_eq!(r.messages[3].content.len(), 2);
        assert!(r.dropped.is_empty());
    }

    #[test]
    fn unknown_top_level_fields_are_a_422_naming_them() {
        let body = br#"{"model":"m","max_tokens":5,"messages":[],"brand_new":{"a":1}}"#;
        let e = parse(body, "GCPVertexAI").unwrap_err();
        assert_eq!(e.status().as_u16(), 422);
        assert!(e.to_string().contains("brand_new"), "{e}");
        let body = br#"{"model":"m","max_tokens":5,"messages":[],"service_tier":"auto"}"#;
        let r = parse(body, "GCPVertexAI").unwrap();
        assert_eq!(r.dropped[0].field, "service_tier");
    }

    #[test]
    fn server_tools_are_untranslatable() {
        let body = br#"{"model":"m","max_tokens":5,"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"}]}"#;
        let e = parse(body, "AWSBedrock").unwrap_err();
        assert!(e.to_string().contains("tools[0].type"), "{e}");
    }
}
