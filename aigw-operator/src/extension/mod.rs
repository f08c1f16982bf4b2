//! The Envoy Gateway Extension Server: Envoy Gateway sends the xDS it translated from the
//! Gateway API objects, and this server returns it with the AI Gateway wiring added —
//! the same wiring and the same names as the upstream project's extension server, so that
//! `aigw-extproc` finds what it expects (backend metadata, the UDS cluster, the filters).
//!
//! * [`modify`]: the modification as a pure function of the request and the AIGatewayRoutes
//!   it refers to.
//! * [`server`]: the tonic service that looks those routes up and calls [`modify`].

pub mod forward_proxy;
pub mod header_attributes;
pub mod inference_pool;
pub mod local_reply;
pub mod mcp;
pub mod modify;
pub mod server;
pub mod xds;

/// Envoy Gateway's extension protocol (`proto/extension/service.proto`), with the xDS
/// messages taken from `envoy-types`.
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod proto {
    tonic::include_proto!("envoygateway.extension");
}

/// The name of the cluster that reaches the ExtProc over its Unix socket.
pub const EXTPROC_UDS_CLUSTER: &str = "ai-gateway-extproc-uds";
/// The name of the AI Gateway ext_proc filter, on both the listener and the clusters.
pub const EXTPROC_FILTER: &str = "envoy.filters.http.ext_proc/aigateway";
/// The Unix socket the ExtProc sidecar listens on, as upstream's default.
pub const DEFAULT_UDS_PATH: &str = "/etc/ai-gateway-extproc-uds/run.sock";
/// The port Envoy Gateway's extension-server configuration points at, as upstream's default.
pub const DEFAULT_PORT: u16 = 1063;

/// Envoy's metadata namespace for what the AI Gateway stamps on endpoints, clusters and routes.
pub const METADATA_NAMESPACE: &str = "aigateway.envoy.io";

/// Packs a message as `google.protobuf.Any`.
pub fn to_any<M: prost::Message + prost::Name>(m: &M) -> envoy_types::pb::google::protobuf::Any {
    envoy_types::pb::google::protobuf::Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}
