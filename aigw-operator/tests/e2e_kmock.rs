//! End to end against an in-memory Kubernetes API (PyPI `kmock`, served by
//! `tests/e2e/kmock_server.py`): apply the upstream basic example, watch the controller
//! write the HTTPRoute, its filters, the ExtProc configuration Secret and `Accepted`;
//! change a backend and see the Secret change; add a broken route and see it
//! `NotAccepted` while the rest keeps being served; delete the Gateway and see its
//! configuration removed; delete the routes and see everything they caused removed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use aigw_operator::controller::{self, Context, metrics::Metrics};
use aigw_operator::render::{Options, bundle, doc_key};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the emulator; `None` (test skipped) when kmock is not installed and
/// `AIGW_REQUIRE_EXTERNAL` is unset.
fn start() -> Option<(Server, u16)> {
    let python = std::env::var("AIGW_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_kmock = Command::new(&python)
        .args(["-c", "import kmock"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_kmock {
        assert!(
            std::env::var_os("AIGW_REQUIRE_EXTERNAL").is_none(),
            "kmock is not installed in {python} (scripts/requirements-test.txt)"
        );
        eprintln!("skipped: kmock not installed");
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/kmock_server.py");
    let mut child = Command::new(&python)
        .arg(script)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().unwrap();
    Some((Server(child), port))
}

fn api(client: &kube::Client, kind: &str, ns: &str) -> Api<DynamicObject> {
    let ar = controller::read_kinds()
        .into_iter()
        .chain([
            kube::api::ApiResource::from_gvk_with_plural(
                &kube::api::GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
                "httproutes",
            ),
            kube::api::ApiResource::from_gvk_with_plural(
                &kube::api::GroupVersionKind::gvk(
                    "gateway.envoyproxy.io",
                    "v1alpha1",
                    "HTTPRouteFilter",
                ),
                "httproutefilters",
            ),
        ])
        .find(|a| a.kind == kind)
        .unwrap_or_else(|| panic!("no resource for {kind}"));
    Api::namespaced_with(client.clone(), ns, &ar)
}

async fn get(client: &kube::Client, kind: &str, ns: &str, name: &str) -> Option<Value> {
    // By code: kmock's 404 reason is not the API server's `NotFound`.
    match api(client, kind, ns).get(name).await {
        Ok(o) => Some(serde_json::to_value(o).unwrap()),
        Err(kube::Error::Api(s)) if s.code == 404 => None,
        Err(e) => panic!("{e}"),
    }
}

async fn config_secrets(client: &kube::Client) -> Vec<Value> {
    api(client, "Secret", "envoy-gateway-system")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| serde_json::to_value(o).unwrap())
        .filter(|o| o["metadata"]["labels"][bundle::GATEWAY_LABEL].is_string())
        .collect()
}

/// Polls `check` every 100 ms for up to 60 s (the machine may be busy), printing how long it took.
async fn eventually<F, Fut, T>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    for _ in 0..600 {
        if let Some(v) = check().await {
            eprintln!("{what}: {:?}", started.elapsed());
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn condition(obj: &Value) -> Option<(String, String)> {
    let c = &obj["status"]["conditions"][0];
    Some((
        c["type"].as_str()?.to_string(),
        c["message"].as_str()?.to_string(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_example_end_to_end() {
    let Some((_server, port)) = start() else {
        return;
    };
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();

    // Apply the upstream basic example (the kinds the controller reads).
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/envoy-ai-gateway-manifests/basic__basic.yaml");
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&std::fs::read_to_string(file).unwrap()).unwrap();
    let known: Vec<String> = controller::read_kinds()
        .into_iter()
        .map(|a| a.kind)
        .collect();
    for doc in docs
        .iter()
        .filter(|d| known.iter().any(|k| d["kind"] == k.as_str()))
    {
        let (kind, ns, _) = doc_key(doc);
        let obj: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
        api(&client, &kind, &ns)
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
    }

    let ctx = Arc::new(Context::new(
        client.clone(),
        Options::default(),
        Metrics::default(),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(controller::run(ctx.clone(), async move {
        let _ = stopped.await;
    }));

    let route_name = "envoy-ai-gateway-basic";
    let http_route = eventually("the HTTPRoute", || {
        get(&client, "HTTPRoute", "default", route_name)
    })
    .await;
    assert_eq!(http_route["spec"]["rules"].as_array().unwrap().len(), 2);
    assert_eq!(
        http_route["metadata"]["annotations"]["gateway.envoyproxy.io/ai-gateway-generated"],
        "true"
    );
    for f in ["ai-eg-host-rewrite-", "ai-eg-route-not-found-response-"] {
        let name = format!("{f}{route_name}");
        eventually("the filters", || {
            get(&client, "HTTPRouteFilter", "default", &name)
        })
        .await;
    }
    let secret = eventually("the ExtProc Secret", || async {
        config_secrets(&client).await.into_iter().next()
    })
    .await;
    let first_checksum = secret["metadata"]["annotations"][bundle::CHECKSUM_ANNOTATION].clone();
    assert!(
        secret["stringData"][bundle::PART_KEY]
            .as_str()
            .unwrap()
            .contains("kind: AIGatewayRoute")
    );
    let accepted = eventually("Accepted", || async {
        let r = get(&client, "AIGatewayRoute", "default", route_name).await?;
        condition(&r).filter(|(t, _)| t == "Accepted")
    })
    .await;
    assert_eq!(accepted.0, "Accepted");

    // A backend changes: the configuration follows.
    let backend = "envoy-ai-gateway-basic-testupstream";
    api(&client, "Backend", "default")
        .patch(
            backend,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "endpoints": [{ "fqdn": { "hostname": "changed.example.com", "port": 443 } }] } })),
        )
        .await
        .unwrap();
    let changed = eventually("the Secret to change", || async {
        let s = config_secrets(&client).await.into_iter().next()?;
        (s["metadata"]["annotations"][bundle::CHECKSUM_ANNOTATION] != first_checksum).then_some(s)
    })
    .await;
    assert!(
        changed["stringData"][bundle::PART_KEY]
            .as_str()
            .unwrap()
            .contains("changed.example.com")
    );

    // A broken route is NotAccepted, with the reason; the good one stays served.
    let broken = json!({
        "apiVersion": "aigateway.envoyproxy.io/v1beta1", "kind": "AIGatewayRoute",
        "metadata": { "name": "broken", "namespace": "default", "generation": 1 },
        "spec": { "parentRefs": [{ "name": "envoy-ai-gateway-basic" }], "rules": [{ "backendRefs": [{ "name": "missing" }] }] }
    });
    api(&client, "AIGatewayRoute", "default")
        .create(
            &PostParams::default(),
            &serde_json::from_value(broken).unwrap(),
        )
        .await
        .unwrap();
    let (_, message) = eventually("NotAccepted", || async {
        let r = get(&client, "AIGatewayRoute", "default", "broken").await?;
        condition(&r).filter(|(t, _)| t == "NotAccepted")
    })
    .await;
    assert!(
        message.contains("AIServiceBackend default/missing"),
        "{message}"
    );
    let r = get(&client, "AIGatewayRoute", "default", "broken")
        .await
        .unwrap();
    assert_eq!(r["status"]["conditions"][0]["observedGeneration"], 1);
    assert!(
        get(&client, "HTTPRoute", "default", "broken")
            .await
            .is_none()
    );
    assert!(
        get(&client, "HTTPRoute", "default", route_name)
            .await
            .is_some()
    );

    // Deleting the Gateway removes its configuration (no reconcile runs for it any more:
    // the sweep does it); the routes' objects stay while the routes do.
    api(&client, "Gateway", "default")
        .delete("envoy-ai-gateway-basic", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Secret to go with its Gateway", || async {
        config_secrets(&client).await.is_empty().then_some(())
    })
    .await;
    assert!(
        get(&client, "HTTPRoute", "default", route_name)
            .await
            .is_some()
    );

    // Deleting the routes removes what they caused.
    for name in [route_name, "broken"] {
        api(&client, "AIGatewayRoute", "default")
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    eventually("the Secret to go", || async {
        config_secrets(&client).await.is_empty().then_some(())
    })
    .await;
    eventually("the HTTPRoute to go", || async {
        get(&client, "HTTPRoute", "default", route_name)
            .await
            .is_none()
            .then_some(())
    })
    .await;
    let filter = format!("ai-eg-host-rewrite-{route_name}");
    eventually("the filters to go", || async {
        get(&client, "HTTPRouteFilter", "default", &filter)
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        ctx.metrics
            .render()
            .contains("aigw_operator_reconciles_total{result=\"success\"}")
    );
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), running).await;
}
