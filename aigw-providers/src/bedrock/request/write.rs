//! The Converse body written as bytes.
//!
//! Serialising the body through serde spent most of its time escaping strings one byte
//! at a time: the conversation's text is nearly all of a Converse body, and almost none
//! of it needs escaping. This writer emits the same bytes as `serde_json` over the
//! `Serialize` derives of the parent module (same keys, same order, same number and
//! string formatting; a property test compares the two), checking each string for
//! characters that need escaping in wide chunks and copying it whole when none do.

use super::{
    CachePoint, ContentBlock, Converse, Document, Image, InferenceConfig, Msg, ReasoningBlock,
    ToolConfig, ToolEntry, ToolResult, ToolSpec, ToolUse,
};
use crate::json_out::{push_list as list, push_serde, push_str as push_json_str};
use serde_json::value::RawValue;

/// Appends `,"key":` (or `"key":` for the first member of an object).
fn key(out: &mut Vec<u8>, first: &mut bool, key: &str) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

fn raw(out: &mut Vec<u8>, v: &RawValue) {
    out.extend_from_slice(v.get().as_bytes());
}

impl Converse<'_> {
    /// Appends the body.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        let first = &mut true;
        out.push(b'{');
        key(out, first, "messages");
        list(out, &self.messages, Msg::write);
        if !self.system.is_empty() {
            key(out, first, "system");
            list(out, &self.system, ContentBlock::write);
        }
        if !self.inference_config.is_empty() {
            key(out, first, "inferenceConfig");
            self.inference_config.write(out);
        }
        if let Some(t) = &self.tool_config {
            key(out, first, "toolConfig");
            t.write(out);
        }
        if !self.additional_model_request_fields.is_empty() {
            key(out, first, "additionalModelRequestFields");
            push_serde(out, &self.additional_model_request_fields);
        }
        if let Some(v) = &self.output_config {
            key(out, first, "outputConfig");
            push_serde(out, v);
        }
        for (name, v) in [
            ("guardrailConfig", self.guardrail_config),
            ("performanceConfig", self.performance_config),
            ("promptVariables", self.prompt_variables),
        ] {
            if let Some(v) = v {
                key(out, first, name);
                raw(out, v);
            }
        }
        out.push(b'}');
    }
}

impl Msg<'_> {
    fn write(out: &mut Vec<u8>, m: &Self) {
        out.extend_from_slice(b"{\"role\":\"");
        out.extend_from_slice(m.role.as_bytes());
        out.extend_from_slice(b"\",\"content\":");
        list(out, &m.content, ContentBlock::write);
        out.push(b'}');
    }
}

impl InferenceConfig<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        let first = &mut true;
        out.push(b'{');
        if let Some(n) = self.max_tokens {
            key(out, first, "maxTokens");
            push_serde(out, &n);
        }
        if let Some(t) = self.temperature {
            key(out, first, "temperature");
            push_serde(out, &t);
        }
        if let Some(p) = self.top_p {
            key(out, first, "topP");
            push_serde(out, &p);
        }
        if !self.stop_sequences.is_empty() {
            key(out, first, "stopSequences");
            list(out, self.stop_sequences, |o, s| push_json_str(o, s));
        }
        out.push(b'}');
    }
}

impl ToolConfig<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"tools\":");
        list(out, &self.tools, |o, t| match t {
            ToolEntry::ToolSpec(spec) => spec.write(o),
            ToolEntry::CachePoint(c) => c.write(o),
        });
        if let Some(choice) = &self.tool_choice {
            out.extend_from_slice(b",\"toolChoice\":");
            push_serde(out, choice);
        }
        out.push(b'}');
    }
}

impl ToolSpec<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"toolSpec\":{\"name\":");
        push_json_str(out, self.name);
        if let Some(d) = self.description {
            out.extend_from_slice(b",\"description\":");
            push_json_str(out, d);
        }
        out.extend_from_slice(b",\"inputSchema\":{\"json\":");
        raw(out, self.input_schema.json);
        out.extend_from_slice(b"}}}");
    }
}

impl CachePoint {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"cachePoint\":{\"type\":");
        push_json_str(out, self.kind);
        out.extend_from_slice(b"}}");
    }
}

impl ContentBlock<'_> {
    fn write(out: &mut Vec<u8>, b: &Self) {
        match b {
            Self::Text(t) => {
                out.extend_from_slice(b"{\"text\":");
                push_json_str(out, t);
                out.push(b'}');
            }
            Self::Image(i) => i.write(out),
            Self::Document(d) => d.write(out),
            Self::ToolUse(t) => t.write(out),
            Self::ToolResult(t) => t.write(out),
            Self::ReasoningContent(r) => r.write(out),
            Self::CachePoint(c) => c.write(out),
        }
    }
}

impl Image<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"image\":{\"format\":");
        push_json_str(out, self.format);
        out.extend_from_slice(b",\"source\":{\"bytes\":");
        push_json_str(out, self.source.bytes);
        out.extend_from_slice(b"}}}");
    }
}

impl Document<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"document\":{\"format\":");
        push_json_str(out, self.format);
        out.extend_from_slice(b",\"name\":");
        push_json_str(out, &self.name);
        out.extend_from_slice(b",\"source\":{\"bytes\":");
        push_json_str(out, self.source.bytes);
        out.extend_from_slice(b"}}}");
    }
}

impl ToolUse<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"toolUse\":{\"toolUseId\":");
        push_json_str(out, self.tool_use_id);
        out.extend_from_slice(b",\"name\":");
        push_json_str(out, self.name);
        out.extend_from_slice(b",\"input\":");
        raw(out, self.input);
        out.extend_from_slice(b"}}");
    }
}

impl ToolResult<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"toolResult\":{\"toolUseId\":");
        push_json_str(out, self.tool_use_id);
        out.extend_from_slice(b",\"content\":");
        list(out, &self.content, ContentBlock::write);
        if let Some(s) = self.status {
            out.extend_from_slice(b",\"status\":");
            push_json_str(out, s);
        }
        out.extend_from_slice(b"}}");
    }
}

impl ReasoningBlock<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"reasoningContent\":");
        match self {
            Self::ReasoningText { text, signature } => {
                out.extend_from_slice(b"{\"reasoningText\":{\"text\":");
                push_json_str(out, text);
                if let Some(s) = signature {
                    out.extend_from_slice(b",\"signature\":");
                    push_json_str(out, s);
                }
                out.extend_from_slice(b"}}");
            }
            Self::RedactedContent(data) => {
                out.extend_from_slice(b"{\"redactedContent\":");
                push_json_str(out, data);
                out.push(b'}');
            }
        }
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::super::with_converse;
    use crate::canonical::{
        Block, ChatRequest, Message, Reasoning, ResponseFormat, Role, Tool, ToolChoice,
    };
    use proptest::prelude::*;
    use serde_json::value::RawValue;

    /// Any text, weighted towards the characters JSON escapes.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z ]{0,40}",
            "[\"\\\\\\x00-\\x1f\\x7f a-zé€😀]{0,40}",
            any::<String>(),
        ]
    }

    fn raw() -> impl Strategy<Value = Box<RawValue>> {
        prop_oneof![
            Just("{}"),
            Just(r#"{"type":"object","properties":{"q":{"type":"string"}}}"#),
            Just(r#"{ "a" : [1, 2.5, "x\"y"] }"#),
            Just("null"),
        ]
        .prop_map(|s| RawValue::from_string(s.to_owned()).unwrap())
    }

    fn leaf() -> impl Strategy<Value = Block> {
        prop_oneof![
            (text(), any::<bool>()).prop_map(|(text, cache)| Block::Text { text, cache }),
            (
                prop_oneof![Just("image/png"), Just("image/jpeg"), Just("image/webp")],
                "[A-Za-z0-9+/=]{0,40}",
                any::<bool>()
            )
                .prop_map(|(m, data, cache)| Block::Image {
                    media_type: m.to_owned(),
                    data,
                    cache
                }),
            (
                prop_oneof![Just("application/pdf"), Just("text/csv")],
                "[A-Za-z0-9+/=]{0,40}",
                any::<bool>()
            )
                .prop_map(|(m, data, cache)| Block::Document {
                    media_type: m.to_owned(),
                    data,
                    cache
                }),
            (text(), text(), raw()).prop_map(|(id, name, input)| Block::ToolUse {
                id,
                name,
                input
            }),
            (text(), proptest::option::of(text()))
                .prop_map(|(text, signature)| Block::Thinking { text, signature }),
            text().prop_map(|data| Block::RedactedThinking { data }),
        ]
    }

    fn block() -> impl Strategy<Value = Block> {
        prop_oneof![
            3 => leaf(),
            1 => (
                text(),
                proptest::collection::vec(leaf(), 0..3),
                any::<bool>(),
                any::<bool>()
            )
                .prop_map(|(id, content, is_error, cache)| Block::ToolResult {
                    id,
                    content,
                    is_error,
                    cache
                }),
        ]
    }

    fn tool() -> impl Strategy<Value = Tool> {
        (
            text(),
            proptest::option::of(text()),
            proptest::option::of(raw()),
            any::<bool>(),
        )
            .prop_map(|(name, description, parameters, cache)| Tool {
                name,
                description,
                parameters,
                cache,
            })
    }

    fn number() -> impl Strategy<Value = Option<f64>> {
        proptest::option::of(prop_oneof![
            any::<f64>(),
            Just(0.2),
            Just(1.0),
            Just(f64::NAN)
        ])
    }

    prop_compose! {
        fn request()(
            model in prop_oneof![
                Just("us.amazon.nova-micro-v1:0"),
                Just("anthropic.claude-sonnet-4"),
                Just("openai.gpt-oss-20b"),
            ],
            system in proptest::collection::vec(
                (text(), any::<bool>()).prop_map(|(text, cache)| Block::Text { text, cache }),
                0..3,
            ),
            messages in proptest::collection::vec(
                (any::<bool>(), proptest::collection::vec(block(), 0..4)),
                0..5,
            ),
            tools in proptest::collection::vec(tool(), 0..3),
            tool_choice in proptest::option::of(prop_oneof![
                Just(ToolChoice::Auto),
                Just(ToolChoice::Any),
                text().prop_map(ToolChoice::Tool),
            ]),
            max_tokens in proptest::option::of(any::<u64>()),
            temperature in number(),
            top_p in number(),
            top_k in proptest::option::of(0u64..100),
            stop in proptest::collection::vec(text(), 0..3),
            reasoning in proptest::option::of(prop_oneof![
                Just(Reasoning::Effort("high".to_owned())),
                (0u64..20_000).prop_map(Reasoning::Budget),
                Just(Reasoning::Disabled),
            ]),
            json_schema in proptest::option::of((text(), proptest::option::of(text()))),
            vendor in proptest::option::of(raw()),
        ) -> ChatRequest {
            let mut r = ChatRequest {
                model: model.to_owned(),
                system,
                tools,
                tool_choice,
                max_tokens,
                temperature,
                top_p,
                top_k,
                stop,
                reasoning,
                ..ChatRequest::default()
            };
            for (user, content) in messages {
                let role = if user { Role::User } else { Role::Assistant };
                r.messages.push(Message { role, content });
            }
            r.response_format = json_schema.map(|(name, description)| {
                ResponseFormat::JsonSchema {
                    name,
                    description,
                    schema: RawValue::from_string(r#"{"type": "object"}"#.to_owned()).unwrap(),
                }
            });
            r.vendor.guardrail_config = vendor.clone();
            r.vendor.prompt_variables = vendor;
            r
        }
    }

    proptest! {
        #[test]
        fn writer_matches_serde(req in request()) {
            let Ok((hand, serde)) = with_converse(&req, |body| {
                let mut hand = Vec::new();
                body.write(&mut hand);
                (hand, serde_json::to_vec(body).unwrap())
            }) else {
                return Ok(());
            };
            prop_assert_eq!(String::from_utf8(hand).unwrap(), String::from_utf8(serde).unwrap());
        }
    }
}
