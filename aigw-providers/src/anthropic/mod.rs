//! Anthropic-family translators.
//!
//! | client → backend | translator |
//! |---|---|
//! | OpenAI chat → Anthropic / GCPAnthropic | [`ChatToAnthropic`] |
//! | Anthropic Messages → Anthropic / GCPAnthropic | [`MessagesPassthrough`] |
//! | Anthropic Messages → OpenAI / AzureOpenAI | [`MessagesToOpenAi`] |
//! | Anthropic count_tokens → Anthropic / GCPAnthropic | [`MessagesPassthrough::count_tokens`] |
//!
//! The conversions themselves are plain functions, reusable by the Bedrock translators
//! for AWSAnthropic (InvokeModel carries the same Messages body):
//! * request: [`request::chat_to_messages`], then [`finish_for_platform`] with
//!   [`Platform::Bedrock`] (sets `anthropic_version`, removes `model` and `stream`,
//!   copies `anthropic-beta` into the body);
//! * whole response: [`response::messages_to_chat`];
//! * stream: feed each event's JSON payload to [`response::ChatStreamEncoder::on_data`];
//! * Anthropic client on Bedrock: [`finish_for_platform`] on the client's own body.

pub mod fields;
pub mod handoff;
pub mod request;
pub mod response;
pub mod reverse;

use crate::compression::{Decompressor, Encoding};
use crate::error_map;
use crate::openai::{Flavor, encode_path_segment, openai_path};
use crate::sse::{SseDecoder, SseEvent};
use aigw_core::api::anthropic as an;
use aigw_core::api::openai as oa;
use aigw_core::{
    BodyChange, ClientApi, DroppedField, Error, ErrorResponse, HeaderMutation, RequestContext,
    ResponseChunk, Result, TokenUsage, Translator, UpstreamRequest,
};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use request::ChatToMessagesInfo;
use response::ChatStreamEncoder;
use reverse::MessagesStreamEncoder;
use serde::Deserialize;
use serde_json::{Map, Value};

/// `anthropic_version` for Anthropic on Vertex AI when the schema names none.
pub const VERTEX_VERSION: &str = "vertex-2023-10-16";
/// `anthropic_version` for Anthropic on Bedrock when the schema names none.
pub const BEDROCK_VERSION: &str = "bedrock-2023-05-31";

/// Where a Messages body is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Platform {
    /// api.anthropic.com (or a compatible server); `prefix` replaces `/v1`.
    Native {
        /// Path prefix.
        prefix: Option<String>,
        /// `anthropic-version` to send when the client sent none (default
        /// [`an::DEFAULT_VERSION`]).
        version: Option<String>,
    },
    /// Vertex AI `rawPredict` / `streamRawPredict`.
    Vertex {
        /// Body `anthropic_version`.
        version: String,
    },
    /// Bedrock InvokeModel (used by the Bedrock translators).
    Bedrock {
        /// Body `anthropic_version`.
        version: String,
    },
}

impl Platform {
    fn backend(&self) -> &'static str {
        match self {
            Self::Native { .. } => "Anthropic",
            Self::Vertex { .. } => "GCPAnthropic",
            Self::Bedrock { .. } => "AWSAnthropic",
        }
    }
}

/// Adapts a Messages body to a platform: native keeps `model` (set to `model`);
/// Vertex removes `model` and sets `anthropic_version`; Bedrock also removes `stream`
/// and copies the client's `anthropic-beta` header values into `anthropic_beta`.
pub fn finish_for_platform(
    body: &mut an::MessagesRequest,
    platform: &Platform,
    model: &str,
    headers: &HeaderMap,
) {
    match platform {
        Platform::Native { .. } => body.model = Some(model.to_owned()),
        Platform::Vertex { version } => {
            body.model = None;
            body.anthropic_version = Some(version.clone());
        }
        Platform::Bedrock { version } => {
            body.model = None;
            body.stream = None;
            body.anthropic_version = Some(version.clone());
            let betas = beta_list(headers);
            if !betas.is_empty() {
                body.anthropic_beta = Some(betas);
            }
        }
    }
}

/// The comma-separated values of every `anthropic-beta` header.
pub fn beta_list(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("anthropic-beta")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn platform_path(platform: &Platform, model: &str, stream: bool, suffix: &str) -> String {
    match platform {
        Platform::Native { prefix, .. } => openai_path(prefix.as_deref(), suffix),
        Platform::Vertex { .. } => format!(
            "/publishers/anthropic/models/{}:{}",
            encode_path_segment(model),
            if stream {
                "streamRawPredict"
            } else {
                "rawPredict"
            }
        ),
        Platform::Bedrock { .. } => format!(
            "/model/{}/{}",
            encode_path_segment(model),
            if stream {
                "invoke-with-response-stream"
            } else {
                "invoke"
            }
        ),
    }
}

fn version_headers(platform: &Platform, client: &HeaderMap) -> HeaderMutation {
    let mut m = HeaderMutation::default();
    m.set_static("content-type", "application/json");
    if let Platform::Native { version, .. } = platform
        && !client.contains_key("anthropic-version")
    {
        let v = version.as_deref().unwrap_or(an::DEFAULT_VERSION);
        if let Ok(v) = HeaderValue::from_str(v) {
            m.set(http::HeaderName::from_static("anthropic-version"), v);
        }
    }
    m
}

fn to_json_bytes<T: serde::Serialize>(v: &T) -> Result<Bytes> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| Error::internal(format!("cannot serialise body: {e}")))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Shared response plumbing: content decoding, SSE framing, non-stream buffering.
#[derive(Debug, Default)]
struct Body {
    stream: bool,
    decompressor: Option<Decompressor>,
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    buffered: Vec<u8>,
}

impl Body {
    /// Reads response headers; returns whether the upstream body is encoded.
    fn headers(&mut self, headers: &HeaderMap) -> Result<bool> {
        let enc = Encoding::from_headers(headers)?;
        if !enc.is_identity() {
            self.decompressor = Some(Decompressor::new(enc));
        }
        if let Some(ct) = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        {
            self.stream = ct.starts_with("text/event-stream");
        }
        Ok(!enc.is_identity())
    }

    fn plain(&mut self, chunk: &[u8], eos: bool) -> Result<Option<Vec<u8>>> {
        match self.decompressor.as_mut() {
            None => Ok(None),
            Some(d) => {
                let mut v = d.decompress(chunk)?;
                if eos {
                    v.extend(d.finish()?);
                }
                Ok(Some(v))
            }
        }
    }

    /// Decodes SSE events from a chunk.
    fn events(&mut self, chunk: &[u8], eos: bool) -> Result<Vec<SseEvent>> {
        let decoded = self.plain(chunk, eos)?;
        let plain = decoded.as_deref().unwrap_or(chunk);
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        self.decoder.feed(plain, &mut events);
        if eos {
            self.decoder.finish(&mut events);
        }
        Ok(events)
    }

    /// Buffers a non-streamed body; returns it whole at the end.
    fn whole(&mut self, chunk: &[u8], eos: bool) -> Result<Option<Vec<u8>>> {
        let decoded = self.plain(chunk, eos)?;
        self.buffered
            .extend_from_slice(decoded.as_deref().unwrap_or(chunk));
        Ok(eos.then(|| std::mem::take(&mut self.buffered)))
    }
}

fn decode_error_body(headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    match Encoding::from_headers(headers) {
        Ok(enc) if !enc.is_identity() => {
            let mut d = Decompressor::new(enc);
            d.decompress(body)
                .and_then(|mut v| {
                    v.extend(d.finish()?);
                    Ok(v)
                })
                .unwrap_or_else(|_| body.to_vec())
        }
        _ => body.to_vec(),
    }
}

// ---------------------------------------------------------------------------------------
// OpenAI chat → Anthropic
// ---------------------------------------------------------------------------------------

/// OpenAI Chat Completions client → Anthropic Messages backend (native or Vertex).
#[derive(Debug)]
pub struct ChatToAnthropic {
    platform: Platform,
    model_override: Option<String>,
    created: u64,
    info: ChatToMessagesInfo,
    body: Body,
    encoder: ChatStreamEncoder,
    usage: TokenUsage,
    model: Option<String>,
    /// Client fields not carried to the backend (reported to the exchange).
    dropped: Vec<DroppedField>,
    /// Where the stream's chunks go as values instead of bytes (see [`handoff`]).
    sink: Option<handoff::ChunkSink>,
}

impl ChatToAnthropic {
    /// A translator for one request.
    pub fn new(platform: Platform, model_override: Option<&str>) -> Self {
        Self {
            platform,
            model_override: model_override.map(str::to_owned),
            created: now_secs(),
            info: ChatToMessagesInfo::default(),
            body: Body::default(),
            encoder: ChatStreamEncoder::default(),
            usage: TokenUsage::default(),
            model: None,
            dropped: Vec::new(),
            sink: None,
        }
    }

    /// Queues the stream's chunks on `sink` as values instead of writing them (the
    /// response body of a stream is then empty; see [`handoff`]).
    #[must_use]
    pub fn with_chunk_sink(mut self, sink: handoff::ChunkSink) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Fixes the `created` timestamp of translated responses (for reproducible output).
    pub fn with_created(mut self, created: u64) -> Self {
        self.created = created;
        self
    }
}

impl Translator for ChatToAnthropic {
    fn dropped_fields(&self) -> &[DroppedField] {
        &self.dropped
    }

    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        let chat: oa::ChatCompletionRequest = serde_json::from_slice(req.body)
            .map_err(|e| Error::bad_request(format!("invalid chat completion request: {e}")))?;
        self.dropped.clear();
        let (mut body, info) =
            request::chat_to_messages(&chat, self.platform.backend(), &mut self.dropped)?;
        let model = self
            .model_override
            .clone()
            .unwrap_or_else(|| chat.model.clone());
        finish_for_platform(&mut body, &self.platform, &model, req.headers);
        let stream = req.info.stream;
        self.body.stream = stream;
        let include_usage = req.info.include_usage;
        self.encoder = ChatStreamEncoder::new(info.clone(), self.created, include_usage)
            .with_sink(self.sink.clone());
        self.info = info;
        Ok(UpstreamRequest {
            method: Method::POST,
            path: platform_path(&self.platform, &model, stream, "messages"),
            headers: version_headers(&self.platform, req.headers),
            body: BodyChange::Replaced(to_json_bytes(&body)?),
        })
    }

    fn response_headers(
        &mut self,
        _status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<HeaderMutation> {
        let encoded = self.body.headers(headers)?;
        let mut m = HeaderMutation::default();
        if encoded {
            m.remove(http::header::CONTENT_ENCODING);
        }
        Ok(m)
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<ResponseChunk> {
        if self.body.stream {
            let events = self.body.events(chunk, end_of_stream)?;
            // Sized for the chunks (about twice the Anthropic events they render)
            // rather than grown by reallocation; nothing is written when they are
            // handed over.
            let size = if self.sink.is_some() {
                0
            } else {
                chunk.len() * 2
            };
            let mut out = Vec::with_capacity(size);
            for ev in &events {
                self.encoder.on_data(&ev.data, &mut out);
            }
            self.body.events = events;
            self.usage = self.encoder.usage();
            return Ok(ResponseChunk {
                body: Some(Bytes::from(out)),
                usage: self.usage,
                response_model: self.encoder.model().map(str::to_owned),
            });
        }
        let Some(whole) = self.body.whole(chunk, end_of_stream)? else {
            return Ok(ResponseChunk {
                body: Some(Bytes::new()),
                ..Default::default()
            });
        };
        let resp: an::MessagesResponse = serde_json::from_slice(&whole)
            .map_err(|e| Error::malformed_upstream(format!("invalid Anthropic response: {e}")))?;
        self.usage = resp.usage.to_token_usage();
        self.model = Some(resp.model.clone());
        let chat = response::messages_to_chat(resp, &self.info, self.created);
        Ok(ResponseChunk {
            body: Some(to_json_bytes(&chat)?),
            usage: self.usage,
            response_model: self.model.clone(),
        })
    }

    fn response_error(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ErrorResponse> {
        Ok(error_map::translated(
            ClientApi::OpenAI,
            status,
            headers,
            &decode_error_body(headers, body),
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Anthropic → Anthropic (native / Vertex), incl. count_tokens
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct UsageSniff {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<an::Usage>,
    #[serde(default)]
    message: Option<Box<UsageSniff>>,
}

/// Anthropic Messages client → Anthropic backend. Native without a model override is
/// a true passthrough (body and response bytes untouched); Vertex rewrites the body
/// (`model` out, `anthropic_version` in).
#[derive(Debug)]
pub struct MessagesPassthrough {
    platform: Platform,
    model_override: Option<String>,
    count_tokens: bool,
    body: Body,
    usage: TokenUsage,
    model: Option<String>,
    raw: an::Usage,
}

impl MessagesPassthrough {
    /// A `/v1/messages` translator.
    pub fn new(platform: Platform, model_override: Option<&str>) -> Self {
        Self {
            platform,
            model_override: model_override.map(str::to_owned),
            count_tokens: false,
            body: Body::default(),
            usage: TokenUsage::default(),
            model: None,
            raw: an::Usage::default(),
        }
    }

    /// A `/v1/messages/count_tokens` translator (Vertex: the `count-tokens` model).
    pub fn count_tokens(platform: Platform, model_override: Option<&str>) -> Self {
        Self {
            count_tokens: true,
            ..Self::new(platform, model_override)
        }
    }

    fn sniff(&mut self, data: &[u8]) {
        let Ok(s) = serde_json::from_slice::<UsageSniff>(data) else {
            return;
        };
        let (model, usage) = match s.message {
            Some(m) => (m.model, m.usage),
            None => (s.model, s.usage),
        };
        if let Some(m) = model.filter(|m| !m.is_empty()) {
            self.model = Some(m);
        }
        if let Some(u) = usage {
            response::merge_usage(&mut self.raw, &u);
            self.usage = self.raw.to_token_usage();
        }
    }
}

impl Translator for MessagesPassthrough {
    fn forwards_client_query(&self) -> bool {
        matches!(self.platform, Platform::Native { .. })
    }

    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        let model = self
            .model_override
            .clone()
            .unwrap_or_else(|| req.info.model.clone());
        let stream = req.info.stream && !self.count_tokens;
        self.body.stream = stream;
        let headers = version_headers(&self.platform, req.headers);
        let (path, body) = match &self.platform {
            Platform::Native { prefix, .. } => {
                let suffix = if self.count_tokens {
                    "messages/count_tokens"
                } else {
                    "messages"
                };
                let body = match &self.model_override {
                    None => BodyChange::Unchanged,
                    Some(m) => BodyChange::Replaced(crate::openai::rewrite_openai_body(
                        req.body,
                        Some(m),
                        false,
                    )?),
                };
                (openai_path(prefix.as_deref(), suffix), body)
            }
            Platform::Vertex { version } | Platform::Bedrock { version } => {
                let mut map: Map<String, Value> = serde_json::from_slice(req.body)
                    .map_err(|e| Error::bad_request(format!("malformed JSON request body: {e}")))?;
                fields::fold_for_claude_platform(&mut map);
                map.insert("anthropic_version".into(), Value::String(version.clone()));
                if self.count_tokens {
                    // Vertex counts through a virtual `count-tokens` model and reads the
                    // real model from the body.
                    map.insert("model".into(), Value::String(model.clone()));
                    (
                        platform_path(&self.platform, "count-tokens", false, ""),
                        BodyChange::Replaced(to_json_bytes(&map)?),
                    )
                } else {
                    let mut body: an::MessagesRequest = serde_json::from_value(Value::Object(map))
                        .map_err(|e| {
                            Error::bad_request(format!("invalid Messages request: {e}"))
                        })?;
                    finish_for_platform(&mut body, &self.platform, &model, req.headers);
                    (
                        platform_path(&self.platform, &model, stream, ""),
                        BodyChange::Replaced(to_json_bytes(&body)?),
                    )
                }
            }
        };
        Ok(UpstreamRequest {
            method: Method::POST,
            path,
            headers,
            body,
        })
    }

    fn response_headers(
        &mut self,
        _status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<HeaderMutation> {
        self.body.headers(headers)?;
        Ok(HeaderMutation::default())
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<ResponseChunk> {
        if self.body.stream {
            let events = self.body.events(chunk, end_of_stream)?;
            for ev in &events {
                // Only message_start and message_delta carry usage and model.
                if ev.data.contains("\"message_") {
                    self.sniff(ev.data.as_bytes());
                }
            }
            self.body.events = events;
        } else if let Some(whole) = self.body.whole(chunk, end_of_stream)?
            && !self.count_tokens
        {
            self.sniff(&whole);
        }
        Ok(ResponseChunk {
            body: None,
            usage: self.usage,
            response_model: self.model.clone(),
        })
    }

    fn response_error(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ErrorResponse> {
        let body = decode_error_body(headers, body);
        // Anthropic's own API answers in the client's dialect: its error goes through
        // byte for byte. Vertex AI's front may answer in Google's shape: normalised.
        Ok(match self.platform {
            Platform::Native { .. } => {
                error_map::passthrough(ClientApi::Anthropic, status, headers, &body)
            }
            _ => error_map::translated(ClientApi::Anthropic, status, headers, &body),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Anthropic Messages → OpenAI chat
// ---------------------------------------------------------------------------------------

/// Anthropic Messages client → OpenAI Chat Completions backend (OpenAI, compatible
/// servers, Azure OpenAI).
#[derive(Debug)]
pub struct MessagesToOpenAi {
    flavor: Flavor,
    model_override: Option<String>,
    body: Body,
    encoder: MessagesStreamEncoder,
    usage: TokenUsage,
    model: Option<String>,
    dropped: Vec<DroppedField>,
}

impl MessagesToOpenAi {
    /// A translator for one request.
    pub fn new(flavor: Flavor, model_override: Option<&str>) -> Self {
        Self {
            flavor,
            model_override: model_override.map(str::to_owned),
            body: Body::default(),
            encoder: MessagesStreamEncoder::new(),
            usage: TokenUsage::default(),
            model: None,
            dropped: Vec::new(),
        }
    }
}

impl Translator for MessagesToOpenAi {
    fn dropped_fields(&self) -> &[DroppedField] {
        &self.dropped
    }

    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        let backend = match self.flavor {
            Flavor::OpenAI { .. } => "OpenAI",
            Flavor::Azure { .. } => "AzureOpenAI",
        };
        let msgs: an::MessagesRequest = serde_json::from_slice(req.body)
            .map_err(|e| Error::bad_request(format!("invalid Messages request: {e}")))?;
        self.dropped.clear();
        let mut chat = reverse::messages_to_chat_request(&msgs, backend, &mut self.dropped)?;
        let model = self
            .model_override
            .clone()
            .unwrap_or_else(|| chat.model.clone());
        chat.model = model.clone();
        self.body.stream = req.info.stream;
        let path = match &self.flavor {
            Flavor::OpenAI { prefix } => openai_path(prefix.as_deref(), "chat/completions"),
            Flavor::Azure { version } => format!(
                "/openai/deployments/{}/chat/completions?api-version={}",
                encode_path_segment(&model),
                encode_path_segment(version)
            ),
        };
        let mut headers = HeaderMutation::default();
        headers.set_static("content-type", "application/json");
        // Anthropic-only headers mean nothing to an OpenAI server.
        headers.remove(http::HeaderName::from_static("anthropic-version"));
        headers.remove(http::HeaderName::from_static("anthropic-beta"));
        Ok(UpstreamRequest {
            method: Method::POST,
            path,
            headers,
            body: BodyChange::Replaced(to_json_bytes(&chat)?),
        })
    }

    fn response_headers(
        &mut self,
        _status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<HeaderMutation> {
        let encoded = self.body.headers(headers)?;
        let mut m = HeaderMutation::default();
        if encoded {
            m.remove(http::header::CONTENT_ENCODING);
        }
        Ok(m)
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<ResponseChunk> {
        if self.body.stream {
            let events = self.body.events(chunk, end_of_stream)?;
            // Anthropic events are smaller than the chunks they come from.
            let mut out = Vec::with_capacity(chunk.len());
            for ev in &events {
                if ev.is_done() {
                    self.encoder.finish(&mut out);
                } else {
                    self.encoder.on_data(&ev.data, &mut out);
                }
            }
            self.body.events = events;
            if end_of_stream {
                self.encoder.finish(&mut out);
            }
            self.usage = self.encoder.usage();
            return Ok(ResponseChunk {
                body: Some(Bytes::from(out)),
                usage: self.usage,
                response_model: self.encoder.model().map(str::to_owned),
            });
        }
        let Some(whole) = self.body.whole(chunk, end_of_stream)? else {
            return Ok(ResponseChunk {
                body: Some(Bytes::new()),
                ..Default::default()
            });
        };
        let resp: oa::ChatCompletion = serde_json::from_slice(&whole)
            .map_err(|e| Error::malformed_upstream(format!("invalid chat completion: {e}")))?;
        if let Some(u) = &resp.usage {
            self.usage = u.to_token_usage();
        }
        self.model = Some(resp.model.clone());
        let msg = reverse::chat_to_messages_response(resp)?;
        Ok(ResponseChunk {
            body: Some(to_json_bytes(&msg)?),
            usage: self.usage,
            response_model: self.model.clone(),
        })
    }

    fn response_error(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ErrorResponse> {
        Ok(error_map::translated(
            ClientApi::Anthropic,
            status,
            headers,
            &decode_error_body(headers, body),
        ))
    }
}
