//! A Gemini stream chunk read by a scanner instead of serde's derived visitors.
//!
//! serde's visitors for the chunk's nested shape (candidates → content → parts, each an
//! `Option` of a struct, each list grown from empty) were most of the cost of a
//! translated Gemini stream. The scanner walks the chunk once, borrowing strings, and
//! builds the same [`Response`]. It reads only what it is sure serde would read the same
//! way: on anything else (an unexpected type, a duplicate field, a number that is not
//! a plain integer, deep nesting, malformed JSON) it gives up and the caller parses the
//! chunk with serde, so errors and edge cases are serde's. A property test checks it
//! against the serde path.

use super::{Candidate, Content, FunctionCall, Part, PromptFeedback, Response, Usage};
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Reads a chunk; `None` when it must be parsed by serde instead.
pub(super) fn response(data: &str) -> Option<Response<'_>> {
    let mut s = Scan { s: data, i: 0 };
    let r = s.response()?;
    s.ws();
    (s.i == data.len()).then_some(r)
}

struct Scan<'a> {
    s: &'a str,
    i: usize,
}

/// Sets a field once: a second occurrence is serde's "duplicate field" error.
fn set<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

impl<'a> Scan<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.s.as_bytes()
    }

    fn ws(&mut self) {
        let b = self.bytes();
        while self.i < b.len() && matches!(b[self.i], b' ' | b'\n' | b'\r' | b'\t') {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.bytes().get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// `null` (consumed) or not (nothing consumed).
    fn null(&mut self) -> bool {
        let is = self.peek() == Some(b'n') && self.bytes()[self.i..].starts_with(b"null");
        if is {
            self.i += 4;
        }
        is
    }

    /// A string, borrowed when it has no escapes.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        if self.peek()? != b'"' {
            return None;
        }
        let rest = &self.bytes()[self.i + 1..];
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[end] == b'"' && !rest[..end].iter().any(|&c| c < 0x20) {
            let start = self.i + 1;
            self.i = start + end + 1;
            return Some(Cow::Borrowed(&self.s[start..start + end]));
        }
        self.serde::<String>().map(Cow::Owned)
    }

    /// An optional string: `null` is `None`.
    fn opt_string(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null() {
            return Some(None);
        }
        self.string().map(Some)
    }

    /// One value read by serde from here (escaped strings, skipped values, raw JSON).
    /// Deeply nested values are left to serde, whose nesting limit counts from the top
    /// of the chunk (a fresh deserializer here would count from this value).
    fn serde<T: serde::Deserialize<'a>>(&mut self) -> Option<T> {
        self.ws();
        let rest = &self.s[self.i..];
        let mut it = serde_json::Deserializer::from_str(rest).into_iter::<T>();
        let v = it.next()?.ok()?;
        let read = &rest.as_bytes()[..it.byte_offset()];
        let opened = read.iter().filter(|&&c| c == b'[' || c == b'{').count();
        self.i += read.len();
        (opened < 64).then_some(v)
    }

    /// Skips a value of a field the types do not read.
    fn skip(&mut self) -> Option<()> {
        if self.peek()? == b'"' {
            return self.string().map(drop);
        }
        self.serde::<IgnoredAny>().map(drop)
    }

    /// A plain non-negative integer.
    fn u64(&mut self) -> Option<u64> {
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

    fn opt_u64(&mut self) -> Option<Option<u64>> {
        if self.null() {
            return Some(None);
        }
        self.u64().map(Some)
    }

    /// Calls `field` for every member of an object (`{` included), keys borrowed.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
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

    /// Calls `item` for every element of an array (`[` included).
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
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

    fn response(&mut self) -> Option<Response<'a>> {
        let (mut candidates, mut usage, mut model, mut id, mut feedback) =
            (None, None, None, None, None);
        self.object(|s, k| match k {
            "candidates" => {
                let mut list = Vec::with_capacity(1);
                s.array(|s| s.candidate().map(|c| list.push(c)))?;
                set(&mut candidates, list)
            }
            "usageMetadata" => {
                let u = if s.null() { None } else { Some(s.usage()?) };
                set(&mut usage, u)
            }
            "modelVersion" => {
                let v = s.opt_string()?;
                set(&mut model, v)
            }
            "responseId" => {
                let v = s.opt_string()?;
                set(&mut id, v)
            }
            "promptFeedback" => {
                let f = if s.null() {
                    None
                } else {
                    let mut reason = None;
                    s.object(|s, k| match k {
                        "blockReason" => {
                            let v = s.opt_string()?;
                            set(&mut reason, v)
                        }
                        _ => s.skip(),
                    })?;
                    Some(PromptFeedback {
                        block_reason: reason.flatten(),
                    })
                };
                set(&mut feedback, f)
            }
            _ => s.skip(),
        })?;
        Some(Response {
            candidates: candidates.unwrap_or_default(),
            usage_metadata: usage.flatten(),
            model_version: model.flatten(),
            response_id: id.flatten(),
            prompt_feedback: feedback.flatten(),
        })
    }

    fn usage(&mut self) -> Option<Usage> {
        let mut f: [Option<Option<u64>>; 5] = [None; 5];
        self.object(|s, k| {
            let slot = match k {
                "promptTokenCount" => 0,
                "candidatesTokenCount" => 1,
                "thoughtsTokenCount" => 2,
                "cachedContentTokenCount" => 3,
                "totalTokenCount" => 4,
                _ => return s.skip(),
            };
            let v = s.opt_u64()?;
            set(&mut f[slot], v)
        })?;
        let [prompt, candidates, thoughts, cached, total] = f.map(Option::flatten);
        Some(Usage {
            prompt_token_count: prompt,
            candidates_token_count: candidates,
            thoughts_token_count: thoughts,
            cached_content_token_count: cached,
            total_token_count: total,
        })
    }

    fn candidate(&mut self) -> Option<Candidate<'a>> {
        let (mut content, mut finish, mut index) = (None, None, None);
        self.object(|s, k| match k {
            "content" => {
                let c = if s.null() {
                    None
                } else {
                    let mut parts = None;
                    s.object(|s, k| match k {
                        "parts" => {
                            let mut list = Vec::with_capacity(1);
                            s.array(|s| s.part().map(|p| list.push(p)))?;
                            set(&mut parts, list)
                        }
                        _ => s.skip(),
                    })?;
                    Some(Content {
                        parts: parts.unwrap_or_default(),
                    })
                };
                set(&mut content, c)
            }
            "finishReason" => {
                let v = s.opt_string()?;
                set(&mut finish, v)
            }
            "index" => {
                let v = match s.opt_u64()? {
                    Some(n) => Some(u32::try_from(n).ok()?),
                    None => None,
                };
                set(&mut index, v)
            }
            _ => s.skip(),
        })?;
        Some(Candidate {
            content: content.flatten(),
            finish_reason: finish.flatten(),
            index: index.flatten(),
        })
    }

    fn part(&mut self) -> Option<Part<'a>> {
        let (mut text, mut thought, mut signature, mut call) = (None, None, None, None);
        self.object(|s, k| match k {
            "text" => {
                let v = s.opt_string()?;
                set(&mut text, v)
            }
            "thought" => {
                let v = if s.null() {
                    None
                } else if s.bytes()[s.i..].starts_with(b"true") {
                    s.i += 4;
                    Some(true)
                } else if s.bytes()[s.i..].starts_with(b"false") {
                    s.i += 5;
                    Some(false)
                } else {
                    return None;
                };
                set(&mut thought, v)
            }
            "thoughtSignature" => {
                let v = s.opt_string()?;
                set(&mut signature, v)
            }
            "functionCall" => {
                let c = if s.null() {
                    None
                } else {
                    Some(s.function_call()?)
                };
                set(&mut call, c)
            }
            _ => s.skip(),
        })?;
        Some(Part {
            text: text.flatten(),
            thought: thought.flatten(),
            thought_signature: signature.flatten(),
            function_call: call.flatten(),
        })
    }

    fn function_call(&mut self) -> Option<FunctionCall<'a>> {
        let (mut id, mut name, mut args) = (None, None, None);
        self.object(|s, k| match k {
            "id" => {
                let v = s.opt_string()?;
                set(&mut id, v)
            }
            // Required and not optional: `null` is serde's error.
            "name" => {
                let v = s.string()?;
                set(&mut name, v)
            }
            "args" => {
                let v = if s.null() {
                    None
                } else {
                    Some(s.serde::<&'a RawValue>()?)
                };
                set(&mut args, v)
            }
            _ => s.skip(),
        })?;
        Some(FunctionCall {
            id: id.flatten(),
            name: name?,
            args: args.flatten(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// The scanner reads a chunk as serde does, or leaves it to serde.
    fn agrees(data: &str) -> Result<(), TestCaseError> {
        let serde: Result<Response<'_>, _> = serde_json::from_str(data);
        if let Some(scanned) = response(data) {
            let serde = serde.map_err(|e| TestCaseError::fail(format!("{e}: {data}")))?;
            prop_assert_eq!(format!("{scanned:?}"), format!("{serde:?}"), "{}", data);
        }
        Ok(())
    }

    /// JSON text of a string, with escapes and non-ASCII now and then.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof!["[a-zA-Z ]{0,12}", "\\PC{0,8}", "[a\"\\\\\n\t\u{1}é]{0,6}",]
            .prop_map(|s| serde_json::to_string(&s).unwrap())
    }

    /// A member `"key":value` from a choice of forms, some of them not what the types
    /// read (wrong types, nulls, floats, unknown fields).
    fn member(key: &'static str, values: Vec<BoxedStrategy<String>>) -> BoxedStrategy<String> {
        proptest::strategy::Union::new(values)
            .prop_map(move |v| format!("\"{key}\":{v}"))
            .boxed()
    }

    fn int() -> BoxedStrategy<String> {
        prop_oneof![
            (0u64..5000).prop_map(|n| n.to_string()),
            Just("null".to_owned()),
            Just("1.5".to_owned()),
            Just("-1".to_owned()),
            Just("007".to_owned()),
            Just("18446744073709551616".to_owned()),
        ]
        .boxed()
    }

    fn string_or_odd() -> BoxedStrategy<String> {
        prop_oneof![4 => text(), 1 => Just("null".to_owned()), 1 => Just("3".to_owned())].boxed()
    }

    fn unknown() -> BoxedStrategy<String> {
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
    fn object(members: Vec<BoxedStrategy<String>>, ws: bool) -> BoxedStrategy<String> {
        let n = members.len();
        (members, proptest::collection::vec(0..n, 0..n + 2), Just(ws))
            .prop_map(|(values, order, ws)| {
                let sep = if ws { ", " } else { "," };
                let picked: Vec<&str> = order.iter().map(|&i| values[i].as_str()).collect();
                format!("{{{}}}", picked.join(sep))
            })
            .boxed()
    }

    fn part() -> BoxedStrategy<String> {
        let call = object(
            vec![
                member("id", vec![string_or_odd()]),
                member("name", vec![text().boxed()]),
                member(
                    "args",
                    vec![
                        Just("{\"location\": \"Tokyo\", \"n\": [1, 2.5]}".to_owned()).boxed(),
                        Just("null".to_owned()).boxed(),
                    ],
                ),
                unknown(),
            ],
            false,
        );
        let thought = prop_oneof![
            Just("true".to_owned()),
            Just("false".to_owned()),
            Just("null".to_owned()),
            Just("1".to_owned()),
        ]
        .boxed();
        object(
            vec![
                member("text", vec![string_or_odd()]),
                member("thought", vec![thought]),
                member("thoughtSignature", vec![string_or_odd()]),
                member("functionCall", vec![call]),
                unknown(),
            ],
            false,
        )
    }

    fn chunk() -> BoxedStrategy<String> {
        let parts = proptest::collection::vec(part(), 0..3)
            .prop_map(|p| format!("[{}]", p.join(",")))
            .boxed();
        let content = object(
            vec![
                member("parts", vec![parts, Just("null".to_owned()).boxed()]),
                unknown(),
            ],
            true,
        );
        let candidate = object(
            vec![
                member("content", vec![content, Just("null".to_owned()).boxed()]),
                member("finishReason", vec![string_or_odd()]),
                member("index", vec![int()]),
                unknown(),
            ],
            false,
        );
        let candidates = proptest::collection::vec(candidate, 0..3)
            .prop_map(|c| format!("[{}]", c.join(",")))
            .boxed();
        let usage = object(
            vec![
                member("promptTokenCount", vec![int()]),
                member("candidatesTokenCount", vec![int()]),
                member("thoughtsTokenCount", vec![int()]),
                member("cachedContentTokenCount", vec![int()]),
                member("totalTokenCount", vec![int()]),
                unknown(),
            ],
            false,
        );
        let feedback = object(vec![member("blockReason", vec![string_or_odd()])], false);
        object(
            vec![
                member("candidates", vec![candidates]),
                member(
                    "usageMetadata",
                    vec![usage, Just("null".to_owned()).boxed()],
                ),
                member("modelVersion", vec![string_or_odd()]),
                member("responseId", vec![string_or_odd()]),
                member("promptFeedback", vec![feedback]),
                unknown(),
            ],
            true,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn scanner_agrees_with_serde(data in chunk(), cut in 0usize..400) {
            agrees(&data)?;
            // Truncated and padded forms: malformed JSON is always left to serde.
            let cut = data.floor_char_boundary(cut.min(data.len()));
            agrees(&data[..cut])?;
            agrees(&format!(" {data}\n"))?;
            agrees(&format!("{data}x"))?;
        }
    }

    /// The property above means something only if the scanner reads many of the
    /// generated chunks itself rather than leaving them all to serde.
    #[test]
    fn the_generated_chunks_are_often_scanned() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = chunk();
        let (mut scanned, mut valid) = (0, 0);
        for _ in 0..400 {
            let data = strategy.new_tree(&mut runner).unwrap().current();
            valid += usize::from(serde_json::from_str::<Response<'_>>(&data).is_ok());
            scanned += usize::from(response(&data).is_some());
        }
        assert!(
            scanned * 2 >= valid && scanned >= 50,
            "{scanned} scanned of {valid} valid"
        );
    }

    #[test]
    fn the_fixture_chunks_are_scanned() {
        for data in [
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hello"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":9,"totalTokenCount":9},"modelVersion":"gemini-2.5-pro","responseId":"r"}"#,
            r#"{"responseId":"g","candidates":[{"content":{"parts":[{"functionCall":{"id":"fc","name":"get_weather","args":{"location":"Tokyo"}}}]},"finishReason":"STOP"}]}"#,
        ] {
            assert!(response(data).is_some(), "{data}");
            agrees(data).unwrap();
        }
    }
}
