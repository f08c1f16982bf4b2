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
    id: Option<String>,
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
    #[serde(default)]
    id: Option<String>,
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
            id: None,
        }
    }

    fn read(&mut self, json: &[u8]) {
        let Ok(s) = serde_json::from_slice::<Sniff>(json) else {
            return;
        };
        let s = match s.response {
            Some(inner) => *inner,
            // A stream's events carry the response object; a bare `id` on another
            // event is an item's.
            None if self.stream => Sniff { id: None, ..s },
            None => s,
        };
        if self.id.is_none() && !self.input_tokens {
            self.id = s.id.filter(|id| !id.is_empty());
        }
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

    fn response_id(&self) -> Option<&str> {
        self.id.as_deref()
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
        Ok(error_map::passthrough(
            ClientApi::OpenAI,
            status,
            headers,
            body,
        ))
    }
}

/// A request on a stored response a passthrough backend holds (`GET`/`DELETE
/// /v1/responses/{id}`, `…/input_items`, `…/cancel`): sent to that backend as the client
/// made it — method, path under the backend's prefix, query string — and its answer
/// forwarded untouched.
#[derive(Debug)]
pub struct StoredResponsePassthrough {
    flavor: Flavor,
}

/// The request descriptor [`aigw_core::exchange::Exchange::stored_response`] builds.
#[derive(Deserialize)]
struct StoredRequest {
    method: String,
    path: String,
}

impl StoredResponsePassthrough {
    /// A passthrough to an OpenAI or Azure OpenAI backend.
    pub const fn new(flavor: Flavor) -> Self {
        Self { flavor }
    }
}

impl Translator for StoredResponsePassthrough {
    fn forwards_client_query(&self) -> bool {
        true
    }

    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        let d: StoredRequest = serde_json::from_slice(req.body).map_err(|e| {
            aigw_core::Error::internal(format!("stored-response request descriptor: {e}"))
        })?;
        let method = Method::from_bytes(d.method.as_bytes())
            .map_err(|_| aigw_core::Error::bad_request("invalid method"))?;
        let path = d.path.split_once('?').map_or(d.path.as_str(), |(p, _)| p);
        let suffix = path
            .strip_prefix("/v1/")
            .filter(|s| s.starts_with("responses/"))
            .ok_or_else(|| aigw_core::Error::bad_request("not a stored-response path"))?;
        let path = match &self.flavor {
            Flavor::OpenAI { prefix } => openai_path(prefix.as_deref(), suffix),
            Flavor::Azure { .. } => format!("/openai/v1/{suffix}"),
        };
        let mut headers = HeaderMutation::default();
        headers.remove(http::header::CONTENT_TYPE);
        Ok(UpstreamRequest {
            method,
            path,
            headers,
            body: BodyChange::Replaced(bytes::Bytes::new()),
        })
    }

    fn response_headers(
        &mut self,
        _status: StatusCode,
        _headers: &HeaderMap,
    ) -> Result<HeaderMutation> {
        Ok(HeaderMutation::default())
    }

    fn response_chunk(&mut self, _chunk: &[u8], _end_of_stream: bool) -> Result<ResponseChunk> {
        Ok(ResponseChunk::default())
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

#[cfg(test)]
mod tests {
    use super::*;
    use aigw_core::api::RequestInfo;
    use bytes::Bytes;

    fn ctx<'a>(body: &'a Bytes, info: &'a RequestInfo, h: &'a HeaderMap) -> RequestContext<'a> {
        RequestContext {
            body,
            info,
            headers: h,
            force_include_usage: false,
        }
    }

    #[test]
    fn the_created_response_id_is_read_whole_or_streamed() {
        let h = HeaderMap::new();
        let info = RequestInfo {
            model: "m".into(),
            stream: true,
            include_usage: false,
            max_tokens: None,
        };
        let body = Bytes::from_static(br#"{"model":"m","input":"x","stream":true}"#);
        let mut t = ResponsesPassthrough::new(Flavor::OpenAI { prefix: None }, false, None);
        t.request(&ctx(&body, &info, &h)).unwrap();
        let sse = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_9\",\"model\":\"m\"}}\n\n\
                   event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"id\":\"msg_1\"}\n\n";
        let (a, b) = sse.split_at(40);
        t.response_chunk(a.as_bytes(), false).unwrap();
        assert_eq!(t.response_id(), None);
        t.response_chunk(b.as_bytes(), false).unwrap();
        assert_eq!(t.response_id(), Some("resp_9"));

        let info = RequestInfo {
            stream: false,
            ..info
        };
        let mut t = ResponsesPassthrough::new(Flavor::OpenAI { prefix: None }, false, None);
        t.request(&ctx(&body, &info, &h)).unwrap();
        t.response_chunk(br#"{"id":"resp_w","object":"response"}"#, true)
            .unwrap();
        assert_eq!(t.response_id(), Some("resp_w"));
    }

    #[test]
    fn stored_requests_keep_method_and_path_under_the_backend_prefix() {
        let h = HeaderMap::new();
        let info = RequestInfo {
            model: "m".into(),
            stream: false,
            include_usage: false,
            max_tokens: None,
        };
        let body =
            Bytes::from_static(br#"{"model":"m","method":"DELETE","path":"/v1/responses/resp_1"}"#);
        let mut t = StoredResponsePassthrough::new(Flavor::OpenAI {
            prefix: Some("/api/v1".into()),
        });
        let up = t.request(&ctx(&body, &info, &h)).unwrap();
        assert_eq!(
            (up.method, up.path.as_str()),
            (Method::DELETE, "/api/v1/responses/resp_1")
        );
        assert_eq!(up.body, BodyChange::Replaced(Bytes::new()));
        let body = Bytes::from_static(
            br#"{"model":"m","method":"GET","path":"/v1/responses/resp_1/input_items"}"#,
        );
        let mut t = StoredResponsePassthrough::new(Flavor::Azure {
            version: String::new(),
        });
        let up = t.request(&ctx(&body, &info, &h)).unwrap();
        assert_eq!(up.path, "/openai/v1/responses/resp_1/input_items");
        assert!(t.forwards_client_query());
    }
}
