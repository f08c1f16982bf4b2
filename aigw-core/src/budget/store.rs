//! Where spend and usage are counted: in this process ([`MemorySpendStore`]) or in
//! Redis, shared by every replica (`RedisSpendStore`, feature `redis`).

use crate::Result;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Who and what a usage row counts: the client's key id, its team, the model billed
/// and the route (each empty when unknown).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct UsageKey {
    /// The client (key id, static key name, JWT subject).
    pub key: String,
    /// The client's team.
    pub team: String,
    /// The model billed.
    pub model: String,
    /// The route (`namespace/name`).
    pub route: String,
}

/// Counters of one usage row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageCounts {
    /// Requests.
    pub requests: u64,
    /// Input tokens (cached included).
    pub input_tokens: u64,
    /// Output tokens (reasoning included).
    pub output_tokens: u64,
    /// Spend, in micro-dollars.
    pub cost_micros: u64,
}

impl UsageCounts {
    /// Adds another row's counters.
    pub fn add(&mut self, o: &Self) {
        self.requests += o.requests;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cost_micros += o.cost_micros;
    }
}

/// What one finished request adds: its cost to each of its budgets' counters and its
/// usage to the row of its hour.
#[derive(Debug, Clone, Default)]
pub struct Charge {
    /// Budget counter keys, each with the instant (Unix seconds) its period ends, after
    /// which the counter may be forgotten (`None`: kept).
    pub budgets: Vec<(String, Option<u64>)>,
    /// The request's cost, in micro-dollars.
    pub micros: u64,
    /// The usage bucket: the start of the request's hour, in Unix seconds.
    pub hour: u64,
    /// The usage row.
    pub row: UsageKey,
    /// The usage row's increments.
    pub counts: UsageCounts,
}

/// One usage row of one hour, as a store returns it.
pub type HourRow = (u64, UsageKey, UsageCounts);

/// Spend and usage counters.
#[async_trait]
pub trait SpendStore: Send + Sync + std::fmt::Debug {
    /// The current value of each budget counter (0 when absent), in order.
    async fn spent(&self, keys: &[String]) -> Result<Vec<u64>>;
    /// Adds a finished request's charge. Never blocks the caller: a remote store sends
    /// it in the background and logs a failure.
    fn charge(&self, charge: Charge);
    /// The usage rows of the hours starting in `[from_hour, to_hour)` (Unix seconds).
    async fn usage(&self, from_hour: u64, to_hour: u64) -> Result<Vec<HourRow>>;
}

/// Hours of usage rows kept by default (93 days).
pub const DEFAULT_USAGE_RETENTION_HOURS: u64 = 93 * 24;

/// Counters in this process: exact, lost on restart, not shared between replicas.
#[derive(Debug)]
pub struct MemorySpendStore {
    budgets: Mutex<HashMap<String, (u64, Option<u64>)>>,
    usage: Mutex<BTreeMap<u64, HashMap<UsageKey, UsageCounts>>>,
    retention_hours: u64,
}

impl Default for MemorySpendStore {
    fn default() -> Self {
        Self {
            budgets: Mutex::default(),
            usage: Mutex::default(),
            retention_hours: DEFAULT_USAGE_RETENTION_HOURS,
        }
    }
}

#[async_trait]
impl SpendStore for MemorySpendStore {
    async fn spent(&self, keys: &[String]) -> Result<Vec<u64>> {
        let now = crate::pricing::unix_now();
        let map = self
            .budgets
            .lock()
            .map_err(|_| crate::Error::internal("spend store lock poisoned"))?;
        Ok(keys
            .iter()
            .map(|k| match map.get(k) {
                Some((v, None)) => *v,
                Some((v, Some(end))) if *end > now => *v,
                _ => 0,
            })
            .collect())
    }

    fn charge(&self, charge: Charge) {
        let now = crate::pricing::unix_now();
        if let Ok(mut map) = self.budgets.lock() {
            map.retain(|_, (_, end)| end.is_none_or(|e| e > now));
            for (key, end) in charge.budgets {
                let e = map.entry(key).or_insert((0, end));
                e.0 = e.0.saturating_add(charge.micros);
            }
        }
        if let Ok(mut usage) = self.usage.lock() {
            let oldest = charge
                .hour
                .saturating_sub(self.retention_hours * super::HOUR);
            while usage.first_key_value().is_some_and(|(h, _)| *h < oldest) {
                usage.pop_first();
            }
            usage
                .entry(charge.hour)
                .or_default()
                .entry(charge.row)
                .or_default()
                .add(&charge.counts);
        }
    }

    async fn usage(&self, from_hour: u64, to_hour: u64) -> Result<Vec<HourRow>> {
        let usage = self
            .usage
            .lock()
            .map_err(|_| crate::Error::internal("spend store lock poisoned"))?;
        Ok(usage
            .range(from_hour..to_hour)
            .flat_map(|(h, rows)| rows.iter().map(|(k, c)| (*h, k.clone(), *c)))
            .collect())
    }
}
