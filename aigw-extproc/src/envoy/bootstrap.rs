//! Renders a [`Plan`] as an Envoy v3 bootstrap (JSON, which Envoy reads as YAML).

use super::plan::{ClusterPlan, HeaderMatch, Options, Plan, PoolPlan, Protection, RoutePlan};
use crate::error::ExtProcError;
use crate::server::ListenAddr;
use crate::wire::{
    ENDPOINT_METADATA_NAMESPACE, METADATA_NAMESPACE, ROUTER_ATTRIBUTES, UPSTREAM_ATTRIBUTES,
};
use aigw_core::health::OutlierPolicy;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// The cluster name Envoy reaches `aigw-extproc` through.
pub(crate) const EXTPROC_CLUSTER: &str = "aigw-extproc";

fn dur(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

fn socket(addr: &std::net::SocketAddr) -> Value {
    json!({ "socket_address": { "address": addr.ip().to_string(), "port_value": addr.port() } })
}

/// The metadata receiving rules and mutation rules both filters share.
fn ext_proc_common(mode: Value) -> Value {
    json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
        "grpc_service": {
            "envoy_grpc": { "cluster_name": EXTPROC_CLUSTER },
            "timeout": "30s"
        },
        "processing_mode": mode,
        "allow_mode_override": true,
        "message_timeout": "10s",
        "failure_mode_allow": false,
        "metadata_options": {
            "receiving_namespaces": { "untyped": [METADATA_NAMESPACE] }
        },
        // The processor rewrites `:path`/`:method` upstream and writes the x-envoy
        // original-path header, which default mutation rules refuse.
        "mutation_rules": { "allow_all_routing": true, "allow_envoy": true }
    })
}

/// The router-level filter: buffered request body (to read the model), response body
/// buffered unless the processor switches it to STREAMED; the client's address as a
/// request attribute, for rate-limit `sourceCIDR` selectors.
/// `forwarding` lists the dynamic metadata namespaces Envoy sends along
/// (`metadata_context`), for credentials other filters such as ext_authz put there.
pub(crate) fn router_filter(forwarding: &[String]) -> Value {
    let mut config = ext_proc_common(json!({
        "request_header_mode": "SEND",
        "request_body_mode": "BUFFERED",
        "response_header_mode": "SEND",
        "response_body_mode": "BUFFERED",
        "request_trailer_mode": "SKIP",
        "response_trailer_mode": "SKIP"
    }));
    config["request_attributes"] = json!(ROUTER_ATTRIBUTES);
    if !forwarding.is_empty() {
        config["metadata_options"]["forwarding_namespaces"] = json!({ "untyped": forwarding });
    }
    json!({
        "name": "envoy.filters.http.ext_proc",
        "typed_config": config
    })
}

/// The upstream-level filters of an AI cluster: ext_proc (headers only, with the request
/// attributes that name the chosen endpoint), then `content-length` restored from the
/// metadata the processor wrote (Envoy drops it when a body is replaced), then the codec.
pub(crate) fn upstream_filters() -> Value {
    let mut ext = ext_proc_common(json!({
        "request_header_mode": "SEND",
        "request_body_mode": "NONE",
        "response_header_mode": "SKIP",
        "response_body_mode": "NONE",
        "request_trailer_mode": "SKIP",
        "response_trailer_mode": "SKIP"
    }));
    ext["request_attributes"] = json!(UPSTREAM_ATTRIBUTES);
    json!([
        { "name": "envoy.filters.http.ext_proc", "typed_config": ext },
        {
            "name": "envoy.filters.http.header_mutation",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
                "mutations": {
                    "request_mutations": [{
                        "append": {
                            "header": {
                                "key": "content-length",
                                "value": format!("%DYNAMIC_METADATA({METADATA_NAMESPACE}:content_length)%")
                            },
                            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"
                        }
                    }]
                }
            }
        },
        {
            "name": "envoy.filters.http.upstream_codec",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"
            }
        }
    ])
}

fn route(r: &RoutePlan) -> Value {
    let headers: Vec<Value> = r
        .headers
        .iter()
        .map(|h| match h {
            HeaderMatch::Exact { name, value } => {
                json!({ "name": name, "string_match": { "exact": value } })
            }
            HeaderMatch::Regex { name, regex } => json!({
                "name": name,
                "string_match": { "safe_regex": { "regex": regex } }
            }),
        })
        .collect();
    let mut action = json!({
        "cluster": r.cluster,
        "auto_host_rewrite": true,
        "timeout": dur(r.timeout.unwrap_or(Duration::ZERO)),
    });
    if r.retries > 0 {
        // A BackendTrafficPolicy's conditions when one applies; else the gateway's
        // default: connect failures, resets, 429 and 5xx.
        let (retry_on, codes): (&str, &[u16]) = match &r.retry {
            Some(p) => (&p.retry_on, &p.status_codes),
            None => (
                "connect-failure,refused-stream,reset,retriable-status-codes",
                &[429, 500, 502, 503, 504],
            ),
        };
        let (base, max) = r
            .retry
            .as_ref()
            .and_then(|p| p.backoff)
            .unwrap_or((Duration::from_millis(10), Duration::from_secs(1)));
        let mut policy = json!({
            "retry_on": retry_on,
            "retriable_status_codes": codes,
            "num_retries": r.retries,
            "retry_priority": {
                "name": "envoy.retry_priorities.previous_priorities",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
                    "update_frequency": 1
                }
            },
            "retry_host_predicate": [{
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
                }
            }],
            "host_selection_retry_max_attempts": 5,
            "retry_back_off": { "base_interval": dur(base), "max_interval": dur(max) }
        });
        if let Some(t) = r.per_try_timeout {
            policy["per_try_timeout"] = json!(dur(t));
        }
        action["retry_policy"] = policy;
    }
    json!({
        "name": format!("{}/{}", r.route, r.cluster),
        "match": { "prefix": "/", "headers": headers },
        "route": action,
        "metadata": {
            "filter_metadata": {
                ENDPOINT_METADATA_NAMESPACE: { "aigw_route_name": r.route }
            }
        }
    })
}

fn cluster(c: &ClusterPlan, ca_file: &str) -> Value {
    if let Some(p) = &c.pool {
        return pool_cluster(c, p);
    }
    let priorities: BTreeSet<u32> = c.endpoints.iter().map(|e| e.priority).collect();
    let localities: Vec<Value> = priorities
        .iter()
        .enumerate()
        .map(|(envoy_priority, p)| {
            let eps: Vec<Value> = c
                .endpoints
                .iter()
                .filter(|e| e.priority == *p)
                .map(|e| {
                    json!({
                        "endpoint": {
                            "address": { "socket_address": { "address": e.host, "port_value": e.port } },
                            "hostname": e.host
                        },
                        "load_balancing_weight": e.weight.max(1),
                        "metadata": {
                            "filter_metadata": {
                                ENDPOINT_METADATA_NAMESPACE: {
                                    "per_route_rule_backend_name": e.backend_name,
                                    "upstream_host": format!("{}:{}", e.host, e.port)
                                }
                            }
                        }
                    })
                })
                .collect();
            json!({ "priority": envoy_priority, "lb_endpoints": eps })
        })
        .collect();
    let all_ip = c
        .endpoints
        .iter()
        .all(|e| e.host.parse::<std::net::IpAddr>().is_ok());
    let tls = c.endpoints.first().is_some_and(|e| e.tls_sni.is_some());
    let protocol = cluster_protocol(c);
    let mut out = json!({
        "name": c.name,
        "type": if all_ip { "STATIC" } else { "STRICT_DNS" },
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": dur(c.protection.connect_timeout.unwrap_or(Duration::from_secs(10))),
        "lb_policy": "ROUND_ROBIN",
        // Priority failover must not spill traffic to lower priorities while the first
        // is healthy.
        "common_lb_config": { "healthy_panic_threshold": { "value": 0 } },
        "load_assignment": { "cluster_name": c.name, "endpoints": localities },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "upstream_http_protocol_options": { "auto_sni": true, "auto_san_validation": tls },
                "explicit_http_config": protocol,
                "http_filters": upstream_filters()
            }
        },
        "outlier_detection": outlier_detection(c.protection.passive.as_ref()),
    });
    protect(&mut out, &c.protection);
    if tls {
        out["transport_socket"] = json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "common_tls_context": {
                    "validation_context": { "trusted_ca": { "filename": ca_file } }
                }
            }
        });
    }
    out
}

/// HTTP/2 when every backend of the cluster asks for it (`appProtocols: h2c`), else
/// HTTP/1.1: Envoy's protocol is a cluster setting, so a rule mixing the two gets
/// HTTP/1.1 and a warning naming it.
fn cluster_protocol(c: &ClusterPlan) -> Value {
    let h2 = c.endpoints.iter().filter(|e| e.http2).count();
    if h2 > 0 && h2 == c.endpoints.len() {
        return json!({ "http2_protocol_options": {} });
    }
    if h2 > 0 {
        tracing::warn!(
            cluster = %c.name,
            "the rule mixes backends with and without appProtocols h2c; Envoy's cluster for it speaks HTTP/1.1 to all of them"
        );
    }
    json!({ "http_protocol_options": {} })
}

/// The header an endpoint picker names the chosen endpoint (`ip:port`) in.
const DESTINATION_HEADER: &str = "x-gateway-destination-endpoint";

/// An InferencePool rule's cluster: ORIGINAL_DST on the picker's header, the backend
/// name in the cluster metadata (no endpoints to carry it), the upstream-level filters
/// as on every AI cluster.
fn pool_cluster(c: &ClusterPlan, p: &PoolPlan) -> Value {
    let mut out = json!({
        "name": c.name,
        "type": "ORIGINAL_DST",
        "lb_policy": "CLUSTER_PROVIDED",
        "connect_timeout": dur(c.protection.connect_timeout.unwrap_or(Duration::from_secs(10))),
        "original_dst_lb_config": { "use_http_header": true, "http_header_name": DESTINATION_HEADER },
        "metadata": {
            "filter_metadata": {
                ENDPOINT_METADATA_NAMESPACE: { "per_route_rule_backend_name": p.backend_name }
            }
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http_protocol_options": {} },
                "http_filters": upstream_filters()
            }
        }
    });
    protect(&mut out, &c.protection);
    out
}

/// Where Envoy dials a pool's picker: the `--endpoint-picker` URL, else the picker's
/// in-cluster Service over TLS. `(host, port, tls)`.
fn picker_address(p: &PoolPlan, opts: &Options) -> Result<(String, u16, bool), ExtProcError> {
    let url = opts
        .pickers
        .get(&p.key())
        .cloned()
        .unwrap_or_else(|| format!("https://{}", p.picker_authority));
    let bad = || {
        ExtProcError::EnvoyConfig(format!(
            "endpoint picker of InferencePool {}: expected http://HOST:PORT or https://HOST:PORT, found {url:?}",
            p.key()
        ))
    };
    let (tls, rest) = match url.split_once("://") {
        Some(("https", r)) => (true, r),
        Some(("http", r)) => (false, r),
        _ => return Err(bad()),
    };
    let authority = rest.trim_end_matches('/');
    let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || authority.contains('/') {
        return Err(bad());
    }
    Ok((host.to_owned(), port, tls))
}

/// The picker's cluster: HTTP/2, TLS without verification (pickers serve self-signed
/// certificates by default, and upstream's wiring does not verify them either).
fn picker_cluster(p: &PoolPlan, opts: &Options) -> Result<Value, ExtProcError> {
    let (host, port, tls) = picker_address(p, opts)?;
    let name = p.cluster_name();
    let mut out = json!({
        "name": name,
        "type": if host.parse::<std::net::IpAddr>().is_ok() { "STATIC" } else { "STRICT_DNS" },
        "connect_timeout": "10s",
        "lb_policy": "LEAST_REQUEST",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": {
                "address": { "socket_address": { "address": host, "port_value": port } }
            } }] }]
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http2_protocol_options": {} }
            }
        }
    });
    if tls {
        out["transport_socket"] = json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "common_tls_context": { "validation_context": {} }
            }
        });
    }
    Ok(out)
}

/// The pool's ext_proc filter: the picker sees headers and bodies both ways
/// (full-duplex streamed unless the pool asks for buffered), as the Inference Extension
/// specifies. A failing picker fails the request: without its answer an ORIGINAL_DST
/// cluster has no destination but the connection's own (Envoy itself), so `FailOpen`
/// is not honoured here (`envoy-config` says so).
fn picker_filter(p: &PoolPlan) -> Value {
    let body = if p.buffered {
        "BUFFERED"
    } else {
        "FULL_DUPLEX_STREAMED"
    };
    json!({
        "name": p.filter_name(),
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
            "grpc_service": {
                "envoy_grpc": { "cluster_name": p.cluster_name(), "authority": p.picker_authority }
            },
            "processing_mode": {
                "request_header_mode": "SEND",
                "request_body_mode": body,
                "request_trailer_mode": "SEND",
                "response_header_mode": "SEND",
                "response_body_mode": body,
                "response_trailer_mode": "SEND"
            },
            "allow_mode_override": p.allow_mode_override,
            "failure_mode_allow": false,
            "message_timeout": "300s"
        }
    })
}

fn drop_destination_header() -> Value {
    json!({
        "name": "envoy.filters.http.header_mutation/endpointpicker",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
            "mutations": { "request_mutations": [{ "remove": DESTINATION_HEADER }] }
        }
    })
}

/// Turns the picker filters off on every route but their own pool's, and keeps the
/// client's Host on pool routes (the picker and the model servers see it).
fn wire_pool_routes(virtual_hosts: &mut [Value], pools: &[&PoolPlan], clusters: &[ClusterPlan]) {
    let disabled = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute",
        "disabled": true
    });
    let routes = virtual_hosts
        .iter_mut()
        .filter_map(|vh| vh["routes"].as_array_mut())
        .flatten();
    for r in routes {
        let own = r["route"]["cluster"]
            .as_str()
            .and_then(|name| clusters.iter().find(|c| c.name == name))
            .and_then(|c| c.pool.as_ref())
            .map(PoolPlan::filter_name);
        if own.is_some() {
            r["route"]["auto_host_rewrite"] = json!(false);
        }
        for p in pools {
            let name = p.filter_name();
            if own.as_deref() != Some(name.as_str()) {
                r["typed_per_filter_config"][name] = disabled.clone();
            }
        }
    }
}

/// A policy's `healthCheck.passive` as Envoy Gateway writes it; without one, a backend
/// that keeps failing is still ejected so fallback sticks.
fn outlier_detection(p: Option<&OutlierPolicy>) -> Value {
    let Some(p) = p else {
        return json!({
            "consecutive_5xx": 3,
            "interval": "5s",
            "base_ejection_time": "30s",
            "max_ejection_percent": 100
        });
    };
    let mut o = json!({
        "split_external_local_origin_errors": p.split_local_origin,
        "interval": dur(p.interval),
        "consecutive_local_origin_failure": p.consecutive_local_origin,
        "consecutive_5xx": p.consecutive_5xx,
        "base_ejection_time": dur(p.base_ejection),
        "max_ejection_percent": p.max_ejection_percent,
        "always_eject_one_host": p.always_eject_one,
    });
    if let Some(n) = p.consecutive_gateway.filter(|n| *n > 0) {
        o["consecutive_gateway_failure"] = json!(n);
        o["enforcing_consecutive_gateway_failure"] = json!(100);
    }
    o
}

/// Circuit breakers, active health checks and the idle timeout of a policy.
fn protect(out: &mut Value, p: &Protection) {
    if let Some(c) = &p.circuit {
        out["circuit_breakers"] = json!({ "thresholds": [{
            "priority": "DEFAULT",
            "max_connections": c.max_connections,
            "max_pending_requests": c.max_pending_requests,
            "max_requests": c.max_parallel_requests,
        }]});
    }
    if let Some(a) = &p.active {
        let mut http = json!({
            "path": a.path,
            "method": a.method,
            "expected_statuses": a.expected_statuses.iter().map(|s| json!({"start": s, "end": s + 1})).collect::<Vec<_>>(),
        });
        if let Some(h) = &a.hostname {
            http["host"] = json!(h);
        }
        out["health_checks"] = json!([{
            "timeout": dur(a.timeout),
            "interval": dur(a.interval),
            "unhealthy_threshold": a.unhealthy_threshold,
            "healthy_threshold": a.healthy_threshold,
            "http_health_check": http,
        }]);
    }
    if let Some(idle) = p.idle_timeout {
        let key = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
        out["typed_extension_protocol_options"][key]["common_http_protocol_options"] =
            json!({ "idle_timeout": dur(idle) });
    }
}

fn extproc_cluster(addr: &ListenAddr) -> Value {
    let address = match addr {
        ListenAddr::Tcp(a) => {
            // A wildcard listen address is reached on loopback.
            let ip = if a.ip().is_unspecified() {
                std::net::IpAddr::from([127, 0, 0, 1])
            } else {
                a.ip()
            };
            socket(&std::net::SocketAddr::new(ip, a.port()))
        }
        ListenAddr::Unix(p) => json!({ "pipe": { "path": p.display().to_string() } }),
    };
    json!({
        "name": EXTPROC_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "10s",
        "per_connection_buffer_limit_bytes": 52_428_800,
        "load_assignment": {
            "cluster_name": EXTPROC_CLUSTER,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": address } }] }]
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {
                    "http2_protocol_options": {
                        "initial_connection_window_size": 1_048_576,
                        "initial_stream_window_size": 65_536
                    }
                }
            }
        }
    })
}

/// The access log line: request basics and the metadata the processor writes.
fn access_log() -> Value {
    let md = |k: &str| format!("%DYNAMIC_METADATA({METADATA_NAMESPACE}:{k})%");
    json!([{
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": {
                "json_format": {
                    "start_time": "%START_TIME%",
                    "method": "%REQ(:METHOD)%",
                    "x-envoy-origin-path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
                    "response_code": "%RESPONSE_CODE%",
                    "duration": "%DURATION%",
                    "upstream_host": "%UPSTREAM_HOST%",
                    "upstream_cluster": "%UPSTREAM_CLUSTER%",
                    "response_flags": "%RESPONSE_FLAGS%",
                    "gen_ai.request.model": "%REQ(X-AI-EG-MODEL)%",
                    "gen_ai.request.model_override": md("model_name_override"),
                    "gen_ai.response.model": md("response_model"),
                    "gen_ai.provider.name": md("backend_name"),
                    "gen_ai.usage.input_tokens": md("llm_input_token"),
                    "gen_ai.usage.output_tokens": md("llm_output_token"),
                    "gen_ai.usage.total_tokens": md("llm_total_token"),
                    "aigw.token_source": md("token_source"),
                    "ai_gateway.route": md("route_name"),
                    "ai_gateway.backend": md("ai_service_backend_name")
                }
            }
        }
    }])
}

/// Whether route hostname `pattern` serves every host of virtual host `domain`
/// (`*.example.com` covers `a.example.com` and `*.a.example.com`).
fn covers(pattern: &str, domain: &str) -> bool {
    if pattern == domain {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) if suffix.starts_with('.') => {
            domain.len() > suffix.len() && domain.ends_with(suffix)
        }
        _ => false,
    }
}

/// One virtual host per distinct route hostname, holding the routes that serve it plus
/// every route without hostnames (Envoy picks a single virtual host per request, the
/// most specific domain), then the `*` virtual host with the routes without hostnames.
/// Route order (most specific match first) is kept within each.
fn virtual_hosts(routes: &[RoutePlan]) -> Vec<Value> {
    let mut domains: Vec<&str> = Vec::new();
    for h in routes.iter().flat_map(|r| &r.hostnames) {
        if !domains.contains(&h.as_str()) {
            domains.push(h);
        }
    }
    let mut out: Vec<Value> = domains
        .iter()
        .map(|d| {
            let rs: Vec<Value> = routes
                .iter()
                .filter(|r| r.hostnames.is_empty() || r.hostnames.iter().any(|p| covers(p, d)))
                .map(route)
                .collect();
            json!({ "name": format!("aigw/{d}"), "domains": [d], "routes": rs })
        })
        .collect();
    let rest: Vec<Value> = routes
        .iter()
        .filter(|r| r.hostnames.is_empty())
        .map(route)
        .collect();
    out.push(json!({ "name": "aigw", "domains": ["*"], "routes": rest }));
    out
}

/// The cluster Envoy reaches the MCP listener through.
pub(crate) const MCP_CLUSTER: &str = "aigw-mcp";

/// An MCPRoute's path: straight to the MCP listener, without the AI ext_proc (the MCP
/// gateway reads the JSON-RPC itself) and without a route timeout (notification streams
/// stay open), as upstream routes `/mcp` to its MCP proxy.
fn mcp_route(path: &str) -> Value {
    json!({
        "name": format!("mcp{path}"),
        "match": { "path": path },
        "route": { "cluster": MCP_CLUSTER, "timeout": "0s", "idle_timeout": "0s" },
        "typed_per_filter_config": {
            "envoy.filters.http.ext_proc": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute",
                "disabled": true
            }
        }
    })
}

fn mcp_cluster(addr: &std::net::SocketAddr) -> Value {
    let ip = if addr.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        addr.ip()
    };
    json!({
        "name": MCP_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "10s",
        // Envoy lets its pooled connections go before the MCP listener's idle timeout
        // (`--idle-timeout`, 60 s by default) closes them, so a request is never sent
        // on a connection the listener is closing.
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "common_http_protocol_options": { "idle_timeout": "50s" },
                "explicit_http_config": { "http_protocol_options": {} }
            }
        },
        "load_assignment": {
            "cluster_name": MCP_CLUSTER,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket(&std::net::SocketAddr::new(ip, addr.port())) } }] }]
        }
    })
}

impl Plan {
    /// The complete bootstrap.
    pub fn bootstrap(&self, opts: &Options) -> Result<Value, ExtProcError> {
        let mut clusters_extra = Vec::new();
        self.validate()?;
        let mut virtual_hosts = virtual_hosts(&self.routes);
        if !self.mcp_paths.is_empty() {
            let Some(mcp) = &opts.mcp else {
                return Err(ExtProcError::EnvoyConfig(
                    "the configuration has MCPRoutes: pass --mcp-addr, where aigw-extproc serves MCP".into(),
                ));
            };
            for vh in &mut virtual_hosts {
                if let Some(routes) = vh["routes"].as_array_mut() {
                    for (i, p) in self.mcp_paths.iter().enumerate() {
                        routes.insert(i, mcp_route(p));
                    }
                }
            }
            clusters_extra.push(mcp_cluster(mcp));
        }
        let mut pools: Vec<&PoolPlan> = self
            .clusters
            .iter()
            .filter_map(|c| c.pool.as_ref())
            .collect();
        pools.sort_by_key(|p| p.key());
        pools.dedup_by_key(|p| p.key());
        if !pools.is_empty() {
            wire_pool_routes(&mut virtual_hosts, &pools, &self.clusters);
            for p in &pools {
                clusters_extra.push(picker_cluster(p, opts)?);
            }
        }
        // The AI ext_proc first (the picker sees the body as the model server will),
        // then each pool's picker, then the router. A client's own destination header
        // is dropped first: only a picker may name the endpoint.
        let mut http_filters = Vec::new();
        if !pools.is_empty() {
            http_filters.push(drop_destination_header());
        }
        http_filters.push(router_filter(&self.metadata_namespaces));
        http_filters.extend(pools.iter().map(|p| picker_filter(p)));
        http_filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
            }
        }));
        let mut hcm = json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "aigw",
            "codec_type": "AUTO",
            "scheme_header_transformation": { "match_upstream": true },
            // Streams can be long; the route timeout governs.
            "stream_idle_timeout": "300s",
            // Hostnames are matched without the port, as the gateway's matcher does.
            "strip_any_host_port": true,
            "route_config": {
                "name": "aigw",
                "virtual_hosts": virtual_hosts
            },
            "http_filters": http_filters
        });
        if opts.access_log {
            hcm["access_log"] = access_log();
        }
        let mut clusters: Vec<Value> = self
            .clusters
            .iter()
            .map(|c| cluster(c, &opts.ca_file))
            .collect();
        clusters.push(extproc_cluster(&opts.extproc));
        clusters.extend(clusters_extra);
        let mut out = json!({
            "static_resources": {
                "listeners": [{
                    "name": "aigw",
                    "address": socket(&opts.listen),
                    // Large prompts are buffered whole before routing.
                    "per_connection_buffer_limit_bytes": 52_428_800,
                    "filter_chains": [{
                        "filters": [{
                            "name": "envoy.filters.network.http_connection_manager",
                            "typed_config": hcm
                        }]
                    }]
                }],
                "clusters": clusters
            }
        });
        if let Some(a) = &opts.admin {
            out["admin"] = json!({ "address": socket(a) });
        }
        Ok(out)
    }
}
