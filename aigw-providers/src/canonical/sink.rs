//! A stream's neutral events handed to an in-process consumer instead of rendered.
//!
//! A Responses client on Bedrock (Converse, InvokeModel) or Gemini is served by the
//! backend's Chat Completions translator wrapped in
//! [`ResponsesOverChat`](crate::responses::ResponsesOverChat). Rendering the backend's
//! events as chat chunks only for the wrapper to decode and parse them again was half
//! the cost of such a stream; with an [`EventSink`] the translator queues the events
//! and the wrapper renders the Responses stream from them directly.

use super::Event;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// What the chat chunks of the stream would have carried in every chunk's head.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamHead {
    /// The completion id without its `chatcmpl-` prefix.
    pub id: String,
    /// The model that answers.
    pub model: String,
    /// Unix seconds.
    pub created: u64,
    /// Whether the stream ends with a usage chunk.
    pub include_usage: bool,
}

#[derive(Debug, Default)]
struct Queue {
    head: Option<StreamHead>,
    events: Vec<Event>,
    finished: bool,
}

/// The queue one translator fills and its wrapper drains after every
/// `response_chunk` call; cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct EventSink(Arc<Mutex<Queue>>);

impl EventSink {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue holds plain data: a panic elsewhere cannot leave it inconsistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the stream's head (when the translator's chat writer would be built).
    pub fn open(&self, id: &str, model: &str, created: u64, include_usage: bool) {
        self.lock().head.get_or_insert_with(|| StreamHead {
            id: id.to_owned(),
            model: model.to_owned(),
            created,
            include_usage,
        });
    }

    /// Queues one event.
    pub fn push(&self, ev: Event) {
        self.lock().events.push(ev);
    }

    /// Queues every event of `events` (left empty) under one lock: a chunk's few
    /// events one lock each cost more than moving them.
    pub fn push_all(&self, events: &mut Vec<Event>) {
        let mut q = self.lock();
        if q.events.is_empty() {
            // The buffers change places instead of the events being moved: each keeps
            // its capacity for the next call, and none grows by reallocation.
            std::mem::swap(&mut q.events, events);
        } else {
            q.events.append(events);
        }
    }

    /// Marks the end of the stream (the chat writer's `[DONE]`).
    pub fn finish(&self) {
        self.lock().finished = true;
    }

    /// Moves the queued events into `out` (cleared first); returns the head the first
    /// time it is there, and whether the stream finished.
    pub fn drain(&self, out: &mut Vec<Event>) -> (Option<StreamHead>, bool) {
        let mut q = self.lock();
        out.clear();
        // As in `push_all`: `out`'s empty buffer goes back to the queue.
        std::mem::swap(out, &mut q.events);
        (q.head.take(), q.finished)
    }
}

/// The output buffer of a chat translator's `response_chunk`: none when its events go
/// to a sink (nothing is written; an allocated but empty buffer still cost an
/// allocation and a free per call, and made the empty body a shared allocation),
/// otherwise room for about twice the input.
pub(crate) fn out_buffer(to_sink: bool, input: usize) -> Vec<u8> {
    if to_sink {
        Vec::new()
    } else {
        Vec::with_capacity(input * 2)
    }
}
