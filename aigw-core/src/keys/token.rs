//! The key format and its hash.
//!
//! `sk-aigw-<id>-<secret>`: `<id>` is 12 hex digits naming the key (what logs, metrics
//! and the admin API show), `<secret>` 64 hex digits (256 random bits). Because the
//! secret is high-entropy, a fast keyed hash is as good as a slow one: the store holds
//! `HMAC-SHA256(salt, secret)` with a random 16-byte salt per key, and a presented key
//! is checked by recomputing it and comparing in constant time.

use crate::{Error, Result, Secret};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Every virtual key starts with this.
pub const PREFIX: &str = "sk-aigw-";
const ID_BYTES: usize = 6;
const SECRET_BYTES: usize = 32;
const SALT_BYTES: usize = 16;

/// A presented key split into its id and secret (the secret stays redacted).
pub struct Presented<'a> {
    /// The key id.
    pub id: &'a str,
    secret: &'a str,
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The credential a request presents, from the first header that carries one: the
/// bearer token (OpenAI SDKs), `x-api-key` (Anthropic), `api-key` (Azure OpenAI), then
/// `extra` (a SecurityPolicy's `extractFrom.headers`).
pub fn presented<'h>(headers: &'h http::HeaderMap, extra: &[http::HeaderName]) -> Option<&'h str> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    text("authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .or_else(|| text("x-api-key"))
        .or_else(|| text("api-key"))
        .or_else(|| extra.iter().find_map(|h| text(h.as_str())))
        .filter(|p| !p.is_empty())
}

/// Whether a credential looks like a virtual key (its prefix), before any check.
pub fn is_virtual_key(credential: &str) -> bool {
    credential.starts_with(PREFIX)
}

/// Splits `sk-aigw-<id>-<secret>`; `None` when the shape is wrong.
pub fn parse(credential: &str) -> Option<Presented<'_>> {
    let rest = credential.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('-')?;
    let hex_ok = |s: &str, n: usize| s.len() == n * 2 && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_ok(id, ID_BYTES) && hex_ok(secret, SECRET_BYTES)).then_some(Presented { id, secret })
}

fn random(n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    getrandom::getrandom(&mut buf)
        .map_err(|e| Error::internal(format!("no randomness for a key: {e}")))?;
    Ok(buf)
}

/// A fresh key id.
pub fn new_id() -> Result<String> {
    Ok(hex::encode(random(ID_BYTES)?))
}

/// Key material for `id`: the full key (shown once), its salt and digest (stored), and
/// its last four characters (shown in listings).
#[derive(Debug)]
pub struct Minted {
    /// `sk-aigw-<id>-<secret>`.
    pub key: Secret,
    /// Hex salt.
    pub salt: String,
    /// Hex `HMAC-SHA256(salt, secret)`.
    pub digest: String,
    /// The secret's last four characters.
    pub hint: String,
}

/// Mints a new secret for `id`.
pub fn mint(id: &str) -> Result<Minted> {
    let secret = hex::encode(random(SECRET_BYTES)?);
    let salt = random(SALT_BYTES)?;
    let digest = hex::encode(keyed_hash(&salt, &secret)?);
    let hint = secret[secret.len() - 4..].to_owned();
    Ok(Minted {
        key: Secret::new(format!("{PREFIX}{id}-{secret}")),
        salt: hex::encode(salt),
        digest,
        hint,
    })
}

fn keyed_hash(salt: &[u8], secret: &str) -> Result<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(salt)
        .map_err(|_| Error::internal("invalid salt length"))?;
    mac.update(secret.as_bytes());
    Ok(mac.finalize().into_bytes().into())
}

/// Whether the presented secret hashes to the stored digest (constant time).
pub fn verify(presented: &Presented<'_>, salt_hex: &str, digest_hex: &str) -> bool {
    let (Ok(salt), Ok(digest)) = (hex::decode(salt_hex), hex::decode(digest_hex)) else {
        return false;
    };
    let Ok(computed) = keyed_hash(&salt, presented.secret) else {
        return false;
    };
    crate::secret::constant_time_eq(&computed, &digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_parse_and_verify_and_wrong_ones_do_not() {
        let id = new_id().unwrap();
        let m = mint(&id).unwrap();
        let key = m.key.expose();
        assert!(is_virtual_key(key));
        assert_eq!(key.len(), PREFIX.len() + 12 + 1 + 64);
        let p = parse(key).unwrap();
        assert_eq!(p.id, id);
        assert!(verify(&p, &m.salt, &m.digest));
        assert!(key.ends_with(&m.hint));
        // One flipped character of the secret fails.
        let mut wrong = key.to_owned();
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        assert!(!verify(&parse(&wrong).unwrap(), &m.salt, &m.digest));
        // Another key's salt fails.
        let other = mint(&id).unwrap();
        assert!(!verify(&p, &other.salt, &m.digest));
        assert!(!format!("{:?}", p).contains(&key[PREFIX.len() + 13..]));
    }

    #[test]
    fn malformed_keys_are_not_parsed() {
        for bad in [
            "sk-aigw-",
            "sk-aigw-abc-def",
            "sk-other-0123456789ab-00",
            "sk-aigw-0123456789ab",
            "sk-aigw-0123456789zz-0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
