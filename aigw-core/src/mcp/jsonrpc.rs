//! JSON-RPC 2.0 messages kept as JSON objects, so fields the gateway does not know
//! (`_meta`, extensions of later spec revisions) pass through untouched.

use serde_json::{Map, Value, json};

/// One JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Message(pub(crate) Map<String, Value>);

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Has `method` and `id`.
    Request,
    /// Has `method`, no `id`.
    Notification,
    /// Has `result` or `error`.
    Response,
}

/// JSON-RPC error codes used by the gateway.
pub(crate) mod code {
    /// Invalid JSON.
    pub(crate) const PARSE_ERROR: i64 = -32700;
    /// Not a valid request object.
    pub(crate) const INVALID_REQUEST: i64 = -32600;
    /// Unknown method.
    pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid params.
    pub(crate) const INVALID_PARAMS: i64 = -32602;
    /// Internal error (a backend failed).
    pub(crate) const INTERNAL_ERROR: i64 = -32603;
}

impl Message {
    /// Decodes one message; a batch (JSON array) or anything else is an error.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => {
                let m = Self(map);
                m.kind()
                    .map(|_| m)
                    .ok_or_else(|| "not a JSON-RPC request, notification or response".into())
            }
            Ok(Value::Array(_)) => Err("JSON-RPC batches are not supported".into()),
            Ok(_) => Err("a JSON-RPC message must be an object".into()),
            Err(e) => Err(format!("invalid JSON: {e}")),
        }
    }

    /// The message's kind, `None` for an object that is none of them.
    pub(crate) fn kind(&self) -> Option<Kind> {
        if self.0.get("method").is_some_and(Value::is_string) {
            Some(if self.0.contains_key("id") {
                Kind::Request
            } else {
                Kind::Notification
            })
        } else if self.0.contains_key("result") || self.0.contains_key("error") {
            Some(Kind::Response)
        } else {
            None
        }
    }

    /// `method`, empty for a response.
    pub(crate) fn method(&self) -> &str {
        self.0.get("method").and_then(Value::as_str).unwrap_or("")
    }

    /// `id`.
    pub(crate) fn id(&self) -> Option<&Value> {
        self.0.get("id")
    }

    /// Replaces `id`.
    pub(crate) fn set_id(&mut self, id: Value) {
        self.0.insert("id".into(), id);
    }

    /// `params` (an object when present).
    pub(crate) fn params(&self) -> Option<&Map<String, Value>> {
        self.0.get("params").and_then(Value::as_object)
    }

    /// `params`, mutable (an object when present).
    pub(crate) fn params_mut(&mut self) -> Option<&mut Map<String, Value>> {
        self.0.get_mut("params")?.as_object_mut()
    }

    /// A string parameter.
    pub(crate) fn param_str(&self, key: &str) -> Option<&str> {
        self.params()?.get(key)?.as_str()
    }

    /// `result`.
    pub(crate) fn result(&self) -> Option<&Value> {
        self.0.get("result")
    }

    /// `result`, mutable.
    pub(crate) fn result_mut(&mut self) -> Option<&mut Value> {
        self.0.get_mut("result")
    }

    /// `error`.
    pub(crate) fn error(&self) -> Option<&Value> {
        self.0.get("error")
    }

    /// A request.
    pub(crate) fn request(id: Value, method: &str, params: Value) -> Self {
        Self::from_value(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
    }

    /// A notification.
    pub(crate) fn notification(method: &str, params: Value) -> Self {
        Self::from_value(json!({"jsonrpc": "2.0", "method": method, "params": params}))
    }

    /// A successful response.
    pub(crate) fn response(id: Value, result: Value) -> Self {
        Self::from_value(json!({"jsonrpc": "2.0", "id": id, "result": result}))
    }

    /// An error response (`id` null when the request's is unknown).
    pub(crate) fn error_response(id: Option<Value>, code: i64, message: &str) -> Self {
        Self::from_value(json!({
            "jsonrpc": "2.0",
            "id": id.unwrap_or(Value::Null),
            "error": {"code": code, "message": message},
        }))
    }

    fn from_value(v: Value) -> Self {
        match v {
            Value::Object(m) => Self(m),
            _ => Self(Map::new()),
        }
    }

    /// The message as JSON text.
    pub(crate) fn encode(&self) -> String {
        // Serialising a map of JSON values cannot fail.
        serde_json::to_string(&self.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let r = Message::decode(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).unwrap();
        assert_eq!(r.kind(), Some(Kind::Request));
        let n =
            Message::decode(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(n.kind(), Some(Kind::Notification));
        let s = Message::decode(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert_eq!(s.kind(), Some(Kind::Response));
        assert!(Message::decode(b"[]").is_err());
        assert!(Message::decode(b"{}").is_err());
        assert!(Message::decode(b"{").is_err());
    }

    #[test]
    fn unknown_fields_survive() {
        let raw = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","_meta":{"x":[1]}},"ext":true}"#;
        let m = Message::decode(raw.as_bytes()).unwrap();
        assert_eq!(m.encode(), raw);
    }
}
