//! Vertex AI: Gemini `generateContent` / `streamGenerateContent` (`alt=sse` or a JSON
//! array), `predict` and `embedContent` embeddings, `countTokens`, and Anthropic models
//! through `rawPredict` / `streamRawPredict`.

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};

use super::anthropic;
use super::errors::{self, Provider, json_response};
use super::reply::{
    Content, Prompt, Reply, ToolChoice, content_text, content_words, dims, embedding,
    is_tool_result, split_words, words,
};
use super::stream::{self, Framing};
use super::{Sim, SimRequest, begin};

/// Path parameters of `/{version}/projects/{p}/locations/{l}/publishers/{pub}/models/{m:action}`.
#[derive(serde::Deserialize)]
pub(crate) struct VertexPath {
    #[allow(dead_code)]
    version: String,
    #[allow(dead_code)]
    project: String,
    #[allow(dead_code)]
    location: String,
    publisher: String,
    action: String,
}

fn not_found(provider: Provider, what: &str) -> Response {
    errors::error(
        provider,
        StatusCode::NOT_FOUND,
        &format!("The requested method {what} was not found."),
    )
}

/// Routes by publisher and the `:method` suffix of the model segment.
pub(crate) async fn dispatch(
    State(shared): Sim,
    Path(path): Path<VertexPath>,
    req: SimRequest,
) -> Response {
    let Some((model, method)) = path.action.split_once(':') else {
        return not_found(Provider::Vertex, &path.action);
    };
    match (path.publisher.as_str(), method) {
        ("anthropic", "rawPredict") => raw_predict(shared, model, req, false).await,
        ("anthropic", "streamRawPredict") => raw_predict(shared, model, req, true).await,
        ("google", "generateContent") => gemini(&shared, model, req, None).await,
        ("google", "streamGenerateContent") => {
            let sse = req.query_has("alt", "sse");
            gemini(&shared, model, req, Some(sse)).await
        }
        ("google", "predict") => predict(&shared, model, req).await,
        ("google", "embedContent") => embed_content(&shared, req).await,
        ("google", "countTokens") => count_tokens(&shared, model, req).await,
        _ => not_found(Provider::Vertex, method),
    }
}

async fn raw_predict(
    shared: std::sync::Arc<super::Shared>,
    model: &str,
    req: SimRequest,
    streaming: bool,
) -> Response {
    // Vertex takes the model from the path and `anthropic_version` from the body.
    if let Ok(body) = serde_json::from_slice::<Value>(&req.body)
        && body.get("anthropic_version").is_none()
    {
        return errors::bad_request(
            Provider::VertexAnthropic,
            "anthropic_version: Field required",
        );
    }
    anthropic::serve_messages(
        shared,
        Provider::VertexAnthropic,
        Some(model),
        req,
        Some(streaming),
    )
    .await
}

fn prompt<'a>(body: &'a Value, model: &'a str) -> Option<Prompt<'a>> {
    let contents = body.get("contents")?.as_array()?;
    let mut total = body
        .get("systemInstruction")
        .and_then(|s| s.get("parts"))
        .map_or(0, content_words);
    let mut last_user = String::new();
    for c in contents {
        let parts = c.get("parts").unwrap_or(&Value::Null);
        total += content_words(parts);
        let role = c.get("role").and_then(Value::as_str).unwrap_or("user");
        if role == "user" && !is_tool_result(parts) {
            last_user = content_text(parts);
        }
    }
    let after_tool_result = contents
        .last()
        .and_then(|c| c.get("parts"))
        .is_some_and(is_tool_result);
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t.get("functionDeclarations").and_then(Value::as_array))
                .flatten()
                .filter_map(|f| {
                    let schema = f
                        .get("parameters")
                        .or_else(|| f.get("parametersJsonSchema"));
                    Some((f.get("name")?.as_str()?, schema))
                })
                .collect()
        })
        .unwrap_or_default();
    let config = body
        .get("toolConfig")
        .and_then(|t| t.get("functionCallingConfig"));
    let tool_choice = match config.and_then(|c| c.get("mode")).and_then(Value::as_str) {
        Some("NONE") => ToolChoice::Never,
        Some("ANY") => config
            .and_then(|c| c.get("allowedFunctionNames"))
            .and_then(Value::as_array)
            .and_then(|names| names.first())
            .and_then(Value::as_str)
            .map_or(ToolChoice::Any, |n| ToolChoice::Named(n.to_owned())),
        _ => ToolChoice::Auto,
    };
    let generation = body.get("generationConfig");
    let json_schema = generation
        .and_then(|g| {
            g.get("responseJsonSchema")
                .or_else(|| g.get("responseSchema"))
        })
        .cloned()
        .or_else(|| {
            (generation.and_then(|g| g.get("responseMimeType")) == Some(&json!("application/json")))
                .then(|| json!({"type": "object"}))
        });
    let reasoning = generation
        .and_then(|g| g.pointer("/thinkingConfig/includeThoughts"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
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
    let thoughts = reply.reasoning.as_deref().map_or(0, words);
    let mut u = json!({
        "promptTokenCount": reply.prompt_tokens,
        "candidatesTokenCount": reply.completion_tokens - thoughts,
        "totalTokenCount": reply.total_tokens()
    });
    if thoughts > 0 {
        u["thoughtsTokenCount"] = thoughts.into();
    }
    u
}

/// The thought parts of a reply that asked for them (`includeThoughts`).
fn thought_parts(reply: &Reply, chunks: usize) -> Vec<Value> {
    reply.reasoning.as_deref().map_or_else(Vec::new, |r| {
        split_words(r, chunks.max(1))
            .into_iter()
            .map(|p| json!({"text": p, "thought": true}))
            .collect()
    })
}

fn response(reply: &Reply, model: &str, parts: Value, last: bool) -> Value {
    let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
    if last && let Some(c) = candidate.as_object_mut() {
        c.insert("finishReason".into(), json!("STOP"));
    }
    let usage = if last {
        usage(reply)
    } else {
        json!({"promptTokenCount": reply.prompt_tokens, "totalTokenCount": reply.prompt_tokens})
    };
    json!({
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "createTime": "2023-11-14T22:13:20.000000Z",
        "responseId": reply.id
    })
}

fn function_call(reply: &Reply) -> Option<Value> {
    match &reply.content {
        Content::Tool(c) => Some(json!([{"functionCall": {
            "name": c.name,
            "args": serde_json::from_str::<Value>(&c.arguments).unwrap_or_else(|_| json!({}))
        }}])),
        Content::Text(_) => None,
    }
}

/// `generateContent` (`stream = None`) or `streamGenerateContent` (`Some(sse)`).
async fn gemini(
    shared: &super::Shared,
    model: &str,
    req: SimRequest,
    stream: Option<bool>,
) -> Response {
    let script = match begin(shared, Provider::Vertex, &req).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let body = match req.json(Provider::Vertex) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let Some(prompt) = prompt(&body, model) else {
        return errors::bad_request(
            Provider::Vertex,
            "Unable to submit request because it must include at least one parts field, which describes the prompt input.",
        );
    };
    let reply = prompt.reply(script.chunks);
    let Some(sse) = stream else {
        let parts = function_call(&reply).unwrap_or_else(|| match &reply.content {
            Content::Text(t) => json!([{"text": t}]),
            Content::Tool(_) => json!([]),
        });
        let mut all = thought_parts(&reply, 1);
        all.extend(parts.as_array().cloned().unwrap_or_default());
        let out = response(&reply, model, Value::Array(all), true);
        return stream::json(
            serde_json::to_vec(&out).unwrap_or_default(),
            &script,
            req.reset,
        );
    };
    // Gemini streams thoughts first, then function calls whole, text in pieces.
    let mut chunks: Vec<Value> = thought_parts(&reply, script.chunks)
        .into_iter()
        .map(|p| response(&reply, model, json!([p]), false))
        .collect();
    chunks.extend(match function_call(&reply) {
        Some(parts) => vec![response(&reply, model, parts, true)],
        None => {
            let pieces = reply.pieces(script.chunks);
            let last = pieces.len().saturating_sub(1);
            pieces
                .iter()
                .enumerate()
                .map(|(i, p)| response(&reply, model, json!([{"text": p}]), i == last))
                .collect::<Vec<_>>()
        }
    });
    if sse {
        let frames = chunks
            .iter()
            .map(|c| {
                let mut out = b"data: ".to_vec();
                let _ = serde_json::to_writer(&mut out, c);
                out.extend_from_slice(b"\r\n\r\n");
                Bytes::from(out)
            })
            .collect();
        stream::events(
            frames,
            Framing::Sse,
            "text/event-stream",
            &script,
            req.reset,
        )
    } else {
        let n = chunks.len();
        let frames = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut out = if i == 0 {
                    b"[".to_vec()
                } else {
                    b",\r\n".to_vec()
                };
                let _ = serde_json::to_writer(&mut out, c);
                if i + 1 == n {
                    out.push(b']');
                }
                Bytes::from(out)
            })
            .collect();
        stream::events(
            frames,
            Framing::JsonArray,
            "application/json; charset=UTF-8",
            &script,
            req.reset,
        )
    }
}

/// `:predict` with text-embedding instances.
async fn predict(shared: &super::Shared, model: &str, req: SimRequest) -> Response {
    let script = match begin(shared, Provider::Vertex, &req).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let body = match req.json(Provider::Vertex) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    if model.starts_with("imagen") {
        return match super::images_rerank::imagen(&body) {
            Ok(out) => stream::json(
                serde_json::to_vec(&out).unwrap_or_default(),
                &script,
                req.reset,
            ),
            Err(msg) => errors::bad_request(Provider::Vertex, &msg),
        };
    }
    let Some(instances) = body.get("instances").and_then(Value::as_array) else {
        return errors::bad_request(
            Provider::Vertex,
            "Invalid JSON payload: 'instances' is required.",
        );
    };
    let dims = dims(
        body.get("parameters")
            .and_then(|p| p.get("outputDimensionality")),
    );
    let mut chars = 0;
    let predictions: Vec<Value> = instances
        .iter()
        .map(|i| {
            let text = i.get("content").and_then(Value::as_str).unwrap_or_default();
            chars += text.chars().filter(|c| !c.is_whitespace()).count();
            json!({"embeddings": {
                "values": embedding(text, dims),
                "statistics": {"truncated": false, "token_count": words(text).max(1)}
            }})
        })
        .collect();
    let out = json!({"predictions": predictions, "metadata": {"billableCharacterCount": chars}});
    stream::json(
        serde_json::to_vec(&out).unwrap_or_default(),
        &script,
        req.reset,
    )
}

/// `:embedContent`.
async fn embed_content(shared: &super::Shared, req: SimRequest) -> Response {
    let script = match begin(shared, Provider::Vertex, &req).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let body = match req.json(Provider::Vertex) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let Some(parts) = body.get("content").and_then(|c| c.get("parts")) else {
        return errors::bad_request(
            Provider::Vertex,
            "Invalid JSON payload: 'content' is required.",
        );
    };
    let text = content_text(parts);
    let dims = dims(body.get("outputDimensionality"));
    let out = json!({"embedding": {"values": embedding(&text, dims)}});
    stream::json(
        serde_json::to_vec(&out).unwrap_or_default(),
        &script,
        req.reset,
    )
}

/// `:countTokens`.
async fn count_tokens(shared: &super::Shared, model: &str, req: SimRequest) -> Response {
    if let Err(resp) = begin(shared, Provider::Vertex, &req).await {
        return resp;
    }
    let body = match req.json(Provider::Vertex) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    match prompt(&body, model) {
        Some(p) => json_response(StatusCode::OK, &json!({"totalTokens": p.words.max(1)})),
        None => errors::bad_request(
            Provider::Vertex,
            "Invalid JSON payload: 'contents' is required.",
        ),
    }
}
