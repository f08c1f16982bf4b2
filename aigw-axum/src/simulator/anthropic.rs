//! Anthropic Messages (`/v1/messages`, JSON and SSE) and token counting. The body and
//! event builders are shared with Bedrock `invoke` and Vertex `rawPredict`, which carry
//! the same Messages format.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};

use super::errors::{self, Provider, json_response};
use super::reply::{
    Content, Prompt, Reply, ToolChoice, content_text, content_words, is_tool_result,
    reasoning_signature, split_words,
};
use super::stream::{self, Framing};
use super::{Shared, Sim, SimRequest, begin};

/// The neutral prompt of a Messages body; `Err` carries the 400 message.
pub(crate) fn prompt<'a>(body: &'a Value, model: &'a str) -> Result<Prompt<'a>, &'static str> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("messages: Field required")?;
    let mut words = body.get("system").map_or(0, content_words);
    let mut last_user = String::new();
    for m in messages {
        let content = m.get("content").unwrap_or(&Value::Null);
        words += content_words(content);
        if m.get("role").and_then(Value::as_str) == Some("user") && !is_tool_result(content) {
            last_user = content_text(content);
        }
    }
    // Mid-conversation system messages may follow the tool results.
    let after_tool_result = messages
        .iter()
        .rfind(|m| m.get("role").and_then(Value::as_str) != Some("system"))
        .and_then(|m| m.get("content"))
        .is_some_and(is_tool_result);
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| Some((t.get("name")?.as_str()?, t.get("input_schema"))))
                .collect()
        })
        .unwrap_or_default();
    let choice = body.get("tool_choice");
    let tool_choice = match choice.and_then(|c| c.get("type")).and_then(Value::as_str) {
        Some("none") => ToolChoice::Never,
        Some("any") => ToolChoice::Any,
        Some("tool") => choice
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .map_or(ToolChoice::Any, |n| ToolChoice::Named(n.to_owned())),
        _ => ToolChoice::Auto,
    };
    let json_schema = ["/output_config/format", "/output_format"]
        .iter()
        .find_map(|p| body.pointer(p))
        .filter(|f| f.get("type").and_then(Value::as_str) == Some("json_schema"))
        .map(|f| {
            f.get("schema")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}))
        });
    let reasoning = matches!(
        body.pointer("/thinking/type").and_then(Value::as_str),
        Some("enabled" | "adaptive")
    );
    Ok(Prompt {
        model,
        words,
        last_user,
        tools,
        tool_choice,
        after_tool_result,
        json_schema,
        reasoning,
    })
}

fn stop_reason(reply: &Reply) -> &'static str {
    match reply.content {
        Content::Text(_) => "end_turn",
        Content::Tool(_) => "tool_use",
    }
}

fn tool_input(arguments: &str) -> Value {
    serde_json::from_str(arguments).unwrap_or_else(|_| json!({}))
}

/// A complete `message` object.
pub(crate) fn message(reply: &Reply, model: &str) -> Value {
    let answer = match &reply.content {
        Content::Text(t) => json!({"type": "text", "text": t}),
        Content::Tool(c) => json!({
            "type": "tool_use", "id": format!("toolu_{}", c.id), "name": c.name,
            "input": tool_input(&c.arguments)
        }),
    };
    let mut content = Vec::with_capacity(2);
    if let Some(r) = &reply.reasoning {
        content
            .push(json!({"type": "thinking", "thinking": r, "signature": reasoning_signature(r)}));
    }
    content.push(answer);
    json!({
        "id": format!("msg_{}", reply.id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(reply),
        "stop_sequence": null,
        "usage": {
            "input_tokens": reply.prompt_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": reply.completion_tokens
        }
    })
}

/// The stream events of a reply, in Anthropic's order: `message_start`,
/// `content_block_start`, `ping`, deltas, `content_block_stop`, `message_delta`,
/// `message_stop`.
pub(crate) fn events(reply: &Reply, model: &str, chunks: usize) -> Vec<(&'static str, Value)> {
    let mut out = Vec::with_capacity(chunks + 6);
    out.push((
        "message_start",
        json!({"type": "message_start", "message": {
            "id": format!("msg_{}", reply.id), "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": reply.prompt_tokens, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 1}
        }}),
    ));
    // Reasoning first, as its own block, signed at its end.
    let index = usize::from(reply.reasoning.is_some());
    if let Some(r) = &reply.reasoning {
        out.push((
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
                   "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ));
        for piece in split_words(r, chunks.max(1)) {
            out.push((
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                       "delta": {"type": "thinking_delta", "thinking": piece}}),
            ));
        }
        out.push((
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "signature_delta", "signature": reasoning_signature(r)}}),
        ));
        out.push((
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ));
    }
    let block = match &reply.content {
        Content::Text(_) => json!({"type": "text", "text": ""}),
        Content::Tool(c) => json!({
            "type": "tool_use", "id": format!("toolu_{}", c.id), "name": c.name, "input": {}
        }),
    };
    out.push((
        "content_block_start",
        json!({"type": "content_block_start", "index": index, "content_block": block}),
    ));
    out.push(("ping", json!({"type": "ping"})));
    for piece in reply.pieces(chunks) {
        let delta = match reply.content {
            Content::Text(_) => json!({"type": "text_delta", "text": piece}),
            Content::Tool(_) => json!({"type": "input_json_delta", "partial_json": piece}),
        };
        out.push((
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        ));
    }
    out.push((
        "content_block_stop",
        json!({"type": "content_block_stop", "index": index}),
    ));
    out.push((
        "message_delta",
        json!({"type": "message_delta",
               "delta": {"stop_reason": stop_reason(reply), "stop_sequence": null},
               "usage": {"output_tokens": reply.completion_tokens}}),
    ));
    out.push(("message_stop", json!({"type": "message_stop"})));
    out
}

/// SSE frames `event: NAME\ndata: JSON\n\n`.
pub(crate) fn sse_frames(events: Vec<(&'static str, Value)>) -> Vec<Bytes> {
    events
        .into_iter()
        .map(|(name, data)| {
            let mut out = Vec::with_capacity(128);
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\ndata: ");
            if serde_json::to_writer(&mut out, &data).is_err() {
                out.extend_from_slice(b"{}");
            }
            out.extend_from_slice(b"\n\n");
            Bytes::from(out)
        })
        .collect()
}

/// Serves a Messages request whose model is `path_model` (Vertex) or the body's.
pub(crate) async fn serve_messages(
    shared: Arc<Shared>,
    provider: Provider,
    path_model: Option<&str>,
    req: SimRequest,
    force_stream: Option<bool>,
) -> Response {
    let script = match begin(&shared, provider, &req).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    if provider == Provider::Anthropic && !req.headers.contains_key("anthropic-version") {
        return errors::bad_request(provider, "anthropic-version: header is required");
    }
    let body = match req.json(provider) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let Some(model) = path_model.or_else(|| body.get("model").and_then(Value::as_str)) else {
        return errors::bad_request(provider, "model: Field required");
    };
    if body.get("max_tokens").and_then(Value::as_u64).is_none() {
        return errors::bad_request(provider, "max_tokens: Field required");
    }
    let prompt = match prompt(&body, model) {
        Ok(p) => p,
        Err(msg) => return errors::bad_request(provider, msg),
    };
    let reply = prompt.reply(script.chunks);
    let streaming = force_stream
        .unwrap_or_else(|| body.get("stream").and_then(Value::as_bool).unwrap_or(false));
    if streaming {
        let frames = sse_frames(events(&reply, model, script.chunks));
        stream::events(
            frames,
            Framing::Sse,
            "text/event-stream; charset=utf-8",
            &script,
            req.reset,
        )
    } else {
        let out = message(&reply, model);
        stream::json(
            serde_json::to_vec(&out).unwrap_or_default(),
            &script,
            req.reset,
        )
    }
}

/// `POST /v1/messages`.
pub(crate) async fn messages(State(shared): Sim, req: SimRequest) -> Response {
    serve_messages(shared, Provider::Anthropic, None, req, None).await
}

/// `POST /v1/messages/count_tokens`.
pub(crate) async fn count_tokens(State(shared): Sim, req: SimRequest) -> Response {
    if let Err(resp) = begin(&shared, Provider::Anthropic, &req).await {
        return resp;
    }
    let body = match req.json(Provider::Anthropic) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match prompt(&body, model) {
        Ok(p) => json_response(StatusCode::OK, &json!({"input_tokens": p.words.max(1)})),
        Err(msg) => errors::bad_request(Provider::Anthropic, msg),
    }
}
