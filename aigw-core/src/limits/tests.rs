//! The rate-limit meter over configurations shaped like upstream's token rate-limit
//! example.

use super::*;
use crate::config::Config;
use crate::cost::CostSet;
use crate::error::Error;
use crate::meter::{MeterGuard, MeterRequest, Reservation, TokenMeter};
use crate::usage::TokenUsage;
use http::{HeaderMap, HeaderValue};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub(super) const BASE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: c
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata: {name: route, namespace: default}
spec:
  parentRefs: [{name: gw, kind: Gateway, group: gateway.networking.k8s.io}]
  rules:
    - matches: [{headers: [{type: Exact, name: x-ai-eg-model, value: m}]}]
      backendRefs: [{name: be}]
  llmRequestCosts:
    - {metadataKey: llm_input_token, type: InputToken}
    - {metadataKey: llm_total_token, type: TotalToken}
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata: {name: be, namespace: default}
spec:
  schema: {name: OpenAI}
  backendRef: {name: be, kind: Backend, group: gateway.envoyproxy.io}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: be, namespace: default}
spec:
  endpoints: [{ip: {address: 127.0.0.1, port: 9}}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: limits, namespace: default}
spec:
  targetRefs: [{name: gw, kind: Gateway, group: gateway.networking.k8s.io}]
  rateLimit:
"#;

pub(super) fn config(rate_limit: &str) -> Config {
    let indented: String = rate_limit.lines().map(|l| format!("    {l}\n")).collect();
    Config::from_yaml_str(&format!("{BASE}{indented}"), "test.yaml").unwrap()
}

struct Fixture {
    meter: Arc<RateLimitMeter>,
    store: Arc<MemoryStore>,
    stats: Arc<LimitStats>,
    now: Arc<AtomicU64>,
    costs: Arc<CostSet>,
}

fn fixture(rate_limit: &str) -> Fixture {
    let cfg = config(rate_limit);
    let store = Arc::new(MemoryStore::default());
    let stats = Arc::new(LimitStats::default());
    let now = Arc::new(AtomicU64::new(7_200 + 5));
    let clock_now = now.clone();
    let meter = RateLimitMeter::from_config(&cfg, store.clone(), store.clone(), stats.clone())
        .unwrap()
        .with_clock(Arc::new(move || clock_now.load(Ordering::SeqCst)));
    let route = &cfg.ai_gateway_routes[0];
    let costs = Arc::new(CostSet::compile(&route.spec.llm_request_costs, &[]).unwrap());
    Fixture {
        meter: Arc::new(meter),
        store,
        stats,
        now,
        costs,
    }
}

pub(super) fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the memory store never waits"),
    }
}

pub(super) fn tenant(t: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-tenant-id", HeaderValue::from_static(t));
    h
}

impl Fixture {
    fn reserve(&self, headers: &HeaderMap) -> crate::Result<Reservation> {
        ready(self.meter.reserve(&MeterRequest {
            route: "default/route",
            backend: "default/be",
            model: "m",
            client: None,
            estimate: 0,
            estimated: None,
            costs: None,
            headers,
            client_ip: None,
        }))
    }

    /// Reserves and settles with `usage` the way an exchange does (guard bound to the
    /// route's costs, dropped without an explicit finish).
    fn exchange(&self, headers: &HeaderMap, usage: TokenUsage) -> crate::Result<()> {
        let r = self.reserve(headers)?;
        let meter: Arc<dyn TokenMeter> = self.meter.clone();
        let mut g = MeterGuard::new(meter, r).with_costs(
            self.costs.clone(),
            Arc::from("default/route"),
            Arc::from("default/be"),
            "m".into(),
        );
        g.update(&usage);
        Ok(())
    }
}

pub(super) fn usage(input: u64, output: u64) -> TokenUsage {
    TokenUsage {
        input: Some(input),
        output: Some(output),
        ..Default::default()
    }
}

pub(super) const TOTAL_TOKENS_PER_TENANT: &str = r#"
type: Global
global:
  rules:
    - clientSelectors: [{headers: [{name: x-tenant-id, type: Distinct}]}]
      limit: {requests: 30, unit: Hour}
      cost:
        request: {from: Number, number: 0}
        response:
          from: Metadata
          metadata: {namespace: io.envoy.ai_gateway, key: llm_total_token}
"#;

#[test]
fn response_metadata_cost_spends_the_budget_and_zero_cost_only_checks() {
    let f = fixture(TOTAL_TOKENS_PER_TENANT);
    // 12 tokens each: 12, 24, then 36 — the third request is still let in (the budget
    // was not spent when it arrived), the fourth is refused.
    for _ in 0..3 {
        f.exchange(&tenant("a"), usage(10, 2)).unwrap();
    }
    let e = f.reserve(&tenant("a")).unwrap_err();
    match &e {
        Error::RateLimited {
            retry_after,
            message,
            ..
        } => {
            // 7205 s into the hour that began at 7200 s.
            assert_eq!(*retry_after, Some(Duration::from_secs(3_595)));
            assert!(message.contains("30 per hour"), "{message}");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(e.status(), http::StatusCode::TOO_MANY_REQUESTS);
    // Another tenant has its own bucket.
    f.reserve(&tenant("b")).unwrap();
    // A request without the Distinct header is not limited by the rule.
    f.reserve(&HeaderMap::new()).unwrap();
    assert_eq!(f.stats.over_limit.load(Ordering::Relaxed), 1);
    // The next window starts afresh.
    f.now.store(10_800, Ordering::SeqCst);
    f.reserve(&tenant("a")).unwrap();
}

#[test]
fn reaching_the_limit_exactly_refuses_a_check_only_request() {
    let f = fixture(TOTAL_TOKENS_PER_TENANT);
    f.exchange(&tenant("a"), usage(20, 9)).unwrap();
    f.reserve(&tenant("a")).unwrap();
    f.exchange(&tenant("a"), usage(1, 0)).unwrap();
    // 30 of 30 used: a check (cost 0) is refused.
    assert!(matches!(
        f.reserve(&tenant("a")),
        Err(Error::RateLimited { .. })
    ));
}

#[test]
fn request_number_cost_counts_requests() {
    let f = fixture(
        r#"
type: Local
local:
  rules:
    - limit: {requests: 2, unit: Minute}
"#,
    );
    f.reserve(&HeaderMap::new()).unwrap();
    f.reserve(&HeaderMap::new()).unwrap();
    match f.reserve(&HeaderMap::new()) {
        Err(Error::RateLimited { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(55)));
        }
        other => panic!("third request in the minute: {other:?}"),
    }
    // Request costs count even for refused requests, as in Envoy.
    let key = "aigw_default/limits_0_default/route_7200";
    assert_eq!(
        ready(f.store.incr(
            7_205,
            &[Increment {
                key: key.into(),
                cost: 0,
                expires_at: 7_260
            }]
        ))
        .unwrap(),
        vec![3]
    );
}

#[test]
fn shadow_mode_counts_but_never_refuses() {
    let f = fixture(
        r#"
type: Global
global:
  rules:
    - clientSelectors: [{headers: [{name: x-tenant-id, type: Distinct}]}]
      limit: {requests: 1, unit: Hour}
      shadowMode: true
"#,
    );
    for _ in 0..5 {
        f.reserve(&tenant("a")).unwrap();
    }
    assert_eq!(f.stats.shadow_over_limit.load(Ordering::Relaxed), 4);
    assert_eq!(f.stats.over_limit.load(Ordering::Relaxed), 0);
}

#[test]
fn number_response_cost_and_shared_buckets() {
    let f = fixture(
        r#"
type: Local
local:
  rules:
    - clientSelectors: [{headers: [{name: x-tier, value: free}]}]
      limit: {requests: 10, unit: Hour}
      shared: true
      cost:
        request: {from: Number, number: 0}
        response: {from: Number, number: 4}
"#,
    );
    let mut free = HeaderMap::new();
    free.insert("x-tier", HeaderValue::from_static("free"));
    let r = f.reserve(&free).unwrap();
    assert_eq!(r.keys, vec!["aigw_default/limits_0_*_7200".to_string()]);
    assert_eq!(r.response.len(), 1);
    assert!(!r.needs_costs());
    drop(r);
    for _ in 0..3 {
        f.exchange(&free, TokenUsage::default()).unwrap();
    }
    // 12 of 10 used.
    assert!(f.reserve(&free).is_err());
    // Requests outside the selector are not counted.
    let mut paid = HeaderMap::new();
    paid.insert("x-tier", HeaderValue::from_static("paid"));
    let r = f.reserve(&paid).unwrap();
    assert!(r.keys.is_empty());
}

#[test]
fn partial_usage_of_an_abandoned_exchange_is_charged() {
    let f = fixture(TOTAL_TOKENS_PER_TENANT);
    // The client hung up after the input tokens were reported: the guard is dropped
    // with what it saw, and the route's cost values are computed from that.
    f.exchange(
        &tenant("a"),
        TokenUsage {
            input: Some(29),
            ..Default::default()
        },
    )
    .unwrap();
    f.reserve(&tenant("a")).unwrap();
    f.exchange(&tenant("a"), usage(1, 0)).unwrap();
    assert!(f.reserve(&tenant("a")).is_err());
}

#[test]
fn other_routes_and_policies_are_unlimited() {
    let f = fixture(TOTAL_TOKENS_PER_TENANT);
    assert!(f.meter.has_global());
    assert!(f.meter.needs_usage());
    let h = tenant("a");
    let r = ready(f.meter.reserve(&MeterRequest {
        route: "default/other",
        backend: "b",
        model: "m",
        client: None,
        estimate: 0,
        estimated: None,
        costs: None,
        headers: &h,
        client_ip: None,
    }))
    .unwrap();
    assert!(r.keys.is_empty() && r.response.is_empty());
}

#[test]
fn metadata_in_another_namespace_costs_nothing() {
    let f = fixture(
        r#"
global:
  rules:
    - limit: {requests: 5, unit: Hour}
      cost:
        request: {from: Number, number: 0}
        response:
          from: Metadata
          metadata: {namespace: other, key: llm_total_token}
"#,
    );
    for _ in 0..3 {
        f.exchange(&HeaderMap::new(), usage(10, 10)).unwrap();
    }
    // 60 tokens would be over the limit of 5 had they been charged.
    f.reserve(&HeaderMap::new()).unwrap();
}

#[test]
fn failing_store_lets_requests_through() {
    struct Down;
    #[async_trait::async_trait]
    impl LimitStore for Down {
        async fn incr(&self, _now: u64, _i: &[Increment]) -> crate::Result<Vec<u64>> {
            Err(Error::internal("connection refused"))
        }
        fn add(&self, _now: u64, _i: Vec<Increment>) {}
    }
    let cfg = config(
        r#"
global:
  rules:
    - limit: {requests: 0, unit: Hour}
"#,
    );
    let stats = Arc::new(LimitStats::default());
    let down: Arc<dyn LimitStore> = Arc::new(Down);
    let meter = RateLimitMeter::from_config(&cfg, down.clone(), down, stats.clone()).unwrap();
    let h = HeaderMap::new();
    for _ in 0..3 {
        ready(meter.reserve(&MeterRequest {
            route: "default/route",
            backend: "b",
            model: "m",
            client: None,
            estimate: 0,
            estimated: None,
            costs: None,
            headers: &h,
            client_ip: None,
        }))
        .unwrap();
    }
    assert_eq!(stats.store_error.load(Ordering::Relaxed), 3);
}

#[test]
fn unsupported_selectors_reject_the_configuration() {
    let cfg = config(
        r#"
global:
  rules:
    - clientSelectors: [{methods: [{value: GET}]}]
      limit: {requests: 1, unit: Hour}
"#,
    );
    let store: Arc<dyn LimitStore> = Arc::new(MemoryStore::default());
    let e =
        RateLimitMeter::from_config(&cfg, store.clone(), store, Arc::new(LimitStats::default()))
            .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("BackendTrafficPolicy/default/limits")
            && text.contains("spec.rateLimit.global.rules[0].clientSelectors[0]"),
        "{text}"
    );
}

/// Upstream's `examples/token_ratelimit/token_ratelimit.yaml`, unchanged.
const UPSTREAM_EXAMPLE: &str = include_str!("testdata/token_ratelimit.yaml");

fn upstream_meter() -> (RateLimitMeter, Arc<CostSet>) {
    let cfg = Config::from_yaml_str(UPSTREAM_EXAMPLE, "token_ratelimit.yaml").unwrap();
    let store: Arc<dyn LimitStore> = Arc::new(MemoryStore::default());
    let meter =
        RateLimitMeter::from_config(&cfg, store.clone(), store, Arc::new(LimitStats::default()))
            .unwrap()
            .with_clock(Arc::new(|| 7_205));
    let costs = CostSet::compile(&cfg.ai_gateway_routes[0].spec.llm_request_costs, &[]).unwrap();
    (meter, Arc::new(costs))
}

fn upstream_exchange(
    meter: &Arc<RateLimitMeter>,
    costs: &Arc<CostSet>,
    tenant_id: &'static str,
    used: Option<TokenUsage>,
) -> crate::Result<Reservation> {
    let h = tenant(tenant_id);
    let r = ready(meter.reserve(&MeterRequest {
        route: "default/envoy-ai-gateway-token-ratelimit",
        backend: "b",
        model: "rate-limit-funky-model",
        client: None,
        estimate: 0,
        estimated: None,
        costs: None,
        headers: &h,
        client_ip: None,
    }))?;
    if let Some(u) = used {
        let m: Arc<dyn TokenMeter> = meter.clone();
        let mut g = MeterGuard::new(m, r.clone()).with_costs(
            costs.clone(),
            Arc::from("default/envoy-ai-gateway-token-ratelimit"),
            Arc::from("b"),
            "rate-limit-funky-model".into(),
        );
        g.update(&u);
    }
    Ok(r)
}

#[test]
fn upstream_example_limits_input_tokens_per_tenant() {
    let (meter, costs) = upstream_meter();
    let meter = Arc::new(meter);
    // Five rules, all per x-tenant-id, all charged from the response.
    let r = upstream_exchange(&meter, &costs, "t1", Some(usage(6, 1))).unwrap();
    assert_eq!(r.keys.len(), 5);
    assert_eq!(r.response.len(), 5);
    assert!(r.needs_costs());
    upstream_exchange(&meter, &costs, "t1", Some(usage(4, 1))).unwrap();
    // 10 input tokens of 10 used: the input-token rule (limit 10) refuses.
    match upstream_exchange(&meter, &costs, "t1", None) {
        Err(Error::RateLimited { message, .. }) => {
            assert!(message.contains("rule 0"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    upstream_exchange(&meter, &costs, "t2", None).unwrap();
}

#[test]
fn upstream_example_cel_rule_charges_by_expression() {
    let (meter, costs) = upstream_meter();
    let meter = Arc::new(meter);
    // The CEL cost is 100000000 when the input is exactly 3 tokens: one such request
    // spends the CEL rule's budget of 1000.
    upstream_exchange(&meter, &costs, "t1", Some(usage(3, 0))).unwrap();
    match upstream_exchange(&meter, &costs, "t1", None) {
        Err(Error::RateLimited { message, .. }) => {
            assert!(message.contains("rule 4"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Any other input size costs the CEL rule nothing.
    upstream_exchange(&meter, &costs, "t2", Some(usage(2, 0))).unwrap();
    upstream_exchange(&meter, &costs, "t2", None).unwrap();
}
