//! OpenAI (and Azure OpenAI, and OpenAI-compatible prefixes): chat completions,
//! completions, embeddings and models, JSON and SSE.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};

use super::errors::{self, Provider, json_response};
use super::reply::{
    Content, Prompt, Reply, ToolChoice, content_text, content_words, dims, embedding,
    format_schema, split_words, words,
};
use super::script::Script;
use super::stream::{self, Framing};
use super::{CREATED, Shared, Sim, SimRequest, begin};

const SSE: &str = "text/event-stream; charset=utf-8";
const DONE: &[u8] = b"data: [DONE]\n\n";

fn sse(value: &Value) -> Bytes {
    let mut out = b"data: ".to_vec();
    if serde_json::to_writer(&mut out, value).is_err() {
        out.truncate(6);
    }
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

fn model_of<'a>(body: &'a Value, deployment: Option<&'a str>) -> Option<&'a str> {
    body.get("model").and_then(Value::as_str).or(deployment)
}

/// The steps every OpenAI-shaped handler starts with: scripted delay/failure and
/// credential checks, then the JSON body.
async fn prologue(
    shared: &Shared,
    provider: Provider,
    req: &SimRequest,
) -> Result<(Script, Value), Response> {
    let script = begin(shared, provider, req).await?;
    let body = req.json(provider)?;
    Ok((script, body))
}

fn missing_model(provider: Provider) -> Response {
    errors::bad_request(provider, "you must provide a model parameter")
}

/// The neutral prompt of a chat completions body.
fn chat_prompt<'a>(body: &'a Value, model: &'a str) -> Option<Prompt<'a>> {
    let messages = body.get("messages")?.as_array()?;
    let mut words_total = 0;
    let mut last_user = String::new();
    for m in messages {
        let content = m.get("content").unwrap_or(&Value::Null);
        words_total += content_words(content);
        if m.get("role").and_then(Value::as_str) == Some("user") {
            last_user = content_text(content);
        }
    }
    // System messages may follow the tool results (mid-conversation instructions).
    let after_tool_result = messages
        .iter()
        .filter_map(|m| m.get("role").and_then(Value::as_str))
        .rfind(|r| *r != "system" && *r != "developer")
        .is_some_and(|r| r == "tool" || r == "function");
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| {
                    let f = t.get("function")?;
                    Some((f.get("name")?.as_str()?, f.get("parameters")))
                })
                .collect()
        })
        .unwrap_or_default();
    let tool_choice = match body.get("tool_choice") {
        Some(Value::String(s)) if s == "none" => ToolChoice::Never,
        Some(Value::String(s)) if s == "required" => ToolChoice::Any,
        Some(Value::Object(o)) => o
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .map_or(ToolChoice::Any, |n| ToolChoice::Named(n.to_owned())),
        _ => ToolChoice::Auto,
    };
    let reasoning = body
        .get("reasoning_effort")
        .and_then(Value::as_str)
        .is_some_and(|e| e != "none");
    Some(Prompt {
        model,
        words: words_total,
        last_user,
        tools,
        tool_choice,
        after_tool_result,
        json_schema: format_schema(body.get("response_format")),
        reasoning,
    })
}

fn usage(reply: &Reply) -> Value {
    json!({
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.total_tokens(),
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.reasoning.as_deref().map_or(0, words),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0
        }
    })
}

fn include_usage(body: &Value) -> bool {
    body.get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn is_stream(body: &Value) -> bool {
    body.get("stream").and_then(Value::as_bool).unwrap_or(false)
}

async fn chat_inner(
    shared: Arc<Shared>,
    provider: Provider,
    deployment: Option<&str>,
    req: SimRequest,
) -> Response {
    let (script, body) = match prologue(&shared, provider, &req).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let Some(model) = model_of(&body, deployment) else {
        return missing_model(provider);
    };
    let Some(prompt) = chat_prompt(&body, model) else {
        return errors::bad_request(provider, "Missing required parameter: 'messages'.");
    };
    let reply = prompt.reply(script.chunks);
    let id = format!("chatcmpl-{}", reply.id);
    if !is_stream(&body) {
        let mut message = match &reply.content {
            Content::Text(t) => json!({
                "role": "assistant", "content": t, "refusal": null, "annotations": []
            }),
            Content::Tool(c) => json!({
                "role": "assistant", "content": null, "refusal": null, "annotations": [],
                "tool_calls": [{
                    "id": format!("call_{}", c.id), "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments}
                }]
            }),
        };
        // Reasoning as OpenAI-compatible reasoning servers return it.
        if let Some(r) = &reply.reasoning {
            message["reasoning_content"] = r.as_str().into();
        }
        let finish = if matches!(reply.content, Content::Tool(_)) {
            "tool_calls"
        } else {
            "stop"
        };
        let out = json!({
            "id": id, "object": "chat.completion", "created": CREATED, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
            "usage": usage(&reply),
            "service_tier": "default",
            "system_fingerprint": null
        });
        return stream::json(
            serde_json::to_vec(&out).unwrap_or_default(),
            &script,
            req.reset,
        );
    }

    let with_usage = include_usage(&body);
    let chunk = |choices: Value, usage: Option<Value>| {
        let mut c = json!({
            "id": id, "object": "chat.completion.chunk", "created": CREATED, "model": model,
            "service_tier": "default", "system_fingerprint": null, "choices": choices
        });
        if with_usage && let Some(map) = c.as_object_mut() {
            map.insert("usage".into(), usage.unwrap_or(Value::Null));
        }
        sse(&c)
    };
    let mut frames = Vec::with_capacity(script.chunks + 4);
    if let Some(r) = &reply.reasoning {
        for piece in split_words(r, script.chunks.max(1)) {
            frames.push(chunk(
                json!([{"index": 0, "delta": {"role": "assistant", "reasoning_content": piece}, "logprobs": null, "finish_reason": null}]),
                None,
            ));
        }
    }
    let finish = match &reply.content {
        Content::Text(_) => {
            frames.push(chunk(
                json!([{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": null}, "logprobs": null, "finish_reason": null}]),
                None,
            ));
            for piece in reply.pieces(script.chunks) {
                frames.push(chunk(
                    json!([{"index": 0, "delta": {"content": piece}, "logprobs": null, "finish_reason": null}]),
                    None,
                ));
            }
            "stop"
        }
        Content::Tool(c) => {
            frames.push(chunk(
                json!([{"index": 0, "delta": {"role": "assistant", "content": null, "refusal": null, "tool_calls": [{
                    "index": 0, "id": format!("call_{}", c.id), "type": "function",
                    "function": {"name": c.name, "arguments": ""}
                }]}, "logprobs": null, "finish_reason": null}]),
                None,
            ));
            for piece in reply.pieces(script.chunks) {
                frames.push(chunk(
                    json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}, "logprobs": null, "finish_reason": null}]),
                    None,
                ));
            }
            "tool_calls"
        }
    };
    frames.push(chunk(
        json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish}]),
        None,
    ));
    if with_usage {
        frames.push(chunk(json!([]), Some(usage(&reply))));
    }
    frames.push(Bytes::from_static(DONE));
    stream::events(frames, Framing::Sse, SSE, &script, req.reset)
}

async fn completions_inner(
    shared: Arc<Shared>,
    provider: Provider,
    deployment: Option<&str>,
    req: SimRequest,
) -> Response {
    let (script, body) = match prologue(&shared, provider, &req).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let Some(model) = model_of(&body, deployment) else {
        return missing_model(provider);
    };
    let Some(prompt_value) = body.get("prompt") else {
        return errors::bad_request(provider, "Missing required parameter: 'prompt'.");
    };
    let prompt = Prompt {
        model,
        words: content_words(prompt_value),
        last_user: content_text(prompt_value),
        tools: Vec::new(),
        tool_choice: ToolChoice::Never,
        after_tool_result: false,
        json_schema: None,
        reasoning: false,
    };
    let reply = prompt.reply(script.chunks);
    let id = format!("cmpl-{}", reply.id);
    let usage = json!({
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.total_tokens()
    });
    if !is_stream(&body) {
        let text = match &reply.content {
            Content::Text(t) => t.as_str(),
            Content::Tool(_) => "",
        };
        let out = json!({
            "id": id, "object": "text_completion", "created": CREATED, "model": model,
            "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": "stop"}],
            "usage": usage
        });
        return stream::json(
            serde_json::to_vec(&out).unwrap_or_default(),
            &script,
            req.reset,
        );
    }
    let with_usage = include_usage(&body);
    let chunk = |choices: Value, usage: Option<Value>| {
        let mut c = json!({
            "id": id, "object": "text_completion", "created": CREATED, "model": model,
            "choices": choices
        });
        if with_usage && let Some(map) = c.as_object_mut() {
            map.insert("usage".into(), usage.unwrap_or(Value::Null));
        }
        sse(&c)
    };
    let pieces = reply.pieces(script.chunks);
    let last = pieces.len().saturating_sub(1);
    let mut frames: Vec<Bytes> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let finish = if i == last {
                json!("stop")
            } else {
                Value::Null
            };
            chunk(
                json!([{"text": p, "index": 0, "logprobs": null, "finish_reason": finish}]),
                None,
            )
        })
        .collect();
    if with_usage {
        frames.push(chunk(json!([]), Some(usage)));
    }
    frames.push(Bytes::from_static(DONE));
    stream::events(frames, Framing::Sse, SSE, &script, req.reset)
}

async fn embeddings_inner(
    shared: Arc<Shared>,
    provider: Provider,
    deployment: Option<&str>,
    req: SimRequest,
) -> Response {
    let (script, body) = match prologue(&shared, provider, &req).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let Some(model) = model_of(&body, deployment) else {
        return missing_model(provider);
    };
    // One input per string, per token-id array, or one token-id array.
    let inputs: Vec<(String, u64)> = match body.get("input") {
        Some(Value::String(s)) => vec![(s.clone(), words(s))],
        Some(Value::Array(items)) if items.iter().all(Value::is_number) => {
            vec![(Value::Array(items.clone()).to_string(), items.len() as u64)]
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => (s.clone(), words(s)),
                Value::Array(toks) => (i.to_string(), toks.len() as u64),
                other => (other.to_string(), 1),
            })
            .collect(),
        _ => return errors::bad_request(provider, "Missing required parameter: 'input'."),
    };
    let dims = dims(body.get("dimensions"));
    let base64 = body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let mut tokens = 0;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, (text, n))| {
            tokens += n.max(&1);
            let v = embedding(text, dims);
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let out = json!({
        "object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
    });
    stream::json(
        serde_json::to_vec(&out).unwrap_or_default(),
        &script,
        req.reset,
    )
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat(State(shared): Sim, req: SimRequest) -> Response {
    chat_inner(shared, Provider::OpenAi, None, req).await
}

/// `POST /v1/completions`.
pub(crate) async fn completions(State(shared): Sim, req: SimRequest) -> Response {
    completions_inner(shared, Provider::OpenAi, None, req).await
}

/// `POST /v1/embeddings`.
pub(crate) async fn embeddings(State(shared): Sim, req: SimRequest) -> Response {
    embeddings_inner(shared, Provider::OpenAi, None, req).await
}

/// `POST /openai/deployments/{deployment}/chat/completions`.
pub(crate) async fn azure_chat(
    State(shared): Sim,
    Path(deployment): Path<String>,
    req: SimRequest,
) -> Response {
    chat_inner(shared, Provider::Azure, Some(&deployment), req).await
}

/// `POST /openai/deployments/{deployment}/completions`.
pub(crate) async fn azure_completions(
    State(shared): Sim,
    Path(deployment): Path<String>,
    req: SimRequest,
) -> Response {
    completions_inner(shared, Provider::Azure, Some(&deployment), req).await
}

/// `POST /openai/deployments/{deployment}/embeddings`.
pub(crate) async fn azure_embeddings(
    State(shared): Sim,
    Path(deployment): Path<String>,
    req: SimRequest,
) -> Response {
    embeddings_inner(shared, Provider::Azure, Some(&deployment), req).await
}

/// Models listed by `GET /v1/models`.
const MODELS: &[&str] = &[
    "gpt-4o-mini",
    "gpt-4o",
    "text-embedding-3-small",
    "gpt-3.5-turbo-instruct",
];

/// `GET /v1/models`.
pub(crate) async fn models(State(shared): Sim, req: SimRequest) -> Response {
    if let Err(resp) = begin(&shared, Provider::OpenAi, &req).await {
        return resp;
    }
    let data: Vec<Value> = MODELS
        .iter()
        .map(|m| json!({"id": m, "object": "model", "created": CREATED, "owned_by": "aigw-simulator"}))
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

/// Unmatched paths: OpenAI-compatible prefixes (`/openai/v1/chat/completions`,
/// `/api/v1/chat/completions`, …), otherwise a 404 in OpenAI's shape.
pub(crate) async fn fallback(State(shared): Sim, req: SimRequest) -> Response {
    let path = req.uri.path().to_owned();
    if req.method == http::Method::POST {
        if path.ends_with("/chat/completions") {
            return chat_inner(shared, Provider::OpenAi, None, req).await;
        }
        if path.ends_with("/completions") {
            return completions_inner(shared, Provider::OpenAi, None, req).await;
        }
        if path.ends_with("/embeddings") {
            return embeddings_inner(shared, Provider::OpenAi, None, req).await;
        }
    }
    errors::error(
        Provider::OpenAi,
        StatusCode::NOT_FOUND,
        &format!("Invalid URL ({} {})", req.method, path),
    )
}
