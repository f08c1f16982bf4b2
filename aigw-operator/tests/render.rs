//! `render`: every upstream example manifest set in, the generated objects out (golden
//! files), each object valid against the CRD the API server will hold it to, and each
//! ExtProc configuration loadable by the core's loader.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aigw_core::config::Config;
use aigw_operator::render::{self, Manifests, Options, bundle};
use aigw_operator::validate::check;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference")
}

/// Upstream applies its provider examples on top of `examples/basic`; overlays need the
/// file defining what they reference.
fn set_for(file: &Path) -> Vec<PathBuf> {
    let name = file.file_name().unwrap().to_str().unwrap();
    let dir = file.parent().unwrap();
    let base = match name {
        "basic__anthropic-openai-local.yaml" => Some("basic__openai.yaml"),
        "stream_idle_timeout__base.yaml" => Some("stream_idle_timeout__backends.yaml"),
        "basic__basic.yaml" => None,
        "inference-pool__aigwroute.yaml" => Some("basic__basic.yaml"),
        n if n.starts_with("basic__")
            && !std::fs::read_to_string(file)
                .unwrap()
                .contains("\nkind: Gateway\n") =>
        {
            Some("basic__basic.yaml")
        }
        _ => None,
    };
    let mut out = vec![file.to_path_buf()];
    if let Some(b) = base {
        out.push(dir.join(b));
        if b == "basic__openai.yaml" {
            out.push(dir.join("basic__basic.yaml"));
        }
    }
    out
}

fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared().join("envoy-ai-gateway-manifests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn render_set(paths: &[PathBuf], opts: &Options) -> (Manifests, render::Rendered) {
    let m = Manifests::load(paths).unwrap_or_else(|e| panic!("{paths:?}: {e}"));
    let out = render::render(&m, opts).unwrap();
    (m, out)
}

#[test]
fn golden_objects_for_every_upstream_example() {
    for file in example_files() {
        let paths = set_for(&file);
        let (_, out) = render_set(&paths, &Options::default());
        let name = file.file_stem().unwrap().to_str().unwrap().to_string();
        let mut text = String::new();
        for w in &out.warnings {
            text.push_str(&format!("# warning: {w}\n"));
        }
        text.push_str(&render::to_yaml(&out.objects).unwrap());
        let files: Vec<String> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        insta::with_settings!({ description => files.join(" + "), omit_expression => true }, {
            insta::assert_snapshot!(name, text);
        });
    }
}

/// The CRD schema of `kind` (served version `version`) from a reference CRD file.
fn reference_schema(file: &str, version: &str) -> Value {
    let text = std::fs::read_to_string(shared().join("crds").join(file)).unwrap();
    let crd: Value = serde_saphyr::from_str(&text).unwrap();
    crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == version)
        .unwrap_or_else(|| panic!("{file} has no {version}"))["schema"]["openAPIV3Schema"]
        .clone()
}

#[test]
fn every_generated_object_validates_against_its_crd() {
    let http_route = reference_schema("gateway-api/httproutes.yaml", "v1");
    let filter = reference_schema("envoy-gateway/httproutefilters.yaml", "v1alpha1");
    let backend = reference_schema("envoy-gateway/backends.yaml", "v1alpha1");
    let subdomain =
        regex::Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
            .unwrap();
    let mut counts = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for file in example_files() {
        let (_, out) = render_set(&set_for(&file), &Options::default());
        for obj in &out.objects {
            let name = obj["metadata"]["name"].as_str().unwrap();
            let violations = match obj["kind"].as_str().unwrap() {
                "HTTPRoute" => {
                    counts.0 += 1;
                    check(&http_route, obj)
                }
                "HTTPRouteFilter" => {
                    counts.1 += 1;
                    check(&filter, obj)
                }
                "Backend" => {
                    counts.3 += 1;
                    check(&backend, obj)
                }
                "Secret" => {
                    counts.2 += 1;
                    let size = serde_json::to_string(obj).unwrap().len();
                    let mut v = Vec::new();
                    if size >= 1024 * 1024 || name.len() > 253 || !subdomain.is_match(name) {
                        v.push(aigw_operator::validate::Violation {
                            path: "metadata.name".into(),
                            message: format!("bad name or size {size}"),
                        });
                    }
                    v
                }
                other => panic!("unexpected kind {other}"),
            };
            for v in violations {
                failures.push(format!("{}: {} {name}: {v}", file.display(), obj["kind"]));
            }
        }
    }
    assert!(
        counts.0 >= 20 && counts.1 >= 40 && counts.2 >= 15 && counts.3 >= 1,
        "{counts:?}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The configuration text of a part, without its header comment.
fn part_text(secret: &Value) -> &str {
    secret["stringData"][bundle::PART_KEY].as_str().unwrap()
}

#[test]
fn every_extproc_configuration_loads_and_serves_the_gateways_routes() {
    for file in example_files() {
        let (m, out) = render_set(&set_for(&file), &Options::default());
        for (ns, gw) in render::gateways(&m.config) {
            let parts: Vec<&Value> = out
                .objects
                .iter()
                .filter(|o| {
                    o["kind"] == "Secret"
                        && o["metadata"]["labels"][bundle::GATEWAY_LABEL] == format!("{ns}.{gw}")
                })
                .collect();
            if !m
                .config
                .gateways
                .iter()
                .any(|g| g.namespace() == ns && g.name() == gw)
            {
                assert!(parts.is_empty());
                continue;
            }
            assert_eq!(parts.len(), 1, "{}: {ns}/{gw}", file.display());
            let text = part_text(parts[0]);
            let loaded = Config::from_yaml_str(text, "config.yaml")
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let want: Vec<String> = m
                .config
                .ai_gateway_routes
                .iter()
                .filter(|r| r.spec.parent_refs.iter().any(|p| p.name == gw))
                .map(|r| r.key())
                .collect();
            let got: Vec<String> = loaded.ai_gateway_routes.iter().map(|r| r.key()).collect();
            assert_eq!(got, want, "{}", file.display());
            // Exactly the Secrets the policies need, none other.
            let loaded_secrets: Vec<String> =
                loaded.secrets.iter().map(|s| s.metadata.key()).collect();
            for s in &loaded.secrets {
                assert!(
                    m.config
                        .secrets
                        .iter()
                        .any(|x| x.metadata.key() == s.metadata.key()),
                    "{loaded_secrets:?}"
                );
            }
        }
    }
}

#[test]
fn large_configurations_split_into_parts_that_load_together() {
    let base = shared().join("envoy-ai-gateway-manifests/basic__basic.yaml");
    let opts = Options {
        part_limit: 900,
        ..Options::default()
    };
    let (m, out) = render_set(&[base], &opts);
    let parts: Vec<&Value> = out
        .objects
        .iter()
        .filter(|o| o["kind"] == "Secret")
        .collect();
    assert!(parts.len() >= 3, "{}", parts.len());
    let dir = tempfile::tempdir().unwrap();
    let mut bodies = String::new();
    let checksum = parts[0]["metadata"]["annotations"][bundle::CHECKSUM_ANNOTATION]
        .as_str()
        .unwrap();
    for (i, p) in parts.iter().enumerate() {
        let text = part_text(p);
        let (header, body) = text.split_once('\n').unwrap();
        assert!(
            header.contains(&format!("part {} of {}", i + 1, parts.len())),
            "{header}"
        );
        assert!(header.ends_with(checksum));
        assert_eq!(
            p["metadata"]["annotations"][bundle::CHECKSUM_ANNOTATION],
            checksum
        );
        assert!(body.len() <= 900);
        bodies.push_str(body);
        std::fs::write(dir.path().join(format!("part-{i:03}.yaml")), text).unwrap();
    }
    use sha2::Digest;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(bodies.as_bytes())),
        checksum
    );
    let loaded = Config::load_paths(&[dir.path()]).unwrap();
    assert_eq!(
        loaded.ai_gateway_routes.len(),
        m.config.ai_gateway_routes.len()
    );
    assert_eq!(loaded.backends.len(), m.config.backends.len());
}

#[test]
fn objects_from_a_cluster_carry_owner_references() {
    let base = shared().join("envoy-ai-gateway-manifests/basic__basic.yaml");
    let m = Manifests::load(&[base]).unwrap();
    let docs: Vec<Value> = m
        .docs
        .iter()
        .cloned()
        .map(|mut d| {
            d["metadata"]["uid"] =
                Value::String(format!("uid-{}", d["metadata"]["name"].as_str().unwrap()));
            d["metadata"]["managedFields"] = serde_json::json!([{"manager": "kubectl"}]);
            d
        })
        .collect();
    let m = Manifests::from_documents(docs, "cluster").unwrap();
    let out = render::render(&m, &Options::default()).unwrap();
    let route = out
        .objects
        .iter()
        .find(|o| o["kind"] == "HTTPRoute")
        .unwrap();
    let owner = &route["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "AIGatewayRoute");
    assert_eq!(owner["controller"], true);
    assert_eq!(owner["uid"], "uid-envoy-ai-gateway-basic");
}
