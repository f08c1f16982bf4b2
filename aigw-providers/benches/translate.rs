//! Translation cost of the OpenAI- and Anthropic-family paths: passthrough request
//! handling, a typical ~2 KB OpenAI chat request into Anthropic Messages, and stream
//! event translation in both directions.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "common/mod.rs"]
mod common;

use aigw_core::api::{Endpoint, sniff};
use aigw_core::{RequestContext, Translator};
use aigw_providers::anthropic::{ChatToAnthropic, MessagesPassthrough, MessagesToOpenAi, Platform};
use aigw_providers::openai::{Flavor, OpenAiTranslator, Operation};
use aigw_providers::sse::SseDecoder;
use bytes::Bytes;
use common::{chat_request, fixture, sse_events as count_events};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, StatusCode};
use std::hint::black_box;

fn sse_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", "text/event-stream".parse().unwrap());
    h
}

fn requests(c: &mut Criterion) {
    let body = chat_request("claude-sonnet-4-5");
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
