//! The extension server over gRPC, as Envoy Gateway calls it: AIGatewayRoutes looked up
//! through the Kubernetes API (a `tower-test` mock service), the modified xDS returned,
//! an API outage reported as `UNAVAILABLE` (Envoy Gateway then keeps its last good xDS),
//! and the InferencePool per-cluster hook.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aigw_operator::extension::modify::Options;
use aigw_operator::extension::proto::envoy_gateway_extension_client::EnvoyGatewayExtensionClient;
use aigw_operator::extension::proto::{
    ExtensionResource, PostClusterExtensionContext, PostClusterModifyRequest,
    PostTranslateModifyRequest,
};
use aigw_operator::extension::server::ExtensionServer;
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::google::protobuf::value::Kind;
use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{Handle, pair};

type MockHandle = Handle<Request<Body>, Response<Body>>;

fn respond(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

/// Answers the API requests: the basic example's AIGatewayRoute exists, others do not;
/// with `down`, every request fails with 500.
async fn api(mut handle: MockHandle, down: bool) {
    while let Some((req, send)) = handle.next_request().await {
        let path = req.uri().path().to_owned();
        let response = if down {
            respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500, "message": "etcd unavailable"}),
            )
        } else if path
            == "/apis/aigateway.envoyproxy.io/v1beta1/namespaces/default/aigatewayroutes/envoy-ai-gateway-basic"
        {
            respond(
                StatusCode::OK,
                &json!({
                    "apiVersion": "aigateway.envoyproxy.io/v1beta1", "kind": "AIGatewayRoute",
                    "metadata": { "name": "envoy-ai-gateway-basic", "namespace": "default" },
                    "spec": { "rules": [{ "backendRefs": [{ "name": "envoy-ai-gateway-basic-testupstream", "priority": 0 }] }] },
                }),
            )
        } else if let Some(obj) = forward_proxy_objects(&path) {
            respond(StatusCode::OK, &obj)
        } else {
            respond(
                StatusCode::NOT_FOUND,
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound"}),
            )
        };
        send.send_response(response);
    }
}

/// An AIGatewayRoute whose Gateway's GatewayConfig sets a forward proxy (and a second
/// parent without a GatewayConfig, which changes nothing).
fn forward_proxy_objects(path: &str) -> Option<Value> {
    const BASE: &str = "/apis/aigateway.envoyproxy.io/v1beta1/namespaces/default";
    const GW: &str = "/apis/gateway.networking.k8s.io/v1/namespaces";
    let obj = if path == format!("{BASE}/aigatewayroutes/egress") {
        json!({
            "apiVersion": "aigateway.envoyproxy.io/v1beta1", "kind": "AIGatewayRoute",
            "metadata": { "name": "egress", "namespace": "default" },
            "spec": {
                "parentRefs": [{ "name": "plain-gw", "namespace": "edge" }, { "name": "proxied-gw" }],
                "rules": [{ "backendRefs": [{ "name": "openai" }] }],
            },
        })
    } else if path == format!("{GW}/default/gateways/proxied-gw") {
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": { "name": "proxied-gw", "namespace": "default",
                          "annotations": { "aigateway.envoyproxy.io/gateway-config": "egress-config" } },
            "spec": { "gatewayClassName": "eg", "listeners": [] },
        })
    } else if path == format!("{GW}/edge/gateways/plain-gw") {
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": { "name": "plain-gw", "namespace": "edge" },
            "spec": { "gatewayClassName": "eg", "listeners": [] },
        })
    } else if path == format!("{BASE}/gatewayconfigs/egress-config") {
        json!({
            "apiVersion": "aigateway.envoyproxy.io/v1beta1", "kind": "GatewayConfig",
            "metadata": { "name": "egress-config", "namespace": "default" },
            "spec": { "forwardProxy": { "address": "proxy.corp.internal:3128" } },
        })
    } else {
        return None;
    };
    Some(obj)
}

async fn server(down: bool) -> EnvoyGatewayExtensionClient<tonic::transport::Channel> {
    let (service, handle) = pair::<Request<Body>, Response<Body>>();
    tokio::spawn(api(handle, down));
    let client = Client::new(service, "default");
    let ext = ExtensionServer::new(client, Options::new("/run/extproc.sock"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ext.into_service())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    EnvoyGatewayExtensionClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn cluster(name: &str) -> Cluster {
    Cluster {
        name: name.into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Static as i32)),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: name.into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint::default()],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn backend_name(c: &Cluster) -> Option<String> {
    let ep = &c.load_assignment.as_ref()?.endpoints[0].lb_endpoints[0];
    match &ep.metadata.as_ref()?.filter_metadata["aigateway.envoy.io"].fields["per_route_rule_backend_name"].kind {
        Some(Kind::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn post_translate_modify_over_grpc_looks_routes_up() {
    let mut client = server(false).await;
    let req = PostTranslateModifyRequest {
        clusters: vec![
            cluster("httproute/default/envoy-ai-gateway-basic/rule/0"),
            cluster("httproute/default/plain/rule/0"),
        ],
        ..Default::default()
    };
    let resp = client
        .post_translate_modify(req)
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = resp.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "httproute/default/envoy-ai-gateway-basic/rule/0",
            "httproute/default/plain/rule/0",
            "ai-gateway-extproc-uds"
        ]
    );
    assert_eq!(
        backend_name(&resp.clusters[0]).as_deref(),
        Some(
            "default/envoy-ai-gateway-basic-testupstream/route/envoy-ai-gateway-basic/rule/0/ref/0"
        )
    );
    assert_eq!(resp.clusters[1], cluster("httproute/default/plain/rule/0"));
}

#[tokio::test]
async fn an_api_outage_is_unavailable_not_a_half_modified_answer() {
    let mut client = server(true).await;
    let req = PostTranslateModifyRequest {
        clusters: vec![cluster("httproute/default/envoy-ai-gateway-basic/rule/0")],
        ..Default::default()
    };
    let err = client.post_translate_modify(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
    assert!(
        err.message().contains("default/envoy-ai-gateway-basic"),
        "{err}"
    );
}

#[tokio::test]
async fn post_cluster_modify_turns_a_pool_cluster_original_dst() {
    let mut client = server(false).await;
    let pool = json!({
        "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
        "metadata": { "name": "mistral", "namespace": "default" },
        "spec": { "endpointPickerRef": { "name": "mistral-epp" } },
    });
    let req = PostClusterModifyRequest {
        cluster: Some(cluster("httproute/default/r/rule/0")),
        post_cluster_context: Some(PostClusterExtensionContext {
            backend_extension_resources: vec![ExtensionResource {
                unstructured_bytes: serde_json::to_vec(&pool).unwrap(),
            }],
        }),
    };
    let c = client
        .post_cluster_modify(req)
        .await
        .unwrap()
        .into_inner()
        .cluster
        .unwrap();
    assert_eq!(
        c.cluster_discovery_type,
        Some(ClusterDiscoveryType::Type(
            DiscoveryType::OriginalDst as i32
        ))
    );
    let meta = &c.metadata.unwrap().filter_metadata["aigateway.envoy.io"].fields["per_route_rule_inference_pool"];
    // The picker's default port, 9002, when the pool names none.
    assert_eq!(
        meta.kind,
        Some(Kind::StringValue(
            "default/mistral/mistral-epp/9002/duplex/false".into()
        ))
    );
    // Two pools for one rule is an error, not a guess.
    let two = PostClusterModifyRequest {
        cluster: Some(cluster("httproute/default/r/rule/0")),
        post_cluster_context: Some(PostClusterExtensionContext {
            backend_extension_resources: vec![
                ExtensionResource {
                    unstructured_bytes: serde_json::to_vec(&pool).unwrap(),
                },
                ExtensionResource {
                    unstructured_bytes: serde_json::to_vec(&pool).unwrap(),
                },
            ],
        }),
    };
    assert_eq!(
        client.post_cluster_modify(two).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
}

/// The GatewayConfig of a route's Gateway sets a forward proxy: that route's clusters are
/// wrapped in the `http_11_proxy` transport socket; other routes' are not.
#[tokio::test]
async fn a_gateway_configs_forward_proxy_wraps_its_routes_clusters() {
    use aigw_operator::extension::forward_proxy;
    use envoy_types::pb::envoy::config::core::v3::{address, socket_address};
    let mut client = server(false).await;
    let req = PostTranslateModifyRequest {
        clusters: vec![
            cluster("httproute/default/egress/rule/0"),
            cluster("httproute/default/envoy-ai-gateway-basic/rule/0"),
        ],
        ..Default::default()
    };
    let resp = client
        .post_translate_modify(req)
        .await
        .unwrap()
        .into_inner();
    let ts = resp.clusters[0].transport_socket.as_ref().unwrap();
    assert_eq!(ts.name, forward_proxy::TRANSPORT_SOCKET);
    let Some(address::Address::SocketAddress(sa)) = forward_proxy::proxy_of(ts).unwrap().address
    else {
        panic!("no socket address")
    };
    assert_eq!(sa.address, "proxy.corp.internal");
    assert_eq!(
        sa.port_specifier,
        Some(socket_address::PortSpecifier::PortValue(3128))
    );
    assert!(resp.clusters[1].transport_socket.is_none());
}
