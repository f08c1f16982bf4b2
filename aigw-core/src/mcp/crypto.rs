//! Encryption of the stateless session and event ids.
//!
//! The client's `Mcp-Session-Id` carries every backend's session, so any replica can
//! serve any request; it is sealed with AES-256-GCM (confidential and authenticated:
//! a client can neither read its backends' session ids nor forge or splice one).
//!
//! Upstream derives a key with PBKDF2 (100,000 iterations by default) from a fresh
//! salt on every encrypt *and every decrypt*, i.e. tens of milliseconds of CPU on
//! every MCP request that carries a session id. Here the key is derived once per
//! configured seed, at load, with the same PBKDF2-HMAC-SHA256 work factor, so a weak
//! seed is exactly as expensive to brute-force (each guess costs the same iterations
//! against any one ciphertext) while a request pays one AES-GCM operation
//! (microseconds; docs/benchmarks.md). The random 96-bit nonce per ciphertext keeps
//! GCM safe under one key (2^32 messages per key stay far below the collision bound
//! for session ids). A fallback seed decrypts ids sealed before a rotation.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::fmt;

/// Upstream's default PBKDF2 iteration count.
pub const DEFAULT_ITERATIONS: u32 = 100_000;
/// Domain separation for the key derivation (a deployment's seed yields a key used for
/// nothing else).
const SALT: &[u8] = b"aigw mcp session v1";
/// Format version, first byte of every sealed id.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// Seals and opens session and event ids.
#[derive(Clone)]
pub struct SessionCrypto {
    primary: Aes256Gcm,
    fallback: Option<Aes256Gcm>,
}

impl fmt::Debug for SessionCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCrypto")
            .field("fallback", &self.fallback.is_some())
            .finish_non_exhaustive()
    }
}

/// An id that does not open under any configured key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidSealedId;

impl SessionCrypto {
    /// Derives the keys (PBKDF2-HMAC-SHA256, `iterations`) once.
    pub fn new(seed: &crate::Secret, fallback: Option<&crate::Secret>, iterations: u32) -> Self {
        Self {
            primary: cipher(seed.expose().as_bytes(), iterations),
            fallback: fallback.map(|s| cipher(s.expose().as_bytes(), iterations)),
        }
    }

    /// Also accepts ids sealed under `seed` with its own iteration count (upstream's
    /// `-mcpFallbackSessionEncryptionIterations`).
    pub fn with_fallback(mut self, seed: &crate::Secret, iterations: u32) -> Self {
        self.fallback = Some(cipher(seed.expose().as_bytes(), iterations));
        self
    }

    /// A key of random bytes (no seed configured): ids do not survive a restart and are
    /// not shared between replicas.
    pub fn random() -> Self {
        Self {
            primary: Aes256Gcm::new(&Aes256Gcm::generate_key(OsRng)),
            fallback: None,
        }
    }

    /// Seals a plaintext into a URL-safe token.
    pub fn seal(&self, plaintext: &[u8]) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        // AES-GCM encryption fails only for plaintexts over 64 GiB.
        if let Ok(ct) = self.primary.encrypt(&nonce, aad_and(plaintext)) {
            out.extend_from_slice(&ct);
        }
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Opens a token made by [`seal`](Self::seal) under the primary or the fallback key.
    pub fn open(&self, token: &str) -> Result<Vec<u8>, InvalidSealedId> {
        let raw = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| InvalidSealedId)?;
        if raw.len() < 1 + NONCE_LEN + 16 || raw[0] != VERSION {
            return Err(InvalidSealedId);
        }
        let nonce = Nonce::from_slice(&raw[1..1 + NONCE_LEN]);
        let ct = &raw[1 + NONCE_LEN..];
        self.primary
            .decrypt(nonce, aad_and(ct))
            .or_else(|e| match &self.fallback {
                Some(f) => f.decrypt(nonce, aad_and(ct)),
                None => Err(e),
            })
            .map_err(|_| InvalidSealedId)
    }
}

fn aad_and(msg: &[u8]) -> aes_gcm::aead::Payload<'_, '_> {
    aes_gcm::aead::Payload {
        msg,
        aad: &[VERSION],
    }
}

fn cipher(seed: &[u8], iterations: u32) -> Aes256Gcm {
    let key = derive_key(seed, iterations);
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key))
}

/// PBKDF2-HMAC-SHA256 of a seed into a 256-bit key.
pub fn derive_key(seed: &[u8], iterations: u32) -> [u8; 32] {
    pbkdf2::pbkdf2_hmac_array::<sha2::Sha256, 32>(seed, SALT, iterations.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    #[test]
    fn roundtrip_and_tamper() {
        let c = SessionCrypto::new(&Secret::new("seed"), None, 10);
        let t = c.seal(b"hello");
        assert_eq!(c.open(&t).unwrap(), b"hello");
        assert_ne!(t, c.seal(b"hello"), "a fresh nonce per seal");
        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert_eq!(c.open(&URL_SAFE_NO_PAD.encode(raw)), Err(InvalidSealedId));
        assert_eq!(c.open("not base64 !"), Err(InvalidSealedId));
        assert_eq!(c.open(""), Err(InvalidSealedId));
    }

    #[test]
    fn fallback_opens_old_ids() {
        let old = SessionCrypto::new(&Secret::new("old"), None, 10);
        let t = old.seal(b"s");
        let rotated = SessionCrypto::new(&Secret::new("new"), Some(&Secret::new("old")), 10);
        assert_eq!(rotated.open(&t).unwrap(), b"s");
        let other = SessionCrypto::new(&Secret::new("new"), None, 10);
        assert!(other.open(&t).is_err());
        assert!(format!("{rotated:?}").find("old").is_none());
    }
}
