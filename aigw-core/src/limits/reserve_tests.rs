//! Reserve mode: estimates held before the call, corrected exactly once after it.

use super::tests::{TOTAL_TOKENS_PER_TENANT, config, ready, tenant, usage};
use super::*;
use crate::cost::CostSet;
use crate::error::Error;
use crate::meter::{MeterGuard, MeterRequest, Reservation, ReserveSettings, TokenMeter};
use http::HeaderMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

struct Fixture {
    meter: Arc<RateLimitMeter>,
    store: Arc<dyn LimitStore>,
    stats: Arc<LimitStats>,
    now: Arc<AtomicU64>,
    costs: Arc<CostSet>,
}

fn fixture_with(yaml: &str, store: Arc<dyn LimitStore>) -> Fixture {
    let cfg = config(yaml);
    let stats = Arc::new(LimitStats::default());
    let now = Arc::new(AtomicU64::new(7_200 + 5));
    let clock = now.clone();
    let meter = RateLimitMeter::from_config(&cfg, store.clone(), store.clone(), stats.clone())
        .unwrap()
        .with_mode(LimitMode::Reserve(ReserveSettings::default()))
        .with_clock(Arc::new(move || clock.load(Ordering::SeqCst)));
    let costs =
        Arc::new(CostSet::compile(&cfg.ai_gateway_routes[0].spec.llm_request_costs, &[]).unwrap());
    Fixture {
        meter: Arc::new(meter),
        store,
        stats,
        now,
        costs,
    }
}

fn fixture(yaml: &str) -> Fixture {
    fixture_with(yaml, Arc::new(MemoryStore::default()))
}

impl Fixture {
    /// Reserves for a request estimated at `input` prompt and `output` reply tokens.
    fn reserve(&self, h: &HeaderMap, input: u64, output: u64) -> crate::Result<Reservation> {
        ready(self.meter.reserve(&MeterRequest {
            route: "default/route",
            backend: "default/be",
            model: "m",
            client: None,
            estimate: 0,
            estimated: Some(usage(input, output)),
            costs: Some(&*self.costs),
            headers: h,
            client_ip: None,
        }))
    }

    fn guard(&self, r: Reservation) -> MeterGuard {
        let meter: Arc<dyn TokenMeter> = self.meter.clone();
        MeterGuard::new(meter, r).with_costs(
            self.costs.clone(),
            Arc::from("default/route"),
            Arc::from("default/be"),
            "m".into(),
        )
    }

    /// The count of tenant `t`'s bucket (rule 0, per route) in the current window.
    fn count(&self, t: &str) -> u64 {
        let now = self.now.load(Ordering::SeqCst);
        let base = bucket_base(
            "default/limits",
            0,
            Some("default/route"),
            &[selector::Descriptor::Header {
                name: "x-tenant-id".into(),
                value: t.into(),
            }],
        );
        let read = [Increment {
            key: bucket_key(&base, window_start(now, 3600)),
            cost: 0,
            expires_at: window_start(now, 3600) + 3600,
        }];
        ready(self.store.incr(now, &read)).unwrap()[0]
    }
}

fn remaining_tokens(r: &Reservation) -> u64 {
    r.status.and_then(|s| s.tokens).unwrap().remaining
}

#[test]
fn an_estimate_is_held_and_a_request_that_does_not_fit_is_refused_holding_nothing() {
    let f = fixture(TOTAL_TOKENS_PER_TENANT);
    let a = tenant("a");
    // Limit 30; each request is estimated at 5 + 10 = 15 tokens.
    let first = f.reserve(&a, 5, 10).unwrap();
    assert_eq!(f.count("a"), 15);
    assert_eq!(remaining_tokens(&first), 15);
    let second = f.reserve(&a, 5, 10).unwrap();
    assert_eq!(remaining_tokens(&second), 0);
    let e = f.reserve(&a, 5, 10).unwrap_err();
    assert!(matches!(e, Error::RateLimited { .. }), "{e}");
    let status = e.limit_status().copied().unwrap();
    assert_eq!(status.tokens.unwrap().remaining, 0);
    assert_eq!(status.tokens.unwrap().limit, 30);
    assert_eq!(f.count("a"), 30, "a refusal holds nothing");
    assert_eq!(f.stats.over_limit.load(Ordering::Relaxed), 1);
    // The first settles at 6 tokens: 9 come back, still not enough for 15.
    let mut g = f.guard(first);
    g.update(&usage(4, 2));
    g.finish();
    assert_eq!(f.count("a"), 21);
    assert!(f.reserve(&a, 5, 10).is_err());
    // The second settles at 6 too: now 12 of 30 are used and 15 fit.
    let mut g = f.guard(second);
    g.update(&usage(4, 2));
    drop(g);
    assert_eq!(f.count("a"), 12);
    let third = f.reserve(&a, 5, 10).unwrap();
    assert_eq!(remaining_tokens(&third), 3);
    // Other tenants have their own budget.
    assert_eq!(
        remaining_tokens(&f.reserve(&tenant("b"), 5, 10).unwrap()),
        15
    );
}

#[test]
fn every_way_an_exchange_ends_settles_once() {
    let f = fixture(TOTAL_TOKENS_PER_TENANT);
    let a = tenant("a");
    // Upstream error before any byte: nothing used, everything given back.
    drop(f.guard(f.reserve(&a, 5, 10).unwrap()));
    assert_eq!(f.count("a"), 0);
    // Cut stream, estimated usage beyond the hold: capped at the 15 held.
    let mut g = f.guard(f.reserve(&a, 5, 10).unwrap());
    g.update(&usage(5, 400));
    g.mark_estimated();
    drop(g);
    assert_eq!(f.count("a"), 15);
    // Cut stream, estimated usage below the hold: that much, never zero.
    let mut g = f.guard(f.reserve(&a, 5, 10).unwrap());
    g.update(&usage(5, 3));
    g.mark_estimated();
    g.finish();
    assert_eq!(f.count("a"), 23);
    // The provider's report beyond the hold is charged in full.
    let mut g = f.guard(f.reserve(&tenant("c"), 1, 1).unwrap());
    g.update(&usage(10, 10));
    g.finish();
    assert_eq!(f.count("c"), 20);
}

#[test]
fn a_settlement_after_the_window_ended_charges_overruns_to_the_current_one() {
    let f = fixture(TOTAL_TOKENS_PER_TENANT);
    let a = tenant("a");
    let over = f.guard(f.reserve(&a, 5, 10).unwrap());
    let under = f.guard(f.reserve(&a, 5, 10).unwrap());
    f.now.fetch_add(3600, Ordering::SeqCst);
    let mut over = over;
    over.update(&usage(10, 10));
    over.finish();
    let mut under = under;
    under.update(&usage(1, 1));
    under.finish();
    // 20 used against 15 held: 5 land in the new window; the refund of the other
    // belongs to the window that ended.
    assert_eq!(f.count("a"), 5);
}

#[test]
fn requests_rules_count_requests_and_tell_their_own_headers() {
    let f = fixture(
        r#"
type: Global
global:
  rules:
    - limit: {requests: 2, unit: Minute}
"#,
    );
    let h = HeaderMap::new();
    let r = f.reserve(&h, 5, 10).unwrap();
    let s = r.status.unwrap();
    assert!(s.tokens.is_none());
    assert_eq!(s.requests.unwrap().remaining, 1);
    f.reserve(&h, 5, 10).unwrap();
    let e = f.reserve(&h, 5, 10).unwrap_err();
    let headers: Vec<_> = e
        .limit_status()
        .unwrap()
        .headers()
        .into_iter()
        .map(|(n, v)| format!("{n}={}", v.to_str().unwrap()))
        .collect();
    assert_eq!(
        headers,
        [
            "x-ratelimit-limit-requests=2",
            "x-ratelimit-remaining-requests=0",
            "x-ratelimit-reset-requests=55s",
        ]
    );
    // A request's hold is its request cost: settling keeps it.
    drop(f.guard(r));
    assert!(f.reserve(&h, 5, 10).is_err());
}

struct Down;
#[async_trait::async_trait]
impl LimitStore for Down {
    async fn incr(&self, _now: u64, _i: &[Increment]) -> crate::Result<Vec<u64>> {
        Err(Error::internal("connection refused"))
    }
    fn add(&self, _now: u64, _i: Vec<Increment>) {}
    async fn reserve(&self, _now: u64, _h: &[Hold], _a: Admission) -> crate::Result<Reserved> {
        Err(Error::internal("connection refused"))
    }
}

const ANNOTATED: &str = "  annotations: {aigw.run/limit-failure-mode: closed}\n";

#[test]
fn a_policy_annotation_chooses_its_failure_mode() {
    // Without the annotation the process-wide default (fail open) applies.
    let open = fixture_with(TOTAL_TOKENS_PER_TENANT, Arc::new(Down));
    open.reserve(&tenant("a"), 5, 10).unwrap();
    assert_eq!(open.stats.store_error.load(Ordering::Relaxed), 1);
    // The same policy annotated `closed` refuses with a 503 while the store is down.
    let yaml = TOTAL_TOKENS_PER_TENANT.to_owned();
    let cfg = config(&yaml);
    let text = super::tests::BASE.replace(
        "metadata: {name: limits, namespace: default}\n",
        &format!("metadata:\n  name: limits\n  namespace: default\n{ANNOTATED}"),
    );
    let indented: String = yaml.lines().map(|l| format!("    {l}\n")).collect();
    let annotated =
        crate::config::Config::from_yaml_str(&format!("{text}{indented}"), "t.yaml").unwrap();
    assert_eq!(cfg.backend_traffic_policies.len(), 1);
    let stats = Arc::new(LimitStats::default());
    let down: Arc<dyn LimitStore> = Arc::new(Down);
    for mode in [
        LimitMode::Upstream,
        LimitMode::Reserve(ReserveSettings::default()),
    ] {
        let meter =
            RateLimitMeter::from_config(&annotated, down.clone(), down.clone(), stats.clone())
                .unwrap()
                .with_mode(mode);
        let e = ready(meter.reserve(&MeterRequest {
            route: "default/route",
            backend: "default/be",
            model: "m",
            client: None,
            estimate: 0,
            estimated: Some(usage(1, 1)),
            costs: None,
            headers: &tenant("a"),
            client_ip: None,
        }))
        .unwrap_err();
        assert_eq!(e.status(), http::StatusCode::SERVICE_UNAVAILABLE, "{e}");
    }
    assert_eq!(stats.store_error_refused.load(Ordering::Relaxed), 2);
    assert_eq!(stats.store_error.load(Ordering::Relaxed), 2);
    // A value other than open/closed is refused at load.
    let typo = text.replace("closed}", "shut}");
    let cfg = crate::config::Config::from_yaml_str(&format!("{typo}{indented}"), "t.yaml").unwrap();
    let e = RateLimitMeter::from_config(&cfg, down.clone(), down, stats).unwrap_err();
    assert!(
        e.to_string().contains("`shut` is not a failure mode"),
        "{e}"
    );
}

#[test]
fn concurrent_reservations_never_overshoot_the_limit() {
    let f = Arc::new(fixture(TOTAL_TOKENS_PER_TENANT));
    let admitted = Arc::new(AtomicU64::new(0));
    std::thread::scope(|s| {
        for _ in 0..8 {
            let f = f.clone();
            let admitted = admitted.clone();
            s.spawn(move || {
                for _ in 0..20 {
                    if let Ok(r) = f.reserve(&tenant("a"), 1, 2) {
                        admitted.fetch_add(1, Ordering::SeqCst);
                        std::mem::forget(r);
                    }
                }
            });
        }
    });
    // 30 tokens at 3 a request: exactly 10 are admitted, however they interleave.
    assert_eq!(admitted.load(Ordering::SeqCst), 10);
    assert_eq!(f.count("a"), 30);
}
