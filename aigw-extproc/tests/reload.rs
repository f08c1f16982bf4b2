//! Hot reload: an edited configuration file takes effect without a restart; a broken
//! one is rejected and the previous configuration keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aigw_extproc::config::load_runtime;
use aigw_extproc::reload;
use arc_swap::ArcSwap;
use http::HeaderMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn yaml(model: &str) -> String {
    format!(
        "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {{name: b, namespace: default}}\nspec:\n  endpoints:\n    - ip: {{address: 127.0.0.1, port: 9}}\n\
         ---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIServiceBackend\nmetadata: {{name: b, namespace: default}}\nspec:\n  schema: {{name: OpenAI}}\n  backendRef: {{name: b, kind: Backend, group: gateway.envoyproxy.io}}\n\
         ---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIGatewayRoute\nmetadata: {{name: r, namespace: default}}\nspec:\n  rules:\n    - matches: [{{headers: [{{type: Exact, name: x-ai-eg-model, value: {model}}}]}}]\n      backendRefs: [{{name: b}}]\n"
    )
}

async fn until(mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn edits_apply_and_broken_configs_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aigw.yaml");
    std::fs::write(&path, yaml("model-a")).unwrap();
    let paths = vec![path.clone()];
    let runtime = Arc::new(ArcSwap::from_pointee(load_runtime(&paths).unwrap()));
    let routes = |rt: &ArcSwap<aigw_extproc::Runtime>, m: &str| {
        rt.load().catalog.route(m, &HeaderMap::new()).is_ok()
    };
    assert!(routes(&runtime, "model-a"));
    assert!(!routes(&runtime, "model-b"));

    let task = tokio::spawn(reload::watch(
        paths,
        runtime.clone(),
        Duration::from_millis(20),
        |p: &[PathBuf]| load_runtime(p),
    ));

    std::fs::write(&path, yaml("model-b")).unwrap();
    assert!(
        until(|| routes(&runtime, "model-b")).await,
        "edit not applied"
    );
    assert!(!routes(&runtime, "model-a"));

    // A route to an undefined backend fails validation: the old configuration stays.
    std::fs::write(
        &path,
        yaml("model-c").replace("backendRefs: [{name: b}]", "backendRefs: [{name: missing}]"),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        routes(&runtime, "model-b"),
        "broken config replaced a good one"
    );
    assert!(!routes(&runtime, "model-c"));
    task.abort();
}
