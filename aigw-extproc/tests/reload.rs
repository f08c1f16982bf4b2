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

/// A configuration the operator split into parts (one file per Secret, as the projected
/// volume mounts them), generation `model`.
fn parts(model: &str) -> [String; 2] {
    let whole = yaml(model);
    let (backends, route) = whole.rsplit_once("---\n").unwrap();
    let bodies = [format!("---\n{backends}"), format!("---\n{route}")];
    let sum = aigw_core::config::parts_checksum(&bodies);
    let gw = "envoy-gateway-system/gw";
    [
        format!(
            "{}\n{}",
            aigw_core::config::part_header(gw, 1, 2, &sum),
            bodies[0]
        ),
        format!(
            "{}\n{}",
            aigw_core::config::part_header(gw, 2, 2, &sum),
            bodies[1]
        ),
    ]
}

/// The kubelet refreshes each Secret of a projected volume on its own: a reload sees
/// one part of the new generation beside one of the old, keeps serving the old until
/// the whole new generation is there, then swaps; a start on a mixed set fails naming
/// the Gateway instead of serving half a configuration.
#[tokio::test]
async fn split_configurations_reload_as_whole_generations() {
    let dir = tempfile::tempdir().unwrap();
    let (p0, p1) = (
        dir.path().join("part-000.yaml"),
        dir.path().join("part-001.yaml"),
    );
    let [a0, a1] = parts("model-a");
    let [b0, b1] = parts("model-b");
    std::fs::write(&p0, &a0).unwrap();
    std::fs::write(&p1, &a1).unwrap();
    let paths = vec![dir.path().to_path_buf()];
    let runtime = Arc::new(ArcSwap::from_pointee(load_runtime(&paths).unwrap()));
    let routes = |rt: &ArcSwap<aigw_extproc::Runtime>, m: &str| {
        rt.load().catalog.route(m, &HeaderMap::new()).is_ok()
    };
    assert!(routes(&runtime, "model-a"));
    let task = tokio::spawn(reload::watch(
        paths.clone(),
        runtime.clone(),
        Duration::from_millis(20),
        |p: &[PathBuf]| load_runtime(p),
    ));

    // The first part of the new generation arrives alone.
    std::fs::write(&p0, &b0).unwrap();
    let err = match load_runtime(&paths) {
        Ok(_) => panic!("a mixed set does not load"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("incomplete configuration of Gateway envoy-gateway-system/gw"),
        "{err}"
    );
    assert!(err.contains("different generations"), "{err}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        routes(&runtime, "model-a"),
        "the old generation keeps serving"
    );
    assert!(!routes(&runtime, "model-b"));

    // The rest of it: the new generation takes over.
    std::fs::write(&p1, &b1).unwrap();
    assert!(
        until(|| routes(&runtime, "model-b")).await,
        "new generation not applied"
    );
    assert!(!routes(&runtime, "model-a"));

    // A part missing (a Secret not mounted yet) is incomplete too.
    std::fs::remove_file(&p1).unwrap();
    let err = match load_runtime(&paths) {
        Ok(_) => panic!("one of two parts"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("1 of 2 parts present"), "{err}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(routes(&runtime, "model-b"));
    task.abort();
}
