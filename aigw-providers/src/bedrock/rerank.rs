//! Cohere v2 `/v2/rerank` → the Bedrock Agent Runtime `Rerank` API (`POST /rerank` on
//! `bedrock-agent-runtime.{region}.amazonaws.com`, SigV4 service `bedrock`), which serves
//! Cohere Rerank 3.5 and Amazon Rerank on Bedrock and is what the AWS SDKs' `rerank`
//! calls.
//!
//! `{"queries":[{"type":"TEXT","textQuery":{"text"}}],"sources":[{"type":"INLINE",
//! "inlineDocumentSource":{"type":"TEXT","textDocument":{"text"}}}],
//! "rerankingConfiguration":{"type":"BEDROCK_RERANKING_MODEL",
//! "bedrockRerankingConfiguration":{"numberOfResults","modelConfiguration":{"modelArn",
//! "additionalModelRequestFields"}}}}` → `{"results":[{"index","relevanceScore"}]}`.
//! The API takes the model's ARN: the client's model (or the backendRef's
//! `modelNameOverride`) must be one.

use super::{normalize_error, request::BACKEND, request_id};
use crate::canonical::media::{Buffered, JsonCodec, parse_rerank, rerank_response, search_units};
use aigw_core::{ClientApi, Error, ErrorResponse, RequestContext, Result, TokenUsage, Translator};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

/// Cohere rerank → Bedrock Agent Runtime Rerank.
pub fn translator(model_override: Option<&str>) -> Box<dyn Translator> {
    Box::new(Buffered::new(RerankCodec {
        model_override: model_override.map(str::to_owned),
        model: String::new(),
        documents: 0,
    }))
}

#[derive(Debug)]
struct RerankCodec {
    model_override: Option<String>,
    model: String,
    documents: usize,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RerankResponse {
    results: Vec<RerankResult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RerankResult {
    index: u64,
    relevance_score: f64,
}

fn source(doc: &Value) -> Value {
    match doc {
        // Structured records go as JSON documents, which the API ranks as they are.
        Value::Object(m) if !(m.len() == 1 && m.get("text").is_some_and(Value::is_string)) => {
            json!({"type": "INLINE", "inlineDocumentSource": {"type": "JSON", "jsonDocument": doc}})
        }
        _ => json!({"type": "INLINE", "inlineDocumentSource": {
            "type": "TEXT",
            "textDocument": {"text": crate::canonical::media::document_text(doc)},
        }}),
    }
}

impl JsonCodec for RerankCodec {
    fn request(&mut self, req: &RequestContext<'_>) -> Result<(String, Value)> {
        let r = parse_rerank(req.body, self.model_override.as_deref(), BACKEND)?;
        if !r.model.starts_with("arn:") {
            return Err(Error::untranslatable(
                "model",
                BACKEND,
                format!(
                    "Bedrock's Rerank API takes the model's ARN (arn:aws:bedrock:REGION::foundation-model/{}); send it as the model or set it as the backendRef's modelNameOverride",
                    r.model
                ),
            ));
        }
        let mut model_config = json!({"modelArn": r.model});
        if let Some(n) = r.max_tokens_per_doc {
            model_config["additionalModelRequestFields"] = json!({"max_tokens_per_doc": n});
        }
        let mut config = json!({"modelConfiguration": model_config});
        if let Some(n) = r.top_n {
            config["numberOfResults"] = n.into();
        }
        self.documents = r.documents.len();
        let body = json!({
            "queries": [{"type": "TEXT", "textQuery": {"text": r.query}}],
            "sources": r.documents.iter().map(source).collect::<Vec<_>>(),
            "rerankingConfiguration": {
                "type": "BEDROCK_RERANKING_MODEL",
                "bedrockRerankingConfiguration": config,
            },
        });
        self.model = r.model;
        Ok(("/rerank".to_owned(), body))
    }

    fn response(&mut self, headers: &HeaderMap, body: &[u8]) -> Result<(Vec<u8>, TokenUsage)> {
        let r: RerankResponse = serde_json::from_slice(body)
            .map_err(|e| Error::malformed_upstream(format!("Bedrock rerank response: {e}")))?;
        let mut results: Vec<(u64, f64)> = r
            .results
            .iter()
            .map(|x| (x.index, x.relevance_score))
            .collect();
        let id = request_id(headers, "x-amzn-requestid");
        let out = rerank_response(id.as_deref(), &mut results, self.documents);
        // Counted as input, as the Cohere passthrough counts billed search units.
        let units = search_units(self.documents);
        let usage = TokenUsage {
            input: Some(units),
            total: Some(units),
            ..TokenUsage::default()
        };
        Ok((out, usage))
    }

    fn error(&mut self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ErrorResponse {
        normalize_error(ClientApi::OpenAI, status, headers, body)
    }

    fn model(&self) -> &str {
        &self.model
    }
}
