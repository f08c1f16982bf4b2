//! The client side of the translated media cells: OpenAI image generation and Cohere v2
//! rerank requests parsed once, their responses rendered once, whichever backend
//! (Bedrock InvokeModel / Agent Runtime, Vertex AI Imagen / Ranking API) answers.
//!
//! Also [`Buffered`]: these backends answer one JSON document, so every translator here
//! collects the body, converts it whole and reports the usage it read.

use aigw_core::{
    BodyChange, ErrorResponse, HeaderMutation, RequestContext, ResponseChunk, Result, TokenUsage,
    Translator, UpstreamRequest,
};
use aigw_core::{DroppedField, Error};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The request side and the whole-body response side of a buffered JSON translation.
pub(crate) trait JsonCodec: Send {
    /// The upstream path and body for the client's request.
    fn request(&mut self, req: &RequestContext<'_>) -> Result<(String, Value)>;
    /// The client's body for the upstream's whole response body, with its usage.
    fn response(&mut self, headers: &HeaderMap, body: &[u8]) -> Result<(Vec<u8>, TokenUsage)>;
    /// The upstream error in the client's envelope.
    fn error(&mut self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ErrorResponse;
    /// The model the request named (after any override).
    fn model(&self) -> &str;
    /// Fields left out of the request.
    fn dropped(&self) -> &[DroppedField] {
        &[]
    }
}

/// A [`Translator`] over a [`JsonCodec`]: a JSON POST, the response collected whole.
#[derive(Debug)]
pub(crate) struct Buffered<C> {
    codec: C,
    headers: HeaderMap,
    buffered: Vec<u8>,
}

impl<C: JsonCodec> Buffered<C> {
    pub(crate) fn new(codec: C) -> Self {
        Self {
            codec,
            headers: HeaderMap::new(),
            buffered: Vec::new(),
        }
    }
}

impl<C: JsonCodec> Translator for Buffered<C> {
    fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
        let (path, body) = self.codec.request(req)?;
        let mut headers = HeaderMutation::default();
        headers.set_static("content-type", "application/json");
        headers.set_static("accept", "application/json");
        headers.remove(header::ACCEPT_ENCODING);
        Ok(UpstreamRequest {
            method: Method::POST,
            path,
            headers,
            body: BodyChange::Replaced(Bytes::from(body.to_string())),
        })
    }

    fn response_headers(
        &mut self,
        _status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<HeaderMutation> {
        self.headers = headers.clone();
        Ok(HeaderMutation::json_body())
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<ResponseChunk> {
        self.buffered.extend_from_slice(chunk);
        if !end_of_stream {
            return Ok(ResponseChunk {
                body: Some(Bytes::new()),
                ..ResponseChunk::default()
            });
        }
        let body = std::mem::take(&mut self.buffered);
        let (out, usage) = self.codec.response(&self.headers, &body)?;
        Ok(ResponseChunk {
            body: Some(Bytes::from(out)),
            usage,
            response_model: Some(self.codec.model().to_owned()),
        })
    }

    fn response_error(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ErrorResponse> {
        Ok(self.codec.error(status, headers, body))
    }

    fn dropped_fields(&self) -> &[DroppedField] {
        self.codec.dropped()
    }
}

/// An OpenAI `POST /v1/images/generations` request, as the translated backends see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageRequest {
    /// The model (after any override).
    pub model: String,
    /// The prompt.
    pub prompt: String,
    /// Number of images (`n`, default 1).
    pub n: u32,
    /// `size` as width and height, when given and not `auto`.
    pub size: Option<(u32, u32)>,
    /// `quality` when given and not `auto`.
    pub quality: Option<String>,
    /// `output_format` (`png`, `jpeg`, `webp`), when given.
    pub output_format: Option<String>,
    /// Vendor extension fields the backends document (`negative_prompt`, `seed`), kept
    /// as sent.
    pub vendor: Map<String, Value>,
}

#[derive(Deserialize)]
struct RawImageRequest {
    #[serde(default)]
    model: Option<String>,
    prompt: String,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    quality: Option<String>,
    #[serde(default)]
    response_format: Option<String>,
    #[serde(default)]
    output_format: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// The image fields every translated backend takes as vendor extensions.
const IMAGE_VENDOR_FIELDS: [&str; 2] = ["negative_prompt", "seed"];

/// Parses an OpenAI image generation request for `backend`. What the backend cannot
/// honour is a 422 naming the field.
pub fn parse_image_request(
    body: &[u8],
    model_override: Option<&str>,
    backend: &str,
) -> Result<(ImageRequest, Vec<DroppedField>)> {
    let raw: RawImageRequest = serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("invalid image generation request: {e}")))?;
    let model = model_override
        .map(str::to_owned)
        .or(raw.model)
        .ok_or_else(|| Error::bad_request("the request body has no `model`"))?;
    if raw
        .response_format
        .as_deref()
        .is_some_and(|f| f != "b64_json")
    {
        return Err(Error::untranslatable(
            "response_format",
            backend,
            "the backend returns image bytes, not URLs; use \"b64_json\"",
        ));
    }
    if raw.stream == Some(true) {
        return Err(Error::untranslatable(
            "stream",
            backend,
            "the backend does not stream partial images",
        ));
    }
    let size = match raw.size.as_deref() {
        None | Some("auto") => None,
        Some(s) => Some(parse_size(s)?),
    };
    let mut dropped = Vec::new();
    let mut vendor = Map::new();
    for (k, v) in raw.rest {
        match k.as_str() {
            k if IMAGE_VENDOR_FIELDS.contains(&k) => {
                vendor.insert(k.to_owned(), v);
            }
            "user" => dropped.push(DroppedField::new(
                "user",
                "an abuse-monitoring id with no counterpart",
            )),
            "moderation" if v == "auto" => {}
            "background" if v == "auto" => {}
            "style" | "background" | "moderation" | "output_compression" | "partial_images" => {
                return Err(Error::untranslatable(
                    k,
                    backend,
                    "the backend's image models have no such setting",
                ));
            }
            _ => {
                return Err(Error::untranslatable(
                    k,
                    backend,
                    "not an image generation field this backend can honour",
                ));
            }
        }
    }
    Ok((
        ImageRequest {
            model,
            prompt: raw.prompt,
            n: raw.n.unwrap_or(1),
            size,
            quality: raw.quality.filter(|q| q != "auto"),
            output_format: raw.output_format,
            vendor,
        },
        dropped,
    ))
}

fn parse_size(s: &str) -> Result<(u32, u32)> {
    s.split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .ok_or_else(|| Error::bad_request(format!("invalid `size` {s:?}: expected WIDTHxHEIGHT")))
}

/// `width:height` reduced to lowest terms (`1536x1024` → `3:2`).
pub fn aspect_ratio(w: u32, h: u32) -> String {
    let (mut a, mut b) = (w, h);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    let g = a.max(1);
    format!("{}:{}", w / g, h / g)
}

/// An OpenAI image generation response: `data[].b64_json` (and `revised_prompt`).
pub fn image_response(
    created: u64,
    images: &[(String, Option<String>)],
    output_format: Option<&str>,
) -> Vec<u8> {
    let data: Vec<Value> = images
        .iter()
        .map(|(b64, revised)| {
            let mut d = json!({"b64_json": b64});
            if let Some(r) = revised {
                d["revised_prompt"] = r.as_str().into();
            }
            d
        })
        .collect();
    let mut v = json!({"created": created, "data": data});
    if let Some(f) = output_format {
        v["output_format"] = f.into();
    }
    v.to_string().into_bytes()
}

/// A Cohere v2 `POST /v2/rerank` request.
#[derive(Debug, Clone, PartialEq)]
pub struct RerankRequest {
    /// The model (after any override).
    pub model: String,
    /// The query.
    pub query: String,
    /// The documents: strings, or objects (Cohere v1 `{"text": …}`, or structured
    /// records) kept as sent.
    pub documents: Vec<Value>,
    /// `top_n`.
    pub top_n: Option<u32>,
    /// `max_tokens_per_doc`.
    pub max_tokens_per_doc: Option<u32>,
}

#[derive(Deserialize)]
struct RawRerank {
    #[serde(default)]
    model: Option<String>,
    query: String,
    documents: Vec<Value>,
    #[serde(default)]
    top_n: Option<u32>,
    #[serde(default)]
    max_tokens_per_doc: Option<u32>,
    #[serde(default)]
    return_documents: Option<bool>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// Parses a Cohere rerank request for `backend`; fields it cannot honour are a 422.
pub fn parse_rerank(
    body: &[u8],
    model_override: Option<&str>,
    backend: &str,
) -> Result<RerankRequest> {
    let raw: RawRerank = serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("invalid rerank request: {e}")))?;
    let model = model_override
        .map(str::to_owned)
        .or(raw.model)
        .ok_or_else(|| Error::bad_request("the request body has no `model`"))?;
    if raw.return_documents == Some(true) {
        return Err(Error::untranslatable(
            "return_documents",
            backend,
            "results carry indices; look the documents up by `index`",
        ));
    }
    if let Some(k) = raw.rest.keys().next() {
        return Err(Error::untranslatable(
            k.as_str(),
            backend,
            "not a rerank field this backend can honour",
        ));
    }
    if raw.documents.is_empty() {
        return Err(Error::bad_request("`documents` is empty"));
    }
    Ok(RerankRequest {
        model,
        query: raw.query,
        documents: raw.documents,
        top_n: raw.top_n,
        max_tokens_per_doc: raw.max_tokens_per_doc,
    })
}

/// The text of a rerank document: the string, an object's `text`, or the object as
/// compact JSON (how Cohere v2 documents structured records: YAML-like text).
pub fn document_text(doc: &Value) -> String {
    match doc {
        Value::String(s) => s.clone(),
        Value::Object(m) => match m.get("text") {
            Some(Value::String(t)) if m.len() == 1 => t.clone(),
            _ => doc.to_string(),
        },
        other => other.to_string(),
    }
}

/// A Cohere v2 rerank response: results by descending relevance, and the search units
/// billed (one per call of up to 100 documents, as Cohere bills).
pub fn rerank_response(id: Option<&str>, results: &mut [(u64, f64)], documents: usize) -> Vec<u8> {
    results.sort_by(|a, b| b.1.total_cmp(&a.1));
    let results: Vec<Value> = results
        .iter()
        .map(|(i, s)| json!({"index": i, "relevance_score": s}))
        .collect();
    let mut v = json!({
        "results": results,
        "meta": {
            "api_version": {"version": "2"},
            "billed_units": {"search_units": search_units(documents)},
        },
    });
    if let Some(id) = id {
        v["id"] = id.into();
    }
    v.to_string().into_bytes()
}

/// Cohere's billing unit: a query with up to 100 documents.
pub fn search_units(documents: usize) -> u64 {
    documents.div_ceil(100).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aspect_ratios_reduce() {
        assert_eq!(aspect_ratio(1024, 1024), "1:1");
        assert_eq!(aspect_ratio(1536, 1024), "3:2");
        assert_eq!(aspect_ratio(1792, 1024), "7:4");
        assert_eq!(aspect_ratio(1024, 1792), "4:7");
    }

    #[test]
    fn documents_become_text() {
        assert_eq!(document_text(&json!("a")), "a");
        assert_eq!(document_text(&json!({"text": "b"})), "b");
        assert_eq!(
            document_text(&json!({"title": "t", "text": "b"})),
            r#"{"title":"t","text":"b"}"#
        );
    }

    #[test]
    fn unknown_fields_are_422() {
        let e = parse_rerank(
            br#"{"model":"m","query":"q","documents":["a"],"rank_fields":["x"]}"#,
            None,
            "B",
        )
        .unwrap_err();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let e = parse_image_request(br#"{"prompt":"p","model":"m","style":"vivid"}"#, None, "B")
            .unwrap_err();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
