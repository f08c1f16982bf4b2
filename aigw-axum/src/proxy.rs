//! One request through the gateway: read, plan, attempt (with retries and fallback),
//! respond (buffered or streamed).

use crate::admission::Hold;
use crate::client_auth::PendingAuth;
use crate::error::error_response;
use crate::gateway::{Inner, ModelEntry, Settings, Snapshot};
use crate::identity::ClientId;
use crate::inference_pool::{RouteFailure, Routed};
use crate::stream::{Finisher, InSpan, StreamBody, next_data};
use crate::trace_context::RequestTrace;
use crate::upstream::UpstreamBody;
use aigw_core::api::Endpoint;
use aigw_core::exchange::{
    Attempt, Exchange, ExchangeRecord, Plan, ResponseStart, Target, retry_after,
};
use aigw_core::health::Outcome;
use aigw_core::identity::ClientIdentity;
use aigw_core::keys::Grant;
use aigw_core::retry::{self, RetryOn, TransportFailure};
use aigw_core::{ClientApi, Error, OutgoingRequest};
use aigw_providers::responses::{retrieve, store};
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::time::Sleep;

/// The longest pause between two attempts on the same backend.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Parsing bound for `Retry-After` before it is compared with the policy's cap.
const RETRY_AFTER_CEILING: Duration = Duration::from_secs(365 * 24 * 3600);

const JSON: HeaderValue = HeaderValue::from_static("application/json");

pub(crate) async fn handle(inner: Arc<Inner>, request: Request<Body>) -> Response<Body> {
    let started = Instant::now();
    let head = request.method() == http::Method::HEAD;
    match serve(inner.clone(), request).await {
        Served::Exchange(response) => response,
        Served::Early(mut response, error, uri) => {
            // Requests that end before an exchange starts (probes, unknown paths,
            // unreadable bodies) are in the access log too.
            let record = ExchangeRecord {
                path: Some(uri.path().to_owned()),
                status: Some(response.status()),
                latency: Some(started.elapsed()),
                error: error.map(|e| e.to_string()),
                ..ExchangeRecord::default()
            };
            inner.sink.record(&record);
            if head {
                *response.body_mut() = Body::empty();
            }
            response
        }
    }
}

/// How [`serve`] answered: through an exchange (which records itself) or before one
/// (with the request's URI, for the record; its path is copied only then).
enum Served {
    Exchange(Response<Body>),
    Early(Response<Body>, Option<Error>, http::Uri),
}

/// `GET /` and `HEAD /`: clients probe a base URL for reachability before using it.
fn root_response() -> Response<Body> {
    let mut r = Response::new(Body::from(concat!(
        "aigw ",
        env!("CARGO_PKG_VERSION"),
        "\n"
    )));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A request on a stored Responses API response, answered from the conversation store.
fn stored_response(op: retrieve::Op<'_>, query: Option<&str>) -> Response<Body> {
    let reply = retrieve::answer(op, query);
    let mut r = Response::new(Body::from(reply.body));
    *r.status_mut() = reply.status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn serve(inner: Arc<Inner>, mut request: Request<Body>) -> Served {
    let early =
        |api: ClientApi, e: Error, uri| Served::Early(error_response(api, &e), Some(e), uri);
    if request.uri().path() == "/"
        && matches!(*request.method(), http::Method::GET | http::Method::HEAD)
    {
        return Served::Early(root_response(), None, std::mem::take(request.uri_mut()));
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if header_bytes > inner.settings.max_header_bytes {
        let api = Endpoint::from_path(request.uri().path())
            .map_or(ClientApi::OpenAI, Endpoint::client_api);
        let e = Error::bad_request(format!(
            "request headers total {header_bytes} bytes, over the {} byte limit",
            inner.settings.max_header_bytes
        ));
        let mut r = error_response(api, &e);
        *r.status_mut() = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
        return Served::Early(r, Some(e), std::mem::take(request.uri_mut()));
    }
    // The path in the default layout, under the configured root and family prefixes.
    let Some(canon) = inner
        .settings
        .prefixes
        .canonical(request.uri().path())
        .map(std::borrow::Cow::into_owned)
    else {
        let e = Error::UnsupportedPath {
            path: request.uri().path().to_owned(),
        };
        return early(ClientApi::OpenAI, e, std::mem::take(request.uri_mut()));
    };
    if let Some(op) = retrieve::parse(request.method(), &canon) {
        if store::mirrored() {
            store::hydrate(op.id()).await;
        }
        let planned = if retrieve::held(op) {
            None
        } else {
            inner.snapshot.load().planner.plan_stored_response(op.id())
        };
        let Some((plan, model)) = planned else {
            let r = stored_response(op, request.uri().query());
            return Served::Early(r, None, std::mem::take(request.uri_mut()));
        };
        let trace = RequestTrace::from_headers(request.headers(), inner.settings.trace_propagation);
        let (mut parts, _) = request.into_parts();
        let exchange = match Exchange::stored_response(
            std::mem::take(&mut parts.headers),
            &parts.method,
            &canon,
            &model,
        ) {
            Ok(ex) => Box::new(ex),
            Err(e) => return early(ClientApi::OpenAI, e, parts.uri),
        };
        let hold = match inner.admission.admit() {
            Ok(h) => h,
            Err(e) => return early(ClientApi::OpenAI, e, parts.uri),
        };
        return boxed(|| serve_exchange(inner, parts, exchange, trace, Some(plan), hold)).await;
    }
    let Some(endpoint) = Endpoint::from_path(&canon) else {
        let e = Error::UnsupportedPath {
            path: request.uri().path().to_owned(),
        };
        return early(ClientApi::OpenAI, e, std::mem::take(request.uri_mut()));
    };
    let snapshot = inner.snapshot.load_full();
    if endpoint.is_local() {
        let r = models_response(endpoint, &snapshot.planner.models());
        return Served::Early(r, None, std::mem::take(request.uri_mut()));
    }
    let mut hold = match inner.admission.admit() {
        Ok(h) => h,
        Err(e) => return early(endpoint.client_api(), e, std::mem::take(request.uri_mut())),
    };
    let trace = RequestTrace::from_headers(request.headers(), inner.settings.trace_propagation);
    let (mut parts, body) = request.into_parts();
    let limit = snapshot
        .planner
        .max_body_bytes()
        .unwrap_or(inner.settings.max_body_bytes);
    let declared = declared_length(&parts.headers);
    let read = inner
        .admission
        .read_body(&mut hold, body, declared, limit)
        .await;
    let body = match read {
        Ok(b) => b,
        Err(e) => return early(endpoint.client_api(), e, parts.uri),
    };
    if endpoint == Endpoint::Responses
        && store::mirrored()
        && let Some(previous) = store::previous_response_id(&body)
    {
        store::hydrate(&previous).await;
    }
    let exchange = match Exchange::boxed(endpoint, std::mem::take(&mut parts.headers), body) {
        Ok(ex) => ex,
        Err(e) => return early(endpoint.client_api(), e, parts.uri),
    };
    // Boxed, so the futures above it (this one, `handle`'s, the service's box) stay
    // small: each was created whole and then moved into the next, a copy of the
    // whole request state machine (several KB) at every level.
    boxed(|| serve_exchange(inner, parts, exchange, trace, None, hold)).await
}

/// `make`'s future in a box allocated before the future is made.
///
/// `Box::pin(f)` makes the future on the stack and copies it into the box whole: its
/// full size (the largest state it can reach, kilobytes for the request's futures),
/// though only its arguments are set before the first poll. Allocated first, the
/// future is written where it stays.
#[inline(always)]
pub(crate) fn boxed<F: Future>(make: impl FnOnce() -> F) -> Pin<Box<F>> {
    Box::into_pin(Box::write(Box::new_uninit(), make()))
}

/// Runs an exchange: on `plan` when the request is already planned (a stored
/// response's owner), else on the route its model selects.
async fn serve_exchange(
    inner: Arc<Inner>,
    parts: http::request::Parts,
    mut exchange: Box<Exchange>,
    trace: Option<RequestTrace>,
    plan: Option<Plan>,
    hold: Hold,
) -> Served {
    let snapshot = inner.snapshot.load_full();
    let identity = parts.extensions.get::<Arc<ClientIdentity>>().cloned();
    let client = identity
        .as_ref()
        .map(|i| i.id.clone())
        .or_else(|| parts.extensions.get::<ClientId>().map(|c| c.0.clone()));
    let pending = parts.extensions.get::<PendingAuth>();
    match (identity, client.clone()) {
        (Some(identity), _) => exchange.set_identity(identity),
        (None, client) => {
            if pending.is_none() {
                // Unauthenticated: selectors must not see identity headers the client
                // wrote itself.
                aigw_core::identity_headers::strip(exchange.headers_mut());
            }
            if let Some(client) = client {
                exchange.set_client(client);
            }
        }
    }
    exchange.set_telemetry(&inner.telemetry);
    // The request span's trace when telemetry records one, else the propagated one.
    let trace_id = exchange
        .record()
        .trace_id
        .or(trace.as_ref().map(RequestTrace::trace_id));
    // Created once everything it names is known, so no field is recorded afterwards:
    // with a formatting subscriber every `record` re-formats the span's fields. The
    // outcome (route, backend, status, tokens) is the access log's to report.
    let span = tracing::info_span!(
        "aigw.request",
        path = parts.uri.path(),
        model = exchange.info().model.as_str(),
        client = client.as_deref(),
        trace_id = trace_id.map(|t| tracing::field::display(TraceIdHex(t))),
    );
    exchange.set_query(parts.uri.query());
    let record = exchange.record_mut();
    record.path = Some(parts.uri.path().to_owned());
    record.trace_id = trace_id;
    if let Some(spending) = &inner.spending {
        exchange.set_spending(spending.clone());
    }
    if let Some(ConnectInfo(addr)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        exchange.set_client_ip(addr.ip());
    }
    let auth = RequestAuth {
        pending,
        grant: parts.extensions.get::<Grant>(),
    };
    let finisher = Finisher::in_span(exchange, inner.sink.clone(), &span).holding(hold);
    Served::Exchange(handle_exchange(inner, snapshot, finisher, span, trace, auth, plan).await)
}

/// A trace id as 32 lowercase hex digits, formatted only if the span is recorded.
struct TraceIdHex(u128);

impl std::fmt::Display for TraceIdHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// What the authentication layer left for the gateway: a policy to apply once the
/// route is known, or a virtual key's grant to check against it.
#[derive(Clone, Copy, Default)]
struct RequestAuth<'a> {
    pending: Option<&'a PendingAuth>,
    grant: Option<&'a Grant>,
}

/// Runs the exchange inside the request's `span`.
async fn handle_exchange(
    inner: Arc<Inner>,
    snapshot: Arc<Snapshot>,
    finisher: Finisher,
    span: tracing::Span,
    trace: Option<RequestTrace>,
    auth: RequestAuth<'_>,
    plan: Option<Plan>,
) -> Response<Body> {
    // Boxed for the reason `serve` boxes this exchange's future: the attempts' state is
    // most of it, and it would otherwise be copied again with each future around it.
    // The finisher is moved in: it is used and dropped only inside the span.
    let answer = boxed(|| answer(&inner, &snapshot, finisher, trace.as_ref(), auth, plan));
    InSpan::new(answer, span).await
}

/// The attempts' response, or the error answered when they fail.
async fn answer(
    inner: &Arc<Inner>,
    snapshot: &Arc<Snapshot>,
    mut finisher: Finisher,
    trace: Option<&RequestTrace>,
    auth: RequestAuth<'_>,
    plan: Option<Plan>,
) -> Response<Body> {
    match run(inner, snapshot, &mut finisher, trace, auth, plan).await {
        Ok(response) => response,
        Err(e) => {
            let api = finisher
                .exchange_mut()
                .map_or(ClientApi::OpenAI, |ex| ex.client_api());
            finisher.finish(e.status(), Some(&e));
            error_response(api, &e)
        }
    }
}

/// The request's `content-length`, when it declares one (hyper has checked its syntax).
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Why an attempt did not produce a response for the client.
enum Failure {
    /// No usable response: connect failure, reset, timeout, credentials. With a kind,
    /// the route's retry conditions decide whether another attempt follows; without
    /// one (the backend cannot take this request at all), the next backend is tried.
    Transport(Error, Option<TransportFailure>),
    /// An error response, normalised for the client.
    Response {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
}

async fn run(
    inner: &Arc<Inner>,
    snapshot: &Snapshot,
    finisher: &mut Finisher,
    trace: Option<&RequestTrace>,
    auth: RequestAuth<'_>,
    plan: Option<Plan>,
) -> Result<Response<Body>, Error> {
    let endpoint = finisher.exchange_mut()?.endpoint();
    let plan = plan_and_reserve(snapshot, finisher, auth, plan).await?;
    let cx = Attempts {
        inner,
        snapshot,
        plan: &plan,
        endpoint,
        trace,
    };
    let mut r = Retries::new(&plan, &inner.settings);
    for i in 0..r.max_attempts {
        let target = &plan.targets[i % plan.targets.len()];
        if i > 0 && !r.wait_for_retry().await {
            break;
        }
        let next_same_backend = plan
            .targets
            .get((i + 1) % plan.targets.len())
            .is_some_and(|t| t.backend == target.backend);
        r.delay = if next_same_backend {
            r.backoff(i)
        } else {
            Duration::ZERO
        };
        let Some(prepared) = cx.prepare(finisher, target, &mut r).await? else {
            continue;
        };
        match cx
            .send_and_read(finisher, prepared, target, i, next_same_backend, &mut r)
            .await?
        {
            Next::Respond(response) => return Ok(response),
            Next::Retry => {}
            Next::GiveUp => break,
        }
    }
    finisher.exchange_mut()?.record_mut().upstream_wait = Some(r.upstream_wait);
    Ok(finish_failure(finisher, r.take_last(), endpoint))
}

/// Routes the request, applies the route's client authentication and usage settings,
/// and reserves tokens against the first target.
async fn plan_and_reserve(
    snapshot: &Snapshot,
    finisher: &mut Finisher,
    auth: RequestAuth<'_>,
    planned: Option<Plan>,
) -> Result<Plan, Error> {
    let ex = finisher.exchange_mut()?;
    let plan: Plan = match planned {
        Some(p) => p,
        None => snapshot
            .planner
            .plan(ex.endpoint(), &ex.info().model, ex.headers())?,
    };
    if plan.targets.is_empty() {
        return Err(Error::NoRoute {
            model: ex.info().model.clone(),
        });
    }
    ex.apply_plan(&plan);
    if let Some(grant) = auth.grant {
        grant.allows(&ex.info().model, &plan.route)?;
    }
    if let Some(pending) = auth.pending {
        match pending.resolve(&plan.route, ex.headers_mut()) {
            Ok(Some(identity)) => {
                tracing::Span::current().record("client", identity.id.as_ref());
                ex.set_identity(Arc::new(identity));
            }
            Ok(None) => {}
            Err(e) => {
                let path = ex.record().path.clone().unwrap_or_default();
                crate::client_auth::audit_failure(
                    ex.headers(),
                    &http::Extensions::new(),
                    &path,
                    Some(&plan.route),
                    &e,
                );
                return Err(e);
            }
        }
    }
    if snapshot.planner.force_include_usage() {
        ex.set_force_include_usage(true);
    }
    ex.reserve(snapshot.meter.clone(), &plan.targets[0], None)
        .await?;
    Ok(plan)
}

/// A request's retry state: its time budget, what the last attempt left, the wait
/// before the next one and the time spent waiting on upstreams.
struct Retries<'p> {
    deadline: Instant,
    request_timeout: Option<Duration>,
    per_try_timeout: Option<Duration>,
    idle: Option<Duration>,
    max_attempts: usize,
    base_backoff: Duration,
    retry_on: &'p RetryOn,
    /// The last attempt's failure (`None` before any attempt: its message is made
    /// only when it is answered).
    last: Option<Failure>,
    delay: Duration,
    upstream_wait: Duration,
}

impl<'p> Retries<'p> {
    fn new(plan: &'p Plan, settings: &Settings) -> Self {
        let started = Instant::now();
        Self {
            deadline: started
                + plan
                    .request_timeout
                    .unwrap_or(settings.default_request_timeout),
            request_timeout: plan.request_timeout,
            per_try_timeout: plan.per_try_timeout,
            idle: plan
                .stream_idle_timeout
                .or(settings.default_stream_idle_timeout),
            max_attempts: plan
                .max_attempts
                .unwrap_or(settings.retry.max_attempts)
                .max(1) as usize,
            base_backoff: plan.backoff.unwrap_or(settings.retry.backoff),
            retry_on: plan
                .retry_on
                .as_deref()
                .unwrap_or_else(|| retry::gateway_default()),
            last: None,
            delay: Duration::ZERO,
            upstream_wait: Duration::ZERO,
        }
    }

    /// Whether another attempt may start: the last failure's kind is one the route
    /// retries and the backoff fits the deadline. Sleeps the backoff.
    async fn wait_for_retry(&mut self) -> bool {
        if let Some(Failure::Transport(_, Some(kind))) = &self.last
            && !self.retry_on.transport(*kind)
        {
            return false;
        }
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if self.delay >= remaining {
            return false;
        }
        if !self.delay.is_zero() {
            // Backoff is time the upstream's failure cost, not gateway overhead.
            tokio::time::sleep(self.delay).await;
            self.upstream_wait += self.delay;
        }
        true
    }

    /// The exponential backoff after attempt `i` on the same backend.
    fn backoff(&self, i: usize) -> Duration {
        self.base_backoff
            .saturating_mul(2u32.saturating_pow(i as u32))
            .min(MAX_BACKOFF)
    }

    /// The bound on the next upstream wait: the per-try timeout within the deadline.
    fn per_try(&self) -> Duration {
        self.per_try_at(Instant::now())
    }

    /// [`Retries::per_try`] at `now`, for callers that read the clock anyway.
    fn per_try_at(&self, now: Instant) -> Duration {
        let remaining = self.deadline.saturating_duration_since(now);
        self.per_try_timeout.map_or(remaining, |t| t.min(remaining))
    }

    /// The failure to answer with when no attempt succeeded.
    fn take_last(&mut self) -> Failure {
        self.last.take().unwrap_or_else(|| {
            Failure::Transport(
                Error::UpstreamUnavailable {
                    message: "no attempt was made".into(),
                },
                None,
            )
        })
    }

    fn fail(&mut self, e: Error, kind: Option<TransportFailure>) {
        self.last = Some(Failure::Transport(e, kind));
    }
}

/// What follows an attempt.
enum Next {
    /// The client's response.
    Respond(Response<Body>),
    /// Another attempt, if the budget allows.
    Retry,
    /// No more attempts: answer with the last failure.
    GiveUp,
}

/// How an upstream error response is read and judged.
struct ErrorRead<'a> {
    backend: &'a str,
    per_try: Duration,
    attempt_no: usize,
    next_same_backend: bool,
}

/// An attempt ready to send: its request, where an InferencePool's picker routed it,
/// and the backend's connection settings (looked up once per attempt). The attempt is
/// boxed: it is moved from future to future on its way (into `send_and_read`, out of
/// `Prepared`, into the reading futures), several hundred bytes each time.
struct Prepared {
    attempt: Box<Attempt>,
    routed: Option<Routed>,
    conn: Option<Arc<crate::gateway::BackendConnection>>,
}

/// What every attempt of one request shares.
struct Attempts<'a> {
    inner: &'a Arc<Inner>,
    snapshot: &'a Snapshot,
    plan: &'a Plan,
    endpoint: Endpoint,
    trace: Option<&'a RequestTrace>,
}

impl Attempts<'_> {
    /// Translates the request for `target`, adds the trace headers, asks an
    /// InferencePool's endpoint picker where it goes and applies its credentials.
    /// `None` (the failure recorded in `r`): try the next attempt.
    async fn prepare(
        &self,
        finisher: &mut Finisher,
        target: &Target,
        r: &mut Retries<'_>,
    ) -> Result<Option<Prepared>, Error> {
        let ex = finisher.exchange_mut()?;
        let mut attempt = match ex.attempt_boxed(target, &*self.snapshot.factory) {
            Ok(a) => a,
            Err(e) if self.plan.targets.len() > 1 && e.status().is_client_error() => {
                // The backend's schema cannot express the request; another may.
                tracing::debug!(backend = %target.backend, error = %e, "skipping backend");
                r.fail(e, None);
                r.delay = Duration::ZERO;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        // Before credentials: a signature (SigV4) covers the trace headers too.
        if let Some(t) = self.trace.filter(|_| !attempt.is_traced()) {
            t.apply_attempt(&mut attempt.request_mut().headers);
        }
        // Before credentials, as Envoy runs the picker's filter before the upstream
        // filter that injects them: the picker never sees backend credentials.
        let conn = self.snapshot.planner.connection(&target.backend);
        let routed = match conn.as_ref().and_then(|c| c.pool.as_ref()) {
            Some(pool) => match pool.route(attempt.request_mut(), r.per_try()).await {
                Ok(routed) => Some(routed),
                Err(RouteFailure::Answer(e)) => return Err(e),
                Err(RouteFailure::Unavailable(e)) => {
                    // Nothing was sent: a connect failure as far as retries go.
                    r.fail(e, Some(TransportFailure::Connect));
                    return Ok(None);
                }
            },
            None => None,
        };
        if let Some(provider) = &target.credential {
            let applied = match provider.credential().await {
                Ok(c) => provider.apply(&c, attempt.request_mut()),
                Err(e) => Err(e),
            };
            if let Err(e) = applied {
                tracing::warn!(backend = %target.backend, error = %e, "upstream credentials failed");
                // Nothing was sent: a connect failure as far as retries go.
                r.fail(e, Some(TransportFailure::Connect));
                return Ok(None);
            }
        }
        Ok(Some(Prepared {
            attempt,
            routed,
            conn,
        }))
    }

    /// Sends the attempt and reads its response: an error response is normalised and
    /// judged retryable or not; a success is streamed or read whole.
    async fn send_and_read(
        &self,
        finisher: &mut Finisher,
        prepared: Prepared,
        target: &Target,
        i: usize,
        next_same_backend: bool,
        r: &mut Retries<'_>,
    ) -> Result<Next, Error> {
        let backend = &target.backend;
        let sent = Instant::now();
        let per_try = r.per_try_at(sent);
        let Prepared {
            mut attempt,
            routed,
            conn: planned,
        } = prepared;
        let health = planned.as_deref().and_then(|c| c.health.as_ref());
        let circuit = match planned.as_deref().and_then(|c| c.circuit.as_ref()) {
            Some(c) => match c.admit(per_try).await {
                Ok(permit) => Some(permit),
                Err(overflow) => {
                    tracing::debug!(backend = %backend, %overflow, "circuit breaker open");
                    attempt.record_failure("circuit breaker open");
                    // Nothing was sent: the next backend is tried whatever the retry
                    // conditions, as Envoy fails over on an overflow.
                    r.fail(
                        Error::Overloaded {
                            message: format!(
                                "backend {backend} is at its circuit breaker limit: {overflow}"
                            ),
                            retry_after: Duration::from_secs(1),
                        },
                        None,
                    );
                    r.upstream_wait += sent.elapsed();
                    return Ok(Next::Retry);
                }
            },
            None => None,
        };
        let (conn, report) = match routed {
            // The picker's endpoints, in its order.
            Some(routed) => (
                Some(Arc::new(crate::gateway::BackendConnection {
                    authorities: routed.endpoints,
                    ..Default::default()
                })),
                routed.report,
            ),
            None => (planned.clone(), None),
        };
        // One timer bounds the wait for the response and the read of a buffered body:
        // with no per-try timeout both end at the request's deadline, so the second
        // wait would arm (and then cancel) a second timer for the same instant.
        let start = if circuit.is_some() {
            // The breaker may have queued the attempt: its bound starts now.
            Instant::now()
        } else {
            sent
        };
        let mut bound = std::pin::pin!(tokio::time::sleep_until((start + per_try).into()));
        let outcome = send(
            self.inner,
            attempt.request_mut(),
            (per_try, bound.as_mut()),
            conn.as_deref(),
        )
        .await;
        // Also when the body's read starts: one clock read for both.
        let answered = Instant::now();
        r.upstream_wait += answered.saturating_duration_since(sent);
        let response = match outcome {
            Ok((response, served_by)) => {
                if let Some(report) = report {
                    report.served(&served_by, response.status(), response.headers());
                }
                response
            }
            Err((e, kind)) => {
                tracing::debug!(backend = %backend, attempt = i + 1, error = %e, "attempt failed");
                attempt.record_failure(&e.to_string());
                crate::health::report(health, backend, Outcome::LocalFailure);
                r.fail(e, Some(kind));
                return Ok(Next::Retry);
            }
        };
        crate::health::report(health, backend, Outcome::Status(response.status().as_u16()));
        let (mut parts, incoming) = response.into_parts();
        match attempt.take_response_headers(parts.status, &mut parts.headers)? {
            ResponseStart::Error { .. } => {
                let read = ErrorRead {
                    backend,
                    per_try,
                    attempt_no: i + 1,
                    next_same_backend,
                };
                self.error_response(finisher, &mut attempt, &parts, incoming, read, r)
                    .await
            }
            ResponseStart::Success(headers) => {
                // The backend's circuit counts this request until its response ends.
                finisher.keep_circuit(circuit);
                let ex = finisher.exchange_mut()?;
                ex.record_mut().upstream_wait = Some(r.upstream_wait);
                if attempt.streaming() {
                    return self
                        .start_stream(
                            finisher,
                            attempt,
                            (parts.status, headers),
                            incoming,
                            (per_try, answered),
                            r,
                        )
                        .await;
                }
                let read = (parts.status, headers, bound, answered);
                self.read_whole(finisher, attempt, read, incoming, r).await
            }
        }
    }

    /// An upstream error response: the client's answer when the route does not retry
    /// its status, else the failure the next attempt replaces.
    async fn error_response(
        &self,
        finisher: &mut Finisher,
        attempt: &mut Attempt,
        parts: &http::response::Parts,
        incoming: UpstreamBody,
        read: ErrorRead<'_>,
        r: &mut Retries<'_>,
    ) -> Result<Next, Error> {
        let ErrorRead {
            backend,
            per_try,
            attempt_no,
            next_same_backend,
        } = read;
        let settings = &self.inner.settings;
        let retryable = r.retry_on.status(parts.status);
        let reading = Instant::now();
        let body = read_error_body(incoming, settings.max_error_body_bytes, per_try).await;
        r.upstream_wait += reading.elapsed();
        let normalised = normalise_error(attempt, parts.status, &parts.headers, &body);
        tracing::debug!(backend = %backend, status = %parts.status, attempt = attempt_no, "upstream error");
        if !retryable {
            finisher.exchange_mut()?.record_mut().upstream_wait = Some(r.upstream_wait);
            return Ok(Next::Respond(finish_failure(
                finisher,
                normalised,
                self.endpoint,
            )));
        }
        if let Some(after) = retry_after(&parts.headers, RETRY_AFTER_CEILING)
            && next_same_backend
        {
            if after > settings.retry.retry_after_cap {
                // The backend asks for longer than we wait: give up on it.
                r.last = Some(normalised);
                return Ok(Next::GiveUp);
            }
            r.delay = r.delay.max(after);
        }
        r.last = Some(normalised);
        Ok(Next::Retry)
    }

    /// A successful stream: waits for its first data (failing over if none comes in
    /// time) and then streams it to the client.
    async fn start_stream(
        &self,
        finisher: &mut Finisher,
        attempt: Box<Attempt>,
        (status, headers): (StatusCode, HeaderMap),
        mut incoming: UpstreamBody,
        (per_try, waiting): (Duration, Instant),
        r: &mut Retries<'_>,
    ) -> Result<Next, Error> {
        let wait = r.idle.map_or(per_try, |d| d.min(per_try));
        let first = next_data(&mut incoming, Some(wait)).await;
        r.upstream_wait += waiting.elapsed();
        finisher.exchange_mut()?.record_mut().upstream_wait = Some(r.upstream_wait);
        match first {
            Ok(first) => {
                // A route's own `timeouts.request` bounds the whole stream; the default
                // only bounds the wait for its start, so long generations are not cut by
                // a limit nobody configured.
                let stream_deadline = r.request_timeout.map(|_| r.deadline);
                Ok(Next::Respond(stream_response(
                    finisher,
                    *attempt,
                    incoming,
                    first,
                    status,
                    headers,
                    r.idle,
                    stream_deadline,
                    self.inner.settings.cancel_drain,
                )))
            }
            Err(e) => {
                // Nothing has reached the client yet: fail over.
                tracing::debug!(error = %e, "stream failed before its first byte");
                if let Some(backend) = finisher.exchange_mut()?.record_mut().backend.clone() {
                    let conn = self.snapshot.planner.connection(&backend);
                    let health = conn.as_deref().and_then(|c| c.health.as_ref());
                    crate::health::report(health, &backend, Outcome::LocalFailure);
                }
                let kind = if matches!(e, Error::Timeout { .. }) {
                    TransportFailure::Timeout
                } else {
                    TransportFailure::Reset
                };
                r.fail(e, Some(kind));
                Ok(Next::Retry)
            }
        }
    }

    /// A successful buffered response: read whole within the per-try bound, then
    /// translated and answered.
    /// `bound` is the attempt's timer, still set for the wait for the response;
    /// `reading` is when the response's head arrived.
    async fn read_whole(
        &self,
        finisher: &mut Finisher,
        mut attempt: Box<Attempt>,
        (status, headers, mut bound, reading): (StatusCode, HeaderMap, Pin<&mut Sleep>, Instant),
        incoming: UpstreamBody,
        r: &mut Retries<'_>,
    ) -> Result<Next, Error> {
        if r.per_try_timeout.is_some() {
            // A per-try timeout starts again for the body.
            let per_try = r.per_try_at(reading);
            bound.as_mut().reset((reading + per_try).into());
        }
        let collected = within(bound, std::pin::pin!(incoming.collect())).await;
        r.upstream_wait += reading.elapsed();
        let ex = finisher.exchange_mut()?;
        ex.record_mut().upstream_wait = Some(r.upstream_wait);
        let body = match collected {
            Some(Ok(c)) => c.to_bytes(),
            Some(Err(e)) => {
                r.fail(
                    Error::UpstreamUnavailable {
                        message: format!("reading the response body: {e}"),
                    },
                    Some(TransportFailure::Reset),
                );
                return Ok(Next::Retry);
            }
            None => {
                r.fail(
                    Error::Timeout {
                        message: "reading the response body".into(),
                    },
                    Some(TransportFailure::Timeout),
                );
                return Ok(Next::Retry);
            }
        };
        let out = ex.chunk(&mut attempt, body, true)?;
        finisher.finish(status, None);
        let mut response = Response::new(Body::from(out));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(Next::Respond(response))
    }
}

fn finish_failure(finisher: &mut Finisher, failure: Failure, endpoint: Endpoint) -> Response<Body> {
    match failure {
        Failure::Transport(e, _) => {
            finisher.finish(e.status(), Some(&e));
            error_response(endpoint.client_api(), &e)
        }
        Failure::Response {
            status,
            headers,
            body,
        } => {
            let e = Error::Upstream {
                status,
                message: String::from_utf8_lossy(&body).into_owned(),
            };
            finisher.finish(status, Some(&e));
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
    }
}

fn normalise_error(
    attempt: &mut Attempt,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Failure {
    match attempt.error(status, headers, body) {
        Ok(er) => {
            let mut out = HeaderMap::new();
            out.insert(header::CONTENT_TYPE, JSON);
            if let Some(ra) = headers.get(header::RETRY_AFTER) {
                out.insert(header::RETRY_AFTER, ra.clone());
            }
            // The provider's rate-limit state passes through, as on a success, unless
            // a gateway limit applies (the translator's edits then set the gateway's).
            for (name, value) in headers {
                if name.as_str().starts_with("x-ratelimit-") {
                    out.append(name, value.clone());
                }
            }
            er.headers.apply_to(&mut out);
            Failure::Response {
                status: er.status,
                headers: out,
                body: er.body,
            }
        }
        Err(e) => Failure::Transport(e, None),
    }
}

/// Sends one attempt. With a [`BackendConnection`], a connect failure on one endpoint
/// moves on to the next (nothing was sent, so this is safe for any request), and the
/// backend's own pool is used. The request's headers are moved into the last
/// dial rather than copied (every attempt builds its request afresh).
/// `bound` elapses `timeout` after the attempt started.
async fn send(
    inner: &Inner,
    request: &mut OutgoingRequest,
    (timeout, bound): (Duration, Pin<&mut Sleep>),
    conn: Option<&crate::gateway::BackendConnection>,
) -> Result<(Response<UpstreamBody>, String), (Error, TransportFailure)> {
    if let Some(e) = conn.and_then(|c| c.tls_error.as_deref()) {
        return Err((
            Error::UpstreamUnavailable {
                message: format!("backend TLS settings unusable: {e}"),
            },
            TransportFailure::Connect,
        ));
    }
    let via = match (
        conn.and_then(|c| c.upstream.as_ref()),
        conn.and_then(|c| c.client.as_ref()),
    ) {
        (Some(pool), _) => Via::Pool(pool),
        (None, Some(client)) => Via::Legacy(client),
        (None, None) => Via::Pool(&inner.upstream),
    };
    let OutgoingRequest {
        method,
        scheme,
        authority: primary,
        path,
        headers,
        body,
    } = request;
    let primary: &String = primary;
    let others = conn
        .map(|c| c.authorities.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(move |a| *a != primary);
    let last = others.clone().count();
    let dials = std::iter::once(primary).chain(others);
    let attempt = std::pin::pin!(async {
        // Made only when answered: most requests dial their first endpoint.
        let mut failure = None;
        for (i, authority) in dials.enumerate() {
            let uri = upstream_uri(scheme, authority, path).map_err(|e| {
                (
                    Error::internal(format!("invalid upstream request: {e}")),
                    TransportFailure::Connect,
                )
            })?;
            // Set in place rather than through `Request::builder`, whose state (the
            // request's parts) is moved at every step.
            let mut req = Request::new(Full::new(body.clone()));
            *req.method_mut() = method.clone();
            *req.uri_mut() = uri;
            let h = req.headers_mut();
            *h = if i == last {
                std::mem::take(&mut *headers)
            } else {
                headers.clone()
            };
            if authority != primary
                && !h.contains_key(header::HOST)
                && let Ok(v) = HeaderValue::from_str(primary)
            {
                h.insert(header::HOST, v);
            }
            match via.request(req).await {
                Ok(r) => return Ok((r, authority.clone())),
                Err((message, connect)) => {
                    if !connect {
                        return Err((
                            Error::UpstreamUnavailable { message },
                            TransportFailure::Reset,
                        ));
                    }
                    tracing::debug!(%authority, error = %message, "endpoint unreachable");
                    failure = Some(Error::UpstreamUnavailable { message });
                }
            }
        }
        let failure = failure.unwrap_or_else(|| Error::internal("no endpoint to dial"));
        Err((failure, TransportFailure::Connect))
    });
    match within(bound, attempt).await {
        Some(Ok(r)) => Ok(r),
        Some(Err(e)) => Err(e),
        None => Err((
            Error::Timeout {
                message: format!("no response from {primary} within {timeout:?}"),
            },
            TransportFailure::Timeout,
        )),
    }
}

/// `work`'s output, or `None` once `bound` has elapsed: `tokio::time::timeout` over a
/// timer the caller keeps (and may reuse), `work` polled first as there.
///
/// `work` is pinned by the caller, so it is not moved into this future (the attempt's
/// future is several hundred bytes).
///
/// Once the timer has been polled with the task's waker, it wakes the task when it
/// elapses: later polls with the same waker only ask whether it has (a poll would
/// register the same waker again, ≈ 0.2 k instructions).
async fn within<F: Future>(mut bound: Pin<&mut Sleep>, mut work: Pin<&mut F>) -> Option<F::Output> {
    let mut armed: Option<std::task::Waker> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if armed.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return if bound.is_elapsed() {
                Poll::Ready(None)
            } else {
                Poll::Pending
            };
        }
        let elapsed = bound.as_mut().poll(cx).map(|()| None);
        armed = Some(cx.waker().clone());
        elapsed
    })
    .await
}

/// The absolute URI of an upstream request.
///
/// Made from its parts when they are plainly separate (an `http` or `https` scheme,
/// an authority without `/`, `?` or `#`, a path from `/`), so only the authority and
/// the path are parsed; anything else is parsed whole, as it always was, so the
/// answer (or the error) is the same either way.
fn upstream_uri(scheme: &str, authority: &str, path: &str) -> Result<http::Uri, http::Error> {
    let known = match scheme {
        "http" => Some(http::uri::Scheme::HTTP),
        "https" => Some(http::uri::Scheme::HTTPS),
        _ => None,
    };
    let len = scheme.len() + 3 + authority.len() + path.len();
    // An authority with `/`, `?` or `#` is refused by `Authority`'s parser.
    if let Some(known) = known
        && path.starts_with('/')
        // The whole URI's length limit (`http`'s `MAX_LEN`), which the parts alone
        // would not meet.
        && len < usize::from(u16::MAX) - 1
        && let Some(a) = LAST_AUTHORITY.with(|last| last.get(authority))
        && let Some(p) = LAST_PATH.with(|last| last.get(path))
    {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(known);
        parts.authority = Some(a);
        parts.path_and_query = Some(p);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            return Ok(uri);
        }
    }
    // Pushed, not `format!`ed: the formatting machinery costs ≈ 1 k instructions.
    let mut uri = String::with_capacity(len);
    for part in [scheme, "://", authority, path] {
        uri.push_str(part);
    }
    Ok(http::Uri::try_from(uri)?)
}

thread_local! {
    /// The upstream authority and path last parsed on this thread: a gateway's
    /// requests mostly go to the same few backends and paths, and parsing them (and
    /// copying them into their own bytes) cost ≈ 0.6 k instructions a request.
    static LAST_AUTHORITY: LastParsed<http::uri::Authority> = const { LastParsed::new() };
    static LAST_PATH: LastParsed<http::uri::PathAndQuery> = const { LastParsed::new() };
}

/// The last text parsed into a `T` and its result, reused while the text is the same
/// (a parsed authority or path is its text's bytes, shared by its clones).
struct LastParsed<T>(std::cell::RefCell<Option<(Box<str>, T)>>);

impl<T> LastParsed<T>
where
    T: Clone + for<'s> TryFrom<&'s str>,
{
    const fn new() -> Self {
        Self(std::cell::RefCell::new(None))
    }

    /// `text` parsed, or `None` when it does not parse.
    fn get(&self, text: &str) -> Option<T> {
        let Ok(mut last) = self.0.try_borrow_mut() else {
            return T::try_from(text).ok();
        };
        if let Some((seen, parsed)) = last.as_ref()
            && **seen == *text
        {
            return Some(parsed.clone());
        }
        let parsed = T::try_from(text).ok()?;
        *last = Some((text.into(), parsed.clone()));
        Some(parsed)
    }
}

/// Which client carries an attempt: the gateway's pool, or a legacy client an embedder's
/// [`crate::gateway::BackendConnection`] supplies.
#[derive(Clone, Copy)]
enum Via<'a> {
    Pool(&'a crate::client::Upstream),
    Legacy(&'a crate::client::HttpClient),
}

impl Via<'_> {
    /// The response, or the error's description and whether it was a connect failure.
    async fn request(
        self,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<UpstreamBody>, (String, bool)> {
        match self {
            // Boxed where it starts, as `hyper_util`'s client boxes its own: the pool's
            // future (the request, its checkout and send) would otherwise make every
            // future around it larger, and each of them is moved on its way (≈ 1 KB
            // more copied per move under callgrind, 9 k instructions per request).
            Self::Pool(pool) => boxed(|| pool.request(req))
                .await
                .map_err(|e| (describe_client_error(&e), e.is_connect())),
            Self::Legacy(client) => match client.request(req).await {
                Ok(r) => Ok(r.map(UpstreamBody::plain)),
                Err(e) => Err((describe_client_error(&e), e.is_connect())),
            },
        }
    }
}

fn describe_client_error(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

async fn read_error_body(incoming: UpstreamBody, limit: usize, timeout: Duration) -> Bytes {
    match tokio::time::timeout(timeout, Limited::new(incoming, limit).collect()).await {
        Ok(Ok(c)) => c.to_bytes(),
        _ => Bytes::new(),
    }
}

#[allow(clippy::too_many_arguments)]
fn stream_response(
    finisher: &mut Finisher,
    attempt: Attempt,
    incoming: UpstreamBody,
    first: Bytes,
    status: StatusCode,
    headers: HeaderMap,
    idle: Option<Duration>,
    deadline: Option<Instant>,
    drain: aigw_core::estimate::CancelDrain,
) -> Response<Body> {
    let body = StreamBody::new(finisher.take(), attempt, incoming, first, idle, status)
        .with_deadline(deadline)
        .with_drain(drain);
    let mut response = Response::new(Body::from_stream(body.into_stream()));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn models_response(endpoint: Endpoint, models: &[ModelEntry]) -> Response<Body> {
    let value = match endpoint.client_api() {
        ClientApi::OpenAI => serde_json::json!({
            "object": "list",
            "data": models.iter().map(|m| serde_json::json!({
                "id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by,
            })).collect::<Vec<_>>(),
        }),
        ClientApi::Anthropic => serde_json::json!({
            "data": models.iter().map(|m| serde_json::json!({
                "type": "model", "id": m.id, "display_name": m.id, "created_at": m.created,
            })).collect::<Vec<_>>(),
            "has_more": false,
            "first_id": models.first().map(|m| m.id.clone()),
            "last_id": models.last().map(|m| m.id.clone()),
        }),
    };
    let mut response = Response::new(Body::from(value.to_string()));
    response.headers_mut().insert(header::CONTENT_TYPE, JSON);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Work that wakes its task every second and ends after `ticks` of them.
    async fn ticking(ticks: u32) -> u32 {
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        for _ in 0..=ticks {
            interval.tick().await;
        }
        ticks
    }

    /// `within` polls its timer once per waker: woken again and again by its work, it
    /// still ends when the timer elapses, and a reset timer is polled again.
    #[tokio::test(start_paused = true)]
    async fn within_ends_at_its_bound_however_often_the_work_wakes() {
        let start = tokio::time::Instant::now();
        let mut bound = std::pin::pin!(tokio::time::sleep(Duration::from_millis(5500)));
        let done = within(bound.as_mut(), std::pin::pin!(ticking(3))).await;
        assert_eq!(done, Some(3));
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        let late = within(bound.as_mut(), std::pin::pin!(ticking(10))).await;
        assert_eq!(late, None);
        assert_eq!(start.elapsed(), Duration::from_millis(5500));
        bound
            .as_mut()
            .reset(tokio::time::Instant::now() + Duration::from_millis(2500));
        let again = within(bound.as_mut(), std::pin::pin!(ticking(10))).await;
        assert_eq!(again, None);
        assert_eq!(start.elapsed(), Duration::from_secs(8));
    }

    /// The URI parsed whole, as the upstream request's URI always was.
    fn parsed_whole(scheme: &str, authority: &str, path: &str) -> Result<http::Uri, String> {
        http::Uri::try_from(format!("{scheme}://{authority}{path}")).map_err(|e| e.to_string())
    }

    #[test]
    fn upstream_uri_from_parts_is_the_whole_uri_parsed() {
        let schemes = ["http", "https", "HTTP", "ftp", "", "h ttp"];
        let authorities = [
            "127.0.0.1:1976",
            "api.openai.com",
            "bedrock-runtime.us-east-1.amazonaws.com:443",
            "[::1]:8080",
            "user:pw@host:1",
            "",
            "host:port",
            "host/x",
            "host?q",
            "host#f",
            "ho st",
            "host:99999",
            "[::1",
            "h@st@x",
        ];
        let paths = [
            "/v1/chat/completions",
            "/",
            "",
            "/a?b=c&d",
            "/model/us.amazon.nova-micro-v1%3A0/converse",
            "/a#frag",
            "/a b",
            "v1/chat",
            "?q",
            "/a\u{7f}",
            "/é",
            "//double",
        ];
        for scheme in schemes {
            for authority in authorities {
                for path in paths {
                    let fast = upstream_uri(scheme, authority, path).map_err(|e| e.to_string());
                    let whole = parsed_whole(scheme, authority, path);
                    let shown = |r: &Result<http::Uri, String>| match r {
                        Ok(u) => Ok((u.to_string(), u.scheme_str().map(str::to_owned))),
                        Err(e) => Err(e.clone()),
                    };
                    assert_eq!(shown(&fast), shown(&whole), "{scheme} {authority} {path}");
                    assert_eq!(fast, whole, "{scheme} {authority} {path}");
                }
            }
        }
        // Again, with the last parse of each part kept: the same pair twice in a row,
        // then alternating, gives the same answers.
        for scheme in ["http", "https"] {
            for authority in authorities {
                for path in paths {
                    for _ in 0..2 {
                        let fast = upstream_uri(scheme, authority, path).map_err(|e| e.to_string());
                        assert_eq!(
                            fast,
                            parsed_whole(scheme, authority, path),
                            "{authority} {path}"
                        );
                    }
                    let other = upstream_uri(scheme, "127.0.0.1:1976", "/v1/x").unwrap();
                    assert_eq!(other.to_string(), format!("{scheme}://127.0.0.1:1976/v1/x"));
                }
            }
        }
        let long = format!("/{}", "a".repeat(usize::from(u16::MAX)));
        for cut in [65_500, 65_510, 65_511, 65_512, 65_513, 65_520] {
            let path = &long[..cut];
            let fast = upstream_uri("http", "127.0.0.1:1976", path).map_err(|e| e.to_string());
            assert_eq!(fast, parsed_whole("http", "127.0.0.1:1976", path), "{cut}");
        }
    }
}
