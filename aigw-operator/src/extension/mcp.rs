//! MCPRoutes in PostTranslateModify, as upstream's extension server does them
//! (`internal/extensionserver/mcproute.go`):
//!
//! * the main route's proxy rule (`ai-eg-mcp-main-<route>/rule/0`) goes to the MCP proxy
//!   in the pod (`127.0.0.1:9856`) whatever its placeholder Backend says, and carries the
//!   trusted backend subset the ExtProc set as dynamic metadata in a header the proxy
//!   reads (a client's copy is overwritten);
//! * the client authentication filters of the MCPRoute's SecurityPolicy (JWT, API key,
//!   ext_authz) are removed from the main route's other rules (the OAuth well-known
//!   metadata must stay public), since the policy targets the whole HTTPRoute;
//! * the per-backendRef routes (`ai-eg-mcp-br-…`) move off the Gateway's listeners to an
//!   internal backend listener on `127.0.0.1:10088` that only the proxy calls, together
//!   with the per-backend HTTP filters (`ai-eg-mcp-brf-…`: credential injection) and
//!   the Gateway's access log; a header-to-metadata filter there turns the proxy's
//!   internal headers into filter metadata for access logs and drops them upstream.

use envoy_types::pb::envoy::config::accesslog::v3::AccessLog;
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster::ClusterDiscoveryType};
use envoy_types::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiVersion, ConfigSource, HeaderValue, HeaderValueOption,
    SchemeHeaderTransformation, SocketAddress, address, config_source::ConfigSourceSpecifier,
    header_value_option::HeaderAppendAction, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint::HostIdentifier,
};
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteConfiguration, VirtualHost, route, route_action,
};
use envoy_types::pb::envoy::extensions::filters::http::header_to_metadata::v3::{
    Config as HeaderToMetadata,
    config::{KeyValuePair, Rule},
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager::RouteSpecifier,
};

use super::xds::{
    FILTER_METADATA_NAMESPACE, HCM_FILTER, hcms, http_filter, is_internal_listener, seconds,
    set_chain_hcm,
};
use super::{METADATA_NAMESPACE, to_any};
use crate::Result;
use crate::render::mcp_route::{
    BACKEND_FILTER_PREFIX, BACKEND_HEADER, BACKEND_ROUTE_PREFIX, MAIN_ROUTE_PREFIX, PROXY_PORT,
};

/// The internal listener the MCP proxy sends its upstream requests to.
pub const BACKEND_LISTENER: &str = "aigateway-mcp-backend-listener";
/// Where [`BACKEND_LISTENER`] listens.
pub const BACKEND_LISTENER_PORT: u32 = 10088;
/// The trusted backend subset header the proxy reads.
const BACKEND_SUBSET_HEADER: &str = "x-ai-eg-mcp-backend-subset";
/// The dynamic-metadata key the ExtProc writes the backend subset under.
const BACKEND_SUBSET_METADATA_KEY: &str = "mcp_backend_subset";
/// Client authentication filters of an MCPRoute's SecurityPolicy.
const AUTHN_FILTERS: &[&str] = &[
    "envoy.filters.http.jwt_authn",
    "envoy.filters.http.api_key_auth",
    "envoy.filters.http.ext_authz",
];
/// Headers of the proxy's upstream requests → filter-metadata keys; those with the
/// internal prefix are removed before the request leaves Envoy.
const HEADERS_TO_METADATA: &[(&str, &str)] = &[
    (BACKEND_HEADER, "mcp_backend"),
    ("x-ai-eg-mcp-metadata-method", "mcp_method"),
    ("x-ai-eg-mcp-metadata-request-id", "mcp_request_id"),
    ("x-ai-eg-mcp-metadata-resource-uri", "mcp_resource_uri"),
    ("x-ai-eg-mcp-metadata-tool-name", "mcp_tool_name"),
];
const INTERNAL_HEADER_PREFIX: &str = "x-ai-eg-mcp-metadata-";

fn route_config_name() -> String {
    format!("{BACKEND_LISTENER}-route-config")
}

/// Adds the MCP wiring; a no-op when the xDS has no MCPRoute's routes.
pub fn modify(
    listeners: &mut Vec<Listener>,
    configs: &mut Vec<RouteConfiguration>,
    clusters: &mut [Cluster],
) -> Result<()> {
    if listeners.is_empty() || configs.is_empty() {
        return Ok(());
    }
    update_main_routes(configs);
    let moved = take_backend_routes(configs);
    let has_backend_routes =
        !moved.is_empty() || configs.iter().any(|rc| rc.name == route_config_name());
    if has_backend_routes {
        match configs.iter_mut().find(|rc| rc.name == route_config_name()) {
            Some(existing) => {
                if let Some(vh) = existing.virtual_hosts.first_mut() {
                    vh.routes.extend(moved);
                }
            }
            None => configs.push(backend_route_config(moved)),
        }
        let (filters, access_log) = take_backend_filters(listeners)?;
        match listeners.iter_mut().find(|l| l.name == BACKEND_LISTENER) {
            Some(existing) => add_filters(existing, filters)?,
            None => listeners.push(backend_listener(filters, access_log)),
        }
    }
    for c in clusters.iter_mut().filter(|c| is_proxy_cluster(&c.name)) {
        *c = proxy_cluster(&c.name);
    }
    Ok(())
}

fn is_proxy_cluster(name: &str) -> bool {
    name.contains(MAIN_ROUTE_PREFIX) && name.ends_with("/rule/0")
}

/// The proxy rule gets the backend-subset header; the other rules of the main route
/// lose the client authentication the SecurityPolicy put on the whole HTTPRoute.
fn update_main_routes(configs: &mut [RouteConfiguration]) {
    for r in configs
        .iter_mut()
        .flat_map(|rc| rc.virtual_hosts.iter_mut())
        .flat_map(|vh| vh.routes.iter_mut())
        .filter(|r| r.name.contains(MAIN_ROUTE_PREFIX))
    {
        if r.name.contains("rule/0") {
            let subset = subset_header();
            if !r.request_headers_to_add.contains(&subset) {
                r.request_headers_to_add.push(subset);
            }
            continue;
        }
        for f in AUTHN_FILTERS {
            if r.typed_per_filter_config.remove(*f).is_some() {
                tracing::info!(route = %r.name, filter = f, "client authentication removed from an MCP metadata rule");
            }
        }
    }
}

/// The trusted subset from the ExtProc's dynamic metadata; a client's copy of the
/// header is overwritten even when the metadata is absent.
fn subset_header() -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: BACKEND_SUBSET_HEADER.into(),
            value: format!(
                "%DYNAMIC_METADATA([\"{METADATA_NAMESPACE}\", \"{BACKEND_SUBSET_METADATA_KEY}\"])%"
            ),
            ..Default::default()
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        keep_empty_value: true,
        ..Default::default()
    }
}

/// Removes the per-backendRef routes (those with a cluster) from the Gateway's route
/// configurations and returns them.
fn take_backend_routes(configs: &mut [RouteConfiguration]) -> Vec<Route> {
    let mut moved = Vec::new();
    for rc in configs
        .iter_mut()
        .filter(|rc| rc.name != route_config_name())
    {
        for vh in &mut rc.virtual_hosts {
            let (take, keep): (Vec<Route>, Vec<Route>) =
                std::mem::take(&mut vh.routes).into_iter().partition(|r| {
                    r.name.contains(BACKEND_ROUTE_PREFIX)
                        && matches!(
                            &r.action,
                            Some(route::Action::Route(a))
                                if matches!(a.cluster_specifier, Some(route_action::ClusterSpecifier::Cluster(_)))
                        )
                });
            vh.routes = keep;
            moved.extend(take);
        }
    }
    moved
}

fn backend_route_config(routes: Vec<Route>) -> RouteConfiguration {
    RouteConfiguration {
        name: route_config_name(),
        virtual_hosts: vec![VirtualHost {
            name: format!("{BACKEND_LISTENER}-wildcard"),
            domains: vec!["*".into()],
            routes,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Takes the per-backend HTTP filters out of the Gateway's listeners; returns them with
/// the Gateway's access log (every listener of one Gateway shares its EnvoyProxy's).
fn take_backend_filters(listeners: &mut [Listener]) -> Result<(Vec<HttpFilter>, Vec<AccessLog>)> {
    let mut taken = Vec::new();
    let mut access_log = Vec::new();
    for listener in listeners
        .iter_mut()
        .filter(|l| l.name != BACKEND_LISTENER && !is_internal_listener(&l.name))
    {
        for (ci, fi, mut hcm) in hcms(listener)? {
            access_log.clone_from(&hcm.access_log);
            let before = hcm.http_filters.len();
            let (mcp, rest): (Vec<HttpFilter>, Vec<HttpFilter>) =
                std::mem::take(&mut hcm.http_filters)
                    .into_iter()
                    .partition(|f| f.name.contains(BACKEND_FILTER_PREFIX));
            hcm.http_filters = rest;
            if hcm.http_filters.len() != before {
                set_chain_hcm(listener, ci, fi, &hcm);
            }
            for f in mcp {
                if !taken.iter().any(|t: &HttpFilter| t.name == f.name) {
                    taken.push(f);
                }
            }
        }
    }
    Ok((taken, access_log))
}

/// Adds filters not yet on an existing backend listener, before its last two (the
/// header-to-metadata filter and the router).
fn add_filters(listener: &mut Listener, filters: Vec<HttpFilter>) -> Result<()> {
    for (ci, fi, mut hcm) in hcms(listener)? {
        let new: Vec<HttpFilter> = filters
            .iter()
            .filter(|f| !hcm.http_filters.iter().any(|h| h.name == f.name))
            .cloned()
            .collect();
        if new.is_empty() {
            continue;
        }
        let at = hcm.http_filters.len().saturating_sub(2);
        hcm.http_filters.splice(at..at, new);
        set_chain_hcm(listener, ci, fi, &hcm);
    }
    Ok(())
}

fn header_to_metadata() -> HeaderToMetadata {
    let mut rules: Vec<(&str, &str)> = HEADERS_TO_METADATA.to_vec();
    // Sorted so that the listener, and with it the xDS version, is stable.
    rules.sort();
    HeaderToMetadata {
        request_rules: rules
            .into_iter()
            .map(|(header, key)| Rule {
                header: header.into(),
                on_header_present: Some(KeyValuePair {
                    metadata_namespace: FILTER_METADATA_NAMESPACE.into(),
                    key: key.into(),
                    ..Default::default()
                }),
                remove: header.starts_with(INTERNAL_HEADER_PREFIX),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn backend_listener(filters: Vec<HttpFilter>, access_log: Vec<AccessLog>) -> Listener {
    let mut http_filters = filters;
    http_filters.push(http_filter(
        "envoy.filters.http.header_to_metadata",
        &header_to_metadata(),
        false,
    ));
    http_filters.push(http_filter(
        "envoy.filters.http.router",
        &Router::default(),
        false,
    ));
    let hcm = HttpConnectionManager {
        stat_prefix: format!("{BACKEND_LISTENER}-http"),
        access_log,
        scheme_header_transformation: Some(SchemeHeaderTransformation {
            match_upstream: true,
            ..Default::default()
        }),
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            route_config_name: route_config_name(),
            config_source: Some(ConfigSource {
                config_source_specifier: Some(ConfigSourceSpecifier::Ads(
                    AggregatedConfigSource {},
                )),
                resource_api_version: ApiVersion::V3 as i32,
                ..Default::default()
            }),
        })),
        http_filters,
        ..Default::default()
    };
    Listener {
        name: BACKEND_LISTENER.into(),
        address: Some(loopback(BACKEND_LISTENER_PORT)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: HCM_FILTER.into(),
                config_type: Some(filter::ConfigType::TypedConfig(to_any(&hcm))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn loopback(port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: "127.0.0.1".into(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

/// The proxy rule's cluster, pointed at the MCP proxy in the pod.
fn proxy_cluster(name: &str) -> Cluster {
    Cluster {
        name: name.into(),
        // STATIC = 0.
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(0)),
        connect_timeout: Some(seconds(10)),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: name.into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
                        address: Some(loopback(u32::from(PROXY_PORT))),
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
