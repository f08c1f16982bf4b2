use super::*;
use aigw_core::api::{Endpoint, RequestInfo, sniff};

fn ctx_parts(body: &str, endpoint: Endpoint) -> (Bytes, RequestInfo, HeaderMap) {
    let b = Bytes::from(body.to_owned());
    let info = sniff(endpoint, &b).unwrap();
    (b, info, HeaderMap::new())
}

fn sse_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", "text/event-stream".parse().unwrap());
    h
}

const STREAM: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n\
data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n\
data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n\
data: [DONE]\n\n";

#[test]
fn passthrough_does_not_touch_request_or_response() {
    let (b, info, h) = ctx_parts(
        r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#,
        Endpoint::ChatCompletions,
    );
    let mut t = OpenAiTranslator::new(
        Operation::ChatCompletions,
        Flavor::OpenAI { prefix: None },
        None,
    );
    let req = RequestContext {
        body: &b,
        info: &info,
        headers: &h,
        force_include_usage: true,
    };
    let up = t.request(&req).unwrap();
    assert_eq!(up.body, BodyChange::Unchanged);
    assert_eq!(up.path, "/v1/chat/completions");
    t.response_headers(StatusCode::OK, &sse_headers()).unwrap();
    let mut last = ResponseChunk::default();
    for piece in STREAM.as_bytes().chunks(37) {
        last = t.response_chunk(piece, false).unwrap();
        assert_eq!(
            last.body, None,
            "passthrough chunks are forwarded as received"
        );
    }
    let end = t.response_chunk(b"", true).unwrap();
    assert_eq!(end.body, None);
    assert_eq!(last.usage.input, Some(9));
    assert_eq!(end.usage.cached_input, Some(4));
    assert_eq!(end.usage.total, Some(11));
    assert_eq!(end.response_model.as_deref(), Some("gpt-4o-2024"));
}

#[test]
fn model_override_rewrites_only_model_and_prefix_replaces_v1() {
    let body = r#"{"model":"m","x_vendor":{"k":[1,2]},"messages":[{"role":"user","content":"hi"}],"temperature":1}"#;
    let (b, info, h) = ctx_parts(body, Endpoint::ChatCompletions);
    let mut t = OpenAiTranslator::new(
        Operation::ChatCompletions,
        Flavor::OpenAI {
            prefix: Some("/v1beta/openai/".into()),
        },
        Some("gemini-2.5-flash"),
    );
    let up = t
        .request(&RequestContext {
            body: &b,
            info: &info,
            headers: &h,
            force_include_usage: false,
        })
        .unwrap();
    assert_eq!(up.path, "/v1beta/openai/chat/completions");
    let BodyChange::Replaced(nb) = up.body else {
        panic!("expected a rewrite")
    };
    assert_eq!(
        std::str::from_utf8(&nb).unwrap(),
        body.replace(r#""model":"m""#, r#""model":"gemini-2.5-flash""#)
    );
}

#[test]
fn forced_usage_is_requested_counted_and_stripped() {
    let (b, info, h) = ctx_parts(
        r#"{"model":"gpt-4o","stream":true,"messages":[]}"#,
        Endpoint::ChatCompletions,
    );
    let mut t = OpenAiTranslator::new(
        Operation::ChatCompletions,
        Flavor::OpenAI { prefix: None },
        None,
    );
    let up = t
        .request(&RequestContext {
            body: &b,
            info: &info,
            headers: &h,
            force_include_usage: true,
        })
        .unwrap();
    let BodyChange::Replaced(nb) = up.body else {
        panic!()
    };
    let v: Value = serde_json::from_slice(&nb).unwrap();
    assert_eq!(v["stream_options"]["include_usage"], true);
    t.response_headers(StatusCode::OK, &sse_headers()).unwrap();
    let whole = t.response_chunk(STREAM.as_bytes(), true).unwrap();
    let out = String::from_utf8(whole.body.unwrap().to_vec()).unwrap();
    assert!(
        !out.contains("prompt_tokens"),
        "usage chunk stripped: {out}"
    );
    assert!(out.contains("\"finish_reason\":\"stop\""));
    assert!(out.ends_with("data: [DONE]\n\n"));
    assert_eq!(whole.usage.input, Some(9));

    // Same output for a byte-by-byte feed.
    let mut t2 = OpenAiTranslator::new(
        Operation::ChatCompletions,
        Flavor::OpenAI { prefix: None },
        None,
    );
    t2.request(&RequestContext {
        body: &b,
        info: &info,
        headers: &h,
        force_include_usage: true,
    })
    .unwrap();
    t2.response_headers(StatusCode::OK, &sse_headers()).unwrap();
    let mut acc = Vec::new();
    let mut usage = TokenUsage::default();
    for byte in STREAM.as_bytes() {
        let c = t2
            .response_chunk(std::slice::from_ref(byte), false)
            .unwrap();
        acc.extend_from_slice(&c.body.unwrap());
        usage = c.usage;
    }
    acc.extend_from_slice(&t2.response_chunk(b"", true).unwrap().body.unwrap());
    assert_eq!(String::from_utf8(acc).unwrap(), out);
    assert_eq!(usage, whole.usage);
}

#[test]
fn client_asked_usage_is_not_stripped() {
    let (b, info, h) = ctx_parts(
        r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#,
        Endpoint::ChatCompletions,
    );
    let mut t = OpenAiTranslator::new(
        Operation::ChatCompletions,
        Flavor::OpenAI { prefix: None },
        None,
    );
    let up = t
        .request(&RequestContext {
            body: &b,
            info: &info,
            headers: &h,
            force_include_usage: true,
        })
        .unwrap();
    assert_eq!(up.body, BodyChange::Unchanged);
}

#[test]
fn azure_paths() {
    for (op, endpoint, suffix) in [
        (
            Operation::ChatCompletions,
            Endpoint::ChatCompletions,
            "chat/completions",
        ),
        (Operation::Embeddings, Endpoint::Embeddings, "embeddings"),
        (Operation::Completions, Endpoint::Completions, "completions"),
    ] {
        let (b, info, h) = ctx_parts(
            r#"{"model":"gpt 4o","input":"x","prompt":"p","messages":[]}"#,
            endpoint,
        );
        let mut t = OpenAiTranslator::new(
            op,
            Flavor::Azure {
                version: "2025-01-01-preview".into(),
            },
            None,
        );
        let up = t
            .request(&RequestContext {
                body: &b,
                info: &info,
                headers: &h,
                force_include_usage: false,
            })
            .unwrap();
        assert_eq!(
            up.path,
            format!("/openai/deployments/gpt%204o/{suffix}?api-version=2025-01-01-preview")
        );
        assert_eq!(up.body, BodyChange::Unchanged);
    }
}

#[test]
fn embeddings_usage_and_model_sniffed_from_json() {
    let (b, info, h) = ctx_parts(
        r#"{"model":"text-embedding-3-small","input":["a","b"]}"#,
        Endpoint::Embeddings,
    );
    let mut t = OpenAiTranslator::new(Operation::Embeddings, Flavor::OpenAI { prefix: None }, None);
    t.request(&RequestContext {
        body: &b,
        info: &info,
        headers: &h,
        force_include_usage: true,
    })
    .unwrap();
    let mut jh = HeaderMap::new();
    jh.insert("content-type", "application/json".parse().unwrap());
    t.response_headers(StatusCode::OK, &jh).unwrap();
    let body = br#"{"object":"list","data":[],"model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}}"#;
    let a = t.response_chunk(&body[..20], false).unwrap();
    assert_eq!(a.body, None);
    let c = t.response_chunk(&body[20..], true).unwrap();
    assert_eq!(c.body, None);
    assert_eq!(c.usage.input, Some(5));
    assert_eq!(c.usage.output, None);
    assert_eq!(c.response_model.as_deref(), Some("text-embedding-3-small"));
}

#[test]
fn gzip_stream_is_sniffed_and_forwarded_compressed() {
    use std::io::Write;
    let (b, info, h) = ctx_parts(
        r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#,
        Endpoint::ChatCompletions,
    );
    let mut t = OpenAiTranslator::new(
        Operation::ChatCompletions,
        Flavor::OpenAI { prefix: None },
        None,
    );
    t.request(&RequestContext {
        body: &b,
        info: &info,
        headers: &h,
        force_include_usage: false,
    })
    .unwrap();
    let mut hh = sse_headers();
    hh.insert("content-encoding", "gzip".parse().unwrap());
    assert!(t.response_headers(StatusCode::OK, &hh).unwrap().is_empty());
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(STREAM.as_bytes()).unwrap();
    let packed = e.finish().unwrap();
    let mut usage = TokenUsage::default();
    for piece in packed.chunks(50) {
        let c = t.response_chunk(piece, false).unwrap();
        assert_eq!(c.body, None);
        usage = c.usage;
    }
    let c = t.response_chunk(b"", true).unwrap();
    usage.update(&c.usage);
    assert_eq!(usage.input, Some(9));
}

#[test]
fn errors_are_normalised() {
    let mut t = OpenAiTranslator::new(
        Operation::ChatCompletions,
        Flavor::OpenAI { prefix: None },
        None,
    );
    let e = t
        .response_error(
            StatusCode::TOO_MANY_REQUESTS,
            &HeaderMap::new(),
            b"slow down",
        )
        .unwrap();
    assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
    let v: Value = serde_json::from_slice(&e.body).unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_eq!(v["error"]["message"], "slow down");
}

#[test]
fn splice_rewrite_matches_map_rewrite() {
    for body in [
        r#"{"model":"m","messages":[{"role":"user","content":"a \"model\": x"}]}"#,
        r#"  { "messages": [], "model" : "m" , "stream_options": {"x": 1} }"#,
        r#"{"model":"m","stream_options":null}"#,
        r#"{"model":"m","stream_options":{"include_usage":false}}"#,
        r#"{"model":"m"}"#,
    ] {
        for (model, force) in [(Some("n/é\"q"), false), (None, true), (Some("z"), true)] {
            let fast: Value = serde_json::from_slice(
                &rewrite_openai_body(body.as_bytes(), model, force).unwrap(),
            )
            .unwrap();
            let slow: Value =
                serde_json::from_slice(&rewrite_via_map(body.as_bytes(), model, force).unwrap())
                    .unwrap();
            assert_eq!(fast, slow, "{body} {model:?} {force}");
        }
    }
    // Untouched bytes stay untouched.
    let out = rewrite_openai_body(br#"{"model" : "m",  "x":1.0e0}"#, Some("n"), false).unwrap();
    assert_eq!(&out[..], br#"{"model" : "n",  "x":1.0e0}"#);
    assert!(rewrite_openai_body(b"{\"model\":", Some("n"), false).is_err());
}
