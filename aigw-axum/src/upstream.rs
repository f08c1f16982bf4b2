//! The proxied request path's upstream connections: a pool of hyper's own HTTP/1 and
//! HTTP/2 client connections, keyed by scheme and authority.
//!
//! `hyper_util`'s pooled client did this job with costs a proxy pays on every request:
//! its key SipHashed three times, the `Host` header `format!`ed, a connect future raced
//! against the checkout, a task spawned per HTTP/1 request to put the connection back
//! once hyper is ready for the next one. Here:
//! - the key is looked up once, with foldhash, and the `Host` value is made once per host;
//! - an HTTP/1 connection is taken only when hyper says it is ready, and goes back when
//!   its response body ends ([`UpstreamBody`]), on the task reading it: no task per request;
//! - HTTP/2 (ALPN `h2`, or prior knowledge for h2c backends) shares one connection per
//!   host, made again once closed, its connects serialised so a burst opens one;
//! - idle connections past the idle timeout are never used, and a sweep closes them;
//! - a request a pooled connection hands back unsent (it closed while idle, the upstream's
//!   keep-alive ran out) goes out again on a new connection: a stale keep-alive never
//!   becomes the client's error.
//!
//! Connections are made by the same [`Connector`] as the legacy client's, so TLS, SNI,
//! the connect timeout and the socket options are unchanged.

use crate::client::{ClientSettings, Connector};
use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::client::legacy::connect::Connection as _;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::ServiceExt as _;

type ReqBody = Full<Bytes>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Hosts = HashMap<Box<str>, Arc<Host>, foldhash::fast::RandomState>;

/// Bounds of the idle sweep's period (half the idle timeout): often enough that an idle
/// connection outlives its timeout by little, rarely enough to cost nothing.
const SWEEP_MIN: Duration = Duration::from_millis(50);
const SWEEP_MAX: Duration = Duration::from_secs(30);

/// The gateway's pool of upstream connections for proxied requests (cheap to clone;
/// clones share the pool). Built next to the legacy client over the same connector.
#[derive(Clone)]
pub struct Upstream {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("idle_timeout", &self.shared.idle_timeout)
            .field("max_idle", &self.shared.max_idle)
            .field("http2_only", &self.shared.http2_only)
            .finish_non_exhaustive()
    }
}

struct Shared {
    connector: Connector,
    idle_timeout: Duration,
    max_idle: usize,
    http2_only: bool,
    /// Hosts by authority, `[http, https]`: looked up by `&str` without building a key.
    hosts: Mutex<[Hosts; 2]>,
    /// Set once the idle sweep's task runs (started by the first connect, which is
    /// always inside the runtime; building the pool need not be).
    sweeping: AtomicBool,
}

/// One upstream host's connections.
struct Host {
    /// `Host` for HTTP/1 requests that carry none: the authority without a default port.
    host_header: Option<HeaderValue>,
    max_idle: usize,
    state: Mutex<HostState>,
    /// Held while an HTTP/2 connection is made, so concurrent requests share one.
    h2_connecting: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct HostState {
    /// Idle HTTP/1 connections, the most recently returned last.
    idle: Vec<Idle>,
    h2: Option<SharedH2>,
    /// The host answered ALPN with `h2` before: its connects are serialised.
    speaks_h2: bool,
}

struct Idle {
    sender: http1::SendRequest<ReqBody>,
    since: Instant,
}

struct SharedH2 {
    sender: http2::SendRequest<ReqBody>,
    last_used: Instant,
}

/// A connection for one request.
enum Conn {
    H1(http1::SendRequest<ReqBody>),
    H2(http2::SendRequest<ReqBody>),
}

/// Where a request goes, split from its absolute URI once.
struct Target {
    https: bool,
    authority: Authority,
    path: PathAndQuery,
}

/// Why a request got no response.
#[derive(Debug)]
pub(crate) struct SendError {
    connect: bool,
    source: BoxError,
}

impl SendError {
    fn connect(source: BoxError) -> Self {
        Self {
            connect: true,
            source,
        }
    }

    fn send(source: impl Into<BoxError>) -> Self {
        Self {
            connect: false,
            source: source.into(),
        }
    }

    /// Nothing reached the upstream: no connection could be made (the next endpoint may
    /// be tried).
    pub(crate) const fn is_connect(&self) -> bool {
        self.connect
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.connect {
            "error trying to connect"
        } else {
            "error sending the request"
        })
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// A poisoned lock only means another thread panicked while holding it; the pool's
/// state is a set of connections, valid at every step.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Upstream {
    /// A pool connecting through `connector`, with `settings`' idle timeout, idle cap per
    /// host and HTTP/2 prior knowledge.
    pub fn new(settings: &ClientSettings, connector: Connector) -> Self {
        Self {
            shared: Arc::new(Shared {
                connector,
                idle_timeout: settings.pool_idle_timeout,
                max_idle: settings.pool_max_idle_per_host,
                http2_only: settings.http2_only,
                hosts: Mutex::new([Hosts::default(), Hosts::default()]),
                sweeping: AtomicBool::new(false),
            }),
        }
    }

    /// Sends `req` (absolute-form URI, `http` or `https`) on a pooled or new connection.
    pub(crate) async fn request(
        &self,
        req: Request<ReqBody>,
    ) -> Result<Response<UpstreamBody>, SendError> {
        let (mut head, body) = req.into_parts();
        let target = Target::split(std::mem::take(&mut head.uri))?;
        let host = self.shared.host(target.https, &target.authority);
        let mut req = Request::from_parts(head, body);
        let mut fresh = false;
        loop {
            let (conn, reused) = self.shared.conn_for(&host, &target, fresh).await?;
            let mut failed = match conn {
                Conn::H1(mut sender) => {
                    target.h1_form(&mut req, host.host_header.as_ref());
                    match sender.try_send_request(req).await {
                        Ok(res) => {
                            return Ok(res.map(|b| UpstreamBody::pooled(b, host, sender)));
                        }
                        Err(e) => e,
                    }
                }
                Conn::H2(mut sender) => {
                    req = target.h2_form(req);
                    match sender.try_send_request(req).await {
                        Ok(res) => return Ok(res.map(UpstreamBody::plain)),
                        Err(e) => e,
                    }
                }
            };
            // Handed back unsent: the pooled connection closed before writing it. A new
            // connection's failure is the upstream's answer, not retried.
            match failed.take_message() {
                Some(unsent) if reused => {
                    tracing::debug!(error = %failed.error(), "pooled upstream connection closed; sending again on a new one");
                    req = unsent;
                    fresh = true;
                }
                _ => return Err(SendError::send(failed.into_error())),
            }
        }
    }
}

impl Shared {
    /// The host's entry, made on its first request.
    fn host(&self, https: bool, authority: &Authority) -> Arc<Host> {
        let mut hosts = lock(&self.hosts);
        let map = &mut hosts[usize::from(https)];
        if let Some(h) = map.get(authority.as_str()) {
            return h.clone();
        }
        let host = Arc::new(Host {
            host_header: host_header(https, authority),
            max_idle: self.max_idle,
            state: Mutex::new(HostState::default()),
            h2_connecting: tokio::sync::Mutex::new(()),
        });
        map.insert(authority.as_str().into(), host.clone());
        host
    }

    /// A connection for one request and whether it was pooled. `fresh`: a new one.
    async fn conn_for(
        self: &Arc<Self>,
        host: &Arc<Host>,
        target: &Target,
        fresh: bool,
    ) -> Result<(Conn, bool), SendError> {
        if !fresh && let Some(c) = host.checkout(self.idle_timeout) {
            return Ok((c, true));
        }
        // Boxed: connecting (TLS and HTTP/2 handshakes) is a future of kilobytes, which
        // every request's future would otherwise carry and copy as it is moved.
        if self.http2_only || lock(&host.state).speaks_h2 {
            let _one = host.h2_connecting.lock().await;
            // A request that waited here finds the connection the first one made.
            if !fresh && let Some(c) = host.checkout_h2() {
                return Ok((c, true));
            }
            return Ok((Box::pin(self.connect(host, target)).await?, false));
        }
        Ok((Box::pin(self.connect(host, target)).await?, false))
    }

    /// A new connection to `target`: HTTP/2 when prior knowledge or ALPN says so (then
    /// it becomes the host's shared one), else HTTP/1, ready for its first request.
    async fn connect(self: &Arc<Self>, host: &Host, target: &Target) -> Result<Conn, SendError> {
        self.start_sweeping();
        let io = self
            .connector
            .clone()
            .oneshot(target.connect_uri()?)
            .await
            .map_err(SendError::connect)?;
        if self.http2_only || io.connected().is_negotiated_h2() {
            let (sender, conn) = http2::Builder::new(SpawnBoxed)
                .handshake(io)
                .await
                .map_err(SendError::send)?;
            tokio::spawn(connection_task(conn, "HTTP/2"));
            let mut state = lock(&host.state);
            state.speaks_h2 = true;
            state.h2 = Some(SharedH2 {
                sender: sender.clone(),
                last_used: Instant::now(),
            });
            return Ok(Conn::H2(sender));
        }
        // A host that stopped offering `h2` no longer needs its connects serialised.
        lock(&host.state).speaks_h2 = false;
        let (mut sender, conn) = http1::handshake(io).await.map_err(SendError::send)?;
        tokio::spawn(connection_task(conn, "HTTP/1"));
        // hyper takes the first request once the connection's task has run.
        sender.ready().await.map_err(SendError::send)?;
        Ok(Conn::H1(sender))
    }

    fn start_sweeping(self: &Arc<Self>) {
        if self.sweeping.swap(true, Ordering::Relaxed) {
            return;
        }
        let period = (self.idle_timeout / 2).clamp(SWEEP_MIN, SWEEP_MAX);
        tokio::spawn(sweep_every(Arc::downgrade(self), period));
    }

    /// Closes expired and closed connections, and forgets hosts left with none that no
    /// response in flight still points to.
    fn sweep(&self, now: Instant) {
        let mut hosts = lock(&self.hosts);
        for map in hosts.iter_mut() {
            map.retain(|_, host| {
                !host.expire(now, self.idle_timeout) || Arc::strong_count(host) > 1
            });
        }
    }
}

/// The task driving a connection, logging how it failed. A combinator, not an `async`
/// block: the block kept the moved-in connection and the awaited one side by side, and
/// the task's cell twice the connection's size (3.7 KB against 1.9 KB per upstream
/// HTTP/1 connection, so per stream over HTTP/1.1).
fn connection_task<C>(conn: C, protocol: &'static str) -> impl Future<Output = ()> + Send
where
    C: Future<Output = Result<(), hyper::Error>> + Send,
{
    futures::FutureExt::map(conn, move |done| {
        if let Err(e) = done {
            tracing::debug!(error = %e, protocol, "upstream connection failed");
        }
    })
}

/// The executor of the HTTP/2 connections: spawns each future boxed, as `hyper_util`'s
/// client did.
///
/// hyper spawns two futures per HTTP/2 request (sending its body, awaiting its head),
/// of one enum type whose largest variant is the whole connection (≈ 2.6 KB). Both are
/// done once the response's head is in, but h2 keeps a waker of one of them in the
/// stream's state until the stream ends, and a waker keeps its tokio task's cell
/// allocated: spawned in place, every open stream held a 2.6 KB cell for its whole life
/// (DHAT, docs/benchmarks.md); spawned boxed, the box is freed when the future ends and
/// the cell left is 128 bytes.
#[derive(Clone, Copy, Debug, Default)]
struct SpawnBoxed;

impl<F> hyper::rt::Executor<F> for SpawnBoxed
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, fut: F) {
        let boxed: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(fut);
        tokio::spawn(boxed);
    }
}

/// The idle sweep: ends once its pool is dropped (a configuration replaced).
async fn sweep_every(pool: Weak<Shared>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        pool.sweep(Instant::now());
    }
}

impl Host {
    /// The shared HTTP/2 connection, else the most recently returned ready HTTP/1 one.
    fn checkout(&self, idle_timeout: Duration) -> Option<Conn> {
        let mut state = lock(&self.state);
        if let Some(c) = state.shared_h2() {
            return Some(c);
        }
        if state.idle.is_empty() {
            return None;
        }
        state.take_idle(Instant::now(), idle_timeout).map(Conn::H1)
    }

    fn checkout_h2(&self) -> Option<Conn> {
        lock(&self.state).shared_h2()
    }

    /// An HTTP/1 connection whose response was read to its end. Beyond the idle cap it
    /// is dropped, which closes it.
    fn give_back(&self, sender: http1::SendRequest<ReqBody>) {
        if sender.is_closed() {
            return;
        }
        let mut state = lock(&self.state);
        if state.idle.len() < self.max_idle {
            state.idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// Drops expired and closed connections; `true` when none is left.
    fn expire(&self, now: Instant, idle_timeout: Duration) -> bool {
        let mut state = lock(&self.state);
        state.idle.retain(|i| {
            !i.sender.is_closed() && now.saturating_duration_since(i.since) < idle_timeout
        });
        if state.h2.as_ref().is_some_and(|h| {
            h.sender.is_closed() || now.saturating_duration_since(h.last_used) >= idle_timeout
        }) {
            state.h2 = None;
        }
        state.idle.is_empty() && state.h2.is_none()
    }
}

impl HostState {
    fn shared_h2(&mut self) -> Option<Conn> {
        let h2 = self.h2.as_mut()?;
        if h2.sender.is_closed() {
            self.h2 = None;
            return None;
        }
        h2.last_used = Instant::now();
        Some(Conn::H2(h2.sender.clone()))
    }

    /// The most recently returned connection that is ready, dropping expired and closed
    /// ones on the way. One not ready yet (hyper still finishing its last exchange) is
    /// left for a later request.
    fn take_idle(
        &mut self,
        now: Instant,
        idle_timeout: Duration,
    ) -> Option<http1::SendRequest<ReqBody>> {
        let mut i = self.idle.len();
        while i > 0 {
            i -= 1;
            let idle = &self.idle[i];
            if idle.sender.is_closed() || now.saturating_duration_since(idle.since) >= idle_timeout
            {
                self.idle.remove(i);
            } else if idle.sender.is_ready() {
                return Some(self.idle.remove(i).sender);
            }
        }
        None
    }
}

impl Target {
    fn split(uri: Uri) -> Result<Self, SendError> {
        let parts = uri.into_parts();
        let https = match parts.scheme.as_ref().map(Scheme::as_str) {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(SendError::send(
                    "the upstream URI's scheme is not http or https",
                ));
            }
        };
        let Some(authority) = parts.authority else {
            return Err(SendError::send("the upstream URI has no authority"));
        };
        let path = parts
            .path_and_query
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        Ok(Self {
            https,
            authority,
            path,
        })
    }

    /// What the connector dials (its path is not used).
    fn connect_uri(&self) -> Result<Uri, SendError> {
        Uri::builder()
            .scheme(self.scheme())
            .authority(self.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(SendError::connect_invalid)
    }

    fn scheme(&self) -> Scheme {
        if self.https {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        }
    }

    /// HTTP/1: origin-form, and the host's `Host` unless the request has one (set on
    /// failover to keep the first endpoint's name).
    fn h1_form(&self, req: &mut Request<ReqBody>, host: Option<&HeaderValue>) {
        *req.uri_mut() = Uri::from(self.path.clone());
        // One lookup for the test and the insertion.
        if let Some(host) = host
            && let header::Entry::Vacant(slot) = req.headers_mut().entry(header::HOST)
        {
            slot.insert(host.clone());
        }
    }

    /// HTTP/2: absolute-form, for the `:scheme` and `:authority` pseudo-headers.
    fn h2_form(&self, mut req: Request<ReqBody>) -> Request<ReqBody> {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(self.path.clone());
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
        req
    }
}

impl SendError {
    fn connect_invalid(e: http::Error) -> Self {
        Self::connect(Box::new(e))
    }
}

/// `Host` as `hyper_util` wrote it: the host, with the port unless it is the scheme's
/// default.
fn host_header(https: bool, authority: &Authority) -> Option<HeaderValue> {
    let default = if https { 443 } else { 80 };
    let text = match authority.port_u16() {
        Some(p) if p != default => authority.as_str().rsplit('@').next()?,
        _ => authority.host(),
    };
    HeaderValue::from_str(text).ok()
}

/// An upstream response body. Over HTTP/1 it carries its connection, handed back to the
/// pool once the body has been read to its end (or was empty): a body dropped early
/// leaves hyper to close the connection, as it must.
pub(crate) struct UpstreamBody {
    incoming: Incoming,
    reuse: Option<Reuse>,
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody")
            .field("incoming", &self.incoming)
            .field("pooled", &self.reuse.is_some())
            .finish()
    }
}

struct Reuse {
    host: Arc<Host>,
    sender: http1::SendRequest<ReqBody>,
}

impl UpstreamBody {
    /// A body with no connection to hand back (HTTP/2, or another client's).
    pub(crate) const fn plain(incoming: Incoming) -> Self {
        Self {
            incoming,
            reuse: None,
        }
    }

    fn pooled(incoming: Incoming, host: Arc<Host>, sender: http1::SendRequest<ReqBody>) -> Self {
        Self {
            incoming,
            reuse: Some(Reuse { host, sender }),
        }
    }

    fn hand_back(&mut self) {
        if let Some(r) = self.reuse.take() {
            r.host.give_back(r.sender);
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.incoming).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.hand_back();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // Read to its last byte (or empty) without the final poll: hyper has or is about
        // to finish the exchange; the checkout takes the connection only once ready.
        if self.reuse.is_some() && self.incoming.is_end_stream() {
            self.hand_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::build_connector;
    use http_body_util::BodyExt;
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use std::convert::Infallible;
    use std::str::FromStr;
    use std::sync::atomic::AtomicUsize;
    use std::sync::atomic::Ordering::SeqCst;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::Barrier;

    fn pool(settings: &ClientSettings) -> Upstream {
        Upstream::new(settings, build_connector(settings).unwrap())
    }

    #[derive(Clone, Default)]
    struct Counts {
        accepted: Arc<AtomicUsize>,
        closed: Arc<AtomicUsize>,
    }

    impl Counts {
        fn accepted(&self) -> usize {
            self.accepted.load(SeqCst)
        }
        fn closed(&self) -> usize {
            self.closed.load(SeqCst)
        }
    }

    /// Waits up to two seconds for `f`.
    async fn eventually(f: impl Fn() -> bool) -> bool {
        for _ in 0..200 {
            if f() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        f()
    }

    /// An upstream answering every request with its URI and `Host` (`uri host`), over
    /// HTTP/1.1 or, with `h2`, HTTP/2 with prior knowledge. With `gate`, each answer
    /// waits at the barrier; with `empty`, it is a 204 with no body.
    async fn upstream(h2: bool, gate: Option<Arc<Barrier>>, empty: bool) -> (String, Counts) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Counts::default();
        let c = counts.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                c.accepted.fetch_add(1, SeqCst);
                let (c, gate) = (c.clone(), gate.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let gate = gate.clone();
                        async move {
                            if let Some(g) = gate {
                                g.wait().await;
                            }
                            let host = req
                                .headers()
                                .get(header::HOST)
                                .map(|h| h.to_str().unwrap().to_owned())
                                .unwrap_or_default();
                            let mut res = Response::new(Full::new(Bytes::from(format!(
                                "{} {host}",
                                req.uri()
                            ))));
                            if empty {
                                *res.body_mut() = Full::default();
                                *res.status_mut() = http::StatusCode::NO_CONTENT;
                            }
                            Ok::<_, Infallible>(res)
                        }
                    });
                    let io = TokioIo::new(stream);
                    if h2 {
                        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .serve_connection(io, svc)
                            .await;
                    } else {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, svc)
                            .await;
                    }
                    c.closed.fetch_add(1, SeqCst);
                });
            }
        });
        (addr.to_string(), counts)
    }

    fn get(authority: &str, path: &str) -> Request<ReqBody> {
        Request::get(format!("http://{authority}{path}"))
            .body(Full::default())
            .unwrap()
    }

    async fn text(pool: &Upstream, req: Request<ReqBody>) -> String {
        let res = pool.request(req).await.unwrap();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    fn idle_count(pool: &Upstream, authority: &str) -> usize {
        let host = pool
            .shared
            .host(false, &Authority::from_str(authority).unwrap());
        lock(&host.state).idle.len()
    }

    #[tokio::test]
    async fn sequential_requests_share_one_connection() {
        let (addr, counts) = upstream(false, None, false).await;
        let pool = pool(&ClientSettings::default());
        for i in 0..20 {
            let body = text(&pool, get(&addr, &format!("/v1/chat?n={i}"))).await;
            // Origin-form, and `Host` from the authority (the port is not the default).
            assert_eq!(body, format!("/v1/chat?n={i} {addr}"));
        }
        assert_eq!(counts.accepted(), 1);
        assert_eq!(idle_count(&pool, &addr), 1);
    }

    #[tokio::test]
    async fn a_host_header_the_request_has_is_kept() {
        let (addr, _) = upstream(false, None, false).await;
        let pool = pool(&ClientSettings::default());
        let mut req = get(&addr, "/");
        req.headers_mut()
            .insert(header::HOST, HeaderValue::from_static("first.example:8080"));
        assert_eq!(text(&pool, req).await, "/ first.example:8080");
        let default_port = Authority::from_static("upstream.example:80");
        assert_eq!(
            host_header(false, &default_port).unwrap(),
            "upstream.example"
        );
        let default_tls = Authority::from_static("upstream.example:443");
        assert_eq!(host_header(true, &default_tls).unwrap(), "upstream.example");
        assert_eq!(
            host_header(false, &default_tls).unwrap(),
            "upstream.example:443"
        );
    }

    #[tokio::test]
    async fn an_empty_response_returns_its_connection_without_a_read() {
        let (addr, counts) = upstream(false, None, true).await;
        let pool = pool(&ClientSettings::default());
        for _ in 0..5 {
            let res = pool.request(get(&addr, "/")).await.unwrap();
            assert_eq!(res.status(), http::StatusCode::NO_CONTENT);
            drop(res);
        }
        assert_eq!(counts.accepted(), 1);
    }

    /// The upstream closes every connection after one response, without saying so
    /// (no `connection: close`), and the next request comes once it has: the closed
    /// connection is skipped, never written to.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_the_upstream_closed_are_not_used() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let counts = Counts::default();
        let c = counts.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                c.accepted.fetch_add(1, SeqCst);
                let c = c.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                    drop(s);
                    c.closed.fetch_add(1, SeqCst);
                });
            }
        });
        let pool = pool(&ClientSettings::default());
        for i in 1..=20 {
            assert_eq!(text(&pool, get(&addr, "/")).await, "ok");
            assert!(eventually(|| counts.closed() == i).await);
            // The close reaches the client's connection task.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(counts.accepted(), 20);
    }

    /// A pooled connection whose upstream closed it while idle, before its task saw it:
    /// hyper hands the request back unsent, and it goes out on a new connection.
    #[tokio::test]
    async fn a_request_handed_back_unsent_goes_out_again() {
        let (addr, counts) = upstream(false, None, false).await;
        let pool = pool(&ClientSettings::default());
        let (client_io, server_io) = tokio::io::duplex(1024);
        let (mut sender, conn) = http1::handshake(TokioIo::new(client_io)).await.unwrap();
        tokio::spawn(conn);
        sender.ready().await.unwrap();
        let host = pool
            .shared
            .host(false, &Authority::from_str(&addr).unwrap());
        host.give_back(sender);
        drop(host);
        drop(server_io);
        assert_eq!(
            text(&pool, get(&addr, "/again")).await,
            format!("/again {addr}")
        );
        assert_eq!(counts.accepted(), 1);
    }

    #[tokio::test]
    async fn idle_connections_past_the_timeout_are_closed() {
        let (addr, counts) = upstream(false, None, false).await;
        let settings = ClientSettings {
            pool_idle_timeout: Duration::from_millis(200),
            ..ClientSettings::default()
        };
        let pool = pool(&settings);
        text(&pool, get(&addr, "/")).await;
        assert_eq!(counts.closed(), 0);
        // The sweep closes it without another request.
        assert!(eventually(|| counts.closed() == 1).await);
        text(&pool, get(&addr, "/")).await;
        assert_eq!(counts.accepted(), 2);
    }

    #[tokio::test]
    async fn expired_idle_connections_are_not_checked_out() {
        let (addr, counts) = upstream(false, None, false).await;
        let settings = ClientSettings {
            pool_idle_timeout: Duration::from_secs(60),
            ..ClientSettings::default()
        };
        let pool = pool(&settings);
        text(&pool, get(&addr, "/")).await;
        let host = pool
            .shared
            .host(false, &Authority::from_str(&addr).unwrap());
        let later = Instant::now() + Duration::from_secs(61);
        assert!(
            lock(&host.state)
                .take_idle(later, settings.pool_idle_timeout)
                .is_none()
        );
        assert_eq!(lock(&host.state).idle.len(), 0);
        assert!(eventually(|| counts.closed() == 1).await);
    }

    #[tokio::test]
    async fn connections_returned_beyond_the_idle_cap_are_closed() {
        let gate = Arc::new(Barrier::new(3));
        let (addr, counts) = upstream(false, Some(gate), false).await;
        let settings = ClientSettings {
            pool_max_idle_per_host: 1,
            ..ClientSettings::default()
        };
        let pool = pool(&settings);
        // Three requests in flight at once hold three connections.
        let (a, b, c) = tokio::join!(
            text(&pool, get(&addr, "/a")),
            text(&pool, get(&addr, "/b")),
            text(&pool, get(&addr, "/c")),
        );
        assert_eq!(
            [a, b, c].map(|t| t.split(' ').next().unwrap().to_owned()),
            ["/a", "/b", "/c"]
        );
        assert_eq!(counts.accepted(), 3);
        assert!(eventually(|| counts.closed() == 2).await);
        assert_eq!(idle_count(&pool, &addr), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn http2_requests_share_one_connection() {
        let (addr, counts) = upstream(true, None, false).await;
        let settings = ClientSettings {
            http2_only: true,
            ..ClientSettings::default()
        };
        let pool = pool(&settings);
        let burst = (0..10).map(|i| {
            let pool = pool.clone();
            let addr = addr.clone();
            tokio::spawn(async move { text(&pool, get(&addr, &format!("/{i}"))).await })
        });
        for (i, t) in futures::future::join_all(burst)
            .await
            .into_iter()
            .enumerate()
        {
            // Absolute-form: the server sees the scheme and authority.
            assert_eq!(t.unwrap(), format!("http://{addr}/{i} "));
        }
        for _ in 0..5 {
            text(&pool, get(&addr, "/")).await;
        }
        assert_eq!(counts.accepted(), 1);
    }

    /// A body dropped before its end leaves the connection to hyper, which closes it.
    #[tokio::test]
    async fn a_body_dropped_early_does_not_return_its_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let counts = Counts::default();
        let c = counts.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                c.accepted.fetch_add(1, SeqCst);
                let c = c.clone();
                tokio::spawn(async move {
                    let mut chunk = [0u8; 1024];
                    let _ = s.read(&mut chunk).await;
                    let head =
                        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n";
                    let _ = s.write_all(head).await;
                    // The rest never comes; a second request on this connection would
                    // be read here.
                    while let Ok(n) = s.read(&mut chunk).await {
                        if n == 0 {
                            break;
                        }
                    }
                    c.closed.fetch_add(1, SeqCst);
                });
            }
        });
        let pool = pool(&ClientSettings::default());
        for _ in 0..2 {
            let mut body = pool.request(get(&addr, "/")).await.unwrap().into_body();
            let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
            assert_eq!(&first[..], b"hello");
            drop(body);
        }
        assert_eq!(counts.accepted(), 2);
        assert!(eventually(|| counts.closed() == 2).await);
        assert_eq!(idle_count(&pool, &addr), 0);
    }

    /// The task spawned for a connection is the connection's size, not twice it.
    #[tokio::test]
    async fn a_connection_task_is_the_size_of_its_connection() {
        let (client_io, _server_io) = tokio::io::duplex(1024);
        let (_sender, conn) = http1::handshake::<_, ReqBody>(TokioIo::new(client_io))
            .await
            .unwrap();
        let size = std::mem::size_of_val(&conn);
        let task = std::mem::size_of_val(&connection_task(conn, "HTTP/1"));
        eprintln!("HTTP/1 connection: {size} bytes, its task: {task} bytes");
        assert!(task <= size + 16, "{task} > {size} + 16");
    }

    /// The connect path's state (handshakes) is boxed, not carried by every request's
    /// future (debug build: ≈ 1.2 KB with it boxed).
    #[test]
    fn the_request_future_does_not_carry_the_connect_path() {
        let pool = pool(&ClientSettings::default());
        let size = std::mem::size_of_val(&pool.request(get("127.0.0.1:1", "/")));
        eprintln!("Upstream::request future: {size} bytes");
        assert!(size <= 1536, "{size}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_failure() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let pool = pool(&ClientSettings::default());
        let e = pool.request(get(&addr, "/")).await.unwrap_err();
        assert!(e.is_connect());
        assert!(e.to_string().contains("connect"), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }
}
