//! PostTranslateModify as a pure function: the xDS Envoy Gateway translated, plus the
//! AIGatewayRoutes its cluster names refer to, in; the xDS with the AI wiring out.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster::ClusterDiscoveryType};
use envoy_types::pb::envoy::config::common::mutation_rules::v3::{
    HeaderMutation as HeaderMutationRule, header_mutation::Action,
};
use envoy_types::pb::envoy::config::core::v3::{
    Address, GrpcService, HeaderValue, HeaderValueOption, Http2ProtocolOptions, Metadata, Pipe,
    SchemeHeaderTransformation, address, grpc_service, header_value_option::HeaderAppendAction,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint::HostIdentifier,
};
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::{FilterConfig, Route, RouteConfiguration};
use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::{
    ExternalProcessor, MetadataOptions, ProcessingMode,
    processing_mode::{BodySendMode, HeaderSendMode},
};
use envoy_types::pb::envoy::extensions::filters::http::header_mutation::v3::{
    HeaderMutation, Mutations,
};
use envoy_types::pb::envoy::extensions::filters::http::upstream_codec::v3::UpstreamCodec;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpFilter, http_connection_manager::RouteSpecifier,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions,
    http_protocol_options::{
        ExplicitHttpConfig, UpstreamProtocolOptions, explicit_http_config::ProtocolConfig,
    },
};
use envoy_types::pb::google::protobuf::{Any, Duration, Struct, UInt32Value, Value, value};
use prost::Message;

use super::proto::{PostTranslateModifyRequest, PostTranslateModifyResponse};
use super::xds::{hcms, http_filter, is_internal_listener, seconds, set_chain_hcm};
use super::{EXTPROC_FILTER, EXTPROC_UDS_CLUSTER, METADATA_NAMESPACE, to_any};
use super::{forward_proxy, header_attributes, inference_pool, local_reply, mcp};
use crate::{Error, Result};

pub use super::xds::FILTER_METADATA_NAMESPACE;
const BACKEND_NAME_KEY: &str = "per_route_rule_backend_name";
const UPSTREAM_HOST_KEY: &str = "upstream_host";
const ROUTE_NAME_KEY: &str = "aigw_route_name";
/// The annotation the operator puts on the HTTPRoutes it generates.
pub const GENERATED_ROUTE_ANNOTATION: &str = "ai-gateway-generated";
const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// Filters the AI Gateway ext_proc goes before on the listener (Envoy Gateway's own filter
/// names), so that it sees the request before other processors, Lua, RBAC, rate limits and
/// the router.
const AFTER_EXTPROC_PREFIXES: &[&str] = &[
    "envoy.filters.http.ext_proc",
    "envoy.filters.http.wasm",
    "envoy.filters.http.lua",
    "envoy.filters.http.rbac",
    "envoy.filters.http.local_ratelimit",
    "envoy.filters.http.ratelimit",
    "envoy.filters.http.custom_response",
    "envoy.filters.http.credential_injector",
    "envoy.filters.http.compressor",
    "envoy.filters.http.router",
];

/// What the modification needs to know of one backendRef of an AIGatewayRoute rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendRef {
    /// The AIServiceBackend's name.
    pub name: String,
    /// `priority`, when set.
    pub priority: Option<u32>,
    /// `weight`, when set (a zero weight gets no endpoints from Envoy Gateway).
    pub weight: Option<i32>,
}

/// What the modification needs to know of one AIGatewayRoute rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteRule {
    /// Its backendRefs.
    pub backends: Vec<BackendRef>,
    /// `streamIdleTimeout`: the route's per-try idle timeout, so that a backend that goes
    /// silent is reset and the retry policy falls over to the next one.
    pub stream_idle_timeout: Option<std::time::Duration>,
    /// `forwardProxy.address` of the GatewayConfig of the route's Gateway (the same for
    /// every rule of a route): the rule's clusters tunnel through it
    /// ([`forward_proxy`]).
    pub forward_proxy: Option<String>,
}

/// An AIGatewayRoute's rules.
pub type RouteRules = Vec<RouteRule>;

/// AIGatewayRoutes by `(namespace, name)`.
pub type Routes = HashMap<(String, String), RouteRules>;

/// Settings of the modification.
#[derive(Debug, Clone)]
pub struct Options {
    /// The ExtProc's Unix socket path.
    pub uds_path: String,
    /// Request headers copied into filter metadata for access logs
    /// ([`header_attributes`]).
    pub log_header_attributes: header_attributes::Attributes,
}

impl Options {
    /// The ExtProc at `uds_path`, upstream's default access-log header mapping.
    pub fn new(uds_path: impl Into<String>) -> Self {
        Self {
            uds_path: uds_path.into(),
            log_header_attributes: header_attributes::Attributes::from([(
                "agent-session-id".into(),
                "session.id".into(),
            )]),
        }
    }
}

/// The parts of an Envoy Gateway cluster name `httproute/<ns>/<name>/rule/<i>[/backend/<j>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterName {
    /// The route's namespace.
    pub namespace: String,
    /// The route's name.
    pub route: String,
    /// The rule index.
    pub rule: usize,
    /// The backendRef index, for per-backend clusters.
    pub backend: Option<usize>,
}

impl ClusterName {
    /// Parses a cluster name; `None` for clusters that are not an HTTPRoute rule's.
    pub fn parse(name: &str) -> Option<Self> {
        let parts: Vec<&str> = name.split('/').collect();
        if !(parts.len() == 5 || parts.len() == 7) || parts[0] != "httproute" || parts[3] != "rule"
        {
            return None;
        }
        let rule = parts[4].parse().ok()?;
        let backend = match parts.get(5) {
            None => None,
            Some(&"backend") => Some(parts.get(6)?.parse().ok()?),
            Some(_) => return None,
        };
        Some(Self {
            namespace: parts[1].into(),
            route: parts[2].into(),
            rule,
            backend,
        })
    }
}

/// The AIGatewayRoutes a request's clusters refer to, to be looked up before [`modify`].
pub fn referenced_routes(req: &PostTranslateModifyRequest) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = req
        .clusters
        .iter()
        .filter_map(|c| ClusterName::parse(&c.name))
        .map(|n| (n.namespace, n.route))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Adds the AI Gateway wiring to the translated xDS.
///
/// `routes` holds the AIGatewayRoutes that exist among [`referenced_routes`]; clusters of
/// other HTTPRoutes are left as they are.
pub fn modify(
    req: PostTranslateModifyRequest,
    routes: &Routes,
    options: &Options,
) -> Result<PostTranslateModifyResponse> {
    let PostTranslateModifyRequest {
        mut clusters,
        secrets,
        mut listeners,
        routes: mut route_configs,
        ..
    } = req;
    let mut has_uds = false;
    for cluster in &mut clusters {
        modify_cluster(cluster, routes)?;
        has_uds |= cluster.name == EXTPROC_UDS_CLUSTER;
    }
    let pickers: Vec<Cluster> = inference_pool::picker_clusters(&clusters)
        .into_iter()
        .filter(|p| !clusters.iter().any(|c| c.name == p.name))
        .collect();
    clusters.extend(pickers);
    if !has_uds {
        clusters.push(uds_cluster(&options.uds_path));
    }
    apply_stream_idle_timeouts(&mut route_configs, routes);
    modify_listeners_and_routes(&mut listeners, &mut route_configs)?;
    mcp::modify(&mut listeners, &mut route_configs, &mut clusters)?;
    header_attributes::insert(&mut listeners, &options.log_header_attributes)?;
    Ok(PostTranslateModifyResponse {
        clusters,
        secrets,
        listeners,
        routes: route_configs,
    })
}

fn modify_cluster(cluster: &mut Cluster, routes: &Routes) -> Result<()> {
    let Some(name) = ClusterName::parse(&cluster.name) else {
        return Ok(());
    };
    let Some(rules) = routes.get(&(name.namespace.clone(), name.route.clone())) else {
        tracing::debug!(cluster = %cluster.name, "not an AIGatewayRoute's cluster");
        return Ok(());
    };
    let Some(rule) = rules.get(name.rule) else {
        tracing::warn!(cluster = %cluster.name, "rule index out of range of the AIGatewayRoute");
        return Ok(());
    };
    let refs = &rule.backends;
    if name.backend.is_some_and(|b| b >= refs.len()) {
        tracing::warn!(cluster = %cluster.name, "backend index out of range of the AIGatewayRoute rule");
        return Ok(());
    }
    let backend_name = |i: usize| {
        format!(
            "{}/{}/route/{}/rule/{}/ref/{}",
            name.namespace, refs[i].name, name.route, name.rule, i
        )
    };
    let pool = inference_pool::cluster_pool(cluster).is_some();
    match (
        cluster.load_assignment.as_mut().filter(|_| !pool),
        name.backend,
    ) {
        // A pool's cluster is ORIGINAL_DST: the backend is the cluster's, not an endpoint's.
        (None, backend) => {
            if !refs.is_empty() {
                let i = backend.unwrap_or(0);
                let meta = namespace_struct(cluster.metadata.get_or_insert_with(Default::default));
                meta.fields
                    .insert(BACKEND_NAME_KEY.into(), string_value(backend_name(i)));
            }
        }
        (Some(la), Some(i)) => {
            for locality in &mut la.endpoints {
                stamp_locality(locality, &refs[i], backend_name(i));
            }
        }
        (Some(la), None) => {
            // Envoy Gateway emits one locality per backendRef with a non-zero weight, in order.
            let mut localities = la.endpoints.iter_mut();
            for (i, r) in refs.iter().enumerate() {
                if r.weight == Some(0) {
                    continue;
                }
                let Some(locality) = localities.next() else {
                    break;
                };
                stamp_locality(locality, r, backend_name(i));
            }
        }
    }
    // A pool's endpoints are pods in the cluster: never through the forward proxy.
    if let Some(addr) = rule.forward_proxy.as_deref().filter(|_| !pool) {
        let proxy = forward_proxy::parse_address(addr)
            .map_err(|e| Error::Render(format!("cluster {}: {e}", cluster.name)))?;
        forward_proxy::wrap_cluster(cluster, &proxy);
    }
    insert_upstream_filters(cluster)
}

/// Upstream's `applyStreamIdleTimeouts`: each forwarding route of an AIGatewayRoute
/// rule with `streamIdleTimeout` gets it as `retry_policy.per_try_idle_timeout`.
fn apply_stream_idle_timeouts(configs: &mut [RouteConfiguration], routes: &Routes) {
    use envoy_types::pb::envoy::config::route::v3::{RetryPolicy, route};
    for r in configs
        .iter_mut()
        .flat_map(|rc| rc.virtual_hosts.iter_mut())
        .flat_map(|vh| vh.routes.iter_mut())
    {
        // `httproute/<ns>/<name>/rule/<i>/match/…`.
        let parts: Vec<&str> = r.name.split('/').collect();
        if parts.len() < 5 || parts[0] != "httproute" || parts[3] != "rule" {
            continue;
        }
        let timeout = parts[4]
            .parse::<usize>()
            .ok()
            .and_then(|i| {
                routes
                    .get(&(parts[1].to_owned(), parts[2].to_owned()))?
                    .get(i)
            })
            .and_then(|rule| rule.stream_idle_timeout)
            .filter(|t| !t.is_zero());
        let (Some(t), Some(route::Action::Route(action))) = (timeout, r.action.as_mut()) else {
            continue;
        };
        action
            .retry_policy
            .get_or_insert_with(RetryPolicy::default)
            .per_try_idle_timeout = Some(Duration {
            seconds: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(t.subsec_nanos()).unwrap_or(0),
        });
    }
}

fn stamp_locality(locality: &mut LocalityLbEndpoints, r: &BackendRef, backend_name: String) {
    if let Some(p) = r.priority {
        locality.priority = p;
    }
    for endpoint in &mut locality.lb_endpoints {
        let host = endpoint_upstream_host(endpoint);
        let meta = namespace_struct(endpoint.metadata.get_or_insert_with(Default::default));
        meta.fields
            .insert(BACKEND_NAME_KEY.into(), string_value(backend_name.clone()));
        if let Some(host) = host {
            meta.fields
                .insert(UPSTREAM_HOST_KEY.into(), string_value(host));
        }
    }
}

/// The hostname an endpoint dials, for the ExtProc's Host header and SigV4 (IPs need none).
fn endpoint_upstream_host(endpoint: &LbEndpoint) -> Option<String> {
    let Some(HostIdentifier::Endpoint(ep)) = &endpoint.host_identifier else {
        return None;
    };
    if !ep.hostname.is_empty() {
        return Some(ep.hostname.clone());
    }
    let Some(address::Address::SocketAddress(sa)) = ep.address.as_ref()?.address.as_ref() else {
        return None;
    };
    (!sa.address.is_empty() && sa.address.parse::<std::net::IpAddr>().is_err())
        .then(|| sa.address.clone())
}

/// Puts the upstream ext_proc (credentials and request signing per endpoint) and the
/// content-length restoring header mutation before the cluster's upstream codec.
fn insert_upstream_filters(cluster: &mut Cluster) -> Result<()> {
    let mut po = match cluster
        .typed_extension_protocol_options
        .get(HTTP_PROTOCOL_OPTIONS)
    {
        Some(raw) => HttpProtocolOptions::decode(raw.value.as_slice()).map_err(|e| {
            Error::Render(format!(
                "cluster {}: HttpProtocolOptions: {e}",
                cluster.name
            ))
        })?,
        None => HttpProtocolOptions {
            upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
                ExplicitHttpConfig {
                    protocol_config: Some(ProtocolConfig::HttpProtocolOptions(Default::default())),
                },
            )),
            ..Default::default()
        },
    };
    if po.http_filters.iter().any(|f| f.name == EXTPROC_FILTER) {
        return Ok(());
    }
    let ext_proc = ExternalProcessor {
        grpc_service: Some(uds_grpc_service(Some(seconds(30)))),
        metadata_options: Some(receiving_metadata()),
        allow_mode_override: true,
        request_attributes: vec![
            "xds.upstream_host_metadata.filter_metadata['aigateway.envoy.io']['per_route_rule_backend_name']".into(),
            "xds.cluster_metadata.filter_metadata['aigateway.envoy.io']['per_route_rule_backend_name']".into(),
            "xds.upstream_host_metadata.filter_metadata['aigateway.envoy.io']['upstream_host']".into(),
            "xds.route_metadata.filter_metadata['aigateway.envoy.io']['aigw_route_name']".into(),
        ],
        processing_mode: Some(ProcessingMode {
            request_header_mode: HeaderSendMode::Send as i32,
            request_body_mode: BodySendMode::None as i32,
            response_header_mode: HeaderSendMode::Skip as i32,
            response_body_mode: BodySendMode::None as i32,
            ..Default::default()
        }),
        message_timeout: Some(seconds(10)),
        ..Default::default()
    };
    let header_mutation = HeaderMutation {
        mutations: Some(Mutations {
            request_mutations: vec![HeaderMutationRule {
                action: Some(Action::Append(HeaderValueOption {
                    append_action: HeaderAppendAction::AddIfAbsent as i32,
                    header: Some(HeaderValue {
                        key: "content-length".into(),
                        value: format!(
                            "%DYNAMIC_METADATA({FILTER_METADATA_NAMESPACE}:content_length)%"
                        ),
                        ..Default::default()
                    }),
                    ..Default::default()
                })),
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let new = [
        http_filter(EXTPROC_FILTER, &ext_proc, false),
        http_filter(
            "envoy.filters.http.header_mutation",
            &header_mutation,
            false,
        ),
    ];
    match po.http_filters.pop() {
        Some(last) => po.http_filters.extend(new.into_iter().chain([last])),
        None => po.http_filters.extend(new.into_iter().chain([http_filter(
            "envoy.filters.http.upstream_codec",
            &UpstreamCodec {},
            false,
        )])),
    }
    cluster
        .typed_extension_protocol_options
        .insert(HTTP_PROTOCOL_OPTIONS.into(), to_any(&po));
    Ok(())
}

fn uds_cluster(path: &str) -> Cluster {
    let po = HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(Http2ProtocolOptions {
                    initial_connection_window_size: Some(UInt32Value { value: 1_048_576 }),
                    initial_stream_window_size: Some(UInt32Value { value: 65_536 }),
                    ..Default::default()
                })),
            },
        )),
        ..Default::default()
    };
    Cluster {
        name: EXTPROC_UDS_CLUSTER.into(),
        // STATIC = 0.
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(0)),
        connect_timeout: Some(seconds(10)),
        typed_extension_protocol_options: HashMap::from([(
            HTTP_PROTOCOL_OPTIONS.into(),
            to_any(&po),
        )]),
        // Bodies up to 50 MiB pass through the ExtProc stream.
        per_connection_buffer_limit_bytes: Some(UInt32Value { value: 52_428_800 }),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: EXTPROC_UDS_CLUSTER.into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
                        address: Some(Address {
                            address: Some(address::Address::Pipe(Pipe {
                                path: path.into(),
                                mode: 0,
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
        ..Default::default()
    }
}

/// Enables the router-level ext_proc on the routes generated from AIGatewayRoutes and
/// inserts it, disabled by default, into the listeners that serve them.
fn modify_listeners_and_routes(
    listeners: &mut [Listener],
    configs: &mut [RouteConfiguration],
) -> Result<()> {
    wire_inference_pools(listeners, configs)?;
    let enabled_configs: Vec<String> = configs
        .iter_mut()
        .filter_map(|rc| enable_on_ai_routes(rc).then(|| rc.name.clone()))
        .collect();
    for listener in listeners.iter_mut() {
        if is_internal_listener(&listener.name) {
            continue;
        }
        let serves_ai = listener_route_configs(listener)?
            .iter()
            .any(|n| enabled_configs.contains(n));
        if serves_ai {
            insert_router_level_extproc(listener)?;
        }
    }
    Ok(())
}

/// Adds each pool's endpoint-picker filter to the listeners serving routes to it, and
/// disables it on their other routes.
fn wire_inference_pools(
    listeners: &mut [Listener],
    configs: &mut [RouteConfiguration],
) -> Result<()> {
    for listener in listeners.iter_mut() {
        if is_internal_listener(&listener.name) {
            continue;
        }
        let names = listener_route_configs(listener)?;
        let mut pools: Vec<inference_pool::Pool> = configs
            .iter()
            .filter(|rc| names.contains(&rc.name))
            .flat_map(inference_pool::route_config_pools)
            .collect();
        pools.sort();
        pools.dedup();
        if pools.is_empty() {
            continue;
        }
        for (ci, fi, mut hcm) in hcms(listener)? {
            let missing: Vec<HttpFilter> = pools
                .iter()
                .filter(|p| !hcm.http_filters.iter().any(|f| f.name == p.filter_name()))
                .map(|p| http_filter(&p.filter_name(), &inference_pool::picker_filter(p), false))
                .collect();
            let replies = hcm.local_reply_config.clone();
            local_reply::insert(&mut hcm);
            if missing.is_empty() && replies == hcm.local_reply_config {
                continue;
            }
            // Before the router, the last filter.
            let at = hcm.http_filters.len().saturating_sub(1);
            hcm.http_filters.splice(at..at, missing);
            set_chain_hcm(listener, ci, fi, &hcm);
        }
        for rc in configs.iter_mut().filter(|rc| names.contains(&rc.name)) {
            inference_pool::disable_other_pools(rc, &pools);
        }
    }
    Ok(())
}

fn enable_on_ai_routes(rc: &mut RouteConfiguration) -> bool {
    let mut enabled = false;
    let enable = to_any(&FilterConfig {
        config: Some(Any::default()),
        ..Default::default()
    });
    let config_route = route_name_from_config_name(&rc.name);
    for vh in &mut rc.virtual_hosts {
        for r in &mut vh.routes {
            if !is_ai_route(r) {
                continue;
            }
            enabled = true;
            r.typed_per_filter_config
                .insert(EXTPROC_FILTER.into(), enable.clone());
            let name = route_name_from_metadata(r)
                .or_else(|| config_route.clone())
                .unwrap_or_else(|| r.name.clone());
            let meta = namespace_struct(r.metadata.get_or_insert_with(Default::default));
            meta.fields
                .insert(ROUTE_NAME_KEY.into(), string_value(name));
        }
    }
    enabled
}

/// Envoy Gateway's `envoy-gateway` route metadata lists the HTTPRoute with its annotations.
fn eg_resources(r: &Route) -> impl Iterator<Item = &Struct> {
    r.metadata
        .as_ref()
        .and_then(|m| m.filter_metadata.get("envoy-gateway"))
        .and_then(|s| s.fields.get("resources"))
        .and_then(|v| match &v.kind {
            Some(value::Kind::ListValue(l)) => Some(l.values.iter()),
            _ => None,
        })
        .into_iter()
        .flatten()
        .filter_map(|v| match &v.kind {
            Some(value::Kind::StructValue(s)) => Some(s),
            _ => None,
        })
}

fn is_ai_route(r: &Route) -> bool {
    eg_resources(r).any(
        |res| match res.fields.get("annotations").and_then(|a| a.kind.as_ref()) {
            Some(value::Kind::StructValue(a)) => a.fields.contains_key(GENERATED_ROUTE_ANNOTATION),
            _ => false,
        },
    )
}

fn string_field(s: &Struct, key: &str) -> Option<String> {
    match s.fields.get(key)?.kind.as_ref()? {
        value::Kind::StringValue(v) if !v.is_empty() => Some(v.clone()),
        _ => None,
    }
}

fn route_name_from_metadata(r: &Route) -> Option<String> {
    eg_resources(r).find_map(|res| {
        match (string_field(res, "namespace"), string_field(res, "name")) {
            (Some(ns), Some(name)) => Some(format!("{ns}/{name}")),
            (None, Some(name)) => Some(name),
            _ => None,
        }
    })
}

fn route_name_from_config_name(name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split('/').collect();
    (parts.len() >= 3 && parts[0] == "httproute").then(|| format!("{}/{}", parts[1], parts[2]))
}

fn listener_route_configs(listener: &Listener) -> Result<Vec<String>> {
    Ok(hcms(listener)?
        .into_iter()
        .filter_map(|(_, _, hcm)| match hcm.route_specifier {
            Some(RouteSpecifier::Rds(rds)) if !rds.route_config_name.is_empty() => {
                Some(rds.route_config_name)
            }
            _ => None,
        })
        .collect())
}

fn insert_router_level_extproc(listener: &mut Listener) -> Result<()> {
    for (ci, fi, mut hcm) in hcms(listener)? {
        if hcm.http_filters.iter().any(|f| f.name == EXTPROC_FILTER) {
            continue;
        }
        let ext_proc = ExternalProcessor {
            grpc_service: Some(uds_grpc_service(None)),
            metadata_options: Some(receiving_metadata()),
            processing_mode: Some(ProcessingMode {
                request_header_mode: HeaderSendMode::Send as i32,
                request_body_mode: BodySendMode::Buffered as i32,
                request_trailer_mode: HeaderSendMode::Skip as i32,
                response_header_mode: HeaderSendMode::Send as i32,
                response_body_mode: BodySendMode::Buffered as i32,
                response_trailer_mode: HeaderSendMode::Skip as i32,
            }),
            message_timeout: Some(seconds(10)),
            allow_mode_override: true,
            ..Default::default()
        };
        // Disabled on the listener; each AI route enables it.
        let filter = http_filter(EXTPROC_FILTER, &ext_proc, true);
        let at = hcm
            .http_filters
            .iter()
            .position(|f| AFTER_EXTPROC_PREFIXES.iter().any(|p| f.name.starts_with(p)))
            .ok_or_else(|| {
                Error::Render(format!(
                    "listener {}: no router filter to insert the AI Gateway ext_proc before",
                    listener.name
                ))
            })?;
        // Buffer filters must see the body first.
        let after_buffer = hcm
            .http_filters
            .iter()
            .rposition(|f| f.name.starts_with("envoy.filters.http.buffer"))
            .map(|i| i + 1);
        let at = after_buffer.filter(|&b| b > at).unwrap_or(at);
        hcm.http_filters.insert(at, filter);
        local_reply::insert(&mut hcm);
        hcm.scheme_header_transformation = Some(SchemeHeaderTransformation {
            match_upstream: true,
            ..Default::default()
        });
        set_chain_hcm(listener, ci, fi, &hcm);
    }
    Ok(())
}

fn uds_grpc_service(timeout: Option<Duration>) -> GrpcService {
    GrpcService {
        target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
            grpc_service::EnvoyGrpc {
                cluster_name: EXTPROC_UDS_CLUSTER.into(),
                ..Default::default()
            },
        )),
        timeout,
        ..Default::default()
    }
}

fn receiving_metadata() -> MetadataOptions {
    use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::metadata_options::MetadataNamespaces;
    MetadataOptions {
        receiving_namespaces: Some(MetadataNamespaces {
            untyped: vec![FILTER_METADATA_NAMESPACE.into()],
            typed: vec![],
        }),
        ..Default::default()
    }
}

fn string_value(s: String) -> Value {
    Value {
        kind: Some(value::Kind::StringValue(s)),
    }
}

fn namespace_struct(m: &mut Metadata) -> &mut Struct {
    m.filter_metadata
        .entry(METADATA_NAMESPACE.into())
        .or_default()
}
