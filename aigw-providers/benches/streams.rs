//! Every cross-dialect stream translation the gateway does, per upstream event: each
//! client API (Chat Completions, Messages, Responses) on each upstream dialect whose
//! stream it must translate (Anthropic Messages, OpenAI chat chunks, Bedrock
//! ConverseStream, Claude on Bedrock InvokeModel, Gemini). Passthrough cells (chat on
//! OpenAI, Messages on Anthropic, Responses on OpenAI) are in the `translate` bench;
//! Claude on Vertex AI streams exactly as native Anthropic does.
//!
//! Each pair runs on two upstream streams: `text`, a long answer (200 text deltas, or
//! the 88-event OpenAI capture) in the upstream's exact framing, and `mixed`, a
//! captured fixture with thinking, signatures and tool calls. Translator set-up (the
//! request) is outside the timed part; streams are fed in 512-byte pieces.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "common/mod.rs"]
mod common;

use aigw_core::api::Endpoint;
use aigw_core::translate::TranslatorSpec;
use aigw_core::{ApiSchema, TranslatorFactory, VersionedSchema};
use aigw_providers::ProviderFactory;
use bytes::Bytes;
use common::*;
use criterion::{Criterion, criterion_group};
use http::HeaderMap;

/// The `aigw` binary's allocator: a translation's allocations cost what they cost there
/// (glibc's malloc counted 4–11 % more instructions per event on these streams).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const CHAT_REQ: &[u8] = br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]}"#;
const MESSAGES_REQ: &[u8] =
    br#"{"model":"m","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"Hi"}]}"#;
const RESPONSES_REQ: &[u8] = br#"{"model":"m","input":"Hi","stream":true,"store":false}"#;

/// An upstream dialect: its schema, response headers and its two streams.
struct Upstream {
    tag: &'static str,
    schema: VersionedSchema,
    headers: fn() -> HeaderMap,
    streams: Vec<(&'static str, Vec<u8>, u64)>,
}

fn sse(tag: &'static str, body: Vec<u8>) -> (&'static str, Vec<u8>, u64) {
    let n = sse_events(&body);
    (tag, body, n)
}

fn frames(tag: &'static str, body: Vec<u8>) -> (&'static str, Vec<u8>, u64) {
    let n = eventstream_frames(&body);
    (tag, body, n)
}

fn upstreams() -> Vec<Upstream> {
    let mut chat_only = VersionedSchema::new(ApiSchema::OpenAI);
    chat_only.responses_over_chat = true;
    let thinking = fixture("anthropic/responses/stream_thinking.sse");
    vec![
        Upstream {
            tag: "anthropic",
            schema: VersionedSchema::new(ApiSchema::Anthropic),
            headers: sse_headers,
            streams: vec![
                sse("text", anthropic_text_stream()),
                sse("mixed", thinking.clone()),
            ],
        },
        Upstream {
            tag: "openai",
            schema: chat_only,
            headers: sse_headers,
            streams: vec![
                sse("text", fixture("openai/responses/stream.sse")),
                sse(
                    "mixed",
                    fixture("openai/responses/stream_parallel_tools.sse"),
                ),
            ],
        },
        Upstream {
            tag: "converse",
            schema: VersionedSchema::new(ApiSchema::AWSBedrock),
            headers: eventstream_headers,
            streams: vec![
                frames("text", converse_text_stream()),
                frames("mixed", fixture("bedrock/responses/reasoning.bin")),
            ],
        },
        Upstream {
            tag: "invoke",
            schema: VersionedSchema::new(ApiSchema::AWSAnthropic),
            headers: eventstream_headers,
            streams: vec![
                frames("text", invoke_stream(&anthropic_text_stream())),
                frames("mixed", invoke_stream(&thinking)),
            ],
        },
        Upstream {
            tag: "gemini",
            schema: VersionedSchema::new(ApiSchema::GCPVertexAI),
            headers: sse_headers,
            streams: vec![
                sse("text", gemini_text_stream()),
                sse("mixed", {
                    let mut s = fixture("vertex/responses/stream_text.sse");
                    s.extend_from_slice(&fixture("vertex/responses/stream_tool.sse"));
                    s
                }),
            ],
        },
    ]
}

/// Whether the cell only passes the stream through (benched in `translate`).
fn passthrough(endpoint: Endpoint, upstream: &str) -> bool {
    matches!(
        (endpoint, upstream),
        (Endpoint::ChatCompletions, "openai") | (Endpoint::Messages, "anthropic")
    )
}

fn cases() -> Vec<StreamCase> {
    let clients = [
        ("openai", Endpoint::ChatCompletions, CHAT_REQ),
        ("anthropic", Endpoint::Messages, MESSAGES_REQ),
        ("responses", Endpoint::Responses, RESPONSES_REQ),
    ];
    let mut out = Vec::new();
    for (client, endpoint, request) in clients {
        for up in upstreams() {
            if passthrough(endpoint, up.tag) {
                continue;
            }
            for (kind, wire, events) in up.streams {
                let schema = up.schema.clone();
                out.push(StreamCase {
                    name: format!("{client}_from_{}_{kind}", up.tag),
                    endpoint,
                    request: Bytes::from_static(request),
                    response_headers: (up.headers)(),
                    wire,
                    events,
                    make: Box::new(move || {
                        ProviderFactory
                            .translator(&TranslatorSpec {
                                endpoint,
                                schema: &schema,
                                model_override: None,
                            })
                            .unwrap()
                    }),
                });
            }
        }
    }
    out
}

fn streams(c: &mut Criterion) {
    bench_streams(c, "stream_pair", &cases());
}

criterion_group!(benches, streams);

fn main() {
    if fixed_iterations(&cases()) {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
