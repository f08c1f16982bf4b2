//! Cheap inspection of OpenAI-shaped response JSON: `model` and `usage` only.

use aigw_core::api::openai::Usage;
use serde::Deserialize;
use serde::de::IgnoredAny;

/// The parts of a chat/completions/embeddings response (or stream chunk) the gateway
/// needs; everything else is skipped without building a DOM.
#[derive(Debug, Deserialize)]
pub struct ChunkSniff {
    /// The answering model.
    #[serde(default)]
    pub model: Option<String>,
    /// Usage, when present and not `null`.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// The choices, counted only.
    #[serde(default)]
    pub choices: Option<Vec<IgnoredAny>>,
}

/// Whether a chunk's JSON text has a `"usage"` key with a non-null value. A textual
/// check so most chunks (`"usage":null` or none) are never parsed.
pub fn usage_is_present(data: &str) -> bool {
    let bytes = data.as_bytes();
    let finder = memchr::memmem::Finder::new(b"\"usage\"");
    for pos in finder.find_iter(bytes) {
        let rest = &bytes[pos + 7..];
        let rest = trim_start(rest);
        let Some(rest) = rest.strip_prefix(b":") else {
            continue;
        };
        let rest = trim_start(rest);
        if !rest.starts_with(b"null") {
            return true;
        }
    }
    false
}

/// The `model` and `usage` of a complete (non-stream) response body, with the same
/// outcome as parsing it into [`ChunkSniff`] for any valid JSON document, but without
/// visiting the rest: the top-level object is walked key by key, other values (the
/// choices, with the whole answer) are skipped by their brackets and string quotes,
/// and only the two values wanted are parsed. `None` where that parse would fail: not
/// an object, a duplicate key, a `model` that is not a string or a `usage` that is
/// not a usage object, `choices` that is not an array or `null`. Unlike a full parse
/// it does not validate the values it skips.
pub(super) fn final_body(body: &[u8]) -> Option<(Option<String>, Option<Usage>)> {
    let mut s = Scan { b: body, i: 0 };
    let (mut model, mut usage, mut choices) = (None, None, None);
    s.ws();
    s.eat(b'{')?;
    s.ws();
    if !s.eat_if(b'}') {
        loop {
            let key = s.string()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            let value = s.value()?;
            let slot = match key_name(key)?.as_ref() {
                b"model" => &mut model,
                b"usage" => &mut usage,
                b"choices" => &mut choices,
                _ => &mut None,
            };
            if slot.replace(value).is_some() {
                // serde rejects a duplicate field.
                return None;
            }
            s.ws();
            if s.eat_if(b',') {
                s.ws();
                continue;
            }
            s.eat(b'}')?;
            break;
        }
    }
    s.ws();
    if s.i != body.len() {
        return None;
    }
    if let Some(c) = choices
        && !(c.starts_with(b"[") || c == b"null")
    {
        return None;
    }
    let model = match model {
        Some(raw) => serde_json::from_slice::<Option<String>>(raw).ok()?,
        None => None,
    };
    let usage = match usage {
        Some(raw) => serde_json::from_slice::<Option<Usage>>(raw).ok()?,
        None => None,
    };
    Some((model, usage))
}

/// A key's text: as written, or unescaped when it has an escape.
fn key_name(raw: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    let inner = &raw[1..raw.len() - 1];
    if !inner.contains(&b'\\') {
        return Some(std::borrow::Cow::Borrowed(inner));
    }
    let s: String = serde_json::from_slice(raw).ok()?;
    Some(std::borrow::Cow::Owned(s.into_bytes()))
}

/// A cursor over JSON text that finds the extent of values without decoding them.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn ws(&mut self) {
        while self
            .b
            .get(self.i)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 1;
        }
    }

    fn eat_if(&mut self, c: u8) -> bool {
        let hit = self.b.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.eat_if(c).then_some(())
    }

    /// A string starting at the cursor, quotes included.
    fn string(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        self.eat(b'"')?;
        loop {
            let rest = self.b.get(self.i..)?;
            let at = memchr::memchr2(b'"', b'\\', rest)?;
            self.i += at + 1;
            if rest[at] == b'"' {
                return Some(&self.b[start..self.i]);
            }
            // An escape: the next byte is part of it (`\"` included).
            self.i += 1;
        }
    }

    /// A value starting at the cursor, as written.
    fn value(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        match *self.b.get(self.i)? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match *self.b.get(self.i)? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                // A number, `true`, `false` or `null`.
                while self.b.get(self.i).is_some_and(|c| {
                    !matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                }) {
                    self.i += 1;
                }
                if self.i == start {
                    return None;
                }
            }
        }
        Some(&self.b[start..self.i])
    }
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a full parse into [`ChunkSniff`] finds.
    fn full(body: &[u8]) -> Option<(Option<String>, Option<Usage>)> {
        let s: ChunkSniff = serde_json::from_slice(body).ok()?;
        Some((s.model, s.usage))
    }

    #[test]
    fn final_body_reads_model_and_usage_only() {
        let body = br#" {"id":"x","model":"gpt-4o","choices":[{"message":{"content":"a \"usage\": {} ]"}}],
            "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}} "#;
        let (model, usage) = final_body(body).unwrap();
        assert_eq!(model.as_deref(), Some("gpt-4o"));
        assert_eq!(usage.unwrap().total_tokens, 5);
        // Not an object (serde would read an array as the struct's fields in order).
        assert_eq!(final_body(b"[]"), None);
        for bad in [
            &br#"{"model":1}"#[..],
            br#"{"usage":{},"usage":{}}"#,
            br#"{"choices":"x"}"#,
            br#"{"a":1}x"#,
            br#"{"a":"#,
            br#"{"a":[1,"]"}"#,
        ] {
            assert_eq!(final_body(bad), None, "{}", String::from_utf8_lossy(bad));
            assert_eq!(full(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(final_body(b"{}"), Some((None, None)));
        assert_eq!(
            final_body(br#"{"mod\u0065l":"m","usage":null}"#),
            Some((Some("m".into()), None))
        );
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            "[a-z\"\\\\{}\\[\\],: \u{e9}\u{1F600}]{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::vec(("[a-z]{1,6}", inner), 0..4)
                    .prop_map(|kv| { serde_json::Value::Object(kv.into_iter().collect()) }),
            ]
        })
    }

    proptest::proptest! {
        /// Any object with any mix of the keys the scan looks for, and any values
        /// (well-formed usage or not), gives what the full parse gives, whitespace and
        /// key order included.
        #[test]
        fn final_body_agrees_with_the_full_parse(
            fields in proptest::collection::vec(
                (proptest::prop_oneof![
                    proptest::strategy::Just("model".to_owned()),
                    proptest::strategy::Just("usage".to_owned()),
                    proptest::strategy::Just("choices".to_owned()),
                    "[a-z]{1,8}",
                ], json_value()),
                0..6,
            ),
            usage in proptest::option::of((0u64..1000, 0u64..1000)),
            pretty in proptest::bool::ANY,
        ) {
            let mut m = serde_json::Map::new();
            for (k, v) in fields {
                m.insert(k, v);
            }
            if let Some((p, c)) = usage {
                m.insert("usage".into(), serde_json::json!({
                    "prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c,
                    "prompt_tokens_details": {"cached_tokens": p / 2},
                }));
            }
            let v = serde_json::Value::Object(m);
            let body = if pretty {
                serde_json::to_vec_pretty(&v).unwrap()
            } else {
                serde_json::to_vec(&v).unwrap()
            };
            proptest::prop_assert_eq!(final_body(&body), full(&body));
        }
    }

    #[test]
    fn usage_presence() {
        assert!(!usage_is_present(r#"{"usage":null}"#));
        assert!(!usage_is_present(r#"{"usage" : null,"x":1}"#));
        assert!(usage_is_present(r#"{"usage": {"prompt_tokens":1}}"#));
        assert!(!usage_is_present(r#"{"choices":[]}"#));
        // A string value "usage" is not a key.
        assert!(!usage_is_present(r#"{"content":"\"usage\""}"#));
    }
}
