//! A small JSON scanner for the stream decoders' hot paths.
//!
//! serde's derived visitors for the upstream chunks' nested shapes (each level an
//! `Option` of a struct, each list grown from empty) were most of the cost of a
//! translated stream. A decoder built on [`Scan`] walks a chunk once, borrowing strings,
//! and builds the same values its serde types would. It reads only what it is sure serde
//! reads the same way: every method returns `None` on anything else (an unexpected
//! type, a number that is not a plain integer, deep nesting, malformed JSON), and the
//! caller then parses the chunk with serde, so errors and edge cases stay serde's.
//! Values it does not model (escaped strings, raw JSON, deeply nested skipped values)
//! are read by serde itself; skipped fields are checked by the JSON grammar on the way,
//! as serde's `IgnoredAny` checks them.

use serde::de::IgnoredAny;
use std::borrow::Cow;

/// The high bit of each byte of `w` that is `"`, `\\` or a control character, and
/// possibly of bytes after the first such byte (borrows propagate upwards), so the
/// lowest set bit marks the first one.
pub(crate) const fn special(w: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let quote = w ^ (LO * b'"' as u64);
    let backslash = w ^ (LO * b'\\' as u64);
    let zero_quote = quote.wrapping_sub(LO) & !quote;
    let zero_backslash = backslash.wrapping_sub(LO) & !backslash;
    let control = w.wrapping_sub(LO * 0x20) & !w;
    (zero_quote | zero_backslash | control) & HI
}

/// Where the plain part of the string starting at `j` may end: at or before the first
/// `"`, `\\` or control character (or where fewer than eight bytes are left).
///
/// Most strings (keys, roles, usage counters, model versions) end within their first
/// four words, found with [`special`] without a call (Gemini's usage keys and
/// `thoughtSignature` are 16–23 bytes: past two words, the call and its set-up cost
/// more than the two words more). A longer one is searched with `memchr2` for its
/// quote or backslash and the span before it checked for control characters with a
/// min fold (both vectorised): eight bytes a step cost ≈ 3 instructions a byte on a
/// 100-byte text.
fn plain_end(b: &[u8], mut j: usize) -> usize {
    for _ in 0..4 {
        let Some(word) = b.get(j..j + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) else {
            return j;
        };
        let stop = special(u64::from_le_bytes(word));
        if stop != 0 {
            return j + (stop.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    let from = j;
    let rest = &b[from..];
    match memchr::memchr2(b'"', b'\\', rest) {
        Some(k) if rest[..k].iter().fold(u8::MAX, |lo, &c| lo.min(c)) >= 0x20 => from + k,
        // A control character (serde's error) or no end: byte by byte from here.
        _ => from,
    }
}

/// Nesting [`Scan::skip`] walks by hand before it hands the value to serde.
const SKIP_DEPTH: u32 = 16;

/// A position in a JSON text.
pub(crate) struct Scan<'a> {
    s: &'a str,
    i: usize,
}

/// Sets a field once: a second occurrence is serde's "duplicate field" error.
pub(crate) fn set<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

impl<'a> Scan<'a> {
    /// At the start of `s`.
    pub(crate) const fn new(s: &'a str) -> Self {
        Self { s, i: 0 }
    }

    /// At byte `i` of `s`.
    pub(crate) const fn at(s: &'a str, i: usize) -> Self {
        Self { s, i }
    }

    /// Whether only whitespace is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.s.len()
    }

    /// The position, for [`Self::rewind`].
    pub(crate) const fn pos(&self) -> usize {
        self.i
    }

    /// Goes back to a position from [`Self::pos`] (to let serde read a value the
    /// scanner gave up on part-way).
    pub(crate) const fn rewind(&mut self, to: usize) {
        self.i = to;
    }

    /// The whole text.
    pub(crate) const fn text(&self) -> &'a str {
        self.s
    }

    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.s.as_bytes()
    }

    pub(crate) fn ws(&mut self) {
        let b = self.bytes();
        while self.i < b.len() && matches!(b[self.i], b' ' | b'\n' | b'\r' | b'\t') {
            self.i += 1;
        }
    }

    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.bytes().get(self.i).copied()
    }

    pub(crate) fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// `null` (consumed) or not (nothing consumed).
    pub(crate) fn null(&mut self) -> bool {
        let is = self.peek() == Some(b'n') && self.bytes()[self.i..].starts_with(b"null");
        if is {
            self.i += 4;
        }
        is
    }

    /// A string, borrowed when it has no escapes.
    pub(crate) fn string(&mut self) -> Option<Cow<'a, str>> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.i + 1;
        let b = self.bytes();
        let mut j = plain_end(b, start);
        while let Some(&c) = b.get(j) {
            if c == b'"' {
                self.i = j + 1;
                return self.s.get(start..j).map(Cow::Borrowed);
            }
            if c == b'\\' || c < 0x20 {
                break;
            }
            j += 1;
        }
        if let Some((text, end)) = self.unescape(start, j) {
            self.i = end;
            return Some(Cow::Owned(text));
        }
        // `\u` escapes (and the errors serde reports for control characters).
        self.serde::<String>().map(Cow::Owned)
    }

    /// The rest of a string from `j` (its plain part `start..j` is copied), when its
    /// escapes are all the short ones (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`):
    /// the decoded text and the position after its closing quote. `None` for `\u`
    /// escapes, control characters and anything else, which serde reads. serde's
    /// deserializer cost ≈ 1 k instructions per escaped string (JSON text in tool-call
    /// argument deltas, quotes in text).
    fn unescape(&self, start: usize, mut j: usize) -> Option<(String, usize)> {
        let b = self.bytes();
        let mut out = Vec::with_capacity(j - start + 32);
        out.extend_from_slice(b.get(start..j)?);
        loop {
            match *b.get(j)? {
                b'"' => return String::from_utf8(out).ok().map(|text| (text, j + 1)),
                b'\\' => {
                    out.push(match *b.get(j + 1)? {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        _ => return None,
                    });
                    j += 2;
                }
                0..=0x1f => return None,
                c => {
                    out.push(c);
                    j += 1;
                }
            }
        }
    }

    /// An optional string: `null` is `None`.
    pub(crate) fn opt_string(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null() {
            return Some(None);
        }
        self.string().map(Some)
    }

    /// One value read by serde from here (escaped strings, skipped values, raw JSON).
    /// Deeply nested values are left to serde, whose nesting limit counts from the top
    /// of the chunk (a fresh deserializer here would count from this value).
    pub(crate) fn serde<T: serde::Deserialize<'a>>(&mut self) -> Option<T> {
        self.ws();
        let rest = &self.s[self.i..];
        let mut it = serde_json::Deserializer::from_str(rest).into_iter::<T>();
        let v = it.next()?.ok()?;
        let read = &rest.as_bytes()[..it.byte_offset()];
        let opened = read.iter().filter(|&&c| c == b'[' || c == b'{').count();
        self.i += read.len();
        (opened < 64).then_some(v)
    }

    /// Skips a value of a field the types do not read: walked here when it is plain
    /// JSON a few levels deep, otherwise by serde (`IgnoredAny`), which then reports
    /// the errors. serde's walk cost ≈ 500 instructions for a lone number.
    pub(crate) fn skip(&mut self) -> Option<()> {
        self.skip_nested(0)
    }

    /// Skips a value checked by the JSON grammar, as serde's `IgnoredAny` does (which
    /// also accepts any key, repeated or not); values nested deeper than [`SKIP_DEPTH`]
    /// are left to serde itself.
    fn skip_nested(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' if depth < SKIP_DEPTH => self.object(|s, _| s.skip_nested(depth + 1)),
            b'[' if depth < SKIP_DEPTH => self.array(|s| s.skip_nested(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => self.serde::<IgnoredAny>().map(drop),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.bytes()[self.i..]
            .starts_with(word)
            .then(|| self.i += word.len())
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.bytes().get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    /// A number by the JSON grammar (what follows it is the caller's to check).
    fn number(&mut self) -> Option<()> {
        let b = self.bytes();
        if b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = b.get(self.i) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// A plain non-negative integer.
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.ws();
        let b = self.bytes();
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(d) = b.get(self.i).filter(|c| c.is_ascii_digit()) {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.i += 1;
        }
        let len = self.i - start;
        // No leading zeros, and no fraction or exponent (serde's number rules).
        let ok = len > 0
            && !(len > 1 && b[start] == b'0')
            && !matches!(b.get(self.i), Some(b'.' | b'e' | b'E'));
        ok.then_some(n)
    }

    pub(crate) fn opt_u64(&mut self) -> Option<Option<u64>> {
        if self.null() {
            return Some(None);
        }
        self.u64().map(Some)
    }

    /// Calls `field` for every member of an object (`{` included), keys borrowed.
    pub(crate) fn object(
        &mut self,
        field: impl FnMut(&mut Self, &str) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        self.members(field)
    }

    /// Calls `field` for the members of an object from here (the start of a member's
    /// key) to its `}` (included).
    pub(crate) fn members(
        &mut self,
        mut field: impl FnMut(&mut Self, &str) -> Option<()>,
    ) -> Option<()> {
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            field(self, &key)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Calls `field` for the members of an object after one member's value, to its `}`
    /// (included): how [`Self::members`] goes on from a value.
    pub(crate) fn members_after(
        &mut self,
        field: impl FnMut(&mut Self, &str) -> Option<()>,
    ) -> Option<()> {
        match self.peek()? {
            b',' => {
                self.i += 1;
                self.members(field)
            }
            b'}' => {
                self.i += 1;
                Some(())
            }
            _ => None,
        }
    }

    /// Calls `item` for the elements of an array after one element, to its `]`
    /// (included): how [`Self::array`] goes on from an element.
    pub(crate) fn items_after(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        loop {
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
            item(self)?;
        }
    }

    /// Calls `item` for every element of an array (`[` included).
    pub(crate) fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `true`, `false` or `null` (`None`).
    pub(crate) fn opt_bool(&mut self) -> Option<Option<bool>> {
        if self.null() {
            return Some(None);
        }
        let rest = &self.bytes()[self.i..];
        if rest.starts_with(b"true") {
            self.i += 4;
            Some(Some(true))
        } else if rest.starts_with(b"false") {
            self.i += 5;
            Some(Some(false))
        } else {
            None
        }
    }
}

/// Generators of JSON text for the scanners' property tests: members in any order,
/// some of them of types the scanned types do not accept, unknown members, escapes.
/// `raw` (valid JSON) without insignificant whitespace, as a `serde_json::Value` round
/// trip writes it, for the common shape: strings without escapes, integers, objects
/// without repeated keys. `None` for anything else (escapes and floats, which the round
/// trip rewrites; repeated keys, which it merges; deep nesting), for the caller's
/// round trip.
pub(crate) fn compact(raw: &str) -> Option<String> {
    let mut s = Scan::new(raw);
    let mut out = String::with_capacity(raw.len());
    s.compact_value(&mut out, 0)?;
    s.at_end().then_some(out)
}

impl<'a> Scan<'a> {
    fn compact_value(&mut self, out: &mut String, depth: usize) -> Option<()> {
        if depth > 32 {
            return None;
        }
        match self.peek()? {
            b'"' => {
                let Cow::Borrowed(v) = self.string()? else {
                    return None;
                };
                out.push('"');
                out.push_str(v);
                out.push('"');
            }
            b'{' => {
                self.i += 1;
                out.push('{');
                let mut keys: Vec<&'a str> = Vec::new();
                if self.eat(b'}').is_none() {
                    loop {
                        // An escaped key would be compared and written decoded.
                        let Cow::Borrowed(k) = self.string()? else {
                            return None;
                        };
                        if keys.contains(&k) {
                            return None;
                        }
                        keys.push(k);
                        self.eat(b':')?;
                        if keys.len() > 1 {
                            out.push(',');
                        }
                        out.push('"');
                        out.push_str(k);
                        out.push_str("\":");
                        self.compact_value(out, depth + 1)?;
                        match self.peek()? {
                            b',' => self.i += 1,
                            b'}' => {
                                self.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                out.push('}');
            }
            b'[' => {
                out.push('[');
                let mut first = true;
                self.array(|s| {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    s.compact_value(out, depth + 1)
                })?;
                out.push(']');
            }
            b't' | b'f' => {
                let v = self.opt_bool()??;
                out.push_str(if v { "true" } else { "false" });
            }
            b'n' => {
                self.null().then_some(())?;
                out.push_str("null");
            }
            _ => {
                let neg = self.bytes()[self.i] == b'-';
                if neg {
                    self.i += 1;
                }
                let start = self.i;
                let n = self.u64()?;
                // Within i64 either way, so the round trip writes the same digits.
                if n > i64::MAX as u64 || (neg && n == 0) {
                    return None;
                }
                if neg {
                    out.push('-');
                }
                out.push_str(self.s.get(start..self.i)?);
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::Scan;
    use serde::de::IgnoredAny;

    #[test]
    fn compact_reads_the_usual_arguments() {
        let raw = "{ \"location\": \"Tokyo\", \"days\": [1, -2], \"x\": {\"y\": null} }";
        assert_eq!(
            super::compact(raw).as_deref(),
            Some(r#"{"location":"Tokyo","days":[1,-2],"x":{"y":null}}"#)
        );
    }
    use proptest::prelude::*;

    /// Any JSON text: nested values with whitespace, escapes, floats, repeated keys.
    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            Just("-0".to_owned()),
            Just("1.50".to_owned()),
            Just("1e3".to_owned()),
            Just("18446744073709551615".to_owned()),
            "[a-z é]{0,6}".prop_map(|s| format!("\"{s}\"")),
            Just("\"a\\u00e9\\/\"".to_owned()),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[ {} ]", v.join(" ,\n"))),
                proptest::collection::vec(("[abc]{1,2}", inner), 0..4).prop_map(|kv| {
                    let m: Vec<String> = kv
                        .into_iter()
                        .map(|(k, v)| format!("\"{k}\" : {v}"))
                        .collect();
                    format!("{{ {} }}", m.join(", "))
                }),
            ]
        })
    }

    proptest! {
        /// Compaction writes what the `Value` round trip writes, or leaves it to it.
        #[test]
        fn compact_is_the_value_round_trip(raw in json_text()) {
            let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
            if let Some(ours) = super::compact(&raw) {
                prop_assert_eq!(ours, v.to_string());
            }
        }

        /// A skipped value is one serde's `IgnoredAny` accepts, whole or damaged.
        #[test]
        fn skipping_is_serdes_ignored_any(raw in json_text(), cut in 0usize..200) {
            let cut = raw.floor_char_boundary(cut.min(raw.len()));
            for text in [raw.clone(), raw[..cut].to_owned(), format!("{raw}x"), format!("[{raw}")] {
                let mut scan = Scan::new(&text);
                let ours = scan.skip().is_some() && scan.at_end();
                let serde = serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
                prop_assert_eq!(ours, serde, "{}", text);
            }
        }

        /// Long plain runs (the `memchr2` search) end where serde says too.
        #[test]
        fn long_strings_are_read_as_serde_reads_them(
            s in "[a é]{0,70}[a\"\\\\\u{1f}]?[a é]{0,20}",
        ) {
            let raw = format!("\"{s}\"");
            let serde = serde_json::from_str::<String>(&raw).ok();
            let mut scan = Scan::new(&raw);
            let ours = scan.string().map(|c| c.into_owned()).filter(|_| scan.at_end());
            prop_assert_eq!(ours, serde);
        }

        /// Strings end where serde says, borrowed or decoded the same, whatever the
        /// position of quotes, escapes and control characters in the eight-byte words.
        #[test]
        fn strings_are_read_as_serde_reads_them(s in "[a\"\\\\/\u{1f}\u{8}\u{c}\n\r\t é]{0,40}", pad in 0usize..9) {
            let text = format!("{}{}", " ".repeat(pad), serde_json::to_string(&s).unwrap());
            let mut scan = Scan::new(&text);
            let read = scan.string().map(|c| c.into_owned());
            prop_assert_eq!(read.as_deref(), Some(s.as_str()));
            prop_assert!(scan.at_end());
            // Raw (unescaped) text: what serde rejects is not read.
            let raw = format!("\"{s}\"");
            let serde = serde_json::from_str::<String>(&raw).ok();
            let mut scan = Scan::new(&raw);
            let ours = scan.string().map(|c| c.into_owned()).filter(|_| scan.at_end());
            prop_assert_eq!(ours, serde);
        }

        /// Escapes written in any form serde reads (`\/`, `\u`, the short ones) are
        /// decoded as serde decodes them, or left to it.
        #[test]
        fn escaped_strings_are_decoded_as_serde_decodes_them(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("\\/"), Just("\\\""), Just("\\\\"), Just("\\b"), Just("\\f"),
                    Just("\\n"), Just("\\r"), Just("\\t"), Just("\\u00e9"), Just("\\ud800"),
                    Just("\\x"), Just("\u{1}"), Just("é"), Just("plain text "), Just("\\"),
                ],
                0..8,
            ),
        ) {
            let raw = format!("\"{}\"", parts.concat());
            let serde = serde_json::from_str::<String>(&raw).ok();
            let mut scan = Scan::new(&raw);
            let ours = scan.string().map(|c| c.into_owned()).filter(|_| scan.at_end());
            prop_assert_eq!(ours, serde);
        }

        /// A value skipped here is one serde's `IgnoredAny` reads; truncated or
        /// damaged, it is not skipped unless serde reads it.
        #[test]
        fn skipped_values_are_what_serde_ignores(raw in json_text(), cut in 0usize..200, junk in "[-+.eE0-9x]{0,2}") {
            let cut = raw.floor_char_boundary(cut.min(raw.len()));
            for text in [raw.clone(), raw[..cut].to_owned(), format!("{}{junk}{}", &raw[..cut], &raw[cut..])] {
                let mut scan = Scan::new(&text);
                if scan.skip_nested(0).is_some() && scan.at_end() {
                    prop_assert!(serde_json::from_str::<IgnoredAny>(&text).is_ok(), "{}", text);
                }
            }
        }
    }

    #[test]
    fn numbers_are_skipped_as_serde_ignores_them() {
        for text in [
            "0", "-0", "12", "-", "01", "1.", "1.5", ".5", "1e", "1e+", "1E-7", "-1.25e10", "2x",
            "1.5.5", "00", "-a", "1e5e",
        ] {
            let mut scan = Scan::new(text);
            let ours = scan.skip_nested(0).is_some() && scan.at_end();
            let theirs = serde_json::from_str::<IgnoredAny>(text).is_ok();
            assert_eq!(ours, theirs, "{text}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod strategies {
    use proptest::prelude::*;

    /// JSON text of a string, with escapes and non-ASCII now and then.
    pub(crate) fn text() -> impl Strategy<Value = String> {
        prop_oneof!["[a-zA-Z ]{0,12}", "\\PC{0,8}", "[a\"\\\\\n\t\u{1}é]{0,6}",]
            .prop_map(|s| serde_json::to_string(&s).unwrap())
    }

    /// A member `"key":value` from a choice of forms, some of them not what the types
    /// read (wrong types, nulls, floats, unknown fields).
    pub(crate) fn member(
        key: &'static str,
        values: Vec<BoxedStrategy<String>>,
    ) -> BoxedStrategy<String> {
        proptest::strategy::Union::new(values)
            .prop_map(move |v| format!("\"{key}\":{v}"))
            .boxed()
    }

    pub(crate) fn int() -> BoxedStrategy<String> {
        prop_oneof![
            12 => (0u64..5000).prop_map(|n| n.to_string()),
            1 => Just("null".to_owned()),
            1 => Just("1.5".to_owned()),
            1 => Just("-1".to_owned()),
            1 => Just("007".to_owned()),
            1 => Just("18446744073709551616".to_owned()),
        ]
        .boxed()
    }

    pub(crate) fn string_or_odd() -> BoxedStrategy<String> {
        prop_oneof![12 => text(), 1 => Just("null".to_owned()), 1 => Just("3".to_owned())].boxed()
    }

    pub(crate) fn unknown() -> BoxedStrategy<String> {
        prop_oneof![
            Just("\"role\":\"model\"".to_owned()),
            Just(
                "\"safetyRatings\":[{\"category\":\"X\",\"probability\":\"NEGLIGIBLE\"}]"
                    .to_owned()
            ),
            Just("\"avgLogprobs\":-0.25e1".to_owned()),
            Just("\"x\":{\"y\":[1,2,{\"z\":null}]}".to_owned()),
        ]
        .boxed()
    }

    /// An object of some of `members` in any order, now and then one twice.
    pub(crate) fn object(members: Vec<BoxedStrategy<String>>, ws: bool) -> BoxedStrategy<String> {
        let n = members.len();
        (members, proptest::collection::vec(0..n, 0..n + 2), Just(ws))
            .prop_map(|(values, order, ws)| {
                let sep = if ws { ", " } else { "," };
                let picked: Vec<&str> = order.iter().map(|&i| values[i].as_str()).collect();
                format!("{{{}}}", picked.join(sep))
            })
            .boxed()
    }

    /// An object with every `required` member and some of the `optional` ones, in any
    /// order.
    pub(crate) fn record(
        required: Vec<BoxedStrategy<String>>,
        optional: Vec<BoxedStrategy<String>>,
        ws: bool,
    ) -> BoxedStrategy<String> {
        let optional: Vec<_> = optional.into_iter().map(proptest::option::of).collect();
        (required, optional)
            .prop_flat_map(|(mut all, some)| {
                all.extend(some.into_iter().flatten());
                Just(all).prop_shuffle()
            })
            .prop_map(move |m| format!("{{{}}}", m.join(if ws { ", " } else { "," })))
            .boxed()
    }

    /// A scanner's reading of a text, as `Debug` text (`None` when it leaves the text
    /// to serde).
    pub(crate) type Reading = fn(&str) -> Option<String>;
    /// serde's reading of a text, as `Debug` text.
    pub(crate) type SerdeReading = fn(&str) -> Result<String, serde_json::Error>;

    /// The scanner reads `data` as serde does, or leaves it to serde; so for a
    /// truncation of it and with bytes around it (malformed, always left to serde).
    pub(crate) fn agrees(
        data: &str,
        cut: usize,
        scan: Reading,
        serde: SerdeReading,
    ) -> Result<(), TestCaseError> {
        let cut = data.floor_char_boundary(cut.min(data.len()));
        for text in [
            data.to_owned(),
            data[..cut].to_owned(),
            format!(" {data}\n"),
            format!("{data}x"),
        ] {
            if let Some(ours) = scan(&text) {
                let theirs =
                    serde(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
                prop_assert_eq!(ours, theirs, "{}", text);
            }
        }
        Ok(())
    }

    /// A property over `strategy` means something only if the scanner reads many of
    /// the generated texts itself rather than leaving them all to serde.
    pub(crate) fn assert_often_scanned(
        strategy: &BoxedStrategy<String>,
        scan: Reading,
        serde: SerdeReading,
    ) {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let (mut scanned, mut valid) = (0, 0);
        for _ in 0..400 {
            let data = strategy.new_tree(&mut runner).unwrap().current();
            valid += usize::from(serde(&data).is_ok());
            scanned += usize::from(scan(&data).is_some());
        }
        assert!(
            scanned * 2 >= valid && scanned >= 50,
            "{scanned} scanned of {valid} valid"
        );
    }
}
