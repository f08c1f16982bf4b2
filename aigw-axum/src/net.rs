//! Downstream listeners.
//!
//! Streamed responses are written as many small frames. With Nagle's algorithm on, a
//! frame written while the previous one is unacknowledged waits for the peer's delayed
//! ACK (~40 ms on Linux), so every accepted connection gets `TCP_NODELAY`.

use axum::serve::{Listener, ListenerExt};
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};

/// Wraps a bound listener so every accepted socket has `TCP_NODELAY` set; pass the
/// result to `axum::serve`.
pub fn nodelay(listener: TcpListener) -> impl Listener<Io = TcpStream, Addr = SocketAddr> {
    listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_have_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut l = nodelay(listener);
        let _client = TcpStream::connect(addr).await.unwrap();
        let (io, _) = l.accept().await;
        assert!(io.nodelay().unwrap());
    }
}
