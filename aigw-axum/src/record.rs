//! Where finished exchanges go: the extension point for access logs and metrics.

use aigw_core::exchange::ExchangeRecord;

/// Receives one [`ExchangeRecord`] per finished request (success, error or client
/// hang-up). Called on the request's task; implementations must not block.
pub trait RecordSink: Send + Sync + 'static {
    /// Consumes a finished exchange.
    fn record(&self, record: &ExchangeRecord);
}

/// Writes one structured `tracing` event per request, with no prompt text.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl RecordSink for TracingSink {
    fn record(&self, r: &ExchangeRecord) {
        tracing::info!(
            target: "aigw::access",
            endpoint = r.endpoint.map(|e| e.operation_name()),
            client = r.client.as_deref(),
            route = r.route.as_deref(),
            backend = r.backend.as_deref(),
            provider = r.provider,
            request_model = %r.request_model,
            response_model = r.response_model.as_deref(),
            status = r.status.map(|s| s.as_u16()),
            stream = r.stream,
            attempts = r.attempts,
            input_tokens = r.usage.input,
            output_tokens = r.usage.output,
            total_tokens = r.usage.total_or_sum(),
            latency_ms = r.latency.map(|d| d.as_secs_f64() * 1e3),
            ttfb_ms = r.time_to_first_byte.map(|d| d.as_secs_f64() * 1e3),
            error = r.error.as_deref(),
            "request"
        );
    }
}

impl<F> RecordSink for F
where
    F: Fn(&ExchangeRecord) + Send + Sync + 'static,
{
    fn record(&self, record: &ExchangeRecord) {
        self(record);
    }
}
