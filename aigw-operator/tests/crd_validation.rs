//! The generated CRDs accept what the loader accepts and reject what it rejects: every
//! upstream example manifest validates against them (after the API server's defaulting),
//! and each invalid manifest of the loader's own tests that a CRD rule covers is
//! rejected by both, with the CRD's message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aigw_core::config::Config;
use aigw_operator::crd::{self, KINDS};
use aigw_operator::validate::{Violation, check};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/envoy-ai-gateway-manifests")
}

/// The schema of `kind` in `version`, from our generated CRD.
fn schema_for(kind: &str, api_version: &str) -> Option<Value> {
    let (group, version) = api_version.split_once('/')?;
    if group != crd::GROUP {
        return None;
    }
    static CRDS: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    let crds = CRDS.get_or_init(|| crd::all().unwrap());
    let i = KINDS.iter().position(|k| k.kind == kind)?;
    crds[i]["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == version)
        .map(|v| v["schema"]["openAPIV3Schema"].clone())
}

/// Every violation of every `aigateway.envoyproxy.io` document in `yaml`.
fn crd_violations(yaml: &str) -> Vec<(String, Violation)> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).unwrap();
    let mut out = Vec::new();
    for doc in docs.iter().filter(|d| !d.is_null()) {
        let kind = doc["kind"].as_str().unwrap_or_default();
        let api = doc["apiVersion"].as_str().unwrap_or_default();
        if let Some(schema) = schema_for(kind, api) {
            let name = doc["metadata"]["name"].as_str().unwrap_or_default();
            for v in check(&schema, doc) {
                out.push((format!("{kind}/{name}"), v));
            }
        }
    }
    out
}

#[test]
fn every_upstream_example_validates_against_the_generated_crds() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(manifests_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() > 20, "the upstream examples are missing");
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        checked += docs
            .iter()
            .filter(|d| {
                d["apiVersion"]
                    .as_str()
                    .is_some_and(|a| a.starts_with(crd::GROUP))
            })
            .count();
        for (doc, v) in crd_violations(&text) {
            failures.push(format!("{}: {doc}: {v}", file.display()));
        }
    }
    assert!(checked > 50, "only {checked} documents checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A valid configuration the cases break one piece at a time (as the loader's tests do).
const BASE: &str = r#"
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata:
  name: route
  namespace: default
spec:
  parentRefs:
    - name: gw
      kind: Gateway
      group: gateway.networking.k8s.io
  rules:
    - name: main
      matches:
        - headers:
            - type: Exact
              name: x-ai-eg-model
              value: gpt-4o
      backendRefs:
        - name: openai
          weight: 1
        - name: openai
          priority: 1
      timeouts:
        request: 60s
#RULES
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata:
  name: openai
  namespace: default
spec:
  schema:
    name: OpenAI
  backendRef:
    name: openai
    kind: Backend
    group: gateway.envoyproxy.io
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata:
  name: openai
  namespace: default
spec:
  endpoints:
    - fqdn:
        hostname: api.openai.com
        port: 443
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: BackendSecurityPolicy
metadata:
  name: openai-key
  namespace: default
spec:
  targetRefs:
    - group: aigateway.envoyproxy.io
      kind: AIServiceBackend
      name: openai
  type: APIKey
  apiKey:
    secretRef:
      name: openai-key
#BSP
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: MCPRoute
metadata:
  name: mcp
  namespace: default
spec:
  parentRefs:
    - name: gw
      kind: Gateway
      group: gateway.networking.k8s.io
  backendRefs:
    - name: openai
      kind: Backend
      group: gateway.envoyproxy.io
#MCP
---
apiVersion: v1
kind: Secret
metadata:
  name: openai-key
  namespace: default
type: Opaque
stringData:
  apiKey: sk-test
"#;

fn base() -> String {
    BASE.replace("#RULES\n", "")
        .replace("#BSP\n", "")
        .replace("#MCP\n", "")
}

fn with(marker: &str, text: &str) -> String {
    BASE.replace(marker, text)
        .replace("#RULES\n", "")
        .replace("#BSP\n", "")
        .replace("#MCP\n", "")
}

fn replaced(from: &str, to: &str) -> String {
    let b = base();
    assert!(b.contains(from), "{from:?} not in BASE");
    b.replace(from, to)
}

#[test]
fn the_base_is_valid_for_both() {
    Config::from_yaml_str(&base(), "gw.yaml").unwrap();
    assert_eq!(crd_violations(&base()), vec![]);
}

#[test]
fn invalid_manifests_are_rejected_by_the_loader_and_the_crds() {
    let rule = "    - backendRefs:\n        - name: openai\n";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "sixteen rules",
            with("#RULES\n", &rule.repeat(15)),
            "Too many: 16: must have at most 15 items",
        ),
        (
            "reserved rule name",
            with(
                "#RULES\n",
                "    - name: route-not-found\n      backendRefs:\n        - name: openai\n",
            ),
            "rule name route-not-found is reserved",
        ),
        (
            "duplicate rule names",
            with(
                "#RULES\n",
                "    - name: main\n      backendRefs:\n        - name: openai\n",
            ),
            "rule name must be unique within the route",
        ),
        (
            "parent not a Gateway",
            replaced(
                "      kind: Gateway\n      group: gateway.networking.k8s.io\n  rules",
                "      kind: Service\n      group: gateway.networking.k8s.io\n  rules",
            ),
            "only Gateway is supported",
        ),
        (
            "negative weight",
            replaced("          weight: 1\n", "          weight: -1\n"),
            "should be greater than or equal to 0",
        ),
        (
            "negative priority",
            replaced("          priority: 1\n", "          priority: -3\n"),
            "should be greater than or equal to 0",
        ),
        (
            "pool mixed with a backend",
            with(
                "#RULES\n",
                "    - backendRefs:\n        - name: pool\n          group: inference.networking.k8s.io\n          kind: InferencePool\n        - name: openai\n",
            ),
            "cannot mix InferencePool and AIServiceBackend references in the same rule",
        ),
        (
            "two pools",
            with(
                "#RULES\n",
                "    - backendRefs:\n        - name: a\n          group: inference.networking.k8s.io\n          kind: InferencePool\n        - name: b\n          group: inference.networking.k8s.io\n          kind: InferencePool\n",
            ),
            "only one InferencePool backend is allowed per rule",
        ),
        (
            "group without kind",
            with(
                "#RULES\n",
                "    - backendRefs:\n        - name: a\n          group: inference.networking.k8s.io\n",
            ),
            "group and kind must be specified together",
        ),
        (
            "pool of another group",
            with(
                "#RULES\n",
                "    - backendRefs:\n        - name: a\n          group: core\n          kind: Service\n",
            ),
            "only InferencePool from inference.networking.k8s.io group is supported",
        ),
        (
            "bad duration",
            replaced("        request: 60s\n", "        request: soon\n"),
            "should match",
        ),
        (
            "backend not an EG Backend",
            replaced(
                "    kind: Backend\n    group: gateway.envoyproxy.io\n---\napiVersion: gateway",
                "    kind: Service\n    group: ''\n---\napiVersion: gateway",
            ),
            "BackendRef must be a Backend resource of Envoy Gateway",
        ),
        (
            "type and field disagree",
            replaced(
                "  type: APIKey\n  apiKey:\n",
                "  type: AWSCredentials\n  apiKey:\n",
            ),
            "When type is AWSCredentials, only awsCredentials field should be set",
        ),
        (
            "two credential fields",
            with(
                "#BSP\n",
                "  anthropicAPIKey:\n    secretRef:\n      name: openai-key\n",
            ),
            "When type is APIKey, only apiKey field should be set",
        ),
        (
            "unknown policy type",
            replaced("  type: APIKey\n", "  type: Password\n"),
            "Unsupported value: \"Password\"",
        ),
        (
            "policy targets a Backend",
            replaced(
                "    - group: aigateway.envoyproxy.io\n      kind: AIServiceBackend\n",
                "    - group: gateway.envoyproxy.io\n      kind: Backend\n",
            ),
            "targetRefs must reference AIServiceBackend or InferencePool resources",
        ),
        (
            "empty credential override",
            with("#BSP\n", "  credentialOverride: {}\n"),
            "should have at least 1 properties",
        ),
        (
            "tool selector include and includeRegex",
            with(
                "#MCP\n",
                "      toolSelector:\n        include: [a]\n        includeRegex: ['a.*']\n",
            ),
            "include and includeRegex are mutually exclusive",
        ),
        (
            "empty tool selector",
            with("#MCP\n", "      toolSelector: {}\n"),
            "at least one of include, includeRegex, exclude, or excludeRegex must be specified",
        ),
        (
            "MCP key inline and secretRef",
            with(
                "#MCP\n",
                "      securityPolicy:\n        apiKey:\n          inline: k\n          secretRef:\n            name: openai-key\n",
            ),
            "exactly one of secretRef or inline must be set",
        ),
        (
            "MCP key header and queryParam",
            with(
                "#MCP\n",
                "      securityPolicy:\n        apiKey:\n          inline: k\n          header: x-key\n          queryParam: key\n",
            ),
            "only one of header or queryParam can be set",
        ),
        (
            "unknown field",
            replaced(
                "  schema:\n    name: OpenAI\n",
                "  schema:\n    name: OpenAI\n    flavour: x\n",
            ),
            "unknown field",
        ),
    ];
    let mut problems = Vec::new();
    for (name, yaml, crd_message) in &cases {
        if Config::from_yaml_str(yaml, "gw.yaml").is_ok() {
            problems.push(format!("{name}: the loader accepts it"));
        }
        let violations = crd_violations(yaml);
        if !violations
            .iter()
            .any(|(_, v)| v.message.contains(crd_message))
        {
            problems.push(format!(
                "{name}: no CRD violation containing {crd_message:?}; got {violations:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
