//! The keys a gateway accepts, cached in memory and kept fresh from the store.
//!
//! Authentication reads the local cache only (an `ArcSwap` load and one HMAC), so a key
//! check costs no round trip. The cache follows the store through its version counter:
//! [`KeyRegistry::spawn_watch`] polls it every 200 ms and reloads when it moved, so a
//! key revoked on any replica is refused by every replica within a second. A key the
//! cache does not know (created on another replica a moment ago) triggers a version
//! check before the request is refused; concurrent checks are coalesced, so made-up
//! keys cannot multiply store reads.

use super::store::KeyStore;
use super::token::{self, Presented};
use super::{KeyInfo, KeySpec, StoredKey, unix_now};
use crate::identity::ClientIdentity;
use crate::limits::{Increment, LimitStore, MemoryStore};
use crate::{Error, Result};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How often replicas look at the store's version counter by default.
pub const DEFAULT_POLL: Duration = Duration::from_millis(200);

/// What an authenticated virtual key may do: its identity and its limits.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The identity its requests carry.
    pub identity: Arc<ClientIdentity>,
    models: Arc<[String]>,
    routes: Arc<[String]>,
    rpm: Option<u64>,
    tpm: Option<u64>,
}

impl Grant {
    /// Whether the key may call `model` on `route` (`namespace/name`); a 403 otherwise.
    /// A model pattern ending in `*` matches by prefix.
    pub fn allows(&self, model: &str, route: &str) -> Result<()> {
        let model_ok = self.models.is_empty()
            || self.models.iter().any(|m| match m.strip_suffix('*') {
                Some(prefix) => model.starts_with(prefix),
                None => m == model,
            });
        if !model_ok {
            return Err(Error::Forbidden {
                message: format!("this key may not use model {model:?}"),
            });
        }
        self.allows_route(route)
    }

    /// Whether the key may use `route` (`namespace/name`), whatever the model (an
    /// MCPRoute); a 403 otherwise.
    pub fn allows_route(&self, route: &str) -> Result<()> {
        if !self.routes.is_empty() && !self.routes.iter().any(|r| r == route) {
            return Err(Error::Forbidden {
                message: format!("this key may not use route {route:?}"),
            });
        }
        Ok(())
    }
}

/// The accepted virtual keys and their administration.
pub struct KeyRegistry {
    store: Arc<dyn KeyStore>,
    cache: ArcSwap<HashMap<String, Arc<StoredKey>>>,
    version: AtomicU64,
    /// Counters for the per-key rate limits (Redis when replicas share them).
    counters: Arc<dyn LimitStore>,
    /// When the last check caused by an unknown key id finished; one check at a time.
    last_miss_check: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for KeyRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRegistry")
            .field("store", &self.store.describe())
            .field("keys", &self.cache.load().len())
            .finish_non_exhaustive()
    }
}

fn unauthorized(message: &str) -> Error {
    Error::Unauthorized {
        message: message.to_owned(),
    }
}

impl KeyRegistry {
    /// A registry over `store`, loaded once. Per-key rate limits count in process
    /// memory until [`KeyRegistry::with_counters`] names a shared store.
    pub async fn open(store: Arc<dyn KeyStore>) -> Result<Self> {
        let registry = Self {
            store,
            cache: ArcSwap::from_pointee(HashMap::new()),
            version: AtomicU64::new(0),
            counters: Arc::new(MemoryStore::default()),
            last_miss_check: tokio::sync::Mutex::new(None),
        };
        registry.reload().await?;
        Ok(registry)
    }

    /// Counts per-key rate limits in `counters` (e.g. the Redis store every replica
    /// shares, so a key's limit is one limit across replicas).
    #[must_use]
    pub fn with_counters(mut self, counters: Arc<dyn LimitStore>) -> Self {
        self.counters = counters;
        self
    }

    /// Where the keys are kept, for logs.
    pub fn describe(&self) -> String {
        self.store.describe()
    }

    /// Re-reads every key from the store.
    pub async fn reload(&self) -> Result<()> {
        let version = self.store.version().await?;
        let keys = self.store.load().await?;
        let map = keys
            .into_iter()
            .map(|k| (k.info.id.clone(), Arc::new(k)))
            .collect();
        self.cache.store(Arc::new(map));
        self.version.store(version, Ordering::Release);
        Ok(())
    }

    /// Reloads when the store's version moved; whether it did.
    pub async fn refresh(&self) -> Result<bool> {
        let version = self.store.version().await?;
        if version == self.version.load(Ordering::Acquire) {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }

    /// Polls the store every `every` and reloads on change, until the registry is
    /// dropped. A failing store keeps the last keys (and is logged once per outage).
    pub fn spawn_watch(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                ticker.tick().await;
                let Some(registry) = weak.upgrade() else {
                    return;
                };
                match registry.refresh().await {
                    Ok(_) if failing => {
                        failing = false;
                        tracing::info!(store = %registry.describe(), "virtual key store reachable again");
                    }
                    Ok(_) => {}
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(store = %registry.describe(), error = %e, "virtual key store unreachable: serving the keys last loaded");
                    }
                    Err(_) => {}
                }
            }
        })
    }

    /// Authenticates a presented virtual key against the keys already loaded, without
    /// asking the store about an unknown id (for callers that cannot wait; a key
    /// created elsewhere is known here within [`DEFAULT_POLL`]).
    pub fn authenticate_cached(&self, credential: &str) -> Result<Grant> {
        let presented =
            token::parse(credential).ok_or_else(|| unauthorized("malformed virtual key"))?;
        let key = self
            .cached(presented.id)
            .ok_or_else(|| unauthorized("invalid API key or token"))?;
        Self::grant(&presented, &key, unix_now())
    }

    /// Authenticates a presented virtual key (`sk-aigw-…`).
    pub async fn authenticate(&self, credential: &str) -> Result<Grant> {
        let presented =
            token::parse(credential).ok_or_else(|| unauthorized("malformed virtual key"))?;
        let key = match self.cached(presented.id) {
            Some(k) => k,
            None => {
                self.check_on_miss().await;
                self.cached(presented.id)
                    .ok_or_else(|| unauthorized("invalid API key or token"))?
            }
        };
        Self::grant(&presented, &key, unix_now())
    }

    fn cached(&self, id: &str) -> Option<Arc<StoredKey>> {
        self.cache.load().get(id).cloned()
    }

    /// Brings the cache up to date for a key id it does not know. Checks are serialised,
    /// and a check that finished after this request arrived answers for it too: however
    /// many unknown keys arrive at once, the store sees one check at a time.
    async fn check_on_miss(&self) {
        let arrived = Instant::now();
        let mut last = self.last_miss_check.lock().await;
        if last.is_some_and(|t| t >= arrived) {
            return;
        }
        if let Err(e) = self.refresh().await {
            tracing::debug!(error = %e, "virtual key store check failed");
        }
        *last = Some(Instant::now());
    }

    fn grant(presented: &Presented<'_>, key: &StoredKey, now: u64) -> Result<Grant> {
        if !token::verify(presented, &key.salt, &key.digest) {
            return Err(unauthorized("invalid API key or token"));
        }
        match key.info.status(now) {
            "revoked" => return Err(unauthorized("this key has been revoked")),
            "expired" => return Err(unauthorized("this key has expired")),
            _ => {}
        }
        Ok(Grant {
            identity: Arc::new(key.info.identity()),
            models: key.info.models.clone().into(),
            routes: key.info.routes.clone().into(),
            rpm: key.info.rpm,
            tpm: key.info.tpm,
        })
    }

    /// Counts one request against the key's per-minute limits; a 429 when over. A
    /// failing counter store lets the request through (as the rate limits do).
    pub async fn admit(&self, grant: &Grant) -> Result<()> {
        if grant.rpm.is_none() && grant.tpm.is_none() {
            return Ok(());
        }
        let now = unix_now();
        let window = now - now % 60;
        let id = &grant.identity.id;
        let incs = [
            Increment {
                key: format!("aigw_vkey_{id}_rpm_{window}"),
                cost: u64::from(grant.rpm.is_some()),
                expires_at: window + 60,
            },
            Increment {
                key: format!("aigw_vkey_{id}_tpm_{window}"),
                cost: 0,
                expires_at: window + 60,
            },
        ];
        let counts = match self.counters.incr(now, &incs).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "virtual key rate-limit counters unavailable: request let through");
                return Ok(());
            }
        };
        let retry_after = Some(Duration::from_secs(window + 60 - now));
        if let (Some(limit), Some(&n)) = (grant.rpm, counts.first())
            && n > limit
        {
            return Err(Error::RateLimited {
                message: format!("this key is limited to {limit} requests per minute"),
                retry_after,
                status: None,
            });
        }
        if let (Some(limit), Some(&n)) = (grant.tpm, counts.get(1))
            && n >= limit
        {
            return Err(Error::RateLimited {
                message: format!("this key is limited to {limit} tokens per minute"),
                retry_after,
                status: None,
            });
        }
        Ok(())
    }

    /// Charges tokens a finished request used to its key's tokens-per-minute window.
    pub fn charge_tokens(&self, key_id: &str, tokens: u64) {
        let limited = self.cached(key_id).is_some_and(|k| k.info.tpm.is_some());
        if !limited || tokens == 0 {
            return;
        }
        let now = unix_now();
        let window = now - now % 60;
        self.counters.add(
            now,
            vec![Increment {
                key: format!("aigw_vkey_{key_id}_tpm_{window}"),
                cost: tokens,
                expires_at: window + 60,
            }],
        );
    }

    /// Every key, oldest first (revoked and expired ones included).
    pub fn list(&self) -> Vec<KeyInfo> {
        let mut keys: Vec<KeyInfo> = self.cache.load().values().map(|k| k.info.clone()).collect();
        keys.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        keys
    }

    /// One key.
    pub fn get(&self, id: &str) -> Option<KeyInfo> {
        self.cached(id).map(|k| k.info.clone())
    }

    /// Issues a key; the returned secret is the only copy there will ever be.
    pub async fn create(&self, spec: KeySpec) -> Result<(KeyInfo, crate::Secret)> {
        let now = unix_now();
        let expires_at = validate(&spec, now)?;
        let id = token::new_id()?;
        let minted = token::mint(&id)?;
        let info = KeyInfo {
            id,
            name: spec.name,
            team: spec.team,
            owner: spec.owner,
            models: spec.models,
            routes: spec.routes,
            rpm: spec.rpm,
            tpm: spec.tpm,
            budget: spec.budget,
            expires_at,
            created_at: now,
            rotated_at: None,
            revoked_at: None,
            hint: minted.hint,
        };
        let stored = StoredKey {
            info: info.clone(),
            salt: minted.salt,
            digest: minted.digest,
        };
        self.store.save(&stored).await?;
        self.reload().await?;
        Ok((info, minted.key))
    }

    /// Replaces a key's secret (same id, limits and budget); the old secret stops
    /// working at once.
    pub async fn rotate(&self, id: &str) -> Result<(KeyInfo, crate::Secret)> {
        let mut stored = self.live(id).await?;
        let minted = token::mint(id)?;
        stored.salt = minted.salt;
        stored.digest = minted.digest;
        stored.info.hint = minted.hint;
        stored.info.rotated_at = Some(unix_now());
        self.store.save(&stored).await?;
        self.reload().await?;
        Ok((stored.info, minted.key))
    }

    /// Revokes a key; every replica refuses it within a second.
    pub async fn revoke(&self, id: &str) -> Result<KeyInfo> {
        let mut stored = self.live(id).await?;
        stored.info.revoked_at = Some(unix_now());
        self.store.save(&stored).await?;
        self.reload().await?;
        Ok(stored.info)
    }

    /// The key from the store itself (not the cache), refused when unknown or revoked.
    async fn live(&self, id: &str) -> Result<StoredKey> {
        let stored = self
            .store
            .load()
            .await?
            .into_iter()
            .find(|k| k.info.id == id)
            .ok_or_else(|| Error::BadRequest {
                message: format!("no key with id {id:?}"),
            })?;
        if stored.info.revoked_at.is_some() {
            return Err(Error::BadRequest {
                message: format!("key {id:?} is already revoked"),
            });
        }
        Ok(stored)
    }
}

/// Checks a key spec; the absolute expiry it asks for.
fn validate(spec: &KeySpec, now: u64) -> Result<Option<u64>> {
    let bad = |m: &str| Error::BadRequest {
        message: m.to_owned(),
    };
    for (field, v) in [("rpm", spec.rpm), ("tpm", spec.tpm)] {
        if v == Some(0) {
            return Err(bad(&format!("{field} must be at least 1")));
        }
    }
    for (field, v) in [
        ("name", &spec.name),
        ("team", &spec.team),
        ("owner", &spec.owner),
    ] {
        if let Some(v) = v
            && (v.len() > 128 || v.chars().any(char::is_control))
        {
            return Err(bad(&format!(
                "{field} must be at most 128 printable characters"
            )));
        }
    }
    let expires_at = match (spec.expires_at, spec.expires_in) {
        (Some(_), Some(_)) => return Err(bad("give expires_at or expires_in, not both")),
        (Some(at), None) => Some(at),
        (None, Some(secs)) => Some(now.saturating_add(secs)),
        (None, None) => None,
    };
    if expires_at.is_some_and(|e| e <= now) {
        return Err(bad("the expiry is in the past"));
    }
    Ok(expires_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{FileKeyStore, KeyBudget, MemoryKeyStore, Period};

    async fn registry() -> KeyRegistry {
        KeyRegistry::open(Arc::new(MemoryKeyStore::default()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn create_authenticate_rotate_revoke() {
        let r = registry().await;
        let (info, key) = r
            .create(KeySpec {
                team: Some("search".into()),
                models: vec!["gpt-4o*".into()],
                budget: Some(KeyBudget {
                    limit_micros: 5_000_000,
                    period: Period::Month,
                }),
                ..KeySpec::default()
            })
            .await
            .unwrap();
        let g = r.authenticate(key.expose()).await.unwrap();
        assert_eq!(g.identity.id.as_ref(), info.id);
        assert_eq!(g.identity.team.as_deref(), Some("search"));
        assert_eq!(g.identity.budget.unwrap().limit_micros, 5_000_000);
        g.allows("gpt-4o-mini", "default/r").unwrap();
        assert_eq!(
            g.allows("claude-3", "default/r").unwrap_err().status(),
            http::StatusCode::FORBIDDEN
        );
        let (_, new_key) = r.rotate(&info.id).await.unwrap();
        assert!(r.authenticate(key.expose()).await.is_err());
        r.authenticate(new_key.expose()).await.unwrap();
        r.revoke(&info.id).await.unwrap();
        let e = r.authenticate(new_key.expose()).await.unwrap_err();
        assert!(e.to_string().contains("revoked"), "{e}");
        assert!(r.revoke(&info.id).await.is_err());
        assert_eq!(r.list()[0].status(unix_now()), "revoked");
    }

    #[tokio::test]
    async fn another_replicas_changes_arrive_through_the_version() {
        let store: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::default());
        let a = KeyRegistry::open(store.clone()).await.unwrap();
        let b = KeyRegistry::open(store).await.unwrap();
        let (info, key) = a.create(KeySpec::default()).await.unwrap();
        // Unknown to b's cache: the miss check finds it.
        b.authenticate(key.expose()).await.unwrap();
        a.revoke(&info.id).await.unwrap();
        assert!(
            b.authenticate(key.expose()).await.is_ok(),
            "cached until refresh"
        );
        assert!(b.refresh().await.unwrap());
        assert!(b.authenticate(key.expose()).await.is_err());
    }

    #[tokio::test]
    async fn rpm_and_tpm_are_enforced() {
        let r = registry().await;
        let (info, key) = r
            .create(KeySpec {
                rpm: Some(2),
                tpm: Some(100),
                ..KeySpec::default()
            })
            .await
            .unwrap();
        let g = r.authenticate(key.expose()).await.unwrap();
        r.admit(&g).await.unwrap();
        r.admit(&g).await.unwrap();
        let e = r.admit(&g).await.unwrap_err();
        assert_eq!(e.status(), http::StatusCode::TOO_MANY_REQUESTS);
        let r = registry().await;
        let (info2, key) = r
            .create(KeySpec {
                tpm: Some(100),
                ..KeySpec::default()
            })
            .await
            .unwrap();
        let g = r.authenticate(key.expose()).await.unwrap();
        r.admit(&g).await.unwrap();
        r.charge_tokens(&info2.id, 150);
        assert!(r.admit(&g).await.is_err());
        let _ = info;
    }

    #[tokio::test]
    async fn file_store_persists_across_registries_and_holds_no_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let r = KeyRegistry::open(Arc::new(FileKeyStore::new(&path)))
            .await
            .unwrap();
        let (info, key) = r
            .create(KeySpec {
                name: Some("ci".into()),
                expires_in: Some(3600),
                ..KeySpec::default()
            })
            .await
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(key.expose()));
        assert!(!text.contains(&key.expose()[21..]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "owner-only file");
        }
        drop(r);
        let r = KeyRegistry::open(Arc::new(FileKeyStore::new(&path)))
            .await
            .unwrap();
        assert_eq!(r.get(&info.id).unwrap().name.as_deref(), Some("ci"));
        r.authenticate(key.expose()).await.unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn specs_are_validated() {
        let now = 1_000;
        assert!(
            validate(
                &KeySpec {
                    rpm: Some(0),
                    ..KeySpec::default()
                },
                now
            )
            .is_err()
        );
        assert!(
            validate(
                &KeySpec {
                    expires_at: Some(10),
                    ..KeySpec::default()
                },
                now
            )
            .is_err()
        );
        assert_eq!(
            validate(
                &KeySpec {
                    expires_in: Some(60),
                    ..KeySpec::default()
                },
                now
            )
            .unwrap(),
            Some(1_060)
        );
    }
}
