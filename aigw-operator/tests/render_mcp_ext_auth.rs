//! An MCPRoute's gRPC `extAuth` behind Envoy Gateway: as upstream's controller does, the
//! whole `extAuth` (gRPC service, `bodyToExtAuth`, `contextExtensions`,
//! `includeRouteMetadata`, `statusOnError`, `failOpen`) goes into the SecurityPolicy on
//! the route's main HTTPRoute, so Envoy's own `ext_authz` filter enforces it — and the
//! SecurityPolicy is valid against Envoy Gateway's CRD.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aigw_operator::render::{self, Manifests, Options};
use aigw_operator::validate::check;
use serde_json::{Value, json};
use std::path::Path;

const ROUTE: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: eg
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: MCPRoute
metadata: {name: tools, namespace: default}
spec:
  parentRefs: [{name: gw, kind: Gateway, group: gateway.networking.k8s.io}]
  backendRefs:
    - {name: kiwi, kind: Backend, group: gateway.envoyproxy.io, path: /}
  securityPolicy:
    extAuth:
      grpc:
        backendRefs: [{name: authz, port: 9001}]
      headersToExtAuth: [x-user]
      bodyToExtAuth: {maxRequestBytes: 8192}
      contextExtensions:
        - {name: tenant, type: Value, value: acme}
        - name: token
          type: ValueRef
          valueRef: {group: "", kind: Secret, name: authz-context, key: token}
      includeRouteMetadata: true
      statusOnError: 503
      failOpen: false
      timeout: 2s
---
apiVersion: v1
kind: Secret
metadata: {name: authz-context, namespace: default}
stringData: {token: s3cret}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: kiwi, namespace: default}
spec:
  endpoints: [{fqdn: {hostname: mcp.kiwi.com, port: 443}}]
"#;

#[test]
fn grpc_ext_auth_goes_to_envoy_gateways_security_policy_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mcp.yaml");
    std::fs::write(&path, ROUTE).unwrap();
    let m = Manifests::load(&[path]).unwrap();
    let out = render::render(&m, &Options::default()).unwrap();
    let policy = out
        .objects
        .iter()
        .find(|o| o["kind"] == "SecurityPolicy")
        .expect("a SecurityPolicy");
    assert_eq!(
        policy["spec"]["targetRefs"],
        json!([{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "ai-eg-mcp-main-tools"}])
    );
    assert_eq!(
        policy["spec"]["extAuth"],
        json!({
            "grpc": {"backendRefs": [{"name": "authz", "port": 9001}]},
            "headersToExtAuth": ["x-user"],
            "bodyToExtAuth": {"maxRequestBytes": 8192},
            "contextExtensions": [
                {"name": "tenant", "type": "Value", "value": "acme"},
                {"name": "token", "type": "ValueRef",
                 "valueRef": {"group": "", "kind": "Secret", "name": "authz-context", "key": "token"}}
            ],
            "includeRouteMetadata": true,
            "statusOnError": 503,
            "failOpen": false,
            "timeout": "2s"
        })
    );
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/reference/crds/envoy-gateway/securitypolicies.yaml"),
    )
    .unwrap();
    let crd: Value = serde_saphyr::from_str(&text).unwrap();
    let schema = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1alpha1")
        .unwrap()["schema"]["openAPIV3Schema"]
        .clone();
    let violations = check(&schema, policy);
    assert!(violations.is_empty(), "{violations:?}");
}
