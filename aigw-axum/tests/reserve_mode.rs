//! `--limit-mode reserve` across replicas: two `aigw run` processes on one real
//! `redis-server`, loaded concurrently, share one token budget that admitted usage
//! never exceeds by more than one request's reservation; every response tells the
//! client where it stands (`x-ratelimit-*`), and what it is told only goes down.
//! Also the Redis store's reservation scripts on their own: atomic under concurrency
//! from two stores, windows from the server's clock whatever the callers' clocks say —
//! in reserve mode and in the upstream-compatible mode alike.
//!
//! Needs `redis-server` on `PATH`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

use aigw_axum::simulator::{Simulator, SimulatorConfig};
use aigw_core::config::Config;
use aigw_core::limits::{Admission, Held, Hold, LimitStore, RedisStore, bucket_key, window_start};
use aigw_core::limits::{LimitStats, RateLimitMeter, seconds_to_reset};
use aigw_core::meter::{MeterRequest, Settlement, TokenMeter};
use aigw_core::{Secret, TokenUsage};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

mod peers;
use peers::{Proc, free_addr, redis_server, wait_listening};

/// Output tokens per tenant and hour.
const BUDGET: u64 = 1000;
/// Output tokens each request asks for (`max_tokens`) and the simulator produces
/// (`x-sim-chunks`): the reservation is exact, so the budget is used to the token.
const PER_REQUEST: u64 = 20;

fn rules() -> String {
    format!(
        r#"
        - clientSelectors: [{{headers: [{{name: x-tenant-id, type: Distinct}}]}}]
          limit: {{requests: {BUDGET}, unit: Hour}}
          cost:
            request: {{from: Number, number: 0}}
            response:
              from: Metadata
              metadata: {{namespace: io.envoy.ai_gateway, key: llm_output_token}}"#
    )
}

fn config(sim: SocketAddr) -> String {
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../aigw-core/tests/fixtures/config/rate-limit.yaml.in"
    ))
    .replace("SIM_PORT", &sim.port().to_string())
    .replace("RULES", &rules())
}

async fn simulator() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Simulator::new(SimulatorConfig::default()).serve(listener, std::future::pending()),
    );
    addr
}

fn gateway(config: &Path, redis: &str) -> (Proc, String) {
    let (listen, admin) = (free_addr(), free_addr());
    let p = Proc(
        Command::new(env!("CARGO_BIN_EXE_aigw"))
            .arg("run")
            .arg(config)
            .args(["--listen", &listen.to_string()])
            .args(["--admin", &admin.to_string()])
            .args(["--limit-mode", "reserve"])
            // A loaded test machine may take longer than the 50 ms default; a timeout
            // would let requests through unreserved (fail open).
            .args(["--redis-timeout", "2s"])
            .env("AIGW_REDIS_URL", redis)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(listen);
    (p, format!("http://{listen}"))
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// What one client saw: the output tokens of its admitted requests and the
/// `x-ratelimit-remaining-tokens` of every response, in order.
#[derive(Debug, Default)]
struct Seen {
    used: u64,
    remaining: Vec<u64>,
}

/// Sends requests one after the other until the gateway refuses one.
async fn client(http: reqwest::Client, url: String, tenant: &'static str) -> Seen {
    let mut seen = Seen::default();
    loop {
        let r = http
            .post(format!("{url}/v1/chat/completions"))
            .header("x-tenant-id", tenant)
            .header("x-sim-chunks", PER_REQUEST.to_string())
            .json(&json!({"model": "gpt-sim", "max_tokens": PER_REQUEST,
                          "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let remaining: u64 = header(&r, "x-ratelimit-remaining-tokens")
            .unwrap_or_else(|| panic!("{status} without x-ratelimit-remaining-tokens"))
            .parse()
            .unwrap();
        assert_eq!(
            header(&r, "x-ratelimit-limit-tokens").as_deref(),
            Some("1000")
        );
        let reset = header(&r, "x-ratelimit-reset-tokens").unwrap();
        assert!(reset.ends_with('s'), "{reset}");
        seen.remaining.push(remaining);
        let body: Value = r.json().await.unwrap();
        match status {
            200 => seen.used += body["usage"]["completion_tokens"].as_u64().unwrap(),
            429 => {
                // The OpenAI envelope, as the SDKs parse it.
                assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
                assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
                return seen;
            }
            s => panic!("{s}: {body}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_budget_and_never_overshoot_it() {
    let Some(redis) = redis_server() else {
        return;
    };
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("reserve.yaml");
    std::fs::write(&cfg, config(sim)).unwrap();
    let (_a, one) = gateway(&cfg, &redis.url);
    let (_b, two) = gateway(&cfg, &redis.url);
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let url = if i % 2 == 0 { one.clone() } else { two.clone() };
        tasks.push(tokio::spawn(client(http.clone(), url, "shared")));
    }
    let mut used = 0;
    for t in tasks {
        let seen = t.await.unwrap();
        used += seen.used;
        // Each client's view only goes down: the budget is spent, never given back
        // (every reservation here is exact).
        for w in seen.remaining.windows(2) {
            assert!(w[1] < w[0] || w[1] == 0, "{:?}", seen.remaining);
        }
    }
    // Admitted usage stays within the budget plus one request's reservation; with exact
    // reservations the budget is used to the token.
    assert!(used <= BUDGET + PER_REQUEST, "{used}");
    assert_eq!(used, BUDGET);

    // A refusal on the Anthropic API comes in Anthropic's envelope, with the headers.
    let r = http
        .post(format!("{two}/v1/messages"))
        .header("x-tenant-id", "shared")
        .json(&json!({"model": "claude-sim", "max_tokens": 5,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(
        header(&r, "x-ratelimit-remaining-tokens").as_deref(),
        Some("0")
    );
    assert!(header(&r, "retry-after").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");

    // Another tenant's budget is untouched, and a request asking for more than a whole
    // budget is refused up front rather than admitted and overrun.
    let r = http
        .post(format!("{one}/v1/chat/completions"))
        .header("x-tenant-id", "other")
        .json(&json!({"model": "gpt-sim", "max_tokens": BUDGET + 1,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(
        header(&r, "x-ratelimit-remaining-tokens").as_deref(),
        Some("1000")
    );
}

fn store(url: &str) -> RedisStore {
    RedisStore::new(&Secret::new(url.to_owned()), Duration::from_secs(2)).unwrap()
}

fn hold(amount: u64) -> Hold {
    Hold {
        bucket: "aigw_test/reserve_0_*".into(),
        window: 3600,
        limit: 100,
        amount,
        enforce: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_holds_are_atomic_across_stores_and_use_the_servers_clock() {
    let Some(redis) = redis_server() else {
        return;
    };
    let stores: Vec<Arc<dyn LimitStore>> =
        vec![Arc::new(store(&redis.url)), Arc::new(store(&redis.url))];
    // 40 concurrent holds of 7 from two stores (one per replica), whose callers' clocks
    // disagree by days: exactly 14 fit in 100, all in the server's current window.
    let mut tasks = Vec::new();
    for i in 0..40u64 {
        let s = stores[(i % 2) as usize].clone();
        let skewed_now = 1_000_000 + i * 86_400;
        tasks.push(tokio::spawn(async move {
            Held::take(&*s, skewed_now, vec![hold(7)], Admission::All)
                .await
                .unwrap()
        }));
    }
    let mut held = Vec::new();
    let mut server_now = 0;
    for t in tasks {
        let taken = t.await.unwrap();
        server_now = taken.reserved.now;
        if let Some(h) = taken.held {
            held.push(h);
        }
    }
    assert_eq!(held.len(), 14);
    let system_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(server_now.abs_diff(system_now) < 5, "{server_now}");
    let key = bucket_key("aigw_test/reserve_0_*", window_start(server_now, 3600));
    let read = |s: Arc<dyn LimitStore>, key: String| async move {
        let inc = aigw_core::limits::Increment {
            key,
            cost: 0,
            expires_at: server_now + 3600,
        };
        s.incr(server_now, &[inc]).await.unwrap()[0]
    };
    assert_eq!(read(stores[0].clone(), key.clone()).await, 98);
    // Settling: each of the first ten used 3 of its 7 (40 back); the others used 9
    // (8 more). Applied once each, by the server's clock again.
    for (i, h) in held.into_iter().enumerate() {
        let used = if i < 10 { 3 } else { 9 };
        h.settle(&*stores[i % 2], 0, &[used]);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let n = read(stores[1].clone(), key.clone()).await;
        if n == 10 * 3 + 4 * 9 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "count {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A refusal leaves the bucket as it was.
    let refused = Held::take(&*stores[0], 0, vec![hold(50)], Admission::All)
        .await
        .unwrap();
    assert!(refused.held.is_none());
    assert_eq!(refused.reserved.counts, vec![66]);
}

/// The system clock, Unix seconds.
fn system_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Two upstream-mode meters over `yaml`, each with its own connection to the Redis at
/// `url` (two replicas), whose clocks are days apart and half an hour off the hour:
/// were windows taken from them, each would count in its own window.
fn skewed_meters(yaml: &str, url: &str) -> Vec<RateLimitMeter> {
    let cfg = Config::from_yaml_str(yaml, "skew.yaml").unwrap();
    (1..=2u64)
        .map(|i| {
            let store: Arc<dyn LimitStore> = Arc::new(store(url));
            let stats = Arc::new(LimitStats::default());
            RateLimitMeter::from_config(&cfg, store.clone(), store, stats)
                .unwrap()
                .with_clock(Arc::new(move || system_now() - i * 2 * 86_400 + 1800))
        })
        .collect()
}

/// The count of `bucket` in the server's current hour, read as the meter reads it.
async fn count(url: &str, bucket: &str) -> u64 {
    let read = Hold {
        bucket: bucket.into(),
        window: 3600,
        limit: u64::MAX,
        amount: 0,
        enforce: false,
    };
    store(url)
        .reserve(0, &[read], Admission::Always)
        .await
        .unwrap()
        .counts[0]
}

/// Requests alternate between the meters, each charged 10 output tokens once it has
/// been admitted (and its charge has landed in `bucket`), until one is refused; returns
/// how many were admitted. Every standing told names the server's window.
async fn admitted_across(meters: &[RateLimitMeter], url: &str, bucket: &str) -> u64 {
    let mut headers = http::HeaderMap::new();
    headers.insert("x-tenant-id", http::HeaderValue::from_static("skewed"));
    let usage = TokenUsage {
        input: Some(1),
        output: Some(10),
        total: Some(11),
        ..TokenUsage::default()
    };
    let costs = [("llm_output_token".to_owned(), 10)];
    for n in 0..100u64 {
        let meter = &meters[(n % 2) as usize];
        let request = MeterRequest {
            route: "default/limited",
            backend: "default/openai/route/limited/rule/0/ref/0",
            model: "gpt-sim",
            client: None,
            estimate: 0,
            estimated: None,
            costs: None,
            headers: &headers,
            client_ip: None,
        };
        let reservation = match meter.reserve(&request).await {
            Ok(r) => r,
            Err(e) => {
                let told = e.limit_status().and_then(|s| s.tokens).unwrap();
                assert_eq!(told.remaining, 0);
                return n;
            }
        };
        let told = reservation.status.and_then(|s| s.tokens).unwrap();
        assert_eq!(told.remaining, 50 - 10 * n, "request {n}");
        // The server's hour (`TIME`, the system's clock on this machine), not either
        // meter's.
        let reset = seconds_to_reset(system_now(), 3600);
        assert!(told.reset.abs_diff(reset) <= 2, "{} vs {reset}", told.reset);
        meter.settle(
            reservation,
            &Settlement {
                usage: &usage,
                costs: &costs,
                estimated: false,
            },
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while count(url, bucket).await < 10 * (n + 1) {
            assert!(
                std::time::Instant::now() < deadline,
                "the charge never landed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    panic!("never refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_mode_windows_come_from_the_servers_clock_too() {
    let Some(redis) = redis_server() else {
        return;
    };
    // A BackendTrafficPolicy rule of 50 output tokens per tenant and hour…
    let rule = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../aigw-core/tests/fixtures/config/rate-limit.yaml.in"
    ))
    .replace("SIM_PORT", "9");
    let rules = r#"
        - clientSelectors: [{headers: [{name: x-tenant-id, type: Distinct}]}]
          limit: {requests: 50, unit: Hour}
          cost:
            request: {from: Number, number: 0}
            response:
              from: Metadata
              metadata: {namespace: io.envoy.ai_gateway, key: llm_output_token}"#;
    let meters = skewed_meters(&rule.replace("RULES", rules), &redis.url);
    let bucket = "aigw_default/token-limits_0_default/limited_x-tenant-id=skewed";
    // …is one budget for both replicas: admitted on what was spent (0, 10, … 40).
    assert_eq!(admitted_across(&meters, &redis.url, bucket).await, 5);

    // And a QuotaPolicy's bucket the same way.
    let quota = format!(
        "{}\n{}",
        // Per-model quotas name the model a backendRef asks its backend for.
        rule.replace("RULES", " []").replace(
            "backendRefs: [{name: openai}]",
            "backendRefs: [{name: openai, modelNameOverride: gpt-sim}]"
        ),
        r#"---
apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: QuotaPolicy
metadata: {name: skew, namespace: default}
spec:
  targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: openai}]
  perModelQuotas:
    - modelName: gpt-sim
      quota:
        costExpression: output_tokens
        bucketRules:
          - clientSelectors: [{headers: [{name: x-tenant-id, type: Distinct}]}]
            quota: {limit: 50, duration: 1h}
"#
    );
    let meters = skewed_meters(&quota, &redis.url);
    let bucket = "aigw_quota/default/skew/default/openai/gpt-sim_0_*_x-tenant-id=skewed";
    assert_eq!(admitted_across(&meters, &redis.url, bucket).await, 5);
}
