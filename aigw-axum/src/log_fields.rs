//! The text log's field formatter: `tracing-subscriber`'s default layout, with the
//! common fields written directly.
//!
//! The `fmt` subscriber formats a span's fields when the span is created, so every
//! request's `aigw.request` span paid for its path and model going through
//! `DefaultFields`: a `{:?}` of each string (escaping it char by char) and the field
//! name painted through the ANSI styler even with colours off — ≈ 3.5 k instructions a
//! request. [`PlainFields`] writes a string of printable ASCII without quotes or
//! backslashes, an integer and a boolean itself — the bytes `Debug` would write — and
//! hands every other field to [`DefaultVisitor`], so the output is the same.

use std::fmt;
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};

/// `DefaultFields`' output, cheaper. For writers without ANSI styling only (with
/// colours the default formatter styles the names).
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut v = PlainVisitor {
            writer,
            is_empty: true,
            result: Ok(()),
            pending: [0; PENDING],
            len: 0,
        };
        fields.record(&mut v);
        v.flush();
        v.result
    }
}

/// Bytes of plain fields gathered before they are written: a span's fields usually fit.
const PENDING: usize = 256;

struct PlainVisitor<'a> {
    writer: Writer<'a>,
    is_empty: bool,
    result: fmt::Result,
    /// Plain fields not yet written: a run of them goes to the writer in one write.
    /// Each write into the span's `String` is a virtual call, and the first ones grow
    /// the `String` (an allocation and a reallocation for a path and a model).
    pending: [u8; PENDING],
    len: usize,
}

/// Whether `DefaultVisitor` writes this field as `name=value` with nothing special:
/// not the message, not a raw identifier (`r#`), not `log.` metadata (which the
/// `tracing-log` feature skips).
fn plain_name(name: &str) -> bool {
    name != "message" && !name.starts_with("r#") && !name.starts_with("log.")
}

/// Whether `{:?}` of `s` is `s` between quotes: printable ASCII without `"` or `\\`.
/// Both checks in one pass a word at a time (a byte loop cost ≈ 5 instructions a byte
/// of the path and model of every request span).
fn debug_is_quoted(s: &str) -> bool {
    !crate::record::needs_escape_or_non_ascii(s)
}

impl PlainVisitor<'_> {
    /// Adds `name=value` (the value between quotes when `quoted`) after the separating
    /// space to the pending bytes, or writes it when it does not fit them.
    fn plain(&mut self, field: &Field, value: &str, quoted: bool) {
        if self.result.is_err() {
            return;
        }
        let sep = !std::mem::take(&mut self.is_empty);
        let name = field.name();
        let len = usize::from(sep) + name.len() + 1 + 2 * usize::from(quoted) + value.len();
        if self.len + len > PENDING {
            self.flush();
        }
        // The name and the value copied, the separators and quotes stored: copying
        // each of the six parts cost a call each.
        match self.pending.get_mut(self.len..self.len + len) {
            Some(out) => {
                let mut at = 0;
                if sep {
                    out[0] = b' ';
                    at = 1;
                }
                out[at..at + name.len()].copy_from_slice(name.as_bytes());
                at += name.len();
                out[at] = b'=';
                at += 1;
                if quoted {
                    out[at] = b'"';
                    out[len - 1] = b'"';
                    at += 1;
                }
                out[at..at + value.len()].copy_from_slice(value.as_bytes());
                self.len += len;
            }
            None => {
                let q = if quoted { "\"" } else { "" };
                let parts = [if sep { " " } else { "" }, name, "=", q, value, q];
                if self.result.is_ok() {
                    self.result = parts.iter().try_for_each(|p| self.writer.write_str(p));
                }
            }
        }
    }

    /// Writes the pending plain fields.
    fn flush(&mut self) {
        let len = std::mem::take(&mut self.len);
        if len == 0 || self.result.is_err() {
            return;
        }
        // Whole `str`s joined: always UTF-8.
        self.result = std::str::from_utf8(&self.pending[..len])
            .map_err(|_| fmt::Error)
            .and_then(|s| self.writer.write_str(s));
    }

    /// The field as `DefaultFields` writes it, after the pending plain fields.
    fn default(&mut self, field: &Field, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        self.flush();
        if self.result.is_err() {
            return;
        }
        let mut v = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut v);
        self.result = tracing_subscriber::field::VisitOutput::finish(v);
        // It wrote the field (and the space before it) unless it skipped it.
        self.is_empty &= field.name().starts_with("log.");
    }
}

/// `n` in decimal, written into `digits` without the formatting machinery.
fn decimal(digits: &mut [u8; 20], n: u64) -> &str {
    let i = crate::record::fill_decimal(digits, n);
    // Only ASCII digits were written.
    std::str::from_utf8(&digits[i..]).unwrap_or_default()
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if plain_name(field.name()) && debug_is_quoted(value) {
            self.plain(field, value, true);
        } else {
            self.default(field, |v| v.record_str(field, value));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if plain_name(field.name()) {
            let mut digits = [0u8; 20];
            self.plain(field, decimal(&mut digits, value), false);
        } else {
            self.default(field, |v| v.record_u64(field, value));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.default(field, |v| v.record_i64(field, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if plain_name(field.name()) {
            self.plain(field, if value { "true" } else { "false" }, false);
        } else {
            self.default(field, |v| v.record_bool(field, value));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.default(field, |v| v.record_error(field, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.default(field, |v| v.record_debug(field, value));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer that keeps what a test's subscriber wrote.
    #[derive(Clone, Default)]
    pub(crate) struct Buf(pub(crate) Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Logs the same spans and events through `fmt` with the default fields and with
    /// [`PlainFields`]; the timestamps are left out.
    fn both(log: impl Fn()) -> (String, String) {
        let run = |plain: bool| {
            let buf = Buf::default();
            let out = buf.clone();
            let b = tracing_subscriber::fmt()
                .with_ansi(false)
                .without_time()
                .with_writer(move || out.clone());
            if plain {
                tracing::subscriber::with_default(b.fmt_fields(PlainFields).finish(), &log);
            } else {
                tracing::subscriber::with_default(b.finish(), &log);
            }
            String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
        };
        (run(false), run(true))
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    /// The byte loop [`debug_is_quoted`] replaced.
    fn debug_is_quoted_bytewise(s: &str) -> bool {
        s.bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    }

    #[test]
    fn the_quoted_check_matches_the_byte_loop() {
        // Every ASCII character and a few wider ones, at every position of strings
        // shorter than, as long as and longer than a word. Where it says yes, `{:?}`
        // writes the string between quotes; a no hands the field to `DefaultVisitor`.
        let mut chars: Vec<char> = (0u8..0x80).map(char::from).collect();
        chars.extend(['é', '\u{a0}', '\u{200b}', '\u{1f600}']);
        for len in 0..20 {
            for at in 0..len {
                for &c in &chars {
                    let mut s: String = "a".repeat(len);
                    s.replace_range(at..at + 1, c.encode_utf8(&mut [0; 4]));
                    let quoted = debug_is_quoted(&s);
                    assert_eq!(quoted, debug_is_quoted_bytewise(&s), "{s:?}");
                    if quoted {
                        assert_eq!(format!("{s:?}"), format!("\"{s}\""));
                    }
                }
            }
        }
    }

    #[test]
    fn writes_what_the_default_fields_write() {
        // Past the pending buffer: alone, and with the fields after it.
        let long = "p".repeat(300);
        let half = "h".repeat(200);
        let odd = [
            long.as_str(),
            half.as_str(),
            "",
            "plain /v1/chat",
            "quo\"te",
            "back\\slash",
            "new\nline",
            "é",
            "\u{1b}[31m",
            "tab\t",
            "del\u{7f}",
        ];
        for s in odd {
            let (default, plain) = both(|| {
                let span = tracing::info_span!(
                    "aigw.request",
                    path = s,
                    model = "gpt-4o",
                    client = Option::<&str>::None,
                    n = 7u64,
                    neg = -3i64,
                    flag = true,
                    r#type = "x",
                    trace_id = tracing::field::display("00ff"),
                );
                span.record("client", s);
                let _in = span.enter();
                tracing::warn!(status = 502u16, error = %s, attempt = 2, "upstream {} failed", s);
                tracing::info!(message = s, other = ?s);
                let e = Outer(std::io::Error::other("inner"));
                tracing::error!(
                    error = &e as &(dyn std::error::Error + 'static),
                    log.target = s,
                    done = false
                );
            });
            assert!(!default.is_empty());
            assert_eq!(plain, default, "{s:?}");
        }
    }
}
