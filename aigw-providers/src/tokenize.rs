//! vLLM's `POST /tokenize` on the backends with a token-counting API (Anthropic
//! `/v1/messages/count_tokens`, Claude on Vertex, Bedrock `CountTokens`, Gemini
//! `countTokens`): the request (`prompt`, or chat `messages` + `tools`) becomes the
//! Anthropic Messages body every count-tokens translator takes, and the count comes back
//! in vLLM's shape, `{"count","max_model_len","tokens"}`.
//!
//! These APIs count; they do not tokenize: `tokens` is empty and `max_model_len` null,
//! and `return_token_strs` is a 422.

use crate::anthropic::request::chat_to_messages;
use crate::responses::input_tokens::{
    count_request, count_response_chunk, count_response_error, count_response_headers,
};
use aigw_core::api::anthropic::MessagesRequest;
use aigw_core::api::openai::ChatCompletionRequest;
use aigw_core::{
    DroppedField, Error, ErrorResponse, HeaderMutation, RequestContext, ResponseChunk, Result,
    Translator, UpstreamRequest,
};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Wraps a backend's count-tokens translator (Anthropic Messages in) to serve vLLM
/// tokenize requests.
pub struct TokenizeOverCount {
    inner: Box<dyn Translator>,
    backend: String,
    buffered: Vec<u8>,
    dropped: Vec<DroppedField>,
    model: Option<String>,
}

impl std::fmt::Debug for TokenizeOverCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenizeOverCount")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl TokenizeOverCount {
    /// Wraps `inner`, a count-tokens translator for the backend named `backend` built
    /// with the backendRef's `model_override`.
    pub fn new(inner: Box<dyn Translator>, backend: &str, model_override: Option<&str>) -> Self {
        Self {
            inner,
            backend: backend.to_owned(),
            buffered: Vec::new(),
            dropped: Vec::new(),
            model: model_override.map(str::to_owned),
        }
    }
}

#[derive(Deserialize)]
struct TokenizeRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    messages: Option<Vec<Value>>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    return_token_strs: Option<bool>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// vLLM fields that change only the few special and template tokens around the text.
const TEMPLATE_FIELDS: [(&str, &str); 3] = [
    (
        "add_special_tokens",
        "the backend counts with its own special tokens",
    ),
    (
        "add_generation_prompt",
        "the backend counts with its own chat template",
    ),
    (
        "continue_final_message",
        "the backend counts with its own chat template",
    ),
];

impl TokenizeOverCount {
    /// The Anthropic count_tokens body for a vLLM tokenize request.
    fn messages_body(&mut self, body: &[u8]) -> Result<MessagesRequest> {
        let r: TokenizeRequest = serde_json::from_slice(body)
            .map_err(|e| Error::bad_request(format!("invalid tokenize request: {e}")))?;
        if r.return_token_strs == Some(true) {
            return Err(Error::untranslatable(
                "return_token_strs",
                &self.backend,
                "the backend counts tokens and does not return them",
            ));
        }
        self.dropped.clear();
        for k in r.rest.keys() {
            match TEMPLATE_FIELDS.iter().find(|(f, _)| f == k) {
                Some((f, why)) => self.dropped.push(DroppedField::new(f, why)),
                None => {
                    return Err(Error::untranslatable(
                        k.as_str(),
                        &self.backend,
                        "not a tokenize field this backend can honour",
                    ));
                }
            }
        }
        let messages = match (r.prompt, r.messages) {
            (Some(p), None) => vec![json!({"role": "user", "content": p})],
            (None, Some(m)) if !m.is_empty() => m,
            _ => {
                return Err(Error::bad_request(
                    "a tokenize request has either `prompt` or non-empty `messages`",
                ));
            }
        };
        let mut chat = json!({"model": r.model.unwrap_or_default(), "messages": messages});
        if let Some(t) = r.tools {
            chat["tools"] = t.into();
        }
        let chat: ChatCompletionRequest = serde_json::from_value(chat)
            .map_err(|e| Error::bad_request(format!("invalid tokenize messages: {e}")))?;
        // Counting generates nothing, so nothing dropped here needs reporting.
        let (m, _) = chat_to_messages(&chat, &self.backend, &mut Vec::new())?;
        Ok(m)
    }
}

impl Translator for TokenizeOverCount {
    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        let messages = self.messages_body(req.body)?;
        if self.model.is_none() {
            self.model.clone_from(&messages.model);
        }
        count_request(self.inner.as_mut(), messages, req)
    }

    fn response_headers(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<HeaderMutation> {
        count_response_headers(self.inner.as_mut(), status, headers)
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<ResponseChunk> {
        let mut r = count_response_chunk(
            self.inner.as_mut(),
            &mut self.buffered,
            chunk,
            end_of_stream,
            |n| {
                Ok(json!({"count": n, "max_model_len": null, "tokens": []})
                    .to_string()
                    .into_bytes())
            },
        )?;
        r.response_model = r.response_model.or_else(|| self.model.clone());
        Ok(r)
    }

    fn response_error(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ErrorResponse> {
        // Tokenize clients get OpenAI's envelope, as vLLM answers.
        count_response_error(self.inner.as_mut(), status, headers, body)
    }

    fn dropped_fields(&self) -> &[DroppedField] {
        &self.dropped
    }
}
