//! MCP metrics (upstream's `mcp.request.duration` and `mcp.method.count`, in Prometheus
//! form): per MCP method, backend and tool, with the outcome; backend failures during
//! fan-out counted per backend.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::fmt;

type Labels = Vec<(&'static str, String)>;

/// Request duration buckets (seconds): 1 ms to ~2 min (tool calls can be long).
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0,
];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The MCP gateway's metrics; one per process, shared by every configuration generation.
pub struct McpMetrics {
    registry: Registry,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    requests: Family<Labels, Counter>,
    backend_errors: Family<Labels, Counter>,
}

impl fmt::Debug for McpMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpMetrics").finish_non_exhaustive()
    }
}

impl Default for McpMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let duration = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
            histogram as fn() -> Histogram,
        );
        let requests = Family::<Labels, Counter>::default();
        let backend_errors = Family::<Labels, Counter>::default();
        registry.register_with_unit(
            "mcp_request_duration",
            "MCP requests served, by MCP method, backend, tool and status",
            Unit::Seconds,
            duration.clone(),
        );
        registry.register(
            "mcp_method_count",
            "MCP requests served, by MCP method, backend, tool and status",
            requests.clone(),
        );
        registry.register(
            "mcp_backend_errors",
            "MCP backends that failed during a fan-out (initialize, lists) and were left out",
            backend_errors.clone(),
        );
        Self {
            registry,
            duration,
            requests,
            backend_errors,
        }
    }
}

impl McpMetrics {
    /// Records one finished request.
    pub(crate) fn request(&self, method: &str, backend: &str, tool: &str, ok: bool, seconds: f64) {
        let labels: Labels = vec![
            ("mcp_method_name", method.to_string()),
            ("mcp_backend", backend.to_string()),
            ("mcp_tool_name", tool.to_string()),
            ("status", if ok { "success" } else { "error" }.to_string()),
        ];
        self.duration.get_or_create(&labels).observe(seconds);
        self.requests.get_or_create(&labels).inc();
    }

    /// Counts a backend left out of a fan-out.
    pub(crate) fn backend_error(&self, method: &str, backend: &str) {
        let labels: Labels = vec![
            ("mcp_method_name", method.to_string()),
            ("mcp_backend", backend.to_string()),
        ];
        self.backend_errors.get_or_create(&labels).inc();
    }

    /// The Prometheus text exposition (OpenMetrics flavour, ending in `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_names() {
        let m = McpMetrics::default();
        m.request("tools/call", "gh", "list", true, 0.02);
        m.backend_error("tools/list", "jira");
        let t = m.encode();
        assert!(t.contains(r#"mcp_method_count_total{mcp_method_name="tools/call",mcp_backend="gh",mcp_tool_name="list",status="success"} 1"#), "{t}");
        assert!(t.contains("mcp_request_duration_seconds_bucket"), "{t}");
        assert!(
            t.contains(
                r#"mcp_backend_errors_total{mcp_method_name="tools/list",mcp_backend="jira"} 1"#
            ),
            "{t}"
        );
    }
}
