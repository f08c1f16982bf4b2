//! SigV4 signing of a typical translated Bedrock request (a 1.9 KB Converse body) with
//! the day's signing key cached: the cost every Bedrock request pays.
//!
//! `AIGW_BENCH_ITERS=N` signs N times without criterion and exits, for counting
//! instructions: `valgrind --tool=callgrind --toggle-collect='*sign_once*' <bench binary>`
//! (the first iteration derives and caches the key).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use aigw_auth::aws::{AwsCredentialSource, SigV4Config, SigV4Provider};
use aigw_core::{Credential, CredentialMaterial, CredentialProvider, OutgoingRequest, Secret};
use criterion::{Criterion, Throughput, criterion_group};
use std::hint::black_box;

fn request(body: &bytes::Bytes) -> OutgoingRequest {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    OutgoingRequest {
        method: http::Method::POST,
        scheme: "https".into(),
        authority: "bedrock-runtime.us-east-1.amazonaws.com".into(),
        path: "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream".into(),
        headers,
        body: body.clone(),
    }
}

/// A Converse body of the size the translation benches produce.
fn body() -> bytes::Bytes {
    let text = "The crew needs four dry hours with wind below 25 km/h. ".repeat(34);
    bytes::Bytes::from(format!(
        r#"{{"messages":[{{"role":"user","content":[{{"text":"{text}"}}]}}],"inferenceConfig":{{"maxTokens":1024,"temperature":0.2}}}}"#
    ))
}

fn setup() -> (SigV4Provider, Credential) {
    let keys = || AwsCredentialSource::Static {
        access_key_id: Secret::new("AKIDEXAMPLE"),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        session_token: None,
    };
    let provider = SigV4Provider::new("bench", SigV4Config::new("us-east-1", keys()));
    let credential = Credential::long_lived(CredentialMaterial::Aws {
        access_key_id: Secret::new("AKIDEXAMPLE"),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        session_token: None,
    });
    (provider, credential)
}

#[inline(never)]
fn sign_once(p: &SigV4Provider, c: &Credential, req: &mut OutgoingRequest) {
    p.apply(c, req).unwrap();
}

fn sign(c: &mut Criterion) {
    let (provider, credential) = setup();
    let body = body();
    let mut g = c.benchmark_group("sigv4");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function(format!("sign_bedrock_{}B", body.len()), |b| {
        b.iter_batched(
            || request(&body),
            |mut req| {
                sign_once(&provider, &credential, black_box(&mut req));
                req
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, sign);

fn main() {
    if let Some(n) = std::env::var("AIGW_BENCH_ITERS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    {
        let (provider, credential) = setup();
        let body = body();
        for _ in 0..n {
            let mut req = request(&body);
            sign_once(&provider, &credential, &mut req);
            black_box(req);
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
