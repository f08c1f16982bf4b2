//! Translation cost of the Bedrock and Gemini paths: a typical ~2 KB OpenAI chat
//! request into Converse (and Gemini), and ConverseStream events into OpenAI SSE.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "common/mod.rs"]
mod common;

use aigw_core::api::{Endpoint, sniff};
use aigw_core::{ClientApi, RequestContext, Translator};
use aigw_providers::bedrock::ConverseTranslator;
use aigw_providers::vertex::GeminiTranslator;
use common::{chat_request, converse_text_stream, eventstream_frames};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, StatusCode};
use std::hint::black_box;

fn request_benches(c: &mut Criterion) {
    let body = chat_request("anthropic.claude-3-5-sonnet-20240620-v1:0");
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

fn stream_benches(c: &mut Criterion) {
    let body = chat_request("anthropic.claude-3-5-sonnet-20240620-v1:0");
    let info = sniff(Endpoint::ChatCompletions, &body).unwrap();
    let headers = HeaderMap::new();
    let wire = converse_text_stream();
    let events = eventstream_frames(&wire);
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
