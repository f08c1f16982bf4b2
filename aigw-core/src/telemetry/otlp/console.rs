//! `OTEL_TRACES_EXPORTER=console`: finished spans as JSON lines on standard output, the
//! upstream's `console` exporter for local debugging. It sits behind the same queue as
//! the OTLP exporter, so a slow terminal drops spans (counted) instead of slowing
//! requests; the batch is written from a blocking thread.

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{KeyValue, Value as OtelValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use serde_json::{Map, Value, json};
use std::io::Write as _;
use std::time::SystemTime;

/// Writes spans to standard output, one JSON object per line.
#[derive(Debug, Default)]
pub(crate) struct ConsoleExporter {
    resource: Map<String, Value>,
}

impl SpanExporter for ConsoleExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut out = String::new();
        for s in &batch {
            out.push_str(&line(s, &self.resource).to_string());
            out.push('\n');
        }
        write_stdout(out).await
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource_map(resource);
    }
}

/// Writes `out` to standard output from a blocking thread (a slow terminal must not
/// hold a runtime worker).
pub(crate) async fn write_stdout(out: String) -> OTelSdkResult {
    tokio::task::spawn_blocking(move || {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush())
    })
    .await
    .map_err(|e| OTelSdkError::InternalFailure(e.to_string()))?
    .map_err(|e| OTelSdkError::InternalFailure(e.to_string()))
}

/// A resource's attributes as a JSON object.
pub(crate) fn resource_map(resource: &Resource) -> Map<String, Value> {
    resource
        .iter()
        .map(|(k, v)| (k.to_string(), value(v)))
        .collect()
}

/// One span in the OTLP/JSON vocabulary (ids in hex, times in Unix nanoseconds).
fn line(s: &SpanData, resource: &Map<String, Value>) -> Value {
    let parent = (s.parent_span_id != opentelemetry::trace::SpanId::INVALID)
        .then(|| s.parent_span_id.to_string());
    let status = match &s.status {
        Status::Unset => json!({"code": "Unset"}),
        Status::Ok => json!({"code": "Ok"}),
        Status::Error { description } => json!({"code": "Error", "message": description}),
    };
    let events: Vec<Value> = s
        .events
        .iter()
        .map(|e| json!({"name": e.name, "timeUnixNano": nanos(e.timestamp), "attributes": attrs(&e.attributes)}))
        .collect();
    json!({
        "resource": resource,
        "scope": s.instrumentation_scope.name(),
        "traceId": s.span_context.trace_id().to_string(),
        "spanId": s.span_context.span_id().to_string(),
        "parentSpanId": parent,
        "name": s.name,
        "kind": kind(&s.span_kind),
        "startTimeUnixNano": nanos(s.start_time),
        "endTimeUnixNano": nanos(s.end_time),
        "attributes": attrs(&s.attributes),
        "events": events,
        "status": status,
    })
}

fn kind(k: &SpanKind) -> &'static str {
    match k {
        SpanKind::Client => "Client",
        SpanKind::Server => "Server",
        SpanKind::Producer => "Producer",
        SpanKind::Consumer => "Consumer",
        SpanKind::Internal => "Internal",
    }
}

fn nanos(t: SystemTime) -> u128 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Attributes as a JSON object.
pub(crate) fn attrs<'a>(kvs: impl IntoIterator<Item = &'a KeyValue>) -> Map<String, Value> {
    kvs.into_iter()
        .map(|kv| (kv.key.to_string(), value(&kv.value)))
        .collect()
}

fn value(v: &OtelValue) -> Value {
    match v {
        OtelValue::Bool(b) => json!(b),
        OtelValue::I64(i) => json!(i),
        OtelValue::F64(f) => json!(f),
        OtelValue::String(s) => json!(s.as_str()),
        OtelValue::Array(a) => match a {
            opentelemetry::Array::Bool(v) => json!(v),
            opentelemetry::Array::I64(v) => json!(v),
            opentelemetry::Array::F64(v) => json!(v),
            opentelemetry::Array::String(v) => {
                json!(v.iter().map(|s| s.as_str()).collect::<Vec<_>>())
            }
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}
