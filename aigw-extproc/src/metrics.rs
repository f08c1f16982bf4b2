//! Metrics: the GenAI series shared with the standalone gateway
//! ([`aigw_core::metrics::GenAiMetrics`]), plus processor counters for `/stats`.

use aigw_core::exchange::ExchangeRecord;
use aigw_core::metrics::GenAiMetrics;
use std::sync::atomic::{AtomicU64, Ordering};

/// The processor's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    genai: GenAiMetrics,
    messages: AtomicU64,
    requests: AtomicU64,
}

impl Metrics {
    /// Counts one processed ext_proc message.
    pub fn message(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a finished request.
    pub fn record(&self, r: &ExchangeRecord) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.genai.record(r);
    }

    /// ext_proc messages processed so far (both filters).
    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }

    /// Requests finished so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of the GenAI metrics.
    pub fn encode(&self) -> String {
        self.genai.encode()
    }
}
