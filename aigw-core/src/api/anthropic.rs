//! Anthropic Messages wire types (Messages, streaming events, count_tokens, models).
//!
//! As with the OpenAI types, every object keeps fields this crate does not model in an
//! `extra` map, and block or event types it does not model are kept verbatim as
//! [`serde_json::Value`], so new Anthropic features survive a parse and re-serialise.
//! Known optional fields are skipped when absent; an explicit `null` reads as absent.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

/// Fields of an object that this crate does not model, kept verbatim.
pub type Extra = Map<String, Value>;

/// The `anthropic-version` sent when a client sends none.
pub const DEFAULT_VERSION: &str = "2023-06-01";

// ---------------------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------------------

/// `POST /v1/messages` request body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// The model. Absent in the Bedrock/Vertex bodies, which carry it in the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Output token limit (required by the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// System prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPrompt>,
    /// `{"user_id": …}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Custom stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Stream the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Sampling temperature (0–1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<Number>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<Number>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    /// Tools (client tools with `input_schema`, or typed server tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// How the model uses tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Extended thinking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    /// `anthropic_version`, in the Bedrock and Vertex bodies only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic_version: Option<String>,
    /// `anthropic_beta`, in the Bedrock body only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic_beta: Option<Vec<String>>,
    /// Everything else (`service_tier`, `container`, `output_format`, …), verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The system prompt: a string or text blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SystemPrompt {
    /// Plain text.
    Text(String),
    /// Text blocks (which may carry `cache_control`).
    Blocks(Vec<ContentBlock>),
}

/// Message author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user (also carries tool results).
    User,
    /// The model.
    Assistant,
    /// Instructions in the middle of the conversation, with the authority of the
    /// top-level `system` prompt (beta `mid-conversation-system-2026-04-07`; text only).
    System,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Text or content blocks.
    pub content: MessageContent,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Message content: a string or blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Content blocks.
    Blocks(Vec<ContentBlock>),
}

/// A content block; unknown block types are kept verbatim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// The known variant is the common case; boxing it would cost an allocation per item.
#[allow(clippy::large_enum_variant)]
#[serde(untagged)]
pub enum ContentBlock {
    /// A block type this crate models.
    Known(KnownBlock),
    /// Any other block (documents, server tool results, …), verbatim.
    Other(Value),
}

impl From<KnownBlock> for ContentBlock {
    fn from(b: KnownBlock) -> Self {
        Self::Known(b)
    }
}

/// The content block types this crate models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum KnownBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// Prompt-cache breakpoint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
        /// Everything else (`citations`, …), verbatim.
        #[serde(flatten)]
        extra: Extra,
    },
    /// An image.
    Image {
        /// Where the image comes from.
        source: ImageSource,
        /// Prompt-cache breakpoint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
        /// Everything else, verbatim.
        #[serde(flatten)]
        extra: Extra,
    },
    /// A client tool call by the model.
    ToolUse {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments object.
        input: Value,
        /// Prompt-cache breakpoint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
        /// Everything else, verbatim.
        #[serde(flatten)]
        extra: Extra,
    },
    /// The result of a client tool call.
    ToolResult {
        /// The call it answers.
        tool_use_id: String,
        /// Result text or blocks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<MessageContent>,
        /// Whether the tool failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        /// Prompt-cache breakpoint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
        /// Everything else, verbatim.
        #[serde(flatten)]
        extra: Extra,
    },
    /// Extended-thinking text with its signature.
    Thinking {
        /// The reasoning text.
        thinking: String,
        /// Signature that must be replayed intact.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
        /// Everything else, verbatim.
        #[serde(flatten)]
        extra: Extra,
    },
    /// Encrypted thinking.
    RedactedThinking {
        /// Opaque data that must be replayed intact.
        data: String,
        /// Everything else, verbatim.
        #[serde(flatten)]
        extra: Extra,
    },
}

/// An image source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageSource {
    /// `base64`, `url` or `file`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For `base64`: `image/png`, `image/jpeg`, `image/gif`, `image/webp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// For `base64`: the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// For `url`: the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Everything else (`file_id`, …), verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A tool definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Tool name.
    pub name: String,
    /// Server tool type (e.g. `web_search_20250305`); absent or `custom` for client tools.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the input (client tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// Prompt-cache breakpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolChoice {
    /// `auto`, `any`, `tool` or `none`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For `tool`: which one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// At most one tool call per turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_parallel_tool_use: Option<bool>,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `thinking`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thinking {
    /// `enabled`, `disabled` or `adaptive`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For `enabled`: the token budget (≥ 1024, < `max_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u64>,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------------------

/// A Messages response (also the `message` of `message_start`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessagesResponse {
    /// Message id.
    pub id: String,
    /// `message`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `assistant`.
    pub role: String,
    /// The model that answered.
    pub model: String,
    /// Content blocks.
    pub content: Vec<ContentBlock>,
    /// `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`, `pause_turn`, `refusal`.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// The stop sequence that matched.
    #[serde(default)]
    pub stop_sequence: Option<String>,
    /// Token usage.
    #[serde(default)]
    pub usage: Usage,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Anthropic token usage. `input_tokens` excludes cache reads and writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Uncached input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Tokens written to the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Tokens read from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// Everything else (`cache_creation`, `server_tool_use`, `service_tier`), verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Usage {
    /// The gateway's usage counters (input includes cache reads and writes).
    pub fn to_token_usage(&self) -> crate::TokenUsage {
        crate::TokenUsage::from_explicit_caching(
            self.input_tokens,
            self.cache_read_input_tokens,
            self.cache_creation_input_tokens,
            self.output_tokens,
        )
    }
}

// ---------------------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------------------

/// A streaming event; unknown event types are kept verbatim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// The known variant is the common case; boxing it would cost an allocation per item.
#[allow(clippy::large_enum_variant)]
#[serde(untagged)]
pub enum StreamEvent {
    /// An event type this crate models.
    Known(KnownStreamEvent),
    /// Any other event, verbatim.
    Other(Value),
}

/// The streaming event types this crate models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum KnownStreamEvent {
    /// The message shell with empty content and initial usage.
    MessageStart {
        /// The message so far.
        message: MessagesResponse,
    },
    /// A block begins.
    ContentBlockStart {
        /// Block index.
        index: u32,
        /// The block, with empty text/input.
        content_block: ContentBlock,
    },
    /// A block grows.
    ContentBlockDelta {
        /// Block index.
        index: u32,
        /// What to append.
        delta: BlockDelta,
    },
    /// A block ends.
    ContentBlockStop {
        /// Block index.
        index: u32,
    },
    /// Top-level message changes (stop reason) and cumulative usage.
    MessageDelta {
        /// Stop reason and sequence.
        delta: MessageDeltaBody,
        /// Cumulative usage.
        #[serde(default)]
        usage: Usage,
    },
    /// The stream ends.
    MessageStop {},
    /// Keep-alive.
    Ping {},
    /// An error in the middle of a stream.
    Error {
        /// The error.
        error: ErrorDetail,
    },
}

/// The delta of a `content_block_delta`; unknown delta types are kept verbatim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BlockDelta {
    /// A delta type this crate models.
    Known(KnownBlockDelta),
    /// Any other delta (`citations_delta`, …), verbatim.
    Other(Value),
}

/// The delta types this crate models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum KnownBlockDelta {
    /// Text to append.
    TextDelta {
        /// The text.
        text: String,
    },
    /// A fragment of a tool call's JSON input.
    InputJsonDelta {
        /// The fragment.
        partial_json: String,
    },
    /// Thinking text to append.
    ThinkingDelta {
        /// The text.
        thinking: String,
    },
    /// The thinking block's signature.
    SignatureDelta {
        /// The signature.
        signature: String,
    },
}

/// The `delta` of a `message_delta` event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageDeltaBody {
    /// Why the model stopped.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// The stop sequence that matched.
    #[serde(default)]
    pub stop_sequence: Option<String>,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------------------------------
// Errors, count_tokens, models
// ---------------------------------------------------------------------------------------

/// `{"type":"error","error":{…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// `error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error.
    pub error: ErrorDetail,
    /// Everything else (`request_id`), verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// `invalid_request_error`, `overloaded_error`, ….
    #[serde(rename = "type")]
    pub kind: String,
    /// Human-readable message.
    pub message: String,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /v1/messages/count_tokens` request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountTokensRequest {
    /// The model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// System prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPrompt>,
    /// Tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// Tool choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Thinking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `count_tokens` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountTokensResponse {
    /// Input tokens the request would use.
    pub input_tokens: u64,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `GET /v1/models` response in Anthropic's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    /// The models.
    pub data: Vec<ModelInfo>,
    /// Whether there are more pages.
    pub has_more: bool,
    /// First id of the page.
    #[serde(default)]
    pub first_id: Option<String>,
    /// Last id of the page.
    #[serde(default)]
    pub last_id: Option<String>,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ModelList {
    /// A single-page list with `first_id`/`last_id` filled in.
    pub fn new(data: Vec<ModelInfo>) -> Self {
        Self {
            first_id: data.first().map(|m| m.id.clone()),
            last_id: data.last().map(|m| m.id.clone()),
            data,
            has_more: false,
            extra: Extra::new(),
        }
    }
}

/// One model of the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Model id.
    pub id: String,
    /// `model`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Display name.
    pub display_name: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}
