//! The hardened way every packaging serves HTTP on a listener of its own: every
//! connection phase is bounded in time, connections are capped, and shutdown drains
//! in-flight requests up to a deadline. `aigw run` serves its gateway and admin
//! listeners with it (re-exported as `aigw_axum::server`), aigw-extproc its admin and
//! MCP listeners.
//!
//! A bare `hyper`/`axum::serve` loop reads headers, waits on idle connections and
//! accepts connections without limit; a client that sends its headers a byte at a
//! time, or a flood of connections, holds the gateway's memory and file descriptors
//! for as long as it likes. [`serve`] drives hyper's HTTP/1 and HTTP/2 connections
//! itself:
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
//! The loop is generic over the [`Listener`] (TCP or Unix domain socket) and over a
//! tower `Service<Request<Incoming>>` built per connection from its peer address, so
//! it needs no web framework: adapters wrap their router (`aigw_axum::server` adds
//! axum's `ConnectInfo`). Request-level bounds (body timeouts, in-flight caps, body
//! memory) belong to the service mounted on it.

mod connection;
mod listener;
mod sniff;
mod timer;

pub use hyper::body::Incoming;
pub use listener::{Listener, set_nodelay};

use crate::{ClientApi, Error};
use bytes::Bytes;
use connection::{Builders, Connection};
use http::{Request, Response};
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

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

/// Serves on `listener` within `limits` until `shutdown` resolves, then drains (see
/// the module documentation). `make` builds each connection's service from its peer
/// address; accepted TCP sockets have `TCP_NODELAY` ([`set_nodelay`]).
pub async fn serve<L, M, S, B>(
    mut listener: L,
    make: M,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> Drained
where
    L: Listener,
    M: Fn(&L::Addr) -> S,
    S: tower_service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builders = Arc::new(builders(&limits));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Refusals are cheap but not free: beyond this many at once, extra connections are
    // closed without a response.
    let refusals = Arc::new(Semaphore::new(256));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            () = &mut shutdown => break,
            // A finished connection's task is freed only once joined: reaped as each
            // one ends, not at the next accept, so after a burst the tasks (≈ 3 KiB each)
            // do not stay until new traffic arrives.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
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
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if let Ok(permit) = refusals.clone().try_acquire_owned() {
                let max = limits.max_connections;
                tokio::spawn(async move {
                    refuse(io, max).await;
                    drop(permit);
                });
            }
            continue;
        };
        let conn = Connection {
            builders: builders.clone(),
            sniff_timeout: sniff_timeout(&limits),
            idle_timeout: limits.idle_timeout,
            stop: stop_rx.clone(),
        };
        let service = make(&peer);
        connections.spawn(async move {
            conn.run(io, peer, service).await;
            drop(slot);
        });
    }
    // Stop accepting: closing the listener makes new connections fail at once.
    drop(listener);
    let _ = stop_tx.send(true);
    drain(connections, limits.drain_timeout).await
}

/// Lets every connection finish up to `deadline`, then cuts the rest.
async fn drain(mut connections: JoinSet<()>, deadline: Duration) -> Drained {
    tracing::info!(
        connections = connections.len(),
        ?deadline,
        "draining connections"
    );
    let drained = tokio::time::timeout(deadline, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_ok() {
        return Drained { cut: 0 };
    }
    let cut = connections.len();
    tracing::warn!(
        connections = cut,
        "drain deadline reached: closing the remaining connections"
    );
    // Aborted tasks drop their requests, so services that record requests on drop
    // (status 499) settle them with the usage seen so far.
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    Drained { cut }
}

fn builders(limits: &ServerLimits) -> Builders {
    let mut h1 = http1::Builder::new();
    h1.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper's floor for its read buffer is 8 KiB.
        .max_buf_size(limits.max_header_bytes.max(8192));
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .keep_alive_interval(limits.http2_keepalive_interval)
        .keep_alive_timeout(limits.http2_keepalive_timeout)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    Builders { h1, h2 }
}

/// How long a new connection may take to send the bytes that tell its protocol: the
/// shorter of the header read and idle timeouts (hyper's header timer starts only once
/// the protocol is known).
fn sniff_timeout(limits: &ServerLimits) -> Option<Duration> {
    match (limits.header_read_timeout, limits.idle_timeout) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Answers a connection over the cap with a 503 and closes it.
async fn refuse<I>(mut io: I, max: usize)
where
    I: AsyncRead + AsyncWrite + Unpin,
{
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
        io.write_all(head.as_bytes()).await?;
        io.write_all(&body).await?;
        io.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
    // Read what the client already sent before closing, so the close is a FIN and the
    // response is not lost to a reset.
    let mut sink = tokio::io::sink();
    let _ = tokio::time::timeout(
        Duration::from_millis(200),
        tokio::io::copy(
            &mut tokio::io::AsyncReadExt::take(&mut io, 64 * 1024),
            &mut sink,
        ),
    )
    .await;
}
