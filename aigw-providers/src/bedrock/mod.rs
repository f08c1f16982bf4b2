//! AWS Bedrock: Converse / ConverseStream for OpenAI chat and Anthropic Messages
//! clients, Claude through InvokeModel (`AWSAnthropic`, [`invoke`]), and Titan / Cohere
//! embeddings through InvokeModel.
//!
//! Paths are `/model/{modelId}/converse` and `/model/{modelId}/converse-stream` with the
//! model id percent-encoded as the AWS SDKs encode path labels (`:` → `%3A`); SigV4
//! signing happens later, over these final bytes. Streams arrive as AWS eventstream
//! (`application/vnd.amazon.eventstream`) and leave as SSE in the client's dialect.

pub mod count_tokens;
pub mod embeddings;
pub mod images;
pub mod invoke;
pub mod request;
pub mod rerank;
pub mod response;

use crate::canonical::sink::EventSink;
use crate::canonical::{self, Event, emit};
use crate::eventstream::{Decoder, FrameKind};
use aigw_core::api::Endpoint;
use aigw_core::estimate::EventText;
use aigw_core::translate::TranslatorSpec;
use aigw_core::{
    ApiSchema, BodyChange, ClientApi, DroppedField, ErrorResponse, HeaderMutation, RequestContext,
    ResponseChunk, Result, TokenUsage, Translator, UpstreamRequest,
};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

pub use count_tokens::{CountMode, CountTokensTranslator};
pub use embeddings::EmbeddingsTranslator;
pub use invoke::InvokeTranslator;
pub use request::encode_model_id;

/// Seconds since the Unix epoch, for OpenAI's `created`.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The request id a response carries, used to build response ids.
pub(crate) fn request_id(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The Anthropic betas Bedrock documents for Claude through Converse's
/// `additionalModelRequestFields.anthropic_beta`; the others name client or
/// first-party API features and are not sent.
const CONVERSE_BETAS: [&str; 2] = ["interleaved-thinking-", "context-1m-"];

/// Chat (OpenAI Chat Completions or Anthropic Messages) → Bedrock Converse.
#[derive(Debug)]
pub struct ConverseTranslator {
    api: ClientApi,
    model_override: Option<String>,
    model: String,
    stream: bool,
    include_usage: bool,
    created: u64,
    id: String,
    decoder: Decoder,
    emitter: Option<emit::StreamEmitter>,
    /// Where the stream's events go instead of `emitter`'s bytes, if set.
    sink: Option<EventSink>,
    events: Vec<Event>,
    usage: TokenUsage,
    buffered: Vec<u8>,
    ended: bool,
    /// The mid-stream failure already rendered to the client, if any.
    failure: Option<String>,
    /// Client fields left out of the request (logged and counted by the exchange).
    dropped: Vec<DroppedField>,
    /// The text of the events the last stream chunk wrote, for the exchange's
    /// estimate ([`Translator::event_text`]); set for streams written as bytes.
    text: Option<EventText>,
}

impl ConverseTranslator {
    /// A translator for requests arriving on `api`, with the backendRef's model override.
    pub fn new(api: ClientApi, model_override: Option<&str>) -> Self {
        Self {
            api,
            model_override: model_override.map(str::to_owned),
            model: String::new(),
            stream: false,
            include_usage: false,
            created: now_secs(),
            id: "bedrock".to_owned(),
            decoder: Decoder::new(),
            emitter: None,
            sink: None,
            events: Vec::new(),
            usage: TokenUsage::default(),
            buffered: Vec::new(),
            ended: false,
            failure: None,
            dropped: Vec::new(),
            text: None,
        }
    }

    /// Queues the stream's events on `sink` instead of writing chat chunks (for a
    /// wrapper that renders another client API from them).
    #[must_use]
    pub fn with_event_sink(mut self, sink: EventSink) -> Self {
        self.sink = Some(sink);
        self
    }

    /// The stream's emitter (made on first use: the id comes with the response
    /// headers) and where the text of what it writes is reported.
    fn emitter(&mut self) -> (&mut emit::StreamEmitter, Option<&mut EventText>) {
        let (api, id, model, created, usage) = (
            self.api,
            &self.id,
            &self.model,
            self.created,
            self.include_usage,
        );
        let sink = self.sink.as_ref();
        let emitter = self
            .emitter
            .get_or_insert_with(|| emit::StreamEmitter::to(sink, api, id, model, created, usage));
        (emitter, self.text.as_mut())
    }

    fn stream_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<ResponseChunk> {
        let mut out = crate::canonical::sink::out_buffer(self.sink.is_some(), chunk.len());
        if let Some(text) = self.text.as_mut() {
            text.clear();
        }
        if self.ended {
            return Ok(ResponseChunk {
                body: Some(Bytes::new()),
                usage: self.usage,
                response_model: Some(self.model.clone()),
            });
        }
        self.decoder.push(chunk);
        loop {
            let frame = match self.decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    self.events.push(Event::Error {
                        status: 502,
                        kind: "malformedUpstream".into(),
                        message: e.to_string(),
                    });
                    self.ended = true;
                    break;
                }
            };
            match frame.kind {
                FrameKind::Event(t) => {
                    if let Err(e) = response::stream_event(&t, &frame.payload, &mut self.events) {
                        self.events.push(Event::Error {
                            status: 502,
                            kind: "malformedUpstream".into(),
                            message: e.to_string(),
                        });
                        self.ended = true;
                    }
                }
                FrameKind::Exception(kind) => {
                    self.events.push(Event::Error {
                        status: response::exception_status(&kind),
                        message: response::error_message(&frame.payload),
                        kind,
                    });
                    self.ended = true;
                }
                FrameKind::Error { code, message } => {
                    self.events.push(Event::Error {
                        status: response::exception_status(&code),
                        kind: code,
                        message,
                    });
                    self.ended = true;
                }
            }
            if self.ended {
                break;
            }
        }
        if end_of_stream
            && !self.ended
            && let Err(e) = self.decoder.finish()
        {
            {
                self.events.push(Event::Error {
                    status: 502,
                    kind: "malformedUpstream".into(),
                    message: e.to_string(),
                });
                self.ended = true;
            }
        }
        let mut events = std::mem::take(&mut self.events);
        for ev in &events {
            if let Event::Usage(u) = ev {
                self.usage.update(u);
            }
            if self.failure.is_none() {
                self.failure = ev.error_summary();
            }
        }
        // The emitter is made at the first event, as the stream's head then stands.
        if !events.is_empty() {
            let (emitter, text) = self.emitter();
            emitter.events_with(&mut events, &mut out, text);
        }
        self.events = events;
        if end_of_stream {
            self.emitter().0.finish(&mut out);
        }
        Ok(ResponseChunk {
            body: Some(Bytes::from(out)),
            usage: self.usage,
            response_model: Some(self.model.clone()),
        })
    }
}

impl Translator for ConverseTranslator {
    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        let mut chat = match self.api {
            ClientApi::OpenAI => canonical::openai::parse(req.body, request::BACKEND)?,
            ClientApi::Anthropic => canonical::anthropic::parse(req.body, request::BACKEND)?,
        };
        if let Some(m) = &self.model_override {
            chat.model.clone_from(m);
        }
        self.stream = chat.stream;
        // Events queued for another renderer are not this translator's bytes.
        self.text = (chat.stream && self.sink.is_none()).then(EventText::default);
        if self.api == ClientApi::Anthropic {
            chat.anthropic_betas = crate::anthropic::beta_list(req.headers)
                .into_iter()
                .filter(|b| CONVERSE_BETAS.iter().any(|p| b.starts_with(p)))
                .collect();
        }
        if chat.user_id {
            chat.dropped.push(crate::anthropic::fields::DROP_USER_ID);
        }
        chat.drop_thinking_display();
        self.dropped = std::mem::take(&mut chat.dropped);
        self.include_usage = match self.api {
            ClientApi::OpenAI => chat.include_usage,
            ClientApi::Anthropic => true,
        };
        let body = request::converse_body(&chat);
        let path = converse_path(&chat.model, chat.stream);
        // Kept for the response (set even when the body is refused, as before), moved
        // rather than copied: the request is done with it.
        self.model = std::mem::take(&mut chat.model);
        let body = body?;
        let mut headers = HeaderMutation::default();
        headers.set_static("content-type", "application/json");
        if chat.stream {
            headers.set_static("accept", "application/vnd.amazon.eventstream");
        }
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
        headers: &HeaderMap,
    ) -> Result<HeaderMutation> {
        if let Some(id) = request_id(headers, "x-amzn-requestid") {
            self.id = id;
        }
        let mut m = HeaderMutation::default();
        if self.stream {
            m.set(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
        } else {
            m.set(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
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
        let resp = response::parse_response(&self.buffered, &self.id, &self.model)?;
        self.usage = resp.usage;
        let body = match self.api {
            ClientApi::OpenAI => emit::openai_response(&resp, self.created),
            ClientApi::Anthropic => emit::anthropic_response(&resp),
        };
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
        Ok(normalize_error(self.api, status, headers, body))
    }

    fn dropped_fields(&self) -> &[DroppedField] {
        &self.dropped
    }

    fn in_band_error(&self) -> Option<String> {
        self.failure.clone()
    }

    fn event_text(&self) -> Option<&EventText> {
        self.text.as_ref()
    }
}

/// `/model/{modelId}/converse` or `/converse-stream`, appended in place: `format!` went
/// through the formatting machinery on every request.
fn converse_path(model: &str, stream: bool) -> String {
    let op = if stream {
        "converse-stream"
    } else {
        "converse"
    };
    let id = encode_model_id(model);
    let mut path = String::with_capacity("/model//".len() + id.len() + op.len());
    path.push_str("/model/");
    path.push_str(&id);
    path.push('/');
    path.push_str(op);
    path
}

/// Normalises a Bedrock error (`x-amzn-errortype` + JSON `message`) into the client
/// API's envelope, keeping the upstream status.
pub fn normalize_error(
    api: ClientApi,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ErrorResponse {
    let kind = response::error_type(
        headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok()),
    );
    let message = response::error_message(body);
    let mut h = HeaderMutation::default();
    h.set(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.remove(header::CONTENT_LENGTH);
    crate::error_map::keep_request_ids(headers, &mut h);
    ErrorResponse {
        status,
        headers: h,
        body: Bytes::from(canonical::error_body(api, status.as_u16(), kind, &message)),
    }
}

/// Builds the translator for an `AWSBedrock` or `AWSAnthropic` backend: the factory's
/// Bedrock arms.
///
/// # Errors
/// A 422 for endpoints the backend does not serve.
pub fn translator(spec: &TranslatorSpec<'_>) -> Result<Box<dyn Translator>> {
    let ovr = spec.model_override;
    match (spec.schema.name, spec.endpoint) {
        (ApiSchema::AWSBedrock, Endpoint::ChatCompletions) => {
            Ok(Box::new(ConverseTranslator::new(ClientApi::OpenAI, ovr)))
        }
        (ApiSchema::AWSBedrock, Endpoint::Messages) => {
            Ok(Box::new(ConverseTranslator::new(ClientApi::Anthropic, ovr)))
        }
        (ApiSchema::AWSBedrock, Endpoint::Embeddings) => {
            Ok(Box::new(EmbeddingsTranslator::new(ovr)))
        }
        (ApiSchema::AWSBedrock, Endpoint::ImageGenerations) => Ok(images::translator(ovr)),
        (ApiSchema::AWSBedrock, Endpoint::Rerank) => Ok(rerank::translator(ovr)),
        (ApiSchema::AWSAnthropic, Endpoint::ChatCompletions) => Ok(Box::new(
            InvokeTranslator::new(ClientApi::OpenAI, ovr, spec.schema.version.as_deref()),
        )),
        (ApiSchema::AWSAnthropic, Endpoint::Messages) => Ok(Box::new(InvokeTranslator::new(
            ClientApi::Anthropic,
            ovr,
            spec.schema.version.as_deref(),
        ))),
        (ApiSchema::AWSBedrock, Endpoint::CountTokens) => Ok(Box::new(CountTokensTranslator::new(
            CountMode::Converse,
            ovr,
            None,
        ))),
        (ApiSchema::AWSAnthropic, Endpoint::CountTokens) => Ok(Box::new(
            CountTokensTranslator::new(CountMode::InvokeModel, ovr, spec.schema.version.as_deref()),
        )),
        (schema, endpoint) => Err(aigw_core::Error::untranslatable(
            format!("endpoint {}", endpoint.operation_name()),
            schema.as_str(),
            "this client API is not supported on this backend",
        )),
    }
}
