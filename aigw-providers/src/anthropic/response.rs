//! Anthropic Messages response (whole or streamed) → OpenAI Chat Completions.
//!
//! Shared by native Anthropic, GCPAnthropic and (for the Bedrock translators)
//! AWSAnthropic: [`messages_to_chat`] for a whole response, [`ChatStreamEncoder`] for
//! stream events (feed it decoded [`an::StreamEvent`]s; it writes OpenAI SSE bytes).

use super::handoff::{ChatPiece, ChunkDelta, ChunkSink, ToolCallPiece};
use super::request::ChatToMessagesInfo;
use aigw_core::TokenUsage;
use aigw_core::api::anthropic as an;
use aigw_core::api::openai as oa;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashMap;

/// Maps an Anthropic `stop_reason` to an OpenAI `finish_reason`.
pub fn finish_reason(stop_reason: &str, json_tool: bool) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" if !json_tool => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// Anthropic usage as OpenAI usage (prompt tokens include cache reads and writes).
pub fn usage_to_openai(u: &an::Usage) -> oa::Usage {
    let t = u.to_token_usage();
    let prompt = t.input.unwrap_or(0);
    let completion = t.output.unwrap_or(0);
    let details = (u.cache_read_input_tokens.is_some() || u.cache_creation_input_tokens.is_some())
        .then(|| oa::PromptTokensDetails {
            cached_tokens: u.cache_read_input_tokens,
            cache_creation_tokens: u.cache_creation_input_tokens,
            ..Default::default()
        });
    oa::Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        prompt_tokens_details: details,
        completion_tokens_details: None,
        extra: Map::new(),
    }
}

/// Folds a newer (cumulative) Anthropic usage report into `acc`.
pub fn merge_usage(acc: &mut an::Usage, newer: &an::Usage) {
    fn take(a: &mut Option<u64>, b: Option<u64>) {
        if b.is_some() {
            *a = b;
        }
    }
    take(&mut acc.input_tokens, newer.input_tokens);
    take(&mut acc.output_tokens, newer.output_tokens);
    take(
        &mut acc.cache_read_input_tokens,
        newer.cache_read_input_tokens,
    );
    take(
        &mut acc.cache_creation_input_tokens,
        newer.cache_creation_input_tokens,
    );
}

/// Converts a whole Messages response into a chat completion.
pub fn messages_to_chat(
    resp: an::MessagesResponse,
    info: &ChatToMessagesInfo,
    created: u64,
) -> oa::ChatCompletion {
    let mut text = String::new();
    let mut reasoning: Option<String> = None;
    let mut signature: Option<String> = None;
    let mut redacted: Vec<Value> = Vec::new();
    let mut calls = Vec::new();
    let mut json_tool_used = false;
    for block in resp.content {
        let an::ContentBlock::Known(b) = block else {
            continue;
        };
        match b {
            an::KnownBlock::Text { text: t, .. } => text.push_str(&t),
            an::KnownBlock::Thinking {
                thinking,
                signature: s,
                ..
            } => {
                reasoning
                    .get_or_insert_with(String::new)
                    .push_str(&thinking);
                if s.is_some() {
                    signature = s;
                }
            }
            an::KnownBlock::RedactedThinking { data, .. } => redacted.push(Value::String(data)),
            an::KnownBlock::ToolUse {
                id, name, input, ..
            } => {
                if info.json_tool.as_deref() == Some(name.as_str()) {
                    text.push_str(&input.to_string());
                    json_tool_used = true;
                } else {
                    calls.push(oa::ToolCall {
                        id,
                        kind: "function".into(),
                        function: oa::FunctionCall {
                            name,
                            arguments: input.to_string(),
                            extra: Map::new(),
                        },
                        extra: Map::new(),
                    });
                }
            }
            an::KnownBlock::Image { .. } | an::KnownBlock::ToolResult { .. } => {}
        }
    }
    let mut message = oa::ChatMessage::text(oa::Role::Assistant, text);
    if calls.is_empty() {
        if let Some(oa::MessageContent::Text(t)) = &message.content
            && t.is_empty()
            && reasoning.is_some()
        {
            message.content = Some(oa::MessageContent::Text(String::new()));
        }
    } else {
        if matches!(&message.content, Some(oa::MessageContent::Text(t)) if t.is_empty()) {
            message.content = None;
        }
        message.tool_calls = Some(calls);
    }
    message.reasoning_content = reasoning;
    message.reasoning_signature = signature;
    if !redacted.is_empty() {
        // Only the last one survives a round trip; providers send at most one per turn.
        if let Some(Value::String(d)) = redacted.pop() {
            message
                .extra
                .insert("redacted_reasoning_content".into(), Value::String(d));
        }
    }
    let finish = resp
        .stop_reason
        .as_deref()
        .map(|r| finish_reason(r, json_tool_used).to_owned());
    oa::ChatCompletion {
        id: resp.id,
        object: "chat.completion".into(),
        created,
        model: resp.model,
        choices: vec![oa::ChatChoice {
            index: 0,
            message,
            finish_reason: finish,
            logprobs: None,
            extra: Map::new(),
        }],
        usage: Some(usage_to_openai(&resp.usage)),
        system_fingerprint: None,
        extra: Map::new(),
    }
}

/// Anthropic stream events → OpenAI `chat.completion.chunk` SSE.
#[derive(Debug, Default)]
pub struct ChatStreamEncoder {
    info: ChatToMessagesInfo,
    created: u64,
    /// Emit the final usage-only chunk (the client asked for it).
    include_usage: bool,
    id: String,
    model: String,
    usage: an::Usage,
    /// Anthropic block index → OpenAI tool-call index.
    tool_index: HashMap<u32, u32>,
    next_tool: u32,
    json_blocks: Vec<u32>,
    json_tool_used: bool,
    finish: Option<String>,
    done: bool,
    /// The bytes every chunk starts with (see [`Self::chunk_head`]); empty until built.
    head: Vec<u8>,
    /// Where chunks go as values instead of bytes (see [`super::handoff`]).
    sink: Option<ChunkSink>,
}

impl ChatStreamEncoder {
    /// An encoder; `include_usage` when the client asked for `stream_options.include_usage`.
    pub fn new(info: ChatToMessagesInfo, created: u64, include_usage: bool) -> Self {
        Self {
            info,
            created,
            include_usage,
            ..Default::default()
        }
    }

    /// Queues the chunks on `sink` as values instead of writing them.
    #[must_use]
    pub fn with_sink(mut self, sink: Option<ChunkSink>) -> Self {
        self.sink = sink;
        self
    }

    /// Cumulative usage seen so far.
    pub fn usage(&self) -> TokenUsage {
        self.usage.to_token_usage()
    }

    /// The model from `message_start`.
    pub fn model(&self) -> Option<&str> {
        (!self.model.is_empty()).then_some(self.model.as_str())
    }

    /// Whether `message_stop` has been translated.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn write(&mut self, out: &mut Vec<u8>, delta: OutDelta<'_>, finish: Option<&str>) {
        if self.head.is_empty() {
            self.head = self.chunk_head();
            self.push_head();
        }
        if let Some(sink) = &self.sink {
            sink.push(ChatPiece::Delta {
                delta: delta.to_owned_delta(),
                finish: finish.map(str::to_owned),
            });
            return;
        }
        out.extend_from_slice(&self.head);
        let choice = OutChoice {
            index: 0,
            delta,
            finish_reason: finish,
        };
        // Serialising our own wire types into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &choice);
        out.extend_from_slice(b"]}\n\n");
    }

    /// With a sink: the head the chunks from here on carry.
    fn push_head(&self) {
        if let Some(sink) = &self.sink {
            sink.push(ChatPiece::Head {
                id: self.id.clone(),
                model: self.model.clone(),
                created: self.created,
            });
        }
    }

    /// `data: ` and an [`OutChunk`] without usage up to its first choice, as serde
    /// writes it: the same for every chunk of the stream, so its strings are escaped
    /// once rather than per token.
    fn chunk_head(&self) -> Vec<u8> {
        let mut head = Vec::with_capacity(96 + self.id.len() + self.model.len());
        crate::sse::encode_json(
            &mut head,
            None,
            &OutChunk {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: &self.model,
                choices: &[],
                usage: None,
            },
        );
        // `…"choices":[]}\n\n` → `…"choices":[`
        head.truncate(head.len().saturating_sub(4));
        head
    }

    /// Translates one event's JSON text (the `data:` of an Anthropic stream event),
    /// appending OpenAI SSE bytes to `out`. Returns `false` when the text is not an
    /// event (it is then skipped).
    pub fn on_data(&mut self, data: &str, out: &mut Vec<u8>) -> bool {
        let Ok(ev) = serde_json::from_str::<LeanEvent<'_>>(data) else {
            return false;
        };
        match ev.kind.as_ref() {
            "message_start" => {
                if let Some(m) = ev.message {
                    self.id = m.id.into_owned();
                    self.model = m.model.into_owned();
                    self.head.clear();
                    merge_usage(&mut self.usage, &m.usage);
                }
                self.write(
                    out,
                    OutDelta {
                        role: Some("assistant"),
                        content: Some(""),
                        ..Default::default()
                    },
                    None,
                );
            }
            "content_block_start" => {
                let Some(block) = ev.content_block else {
                    return true;
                };
                match block.kind.as_ref() {
                    "tool_use" => {
                        let name = block.name.as_deref().unwrap_or_default();
                        if self.info.json_tool.as_deref() == Some(name) {
                            self.json_blocks.push(ev.index);
                            self.json_tool_used = true;
                            return true;
                        }
                        let n = self.next_tool;
                        self.next_tool += 1;
                        self.tool_index.insert(ev.index, n);
                        let calls = [OutToolCall {
                            index: n,
                            id: block.id.as_deref(),
                            kind: Some("function"),
                            function: OutFunction {
                                name: Some(name),
                                arguments: Some(""),
                            },
                        }];
                        self.write(
                            out,
                            OutDelta {
                                tool_calls: Some(&calls),
                                ..Default::default()
                            },
                            None,
                        );
                    }
                    "text" => {
                        if let Some(t) = block.text.as_deref().filter(|t| !t.is_empty()) {
                            self.write(
                                out,
                                OutDelta {
                                    content: Some(t),
                                    ..Default::default()
                                },
                                None,
                            );
                        }
                    }
                    "redacted_thinking" => {
                        if let Some(d) = block.data.as_deref() {
                            self.write(
                                out,
                                OutDelta {
                                    redacted_reasoning_content: Some(d),
                                    ..Default::default()
                                },
                                None,
                            );
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let Some(d) = ev.delta else { return true };
                let delta = match d.kind.as_deref() {
                    Some("text_delta") => OutDelta {
                        content: d.text.as_deref(),
                        ..Default::default()
                    },
                    Some("thinking_delta") => OutDelta {
                        reasoning_content: d.thinking.as_deref(),
                        ..Default::default()
                    },
                    Some("signature_delta") => OutDelta {
                        reasoning_signature: d.signature.as_deref(),
                        ..Default::default()
                    },
                    Some("input_json_delta") => {
                        let Some(partial) = d.partial_json.as_deref().filter(|p| !p.is_empty())
                        else {
                            return true;
                        };
                        if self.json_blocks.contains(&ev.index) {
                            OutDelta {
                                content: Some(partial),
                                ..Default::default()
                            }
                        } else {
                            let Some(&n) = self.tool_index.get(&ev.index) else {
                                return true;
                            };
                            let calls = [OutToolCall {
                                index: n,
                                id: None,
                                kind: None,
                                function: OutFunction {
                                    name: None,
                                    arguments: Some(partial),
                                },
                            }];
                            self.write(
                                out,
                                OutDelta {
                                    tool_calls: Some(&calls),
                                    ..Default::default()
                                },
                                None,
                            );
                            return true;
                        }
                    }
                    _ => return true,
                };
                self.write(out, delta, None);
            }
            "message_delta" => {
                if let Some(u) = &ev.usage {
                    merge_usage(&mut self.usage, u);
                }
                if let Some(r) = ev.delta.and_then(|d| d.stop_reason) {
                    let f = finish_reason(&r, self.json_tool_used);
                    self.finish = Some(f.to_owned());
                    self.write(out, OutDelta::default(), Some(f));
                }
            }
            "message_stop" => {
                if let Some(sink) = self.sink.as_ref().filter(|_| self.include_usage) {
                    if self.head.is_empty() {
                        self.head = self.chunk_head();
                        self.push_head();
                    }
                    sink.push(ChatPiece::Usage(usage_to_openai(&self.usage)));
                } else if self.include_usage {
                    let usage = usage_to_openai(&self.usage);
                    crate::sse::encode_json(
                        out,
                        None,
                        &OutChunk {
                            id: &self.id,
                            object: "chat.completion.chunk",
                            created: self.created,
                            model: &self.model,
                            choices: &[],
                            usage: Some(&usage),
                        },
                    );
                }
                crate::sse::encode_done(out);
                self.done = true;
            }
            "error" => {
                let Some(error) = ev.error else { return true };
                let status = match error.kind.as_str() {
                    "overloaded_error" => 529,
                    "rate_limit_error" => 429,
                    "invalid_request_error" => 400,
                    _ => 500,
                };
                let e = crate::error_map::UpstreamError {
                    kind: Some(error.kind),
                    family: crate::error_map::ErrorFamily::Anthropic,
                    ..crate::error_map::UpstreamError::new(
                        http::StatusCode::from_u16(status)
                            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
                        error.message,
                    )
                };
                let bytes = crate::error_map::stream_error_event(aigw_core::ClientApi::OpenAI, &e);
                match &self.sink {
                    Some(sink) => sink.push(ChatPiece::Raw(bytes.to_vec())),
                    None => out.extend_from_slice(&bytes),
                }
            }
            _ => {}
        }
        true
    }
}

// Lean, borrowing views of an Anthropic stream event, and of the OpenAI chunk written
// for it: no `flatten` buffering on the per-event path.

#[derive(Deserialize)]
struct LeanEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    index: u32,
    #[serde(borrow, default)]
    delta: Option<LeanDelta<'a>>,
    #[serde(borrow, default)]
    content_block: Option<LeanBlock<'a>>,
    #[serde(borrow, default)]
    message: Option<LeanMessage<'a>>,
    #[serde(default)]
    usage: Option<an::Usage>,
    #[serde(default)]
    error: Option<an::ErrorDetail>,
}

#[derive(Deserialize)]
struct LeanDelta<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct LeanBlock<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct LeanMessage<'a> {
    #[serde(borrow, default)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    #[serde(default)]
    usage: an::Usage,
}

#[derive(Serialize)]
struct OutChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [OutChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<&'a oa::Usage>,
}

#[derive(Serialize)]
struct OutChoice<'a> {
    index: u32,
    delta: OutDelta<'a>,
    finish_reason: Option<&'a str>,
}

#[derive(Default, Serialize)]
struct OutDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_signature: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<&'a [OutToolCall<'a>]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redacted_reasoning_content: Option<&'a str>,
}

impl OutDelta<'_> {
    fn to_owned_delta(&self) -> ChunkDelta {
        ChunkDelta {
            content: self.content.map(str::to_owned),
            reasoning_content: self.reasoning_content.map(str::to_owned),
            reasoning_signature: self.reasoning_signature.map(str::to_owned),
            redacted_reasoning_content: self.redacted_reasoning_content.map(str::to_owned),
            tool_call: self
                .tool_calls
                .and_then(|c| c.first())
                .map(|c| ToolCallPiece {
                    index: c.index,
                    id: c.id.map(str::to_owned),
                    name: c.function.name.map(str::to_owned),
                    arguments: c.function.arguments.map(str::to_owned),
                }),
        }
    }
}

#[derive(Serialize)]
struct OutToolCall<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: OutFunction<'a>,
}

#[derive(Serialize)]
struct OutFunction<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<&'a str>,
}
