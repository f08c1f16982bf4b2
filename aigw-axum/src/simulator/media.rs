//! Images, audio, rerank and tokenize in each provider's wire: OpenAI
//! (`/v1/images/generations`, `/v1/images/edits`, `/v1/audio/speech`,
//! `/v1/audio/transcriptions`, `/v1/audio/translations`), Azure OpenAI (the same under
//! `/openai/deployments/{deployment}/…`), Cohere (`/v2/rerank`) and vLLM (`/tokenize`).
//!
//! Forms are read with `multer`; an audio file must be a RIFF/WAVE file (or another
//! type declared by its part), as the providers reject what they cannot decode.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use super::errors::{self, Provider, json_response};
use super::reply::words;
use super::stream::{self, Framing};
use super::{CREATED, Shared, Sim, SimRequest, begin};

/// A 1×1 transparent PNG: what every simulated image is.
pub(crate) const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

/// Image tokens billed per generated image (OpenAI's low-quality square).
const IMAGE_TOKENS: u64 = 272;

/// One form part.
struct Part {
    name: String,
    content_type: Option<String>,
    data: Bytes,
}

async fn form(provider: Provider, req: &SimRequest) -> Result<Vec<Part>, Response> {
    let ct = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(ct)
        .map_err(|_| errors::bad_request(provider, "The request must be multipart/form-data."))?;
    let body = req.body.clone();
    let mut m = multer::Multipart::new(
        futures::stream::once(async move { Ok::<_, std::convert::Infallible>(body) }),
        boundary,
    );
    let mut parts = Vec::new();
    loop {
        match m.next_field().await {
            Ok(Some(f)) => {
                let name = f.name().unwrap_or_default().to_owned();
                let content_type = f.content_type().map(ToString::to_string);
                let data = f
                    .bytes()
                    .await
                    .map_err(|e| errors::bad_request(provider, &format!("Invalid form: {e}")))?;
                parts.push(Part {
                    name,
                    content_type,
                    data,
                });
            }
            Ok(None) => return Ok(parts),
            Err(e) => return Err(errors::bad_request(provider, &format!("Invalid form: {e}"))),
        }
    }
}

/// The provider's checks (scripted failure, credentials), then the form.
async fn checked_form(
    shared: &Shared,
    provider: Provider,
    req: &SimRequest,
) -> Result<Vec<Part>, Response> {
    begin(shared, provider, req).await?;
    form(provider, req).await
}

/// The provider's checks, then the JSON body.
async fn checked_json(
    shared: &Shared,
    provider: Provider,
    req: &SimRequest,
) -> Result<Value, Response> {
    begin(shared, provider, req).await?;
    req.json(provider)
}

fn text<'a>(parts: &'a [Part], name: &str) -> Option<&'a str> {
    parts
        .iter()
        .find(|p| p.name == name)
        .and_then(|p| std::str::from_utf8(&p.data).ok())
}

fn images(prompt: &str, n: u64, model: &str) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD.encode(PNG_1X1);
    let data: Vec<Value> = (0..n.max(1)).map(|_| json!({"b64_json": b64})).collect();
    let input = words(prompt).max(1);
    let output = IMAGE_TOKENS * n.max(1);
    json!({
        "created": CREATED, "data": data, "model": model,
        "usage": {"input_tokens": input, "output_tokens": output, "total_tokens": input + output,
                  "input_tokens_details": {"text_tokens": input, "image_tokens": 0}},
    })
}

async fn generations_inner(
    shared: &Shared,
    provider: Provider,
    dep: Option<&str>,
    req: SimRequest,
) -> Response {
    let body = match checked_json(shared, provider, &req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(prompt) = body.get("prompt").and_then(Value::as_str) else {
        return errors::bad_request(provider, "Missing required parameter: 'prompt'.");
    };
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .or(dep)
        .unwrap_or("dall-e-2");
    let n = body.get("n").and_then(Value::as_u64).unwrap_or(1);
    json_response(StatusCode::OK, &images(prompt, n, model))
}

async fn edits_inner(
    shared: &Shared,
    provider: Provider,
    dep: Option<&str>,
    req: SimRequest,
) -> Response {
    let parts = match checked_form(shared, provider, &req).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(prompt) = text(&parts, "prompt") else {
        return errors::bad_request(provider, "Missing required parameter: 'prompt'.");
    };
    if !parts
        .iter()
        .any(|p| p.name.starts_with("image") && p.data.starts_with(b"\x89PNG"))
    {
        return errors::bad_request(
            provider,
            "Invalid input image: expected a PNG file in 'image'.",
        );
    }
    let model = text(&parts, "model")
        .or(dep)
        .unwrap_or("dall-e-2")
        .to_owned();
    json_response(StatusCode::OK, &images(prompt, 1, &model))
}

async fn speech_inner(shared: &Shared, provider: Provider, req: SimRequest) -> Response {
    let script = match begin(shared, provider, &req).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let body = match req.json(provider) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (Some(input), Some(_voice)) = (
        body.get("input").and_then(Value::as_str),
        body.get("voice").and_then(Value::as_str),
    ) else {
        return errors::bad_request(
            provider,
            "Missing required parameters: 'input' and 'voice'.",
        );
    };
    // The "audio": a frame header then the input's bytes, a few chunks long.
    let mut audio = b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec();
    audio.extend_from_slice(input.as_bytes());
    let chunks: Vec<Bytes> = audio.chunks(16).map(Bytes::copy_from_slice).collect();
    if body.get("stream_format").and_then(Value::as_str) == Some("sse") {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut events: Vec<Bytes> = chunks
            .iter()
            .map(|c| sse(&json!({"type": "speech.audio.delta", "audio": b64.encode(c)})))
            .collect();
        let n = words(input).max(1);
        events.push(sse(&json!({"type": "speech.audio.done", "usage": {
            "input_tokens": n, "output_tokens": chunks.len(), "total_tokens": n + chunks.len() as u64}})));
        return stream::events(
            events,
            Framing::Sse,
            "text/event-stream",
            &script,
            req.reset,
        );
    }
    let ct = match body.get("response_format").and_then(Value::as_str) {
        Some("wav") => "audio/wav",
        Some("opus") => "audio/ogg",
        Some("aac") => "audio/aac",
        Some("flac") => "audio/flac",
        Some("pcm") => "audio/pcm",
        _ => "audio/mpeg",
    };
    let body = futures::stream::iter(chunks.into_iter().map(Ok::<_, std::convert::Infallible>));
    let mut r = Response::new(Body::from_stream(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

async fn audio_in_inner(
    shared: &Shared,
    provider: Provider,
    dep: Option<&str>,
    translation: bool,
    req: SimRequest,
) -> Response {
    let parts = match checked_form(shared, provider, &req).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(file) = parts.iter().find(|p| p.name == "file") else {
        return errors::bad_request(provider, "Missing required parameter: 'file'.");
    };
    let wav = file.data.len() > 12 && &file.data[..4] == b"RIFF" && &file.data[8..12] == b"WAVE";
    let declared_audio = file
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("audio/"));
    if !wav && !declared_audio {
        return errors::bad_request(
            provider,
            "Invalid file format. Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']",
        );
    }
    let Some(model) = text(&parts, "model").or(dep) else {
        return errors::bad_request(provider, "Missing required parameter: 'model'.");
    };
    let seconds = if wav && file.data.len() > 44 {
        // 16-bit mono at the header's sample rate.
        let rate =
            u32::from_le_bytes([file.data[24], file.data[25], file.data[26], file.data[27]]).max(1);
        (file.data.len() as f64 - 44.0) / (2.0 * f64::from(rate))
    } else {
        1.0
    };
    let text_out = if translation {
        format!("Simulated translation by {model} of {seconds:.1} seconds of audio.")
    } else {
        format!("Simulated transcription by {model} of {seconds:.1} seconds of audio.")
    };
    if text(&parts, "response_format") == Some("text") {
        let mut r = Response::new(Body::from(format!("{text_out}\n")));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return r;
    }
    let verbose = text(&parts, "response_format") == Some("verbose_json");
    let out = if translation || verbose {
        // whisper-1's verbose JSON: the audio's duration, segments.
        let mut v = json!({"text": text_out});
        if verbose {
            v = json!({"task": if translation { "translate" } else { "transcribe" },
                "language": "english", "duration": seconds, "text": text_out, "segments": []});
        }
        if !translation && model.starts_with("whisper") {
            v["usage"] = json!({"type": "duration", "seconds": seconds.ceil() as u64});
        }
        v
    } else if model.starts_with("whisper") {
        // Duration-billed, as OpenAI reports whisper-1.
        json!({"text": text_out, "usage": {"type": "duration", "seconds": seconds.ceil() as u64}})
    } else {
        let n = words(&text_out);
        let audio_tokens = (seconds * 10.0).ceil() as u64;
        json!({"text": text_out, "usage": {"type": "tokens", "input_tokens": audio_tokens,
            "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
            "output_tokens": n, "total_tokens": audio_tokens + n}})
    };
    json_response(StatusCode::OK, &out)
}

/// `POST /v1/images/generations`.
pub(crate) async fn generations(State(s): Sim, req: SimRequest) -> Response {
    generations_inner(&s, Provider::OpenAi, None, req).await
}

/// `POST /v1/images/edits`.
pub(crate) async fn edits(State(s): Sim, req: SimRequest) -> Response {
    edits_inner(&s, Provider::OpenAi, None, req).await
}

/// `POST /v1/audio/speech`.
pub(crate) async fn speech(State(s): Sim, req: SimRequest) -> Response {
    speech_inner(&s, Provider::OpenAi, req).await
}

/// `POST /v1/audio/transcriptions`.
pub(crate) async fn transcriptions(State(s): Sim, req: SimRequest) -> Response {
    audio_in_inner(&s, Provider::OpenAi, None, false, req).await
}

/// `POST /v1/audio/translations`.
pub(crate) async fn translations(State(s): Sim, req: SimRequest) -> Response {
    audio_in_inner(&s, Provider::OpenAi, None, true, req).await
}

/// `POST /openai/deployments/{deployment}/{images|audio}/{op}` (Azure OpenAI).
pub(crate) async fn azure(
    State(s): Sim,
    Path((deployment, kind, op)): Path<(String, String, String)>,
    req: SimRequest,
) -> Response {
    let p = Provider::Azure;
    let d = Some(deployment.as_str());
    match (kind.as_str(), op.as_str()) {
        ("images", "generations") => generations_inner(&s, p, d, req).await,
        ("images", "edits") => edits_inner(&s, p, d, req).await,
        ("audio", "speech") => speech_inner(&s, p, req).await,
        ("audio", "transcriptions") => audio_in_inner(&s, p, d, false, req).await,
        ("audio", "translations") => audio_in_inner(&s, p, d, true, req).await,
        _ => errors::error(p, StatusCode::NOT_FOUND, "Resource not found"),
    }
}

/// `POST /v2/rerank` (Cohere; also vLLM's Cohere-compatible route): documents scored
/// by shared words with the query, best first.
pub(crate) async fn rerank(State(s): Sim, req: SimRequest) -> Response {
    let p = Provider::OpenAi;
    let body = match checked_json(&s, p, &req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (Some(query), Some(docs)) = (
        body.get("query").and_then(Value::as_str),
        body.get("documents").and_then(Value::as_array),
    ) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"message": "invalid request: query and documents are required"}),
        );
    };
    let q: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    let mut scored: Vec<(usize, f64)> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let text = d
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| d.to_string())
                .to_lowercase();
            let hits = q.iter().filter(|w| text.contains(w.as_str())).count();
            (i, (hits as f64 + 1.0) / (q.len() as f64 + 2.0))
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let top = body
        .get("top_n")
        .and_then(Value::as_u64)
        .map_or(scored.len(), |n| n as usize);
    let results: Vec<Value> = scored
        .into_iter()
        .take(top)
        .map(|(index, score)| json!({"index": index, "relevance_score": score}))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"id": "sim-rerank-1", "results": results,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1},
                     "tokens": {"input_tokens": words(query) + docs.len() as u64}}}),
    )
}

/// `POST /tokenize` (vLLM): one token per word.
pub(crate) async fn tokenize(State(s): Sim, req: SimRequest) -> Response {
    let p = Provider::OpenAi;
    let body = match checked_json(&s, p, &req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let text = match (body.get("prompt"), body.get("messages")) {
        (Some(Value::String(t)), _) => t.clone(),
        (_, Some(Value::Array(m))) => m
            .iter()
            .filter_map(|m| m.get("content").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => return errors::bad_request(p, "Either 'prompt' or 'messages' is required."),
    };
    let n = words(&text);
    let tokens: Vec<u64> = (0..n).map(|i| 1000 + i).collect();
    json_response(
        StatusCode::OK,
        &json!({"count": n, "max_model_len": 32768, "tokens": tokens, "token_strs": null}),
    )
}
