//! Gemini response translation (generateContent JSON, streamGenerateContent SSE,
//! embeddings, error bodies) never panics, for any chunking.
#![no_main]

use aigw_core::api::RequestInfo;
use aigw_core::{ClientApi, RequestContext, Translator};
use aigw_providers::vertex;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use libfuzzer_sys::fuzz_target;

fn drive(t: &mut dyn Translator, body: String, data: &[u8], step: usize) {
    let body = Bytes::from(body);
    let info = RequestInfo {
        model: "m".into(),
        stream: false,
        include_usage: true,
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
    let _ = t.response_headers(StatusCode::OK, &headers);
    let chunks: Vec<&[u8]> = data.chunks(step.max(1)).collect();
    let n = chunks.len();
    for (i, c) in chunks.into_iter().enumerate() {
        let _ = t.response_chunk(c, i + 1 == n);
    }
    if n == 0 {
        let _ = t.response_chunk(b"", true);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, data)) = data.split_first() else {
        return;
    };
    let step = usize::from(step);
    for api in [ClientApi::OpenAI, ClientApi::Anthropic] {
        for stream in [true, false] {
            let body = format!(
                r#"{{"model":"gemini-2.5-pro","max_tokens":5,"messages":[{{"role":"user","content":"x"}}],"stream":{stream},"n":1}}"#
            );
            drive(
                &mut vertex::GeminiTranslator::new(api, None),
                body,
                data,
                step,
            );
        }
        let _ = vertex::GeminiTranslator::new(api, None).response_error(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            data,
        );
    }
    for model in ["text-embedding-004", "gemini-embedding-2-preview"] {
        drive(
            &mut vertex::EmbeddingsTranslator::new(None),
            format!(r#"{{"model":"{model}","input":"x"}}"#),
            data,
            step,
        );
    }
});
