//! The Responses event and response decoders, and the stream translators that produce
//! Responses events from each backend's stream, never panic on arbitrary bytes; a
//! decoded event re-serialises to an equal event.
#![no_main]

use aigw_core::api::responses::{AnyStreamEvent, Response};
use aigw_core::api::{Endpoint, RequestInfo};
use aigw_core::translate::TranslatorSpec;
use aigw_core::{ApiSchema, RequestContext, TranslatorFactory, VersionedSchema};
use aigw_providers::ProviderFactory;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;

const REQUEST: &[u8] = br#"{"model":"m","input":"Hi","stream":true,"store":false,"reasoning":{"summary":"auto"}}"#;

fuzz_target!(|data: &[u8]| {
    if let Ok(ev) = serde_json::from_slice::<AnyStreamEvent>(data) {
        let again = serde_json::to_vec(&ev).expect("serialise");
        let back: AnyStreamEvent = serde_json::from_slice(&again).expect("re-parse");
        assert_eq!(back, ev);
    }
    let _ = serde_json::from_slice::<Response>(data);
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (name, content_type) = match selector % 5 {
        0 => (ApiSchema::OpenAI, "text/event-stream"),
        1 => (ApiSchema::Anthropic, "text/event-stream"),
        2 => (ApiSchema::AWSBedrock, "application/vnd.amazon.eventstream"),
        3 => (ApiSchema::AWSAnthropic, "application/vnd.amazon.eventstream"),
        _ => (ApiSchema::GCPVertexAI, "text/event-stream"),
    };
    let schema = VersionedSchema::new(name);
    let spec = TranslatorSpec {
        endpoint: Endpoint::Responses,
        schema: &schema,
        model_override: None,
    };
    let Ok(mut t) = ProviderFactory.translator(&spec) else {
        return;
    };
    let body = Bytes::from_static(REQUEST);
    let info = RequestInfo {
        model: "m".into(),
        stream: true,
        include_usage: false,
        max_tokens: None,
    };
    let headers = HeaderMap::new();
    let ctx = RequestContext {
        body: &body,
        info: &info,
        headers: &headers,
        force_include_usage: false,
    };
    if t.request(&ctx).is_err() {
        return;
    }
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static(content_type));
    let _ = t.response_headers(StatusCode::OK, &h);
    // Split where the input says, so chunk boundaries are fuzzed too.
    let cut = usize::from(selector) % (rest.len() + 1);
    let _ = t.response_chunk(&rest[..cut], false);
    let _ = t.response_chunk(&rest[cut..], true);
});
