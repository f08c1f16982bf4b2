//! Shared helpers for the Bedrock and Vertex golden tests: drive a translator over a
//! fixture and render what it produced as a stable, reviewable snapshot.
#![allow(
    unreachable_pub,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use aigw_core::api::{Endpoint, sniff};
use aigw_core::{BodyChange, RequestContext, TokenUsage, Translator};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use std::path::{Path, PathBuf};

/// `tests/fixtures/…`
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Every `*.json` file of a fixture directory, sorted, as (stem, bytes).
pub fn json_files(rel: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(fixture(rel))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Translates a request and renders method, path, headers and pretty body, or the
/// error's status and body.
pub fn request_snapshot(
    t: &mut dyn Translator,
    endpoint: Endpoint,
    body: &[u8],
    headers: &HeaderMap,
) -> String {
    let body = Bytes::copy_from_slice(body);
    let info = sniff(endpoint, &body).unwrap();
    let ctx = RequestContext {
        body: &body,
        info: &info,
        headers,
        force_include_usage: false,
    };
    match t.request(&ctx) {
        Ok(up) => {
            let mut s = format!("{} {}\n", up.method, up.path);
            for (k, v) in &up.headers.set {
                s.push_str(&format!("{k}: {}\n", v.to_str().unwrap()));
            }
            s.push('\n');
            match up.body {
                BodyChange::Unchanged => s.push_str("<unchanged>"),
                BodyChange::Replaced(b) => {
                    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
                    s.push_str(&serde_json::to_string_pretty(&v).unwrap());
                }
            }
            s
        }
        Err(e) => format!(
            "ERROR {}\n{}",
            e.status(),
            String::from_utf8_lossy(&e.to_body(endpoint.client_api()))
        ),
    }
}

/// Sets `created` to 0 so snapshots do not depend on the clock.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\"created\":") {
        let (head, tail) = rest.split_at(i + "\"created\":".len());
        out.push_str(head);
        let spaces = tail.bytes().take_while(|b| *b == b' ').count();
        out.push_str(&tail[..spaces]);
        let tail = &tail[spaces..];
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        out.push('0');
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

/// Feeds a response in the given chunks and returns (output, final usage, model).
pub fn feed(t: &mut dyn Translator, chunks: &[&[u8]]) -> (Vec<u8>, TokenUsage, Option<String>) {
    let mut out = Vec::new();
    let mut usage = TokenUsage::default();
    let mut model = None;
    if chunks.is_empty() {
        let r = t.response_chunk(b"", true).unwrap();
        out.extend_from_slice(&r.body.unwrap());
        return (out, r.usage, r.response_model);
    }
    for (i, c) in chunks.iter().enumerate() {
        let r = t.response_chunk(c, i + 1 == chunks.len()).unwrap();
        out.extend_from_slice(&r.body.expect("translated body"));
        usage.update(&r.usage);
        if r.response_model.is_some() {
            model = r.response_model;
        }
    }
    (out, usage, model)
}

/// Drives request + headers + whole body and renders the output for a snapshot.
pub fn response_snapshot(
    t: &mut dyn Translator,
    endpoint: Endpoint,
    request: &[u8],
    headers: &HeaderMap,
    body: &[u8],
) -> String {
    let req = Bytes::copy_from_slice(request);
    let info = sniff(endpoint, &req).unwrap();
    let ctx = RequestContext {
        body: &req,
        info: &info,
        headers: &HeaderMap::new(),
        force_include_usage: false,
    };
    t.request(&ctx).unwrap();
    let hm = t.response_headers(StatusCode::OK, headers).unwrap();
    let (out, usage, model) = feed(t, &[body]);
    let text = String::from_utf8(out).unwrap();
    let rendered = if text.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        serde_json::to_string_pretty(&v).unwrap()
    } else {
        text
    };
    let ct: Vec<String> = hm
        .set
        .iter()
        .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
        .collect();
    normalize(&format!(
        "headers: {}\nmodel: {model:?}\nusage: {usage:?}\n\n{rendered}",
        ct.join(", ")
    ))
}
