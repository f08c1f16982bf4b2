//! Renders neutral responses and stream events as OpenAI or Anthropic wire bytes.

use super::sink::EventSink;
use super::{ChatResponse, Event, OutBlock, StopReason, error_body};
use aigw_core::estimate::EventText;
use aigw_core::{ClientApi, TokenUsage};
use serde_json::{Value, json};

use crate::json_out::{push_num, push_str};

/// OpenAI `usage` as a JSON tree: the reference the byte and typed renderings below
/// are tested against.
#[cfg(test)]
fn openai_usage(u: &TokenUsage) -> Value {
    let mut usage = json!({
        "prompt_tokens": u.input.unwrap_or(0),
        "completion_tokens": u.output.unwrap_or(0),
        "total_tokens": u.total_or_sum().unwrap_or(0),
    });
    if u.cached_input.is_some() || u.cache_creation_input.is_some() {
        let mut d = serde_json::Map::new();
        d.insert("cached_tokens".into(), u.cached_input.unwrap_or(0).into());
        if let Some(c) = u.cache_creation_input {
            d.insert("cache_creation_tokens".into(), c.into());
        }
        usage["prompt_tokens_details"] = Value::Object(d);
    }
    if let Some(r) = u.reasoning {
        usage["completion_tokens_details"] = json!({ "reasoning_tokens": r });
    }
    usage
}

/// The OpenAI usage [`push_openai_usage`] writes, as the typed chat usage.
pub(crate) fn openai_usage_typed(u: &TokenUsage) -> aigw_core::api::openai::Usage {
    use aigw_core::api::openai::{CompletionTokensDetails, PromptTokensDetails, Usage};
    let cached = u.cached_input.is_some() || u.cache_creation_input.is_some();
    Usage {
        prompt_tokens: u.input.unwrap_or(0),
        completion_tokens: u.output.unwrap_or(0),
        total_tokens: u.total_or_sum().unwrap_or(0),
        prompt_tokens_details: cached.then(|| PromptTokensDetails {
            cached_tokens: Some(u.cached_input.unwrap_or(0)),
            cache_creation_tokens: u.cache_creation_input,
            ..PromptTokensDetails::default()
        }),
        completion_tokens_details: u.reasoning.map(|r| CompletionTokensDetails {
            reasoning_tokens: Some(r),
            ..CompletionTokensDetails::default()
        }),
        ..Usage::default()
    }
}

fn anthropic_usage(u: &TokenUsage) -> Value {
    let cached = u.cached_input.unwrap_or(0);
    let created = u.cache_creation_input.unwrap_or(0);
    let uncached = u.input.unwrap_or(0).saturating_sub(cached + created);
    let mut usage = json!({
        "input_tokens": uncached,
        "cache_creation_input_tokens": created,
        "cache_read_input_tokens": cached,
        "output_tokens": u.output.unwrap_or(0),
    });
    if let Some(r) = u.reasoning {
        // Anthropic's shape for thinking tokens (beta `thinking-token-count`), which
        // clients that do not know it ignore.
        usage["output_tokens_details"] = json!({ "thinking_tokens": r });
    }
    usage
}

/// Appends an OpenAI `usage` object: `prompt_tokens`, `completion_tokens`,
/// `total_tokens`, then the details objects that apply.
fn push_openai_usage(out: &mut Vec<u8>, u: &TokenUsage) {
    out.extend_from_slice(b"{\"prompt_tokens\":");
    push_num(out, u.input.unwrap_or(0));
    out.extend_from_slice(b",\"completion_tokens\":");
    push_num(out, u.output.unwrap_or(0));
    out.extend_from_slice(b",\"total_tokens\":");
    push_num(out, u.total_or_sum().unwrap_or(0));
    if u.cached_input.is_some() || u.cache_creation_input.is_some() {
        out.extend_from_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
        push_num(out, u.cached_input.unwrap_or(0));
        if let Some(c) = u.cache_creation_input {
            out.extend_from_slice(b",\"cache_creation_tokens\":");
            push_num(out, c);
        }
        out.push(b'}');
    }
    if let Some(r) = u.reasoning {
        out.extend_from_slice(b",\"completion_tokens_details\":{\"reasoning_tokens\":");
        push_num(out, r);
        out.push(b'}');
    }
    out.push(b'}');
}

/// Appends an Anthropic `usage` object, as [`anthropic_usage`] renders it.
fn push_anthropic_usage(out: &mut Vec<u8>, u: &TokenUsage) {
    let cached = u.cached_input.unwrap_or(0);
    let created = u.cache_creation_input.unwrap_or(0);
    out.extend_from_slice(b"{\"input_tokens\":");
    push_num(out, u.input.unwrap_or(0).saturating_sub(cached + created));
    out.extend_from_slice(b",\"cache_creation_input_tokens\":");
    push_num(out, created);
    out.extend_from_slice(b",\"cache_read_input_tokens\":");
    push_num(out, cached);
    out.extend_from_slice(b",\"output_tokens\":");
    push_num(out, u.output.unwrap_or(0));
    if let Some(r) = u.reasoning {
        out.extend_from_slice(b",\"output_tokens_details\":{\"thinking_tokens\":");
        push_num(out, r);
        out.push(b'}');
    }
    out.push(b'}');
}

/// An OpenAI `chat.completion` body.
///
/// Written straight into bytes, in the key order a `json!` tree of the same fields
/// serialises to (the goldens hold it): building that tree and serialising it was
/// most of the cost of a translated non-stream response.
pub fn openai_response(r: &ChatResponse, created: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + r.model.len());
    out.extend_from_slice(b"{\"id\":");
    // `chatcmpl-` and the id as one string, without a `format!`ed copy.
    if r.id.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.extend_from_slice(b"\"chatcmpl-");
        out.extend_from_slice(r.id.as_bytes());
        out.push(b'"');
    } else {
        push_str(&mut out, &format!("chatcmpl-{}", r.id));
    }
    out.extend_from_slice(b",\"object\":\"chat.completion\",\"created\":");
    push_num(&mut out, created);
    out.extend_from_slice(b",\"model\":");
    push_str(&mut out, &r.model);
    out.extend_from_slice(b",\"choices\":[");
    for (i, c) in r.choices.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"index\":");
        push_num(&mut out, i as u64);
        out.extend_from_slice(b",\"message\":");
        push_openai_message(&mut out, &c.content);
        out.extend_from_slice(b",\"finish_reason\":");
        push_str(&mut out, c.stop.as_ref().map_or("stop", StopReason::openai));
        out.extend_from_slice(b",\"logprobs\":null}");
    }
    out.extend_from_slice(b"],\"usage\":");
    push_openai_usage(&mut out, &r.usage);
    out.push(b'}');
    out
}

/// Appends one choice's assistant `message`.
fn push_openai_message(out: &mut Vec<u8>, content: &[OutBlock]) {
    let mut text: Option<String> = None;
    let mut reasoning = String::new();
    let mut signature = None;
    let mut calls = 0usize;
    for b in content {
        match b {
            OutBlock::Text(t) => text.get_or_insert_with(String::new).push_str(t),
            OutBlock::Thinking { text, signature: s } => {
                reasoning.push_str(text);
                if s.is_some() {
                    signature.clone_from(s);
                }
            }
            OutBlock::RedactedThinking(_) => {}
            OutBlock::ToolUse { .. } => calls += 1,
        }
    }
    out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":");
    match &text {
        Some(t) => push_str(out, t),
        None => out.extend_from_slice(b"null"),
    }
    if !reasoning.is_empty() {
        out.extend_from_slice(b",\"reasoning_content\":");
        push_str(out, &reasoning);
    }
    if let Some(s) = &signature {
        out.extend_from_slice(b",\"reasoning_signature\":");
        push_str(out, s);
    }
    if calls > 0 {
        out.extend_from_slice(b",\"tool_calls\":[");
        let tools = content.iter().filter_map(|b| match b {
            OutBlock::ToolUse { id, name, input } => Some((id, name, input)),
            _ => None,
        });
        for (n, (id, name, input)) in tools.enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"id\":");
            push_str(out, id);
            out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
            push_str(out, name);
            out.extend_from_slice(b",\"arguments\":");
            push_str(out, input);
            out.extend_from_slice(b"}}");
        }
        out.push(b']');
    }
    out.push(b'}');
}

/// An Anthropic `message` body (first choice only: Messages has no `n`).
pub fn anthropic_response(r: &ChatResponse) -> Vec<u8> {
    let choice = r.choices.first();
    let content: Vec<Value> = choice
        .map(|c| c.content.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|b| match b {
            OutBlock::Text(t) => json!({"type": "text", "text": t}),
            OutBlock::Thinking { text, signature } => {
                json!({"type": "thinking", "thinking": text, "signature": signature.as_deref().unwrap_or("")})
            }
            OutBlock::RedactedThinking(d) => json!({"type": "redacted_thinking", "data": d}),
            OutBlock::ToolUse { id, name, input } => {
                let input: Value = serde_json::from_str(input).unwrap_or_else(|_| json!({}));
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }
        })
        .collect();
    let stop = choice.and_then(|c| c.stop.as_ref());
    let stop_sequence = match stop {
        Some(StopReason::StopSequence(s)) => s.clone(),
        _ => None,
    };
    json!({
        "id": format!("msg_{}", r.id),
        "type": "message",
        "role": "assistant",
        "model": r.model,
        "content": content,
        "stop_reason": stop.map(StopReason::anthropic),
        "stop_sequence": stop_sequence,
        "usage": anthropic_usage(&r.usage),
    })
    .to_string()
    .into_bytes()
}

/// Which client stream format to write.
#[derive(Debug)]
pub enum StreamEmitter {
    /// OpenAI `chat.completion.chunk` SSE.
    OpenAI(OpenAiStream),
    /// Anthropic Messages SSE.
    Anthropic(AnthropicStream),
    /// No bytes: the events go to an in-process consumer.
    Events(EventSink),
}

impl StreamEmitter {
    /// An emitter for the client API.
    pub fn new(api: ClientApi, id: &str, model: &str, created: u64, include_usage: bool) -> Self {
        match api {
            ClientApi::OpenAI => Self::OpenAI(OpenAiStream::new(id, model, created, include_usage)),
            ClientApi::Anthropic => Self::Anthropic(AnthropicStream::new(id, model)),
        }
    }

    /// An emitter for the client API, or one that queues the events on `sink` when
    /// the translator has one.
    pub fn to(
        sink: Option<&EventSink>,
        api: ClientApi,
        id: &str,
        model: &str,
        created: u64,
        include_usage: bool,
    ) -> Self {
        match sink {
            Some(s) => {
                s.open(id, model, created, include_usage);
                Self::Events(s.clone())
            }
            None => Self::new(api, id, model, created, include_usage),
        }
    }

    /// Renders one event.
    pub fn event(&mut self, ev: Event, out: &mut Vec<u8>) {
        self.event_with(ev, out, None);
    }

    /// Renders one event and reports the text of what it wrote to `text` (the
    /// translator's [`aigw_core::Translator::event_text`]), one piece per event.
    pub fn event_with(&mut self, ev: Event, out: &mut Vec<u8>, text: Option<&mut EventText>) {
        match self {
            Self::OpenAI(s) => s.event(ev, out, text),
            Self::Anthropic(s) => s.event(ev, out, text),
            Self::Events(s) => s.push(ev),
        }
    }

    /// Renders the events of `events` in order (left empty); a sink takes them at once.
    pub fn events(&mut self, events: &mut Vec<Event>, out: &mut Vec<u8>) {
        self.events_with(events, out, None);
    }

    /// [`Self::events`], reporting the text of what each event wrote to `text` as
    /// [`Self::event_with`] does.
    pub fn events_with(
        &mut self,
        events: &mut Vec<Event>,
        out: &mut Vec<u8>,
        mut text: Option<&mut EventText>,
    ) {
        if let Self::Events(s) = self {
            s.push_all(events);
            return;
        }
        for ev in events.drain(..) {
            self.event_with(ev, out, text.as_deref_mut());
        }
    }

    /// Closes the stream at end of input.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self {
            Self::OpenAI(s) => s.finish(out),
            Self::Anthropic(s) => s.finish(out),
            Self::Events(s) => s.finish(),
        }
    }

    /// Whether an error event ended the stream.
    pub fn failed(&self) -> bool {
        match self {
            Self::OpenAI(s) => s.failed,
            Self::Anthropic(s) => s.failed,
            // The consumer tracks failures itself.
            Self::Events(_) => false,
        }
    }
}

/// OpenAI chunk writer.
#[derive(Debug)]
pub struct OpenAiStream {
    /// `data: {"id":…,"choices":[{"index":0,"delta":` — shared by every chunk.
    prefix: Vec<u8>,
    /// The same header for the usage chunk (no choices).
    usage_prefix: Vec<u8>,
    include_usage: bool,
    /// Backend block index → OpenAI tool-call index.
    tools: Vec<(u32, u32)>,
    usage: Option<TokenUsage>,
    started: bool,
    done: bool,
    failed: bool,
}

impl OpenAiStream {
    fn new(id: &str, model: &str, created: u64, include_usage: bool) -> Self {
        let mut head = Vec::with_capacity(128);
        head.extend_from_slice(b"data: {\"id\":");
        push_str(&mut head, &format!("chatcmpl-{id}"));
        head.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        head.extend_from_slice(created.to_string().as_bytes());
        head.extend_from_slice(b",\"model\":");
        push_str(&mut head, model);
        let mut prefix = head.clone();
        prefix.extend_from_slice(b",\"choices\":[{\"index\":0,\"delta\":");
        let mut usage_prefix = head;
        usage_prefix.extend_from_slice(b",\"choices\":[],\"usage\":");
        Self {
            prefix,
            usage_prefix,
            include_usage,
            tools: Vec::new(),
            usage: None,
            started: false,
            done: false,
            failed: false,
        }
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: impl FnOnce(&mut Vec<u8>), finish: Option<&str>) {
        out.extend_from_slice(&self.prefix);
        delta(out);
        out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
        match finish {
            Some(f) => push_str(out, f),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"}]}\n\n");
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            self.chunk(
                out,
                |o| o.extend_from_slice(b"{\"role\":\"assistant\",\"content\":\"\"}"),
                None,
            );
        }
    }

    fn tool_index(&mut self, backend: u32) -> Option<u32> {
        self.tools
            .iter()
            .find(|(b, _)| *b == backend)
            .map(|(_, o)| *o)
    }

    /// Writes `ev`; the text of each chunk it writes goes to `report` (what the
    /// estimate reads from a chunk: content, reasoning, a tool's name and arguments).
    fn event(&mut self, ev: Event, out: &mut Vec<u8>, mut report: Option<&mut EventText>) {
        if self.done || self.failed {
            return;
        }
        let mut said = |piece: &str| {
            if let Some(t) = report.as_deref_mut() {
                t.push(piece);
            }
        };
        match ev {
            Event::Start => self.ensure_started(out),
            Event::TextDelta { text, .. } => {
                self.ensure_started(out);
                self.chunk(
                    out,
                    |o| {
                        o.extend_from_slice(b"{\"content\":");
                        push_str(o, &text);
                        o.push(b'}');
                    },
                    None,
                );
                said(&text);
            }
            Event::ThinkingDelta { text, .. } => {
                self.ensure_started(out);
                self.chunk(
                    out,
                    |o| {
                        o.extend_from_slice(b"{\"reasoning_content\":");
                        push_str(o, &text);
                        o.push(b'}');
                    },
                    None,
                );
                said(&text);
            }
            Event::SignatureDelta { signature, .. } => {
                self.ensure_started(out);
                self.chunk(
                    out,
                    |o| {
                        o.extend_from_slice(b"{\"reasoning_signature\":");
                        push_str(o, &signature);
                        o.push(b'}');
                    },
                    None,
                );
            }
            Event::RedactedThinking { .. } | Event::BlockStop { .. } => {}
            Event::ToolStart { index, id, name } => {
                self.ensure_started(out);
                let k = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
                self.tools.push((index, k));
                self.chunk(
                    out,
                    |o| {
                        o.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                        o.extend_from_slice(k.to_string().as_bytes());
                        o.extend_from_slice(b",\"id\":");
                        push_str(o, &id);
                        o.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
                        push_str(o, &name);
                        o.extend_from_slice(b",\"arguments\":\"\"}}]}");
                    },
                    None,
                );
                said(&name);
            }
            Event::ToolDelta { index, json } => {
                let Some(k) = self.tool_index(index) else {
                    return;
                };
                self.chunk(
                    out,
                    |o| {
                        o.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                        o.extend_from_slice(k.to_string().as_bytes());
                        o.extend_from_slice(b",\"function\":{\"arguments\":");
                        push_str(o, &json);
                        o.extend_from_slice(b"}}]}");
                    },
                    None,
                );
                said(&json);
            }
            Event::Stop(reason) => {
                self.ensure_started(out);
                self.chunk(out, |o| o.extend_from_slice(b"{}"), Some(reason.openai()));
            }
            Event::Usage(u) => {
                // Providers may report usage more than once (Gemini: every chunk); the
                // client gets one usage chunk, the last, just before `[DONE]`.
                self.usage
                    .get_or_insert_with(TokenUsage::default)
                    .update(&u);
            }
            Event::Error {
                status,
                kind,
                message,
            } => {
                self.failed = true;
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&error_body(ClientApi::OpenAI, status, &kind, &message));
                out.extend_from_slice(b"\n\n");
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.done && !self.failed {
            self.done = true;
            if let Some(u) = self.usage.filter(|_| self.include_usage) {
                out.extend_from_slice(&self.usage_prefix);
                push_openai_usage(out, &u);
                out.extend_from_slice(b"}\n\n");
            }
            out.extend_from_slice(b"data: [DONE]\n\n");
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenKind {
    Text,
    Thinking,
    Tool,
}

/// Anthropic event writer.
#[derive(Debug)]
pub struct AnthropicStream {
    id: String,
    model: String,
    /// The open block: backend index, client index, kind.
    open: Option<(u32, u32, OpenKind)>,
    next_index: u32,
    stop: Option<StopReason>,
    usage: TokenUsage,
    started: bool,
    done: bool,
    failed: bool,
}

impl AnthropicStream {
    fn new(id: &str, model: &str) -> Self {
        Self {
            id: format!("msg_{id}"),
            model: model.to_owned(),
            open: None,
            next_index: 0,
            stop: None,
            usage: TokenUsage::default(),
            started: false,
            done: false,
            failed: false,
        }
    }

    /// Writes one SSE event whose data `body` appends. The per-event writers below
    /// produce the bytes a `json!` tree of the same keys would (the goldens hold them)
    /// without building one.
    fn frame(out: &mut Vec<u8>, name: &str, body: impl FnOnce(&mut Vec<u8>)) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        body(out);
        out.extend_from_slice(b"\n\n");
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            let (id, model) = (&self.id, &self.model);
            Self::frame(out, "message_start", |o| {
                o.extend_from_slice(br#"{"type":"message_start","message":{"id":"#);
                push_str(o, id);
                o.extend_from_slice(br#","type":"message","role":"assistant","model":"#);
                push_str(o, model);
                o.extend_from_slice(
                    br#","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}"#,
                );
            });
        }
    }

    fn close_open(&mut self, out: &mut Vec<u8>) {
        if let Some((_, idx, _)) = self.open.take() {
            Self::frame(out, "content_block_stop", |o| {
                o.extend_from_slice(b"{\"type\":\"content_block_stop\",\"index\":");
                push_num(o, u64::from(idx));
                o.push(b'}');
            });
        }
    }

    /// Makes `backend` the open block of `kind`, starting it with `start` if new.
    fn open_block(
        &mut self,
        out: &mut Vec<u8>,
        backend: u32,
        kind: OpenKind,
        start: impl FnOnce(&mut Vec<u8>),
    ) -> u32 {
        self.ensure_started(out);
        if let Some((b, idx, k)) = self.open
            && b == backend
            && k == kind
        {
            return idx;
        }
        self.close_open(out);
        let idx = self.next_index;
        self.next_index += 1;
        self.open = Some((backend, idx, kind));
        Self::frame(out, "content_block_start", |o| {
            o.extend_from_slice(b"{\"type\":\"content_block_start\",\"index\":");
            push_num(o, u64::from(idx));
            o.extend_from_slice(b",\"content_block\":");
            start(o);
            o.push(b'}');
        });
        idx
    }

    /// A `content_block_delta` of type `kind` whose one field `field` is `value`.
    fn delta(out: &mut Vec<u8>, idx: u32, kind: &str, field: &str, value: &str) {
        Self::frame(out, "content_block_delta", |o| {
            o.extend_from_slice(b"{\"type\":\"content_block_delta\",\"index\":");
            push_num(o, u64::from(idx));
            o.extend_from_slice(b",\"delta\":{\"type\":\"");
            o.extend_from_slice(kind.as_bytes());
            o.extend_from_slice(b"\",\"");
            o.extend_from_slice(field.as_bytes());
            o.extend_from_slice(b"\":");
            push_str(o, value);
            o.extend_from_slice(b"}}");
        });
    }

    fn text_start(o: &mut Vec<u8>) {
        o.extend_from_slice(br#"{"type":"text","text":""}"#);
    }

    fn thinking_start(o: &mut Vec<u8>) {
        o.extend_from_slice(br#"{"type":"thinking","thinking":"","signature":""}"#);
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.done = true;
        self.ensure_started(out);
        self.close_open(out);
        let stop = self.stop.take().unwrap_or(StopReason::EndTurn);
        let stop_sequence = match &stop {
            StopReason::StopSequence(s) => s.clone(),
            _ => None,
        };
        let usage = &self.usage;
        Self::frame(out, "message_delta", |o| {
            o.extend_from_slice(br#"{"type":"message_delta","delta":{"stop_reason":"#);
            push_str(o, stop.anthropic());
            o.extend_from_slice(br#","stop_sequence":"#);
            let _ = serde_json::to_writer(&mut *o, &stop_sequence);
            o.extend_from_slice(br#"},"usage":"#);
            push_anthropic_usage(o, usage);
            o.push(b'}');
        });
        Self::frame(out, "message_stop", |o| {
            o.extend_from_slice(br#"{"type":"message_stop"}"#);
        });
    }

    /// Writes `ev`; the text of each event it writes goes to `report` (what the
    /// estimate reads from an event: text, thinking and argument deltas, a tool's name).
    fn event(&mut self, ev: Event, out: &mut Vec<u8>, mut report: Option<&mut EventText>) {
        if self.done || self.failed {
            return;
        }
        let mut said = |piece: &str| {
            if let Some(t) = report.as_deref_mut() {
                t.push(piece);
            }
        };
        match ev {
            Event::Start => self.ensure_started(out),
            Event::TextDelta { index, text } => {
                let idx = self.open_block(out, index, OpenKind::Text, Self::text_start);
                Self::delta(out, idx, "text_delta", "text", &text);
                said(&text);
            }
            Event::ThinkingDelta { index, text } => {
                let idx = self.open_block(out, index, OpenKind::Thinking, Self::thinking_start);
                Self::delta(out, idx, "thinking_delta", "thinking", &text);
                said(&text);
            }
            Event::SignatureDelta { index, signature } => {
                let idx = self.open_block(out, index, OpenKind::Thinking, Self::thinking_start);
                Self::delta(out, idx, "signature_delta", "signature", &signature);
            }
            Event::RedactedThinking { index, data } => {
                self.open_block(out, index, OpenKind::Thinking, |o| {
                    o.extend_from_slice(br#"{"type":"redacted_thinking","data":"#);
                    push_str(o, &data);
                    o.push(b'}');
                });
            }
            Event::ToolStart { index, id, name } => {
                self.ensure_started(out);
                self.close_open(out);
                self.open_block(out, index, OpenKind::Tool, |o| {
                    o.extend_from_slice(br#"{"type":"tool_use","id":"#);
                    push_str(o, &id);
                    o.extend_from_slice(br#","name":"#);
                    push_str(o, &name);
                    o.extend_from_slice(br#","input":{}}"#);
                });
                said(&name);
            }
            Event::ToolDelta { index, json } => {
                if let Some((b, idx, OpenKind::Tool)) = self.open
                    && b == index
                {
                    Self::delta(out, idx, "input_json_delta", "partial_json", &json);
                    said(&json);
                }
            }
            Event::BlockStop { index } => {
                if self.open.is_some_and(|(b, _, _)| b == index) {
                    self.close_open(out);
                }
            }
            Event::Stop(reason) => {
                self.ensure_started(out);
                self.close_open(out);
                self.stop = Some(reason);
            }
            Event::Usage(u) => {
                self.usage.update(&u);
                // Bedrock sends usage after the stop; Gemini with it. Either way the
                // message ends once both are known.
                if self.stop.is_some() {
                    self.end(out);
                }
            }
            Event::Error {
                status, message, ..
            } => {
                self.failed = true;
                out.extend_from_slice(b"event: error\ndata: ");
                out.extend_from_slice(&error_body(ClientApi::Anthropic, status, "", &message));
                out.extend_from_slice(b"\n\n");
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.failed && self.started {
            self.end(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The usage writers give the bytes of the `json!` trees they replace.
    #[test]
    fn usage_writers_match_the_json_trees() {
        let some = [None, Some(0), Some(7)];
        for input in some {
            for cached in some {
                for creation in some {
                    for reasoning in some {
                        let u = TokenUsage {
                            input: input.map(|i| i + 20),
                            output: Some(5),
                            total: None,
                            cached_input: cached,
                            cache_creation_input: creation,
                            reasoning,
                            ..TokenUsage::default()
                        };
                        let mut o = Vec::new();
                        push_openai_usage(&mut o, &u);
                        assert_eq!(o, openai_usage(&u).to_string().into_bytes(), "{u:?}");
                        let typed: aigw_core::api::openai::Usage =
                            serde_json::from_value(openai_usage(&u)).unwrap();
                        assert_eq!(openai_usage_typed(&u), typed, "{u:?}");
                        let mut a = Vec::new();
                        push_anthropic_usage(&mut a, &u);
                        assert_eq!(a, anthropic_usage(&u).to_string().into_bytes(), "{u:?}");
                    }
                }
            }
        }
    }
}
