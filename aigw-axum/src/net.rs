//! Downstream listeners.
//!
//! Streamed responses are written as many small frames. With Nagle's algorithm on, a
//! frame written while the previous one is unacknowledged waits for the peer's delayed
//! ACK (~40 ms on Linux), so every accepted connection gets `TCP_NODELAY`
//! ([`aigw_core::server::set_nodelay`], which [`crate::server::serve`] applies itself).

use axum::serve::{ListenerExt, TapIo};
use tokio::net::{TcpListener, TcpStream};

/// A listener whose accepted sockets have `TCP_NODELAY` set. A named type (not
/// `impl Listener`) so axum's `ConnectInfo<SocketAddr>` works over it.
pub type NoDelayListener = TapIo<TcpListener, fn(&mut TcpStream)>;

fn set_nodelay(tcp: &mut TcpStream) {
    aigw_core::server::set_nodelay(tcp);
}

/// Wraps a bound listener so every accepted socket has `TCP_NODELAY` set; pass the
/// result to `axum::serve`.
pub fn nodelay(listener: TcpListener) -> NoDelayListener {
    listener.tap_io(set_nodelay as fn(&mut TcpStream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener;

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
