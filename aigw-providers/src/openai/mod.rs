//! OpenAI-family backends: OpenAI itself, any OpenAI-compatible server (schema
//! `prefix`), and Azure OpenAI — for Chat Completions, Completions and Embeddings.
//!
//! These are passthroughs. Without a model override the request body is forwarded
//! untouched ([`BodyChange::Unchanged`]) and so is every response chunk
//! (`ResponseChunk::body == None`); the translator only sniffs `model` and `usage` from
//! the response. With `modelNameOverride` only the `model` field is rewritten. With
//! `force_include_usage` on a stream the client did not ask usage for,
//! `stream_options.include_usage` is set upstream and the usage-only chunk is counted
//! but removed from the client's stream.

pub mod handoff;
pub mod media;
pub(crate) mod sniff;

pub use sniff::{ChunkSniff, usage_is_present};

use crate::compression::{Decompressor, Encoding};
use crate::error_map;
use crate::sse::{SseDecoder, SseEvent};
use aigw_core::{
    BodyChange, ClientApi, Error, ErrorResponse, HeaderMutation, RequestContext, ResponseChunk,
    Result, TokenUsage, Translator, UpstreamRequest,
};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The default Azure OpenAI `api-version` when the schema names none (the latest GA
/// data-plane version at the time of writing).
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

/// Which OpenAI-shaped API a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `/chat/completions`.
    ChatCompletions,
    /// `/completions`.
    Completions,
    /// `/embeddings`.
    Embeddings,
}

impl Operation {
    const fn suffix(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat/completions",
            Self::Completions => "completions",
            Self::Embeddings => "embeddings",
        }
    }
}

/// Where the OpenAI-shaped API lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    /// OpenAI or a compatible server; `prefix` replaces `/v1` (e.g. `/v1beta/openai`).
    OpenAI {
        /// Path prefix, `/v1` when `None`.
        prefix: Option<String>,
    },
    /// Azure OpenAI: `/openai/deployments/{model}/…?api-version={version}`.
    Azure {
        /// The `api-version`.
        version: String,
    },
}

/// Builds `/{prefix}/{suffix}` with `/v1` as the default prefix.
pub fn openai_path(prefix: Option<&str>, suffix: &str) -> String {
    let prefix = prefix.unwrap_or("/v1").trim_matches('/');
    // Pushed, not `format!`ed: this runs on every request.
    let mut path = String::with_capacity(prefix.len() + suffix.len() + 2);
    if !prefix.is_empty() {
        path.push('/');
        path.push_str(prefix);
    }
    path.push('/');
    path.push_str(suffix);
    path
}

/// Percent-encodes one path segment (RFC 3986 unreserved characters stay as they are).
pub fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Rewrites only the top-level `model` and/or sets `stream_options.include_usage`;
/// every other byte of the body is kept as it was (field order, spacing, unknown fields).
///
/// The edit is a splice: the body is parsed once to locate the two top-level values
/// (without building a DOM), and only those bytes are replaced.
///
/// ```
/// use aigw_providers::openai::rewrite_openai_body;
/// let out = rewrite_openai_body(br#"{"model": "a", "x": [1, 2]}"#, Some("b"), true).unwrap();
/// assert_eq!(&out[..], br#"{"stream_options":{"include_usage":true},"model": "b", "x": [1, 2]}"#);
/// ```
pub fn rewrite_openai_body(body: &[u8], model: Option<&str>, force_usage: bool) -> Result<Bytes> {
    #[derive(serde::Deserialize)]
    struct TopLevel<'a> {
        #[serde(borrow, default)]
        model: Option<&'a RawValue>,
        #[serde(borrow, default)]
        stream_options: Option<&'a RawValue>,
    }
    let top: TopLevel<'_> = serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("malformed JSON request body: {e}")))?;
    let span = |raw: &RawValue| {
        let start = raw.get().as_ptr() as usize - body.as_ptr() as usize;
        (start, start + raw.get().len())
    };
    let mut edits: Vec<(usize, usize, Vec<u8>)> = Vec::with_capacity(2);
    if let Some(m) = model {
        // `model` is always present: the request was routed by it.
        let Some(raw) = top.model else {
            return rewrite_via_map(body, model, force_usage);
        };
        let (s, e) = span(raw);
        edits.push((s, e, json_vec(&m)?));
    }
    if force_usage {
        match top.stream_options {
            Some(raw) => {
                let mut opts: Map<String, Value> = serde_json::from_str(raw.get())
                    .map_err(|e| Error::bad_request(format!("invalid stream_options: {e}")))?;
                opts.insert("include_usage".into(), Value::Bool(true));
                let (s, e) = span(raw);
                edits.push((s, e, json_vec(&opts)?));
            }
            // `"stream_options": null` (or any other unusual shape): take the slow path.
            None if memchr::memmem::find(body, b"\"stream_options\"").is_some() => {
                return rewrite_via_map(body, model, force_usage);
            }
            None => {
                let Some(open) = body.iter().position(|b| !b.is_ascii_whitespace()) else {
                    return rewrite_via_map(body, model, force_usage);
                };
                let empty = body[open + 1..]
                    .iter()
                    .find(|b| !b.is_ascii_whitespace())
                    .is_some_and(|b| *b == b'}');
                let mut ins = br#""stream_options":{"include_usage":true}"#.to_vec();
                if !empty {
                    ins.push(b',');
                }
                edits.push((open + 1, open + 1, ins));
            }
        }
    }
    edits.sort_by_key(|e| e.0);
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut at = 0;
    for (s, e, rep) in edits {
        out.extend_from_slice(&body[at..s]);
        out.extend_from_slice(&rep);
        at = e;
    }
    out.extend_from_slice(&body[at..]);
    Ok(Bytes::from(out))
}

fn json_vec<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v)
        .map_err(|e| Error::internal(format!("cannot serialise request body: {e}")))
}

/// The general form of [`rewrite_openai_body`] through a JSON map.
fn rewrite_via_map(body: &[u8], model: Option<&str>, force_usage: bool) -> Result<Bytes> {
    let mut map: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("malformed JSON request body: {e}")))?;
    if let Some(model) = model {
        map.insert("model".into(), Value::String(model.into()));
    }
    if force_usage {
        let opts = map
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Map::new()));
        if !opts.is_object() {
            *opts = Value::Object(Map::new());
        }
        if let Some(o) = opts.as_object_mut() {
            o.insert("include_usage".into(), Value::Bool(true));
        }
    }
    serde_json::to_vec(&map)
        .map(Bytes::from)
        .map_err(|e| Error::internal(format!("cannot serialise request body: {e}")))
}

/// The OpenAI-family passthrough translator.
#[derive(Debug)]
pub struct OpenAiTranslator {
    op: Operation,
    flavor: Flavor,
    model_override: Option<String>,
    stream: bool,
    strip_usage: bool,
    encoding: Encoding,
    decompressor: Option<Decompressor>,
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    buffered: Vec<u8>,
    usage: TokenUsage,
    model: Option<String>,
    /// Where the decoded stream events go, unread, if set.
    sink: Option<handoff::SseSink>,
}

impl OpenAiTranslator {
    /// A translator for one request.
    pub fn new(op: Operation, flavor: Flavor, model_override: Option<&str>) -> Self {
        Self {
            op,
            flavor,
            model_override: model_override.map(str::to_owned),
            stream: false,
            strip_usage: false,
            encoding: Encoding::Identity,
            decompressor: None,
            decoder: SseDecoder::new(),
            events: Vec::new(),
            buffered: Vec::new(),
            usage: TokenUsage::default(),
            model: None,
            sink: None,
        }
    }

    /// Queues the decoded events of a stream on `sink` (for a wrapper that renders
    /// another client API from them), leaving the usage and model to the wrapper, which
    /// parses every chunk anyway (`sniff::StreamSniff`): the responses of this
    /// translator then carry none. The stream's own bytes are still passed on as
    /// received.
    #[must_use]
    pub fn with_sse_sink(mut self, sink: handoff::SseSink) -> Self {
        self.sink = Some(sink);
        self
    }

    fn backend_name(&self) -> &'static str {
        match self.flavor {
            Flavor::OpenAI { .. } => "OpenAI",
            Flavor::Azure { .. } => "AzureOpenAI",
        }
    }

    fn sniff_event(&mut self, data: &str) -> Option<bool> {
        let mut s = sniff::StreamSniff {
            model: self.model.take(),
            usage: self.usage,
        };
        let usage_only = s.chunk(data);
        (self.model, self.usage) = (s.model, s.usage);
        usage_only
    }

    /// Takes the answering model and the usage from a complete non-stream body.
    fn read_final_body(&mut self, body: &[u8]) {
        if let Some((model, usage)) = aigw_core::api::final_body::read_tokens(body) {
            self.model = model.filter(|m| !m.is_empty());
            if let Some(mut usage) = usage {
                if self.op == Operation::Embeddings {
                    usage.output = None;
                }
                self.usage.update(&usage);
            }
        }
    }

    fn stream_chunk(&mut self, plain: &[u8], eos: bool) -> Result<ResponseChunk> {
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        self.decoder.feed(plain, &mut events);
        if eos {
            self.decoder.finish(&mut events);
        }
        let mut out = self.strip_usage.then(|| Vec::with_capacity(plain.len()));
        if out.is_none()
            && let Some(sink) = &self.sink
        {
            // The wrapper reads usage and model (see `with_sse_sink`).
            sink.push_all(&mut events);
        }
        for ev in &events {
            if ev.is_done() {
                if let Some(out) = out.as_mut() {
                    ev.encode_into(out);
                }
                continue;
            }
            let usage_only = self.sniff_event(&ev.data).unwrap_or(false);
            if let Some(out) = out.as_mut() {
                if usage_only {
                    continue;
                }
                if usage_is_present(&ev.data) {
                    // Usage riding on a content chunk: drop only the usage field.
                    if let Ok(mut m) = serde_json::from_str::<Map<String, Value>>(&ev.data) {
                        m.remove("usage");
                        crate::sse::encode_json(out, ev.event.as_deref(), &m);
                        continue;
                    }
                }
                ev.encode_into(out);
            }
        }
        if let Some(sink) = &self.sink {
            sink.push_all(&mut events);
        }
        self.events = events;
        // Without stripping, the stream goes out as received (compressed or not).
        let body = out.map(Bytes::from);
        Ok(ResponseChunk {
            body,
            usage: self.usage,
            response_model: self.model.clone(),
        })
    }
}

impl Translator for OpenAiTranslator {
    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        self.stream = req.info.stream && self.op != Operation::Embeddings;
        let force_usage = req.force_include_usage && self.stream && !req.info.include_usage;
        self.strip_usage = force_usage;
        let model = self.model_override.as_deref().unwrap_or(&req.info.model);
        let (path, rewrite_model) = match &self.flavor {
            Flavor::OpenAI { prefix } => (
                openai_path(prefix.as_deref(), self.op.suffix()),
                self.model_override.as_deref(),
            ),
            // Azure routes by deployment in the path and ignores the body's model.
            Flavor::Azure { version } => (
                format!(
                    "/openai/deployments/{}/{}?api-version={}",
                    encode_path_segment(model),
                    self.op.suffix(),
                    encode_path_segment(version)
                ),
                None,
            ),
        };
        let body = if rewrite_model.is_some() || force_usage {
            BodyChange::Replaced(rewrite_openai_body(req.body, rewrite_model, force_usage)?)
        } else {
            BodyChange::Unchanged
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
        self.encoding = Encoding::from_headers(headers)?;
        if !self.encoding.is_identity() {
            self.decompressor = Some(Decompressor::new(self.encoding));
        }
        if let Some(ct) = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        {
            self.stream = ct.starts_with("text/event-stream");
        }
        let mut m = HeaderMutation::default();
        if self.strip_usage && !self.encoding.is_identity() {
            // The stream is re-emitted decoded.
            m.remove(http::header::CONTENT_ENCODING);
        }
        Ok(m)
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
            return self.stream_chunk(plain, end_of_stream);
        }
        if end_of_stream && self.buffered.is_empty() {
            // The whole body in one piece (the adapters' usual case): read it in place
            // rather than copying it into the buffer first.
            self.read_final_body(plain);
        } else {
            self.buffered.extend_from_slice(plain);
            if end_of_stream {
                let whole = std::mem::take(&mut self.buffered);
                self.read_final_body(&whole);
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
        let plain = match Encoding::from_headers(headers) {
            Ok(enc) if !enc.is_identity() => {
                let mut d = Decompressor::new(enc);
                d.decompress(body)
                    .and_then(|mut v| {
                        d.finish().map(|t| {
                            v.extend(t);
                            v
                        })
                    })
                    .unwrap_or_else(|_| body.to_vec())
            }
            _ => body.to_vec(),
        };
        let _ = self.backend_name();
        Ok(error_map::passthrough(
            ClientApi::OpenAI,
            status,
            headers,
            &plain,
        ))
    }
}

#[cfg(test)]
mod tests;
