//! A Gemini stream chunk read by [`Scan`] instead of serde's derived visitors: the same
//! [`Response`], or `None` when serde must read the chunk (see [`crate::json_scan`]). A
//! property test checks it against the serde path.

use super::{Candidate, Content, FunctionCall, Part, PromptFeedback, Response, Usage};
use crate::json_scan::{Scan, set};
use serde_json::value::RawValue;

/// How Gemini begins almost every stream chunk: the first candidate's content and its
/// role (which no type keeps: the scanner skips it). A chunk that begins with exactly
/// these bytes is read from the member after them, with the state reading them leaves
/// (three objects and an array open, nothing set), so the scanner's reading is the same
/// as from the start (its reading of a prefix does not depend on what follows); a
/// property test compares the two.
const HEAD: &str = r#"{"candidates":[{"content":{"role":"model","#;

/// Reads a chunk; `None` when it must be parsed by serde instead.
pub(super) fn response(data: &str) -> Option<Response<'_>> {
    if data.starts_with(HEAD) {
        let mut s = Scan::at(data, HEAD.len());
        let content = s.content(true)?;
        let first = s.candidate_after(Some(content))?;
        let r = s.response_after(Some(first))?;
        return s.at_end().then_some(r);
    }
    from_start(data)
}

/// [`response`] without the head: every byte read by the scanner.
fn from_start(data: &str) -> Option<Response<'_>> {
    let mut s = Scan::new(data);
    let r = s.response()?;
    s.at_end().then_some(r)
}

/// The chunk's objects.
trait Gemini<'a> {
    fn response(&mut self) -> Option<Response<'a>>;
    /// A response whose first candidate, when given, was read up to its end (the rest
    /// of the candidates and of the response's members follow).
    fn response_after(&mut self, first: Option<Candidate<'a>>) -> Option<Response<'a>>;
    fn usage(&mut self) -> Option<Usage>;
    fn candidate(&mut self) -> Option<Candidate<'a>>;
    /// A candidate whose content, when given, was read up to its end (the rest of the
    /// candidate's members follow).
    fn candidate_after(&mut self, content: Option<Content<'a>>) -> Option<Candidate<'a>>;
    /// A content object, or (`after_head`) the rest of its members from a key on.
    fn content(&mut self, after_head: bool) -> Option<Content<'a>>;
    fn part(&mut self) -> Option<Part<'a>>;
    fn function_call(&mut self) -> Option<FunctionCall<'a>>;
}

impl<'a> Gemini<'a> for Scan<'a> {
    fn response(&mut self) -> Option<Response<'a>> {
        self.response_after(None)
    }

    fn response_after(&mut self, first: Option<Candidate<'a>>) -> Option<Response<'a>> {
        let (mut candidates, mut usage, mut model, mut id, mut feedback) =
            (None, None, None, None, None);
        let resumed = first.is_some();
        if let Some(first) = first {
            let mut list = vec![first];
            self.items_after(|s| s.candidate().map(|c| list.push(c)))?;
            candidates = Some(list);
        }
        let field = |s: &mut Self, k: &str| match k {
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
        };
        if resumed {
            self.members_after(field)?;
        } else {
            self.object(field)?;
        }
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

    fn content(&mut self, after_head: bool) -> Option<Content<'a>> {
        let mut parts = None;
        let field = |s: &mut Self, k: &str| match k {
            "parts" => {
                let mut list = Vec::with_capacity(1);
                s.array(|s| s.part().map(|p| list.push(p)))?;
                set(&mut parts, list)
            }
            _ => s.skip(),
        };
        if after_head {
            self.members(field)?;
        } else {
            self.object(field)?;
        }
        Some(Content {
            parts: parts.unwrap_or_default(),
        })
    }

    fn candidate(&mut self) -> Option<Candidate<'a>> {
        self.candidate_after(None)
    }

    fn candidate_after(&mut self, read: Option<Content<'a>>) -> Option<Candidate<'a>> {
        let (mut content, mut finish, mut index) = (None, None, None);
        let resumed = read.is_some();
        if let Some(c) = read {
            content = Some(Some(c));
        }
        let field = |s: &mut Self, k: &str| match k {
            "content" => {
                let c = if s.null() {
                    None
                } else {
                    Some(s.content(false)?)
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
        };
        if resumed {
            self.members_after(field)?;
        } else {
            self.object(field)?;
        }
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
                let v = s.opt_bool()?;
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
    use crate::json_scan::strategies::{
        agrees, assert_often_scanned, int, member, object, record, string_or_odd, text, unknown,
    };
    use proptest::prelude::*;

    fn scanned(data: &str) -> Option<String> {
        response(data).map(|v| format!("{v:?}"))
    }

    fn parsed(data: &str) -> Result<String, serde_json::Error> {
        serde_json::from_str::<Response<'_>>(data).map(|v| format!("{v:?}"))
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

    fn content() -> BoxedStrategy<String> {
        let parts = proptest::collection::vec(part(), 0..3)
            .prop_map(|p| format!("[{}]", p.join(",")))
            .boxed();
        object(
            vec![
                member("parts", vec![parts, Just("null".to_owned()).boxed()]),
                unknown(),
            ],
            true,
        )
    }

    fn candidate() -> BoxedStrategy<String> {
        object(
            vec![
                member("content", vec![content(), Just("null".to_owned()).boxed()]),
                member("finishReason", vec![string_or_odd()]),
                member("index", vec![int()]),
                unknown(),
            ],
            false,
        )
    }

    fn chunk() -> BoxedStrategy<String> {
        let candidates = proptest::collection::vec(candidate(), 0..3)
            .prop_map(|c| format!("[{}]", c.join(",")))
            .boxed();
        object(response_members(candidates), true)
    }

    /// A response object's members, `candidates` first.
    fn response_members(candidates: BoxedStrategy<String>) -> Vec<BoxedStrategy<String>> {
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
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn scanner_agrees_with_serde(data in chunk(), cut in 0usize..400) {
            agrees(&data, cut, scanned, parsed)?;
        }
    }

    /// An object's text after its first member: `}` or `,` and the other members.
    fn after_first(object: &str) -> String {
        match object {
            "{}" => "}".to_owned(),
            _ => format!(",{}", &object[1..]),
        }
    }

    /// Chunks that begin with [`HEAD`]: the rest of the first candidate's content, of
    /// the candidate, of the candidates and of the response (repeated members, other
    /// candidates and damage included).
    fn headed_chunk() -> BoxedStrategy<String> {
        // Mostly objects without repeated members (serde's error), now and then any.
        let more = prop_oneof![
            3 => Just(String::new()),
            1 => candidate().prop_map(|c| format!(",{c}")),
        ];
        let parts = proptest::collection::vec(part(), 0..2)
            .prop_map(|p| format!("[{}]", p.join(",")))
            .boxed();
        let content = prop_oneof![
            3 => record(vec![member("parts", vec![parts])], vec![unknown()], false),
            1 => content(),
        ];
        let candidate_rest = vec![
            member("finishReason", vec![string_or_odd()]),
            member("index", vec![int()]),
            unknown(),
        ];
        let candidate = prop_oneof![
            3 => record(Vec::new(), candidate_rest, false),
            1 => candidate(),
        ];
        let response_rest = response_members(Just("[]".to_owned()).boxed()).split_off(1);
        let response = prop_oneof![
            3 => record(Vec::new(), response_rest, false),
            1 => chunk(),
        ];
        (content, candidate, more, response)
            .prop_map(|(content, candidate, more, response)| {
                let inner = content.trim_start_matches('{');
                format!(
                    "{HEAD}{inner}{}{more}]{}",
                    after_first(&candidate),
                    after_first(&response)
                )
            })
            .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// A chunk read after the head is read as from its start, and as serde reads it.
        #[test]
        fn chunks_after_the_head_are_read_as_from_the_start(
            data in headed_chunk(),
            cut in 0usize..400,
        ) {
            let cut = data.floor_char_boundary(cut.min(data.len()));
            for text in [data.clone(), data[..cut].to_owned(), format!("{data}x")] {
                let ours = response(&text).map(|v| format!("{v:?}"));
                prop_assert_eq!(&ours, &from_start(&text).map(|v| format!("{v:?}")), "{}", text);
            }
            agrees(&data, cut, scanned, parsed)?;
        }
    }

    #[test]
    fn the_headed_chunks_are_often_scanned() {
        assert_often_scanned(&headed_chunk(), scanned, parsed);
    }

    #[test]
    fn the_generated_chunks_are_often_scanned() {
        assert_often_scanned(&chunk(), scanned, parsed);
    }

    #[test]
    fn the_fixture_chunks_are_scanned() {
        for data in [
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hello"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":9,"totalTokenCount":9},"modelVersion":"gemini-2.5-pro","responseId":"r"}"#,
            r#"{"responseId":"g","candidates":[{"content":{"parts":[{"functionCall":{"id":"fc","name":"get_weather","args":{"location":"Tokyo"}}}]},"finishReason":"STOP"}]}"#,
        ] {
            assert!(response(data).is_some(), "{data}");
            assert_eq!(scanned(data), parsed(data).ok(), "{data}");
        }
    }
}
