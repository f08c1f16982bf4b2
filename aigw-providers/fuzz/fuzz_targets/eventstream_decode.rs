//! The AWS eventstream decoder never panics, whatever the bytes and their chunking.
#![no_main]

use aigw_providers::eventstream::Decoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&step, wire)) = data.split_first() else {
        return;
    };
    let mut d = Decoder::new();
    for chunk in wire.chunks(usize::from(step).max(1)) {
        d.push(chunk);
        while let Ok(Some(_)) = d.next_frame() {}
    }
    let _ = d.finish();
});
