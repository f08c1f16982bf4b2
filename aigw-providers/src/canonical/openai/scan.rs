//! An OpenAI chat request read by [`Scan`] instead of serde's derived visitors: the same
//! borrowed [`Request`], or `None` when serde must read the body (see
//! [`crate::json_scan`]).
//!
//! serde's visitors for the conversation (each message and content part a struct of
//! optional fields matched by name, each list grown from empty) were most of the cost of
//! a translated request. The messages, their content parts and tool calls and the tool
//! definitions are walked here, strings borrowed; the top-level fields that are rare or
//! fiddly (floats, raw JSON, untagged enums) are read by serde from their position, so
//! their edge cases stay serde's. A duplicated field, a value of another type, a missing
//! required field or malformed JSON make the whole body go to serde, which stays the
//! definition and words every error. A property test compares the two.

use super::{
    Content, FileIn, FunctionCall, FunctionDef, ImageUrl, Msg, Part, Request, ToolCall, ToolDef,
};
use crate::canonical::TextOr;
use crate::json_scan::{Scan, set};

/// Reads a request body; `None` when it must be parsed by serde instead.
pub(super) fn request(text: &str) -> Option<Request<'_>> {
    let mut s = Scan::new(text);
    let r = s.request()?;
    s.at_end().then_some(r)
}

/// The index of a top-level field of [`Request`] by any of its names (aliases share
/// one: serde refuses a field given under both).
fn field(key: &str) -> Option<u32> {
    Some(match key {
        "model" => 0,
        "messages" => 1,
        "stream" => 2,
        "stream_options" => 3,
        "max_tokens" => 4,
        "max_completion_tokens" => 5,
        "temperature" => 6,
        "top_p" => 7,
        "top_k" => 8,
        "n" => 9,
        "stop" => 10,
        "presence_penalty" => 11,
        "frequency_penalty" => 12,
        "seed" => 13,
        "logprobs" => 14,
        "top_logprobs" => 15,
        "logit_bias" => 16,
        "audio" => 17,
        "prediction" => 18,
        "modalities" => 19,
        "web_search_options" => 20,
        "verbosity" => 21,
        "functions" => 22,
        "function_call" => 23,
        "user" => 24,
        "safety_identifier" => 25,
        "metadata" => 26,
        "store" => 27,
        "service_tier" => 28,
        "prompt_cache_key" => 29,
        "prompt_cache_retention" => 30,
        "tools" => 31,
        "tool_choice" => 32,
        "parallel_tool_calls" => 33,
        "response_format" => 34,
        "reasoning_effort" => 35,
        "thinking" => 36,
        "safetySettings" | "safety_settings" => 37,
        "cachedContent" | "cached_content" => 38,
        "labels" => 39,
        "generationConfig" | "generation_config" => 40,
        "additionalModelRequestFields" | "additional_model_request_fields" => 41,
        "guardrailConfig" | "guardrail_config" => 42,
        "performanceConfig" | "performance_config" => 43,
        "promptVariables" | "prompt_variables" => 44,
        _ => return None,
    })
}

/// The request's objects.
trait Chat<'a> {
    fn request(&mut self) -> Option<Request<'a>>;
    fn member(&mut self, r: &mut Request<'a>, field: u32) -> Option<()>;
    fn rare_member(&mut self, r: &mut Request<'a>, field: u32) -> Option<()>;
    fn message(&mut self) -> Option<Msg<'a>>;
    fn content(&mut self) -> Option<Option<Content<'a>>>;
    fn part(&mut self) -> Option<Part<'a>>;
    fn image_url(&mut self) -> Option<Option<ImageUrl<'a>>>;
    fn file(&mut self) -> Option<Option<FileIn<'a>>>;
    fn tool_call(&mut self) -> Option<ToolCall<'a>>;
    fn tool(&mut self) -> Option<ToolDef<'a>>;
    fn function_def(&mut self) -> Option<Option<FunctionDef<'a>>>;
    fn list<T>(&mut self, hint: usize, item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>>;
}

impl<'a> Chat<'a> for Scan<'a> {
    fn request(&mut self) -> Option<Request<'a>> {
        let mut r = Request::default();
        let mut seen = 0u64;
        self.object(|s, k| {
            let Some(f) = field(k) else {
                return s.skip();
            };
            if seen & (1 << f) != 0 {
                return None; // serde's "duplicate field"
            }
            seen |= 1 << f;
            s.member(&mut r, f)
        })?;
        // `model` is required.
        (seen & 1 != 0).then_some(r)
    }

    /// The fields of the usual request by hand; the others by [`Chat::rare_member`].
    fn member(&mut self, r: &mut Request<'a>, field: u32) -> Option<()> {
        match field {
            0 => r.model = self.string()?,
            1 => r.messages = self.list(8, Self::message)?,
            2 => r.stream = self.opt_bool()?,
            4 => r.max_tokens = self.opt_u64()?,
            5 => r.max_completion_tokens = self.opt_u64()?,
            8 => r.top_k = self.opt_u64()?,
            14 => r.logprobs = self.opt_bool()?,
            21 => r.verbosity = self.opt_string()?,
            31 => {
                r.tools = if self.null() {
                    None
                } else {
                    Some(self.list(4, Self::tool)?)
                };
            }
            33 => r.parallel_tool_calls = self.opt_bool()?,
            35 => r.reasoning_effort = self.opt_string()?,
            _ => return self.rare_member(r, field),
        }
        Some(())
    }

    /// Numbers that may be floats, raw JSON, untagged and nested settings: serde reads
    /// each value from its position.
    fn rare_member(&mut self, r: &mut Request<'a>, field: u32) -> Option<()> {
        match field {
            3 => r.stream_options = self.serde()?,
            6 => r.temperature = self.serde()?,
            7 => r.top_p = self.serde()?,
            9 => r.n = self.serde()?,
            10 => r.stop = self.serde()?,
            11 => r.presence_penalty = self.serde()?,
            12 => r.frequency_penalty = self.serde()?,
            13 => r.seed = self.serde()?,
            15 => r.top_logprobs = self.serde()?,
            16 => r.logit_bias = self.serde()?,
            17 => r.audio = self.serde()?,
            18 => r.prediction = self.serde()?,
            19 => r.modalities = self.serde()?,
            20 => r.web_search_options = self.serde()?,
            22 => r.functions = self.serde()?,
            23 => r.function_call = self.serde()?,
            24 => r.user = self.serde()?,
            25 => r.safety_identifier = self.serde()?,
            26 => r.metadata = self.serde()?,
            27 => r.store = self.serde()?,
            28 => r.service_tier = self.serde()?,
            29 => r.prompt_cache_key = self.serde()?,
            30 => r.prompt_cache_retention = self.serde()?,
            32 => r.tool_choice = self.serde()?,
            34 => r.response_format = self.serde()?,
            36 => r.thinking = self.serde()?,
            37 => r.safety_settings = self.serde()?,
            38 => r.cached_content = self.serde()?,
            39 => r.labels = self.serde()?,
            40 => r.generation_config = self.serde()?,
            41 => r.additional_model_request_fields = self.serde()?,
            42 => r.guardrail_config = self.serde()?,
            43 => r.performance_config = self.serde()?,
            44 => r.prompt_variables = self.serde()?,
            _ => return None,
        }
        Some(())
    }

    fn message(&mut self) -> Option<Msg<'a>> {
        let (mut role, mut content, mut calls, mut call_id) = (None, None, None, None);
        let (mut reasoning, mut signature, mut name, mut is_error) = (None, None, None, None);
        self.object(|s, k| match k {
            "role" => {
                let v = s.string()?;
                set(&mut role, v)
            }
            "content" => {
                let v = s.content()?;
                set(&mut content, v)
            }
            "tool_calls" => {
                let v = if s.null() {
                    None
                } else {
                    Some(s.list(2, Self::tool_call)?)
                };
                set(&mut calls, v)
            }
            "tool_call_id" => {
                let v = s.opt_string()?;
                set(&mut call_id, v)
            }
            "reasoning_content" => {
                let v = s.opt_string()?;
                set(&mut reasoning, v)
            }
            "reasoning_signature" => {
                let v = s.opt_string()?;
                set(&mut signature, v)
            }
            "name" => {
                let v = s.serde()?;
                set(&mut name, v)
            }
            "is_error" => {
                let v = s.opt_bool()?;
                set(&mut is_error, v)
            }
            _ => s.skip(),
        })?;
        Some(Msg {
            role: role?,
            content: content.flatten(),
            tool_calls: calls.flatten(),
            tool_call_id: call_id.flatten(),
            reasoning_content: reasoning.flatten(),
            reasoning_signature: signature.flatten(),
            name: name.flatten(),
            is_error: is_error.flatten(),
        })
    }

    /// `content`: `null`, a string or a list of parts (anything else is serde's error).
    fn content(&mut self) -> Option<Option<Content<'a>>> {
        match self.peek()? {
            b'n' => self.null().then_some(None),
            b'"' => Some(Some(TextOr::Text(self.string()?))),
            _ => Some(Some(TextOr::List(self.list(2, Self::part)?))),
        }
    }

    fn part(&mut self) -> Option<Part<'a>> {
        let (mut kind, mut text, mut image, mut file, mut cache) = (None, None, None, None, None);
        self.object(|s, k| match k {
            "type" => {
                let v = s.string()?;
                set(&mut kind, v)
            }
            "text" => {
                let v = s.opt_string()?;
                set(&mut text, v)
            }
            "image_url" => {
                let v = s.image_url()?;
                set(&mut image, v)
            }
            "file" => {
                let v = s.file()?;
                set(&mut file, v)
            }
            "cache_control" => {
                let v = s.serde()?;
                set(&mut cache, v)
            }
            _ => s.skip(),
        })?;
        Some(Part {
            kind: kind?,
            text: text.flatten(),
            image_url: image.flatten(),
            file: file.flatten(),
            cache_control: cache.flatten(),
        })
    }

    /// An image's URL is usually a data URL of the whole image: read here, not by serde.
    fn image_url(&mut self) -> Option<Option<ImageUrl<'a>>> {
        if self.null() {
            return Some(None);
        }
        let (mut url, mut detail) = (None, None);
        self.object(|s, k| match k {
            "url" => {
                let v = s.string()?;
                set(&mut url, v)
            }
            "detail" => {
                let v = s.opt_string()?;
                set(&mut detail, v)
            }
            _ => s.skip(),
        })?;
        Some(Some(ImageUrl {
            url: url?,
            detail: detail.flatten(),
        }))
    }

    fn file(&mut self) -> Option<Option<FileIn<'a>>> {
        if self.null() {
            return Some(None);
        }
        let (mut data, mut id) = (None, None);
        self.object(|s, k| match k {
            "file_data" => {
                let v = s.opt_string()?;
                set(&mut data, v)
            }
            "file_id" => {
                let v = s.opt_string()?;
                set(&mut id, v)
            }
            _ => s.skip(),
        })?;
        Some(Some(FileIn {
            file_data: data.flatten(),
            file_id: id.flatten(),
        }))
    }

    fn tool_call(&mut self) -> Option<ToolCall<'a>> {
        let (mut id, mut function) = (None, None);
        self.object(|s, k| match k {
            "id" => {
                let v = s.string()?;
                set(&mut id, v)
            }
            "function" => {
                let (mut name, mut arguments) = (None, None);
                s.object(|s, k| match k {
                    "name" => {
                        let v = s.string()?;
                        set(&mut name, v)
                    }
                    // Defaulted but not optional: `null` is serde's error.
                    "arguments" => {
                        let v = s.string()?;
                        set(&mut arguments, v)
                    }
                    _ => s.skip(),
                })?;
                let v = FunctionCall {
                    name: name?,
                    arguments: arguments.unwrap_or_default(),
                };
                set(&mut function, v)
            }
            _ => s.skip(),
        })?;
        Some(ToolCall {
            id: id?,
            function: function?,
        })
    }

    fn tool(&mut self) -> Option<ToolDef<'a>> {
        let (mut kind, mut search, mut function, mut cache) = (None, None, None, None);
        self.object(|s, k| match k {
            "type" => {
                let v = s.string()?;
                set(&mut kind, v)
            }
            "google_search" | "googleSearch" => {
                let v = s.serde()?;
                set(&mut search, v)
            }
            "function" => {
                let v = s.function_def()?;
                set(&mut function, v)
            }
            "cache_control" => {
                let v = s.serde()?;
                set(&mut cache, v)
            }
            _ => s.skip(),
        })?;
        Some(ToolDef {
            kind: kind.unwrap_or_default(),
            google_search: search.flatten(),
            function: function.flatten(),
            cache_control: cache.flatten(),
        })
    }

    fn function_def(&mut self) -> Option<Option<FunctionDef<'a>>> {
        if self.null() {
            return Some(None);
        }
        let (mut name, mut description, mut parameters) = (None, None, None);
        self.object(|s, k| match k {
            "name" => {
                let v = s.string()?;
                set(&mut name, v)
            }
            "description" => {
                let v = s.opt_string()?;
                set(&mut description, v)
            }
            "parameters" => {
                let v = s.serde()?;
                set(&mut parameters, v)
            }
            _ => s.skip(),
        })?;
        Some(Some(FunctionDef {
            name: name?,
            description: description.flatten(),
            parameters: parameters.flatten(),
        }))
    }

    /// An array of what `item` reads (`null` is serde's error for a list), with room for
    /// `hint` items up front: growing from empty reallocated twice for a short chat.
    fn list<T>(
        &mut self,
        hint: usize,
        mut item: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Vec<T>> {
        let mut out = Vec::with_capacity(hint);
        self.array(|s| item(s).map(|v| out.push(v)))?;
        Some(out)
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
        request(data).map(|v| format!("{v:?}"))
    }

    fn parsed(data: &str) -> Result<String, serde_json::Error> {
        serde_json::from_str::<Request<'_>>(data).map(|v| format!("{v:?}"))
    }

    fn lit(s: &str) -> BoxedStrategy<String> {
        Just(s.to_owned()).boxed()
    }

    fn boolean() -> BoxedStrategy<String> {
        prop_oneof![
            4 => Just("true".to_owned()),
            4 => Just("false".to_owned()),
            1 => Just("null".to_owned()),
            1 => Just("1".to_owned()),
        ]
        .boxed()
    }

    fn float() -> BoxedStrategy<String> {
        prop_oneof![
            Just("0.2".to_owned()),
            Just("1".to_owned()),
            Just("-0.5e1".to_owned()),
            Just("null".to_owned()),
            Just("\"0.2\"".to_owned()),
        ]
        .boxed()
    }

    /// Raw JSON values the types keep as `&RawValue`.
    fn raw() -> BoxedStrategy<String> {
        prop_oneof![
            Just("{\"type\": \"ephemeral\"}".to_owned()),
            Just("null".to_owned()),
            Just("[1, {\"a\": [true]}]".to_owned()),
            Just("\"u\\u00e9\"".to_owned()),
            Just("{}".to_owned()),
        ]
        .boxed()
    }

    fn list(item: BoxedStrategy<String>, max: usize) -> BoxedStrategy<String> {
        proptest::collection::vec(item, 0..max)
            .prop_map(|v| format!("[{}]", v.join(",")))
            .boxed()
    }

    fn role() -> BoxedStrategy<String> {
        prop_oneof![
            4 => Just("\"user\"".to_owned()),
            2 => Just("\"assistant\"".to_owned()),
            1 => Just("\"tool\"".to_owned()),
            1 => Just("\"system\"".to_owned()),
            1 => Just("null".to_owned()),
        ]
        .boxed()
    }

    fn part() -> BoxedStrategy<String> {
        let image = object(
            vec![
                member(
                    "url",
                    vec![string_or_odd(), lit("\"data:image/png;base64,AAAA\"")],
                ),
                member("detail", vec![string_or_odd()]),
                unknown(),
            ],
            false,
        );
        let file = object(
            vec![
                member("file_data", vec![string_or_odd()]),
                member("file_id", vec![string_or_odd()]),
                unknown(),
            ],
            true,
        );
        let kind = prop_oneof![
            4 => Just("\"text\"".to_owned()),
            1 => Just("\"image_url\"".to_owned()),
            1 => Just("\"file\"".to_owned()),
            1 => Just("7".to_owned()),
        ]
        .boxed();
        record(
            vec![member("type", vec![kind])],
            vec![
                member("text", vec![string_or_odd()]),
                member("image_url", vec![image, lit("null"), lit("[]")]),
                member("file", vec![file, lit("null")]),
                member("cache_control", vec![raw()]),
                unknown(),
            ],
            false,
        )
    }

    fn tool_call() -> BoxedStrategy<String> {
        let function = record(
            vec![member("name", vec![string_or_odd()])],
            vec![
                member(
                    "arguments",
                    vec![text().boxed(), lit("\"{\\\"x\\\": 1}\""), lit("null")],
                ),
                unknown(),
            ],
            false,
        );
        let call = record(
            vec![
                member("id", vec![string_or_odd()]),
                member("function", vec![function.clone(), lit("null")]),
            ],
            vec![member("type", vec![lit("\"function\"")]), unknown()],
            true,
        );
        prop_oneof![8 => call, 1 => object(vec![member("function", vec![function])], false)].boxed()
    }

    fn message() -> BoxedStrategy<String> {
        let content = prop_oneof![
            4 => text(),
            2 => list(part(), 3),
            1 => Just("null".to_owned()),
            1 => Just("{}".to_owned()),
            1 => Just("3".to_owned()),
        ]
        .boxed();
        let optional = vec![
            member("content", vec![content]),
            member(
                "tool_calls",
                vec![list(tool_call(), 3), lit("null"), lit("{}")],
            ),
            member("tool_call_id", vec![string_or_odd()]),
            member("reasoning_content", vec![string_or_odd()]),
            member("reasoning_signature", vec![string_or_odd()]),
            member("name", vec![raw()]),
            member("is_error", vec![boolean()]),
            unknown(),
        ];
        prop_oneof![
            8 => record(vec![member("role", vec![role()])], optional.clone(), false),
            // Any members, repeated or missing.
            1 => object(optional, true),
        ]
        .boxed()
    }

    fn tool() -> BoxedStrategy<String> {
        let schema = prop_oneof![
            Just(
                "{\"type\": \"object\", \"properties\": {\"q\": {\"type\": \"string\"}}}"
                    .to_owned()
            ),
            Just("null".to_owned()),
            Just("{\"a\": [1, 2.5e3, \"\\n\"]}".to_owned()),
        ]
        .boxed();
        let function = record(
            vec![member("name", vec![string_or_odd()])],
            vec![
                member("description", vec![string_or_odd()]),
                member("parameters", vec![schema]),
                member("strict", vec![boolean()]),
            ],
            true,
        );
        let kind = prop_oneof![
            6 => Just("\"function\"".to_owned()),
            1 => Just("\"google_search\"".to_owned()),
            1 => Just("null".to_owned()),
        ]
        .boxed();
        object(
            vec![
                member("type", vec![kind]),
                member("function", vec![function, lit("null")]),
                member("cache_control", vec![raw()]),
                member("google_search", vec![raw()]),
                member("googleSearch", vec![raw()]),
                unknown(),
            ],
            false,
        )
    }

    fn body() -> BoxedStrategy<String> {
        let model = prop_oneof![6 => text(), 1 => Just("null".to_owned())].boxed();
        let stop = prop_oneof![text(), list(text().boxed(), 3), Just("null".to_owned())].boxed();
        let tool_choice = prop_oneof![
            text(),
            Just("{\"type\": \"function\", \"function\": {\"name\": \"f\"}}".to_owned()),
            Just("null".to_owned()),
            Just("[]".to_owned()),
        ]
        .boxed();
        let options = prop_oneof![
            Just("{\"include_usage\": true}".to_owned()),
            Just("null".to_owned()),
            Just("{\"include_usage\": 1}".to_owned()),
        ]
        .boxed();
        let format = prop_oneof![
            Just("{\"type\": \"json_schema\", \"json_schema\": {\"name\": \"n\", \"schema\": {\"type\": \"object\"}}}".to_owned()),
            Just("{\"type\": \"text\"}".to_owned()),
            Just("null".to_owned()),
        ]
        .boxed();
        let thinking = prop_oneof![
            Just("{\"type\": \"enabled\", \"budget_tokens\": 1024}".to_owned()),
            Just("{\"budget_tokens\": 1}".to_owned()),
        ]
        .boxed();
        let optional = vec![
            member("messages", vec![list(message(), 5), lit("null")]),
            member("stream", vec![boolean()]),
            member("stream_options", vec![options]),
            member("max_tokens", vec![int()]),
            member("max_completion_tokens", vec![int()]),
            member("temperature", vec![float()]),
            member("top_p", vec![float()]),
            member("top_k", vec![int()]),
            member("n", vec![int()]),
            member("seed", vec![int(), lit("-3")]),
            member("stop", vec![stop]),
            member("logprobs", vec![boolean()]),
            member("verbosity", vec![string_or_odd()]),
            member("user", vec![raw()]),
            member("metadata", vec![raw()]),
            member("tools", vec![list(tool(), 3), lit("null")]),
            member("tool_choice", vec![tool_choice]),
            member("parallel_tool_calls", vec![boolean()]),
            member("response_format", vec![format]),
            member("reasoning_effort", vec![string_or_odd()]),
            member("thinking", vec![thinking]),
            member("safetySettings", vec![raw()]),
            member("safety_settings", vec![raw()]),
            member("additionalModelRequestFields", vec![raw()]),
            member("guardrail_config", vec![raw()]),
            unknown(),
        ];
        prop_oneof![
            8 => record(vec![member("model", vec![model])], optional.clone(), true),
            // Any members, repeated or missing.
            1 => object(optional, false),
        ]
        .boxed()
    }

    /// A nullable value of `valid`.
    fn or_null(valid: BoxedStrategy<String>) -> BoxedStrategy<String> {
        prop_oneof![4 => valid, 1 => Just("null".to_owned())].boxed()
    }

    /// Requests as clients send them: every value of a type the request accepts (with
    /// escapes, nulls, unknown members and raw JSON), so most of them are read.
    fn usual_body() -> BoxedStrategy<String> {
        let string = || text().boxed();
        let part = record(
            vec![member(
                "type",
                vec![lit("\"text\""), lit("\"image_url\""), lit("\"file\"")],
            )],
            vec![
                member("text", vec![or_null(string())]),
                member(
                    "image_url",
                    vec![record(
                        vec![member("url", vec![string()])],
                        vec![member("detail", vec![or_null(string())])],
                        false,
                    )],
                ),
                member(
                    "file",
                    vec![record(
                        vec![],
                        vec![
                            member("file_data", vec![or_null(string())]),
                            member("file_id", vec![or_null(string())]),
                        ],
                        true,
                    )],
                ),
                member("cache_control", vec![raw()]),
                unknown(),
            ],
            false,
        );
        let call = record(
            vec![
                member("id", vec![string()]),
                member(
                    "function",
                    vec![record(
                        vec![member("name", vec![string()])],
                        vec![member(
                            "arguments",
                            vec![string(), lit("\"{\\\"x\\\": 1}\"")],
                        )],
                        false,
                    )],
                ),
            ],
            vec![member("type", vec![lit("\"function\"")])],
            true,
        );
        let content = prop_oneof![4 => text(), 2 => list(part, 3), 1 => Just("null".to_owned())];
        let message = record(
            vec![member("role", vec![role()])],
            vec![
                member("content", vec![content.boxed()]),
                member("tool_calls", vec![or_null(list(call, 3))]),
                member("tool_call_id", vec![or_null(string())]),
                member("reasoning_content", vec![or_null(string())]),
                member("reasoning_signature", vec![or_null(string())]),
                member("name", vec![raw()]),
                member("is_error", vec![or_null(lit("true"))]),
                unknown(),
            ],
            false,
        );
        let tool = record(
            vec![
                member("type", vec![lit("\"function\"")]),
                member(
                    "function",
                    vec![record(
                        vec![member("name", vec![string()])],
                        vec![
                            member("description", vec![or_null(string())]),
                            member("parameters", vec![raw()]),
                        ],
                        true,
                    )],
                ),
            ],
            vec![member("cache_control", vec![raw()])],
            false,
        );
        record(
            vec![member("model", vec![string()])],
            vec![
                member("messages", vec![list(message, 5)]),
                member("stream", vec![or_null(lit("true"))]),
                member("max_tokens", vec![or_null(lit("64"))]),
                member("temperature", vec![or_null(lit("0.2"))]),
                member("stop", vec![or_null(list(string(), 2))]),
                member("tools", vec![or_null(list(tool, 2))]),
                member("tool_choice", vec![lit("\"auto\""), lit("null")]),
                member("user", vec![raw()]),
                member("reasoning_effort", vec![or_null(string())]),
                unknown(),
            ],
            true,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn usual_requests_are_read_as_serde_reads_them(data in usual_body(), cut in 0usize..600) {
            agrees(&data, cut, scanned, parsed)?;
        }

        #[test]
        fn scanner_agrees_with_serde(data in body(), cut in 0usize..600) {
            agrees(&data, cut, scanned, parsed)?;
        }

        /// Whatever the bytes, the walk reads nothing serde would refuse or read
        /// otherwise.
        #[test]
        fn arbitrary_text_is_read_as_serde_reads_it(data in "[{}\\[\\]\":,a-z0-9 .\\\\nul-]{0,60}") {
            if let Some(ours) = scanned(&data) {
                prop_assert_eq!(Some(ours), parsed(&data).ok(), "{}", data);
            }
        }
    }

    #[test]
    fn the_usual_generated_bodies_are_often_scanned() {
        assert_often_scanned(&usual_body(), scanned, parsed);
    }

    #[test]
    fn the_usual_requests_are_scanned() {
        for data in [
            include_str!("../../../../benches/e2e/body-bedrock.json"),
            include_str!("../../../../benches/e2e/body-openai.json"),
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a\nb"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA","detail":"high"}}]},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},{"role":"tool","tool_call_id":"c","content":"1"}],"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"}}}],"tool_choice":"auto","stream":true,"stream_options":{"include_usage":true},"temperature":0.2}"#,
        ] {
            assert!(request(data).is_some(), "{data}");
            assert_eq!(scanned(data), parsed(data).ok(), "{data}");
        }
    }

    #[test]
    fn what_serde_refuses_is_left_to_it() {
        for data in [
            r#"{"model":"m","model":"n"}"#,
            r#"{"model":"m","safetySettings":1,"safety_settings":2}"#,
            r#"{"messages":[]}"#,
            r#"{"model":"m","messages":[{"content":"x"}]}"#,
            r#"{"model":"m","messages":null}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"a","content":"b"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":{"text":"a"}}]}"#,
            r#"{"model":"m","max_tokens":-1}"#,
            r#"{"model":"m","n":4294967296}"#,
            "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\u{1}\"}]}",
            r#"{"model":"m"} x"#,
        ] {
            assert!(parsed(data).is_err(), "{data}");
            assert!(request(data).is_none(), "{data}");
        }
    }
}
