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

use super::openai::Usage;
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
            let at = memchr::memchr2(b'"', b'\\', &self.b[self.i..])?;
            self.i += at + 1;
            if self.b[self.i - 1] == b'"' {
                return Some(escaped);
            }
            escaped = true;
            // The escaped character (a quote or backslash included) is skipped.
            self.i += 1;
        }
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
    c.ws();
    c.eat(b'{')?;
    c.ws();
    if c.eat(b'}').is_none() {
        loop {
            c.eat(b'"')?;
            let key_start = c.i;
            if c.skip_string()? {
                return None; // an escaped key may spell one we look for
            }
            let key = &body[key_start..c.i - 1];
            c.ws();
            c.eat(b':')?;
            c.ws();
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
            c.ws();
            if c.eat(b',').is_some() {
                c.ws();
                continue;
            }
            c.eat(b'}')?;
            break;
        }
    }
    c.ws();
    (c.i == body.len()).then_some(seen)
}

/// Decodes the kept spans; a span serde refuses makes the scan unsure (`None`).
fn finish(seen: &Seen<'_>) -> Option<FinalBody> {
    let model = match seen.model.flatten() {
        None => None,
        Some(span) => Some(decode_string(span)?),
    };
    let usage = match seen.usage.flatten() {
        None => None,
        Some(span) => Some(serde_json::from_slice::<Usage>(span).ok()?),
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
