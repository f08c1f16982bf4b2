//! OpenAI Responses API wire types (`POST /v1/responses`, its stream events and
//! `POST /v1/responses/input_tokens`).
//!
//! As with the Chat Completions types, every object keeps the fields this crate does not
//! model in an `extra` map (`#[serde(flatten)]`), and item, content-part and tool kinds
//! this crate does not model are kept verbatim as JSON, so a passthrough or a
//! parse/re-serialise round trip loses nothing a client sent. Hosted tools
//! (`web_search`, `file_search`, `code_interpreter`, …) and `namespace` tools share one
//! [`Tool`] struct keyed by `type`, because their fields differ per kind and the
//! gateway only needs the kind to decide a mapping.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Number, Value};

/// Fields of an object that this crate does not model, kept verbatim.
pub type Extra = Map<String, Value>;

// ---------------------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------------------

/// `POST /v1/responses` (and `POST /v1/responses/input_tokens`) request body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesRequest {
    /// The model to use.
    #[serde(default)]
    pub model: String,
    /// A string (one user message) or a list of input items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Input>,
    /// A system (developer) message placed before the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Stream the response as server-sent events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Tools the model may call: function, `namespace` and hosted tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// `"auto"`, `"none"`, `"required"` or `{"type":"function","name":…}` (or a hosted
    /// tool type), kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Whether the model may call several tools in one turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Output token limit, including reasoning tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<Number>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<Number>,
    /// Text output configuration (`format`, `verbosity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextConfig>,
    /// Reasoning configuration (`effort`, `summary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<ReasoningConfig>,
    /// Extra output to include (`reasoning.encrypted_content`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    /// Whether the provider stores the response for later retrieval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// The stored response this one continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    /// A key the provider uses to route requests to a warm prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache_key: Option<String>,
    /// Key/value metadata stored with the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Client-side metadata (Codex sends it); never sent to a model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_metadata: Option<Value>,
    /// End-user identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The `input` field: a plain string or a list of items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Input {
    /// One user message.
    Text(String),
    /// Input items.
    Items(Vec<Item>),
}

/// `text`: output configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    /// `{"type":"text"}`, `{"type":"json_object"}` or `{"type":"json_schema",…}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TextFormat>,
    /// `low`, `medium` or `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<String>,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `text.format`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextFormat {
    /// `text`, `json_object` or `json_schema`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Schema name (`json_schema`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Schema description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// Strict schema adherence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `reasoning`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReasoningConfig {
    /// `none`, `minimal`, `low`, `medium`, `high` or `xhigh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    /// `auto`, `concise`, `detailed` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Everything else (e.g. the deprecated `generate_summary`), verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A tool definition: `function`, `namespace` (a named group of tools, as Codex sends
/// its MCP tools) or a hosted tool (`web_search`, `file_search`, `code_interpreter`,
/// `image_generation`, `local_shell`, `custom`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// The tool kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// Function (or namespace) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON schema of a function's arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Strict schema adherence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    /// The tools of a `namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// Everything else (hosted tool options such as `external_web_access`), verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------------------------------
// Items (input and output)
// ---------------------------------------------------------------------------------------

/// An input or output item. Item kinds this crate does not model (hosted tool calls,
/// `item_reference`, `compaction`, …) are kept verbatim in [`Item::Other`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Item {
    /// A message (`type: "message"`, or an object with a `role` and no `type`).
    Message(MessageItem),
    /// A function call made by the model.
    FunctionCall(FunctionCallItem),
    /// The output of a function call.
    FunctionCallOutput(FunctionCallOutputItem),
    /// Reasoning the model produced (summary and encrypted content).
    Reasoning(ReasoningItem),
    /// Any other item, verbatim.
    Other(Value),
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let kind = v.get("type").and_then(Value::as_str);
        let has_role = v.get("role").is_some();
        Ok(match kind {
            Some("message") => Self::Message(serde_json::from_value(v).map_err(D::Error::custom)?),
            None if has_role => Self::Message(serde_json::from_value(v).map_err(D::Error::custom)?),
            Some("function_call") => {
                Self::FunctionCall(serde_json::from_value(v).map_err(D::Error::custom)?)
            }
            Some("function_call_output") => {
                Self::FunctionCallOutput(serde_json::from_value(v).map_err(D::Error::custom)?)
            }
            Some("reasoning") => {
                Self::Reasoning(serde_json::from_value(v).map_err(D::Error::custom)?)
            }
            Some(_) => Self::Other(v),
            None => return Err(D::Error::custom("an input item needs a `type` or a `role`")),
        })
    }
}

/// A message item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageItem {
    /// `"message"`; absent in the easy-input form.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Item id (output messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `user`, `assistant`, `system` or `developer`.
    pub role: String,
    /// Text or content parts.
    pub content: MessageContent,
    /// `in_progress`, `completed` or `incomplete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Message content: a string or a list of parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Content parts.
    Parts(Vec<ContentPart>),
}

/// A content part; unknown part types are kept verbatim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ContentPart {
    /// A part type this crate models.
    Known(KnownContentPart),
    /// Any other part, verbatim.
    Other(Value),
}

/// The content part types this crate models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum KnownContentPart {
    /// User (or developer/system) text.
    InputText {
        /// The text.
        text: String,
        /// Everything else, verbatim.
        #[serde(flatten)]
        extra: Extra,
    },
    /// Model text (assistant messages).
    OutputText {
        /// The text.
        text: String,
        /// Citations and other annotations.
        #[serde(default)]
        annotations: Vec<Value>,
        /// Everything else, verbatim.
        #[serde(flatten)]
        extra: Extra,
    },
    /// An image by URL, `data:` URL or file id.
    InputImage {
        /// URL or data URL.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image_url: Option<String>,
        /// An uploaded file's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_id: Option<String>,
        /// `low`, `high` or `auto`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        /// Everything else, verbatim.
        #[serde(flatten)]
        extra: Extra,
    },
    /// A file by inline data (`data:` URL), URL or id.
    InputFile {
        /// Inline data, a `data:` URL.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_data: Option<String>,
        /// An uploaded file's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_id: Option<String>,
        /// A URL.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_url: Option<String>,
        /// The file name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
        /// Everything else, verbatim.
        #[serde(flatten)]
        extra: Extra,
    },
    /// A refusal (assistant messages).
    Refusal {
        /// The refusal text.
        refusal: String,
        /// Everything else, verbatim.
        #[serde(flatten)]
        extra: Extra,
    },
}

/// A `function_call` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallItem {
    /// `"function_call"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Item id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The call id a `function_call_output` answers.
    pub call_id: String,
    /// The function name.
    pub name: String,
    /// The `namespace` tool the function belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Arguments, a JSON text.
    #[serde(default)]
    pub arguments: String,
    /// `in_progress`, `completed` or `incomplete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `function_call_output` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallOutputItem {
    /// `"function_call_output"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Item id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The call this answers.
    pub call_id: String,
    /// A string or a list of content parts.
    pub output: MessageContent,
    /// `in_progress`, `completed` or `incomplete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `reasoning` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasoningItem {
    /// `"reasoning"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Item id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Summary parts (`summary_text`).
    #[serde(default)]
    pub summary: Vec<SummaryPart>,
    /// Raw reasoning content parts (`reasoning_text`), where a provider returns them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Vec<SummaryPart>>,
    /// Opaque reasoning state for replay (`include: ["reasoning.encrypted_content"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_content: Option<String>,
    /// `in_progress`, `completed` or `incomplete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A reasoning summary or content part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryPart {
    /// `summary_text` or `reasoning_text`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text.
    #[serde(default)]
    pub text: String,
    /// Everything else, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------------------

/// A response object (`object: "response"`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Response id (`resp_…`).
    pub id: String,
    /// `"response"`.
    #[serde(default)]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created_at: u64,
    /// `in_progress`, `completed`, `incomplete`, `failed`, `cancelled` or `queued`.
    #[serde(default)]
    pub status: String,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// Output items.
    #[serde(default)]
    pub output: Vec<Item>,
    /// Token usage (absent until completed).
    #[serde(default)]
    pub usage: Option<ResponseUsage>,
    /// Error, when `status` is `failed`.
    #[serde(default)]
    pub error: Option<Value>,
    /// Why the response is incomplete (`{"reason":"max_output_tokens"}`).
    #[serde(default)]
    pub incomplete_details: Option<Value>,
    /// Everything else (echoed request parameters), verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Responses usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseUsage {
    /// Input tokens, cached ones included.
    #[serde(default)]
    pub input_tokens: u64,
    /// Breakdown of the input.
    #[serde(default)]
    pub input_tokens_details: InputTokensDetails,
    /// Output tokens, reasoning included.
    #[serde(default)]
    pub output_tokens: u64,
    /// Breakdown of the output.
    #[serde(default)]
    pub output_tokens_details: OutputTokensDetails,
    /// Input plus output.
    #[serde(default)]
    pub total_tokens: u64,
}

/// `usage.input_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cached_tokens: u64,
}

/// `usage.output_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    /// Output tokens spent reasoning.
    #[serde(default)]
    pub reasoning_tokens: u64,
}

impl ResponseUsage {
    /// The gateway's usage record for this usage.
    pub fn to_token_usage(&self) -> crate::TokenUsage {
        crate::TokenUsage {
            input: Some(self.input_tokens),
            output: Some(self.output_tokens),
            total: Some(self.total_tokens),
            cached_input: Some(self.input_tokens_details.cached_tokens),
            cache_creation_input: None,
            reasoning: Some(self.output_tokens_details.reasoning_tokens),
            ..crate::TokenUsage::default()
        }
    }
}

/// `POST /v1/responses/input_tokens` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputTokens {
    /// `"response.input_tokens"`.
    pub object: String,
    /// The input's token count.
    pub input_tokens: u64,
}

// ---------------------------------------------------------------------------------------
// Stream events
// ---------------------------------------------------------------------------------------

/// One server-sent event of a streamed response. The SSE `event:` name equals `type`.
///
/// Fields a known event carries beyond those modelled (OpenAI adds some, such as
/// `obfuscation` on deltas) are kept in `extra` and written back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamEvent {
    /// Position of the event in the stream, from 0.
    pub sequence_number: u64,
    /// The event.
    #[serde(flatten)]
    pub kind: EventKind,
    /// Fields not modelled, verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

impl StreamEvent {
    /// An event with no extra fields.
    pub fn new(sequence_number: u64, kind: EventKind) -> Self {
        Self {
            sequence_number,
            kind,
            extra: Extra::new(),
        }
    }
}

impl<'de> Deserialize<'de> for StreamEvent {
    /// Two flattened members cannot share one object in serde (the enum would not
    /// remove its fields from the map), so the object is read once and split: the
    /// known event takes its fields, and whatever it does not write back is extra.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut object = Map::<String, Value>::deserialize(d)?;
        let sequence_number = object
            .remove("sequence_number")
            .ok_or_else(|| D::Error::missing_field("sequence_number"))
            .and_then(|v| u64::deserialize(v).map_err(D::Error::custom))?;
        let kind =
            EventKind::deserialize(Value::Object(object.clone())).map_err(D::Error::custom)?;
        let known = serde_json::to_value(&kind).map_err(D::Error::custom)?;
        if let Value::Object(known) = known {
            object.retain(|k, _| !known.contains_key(k));
        }
        Ok(Self {
            sequence_number,
            kind,
            extra: object,
        })
    }
}

/// The stream event types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventKind {
    /// The response was created.
    #[serde(rename = "response.created")]
    Created {
        /// The response so far.
        response: Box<Response>,
    },
    /// The response is being generated.
    #[serde(rename = "response.in_progress")]
    InProgress {
        /// The response so far.
        response: Box<Response>,
    },
    /// The response completed.
    #[serde(rename = "response.completed")]
    Completed {
        /// The full response.
        response: Box<Response>,
    },
    /// The response stopped early (output token limit, content filter).
    #[serde(rename = "response.incomplete")]
    Incomplete {
        /// The response.
        response: Box<Response>,
    },
    /// The response failed.
    #[serde(rename = "response.failed")]
    Failed {
        /// The response, with `error` set.
        response: Box<Response>,
    },
    /// An output item started.
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded {
        /// Index in `output`.
        output_index: u32,
        /// The item so far.
        item: Item,
    },
    /// An output item is complete.
    #[serde(rename = "response.output_item.done")]
    OutputItemDone {
        /// Index in `output`.
        output_index: u32,
        /// The complete item.
        item: Item,
    },
    /// A content part of a message started.
    #[serde(rename = "response.content_part.added")]
    ContentPartAdded {
        /// The message item.
        item_id: String,
        /// Index in `output`.
        output_index: u32,
        /// Index in the message's `content`.
        content_index: u32,
        /// The part so far.
        part: ContentPart,
    },
    /// A content part is complete.
    #[serde(rename = "response.content_part.done")]
    ContentPartDone {
        /// The message item.
        item_id: String,
        /// Index in `output`.
        output_index: u32,
        /// Index in the message's `content`.
        content_index: u32,
        /// The complete part.
        part: ContentPart,
    },
    /// More output text.
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta {
        /// The message item.
        item_id: String,
        /// Index in `output`.
        output_index: u32,
        /// Index in the message's `content`.
        content_index: u32,
        /// The text.
        delta: String,
        /// Log probabilities (empty unless requested).
        #[serde(default)]
        logprobs: Vec<Value>,
    },
    /// The output text is complete.
    #[serde(rename = "response.output_text.done")]
    OutputTextDone {
        /// The message item.
        item_id: String,
        /// Index in `output`.
        output_index: u32,
        /// Index in the message's `content`.
        content_index: u32,
        /// The whole text.
        text: String,
        /// Log probabilities (empty unless requested).
        #[serde(default)]
        logprobs: Vec<Value>,
    },
    /// More function-call arguments.
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta {
        /// The function-call item.
        item_id: String,
        /// Index in `output`.
        output_index: u32,
        /// Partial JSON.
        delta: String,
    },
    /// The function-call arguments are complete.
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone {
        /// The function-call item.
        item_id: String,
        /// Index in `output`.
        output_index: u32,
        /// The whole JSON text.
        arguments: String,
    },
    /// A reasoning summary part started.
    #[serde(rename = "response.reasoning_summary_part.added")]
    ReasoningSummaryPartAdded {
        /// The reasoning item.
        item_id: String,
        /// Index in `output`.
        output_index: u32,
        /// Index in the item's `summary`.
        summary_index: u32,
        /// The part so far.
        part: SummaryPart,
    },
    /// A reasoning summary part is complete.
    #[serde(rename = "response.reasoning_summary_part.done")]
    ReasoningSummaryPartDone {
        /// The reasoning item.
        item_id: String,
        /// Index in `output`.
        output_index: u32,
        /// Index in the item's `summary`.
        summary_index: u32,
        /// The complete part.
        part: SummaryPart,
    },
    /// More reasoning summary text.
    #[serde(rename = "response.reasoning_summary_text.delta")]
    ReasoningSummaryTextDelta {
        /// The reasoning item.
        item_id: String,
        /// Index in `output`.
        output_index: u32,
        /// Index in the item's `summary`.
        summary_index: u32,
        /// The text.
        delta: String,
    },
    /// The reasoning summary text is complete.
    #[serde(rename = "response.reasoning_summary_text.done")]
    ReasoningSummaryTextDone {
        /// The reasoning item.
        item_id: String,
        /// Index in `output`.
        output_index: u32,
        /// Index in the item's `summary`.
        summary_index: u32,
        /// The whole text.
        text: String,
    },
    /// A stream-level error.
    #[serde(rename = "error")]
    Error {
        /// Error code.
        #[serde(default)]
        code: Option<String>,
        /// Message.
        message: String,
        /// The request field at fault.
        #[serde(default)]
        param: Option<String>,
    },
}

impl EventKind {
    /// The event's `type` (and SSE `event:` name).
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Created { .. } => "response.created",
            Self::InProgress { .. } => "response.in_progress",
            Self::Completed { .. } => "response.completed",
            Self::Incomplete { .. } => "response.incomplete",
            Self::Failed { .. } => "response.failed",
            Self::OutputItemAdded { .. } => "response.output_item.added",
            Self::OutputItemDone { .. } => "response.output_item.done",
            Self::ContentPartAdded { .. } => "response.content_part.added",
            Self::ContentPartDone { .. } => "response.content_part.done",
            Self::OutputTextDelta { .. } => "response.output_text.delta",
            Self::OutputTextDone { .. } => "response.output_text.done",
            Self::FunctionCallArgumentsDelta { .. } => "response.function_call_arguments.delta",
            Self::FunctionCallArgumentsDone { .. } => "response.function_call_arguments.done",
            Self::ReasoningSummaryPartAdded { .. } => "response.reasoning_summary_part.added",
            Self::ReasoningSummaryPartDone { .. } => "response.reasoning_summary_part.done",
            Self::ReasoningSummaryTextDelta { .. } => "response.reasoning_summary_text.delta",
            Self::ReasoningSummaryTextDone { .. } => "response.reasoning_summary_text.done",
            Self::Error { .. } => "error",
        }
    }
}

/// A stream event as received: a known event, or any other event verbatim (OpenAI adds
/// event types for hosted tools; a passthrough forwards them untouched).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
// Events are decoded one at a time and dropped; boxing would cost an allocation per
// event for no memory saved.
#[allow(clippy::large_enum_variant)]
pub enum AnyStreamEvent {
    /// An event this crate models.
    Known(StreamEvent),
    /// Any other event, verbatim.
    Other(Value),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_unknown_fields_and_items() {
        let body = serde_json::json!({
            "model": "gpt-5",
            "instructions": "be brief",
            "input": [
                {"role": "developer", "content": "rules"},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "hi"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "auto"},
                    {"type": "input_file", "file_data": "data:application/pdf;base64,AA", "filename": "a.pdf"},
                    {"type": "input_audio", "input_audio": {}}
                ]},
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "t"}], "encrypted_content": "sig"},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}", "namespace": "mcp"},
                {"type": "function_call_output", "call_id": "c1", "output": "ok"},
                {"type": "item_reference", "id": "x"}
            ],
            "tools": [
                {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": false},
                {"type": "namespace", "name": "mcp", "tools": [{"type": "function", "name": "g"}]},
                {"type": "web_search", "external_web_access": false}
            ],
            "tool_choice": "auto",
            "parallel_tool_calls": false,
            "reasoning": {"effort": "high", "summary": "auto"},
            "text": {"format": {"type": "json_schema", "name": "s", "schema": {}}, "verbosity": "low"},
            "include": ["reasoning.encrypted_content"],
            "store": false,
            "prompt_cache_key": "k",
            "client_metadata": {"a": 1},
            "service_tier": "flex"
        });
        let r: ResponsesRequest = serde_json::from_value(body.clone()).unwrap();
        assert!(matches!(&r.input, Some(Input::Items(i)) if matches!(i[5], Item::Other(_))));
        assert_eq!(r.extra.get("service_tier"), Some(&Value::from("flex")));
        assert_eq!(serde_json::to_value(&r).unwrap(), body);
    }

    #[test]
    fn events_carry_type_and_sequence_number() {
        let e = StreamEvent::new(
            3,
            EventKind::OutputTextDelta {
                item_id: "msg_1".into(),
                output_index: 0,
                content_index: 0,
                delta: "hi".into(),
                logprobs: vec![],
            },
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "response.output_text.delta");
        assert_eq!(v["sequence_number"], 3);
        let back: AnyStreamEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, AnyStreamEvent::Known(e));
        let other: AnyStreamEvent = serde_json::from_str(
            r#"{"type":"response.web_search_call.searching","sequence_number":1}"#,
        )
        .unwrap();
        assert!(matches!(other, AnyStreamEvent::Other(_)));
    }

    #[test]
    fn known_events_keep_unknown_fields() {
        let wire = serde_json::json!({
            "type": "response.output_text.delta", "sequence_number": 4, "item_id": "m",
            "output_index": 0, "content_index": 0, "delta": "hi", "logprobs": [],
            "obfuscation": "x1y2", "future": {"a": [1]}
        });
        let e: StreamEvent = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(e.extra.len(), 2, "{:?}", e.extra);
        assert_eq!(e.extra["obfuscation"], "x1y2");
        assert_eq!(serde_json::to_value(&e).unwrap(), wire);
        let any: AnyStreamEvent = serde_json::from_value(wire.clone()).unwrap();
        assert!(matches!(any, AnyStreamEvent::Known(ref k) if k.extra.contains_key("future")));
        assert_eq!(serde_json::to_value(&any).unwrap(), wire);
    }
}
