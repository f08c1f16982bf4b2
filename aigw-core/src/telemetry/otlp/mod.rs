//! OTLP export (feature `otlp`): spans through the OpenTelemetry SDK and
//! `opentelemetry-otlp` (gRPC over tonic, HTTP/protobuf over hyper), batched by a queue
//! that never blocks the request path.
//!
//! The SDK's own batch processor neither reports how many spans it dropped nor drives
//! exporters that need the Tokio runtime from its thread, so the queue here is ours:
//! `on_end` is a `try_send` into a bounded channel (`OTEL_BSP_MAX_QUEUE_SIZE`); a full
//! queue drops the span and counts it ([`dropped_spans`], exported as
//! `aigw_telemetry_spans_dropped_total`); a task on the runtime exports batches of
//! `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` every `OTEL_BSP_SCHEDULE_DELAY` within
//! `OTEL_BSP_EXPORT_TIMEOUT`.

mod console;
mod console_metrics;
mod metrics;

use super::attr::{AttrValue, Attrs, SpanKind, SpanStatus};
use super::config::{OtlpTarget, Protocol, SemConv, TelemetryConfig};
use super::{LiveSpan, SpanContext, SpanEnd, SpanSink, SpanStart, Telemetry};
use opentelemetry::trace::{
    Span as _, SpanContext as OtelContext, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    Tracer as _,
};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    SdkTracer, SdkTracerProvider, SpanData, SpanExporter, SpanProcessor,
};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The instrumentation scope, as the upstream names it.
pub const SCOPE: &str = "envoyproxy/ai-gateway";

static DROPPED: AtomicU64 = AtomicU64::new(0);
static EXPORT_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Spans dropped because the export queue was full, since the process started.
pub fn dropped_spans() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Span batches the exporter failed to deliver, since the process started.
pub fn failed_exports() -> u64 {
    EXPORT_FAILURES.load(Ordering::Relaxed)
}

/// Why the pipeline could not be built.
#[derive(Debug, thiserror::Error)]
#[error("OTLP {signal} exporter: {reason}")]
pub struct OtlpError {
    /// `traces` or `metrics`.
    pub signal: &'static str,
    /// What failed.
    pub reason: String,
}

/// The running export pipeline; shut it down to flush what is queued.
pub struct Pipeline {
    telemetry: Telemetry,
    traces: Option<(SdkTracerProvider, mpsc::Sender<Command>)>,
    metrics: Option<metrics::OtlpMetrics>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("traces", &self.traces.is_some())
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl Pipeline {
    /// Builds the exporters `config` asks for. Call inside a Tokio runtime. With no
    /// endpoint configured this is a disabled handle and nothing runs.
    ///
    /// # Errors
    /// When an exporter cannot be built.
    pub fn start(config: &TelemetryConfig) -> Result<Self, OtlpError> {
        let resource = resource(config);
        let provider = match (&config.traces, config.console_traces) {
            (Some(target), _) => Some(tracer_provider(
                config,
                span_exporter(target)?,
                resource.clone(),
            )),
            (None, true) => Some(tracer_provider(
                config,
                console::ConsoleExporter::default(),
                resource.clone(),
            )),
            (None, false) => None,
        };
        let (telemetry, traces) = match provider {
            Some((provider, control)) => {
                let sink = OtelSink {
                    tracer: opentelemetry::trace::TracerProvider::tracer(&provider, SCOPE),
                };
                (
                    Telemetry::new(config, Some(Arc::new(sink))),
                    Some((provider, control)),
                )
            }
            None => (Telemetry::new(config, None), None),
        };
        let metrics = match (&config.metrics, config.console_metrics) {
            (Some(target), _) => Some(metrics::OtlpMetrics::start(config, target, resource)?),
            (None, true) => Some(metrics::OtlpMetrics::with_exporter(
                config,
                console_metrics::ConsoleMetricExporter,
                resource,
            )),
            (None, false) => None,
        };
        Ok(Self {
            telemetry,
            traces,
            metrics,
        })
    }

    /// The handle to give exchanges.
    pub fn telemetry(&self) -> Telemetry {
        self.telemetry.clone()
    }

    /// The OTLP mirror of the GenAI metrics, when metrics are exported over OTLP.
    pub fn metrics(&self) -> Option<Arc<dyn crate::telemetry::measure::MetricsObserver>> {
        self.metrics
            .as_ref()
            .map(|m| Arc::new(m.clone()) as Arc<dyn crate::telemetry::measure::MetricsObserver>)
    }

    /// Exports what is queued and stops the exporters.
    pub async fn shutdown(self) {
        if let Some((provider, control)) = self.traces {
            let (tx, rx) = oneshot::channel();
            if control.send(Command::Shutdown(tx)).await.is_ok() {
                let _ = rx.await;
            }
            drop(provider);
        }
        if let Some(m) = self.metrics {
            m.shutdown().await;
        }
    }
}

fn resource(config: &TelemetryConfig) -> Resource {
    Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attributes(
            config
                .resource
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        )
        .build()
}

pub(crate) fn headers(target: &OtlpTarget) -> HashMap<String, String> {
    target
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_owned()))
        .collect()
}

pub(crate) fn metadata(
    target: &OtlpTarget,
) -> opentelemetry_otlp::tonic_types::metadata::MetadataMap {
    let mut h = http::HeaderMap::new();
    for (k, v) in &target.headers {
        // Checked when the settings were read.
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()),
            http::HeaderValue::from_str(v.expose()),
        ) {
            h.insert(k, v);
        }
    }
    opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(h)
}

/// The HTTP/protobuf client: hyper over rustls with the system's roots, so `https`
/// endpoints (Langfuse, hosted collectors) work as well as plain `http`.
pub(crate) fn http_client(
    target: &OtlpTarget,
    signal: &'static str,
) -> Result<opentelemetry_http::hyper::HyperClient<HttpsConnector>, OtlpError> {
    // The workspace's one provider, named: the process default may be unset (or
    // ambiguous) where this runs.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|e| OtlpError {
            signal,
            reason: format!("loading the system's root certificates: {e}"),
        })?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(opentelemetry_http::hyper::HyperClient::new(
        https,
        target.timeout,
        None,
    ))
}

/// The HTTP encoding of the OTLP exporters.
pub(crate) const fn http_protocol(p: Protocol) -> opentelemetry_otlp::Protocol {
    match p {
        Protocol::HttpJson => opentelemetry_otlp::Protocol::HttpJson,
        Protocol::HttpProtobuf | Protocol::Grpc => opentelemetry_otlp::Protocol::HttpBinary,
    }
}

type HttpsConnector =
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

fn span_exporter(target: &OtlpTarget) -> Result<opentelemetry_otlp::SpanExporter, OtlpError> {
    let built = match target.protocol {
        Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(target.endpoint.clone())
            .with_timeout(target.timeout)
            .with_metadata(metadata(target))
            .build(),
        Protocol::HttpProtobuf | Protocol::HttpJson => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(http_client(target, "traces")?)
            .with_protocol(http_protocol(target.protocol))
            .with_endpoint(target.endpoint.clone())
            .with_timeout(target.timeout)
            .with_headers(headers(target))
            .build(),
    };
    built.map_err(|e| OtlpError {
        signal: "traces",
        reason: e.to_string(),
    })
}

fn tracer_provider<E: SpanExporter + 'static>(
    config: &TelemetryConfig,
    mut exporter: E,
    resource: Resource,
) -> (SdkTracerProvider, mpsc::Sender<Command>) {
    exporter.set_resource(&resource);
    let b = config.batch;
    let (spans, rx) = mpsc::channel(b.max_queue_size);
    let (control, control_rx) = mpsc::channel(4);
    tokio::spawn(export_loop(exporter, rx, control_rx, b));
    // OpenInference records one attribute per message part: lift the SDK's default
    // cap of 128 so long conversations are not cut short.
    let max_attrs = match config.semconv {
        SemConv::OpenInference => 65_536,
        SemConv::GenAi => 128,
    };
    let provider = SdkTracerProvider::builder()
        .with_span_processor(QueueProcessor { spans })
        .with_resource(resource)
        .with_max_attributes_per_span(max_attrs)
        .build();
    (provider, control)
}

enum Command {
    Shutdown(oneshot::Sender<()>),
}

/// Hands finished spans to the export task without waiting.
#[derive(Debug)]
struct QueueProcessor {
    spans: mpsc::Sender<SpanData>,
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.spans.try_send(span).is_err() && DROPPED.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(
                "span export queue full (OTEL_BSP_MAX_QUEUE_SIZE): dropping spans, counted in aigw_telemetry_spans_dropped_total"
            );
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

async fn export_loop<E: SpanExporter>(
    exporter: E,
    mut spans: mpsc::Receiver<SpanData>,
    mut control: mpsc::Receiver<Command>,
    b: super::config::BatchSettings,
) {
    let mut batch = Vec::with_capacity(b.max_export_batch_size);
    let mut tick = tokio::time::interval(b.schedule_delay.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            s = spans.recv() => match s {
                Some(s) => {
                    batch.push(s);
                    if batch.len() >= b.max_export_batch_size {
                        export(&exporter, &mut batch, b.export_timeout).await;
                    }
                }
                None => break,
            },
            _ = tick.tick() => export(&exporter, &mut batch, b.export_timeout).await,
            c = control.recv() => {
                while let Ok(s) = spans.try_recv() {
                    batch.push(s);
                    if batch.len() >= b.max_export_batch_size {
                        export(&exporter, &mut batch, b.export_timeout).await;
                    }
                }
                export(&exporter, &mut batch, b.export_timeout).await;
                if let Some(Command::Shutdown(done)) = c {
                    let _ = exporter.shutdown();
                    let _ = done.send(());
                }
                return;
            }
        }
    }
    export(&exporter, &mut batch, b.export_timeout).await;
}

async fn export<E: SpanExporter>(exporter: &E, batch: &mut Vec<SpanData>, timeout: Duration) {
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::take(batch);
    let n = spans.len();
    let result = tokio::time::timeout(timeout, exporter.export(spans)).await;
    let err = match result {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e,
        Err(_) => OTelSdkError::Timeout(timeout),
    };
    if EXPORT_FAILURES
        .fetch_add(1, Ordering::Relaxed)
        .is_multiple_of(100)
    {
        tracing::warn!(spans = n, error = %err, "span export failed");
    }
}

/// Spans through the SDK tracer.
struct OtelSink {
    tracer: SdkTracer,
}

impl fmt::Debug for OtelSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtlpSink")
    }
}

impl SpanSink for OtelSink {
    fn start(&self, start: SpanStart<'_>) -> Box<dyn LiveSpan> {
        let parent = start.parent.as_ref().map_or_else(Context::new, |p| {
            let ctx = OtelContext::new(
                TraceId::from_bytes(p.trace_id.to_be_bytes()),
                opentelemetry::trace::SpanId::from_bytes(p.span_id.to_be_bytes()),
                TraceFlags::new(p.flags),
                true,
                TraceState::default(),
            );
            Context::new().with_remote_span_context(ctx)
        });
        let kind = match start.kind {
            SpanKind::Internal => opentelemetry::trace::SpanKind::Internal,
            SpanKind::Client => opentelemetry::trace::SpanKind::Client,
        };
        let span = self
            .tracer
            .span_builder(start.name.into_owned())
            .with_kind(kind)
            .with_start_time(start.time)
            .start_with_context(&self.tracer, &parent);
        let sc = span.span_context();
        let context = SpanContext {
            trace_id: u128::from_be_bytes(sc.trace_id().to_bytes()),
            span_id: u64::from_be_bytes(sc.span_id().to_bytes()),
            flags: sc.trace_flags().to_u8(),
            state: None,
        };
        Box::new(OtelSpan { span, context })
    }
}

struct OtelSpan {
    span: opentelemetry_sdk::trace::Span,
    context: SpanContext,
}

impl LiveSpan for OtelSpan {
    fn context(&self) -> SpanContext {
        self.context.clone()
    }

    fn end(self: Box<Self>, end: SpanEnd) {
        let mut span = self.span;
        if !span.is_recording() {
            return;
        }
        span.set_attributes(key_values(end.attrs));
        for e in end.events {
            span.add_event_with_timestamp(e.name, e.time, key_values(e.attrs));
        }
        match end.status {
            SpanStatus::Unset => {}
            SpanStatus::Ok => span.set_status(opentelemetry::trace::Status::Ok),
            SpanStatus::Error(m) => span.set_status(opentelemetry::trace::Status::error(m)),
        }
        span.end_with_timestamp(end.time);
    }
}

fn key_values(attrs: Attrs) -> Vec<KeyValue> {
    attrs
        .into_iter()
        .map(|a| {
            let v = match a.value {
                AttrValue::Str(s) => Value::String(s.into()),
                AttrValue::Int(i) => Value::I64(i),
                AttrValue::F64(f) => Value::F64(f),
                AttrValue::Bool(b) => Value::Bool(b),
                AttrValue::StrList(l) => Value::Array(Array::String(
                    l.into_iter().map(StringValue::from).collect(),
                )),
                AttrValue::F64List(l) => Value::Array(Array::F64(l)),
            };
            KeyValue::new(a.key, v)
        })
        .collect()
}
