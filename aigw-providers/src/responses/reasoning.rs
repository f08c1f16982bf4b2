//! The gateway's `encrypted_content` for reasoning items of translated backends.
//!
//! Anthropic (and Claude on Bedrock and Vertex) verify a replayed thinking block by its
//! signature over the exact thinking text, so a reasoning item must carry both — while
//! the summary a client sees may be empty (`reasoning.summary` unset). The gateway
//! therefore seals text and signature (or a redacted block's data) into the opaque
//! `encrypted_content` string, `aigw.r1.` + base64url(JSON). It is not encryption: the
//! provider's signature already protects the content from tampering, and the text is
//! the model's own reasoning the client was entitled to.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

const PREFIX: &str = "aigw.r1.";

/// Reasoning state sealed into `encrypted_content`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sealed {
    /// A thinking block: text and the provider's signature.
    Thinking {
        /// The thinking text.
        text: String,
        /// The signature, when the provider gave one.
        signature: Option<String>,
    },
    /// A redacted thinking block's opaque data.
    Redacted(String),
}

#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
}

/// [`Wire`] borrowed, for sealing without copying the text.
#[derive(Serialize)]
struct WireRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    t: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    r: Option<&'a str>,
}

/// Seals reasoning state into an `encrypted_content` string.
pub fn encode(sealed: &Sealed) -> String {
    let wire = match sealed {
        Sealed::Thinking { text, signature } => WireRef {
            t: Some(text),
            s: signature.as_deref(),
            r: None,
        },
        Sealed::Redacted(d) => WireRef {
            t: None,
            s: None,
            r: Some(d),
        },
    };
    let json = serde_json::to_vec(&wire).unwrap_or_default();
    let mut out = String::with_capacity(PREFIX.len() + json.len().div_ceil(3) * 4);
    out.push_str(PREFIX);
    URL_SAFE_NO_PAD.encode_string(json, &mut out);
    out
}

/// Unseals an `encrypted_content` string the gateway produced; `None` for anything
/// else (e.g. OpenAI's own encrypted reasoning).
pub fn decode(s: &str) -> Option<Sealed> {
    let b = URL_SAFE_NO_PAD.decode(s.strip_prefix(PREFIX)?).ok()?;
    let w: Wire = serde_json::from_slice(&b).ok()?;
    match (w.t, w.r) {
        (_, Some(r)) => Some(Sealed::Redacted(r)),
        (Some(t), None) => Some(Sealed::Thinking {
            text: t,
            signature: w.s,
        }),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in [
            Sealed::Thinking {
                text: "hmm".into(),
                signature: Some("sig".into()),
            },
            Sealed::Redacted("opaque".into()),
        ] {
            assert_eq!(decode(&encode(&s)), Some(s));
        }
        assert_eq!(decode("gAAAAABopenai"), None);
    }
}
