//! Rate-limit state that outlives configuration snapshots.

use crate::Result;
use crate::config::Config;
use crate::limits::{FailureModes, LimitMode, LimitStats, LimitStore, MemoryStore, RateLimitMeter};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Rate-limit state that outlives configuration snapshots: the counters (in process,
/// and in Redis when configured) and the decision counts. Build one per process and
/// pass it to every snapshot, so a reload keeps the budgets already spent.
pub struct RateLimits {
    local: Arc<MemoryStore>,
    global: Option<Arc<dyn LimitStore>>,
    stats: Arc<LimitStats>,
    warned: AtomicBool,
    failure: FailureModes,
    mode: LimitMode,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("local_buckets", &self.local.len())
            .field("global_store", &self.global.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new(None)
    }
}

impl RateLimits {
    /// In-process counters for `Local` policies; `global` (e.g. a Redis store, feature
    /// `redis`) for `Global` ones, which count in process too when it is `None`.
    pub fn new(global: Option<Arc<dyn LimitStore>>) -> Self {
        Self {
            local: Arc::new(MemoryStore::default()),
            global,
            stats: Arc::new(LimitStats::default()),
            warned: AtomicBool::new(false),
            failure: FailureModes::default(),
            mode: LimitMode::default(),
        }
    }

    /// Sets what every meter built from these counters does while a store is down.
    #[must_use]
    pub const fn with_failure_modes(mut self, modes: FailureModes) -> Self {
        self.failure = modes;
        self
    }

    /// Sets when every meter built from these counters charges (upstream semantics by
    /// default; [`LimitMode::Reserve`] holds an estimate before the call).
    #[must_use]
    pub const fn with_mode(mut self, mode: LimitMode) -> Self {
        self.mode = mode;
        self
    }

    /// The limit mode.
    pub const fn mode(&self) -> LimitMode {
        self.mode
    }

    /// Decisions made so far.
    pub fn stats(&self) -> &Arc<LimitStats> {
        &self.stats
    }

    /// The meter for `config`, or `None` when no route has rate limits.
    pub fn meter(&self, config: &Config) -> Result<Option<Arc<RateLimitMeter>>> {
        let local: Arc<dyn LimitStore> = self.local.clone();
        let global = self.global.clone().unwrap_or_else(|| local.clone());
        let meter = RateLimitMeter::from_config(config, local, global, self.stats.clone())?
            .with_failure_modes(self.failure)
            .with_mode(self.mode);
        if meter.is_empty() {
            return Ok(None);
        }
        if meter.has_global() && self.global.is_none() && !self.warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "Global rate limits and QuotaPolicy quotas are counted per instance: no Redis is configured (--redis-url / AIGW_REDIS_URL)"
            );
        }
        Ok(Some(Arc::new(meter)))
    }
}
