//! Translation cost of the OpenAI- and Anthropic-family paths: passthrough request
//! handling, a typical ~2 KB OpenAI chat request into Anthropic Messages, and stream
//! event translation in both directions.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use aigw_core::api::{Endpoint, sniff};
use aigw_core::{RequestContext, Translator};
use aigw_providers::anthropic::{ChatToAnthropic, MessagesPassthrough, MessagesToOpenAi, Platform};
use aigw_providers::openai::{Flavor, OpenAiTranslator, Operation};
use aigw_providers::sse::SseDecoder;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, StatusCode};
use std::hint::black_box;

/// A realistic agent turn: system prompt, history with a tool call and its result, a
/// tool definition, sampling settings. About 2 KB.
fn chat_request() -> Bytes {
    let body = serde_json::json!({
        "model": "claude-sonnet-4-5",
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

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn count_events(input: &[u8]) -> u64 {
    let mut d = SseDecoder::new();
    let mut ev = Vec::new();
    d.feed(input, &mut ev);
    d.finish(&mut ev);
    ev.len() as u64
}

fn sse_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", "text/event-stream".parse().unwrap());
    h
}

fn requests(c: &mut Criterion) {
    let body = chat_request();
    let info = sniff(Endpoint::ChatCompletions, &body).unwrap();
    let headers = HeaderMap::new();
    let ctx = RequestContext {
        body: &body,
        info: &info,
        headers: &headers,
        force_include_usage: false,
    };
    let mut g = c.benchmark_group("request");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("sniff_2kb", |b| {
        b.iter(|| sniff(Endpoint::ChatCompletions, black_box(&body)).unwrap())
    });
    g.bench_function("openai_passthrough_2kb", |b| {
        b.iter(|| {
            let mut t = OpenAiTranslator::new(
                Operation::ChatCompletions,
                Flavor::OpenAI { prefix: None },
                None,
            );
            black_box(t.request(black_box(&ctx)).unwrap())
        })
    });
    g.bench_function("openai_model_override_2kb", |b| {
        b.iter(|| {
            let mut t = OpenAiTranslator::new(
                Operation::ChatCompletions,
                Flavor::OpenAI { prefix: None },
                Some("gpt-4o-mini"),
            );
            black_box(t.request(black_box(&ctx)).unwrap())
        })
    });
    g.bench_function("openai_to_anthropic_2kb", |b| {
        b.iter(|| {
            let mut t = ChatToAnthropic::new(
                Platform::Native {
                    prefix: None,
                    version: None,
                },
                None,
            );
            black_box(t.request(black_box(&ctx)).unwrap())
        })
    });
    let msgs = fixture("anthropic/requests/image.json");
    let msgs = Bytes::from(msgs);
    let minfo = sniff(Endpoint::Messages, &msgs).unwrap();
    let mctx = RequestContext {
        body: &msgs,
        info: &minfo,
        headers: &headers,
        force_include_usage: false,
    };
    g.bench_function("anthropic_to_openai_messages", |b| {
        b.iter(|| {
            let mut t = MessagesToOpenAi::new(Flavor::OpenAI { prefix: None }, None);
            black_box(t.request(black_box(&mctx)).unwrap())
        })
    });
    g.finish();
}

fn stream_bench(
    c: &mut Criterion,
    name: &str,
    input: &[u8],
    make: &dyn Fn() -> Box<dyn Translator>,
    req: &Bytes,
    endpoint: Endpoint,
) {
    let events = count_events(input);
    let info = sniff(endpoint, req).unwrap();
    let headers = HeaderMap::new();
    let resp_headers = sse_headers();
    let mut g = c.benchmark_group("stream_event");
    g.throughput(Throughput::Elements(events));
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut t = make();
            t.request(&RequestContext {
                body: req,
                info: &info,
                headers: &headers,
                force_include_usage: false,
            })
            .unwrap();
            t.response_headers(StatusCode::OK, &resp_headers).unwrap();
            // Upstream chunks rarely align with events: feed in 512-byte pieces.
            let mut last = None;
            let n = input.len().div_ceil(512);
            for (i, piece) in input.chunks(512).enumerate() {
                last = Some(t.response_chunk(black_box(piece), i + 1 == n).unwrap());
            }
            black_box(last)
        })
    });
    g.finish();
}

fn streams(c: &mut Criterion) {
    let stream_req = Bytes::from_static(
        br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#,
    );
    let msgs_req =
        Bytes::from_static(br#"{"model":"m","stream":true,"max_tokens":5,"messages":[]}"#);
    stream_bench(
        c,
        "openai_passthrough_sniff",
        &fixture("openai/responses/stream.sse"),
        &|| {
            Box::new(OpenAiTranslator::new(
                Operation::ChatCompletions,
                Flavor::OpenAI { prefix: None },
                None,
            ))
        },
        &stream_req,
        Endpoint::ChatCompletions,
    );
    stream_bench(
        c,
        "anthropic_to_openai_chunks",
        &fixture("anthropic/responses/stream_thinking.sse"),
        &|| {
            Box::new(ChatToAnthropic::new(
                Platform::Native {
                    prefix: None,
                    version: None,
                },
                None,
            ))
        },
        &stream_req,
        Endpoint::ChatCompletions,
    );
    stream_bench(
        c,
        "openai_to_anthropic_events",
        &fixture("openai/responses/stream.sse"),
        &|| Box::new(MessagesToOpenAi::new(Flavor::OpenAI { prefix: None }, None)),
        &msgs_req,
        Endpoint::Messages,
    );
    stream_bench(
        c,
        "anthropic_passthrough_sniff",
        &fixture("anthropic/responses/stream_thinking.sse"),
        &|| {
            Box::new(MessagesPassthrough::new(
                Platform::Native {
                    prefix: None,
                    version: None,
                },
                None,
            ))
        },
        &msgs_req,
        Endpoint::Messages,
    );
}

fn encoders(c: &mut Criterion) {
    use aigw_providers::anthropic::response::ChatStreamEncoder;
    use aigw_providers::anthropic::reverse::MessagesStreamEncoder;
    let decode = |input: &[u8]| {
        let mut d = SseDecoder::new();
        let mut ev = Vec::new();
        d.feed(input, &mut ev);
        d.finish(&mut ev);
        ev
    };
    let mut g = c.benchmark_group("event_only");
    let anth = decode(&fixture("anthropic/responses/stream_parallel_tools.sse"));
    g.throughput(Throughput::Elements(anth.len() as u64));
    g.bench_function("anthropic_event_to_openai_chunk", |b| {
        b.iter(|| {
            let mut enc = ChatStreamEncoder::new(Default::default(), 0, true);
            let mut out = Vec::with_capacity(4096);
            for e in &anth {
                enc.on_data(black_box(&e.data), &mut out);
            }
            black_box(out)
        })
    });
    let oai = decode(&fixture("openai/responses/stream.sse"));
    g.throughput(Throughput::Elements(oai.len() as u64));
    g.bench_function("openai_chunk_to_anthropic_events", |b| {
        b.iter(|| {
            let mut enc = MessagesStreamEncoder::new();
            let mut out = Vec::with_capacity(16384);
            for e in &oai {
                if !e.is_done() {
                    enc.on_data(black_box(&e.data), &mut out);
                }
            }
            enc.finish(&mut out);
            black_box(out)
        })
    });
    let raw = fixture("openai/responses/stream.sse");
    g.throughput(Throughput::Elements(oai.len() as u64));
    g.bench_function("sse_decode", |b| {
        b.iter(|| black_box(decode(black_box(&raw))))
    });
    g.finish();
}

criterion_group!(benches, requests, streams, encoders);
criterion_main!(benches);
