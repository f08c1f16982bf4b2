//! The `model` and `usage` of a complete (non-stream) OpenAI-shaped response body —
//! chat completions, completions, embeddings — read without deserialising the rest.
//!
//! A serde pass over the whole body cost more than every other part of metering a
//! passthrough response put together: it walks every choice token by token only to
//! throw them away. [`scan`] walks the top-level object instead, skipping each value it
//! does not need by its brackets and string quotes (strings with `memchr`), and hands
//! serde only the `usage` object. Whatever it is not sure of — an escaped key, a
//! duplicated `model`/`usage`/`choices`, a value of an unexpected type, trailing bytes —
//! sends the body to the full parse ([`parse`]), which stays the definition of the
//! result: on every body that is valid JSON the two agree (property-tested below).
//! The scan does not check the syntax inside values it skips, so a body that is
//! malformed only there is still metered from its top-level `usage`, where the full
//! parse would have dropped it.

use super::openai::{CompletionTokensDetails, PromptTokensDetails, Usage};
use serde::Deserialize;
use serde::de::IgnoredAny;

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
    scan(body).unwrap_or_else(|| parse(body))
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

/// A cursor over the body; `None` from any step means "unsure".
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        while let Some(c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// After an opening quote: moves past the closing one; `true` if the string had
    /// an escape.
    fn skip_string(&mut self) -> Option<bool> {
        let mut escaped = false;
        loop {
            let at = memchr::memchr2(b'"', b'\\', self.b.get(self.i..)?)?;
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
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.ws();
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
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

    /// A JSON integer that fits a `u64` (no sign, fraction, exponent or leading zero).
    fn uint(&mut self) -> Option<u64> {
        let start = self.i;
        let mut n = 0u64;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.i += 1;
        }
        let digits = &self.b[start..self.i];
        let delimited = matches!(
            self.peek(),
            Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
        );
        (delimited && !digits.is_empty() && (digits == b"0" || digits[0] != b'0')).then_some(n)
    }

    /// `null` (then `Some(None)`) or what `value` reads.
    fn nullable<T>(&mut self, value: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
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

    /// A number or literal: the bytes up to the next delimiter, checked for shape.
    fn skip_scalar(&mut self) -> Option<()> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.i += 1;
        }
        let t = &self.b[start..self.i];
        let number = |t: &[u8]| {
            t.first().is_some_and(|c| *c == b'-' || c.is_ascii_digit())
                && t.iter()
                    .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
        };
        (matches!(t, b"true" | b"false" | b"null") || number(t)).then_some(())
    }

    fn skip_value(&mut self) -> Option<()> {
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
    fn null_or(&mut self, open: u8) -> Option<Option<&'a [u8]>> {
        let start = self.i;
        if self.peek()? == open {
            self.skip_value()?;
            return Some(Some(&self.b[start..self.i]));
        }
        self.skip_scalar()?;
        (&self.b[start..self.i] == b"null").then_some(None)
    }
}

/// The fields the scan looks at, each seen at most once.
#[derive(Default)]
struct Seen<'a> {
    model: Option<Option<&'a [u8]>>,
    usage: Option<Option<&'a [u8]>>,
    choices: bool,
}

/// The answer the full parse gives, or `None` when the scan is not sure of it.
fn scan(body: &[u8]) -> Option<Option<FinalBody>> {
    finish(&top_level(body)?).map(Some)
}

/// Walks the top-level object's members, keeping the spans of `model` and `usage`.
fn top_level(body: &[u8]) -> Option<Seen<'_>> {
    let mut c = Cursor { b: body, i: 0 };
    let mut seen = Seen::default();
    c.object(|c, key| {
        match key {
            b"model" if seen.model.is_none() => seen.model = Some(c.null_or(b'"')?),
            b"usage" if seen.usage.is_none() => seen.usage = Some(c.null_or(b'{')?),
            b"choices" if !seen.choices => {
                seen.choices = true;
                c.null_or(b'[')?;
            }
            b"model" | b"usage" | b"choices" => return None, // duplicate
            _ => c.skip_value()?,
        }
        Some(())
    })?;
    c.ws();
    (c.i == body.len()).then_some(seen)
}

/// The usage object in its usual shape — known keys, each once, with integer counts,
/// the two details objects holding known keys — read without serde, which costs
/// ≈ 6 k instructions on it. Anything else is `None`, and serde reads the span.
fn usage_fast(span: &[u8]) -> Option<Usage> {
    let mut c = Cursor { b: span, i: 0 };
    let mut u = Usage::default();
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
            0 => u.prompt_tokens = c.uint()?,
            1 => u.completion_tokens = c.uint()?,
            2 => u.total_tokens = c.uint()?,
            3 => u.prompt_tokens_details = c.nullable(prompt_details)?,
            _ => u.completion_tokens_details = c.nullable(completion_details)?,
        }
        Some(())
    })?;
    (c.i == span.len()).then_some(u)
}

/// Reads an object of optional counts into the slots `slot` names for each key; a key
/// it does not name, or one seen twice, is `None`.
fn counts<'a>(
    c: &mut Cursor<'a>,
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

fn prompt_details(c: &mut Cursor<'_>) -> Option<PromptTokensDetails> {
    let mut v = [None; 3];
    let slot = |k: &[u8]| match k {
        b"cached_tokens" => Some(0),
        b"cache_creation_tokens" => Some(1),
        b"audio_tokens" => Some(2),
        _ => None,
    };
    counts(c, slot, &mut v)?;
    Some(PromptTokensDetails {
        cached_tokens: v[0],
        cache_creation_tokens: v[1],
        audio_tokens: v[2],
        ..PromptTokensDetails::default()
    })
}

fn completion_details(c: &mut Cursor<'_>) -> Option<CompletionTokensDetails> {
    let mut v = [None; 4];
    let slot = |k: &[u8]| match k {
        b"reasoning_tokens" => Some(0),
        b"audio_tokens" => Some(1),
        b"accepted_prediction_tokens" => Some(2),
        b"rejected_prediction_tokens" => Some(3),
        _ => None,
    };
    counts(c, slot, &mut v)?;
    Some(CompletionTokensDetails {
        reasoning_tokens: v[0],
        audio_tokens: v[1],
        accepted_prediction_tokens: v[2],
        rejected_prediction_tokens: v[3],
        ..CompletionTokensDetails::default()
    })
}

/// Decodes the kept spans; a span serde refuses makes the scan unsure (`None`).
fn finish(seen: &Seen<'_>) -> Option<FinalBody> {
    let model = match seen.model.flatten() {
        None => None,
        Some(span) => Some(decode_string(span)?),
    };
    let usage = match seen.usage.flatten() {
        None => None,
        Some(span) => Some(match usage_fast(span) {
            Some(u) => u,
            None => serde_json::from_slice::<Usage>(span).ok()?,
        }),
    };
    Some(FinalBody { model, usage })
}

/// A JSON string token (quotes included) as text; serde only when it has escapes.
fn decode_string(span: &[u8]) -> Option<String> {
    let inner = span.get(1..span.len().checked_sub(1)?)?;
    if !inner.contains(&b'\\') && !inner.iter().any(|c| *c < 0x20) {
        return std::str::from_utf8(inner).ok().map(str::to_owned);
    }
    serde_json::from_slice(span).ok()
}

#[cfg(test)]
mod tests;
