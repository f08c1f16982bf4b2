//! `OTEL_METRICS_EXPORTER=console`: the GenAI metrics as JSON lines on standard output
//! every `OTEL_METRIC_EXPORT_INTERVAL`, the upstream's `console` metrics exporter for
//! local debugging. One line per instrument and export, in the OTLP/JSON vocabulary
//! of the console span lines (times in Unix nanoseconds); written from a blocking
//! thread so a slow terminal never holds a runtime worker.

use super::console::{attrs, resource_map, write_stdout};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use serde_json::{Map, Value, json};
use std::time::{Duration, SystemTime};

/// Writes metrics to standard output, one JSON object per instrument per export.
#[derive(Debug, Default)]
pub(crate) struct ConsoleMetricExporter;

impl PushMetricExporter for ConsoleMetricExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let out = lines(metrics);
        if out.is_empty() {
            return Ok(());
        }
        write_stdout(out).await
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

/// Every instrument with data points, one line each.
pub(crate) fn lines(metrics: &ResourceMetrics) -> String {
    let resource = resource_map(metrics.resource());
    let mut out = String::new();
    for scope in metrics.scope_metrics() {
        for m in scope.metrics() {
            if let Some(v) = metric(m, &resource, scope.scope().name()) {
                out.push_str(&v.to_string());
                out.push('\n');
            }
        }
    }
    out
}

fn metric(m: &Metric, resource: &Map<String, Value>, scope: &str) -> Option<Value> {
    let (kind, temporality, points) = match m.data() {
        AggregatedMetrics::F64(d) => data(d, |v| json!(v)),
        AggregatedMetrics::U64(d) => data(d, |v| json!(v)),
        AggregatedMetrics::I64(d) => data(d, |v| json!(v)),
    };
    if points.is_empty() {
        return None;
    }
    Some(json!({
        "resource": resource,
        "scope": scope,
        "name": m.name(),
        "description": m.description(),
        "unit": m.unit(),
        "kind": kind,
        "temporality": temporality.map(|t| format!("{t:?}")),
        "dataPoints": points,
    }))
}

type Points = (&'static str, Option<Temporality>, Vec<Value>);

fn data<T: Copy>(d: &MetricData<T>, num: impl Fn(T) -> Value) -> Points {
    match d {
        MetricData::Histogram(h) => {
            let (start, time) = (nanos(h.start_time()), nanos(h.time()));
            let points = h
                .data_points()
                .map(|p| {
                    json!({
                        "attributes": attrs(p.attributes()),
                        "startTimeUnixNano": start,
                        "timeUnixNano": time,
                        "count": p.count(),
                        "sum": num(p.sum()),
                        "min": p.min().map(&num),
                        "max": p.max().map(&num),
                        "explicitBounds": p.bounds().collect::<Vec<_>>(),
                        "bucketCounts": p.bucket_counts().collect::<Vec<_>>(),
                    })
                })
                .collect();
            ("histogram", Some(h.temporality()), points)
        }
        MetricData::Sum(s) => {
            let (start, time) = (nanos(s.start_time()), nanos(s.time()));
            let points = s
                .data_points()
                .map(|p| {
                    json!({
                        "attributes": attrs(p.attributes()),
                        "startTimeUnixNano": start,
                        "timeUnixNano": time,
                        "value": num(p.value()),
                    })
                })
                .collect();
            ("sum", Some(s.temporality()), points)
        }
        MetricData::Gauge(g) => {
            let time = nanos(g.time());
            let points = g
                .data_points()
                .map(|p| {
                    json!({
                        "attributes": attrs(p.attributes()),
                        "timeUnixNano": time,
                        "value": num(p.value()),
                    })
                })
                .collect();
            ("gauge", None, points)
        }
        MetricData::ExponentialHistogram(h) => {
            let time = nanos(h.time());
            let points = h
                .data_points()
                .map(|p| {
                    json!({
                        "attributes": attrs(p.attributes()),
                        "timeUnixNano": time,
                        "count": p.count(),
                        "sum": num(p.sum()),
                    })
                })
                .collect();
            ("exponential_histogram", Some(h.temporality()), points)
        }
    }
}

fn nanos(t: SystemTime) -> u128 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::KeyValue;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
    use std::sync::{Arc, Mutex};

    /// Keeps the lines the console exporter would write.
    #[derive(Debug, Clone, Default)]
    struct Captured(Arc<Mutex<String>>);

    impl PushMetricExporter for Captured {
        async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
            self.0.lock().unwrap().push_str(&lines(metrics));
            Ok(())
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
            Ok(())
        }
        fn temporality(&self) -> Temporality {
            Temporality::Cumulative
        }
    }

    /// The line of each instrument carries its name, unit, attributes and buckets.
    #[test]
    fn one_line_per_instrument_with_its_points() {
        let captured = Captured::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(captured.clone()).build())
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name("gw")
                    .build(),
            )
            .build();
        let meter = provider.meter(super::super::SCOPE);
        let h = meter
            .f64_histogram("gen_ai.server.request.duration")
            .with_unit("s")
            .with_boundaries(vec![0.1, 1.0])
            .build();
        h.record(0.5, &[KeyValue::new("tenant.id", "acme")]);
        h.record(2.0, &[KeyValue::new("tenant.id", "acme")]);
        provider.force_flush().unwrap();
        let text = captured.0.lock().unwrap().clone();
        let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line["name"], "gen_ai.server.request.duration");
        assert_eq!(line["unit"], "s");
        assert_eq!(line["kind"], "histogram");
        assert_eq!(line["temporality"], "Cumulative");
        assert_eq!(line["scope"], "envoyproxy/ai-gateway");
        assert_eq!(line["resource"]["service.name"], "gw");
        let p = &line["dataPoints"][0];
        assert_eq!(p["attributes"]["tenant.id"], "acme");
        assert_eq!(p["count"], 2);
        assert_eq!(p["sum"], 2.5);
        assert_eq!(p["bucketCounts"], json!([0, 1, 1]));
        let _ = provider.shutdown();
    }
}
