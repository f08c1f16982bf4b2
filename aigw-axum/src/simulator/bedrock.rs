//! AWS Bedrock runtime: Converse, ConverseStream, InvokeModel (Anthropic messages,
//! Titan and Cohere embeddings) and InvokeModelWithResponseStream (Anthropic events
//! wrapped in `chunk` frames).

use axum::extract::{Path, State};
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use http::HeaderValue;
use serde_json::{Value, json};

use super::anthropic;
use super::errors::{self, Provider};
use super::eventstream::{self, CONTENT_TYPE};
use super::reply::{
    Content, Prompt, Reply, ToolChoice, content_text, content_words, embedding, is_tool_result,
    reasoning_signature, split_words, words,
};
use super::stream::{self, Framing};
use super::{Sim, SimRequest, begin};

fn prompt<'a>(body: &'a Value, model: &'a str) -> Option<Prompt<'a>> {
    let messages = body.get("messages")?.as_array()?;
    let mut total = body.get("system").map_or(0, content_words);
    let mut last_user = String::new();
    for m in messages {
        let content = m.get("content").unwrap_or(&Value::Null);
        total += content_words(content);
        if m.get("role").and_then(Value::as_str) == Some("user") && !is_tool_result(content) {
            last_user = content_text(content);
        }
    }
    let after_tool_result = messages
        .last()
        .and_then(|m| m.get("content"))
        .is_some_and(is_tool_result);
    let config = body.get("toolConfig");
    let tools = config
        .and_then(|c| c.get("tools"))
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| {
                    let spec = t.get("toolSpec")?;
                    let schema = spec.get("inputSchema").and_then(|s| s.get("json"));
                    Some((spec.get("name")?.as_str()?, schema))
                })
                .collect()
        })
        .unwrap_or_default();
    let choice = config.and_then(|c| c.get("toolChoice"));
    let tool_choice = if choice.and_then(|c| c.get("any")).is_some() {
        ToolChoice::Any
    } else if let Some(name) = choice
        .and_then(|c| c.get("tool"))
        .and_then(|t| t.get("name"))
        .and_then(Value::as_str)
    {
        ToolChoice::Named(name.to_owned())
    } else {
        ToolChoice::Auto
    };
    // Converse carries the schema as a JSON document in a string.
    let json_schema = body
        .pointer("/outputConfig/textFormat/structure/jsonSchema/schema")
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok());
    let extra = body.get("additionalModelRequestFields");
    let reasoning = extra.is_some_and(|x| {
        x.pointer("/thinking/type").and_then(Value::as_str) == Some("enabled")
            || x.get("reasoningConfig").is_some()
    });
    Some(Prompt {
        model,
        words: total,
        last_user,
        tools,
        tool_choice,
        after_tool_result,
        json_schema,
        reasoning,
    })
}

fn usage(reply: &Reply) -> Value {
    json!({
        "inputTokens": reply.prompt_tokens,
        "outputTokens": reply.completion_tokens,
        "totalTokens": reply.total_tokens()
    })
}

fn stop_reason(reply: &Reply) -> &'static str {
    match reply.content {
        Content::Text(_) => "end_turn",
        Content::Tool(_) => "tool_use",
    }
}

fn validation(message: &str) -> Response {
    errors::bad_request(Provider::Bedrock, message)
}

fn frame(event_type: &'static str, payload: &Value) -> Bytes {
    eventstream::event(event_type, serde_json::to_vec(payload).unwrap_or_default())
}

/// Parses and answers a Converse body (shared by `converse` and `converse-stream`).
async fn converse_inner(shared: Sim, model: String, req: SimRequest, streaming: bool) -> Response {
    let State(shared) = shared;
    let script = match begin(&shared, Provider::Bedrock, &req).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let body = match req.json(Provider::Bedrock) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let Some(prompt) = prompt(&body, &model) else {
        return validation(
            "1 validation error detected: Value at 'messages' failed to satisfy constraint: Member must not be null",
        );
    };
    let reply = prompt.reply(script.chunks);
    let latency = json!({"latencyMs": script.delay.as_millis() as u64});
    if !streaming {
        let answer = match &reply.content {
            Content::Text(t) => json!({"text": t}),
            Content::Tool(c) => json!({"toolUse": {
                "toolUseId": format!("tooluse_{}", c.id), "name": c.name,
                "input": serde_json::from_str::<Value>(&c.arguments).unwrap_or_else(|_| json!({}))
            }}),
        };
        let mut content = Vec::with_capacity(2);
        if let Some(r) = &reply.reasoning {
            content.push(json!({"reasoningContent": {"reasoningText": {
                "text": r, "signature": reasoning_signature(r)
            }}}));
        }
        content.push(answer);
        let out = json!({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop_reason(&reply),
            "usage": usage(&reply),
            "metrics": latency
        });
        return stream::json(
            serde_json::to_vec(&out).unwrap_or_default(),
            &script,
            req.reset,
        );
    }
    let mut frames = Vec::with_capacity(script.chunks + 5);
    frames.push(frame("messageStart", &json!({"role": "assistant"})));
    // Reasoning is block 0 (text deltas, then its signature); the answer follows.
    let index = usize::from(reply.reasoning.is_some());
    if let Some(r) = &reply.reasoning {
        for piece in split_words(r, script.chunks.max(1)) {
            frames.push(frame(
                "contentBlockDelta",
                &json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": piece}}}),
            ));
        }
        frames.push(frame(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": reasoning_signature(r)}}}),
        ));
        frames.push(frame("contentBlockStop", &json!({"contentBlockIndex": 0})));
    }
    if let Content::Tool(c) = &reply.content {
        frames.push(frame(
            "contentBlockStart",
            &json!({"contentBlockIndex": index, "start": {"toolUse": {
                "toolUseId": format!("tooluse_{}", c.id), "name": c.name
            }}}),
        ));
    }
    for piece in reply.pieces(script.chunks) {
        let delta = match reply.content {
            Content::Text(_) => json!({"text": piece}),
            Content::Tool(_) => json!({"toolUse": {"input": piece}}),
        };
        frames.push(frame(
            "contentBlockDelta",
            &json!({"contentBlockIndex": index, "delta": delta}),
        ));
    }
    frames.push(frame(
        "contentBlockStop",
        &json!({"contentBlockIndex": index}),
    ));
    frames.push(frame(
        "messageStop",
        &json!({"stopReason": stop_reason(&reply)}),
    ));
    frames.push(frame(
        "metadata",
        &json!({"usage": usage(&reply), "metrics": latency}),
    ));
    stream::events(
        frames,
        Framing::EventStream,
        CONTENT_TYPE,
        &script,
        req.reset,
    )
}

/// `POST /model/{modelId}/converse`.
pub(crate) async fn converse(shared: Sim, Path(model): Path<String>, req: SimRequest) -> Response {
    converse_inner(shared, model, req, false).await
}

/// `POST /model/{modelId}/converse-stream`.
pub(crate) async fn converse_stream(
    shared: Sim,
    Path(model): Path<String>,
    req: SimRequest,
) -> Response {
    converse_inner(shared, model, req, true).await
}

fn is_anthropic(model: &str) -> bool {
    model.contains("anthropic.")
}

fn with_invoke_headers(mut resp: Response, input: u64, output: u64) -> Response {
    let h = resp.headers_mut();
    h.insert("x-amzn-bedrock-input-token-count", HeaderValue::from(input));
    h.insert(
        "x-amzn-bedrock-output-token-count",
        HeaderValue::from(output),
    );
    h.insert("x-amzn-bedrock-invocation-latency", HeaderValue::from(1u64));
    resp
}

/// `POST /model/{modelId}/invoke`.
pub(crate) async fn invoke(
    State(shared): Sim,
    Path(model): Path<String>,
    req: SimRequest,
) -> Response {
    let script = match begin(&shared, Provider::Bedrock, &req).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let body = match req.json(Provider::Bedrock) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    if is_anthropic(&model) {
        if body.get("anthropic_version").is_none() {
            return validation(
                "Malformed input request: #: required key [anthropic_version] not found, please reformat your input and try again.",
            );
        }
        let prompt = match anthropic::prompt(&body, &model) {
            Ok(p) => p,
            Err(msg) => return validation(msg),
        };
        let reply = prompt.reply(script.chunks);
        let out = anthropic::message(&reply, &model);
        let resp = stream::json(
            serde_json::to_vec(&out).unwrap_or_default(),
            &script,
            req.reset,
        );
        return with_invoke_headers(resp, reply.prompt_tokens, reply.completion_tokens);
    }
    if model.contains("titan-embed") {
        let Some(text) = body.get("inputText").and_then(Value::as_str) else {
            return validation(
                "Malformed input request: #: required key [inputText] not found, please reformat your input and try again.",
            );
        };
        let dims = super::reply::dims(body.get("dimensions"));
        let tokens = words(text).max(1);
        let out = json!({"embedding": embedding(text, dims), "inputTextTokenCount": tokens});
        let resp = stream::json(
            serde_json::to_vec(&out).unwrap_or_default(),
            &script,
            req.reset,
        );
        return with_invoke_headers(resp, tokens, 0);
    }
    if model.contains("cohere.embed") {
        let Some(texts) = body.get("texts").and_then(Value::as_array) else {
            return validation(
                "Malformed input request: #: required key [texts] not found, please reformat your input and try again.",
            );
        };
        let texts: Vec<&str> = texts.iter().filter_map(Value::as_str).collect();
        let tokens: u64 = texts.iter().map(|t| words(t).max(1)).sum();
        let vectors: Vec<Vec<f32>> = texts
            .iter()
            .map(|t| embedding(t, super::reply::EMBEDDING_DIMS))
            .collect();
        let out = json!({
            "id": format!("sim{:016x}", super::reply::fnv(&[model.as_bytes()])),
            "embeddings": vectors,
            "response_type": "embeddings_floats",
            "texts": texts
        });
        let resp = stream::json(
            serde_json::to_vec(&out).unwrap_or_default(),
            &script,
            req.reset,
        );
        return with_invoke_headers(resp, tokens, 0);
    }
    if let Some(answer) = super::images_rerank::bedrock_image(&model, &body) {
        return match answer {
            Ok(out) => stream::json(
                serde_json::to_vec(&out).unwrap_or_default(),
                &script,
                req.reset,
            ),
            Err(msg) => validation(&msg),
        };
    }
    validation("The provided model identifier is invalid.")
}

/// `POST /model/{modelId}/invoke-with-response-stream` (Anthropic models).
pub(crate) async fn invoke_stream(
    State(shared): Sim,
    Path(model): Path<String>,
    req: SimRequest,
) -> Response {
    let script = match begin(&shared, Provider::Bedrock, &req).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let body = match req.json(Provider::Bedrock) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    if !is_anthropic(&model) {
        return validation("The provided model doesn't support streaming in the simulator.");
    }
    let prompt = match anthropic::prompt(&body, &model) {
        Ok(p) => p,
        Err(msg) => return validation(msg),
    };
    let reply = prompt.reply(script.chunks);
    let mut events = anthropic::events(&reply, &model, script.chunks);
    // Bedrock appends its invocation metrics to the final event.
    if let Some((_, last)) = events.last_mut()
        && let Some(map) = last.as_object_mut()
    {
        map.insert(
            "amazon-bedrock-invocationMetrics".into(),
            json!({
                "inputTokenCount": reply.prompt_tokens,
                "outputTokenCount": reply.completion_tokens,
                "invocationLatency": 1,
                "firstByteLatency": 1
            }),
        );
    }
    let frames = events
        .into_iter()
        .filter(|(name, _)| *name != "ping")
        .map(|(_, event)| {
            let bytes = serde_json::to_vec(&event).unwrap_or_default();
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            frame("chunk", &json!({"bytes": b64}))
        })
        .collect();
    let mut resp = stream::events(
        frames,
        Framing::EventStream,
        CONTENT_TYPE,
        &script,
        req.reset,
    );
    resp.headers_mut().insert(
        "x-amzn-bedrock-content-type",
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `POST /model/{modelId}/count-tokens`: `{"input":{"converse":{…}}}` or
/// `{"input":{"invokeModel":{"body":"<JSON text>"}}}`; the count is the words of the
/// messages and system prompt, as for every other simulated count.
pub(crate) async fn count_tokens(
    State(shared): Sim,
    Path(_model): Path<String>,
    req: SimRequest,
) -> Response {
    if let Err(resp) = begin(&shared, Provider::Bedrock, &req).await {
        return resp;
    }
    let body = match req.json(Provider::Bedrock) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let input = &body["input"];
    let doc = if let Some(c) = input.get("converse") {
        c.clone()
    } else if let Some(b) = input["invokeModel"]["body"].as_str() {
        serde_json::from_str(b).unwrap_or(Value::Null)
    } else {
        return errors::bedrock_error(
            http::StatusCode::BAD_REQUEST,
            "ValidationException",
            "input must contain converse or invokeModel",
        );
    };
    let count =
        super::reply::content_words(&doc["messages"]) + super::reply::content_words(&doc["system"]);
    errors::json_response(http::StatusCode::OK, &json!({"inputTokens": count}))
}
