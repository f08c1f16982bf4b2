//! Anthropic `…/messages/count_tokens` → Gemini `:countTokens` on Vertex AI.
//!
//! The request carries the same `contents`, `systemInstruction` and `tools` a
//! `generateContent` call would; the answer's `totalTokens` becomes Anthropic's
//! `{"input_tokens": N}`.

use super::normalize_error;
use super::request::{BACKEND, generate_content_body};
use crate::canonical;
use aigw_core::{
    BodyChange, ClientApi, Error, ErrorResponse, HeaderMutation, RequestContext, ResponseChunk,
    Result, Translator, UpstreamRequest,
};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Map, Value, json};

/// Anthropic count_tokens → Gemini countTokens.
#[derive(Debug)]
pub struct CountTokensTranslator {
    model_override: Option<String>,
    buffered: Vec<u8>,
}

impl CountTokensTranslator {
    /// A translator with the backendRef's model override.
    pub fn new(model_override: Option<&str>) -> Self {
        Self {
            model_override: model_override.map(str::to_owned),
            buffered: Vec::new(),
        }
    }
}

impl Translator for CountTokensTranslator {
    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        let mut chat = canonical::anthropic::parse(req.body, BACKEND)?;
        if let Some(m) = &self.model_override {
            chat.model.clone_from(m);
        }
        let full: Map<String, Value> = serde_json::from_slice(&generate_content_body(&chat)?)
            .map_err(|e| Error::internal(e.to_string()))?;
        let body: Map<String, Value> = full
            .into_iter()
            .filter(|(k, _)| matches!(k.as_str(), "contents" | "systemInstruction" | "tools"))
            .collect();
        let mut headers = HeaderMutation::default();
        headers.set_static("content-type", "application/json");
        Ok(UpstreamRequest {
            method: Method::POST,
            path: format!("/publishers/google/models/{}:countTokens", chat.model),
            headers,
            body: BodyChange::Replaced(Bytes::from(Value::Object(body).to_string())),
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
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Out {
            total_tokens: u64,
        }
        let out: Out = serde_json::from_slice(&self.buffered)
            .map_err(|e| Error::malformed_upstream(format!("Gemini countTokens response: {e}")))?;
        Ok(ResponseChunk {
            body: Some(Bytes::from(
                json!({"input_tokens": out.total_tokens}).to_string(),
            )),
            ..ResponseChunk::default()
        })
    }

    fn response_error(
        &mut self,
        status: StatusCode,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ErrorResponse> {
        Ok(normalize_error(ClientApi::Anthropic, status, body))
    }
}
