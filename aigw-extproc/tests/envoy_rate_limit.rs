//! Token rate limits through a real Envoy: the bootstrap `aigw-extproc envoy-config`
//! prints, the `aigw-extproc` binary on a Unix domain socket and the bundled provider
//! simulator as the upstream, driven with plain HTTP. In process, and with the counters
//! in a real Redis shared with a standalone gateway over the same YAML.
//!
//! Needs Envoy from the test venv (`AIGW_VENV_BIN`) and `redis-server` on `PATH`;
//! skipped with a note when missing unless `AIGW_REQUIRE_EXTERNAL=1`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod common;

use aigw_axum::config;
use aigw_axum::simulator::{Simulator, SimulatorConfig};
use aigw_axum::{Gateway, credentials};
use aigw_core::Secret;
use aigw_core::config::{Config, SecretSource};
use aigw_core::limits::{DEFAULT_TIMEOUT, LimitMode, RateLimits, RedisStore};
use aigw_core::limits::{Increment, LimitStore, bucket_key, window_start};
use common::envoy::envoy_binary;
use common::redis::{REDIS_PASSWORD, redis_server};
use common::stack::{Stack, decisions};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Total tokens per tenant per hour.
const BUDGET: u64 = 30;

fn yaml(sim: u16) -> String {
    let rules = format!(
        r#"
        - clientSelectors: [{{headers: [{{name: x-tenant-id, type: Distinct}}]}}]
          limit: {{requests: {BUDGET}, unit: Hour}}
          cost:
            request: {{from: Number, number: 0}}
            response:
              from: Metadata
              metadata: {{namespace: io.envoy.ai_gateway, key: llm_total_token}}
        # Two requests per client address, for requests that ask for it: the address
        # is the one Envoy reports as source.address.
        - clientSelectors:
            - headers: [{{name: x-limit-by-address, value: "yes"}}]
              sourceCIDR: {{type: Distinct, value: 127.0.0.0/8}}
          limit: {{requests: 2, unit: Hour}}
"#
    );
    rate_limit_yaml(sim, &rules)
}

/// The shared rate-limit test configuration with the simulator's port and `rules`.
fn rate_limit_yaml(sim_port: u16, rules: &str) -> String {
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../aigw-core/tests/fixtures/config/rate-limit.yaml.in"
    ))
    .replace("SIM_PORT", &sim_port.to_string())
    .replace("RULES", rules)
}

async fn simulator() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(Simulator::new(SimulatorConfig::default()).serve(l, std::future::pending()));
    port
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn post(url: &str, path: &str, headers: &[(&str, &str)], body: Value) -> Answer {
    let mut r = client().post(format!("{url}{path}")).json(&body);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
    Answer {
        status,
        headers,
        body,
    }
}

async fn chat(url: &str, tenant: &str) -> Answer {
    post(
        url,
        "/v1/chat/completions",
        &[("x-tenant-id", tenant)],
        json!({"model": "gpt-sim", "messages": [{"role": "user", "content": "count these five words"}]}),
    )
    .await
}

async fn messages(url: &str, tenant: &str) -> Answer {
    post(
        url,
        "/v1/messages",
        &[("x-tenant-id", tenant)],
        json!({"model": "claude-sim", "max_tokens": 64,
            "messages": [{"role": "user", "content": "a prompt of seven words for claude"}]}),
    )
    .await
}

/// Spends `tenant`'s budget with chat completions on `urls` in turn; returns the
/// requests that succeeded, the tokens they reported and the 429 that ended it.
async fn spend(urls: &[&str], tenant: &str) -> (u64, u64, Answer) {
    spend_settled(urls, tenant, None).await
}

/// As [`spend`]; with a store, each answer's response cost is awaited in the bucket
/// before the next request (a networked store adds it off the request path, so an
/// instance may otherwise check before the previous instance's charge has landed).
async fn spend_settled(
    urls: &[&str],
    tenant: &str,
    store: Option<&dyn LimitStore>,
) -> (u64, u64, Answer) {
    let mut spent = 0;
    for (i, ok) in (0..100u64).enumerate() {
        let a = chat(urls[i % urls.len()], tenant).await;
        if a.status == 429 {
            return (ok, spent, a);
        }
        assert_eq!(a.status, 200, "{}", a.body);
        // A check-only request cost: requests are let in while budget remains.
        assert!(
            spent < BUDGET,
            "request let in with {spent} of {BUDGET} spent"
        );
        spent += a.body["usage"]["total_tokens"].as_u64().unwrap();
        if let Some(store) = store {
            let deadline = Instant::now() + Duration::from_secs(5);
            while bucket(store, tenant).await < spent {
                assert!(Instant::now() < deadline, "the response cost never landed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    panic!("the budget was never exhausted ({spent} tokens spent)");
}

/// The tokens counted in `tenant`'s bucket for the current hour (the key every aigw
/// packaging uses).
async fn bucket(store: &dyn LimitStore, tenant: &str) -> u64 {
    let base = format!("aigw_default/token-limits_0_default/limited_x-tenant-id={tenant}");
    count(store, &base, 3600).await
}

/// The count of the bucket `base` (its key without the window) in the current window
/// of `window` seconds.
async fn count(store: &dyn LimitStore, base: &str, window: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let start = window_start(now, window);
    let inc = Increment {
        key: bucket_key(base, start),
        cost: 0,
        expires_at: start + window,
    };
    store.incr(now, &[inc]).await.unwrap()[0]
}

fn assert_openai_429(a: &Answer) {
    assert_eq!(a.status, 429, "{}", a.body);
    assert_eq!(a.body["error"]["type"], "rate_limit_error", "{}", a.body);
    assert_eq!(a.body["error"]["code"], "rate_limit_exceeded", "{}", a.body);
    let after: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&after), "Retry-After {after}");
    assert_eq!(a.headers["x-envoy-ratelimited"], "true");
    assert!(
        a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_requests_are_refused_once_the_tenant_budget_is_spent() {
    let Some(envoy_bin) = envoy_binary() else {
        return;
    };
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("limits.yaml");
    std::fs::write(&cfg, yaml(sim)).unwrap();
    let stack = Stack::start(&envoy_bin, dir.path(), &cfg, None, &[]).await;
    let base = stack.base.as_str();

    let (ok, spent, refused) = spend(&[base], "tenant-a").await;
    assert!(ok >= 2, "the budget allows more than one request ({ok})");
    assert!(spent >= BUDGET, "{spent}");
    assert_openai_429(&refused);

    // The Anthropic API gets its own error shape from the same bucket.
    let a = messages(base, "tenant-a").await;
    assert_eq!(a.status, 429, "{}", a.body);
    assert_eq!(a.body["type"], "error", "{}", a.body);
    assert_eq!(a.body["error"]["type"], "rate_limit_error", "{}", a.body);
    assert!(a.headers.contains_key("retry-after"));

    // Another tenant is unaffected.
    assert_eq!(chat(base, "tenant-b").await.status, 200);
    assert_eq!(messages(base, "tenant-b").await.status, 200);

    // The per-address rule sees Envoy's source.address: the third request is refused.
    async fn by_address(base: &str, tenant: &str) -> Answer {
        post(
            base,
            "/v1/chat/completions",
            &[("x-tenant-id", tenant), ("x-limit-by-address", "yes")],
            json!({"model": "gpt-sim", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await
    }
    assert_eq!(by_address(base, "addr-1").await.status, 200);
    assert_eq!(by_address(base, "addr-2").await.status, 200);
    assert_openai_429(&by_address(base, "addr-3").await);

    let metrics = stack.metrics().await;
    assert_eq!(decisions(&metrics, "over_limit"), 3, "{metrics}");
    assert!(decisions(&metrics, "ok") >= 6, "{metrics}");
    assert_eq!(decisions(&metrics, "store_error"), 0, "{metrics}");
    // Refusals are the processor's local replies: no upstream was involved.
    let refusal = stack
        .envoy
        .access_log_line(|v| v["response_code"] == 429)
        .await;
    assert!(
        refusal["upstream_host"].is_null() || refusal["upstream_host"] == "-",
        "{refusal}"
    );
    let warnings = stack.log().matches("counted per instance").count();
    assert_eq!(warnings, 1, "{}", stack.log());
}

/// A client that hangs up mid-stream is charged the tokens reported so far: Envoy
/// cancels the ext_proc stream and the processor settles what it saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_client_hang_up_mid_stream_is_charged() {
    let Some(envoy_bin) = envoy_binary() else {
        return;
    };
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("limits.yaml");
    std::fs::write(&cfg, yaml(sim)).unwrap();
    let stack = Stack::start(&envoy_bin, dir.path(), &cfg, None, &[]).await;

    // What is known once the stream has started: Anthropic's message_start reports the
    // input tokens and one output token.
    let probe = messages(&stack.base, "probe").await;
    assert_eq!(probe.status, 200, "{}", probe.body);
    let input = probe.body["usage"]["input_tokens"].as_u64().unwrap();
    let whole = input + probe.body["usage"]["output_tokens"].as_u64().unwrap();
    let started = input + 1;
    assert!(started < whole, "{}", probe.body);

    let stream = || {
        client()
            .post(format!("{}/v1/messages", stack.base))
            .header("x-tenant-id", "tenant-h")
            .header("x-sim-chunks", "40")
            .header("x-sim-chunk-interval-ms", "50")
            .json(
                &json!({"model": "claude-sim", "max_tokens": 64, "stream": true,
                "messages": [{"role": "user", "content": "a prompt of seven words for claude"}]}),
            )
            .send()
    };
    let mut hang_ups = 0;
    loop {
        let mut r = stream().await.unwrap();
        if r.status() == 429 {
            break;
        }
        assert_eq!(r.status(), 200);
        let first = r.chunk().await.unwrap().unwrap();
        assert!(
            String::from_utf8_lossy(&first).contains("message_start"),
            "{first:?}"
        );
        drop(r);
        hang_ups += 1;
        assert!(hang_ups <= BUDGET, "hang-ups are free");
        // Envoy notices the closed connection and cancels the ext_proc stream.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        hang_ups,
        BUDGET.div_ceil(started),
        "charge per hang-up {started}"
    );
}

/// An OpenAI stream the client leaves after a few chunks — before the final usage
/// chunk, the only one carrying usage — is charged an estimate of what was streamed
/// and of the prompt, never zero; admitted responses tell the client its standing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_openai_hang_up_after_chunks_is_charged_an_estimate() {
    let Some(envoy_bin) = envoy_binary() else {
        return;
    };
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("limits.yaml");
    std::fs::write(&cfg, yaml(sim)).unwrap();
    let stack = Stack::start(&envoy_bin, dir.path(), &cfg, None, &[]).await;

    // An admitted response carries the x-ratelimit-* headers as header mutations.
    let a = chat(&stack.base, "tenant-headers").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.headers["x-ratelimit-limit-tokens"], "30");
    assert_eq!(a.headers["x-ratelimit-remaining-tokens"], "30");
    // Envoy's access log line says whose token counts it carries.
    let line = stack
        .envoy
        .access_log_line(|v| {
            v["response_code"] == 200 && v["gen_ai.usage.total_tokens"].is_number()
        })
        .await;
    assert_eq!(line["aigw.token_source"], "reported", "{line}");
    let b = chat(&stack.base, "tenant-headers").await;
    let remaining: u64 = b.headers["x-ratelimit-remaining-tokens"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(remaining < 30, "{remaining}");
    // So does an upstream error the gateway relays, in place of the provider's own
    // headers (which describe the gateway's credential); it is not charged.
    let spent = a.body["usage"]["total_tokens"].as_u64().unwrap()
        + b.body["usage"]["total_tokens"].as_u64().unwrap();
    for code in ["400", "503"] {
        let e = post(
            &stack.base,
            "/v1/chat/completions",
            &[("x-tenant-id", "tenant-headers"), ("x-sim-status", code)],
            json!({"model": "gpt-sim", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert_eq!(e.status.to_string(), code, "{}", e.body);
        assert!(e.body["error"]["message"].is_string(), "{}", e.body);
        assert_eq!(e.headers["x-ratelimit-limit-tokens"], "30");
        assert_eq!(
            e.headers["x-ratelimit-remaining-tokens"],
            (30 - spent).to_string().as_str()
        );
        assert!(e.headers.contains_key("x-ratelimit-reset-tokens"));
        assert!(
            !e.headers.contains_key("x-ratelimit-limit-requests"),
            "{:?}",
            e.headers
        );
    }

    let mut hang_ups = 0;
    loop {
        let mut r = client()
            .post(format!("{}/v1/chat/completions", stack.base))
            .header("x-tenant-id", "tenant-cut")
            .header("x-sim-chunks", "40")
            .header("x-sim-chunk-interval-ms", "50")
            .json(&json!({"model": "gpt-sim", "stream": true,
                "messages": [{"role": "user", "content": "count these five words"}]}))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            let refused: Value = r.json().await.unwrap();
            assert_eq!(refused["error"]["code"], "rate_limit_exceeded");
            break;
        }
        assert_eq!(r.status(), 200);
        let mut seen = String::new();
        while seen.matches("data: ").count() < 4 {
            let chunk = r.chunk().await.unwrap().unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(!seen.contains("\"usage\":{"), "{seen}");
        drop(r);
        hang_ups += 1;
        assert!(hang_ups < BUDGET, "hang-ups are free");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The prompt alone is estimated at several tokens, so a handful of hang-ups spend
    // the budget of 30.
    assert!((2..=6).contains(&hang_ups), "{hang_ups} hang-ups");
}

/// The standalone gateway (what `aigw run` serves) over the same YAML, counting in the
/// same Redis; returns its base URL.
async fn standalone(config: &Path, redis: &str) -> String {
    standalone_with(config, redis, LimitMode::Upstream, DEFAULT_TIMEOUT).await
}

async fn standalone_with(config: &Path, redis: &str, mode: LimitMode, timeout: Duration) -> String {
    let config = Config::load_paths(&[config]).unwrap();
    let store: Arc<dyn LimitStore> =
        Arc::new(RedisStore::new(&Secret::new(redis), timeout).unwrap());
    let limits = RateLimits::new(Some(store)).with_mode(mode);
    let snapshot = config::snapshot_with_limits(
        &config,
        &SecretSource::from_config(&config),
        Arc::new(aigw_providers::ProviderFactory),
        &credentials::default_resolver(),
        &limits,
    )
    .unwrap();
    let gw = Gateway::builder(snapshot).build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback_service(gw);
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_budget_is_shared_with_the_standalone_gateway() {
    let Some(envoy_bin) = envoy_binary() else {
        return;
    };
    let Some(redis) = redis_server() else {
        return;
    };
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("limits.yaml");
    std::fs::write(&cfg, yaml(sim)).unwrap();
    let stack = Stack::start(&envoy_bin, dir.path(), &cfg, Some(&redis.url), &[]).await;
    let gateway = standalone(&cfg, &redis.url).await;
    // A third client of the same Redis, to watch the bucket.
    let observer =
        RedisStore::new(&Secret::new(redis.url.as_str()), Duration::from_secs(2)).unwrap();

    // Alternating between Envoy + aigw-extproc and the standalone gateway spends one
    // budget, not two.
    let (ok, spent, refused) =
        spend_settled(&[&stack.base, &gateway], "tenant-a", Some(&observer)).await;
    assert!(ok >= 2, "{ok}");
    assert!((BUDGET..2 * BUDGET).contains(&spent), "{spent}");
    assert_openai_429(&refused);
    assert_openai_429(&chat(&stack.base, "tenant-a").await);
    assert_openai_429(&chat(&gateway, "tenant-a").await);
    assert_eq!(bucket(&observer, "tenant-a").await, spent);
    assert_eq!(chat(&stack.base, "tenant-b").await.status, 200);

    let metrics = stack.metrics().await;
    assert!(decisions(&metrics, "over_limit") >= 1, "{metrics}");
    assert_eq!(decisions(&metrics, "store_error"), 0, "{metrics}");
    let log = stack.log();
    assert!(log.contains("global rate limits counted in Redis"), "{log}");
    assert!(log.contains("redis://***@127.0.0.1"), "{log}");
    assert!(!log.contains(REDIS_PASSWORD), "{log}");
    assert!(!log.contains("counted per instance"), "{log}");
}

/// Output tokens each request of the reserve-mode test asks for and gets.
const PER_REQUEST: u64 = 20;
/// The reserve-mode test's budget of output tokens per tenant and hour.
const OUTPUT_BUDGET: u64 = 400;

/// The output tokens an admitted answer reports: its `usage`, or for a stream the usage
/// of its final chunk (the client asks for it with `stream_options.include_usage`).
fn output_tokens(a: &Answer) -> u64 {
    if let Some(n) = a.body["usage"]["completion_tokens"].as_u64() {
        return n;
    }
    let raw = a.body["raw"].as_str().unwrap_or_default();
    raw.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find_map(|v| v["usage"]["completion_tokens"].as_u64())
        .unwrap_or_else(|| panic!("no usage in {raw}"))
}

/// Sends requests one after the other (streamed or not) until one is refused; returns
/// the output tokens of the admitted ones and every `x-ratelimit-remaining-tokens`
/// seen.
async fn spend_output(url: String, tenant: &'static str, stream: bool) -> (u64, Vec<u64>) {
    let (mut used, mut remaining) = (0, Vec::new());
    let mut body = json!({"model": "gpt-sim", "max_tokens": PER_REQUEST,
                          "messages": [{"role": "user", "content": "hi"}]});
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    let chunks = PER_REQUEST.to_string();
    loop {
        let a = post(
            &url,
            "/v1/chat/completions",
            &[("x-tenant-id", tenant), ("x-sim-chunks", &chunks)],
            body.clone(),
        )
        .await;
        let left = a.headers["x-ratelimit-remaining-tokens"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        remaining.push(left);
        match a.status {
            200 => used += output_tokens(&a),
            429 => {
                assert_openai_429(&a);
                return (used, remaining);
            }
            s => panic!("{s}: {}", a.body),
        }
    }
}

/// Runs `clients` concurrent [`spend_output`] loops for one tenant, client `i` against
/// `urls[i % urls.len()]` (every other one streaming); returns the output tokens
/// admitted in all. Each client's `x-ratelimit-remaining-tokens` must only go down:
/// every reservation here is exact, so the budget is spent and never given back.
async fn spend_output_concurrently(urls: &[&str], clients: usize, tenant: &'static str) -> u64 {
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let url = urls[i % urls.len()].to_owned();
            tokio::spawn(spend_output(url, tenant, (i / urls.len()) % 2 == 1))
        })
        .collect();
    let mut used = 0;
    for t in tasks {
        let (u, remaining) = t.await.unwrap();
        used += u;
        assert!(remaining.len() >= 2, "{remaining:?}");
        for w in remaining.windows(2) {
            assert!(w[1] < w[0] || w[1] == 0, "{remaining:?}");
        }
    }
    used
}

/// `--limit-mode reserve` through Envoy and `aigw-extproc`, sharing one Redis budget with
/// a standalone gateway under concurrent load from both: the budget is used to the
/// token and never exceeded, and each client's remaining tokens only go down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserve_mode_holds_one_budget_across_envoy_and_the_standalone_gateway() {
    let Some(envoy_bin) = envoy_binary() else {
        return;
    };
    let Some(redis) = redis_server() else {
        return;
    };
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("limits.yaml");
    let rules = format!(
        r#"
        - clientSelectors: [{{headers: [{{name: x-tenant-id, type: Distinct}}]}}]
          limit: {{requests: {OUTPUT_BUDGET}, unit: Hour}}
          cost:
            request: {{from: Number, number: 0}}
            response:
              from: Metadata
              metadata: {{namespace: io.envoy.ai_gateway, key: llm_output_token}}"#
    );
    std::fs::write(&cfg, rate_limit_yaml(sim, &rules)).unwrap();
    let args = ["--limit-mode", "reserve", "--redis-timeout", "2s"];
    let stack = Stack::start(&envoy_bin, dir.path(), &cfg, Some(&redis.url), &args).await;
    let reserve = "reserve".parse::<LimitMode>().unwrap();
    let gateway = standalone_with(&cfg, &redis.url, reserve, Duration::from_secs(2)).await;
    let used = spend_output_concurrently(&[&stack.base, &gateway], 4, "tenant-r").await;
    assert_eq!(used, OUTPUT_BUDGET);
    assert_eq!(decisions(&stack.metrics().await, "store_error"), 0);
}

/// A QuotaPolicy of `OUTPUT_BUDGET` output tokens per tenant and hour on the OpenAI
/// backend's `gpt-sim`, as the only limit of the shared configuration.
fn output_quota_yaml(sim: u16) -> String {
    format!(
        r#"{}
---
apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: QuotaPolicy
metadata: {{name: tenant-output, namespace: default}}
spec:
  targetRefs: [{{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: openai}}]
  perModelQuotas:
    - modelName: gpt-sim
      quota:
        costExpression: output_tokens
        bucketRules:
          - clientSelectors: [{{headers: [{{name: x-tenant-id, type: Distinct}}]}}]
            quota: {{limit: {OUTPUT_BUDGET}, duration: 1h}}
"#,
        // Per-model quotas name the model a backendRef asks its backend for.
        rate_limit_yaml(sim, " []").replace(
            "backendRefs: [{name: openai}]",
            "backendRefs: [{name: openai, modelNameOverride: gpt-sim}]"
        )
    )
}

/// One chat completion of `PER_REQUEST` output tokens for `tenant`.
async fn output_request(url: &str, tenant: &str) -> Answer {
    post(
        url,
        "/v1/chat/completions",
        &[("x-tenant-id", tenant), ("x-sim-chunks", "20")],
        json!({"model": "gpt-sim", "max_tokens": PER_REQUEST,
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
}

/// The proof for Envoy: two Envoys, each with its own `aigw-extproc` (the sidecar
/// deployment), both counting in one `redis-server`, loaded concurrently through both
/// with plain and streamed chat completions. Admitted usage never exceeds the token
/// quota by more than one request's reservation (with exact reservations, it is spent
/// to the token), each client's remaining tokens only go down, and Redis holds exactly
/// what was admitted. Then Redis is killed mid-run: the pair that fails open serves,
/// the one that fails closed refuses, both count and log it, and both count again once
/// Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_envoy_sidecar_pairs_share_one_token_quota_in_reserve_mode() {
    let Some(envoy_bin) = envoy_binary() else {
        return;
    };
    let Some(mut redis) = redis_server() else {
        return;
    };
    let sim = simulator().await;
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cfg = one.path().join("quota.yaml");
    std::fs::write(&cfg, output_quota_yaml(sim)).unwrap();
    let open = ["--limit-mode", "reserve", "--redis-timeout", "2s"];
    let closed = [
        "--limit-mode",
        "reserve",
        "--redis-timeout",
        "2s",
        "--quota-fail-closed",
    ];
    let a = Stack::start(&envoy_bin, one.path(), &cfg, Some(&redis.url), &open).await;
    let b = Stack::start(&envoy_bin, two.path(), &cfg, Some(&redis.url), &closed).await;

    let used = spend_output_concurrently(&[&a.base, &b.base], 6, "tenant-q").await;
    assert!(used <= OUTPUT_BUDGET + PER_REQUEST, "{used}");
    assert_eq!(used, OUTPUT_BUDGET);
    // Both pairs served part of the load, and both refused once the quota was spent.
    for s in [&a, &b] {
        let m = s.metrics().await;
        assert!(decisions(&m, "ok") >= 2, "{m}");
        assert!(decisions(&m, "over_limit") >= 1, "{m}");
        assert_eq!(decisions(&m, "store_error"), 0, "{m}");
    }
    let observer =
        RedisStore::new(&Secret::new(redis.url.as_str()), Duration::from_secs(2)).unwrap();
    let base = "aigw_quota/default/tenant-output/default/openai/gpt-sim_0_*_x-tenant-id=tenant-q";
    assert_eq!(count(&observer, base, 3600).await, OUTPUT_BUDGET);
    // Another tenant has its own bucket, shared by both pairs.
    for (s, left) in [
        (&a, OUTPUT_BUDGET - PER_REQUEST),
        (&b, OUTPUT_BUDGET - 2 * PER_REQUEST),
    ] {
        let r = output_request(&s.base, "tenant-other").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.headers["x-ratelimit-remaining-tokens"],
            left.to_string().as_str()
        );
        assert_eq!(
            r.headers["x-ratelimit-limit-tokens"],
            OUTPUT_BUDGET.to_string().as_str()
        );
    }

    redis.kill();
    assert_eq!(output_request(&a.base, "tenant-q").await.status, 200);
    let refused = output_request(&b.base, "tenant-q").await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.headers.contains_key("retry-after"));
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("quota store is unavailable"), "{message}");
    let (ma, mb) = (a.metrics().await, b.metrics().await);
    assert!(decisions(&ma, "store_error") >= 1, "{ma}");
    assert_eq!(decisions(&ma, "store_error_refused"), 0, "{ma}");
    assert!(decisions(&mb, "store_error_refused") >= 1, "{mb}");
    assert!(a.log().contains("requests are let through"), "{}", a.log());
    assert!(b.log().contains("refused (fail closed)"), "{}", b.log());

    // Back (empty, as after a crash): the closed pair serves again once it has
    // reconnected, and both hold in Redis again.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    while output_request(&b.base, "tenant-back").await.status != 200 {
        assert!(Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Past the pause the open pair's store takes after a failure (1 s).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = output_request(&a.base, "tenant-back").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let left = OUTPUT_BUDGET - 2 * PER_REQUEST;
    assert_eq!(
        r.headers["x-ratelimit-remaining-tokens"],
        left.to_string().as_str()
    );
}
