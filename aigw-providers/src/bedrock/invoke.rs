//! Anthropic models on Bedrock through InvokeModel (`AWSAnthropic`).
//!
//! The body is the Anthropic Messages body with `anthropic_version` set (the schema's
//! version, default `bedrock-2023-05-31`), `model` and `stream` removed (they live in
//! the path), and the client's `anthropic-beta` header copied into `anthropic_beta`.
//! Paths are `/model/{id}/invoke` and `/model/{id}/invoke-with-response-stream`; the
//! stream is AWS eventstream whose `chunk` events carry `{"bytes": base64(Anthropic
//! stream event JSON)}`.
//!
//! Anthropic clients get the Anthropic body and events back unchanged (re-framed as
//! SSE); OpenAI clients are translated through the neutral model.

use super::request::encode_model_id;
use super::{normalize_error, now_secs, request_id, response as bedrock_response};
use crate::canonical::sink::EventSink;
use crate::canonical::{
    self, Block, ChatRequest, ChatResponse, Choice, Event, OutBlock, Reasoning, ResponseFormat,
    Role, StopReason, ToolChoice, emit,
};
use crate::eventstream::{Decoder, FrameKind};
use aigw_core::{
    BodyChange, ClientApi, DroppedField, Error, ErrorResponse, HeaderMutation, RequestContext,
    ResponseChunk, Result, TokenUsage, Translator, UpstreamRequest,
};
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::borrow::Cow;

mod scan;

/// The backend name used in 422 errors.
pub const BACKEND: &str = "AWSAnthropic";
/// `anthropic_version` when the schema names none.
pub const DEFAULT_VERSION: &str = "bedrock-2023-05-31";
/// `max_tokens` for OpenAI requests without one: Anthropic requires the field.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

fn cache_control() -> Value {
    json!({"type": "ephemeral"})
}

fn blocks_json(blocks: &[Block], field: &str) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(blocks.len());
    for (j, b) in blocks.iter().enumerate() {
        let mut v = match b {
            Block::Text { text, .. } => json!({"type": "text", "text": text}),
            Block::Image {
                media_type, data, ..
            } => {
                json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
            }
            Block::ImageUrl { field, .. } => {
                return Err(Error::untranslatable(
                    field.clone(),
                    BACKEND,
                    "Claude on Bedrock takes image bytes only; send the image as a base64 data URL",
                ));
            }
            Block::ToolUse { id, name, input } => {
                let input: Value = serde_json::from_str(input.get())
                    .map_err(|e| Error::bad_request(format!("{field}[{j}].input: {e}")))?;
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }
            Block::ToolResult {
                id,
                content,
                is_error,
                ..
            } => {
                let mut r = json!({
                    "type": "tool_result",
                    "tool_use_id": id,
                    "content": blocks_json(content, &format!("{field}[{j}].content"))?,
                });
                if *is_error {
                    r["is_error"] = true.into();
                }
                r
            }
            Block::Thinking { text, signature } => {
                json!({"type": "thinking", "thinking": text, "signature": signature.as_deref().unwrap_or("")})
            }
            Block::RedactedThinking { data } => json!({"type": "redacted_thinking", "data": data}),
            Block::Document {
                media_type, data, ..
            } => {
                json!({"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}})
            }
        };
        let cached = matches!(
            b,
            Block::Text { cache: true, .. }
                | Block::Image { cache: true, .. }
                | Block::Document { cache: true, .. }
                | Block::ToolResult { cache: true, .. }
        );
        if cached {
            v["cache_control"] = cache_control();
        }
        out.push(v);
    }
    Ok(out)
}

/// Writes the Anthropic Messages body (for InvokeModel) for an OpenAI-originated
/// request.
pub fn messages_body(req: &ChatRequest, version: &str, betas: &[String]) -> Result<Value> {
    let reject = |field: &str, why: &str| Error::untranslatable(field, BACKEND, why);
    if req.n.is_some_and(|n| n > 1) {
        return Err(reject("n", "Claude returns a single choice"));
    }
    if req.presence_penalty.is_some_and(|p| p != 0.0) {
        return Err(reject("presence_penalty", "Claude has no presence penalty"));
    }
    if req.frequency_penalty.is_some_and(|p| p != 0.0) {
        return Err(reject(
            "frequency_penalty",
            "Claude has no frequency penalty",
        ));
    }
    if req.seed.is_some() {
        return Err(reject("seed", "Claude has no sampling seed"));
    }
    let mut body = Map::new();
    body.insert("anthropic_version".into(), version.into());
    body.insert(
        "max_tokens".into(),
        req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS).into(),
    );
    if !req.system.is_empty() {
        body.insert("system".into(), blocks_json(&req.system, "system")?.into());
    }
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        messages.push(json!({
            "role": match m.role { Role::User => "user", Role::Assistant => "assistant" },
            "content": blocks_json(&m.content, &format!("messages[{i}].content"))?,
        }));
    }
    body.insert("messages".into(), messages.into());
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), t.into());
    }
    if let Some(t) = req.top_p {
        body.insert("top_p".into(), t.into());
    }
    if let Some(k) = req.top_k {
        body.insert("top_k".into(), k.into());
    }
    if !req.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(req.stop));
    }
    if !req.tools.is_empty() {
        let tools = req
            .tools
            .iter()
            .map(|t| {
                let schema = match &t.parameters {
                    Some(p) => serde_json::from_str(p.get()).map_err(|e| {
                        Error::bad_request(format!("tool {:?} parameters: {e}", t.name))
                    })?,
                    None => json!({"type": "object", "properties": {}}),
                };
                let mut v = json!({"name": t.name, "input_schema": schema});
                if let Some(d) = &t.description {
                    v["description"] = d.as_str().into();
                }
                if t.cache {
                    v["cache_control"] = cache_control();
                }
                Ok(v)
            })
            .collect::<Result<Vec<_>>>()?;
        body.insert("tools".into(), tools.into());
    }
    let mut choice = match &req.tool_choice {
        None => None,
        Some(ToolChoice::Auto) => Some(json!({"type": "auto"})),
        Some(ToolChoice::Any) => Some(json!({"type": "any"})),
        Some(ToolChoice::None) => Some(json!({"type": "none"})),
        Some(ToolChoice::Tool(n)) => Some(json!({"type": "tool", "name": n})),
    };
    if req.parallel_tool_calls == Some(false) && !req.tools.is_empty() {
        choice
            .get_or_insert_with(|| json!({"type": "auto"}))
            .as_object_mut()
            .map(|o| o.insert("disable_parallel_tool_use".into(), true.into()));
    }
    if let Some(c) = choice {
        body.insert("tool_choice".into(), c);
    }
    match &req.reasoning {
        None => {}
        Some(Reasoning::Disabled) => {
            body.insert("thinking".into(), json!({"type": "disabled"}));
        }
        Some(r) => {
            body.insert(
                "thinking".into(),
                json!({"type": "enabled", "budget_tokens": r.budget_tokens().unwrap_or(1024)}),
            );
        }
    }
    match &req.response_format {
        None => {}
        Some(ResponseFormat::JsonObject) => {
            body.insert(
                "output_config".into(),
                json!({"format": {"type": "json_schema", "schema": {"type": "object"}}}),
            );
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            let schema: Value = serde_json::from_str(schema.get())
                .map_err(|e| Error::bad_request(format!("response_format schema: {e}")))?;
            body.insert(
                "output_config".into(),
                json!({"format": {"type": "json_schema", "schema": schema}}),
            );
        }
    }
    if !betas.is_empty() {
        body.insert("anthropic_beta".into(), json!(betas));
    }
    Ok(Value::Object(body))
}

/// The `anthropic-beta` header values, comma-separated or repeated.
fn betas(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("anthropic-beta")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Debug, Deserialize, Default, Clone, Copy)]
struct AUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl AUsage {
    fn merge(&mut self, newer: &Self) {
        fn take(a: &mut Option<u64>, b: Option<u64>) {
            if b.is_some() {
                *a = b;
            }
        }
        take(&mut self.input_tokens, newer.input_tokens);
        take(&mut self.output_tokens, newer.output_tokens);
        take(
            &mut self.cache_creation_input_tokens,
            newer.cache_creation_input_tokens,
        );
        take(
            &mut self.cache_read_input_tokens,
            newer.cache_read_input_tokens,
        );
    }

    fn token_usage(&self) -> TokenUsage {
        TokenUsage::from_explicit_caching(
            self.input_tokens,
            self.cache_read_input_tokens,
            self.cache_creation_input_tokens,
            self.output_tokens,
        )
    }
}

// Messages and stream events are parsed borrowed: strings without escapes (types,
// ids, most text) point into the decoded payload instead of being copied.
#[derive(Deserialize)]
struct AMessage<'a> {
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Vec<ABlock<'a>>,
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    stop_sequence: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<AUsage>,
}

#[cfg_attr(test, derive(Debug))]
#[derive(Deserialize)]
struct ABlock<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    signature: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    data: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    input: Option<&'a serde_json::value::RawValue>,
}

/// An optional borrowed string, owned (empty when absent).
fn owned(s: Option<Cow<'_, str>>) -> String {
    s.map(Cow::into_owned).unwrap_or_default()
}

fn stop_reason(s: &str, sequence: Option<Cow<'_, str>>) -> StopReason {
    match s {
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence(sequence.map(Cow::into_owned)),
        "tool_use" => StopReason::ToolUse,
        "refusal" => StopReason::ContentFilter,
        "model_context_window_exceeded" => StopReason::ContextWindow,
        _ => StopReason::EndTurn,
    }
}

fn out_block(b: ABlock<'_>) -> Option<OutBlock> {
    Some(match &*b.kind {
        "text" => OutBlock::Text(owned(b.text)),
        "thinking" => OutBlock::Thinking {
            text: owned(b.thinking),
            signature: b.signature.map(Cow::into_owned),
        },
        "redacted_thinking" => OutBlock::RedactedThinking(owned(b.data)),
        "tool_use" => OutBlock::ToolUse {
            id: owned(b.id),
            name: owned(b.name),
            input: b.input.map_or_else(
                || "{}".to_owned(),
                |i| bedrock_response::compact_json(i.get()),
            ),
        },
        _ => return None,
    })
}

/// Parses a complete Anthropic Messages response.
fn parse_message(body: &[u8], model: &str) -> Result<ChatResponse> {
    let m: AMessage<'_> = serde_json::from_slice(body)
        .map_err(|e| Error::malformed_upstream(format!("Anthropic response: {e}")))?;
    let stop = m
        .stop_reason
        .as_deref()
        .map(|s| stop_reason(s, m.stop_sequence.clone()));
    Ok(ChatResponse {
        id: m.id.map_or_else(|| "bedrock".to_owned(), Cow::into_owned),
        model: model.to_owned(),
        choices: vec![Choice {
            content: m.content.into_iter().filter_map(out_block).collect(),
            stop,
        }],
        usage: m.usage.unwrap_or_default().token_usage(),
    })
}

#[cfg_attr(test, derive(Debug))]
#[derive(Deserialize)]
struct AEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    message: Option<AStartMessage>,
    #[serde(default, borrow)]
    content_block: Option<ABlock<'a>>,
    #[serde(default, borrow)]
    delta: Option<ADelta<'a>>,
    #[serde(default)]
    usage: Option<AUsage>,
    #[serde(default, borrow)]
    error: Option<AError<'a>>,
}

#[cfg_attr(test, derive(Debug))]
#[derive(Deserialize)]
struct AStartMessage {
    #[serde(default)]
    usage: Option<AUsage>,
}

#[cfg_attr(test, derive(Debug))]
#[derive(Deserialize)]
struct ADelta<'a> {
    #[serde(
        rename = "type",
        default,
        borrow,
        deserialize_with = "crate::borrowed::opt_str"
    )]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    partial_json: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    signature: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    stop_sequence: Option<Cow<'a, str>>,
}

#[cfg_attr(test, derive(Debug))]
#[derive(Deserialize)]
struct AError<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    message: Cow<'a, str>,
}

/// HTTP status for an Anthropic error type.
fn anthropic_status(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        _ => 500,
    }
}

/// Anthropic stream event JSON → neutral events; `usage` accumulates the counters.
/// Returns the event's `type`.
fn anthropic_event<'a>(
    json: &'a [u8],
    usage: &mut AUsage,
    out: &mut Vec<Event>,
) -> Result<Cow<'a, str>> {
    let mut e: AEvent<'a> = match scan::event(json) {
        Some(e) => e,
        None => serde_json::from_slice(json)
            .map_err(|e| Error::malformed_upstream(format!("Anthropic stream event: {e}")))?,
    };
    let kind = std::mem::take(&mut e.kind);
    neutral_events(e, &kind, usage, out);
    Ok(kind)
}

fn neutral_events(e: AEvent<'_>, kind: &str, usage: &mut AUsage, out: &mut Vec<Event>) {
    let index = e.index.unwrap_or(0);
    match kind {
        "message_start" => {
            out.push(Event::Start);
            if let Some(u) = e.message.and_then(|m| m.usage) {
                usage.merge(&u);
                out.push(Event::Usage(usage.token_usage()));
            }
        }
        "content_block_start" => match e.content_block {
            Some(b) if b.kind == "tool_use" => out.push(Event::ToolStart {
                index,
                id: owned(b.id),
                name: owned(b.name),
            }),
            Some(b) if b.kind == "redacted_thinking" => out.push(Event::RedactedThinking {
                index,
                data: owned(b.data),
            }),
            Some(b) if b.kind == "text" => {
                if let Some(text) = b.text.filter(|t| !t.is_empty()) {
                    let text = text.into_owned();
                    out.push(Event::TextDelta { index, text });
                }
            }
            _ => {}
        },
        "content_block_delta" => {
            let Some(d) = e.delta else { return };
            match d.kind.as_deref() {
                Some("text_delta") => out.push(Event::TextDelta {
                    index,
                    text: owned(d.text),
                }),
                Some("input_json_delta") => out.push(Event::ToolDelta {
                    index,
                    json: owned(d.partial_json),
                }),
                Some("thinking_delta") => out.push(Event::ThinkingDelta {
                    index,
                    text: owned(d.thinking),
                }),
                Some("signature_delta") => out.push(Event::SignatureDelta {
                    index,
                    signature: owned(d.signature),
                }),
                _ => {}
            }
        }
        "content_block_stop" => out.push(Event::BlockStop { index }),
        "message_delta" => {
            if let Some(d) = e.delta
                && let Some(s) = d.stop_reason.as_deref()
            {
                out.push(Event::Stop(stop_reason(s, d.stop_sequence)));
            }
            if let Some(u) = e.usage {
                usage.merge(&u);
                out.push(Event::Usage(usage.token_usage()));
            }
        }
        "error" => {
            let err = e.error.unwrap_or(AError {
                kind: Cow::Borrowed(""),
                message: Cow::Borrowed("upstream stream error"),
            });
            out.push(Event::Error {
                status: anthropic_status(&err.kind),
                kind: err.kind.into_owned(),
                message: err.message.into_owned(),
            });
        }
        _ => {}
    }
}

#[derive(Deserialize)]
struct ChunkPayload<'a> {
    /// Base64 has nothing to unescape: borrowed, not copied.
    #[serde(borrow)]
    bytes: std::borrow::Cow<'a, str>,
}

/// Decodes an InvokeModel `chunk` frame's `{"bytes":…}` payload into `json` (empty).
///
/// InvokeModel writes the wrapper the same way every time, so its base64 text is found
/// by the fixed prefix and suffix ([`scan::plain_payload`]) and decoded by the SIMD
/// decoder (≈ 8 instructions per byte fewer than the `base64` crate's). Any other
/// wrapper, and any text that decoder rejects, takes the general path: the JSON read by
/// the scanner or serde, the base64 by the `base64` crate, whose errors the client sees.
fn chunk_json(payload: &[u8], json: &mut Vec<u8>) -> std::result::Result<(), String> {
    if let Some(b64) = scan::plain_payload(payload)
        && base64_simd::STANDARD.decode_append(b64, json).is_ok()
    {
        return Ok(());
    }
    json.clear();
    chunk_json_general(payload, json)
}

/// [`chunk_json`]'s general path.
fn chunk_json_general(payload: &[u8], json: &mut Vec<u8>) -> std::result::Result<(), String> {
    let b64 = match scan::payload(payload) {
        Some(b64) => b64,
        None => {
            serde_json::from_slice::<ChunkPayload>(payload)
                .map_err(|e| e.to_string())?
                .bytes
        }
    };
    base64::engine::general_purpose::STANDARD
        .decode_vec(b64.as_bytes(), json)
        .map_err(|e| e.to_string())
}

/// OpenAI chat or Anthropic Messages → Claude on Bedrock InvokeModel.
#[derive(Debug)]
pub struct InvokeTranslator {
    api: ClientApi,
    model_override: Option<String>,
    version: String,
    model: String,
    stream: bool,
    include_usage: bool,
    created: u64,
    id: String,
    decoder: Decoder,
    emitter: Option<emit::StreamEmitter>,
    /// Where the stream's events go instead of `emitter`'s bytes, if set.
    sink: Option<EventSink>,
    raw_usage: AUsage,
    usage: TokenUsage,
    buffered: Vec<u8>,
    /// The decoded payload of the current frame (reused across frames).
    payload: Vec<u8>,
    /// The neutral events of one call, kept for their capacity.
    events: Vec<Event>,
    ended: bool,
    /// The mid-stream failure already rendered to the client, if any.
    failure: Option<String>,
    /// Client fields not carried to the backend (reported to the exchange).
    dropped: Vec<DroppedField>,
}

impl InvokeTranslator {
    /// A translator for requests on `api`; `version` is the schema's `anthropic_version`.
    pub fn new(api: ClientApi, model_override: Option<&str>, version: Option<&str>) -> Self {
        Self {
            api,
            model_override: model_override.map(str::to_owned),
            version: version.unwrap_or(DEFAULT_VERSION).to_owned(),
            model: String::new(),
            stream: false,
            include_usage: false,
            created: now_secs(),
            id: "bedrock".to_owned(),
            decoder: Decoder::new(),
            emitter: None,
            sink: None,
            raw_usage: AUsage::default(),
            usage: TokenUsage::default(),
            buffered: Vec::new(),
            payload: Vec::new(),
            events: Vec::new(),
            ended: false,
            failure: None,
            dropped: Vec::new(),
        }
    }

    /// Queues the stream's events on `sink` instead of writing chat chunks (for a
    /// wrapper that renders another client API from them).
    #[must_use]
    pub fn with_event_sink(mut self, sink: EventSink) -> Self {
        self.sink = Some(sink);
        self
    }

    fn anthropic_body(&self, body: &[u8], headers: &HeaderMap) -> Result<(Value, String, bool)> {
        let mut v: Map<String, Value> = serde_json::from_slice(body)
            .map_err(|e| Error::bad_request(format!("invalid messages request: {e}")))?;
        let model = match (&self.model_override, v.remove("model")) {
            (Some(m), _) => m.clone(),
            (None, Some(Value::String(m))) => m,
            _ => return Err(Error::bad_request("the request body has no `model`")),
        };
        let stream = matches!(v.remove("stream"), Some(Value::Bool(true)));
        crate::anthropic::fields::fold_for_claude_platform(&mut v);
        v.entry("anthropic_version")
            .or_insert_with(|| self.version.clone().into());
        let betas = betas(headers);
        if !betas.is_empty() {
            v.insert("anthropic_beta".into(), json!(betas));
        }
        Ok((Value::Object(v), model, stream))
    }

    fn frame_events(&mut self, out: &mut Vec<u8>, events: &mut Vec<Event>) {
        loop {
            let frame = match self.decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => {
                    self.fail(out, events, 502, "malformedUpstream", &e.to_string());
                    return;
                }
            };
            match frame.kind {
                FrameKind::Event(_) => {
                    // Decoded into one buffer reused for every frame of the stream.
                    let mut json = std::mem::take(&mut self.payload);
                    json.clear();
                    if let Err(e) = chunk_json(&frame.payload, &mut json) {
                        let msg = format!("InvokeModel stream chunk: {e}");
                        self.fail(out, events, 502, "malformedUpstream", &msg);
                        return;
                    }
                    self.anthropic_json(&json, out, events);
                    self.payload = json;
                }
                FrameKind::Exception(kind) => {
                    let message = bedrock_response::error_message(&frame.payload);
                    self.fail(
                        out,
                        events,
                        bedrock_response::exception_status(&kind),
                        &kind,
                        &message,
                    );
                    return;
                }
                FrameKind::Error { code, message } => {
                    self.fail(
                        out,
                        events,
                        bedrock_response::exception_status(&code),
                        &code,
                        &message,
                    );
                    return;
                }
            }
            if self.ended {
                return;
            }
        }
    }

    /// One Anthropic event: re-framed as SSE for Anthropic clients, translated for
    /// OpenAI clients; usage is tracked for both.
    fn anthropic_json(&mut self, json: &[u8], out: &mut Vec<u8>, events: &mut Vec<Event>) {
        let before = events.len();
        let kind = match anthropic_event(json, &mut self.raw_usage, events) {
            Ok(kind) => kind,
            Err(e) => {
                self.fail(out, events, 502, "malformedUpstream", &e.to_string());
                return;
            }
        };
        for ev in &events[before..] {
            match ev {
                Event::Usage(u) => self.usage.update(u),
                Event::Error { .. } => {
                    self.ended = true;
                    if self.failure.is_none() {
                        self.failure = ev.error_summary();
                    }
                }
                _ => {}
            }
        }
        if self.api == ClientApi::Anthropic {
            events.truncate(before);
            // The type from the parse above: parsing the event again for it cost as much.
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(kind.as_bytes());
            out.extend_from_slice(b"\ndata: ");
            out.extend_from_slice(json);
            out.extend_from_slice(b"\n\n");
        }
    }

    fn fail(
        &mut self,
        out: &mut Vec<u8>,
        events: &mut Vec<Event>,
        status: u16,
        kind: &str,
        message: &str,
    ) {
        self.ended = true;
        let ev = Event::Error {
            status,
            kind: kind.to_owned(),
            message: message.to_owned(),
        };
        if self.failure.is_none() {
            self.failure = ev.error_summary();
        }
        if self.api == ClientApi::Anthropic {
            out.extend_from_slice(b"event: error\ndata: ");
            out.extend_from_slice(&canonical::error_body(
                ClientApi::Anthropic,
                status,
                kind,
                message,
            ));
            out.extend_from_slice(b"\n\n");
        } else {
            events.push(ev);
        }
    }

    fn stream_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<ResponseChunk> {
        let mut out = crate::canonical::sink::out_buffer(self.sink.is_some(), chunk.len());
        let mut events = std::mem::take(&mut self.events);
        if !self.ended {
            self.decoder.push(chunk);
            self.frame_events(&mut out, &mut events);
            if end_of_stream
                && !self.ended
                && let Err(e) = self.decoder.finish()
            {
                {
                    self.fail(
                        &mut out,
                        &mut events,
                        502,
                        "malformedUpstream",
                        &e.to_string(),
                    );
                }
            }
        }
        if self.api == ClientApi::OpenAI {
            let (api, id, model, created, inc) = (
                self.api,
                &self.id,
                &self.model,
                self.created,
                self.include_usage,
            );
            let sink = self.sink.as_ref();
            let emitter = self
                .emitter
                .get_or_insert_with(|| emit::StreamEmitter::to(sink, api, id, model, created, inc));
            emitter.events(&mut events, &mut out);
            if end_of_stream {
                emitter.finish(&mut out);
            }
        }
        events.clear();
        self.events = events;
        Ok(ResponseChunk {
            body: Some(Bytes::from(out)),
            usage: self.usage,
            response_model: Some(self.model.clone()),
        })
    }
}

impl Translator for InvokeTranslator {
    fn dropped_fields(&self) -> &[DroppedField] {
        &self.dropped
    }

    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        let (body, model, stream) = match self.api {
            ClientApi::Anthropic => self.anthropic_body(req.body, req.headers)?,
            ClientApi::OpenAI => {
                let mut chat = canonical::openai::parse(req.body, BACKEND)?;
                if chat.vendor.google_search.is_some() {
                    return Err(Error::untranslatable(
                        "tools",
                        BACKEND,
                        "the google_search tool is Gemini's; Claude on Bedrock has no such tool",
                    ));
                }
                if let Some(m) = &self.model_override {
                    chat.model.clone_from(m);
                }
                self.include_usage = chat.include_usage;
                self.dropped = std::mem::take(&mut chat.dropped);
                let body = messages_body(&chat, &self.version, &betas(req.headers))?;
                (body, chat.model, chat.stream)
            }
        };
        self.model = model;
        self.stream = stream;
        let path = format!(
            "/model/{}/{}",
            encode_model_id(&self.model),
            if stream {
                "invoke-with-response-stream"
            } else {
                "invoke"
            }
        );
        let mut headers = HeaderMutation::default();
        headers.set_static("content-type", "application/json");
        headers.set_static(
            "accept",
            if stream {
                "application/vnd.amazon.eventstream"
            } else {
                "application/json"
            },
        );
        headers.remove(http::HeaderName::from_static("anthropic-beta"));
        headers.remove(http::HeaderName::from_static("anthropic-version"));
        Ok(UpstreamRequest {
            method: Method::POST,
            path,
            headers,
            body: BodyChange::Replaced(Bytes::from(body.to_string())),
        })
    }

    fn response_headers(
        &mut self,
        _status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<HeaderMutation> {
        if let Some(id) = request_id(headers, "x-amzn-requestid") {
            self.id = id;
        }
        let mut m = HeaderMutation::default();
        m.set(
            header::CONTENT_TYPE,
            HeaderValue::from_static(if self.stream {
                "text/event-stream"
            } else {
                "application/json"
            }),
        );
        m.remove(header::CONTENT_LENGTH);
        Ok(m)
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<ResponseChunk> {
        if self.stream {
            return self.stream_chunk(chunk, end_of_stream);
        }
        self.buffered.extend_from_slice(chunk);
        if !end_of_stream {
            return Ok(ResponseChunk {
                body: Some(Bytes::new()),
                usage: self.usage,
                response_model: None,
            });
        }
        let resp = parse_message(&self.buffered, &self.model)?;
        self.usage = resp.usage;
        let body = match self.api {
            ClientApi::Anthropic => Bytes::from(std::mem::take(&mut self.buffered)),
            ClientApi::OpenAI => Bytes::from(emit::openai_response(
                &ChatResponse {
                    id: self.id.clone(),
                    ..resp
                },
                self.created,
            )),
        };
        Ok(ResponseChunk {
            body: Some(body),
            usage: self.usage,
            response_model: Some(self.model.clone()),
        })
    }

    fn response_error(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ErrorResponse> {
        Ok(normalize_error(self.api, status, headers, body))
    }

    fn in_band_error(&self) -> Option<String> {
        self.failure.clone()
    }
}
