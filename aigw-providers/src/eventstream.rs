//! AWS eventstream (`application/vnd.amazon.eventstream`): an incremental decoder for
//! Bedrock's streamed responses and an encoder for tests and provider simulators.
//!
//! Frame layout (all integers big-endian):
//!
//! ```text
//! [total length u32][headers length u32][prelude CRC32 u32][headers][payload][message CRC32 u32]
//! ```
//!
//! Parsing and CRC checking of a complete frame is delegated to `aws-smithy-eventstream`,
//! the codec the AWS SDKs use. On top of it this module adds what a gateway needs:
//! the prelude CRC and length are checked as soon as the 12 prelude bytes arrive (so a
//! corrupt length never makes us buffer gigabytes waiting for a frame that will not
//! come), an upper bound on frame size, a clean "truncated" error at end of stream, and
//! the `:message-type` / `:event-type` / `:exception-type` headers turned into a small
//! enum the translators match on.

use aigw_core::{Error, Result};
use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder, write_message_to};
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

impl Frame {
    fn from_message(message: &Message) -> Self {
        let mut message_type = None;
        let mut event_type = None;
        let mut exception_type = None;
        let mut error_code = None;
        let mut error_message = None;
        for header in message.headers() {
            let Ok(value) = header.value().as_string() else {
                continue;
            };
            let slot = match header.name().as_str() {
                ":message-type" => &mut message_type,
                ":event-type" => &mut event_type,
                ":exception-type" => &mut exception_type,
                ":error-code" => &mut error_code,
                ":error-message" => &mut error_message,
                _ => continue,
            };
            *slot = Some(value.as_str().to_owned());
        }
        let kind = match message_type.as_deref() {
            Some("exception") => FrameKind::Exception(exception_type.unwrap_or_default()),
            Some("error") => FrameKind::Error {
                code: error_code.unwrap_or_default(),
                message: error_message.unwrap_or_default(),
            },
            // Bedrock always sends `event`; a frame without the header is treated as one.
            _ => FrameKind::Event(event_type.unwrap_or_default()),
        };
        Self {
            kind,
            payload: message.payload().clone(),
        }
    }
}

/// Incremental eventstream decoder: feed it chunks with any boundaries, take frames out.
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
    inner: MessageFrameDecoder,
    /// The current frame's prelude was checked and handed to `inner`.
    in_frame: bool,
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
        if !self.in_frame {
            if self.buf.len() < PRELUDE_LEN {
                return Ok(None);
            }
            if let Err(e) = check_prelude(&self.buf[..PRELUDE_LEN]) {
                self.failed = true;
                return Err(e);
            }
        }
        match self.inner.decode_frame(&mut self.buf) {
            Ok(DecodedFrame::Complete(message)) => {
                self.in_frame = false;
                Ok(Some(Frame::from_message(&message)))
            }
            Ok(DecodedFrame::Incomplete) => {
                self.in_frame = true;
                Ok(None)
            }
            Err(e) => {
                self.failed = true;
                Err(Error::malformed_upstream(format!("eventstream: {e}")))
            }
        }
    }

    /// Checks that the stream ended on a frame boundary.
    ///
    /// # Errors
    /// [`Error::MalformedUpstream`] when a partial frame is left over.
    pub fn finish(&self) -> Result<()> {
        if self.in_frame || !self.buf.is_empty() {
            return Err(Error::malformed_upstream(format!(
                "eventstream truncated: the stream ended inside a frame ({} byte(s) pending)",
                self.buf.len() + if self.in_frame { PRELUDE_LEN } else { 0 }
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
    fn truncated_is_an_error_at_finish() {
        let wire = encode_event("a", b"{\"x\":1}").unwrap();
        let e = decode_all(&wire[..wire.len() - 1], 4).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let e = decode_all(&wire[..5], 4).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }
}
