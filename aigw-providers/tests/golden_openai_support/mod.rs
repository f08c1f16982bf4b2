//! Shared driver for the OpenAI- and Anthropic-family golden tests: runs a translator
//! over a fixture and checks split invariance of every response translation.
#![allow(unreachable_pub, dead_code)]

use aigw_core::api::{Endpoint, sniff};
use aigw_core::{BodyChange, RequestContext, TokenUsage, Translator};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

pub fn fixture(path: &str) -> Vec<u8> {
    let p = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

pub fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, v.parse().unwrap());
    }
    h
}

/// A request translation rendered for a snapshot.
pub fn request(
    t: &mut dyn Translator,
    endpoint: Endpoint,
    body: &[u8],
    client_headers: &HeaderMap,
    force_include_usage: bool,
) -> Result<Value, aigw_core::Error> {
    let body = Bytes::copy_from_slice(body);
    let info = sniff(endpoint, &body)?;
    let up = t.request(&RequestContext {
        body: &body,
        info: &info,
        headers: client_headers,
        force_include_usage,
    })?;
    let set: serde_json::Map<String, Value> = up
        .headers
        .set
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap())))
        .collect();
    let remove: Vec<String> = up.headers.remove.iter().map(|h| h.to_string()).collect();
    let body = match &up.body {
        BodyChange::Unchanged => json!("<unchanged>"),
        BodyChange::Replaced(b) => serde_json::from_slice(b).unwrap(),
    };
    Ok(json!({
        "method": up.method.as_str(),
        "path": up.path,
        "headers": {"set": set, "remove": remove},
        "body": body,
    }))
}

/// The client-visible result of a response translation.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub body: Vec<u8>,
    pub usage: TokenUsage,
    pub model: Option<String>,
}

impl Output {
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

fn feed(t: &mut dyn Translator, resp_headers: &HeaderMap, input: &[u8], cuts: &[usize]) -> Output {
    t.response_headers(StatusCode::OK, resp_headers).unwrap();
    let mut body = Vec::new();
    let mut usage = TokenUsage::default();
    let mut model = None;
    let mut start = 0;
    let mut pieces: Vec<&[u8]> = Vec::new();
    for &c in cuts {
        pieces.push(&input[start..c]);
        start = c;
    }
    pieces.push(&input[start..]);
    let n = pieces.len();
    for (i, p) in pieces.into_iter().enumerate() {
        let c = t.response_chunk(p, i + 1 == n).unwrap();
        match c.body {
            None => body.extend_from_slice(p),
            Some(b) => body.extend_from_slice(&b),
        }
        usage.update(&c.usage);
        if c.response_model.is_some() {
            model = c.response_model;
        }
    }
    Output { body, usage, model }
}

/// Translates a response whole, then byte by byte, then in pseudo-random splits, and
/// asserts that every split gives byte-identical output and identical usage.
pub fn response(
    make: &dyn Fn() -> Box<dyn Translator>,
    endpoint: Endpoint,
    request_body: &[u8],
    resp_headers: &HeaderMap,
    input: &[u8],
) -> Output {
    let run = |cuts: &[usize]| {
        let mut t = make();
        request(t.as_mut(), endpoint, request_body, &HeaderMap::new(), false).unwrap();
        feed(t.as_mut(), resp_headers, input, cuts)
    };
    let whole = run(&[]);
    let bytewise: Vec<usize> = (1..input.len()).collect();
    assert_eq!(run(&bytewise), whole, "byte-by-byte feed differs");
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..16 {
        let mut cuts = Vec::new();
        for _ in 0..6 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if !input.is_empty() {
                cuts.push((seed % input.len() as u64) as usize);
            }
        }
        cuts.sort_unstable();
        assert_eq!(run(&cuts), whole, "split at {cuts:?} differs");
    }
    whole
}

pub fn sse() -> HeaderMap {
    headers(&[("content-type", "text/event-stream")])
}

pub fn json_ct() -> HeaderMap {
    headers(&[("content-type", "application/json")])
}

/// A response translation as a snapshot value: JSON body (or SSE text) plus usage.
pub fn snapshot(out: &Output, stream: bool) -> Value {
    json!({
        "body": if stream { json!(out.text()) } else { out.json() },
        "usage": serde_json::to_value(out.usage).unwrap(),
        "response_model": out.model,
    })
}

/// An error translation as a snapshot value.
pub fn error(t: &mut dyn Translator, status: u16, resp_headers: &HeaderMap, body: &[u8]) -> Value {
    let e = t
        .response_error(StatusCode::from_u16(status).unwrap(), resp_headers, body)
        .unwrap();
    json!({"status": e.status.as_u16(), "body": serde_json::from_slice::<Value>(&e.body).unwrap()})
}
