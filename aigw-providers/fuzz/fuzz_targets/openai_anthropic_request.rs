//! Request translation of every OpenAI- and Anthropic-family cell never panics on an
//! arbitrary body (a 400 or 422 is fine).
#![no_main]

use aigw_core::api::{Endpoint, sniff};
use aigw_core::translate::TranslatorSpec;
use aigw_core::{ApiSchema, RequestContext, TranslatorFactory, VersionedSchema};
use aigw_providers::ProviderFactory;
use bytes::Bytes;
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let headers = HeaderMap::new();
    for endpoint in [Endpoint::ChatCompletions, Endpoint::Completions, Endpoint::Embeddings, Endpoint::Messages, Endpoint::CountTokens] {
        let Ok(info) = sniff(endpoint, &body) else { continue };
        for name in [ApiSchema::OpenAI, ApiSchema::AzureOpenAI, ApiSchema::Anthropic, ApiSchema::GCPAnthropic] {
            let schema = VersionedSchema::new(name);
            for model_override in [None, Some("override")] {
                let spec = TranslatorSpec { endpoint, schema: &schema, model_override };
                let Ok(mut t) = ProviderFactory.translator(&spec) else { continue };
                for force_include_usage in [false, true] {
                    let _ = t.request(&RequestContext { body: &body, info: &info, headers: &headers, force_include_usage });
                }
            }
        }
    }
});
