//! Bedrock response translation (Converse JSON, ConverseStream and InvokeModel
//! eventstreams, embeddings, error bodies) never panics, for any chunking.
#![no_main]

use aigw_core::api::RequestInfo;
use aigw_core::{ClientApi, RequestContext, Translator};
use aigw_providers::bedrock;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;

const CHAT: &[u8] = br#"{"model":"anthropic.claude-v2:1","max_tokens":5,"messages":[{"role":"user","content":"x"}],"stream":STREAM}"#;

fn drive(t: &mut dyn Translator, body: &[u8], stream: bool, data: &[u8], step: usize) {
    let body = Bytes::from(
        String::from_utf8_lossy(body).replace("STREAM", if stream { "true" } else { "false" }),
    );
    let info = RequestInfo {
        model: "m".into(),
        stream,
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
            drive(
                &mut bedrock::ConverseTranslator::new(api, None),
                CHAT,
                stream,
                data,
                step,
            );
            drive(
                &mut bedrock::InvokeTranslator::new(api, None, None),
                CHAT,
                stream,
                data,
                step,
            );
        }
        let mut h = HeaderMap::new();
        h.insert(
            "x-amzn-errortype",
            HeaderValue::from_static("ThrottlingException:http://x"),
        );
        let _ = bedrock::ConverseTranslator::new(api, None).response_error(
            StatusCode::TOO_MANY_REQUESTS,
            &h,
            data,
        );
    }
    for model in ["amazon.titan-embed-text-v2:0", "cohere.embed-english-v3"] {
        let req = format!(r#"{{"model":"{model}","input":"x"}}"#);
        drive(
            &mut bedrock::EmbeddingsTranslator::new(None),
            req.as_bytes(),
            false,
            data,
            step,
        );
    }
});
