//! [`ResponsesOverChat`]: a Responses client on any backend with a Chat Completions
//! translator.

use super::chunk;
use super::events::EventRenderer;
use super::request::{self, RequestFacts};
use super::response::{self, StreamEmitter};
use crate::anthropic::handoff::{ChatPiece, ChunkSink};
use crate::canonical::Event;
use crate::canonical::sink::EventSink;
use crate::openai::handoff::SseSink;
use crate::openai::sniff::StreamSniff;
use crate::sse::{SseDecoder, SseEvent};
use aigw_core::api::RequestInfo;
use aigw_core::api::openai::ChatCompletion;
use aigw_core::api::responses::{Item, Response, ResponsesRequest};
use aigw_core::{
    Error, ErrorResponse, HeaderMutation, RequestContext, ResponseChunk, Result, Translator,
    UpstreamRequest,
};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode, header};
use serde_json::Value;
use std::sync::Arc;

/// Wraps a backend's Chat Completions translator to serve Responses requests.
pub struct ResponsesOverChat {
    inner: Box<dyn Translator>,
    backend: String,
    stream: bool,
    emitter: Option<StreamEmitter>,
    /// Shared with the stream's emitter (read-only once the request is built).
    facts: Arc<RequestFacts>,
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    /// The members the chat chunks repeat, as the last one had them.
    head: chunk::Head,
    /// Set when `inner` queues its stream's events here instead of writing chat
    /// chunks: they are rendered by `renderer`, without the SSE and JSON round trip.
    sink: Option<EventSink>,
    renderer: EventRenderer,
    queued: Vec<Event>,
    /// Set when `inner` queues its stream's chunks here as values instead of writing
    /// them (see [`crate::anthropic::handoff`]).
    chunks: Option<ChunkSink>,
    pieces: Vec<ChatPiece>,
    /// Set when `inner` queues the SSE events it decoded here (see
    /// [`crate::openai::handoff`]): they are rendered without decoding them again.
    sse: Option<SseSink>,
    /// The usage and model of those events, which `inner` leaves to this wrapper:
    /// read from the chunks as they are parsed for rendering.
    sniff: StreamSniff,
    /// The head of the queued chunks: completion id, model, created.
    chunk_head: (String, String, u64),
    buffered: Vec<u8>,
    /// The size of the last output, a floor for the next output buffer: the Responses
    /// events of an upstream event are several times its size when it carries a whole
    /// part (Gemini) and the buffer otherwise grew by reallocation several times a call.
    out_hint: usize,
    /// The output buffer, kept for its capacity.
    scratch: Vec<u8>,
    /// Where the output bytes are handed out from. A buffer of its own per call cost a
    /// large allocation and its free (≈ 600 instructions, most of a short upstream
    /// event's budget); copied in here, consecutive outputs share one allocation, which
    /// is reused once the bytes handed out before are dropped.
    pool: BytesMut,
    failure: Option<String>,
    /// The conversation so far, kept when the response is to be stored.
    history: Option<Vec<Item>>,
    failed: bool,
    /// The backend is a chat-only OpenAI-compatible server (vLLM, Ollama): its chat
    /// template may not know the `developer` role or assistant `reasoning_content`.
    chat_only: bool,
}

impl std::fmt::Debug for ResponsesOverChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponsesOverChat")
            .field("backend", &self.backend)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl ResponsesOverChat {
    /// Wraps `inner`, a Chat Completions translator for the backend named `backend`.
    pub fn new(inner: Box<dyn Translator>, backend: &str) -> Self {
        Self {
            inner,
            backend: backend.to_owned(),
            stream: false,
            emitter: None,
            facts: Arc::default(),
            decoder: SseDecoder::new(),
            events: Vec::new(),
            head: chunk::Head::default(),
            sink: None,
            renderer: EventRenderer::default(),
            queued: Vec::new(),
            chunks: None,
            pieces: Vec::new(),
            sse: None,
            sniff: StreamSniff::default(),
            chunk_head: (String::new(), String::new(), 0),
            buffered: Vec::new(),
            out_hint: 0,
            scratch: Vec::new(),
            pool: BytesMut::new(),
            failure: None,
            history: None,
            failed: false,
            chat_only: false,
        }
    }

    /// Wraps `inner`, a Chat Completions translator that queues its stream's events on
    /// `sink` (see [`super::events`]).
    pub fn over_events(inner: Box<dyn Translator>, backend: &str, sink: EventSink) -> Self {
        Self {
            sink: Some(sink),
            ..Self::new(inner, backend)
        }
    }

    /// Wraps `inner`, a Chat Completions translator that queues its stream's chunks on
    /// `sink` as values.
    pub fn over_chunks(inner: Box<dyn Translator>, backend: &str, sink: ChunkSink) -> Self {
        Self {
            chunks: Some(sink),
            ..Self::new(inner, backend)
        }
    }

    /// Wraps `inner`, a Chat Completions translator that queues the SSE events it
    /// decoded on `sink`.
    pub fn over_sse(inner: Box<dyn Translator>, backend: &str, sink: SseSink) -> Self {
        Self {
            sse: Some(sink),
            ..Self::new(inner, backend)
        }
    }

    /// Marks the backend as a chat-only OpenAI-compatible server: `developer` messages
    /// are sent as `system` and earlier reasoning is not replayed (see
    /// [`request::for_chat_only_server`]).
    #[must_use]
    pub const fn chat_only(mut self) -> Self {
        self.chat_only = true;
        self
    }

    /// Stores the finished response and its conversation under the response id, if
    /// asked to.
    fn save(&mut self, response: &Response) {
        if let Some(input) = self.history.take() {
            let now = std::time::Instant::now();
            super::store::with(|s| s.put_response(input, response, now));
        }
    }

    /// Renders what `inner` queued on the sink during its last `response_chunk`.
    fn event_chunk(&mut self, sink: &EventSink, eos: bool, out: &mut Vec<u8>) {
        let mut queued = std::mem::take(&mut self.queued);
        let (head, finished) = sink.drain(&mut queued);
        if let Some(h) = head {
            self.renderer.set_head(h);
        }
        let emitter = self
            .emitter
            .get_or_insert_with(|| StreamEmitter::new(Arc::clone(&self.facts), 0));
        // Rendered in place: an event is moved nowhere (most of it is the usage counters
        // every event has room for).
        for ev in &queued {
            if emitter.finished() {
                continue;
            }
            if let Some(err) = self.renderer.event(ev, emitter, out) {
                self.failure.get_or_insert_with(|| err.to_string());
                self.failed = true;
                emitter.fail(out, &err);
            }
        }
        queued.clear();
        self.queued = queued;
        if finished && !emitter.finished() {
            self.renderer.finish(emitter, out);
        }
        self.end(eos, out);
    }

    /// Renders the chunks `inner` queued during its last `response_chunk`, as
    /// [`Self::stream_chunk`] renders them from their bytes.
    fn piece_chunk(&mut self, sink: &ChunkSink, eos: bool, out: &mut Vec<u8>) {
        let mut pieces = std::mem::take(&mut self.pieces);
        sink.drain(&mut pieces);
        self.emitter
            .get_or_insert_with(|| StreamEmitter::new(Arc::clone(&self.facts), 0));
        for piece in pieces.drain(..) {
            if let ChatPiece::Raw(bytes) = &piece {
                self.stream_chunk(bytes, false, out);
                continue;
            }
            let Some(em) = self.emitter.as_mut().filter(|e| !e.finished()) else {
                continue;
            };
            let (id, model, created) = &mut self.chunk_head;
            match piece {
                ChatPiece::Head {
                    id: i,
                    model: m,
                    created: c,
                } => (*id, *model, *created) = (i, m, c),
                ChatPiece::Delta { delta, finish } => {
                    em.start(out, id, model, *created);
                    em.delta(out, &chunk::delta(&delta), finish.as_deref());
                }
                ChatPiece::Usage(u) => {
                    em.start(out, id, model, *created);
                    em.set_usage(u);
                }
                ChatPiece::Raw(_) => {}
            }
        }
        self.pieces = pieces;
        self.end(eos, out);
    }

    /// At the end of the stream: the terminal event, and the response stored.
    fn end(&mut self, eos: bool, out: &mut Vec<u8>) {
        let Some(emitter) = self.emitter.as_mut().filter(|_| eos) else {
            return;
        };
        emitter.finish(out);
        if !self.failed
            && let Some(r) = emitter.completed().cloned()
        {
            self.save(&r);
        }
    }

    fn stream_chunk(&mut self, bytes: &[u8], eos: bool, out: &mut Vec<u8>) {
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        self.decoder.feed(bytes, &mut events);
        if eos {
            self.decoder.finish(&mut events);
        }
        self.render_events(events, eos, out);
    }

    /// Renders the SSE events `inner` decoded and queued during its last
    /// `response_chunk`, as [`Self::stream_chunk`] renders the ones it decodes.
    fn sse_chunk(&mut self, sink: &SseSink, eos: bool, out: &mut Vec<u8>) {
        let mut events = std::mem::take(&mut self.events);
        sink.drain(&mut events);
        self.render_events(events, eos, out);
    }

    fn render_events(&mut self, events: Vec<SseEvent>, eos: bool, out: &mut Vec<u8>) {
        let emitter = self
            .emitter
            .get_or_insert_with(|| StreamEmitter::new(Arc::clone(&self.facts), 0));
        // The chunks of a handed-over stream are read for usage and model to the end.
        let sniff = self.sse.is_some();
        for ev in &events {
            if ev.is_done() || (emitter.finished() && !sniff) {
                continue;
            }
            let parsed = chunk::parse_after(&ev.data, &mut self.head);
            if sniff {
                match &parsed {
                    Ok(c) if ev.data.trim_start().starts_with('{') => {
                        self.sniff.read_chunk(&ev.data, &c.model, c.usage.as_ref());
                    }
                    _ => {
                        let _usage_only = self.sniff.chunk(&ev.data);
                    }
                }
            }
            if emitter.finished() {
                continue;
            }
            match parsed {
                Ok(c) => emitter.chunk(&c, out),
                Err(e) => {
                    let v: Value = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
                    let err = v.get("error").cloned().unwrap_or_else(|| {
                        serde_json::json!({
                            "code": "bad_upstream_event",
                            "message": format!("unreadable upstream stream event: {e}"),
                        })
                    });
                    self.failure.get_or_insert_with(|| err.to_string());
                    self.failed = true;
                    emitter.fail(out, &err);
                }
            }
        }
        self.events = events;
        self.end(eos, out);
    }

    fn whole(&mut self, body: &[u8]) -> Result<Vec<u8>> {
        let chat: ChatCompletion = serde_json::from_slice(body).map_err(|e| {
            Error::internal(format!(
                "the backend's translated response is unreadable: {e}"
            ))
        })?;
        let mut r = response::from_chat(&chat, &self.facts);
        if self.history.is_some() {
            let id = std::mem::take(&mut r.id);
            r.id = super::store::with(|s| s.unique_id(id));
            self.save(&r);
        }
        serde_json::to_vec(&r)
            .map_err(|e| Error::internal(format!("cannot serialise the response: {e}")))
    }
}

impl Translator for ResponsesOverChat {
    /// The Responses-only fields the conversion to chat left out, then what the chat
    /// translation underneath left out.
    fn dropped_fields(&self) -> &[aigw_core::DroppedField] {
        &self.facts.dropped
    }

    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        let mut parsed: ResponsesRequest = serde_json::from_slice(req.body)
            .map_err(|e| Error::bad_request(format!("invalid Responses request: {e}")))?;
        request::expand_previous(&mut parsed)?;
        let (mut chat, mut facts) = request::to_chat(&parsed, &self.backend)?;
        if self.chat_only {
            request::for_chat_only_server(&mut chat, &mut facts.dropped);
        }
        self.history = facts.store.then(|| request::input_items(&parsed));
        self.facts = Arc::new(facts);
        self.stream = req.info.stream;
        let body = Bytes::from(
            serde_json::to_vec(&chat)
                .map_err(|e| Error::internal(format!("cannot serialise request: {e}")))?,
        );
        let info = RequestInfo {
            include_usage: self.stream,
            ..req.info.clone()
        };
        let ctx = RequestContext {
            body: &body,
            info: &info,
            headers: req.headers,
            force_include_usage: req.force_include_usage,
        };
        let mut up = self.inner.request(&ctx)?;
        // No emitter holds the facts yet: this does not copy them.
        Arc::make_mut(&mut self.facts)
            .dropped
            .extend_from_slice(self.inner.dropped_fields());
        if matches!(up.body, aigw_core::BodyChange::Unchanged) {
            up.body = aigw_core::BodyChange::Replaced(body);
        }
        // The chat output is re-read here, so ask for it uncompressed.
        up.headers.remove(header::ACCEPT_ENCODING);
        Ok(up)
    }

    fn response_headers(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<HeaderMutation> {
        let mut m = self.inner.response_headers(status, headers)?;
        m.remove(header::CONTENT_LENGTH);
        if self.stream {
            m.set_static("content-type", "text/event-stream");
        } else {
            m.set_static("content-type", "application/json");
        }
        Ok(m)
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<ResponseChunk> {
        let r = self.inner.response_chunk(chunk, end_of_stream)?;
        let bytes: &[u8] = r.body.as_deref().unwrap_or(chunk);
        // The handed-over paths have no inner bytes; size for the upstream input then
        // (a Responses event is about twice the upstream event it renders).
        // The first output carries `response.created` and `response.in_progress`, each
        // with the whole response object.
        let opening = if self.emitter.is_none() { 2048 } else { 0 };
        // The last output also closes the open items and carries `response.completed`
        // with every item: reserved here, it is not grown (and copied) on the way.
        let closing = match &self.emitter {
            // Twice: the items this call closes are not open yet.
            Some(em) if end_of_stream => 2 * em.closing_size(),
            _ => 0,
        };
        let estimate = bytes.len().max(chunk.len()) * 2 + 256 + opening + closing;
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let want = estimate.max(self.out_hint);
        if out.capacity() < want {
            // A new buffer, not a reallocation: that would copy the old bytes.
            out = Vec::with_capacity(want);
        }
        if let (true, Some(sink)) = (self.stream, self.sink.clone()) {
            self.event_chunk(&sink, end_of_stream, &mut out);
        } else if let (true, Some(sink)) = (self.stream, self.chunks.clone()) {
            self.piece_chunk(&sink, end_of_stream, &mut out);
        } else if let (true, Some(sink)) = (self.stream, self.sse.clone()) {
            self.sse_chunk(&sink, end_of_stream, &mut out);
        } else if self.stream {
            self.stream_chunk(bytes, end_of_stream, &mut out);
        } else {
            self.buffered.extend_from_slice(bytes);
            if end_of_stream {
                let whole = std::mem::take(&mut self.buffered);
                out = self.whole(&whole)?;
            }
        }
        self.out_hint = out.len();
        self.pool.extend_from_slice(&out);
        let body = self.pool.split().freeze();
        self.scratch = out;
        let (usage, response_model) = if self.stream && self.sse.is_some() {
            (self.sniff.usage, self.sniff.model.clone())
        } else {
            (r.usage, r.response_model)
        };
        Ok(ResponseChunk {
            body: Some(body),
            usage,
            response_model,
        })
    }

    fn response_error(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ErrorResponse> {
        self.inner.response_error(status, headers, body)
    }

    fn in_band_error(&self) -> Option<String> {
        self.inner.in_band_error().or_else(|| self.failure.clone())
    }
}
