//! Response and error translation of every OpenAI- and Anthropic-family cell never
//! panics, streamed or not, compressed or not, for any chunking.
#![no_main]

use aigw_core::api::{Endpoint, sniff};
use aigw_core::translate::TranslatorSpec;
use aigw_core::{ApiSchema, RequestContext, TranslatorFactory, VersionedSchema};
use aigw_providers::ProviderFactory;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;

const CHAT: &[u8] = br#"{"model":"m","stream":true,"max_tokens":5,"response_format":{"type":"json_object"},"messages":[{"role":"user","content":"x"}]}"#;
const CHAT_JSON: &[u8] = br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#;
const EMB: &[u8] = br#"{"model":"m","input":"x"}"#;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, data)) = data.split_first() else {
        return;
    };
    let step = usize::from(ctl >> 2).max(1);
    let stream = ctl & 1 == 1;
    let mut resp_headers = HeaderMap::new();
    resp_headers.insert("content-type", HeaderValue::from_static(if stream { "text/event-stream" } else { "application/json" }));
    if ctl & 2 == 2 {
        resp_headers.insert("content-encoding", HeaderValue::from_static("gzip"));
    }
    let headers = HeaderMap::new();
    for (endpoint, body) in [
        (Endpoint::ChatCompletions, if stream { CHAT } else { CHAT_JSON }),
        (Endpoint::Messages, if stream { CHAT } else { CHAT_JSON }),
        (Endpoint::Embeddings, EMB),
        (Endpoint::CountTokens, CHAT_JSON),
    ] {
        let body = Bytes::from_static(body);
        let Ok(info) = sniff(endpoint, &body) else { continue };
        for name in [ApiSchema::OpenAI, ApiSchema::AzureOpenAI, ApiSchema::Anthropic, ApiSchema::GCPAnthropic] {
            let schema = VersionedSchema::new(name);
            let spec = TranslatorSpec { endpoint, schema: &schema, model_override: None };
            let Ok(mut t) = ProviderFactory.translator(&spec) else { continue };
            if t.request(&RequestContext { body: &body, info: &info, headers: &headers, force_include_usage: true }).is_err() {
                continue;
            }
            if t.response_headers(StatusCode::OK, &resp_headers).is_ok() {
                let chunks: Vec<&[u8]> = data.chunks(step).collect();
                let n = chunks.len();
                for (i, c) in chunks.into_iter().enumerate() {
                    let _ = t.response_chunk(c, i + 1 == n);
                }
                if n == 0 {
                    let _ = t.response_chunk(b"", true);
                }
            }
            for status in [400u16, 429, 500, 529] {
                let _ = t.response_error(StatusCode::from_u16(status).unwrap(), &resp_headers, data);
            }
        }
    }
});
