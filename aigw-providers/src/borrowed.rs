//! Borrowed strings in optional fields of the stream decoders' serde types.
//!
//! `#[serde(borrow)]` borrows a `Cow<str>` field only when the field's type is exactly
//! `Cow<str>`; an `Option<Cow<str>>` goes through `Cow`'s own `Deserialize`, which always
//! copies. The decoders' optional strings (a delta's text, ids, stop reasons) are most of
//! what they read, so they use [`opt_str`] to point into the event instead.

use serde::{Deserialize, Deserializer};
use std::borrow::Cow;

#[derive(Deserialize)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

/// `deserialize_with` for `Option<Cow<'a, str>>`: borrowed when the string has no
/// escapes, `None` for `null` (as the plain `Option` reads it).
pub(crate) fn opt_str<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
    Ok(Option::<Str<'a>>::deserialize(d)?.map(|s| s.0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Deserialize)]
    struct T<'a> {
        #[serde(default, borrow, deserialize_with = "opt_str")]
        s: Option<Cow<'a, str>>,
    }

    #[test]
    fn borrows_plain_strings_and_reads_what_option_reads() {
        let t: T<'_> = serde_json::from_str(r#"{"s":"plain"}"#).unwrap();
        assert!(matches!(t.s, Some(Cow::Borrowed("plain"))));
        let t: T<'_> = serde_json::from_str(r#"{"s":"a\"b"}"#).unwrap();
        assert_eq!(t.s.as_deref(), Some("a\"b"));
        let t: T<'_> = serde_json::from_str(r#"{"s":null}"#).unwrap();
        assert!(t.s.is_none());
        let t: T<'_> = serde_json::from_str("{}").unwrap();
        assert!(t.s.is_none());
        assert!(serde_json::from_str::<T<'_>>(r#"{"s":1}"#).is_err());
    }
}
