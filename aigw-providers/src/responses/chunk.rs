//! The chat chunks a Responses stream is rendered from, parsed borrowed.
//!
//! [`ResponsesOverChat`](super::translator::ResponsesOverChat) reads back every chunk the
//! backend's chat translator wrote (for the backends that cannot hand over their neutral
//! events, see [`super::events`], which builds these types directly). Parsing them as
//! [`ChatCompletionChunk`](aigw_core::api::openai::ChatCompletionChunk), whose
//! `#[serde(flatten)]` extras make serde buffer every field into an intermediate tree,
//! was half the per-event cost of a translated Responses stream. These types read only
//! what the Responses emitter uses, borrowing strings where they have no escapes, and
//! require and type-check the same fields that type does, so the same chunks are
//! accepted and rejected.

use aigw_core::api::openai::{Role, Usage};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use std::borrow::Cow;

mod scan;
pub use scan::Head;

/// Reads one chunk's JSON: with the scanner, or with serde when the scanner leaves it
/// (so errors are serde's).
pub fn parse(data: &str) -> serde_json::Result<Chunk<'_>> {
    scan::chunk(data).map_or_else(|| serde_json::from_str(data), Ok)
}

/// [`parse`] for the chunks of one stream in order, reusing the reading of the members
/// a chunk repeats from the one before (see [`Head`]).
pub fn parse_after<'a>(data: &'a str, head: &mut Head) -> serde_json::Result<Chunk<'a>> {
    scan::chunk_after(data, head).map_or_else(|| serde_json::from_str(data), Ok)
}

/// One `chat.completion.chunk`.
// Fields read only to be required and type-checked are never used afterwards.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
pub struct Chunk<'a> {
    /// Completion id.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// `chat.completion.chunk` (required, otherwise unused).
    #[serde(borrow)]
    object: Cow<'a, str>,
    /// Unix seconds.
    pub created: u64,
    /// The model that answers.
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    /// Choice deltas.
    #[serde(borrow)]
    pub choices: Vec<Choice<'a>>,
    /// Usage, on the final chunk.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// Backend configuration fingerprint (type-checked, unused).
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    system_fingerprint: Option<Cow<'a, str>>,
}

/// A choice delta.
// Fields read only to be required and type-checked are never used afterwards.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
pub struct Choice<'a> {
    /// Choice index.
    pub index: u32,
    /// What this chunk adds.
    #[serde(borrow)]
    pub delta: Delta<'a>,
    /// Set on the last delta of the choice.
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    pub finish_reason: Option<Cow<'a, str>>,
    /// Log probabilities (unused).
    #[serde(default)]
    logprobs: Option<IgnoredAny>,
}

/// What a chunk adds to a choice.
// Fields read only to be required and type-checked are never used afterwards.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
pub struct Delta<'a> {
    /// The author (type-checked, unused).
    #[serde(default)]
    role: Option<Role>,
    /// Text.
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    pub content: Option<Cow<'a, str>>,
    /// Reasoning text.
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    pub reasoning_content: Option<Cow<'a, str>>,
    /// Reasoning signature.
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    pub reasoning_signature: Option<Cow<'a, str>>,
    /// Encrypted reasoning (any JSON, as the flattened extras held it).
    #[serde(default)]
    pub redacted_reasoning_content: Option<Value>,
    /// Tool call pieces.
    #[serde(default, borrow)]
    pub tool_calls: Option<Vec<ToolCall<'a>>>,
    /// Refusal text (type-checked, unused).
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    refusal: Option<Cow<'a, str>>,
}

/// A piece of a tool call.
// Fields read only to be required and type-checked are never used afterwards.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
pub struct ToolCall<'a> {
    /// Position among the message's tool calls.
    pub index: u32,
    /// Call id, on the first piece.
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    pub id: Option<Cow<'a, str>>,
    /// `function` (type-checked, unused).
    #[serde(
        default,
        borrow,
        rename = "type",
        deserialize_with = "crate::borrowed::opt_str"
    )]
    kind: Option<Cow<'a, str>>,
    /// Name and argument text.
    #[serde(default, borrow)]
    pub function: Option<Function<'a>>,
}

/// The function part of a tool call piece.
// Fields read only to be required and type-checked are never used afterwards.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
pub struct Function<'a> {
    /// Name, on the first piece.
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    pub name: Option<Cow<'a, str>>,
    /// A piece of the JSON argument text.
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    pub arguments: Option<Cow<'a, str>>,
}

/// The delta of a chunk handed over as a value ([`crate::anthropic::handoff`]),
/// borrowed.
pub fn delta(d: &crate::anthropic::handoff::ChunkDelta) -> Delta<'_> {
    fn borrow(s: &Option<String>) -> Option<Cow<'_, str>> {
        s.as_deref().map(Cow::Borrowed)
    }
    Delta {
        content: borrow(&d.content),
        reasoning_content: borrow(&d.reasoning_content),
        reasoning_signature: borrow(&d.reasoning_signature),
        redacted_reasoning_content: d.redacted_reasoning_content.clone().map(Value::String),
        tool_calls: d.tool_call.as_ref().map(|t| {
            vec![ToolCall::new(
                t.index,
                borrow(&t.id),
                Some(Function {
                    name: borrow(&t.name),
                    arguments: borrow(&t.arguments),
                }),
            )]
        }),
        ..Delta::default()
    }
}

impl<'a> ToolCall<'a> {
    /// A piece built in process rather than parsed (its unused `type` left out).
    pub const fn new(index: u32, id: Option<Cow<'a, str>>, function: Option<Function<'a>>) -> Self {
        Self {
            index,
            id,
            kind: None,
            function,
        }
    }
}
