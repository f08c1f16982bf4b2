//! A neutral chat model between the two client APIs (OpenAI Chat Completions, Anthropic
//! Messages) and the backends whose wire format is neither (Bedrock Converse, Gemini).
//!
//! Each client API is parsed into [`ChatRequest`] once ([`openai`], [`anthropic`]
//! modules) and each backend writes its body from it; on the way back each backend
//! produces a [`ChatResponse`] or a sequence of [`Event`]s and one emitter per client API
//! renders them ([`emit`]). That makes the matrix 2 + 2 converters per direction rather
//! than 2 × 2, and keeps every lossy decision in one place.
//!
//! The client-side parse types here are borrowed and lean (no `flatten`, schemas kept as
//! raw JSON) because this is the hot path of every Bedrock and Gemini request.

pub mod anthropic;
pub mod embeddings;
pub mod emit;
pub mod media;
pub mod openai;
pub mod sink;

use aigw_core::{ClientApi, Error, Result, TokenUsage};
use serde_json::value::RawValue;

/// Who is talking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The user (and tool results).
    User,
    /// The model.
    Assistant,
}

/// One content block of a message or of the system prompt.
#[derive(Debug, Clone)]
pub enum Block {
    /// Plain text.
    Text {
        /// The text.
        text: String,
        /// A prompt-cache breakpoint follows this block (`cache_control`).
        cache: bool,
    },
    /// An inline (base64) image.
    Image {
        /// MIME type, e.g. `image/png`.
        media_type: String,
        /// Base64 data, as received.
        data: String,
        /// A prompt-cache breakpoint follows this block.
        cache: bool,
    },
    /// An inline (base64) document, such as a PDF a tool read.
    Document {
        /// MIME type, e.g. `application/pdf`.
        media_type: String,
        /// Base64 data, as received.
        data: String,
        /// A prompt-cache breakpoint follows this block.
        cache: bool,
    },
    /// An image by URL (not a data URL); backends that need bytes reject it.
    ImageUrl {
        /// The URL.
        url: String,
        /// The request field it came from, for the error message.
        field: String,
    },
    /// A tool call made by the assistant.
    ToolUse {
        /// The call id.
        id: String,
        /// The tool name.
        name: String,
        /// The arguments, a JSON object.
        input: Box<RawValue>,
    },
    /// The result of a tool call.
    ToolResult {
        /// The id of the call this answers.
        id: String,
        /// The result content (text, JSON as text, images).
        content: Vec<Block>,
        /// The tool failed.
        is_error: bool,
        /// A prompt-cache breakpoint follows this block.
        cache: bool,
    },
    /// Reasoning the model produced, replayed in multi-turn conversations.
    Thinking {
        /// The reasoning text.
        text: String,
        /// The provider's signature over it, replayed intact.
        signature: Option<String>,
    },
    /// Encrypted reasoning, replayed intact.
    RedactedThinking {
        /// The opaque data.
        data: String,
    },
}

/// One turn.
#[derive(Debug, Clone)]
pub struct Message {
    /// The speaker.
    pub role: Role,
    /// The content blocks.
    pub content: Vec<Block>,
}

/// A function tool the model may call.
#[derive(Debug, Clone)]
pub struct Tool {
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// JSON schema of the arguments.
    pub parameters: Option<Box<RawValue>>,
    /// A prompt-cache breakpoint follows this tool definition.
    pub cache: bool,
}

/// How the model must use tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// The model must call some tool.
    Any,
    /// The model must not call tools.
    None,
    /// The model must call this tool.
    Tool(String),
}

/// Requested reasoning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reasoning {
    /// OpenAI-style effort level (`minimal`, `low`, `medium`, `high`).
    Effort(String),
    /// An explicit thinking budget in tokens.
    Budget(u64),
    /// Reasoning explicitly off.
    Disabled,
    /// The model decides how much to think (Anthropic `thinking: adaptive`), with the
    /// client's effort level when it sent one.
    Adaptive(Option<String>),
}

impl Reasoning {
    /// The thinking budget in tokens this request stands for. Efforts map onto the
    /// budgets Anthropic documents as sensible steps (1024 is its minimum).
    pub fn budget_tokens(&self) -> Option<u64> {
        match self {
            Self::Budget(b) => Some(*b),
            Self::Effort(e) => Some(match e.as_str() {
                "minimal" | "low" => 1024,
                "medium" => 4096,
                _ => 16384,
            }),
            Self::Disabled => None,
            Self::Adaptive(effort) => {
                Self::Effort(effort.clone().unwrap_or_else(|| "medium".into())).budget_tokens()
            }
        }
    }

    /// The effort level this request stands for (`low`, `medium`, `high`, or the
    /// client's `xhigh`/`max`), for backends whose reasoning control is a level.
    pub fn effort(&self) -> Option<&str> {
        match self {
            Self::Effort(e) => Some(e),
            Self::Adaptive(e) => Some(e.as_deref().unwrap_or("medium")),
            Self::Budget(b) if *b <= 2048 => Some("low"),
            Self::Budget(b) if *b <= 8192 => Some("medium"),
            Self::Budget(_) => Some("high"),
            Self::Disabled => None,
        }
    }
}

/// Requested output format.
#[derive(Debug, Clone)]
pub enum ResponseFormat {
    /// Any JSON object.
    JsonObject,
    /// JSON matching a schema.
    JsonSchema {
        /// Schema name.
        name: String,
        /// Description.
        description: Option<String>,
        /// The schema.
        schema: Box<RawValue>,
    },
}

/// A chat request in the neutral model.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    /// The model as sent upstream (after any override).
    pub model: String,
    /// System prompt blocks (text only).
    pub system: Vec<Block>,
    /// Conversation, roles alternating, consecutive same-role turns merged.
    pub messages: Vec<Message>,
    /// Tools.
    pub tools: Vec<Tool>,
    /// Tool choice.
    pub tool_choice: Option<ToolChoice>,
    /// `false` when the client forbade parallel tool calls.
    pub parallel_tool_calls: Option<bool>,
    /// Maximum output tokens.
    pub max_tokens: Option<u64>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Top-k sampling.
    pub top_k: Option<u64>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Number of choices.
    pub n: Option<u32>,
    /// Presence penalty (OpenAI).
    pub presence_penalty: Option<f64>,
    /// Frequency penalty (OpenAI).
    pub frequency_penalty: Option<f64>,
    /// Seed (OpenAI).
    pub seed: Option<i64>,
    /// Streamed response.
    pub stream: bool,
    /// The client asked for usage in the stream.
    pub include_usage: bool,
    /// Reasoning.
    pub reasoning: Option<Reasoning>,
    /// Output format.
    pub response_format: Option<ResponseFormat>,
    /// Vendor extension fields of the client request, passed through by the backends
    /// that accept them and ignored by the others.
    pub vendor: VendorFields,
    /// Anthropic betas the backend honours in the body (Converse: Claude's
    /// `interleaved-thinking`), taken from the client's `anthropic-beta` header.
    pub anthropic_betas: Vec<String>,
    /// Anthropic `thinking.display`: `Some(true)` for `omitted` (the client does not
    /// want the thinking text), `Some(false)` for another value. Backends with a switch
    /// for returning thoughts honour it; the others report it dropped
    /// ([`ChatRequest::drop_thinking_display`]).
    pub thinking_omitted: Option<bool>,
    /// The client sent an end-user id (Anthropic `metadata.user_id`).
    pub user_id: bool,
    /// Client fields the backend has no equivalent for and that cannot change the
    /// answer; the translator reports them to the exchange, which logs and counts them.
    pub dropped: Vec<aigw_core::DroppedField>,
}

/// Vendor-specific top-level fields accepted on an OpenAI chat request (the upstream
/// gateway's extension fields), kept as raw JSON because they are copied verbatim.
#[derive(Debug, Clone, Default)]
pub struct VendorFields {
    /// Gemini `safetySettings`.
    pub safety_settings: Option<Box<RawValue>>,
    /// Gemini `cachedContent` (a cached-content resource name).
    pub cached_content: Option<Box<RawValue>>,
    /// Gemini (Vertex AI) `labels`.
    pub labels: Option<Box<RawValue>>,
    /// Gemini `generationConfig` fields the request has no OpenAI counterpart for
    /// (`thinkingConfig`, `responseModalities`, `mediaResolution`, …); a JSON object.
    pub generation_config: Option<Box<RawValue>>,
    /// The Gemini Google Search grounding tool (its config object, `{}` when bare).
    pub google_search: Option<Box<RawValue>>,
    /// Bedrock Converse `additionalModelRequestFields` (a JSON object).
    pub additional_model_request_fields: Option<Box<RawValue>>,
    /// Bedrock Converse `guardrailConfig`.
    pub guardrail_config: Option<Box<RawValue>>,
    /// Bedrock Converse `performanceConfig`.
    pub performance_config: Option<Box<RawValue>>,
    /// Bedrock Converse `promptVariables`.
    pub prompt_variables: Option<Box<RawValue>>,
}

impl ChatRequest {
    /// Appends a message, merging it into the previous one when the role repeats
    /// (Converse and Gemini require alternating turns; OpenAI's consecutive tool
    /// messages become one user turn with several tool results).
    pub fn push(&mut self, role: Role, content: Vec<Block>) {
        if content.is_empty() {
            return;
        }
        match self.messages.last_mut() {
            Some(last) if last.role == role => last.content.extend(content),
            _ => self.messages.push(Message { role, content }),
        }
    }

    /// Leaves out the thinking of all but the last `keep` assistant turns that have any
    /// (Anthropic's `clear_thinking` context edit, applied for backends without it).
    pub fn clear_thinking(&mut self, keep: usize) {
        let is_thinking =
            |b: &Block| matches!(b, Block::Thinking { .. } | Block::RedactedThinking { .. });
        let mut seen = 0;
        for m in self.messages.iter_mut().rev() {
            if m.role != Role::Assistant || !m.content.iter().any(is_thinking) {
                continue;
            }
            seen += 1;
            if seen > keep {
                m.content.retain(|b| !is_thinking(b));
            }
        }
    }

    /// Reports `thinking.display` dropped, for backends without a switch for it.
    pub fn drop_thinking_display(&mut self) {
        if self.thinking_omitted.is_some() {
            self.dropped
                .push(crate::anthropic::fields::DROP_THINKING_DISPLAY);
        }
    }

    /// Whether any system block, message block or tool carries a cache breakpoint.
    pub fn has_cache_hints(&self) -> bool {
        let cached = |b: &Block| match b {
            Block::Text { cache, .. }
            | Block::Image { cache, .. }
            | Block::Document { cache, .. } => *cache,
            Block::ToolResult { cache, .. } => *cache,
            _ => false,
        };
        self.system.iter().any(cached)
            || self.tools.iter().any(|t| t.cache)
            || self.messages.iter().any(|m| m.content.iter().any(cached))
    }

    /// Whether any message carries tool calls or results.
    pub fn has_tool_history(&self) -> bool {
        self.messages.iter().any(|m| {
            m.content
                .iter()
                .any(|b| matches!(b, Block::ToolUse { .. } | Block::ToolResult { .. }))
        })
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Natural end.
    EndTurn,
    /// Output token limit.
    MaxTokens,
    /// A stop sequence matched.
    StopSequence(Option<String>),
    /// The model called tools.
    ToolUse,
    /// Safety or guardrail filtering.
    ContentFilter,
    /// The context window is full.
    ContextWindow,
}

impl StopReason {
    /// OpenAI `finish_reason`.
    pub fn openai(&self) -> &'static str {
        match self {
            Self::EndTurn | Self::StopSequence(_) => "stop",
            Self::MaxTokens | Self::ContextWindow => "length",
            Self::ToolUse => "tool_calls",
            Self::ContentFilter => "content_filter",
        }
    }

    /// Anthropic `stop_reason`.
    pub fn anthropic(&self) -> &'static str {
        match self {
            Self::EndTurn => "end_turn",
            Self::StopSequence(_) => "stop_sequence",
            Self::MaxTokens => "max_tokens",
            Self::ContextWindow => "model_context_window_exceeded",
            Self::ToolUse => "tool_use",
            Self::ContentFilter => "refusal",
        }
    }
}

/// One block of a complete response.
#[derive(Debug, Clone, PartialEq)]
pub enum OutBlock {
    /// Text.
    Text(String),
    /// Reasoning with its signature.
    Thinking {
        /// Reasoning text.
        text: String,
        /// Signature.
        signature: Option<String>,
    },
    /// Encrypted reasoning.
    RedactedThinking(String),
    /// A tool call.
    ToolUse {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments as JSON text.
        input: String,
    },
}

/// A complete (non-streamed) response in the neutral model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatResponse {
    /// Response id, without client-API prefix.
    pub id: String,
    /// The model that answered.
    pub model: String,
    /// Content per choice (one entry unless `n > 1` on a backend that supports it).
    pub choices: Vec<Choice>,
    /// Usage.
    pub usage: TokenUsage,
}

/// One choice of a response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Choice {
    /// Content blocks.
    pub content: Vec<OutBlock>,
    /// Why it stopped.
    pub stop: Option<StopReason>,
}

/// A stream event in the neutral model. Block indices are the backend's; emitters
/// renumber as their client API requires.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The response started.
    Start,
    /// Text for block `index`.
    TextDelta {
        /// Backend block index.
        index: u32,
        /// Text.
        text: String,
    },
    /// Reasoning text for block `index`.
    ThinkingDelta {
        /// Backend block index.
        index: u32,
        /// Text.
        text: String,
    },
    /// Reasoning signature for block `index`.
    SignatureDelta {
        /// Backend block index.
        index: u32,
        /// Signature.
        signature: String,
    },
    /// Encrypted reasoning for block `index`.
    RedactedThinking {
        /// Backend block index.
        index: u32,
        /// Data.
        data: String,
    },
    /// A tool call begins at block `index`.
    ToolStart {
        /// Backend block index.
        index: u32,
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
    },
    /// A piece of a tool call's JSON arguments.
    ToolDelta {
        /// Backend block index.
        index: u32,
        /// Partial JSON.
        json: String,
    },
    /// Block `index` is complete.
    BlockStop {
        /// Backend block index.
        index: u32,
    },
    /// Generation stopped.
    Stop(StopReason),
    /// Cumulative usage.
    Usage(TokenUsage),
    /// The upstream failed mid-stream.
    Error {
        /// HTTP status the error stands for.
        status: u16,
        /// Provider error type (e.g. `throttlingException`).
        kind: String,
        /// Message.
        message: String,
    },
}

impl Event {
    /// For an [`Event::Error`], the one-line summary an exchange records as the
    /// request's in-band failure (`status kind: message`).
    pub fn error_summary(&self) -> Option<String> {
        match self {
            Self::Error {
                status,
                kind,
                message,
            } => Some(format!("{status} {kind}: {message}")),
            _ => None,
        }
    }
}

/// Renders an upstream error in the client API's envelope.
pub fn error_body(api: ClientApi, status: u16, provider_type: &str, message: &str) -> Vec<u8> {
    error_value(api, status, provider_type, message)
        .to_string()
        .into_bytes()
}

/// An upstream error in the client API's envelope, as a JSON tree ([`error_body`]'s).
pub fn error_value(
    api: ClientApi,
    status: u16,
    provider_type: &str,
    message: &str,
) -> serde_json::Value {
    let status_code = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    match api {
        ClientApi::OpenAI => serde_json::json!({
            "error": {
                "message": message,
                "type": aigw_core::error::openai_error_type(status_code),
                "param": null,
                "code": if provider_type.is_empty() { serde_json::Value::Null } else { provider_type.into() },
            }
        }),
        ClientApi::Anthropic => serde_json::json!({
            "type": "error",
            "error": {
                "type": aigw_core::error::anthropic_error_type(status_code),
                "message": message,
            }
        }),
    }
}

/// Parses a JSON string field that must hold a JSON value (OpenAI tool-call arguments).
pub(crate) fn raw_json(text: &str, field: impl FnOnce() -> String) -> Result<Box<RawValue>> {
    let text = if text.trim().is_empty() { "{}" } else { text };
    RawValue::from_string(text.to_owned())
        .map_err(|e| Error::bad_request(format!("{} is not valid JSON: {e}", field())))
}

/// Splits a `data:` URL into media type and base64 payload.
pub(crate) fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media = meta.strip_suffix(";base64")?;
    Some((media, data))
}

/// A JSON value that is either a string or an array of `T`, deserialised without
/// buffering (serde's untagged enums buffer, which breaks borrowed and raw values).
#[derive(Debug)]
pub(crate) enum TextOr<'a, T> {
    /// A plain string.
    Text(std::borrow::Cow<'a, str>),
    /// An array.
    List(Vec<T>),
}

impl<'de: 'a, 'a, T: serde::Deserialize<'de>> serde::Deserialize<'de> for TextOr<'a, T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use std::borrow::Cow;
        use std::marker::PhantomData;
        struct V<'a, T>(PhantomData<(&'a (), T)>);
        impl<'de: 'a, 'a, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for V<'a, T> {
            type Value = TextOr<'a, T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(TextOr::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(
                self,
                v: &str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(TextOr::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(
                self,
                v: String,
            ) -> std::result::Result<Self::Value, E> {
                Ok(TextOr::Text(Cow::Owned(v)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(64));
                while let Some(x) = seq.next_element()? {
                    out.push(x);
                }
                Ok(TextOr::List(out))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_url() {
        assert_eq!(
            parse_data_url("data:image/png;base64,AAAA"),
            Some(("image/png", "AAAA"))
        );
        assert_eq!(parse_data_url("https://x/y.png"), None);
        assert_eq!(parse_data_url("data:image/png,AAAA"), None);
    }

    #[test]
    fn push_merges_same_role() {
        let mut r = ChatRequest::default();
        let t = |s: &str| Block::Text {
            text: s.into(),
            cache: false,
        };
        r.push(Role::User, vec![t("a")]);
        r.push(Role::User, vec![t("b")]);
        r.push(Role::Assistant, vec![t("c")]);
        assert_eq!(r.messages.len(), 2);
        assert_eq!(r.messages[0].content.len(), 2);
    }
}
