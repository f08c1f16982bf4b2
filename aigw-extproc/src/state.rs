//! Per-request state shared between a request's router-level stream and its
//! upstream-level streams (one per attempt).
//!
//! Envoy opens the two kinds of stream independently, possibly on different HTTP/2
//! connections; they meet here through the internal request id the router stream
//! writes into `x-ai-eg-internal-req-id`.

use crate::runtime::Runtime;
use aigw_core::exchange::{Attempt, Exchange};
use envoy_types::pb::envoy::config::core::v3::Metadata as PbMetadata;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// What one request has accumulated so far.
#[derive(Debug)]
pub struct Shared {
    /// The configuration generation the request started with; a reload mid-request
    /// does not change the backends it sees.
    pub runtime: Arc<Runtime>,
    /// The exchange (sniffed request, meter guard, record); taken when it finishes.
    pub exchange: Option<Exchange>,
    /// The latest attempt; the response path reads through its translator.
    pub attempt: Option<Attempt>,
    /// The per-rule backend name of the latest attempt.
    pub backend_name: Option<String>,
    /// Whether the meter reserved for this request (the router-level stream does when
    /// it knows the route's first backend; else the first upstream attempt does).
    pub reserved: bool,
    /// Upstream attempts made.
    pub attempts: u32,
    /// Header names the previous attempt set, so a retry can restore or drop them.
    pub previous_set: Vec<String>,
    /// The dynamic metadata Envoy forwarded with the request (only namespaces the
    /// bootstrap lists), for credentials read from metadata.
    pub metadata: Option<PbMetadata>,
}

/// A request's state behind an async lock: the two streams take turns, and the upstream
/// stream holds it across the credential fetch.
pub(crate) type SharedState = Arc<tokio::sync::Mutex<Shared>>;

/// Shards of the registry; a power of two larger than any core count this runs on, so
/// concurrent streams rarely meet on one lock.
const SHARDS: usize = 32;

type Shard = Mutex<HashMap<u64, (Box<str>, SharedState)>>;

/// The id → state map, sharded by the request's sequence number.
///
/// The internal id is `{x-request-id}-{nonce:08x}{sequence:016x}`: the sequence picks
/// the shard and the entry, and the whole id must match, so an id a client made up finds
/// nothing.
#[derive(Debug)]
pub struct Registry {
    shards: Box<[Shard]>,
    counter: AtomicU64,
    nonce: u32,
}

impl Default for Registry {
    fn default() -> Self {
        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            counter: AtomicU64::new(0),
            nonce: (nonce & 0xffff_ffff) as u32,
        }
    }
}

fn sequence_of(id: &str) -> Option<u64> {
    let tail = id.get(id.len().checked_sub(16)?..)?;
    u64::from_str_radix(tail, 16).ok()
}

impl Registry {
    /// Registers a new request; the entry lives until the returned guard drops (the
    /// router stream ends).
    pub fn register(self: &Arc<Self>, request_id: &str, shared: Shared) -> Registration {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // x-request-id alone is client-controllable and may repeat; the suffix makes the
        // key unique within this process.
        let id: Box<str> = format!("{request_id}-{:08x}{n:016x}", self.nonce).into();
        let state = Arc::new(tokio::sync::Mutex::new(shared));
        self.shard(n).insert(n, (id.clone(), state.clone()));
        Registration {
            registry: self.clone(),
            id,
            sequence: n,
            state,
        }
    }

    /// Looks a request up by internal id.
    pub fn get(&self, id: &str) -> Option<SharedState> {
        let n = sequence_of(id)?;
        self.shard(n)
            .get(&n)
            .filter(|(known, _)| **known == *id)
            .map(|(_, s)| s.clone())
    }

    /// Requests in flight.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether no request is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, n: u64) -> std::sync::MutexGuard<'_, HashMap<u64, (Box<str>, SharedState)>> {
        lock(&self.shards[(n as usize) % SHARDS])
    }
}

fn lock(shard: &Shard) -> std::sync::MutexGuard<'_, HashMap<u64, (Box<str>, SharedState)>> {
    // The map holds no invariant a panic could break.
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps a request registered; removes it on drop.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<Registry>,
    id: Box<str>,
    sequence: u64,
    state: SharedState,
}

impl Registration {
    /// The internal request id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The shared state.
    pub fn state(&self) -> &SharedState {
        &self.state
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.shard(self.sequence).remove(&self.sequence);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Catalog, Runtime};

    struct Empty;
    impl Catalog for Empty {
        fn route(&self, model: &str, _: &http::HeaderMap) -> aigw_core::Result<Arc<str>> {
            Err(aigw_core::Error::NoRoute {
                model: model.to_owned(),
            })
        }
        fn target(&self, _: &str) -> Option<Arc<aigw_core::exchange::Target>> {
            None
        }
    }

    fn shared() -> Shared {
        Shared {
            runtime: Arc::new(Runtime::new(
                Arc::new(Empty),
                Arc::new(aigw_providers::ProviderFactory),
            )),
            exchange: None,
            attempt: None,
            backend_name: None,
            reserved: false,
            attempts: 0,
            previous_set: Vec::new(),
            metadata: None,
        }
    }

    #[test]
    fn ids_resolve_only_exactly_and_entries_go_on_drop() {
        let r = Arc::new(Registry::default());
        let a = r.register("req", shared());
        let b = r.register("req", shared());
        assert_ne!(a.id(), b.id());
        assert!(Arc::ptr_eq(&r.get(a.id()).unwrap(), a.state()));
        assert!(Arc::ptr_eq(&r.get(b.id()).unwrap(), b.state()));
        // Same sequence, another prefix: not this request.
        let forged = format!("other{}", &a.id()[3..]);
        assert!(r.get(&forged).is_none());
        assert!(r.get("short").is_none());
        assert_eq!(r.len(), 2);
        drop(a);
        assert_eq!(r.len(), 1);
        drop(b);
        assert!(r.is_empty());
    }
}
