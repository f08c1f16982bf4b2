//! The gRPC service Envoy Gateway calls.

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use tonic::{Request, Response, Status};

use super::inference_pool;
use super::modify::{self, BackendRef, Options, RouteRule, RouteRules, Routes};
use super::proto::envoy_gateway_extension_server::EnvoyGatewayExtension;
use super::proto::*;

/// Implements `envoygateway.extension.EnvoyGatewayExtension`: PostTranslateModify, and
/// PostRouteModify / PostClusterModify for InferencePool backends; the other hooks return
/// what they are given (Envoy Gateway is not configured to call them).
#[derive(Clone)]
pub struct ExtensionServer {
    client: Client,
    options: Options,
}

impl std::fmt::Debug for ExtensionServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtensionServer")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ExtensionServer {
    /// A server that reads AIGatewayRoutes through `client`.
    pub fn new(client: Client, options: Options) -> Self {
        Self { client, options }
    }

    /// The tonic service to add to a server.
    pub fn into_service(
        self,
    ) -> super::proto::envoy_gateway_extension_server::EnvoyGatewayExtensionServer<Self> {
        super::proto::envoy_gateway_extension_server::EnvoyGatewayExtensionServer::new(self)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }

    async fn lookup(&self, keys: Vec<(String, String)>) -> Result<Routes, Status> {
        let mut routes = Routes::new();
        for (ns, name) in keys {
            let Some(obj) = self.get(&AI_GATEWAY_ROUTE, &ns, &name).await? else {
                continue;
            };
            let mut rules = rules_of(&obj.data);
            let proxy = self.forward_proxy(&obj.data, &ns, &name).await?;
            for r in &mut rules {
                r.forward_proxy.clone_from(&proxy);
            }
            routes.insert((ns, name), rules);
        }
        Ok(routes)
    }

    /// An object, `None` when it does not exist; an API failure is `UNAVAILABLE` (Envoy
    /// Gateway then keeps its last good xDS).
    async fn get(
        &self,
        kind: &Kind,
        ns: &str,
        name: &str,
    ) -> Result<Option<DynamicObject>, Status> {
        let ar = kind.resource();
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
        api.get_opt(name)
            .await
            .map_err(|e| Status::unavailable(format!("get {} {ns}/{name}: {e}", kind.kind)))
    }

    /// `forwardProxy.address` of the GatewayConfig of the route's Gateways (upstream's
    /// `resolveForwardProxyAddr`): the first one set wins; a different one on another
    /// parent is logged and not used.
    async fn forward_proxy(
        &self,
        route: &serde_json::Value,
        ns: &str,
        name: &str,
    ) -> Result<Option<String>, Status> {
        let parents = route
            .pointer("/spec/parentRefs")
            .and_then(|p| p.as_array())
            .cloned()
            .unwrap_or_default();
        let mut resolved: Option<String> = None;
        for p in &parents {
            if p.get("kind")
                .and_then(|k| k.as_str())
                .is_some_and(|k| k != "Gateway")
            {
                continue;
            }
            let Some(gw_name) = p.get("name").and_then(|n| n.as_str()) else {
                continue;
            };
            let gw_ns = p.get("namespace").and_then(|n| n.as_str()).unwrap_or(ns);
            let Some(gw) = self.get(&GATEWAY, gw_ns, gw_name).await? else {
                continue;
            };
            let Some(config) = gw
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(aigw_core::config::GATEWAY_CONFIG_ANNOTATION))
                .filter(|c| !c.is_empty())
            else {
                continue;
            };
            let Some(gc) = self.get(&GATEWAY_CONFIG, gw_ns, config).await? else {
                continue;
            };
            let Some(addr) = gc
                .data
                .pointer("/spec/forwardProxy/address")
                .and_then(|a| a.as_str())
                .filter(|a| !a.is_empty())
            else {
                continue;
            };
            match &resolved {
                None => resolved = Some(addr.to_owned()),
                Some(first) if first != addr => tracing::warn!(
                    route = %format!("{ns}/{name}"),
                    using = %first,
                    ignored = %addr,
                    "the route's Gateways configure different forward proxies; using the first"
                ),
                Some(_) => {}
            }
        }
        Ok(resolved)
    }
}

/// A kind the server reads.
struct Kind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
}

impl Kind {
    fn resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.into(),
            version: self.version.into(),
            api_version: format!("{}/{}", self.group, self.version),
            kind: self.kind.into(),
            plural: self.plural.into(),
        }
    }
}

const AI_GATEWAY_ROUTE: Kind = Kind {
    group: "aigateway.envoyproxy.io",
    version: "v1beta1",
    kind: "AIGatewayRoute",
    plural: "aigatewayroutes",
};
const GATEWAY: Kind = Kind {
    group: "gateway.networking.k8s.io",
    version: "v1",
    kind: "Gateway",
    plural: "gateways",
};
const GATEWAY_CONFIG: Kind = Kind {
    group: "aigateway.envoyproxy.io",
    version: "v1beta1",
    kind: "GatewayConfig",
    plural: "gatewayconfigs",
};

/// The backendRefs and stream idle timeout of each rule of an AIGatewayRoute object.
pub fn rules_of(obj: &serde_json::Value) -> RouteRules {
    let rules = obj
        .pointer("/spec/rules")
        .and_then(|r| r.as_array())
        .cloned()
        .unwrap_or_default();
    rules
        .iter()
        .map(|rule| {
            let refs = rule
                .get("backendRefs")
                .and_then(|r| r.as_array())
                .cloned()
                .unwrap_or_default();
            let backends = refs
                .iter()
                .map(|r| BackendRef {
                    name: r
                        .get("name")
                        .and_then(|n| n.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                    priority: r
                        .get("priority")
                        .and_then(|p| p.as_u64())
                        .and_then(|p| u32::try_from(p).ok()),
                    weight: r
                        .get("weight")
                        .and_then(|w| w.as_i64())
                        .and_then(|w| i32::try_from(w).ok()),
                })
                .collect();
            // A malformed duration is the loader's to report (the route is rejected).
            let stream_idle_timeout = rule
                .get("streamIdleTimeout")
                .and_then(|t| t.as_str())
                .and_then(|t| aigw_core::config::parse_duration(t).ok());
            RouteRule {
                backends,
                stream_idle_timeout,
                forward_proxy: None,
            }
        })
        .collect()
}

fn pool_of(resources: &[ExtensionResource]) -> Result<Option<inference_pool::Pool>, Status> {
    inference_pool::pool_of(resources).map_err(|e| Status::invalid_argument(e.to_string()))
}

#[tonic::async_trait]
impl EnvoyGatewayExtension for ExtensionServer {
    async fn post_translate_modify(
        &self,
        request: Request<PostTranslateModifyRequest>,
    ) -> Result<Response<PostTranslateModifyResponse>, Status> {
        let req = request.into_inner();
        let routes = self.lookup(modify::referenced_routes(&req)).await?;
        let response = modify::modify(req, &routes, &self.options)
            .map_err(|e| Status::internal(e.to_string()))?;
        tracing::info!(
            clusters = response.clusters.len(),
            listeners = response.listeners.len(),
            "PostTranslateModify"
        );
        Ok(Response::new(response))
    }

    async fn post_route_modify(
        &self,
        request: Request<PostRouteModifyRequest>,
    ) -> Result<Response<PostRouteModifyResponse>, Status> {
        let req = request.into_inner();
        let mut route = req.route;
        let resources = req
            .post_route_context
            .map(|c| c.extension_resources)
            .unwrap_or_default();
        if let (Some(r), Some(pool)) = (route.as_mut(), pool_of(&resources)?) {
            inference_pool::modify_route(r, &pool);
        }
        Ok(Response::new(PostRouteModifyResponse { route }))
    }

    async fn post_virtual_host_modify(
        &self,
        request: Request<PostVirtualHostModifyRequest>,
    ) -> Result<Response<PostVirtualHostModifyResponse>, Status> {
        Ok(Response::new(PostVirtualHostModifyResponse {
            virtual_host: request.into_inner().virtual_host,
        }))
    }

    async fn post_http_listener_modify(
        &self,
        request: Request<PostHttpListenerModifyRequest>,
    ) -> Result<Response<PostHttpListenerModifyResponse>, Status> {
        Ok(Response::new(PostHttpListenerModifyResponse {
            listener: request.into_inner().listener,
        }))
    }

    async fn post_cluster_modify(
        &self,
        request: Request<PostClusterModifyRequest>,
    ) -> Result<Response<PostClusterModifyResponse>, Status> {
        let req = request.into_inner();
        let mut cluster = req.cluster;
        let resources = req
            .post_cluster_context
            .map(|c| c.backend_extension_resources)
            .unwrap_or_default();
        if let (Some(c), Some(pool)) = (cluster.as_mut(), pool_of(&resources)?) {
            inference_pool::modify_cluster(c, &pool);
        }
        Ok(Response::new(PostClusterModifyResponse { cluster }))
    }

    async fn post_endpoints_modify(
        &self,
        request: Request<PostEndpointsModifyRequest>,
    ) -> Result<Response<PostEndpointsModifyResponse>, Status> {
        Ok(Response::new(PostEndpointsModifyResponse {
            load_assignment: request.into_inner().load_assignment,
        }))
    }
}
