//! Free loopback ports for test peers, in every crate's tests alike (each includes this
//! file).
#![allow(unreachable_pub, dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;

/// A loopback address nothing listens on yet.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A loopback port nothing listens on yet (bound and released; good enough for a test
/// peer).
pub fn free_port() -> u16 {
    // Below the kernel's ephemeral range (32768–60999 by default): a port from that
    // range can be taken by any outgoing connection between this check and the child
    // process binding it, which fails the child with "address in use".
    let seed = std::process::id().wrapping_mul(2_654_435_761)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    (0..2000u32)
        .map(|i| 10_000 + (seed.wrapping_add(i.wrapping_mul(7_919)) % 22_000) as u16)
        .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        .unwrap_or_else(|| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
}
