//! Anthropic `…/messages/count_tokens` → Bedrock CountTokens
//! (`POST /model/{modelId}/count-tokens`).
//!
//! The request is `{"input":{"converse":{messages, system, toolConfig}}}` for
//! `AWSBedrock` and `{"input":{"invokeModel":{"body": base64(InvokeModel body)}}}` for
//! `AWSAnthropic`; the answer `{"inputTokens": N}` becomes Anthropic's
//! `{"input_tokens": N}`.

use super::invoke::DEFAULT_VERSION;
use super::request::{BACKEND, converse_body, encode_model_id};
use super::{normalize_error, response::error_message};
use crate::canonical;
use aigw_core::{
    BodyChange, ClientApi, Error, ErrorResponse, HeaderMutation, RequestContext, ResponseChunk,
    Result, Translator, UpstreamRequest,
};
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Map, Value, json};

/// Which request shape CountTokens gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountMode {
    /// `input.converse` (any Bedrock model).
    Converse,
    /// `input.invokeModel` with the Claude InvokeModel body (`AWSAnthropic`).
    InvokeModel,
}

/// Anthropic count_tokens → Bedrock CountTokens.
#[derive(Debug)]
pub struct CountTokensTranslator {
    mode: CountMode,
    model_override: Option<String>,
    version: String,
    buffered: Vec<u8>,
}

impl CountTokensTranslator {
    /// A translator for the given request shape.
    pub fn new(mode: CountMode, model_override: Option<&str>, version: Option<&str>) -> Self {
        Self {
            mode,
            model_override: model_override.map(str::to_owned),
            version: version.unwrap_or(DEFAULT_VERSION).to_owned(),
            buffered: Vec::new(),
        }
    }

    fn converse_input(&self, body: &[u8]) -> Result<(String, Value)> {
        let mut chat = canonical::anthropic::parse(body, BACKEND)?;
        if let Some(m) = &self.model_override {
            chat.model.clone_from(m);
        }
        let full: Map<String, Value> = serde_json::from_slice(&converse_body(&chat)?)
            .map_err(|e| Error::internal(e.to_string()))?;
        let mut input = Map::new();
        for key in [
            "messages",
            "system",
            "toolConfig",
            "additionalModelRequestFields",
        ] {
            if let Some(v) = full.get(key) {
                input.insert(key.into(), v.clone());
            }
        }
        Ok((chat.model, json!({"input": {"converse": input}})))
    }

    fn invoke_input(&self, body: &[u8], headers: &HeaderMap) -> Result<(String, Value)> {
        let mut v: Map<String, Value> = serde_json::from_slice(body)
            .map_err(|e| Error::bad_request(format!("invalid count_tokens request: {e}")))?;
        let model = match (&self.model_override, v.remove("model")) {
            (Some(m), _) => m.clone(),
            (None, Some(Value::String(m))) => m,
            _ => return Err(Error::bad_request("the request body has no `model`")),
        };
        v.remove("stream");
        v.entry("anthropic_version")
            .or_insert_with(|| self.version.clone().into());
        // InvokeModel validates `max_tokens`; it does not change the input count.
        v.entry("max_tokens").or_insert_with(|| 1.into());
        let betas: Vec<&str> = headers
            .get_all("anthropic-beta")
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if !betas.is_empty() {
            v.insert("anthropic_beta".into(), json!(betas));
        }
        let inner = Value::Object(v).to_string();
        let b64 = base64::engine::general_purpose::STANDARD.encode(inner);
        Ok((model, json!({"input": {"invokeModel": {"body": b64}}})))
    }
}

impl Translator for CountTokensTranslator {
    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        let (model, body) = match self.mode {
            CountMode::Converse => self.converse_input(req.body)?,
            CountMode::InvokeModel => self.invoke_input(req.body, req.headers)?,
        };
        let mut headers = HeaderMutation::default();
        headers.set_static("content-type", "application/json");
        headers.remove(http::HeaderName::from_static("anthropic-beta"));
        headers.remove(http::HeaderName::from_static("anthropic-version"));
        Ok(UpstreamRequest {
            method: Method::POST,
            path: format!("/model/{}/count-tokens", encode_model_id(&model)),
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
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Out {
            input_tokens: u64,
        }
        let out: Out = serde_json::from_slice(&self.buffered).map_err(|e| {
            Error::malformed_upstream(format!(
                "Bedrock CountTokens response: {e}: {}",
                error_message(&self.buffered)
            ))
        })?;
        Ok(ResponseChunk {
            body: Some(Bytes::from(
                json!({"input_tokens": out.input_tokens}).to_string(),
            )),
            ..ResponseChunk::default()
        })
    }

    fn response_error(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ErrorResponse> {
        Ok(normalize_error(ClientApi::Anthropic, status, headers, body))
    }
}
