//! Sidecar injection: AdmissionReview in → JSON Patch out (golden), the patch applied to
//! an Envoy Gateway proxy pod gives the pod we want, a second pass changes nothing, and
//! pods that are not ours (or whose Gateway has no AI routes) pass untouched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aigw_operator::render::Manifests;
use aigw_operator::sidecar::{self, SidecarOptions};
use base64::Engine as _;
use serde_json::{Value, json};
use std::path::Path;

fn manifests(file: &str) -> Manifests {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/envoy-ai-gateway-manifests")
        .join(file);
    Manifests::load(&[p]).unwrap()
}

/// A proxy pod as Envoy Gateway creates it (trimmed to what matters here).
fn envoy_pod(gw: &str, ns: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "generateName": format!("envoy-{ns}-{gw}-"),
            "namespace": "envoy-gateway-system",
            "labels": {
                "app.kubernetes.io/component": "proxy",
                "app.kubernetes.io/managed-by": "envoy-gateway",
                "gateway.envoyproxy.io/owning-gateway-name": gw,
                "gateway.envoyproxy.io/owning-gateway-namespace": ns,
            }
        },
        "spec": {
            "containers": [
                { "name": "envoy", "image": "envoyproxy/envoy:distroless-v1.36.0",
                  "volumeMounts": [{ "name": "certs", "mountPath": "/certs", "readOnly": true }] },
                { "name": "shutdown-manager", "image": "envoyproxy/gateway:v1.6.0" }
            ],
            "volumes": [{ "name": "certs", "secret": { "secretName": "envoy" } }]
        }
    })
}

fn admission(pod: &Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": { "group": "", "version": "v1", "kind": "Pod" },
            "operation": "CREATE",
            "namespace": "envoy-gateway-system",
            "object": pod,
        }
    })
}

fn decoded_patch(review: &Value) -> Vec<Value> {
    match review["response"]["patch"].as_str() {
        None => Vec::new(),
        Some(p) => {
            serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(p).unwrap())
                .unwrap()
        }
    }
}

/// RFC 6902 `add` (the only operation the injector emits).
fn apply(doc: &mut Value, ops: &[Value]) {
    for op in ops {
        assert_eq!(op["op"], "add");
        let path = op["path"].as_str().unwrap();
        let (parent, last) = path.rsplit_once('/').unwrap();
        let target = doc
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("no {parent}"));
        match (target, last) {
            (Value::Array(a), "-") => a.push(op["value"].clone()),
            (Value::Object(o), key) => {
                o.insert(key.to_string(), op["value"].clone());
            }
            (t, _) => panic!("cannot add at {path} into {t}"),
        }
    }
}

#[test]
fn an_ai_gateways_proxy_pod_gets_the_sidecar() {
    let m = manifests("basic__basic.yaml");
    let opts = SidecarOptions::default();
    let pod = envoy_pod("envoy-ai-gateway-basic", "default");
    let review = sidecar::review(&admission(&pod), Some(&m), &opts);
    assert_eq!(review["response"]["allowed"], true);
    assert_eq!(
        review["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    assert_eq!(review["response"]["patchType"], "JSONPatch");
    let ops = decoded_patch(&review);
    insta::assert_json_snapshot!("basic_patch", ops);

    let mut mutated = pod.clone();
    apply(&mut mutated, &ops);
    let side = &mutated["spec"]["initContainers"][0];
    assert_eq!(side["name"], sidecar::CONTAINER);
    assert_eq!(side["restartPolicy"], "Always");
    for c in mutated["spec"]["containers"].as_array().unwrap() {
        assert!(
            c["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["name"] == sidecar::UDS_VOLUME),
            "{} lacks the socket volume",
            c["name"]
        );
    }
    // The projected token for in-process rotation: only the sidecar mounts it.
    let token = mutated["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == sidecar::TOKEN_VOLUME)
        .unwrap();
    assert_eq!(
        token["projected"]["sources"][0]["serviceAccountToken"]["audience"],
        "sts.amazonaws.com"
    );
    assert!(
        side["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == sidecar::TOKEN_VOLUME && v["readOnly"] == true)
    );
    assert!(
        side["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == sidecar::AWS_TOKEN_ENV
                && e["value"] == "/var/run/secrets/aigw/serviceaccount/token")
    );
    // Second pass: nothing more.
    let again = sidecar::review(&admission(&mutated), Some(&m), &opts);
    assert_eq!(again["response"]["allowed"], true);
    assert!(again["response"].get("patch").is_none(), "{again}");
}

#[test]
fn gateway_config_sets_image_resources_and_env() {
    let m = manifests("gateway-config__comprehensive.yaml");
    let pod = envoy_pod("production-ai-gateway", "default");
    let ops = sidecar::patch(&pod, &m, &SidecarOptions::default());
    let container = ops
        .iter()
        .find(|o| o["path"] == "/spec/initContainers")
        .unwrap()["value"][0]
        .clone();
    insta::assert_json_snapshot!("gateway_config_container", container);
    assert!(
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "OTEL_EXPORTER_OTLP_ENDPOINT")
    );
    assert!(container["resources"]["requests"]["cpu"].is_string());
}

#[test]
fn pods_that_are_not_ours_pass_unchanged() {
    let m = manifests("basic__basic.yaml");
    let opts = SidecarOptions::default();
    // Not an Envoy Gateway proxy.
    let mut plain = envoy_pod("x", "y");
    plain["metadata"]["labels"] = json!({ "app": "web" });
    assert!(decoded_patch(&sidecar::review(&admission(&plain), Some(&m), &opts)).is_empty());
    // A proxy of a Gateway without AI routes.
    let other = envoy_pod("other-gateway", "default");
    assert!(decoded_patch(&sidecar::review(&admission(&other), Some(&m), &opts)).is_empty());
    // The configuration could not be read: admitted, unchanged.
    let pod = envoy_pod("envoy-ai-gateway-basic", "default");
    let r = sidecar::review(&admission(&pod), None, &opts);
    assert_eq!(r["response"]["allowed"], true);
    assert!(decoded_patch(&r).is_empty());
}

#[tokio::test]
async fn the_webhook_answers_over_tls() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let tls = aigw_operator::webhook::tls_config(
        cert.cert.pem().as_bytes(),
        cert.key_pair.serialize_pem().as_bytes(),
    )
    .unwrap();
    let m = std::sync::Arc::new(manifests("basic__basic.yaml"));
    let source: aigw_operator::webhook::Source = std::sync::Arc::new(move || {
        let m = m.clone();
        Box::pin(async move { Some((*m).clone()) })
    });
    let router = aigw_operator::webhook::router(source, SidecarOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(aigw_operator::webhook::serve(listener, tls, router));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let pod = envoy_pod("envoy-ai-gateway-basic", "default");
    let review: Value = client
        .post(format!("https://localhost:{port}/mutate"))
        .json(&admission(&pod))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(review["kind"], "AdmissionReview");
    assert_eq!(review["response"]["allowed"], true);
    assert!(!decoded_patch(&review).is_empty());
    server.abort();
}

/// The MCP session seeds reach the sidecar as references into the Secret (never their
/// values), the iterations as a flag; a GatewayConfig that sets the seed itself wins,
/// and without a Secret configured nothing is injected.
#[test]
fn mcp_session_seeds_come_from_the_secret() {
    use aigw_operator::sidecar::McpSession;
    let m = manifests("basic__basic.yaml");
    let pod = envoy_pod("envoy-ai-gateway-basic", "default");
    let container = |opts: &SidecarOptions| {
        sidecar::patch(&pod, &m, opts)
            .iter()
            .find(|o| o["path"] == "/spec/initContainers")
            .unwrap()["value"][0]
            .clone()
    };
    let opts = SidecarOptions {
        mcp_session: McpSession {
            secret: Some("mcp-seeds".into()),
            iterations: Some(250_000),
        },
        ..SidecarOptions::default()
    };
    let c = container(&opts);
    let env = c["env"].as_array().unwrap();
    let var = |name: &str| env.iter().find(|e| e["name"] == name).cloned();
    assert_eq!(
        var(sidecar::MCP_SEED_ENV).unwrap()["valueFrom"],
        json!({ "secretKeyRef": { "name": "mcp-seeds", "key": "seed", "optional": true } })
    );
    assert_eq!(
        var(sidecar::MCP_FALLBACK_SEED_ENV).unwrap()["valueFrom"],
        json!({ "secretKeyRef": { "name": "mcp-seeds", "key": "fallbackSeed", "optional": true } })
    );
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.windows(2)
            .any(|w| w == ["--mcp-session-iterations", "250000"]),
        "{args:?}"
    );
    assert!(!args.iter().any(|a| a.contains("seed")), "{args:?}");
    assert!(
        env.iter()
            .all(|e| e.get("value").is_none() || !e["name"].as_str().unwrap().contains("SEED"))
    );

    // None configured: no seed variables, no flag.
    let none = container(&SidecarOptions {
        mcp_session: McpSession::default(),
        ..SidecarOptions::default()
    });
    assert!(
        !none["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"].as_str().unwrap().contains("SEED"))
    );
    assert!(!none["args"].to_string().contains("iterations"));
}
