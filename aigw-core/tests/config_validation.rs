//! Every validation rule rejects a bad manifest with the file, the document and the
//! field path, and all issues are reported together.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aigw_core::Error;
use aigw_core::config::{Config, SecretSource};
use aigw_core::error::ConfigIssue;

const FILE: &str = "gw.yaml";

/// A valid configuration the cases below break one piece at a time.
const BASE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: default
spec:
  gatewayClassName: eg
  listeners:
    - name: http
      protocol: HTTP
      port: 1975
---
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
#RULES
  llmRequestCosts:
    - metadataKey: llm_total_token
      type: TotalToken
#COSTS
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

fn issues(yaml: &str) -> Vec<ConfigIssue> {
    match Config::from_yaml_str(yaml, FILE) {
        Ok(_) => panic!("expected the configuration to be rejected:\n{yaml}"),
        Err(Error::InvalidConfig { issues }) => issues,
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// Asserts one issue names the document and field, and its message contains `text`.
#[track_caller]
fn has(issues: &[ConfigIssue], document: &str, field: &str, text: &str) {
    let found = issues.iter().any(|i| {
        i.file == FILE && i.document == document && i.field == field && i.message.contains(text)
    });
    assert!(
        found,
        "no issue {document} {field} containing {text:?} in:\n{}",
        issues
            .iter()
            .map(|i| format!("  {i}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

const ROUTE: &str = "AIGatewayRoute/default/route";
const BSP: &str = "BackendSecurityPolicy/default/openai-key";

fn with_rules(extra: &str) -> String {
    BASE.replace("#RULES", extra)
}

fn replace(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} not in BASE");
    BASE.replace(from, to)
}

#[test]
fn base_is_valid_in_both_versions() {
    let c = Config::from_yaml_str(BASE, FILE).unwrap();
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    let alpha = BASE.replace(
        "aigateway.envoyproxy.io/v1beta1",
        "aigateway.envoyproxy.io/v1alpha1",
    );
    let c = Config::from_yaml_str(&alpha, FILE).unwrap();
    assert_eq!(
        c.ai_gateway_routes[0].api_version,
        "aigateway.envoyproxy.io/v1alpha1"
    );
}

#[test]
fn unsupported_version_rejected() {
    let yaml = replace(
        "apiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIServiceBackend",
        "apiVersion: aigateway.envoyproxy.io/v2\nkind: AIServiceBackend",
    );
    has(
        &issues(&yaml),
        "AIServiceBackend/default/openai",
        "apiVersion",
        "unsupported version",
    );
}

#[test]
fn unknown_fields_rejected_with_path() {
    let yaml = replace(
        "          weight: 1\n",
        "          weight: 1\n          wieght: 2\n",
    );
    let i = issues(&yaml);
    has(
        &i,
        ROUTE,
        "spec.rules[0].backendRefs[0].wieght",
        "unknown field",
    );
    // The message lists what is allowed.
    has(&i, ROUTE, "spec.rules[0].backendRefs[0].wieght", "weight");

    let yaml = replace(
        "  schema:\n    name: OpenAI\n",
        "  schema:\n    name: OpenAI\n    flavour: x\n",
    );
    has(
        &issues(&yaml),
        "AIServiceBackend/default/openai",
        "spec.schema.flavour",
        "unknown field",
    );

    let yaml = replace(
        "  name: gw\n  namespace: default\n",
        "  name: gw\n  namespace: default\n  labelz: {}\n",
    );
    has(
        &issues(&yaml),
        "Gateway/default/gw",
        "metadata.labelz",
        "unknown field",
    );

    let yaml = replace("type: Opaque\n", "type: Opaque\nextra: 1\n");
    has(
        &issues(&yaml),
        "Secret/default/openai-key",
        "extra",
        "unknown field",
    );
}

#[test]
fn wrong_type_names_field() {
    let yaml = replace("          weight: 1\n", "          weight: heavy\n");
    has(
        &issues(&yaml),
        ROUTE,
        "spec.rules[0].backendRefs[0].weight",
        "invalid type",
    );
}

#[test]
fn missing_required_field() {
    let yaml = replace("  schema:\n    name: OpenAI\n", "");
    has(
        &issues(&yaml),
        "AIServiceBackend/default/openai",
        "spec.schema",
        "required field is missing",
    );
}

#[test]
fn at_most_fifteen_rules() {
    let rule = "    - backendRefs:\n        - name: openai\n";
    let yaml = with_rules(&rule.repeat(15));
    has(&issues(&yaml), ROUTE, "spec.rules", "at most 15 rules");
    // Fifteen is fine.
    Config::from_yaml_str(&with_rules(&rule.repeat(14)), FILE).unwrap();
}

#[test]
fn at_most_128_backend_refs() {
    let refs = "        - name: openai\n".repeat(129);
    let yaml = with_rules(&format!("    - backendRefs:\n{refs}"));
    has(
        &issues(&yaml),
        ROUTE,
        "spec.rules[1].backendRefs",
        "at most 128 backendRefs",
    );
}

#[test]
fn rule_names_unique_and_not_reserved() {
    let yaml = with_rules(
        "    - name: main\n      backendRefs:\n        - name: openai\n    - name: route-not-found\n      backendRefs:\n        - name: openai\n",
    );
    let i = issues(&yaml);
    has(
        &i,
        ROUTE,
        "spec.rules[1].name",
        "already used by spec.rules[0]",
    );
    has(&i, ROUTE, "spec.rules[2].name", "reserved");
}

#[test]
fn parent_refs_only_gateway() {
    let yaml = replace(
        "      kind: Gateway\n      group: gateway.networking.k8s.io\n",
        "      kind: Service\n      group: gateway.networking.k8s.io\n",
    );
    has(
        &issues(&yaml),
        ROUTE,
        "spec.parentRefs[0].kind",
        "only Gateway is supported",
    );
}

#[test]
fn negative_weight_and_priority_rejected() {
    let yaml = replace("          weight: 1\n", "          weight: -1\n");
    has(
        &issues(&yaml),
        ROUTE,
        "spec.rules[0].backendRefs[0].weight",
        "between 0 and",
    );
    let yaml = replace("          priority: 1\n", "          priority: -3\n");
    has(
        &issues(&yaml),
        ROUTE,
        "spec.rules[0].backendRefs[1].priority",
        "0 or greater",
    );
}

#[test]
fn inference_pool_rules() {
    // Mixed with an AIServiceBackend.
    let yaml = with_rules(
        "    - backendRefs:\n        - name: pool\n          group: inference.networking.k8s.io\n          kind: InferencePool\n        - name: openai\n",
    );
    has(
        &issues(&yaml),
        ROUTE,
        "spec.rules[1].backendRefs",
        "cannot mix InferencePool and AIServiceBackend",
    );
    // Two pools.
    let yaml = with_rules(
        "    - backendRefs:\n        - name: a\n          group: inference.networking.k8s.io\n          kind: InferencePool\n        - name: b\n          group: inference.networking.k8s.io\n          kind: InferencePool\n",
    );
    has(
        &issues(&yaml),
        ROUTE,
        "spec.rules[1].backendRefs",
        "only one InferencePool",
    );
    // Group without kind.
    let yaml = with_rules(
        "    - backendRefs:\n        - name: a\n          group: inference.networking.k8s.io\n",
    );
    has(
        &issues(&yaml),
        ROUTE,
        "spec.rules[1].backendRefs[0]",
        "group and kind must be specified together",
    );
    // Other kinds.
    let yaml = with_rules(
        "    - backendRefs:\n        - name: a\n          group: core\n          kind: Service\n",
    );
    has(
        &issues(&yaml),
        ROUTE,
        "spec.rules[1].backendRefs[0].group",
        "only InferencePool",
    );
}

#[test]
fn inference_pool_backend_refs_warn_where_no_endpoint_picker_serves_them() {
    let yaml = with_rules(
        "    - name: pool-rule\n      backendRefs:\n        - name: vllm-pool\n          group: inference.networking.k8s.io\n          kind: InferencePool\n",
    ) + "---\napiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata:\n  name: vllm-pool\n  namespace: default\nspec:\n  targetPorts:\n    - number: 8000\n  selector:\n    matchLabels:\n      app: vllm\n  endpointPickerRef:\n    name: vllm-epp\n    port:\n      number: 9002\n";
    let config = Config::from_yaml_str(&yaml, FILE).unwrap();
    // The pool is defined: not a reference warning (the ExtProc behind Envoy serves it).
    assert!(
        config
            .warnings()
            .iter()
            .all(|w| !w.message.contains("vllm-pool")),
        "{:?}",
        config.warnings()
    );
    let pools = config.inference_pool_warnings("by this packaging");
    assert_eq!(pools.len(), 1, "{pools:?}");
    has(
        &pools,
        ROUTE,
        "spec.rules[1].backendRefs[0]",
        "InferencePool default/vllm-pool of AIGatewayRoute default/route rule 1 (pool-rule) is not served",
    );
    let line = pools[0].line.expect("located");
    assert_eq!(
        yaml.lines().nth(line - 1).map(str::trim),
        Some("- name: vllm-pool"),
        "{}",
        pools[0]
    );
    // Without pools, nothing to say.
    let plain = Config::from_yaml_str(BASE, FILE).unwrap();
    assert!(
        plain
            .inference_pool_warnings("by this packaging")
            .is_empty()
    );
}

#[test]
fn header_match_regex_must_compile() {
    let yaml = with_rules(
        "    - matches:\n        - headers:\n            - type: RegularExpression\n              name: x-ai-eg-model\n              value: 'gpt-(4'\n      backendRefs:\n        - name: openai\n",
    );
    has(
        &issues(&yaml),
        ROUTE,
        "spec.rules[1].matches[0].headers[0].value",
        "invalid regular expression",
    );
}

#[test]
fn timeouts_must_parse() {
    let yaml = with_rules(
        "    - backendRefs:\n        - name: openai\n      timeouts:\n        request: soon\n      streamIdleTimeout: 5x\n",
    );
    let i = issues(&yaml);
    has(
        &i,
        ROUTE,
        "spec.rules[1].timeouts.request",
        "invalid duration",
    );
    has(
        &i,
        ROUTE,
        "spec.rules[1].streamIdleTimeout",
        "invalid duration",
    );
}

#[test]
fn mutations_validated() {
    let yaml = with_rules(
        "    - backendRefs:\n        - name: openai\n          headerMutation:\n            set:\n              - name: 'bad header'\n                value: x\n          bodyMutation:\n            set:\n              - path: service_tier\n                value: scale\n",
    );
    let i = issues(&yaml);
    has(
        &i,
        ROUTE,
        "spec.rules[1].backendRefs[0].headerMutation.set[0].name",
        "not a valid header name",
    );
    has(
        &i,
        ROUTE,
        "spec.rules[1].backendRefs[0].bodyMutation.set[0].value",
        "must be JSON",
    );
}

#[test]
fn route_to_missing_backend_names_both_ends() {
    let yaml = replace(
        "        - name: openai\n          weight: 1\n",
        "        - name: nope\n          weight: 1\n",
    );
    let i = issues(&yaml);
    has(
        &i,
        ROUTE,
        "spec.rules[0].backendRefs[0].name",
        "AIServiceBackend default/nope",
    );
    has(
        &i,
        ROUTE,
        "spec.rules[0].backendRefs[0].name",
        "AIGatewayRoute default/route",
    );
}

#[test]
fn backend_to_missing_eg_backend_names_both_ends() {
    let yaml = replace(
        "  backendRef:\n    name: openai\n",
        "  backendRef:\n    name: gone\n",
    );
    let i = issues(&yaml);
    has(
        &i,
        "AIServiceBackend/default/openai",
        "spec.backendRef.name",
        "Backend default/gone",
    );
    has(
        &i,
        "AIServiceBackend/default/openai",
        "spec.backendRef.name",
        "AIServiceBackend default/openai",
    );
}

#[test]
fn backend_ref_must_be_eg_backend() {
    let yaml = replace(
        "    kind: Backend\n    group: gateway.envoyproxy.io\n",
        "    kind: Service\n    group: ''\n",
    );
    has(
        &issues(&yaml),
        "AIServiceBackend/default/openai",
        "spec.backendRef.kind",
        "must be a Backend resource of Envoy Gateway",
    );
}

#[test]
fn security_policy_type_must_match_field() {
    // The field of another type.
    let yaml = replace(
        "  type: APIKey\n  apiKey:\n",
        "  type: AWSCredentials\n  apiKey:\n",
    );
    let i = issues(&yaml);
    has(&i, BSP, "spec.apiKey", "only awsCredentials may be set");
    has(
        &i,
        BSP,
        "spec.awsCredentials",
        "required when type is AWSCredentials",
    );
    // Both fields.
    let yaml = replace(
        "  apiKey:\n    secretRef:\n      name: openai-key\n",
        "  apiKey:\n    secretRef:\n      name: openai-key\n  anthropicAPIKey:\n    secretRef:\n      name: openai-key\n",
    );
    has(
        &issues(&yaml),
        BSP,
        "spec.anthropicAPIKey",
        "only apiKey may be set",
    );
    // Unknown type.
    let yaml = replace("  type: APIKey\n", "  type: Password\n");
    has(&issues(&yaml), BSP, "spec.type", "unknown variant");
}

#[test]
fn security_policy_target_checks() {
    let yaml = replace(
        "      kind: AIServiceBackend\n      name: openai\n",
        "      kind: AIServiceBackend\n      name: missing\n",
    );
    has(
        &issues(&yaml),
        BSP,
        "spec.targetRefs[0].name",
        "AIServiceBackend default/missing targeted by BackendSecurityPolicy default/openai-key",
    );
    let yaml = replace(
        "    - group: aigateway.envoyproxy.io\n      kind: AIServiceBackend\n",
        "    - group: gateway.envoyproxy.io\n      kind: Backend\n",
    );
    has(
        &issues(&yaml),
        BSP,
        "spec.targetRefs[0]",
        "must reference AIServiceBackend",
    );
}

#[test]
fn two_policies_on_one_backend_rejected() {
    let second = "---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: BackendSecurityPolicy\nmetadata:\n  name: second\nspec:\n  targetRefs:\n    - group: aigateway.envoyproxy.io\n      kind: AIServiceBackend\n      name: openai\n  type: APIKey\n  apiKey:\n    secretRef:\n      name: openai-key\n";
    let yaml = format!("{BASE}{second}");
    has(
        &issues(&yaml),
        "BackendSecurityPolicy/default/second",
        "spec.targetRefs[0].name",
        "already targeted by BackendSecurityPolicy default/openai-key",
    );
}

#[test]
fn aws_azure_gcp_field_rules() {
    let aws = replace(
        "  type: APIKey\n  apiKey:\n    secretRef:\n      name: openai-key\n",
        "  type: AWSCredentials\n  awsCredentials:\n    region: ''\n",
    );
    has(
        &issues(&aws),
        BSP,
        "spec.awsCredentials.region",
        "region is required",
    );
    let azure = replace(
        "  type: APIKey\n  apiKey:\n    secretRef:\n      name: openai-key\n",
        "  type: AzureCredentials\n  azureCredentials:\n    clientID: c\n    tenantID: t\n",
    );
    has(
        &issues(&azure),
        BSP,
        "spec.azureCredentials",
        "exactly one of clientSecretRef or oidcExchangeToken",
    );
    let gcp = replace(
        "  type: APIKey\n  apiKey:\n    secretRef:\n      name: openai-key\n",
        "  type: GCPCredentials\n  gcpCredentials:\n    region: us-central1\n",
    );
    has(
        &issues(&gcp),
        BSP,
        "spec.gcpCredentials.projectName",
        "required unless isPassthrough",
    );
}

#[test]
fn credential_override_needs_exactly_one_source() {
    let yaml = replace(
        "      name: openai-key\n---\napiVersion: v1",
        "      name: openai-key\n  credentialOverride: {}\n---\napiVersion: v1",
    );
    has(
        &issues(&yaml),
        BSP,
        "spec.credentialOverride",
        "exactly one of fromRequestHeaders or fromDynamicMetadata",
    );
}

#[test]
fn duplicate_documents_rejected() {
    let dup = "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata:\n  name: openai\n  namespace: default\nspec:\n  endpoints:\n    - ip:\n        address: 10.0.0.1\n        port: 80\n";
    has(
        &issues(&format!("{BASE}{dup}")),
        "Backend/default/openai",
        "metadata.name",
        "defined twice",
    );
}

#[test]
fn backend_endpoint_exactly_one_kind() {
    let yaml = replace(
        "        port: 443\n",
        "        port: 443\n      ip:\n        address: 10.0.0.1\n        port: 80\n",
    );
    has(
        &issues(&yaml),
        "Backend/default/openai",
        "spec.endpoints[0]",
        "exactly one of fqdn, ip or unix",
    );
}

#[test]
fn bad_cel_rejected_at_load_with_position() {
    let yaml = BASE.replace(
        "#COSTS",
        "    - metadataKey: weird\n      type: CEL\n      cel: input_tokens +* 2\n",
    );
    let i = issues(&yaml);
    has(&i, ROUTE, "spec.llmRequestCosts[1].cel", "does not compile");
    has(&i, ROUTE, "spec.llmRequestCosts[1].cel", "column");
    // A CEL cost without an expression.
    let yaml = BASE.replace("#COSTS", "    - metadataKey: weird\n      type: CEL\n");
    has(
        &issues(&yaml),
        ROUTE,
        "spec.llmRequestCosts[1].cel",
        "requires a `cel` expression",
    );
    // A negative result fails the dry run.
    let yaml = BASE.replace(
        "#COSTS",
        "    - metadataKey: neg\n      type: CEL\n      cel: \"int(input_tokens) - 1000\"\n",
    );
    has(
        &issues(&yaml),
        ROUTE,
        "spec.llmRequestCosts[1].cel",
        "negative",
    );
    // Duplicate keys.
    let yaml = BASE.replace(
        "#COSTS",
        "    - metadataKey: llm_total_token\n      type: InputToken\n",
    );
    has(
        &issues(&yaml),
        ROUTE,
        "spec.llmRequestCosts[1].metadataKey",
        "used twice",
    );
}

#[test]
fn gateway_config_costs_validated_and_referenced() {
    let gc = "---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: GatewayConfig\nmetadata:\n  name: gc\nspec:\n  globalLLMRequestCosts:\n    - metadataKey: c\n      type: CEL\n      cel: 'model +'\n";
    has(
        &issues(&format!("{BASE}{gc}")),
        "GatewayConfig/default/gc",
        "spec.globalLLMRequestCosts[0].cel",
        "does not compile",
    );
    let yaml = replace(
        "  name: gw\n  namespace: default\n",
        "  name: gw\n  namespace: default\n  annotations:\n    aigateway.envoyproxy.io/gateway-config: nothere\n",
    );
    has(
        &issues(&yaml),
        "Gateway/default/gw",
        "metadata.annotations[aigateway.envoyproxy.io/gateway-config]",
        "GatewayConfig default/nothere",
    );
}

const MCP: &str = r#"
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
"#;

fn mcp(extra: &str) -> String {
    format!("{BASE}{}", MCP.replace("#MCP", extra))
}

#[test]
fn mcp_route_valid_base() {
    Config::from_yaml_str(&mcp("      toolSelector:\n        include: [a]\n"), FILE).unwrap();
}

#[test]
fn mcp_tool_selector_rules() {
    let i = issues(&mcp(
        "      toolSelector:\n        include: [a]\n        includeRegex: ['a.*']\n",
    ));
    has(
        &i,
        "MCPRoute/default/mcp",
        "spec.backendRefs[0].toolSelector",
        "include and includeRegex are mutually exclusive",
    );
    let i = issues(&mcp("      toolSelector: {}\n"));
    has(
        &i,
        "MCPRoute/default/mcp",
        "spec.backendRefs[0].toolSelector",
        "at least one of include",
    );
    let i = issues(&mcp("      toolSelector:\n        excludeRegex: ['(']\n"));
    has(
        &i,
        "MCPRoute/default/mcp",
        "spec.backendRefs[0].toolSelector.excludeRegex[0]",
        "invalid regular expression",
    );
}

#[test]
fn mcp_api_key_exclusivity() {
    let i = issues(&mcp(
        "      securityPolicy:\n        apiKey:\n          inline: k\n          secretRef:\n            name: openai-key\n",
    ));
    has(
        &i,
        "MCPRoute/default/mcp",
        "spec.backendRefs[0].securityPolicy.apiKey",
        "exactly one of secretRef or inline",
    );
    let i = issues(&mcp(
        "      securityPolicy:\n        apiKey:\n          inline: k\n          header: x-key\n          queryParam: key\n",
    ));
    has(
        &i,
        "MCPRoute/default/mcp",
        "spec.backendRefs[0].securityPolicy.apiKey",
        "only one of header or queryParam",
    );
}

#[test]
fn mcp_backend_names_unique_and_resolved() {
    let i = issues(&mcp(
        "    - name: openai\n      kind: Backend\n      group: gateway.envoyproxy.io\n    - name: ghost\n      kind: Backend\n      group: gateway.envoyproxy.io\n",
    ));
    has(
        &i,
        "MCPRoute/default/mcp",
        "spec.backendRefs[1].name",
        "must be unique",
    );
    has(
        &i,
        "MCPRoute/default/mcp",
        "spec.backendRefs[2].name",
        "Backend default/ghost referenced by MCPRoute default/mcp",
    );
}

#[test]
fn mcp_oauth_jwks_and_jwt_sources() {
    let oauth = |jwks: &str, rules: &str| {
        mcp(&format!(
            "  securityPolicy:\n    oauth:\n      issuer: https://idp.example\n      protectedResourceMetadata:\n        resource: https://gw.example/mcp\n{jwks}    authorization:\n      rules:\n{rules}"
        ))
    };
    let scoped = "        - source:\n            jwt:\n              scopes: [read]\n";
    let remote = "          remoteJWKS:\n            uri: https://idp.example/jwks\n";
    let local =
        "          localJWKS:\n            type: Inline\n            inline: '{\"keys\":[]}'\n";
    Config::from_yaml_str(&oauth(&format!("      jwks:\n{remote}"), scoped), FILE).unwrap();
    let i = issues(&oauth("      jwks: {}\n", scoped));
    has(
        &i,
        "MCPRoute/default/mcp",
        "spec.securityPolicy.oauth.jwks",
        "either remoteJWKS or localJWKS",
    );
    let i = issues(&oauth(&format!("      jwks:\n{remote}{local}"), scoped));
    has(
        &i,
        "MCPRoute/default/mcp",
        "spec.securityPolicy.oauth.jwks",
        "cannot both be specified",
    );
    let i = issues(&oauth("", "        - source:\n            jwt: {}\n"));
    has(
        &i,
        "MCPRoute/default/mcp",
        "spec.securityPolicy.authorization.rules[0].source.jwt",
        "either scopes or claims must be specified",
    );
    let i = issues(&oauth(
        "",
        "        - source:\n            jwt:\n              claims:\n                - name: scope\n                  values: [admin]\n",
    ));
    has(
        &i,
        "MCPRoute/default/mcp",
        "spec.securityPolicy.authorization.rules[0].source.jwt.claims",
        "'scope' claim name is reserved",
    );
}

#[test]
fn all_issues_collected() {
    let yaml = replace("          weight: 1\n", "          weight: -1\n")
        .replace("  type: APIKey\n", "  type: AzureAPIKey\n");
    let i = issues(&yaml);
    has(
        &i,
        ROUTE,
        "spec.rules[0].backendRefs[0].weight",
        "between 0 and",
    );
    has(&i, BSP, "spec.azureAPIKey", "required");
    has(&i, BSP, "spec.apiKey", "only azureAPIKey may be set");
    // The rendered error lists every issue with file, document and field.
    let text = Config::from_yaml_str(&yaml, FILE).unwrap_err().to_string();
    assert!(text.contains("3 issue(s)"), "{text}");
    assert!(
        text.contains(
            "gw.yaml:33: AIGatewayRoute/default/route: spec.rules[0].backendRefs[0].weight:"
        ),
        "{text}"
    );
}

#[test]
fn invalid_yaml_reports_file() {
    let i = issues("apiVersion: v1\nkind: [unclosed\n");
    assert_eq!(i[0].file, FILE);
    assert!(i[0].message.contains("not valid YAML"), "{}", i[0].message);
    assert!(i[0].message.contains("line 2"), "{}", i[0].message);
}

#[test]
fn unknown_aigw_kind_rejected_other_kinds_ignored() {
    let extra = "---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIGatewayRoutes\nmetadata:\n  name: typo\nspec: {}\n";
    has(
        &issues(&format!("{BASE}{extra}")),
        "AIGatewayRoutes/default/typo",
        "kind",
        "unknown kind",
    );
    let extra = "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: EnvoyPatchPolicy\nmetadata:\n  name: sp\nspec:\n  anything: goes\n";
    let c = Config::from_yaml_str(&format!("{BASE}{extra}"), FILE).unwrap();
    assert_eq!(c.ignored.len(), 1);
    assert_eq!(c.ignored[0].label, "EnvoyPatchPolicy/default/sp");
    assert!(c.ignored[0].reason.contains("configures Envoy itself"));
}

#[test]
fn secret_data_base64_and_env_expansion() {
    let yaml = replace(
        "stringData:\n  apiKey: sk-test\n",
        "data:\n  apiKey: c2stJHtURVNUX0tFWX0=\n",
    );
    let c = Config::from_yaml_str(&yaml, FILE).unwrap();
    // base64 of "sk-${TEST_KEY}"
    let s = SecretSource::from_config(&c)
        .with_env_lookup(|v| (v == "TEST_KEY").then(|| "abc".to_string()));
    assert_eq!(
        s.resolve("default", "openai-key", "apiKey")
            .unwrap()
            .expose(),
        "sk-abc"
    );
    // Unset variable: an error naming it.
    let s = SecretSource::from_config(&c).with_env_lookup(|_| None);
    let e = s
        .resolve("default", "openai-key", "apiKey")
        .unwrap_err()
        .to_string();
    assert!(e.contains("TEST_KEY"), "{e}");
    assert!(!e.contains("sk-"), "secret material leaked: {e}");
    // Bad base64 is a load error on the data key.
    let yaml = replace(
        "stringData:\n  apiKey: sk-test\n",
        "data:\n  apiKey: '!!!'\n",
    );
    has(
        &issues(&yaml),
        "Secret/default/openai-key",
        "data.apiKey",
        "not valid base64",
    );
}

#[test]
fn secrets_from_directory_and_env_fallback() {
    let yaml = BASE
        .split("---\napiVersion: v1\nkind: Secret")
        .next()
        .unwrap()
        .to_string();
    let c = Config::from_yaml_str(&yaml, FILE).unwrap();
    assert!(
        c.warnings()
            .iter()
            .any(|w| w.field == "spec.apiKey.secretRef")
    );
    // Not resolvable: check_secrets names the policy, the field and where it looked.
    let e = c
        .check_secrets(&SecretSource::from_config(&c))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("BackendSecurityPolicy/default/openai-key: spec.apiKey.secretRef"),
        "{e}"
    );
    // A secrets directory laid out as <dir>/<namespace>/<name>/<key>.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("default/openai-key")).unwrap();
    std::fs::write(dir.path().join("default/openai-key/apiKey"), "sk-file\n").unwrap();
    let s = SecretSource::from_config(&c).with_dir(dir.path());
    c.check_secrets(&s).unwrap();
    assert_eq!(
        s.resolve("default", "openai-key", "apiKey")
            .unwrap()
            .expose(),
        "sk-file"
    );
    // Environment fallback.
    let s = SecretSource::from_config(&c)
        .with_env_fallback()
        .with_env_lookup(|v| {
            (v == "AIGW_SECRET_DEFAULT_OPENAI_KEY_APIKEY").then(|| "sk-env".to_string())
        });
    assert_eq!(
        s.resolve("default", "openai-key", "apiKey")
            .unwrap()
            .expose(),
        "sk-env"
    );
}

#[test]
fn traffic_policy_durations_and_buffer_limit_validated() {
    let btp = "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: BackendTrafficPolicy\nmetadata:\n  name: btp\nspec:\n  targetRefs:\n    - group: gateway.networking.k8s.io\n      kind: HTTPRoute\n      name: route\n  retry:\n    perRetry:\n      timeout: fast\n";
    has(
        &issues(&format!("{BASE}{btp}")),
        "BackendTrafficPolicy/default/btp",
        "spec.retry.perRetry.timeout",
        "invalid duration",
    );
    let ctp = "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: ClientTrafficPolicy\nmetadata:\n  name: ctp\nspec:\n  targetRefs:\n    - group: gateway.networking.k8s.io\n      kind: Gateway\n      name: gw\n  connection:\n    bufferLimit: lots\n";
    has(
        &issues(&format!("{BASE}{ctp}")),
        "ClientTrafficPolicy/default/ctp",
        "spec.connection.bufferLimit",
        "Kubernetes quantity",
    );
}

#[test]
fn loaded_secret_missing_key_is_an_error() {
    let yaml = replace(
        "stringData:\n  apiKey: sk-test\n",
        "stringData:\n  api_key: sk-test\n",
    );
    let i = issues(&yaml);
    has(
        &i,
        BSP,
        "spec.apiKey.secretRef",
        "has no key \"apiKey\" (it has: api_key)",
    );
}

#[test]
fn mcp_jwt_authorization_needs_oauth() {
    let yaml = format!(
        "{}  securityPolicy:\n    authorization:\n      rules:\n        - source:\n            jwt:\n              scopes: [read]\n",
        mcp("")
    );
    has(
        &issues(&yaml),
        "MCPRoute/default/mcp",
        "spec.securityPolicy.authorization",
        "oauth must be configured",
    );
}

#[test]
fn legacy_backend_security_policy_ref() {
    // The v1alpha1 link from the backend to its policy is honoured…
    let yaml = replace(
        "  targetRefs:\n    - group: aigateway.envoyproxy.io\n      kind: AIServiceBackend\n      name: openai\n  type: APIKey",
        "  type: APIKey",
    )
    .replace(
        "    kind: Backend\n    group: gateway.envoyproxy.io\n---\napiVersion: gateway.envoyproxy.io/v1alpha1",
        "    kind: Backend\n    group: gateway.envoyproxy.io\n  backendSecurityPolicyRef:\n    name: openai-key\n---\napiVersion: gateway.envoyproxy.io/v1alpha1",
    );
    let c = Config::from_yaml_str(&yaml, FILE).unwrap();
    assert_eq!(
        c.security_policy_for("default", "openai").unwrap().key(),
        "default/openai-key"
    );
    // …and must name an existing policy.
    let bad = yaml.replace(
        "  backendSecurityPolicyRef:\n    name: openai-key\n",
        "  backendSecurityPolicyRef:\n    name: nope\n",
    );
    has(
        &issues(&bad),
        "AIServiceBackend/default/openai",
        "spec.backendSecurityPolicyRef.name",
        "BackendSecurityPolicy default/nope",
    );
}

#[test]
fn cross_namespace_reference_needs_reference_grant() {
    let yaml = replace(
        "  backendRef:\n    name: openai\n    kind: Backend\n    group: gateway.envoyproxy.io\n",
        "  backendRef:\n    name: openai\n    namespace: providers\n    kind: Backend\n    group: gateway.envoyproxy.io\n",
    )
    .replace(
        "kind: Backend\nmetadata:\n  name: openai\n  namespace: default\n",
        "kind: Backend\nmetadata:\n  name: openai\n  namespace: providers\n",
    );
    let c = Config::from_yaml_str(&yaml, FILE).unwrap();
    let w = c
        .warnings()
        .iter()
        .find(|w| w.field == "spec.backendRef.namespace")
        .unwrap_or_else(|| panic!("{:?}", c.warnings()));
    assert!(
        w.message.contains("no ReferenceGrant in providers"),
        "{}",
        w.message
    );
    let grant = "---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata:\n  name: allow\n  namespace: providers\nspec:\n  from:\n    - group: aigateway.envoyproxy.io\n      kind: AIServiceBackend\n      namespace: default\n  to:\n    - group: gateway.envoyproxy.io\n      kind: Backend\n";
    let c = Config::from_yaml_str(&format!("{yaml}{grant}"), FILE).unwrap();
    assert!(
        c.warnings()
            .iter()
            .all(|w| w.field != "spec.backendRef.namespace"),
        "{:?}",
        c.warnings()
    );
}

#[test]
fn quota_per_model_name_must_be_an_override() {
    let quota = "---\napiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: QuotaPolicy\nmetadata:\n  name: q\nspec:\n  targetRefs:\n    - group: aigateway.envoyproxy.io\n      kind: AIServiceBackend\n      name: openai\n  perModelQuotas:\n    - modelName: gpt-4o-mini\n      quota:\n        defaultBucket:\n          limit: 100\n          duration: 2h\n";
    let i = issues(&format!("{BASE}{quota}"));
    has(
        &i,
        "QuotaPolicy/default/q",
        "spec.perModelQuotas[0].modelName",
        "modelNameOverride \"gpt-4o-mini\"",
    );
    has(
        &i,
        "QuotaPolicy/default/q",
        "spec.perModelQuotas[0].quota.defaultBucket.duration",
        "one of 1s, 1m, 1h, 1d",
    );
    let with_override = BASE.replace(
        "          weight: 1\n",
        "          weight: 1\n          modelNameOverride: gpt-4o-mini\n",
    );
    let ok = format!(
        "{with_override}{}",
        quota.replace("duration: 2h", "duration: 1h")
    );
    Config::from_yaml_str(&ok, FILE).unwrap();
}

/// The full text a user sees for a configuration with several mistakes.
#[test]
fn error_text_golden() {
    // Every schema error of a document is reported; the semantic checks of every other
    // document still run and are all reported. Each line names `file:line`.
    let yaml = replace("          weight: 1\n", "          weight: -1\n")
        .replace("      port: 1975\n", "      port: high\n      prot: 1\n")
        .replace("  type: APIKey\n", "  type: AzureAPIKey\n")
        .replace(
            "  backendRef:\n    name: openai\n",
            "  backendRef:\n    name: gone\n",
        )
        .replace(
            "#COSTS",
            "    - metadataKey: bad\n      type: CEL\n      cel: 'input_tokens *'\n",
        );
    let text = Config::from_yaml_str(&yaml, FILE).unwrap_err().to_string();
    insta::assert_snapshot!(text);
}

/// The line (1-based) of the first line of `yaml` containing `needle`.
fn line_of(yaml: &str, needle: &str) -> usize {
    yaml.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the YAML"))
        + 1
}

#[test]
fn every_schema_error_of_a_document_is_reported_with_its_line() {
    // Three distinct kinds of schema error in one document: a wrong type, an unknown
    // field, and a missing required field.
    let yaml = replace("          weight: 1\n", "          weight: heavy\n")
        .replace(
            "        - name: openai\n          priority: 1\n",
            "        - name: openai\n          priority: 1\n          weihgt: 2\n",
        )
        .replace(
            "  llmRequestCosts:\n",
            "  llmRequestCosts:\n    - type: TotalToken\n",
        );
    let i = issues(&yaml);
    let route: Vec<&ConfigIssue> = i.iter().filter(|i| i.document == ROUTE).collect();
    let fields: Vec<&str> = route.iter().map(|i| i.field.as_str()).collect();
    // Exactly the three: repairing one error to find the next reports nothing spurious.
    assert_eq!(route.len(), 3, "{route:#?}");
    assert!(
        fields.contains(&"spec.rules[0].backendRefs[0].weight")
            && fields.contains(&"spec.rules[0].backendRefs[1].weihgt")
            && fields.contains(&"spec.llmRequestCosts[0].metadataKey"),
        "{route:#?}"
    );
    has(
        &i,
        ROUTE,
        "spec.rules[0].backendRefs[0].weight",
        "invalid type",
    );
    has(
        &i,
        ROUTE,
        "spec.rules[0].backendRefs[1].weihgt",
        "unknown field",
    );
    has(
        &i,
        ROUTE,
        "spec.llmRequestCosts[0].metadataKey",
        "required field is missing",
    );
    let line = |field: &str| route.iter().find(|i| i.field == field).unwrap().line;
    assert_eq!(
        line("spec.rules[0].backendRefs[0].weight"),
        Some(line_of(&yaml, "weight: heavy"))
    );
    assert_eq!(
        line("spec.rules[0].backendRefs[1].weihgt"),
        Some(line_of(&yaml, "weihgt: 2"))
    );
    // A missing field points at the entry that lacks it.
    assert_eq!(
        line("spec.llmRequestCosts[0].metadataKey"),
        Some(line_of(&yaml, "    - type: TotalToken"))
    );
    let text = Config::from_yaml_str(&yaml, FILE).unwrap_err().to_string();
    let weight_line = line_of(&yaml, "weight: heavy");
    assert!(
        text.contains(&format!(
            "gw.yaml:{weight_line}: AIGatewayRoute/default/route: spec.rules[0].backendRefs[0].weight: invalid type"
        )),
        "{text}"
    );
}

#[test]
fn schema_errors_are_reported_for_every_document() {
    let yaml = replace("      port: 1975\n", "      port: high\n").replace(
        "  schema:\n    name: OpenAI\n",
        "  schema:\n    name: OpenAI\n    versoin: v1\n",
    );
    let i = issues(&yaml);
    has(
        &i,
        "Gateway/default/gw",
        "spec.listeners[0].port",
        "invalid type",
    );
    has(
        &i,
        "AIServiceBackend/default/openai",
        "spec.schema.versoin",
        "unknown field",
    );
}

#[test]
fn nested_field_line_is_exact() {
    // The weight of the second backendRef of the first rule, line 36 of the file.
    let yaml = replace(
        "          priority: 1\n",
        "          priority: 1\n          weight: -5\n",
    );
    let i = issues(&yaml);
    let issue = i
        .iter()
        .find(|i| i.field == "spec.rules[0].backendRefs[1].weight")
        .unwrap();
    assert_eq!(issue.line, Some(36));
    assert_eq!(yaml.lines().nth(35).unwrap().trim(), "weight: -5");
    assert!(
        issue.to_string().starts_with(
            "gw.yaml:36: AIGatewayRoute/default/route: spec.rules[0].backendRefs[1].weight: "
        ),
        "{issue}"
    );
}

#[test]
fn rule_issue_without_its_own_node_points_at_the_nearest_ancestor() {
    // `spec.azureAPIKey` does not exist in the document: the issue names the line of
    // `spec` of that policy.
    let yaml = replace("  type: APIKey\n", "  type: AzureAPIKey\n");
    let i = issues(&yaml);
    let issue = i
        .iter()
        .find(|i| i.document == BSP && i.field == "spec.azureAPIKey")
        .unwrap();
    let bsp_start = line_of(&yaml, "kind: BackendSecurityPolicy");
    let spec_line = yaml
        .lines()
        .enumerate()
        .skip(bsp_start)
        .find(|(_, l)| *l == "spec:")
        .unwrap()
        .0
        + 1;
    assert_eq!(issue.line, Some(spec_line));
}

#[test]
fn duplicate_names_point_at_the_second_definition() {
    let dup = "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata:\n  name: openai\n  namespace: default\nspec:\n  endpoints:\n    - fqdn:\n        hostname: api.openai.com\n        port: 443\n";
    let yaml = format!("{BASE}{dup}");
    let i = issues(&yaml);
    let issue = i
        .iter()
        .find(|i| i.message.contains("defined twice"))
        .unwrap();
    let second = yaml
        .lines()
        .enumerate()
        .filter(|(_, l)| *l == "  name: openai")
        .map(|(n, _)| n + 1)
        .last()
        .unwrap();
    assert_eq!(issue.line, Some(second));
}

#[test]
fn load_paths_reports_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    let yaml = replace("          weight: 1\n", "          weight: -1\n");
    std::fs::write(&path, &yaml).unwrap();
    let err = Config::load_paths(&[&path]).unwrap_err().to_string();
    let want = format!(
        "{}:{}: AIGatewayRoute/default/route: spec.rules[0].backendRefs[0].weight:",
        path.display(),
        line_of(&yaml, "weight: -1")
    );
    assert!(err.contains(&want), "{err}");
}

const QUOTA: &str = "---\napiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: QuotaPolicy\nmetadata:\n  name: q\nspec:\n  targetRefs:\n    - group: aigateway.envoyproxy.io\n      kind: AIServiceBackend\n      name: openai\n  serviceQuota:\n    costExpression: input_tokens + output_tokens * 2u\n    quota:\n      limit: 1000\n      duration: 1m\n  perModelQuotas:\n    - modelName: gpt-4o-mini\n      quota:\n        costExpression: total_tokens\n        mode: Exclusive\n        defaultBucket:\n          limit: 100\n          duration: 1h\n        bucketRules:\n          - clientSelectors:\n              - headers:\n                  - name: x-user\n                    value: alice\n            quota:\n              limit: 10\n              duration: 1d\n";

fn with_quota(quota: &str) -> String {
    let routes = BASE.replace(
        "          weight: 1\n",
        "          weight: 1\n          modelNameOverride: gpt-4o-mini\n",
    );
    format!("{routes}{quota}")
}

#[test]
fn quota_policy_valid_with_cost_expressions() {
    let c = Config::from_yaml_str(&with_quota(QUOTA), FILE).unwrap();
    let q = &c.quota_policies[0].spec;
    assert_eq!(q.per_model_quotas[0].quota.bucket_rules[0].quota.limit, 10);
}

#[test]
fn quota_policy_bad_cel_rejected_with_position() {
    let yaml = with_quota(&QUOTA.replace(
        "costExpression: input_tokens + output_tokens * 2u",
        "costExpression: input_tokens +* 2",
    ));
    let i = issues(&yaml);
    has(
        &i,
        "QuotaPolicy/default/q",
        "spec.serviceQuota.costExpression",
        "line 1, column 15",
    );
    let issue = i
        .iter()
        .find(|i| i.field == "spec.serviceQuota.costExpression")
        .unwrap();
    assert_eq!(
        issue.line,
        Some(line_of(&yaml, "costExpression: input_tokens +*"))
    );

    let yaml = with_quota(&QUOTA.replace(
        "costExpression: total_tokens",
        "costExpression: tokens_used",
    ));
    has(
        &issues(&yaml),
        "QuotaPolicy/default/q",
        "spec.perModelQuotas[0].quota.costExpression",
        "undeclared variable `tokens_used`",
    );
}

#[test]
fn quota_policy_rules() {
    let yaml = with_quota(
        &QUOTA
            .replace(
                "    - group: aigateway.envoyproxy.io\n",
                "    - group: \"\"\n",
            )
            .replace("mode: Exclusive", "mode: Greedy")
            .replace("duration: 1d", "duration: 2d")
            .replace("duration: 1m", "duration: 60s"),
    );
    let i = issues(&yaml);
    let d = "QuotaPolicy/default/q";
    has(
        &i,
        d,
        "spec.targetRefs[0]",
        "must reference AIServiceBackend",
    );
    has(
        &i,
        d,
        "spec.perModelQuotas[0].quota.mode",
        "Shared, Exclusive or MostGenerous",
    );
    has(
        &i,
        d,
        "spec.perModelQuotas[0].quota.bucketRules[0].quota.duration",
        "one of 1s, 1m, 1h, 1d",
    );
    has(
        &i,
        d,
        "spec.serviceQuota.quota.duration",
        "one of 1s, 1m, 1h, 1d",
    );
    let yaml = with_quota(&QUOTA.replace(
        "              limit: 10\n",
        "              limit: 10\n              burst: 5\n",
    ));
    has(
        &issues(&yaml),
        d,
        "spec.perModelQuotas[0].quota.bucketRules[0].quota.burst",
        "unknown field",
    );
}

const SECURITY_POLICY: &str = r#"---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata:
  name: sp
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: Gateway
      name: gw
  cors:
    allowOrigins: ["https://*.example.com"]
    allowMethods: [GET, POST]
    maxAge: 600s
    allowCredentials: true
  basicAuth:
    users:
      name: htpasswd
  oidc:
    provider:
      issuer: https://idp.example.com
      tokenEndpoint: https://idp.example.com/token
    clientID: aigw
    clientSecret:
      name: oidc-client
    scopes: [openid, email]
    redirectURL: https://aigw.example.com/oauth2/callback
    cookieNames:
      accessToken: at
    denyRedirect:
      headers:
        - name: x-requested-with
          type: Exact
          value: XMLHttpRequest
    refreshToken: true
    defaultTokenTTL: 1h
  jwt:
    providers:
      - name: idp
        issuer: https://idp.example.com
        remoteJWKS:
          uri: https://idp.example.com/jwks.json
          cacheDuration: 600s
        claimToHeaders:
          - header: x-user
            claim: sub
  extAuth:
    http:
      backendRefs:
        - name: authz
          port: 8080
      path: /check
      headersToBackend: [x-user-id]
    headersToExtAuth: [authorization]
    failOpen: false
  authorization:
    defaultAction: Deny
    rules:
      - name: admins
        action: Allow
        operation:
          methods: [POST]
        principal:
          jwt:
            provider: idp
            claims:
              - name: groups
                valueType: StringArray
                values: [admins]
"#;

#[test]
fn security_policy_sections_are_typed() {
    let c = Config::from_yaml_str(&format!("{BASE}{SECURITY_POLICY}"), FILE).unwrap();
    let sp = &c.envoy_security_policies[0].spec;
    let oidc = sp.oidc.as_ref().unwrap();
    assert_eq!(
        oidc.provider.issuer.as_deref(),
        Some("https://idp.example.com")
    );
    assert_eq!(oidc.client_id.as_deref(), Some("aigw"));
    assert_eq!(
        sp.jwt.as_ref().unwrap().providers[0].claim_to_headers[0].claim,
        "sub"
    );
    assert_eq!(
        sp.ext_auth
            .as_ref()
            .unwrap()
            .http
            .as_ref()
            .unwrap()
            .backend_refs[0]
            .name,
        "authz"
    );
    let rule = &sp.authorization.as_ref().unwrap().rules[0];
    assert_eq!(
        rule.principal.jwt.as_ref().unwrap().claims[0].values,
        ["admins"]
    );
}

#[test]
fn unknown_fields_inside_typed_sub_objects_are_rejected() {
    let d = "SecurityPolicy/default/sp";
    for (from, to, field) in [
        (
            "      issuer: https://idp.example.com\n      tokenEndpoint",
            "      issuerr: https://idp.example.com\n      tokenEndpoint",
            "spec.oidc.provider.issuerr",
        ),
        (
            "          cacheDuration: 600s\n",
            "          cacheDuraton: 600s\n",
            "spec.jwt.providers[0].remoteJWKS.cacheDuraton",
        ),
        (
            "            claim: sub\n",
            "            claims: sub\n",
            "spec.jwt.providers[0].claimToHeaders[0].claims",
        ),
        ("    users:\n", "    user:\n", "spec.basicAuth.user"),
        (
            "    allowOrigins:",
            "    allowOrigin:",
            "spec.cors.allowOrigin",
        ),
        (
            "      path: /check\n",
            "      paths: /check\n",
            "spec.extAuth.http.paths",
        ),
        (
            "              - name: groups\n",
            "              - claim: groups\n",
            "spec.authorization.rules[0].principal.jwt.claims[0].claim",
        ),
    ] {
        assert!(SECURITY_POLICY.contains(from), "{from:?}");
        let yaml = format!("{BASE}{}", SECURITY_POLICY.replace(from, to));
        let i = issues(&yaml);
        has(&i, d, field, "unknown field");
        let issue = i.iter().find(|i| i.field == field).unwrap();
        // The misspelt key is on the first line of the replacement.
        let want = yaml[..yaml.find(to).unwrap()].matches('\n').count() + 1;
        assert_eq!(issue.line, Some(want), "{issue}");
    }
}

#[test]
fn mcp_and_gateway_config_sub_objects_are_typed() {
    let mcp = "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata:\n  name: mcp\nspec:\n  endpoints:\n    - fqdn:\n        hostname: mcp.example.com\n        port: 443\n---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: MCPRoute\nmetadata:\n  name: m\nspec:\n  parentRefs:\n    - name: gw\n  backendRefs:\n    - name: mcp\n      group: gateway.envoyproxy.io\n      kind: Backend\n  securityPolicy:\n    oauth:\n      issuer: https://idp.example.com\n      protectedResourceMetadata:\n        resource: https://aigw.example.com/mcp\n        scopesSupported: [mcp]\n      jwks:\n        remoteJWKS:\n          uri: https://idp.example.com/jwks\n    authorization:\n      defaultAction: Deny\n      rules:\n        - source:\n            jwt:\n              scopes: [mcp]\n          target:\n            tools:\n              - backend: mcp\n                tool: search\n";
    let c = Config::from_yaml_str(&format!("{BASE}{mcp}"), FILE).unwrap();
    let sp = c.mcp_routes[0].spec.security_policy.as_ref().unwrap();
    assert_eq!(
        sp.authorization.as_ref().unwrap().rules[0]
            .target
            .as_ref()
            .unwrap()
            .tools[0]
            .tool,
        "search"
    );
    let bad = mcp.replace("scopesSupported:", "scopeSupported:");
    has(
        &issues(&format!("{BASE}{bad}")),
        "MCPRoute/default/m",
        "spec.securityPolicy.oauth.protectedResourceMetadata.scopeSupported",
        "unknown field",
    );
    let bad = mcp.replace(
        "                tool: search\n",
        "                tools: search\n",
    );
    let i = issues(&format!("{BASE}{bad}"));
    has(
        &i,
        "MCPRoute/default/m",
        "spec.securityPolicy.authorization.rules[0].target.tools[0].tools",
        "unknown field",
    );
    has(
        &i,
        "MCPRoute/default/m",
        "spec.securityPolicy.authorization.rules[0].target.tools[0].tool",
        "required field is missing",
    );

    let gc = "---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: GatewayConfig\nmetadata:\n  name: gc\nspec:\n  extProc:\n    kubernetes:\n      env:\n        - name: LOG_LEVEL\n          value: debug\n      resources:\n        limits:\n          memory: 512Mi\n";
    Config::from_yaml_str(&format!("{BASE}{gc}"), FILE).unwrap();
    let bad = gc.replace("          value: debug\n", "          valeu: debug\n");
    has(
        &issues(&format!("{BASE}{bad}")),
        "GatewayConfig/default/gc",
        "spec.extProc.kubernetes.env[0].valeu",
        "unknown field",
    );
}

#[test]
fn backend_security_policy_oidc_is_typed() {
    let yaml = replace(
        "  type: APIKey\n  apiKey:\n    secretRef:\n      name: openai-key\n",
        "  type: AWSCredentials\n  awsCredentials:\n    region: us-east-1\n    oidcExchangeToken:\n      awsRoleArn: arn:aws:iam::1:role/r\n      oidc:\n        provider:\n          issuer: https://idp.example.com\n        clientID: aigw\n        clientSecrett:\n          name: s\n",
    );
    has(
        &issues(&yaml),
        BSP,
        "spec.awsCredentials.oidcExchangeToken.oidc.clientSecrett",
        "unknown field",
    );
}

#[test]
fn gateway_listener_tls_and_allowed_routes_are_typed() {
    let https = "      port: 1975\n    - name: https\n      protocol: HTTPS\n      port: 8443\n      tls:\n        mode: Terminate\n        certificateRefs:\n          - name: cert\n      allowedRoutes:\n        namespaces:\n          from: All\n";
    let yaml = replace("      port: 1975\n", https);
    let c = Config::from_yaml_str(&yaml, FILE).unwrap();
    let l = &c.gateways[0].spec.listeners[1];
    assert_eq!(l.tls.as_ref().unwrap().certificate_refs[0].name, "cert");
    let bad = replace(
        "      port: 1975\n",
        &https.replace("certificateRefs:", "certificateRef:"),
    );
    has(
        &issues(&bad),
        "Gateway/default/gw",
        "spec.listeners[1].tls.certificateRef",
        "unknown field",
    );
}

#[test]
fn traffic_policy_schema_errors_are_all_reported() {
    let btp = "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: BackendTrafficPolicy\nmetadata:\n  name: btp\nspec:\n  targetRefs:\n    - group: gateway.networking.k8s.io\n      kind: HTTPRoute\n      name: route\n  retry:\n    numRetries: many\n    perRetry:\n      timeoutt: 5s\n  timeout:\n    http:\n      requestTimeout: 30s\n";
    let yaml = format!("{BASE}{btp}");
    let i = issues(&yaml);
    let d = "BackendTrafficPolicy/default/btp";
    has(&i, d, "spec.retry.numRetries", "invalid type");
    has(&i, d, "spec.retry.perRetry.timeoutt", "unknown field");
    let issue = i
        .iter()
        .find(|i| i.field == "spec.retry.perRetry.timeoutt")
        .unwrap();
    assert_eq!(issue.line, Some(line_of(&yaml, "timeoutt: 5s")));
}

#[test]
fn issues_found_after_loading_are_located() {
    let yaml = BASE[..BASE.find("---\napiVersion: v1\nkind: Secret").unwrap()].to_string();
    let c = Config::from_yaml_str(&yaml, FILE).unwrap();
    let w = c
        .warnings()
        .iter()
        .find(|w| w.field == "spec.apiKey.secretRef")
        .unwrap();
    let want = Some(line_of(&yaml, "    secretRef:"));
    assert_eq!(w.line, want);
    let secrets = SecretSource::from_config(&c);
    let Err(Error::InvalidConfig { mut issues }) =
        aigw_core::routing::Snapshot::compile_with_secrets(&c, &secrets)
    else {
        panic!("the Secret is missing");
    };
    c.locate(&mut issues);
    let issue = issues
        .iter()
        .find(|i| i.field == "spec.apiKey.secretRef")
        .unwrap();
    assert_eq!(issue.line, want, "{issue}");
}

#[test]
fn deprecated_route_filter_config_is_typed() {
    let with = replace(
        "  llmRequestCosts:\n",
        "  filterConfig:\n    type: ExternalProcessor\n    externalProcessor:\n      resources:\n        limits:\n          cpu: 500m\n  llmRequestCosts:\n",
    )
    .replace(
        "apiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIGatewayRoute",
        "apiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: AIGatewayRoute",
    );
    Config::from_yaml_str(&with, FILE).unwrap();
    let bad = with.replace("externalProcessor:", "externalProcesor:");
    has(
        &issues(&bad),
        ROUTE,
        "spec.filterConfig.externalProcesor",
        "unknown field",
    );
}

/// `aigw.run/responses` marks an OpenAI-compatible server without the Responses API
/// (`translate`) on the compiled target; a wrong value, or the annotation on another
/// schema, is an error naming it.
#[test]
fn responses_annotation_is_carried_and_validated() {
    use aigw_core::routing::Snapshot;
    use aigw_core::schema::RESPONSES_ANNOTATION;
    let annotated = |v: &str| {
        replace(
            "metadata:\n  name: openai\n  namespace: default\nspec:\n  schema:",
            &format!(
                "metadata:\n  name: openai\n  namespace: default\n  annotations:\n    {RESPONSES_ANNOTATION}: {v}\nspec:\n  schema:"
            ),
        )
    };
    for (v, over_chat) in [("translate", true), ("passthrough", false)] {
        let c = Config::from_yaml_str(&annotated(v), FILE).unwrap();
        let s = Snapshot::compile_with_secrets(&c, &SecretSource::from_config(&c)).unwrap();
        let m = s.route("gpt-4o", &http::HeaderMap::new()).unwrap();
        let t = &m.groups[0].candidates[0].target;
        assert_eq!(t.schema.responses_over_chat, over_chat, "{v}");
    }
    let field = format!("metadata.annotations[{RESPONSES_ANNOTATION}]");
    has(
        &issues(&annotated("chat")),
        "AIServiceBackend/default/openai",
        &field,
        "must be `translate` or `passthrough`",
    );
    let anthropic = annotated("translate").replace("    name: OpenAI", "    name: Anthropic");
    has(
        &issues(&anthropic),
        "AIServiceBackend/default/openai",
        &field,
        "applies only to schema OpenAI",
    );
}
