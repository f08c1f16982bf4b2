//! Chat Completions response (whole or streamed) → Responses response object and the
//! typed Responses event stream.
//!
//! The stream side is a state machine over chat chunks: reasoning deltas open a
//! `reasoning` item, text deltas a `message` item with one `output_text` part, each
//! tool-call index a `function_call` item; an item is closed (its `.done` events sent)
//! when the next kind of output begins or the stream ends. `response.completed` (or
//! `response.incomplete` / `response.failed`) carries the whole response with usage.

use super::chunk::{Chunk, Delta, ToolCall};
use super::reasoning;
use super::request::RequestFacts;
use super::wire;
use crate::json_out::{push_num, push_prefixed_str, push_str};
use aigw_core::api::openai::{ChatCompletion, ChatMessage, MessageContent as ChatContent, Usage};
use aigw_core::api::responses::{
    ContentPart, EventKind, Extra, FunctionCallItem, InputTokensDetails, Item, KnownContentPart,
    MessageContent, MessageItem, OutputTokensDetails, ReasoningItem, Response, ResponseUsage,
    StreamEvent, SummaryPart,
};
use serde_json::{Value, json};
use std::sync::Arc;

/// Chat usage as Responses usage.
pub fn usage(u: &Usage) -> ResponseUsage {
    ResponseUsage {
        input_tokens: u.prompt_tokens,
        input_tokens_details: InputTokensDetails {
            cached_tokens: u
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
        },
        output_tokens: u.completion_tokens,
        output_tokens_details: OutputTokensDetails {
            reasoning_tokens: u
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        },
        total_tokens: if u.total_tokens > 0 {
            u.total_tokens
        } else {
            u.prompt_tokens + u.completion_tokens
        },
    }
}

/// The response id for a chat completion id (`resp_` prefix, once).
pub fn response_id(chat_id: &str) -> String {
    let base = chat_id
        .strip_prefix("chatcmpl-")
        .or_else(|| chat_id.strip_prefix("msg_"))
        .unwrap_or(chat_id);
    if base.is_empty() {
        "resp_aigw".to_owned()
    } else {
        // Not `format!`: one per stream, and the formatting machinery costs more than
        // the copy.
        ["resp_", base].concat()
    }
}

/// `status` and `incomplete_details` for a chat `finish_reason`.
fn status_for(finish: Option<&str>) -> (&'static str, Option<Value>) {
    match finish {
        Some("length") => ("incomplete", Some(json!({"reason": "max_output_tokens"}))),
        Some("content_filter") => ("incomplete", Some(json!({"reason": "content_filter"}))),
        _ => ("completed", None),
    }
}

fn message_item(id: &str, text: &str, status: &str) -> Item {
    let content = if text.is_empty() && status == "in_progress" {
        Vec::new()
    } else {
        vec![output_text(text)]
    };
    Item::Message(MessageItem {
        kind: Some("message".into()),
        id: Some(id.to_owned()),
        role: "assistant".into(),
        content: MessageContent::Parts(content),
        status: Some(status.into()),
        extra: Extra::new(),
    })
}

fn output_text(text: &str) -> ContentPart {
    ContentPart::Known(KnownContentPart::OutputText {
        text: text.to_owned(),
        annotations: Vec::new(),
        extra: Extra::new(),
    })
}

fn summary_text(text: &str) -> SummaryPart {
    SummaryPart {
        kind: "summary_text".into(),
        text: text.to_owned(),
        extra: Extra::new(),
    }
}

/// The `encrypted_content` of a reasoning item: the redacted data, or (once done) the
/// thinking text and signature.
fn sealed_content(r: &OpenReasoning, done: bool) -> Option<String> {
    if let Some(d) = &r.redacted {
        Some(reasoning::encode_parts(None, None, Some(d)))
    } else if done && (!r.text.is_empty() || r.signature.is_some()) {
        Some(reasoning::encode_parts(
            Some(&r.text),
            r.signature.as_deref(),
            None,
        ))
    } else {
        None
    }
}

/// The summary text a reasoning item shows, if any.
fn summary_of(r: &OpenReasoning, summary: bool, done: bool) -> Option<&str> {
    (summary && done && !r.text.is_empty()).then_some(r.text.as_str())
}

fn reasoning_item(id: &str, r: &OpenReasoning, summary: bool, done: bool) -> Item {
    reasoning_item_sealed(id, r, summary, done, sealed_content(r, done))
}

fn reasoning_item_sealed(
    id: &str,
    r: &OpenReasoning,
    summary: bool,
    done: bool,
    encrypted_content: Option<String>,
) -> Item {
    Item::Reasoning(ReasoningItem {
        kind: "reasoning".into(),
        id: Some(id.to_owned()),
        summary: summary_of(r, summary, done)
            .map(summary_text)
            .into_iter()
            .collect(),
        content: None,
        encrypted_content,
        status: None,
        extra: Extra::new(),
    })
}

/// A flat function name as (namespace, function name) of the request's tools.
fn split_name<'a>(facts: &'a RequestFacts, flat_name: &'a str) -> (Option<&'a str>, &'a str) {
    match facts.namespaced.get(flat_name) {
        Some((ns, n)) => (Some(ns.as_str()), n.as_str()),
        None => (None, flat_name),
    }
}

fn function_call_item(
    facts: &RequestFacts,
    item_id: &str,
    call_id: &str,
    flat_name: &str,
    arguments: &str,
    status: &str,
) -> Item {
    let (namespace, name) = split_name(facts, flat_name);
    Item::FunctionCall(FunctionCallItem {
        kind: "function_call".into(),
        id: Some(item_id.to_owned()),
        call_id: call_id.to_owned(),
        name: name.to_owned(),
        namespace: namespace.map(str::to_owned),
        arguments: arguments.to_owned(),
        status: Some(status.into()),
        extra: Extra::new(),
    })
}

fn response_object(
    facts: &RequestFacts,
    id: &str,
    model: &str,
    created: u64,
    status: &str,
    output: Vec<Item>,
) -> Response {
    Response {
        id: id.to_owned(),
        object: "response".into(),
        created_at: created,
        status: status.into(),
        model: model.to_owned(),
        output,
        usage: None,
        error: None,
        incomplete_details: None,
        extra: facts.echo.clone(),
    }
}

/// Translates a whole chat completion into a response object.
pub fn from_chat(c: &ChatCompletion, facts: &RequestFacts) -> Response {
    let id = response_id(&c.id);
    let mut output = Vec::new();
    let choice = c.choices.first();
    if let Some(m) = choice.map(|c| &c.message) {
        push_message_items(m, facts, &id, &mut output);
    }
    let (status, incomplete) = status_for(choice.and_then(|c| c.finish_reason.as_deref()));
    let mut r = response_object(facts, &id, &c.model, c.created, status, output);
    r.incomplete_details = incomplete;
    r.usage = c.usage.as_ref().map(usage);
    r
}

fn push_message_items(m: &ChatMessage, facts: &RequestFacts, id: &str, output: &mut Vec<Item>) {
    let redacted = m
        .extra
        .get("redacted_reasoning_content")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if m.reasoning_content.is_some() || redacted.is_some() {
        let r = OpenReasoning {
            text: m.reasoning_content.clone().unwrap_or_default(),
            signature: m.reasoning_signature.clone(),
            redacted,
        };
        let rid = format!("rs_{}", id.trim_start_matches("resp_"));
        output.push(reasoning_item(&rid, &r, facts.summary, true));
    }
    let text = match &m.content {
        Some(ChatContent::Text(t)) => t.clone(),
        Some(ChatContent::Parts(p)) => p
            .iter()
            .filter_map(|p| match p {
                aigw_core::api::openai::ContentPart::Known(
                    aigw_core::api::openai::KnownContentPart::Text { text, .. },
                ) => Some(text.as_str()),
                _ => None,
            })
            .collect(),
        None => String::new(),
    };
    if !text.is_empty() {
        let mid = format!("msg_{}", id.trim_start_matches("resp_"));
        output.push(message_item(&mid, &text, "completed"));
    }
    for call in m.tool_calls.iter().flatten() {
        let args = call.function.arguments.as_str();
        output.push(function_call_item(
            facts,
            &format!("fc_{}", call.id),
            &call.id,
            &call.function.name,
            if args.trim().is_empty() { "{}" } else { args },
            "completed",
        ));
    }
}

#[derive(Debug, Default)]
struct OpenReasoning {
    text: String,
    signature: Option<String>,
    redacted: Option<String>,
}

// The open items keep their ids in JSON form only (written into every event); the
// plain id, needed only for summaries and stored responses, is made again from the
// response id and the output index ([`StreamEmitter::item_id`]) or the call id.
#[derive(Debug)]
enum Open {
    Reasoning {
        index: u32,
        id_json: Vec<u8>,
        state: OpenReasoning,
        part_open: bool,
    },
    Message {
        index: u32,
        id_json: Vec<u8>,
        text: String,
    },
}

#[derive(Debug)]
struct OpenCall {
    chat_index: u32,
    index: u32,
    /// `fc_` and the call id, in JSON form.
    item_id_json: Vec<u8>,
    call_id: String,
    name: String,
    arguments: String,
}

impl OpenCall {
    fn item_id(&self) -> String {
        ["fc_", self.call_id.as_str()].concat()
    }
}

/// The capacity an open item's text starts with: most items get more than one delta,
/// and growing from a delta's length reallocated on the next ones.
const TEXT_CAPACITY: usize = 64;

/// Writes a `response.output_text.delta` (with `content_index`) or
/// `response.function_call_arguments.delta` (without) event: the bytes serialising its
/// [`StreamEvent`] writes (the goldens hold them), without building one. These are
/// the per-token events of a stream.
#[inline(always)]
fn write_delta(
    out: &mut Vec<u8>,
    seq: u64,
    kind: &str,
    item_id: &[u8],
    output_index: u32,
    content_index: Option<u32>,
    delta: &str,
) {
    wire::item_head(out, seq, kind, item_id, output_index);
    if let Some(c) = content_index {
        out.extend_from_slice(b",\"content_index\":");
        push_num(out, u64::from(c));
    }
    out.extend_from_slice(b",\"delta\":");
    push_str(out, delta);
    if content_index.is_some() {
        out.extend_from_slice(b",\"logprobs\":[]");
    }
    out.extend_from_slice(b"}\n\n");
}

/// Writes a `response.reasoning_summary_text.delta` event, as [`write_delta`] does.
fn write_summary_delta(
    out: &mut Vec<u8>,
    seq: u64,
    item_id: &[u8],
    output_index: u32,
    delta: &str,
) {
    wire::item_head(
        out,
        seq,
        "response.reasoning_summary_text.delta",
        item_id,
        output_index,
    );
    out.extend_from_slice(b",\"summary_index\":0,\"delta\":");
    push_str(out, delta);
    out.extend_from_slice(b"}\n\n");
}

/// Renders a chat chunk stream as the Responses event stream.
#[derive(Debug)]
pub struct StreamEmitter {
    facts: Arc<RequestFacts>,
    id: String,
    model: String,
    created: u64,
    seq: u64,
    started: bool,
    finished: bool,
    output: Vec<Option<Item>>,
    open: Option<Open>,
    calls: Vec<OpenCall>,
    finish: Option<String>,
    usage: Option<Usage>,
    completed: Option<Response>,
    /// The echoed request parameters, serialised when the stream starts
    /// ([`wire::echo_tail`]).
    echo: Vec<u8>,
    /// Each output item's JSON once it is done (empty before), by output index.
    output_json: Vec<Vec<u8>>,
}

impl StreamEmitter {
    /// An emitter for one response.
    pub fn new(facts: Arc<RequestFacts>, created: u64) -> Self {
        Self {
            facts,
            id: String::new(),
            model: String::new(),
            created,
            seq: 0,
            started: false,
            finished: false,
            output: Vec::new(),
            open: None,
            calls: Vec::new(),
            finish: None,
            usage: None,
            completed: None,
            echo: Vec::new(),
            output_json: Vec::new(),
        }
    }

    /// The final response object, once the stream finished normally, if it is to be
    /// stored (`store` not `false`).
    pub const fn completed(&self) -> Option<&Response> {
        self.completed.as_ref()
    }

    /// Whether the terminal event has been sent.
    pub const fn finished(&self) -> bool {
        self.finished
    }

    /// The response id (once the stream started).
    pub fn response_id(&self) -> &str {
        &self.id
    }

    /// The output items completed so far, when the response is stored (`store` not
    /// `false`); empty otherwise (the stream's bytes are written without them).
    pub fn output_items(&self) -> Vec<Item> {
        self.output.iter().flatten().cloned().collect()
    }

    fn emit(&mut self, out: &mut Vec<u8>, kind: EventKind) {
        let ev = StreamEvent::new(self.seq, kind);
        self.seq += 1;
        crate::sse::encode_json(out, Some(ev.kind.name()), &ev);
    }

    /// A `response.*` event with the response object as it stands.
    fn emit_response(
        &mut self,
        out: &mut Vec<u8>,
        kind: &str,
        status: &str,
        usage: Option<&ResponseUsage>,
        error: Option<&Value>,
        incomplete: Option<&Value>,
    ) {
        let parts = wire::ResponseParts {
            id: &self.id,
            created: self.created,
            status,
            model: &self.model,
            output: &self.output_json,
            usage,
            error,
            incomplete,
            echo: &self.echo,
        };
        wire::response_event(out, self.seq, kind, &parts);
        self.seq += 1;
    }

    /// What a chunk with this head does before its deltas: the first one starts the
    /// response (`response.created`, `response.in_progress`).
    pub fn start(&mut self, out: &mut Vec<u8>, chat_id: &str, model: &str, created: u64) {
        if self.started {
            return;
        }
        self.started = true;
        if created > 0 {
            self.created = created;
        }
        self.id = response_id(chat_id);
        if self.facts.store {
            let id = std::mem::take(&mut self.id);
            self.id = super::store::with(|s| s.unique_id(id));
        }
        model.clone_into(&mut self.model);
        self.echo = wire::echo_tail(&self.facts.echo);
        let parts = wire::ResponseParts {
            id: &self.id,
            created: self.created,
            status: "in_progress",
            model: &self.model,
            output: &self.output_json,
            usage: None,
            error: None,
            incomplete: None,
            echo: &self.echo,
        };
        wire::opening_events(out, &mut self.seq, &parts);
    }

    fn next_index(&mut self) -> u32 {
        self.output.push(None);
        self.output_json.push(Vec::new());
        u32::try_from(self.output.len() - 1).unwrap_or(u32::MAX)
    }

    /// The response id without its `resp_` prefixes: `trim_start_matches("resp_")`,
    /// without building a substring searcher.
    fn id_base(&self) -> &str {
        let mut base = self.id.as_str();
        while let Some(rest) = base.strip_prefix("resp_") {
            base = rest;
        }
        base
    }

    /// `{prefix}{response id without resp_}_{index}`, the id of an output item
    /// (written without the formatting machinery: one per item of every stream).
    fn item_id(&self, prefix: &str, index: u32) -> String {
        let base = self.id_base();
        let mut id = Vec::with_capacity(prefix.len() + base.len() + 11);
        id.extend_from_slice(prefix.as_bytes());
        id.extend_from_slice(base.as_bytes());
        id.push(b'_');
        push_num(&mut id, u64::from(index));
        // Always valid: two strings, an underscore and digits.
        String::from_utf8(id).unwrap_or_default()
    }

    /// [`Self::item_id`] in JSON form, written without building the id first.
    fn item_id_json(&self, prefix: &str, index: u32) -> Vec<u8> {
        let base = self.id_base();
        let mut id = Vec::with_capacity(prefix.len() + base.len() + 16);
        push_prefixed_str(&mut id, prefix, base);
        // The underscore and the digits need no escaping: they go inside the quotes.
        id.pop();
        id.push(b'_');
        push_num(&mut id, u64::from(index));
        id.push(b'"');
        id
    }

    /// Handles one chat chunk (the `data:` JSON of one SSE event).
    pub fn chunk(&mut self, c: &Chunk<'_>, out: &mut Vec<u8>) {
        self.start(out, &c.id, &c.model, c.created);
        if let Some(u) = &c.usage {
            self.set_usage(u.clone());
        }
        for choice in c.choices.iter().filter(|ch| ch.index == 0) {
            self.delta(out, &choice.delta, choice.finish_reason.as_deref());
        }
    }

    /// Records the usage a chunk carries.
    pub fn set_usage(&mut self, usage: Usage) {
        self.usage = Some(usage);
    }

    /// A delta with only text: what [`Self::delta`] does with it.
    pub fn text(&mut self, out: &mut Vec<u8>, text: &str) {
        if !text.is_empty() {
            self.text_delta(out, text);
        }
    }

    /// A delta with only reasoning text: what [`Self::delta`] does with it.
    pub fn reasoning(&mut self, out: &mut Vec<u8>, text: &str) {
        if !text.is_empty() {
            self.reasoning_delta(out, text);
        }
    }

    /// A delta with only a reasoning signature: what [`Self::delta`] does with it.
    pub fn signature(&mut self, out: &mut Vec<u8>, signature: &str) {
        self.ensure_reasoning(out);
        if let Some(Open::Reasoning { state, .. }) = &mut self.open {
            state
                .signature
                .get_or_insert_with(String::new)
                .push_str(signature);
        }
    }

    /// A delta with only one tool-call piece: what [`Self::delta`] does with it.
    pub fn tool_call(&mut self, out: &mut Vec<u8>, tc: &ToolCall<'_>) {
        self.tool_delta(out, tc);
    }

    /// Handles the delta (and finish reason) of a chunk's first choice.
    pub fn delta(&mut self, out: &mut Vec<u8>, d: &Delta<'_>, finish: Option<&str>) {
        if let Some(r) = d.reasoning_content.as_deref().filter(|r| !r.is_empty()) {
            self.reasoning_delta(out, r);
        }
        if let Some(s) = &d.reasoning_signature {
            self.ensure_reasoning(out);
            if let Some(Open::Reasoning { state, .. }) = &mut self.open {
                state.signature.get_or_insert_with(String::new).push_str(s);
            }
        }
        if let Some(data) = d
            .redacted_reasoning_content
            .as_ref()
            .and_then(Value::as_str)
        {
            self.ensure_reasoning(out);
            if let Some(Open::Reasoning { state, .. }) = &mut self.open {
                state.redacted = Some(data.to_owned());
            }
        }
        if let Some(t) = d.content.as_deref().filter(|t| !t.is_empty()) {
            self.text_delta(out, t);
        }
        for tc in d.tool_calls.iter().flatten() {
            self.tool_delta(out, tc);
        }
        if let Some(f) = finish {
            self.finish = Some(f.to_owned());
        }
    }

    fn ensure_reasoning(&mut self, out: &mut Vec<u8>) {
        if matches!(self.open, Some(Open::Reasoning { .. })) {
            return;
        }
        self.close_open(out);
        self.close_calls(out);
        let index = self.next_index();
        let id_json = self.item_id_json("rs_", index);
        let state = OpenReasoning {
            text: String::with_capacity(TEXT_CAPACITY),
            ..OpenReasoning::default()
        };
        // A new item: no summary, no sealed content yet.
        wire::reasoning_added(out, self.seq, index, &id_json);
        self.seq += 1;
        self.open = Some(Open::Reasoning {
            index,
            id_json,
            state,
            part_open: false,
        });
    }

    fn reasoning_delta(&mut self, out: &mut Vec<u8>, text: &str) {
        self.ensure_reasoning(out);
        let summary = self.facts.summary;
        let Some(Open::Reasoning {
            index,
            state,
            part_open,
            ..
        }) = &mut self.open
        else {
            return;
        };
        state.text.push_str(text);
        if !summary {
            return;
        }
        let (index, first) = (*index, !*part_open);
        *part_open = true;
        if first {
            let item_id = self.item_id("rs_", index);
            self.emit(
                out,
                EventKind::ReasoningSummaryPartAdded {
                    item_id,
                    output_index: index,
                    summary_index: 0,
                    part: summary_text(""),
                },
            );
        }
        let Some(Open::Reasoning { id_json, .. }) = &self.open else {
            return;
        };
        let seq = self.seq;
        self.seq += 1;
        write_summary_delta(out, seq, id_json, index, text);
    }

    fn text_delta(&mut self, out: &mut Vec<u8>, text: &str) {
        if !matches!(self.open, Some(Open::Message { .. })) {
            self.close_open(out);
            self.close_calls(out);
            let index = self.next_index();
            let id_json = self.item_id_json("msg_", index);
            wire::message_added(out, &mut self.seq, &id_json, index);
            self.open = Some(Open::Message {
                index,
                id_json,
                text: String::with_capacity(TEXT_CAPACITY),
            });
        }
        if let Some(Open::Message {
            index,
            id_json,
            text: t,
            ..
        }) = &mut self.open
        {
            t.push_str(text);
            let seq = self.seq;
            self.seq += 1;
            write_delta(
                out,
                seq,
                "response.output_text.delta",
                id_json,
                *index,
                Some(0),
                text,
            );
        }
    }

    fn tool_delta(&mut self, out: &mut Vec<u8>, tc: &ToolCall<'_>) {
        let pos = self.calls.iter().position(|c| c.chat_index == tc.index);
        let pos = match pos {
            Some(p) => p,
            None => {
                self.close_open(out);
                let index = self.next_index();
                let call_id = tc
                    .id
                    .as_deref()
                    .map_or_else(|| format!("call_{index}"), str::to_owned);
                let name = tc
                    .function
                    .as_ref()
                    .and_then(|f| f.name.as_deref())
                    .unwrap_or_default()
                    .to_owned();
                let mut item_id_json = Vec::with_capacity(call_id.len() + 8);
                push_prefixed_str(&mut item_id_json, "fc_", &call_id);
                let (namespace, flat) = split_name(&self.facts, &name);
                let call = wire::FunctionCall {
                    item_id: &item_id_json,
                    call_id: &call_id,
                    name: flat,
                    namespace,
                    status: "in_progress",
                };
                wire::function_call_added(out, self.seq, index, &call);
                self.seq += 1;
                self.calls.push(OpenCall {
                    chat_index: tc.index,
                    index,
                    item_id_json,
                    call_id,
                    name,
                    arguments: String::new(),
                });
                self.calls.len() - 1
            }
        };
        let Some(args) = tc
            .function
            .as_ref()
            .and_then(|f| f.arguments.as_deref())
            .filter(|a| !a.is_empty())
        else {
            return;
        };
        let call = &mut self.calls[pos];
        call.arguments.push_str(args);
        let seq = self.seq;
        self.seq += 1;
        write_delta(
            out,
            seq,
            "response.function_call_arguments.delta",
            &call.item_id_json,
            call.index,
            None,
            args,
        );
    }

    fn close_open(&mut self, out: &mut Vec<u8>) {
        match self.open.take() {
            None => {}
            Some(Open::Message {
                index,
                id_json,
                text,
            }) => {
                let item = wire::message_done(out, &mut self.seq, &id_json, index, &text);
                let slot = index as usize;
                if let Some(s) = self.output_json.get_mut(slot) {
                    *s = item;
                }
                // Only a stored response needs the item as a value.
                if self.facts.store {
                    let id = self.item_id("msg_", index);
                    if let Some(s) = self.output.get_mut(slot) {
                        *s = Some(message_item(&id, &text, "completed"));
                    }
                }
            }
            Some(Open::Reasoning {
                index,
                id_json,
                state,
                part_open,
            }) => {
                let id = if part_open || self.facts.store {
                    self.item_id("rs_", index)
                } else {
                    String::new()
                };
                if part_open {
                    self.emit(
                        out,
                        EventKind::ReasoningSummaryTextDone {
                            item_id: id.clone(),
                            output_index: index,
                            summary_index: 0,
                            text: state.text.clone(),
                        },
                    );
                    self.emit(
                        out,
                        EventKind::ReasoningSummaryPartDone {
                            item_id: id.clone(),
                            output_index: index,
                            summary_index: 0,
                            part: summary_text(&state.text),
                        },
                    );
                }
                let summary = self.facts.summary;
                let sealed = sealed_content(&state, true);
                let json = wire::reasoning_item(
                    &id_json,
                    summary_of(&state, summary, true),
                    sealed.as_deref(),
                );
                let item = self
                    .facts
                    .store
                    .then(|| reasoning_item_sealed(&id, &state, summary, true, sealed));
                self.done_item(out, index, json, item);
            }
        }
    }

    fn close_calls(&mut self, out: &mut Vec<u8>) {
        for mut call in std::mem::take(&mut self.calls) {
            // A call without arguments (a tool with no parameters) still gets a JSON
            // object, as OpenAI sends: clients parse `arguments` as JSON.
            if call.arguments.trim().is_empty() {
                call.arguments = "{}".to_owned();
                let ev = EventKind::FunctionCallArgumentsDelta {
                    item_id: call.item_id(),
                    output_index: call.index,
                    delta: call.arguments.clone(),
                };
                self.emit(out, ev);
            }
            // The item first, its arguments escaped once; the `.done` event copies them.
            let (namespace, name) = split_name(&self.facts, &call.name);
            let done = wire::FunctionCall {
                item_id: &call.item_id_json,
                call_id: &call.call_id,
                name,
                namespace,
                status: "completed",
            };
            // The fixed bytes, the strings, and room for the arguments' escapes.
            let strings = call.item_id_json.len() + call.call_id.len() + call.name.len();
            let mut json = Vec::with_capacity(strings + 2 * call.arguments.len() + 144);
            let args = wire::push_function_call(&mut json, &done, |o| {
                push_str(o, &call.arguments);
            });
            wire::arguments_done(out, self.seq, &call.item_id_json, call.index, &json[args]);
            self.seq += 1;
            let item = self.facts.store.then(|| {
                function_call_item(
                    &self.facts,
                    &call.item_id(),
                    &call.call_id,
                    &call.name,
                    &call.arguments,
                    "completed",
                )
            });
            self.done_item(out, call.index, json, item);
        }
    }

    /// `response.output_item.done` with the item's bytes; the item as a value is
    /// kept only when the response is stored.
    fn done_item(&mut self, out: &mut Vec<u8>, index: u32, json: Vec<u8>, item: Option<Item>) {
        wire::item_done(out, self.seq, index, &json);
        self.seq += 1;
        if let Some(slot) = self.output_json.get_mut(index as usize) {
            *slot = json;
        }
        if let Some(slot) = self.output.get_mut(index as usize) {
            *slot = item;
        }
    }

    /// About the size of the events that close the open items and the response (each
    /// item's content three or four times, every item once more in the response):
    /// reserved at once, the output buffer grew by reallocation several times here.
    pub fn closing_size(&self) -> usize {
        let open = match &self.open {
            Some(Open::Message { text, .. }) => 4 * text.len() + 1024,
            Some(Open::Reasoning { state, .. }) => {
                let signature = state.signature.as_ref().map_or(0, String::len);
                4 * (state.text.len() + signature) + 1024
            }
            None => 0,
        };
        let calls: usize = (self.calls.iter())
            .map(|c| 4 * (c.arguments.len() + c.name.len()) + 768)
            .sum();
        let done: usize = self.output_json.iter().map(Vec::len).sum();
        open + calls + done + self.echo.len() + 768
    }

    /// Ends the stream normally: closes open items and sends `response.completed` (or
    /// `response.incomplete`).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.start(out, "", "", 0);
        out.reserve(self.closing_size());
        self.close_open(out);
        self.close_calls(out);
        self.finished = true;
        let (status, incomplete) = status_for(self.finish.as_deref());
        let u = self.usage.as_ref().map(usage);
        let kind = if status == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.emit_response(out, kind, status, u.as_ref(), None, incomplete.as_ref());
        // Only a stored response needs the object (the bytes above are the event).
        if self.facts.store {
            let output = self.output.iter().flatten().cloned().collect();
            let mut r = response_object(
                &self.facts,
                &self.id,
                &self.model,
                self.created,
                status,
                output,
            );
            r.incomplete_details = incomplete;
            r.usage = u;
            self.completed = Some(r);
        }
    }

    /// Ends the stream with a failure (an upstream error mid-stream): `response.failed`
    /// with the error, after the items produced so far.
    pub fn fail(&mut self, out: &mut Vec<u8>, error: &Value) {
        if self.finished {
            return;
        }
        self.start(out, "", "", 0);
        self.finished = true;
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("upstream error");
        let code = error
            .get("code")
            .and_then(Value::as_str)
            .or_else(|| error.get("type").and_then(Value::as_str))
            .unwrap_or("server_error");
        let error = json!({"code": code, "message": message});
        let u = self.usage.as_ref().map(usage);
        self.emit_response(
            out,
            "response.failed",
            "failed",
            u.as_ref(),
            Some(&error),
            None,
        );
    }
}
