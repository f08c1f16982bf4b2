//! The chat chunks of an Anthropic stream handed to an in-process consumer as values.
//!
//! A Responses client on an Anthropic backend is served by [`super::ChatToAnthropic`]
//! wrapped in [`ResponsesOverChat`](crate::responses::ResponsesOverChat). Writing every
//! chunk as SSE only for the wrapper to decode and parse it again was a third of such a
//! stream's cost; with a [`ChunkSink`] the chunk writer queues what each chunk would
//! carry and the wrapper renders the Responses stream from it. The writer's decisions
//! (which chunks, in which order, the usage chunk, error events) are unchanged, so the
//! Responses bytes are the same.

use super::Platform;
use aigw_core::api::openai::Usage;
use aigw_core::{ApiSchema, VersionedSchema};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The Anthropic platform of a schema (native or Vertex AI), `None` for the others.
pub fn platform(schema: &VersionedSchema) -> Option<Platform> {
    match schema.name {
        ApiSchema::Anthropic => Some(Platform::Native {
            prefix: schema.prefix.clone(),
            version: schema.version.clone(),
        }),
        ApiSchema::GCPAnthropic => Some(Platform::Vertex {
            version: schema
                .version
                .clone()
                .unwrap_or_else(|| super::VERTEX_VERSION.to_owned()),
        }),
        _ => None,
    }
}

/// A piece of a tool call, as a chunk's `tool_calls[0]` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallPiece {
    /// Chat tool-call index.
    pub index: u32,
    /// Call id, on the first piece.
    pub id: Option<String>,
    /// Function name, on the first piece.
    pub name: Option<String>,
    /// A piece of the argument text.
    pub arguments: Option<String>,
}

/// What one chunk's delta carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkDelta {
    /// Text.
    pub content: Option<String>,
    /// Thinking text.
    pub reasoning_content: Option<String>,
    /// Thinking signature.
    pub reasoning_signature: Option<String>,
    /// Redacted thinking data.
    pub redacted_reasoning_content: Option<String>,
    /// A tool call piece.
    pub tool_call: Option<ToolCallPiece>,
}

/// One thing the chunk writer produced.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatPiece {
    /// The head of the chunks that follow (sent before the first and again after a
    /// `message_start`).
    Head {
        /// Completion id.
        id: String,
        /// Model.
        model: String,
        /// Unix seconds.
        created: u64,
    },
    /// A chunk with one choice (index 0).
    Delta {
        /// Its delta.
        delta: ChunkDelta,
        /// Its finish reason.
        finish: Option<String>,
    },
    /// The usage-only chunk.
    Usage(Usage),
    /// SSE bytes that are not a chunk (an error event), for the consumer to read.
    Raw(Vec<u8>),
}

/// The queue one chunk writer fills and its wrapper drains after every
/// `response_chunk` call; cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct ChunkSink(Arc<Mutex<Vec<ChatPiece>>>);

impl ChunkSink {
    fn lock(&self) -> MutexGuard<'_, Vec<ChatPiece>> {
        // The queue holds plain data: a panic elsewhere cannot leave it inconsistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues one piece.
    pub fn push(&self, piece: ChatPiece) {
        self.lock().push(piece);
    }

    /// Moves the queued pieces into `out` (cleared first).
    pub fn drain(&self, out: &mut Vec<ChatPiece>) {
        out.clear();
        out.append(&mut self.lock());
    }
}
