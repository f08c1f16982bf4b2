//! QuotaPolicy enforcement by the rate-limit meter, over a configuration shaped like
//! upstream's `backend_quota_ratelimit` e2e manifest.

use super::tests::ready;
use super::*;
use crate::config::Config;
use crate::error::Error;
use crate::meter::{MeterRequest, Reservation, Settlement, TokenMeter};
use crate::usage::TokenUsage;
use http::{HeaderMap, HeaderValue};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const BASE: &str = r#"
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata: {name: quota-test-model, namespace: default}
spec:
  rules:
    - matches: [{headers: [{type: Exact, name: x-ai-eg-model, value: quota-test-model}]}]
      backendRefs: [{name: up, modelNameOverride: quota-test-model}]
    - matches: [{headers: [{type: Exact, name: x-ai-eg-model, value: other}]}]
      backendRefs: [{name: up}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata: {name: up, namespace: default}
spec:
  schema: {name: OpenAI}
  backendRef: {name: up, kind: Backend, group: gateway.envoyproxy.io}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: up, namespace: default}
spec:
  endpoints: [{ip: {address: 127.0.0.1, port: 9}}]
"#;

fn config(policies: &str) -> Config {
    Config::from_yaml_str(&format!("{BASE}{policies}"), "quota.yaml").unwrap()
}

struct Fixture {
    meter: RateLimitMeter,
    stats: Arc<LimitStats>,
    now: Arc<AtomicU64>,
}

fn fixture(policies: &str) -> Fixture {
    let store = Arc::new(MemoryStore::default());
    let stats = Arc::new(LimitStats::default());
    let now = Arc::new(AtomicU64::new(86_400 * 3 + 5));
    let clock = now.clone();
    let meter = RateLimitMeter::from_config(&config(policies), store.clone(), store, stats.clone())
        .unwrap()
        .with_clock(Arc::new(move || clock.load(Ordering::SeqCst)));
    Fixture { meter, stats, now }
}

fn tenant(t: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-tenant-id", HeaderValue::from_static(t));
    h
}

impl Fixture {
    fn reserve(&self, model: &str, headers: &HeaderMap) -> crate::Result<Reservation> {
        ready(self.meter.reserve(&MeterRequest {
            route: "default/quota-test-model",
            backend: "default/up/route/quota-test-model/rule/0/ref/0",
            model,
            client: None,
            estimate: 0,
            estimated: None,
            costs: None,
            headers,
            client_ip: None,
        }))
    }

    /// A request that, when admitted, used `input`/`output` tokens.
    fn call(&self, model: &str, headers: &HeaderMap, input: u64, output: u64) -> bool {
        match self.reserve(model, headers) {
            Ok(r) => {
                let usage = TokenUsage {
                    input: Some(input),
                    output: Some(output),
                    ..TokenUsage::default()
                };
                self.meter.settle(
                    r,
                    &Settlement {
                        usage: &usage,
                        costs: &[],
                        estimated: false,
                    },
                );
                true
            }
            Err(Error::RateLimited { retry_after, .. }) => {
                assert!(retry_after.is_some());
                false
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn policy(name: &str, spec: &str) -> String {
    let indented: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "---\napiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: QuotaPolicy\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  targetRefs: [{{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: up}}]\n{indented}"
    )
}

#[test]
fn upstream_e2e_shape_admits_on_budget_spent_then_refuses() {
    // Upstream's e2e: 10 total tokens per hour for quota-test-model.
    let f = fixture(&policy(
        "p",
        "perModelQuotas:\n  - modelName: quota-test-model\n    quota:\n      mode: Shared\n      defaultBucket: {limit: 10, duration: 1h}",
    ));
    let h = HeaderMap::new();
    assert!(f.call("quota-test-model", &h, 1, 19), "within budget");
    assert!(!f.call("quota-test-model", &h, 1, 4), "20 of 10 spent");
    // Other models on the backend have no quota here.
    assert!(f.call("other", &h, 100, 100));
    // The next hour starts afresh.
    f.now.fetch_add(3600, Ordering::SeqCst);
    assert!(f.call("quota-test-model", &h, 1, 1));
}

#[test]
fn shared_mode_refuses_only_when_every_enforcing_bucket_is_used_up() {
    let f = fixture(&policy(
        "p",
        r#"perModelQuotas:
  - modelName: quota-test-model
    quota:
      costExpression: "input_tokens + output_tokens * 2u"
      defaultBucket: {limit: 30, duration: 1m}
      bucketRules:
        - clientSelectors: [{headers: [{name: x-tenant-id, type: Distinct}]}]
          quota: {limit: 10, duration: 1h}
        - clientSelectors: [{headers: [{name: x-tenant-id, type: Exact, value: a}]}]
          quota: {limit: 1, duration: 1h}
          shadowMode: true"#,
    ));
    let a = tenant("a");
    // Cost 2 + 2*4 = 10: the tenant bucket of a is used up, the default bucket is not.
    assert!(f.call("quota-test-model", &a, 2, 4));
    assert!(
        f.call("quota-test-model", &a, 2, 4),
        "the default bucket still has quota: Shared admits"
    );
    // Both enforcing buckets are now at 20/10 and 20/30; one more costs 10 -> 30/30.
    assert!(f.call("quota-test-model", &a, 2, 4));
    assert!(!f.call("quota-test-model", &a, 0, 0), "all used up");
    // Tenant b has its own bucket but shares the used-up default bucket: its tenant
    // bucket has quota, so it is admitted.
    let b = tenant("b");
    assert!(f.call("quota-test-model", &b, 0, 0));
    // A request without the header matches the default bucket only: refused.
    assert!(!f.call("quota-test-model", &HeaderMap::new(), 0, 0));
    assert!(f.stats.shadow_over_limit.load(Ordering::Relaxed) >= 2);
    assert!(f.stats.over_limit.load(Ordering::Relaxed) >= 3);
}

#[test]
fn service_quota_covers_models_without_their_own_and_first_policy_wins() {
    let f = fixture(&format!(
        "{}{}",
        policy(
            "b-second",
            "perModelQuotas:\n  - modelName: quota-test-model\n    quota:\n      defaultBucket: {limit: 1000, duration: 1d}",
        ),
        policy(
            "a-first",
            "serviceQuota:\n  quota: {limit: 5, duration: 1d}\nperModelQuotas:\n  - modelName: quota-test-model\n    quota:\n      defaultBucket: {limit: 3, duration: 1d}",
        ),
    ));
    let h = HeaderMap::new();
    // a-first's per-model quota (3) wins over b-second's (1000).
    assert!(f.call("quota-test-model", &h, 2, 2));
    assert!(!f.call("quota-test-model", &h, 0, 0));
    // "other" has no per-model quota: the service quota (5 total tokens) applies.
    assert!(f.call("other", &h, 3, 3));
    assert!(!f.call("other", &h, 0, 0));
}

#[test]
fn a_selector_the_meter_cannot_apply_rejects_the_configuration() {
    let cfg = config(&policy(
        "p",
        "perModelQuotas:\n  - modelName: quota-test-model\n    quota:\n      bucketRules:\n        - clientSelectors: [{headers: [{name: x-t, type: RegularExpression, value: \"(\"}]}]\n          quota: {limit: 1, duration: 1h}",
    ));
    let store = Arc::new(MemoryStore::default());
    let err = RateLimitMeter::from_config(&cfg, store.clone(), store, Arc::default()).unwrap_err();
    assert!(err.to_string().contains("QuotaPolicy/default/p"), "{err}");
}

#[test]
fn quota_reservations_ask_streams_for_usage() {
    let f = fixture(&policy(
        "p",
        "perModelQuotas:\n  - modelName: quota-test-model\n    quota:\n      defaultBucket: {limit: 10, duration: 1h}",
    ));
    assert!(f.meter.needs_usage());
    let r = f.reserve("quota-test-model", &HeaderMap::new()).unwrap();
    assert!(r.needs_usage());
    let r = f.reserve("other", &HeaderMap::new()).unwrap();
    assert!(!r.needs_usage());
}

#[test]
fn reserve_mode_holds_the_estimate_priced_by_the_quota() {
    let store = Arc::new(MemoryStore::default());
    let cfg = config(&policy(
        "p",
        "perModelQuotas:\n  - modelName: quota-test-model\n    quota:\n      mode: Shared\n      defaultBucket: {limit: 10, duration: 1h}",
    ));
    let meter = RateLimitMeter::from_config(&cfg, store.clone(), store, Arc::default())
        .unwrap()
        .with_mode(LimitMode::Reserve(crate::meter::ReserveSettings::default()))
        .with_clock(Arc::new(|| 86_400 * 3 + 5));
    let h = HeaderMap::new();
    let reserve = || {
        ready(meter.reserve(&MeterRequest {
            route: "default/quota-test-model",
            backend: "default/up/route/quota-test-model/rule/0/ref/0",
            model: "quota-test-model",
            client: None,
            estimate: 0,
            estimated: Some(TokenUsage {
                input: Some(3),
                output: Some(4),
                total: Some(7),
                ..TokenUsage::default()
            }),
            costs: None,
            headers: &h,
            client_ip: None,
        }))
    };
    let first = reserve().unwrap();
    assert_eq!(first.status.unwrap().tokens.unwrap().remaining, 3);
    let e = reserve().unwrap_err();
    assert_eq!(e.limit_status().unwrap().tokens.unwrap().remaining, 3);
    let used = TokenUsage {
        input: Some(1),
        output: Some(1),
        ..TokenUsage::default()
    };
    meter.settle(
        first,
        &Settlement {
            usage: &used,
            costs: &[],
            estimated: false,
        },
    );
    assert_eq!(
        reserve().unwrap().status.unwrap().tokens.unwrap().remaining,
        1
    );
}
