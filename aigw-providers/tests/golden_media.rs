//! Golden tests: images, audio, rerank and tokenize per (endpoint × backend) cell.
//!
//! Paths are those of the providers' API references: OpenAI `POST /v1/images/generations`,
//! `/v1/images/edits`, `/v1/audio/speech`, `/v1/audio/transcriptions`,
//! `/v1/audio/translations`; Azure OpenAI `POST /openai/deployments/{deployment}/…
//! ?api-version=`; Cohere `POST /v2/rerank`; vLLM `POST /tokenize` and its
//! Cohere-compatible `POST /v2/rerank`. Bodies pass through (a `modelNameOverride`
//! rewrites only `model`, in JSON or in the form); usage is read from the documented
//! response fields. A backend that does not serve an endpoint is a 422 naming both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aigw_core::api::{Endpoint, sniff_request};
use aigw_core::translate::TranslatorSpec;
use aigw_core::{
    ApiSchema, BodyChange, RequestContext, Translator, TranslatorFactory, VersionedSchema,
};
use aigw_providers::ProviderFactory;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};

const FORM_CT: &str = "multipart/form-data; boundary=b0undary";

fn form(model: &str) -> Vec<u8> {
    format!(
        "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\0\0\0\0WAVE\r\n--b0undary\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n{model}\r\n--b0undary--\r\n"
    )
    .into_bytes()
}

/// A request per endpoint, as the providers document it.
fn request(endpoint: Endpoint) -> (Vec<u8>, Option<&'static str>) {
    match endpoint {
        Endpoint::ImageGenerations => (
            br#"{"model":"gpt-image-1","prompt":"a square","n":1,"size":"1024x1024"}"#.to_vec(),
            None,
        ),
        Endpoint::AudioSpeech => (
            br#"{"model":"gpt-4o-mini-tts","input":"hi","voice":"alloy","stream_format":"sse"}"#
                .to_vec(),
            None,
        ),
        Endpoint::Rerank => (
            br#"{"model":"rerank-v3.5","query":"q","documents":["a","b"],"top_n":1}"#.to_vec(),
            None,
        ),
        Endpoint::Tokenize => (br#"{"model":"m","prompt":"a b c"}"#.to_vec(), None),
        _ => (form("whisper-1"), Some(FORM_CT)),
    }
}

/// A response per endpoint with the usage its provider reports.
fn response(endpoint: Endpoint) -> (&'static str, &'static [u8]) {
    match endpoint {
        Endpoint::ImageGenerations | Endpoint::ImageEdits => (
            "application/json",
            br#"{"created":1,"data":[{"b64_json":"AA=="}],"usage":{"input_tokens":5,"output_tokens":272,"total_tokens":277}}"#,
        ),
        Endpoint::AudioSpeech => (
            "text/event-stream",
            b"data: {\"type\":\"speech.audio.delta\",\"audio\":\"AA==\"}\n\ndata: {\"type\":\"speech.audio.done\",\"usage\":{\"input_tokens\":3,\"output_tokens\":9,\"total_tokens\":12}}\n\n",
        ),
        Endpoint::AudioTranscriptions => (
            "application/json",
            br#"{"text":"hi","usage":{"type":"tokens","input_tokens":14,"output_tokens":1,"total_tokens":15}}"#,
        ),
        Endpoint::AudioTranslations => ("application/json", br#"{"text":"hi"}"#),
        Endpoint::Rerank => (
            "application/json",
            br#"{"id":"r","results":[{"index":1,"relevance_score":0.9}],"meta":{"billed_units":{"search_units":1},"tokens":{"input_tokens":7}}}"#,
        ),
        _ => (
            "application/json",
            br#"{"count":3,"max_model_len":8192,"tokens":[1,2,3]}"#,
        ),
    }
}

const ENDPOINTS: [Endpoint; 7] = [
    Endpoint::ImageGenerations,
    Endpoint::ImageEdits,
    Endpoint::AudioSpeech,
    Endpoint::AudioTranscriptions,
    Endpoint::AudioTranslations,
    Endpoint::Rerank,
    Endpoint::Tokenize,
];

fn schemas() -> Vec<(&'static str, VersionedSchema)> {
    let mut prefixed = VersionedSchema::new(ApiSchema::OpenAI);
    prefixed.prefix = Some("/api/v1".into());
    let mut azure = VersionedSchema::new(ApiSchema::AzureOpenAI);
    azure.version = Some("2025-04-01-preview".into());
    vec![
        ("openai", VersionedSchema::new(ApiSchema::OpenAI)),
        ("openai_prefixed", prefixed),
        ("azure", azure),
        ("cohere", VersionedSchema::new(ApiSchema::Cohere)),
        ("anthropic", VersionedSchema::new(ApiSchema::Anthropic)),
        ("bedrock", VersionedSchema::new(ApiSchema::AWSBedrock)),
        ("vertex", VersionedSchema::new(ApiSchema::GCPVertexAI)),
    ]
}

fn cell(endpoint: Endpoint, schema: &VersionedSchema, model_override: Option<&str>) -> String {
    let t = ProviderFactory.translator(&TranslatorSpec {
        endpoint,
        schema,
        model_override,
    });
    let mut t = match t {
        Ok(t) => t,
        Err(e) => {
            return format!(
                "ERROR {}\n{}",
                e.status(),
                String::from_utf8_lossy(&e.to_body(endpoint.client_api()))
            );
        }
    };
    let (body, ct) = request(endpoint);
    let body = Bytes::from(body);
    let mut headers = HeaderMap::new();
    if let Some(ct) = ct {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    let info = sniff_request(endpoint, ct, &body).unwrap();
    let up = t
        .request(&RequestContext {
            body: &body,
            info: &info,
            headers: &headers,
            force_include_usage: false,
        })
        .unwrap();
    let mut s = format!("{} {}\n", up.method, up.path);
    s.push_str(&format!("stream: {}\n", info.stream));
    s.push_str(&format!(
        "client query forwarded: {}\n",
        t.forwards_client_query()
    ));
    match up.body {
        BodyChange::Unchanged => s.push_str("body: <unchanged>\n"),
        BodyChange::Replaced(b) => {
            s.push_str(&format!("body:\n{}\n", String::from_utf8_lossy(&b)));
        }
    }
    let (rct, rbody) = response(endpoint);
    let mut rh = HeaderMap::new();
    rh.insert(header::CONTENT_TYPE, HeaderValue::from_static(rct));
    t.response_headers(StatusCode::OK, &rh).unwrap();
    // Any split gives the same usage; the bytes are never changed.
    let (a, b) = rbody.split_at(rbody.len() / 2);
    let c1 = t.response_chunk(a, false).unwrap();
    let c2 = t.response_chunk(b, true).unwrap();
    assert!(c1.body.is_none() && c2.body.is_none(), "bytes pass through");
    s.push_str(&format!("usage: {:?}\n", c2.usage));
    s
}

/// Cells whose backend has the capability in another shape: translated, with goldens in
/// `golden_media_translated.rs`.
fn translated(endpoint: Endpoint, schema: &str) -> bool {
    match endpoint {
        Endpoint::ImageGenerations | Endpoint::Rerank => matches!(schema, "bedrock" | "vertex"),
        Endpoint::Tokenize => matches!(schema, "anthropic" | "bedrock" | "vertex"),
        _ => false,
    }
}

#[test]
fn every_endpoint_on_every_backend() {
    for endpoint in ENDPOINTS {
        for (name, schema) in schemas() {
            if translated(endpoint, name) {
                continue;
            }
            insta::assert_snapshot!(
                format!("media_{}__{name}", endpoint.operation_name()),
                cell(endpoint, &schema, None)
            );
        }
    }
}

#[test]
fn model_overrides_rewrite_only_the_model() {
    let openai = VersionedSchema::new(ApiSchema::OpenAI);
    for endpoint in [Endpoint::ImageGenerations, Endpoint::AudioTranscriptions] {
        insta::assert_snapshot!(
            format!("media_{}__openai_override", endpoint.operation_name()),
            cell(endpoint, &openai, Some("my-model"))
        );
    }
}

#[test]
fn errors_pass_through_byte_for_byte() {
    let schema = VersionedSchema::new(ApiSchema::OpenAI);
    let mut t = ProviderFactory
        .translator(&TranslatorSpec {
            endpoint: Endpoint::AudioTranscriptions,
            schema: &schema,
            model_override: None,
        })
        .unwrap();
    let body = b"{\n  \"error\": {\"message\": \"Invalid file format.\", \"type\": \"invalid_request_error\"}\n}\n";
    let mut h = HeaderMap::new();
    h.insert("x-request-id", HeaderValue::from_static("req_1"));
    let e = t.response_error(StatusCode::BAD_REQUEST, &h, body).unwrap();
    assert_eq!(&e.body[..], &body[..]);
    let mut out = HeaderMap::new();
    e.headers.apply_to(&mut out);
    assert_eq!(out["x-request-id"], "req_1");
}

/// Audio is metered: seconds of a transcription or translation (duration-billed
/// `usage.seconds`, else the verbose response's `duration`) and characters of speech.
#[test]
fn audio_seconds_and_speech_characters_are_metered() {
    let schema = VersionedSchema::new(ApiSchema::OpenAI);
    let usage = |endpoint: Endpoint, body: &[u8], ct: Option<&'static str>, resp: &[u8]| {
        let mut t = ProviderFactory
            .translator(&TranslatorSpec {
                endpoint,
                schema: &schema,
                model_override: None,
            })
            .unwrap();
        let body = Bytes::copy_from_slice(body);
        let mut headers = HeaderMap::new();
        if let Some(ct) = ct {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        let info = sniff_request(endpoint, ct, &body).unwrap();
        t.request(&RequestContext {
            body: &body,
            info: &info,
            headers: &headers,
            force_include_usage: false,
        })
        .unwrap();
        let mut rh = HeaderMap::new();
        rh.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        t.response_headers(StatusCode::OK, &rh).unwrap();
        t.response_chunk(resp, true).unwrap().usage
    };
    let whisper = usage(
        Endpoint::AudioTranscriptions,
        &form("whisper-1"),
        Some(FORM_CT),
        br#"{"text":"hi","usage":{"type":"duration","seconds":3}}"#,
    );
    assert_eq!(whisper.audio_ms, Some(3000));
    assert_eq!(whisper.audio_seconds(), Some(3));
    let verbose = usage(
        Endpoint::AudioTranslations,
        &form("whisper-1"),
        Some(FORM_CT),
        br#"{"task":"translate","language":"english","duration":8.47,"text":"hi","segments":[]}"#,
    );
    assert_eq!(verbose.audio_ms, Some(8470));
    assert_eq!(verbose.audio_seconds(), Some(9));
    let speech = usage(
        Endpoint::AudioSpeech,
        "{\"model\":\"tts-1\",\"input\":\"Grüße, world\",\"voice\":\"alloy\"}".as_bytes(),
        None,
        b"",
    );
    assert_eq!(speech.characters, Some(12));
}
