//! OpenAI embeddings → Vertex AI.
//!
//! `text-embedding-*`, `text-multilingual-embedding-*` and `gemini-embedding-001` use
//! `:predict` with `{"instances":[{"content","task_type","title"}],"parameters":{…}}`
//! and answer `predictions[].embeddings.{values,statistics.token_count}`; newer Gemini
//! embedding models use `:embedContent` (one text per call) and answer
//! `{"embedding":{"values"},"usageMetadata"}`.

use super::request::BACKEND;
use crate::canonical::embeddings::{self, EmbeddingsRequest};
use aigw_core::{
    BodyChange, ClientApi, Error, ErrorResponse, HeaderMutation, RequestContext, ResponseChunk,
    Result, TokenUsage, Translator, UpstreamRequest,
};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

/// OpenAI `/v1/embeddings` → Vertex `:predict` or `:embedContent`.
#[derive(Debug)]
pub struct EmbeddingsTranslator {
    model_override: Option<String>,
    model: String,
    embed_content: bool,
    base64: bool,
    buffered: Vec<u8>,
}

impl EmbeddingsTranslator {
    /// A translator with the backendRef's model override.
    pub fn new(model_override: Option<&str>) -> Self {
        Self {
            model_override: model_override.map(str::to_owned),
            model: String::new(),
            embed_content: false,
            base64: false,
            buffered: Vec::new(),
        }
    }
}

/// Whether the model is served by `:embedContent` rather than `:predict`.
fn uses_embed_content(model: &str) -> bool {
    model.starts_with("gemini-embedding") && model != "gemini-embedding-001"
}

fn predict_body(req: &EmbeddingsRequest) -> Value {
    let instances: Vec<Value> = req
        .inputs
        .iter()
        .map(|text| {
            let mut i = json!({"content": text});
            if let Some(t) = &req.task_type {
                i["task_type"] = t.as_str().into();
            }
            if let Some(t) = &req.title {
                i["title"] = t.as_str().into();
            }
            i
        })
        .collect();
    let mut params = serde_json::Map::new();
    if let Some(d) = req.dimensions {
        params.insert("outputDimensionality".into(), d.into());
    }
    if let Some(a) = req.auto_truncate {
        params.insert("autoTruncate".into(), a.into());
    }
    let mut body = json!({"instances": instances});
    if !params.is_empty() {
        body["parameters"] = Value::Object(params);
    }
    body
}

fn embed_content_body(req: &EmbeddingsRequest) -> Result<Value> {
    if req.inputs.len() > 1 {
        return Err(Error::untranslatable(
            "input",
            BACKEND,
            "embedContent embeds one text per request; send one input",
        ));
    }
    let mut body = json!({"content": {"parts": [{"text": req.inputs[0]}]}});
    if let Some(t) = &req.task_type {
        body["taskType"] = t.as_str().into();
    }
    if let Some(t) = &req.title {
        body["title"] = t.as_str().into();
    }
    if let Some(d) = req.dimensions {
        body["outputDimensionality"] = d.into();
    }
    if let Some(a) = req.auto_truncate {
        body["autoTruncate"] = a.into();
    }
    Ok(body)
}

#[derive(Deserialize)]
struct Predict {
    predictions: Vec<Prediction>,
}

#[derive(Deserialize)]
struct Prediction {
    embeddings: PredEmbedding,
}

#[derive(Deserialize)]
struct PredEmbedding {
    values: Vec<f64>,
    #[serde(default)]
    statistics: Option<Stats>,
}

#[derive(Deserialize)]
struct Stats {
    #[serde(default)]
    token_count: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmbedContent {
    embedding: Values,
    #[serde(default)]
    usage_metadata: Option<EmbedUsage>,
}

#[derive(Deserialize)]
struct Values {
    values: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmbedUsage {
    #[serde(default)]
    prompt_token_count: Option<u64>,
}

impl Translator for EmbeddingsTranslator {
    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        let mut parsed = embeddings::parse(req.body, BACKEND)?;
        if let Some(m) = &self.model_override {
            parsed.model.clone_from(m);
        }
        self.model.clone_from(&parsed.model);
        self.base64 = parsed.base64;
        self.embed_content = uses_embed_content(&parsed.model);
        let (body, method) = if self.embed_content {
            (embed_content_body(&parsed)?, "embedContent")
        } else {
            (predict_body(&parsed), "predict")
        };
        let mut headers = HeaderMutation::default();
        headers.set_static("content-type", "application/json");
        Ok(UpstreamRequest {
            method: Method::POST,
            path: format!("/publishers/google/models/{}:{method}", parsed.model),
            headers,
            body: BodyChange::Replaced(Bytes::from(body.to_string())),
        })
    }

    fn response_headers(
        &mut self,
        _status: StatusCode,
        _headers: &HeaderMap,
    ) -> Result<HeaderMutation> {
        Ok(HeaderMutation::json_body())
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<ResponseChunk> {
        self.buffered.extend_from_slice(chunk);
        if !end_of_stream {
            return Ok(ResponseChunk {
                body: Some(Bytes::new()),
                ..ResponseChunk::default()
            });
        }
        let malformed = |e: serde_json::Error| {
            Error::malformed_upstream(format!("Vertex embeddings response: {e}"))
        };
        let (vectors, tokens) = if self.embed_content {
            let r: EmbedContent = serde_json::from_slice(&self.buffered).map_err(malformed)?;
            (
                vec![r.embedding.values],
                r.usage_metadata.and_then(|u| u.prompt_token_count),
            )
        } else {
            let r: Predict = serde_json::from_slice(&self.buffered).map_err(malformed)?;
            let mut tokens = None;
            let mut vectors = Vec::with_capacity(r.predictions.len());
            for p in r.predictions {
                if let Some(n) = p.embeddings.statistics.and_then(|s| s.token_count) {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let n = n as u64;
                    tokens = Some(tokens.unwrap_or(0) + n);
                }
                vectors.push(p.embeddings.values);
            }
            (vectors, tokens)
        };
        let usage = TokenUsage {
            input: tokens,
            total: tokens,
            ..TokenUsage::default()
        };
        let body = embeddings::openai_response(&self.model, &vectors, self.base64, &usage);
        Ok(ResponseChunk {
            body: Some(Bytes::from(body)),
            usage,
            response_model: Some(self.model.clone()),
        })
    }

    fn response_error(
        &mut self,
        status: StatusCode,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ErrorResponse> {
        Ok(super::normalize_error(ClientApi::OpenAI, status, body))
    }
}
