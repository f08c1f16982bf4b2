//! A chat chunk read by [`Scan`] instead of serde's derived visitors: the same
//! [`Chunk`], or `None` when serde must read it (see [`crate::json_scan`]). A property
//! test checks it against the serde path.

use super::{Choice, Chunk, Delta, Function, ToolCall};
use crate::json_scan::{Scan, set};
use aigw_core::api::openai::{Role, Usage};
use serde::de::IgnoredAny;
use serde_json::Value;

/// Reads a chunk; `None` when it must be parsed by serde instead.
pub(super) fn chunk(data: &str) -> Option<Chunk<'_>> {
    let mut s = Scan::new(data);
    let c = s.chunk()?;
    s.at_end().then_some(c)
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
        let (mut id, mut object, mut created, mut model) = (None, None, None, None);
        let (mut choices, mut usage, mut fingerprint) = (None, None, None);
        self.object(|s, k| match k {
            "id" => {
                let v = s.string()?;
                set(&mut id, v)
            }
            "object" => {
                let v = s.string()?;
                set(&mut object, v)
            }
            "created" => {
                let v = s.u64()?;
                set(&mut created, v)
            }
            "model" => {
                let v = s.string()?;
                set(&mut model, v)
            }
            "choices" => {
                let mut list = Vec::with_capacity(1);
                s.array(|s| s.choice().map(|c| list.push(c)))?;
                set(&mut choices, list)
            }
            // Rare (the last chunk): serde reads it.
            "usage" => {
                let v = s.serde::<Option<Usage>>()?;
                set(&mut usage, v)
            }
            "system_fingerprint" => {
                let v = s.opt_string()?;
                set(&mut fingerprint, v)
            }
            _ => s.skip(),
        })?;
        Some(Chunk {
            id: id?,
            object: object?,
            created: created?,
            model: model?,
            choices: choices?,
            usage: usage.flatten(),
            system_fingerprint: fingerprint.flatten(),
        })
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

    fn chat_chunk() -> BoxedStrategy<String> {
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
        let choices = proptest::collection::vec(choice, 0..3)
            .prop_map(|c| format!("[{}]", c.join(",")))
            .boxed();
        let usage = prop_oneof![
            Just("null".to_owned()),
            Just("{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}".to_owned()),
            Just("{\"prompt_tokens\":\"x\"}".to_owned()),
        ]
        .boxed();
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn scanner_agrees_with_serde(data in chat_chunk(), cut in 0usize..400) {
            agrees(&data, cut, scanned, parsed)?;
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
