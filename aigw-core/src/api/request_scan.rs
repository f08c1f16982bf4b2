//! The request sniff's fields read by one strict walk over the body instead of serde.
//!
//! [`super::sniff`] needs a handful of top-level keys (`model`, `stream`,
//! `stream_options.include_usage`, the completion budgets) and must refuse a body that
//! is not JSON. serde's derive did both in ≈ 9.6 k instructions on a 1 KB chat body,
//! most of them in its visitor machinery for the values it throws away. [`scan`] walks
//! the body once: it validates every value it skips with the JSON grammar (strings,
//! escapes, numbers, literals, brackets) and reads the few keys it needs. It answers
//! only when it is sure serde would accept the body and read the same fields: an
//! escaped top-level key, a duplicated field, a field of an unexpected type, nesting
//! deeper than [`MAX_DEPTH`], invalid UTF-8 or anything that is not JSON make it return
//! `None`, and the serde parse — which stays the definition, errors included — decides.
//! Property tests compare the two on generated and damaged bodies.

/// Nesting the walk follows before it leaves the body to serde (serde's own limit for
/// the parts it recurses into is 128; the values it ignores have none).
const MAX_DEPTH: u32 = 64;

use super::quotes::{self, Quotes};

/// The fields of a request body [`super::sniff`] reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Fields<'a> {
    /// `model`: `None` when absent or `null`.
    pub model: Option<&'a str>,
    /// `stream`: `None` when absent or `null`.
    pub stream: Option<bool>,
    /// `stream_options.include_usage`.
    pub include_usage: Option<bool>,
    /// `max_tokens`, when a non-negative integer.
    pub max_tokens: Option<u64>,
    /// `max_completion_tokens`, when a non-negative integer.
    pub max_completion_tokens: Option<u64>,
    /// `max_output_tokens`, when a non-negative integer.
    pub max_output_tokens: Option<u64>,
}

/// The fields of `body`, or `None` when the walk is not sure of them (then serde
/// decides, and refuses what is not JSON).
pub(super) fn scan(body: &[u8]) -> Option<Fields<'_>> {
    // A body of printable ASCII (but for whitespace around it: clients end bodies
    // with a newline) holds no control character and is UTF-8: its strings need only
    // their closing quote found. Anything else is checked string by string.
    let clean = printable_ascii(body.trim_ascii());
    if !clean && std::str::from_utf8(body).is_err() {
        return None;
    }
    let mut c = Walk {
        b: body,
        i: 0,
        clean,
        quotes: Quotes::new(),
    };
    let mut f = Fields::default();
    let mut seen = 0u8;
    c.ws();
    c.object(|c, key| {
        let bit = match key {
            b"model" => 0,
            b"stream" => 1,
            b"stream_options" => 2,
            b"max_tokens" => 3,
            b"max_completion_tokens" => 4,
            b"max_output_tokens" => 5,
            b"messages" => return c.messages(),
            _ => return c.value(1),
        };
        if seen & (1 << bit) != 0 {
            return None; // serde refuses a duplicate field
        }
        seen |= 1 << bit;
        match bit {
            0 => f.model = c.nullable(Walk::plain_str)?,
            1 => f.stream = c.nullable(Walk::boolean)?,
            2 => f.include_usage = c.nullable(Walk::stream_options)?.flatten(),
            3 => f.max_tokens = c.budget()?,
            4 => f.max_completion_tokens = c.budget()?,
            _ => f.max_output_tokens = c.budget()?,
        }
        Some(())
    })?;
    c.ws();
    (c.i == body.len()).then_some(f)
}

/// Whether every byte is printable ASCII (`0x20..=0x7f`): a min/max fold, which the
/// compiler turns into a few vector instructions per 16 bytes.
fn printable_ascii(b: &[u8]) -> bool {
    let (lo, hi) = b
        .iter()
        .fold((u8::MAX, 0u8), |(lo, hi), &c| (lo.min(c), hi.max(c)));
    b.is_empty() || (lo >= 0x20 && hi < 0x80)
}

/// Whether `s` holds a control character (a min fold, vectorised like
/// [`printable_ascii`]).
fn has_control(s: &[u8]) -> bool {
    s.iter().fold(u8::MAX, |lo, &c| lo.min(c)) < 0x20
}

/// A cursor over the body; `None` from any step means "not sure" (or not JSON).
struct Walk<'a> {
    b: &'a [u8],
    i: usize,
    /// The body is printable ASCII (see [`printable_ascii`]).
    clean: bool,
    quotes: Quotes,
}

impl<'a> Walk<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.i += usize::from(hit);
        hit
    }

    /// After an opening quote: moves past the closing one, checking escapes and
    /// control characters as serde does; `Some(true)` when the string has an escape.
    ///
    /// Most strings of a request (keys, roles) close within eight bytes: those are
    /// found here in one word, without a call.
    #[inline(always)]
    fn string(&mut self) -> Option<bool> {
        if let Some(at) = quotes::in_word(self.b, self.i)
            && self.b[self.i + at] == b'"'
            && (self.clean || !has_control(&self.b[self.i..self.i + at]))
        {
            self.i += at + 1;
            return Some(false);
        }
        self.long_string()
    }

    /// [`Walk::string`] past its first word: escapes, or a longer string.
    fn long_string(&mut self) -> Option<bool> {
        let start = self.i;
        let mut escaped = false;
        loop {
            self.i += self.quotes.find(self.b.get(self.i..)?)?;
            if self.b[self.i] == b'"' {
                let span = &self.b[start..self.i];
                self.i += 1;
                return (self.clean || !has_control(span)).then_some(escaped);
            }
            escaped = true;
            self.i += 1;
            match self.peek()? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                b'u' => {
                    let hex = self.b.get(self.i + 1..self.i + 5)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.i += 5;
                }
                _ => return None,
            }
        }
    }

    /// An object from its `{`: `member` gets each unescaped key with the cursor on its
    /// value and must move past the value. An escaped key is `None`.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        self.ws();
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            if !self.eat(b'"') {
                return None;
            }
            let start = self.i;
            if self.string()? {
                return None;
            }
            let key = &self.b[start..self.i - 1];
            self.ws();
            if !self.eat(b':') {
                return None;
            }
            self.ws();
            member(self, key)?;
            self.ws();
            if !self.eat(b',') {
                return self.eat(b'}').then_some(());
            }
            self.ws();
        }
    }

    /// Any JSON value, checked and skipped; `depth` is the nesting it sits at.
    fn value(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.i += 1;
                self.string().map(drop)
            }
            b'{' if depth < MAX_DEPTH => self.object(|c, _| c.value(depth + 1)),
            b'[' if depth < MAX_DEPTH => {
                self.i += 1;
                self.ws();
                if self.eat(b']') {
                    return Some(());
                }
                loop {
                    self.value(depth + 1)?;
                    self.ws();
                    if !self.eat(b',') {
                        return self.eat(b']').then_some(());
                    }
                    self.ws();
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// The top-level `messages` (a value at depth 1): an array's elements are read by
    /// [`Walk::message`] where they have its shape and walked as any value where not,
    /// so it accepts exactly what [`Walk::value`] does.
    fn messages(&mut self) -> Option<()> {
        if self.peek()? != b'[' {
            return self.value(1);
        }
        self.i += 1;
        self.ws();
        if self.eat(b']') {
            return Some(());
        }
        loop {
            let start = self.i;
            if self.message().is_none() {
                self.i = start;
                self.value(2)?;
            }
            self.ws();
            if !self.eat(b',') {
                return self.eat(b']').then_some(());
            }
            self.ws();
        }
    }

    /// A chat message exactly as clients usually write it, `{"role":"…","content":"…"}`
    /// (compact, these two keys in this order, string values): its keys and punctuation
    /// are fixed runs of bytes compared at once, where the general walk steps through
    /// each. The strings are checked as everywhere else. `None` (the cursor then
    /// anywhere): not this shape, or not JSON.
    #[inline]
    fn message(&mut self) -> Option<()> {
        self.lit(b"{\"role\":\"")?;
        self.string()?;
        self.lit(b",\"content\":\"")?;
        self.string()?;
        self.eat(b'}').then_some(())
    }

    /// Moves past `s` when the body continues with it.
    #[inline(always)]
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        let end = self.i.checked_add(s.len())?;
        (self.b.get(self.i..end)? == s).then(|| self.i = end)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.b.get(self.i..)?.starts_with(word).then(|| {
            self.i += word.len();
        })
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    /// A number by the JSON grammar (serde reads the same; what follows it is the
    /// caller's to check).
    fn number(&mut self) -> Option<()> {
        self.eat(b'-');
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.eat(b'.') && self.digits() == 0 {
            return None;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// `null` (then `Some(None)`) or what `read` reads.
    fn nullable<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.peek()? == b'n' {
            return self.literal(b"null").map(|()| None);
        }
        read(self).map(Some)
    }

    /// A string without escapes, as text (the body was checked to be UTF-8).
    fn plain_str(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        if self.string()? {
            return None;
        }
        std::str::from_utf8(&self.b[start..self.i - 1]).ok()
    }

    fn boolean(&mut self) -> Option<bool> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| true),
            b'f' => self.literal(b"false").map(|()| false),
            _ => None,
        }
    }

    /// `stream_options` as an object (serde would also take an array): its
    /// `include_usage`, a boolean or null, once.
    fn stream_options(&mut self) -> Option<Option<bool>> {
        let mut include_usage = None;
        let mut seen = false;
        self.object(|c, key| {
            if key != b"include_usage" {
                return c.value(2);
            }
            if std::mem::replace(&mut seen, true) {
                return None;
            }
            include_usage = c.nullable(Walk::boolean)?;
            Some(())
        })?;
        Some(include_usage)
    }

    /// A completion budget, which serde reads as any JSON value and keeps only when it
    /// is a `u64`: a non-negative integer that fits (`Some`), or a boolean or null
    /// (`None`). Other values — strings, fractions, negative numbers, integers past
    /// `u64` — are left to serde.
    fn budget(&mut self) -> Option<Option<u64>> {
        match self.peek()? {
            b't' | b'f' => self.boolean().map(|_| None),
            b'n' => self.literal(b"null").map(|()| None),
            b'0'..=b'9' => {
                let start = self.i;
                self.digits();
                let digits = &self.b[start..self.i];
                if (digits.len() > 1 && digits[0] == b'0')
                    || matches!(self.peek(), Some(b'.' | b'e' | b'E'))
                {
                    return None;
                }
                let mut n = 0u64;
                for d in digits {
                    n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
                }
                Some(Some(n))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
