//! Where spend and usage are counted: in this process ([`MemorySpendStore`]) or in
//! Redis, shared by every replica (`RedisSpendStore`, feature `redis`).
//!
//! Budget counters are the buckets of a [`LimitStore`] — the rate limits' own
//! counters — so a budget is reserved and settled with [`crate::limits::Held`], atomically
//! across every budget a request falls under; usage rows are counted beside them.

use crate::Result;
use crate::limits::{LimitStore, MemoryStore};
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

/// What one finished request adds to the usage row of its hour (its budgets are
/// settled through [`SpendStore::budgets`]).
#[derive(Debug, Clone, Default)]
pub struct Charge {
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
    /// The counters budgets are held in and settled against.
    fn budgets(&self) -> &dyn LimitStore;
    /// Adds a finished request's usage. Never blocks the caller: a remote store sends
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
    budgets: MemoryStore,
    usage: Mutex<BTreeMap<u64, HashMap<UsageKey, UsageCounts>>>,
    retention_hours: u64,
}

impl Default for MemorySpendStore {
    fn default() -> Self {
        Self {
            budgets: MemoryStore::default(),
            usage: Mutex::default(),
            retention_hours: DEFAULT_USAGE_RETENTION_HOURS,
        }
    }
}

#[async_trait]
impl SpendStore for MemorySpendStore {
    fn budgets(&self) -> &dyn LimitStore {
        &self.budgets
    }

    fn charge(&self, charge: Charge) {
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
