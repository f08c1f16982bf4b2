//! CPU a token limit adds to a request: the rate-limit meter's reservation (selectors
//! matched, bucket keys built, counters read and added) and its settlement, for a
//! BackendTrafficPolicy rule with a `Distinct` tenant header and for a QuotaPolicy with
//! a default bucket and a tenant bucket rule, against a route with no limits; in
//! process (`MemoryStore`) and — with feature `redis` and `redis-server` on `PATH` —
//! against a real Redis on loopback, in upstream and in reserve mode. For Redis the
//! time per request is mostly the round trip; the CPU the gateway's thread spends on
//! it is printed beside it (`/proc/thread-self/schedstat`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs
)]

use aigw_core::config::Config;
use aigw_core::cost::CostSet;
use aigw_core::limits::{LimitMode, LimitStats, MemoryStore, RateLimitMeter};
use aigw_core::meter::{MeterRequest, ReserveSettings, Settlement, TokenMeter};
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
          limit: {requests: 1000000000000000, unit: Hour}
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
        defaultBucket: {limit: 1000000000000000, duration: 1h}
        bucketRules:
          - clientSelectors: [{headers: [{name: x-tenant-id, type: Distinct}]}]
            quota: {limit: 1000000000000000, duration: 1h}
"#;

fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("the memory store never waits"),
    }
}

/// The three request shapes: no limits, limits and quota, quota only.
fn cases<'a>(
    headers: &'a HeaderMap,
    estimated: &TokenUsage,
    costs: &'a CostSet,
) -> [(&'static str, MeterRequest<'a>); 3] {
    let request = |route, backend, model| MeterRequest {
        route,
        backend,
        model,
        client: None,
        estimate: 0,
        estimated: Some(*estimated),
        costs: Some(costs),
        headers,
        client_ip: None,
    };
    [
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
    ]
}

struct Fixture {
    config: Config,
    headers: HeaderMap,
    usage: TokenUsage,
    estimated: TokenUsage,
    costs: CostSet,
    values: [(String, u64); 1],
}

fn fixture(yaml: &str) -> Fixture {
    let config = Config::from_yaml_str(yaml, "bench.yaml").unwrap();
    let costs = CostSet::compile(&config.ai_gateway_routes[0].spec.llm_request_costs, &[]).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("x-tenant-id", HeaderValue::from_static("tenant-42"));
    Fixture {
        config,
        headers,
        usage: TokenUsage {
            input: Some(120),
            output: Some(480),
            ..TokenUsage::default()
        },
        estimated: TokenUsage {
            input: Some(130),
            output: Some(1024),
            total: Some(1154),
            ..TokenUsage::default()
        },
        costs,
        values: [("llm_total_token".to_owned(), 600u64)],
    }
}

const MODES: [(&str, LimitMode); 2] = [
    ("upstream", LimitMode::Upstream),
    (
        "reserve",
        LimitMode::Reserve(ReserveSettings {
            default_output_tokens: 4096,
        }),
    ),
];

fn bench(c: &mut Criterion) {
    let f = fixture(CONFIG);
    let mut g = c.benchmark_group("limit_check");
    for (mode_name, mode) in MODES {
        let store = Arc::new(MemoryStore::default());
        let meter = RateLimitMeter::from_config(
            &f.config,
            store.clone(),
            store,
            Arc::new(LimitStats::default()),
        )
        .unwrap()
        .with_mode(mode);
        for (name, req) in cases(&f.headers, &f.estimated, &f.costs) {
            let id = if mode_name == "upstream" {
                name.to_owned()
            } else {
                format!("{mode_name}_{name}")
            };
            g.bench_function(id, |b| {
                b.iter(|| {
                    let r = ready(meter.reserve(black_box(&req))).unwrap();
                    meter.settle(
                        r,
                        &Settlement {
                            usage: &f.usage,
                            costs: &f.values,
                            estimated: false,
                        },
                    );
                });
            });
        }
    }
    g.finish();
    #[cfg(feature = "redis")]
    redis::bench(c);
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use aigw_core::Secret;
    use aigw_core::limits::{LimitStore, RedisStore};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    struct Server(Child);

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn start() -> Option<(Server, String)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        let server = Server(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some((server, format!("redis://127.0.0.1:{port}/0")))
    }

    /// CPU time of this thread, nanoseconds.
    fn thread_cpu() -> u64 {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    pub(super) fn bench(c: &mut Criterion) {
        let Some((_server, url)) = start() else {
            eprintln!("redis-server is not on PATH: the Redis cases are skipped");
            return;
        };
        // Every limit counted in Redis: the rule made Global too.
        let f = fixture(&CONFIG.replace("type: Local\n    local:", "type: Global\n    global:"));
        // One thread runs the requests and the settlements the store spawns, so its CPU
        // time is everything the gateway spends.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store: Arc<dyn LimitStore> = rt.block_on(async {
            Arc::new(RedisStore::new(&Secret::new(url), Duration::from_secs(1)).unwrap())
        });
        let mut g = c.benchmark_group("limit_check_redis");
        for (mode_name, mode) in MODES {
            let meter = RateLimitMeter::from_config(
                &f.config,
                Arc::new(MemoryStore::default()),
                store.clone(),
                Arc::new(LimitStats::default()),
            )
            .unwrap()
            .with_mode(mode);
            let one = |req: &MeterRequest<'_>| {
                rt.block_on(async {
                    let r = meter.reserve(black_box(req)).await.unwrap();
                    meter.settle(
                        r,
                        &Settlement {
                            usage: &f.usage,
                            costs: &f.values,
                            estimated: false,
                        },
                    );
                    // Lets the spawned settlement run on this thread.
                    tokio::task::yield_now().await;
                });
            };
            for (name, req) in cases(&f.headers, &f.estimated, &f.costs) {
                if name == "no_limits" {
                    continue;
                }
                g.bench_function(format!("{mode_name}_{name}"), |b| b.iter(|| one(&req)));
                let n = 2000;
                let before = thread_cpu();
                for _ in 0..n {
                    one(&req);
                }
                let cpu = (thread_cpu() - before) as f64 / f64::from(n) / 1000.0;
                eprintln!(
                    "limit_check_redis/{mode_name}_{name}: {cpu:.1} µs CPU per request (this thread)"
                );
            }
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
