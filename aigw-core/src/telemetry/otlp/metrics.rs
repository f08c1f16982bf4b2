//! The GenAI metrics over OTLP: the same measurements as the Prometheus registry
//! ([`crate::metrics::GenAiMetrics`]), with the upstream's instrument names, units,
//! bucket boundaries and attribute names, pushed every `OTEL_METRIC_EXPORT_INTERVAL`.

use super::{OtlpError, SCOPE, headers, metadata};
use crate::telemetry::config::{OtlpTarget, Protocol, TelemetryConfig};
use crate::telemetry::measure::{
    Measurements, MetricsObserver, REQUEST_DURATION_BUCKETS, TIME_PER_OUTPUT_TOKEN_BUCKETS,
    TIME_TO_FIRST_TOKEN_BUCKETS, TOKEN_TYPES, TOKEN_USAGE_BUCKETS,
};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Histogram, MeterProvider as _};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader;

/// The OTLP instruments.
#[derive(Clone)]
pub(crate) struct OtlpMetrics {
    provider: SdkMeterProvider,
    tokens: Histogram<f64>,
    duration: Histogram<f64>,
    ttft: Histogram<f64>,
    tpot: Histogram<f64>,
}

impl OtlpMetrics {
    pub(crate) fn start(
        config: &TelemetryConfig,
        target: &OtlpTarget,
        resource: Resource,
    ) -> Result<Self, OtlpError> {
        let built = match target.protocol {
            Protocol::Grpc => opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(target.endpoint.clone())
                .with_timeout(target.timeout)
                .with_metadata(metadata(target))
                .build(),
            Protocol::HttpProtobuf | Protocol::HttpJson => {
                opentelemetry_otlp::MetricExporter::builder()
                    .with_http()
                    .with_http_client(super::http_client(target, "metrics")?)
                    .with_protocol(super::http_protocol(target.protocol))
                    .with_endpoint(target.endpoint.clone())
                    .with_timeout(target.timeout)
                    .with_headers(headers(target))
                    .build()
            }
        };
        let exporter = built.map_err(|e| OtlpError {
            signal: "metrics",
            reason: e.to_string(),
        })?;
        Ok(Self::with_exporter(config, exporter, resource))
    }

    /// The instruments, pushed to `exporter` every `OTEL_METRIC_EXPORT_INTERVAL`.
    pub(crate) fn with_exporter<E: PushMetricExporter>(
        config: &TelemetryConfig,
        exporter: E,
        resource: Resource,
    ) -> Self {
        let reader = PeriodicReader::builder(exporter, opentelemetry_sdk::runtime::Tokio)
            .with_interval(config.metric_export_interval)
            .build();
        let provider = SdkMeterProvider::builder()
            .with_reader(reader)
            .with_resource(resource)
            .build();
        let meter = provider.meter(SCOPE);
        let seconds = |name: &'static str, desc: &'static str, b: &[f64]| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(desc)
                .with_boundaries(b.to_vec())
                .build()
        };
        Self {
            tokens: meter
                .f64_histogram("gen_ai.client.token.usage")
                .with_unit("token")
                .with_description("Number of tokens processed.")
                .with_boundaries(TOKEN_USAGE_BUCKETS.to_vec())
                .build(),
            duration: seconds(
                "gen_ai.server.request.duration",
                "Generative AI server request duration such as time-to-last byte or last output token.",
                &REQUEST_DURATION_BUCKETS,
            ),
            ttft: seconds(
                "gen_ai.server.time_to_first_token",
                "Time to receive first token in streaming responses.",
                &TIME_TO_FIRST_TOKEN_BUCKETS,
            ),
            tpot: seconds(
                "gen_ai.server.time_per_output_token",
                "Time per output token generated after the first token for successful responses.",
                &TIME_PER_OUTPUT_TOKEN_BUCKETS,
            ),
            provider,
        }
    }

    pub(crate) async fn shutdown(self) {
        let provider = self.provider;
        // The SDK's shutdown blocks on a final export: keep it off the runtime's threads.
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    }
}

impl MetricsObserver for OtlpMetrics {
    fn observe(&self, m: &Measurements<'_>) {
        let mut attrs = vec![
            KeyValue::new("gen_ai.operation.name", m.operation),
            KeyValue::new("gen_ai.provider.name", m.provider),
            KeyValue::new("gen_ai.original.model", m.original_model.to_owned()),
            KeyValue::new("gen_ai.request.model", m.request_model.to_owned()),
            KeyValue::new("gen_ai.response.model", m.response_model.to_owned()),
        ];
        if m.failed {
            attrs.push(KeyValue::new("error.type", "_OTHER"));
        }
        for (attr, value) in m.header_labels {
            attrs.push(KeyValue::new(attr.clone(), value.clone()));
        }
        if let Some(d) = m.duration {
            self.duration.record(d, &attrs);
        }
        if let Some(t) = m.ttft {
            self.ttft.record(t, &attrs);
        }
        if let Some(t) = m.tpot {
            self.tpot.record(t, &attrs);
        }
        for (kind, v) in TOKEN_TYPES.iter().zip(m.tokens) {
            if let Some(v) = v {
                let mut a = attrs.clone();
                a.push(KeyValue::new("gen_ai.token.type", *kind));
                self.tokens.record(v as f64, &a);
            }
        }
    }
}
