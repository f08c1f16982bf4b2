//! A [`SpanSink`] that keeps finished spans in memory: for tests, and for embedders
//! that hand spans to their own pipeline.

use super::attr::SpanKind;
use super::{LiveSpan, SpanContext, SpanEnd, SpanSink, SpanStart};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// A finished span.
#[derive(Debug, Clone)]
pub struct FinishedSpan {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: SpanKind,
    /// Its identity.
    pub context: SpanContext,
    /// Its parent's span id, if any.
    pub parent: Option<u64>,
    /// When it started.
    pub start: SystemTime,
    /// How it ended.
    pub end: SpanEnd,
}

/// Keeps every finished span.
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    spans: Arc<Mutex<Vec<FinishedSpan>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The spans finished so far, in end order.
    pub fn spans(&self) -> Vec<FinishedSpan> {
        self.spans.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl SpanSink for MemorySink {
    fn start(&self, start: SpanStart<'_>) -> Box<dyn LiveSpan> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let (trace_id, flags) = start
            .parent
            .as_ref()
            .map_or((u128::from(id) << 64 | 1, 1), |p| (p.trace_id, p.flags));
        Box::new(MemorySpan {
            sink: self.spans.clone(),
            name: start.name.into_owned(),
            kind: start.kind,
            parent: start.parent.map(|p| p.span_id),
            start: start.time,
            context: SpanContext {
                trace_id,
                span_id: id,
                flags,
                state: None,
            },
        })
    }
}

struct MemorySpan {
    sink: Arc<Mutex<Vec<FinishedSpan>>>,
    name: String,
    kind: SpanKind,
    parent: Option<u64>,
    start: SystemTime,
    context: SpanContext,
}

impl LiveSpan for MemorySpan {
    fn context(&self) -> SpanContext {
        self.context.clone()
    }

    fn end(self: Box<Self>, end: SpanEnd) {
        let s = *self;
        if let Ok(mut spans) = s.sink.lock() {
            spans.push(FinishedSpan {
                name: s.name,
                kind: s.kind,
                context: s.context,
                parent: s.parent,
                start: s.start,
                end,
            });
        }
    }
}
