//! Costs: every type, CEL over every variable, load-time rejection, and route costs
//! overriding GatewayConfig costs per metadata key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aigw_core::TokenUsage;
use aigw_core::config::{Config, LlmRequestCost, LlmRequestCostType};
use aigw_core::cost::{CelCost, CostInput, CostSet};
use aigw_core::routing::Snapshot;
use http::HeaderMap;

fn cost(key: &str, t: LlmRequestCostType, cel: Option<&str>) -> LlmRequestCost {
    LlmRequestCost {
        metadata_key: key.into(),
        cost_type: t,
        cel: cel.map(Into::into),
    }
}

const USAGE: TokenUsage = TokenUsage {
    input: Some(100),
    output: Some(40),
    total: Some(140),
    cached_input: Some(30),
    cache_creation_input: Some(7),
    reasoning: Some(11),
    audio_ms: None,
    characters: None,
    images: None,
};

fn input(usage: &TokenUsage) -> CostInput<'_> {
    CostInput {
        model: "gpt-4o",
        backend: "default/openai/route/r/rule/0/ref/0",
        route_name: "default/r",
        usage,
    }
}

#[test]
fn each_token_type() {
    use LlmRequestCostType::*;
    let costs = CostSet::compile(
        &[
            cost("in", InputToken, None),
            cost("cached", CachedInputToken, None),
            cost("creation", CacheCreationInputToken, None),
            cost("out", OutputToken, None),
            cost("reasoning", ReasoningToken, None),
            cost("total", TotalToken, None),
        ],
        &[],
    )
    .unwrap();
    assert!(!costs.is_empty());
    assert_eq!(
        costs.evaluate(&input(&USAGE)),
        vec![
            ("in".to_string(), 100),
            ("cached".to_string(), 30),
            ("creation".to_string(), 7),
            ("out".to_string(), 40),
            ("reasoning".to_string(), 11),
            ("total".to_string(), 140),
        ]
    );
}

#[test]
fn default_type_is_output_and_missing_counters_are_zero() {
    let yaml = "metadataKey: k\n";
    let c: LlmRequestCost =
        serde_json::from_value(serde_json::json!({"metadataKey": "k"})).unwrap();
    assert_eq!(c.cost_type, LlmRequestCostType::OutputToken, "{yaml}");
    let costs = CostSet::compile(
        &[c, cost("total", LlmRequestCostType::TotalToken, None)],
        &[],
    )
    .unwrap();
    let usage = TokenUsage {
        input: Some(5),
        output: Some(2),
        ..Default::default()
    };
    // total is computed from input + output when the upstream did not report it.
    assert_eq!(
        costs.evaluate(&input(&usage)),
        vec![("k".to_string(), 2), ("total".to_string(), 7)]
    );
    let empty = TokenUsage::default();
    assert_eq!(
        costs.evaluate(&input(&empty)),
        vec![("k".to_string(), 0), ("total".to_string(), 0)]
    );
}

#[test]
fn cel_over_all_variables() {
    let expr = "model == 'gpt-4o' && backend.startsWith('default/openai') && route_name == 'default/r' \
                ? input_tokens + cached_input_tokens * 2u + cache_creation_input_tokens * 3u \
                  + output_tokens * 4u + total_tokens * 5u + reasoning_tokens * 6u \
                : 0u";
    let costs = CostSet::compile(&[cost("c", LlmRequestCostType::Cel, Some(expr))], &[]).unwrap();
    let want = 100 + 30 * 2 + 7 * 3 + 40 * 4 + 140 * 5 + 11 * 6;
    assert_eq!(
        costs.evaluate(&input(&USAGE)),
        vec![("c".to_string(), want)]
    );
    // Another model takes the other branch.
    let other = CostInput {
        model: "llama",
        ..input(&USAGE)
    };
    assert_eq!(costs.evaluate(&other), vec![("c".to_string(), 0)]);
}

#[test]
fn cel_int_results_accepted_uint_vars_typed() {
    // An int result (converted explicitly) is accepted when not negative.
    let c = CelCost::compile("int(input_tokens) - int(cached_input_tokens)").unwrap();
    assert_eq!(c.eval(&input(&USAGE)).unwrap(), 70);
    // A double result is rejected at load.
    let e = CelCost::compile("double(input_tokens) * 0.5").unwrap_err();
    assert!(e.message.contains("int or uint"), "{}", e.message);
    // A string result too.
    let e = CelCost::compile("model").unwrap_err();
    assert!(e.message.contains("int or uint"), "{}", e.message);
}

#[test]
fn failing_cel_at_runtime_is_left_out() {
    // Fine on the dry run, underflows when cached > input.
    let costs = CostSet::compile(
        &[
            cost(
                "diff",
                LlmRequestCostType::Cel,
                Some("input_tokens - cached_input_tokens"),
            ),
            cost("out", LlmRequestCostType::OutputToken, None),
        ],
        &[],
    )
    .unwrap();
    let usage = TokenUsage {
        input: Some(1),
        cached_input: Some(5),
        output: Some(3),
        ..Default::default()
    };
    assert_eq!(costs.evaluate(&input(&usage)), vec![("out".to_string(), 3)]);
}

#[test]
fn bad_cel_rejected_with_position() {
    let e = CelCost::compile("input_tokens + (output_tokens").unwrap_err();
    assert_eq!(e.field, "cel");
    assert!(e.message.contains("line 1, column"), "{}", e.message);
    let e = CelCost::compile("input_tokenz * 2u").unwrap_err();
    assert!(e.message.contains("input_tokenz"), "{}", e.message);
}

#[test]
fn route_costs_override_global_per_key() {
    let global = [
        cost("shared", LlmRequestCostType::InputToken, None),
        cost("global_only", LlmRequestCostType::ReasoningToken, None),
    ];
    let route = [cost("shared", LlmRequestCostType::OutputToken, None)];
    let costs = CostSet::compile(&route, &global).unwrap();
    assert_eq!(
        costs.evaluate(&input(&USAGE)),
        vec![("shared".to_string(), 40), ("global_only".to_string(), 11)]
    );
}

const YAML: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  annotations:
    aigateway.envoyproxy.io/gateway-config: gc
spec:
  gatewayClassName: eg
  listeners:
    - name: http
      protocol: HTTP
      port: 1975
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: GatewayConfig
metadata:
  name: gc
spec:
  globalLLMRequestCosts:
    - metadataKey: billing
      type: CEL
      cel: "input_tokens + output_tokens"
    - metadataKey: llm_total_token
      type: TotalToken
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata:
  name: premium
spec:
  parentRefs:
    - name: gw
  rules:
    - backendRefs:
        - name: b
  llmRequestCosts:
    - metadataKey: billing
      type: CEL
      cel: "(input_tokens + output_tokens) * 10u"
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata:
  name: b
spec:
  schema:
    name: OpenAI
  backendRef:
    name: b
    kind: Backend
    group: gateway.envoyproxy.io
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata:
  name: b
spec:
  endpoints:
    - ip:
        address: 127.0.0.1
        port: 9
"#;

#[test]
fn gateway_config_costs_apply_through_the_snapshot() {
    let c = Config::from_yaml_str(YAML, "cost.yaml").unwrap();
    let s = Snapshot::compile(&c).unwrap();
    let m = s.route("anything", &HeaderMap::new()).unwrap();
    let out = m.costs.evaluate(&input(&USAGE));
    assert_eq!(
        out,
        vec![
            ("billing".to_string(), 1400),
            ("llm_total_token".to_string(), 140)
        ]
    );
}
