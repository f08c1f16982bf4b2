//! [`ChunkSniff`] and OpenAI [`Usage`] read by [`Scan`] instead of serde's derived
//! visitors: the same values, or `None` when serde must read them (see
//! [`crate::json_scan`]). `Usage` and its details keep unknown members in a flattened
//! map, which makes serde buffer every member of the object into an intermediate tree
//! (≈ 3 k instructions for a four-counter usage); the scanner reads the objects that
//! have only the known counters and leaves any other member to serde. Property tests
//! check both against serde.

use super::ChunkSniff;
use crate::json_scan::{Scan, set};
use aigw_core::api::openai::{CompletionTokensDetails, Extra, PromptTokensDetails, Usage};
use serde::de::IgnoredAny;

/// Reads a chunk's sniffed parts; `None` when it must be parsed by serde instead.
pub(crate) fn sniff(data: &str) -> Option<ChunkSniff> {
    let mut s = Scan::new(data);
    let (mut model, mut usage, mut choices) = (None, None, None);
    s.object(|s, k| match k {
        "model" => {
            let v = s.opt_string()?;
            set(&mut model, v.map(|m| m.into_owned()))
        }
        "usage" => {
            let v = usage_value(s)?;
            set(&mut usage, v)
        }
        "choices" => {
            let v = if s.null() {
                None
            } else {
                let mut list = Vec::with_capacity(1);
                s.array(|s| s.skip().map(|()| list.push(IgnoredAny)))?;
                Some(list)
            };
            set(&mut choices, v)
        }
        _ => s.skip(),
    })?;
    s.at_end().then_some(ChunkSniff {
        model: model.flatten(),
        usage: usage.flatten(),
        choices: choices.flatten(),
    })
}

/// A `usage` member's value as `Option<Usage>` deserialises: by the scanner when the
/// object has only the known counters, otherwise by serde from the same place.
pub(crate) fn usage_value(s: &mut Scan<'_>) -> Option<Option<Usage>> {
    if s.null() {
        return Some(None);
    }
    let at = s.pos();
    if let Some(u) = usage(s) {
        return Some(Some(u));
    }
    s.rewind(at);
    s.serde::<Option<Usage>>()
}

/// A usage object with no members but the known ones (no extras).
fn usage(s: &mut Scan<'_>) -> Option<Usage> {
    let (mut prompt, mut completion, mut total) = (None, None, None);
    let (mut prompt_details, mut completion_details) = (None, None);
    s.object(|s, k| match k {
        "prompt_tokens" => {
            let v = s.u64()?;
            set(&mut prompt, v)
        }
        "completion_tokens" => {
            let v = s.u64()?;
            set(&mut completion, v)
        }
        "total_tokens" => {
            let v = s.u64()?;
            set(&mut total, v)
        }
        "prompt_tokens_details" => {
            let v = if s.null() {
                None
            } else {
                Some(prompt_tokens_details(s)?)
            };
            set(&mut prompt_details, v)
        }
        "completion_tokens_details" => {
            let v = if s.null() {
                None
            } else {
                Some(completion_tokens_details(s)?)
            };
            set(&mut completion_details, v)
        }
        _ => None,
    })?;
    Some(Usage {
        prompt_tokens: prompt.unwrap_or(0),
        completion_tokens: completion.unwrap_or(0),
        total_tokens: total.unwrap_or(0),
        prompt_tokens_details: prompt_details.flatten(),
        completion_tokens_details: completion_details.flatten(),
        extra: Extra::new(),
    })
}

fn prompt_tokens_details(s: &mut Scan<'_>) -> Option<PromptTokensDetails> {
    let (mut cached, mut creation, mut audio) = (None, None, None);
    s.object(|s, k| match k {
        "cached_tokens" => {
            let v = s.opt_u64()?;
            set(&mut cached, v)
        }
        "cache_creation_tokens" => {
            let v = s.opt_u64()?;
            set(&mut creation, v)
        }
        "audio_tokens" => {
            let v = s.opt_u64()?;
            set(&mut audio, v)
        }
        _ => None,
    })?;
    Some(PromptTokensDetails {
        cached_tokens: cached.flatten(),
        cache_creation_tokens: creation.flatten(),
        audio_tokens: audio.flatten(),
        extra: Extra::new(),
    })
}

fn completion_tokens_details(s: &mut Scan<'_>) -> Option<CompletionTokensDetails> {
    let (mut reasoning, mut audio, mut accepted, mut rejected) = (None, None, None, None);
    s.object(|s, k| match k {
        "reasoning_tokens" => {
            let v = s.opt_u64()?;
            set(&mut reasoning, v)
        }
        "audio_tokens" => {
            let v = s.opt_u64()?;
            set(&mut audio, v)
        }
        "accepted_prediction_tokens" => {
            let v = s.opt_u64()?;
            set(&mut accepted, v)
        }
        "rejected_prediction_tokens" => {
            let v = s.opt_u64()?;
            set(&mut rejected, v)
        }
        _ => None,
    })?;
    Some(CompletionTokensDetails {
        reasoning_tokens: reasoning.flatten(),
        audio_tokens: audio.flatten(),
        accepted_prediction_tokens: accepted.flatten(),
        rejected_prediction_tokens: rejected.flatten(),
        extra: Extra::new(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::json_scan::strategies::{
        agrees, assert_often_scanned, int, member, object, record, string_or_odd, unknown,
    };
    use proptest::prelude::*;

    fn scanned_usage(data: &str) -> Option<String> {
        let mut s = Scan::new(data);
        let v = usage_value(&mut s)?;
        s.at_end().then(|| format!("{v:?}"))
    }

    fn parsed_usage(data: &str) -> Result<String, serde_json::Error> {
        serde_json::from_str::<Option<Usage>>(data).map(|v| format!("{v:?}"))
    }

    fn scanned_sniff(data: &str) -> Option<String> {
        sniff(data).map(|v| format!("{v:?}"))
    }

    fn parsed_sniff(data: &str) -> Result<String, serde_json::Error> {
        serde_json::from_str::<ChunkSniff>(data).map(|v| format!("{v:?}"))
    }

    fn null() -> BoxedStrategy<String> {
        Just("null".to_owned()).boxed()
    }

    fn details(keys: &[&'static str]) -> BoxedStrategy<String> {
        let mut members: Vec<_> = keys.iter().map(|k| member(k, vec![int()])).collect();
        members.push(unknown());
        object(members, false)
    }

    fn usage_text() -> BoxedStrategy<String> {
        let prompt = details(&["cached_tokens", "cache_creation_tokens", "audio_tokens"]);
        let completion = details(&[
            "reasoning_tokens",
            "audio_tokens",
            "accepted_prediction_tokens",
            "rejected_prediction_tokens",
        ]);
        let counters = record(
            Vec::new(),
            vec![
                member("prompt_tokens", vec![int()]),
                member("completion_tokens", vec![int()]),
                member("total_tokens", vec![int()]),
                member("prompt_tokens_details", vec![prompt, null()]),
                member("completion_tokens_details", vec![completion, null()]),
            ],
            true,
        );
        prop_oneof![
            8 => counters,
            1 => object(
                vec![member("prompt_tokens", vec![int()]), unknown()],
                false
            ),
            1 => null(),
            1 => Just("[1,2,3]".to_owned()),
        ]
        .boxed()
    }

    fn sniff_text() -> BoxedStrategy<String> {
        let choices = prop_oneof![
            Just("[]".to_owned()),
            Just("[{\"index\":0,\"delta\":{\"content\":\"x\"}}]".to_owned()),
            Just("[1,\"a\",null,[{}]]".to_owned()),
            Just("null".to_owned()),
            Just("{}".to_owned()),
        ]
        .boxed();
        record(
            Vec::new(),
            vec![
                member("id", vec![string_or_odd()]),
                member("model", vec![string_or_odd()]),
                member("usage", vec![usage_text()]),
                member("choices", vec![choices]),
                unknown(),
            ],
            true,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn usage_scanner_agrees_with_serde(data in usage_text(), cut in 0usize..300) {
            agrees(&data, cut, scanned_usage, parsed_usage)?;
        }

        #[test]
        fn sniff_scanner_agrees_with_serde(data in sniff_text(), cut in 0usize..400) {
            agrees(&data, cut, scanned_sniff, parsed_sniff)?;
        }
    }

    #[test]
    fn the_generated_texts_are_often_scanned() {
        assert_often_scanned(&usage_text(), scanned_usage, parsed_usage);
        assert_often_scanned(&sniff_text(), scanned_sniff, parsed_sniff);
    }

    #[test]
    fn the_fixture_usage_is_scanned() {
        let data = r#"{"prompt_tokens":80,"completion_tokens":30,"total_tokens":110,"prompt_tokens_details":{"cached_tokens":64}}"#;
        let mut s = Scan::new(data);
        assert!(usage(&mut s).is_some());
        assert_eq!(scanned_usage(data), parsed_usage(data).ok());
    }
}
