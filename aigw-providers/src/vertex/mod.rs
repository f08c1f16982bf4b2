//! GCP Vertex AI Gemini: `generateContent` / `streamGenerateContent?alt=sse` for OpenAI
//! chat and Anthropic Messages clients, and `:predict` / `:embedContent` embeddings.
//!
//! Paths start with `/publishers/google/models/…`; the GCP credential provider inserts
//! `/v1/projects/{project}/locations/{region}` in front of them (the same convention as
//! the GCPAnthropic paths).

pub mod count_tokens;
pub mod embeddings;
pub mod images;
pub mod request;
pub mod rerank;
pub mod response;

use crate::bedrock::now_secs;
use crate::canonical::sink::EventSink;
use crate::canonical::{self, Event, emit};
use crate::sse::{SseDecoder, SseEvent};
use aigw_core::api::Endpoint;
use aigw_core::translate::TranslatorSpec;
use aigw_core::{
    ApiSchema, BodyChange, ClientApi, DroppedField, ErrorResponse, HeaderMutation, RequestContext,
    ResponseChunk, Result, TokenUsage, Translator, UpstreamRequest,
};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

pub use count_tokens::CountTokensTranslator;
pub use embeddings::EmbeddingsTranslator;

/// Chat (OpenAI Chat Completions or Anthropic Messages) → Gemini on Vertex AI.
#[derive(Debug)]
pub struct GeminiTranslator {
    api: ClientApi,
    model_override: Option<String>,
    model: String,
    stream: bool,
    include_usage: bool,
    created: u64,
    sse: SseDecoder,
    /// The SSE events and neutral events of one call, kept for their capacity.
    datas: Vec<SseEvent>,
    events: Vec<Event>,
    state: response::StreamState,
    emitter: Option<emit::StreamEmitter>,
    /// Where the stream's events go instead of `emitter`'s bytes, if set.
    sink: Option<EventSink>,
    usage: TokenUsage,
    buffered: Vec<u8>,
    ended: bool,
    /// The mid-stream failure already rendered to the client, if any.
    failure: Option<String>,
    /// Client fields left out of the request (logged and counted by the exchange).
    dropped: Vec<DroppedField>,
}

impl GeminiTranslator {
    /// A translator for requests arriving on `api`, with the backendRef's model override.
    pub fn new(api: ClientApi, model_override: Option<&str>) -> Self {
        Self {
            api,
            model_override: model_override.map(str::to_owned),
            model: String::new(),
            stream: false,
            include_usage: false,
            created: now_secs(),
            sse: SseDecoder::new(),
            datas: Vec::new(),
            events: Vec::new(),
            state: response::StreamState::default(),
            emitter: None,
            sink: None,
            usage: TokenUsage::default(),
            buffered: Vec::new(),
            ended: false,
            failure: None,
            dropped: Vec::new(),
        }
    }

    /// Queues the stream's events on `sink` instead of writing chat chunks (for a
    /// wrapper that renders another client API from them).
    #[must_use]
    pub fn with_event_sink(mut self, sink: EventSink) -> Self {
        self.sink = Some(sink);
        self
    }

    fn response_model(&self) -> String {
        self.state
            .model
            .clone()
            .unwrap_or_else(|| self.model.clone())
    }

    fn stream_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<ResponseChunk> {
        let mut out = crate::canonical::sink::out_buffer(self.sink.is_some(), chunk.len());
        let mut datas = std::mem::take(&mut self.datas);
        let mut events = std::mem::take(&mut self.events);
        if !self.ended {
            self.sse.feed(chunk, &mut datas);
            if end_of_stream {
                self.sse.finish(&mut datas);
            }
        }
        // A chunk gives a few neutral events (block changes, delta, stop, usage).
        events.reserve(datas.len() * 4);
        for ev in datas.drain(..) {
            let data = ev.data.as_bytes();
            if self.ended {
                break;
            }
            if data.starts_with(b"[DONE]") {
                continue;
            }
            // An error object mid-stream (`{"error":{…}}`) ends the stream.
            if data.starts_with(b"{\"error\"") || data.starts_with(b"[{\"error\"") {
                let (status, message) = response::parse_error(data);
                events.push(Event::Error {
                    status: grpc_status_http(&status),
                    kind: status,
                    message,
                });
                self.ended = true;
                break;
            }
            if let Err(e) = self.state.chunk(&ev.data, &mut events) {
                events.push(Event::Error {
                    status: 502,
                    kind: "malformedUpstream".into(),
                    message: e.to_string(),
                });
                self.ended = true;
            }
        }
        if self.emitter.is_none() && (!events.is_empty() || end_of_stream) {
            let id = self.state.id.as_deref().unwrap_or("gemini");
            let model = self.state.model.as_deref().unwrap_or(&self.model);
            self.emitter = Some(emit::StreamEmitter::to(
                self.sink.as_ref(),
                self.api,
                id,
                model,
                self.created,
                self.include_usage,
            ));
        }
        if let Some(emitter) = self.emitter.as_mut() {
            for ev in &events {
                if let Event::Usage(u) = ev {
                    self.usage.update(u);
                }
                if self.failure.is_none() {
                    self.failure = ev.error_summary();
                }
            }
            emitter.events(&mut events, &mut out);
            if end_of_stream {
                emitter.finish(&mut out);
            }
        }
        events.clear();
        (self.datas, self.events) = (datas, events);
        Ok(ResponseChunk {
            body: Some(Bytes::from(out)),
            usage: self.usage,
            response_model: Some(self.response_model()),
        })
    }
}

/// HTTP status for a Google RPC status name (google.rpc.Code mapping).
pub fn grpc_status_http(status: &str) -> u16 {
    match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "ALREADY_EXISTS" | "ABORTED" => 409,
        "RESOURCE_EXHAUSTED" => 429,
        "CANCELLED" => 499,
        "UNIMPLEMENTED" => 501,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => 500,
    }
}

impl Translator for GeminiTranslator {
    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        let mut chat = match self.api {
            ClientApi::OpenAI => canonical::openai::parse(req.body, request::BACKEND)?,
            ClientApi::Anthropic => canonical::anthropic::parse(req.body, request::BACKEND)?,
        };
        if let Some(m) = &self.model_override {
            chat.model.clone_from(m);
        }
        self.model.clone_from(&chat.model);
        self.stream = chat.stream;
        if chat.user_id {
            chat.dropped.push(crate::anthropic::fields::DROP_USER_ID);
        }
        if chat.has_cache_hints() {
            // The whole breakpoint is dropped here, its lifetime with it.
            chat.dropped
                .retain(|d| *d != crate::anthropic::fields::DROP_CACHE_TTL);
            chat.dropped
                .push(crate::anthropic::fields::DROP_CACHE_CONTROL);
        }
        self.dropped = std::mem::take(&mut chat.dropped);
        self.include_usage = match self.api {
            ClientApi::OpenAI => chat.include_usage,
            ClientApi::Anthropic => true,
        };
        let body = request::generate_content_body(&chat)?;
        let path = format!(
            "/publishers/google/models/{}:{}",
            chat.model,
            if chat.stream {
                "streamGenerateContent?alt=sse"
            } else {
                "generateContent"
            }
        );
        let mut headers = HeaderMutation::default();
        headers.set_static("content-type", "application/json");
        Ok(UpstreamRequest {
            method: Method::POST,
            path,
            headers,
            body: BodyChange::Replaced(Bytes::from(body)),
        })
    }

    fn response_headers(
        &mut self,
        _status: StatusCode,
        _headers: &HeaderMap,
    ) -> Result<HeaderMutation> {
        let mut m = HeaderMutation::default();
        m.set(
            header::CONTENT_TYPE,
            HeaderValue::from_static(if self.stream {
                "text/event-stream"
            } else {
                "application/json"
            }),
        );
        m.remove(header::CONTENT_LENGTH);
        Ok(m)
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<ResponseChunk> {
        if self.stream {
            return self.stream_chunk(chunk, end_of_stream);
        }
        self.buffered.extend_from_slice(chunk);
        if !end_of_stream {
            return Ok(ResponseChunk {
                body: Some(Bytes::new()),
                usage: self.usage,
                response_model: None,
            });
        }
        let resp = response::parse_response(&self.buffered, &self.model)?;
        self.usage = resp.usage;
        let body = match self.api {
            ClientApi::OpenAI => emit::openai_response(&resp, self.created),
            ClientApi::Anthropic => emit::anthropic_response(&resp),
        };
        Ok(ResponseChunk {
            body: Some(Bytes::from(body)),
            usage: self.usage,
            response_model: Some(resp.model),
        })
    }

    fn response_error(
        &mut self,
        status: StatusCode,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ErrorResponse> {
        Ok(normalize_error(self.api, status, body))
    }

    fn dropped_fields(&self) -> &[DroppedField] {
        &self.dropped
    }

    fn in_band_error(&self) -> Option<String> {
        self.failure.clone()
    }
}

/// Normalises a Vertex error (`{"error":{"code","message","status"}}`) into the client
/// API's envelope, keeping the upstream status.
pub fn normalize_error(api: ClientApi, status: StatusCode, body: &[u8]) -> ErrorResponse {
    let (kind, message) = response::parse_error(body);
    let mut h = HeaderMutation::default();
    h.set(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.remove(header::CONTENT_LENGTH);
    ErrorResponse {
        status,
        headers: h,
        body: Bytes::from(canonical::error_body(api, status.as_u16(), &kind, &message)),
    }
}

/// Builds the translator for a `GCPVertexAI` backend: the factory's Vertex arm.
///
/// # Errors
/// A 422 for endpoints the backend does not serve.
pub fn translator(spec: &TranslatorSpec<'_>) -> Result<Box<dyn Translator>> {
    let ovr = spec.model_override;
    match (spec.schema.name, spec.endpoint) {
        (ApiSchema::GCPVertexAI, Endpoint::ChatCompletions) => {
            Ok(Box::new(GeminiTranslator::new(ClientApi::OpenAI, ovr)))
        }
        (ApiSchema::GCPVertexAI, Endpoint::Messages) => {
            Ok(Box::new(GeminiTranslator::new(ClientApi::Anthropic, ovr)))
        }
        (ApiSchema::GCPVertexAI, Endpoint::Embeddings) => {
            Ok(Box::new(EmbeddingsTranslator::new(ovr)))
        }
        (ApiSchema::GCPVertexAI, Endpoint::CountTokens) => {
            Ok(Box::new(CountTokensTranslator::new(ovr)))
        }
        (ApiSchema::GCPVertexAI, Endpoint::ImageGenerations) => Ok(images::translator(ovr)),
        (ApiSchema::GCPVertexAI, Endpoint::Rerank) => Ok(rerank::translator(ovr)),
        (schema, endpoint) => Err(aigw_core::Error::untranslatable(
            format!("endpoint {}", endpoint.operation_name()),
            schema.as_str(),
            "this client API is not supported on this backend",
        )),
    }
}
