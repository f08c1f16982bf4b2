//! Test doubles shared by the integration tests: a catalog with two backends and a
//! translator that makes every step visible on the wire.
#![allow(unreachable_pub, dead_code, clippy::print_stderr)]

pub mod envoy;
#[path = "../../../aigw-axum/tests/peers/redis.rs"]
pub mod redis;
pub mod stack;

use aigw_core::exchange::{ExchangeRecord, Target, UpstreamAddr};
use aigw_core::translate::TranslatorSpec;
use aigw_core::{
    ApiSchema, BodyChange, Error, ErrorResponse, HeaderMutation, RequestContext, ResponseChunk,
    Result, TokenUsage, Translator, TranslatorFactory, UpstreamRequest, VersionedSchema,
};
use aigw_extproc::Catalog;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use std::sync::Arc;

pub const OPENAI_BACKEND: &str = "default/openai/route/default/chat/rule/0/ref/0";
pub const OTHER_BACKEND: &str = "default/other/route/default/chat/rule/0/ref/1";

/// Serves `gpt-test` through two backends: an OpenAI passthrough and an "Other" schema
/// whose translator rewrites the path, adds a header and upper-cases the body.
pub struct TestCatalog {
    pub upstream: String,
}

impl Catalog for TestCatalog {
    fn route(&self, model: &str, _headers: &HeaderMap) -> Result<Arc<str>> {
        if model == "gpt-test" || model == "gpt-other" {
            Ok(Arc::from("default/chat"))
        } else {
            Err(Error::NoRoute {
                model: model.to_owned(),
            })
        }
    }

    fn target(&self, name: &str) -> Option<Arc<Target>> {
        let (backend, schema) = match name {
            OPENAI_BACKEND => ("default/openai", ApiSchema::OpenAI),
            OTHER_BACKEND => ("default/other", ApiSchema::Anthropic),
            _ => return None,
        };
        Some(Arc::new(Target {
            backend: Arc::from(backend),
            schema: VersionedSchema::new(schema),
            upstream: UpstreamAddr {
                scheme: "http".into(),
                authority: self.upstream.as_str().into(),
            },
            model_override: None,
            headers: HeaderMutation::default(),
            body: Default::default(),
            credential: None,
            priority: 0,
        }))
    }

    fn costs(&self, r: &ExchangeRecord) -> Vec<(String, u64)> {
        vec![(
            "llm_total_token".into(),
            r.usage.total_or_sum().unwrap_or(0),
        )]
    }

    fn body_limit(&self) -> Option<u64> {
        Some(8 << 20)
    }

    fn models(&self, _host: Option<&str>) -> Vec<aigw_core::routing::ModelInfo> {
        vec![aigw_core::routing::ModelInfo {
            id: "gpt-test".into(),
            owned_by: "default".into(),
            created: 0,
            hostnames: Vec::new(),
        }]
    }
}

pub struct TestFactory;

impl TranslatorFactory for TestFactory {
    fn translator(&self, spec: &TranslatorSpec<'_>) -> Result<Box<dyn Translator>> {
        Ok(Box::new(TestTranslator {
            rewrite: spec.schema.name != ApiSchema::OpenAI,
            seen: 0,
        }))
    }
}

/// Passthrough for OpenAI; for the other schema: path `/other`, header `x-other: 1`,
/// upper-cased body; response chunks are upper-cased too. Usage: one output token per
/// response byte, input 3.
pub struct TestTranslator {
    rewrite: bool,
    seen: u64,
}

impl Translator for TestTranslator {
    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        if !self.rewrite {
            return Ok(UpstreamRequest {
                method: Method::POST,
                path: "/v1/chat/completions".into(),
                headers: HeaderMutation::default(),
                body: BodyChange::Unchanged,
            });
        }
        let mut headers = HeaderMutation::default();
        headers.set_static("x-other", "1");
        Ok(UpstreamRequest {
            method: Method::POST,
            path: "/other".into(),
            headers,
            body: BodyChange::Replaced(Bytes::from(req.body.to_ascii_uppercase())),
        })
    }

    fn response_headers(&mut self, _s: StatusCode, _h: &HeaderMap) -> Result<HeaderMutation> {
        let mut m = HeaderMutation::default();
        if self.rewrite {
            m.set_static("x-translated", "yes");
        }
        Ok(m)
    }

    fn response_chunk(&mut self, chunk: &[u8], _end: bool) -> Result<ResponseChunk> {
        self.seen += chunk.len() as u64;
        Ok(ResponseChunk {
            body: self
                .rewrite
                .then(|| Bytes::from(chunk.to_ascii_uppercase())),
            usage: TokenUsage {
                input: Some(3),
                output: Some(self.seen),
                ..Default::default()
            },
            response_model: Some("gpt-test-2025".into()),
        })
    }

    fn response_error(
        &mut self,
        status: StatusCode,
        _h: &HeaderMap,
        body: &[u8],
    ) -> Result<ErrorResponse> {
        let mut headers = HeaderMutation::default();
        headers.set_static("content-type", "application/json");
        Ok(ErrorResponse {
            status,
            headers,
            body: Bytes::from(format!(
                "{{\"error\":{{\"message\":{:?},\"type\":\"upstream\"}}}}",
                String::from_utf8_lossy(body)
            )),
        })
    }
}
