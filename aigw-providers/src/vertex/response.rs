//! Gemini `GenerateContentResponse` (whole, or one SSE `data:` chunk of
//! `streamGenerateContent?alt=sse`) and Vertex errors → the neutral model.

use super::request::SIGNATURE_SEPARATOR;
use crate::canonical::{ChatResponse, Choice, Event, OutBlock, StopReason};
use aigw_core::{Error, Result, TokenUsage};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

mod scan;

#[cfg_attr(test, derive(Debug))]
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Usage {
    #[serde(default)]
    prompt_token_count: Option<u64>,
    #[serde(default)]
    candidates_token_count: Option<u64>,
    #[serde(default)]
    thoughts_token_count: Option<u64>,
    #[serde(default)]
    cached_content_token_count: Option<u64>,
    #[serde(default)]
    total_token_count: Option<u64>,
}

impl Usage {
    /// Gemini's `promptTokenCount` already includes cached tokens, and output is
    /// candidates plus thoughts (`totalTokenCount` = prompt + candidates + thoughts).
    fn token_usage(&self) -> TokenUsage {
        let output = match (self.candidates_token_count, self.thoughts_token_count) {
            (None, None) => None,
            (c, t) => Some(c.unwrap_or(0) + t.unwrap_or(0)),
        };
        TokenUsage {
            input: self.prompt_token_count,
            output,
            total: self.total_token_count,
            cached_input: self.cached_content_token_count,
            cache_creation_input: None,
            reasoning: self.thoughts_token_count,
            ..TokenUsage::default()
        }
    }
}

// The stream's chunks are parsed borrowed: strings without escapes (ids, model
// version, most text) point into the chunk instead of being copied, and the
// once-per-stream fields cost nothing on the chunks after the first.
#[cfg_attr(test, derive(Debug))]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response<'a> {
    #[serde(default, borrow)]
    candidates: Vec<Candidate<'a>>,
    #[serde(default)]
    usage_metadata: Option<Usage>,
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    model_version: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    response_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    prompt_feedback: Option<PromptFeedback<'a>>,
}

#[cfg_attr(test, derive(Debug))]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback<'a> {
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    block_reason: Option<Cow<'a, str>>,
}

#[cfg_attr(test, derive(Debug))]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    #[serde(default, borrow)]
    content: Option<Content<'a>>,
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    index: Option<u32>,
}

#[cfg_attr(test, derive(Debug))]
#[derive(Deserialize)]
struct Content<'a> {
    #[serde(default, borrow)]
    parts: Vec<Part<'a>>,
}

#[cfg_attr(test, derive(Debug))]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    thought_signature: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function_call: Option<FunctionCall<'a>>,
}

#[cfg_attr(test, derive(Debug))]
#[derive(Deserialize)]
struct FunctionCall<'a> {
    #[serde(default, borrow, deserialize_with = "crate::borrowed::opt_str")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default, borrow)]
    args: Option<&'a RawValue>,
}

/// Maps Gemini's `finishReason`.
fn finish_reason(s: &str, has_calls: bool) -> StopReason {
    match s {
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
        | "LANGUAGE" => StopReason::ContentFilter,
        // Gemini says STOP after function calls; clients expect "tool calls".
        _ if has_calls => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

fn call_id(call: &FunctionCall<'_>, signature: Option<&str>, fallback: usize) -> String {
    let id = call
        .id
        .as_deref()
        .map_or_else(|| format!("call_{fallback}_{}", call.name), str::to_owned);
    match signature {
        Some(sig) => format!("{id}{SIGNATURE_SEPARATOR}{sig}"),
        None => id,
    }
}

fn args(call: &FunctionCall<'_>) -> String {
    call.args.map_or_else(
        || "{}".to_owned(),
        |a| crate::bedrock::response::compact_json(a.get()),
    )
}

/// Parses a complete `generateContent` response.
pub fn parse_response(body: &[u8], request_model: &str) -> Result<ChatResponse> {
    let r: Response = serde_json::from_slice(body)
        .map_err(|e| Error::malformed_upstream(format!("Gemini response: {e}")))?;
    let mut choices = Vec::with_capacity(r.candidates.len().max(1));
    for c in r.candidates {
        let mut content = Vec::new();
        let mut has_calls = false;
        for (k, p) in c
            .content
            .map(|c| c.parts)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            if let Some(call) = &p.function_call {
                has_calls = true;
                content.push(OutBlock::ToolUse {
                    id: call_id(call, p.thought_signature.as_deref(), k),
                    name: call.name.clone().into_owned(),
                    input: args(call),
                });
            } else if let Some(text) = p.text {
                if p.thought == Some(true) {
                    content.push(OutBlock::Thinking {
                        text: text.into_owned(),
                        signature: p.thought_signature.map(Cow::into_owned),
                    });
                } else {
                    content.push(OutBlock::Text(text.into_owned()));
                }
            }
        }
        let stop = c
            .finish_reason
            .as_deref()
            .map(|f| finish_reason(f, has_calls));
        choices.push(Choice { content, stop });
    }
    if choices.is_empty() {
        // A blocked prompt has no candidates, only `promptFeedback.blockReason`.
        let blocked = r.prompt_feedback.and_then(|f| f.block_reason).is_some();
        choices.push(Choice {
            content: Vec::new(),
            stop: Some(if blocked {
                StopReason::ContentFilter
            } else {
                StopReason::EndTurn
            }),
        });
    }
    Ok(ChatResponse {
        id: r
            .response_id
            .map_or_else(|| "gemini".to_owned(), Cow::into_owned),
        model: r
            .model_version
            .map_or_else(|| request_model.to_owned(), Cow::into_owned),
        choices,
        usage: r
            .usage_metadata
            .map(|u| u.token_usage())
            .unwrap_or_default(),
    })
}

/// Block bookkeeping across stream chunks: Gemini has no block indices, so a new
/// neutral block starts whenever the kind of content changes.
#[derive(Debug, Default)]
pub struct StreamState {
    started: bool,
    /// Index and kind (`true` = thought) of the open text block.
    open: Option<(u32, bool)>,
    next: u32,
    calls: usize,
    /// The response id and model version, from the first chunk that has them.
    pub id: Option<String>,
    /// The model version.
    pub model: Option<String>,
    /// The members the last chunk ended with (see `scan::Tail`).
    tail: scan::Tail,
}

impl StreamState {
    fn text_index(&mut self, thought: bool, out: &mut Vec<Event>) -> u32 {
        match self.open {
            Some((i, t)) if t == thought => i,
            other => {
                if let Some((i, _)) = other {
                    out.push(Event::BlockStop { index: i });
                }
                let i = self.next;
                self.next += 1;
                self.open = Some((i, thought));
                i
            }
        }
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        if let Some((i, _)) = self.open.take() {
            out.push(Event::BlockStop { index: i });
        }
    }

    /// Translates one SSE `data:` payload into neutral events.
    pub fn chunk(&mut self, data: &str, out: &mut Vec<Event>) -> Result<()> {
        // From `&str`: the SSE decoder has checked the UTF-8 once already.
        let r = match scan::response_with(data, &mut self.tail) {
            Some(r) => r,
            None => serde_json::from_str(data)
                .map_err(|e| Error::malformed_upstream(format!("Gemini stream chunk: {e}")))?,
        };
        if self.id.is_none() {
            self.id = r.response_id.map(Cow::into_owned);
        }
        if self.model.is_none() {
            self.model = r.model_version.map(Cow::into_owned);
        }
        if !self.started {
            self.started = true;
            out.push(Event::Start);
        }
        let mut stop = None;
        if r.candidates.is_empty() && r.prompt_feedback.and_then(|f| f.block_reason).is_some() {
            stop = Some(StopReason::ContentFilter);
        }
        for c in r
            .candidates
            .into_iter()
            .filter(|c| c.index.unwrap_or(0) == 0)
        {
            for p in c.content.map(|c| c.parts).unwrap_or_default() {
                if let Some(call) = &p.function_call {
                    self.close(out);
                    let index = self.next;
                    self.next += 1;
                    self.calls += 1;
                    out.push(Event::ToolStart {
                        index,
                        id: call_id(call, p.thought_signature.as_deref(), self.calls - 1),
                        name: call.name.clone().into_owned(),
                    });
                    out.push(Event::ToolDelta {
                        index,
                        json: args(call),
                    });
                    out.push(Event::BlockStop { index });
                } else if let Some(text) = p.text {
                    let thought = p.thought == Some(true);
                    let index = self.text_index(thought, out);
                    if !text.is_empty() {
                        let text = text.into_owned();
                        out.push(if thought {
                            Event::ThinkingDelta { index, text }
                        } else {
                            Event::TextDelta { index, text }
                        });
                    }
                    if let Some(signature) = p.thought_signature.filter(|_| thought) {
                        let signature = signature.into_owned();
                        out.push(Event::SignatureDelta { index, signature });
                    }
                }
            }
            if let Some(f) = c.finish_reason {
                stop = Some(finish_reason(&f, self.calls > 0));
            }
        }
        if let Some(s) = stop {
            self.close(out);
            out.push(Event::Stop(s));
        }
        if let Some(u) = r.usage_metadata {
            out.push(Event::Usage(u.token_usage()));
        }
        Ok(())
    }
}

/// A Vertex error body: `{"error":{"code","message","status"}}`, sometimes wrapped in an
/// array by the streaming endpoint. Returns (status text, message).
pub fn parse_error(body: &[u8]) -> (String, String) {
    #[derive(Deserialize)]
    struct Envelope {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        message: String,
        #[serde(default)]
        status: String,
    }
    let parsed = serde_json::from_slice::<Envelope>(body).ok().or_else(|| {
        serde_json::from_slice::<Vec<Envelope>>(body)
            .ok()
            .and_then(|v| v.into_iter().next())
    });
    match parsed {
        Some(e) => (e.error.status, e.error.message),
        None => (String::new(), crate::bedrock::response::error_message(body)),
    }
}
