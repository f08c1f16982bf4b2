//! Cohere v2 `/v2/rerank` → the Vertex AI Ranking API (Discovery Engine
//! `rankingConfigs/default_ranking_config:rank` on `discoveryengine.googleapis.com`).
//!
//! `{"model","query","records":[{"id","content"}],"topN",
//! "ignoreRecordDetailsInResponse":true}` → `{"records":[{"id","score"}]}`; record ids
//! are the documents' indices, so each result maps back to Cohere's `index`. The GCP
//! credential puts `/v1/projects/{project}/locations/{location}` before the path: the
//! backend's location is the ranking config's (`global`).

use super::{normalize_error, request::BACKEND};
use crate::canonical::media::{
    Buffered, JsonCodec, document_text, parse_rerank, rerank_response, search_units,
};
use aigw_core::{ClientApi, Error, ErrorResponse, RequestContext, Result, TokenUsage, Translator};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

/// The ranking config every project has.
const CONFIG_PATH: &str = "/rankingConfigs/default_ranking_config:rank";

/// Cohere rerank → Vertex AI Ranking API.
pub fn translator(model_override: Option<&str>) -> Box<dyn Translator> {
    Box::new(Buffered::new(RankCodec {
        model_override: model_override.map(str::to_owned),
        model: String::new(),
        documents: 0,
    }))
}

#[derive(Debug)]
struct RankCodec {
    model_override: Option<String>,
    model: String,
    documents: usize,
}

#[derive(Deserialize)]
struct RankResponse {
    #[serde(default)]
    records: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    id: String,
    #[serde(default)]
    score: Option<f64>,
}

fn record(i: usize, doc: &Value) -> Value {
    let mut r = json!({"id": i.to_string(), "content": document_text(doc)});
    if let Some(t) = doc.get("title").and_then(Value::as_str) {
        r["title"] = t.into();
        if let Some(c) = doc.get("text").and_then(Value::as_str) {
            r["content"] = c.into();
        }
    }
    r
}

impl JsonCodec for RankCodec {
    fn request(&mut self, req: &RequestContext<'_>) -> Result<(String, Value)> {
        let r = parse_rerank(req.body, self.model_override.as_deref(), BACKEND)?;
        if r.max_tokens_per_doc.is_some() {
            return Err(Error::untranslatable(
                "max_tokens_per_doc",
                BACKEND,
                "the Ranking API truncates records itself (per model) and has no such limit",
            ));
        }
        let mut body = json!({
            "model": r.model,
            "query": r.query,
            "records": r.documents.iter().enumerate().map(|(i, d)| record(i, d)).collect::<Vec<_>>(),
            "ignoreRecordDetailsInResponse": true,
        });
        if let Some(n) = r.top_n {
            body["topN"] = n.into();
        }
        self.documents = r.documents.len();
        self.model = r.model;
        Ok((CONFIG_PATH.to_owned(), body))
    }

    fn response(&mut self, _headers: &HeaderMap, body: &[u8]) -> Result<(Vec<u8>, TokenUsage)> {
        let r: RankResponse = serde_json::from_slice(body)
            .map_err(|e| Error::malformed_upstream(format!("Ranking API response: {e}")))?;
        let mut results = Vec::with_capacity(r.records.len());
        for rec in r.records {
            let index: u64 = rec.id.parse().map_err(|_| {
                Error::malformed_upstream(format!("Ranking API record id {:?} is not ours", rec.id))
            })?;
            results.push((index, rec.score.unwrap_or(0.0)));
        }
        let out = rerank_response(None, &mut results, self.documents);
        let units = search_units(self.documents);
        let usage = TokenUsage {
            input: Some(units),
            total: Some(units),
            ..TokenUsage::default()
        };
        Ok((out, usage))
    }

    fn error(&mut self, status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> ErrorResponse {
        normalize_error(ClientApi::OpenAI, status, body)
    }

    fn model(&self) -> &str {
        &self.model
    }
}
