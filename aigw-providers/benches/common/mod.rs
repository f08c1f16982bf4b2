//! Shared by the translation benches: the agent-turn chat request, fixtures, upstream
//! streams in every dialect, and a fixed-iteration mode for counting instructions.
//!
//! Criterion times wall clock, which on a shared machine moves with the load. Set
//! `AIGW_BENCH_ITERS=N` (and optionally `AIGW_BENCH_FILTER=substring`) and a bench
//! binary instead feeds each matching stream case N times through [`feed_stream`] and
//! exits; run it under `valgrind --tool=callgrind --toggle-collect='*feed_stream*'` and
//! the collected instructions divided by N × events are the per-event cost
//! (`scripts/callgrind-streams.sh` does this for every case).
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use aigw_core::api::{Endpoint, RequestInfo, sniff};
use aigw_core::{RequestContext, Translator};
use aigw_providers::eventstream::{Decoder, encode_event};
use aigw_providers::sse::SseDecoder;
use base64::Engine as _;
use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput};
use http::{HeaderMap, HeaderValue, StatusCode};
use std::hint::black_box;

/// A realistic agent turn: system prompt, history with a tool call and its result, a
/// tool definition, sampling settings. About 2 KB.
pub fn chat_request(model: &str) -> Bytes {
    let body = serde_json::json!({
        "model": model,
        "temperature": 0.2,
        "max_tokens": 1024,
        "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [
            {"role": "system", "content": "You are a careful assistant for an operations team. Answer concisely, cite the tool output you used, and never invent numbers. If a tool fails, say so and suggest the next step."},
            {"role": "user", "content": "What is the current weather in Columbus, Ohio, and should the outdoor maintenance crew start the roof work this afternoon? They need at least four dry hours with wind below 25 km/h."},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Columbus, OH\",\"unit\":\"celsius\",\"hours\":6}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"now\":{\"temp\":14,\"wind_kmh\":18,\"precip_mm\":0},\"next_6h\":[{\"h\":1,\"precip_mm\":0,\"wind_kmh\":19},{\"h\":2,\"precip_mm\":0,\"wind_kmh\":21},{\"h\":3,\"precip_mm\":0.2,\"wind_kmh\":24},{\"h\":4,\"precip_mm\":1.5,\"wind_kmh\":27},{\"h\":5,\"precip_mm\":2.1,\"wind_kmh\":22},{\"h\":6,\"precip_mm\":0.4,\"wind_kmh\":17}]}"},
            {"role": "assistant", "content": "Conditions are dry for about three hours, then rain and gusts above 25 km/h arrive in hour four."},
            {"role": "user", "content": "OK. Check again for tomorrow morning, same location, and tell me the best four-hour window."}
        ],
        "tools": [{
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Hourly forecast for a location: temperature, wind speed and precipitation.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "location": {"type": "string", "description": "City and state, e.g. Columbus, OH"},
                        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                        "hours": {"type": "integer", "minimum": 1, "maximum": 48},
                        "start": {"type": "string", "description": "ISO-8601 start time; now when absent"}
                    },
                    "required": ["location"]
                }
            }
        }]
    });
    Bytes::from(serde_json::to_vec(&body).unwrap())
}

/// `tests/fixtures/{path}`.
pub fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Text deltas in the long synthesised streams: a typical answer's length.
pub const DELTAS: usize = 200;

fn delta_text(i: usize) -> String {
    format!("token {i} of the answer, ")
}

/// The SSE events of an SSE body, `[DONE]` included.
pub fn sse_events(input: &[u8]) -> u64 {
    let mut d = SseDecoder::new();
    let mut ev = Vec::new();
    d.feed(input, &mut ev);
    d.finish(&mut ev);
    ev.len() as u64
}

/// The frames of an eventstream body.
pub fn eventstream_frames(input: &[u8]) -> u64 {
    let mut d = Decoder::new();
    d.push(input);
    let mut n = 0;
    while d.next_frame().unwrap().is_some() {
        n += 1;
    }
    n
}

/// A captured SSE fixture's first `head` and last `tail` events around [`DELTAS`]
/// synthesised ones (`delta(i)` renders the i-th, blank line included).
fn sse_around(path: &str, head: usize, tail: usize, delta: impl Fn(usize) -> String) -> Vec<u8> {
    let text = String::from_utf8(fixture(path)).unwrap();
    let events: Vec<&str> = text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .collect();
    let mut out = String::new();
    for e in &events[..head] {
        out.push_str(e);
        out.push_str("\n\n");
    }
    for i in 0..DELTAS {
        out.push_str(&delta(i));
    }
    for e in &events[events.len() - tail..] {
        out.push_str(e);
        out.push_str("\n\n");
    }
    out.into_bytes()
}

/// An Anthropic Messages stream of [`DELTAS`] text deltas, framed by the first two and
/// last three events of the captured `stream_basic.sse`.
pub fn anthropic_text_stream() -> Vec<u8> {
    sse_around("anthropic/responses/stream_basic.sse", 2, 3, |i| {
        format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{}\"}}}}\n\n",
            delta_text(i)
        )
    })
}

/// An Anthropic SSE body re-framed as Bedrock's invoke-with-response-stream: one `chunk`
/// event per SSE event, payload `{"bytes": base64(data)}`.
pub fn invoke_stream(sse: &[u8]) -> Vec<u8> {
    let mut w = Vec::new();
    for line in std::str::from_utf8(sse).unwrap().lines() {
        if let Some(data) = line.strip_prefix("data: ") {
            let b64 = base64::engine::general_purpose::STANDARD.encode(data.trim_end());
            let payload = format!(r#"{{"bytes":"{b64}"}}"#);
            w.extend_from_slice(&encode_event("chunk", payload.as_bytes()).unwrap());
        }
    }
    w
}

/// [`DELTAS`] text deltas, a stop and a metadata event, as ConverseStream frames them.
pub fn converse_text_stream() -> Vec<u8> {
    let mut w = Vec::new();
    w.extend_from_slice(&encode_event("messageStart", br#"{"role":"assistant"}"#).unwrap());
    for i in 0..DELTAS {
        let p = format!(
            r#"{{"contentBlockIndex":0,"delta":{{"text":"{}"}},"p":"abcdefghijkl"}}"#,
            delta_text(i)
        );
        w.extend_from_slice(&encode_event("contentBlockDelta", p.as_bytes()).unwrap());
    }
    w.extend_from_slice(&encode_event("contentBlockStop", br#"{"contentBlockIndex":0}"#).unwrap());
    w.extend_from_slice(&encode_event("messageStop", br#"{"stopReason":"end_turn"}"#).unwrap());
    w.extend_from_slice(&encode_event("metadata", br#"{"usage":{"inputTokens":18,"outputTokens":200,"totalTokens":218},"metrics":{"latencyMs":900}}"#).unwrap());
    w
}

/// A Gemini `streamGenerateContent?alt=sse` body: the captured `stream_text.sse`'s two
/// thought chunks, [`DELTAS`] text chunks (each with the running `usageMetadata`, as
/// Gemini sends it) and its final chunk.
pub fn gemini_text_stream() -> Vec<u8> {
    sse_around("vertex/responses/stream_text.sse", 2, 1, |i| {
        format!(
            "data: {{\"candidates\":[{{\"content\":{{\"role\":\"model\",\"parts\":[{{\"text\":\"{}\"}}]}}}}],\"usageMetadata\":{{\"promptTokenCount\":9,\"candidatesTokenCount\":{},\"totalTokenCount\":{}}},\"modelVersion\":\"gemini-2.5-pro\",\"responseId\":\"resp-stream-1\"}}\n\n",
            delta_text(i),
            i + 1,
            i + 10
        )
    })
}

/// One client-API ← upstream-dialect stream to translate.
pub struct StreamCase {
    pub name: String,
    pub endpoint: Endpoint,
    pub request: Bytes,
    pub response_headers: HeaderMap,
    pub wire: Vec<u8>,
    /// Upstream events (SSE events or eventstream frames) in `wire`.
    pub events: u64,
    pub make: Box<dyn Fn() -> Box<dyn Translator>>,
}

/// Upstream chunks rarely align with events: streams are fed in pieces of this size.
pub const CHUNK: usize = 512;

pub fn sse_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    h
}

pub fn eventstream_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    h.insert("x-amzn-requestid", HeaderValue::from_static("req-0001"));
    h
}

impl StreamCase {
    /// A translator that has seen the request and the response headers.
    pub fn ready(&self, info: &RequestInfo) -> Box<dyn Translator> {
        let mut t = (self.make)();
        let headers = HeaderMap::new();
        t.request(&RequestContext {
            body: &self.request,
            info,
            headers: &headers,
            force_include_usage: false,
        })
        .unwrap();
        t.response_headers(StatusCode::OK, &self.response_headers)
            .unwrap();
        t
    }

    pub fn info(&self) -> RequestInfo {
        sniff(self.endpoint, &self.request).unwrap()
    }
}

/// Feeds `wire` to `t` in [`CHUNK`]-byte pieces; returns the bytes written.
#[inline(never)]
pub fn feed_stream(t: &mut dyn Translator, wire: &[u8]) -> usize {
    let n = wire.len().div_ceil(CHUNK);
    let mut written = 0;
    for (i, piece) in wire.chunks(CHUNK).enumerate() {
        let out = t.response_chunk(black_box(piece), i + 1 == n).unwrap();
        written += out.body.map_or(0, |b| b.len());
    }
    written
}

/// Criterion: per-event time of each case, translator set-up excluded.
pub fn bench_streams(c: &mut Criterion, group: &str, cases: &[StreamCase]) {
    let mut g = c.benchmark_group(group);
    for case in cases {
        let info = case.info();
        g.throughput(Throughput::Elements(case.events));
        g.bench_function(&case.name, |b| {
            b.iter_batched(
                || case.ready(&info),
                |mut t| {
                    black_box(feed_stream(t.as_mut(), &case.wire));
                    t
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// The fixed-iteration mode (see the module docs). Returns whether it ran.
pub fn fixed_iterations(cases: &[StreamCase]) -> bool {
    let Some(iters) = std::env::var("AIGW_BENCH_ITERS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    else {
        return false;
    };
    let filter = std::env::var("AIGW_BENCH_FILTER").unwrap_or_default();
    for case in cases.iter().filter(|c| c.name.contains(&filter)) {
        let info = case.info();
        let mut written = 0;
        for _ in 0..iters {
            let mut t = case.ready(&info);
            written += feed_stream(t.as_mut(), &case.wire);
        }
        println!(
            "{}\t{} events\t{} iterations\t{} bytes out",
            case.name, case.events, iters, written
        );
    }
    true
}
