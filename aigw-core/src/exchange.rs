//! The exchange engine: one client request's path through the gateway, transport-agnostic.
//!
//! Every adapter (the axum service, the Envoy ExtProc server) drives the same steps; only
//! who moves the bytes differs:
//!
//! 1. [`Exchange::new`] sniffs the body (model, stream flag) and sets `x-ai-eg-model`,
//!    overwriting any value the client sent;
//! 2. the adapter routes (a [`Plan`] of [`Target`]s in attempt order) and calls
//!    [`Exchange::reserve`] once;
//! 3. per attempt, [`Exchange::attempt`] translates the *original* body for the target's
//!    schema, applies the header and body mutations and yields an [`OutgoingRequest`]
//!    ready for [`CredentialProvider::apply`];
//! 4. [`Attempt::response_headers`] classifies the upstream's answer (success, retryable
//!    error, final error); [`Exchange::chunk`] translates body chunks, folds cumulative
//!    usage into the meter guard and records the time to first byte;
//! 5. [`Exchange::finish`] settles the meter exactly once and returns the
//!    [`ExchangeRecord`] that logging and metrics layers consume. If the exchange is
//!    dropped instead (client hang-up), the [`MeterGuard`] settles with what was seen.
//!
//! No I/O and no async runtime here: the only async step is the meter reservation,
//! which is a plain future.

use crate::api::{Endpoint, RequestInfo, sniff_request};
use crate::cost::{CostInput, CostSet};
use crate::credential::{CredentialProvider, OutgoingRequest};
use crate::error::{ClientApi, Error, Result, anthropic_error_type};
use crate::estimate::{Delivered, UsageSource};
use crate::meter::{MeterGuard, MeterRequest, TokenMeter};
use crate::retry::RetryOn;
use crate::schema::VersionedSchema;
use crate::strip_headers::HeaderSet;
use crate::translate::{
    BodyChange, DroppedField, ErrorResponse, HeaderMutation, RequestContext, Translator,
    TranslatorFactory, TranslatorSpec,
};
use crate::usage::TokenUsage;
use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, StatusCode};
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

mod spend;

/// The routing header every request carries upstream and that routes match on.
pub const MODEL_HEADER: HeaderName = HeaderName::from_static("x-ai-eg-model");

/// Headers that never travel from the client to the upstream: hop-by-hop headers, the
/// client's own credentials (the backend's credential provider sets the upstream's),
/// `host` (the upstream authority is the dialled backend) and `accept-encoding`
/// (translators need the upstream's bytes uncompressed).
static STRIPPED_REQUEST_HEADERS: [HeaderName; 16] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::CONNECTION,
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::AUTHORIZATION,
    header::ACCEPT_ENCODING,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("api-key"),
    // The verified client identity is for the gateway's own limits, not the upstream.
    crate::identity_headers::CLIENT_ID,
    crate::identity_headers::TEAM,
    crate::identity_headers::CLIENT_KIND,
];

static STRIPPED_REQUEST: LazyLock<HeaderSet> =
    LazyLock::new(|| HeaderSet::new(&STRIPPED_REQUEST_HEADERS));

/// Headers of a successful upstream response that are not copied to the client's
/// (the translator's edits may set them again).
static STRIPPED_RESPONSE_HEADERS: [HeaderName; 5] = [
    header::CONTENT_LENGTH,
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::CONTENT_ENCODING,
    HeaderName::from_static("keep-alive"),
];

static STRIPPED_RESPONSE: LazyLock<HeaderSet> =
    LazyLock::new(|| HeaderSet::new(&STRIPPED_RESPONSE_HEADERS));

/// Top-level JSON field edits applied to the upstream body (`bodyMutation`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BodyMutation {
    /// Fields to set (top level only), with their JSON values.
    pub set: Vec<(String, serde_json::Value)>,
    /// Fields to remove (top level only).
    pub remove: Vec<String>,
}

impl BodyMutation {
    /// Whether the mutation changes nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    /// Layers `over` on top of `self`: a field named by both takes `over`'s edit (the
    /// route's mutation wins over the backend's).
    pub fn merged_with(&self, over: &Self) -> Self {
        let touched = |name: &str| {
            over.set.iter().any(|(n, _)| n == name) || over.remove.iter().any(|n| n == name)
        };
        let mut out = Self {
            set: self
                .set
                .iter()
                .filter(|(n, _)| !touched(n))
                .cloned()
                .collect(),
            remove: self
                .remove
                .iter()
                .filter(|n| !touched(n))
                .cloned()
                .collect(),
        };
        out.set.extend(over.set.iter().cloned());
        out.remove.extend(over.remove.iter().cloned());
        out
    }

    /// Applies the mutation to a JSON object body: removals first, then sets.
    pub fn apply(&self, body: &[u8]) -> Result<Bytes> {
        let mut obj: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)
            .map_err(|e| Error::internal(format!("body mutation needs a JSON object: {e}")))?;
        for name in &self.remove {
            obj.remove(name);
        }
        for (name, value) in &self.set {
            obj.insert(name.clone(), value.clone());
        }
        serde_json::to_vec(&obj)
            .map(Bytes::from)
            .map_err(|e| Error::internal(format!("body mutation: {e}")))
    }
}

/// Where a backend is dialled.
///
/// Shared strings: a plan clones its targets for every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamAddr {
    /// `http` or `https`.
    pub scheme: Arc<str>,
    /// `host[:port]`.
    pub authority: Arc<str>,
}

/// One backend a request may be sent to, with everything needed to build its request.
#[derive(Debug, Clone)]
pub struct Target {
    /// The backend's name (`namespace/name`), for records, metrics and meters.
    pub backend: Arc<str>,
    /// The backend's API schema.
    pub schema: VersionedSchema,
    /// Where the backend is dialled.
    pub upstream: UpstreamAddr,
    /// `modelNameOverride` of the backendRef.
    pub model_override: Option<Arc<str>>,
    /// Header edits, route's already layered over the backend's.
    pub headers: HeaderMutation,
    /// Body edits, route's already layered over the backend's.
    pub body: BodyMutation,
    /// The backend's credentials, when it has a security policy.
    pub credential: Option<Arc<dyn CredentialProvider>>,
    /// Priority of the backendRef (0 is tried first).
    pub priority: u32,
}

/// The route chosen for a request and its backends in the order they are tried.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The route (`namespace/name`).
    pub route: Arc<str>,
    /// Candidates in attempt order: priority group by priority group, weighted order
    /// within a group.
    pub targets: Vec<Target>,
    /// Idle time allowed between upstream bytes (`streamIdleTimeout`), if configured.
    pub stream_idle_timeout: Option<Duration>,
    /// Overall request timeout (route `timeouts.request`, default 60 s).
    pub request_timeout: Option<Duration>,
    /// Per-try timeout (route `timeouts.backendRequest`), if configured.
    pub per_try_timeout: Option<Duration>,
    /// The route's `llmRequestCosts`, computed when the exchange finishes. Streams ask
    /// the upstream for usage when costs are configured.
    pub costs: Option<Arc<CostSet>>,
    /// Attempts allowed (first included), from a BackendTrafficPolicy's `retry`; the
    /// adapter's default applies when `None`.
    pub max_attempts: Option<u32>,
    /// Backoff before retrying the same backend, from a BackendTrafficPolicy's `retry`.
    pub backoff: Option<Duration>,
    /// Which failures are retried, from a BackendTrafficPolicy's `retry.retryOn`; the
    /// gateway's default ([`RetryOn::default`]) when `None`.
    pub retry_on: Option<Arc<RetryOn>>,
}

/// What happened to a request, for logging, metrics and metadata.
#[derive(Debug, Clone, Default)]
pub struct ExchangeRecord {
    /// The client-facing endpoint.
    pub endpoint: Option<Endpoint>,
    /// The route that matched.
    pub route: Option<Arc<str>>,
    /// The backend that produced the response (the last one tried).
    pub backend: Option<Arc<str>>,
    /// The backend's schema provider name (`gen_ai.provider.name`).
    pub provider: Option<&'static str>,
    /// The model the client asked for.
    pub request_model: String,
    /// The model after `modelNameOverride`.
    pub effective_model: Option<String>,
    /// The model the upstream reported.
    pub response_model: Option<String>,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Final status sent to the client.
    pub status: Option<StatusCode>,
    /// Cumulative token usage.
    pub usage: TokenUsage,
    /// Whether [`ExchangeRecord::usage`] is the provider's report or (for a stream cut
    /// before its final usage) the gateway's estimate ([`crate::estimate`]).
    pub usage_source: UsageSource,
    /// Whether the upstream was read on after the client hung up
    /// ([`Exchange::client_gone`]), and to its end.
    pub drained: Option<bool>,
    /// Cost values by metadata key (`llmRequestCosts`), filled by the adapter's cost hook.
    pub costs: Vec<(String, u64)>,
    /// Attempts made (1 when the first backend answered).
    pub attempts: u32,
    /// Time from the start of the exchange to its end.
    pub latency: Option<Duration>,
    /// Time from the start of the exchange to the first response body byte.
    pub time_to_first_byte: Option<Duration>,
    /// Time spent waiting on upstreams (request sent until response complete), so the
    /// gateway's own overhead is `latency - upstream_wait`.
    pub upstream_wait: Option<Duration>,
    /// The error's message, when the exchange failed.
    pub error: Option<String>,
    /// The authenticated client (API key id, JWT subject), when known.
    pub client: Option<Arc<str>>,
    /// The authenticated client with its kind, team and budget, when the adapter's
    /// authentication step resolved one ([`Exchange::set_identity`]).
    pub identity: Option<Arc<crate::identity::ClientIdentity>>,
    /// The request path as the client sent it (without the query), when the adapter
    /// records it.
    pub path: Option<String>,
    /// The W3C trace id the request continued or started, for joining access logs with
    /// the upstream's traces.
    pub trace_id: Option<u128>,
    /// The request's cost at the price table ([`crate::pricing`]) in micro-dollars,
    /// when the exchange is priced ([`Exchange::set_spending`]) and its model has a
    /// price.
    pub spend_micros: Option<u64>,
    /// Request fields the translators of the attempts left out (each with the backend
    /// of its attempt), counted in `aigw_dropped_fields_total`.
    pub dropped: Vec<(DroppedField, Arc<str>)>,
    /// Attributes taken from request headers for metrics and access logs
    /// (`OTEL_AIGW_{METRICS_,LOG_}REQUEST_HEADER_ATTRIBUTES`): attribute name, value.
    pub request_labels: Vec<(Arc<str>, String)>,
}

/// One client request in flight.
#[derive(Debug)]
pub struct Exchange {
    endpoint: Endpoint,
    body: Bytes,
    info: RequestInfo,
    headers: HeaderMap,
    force_include_usage: bool,
    started: Instant,
    chunks: u64,
    guard: Option<MeterGuard>,
    costs: Option<Arc<CostSet>>,
    client_ip: Option<IpAddr>,
    query: Option<String>,
    record: ExchangeRecord,
    /// The generated text of a stream seen so far (sent to the client, or read after it
    /// left), for an estimate if the stream is cut.
    delivered: Delivered,
    /// Whether the upstream's response was read to its end.
    completed: bool,
    /// Whether the client is gone and chunks are read only for their usage.
    draining: bool,
    span: Option<crate::telemetry::RequestSpan>,
    /// The spend engine, when the exchange is priced.
    spending: Option<Arc<crate::budget::Spending>>,
    /// The admitted request's budgets and prices.
    spend: Option<crate::budget::SpendGuard>,
    /// Whether a budget cut the stream off.
    cut: bool,
    /// The request's input tokens as estimated, once, for a stream's running cost.
    input_estimate: Option<u64>,
    running_output: spend::RunningOutput,
}

impl Exchange {
    /// Starts an exchange: sniffs the body and sets `x-ai-eg-model` on the headers.
    ///
    /// Fails with a 400 for malformed JSON or a missing model.
    pub fn new(endpoint: Endpoint, mut headers: HeaderMap, body: Bytes) -> Result<Self> {
        let info = Self::sniff(endpoint, &mut headers, &body)?;
        Ok(Self::start(endpoint, headers, body, info))
    }

    /// [`Exchange::new`], made in its box: an exchange is over a kilobyte, and one made
    /// on the stack and then boxed is copied on the way.
    pub fn boxed(endpoint: Endpoint, mut headers: HeaderMap, body: Bytes) -> Result<Box<Self>> {
        let info = Self::sniff(endpoint, &mut headers, &body)?;
        let slot = Box::new_uninit();
        Ok(Box::write(slot, Self::start(endpoint, headers, body, info)))
    }

    /// Sniffs the body and sets `x-ai-eg-model` on the headers.
    fn sniff(endpoint: Endpoint, headers: &mut HeaderMap, body: &Bytes) -> Result<RequestInfo> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let info = sniff_request(endpoint, content_type, body)?;
        let value = HeaderValue::from_str(&info.model)
            .map_err(|_| Error::bad_request("the model name is not a valid header value"))?;
        headers.insert(MODEL_HEADER, value);
        Ok(info)
    }

    #[inline(always)]
    fn start(endpoint: Endpoint, headers: HeaderMap, body: Bytes, info: RequestInfo) -> Self {
        // The clock is read first and the record made inside the literal: a call
        // between the record's making and the literal's kept the record on the stack,
        // copied twice (≈ 0.5 KB each) on its way into the box.
        let started = Instant::now();
        Self {
            record: ExchangeRecord {
                endpoint: Some(endpoint),
                request_model: info.model.clone(),
                stream: info.stream,
                ..ExchangeRecord::default()
            },
            endpoint,
            body,
            info,
            headers,
            force_include_usage: false,
            started,
            chunks: 0,
            guard: None,
            costs: None,
            client_ip: None,
            query: None,
            delivered: Delivered::default(),
            completed: false,
            draining: false,
            span: None,
            spending: None,
            spend: None,
            cut: false,
            input_estimate: None,
            running_output: spend::RunningOutput::default(),
        }
    }

    /// Starts an exchange for a request on a stored Responses API response that a
    /// passthrough backend holds ([`Endpoint::ResponsesStored`]): it has no body to
    /// sniff, so the model (for records and meters) comes from [`crate::owners`], and
    /// the translator reads the request's method and path from the body this builds,
    /// `{"model", "method", "path"}`.
    pub fn stored_response(
        headers: HeaderMap,
        method: &http::Method,
        path: &str,
        model: &str,
    ) -> Result<Self> {
        let body = serde_json::json!({"model": model, "method": method.as_str(), "path": path});
        let body = Bytes::from(body.to_string());
        Self::new(Endpoint::ResponsesStored, headers, body)
    }

    /// Records the client's query string (without `?`), which a native passthrough
    /// forwards to its backend ([`Translator::forwards_client_query`]).
    pub fn set_query(&mut self, query: Option<&str>) {
        self.query = query.filter(|q| !q.is_empty()).map(str::to_owned);
    }

    /// Starts the request's span (when `telemetry` is enabled), dated from when the
    /// exchange was created: its parent is the client's `traceparent`, each attempt
    /// gets a child span named on the upstream request, and it ends when the exchange
    /// finishes or is dropped. The trace id is recorded on the record.
    pub fn set_telemetry(&mut self, telemetry: &crate::telemetry::Telemetry) {
        // The start time costs three clock reads: only a span needs it.
        if telemetry.is_enabled() {
            self.start_span(telemetry);
        }
        self.record.request_labels = telemetry.request_labels(&self.headers);
    }

    fn start_span(&mut self, telemetry: &crate::telemetry::Telemetry) {
        let start = std::time::SystemTime::now()
            .checked_sub(self.started.elapsed())
            .unwrap_or_else(std::time::SystemTime::now);
        self.span = telemetry.start(
            self.endpoint,
            self.info.stream,
            &self.info.model,
            &self.headers,
            &self.body,
            start,
        );
        if let Some(ctx) = self
            .span
            .as_ref()
            .and_then(crate::telemetry::RequestSpan::context)
        {
            self.record.trace_id = Some(ctx.trace_id);
        }
    }

    /// Whether the request has a span (then attempts carry their own `traceparent`).
    pub const fn is_traced(&self) -> bool {
        self.span.is_some()
    }

    /// The client-facing endpoint.
    pub const fn endpoint(&self) -> Endpoint {
        self.endpoint
    }

    /// The error envelope family of the client.
    pub const fn client_api(&self) -> ClientApi {
        self.endpoint.client_api()
    }

    /// The sniffed request.
    pub const fn info(&self) -> &RequestInfo {
        &self.info
    }

    /// The client's headers with `x-ai-eg-model` set (what routes match on).
    pub const fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Mutable access to the client's request headers, for adapters that settle client
    /// authentication after routing and drop the credential headers.
    pub const fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The original body.
    pub const fn body(&self) -> &Bytes {
        &self.body
    }

    /// Asks translators to request usage in streams even when the client did not
    /// (because costs or token limits are configured).
    pub const fn set_force_include_usage(&mut self, force: bool) {
        self.force_include_usage = force;
    }

    /// Records the authenticated client; meters charge it and records carry it.
    pub fn set_client(&mut self, client: Arc<str>) {
        self.record.client = Some(client);
    }

    /// Records the authenticated client's identity (and its id as the client name).
    pub fn set_identity(&mut self, identity: Arc<crate::identity::ClientIdentity>) {
        self.record.client = Some(identity.id.clone());
        self.record.identity = Some(identity);
    }

    /// Records the client's address (from the connection), for rate-limit selectors.
    pub const fn set_client_ip(&mut self, ip: IpAddr) {
        self.client_ip = Some(ip);
    }

    /// Records the route that matched.
    pub fn set_route(&mut self, route: Arc<str>) {
        self.record.route = Some(route);
    }

    /// The route recorded, if any.
    pub fn route(&self) -> Option<&Arc<str>> {
        self.record.route.as_ref()
    }

    /// Keeps the route's costs for [`Exchange::finish`] and forces usage on streams
    /// when any are configured (for adapters that leave the backend pick to a proxy).
    pub fn set_costs(&mut self, costs: Arc<CostSet>) {
        if !costs.is_empty() {
            self.force_include_usage = true;
            self.costs = Some(costs);
        }
    }

    /// Applies a plan's route-level settings: records the route, keeps its costs for
    /// [`Exchange::finish`] and forces usage on streams when costs are configured.
    pub fn apply_plan(&mut self, plan: &Plan) {
        self.record.route = Some(plan.route.clone());
        if let Some(c) = plan.costs.as_ref().filter(|c| !c.is_empty()) {
            self.force_include_usage = true;
            self.costs = Some(c.clone());
        }
    }

    /// The record so far.
    pub const fn record(&self) -> &ExchangeRecord {
        &self.record
    }

    /// Mutable access to the record, for adapter hooks (costs, upstream wait).
    pub const fn record_mut(&mut self) -> &mut ExchangeRecord {
        &mut self.record
    }

    /// A rough token estimate for the reservation: a quarter of the body's bytes plus
    /// the completion budget when the request names one.
    pub fn estimate(&self) -> u64 {
        // A form carries files (audio, images), not prompt text.
        let prompt = if self.endpoint.is_multipart() {
            0
        } else {
            (self.body.len() as u64) / 4
        };
        prompt + self.info.max_tokens.unwrap_or(0)
    }

    /// Reserves tokens with the meter for the first target; the reservation is settled
    /// exactly once, by [`Exchange::finish`] or when the exchange is dropped (then with
    /// the usage seen and the route's cost values computed from it). `client` defaults
    /// to the one given to [`Exchange::set_client`]. Call after [`Exchange::apply_plan`]
    /// so the meter sees the route and its costs.
    pub async fn reserve(
        &mut self,
        meter: Arc<dyn TokenMeter>,
        target: &Target,
        client: Option<&str>,
    ) -> Result<()> {
        let route = self.record.route.clone().unwrap_or_else(|| Arc::from(""));
        let model = target
            .model_override
            .as_deref()
            .unwrap_or(&self.info.model)
            .to_owned();
        let estimated = meter
            .reserve_settings()
            .map(|s| self.request_estimate(&model, s));
        self.admit_spend(target, &model, estimated, meter.reserve_settings())
            .await?;
        let recorded = self.record.client.clone();
        let costs = self.costs.clone();
        let request = MeterRequest {
            route: &route,
            backend: &target.backend,
            model: &model,
            client: client.or(recorded.as_deref()),
            estimate: self.estimate(),
            estimated,
            costs: costs.as_deref().map(|c| c as &dyn crate::meter::RouteCosts),
            headers: &self.headers,
            client_ip: self.client_ip,
        };
        let reservation = meter.reserve(&request).await?;
        if reservation.needs_usage() {
            self.force_include_usage = true;
        }
        // Made where it stays: built in a local and then moved in, the guard (over
        // 400 bytes) was copied twice.
        self.guard = Some(match &self.costs {
            Some(costs) => MeterGuard::new(meter, reservation).with_costs(
                costs.clone(),
                route,
                target.backend.clone(),
                model,
            ),
            None => MeterGuard::new(meter, reservation),
        });
        Ok(())
    }

    /// Builds the upstream request for one attempt against `target`, translating the
    /// original body afresh.
    pub fn attempt(&mut self, target: &Target, factory: &dyn TranslatorFactory) -> Result<Attempt> {
        self.attempt_in(target, factory, InPlace)
    }

    /// [`Exchange::attempt`], made in a box allocated first. An attempt is a few
    /// hundred bytes that an adapter moves from future to future; made on the stack
    /// and then boxed, it would be copied into its box too.
    pub fn attempt_boxed(
        &mut self,
        target: &Target,
        factory: &dyn TranslatorFactory,
    ) -> Result<Box<Attempt>> {
        self.attempt_in(target, factory, Box::new_uninit())
    }

    #[inline(always)]
    fn attempt_in<S: AttemptSlot>(
        &mut self,
        target: &Target,
        factory: &dyn TranslatorFactory,
        slot: S,
    ) -> Result<S::Made> {
        self.record.attempts += 1;
        self.record.backend = Some(target.backend.clone());
        self.record.provider = Some(target.schema.name.provider_name());
        let effective_model = target
            .model_override
            .as_deref()
            .unwrap_or(&self.info.model)
            .to_owned();
        let spec = TranslatorSpec {
            endpoint: self.endpoint,
            schema: &target.schema,
            model_override: target.model_override.as_deref(),
        };
        if let Some(g) = self.guard.as_mut() {
            g.set_target(&target.backend, &effective_model);
        }
        let mut translator = factory.translator(&spec)?;
        let ctx = RequestContext {
            body: &self.body,
            info: &self.info,
            headers: &self.headers,
            force_include_usage: self.force_include_usage,
        };
        let mut up = translator.request(&ctx)?;
        if let Some(q) = self.query.as_deref()
            && translator.forwards_client_query()
        {
            up.path.push(if up.path.contains('?') { '&' } else { '?' });
            up.path.push_str(q);
        }
        for d in translator.dropped_fields() {
            tracing::debug!(
                field = d.field,
                backend = %target.backend,
                reason = d.reason,
                "request field not carried to the backend"
            );
            self.record.dropped.push((*d, target.backend.clone()));
        }

        // Room for what is added below and by the adapter: `content-type`, credentials,
        // `host`, `traceparent`.
        let mut headers = crate::strip_headers::copy_without(&self.headers, &STRIPPED_REQUEST, 4);
        if target.model_override.is_some() {
            let value = HeaderValue::from_str(&effective_model)
                .map_err(|_| Error::internal("modelNameOverride is not a valid header value"))?;
            headers.insert(MODEL_HEADER, value);
        }
        up.headers.apply_to(&mut headers);
        target.headers.apply_to(&mut headers);
        // One lookup for the test and the insertion.
        if let header::Entry::Vacant(slot) = headers.entry(header::CONTENT_TYPE) {
            slot.insert(HeaderValue::from_static("application/json"));
        }

        let body = match up.body {
            BodyChange::Unchanged => self.body.clone(),
            BodyChange::Replaced(b) => b,
        };
        let body = if target.body.is_empty() {
            body
        } else {
            target.body.apply(&body)?
        };
        self.record.effective_model = Some(effective_model);
        let span = self
            .span
            .as_ref()
            .and_then(|s| s.attempt(&target.backend, self.record.attempts, &mut headers));
        Ok(slot.put(Attempt {
            translator,
            request: OutgoingRequest {
                method: up.method,
                scheme: str::to_owned(&target.upstream.scheme),
                authority: str::to_owned(&target.upstream.authority),
                path: up.path,
                headers,
                body,
            },
            streaming: self.info.stream,
            owner_recorded: false,
            span,
            limit_status: self.guard.as_ref().and_then(|g| g.status().copied()),
        }))
    }

    /// Translates one successful response chunk, folding usage into the meter guard and
    /// noting the first byte. Returns the bytes for the client (possibly empty).
    pub fn chunk(&mut self, attempt: &mut Attempt, chunk: Bytes, end: bool) -> Result<Bytes> {
        let out = attempt.translator.response_chunk(&chunk, end)?;
        if !attempt.owner_recorded
            && let (Some(id), Some(backend)) = (
                attempt.translator.response_id(),
                self.record.backend.as_ref(),
            )
        {
            let owner = crate::owners::Owner {
                backend: backend.clone(),
                model: self.info.model.clone(),
            };
            crate::owners::record(id, owner);
            attempt.owner_recorded = true;
        }
        if let Some(g) = self.guard.as_mut() {
            g.update(&out.usage);
        }
        self.record.usage.update(&out.usage);
        if out.response_model.is_some() {
            self.record.response_model = out.response_model;
        }
        if self.record.error.is_none()
            && let Some(e) = attempt.translator.in_band_error()
        {
            self.record.error = Some(e);
        }
        let bytes = out.body.unwrap_or(chunk);
        if self.info.stream && self.endpoint.generates_text() {
            match attempt.translator.event_text() {
                Some(text) => self.delivered.push_text(text),
                None => self.delivered.push(&bytes),
            }
        }
        self.completed |= end;
        self.chunks += 1;
        if self.is_cut() {
            return Ok(Bytes::new());
        }
        self.check_spend(end)?;
        if self.draining {
            // The client is gone: the chunk is read for its usage (and its text, which
            // the provider bills all the same) only.
            return Ok(Bytes::new());
        }
        if let Some(s) = self.span.as_mut() {
            s.chunk(&bytes);
        }
        if !bytes.is_empty() && self.record.time_to_first_byte.is_none() {
            self.record.time_to_first_byte = Some(self.started.elapsed());
        }
        Ok(bytes)
    }

    /// Notes that the client hung up while the upstream is still read (for its final
    /// usage report): later [`Exchange::chunk`]s translate for usage and return nothing.
    pub fn client_gone(&mut self) {
        self.draining = true;
        self.record.drained = Some(false);
    }

    /// Whether the upstream's response has been read to its end.
    pub const fn completed(&self) -> bool {
        self.completed
    }

    /// When the provider's final usage is missing — a response that started but did
    /// not complete, or a request the client abandoned after it was sent — replaces
    /// the usage with [`crate::estimate::settle_estimate`] and marks it estimated.
    fn estimate_if_cut(&mut self, abandoned: bool) {
        if self.draining {
            self.record.drained = Some(self.completed);
        }
        let started = self.chunks > 0;
        if self.completed
            || !self.endpoint.generates_text()
            || !(started || (abandoned && self.record.attempts > 0))
        {
            return;
        }
        let model = self
            .record
            .effective_model
            .as_deref()
            .unwrap_or(&self.info.model);
        let input = if self.record.usage.input.is_some() {
            0
        } else {
            crate::estimate::input_tokens(self.endpoint, model, &self.body)
        };
        let output = self.delivered.output_tokens(self.endpoint, model);
        let usage = crate::estimate::settle_estimate(&self.record.usage, input, output);
        if let Some(g) = self.guard.as_mut() {
            g.update(&usage);
            g.mark_estimated();
        }
        self.record.usage = usage;
        self.record.usage_source = UsageSource::Estimated;
    }

    /// Renders an error for the client in its API's envelope: status, content type and
    /// body.
    pub fn error_response(&self, error: &Error) -> (StatusCode, Bytes) {
        (error.status(), error.to_body(self.client_api()))
    }

    /// Renders an error as a final event in the client's stream format, for failures
    /// after the response has started (idle timeout, reset, malformed upstream data).
    pub fn stream_error_event(&self, error: &Error) -> Bytes {
        stream_error_event(self.endpoint, error)
    }

    /// Ends the exchange: computes the route's costs, settles the meter (exactly once)
    /// with them and returns the record.
    ///
    /// A stream that did not complete is settled with an estimate
    /// ([`crate::estimate`]); status 499 (the client closed the connection) also
    /// estimates a request that was sent but not answered yet.
    pub fn finish(mut self, status: StatusCode, error: Option<&Error>) -> ExchangeRecord {
        self.finish_in_place(status, error)
    }

    /// [`Self::finish`] of a boxed exchange, which is finished where it stands: moving
    /// it out of its box to finish it copied the whole exchange (over a kilobyte).
    pub fn finish_boxed(
        mut self: Box<Self>,
        status: StatusCode,
        error: Option<&Error>,
    ) -> ExchangeRecord {
        self.finish_in_place(status, error)
    }

    /// The work of [`Self::finish`]; the exchange is dropped right after it.
    fn finish_in_place(&mut self, status: StatusCode, error: Option<&Error>) -> ExchangeRecord {
        self.estimate_if_cut(status.as_u16() == 499);
        self.settle_spend();
        self.record.status = Some(status);
        self.record.latency = Some(self.started.elapsed());
        if let Some(costs) = self.costs.take() {
            self.record.costs = evaluate_costs(&costs, &self.record);
        }
        if let Some(g) = self.guard.take() {
            g.finish_with_costs(&self.record.costs);
        }
        if let Some(e) = error {
            self.record.error = Some(e.to_string());
        }
        if let Some(span) = self.span.take() {
            let body = error.map(|e| e.to_body(self.endpoint.client_api()));
            span.finish(crate::telemetry::Ending {
                status: status.as_u16(),
                error_body: body
                    .as_deref()
                    .map(|b| std::str::from_utf8(b).unwrap_or_default()),
                provider: self.record.provider,
                cancelled: false,
            });
        }
        std::mem::take(&mut self.record)
    }
}

impl Drop for Exchange {
    /// An exchange dropped unfinished was abandoned: its meter guard settles with the
    /// usage seen, estimated when the provider's report is missing.
    fn drop(&mut self) {
        if self.guard.is_some() || self.spend.is_some() {
            self.estimate_if_cut(true);
        }
        self.settle_spend();
    }
}

/// The outcome of an upstream's response headers.
#[derive(Debug)]
pub enum ResponseStart {
    /// A success: forward with these headers (mutations already applied).
    Success(HeaderMap),
    /// An error status: read the (small) body and call [`Attempt::error`]. `retryable`
    /// says whether another attempt may be made instead (5xx, 429) as long as nothing
    /// has been sent to the client.
    Error {
        /// Whether the status allows failing over.
        retryable: bool,
    },
}

/// One attempt against one backend: the outgoing request and the translator that reads
/// the answer.
pub struct Attempt {
    translator: Box<dyn Translator>,
    request: OutgoingRequest,
    streaming: bool,
    owner_recorded: bool,
    span: Option<crate::telemetry::AttemptSpan>,
    /// The client's standing against the gateway's limits (`x-ratelimit-*`).
    limit_status: Option<crate::limits::LimitStatus>,
}

/// Where [`Exchange::attempt_in`] writes the attempt it makes: returned as it is
/// ([`InPlace`]) or into a box allocated before it is made.
trait AttemptSlot {
    type Made;
    fn put(self, attempt: Attempt) -> Self::Made;
}

/// The attempt returned by value.
struct InPlace;

impl AttemptSlot for InPlace {
    type Made = Attempt;
    #[inline(always)]
    fn put(self, attempt: Attempt) -> Attempt {
        attempt
    }
}

impl AttemptSlot for Box<std::mem::MaybeUninit<Attempt>> {
    type Made = Box<Attempt>;
    #[inline(always)]
    fn put(self, attempt: Attempt) -> Box<Attempt> {
        Box::write(self, attempt)
    }
}

impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt")
            .field("method", &self.request.method)
            .field("authority", &self.request.authority)
            .field("path", &self.request.path)
            .finish_non_exhaustive()
    }
}

impl Attempt {
    /// The request to send (apply credentials to it first).
    pub const fn request(&self) -> &OutgoingRequest {
        &self.request
    }

    /// Mutable access to the request, for [`CredentialProvider::apply`].
    pub const fn request_mut(&mut self) -> &mut OutgoingRequest {
        &mut self.request
    }

    /// Whether the client asked for a stream.
    pub const fn streaming(&self) -> bool {
        self.streaming
    }

    /// Whether the attempt has its own span (its `traceparent` is already on the
    /// request, so adapters add none).
    pub const fn is_traced(&self) -> bool {
        self.span.is_some()
    }

    /// Records why the attempt failed before or instead of an answer (connect error,
    /// timeout, reset), on its span.
    pub fn record_failure(&mut self, reason: &str) {
        if let Some(s) = self.span.as_mut() {
            s.failure(reason);
        }
    }

    /// Classifies the upstream's status and, on success, returns the headers for the
    /// client (hop-by-hop and length headers removed; translator edits applied).
    pub fn response_headers(
        &mut self,
        status: StatusCode,
        upstream: &HeaderMap,
    ) -> Result<ResponseStart> {
        Ok(match self.success_edits(status, upstream)? {
            Some(edits) => ResponseStart::Success(self.client_headers(edits, upstream.clone())),
            None => ResponseStart::Error {
                retryable: is_retryable_status(status),
            },
        })
    }

    /// [`Self::response_headers`], taking the upstream's headers on a success instead
    /// of copying them (`upstream` is then left empty; on an error status it is left
    /// as it was, for [`Self::error`]). The copy (the map's entries, names and values)
    /// cost ≈ 1 k instructions a request, and the original was dropped unread.
    pub fn take_response_headers(
        &mut self,
        status: StatusCode,
        upstream: &mut HeaderMap,
    ) -> Result<ResponseStart> {
        Ok(match self.success_edits(status, upstream)? {
            Some(edits) => {
                ResponseStart::Success(self.client_headers(edits, std::mem::take(upstream)))
            }
            None => ResponseStart::Error {
                retryable: is_retryable_status(status),
            },
        })
    }

    /// Notes the status; on a success, the translator's edits of the headers (`None`
    /// for an error status).
    fn success_edits(
        &mut self,
        status: StatusCode,
        upstream: &HeaderMap,
    ) -> Result<Option<HeaderMutation>> {
        if let Some(s) = self.span.as_mut() {
            s.status(status.as_u16());
        }
        if !status.is_success() {
            return Ok(None);
        }
        self.translator.response_headers(status, upstream).map(Some)
    }

    /// The client's headers made from a success's upstream headers.
    fn client_headers(&self, edits: HeaderMutation, mut headers: HeaderMap) -> HeaderMap {
        crate::strip_headers::remove_all(&mut headers, &STRIPPED_RESPONSE);
        edits.apply_to(&mut headers);
        if let Some(s) = &self.limit_status {
            s.apply(&mut headers);
        }
        headers
    }

    /// Normalises an upstream error response into the client's envelope. A relayed
    /// error tells the client where it stands against the gateway's limits too
    /// (`x-ratelimit-*`, as OpenAI's own error responses do).
    pub fn error(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ErrorResponse> {
        let mut out = self.translator.response_error(status, headers, body)?;
        if let Some(s) = &self.limit_status {
            // A translator may pass the provider's headers on: none of theirs stays.
            out.headers
                .set
                .retain(|(n, _)| !n.as_str().starts_with("x-ratelimit-"));
            for name in crate::limits::status::provider_headers(headers) {
                out.headers.remove(name);
            }
            for (name, value) in s.headers() {
                out.headers.set(name, value);
            }
        }
        Ok(out)
    }
}

/// Whether an upstream status allows failing over to the next attempt.
pub fn is_retryable_status(status: StatusCode) -> bool {
    crate::retry::gateway_default().status(status)
}

/// Parses `Retry-After` (delay seconds; HTTP dates are treated as absent) capped at
/// `cap`.
pub fn retry_after(headers: &HeaderMap, cap: Duration) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = v.trim().parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(secs.min(cap.as_secs_f64())))
}

/// Renders an error as one event in the stream format of `endpoint`'s client API.
///
/// OpenAI SDKs raise on a `data:` payload carrying an `error` object; Anthropic SDKs on
/// an `event: error`.
pub fn stream_error_event(endpoint: Endpoint, error: &Error) -> Bytes {
    match endpoint.client_api() {
        ClientApi::OpenAI => {
            let body = error.to_body(ClientApi::OpenAI);
            let mut out = Vec::with_capacity(body.len() + 10);
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(&body);
            out.extend_from_slice(b"\n\n");
            Bytes::from(out)
        }
        ClientApi::Anthropic => {
            let value = serde_json::json!({
                "type": "error",
                "error": {
                    "type": anthropic_error_type(error.status()),
                    "message": error.to_string(),
                }
            });
            Bytes::from(format!("event: error\ndata: {value}\n\n"))
        }
    }
}

/// The cost values (`llmRequestCosts`: metadata key → value) of a finished exchange.
pub fn evaluate_costs(costs: &CostSet, record: &ExchangeRecord) -> Vec<(String, u64)> {
    costs.evaluate(&CostInput {
        model: record
            .effective_model
            .as_deref()
            .unwrap_or(&record.request_model),
        backend: record.backend.as_deref().unwrap_or(""),
        route_name: record.route.as_deref().unwrap_or(""),
        usage: &record.usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meter::Reservation;
    use crate::schema::ApiSchema;
    use crate::translate::{ResponseChunk, UpstreamRequest};
    use http::Method;
    use std::sync::Mutex;

    /// Echoes the request path, counts chunks and reports usage `output = bytes seen`.
    struct Echo {
        seen: u64,
        /// Behaves as a native passthrough: forwards the client's query and reports a
        /// dropped field.
        native: bool,
    }

    const DROPPED: [DroppedField; 1] = [DroppedField::new("thinking.display", "display only")];

    impl Translator for Echo {
        fn forwards_client_query(&self) -> bool {
            self.native
        }
        fn dropped_fields(&self) -> &[DroppedField] {
            if self.native { &DROPPED } else { &[] }
        }
        fn request(&mut self, req: &RequestContext<'_>) -> Result<UpstreamRequest> {
            let mut headers = HeaderMutation::default();
            headers.set_static("x-translated", "yes");
            Ok(UpstreamRequest {
                method: Method::POST,
                path: format!("/v1/chat/completions?stream={}", req.info.stream),
                headers,
                body: BodyChange::Unchanged,
            })
        }
        fn response_headers(&mut self, _s: StatusCode, _h: &HeaderMap) -> Result<HeaderMutation> {
            let mut m = HeaderMutation::default();
            m.set_static("content-type", "text/event-stream");
            Ok(m)
        }
        fn response_chunk(&mut self, chunk: &[u8], _end: bool) -> Result<ResponseChunk> {
            self.seen += chunk.len() as u64;
            Ok(ResponseChunk {
                body: None,
                usage: TokenUsage {
                    output: Some(self.seen),
                    ..Default::default()
                },
                response_model: Some("m-2024".into()),
            })
        }
        fn response_error(
            &mut self,
            status: StatusCode,
            _h: &HeaderMap,
            body: &[u8],
        ) -> Result<ErrorResponse> {
            Ok(ErrorResponse {
                status,
                headers: HeaderMutation::default(),
                body: Bytes::copy_from_slice(body),
            })
        }
    }

    struct Factory;
    impl TranslatorFactory for Factory {
        fn translator(&self, _spec: &TranslatorSpec<'_>) -> Result<Box<dyn Translator>> {
            Ok(Box::new(Echo {
                seen: 0,
                native: false,
            }))
        }
    }

    struct NativeFactory;
    impl TranslatorFactory for NativeFactory {
        fn translator(&self, _spec: &TranslatorSpec<'_>) -> Result<Box<dyn Translator>> {
            Ok(Box::new(Echo {
                seen: 0,
                native: true,
            }))
        }
    }

    #[test]
    fn client_query_reaches_only_native_backends_and_drops_are_recorded() {
        let body = Bytes::from_static(br#"{"model":"m","messages":[]}"#);
        let mut ex = Exchange::new(Endpoint::Messages, HeaderMap::new(), body).unwrap();
        ex.set_query(Some("beta=true"));
        let a = ex.attempt(&target(), &NativeFactory).unwrap();
        assert_eq!(
            a.request().path,
            "/v1/chat/completions?stream=false&beta=true"
        );
        let a = ex.attempt(&target(), &Factory).unwrap();
        assert_eq!(a.request().path, "/v1/chat/completions?stream=false");
        let dropped: Vec<_> = ex
            .record()
            .dropped
            .iter()
            .map(|(d, b)| (d.field, b.to_string()))
            .collect();
        assert_eq!(dropped, [("thinking.display", "default/openai".to_owned())]);
    }

    #[derive(Default)]
    struct Rec(Mutex<Vec<TokenUsage>>);
    #[async_trait::async_trait]
    impl TokenMeter for Rec {
        async fn reserve(&self, r: &MeterRequest<'_>) -> Result<Reservation> {
            Ok(Reservation {
                id: 7,
                estimate: r.estimate,
                keys: vec![r.backend.to_owned()],
                ..Reservation::default()
            })
        }
        fn settle(&self, _r: Reservation, s: &crate::meter::Settlement<'_>) {
            self.0.lock().unwrap().push(*s.usage);
        }
    }

    fn target() -> Target {
        let mut headers = HeaderMutation::default();
        headers.set_static("x-route", "r1");
        Target {
            backend: Arc::from("default/openai"),
            schema: VersionedSchema::new(ApiSchema::OpenAI),
            upstream: UpstreamAddr {
                scheme: "http".into(),
                authority: "127.0.0.1:9".into(),
            },
            model_override: Some(Arc::from("gpt-override")),
            headers,
            body: BodyMutation {
                set: vec![("temperature".into(), serde_json::json!(0.5))],
                remove: vec!["user".into()],
            },
            credential: None,
            priority: 0,
        }
    }

    /// Polls a future that never awaits anything pending (the test meter is ready at once).
    fn ready<F: std::future::Future>(f: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("future was not ready"),
        }
    }

    fn client_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(MODEL_HEADER, HeaderValue::from_static("spoofed"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer client"),
        );
        h.insert("x-api-key", HeaderValue::from_static("client"));
        h.insert(header::HOST, HeaderValue::from_static("gateway.local"));
        h.insert("x-custom", HeaderValue::from_static("kept"));
        h
    }

    #[test]
    fn new_overwrites_model_header_and_rejects_bad_json() {
        let ex = Exchange::new(
            Endpoint::ChatCompletions,
            client_headers(),
            Bytes::from_static(br#"{"model":"gpt-4o","stream":true,"max_tokens":100}"#),
        )
        .unwrap();
        assert_eq!(ex.headers()[MODEL_HEADER], "gpt-4o");
        assert!(ex.info().stream);
        assert!(ex.estimate() >= 100);

        let err = Exchange::new(
            Endpoint::Messages,
            HeaderMap::new(),
            Bytes::from_static(b"{nope"),
        )
        .unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn attempt_translates_original_strips_client_credentials_and_mutates() {
        let mut ex = Exchange::new(
            Endpoint::ChatCompletions,
            client_headers(),
            Bytes::from_static(br#"{"model":"gpt-4o","user":"u1","messages":[]}"#),
        )
        .unwrap();
        let a = ex.attempt(&target(), &Factory).unwrap();
        let r = a.request();
        assert_eq!(r.path, "/v1/chat/completions?stream=false");
        assert_eq!(r.authority, "127.0.0.1:9");
        assert_eq!(r.headers[MODEL_HEADER], "gpt-override");
        assert_eq!(r.headers["x-translated"], "yes");
        assert_eq!(r.headers["x-route"], "r1");
        assert_eq!(r.headers["x-custom"], "kept");
        assert!(r.headers.get(header::AUTHORIZATION).is_none());
        assert!(r.headers.get("x-api-key").is_none());
        assert!(r.headers.get(header::HOST).is_none());
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["temperature"], 0.5);
        assert!(body.get("user").is_none());
        // The original is untouched, so a second attempt sees the same input.
        assert_eq!(
            ex.body().as_ref(),
            br#"{"model":"gpt-4o","user":"u1","messages":[]}"#
        );
        let _second = ex.attempt(&target(), &Factory).unwrap();
        assert_eq!(ex.record().attempts, 2);
        assert_eq!(ex.record().effective_model.as_deref(), Some("gpt-override"));
        // Made in its box, the same request.
        let boxed = ex.attempt_boxed(&target(), &Factory).unwrap();
        assert_eq!(ex.record().attempts, 3);
        let b = boxed.request();
        assert_eq!(
            (&b.method, &b.scheme, &b.authority),
            (&r.method, &r.scheme, &r.authority)
        );
        assert_eq!((&b.path, &b.body), (&r.path, &r.body));
        assert_eq!(b.headers, r.headers);
        assert_eq!(boxed.streaming(), a.streaming());
    }

    #[test]
    fn chunks_fold_usage_and_finish_settles_once() {
        let meter = Arc::new(Rec::default());
        let mut ex = Exchange::new(
            Endpoint::ChatCompletions,
            HeaderMap::new(),
            Bytes::from_static(br#"{"model":"gpt-4o","stream":true}"#),
        )
        .unwrap();
        let t = target();
        ready(ex.reserve(meter.clone(), &t, None)).unwrap();
        let mut a = ex.attempt(&t, &Factory).unwrap();
        match a
            .response_headers(StatusCode::OK, &HeaderMap::new())
            .unwrap()
        {
            ResponseStart::Success(h) => assert_eq!(h["content-type"], "text/event-stream"),
            ResponseStart::Error { .. } => panic!("expected success"),
        }
        let out = ex.chunk(&mut a, Bytes::from_static(b"abc"), false).unwrap();
        assert_eq!(out.as_ref(), b"abc");
        ex.chunk(&mut a, Bytes::from_static(b"de"), true).unwrap();
        let rec = ex.finish(StatusCode::OK, None);
        assert_eq!(rec.usage.output, Some(5));
        assert_eq!(rec.response_model.as_deref(), Some("m-2024"));
        assert!(rec.time_to_first_byte.is_some());
        let settled = meter.0.lock().unwrap();
        assert_eq!(settled.len(), 1);
        assert_eq!(settled[0].output, Some(5));
    }

    /// Records what reserve saw and what settle was given.
    #[derive(Default)]
    struct Seen {
        request: Mutex<Option<(Option<String>, Option<std::net::IpAddr>)>>,
        costs: Mutex<Vec<Vec<(String, u64)>>>,
    }
    #[async_trait::async_trait]
    impl TokenMeter for Seen {
        async fn reserve(&self, r: &MeterRequest<'_>) -> Result<Reservation> {
            let tenant = r
                .headers
                .get("x-tenant-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            *self.request.lock().unwrap() = Some((tenant, r.client_ip));
            Ok(Reservation {
                response: vec![crate::meter::ResponseCharge {
                    bucket: "b".into(),
                    window: Duration::from_secs(60),
                    cost: crate::config::traffic::LimitCost::Metadata {
                        namespace: "io.envoy.ai_gateway".into(),
                        key: "out".into(),
                    },
                    scope: crate::config::traffic::RateLimitScope::Local,
                }],
                ..Reservation::default()
            })
        }
        fn settle(&self, _r: Reservation, s: &crate::meter::Settlement<'_>) {
            self.costs.lock().unwrap().push(s.costs.to_vec());
        }
    }

    fn plan_with_costs() -> Plan {
        let costs = CostSet::compile(
            &[crate::config::LlmRequestCost {
                metadata_key: "out".into(),
                cost_type: crate::config::LlmRequestCostType::OutputToken,
                cel: None,
            }],
            &[],
        )
        .unwrap();
        Plan {
            route: Arc::from("ns/r"),
            targets: vec![target()],
            stream_idle_timeout: None,
            request_timeout: None,
            per_try_timeout: None,
            costs: Some(Arc::new(costs)),
            max_attempts: None,
            backoff: None,
            retry_on: None,
        }
    }

    #[test]
    fn meter_sees_headers_and_address_and_settles_with_route_costs() {
        let meter = Arc::new(Seen::default());
        let mut h = HeaderMap::new();
        h.insert("x-tenant-id", HeaderValue::from_static("acme"));
        let body = Bytes::from_static(br#"{"model":"gpt-4o","stream":true}"#);
        let plan = plan_with_costs();
        let ip: std::net::IpAddr = "10.0.0.7".parse().unwrap();

        // Finished: the costs computed for the record are the ones settled.
        let mut ex = Exchange::new(Endpoint::ChatCompletions, h.clone(), body.clone()).unwrap();
        ex.set_client_ip(ip);
        ex.apply_plan(&plan);
        ready(ex.reserve(meter.clone(), &plan.targets[0], None)).unwrap();
        let mut a = ex.attempt(&plan.targets[0], &Factory).unwrap();
        ex.chunk(&mut a, Bytes::from_static(b"abc"), true).unwrap();
        let rec = ex.finish(StatusCode::OK, None);
        assert_eq!(rec.costs, vec![("out".to_string(), 3)]);
        assert_eq!(
            *meter.request.lock().unwrap(),
            Some((Some("acme".to_string()), Some(ip)))
        );

        // Dropped mid-stream: the guard computes the costs from what was seen.
        {
            let mut ex = Exchange::new(Endpoint::ChatCompletions, h, body).unwrap();
            ex.apply_plan(&plan);
            ready(ex.reserve(meter.clone(), &plan.targets[0], None)).unwrap();
            let mut a = ex.attempt(&plan.targets[0], &Factory).unwrap();
            ex.chunk(&mut a, Bytes::from_static(b"ab"), false).unwrap();
        }
        let settled = meter.costs.lock().unwrap();
        assert_eq!(
            *settled,
            vec![vec![("out".to_string(), 3)], vec![("out".to_string(), 2)]]
        );
    }

    #[test]
    fn dropped_exchange_settles_partial_usage() {
        let meter = Arc::new(Rec::default());
        {
            let mut ex = Exchange::new(
                Endpoint::Messages,
                HeaderMap::new(),
                Bytes::from_static(br#"{"model":"claude","stream":true}"#),
            )
            .unwrap();
            let t = target();
            ready(ex.reserve(meter.clone(), &t, None)).unwrap();
            let mut a = ex.attempt(&t, &Factory).unwrap();
            ex.chunk(&mut a, Bytes::from_static(b"1234"), false)
                .unwrap();
        }
        let settled = meter.0.lock().unwrap();
        assert_eq!(settled.len(), 1);
        assert_eq!(settled[0].output, Some(4));
    }

    #[test]
    fn error_statuses_are_classified() {
        let mut ex = Exchange::new(
            Endpoint::ChatCompletions,
            HeaderMap::new(),
            Bytes::from_static(br#"{"model":"m"}"#),
        )
        .unwrap();
        let mut a = ex.attempt(&target(), &Factory).unwrap();
        for (s, retry) in [
            (429, true),
            (503, true),
            (500, true),
            (400, false),
            (404, false),
        ] {
            let st = StatusCode::from_u16(s).unwrap();
            match a.response_headers(st, &HeaderMap::new()).unwrap() {
                ResponseStart::Error { retryable } => assert_eq!(retryable, retry, "{s}"),
                ResponseStart::Success(_) => panic!("{s} is not a success"),
            }
        }
    }

    #[test]
    fn retry_after_is_capped_and_tolerant() {
        let mut h = HeaderMap::new();
        let cap = Duration::from_secs(2);
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        assert_eq!(retry_after(&h, cap), Some(Duration::from_secs(1)));
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&h, cap), Some(cap));
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h, cap), None);
    }

    #[test]
    fn stream_error_events_match_client_formats() {
        let e = Error::Timeout {
            message: "stream idle".into(),
        };
        let o = stream_error_event(Endpoint::ChatCompletions, &e);
        let s = std::str::from_utf8(&o).unwrap();
        let data = s.strip_prefix("data: ").unwrap().trim_end();
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains("idle"));

        let a = stream_error_event(Endpoint::Messages, &e);
        let s = std::str::from_utf8(&a).unwrap();
        assert!(s.starts_with("event: error\ndata: "));
        assert!(s.contains("\"timeout_error\""));
    }

    #[test]
    fn body_mutation_route_wins_over_backend() {
        let backend = BodyMutation {
            set: vec![
                ("a".into(), serde_json::json!(1)),
                ("b".into(), serde_json::json!(1)),
            ],
            remove: vec!["c".into()],
        };
        let route = BodyMutation {
            set: vec![("a".into(), serde_json::json!(2))],
            remove: vec!["b".into()],
        };
        let m = backend.merged_with(&route);
        let out: serde_json::Value =
            serde_json::from_slice(&m.apply(br#"{"b":0,"c":0,"d":0}"#).unwrap()).unwrap();
        assert_eq!(out, serde_json::json!({"d":0,"a":2}));
    }
}
