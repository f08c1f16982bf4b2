//! `deploy/operator.yaml` grants exactly what the controller uses: every kind it reads
//! can be listed and watched, every kind it writes can be applied and deleted, and no
//! rule grants more than the verbs the controller needs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aigw_operator::controller;
use serde_json::Value;
use std::path::Path;

fn manifests() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/operator.yaml");
    serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Verbs granted on `group/resource` by the rules of objects of `kind`.
fn verbs(docs: &[Value], kind: &str, group: &str, resource: &str) -> Vec<String> {
    docs.iter()
        .filter(|d| d["kind"] == kind)
        .flat_map(|d| d["rules"].as_array().cloned().unwrap_or_default())
        .filter(|r| {
            r["apiGroups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g == group)
                && r["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == resource)
        })
        .flat_map(|r| {
            r["verbs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_read_kind_can_be_listed_and_watched() {
    let docs = manifests();
    for ar in controller::read_kinds() {
        let v = verbs(&docs, "ClusterRole", &ar.group, &ar.plural);
        for need in ["list", "watch"] {
            assert!(
                v.iter().any(|x| x == need),
                "{} lacks {need}: {v:?}",
                ar.plural
            );
        }
    }
}

#[test]
fn written_kinds_can_be_applied_and_deleted_and_statuses_patched() {
    let docs = manifests();
    for (group, plural) in [
        ("gateway.networking.k8s.io", "httproutes"),
        ("gateway.envoyproxy.io", "httproutefilters"),
        ("gateway.envoyproxy.io", "backends"),
        ("gateway.envoyproxy.io", "securitypolicies"),
        ("gateway.envoyproxy.io", "backendtrafficpolicies"),
    ] {
        let v = verbs(&docs, "ClusterRole", group, plural);
        for need in ["create", "patch", "delete", "list"] {
            assert!(v.iter().any(|x| x == need), "{plural} lacks {need}");
        }
    }
    let secrets = verbs(&docs, "Role", "", "secrets");
    assert_eq!(secrets, ["create", "patch", "delete"]);
    let cluster_secrets = verbs(&docs, "ClusterRole", "", "secrets");
    assert_eq!(
        cluster_secrets,
        ["get", "list", "watch", "create", "patch"],
        "cluster-wide Secret writes only to create and patch MCP credentials, never delete"
    );
    // Those writes come from one ClusterRole that grants nothing else.
    let mcp = docs
        .iter()
        .find(|d| {
            d["kind"] == "ClusterRole" && d["metadata"]["name"] == "aigw-operator-mcp-credentials"
        })
        .unwrap();
    assert_eq!(mcp["rules"].as_array().unwrap().len(), 1);
    assert_eq!(mcp["rules"][0]["resources"], serde_json::json!(["secrets"]));
    for ar in controller::read_kinds()
        .into_iter()
        .filter(|a| a.group == aigw_operator::crd::GROUP)
    {
        let v = verbs(
            &docs,
            "ClusterRole",
            &ar.group,
            &format!("{}/status", ar.plural),
        );
        assert_eq!(v, ["patch"], "{}", ar.plural);
    }
    let leases = verbs(&docs, "Role", "coordination.k8s.io", "leases");
    assert_eq!(leases, ["get", "create", "update"]);
}

#[test]
fn the_webhook_configuration_reaches_the_operators_webhook() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/webhook.yaml");
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap();
    let service = docs.iter().find(|d| d["kind"] == "Service").unwrap();
    let hook = docs
        .iter()
        .find(|d| d["kind"] == "MutatingWebhookConfiguration")
        .unwrap();
    let w = &hook["webhooks"][0];
    assert_eq!(w["clientConfig"]["service"]["path"], "/mutate");
    assert_eq!(
        w["clientConfig"]["service"]["name"],
        service["metadata"]["name"]
    );
    assert_eq!(
        w["failurePolicy"], "Ignore",
        "a failing webhook must not block Envoy pods"
    );
    let target = service["spec"]["ports"][0]["targetPort"].as_u64().unwrap();
    let deployment = manifests()
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap();
    let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert!(
        args.iter()
            .any(|a| a == &format!("--webhook-addr=0.0.0.0:{target}")),
        "{args:?}"
    );
    let selector = &service["spec"]["selector"];
    assert_eq!(
        selector["app.kubernetes.io/name"],
        deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
    );
}

/// Envoy Gateway's extension-manager values reach the operator's extension server.
#[test]
fn envoy_gateway_reaches_the_extension_server() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/envoy-gateway-values.yaml");
    let values: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let manager = &values["config"]["envoyGateway"]["extensionManager"];
    let docs = manifests();
    let service = docs
        .iter()
        .find(|d| d["kind"] == "Service" && d["metadata"]["name"] == "aigw-operator")
        .unwrap();
    let fqdn = &manager["service"]["fqdn"];
    assert_eq!(
        fqdn["hostname"].as_str().unwrap(),
        format!(
            "{}.{}.svc.cluster.local",
            service["metadata"]["name"].as_str().unwrap(),
            service["metadata"]["namespace"].as_str().unwrap()
        )
    );
    assert_eq!(fqdn["port"], service["spec"]["ports"][0]["port"]);
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let port = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == service["spec"]["ports"][0]["targetPort"])
        .unwrap();
    assert!(
        container["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str()
                == Some(&format!(
                    "--extension-server-addr=0.0.0.0:{}",
                    port["containerPort"]
                ))),
        "{container}"
    );
    let hooks = &manager["hooks"]["xdsTranslator"]["post"];
    assert_eq!(
        hooks,
        &serde_json::json!(["Translation", "Cluster", "Route"])
    );
}
