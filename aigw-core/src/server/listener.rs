//! What [`super::serve`] accepts connections from.
//!
//! Streamed responses are written as many small frames. With Nagle's algorithm on, a
//! frame written while the previous one is unacknowledged waits for the peer's delayed
//! ACK (~40 ms on Linux), so every accepted TCP connection gets `TCP_NODELAY`.

use std::future::Future;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// A bound listener [`super::serve`] accepts connections from.
pub trait Listener: Send + 'static {
    /// An accepted connection.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The peer's address.
    type Addr: std::fmt::Debug + Clone + Send + Sync + 'static;

    /// The next connection, prepared for serving (`TCP_NODELAY` on TCP). Must be
    /// cancel-safe: `serve` drops a pending accept whenever a connection ends (to free
    /// its task) and at shutdown, so a connection must not be taken before the future
    /// returns it.
    fn accept(&mut self) -> impl Future<Output = std::io::Result<(Self::Io, Self::Addr)>> + Send;
}

impl Listener for TcpListener {
    type Io = TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
        let (tcp, peer) = TcpListener::accept(self).await?;
        set_nodelay(&tcp);
        Ok((tcp, peer))
    }
}

impl Listener for UnixListener {
    type Io = UnixStream;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> std::io::Result<(UnixStream, tokio::net::unix::SocketAddr)> {
        UnixListener::accept(self).await
    }
}

/// Sets `TCP_NODELAY` on an accepted socket (see the module documentation); a failure
/// is logged, the connection served anyway.
pub fn set_nodelay(tcp: &TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_have_nodelay() {
        let mut listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (io, _) = Listener::accept(&mut listener).await.unwrap();
        assert!(io.nodelay().unwrap());
    }
}
