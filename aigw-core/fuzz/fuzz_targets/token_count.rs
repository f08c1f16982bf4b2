//! Counting the tokens of arbitrary text with the usage estimate's tokenizer gives
//! tiktoken's count (as the `bpe-openai` crate computes it) in both OpenAI encodings:
//! never a panic, never a different number.
#![no_main]

use aigw_core::estimate::count_tokens;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    assert_eq!(
        count_tokens("gpt-4o", text),
        bpe_openai::o200k_base().count(text) as u64
    );
    assert_eq!(
        count_tokens("gpt-4", text),
        bpe_openai::cl100k_base().count(text) as u64
    );
});
