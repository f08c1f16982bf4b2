//! JSON written straight into a byte buffer, byte for byte as `serde_json` writes it: the
//! shared pieces of the translators that write their output as bytes instead of building
//! `serde_json::Value` trees.

use serde::Serialize;

/// Appends `s` as a JSON string literal. Strings with nothing to escape (almost all of
/// them) are copied whole; the rest go through `serde_json`.
pub(crate) fn push_str(out: &mut Vec<u8>, s: &str) {
    if needs_no_escape(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        push_serde(out, s);
    }
}

/// Appends a number.
pub(crate) fn push_num(out: &mut Vec<u8>, n: u64) {
    push_serde(out, &n);
}

/// Appends a value as `serde_json` writes it.
pub(crate) fn push_serde<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Writing into a Vec cannot fail, and the values written here (no maps with
    // non-string keys) always serialise.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// Appends a JSON value as `serde_json` writes it (compact), without going through its
/// `Serializer`: strings and keys take [`push_str`]'s whole-copy path.
pub(crate) fn push_value(out: &mut Vec<u8>, v: &serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => push_serde(out, n),
        Value::String(s) => push_str(out, s),
        Value::Array(items) => push_list(out, items, push_value),
        Value::Object(map) => push_members(out, b'{', map, b'}'),
    }
}

/// Appends `[item,item,…]`, each item written by `item`.
pub(crate) fn push_list<T>(out: &mut Vec<u8>, items: &[T], mut item: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, x);
    }
    out.push(b']');
}

/// Appends an object's members as `{open}"k":v,…{close}`.
pub(crate) fn push_members(
    out: &mut Vec<u8>,
    open: u8,
    map: &serde_json::Map<String, serde_json::Value>,
    close: u8,
) {
    out.push(open);
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_str(out, k);
        out.push(b':');
        push_value(out, v);
    }
    out.push(close);
}

/// No byte is a control character, `"` or `\` (the bytes `serde_json` escapes).
fn needs_no_escape(bytes: &[u8]) -> bool {
    let escaped = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    let mut chunks = bytes.chunks_exact(16);
    // A whole chunk is checked without stopping early so the loop vectorises.
    for chunk in &mut chunks {
        if chunk.iter().fold(false, |any, &b| any | escaped(b)) {
            return false;
        }
    }
    !chunks.remainder().iter().any(|&b| escaped(b))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    /// Any JSON value: nested objects and arrays of strings (escapes included),
    /// numbers, booleans and null.
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,12}|[\"\\\\\u{0}-\u{1f}a]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(("\\PC{0,6}", inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn values_are_written_as_serde_json_writes_them(v in value()) {
            let mut out = Vec::new();
            super::push_value(&mut out, &v);
            prop_assert_eq!(out, serde_json::to_vec(&v).unwrap());
        }
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for s in [
            "",
            "plain text of some length, past sixteen bytes",
            "a\"b",
            "\\",
            "\u{1f}x",
            "tab\there",
            "é€😀",
            "\u{7f} is not escaped",
        ] {
            let mut out = Vec::new();
            super::push_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap());
        }
    }
}
