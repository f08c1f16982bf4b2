//! AWS eventstream framing for Bedrock streams (`application/vnd.amazon.eventstream`).
//!
//! Frames are written by `aws-smithy-eventstream`, so preludes and CRCs are exactly what
//! AWS SDKs verify. Header order follows real Bedrock captures: `:event-type`,
//! `:content-type`, `:message-type`.

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;

/// The media type of a Bedrock stream response.
pub(crate) const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// Encodes one `event` message with a JSON payload.
pub(crate) fn event(event_type: &'static str, payload: Vec<u8>) -> Bytes {
    let len = payload.len();
    let message = Message::new(payload)
        .add_header(Header::new(
            ":event-type",
            HeaderValue::String(event_type.into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ));
    let mut out = Vec::with_capacity(len + 96);
    match write_message_to(&message, &mut out) {
        Ok(()) => Bytes::from(out),
        Err(err) => {
            tracing::warn!(%err, "cannot encode eventstream frame");
            Bytes::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};

    #[test]
    fn round_trips_through_the_smithy_decoder() {
        let frame = event("messageStart", br#"{"role":"assistant"}"#.to_vec());
        let mut buf = frame.clone();
        let DecodedFrame::Complete(msg) =
            MessageFrameDecoder::new().decode_frame(&mut buf).unwrap()
        else {
            panic!("incomplete frame")
        };
        let names: Vec<&str> = msg.headers().iter().map(|h| h.name().as_str()).collect();
        assert_eq!(names, [":event-type", ":content-type", ":message-type"]);
        assert_eq!(msg.payload().as_ref(), br#"{"role":"assistant"}"#);
        // total length in the prelude matches the frame
        assert_eq!(
            u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize,
            frame.len()
        );
    }
}
