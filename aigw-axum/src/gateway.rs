//! The gateway handle: a hot-swappable configuration snapshot, the upstream client and
//! the settings every request shares.

use crate::client::{ClientSettings, HttpClient, Upstream, build_clients};
use crate::error::GatewayError;
use crate::record::{RecordSink, TracingSink};
use aigw_core::api::Endpoint;
use aigw_core::exchange::Plan;
use aigw_core::meter::NoopMeter;
use aigw_core::{Result, TokenMeter, TranslatorFactory};
use arc_swap::ArcSwap;
use http::HeaderMap;
use std::sync::Arc;
use std::time::Duration;

/// Chooses the route and the ordered backends for a request.
///
/// Implemented over the compiled routing snapshot of a configuration
/// ([`crate::config::ConfigPlanner`]); tests and embedders can supply their own.
pub trait RoutePlanner: Send + Sync + 'static {
    /// Plans a request for `model` (already in `headers` as `x-ai-eg-model`), or fails
    /// with [`aigw_core::Error::NoRoute`].
    fn plan(&self, endpoint: Endpoint, model: &str, headers: &HeaderMap) -> Result<Plan>;

    /// Where a request on the stored Responses API response `id` goes when a
    /// passthrough backend holds it (see
    /// [`aigw_core::planner::Planner::plan_stored_response`]): the plan and the model
    /// for records. `None`: the gateway answers from its own store (or 404).
    fn plan_stored_response(&self, id: &str) -> Option<(Plan, String)> {
        let _ = id;
        None
    }

    /// Model names served, for `GET /v1/models`.
    fn models(&self) -> Vec<ModelEntry> {
        Vec::new()
    }

    /// Whether streams must carry usage upstream (costs or token limits are configured).
    fn force_include_usage(&self) -> bool {
        false
    }

    /// The configured request body limit (a ClientTrafficPolicy's `bufferLimit`), which
    /// replaces [`Settings::max_body_bytes`] when set.
    fn max_body_bytes(&self) -> Option<usize> {
        None
    }

    /// How to reach `backend` (a [`aigw_core::exchange::Target::backend`]) beyond its
    /// first endpoint: every endpoint, and a client for its own TLS settings. `None`:
    /// the target's address over the shared client.
    fn connection(&self, backend: &str) -> Option<Arc<BackendConnection>> {
        let _ = backend;
        None
    }

    /// Starts the background work of this configuration (active health checks) with
    /// the gateway's shared client; it stops by itself once the configuration is
    /// replaced and dropped.
    fn start(&self, client: &HttpClient) {
        let _ = client;
    }
}

/// How to reach one backend.
#[derive(Clone, Default)]
pub struct BackendConnection {
    /// Every endpoint's `host:port`, in order; on a connect failure the next is dialled
    /// (the `Host` header keeps the first, so signatures and virtual hosts still hold).
    pub authorities: Vec<String>,
    /// A client with the backend's own CA bundle and SNI, instead of the shared one
    /// (its active health checks use it).
    pub client: Option<HttpClient>,
    /// The pool the backend's requests go through, when not the gateway's shared one
    /// (its own TLS settings, timeouts or protocol). Without it, a `client` set here
    /// carries the requests.
    pub upstream: Option<Upstream>,
    /// Why the backend's TLS client could not be built; attempts on it fail over.
    pub tls_error: Option<String>,
    /// The circuit breaker of a BackendTrafficPolicy's `circuitBreaker`.
    pub circuit: Option<Arc<crate::health::Circuit>>,
    /// Outlier ejection and active-check state (`healthCheck`).
    pub health: Option<aigw_core::health::HostHealth>,
    /// For an InferencePool: its endpoint picker, asked before every attempt.
    pub pool: Option<Arc<crate::inference_pool::PoolRouting>>,
}

impl std::fmt::Debug for BackendConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendConnection")
            .field("authorities", &self.authorities)
            .field("dedicated_client", &self.client.is_some())
            .field("dedicated_pool", &self.upstream.is_some())
            .field("tls_error", &self.tls_error)
            .field("circuit", &self.circuit.is_some())
            .field("health", &self.health.is_some())
            .field("pool", &self.pool)
            .finish()
    }
}

pub use crate::identity::ClientId;

/// One entry of the models list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    /// The model name.
    pub id: String,
    /// `owned_by` (`modelsOwnedBy`).
    pub owned_by: String,
    /// Creation time as Unix seconds (`modelsCreatedAt`).
    pub created: i64,
}

/// Everything that changes when the configuration changes; swapped atomically.
#[derive(Clone)]
pub struct Snapshot {
    /// Routing.
    pub planner: Arc<dyn RoutePlanner>,
    /// Translators for every (client API × backend schema) pair.
    pub factory: Arc<dyn TranslatorFactory>,
    /// Token meter.
    pub meter: Arc<dyn TokenMeter>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").finish_non_exhaustive()
    }
}

impl Snapshot {
    /// A snapshot with the given planner and translator factory and no token meter.
    pub fn new(planner: Arc<dyn RoutePlanner>, factory: Arc<dyn TranslatorFactory>) -> Self {
        Self {
            planner,
            factory,
            meter: Arc::new(NoopMeter),
        }
    }

    /// Replaces the token meter.
    #[must_use]
    pub fn with_meter(mut self, meter: Arc<dyn TokenMeter>) -> Self {
        self.meter = meter;
        self
    }
}

/// How failed attempts are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included. Backends are tried in plan order
    /// (priority group by group) and the order wraps around when attempts remain.
    pub max_attempts: u32,
    /// Delay before retrying the same backend (doubled per retry).
    pub backoff: Duration,
    /// The longest `Retry-After` honoured; a longer one ends retries on that backend.
    pub retry_after_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: Duration::from_millis(100),
            retry_after_cap: Duration::from_secs(10),
        }
    }
}

/// Settings shared by every request.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Largest total size of request header names and values (431 beyond).
    pub max_header_bytes: usize,
    /// Request timeout when the route sets none (upstream's default is 60 s).
    pub default_request_timeout: Duration,
    /// Stream idle timeout when the route sets none.
    pub default_stream_idle_timeout: Option<Duration>,
    /// Largest upstream error body read for normalisation.
    pub max_error_body_bytes: usize,
    /// Retry and fallback behaviour.
    pub retry: RetryPolicy,
    /// Upstream client settings.
    pub client: ClientSettings,
    /// Start a W3C trace for requests that arrive without a `traceparent` (an incoming
    /// one is always continued); see [`crate::trace_context`].
    pub trace_propagation: bool,
    /// Longest pause between two pieces of a request body (408 beyond); `None`: no bound.
    pub body_idle_timeout: Option<Duration>,
    /// Longest time to receive a whole request body (408 beyond); `None`: no bound.
    pub body_timeout: Option<Duration>,
    /// Requests handled at once (streams included until they end); beyond, 503 with
    /// `retry-after` at once rather than a queue. `None`: no cap.
    pub max_in_flight: Option<usize>,
    /// Bytes of request bodies buffered across all requests in flight; a request whose
    /// body does not fit gets 503 with `retry-after`. `None`: no bound.
    pub max_buffered_body_bytes: Option<usize>,
    /// Where the endpoints are mounted (upstream's `rootPrefix` and
    /// `endpointPrefixes`); the default layout serves `/v1/…`, `/anthropic/v1/…` and
    /// `/cohere/v2/rerank`.
    pub prefixes: aigw_core::api::EndpointPrefixes,
    /// How long and how far an upstream stream is read on after its client hung up,
    /// for the provider's final usage report (see [`aigw_core::estimate`]).
    pub cancel_drain: aigw_core::estimate::CancelDrain,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 * 1024 * 1024,
            max_header_bytes: 64 * 1024,
            default_request_timeout: Duration::from_secs(60),
            default_stream_idle_timeout: None,
            max_error_body_bytes: 1024 * 1024,
            retry: RetryPolicy::default(),
            client: ClientSettings::default(),
            trace_propagation: false,
            body_idle_timeout: Some(Duration::from_secs(30)),
            body_timeout: Some(Duration::from_secs(120)),
            max_in_flight: Some(4096),
            max_buffered_body_bytes: Some(512 * 1024 * 1024),
            prefixes: aigw_core::api::EndpointPrefixes::default(),
            cancel_drain: aigw_core::estimate::CancelDrain::default(),
        }
    }
}

impl Settings {
    fn admission_bounds(&self) -> crate::admission::Bounds {
        crate::admission::Bounds {
            max_in_flight: self.max_in_flight,
            max_buffered_body_bytes: self.max_buffered_body_bytes,
            body_idle_timeout: self.body_idle_timeout,
            body_timeout: self.body_timeout,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) snapshot: ArcSwap<Snapshot>,
    pub(crate) client: HttpClient,
    /// The proxied requests' pool, over the same connector as `client`.
    pub(crate) upstream: Upstream,
    pub(crate) settings: Settings,
    pub(crate) sink: Arc<dyn RecordSink>,
    pub(crate) admission: crate::admission::Admission,
    pub(crate) telemetry: aigw_core::telemetry::Telemetry,
    pub(crate) spending: Option<Arc<aigw_core::budget::Spending>>,
}

/// The gateway: a `tower::Service` over `http::Request<axum::body::Body>`, cheap to
/// clone (all clones share one snapshot, client and pool).
///
/// ```no_run
/// # async fn demo(snapshot: aigw_axum::Snapshot) -> Result<(), Box<dyn std::error::Error>> {
/// let gateway = aigw_axum::Gateway::builder(snapshot).build()?;
/// let app: axum::Router = axum::Router::new().nest_service("/ai", gateway.clone());
/// # let _ = app; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Gateway`].
pub struct GatewayBuilder {
    snapshot: Snapshot,
    settings: Settings,
    sink: Arc<dyn RecordSink>,
    telemetry: aigw_core::telemetry::Telemetry,
    spending: Option<Arc<aigw_core::budget::Spending>>,
}

impl std::fmt::Debug for GatewayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayBuilder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl GatewayBuilder {
    /// Replaces the settings.
    #[must_use]
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Sends finished exchanges to `sink` instead of the default access log.
    #[must_use]
    pub fn record_sink(mut self, sink: Arc<dyn RecordSink>) -> Self {
        self.sink = sink;
        self
    }

    /// Records a span per request (and header-mapped attributes on records) through
    /// `telemetry`; see [`aigw_core::telemetry`]. Off by default.
    #[must_use]
    pub fn telemetry(mut self, telemetry: aigw_core::telemetry::Telemetry) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// Prices every request and enforces money budgets through `spending` (see
    /// [`aigw_core::budget`]): budgets are checked before the upstream call, a stream
    /// is cut off when a `cutoff` budget runs out, and the cost is recorded. Off by
    /// default.
    #[must_use]
    pub fn spending(mut self, spending: Arc<aigw_core::budget::Spending>) -> Self {
        self.spending = Some(spending);
        self
    }

    /// Builds the gateway and its upstream client.
    pub fn build(self) -> Result<Gateway, GatewayError> {
        let (client, upstream) = build_clients(&self.settings.client)?;
        let admission = crate::admission::Admission::new(self.settings.admission_bounds());
        self.snapshot.planner.start(&client);
        Ok(Gateway {
            inner: Arc::new(Inner {
                snapshot: ArcSwap::from_pointee(self.snapshot),
                client,
                upstream,
                settings: self.settings,
                sink: self.sink,
                admission,
                telemetry: self.telemetry,
                spending: self.spending,
            }),
        })
    }
}

impl Gateway {
    /// Starts building a gateway over a configuration snapshot.
    pub fn builder(snapshot: Snapshot) -> GatewayBuilder {
        GatewayBuilder {
            snapshot,
            settings: Settings::default(),
            sink: Arc::new(TracingSink),
            telemetry: aigw_core::telemetry::Telemetry::disabled(),
            spending: None,
        }
    }

    /// Atomically replaces the configuration; requests in flight finish on the old one.
    pub fn swap(&self, snapshot: Snapshot) {
        snapshot.planner.start(&self.inner.client);
        self.inner.snapshot.store(Arc::new(snapshot));
    }

    /// The current configuration snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.load_full()
    }

    /// The pooled upstream client (cheap to clone), for side fetches such as JWKS
    /// documents that should share its TLS roots and connection pool.
    pub fn http_client(&self) -> HttpClient {
        self.inner.client.clone()
    }

    /// An axum router answering every gateway endpoint; mount it with `nest` or
    /// `merge`.
    pub fn router(&self) -> axum::Router {
        axum::Router::new().fallback_service(self.clone())
    }
}
