//! The admin listener of `aigw run`: `/health`, `/ready`, `/metrics` and `/memory`.
//!
//! `/metrics` exposes, in one Prometheus text exposition, the GenAI histograms of
//! [`aigw_core::metrics::GenAiMetrics`] (token usage, request duration, time to first
//! token, time per output token, gateway overhead) and the counters this process keeps
//! itself (requests by status, tokens, configuration reloads).
//!
//! `/memory` reports the allocator's own figures, as Envoy's admin `/memory` does: how
//! much the process has allocated against how much the allocator holds resident, which
//! tells memory in use from memory kept for reuse. The binary that sets the global
//! allocator supplies them ([`AdminState::set_memory_probe`]); without it `/memory`
//! answers 404.

use crate::record::RecordSink;
use aigw_core::exchange::ExchangeRecord;
use aigw_core::limits::LimitStats;
pub use aigw_core::memory::{MemoryProbe, MemoryStats};
use aigw_core::metrics::GenAiMetrics;
use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use http::{StatusCode, header};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Readiness and counters shared by the gateway and the admin listener.
#[derive(Debug, Default)]
pub struct AdminState {
    ready: AtomicBool,
    /// Requests by backend, then status: looked up by the record's `&str` backend,
    /// so counting a request allocates nothing once its backend has a row.
    requests: Mutex<BTreeMap<String, BTreeMap<u16, u64>>>,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    genai: GenAiMetrics,
    clients: crate::client_metrics::ClientMetrics,
    rate_limits: OnceLock<Arc<LimitStats>>,
    spending: OnceLock<Arc<aigw_core::budget::Spending>>,
    #[cfg(feature = "mcp")]
    mcp: OnceLock<Arc<aigw_core::mcp::McpMetrics>>,
    memory: OnceLock<MemoryProbe>,
}

impl AdminState {
    /// Sets what `/memory` reads (once; later calls are ignored).
    pub fn set_memory_probe(&self, probe: MemoryProbe) {
        let _ = self.memory.set(probe);
    }

    /// The allocator's figures, if the binary supplied a probe and it answered.
    pub fn memory(&self) -> Option<MemoryStats> {
        self.memory.get().and_then(|probe| probe())
    }

    /// Marks the gateway ready (configuration loaded, listener bound) or not.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Whether the gateway is ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Counts a configuration reload.
    pub fn reloaded(&self, ok: bool) {
        let c = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Exports the rate-limit decisions as `aigw_ratelimit_decisions_total` (the first
    /// call wins).
    pub fn set_rate_limit_stats(&self, stats: Arc<LimitStats>) {
        let _ = self.rate_limits.set(stats);
    }

    /// Exports the spend and budget counters (`aigw_spend_usd_total`, …; the first
    /// call wins).
    pub fn set_spending(&self, spending: Arc<aigw_core::budget::Spending>) {
        let _ = self.spending.set(spending);
    }

    /// Exports the MCP gateway's metrics (the first call wins).
    #[cfg(feature = "mcp")]
    pub fn set_mcp_metrics(&self, metrics: Arc<aigw_core::mcp::McpMetrics>) {
        let _ = self.mcp.set(metrics);
    }

    /// The GenAI histograms, recorded for every finished request.
    pub fn genai(&self) -> &GenAiMetrics {
        &self.genai
    }

    /// Renders the histograms and counters in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        // The registry writes OpenMetrics; its `# UNIT` lines are comments to the
        // Prometheus text parser, and its terminating `# EOF` must not end up in the
        // middle of the exposition.
        let mut exported = self.genai.encode();
        #[cfg(feature = "mcp")]
        if let Some(m) = self.mcp.get() {
            exported.push_str(&m.encode());
        }
        if let Some(s) = self.spending.get() {
            exported.push_str(&s.metrics().encode());
        }
        for line in exported.lines() {
            if line != "# EOF" {
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push_str("# HELP aigw_requests_total Requests finished, by backend and status.\n# TYPE aigw_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for (backend, statuses) in m.iter() {
                for (status, n) in statuses {
                    let _ = writeln!(
                        out,
                        "aigw_requests_total{{backend=\"{}\",status=\"{status}\"}} {n}",
                        escape(backend)
                    );
                }
            }
        }
        let _ = write!(
            out,
            "# HELP aigw_tokens_total Tokens reported by upstreams.\n# TYPE aigw_tokens_total counter\naigw_tokens_total{{type=\"input\"}} {}\naigw_tokens_total{{type=\"output\"}} {}\n",
            self.input_tokens.load(Ordering::Relaxed),
            self.output_tokens.load(Ordering::Relaxed)
        );
        let _ = write!(
            out,
            "# HELP aigw_config_reloads_total Configuration reloads, by result.\n# TYPE aigw_config_reloads_total counter\naigw_config_reloads_total{{result=\"success\"}} {}\naigw_config_reloads_total{{result=\"failure\"}} {}\n",
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed)
        );
        self.clients.render(&mut out);
        if let Some(stats) = self.rate_limits.get() {
            out.push_str("# HELP aigw_ratelimit_decisions_total Rate-limit bucket checks, by decision (store_error: the store failed; store_error_refused: of those, refused because the policy fails closed).\n# TYPE aigw_ratelimit_decisions_total counter\n");
            for (decision, n) in stats.snapshot() {
                let _ = writeln!(
                    out,
                    "aigw_ratelimit_decisions_total{{decision=\"{decision}\"}} {n}"
                );
            }
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

impl RecordSink for Arc<AdminState> {
    fn record(&self, r: &ExchangeRecord) {
        self.genai.record(r);
        self.clients.record(r);
        let backend = r.backend.as_deref().unwrap_or("");
        let status = r.status.map_or(0, |s| s.as_u16());
        if let Ok(mut m) = self.requests.lock() {
            if let Some(statuses) = m.get_mut(backend) {
                *statuses.entry(status).or_default() += 1;
            } else {
                m.entry(backend.to_owned()).or_default().insert(status, 1);
            }
        }
        self.input_tokens
            .fetch_add(r.usage.input.unwrap_or(0), Ordering::Relaxed);
        self.output_tokens
            .fetch_add(r.usage.output.unwrap_or(0), Ordering::Relaxed);
    }
}

/// Fans one record out to several sinks.
pub struct Tee(pub Vec<Arc<dyn RecordSink>>);

impl std::fmt::Debug for Tee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tee").field("sinks", &self.0.len()).finish()
    }
}

impl RecordSink for Tee {
    fn record(&self, record: &ExchangeRecord) {
        for s in &self.0 {
            s.record(record);
        }
    }
}

/// The admin router.
pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/memory", get(memory))
        .with_state(state)
}

async fn memory(State(s): State<Arc<AdminState>>) -> axum::response::Response {
    match s.memory() {
        Some(stats) => axum::Json(stats).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "no allocator statistics in this build\n",
        )
            .into_response(),
    }
}

async fn ready(State(s): State<Arc<AdminState>>) -> impl IntoResponse {
    if s.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(s): State<Arc<AdminState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_reports_the_probe_or_404() {
        use tower::ServiceExt as _;
        let get = |state: Arc<AdminState>| async move {
            let req = http::Request::get("/memory")
                .body(axum::body::Body::empty())
                .unwrap();
            let res = router(state).oneshot(req).await.unwrap();
            let status = res.status();
            let body = axum::body::to_bytes(res.into_body(), 1 << 16)
                .await
                .unwrap();
            (status, String::from_utf8(body.to_vec()).unwrap())
        };
        let state = Arc::new(AdminState::default());
        assert_eq!(get(state.clone()).await.0, StatusCode::NOT_FOUND);
        state.set_memory_probe(|| {
            Some(MemoryStats {
                allocated: 1,
                active: 2,
                metadata: 3,
                resident: 4,
                mapped: 5,
                retained: 6,
            })
        });
        let (status, body) = get(state).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            r#"{"allocated":1,"active":2,"metadata":3,"resident":4,"mapped":5,"retained":6}"#
        );
    }

    #[test]
    fn requests_are_counted_by_backend_then_status() {
        let s = Arc::new(AdminState::default());
        let rec = |backend: Option<&str>, status: u16| ExchangeRecord {
            backend: backend.map(Into::into),
            status: StatusCode::from_u16(status).ok(),
            ..ExchangeRecord::default()
        };
        for (b, st) in [
            (Some("b/two"), 200),
            (Some("a/one"), 502),
            (Some("b/two"), 200),
            (None, 400),
            (Some("a/one"), 200),
        ] {
            s.record(&rec(b, st));
        }
        let out = s.render();
        let lines: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("aigw_requests_total{"))
            .collect();
        assert_eq!(
            lines,
            [
                r#"aigw_requests_total{backend="",status="400"} 1"#,
                r#"aigw_requests_total{backend="a/one",status="200"} 1"#,
                r#"aigw_requests_total{backend="a/one",status="502"} 1"#,
                r#"aigw_requests_total{backend="b/two",status="200"} 2"#,
            ]
        );
    }
}
