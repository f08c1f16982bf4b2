//! An Anthropic stream event read by [`Scan`] instead of serde's derived visitors: the
//! same [`AEvent`], or `None` when serde must read it (see [`crate::json_scan`]). A
//! property test checks it against the serde path.

use super::{ABlock, ADelta, AError, AEvent, AStartMessage, AUsage};
use crate::json_scan::{Scan, set};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Reads an event; `None` when it must be parsed by serde instead.
pub(super) fn event(json: &[u8]) -> Option<AEvent<'_>> {
    let mut s = Scan::new(std::str::from_utf8(json).ok()?);
    let e = s.event()?;
    s.at_end().then_some(e)
}

/// The base64 text of an InvokeModel `chunk` frame's `{"bytes":…}` payload; `None`
/// when it must be parsed by serde instead.
pub(super) fn payload(frame: &[u8]) -> Option<Cow<'_, str>> {
    let mut s = Scan::new(std::str::from_utf8(frame).ok()?);
    let mut bytes = None;
    s.object(|s, k| match k {
        "bytes" => {
            let v = s.string()?;
            set(&mut bytes, v)
        }
        _ => s.skip(),
    })?;
    s.at_end().then_some(bytes?)
}

/// The base64 text of a `chunk` frame's payload when it is exactly `{"bytes":"…"}` or
/// `{"bytes":"…","p":"…"}` with a padding value of ASCII letters and digits, as
/// InvokeModel writes it; `None` for anything else (which [`payload`] or serde reads).
/// The text is everything up to the first quote: when all of it is base64 alphabet
/// (the decoder checks), the JSON string has no escapes and serde reads these bytes.
pub(super) fn plain_payload(frame: &[u8]) -> Option<&[u8]> {
    let rest = frame.strip_prefix(br#"{"bytes":""#)?;
    let end = memchr::memchr(b'"', rest)?;
    let (b64, tail) = (&rest[..end], &rest[end + 1..]);
    let padded = || {
        tail.strip_prefix(br#","p":""#)
            .and_then(|t| t.strip_suffix(br#""}"#))
            .is_some_and(|p| p.iter().all(u8::is_ascii_alphanumeric))
    };
    (tail == b"}" || padded()).then_some(b64)
}

/// The event's objects.
trait Anthropic<'a> {
    fn event(&mut self) -> Option<AEvent<'a>>;
    fn usage(&mut self) -> Option<AUsage>;
    fn block(&mut self) -> Option<ABlock<'a>>;
    fn delta(&mut self) -> Option<ADelta<'a>>;
    fn error(&mut self) -> Option<AError<'a>>;
    fn opt<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>>;
}

impl<'a> Anthropic<'a> for Scan<'a> {
    /// `null` is `None`, as `Option` reads it.
    fn opt<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.null() {
            Some(None)
        } else {
            read(self).map(Some)
        }
    }

    fn event(&mut self) -> Option<AEvent<'a>> {
        let (mut kind, mut index, mut message) = (None, None, None);
        let (mut block, mut delta, mut usage, mut error) = (None, None, None, None);
        self.object(|s, k| match k {
            "type" => {
                let v = s.string()?;
                set(&mut kind, v)
            }
            "index" => {
                let v = s.opt(|s| u32::try_from(s.u64()?).ok())?;
                set(&mut index, v)
            }
            "message" => {
                let v = s.opt(|s| {
                    let mut usage = None;
                    s.object(|s, k| match k {
                        "usage" => {
                            let v = s.opt(Self::usage)?;
                            set(&mut usage, v)
                        }
                        _ => s.skip(),
                    })?;
                    Some(AStartMessage {
                        usage: usage.flatten(),
                    })
                })?;
                set(&mut message, v)
            }
            "content_block" => {
                let v = s.opt(Self::block)?;
                set(&mut block, v)
            }
            "delta" => {
                let v = s.opt(Self::delta)?;
                set(&mut delta, v)
            }
            "usage" => {
                let v = s.opt(Self::usage)?;
                set(&mut usage, v)
            }
            "error" => {
                let v = s.opt(Self::error)?;
                set(&mut error, v)
            }
            _ => s.skip(),
        })?;
        Some(AEvent {
            kind: kind?,
            index: index.flatten(),
            message: message.flatten(),
            content_block: block.flatten(),
            delta: delta.flatten(),
            usage: usage.flatten(),
            error: error.flatten(),
        })
    }

    fn usage(&mut self) -> Option<AUsage> {
        let mut f: [Option<Option<u64>>; 4] = [None; 4];
        self.object(|s, k| {
            let slot = match k {
                "input_tokens" => 0,
                "output_tokens" => 1,
                "cache_creation_input_tokens" => 2,
                "cache_read_input_tokens" => 3,
                _ => return s.skip(),
            };
            let v = s.opt_u64()?;
            set(&mut f[slot], v)
        })?;
        let [input, output, creation, read] = f.map(Option::flatten);
        Some(AUsage {
            input_tokens: input,
            output_tokens: output,
            cache_creation_input_tokens: creation,
            cache_read_input_tokens: read,
        })
    }

    fn block(&mut self) -> Option<ABlock<'a>> {
        let mut kind = None;
        let mut f: [Option<Option<Cow<'a, str>>>; 6] = Default::default();
        let mut input = None;
        self.object(|s, k| {
            let slot = match k {
                "type" => {
                    let v = s.string()?;
                    return set(&mut kind, v);
                }
                "input" => {
                    let v = s.opt(|s| s.serde::<&'a RawValue>())?;
                    return set(&mut input, v);
                }
                "text" => 0,
                "thinking" => 1,
                "signature" => 2,
                "data" => 3,
                "id" => 4,
                "name" => 5,
                _ => return s.skip(),
            };
            let v = s.opt_string()?;
            set(&mut f[slot], v)
        })?;
        let [text, thinking, signature, data, id, name] = f.map(Option::flatten);
        Some(ABlock {
            kind: kind?,
            text,
            thinking,
            signature,
            data,
            id,
            name,
            input: input.flatten(),
        })
    }

    fn delta(&mut self) -> Option<ADelta<'a>> {
        let mut f: [Option<Option<Cow<'a, str>>>; 7] = Default::default();
        self.object(|s, k| {
            let slot = match k {
                "type" => 0,
                "text" => 1,
                "partial_json" => 2,
                "thinking" => 3,
                "signature" => 4,
                "stop_reason" => 5,
                "stop_sequence" => 6,
                _ => return s.skip(),
            };
            let v = s.opt_string()?;
            set(&mut f[slot], v)
        })?;
        let [
            kind,
            text,
            partial_json,
            thinking,
            signature,
            stop_reason,
            stop_sequence,
        ] = f.map(Option::flatten);
        Some(ADelta {
            kind,
            text,
            partial_json,
            thinking,
            signature,
            stop_reason,
            stop_sequence,
        })
    }

    fn error(&mut self) -> Option<AError<'a>> {
        let (mut kind, mut message) = (None, None);
        self.object(|s, k| match k {
            "type" => {
                let v = s.string()?;
                set(&mut kind, v)
            }
            "message" => {
                let v = s.string()?;
                set(&mut message, v)
            }
            _ => s.skip(),
        })?;
        Some(AError {
            kind: kind.unwrap_or_default(),
            message: message.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::json_scan::strategies::{
        agrees, assert_often_scanned, int, member, record, string_or_odd, unknown,
    };
    use proptest::prelude::*;

    fn scanned(data: &str) -> Option<String> {
        event(data.as_bytes()).map(|v| format!("{v:?}"))
    }

    fn parsed(data: &str) -> Result<String, serde_json::Error> {
        serde_json::from_str::<AEvent<'_>>(data).map(|v| format!("{v:?}"))
    }

    fn null() -> BoxedStrategy<String> {
        Just("null".to_owned()).boxed()
    }

    fn usage() -> BoxedStrategy<String> {
        record(
            Vec::new(),
            vec![
                member("input_tokens", vec![int()]),
                member("output_tokens", vec![int()]),
                member("cache_creation_input_tokens", vec![int()]),
                member("cache_read_input_tokens", vec![int()]),
                unknown(),
            ],
            false,
        )
    }

    fn anthropic_event() -> BoxedStrategy<String> {
        let strings = |keys: &[&'static str]| -> Vec<BoxedStrategy<String>> {
            keys.iter()
                .map(|k| member(k, vec![string_or_odd()]))
                .collect()
        };
        let mut block_optional = strings(&["text", "thinking", "signature", "data", "id", "name"]);
        block_optional.push(member(
            "input",
            vec![
                Just("{\"a\": [1, {\"b\": \"c\"}]}".to_owned()).boxed(),
                null(),
            ],
        ));
        let block = record(
            vec![member("type", vec![string_or_odd()])],
            block_optional,
            false,
        );
        let mut delta_optional = strings(&[
            "type",
            "text",
            "partial_json",
            "thinking",
            "signature",
            "stop_reason",
            "stop_sequence",
        ]);
        delta_optional.push(unknown());
        let delta = record(Vec::new(), delta_optional, false);
        let message = record(
            Vec::new(),
            vec![
                member("usage", vec![usage(), null()]),
                member("id", vec![string_or_odd()]),
                member("content", vec![Just("[]".to_owned()).boxed()]),
                unknown(),
            ],
            false,
        );
        let error = record(Vec::new(), strings(&["type", "message"]), false);
        record(
            vec![member("type", vec![string_or_odd()])],
            vec![
                member("index", vec![int()]),
                member("message", vec![message, null()]),
                member("content_block", vec![block, null()]),
                member("delta", vec![delta, null()]),
                member("usage", vec![usage(), null()]),
                member("error", vec![error, null()]),
                unknown(),
            ],
            true,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn scanner_agrees_with_serde(data in anthropic_event(), cut in 0usize..400) {
            agrees(&data, cut, scanned, parsed)?;
        }
    }

    #[test]
    fn the_generated_events_are_often_scanned() {
        assert_often_scanned(&anthropic_event(), scanned, parsed);
    }

    proptest! {
        #[test]
        fn payloads_are_read_as_serde_reads_them(
            b64 in "[A-Za-z0-9+/=]{0,40}|\\PC{0,8}",
            p in proptest::option::of("[a-z]{0,8}"),
            cut in 0usize..60,
        ) {
            let data = match p {
                Some(p) => format!("{{\"bytes\": {}, \"p\":\"{p}\"}}", serde_json::to_string(&b64).unwrap()),
                None => format!("{{\"bytes\":{}}}", serde_json::to_string(&b64).unwrap()),
            };
            let read = |d: &str| payload(d.as_bytes()).map(|c| format!("{c:?}"));
            let serde = |d: &str| {
                serde_json::from_str::<super::super::ChunkPayload<'_>>(d).map(|c| format!("{:?}", c.bytes))
            };
            agrees(&data, cut, read, serde)?;
        }
    }

    fn chunk_text() -> BoxedStrategy<String> {
        use base64::Engine as _;
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64)
                .prop_map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
            "[A-Za-z0-9+/=]{0,40}",
            "[A-Za-z0-9+/=\\\\\"]{0,12}|\\PC{0,8}",
        ]
        .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]
        /// The fixed-wrapper path decodes what the general path (scanner or serde, then
        /// the `base64` crate) does, and gives its error for anything it cannot read.
        #[test]
        fn chunks_decode_as_the_general_path_does(
            b64 in chunk_text(),
            wrapper in 0usize..6,
            p in "[a-zA-Z0-9]{0,8}|[a-z\\\\\" ]{0,3}",
        ) {
            use base64::Engine as _;
            let quoted = serde_json::to_string(&b64).unwrap();
            let frame = match wrapper {
                0 => format!(r#"{{"bytes":"{b64}"}}"#),
                1 => format!(r#"{{"bytes":"{b64}","p":"{p}"}}"#),
                2 => format!(r#"{{"bytes":{quoted}}}"#),
                3 => format!(r#"{{"bytes": {quoted}, "p":"{p}"}}"#),
                4 => format!(r#"{{"bytes":{quoted},"p":"{p}"}}"#),
                _ => format!(r#"{{"bytes":"{b64}"}} "#),
            };
            let (mut fast, mut general) = (Vec::new(), Vec::new());
            let a = super::super::chunk_json(frame.as_bytes(), &mut fast);
            let b = super::super::chunk_json_general(frame.as_bytes(), &mut general);
            prop_assert_eq!(&a, &b, "{}", frame);
            prop_assert_eq!(fast, general);
            let canonical = base64::engine::general_purpose::STANDARD
                .decode(&b64)
                .is_ok_and(|d| base64::engine::general_purpose::STANDARD.encode(d) == b64);
            if canonical && wrapper == 4 && p.bytes().all(|c| c.is_ascii_alphanumeric()) {
                prop_assert!(plain_payload(frame.as_bytes()).is_some());
            }
        }
    }

    /// The captured InvokeModel stream's payloads (with their `"p"` padding) all have
    /// the fixed shape, so they take the SIMD path.
    #[test]
    fn the_captured_frames_have_the_fixed_shape() {
        let wire = include_bytes!("../../../tests/fixtures/bedrock/responses/invoke.bin");
        let mut d = crate::eventstream::Decoder::new();
        d.push(wire);
        let mut frames = 0;
        while let Some(f) = d.next_frame().unwrap() {
            let b64 = plain_payload(&f.payload).unwrap();
            assert!(base64_simd::STANDARD.decode_to_vec(b64).is_ok());
            frames += 1;
        }
        assert!(frames > 2);
    }

    #[test]
    fn the_fixture_events_are_scanned() {
        let sse = include_str!("../../../tests/fixtures/anthropic/responses/stream_thinking.sse");
        for data in sse.lines().filter_map(|l| l.strip_prefix("data: ")) {
            assert!(event(data.as_bytes()).is_some(), "{data}");
            assert_eq!(scanned(data), parsed(data).ok(), "{data}");
        }
    }
}
