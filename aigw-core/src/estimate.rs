//! Token estimates for exchanges the provider's own usage report does not cover.
//!
//! A stream the client abandons (or that breaks) before its final usage chunk, and a
//! drain of the upstream ([`CancelDrain`]) that could not reach that chunk, leave the
//! gateway without the provider's numbers while the provider bills every token it
//! generated. Such an exchange is settled with an estimate instead of zero:
//!
//! * **output**: the text the stream carried before it was cut — what the client was
//!   sent plus what a drain read after the client left (content, reasoning and tool
//!   call argument deltas, read back from the client-format events) — counted with the
//!   model's tokenizer; never below the output the provider had already reported;
//! * **input**: the provider's figure when a chunk carried it (Anthropic's
//!   `message_start`), else the prompt's text (message contents, system prompt,
//!   instructions, tool definitions) counted the same way plus a per-message overhead.
//!
//! The tokenizer is the real one (`o200k_base`, `cl100k_base`; feature `tokenizer`) for
//! OpenAI-family models, recognised by name. Every other model — and every model when
//! the feature is off — is counted as one token per four bytes of UTF-8 text, the rule
//! of thumb the providers themselves document for English. The error bounds are in
//! `docs/limits.md`.

use crate::api::Endpoint;
use crate::usage::TokenUsage;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[cfg(feature = "tokenizer")]
mod bpe;
mod delivered;
pub use delivered::{Delivered, EventText};

/// Whether a usage figure came from the provider or from the gateway's estimate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum UsageSource {
    /// Every counter is the provider's own report (or nothing was used).
    #[default]
    Reported,
    /// At least one counter is the gateway's estimate.
    Estimated,
}

impl UsageSource {
    /// `reported` or `estimated`, as logs and metric labels write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Reported => "reported",
            Self::Estimated => "estimated",
        }
    }
}

/// How long, and how much, the gateway keeps reading an upstream stream after the
/// client hung up, to obtain the provider's final usage report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelDrain {
    /// Longest time spent reading; zero turns draining off.
    pub timeout: Duration,
    /// Most upstream bytes read.
    pub max_bytes: u64,
}

impl CancelDrain {
    /// No draining: a hang-up settles with an estimate at once.
    pub const OFF: Self = Self {
        timeout: Duration::ZERO,
        max_bytes: 0,
    };

    /// Whether draining is on.
    pub const fn enabled(&self) -> bool {
        !self.timeout.is_zero() && self.max_bytes > 0
    }
}

impl Default for CancelDrain {
    /// 30 s and 8 MiB: a long reply of a slow model still completes, and one abandoned
    /// stream cannot hold a connection or read without bound.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Which tokenizer counts a model's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// OpenAI `o200k_base` (GPT-4o, GPT-4.1, GPT-5, o-series).
    O200k,
    /// OpenAI `cl100k_base` (GPT-4, GPT-3.5, `text-embedding-3`).
    Cl100k,
    /// One token per four bytes of UTF-8.
    Heuristic,
}

impl Counter {
    /// The counter for `model`: a real tokenizer for OpenAI-family names when the
    /// `tokenizer` feature is on, the heuristic otherwise.
    pub fn for_model(model: &str) -> Self {
        let m = model
            .rsplit('/')
            .next()
            .unwrap_or(model)
            .to_ascii_lowercase();
        let family = if m.starts_with("gpt-4o")
            || m.starts_with("gpt-4.1")
            || m.starts_with("gpt-4.5")
            || m.starts_with("gpt-5")
            || m.starts_with("gpt-oss")
            || m.starts_with("chatgpt-")
            || m.starts_with("o1")
            || m.starts_with("o3")
            || m.starts_with("o4")
        {
            Self::O200k
        } else if m.starts_with("gpt-4") || m.starts_with("gpt-3.5") || m.starts_with("text-") {
            Self::Cl100k
        } else {
            Self::Heuristic
        };
        if cfg!(feature = "tokenizer") && !WARMING.load(Ordering::Relaxed) {
            family
        } else {
            Self::Heuristic
        }
    }

    /// `o200k_base`, `cl100k_base` or `bytes/4`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::O200k => "o200k_base",
            Self::Cl100k => "cl100k_base",
            Self::Heuristic => "bytes/4",
        }
    }

    /// Tokens in `text`.
    pub fn count(self, text: &str) -> u64 {
        match self {
            #[cfg(feature = "tokenizer")]
            Self::O200k => bpe::o200k().map_or_else(|| by_bytes(text), |e| e.count(text)),
            #[cfg(feature = "tokenizer")]
            Self::Cl100k => bpe::cl100k().map_or_else(|| by_bytes(text), |e| e.count(text)),
            _ => by_bytes(text),
        }
    }
}

/// One token per four bytes of UTF-8, rounded up.
fn by_bytes(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// Set while [`warm_up`] builds the tokenizer tables, cleared when they are ready.
static WARMING: AtomicBool = AtomicBool::new(false);

/// Builds the tokenizers' tables now (they are built on first use otherwise, which
/// takes tens of milliseconds); binaries call it on a spare thread at start. Until it is done,
/// estimates use the heuristic rather than wait for the tables (a settlement must not
/// stall, e.g. while the process drains).
pub fn warm_up() {
    WARMING.store(true, Ordering::Relaxed);
    #[cfg(feature = "tokenizer")]
    {
        // Counting a word also compiles the pre-tokenizer's first search state.
        let _ = bpe::o200k().map(|e| e.count("warm"));
        let _ = bpe::cl100k().map(|e| e.count("warm"));
    }
    WARMING.store(false, Ordering::Relaxed);
}

/// Tokens in `text` for `model` ([`Counter::for_model`]).
pub fn count_tokens(model: &str, text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    Counter::for_model(model).count(text)
}

/// Tokens a message adds besides its text (role markers, separators): what OpenAI's
/// own counting guide adds per chat message.
const PER_MESSAGE: u64 = 4;

/// Estimated input tokens of a request body: the prompt of an endpoint that generates
/// text ([`Endpoint::generates_text`]), the `input` of an embeddings request; 0 for
/// other endpoints.
pub fn input_tokens(endpoint: Endpoint, model: &str, body: &[u8]) -> u64 {
    if !endpoint.generates_text() && endpoint != Endpoint::Embeddings {
        return 0;
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return 0;
    };
    if endpoint == Endpoint::Embeddings {
        return embedding_input_tokens(model, v.get("input"));
    }
    let mut text = String::new();
    let mut messages = 0u64;
    for field in ["system", "instructions", "prompt", "tools", "functions"] {
        if let Some(f) = v.get(field) {
            collect_strings(f, &mut text);
        }
    }
    for field in ["messages", "input"] {
        match v.get(field) {
            Some(Value::Array(items)) => {
                messages += items.len() as u64;
                for item in items {
                    collect_strings(item, &mut text);
                }
            }
            Some(other) => {
                messages += 1;
                collect_strings(other, &mut text);
            }
            None => {}
        }
    }
    count_tokens(model, &text) + messages * PER_MESSAGE
}

/// The tokens of an embeddings request's `input`, as OpenAI's API takes it: a string,
/// an array of strings (each counted), a token array or an array of token arrays (their
/// lengths, exactly). Embeddings add no per-input framing to the count.
fn embedding_input_tokens(model: &str, input: Option<&Value>) -> u64 {
    let one = |item: &Value| match item {
        Value::String(s) => count_tokens(model, s),
        Value::Number(_) => 1,
        Value::Array(tokens) if tokens.iter().all(Value::is_number) => tokens.len() as u64,
        other => {
            let mut text = String::new();
            collect_strings(other, &mut text);
            count_tokens(model, &text)
        }
    };
    match input {
        Some(Value::Array(items)) if items.iter().all(Value::is_number) => items.len() as u64,
        Some(Value::Array(items)) => items.iter().map(one).sum(),
        Some(other) => one(other),
        None => 0,
    }
}

/// Appends every string under `v` (object keys that are structure, not text, and
/// inline binary data skipped).
fn collect_strings(v: &Value, out: &mut String) {
    match v {
        Value::String(s) if s.starts_with("data:") => {}
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => {
            for (k, x) in o {
                if !matches!(
                    k.as_str(),
                    "type" | "role" | "id" | "tool_call_id" | "tool_use_id" | "cache_control"
                ) {
                    collect_strings(x, out);
                }
            }
        }
        _ => {}
    }
}

/// Appends the generated text carried by a client-format event stream: OpenAI chat
/// and completion chunks, Responses API `*.delta` events and Anthropic
/// `content_block_delta` events. Summaries that repeat earlier deltas (`*.done`,
/// `response.completed`) are skipped so nothing is counted twice.
pub fn stream_text(endpoint: Endpoint, sse: &[u8], out: &mut String) {
    let _ = endpoint;
    let mut head = Vec::new();
    for line in sse.split(|b| *b == b'\n') {
        delivered::line_text_with(line, out, Some(&mut head));
    }
}

/// The usage a reserve-mode limit holds budget for before the call: the prompt counted
/// as [`input_tokens`] does, and the output the request allows (`max_tokens`,
/// `max_completion_tokens` or `max_output_tokens`), else `default_output`; endpoints
/// that generate no text hold no output.
pub fn request_estimate(
    endpoint: Endpoint,
    model: &str,
    body: &[u8],
    max_tokens: Option<u64>,
    default_output: u64,
) -> TokenUsage {
    let input = input_tokens(endpoint, model, body);
    let output = if endpoint.generates_text() {
        max_tokens.unwrap_or(default_output)
    } else {
        0
    };
    TokenUsage {
        input: Some(input),
        output: Some(output),
        total: Some(input.saturating_add(output)),
        ..TokenUsage::default()
    }
}

/// The usage to settle an exchange with when the provider's final report is missing:
/// the reported counters raised to the estimate where it is higher.
pub fn settle_estimate(
    reported: &TokenUsage,
    input_estimate: u64,
    output_estimate: u64,
) -> TokenUsage {
    let input = reported.input.unwrap_or(input_estimate);
    let output = reported.output.unwrap_or(0).max(output_estimate);
    TokenUsage {
        input: Some(input),
        output: Some(output),
        total: Some(input + output),
        ..*reported
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_anthropic_and_responses_deltas_are_read_once() {
        let sse = concat!(
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"lo\",\"tool_calls\":[{\"function\":{\"arguments\":\"{}\"}}]}}]}\n\n",
            "data: [DONE]\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\" world\"}}\n\n",
            "data: {\"type\":\"response.output_text.delta\",\"delta\":\"!\"}\n\n",
            "data: {\"type\":\"response.output_text.done\",\"text\":\"repeated\"}\n\n",
        );
        let mut out = String::new();
        stream_text(Endpoint::ChatCompletions, sse.as_bytes(), &mut out);
        assert_eq!(out, "Hello{} world!");
    }

    #[test]
    fn heuristic_and_tokenizer_counts() {
        assert_eq!(Counter::Heuristic.count("abcdefgh"), 2);
        assert_eq!(Counter::Heuristic.count("abcdefghi"), 3);
        assert_eq!(Counter::for_model("claude-3-5-sonnet"), Counter::Heuristic);
        if cfg!(feature = "tokenizer") {
            assert_eq!(Counter::for_model("gpt-4o-mini"), Counter::O200k);
            assert_eq!(Counter::for_model("openai/gpt-4-turbo"), Counter::Cl100k);
            // "Hello world" is two tokens in both OpenAI encodings.
            assert_eq!(count_tokens("gpt-4o", "Hello world"), 2);
            assert_eq!(count_tokens("gpt-4", "Hello world"), 2);
        }
    }

    #[test]
    fn input_estimate_reads_text_fields_only() {
        let body = br#"{"model":"m","system":"abcd","messages":[{"role":"user","content":[{"type":"text","text":"abcdabcd"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#;
        // "abcd\n" (5 bytes) + "abcdabcd\n" (9 bytes) = 14 bytes -> 4 tokens, + 1 message.
        assert_eq!(
            input_tokens(Endpoint::Messages, "claude", body),
            4 + PER_MESSAGE
        );
        assert_eq!(input_tokens(Endpoint::Embeddings, "m", body), 0);
        assert_eq!(input_tokens(Endpoint::ImageGenerations, "m", body), 0);
    }

    #[test]
    fn embedding_inputs_of_every_shape_are_counted() {
        let count = |input: Value| {
            let body = serde_json::to_vec(&serde_json::json!({"model": "m", "input": input}));
            input_tokens(Endpoint::Embeddings, "m", &body.unwrap())
        };
        // bytes/4 for an unknown model, no framing: 12 bytes -> 3 tokens.
        assert_eq!(count(Value::from("abcdabcdabcd")), 3);
        assert_eq!(count(serde_json::json!(["abcd", "abcdabcd", ""])), 3);
        // Token arrays are counted exactly.
        assert_eq!(count(serde_json::json!([1, 2, 3, 4, 5])), 5);
        assert_eq!(count(serde_json::json!([[1, 2], [3, 4, 5], []])), 5);
        assert_eq!(count(Value::Null), 0);
        let none = br#"{"model":"m"}"#;
        assert_eq!(input_tokens(Endpoint::Embeddings, "m", none), 0);
        // OpenAI's embedding models count with cl100k_base when the tokenizer is built.
        let body = br#"{"model":"text-embedding-3-small","input":"Hello world"}"#;
        let expected = if cfg!(feature = "tokenizer") { 2 } else { 3 };
        assert_eq!(
            input_tokens(Endpoint::Embeddings, "text-embedding-3-small", body),
            expected
        );
    }

    #[test]
    fn an_embeddings_estimate_holds_input_and_no_output() {
        let body = br#"{"model":"m","input":["abcdabcd","abcd"]}"#;
        let u = request_estimate(Endpoint::Embeddings, "m", body, None, 4096);
        assert_eq!((u.input, u.output, u.total), (Some(3), Some(0), Some(3)));
    }

    #[test]
    fn estimate_keeps_reported_counters_and_never_lowers_output() {
        let reported = TokenUsage {
            input: Some(12),
            output: Some(1),
            cached_input: Some(2),
            ..Default::default()
        };
        let u = settle_estimate(&reported, 99, 7);
        assert_eq!((u.input, u.output, u.total), (Some(12), Some(7), Some(19)));
        assert_eq!(u.cached_input, Some(2));
        let u = settle_estimate(&TokenUsage::default(), 5, 0);
        assert_eq!((u.input, u.output, u.total), (Some(5), Some(0), Some(5)));
    }

    #[test]
    fn delivered_beyond_the_cap_is_estimated_by_size() {
        let mut d = Delivered::default();
        assert!(d.is_empty());
        let chunk = bytes::Bytes::from(format!(
            "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
            "x".repeat(1000)
        ));
        // 4 MiB of text, beyond the 1 MiB kept.
        let events = 4 * 1024 + 10;
        for _ in 0..events {
            d.push(&chunk);
        }
        let n = d.output_tokens(Endpoint::ChatCompletions, "llama");
        let whole = events as u64 * 250;
        assert!(n.abs_diff(whole) * 100 / whole < 3, "{n} vs {whole}");
    }
}
