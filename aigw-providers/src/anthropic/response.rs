//! Anthropic Messages response (whole or streamed) → OpenAI Chat Completions.
//!
//! Shared by native Anthropic, GCPAnthropic and (for the Bedrock translators)
//! AWSAnthropic: [`messages_to_chat`] for a whole response, [`ChatStreamEncoder`] for
//! stream events (feed it decoded [`an::StreamEvent`]s; it writes OpenAI SSE bytes).

use super::request::ChatToMessagesInfo;
use aigw_core::TokenUsage;
use aigw_core::api::anthropic as an;
use aigw_core::api::openai as oa;
use serde_json::{Map, Value};
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

    fn chunk(&self, delta: oa::ChunkDelta, finish: Option<String>) -> oa::ChatCompletionChunk {
        oa::ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![oa::ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
                logprobs: None,
                extra: Map::new(),
            }],
            usage: None,
            system_fingerprint: None,
            extra: Map::new(),
        }
    }

    fn emit(&self, out: &mut Vec<u8>, delta: oa::ChunkDelta) {
        crate::sse::encode_json(out, None, &self.chunk(delta, None));
    }

    /// Translates one event, appending OpenAI SSE bytes to `out`.
    pub fn on_event(&mut self, event: an::StreamEvent, out: &mut Vec<u8>) {
        let an::StreamEvent::Known(event) = event else {
            return;
        };
        match event {
            an::KnownStreamEvent::MessageStart { message } => {
                self.id = message.id;
                self.model = message.model;
                merge_usage(&mut self.usage, &message.usage);
                self.emit(
                    out,
                    oa::ChunkDelta {
                        role: Some(oa::Role::Assistant),
                        content: Some(String::new()),
                        ..Default::default()
                    },
                );
            }
            an::KnownStreamEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                let an::ContentBlock::Known(block) = content_block else {
                    return;
                };
                match block {
                    an::KnownBlock::ToolUse { id, name, .. } => {
                        if self.info.json_tool.as_deref() == Some(name.as_str()) {
                            self.json_blocks.push(index);
                            self.json_tool_used = true;
                            return;
                        }
                        let n = self.next_tool;
                        self.next_tool += 1;
                        self.tool_index.insert(index, n);
                        self.emit(
                            out,
                            oa::ChunkDelta {
                                tool_calls: Some(vec![oa::ToolCallDelta {
                                    index: n,
                                    id: Some(id),
                                    kind: Some("function".into()),
                                    function: Some(oa::FunctionCallDelta {
                                        name: Some(name),
                                        arguments: Some(String::new()),
                                        extra: Map::new(),
                                    }),
                                    extra: Map::new(),
                                }]),
                                ..Default::default()
                            },
                        );
                    }
                    an::KnownBlock::Text { text, .. } if !text.is_empty() => {
                        self.emit(
                            out,
                            oa::ChunkDelta {
                                content: Some(text),
                                ..Default::default()
                            },
                        );
                    }
                    an::KnownBlock::RedactedThinking { data, .. } => {
                        let mut delta = oa::ChunkDelta::default();
                        delta
                            .extra
                            .insert("redacted_reasoning_content".into(), Value::String(data));
                        self.emit(out, delta);
                    }
                    _ => {}
                }
            }
            an::KnownStreamEvent::ContentBlockDelta { index, delta } => {
                let an::BlockDelta::Known(delta) = delta else {
                    return;
                };
                let d = match delta {
                    an::KnownBlockDelta::TextDelta { text } => oa::ChunkDelta {
                        content: Some(text),
                        ..Default::default()
                    },
                    an::KnownBlockDelta::ThinkingDelta { thinking } => oa::ChunkDelta {
                        reasoning_content: Some(thinking),
                        ..Default::default()
                    },
                    an::KnownBlockDelta::SignatureDelta { signature } => oa::ChunkDelta {
                        reasoning_signature: Some(signature),
                        ..Default::default()
                    },
                    an::KnownBlockDelta::InputJsonDelta { partial_json } => {
                        if partial_json.is_empty() {
                            return;
                        }
                        if self.json_blocks.contains(&index) {
                            oa::ChunkDelta {
                                content: Some(partial_json),
                                ..Default::default()
                            }
                        } else {
                            let Some(&n) = self.tool_index.get(&index) else {
                                return;
                            };
                            oa::ChunkDelta {
                                tool_calls: Some(vec![oa::ToolCallDelta {
                                    index: n,
                                    function: Some(oa::FunctionCallDelta {
                                        name: None,
                                        arguments: Some(partial_json),
                                        extra: Map::new(),
                                    }),
                                    ..Default::default()
                                }]),
                                ..Default::default()
                            }
                        }
                    }
                };
                self.emit(out, d);
            }
            an::KnownStreamEvent::ContentBlockStop { .. } | an::KnownStreamEvent::Ping {} => {}
            an::KnownStreamEvent::MessageDelta { delta, usage } => {
                merge_usage(&mut self.usage, &usage);
                if let Some(r) = delta.stop_reason {
                    let f = finish_reason(&r, self.json_tool_used).to_owned();
                    self.finish = Some(f.clone());
                    crate::sse::encode_json(
                        out,
                        None,
                        &self.chunk(oa::ChunkDelta::default(), Some(f)),
                    );
                }
            }
            an::KnownStreamEvent::MessageStop {} => {
                if self.include_usage {
                    let mut c = self.chunk(oa::ChunkDelta::default(), None);
                    c.choices.clear();
                    c.usage = Some(usage_to_openai(&self.usage));
                    crate::sse::encode_json(out, None, &c);
                }
                crate::sse::encode_done(out);
                self.done = true;
            }
            an::KnownStreamEvent::Error { error } => {
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
                out.extend_from_slice(&crate::error_map::stream_error_event(
                    aigw_core::ClientApi::OpenAI,
                    &e,
                ));
            }
        }
    }
}
