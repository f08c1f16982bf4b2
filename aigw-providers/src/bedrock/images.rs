//! OpenAI `/v1/images/generations` → Bedrock InvokeModel image models.
//!
//! * Amazon Titan Image Generator (`amazon.titan-image-generator-*`) and Nova Canvas
//!   (`amazon.nova-canvas-*`) share one body: `{"taskType":"TEXT_IMAGE",
//!   "textToImageParams":{"text","negativeText"},"imageGenerationConfig":{"numberOfImages",
//!   "width","height","quality","seed"}}` → `{"images":["<base64>"],"error":null}`.
//! * Stability AI (`stability.*`: SD3.5 Large, Stable Image Core / Ultra):
//!   `{"prompt","mode":"text-to-image","aspect_ratio","output_format","seed",
//!   "negative_prompt"}` → `{"seeds":[…],"finish_reasons":[null],"images":["<base64>"]}`,
//!   one image per call.

use super::normalize_error;
use super::request::{BACKEND, encode_model_id};
use crate::canonical::media::{
    Buffered, ImageRequest, JsonCodec, aspect_ratio, image_response, parse_image_request,
};
use aigw_core::{
    ClientApi, DroppedField, Error, ErrorResponse, RequestContext, Result, TokenUsage, Translator,
};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

/// The Stability aspect ratios Bedrock documents.
const STABILITY_RATIOS: [&str; 9] = [
    "16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// Titan Image Generator and Nova Canvas.
    Amazon,
    Stability,
}

/// OpenAI image generation → Bedrock InvokeModel.
pub fn translator(model_override: Option<&str>) -> Box<dyn Translator> {
    Box::new(Buffered::new(ImagesCodec {
        model_override: model_override.map(str::to_owned),
        model: String::new(),
        family: Family::Amazon,
        output_format: None,
        dropped: Vec::new(),
    }))
}

#[derive(Debug)]
struct ImagesCodec {
    model_override: Option<String>,
    model: String,
    family: Family,
    output_format: Option<String>,
    dropped: Vec<DroppedField>,
}

fn family(model: &str) -> Result<Family> {
    if model.contains("titan-image") || model.contains("nova-canvas") {
        Ok(Family::Amazon)
    } else if model.contains("stability.") {
        Ok(Family::Stability)
    } else {
        Err(Error::untranslatable(
            "model",
            BACKEND,
            format!(
                "{model:?} is not a Bedrock image model (amazon.titan-image-generator-*, amazon.nova-canvas-*, stability.*)"
            ),
        ))
    }
}

fn amazon_body(r: &ImageRequest) -> Result<Value> {
    if r.output_format.as_deref().is_some_and(|f| f != "png") {
        return Err(Error::untranslatable(
            "output_format",
            BACKEND,
            "Titan and Nova Canvas return PNG images",
        ));
    }
    let mut params = json!({"text": r.prompt});
    if let Some(n) = r.vendor.get("negative_prompt") {
        params["negativeText"] = n.clone();
    }
    let mut config = json!({"numberOfImages": r.n});
    if let Some((w, h)) = r.size {
        config["width"] = w.into();
        config["height"] = h.into();
    }
    if let Some(q) = &r.quality {
        config["quality"] = match q.as_str() {
            "hd" | "high" => "premium",
            "standard" | "medium" | "low" => "standard",
            other => {
                return Err(Error::untranslatable(
                    "quality",
                    BACKEND,
                    format!("{other:?} has no Titan/Nova Canvas quality"),
                ));
            }
        }
        .into();
    }
    if let Some(s) = r.vendor.get("seed") {
        config["seed"] = s.clone();
    }
    Ok(json!({
        "taskType": "TEXT_IMAGE",
        "textToImageParams": params,
        "imageGenerationConfig": config,
    }))
}

fn stability_body(r: &ImageRequest) -> Result<Value> {
    if r.n != 1 {
        return Err(Error::untranslatable(
            "n",
            BACKEND,
            "Stability models on Bedrock generate one image per request",
        ));
    }
    if r.quality.is_some() {
        return Err(Error::untranslatable(
            "quality",
            BACKEND,
            "Stability models have no quality setting; pick the model instead",
        ));
    }
    let mut b = json!({"prompt": r.prompt, "mode": "text-to-image"});
    if let Some((w, h)) = r.size {
        let ratio = aspect_ratio(w, h);
        if !STABILITY_RATIOS.contains(&ratio.as_str()) {
            return Err(Error::untranslatable(
                "size",
                BACKEND,
                format!(
                    "aspect ratio {ratio} is not one Stability offers ({})",
                    STABILITY_RATIOS.join(", ")
                ),
            ));
        }
        b["aspect_ratio"] = ratio.into();
    }
    if let Some(f) = &r.output_format {
        b["output_format"] = f.as_str().into();
    }
    if let Some(n) = r.vendor.get("negative_prompt") {
        b["negative_prompt"] = n.clone();
    }
    if let Some(s) = r.vendor.get("seed") {
        b["seed"] = s.clone();
    }
    Ok(b)
}

#[derive(Deserialize)]
struct ImagesResponse {
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    finish_reasons: Vec<Option<String>>,
}

impl JsonCodec for ImagesCodec {
    fn request(&mut self, req: &RequestContext<'_>) -> Result<(String, Value)> {
        let (r, dropped) = parse_image_request(req.body, self.model_override.as_deref(), BACKEND)?;
        self.dropped = dropped;
        self.family = family(&r.model)?;
        let body = match self.family {
            Family::Amazon => amazon_body(&r)?,
            Family::Stability => stability_body(&r)?,
        };
        self.output_format = Some(r.output_format.clone().unwrap_or_else(|| "png".into()));
        self.model = r.model;
        Ok((
            format!("/model/{}/invoke", encode_model_id(&self.model)),
            body,
        ))
    }

    fn response(&mut self, _headers: &HeaderMap, body: &[u8]) -> Result<(Vec<u8>, TokenUsage)> {
        let r: ImagesResponse = serde_json::from_slice(body)
            .map_err(|e| Error::malformed_upstream(format!("Bedrock image response: {e}")))?;
        if let Some(e) = r.error.filter(|e| !e.is_empty()) {
            return Err(Error::malformed_upstream(format!(
                "Bedrock image model: {e}"
            )));
        }
        // Stability reports a content filter per image instead of an error status.
        if let Some(reason) = r.finish_reasons.iter().flatten().next() {
            return Err(Error::malformed_upstream(format!(
                "Bedrock image model did not return the image: {reason}"
            )));
        }
        let images: Vec<(String, Option<String>)> =
            r.images.into_iter().map(|b| (b, None)).collect();
        let out = image_response(super::now_secs(), &images, self.output_format.as_deref());
        // Image models bill per image: the count is the usage.
        let usage = TokenUsage {
            images: Some(images.len() as u64),
            ..TokenUsage::default()
        };
        Ok((out, usage))
    }

    fn error(&mut self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ErrorResponse {
        normalize_error(ClientApi::OpenAI, status, headers, body)
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn dropped(&self) -> &[DroppedField] {
        &self.dropped
    }
}
