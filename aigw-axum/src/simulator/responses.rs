//! OpenAI Responses API (`POST /v1/responses`, `POST /v1/responses/input_tokens`, and
//! Azure's `/openai/v1/…` equivalents), JSON and the typed SSE event stream.

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;

use super::errors::{self, Provider, json_response};
use super::reply::{
    Content, Prompt, Reply, ToolChoice, content_text, content_words, split_words, words,
};
use super::stream::{self, Framing};
use super::{CREATED, Sim, SimRequest, begin};

const SSE: &str = "text/event-stream; charset=utf-8";

/// The text of an input item's `content` or a function call output's `output`.
fn item_text(item: &Value) -> Option<&Value> {
    item.get("content").or_else(|| item.get("output"))
}

/// The neutral prompt of a Responses body.
fn prompt<'a>(body: &'a Value, model: &'a str) -> Prompt<'a> {
    let mut words = body.get("instructions").map_or(0, content_words);
    let mut last_user = String::new();
    let mut after_tool_result = false;
    match body.get("input") {
        Some(Value::String(s)) => {
            words += content_words(&Value::String(s.clone()));
            last_user.clone_from(s);
        }
        Some(Value::Array(items)) => {
            for item in items {
                let content = item_text(item).unwrap_or(&Value::Null);
                words += content_words(content);
                let kind = item
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("message");
                after_tool_result = kind == "function_call_output";
                if kind == "message" && item.get("role").and_then(Value::as_str) == Some("user") {
                    last_user = content_text(content);
                }
            }
        }
        _ => {}
    }
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
                .filter_map(|t| Some((t.get("name")?.as_str()?, t.get("parameters"))))
                .collect()
        })
        .unwrap_or_default();
    let tool_choice = match body.get("tool_choice") {
        Some(Value::String(s)) if s == "none" => ToolChoice::Never,
        Some(Value::String(s)) if s == "required" => ToolChoice::Any,
        Some(Value::Object(o)) => o
            .get("name")
            .and_then(Value::as_str)
            .map_or(ToolChoice::Any, |n| ToolChoice::Named(n.to_owned())),
        _ => ToolChoice::Auto,
    };
    Prompt {
        model,
        words,
        last_user,
        tools,
        tool_choice,
        after_tool_result,
        json_schema: super::reply::format_schema(body.pointer("/text/format")),
        reasoning: asks_reasoning(body),
    }
}

/// `reasoning.effort` (other than `none`) or `reasoning.summary` asks for reasoning.
fn asks_reasoning(body: &Value) -> bool {
    let r = body.get("reasoning");
    let effort = r
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str)
        .is_some_and(|e| e != "none");
    effort || summary_requested(body)
}

/// `reasoning.summary` (`auto`, `concise`, `detailed`): OpenAI then streams a summary of
/// the reasoning; without it the reasoning item comes with an empty summary.
fn summary_requested(body: &Value) -> bool {
    body.pointer("/reasoning/summary")
        .and_then(Value::as_str)
        .is_some_and(|s| s != "none")
}

/// The reasoning item (`rs_…`) of a reply that reasoned, as OpenAI sends it: the
/// summary when one was asked for, no raw reasoning text.
fn reasoning_item(body: &Value, reply: &Reply, done: bool) -> Option<Value> {
    let r = reply.reasoning.as_deref()?;
    let summary = if done && summary_requested(body) {
        json!([{"type": "summary_text", "text": r}])
    } else {
        json!([])
    };
    Some(json!({"id": format!("rs_{}", reply.id), "type": "reasoning", "summary": summary}))
}

/// The index of the answer item in `output` (after the reasoning item, if any).
fn answer_index(reply: &Reply) -> usize {
    usize::from(reply.reasoning.is_some())
}

fn usage(reply: &Reply) -> Value {
    json!({
        "input_tokens": reply.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": reply.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reply.reasoning.as_deref().map_or(0, words)},
        "total_tokens": reply.total_tokens()
    })
}

fn item(reply: &Reply, done: bool, text: &str) -> Value {
    let status = if done { "completed" } else { "in_progress" };
    match &reply.content {
        Content::Text(_) => json!({
            "id": format!("msg_{}", reply.id), "type": "message", "status": status,
            "role": "assistant",
            "content": if done {
                json!([{"type": "output_text", "text": text, "annotations": [], "logprobs": []}])
            } else {
                json!([])
            }
        }),
        Content::Tool(c) => json!({
            "id": format!("fc_{}", reply.id), "type": "function_call", "status": status,
            "call_id": format!("call_{}", c.id), "name": c.name,
            "arguments": if done { c.arguments.as_str() } else { "" }
        }),
    }
}

fn response(body: &Value, model: &str, reply: &Reply, done: bool) -> Value {
    let full = match &reply.content {
        Content::Text(t) => t.as_str(),
        Content::Tool(c) => c.arguments.as_str(),
    };
    json!({
        "id": format!("resp_{}", reply.id), "object": "response", "created_at": CREATED,
        "status": if done { "completed" } else { "in_progress" },
        "error": null, "incomplete_details": null,
        "instructions": body.get("instructions").cloned().unwrap_or(Value::Null),
        "max_output_tokens": body.get("max_output_tokens").cloned().unwrap_or(Value::Null),
        "model": model,
        "output": if done {
            Value::Array(reasoning_item(body, reply, true).into_iter().chain([item(reply, true, full)]).collect())
        } else {
            json!([])
        },
        "parallel_tool_calls": body.get("parallel_tool_calls").cloned().unwrap_or(Value::Bool(true)),
        "previous_response_id": body.get("previous_response_id").cloned().unwrap_or(Value::Null),
        "reasoning": {
            "effort": body.pointer("/reasoning/effort").cloned().unwrap_or(Value::Null),
            "summary": body.pointer("/reasoning/summary").cloned().unwrap_or(Value::Null),
        },
        "store": body.get("store").cloned().unwrap_or(Value::Bool(true)),
        "temperature": 1.0, "top_p": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice").cloned().unwrap_or_else(|| "auto".into()),
        "tools": body.get("tools").cloned().unwrap_or_else(|| json!([])),
        "truncation": "disabled",
        "usage": if done { usage(reply) } else { Value::Null },
        "metadata": {}
    })
}

fn event(seq: &mut u64, mut value: Value) -> Bytes {
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Some(m) = value.as_object_mut() {
        m.insert("sequence_number".into(), (*seq).into());
    }
    *seq += 1;
    let mut out = format!("event: {kind}\ndata: ").into_bytes();
    if serde_json::to_writer(&mut out, &value).is_err() {
        out.truncate(0);
    }
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

fn stream_events(body: &Value, model: &str, reply: &Reply, chunks: usize) -> Vec<Bytes> {
    let mut seq = 0;
    let mut out = Vec::with_capacity(chunks + 8);
    let start = response(body, model, reply, false);
    out.push(event(
        &mut seq,
        json!({"type": "response.created", "response": start}),
    ));
    out.push(event(
        &mut seq,
        json!({"type": "response.in_progress", "response": start}),
    ));
    reasoning_events(body, reply, chunks, &mut seq, &mut out);
    let index = answer_index(reply);
    let added = item(reply, false, "");
    let id = added["id"].clone();
    out.push(event(
        &mut seq,
        json!({"type": "response.output_item.added", "output_index": index, "item": added}),
    ));
    match &reply.content {
        Content::Text(t) => {
            let part = |text: &str| json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
            let at = json!({"item_id": id, "output_index": index, "content_index": 0});
            let with = |mut v: Value, extra: Value| {
                if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                    m.extend(e.clone());
                }
                v
            };
            out.push(event(
                &mut seq,
                with(
                    at.clone(),
                    json!({"type": "response.content_part.added", "part": part("")}),
                ),
            ));
            for piece in reply.pieces(chunks) {
                out.push(event(&mut seq, with(at.clone(), json!({"type": "response.output_text.delta", "delta": piece, "logprobs": []}))));
            }
            out.push(event(
                &mut seq,
                with(
                    at.clone(),
                    json!({"type": "response.output_text.done", "text": t, "logprobs": []}),
                ),
            ));
            out.push(event(
                &mut seq,
                with(
                    at,
                    json!({"type": "response.content_part.done", "part": part(t)}),
                ),
            ));
        }
        Content::Tool(c) => {
            for piece in reply.pieces(chunks) {
                out.push(event(&mut seq, json!({"type": "response.function_call_arguments.delta", "item_id": id, "output_index": index, "delta": piece})));
            }
            out.push(event(&mut seq, json!({"type": "response.function_call_arguments.done", "item_id": id, "output_index": index, "arguments": c.arguments})));
        }
    }
    let full = match &reply.content {
        Content::Text(t) => t.as_str(),
        Content::Tool(c) => c.arguments.as_str(),
    };
    out.push(event(
        &mut seq,
        json!({"type": "response.output_item.done", "output_index": index, "item": item(reply, true, full)}),
    ));
    out.push(event(
        &mut seq,
        json!({"type": "response.completed", "response": response(body, model, reply, true)}),
    ));
    out
}

/// The reasoning item's events, before the answer's: added, the summary part with its
/// text deltas when a summary was asked for, done (OpenAI's order).
fn reasoning_events(
    body: &Value,
    reply: &Reply,
    chunks: usize,
    seq: &mut u64,
    out: &mut Vec<Bytes>,
) {
    let (Some(added), Some(r)) = (
        reasoning_item(body, reply, false),
        reply.reasoning.as_deref(),
    ) else {
        return;
    };
    let id = added["id"].clone();
    out.push(event(
        seq,
        json!({"type": "response.output_item.added", "output_index": 0, "item": added}),
    ));
    if summary_requested(body) {
        let at = |kind: &str| json!({"type": kind, "item_id": id, "output_index": 0, "summary_index": 0});
        let with = |mut v: Value, k: &str, x: Value| {
            v[k] = x;
            v
        };
        out.push(event(
            seq,
            with(
                at("response.reasoning_summary_part.added"),
                "part",
                json!({"type": "summary_text", "text": ""}),
            ),
        ));
        for piece in split_words(r, chunks.max(1)) {
            out.push(event(
                seq,
                with(
                    at("response.reasoning_summary_text.delta"),
                    "delta",
                    json!(piece),
                ),
            ));
        }
        out.push(event(
            seq,
            with(at("response.reasoning_summary_text.done"), "text", json!(r)),
        ));
        out.push(event(
            seq,
            with(
                at("response.reasoning_summary_part.done"),
                "part",
                json!({"type": "summary_text", "text": r}),
            ),
        ));
    }
    if let Some(done) = reasoning_item(body, reply, true) {
        out.push(event(
            seq,
            json!({"type": "response.output_item.done", "output_index": 0, "item": done}),
        ));
    }
}

async fn create_inner(shared: &super::Shared, provider: Provider, req: SimRequest) -> Response {
    let script = match begin(shared, provider, &req).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let body = match req.json(provider) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return errors::bad_request(provider, "Missing required parameter: 'model'.");
    };
    if body.get("input").is_none() {
        return errors::bad_request(provider, "Missing required parameter: 'input'.");
    }
    let reply = prompt(&body, model).reply(script.chunks);
    if body.get("store").and_then(Value::as_bool) != Some(false) {
        shared
            .responses
            .put(response(&body, model, &reply, true), &body);
    }
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        let events = stream_events(&body, model, &reply, script.chunks);
        return stream::events(events, Framing::Sse, SSE, &script, req.reset);
    }
    let out = response(&body, model, &reply, true);
    stream::json(
        serde_json::to_vec(&out).unwrap_or_default(),
        &script,
        req.reset,
    )
}

async fn input_tokens_inner(
    shared: &super::Shared,
    provider: Provider,
    req: SimRequest,
) -> Response {
    if let Err(r) = begin(shared, provider, &req).await {
        return r;
    }
    let body = match req.json(provider) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let p = prompt(&body, model);
    json_response(
        http::StatusCode::OK,
        &json!({"object": "response.input_tokens", "input_tokens": p.words}),
    )
}

/// `POST /v1/responses`.
pub(crate) async fn create(State(shared): Sim, req: SimRequest) -> Response {
    create_inner(&shared, Provider::OpenAi, req).await
}

/// `POST /v1/responses/input_tokens`.
pub(crate) async fn input_tokens(State(shared): Sim, req: SimRequest) -> Response {
    input_tokens_inner(&shared, Provider::OpenAi, req).await
}

/// `POST /openai/v1/responses` (Azure OpenAI v1 API; `model` names the deployment).
pub(crate) async fn azure_create(State(shared): Sim, req: SimRequest) -> Response {
    create_inner(&shared, Provider::Azure, req).await
}

/// `POST /openai/v1/responses/input_tokens` (Azure OpenAI v1 API).
pub(crate) async fn azure_input_tokens(State(shared): Sim, req: SimRequest) -> Response {
    input_tokens_inner(&shared, Provider::Azure, req).await
}

/// Responses created with `store` not false, as OpenAI keeps them: the response object
/// and the input, for `GET`/`DELETE /v1/responses/{id}` and `…/input_items`. Bounded:
/// the map is cleared when it reaches its limit (a simulator serves short runs).
#[derive(Debug, Default)]
pub(crate) struct Stored(Mutex<HashMap<String, (Value, Value)>>);

const STORED_LIMIT: usize = 4096;

impl Stored {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Value, Value)>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn put(&self, response: Value, body: &Value) {
        let Some(id) = response
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return;
        };
        let input = match body.get("input") {
            Some(Value::String(t)) => json!([{"type": "message", "role": "user",
                "content": [{"type": "input_text", "text": t}]}]),
            Some(v) => v.clone(),
            None => json!([]),
        };
        let mut map = self.lock();
        if map.len() >= STORED_LIMIT {
            map.clear();
        }
        map.insert(id, (response, input));
    }
}

fn not_found(id: &str) -> Response {
    json_response(
        http::StatusCode::NOT_FOUND,
        &json!({"error": {"message": format!("Response with id '{id}' not found."),
            "type": "invalid_request_error", "param": null, "code": null}}),
    )
}

#[derive(Clone, Copy)]
enum StoredOp {
    Get,
    Delete,
    InputItems,
}

async fn stored_inner(
    shared: &super::Shared,
    provider: Provider,
    id: &str,
    op: StoredOp,
    req: SimRequest,
) -> Response {
    if let Err(r) = begin(shared, provider, &req).await {
        return r;
    }
    let mut map = shared.responses.lock();
    let Some((response, input)) = map.get(id).cloned() else {
        return not_found(id);
    };
    match op {
        StoredOp::Get => json_response(http::StatusCode::OK, &response),
        StoredOp::Delete => {
            map.remove(id);
            json_response(
                http::StatusCode::OK,
                &json!({"id": id, "object": "response", "deleted": true}),
            )
        }
        StoredOp::InputItems => {
            use aigw_core::api::responses::Item;
            use aigw_providers::responses::retrieve;
            let items: Vec<Item> = serde_json::from_value(input).unwrap_or_default();
            let page = retrieve::input_items_page(id, &items, req.uri.query());
            let body: Value = serde_json::from_slice(&page.body).unwrap_or(Value::Null);
            json_response(page.status, &body)
        }
    }
}

/// `GET /v1/responses/{id}`.
pub(crate) async fn retrieve(State(s): Sim, Path(id): Path<String>, req: SimRequest) -> Response {
    stored_inner(&s, Provider::OpenAi, &id, StoredOp::Get, req).await
}

/// `DELETE /v1/responses/{id}`.
pub(crate) async fn delete(State(s): Sim, Path(id): Path<String>, req: SimRequest) -> Response {
    stored_inner(&s, Provider::OpenAi, &id, StoredOp::Delete, req).await
}

/// `GET /v1/responses/{id}/input_items`.
pub(crate) async fn input_items(
    State(s): Sim,
    Path(id): Path<String>,
    req: SimRequest,
) -> Response {
    stored_inner(&s, Provider::OpenAi, &id, StoredOp::InputItems, req).await
}

/// `GET /openai/v1/responses/{id}` (Azure OpenAI v1 API).
pub(crate) async fn azure_retrieve(
    State(s): Sim,
    Path(id): Path<String>,
    req: SimRequest,
) -> Response {
    stored_inner(&s, Provider::Azure, &id, StoredOp::Get, req).await
}

/// `DELETE /openai/v1/responses/{id}` (Azure OpenAI v1 API).
pub(crate) async fn azure_delete(
    State(s): Sim,
    Path(id): Path<String>,
    req: SimRequest,
) -> Response {
    stored_inner(&s, Provider::Azure, &id, StoredOp::Delete, req).await
}

/// `GET /openai/v1/responses/{id}/input_items` (Azure OpenAI v1 API).
pub(crate) async fn azure_input_items(
    State(s): Sim,
    Path(id): Path<String>,
    req: SimRequest,
) -> Response {
    stored_inner(&s, Provider::Azure, &id, StoredOp::InputItems, req).await
}
