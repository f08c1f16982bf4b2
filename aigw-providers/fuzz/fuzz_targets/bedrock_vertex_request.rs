//! Request translation (OpenAI chat, Anthropic Messages and embeddings into Converse,
//! InvokeModel and Gemini) never panics on arbitrary bodies.
#![no_main]

use aigw_core::api::{Endpoint, RequestInfo};
use aigw_core::{ClientApi, RequestContext, Translator};
use aigw_providers::{bedrock, vertex};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let info = RequestInfo {
        model: "m".into(),
        stream: false,
        include_usage: false,
        max_tokens: None,
    };
    let mut headers = HeaderMap::new();
    headers.insert("anthropic-beta", HeaderValue::from_static("a, b"));
    let ctx = RequestContext {
        body: &body,
        info: &info,
        headers: &headers,
        force_include_usage: false,
    };
    let mut all: Vec<Box<dyn Translator>> = vec![
        Box::new(bedrock::ConverseTranslator::new(ClientApi::OpenAI, None)),
        Box::new(bedrock::ConverseTranslator::new(
            ClientApi::Anthropic,
            Some("anthropic.claude-v2:1"),
        )),
        Box::new(bedrock::InvokeTranslator::new(
            ClientApi::OpenAI,
            None,
            None,
        )),
        Box::new(bedrock::InvokeTranslator::new(
            ClientApi::Anthropic,
            None,
            None,
        )),
        Box::new(bedrock::EmbeddingsTranslator::new(None)),
        Box::new(vertex::GeminiTranslator::new(ClientApi::OpenAI, None)),
        Box::new(vertex::GeminiTranslator::new(
            ClientApi::Anthropic,
            Some("gemini-2.5-pro"),
        )),
        Box::new(vertex::EmbeddingsTranslator::new(None)),
    ];
    for t in &mut all {
        let _ = t.request(&ctx);
    }
    let _ = Endpoint::ChatCompletions;
});
