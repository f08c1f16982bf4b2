//! The GenAI metrics every packaging exports.
//!
//! The four histograms of the upstream gateway (OpenTelemetry GenAI semantic
//! conventions), with the same attribute vocabulary and bucket boundaries, so existing
//! dashboards and alerts keep working, plus one histogram of our own: the gateway's
//! overhead per request (time spent in the gateway rather than waiting on upstreams).
//!
//! Besides them, `aigw_dropped_fields_total{field, backend}` counts the client request
//! fields a translation left out because the backend has no equivalent and they cannot
//! change the answer (see `docs/translation-matrix.md`); the first drop of each pair is
//! also logged at warn level. Audio is counted beside tokens, with the labels of the
//! token histogram: `aigw_audio_seconds_total` (transcription and translation input)
//! and `aigw_speech_characters_total` (speech input); so are generated images,
//! `aigw_generated_images_total` (image models bill per image).
//!
//! `aigw_metered_tokens_total{gen_ai_operation_name, gen_ai_provider_name,
//! gen_ai_original_model, gen_ai_request_model, gen_ai_token_type, aigw_token_source}`
//! counts the input and output tokens of *every* exchange — failed and abandoned ones
//! included, which the GenAI histograms leave out — with `aigw_token_source` saying
//! whether the provider `reported` them or the gateway `estimated` them (a stream cut
//! before its final usage report, see [`crate::estimate`]). It is the figure to bill
//! from.
//!
//! Prometheus names replace dots with underscores, and second-valued histograms carry
//! the `_seconds` unit suffix (as OpenTelemetry's Prometheus exporter writes them).
//!
//! Header-mapped attributes (`OTEL_AIGW_METRICS_REQUEST_HEADER_ATTRIBUTES`, see
//! [`GenAiMetrics::set_request_header_attributes`]) are labels of every series keyed by
//! model (the histograms, the audio, speech and image counters, the metered tokens),
//! named as OpenTelemetry's Prometheus exporter names them (`tenant.id` →
//! `tenant_id`), with their values bounded as on the OTLP metrics
//! ([`crate::telemetry::labels`]).

use crate::estimate::UsageSource;
use crate::exchange::ExchangeRecord;
pub use crate::telemetry::measure::{
    Measurements, MetricsObserver, REQUEST_DURATION_BUCKETS, TIME_PER_OUTPUT_TOKEN_BUCKETS,
    TIME_TO_FIRST_TOKEN_BUCKETS, TOKEN_TYPES, TOKEN_USAGE_BUCKETS,
};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// Gateway overhead bucket boundaries (seconds): 5 µs to ~80 ms.
pub const OVERHEAD_BUCKETS: [f64; 15] = [
    0.000005, 0.00001, 0.00002, 0.00004, 0.00008, 0.00016, 0.00032, 0.00064, 0.00128, 0.00256,
    0.00512, 0.01024, 0.02048, 0.04096, 0.08192,
];

/// A label name: the fixed vocabulary, or a header-mapped attribute's.
type LabelName = Cow<'static, str>;
type Labels = Vec<(LabelName, String)>;

fn label(name: &'static str, value: impl Into<String>) -> (LabelName, String) {
    (Cow::Borrowed(name), value.into())
}
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

/// What identifies one label set of the histograms, borrowed from a record.
#[derive(Hash, PartialEq, Eq)]
struct SeriesKey<'a> {
    operation: &'static str,
    provider: &'static str,
    original_model: &'a str,
    request_model: &'a str,
    response_model: &'a str,
    failed: bool,
    /// Header-mapped labels (Prometheus names), bounded.
    header: &'a [(String, String)],
}

/// The histograms of one label set, resolved from their families once and shared
/// afterwards (a `Histogram` clone shares its buckets). Each is created on first use,
/// so the exposition lists the same series as when every record looked them up.
struct Series {
    original_model: String,
    request_model: String,
    response_model: String,
    operation: &'static str,
    provider: &'static str,
    failed: bool,
    header: Vec<(String, String)>,
    labels: Labels,
    duration: OnceLock<Histogram>,
    overhead: OnceLock<Histogram>,
    ttft: OnceLock<Histogram>,
    tpot: OnceLock<Histogram>,
    tokens: [OnceLock<Histogram>; 5],
    /// `aigw_metered_tokens_total`: `[input, output]` × `[reported, estimated]`.
    metered: [[OnceLock<Counter>; 2]; 2],
}

impl Series {
    fn new(key: &SeriesKey<'_>) -> Self {
        let mut labels: Labels = Vec::with_capacity(6 + key.header.len());
        labels.push(label("gen_ai_operation_name", key.operation));
        labels.push(label("gen_ai_provider_name", key.provider));
        labels.push(label("gen_ai_original_model", key.original_model));
        labels.push(label("gen_ai_request_model", key.request_model));
        labels.push(label("gen_ai_response_model", key.response_model));
        if key.failed {
            labels.push(label("error_type", "_OTHER"));
        }
        labels.extend(header_labels(key.header));
        Self {
            original_model: key.original_model.to_owned(),
            request_model: key.request_model.to_owned(),
            response_model: key.response_model.to_owned(),
            operation: key.operation,
            provider: key.provider,
            failed: key.failed,
            header: key.header.to_vec(),
            labels,
            duration: OnceLock::new(),
            overhead: OnceLock::new(),
            ttft: OnceLock::new(),
            tpot: OnceLock::new(),
            tokens: Default::default(),
            metered: Default::default(),
        }
    }

    fn metered<'a>(
        &'a self,
        kind: usize,
        source: UsageSource,
        family: &Family<Labels, Counter>,
    ) -> Option<&'a Counter> {
        let s = usize::from(source == UsageSource::Estimated);
        let slot = self.metered.get(kind)?.get(s)?;
        Some(slot.get_or_init(|| {
            let mut labels: Labels = vec![
                label("gen_ai_operation_name", self.operation),
                label("gen_ai_provider_name", self.provider),
                label("gen_ai_original_model", self.original_model.clone()),
                label("gen_ai_request_model", self.request_model.clone()),
                label("gen_ai_token_type", TOKEN_TYPES[kind]),
                label("aigw_token_source", source.as_str()),
            ];
            labels.extend(header_labels(&self.header));
            family.get_or_create(&labels).clone()
        }))
    }

    fn is(&self, key: &SeriesKey<'_>) -> bool {
        // The operation and provider are names from fixed tables: the same text is
        // almost always the same `&'static str`, found equal without comparing bytes.
        let same = |a: &'static str, b: &'static str| std::ptr::eq(a, b) || a == b;
        same(self.operation, key.operation)
            && same(self.provider, key.provider)
            && self.failed == key.failed
            && self.original_model == key.original_model
            && self.request_model == key.request_model
            && self.response_model == key.response_model
            && self.header == key.header
    }

    fn get<'a>(&'a self, slot: &'a OnceLock<Histogram>, family: &HistogramFamily) -> &'a Histogram {
        slot.get_or_init(|| family.get_or_create(&self.labels).clone())
    }
}

/// Label sets seen so far, by a keyed hash of their borrowed parts: a record finds its
/// histograms without building label vectors or hashing them once per histogram.
/// The hash is foldhash's, seeded per process: SipHash cost ≈ 0.8 k instructions per
/// record on a key of a few short strings.
///
/// The label set of the last record is kept aside and compared first: a gateway's
/// consecutive requests mostly name the same models, and the comparison costs less
/// than the hash, the map's lock and its probe.
#[derive(Default)]
struct SeriesCache {
    hasher: foldhash::fast::RandomState,
    map: RwLock<HashMap<u64, Vec<Arc<Series>>>>,
    last: Mutex<Option<Arc<Series>>>,
}

impl SeriesCache {
    fn get(&self, key: &SeriesKey<'_>) -> Arc<Series> {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = last.as_ref().filter(|s| s.is(key)) {
            return s.clone();
        }
        let s = self.find(key);
        *last = Some(s.clone());
        s
    }

    /// The label set's series from the map, made on first use.
    fn find(&self, key: &SeriesKey<'_>) -> Arc<Series> {
        let hash = self.hasher.hash_one(key);
        if let Ok(map) = self.map.read()
            && let Some(s) = map.get(&hash).and_then(|v| v.iter().find(|s| s.is(key)))
        {
            return s.clone();
        }
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = map.entry(hash).or_default();
        if let Some(s) = bucket.iter().find(|s| s.is(key)) {
            return s.clone();
        }
        let s = Arc::new(Series::new(key));
        bucket.push(s.clone());
        s
    }
}

fn header_labels(header: &[(String, String)]) -> impl Iterator<Item = (LabelName, String)> + '_ {
    header.iter().filter_map(|(k, v)| {
        let name = prometheus_label_name(k);
        (!RESERVED_LABELS.contains(&name.as_str())).then(|| (Cow::Owned(name), v.clone()))
    })
}

/// Label names of the fixed vocabulary: a header mapping onto one of them is not added
/// to the Prometheus series (it would repeat the label).
const RESERVED_LABELS: [&str; 9] = [
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_original_model",
    "gen_ai_request_model",
    "gen_ai_response_model",
    "gen_ai_token_type",
    "error_type",
    "aigw_token_source",
    "le",
];

/// An attribute name as OpenTelemetry's Prometheus exporter writes it: every character
/// outside `[a-zA-Z0-9_]` becomes `_`, and a leading digit gets the `key_` prefix.
pub fn prometheus_label_name(attribute: &str) -> String {
    let mut out: String = attribute
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    }
    out
}

impl<'a> Measurements<'a> {
    /// The measurements of a record; `None` without an endpoint. `header_labels` are the
    /// record's header-mapped attributes, already bounded
    /// ([`crate::telemetry::labels::metric_labels`]).
    pub fn of(r: &'a ExchangeRecord, header_labels: &'a [(String, String)]) -> Option<Self> {
        let endpoint = r.endpoint?;
        let failed = r.error.is_some() || r.status.is_some_and(|s| !s.is_success());
        let mut m = Self {
            operation: endpoint.operation_name(),
            provider: r.provider.unwrap_or("unknown"),
            original_model: &r.request_model,
            request_model: r.effective_model.as_deref().unwrap_or(&r.request_model),
            response_model: r.response_model.as_deref().unwrap_or_default(),
            failed,
            duration: r.latency.map(|l| l.as_secs_f64()),
            overhead: r
                .latency
                .zip(r.upstream_wait)
                .map(|(l, w)| l.saturating_sub(w).as_secs_f64()),
            ttft: None,
            tpot: None,
            tokens: [None; 5],
            header_labels,
        };
        if failed {
            return Some(m);
        }
        if r.stream
            && let Some(ttft) = r.time_to_first_byte
        {
            m.ttft = Some(ttft.as_secs_f64());
            if let (Some(latency), Some(output)) = (r.latency, r.usage.output)
                && output > 1
            {
                m.tpot = Some(latency.saturating_sub(ttft).as_secs_f64() / (output - 1) as f64);
            }
        }
        let u = &r.usage;
        m.tokens = [
            u.input,
            u.output,
            u.cached_input,
            u.cache_creation_input,
            u.reasoning,
        ];
        Some(m)
    }
}

/// The GenAI metrics registry. Cheap to share (`Arc`); recording a label set seen
/// before takes one read lock and the histograms' own locks.
pub struct GenAiMetrics {
    registry: Registry,
    token_usage: HistogramFamily,
    request_duration: HistogramFamily,
    time_to_first_token: HistogramFamily,
    time_per_output_token: HistogramFamily,
    overhead: HistogramFamily,
    dropped: Family<Labels, Counter>,
    audio_seconds: Family<Labels, Counter<f64, std::sync::atomic::AtomicU64>>,
    speech_characters: Family<Labels, Counter>,
    images: Family<Labels, Counter>,
    metered: Family<Labels, Counter>,
    series: SeriesCache,
    observer: OnceLock<Arc<dyn MetricsObserver>>,
    /// `OTEL_AIGW_METRICS_REQUEST_HEADER_ATTRIBUTES`: the attribute names.
    header_attributes: OnceLock<Vec<String>>,
    spans_dropped: Counter,
    label_overflows: Counter,
}

impl std::fmt::Debug for GenAiMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenAiMetrics")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
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
        let dropped = Family::<Labels, Counter>::default();
        registry.register(
            "aigw_dropped_fields",
            "Client request fields not carried to a backend that has no equivalent (each cannot change the answer).",
            dropped.clone(),
        );
        let audio_seconds = Family::<Labels, Counter<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "aigw_audio_seconds",
            "Seconds of audio transcribed or translated, as the provider reports them.",
            audio_seconds.clone(),
        );
        let speech_characters = Family::<Labels, Counter>::default();
        registry.register(
            "aigw_speech_characters",
            "Characters of text turned into speech.",
            speech_characters.clone(),
        );
        let images = Family::<Labels, Counter>::default();
        registry.register(
            "aigw_generated_images",
            "Images generated, as the provider returned them.",
            images.clone(),
        );
        let metered = Family::<Labels, Counter>::default();
        registry.register(
            "aigw_metered_tokens",
            "Input and output tokens of every exchange (failed and abandoned ones included), by whether the provider reported them or the gateway estimated them.",
            metered.clone(),
        );
        let spans_dropped = Counter::default();
        registry.register(
            "aigw_telemetry_spans_dropped",
            "Spans dropped because the OTLP export queue (OTEL_BSP_MAX_QUEUE_SIZE) was full.",
            spans_dropped.clone(),
        );
        let label_overflows = Counter::default();
        registry.register(
            "aigw_telemetry_metric_label_overflows",
            "Header-mapped metric attribute values reported as _OTHER because their attribute already had the most distinct values kept.",
            label_overflows.clone(),
        );
        Self {
            registry,
            metered,
            token_usage,
            request_duration,
            time_to_first_token,
            time_per_output_token,
            overhead,
            dropped,
            audio_seconds,
            speech_characters,
            images,
            series: SeriesCache::default(),
            observer: OnceLock::new(),
            header_attributes: OnceLock::new(),
            spans_dropped,
            label_overflows,
        }
    }

    /// Sends every record's measurements to `observer` too (the OTLP exporter), once.
    pub fn set_observer(&self, observer: Arc<dyn MetricsObserver>) {
        let _ = self.observer.set(observer);
    }

    /// Labels the series with these header-mapped attributes of each record
    /// (`OTEL_AIGW_METRICS_REQUEST_HEADER_ATTRIBUTES`, as upstream's
    /// `-metricsRequestHeaderAttributes`), once; the OTLP mirror gets the same ones. An
    /// attribute whose Prometheus name is one of the fixed labels is left off the
    /// Prometheus series (logged) and kept on OTLP.
    pub fn set_request_header_attributes(
        &self,
        mapping: &crate::telemetry::config::HeaderAttributes,
    ) {
        let mut attrs: Vec<String> = Vec::new();
        for (_, attr) in mapping {
            let name = prometheus_label_name(attr);
            if RESERVED_LABELS.contains(&name.as_str()) {
                tracing::warn!(attribute = %attr, label = %name, "metric header attribute has the name of a fixed label: not added to the Prometheus series (kept on OTLP metrics)");
            }
            if !attrs.contains(attr) {
                attrs.push(attr.clone());
            }
        }
        let _ = self.header_attributes.set(attrs);
    }

    /// Connects the registry to the telemetry `exporters` run: its series get the
    /// header-mapped attributes (`OTEL_AIGW_METRICS_REQUEST_HEADER_ATTRIBUTES`), and its
    /// measurements go to the OTLP (or console) metrics exporter when one runs. Call
    /// once, before serving.
    pub fn attach_telemetry(&self, exporters: &crate::telemetry::Exporters) {
        self.set_request_header_attributes(exporters.metrics_headers());
        if let Some(observer) = exporters.metrics_observer() {
            self.set_observer(observer);
        }
    }

    /// The bounded header-mapped attributes of a record, `(attribute, value)`.
    fn header_values(&self, r: &ExchangeRecord) -> Vec<(String, String)> {
        match self.header_attributes.get() {
            Some(attrs) if !attrs.is_empty() && !r.request_labels.is_empty() => {
                crate::telemetry::labels::bounded(attrs, &r.request_labels)
            }
            _ => Vec::new(),
        }
    }

    /// Records one finished exchange.
    pub fn record(&self, r: &ExchangeRecord) {
        self.record_dropped(r);
        let header = self.header_values(r);
        let Some(m) = Measurements::of(r, &header) else {
            return;
        };
        if let Some(o) = self.observer.get() {
            o.observe(&m);
        }
        let series = self.series.get(&SeriesKey {
            operation: m.operation,
            provider: m.provider,
            original_model: m.original_model,
            request_model: m.request_model,
            response_model: m.response_model,
            failed: m.failed,
            header: &header,
        });
        if let Some(d) = m.duration {
            series
                .get(&series.duration, &self.request_duration)
                .observe(d);
        }
        if let Some(o) = m.overhead {
            series.get(&series.overhead, &self.overhead).observe(o);
        }
        for (kind, value) in [r.usage.input, r.usage.output].into_iter().enumerate() {
            if let Some(v) = value.filter(|v| *v > 0)
                && let Some(c) = series.metered(kind, r.usage_source, &self.metered)
            {
                c.inc_by(v);
            }
        }
        if let Some(t) = m.ttft {
            series
                .get(&series.ttft, &self.time_to_first_token)
                .observe(t);
        }
        if let Some(t) = m.tpot {
            series
                .get(&series.tpot, &self.time_per_output_token)
                .observe(t);
        }
        for ((kind, value), slot) in TOKEN_TYPES.iter().zip(m.tokens).zip(&series.tokens) {
            if let Some(v) = value {
                slot.get_or_init(|| {
                    let mut l = series.labels.clone();
                    l.push(label("gen_ai_token_type", *kind));
                    self.token_usage.get_or_create(&l).clone()
                })
                .observe(v as f64);
            }
        }
        if m.failed {
            return;
        }
        let u = &r.usage;
        if let Some(ms) = u.audio_ms {
            self.audio_seconds
                .get_or_create(&series.labels)
                .inc_by(ms as f64 / 1000.0);
        }
        if let Some(n) = u.characters {
            self.speech_characters
                .get_or_create(&series.labels)
                .inc_by(n);
        }
        if let Some(n) = u.images {
            self.images.get_or_create(&series.labels).inc_by(n);
        }
    }

    fn record_dropped(&self, r: &ExchangeRecord) {
        for (d, backend) in &r.dropped {
            let labels = vec![
                label("field", d.field),
                label("backend", backend.to_string()),
            ];
            if self.dropped.get_or_create(&labels).inc() == 0 {
                // Once per field and backend: the counter carries the rest.
                tracing::warn!(
                    field = d.field,
                    backend = %backend,
                    reason = d.reason,
                    "client request field not carried to this backend (counted in aigw_dropped_fields_total)"
                );
            }
        }
    }

    /// Renders the Prometheus text exposition format (OpenMetrics flavour, ending in
    /// `# EOF`).
    pub fn encode(&self) -> String {
        let dropped = crate::telemetry::dropped_spans();
        self.spans_dropped
            .inc_by(dropped.saturating_sub(self.spans_dropped.get()));
        let overflows = crate::telemetry::labels::label_overflows();
        self.label_overflows
            .inc_by(overflows.saturating_sub(self.label_overflows.get()));
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
    fn audio_seconds_and_speech_characters_are_counted() {
        let m = GenAiMetrics::new();
        let mut r = record();
        r.endpoint = Some(Endpoint::AudioTranscriptions);
        r.usage = TokenUsage {
            audio_ms: Some(2_500),
            ..Default::default()
        };
        m.record(&r);
        m.record(&r);
        r.endpoint = Some(Endpoint::AudioSpeech);
        r.usage = TokenUsage {
            characters: Some(12),
            ..Default::default()
        };
        m.record(&r);
        let text = m.encode();
        let line = |prefix: &str, op: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with(prefix) && l.contains(&format!("gen_ai_operation_name=\"{op}\""))
                })
                .unwrap_or_else(|| panic!("no {prefix} for {op} in\n{text}"))
                .to_owned()
        };
        assert!(line("aigw_audio_seconds_total{", "transcription").ends_with(" 5.0"));
        assert!(line("aigw_speech_characters_total{", "speech").ends_with(" 12"));
        r.endpoint = Some(Endpoint::ImageGenerations);
        r.usage = TokenUsage {
            images: Some(2),
            ..Default::default()
        };
        m.record(&r);
        let text = m.encode();
        let images = text
            .lines()
            .find(|l| l.starts_with("aigw_generated_images_total{"))
            .unwrap_or_else(|| panic!("no aigw_generated_images_total in\n{text}"));
        assert!(images.ends_with(" 2"), "{images}");
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

    #[test]
    fn label_sets_keep_their_own_series_across_records() {
        let m = GenAiMetrics::new();
        m.record(&record());
        m.record(&record());
        let mut other = record();
        other.response_model = Some("us.amazon.nova-lite-v1:0".into());
        other.stream = false;
        other.usage.cached_input = Some(3);
        m.record(&other);
        let text = m.encode();
        let count = |needle: &str| -> Vec<String> {
            text.lines()
                .filter(|l| {
                    l.starts_with("gen_ai_server_request_duration_seconds_count{")
                        && l.contains(needle)
                })
                .map(|l| l.rsplit(' ').next().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            count("gen_ai_response_model=\"us.amazon.nova-micro-v1:0\""),
            ["2"],
            "{text}"
        );
        assert_eq!(
            count("gen_ai_response_model=\"us.amazon.nova-lite-v1:0\""),
            ["1"],
            "{text}"
        );
        // Series exist only for what was observed: no time to first token for the
        // non-stream label set, cached input only where it was reported.
        let ttft: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("gen_ai_server_time_to_first_token_seconds_count{"))
            .collect();
        assert_eq!(ttft.len(), 1, "{text}");
        assert!(
            ttft[0].contains("nova-micro") && ttft[0].ends_with(" 2"),
            "{text}"
        );
        let cached: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.starts_with("gen_ai_client_token_usage_count{")
                    && l.contains("gen_ai_token_type=\"cached_input\"")
            })
            .collect();
        assert_eq!(cached.len(), 1, "{text}");
        assert!(cached[0].contains("nova-lite"), "{text}");
        // A failure of the same model is a label set of its own.
        let mut failed = record();
        failed.status = Some(http::StatusCode::BAD_GATEWAY);
        m.record(&failed);
        assert_eq!(
            m.encode()
                .lines()
                .filter(|l| l.starts_with("gen_ai_server_request_duration_seconds_count{"))
                .count(),
            3
        );
    }

    /// Upstream's `-metricsRequestHeaderAttributes` labels its Prometheus series too
    /// (otelprom writes `tenant.id` as `tenant_id`); values are bounded as on OTLP.
    #[test]
    fn header_attributes_label_the_prometheus_series_bounded() {
        use crate::telemetry::labels::{MAX_VALUES_PER_ATTRIBUTE, OVERFLOW_VALUE};
        let m = GenAiMetrics::new();
        m.set_request_header_attributes(&vec![
            (
                http::HeaderName::from_static("x-tenant-id"),
                "prom.tenant.test".to_owned(),
            ),
            (
                http::HeaderName::from_static("x-op"),
                "gen_ai.operation.name".to_owned(),
            ),
        ]);
        let mut r = record();
        r.request_labels = vec![
            (Arc::from("prom.tenant.test"), "acme".to_owned()),
            (Arc::from("gen_ai.operation.name"), "spoofed".to_owned()),
        ];
        m.record(&r);
        let text = m.encode();
        for prefix in [
            "gen_ai_server_request_duration_seconds_count{",
            "gen_ai_client_token_usage_count{",
            "gen_ai_server_time_to_first_token_seconds_count{",
            "aigw_metered_tokens_total{",
        ] {
            let line = text
                .lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in\n{text}"));
            assert!(line.contains("prom_tenant_test=\"acme\""), "{line}");
            // A mapping onto a fixed label never repeats or overrides it.
            assert!(!line.contains("spoofed"), "{line}");
            assert_eq!(line.matches("gen_ai_operation_name=").count(), 1, "{line}");
        }
        // Without the header: the series without the label.
        m.record(&record());
        // Values beyond the bound share one `_OTHER` series.
        for i in 0..MAX_VALUES_PER_ATTRIBUTE + 20 {
            let mut r = record();
            r.request_labels = vec![(Arc::from("prom.tenant.test"), format!("t{i}"))];
            m.record(&r);
        }
        let text = m.encode();
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("gen_ai_server_request_duration_seconds_count{"))
            .collect();
        assert!(
            series.len() <= MAX_VALUES_PER_ATTRIBUTE + 2,
            "{} series",
            series.len()
        );
        assert!(
            series
                .iter()
                .any(|l| l.contains(&format!("prom_tenant_test=\"{OVERFLOW_VALUE}\""))),
            "{text}"
        );
        assert!(series.iter().any(|l| !l.contains("prom_tenant_test")));
        let overflows = text
            .lines()
            .find(|l| l.starts_with("aigw_telemetry_metric_label_overflows_total "))
            .unwrap_or_else(|| panic!("no overflow counter in\n{text}"));
        assert!(!overflows.ends_with(" 0"), "{overflows}");
    }

    #[test]
    fn prometheus_label_names_as_otelprom_writes_them() {
        assert_eq!(prometheus_label_name("tenant.id"), "tenant_id");
        assert_eq!(prometheus_label_name("x-team/name"), "x_team_name");
        assert_eq!(prometheus_label_name("1st"), "key_1st");
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

    #[test]
    fn dropped_fields_are_counted_per_field_and_backend() {
        let m = GenAiMetrics::new();
        let mut r = record();
        let d = crate::translate::DroppedField::new("cache_control", "hint");
        r.dropped = vec![
            (d, Arc::from("default/gemini")),
            (d, Arc::from("default/gemini")),
        ];
        m.record(&r);
        let text = m.encode();
        assert!(
            text.contains(
                "aigw_dropped_fields_total{field=\"cache_control\",backend=\"default/gemini\"} 2"
            ),
            "{text}"
        );
    }
}
