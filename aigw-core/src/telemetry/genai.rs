//! The OpenTelemetry GenAI convention (`AI_GATEWAY_TRACING_SEMCONV=gen_ai`): span
//! `{operation} {model}` of kind CLIENT, `gen_ai.*` attributes; message content only
//! with `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`.

use super::Outcome;
use super::attr::{Attrs, AttrsExt, SpanEvent, SpanStatus};
use crate::api::Endpoint;
use serde_json::{Value, json};

/// `gen_ai.operation.name` of an endpoint.
pub(crate) const fn operation(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::ChatCompletions
        | Endpoint::Messages
        | Endpoint::Responses
        | Endpoint::ResponsesStored => "chat",
        Endpoint::Completions => "text_completion",
        Endpoint::Embeddings => "embeddings",
        Endpoint::ImageGenerations | Endpoint::ImageEdits => "image_generation",
        Endpoint::AudioSpeech => "speech",
        Endpoint::AudioTranscriptions => "transcription",
        Endpoint::AudioTranslations => "translation",
        Endpoint::Rerank => "rerank",
        Endpoint::Tokenize
        | Endpoint::CountTokens
        | Endpoint::ResponsesInputTokens
        | Endpoint::Models
        | Endpoint::AnthropicModels => "tokenize",
    }
}

/// The span name: `{operation} {model}`, or the operation alone without a model.
pub(crate) fn span_name(endpoint: Endpoint, model: &str) -> String {
    let op = operation(endpoint);
    if model.is_empty() {
        op.to_owned()
    } else {
        format!("{op} {model}")
    }
}

/// `error.type` by status, as the upstream maps it.
pub(crate) fn error_type(code: u16) -> String {
    match code {
        500 | 502 | 503 => "500".to_owned(),
        400..=599 => code.to_string(),
        _ => "_OTHER".to_owned(),
    }
}

/// The attributes, end events and status of a finished request.
pub(crate) fn finish(capture: bool, o: &Outcome<'_>) -> (Attrs, Vec<SpanEvent>, SpanStatus) {
    let mut a = Attrs::new();
    let empty = Value::Null;
    let req = o.request.unwrap_or(&empty);
    a.str("gen_ai.operation.name", operation(o.endpoint));
    if let Some(m) = req
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
    {
        a.str("gen_ai.request.model", m);
    }
    params(o.endpoint, req, &mut a);
    if o.endpoint == Endpoint::Responses
        && let Some(id) = req
            .pointer("/conversation/id")
            .or_else(|| req.get("conversation"))
            .and_then(Value::as_str)
    {
        a.str("gen_ai.conversation.id", id);
    }
    if capture {
        input_content(o.endpoint, req, &mut a);
    }
    if let Some(p) = o.provider {
        a.str("gen_ai.provider.name", p);
    }
    if let Some(code) = o.failed_status() {
        a.str("error.type", error_type(code));
        let msg = match o.error_body.filter(|b| capture && !b.is_empty()) {
            Some(b) => format!("Error code: {code} - {b}"),
            None => format!("Error code: {code}"),
        };
        return (a, Vec::new(), SpanStatus::Error(msg));
    }
    if let Some(r) = o.response {
        response(o.endpoint, r, &mut a);
        if capture && let Some(m) = output_messages(o.endpoint, r) {
            a.str("gen_ai.output.messages", m.to_string());
        }
    }
    (a, Vec::new(), SpanStatus::Ok)
}

fn params(endpoint: Endpoint, req: &Value, a: &mut Attrs) {
    let f = |k: &str| req.get(k).and_then(Value::as_f64);
    let i = |k: &str| req.get(k).and_then(Value::as_i64);
    match endpoint {
        Endpoint::ChatCompletions | Endpoint::Completions | Endpoint::Messages => {
            for (k, key) in [
                ("temperature", "gen_ai.request.temperature"),
                ("top_p", "gen_ai.request.top_p"),
                ("frequency_penalty", "gen_ai.request.frequency_penalty"),
                ("presence_penalty", "gen_ai.request.presence_penalty"),
            ] {
                if let Some(v) = f(k) {
                    a.f64(key, v);
                }
            }
            for (k, key) in [
                ("seed", "gen_ai.request.seed"),
                ("n", "gen_ai.request.choice.count"),
                ("top_k", "gen_ai.request.top_k"),
            ] {
                if let Some(v) = i(k) {
                    a.int(key, v);
                }
            }
            if let Some(m) = i("max_completion_tokens").or_else(|| i("max_tokens")) {
                a.int("gen_ai.request.max_tokens", m);
            }
            let stop = req.get("stop").or_else(|| req.get("stop_sequences"));
            let stops: Vec<String> = match stop {
                Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
                Some(Value::Array(xs)) => xs
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            };
            if !stops.is_empty() {
                a.list("gen_ai.request.stop_sequences", stops);
            }
        }
        Endpoint::Embeddings => {
            if let Some(e) = req
                .get("encoding_format")
                .and_then(Value::as_str)
                .filter(|e| !e.is_empty())
            {
                a.list("gen_ai.request.encoding_formats", vec![e.to_owned()]);
            }
        }
        _ => {}
    }
}

fn int(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_i64).unwrap_or(0)
}

fn positive(a: &mut Attrs, key: &'static str, n: i64) {
    if n > 0 {
        a.int(key, n);
    }
}

fn response(endpoint: Endpoint, r: &Value, a: &mut Attrs) {
    if endpoint != Endpoint::Embeddings
        && let Some(id) = r
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    {
        a.str("gen_ai.response.id", id);
    }
    if let Some(m) = r
        .get("model")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        a.str("gen_ai.response.model", m);
    }
    let u = r.get("usage").unwrap_or(&Value::Null);
    for (key, pointer) in usage_fields(endpoint) {
        positive(a, key, int(u.pointer(pointer)));
    }
    let mut reasons = Vec::new();
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    match endpoint {
        Endpoint::Messages => reasons.extend(text(r.get("stop_reason"))),
        Endpoint::ChatCompletions => {
            let choices = r.get("choices").and_then(Value::as_array);
            reasons.extend(
                choices
                    .into_iter()
                    .flatten()
                    .filter_map(|c| text(c.get("finish_reason"))),
            );
        }
        Endpoint::Embeddings => {
            if let Some(n) = r
                .pointer("/data/0/embedding")
                .and_then(Value::as_array)
                .map(Vec::len)
                .filter(|n| *n > 0)
            {
                a.int(
                    "gen_ai.embeddings.dimension.count",
                    i64::try_from(n).unwrap_or(i64::MAX),
                );
            }
        }
        _ => {}
    }
    if !reasons.is_empty() {
        a.list("gen_ai.response.finish_reasons", reasons);
    }
}

/// Where each `gen_ai.usage.*` attribute is in an endpoint's `usage` object.
fn usage_fields(endpoint: Endpoint) -> &'static [(&'static str, &'static str)] {
    const INPUT: &str = "gen_ai.usage.input_tokens";
    const OUTPUT: &str = "gen_ai.usage.output_tokens";
    const CACHE_READ: &str = "gen_ai.usage.cache_read.input_tokens";
    const CACHE_CREATION: &str = "gen_ai.usage.cache_creation.input_tokens";
    const REASONING: &str = "gen_ai.usage.reasoning.output_tokens";
    match endpoint {
        Endpoint::Messages => &[
            (INPUT, "/input_tokens"),
            (OUTPUT, "/output_tokens"),
            (CACHE_READ, "/cache_read_input_tokens"),
            (CACHE_CREATION, "/cache_creation_input_tokens"),
        ],
        Endpoint::Responses => &[
            (INPUT, "/input_tokens"),
            (OUTPUT, "/output_tokens"),
            (CACHE_READ, "/input_tokens_details/cached_tokens"),
            (REASONING, "/output_tokens_details/reasoning_tokens"),
        ],
        Endpoint::Embeddings => &[(INPUT, "/prompt_tokens")],
        Endpoint::ChatCompletions => &[
            (INPUT, "/prompt_tokens"),
            (OUTPUT, "/completion_tokens"),
            (CACHE_READ, "/prompt_tokens_details/cached_tokens"),
            (
                CACHE_CREATION,
                "/prompt_tokens_details/cache_creation_tokens",
            ),
            (REASONING, "/completion_tokens_details/reasoning_tokens"),
        ],
        _ => &[(INPUT, "/prompt_tokens"), (OUTPUT, "/completion_tokens")],
    }
}

fn text_part(s: &str) -> Option<Value> {
    (!s.is_empty()).then(|| json!({"type": "text", "content": s}))
}

/// Content parts of an OpenAI chat message or an Anthropic message.
fn parts(content: Option<&Value>) -> Vec<Value> {
    match content {
        Some(Value::String(s)) => text_part(s).into_iter().collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|p| match p.get("type").and_then(Value::as_str) {
                Some("text") => Some(json!({"type": "text", "content": p.get("text").and_then(Value::as_str).unwrap_or_default()})),
                Some("image_url" | "image") => Some(json!({"type": "image"})),
                Some("input_audio") => Some(json!({"type": "audio"})),
                Some("tool_use") => Some(tool_call(p.get("id"), p.get("name"), p.get("input").map(Value::to_string))),
                Some("tool_result") => Some(json!({"type": "tool_call_response", "id": p.get("tool_use_id").cloned().unwrap_or(Value::Null)})),
                Some("thinking") => Some(json!({"type": "reasoning"})),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn tool_call(id: Option<&Value>, name: Option<&Value>, args: Option<String>) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("type".into(), json!("tool_call"));
    if let Some(id) = id.and_then(Value::as_str).filter(|s| !s.is_empty()) {
        o.insert("id".into(), json!(id));
    }
    if let Some(n) = name.and_then(Value::as_str).filter(|s| !s.is_empty()) {
        o.insert("name".into(), json!(n));
    }
    if let Some(a) = args.filter(|a| !a.is_empty() && a != "{}") {
        o.insert("arguments".into(), json!(a));
    }
    Value::Object(o)
}

fn input_content(endpoint: Endpoint, req: &Value, a: &mut Attrs) {
    let mut msgs = Vec::new();
    let mut system = Vec::new();
    match endpoint {
        Endpoint::ChatCompletions | Endpoint::Messages => {
            for m in req
                .get("messages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
                let mut p = if role == "tool" {
                    vec![
                        json!({"type": "tool_call_response", "id": m.get("tool_call_id").cloned().unwrap_or(Value::Null), "content": parts(m.get("content")).first().and_then(|p| p.get("content")).cloned().unwrap_or(json!(""))}),
                    ]
                } else {
                    parts(m.get("content"))
                };
                for c in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let f = c.get("function").unwrap_or(&Value::Null);
                    p.push(tool_call(
                        c.get("id"),
                        f.get("name"),
                        f.get("arguments")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                    ));
                }
                msgs.push(json!({"role": role, "parts": p}));
            }
            if endpoint == Endpoint::Messages {
                system = parts(req.get("system"));
            }
        }
        Endpoint::Completions => {
            let prompts = match req.get("prompt") {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(xs)) => xs
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            };
            for p in prompts {
                msgs.push(
                    json!({"role": "user", "parts": text_part(&p).into_iter().collect::<Vec<_>>()}),
                );
            }
        }
        _ => {}
    }
    if !msgs.is_empty() {
        a.str("gen_ai.input.messages", Value::Array(msgs).to_string());
    }
    if !system.is_empty() {
        a.str(
            "gen_ai.system_instructions",
            Value::Array(system).to_string(),
        );
    }
    if let Some(tools) = req
        .get("tools")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
    {
        let defs: Vec<Value> = tools
            .iter()
            .map(|t| {
                let f = t.get("function").unwrap_or(t);
                let mut d = json!({"type": "function", "name": f.get("name").cloned().unwrap_or(Value::Null)});
                if let (Some(o), Some(desc)) = (d.as_object_mut(), f.get("description")) {
                    o.insert("description".into(), desc.clone());
                }
                d
            })
            .collect();
        a.str("gen_ai.tool.definitions", Value::Array(defs).to_string());
    }
}

fn output_messages(endpoint: Endpoint, r: &Value) -> Option<Value> {
    let msgs: Vec<Value> = match endpoint {
        Endpoint::ChatCompletions => r
            .get("choices")
            .and_then(Value::as_array)?
            .iter()
            .map(|c| {
                let m = c.get("message").unwrap_or(&Value::Null);
                let mut p: Vec<Value> = m.get("content").and_then(Value::as_str).and_then(text_part).into_iter().collect();
                for t in m.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                    let f = t.get("function").unwrap_or(&Value::Null);
                    p.push(tool_call(t.get("id"), f.get("name"), f.get("arguments").and_then(Value::as_str).map(str::to_owned)));
                }
                json!({"role": m.get("role").cloned().unwrap_or(json!("assistant")), "parts": p, "finish_reason": c.get("finish_reason").cloned().unwrap_or(json!(""))})
            })
            .collect(),
        Endpoint::Completions => r
            .get("choices")
            .and_then(Value::as_array)?
            .iter()
            .map(|c| {
                let t = c.get("text").and_then(Value::as_str).unwrap_or_default();
                json!({"role": "assistant", "parts": text_part(t).into_iter().collect::<Vec<_>>(), "finish_reason": c.get("finish_reason").cloned().unwrap_or(json!(""))})
            })
            .collect(),
        Endpoint::Messages => vec![json!({
            "role": r.get("role").cloned().unwrap_or(json!("assistant")),
            "parts": parts(r.get("content")),
            "finish_reason": r.get("stop_reason").cloned().unwrap_or(json!("")),
        })],
        _ => return None,
    };
    (!msgs.is_empty()).then_some(Value::Array(msgs))
}
