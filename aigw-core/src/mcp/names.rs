//! How one client session addresses many servers, in upstream's encodings so that an
//! MCPRoute behaves the same behind either gateway:
//! tools, prompts and resource names become `{backend}__{name}`; resource URIs
//! `{backend}+{uri}` (`ui://{backend}/{rest}` for MCP Apps' `ui://` scheme, which hosts
//! match exactly); the ids of requests a server sends to the client, and the progress
//! tokens in them, `{original}__{i|f|s}__{backend}` so the client's answer finds its way
//! back.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

/// Separator between backend and name (not valid in Kubernetes names nor in base64).
pub(crate) const SEP: &str = "__";
const UI_SCHEME: &str = "ui://";

/// `{backend}__{name}`.
pub(crate) fn downstream_name(backend: &str, name: &str) -> String {
    format!("{backend}{SEP}{name}")
}

/// Splits `{backend}__{name}` at the first separator.
pub(crate) fn upstream_name(full: &str) -> Option<(&str, &str)> {
    full.split_once(SEP)
}

/// The client-facing URI of a backend's resource.
pub(crate) fn downstream_uri(backend: &str, uri: &str) -> String {
    match uri.strip_prefix(UI_SCHEME) {
        Some(rest) => format!("{UI_SCHEME}{backend}/{rest}"),
        None => format!("{backend}+{uri}"),
    }
}

/// The backend and its URI for a client-facing resource URI.
pub(crate) fn upstream_uri(full: &str) -> Option<(&str, String)> {
    if let Some(rest) = full.strip_prefix(UI_SCHEME) {
        let (backend, rest) = rest.split_once('/')?;
        return (!backend.is_empty()).then(|| (backend, format!("{UI_SCHEME}{rest}")));
    }
    let (backend, uri) = full.split_once('+')?;
    Some((backend, uri.to_string()))
}

/// Encodes a JSON-RPC id or progress token of a backend's message for the client.
pub(crate) fn encode_id(original: &Value, backend: &str) -> Option<String> {
    let (raw, ty) = match original {
        Value::String(s) => (STANDARD.encode(s), "s"),
        Value::Number(n) => match n.as_i64() {
            Some(i) => (i.to_string(), "i"),
            None => (hex::encode(n.as_f64()?.to_le_bytes()), "f"),
        },
        _ => return None,
    };
    Some(format!("{raw}{SEP}{ty}{SEP}{backend}"))
}

/// Decodes an id or token made by [`encode_id`] into the backend and the original.
pub(crate) fn decode_id(encoded: &str) -> Option<(&str, Value)> {
    let mut parts = encoded.split(SEP);
    let (raw, ty, backend) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || backend.is_empty() {
        return None;
    }
    let original = match ty {
        "s" => Value::String(String::from_utf8(STANDARD.decode(raw).ok()?).ok()?),
        "i" => Value::from(raw.parse::<i64>().ok()?),
        "f" => {
            let bytes: [u8; 8] = hex::decode(raw).ok()?.try_into().ok()?;
            Value::from(f64::from_le_bytes(bytes))
        }
        _ => return None,
    };
    Some((backend, original))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn names_split_at_first_separator() {
        assert_eq!(downstream_name("gh", "a__b"), "gh__a__b");
        assert_eq!(upstream_name("gh__a__b"), Some(("gh", "a__b")));
        assert_eq!(upstream_name("nope"), None);
    }

    #[test]
    fn uris() {
        assert_eq!(downstream_uri("fs", "file:///a/b"), "fs+file:///a/b");
        assert_eq!(
            upstream_uri("fs+file:///a/b"),
            Some(("fs", "file:///a/b".into()))
        );
        assert_eq!(downstream_uri("app", "ui://widget/x"), "ui://app/widget/x");
        assert_eq!(
            upstream_uri("ui://app/widget/x"),
            Some(("app", "ui://widget/x".into()))
        );
        assert_eq!(upstream_uri("file:///x"), None);
    }

    #[test]
    fn ids_match_upstream_encoding() {
        assert_eq!(encode_id(&json!(5), "b").unwrap(), "5__i__b");
        assert_eq!(encode_id(&json!("x"), "b").unwrap(), "eA==__s__b");
        assert_eq!(decode_id("eA==__s__b"), Some(("b", json!("x"))));
        assert_eq!(decode_id("1.5__i__b"), None);
        assert_eq!(decode_id("aigw-ping-1"), None);
        let f = encode_id(&json!(1.5), "b").unwrap();
        assert_eq!(decode_id(&f), Some(("b", json!(1.5))));
    }

    proptest! {
        #[test]
        fn string_ids_roundtrip(s in ".*", b in "[a-z][a-z0-9-]{0,20}") {
            let e = encode_id(&json!(s), &b).unwrap();
            prop_assert_eq!(decode_id(&e), Some((b.as_str(), json!(s))));
        }

        #[test]
        fn int_ids_roundtrip(i in any::<i64>()) {
            let e = encode_id(&json!(i), "x").unwrap();
            prop_assert_eq!(decode_id(&e), Some(("x", json!(i))));
        }
    }
}
