//! The `model` and `usage` of a complete (non-stream) OpenAI-shaped response body —
//! chat completions, completions, embeddings — read without deserialising the rest.
//!
//! A serde pass over the whole body cost more than every other part of metering a
//! passthrough response put together: it walks every choice token by token only to
//! throw them away. [`scan`] walks the top-level object instead, skipping each value it
//! does not need by its brackets and string quotes, and reads the `usage` object in
//! its usual shape by hand (serde only for any other shape). Whatever it is not sure
//! of — an escaped key, a duplicated `model`/`usage`/`choices`, a value of an
//! unexpected type, trailing bytes —
//! sends the body to the full parse ([`parse`]), which stays the definition of the
//! result: on every body that is valid JSON the two agree (property-tested below).
//! The scan does not check the syntax inside values it skips, so a body that is
//! malformed only there is still metered from its top-level `usage`, where the full
//! parse would have dropped it.

use super::openai::{CompletionTokensDetails, PromptTokensDetails, Usage};
use super::quotes::{self, Quotes};
use crate::usage::TokenUsage;
use memchr::memmem::Finder;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::sync::LazyLock;

/// What metering takes from a complete response body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FinalBody {
    /// The top-level `model`, when it is a string (`None` for `null` or absent).
    pub model: Option<String>,
    /// The top-level `usage`, when it is an object (`None` for `null` or absent).
    pub usage: Option<Usage>,
}

/// The model and usage of `body`, or `None` when the body is not a JSON object whose
/// `model` is a string or null, `usage` a usage object or null and `choices` an array
/// or null (then nothing can be metered from it).
pub fn read(body: &[u8]) -> Option<FinalBody> {
    match top_level(body).and_then(finish) {
        Some((model, usage)) => Some(FinalBody {
            model,
            usage: usage.map(Read::into_usage),
        }),
        None => parse(body),
    }
}

/// [`read`] as metering counts it: the model and [`Usage::to_token_usage`] of the
/// usage. A usage object in its usual shape goes straight to the counters, without
/// building the [`Usage`] (and its three maps of extra fields).
pub fn read_tokens(body: &[u8]) -> Option<(Option<String>, Option<TokenUsage>)> {
    match top_level(body).and_then(finish) {
        Some((model, usage)) => Some((model, usage.map(|u| u.token_usage()))),
        None => parse(body).map(|f| (f.model, f.usage.map(|u| u.to_token_usage()))),
    }
}

/// The full parse: the reference [`read`] agrees with on valid JSON.
pub fn parse(body: &[u8]) -> Option<FinalBody> {
    #[derive(Deserialize)]
    struct Full {
        #[serde(default)]
        model: Option<String>,
        #[serde(default)]
        usage: Option<Usage>,
        #[serde(default)]
        #[allow(dead_code)]
        choices: Option<Vec<IgnoredAny>>,
    }
    let f: Full = serde_json::from_slice(body).ok()?;
    Some(FinalBody {
        model: f.model,
        usage: f.usage,
    })
}

/// A cursor over the body; `None` from any step means "unsure". Also walks stream
/// events for the text a cut stream is estimated from
/// ([`crate::estimate::Delivered`]).
#[derive(Clone)]
pub(crate) struct Cursor<'a, 'q> {
    b: &'a [u8],
    i: usize,
    quotes: &'q Quotes,
}

impl<'a, 'q> Cursor<'a, 'q> {
    /// A cursor at the start of `b`.
    pub(crate) fn new(b: &'a [u8], quotes: &'q Quotes) -> Self {
        Self { b, i: 0, quotes }
    }

    /// A cursor over `span` (a value this one walked past), sharing its searcher.
    pub(crate) fn over(&self, span: &'a [u8]) -> Self {
        Self {
            b: span,
            i: 0,
            quotes: self.quotes,
        }
    }

    /// Where the cursor is.
    pub(crate) fn pos(&self) -> usize {
        self.i
    }

    /// Moves the cursor to `i`: where an earlier walk of the same bytes stood.
    pub(crate) fn seek(&mut self, i: usize) {
        self.i = i;
    }

    /// The bytes from the cursor on.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.b.get(self.i..).unwrap_or_default()
    }

    /// The offset of the next `"` or `\` at or after `from`.
    pub(crate) fn find_quote(&self, from: usize) -> Option<usize> {
        Some(from + self.quotes.find(self.b.get(from..)?)?)
    }

    /// Whether only whitespace is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }
}

impl<'a> Cursor<'a, '_> {
    pub(crate) fn ws(&mut self) {
        while let Some(c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.i += 1;
        }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// After an opening quote: moves past the closing one; `true` if the string had
    /// an escape. A string that closes within a few words (most keys and short
    /// values) is found word by word, a longer one with the body's searcher.
    #[inline(always)]
    fn skip_string(&mut self) -> Option<bool> {
        if let Some(at) = quotes::near(self.b, self.i)
            && self.b[self.i + at] == b'"'
        {
            self.i += at + 1;
            return Some(false);
        }
        self.long_string()
    }

    fn long_string(&mut self) -> Option<bool> {
        let mut escaped = false;
        loop {
            let at = self.quotes.find(self.b.get(self.i..)?)?;
            self.i += at + 1;
            if self.b[self.i - 1] == b'"' {
                return Some(escaped);
            }
            escaped = true;
            // The escaped character (a quote or backslash included) is skipped.
            self.i += 1;
        }
    }

    /// An object's members: `member` gets each key (escaped keys make the scan unsure)
    /// with the cursor on its value, and must move past the value.
    pub(crate) fn object(
        &mut self,
        member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>,
    ) -> Option<()> {
        self.ws();
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        self.members(member)
    }

    /// [`Self::object`] from a member's key on: the cursor is on its opening quote.
    #[inline]
    pub(crate) fn members(
        &mut self,
        mut member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>,
    ) -> Option<()> {
        loop {
            self.eat(b'"')?;
            let start = self.i;
            if self.skip_string()? {
                return None;
            }
            let key = &self.b[start..self.i - 1];
            self.ws();
            self.eat(b':')?;
            self.ws();
            member(self, key)?;
            self.ws();
            if self.eat(b',').is_none() {
                return self.eat(b'}');
            }
            self.ws();
        }
    }

    /// An array's elements: `element` gets the cursor on each and must move past it.
    pub(crate) fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.ws();
        self.eat(b'[')?;
        self.ws();
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            element(self)?;
            self.ws();
            if self.eat(b',').is_none() {
                return self.eat(b']');
            }
            self.ws();
        }
    }

    /// Moves past `s` when the body continues with it.
    #[inline(always)]
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        let end = self.i.checked_add(s.len())?;
        (self.b.get(self.i..end)? == s).then(|| self.i = end)
    }

    /// A JSON integer that fits a `u64` (no sign, fraction, exponent or leading zero).
    /// A leading `0` ends the number (what follows must be a delimiter), so no digits
    /// are compared afterwards; the cursor is anywhere when the answer is `None`.
    fn uint(&mut self) -> Option<u64> {
        let b = self.b;
        let mut i = self.i;
        let first = b.get(i)?.wrapping_sub(b'0');
        if first > 9 {
            return None;
        }
        let mut n = u64::from(first);
        i += 1;
        if first != 0 {
            while let Some(d) = b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|d| *d <= 9) {
                n = n.checked_mul(10)?.checked_add(u64::from(d))?;
                i += 1;
            }
        }
        self.i = i;
        matches!(
            b.get(i),
            Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
        )
        .then_some(n)
    }

    /// `null` (then `Some(None)`) or what `value` reads.
    pub(crate) fn nullable<T>(
        &mut self,
        value: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<Option<T>> {
        if self.b.get(self.i..)?.starts_with(b"null") {
            self.skip_scalar()?;
            return Some(None);
        }
        value(self).map(Some)
    }

    /// An object or array from its opening bracket to its closing one, by depth only.
    fn skip_nested(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => {
                    self.skip_string()?;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(());
                    }
                }
                _ => {}
            }
        }
    }

    /// A number or literal followed by a delimiter or the end: one pass over its bytes
    /// (gathering them up to the delimiter and then checking their shape walked a
    /// number twice). The cursor is anywhere when the answer is `None`.
    fn skip_scalar(&mut self) -> Option<()> {
        let rest = self.rest();
        let len = match *rest.first()? {
            b'n' | b't' | b'f' => [&b"null"[..], b"true", b"false"]
                .into_iter()
                .find(|l| rest.starts_with(l))?
                .len(),
            c if c == b'-' || c.is_ascii_digit() => rest
                .iter()
                .position(|c| {
                    !(c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
                })
                .unwrap_or(rest.len()),
            _ => return None,
        };
        self.i += len;
        matches!(
            rest.get(len),
            None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
        )
        .then_some(())
    }

    pub(crate) fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.i += 1;
                self.skip_string().map(drop)
            }
            b'{' | b'[' => self.skip_nested(),
            _ => self.skip_scalar(),
        }
    }

    /// `null` (then `Some(None)`), or a value opening with `open` (then its span).
    pub(crate) fn null_or(&mut self, open: u8) -> Option<Option<&'a [u8]>> {
        let start = self.i;
        if self.peek()? == open {
            self.skip_value()?;
            return Some(Some(&self.b[start..self.i]));
        }
        self.skip_scalar()?;
        (&self.b[start..self.i] == b"null").then_some(None)
    }
}

/// A usage object as the scan read it.
enum Read {
    /// The usual shape, read by hand.
    Counts(Counts),
    /// Any other shape, read by serde.
    Serde(Box<Usage>),
}

impl Read {
    fn into_usage(self) -> Usage {
        match self {
            Self::Counts(c) => c.usage(),
            Self::Serde(u) => *u,
        }
    }

    fn token_usage(&self) -> TokenUsage {
        match self {
            Self::Counts(c) => c.token_usage(),
            Self::Serde(u) => u.to_token_usage(),
        }
    }
}

/// The counts of a usage object in its usual shape ([`usage_fast`]).
#[derive(Clone, Copy, Default)]
struct Counts {
    prompt: u64,
    completion: u64,
    total: u64,
    /// `cached_tokens`, `cache_creation_tokens`, `audio_tokens`.
    prompt_details: Option<[Option<u64>; 3]>,
    /// `reasoning_tokens`, `audio_tokens`, `accepted_prediction_tokens`,
    /// `rejected_prediction_tokens`.
    completion_details: Option<[Option<u64>; 4]>,
}

impl Counts {
    /// The [`Usage`] serde reads from the same object.
    fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt,
            completion_tokens: self.completion,
            total_tokens: self.total,
            prompt_tokens_details: self.prompt_details.map(|v| PromptTokensDetails {
                cached_tokens: v[0],
                cache_creation_tokens: v[1],
                audio_tokens: v[2],
                ..PromptTokensDetails::default()
            }),
            completion_tokens_details: self.completion_details.map(|v| CompletionTokensDetails {
                reasoning_tokens: v[0],
                audio_tokens: v[1],
                accepted_prediction_tokens: v[2],
                rejected_prediction_tokens: v[3],
                ..CompletionTokensDetails::default()
            }),
            ..Usage::default()
        }
    }

    /// `self.usage().to_token_usage()`, without building the [`Usage`].
    fn token_usage(&self) -> TokenUsage {
        TokenUsage {
            input: Some(self.prompt),
            output: Some(self.completion),
            total: Some(self.total),
            cached_input: self.prompt_details.and_then(|v| v[0]),
            cache_creation_input: self.prompt_details.and_then(|v| v[1]),
            reasoning: self.completion_details.and_then(|v| v[0]),
            ..TokenUsage::default()
        }
    }
}

/// The fields the scan looks at, each seen at most once.
#[derive(Default)]
struct Seen<'a> {
    model: Option<Option<&'a [u8]>>,
    usage: Option<Option<Read>>,
    choices: bool,
}

/// Walks the top-level object's members, keeping the span of `model` and reading
/// `usage` where it stands; `None` when not sure of the body.
fn top_level(body: &[u8]) -> Option<Seen<'_>> {
    let quotes = Quotes::new();
    let mut c = Cursor {
        b: body,
        i: 0,
        quotes: &quotes,
    };
    let mut seen = Seen::default();
    let mut head = c.clone();
    if let Some(model) = compact_head(&mut head) {
        // On the `choices` value: the walk goes on from that member as `members` would.
        seen.model = Some(model);
        member(&mut seen, &mut head, b"choices")?;
        head.ws();
        if head.eat(b',').is_some() {
            head.ws();
            head.members(|c, key| member(&mut seen, c, key))?;
        } else {
            head.eat(b'}')?;
        }
        c = head;
    } else {
        c.object(|c, key| member(&mut seen, c, key))?;
    }
    c.ws();
    (c.i == body.len()).then_some(seen)
}

/// The members a chat completion opens with, as OpenAI-compatible servers write them
/// compact: `{"id":"…","object":"…","created":N,"model":…,"choices":`. Each key is a
/// fixed run of bytes compared at once, as [`usage_compact`] reads the usage, where the
/// walk found each key's end and matched it (≈ 0.15 k a member). The model's span (or
/// `None` for `null`) with the cursor on the `choices` value; any other opening is
/// `None` (the cursor is then anywhere) and is walked member by member.
fn compact_head<'a>(c: &mut Cursor<'a, '_>) -> Option<Option<&'a [u8]>> {
    c.lit(b"{\"id\":\"")?;
    c.skip_string()?;
    c.lit(b",\"object\":\"")?;
    c.skip_string()?;
    c.lit(b",\"created\":")?;
    c.skip_scalar()?;
    c.lit(b",\"model\":")?;
    let model = c.null_or(b'"')?;
    c.lit(b",\"choices\":")?;
    Some(model)
}

/// One top-level member: the cursor is on its value and is moved past it.
#[inline]
fn member<'a>(seen: &mut Seen<'a>, c: &mut Cursor<'a, '_>, key: &[u8]) -> Option<()> {
    match key {
        b"model" if seen.model.is_none() => seen.model = Some(c.null_or(b'"')?),
        b"usage" if seen.usage.is_none() => seen.usage = Some(usage(c)?),
        b"choices" if !seen.choices => {
            seen.choices = true;
            if seen.usage.is_none() && c.peek() == Some(b'[') && past_choices(seen, c).is_some() {
                return Some(());
            }
            c.null_or(b'[')?;
        }
        b"model" | b"usage" | b"choices" => return None, // duplicate
        _ => c.skip_value()?,
    }
    Some(())
}

/// `"usage"`, `"model"`, `"choices"` and the start of a `\u` escape, searched for as
/// byte strings; the searchers built once.
struct Keys {
    usage: Finder<'static>,
    model: Finder<'static>,
    choices: Finder<'static>,
    u_escape: Finder<'static>,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys {
    usage: Finder::new(b"\"usage\""),
    model: Finder::new(b"\"model\""),
    choices: Finder::new(b"\"choices\""),
    u_escape: Finder::new(b"\\u"),
});

/// The members after the `choices` array without walking the array (the cursor is on
/// its `[`): a chat completion's `usage` follows its choices, which are most of the
/// body and were most of the walk's cost. `None` (the cursor untouched) when any step
/// is not sure; the caller then walks the array.
///
/// Why the jump lands where the walk would, on a body that is valid JSON:
/// - `"usage"` preceded by `,` (and whitespace) is a whole string token: its closing
///   quote follows an `e`, so it is not escaped, and its opening quote follows a `,`,
///   so neither is it; between two unescaped quotes with only `usage` between them,
///   the first opens a string (were it closing one, `usage` would stand bare).
/// - From there the members are walked as the scan walks them; they must close with
///   the body's last `}`, which closes the top-level object, so the key is a member of
///   it and the walk saw every member after it.
/// - The members skipped between the array and the key can only be repeated
///   `model`, `usage` or `choices` members (which the full parse refuses) if their
///   keys are written out (`"model"`, `"choices"`; the first `"usage"` after the array
///   is the one found) or escaped, which takes a `\u` escape for letters: the
///   skipped bytes holding none of the three, no such member is skipped.
///
/// A body that is not valid JSON is not the full parse's either; as with values the
/// walk skips, the scan does not check the skipped bytes.
fn past_choices<'a>(seen: &mut Seen<'a>, c: &mut Cursor<'a, '_>) -> Option<()> {
    let keys = &*KEYS;
    let rest = c.rest();
    let at = keys.usage.find(rest)?;
    let skipped = &rest[..at];
    if skipped.trim_ascii_end().last() != Some(&b',')
        || keys.model.find(skipped).is_some()
        || keys.choices.find(skipped).is_some()
        || memchr::memchr(b'\\', skipped)
            .is_some_and(|from| keys.u_escape.find(&skipped[from..]).is_some())
    {
        return None;
    }
    let mut tail = c.clone();
    tail.i += at;
    // The members as `member` reads them, with `choices` seen (written out here, not
    // called: a recursive `member` was not inlined into the walk's loop).
    let (mut model, mut read) = (seen.model, None);
    tail.members(|t, key| {
        match key {
            b"usage" if read.is_none() => read = Some(usage(t)?),
            b"model" if model.is_none() => model = Some(t.null_or(b'"')?),
            b"model" | b"usage" | b"choices" => return None, // duplicate
            _ => t.skip_value()?,
        }
        Some(())
    })?;
    // `members` moved past the closing brace; the walk goes on from it.
    let close = tail.i - 1;
    if !tail.at_end() {
        return None;
    }
    seen.model = model;
    seen.usage = read;
    c.i = close;
    Some(())
}

/// The top-level `usage` from the cursor: `null` (then `Some(None)`), or an object
/// read by [`usage_fast`] in place, or else delimited by its brackets and read by
/// serde (which refusing it makes the scan unsure).
fn usage(c: &mut Cursor<'_, '_>) -> Option<Option<Read>> {
    if c.peek()? == b'{' {
        let mut fast = c.clone();
        if let Some(u) = usage_compact(&mut fast) {
            *c = fast;
            return Some(Some(Read::Counts(u)));
        }
        let mut fast = c.clone();
        if let Some(u) = usage_fast(&mut fast) {
            *c = fast;
            return Some(Some(Read::Counts(u)));
        }
    }
    let Some(span) = c.null_or(b'{')? else {
        return Some(None);
    };
    let u = serde_json::from_slice::<Usage>(span).ok()?;
    Some(Some(Read::Serde(Box::new(u))))
}

/// The usage object in its usual shape — known keys, each once, with integer counts,
/// the two details objects holding known keys — read without serde, which costs
/// ≈ 6 k instructions on it. Anything else is `None` (the cursor is then anywhere).
fn usage_fast(c: &mut Cursor<'_, '_>) -> Option<Counts> {
    let mut u = Counts::default();
    let mut seen = 0u32;
    c.object(|c, key| {
        let bit = match key {
            b"prompt_tokens" => 0,
            b"completion_tokens" => 1,
            b"total_tokens" => 2,
            b"prompt_tokens_details" => 3,
            b"completion_tokens_details" => 4,
            _ => return None,
        };
        if seen & (1 << bit) != 0 {
            return None;
        }
        seen |= 1 << bit;
        match bit {
            0 => u.prompt = c.uint()?,
            1 => u.completion = c.uint()?,
            2 => u.total = c.uint()?,
            3 => u.prompt_details = c.nullable(prompt_details)?,
            _ => u.completion_details = c.nullable(completion_details)?,
        }
        Some(())
    })?;
    Some(u)
}

/// The usage object exactly as OpenAI writes it: compact, its keys in OpenAI's order,
/// each details object either absent or holding OpenAI's keys in its order, every
/// count an integer. Each key is then a fixed run of bytes compared at once (the
/// literals are short enough for the compiler to compare them without a call), where
/// [`usage_fast`] finds each key's end and matches it against its set: ≈ 3 k
/// instructions on this object. It reads what [`usage_fast`] reads; any other object
/// is `None` (the cursor is then anywhere) and goes to [`usage_fast`].
fn usage_compact(c: &mut Cursor<'_, '_>) -> Option<Counts> {
    let mut u = Counts::default();
    c.lit(b"{\"prompt_tokens\":")?;
    u.prompt = c.uint()?;
    c.lit(b",\"completion_tokens\":")?;
    u.completion = c.uint()?;
    c.lit(b",\"total_tokens\":")?;
    u.total = c.uint()?;
    if c.lit(b",\"prompt_tokens_details\":{").is_some() {
        c.lit(b"\"cached_tokens\":")?;
        let cached = c.uint()?;
        c.lit(b",\"audio_tokens\":")?;
        let audio = c.uint()?;
        c.lit(b"}")?;
        u.prompt_details = Some([Some(cached), None, Some(audio)]);
    }
    if c.lit(b",\"completion_tokens_details\":{").is_some() {
        c.lit(b"\"reasoning_tokens\":")?;
        let reasoning = c.uint()?;
        c.lit(b",\"audio_tokens\":")?;
        let audio = c.uint()?;
        c.lit(b",\"accepted_prediction_tokens\":")?;
        let accepted = c.uint()?;
        c.lit(b",\"rejected_prediction_tokens\":")?;
        let rejected = c.uint()?;
        c.lit(b"}")?;
        u.completion_details = Some([Some(reasoning), Some(audio), Some(accepted), Some(rejected)]);
    }
    c.lit(b"}")?;
    Some(u)
}

/// Reads an object of optional counts into the slots `slot` names for each key; a key
/// it does not name, or one seen twice, is `None`.
fn counts<'a>(
    c: &mut Cursor<'a, '_>,
    mut slot: impl FnMut(&[u8]) -> Option<usize>,
    out: &mut [Option<u64>],
) -> Option<()> {
    let mut seen = 0u32;
    c.object(|c, key| {
        let i = slot(key)?;
        if seen & (1 << i) != 0 {
            return None;
        }
        seen |= 1 << i;
        *out.get_mut(i)? = c.nullable(Cursor::uint)?;
        Some(())
    })
}

fn prompt_details(c: &mut Cursor<'_, '_>) -> Option<[Option<u64>; 3]> {
    let mut v = [None; 3];
    let slot = |k: &[u8]| match k {
        b"cached_tokens" => Some(0),
        b"cache_creation_tokens" => Some(1),
        b"audio_tokens" => Some(2),
        _ => None,
    };
    counts(c, slot, &mut v)?;
    Some(v)
}

fn completion_details(c: &mut Cursor<'_, '_>) -> Option<[Option<u64>; 4]> {
    let mut v = [None; 4];
    let slot = |k: &[u8]| match k {
        b"reasoning_tokens" => Some(0),
        b"audio_tokens" => Some(1),
        b"accepted_prediction_tokens" => Some(2),
        b"rejected_prediction_tokens" => Some(3),
        _ => None,
    };
    counts(c, slot, &mut v)?;
    Some(v)
}

/// Decodes the kept `model` span; one serde refuses makes the scan unsure (`None`).
fn finish(seen: Seen<'_>) -> Option<(Option<String>, Option<Read>)> {
    let model = match seen.model.flatten() {
        None => None,
        Some(span) => Some(decode_string(span)?),
    };
    Some((model, seen.usage.flatten()))
}

/// A JSON string token (quotes included) as text; serde only when it has escapes.
pub(crate) fn decode_string(span: &[u8]) -> Option<String> {
    let inner = span.get(1..span.len().checked_sub(1)?)?;
    if !inner.contains(&b'\\') && !inner.iter().any(|c| *c < 0x20) {
        return std::str::from_utf8(inner).ok().map(str::to_owned);
    }
    serde_json::from_slice(span).ok()
}

#[cfg(test)]
mod tests;
