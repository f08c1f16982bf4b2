//! Upstream's filter configuration: every upstream example rendered into it as the
//! upstream controller does (golden YAML), read back, and compiled into the same
//! planner targets, costs and model lists as the CRD form of the same example.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use aigw_core::config::{Config, CredentialOverrideSource, SecretSource, SecurityPolicyKind};
use aigw_core::cost::CostInput;
use aigw_core::filterapi::{self, FilterConfig, Source, VersionPolicy};
use aigw_core::planner::{CredentialResolver, Inputs, Planner};
use aigw_core::routing::{Candidate, Snapshot};
use aigw_core::schema::ApiSchema;
use aigw_core::{Credential, CredentialMaterial, CredentialProvider, OutgoingRequest, TokenUsage};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/upstream")
}

/// Overlays applied on top of the file that defines what they reference.
const COMPANIONS: &[(&str, &str)] = &[
    ("basic__anthropic-openai-local.yaml", "basic__openai.yaml"),
    ("inference-pool__aigwroute.yaml", "basic__basic.yaml"),
    (
        "stream_idle_timeout__base.yaml",
        "stream_idle_timeout__backends.yaml",
    ),
];

fn examples() -> Vec<(String, Config)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let name = f.file_stem().unwrap().to_str().unwrap().to_owned();
            let mut paths = vec![f.clone()];
            let name = name.clone();
            if let Some((_, c)) = COMPANIONS.iter().find(|(n, _)| f.ends_with(n)) {
                paths.push(f.with_file_name(c));
            }
            let config = Config::load_paths(&paths).unwrap();
            // The controller's rotators keep minted credentials in `ai-eg-bsp-<policy>`;
            // add them as a running controller would have.
            let rotated = rotated_secrets(&config);
            if rotated.is_empty() {
                return (name, config);
            }
            let extra = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(extra.path(), rotated).unwrap();
            paths.push(extra.path().to_path_buf());
            (name, Config::load_paths(&paths).unwrap())
        })
        .collect()
}

fn rotated_secrets(config: &Config) -> String {
    let mut out = String::new();
    for p in &config.backend_security_policies {
        let key = if p.spec.azure_credentials.is_some() {
            "azureAccessToken"
        } else if p.spec.gcp_credentials.as_ref().is_some_and(|g| {
            g.credentials_file.is_some() || g.workload_identity_federation_config.is_some()
        }) {
            "gcpAccessToken"
        } else if p
            .spec
            .aws_credentials
            .as_ref()
            .is_some_and(|a| a.oidc_exchange_token.is_some())
        {
            "credentials"
        } else {
            continue;
        };
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: ai-eg-bsp-{}\n  namespace: {}\nstringData:\n  {key}: minted-{}\n",
            p.name(),
            p.namespace(),
            p.name()
        ));
    }
    out
}

#[derive(Debug)]
struct Stub(String);

#[async_trait::async_trait]
impl CredentialProvider for Stub {
    fn name(&self) -> &str {
        &self.0
    }
    async fn credential(&self) -> aigw_core::Result<Credential> {
        Ok(Credential::long_lived(CredentialMaterial::None))
    }
    fn apply(&self, _: &Credential, _: &mut OutgoingRequest) -> aigw_core::Result<()> {
        Ok(())
    }
}

fn stub_resolver() -> CredentialResolver {
    Arc::new(|p| Ok(Arc::new(Stub(p.name.clone())) as Arc<dyn CredentialProvider>))
}

fn inputs<'a>(
    secrets: &'a SecretSource,
    credentials: &'a CredentialResolver,
    limits: &'a aigw_core::limits::RateLimits,
) -> Inputs<'a> {
    Inputs {
        secrets,
        credentials,
        providers: None,
        limits,
    }
}

/// What a candidate means to the data plane, with the filter format's own spellings
/// normalised: OpenAI/Anthropic carry only a prefix (`v1` by default), the others only
/// a version; credential-override input headers are removed by the data plane either
/// way; rotated credentials (Azure, GCP) arrive as tokens.
fn meaning(c: &Candidate) -> String {
    let s = &c.target.schema;
    let (version, prefix) = match s.name {
        ApiSchema::OpenAI | ApiSchema::Anthropic => (
            None,
            s.prefix.clone().filter(|p| !p.is_empty() && p != "v1"),
        ),
        _ => (s.version.clone(), None),
    };
    let mut remove: Vec<&String> = c
        .header_mutation
        .remove
        .iter()
        .filter(|h| !h.starts_with("x-aigw-"))
        .collect();
    remove.sort();
    let mut set = c.header_mutation.set.clone();
    set.sort();
    let mut body = c.body_mutation.set.clone();
    body.sort_by(|a, b| a.0.cmp(&b.0));
    let mut body_remove = c.body_mutation.remove.clone();
    body_remove.sort();
    let auth = c.target.security_policy.as_deref().map(|p| {
        let kind = match &p.kind {
            SecurityPolicyKind::APIKey { key }
            | SecurityPolicyKind::AzureAPIKey { key }
            | SecurityPolicyKind::AnthropicAPIKey { key } => {
                format!("{} {}", p.kind.type_name(), key.expose())
            }
            SecurityPolicyKind::AWSCredentials {
                region,
                credentials_file,
                ..
            } => format!(
                "AWS {region} file={}",
                credentials_file.as_ref().map_or("", |f| f.expose())
            ),
            SecurityPolicyKind::GCPCredentials {
                project, region, ..
            } => format!("GCP {project:?} {region:?}"),
            other => other.type_name().to_owned(),
        };
        let over = p.credential_override.as_ref().map(|o| {
            let src = match &o.source {
                CredentialOverrideSource::RequestHeader(h) => format!("header {h}"),
                CredentialOverrideSource::DynamicMetadata { namespace, key } => {
                    format!("metadata {namespace}/{key}")
                }
            };
            format!("{src} fallback={}", o.fallback_to_configured)
        });
        format!("{kind} override={over:?}")
    });
    format!(
        "schema={:?} version={version:?} prefix={prefix:?} override={:?} headers={set:?}-{remove:?} body={body:?}-{body_remove:?} auth={auth:?}",
        s.name, c.model_name_override
    )
}

fn candidates(s: &Snapshot) -> BTreeMap<String, String> {
    s.rules()
        .flat_map(|r| r.groups.iter().flat_map(|g| &g.candidates))
        .map(|c| (c.backend_name.clone(), meaning(c)))
        .collect()
}

fn model_view(models: &[&aigw_core::routing::ModelInfo]) -> Vec<(String, String, u64)> {
    let mut v: Vec<_> = models
        .iter()
        .map(|m| (m.id.clone(), m.owned_by.clone(), m.created))
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn upstream_examples_render_load_and_route_alike() {
    let resolver = stub_resolver();
    let limits = aigw_core::limits::RateLimits::default();
    let mut compared = 0;
    for (name, config) in examples() {
        // `${VAR}` references resolve to a stand-in, the same on both paths.
        let secrets =
            SecretSource::from_config(&config).with_env_lookup(|var| Some(format!("env:{var}")));
        let (rendered, warnings) = filterapi::render(&config, &secrets, "v1.1.0", "golden");
        let yaml = rendered.to_yaml().unwrap();
        insta::assert_snapshot!(
            format!("filter_config__{name}"),
            format!("# warnings: {warnings:?}\n{yaml}")
        );

        // Read back from the YAML text, as the ExtProc reads the Secret.
        let back = filterapi::parse(&yaml, &name).unwrap();
        assert_eq!(back, rendered, "{name}: YAML round trip");

        let crd = Snapshot::compile_with_secrets(&config, &secrets).unwrap();
        let filter = Snapshot::assemble(back.assemble().unwrap());
        let (crd_c, filter_c) = (candidates(&crd), candidates(&filter));
        // Every backend the controller renders means the same on both paths; those it
        // skips (rotated credentials not in the example) are named in the warnings.
        for (backend, want) in &crd_c {
            match filter_c.get(backend) {
                Some(got) if rendered.backends.iter().any(|b| b.name == *backend) => {
                    if want.contains("AzureCredentials") || want.contains("GCP") {
                        assert_eq!(
                            want.split(" auth=").next(),
                            got.split(" auth=").next(),
                            "{name}: {backend}"
                        );
                    } else {
                        assert_eq!(want, got, "{name}: {backend}");
                    }
                }
                _ => assert!(
                    !warnings.is_empty(),
                    "{name}: {backend} missing from the filter form without a warning"
                ),
            }
        }
        // InferencePool refs are only in the filter form (the CRD snapshot asks the
        // endpoint picker): nothing else is extra.
        for backend in filter_c.keys() {
            assert!(
                crd_c.contains_key(backend)
                    || config.ai_gateway_routes.iter().any(|r| r
                        .spec
                        .rules
                        .iter()
                        .flat_map(|r| &r.backend_refs)
                        .any(
                            |b| b.is_inference_pool() && backend.contains(&format!("/{}/", b.name))
                        )),
                "{name}: unexpected {backend}"
            );
        }

        // The same models for every host.
        let hosts: Vec<Option<&str>> = std::iter::once(None)
            .chain(
                config
                    .ai_gateway_routes
                    .iter()
                    .flat_map(|r| r.spec.hostnames.iter().map(|h| Some(h.as_str()))),
            )
            .chain([Some("unknown.example")])
            .collect();
        for host in hosts {
            assert_eq!(
                model_view(&crd.models(host)),
                model_view(&filter.models(host)),
                "{name}: models on {host:?}"
            );
        }

        // The same costs per route.
        let crd_p = Planner::compile(&config, inputs(&secrets, &resolver, &limits)).unwrap();
        let filter_p = rendered
            .planner(inputs(&secrets, &resolver, &limits))
            .unwrap();
        let usage = TokenUsage {
            input: Some(11),
            cached_input: Some(3),
            cache_creation_input: Some(2),
            output: Some(7),
            total: Some(18),
            reasoning: Some(1),
            ..TokenUsage::default()
        };
        for route in crd.route_names() {
            let input = CostInput {
                model: "m",
                backend: "ns/b/route/r/rule/0/ref/0",
                route_name: route,
                usage: &usage,
            };
            let eval = |p: &Planner| {
                let mut v = p
                    .route_costs(route)
                    .map(|c| c.evaluate(&input))
                    .unwrap_or_default();
                v.sort();
                v
            };
            assert_eq!(eval(&crd_p), eval(&filter_p), "{name}: costs of {route}");
        }
        for (backend, _) in crd_p.targets() {
            if rendered.backends.iter().any(|b| b.name == backend) {
                let (a, b) = (
                    crd_p.target(backend).unwrap(),
                    filter_p.target(backend).unwrap(),
                );
                assert_eq!(a.model_override, b.model_override, "{name}: {backend}");
                assert_eq!(
                    a.credential.is_some(),
                    b.credential.is_some(),
                    "{name}: {backend}"
                );
            }
        }
        compared += 1;
    }
    assert!(compared >= 25, "examples compared: {compared}");
}

const DATA_PLANE: &str = r#"
version: v1.1.0
uuid: 5e1ab3a4-0000-4000-8000-000000000001
globalLLMRequestCosts:
  - metadataKey: used_token
    type: TotalToken
llmRequestCosts:
  - metadataKey: used_token
    routeName: test-ns/openai-route
    type: OutputToken
  - metadataKey: some_cel
    routeName: test-ns/openai-route
    type: CEL
    cel: "input_tokens + output_tokens * 2u"
  - metadataKey: quota
    routeName: test-ns/openai-route
    type: InputToken
    backend: test-ns/openai
    model: gpt-4o-mini
backends:
  - name: openai
    schema: {name: OpenAI, prefix: v1}
    auth: {apiKey: {key: sk-test}}
  - name: test-ns/openai/route/openai-route/rule/0/ref/0
    schema: {name: OpenAI, prefix: v1}
    modelNameOverride: gpt-5-nano
    httpHeaderMutation:
      set: [{name: x-team, value: blue}]
      remove: [x-drop]
    httpBodyMutation:
      set: [{path: service_tier, value: '"flex"'}]
      remove: [user]
  - name: azure-openai
    schema: {name: AzureOpenAI, version: 2024-12-01-preview}
    auth: {azure: {accessToken: eyJ0}}
  - name: azure-key
    schema: {name: AzureOpenAI, version: 2024-12-01-preview}
    auth: {azureAPIKey: {key: az-key}}
  - name: aws-bedrock
    schema: {name: AWSBedrock}
    auth:
      aws:
        credentialFileLiteral: "[default]\naws_access_key_id = AKID\naws_secret_access_key = SECRET\n"
        region: us-east-1
  - name: aws-irsa
    schema: {name: AWSBedrock}
    auth: {aws: {region: eu-west-1}}
  - name: gcp-vertexai
    schema: {name: GCPVertexAI}
    auth: {gcp: {accessToken: ya29.t, region: us-central1, projectName: p}}
  - name: gcp-adc
    schema: {name: GCPAnthropic, version: vertex-2023-10-16}
    auth: {gcp: {accessToken: "", region: us-east5, projectName: p}}
  - name: anthropic
    schema: {name: Anthropic}
    auth:
      anthropicAPIKey: {key: ant-key}
      credentialOverride:
        headerName: x-aigw-anthropic-api-key
        fallbackToConfigured: true
        inputHeadersToRemove: [x-aigw-anthropic-api-key]
  - name: from-metadata
    schema: {name: OpenAI}
    auth:
      apiKey: {key: k}
      credentialOverride:
        dynamicMetadataNamespace: envoy.filters.http.ext_authz
        dynamicMetadataKey: x-aigw-api-key
        fallbackToConfigured: false
models:
  - Name: gpt-4o-mini
    OwnedBy: openai
    CreatedAt: "2025-01-01T00:00:00Z"
  - name: claude
modelsByHost:
  a.example:
    - {Name: only-a, OwnedBy: x, CreatedAt: "0001-01-01T00:00:00Z"}
    - {Name: claude}
unscopedModels:
  - {Name: claude}
mcpConfig:
  backendListenerAddr: http://127.0.0.1:10088
  routes: [{name: default/mcp, backends: [{name: github}]}]
"#;

#[test]
fn every_auth_variant_and_scope_is_read() {
    let c = filterapi::parse(DATA_PLANE, "filter-config.yaml").unwrap();
    assert!(c.warnings().is_empty());
    assert_eq!(c.mcp_route_names(), ["default/mcp"]);
    let a = c.assemble().unwrap();
    let s = Snapshot::assemble(a);
    let cand = candidates(&s);
    insta::assert_snapshot!(
        "filter_config__every_variant",
        cand.iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Models: host-scoped on their host only, unscoped everywhere.
    let ids = |h| {
        let mut v: Vec<String> = s.models(h).iter().map(|m| m.id.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(ids(Some("a.example")), ["claude", "only-a"]);
    assert_eq!(ids(Some("b.example")), ["claude"]);

    // Costs: route-scoped win per key, scoped entries only when in scope, global for
    // other routes.
    let resolver = stub_resolver();
    let limits = aigw_core::limits::RateLimits::default();
    let secrets = SecretSource::default();
    let p = c.planner(inputs(&secrets, &resolver, &limits)).unwrap();
    let usage = TokenUsage {
        input: Some(10),
        output: Some(5),
        total: Some(15),
        ..TokenUsage::default()
    };
    let eval = |route: &str, backend: &str, model: &str| {
        let input = CostInput {
            model,
            backend,
            route_name: route,
            usage: &usage,
        };
        let mut v = p.route_costs(route).unwrap().evaluate(&input);
        v.sort();
        v
    };
    let route = "test-ns/openai-route";
    assert_eq!(
        eval(
            route,
            "test-ns/openai/route/openai-route/rule/0/ref/0",
            "gpt-4o-mini"
        ),
        [
            ("quota".into(), 10),
            ("some_cel".into(), 20),
            ("used_token".into(), 5)
        ]
    );
    assert_eq!(
        eval(
            route,
            "other/b/route/openai-route/rule/0/ref/1",
            "gpt-4o-mini"
        ),
        [("some_cel".into(), 20), ("used_token".into(), 5)]
    );
    assert_eq!(
        eval("other/route", "openai", "m"),
        [("used_token".into(), 15)]
    );
    assert!(p.has_costs());
    assert!(p.target("openai").is_some());
    assert!(p.target("nope").is_none());
}

#[test]
fn errors_name_the_field() {
    let bad = |yaml: &str| {
        filterapi::parse(yaml, "f.yaml")
            .and_then(|c| c.assemble().map(|_| ()))
            .unwrap_err()
            .to_string()
    };
    let e = bad("backends:\n  - name: x\n    schema: {name: OpenAI}\n    bogus: 1\n");
    assert!(e.contains("bogus"), "{e}");
    let e = bad("backends:\n  - name: x\n    schema: {name: Klingon}\n");
    assert!(
        e.contains("backends[0] (x).schema.name") && e.contains("Klingon"),
        "{e}"
    );
    let e = bad(
        "backends:\n  - name: x\n    schema: {name: OpenAI}\n    auth: {apiKey: {key: a}, azureAPIKey: {key: b}}\n",
    );
    assert!(e.contains("exactly one"), "{e}");
    assert!(
        !e.contains("\"a\"") && !e.contains(" a "),
        "no secret in errors: {e}"
    );
    let e = bad("llmRequestCosts:\n  - metadataKey: k\n    type: OutputToken\n");
    assert!(e.contains("routeName"), "{e}");
    let e = bad("globalLLMRequestCosts:\n  - metadataKey: k\n    type: CEL\n    cel: 'nope +'\n");
    assert!(e.contains("globalLLMRequestCosts[0].cel"), "{e}");
}

#[test]
fn version_mismatch_and_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("filter-config.yaml");
    std::fs::write(&file, "version: v1.2.0\nbackends: []\n").unwrap();
    let e = filterapi::load(&Source::File(file.clone()), &VersionPolicy::default()).unwrap_err();
    assert!(e.to_string().contains("config version mismatch"), "{e}");
    assert!(filterapi::load(&Source::File(file), &VersionPolicy::Any).is_ok());

    // A bundle: parts concatenated in index order, checked by SHA-256.
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(bundle.join("parts")).unwrap();
    let (p1, p2) = DATA_PLANE.split_at(DATA_PLANE.len() / 2);
    std::fs::write(bundle.join("parts/000"), p1).unwrap();
    std::fs::write(bundle.join("parts/001"), p2).unwrap();
    let index = |sum: &str| {
        format!(
            "version: v1.1.0\nuuid: u\nchecksum: \"{sum}\"\nparts:\n  - name: filter-config-000\n    path: parts/000\n  - name: filter-config-001\n    path: parts/001\n"
        )
    };
    std::fs::write(bundle.join("index.yaml"), index(&"0".repeat(64))).unwrap();
    let src = Source::Bundle(bundle.clone());
    let e = filterapi::load(&src, &VersionPolicy::default()).unwrap_err();
    assert!(e.to_string().contains("checksum mismatch"), "{e}");
    std::fs::write(
        bundle.join("index.yaml"),
        index(&filterapi::bundle_checksum(DATA_PLANE.as_bytes())),
    )
    .unwrap();
    let loaded = filterapi::load(&src, &VersionPolicy::default()).unwrap();
    assert_eq!(loaded.config.backends.len(), 10);
    assert_eq!(src.files().len(), 3);
    // A part path may not leave the bundle.
    std::fs::write(
        bundle.join("index.yaml"),
        "checksum: abc\nparts:\n  - {name: x, path: ../x}\n",
    )
    .unwrap();
    assert!(filterapi::load(&src, &VersionPolicy::Any).is_err());
}

#[test]
fn secrets_stay_out_of_debug() {
    let c: FilterConfig = filterapi::parse(DATA_PLANE, "f").unwrap();
    let d = format!("{c:?}");
    for s in ["sk-test", "eyJ0", "az-key", "SECRET", "ya29.t", "ant-key"] {
        assert!(!d.contains(s), "{s} leaked");
    }
}
