//! Every upstream example manifest loads and validates, both from the shared reference
//! directory and from the copies under `tests/fixtures/config/upstream/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use aigw_core::config::{Config, SecretSource};
use aigw_core::routing::Snapshot;
use std::path::{Path, PathBuf};

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/envoy-ai-gateway-manifests")
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/upstream")
}

/// Upstream examples that are overlays: applied together with the file that defines the
/// objects they reference (upstream applies them on top of `examples/basic`).
const COMPANIONS: &[(&str, &str)] = &[
    ("basic__anthropic-openai-local.yaml", "basic__openai.yaml"),
    ("inference-pool__aigwroute.yaml", "basic__basic.yaml"),
    (
        "stream_idle_timeout__base.yaml",
        "stream_idle_timeout__backends.yaml",
    ),
];

fn with_companion(f: &Path) -> Vec<PathBuf> {
    let name = f.file_name().unwrap().to_str().unwrap();
    let mut out = vec![f.to_path_buf()];
    if let Some((_, c)) = COMPANIONS.iter().find(|(n, _)| *n == name) {
        out.push(f.with_file_name(c));
    }
    out
}

/// Loads each file on its own (the examples reuse names across files), overlays with
/// their companion, and returns the configs.
fn load_each(dir: &Path) -> Vec<(PathBuf, Config)> {
    let files = yaml_files(dir);
    assert!(
        files.len() >= 40,
        "expected the upstream manifests in {}, found {}",
        dir.display(),
        files.len()
    );
    let mut failures = Vec::new();
    let mut out = Vec::new();
    for f in files {
        match Config::load_paths(&with_companion(&f)) {
            Ok(c) => out.push((f, c)),
            Err(e) => failures.push(format!("{}: {e}", f.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    out
}

#[test]
fn shared_reference_manifests_load_and_validate() {
    let dir = shared_dir();
    if !dir.exists() {
        // CI clones shared/ beside the repository; a bare checkout still runs the
        // fixture copies below.
        println!("skipping: {} not present", dir.display());
        return;
    }
    let loaded = load_each(&dir);
    let routes: usize = loaded.iter().map(|(_, c)| c.ai_gateway_routes.len()).sum();
    assert!(routes >= 30, "routes loaded: {routes}");
}

#[test]
fn fixture_copies_load_and_validate() {
    let loaded = load_each(&fixture_dir());
    // Count each file's own documents (overlays also load their companion).
    let own = |path: &Path, c: &Config| {
        let file = path.display().to_string();
        c.summaries().into_iter().find(|s| s.file == file).unwrap()
    };
    let total = |f: fn(&aigw_core::config::FileSummary) -> usize| {
        loaded.iter().map(|(p, c)| f(&own(p, c))).sum::<usize>()
    };
    assert_eq!(total(|s| s.routes), 37);
    assert_eq!(total(|s| s.ai_service_backends), 39);
    assert_eq!(total(|s| s.security_policies), 28);
    assert_eq!(total(|s| s.mcp_routes), 6);
    assert_eq!(total(|s| s.backends), 47);
    assert_eq!(total(|s| s.secrets), 29);
    assert_eq!(total(|s| s.gateway_configs), 1);
    assert_eq!(total(|s| s.tls_policies), 33);
    assert_eq!(total(|s| s.traffic_policies), 23);
    assert_eq!(total(|s| s.gateways), 31);
    // GatewayClass, EnvoyProxy, Deployment, Service … are accepted and listed as ignored.
    let ignored: Vec<String> = loaded
        .iter()
        .flat_map(|(_, c)| c.ignored.iter().map(|i| i.label.clone()))
        .collect();
    assert!(ignored.iter().any(|l| l.starts_with("GatewayClass/")));
    assert!(ignored.iter().any(|l| l.starts_with("EnvoyProxy/")));
}

#[test]
fn fixture_copies_match_shared_reference() {
    let dir = shared_dir();
    if !dir.exists() {
        println!("skipping: {} not present", dir.display());
        return;
    }
    for f in yaml_files(&dir) {
        let rel = f.strip_prefix(&dir).unwrap();
        let copy = fixture_dir().join(rel);
        assert_eq!(
            std::fs::read(&f).unwrap(),
            std::fs::read(&copy).unwrap_or_default(),
            "fixture copy of {} differs or is missing",
            rel.display()
        );
    }
}

/// An overlay loaded without the file defining its backends is rejected, naming both
/// ends of each dangling reference.
#[test]
fn overlay_alone_reports_dangling_backend_refs() {
    let err =
        Config::load_paths(&[fixture_dir().join("stream_idle_timeout__base.yaml")]).unwrap_err();
    let aigw_core::Error::InvalidConfig { issues } = err else {
        panic!("{err}")
    };
    assert_eq!(issues.len(), 4, "{issues:?}");
    let i = &issues[0];
    assert!(i.file.ends_with("stream_idle_timeout__base.yaml"));
    assert_eq!(i.document, "AIGatewayRoute/default/stream-idle-timeout");
    assert_eq!(i.field, "spec.rules[0].backendRefs[0].name");
    assert!(
        i.message
            .contains("AIServiceBackend default/stream-idle-timeout-silent"),
        "{}",
        i.message
    );
    assert!(
        i.message
            .contains("AIGatewayRoute default/stream-idle-timeout"),
        "{}",
        i.message
    );

    let err = Config::load_paths(&[fixture_dir().join("basic__anthropic-openai-local.yaml")])
        .unwrap_err();
    let aigw_core::Error::InvalidConfig { issues } = err else {
        panic!("{err}")
    };
    assert_eq!(issues[0].field, "spec.backendRef.name");
    assert!(
        issues[0]
            .message
            .contains("Backend default/envoy-ai-gateway-basic-openai"),
        "{}",
        issues[0].message
    );
}

/// Manifests that reference Secrets they do not define still validate; the reference
/// shows up as a warning naming the file, document and field.
#[test]
fn out_of_band_secret_is_a_warning() {
    // All upstream examples define their Secrets; drop it to model one created out of band.
    let text = std::fs::read_to_string(fixture_dir().join("basic__openai.yaml")).unwrap();
    let text: Vec<&str> = text
        .split("\n---\n")
        .filter(|d| !d.contains("\nkind: Secret"))
        .collect();
    let c = Config::from_yaml_str(&text.join("\n---\n"), "basic__openai.yaml").unwrap();
    let w = c
        .warnings()
        .iter()
        .find(|w| w.field == "spec.apiKey.secretRef")
        .unwrap_or_else(|| panic!("no secret warning in {:?}", c.warnings()));
    assert!(w.file.ends_with("basic__openai.yaml"));
    assert!(
        w.document.starts_with("BackendSecurityPolicy/default/"),
        "{}",
        w.document
    );
    assert!(
        w.message.contains("not in the loaded files"),
        "{}",
        w.message
    );
}

/// Standalone-runner configs resolve their `${VAR}` secrets from the environment and
/// compile into a routing snapshot.
#[test]
fn run_configs_compile_with_env_secrets() {
    let dir = fixture_dir().join("aigw-run-configs");
    for f in yaml_files(&dir) {
        let c = Config::load_paths(&[&f]).unwrap();
        let secrets =
            SecretSource::from_config(&c).with_env_lookup(|var| Some(format!("value-of-{var}")));
        c.check_secrets(&secrets)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let snap = Snapshot::compile_with_secrets(&c, &secrets)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if !c.ai_gateway_routes.is_empty() {
            let m = snap.route("any-model", &http::HeaderMap::new());
            assert!(m.is_ok(), "{}: {m:?}", f.display());
        }
    }
}

/// Every upstream example with all its secrets defined compiles into a snapshot.
#[test]
fn examples_compile_when_secrets_resolve() {
    for f in yaml_files(&fixture_dir()) {
        let c = Config::load_paths(&with_companion(&f)).unwrap();
        let secrets = SecretSource::from_config(&c)
            .with_env_fallback()
            .with_env_lookup(|var| Some(format!("value-of-{var}")));
        Snapshot::compile_with_secrets(&c, &secrets)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}

#[test]
fn directory_load_is_sorted_and_recursive() {
    let tmp = tempfile::tempdir().unwrap();
    let sub = tmp.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::copy(
        fixture_dir().join("basic__basic.yaml"),
        tmp.path().join("b.yaml"),
    )
    .unwrap();
    std::fs::copy(fixture_dir().join("basic__cohere.yaml"), sub.join("a.yml")).unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "not yaml").unwrap();
    let c = Config::load_paths(&[tmp.path()]).unwrap();
    assert_eq!(c.files.len(), 2);
    assert!(c.files[0].ends_with("b.yaml"));
    assert!(c.files[1].ends_with("a.yml"));
    let s = c.summaries();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].routes, 1);
    assert!(
        s[0].ignored.iter().any(|i| i.starts_with("GatewayClass/")),
        "{:?}",
        s[0].ignored
    );
}

/// A golden listing of what each upstream file contains, what is ignored and what is
/// reported as a warning; a change in how any document is read shows up here.
#[test]
fn upstream_summaries_golden() {
    let dir = fixture_dir();
    let mut out = String::new();
    for (path, c) in load_each(&dir) {
        let rel = path.strip_prefix(&dir).unwrap().display().to_string();
        let file = path.display().to_string();
        let s = c.summaries().into_iter().find(|s| s.file == file).unwrap();
        out.push_str(&format!(
            "{rel}: routes={} aiServiceBackends={} backends={} securityPolicies={} mcpRoutes={} \
             gatewayConfigs={} tlsPolicies={} trafficPolicies={} gateways={} secrets={}\n",
            s.routes,
            s.ai_service_backends,
            s.backends,
            s.security_policies,
            s.mcp_routes,
            s.gateway_configs,
            s.tls_policies,
            s.traffic_policies,
            s.gateways,
            s.secrets
        ));
        if !s.ignored.is_empty() {
            out.push_str(&format!("  ignored: {}\n", s.ignored.join(", ")));
        }
        for w in c.warnings() {
            if w.file == file {
                out.push_str(&format!(
                    "  warning: {}: {}: {}\n",
                    w.document, w.field, w.message
                ));
            }
        }
    }
    insta::assert_snapshot!(out);
}
