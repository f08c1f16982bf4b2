//! GenAI metrics (the OpenTelemetry GenAI semantic conventions, Prometheus names), the
//! same series the standalone gateway exports.

use aigw_core::exchange::ExchangeRecord;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;
type Hist = Family<Labels, Histogram, fn() -> Histogram>;

/// The processor's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    tokens: Hist,
    duration: Hist,
    ttft: Hist,
    tpot: Hist,
    grpc_messages: Counter,
}

fn token_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 4.0, 14))
}
fn duration_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}
fn ttft_buckets() -> Histogram {
    Histogram::new([
        0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
        60.0,
    ])
}
fn tpot_buckets() -> Histogram {
    Histogram::new([
        0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let tokens: Hist = Family::new_with_constructor(token_buckets);
        let duration: Hist = Family::new_with_constructor(duration_buckets);
        let ttft: Hist = Family::new_with_constructor(ttft_buckets);
        let tpot: Hist = Family::new_with_constructor(tpot_buckets);
        let grpc_messages = Counter::default();
        registry.register(
            "gen_ai_client_token_usage",
            "Number of tokens processed (unit: token)",
            tokens.clone(),
        );
        registry.register(
            "gen_ai_server_request_duration",
            "Generative AI server request duration (unit: s)",
            duration.clone(),
        );
        registry.register(
            "gen_ai_server_time_to_first_token",
            "Time to receive the first token for streaming requests (unit: s)",
            ttft.clone(),
        );
        registry.register(
            "gen_ai_server_time_per_output_token",
            "Time per output token after the first, for streaming requests (unit: s)",
            tpot.clone(),
        );
        registry.register(
            "aigw_extproc_grpc_messages",
            "ext_proc messages processed",
            grpc_messages.clone(),
        );
        Self {
            registry,
            tokens,
            duration,
            ttft,
            tpot,
            grpc_messages,
        }
    }
}

impl Metrics {
    /// Counts one processed ext_proc message.
    pub fn message(&self) {
        self.grpc_messages.inc();
    }

    /// Records a finished request.
    pub fn record(&self, r: &ExchangeRecord) {
        let mut base: Labels = vec![
            (
                "gen_ai_operation_name",
                r.endpoint
                    .map_or("unknown", |e| e.operation_name())
                    .to_owned(),
            ),
            (
                "gen_ai_provider_name",
                r.provider.unwrap_or("unknown").to_owned(),
            ),
            ("gen_ai_original_model", r.request_model.clone()),
            (
                "gen_ai_request_model",
                r.effective_model
                    .clone()
                    .unwrap_or_else(|| r.request_model.clone()),
            ),
            (
                "gen_ai_response_model",
                r.response_model
                    .clone()
                    .or_else(|| r.effective_model.clone())
                    .unwrap_or_else(|| r.request_model.clone()),
            ),
        ];
        let failed = r.error.is_some() || r.status.is_some_and(|s| !s.is_success());
        let mut dur_labels = base.clone();
        if failed {
            dur_labels.push(("error_type", "_OTHER".to_owned()));
        }
        if let Some(l) = r.latency {
            self.duration
                .get_or_create(&dur_labels)
                .observe(l.as_secs_f64());
        }
        if failed {
            return;
        }
        let u = &r.usage;
        for (kind, v) in [
            ("input", u.input),
            ("output", u.output),
            ("cached_input", u.cached_input),
            ("cache_creation_input", u.cache_creation_input),
        ] {
            if let Some(v) = v {
                base.push(("gen_ai_token_type", kind.to_owned()));
                self.tokens.get_or_create(&base).observe(v as f64);
                base.pop();
            }
        }
        if r.stream
            && let Some(t) = r.time_to_first_byte
        {
            self.ttft.get_or_create(&base).observe(t.as_secs_f64());
            if let (Some(total), Some(out)) = (r.latency, u.output)
                && out > 1
            {
                let per = total.saturating_sub(t).as_secs_f64() / (out - 1) as f64;
                self.tpot.get_or_create(&base).observe(per);
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
