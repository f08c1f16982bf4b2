//! Credential providers for a configuration, built once per load and kept across loads.
//!
//! **Failure policy** (the same in every packaging): a BackendSecurityPolicy that
//! cannot be turned into a provider (a missing field, a type or override the packaging
//! cannot serve) fails the load, naming the policy — at start-up the gateway refuses to
//! start, on reload the previous configuration keeps serving. A provider that was
//! built but cannot fetch a credential at request time (token endpoint down, STS
//! refusing) fails that attempt with a 503-class [`Error::Credential`], which the
//! adapters treat like a connect failure and fail over to the next backend.

use crate::config::{Config, ResolvedSecurityPolicy};
use crate::{CredentialProvider, Result};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

#[cfg(doc)]
use crate::Error;

/// Turns a resolved BackendSecurityPolicy into a credential provider (in the
/// packagings: `aigw_auth::resolver`, wrapped by an adapter that serves more).
pub type CredentialResolver =
    Arc<dyn Fn(&ResolvedSecurityPolicy) -> Result<Arc<dyn CredentialProvider>> + Send + Sync>;

/// A provider with what it was built from.
#[derive(Clone)]
struct Entry {
    fingerprint: u64,
    policy: ResolvedSecurityPolicy,
    provider: Arc<dyn CredentialProvider>,
}

/// Providers by policy name.
type Providers = HashMap<String, Entry>;

/// Providers kept across configuration loads: a policy whose document, the Secrets of
/// its namespace and its resolved secret values did not change keeps its provider, so
/// cached tokens and background refresh survive a reload.
#[derive(Default)]
pub struct ProviderCache {
    entries: Mutex<Providers>,
}

impl std::fmt::Debug for ProviderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderCache")
            .field("providers", &lock(self).len())
            .finish()
    }
}

/// One load's view of a [`ProviderCache`]: hits come from the previous load, and the
/// cache only takes this load's providers when the whole load succeeded
/// ([`ProviderSet::commit`]).
pub struct ProviderSet<'a> {
    cache: Option<&'a ProviderCache>,
    config: Option<&'a Config>,
    resolver: &'a CredentialResolver,
    built: Providers,
    reused: usize,
}

impl std::fmt::Debug for ProviderSet<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSet")
            .field("built", &self.built.len())
            .field("reused", &self.reused)
            .finish_non_exhaustive()
    }
}

impl<'a> ProviderSet<'a> {
    /// Providers for `config` (none for configurations resolved elsewhere, where the
    /// resolved policy alone says whether a provider can be kept), reusing those in
    /// `cache` when given.
    pub fn new(
        config: Option<&'a Config>,
        resolver: &'a CredentialResolver,
        cache: Option<&'a ProviderCache>,
    ) -> Self {
        Self {
            cache,
            config,
            resolver,
            built: HashMap::new(),
            reused: 0,
        }
    }

    /// The provider for `policy`, built at most once per load.
    pub fn get(&mut self, policy: &ResolvedSecurityPolicy) -> Result<Arc<dyn CredentialProvider>> {
        if let Some(e) = self.built.get(&policy.name) {
            return Ok(e.provider.clone());
        }
        let print = self.config.map_or(0, |c| fingerprint(c, &policy.name));
        let previous = self.cache.and_then(|c| {
            lock(c)
                .get(&policy.name)
                .filter(|e| e.fingerprint == print && e.policy == *policy)
                .map(|e| e.provider.clone())
        });
        let provider = match previous {
            Some(p) => {
                self.reused += 1;
                p
            }
            None => (self.resolver)(policy)?,
        };
        self.built.insert(
            policy.name.clone(),
            Entry {
                fingerprint: print,
                policy: policy.clone(),
                provider: provider.clone(),
            },
        );
        Ok(provider)
    }

    /// How many providers came from the previous load.
    pub const fn reused(&self) -> usize {
        self.reused
    }

    /// Makes this load's providers the cache's (dropping those of removed policies).
    pub fn commit(self) {
        if let Some(c) = self.cache {
            *lock(c) = self.built;
        }
    }
}

fn lock(c: &ProviderCache) -> std::sync::MutexGuard<'_, Providers> {
    c.entries.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A digest of everything a policy's provider is built from: its document and the
/// Secrets of its namespace (whichever it references).
fn fingerprint(config: &Config, policy: &str) -> u64 {
    let mut h = DefaultHasher::new();
    let ns = policy.split_once('/').map_or("default", |(ns, _)| ns);
    if let Some(doc) = config
        .backend_security_policies
        .iter()
        .find(|r| r.metadata.key() == policy)
    {
        serde_json::to_string(&doc.spec)
            .unwrap_or_default()
            .hash(&mut h);
    }
    for s in config
        .secrets
        .iter()
        .filter(|s| s.metadata.namespace.as_deref().unwrap_or("default") == ns)
    {
        s.metadata.name.hash(&mut h);
        for (k, v) in &s.data {
            k.hash(&mut h);
            v.expose().hash(&mut h);
        }
    }
    h.finish()
}
