//! One accepted connection: hyper's HTTP/1 or HTTP/2 connection, closed gracefully
//! when idle for too long or when the server drains.

use super::sniff::{Sniffed, Version, sniff};
use bytes::Bytes;
use futures_util::task::AtomicWaker;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

/// How hyper serves each protocol, built once for the listener.
pub(super) struct Builders {
    pub(super) h1: http1::Builder,
    pub(super) h2: http2::Builder<TokioExecutor>,
}

/// One accepted connection's settings.
pub(super) struct Connection {
    pub(super) builders: Arc<Builders>,
    /// How long a new connection may take to send the bytes that tell its protocol.
    pub(super) sniff_timeout: Option<Duration>,
    pub(super) idle_timeout: Option<Duration>,
    pub(super) stop: watch::Receiver<bool>,
}

/// A hyper connection future that can be asked to close gracefully.
trait Graceful: Future {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, B> Graceful for http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http1::UpgradeableConnection::graceful_shutdown(self);
    }
}

impl<I, S, B> Graceful for http2::Connection<I, S, TokioExecutor>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    TokioExecutor: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http2::Connection::graceful_shutdown(self);
    }
}

impl Connection {
    pub(super) async fn run<I, A, S, B>(mut self, io: I, peer: A, service: S)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        A: std::fmt::Debug,
        S: tower_service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Some((version, io)) = self.sniff(io, &peer).await else {
            return;
        };
        let activity = Arc::new(Activity::new());
        let tracked = activity.clone();
        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
            let guard = tracked.begin();
            let mut service = service.clone();
            async move {
                futures_util::future::poll_fn(|cx| service.poll_ready(cx)).await?;
                let response = service.call(req).await?;
                Ok::<_, Infallible>(response.map(|body| Tracked {
                    body,
                    _guard: guard,
                }))
            }
        });
        let builders = self.builders.clone();
        let io = TokioIo::new(io);
        // Pinned here and lent to `drive`: moved into `drive`'s future instead, hyper's
        // connection would sit in this future twice (its slot here and its copy there).
        match version {
            Version::H1 => {
                // The connection's own timer, which keeps its sleep between requests.
                let mut h1 = builders.h1.clone();
                h1.timer(super::timer::ConnTimer::default());
                let conn = std::pin::pin!(h1.serve_connection(io, svc).with_upgrades());
                self.drive(conn, &activity, &peer).await;
            }
            Version::H2 => {
                let conn = std::pin::pin!(builders.h2.serve_connection(io, svc));
                self.drive(conn, &activity, &peer).await;
            }
        }
    }

    /// Reads the bytes that tell the protocol, within the sniff timeout and unless
    /// the server starts draining first (a connection that has sent nothing yet has
    /// nothing to finish).
    async fn sniff<I, A>(&mut self, io: I, peer: &A) -> Option<(Version, Sniffed<I>)>
    where
        I: AsyncRead + Unpin,
        A: std::fmt::Debug,
    {
        let bound = async {
            match self.sniff_timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let mut stop = self.stop.clone();
        tokio::select! {
            sniffed = sniff(io) => match sniffed {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::debug!(?peer, error = %e, "connection ended before its first request");
                    None
                }
            },
            () = bound => {
                tracing::debug!(?peer, "closing a connection that sent no request in time");
                None
            }
            _ = stop.wait_for(|stopping| *stopping) => None,
        }
    }

    /// Serves the connection until it ends, closing it gracefully when it has been
    /// idle too long or the server drains.
    ///
    /// The drain signal and the idle timer are polled only after one of them woke the
    /// task (through [`SideWake`]), not on every poll of the connection: hyper's
    /// connection wakes the task several times a request, and each poll of the two
    /// (the timer's state and waker, the watch's waiter list) cost ≈ 0.3 k
    /// instructions for nothing.
    async fn drive<C, A>(&mut self, mut conn: Pin<&mut C>, activity: &Activity, peer: &A)
    where
        C: Graceful<Output = Result<(), hyper::Error>>,
        A: std::fmt::Debug,
    {
        let side = Arc::new(SideWake::default());
        let side_waker = Waker::from(side.clone());
        let mut closing = false;
        loop {
            let wait = match self.idle_timeout {
                Some(t) if !closing => Some(activity.until_idle(t)),
                _ => None,
            };
            let mut idle_check = std::pin::pin!(async move {
                match wait {
                    Some(w) => tokio::time::sleep(w).await,
                    None => std::future::pending().await,
                }
            });
            let mut stopping = std::pin::pin!((!closing).then(|| self.stop.changed()));
            // New futures: polled once to register their wakers.
            side.woken.store(true, Ordering::Release);
            let event = std::future::poll_fn(|cx| {
                if let Poll::Ready(result) = conn.as_mut().poll(cx) {
                    return Poll::Ready(Event::Done(result));
                }
                side.task.register(cx.waker());
                if side.woken.swap(false, Ordering::AcqRel) {
                    let mut side_cx = Context::from_waker(&side_waker);
                    if let Some(changed) = stopping.as_mut().as_pin_mut()
                        && changed.poll(&mut side_cx).is_ready()
                    {
                        return Poll::Ready(Event::Stop);
                    }
                    if idle_check.as_mut().poll(&mut side_cx).is_ready() {
                        return Poll::Ready(Event::Idle);
                    }
                }
                Poll::Pending
            })
            .await;
            match event {
                Event::Done(result) => {
                    if let Err(e) = result {
                        tracing::debug!(?peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                Event::Stop => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                Event::Idle => {
                    if let Some(t) = self.idle_timeout
                        && activity.idle_for(t)
                    {
                        tracing::debug!(?peer, "closing idle connection");
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// What ended one wait of [`Connection::drive`].
enum Event {
    /// hyper's connection ended.
    Done(Result<(), hyper::Error>),
    /// The server started draining (or its signal's sender is gone).
    Stop,
    /// The idle timer elapsed.
    Idle,
}

/// The waker the drain signal and the idle timer are polled with: it records that one
/// of them woke the connection's task, then wakes the task.
#[derive(Default)]
struct SideWake {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for SideWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
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
struct Tracked<B> {
    body: B,
    _guard: ActiveGuard,
}

impl<B> http_body::Body for Tracked<B>
where
    B: http_body::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{ServerLimits, builders};

    /// A connection's future holds hyper's connection once: served through a pinned
    /// local rather than moved into the serving loop's future beside its own slot.
    #[test]
    fn a_connection_future_holds_hypers_connection_once() {
        let builders = Arc::new(builders(&ServerLimits::default()));
        let svc = hyper::service::service_fn(|_req: Request<Incoming>| async {
            Ok::<_, Infallible>(Response::new(http_body_util::Empty::<Bytes>::new()))
        });
        let sniffed = || {
            let (io, peer) = tokio::io::duplex(64);
            drop(peer);
            futures::executor::block_on(sniff(io)).unwrap().1
        };
        let h1 = builders
            .h1
            .serve_connection(TokioIo::new(sniffed()), svc)
            .with_upgrades();
        let h1 = std::mem::size_of_val(&h1);
        let h2 = builders.h2.serve_connection(TokioIo::new(sniffed()), svc);
        let h2 = std::mem::size_of_val(&h2);
        let (_stop_tx, stop) = watch::channel(false);
        let conn = Connection {
            builders,
            sniff_timeout: None,
            idle_timeout: None,
            stop,
        };
        let (io, _peer) = tokio::io::duplex(64);
        let run = conn.run(
            io,
            "peer",
            tower::service_fn(|_req: Request<Incoming>| async {
                Ok::<_, Infallible>(Response::new(http_body_util::Empty::<Bytes>::new()))
            }),
        );
        let run = std::mem::size_of_val(&run);
        eprintln!(
            "hyper's connection: HTTP/1 {h1} bytes, HTTP/2 {h2} bytes; the connection's future: {run} bytes"
        );
        assert!(run < h1.max(h2) + 1024, "{run} >= {} + 1024", h1.max(h2));
    }
}
