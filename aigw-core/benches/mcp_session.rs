//! Cost of the stateless MCP session id on every request that carries one: sealing (a
//! new session) and opening (every later request), with the key derived once at load,
//! against upstream's scheme, which runs PBKDF2-HMAC-SHA256 with 100,000 iterations
//! from a fresh salt on every encrypt and every decrypt (`internal/mcpproxy/crypto.go`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key};
use aigw_core::Secret;
use aigw_core::mcp::{DEFAULT_ITERATIONS, SessionCrypto, derive_key};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

/// A session of three backends, about the size upstream's plaintext reaches
/// (`route@subject@backend:b64(session):caps,…`).
fn plaintext() -> Vec<u8> {
    br#"{"r":"default/tools","s":"user-1234@example.com","v":"2025-06-18","b":[{"n":"github","i":"6c1f0f9e-2a7b-4d6e-9f0a-3b5c8d2e1f47","v":"2025-06-18","c":261},{"n":"jira","i":"a8d3c2b1e4f5","v":"2025-03-26","c":37},{"n":"search","v":"2025-06-18","c":1}]}"#.to_vec()
}

/// Upstream's per-operation work: a key from PBKDF2 (100k) over a fresh salt, then
/// AES-256-GCM. The salt goes through the same derivation as ours, so only the
/// iteration placement differs.
fn upstream_seal(seed: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut salted = seed.to_vec();
    salted.extend_from_slice(&rand_salt());
    let key = derive_key(&salted, DEFAULT_ITERATIONS);
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key));
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    cipher.encrypt(&nonce, msg).unwrap()
}

fn rand_salt() -> [u8; 16] {
    let n = Aes256Gcm::generate_nonce(&mut OsRng);
    let mut s = [0u8; 16];
    s[..12].copy_from_slice(&n);
    s
}

fn bench(c: &mut Criterion) {
    let seed = Secret::new("a deployment's session seed");
    let msg = plaintext();
    let mut g = c.benchmark_group("mcp_session");
    g.bench_function("derive key once (PBKDF2 100k, at load)", |b| {
        b.iter(|| SessionCrypto::new(black_box(&seed), None, DEFAULT_ITERATIONS))
    });
    let crypto = SessionCrypto::new(
        &seed,
        Some(&Secret::new("previous seed")),
        DEFAULT_ITERATIONS,
    );
    let sealed = crypto.seal(&msg);
    g.bench_function("seal (new session)", |b| {
        b.iter(|| crypto.seal(black_box(&msg)))
    });
    g.bench_function("open (every request)", |b| {
        b.iter(|| crypto.open(black_box(&sealed)).unwrap())
    });
    let old =
        SessionCrypto::new(&Secret::new("previous seed"), None, DEFAULT_ITERATIONS).seal(&msg);
    g.bench_function("open with the fallback key (after a rotation)", |b| {
        b.iter(|| crypto.open(black_box(&old)).unwrap())
    });
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function(
        "upstream scheme: PBKDF2 100k + AES-GCM per operation",
        |b| b.iter(|| upstream_seal(black_box(b"a deployment's session seed"), black_box(&msg))),
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
