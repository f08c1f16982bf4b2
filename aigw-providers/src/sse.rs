//! Server-sent events: an incremental decoder and an encoder.
//!
//! The decoder follows the WHATWG `text/event-stream` parsing rules: lines end in LF,
//! CRLF or a lone CR; a blank line dispatches the event; `data:` lines are joined with
//! `\n`; lines starting with `:` are comments; one space after the colon is dropped; a
//! leading UTF-8 BOM is skipped. Input may be split anywhere (even inside a CRLF or a
//! multi-byte character): the events decoded are the same for any split.
//!
//! ```
//! use aigw_providers::sse::{SseDecoder, encode_event};
//! let mut dec = SseDecoder::new();
//! let mut events = Vec::new();
//! dec.feed(b"event: ping\ndata: {\"a\":", &mut events);
//! assert!(events.is_empty());
//! dec.feed(b"1}\n\ndata: [DONE]\n\n", &mut events);
//! assert_eq!(events[0].event.as_deref(), Some("ping"));
//! assert_eq!(events[0].data, "{\"a\":1}");
//! assert!(events[1].is_done());
//!
//! let mut out = Vec::new();
//! encode_event(&mut out, Some("ping"), "{}");
//! assert_eq!(out, b"event: ping\ndata: {}\n\n");
//! ```

/// One decoded event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The `id:` field, if any.
    pub id: Option<String>,
    /// The `retry:` field, if it was a number.
    pub retry: Option<u64>,
}

impl SseEvent {
    /// Whether this is OpenAI's end-of-stream sentinel `data: [DONE]`.
    pub fn is_done(&self) -> bool {
        self.data == "[DONE]"
    }

    /// Encodes the event back into wire form (event, id, data; retry is dropped).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        if let Some(id) = &self.id {
            out.extend_from_slice(b"id: ");
            out.extend_from_slice(id.as_bytes());
            out.push(b'\n');
        }
        encode_event(out, self.event.as_deref(), &self.data);
    }
}

/// Room beyond its first piece for a line split across chunks (most events are a few
/// hundred bytes).
const LINE_ROOM: usize = 512;

/// Incremental SSE decoder: feed it chunks, get complete events.
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Bytes of an incomplete line.
    line: Vec<u8>,
    /// The previous chunk ended in CR: a LF starting the next chunk belongs to it.
    after_cr: bool,
    /// Whether the start of the stream (and a possible BOM) has been dealt with.
    started: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
    retry: Option<u64>,
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes as much of `chunk` as forms complete events, appending them to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) {
        if chunk.is_empty() {
            return;
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        if !self.started && self.line.is_empty() && chunk.len() >= BOM.len() {
            // The usual first chunk: long enough to hold the whole BOM, if any, so it
            // is decoded in place instead of copied into the line buffer and out again.
            self.started = true;
            self.feed_lines(chunk.strip_prefix(BOM).unwrap_or(chunk), out);
            return;
        }
        if !self.started {
            // The BOM may itself be split across chunks: hold back a proper prefix of it.
            self.line.extend_from_slice(chunk);
            if self.line.len() < BOM.len() && BOM.starts_with(&self.line) {
                return;
            }
            self.started = true;
            let held = std::mem::take(&mut self.line);
            let held = held.strip_prefix(BOM).unwrap_or(&held).to_vec();
            self.feed_lines(&held, out);
            return;
        }
        self.feed_lines(chunk, out);
    }

    fn feed_lines(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        let mut rest = chunk;
        while let Some(pos) = memchr::memchr2(b'\n', b'\r', rest) {
            let (line_part, tail) = rest.split_at(pos);
            let terminator = tail[0];
            rest = &tail[1..];
            if terminator == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            if self.line.is_empty() {
                self.process_line(line_part, out);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(line_part);
                self.process_line(&line, out);
                line.clear();
                self.line = line;
            }
        }
        if !rest.is_empty() && self.line.capacity() == 0 {
            // The line goes on in the next chunk: room for it to end there too, instead
            // of growing by reallocation on each of the next pieces.
            self.line.reserve(rest.len() + LINE_ROOM);
        }
        self.line.extend_from_slice(rest);
    }

    /// Ends the stream: a final event not followed by a blank line is still delivered
    /// (upstreams that close right after the last `data:` line lose nothing).
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out);
        }
        self.dispatch(out);
        self.after_cr = false;
    }

    /// Whether the decoder holds no partial line or event.
    pub fn is_idle(&self) -> bool {
        self.line.is_empty() && !self.has_data && self.event.is_none()
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                // `from_utf8` checks ASCII a word at a time; the lossy decoder walks
                // every byte, and valid UTF-8 is the rule.
                match std::str::from_utf8(value) {
                    Ok(v) => self.data.push_str(v),
                    Err(_) => self.data.push_str(&String::from_utf8_lossy(value)),
                }
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            // Per the spec an id containing NUL is ignored.
            b"id" if !value.contains(&0) => {
                self.id = Some(String::from_utf8_lossy(value).into_owned());
            }
            b"retry" => {
                if let Ok(n) = std::str::from_utf8(value).unwrap_or("x").parse() {
                    self.retry = Some(n);
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        // Per the spec an event without data is not dispatched; its `event:` is reset.
        // `id` persists across events as the last event id.
        let event = self.event.take();
        let retry = self.retry.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        out.push(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
            id: self.id.clone(),
            retry,
        });
    }
}

/// Appends one event (`event:` line when given, then one `data:` line per data line,
/// then a blank line) to `out`.
pub fn encode_event(out: &mut Vec<u8>, event: Option<&str>, data: &str) {
    if let Some(event) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.strip_suffix('\r').unwrap_or(line).as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// Appends a `data:` event with a JSON-serialised value (no `event:` line, OpenAI style).
pub fn encode_json<T: serde::Serialize>(out: &mut Vec<u8>, event: Option<&str>, value: &T) {
    if let Some(event) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    // Serialising our own wire types into a Vec cannot fail: they contain no maps with
    // non-string keys and the writer is infallible.
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
}

/// Appends one event whose `data` line `body` writes (JSON without newlines).
pub fn encode_with(out: &mut Vec<u8>, event: &str, body: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    body(out);
    out.extend_from_slice(b"\n\n");
}

/// Appends OpenAI's end-of-stream sentinel `data: [DONE]`.
pub fn encode_done(out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: [DONE]\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(input: &[u8]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        d.feed(input, &mut out);
        d.finish(&mut out);
        out
    }

    fn decode_split(input: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut start = 0;
        for c in cuts {
            d.feed(&input[start..c], &mut out);
            start = c;
        }
        d.feed(&input[start..], &mut out);
        d.finish(&mut out);
        out
    }

    const SAMPLE: &[u8] = b"\xEF\xBB\xBF: comment\r\nevent: a\r\ndata: line1\r\ndata:line2\r\nid: 7\r\n\r\ndata: x\rdata: y\r\r: c\n\ndata\n\ndata: [DONE]\n\n";

    #[test]
    fn parses_fields_and_line_endings() {
        let ev = decode_all(SAMPLE);
        assert_eq!(ev.len(), 4);
        assert_eq!(ev[0].event.as_deref(), Some("a"));
        assert_eq!(ev[0].data, "line1\nline2");
        assert_eq!(ev[0].id.as_deref(), Some("7"));
        assert_eq!(ev[1].data, "x\ny");
        assert_eq!(ev[1].event, None);
        assert_eq!(ev[1].id.as_deref(), Some("7"), "last event id persists");
        assert_eq!(ev[2].data, "");
        assert!(ev[3].is_done());
    }

    #[test]
    fn event_without_data_is_not_dispatched_and_tail_is_flushed() {
        let ev = decode_all(b"event: x\n\ndata: tail");
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].event, None);
        assert_eq!(ev[0].data, "tail");
    }

    #[test]
    fn encoder_round_trips_multiline_data() {
        let mut out = Vec::new();
        encode_event(&mut out, Some("e"), "a\nb");
        encode_done(&mut out);
        let ev = decode_all(&out);
        assert_eq!(ev[0].data, "a\nb");
        assert_eq!(ev[0].event.as_deref(), Some("e"));
        assert!(ev[1].is_done());
    }

    #[test]
    fn byte_by_byte_equals_whole() {
        let cuts: Vec<usize> = (0..SAMPLE.len()).collect();
        assert_eq!(decode_split(SAMPLE, &cuts), decode_all(SAMPLE));
    }

    proptest! {
        #[test]
        fn any_split_gives_identical_events(cuts in proptest::collection::vec(0usize..200, 0..12)) {
            prop_assert_eq!(decode_split(SAMPLE, &cuts), decode_all(SAMPLE));
        }

        #[test]
        fn arbitrary_input_any_split(input in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), Just(b':'), Just(b' '), Just(b'd'), Just(b'a'), Just(b't'), any::<u8>()], 0..120),
            cuts in proptest::collection::vec(0usize..130, 0..8),
            bom in 0usize..4) {
            // With a whole or partial BOM first now and then.
            let input = [&b"\xEF\xBB\xBF"[..bom], &input[..]].concat();
            prop_assert_eq!(decode_split(&input, &cuts), decode_all(&input));
        }

        #[test]
        fn encode_decode_round_trip(event in proptest::option::of("[a-z_]{1,10}"), data in "[^\r]{0,40}") {
            let mut out = Vec::new();
            encode_event(&mut out, event.as_deref(), &data);
            let ev = decode_all(&out);
            prop_assert_eq!(ev.len(), 1);
            prop_assert_eq!(&ev[0].data, &data);
            prop_assert_eq!(ev[0].event.as_deref(), event.as_deref());
        }
    }
}
