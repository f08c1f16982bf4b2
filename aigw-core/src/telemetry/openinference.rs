//! The OpenInference convention (the upstream's default, read by Arize Phoenix and
//! Langfuse): span names, `openinference.span.kind`, `llm.*`, `input.*`, `output.*`,
//! `embedding.*`, with content captured unless an `OPENINFERENCE_HIDE_*` setting
//! replaces it with [`REDACTED`].

use super::Outcome;
use super::attr::{Attr, AttrValue, Attrs, AttrsExt, SpanEvent, SpanStatus};
use super::config::OpenInferenceConfig;
use crate::api::Endpoint;
use serde_json::Value;

pub use super::attr::REDACTED;
const JSON: &str = "application/json";

/// The span name of an endpoint.
pub(crate) const fn span_name(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::ChatCompletions => "ChatCompletion",
        Endpoint::Completions => "Completion",
        Endpoint::Embeddings => "CreateEmbeddings",
        Endpoint::Messages => "Message",
        Endpoint::CountTokens => "CountTokens",
        Endpoint::Responses | Endpoint::ResponsesStored => "Responses",
        Endpoint::ResponsesInputTokens => "ResponsesInputTokens",
        Endpoint::ImageGenerations | Endpoint::ImageEdits => "ImagesResponse",
        Endpoint::AudioSpeech => "AudioSpeech",
        Endpoint::AudioTranscriptions => "Transcription",
        Endpoint::AudioTranslations => "Translation",
        Endpoint::Rerank => "Rerank",
        Endpoint::Tokenize => "Tokenize",
        Endpoint::Models | Endpoint::AnthropicModels => "Models",
    }
}

/// The attributes, end events and status of a finished request.
pub(crate) fn finish(
    c: &OpenInferenceConfig,
    o: &Outcome<'_>,
) -> (Attrs, Vec<SpanEvent>, SpanStatus) {
    let mut a = Attrs::new();
    let mut events = Vec::new();
    let media = super::media::handles(o.endpoint);
    let counter = super::token_counter::handles(o.endpoint);
    if media {
        super::media::request(c, o, &mut a);
    } else if counter {
        super::token_counter::request(c, o, &mut a);
    } else {
        request(c, o, &mut a);
    }
    if let Some(code) = o.failed_status() {
        let msg = match o.error_body.filter(|b| !b.is_empty()) {
            Some(b) => format!("Error code: {code} - {b}"),
            None => format!("Error code: {code}"),
        };
        let mut ev = Attrs::new();
        ev.str("exception.type", error_type(code));
        ev.str("exception.message", msg.clone());
        events.push(SpanEvent {
            name: "exception".into(),
            time: std::time::SystemTime::now(),
            attrs: ev,
        });
        return (a, events, SpanStatus::Error(msg));
    }
    if media {
        super::media::response(c, o, &mut a);
        return (a, events, SpanStatus::Ok);
    }
    if counter {
        super::token_counter::response(c, o, &mut a);
        return (a, events, SpanStatus::Ok);
    }
    if let Some(resp) = o.response {
        response(c, o.endpoint, resp, &mut a);
        if o.endpoint != Endpoint::Responses {
            let v = if c.hide_outputs {
                REDACTED.to_owned()
            } else {
                resp.to_string()
            };
            a.str("output.value", v);
        }
    }
    (a, events, SpanStatus::Ok)
}

const fn is_image(e: Endpoint) -> bool {
    matches!(e, Endpoint::ImageGenerations | Endpoint::ImageEdits)
}

/// `exception.type` by status, as the upstream names them.
pub(crate) fn error_type(code: u16) -> &'static str {
    match code {
        400 => "BadRequestError",
        401 => "AuthenticationError",
        403 => "PermissionDeniedError",
        404 => "NotFoundError",
        429 => "RateLimitError",
        500 | 502 | 503 => "InternalServerError",
        _ => "Error",
    }
}

fn system(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Messages | Endpoint::CountTokens => "anthropic",
        Endpoint::Rerank => "cohere",
        _ => "openai",
    }
}

fn request(c: &OpenInferenceConfig, o: &Outcome<'_>, a: &mut Attrs) {
    let empty = Value::Null;
    let req = o.request.unwrap_or(&empty);
    let model = req.get("model").and_then(Value::as_str).unwrap_or_default();
    let kind = match o.endpoint {
        Endpoint::Embeddings => "EMBEDDING",
        Endpoint::CountTokens | Endpoint::ResponsesInputTokens | Endpoint::Tokenize => {
            "TOKEN_COUNTER"
        }
        _ => "LLM",
    };
    a.str("openinference.span.kind", kind);
    if o.endpoint != Endpoint::Embeddings {
        a.str("llm.system", system(o.endpoint));
        // Upstream's image recorder names no model (its expected
        // image-generation-basic span has none).
        if !model.is_empty() && !is_image(o.endpoint) {
            a.str("llm.model_name", model);
        }
    }
    if o.endpoint.is_multipart() {
        return;
    }
    if c.hide_inputs {
        a.str("input.value", REDACTED);
    } else {
        a.str("input.value", String::from_utf8_lossy(o.request_raw));
        a.str("input.mime_type", JSON);
    }
    match o.endpoint {
        Endpoint::ChatCompletions => {
            invocation(
                c,
                req,
                &["messages", "tools"],
                "llm.invocation_parameters",
                a,
            );
            chat_messages(c, req, a);
            tools(req, a);
        }
        Endpoint::Messages => {
            invocation(
                c,
                req,
                &["messages", "tools"],
                "llm.invocation_parameters",
                a,
            );
            anthropic_messages(c, req, a);
            tools(req, a);
        }
        Endpoint::Completions => {
            invocation(c, req, &["prompt"], "llm.invocation_parameters", a);
            if !c.hide_inputs && !c.hide_prompts {
                for (i, t) in strings(req.get("prompt")).into_iter().enumerate() {
                    a.str(format!("llm.prompts.{i}.prompt.text"), t);
                }
            }
        }
        Endpoint::Embeddings => embeddings_request(c, req, a),
        // The whole request, as upstream's image recorder writes it.
        Endpoint::ImageGenerations if !c.hide_llm_invocation_parameters => {
            a.str(
                "llm.invocation_parameters",
                String::from_utf8_lossy(o.request_raw),
            );
        }
        Endpoint::Responses => {
            invocation(
                c,
                req,
                &["input", "tools", "instructions"],
                "llm.invocation_parameters",
                a,
            );
            responses_messages(c, req, a);
            tools(req, a);
        }
        _ => {}
    }
}

/// The request without its content fields, as `*.invocation_parameters`.
fn invocation(
    c: &OpenInferenceConfig,
    req: &Value,
    drop: &[&str],
    key: &'static str,
    a: &mut Attrs,
) {
    if c.hide_llm_invocation_parameters {
        return;
    }
    if let Some(o) = req.as_object() {
        let mut o = o.clone();
        // `retain` keeps the client's key order (`remove` may swap entries).
        o.retain(|k, _| !drop.contains(&k.as_str()));
        a.str(key, Value::Object(o).to_string());
    }
}

/// A string or an array of strings.
fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn text_or_redacted(hide: bool, s: &str) -> String {
    if hide {
        REDACTED.to_owned()
    } else {
        s.to_owned()
    }
}

fn chat_messages(c: &OpenInferenceConfig, req: &Value, a: &mut Attrs) {
    if c.hide_inputs || c.hide_input_messages {
        return;
    }
    let msgs = req.get("messages").and_then(Value::as_array);
    for (i, m) in msgs.into_iter().flatten().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        a.str(format!("llm.input_messages.{i}.message.role"), role);
        match m.get("content") {
            Some(Value::String(s)) if !s.is_empty() => a.str(
                format!("llm.input_messages.{i}.message.content"),
                text_or_redacted(c.hide_input_text, s),
            ),
            Some(Value::Array(parts)) => content_parts(c, i, parts, a),
            _ => {}
        }
    }
}

fn content_parts(c: &OpenInferenceConfig, i: usize, parts: &[Value], a: &mut Attrs) {
    let key = |j: usize, s: &str| {
        format!("llm.input_messages.{i}.message.contents.{j}.message_content.{s}")
    };
    for (j, p) in parts.iter().enumerate() {
        match p.get("type").and_then(Value::as_str) {
            Some("text") => {
                let t = p.get("text").and_then(Value::as_str).unwrap_or_default();
                a.str(key(j, "text"), text_or_redacted(c.hide_input_text, t));
                a.str(key(j, "type"), "text");
            }
            Some("image_url") if !c.hide_input_images => {
                let url = p
                    .pointer("/image_url/url")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if url.is_empty() {
                    continue;
                }
                let base64 = url.starts_with("data:image/") && url.contains("base64");
                let url = if base64 && url.len() > c.base64_image_max_length {
                    REDACTED
                } else {
                    url
                };
                a.str(key(j, "image.image.url"), url);
                a.str(key(j, "type"), "image");
            }
            _ => {}
        }
    }
}

fn anthropic_messages(c: &OpenInferenceConfig, req: &Value, a: &mut Attrs) {
    if c.hide_inputs || c.hide_input_messages {
        return;
    }
    let msgs = req.get("messages").and_then(Value::as_array);
    for (i, m) in msgs.into_iter().flatten().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        a.str(format!("llm.input_messages.{i}.message.role"), role);
        match m.get("content") {
            Some(Value::String(s)) if !s.is_empty() => a.str(
                format!("llm.input_messages.{i}.message.content"),
                text_or_redacted(c.hide_input_text, s),
            ),
            Some(Value::Array(parts)) => {
                let texts: Vec<Value> = parts
                    .iter()
                    .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                    .cloned()
                    .collect();
                content_parts(c, i, &texts, a);
            }
            _ => {}
        }
    }
}

fn tools(req: &Value, a: &mut Attrs) {
    let tools = req.get("tools").and_then(Value::as_array);
    for (i, t) in tools.into_iter().flatten().enumerate() {
        a.str(format!("llm.tools.{i}.tool.json_schema"), t.to_string());
    }
}

fn embeddings_request(c: &OpenInferenceConfig, req: &Value, a: &mut Attrs) {
    if !c.hide_llm_invocation_parameters {
        let mut p = serde_json::Map::new();
        for k in ["model", "encoding_format", "dimensions", "user"] {
            if let Some(v) = req.get(k).filter(|v| !v.is_null()) {
                p.insert(k.into(), v.clone());
            }
        }
        a.str(
            "embedding.invocation_parameters",
            Value::Object(p).to_string(),
        );
    }
    if c.hide_inputs || c.hide_embeddings_text {
        return;
    }
    for (i, t) in strings(req.get("input")).into_iter().enumerate() {
        a.str(format!("embedding.embeddings.{i}.embedding.text"), t);
    }
}

fn responses_messages(c: &OpenInferenceConfig, req: &Value, a: &mut Attrs) {
    if c.hide_inputs || c.hide_input_messages {
        return;
    }
    let mut i = 0;
    let mut msg = |role: &str, text: &str, a: &mut Attrs| {
        a.str(format!("llm.input_messages.{i}.message.role"), role);
        a.str(
            format!("llm.input_messages.{i}.message.content"),
            text_or_redacted(c.hide_input_text, text),
        );
        i += 1;
    };
    if let Some(s) = req
        .get("instructions")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        msg("system", s, a);
    }
    match req.get("input") {
        Some(Value::String(s)) => msg("user", s, a),
        Some(Value::Array(items)) => {
            for it in items {
                let role = it.get("role").and_then(Value::as_str).unwrap_or("user");
                let text = match it.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(parts)) => parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join(""),
                    _ => continue,
                };
                msg(role, &text, a);
            }
        }
        _ => {}
    }
}

fn response(c: &OpenInferenceConfig, endpoint: Endpoint, r: &Value, a: &mut Attrs) {
    let model = r.get("model").and_then(Value::as_str).unwrap_or_default();
    let show = !c.hide_outputs;
    match endpoint {
        Endpoint::ChatCompletions => {
            if !model.is_empty() {
                a.str("llm.model_name", model);
            }
            if show {
                a.str("output.mime_type", JSON);
            }
            if show && !c.hide_output_messages {
                chat_output(c, r, a);
            }
            chat_usage(r.get("usage"), a);
        }
        Endpoint::Completions => {
            a.str("llm.model_name", model);
            if show {
                a.str("output.mime_type", JSON);
            }
            if show && !c.hide_choices {
                let choices = r.get("choices").and_then(Value::as_array);
                for (i, ch) in choices.into_iter().flatten().enumerate() {
                    let t = ch.get("text").and_then(Value::as_str).unwrap_or_default();
                    a.str(format!("llm.choices.{i}.completion.text"), t);
                }
            }
            chat_usage(r.get("usage"), a);
        }
        Endpoint::Embeddings => embeddings_response(c, r, a),
        Endpoint::Messages => anthropic_response(c, r, a),
        Endpoint::Responses => responses_response(c, r, a),
        Endpoint::ImageGenerations | Endpoint::ImageEdits => {
            if show {
                a.str("output.mime_type", JSON);
            }
        }
        _ => {
            if !model.is_empty() {
                a.str("llm.model_name", model);
            }
        }
    }
}

fn int(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_i64).unwrap_or(0)
}

fn chat_usage(u: Option<&Value>, a: &mut Attrs) {
    let Some(u) = u.filter(|u| u.is_object()) else {
        return;
    };
    let pt = int(u.get("prompt_tokens"));
    if pt > 0 {
        a.int("llm.token_count.prompt", pt);
        if let Some(d) = u.get("prompt_tokens_details").filter(|d| d.is_object()) {
            a.int(
                "llm.token_count.prompt_details.audio",
                int(d.get("audio_tokens")),
            );
            a.int(
                "llm.token_count.prompt_details.cache_read",
                int(d.get("cached_tokens")),
            );
            a.int(
                "llm.token_count.prompt_details.cache_creation",
                int(d.get("cache_creation_tokens")),
            );
        }
    }
    let ct = int(u.get("completion_tokens"));
    if ct > 0 {
        a.int("llm.token_count.completion", ct);
        if let Some(d) = u.get("completion_tokens_details").filter(|d| d.is_object()) {
            a.int(
                "llm.token_count.completion_details.audio",
                int(d.get("audio_tokens")),
            );
            a.int(
                "llm.token_count.completion_details.reasoning",
                int(d.get("reasoning_tokens")),
            );
        }
    }
    let tt = int(u.get("total_tokens"));
    if tt > 0 {
        a.int("llm.token_count.total", tt);
    }
}

fn chat_output(c: &OpenInferenceConfig, r: &Value, a: &mut Attrs) {
    let choices = r.get("choices").and_then(Value::as_array);
    for (i, ch) in choices.into_iter().flatten().enumerate() {
        let m = ch.get("message").unwrap_or(&Value::Null);
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        a.str(format!("llm.output_messages.{i}.message.role"), role);
        if let Some(t) = m
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            a.str(
                format!("llm.output_messages.{i}.message.content"),
                text_or_redacted(c.hide_output_text, t),
            );
        }
        let calls = m.get("tool_calls").and_then(Value::as_array);
        for (j, call) in calls.into_iter().flatten().enumerate() {
            let key =
                |s: &str| format!("llm.output_messages.{i}.message.tool_calls.{j}.tool_call.{s}");
            if let Some(id) = call.get("id").and_then(Value::as_str) {
                a.str(key("id"), id);
            }
            let f = call.get("function").unwrap_or(&Value::Null);
            a.str(
                key("function.name"),
                f.get("name").and_then(Value::as_str).unwrap_or_default(),
            );
            a.str(
                key("function.arguments"),
                f.get("arguments")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            );
        }
    }
}

fn embeddings_response(c: &OpenInferenceConfig, r: &Value, a: &mut Attrs) {
    a.str(
        "embedding.model_name",
        r.get("model").and_then(Value::as_str).unwrap_or_default(),
    );
    if !c.hide_outputs {
        a.str("output.mime_type", JSON);
        if !c.hide_embeddings_vectors {
            let data = r.get("data").and_then(Value::as_array);
            for (i, d) in data.into_iter().flatten().enumerate() {
                let v = match d.get("embedding") {
                    Some(Value::Array(xs)) => xs.iter().filter_map(Value::as_f64).collect(),
                    Some(Value::String(b64)) => decode_base64_floats(b64),
                    _ => Vec::new(),
                };
                if !v.is_empty() {
                    a.push(Attr {
                        key: format!("embedding.embeddings.{i}.embedding.vector").into(),
                        value: AttrValue::F64List(v),
                    });
                }
            }
        }
    }
    let u = r.get("usage").unwrap_or(&Value::Null);
    for (k, name) in [
        ("prompt_tokens", "llm.token_count.prompt"),
        ("total_tokens", "llm.token_count.total"),
    ] {
        let n = int(u.get(k));
        if n > 0 {
            a.int(name, n);
        }
    }
}

fn decode_base64_floats(s: &str) -> Vec<f64> {
    use base64::Engine as _;
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(s) else {
        return Vec::new();
    };
    bytes
        .chunks_exact(4)
        .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect()
}

fn anthropic_response(c: &OpenInferenceConfig, r: &Value, a: &mut Attrs) {
    a.str(
        "llm.model_name",
        r.get("model").and_then(Value::as_str).unwrap_or_default(),
    );
    if !c.hide_outputs {
        a.str("output.mime_type", JSON);
    }
    if !c.hide_outputs && !c.hide_output_messages {
        let role = r.get("role").and_then(Value::as_str).unwrap_or_default();
        let content = r.get("content").and_then(Value::as_array);
        for (i, b) in content.into_iter().flatten().enumerate() {
            a.str(format!("llm.output_messages.{i}.message.role"), role);
            match b.get("type").and_then(Value::as_str) {
                Some("text") => a.str(
                    format!("llm.output_messages.{i}.message.content"),
                    text_or_redacted(
                        c.hide_output_text,
                        b.get("text").and_then(Value::as_str).unwrap_or_default(),
                    ),
                ),
                Some("tool_use") => {
                    let key = |s: &str| {
                        format!("llm.output_messages.{i}.message.tool_calls.0.tool_call.{s}")
                    };
                    a.str(
                        key("id"),
                        b.get("id").and_then(Value::as_str).unwrap_or_default(),
                    );
                    a.str(
                        key("function.name"),
                        b.get("name").and_then(Value::as_str).unwrap_or_default(),
                    );
                    let input = b.get("input").cloned().unwrap_or(Value::Null);
                    a.str(key("function.arguments"), input.to_string());
                }
                _ => {}
            }
        }
    }
    let u = r.get("usage").unwrap_or(&Value::Null);
    let (read, write) = (
        int(u.get("cache_read_input_tokens")),
        int(u.get("cache_creation_input_tokens")),
    );
    let input = int(u.get("input_tokens")) + read + write;
    let output = int(u.get("output_tokens"));
    a.int("llm.token_count.prompt", input);
    a.int("llm.token_count.prompt_details.cache_read", read);
    a.int("llm.token_count.prompt_details.cache_creation", write);
    a.int("llm.token_count.completion", output);
    a.int("llm.token_count.total", input + output);
}

fn responses_response(c: &OpenInferenceConfig, r: &Value, a: &mut Attrs) {
    a.str("output.mime_type", JSON);
    if let Some(m) = r
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
    {
        a.str("llm.model_name", m);
    }
    let v = if c.hide_outputs {
        REDACTED.to_owned()
    } else {
        r.to_string()
    };
    a.str("output.value", v);
    let u = r.get("usage").unwrap_or(&Value::Null);
    for (ptr, key) in [
        ("/input_tokens", "llm.token_count.prompt"),
        ("/output_tokens", "llm.token_count.completion"),
        ("/total_tokens", "llm.token_count.total"),
        (
            "/input_tokens_details/cached_tokens",
            "llm.token_count.prompt_details.cache_read",
        ),
        (
            "/output_tokens_details/reasoning_tokens",
            "llm.token_count.completion_details.reasoning",
        ),
    ] {
        let n = int(u.pointer(ptr));
        if n > 0 {
            a.int(key, n);
        }
    }
    if c.hide_outputs || c.hide_output_messages {
        return;
    }
    let out = r.get("output").and_then(Value::as_array);
    for (i, item) in out.into_iter().flatten().enumerate() {
        if item.get("type").and_then(Value::as_str) != Some("message") {
            continue;
        }
        let role = item
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("assistant");
        a.str(format!("llm.output_messages.{i}.message.role"), role);
        let parts = item.get("content").and_then(Value::as_array);
        for (j, p) in parts.into_iter().flatten().enumerate() {
            if let Some(t) = p.get("text").and_then(Value::as_str) {
                let key = |s: &str| {
                    format!("llm.output_messages.{i}.message.contents.{j}.message_content.{s}")
                };
                a.str(key("type"), "text");
                a.str(key("text"), text_or_redacted(c.hide_output_text, t));
            }
        }
    }
}
