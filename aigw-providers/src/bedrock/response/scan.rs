//! A Converse response read by [`Scan`] instead of serde's derived visitors: the same
//! [`ConverseResponse`], or `None` when serde must read the body (see
//! [`crate::json_scan`]). A property test checks it against the serde path.

use super::{
    ContentOut, ConverseResponse, OutMessage, Output, ReasoningOut, ReasoningText, ToolUseOut,
    Usage,
};
use crate::json_scan::{Scan, set};
use std::borrow::Cow;

/// Reads a response body; `None` when it must be parsed by serde instead.
pub(super) fn response(data: &str) -> Option<ConverseResponse> {
    let mut s = Scan::new(data);
    let r = s.converse()?;
    s.at_end().then_some(r)
}

/// The response's objects.
trait Converse<'a> {
    fn converse(&mut self) -> Option<ConverseResponse>;
    fn output(&mut self) -> Option<Option<Output>>;
    fn message(&mut self) -> Option<Option<OutMessage>>;
    fn content(&mut self) -> Option<ContentOut>;
    fn tool_use(&mut self) -> Option<Option<ToolUseOut>>;
    fn reasoning(&mut self) -> Option<Option<ReasoningOut>>;
    fn reasoning_text(&mut self) -> Option<Option<ReasoningText>>;
    fn usage(&mut self) -> Option<Option<Usage>>;
    fn owned(&mut self) -> Option<String>;
    fn opt_owned(&mut self) -> Option<Option<String>>;
}

impl<'a> Converse<'a> for Scan<'a> {
    fn converse(&mut self) -> Option<ConverseResponse> {
        let (mut output, mut stop, mut usage) = (None, None, None);
        self.object(|s, k| match k {
            "output" => {
                let v = s.output()?;
                set(&mut output, v)
            }
            "stopReason" => {
                let v = s.opt_owned()?;
                set(&mut stop, v)
            }
            "usage" => {
                let v = s.usage()?;
                set(&mut usage, v)
            }
            _ => s.skip(),
        })?;
        Some(ConverseResponse {
            output: output.flatten(),
            stop_reason: stop.flatten(),
            usage: usage.flatten(),
        })
    }

    fn output(&mut self) -> Option<Option<Output>> {
        if self.null() {
            return Some(None);
        }
        let mut message = None;
        self.object(|s, k| match k {
            "message" => {
                let v = s.message()?;
                set(&mut message, v)
            }
            _ => s.skip(),
        })?;
        Some(Some(Output {
            message: message.flatten(),
        }))
    }

    fn message(&mut self) -> Option<Option<OutMessage>> {
        if self.null() {
            return Some(None);
        }
        let mut content = None;
        self.object(|s, k| match k {
            // Defaulted but not optional: `null` is serde's error.
            "content" => {
                let mut list = Vec::with_capacity(1);
                s.array(|s| s.content().map(|c| list.push(c)))?;
                set(&mut content, list)
            }
            _ => s.skip(),
        })?;
        Some(Some(OutMessage {
            content: content.unwrap_or_default(),
        }))
    }

    fn content(&mut self) -> Option<ContentOut> {
        let (mut text, mut tool_use, mut reasoning) = (None, None, None);
        self.object(|s, k| match k {
            "text" => {
                let v = s.opt_owned()?;
                set(&mut text, v)
            }
            "toolUse" => {
                let v = s.tool_use()?;
                set(&mut tool_use, v)
            }
            "reasoningContent" => {
                let v = s.reasoning()?;
                set(&mut reasoning, v)
            }
            _ => s.skip(),
        })?;
        Some(ContentOut {
            text: text.flatten(),
            tool_use: tool_use.flatten(),
            reasoning_content: reasoning.flatten(),
        })
    }

    fn tool_use(&mut self) -> Option<Option<ToolUseOut>> {
        if self.null() {
            return Some(None);
        }
        let (mut id, mut name, mut input) = (None, None, None);
        self.object(|s, k| match k {
            "toolUseId" => {
                let v = s.owned()?;
                set(&mut id, v)
            }
            "name" => {
                let v = s.owned()?;
                set(&mut name, v)
            }
            "input" => {
                let v = s.serde()?;
                set(&mut input, v)
            }
            _ => s.skip(),
        })?;
        Some(Some(ToolUseOut {
            tool_use_id: id?,
            name: name?,
            input: input.flatten(),
        }))
    }

    fn reasoning(&mut self) -> Option<Option<ReasoningOut>> {
        if self.null() {
            return Some(None);
        }
        let (mut text, mut redacted) = (None, None);
        self.object(|s, k| match k {
            "reasoningText" => {
                let v = s.reasoning_text()?;
                set(&mut text, v)
            }
            "redactedContent" => {
                let v = s.opt_owned()?;
                set(&mut redacted, v)
            }
            _ => s.skip(),
        })?;
        Some(Some(ReasoningOut {
            reasoning_text: text.flatten(),
            redacted_content: redacted.flatten(),
        }))
    }

    fn reasoning_text(&mut self) -> Option<Option<ReasoningText>> {
        if self.null() {
            return Some(None);
        }
        let (mut text, mut signature) = (None, None);
        self.object(|s, k| match k {
            // Defaulted but not optional: `null` is serde's error.
            "text" => {
                let v = s.owned()?;
                set(&mut text, v)
            }
            "signature" => {
                let v = s.opt_owned()?;
                set(&mut signature, v)
            }
            _ => s.skip(),
        })?;
        Some(Some(ReasoningText {
            text: text.unwrap_or_default(),
            signature: signature.flatten(),
        }))
    }

    fn usage(&mut self) -> Option<Option<Usage>> {
        if self.null() {
            return Some(None);
        }
        let mut f: [Option<Option<u64>>; 4] = [None; 4];
        self.object(|s, k| {
            let slot = match k {
                "inputTokens" => 0,
                "outputTokens" => 1,
                "cacheReadInputTokens" => 2,
                "cacheWriteInputTokens" => 3,
                _ => return s.skip(),
            };
            let v = s.opt_u64()?;
            set(&mut f[slot], v)
        })?;
        let [input, output, read, write] = f.map(Option::flatten);
        Some(Some(Usage {
            input_tokens: input,
            output_tokens: output,
            cache_read_input_tokens: read,
            cache_write_input_tokens: write,
        }))
    }

    fn owned(&mut self) -> Option<String> {
        self.string().map(Cow::into_owned)
    }

    fn opt_owned(&mut self) -> Option<Option<String>> {
        self.opt_string().map(|v| v.map(Cow::into_owned))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::json_scan::strategies::{
        agrees, assert_often_scanned, int, member, object, string_or_odd, text, unknown,
    };
    use proptest::prelude::*;

    fn scanned(data: &str) -> Option<String> {
        response(data).map(|v| format!("{v:?}"))
    }

    fn parsed(data: &str) -> Result<String, serde_json::Error> {
        serde_json::from_str::<ConverseResponse>(data).map(|v| format!("{v:?}"))
    }

    fn lit(s: &str) -> BoxedStrategy<String> {
        Just(s.to_owned()).boxed()
    }

    fn block() -> BoxedStrategy<String> {
        let tool = object(
            vec![
                member("toolUseId", vec![string_or_odd()]),
                member("name", vec![text().boxed()]),
                member(
                    "input",
                    vec![
                        lit("{\"location\": \"Tokyo\", \"n\": [1, 2.5]}"),
                        lit("null"),
                    ],
                ),
                unknown(),
            ],
            false,
        );
        let reasoning_text = object(
            vec![
                member("text", vec![string_or_odd()]),
                member("signature", vec![string_or_odd()]),
            ],
            false,
        );
        let reasoning = object(
            vec![
                member("reasoningText", vec![reasoning_text, lit("null")]),
                member("redactedContent", vec![string_or_odd()]),
                unknown(),
            ],
            true,
        );
        object(
            vec![
                member("text", vec![string_or_odd()]),
                member("toolUse", vec![tool, lit("null")]),
                member("reasoningContent", vec![reasoning, lit("null")]),
                unknown(),
            ],
            false,
        )
    }

    fn body() -> BoxedStrategy<String> {
        let content = proptest::collection::vec(block(), 0..3)
            .prop_map(|b| format!("[{}]", b.join(",")))
            .boxed();
        let message = object(
            vec![
                member("content", vec![content, lit("null")]),
                member("role", vec![lit("\"assistant\"")]),
            ],
            true,
        );
        let output = object(
            vec![member("message", vec![message, lit("null")]), unknown()],
            false,
        );
        let usage = object(
            vec![
                member("inputTokens", vec![int()]),
                member("outputTokens", vec![int()]),
                member("totalTokens", vec![int()]),
                member("cacheReadInputTokens", vec![int()]),
                member("cacheWriteInputTokens", vec![int()]),
                unknown(),
            ],
            false,
        );
        object(
            vec![
                member("output", vec![output, lit("null")]),
                member("stopReason", vec![string_or_odd()]),
                member("usage", vec![usage, lit("null")]),
                member("metrics", vec![lit("{\"latencyMs\": 12}")]),
                unknown(),
            ],
            true,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn scanner_agrees_with_serde(data in body(), cut in 0usize..400) {
            agrees(&data, cut, scanned, parsed)?;
        }
    }

    #[test]
    fn the_generated_bodies_are_often_scanned() {
        assert_often_scanned(&body(), scanned, parsed);
    }

    #[test]
    fn the_usual_responses_are_scanned() {
        for data in [
            r#"{"metrics":{"latencyMs":0},"output":{"message":{"content":[{"text":"Hello"}],"role":"assistant"}},"stopReason":"end_turn","usage":{"inputTokens":9,"outputTokens":2,"totalTokens":11}}"#,
            r#"{"output":{"message":{"role":"assistant","content":[{"reasoningContent":{"reasoningText":{"text":"t","signature":"s"}}},{"toolUse":{"toolUseId":"tooluse_1","name":"get_weather","input":{"location":"Tokyo"}}}]}},"stopReason":"tool_use","usage":{"inputTokens":9,"outputTokens":2,"cacheReadInputTokens":1,"cacheWriteInputTokens":0}}"#,
        ] {
            assert!(response(data).is_some(), "{data}");
            assert_eq!(scanned(data), parsed(data).ok(), "{data}");
        }
    }
}
