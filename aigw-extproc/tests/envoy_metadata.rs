//! `credentialOverride.fromDynamicMetadata` behind a real Envoy: a `set_metadata` filter
//! stands in for ext_authz, the generated bootstrap forwards its namespace, and the
//! backend receives the credential taken from it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod common;

use aigw_core::config::Config;
use aigw_extproc::config::ConfigCatalog;
use aigw_extproc::envoy::{Options, Plan};
use aigw_extproc::metrics::Metrics;
use aigw_extproc::server::{Bound, ListenAddr, serve_grpc};
use aigw_extproc::{Processor, Runtime};
use arc_swap::ArcSwap;
use axum::http::HeaderMap;
use common::envoy::{Envoy, envoy_binary, free_port};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

fn config(port: u16) -> String {
    format!(
        r#"
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: up, namespace: default}}
spec:
  endpoints: [{{ip: {{address: 127.0.0.1, port: {port}}}}}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata: {{name: up, namespace: default}}
spec:
  schema: {{name: OpenAI}}
  backendRef: {{name: up, kind: Backend, group: gateway.envoyproxy.io}}
---
apiVersion: v1
kind: Secret
metadata: {{name: key, namespace: default}}
type: Opaque
stringData: {{apiKey: sk-configured}}
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: BackendSecurityPolicy
metadata: {{name: up, namespace: default}}
spec:
  targetRefs: [{{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: up}}]
  type: APIKey
  apiKey: {{secretRef: {{name: key}}}}
  credentialOverride:
    fromDynamicMetadata: {{namespace: envoy.filters.http.ext_authz, key: user-key, fallbackToConfigured: false}}
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata: {{name: chat, namespace: default}}
spec:
  rules:
    - matches: [{{headers: [{{type: Exact, name: x-ai-eg-model, value: gpt-4o-mini}}]}}]
      backendRefs: [{{name: up}}]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_forwards_metadata_credentials() {
    let Some(bin) = envoy_binary() else { return };
    let dir = tempfile::tempdir().unwrap();

    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let app = axum::Router::new().fallback({
        let seen = seen.clone();
        move |headers: HeaderMap| {
            seen.lock().unwrap().push(headers);
            async {
                (
                    [("content-type", "application/json")],
                    r#"{"id":"x","object":"chat.completion","model":"gpt-4o-mini","choices":[]}"#,
                )
            }
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await });

    let config = Config::from_yaml_str(&config(up_port), "md.yaml").unwrap();
    let sock = dir.path().join("extproc.sock");
    let addr = ListenAddr::Unix(sock);
    let runtime = Runtime::new(
        Arc::new(ConfigCatalog::new(&config).unwrap()),
        Arc::new(aigw_providers::ProviderFactory),
    );
    let processor = Processor::new(
        Arc::new(ArcSwap::from_pointee(runtime)),
        Arc::new(Metrics::default()),
    );
    tokio::spawn(serve_grpc(
        Bound::bind(&addr).await.unwrap(),
        processor,
        64 << 20,
        Arc::new(AtomicBool::new(false)),
        std::future::pending(),
    ));

    let port = free_port();
    let admin = free_port();
    let mut opts = Options::new(addr);
    opts.listen = ([127, 0, 0, 1], port).into();
    opts.admin = Some(([127, 0, 0, 1], admin).into());
    let mut bootstrap = Plan::from_config(&config)
        .unwrap()
        .bootstrap(&opts)
        .unwrap();
    // ext_authz's place: a filter before the processor writing the caller's key.
    let filters = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
        [0]["typed_config"]["http_filters"]
        .as_array_mut()
        .unwrap();
    filters.insert(
        0,
        serde_json::json!({
            "name": "envoy.filters.http.set_metadata",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.set_metadata.v3.Config",
                "metadata": [{
                    "metadata_namespace": "envoy.filters.http.ext_authz",
                    "value": { "user-key": "sk-from-authz" }
                }]
            }
        }),
    );
    let cfg = dir.path().join("envoy.json");
    std::fs::write(&cfg, serde_json::to_vec_pretty(&bootstrap).unwrap()).unwrap();
    let envoy = Envoy::start(&bin, &cfg, dir.path(), admin).await;

    let resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .header("authorization", "Bearer client")
        .header("x-aigw-internal-metadata-credential", "sk-client-forged")
        .json(&serde_json::json!({
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hi"}]
        }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{text}\n{}", envoy.output());
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["authorization"], "Bearer sk-from-authz");
    assert!(
        seen[0].keys().all(|k| !k.as_str().starts_with("x-aigw-")),
        "{:?}",
        seen[0]
    );
}
