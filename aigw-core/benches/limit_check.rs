//! CPU a token limit adds to a request in process: the rate-limit meter's reservation
//! (selectors matched, bucket keys built, counters read and added) and its settlement,
//! for a BackendTrafficPolicy rule with a `Distinct` tenant header and for a QuotaPolicy
//! with a default bucket and a tenant bucket rule, against a route with no limits.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use aigw_core::config::Config;
use aigw_core::limits::{LimitStats, MemoryStore, RateLimitMeter};
use aigw_core::meter::{MeterRequest, Settlement, TokenMeter};
use aigw_core::usage::TokenUsage;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use std::hint::black_box;
use std::sync::Arc;

const CONFIG: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: c
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata: {name: limited, namespace: default}
spec:
  parentRefs: [{name: gw, kind: Gateway, group: gateway.networking.k8s.io}]
  rules:
    - matches: [{headers: [{type: Exact, name: x-ai-eg-model, value: m}]}]
      backendRefs: [{name: be, modelNameOverride: m}]
  llmRequestCosts:
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
    type: Local
    local:
      rules:
        - clientSelectors: [{headers: [{name: x-tenant-id, type: Distinct}]}]
          limit: {requests: 1000000000, unit: Hour}
          cost:
            request: {from: Number, number: 0}
            response: {from: Metadata, metadata: {namespace: io.envoy.ai_gateway, key: llm_total_token}}
---
apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: QuotaPolicy
metadata: {name: quota, namespace: default}
spec:
  targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: be}]
  perModelQuotas:
    - modelName: m
      quota:
        defaultBucket: {limit: 1000000000, duration: 1h}
        bucketRules:
          - clientSelectors: [{headers: [{name: x-tenant-id, type: Distinct}]}]
            quota: {limit: 1000000000, duration: 1h}
"#;

fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("the memory store never waits"),
    }
}

fn bench(c: &mut Criterion) {
    let config = Config::from_yaml_str(CONFIG, "bench.yaml").unwrap();
    let store = Arc::new(MemoryStore::default());
    let meter = RateLimitMeter::from_config(
        &config,
        store.clone(),
        store,
        Arc::new(LimitStats::default()),
    )
    .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("x-tenant-id", HeaderValue::from_static("tenant-42"));
    let usage = TokenUsage {
        input: Some(120),
        output: Some(480),
        ..TokenUsage::default()
    };
    let costs = [("llm_total_token".to_owned(), 600u64)];
    let request = |route, backend, model| MeterRequest {
        route,
        backend,
        model,
        client: None,
        estimate: 0,
        estimated: None,
        costs: None,
        headers: &headers,
        client_ip: None,
    };
    let mut g = c.benchmark_group("limit_check");
    let cases = [
        ("no_limits", request("default/other", "default/other", "x")),
        (
            "rate_limit_and_quota",
            request(
                "default/limited",
                "default/be/route/limited/rule/0/ref/0",
                "m",
            ),
        ),
        (
            "quota_only",
            request(
                "default/other",
                "default/be/route/limited/rule/0/ref/0",
                "m",
            ),
        ),
    ];
    for (name, req) in cases {
        g.bench_function(name, |b| {
            b.iter(|| {
                let r = ready(meter.reserve(black_box(&req))).unwrap();
                meter.settle(
                    r,
                    &Settlement {
                        usage: &usage,
                        costs: &costs,
                        estimated: false,
                    },
                );
            });
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
