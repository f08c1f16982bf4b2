//! Token usage counters.

use serde::{Deserialize, Serialize};

/// Token counts for one request, as reported by (or derived from) the upstream.
///
/// Every counter is optional: `None` means "not reported", which is different from
/// zero. `input` follows the gateway-wide convention that it *includes* cached and
/// cache-creation tokens (Anthropic and Bedrock report them separately; translators
/// add them up), so `total = input + output` holds for every provider.
///
/// During a stream a translator reports the latest cumulative usage after each chunk;
/// callers fold those with [`TokenUsage::update`], so a later partial report never
/// erases a counter an earlier one set.
#[derive(Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens, including cached and cache-creation tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<u64>,
    /// Completion tokens, including reasoning tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<u64>,
    /// Total tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Prompt tokens served from the provider's prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<u64>,
    /// Prompt tokens written to the provider's prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input: Option<u64>,
    /// Reasoning ("thinking") tokens, a subset of output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<u64>,
    /// Audio processed, in milliseconds: the input of a transcription or translation
    /// as the provider bills it (`usage.seconds` of duration-billed models, else the
    /// response's `duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_ms: Option<u64>,
    /// Characters of text turned into speech (the `input` of `/v1/audio/speech`, which
    /// character-billed voices bill by).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub characters: Option<u64>,
    /// Images generated (image endpoints; image models bill per image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<u64>,
}

impl std::fmt::Debug for TokenUsage {
    /// The token counters always; the audio counters only when set, as most requests
    /// carry no audio.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("TokenUsage");
        d.field("input", &self.input)
            .field("output", &self.output)
            .field("total", &self.total)
            .field("cached_input", &self.cached_input)
            .field("cache_creation_input", &self.cache_creation_input)
            .field("reasoning", &self.reasoning);
        if let Some(ms) = self.audio_ms {
            d.field("audio_ms", &ms);
        }
        if let Some(n) = self.characters {
            d.field("characters", &n);
        }
        if let Some(n) = self.images {
            d.field("images", &n);
        }
        d.finish()
    }
}

impl TokenUsage {
    /// Whether no counter is set.
    pub const fn is_empty(&self) -> bool {
        self.input.is_none()
            && self.output.is_none()
            && self.total.is_none()
            && self.cached_input.is_none()
            && self.cache_creation_input.is_none()
            && self.reasoning.is_none()
            && self.audio_ms.is_none()
            && self.images.is_none()
            && self.characters.is_none()
    }

    /// Folds a newer cumulative report into this one: every counter the newer report
    /// sets replaces ours; counters it leaves unset are kept.
    ///
    /// ```
    /// use aigw_core::TokenUsage;
    /// let mut u = TokenUsage { input: Some(10), ..Default::default() };
    /// u.update(&TokenUsage { output: Some(3), ..Default::default() });
    /// assert_eq!((u.input, u.output), (Some(10), Some(3)));
    /// ```
    pub fn update(&mut self, newer: &Self) {
        fn take(ours: &mut Option<u64>, theirs: Option<u64>) {
            if theirs.is_some() {
                *ours = theirs;
            }
        }
        take(&mut self.input, newer.input);
        take(&mut self.output, newer.output);
        take(&mut self.total, newer.total);
        take(&mut self.cached_input, newer.cached_input);
        take(&mut self.cache_creation_input, newer.cache_creation_input);
        take(&mut self.reasoning, newer.reasoning);
        take(&mut self.audio_ms, newer.audio_ms);
        take(&mut self.characters, newer.characters);
        take(&mut self.images, newer.images);
    }

    /// [`TokenUsage::audio_ms`] in whole seconds, rounded up (providers bill started
    /// seconds).
    pub fn audio_seconds(&self) -> Option<u64> {
        self.audio_ms.map(|ms| ms.div_ceil(1000))
    }

    /// Builds usage from a provider that reports cache reads and writes *separately*
    /// from the uncached input (Anthropic, Bedrock): input becomes the sum.
    pub fn from_explicit_caching(
        uncached_input: Option<u64>,
        cache_read: Option<u64>,
        cache_creation: Option<u64>,
        output: Option<u64>,
    ) -> Self {
        let any_input =
            uncached_input.is_some() || cache_read.is_some() || cache_creation.is_some();
        let input = any_input.then(|| {
            uncached_input.unwrap_or(0) + cache_read.unwrap_or(0) + cache_creation.unwrap_or(0)
        });
        let total = match (input, output) {
            (None, None) => None,
            (i, o) => Some(i.unwrap_or(0) + o.unwrap_or(0)),
        };
        Self {
            input,
            output,
            total,
            cached_input: cache_read,
            cache_creation_input: cache_creation,
            ..Self::default()
        }
    }

    /// The total, computed from input and output when the upstream did not send one.
    pub fn total_or_sum(&self) -> Option<u64> {
        self.total.or(match (self.input, self.output) {
            (None, None) => None,
            (i, o) => Some(i.unwrap_or(0) + o.unwrap_or(0)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_caching_sums_input() {
        let u = TokenUsage::from_explicit_caching(Some(10), Some(100), Some(5), Some(7));
        assert_eq!(u.input, Some(115));
        assert_eq!(u.total, Some(122));
        assert_eq!(u.cached_input, Some(100));
    }

    #[test]
    fn update_keeps_unset() {
        let mut u = TokenUsage {
            input: Some(1),
            output: Some(2),
            ..Default::default()
        };
        u.update(&TokenUsage {
            output: Some(5),
            ..Default::default()
        });
        assert_eq!(u.input, Some(1));
        assert_eq!(u.output, Some(5));
        assert_eq!(u.total_or_sum(), Some(6));
    }
}
