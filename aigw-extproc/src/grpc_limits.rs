//! Bounds on the ext_proc gRPC listener. tonic's server builder sets the HTTP/2 ones
//! (keep-alive pings, concurrent streams per connection); what it has no setting for
//! is here: a cap on open connections, a deadline for a new connection's first bytes
//! (hyper has no handshake timeout) and `TCP_NODELAY` on accepted sockets (tonic
//! applies its own `tcp_nodelay` only to listeners it binds itself).
//!
//! No per-call timeout: an ext_proc stream lives as long as the HTTP request Envoy
//! processes with it, streamed responses included, so a deadline would cut long
//! streams. A peer that vanishes is found by the keep-alive pings.

use futures::{Stream, StreamExt};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::Connected;

/// Interval of HTTP/2 keep-alive pings on the gRPC listener.
pub const GRPC_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// How long a keep-alive ping may go unanswered before the connection is closed.
pub const GRPC_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The gRPC listener's limits.
#[derive(Debug, Clone)]
pub struct GrpcLimits {
    /// Open connections; beyond, new ones are closed at once (Envoy opens one per
    /// worker and reconnects).
    pub max_connections: usize,
    /// Concurrent streams per HTTP/2 connection (one per request Envoy processes;
    /// Envoy opens another connection when a connection's streams are all in use).
    pub max_concurrent_streams: u32,
    /// Interval of HTTP/2 keep-alive pings.
    pub keepalive_interval: Option<Duration>,
    /// How long a keep-alive ping may go unanswered before the connection is closed.
    pub keepalive_timeout: Duration,
    /// How long a new connection may take to send its first bytes (Envoy sends the
    /// HTTP/2 preface at once); closed beyond.
    pub first_byte_timeout: Option<Duration>,
    /// On shutdown, how long open streams may take to finish before they are cut.
    pub drain_timeout: Duration,
}

impl Default for GrpcLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_concurrent_streams: 10_000,
            keepalive_interval: Some(GRPC_KEEPALIVE_INTERVAL),
            keepalive_timeout: GRPC_KEEPALIVE_TIMEOUT,
            first_byte_timeout: Some(Duration::from_secs(30)),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// `incoming` with at most `limits.max_connections` open at once (beyond, a new
/// connection is closed as soon as it is accepted), each closed when its first bytes
/// do not arrive within `limits.first_byte_timeout`.
pub(crate) fn capped<S, IO, E>(
    incoming: S,
    limits: &GrpcLimits,
) -> impl Stream<Item = Result<Capped<IO>, E>> + Send + 'static
where
    S: Stream<Item = Result<IO, E>> + Send + 'static,
    IO: Send + 'static,
    E: Send + 'static,
{
    let max = limits.max_connections;
    let first_byte = limits.first_byte_timeout;
    let slots = Arc::new(Semaphore::new(max.max(1)));
    incoming.filter_map(move |accepted| {
        let next = match accepted {
            Ok(io) => match slots.clone().try_acquire_owned() {
                Ok(slot) => Some(Ok(Capped {
                    io,
                    _slot: slot,
                    first_byte: first_byte.map(|t| Box::pin(tokio::time::sleep(t))),
                })),
                Err(_) => {
                    // Debug, not warn: a flood would otherwise flood the log too.
                    tracing::debug!(
                        max,
                        "gRPC connection refused: open connections at the limit"
                    );
                    None
                }
            },
            Err(e) => Some(Err(e)),
        };
        std::future::ready(next)
    })
}

/// An accepted connection holding one of the listener's connection slots.
pub(crate) struct Capped<IO> {
    io: IO,
    _slot: OwnedSemaphorePermit,
    /// The deadline for the first bytes, until they arrive.
    first_byte: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<IO: Connected> Connected for Capped<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Capped<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Some(deadline) = &mut this.first_byte {
            match &read {
                Poll::Ready(Ok(())) if buf.filled().len() > before => this.first_byte = None,
                Poll::Pending if deadline.as_mut().poll(cx).is_ready() => {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no HTTP/2 preface within the first-byte timeout",
                    )));
                }
                _ => {}
            }
        }
        read
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Capped<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
