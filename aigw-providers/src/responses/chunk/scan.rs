//! A chat chunk read by [`Scan`] instead of serde's derived visitors: the same
//! [`Chunk`], or `None` when serde must read it (see [`crate::json_scan`]). A property
//! test checks it against the serde path.

use super::{Choice, Chunk, Delta, Function, ToolCall};
use crate::json_scan::{Scan, set};
use aigw_core::api::openai::{Role, Usage};
use serde::de::IgnoredAny;
use serde_json::Value;
use std::borrow::Cow;

/// Reads a chunk; `None` when it must be parsed by serde instead.
pub(super) fn chunk(data: &str) -> Option<Chunk<'_>> {
    let mut s = Scan::new(data);
    let c = s.chunk()?;
    s.at_end().then_some(c)
}

/// What the last chunk of a stream began with, when the next ones are likely to
/// repeat it byte for byte: its first four members were `id`, `object`, `created` and
/// `model` (in any order), their strings without escapes. OpenAI-compatible servers
/// repeat them on every chunk; a chunk that begins with the same bytes has the same
/// values there (the scanner's reading of those bytes does not depend on what follows
/// them), so they are taken from the same places and the scan resumes after them.
#[derive(Debug, Clone, Default)]
pub struct Head {
    /// The text up to and including the comma after the fourth member.
    bytes: Vec<u8>,
    id: (usize, usize),
    object: (usize, usize),
    model: (usize, usize),
    created: u64,
}

/// Reads a chunk, reusing the reading of the members it repeats from the chunk before
/// (see [`Head`]); `None` when it must be parsed by serde instead.
pub(super) fn chunk_after<'a>(data: &'a str, head: &mut Head) -> Option<Chunk<'a>> {
    if !head.bytes.is_empty() && data.as_bytes().starts_with(&head.bytes) {
        let at = |(a, b): (usize, usize)| data.get(a..b).map(Cow::Borrowed);
        let mut m = Members {
            id: Some(at(head.id)?),
            object: Some(at(head.object)?),
            created: Some(head.created),
            model: Some(at(head.model)?),
            ..Members::default()
        };
        let mut s = Scan::at(data, head.bytes.len());
        s.members(|s, k| m.member(s, k))?;
        return if s.at_end() { m.finish() } else { None };
    }
    let mut s = Scan::new(data);
    let mut m = Members::default();
    let (mut read, mut first_four) = (0, None);
    s.object(|s, k| {
        m.member(s, k)?;
        read += 1;
        if read == 4 {
            first_four = m.head(data, s.pos());
        }
        Some(())
    })?;
    if !s.at_end() {
        return None;
    }
    match first_four {
        Some(h) => *head = h,
        None => head.bytes.clear(),
    }
    m.finish()
}

/// The position of `part`, a slice of `data`, in `data`.
fn span(data: &str, part: &str) -> (usize, usize) {
    let start = part.as_ptr().addr() - data.as_ptr().addr();
    (start, start + part.len())
}

/// A chunk's top-level members, as they are read.
#[derive(Default)]
struct Members<'a> {
    id: Option<Cow<'a, str>>,
    object: Option<Cow<'a, str>>,
    created: Option<u64>,
    model: Option<Cow<'a, str>>,
    choices: Option<Vec<Choice<'a>>>,
    usage: Option<Option<Usage>>,
    fingerprint: Option<Option<Cow<'a, str>>>,
}

impl<'a> Members<'a> {
    fn member(&mut self, s: &mut Scan<'a>, k: &str) -> Option<()> {
        match k {
            "id" => {
                let v = s.string()?;
                set(&mut self.id, v)
            }
            "object" => {
                let v = s.string()?;
                set(&mut self.object, v)
            }
            "created" => {
                let v = s.u64()?;
                set(&mut self.created, v)
            }
            "model" => {
                let v = s.string()?;
                set(&mut self.model, v)
            }
            "choices" => {
                let mut list = Vec::with_capacity(1);
                s.array(|s| s.choice().map(|c| list.push(c)))?;
                set(&mut self.choices, list)
            }
            "usage" => {
                let v = crate::openai::sniff::usage_value(s)?;
                set(&mut self.usage, v)
            }
            "system_fingerprint" => {
                let v = s.opt_string()?;
                set(&mut self.fingerprint, v)
            }
            _ => s.skip(),
        }
    }

    /// After four members, read up to byte `end` of `data`: the head they make when
    /// they are the four it is made of (set only once each, so no other member was
    /// read), borrowed from `data`, and a comma follows them.
    fn head(&self, data: &str, end: usize) -> Option<Head> {
        let (Some(Cow::Borrowed(id)), Some(Cow::Borrowed(object)), Some(created)) =
            (&self.id, &self.object, self.created)
        else {
            return None;
        };
        let Some(Cow::Borrowed(model)) = &self.model else {
            return None;
        };
        let bytes = data.as_bytes().get(..=end).filter(|b| b.ends_with(b","))?;
        Some(Head {
            bytes: bytes.to_vec(),
            id: span(data, id),
            object: span(data, object),
            model: span(data, model),
            created,
        })
    }

    fn finish(self) -> Option<Chunk<'a>> {
        Some(Chunk {
            id: self.id?,
            object: self.object?,
            created: self.created?,
            model: self.model?,
            choices: self.choices?,
            usage: self.usage.flatten(),
            system_fingerprint: self.fingerprint.flatten(),
        })
    }
}

/// The chunk's objects.
trait Chat<'a> {
    fn chunk(&mut self) -> Option<Chunk<'a>>;
    fn choice(&mut self) -> Option<Choice<'a>>;
    fn delta(&mut self) -> Option<Delta<'a>>;
    fn tool_call(&mut self) -> Option<ToolCall<'a>>;
    fn u32(&mut self) -> Option<u32>;
}

impl<'a> Chat<'a> for Scan<'a> {
    fn chunk(&mut self) -> Option<Chunk<'a>> {
        let mut m = Members::default();
        self.object(|s, k| m.member(s, k))?;
        m.finish()
    }

    fn choice(&mut self) -> Option<Choice<'a>> {
        let (mut index, mut delta, mut finish, mut logprobs) = (None, None, None, None);
        self.object(|s, k| match k {
            "index" => {
                let v = s.u32()?;
                set(&mut index, v)
            }
            "delta" => {
                let v = s.delta()?;
                set(&mut delta, v)
            }
            "finish_reason" => {
                let v = s.opt_string()?;
                set(&mut finish, v)
            }
            // Anything, `null` included, as `Option<IgnoredAny>` reads it.
            "logprobs" => {
                let v = if s.null() {
                    None
                } else {
                    s.skip()?;
                    Some(IgnoredAny)
                };
                set(&mut logprobs, v)
            }
            _ => s.skip(),
        })?;
        Some(Choice {
            index: index?,
            delta: delta?,
            finish_reason: finish.flatten(),
            logprobs: logprobs.flatten(),
        })
    }

    fn delta(&mut self) -> Option<Delta<'a>> {
        let mut role = None;
        let (mut content, mut reasoning, mut signature) = (None, None, None);
        let (mut redacted, mut tools, mut refusal) = (None, None, None);
        self.object(|s, k| match k {
            "role" => {
                let v = match s.opt_string()?.as_deref() {
                    None => None,
                    Some("system") => Some(Role::System),
                    Some("developer") => Some(Role::Developer),
                    Some("user") => Some(Role::User),
                    Some("assistant") => Some(Role::Assistant),
                    Some("tool") => Some(Role::Tool),
                    Some("function") => Some(Role::Function),
                    Some(_) => return None,
                };
                set(&mut role, v)
            }
            "content" => {
                let v = s.opt_string()?;
                set(&mut content, v)
            }
            "reasoning_content" => {
                let v = s.opt_string()?;
                set(&mut reasoning, v)
            }
            "reasoning_signature" => {
                let v = s.opt_string()?;
                set(&mut signature, v)
            }
            "redacted_reasoning_content" => {
                let v = s.serde::<Option<Value>>()?;
                set(&mut redacted, v)
            }
            "tool_calls" => {
                let v = if s.null() {
                    None
                } else {
                    let mut list = Vec::with_capacity(1);
                    s.array(|s| s.tool_call().map(|t| list.push(t)))?;
                    Some(list)
                };
                set(&mut tools, v)
            }
            "refusal" => {
                let v = s.opt_string()?;
                set(&mut refusal, v)
            }
            _ => s.skip(),
        })?;
        Some(Delta {
            role: role.flatten(),
            content: content.flatten(),
            reasoning_content: reasoning.flatten(),
            reasoning_signature: signature.flatten(),
            redacted_reasoning_content: redacted.flatten(),
            tool_calls: tools.flatten(),
            refusal: refusal.flatten(),
        })
    }

    fn tool_call(&mut self) -> Option<ToolCall<'a>> {
        let (mut index, mut id, mut kind, mut function) = (None, None, None, None);
        self.object(|s, k| match k {
            "index" => {
                let v = s.u32()?;
                set(&mut index, v)
            }
            "id" => {
                let v = s.opt_string()?;
                set(&mut id, v)
            }
            "type" => {
                let v = s.opt_string()?;
                set(&mut kind, v)
            }
            "function" => {
                let v = if s.null() {
                    None
                } else {
                    let (mut name, mut arguments) = (None, None);
                    s.object(|s, k| match k {
                        "name" => {
                            let v = s.opt_string()?;
                            set(&mut name, v)
                        }
                        "arguments" => {
                            let v = s.opt_string()?;
                            set(&mut arguments, v)
                        }
                        _ => s.skip(),
                    })?;
                    Some(Function {
                        name: name.flatten(),
                        arguments: arguments.flatten(),
                    })
                };
                set(&mut function, v)
            }
            _ => s.skip(),
        })?;
        Some(ToolCall {
            index: index?,
            id: id.flatten(),
            kind: kind.flatten(),
            function: function.flatten(),
        })
    }

    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.u64()?).ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::json_scan::strategies::{
        agrees, assert_often_scanned, int, member, object, record, string_or_odd, text, unknown,
    };
    use proptest::prelude::*;

    fn scanned(data: &str) -> Option<String> {
        chunk(data).map(|v| format!("{v:?}"))
    }

    fn parsed(data: &str) -> Result<String, serde_json::Error> {
        serde_json::from_str::<Chunk<'_>>(data).map(|v| format!("{v:?}"))
    }

    fn null() -> BoxedStrategy<String> {
        Just("null".to_owned()).boxed()
    }

    fn delta() -> BoxedStrategy<String> {
        let role = prop_oneof![
            Just("\"assistant\"".to_owned()),
            Just("\"tool\"".to_owned()),
            Just("\"robot\"".to_owned()),
            Just("null".to_owned()),
        ]
        .boxed();
        let function = object(
            vec![
                member("name", vec![string_or_odd()]),
                member("arguments", vec![string_or_odd()]),
                unknown(),
            ],
            false,
        );
        let call = record(
            vec![member("index", vec![int()])],
            vec![
                member("id", vec![string_or_odd()]),
                member("type", vec![string_or_odd()]),
                member("function", vec![function, null()]),
            ],
            false,
        );
        let calls = proptest::collection::vec(call, 0..3)
            .prop_map(|c| format!("[{}]", c.join(",")))
            .boxed();
        let redacted = prop_oneof![
            text(),
            Just("{\"a\":[1,true]}".to_owned()),
            Just("null".to_owned()),
        ]
        .boxed();
        record(
            Vec::new(),
            vec![
                member("role", vec![role]),
                member("content", vec![string_or_odd()]),
                member("reasoning_content", vec![string_or_odd()]),
                member("reasoning_signature", vec![string_or_odd()]),
                member("redacted_reasoning_content", vec![redacted]),
                member("tool_calls", vec![calls, null()]),
                member("refusal", vec![string_or_odd()]),
                unknown(),
            ],
            true,
        )
    }

    fn choices() -> BoxedStrategy<String> {
        let logprobs = prop_oneof![
            Just("null".to_owned()),
            Just("{\"content\":[]}".to_owned()),
            Just("7".to_owned()),
        ]
        .boxed();
        let choice = record(
            vec![member("index", vec![int()]), member("delta", vec![delta()])],
            vec![
                member("finish_reason", vec![string_or_odd()]),
                member("logprobs", vec![logprobs]),
                unknown(),
            ],
            false,
        );
        proptest::collection::vec(choice, 0..3)
            .prop_map(|c| format!("[{}]", c.join(",")))
            .boxed()
    }

    fn usage() -> BoxedStrategy<String> {
        prop_oneof![
            Just("null".to_owned()),
            Just("{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}".to_owned()),
            Just("{\"prompt_tokens\":\"x\"}".to_owned()),
        ]
        .boxed()
    }

    fn chat_chunk() -> BoxedStrategy<String> {
        let (choices, usage) = (choices(), usage());
        record(
            vec![
                member("id", vec![string_or_odd()]),
                member("object", vec![string_or_odd()]),
                member("created", vec![int()]),
                member("model", vec![string_or_odd()]),
                member("choices", vec![choices]),
            ],
            vec![
                member("usage", vec![usage]),
                member("system_fingerprint", vec![string_or_odd()]),
                unknown(),
                object(vec![unknown(), member("x", vec![int()])], false)
                    .prop_map(|o| format!("\"extra\":{o}"))
                    .boxed(),
            ],
            true,
        )
    }

    /// `id`, `object`, `created` and `model` in any order, as the members a chunk
    /// begins with (without the braces).
    fn head_members() -> BoxedStrategy<String> {
        record(
            vec![
                member("id", vec![string_or_odd()]),
                member("object", vec![string_or_odd()]),
                member("created", vec![int()]),
                member("model", vec![string_or_odd()]),
            ],
            Vec::new(),
            false,
        )
        .prop_map(|o| o[1..o.len() - 1].to_owned())
        .boxed()
    }

    /// The other members of a chunk and its closing brace; now and then one of the
    /// head's members again.
    fn tail_members() -> BoxedStrategy<String> {
        record(
            vec![member("choices", vec![choices()])],
            vec![
                member("usage", vec![usage()]),
                member("system_fingerprint", vec![string_or_odd()]),
                unknown(),
                member("model", vec![string_or_odd()]),
            ],
            true,
        )
        .prop_map(|o| o[1..].to_owned())
        .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn scanner_agrees_with_serde(data in chat_chunk(), cut in 0usize..400) {
            agrees(&data, cut, scanned, parsed)?;
        }

        /// A chunk read after another, resuming after the head they share, is what
        /// serde reads (or is left to serde), truncated or with bytes around it too.
        #[test]
        fn resumed_reading_agrees_with_serde(
            head in head_members(),
            first in tail_members(),
            second in tail_members(),
            other in chat_chunk(),
            cut in 0usize..400,
        ) {
            let mut h = Head::default();
            let first = format!("{{{head},{first}}}");
            let ours = chunk_after(&first, &mut h).map(|c| format!("{c:?}"));
            if let Some(ours) = ours {
                prop_assert_eq!(Ok(ours), parsed(&first).map_err(|e| e.to_string()));
            }
            let second = format!("{{{head},{second}");
            let cut = second.floor_char_boundary(cut.min(second.len()));
            for text in [
                second.clone(),
                second[..cut].to_owned(),
                format!("{second}x"),
                format!("{second} "),
                other,
            ] {
                let mut again = h.clone();
                if let Some(ours) = chunk_after(&text, &mut again) {
                    let theirs = parsed(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
                    prop_assert_eq!(format!("{ours:?}"), theirs, "{}", text);
                }
            }
        }
    }

    #[test]
    fn the_fixture_chunks_resume_after_their_head() {
        let sse =
            include_str!("../../../tests/fixtures/openai/responses/stream_parallel_tools.sse");
        let mut head = Head::default();
        for (n, data) in sse
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .enumerate()
        {
            if data != "[DONE]" {
                let resumed = n > 0 && data.as_bytes().starts_with(&head.bytes);
                assert_eq!(resumed, n > 0, "{data}");
                let ours = chunk_after(data, &mut head).map(|c| format!("{c:?}"));
                assert_eq!(ours, parsed(data).ok(), "{data}");
            }
        }
    }

    #[test]
    fn the_generated_chunks_are_often_scanned() {
        assert_often_scanned(&chat_chunk(), scanned, parsed);
    }

    #[test]
    fn the_fixture_chunks_are_scanned() {
        let sse =
            include_str!("../../../tests/fixtures/openai/responses/stream_parallel_tools.sse");
        for data in sse.lines().filter_map(|l| l.strip_prefix("data: ")) {
            if data != "[DONE]" {
                assert!(chunk(data).is_some(), "{data}");
                assert_eq!(scanned(data), parsed(data).ok(), "{data}");
            }
        }
    }
}
