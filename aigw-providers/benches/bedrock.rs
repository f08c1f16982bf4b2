//! Translation cost of the Bedrock and Gemini paths: a typical ~2 KB OpenAI chat
//! request into Converse (and Gemini), and ConverseStream events into OpenAI SSE.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use aigw_core::api::{Endpoint, sniff};
use aigw_core::{ClientApi, RequestContext, Translator};
use aigw_providers::bedrock::ConverseTranslator;
use aigw_providers::eventstream::encode_event;
use aigw_providers::vertex::GeminiTranslator;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, StatusCode};
use std::hint::black_box;

/// A realistic agent turn: system prompt, history with a tool call and its result, a
/// tool definition, sampling settings. About 2 KB.
fn chat_request() -> Bytes {
    let body = serde_json::json!({
        "model": "anthropic.claude-3-5-sonnet-20240620-v1:0",
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
    Bytes::from(body.to_string())
}

fn request_benches(c: &mut Criterion) {
    let body = chat_request();
    let info = sniff(Endpoint::ChatCompletions, &body).unwrap();
    let headers = HeaderMap::new();
    let mut g = c.benchmark_group("request");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function(format!("openai_to_converse_{}B", body.len()), |b| {
        b.iter(|| {
            let mut t = ConverseTranslator::new(ClientApi::OpenAI, None);
            let ctx = RequestContext {
                body: &body,
                info: &info,
                headers: &headers,
                force_include_usage: false,
            };
            black_box(t.request(black_box(&ctx)).unwrap())
        });
    });
    g.bench_function(format!("openai_to_gemini_{}B", body.len()), |b| {
        b.iter(|| {
            let mut t = GeminiTranslator::new(ClientApi::OpenAI, Some("gemini-2.5-pro"));
            let ctx = RequestContext {
                body: &body,
                info: &info,
                headers: &headers,
                force_include_usage: false,
            };
            black_box(t.request(black_box(&ctx)).unwrap())
        });
    });
    g.finish();
}

/// 200 text deltas, a stop and a metadata event, as ConverseStream frames them.
fn converse_stream() -> (Vec<u8>, u64) {
    let mut w = Vec::new();
    w.extend_from_slice(&encode_event("messageStart", br#"{"role":"assistant"}"#).unwrap());
    for i in 0..200 {
        let p = format!(
            r#"{{"contentBlockIndex":0,"delta":{{"text":"token {i} of the answer, "}},"p":"abcdefghijkl"}}"#
        );
        w.extend_from_slice(&encode_event("contentBlockDelta", p.as_bytes()).unwrap());
    }
    w.extend_from_slice(&encode_event("contentBlockStop", br#"{"contentBlockIndex":0}"#).unwrap());
    w.extend_from_slice(&encode_event("messageStop", br#"{"stopReason":"end_turn"}"#).unwrap());
    w.extend_from_slice(&encode_event("metadata", br#"{"usage":{"inputTokens":18,"outputTokens":200,"totalTokens":218},"metrics":{"latencyMs":900}}"#).unwrap());
    (w, 204)
}

fn stream_benches(c: &mut Criterion) {
    let body = chat_request();
    let info = sniff(Endpoint::ChatCompletions, &body).unwrap();
    let headers = HeaderMap::new();
    let (wire, events) = converse_stream();
    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Elements(events));
    for (name, chunk) in [("whole", wire.len()), ("chunks_of_512B", 512)] {
        g.bench_function(format!("converse_to_openai_sse_{name}"), |b| {
            b.iter(|| {
                let mut t = ConverseTranslator::new(ClientApi::OpenAI, None);
                let ctx = RequestContext {
                    body: &body,
                    info: &info,
                    headers: &headers,
                    force_include_usage: false,
                };
                t.request(&ctx).unwrap();
                t.response_headers(StatusCode::OK, &headers).unwrap();
                let pieces: Vec<&[u8]> = wire.chunks(chunk).collect();
                let n = pieces.len();
                for (i, p) in pieces.into_iter().enumerate() {
                    black_box(t.response_chunk(p, i + 1 == n).unwrap());
                }
            });
        });
    }
    g.bench_function("eventstream_decode_only", |b| {
        b.iter(|| {
            let mut d = aigw_providers::eventstream::Decoder::new();
            d.push(&wire);
            let mut n = 0;
            while let Some(f) = d.next_frame().unwrap() {
                n += f.payload.len();
            }
            black_box(n)
        });
    });
    g.finish();
}

criterion_group!(benches, request_benches, stream_benches);
criterion_main!(benches);
