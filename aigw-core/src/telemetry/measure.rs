//! What one finished exchange measured, as every exporter of the GenAI metrics sees it
//! (the Prometheus registry of [`crate::metrics`] and the OTLP mirror of
//! `telemetry::otlp`), and the bucket boundaries both use. It names no exchange type,
//! so the exporters need not depend on the request path that feeds them.

/// `gen_ai.client.token.usage` bucket boundaries (tokens).
pub const TOKEN_USAGE_BUCKETS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// `gen_ai.server.request.duration` bucket boundaries (seconds).
pub const REQUEST_DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// `gen_ai.server.time_to_first_token` bucket boundaries (seconds).
pub const TIME_TO_FIRST_TOKEN_BUCKETS: [f64; 16] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// `gen_ai.server.time_per_output_token` bucket boundaries (seconds).
pub const TIME_PER_OUTPUT_TOKEN_BUCKETS: [f64; 13] = [
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
];

/// The token types of `gen_ai.client.token.usage`, in [`Series::tokens`] order.
pub const TOKEN_TYPES: [&str; 5] = [
    "input",
    "output",
    "cached_input",
    "cache_creation_input",
    "reasoning",
];

/// One finished exchange's measurements, as every exporter of the GenAI metrics sees
/// them (the Prometheus registry here, the OTLP mirror of `telemetry::otlp`).
#[derive(Debug, Clone)]
pub struct Measurements<'a> {
    /// `gen_ai.operation.name`.
    pub operation: &'static str,
    /// `gen_ai.provider.name`.
    pub provider: &'static str,
    /// `gen_ai.original.model`.
    pub original_model: &'a str,
    /// `gen_ai.request.model` (after `modelNameOverride`).
    pub request_model: &'a str,
    /// `gen_ai.response.model`.
    pub response_model: &'a str,
    /// Whether the request failed (`error.type=_OTHER`).
    pub failed: bool,
    /// `gen_ai.server.request.duration`, seconds.
    pub duration: Option<f64>,
    /// The gateway's own time, seconds.
    pub overhead: Option<f64>,
    /// `gen_ai.server.time_to_first_token`, seconds (successful streams).
    pub ttft: Option<f64>,
    /// `gen_ai.server.time_per_output_token`, seconds (successful streams).
    pub tpot: Option<f64>,
    /// `gen_ai.client.token.usage` by [`TOKEN_TYPES`] (successes only).
    pub tokens: [Option<u64>; 5],
    /// The request's header-mapped attributes
    /// (`OTEL_AIGW_METRICS_REQUEST_HEADER_ATTRIBUTES`), `(attribute, value)`, values
    /// already bounded ([`super::labels::bounded`]).
    pub header_labels: &'a [(String, String)],
}

/// Receives every record's measurements alongside the Prometheus registry.
pub trait MetricsObserver: Send + Sync {
    /// One finished exchange.
    fn observe(&self, m: &Measurements<'_>);
}
