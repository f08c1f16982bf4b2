//! JSON written straight into a byte buffer, byte for byte as `serde_json` writes it: the
//! shared pieces of the translators that write their output as bytes instead of building
//! `serde_json::Value` trees.

use serde::Serialize;

/// Appends `s` as a JSON string literal. Strings with nothing to escape (almost all of
/// them) are copied whole; the rest are escaped here as `serde_json` escapes them.
// Inlined: a few stores around the copy, and most strings written are short.
#[inline(always)]
pub(crate) fn push_str(out: &mut Vec<u8>, s: &str) {
    if needs_no_escape(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        push_escaped(out, s.as_bytes());
    }
}

/// Appends `prefix` followed by `s` as one JSON string literal (an output item's id:
/// a fixed prefix and the response's id), without building the joined string first.
/// `prefix` must need no escaping.
pub(crate) fn push_prefixed_str(out: &mut Vec<u8>, prefix: &str, s: &str) {
    if needs_no_escape(s.as_bytes()) {
        out.reserve(prefix.len() + s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        push_escaped(out, [prefix, s].concat().as_bytes());
    }
}

/// A string with escapes, written as `serde_json`'s `format_escaped_str` writes it:
/// `\"`, `\\`, the short forms of backspace, form feed, newline, carriage return and
/// tab, `\u00xx` (lowercase hex) for the other control characters, and runs of other
/// bytes copied whole. Going through its serializer cost ≈ 480 instructions per string
/// (the tool-call argument deltas, which are JSON text, all take this path).
fn push_escaped(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 8);
    out.push(b'"');
    let mut run = 0;
    let mut i = 0;
    while i < s.len() {
        // Plain bytes are passed over eight at a time ([`crate::json_scan::special`]
        // marks the first byte to escape): tool-call arguments are JSON text, whose
        // quotes are a few bytes apart, and a byte-by-byte match cost ≈ 20 instructions
        // a byte.
        if let Some(w) = s.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            let stop = crate::json_scan::special(u64::from_le_bytes(word));
            if stop == 0 {
                i += 8;
                continue;
            }
            i += (stop.trailing_zeros() / 8) as usize;
        }
        let b = s[i];
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&s[run..i]);
        run = i + 1;
        i += 1;
        if short.is_empty() {
            let code = [
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ];
            out.extend_from_slice(&code);
        } else {
            out.extend_from_slice(short);
        }
    }
    out.extend_from_slice(&s[run..]);
    out.push(b'"');
}

/// Appends a number (in decimal, as `serde_json` writes it: its serializer cost ≈ 60
/// instructions per number, and the Responses events carry two or three each).
// Inlined: most numbers take the one- or two-digit path, shorter than the call.
#[inline(always)]
pub(crate) fn push_num(out: &mut Vec<u8>, mut n: u64) {
    // Sequence numbers and output indexes, most of the numbers written, are one or two
    // digits: written without the digit loop and the copy out of its buffer.
    if n < 10 {
        // `n` is below ten.
        out.push(b'0' + n as u8);
        return;
    }
    if n < 100 {
        // `n` is below a hundred.
        out.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8]);
        return;
    }
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        // `n % 10` is below ten.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
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
/// [`crate::json_scan::special`] for four bytes.
const fn special4(w: u32) -> u32 {
    const LO: u32 = 0x0101_0101;
    const HI: u32 = 0x8080_8080;
    let quote = w ^ (LO * b'"' as u32);
    let backslash = w ^ (LO * b'\\' as u32);
    let zero_quote = quote.wrapping_sub(LO) & !quote;
    let zero_backslash = backslash.wrapping_sub(LO) & !backslash;
    let control = w.wrapping_sub(LO * 0x20) & !w;
    (zero_quote | zero_backslash | control) & HI
}

fn needs_no_escape(bytes: &[u8]) -> bool {
    let escaped = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    let n = bytes.len();
    if n < 8 {
        // Keys and status words: the first and last four bytes (overlapping), as
        // `json_scan::special` checks eight.
        if n < 4 {
            return !bytes.iter().any(|&b| escaped(b));
        }
        let half = |at: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&bytes[at..at + 4]);
            special4(u32::from_le_bytes(w))
        };
        return (half(0) | half(n - 4)) == 0;
    }
    let mut chunks = bytes.chunks_exact(16);
    // A whole chunk is checked without stopping early so the loop vectorises.
    for chunk in &mut chunks {
        if chunk.iter().fold(false, |any, &b| any | escaped(b)) {
            return false;
        }
    }
    // The rest (all of most strings: keys, ids, short deltas) as the string's last
    // one or two eight-byte words, which may overlap bytes already checked: loaded
    // in place, not copied into a padded buffer first (a call to `memcpy` per string).
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        crate::json_scan::special(u64::from_le_bytes(w))
    };
    let rest = chunks.remainder().len();
    match rest {
        0 => true,
        1..=8 => word(n - 8) == 0,
        _ => (word(n - rest) | word(n - 8)) == 0,
    }
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

    proptest! {
        #[test]
        fn escaped_strings_are_written_as_serde_json_writes_them(
            s in "[\"\\\\\u{0}-\u{1f}\u{7f}a-z é€😀]{0,40}",
        ) {
            let mut out = Vec::new();
            super::push_str(&mut out, &s);
            prop_assert_eq!(out, serde_json::to_vec(&s).unwrap());
        }

        #[test]
        fn prefixed_strings_are_written_as_serde_json_writes_them(
            prefix in "(msg_|rs_|fc_)?",
            s in "[\"\\\\\u{0}-\u{1f}a-z_0-9 é]{0,24}",
        ) {
            let mut out = Vec::new();
            super::push_prefixed_str(&mut out, &prefix, &s);
            prop_assert_eq!(out, serde_json::to_vec(&[prefix, s].concat()).unwrap());
        }

        #[test]
        fn numbers_are_written_as_serde_json_writes_them(n in prop_oneof![0u64..1000, any::<u64>()]) {
            let mut out = Vec::new();
            super::push_num(&mut out, n);
            prop_assert_eq!(out, serde_json::to_vec(&n).unwrap());
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
            "\u{0}\u{8}\u{c}\u{b}\r\n\t\u{1b}[0m \"q\" \\ end",
        ] {
            let mut out = Vec::new();
            super::push_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap());
        }
    }
}
