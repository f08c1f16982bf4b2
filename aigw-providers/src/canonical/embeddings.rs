//! OpenAI `/v1/embeddings` requests parsed once, and the OpenAI response written from
//! whatever vectors a backend returned.

use aigw_core::{Error, Result, TokenUsage};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

/// An OpenAI embeddings request.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsRequest {
    /// The model (after override).
    pub model: String,
    /// The input texts.
    pub inputs: Vec<String>,
    /// Requested output dimensions.
    pub dimensions: Option<u64>,
    /// `base64` instead of float arrays.
    pub base64: bool,
    /// Vertex extension: `task_type`.
    pub task_type: Option<String>,
    /// Vertex extension: `title`.
    pub title: Option<String>,
    /// Vertex extension: `auto_truncate`.
    pub auto_truncate: Option<bool>,
}

#[derive(Deserialize)]
struct Raw {
    model: String,
    input: Value,
    #[serde(default)]
    dimensions: Option<u64>,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    task_type: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    auto_truncate: Option<bool>,
}

/// Parses the request. Token-id inputs are a 422: these backends take text only.
pub fn parse(body: &[u8], backend: &str) -> Result<EmbeddingsRequest> {
    let raw: Raw = serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("invalid embeddings request: {e}")))?;
    let token_ids =
        || Error::untranslatable("input", backend, "the backend embeds text, not token ids");
    let inputs = match raw.input {
        Value::String(s) => vec![s],
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) => out.push(s),
                    _ => return Err(token_ids()),
                }
            }
            out
        }
        _ => {
            return Err(Error::bad_request(
                "input must be a string or an array of strings",
            ));
        }
    };
    if inputs.is_empty() {
        return Err(Error::bad_request("input must not be empty"));
    }
    let base64 = match raw.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(Error::bad_request(format!(
                "encoding_format {other:?} is not float or base64"
            )));
        }
    };
    Ok(EmbeddingsRequest {
        model: raw.model,
        inputs,
        dimensions: raw.dimensions,
        base64,
        task_type: raw.task_type,
        title: raw.title,
        auto_truncate: raw.auto_truncate,
    })
}

/// Writes an OpenAI embeddings response.
pub fn openai_response(
    model: &str,
    vectors: &[Vec<f64>],
    base64: bool,
    usage: &TokenUsage,
) -> Vec<u8> {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 {
                // OpenAI's base64 format is little-endian f32.
                let mut bytes = Vec::with_capacity(v.len() * 4);
                for x in v {
                    #[allow(clippy::cast_possible_truncation)]
                    bytes.extend_from_slice(&(*x as f32).to_le_bytes());
                }
                Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let input = usage.input.unwrap_or(0);
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": input, "total_tokens": usage.total_or_sum().unwrap_or(input)},
    })
    .to_string()
    .into_bytes()
}
