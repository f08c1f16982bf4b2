//! OpenAI `/v1/images/generations` → Imagen on Vertex AI
//! (`/publishers/google/models/{model}:predict`).
//!
//! `{"instances":[{"prompt"}],"parameters":{"sampleCount","aspectRatio",
//! "sampleImageSize","outputOptions":{"mimeType"},"negativePrompt","seed"}}` →
//! `{"predictions":[{"bytesBase64Encoded","mimeType","prompt"}]}` (`prompt` is the
//! enhanced prompt when Imagen rewrote it: OpenAI's `revised_prompt`). A prediction the
//! safety filter removed is simply absent (`raiFilteredReason` without bytes).

use super::{normalize_error, request::BACKEND};
use crate::canonical::media::{
    Buffered, ImageRequest, JsonCodec, aspect_ratio, image_response, parse_image_request,
};
use aigw_core::{
    ClientApi, DroppedField, Error, ErrorResponse, RequestContext, Result, TokenUsage, Translator,
};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

/// The aspect ratios Imagen offers.
const RATIOS: [&str; 5] = ["1:1", "3:4", "4:3", "9:16", "16:9"];

/// Imagen's documented output sizes: (width, height, aspect ratio, sampleImageSize).
const SIZES: [(u32, u32, &str, &str); 10] = [
    (1024, 1024, "1:1", "1K"),
    (896, 1280, "3:4", "1K"),
    (1280, 896, "4:3", "1K"),
    (768, 1408, "9:16", "1K"),
    (1408, 768, "16:9", "1K"),
    (2048, 2048, "1:1", "2K"),
    (1792, 2560, "3:4", "2K"),
    (2560, 1792, "4:3", "2K"),
    (1536, 2816, "9:16", "2K"),
    (2816, 1536, "16:9", "2K"),
];

/// OpenAI image generation → Imagen `:predict`.
pub fn translator(model_override: Option<&str>) -> Box<dyn Translator> {
    Box::new(Buffered::new(ImagenCodec {
        model_override: model_override.map(str::to_owned),
        model: String::new(),
        output_format: None,
        dropped: Vec::new(),
    }))
}

#[derive(Debug)]
struct ImagenCodec {
    model_override: Option<String>,
    model: String,
    output_format: Option<String>,
    dropped: Vec<DroppedField>,
}

/// The `aspectRatio` and `sampleImageSize` for an OpenAI `size`.
fn imagen_size(w: u32, h: u32) -> Result<(String, Option<&'static str>)> {
    if let Some((_, _, ratio, size)) = SIZES.iter().find(|(sw, sh, _, _)| (*sw, *sh) == (w, h)) {
        return Ok(((*ratio).to_owned(), (*size != "1K").then_some(*size)));
    }
    let ratio = aspect_ratio(w, h);
    if RATIOS.contains(&ratio.as_str()) {
        return Ok((ratio, None));
    }
    Err(Error::untranslatable(
        "size",
        BACKEND,
        format!(
            "{w}x{h} is not an Imagen aspect ratio ({}) or output size (e.g. 1408x768)",
            RATIOS.join(", ")
        ),
    ))
}

fn body(r: &ImageRequest) -> Result<Value> {
    if r.quality.is_some() {
        return Err(Error::untranslatable(
            "quality",
            BACKEND,
            "Imagen has no quality setting; pick the model (fast, standard, ultra) instead",
        ));
    }
    let mut p = json!({"sampleCount": r.n});
    if let Some((w, h)) = r.size {
        let (ratio, size) = imagen_size(w, h)?;
        p["aspectRatio"] = ratio.into();
        if let Some(s) = size {
            p["sampleImageSize"] = s.into();
        }
    }
    match r.output_format.as_deref() {
        None => {}
        Some("png") => p["outputOptions"] = json!({"mimeType": "image/png"}),
        Some("jpeg") => p["outputOptions"] = json!({"mimeType": "image/jpeg"}),
        Some(other) => {
            return Err(Error::untranslatable(
                "output_format",
                BACKEND,
                format!("Imagen returns png or jpeg, not {other:?}"),
            ));
        }
    }
    if let Some(n) = r.vendor.get("negative_prompt") {
        p["negativePrompt"] = n.clone();
    }
    if let Some(s) = r.vendor.get("seed") {
        // Imagen honours a seed only without its invisible watermark.
        p["seed"] = s.clone();
        p["addWatermark"] = false.into();
    }
    Ok(json!({"instances": [{"prompt": r.prompt}], "parameters": p}))
}

#[derive(Deserialize)]
struct PredictResponse {
    #[serde(default)]
    predictions: Vec<Prediction>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Prediction {
    #[serde(default)]
    bytes_base64_encoded: Option<String>,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    rai_filtered_reason: Option<String>,
}

impl JsonCodec for ImagenCodec {
    fn request(&mut self, req: &RequestContext<'_>) -> Result<(String, Value)> {
        let (r, dropped) = parse_image_request(req.body, self.model_override.as_deref(), BACKEND)?;
        self.dropped = dropped;
        let body = body(&r)?;
        self.output_format = r.output_format.clone();
        self.model = r.model;
        Ok((
            format!("/publishers/google/models/{}:predict", self.model),
            body,
        ))
    }

    fn response(&mut self, _headers: &HeaderMap, body: &[u8]) -> Result<(Vec<u8>, TokenUsage)> {
        let r: PredictResponse = serde_json::from_slice(body)
            .map_err(|e| Error::malformed_upstream(format!("Imagen response: {e}")))?;
        let mut format = self.output_format.clone();
        let mut images = Vec::new();
        let mut filtered = None;
        for p in r.predictions {
            match p.bytes_base64_encoded {
                Some(b) => {
                    if format.is_none() {
                        format = p
                            .mime_type
                            .as_deref()
                            .and_then(|m| m.strip_prefix("image/"))
                            .map(str::to_owned);
                    }
                    images.push((b, p.prompt));
                }
                None => filtered = filtered.or(p.rai_filtered_reason),
            }
        }
        if images.is_empty() {
            // Every image was withheld: say why rather than answer an empty list.
            return Err(Error::malformed_upstream(format!(
                "Imagen returned no image: {}",
                filtered.as_deref().unwrap_or("no predictions")
            )));
        }
        let out = image_response(crate::bedrock::now_secs(), &images, format.as_deref());
        // Image models bill per image: the count is the usage.
        let usage = TokenUsage {
            images: Some(images.len() as u64),
            ..TokenUsage::default()
        };
        Ok((out, usage))
    }

    fn error(&mut self, status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> ErrorResponse {
        normalize_error(ClientApi::OpenAI, status, body)
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn dropped(&self) -> &[DroppedField] {
        &self.dropped
    }
}
