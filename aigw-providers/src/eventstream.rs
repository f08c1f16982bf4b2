//! AWS eventstream (`application/vnd.amazon.eventstream`): an incremental decoder for
//! Bedrock's streamed responses and an encoder for tests and provider simulators.
//!
//! Frame layout (all integers big-endian):
//!
//! ```text
//! [total length u32][headers length u32][prelude CRC32 u32][headers][payload][message CRC32 u32]
//! ```
//!
//! The decoder is incremental and zero-copy: frames are cut out of the receive buffer,
//! the prelude CRC and lengths are checked as soon as the 12 prelude bytes arrive (so a
//! corrupt length never makes us buffer gigabytes waiting for a frame that will not
//! come), the message CRC before anything is parsed, and a stream that ends inside a
//! frame is a clean "truncated" error. The `:message-type` / `:event-type` /
//! `:exception-type` headers become a small enum the translators match on. The encoder
//! is `aws-smithy-eventstream`'s, the codec the AWS SDKs use.

use aigw_core::{Error, Result};
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::{Bytes, BytesMut};

/// Length of the prelude: total length, headers length, prelude CRC.
const PRELUDE_LEN: usize = 12;
/// Smallest valid frame: a prelude and the message CRC.
const MIN_FRAME_LEN: u32 = 16;
/// Largest frame accepted. AWS limits eventstream payloads to 16 MiB and headers to
/// 128 KiB; anything bigger is corruption, not data.
pub const MAX_FRAME_LEN: u32 = 16 * 1024 * 1024 + 128 * 1024 + MIN_FRAME_LEN;

/// What a frame carries, from its `:message-type` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameKind {
    /// `:message-type: event`, named by `:event-type` (e.g. `contentBlockDelta`, `chunk`).
    Event(String),
    /// `:message-type: exception`, named by `:exception-type` (e.g. `throttlingException`).
    /// The payload is a JSON body with a `message`.
    Exception(String),
    /// `:message-type: error`, with `:error-code` and `:error-message` headers.
    Error {
        /// The `:error-code` header.
        code: String,
        /// The `:error-message` header.
        message: String,
    },
}

/// One decoded eventstream message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The kind of message and its name.
    pub kind: FrameKind,
    /// The payload (JSON for Bedrock).
    pub payload: Bytes,
}

/// Reads a big-endian u32 at `i` (callers guarantee the bounds).
fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Walks the header block and picks out the string headers the gateway uses.
fn parse_headers(mut h: &[u8]) -> Result<FrameKind> {
    let bad =
        |what: &str| Error::malformed_upstream(format!("eventstream: malformed header ({what})"));
    let mut message_type: &[u8] = b"event";
    let mut event_type: &[u8] = b"";
    let mut exception_type: &[u8] = b"";
    let mut error_code: &[u8] = b"";
    let mut error_message: &[u8] = b"";
    while !h.is_empty() {
        let name_len = usize::from(h[0]);
        let name = h.get(1..1 + name_len).ok_or_else(|| bad("name"))?;
        let kind = *h.get(1 + name_len).ok_or_else(|| bad("type"))?;
        let rest = &h[2 + name_len..];
        // Value sizes by type: bool true/false carry none, then byte, short, int, long,
        // byte array and string (u16 length prefix), timestamp, uuid.
        let (value, consumed): (Option<&[u8]>, usize) = match kind {
            0 | 1 => (None, 0),
            2 => (None, 1),
            3 => (None, 2),
            4 => (None, 4),
            5 | 8 => (None, 8),
            9 => (None, 16),
            6 | 7 => {
                let len_bytes = rest.get(..2).ok_or_else(|| bad("value length"))?;
                let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
                let v = rest.get(2..2 + len).ok_or_else(|| bad("value"))?;
                ((kind == 7).then_some(v), 2 + len)
            }
            other => return Err(bad(&format!("unknown value type {other}"))),
        };
        if rest.len() < consumed {
            return Err(bad("value"));
        }
        if let Some(v) = value {
            match name {
                b":message-type" => message_type = v,
                b":event-type" => event_type = v,
                b":exception-type" => exception_type = v,
                b":error-code" => error_code = v,
                b":error-message" => error_message = v,
                _ => {}
            }
        }
        h = &rest[consumed..];
    }
    // `from_utf8` checks ASCII a word at a time; the lossy decoder walks every byte
    // and is only needed for invalid input (same text either way).
    let text = |v: &[u8]| {
        std::str::from_utf8(v)
            .map_or_else(|_| String::from_utf8_lossy(v).into_owned(), str::to_owned)
    };
    Ok(match message_type {
        b"exception" => FrameKind::Exception(text(exception_type)),
        b"error" => FrameKind::Error {
            code: text(error_code),
            message: text(error_message),
        },
        // Bedrock always sends `event`; a frame without the header is treated as one.
        _ => FrameKind::Event(text(event_type)),
    })
}

/// Incremental eventstream decoder: feed it chunks with any boundaries, take frames out.
///
/// Frames are cut out of the receive buffer without copying (the payload is a slice of
/// it). Parsing is our own rather than `aws-smithy-eventstream`'s because that decoder
/// allocates for every header of every frame, which measured at half of the per-event
/// budget on the streaming path; the encoder below, and the tests, use the AWS crate,
/// so the two implementations check each other.
///
/// ```
/// use aigw_providers::eventstream::{encode_event, Decoder, FrameKind};
/// let wire = encode_event("messageStop", br#"{"stopReason":"end_turn"}"#).unwrap();
/// let mut d = Decoder::new();
/// d.push(&wire[..5]);
/// assert!(d.next_frame().unwrap().is_none());
/// d.push(&wire[5..]);
/// let f = d.next_frame().unwrap().unwrap();
/// assert_eq!(f.kind, FrameKind::Event("messageStop".into()));
/// d.finish().unwrap();
/// ```
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
    /// A decode error happened; the stream cannot be resynchronised.
    failed: bool,
}

impl Decoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Returns the next complete frame, `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    /// A prelude or message CRC mismatch, an impossible length or a malformed header
    /// is [`Error::MalformedUpstream`]; after one, every later call fails too.
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        if self.failed {
            return Err(Error::malformed_upstream(
                "eventstream: decoding already failed",
            ));
        }
        let result = self.try_next();
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn try_next(&mut self) -> Result<Option<Frame>> {
        if self.buf.len() < PRELUDE_LEN {
            return Ok(None);
        }
        check_prelude(&self.buf[..PRELUDE_LEN])?;
        let total = be32(&self.buf, 0) as usize;
        let headers_len = be32(&self.buf, 4) as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        let frame = self.buf.split_to(total).freeze();
        let expected = be32(&frame, total - 4);
        let actual = crc32fast::hash(&frame[..total - 4]);
        if expected != actual {
            return Err(Error::malformed_upstream(format!(
                "eventstream: message checksum mismatch (expected {expected:#010x}, computed {actual:#010x})"
            )));
        }
        let kind = parse_headers(&frame[PRELUDE_LEN..PRELUDE_LEN + headers_len])?;
        Ok(Some(Frame {
            kind,
            payload: frame.slice(PRELUDE_LEN + headers_len..total - 4),
        }))
    }

    /// Checks that the stream ended on a frame boundary.
    ///
    /// # Errors
    /// [`Error::MalformedUpstream`] when a partial frame is left over.
    pub fn finish(&self) -> Result<()> {
        if !self.buf.is_empty() {
            return Err(Error::malformed_upstream(format!(
                "eventstream truncated: the stream ended inside a frame ({} byte(s) pending)",
                self.buf.len()
            )));
        }
        Ok(())
    }
}

fn check_prelude(prelude: &[u8]) -> Result<()> {
    let word =
        |i: usize| u32::from_be_bytes([prelude[i], prelude[i + 1], prelude[i + 2], prelude[i + 3]]);
    let (total, headers, crc) = (word(0), word(4), word(8));
    let actual = crc32fast::hash(&prelude[..8]);
    if actual != crc {
        return Err(Error::malformed_upstream(format!(
            "eventstream: prelude checksum mismatch (expected {crc:#010x}, computed {actual:#010x})"
        )));
    }
    if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&total)
        || u64::from(headers) + u64::from(MIN_FRAME_LEN) > u64::from(total)
    {
        return Err(Error::malformed_upstream(format!(
            "eventstream: invalid frame lengths (total {total}, headers {headers})"
        )));
    }
    Ok(())
}

/// Encodes one frame with string headers and valid CRCs.
///
/// # Errors
/// [`Error::Internal`] when a header or the payload exceeds the format's limits.
pub fn encode_frame(headers: &[(&str, &str)], payload: &[u8]) -> Result<Bytes> {
    let headers = headers
        .iter()
        .map(|(name, value)| {
            Header::new(
                (*name).to_owned(),
                HeaderValue::String((*value).to_owned().into()),
            )
        })
        .collect();
    let message = Message::new_from_parts(headers, Bytes::copy_from_slice(payload));
    let mut out = Vec::with_capacity(payload.len() + 128);
    write_message_to(&message, &mut out)
        .map_err(|e| Error::internal(format!("eventstream encode: {e}")))?;
    Ok(Bytes::from(out))
}

/// Encodes an `event` frame with a JSON payload, as Bedrock sends them.
///
/// # Errors
/// See [`encode_frame`].
pub fn encode_event(event_type: &str, payload: &[u8]) -> Result<Bytes> {
    encode_frame(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// Encodes an `exception` frame with a JSON payload (`{"message":"…"}`).
///
/// # Errors
/// See [`encode_frame`].
pub fn encode_exception(exception_type: &str, payload: &[u8]) -> Result<Bytes> {
    encode_frame(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(wire: &[u8], step: usize) -> Result<Vec<Frame>> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for chunk in wire.chunks(step.max(1)) {
            d.push(chunk);
            while let Some(f) = d.next_frame()? {
                out.push(f);
            }
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn roundtrip_byte_by_byte() {
        let mut wire = encode_event("a", b"{\"x\":1}").unwrap().to_vec();
        wire.extend_from_slice(&encode_exception("throttlingException", b"{}").unwrap());
        let frames = decode_all(&wire, 1).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].kind, FrameKind::Event("a".into()));
        assert_eq!(&frames[0].payload[..], b"{\"x\":1}");
        assert_eq!(
            frames[1].kind,
            FrameKind::Exception("throttlingException".into())
        );
    }

    #[test]
    fn error_message_type() {
        let wire = encode_frame(
            &[
                (":message-type", "error"),
                (":error-code", "InternalFailure"),
                (":error-message", "boom"),
            ],
            b"",
        )
        .unwrap();
        let frames = decode_all(&wire, 7).unwrap();
        assert_eq!(
            frames[0].kind,
            FrameKind::Error {
                code: "InternalFailure".into(),
                message: "boom".into()
            }
        );
    }

    #[test]
    fn corrupt_prelude_fails_before_buffering() {
        let mut wire = encode_event("a", b"{}").unwrap().to_vec();
        wire[0] = 0x7f; // claims a 2 GiB frame
        let mut d = Decoder::new();
        d.push(&wire[..12]);
        let e = d.next_frame().unwrap_err();
        assert!(e.to_string().contains("prelude checksum"), "{e}");
        assert!(d.next_frame().is_err());
    }

    #[test]
    fn corrupt_payload_fails_message_crc() {
        let mut wire = encode_event("a", b"{\"x\":1}").unwrap().to_vec();
        let n = wire.len();
        wire[n - 6] ^= 0xff;
        let e = decode_all(&wire, 3).unwrap_err();
        assert!(e.to_string().to_lowercase().contains("checksum"), "{e}");
    }

    #[test]
    fn decodes_what_the_aws_encoder_writes_with_every_header_type() {
        use aws_smithy_types::DateTime;
        let message = Message::new_from_parts(
            vec![
                Header::new("flag", HeaderValue::Bool(true)),
                Header::new("off", HeaderValue::Bool(false)),
                Header::new("b", HeaderValue::Byte(7)),
                Header::new("s", HeaderValue::Int16(-2)),
                Header::new("i", HeaderValue::Int32(1 << 20)),
                Header::new("l", HeaderValue::Int64(1 << 40)),
                Header::new(
                    "bytes",
                    HeaderValue::ByteArray(Bytes::from_static(b"\x00\x01")),
                ),
                Header::new(
                    "t",
                    HeaderValue::Timestamp(DateTime::from_secs(1_700_000_000)),
                ),
                Header::new("u", HeaderValue::Uuid(42)),
                Header::new(":message-type", HeaderValue::String("event".into())),
                Header::new(":event-type", HeaderValue::String("chunk".into())),
            ],
            Bytes::from_static(b"{\"bytes\":\"e30=\"}"),
        );
        let mut wire = Vec::new();
        write_message_to(&message, &mut wire).unwrap();
        let frames = decode_all(&wire, 3).unwrap();
        assert_eq!(frames[0].kind, FrameKind::Event("chunk".into()));
        assert_eq!(&frames[0].payload[..], b"{\"bytes\":\"e30=\"}");
    }

    proptest::proptest! {
        #[test]
        fn roundtrips_arbitrary_frames(
            frames in proptest::collection::vec(("[a-zA-Z]{0,20}", proptest::collection::vec(proptest::num::u8::ANY, 0..300)), 1..6),
            step in 1usize..64,
        ) {
            let mut wire = Vec::new();
            for (name, payload) in &frames {
                wire.extend_from_slice(&encode_event(name, payload).unwrap());
            }
            let got = decode_all(&wire, step).unwrap();
            proptest::prop_assert_eq!(got.len(), frames.len());
            for (g, (name, payload)) in got.iter().zip(&frames) {
                proptest::prop_assert_eq!(&g.kind, &FrameKind::Event(name.clone()));
                proptest::prop_assert_eq!(&g.payload[..], &payload[..]);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512), step in 1usize..32) {
            let _ = decode_all(&bytes, step);
        }
    }

    #[test]
    fn truncated_is_an_error_at_finish() {
        let wire = encode_event("a", b"{\"x\":1}").unwrap();
        let e = decode_all(&wire[..wire.len() - 1], 4).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let e = decode_all(&wire[..5], 4).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }
}
