//! The Responses stream rendered from a backend's neutral events.
//!
//! For the backends whose chat translator works on [`canonical::Event`]s (Bedrock
//! Converse, Claude on InvokeModel, Gemini), the translator queues its events on an
//! [`EventSink`] and [`EventRenderer`] drives the Responses [`StreamEmitter`] with the
//! deltas its chat writer (`canonical::emit`'s OpenAI chunk writer) would have written,
//! as typed values: the same decisions in the same order, so the same Responses bytes,
//! without writing the chat chunks, decoding them as SSE and parsing them again.

use super::chunk::{Delta, Function, ToolCall};
use super::response::StreamEmitter;
use crate::canonical::sink::{EventSink, StreamHead};
use crate::canonical::{self, Event, emit};
use aigw_core::translate::TranslatorSpec;
use aigw_core::{ApiSchema, ClientApi, TokenUsage, Translator};
use serde_json::Value;
use std::borrow::Cow;

/// The chat translator of a backend that can hand its stream over as events, queuing
/// them on `sink`; `None` for the others.
pub fn chat_translator(spec: &TranslatorSpec<'_>, sink: &EventSink) -> Option<Box<dyn Translator>> {
    let ovr = spec.model_override;
    let sink = sink.clone();
    Some(match spec.schema.name {
        ApiSchema::AWSBedrock => Box::new(
            crate::bedrock::ConverseTranslator::new(ClientApi::OpenAI, ovr).with_event_sink(sink),
        ),
        ApiSchema::AWSAnthropic => Box::new(
            crate::bedrock::InvokeTranslator::new(
                ClientApi::OpenAI,
                ovr,
                spec.schema.version.as_deref(),
            )
            .with_event_sink(sink),
        ),
        ApiSchema::GCPVertexAI => Box::new(
            crate::vertex::GeminiTranslator::new(ClientApi::OpenAI, ovr).with_event_sink(sink),
        ),
        _ => return None,
    })
}

/// Replays the state of the chat chunk writer (started, tool indexes, usage, end)
/// over the events, calling the emitter where a chunk would have reached it.
#[derive(Debug, Default)]
pub struct EventRenderer {
    head: Option<StreamHead>,
    /// `chatcmpl-` + the head's id, as the chunks carried it.
    chat_id: String,
    started: bool,
    /// Backend block index → chat tool-call index.
    tools: Vec<(u32, u32)>,
    usage: Option<TokenUsage>,
    done: bool,
    failed: bool,
}

impl EventRenderer {
    /// Takes the stream's head, once the translator has opened it.
    pub fn set_head(&mut self, head: StreamHead) {
        self.chat_id = ["chatcmpl-", head.id.as_str()].concat();
        self.head = Some(head);
    }

    /// What every chunk does first: starts the response on the first one.
    fn head(&self, em: &mut StreamEmitter, out: &mut Vec<u8>) {
        let (model, created) = self
            .head
            .as_ref()
            .map_or(("", 0), |h| (h.model.as_str(), h.created));
        em.start(out, &self.chat_id, model, created);
    }

    fn ensure_started(&mut self, em: &mut StreamEmitter, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            // The role chunk's empty content adds nothing but the start.
            self.head(em, out);
        }
    }

    fn send(&self, em: &mut StreamEmitter, out: &mut Vec<u8>, d: &Delta<'_>, finish: Option<&str>) {
        self.head(em, out);
        em.delta(out, d, finish);
    }

    /// Renders one event; returns the error object of an upstream failure (the
    /// `error` member of the chunk writer's error event), which the caller reports.
    pub fn event(
        &mut self,
        ev: &Event,
        em: &mut StreamEmitter,
        out: &mut Vec<u8>,
    ) -> Option<Value> {
        if self.done || self.failed {
            return None;
        }
        // A delta with one member goes to the emitter's method for it: what `delta`
        // does with such a delta, without building one (a tool call's piece in a
        // vector of its own).
        match ev {
            Event::Start => self.ensure_started(em, out),
            Event::TextDelta { text, .. } => {
                self.ensure_started(em, out);
                self.head(em, out);
                em.text(out, text);
            }
            Event::ThinkingDelta { text, .. } => {
                self.ensure_started(em, out);
                self.head(em, out);
                em.reasoning(out, text);
            }
            Event::SignatureDelta { signature, .. } => {
                self.ensure_started(em, out);
                self.head(em, out);
                em.signature(out, signature);
            }
            Event::RedactedThinking { .. } | Event::BlockStop { .. } => {}
            Event::ToolStart { index, id, name } => {
                self.ensure_started(em, out);
                let k = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
                self.tools.push((*index, k));
                self.head(em, out);
                em.tool_call(out, &tool_call(k, Some(id), Some(name), ""));
            }
            Event::ToolDelta { index, json } => {
                let k = self
                    .tools
                    .iter()
                    .find(|(b, _)| b == index)
                    .map(|(_, k)| *k)?;
                self.head(em, out);
                em.tool_call(out, &tool_call(k, None, None, json));
            }
            Event::Stop(reason) => {
                self.ensure_started(em, out);
                self.send(em, out, &Delta::default(), Some(reason.openai()));
            }
            Event::Usage(u) => self.usage.get_or_insert_with(TokenUsage::default).update(u),
            Event::Error {
                status,
                kind,
                message,
            } => {
                self.failed = true;
                let mut v = canonical::error_value(ClientApi::OpenAI, *status, kind, message);
                return Some(v.get_mut("error").map(Value::take).unwrap_or(Value::Null));
            }
        }
        None
    }

    /// The end of the chat stream (its writer's `finish`): the usage chunk, if asked for.
    pub fn finish(&mut self, em: &mut StreamEmitter, out: &mut Vec<u8>) {
        if self.done || self.failed {
            return;
        }
        self.done = true;
        let include = self.head.as_ref().is_some_and(|h| h.include_usage);
        if let Some(u) = self.usage.filter(|_| include) {
            self.head(em, out);
            em.set_usage(emit::openai_usage_typed(&u));
        }
    }
}

fn tool_call<'a>(
    index: u32,
    id: Option<&'a str>,
    name: Option<&'a str>,
    arguments: &'a str,
) -> ToolCall<'a> {
    ToolCall::new(
        index,
        id.map(Cow::Borrowed),
        Some(Function {
            name: name.map(Cow::Borrowed),
            arguments: Some(Cow::Borrowed(arguments)),
        }),
    )
}
