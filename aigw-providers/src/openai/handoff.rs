//! A chat stream's decoded SSE events handed to an in-process consumer.
//!
//! A Responses client on a chat-only OpenAI-compatible server is served by
//! [`OpenAiTranslator`](super::OpenAiTranslator) wrapped in
//! [`ResponsesOverChat`](crate::responses::ResponsesOverChat). The translator decodes the
//! upstream SSE for its usage and model sniff and passes the bytes on unchanged; the
//! wrapper then decoded the same bytes again. With an [`SseSink`] the translator queues
//! the events it decoded and the wrapper renders the Responses stream from them.

use crate::sse::SseEvent;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The queue one translator fills and its wrapper drains after every
/// `response_chunk` call; cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct SseSink(Arc<Mutex<Vec<SseEvent>>>);

impl SseSink {
    fn lock(&self) -> MutexGuard<'_, Vec<SseEvent>> {
        // The queue holds plain data: a panic elsewhere cannot leave it inconsistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues the events of one `response_chunk` call, leaving `events` empty.
    pub fn push_all(&self, events: &mut Vec<SseEvent>) {
        self.lock().append(events);
    }

    /// Moves the queued events into `out` (cleared first).
    pub fn drain(&self, out: &mut Vec<SseEvent>) {
        out.clear();
        out.append(&mut self.lock());
    }
}
