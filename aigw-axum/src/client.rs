//! The upstream HTTP client: pooled keep-alive HTTP/1.1 and HTTP/2 over rustls.

use crate::error::GatewayError;
use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
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
    /// Idle connections kept per upstream host.
    pub pool_max_idle_per_host: usize,
    /// Extra PEM-encoded CA certificates trusted in addition to the system roots
    /// (e.g. a BackendTLSPolicy's CA).
    pub extra_roots_pem: Vec<Vec<u8>>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 256,
            extra_roots_pem: Vec::new(),
        }
    }
}

/// Builds the pooled upstream client.
///
/// TLS uses rustls with the aws-lc-rs provider and the system's roots; a machine without
/// a system store still gets a working client (plain HTTP and any extra roots), with a
/// warning in the log. HTTP/2 is negotiated by ALPN on TLS; plain HTTP uses HTTP/1.1.
pub fn build_client(settings: &ClientSettings) -> Result<HttpClient, GatewayError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(settings.connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));

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
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(settings.pool_idle_timeout)
        .pool_max_idle_per_host(settings.pool_max_idle_per_host)
        .build(https))
}

fn rustls_native_roots() -> Vec<CertificateDer<'static>> {
    let result = rustls_native_certs::load_native_certs();
    for e in &result.errors {
        tracing::debug!(error = %e, "skipping unreadable system certificate");
    }
    result.certs
}
