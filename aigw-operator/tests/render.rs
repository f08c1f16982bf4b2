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
    let security = reference_schema("envoy-gateway/securitypolicies.yaml", "v1alpha1");
    let traffic = reference_schema("envoy-gateway/backendtrafficpolicies.yaml", "v1alpha1");
    let subdomain =
        regex::Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
            .unwrap();
    let mut counts = (0, 0, 0, 0, 0);
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
                "SecurityPolicy" => {
                    counts.4 += 1;
                    check(&security, obj)
                }
                "BackendTrafficPolicy" => {
                    counts.4 += 1;
                    check(&traffic, obj)
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
        counts.0 >= 20 && counts.1 >= 40 && counts.2 >= 15 && counts.3 >= 1 && counts.4 >= 4,
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

/// An MCPRoute's `apiKeyAuth` and `extAuth` become its SecurityPolicy (valid against
/// Envoy Gateway's CRD, no OAuth metadata); `oauth` without `jwks` renders nothing of
/// the route (its endpoint is never exposed unprotected) and says why.
#[test]
fn mcp_client_authentication_without_oauth_and_oauth_without_keys() {
    let dir = tempfile::tempdir().unwrap();
    let route = |name: &str, policy: &str| {
        format!(
            "---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: MCPRoute\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  parentRefs:\n    - {{name: gw, kind: Gateway, group: gateway.networking.k8s.io}}\n  backendRefs:\n    - {{name: kiwi, kind: Backend, group: gateway.envoyproxy.io, path: /}}\n  securityPolicy:\n{policy}"
        )
    };
    let yaml = [
        route(
            "keyed",
            "    apiKeyAuth:\n      credentialRefs: [{name: client-keys}]\n      extractFrom: [{headers: [x-api-key]}]\n    extAuth:\n      http:\n        backendRefs: [{name: authz, port: 9000}]\n        headersToBackend: [x-user]\n      headersToExtAuth: [authorization]\n",
        ),
        route(
            "no-keys",
            "    oauth:\n      issuer: https://auth.example.com\n      protectedResourceMetadata:\n        resource: https://mcp.example.com/mcp\n",
        ),
    ]
    .concat()
        + "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata:\n  name: kiwi\n  namespace: default\nspec:\n  endpoints:\n    - fqdn: {hostname: mcp.kiwi.com, port: 443}\n";
    let path = dir.path().join("mcp.yaml");
    std::fs::write(&path, yaml).unwrap();
    let (_, out) = render_set(&[path], &Options::default());
    let names: Vec<String> = out
        .objects
        .iter()
        .filter(|o| o["metadata"]["name"].as_str().unwrap().contains("no-keys"))
        .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]))
        .collect();
    assert!(names.is_empty(), "{names:?}");
    assert!(
        out.warnings
            .iter()
            .any(|w| w.contains("MCPRoute/default/no-keys")
                && w.contains("oauth.jwks is not set")
                && w.contains("no route to its MCP endpoint is written")),
        "{:?}",
        out.warnings
    );
    let policy = out
        .objects
        .iter()
        .find(|o| o["kind"] == "SecurityPolicy")
        .unwrap();
    assert_eq!(policy["metadata"]["name"], "ai-eg-mcp-keyed");
    assert_eq!(policy["metadata"]["ownerReferences"], Value::Null);
    assert_eq!(
        policy["spec"],
        serde_json::json!({
            "targetRefs": [{ "group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "ai-eg-mcp-main-keyed" }],
            "apiKeyAuth": { "credentialRefs": [{ "name": "client-keys" }], "extractFrom": [{ "headers": ["x-api-key"] }] },
            "extAuth": {
                "http": { "backendRefs": [{ "name": "authz", "port": 9000 }], "headersToBackend": ["x-user"] },
                "headersToExtAuth": ["authorization"],
            },
        })
    );
    let schema = reference_schema("envoy-gateway/securitypolicies.yaml", "v1alpha1");
    let violations = check(&schema, policy);
    assert!(violations.is_empty(), "{violations:?}");
    // No OAuth: no metadata rules, filters or 401 override.
    assert!(
        !out.objects
            .iter()
            .any(|o| o["kind"] == "BackendTrafficPolicy")
    );
    let main = out
        .objects
        .iter()
        .find(|o| o["metadata"]["name"] == "ai-eg-mcp-main-keyed")
        .unwrap();
    assert_eq!(main["spec"]["rules"].as_array().unwrap().len(), 1);
}
