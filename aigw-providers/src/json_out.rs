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
