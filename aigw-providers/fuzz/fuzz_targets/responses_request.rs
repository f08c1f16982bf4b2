//! Responses request decoding and translation (to every translated backend, the
//! OpenAI/Azure passthrough and the input-token counters) never panics on arbitrary
//! bodies.
#![no_main]

use aigw_core::api::responses::ResponsesRequest;
use aigw_core::api::{Endpoint, RequestInfo};
use aigw_core::translate::TranslatorSpec;
use aigw_core::{ApiSchema, RequestContext, TranslatorFactory, VersionedSchema};
use aigw_providers::ProviderFactory;
use bytes::Bytes;
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;

const SCHEMAS: [ApiSchema; 7] = [
    ApiSchema::OpenAI,
    ApiSchema::AzureOpenAI,
    ApiSchema::Anthropic,
    ApiSchema::GCPAnthropic,
    ApiSchema::AWSBedrock,
    ApiSchema::AWSAnthropic,
    ApiSchema::GCPVertexAI,
];

fuzz_target!(|data: &[u8]| {
    // The typed decoder round-trips whatever it accepts.
    if let Ok(r) = serde_json::from_slice::<ResponsesRequest>(data) {
        let again = serde_json::to_vec(&r).expect("serialise");
        let back: ResponsesRequest = serde_json::from_slice(&again).expect("re-parse");
        assert_eq!(back, r);
    }
    let body = Bytes::copy_from_slice(data);
    let headers = HeaderMap::new();
    for stream in [false, true] {
        let info = RequestInfo {
            model: "m".into(),
            stream,
            include_usage: false,
            max_tokens: None,
        };
        let ctx = RequestContext {
            body: &body,
            info: &info,
            headers: &headers,
            force_include_usage: stream,
        };
        for name in SCHEMAS {
            let schema = VersionedSchema::new(name);
            for endpoint in [Endpoint::Responses, Endpoint::ResponsesInputTokens] {
                let spec = TranslatorSpec {
                    endpoint,
                    schema: &schema,
                    model_override: None,
                };
                if let Ok(mut t) = ProviderFactory.translator(&spec) {
                    let _ = t.request(&ctx);
                }
            }
        }
    }
});
