//! Metrics: the GenAI series shared with the standalone gateway
//! ([`aigw_core::metrics::GenAiMetrics`]), the rate-limit decisions, plus processor
//! counters for `/stats`.

use aigw_core::exchange::ExchangeRecord;
use aigw_core::limits::LimitStats;
use aigw_core::metrics::GenAiMetrics;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The processor's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    genai: GenAiMetrics,
    messages: AtomicU64,
    requests: AtomicU64,
    rate_limits: OnceLock<Arc<LimitStats>>,
    mcp: OnceLock<Arc<aigw_core::mcp::McpMetrics>>,
    spending: OnceLock<Arc<aigw_core::budget::Spending>>,
}

impl Metrics {
    /// Counts one processed ext_proc message.
    pub fn message(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
    }

    /// The GenAI series (to mirror them over OTLP).
    pub fn genai(&self) -> &GenAiMetrics {
        &self.genai
    }

    /// Records a finished request.
    pub fn record(&self, r: &ExchangeRecord) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.genai.record(r);
    }

    /// Exports the rate-limit decisions as `aigw_ratelimit_decisions_total{decision}`
    /// (the first call wins: the stats live as long as the process).
    pub fn set_rate_limit_stats(&self, stats: Arc<LimitStats>) {
        let _ = self.rate_limits.set(stats);
    }

    /// ext_proc messages processed so far (both filters).
    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }

    /// Exports the MCP listener's metrics (the first call wins).
    pub fn set_mcp_metrics(&self, metrics: Arc<aigw_core::mcp::McpMetrics>) {
        let _ = self.mcp.set(metrics);
    }

    /// Exports the spend and budget counters (`aigw_spend_usd_total`, …; the first call
    /// wins).
    pub fn set_spending(&self, spending: Arc<aigw_core::budget::Spending>) {
        let _ = self.spending.set(spending);
    }

    /// Requests finished so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The OpenMetrics text exposition: the GenAI metrics, then the rate-limit
    /// decisions when they are exported.
    pub fn encode(&self) -> String {
        let mut genai = self.genai.encode();
        if let Some(m) = self.mcp.get() {
            // One exposition: a single `# EOF`, at the end.
            genai.truncate(genai.trim_end().trim_end_matches("# EOF").len());
            genai.push_str(&m.encode());
        }
        if let Some(s) = self.spending.get() {
            // Without its own `# EOF`, before the exposition's.
            genai.truncate(genai.trim_end().trim_end_matches("# EOF").len());
            genai.push_str(&s.metrics().encode());
            genai.push_str("# EOF\n");
        }
        let Some(stats) = self.rate_limits.get() else {
            return genai;
        };
        // The family goes before the registry's terminating `# EOF`. OpenMetrics names
        // a counter family without its `_total` suffix; the samples carry it, so the
        // series is the same `aigw_ratelimit_decisions_total` as `aigw run` exports.
        let body = genai
            .strip_suffix("# EOF\n")
            .unwrap_or_else(|| genai.trim_end_matches("# EOF"));
        let mut out = String::with_capacity(body.len() + 512);
        out.push_str(body);
        out.push_str("# HELP aigw_ratelimit_decisions Rate-limit bucket checks, by decision (store_error: the store failed; store_error_refused: of those, refused because the policy fails closed).\n# TYPE aigw_ratelimit_decisions counter\n");
        for (decision, n) in stats.snapshot() {
            let _ = writeln!(
                out,
                "aigw_ratelimit_decisions_total{{decision=\"{decision}\"}} {n}"
            );
        }
        out.push_str("# EOF\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_decisions_come_before_eof() {
        let m = Metrics::default();
        assert!(!m.encode().contains("aigw_ratelimit_decisions"));
        let stats = Arc::new(LimitStats::default());
        stats.over_limit.fetch_add(2, Ordering::Relaxed);
        m.set_rate_limit_stats(stats);
        let text = m.encode();
        assert!(
            text.contains("aigw_ratelimit_decisions_total{decision=\"over_limit\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("aigw_ratelimit_decisions_total{decision=\"ok\"} 0\n"));
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    }
}
