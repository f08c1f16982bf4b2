//! The SSE decoder never panics and yields the same events for any split of the input.
#![no_main]

use aigw_providers::sse::SseDecoder;
use libfuzzer_sys::fuzz_target;

fn decode(pieces: &[&[u8]]) -> Vec<aigw_providers::sse::SseEvent> {
    let mut d = SseDecoder::new();
    let mut out = Vec::new();
    for p in pieces {
        d.feed(p, &mut out);
    }
    d.finish(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).min(data.len());
    let whole = decode(&[data]);
    assert_eq!(decode(&[&data[..cut], &data[cut..]]), whole);
    let bytes: Vec<&[u8]> = data.chunks(1).collect();
    assert_eq!(decode(&bytes), whole);
});
