//! The OpenAI-family endpoints beyond chat, passed through to a backend that speaks
//! them natively: images (`/v1/images/generations`, `/v1/images/edits`), audio
//! (`/v1/audio/speech`, `/v1/audio/transcriptions`, `/v1/audio/translations`) on OpenAI
//! and Azure OpenAI; Cohere's `/v2/rerank` on Cohere and on OpenAI-compatible servers
//! that serve it (vLLM); vLLM's `/tokenize`.
//!
//! Request bodies are forwarded untouched (a `modelNameOverride` rewrites only the
//! `model` field, JSON or form), every response byte unchanged; usage is read from the
//! response where the provider reports it (images and transcriptions `usage`, the
//! speech stream's `speech.audio.done`, Cohere's `meta.billed_units`/`meta.tokens`,
//! vLLM's `count`). Audio is metered too: the seconds of a transcription or
//! translation (`usage.seconds` of duration-billed models, else the verbose response's
//! `duration`) and the characters of a speech request's `input`. Bodies read for usage are bounded: a larger JSON response (e.g.
//! many base64 images) is forwarded without being read.

use super::{DEFAULT_AZURE_API_VERSION, encode_path_segment, openai_path, rewrite_openai_body};
use crate::error_map;
use crate::sse::{SseDecoder, SseEvent};
use aigw_core::api::{Endpoint, multipart};
use aigw_core::{
    BodyChange, ClientApi, Error, ErrorResponse, HeaderMutation, RequestContext, ResponseChunk,
    Result, TokenUsage, Translator, UpstreamRequest,
};
use http::{HeaderMap, Method, StatusCode, header};
use serde::Deserialize;

/// The largest JSON response read for usage.
const MAX_SNIFF: usize = 8 << 20;

/// Where a media endpoint lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaBackend {
    /// OpenAI or an OpenAI-compatible server; `prefix` replaces `/v1`.
    OpenAI {
        /// Path prefix, `/v1` when `None`.
        prefix: Option<String>,
    },
    /// Azure OpenAI: `/openai/deployments/{model}/…?api-version=`.
    Azure {
        /// The `api-version`.
        version: String,
    },
    /// Cohere: `/{version or v2}/rerank`.
    Cohere {
        /// The API version path segment.
        version: Option<String>,
    },
}

/// Passthrough of one media, rerank or tokenize request.
#[derive(Debug)]
pub struct MediaPassthrough {
    endpoint: Endpoint,
    backend: MediaBackend,
    model_override: Option<String>,
    sse: bool,
    json: bool,
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    buffered: Vec<u8>,
    overflow: bool,
    usage: TokenUsage,
    model: Option<String>,
}

impl MediaPassthrough {
    /// A passthrough of `endpoint` to `backend`, or the 422 naming both when the
    /// backend does not serve it.
    pub fn new(
        endpoint: Endpoint,
        backend: MediaBackend,
        model_override: Option<&str>,
    ) -> Result<Self> {
        if suffix(endpoint, &backend).is_none() {
            let name = match backend {
                MediaBackend::OpenAI { .. } => "OpenAI",
                MediaBackend::Azure { .. } => "AzureOpenAI",
                MediaBackend::Cohere { .. } => "Cohere",
            };
            return Err(Error::untranslatable(
                format!("endpoint {}", endpoint.operation_name()),
                name,
                "this endpoint is not served by this backend",
            ));
        }
        Ok(Self {
            endpoint,
            backend,
            model_override: model_override.map(str::to_owned),
            sse: false,
            json: false,
            decoder: SseDecoder::new(),
            events: Vec::new(),
            buffered: Vec::new(),
            overflow: false,
            usage: TokenUsage::default(),
            model: None,
        })
    }

    fn read_usage(&mut self, json: &[u8]) {
        let Ok(s) = serde_json::from_slice::<Sniff>(json) else {
            return;
        };
        if let Some(m) = s.model.filter(|m| !m.is_empty()) {
            self.model = Some(m);
        }
        let mut u = TokenUsage::default();
        if let Some(x) = s.usage {
            u.input = x.input_tokens.or(x.prompt_tokens);
            u.output = x.output_tokens;
            u.total = x.total_tokens;
            // Duration-billed models (whisper-1) report `{"type":"duration","seconds"}`.
            u.audio_ms = x.seconds.map(seconds_to_ms);
        }
        if u.audio_ms.is_none()
            && matches!(
                self.endpoint,
                Endpoint::AudioTranscriptions | Endpoint::AudioTranslations
            )
        {
            u.audio_ms = s.duration.map(seconds_to_ms);
        }
        if matches!(
            self.endpoint,
            Endpoint::ImageGenerations | Endpoint::ImageEdits
        ) {
            u.images = s.data.as_ref().map(|d| d.len() as u64);
        }
        if let Some(meta) = s.meta {
            if let Some(t) = meta.tokens {
                u.input = t.input_tokens.map(|n| n as u64).or(u.input);
                u.output = t.output_tokens.map(|n| n as u64).or(u.output);
            }
            if u.input.is_none()
                && let Some(b) = meta.billed_units
            {
                // Rerank bills search units; counted as input so costs see them.
                u.input = b.search_units.map(|n| n as u64);
            }
        }
        if let Some(n) = s.count {
            u.input = Some(n);
        }
        if u.total.is_none()
            && let (Some(i), Some(o)) = (u.input, u.output)
        {
            u.total = Some(i + o);
        }
        self.usage.update(&u);
    }
}

fn seconds_to_ms(s: f64) -> u64 {
    // Saturating float-to-int cast: a negative or absurd value cannot wrap.
    (s * 1000.0).round().max(0.0) as u64
}

/// The characters of a speech request's `input`.
fn speech_characters(body: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Speech<'a> {
        #[serde(borrow)]
        input: std::borrow::Cow<'a, str>,
    }
    let s: Speech<'_> = serde_json::from_slice(body).ok()?;
    Some(s.input.chars().count() as u64)
}

/// The path after the backend's prefix for `endpoint`, where the backend serves it.
fn suffix(endpoint: Endpoint, backend: &MediaBackend) -> Option<&'static str> {
    let openai_media = match endpoint {
        Endpoint::ImageGenerations => Some("images/generations"),
        Endpoint::ImageEdits => Some("images/edits"),
        Endpoint::AudioSpeech => Some("audio/speech"),
        Endpoint::AudioTranscriptions => Some("audio/transcriptions"),
        Endpoint::AudioTranslations => Some("audio/translations"),
        _ => None,
    };
    match (backend, endpoint) {
        (MediaBackend::OpenAI { .. } | MediaBackend::Azure { .. }, _) if openai_media.is_some() => {
            openai_media
        }
        (MediaBackend::OpenAI { .. } | MediaBackend::Cohere { .. }, Endpoint::Rerank) => {
            Some("rerank")
        }
        (MediaBackend::OpenAI { .. }, Endpoint::Tokenize) => Some("tokenize"),
        _ => None,
    }
}

#[derive(Deserialize)]
struct Sniff {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<SniffUsage>,
    #[serde(default)]
    meta: Option<CohereMeta>,
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    duration: Option<f64>,
    /// The images of an image response (counted, not kept).
    #[serde(default)]
    data: Option<Vec<serde::de::IgnoredAny>>,
}

#[derive(Deserialize)]
struct SniffUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    seconds: Option<f64>,
}

#[derive(Deserialize)]
struct CohereMeta {
    #[serde(default)]
    billed_units: Option<CohereUnits>,
    #[serde(default)]
    tokens: Option<CohereTokens>,
}

#[derive(Deserialize)]
struct CohereUnits {
    #[serde(default)]
    search_units: Option<f64>,
}

#[derive(Deserialize)]
struct CohereTokens {
    #[serde(default)]
    input_tokens: Option<f64>,
    #[serde(default)]
    output_tokens: Option<f64>,
}

impl Translator for MediaPassthrough {
    fn forwards_client_query(&self) -> bool {
        !matches!(self.backend, MediaBackend::Azure { .. })
    }

    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        let suffix = suffix(self.endpoint, &self.backend)
            .ok_or_else(|| Error::internal("media endpoint without a path"))?;
        let model = self.model_override.as_deref().unwrap_or(&req.info.model);
        let (path, rewrite) = match &self.backend {
            MediaBackend::OpenAI { .. } if self.endpoint == Endpoint::Tokenize => {
                ("/tokenize".to_owned(), self.model_override.as_deref())
            }
            MediaBackend::OpenAI { .. } if self.endpoint == Endpoint::Rerank => {
                ("/v2/rerank".to_owned(), self.model_override.as_deref())
            }
            MediaBackend::OpenAI { prefix } => (
                openai_path(prefix.as_deref(), suffix),
                self.model_override.as_deref(),
            ),
            MediaBackend::Azure { version } => (
                format!(
                    "/openai/deployments/{}/{suffix}?api-version={}",
                    encode_path_segment(model),
                    encode_path_segment(if version.is_empty() {
                        DEFAULT_AZURE_API_VERSION
                    } else {
                        version
                    })
                ),
                None,
            ),
            MediaBackend::Cohere { version } => (
                format!(
                    "/{}/{suffix}",
                    version.as_deref().unwrap_or("v2").trim_matches('/')
                ),
                self.model_override.as_deref(),
            ),
        };
        let body = match rewrite {
            None => BodyChange::Unchanged,
            Some(m) if self.endpoint.is_multipart() => {
                let ct = req
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok());
                BodyChange::Replaced(multipart::replace_model(ct, req.body, m)?)
            }
            Some(m) => BodyChange::Replaced(rewrite_openai_body(req.body, Some(m), false)?),
        };
        if self.endpoint == Endpoint::AudioSpeech {
            self.usage.characters = speech_characters(req.body);
        }
        let mut headers = HeaderMutation::default();
        // Usage is read from the body: ask for it uncompressed.
        headers.remove(header::ACCEPT_ENCODING);
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
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let identity = headers.get(header::CONTENT_ENCODING).is_none();
        self.sse = identity && ct.starts_with("text/event-stream");
        self.json = identity && ct.starts_with("application/json");
        Ok(HeaderMutation::default())
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<ResponseChunk> {
        if self.sse {
            let mut events = std::mem::take(&mut self.events);
            events.clear();
            self.decoder.feed(chunk, &mut events);
            if end_of_stream {
                self.decoder.finish(&mut events);
            }
            for ev in &events {
                if ev.data.contains("\"usage\"") {
                    self.read_usage(ev.data.as_bytes());
                }
            }
            self.events = events;
        } else if self.json && !self.overflow {
            if end_of_stream && self.buffered.is_empty() {
                self.read_usage(chunk);
            } else if self.buffered.len() + chunk.len() > MAX_SNIFF {
                self.overflow = true;
                self.buffered = Vec::new();
                tracing::debug!(
                    endpoint = self.endpoint.operation_name(),
                    "response too large to read usage from"
                );
            } else {
                self.buffered.extend_from_slice(chunk);
                if end_of_stream {
                    let whole = std::mem::take(&mut self.buffered);
                    self.read_usage(&whole);
                }
            }
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
        Ok(error_map::passthrough(
            ClientApi::OpenAI,
            status,
            headers,
            body,
        ))
    }
}
