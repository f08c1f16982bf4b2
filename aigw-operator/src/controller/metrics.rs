//! Reconcile metrics in the Prometheus exposition format.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

/// The outcome label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    result: &'static str,
}

/// Reconcile counters and durations.
#[derive(Clone)]
pub struct Metrics {
    reconciles: Family<Outcome, Counter>,
    duration: Histogram,
    registry: Arc<Registry>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let reconciles = Family::<Outcome, Counter>::default();
        let duration = Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]);
        let mut registry = Registry::with_prefix("aigw_operator");
        registry.register(
            "reconciles",
            "Gateway reconciles by result",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one Gateway reconcile",
            duration.clone(),
        );
        Self {
            reconciles,
            duration,
            registry: Arc::new(registry),
        }
    }
}

impl Metrics {
    /// Records one reconcile.
    pub fn observe(&self, ok: bool, took: Duration) {
        let result = if ok { "success" } else { "error" };
        self.reconciles.get_or_create(&Outcome { result }).inc();
        self.duration.observe(took.as_secs_f64());
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_are_counted_by_result() {
        let m = Metrics::default();
        m.observe(true, Duration::from_millis(20));
        m.observe(false, Duration::from_millis(20));
        m.observe(true, Duration::from_millis(20));
        let text = m.render();
        assert!(
            text.contains("aigw_operator_reconciles_total{result=\"success\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("aigw_operator_reconciles_total{result=\"error\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("aigw_operator_reconcile_duration_seconds_count 3"),
            "{text}"
        );
    }
}
