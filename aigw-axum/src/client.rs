//! The upstream HTTP clients: pooled keep-alive HTTP/1.1 and HTTP/2 over rustls.
//!
//! Proxied LLM requests go through the gateway's own pool ([`Upstream`]); health
//! checks, JWKS fetches and MCP upstreams through `hyper_util`'s legacy client. Both
//! connect through the same [`Connector`].

use crate::error::GatewayError;
pub use crate::upstream::Upstream;
use aigw_core::routing::{TlsRoots, TlsSettings};
use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::FixedServerNameResolver;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::Duration;

/// The connector every upstream request goes through.
pub type Connector = HttpsConnector<HttpConnector>;

/// The pooled client type.
pub type HttpClient = Client<Connector, Full<Bytes>>;

/// Settings of the upstream client.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per upstream host. A connection returned to the pool
    /// beyond this is closed; connections in use are not limited by it.
    pub pool_max_idle_per_host: usize,
    /// Extra PEM-encoded CA certificates trusted in addition to the system roots
    /// (e.g. a BackendTLSPolicy's CA).
    pub extra_roots_pem: Vec<Vec<u8>>,
    /// Speak HTTP/2 only, with prior knowledge on plain HTTP (a Backend's
    /// `appProtocols: [gateway.envoyproxy.io/h2c]`): requests share connections as
    /// streams instead of holding one connection each.
    pub http2_only: bool,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(90),
            // Enough to absorb a steady 64 concurrent requests per host without a new
            // connection (reuse is immediate under steady load, so the idle set stays
            // small); after a burst of a thousand streams, the rest close at once
            // instead of holding ≈ 48 KiB each for the idle timeout.
            pool_max_idle_per_host: 64,
            extra_roots_pem: Vec::new(),
            http2_only: false,
        }
    }
}

/// Builds the pooled upstream client.
///
/// TLS uses rustls with the aws-lc-rs provider and the system's roots; a machine without
/// a system store still gets a working client (plain HTTP and any extra roots), with a
/// warning in the log. HTTP/2 is negotiated by ALPN on TLS; plain HTTP uses HTTP/1.1.
pub fn build_client(settings: &ClientSettings) -> Result<HttpClient, GatewayError> {
    Ok(pooled(settings, build_connector(settings)?))
}

/// The legacy client (health checks, side fetches) and the proxied path's own pool
/// ([`Upstream`]) over one connector: the system roots are read once.
pub fn build_clients(settings: &ClientSettings) -> Result<(HttpClient, Upstream), GatewayError> {
    Ok(both(settings, build_connector(settings)?))
}

/// [`build_clients`] for one backend's TLS settings (see [`build_tls_client`]).
pub fn build_tls_clients(
    settings: &ClientSettings,
    tls: &TlsSettings,
) -> Result<(HttpClient, Upstream), GatewayError> {
    Ok(both(settings, tls_connector(settings, tls)?))
}

/// The legacy client and the pool over one connector.
fn both(settings: &ClientSettings, connector: Connector) -> (HttpClient, Upstream) {
    (
        pooled(settings, connector.clone()),
        Upstream::new(settings, connector),
    )
}

/// The connector of [`build_client`]: the system roots and `settings`' extra roots,
/// HTTP/1.1 and HTTP/2 by ALPN.
pub fn build_connector(settings: &ClientSettings) -> Result<Connector, GatewayError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_roots();
    if native.is_empty() {
        tracing::warn!("no system CA certificates found; only extra roots are trusted");
    }
    roots.add_parsable_certificates(native);
    for pem in &settings.extra_roots_pem {
        let certs = CertificateDer::pem_slice_iter(pem).filter_map(|c| c.ok());
        roots.add_parsable_certificates(certs);
    }
    let tls = client_config(TlsTrust::Roots(roots))?;
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(http_connector(settings)))
}

/// Builds a client for one backend's TLS settings (a BackendTLSPolicy): its own CA
/// bundle instead of the system roots (or no verification for `insecureSkipVerify`),
/// and `sni` as the server name sent and verified whatever address is dialled.
pub fn build_tls_client(
    settings: &ClientSettings,
    tls: &TlsSettings,
) -> Result<HttpClient, GatewayError> {
    Ok(pooled(settings, tls_connector(settings, tls)?))
}

/// The connector of [`build_tls_client`] (HTTP/1.1 and HTTP/2 by ALPN), for clients that
/// pool connections themselves (a gRPC channel).
pub(crate) fn tls_connector(
    settings: &ClientSettings,
    tls: &TlsSettings,
) -> Result<Connector, GatewayError> {
    let trust = match &tls.roots {
        TlsRoots::System => {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(rustls_native_roots());
            TlsTrust::Roots(roots)
        }
        TlsRoots::Pem(bundles) => {
            let mut roots = RootCertStore::empty();
            for pem in bundles {
                let certs =
                    CertificateDer::pem_slice_iter(pem.expose().as_bytes()).filter_map(|c| c.ok());
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(GatewayError::Tls(format!(
                        "{}: the CA bundle holds no usable certificate",
                        tls.origin
                    )));
                }
            }
            TlsTrust::Roots(roots)
        }
        TlsRoots::InsecureSkipVerify => TlsTrust::Insecure,
    };
    let config = client_config(trust)?;
    let name = ServerName::try_from(tls.sni.clone()).map_err(|_| {
        GatewayError::Tls(format!("{}: invalid hostname {:?}", tls.origin, tls.sni))
    })?;
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .with_server_name_resolver(FixedServerNameResolver::new(name))
        .enable_all_versions()
        .wrap_connector(http_connector(settings)))
}

/// The connector of gRPC clients (the endpoint pickers of InferencePools): plain text
/// for `http://`, TLS with HTTP/2 negotiated for `https://`, without certificate
/// verification — as Envoy dials pickers in upstream's configuration, the picker's
/// certificate being self-signed by default.
#[cfg(feature = "inference-pool")]
pub(crate) fn grpc_connector() -> Result<Connector, GatewayError> {
    let config = client_config(TlsTrust::Insecure)?;
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http2()
        .wrap_connector(http_connector(&ClientSettings::default())))
}

enum TlsTrust {
    Roots(RootCertStore),
    Insecure,
}

fn client_config(trust: TlsTrust) -> Result<rustls::ClientConfig, GatewayError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| GatewayError::Tls(e.to_string()))?;
    Ok(match trust {
        TlsTrust::Roots(roots) => builder.with_root_certificates(roots).with_no_client_auth(),
        TlsTrust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth(),
    })
}

fn http_connector(settings: &ClientSettings) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(settings.connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    http
}

fn pooled(settings: &ClientSettings, https: Connector) -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(settings.pool_idle_timeout)
        .pool_max_idle_per_host(settings.pool_max_idle_per_host)
        .http2_only(settings.http2_only)
        .build(https)
}

/// `insecureSkipVerify`: accepts any certificate, still checking handshake signatures
/// so the connection is at least bound to the presented key.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn rustls_native_roots() -> Vec<CertificateDer<'static>> {
    let result = rustls_native_certs::load_native_certs();
    for e in &result.errors {
        tracing::debug!(error = %e, "skipping unreadable system certificate");
    }
    result.certs
}
