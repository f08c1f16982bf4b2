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

/// Seals reasoning state into an `encrypted_content` string.
pub fn encode(sealed: &Sealed) -> String {
    match sealed {
        Sealed::Thinking { text, signature } => {
            encode_parts(Some(text), signature.as_deref(), None)
        }
        Sealed::Redacted(d) => encode_parts(None, None, Some(d)),
    }
}

/// [`encode`] from borrowed parts: the [`Wire`] JSON (`t`, `s`, `r`, absent ones left
/// out, as serde writes it) written straight into the buffer that is then encoded.
pub fn encode_parts(text: Option<&str>, signature: Option<&str>, redacted: Option<&str>) -> String {
    let len =
        text.map_or(0, str::len) + signature.map_or(0, str::len) + redacted.map_or(0, str::len);
    let mut json = Vec::with_capacity(len + 24);
    json.push(b'{');
    for (key, value) in [
        (b"\"t\":", text),
        (b"\"s\":", signature),
        (b"\"r\":", redacted),
    ] {
        if let Some(v) = value {
            if json.len() > 1 {
                json.push(b',');
            }
            json.extend_from_slice(key);
            crate::json_out::push_str(&mut json, v);
        }
    }
    json.push(b'}');
    let mut out = String::with_capacity(PREFIX.len() + json.len().div_ceil(3) * 4);
    out.push_str(PREFIX);
    // The SIMD encoder writes the same text as the `base64` crate's (the property test
    // below compares them) in a fraction of the instructions: the signature alone is
    // ≈ 1 KB of it.
    base64_simd::URL_SAFE_NO_PAD.encode_append(&json, &mut out);
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
    use proptest::prelude::*;

    proptest! {
        /// The sealed JSON is what serialising the wire struct writes.
        #[test]
        fn parts_are_sealed_as_serde_writes_them(
            t in proptest::option::of("\\PC{0,12}|[\"\\\\\n]{0,4}"),
            s in proptest::option::of("[A-Za-z0-9+/=]{0,16}|[A-Za-z0-9+/=]{0,600}"),
            r in proptest::option::of("\\PC{0,8}"),
        ) {
            let wire = super::Wire { t: t.clone(), s: s.clone(), r: r.clone() };
            let json = serde_json::to_vec(&wire).unwrap();
            let expected = format!(
                "{}{}",
                super::PREFIX,
                super::URL_SAFE_NO_PAD.encode(json)
            );
            prop_assert_eq!(
                super::encode_parts(t.as_deref(), s.as_deref(), r.as_deref()),
                expected
            );
        }
    }

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
