//! Which backend produced a passed-through Responses API response.
//!
//! OpenAI and Azure OpenAI keep the responses they generate; `GET`/`DELETE
//! /v1/responses/{id}` and `…/input_items` name no model, so the gateway remembers the
//! backend that answered each passed-through response (its id from the response object,
//! or from a stream's `response.created` event) and sends the follow-up there, with
//! that backend's credentials. The map is small (an id and a backend name per entry),
//! bounded and TTL'd, and lives in the process: behind several replicas, an id this
//! replica never saw falls back to the only Responses-capable passthrough backend when
//! there is exactly one.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Most ids remembered.
pub const MAX_ENTRIES: usize = 65_536;
/// How long an id is remembered (OpenAI keeps stored responses for 30 days; clients
/// read them back within a session).
pub const TTL: Duration = Duration::from_secs(24 * 3600);

/// Who produced a response: the per-rule backend name and the model asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The per-rule backend name (`{ns}/{name}/route/{route}/rule/{i}/ref/{j}`).
    pub backend: Arc<str>,
    /// The model the client named, for records and metrics of the follow-up.
    pub model: String,
}

/// A bounded, TTL'd map from response id to the per-rule backend name that produced it.
#[derive(Debug)]
pub struct Owners {
    max: usize,
    ttl: Duration,
    map: HashMap<String, (Owner, Instant)>,
    order: VecDeque<String>,
}

impl Owners {
    /// An empty map holding at most `max` ids for `ttl` each.
    pub fn new(max: usize, ttl: Duration) -> Self {
        Self {
            max,
            ttl,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Remembers that `backend` produced `id`; the oldest ids go first when full.
    pub fn record(&mut self, id: &str, owner: Owner, now: Instant) {
        if self.max == 0 || id.is_empty() || id.len() > 256 {
            return;
        }
        if self
            .map
            .insert(id.to_owned(), (owner, now + self.ttl))
            .is_none()
        {
            self.order.push_back(id.to_owned());
        }
        while self.map.len() > self.max
            || self
                .order
                .front()
                .and_then(|f| self.map.get(f))
                .is_some_and(|(_, exp)| *exp <= now)
        {
            let Some(front) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&front);
        }
    }

    /// The backend that produced `id`, if remembered and not expired.
    pub fn get(&self, id: &str, now: Instant) -> Option<Owner> {
        self.map
            .get(id)
            .filter(|(_, exp)| *exp > now)
            .map(|(b, _)| b.clone())
    }

    /// Ids remembered (expired ones included until evicted).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

static OWNERS: OnceLock<Mutex<Owners>> = OnceLock::new();

fn with<T>(f: impl FnOnce(&mut Owners) -> T) -> T {
    let m = OWNERS.get_or_init(|| Mutex::new(Owners::new(MAX_ENTRIES, TTL)));
    // Nothing in the map can be left half-updated by a panic that matters.
    let mut g = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut g)
}

/// Remembers, process-wide, that `backend` produced the response `id`.
pub fn record(id: &str, owner: Owner) {
    with(|o| o.record(id, owner, Instant::now()));
}

/// The backend that produced the response `id`, process-wide.
pub fn owner(id: &str) -> Option<Owner> {
    with(|o| o.get(id, Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(name: &str) -> Owner {
        Owner {
            backend: Arc::from(name),
            model: "m".into(),
        }
    }

    #[test]
    fn bounded_and_expiring() {
        let now = Instant::now();
        let mut o = Owners::new(2, Duration::from_secs(5));
        o.record("a", b("b1"), now);
        o.record("b", b("b2"), now);
        o.record("c", b("b1"), now);
        assert_eq!(o.len(), 2);
        assert!(o.get("a", now).is_none(), "oldest evicted");
        assert_eq!(o.get("c", now).map(|o| o.backend), Some(Arc::from("b1")));
        assert!(
            o.get("c", now + Duration::from_secs(6)).is_none(),
            "expired"
        );
        o.record("d", b("b3"), now + Duration::from_secs(6));
        assert_eq!(o.len(), 1, "expired entries evicted on insert");
        o.record(&"x".repeat(300), b("b"), now);
        assert_eq!(o.len(), 1, "absurd ids are not kept");
    }
}
