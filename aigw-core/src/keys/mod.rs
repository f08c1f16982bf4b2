//! Gateway-issued virtual keys (feature `keys`).
//!
//! A virtual key is what a platform team hands to another team: a credential the
//! gateway itself issued, carrying the models and routes it may use, its own rate
//! limits (requests and tokens per minute), a money budget, an expiry and metadata
//! (name, team, owner). It resolves to a [`ClientIdentity`] of kind
//! [`IdentityKind::VirtualKey`] whose id is the key's id, never the key.
//!
//! * [`token`] — the key format `sk-aigw-<id>-<secret>` and its salted, keyed hash;
//! * [`store`] — where keys live: the [`KeyStore`] trait, a JSON file written
//!   atomically ([`FileKeyStore`]), memory, and Redis (`RedisKeyStore`, with the
//!   `redis` feature) shared by every replica;
//! * [`registry`] — the [`KeyRegistry`] the adapters authenticate against: a local
//!   cache refreshed whenever the store's version counter moves (polled every 200 ms,
//!   so a revocation reaches every replica within a second), the admin operations
//!   (create, list, rotate, revoke) and the per-key rate limits.
//!
//! The plaintext key exists only in the reply to a create or rotate; the store holds a
//! random salt and `HMAC-SHA256(salt, secret)`, compared in constant time.

#[cfg(feature = "redis")]
pub mod redis;
pub mod registry;
pub mod store;
pub mod token;

#[cfg(feature = "redis")]
pub use self::redis::RedisKeyStore;
pub use registry::{Grant, KeyRegistry};
pub use store::{FileKeyStore, KeyStore, MemoryKeyStore};

use crate::budget::{BudgetPeriod, BudgetSpec};
use crate::identity::{ClientIdentity, IdentityKind};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A key's money budget as stored and shown: micro-dollars over a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBudget {
    /// The limit, in micro-dollars (USD × 10⁻⁶).
    pub limit_micros: u64,
    /// `day`, `month` or `total`.
    pub period: Period,
}

/// [`BudgetPeriod`] with a wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// A calendar day in UTC.
    Day,
    /// A calendar month in UTC.
    Month,
    /// Never resets.
    Total,
}

impl From<KeyBudget> for BudgetSpec {
    fn from(b: KeyBudget) -> Self {
        Self {
            limit_micros: b.limit_micros,
            period: match b.period {
                Period::Day => BudgetPeriod::Day,
                Period::Month => BudgetPeriod::Month,
                Period::Total => BudgetPeriod::Total,
            },
        }
    }
}

/// What a key is allowed and who it belongs to: everything about a key but its hash.
/// This is what the admin API lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The key's id (the `<id>` part of `sk-aigw-<id>-<secret>`).
    pub id: String,
    /// A human name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The team the key belongs to (budgets and limits can be per team).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Who asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Models the key may call; empty: any.
    #[serde(default)]
    pub models: Vec<String>,
    /// Routes (`namespace/name` of the AIGatewayRoute) the key may use; empty: any.
    #[serde(default)]
    pub routes: Vec<String>,
    /// Requests per minute, when limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens (input + output) per minute, when limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// The key's money budget, enforced by the budget machinery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<KeyBudget>,
    /// When the key stops working (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// When the key was created (Unix seconds).
    pub created_at: u64,
    /// When the secret was last rotated (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<u64>,
    /// When the key was revoked (Unix seconds); a revoked key is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
    /// The last four characters of the secret, so people can tell keys apart.
    pub hint: String,
}

impl KeyInfo {
    /// `active`, `revoked` or `expired` at `now` (Unix seconds).
    pub fn status(&self, now: u64) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        }
    }

    /// The identity requests made with this key carry.
    pub fn identity(&self) -> ClientIdentity {
        let mut id = ClientIdentity::new(self.id.as_str(), IdentityKind::VirtualKey);
        id.team = self.team.as_deref().map(Arc::from);
        id.owner = self.owner.as_deref().map(Arc::from);
        id.budget = self.budget.map(BudgetSpec::from);
        id
    }
}

/// A key as stored: its info, the salt and the keyed hash of its secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    /// Everything but the hash.
    #[serde(flatten)]
    pub info: KeyInfo,
    /// The random salt, hex.
    pub salt: String,
    /// `HMAC-SHA256(salt, secret)`, hex.
    pub digest: String,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// What a new key is created with (the admin API's request body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// A human name.
    #[serde(default)]
    pub name: Option<String>,
    /// The key's team.
    #[serde(default)]
    pub team: Option<String>,
    /// Who asked for it.
    #[serde(default)]
    pub owner: Option<String>,
    /// Allowed models; empty: any.
    #[serde(default)]
    pub models: Vec<String>,
    /// Allowed routes (`namespace/name`); empty: any.
    #[serde(default)]
    pub routes: Vec<String>,
    /// Requests per minute.
    #[serde(default)]
    pub rpm: Option<u64>,
    /// Tokens per minute.
    #[serde(default)]
    pub tpm: Option<u64>,
    /// A money budget.
    #[serde(default)]
    pub budget: Option<KeyBudget>,
    /// Absolute expiry (Unix seconds).
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Relative expiry: this many seconds from creation.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
