//! `POST /v1/responses/input_tokens` on the backends with a token-counting API
//! (Anthropic, Claude on Vertex, Bedrock CountTokens, Gemini countTokens): the Responses
//! input is translated to a Chat Completions request, then to the Anthropic Messages
//! shape every count-tokens translator takes, and the count comes back as OpenAI's
//! `response.input_tokens` object.

use super::request;
use crate::anthropic::request::chat_to_messages;
use crate::canonical::error_body;
use aigw_core::api::anthropic::MessagesRequest;
use aigw_core::api::responses::{InputTokens, ResponsesRequest};
use aigw_core::{
    BodyChange, ClientApi, Error, ErrorResponse, HeaderMutation, RequestContext, ResponseChunk,
    Result, Translator, UpstreamRequest,
};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde_json::Value;

/// Wraps a backend's count-tokens translator (Anthropic Messages in) to serve
/// Responses `input_tokens` requests.
pub struct InputTokensOverCount {
    inner: Box<dyn Translator>,
    backend: String,
    buffered: Vec<u8>,
}

impl std::fmt::Debug for InputTokensOverCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputTokensOverCount")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl InputTokensOverCount {
    /// Wraps `inner`, a count-tokens translator for the backend named `backend`.
    pub fn new(inner: Box<dyn Translator>, backend: &str) -> Self {
        Self {
            inner,
            backend: backend.to_owned(),
            buffered: Vec::new(),
        }
    }
}

impl Translator for InputTokensOverCount {
    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        let mut parsed: ResponsesRequest = serde_json::from_slice(req.body)
            .map_err(|e| Error::bad_request(format!("invalid Responses request: {e}")))?;
        // Counting stores nothing; a continuation is counted over the whole
        // conversation.
        request::expand_previous(&mut parsed)?;
        parsed.store = Some(false);
        parsed.stream = None;
        let (chat, _) = request::to_chat(&parsed, &self.backend)?;
        // Counting generates nothing, so nothing dropped here needs reporting.
        let (messages, _) = chat_to_messages(&chat, &self.backend, &mut Vec::new())?;
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
        count_response_chunk(
            self.inner.as_mut(),
            &mut self.buffered,
            chunk,
            end_of_stream,
            |n| {
                serde_json::to_vec(&InputTokens {
                    object: "response.input_tokens".into(),
                    input_tokens: n,
                })
                .map_err(|e| Error::internal(format!("cannot serialise the count: {e}")))
            },
        )
    }

    fn response_error(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ErrorResponse> {
        count_response_error(self.inner.as_mut(), status, headers, body)
    }
}

/// Sends `messages` (an Anthropic Messages body) through `inner`, a backend's
/// count-tokens translator, with only the fields a count depends on: the count-tokens
/// APIs refuse generation parameters.
pub(crate) fn count_request(
    inner: &mut dyn Translator,
    mut messages: MessagesRequest,
    req: &RequestContext<'_>,
) -> Result<UpstreamRequest> {
    messages.max_tokens = None;
    messages.stream = None;
    messages.temperature = None;
    messages.top_p = None;
    messages.top_k = None;
    messages.stop_sequences = None;
    messages.metadata = None;
    let body = Bytes::from(
        serde_json::to_vec(&messages)
            .map_err(|e| Error::internal(format!("cannot serialise request: {e}")))?,
    );
    let ctx = RequestContext {
        body: &body,
        info: req.info,
        headers: req.headers,
        force_include_usage: false,
    };
    let mut up = inner.request(&ctx)?;
    if matches!(up.body, BodyChange::Unchanged) {
        up.body = BodyChange::Replaced(body);
    }
    up.headers.remove(header::ACCEPT_ENCODING);
    Ok(up)
}

/// The response headers of a count rendered as a new JSON body.
pub(crate) fn count_response_headers(
    inner: &mut dyn Translator,
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<HeaderMutation> {
    let mut m = inner.response_headers(status, headers)?;
    m.remove(header::CONTENT_LENGTH);
    m.set_static("content-type", "application/json");
    Ok(m)
}

/// Collects the count `inner` renders (Anthropic's `{"input_tokens"}`) and, at the
/// end, answers `render(count)`.
pub(crate) fn count_response_chunk(
    inner: &mut dyn Translator,
    buffered: &mut Vec<u8>,
    chunk: &[u8],
    end_of_stream: bool,
    render: impl FnOnce(u64) -> Result<Vec<u8>>,
) -> Result<ResponseChunk> {
    let r = inner.response_chunk(chunk, end_of_stream)?;
    buffered.extend_from_slice(r.body.as_deref().unwrap_or(chunk));
    let mut out = Vec::new();
    if end_of_stream {
        let v: Value = serde_json::from_slice(buffered).map_err(|e| {
            Error::internal(format!("the backend's token count is unreadable: {e}"))
        })?;
        let n = v
            .get("input_tokens")
            .and_then(Value::as_u64)
            .or(r.usage.input)
            .ok_or_else(|| Error::internal("the backend's token count has no input_tokens"))?;
        out = render(n)?;
    }
    Ok(ResponseChunk {
        body: Some(Bytes::from(out)),
        usage: r.usage,
        response_model: r.response_model,
    })
}

/// `inner`'s error (Anthropic's envelope, as every count-tokens translator answers) in
/// OpenAI's envelope.
pub(crate) fn count_response_error(
    inner: &mut dyn Translator,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ErrorResponse> {
    let mut e = inner.response_error(status, headers, body)?;
    let v: Value = serde_json::from_slice(&e.body).unwrap_or(Value::Null);
    let message = v["error"]["message"].as_str().unwrap_or("upstream error");
    let kind = v["error"]["type"].as_str().unwrap_or("");
    e.body = Bytes::from(error_body(
        ClientApi::OpenAI,
        e.status.as_u16(),
        kind,
        message,
    ));
    e.headers.set_static("content-type", "application/json");
    Ok(e)
}
