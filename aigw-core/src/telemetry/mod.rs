//! Request telemetry: one span per request, from receipt to the end of its stream, in
//! the upstream gateway's conventions (OpenInference by default, OpenTelemetry GenAI
//! with `AI_GATEWAY_TRACING_SEMCONV=gen_ai`), with a child span per upstream attempt.
//!
//! Every packaging drives it through the [`crate::exchange::Exchange`]: the adapter
//! hands the exchange a [`Telemetry`] handle once ([`crate::exchange::Exchange::set_telemetry`])
//! and the exchange does the rest — parent from the client's `traceparent`, the
//! attempt's context on the upstream request, stream events, attributes when the
//! exchange finishes (or is dropped on a client hang-up). A disabled handle (the
//! default) costs one branch per request.
//!
//! Where spans go is a [`SpanSink`]: the OTLP exporter of the `otlp` feature
//! ([`otlp`]), or an embedder's own. The conventions themselves are plain data
//! ([`attr`]), so they are tested without any exporter.

pub mod attr;
pub mod config;
mod fold;
mod genai;
pub mod labels;
pub mod mcp;
pub mod measure;
mod media;
pub mod memory;
pub mod openinference;
#[cfg(feature = "otlp")]
pub mod otlp;
mod token_counter;

use crate::api::Endpoint;
use attr::{Attrs, AttrsExt, SpanEvent, SpanKind, SpanStatus};
use bytes::Bytes;
use config::{HeaderAttributes, OpenInferenceConfig, SemConv, TelemetryConfig};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// `traceparent`.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate`.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Response bytes kept per request for the response attributes; beyond this the span
/// carries no response content (and says so with `aigw.response.truncated`).
const MAX_CAPTURE: usize = 4 << 20;
/// Longest header value copied into a span attribute.
const MAX_HEADER_VALUE: usize = 256;

/// Spans dropped because the export queue was full, since the process started
/// (always 0 without the `otlp` feature).
pub fn dropped_spans() -> u64 {
    #[cfg(feature = "otlp")]
    {
        otlp::dropped_spans()
    }
    #[cfg(not(feature = "otlp"))]
    {
        0
    }
}

/// The telemetry a process runs: the handle for exchanges and, with the `otlp`
/// feature, the OTLP exporters the `OTEL_*` settings ask for.
#[derive(Debug)]
pub struct Exporters {
    telemetry: Telemetry,
    /// `OTEL_AIGW_METRICS_REQUEST_HEADER_ATTRIBUTES`, for the metrics registry.
    metrics_headers: HeaderAttributes,
    #[cfg(feature = "otlp")]
    pipeline: Option<otlp::Pipeline>,
}

impl Exporters {
    /// Reads and checks the settings from the environment and starts the exporters
    /// (inside a Tokio runtime). Without an endpoint nothing is started.
    ///
    /// # Errors
    /// An invalid setting (named) or an exporter that cannot be built.
    pub fn from_env() -> Result<Self, String> {
        let config = TelemetryConfig::from_env().map_err(|e| e.to_string())?;
        Self::start(&config)
    }

    /// Starts the exporters `config` asks for.
    ///
    /// # Errors
    /// An exporter that cannot be built.
    pub fn start(config: &TelemetryConfig) -> Result<Self, String> {
        #[cfg(feature = "otlp")]
        {
            let pipeline = otlp::Pipeline::start(config).map_err(|e| e.to_string())?;
            if let Some(t) = &config.traces {
                tracing::info!(endpoint = %t.endpoint, protocol = ?t.protocol, semconv = ?config.semconv, "exporting spans over OTLP");
            } else if config.console_traces {
                tracing::info!(semconv = ?config.semconv, "writing spans to standard output (OTEL_TRACES_EXPORTER=console)");
            }
            if let Some(m) = &config.metrics {
                tracing::info!(endpoint = %m.endpoint, protocol = ?m.protocol, "exporting metrics over OTLP");
            } else if config.console_metrics {
                tracing::info!(
                    "writing metrics to standard output (OTEL_METRICS_EXPORTER=console)"
                );
            }
            Ok(Self {
                telemetry: pipeline.telemetry(),
                metrics_headers: config.metrics_headers.clone(),
                pipeline: Some(pipeline),
            })
        }
        #[cfg(not(feature = "otlp"))]
        {
            if config.traces.is_some()
                || config.metrics.is_some()
                || config.console_traces
                || config.console_metrics
            {
                tracing::warn!(
                    "OTLP export is configured (OTEL_EXPORTER_OTLP_*) but this build has no OTLP exporter (aigw-core feature `otlp`): no spans or OTLP metrics are sent"
                );
            }
            Ok(Self {
                telemetry: Telemetry::new(config, None),
                metrics_headers: config.metrics_headers.clone(),
            })
        }
    }

    /// The handle to give exchanges.
    pub fn telemetry(&self) -> Telemetry {
        self.telemetry.clone()
    }

    /// Where the GenAI metrics go besides Prometheus (OTLP), if anywhere.
    pub fn metrics_observer(&self) -> Option<Arc<dyn measure::MetricsObserver>> {
        #[cfg(feature = "otlp")]
        {
            self.pipeline.as_ref().and_then(otlp::Pipeline::metrics)
        }
        #[cfg(not(feature = "otlp"))]
        {
            None
        }
    }

    /// `OTEL_AIGW_METRICS_REQUEST_HEADER_ATTRIBUTES`: what the metrics registry labels
    /// its series with (see `metrics::GenAiMetrics::attach_telemetry`).
    pub fn metrics_headers(&self) -> &HeaderAttributes {
        &self.metrics_headers
    }

    /// Exports what is queued and stops the exporters.
    pub async fn shutdown(self) {
        #[cfg(feature = "otlp")]
        if let Some(p) = self.pipeline {
            p.shutdown().await;
        }
    }
}

/// A span's identity, as W3C Trace Context carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanContext {
    /// 16-byte trace id.
    pub trace_id: u128,
    /// 8-byte span id.
    pub span_id: u64,
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
    /// `tracestate`, forwarded unchanged.
    pub state: Option<HeaderValue>,
}

impl SpanContext {
    /// Reads a version-00 `traceparent` (and `tracestate`); `None` when absent or
    /// invalid (which the specification says to treat alike).
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let v = headers.get(TRACEPARENT)?.to_str().ok()?;
        let mut p = v.trim().split('-');
        let (ver, trace, span, flags) = (p.next()?, p.next()?, p.next()?, p.next()?);
        let lower_hex = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if ver.len() != 2 || ver == "ff" || (ver == "00" && p.next().is_some()) {
            return None;
        }
        if trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
            return None;
        }
        if ![ver, trace, span, flags].iter().all(|s| lower_hex(s)) {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        (trace_id != 0 && span_id != 0).then(|| Self {
            trace_id,
            span_id,
            flags: u8::from_str_radix(flags, 16).unwrap_or(0),
            state: headers.get(TRACESTATE).cloned(),
        })
    }

    /// The `traceparent` value naming this span as the parent.
    pub fn traceparent(&self) -> HeaderValue {
        let s = format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        );
        HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// Writes this context onto outgoing headers (`tracestate` replaced or removed).
    pub fn inject(&self, headers: &mut HeaderMap) {
        headers.insert(TRACEPARENT, self.traceparent());
        match &self.state {
            Some(s) => headers.insert(TRACESTATE, s.clone()),
            None => headers.remove(TRACESTATE),
        };
    }
}

/// How a span starts.
#[derive(Debug, Clone)]
pub struct SpanStart<'a> {
    /// The span's name.
    pub name: Cow<'a, str>,
    /// Its kind.
    pub kind: SpanKind,
    /// When it started.
    pub time: SystemTime,
    /// Its parent: the client's context or the request span.
    pub parent: Option<SpanContext>,
}

/// How a span ends: everything it records is known then.
#[derive(Debug, Clone)]
pub struct SpanEnd {
    /// Attributes (later values of a key win).
    pub attrs: Attrs,
    /// Events.
    pub events: Vec<SpanEvent>,
    /// The status.
    pub status: SpanStatus,
    /// When it ended.
    pub time: SystemTime,
}

/// Where spans go. Implementations must not block: [`LiveSpan::end`] runs on the
/// request path.
pub trait SpanSink: Send + Sync + fmt::Debug + 'static {
    /// Starts a span.
    fn start(&self, start: SpanStart<'_>) -> Box<dyn LiveSpan>;
}

/// A started span.
pub trait LiveSpan: Send + Sync {
    /// The span's identity (what the upstream request's `traceparent` names).
    fn context(&self) -> SpanContext;
    /// Ends the span.
    fn end(self: Box<Self>, end: SpanEnd);
}

struct Inner {
    sink: Option<Arc<dyn SpanSink>>,
    /// Header → attribute mappings for metrics and access logs, attribute names
    /// shared (`Arc`) by every record.
    labels: Vec<(HeaderName, Arc<str>)>,
    /// The attribute names of `OTEL_AIGW_LOG_REQUEST_HEADER_ATTRIBUTES`, what access
    /// logs print of `labels`.
    log_attrs: Vec<Arc<str>>,
    semconv: SemConv,
    openinference: OpenInferenceConfig,
    genai_capture: bool,
    span_headers: HeaderAttributes,
    propagate: bool,
}

/// The telemetry handle an adapter gives each exchange. Cheap to clone; the default
/// is disabled.
#[derive(Clone, Default)]
pub struct Telemetry {
    inner: Option<Arc<Inner>>,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Some(i) => f
                .debug_struct("Telemetry")
                .field("sink", &i.sink)
                .field("labels", &i.labels)
                .field("semconv", &i.semconv)
                .finish_non_exhaustive(),
            None => f.write_str("Telemetry(disabled)"),
        }
    }
}

impl Telemetry {
    /// No spans.
    pub const fn disabled() -> Self {
        Self { inner: None }
    }

    /// Spans to `sink` (none when `None`), with the conventions and header mappings of
    /// `config`. Disabled when there is neither a sink nor a header mapping.
    pub fn new(config: &TelemetryConfig, sink: Option<Arc<dyn SpanSink>>) -> Self {
        let mut labels: Vec<(HeaderName, Arc<str>)> = Vec::new();
        for (h, a) in config.metrics_headers.iter().chain(&config.log_headers) {
            if !labels.iter().any(|(lh, la)| lh == h && la.as_ref() == a) {
                labels.push((h.clone(), Arc::from(a.as_str())));
            }
        }
        if sink.is_none() && labels.is_empty() {
            return Self::disabled();
        }
        let log_attrs = config
            .log_headers
            .iter()
            .filter_map(|(h, a)| {
                labels
                    .iter()
                    .find(|(lh, la)| lh == h && la.as_ref() == a)
                    .map(|(_, la)| la.clone())
            })
            .collect();
        Self {
            inner: Some(Arc::new(Inner {
                sink,
                labels,
                log_attrs,
                semconv: config.semconv,
                openinference: config.openinference,
                genai_capture: config.genai_capture_content,
                span_headers: config.span_headers.clone(),
                propagate: config.propagate,
            })),
        }
    }

    /// Whether spans are recorded.
    pub fn is_enabled(&self) -> bool {
        self.inner.as_ref().is_some_and(|i| i.sink.is_some())
    }

    /// The attribute names an access log prints of a record's `request_labels`
    /// (`OTEL_AIGW_LOG_REQUEST_HEADER_ATTRIBUTES`; the labels also hold the metric
    /// mappings).
    pub fn log_attributes(&self) -> Vec<Arc<str>> {
        self.inner
            .as_ref()
            .map(|i| i.log_attrs.clone())
            .unwrap_or_default()
    }

    /// The header-mapped attributes of a request, for its record.
    pub(crate) fn request_labels(&self, headers: &HeaderMap) -> Vec<(Arc<str>, String)> {
        let Some(inner) = &self.inner else {
            return Vec::new();
        };
        inner
            .labels
            .iter()
            .filter_map(|(h, a)| {
                let v = headers.get(h)?.to_str().ok()?;
                Some((a.clone(), v.chars().take(MAX_HEADER_VALUE).collect()))
            })
            .collect()
    }

    /// Starts the span of a request received at `time`.
    pub(crate) fn start(
        &self,
        endpoint: Endpoint,
        stream: bool,
        model: &str,
        headers: &HeaderMap,
        body: &Bytes,
        time: SystemTime,
    ) -> Option<RequestSpan> {
        let inner = self.inner.as_ref()?;
        let sink = inner.sink.as_ref()?;
        let (name, kind) = match inner.semconv {
            SemConv::OpenInference => (
                Cow::Borrowed(openinference::span_name(endpoint)),
                SpanKind::Internal,
            ),
            SemConv::GenAi => (
                Cow::Owned(genai::span_name(endpoint, model)),
                SpanKind::Client,
            ),
        };
        let parent = if inner.propagate {
            SpanContext::from_headers(headers)
        } else {
            None
        };
        let state = parent.as_ref().and_then(|p| p.state.clone());
        let span = sink.start(SpanStart {
            name,
            kind,
            time,
            parent,
        });
        let mut extra = Attrs::new();
        for (h, attr) in &inner.span_headers {
            if let Some(v) = headers.get(h).and_then(|v| v.to_str().ok()) {
                let v: String = v.chars().take(MAX_HEADER_VALUE).collect();
                extra.str(attr.clone(), v);
            }
        }
        let content_type = endpoint
            .is_multipart()
            .then(|| headers.get(http::header::CONTENT_TYPE)?.to_str().ok())
            .flatten()
            .map(str::to_owned);
        Some(RequestSpan {
            inner: inner.clone(),
            span: Some(span),
            state,
            endpoint,
            stream,
            body: body.clone(),
            content_type,
            sent: 0,
            extra,
            captured: Vec::new(),
            truncated: false,
            first_chunk: None,
        })
    }
}

/// What a finished request's attributes are computed from.
pub(crate) struct Outcome<'a> {
    pub(crate) endpoint: Endpoint,
    pub(crate) request: Option<&'a Value>,
    pub(crate) request_raw: &'a [u8],
    pub(crate) response: Option<&'a Value>,
    pub(crate) status: u16,
    pub(crate) error_body: Option<&'a str>,
    pub(crate) provider: Option<&'static str>,
    /// A transcription or translation form's fields.
    pub(crate) form: Option<&'a media::Form>,
    /// The bytes the client received (empty when beyond the capture limit).
    pub(crate) response_raw: &'a [u8],
    /// How many bytes the client received.
    pub(crate) response_bytes: u64,
    /// The response was beyond the capture limit.
    pub(crate) truncated: bool,
}

impl Outcome<'_> {
    pub(crate) const fn failed_status(&self) -> Option<u16> {
        if self.status >= 400 {
            Some(self.status)
        } else {
            None
        }
    }
}

/// How a request ended, for [`RequestSpan::finish`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ending<'a> {
    pub(crate) status: u16,
    pub(crate) error_body: Option<&'a str>,
    pub(crate) provider: Option<&'static str>,
    pub(crate) cancelled: bool,
}

/// The span of one request in flight; ends exactly once (on finish, or when dropped).
pub(crate) struct RequestSpan {
    inner: Arc<Inner>,
    span: Option<Box<dyn LiveSpan>>,
    /// The client's `tracestate`, forwarded on every attempt.
    state: Option<HeaderValue>,
    endpoint: Endpoint,
    stream: bool,
    body: Bytes,
    /// A multipart request's content type (its boundary), to read the form.
    content_type: Option<String>,
    /// Bytes sent to the client.
    sent: u64,
    extra: Attrs,
    captured: Vec<u8>,
    truncated: bool,
    first_chunk: Option<SystemTime>,
}

impl fmt::Debug for RequestSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSpan")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl RequestSpan {
    /// The request span's context.
    pub(crate) fn context(&self) -> Option<SpanContext> {
        self.span.as_ref().map(|s| s.context())
    }

    /// Starts the span of one upstream attempt and, when propagation is on, names it
    /// as the parent on the upstream request's headers.
    pub(crate) fn attempt(
        &self,
        backend: &str,
        number: u32,
        headers: &mut HeaderMap,
    ) -> Option<AttemptSpan> {
        let parent = self.context()?;
        let span = self.inner.sink.as_ref()?.start(SpanStart {
            name: Cow::Borrowed("aigw.attempt"),
            kind: SpanKind::Client,
            time: SystemTime::now(),
            parent: Some(parent.clone()),
        });
        if self.inner.propagate {
            let mut ctx = span.context();
            ctx.state = self.state.clone();
            ctx.inject(headers);
        }
        let mut attrs = Attrs::new();
        attrs.str("aigw.backend", backend);
        attrs.int("aigw.attempt.number", i64::from(number));
        Some(AttemptSpan {
            span: Some(span),
            attrs,
            failure: None,
            status: None,
        })
    }

    /// Notes one chunk sent to the client.
    pub(crate) fn chunk(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.first_chunk.get_or_insert_with(SystemTime::now);
        self.sent += bytes.len() as u64;
        // Speech is audio: the span records its size only.
        if self.truncated || self.endpoint == Endpoint::AudioSpeech {
            return;
        }
        if self.captured.len() + bytes.len() > MAX_CAPTURE {
            self.truncated = true;
            self.captured = Vec::new();
            return;
        }
        self.captured.extend_from_slice(bytes);
    }

    /// Ends the span with its attributes.
    pub(crate) fn finish(mut self, ending: Ending<'_>) {
        self.end(ending);
    }

    fn end(&mut self, ending: Ending<'_>) {
        let Some(span) = self.span.take() else { return };
        let request: Option<Value> = if self.endpoint.is_multipart() {
            None
        } else {
            serde_json::from_slice(&self.body).ok()
        };
        let folded = if self.truncated || ending.status >= 400 {
            None
        } else {
            fold::fold(self.endpoint, self.stream, &self.captured)
        };
        let form = match self.endpoint {
            Endpoint::AudioTranscriptions | Endpoint::AudioTranslations => {
                media::Form::read(self.content_type.as_deref(), &self.body)
            }
            _ => None,
        };
        let outcome = Outcome {
            endpoint: self.endpoint,
            request: request.as_ref(),
            request_raw: &self.body,
            response: folded.as_ref().map(|(v, _)| v),
            status: ending.status,
            error_body: ending.error_body,
            provider: ending.provider,
            form: form.as_ref(),
            response_raw: &self.captured,
            response_bytes: self.sent,
            truncated: self.truncated,
        };
        let (mut attrs, mut events, mut status) = match self.inner.semconv {
            SemConv::OpenInference => openinference::finish(&self.inner.openinference, &outcome),
            SemConv::GenAi => genai::finish(self.inner.genai_capture, &outcome),
        };
        attrs.append(&mut self.extra);
        if self.truncated {
            attrs.push(attr::Attr {
                key: "aigw.response.truncated".into(),
                value: attr::AttrValue::Bool(true),
            });
        }
        let streamed = folded.as_ref().is_some_and(|(_, any)| *any);
        if streamed
            && self.inner.semconv == SemConv::OpenInference
            && let Some(t) = self.first_chunk
        {
            events.insert(
                0,
                SpanEvent {
                    name: "First Token Stream Event".into(),
                    time: t,
                    attrs: Attrs::new(),
                },
            );
        }
        if ending.cancelled {
            status = SpanStatus::Error("client closed the request".to_owned());
        }
        span.end(SpanEnd {
            attrs: attr::dedupe(attrs),
            events,
            status,
            time: SystemTime::now(),
        });
    }
}

impl Drop for RequestSpan {
    fn drop(&mut self) {
        // The exchange was dropped before it finished: the client went away.
        self.end(Ending {
            status: 499,
            error_body: None,
            provider: None,
            cancelled: true,
        });
    }
}

/// The span of one upstream attempt; ends when the attempt is dropped.
pub(crate) struct AttemptSpan {
    span: Option<Box<dyn LiveSpan>>,
    attrs: Attrs,
    failure: Option<String>,
    status: Option<u16>,
}

impl fmt::Debug for AttemptSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttemptSpan")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl AttemptSpan {
    /// Records the upstream's response status.
    pub(crate) fn status(&mut self, status: u16) {
        self.status = Some(status);
    }

    /// Records why the attempt failed (and may be retried).
    pub(crate) fn failure(&mut self, reason: &str) {
        self.failure = Some(reason.to_owned());
    }
}

impl Drop for AttemptSpan {
    fn drop(&mut self) {
        let Some(span) = self.span.take() else { return };
        let mut attrs = std::mem::take(&mut self.attrs);
        if let Some(s) = self.status {
            attrs.int("http.response.status_code", i64::from(s));
        }
        let status = match (&self.failure, self.status) {
            (Some(r), _) => {
                attrs.str("aigw.attempt.failure", r.clone());
                SpanStatus::Error(r.clone())
            }
            (None, Some(s)) if s >= 400 => {
                attrs.str("error.type", s.to_string());
                SpanStatus::Error(format!("upstream answered {s}"))
            }
            (None, Some(_)) => SpanStatus::Unset,
            (None, None) => SpanStatus::Unset,
        };
        span.end(SpanEnd {
            attrs,
            events: Vec::new(),
            status,
            time: SystemTime::now(),
        });
    }
}

#[cfg(test)]
pub(crate) mod tests;
