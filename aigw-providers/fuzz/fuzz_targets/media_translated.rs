//! The translated media cells (images on Bedrock and Vertex AI, rerank on the Bedrock
//! Agent Runtime and the Vertex Ranking API, tokenize over the count-tokens APIs) never
//! panic: arbitrary bytes as the client's request, and as the provider's response to a
//! valid request, in any split.
#![no_main]

use aigw_core::api::{Endpoint, RequestInfo};
use aigw_core::translate::TranslatorSpec;
use aigw_core::{ApiSchema, RequestContext, TranslatorFactory, VersionedSchema};
use aigw_providers::ProviderFactory;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use libfuzzer_sys::fuzz_target;

const CELLS: [(Endpoint, ApiSchema, Option<&str>, &str); 6] = [
    (
        Endpoint::ImageGenerations,
        ApiSchema::AWSBedrock,
        None,
        r#"{"model":"amazon.titan-image-generator-v2:0","prompt":"p","n":2}"#,
    ),
    (
        Endpoint::ImageGenerations,
        ApiSchema::GCPVertexAI,
        None,
        r#"{"model":"imagen-4.0-generate-001","prompt":"p"}"#,
    ),
    (
        Endpoint::Rerank,
        ApiSchema::AWSBedrock,
        Some("arn:aws:bedrock:us-west-2::foundation-model/cohere.rerank-v3-5:0"),
        r#"{"model":"m","query":"q","documents":["a","b"]}"#,
    ),
    (
        Endpoint::Rerank,
        ApiSchema::GCPVertexAI,
        None,
        r#"{"model":"semantic-ranker-default-004","query":"q","documents":["a"]}"#,
    ),
    (
        Endpoint::Tokenize,
        ApiSchema::Anthropic,
        None,
        r#"{"model":"claude","prompt":"a b"}"#,
    ),
    (
        Endpoint::Tokenize,
        ApiSchema::GCPVertexAI,
        None,
        r#"{"model":"gemini-2.5-flash","prompt":"a b"}"#,
    ),
];

fuzz_target!(|data: &[u8]| {
    let info = RequestInfo {
        model: "m".into(),
        stream: false,
        include_usage: false,
        max_tokens: None,
    };
    let headers = HeaderMap::new();
    let fuzzed = Bytes::copy_from_slice(data);
    let split = data.first().map_or(0, |b| usize::from(*b)) % (data.len() + 1);
    for (endpoint, name, ovr, good) in CELLS {
        let schema = VersionedSchema::new(name);
        let spec = TranslatorSpec {
            endpoint,
            schema: &schema,
            model_override: ovr,
        };
        let Ok(mut t) = ProviderFactory.translator(&spec) else {
            continue;
        };
        let _ = t.request(&RequestContext {
            body: &fuzzed,
            info: &info,
            headers: &headers,
            force_include_usage: false,
        });
        let Ok(mut t) = ProviderFactory.translator(&spec) else {
            continue;
        };
        let body = Bytes::from_static(good.as_bytes());
        if t
            .request(&RequestContext {
                body: &body,
                info: &info,
                headers: &headers,
                force_include_usage: false,
            })
            .is_err()
        {
            continue;
        }
        let _ = t.response_headers(StatusCode::OK, &headers);
        let (a, b) = data.split_at(split);
        let _ = t.response_chunk(a, false);
        let _ = t.response_chunk(b, true);
        let _ = t.response_error(StatusCode::BAD_REQUEST, &headers, data);
    }
});
