//! Per-request state shared between a request's router-level stream and its
//! upstream-level streams (one per attempt).
//!
//! Envoy opens the two kinds of stream independently, possibly on different HTTP/2
//! connections; they meet here through the internal request id the router stream
//! writes into `x-ai-eg-internal-req-id`.

use crate::runtime::Runtime;
use aigw_core::exchange::{Attempt, Exchange};
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
    /// Upstream attempts made.
    pub attempts: u32,
    /// Header names the previous attempt set, so a retry can restore or drop them.
    pub previous_set: Vec<String>,
}

/// A request's state behind an async lock: the two streams take turns, and the upstream
/// stream holds it across the credential fetch.
pub type SharedState = Arc<tokio::sync::Mutex<Shared>>;

/// The id → state map.
#[derive(Debug)]
pub struct Registry {
    map: Mutex<HashMap<String, SharedState>>,
    counter: AtomicU64,
    nonce: u64,
}

impl Default for Registry {
    fn default() -> Self {
        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32);
        Self {
            map: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(0),
            nonce,
        }
    }
}

impl Registry {
    /// Registers a new request; the entry lives until the returned guard drops (the
    /// router stream ends).
    pub fn register(self: &Arc<Self>, request_id: &str, shared: Shared) -> Registration {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // x-request-id alone is client-controllable and may repeat; the suffix makes the
        // key unique within this process.
        let id = format!("{request_id}-{:x}{n:x}", self.nonce & 0xffff_ffff);
        let state = Arc::new(tokio::sync::Mutex::new(shared));
        self.lock().insert(id.clone(), state.clone());
        Registration {
            registry: self.clone(),
            id,
            state,
        }
    }

    /// Looks a request up by internal id.
    pub fn get(&self, id: &str) -> Option<SharedState> {
        self.lock().get(id).cloned()
    }

    /// Requests in flight.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no request is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SharedState>> {
        // The map holds no invariant a panic could break.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Keeps a request registered; removes it on drop.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<Registry>,
    id: String,
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
        self.registry.lock().remove(&self.id);
    }
}
