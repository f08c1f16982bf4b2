//! The generated text of a stream, read from its client-format events as they pass, kept
//! for the estimate of a stream that is cut off.
//!
//! Only the text is kept (content, reasoning and tool-call deltas), not the event bytes:
//! a few hundred bytes for a typical reply where its events take ten times that, and
//! the upstream's read buffers are never referenced.

use crate::api::Endpoint;
use crate::api::final_body::Cursor;
use crate::api::quotes::Quotes;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// The most text kept per exchange; beyond it only the size is known and is estimated
/// at the ratio of the kept text. A quarter of a million tokens or so: more than any
/// model's output limit.
const TEXT_CAP: usize = 1024 * 1024;

/// The longest event line carried over a chunk boundary; a longer one is not parsed and
/// counts by its size.
const LINE_CAP: usize = 1024 * 1024;

/// A carry buffer above this capacity is freed once its line is read, so one large
/// event does not stay allocated for the rest of the stream.
const CARRY_KEEP: usize = 4 * 1024;

/// The generated text of a stream's client-format events (sent to the client, or read
/// by a drain after it left), kept until the exchange ends so a cut stream can be
/// estimated from it.
///
/// Each chunk's complete `data:` lines are read as they arrive; a line split across
/// chunks waits in a carry buffer for its end. What is kept depends on the bytes alone,
/// never on where the chunks were split, so the estimate is the same for any split.
#[derive(Default)]
pub struct Delivered {
    text: String,
    /// Bytes beyond the caps, not kept; estimated by size.
    dropped: u64,
    /// The unterminated last line of the chunks so far.
    carry: Vec<u8>,
    /// Whether the line being carried outgrew [`LINE_CAP`] and is being skipped.
    overlong: bool,
    /// The last walked chunk's bytes before its `"choices"` key ([`chunk_text`]).
    head: Vec<u8>,
}

/// The kept text and what is carried; not the head, which only saves work.
impl fmt::Debug for Delivered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivered")
            .field("text", &self.text)
            .field("dropped", &self.dropped)
            .field("carry", &self.carry)
            .field("overlong", &self.overlong)
            .finish_non_exhaustive()
    }
}

impl Delivered {
    /// Reads the text of a chunk sent to the client.
    pub fn push(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            let line = &rest[..i];
            rest = &rest[i + 1..];
            if self.carry.is_empty() && !self.overlong {
                self.line(line);
                continue;
            }
            self.carry_more(line);
            if std::mem::take(&mut self.overlong) {
                continue;
            }
            let mut carried = std::mem::take(&mut self.carry);
            self.line(&carried);
            if carried.capacity() <= CARRY_KEEP {
                carried.clear();
                self.carry = carried;
            }
        }
        self.carry_more(rest);
    }

    /// Appends to the carried line, or counts it by size once it is too long to keep.
    fn carry_more(&mut self, part: &[u8]) {
        if self.overlong {
            self.dropped += part.len() as u64;
        } else if self.carry.len() + part.len() > LINE_CAP {
            self.dropped += (self.carry.len() + part.len()) as u64;
            self.carry = Vec::new();
            self.overlong = true;
        } else {
            self.carry.extend_from_slice(part);
        }
    }

    /// Keeps the text a translator reported for the events it wrote (one piece per
    /// event), as [`Delivered::push`] would keep it from those events' bytes.
    pub fn push_text(&mut self, text: &EventText) {
        let mut start = 0;
        for &end in &text.ends {
            let piece = text.text.get(start..end).unwrap_or_default();
            start = end;
            let before = self.text.len();
            self.text.push_str(piece);
            self.cap(before);
        }
    }

    /// Keeps the text of one complete line, within the cap.
    fn line(&mut self, line: &[u8]) {
        let before = self.text.len();
        line_text_with(line, &mut self.text, Some(&mut self.head));
        self.cap(before);
    }

    /// Drops what the last line or event added when it took the kept text past the
    /// cap: a whole event either way, so the count does not depend on how the text
    /// reached the exchange.
    fn cap(&mut self, before: usize) {
        if self.text.len() > TEXT_CAP {
            self.dropped += (self.text.len() - before) as u64;
            self.text.truncate(before);
        }
    }

    /// Text bytes delivered so far (kept or not), the last unterminated line left out.
    pub fn bytes(&self) -> u64 {
        self.text.len() as u64 + self.dropped
    }

    /// Whether nothing that may carry text was delivered.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.dropped == 0 && self.carry.is_empty()
    }

    /// Estimated output tokens of what was delivered, an unterminated last line
    /// included.
    pub fn output_tokens(&self, endpoint: Endpoint, model: &str) -> u64 {
        let _ = endpoint;
        let mut dropped = self.dropped;
        let text = if self.carry.is_empty() {
            Cow::Borrowed(self.text.as_str())
        } else {
            let mut all = self.text.clone();
            line_text(&self.carry, &mut all);
            if all.len() > TEXT_CAP {
                dropped += (all.len() - self.text.len()) as u64;
                all.truncate(self.text.len());
            }
            Cow::Owned(all)
        };
        let counted = super::count_tokens(model, &text);
        // Beyond the cap only the size is known: the ratio of tokens to text bytes seen
        // so far applies to the rest.
        let extra = match text.len() as u64 {
            _ if dropped == 0 => 0,
            0 => dropped.div_ceil(4),
            kept => u64::try_from(u128::from(dropped) * u128::from(counted) / u128::from(kept))
                .unwrap_or(u64::MAX),
        };
        counted.saturating_add(extra)
    }
}

/// The generated text of the events one translated chunk wrote, one piece per event,
/// as [`Delivered::push`] reads it from each event's line. A translator that writes whole
/// events and knows their text reports it here ([`crate::Translator::event_text`])
/// so the exchange does not parse its own output again for the estimate.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EventText {
    text: String,
    /// Where each event's piece ends in `text`.
    ends: Vec<usize>,
}

impl EventText {
    /// Adds the text of one event: what [`Delivered::push`] would read from its line.
    /// An event without text needs no call.
    pub fn push(&mut self, piece: &str) {
        if !piece.is_empty() {
            self.text.push_str(piece);
            self.ends.push(self.text.len());
        }
    }

    /// Forgets the pieces (a translator clears them before each chunk).
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    /// Whether no event with text was reported.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// Appends the generated text of one event-stream line: a `data:` line holding an
/// OpenAI chat or completion chunk, a Responses API `*.delta` event or an Anthropic
/// `content_block_delta` (or a tool call's `content_block_start`). Summaries that
/// repeat earlier deltas (`*.done`, `response.completed`) are skipped so nothing is
/// counted twice.
pub(super) fn line_text(line: &[u8], out: &mut String) {
    line_text_with(line, out, None);
}

/// [`line_text`], remembering in `head` how the chunks of a stream begin.
pub(super) fn line_text_with(line: &[u8], out: &mut String, head: Option<&mut Vec<u8>>) {
    let Some(data) = line.strip_prefix(b"data:") else {
        return;
    };
    let data = data.trim_ascii();
    // `[DONE]` and anything but an object carries no text.
    if data.first() != Some(&b'{') {
        return;
    }
    let before = out.len();
    if chunk_text(data, out, head).is_some() {
        return;
    }
    out.truncate(before);
    parsed_text(data, out);
}

/// The text of an event's JSON by serde: the typed fields, or the general tree when
/// the event has an unusual shape. The definition [`chunk_text`] agrees with.
fn parsed_text(data: &[u8], out: &mut String) {
    match serde_json::from_slice::<Event<'_>>(data) {
        Ok(event) => event.text(out),
        // An event of an unusual shape (a field of another type, a repeated key): read
        // through the general tree, which skips what it does not recognise.
        Err(_) => {
            if let Ok(v) = serde_json::from_slice::<Value>(data) {
                value_text(&v, out);
            }
        }
    }
}

/// [`Event::text`] of an OpenAI chat or completion chunk (a non-null `choices` array,
/// none of the other dialects' `type`, `delta` or `content_block`), read by walking
/// its members: the values it does not need are delimited by their brackets and
/// quotes, not parsed. The typed parse cost ≈ 6 k instructions for a simulator's
/// chunk, mostly on the members it ignores.
///
/// `None` whenever the walk is not sure it reads what the typed parse would (another
/// shape, a member of an unexpected type, a repeated member, an escaped key), and the
/// line is then parsed as before; what it appended by then is the caller's to drop.
/// Like [`crate::api::final_body`]'s scan it does not check the syntax inside values
/// it skips, so a chunk malformed only there still gives its text, where the parse
/// would have given none: the estimate counts text the client was sent either way.
///
/// A stream's chunks begin with the same bytes (`{"id":…,"object":…,"created":…,
/// "model":…,` in OpenAI's and the usual servers' order): `head` keeps them from the
/// last chunk walked in full, up to its `"choices"` key, and a chunk that begins with
/// them is walked from there, as walking the same bytes again would end in the same
/// place with nothing read.
fn chunk_text(data: &[u8], out: &mut String, mut head: Option<&mut Vec<u8>>) -> Option<()> {
    let quotes = Quotes::new();
    let mut c = Cursor::new(data, &quotes);
    let resume = head
        .as_deref()
        .map_or(0, |h| if data.starts_with(h) { h.len() } else { 0 });
    let mut choices = false;
    let mut member = |c: &mut Cursor<'_, '_>, key: &[u8]| match key {
        b"choices" if !choices => {
            choices = true;
            if resume == 0
                && let Some(head) = head.as_deref_mut()
            {
                // The key's opening quote: where the next chunk's walk resumes.
                let at = (key.as_ptr() as usize - data.as_ptr() as usize).checked_sub(1)?;
                head.clear();
                head.extend_from_slice(data.get(..at)?);
            }
            each(c, |c| choice_text(c, out))
        }
        b"choices" | b"type" | b"delta" | b"content_block" => None,
        _ => c.skip_value(),
    };
    if resume > 0 {
        c.seek(resume);
        c.members(&mut member)?;
    } else {
        c.object(&mut member)?;
    }
    (choices && c.at_end()).then_some(())
}

/// The elements of an array, each read by `element`; `null` is not an array here.
fn each<'a, 'q>(
    c: &mut Cursor<'a, 'q>,
    element: impl FnMut(&mut Cursor<'a, 'q>) -> Option<()>,
) -> Option<()> {
    if c.peek()? != b'[' {
        return None;
    }
    c.array(element)
}

/// One choice: its `text`, then its delta's text fields in [`Event::text`]'s order
/// whatever the order of the members.
fn choice_text(c: &mut Cursor<'_, '_>, out: &mut String) -> Option<()> {
    if usual_choice(c, out).is_some() {
        return Some(());
    }
    let (mut text, mut delta) = (None, None);
    c.object(|c, key| match key {
        b"text" if text.is_none() => {
            text = Some(c.null_or(b'"')?);
            Some(())
        }
        b"delta" if delta.is_none() => {
            delta = Some(c.nullable(delta_spans)?);
            Some(())
        }
        b"text" | b"delta" => None,
        _ => c.skip_value(),
    })?;
    push_span(text.flatten(), out)?;
    let Some((fields, tools)) = delta.flatten() else {
        return Some(());
    };
    for f in fields {
        push_span(f, out)?;
    }
    let Some(tools) = tools else {
        return Some(());
    };
    let mut t = c.over(tools);
    each(&mut t, |t| tool_text(t, out))
}

/// A JSON string token or array in the line, when present and not `null`.
type Span<'a> = Option<&'a [u8]>;

/// The spans of a delta's text fields (`content`, `reasoning_content`, `reasoning`,
/// `refusal`) and of its `tool_calls` array, read in place: the tool calls' text comes
/// after the fields whatever the order of the members, so their array is walked once
/// the fields are out.
fn delta_spans<'a>(d: &mut Cursor<'a, '_>) -> Option<([Span<'a>; 4], Span<'a>)> {
    let mut fields: [Span<'a>; 4] = [None; 4];
    let mut seen = [false; 5];
    let mut tools = None;
    d.object(|d, key| {
        let slot = match key {
            b"content" => 0,
            b"reasoning_content" => 1,
            b"reasoning" => 2,
            b"refusal" => 3,
            b"tool_calls" => 4,
            _ => return d.skip_value(),
        };
        if std::mem::replace(&mut seen[slot], true) {
            return None;
        }
        match fields.get_mut(slot) {
            Some(f) => *f = d.null_or(b'"')?,
            None => tools = d.null_or(b'[')?,
        }
        Some(())
    })?;
    Some((fields, tools))
}

/// A choice in the shape OpenAI streams its content in, byte for byte but for the
/// text: `{"index":0,"delta":{"content":"…"},"logprobs":null,"finish_reason":null}`,
/// the text without escapes or control characters. Read by comparing the bytes around
/// it, the cursor left where it was when the choice is any other.
fn usual_choice(c: &mut Cursor<'_, '_>, out: &mut String) -> Option<()> {
    const BEFORE: &[u8] = br#"{"index":0,"delta":{"content":""#;
    const AFTER: &[u8] = br#""},"logprobs":null,"finish_reason":null}"#;
    let rest = c.rest().strip_prefix(BEFORE)?;
    let from = c.pos() + BEFORE.len();
    let end = c.find_quote(from)?;
    let text = rest.get(..end - from)?;
    if !rest.get(end - from..)?.starts_with(AFTER) || text.iter().any(|b| *b < 0x20) {
        return None;
    }
    out.push_str(std::str::from_utf8(text).ok()?);
    c.seek(end + AFTER.len());
    Some(())
}

/// One tool call's function name and arguments.
fn tool_text(c: &mut Cursor<'_, '_>, out: &mut String) -> Option<()> {
    let mut function = None;
    c.object(|c, key| match key {
        b"function" if function.is_none() => {
            function = Some(c.nullable(function_spans)?);
            Some(())
        }
        b"function" => None,
        _ => c.skip_value(),
    })?;
    let Some((name, arguments)) = function.flatten() else {
        return Some(());
    };
    push_span(name, out)?;
    push_span(arguments, out)
}

/// The spans of a function's `name` and `arguments`, read in place.
fn function_spans<'a>(f: &mut Cursor<'a, '_>) -> Option<(Span<'a>, Span<'a>)> {
    let (mut name, mut arguments) = (None, None);
    f.object(|f, key| match key {
        b"name" if name.is_none() => {
            name = Some(f.null_or(b'"')?);
            Some(())
        }
        b"arguments" if arguments.is_none() => {
            arguments = Some(f.null_or(b'"')?);
            Some(())
        }
        b"name" | b"arguments" => None,
        _ => f.skip_value(),
    })?;
    Some((name.flatten(), arguments.flatten()))
}

/// Appends a JSON string token (quotes included), unescaped; `None` when it is not
/// valid (serde then decides).
fn push_span(span: Option<&[u8]>, out: &mut String) -> Option<()> {
    let Some(span) = span else {
        return Some(());
    };
    let inner = span.get(1..span.len().checked_sub(1)?)?;
    if !inner.contains(&b'\\') && !inner.iter().any(|c| *c < 0x20) {
        out.push_str(std::str::from_utf8(inner).ok()?);
        return Some(());
    }
    let s: Cow<'_, str> = serde_json::from_slice(span).ok()?;
    out.push_str(&s);
    Some(())
}

/// The fields of an event that carry text, borrowed from the line where unescaped.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow, default)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    delta: Option<TopDelta<'a>>,
    #[serde(borrow, default)]
    content_block: Option<Named<'a>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    delta: Option<ChoiceDelta<'a>>,
}

#[derive(Deserialize)]
struct ChoiceDelta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(borrow, default)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
}

/// An Anthropic delta's text fields.
#[derive(Deserialize)]
struct BlockDelta<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
}

/// A top-level `delta`: a string in Responses API events, an object in Anthropic's.
enum TopDelta<'a> {
    Text(Cow<'a, str>),
    Block(BlockDelta<'a>),
}

impl<'de: 'a, 'a> Deserialize<'de> for TopDelta<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = TopDelta<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an object")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(TopDelta::Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(TopDelta::Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(TopDelta::Text(Cow::Owned(s)))
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                BlockDelta::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(TopDelta::Block)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

fn push(s: Option<&Cow<'_, str>>, out: &mut String) {
    if let Some(s) = s {
        out.push_str(s);
    }
}

impl Event<'_> {
    fn text(&self, out: &mut String) {
        if let Some(choices) = &self.choices {
            for c in choices {
                push(c.text.as_ref(), out);
                let Some(d) = &c.delta else { continue };
                for s in [&d.content, &d.reasoning_content, &d.reasoning, &d.refusal] {
                    push(s.as_ref(), out);
                }
                for t in d.tool_calls.iter().flatten() {
                    let f = t.function.as_ref();
                    push(f.and_then(|f| f.name.as_ref()), out);
                    push(f.and_then(|f| f.arguments.as_ref()), out);
                }
            }
            return;
        }
        let kind = self.kind.as_deref().unwrap_or("");
        match &self.delta {
            Some(TopDelta::Block(d)) if kind == "content_block_delta" => {
                for s in [&d.text, &d.partial_json, &d.thinking] {
                    push(s.as_ref(), out);
                }
            }
            Some(TopDelta::Text(s))
                if kind.starts_with("response.") && kind.ends_with(".delta") =>
            {
                out.push_str(s);
            }
            _ if kind == "content_block_start" => {
                // A tool call's name arrives with its block, its arguments as deltas.
                push(
                    self.content_block.as_ref().and_then(|b| b.name.as_ref()),
                    out,
                );
            }
            _ => {}
        }
    }
}

fn push_value(v: Option<&Value>, out: &mut String) {
    if let Some(Value::String(s)) = v {
        out.push_str(s);
    }
}

/// [`Event::text`] over a general JSON tree.
fn value_text(v: &Value, out: &mut String) {
    if let Some(choices) = v.get("choices").and_then(Value::as_array) {
        for c in choices {
            push_value(c.get("text"), out);
            let Some(d) = c.get("delta") else { continue };
            for k in ["content", "reasoning_content", "reasoning", "refusal"] {
                push_value(d.get(k), out);
            }
            for t in d
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let f = t.get("function");
                push_value(f.and_then(|f| f.get("name")), out);
                push_value(f.and_then(|f| f.get("arguments")), out);
            }
        }
        return;
    }
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
    if kind == "content_block_delta" {
        if let Some(d) = v.get("delta") {
            for k in ["text", "partial_json", "thinking"] {
                push_value(d.get(k), out);
            }
        }
    } else if kind == "content_block_start" {
        push_value(v.get("content_block").and_then(|b| b.get("name")), out);
    } else if kind.starts_with("response.") && kind.ends_with(".delta") {
        push_value(v.get("delta"), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Events of every dialect the estimate reads, escapes, a multi-byte character, CRLF
    /// line ends, an unterminated last line and shapes the typed reader rejects.
    const STREAM: &str = concat!(
        "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"lo \\\"q\\\" \\u00e9\",\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}],\"usage\":null}\r\n\r\n",
        "data: {\"choices\":[{\"text\":\"done\",\"delta\":{\"reasoning_content\":\"r\",\"refusal\":null}}]}\n\n",
        "data: [DONE]\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"name\":\"get\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\" world ☃\"}}\n\n",
        "data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":1}\"}}\n\n",
        "data: {\"type\":\"response.output_text.delta\",\"delta\":\"!\"}\n\n",
        "data: {\"type\":\"response.output_text.done\",\"text\":\"repeated\"}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":[\"odd\"],\"reasoning\":\"kept\"}}]}\n\n",
        "data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"twice\",\"text\":\"last\"}}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"tail\"}}]}",
    );

    fn whole(sse: &[u8]) -> Delivered {
        let mut d = Delivered::default();
        d.push(sse);
        d
    }

    #[test]
    fn the_typed_reader_agrees_with_the_tree() {
        // The usual events take the typed path; the last two fall back to the tree.
        let typed = STREAM
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter(|d| serde_json::from_str::<Event<'_>>(d.trim()).is_ok())
            .count();
        assert_eq!(typed, 9);
        for line in STREAM.lines() {
            let (mut typed, mut tree) = (String::new(), String::new());
            line_text(line.as_bytes(), &mut typed);
            if let Some(data) = line.strip_prefix("data:")
                && let Ok(v) = serde_json::from_str::<Value>(data.trim())
            {
                value_text(&v, &mut tree);
            }
            assert_eq!(typed, tree, "{line}");
        }
    }

    #[test]
    fn only_the_text_is_kept() {
        let d = whole(STREAM.as_bytes());
        let expected = "Hello \"q\" éf{}donerget world ☃{\"a\":1}!keptlast";
        assert_eq!(d.text, expected);
        assert_eq!(
            d.carry,
            b"data: {\"choices\":[{\"delta\":{\"content\":\"tail\"}}]}"
        );
        // The unterminated last line counts too: "…tail" in bytes/4.
        let all = expected.len() + "tail".len();
        assert_eq!(
            d.output_tokens(Endpoint::ChatCompletions, "llama"),
            (all as u64).div_ceil(4)
        );
    }

    #[test]
    fn an_overlong_line_counts_by_size() {
        let mut d = Delivered::default();
        d.push(b"data: {\"choices\":[{\"delta\":{\"content\":\"abcd\"}}]}\n");
        let long = vec![b'x'; LINE_CAP + 10];
        d.push(b"data: ");
        d.push(&long);
        d.push(b"\ndata: {\"choices\":[{\"delta\":{\"content\":\"efgh\"}}]}\n");
        assert_eq!(d.text, "abcdefgh");
        assert_eq!(d.dropped, (LINE_CAP + 16) as u64);
        assert!(d.carry.capacity() <= CARRY_KEEP);
    }

    /// A JSON string token: plain, or with escapes, multi-byte and control characters.
    fn json_str() -> BoxedStrategy<String> {
        prop_oneof![
            3 => "[a-zA-Z0-9 ,.]{0,40}",
            1 => "[a-z\"\\\\/\n\t\u{1}é☃]{0,8}",
        ]
        .prop_map(|s| serde_json::to_string(&s).unwrap_or_default())
        .boxed()
    }

    /// A text field's value: usually a string or null, rarely of another type.
    fn text_value() -> BoxedStrategy<String> {
        prop_oneof![
            30 => json_str(),
            10 => Just("null".to_owned()),
            1 => Just("7".to_owned()),
            1 => Just("[\"x\"]".to_owned()),
            1 => Just("{\"content\":\"in\"}".to_owned()),
        ]
        .boxed()
    }

    /// A member the readers skip: scalars, and nested values holding brackets and
    /// text-like members inside strings and objects.
    fn other_value() -> BoxedStrategy<String> {
        prop_oneof![
            json_str(),
            Just("null".to_owned()),
            Just("-1.5e3".to_owned()),
            Just("true".to_owned()),
            Just("[1,{\"x\":[\"]}\\\"\"]},[]]".to_owned()),
            Just("{\"choices\":[{\"delta\":{\"content\":\"no\"}}]}".to_owned()),
        ]
        .boxed()
    }

    /// A member that is absent with weight `absent`, else once, rarely twice.
    type Known = (&'static str, BoxedStrategy<String>, u32);

    /// An object of `known` members, an unknown member or two and, rarely, an escaped
    /// key, in any order; compact or spaced.
    fn object(known: Vec<Known>) -> BoxedStrategy<String> {
        let members: Vec<BoxedStrategy<Vec<(String, String)>>> = known
            .into_iter()
            .map(|(k, v, absent)| {
                let count = prop_oneof![absent => Just(0usize), 12 => Just(1), 1 => Just(2)];
                (count, proptest::collection::vec(v, 2))
                    .prop_map(move |(n, vs)| {
                        vs.into_iter()
                            .take(n)
                            .map(|v| (format!("\"{k}\""), v))
                            .collect()
                    })
                    .boxed()
            })
            .collect();
        let key = prop_oneof![
            12 => "[a-z_]{1,12}".prop_map(|k| format!("\"{k}\"")),
            1 => Just("\"cont\\u0065nt\"".to_owned()),
        ];
        let unknown = proptest::collection::vec((key, other_value()), 0..3);
        (members, unknown, any::<bool>())
            .prop_flat_map(|(members, unknown, spaced)| {
                let all: Vec<_> = members.into_iter().flatten().chain(unknown).collect();
                Just(all).prop_shuffle().prop_map(move |all| {
                    let sep = if spaced { ", " } else { "," };
                    let colon = if spaced { ": " } else { ":" };
                    let body: Vec<_> = all.iter().map(|(k, v)| format!("{k}{colon}{v}")).collect();
                    format!("{{{}}}", body.join(sep))
                })
            })
            .boxed()
    }

    fn array(element: BoxedStrategy<String>) -> BoxedStrategy<String> {
        prop_oneof![
            12 => proptest::collection::vec(element, 0..3).prop_map(|v| format!("[{}]", v.join(","))),
            1 => Just("null".to_owned()),
            1 => Just("[1]".to_owned()),
        ]
        .boxed()
    }

    fn null_or(v: BoxedStrategy<String>, odd: &'static str) -> BoxedStrategy<String> {
        prop_oneof![12 => v, 1 => Just("null".to_owned()), 1 => Just(odd.to_owned())].boxed()
    }

    /// OpenAI chat and completion chunks of every shape the readers meet.
    fn chunk() -> BoxedStrategy<String> {
        let function = object(vec![
            ("name", text_value(), 2),
            ("arguments", text_value(), 2),
        ]);
        let tool = object(vec![
            ("index", Just("0".to_owned()).boxed(), 1),
            ("function", null_or(function, "[]"), 2),
        ]);
        let delta = object(vec![
            ("role", json_str(), 3),
            ("content", text_value(), 3),
            ("reasoning_content", text_value(), 20),
            ("reasoning", text_value(), 20),
            ("refusal", text_value(), 12),
            ("tool_calls", array(tool), 12),
        ]);
        let choice = object(vec![
            ("index", Just("0".to_owned()).boxed(), 1),
            ("text", text_value(), 12),
            ("delta", null_or(delta, "\"d\""), 1),
            ("finish_reason", text_value(), 2),
        ]);
        object(vec![
            ("id", json_str(), 1),
            (
                "object",
                Just("\"chat.completion.chunk\"".to_owned()).boxed(),
                2,
            ),
            ("model", json_str(), 1),
            ("choices", array(null_or(choice, "3")), 1),
            (
                "usage",
                prop_oneof![
                    Just("null".to_owned()),
                    Just("{\"prompt_tokens\":1}".to_owned())
                ]
                .boxed(),
                4,
            ),
            (
                "type",
                prop_oneof![Just("\"x\"".to_owned()), Just("1".to_owned())].boxed(),
                60,
            ),
        ])
    }

    /// Chunks in OpenAI's own shape, as a stream repeats them: one of two heads, the
    /// usual choice (its text plain, escaped, multi-byte or with a control character)
    /// or another, and one of the tails OpenAI and the usual servers write.
    fn usual() -> BoxedStrategy<String> {
        let head = prop_oneof![
            Just(
                r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":null,"#
            ),
            Just(r#"{"id":"chatcmpl-2","object":"chat.completion.chunk","created":1,"model":"m","#),
        ];
        let choice = prop_oneof![
            4 => json_str().prop_map(|t| format!(
                r#"{{"index":0,"delta":{{"content":{t}}},"logprobs":null,"finish_reason":null}}"#
            )),
            1 => Just(r#"{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}"#.to_owned()),
            1 => Just(r#"{"index":0,"delta":{"content":"a"},"logprobs":null,"finish_reason":null,"x":1}"#.to_owned()),
        ];
        let tail = prop_oneof![
            Just("}"),
            Just(r#","usage":null}"#),
            Just(r#","obfuscation":"Zx9"}"#),
            Just(r#", "usage": {"prompt_tokens":1}}"#),
        ];
        (head, proptest::collection::vec(choice, 0..3), tail)
            .prop_map(|(h, c, t)| format!(r#"{h}"choices":[{}]{t}"#, c.join(",")))
            .boxed()
    }

    #[test]
    fn the_usual_chunks_are_walked() {
        let sim = br#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"a1"}"#;
        let tools = br#"{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t","type":"function","function":{"name":"get","arguments":"{\"a\":\"\u00e9\"}"}}]}}]}"#;
        let usage = br#"{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}"#;
        for data in [&sim[..], tools, usage] {
            let (mut walked, mut parsed) = (String::new(), String::new());
            assert!(chunk_text(data, &mut walked, None).is_some());
            parsed_text(data, &mut parsed);
            assert_eq!(walked, parsed);
        }
    }

    #[test]
    fn the_generated_chunks_are_often_walked() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = chunk();
        let walked = (0..300)
            .filter_map(|_| strategy.new_tree(&mut runner).ok())
            .filter(|t| chunk_text(t.current().as_bytes(), &mut String::new(), None).is_some())
            .count();
        assert!(walked > 60, "{walked} of 300 walked");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Where the walk reads a chunk, it reads the text the parse does; it reads
        /// most of the usual ones.
        #[test]
        fn the_walk_agrees_with_the_parse(data in chunk()) {
            let (mut walked, mut parsed) = (String::new(), String::new());
            parsed_text(data.as_bytes(), &mut parsed);
            if chunk_text(data.as_bytes(), &mut walked, None).is_some() {
                prop_assert_eq!(&walked, &parsed, "{}", data);
            }
            // The line reader gives the parse's text either way.
            let mut line = String::new();
            line_text(format!("data: {data}").as_bytes(), &mut line);
            prop_assert_eq!(&line, &parsed);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// A stream of chunks, most sharing their head with the one before: the kept
        /// text is what the parse reads from each line.
        #[test]
        fn a_stream_of_chunks_keeps_the_parsed_text(
            lines in proptest::collection::vec(prop_oneof![4 => usual(), 1 => chunk()], 1..8)
        ) {
            let mut d = Delivered::default();
            let mut parsed = String::new();
            for l in &lines {
                d.push(format!("data: {l}\n\n").as_bytes());
                parsed_text(l.as_bytes(), &mut parsed);
            }
            prop_assert_eq!(&d.text, &parsed);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// However the stream is split into chunks, the same text is kept and the
        /// estimate is the same.
        #[test]
        fn any_split_gives_the_same_estimate(
            cuts in proptest::collection::vec(0..STREAM.len(), 0..24)
        ) {
            let bytes = STREAM.as_bytes();
            let mut cuts = cuts;
            cuts.sort_unstable();
            let mut d = Delivered::default();
            let mut at = 0;
            for c in cuts.into_iter().chain([bytes.len()]) {
                d.push(&bytes[at..c.max(at)]);
                at = c.max(at);
            }
            let w = whole(bytes);
            prop_assert_eq!(&d.text, &w.text);
            prop_assert_eq!(d.dropped, w.dropped);
            prop_assert_eq!(&d.carry, &w.carry);
            for model in ["llama", "gpt-4o"] {
                prop_assert_eq!(
                    d.output_tokens(Endpoint::ChatCompletions, model),
                    w.output_tokens(Endpoint::ChatCompletions, model)
                );
            }
        }
    }
}
