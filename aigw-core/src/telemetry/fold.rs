//! Folds what the client received into one response object, as the upstream's
//! recorders do with the stream chunks they collect: a chat stream becomes a chat
//! completion, an Anthropic stream a message, a completions stream a completion, a
//! Responses stream its `response.completed` response.

use crate::api::Endpoint;
use serde_json::{Map, Value, json};

/// The response as one JSON object, and whether it came as a stream with at least one
/// event. `None` when the bytes are not the endpoint's JSON or SSE.
pub(crate) fn fold(endpoint: Endpoint, stream: bool, body: &[u8]) -> Option<(Value, bool)> {
    if !stream {
        return serde_json::from_slice::<Value>(body)
            .ok()
            .filter(Value::is_object)
            .map(|v| (v, false));
    }
    let events = sse_data(body);
    let any = !events.is_empty();
    let folded = match endpoint {
        Endpoint::ChatCompletions => chat(&events),
        Endpoint::Completions => completion(&events),
        Endpoint::Messages => message(&events),
        Endpoint::Responses => events
            .iter()
            .rev()
            .find(|e| e.get("type").and_then(Value::as_str) == Some("response.completed"))
            .and_then(|e| e.get("response").cloned())
            .unwrap_or_else(|| json!({})),
        _ => return None,
    };
    Some((folded, any))
}

/// The JSON payloads of the `data:` lines of an SSE body (`[DONE]` and non-JSON
/// payloads skipped).
pub(crate) fn sse_data(body: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    for event in text.split("\n\n") {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if data.is_empty() {
            continue;
        }
        if let Ok(v) = serde_json::from_str::<Value>(&data.join("\n")) {
            out.push(v);
        }
    }
    out
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

#[derive(Default)]
struct ChoiceAcc {
    role: Option<String>,
    content: String,
    has_content: bool,
    finish: Option<Value>,
    tools: Vec<(i64, Map<String, Value>, String)>,
}

fn chat(events: &[Value]) -> Value {
    let mut head: Option<&Value> = None;
    let mut model = None;
    let mut usage = None;
    let mut choices: Vec<(i64, ChoiceAcc)> = Vec::new();
    for e in events {
        head.get_or_insert(e);
        if model.is_none() {
            model = str_of(e, "model").map(str::to_owned);
        }
        if let Some(u) = e.get("usage").filter(|u| u.is_object()) {
            usage = Some(u.clone());
        }
        for c in e
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let idx = c.get("index").and_then(Value::as_i64).unwrap_or(0);
            let pos = match choices.iter().position(|(i, _)| *i == idx) {
                Some(p) => p,
                None => {
                    choices.push((idx, ChoiceAcc::default()));
                    choices.len() - 1
                }
            };
            let acc = &mut choices[pos].1;
            if let Some(f) = c.get("finish_reason").filter(|f| f.is_string()) {
                acc.finish = Some(f.clone());
            }
            let Some(d) = c.get("delta") else { continue };
            if let Some(r) = str_of(d, "role") {
                acc.role = Some(r.to_owned());
            }
            if let Some(t) = d.get("content").and_then(Value::as_str) {
                acc.content.push_str(t);
                acc.has_content = true;
            }
            for t in d
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                tool_delta(acc, t);
            }
        }
    }
    let head = head.cloned().unwrap_or_else(|| json!({}));
    let choices: Vec<Value> = choices
        .into_iter()
        .map(|(idx, acc)| {
            let mut msg = Map::new();
            msg.insert("role".into(), json!(acc.role.unwrap_or_else(|| "assistant".into())));
            if acc.has_content {
                msg.insert("content".into(), json!(acc.content));
            }
            if !acc.tools.is_empty() {
                let calls = acc
                    .tools
                    .into_iter()
                    .map(|(_, mut call, args)| {
                        let f = call.entry("function").or_insert_with(|| json!({}));
                        if let Some(f) = f.as_object_mut() {
                            f.insert("arguments".into(), json!(args));
                        }
                        Value::Object(call)
                    })
                    .collect::<Vec<_>>();
                msg.insert("tool_calls".into(), Value::Array(calls));
            }
            json!({"index": idx, "message": msg, "finish_reason": acc.finish.unwrap_or(json!("stop"))})
        })
        .collect();
    let mut out = json!({
        "id": head.get("id").cloned().unwrap_or(json!("")),
        "object": "chat.completion.chunk",
        "created": head.get("created").cloned().unwrap_or(json!(0)),
        "model": model.unwrap_or_default(),
        "choices": choices,
    });
    if let (Some(u), Some(o)) = (usage, out.as_object_mut()) {
        o.insert("usage".into(), u);
    }
    out
}

fn tool_delta(acc: &mut ChoiceAcc, t: &Value) {
    let idx = t.get("index").and_then(Value::as_i64).unwrap_or(0);
    let pos = match acc.tools.iter().position(|(i, _, _)| *i == idx) {
        Some(p) => p,
        None => {
            acc.tools.push((idx, Map::new(), String::new()));
            acc.tools.len() - 1
        }
    };
    let (_, call, args) = &mut acc.tools[pos];
    for k in ["id", "type"] {
        if let Some(v) = str_of(t, k) {
            call.insert(k.into(), json!(v));
        }
    }
    if let Some(f) = t.get("function") {
        if let Some(n) = str_of(f, "name") {
            call.insert("function".into(), json!({"name": n}));
        }
        if let Some(a) = f.get("arguments").and_then(Value::as_str) {
            args.push_str(a);
        }
    }
}

fn completion(events: &[Value]) -> Value {
    let Some(first) = events.first() else {
        return json!({});
    };
    let mut out = first.clone();
    let mut texts: Vec<(i64, String, Option<Value>)> = Vec::new();
    for e in events {
        for c in e
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let idx = c.get("index").and_then(Value::as_i64).unwrap_or(0);
            let pos = match texts.iter().position(|(i, _, _)| *i == idx) {
                Some(p) => p,
                None => {
                    texts.push((idx, String::new(), None));
                    texts.len() - 1
                }
            };
            if let Some(t) = c.get("text").and_then(Value::as_str) {
                texts[pos].1.push_str(t);
            }
            if let Some(f) = c.get("finish_reason").filter(|f| f.is_string()) {
                texts[pos].2 = Some(f.clone());
            }
        }
    }
    let last = events.last().unwrap_or(first);
    if let Some(o) = out.as_object_mut() {
        for k in ["id", "created", "model"] {
            if let Some(v) = last.get(k) {
                o.insert(k.into(), v.clone());
            }
        }
        if let Some(u) = events
            .iter()
            .rev()
            .find_map(|e| e.get("usage").filter(|u| u.is_object()))
        {
            o.insert("usage".into(), u.clone());
        }
        let choices = texts
            .into_iter()
            .map(|(i, t, f)| json!({"index": i, "text": t, "finish_reason": f.unwrap_or(Value::Null)}))
            .collect();
        o.insert("choices".into(), Value::Array(choices));
    }
    out
}

fn message(events: &[Value]) -> Value {
    let mut msg = json!({"type": "message", "role": "assistant", "content": []});
    let mut blocks: Vec<(Value, String)> = Vec::new();
    for e in events {
        match e.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                if let Some(m) = e.get("message") {
                    msg = m.clone();
                }
            }
            Some("content_block_start") => {
                if let Some(b) = e.get("content_block") {
                    blocks.push((b.clone(), String::new()));
                }
            }
            Some("content_block_delta") => {
                let Some((block, json_acc)) = blocks.last_mut() else {
                    continue;
                };
                let d = e.get("delta").unwrap_or(&Value::Null);
                match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => append(block, "text", d),
                    Some("thinking_delta") => append(block, "thinking", d),
                    Some("input_json_delta") => {
                        json_acc
                            .push_str(d.get("partial_json").and_then(Value::as_str).unwrap_or(""));
                    }
                    _ => {}
                }
            }
            Some("message_delta") => {
                let d = e.get("delta").unwrap_or(&Value::Null);
                if let (Some(o), Some(r)) = (msg.as_object_mut(), d.get("stop_reason")) {
                    o.insert("stop_reason".into(), r.clone());
                }
                if let Some(u) = e.get("usage").and_then(Value::as_object) {
                    merge_usage(&mut msg, u);
                }
            }
            _ => {}
        }
    }
    let content: Vec<Value> = blocks
        .into_iter()
        .map(|(mut b, args)| {
            if !args.is_empty()
                && let (Ok(input), Some(o)) =
                    (serde_json::from_str::<Value>(&args), b.as_object_mut())
            {
                o.insert("input".into(), input);
            }
            b
        })
        .collect();
    if let Some(o) = msg.as_object_mut() {
        o.insert("content".into(), Value::Array(content));
    }
    msg
}

fn append(block: &mut Value, key: &str, delta: &Value) {
    let add = delta.get(key).and_then(Value::as_str).unwrap_or("");
    if let Some(o) = block.as_object_mut() {
        let cur = o.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
        o.insert(key.into(), json!(cur + add));
    }
}

fn merge_usage(msg: &mut Value, u: &Map<String, Value>) {
    let Some(o) = msg.as_object_mut() else { return };
    let usage = o.entry("usage").or_insert_with(|| json!({}));
    if let Some(t) = usage.as_object_mut() {
        for (k, v) in u {
            if !v.is_null() {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_stream_folds_content_tools_and_usage() {
        let body = concat!(
            "data: {\"id\":\"c1\",\"created\":5,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n",
            "data: {\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\",\"tool_calls\":[{\"index\":0,\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n",
            "data: [DONE]\n\n"
        );
        let (v, any) = fold(Endpoint::ChatCompletions, true, body.as_bytes()).unwrap();
        assert!(any);
        assert_eq!(v["choices"][0]["message"]["content"], "Hello");
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        let call = &v["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["id"], "t1");
        assert_eq!(call["function"]["name"], "f");
        assert_eq!(call["function"]["arguments"], "{\"a\":1}");
        assert_eq!(v["usage"]["total_tokens"], 5);
        assert_eq!(v["model"], "m");
    }

    #[test]
    fn anthropic_stream_folds_to_a_message() {
        let body = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"tu\",\"name\":\"f\",\"input\":{}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"x\\\":2}\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":9}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
        let (v, _) = fold(Endpoint::Messages, true, body.as_bytes()).unwrap();
        assert_eq!(v["content"][0]["text"], "Hi");
        assert_eq!(v["content"][1]["input"]["x"], 2);
        assert_eq!(v["stop_reason"], "tool_use");
        assert_eq!(v["usage"]["input_tokens"], 7);
        assert_eq!(v["usage"]["output_tokens"], 9);
    }

    #[test]
    fn completion_stream_concatenates_text() {
        let body = "data: {\"id\":\"a\",\"model\":\"m\",\"choices\":[{\"index\":0,\"text\":\"x\"}]}\n\ndata: {\"id\":\"a\",\"model\":\"m\",\"choices\":[{\"index\":0,\"text\":\"y\",\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        let (v, _) = fold(Endpoint::Completions, true, body.as_bytes()).unwrap();
        assert_eq!(v["choices"][0]["text"], "xy");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
    }
}
