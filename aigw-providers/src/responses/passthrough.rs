//! Responses passthrough to OpenAI and Azure OpenAI: the body and every response byte
//! are forwarded untouched (the body is rewritten only for a model override); model and
//! usage are sniffed from the response object or from the stream's terminal event.

use crate::compression::{Decompressor, Encoding};
use crate::error_map;
use crate::openai::{Flavor, openai_path, rewrite_openai_body};
use crate::sse::{SseDecoder, SseEvent};
use aigw_core::api::responses::ResponseUsage;
use aigw_core::{
    BodyChange, ClientApi, ErrorResponse, HeaderMutation, RequestContext, ResponseChunk, Result,
    TokenUsage, Translator, UpstreamRequest,
};
use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;

/// The Responses passthrough translator.
#[derive(Debug)]
pub struct ResponsesPassthrough {
    flavor: Flavor,
    input_tokens: bool,
    model_override: Option<String>,
    stream: bool,
    decompressor: Option<Decompressor>,
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    buffered: Vec<u8>,
    usage: TokenUsage,
    model: Option<String>,
}

/// The parts of a response object (or of an event carrying one) the gateway reads.
#[derive(Deserialize)]
struct Sniff {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<ResponseUsage>,
    #[serde(default)]
    response: Option<Box<Sniff>>,
    #[serde(default)]
    input_tokens: Option<u64>,
}

impl ResponsesPassthrough {
    /// A passthrough for `POST /v1/responses` (or `…/input_tokens` when `input_tokens`).
    pub fn new(flavor: Flavor, input_tokens: bool, model_override: Option<&str>) -> Self {
        Self {
            flavor,
            input_tokens,
            model_override: model_override.map(str::to_owned),
            stream: false,
            decompressor: None,
            decoder: SseDecoder::new(),
            events: Vec::new(),
            buffered: Vec::new(),
            usage: TokenUsage::default(),
            model: None,
        }
    }

    fn read(&mut self, json: &[u8]) {
        let Ok(s) = serde_json::from_slice::<Sniff>(json) else {
            return;
        };
        let s = match s.response {
            Some(inner) => *inner,
            None => s,
        };
        if let Some(m) = s.model.filter(|m| !m.is_empty()) {
            self.model = Some(m);
        }
        if let Some(u) = s.usage {
            self.usage.update(&u.to_token_usage());
        }
        if let Some(n) = s.input_tokens.filter(|_| self.input_tokens) {
            self.usage.update(&TokenUsage {
                input: Some(n),
                ..TokenUsage::default()
            });
        }
    }
}

impl Translator for ResponsesPassthrough {
    /// The backend speaks the client's API, so its query string (e.g. Azure's
    /// `api-version`, or parameters a newer SDK adds) reaches it unchanged.
    fn forwards_client_query(&self) -> bool {
        true
    }

    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        self.stream = req.info.stream && !self.input_tokens;
        let suffix = if self.input_tokens {
            "responses/input_tokens"
        } else {
            "responses"
        };
        let path = match &self.flavor {
            Flavor::OpenAI { prefix } => openai_path(prefix.as_deref(), suffix),
            // Azure's v1 API takes the deployment in `model`, like OpenAI.
            Flavor::Azure { .. } => format!("/openai/v1/{suffix}"),
        };
        let body = match &self.model_override {
            Some(m) => BodyChange::Replaced(rewrite_openai_body(req.body, Some(m), false)?),
            None => BodyChange::Unchanged,
        };
        Ok(UpstreamRequest {
            method: Method::POST,
            path,
            headers: HeaderMutation::default(),
            body,
        })
    }

    fn response_headers(
        &mut self,
        _status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<HeaderMutation> {
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
        Ok(HeaderMutation::default())
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<ResponseChunk> {
        let decoded;
        let plain: &[u8] = match self.decompressor.as_mut() {
            None => chunk,
            Some(d) => {
                let mut v = d.decompress(chunk)?;
                if end_of_stream {
                    v.extend(d.finish()?);
                }
                decoded = v;
                &decoded
            }
        };
        if self.stream {
            let mut events = std::mem::take(&mut self.events);
            events.clear();
            self.decoder.feed(plain, &mut events);
            if end_of_stream {
                self.decoder.finish(&mut events);
            }
            for ev in &events {
                let terminal = ev.data.contains("\"usage\"") || self.model.is_none();
                if terminal {
                    self.read(ev.data.as_bytes());
                }
            }
            self.events = events;
        } else {
            self.buffered.extend_from_slice(plain);
            if end_of_stream {
                let whole = std::mem::take(&mut self.buffered);
                self.read(&whole);
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
        Ok(error_map::normalize(
            ClientApi::OpenAI,
            status,
            headers,
            body,
        ))
    }
}
