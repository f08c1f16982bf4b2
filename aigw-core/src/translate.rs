//! The [`Translator`] trait: one client API to one backend API, per request.

use crate::api::{Endpoint, RequestInfo};
use crate::error::Result;
use crate::schema::VersionedSchema;
use crate::usage::TokenUsage;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

/// Header edits to apply to a request or response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMutation {
    /// Headers to set, replacing any existing value.
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// Headers to remove.
    pub remove: Vec<HeaderName>,
}

impl HeaderMutation {
    /// The response headers of a body the translator rewrites as JSON: the content type
    /// becomes `application/json` and the upstream's length no longer holds.
    pub fn json_body() -> Self {
        let mut m = Self::default();
        m.set(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        m.remove(http::header::CONTENT_LENGTH);
        m
    }

    /// Whether the mutation changes nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    /// Adds a header to set.
    pub fn set(&mut self, name: HeaderName, value: HeaderValue) -> &mut Self {
        self.set.push((name, value));
        self
    }

    /// Adds a header to set from static strings (for compile-time constant values).
    pub fn set_static(&mut self, name: &'static str, value: &'static str) -> &mut Self {
        self.set.push((
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
        self
    }

    /// Adds a header to remove.
    pub fn remove(&mut self, name: HeaderName) -> &mut Self {
        self.remove.push(name);
        self
    }

    /// Applies the mutation to a header map: removals first, then sets.
    pub fn apply_to(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
    }
}

/// What happens to a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyChange {
    /// Forward the original bytes untouched (a passthrough costs no re-serialisation).
    Unchanged,
    /// Replace the body with these bytes.
    Replaced(Bytes),
}

/// Everything a translator sees of the client's request.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// The original client body, exactly as received. Translators never mutate it: a
    /// retry against another backend translates the same original again.
    pub body: &'a Bytes,
    /// The sniffed model and stream flags.
    pub info: &'a RequestInfo,
    /// The client's request headers (e.g. `anthropic-version`, `anthropic-beta`).
    pub headers: &'a HeaderMap,
    /// Force the usage chunk upstream (`stream_options.include_usage`) because costs are
    /// configured; the translator strips it from the client's stream if the client did
    /// not ask for it.
    pub force_include_usage: bool,
}

/// The upstream request a translator produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// The HTTP method.
    pub method: Method,
    /// Path and query on the backend (before any credential path prefix, such as GCP's).
    pub path: String,
    /// Header edits (content type, API version headers, …). `content-length` is the
    /// adapter's business.
    pub headers: HeaderMutation,
    /// The body to send.
    pub body: BodyChange,
}

/// The translation of one response chunk (or of a whole buffered response).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseChunk {
    /// Bytes to send to the client. `None` means "forward the input chunk unchanged".
    /// `Some(empty)` means "nothing to send yet" (a frame split across chunks).
    pub body: Option<Bytes>,
    /// The latest cumulative usage seen so far.
    pub usage: TokenUsage,
    /// The model the upstream says answered, once known.
    pub response_model: Option<String>,
}

/// An upstream error response, normalised into the client API's envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    /// Status for the client.
    pub status: StatusCode,
    /// Header edits (at least `content-type`).
    pub headers: HeaderMutation,
    /// The client-API-shaped error body.
    pub body: Bytes,
}

/// Translates one request from a client API to a backend API and its response back.
///
/// A translator is created per request (and per attempt) and is stateful: streaming
/// translators keep partial frames between chunks. It is synchronous and performs no
/// I/O, so every adapter (axum, Envoy ExtProc) drives it the same way and it is
/// trivially testable and fuzzable.
///
/// Contract:
/// * [`Translator::request`] never mutates the original body; it returns a new one or
///   [`BodyChange::Unchanged`].
/// * [`Translator::response_chunk`] must produce the same output and usage for any
///   split of the response into chunks. The last call has `end_of_stream = true`;
///   non-streaming responses are passed whole in one call.
/// * `usage` in each [`ResponseChunk`] is cumulative: the adapter keeps the latest.
///
/// ```
/// use aigw_core::{BodyChange, ErrorResponse, HeaderMutation, RequestContext, ResponseChunk,
///     Result, Translator, UpstreamRequest};
/// use http::{HeaderMap, Method, StatusCode};
///
/// /// Forwards OpenAI requests to an OpenAI server unchanged.
/// struct Passthrough;
///
/// impl Translator for Passthrough {
///     fn request(&mut self, _req: &RequestContext<'_>) -> Result<UpstreamRequest> {
///         Ok(UpstreamRequest { method: Method::POST, path: "/v1/chat/completions".into(),
///             headers: HeaderMutation::default(), body: BodyChange::Unchanged })
///     }
///     fn response_headers(&mut self, _s: StatusCode, _h: &HeaderMap) -> Result<HeaderMutation> {
///         Ok(HeaderMutation::default())
///     }
///     fn response_chunk(&mut self, _chunk: &[u8], _eos: bool) -> Result<ResponseChunk> {
///         Ok(ResponseChunk::default())
///     }
///     fn response_error(&mut self, status: StatusCode, _h: &HeaderMap, body: &[u8]) -> Result<ErrorResponse> {
///         Ok(ErrorResponse { status, headers: HeaderMutation::default(),
///             body: bytes::Bytes::copy_from_slice(body) })
///     }
/// }
/// ```
pub trait Translator: Send {
    /// Translates the client request for the backend.
    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest>;

    /// Inspects the upstream's response headers (success responses) and returns edits,
    /// e.g. Bedrock's `application/vnd.amazon.eventstream` becomes `text/event-stream`.
    fn response_headers(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<HeaderMutation>;

    /// Translates one chunk of a successful response body.
    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<ResponseChunk>;

    /// Normalises a non-2xx upstream response into the client API's error envelope.
    fn response_error(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ErrorResponse>;

    /// An error this translator already reported to the client inside a successful
    /// response — e.g. an upstream stream exception it rendered as the client's error
    /// event — once one has occurred. The exchange then records the request as failed
    /// although its status was 200. Default: never.
    fn in_band_error(&self) -> Option<String> {
        None
    }

    /// Request fields the last [`Translator::request`] left out because the backend has
    /// no equivalent and they cannot change the answer (a cache hint, a no-op context
    /// edit, a display preference). The exchange logs and counts each one, so nothing
    /// is dropped silently. Default: none.
    fn dropped_fields(&self) -> &[DroppedField] {
        &[]
    }

    /// Whether the client's query string (e.g. Anthropic's `?beta=true`) goes to the
    /// backend with the translated path: true only for native passthroughs, whose
    /// backend speaks the client's dialect. Default: false.
    fn forwards_client_query(&self) -> bool {
        false
    }

    /// The id of the stored object the backend created, once seen (a passed-through
    /// Responses API response), so a later retrieval by id reaches the same backend
    /// ([`crate::owners`]). Default: none.
    fn response_id(&self) -> Option<&str> {
        None
    }

    /// The generated text of the events the last [`Translator::response_chunk`] of a
    /// stream wrote, for a translator that writes whole events and knows their text;
    /// the exchange keeps it for the estimate of a cut stream instead of parsing the
    /// events it was just given ([`crate::estimate::Delivered`]). It must be the text
    /// [`crate::estimate::Delivered::push`] reads from those bytes, and the translator
    /// must report it for every chunk of the stream or for none. Default: none.
    fn event_text(&self) -> Option<&crate::estimate::EventText> {
        None
    }
}

/// A client request field a translator did not carry to the backend, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DroppedField {
    /// The field, as a stable label (`context_management`, `thinking.display`, …).
    pub field: &'static str,
    /// Why dropping it cannot change the answer.
    pub reason: &'static str,
}

impl DroppedField {
    /// A dropped field with its reason.
    pub const fn new(field: &'static str, reason: &'static str) -> Self {
        Self { field, reason }
    }
}

impl<T: Translator + ?Sized> Translator for Box<T> {
    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        (**self).request(req)
    }
    fn response_headers(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<HeaderMutation> {
        (**self).response_headers(status, headers)
    }
    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<ResponseChunk> {
        (**self).response_chunk(chunk, end_of_stream)
    }
    fn response_error(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ErrorResponse> {
        (**self).response_error(status, headers, body)
    }
    fn in_band_error(&self) -> Option<String> {
        (**self).in_band_error()
    }
    fn dropped_fields(&self) -> &[DroppedField] {
        (**self).dropped_fields()
    }
    fn forwards_client_query(&self) -> bool {
        (**self).forwards_client_query()
    }
    fn response_id(&self) -> Option<&str> {
        (**self).response_id()
    }
    fn event_text(&self) -> Option<&crate::estimate::EventText> {
        (**self).event_text()
    }
}

/// What a factory needs to build a translator for one attempt.
#[derive(Debug, Clone, Copy)]
pub struct TranslatorSpec<'a> {
    /// The client-facing endpoint.
    pub endpoint: Endpoint,
    /// The backend's schema.
    pub schema: &'a VersionedSchema,
    /// `modelNameOverride` of the chosen backendRef, if any.
    pub model_override: Option<&'a str>,
}

/// Builds translators; implemented by `aigw-providers` for the whole matrix.
pub trait TranslatorFactory: Send + Sync {
    /// Returns a translator for the endpoint and backend, or a 422/404 error when the
    /// pair is not supported.
    fn translator(&self, spec: &TranslatorSpec<'_>) -> Result<Box<dyn Translator>>;
}
