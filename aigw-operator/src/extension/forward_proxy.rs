//! Egress through an HTTP CONNECT forward proxy, as upstream's extension server does it
//! (`internal/extensionserver/forward_proxy.go`): when the GatewayConfig of an
//! AIGatewayRoute's Gateway sets `forwardProxy.address`, every transport socket of the
//! route's clusters (the singular one and each `transport_socket_matches` entry, where
//! Envoy Gateway puts a backend's TLS) is wrapped in Envoy's `http_11_proxy` transport
//! socket, which dials the proxy, sends `CONNECT <endpoint>` and hands the tunnel to the
//! inner socket (TLS to the provider stays end to end). A cluster without a transport
//! socket gets the wrapper around plaintext. InferencePool clusters are left alone (their
//! endpoints are in-cluster pods).

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{
    Address, SocketAddress, TransportSocket, address, socket_address, transport_socket,
};
use envoy_types::pb::envoy::extensions::transport_sockets::http_11_proxy::v3::Http11ProxyUpstreamTransport;
use prost::Message;

use super::to_any;
use crate::{Error, Result};

/// Envoy's name of the transport socket that tunnels through an HTTP/1.1 CONNECT proxy.
pub const TRANSPORT_SOCKET: &str = "envoy.transport_sockets.http_11_proxy";

/// Parses a forward proxy's `host:port` (the port is required: a forward proxy has no
/// default port) into an Envoy address.
pub fn parse_address(addr: &str) -> Result<Address> {
    let invalid = |why: &str| Error::Render(format!("forward proxy address {addr:?}: {why}"));
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected host:port"))?;
    // `[::1]:3128`: the brackets belong to the URL form only.
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || (host.contains(':') && !addr.starts_with('[')) {
        return Err(invalid("expected host:port"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| invalid("the port is not a number from 1 to 65535"))?;
    if port == 0 {
        return Err(invalid("the port must not be 0"));
    }
    Ok(Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: host.into(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(port))),
            ..Default::default()
        })),
    })
}

/// Wraps every transport socket of `cluster` (idempotent: a wrapped socket stays as it is).
pub fn wrap_cluster(cluster: &mut Cluster, proxy: &Address) {
    let mut wrapped = false;
    if let Some(ts) = cluster.transport_socket.take() {
        cluster.transport_socket = Some(wrap(Some(ts), proxy));
        wrapped = true;
    }
    for m in &mut cluster.transport_socket_matches {
        if let Some(ts) = m.transport_socket.take() {
            m.transport_socket = Some(wrap(Some(ts), proxy));
            wrapped = true;
        }
    }
    if !wrapped {
        cluster.transport_socket = Some(wrap(None, proxy));
    }
}

fn wrap(inner: Option<TransportSocket>, proxy: &Address) -> TransportSocket {
    if let Some(ts) = inner.as_ref().filter(|ts| ts.name == TRANSPORT_SOCKET) {
        return ts.clone();
    }
    TransportSocket {
        name: TRANSPORT_SOCKET.into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(to_any(
            &Http11ProxyUpstreamTransport {
                transport_socket: inner,
                default_proxy_address: Some(proxy.clone()),
            },
        ))),
    }
}

/// The proxy a wrapped transport socket dials, for checks.
pub fn proxy_of(ts: &TransportSocket) -> Option<Address> {
    let Some(transport_socket::ConfigType::TypedConfig(any)) = &ts.config_type else {
        return None;
    };
    (ts.name == TRANSPORT_SOCKET)
        .then(|| Http11ProxyUpstreamTransport::decode(any.value.as_slice()).ok())
        .flatten()
        .and_then(|t| t.default_proxy_address)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses() {
        let a = parse_address("proxy.corp:3128").unwrap();
        let Some(address::Address::SocketAddress(sa)) = a.address else {
            unreachable!()
        };
        assert_eq!(sa.address, "proxy.corp");
        assert_eq!(
            sa.port_specifier,
            Some(socket_address::PortSpecifier::PortValue(3128))
        );
        let v6 = parse_address("[fd00::1]:8080").unwrap();
        let Some(address::Address::SocketAddress(sa)) = v6.address else {
            unreachable!()
        };
        assert_eq!(sa.address, "fd00::1");
        for bad in [
            "proxy.corp",
            ":3128",
            "proxy:0",
            "proxy:65536",
            "proxy:http",
            "fd00::1:80",
        ] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wrapping_is_idempotent_and_keeps_tls_inside() {
        use envoy_types::pb::envoy::config::cluster::v3::cluster::TransportSocketMatch;
        let tls = TransportSocket {
            name: "envoy.transport_sockets.tls".into(),
            config_type: None,
        };
        let mut c = Cluster {
            transport_socket_matches: vec![TransportSocketMatch {
                name: "backend/0".into(),
                transport_socket: Some(tls.clone()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let proxy = parse_address("10.0.0.9:3128").unwrap();
        wrap_cluster(&mut c, &proxy);
        let once = c.clone();
        wrap_cluster(&mut c, &proxy);
        assert_eq!(c, once);
        assert!(c.transport_socket.is_none());
        let ts = c.transport_socket_matches[0]
            .transport_socket
            .as_ref()
            .unwrap();
        assert_eq!(proxy_of(ts), Some(proxy.clone()));
        let Some(transport_socket::ConfigType::TypedConfig(any)) = &ts.config_type else {
            unreachable!()
        };
        let inner = Http11ProxyUpstreamTransport::decode(any.value.as_slice())
            .unwrap()
            .transport_socket;
        assert_eq!(inner, Some(tls));

        // Plaintext: the wrapper around raw_buffer.
        let mut plain = Cluster::default();
        wrap_cluster(&mut plain, &proxy);
        assert_eq!(
            proxy_of(plain.transport_socket.as_ref().unwrap()),
            Some(proxy)
        );
    }
}
