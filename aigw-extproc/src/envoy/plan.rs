//! The Envoy-shaped view of a configuration.

use crate::error::ExtProcError;
use crate::server::ListenAddr;
use std::net::SocketAddr;
use std::time::Duration;

/// A header condition of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderMatch {
    /// The header equals the value.
    Exact {
        /// Header name (lower case).
        name: String,
        /// Value.
        value: String,
    },
    /// The header fully matches the RE2 expression.
    Regex {
        /// Header name (lower case).
        name: String,
        /// Expression.
        regex: String,
    },
}

/// One route: an AIGatewayRoute rule's match, sent to the rule's cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePlan {
    /// The AIGatewayRoute, `namespace/name`.
    pub route: String,
    /// The route's `hostnames` (lower case; `*.example.com` wildcards); empty serves
    /// every host.
    pub hostnames: Vec<String>,
    /// Header conditions, all of which must hold; empty matches everything.
    pub headers: Vec<HeaderMatch>,
    /// The cluster the rule's backends live in.
    pub cluster: String,
    /// Overall request timeout.
    pub timeout: Option<Duration>,
    /// Per-try timeout.
    pub per_try_timeout: Option<Duration>,
    /// Retries allowed (fallback across priorities); 0 disables the retry policy.
    pub retries: u32,
    /// The retry conditions of a BackendTrafficPolicy `retry` that applies to the
    /// route; without one, the gateway's default conditions are used.
    pub retry: Option<RetryPlan>,
}

/// A BackendTrafficPolicy's `retry`, in Envoy's terms (from
/// [`RetryOn`](aigw_core::retry::RetryOn), which writes them as Envoy Gateway does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPlan {
    /// Envoy `retry_on` (comma-separated triggers).
    pub retry_on: String,
    /// Envoy `retriable_status_codes`.
    pub status_codes: Vec<u16>,
    /// Backoff base and cap.
    pub backoff: Option<(Duration, Duration)>,
}

/// One upstream endpoint of a rule's cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPlan {
    /// Host name or IP.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Envoy priority (0 first; contiguous).
    pub priority: u32,
    /// Load-balancing weight within the priority.
    pub weight: u32,
    /// The per-rule backend name the upstream-level filter reads back.
    pub backend_name: String,
    /// TLS server name, when the endpoint speaks TLS.
    pub tls_sni: Option<String>,
    /// The Backend asks for HTTP/2 with prior knowledge (`appProtocols: h2c`).
    pub http2: bool,
}

/// One cluster: the backends of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterPlan {
    /// Cluster name, `httproute/{ns}/{route}/rule/{i}`.
    pub name: String,
    /// Endpoints (none for an InferencePool rule: its picker names them).
    pub endpoints: Vec<EndpointPlan>,
    /// What the route's BackendTrafficPolicy asks of the cluster.
    pub protection: Protection,
    /// The InferencePool the rule sends to.
    pub pool: Option<PoolPlan>,
}

/// An InferencePool rule: Envoy asks the pool's endpoint picker (an ext_proc server, the
/// Gateway API Inference Extension's protocol) and sends the request to the address it
/// names in `x-gateway-destination-endpoint` (an ORIGINAL_DST cluster), as the Inference
/// Extension and upstream's extension server wire it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolPlan {
    /// The pool's namespace.
    pub namespace: String,
    /// The pool's name.
    pub name: String,
    /// The per-rule backend name the upstream-level filter reads back (cluster metadata).
    pub backend_name: String,
    /// The picker's in-cluster address, `<service>.<namespace>.svc:<port>`.
    pub picker_authority: String,
    /// `failureMode: FailOpen` (not honoured by the bootstrap: a request the picker
    /// fails on has no destination).
    pub fail_open: bool,
    /// The `aigateway.envoyproxy.io/processing-body-mode: buffered` annotation: bodies
    /// go to the picker buffered instead of full-duplex streamed.
    pub buffered: bool,
    /// The `aigateway.envoyproxy.io/allow-mode-override: "true"` annotation.
    pub allow_mode_override: bool,
}

impl PoolPlan {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The pool's ext_proc filter on the listener (upstream's name).
    pub fn filter_name(&self) -> String {
        format!(
            "envoy.filters.http.ext_proc/endpointpicker/{}_{}_ext_proc",
            self.name, self.namespace
        )
    }

    /// The picker's cluster (upstream's name).
    pub fn cluster_name(&self) -> String {
        format!(
            "envoy.clusters.endpointpicker_{}_{}_ext_proc",
            self.name, self.namespace
        )
    }
}

/// A BackendTrafficPolicy's upstream settings, as Envoy Gateway writes them into the
/// cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protection {
    /// `timeout.tcp.connectTimeout` (Envoy's `connect_timeout`; 10 s when unset).
    pub connect_timeout: Option<Duration>,
    /// `timeout.http.connectionIdleTimeout`.
    pub idle_timeout: Option<Duration>,
    /// `circuitBreaker`.
    pub circuit: Option<aigw_core::health::CircuitLimits>,
    /// `healthCheck.passive`.
    pub passive: Option<aigw_core::health::OutlierPolicy>,
    /// `healthCheck.active` (HTTP).
    pub active: Option<aigw_core::health::ActiveCheck>,
}

/// Process-level options of the bootstrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Where Envoy listens for clients.
    pub listen: SocketAddr,
    /// Envoy's admin address, if any.
    pub admin: Option<SocketAddr>,
    /// Where `aigw-extproc` listens.
    pub extproc: ListenAddr,
    /// CA bundle for upstream TLS.
    pub ca_file: String,
    /// Print one JSON access log line per request with the token metadata to stdout.
    pub access_log: bool,
    /// Where `aigw-extproc` serves MCP (`--mcp-addr`): the MCPRoutes' paths go there.
    pub mcp: Option<SocketAddr>,
    /// Endpoint-picker URLs by pool (`namespace/name` → `http://host:port` for
    /// plain-text gRPC, `https://host:port` for TLS); pools not listed are dialled at
    /// their picker's in-cluster Service over TLS.
    pub pickers: std::collections::BTreeMap<String, String>,
}

impl Options {
    /// Defaults: listen on `0.0.0.0:1975`, no Envoy admin, the system CA bundle.
    pub fn new(extproc: ListenAddr) -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 1975)),
            admin: None,
            extproc,
            ca_file: "/etc/ssl/certs/ca-certificates.crt".into(),
            access_log: true,
            mcp: None,
            pickers: Default::default(),
        }
    }
}

/// Routes and clusters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Routes in match order.
    pub routes: Vec<RoutePlan>,
    /// Clusters.
    pub clusters: Vec<ClusterPlan>,
    /// Dynamic metadata namespaces the router-level filter forwards to the processor
    /// (`credentialOverride.fromDynamicMetadata`).
    pub metadata_namespaces: Vec<String>,
    /// The MCPRoutes' endpoint paths, routed to the MCP listener.
    pub mcp_paths: Vec<String>,
}

impl Plan {
    /// Checks what Envoy would reject: clusters without endpoints, unknown clusters,
    /// endpoints of one cluster disagreeing on TLS.
    pub fn validate(&self) -> Result<(), ExtProcError> {
        for c in &self.clusters {
            if c.endpoints.is_empty() && c.pool.is_none() {
                return Err(ExtProcError::EnvoyConfig(format!(
                    "cluster {} has no endpoints",
                    c.name
                )));
            }
            let tls = c.endpoints.first().is_some_and(|e| e.tls_sni.is_some());
            if c.endpoints.iter().any(|e| e.tls_sni.is_some() != tls) {
                return Err(ExtProcError::EnvoyConfig(format!(
                    "cluster {} mixes TLS and plain-text endpoints",
                    c.name
                )));
            }
        }
        for r in &self.routes {
            if !self.clusters.iter().any(|c| c.name == r.cluster) {
                return Err(ExtProcError::EnvoyConfig(format!(
                    "route {} refers to unknown cluster {}",
                    r.route, r.cluster
                )));
            }
        }
        Ok(())
    }
}
