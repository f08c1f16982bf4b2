//! Client-facing APIs: the endpoints the gateway serves, their wire types, and the
//! cheap request sniffer used on the hot path.

pub mod anthropic;
pub mod final_body;
pub mod multipart;
pub mod openai;
pub(crate) mod quotes;
mod request_scan;
pub mod responses;

use crate::error::{ClientApi, Error, Result};
use serde::Deserialize;
use std::borrow::Cow;

/// A client-facing endpoint the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `POST /v1/chat/completions` (OpenAI).
    ChatCompletions,
    /// `POST /v1/completions` (OpenAI legacy).
    Completions,
    /// `POST /v1/embeddings` (OpenAI).
    Embeddings,
    /// `GET /v1/models` (OpenAI list shape).
    Models,
    /// `POST /anthropic/v1/messages` and `POST /v1/messages` (Anthropic).
    Messages,
    /// `POST …/v1/messages/count_tokens` (Anthropic).
    CountTokens,
    /// `GET /anthropic/v1/models` (Anthropic list shape).
    AnthropicModels,
    /// `POST /v1/responses` (OpenAI Responses).
    Responses,
    /// `POST /v1/responses/input_tokens` (OpenAI Responses input token count).
    ResponsesInputTokens,
    /// `GET`/`DELETE /v1/responses/{id}`, `GET …/input_items`, `POST …/cancel` on a
    /// response a passthrough backend (OpenAI, Azure) holds, sent to that backend. Not
    /// matched by [`Endpoint::from_path`] (it depends on the method); adapters build it
    /// with [`crate::exchange::Exchange::stored_response`].
    ResponsesStored,
    /// `POST /v1/images/generations` (OpenAI Images).
    ImageGenerations,
    /// `POST /v1/images/edits` (OpenAI Images, multipart/form-data).
    ImageEdits,
    /// `POST /v1/audio/speech` (OpenAI text to speech: audio bytes, or SSE with
    /// `stream_format: "sse"`).
    AudioSpeech,
    /// `POST /v1/audio/transcriptions` (OpenAI, multipart/form-data).
    AudioTranscriptions,
    /// `POST /v1/audio/translations` (OpenAI, multipart/form-data).
    AudioTranslations,
    /// `POST /cohere/v2/rerank` (Cohere v2 rerank).
    Rerank,
    /// `POST /tokenize` (vLLM).
    Tokenize,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Self; 17] = [
        Self::ChatCompletions,
        Self::Completions,
        Self::Embeddings,
        Self::Models,
        Self::Messages,
        Self::CountTokens,
        Self::AnthropicModels,
        Self::Responses,
        Self::ResponsesInputTokens,
        Self::ResponsesStored,
        Self::ImageGenerations,
        Self::ImageEdits,
        Self::AudioSpeech,
        Self::AudioTranscriptions,
        Self::AudioTranslations,
        Self::Rerank,
        Self::Tokenize,
    ];

    /// Matches a request path (query string ignored) to an endpoint.
    ///
    /// ```
    /// use aigw_core::api::Endpoint;
    /// assert_eq!(Endpoint::from_path("/v1/chat/completions?x=1"), Some(Endpoint::ChatCompletions));
    /// assert_eq!(Endpoint::from_path("/anthropic/v1/messages"), Some(Endpoint::Messages));
    /// assert_eq!(Endpoint::from_path("/v1/messages"), Some(Endpoint::Messages));
    /// assert_eq!(Endpoint::from_path("/nope"), None);
    /// ```
    pub fn from_path(path: &str) -> Option<Self> {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let path = path.strip_suffix('/').unwrap_or(path);
        Some(match path {
            "/v1/chat/completions" => Self::ChatCompletions,
            "/v1/completions" => Self::Completions,
            "/v1/embeddings" => Self::Embeddings,
            "/v1/models" => Self::Models,
            "/v1/messages" | "/anthropic/v1/messages" => Self::Messages,
            "/v1/messages/count_tokens" | "/anthropic/v1/messages/count_tokens" => {
                Self::CountTokens
            }
            "/anthropic/v1/models" => Self::AnthropicModels,
            "/v1/responses" => Self::Responses,
            "/v1/responses/input_tokens" => Self::ResponsesInputTokens,
            "/v1/images/generations" => Self::ImageGenerations,
            "/v1/images/edits" => Self::ImageEdits,
            "/v1/audio/speech" => Self::AudioSpeech,
            "/v1/audio/transcriptions" => Self::AudioTranscriptions,
            "/v1/audio/translations" => Self::AudioTranslations,
            "/cohere/v2/rerank" => Self::Rerank,
            "/tokenize" => Self::Tokenize,
            _ => return None,
        })
    }

    /// The client API family, which decides the error envelope.
    pub const fn client_api(self) -> ClientApi {
        match self {
            Self::Messages | Self::CountTokens | Self::AnthropicModels => ClientApi::Anthropic,
            _ => ClientApi::OpenAI,
        }
    }

    /// The `gen_ai.operation.name` metric attribute for this endpoint.
    pub const fn operation_name(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat",
            Self::Completions => "completion",
            Self::Embeddings => "embeddings",
            Self::Models | Self::AnthropicModels => "models",
            Self::Messages => "messages",
            Self::CountTokens => "count_tokens",
            Self::Responses => "responses",
            Self::ResponsesInputTokens => "responses_input_tokens",
            Self::ResponsesStored => "responses_retrieve",
            Self::ImageGenerations => "image_generation",
            Self::ImageEdits => "image_edit",
            Self::AudioSpeech => "speech",
            Self::AudioTranscriptions => "transcription",
            Self::AudioTranslations => "translation",
            Self::Rerank => "rerank",
            Self::Tokenize => "tokenize",
        }
    }

    /// Whether the endpoint generates text billed per token (chat, completions,
    /// messages, responses): the ones a missing usage report is estimated for.
    pub const fn generates_text(self) -> bool {
        matches!(
            self,
            Self::ChatCompletions | Self::Completions | Self::Messages | Self::Responses
        )
    }

    /// Whether the request body is `multipart/form-data` (else JSON).
    pub const fn is_multipart(self) -> bool {
        matches!(
            self,
            Self::ImageEdits | Self::AudioTranscriptions | Self::AudioTranslations
        )
    }

    /// Whether the gateway streams the response to the client as it arrives even
    /// without a `stream` flag (audio bytes).
    const fn always_streamed(self) -> bool {
        matches!(self, Self::AudioSpeech)
    }

    /// Whether the endpoint is answered by the gateway itself, without an upstream.
    pub const fn is_local(self) -> bool {
        matches!(self, Self::Models | Self::AnthropicModels)
    }
}

/// Where the client-facing endpoints are mounted, as upstream's ExtProc flags set it:
/// a `rootPrefix` before everything, then a prefix per API family
/// (`endpointPrefixes`, default `openai:/,cohere:/cohere,anthropic:/anthropic`).
///
/// ```
/// use aigw_core::api::{Endpoint, EndpointPrefixes};
/// let p = EndpointPrefixes::parse("/ai", "openai:/oa,anthropic:/claude").unwrap();
/// assert_eq!(p.endpoint("/ai/oa/v1/chat/completions"), Some(Endpoint::ChatCompletions));
/// assert_eq!(p.endpoint("/ai/claude/v1/messages"), Some(Endpoint::Messages));
/// assert_eq!(p.endpoint("/ai/cohere/v2/rerank"), Some(Endpoint::Rerank));
/// assert_eq!(p.endpoint("/v1/chat/completions"), None);
/// assert_eq!(EndpointPrefixes::default().endpoint("/v1/models"), Some(Endpoint::Models));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPrefixes {
    root: String,
    openai: String,
    cohere: String,
    anthropic: String,
}

impl Default for EndpointPrefixes {
    fn default() -> Self {
        Self {
            root: String::new(),
            openai: String::new(),
            cohere: "/cohere".into(),
            anthropic: "/anthropic".into(),
        }
    }
}

/// `/x/` → `/x`, `/` → ``: a prefix as it is joined before a path.
fn norm_prefix(p: &str) -> String {
    let t = p.trim().trim_end_matches('/');
    if t.is_empty() {
        String::new()
    } else if t.starts_with('/') {
        t.to_owned()
    } else {
        format!("/{t}")
    }
}

impl EndpointPrefixes {
    /// Parses a root prefix and a comma-separated `family:prefix` list (families
    /// `openai`, `cohere`, `anthropic`; unnamed ones keep their defaults). An unknown
    /// family or an empty value is an error naming it.
    pub fn parse(root: &str, list: &str) -> Result<Self> {
        let mut p = Self {
            root: norm_prefix(root),
            ..Self::default()
        };
        for pair in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once(':').ok_or_else(|| {
                Error::bad_request(format!("endpoint prefix {pair:?}: expected family:prefix"))
            })?;
            if v.trim().is_empty() {
                return Err(Error::bad_request(format!(
                    "endpoint prefix {pair:?}: empty prefix"
                )));
            }
            let slot = match k.trim() {
                "openai" => &mut p.openai,
                "cohere" => &mut p.cohere,
                "anthropic" => &mut p.anthropic,
                other => {
                    return Err(Error::bad_request(format!(
                        "endpoint prefix family {other:?}: expected openai, cohere or anthropic"
                    )));
                }
            };
            *slot = norm_prefix(v);
        }
        Ok(p)
    }

    /// The request path (query kept) in the gateway's default layout, or `None` when it
    /// is outside the root prefix.
    pub fn canonical<'a>(&self, path: &'a str) -> Option<Cow<'a, str>> {
        if self.root.is_empty()
            && self.openai.is_empty()
            && self.cohere == "/cohere"
            && self.anthropic == "/anthropic"
        {
            return Some(Cow::Borrowed(path));
        }
        let rest = strip(path, &self.root)?;
        let mut families = [
            (&self.anthropic, "/anthropic"),
            (&self.cohere, "/cohere"),
            (&self.openai, ""),
        ];
        // The longest prefix wins (`/` for OpenAI under `/anthropic`).
        families.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        families
            .iter()
            .find_map(|(prefix, canon)| strip(rest, prefix).map(|r| format!("{canon}{r}")))
            .map(Cow::Owned)
    }

    /// The endpoint a request path names under these prefixes.
    pub fn endpoint(&self, path: &str) -> Option<Endpoint> {
        Endpoint::from_path(&self.canonical(path)?)
    }
}

/// `path` without `prefix` (`""` strips nothing), if it lies under it.
fn strip<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        return Some(path);
    }
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')).then_some(rest)
}

/// What the gateway needs to know about a request before routing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// The `model` field of the body.
    pub model: String,
    /// Whether the client asked for a streamed response.
    pub stream: bool,
    /// Whether the client asked for usage in the stream (`stream_options.include_usage`).
    pub include_usage: bool,
    /// The completion budget the request names (`max_completion_tokens`, else
    /// `max_tokens`), when it is a non-negative integer; read in the same pass so the
    /// token estimate needs no second parse.
    pub max_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Sniff<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<SniffStreamOptions>,
    // Any JSON is accepted here: a budget the estimate cannot use is not a reason to
    // refuse the request (the backend judges it).
    #[serde(default)]
    max_tokens: Option<serde_json::Value>,
    #[serde(default)]
    max_completion_tokens: Option<serde_json::Value>,
    #[serde(default)]
    max_output_tokens: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct SniffStreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// [`sniff`] for any endpoint: a multipart form's fields ([`multipart::sniff`], with the
/// request's `content-type`) or a JSON body.
pub fn sniff_request(
    endpoint: Endpoint,
    content_type: Option<&str>,
    body: &bytes::Bytes,
) -> Result<RequestInfo> {
    if !endpoint.is_multipart() {
        return sniff(endpoint, body);
    }
    let form = multipart::sniff(content_type, body)?;
    let model = form.model.filter(|m| !m.is_empty()).ok_or_else(|| {
        Error::bad_request("the form has no `model` field; it is required to route the request")
    })?;
    Ok(RequestInfo {
        model,
        stream: form.stream,
        include_usage: false,
        max_tokens: None,
    })
}

/// Extracts model and stream flags from a request body without building a DOM.
///
/// Unknown fields are skipped, but the whole body must be valid JSON: a malformed body
/// is a 400 here, before any routing or upstream work. A strict walk reads the usual
/// body; serde decides whenever the walk is not sure (and words every error).
///
/// ```
/// use aigw_core::api::{sniff, Endpoint};
/// let info = sniff(Endpoint::ChatCompletions, br#"{"model":"gpt-4o","stream":true,"messages":[]}"#).unwrap();
/// assert_eq!(info.model, "gpt-4o");
/// assert!(info.stream);
/// ```
pub fn sniff(endpoint: Endpoint, body: &[u8]) -> Result<RequestInfo> {
    let fields = match request_scan::scan(body) {
        Some(f) => f.into(),
        None => sniff_serde(body)?,
    };
    info(endpoint, fields)
}

/// What [`sniff`] reads, by either path.
#[derive(Debug, PartialEq, Eq)]
struct SniffFields<'a> {
    model: Option<Cow<'a, str>>,
    stream: Option<bool>,
    include_usage: Option<bool>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
}

impl<'a> From<request_scan::Fields<'a>> for SniffFields<'a> {
    fn from(f: request_scan::Fields<'a>) -> Self {
        Self {
            model: f.model.map(Cow::Borrowed),
            stream: f.stream,
            include_usage: f.include_usage,
            max_tokens: f.max_tokens,
            max_completion_tokens: f.max_completion_tokens,
            max_output_tokens: f.max_output_tokens,
        }
    }
}

/// The serde parse: the definition [`request_scan::scan`] agrees with.
fn sniff_serde(body: &[u8]) -> Result<SniffFields<'_>> {
    let s: Sniff<'_> = serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("malformed JSON request body: {e}")))?;
    let n = |v: Option<serde_json::Value>| v.as_ref().and_then(serde_json::Value::as_u64);
    Ok(SniffFields {
        model: s.model,
        stream: s.stream,
        include_usage: s.stream_options.and_then(|o| o.include_usage),
        max_tokens: n(s.max_tokens),
        max_completion_tokens: n(s.max_completion_tokens),
        max_output_tokens: n(s.max_output_tokens),
    })
}

fn info(endpoint: Endpoint, s: SniffFields<'_>) -> Result<RequestInfo> {
    let model = match s.model {
        Some(m) if !m.is_empty() => m.into_owned(),
        _ => {
            return Err(Error::bad_request(
                "the request body has no `model` field; it is required to route the request",
            ));
        }
    };
    let stream = endpoint.always_streamed()
        || (matches!(
            endpoint,
            Endpoint::ChatCompletions
                | Endpoint::Completions
                | Endpoint::Messages
                | Endpoint::Responses
                | Endpoint::ImageGenerations
        ) && s.stream.unwrap_or(false));
    Ok(RequestInfo {
        model,
        stream,
        include_usage: s.include_usage.unwrap_or(false),
        max_tokens: s
            .max_completion_tokens
            .or(s.max_tokens)
            .or(s.max_output_tokens),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_as_upstream() {
        let d = EndpointPrefixes::default();
        assert_eq!(
            d.endpoint("/anthropic/v1/messages"),
            Some(Endpoint::Messages)
        );
        assert_eq!(d.endpoint("/cohere/v2/rerank"), Some(Endpoint::Rerank));
        assert_eq!(d.endpoint("/tokenize"), Some(Endpoint::Tokenize));
        let p = EndpointPrefixes::parse("/ai/", "openai:/,cohere:/rr,anthropic:/claude").unwrap();
        assert_eq!(
            p.endpoint("/ai/v1/chat/completions?x=1"),
            Some(Endpoint::ChatCompletions)
        );
        assert_eq!(
            p.endpoint("/ai/claude/v1/models"),
            Some(Endpoint::AnthropicModels)
        );
        assert_eq!(p.endpoint("/ai/rr/v2/rerank"), Some(Endpoint::Rerank));
        assert_eq!(
            p.endpoint("/aix/v1/chat/completions"),
            None,
            "not under the root"
        );
        assert_eq!(p.endpoint("/v1/chat/completions"), None);
        assert_eq!(
            p.canonical("/ai/v1/responses/r1/input_items?limit=2")
                .as_deref(),
            Some("/v1/responses/r1/input_items?limit=2")
        );
        for bad in ["openai", "grok:/g", "openai:"] {
            assert!(EndpointPrefixes::parse("/", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_json_is_bad_request() {
        let e = sniff(Endpoint::ChatCompletions, b"{\"model\":").unwrap_err();
        assert_eq!(e.status(), http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn missing_model_is_bad_request() {
        let e = sniff(Endpoint::ChatCompletions, b"{\"messages\":[]}").unwrap_err();
        assert!(e.to_string().contains("model"));
    }

    #[test]
    fn budget_is_read_in_the_same_pass_and_never_refuses() {
        let i = sniff(
            Endpoint::ChatCompletions,
            br#"{"model":"m","max_tokens":100,"max_completion_tokens":50}"#,
        )
        .unwrap();
        assert_eq!(i.max_tokens, Some(50));
        let i = sniff(Endpoint::Messages, br#"{"model":"m","max_tokens":64}"#).unwrap();
        assert_eq!(i.max_tokens, Some(64));
        for odd in [
            r#""max_tokens":1.5"#,
            r#""max_tokens":-3"#,
            r#""max_tokens":"9""#,
            r#""max_tokens":null"#,
        ] {
            let body = format!(r#"{{"model":"m",{odd}}}"#);
            let i = sniff(Endpoint::ChatCompletions, body.as_bytes()).unwrap();
            assert_eq!(i.max_tokens, None, "{odd}");
        }
    }

    #[test]
    fn escaped_model_is_decoded() {
        let i = sniff(Endpoint::Messages, br#"{"model":"a\/b","stream":true}"#).unwrap();
        assert_eq!(i.model, "a/b");
        assert!(i.stream);
    }
}
