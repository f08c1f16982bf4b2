//! The telemetry settings, read from the standard `OTEL_*` environment variables and
//! the upstream gateway's own (`AI_GATEWAY_TRACING_SEMCONV`, `OPENINFERENCE_HIDE_*`,
//! `OTEL_AIGW_*_REQUEST_HEADER_ATTRIBUTES`).
//!
//! Everything is parsed and checked once, at start-up: an invalid value is an error
//! naming the variable, never a silent fallback (a gateway that runs for months
//! emitting a convention nobody reads, or capturing prompts it was told to hide, is a
//! worse failure than one that refuses to start).

use crate::secret::Secret;
use std::time::Duration;

/// Where settings come from: the process environment, or a map in tests.
pub trait EnvSource {
    /// The variable's value, when set (an empty value counts as set).
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> EnvSource for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// An invalid telemetry setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {variable}: {reason}")]
pub struct ConfigError {
    /// The environment variable (or flag) at fault.
    pub variable: String,
    /// Why its value was refused (never the value of a header setting, which may hold
    /// a credential).
    pub reason: String,
}

fn invalid(variable: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        variable: variable.to_owned(),
        reason: reason.into(),
    }
}

/// The semantic convention of span attributes (`AI_GATEWAY_TRACING_SEMCONV`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SemConv {
    /// OpenInference (Arize Phoenix, Langfuse), the upstream's default.
    #[default]
    OpenInference,
    /// The OpenTelemetry GenAI semantic conventions.
    GenAi,
}

/// OTLP transport (`OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// `grpc`.
    Grpc,
    /// `http/protobuf`, the specification's default.
    #[default]
    HttpProtobuf,
    /// `http/json` (OTLP/JSON over HTTP).
    HttpJson,
}

impl Protocol {
    /// Whether the transport is HTTP (signal paths appended to a generic endpoint).
    pub const fn is_http(self) -> bool {
        matches!(self, Self::HttpProtobuf | Self::HttpJson)
    }
}

/// One OTLP destination: endpoint, transport, headers, timeout.
#[derive(Debug, Clone)]
pub struct OtlpTarget {
    /// The endpoint URL. For HTTP, the signal path (`/v1/traces`, `/v1/metrics`) is
    /// appended when it came from the generic `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
    /// The transport.
    pub protocol: Protocol,
    /// Extra request headers (often an API key of the tracing backend).
    pub headers: Vec<(String, Secret)>,
    /// Per-export timeout (`OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]TIMEOUT`).
    pub timeout: Duration,
}

/// The batch span processor's settings (`OTEL_BSP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    /// `OTEL_BSP_SCHEDULE_DELAY` (default 5 s).
    pub schedule_delay: Duration,
    /// `OTEL_BSP_EXPORT_TIMEOUT` (default 30 s).
    pub export_timeout: Duration,
    /// `OTEL_BSP_MAX_QUEUE_SIZE` (default 2048): spans beyond it are dropped and counted.
    pub max_queue_size: usize,
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` (default 512, at most the queue size).
    pub max_export_batch_size: usize,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            schedule_delay: Duration::from_millis(5000),
            export_timeout: Duration::from_millis(30000),
            max_queue_size: 2048,
            max_export_batch_size: 512,
        }
    }
}

/// OpenInference redaction settings (`OPENINFERENCE_HIDE_*`), all off by default:
/// OpenInference captures content unless told not to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)]
pub struct OpenInferenceConfig {
    /// `OPENINFERENCE_HIDE_LLM_INVOCATION_PARAMETERS`.
    pub hide_llm_invocation_parameters: bool,
    /// `OPENINFERENCE_HIDE_INPUTS`: `input.value` and every input message.
    pub hide_inputs: bool,
    /// `OPENINFERENCE_HIDE_OUTPUTS`: `output.value` and every output message.
    pub hide_outputs: bool,
    /// `OPENINFERENCE_HIDE_INPUT_MESSAGES`.
    pub hide_input_messages: bool,
    /// `OPENINFERENCE_HIDE_OUTPUT_MESSAGES`.
    pub hide_output_messages: bool,
    /// `OPENINFERENCE_HIDE_INPUT_IMAGES`.
    pub hide_input_images: bool,
    /// `OPENINFERENCE_HIDE_INPUT_TEXT`.
    pub hide_input_text: bool,
    /// `OPENINFERENCE_HIDE_OUTPUT_TEXT`.
    pub hide_output_text: bool,
    /// `OPENINFERENCE_HIDE_EMBEDDINGS_TEXT`.
    pub hide_embeddings_text: bool,
    /// `OPENINFERENCE_HIDE_EMBEDDINGS_VECTORS`.
    pub hide_embeddings_vectors: bool,
    /// `OPENINFERENCE_HIDE_PROMPTS` (completions prompts).
    pub hide_prompts: bool,
    /// `OPENINFERENCE_HIDE_CHOICES` (completions choices).
    pub hide_choices: bool,
    /// `OPENINFERENCE_BASE64_IMAGE_MAX_LENGTH` (default 32000): longer base64 image
    /// URLs are replaced by the redaction marker.
    pub base64_image_max_length: usize,
}

impl Default for OpenInferenceConfig {
    fn default() -> Self {
        Self {
            hide_llm_invocation_parameters: false,
            hide_inputs: false,
            hide_outputs: false,
            hide_input_messages: false,
            hide_output_messages: false,
            hide_input_images: false,
            hide_input_text: false,
            hide_output_text: false,
            hide_embeddings_text: false,
            hide_embeddings_vectors: false,
            hide_prompts: false,
            hide_choices: false,
            base64_image_max_length: 32000,
        }
    }
}

/// A bounded header → attribute mapping (`agent-session-id:session.id`).
pub type HeaderAttributes = Vec<(http::HeaderName, String)>;

/// Everything the telemetry pipeline needs, checked.
#[derive(Debug, Clone, Default)]
pub struct TelemetryConfig {
    /// Where spans go; `None`: no span exporter and no span work on the request path.
    pub traces: Option<OtlpTarget>,
    /// `OTEL_TRACES_EXPORTER=console`: spans as JSON lines on standard output instead.
    pub console_traces: bool,
    /// Where metrics go over OTLP; `None`: Prometheus only.
    pub metrics: Option<OtlpTarget>,
    /// `OTEL_METRICS_EXPORTER=console`: the GenAI metrics as JSON lines on standard
    /// output every `OTEL_METRIC_EXPORT_INTERVAL`, instead of OTLP.
    pub console_metrics: bool,
    /// `OTEL_METRIC_EXPORT_INTERVAL` (default 60 s).
    pub metric_export_interval: Duration,
    /// `OTEL_BSP_*`.
    pub batch: BatchSettings,
    /// `OTEL_SERVICE_NAME`, else `service.name` of `OTEL_RESOURCE_ATTRIBUTES`, else
    /// `ai-gateway` (the upstream's default).
    pub service_name: String,
    /// `OTEL_RESOURCE_ATTRIBUTES` (percent-decoded), `service.name` excluded.
    pub resource: Vec<(String, String)>,
    /// Whether W3C trace context is read from and written to requests
    /// (`OTEL_PROPAGATORS` names `tracecontext`, its default).
    pub propagate: bool,
    /// `AI_GATEWAY_TRACING_SEMCONV`.
    pub semconv: SemConv,
    /// OpenInference redaction.
    pub openinference: OpenInferenceConfig,
    /// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` (GenAI convention only).
    pub genai_capture_content: bool,
    /// Span attributes taken from request headers.
    pub span_headers: HeaderAttributes,
    /// Metric attributes taken from request headers.
    pub metrics_headers: HeaderAttributes,
    /// Access-log fields taken from request headers.
    pub log_headers: HeaderAttributes,
}

const DEFAULT_SESSION_MAPPING: &str = "agent-session-id:session.id";

impl TelemetryConfig {
    /// Reads and checks the settings from the process environment.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&ProcessEnv)
    }

    /// Reads and checks the settings from `env`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid variable.
    pub fn from_source(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let get = |n: &str| env.var(n).map(|v| v.trim().to_owned());
        let disabled = bool_var(env, "OTEL_SDK_DISABLED", false)?;
        let semconv = match get("AI_GATEWAY_TRACING_SEMCONV").as_deref() {
            None | Some("") | Some("openinference") => SemConv::OpenInference,
            Some("gen_ai") => SemConv::GenAi,
            Some(other) => {
                return Err(invalid(
                    "AI_GATEWAY_TRACING_SEMCONV",
                    format!("{other:?} must be one of openinference, gen_ai"),
                ));
            }
        };
        let propagate = propagators(get("OTEL_PROPAGATORS").as_deref())?;
        let shared = header_map(env, "OTEL_AIGW_REQUEST_HEADER_ATTRIBUTES", None)?;
        let with_shared = |mut own: HeaderAttributes| {
            for (h, a) in &shared {
                if !own.iter().any(|(o, _)| o == h) {
                    own.push((h.clone(), a.clone()));
                }
            }
            own
        };
        let span_headers = with_shared(header_map(
            env,
            "OTEL_AIGW_SPAN_REQUEST_HEADER_ATTRIBUTES",
            Some(DEFAULT_SESSION_MAPPING),
        )?);
        let metrics_headers = with_shared(header_map(
            env,
            "OTEL_AIGW_METRICS_REQUEST_HEADER_ATTRIBUTES",
            None,
        )?);
        let log_headers = with_shared(header_map(
            env,
            "OTEL_AIGW_LOG_REQUEST_HEADER_ATTRIBUTES",
            Some(DEFAULT_SESSION_MAPPING),
        )?);
        let (service_name, resource) = resource(env)?;
        let traces_exporter = exporter(env, "OTEL_TRACES_EXPORTER", &["otlp", "console", "none"])?;
        let console_traces = !disabled && traces_exporter.as_deref() == Some("console");
        let metrics_exporter = exporter(
            env,
            "OTEL_METRICS_EXPORTER",
            &["otlp", "console", "none", "prometheus"],
        )?;
        let console_metrics = !disabled && metrics_exporter.as_deref() == Some("console");
        let traces = if disabled || matches!(traces_exporter.as_deref(), Some("none" | "console")) {
            None
        } else {
            otlp_target(env, "TRACES", "v1/traces", traces_exporter.is_some())?
        };
        let metrics = if disabled
            || matches!(
                metrics_exporter.as_deref(),
                Some("none" | "prometheus" | "console")
            ) {
            None
        } else {
            otlp_target(env, "METRICS", "v1/metrics", metrics_exporter.is_some())?
        };
        Ok(Self {
            traces,
            console_traces,
            metrics,
            console_metrics,
            metric_export_interval: millis(env, "OTEL_METRIC_EXPORT_INTERVAL", 60000)?,
            batch: batch(env)?,
            service_name,
            resource,
            propagate,
            semconv,
            openinference: openinference(env)?,
            genai_capture_content: bool_var(
                env,
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
                false,
            )?,
            span_headers,
            metrics_headers,
            log_headers,
        })
    }
}

fn bool_var(env: &dyn EnvSource, name: &str, default: bool) -> Result<bool, ConfigError> {
    match env.var(name).as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(false),
        Some(v) => Err(invalid(name, format!("{v:?} is not true or false"))),
    }
}

fn number(env: &dyn EnvSource, name: &str, default: u64) -> Result<u64, ConfigError> {
    match env.var(name).as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| invalid(name, format!("{v:?} is not a non-negative integer"))),
    }
}

fn millis(env: &dyn EnvSource, name: &str, default: u64) -> Result<Duration, ConfigError> {
    number(env, name, default).map(Duration::from_millis)
}

fn size(env: &dyn EnvSource, name: &str, default: usize) -> Result<usize, ConfigError> {
    let n = number(env, name, default as u64)?;
    match usize::try_from(n) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(invalid(name, "must be a positive integer")),
    }
}

fn batch(env: &dyn EnvSource) -> Result<BatchSettings, ConfigError> {
    let d = BatchSettings::default();
    let b = BatchSettings {
        schedule_delay: millis(env, "OTEL_BSP_SCHEDULE_DELAY", 5000)?,
        export_timeout: millis(env, "OTEL_BSP_EXPORT_TIMEOUT", 30000)?,
        max_queue_size: size(env, "OTEL_BSP_MAX_QUEUE_SIZE", d.max_queue_size)?,
        max_export_batch_size: size(
            env,
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            d.max_export_batch_size,
        )?,
    };
    if b.max_export_batch_size > b.max_queue_size {
        return Err(invalid(
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            format!(
                "{} is larger than OTEL_BSP_MAX_QUEUE_SIZE ({})",
                b.max_export_batch_size, b.max_queue_size
            ),
        ));
    }
    Ok(b)
}

fn exporter(
    env: &dyn EnvSource,
    name: &str,
    allowed: &[&str],
) -> Result<Option<String>, ConfigError> {
    let Some(v) = env.var(name).map(|v| v.trim().to_owned()) else {
        return Ok(None);
    };
    if v.is_empty() {
        return Ok(None);
    }
    if v.contains(',') {
        return Err(invalid(name, "only one exporter can be named"));
    }
    if allowed.contains(&v.as_str()) {
        Ok(Some(v))
    } else {
        Err(invalid(
            name,
            format!("{v:?} is not supported (one of {})", allowed.join(", ")),
        ))
    }
}

fn propagators(value: Option<&str>) -> Result<bool, ConfigError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(true);
    };
    let mut tracecontext = false;
    for p in value.split(',').map(str::trim) {
        match p {
            "tracecontext" => tracecontext = true,
            // Baggage is forwarded untouched like any other header; nothing to do.
            "baggage" => {}
            "none" => return Ok(false),
            other => {
                return Err(invalid(
                    "OTEL_PROPAGATORS",
                    format!("{other:?} is not supported (tracecontext, baggage or none)"),
                ));
            }
        }
    }
    Ok(tracecontext)
}

/// Parses `header:attribute,header2:attribute2`. Unset: `default`; set but empty:
/// no mapping (how the upstream turns the session default off).
fn header_map(
    env: &dyn EnvSource,
    name: &str,
    default: Option<&str>,
) -> Result<HeaderAttributes, ConfigError> {
    let value = match env.var(name) {
        Some(v) => v,
        None => default.unwrap_or_default().to_owned(),
    };
    parse_header_attributes(&value).map_err(|reason| invalid(name, reason))
}

/// Parses a header → attribute mapping, `header:attribute` pairs separated by commas
/// (the upstream's `-spanRequestHeaderAttributes` format).
///
/// # Errors
/// Why the value is malformed.
pub fn parse_header_attributes(value: &str) -> Result<HeaderAttributes, String> {
    let mut out = HeaderAttributes::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((h, a)) = pair.split_once(':') else {
            return Err(format!("{pair:?} is not header:attribute"));
        };
        let (h, a) = (h.trim(), a.trim());
        let header = http::HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("{h:?} is not a header name"))?;
        if a.is_empty() {
            return Err(format!("{pair:?} names no attribute"));
        }
        if CREDENTIAL_HEADERS.contains(&header.as_str()) {
            return Err(format!("{h:?} carries credentials and is never recorded"));
        }
        if out.len() >= MAX_HEADER_ATTRIBUTES {
            return Err(format!("more than {MAX_HEADER_ATTRIBUTES} mappings"));
        }
        out.push((header, a.to_owned()));
    }
    Ok(out)
}

/// Headers that carry credentials: never copied into telemetry, whatever the setting.
pub const CREDENTIAL_HEADERS: [&str; 8] = [
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "cookie",
    "set-cookie",
    "x-amz-security-token",
];

/// At most this many header → attribute mappings per signal.
pub const MAX_HEADER_ATTRIBUTES: usize = 16;

fn key_values(name: &str, value: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(invalid(name, "entries must be key=value"));
        };
        let k = percent_decode(k.trim()).ok_or_else(|| invalid(name, "bad percent-encoding"))?;
        let v = percent_decode(v.trim()).ok_or_else(|| invalid(name, "bad percent-encoding"))?;
        if k.is_empty() {
            return Err(invalid(name, "an entry has an empty key"));
        }
        out.push((k, v));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn resource(env: &dyn EnvSource) -> Result<(String, Vec<(String, String)>), ConfigError> {
    let attrs = key_values(
        "OTEL_RESOURCE_ATTRIBUTES",
        &env.var("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default(),
    )?;
    let mut service = env
        .var("OTEL_SERVICE_NAME")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let mut rest = Vec::new();
    for (k, v) in attrs {
        if k == "service.name" {
            service.get_or_insert(v);
        } else {
            rest.push((k, v));
        }
    }
    Ok((service.unwrap_or_else(|| "ai-gateway".to_owned()), rest))
}

fn protocol(env: &dyn EnvSource, signal: &str) -> Result<Protocol, ConfigError> {
    let specific = format!("OTEL_EXPORTER_OTLP_{signal}_PROTOCOL");
    let (name, value) = match env.var(&specific).filter(|v| !v.trim().is_empty()) {
        Some(v) => (specific, v),
        None => (
            "OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(),
            env.var("OTEL_EXPORTER_OTLP_PROTOCOL").unwrap_or_default(),
        ),
    };
    match value.trim() {
        "" | "http/protobuf" => Ok(Protocol::HttpProtobuf),
        "http/json" => Ok(Protocol::HttpJson),
        "grpc" => Ok(Protocol::Grpc),
        other => Err(invalid(
            &name,
            format!("{other:?} is not supported (grpc, http/protobuf or http/json)"),
        )),
    }
}

/// The OTLP destination of one signal, or `None` when no endpoint is configured and
/// no exporter was asked for by name (the default: no exporter, no overhead).
fn otlp_target(
    env: &dyn EnvSource,
    signal: &str,
    path: &str,
    named: bool,
) -> Result<Option<OtlpTarget>, ConfigError> {
    let specific = format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT");
    let nonempty = |n: &str| {
        env.var(n)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let protocol = protocol(env, signal)?;
    let (name, endpoint, generic) =
        match (nonempty(&specific), nonempty("OTEL_EXPORTER_OTLP_ENDPOINT")) {
            (Some(e), _) => (specific, e, false),
            (None, Some(e)) => ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), e, true),
            (None, None) if named => {
                // The specification's defaults.
                let e = match protocol {
                    Protocol::Grpc => "http://localhost:4317",
                    Protocol::HttpProtobuf | Protocol::HttpJson => "http://localhost:4318",
                };
                ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), e.to_owned(), true)
            }
            (None, None) => return Ok(None),
        };
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|_| invalid(&name, format!("{endpoint:?} is not a URL")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(invalid(
            &name,
            format!("{endpoint:?} is not an http(s) URL"),
        ));
    }
    let endpoint = if generic && protocol.is_http() {
        format!("{}/{path}", endpoint.trim_end_matches('/'))
    } else {
        endpoint
    };
    let mut headers = Vec::new();
    for n in [
        "OTEL_EXPORTER_OTLP_HEADERS".to_owned(),
        format!("OTEL_EXPORTER_OTLP_{signal}_HEADERS"),
    ] {
        for (k, v) in key_values(&n, &env.var(&n).unwrap_or_default())? {
            if http::HeaderName::from_bytes(k.as_bytes()).is_err()
                || http::HeaderValue::from_str(&v).is_err()
            {
                return Err(invalid(&n, "an entry is not a valid header"));
            }
            headers.retain(|(h, _): &(String, Secret)| !h.eq_ignore_ascii_case(&k));
            headers.push((k, Secret::new(v)));
        }
    }
    let timeout = match env.var(&format!("OTEL_EXPORTER_OTLP_{signal}_TIMEOUT")) {
        Some(_) => millis(env, &format!("OTEL_EXPORTER_OTLP_{signal}_TIMEOUT"), 10000)?,
        None => millis(env, "OTEL_EXPORTER_OTLP_TIMEOUT", 10000)?,
    };
    Ok(Some(OtlpTarget {
        endpoint,
        protocol,
        headers,
        timeout,
    }))
}

fn openinference(env: &dyn EnvSource) -> Result<OpenInferenceConfig, ConfigError> {
    let b = |n: &str| bool_var(env, n, false);
    let max = number(env, "OPENINFERENCE_BASE64_IMAGE_MAX_LENGTH", 32000)?;
    Ok(OpenInferenceConfig {
        hide_llm_invocation_parameters: b("OPENINFERENCE_HIDE_LLM_INVOCATION_PARAMETERS")?,
        hide_inputs: b("OPENINFERENCE_HIDE_INPUTS")?,
        hide_outputs: b("OPENINFERENCE_HIDE_OUTPUTS")?,
        hide_input_messages: b("OPENINFERENCE_HIDE_INPUT_MESSAGES")?,
        hide_output_messages: b("OPENINFERENCE_HIDE_OUTPUT_MESSAGES")?,
        hide_input_images: b("OPENINFERENCE_HIDE_INPUT_IMAGES")?,
        hide_input_text: b("OPENINFERENCE_HIDE_INPUT_TEXT")?,
        hide_output_text: b("OPENINFERENCE_HIDE_OUTPUT_TEXT")?,
        hide_embeddings_text: b("OPENINFERENCE_HIDE_EMBEDDINGS_TEXT")?,
        hide_embeddings_vectors: b("OPENINFERENCE_HIDE_EMBEDDINGS_VECTORS")?,
        hide_prompts: b("OPENINFERENCE_HIDE_PROMPTS")?,
        hide_choices: b("OPENINFERENCE_HIDE_CHOICES")?,
        base64_image_max_length: usize::try_from(max).unwrap_or(usize::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<TelemetryConfig, ConfigError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        TelemetryConfig::from_source(&move |n: &str| m.get(n).cloned())
    }

    #[test]
    fn nothing_configured_means_no_exporter() {
        let c = cfg(&[]).unwrap();
        assert!(c.traces.is_none() && c.metrics.is_none());
        assert_eq!(c.service_name, "ai-gateway");
        assert_eq!(c.semconv, SemConv::OpenInference);
        assert!(c.propagate);
        assert_eq!(c.span_headers.len(), 1);
        assert_eq!(c.span_headers[0].0, "agent-session-id");
        assert_eq!(c.span_headers[0].1, "session.id");
        assert!(c.metrics_headers.is_empty());
    }

    #[test]
    fn generic_endpoint_gets_signal_paths_for_http() {
        let c = cfg(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")]).unwrap();
        assert_eq!(
            c.traces.unwrap().endpoint,
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            c.metrics.unwrap().endpoint,
            "http://127.0.0.1:4318/v1/metrics"
        );
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://h:1/custom"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ])
        .unwrap();
        let t = c.traces.unwrap();
        assert_eq!(
            (t.endpoint.as_str(), t.protocol),
            ("http://h:1/custom", Protocol::Grpc)
        );
        assert!(c.metrics.is_none());
    }

    /// A signal's own endpoint is used as given (no path appended), with its own
    /// protocol; the other signal keeps the generic one.
    #[test]
    fn metrics_endpoint_and_protocol_of_their_own() {
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:4317"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1500"),
        ])
        .unwrap();
        let m = c.metrics.unwrap();
        assert_eq!(
            (m.endpoint.as_str(), m.protocol),
            ("http://m:4317", Protocol::Grpc)
        );
        assert_eq!(c.traces.unwrap().endpoint, "http://h:4318/v1/traces");
        assert_eq!(c.metric_export_interval, Duration::from_millis(1500));
        let e = cfg(&[("OTEL_METRIC_EXPORT_INTERVAL", "soon")]).unwrap_err();
        assert_eq!(e.variable, "OTEL_METRIC_EXPORT_INTERVAL");
        let e = cfg(&[("OTEL_METRICS_EXPORTER", "statsd")]).unwrap_err();
        assert_eq!(e.variable, "OTEL_METRICS_EXPORTER");
    }

    #[test]
    fn http_json_and_console() {
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ])
        .unwrap();
        let t = c.traces.unwrap();
        assert_eq!(
            (t.endpoint.as_str(), t.protocol),
            ("http://h:4318/v1/traces", Protocol::HttpJson)
        );
        let c = cfg(&[("OTEL_TRACES_EXPORTER", "console")]).unwrap();
        assert!(c.console_traces && c.traces.is_none());
        let c = cfg(&[
            ("OTEL_METRICS_EXPORTER", "console"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
        ])
        .unwrap();
        assert!(c.console_metrics && c.metrics.is_none() && c.traces.is_some());
        let c = cfg(&[
            ("OTEL_METRICS_EXPORTER", "console"),
            ("OTEL_SDK_DISABLED", "true"),
        ])
        .unwrap();
        assert!(!c.console_metrics);
        let c = cfg(&[
            ("OTEL_TRACES_EXPORTER", "console"),
            ("OTEL_SDK_DISABLED", "true"),
        ])
        .unwrap();
        assert!(!c.console_traces);
    }

    #[test]
    fn invalid_values_name_the_variable() {
        for (k, v) in [
            ("AI_GATEWAY_TRACING_SEMCONV", "otel"),
            ("OTEL_SDK_DISABLED", "yes"),
            ("OTEL_TRACES_EXPORTER", "zipkin"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/xml"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
            ("OTEL_PROPAGATORS", "b3"),
            ("OPENINFERENCE_HIDE_INPUTS", "maybe"),
            ("OTEL_AIGW_SPAN_REQUEST_HEADER_ATTRIBUTES", "novalue"),
            ("OTEL_RESOURCE_ATTRIBUTES", "a"),
        ] {
            let e = cfg(&[(k, v), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:1")]).unwrap_err();
            assert_eq!(e.variable, k, "{e}");
        }
        let e = cfg(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317")]).unwrap_err();
        assert_eq!(e.variable, "OTEL_EXPORTER_OTLP_ENDPOINT");
    }

    #[test]
    fn headers_never_appear_in_errors_or_debug() {
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:1"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer%20sk-secret-1",
            ),
        ])
        .unwrap();
        let t = c.traces.unwrap();
        assert_eq!(t.headers[0].1.expose(), "Bearer sk-secret-1");
        assert!(!format!("{t:?}").contains("sk-secret-1"));
        let e = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:1"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x=sk-secret-2\n"),
        ]);
        if let Err(e) = e {
            assert!(!e.to_string().contains("sk-secret-2"));
        }
    }

    #[test]
    fn header_mappings_merge_and_disable() {
        let c = cfg(&[
            (
                "OTEL_AIGW_REQUEST_HEADER_ATTRIBUTES",
                "x-tenant-id:tenant.id",
            ),
            ("OTEL_AIGW_SPAN_REQUEST_HEADER_ATTRIBUTES", ""),
            ("OTEL_SERVICE_NAME", "gw"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=ignored,deployment.environment=prod%2C1",
            ),
        ])
        .unwrap();
        assert_eq!(c.span_headers.len(), 1);
        assert_eq!(c.span_headers[0].1, "tenant.id");
        assert_eq!(c.log_headers.len(), 2);
        assert_eq!(c.service_name, "gw");
        assert_eq!(
            c.resource,
            vec![("deployment.environment".to_owned(), "prod,1".to_owned())]
        );
        assert!(!cfg(&[("OTEL_PROPAGATORS", "none")]).unwrap().propagate);
    }
}
