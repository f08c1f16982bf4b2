//! Rewrites of messages crossing the gateway, so that one client sees one server:
//! names and URIs namespaced by backend, server→client request ids and progress tokens
//! tagged with their backend, and the client's request id restored on every answer.

use super::jsonrpc::{Kind, Message};
use super::names::{self, downstream_uri};
use serde_json::Value;

/// Rewrites a message a backend sent while serving a client request.
///
/// `request` is the client's method and id when the message may be the answer to it.
pub(crate) fn from_backend(msg: &mut Message, backend: &str, request: Option<(&str, &Value)>) {
    match msg.kind() {
        Some(Kind::Response) => {
            if let Some((method, id)) = request {
                msg.set_id(id.clone());
                if let Some(result) = msg.result_mut() {
                    response_result(method, result, backend);
                }
            }
        }
        Some(Kind::Request) => {
            if let Some(id) = msg.id().and_then(|id| names::encode_id(id, backend)) {
                msg.set_id(Value::String(id));
            }
            if let Some(meta) = msg
                .params_mut()
                .and_then(|p| p.get_mut("_meta"))
                .and_then(Value::as_object_mut)
                && let Some(t) = meta
                    .get("progressToken")
                    .and_then(|t| names::encode_id(t, backend))
            {
                meta.insert("progressToken".into(), Value::String(t));
            }
        }
        Some(Kind::Notification) => notification(msg, backend),
        None => {}
    }
}

fn notification(msg: &mut Message, backend: &str) {
    let method = msg.method().to_string();
    let Some(p) = msg.params_mut() else { return };
    match method.as_str() {
        "notifications/resources/updated" => {
            if let Some(Value::String(uri)) = p.get_mut("uri") {
                *uri = downstream_uri(backend, uri);
            }
        }
        // The server cancels a request it sent to the client: name it as the client
        // knows it.
        "notifications/cancelled" => {
            if let Some(id) = p
                .get("requestId")
                .and_then(|id| names::encode_id(id, backend))
            {
                p.insert("requestId".into(), Value::String(id));
            }
        }
        _ => {}
    }
}

fn response_result(method: &str, result: &mut Value, backend: &str) {
    match method {
        "resources/read" => {
            for c in items(result, "contents") {
                rewrite_uri(c, backend);
            }
        }
        "tools/call" => {
            for c in items(result, "content") {
                match c.get("type").and_then(Value::as_str) {
                    Some("resource_link") => rewrite_uri(c, backend),
                    Some("resource") => {
                        if let Some(r) = c.get_mut("resource") {
                            rewrite_uri(r, backend);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

fn items<'a>(v: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    v.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

fn rewrite_uri(v: &mut Value, backend: &str) {
    if let Some(Value::String(uri)) = v.get_mut("uri") {
        *uri = downstream_uri(backend, uri);
    }
}

/// Namespaces one entry of a list result (`tools`, `prompts`, `resources`,
/// `resourceTemplates`) and any MCP Apps resource URI in its `_meta`.
pub(crate) fn list_entry(kind: &str, entry: &mut Value, backend: &str) {
    if let Some(Value::String(name)) = entry.get_mut("name") {
        *name = names::downstream_name(backend, name);
    }
    match kind {
        "resources" => rewrite_uri(entry, backend),
        "resourceTemplates" => {
            if let Some(Value::String(t)) = entry.get_mut("uriTemplate") {
                *t = downstream_uri(backend, t);
            }
        }
        _ => {}
    }
    if let Some(meta) = entry.get_mut("_meta").and_then(Value::as_object_mut) {
        if let Some(Value::String(u)) = meta.get_mut("ui/resourceUri") {
            *u = downstream_uri(backend, u);
        }
        if let Some(Value::String(u)) = meta.get_mut("ui").and_then(|ui| ui.get_mut("resourceUri"))
        {
            *u = downstream_uri(backend, u);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(v: Value) -> Message {
        Message::decode(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn answers_get_the_client_id_and_namespaced_uris() {
        let mut m = msg(
            json!({"jsonrpc":"2.0","id":0,"result":{"contents":[{"uri":"file:///a","text":"x"}]}}),
        );
        from_backend(&mut m, "fs", Some(("resources/read", &json!("c-7"))));
        assert_eq!(m.id(), Some(&json!("c-7")));
        assert_eq!(m.result().unwrap()["contents"][0]["uri"], "fs+file:///a");

        let mut m = msg(json!({"jsonrpc":"2.0","id":0,"result":{"content":[
            {"type":"text","text":"t"},{"type":"resource_link","uri":"mem://x","name":"x"},
            {"type":"resource","resource":{"uri":"mem://y","text":"y"}}]}}));
        from_backend(&mut m, "b", Some(("tools/call", &json!(3))));
        let c = &m.result().unwrap()["content"];
        assert_eq!(
            (c[1]["uri"].as_str(), c[2]["resource"]["uri"].as_str()),
            (Some("b+mem://x"), Some("b+mem://y"))
        );
    }

    #[test]
    fn server_requests_are_tagged() {
        let mut m = msg(
            json!({"jsonrpc":"2.0","id":4,"method":"sampling/createMessage","params":{"_meta":{"progressToken":"p"},"messages":[]}}),
        );
        from_backend(&mut m, "llm", None);
        assert_eq!(m.id(), Some(&json!("4__i__llm")));
        assert_eq!(
            m.params().unwrap()["_meta"]["progressToken"],
            "cA==__s__llm"
        );
        let mut n = msg(
            json!({"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///z"}}),
        );
        from_backend(&mut n, "fs", None);
        assert_eq!(n.params().unwrap()["uri"], "fs+file:///z");
    }

    #[test]
    fn list_entries() {
        let mut t = json!({"name":"echo","_meta":{"ui":{"resourceUri":"ui://w/1"}}});
        list_entry("tools", &mut t, "a");
        assert_eq!(
            t,
            json!({"name":"a__echo","_meta":{"ui":{"resourceUri":"ui://a/w/1"}}})
        );
        let mut r = json!({"name":"cfg","uriTemplate":"file:///{p}"});
        list_entry("resourceTemplates", &mut r, "fs");
        assert_eq!(r["uriTemplate"], "fs+file:///{p}");
    }
}
