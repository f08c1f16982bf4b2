//! The GenAI metrics every packaging exports.
//!
//! The four histograms of the upstream gateway (OpenTelemetry GenAI semantic
//! conventions), with the same attribute vocabulary and bucket boundaries, so existing
//! dashboards and alerts keep working, plus one histogram of our own: the gateway's
//! overhead per request (time spent in the gateway rather than waiting on upstreams).
//!
//! Prometheus names replace dots with underscores, and second-valued histograms carry
//! the `_seconds` unit suffix (as OpenTelemetry's Prometheus exporter writes them).

use crate::exchange::ExchangeRecord;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

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
/// Gateway overhead bucket boundaries (seconds): 5 µs to ~80 ms.
pub const OVERHEAD_BUCKETS: [f64; 15] = [
    0.000005, 0.00001, 0.00002, 0.00004, 0.00008, 0.00016, 0.00032, 0.00064, 0.00128, 0.00256,
    0.00512, 0.01024, 0.02048, 0.04096, 0.08192,
];

type Labels = Vec<(&'static str, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn token_histogram() -> Histogram {
    Histogram::new(TOKEN_USAGE_BUCKETS)
}
fn duration_histogram() -> Histogram {
    Histogram::new(REQUEST_DURATION_BUCKETS)
}
fn ttft_histogram() -> Histogram {
    Histogram::new(TIME_TO_FIRST_TOKEN_BUCKETS)
}
fn tpot_histogram() -> Histogram {
    Histogram::new(TIME_PER_OUTPUT_TOKEN_BUCKETS)
}
fn overhead_histogram() -> Histogram {
    Histogram::new(OVERHEAD_BUCKETS)
}

/// The GenAI metrics registry. Cheap to share (`Arc`); recording takes no global lock
/// beyond the label family's read lock once a label set exists.
#[derive(Debug)]
pub struct GenAiMetrics {
    registry: Registry,
    token_usage: HistogramFamily,
    request_duration: HistogramFamily,
    time_to_first_token: HistogramFamily,
    time_per_output_token: HistogramFamily,
    overhead: HistogramFamily,
}

impl Default for GenAiMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl GenAiMetrics {
    /// Creates and registers the metrics.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let token_usage = HistogramFamily::new_with_constructor(token_histogram as fn() -> _);
        let request_duration =
            HistogramFamily::new_with_constructor(duration_histogram as fn() -> _);
        let time_to_first_token =
            HistogramFamily::new_with_constructor(ttft_histogram as fn() -> _);
        let time_per_output_token =
            HistogramFamily::new_with_constructor(tpot_histogram as fn() -> _);
        let overhead = HistogramFamily::new_with_constructor(overhead_histogram as fn() -> _);
        registry.register(
            "gen_ai_client_token_usage",
            "Number of tokens processed.",
            token_usage.clone(),
        );
        registry.register_with_unit(
            "gen_ai_server_request_duration",
            "Generative AI server request duration such as time-to-last byte or last output token.",
            Unit::Seconds,
            request_duration.clone(),
        );
        registry.register_with_unit(
            "gen_ai_server_time_to_first_token",
            "Time to receive first token in streaming responses.",
            Unit::Seconds,
            time_to_first_token.clone(),
        );
        registry.register_with_unit(
            "gen_ai_server_time_per_output_token",
            "Time per output token generated after the first token for successful responses.",
            Unit::Seconds,
            time_per_output_token.clone(),
        );
        registry.register_with_unit(
            "aigw_gateway_overhead",
            "Time a request spent in the gateway itself (total latency minus upstream wait).",
            Unit::Seconds,
            overhead.clone(),
        );
        Self {
            registry,
            token_usage,
            request_duration,
            time_to_first_token,
            time_per_output_token,
            overhead,
        }
    }

    /// Records one finished exchange.
    pub fn record(&self, r: &ExchangeRecord) {
        let Some(endpoint) = r.endpoint else {
            return;
        };
        let mut labels: Labels = Vec::with_capacity(6);
        labels.push((
            "gen_ai_operation_name",
            endpoint.operation_name().to_owned(),
        ));
        labels.push((
            "gen_ai_provider_name",
            r.provider.unwrap_or("unknown").to_owned(),
        ));
        labels.push(("gen_ai_original_model", r.request_model.clone()));
        labels.push((
            "gen_ai_request_model",
            r.effective_model
                .clone()
                .unwrap_or_else(|| r.request_model.clone()),
        ));
        labels.push((
            "gen_ai_response_model",
            r.response_model.clone().unwrap_or_default(),
        ));
        let failed = r.error.is_some() || r.status.is_some_and(|s| !s.is_success());
        if failed {
            labels.push(("error_type", "_OTHER".to_owned()));
        }

        if let Some(latency) = r.latency {
            self.request_duration
                .get_or_create(&labels)
                .observe(latency.as_secs_f64());
            if let Some(wait) = r.upstream_wait {
                let overhead = latency.saturating_sub(wait);
                self.overhead
                    .get_or_create(&labels)
                    .observe(overhead.as_secs_f64());
            }
        }

        if failed {
            return;
        }
        if r.stream
            && let Some(ttft) = r.time_to_first_byte
        {
            self.time_to_first_token
                .get_or_create(&labels)
                .observe(ttft.as_secs_f64());
            if let (Some(latency), Some(output)) = (r.latency, r.usage.output)
                && output > 1
            {
                let per_token = latency.saturating_sub(ttft).as_secs_f64() / (output - 1) as f64;
                self.time_per_output_token
                    .get_or_create(&labels)
                    .observe(per_token);
            }
        }
        let u = &r.usage;
        for (kind, value) in [
            ("input", u.input),
            ("output", u.output),
            ("cached_input", u.cached_input),
            ("cache_creation_input", u.cache_creation_input),
            ("reasoning", u.reasoning),
        ] {
            if let Some(v) = value {
                let mut l = labels.clone();
                l.push(("gen_ai_token_type", kind.to_owned()));
                self.token_usage.get_or_create(&l).observe(v as f64);
            }
        }
    }

    /// Renders the Prometheus text exposition format (OpenMetrics flavour, ending in
    /// `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Endpoint;
    use crate::usage::TokenUsage;
    use std::time::Duration;

    fn record() -> ExchangeRecord {
        ExchangeRecord {
            endpoint: Some(Endpoint::ChatCompletions),
            provider: Some("aws.bedrock"),
            request_model: "gpt-4o".into(),
            effective_model: Some("us.amazon.nova-micro-v1:0".into()),
            response_model: Some("us.amazon.nova-micro-v1:0".into()),
            stream: true,
            status: Some(http::StatusCode::OK),
            usage: TokenUsage {
                input: Some(10),
                output: Some(21),
                total: Some(31),
                ..Default::default()
            },
            latency: Some(Duration::from_millis(300)),
            time_to_first_byte: Some(Duration::from_millis(100)),
            upstream_wait: Some(Duration::from_micros(299_950)),
            ..Default::default()
        }
    }

    #[test]
    fn records_all_four_histograms_with_upstream_names_and_labels() {
        let m = GenAiMetrics::new();
        m.record(&record());
        let text = m.encode();
        for needle in [
            "gen_ai_client_token_usage_bucket{",
            "gen_ai_token_type=\"input\"",
            "gen_ai_token_type=\"output\"",
            "gen_ai_server_request_duration_seconds_count{",
            "gen_ai_server_time_to_first_token_seconds_count{",
            "gen_ai_server_time_per_output_token_seconds_sum{",
            "aigw_gateway_overhead_seconds_count{",
            "gen_ai_operation_name=\"chat\"",
            "gen_ai_provider_name=\"aws.bedrock\"",
            "gen_ai_original_model=\"gpt-4o\"",
            "gen_ai_request_model=\"us.amazon.nova-micro-v1:0\"",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        // TPOT = (0.3 - 0.1) / 20 = 0.01 s
        assert!(
            text.contains("gen_ai_server_time_per_output_token_seconds_sum{")
                && text.lines().any(|l| l
                    .starts_with("gen_ai_server_time_per_output_token_seconds_sum")
                    && l.ends_with(" 0.01")),
            "{text}"
        );
        // token buckets match the upstream boundaries
        assert!(text.contains("le=\"67108864.0\""), "{text}");
    }

    #[test]
    fn failures_carry_error_type_and_no_token_samples() {
        let m = GenAiMetrics::new();
        let mut r = record();
        r.status = Some(http::StatusCode::BAD_GATEWAY);
        r.error = Some("upstream unavailable".into());
        m.record(&r);
        let text = m.encode();
        assert!(text.contains("error_type=\"_OTHER\""), "{text}");
        assert!(
            !text.contains("gen_ai_client_token_usage_bucket{"),
            "{text}"
        );
    }

    /// The shipped Grafana dashboard must only query series this registry exports.
    #[test]
    fn grafana_dashboard_queries_exported_series() {
        let dashboard = include_str!("../../deploy/grafana/aigw-genai.json");
        let m = GenAiMetrics::new();
        m.record(&record());
        let text = m.encode();
        let re = regex::Regex::new(r"(gen_ai_[a-z_]+|aigw_[a-z_]+)").unwrap();
        let mut checked = 0;
        for name in re.find_iter(dashboard).map(|m| m.as_str()) {
            if name.ends_with("_bucket") || name.ends_with("_sum") || name.ends_with("_count") {
                assert!(
                    text.contains(&format!("{name}{{")),
                    "dashboard queries {name}, not exported"
                );
                checked += 1;
            }
        }
        assert!(checked >= 8, "{checked}");
    }
}
