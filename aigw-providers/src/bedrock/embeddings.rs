//! OpenAI embeddings → Bedrock InvokeModel for Amazon Titan (`amazon.titan-embed-*`,
//! one text per call) and Cohere (`cohere.embed-*`, a batch of texts per call).
//!
//! Titan body: `{"inputText", "dimensions"}` → `{"embedding", "inputTextTokenCount"}`.
//! Cohere body: `{"texts", "input_type", "output_dimension"}` →
//! `{"embeddings": [[…]] | {"float": [[…]]}}`; Cohere returns no token count in the body,
//! so usage comes from the `x-amzn-bedrock-input-token-count` response header that
//! InvokeModel sets for every model.

use super::request::{BACKEND, encode_model_id};
use crate::canonical::embeddings::{self, EmbeddingsRequest};
use aigw_core::{
    BodyChange, ClientApi, Error, ErrorResponse, HeaderMutation, RequestContext, ResponseChunk,
    Result, TokenUsage, Translator, UpstreamRequest,
};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Titan,
    Cohere,
}

/// OpenAI `/v1/embeddings` → Bedrock Titan or Cohere embeddings.
#[derive(Debug)]
pub struct EmbeddingsTranslator {
    model_override: Option<String>,
    model: String,
    family: Family,
    base64: bool,
    usage: TokenUsage,
    buffered: Vec<u8>,
}

impl EmbeddingsTranslator {
    /// A translator with the backendRef's model override.
    pub fn new(model_override: Option<&str>) -> Self {
        Self {
            model_override: model_override.map(str::to_owned),
            model: String::new(),
            family: Family::Titan,
            base64: false,
            usage: TokenUsage::default(),
            buffered: Vec::new(),
        }
    }
}

fn family(model: &str) -> Result<Family> {
    if model.contains("cohere.embed") {
        Ok(Family::Cohere)
    } else if model.contains("titan-embed") {
        Ok(Family::Titan)
    } else {
        Err(Error::untranslatable(
            "model",
            BACKEND,
            format!(
                "{model:?} is not a Titan (amazon.titan-embed-*) or Cohere (cohere.embed-*) embedding model"
            ),
        ))
    }
}

/// Builds the InvokeModel body for `req`.
fn body(req: &EmbeddingsRequest, family: Family) -> Result<Value> {
    Ok(match family {
        Family::Titan => {
            if req.inputs.len() > 1 {
                return Err(Error::untranslatable(
                    "input",
                    BACKEND,
                    "Titan embeds one text per request; send one input or use a Cohere model",
                ));
            }
            let mut b = json!({"inputText": req.inputs[0]});
            if let Some(d) = req.dimensions {
                b["dimensions"] = d.into();
            }
            b
        }
        Family::Cohere => {
            let mut b = json!({
                "texts": req.inputs,
                "input_type": req.task_type.as_deref().map_or("search_document", cohere_input_type),
                "embedding_types": ["float"],
            });
            if let Some(d) = req.dimensions {
                b["output_dimension"] = d.into();
            }
            if req.auto_truncate == Some(true) {
                b["truncate"] = "END".into();
            }
            b
        }
    })
}

/// Vertex-style task types (accepted on the OpenAI request as an extension) mapped to
/// Cohere's `input_type`.
fn cohere_input_type(task: &str) -> &'static str {
    match task {
        "RETRIEVAL_QUERY" | "QUESTION_ANSWERING" => "search_query",
        "CLASSIFICATION" => "classification",
        "CLUSTERING" => "clustering",
        _ => "search_document",
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanResponse {
    embedding: Vec<f64>,
    #[serde(default)]
    input_text_token_count: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CohereEmbeddings {
    Floats(Vec<Vec<f64>>),
    ByType { float: Vec<Vec<f64>> },
}

#[derive(Deserialize)]
struct CohereResponse {
    embeddings: CohereEmbeddings,
}

impl Translator for EmbeddingsTranslator {
    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        let mut parsed = embeddings::parse(req.body, BACKEND)?;
        if let Some(m) = &self.model_override {
            parsed.model.clone_from(m);
        }
        self.family = family(&parsed.model)?;
        self.model.clone_from(&parsed.model);
        self.base64 = parsed.base64;
        let body = body(&parsed, self.family)?;
        let mut headers = HeaderMutation::default();
        headers.set_static("content-type", "application/json");
        headers.set_static("accept", "application/json");
        Ok(UpstreamRequest {
            method: Method::POST,
            path: format!("/model/{}/invoke", encode_model_id(&parsed.model)),
            headers,
            body: BodyChange::Replaced(Bytes::from(body.to_string())),
        })
    }

    fn response_headers(
        &mut self,
        _status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<HeaderMutation> {
        if let Some(n) = headers
            .get("x-amzn-bedrock-input-token-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            self.usage = TokenUsage {
                input: Some(n),
                total: Some(n),
                ..TokenUsage::default()
            };
        }
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
            Error::malformed_upstream(format!("Bedrock embeddings response: {e}"))
        };
        let vectors = match self.family {
            Family::Titan => {
                let r: TitanResponse = serde_json::from_slice(&self.buffered).map_err(malformed)?;
                if let Some(n) = r.input_text_token_count {
                    self.usage = TokenUsage {
                        input: Some(n),
                        total: Some(n),
                        ..TokenUsage::default()
                    };
                }
                vec![r.embedding]
            }
            Family::Cohere => {
                let r: CohereResponse =
                    serde_json::from_slice(&self.buffered).map_err(malformed)?;
                match r.embeddings {
                    CohereEmbeddings::Floats(v) | CohereEmbeddings::ByType { float: v } => v,
                }
            }
        };
        let body = embeddings::openai_response(&self.model, &vectors, self.base64, &self.usage);
        Ok(ResponseChunk {
            body: Some(Bytes::from(body)),
            usage: self.usage,
            response_model: Some(self.model.clone()),
        })
    }

    fn response_error(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ErrorResponse> {
        Ok(super::normalize_error(
            ClientApi::OpenAI,
            status,
            headers,
            body,
        ))
    }
}
