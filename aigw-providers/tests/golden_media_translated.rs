//! Golden tests: the translated media cells — images, rerank and tokenize on backends
//! whose API has the capability in another shape.
//!
//! Wire shapes from the providers' references: Bedrock InvokeModel bodies of Amazon
//! Titan Image Generator / Nova Canvas (`taskType: TEXT_IMAGE`) and Stability
//! (`mode: text-to-image`); the Bedrock Agent Runtime `Rerank` operation (botocore's
//! `bedrock-agent-runtime` service model); Imagen `:predict` on Vertex AI; the Vertex AI
//! Ranking API (`rankingConfigs/default_ranking_config:rank`); the count-token APIs of
//! Anthropic (`/v1/messages/count_tokens`), Bedrock (`CountTokens`) and Gemini
//! (`countTokens`). Response bodies follow the same references (the Bedrock and Vertex
//! rerank answers are the shared provider wire samples).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aigw_core::api::{Endpoint, sniff_request};
use aigw_core::translate::TranslatorSpec;
use aigw_core::{
    ApiSchema, BodyChange, RequestContext, Translator, TranslatorFactory, VersionedSchema,
};
use aigw_providers::ProviderFactory;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

struct Cell<'a> {
    endpoint: Endpoint,
    schema: ApiSchema,
    model_override: Option<&'a str>,
    request: &'a str,
    status: u16,
    response_headers: &'a [(&'static str, &'static str)],
    response: &'a str,
}

fn translator(c: &Cell<'_>) -> Result<Box<dyn Translator>, String> {
    let schema = VersionedSchema::new(c.schema);
    ProviderFactory
        .translator(&TranslatorSpec {
            endpoint: c.endpoint,
            schema: &schema,
            model_override: c.model_override,
        })
        .map_err(|e| {
            format!(
                "ERROR {}\n{}",
                e.status(),
                String::from_utf8_lossy(&e.to_body(c.endpoint.client_api()))
            )
        })
}

fn pretty(b: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(b)
        .map(|v| serde_json::to_string_pretty(&v).unwrap())
        .unwrap_or_else(|_| String::from_utf8_lossy(b).into_owned())
}

/// The upstream request, then the client's response, of one cell.
fn run(c: &Cell<'_>) -> String {
    let mut t = match translator(c) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let body = Bytes::from(c.request.to_owned());
    let info = sniff_request(c.endpoint, None, &body).unwrap();
    let headers = HeaderMap::new();
    let up = match t.request(&RequestContext {
        body: &body,
        info: &info,
        headers: &headers,
        force_include_usage: false,
    }) {
        Ok(up) => up,
        Err(e) => {
            return format!(
                "ERROR {}\n{}",
                e.status(),
                String::from_utf8_lossy(&e.to_body(c.endpoint.client_api()))
            );
        }
    };
    let mut s = format!("{} {}\n", up.method, up.path);
    for (k, v) in &up.headers.set {
        s.push_str(&format!("set {k}: {}\n", v.to_str().unwrap()));
    }
    for k in &up.headers.remove {
        s.push_str(&format!("remove {k}\n"));
    }
    match &up.body {
        BodyChange::Unchanged => s.push_str("body: <unchanged>\n"),
        BodyChange::Replaced(b) => s.push_str(&format!("body:\n{}\n", pretty(b))),
    }
    for d in t.dropped_fields() {
        s.push_str(&format!("dropped: {}\n", d.field));
    }
    let mut rh = HeaderMap::new();
    for (k, v) in c.response_headers {
        rh.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    let status = StatusCode::from_u16(c.status).unwrap();
    s.push_str(&format!("--- upstream {status}\n"));
    if !status.is_success() {
        let e = t
            .response_error(status, &rh, c.response.as_bytes())
            .unwrap();
        s.push_str(&format!("client {}\n{}\n", e.status, pretty(&e.body)));
        return s;
    }
    t.response_headers(status, &rh).unwrap();
    // Any split gives the same answer.
    let bytes = c.response.as_bytes();
    let (a, b) = bytes.split_at(bytes.len() / 2);
    let mut out = Vec::new();
    let c1 = t.response_chunk(a, false).unwrap();
    out.extend_from_slice(c1.body.as_deref().unwrap_or(a));
    let c2 = t.response_chunk(b, true).unwrap();
    out.extend_from_slice(c2.body.as_deref().unwrap_or(b));
    let mut v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    if v.get("created").is_some() {
        v["created"] = 0.into();
    }
    s.push_str(&format!(
        "client body:\n{}\nusage: {:?}\nmodel: {:?}\n",
        serde_json::to_string_pretty(&v).unwrap(),
        c2.usage,
        c2.response_model
    ));
    s
}

const TITAN_RESPONSE: &str =
    r#"{"images":["iVBORw0KGgoAAAANSUhEUg==","iVBORw0KGgoAAAANSUhEUh=="],"error":null}"#;

#[test]
fn images_on_bedrock() {
    let cells = [
        (
            "titan",
            r#"{"model":"amazon.titan-image-generator-v2:0","prompt":"a lighthouse at dusk","n":2,"size":"1024x1024","quality":"hd","negative_prompt":"people","seed":42,"user":"u-1"}"#,
            TITAN_RESPONSE,
        ),
        (
            "nova_canvas",
            r#"{"model":"amazon.nova-canvas-v1:0","prompt":"a lighthouse at dusk","size":"1280x720","quality":"standard","response_format":"b64_json"}"#,
            r#"{"images":["iVBORw0KGgoAAAANSUhEUg=="]}"#,
        ),
        (
            "stability",
            r#"{"model":"stability.sd3-5-large-v1:0","prompt":"a lighthouse at dusk","size":"1536x1024","output_format":"jpeg","seed":7}"#,
            r#"{"seeds":[7],"finish_reasons":[null],"images":["/9j/4AAQSkZJRg=="]}"#,
        ),
    ];
    for (name, request, response) in cells {
        insta::assert_snapshot!(
            format!("image_generation__bedrock_{name}"),
            run(&Cell {
                endpoint: Endpoint::ImageGenerations,
                schema: ApiSchema::AWSBedrock,
                model_override: None,
                request,
                status: 200,
                response_headers: &[("x-amzn-requestid", "req-1")],
                response,
            })
        );
    }
}

#[test]
fn images_on_vertex() {
    insta::assert_snapshot!(
        "image_generation__vertex_imagen",
        run(&Cell {
            endpoint: Endpoint::ImageGenerations,
            schema: ApiSchema::GCPVertexAI,
            model_override: Some("imagen-4.0-generate-001"),
            request: r#"{"model":"imagen","prompt":"a lighthouse at dusk","n":2,"size":"2816x1536","output_format":"jpeg","negative_prompt":"people"}"#,
            status: 200,
            response_headers: &[],
            response: r#"{"predictions":[{"bytesBase64Encoded":"/9j/4AAQSkZJRg==","mimeType":"image/jpeg","prompt":"A lighthouse at dusk, warm light"},{"raiFilteredReason":"39322892"},{"bytesBase64Encoded":"/9j/4AAQSkZJRh==","mimeType":"image/jpeg"}]}"#,
        })
    );
}

#[test]
fn images_that_cannot_be_translated_are_422() {
    for (name, schema, request) in [
        (
            "stability_n",
            ApiSchema::AWSBedrock,
            r#"{"model":"stability.sd3-5-large-v1:0","prompt":"p","n":2}"#,
        ),
        (
            "bedrock_not_an_image_model",
            ApiSchema::AWSBedrock,
            r#"{"model":"amazon.nova-pro-v1:0","prompt":"p"}"#,
        ),
        (
            "titan_url",
            ApiSchema::AWSBedrock,
            r#"{"model":"amazon.titan-image-generator-v2:0","prompt":"p","response_format":"url"}"#,
        ),
        (
            "imagen_size",
            ApiSchema::GCPVertexAI,
            r#"{"model":"imagen-3.0-generate-002","prompt":"p","size":"1536x1024"}"#,
        ),
        (
            "imagen_style",
            ApiSchema::GCPVertexAI,
            r#"{"model":"imagen-3.0-generate-002","prompt":"p","style":"vivid"}"#,
        ),
        (
            "anthropic",
            ApiSchema::Anthropic,
            r#"{"model":"claude","prompt":"p"}"#,
        ),
    ] {
        insta::assert_snapshot!(
            format!("image_generation__422_{name}"),
            run(&Cell {
                endpoint: Endpoint::ImageGenerations,
                schema,
                model_override: None,
                request,
                status: 200,
                response_headers: &[],
                response: "{}",
            })
        );
    }
}

const RERANK: &str = r#"{"model":"rerank-v3.5","query":"What is the capital of the United States?","documents":["Carson City is the capital city of the American state of Nevada.",{"text":"Washington, D.C. is the capital of the United States."},"Capital punishment has existed in the United States since colonial times."],"top_n":2}"#;
const COHERE_ON_BEDROCK: &str = "arn:aws:bedrock:us-west-2::foundation-model/cohere.rerank-v3-5:0";

#[test]
fn rerank_on_bedrock_and_vertex() {
    insta::assert_snapshot!(
        "rerank__bedrock",
        run(&Cell {
            endpoint: Endpoint::Rerank,
            schema: ApiSchema::AWSBedrock,
            model_override: Some(COHERE_ON_BEDROCK),
            request: RERANK,
            status: 200,
            response_headers: &[("x-amzn-requestid", "5e7d-req")],
            response: include_str!("fixtures/media/bedrock_rerank.json"),
        })
    );
    insta::assert_snapshot!(
        "rerank__bedrock_json_documents",
        run(&Cell {
            endpoint: Endpoint::Rerank,
            schema: ApiSchema::AWSBedrock,
            model_override: None,
            request: r#"{"model":"arn:aws:bedrock:us-west-2::foundation-model/amazon.rerank-v1:0","query":"q","documents":[{"title":"t","body":"b"}],"max_tokens_per_doc":512}"#,
            status: 200,
            response_headers: &[],
            response: r#"{"results":[{"index":0,"relevanceScore":0.5}]}"#,
        })
    );
    insta::assert_snapshot!(
        "rerank__vertex",
        run(&Cell {
            endpoint: Endpoint::Rerank,
            schema: ApiSchema::GCPVertexAI,
            model_override: Some("semantic-ranker-default-004"),
            request: RERANK,
            status: 200,
            response_headers: &[],
            response: include_str!("fixtures/media/vertex_rerank.json"),
        })
    );
    insta::assert_snapshot!(
        "rerank__vertex_no_scores",
        run(&Cell {
            endpoint: Endpoint::Rerank,
            schema: ApiSchema::GCPVertexAI,
            model_override: Some("semantic-ranker-fast-004"),
            request: RERANK,
            status: 200,
            response_headers: &[],
            response: include_str!("fixtures/media/vertex_rerank_no_details.json"),
        })
    );
}

#[test]
fn rerank_errors() {
    insta::assert_snapshot!(
        "rerank__422_bedrock_model_id",
        run(&Cell {
            endpoint: Endpoint::Rerank,
            schema: ApiSchema::AWSBedrock,
            model_override: None,
            request: RERANK,
            status: 200,
            response_headers: &[],
            response: "{}",
        })
    );
    insta::assert_snapshot!(
        "rerank__422_return_documents",
        run(&Cell {
            endpoint: Endpoint::Rerank,
            schema: ApiSchema::GCPVertexAI,
            model_override: None,
            request: r#"{"model":"semantic-ranker-default-004","query":"q","documents":["a"],"return_documents":true}"#,
            status: 200,
            response_headers: &[],
            response: "{}",
        })
    );
    insta::assert_snapshot!(
        "rerank__bedrock_validation_error",
        run(&Cell {
            endpoint: Endpoint::Rerank,
            schema: ApiSchema::AWSBedrock,
            model_override: Some(COHERE_ON_BEDROCK),
            request: RERANK,
            status: 400,
            response_headers: &[
                (
                    "x-amzn-errortype",
                    "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"
                ),
                ("x-amzn-requestid", "5e7d-req"),
            ],
            response: r#"{"message":"1 validation error detected: Value at 'rerankingConfiguration.bedrockRerankingConfiguration.numberOfResults' failed to satisfy constraint"}"#,
        })
    );
    insta::assert_snapshot!(
        "rerank__vertex_permission_error",
        run(&Cell {
            endpoint: Endpoint::Rerank,
            schema: ApiSchema::GCPVertexAI,
            model_override: None,
            request: r#"{"model":"semantic-ranker-default-004","query":"q","documents":["a"]}"#,
            status: 403,
            response_headers: &[],
            response: r#"{"error":{"code":403,"message":"Discovery Engine API has not been used in project 1 before or it is disabled.","status":"PERMISSION_DENIED"}}"#,
        })
    );
}

#[test]
fn tokenize_over_count_tokens() {
    let prompt = r#"{"model":"m","prompt":"The quick brown fox","add_special_tokens":true}"#;
    let chat = r#"{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is the weather?"}],"tools":[{"type":"function","function":{"name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"add_generation_prompt":true}"#;
    for (name, schema, ovr, request, response) in [
        (
            "anthropic_prompt",
            ApiSchema::Anthropic,
            Some("claude-sonnet-4-5"),
            prompt,
            r#"{"input_tokens":12}"#,
        ),
        (
            "anthropic_chat",
            ApiSchema::Anthropic,
            Some("claude-sonnet-4-5"),
            chat,
            r#"{"input_tokens":402}"#,
        ),
        (
            "gcp_anthropic",
            ApiSchema::GCPAnthropic,
            Some("claude-sonnet-4-5@20250929"),
            prompt,
            r#"{"input_tokens":12}"#,
        ),
        (
            "bedrock",
            ApiSchema::AWSBedrock,
            Some("anthropic.claude-sonnet-4-5-20250929-v1:0"),
            chat,
            r#"{"inputTokens":402}"#,
        ),
        (
            "aws_anthropic",
            ApiSchema::AWSAnthropic,
            Some("anthropic.claude-sonnet-4-5-20250929-v1:0"),
            prompt,
            r#"{"inputTokens":12}"#,
        ),
        (
            "vertex",
            ApiSchema::GCPVertexAI,
            Some("gemini-2.5-flash"),
            chat,
            r#"{"totalTokens":31,"promptTokensDetails":[{"modality":"TEXT","tokenCount":31}]}"#,
        ),
    ] {
        insta::assert_snapshot!(
            format!("tokenize__{name}"),
            run(&Cell {
                endpoint: Endpoint::Tokenize,
                schema,
                model_override: ovr,
                request,
                status: 200,
                response_headers: &[],
                response,
            })
        );
    }
}

#[test]
fn tokenize_errors() {
    insta::assert_snapshot!(
        "tokenize__422_token_strs",
        run(&Cell {
            endpoint: Endpoint::Tokenize,
            schema: ApiSchema::Anthropic,
            model_override: None,
            request: r#"{"model":"claude-sonnet-4-5","prompt":"a","return_token_strs":true}"#,
            status: 200,
            response_headers: &[],
            response: "{}",
        })
    );
    insta::assert_snapshot!(
        "tokenize__anthropic_rate_limited",
        run(&Cell {
            endpoint: Endpoint::Tokenize,
            schema: ApiSchema::Anthropic,
            model_override: None,
            request: r#"{"model":"claude-sonnet-4-5","prompt":"a"}"#,
            status: 429,
            response_headers: &[("request-id", "req_011"), ("retry-after", "3")],
            response: r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#,
        })
    );
}
