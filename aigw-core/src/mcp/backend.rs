//! One MCP server of a route, as the proxy sends to it (a leaf of the configuration, so
//! the upstream client and the authorization service can name it without depending on
//! the whole route configuration).

use super::filter::ToolSelector;
use crate::Secret;
use crate::routing::TlsSettings;
use http::HeaderName;

/// Where a backend's API key goes.
#[derive(Debug, Clone)]
pub(crate) enum ApiKey {
    /// A header; `Authorization` carries `Bearer <key>`, any other header the key.
    Header(HeaderName, Secret),
    /// A query parameter.
    Query(String, Secret),
}

/// One MCP server of a route.
#[derive(Debug, Clone)]
pub struct McpBackend {
    pub(crate) name: String,
    /// `scheme://authority`.
    pub(crate) origin: String,
    /// Path (and the API-key query, when configured) of the MCP endpoint.
    pub(crate) path: String,
    pub(crate) tls: Option<TlsSettings>,
    /// The Backend's `appProtocols` name `gateway.envoyproxy.io/h2c`.
    pub(crate) http2_prior_knowledge: bool,
    pub(crate) api_key: Option<ApiKey>,
    /// Client header → backend header.
    pub(crate) forward: Vec<(HeaderName, HeaderName)>,
    pub(crate) selector: Option<ToolSelector>,
    /// Headers on every request (behind Envoy: the backend and route names its MCP
    /// backend listener routes by).
    pub(crate) fixed_headers: Vec<(HeaderName, http::HeaderValue)>,
    /// Sent through Envoy's MCP backend listener (upstream's topology): the
    /// `x-ai-eg-mcp-metadata-*` headers go along for its access log.
    pub(crate) via_envoy: bool,
}

impl McpBackend {
    /// The backendRef name (the prefix of its tools).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Upstream TLS (a BackendTLSPolicy or the Backend's `tls`), `None` for plain HTTP.
    pub fn tls(&self) -> Option<&TlsSettings> {
        self.tls.as_ref()
    }

    /// Whether the Backend asks for HTTP/2 with prior knowledge (`appProtocols:
    /// [gateway.envoyproxy.io/h2c]`): on plain HTTP the client must speak HTTP/2 from its
    /// first byte, since such a server may answer nothing else. Over TLS, ALPN decides.
    pub fn http2_prior_knowledge(&self) -> bool {
        self.http2_prior_knowledge
    }

    /// The URL requests are sent to (no credential in it).
    pub fn url(&self) -> String {
        format!("{}{}", self.origin, self.path)
    }
}
