//! A Gemini stream chunk read by [`Scan`] instead of serde's derived visitors: the same
//! [`Response`], or `None` when serde must read the chunk (see [`crate::json_scan`]). A
//! property test checks it against the serde path.

use super::{Candidate, Content, FunctionCall, Part, PromptFeedback, Response, Usage};
use crate::json_scan::{Scan, set};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// How Gemini begins almost every stream chunk: the first candidate's content and its
/// role (which no type keeps: the scanner skips it). A chunk that begins with exactly
/// these bytes is read from the member after them, with the state reading them leaves
/// (three objects and an array open, nothing set), so the scanner's reading is the same
/// as from the start (its reading of a prefix does not depend on what follows); a
/// property test compares the two.
const HEAD: &str = r#"{"candidates":[{"content":{"role":"model","#;

/// What usually follows [`HEAD`]: the key of the content's parts (a key and its colon
/// read by the scanner leave nothing but the key).
const PARTS: &str = r#""parts":"#;

/// Where a content object is read from.
#[derive(Debug, Clone, Copy)]
enum ContentAt {
    /// Its `{`.
    Open,
    /// A member's key, after [`HEAD`].
    Key,
    /// The value of its `parts`, after [`HEAD`] and [`PARTS`].
    Parts,
}

/// Reads a chunk; `None` when it must be parsed by serde instead.
#[cfg(test)]
pub(super) fn response(data: &str) -> Option<Response<'_>> {
    response_with(data, &mut Tail::default())
}

/// The members Gemini ends almost every chunk with (`modelVersion` and `responseId`,
/// one or both, in either order), as the last chunk read ended with them. A chunk that
/// ends with exactly these bytes is read up to them: at a `,` there, after a member of
/// the response object, the scanner would read the same bytes in the same state as in
/// the last chunk (its reading of what follows does not depend on what came before), so
/// the values are taken from the same places instead. A property test compares the two.
#[derive(Debug, Default)]
pub(super) struct Tail {
    /// From the `,` before the first of these members to the end of the chunk.
    text: String,
    /// Where the `modelVersion` string is in `text`, if the tail has the member.
    model: Option<(usize, usize)>,
    /// Where the `responseId` string is in `text`, if the tail has the member.
    id: Option<(usize, usize)>,
}

/// The run of tail members that ended a response object: the position of the `,`
/// before its first member, and which members ([`MODEL`], [`ID`]) it has.
type Run = Option<(usize, u8)>;
const MODEL: u8 = 1;
const ID: u8 = 2;

impl Tail {
    /// Where the tail would begin in `data`, if `data` ends with it.
    fn stop(&self, data: &str) -> Option<usize> {
        let fits = !self.text.is_empty() && data.len() > self.text.len();
        (fits && data.ends_with(self.text.as_str())).then(|| data.len() - self.text.len())
    }

    fn clear(&mut self) {
        self.text.clear();
        (self.model, self.id) = (None, None);
    }

    /// Keeps the run of tail members a chunk ended with, when its values are strings
    /// read in place (anything else: no tail, the next chunk is read whole).
    fn record(&mut self, data: &str, run: Run, r: &Response<'_>) {
        self.clear();
        let Some((at, keys)) = run else {
            return;
        };
        let span = |v: &Option<Cow<'_, str>>| match v {
            Some(Cow::Borrowed(s)) => {
                let start = s.as_ptr().addr().checked_sub(data.as_ptr().addr())?;
                let end = start + s.len();
                (start > at && end <= data.len()).then(|| (start - at, end - at))
            }
            _ => None,
        };
        let model = if keys & MODEL == 0 {
            None
        } else {
            let Some(m) = span(&r.model_version) else {
                return;
            };
            Some(m)
        };
        let id = if keys & ID == 0 {
            None
        } else {
            let Some(i) = span(&r.response_id) else {
                return;
            };
            Some(i)
        };
        (self.model, self.id) = (model, id);
        self.text.push_str(&data[at..]);
    }
}

/// How a response object's members ended.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// At the last chunk's tail (already applied).
    Tail,
    /// At the object's `}`, after this run of tail members.
    Close(Run),
}

/// Reads a chunk with the last chunk's `tail`, which it then updates; `None` when the
/// chunk must be parsed by serde instead.
pub(super) fn response_with<'a>(data: &'a str, tail: &mut Tail) -> Option<Response<'a>> {
    let stop = tail.stop(data);
    let read = read(data, stop.map(|at| (at, &*tail)));
    match &read {
        Some((_, Ending::Tail)) => {}
        Some((r, Ending::Close(run))) => tail.record(data, *run, r),
        None => tail.clear(),
    }
    read.map(|(r, _)| r)
}

fn read<'a>(data: &'a str, tail: Option<(usize, &Tail)>) -> Option<(Response<'a>, Ending)> {
    let mut s;
    let read = if let Some(rest) = data.strip_prefix(HEAD) {
        // Most often the content's parts come next: their key is read the same way.
        let parts = rest.starts_with(PARTS);
        let (at, from) = if parts {
            (HEAD.len() + PARTS.len(), ContentAt::Parts)
        } else {
            (HEAD.len(), ContentAt::Key)
        };
        s = Scan::at(data, at);
        let content = s.content(from)?;
        let first = s.candidate_after(Some(content))?;
        s.response_after(Some(first), tail)?
    } else {
        s = Scan::new(data);
        s.response_after(None, tail)?
    };
    s.at_end().then_some(read)
}

/// [`response`] without the head or a tail: every byte read by the scanner.
#[cfg(test)]
fn from_start(data: &str) -> Option<Response<'_>> {
    let mut s = Scan::new(data);
    let r = s.response()?;
    s.at_end().then_some(r)
}

/// The chunk's objects.
trait Gemini<'a> {
    #[cfg(test)]
    fn response(&mut self) -> Option<Response<'a>>;
    /// A response whose first candidate, when given, was read up to its end (the rest
    /// of the candidates and of the response's members follow), up to a known `tail`
    /// (where it begins, what it holds) if the chunk ends with one.
    fn response_after(
        &mut self,
        first: Option<Candidate<'a>>,
        tail: Option<(usize, &Tail)>,
    ) -> Option<(Response<'a>, Ending)>;
    fn usage(&mut self) -> Option<Usage>;
    fn candidate(&mut self) -> Option<Candidate<'a>>;
    /// A candidate whose content, when given, was read up to its end (the rest of the
    /// candidate's members follow).
    fn candidate_after(&mut self, content: Option<Content<'a>>) -> Option<Candidate<'a>>;
    /// A content object, or the rest of its members from a key or from the value of
    /// its `parts` on.
    fn content(&mut self, from: ContentAt) -> Option<Content<'a>>;
    fn part(&mut self) -> Option<Part<'a>>;
    fn function_call(&mut self) -> Option<FunctionCall<'a>>;
}

impl<'a> Gemini<'a> for Scan<'a> {
    #[cfg(test)]
    fn response(&mut self) -> Option<Response<'a>> {
        self.response_after(None, None).map(|(r, _)| r)
    }

    fn response_after(
        &mut self,
        first: Option<Candidate<'a>>,
        tail: Option<(usize, &Tail)>,
    ) -> Option<(Response<'a>, Ending)> {
        let (mut candidates, mut usage, mut model, mut id, mut feedback) =
            (None, None, None, None, None);
        let resumed = first.is_some();
        if let Some(first) = first {
            let mut list = vec![first];
            self.items_after(|s| s.candidate().map(|c| list.push(c)))?;
            candidates = Some(list);
        }
        let mut field = |s: &mut Self, k: &str| match k {
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
        // `members_after` / `object`, noting the run of tail members and stopping at
        // the known tail.
        if !resumed {
            self.eat(b'{')?;
            if self.peek()? != b'}' {
                let key = self.string()?;
                self.eat(b':')?;
                field(self, &key)?;
            }
        }
        let mut run: Run = None;
        let ending = loop {
            match self.peek()? {
                b',' => {
                    let at = self.pos();
                    if tail.is_some_and(|(stop, _)| stop == at) {
                        break Ending::Tail;
                    }
                    self.eat(b',')?;
                    let key = self.string()?;
                    self.eat(b':')?;
                    field(self, &key)?;
                    let bit = match &*key {
                        "modelVersion" => MODEL,
                        "responseId" => ID,
                        _ => 0,
                    };
                    run = (bit != 0).then(|| run.map_or((at, bit), |(p, k)| (p, k | bit)));
                }
                b'}' => {
                    self.eat(b'}')?;
                    break Ending::Close(run);
                }
                _ => return None,
            }
        };
        if let (Ending::Tail, Some((at, t))) = (ending, tail) {
            let text = self.text();
            let value =
                |span: (usize, usize)| text.get(at + span.0..at + span.1).map(Cow::Borrowed);
            if let Some(m) = t.model {
                set(&mut model, Some(value(m)?))?;
            }
            if let Some(i) = t.id {
                set(&mut id, Some(value(i)?))?;
            }
            self.rewind(text.len());
        }
        let r = Response {
            candidates: candidates.unwrap_or_default(),
            usage_metadata: usage.flatten(),
            model_version: model.flatten(),
            response_id: id.flatten(),
            prompt_feedback: feedback.flatten(),
        };
        Some((r, ending))
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

    fn content(&mut self, from: ContentAt) -> Option<Content<'a>> {
        let mut parts = None;
        let mut field = |s: &mut Self, k: &str| match k {
            "parts" => {
                let mut list = Vec::with_capacity(1);
                s.array(|s| s.part().map(|p| list.push(p)))?;
                set(&mut parts, list)
            }
            _ => s.skip(),
        };
        match from {
            ContentAt::Open => self.object(field)?,
            ContentAt::Key => self.members(field)?,
            // `members` with the key and its colon read: the value and the rest.
            ContentAt::Parts => {
                field(self, "parts")?;
                self.members_after(field)?;
            }
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
                    Some(s.content(ContentAt::Open)?)
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

    /// A response object's text without its closing `}` and what follows it.
    fn open_body(chunk: &str) -> &str {
        &chunk[..chunk.rfind('}').unwrap_or(chunk.len())]
    }

    /// The end of a response object: `modelVersion` and `responseId` in either order,
    /// or one of them, mostly with the same values, and the `}`.
    fn tail() -> BoxedStrategy<String> {
        let value = || {
            prop_oneof![
                4 => Just("\"gemini-2.5-pro\"".to_owned()),
                4 => Just("\"resp-stream-1\"".to_owned()),
                2 => string_or_odd(),
            ]
        };
        let model = value().prop_map(|v| format!("\"modelVersion\":{v}"));
        let id = value().prop_map(|v| format!("\"responseId\":{v}"));
        prop_oneof![
            (model.clone(), id.clone()).prop_map(|(m, i)| format!(",{m},{i}}}")),
            (model.clone(), id.clone()).prop_map(|(m, i)| format!(", {i} ,{m}}}\n")),
            model.prop_map(|m| format!(",{m}}}")),
            id.prop_map(|i| format!(",{i}}}")),
        ]
        .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Chunks read with the last chunk's tail are read as from their start (and so
        /// as serde reads them), whether they end with that tail or not.
        #[test]
        fn chunks_read_up_to_the_last_tail_are_read_as_from_the_start(
            bodies in proptest::collection::vec(prop_oneof![headed_chunk(), chunk()], 1..5),
            tails in proptest::collection::vec(tail(), 1..3),
            picks in proptest::collection::vec(0usize..8, 5),
        ) {
            let mut t = Tail::default();
            for (k, body) in bodies.iter().enumerate() {
                let data = format!("{}{}", open_body(body), tails[picks[k] % tails.len()]);
                let ours = response_with(&data, &mut t).map(|v| format!("{v:?}"));
                prop_assert_eq!(&ours, &from_start(&data).map(|v| format!("{v:?}")), "{}", data);
            }
        }
    }

    #[test]
    fn the_fixture_chunks_are_read_up_to_the_tail() {
        let first = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hi","thought":true}]}}],"usageMetadata":{"promptTokenCount":9,"totalTokenCount":9},"modelVersion":"gemini-2.5-pro","responseId":"resp-stream-1"}"#;
        let next = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hello"}]}}],"modelVersion":"gemini-2.5-pro","responseId":"resp-stream-1"}"#;
        let mut t = Tail::default();
        assert!(response_with(first, &mut t).is_some());
        assert!(t.stop(next).is_some());
        let ours = response_with(next, &mut t).map(|v| format!("{v:?}"));
        assert_eq!(ours, from_start(next).map(|v| format!("{v:?}")));
        assert!(ours.is_some());
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
