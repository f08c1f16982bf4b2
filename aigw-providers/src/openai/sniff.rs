//! Cheap inspection of OpenAI-shaped response JSON: `model` and `usage` only.

use aigw_core::TokenUsage;
use aigw_core::api::openai::Usage;
use serde::Deserialize;
use serde::de::IgnoredAny;

mod scan;
pub(crate) use scan::usage_value;

/// Reads a chunk's sniffed parts: with the scanner, or with serde when the scanner
/// leaves it (so errors are serde's).
pub(crate) fn read(data: &str) -> serde_json::Result<ChunkSniff> {
    scan::sniff(data).map_or_else(|| serde_json::from_str(data), Ok)
}

/// The answering model and usage of a stream, from its chunks.
#[derive(Debug, Default, Clone)]
pub(crate) struct StreamSniff {
    /// The model of the first readable chunk, unless empty.
    pub(crate) model: Option<String>,
    /// The usage the chunks reported.
    pub(crate) usage: TokenUsage,
}

impl StreamSniff {
    /// Reads one chunk's `data`: the model while none is known, and its usage. Returns
    /// whether the chunk carries only usage (no choices); `None` when it is unreadable.
    pub(crate) fn chunk(&mut self, data: &str) -> Option<bool> {
        let need_model = self.model.is_none();
        let has_usage = usage_is_present(data);
        if !need_model && !has_usage {
            return Some(false);
        }
        let s = read(data).ok()?;
        if need_model {
            self.model = s.model.filter(|m| !m.is_empty());
        }
        let usage_only = s.choices.is_none_or(|c| c.is_empty());
        if let Some(u) = s.usage {
            self.usage.update(&u.to_token_usage());
            return Some(usage_only);
        }
        Some(false)
    }

    /// [`Self::chunk`] for a chunk the caller has read as a chat chunk object (one
    /// that starts with `{`) with this `model` and `usage`: what reading it again would
    /// find there (it reads as a [`ChunkSniff`] with the same values), without reading
    /// it again.
    pub(crate) fn read_chunk(&mut self, data: &str, model: &str, usage: Option<&Usage>) {
        let need_model = self.model.is_none();
        if need_model {
            self.model = Some(model).filter(|m| !m.is_empty()).map(str::to_owned);
        }
        // Usage spelt with an escaped key is found by the parse but not by the textual
        // check, which decides whether the chunk is read at all.
        if let Some(u) = usage.filter(|_| need_model || usage_is_present(data)) {
            self.usage.update(&u.to_token_usage());
        }
    }
}

/// The parts of a chat/completions/embeddings response (or stream chunk) the gateway
/// needs; everything else is skipped without building a DOM.
#[derive(Debug, Deserialize)]
pub struct ChunkSniff {
    /// The answering model.
    #[serde(default)]
    pub model: Option<String>,
    /// Usage, when present and not `null`.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// The choices, counted only.
    #[serde(default)]
    pub choices: Option<Vec<IgnoredAny>>,
}

/// Whether a chunk's JSON text has a `"usage"` key with a non-null value. A textual
/// check so most chunks (`"usage":null` or none) are never parsed.
pub fn usage_is_present(data: &str) -> bool {
    // Built once: building the searcher cost about as much as searching a chunk.
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"usage\""));
    let bytes = data.as_bytes();
    for pos in FINDER.find_iter(bytes) {
        let rest = &bytes[pos + 7..];
        let rest = trim_start(rest);
        let Some(rest) = rest.strip_prefix(b":") else {
            continue;
        };
        let rest = trim_start(rest);
        if !rest.starts_with(b"null") {
            return true;
        }
    }
    false
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_presence() {
        assert!(!usage_is_present(r#"{"usage":null}"#));
        assert!(!usage_is_present(r#"{"usage" : null,"x":1}"#));
        assert!(usage_is_present(r#"{"usage": {"prompt_tokens":1}}"#));
        assert!(!usage_is_present(r#"{"choices":[]}"#));
        // A string value "usage" is not a key.
        assert!(!usage_is_present(r#"{"content":"\"usage\""}"#));
    }
}
