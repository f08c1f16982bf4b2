//! InferencePool backends: Envoy sends such a route to the endpoint its pool's endpoint
//! picker names. PostRouteModify and PostClusterModify mark the route and the cluster with
//! the pool (Envoy Gateway passes the InferencePool as an extension resource); the
//! cluster becomes ORIGINAL_DST on `x-gateway-destination-endpoint`; PostTranslateModify
//! then adds, per pool, the picker's cluster and its ext_proc filter on the listener,
//! disabled on every route of another pool or none. Names and metadata as upstream's.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::cluster::v3::{
    Cluster,
    cluster::{ClusterDiscoveryType, LbConfig, LbPolicy, OriginalDstLbConfig},
};
use envoy_types::pb::envoy::config::core::v3::{
    Address, GrpcService, Http2ProtocolOptions, Metadata, SocketAddress, TransportSocket, address,
    grpc_service, socket_address, transport_socket,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint::HostIdentifier,
};
use envoy_types::pb::envoy::config::route::v3::{Route, RouteConfiguration, route, route_action};
use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::{
    ExtProcPerRoute, ExternalProcessor, ProcessingMode, ext_proc_per_route,
    processing_mode::{BodySendMode, HeaderSendMode},
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, UpstreamTlsContext, common_tls_context,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions,
    http_protocol_options::{
        ExplicitHttpConfig, UpstreamProtocolOptions, explicit_http_config::ProtocolConfig,
    },
};
use envoy_types::pb::google::protobuf::{BoolValue, Duration, Value, value};

use super::proto::ExtensionResource;
use super::{METADATA_NAMESPACE, to_any};
use crate::{Error, Result};

const POOL_KEY: &str = "per_route_rule_inference_pool";
const DEFAULT_PICKER_PORT: u32 = 9002;
const BODY_MODE_ANNOTATION: &str = "aigateway.envoyproxy.io/processing-body-mode";
const ALLOW_OVERRIDE_ANNOTATION: &str = "aigateway.envoyproxy.io/allow-mode-override";
/// The header the endpoint picker names the chosen endpoint in.
pub const DESTINATION_HEADER: &str = "x-gateway-destination-endpoint";

/// What the wiring needs of an InferencePool.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pool {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The endpoint picker's Service.
    pub picker: String,
    /// The endpoint picker's port.
    pub port: u32,
    /// `buffered` or `duplex` (the default): how bodies go to the picker.
    pub body_mode: String,
    /// `"true"` lets the picker override the processing mode.
    pub allow_mode_override: String,
}

impl Pool {
    /// The pool of an `inference.networking.k8s.io/v1` InferencePool object.
    pub fn from_object(obj: &serde_json::Value) -> Option<Self> {
        if obj["apiVersion"] != "inference.networking.k8s.io/v1" || obj["kind"] != "InferencePool" {
            return None;
        }
        let ann = |k: &str| {
            obj["metadata"]["annotations"][k]
                .as_str()
                .map(str::to_owned)
        };
        let port = obj["spec"]["endpointPickerRef"]["port"]["number"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p <= 65535)
            .unwrap_or(DEFAULT_PICKER_PORT);
        Some(Self {
            namespace: obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_owned(),
            name: obj["metadata"]["name"].as_str()?.to_owned(),
            picker: obj["spec"]["endpointPickerRef"]["name"]
                .as_str()?
                .to_owned(),
            port,
            body_mode: ann(BODY_MODE_ANNOTATION).unwrap_or_else(|| "duplex".into()),
            allow_mode_override: ann(ALLOW_OVERRIDE_ANNOTATION).unwrap_or_else(|| "false".into()),
        })
    }

    fn from_metadata(meta: Option<&Metadata>) -> Option<Self> {
        let s = meta?
            .filter_metadata
            .get(METADATA_NAMESPACE)?
            .fields
            .get(POOL_KEY)?;
        let Some(value::Kind::StringValue(s)) = &s.kind else {
            return None;
        };
        let p: Vec<&str> = s.split('/').collect();
        if p.len() != 6 {
            return None;
        }
        Some(Self {
            namespace: p[0].into(),
            name: p[1].into(),
            picker: p[2].into(),
            port: p[3].parse().ok()?,
            body_mode: p[4].into(),
            allow_mode_override: p[5].into(),
        })
    }

    fn stamp(&self, meta: &mut Metadata) {
        let v = format!(
            "{}/{}/{}/{}/{}/{}",
            self.namespace,
            self.name,
            self.picker,
            self.port,
            self.body_mode,
            self.allow_mode_override
        );
        meta.filter_metadata
            .entry(METADATA_NAMESPACE.into())
            .or_default()
            .fields
            .insert(
                POOL_KEY.into(),
                Value {
                    kind: Some(value::Kind::StringValue(v)),
                },
            );
    }

    fn cluster_name(&self) -> String {
        format!(
            "envoy.clusters.endpointpicker_{}_{}_ext_proc",
            self.name, self.namespace
        )
    }

    /// The name of the pool's ext_proc filter on the listener.
    pub fn filter_name(&self) -> String {
        format!(
            "envoy.filters.http.ext_proc/endpointpicker/{}_{}_ext_proc",
            self.name, self.namespace
        )
    }

    fn dns_name(&self) -> String {
        format!("{}.{}.svc", self.picker, self.namespace)
    }
}

/// The one InferencePool among a hook's extension resources, if any.
pub fn pool_of(resources: &[ExtensionResource]) -> Result<Option<Pool>> {
    let pools: Vec<Pool> = resources
        .iter()
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.unstructured_bytes).ok())
        .filter_map(|o| Pool::from_object(&o))
        .collect();
    match pools.len() {
        0 => Ok(None),
        1 => Ok(pools.into_iter().next()),
        n => Err(Error::Render(format!(
            "a route rule references {n} InferencePools; at most one is allowed"
        ))),
    }
}

/// PostRouteModify: a route to a pool keeps its Host and carries the pool in its metadata.
pub fn modify_route(route: &mut Route, pool: &Pool) {
    if let Some(route::Action::Route(action)) = &mut route.action {
        action.host_rewrite_specifier = Some(route_action::HostRewriteSpecifier::AutoHostRewrite(
            BoolValue { value: false },
        ));
        pool.stamp(route.metadata.get_or_insert_with(Default::default));
    }
}

/// PostClusterModify: the pool's cluster sends to the address the picker names.
pub fn modify_cluster(cluster: &mut Cluster, pool: &Pool) {
    cluster.cluster_discovery_type = Some(ClusterDiscoveryType::Type(4)); // ORIGINAL_DST
    cluster.lb_policy = LbPolicy::ClusterProvided as i32;
    cluster.connect_timeout = Some(Duration {
        seconds: 10,
        nanos: 0,
    });
    cluster.lb_config = Some(LbConfig::OriginalDstLbConfig(OriginalDstLbConfig {
        use_http_header: true,
        http_header_name: DESTINATION_HEADER.into(),
        ..Default::default()
    }));
    cluster.load_balancing_policy = None;
    cluster.eds_cluster_config = None;
    pool.stamp(cluster.metadata.get_or_insert_with(Default::default));
}

/// The pool a cluster was marked with.
pub fn cluster_pool(cluster: &Cluster) -> Option<Pool> {
    Pool::from_metadata(cluster.metadata.as_ref())
}

/// The endpoint pickers' clusters (TLS, HTTP/2), one per pool the clusters refer to.
pub fn picker_clusters(clusters: &[Cluster]) -> Vec<Cluster> {
    let pools: BTreeMap<String, Pool> = clusters
        .iter()
        .filter_map(cluster_pool)
        .map(|p| (p.cluster_name(), p))
        .collect();
    pools.into_values().map(|p| picker_cluster(&p)).collect()
}

fn picker_cluster(pool: &Pool) -> Cluster {
    let name = pool.cluster_name();
    let tls = UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            validation_context_type: Some(
                common_tls_context::ValidationContextType::ValidationContext(Default::default()),
            ),
            ..Default::default()
        }),
        ..Default::default()
    };
    let h2 = HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(
                    Http2ProtocolOptions::default(),
                )),
            },
        )),
        ..Default::default()
    };
    Cluster {
        name: name.clone(),
        connect_timeout: Some(Duration {
            seconds: 10,
            nanos: 0,
        }),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(1)), // STRICT_DNS
        lb_policy: LbPolicy::LeastRequest as i32,
        transport_socket: Some(TransportSocket {
            name: "envoy.transport_sockets.tls".into(),
            config_type: Some(transport_socket::ConfigType::TypedConfig(to_any(&tls))),
        }),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: name,
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    health_status: 1, // HEALTHY
                    host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
                        address: Some(Address {
                            address: Some(address::Address::SocketAddress(SocketAddress {
                                address: pool.dns_name(),
                                port_specifier: Some(socket_address::PortSpecifier::PortValue(
                                    pool.port,
                                )),
                                ..Default::default()
                            })),
                        }),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        typed_extension_protocol_options: [(
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".to_owned(),
            to_any(&h2),
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    }
}

/// The pool's ext_proc filter configuration: the picker sees headers and bodies.
pub fn picker_filter(pool: &Pool) -> ExternalProcessor {
    let body = if pool.body_mode == "buffered" {
        BodySendMode::Buffered
    } else {
        BodySendMode::FullDuplexStreamed
    };
    ExternalProcessor {
        grpc_service: Some(GrpcService {
            target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                grpc_service::EnvoyGrpc {
                    cluster_name: pool.cluster_name(),
                    authority: format!("{}:{}", pool.dns_name(), pool.port),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
        processing_mode: Some(ProcessingMode {
            request_header_mode: HeaderSendMode::Send as i32,
            request_body_mode: body as i32,
            request_trailer_mode: HeaderSendMode::Send as i32,
            response_header_mode: HeaderSendMode::Send as i32,
            response_body_mode: body as i32,
            response_trailer_mode: HeaderSendMode::Send as i32,
        }),
        allow_mode_override: pool.allow_mode_override == "true",
        message_timeout: Some(Duration {
            seconds: 300,
            nanos: 0,
        }),
        ..Default::default()
    }
}

/// The pools the routes of a route configuration send to.
pub fn route_config_pools(rc: &RouteConfiguration) -> Vec<Pool> {
    let mut pools: Vec<Pool> = rc
        .virtual_hosts
        .iter()
        .flat_map(|vh| vh.routes.iter())
        .filter_map(|r| Pool::from_metadata(r.metadata.as_ref()))
        .collect();
    pools.sort();
    pools.dedup();
    pools
}

/// Disables, on every route, the picker filters of the pools it does not send to.
pub fn disable_other_pools(rc: &mut RouteConfiguration, pools: &[Pool]) {
    let disabled = to_any(&ExtProcPerRoute {
        r#override: Some(ext_proc_per_route::Override::Disabled(true)),
    });
    for vh in &mut rc.virtual_hosts {
        for r in &mut vh.routes {
            let own = Pool::from_metadata(r.metadata.as_ref()).map(|p| p.filter_name());
            for p in pools {
                let name = p.filter_name();
                if own.as_deref() != Some(name.as_str()) {
                    r.typed_per_filter_config.insert(name, disabled.clone());
                }
            }
        }
    }
}
