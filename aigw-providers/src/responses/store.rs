//! The in-process conversation store behind `previous_response_id` on translated
//! backends.
//!
//! A stored response keeps its whole conversation — the input items it was generated
//! from (earlier turns already expanded) followed by its output items — so a follow-up
//! naming it as `previous_response_id` is expanded into a complete conversation for a
//! backend that has no server-side state. The store is bounded (entries and bytes, the
//! oldest evicted first) and entries expire after a TTL. It lives in the process; with
//! a [`ConversationMirror`] set ([`set_mirror`]: Redis when the gateway is given one),
//! every stored conversation is also written there, and [`hydrate`] brings one this
//! process does not hold back from it before a request that names it — so a follow-up
//! may reach any replica.

use aigw_core::api::responses::{Item, Response};
use aigw_core::conversations::ConversationMirror;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Store limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Most conversations kept.
    pub max_entries: usize,
    /// Most bytes (serialised items) kept over all conversations.
    pub max_bytes: usize,
    /// How long a conversation stays retrievable.
    pub ttl: Duration,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_entries: 4096,
            max_bytes: 64 << 20,
            ttl: Duration::from_secs(3600),
        }
    }
}

/// An entry as the mirror holds it.
#[derive(Serialize, Deserialize)]
struct Mirrored {
    items: Vec<Item>,
    input_len: usize,
    response: Option<serde_json::Value>,
}

#[derive(Debug)]
struct Entry {
    items: Vec<Item>,
    /// How many of `items` are the response's input (the rest is its output).
    input_len: usize,
    /// The response object as returned, for `GET /v1/responses/{id}`.
    response: Option<serde_json::Value>,
    bytes: usize,
    expires: Instant,
}

/// A stored response, as `GET /v1/responses/{id}` and `…/input_items` read it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The response object.
    pub response: serde_json::Value,
    /// The input it was generated from (earlier turns expanded).
    pub input: Vec<Item>,
}

/// A bounded, TTL'd map from response id to conversation.
#[derive(Debug)]
pub struct ConversationStore {
    limits: StoreLimits,
    entries: HashMap<String, Entry>,
    order: VecDeque<String>,
    bytes: usize,
    suffix: u64,
}

impl ConversationStore {
    /// An empty store.
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            limits,
            entries: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            suffix: 0,
        }
    }

    /// The conversation stored under `id`, if present and not expired.
    pub fn get(&mut self, id: &str, now: Instant) -> Option<Vec<Item>> {
        let expired = self.entries.get(id)?.expires <= now;
        if expired {
            self.remove(id);
            return None;
        }
        self.entries.get(id).map(|e| e.items.clone())
    }

    /// The response stored under `id` with its input, if present, not expired and
    /// stored with its response object.
    pub fn response(&mut self, id: &str, now: Instant) -> Option<Stored> {
        self.get(id, now)?;
        let e = self.entries.get(id)?;
        Some(Stored {
            response: e.response.clone()?,
            input: e.items.get(..e.input_len)?.to_vec(),
        })
    }

    /// Deletes the response stored under `id`; returns whether one was held.
    pub fn delete(&mut self, id: &str, now: Instant) -> bool {
        let held = self.get(id, now).is_some();
        self.remove(id);
        self.order.retain(|o| o != id);
        if let Some(m) = MIRROR.get() {
            m.delete(id);
        }
        held
    }

    /// Takes in an entry read from the mirror (nothing is written back to it).
    pub fn import(&mut self, id: &str, entry: &[u8], now: Instant) -> bool {
        let Ok(m) = serde_json::from_slice::<Mirrored>(entry) else {
            tracing::warn!(response = id, "unreadable conversation in the shared store");
            return false;
        };
        let input_len = m.input_len.min(m.items.len());
        self.insert(id.to_owned(), m.items, input_len, m.response, now, false);
        self.entries.contains_key(id)
    }

    /// `id`, or `id` with a suffix when it is already taken (some backends reuse ids).
    pub fn unique_id(&mut self, id: String) -> String {
        if !self.entries.contains_key(&id) {
            return id;
        }
        self.suffix += 1;
        format!("{id}_{}", self.suffix)
    }

    /// Stores a conversation; evicts expired and then the oldest entries to stay within
    /// the limits. A conversation larger than the byte limit is not stored.
    pub fn put(&mut self, id: String, items: Vec<Item>, now: Instant) {
        let input_len = items.len();
        self.insert(id, items, input_len, None, now, true);
    }

    /// Stores a finished response: its conversation (`input` then the output items)
    /// and the response object itself.
    pub fn put_response(&mut self, input: Vec<Item>, response: &Response, now: Instant) {
        let input_len = input.len();
        let mut items = input;
        items.extend(response.output.iter().cloned());
        let object = serde_json::to_value(response).ok();
        self.insert(response.id.clone(), items, input_len, object, now, true);
    }

    fn insert(
        &mut self,
        id: String,
        mut items: Vec<Item>,
        input_len: usize,
        mut response: Option<serde_json::Value>,
        now: Instant,
        mirror: bool,
    ) {
        let bytes = serde_json::to_vec(&items).map_or(usize::MAX, |v| v.len())
            + response
                .as_ref()
                .and_then(|r| serde_json::to_vec(r).ok())
                .map_or(0, |v| v.len());
        if bytes > self.limits.max_bytes || self.limits.max_entries == 0 {
            tracing::warn!(
                response = id.as_str(),
                bytes,
                "conversation too large to store"
            );
            return;
        }
        self.remove(&id);
        while let Some(front) = self.order.front() {
            let over = self.entries.len() >= self.limits.max_entries
                || self.bytes + bytes > self.limits.max_bytes;
            let expired = self.entries.get(front).is_none_or(|e| e.expires <= now);
            if !over && !expired {
                break;
            }
            let front = front.clone();
            self.remove(&front);
            self.order.pop_front();
        }
        if mirror && let Some(m) = MIRROR.get() {
            let wire = Mirrored {
                items,
                input_len,
                response,
            };
            match serde_json::to_vec(&wire) {
                Ok(v) => m.put(&id, v, self.limits.ttl),
                Err(e) => {
                    tracing::warn!(response = id.as_str(), error = %e, "conversation not mirrored")
                }
            }
            (items, response) = (wire.items, wire.response);
        }
        self.bytes += bytes;
        self.order.push_back(id.clone());
        self.entries.insert(
            id,
            Entry {
                items,
                input_len,
                response,
                bytes,
                expires: now + self.limits.ttl,
            },
        );
    }

    fn remove(&mut self, id: &str) {
        if let Some(e) = self.entries.remove(id) {
            self.bytes -= e.bytes;
        }
    }

    /// Conversations held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

static STORE: OnceLock<Mutex<ConversationStore>> = OnceLock::new();
static MIRROR: OnceLock<Arc<dyn ConversationMirror>> = OnceLock::new();

/// Sets the process-wide store's shared tier; only the first call takes effect.
/// Returns whether it did.
pub fn set_mirror(mirror: Arc<dyn ConversationMirror>) -> bool {
    MIRROR.set(mirror).is_ok()
}

/// Whether a shared tier is set.
pub fn mirrored() -> bool {
    MIRROR.get().is_some()
}

/// Brings the conversation `id` from the shared tier into this process's store when it
/// is not held here. Returns whether it is held afterwards.
pub async fn hydrate(id: &str) -> bool {
    let now = Instant::now();
    if with(|s| s.get(id, now).is_some()) {
        return true;
    }
    let Some(mirror) = MIRROR.get() else {
        return false;
    };
    match mirror.get(id).await {
        Some(entry) => with(|s| s.import(id, &entry, now)),
        None => false,
    }
}

/// The `previous_response_id` of a Responses request body, read without building the
/// request (for [`hydrate`] before the translator needs it).
pub fn previous_response_id(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Sniff {
        #[serde(default)]
        previous_response_id: Option<String>,
    }
    serde_json::from_slice::<Sniff>(body)
        .ok()?
        .previous_response_id
        .filter(|id| !id.is_empty())
}

/// Sets the process-wide store's limits; only the first call (before any request)
/// takes effect. Returns whether it did.
pub fn configure(limits: StoreLimits) -> bool {
    STORE
        .set(Mutex::new(ConversationStore::new(limits)))
        .is_ok()
}

/// Runs `f` on the process-wide store.
pub fn with<T>(f: impl FnOnce(&mut ConversationStore) -> T) -> T {
    let store = STORE.get_or_init(|| Mutex::new(ConversationStore::new(StoreLimits::default())));
    // A panic while holding the lock cannot leave the map inconsistent in a way that
    // matters (at worst a byte count is off), so a poisoned lock is used as is.
    let mut guard = store
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut guard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigw_core::api::responses::{MessageContent, MessageItem};

    fn item(text: &str) -> Item {
        Item::Message(MessageItem {
            kind: Some("message".into()),
            id: None,
            role: "user".into(),
            content: MessageContent::Text(text.into()),
            status: None,
            extra: Default::default(),
        })
    }

    #[test]
    fn bounded_by_entries_bytes_and_ttl() {
        let now = Instant::now();
        let mut s = ConversationStore::new(StoreLimits {
            max_entries: 2,
            max_bytes: 200,
            ttl: Duration::from_secs(10),
        });
        s.put("a".into(), vec![item("1")], now);
        s.put("b".into(), vec![item("2")], now);
        s.put("c".into(), vec![item("3")], now);
        assert_eq!(s.len(), 2);
        assert!(s.get("a", now).is_none(), "oldest evicted");
        assert!(s.get("c", now).is_some());
        assert!(
            s.get("c", now + Duration::from_secs(11)).is_none(),
            "expired"
        );
        s.put("big".into(), vec![item(&"x".repeat(500))], now);
        assert!(s.get("big", now).is_none(), "over the byte limit");
        assert_eq!(s.unique_id("b".into()), "b_1");
        assert_eq!(s.unique_id("z".into()), "z");
    }
}
