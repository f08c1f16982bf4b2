//! A string that never prints itself.
//!
//! Credentials travel through the gateway inside [`Secret`]. Its `Debug` and `Display`
//! implementations print a fixed placeholder, it does not implement `Serialize`, and the
//! only way to read the value is the deliberately loud [`Secret::expose`]. A grep for
//! `expose(` finds every place a secret value can leave the type.

use std::fmt;
use std::sync::Arc;

/// A redacting container for secret material (API keys, tokens, private keys).
///
/// Cloning is cheap (the value is reference counted) so credentials can be shared by
/// every in-flight request without copying the secret around.
///
/// ```
/// use aigw_core::Secret;
/// let key = Secret::new("sk-live-123");
/// assert_eq!(format!("{key:?}"), "Secret([REDACTED])");
/// assert_eq!(key.to_string(), "[REDACTED]");
/// assert_eq!(key.expose(), "sk-live-123");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// Returns the secret value. Call only at the point where the value is written
    /// onto the wire (a header, a signature, a token request).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

/// Whether two byte strings (digests of secrets) are equal, in a time that depends only
/// on their length, so a comparison does not reveal how many leading bytes matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_value() {
        let s = Secret::new("hunter2");
        let rendered = format!("{s} {s:?} {s:#?} {:?}", Some(&s));
        assert!(!rendered.contains("hunter2"), "{rendered}");
    }
}
