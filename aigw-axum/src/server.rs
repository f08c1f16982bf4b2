//! The recommended way to serve the gateway (or any axum router) on a TCP listener:
//! every connection phase is bounded in time, connections are capped, and shutdown
//! drains in-flight requests up to a deadline.
//!
//! `axum::serve` reads headers, waits on idle connections and accepts connections
//! without limit; a client that sends its headers a byte at a time, or a flood of
//! connections, holds the gateway's memory and file descriptors for as long as it
//! likes. [`serve`] drives hyper's HTTP/1 and HTTP/2 connections itself:
//!
//! * a header read timeout (HTTP/1: hyper also runs it while a kept-alive connection
//!   waits for its next request, so that wait is bounded by it too);
//! * an idle timeout: a connection with no request in flight for that long is closed
//!   gracefully (HTTP/2 gets a GOAWAY);
//! * HTTP/2 keep-alive pings (a peer that stops answering is dropped) and a cap on
//!   concurrent streams per connection;
//! * a cap on open connections: beyond it a connection is answered `503` with
//!   `retry-after` and closed, instead of waiting in the accept queue;
//! * graceful shutdown: when `shutdown` resolves the listener is closed (new
//!   connections are refused), every connection finishes its in-flight requests and
//!   closes, and whatever is still open at the drain deadline is cut.
//!
//! Request-level bounds (body timeouts, the in-flight request cap, body memory) are the
//! [`crate::Gateway`]'s own ([`crate::Settings`]), so they hold under any server.

use aigw_core::{ClientApi, Error};
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// Listener limits and timeouts. `None` disables a bound.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Time to receive a request's headers (the connection is closed beyond).
    pub header_read_timeout: Option<Duration>,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Option<Duration>,
    /// Open connections; beyond, new ones get `503` with `retry-after` and are closed.
    pub max_connections: usize,
    /// Largest request head (request line and headers) HTTP/1 buffers, and HTTP/2's
    /// header list size.
    pub max_header_bytes: usize,
    /// Concurrent streams per HTTP/2 connection.
    pub http2_max_concurrent_streams: u32,
    /// Interval of HTTP/2 keep-alive pings.
    pub http2_keepalive_interval: Option<Duration>,
    /// How long a keep-alive ping may go unanswered before the connection is closed.
    pub http2_keepalive_timeout: Duration,
    /// On shutdown, how long in-flight requests (streams included) may take to finish.
    pub drain_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Some(Duration::from_secs(30)),
            idle_timeout: Some(Duration::from_secs(60)),
            max_connections: 10_000,
            max_header_bytes: 64 * 1024,
            http2_max_concurrent_streams: 256,
            http2_keepalive_interval: Some(Duration::from_secs(30)),
            http2_keepalive_timeout: Duration::from_secs(20),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// How a [`serve`] call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Connections still open at the drain deadline, closed without finishing.
    pub cut: usize,
}

/// Serves `service` on `listener` within `limits` until `shutdown` resolves, then
/// drains (see the module documentation). Requests carry
/// `ConnectInfo<SocketAddr>` like `into_make_service_with_connect_info`; accepted
/// sockets have `TCP_NODELAY` (see [`crate::net`]).
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> Drained
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let builder = Arc::new(builder(&limits));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Refusals are cheap but not free: beyond this many at once, extra connections are
    // closed without a response.
    let refusals = Arc::new(Semaphore::new(256));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if let Ok(permit) = refusals.clone().try_acquire_owned() {
                let max = limits.max_connections;
                tokio::spawn(async move {
                    refuse(tcp, max).await;
                    drop(permit);
                });
            }
            continue;
        };
        let conn = Connection {
            builder: builder.clone(),
            idle_timeout: limits.idle_timeout,
            stop: stop_rx.clone(),
        };
        let service = service.clone();
        connections.spawn(async move {
            conn.run(tcp, peer, service).await;
            drop(slot);
        });
    }
    // Stop accepting: closing the listener makes new connections fail at once.
    drop(listener);
    crate::stream::shutting_down();
    let _ = stop_tx.send(true);
    let open = connections.len();
    tracing::info!(
        connections = open,
        deadline = ?limits.drain_timeout,
        "draining connections"
    );
    let drained = tokio::time::timeout(limits.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    let cut = if drained.is_ok() {
        0
    } else {
        let cut = connections.len();
        tracing::warn!(
            connections = cut,
            "drain deadline reached: closing the remaining connections"
        );
        // Aborted tasks drop their requests, which records them (status 499) and
        // settles their token reservations with the usage seen so far.
        connections.abort_all();
        while connections.join_next().await.is_some() {}
        cut
    };
    Drained { cut }
}

fn builder(limits: &ServerLimits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper's floor for its read buffer is 8 KiB.
        .max_buf_size(limits.max_header_bytes.max(8192));
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .keep_alive_interval(limits.http2_keepalive_interval)
        .keep_alive_timeout(limits.http2_keepalive_timeout)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    b
}

/// Answers a connection over the cap with a 503 and closes it.
async fn refuse(mut tcp: TcpStream, max: usize) {
    let e = Error::Overloaded {
        message: format!("{max} open connections, the gateway's limit"),
        retry_after: Duration::from_secs(1),
    };
    let body = e.to_body(ClientApi::OpenAI);
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let write = async {
        tcp.write_all(head.as_bytes()).await?;
        tcp.write_all(&body).await?;
        tcp.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
    // Read what the client already sent before closing, so the close is a FIN and the
    // response is not lost to a reset.
    let mut sink = tokio::io::sink();
    let _ = tokio::time::timeout(
        Duration::from_millis(200),
        tokio::io::copy(
            &mut tokio::io::AsyncReadExt::take(&mut tcp, 64 * 1024),
            &mut sink,
        ),
    )
    .await;
}

/// One accepted connection's settings.
struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    idle_timeout: Option<Duration>,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn run<S>(mut self, tcp: TcpStream, peer: SocketAddr, service: S)
    where
        S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let activity = Arc::new(Activity::new());
        let tracked = activity.clone();
        let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let guard = tracked.begin();
            let call = service.clone().oneshot(req.map(Body::new));
            async move {
                let response = call.await?;
                Ok::<_, Infallible>(response.map(|body| Tracked {
                    body,
                    _guard: guard,
                }))
            }
        });
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), svc);
        tokio::pin!(conn);
        let mut closing = false;
        loop {
            let wait = match self.idle_timeout {
                Some(t) if !closing => Some(activity.until_idle(t)),
                _ => None,
            };
            let idle_check = async move {
                match wait {
                    Some(w) => tokio::time::sleep(w).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                changed = self.stop.changed(), if !closing => {
                    let _ = changed;
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = idle_check => {
                    if let Some(t) = self.idle_timeout && activity.idle_for(t) {
                        tracing::debug!(%peer, "closing idle connection");
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// Requests in flight on one connection and when the last one ended.
struct Activity {
    base: Instant,
    active: AtomicUsize,
    /// Nanoseconds since `base` when the connection last became idle.
    idle_since: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            active: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn begin(self: &Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Ordering::AcqRel);
        ActiveGuard(self.clone())
    }

    /// Whether no request has been in flight for `t`.
    fn idle_for(&self, t: Duration) -> bool {
        self.until_idle(t).is_zero() && self.active.load(Ordering::Acquire) == 0
    }

    /// How long until the connection will have been idle for `t` (`t` while busy).
    fn until_idle(&self, t: Duration) -> Duration {
        if self.active.load(Ordering::Acquire) > 0 {
            return t;
        }
        let idle = Duration::from_nanos(
            self.now()
                .saturating_sub(self.idle_since.load(Ordering::Acquire)),
        );
        t.saturating_sub(idle)
    }
}

/// One request in flight on a connection, until its response body ends.
struct ActiveGuard(Arc<Activity>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since.store(a.now(), Ordering::Release);
        a.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in flight until it ends.
struct Tracked {
    body: Body,
    _guard: ActiveGuard,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
