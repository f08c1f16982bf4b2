//! Server-sent events as MCP's Streamable HTTP uses them: an incremental parser for the
//! backends' streams (any chunk boundary, `\n`, `\r\n` or `\r` line ends) and the
//! writer for the client's stream.

use bytes::{Bytes, BytesMut};

/// One event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// `id:` (the backend's, for `Last-Event-Id` resumption).
    pub(crate) id: Option<String>,
    /// `event:` (MCP uses `message` or none).
    pub(crate) event: Option<String>,
    /// `data:` lines joined with `\n`.
    pub(crate) data: String,
}

impl SseEvent {
    /// A `message` event carrying one JSON-RPC message.
    pub(crate) fn message(data: String, id: Option<String>) -> Self {
        Self {
            id,
            event: Some("message".into()),
            data,
        }
    }

    /// The event on the wire.
    pub(crate) fn encode(&self) -> Bytes {
        let mut out = String::with_capacity(self.data.len() + 32);
        if let Some(e) = &self.event {
            out.push_str("event: ");
            out.push_str(e);
            out.push('\n');
        }
        if let Some(id) = &self.id {
            out.push_str("id: ");
            out.push_str(id);
            out.push('\n');
        }
        for line in self.data.split('\n') {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        Bytes::from(out)
    }
}

/// Incremental parser: feed chunks, take complete events.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buf: BytesMut,
    current: SseEvent,
    /// A `data:` line was seen for the current event.
    data_seen: bool,
    /// A `\r` ended the last chunk: a following `\n` belongs to it.
    pending_cr: bool,
}

/// Longest line kept while waiting for its end (a backend that never sends one must
/// not grow the buffer without bound).
const MAX_LINE: usize = 16 * 1024 * 1024;

impl SseParser {
    /// Feeds a chunk and returns the events it completes.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, &'static str> {
        let mut chunk = chunk;
        if self.pending_cr && !chunk.is_empty() {
            self.pending_cr = false;
            if chunk.first() == Some(&b'\n') {
                chunk = &chunk[1..];
            }
        }
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n' || *b == b'\r') {
            let line = self.buf.split_to(pos);
            let term = self.buf.split_to(1);
            if term[0] == b'\r' {
                match self.buf.first() {
                    Some(b'\n') => {
                        let _ = self.buf.split_to(1);
                    }
                    None => self.pending_cr = true,
                    Some(_) => {}
                }
            }
            if let Some(ev) = self.line(&line) {
                events.push(ev);
            }
        }
        if self.buf.len() > MAX_LINE {
            return Err("server-sent event line too long");
        }
        Ok(events)
    }

    /// Ends the stream: an event without its blank line is still delivered.
    pub(crate) fn finish(&mut self) -> Option<SseEvent> {
        if !self.buf.is_empty() {
            let line = self.buf.split();
            self.line(&line);
        }
        self.dispatch()
    }

    fn line(&mut self, line: &[u8]) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return None;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.find(':') {
            Some(i) => {
                let v = &text[i + 1..];
                (&text[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (text.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.data_seen {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.data_seen = true;
            }
            "id" => {
                self.current.id = Some(value.to_string());
            }
            "event" => {
                self.current.event = Some(value.to_string());
            }
            _ => {}
        }
        None
    }

    /// A blank line: the event is complete (one without data is dropped, as the
    /// EventSource algorithm does).
    fn dispatch(&mut self) -> Option<SseEvent> {
        let ev = std::mem::take(&mut self.current);
        let seen = std::mem::replace(&mut self.data_seen, false);
        seen.then_some(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STREAM: &str = "event: message\nid: 7\ndata: {\"a\":1}\n\n: comment\r\ndata: x\r\ndata: y\r\n\r\ndata: z\r\r";

    fn all_at_once() -> Vec<SseEvent> {
        let mut p = SseParser::default();
        let mut v = p.feed(STREAM.as_bytes()).unwrap();
        v.extend(p.finish());
        v
    }

    #[test]
    fn parses_fields_and_line_ends() {
        let v = all_at_once();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].id.as_deref(), Some("7"));
        assert_eq!(v[0].event.as_deref(), Some("message"));
        assert_eq!(v[0].data, "{\"a\":1}");
        assert_eq!(v[1].data, "x\ny");
        assert_eq!(v[2].data, "z");
    }

    #[test]
    fn encode_roundtrips() {
        let ev = SseEvent::message("l1\nl2".into(), Some("e1".into()));
        let mut p = SseParser::default();
        let v = p.feed(&ev.encode()).unwrap();
        assert_eq!(v, vec![ev]);
    }

    #[test]
    fn unterminated_line_is_bounded() {
        let mut p = SseParser::default();
        let big = vec![b'a'; MAX_LINE + 1];
        assert!(p.feed(&big).is_err());
    }

    proptest! {
        #[test]
        fn any_split_gives_same_events(cuts in proptest::collection::vec(0usize..STREAM.len(), 0..6)) {
            let mut cuts = cuts;
            cuts.sort_unstable();
            let bytes = STREAM.as_bytes();
            let mut p = SseParser::default();
            let mut got = Vec::new();
            let mut last = 0;
            for c in cuts {
                got.extend(p.feed(&bytes[last..c]).unwrap());
                last = c;
            }
            got.extend(p.feed(&bytes[last..]).unwrap());
            got.extend(p.finish());
            prop_assert_eq!(got, all_at_once());
        }
    }
}
