//! OpenInference attributes of the audio endpoints (speech, transcription, translation)
//! and of rerank, as the upstream's recorders write them
//! (`internal/tracing/openinference/openai/{speech,transcription,translation}.go`,
//! `…/cohere/rerank.go`): a summary of the form or request as `input.value`, the text
//! (or the audio's size) as the output, reranker documents and scores.

use super::Outcome;
use super::attr::{Attrs, AttrsExt, REDACTED};
use super::config::OpenInferenceConfig;
use crate::api::Endpoint;
use bytes::Bytes;
use serde_json::{Value, json};

const JSON: &str = "application/json";
const TEXT: &str = "text/plain";
/// The largest text field read from a form.
const MAX_FIELD: u64 = 4096;

/// Whether this module records the endpoint's attributes.
pub(crate) const fn handles(endpoint: Endpoint) -> bool {
    matches!(
        endpoint,
        Endpoint::AudioSpeech
            | Endpoint::AudioTranscriptions
            | Endpoint::AudioTranslations
            | Endpoint::Rerank
    )
}

/// The fields of a transcription or translation form the span records (the audio
/// itself only by name and size).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Form {
    pub(crate) model: String,
    pub(crate) file_name: String,
    pub(crate) file_size: u64,
    pub(crate) language: String,
    pub(crate) response_format: String,
    /// The `stream` field is `true`: the answer is an SSE stream.
    pub(crate) stream: bool,
}

impl Form {
    /// Reads the form (`None` when it is not a readable `multipart/form-data` body);
    /// file contents are counted, not kept.
    pub(crate) fn read(content_type: Option<&str>, body: &Bytes) -> Option<Self> {
        use crate::api::multipart::{boundary, ready};
        let boundary = boundary(content_type).ok()?;
        let pieces = std::iter::once(Ok::<_, std::convert::Infallible>(body.clone()));
        let limits = multer::SizeLimit::new()
            .for_field("model", MAX_FIELD)
            .for_field("language", MAX_FIELD)
            .for_field("response_format", MAX_FIELD)
            .for_field("stream", MAX_FIELD);
        let mut form = multer::Multipart::with_constraints(
            futures_util::stream::iter(pieces),
            boundary,
            multer::Constraints::new().size_limit(limits),
        );
        let mut out = Self::default();
        while let Some(mut field) = ready(form.next_field()).ok()?.ok()? {
            let name = field.name().unwrap_or_default().to_owned();
            match name.as_str() {
                "model" | "language" | "response_format" | "stream" => {
                    let text = ready(field.text()).ok()?.ok()?;
                    match name.as_str() {
                        "model" => out.model = text,
                        "language" => out.language = text,
                        "response_format" => out.response_format = text,
                        _ => out.stream = text.trim().eq_ignore_ascii_case("true"),
                    }
                }
                _ => {
                    if name == "file" {
                        out.file_name = field.file_name().unwrap_or_default().to_owned();
                    }
                    while let Some(chunk) = ready(field.chunk()).ok()?.ok()? {
                        if name == "file" {
                            out.file_size += chunk.len() as u64;
                        }
                    }
                }
            }
        }
        Some(out)
    }
}

/// The request attributes.
pub(crate) fn request(c: &OpenInferenceConfig, o: &Outcome<'_>, a: &mut Attrs) {
    if o.endpoint == Endpoint::Rerank {
        return rerank_request(c, o, a);
    }
    a.str("openinference.span.kind", "LLM");
    a.str("llm.system", "openai");
    let empty = Value::Null;
    let req = o.request.unwrap_or(&empty);
    let model = match o.form {
        Some(f) => f.model.as_str(),
        None => req.get("model").and_then(Value::as_str).unwrap_or_default(),
    };
    if !model.is_empty() {
        a.str("llm.model_name", model);
    }
    if c.hide_inputs {
        a.str("input.value", REDACTED);
    } else {
        let summary = match (o.endpoint, o.form) {
            (Endpoint::AudioSpeech, _) => speech_summary(req),
            (Endpoint::AudioTranscriptions, Some(f)) => json!({
                "model": f.model, "file_name": f.file_name, "file_size": f.file_size,
                "language": f.language, "response_format": f.response_format,
            }),
            (_, Some(f)) => json!({
                "model": f.model, "file_name": f.file_name, "file_size": f.file_size,
                "response_format": f.response_format,
            }),
            (_, None) => Value::Null,
        };
        if summary.is_null() {
            a.str("input.value", REDACTED);
        } else {
            a.str("input.value", summary.to_string());
        }
        a.str("input.mime_type", JSON);
    }
    if o.endpoint == Endpoint::AudioSpeech && !c.hide_llm_invocation_parameters {
        a.str(
            "llm.invocation_parameters",
            String::from_utf8_lossy(o.request_raw),
        );
    }
}

/// Upstream marshals a map, so its keys come sorted; absent options are `null`.
fn speech_summary(req: &Value) -> Value {
    let field = |k: &str| req.get(k).cloned().unwrap_or(Value::Null);
    let text = |k: &str| json!(req.get(k).and_then(Value::as_str).unwrap_or_default());
    json!({
        "input": text("input"),
        "instructions": field("instructions"),
        "response_format": field("response_format"),
        "speed": field("speed"),
        "voice": text("voice"),
    })
}

fn rerank_request(c: &OpenInferenceConfig, o: &Outcome<'_>, a: &mut Attrs) {
    let empty = Value::Null;
    let req = o.request.unwrap_or(&empty);
    a.str("llm.system", "cohere");
    a.str("openinference.span.kind", "RERANKER");
    if let Some(m) = req
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
    {
        a.str("reranker.model_name", m);
    }
    if let Some(n) = req.get("top_n").and_then(Value::as_i64) {
        a.int("reranker.top_k", n);
    }
    if let Some(q) = req
        .get("query")
        .and_then(Value::as_str)
        .filter(|q| !q.is_empty())
    {
        a.str("reranker.query", q);
    }
    if c.hide_inputs {
        a.str("input.value", REDACTED);
        return;
    }
    a.str("input.value", String::from_utf8_lossy(o.request_raw));
    a.str("input.mime_type", JSON);
    let docs = req.get("documents").and_then(Value::as_array);
    for (i, d) in docs.into_iter().flatten().enumerate() {
        if let Some(d) = d.as_str().filter(|d| !d.is_empty()) {
            a.str(format!("reranker.input_documents.{i}.document.content"), d);
        }
    }
}

/// The attributes of a successful answer.
pub(crate) fn response(c: &OpenInferenceConfig, o: &Outcome<'_>, a: &mut Attrs) {
    match o.endpoint {
        Endpoint::Rerank => rerank_response(c, o, a),
        Endpoint::AudioSpeech => {
            // Audio is recorded by size; a streamed (SSE) answer records nothing, as
            // upstream's chunk recorder for speech is a no-op.
            let sse = o
                .request
                .and_then(|r| r.get("stream_format"))
                .and_then(Value::as_str)
                == Some("sse");
            if !c.hide_outputs && !sse {
                a.str("output.mime_type", "audio/mpeg");
                a.int(
                    "output.audio_bytes",
                    i64::try_from(o.response_bytes).unwrap_or(i64::MAX),
                );
            }
        }
        _ => transcript(c, o, a),
    }
}

/// Transcription and translation: the text, from a JSON answer's `text`, a plain-text
/// answer (`response_format=text`, `srt`, `vtt`) as is, or a stream's events.
fn transcript(c: &OpenInferenceConfig, o: &Outcome<'_>, a: &mut Attrs) {
    if c.hide_outputs || o.truncated {
        return;
    }
    if o.form.is_some_and(|f| f.stream) {
        let mut text = String::new();
        let mut done = false;
        for e in super::fold::sse_data(o.response_raw) {
            match e.get("type").and_then(Value::as_str) {
                Some("transcript.text.delta") if !done => {
                    text.push_str(e.get("delta").and_then(Value::as_str).unwrap_or_default());
                }
                Some("transcript.text.done") => {
                    if let Some(t) = e
                        .get("text")
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                    {
                        text = t.to_owned();
                        done = true;
                    }
                }
                _ => {}
            }
        }
        if !text.is_empty() {
            a.str("output.value", text);
            a.str("output.mime_type", TEXT);
        }
        return;
    }
    let parsed = serde_json::from_slice::<Value>(o.response_raw)
        .ok()
        .filter(Value::is_object);
    let Some(r) = parsed else {
        a.str("output.value", String::from_utf8_lossy(o.response_raw));
        a.str("output.mime_type", TEXT);
        return;
    };
    let text = r.get("text").and_then(Value::as_str).unwrap_or_default();
    a.str("output.value", text);
    a.str("output.mime_type", TEXT);
    if o.endpoint == Endpoint::AudioTranscriptions {
        if let Some(d) = r
            .get("duration")
            .and_then(Value::as_f64)
            .filter(|d| *d > 0.0)
        {
            a.f64("output.audio_duration", d);
        }
        if let Some(l) = r
            .get("language")
            .and_then(Value::as_str)
            .filter(|l| !l.is_empty())
        {
            a.str("output.language", l);
        }
    }
}

fn rerank_response(c: &OpenInferenceConfig, o: &Outcome<'_>, a: &mut Attrs) {
    let Some(r) = o.response else { return };
    if !c.hide_outputs {
        a.str("output.mime_type", JSON);
        let results = r.get("results").and_then(Value::as_array);
        for (i, res) in results.into_iter().flatten().enumerate() {
            let score = res
                .get("relevance_score")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            a.f64(
                format!("reranker.output_documents.{i}.document.score"),
                score,
            );
        }
    }
    // Token counts are metadata: recorded even with outputs hidden.
    let tokens = r.pointer("/meta/tokens");
    // Cohere writes token counts as numbers that may carry a fraction (`7.0`).
    let count = |k: &str| {
        let v = tokens?.get(k)?;
        v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
    };
    let (input, output) = (count("input_tokens"), count("output_tokens"));
    if let Some(i) = input {
        a.int("llm.token_count.prompt", i);
    }
    let total = input.unwrap_or(0) + output.unwrap_or(0);
    if total > 0 {
        a.int("llm.token_count.total", total);
    }
    let value = if c.hide_outputs {
        REDACTED.to_owned()
    } else {
        r.to_string()
    };
    a.str("output.value", value);
}
