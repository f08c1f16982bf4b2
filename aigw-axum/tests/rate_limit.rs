//! Token rate limits end to end: the gateway built from a configuration shaped like
//! upstream's `token_ratelimit` example, in front of the bundled simulator, with the
//! counters in process and in a real Redis shared by two gateway instances.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use aigw_axum::config;
use aigw_axum::simulator::{Simulator, SimulatorConfig};
use aigw_axum::{Gateway, credentials};
use aigw_core::Secret;
use aigw_core::config::{Config, SecretSource};
use aigw_core::limits::{DEFAULT_TIMEOUT, RateLimits, RedisStore};
use aigw_core::limits::{Increment, LimitStore, bucket_key, window_start};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

mod peers;
use peers::{free_addr, redis_server};

/// Total tokens per tenant per hour.
const BUDGET: u64 = 30;

/// The token rules of upstream's example, narrowed to total tokens, plus a shadow rule.
fn token_rules() -> String {
    format!(
        r#"
        - clientSelectors: [{{headers: [{{name: x-tenant-id, type: Distinct}}]}}]
          limit: {{requests: {BUDGET}, unit: Hour}}
          cost:
            request: {{from: Number, number: 0}}
            response:
              from: Metadata
              metadata: {{namespace: io.envoy.ai_gateway, key: llm_total_token}}
        # Would refuse every second request of a tenant, were it not in shadow mode.
        - clientSelectors: [{{headers: [{{name: x-tenant-id, type: Distinct}}]}}]
          limit: {{requests: 1, unit: Hour}}
          shadowMode: true"#
    )
}

fn yaml(sim: SocketAddr) -> String {
    yaml_with(sim, &token_rules())
}

fn yaml_with(sim: SocketAddr, rules: &str) -> String {
    rate_limit_yaml(sim.port(), rules)
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

async fn simulator() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Simulator::new(SimulatorConfig::default()).serve(listener, std::future::pending()),
    );
    addr
}

/// A gateway over the configuration, counting in `limits`; returns its base URL.
async fn gateway(sim: SocketAddr, limits: &RateLimits) -> String {
    let config = Config::from_yaml_str(&yaml(sim), "rate-limit.yaml").unwrap();
    let snapshot = config::snapshot_with_limits(
        &config,
        &SecretSource::from_config(&config),
        Arc::new(aigw_providers::ProviderFactory),
        &credentials::default_resolver(),
        limits,
    )
    .unwrap();
    let gw = Gateway::builder(snapshot).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback_service(gw);
    tokio::spawn(async move {
        axum::serve(
            aigw_axum::net::nodelay(listener),
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A chat completion for `tenant`: status, headers and body.
async fn chat(url: &str, tenant: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = client()
        .post(format!("{url}/v1/chat/completions"))
        .header("x-tenant-id", tenant)
        .json(&json!({"model": "gpt-sim", "messages": [{"role": "user", "content": "count these five words"}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap())
}

async fn messages(url: &str, tenant: &str, stream: bool) -> reqwest::Response {
    client()
        .post(format!("{url}/v1/messages"))
        .header("x-tenant-id", tenant)
        .header("x-sim-chunks", "40")
        .header("x-sim-chunk-interval-ms", "50")
        .json(
            &json!({"model": "claude-sim", "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": "a prompt of seven words for claude"}]}),
        )
        .send()
        .await
        .unwrap()
}

fn total(body: &Value) -> u64 {
    body["usage"]["total_tokens"].as_u64().unwrap()
}

/// Spends `tenant`'s budget with chat completions on `urls` in turn; returns how many
/// succeeded and the 429 that ended it.
async fn spend(urls: &[&str], tenant: &str) -> (u64, u64, reqwest::header::HeaderMap, Value) {
    spend_settled(urls, tenant, None).await
}

/// As [`spend`]; with a store, each answer's response cost is awaited in the bucket
/// before the next request: a networked store takes it off the request path, so the
/// other instance may otherwise check before the charge has landed.
async fn spend_settled(
    urls: &[&str],
    tenant: &str,
    store: Option<&dyn LimitStore>,
) -> (u64, u64, reqwest::header::HeaderMap, Value) {
    let mut spent = 0;
    for (i, ok) in (0..100u64).enumerate() {
        let (status, headers, body) = chat(urls[i % urls.len()], tenant).await;
        if status == 429 {
            return (ok, spent, headers, body);
        }
        assert_eq!(status, 200, "{body}");
        // A check-only request cost: every request is let in while budget remains.
        assert!(
            spent < BUDGET,
            "request let in with {spent} of {BUDGET} spent"
        );
        spent += total(&body);
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

/// The tokens counted in `tenant`'s bucket of the total-token rule this hour.
async fn bucket(store: &dyn LimitStore, tenant: &str) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let start = window_start(now, 3600);
    let base = format!("aigw_default/token-limits_0_default/limited_x-tenant-id={tenant}");
    let inc = Increment {
        key: bucket_key(&base, start),
        cost: 0,
        expires_at: start + 3600,
    };
    store.incr(now, &[inc]).await.unwrap()[0]
}

fn assert_openai_429(headers: &reqwest::header::HeaderMap, body: &Value) {
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    let after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&after), "Retry-After {after}");
    assert_eq!(headers["x-envoy-ratelimited"], "true");
}

#[tokio::test]
async fn in_process_budget_per_tenant() {
    let sim = simulator().await;
    let limits = RateLimits::default();
    let url = gateway(sim, &limits).await;

    let (ok, spent, headers, body) = spend(&[&url], "tenant-a").await;
    assert!(ok >= 2, "the budget allows more than one request ({ok})");
    assert!(spent >= BUDGET);
    assert_openai_429(&headers, &body);

    // The Anthropic API gets its own error shape from the same bucket.
    let r = messages(&url, "tenant-a", false).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "rate_limit_error", "{v}");

    // Another tenant is unaffected; the shadow rule (1 request per hour) never refuses.
    for _ in 0..3 {
        let (status, _, body) = chat(&url, "tenant-b").await;
        assert_eq!(status, 200, "{body}");
    }
    assert!(
        limits
            .stats()
            .shadow_over_limit
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );

    // A configuration rebuilt over the same counters (a reload) keeps the spent budget.
    let reloaded = gateway(sim, &limits).await;
    assert_eq!(chat(&reloaded, "tenant-a").await.0, 429);
}

#[tokio::test]
async fn client_hang_up_mid_stream_is_charged() {
    let sim = simulator().await;
    let limits = RateLimits::default();
    let url = gateway(sim, &limits).await;

    // What the whole answer costs: the gateway reads the upstream on after a hang-up
    // (the default drain bound is far above the 2 s the reply takes), so each hang-up is
    // charged the provider's final usage, not the input and one output token that
    // Anthropic's message_start reports.
    let full: Value = messages(&url, "probe", false).await.json().await.unwrap();
    let input = full["usage"]["input_tokens"].as_u64().unwrap();
    let whole = input + full["usage"]["output_tokens"].as_u64().unwrap();
    assert!(input + 1 < whole, "{full}");

    let mut hang_ups = 0;
    loop {
        let mut r = messages(&url, "tenant-c", true).await;
        if r.status() == 429 {
            break;
        }
        assert_eq!(r.status(), 200);
        // Read the first event, then hang up with most of the stream still to come.
        let first = r.chunk().await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&first).contains("message_start"));
        drop(r);
        hang_ups += 1;
        assert!(hang_ups <= BUDGET, "hang-ups are free");
        // The gateway notices the closed connection and reads the rest of the reply
        // (2 s of simulated generation; the margin is for a loaded machine).
        tokio::time::sleep(Duration::from_millis(4000)).await;
    }
    // Each hang-up was charged what the whole reply costs.
    assert_eq!(
        hang_ups,
        BUDGET.div_ceil(whole),
        "charge per hang-up {whole}"
    );
}

/// A chat completion for `tenant` asking for one output token, which the simulated
/// provider refuses with `status` when given.
async fn small_chat(url: &str, tenant: &str, status: Option<u16>) -> reqwest::Response {
    let mut r = client()
        .post(format!("{url}/v1/chat/completions"))
        .header("x-tenant-id", tenant);
    if let Some(s) = status {
        r = r.header("x-sim-status", s.to_string());
    }
    r.json(&json!({"model": "gpt-sim", "max_tokens": 1,
                   "messages": [{"role": "user", "content": "count these five words"}]}))
        .send()
        .await
        .unwrap()
}

fn remaining_tokens(h: &reqwest::header::HeaderMap) -> u64 {
    h["x-ratelimit-remaining-tokens"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// An upstream error the gateway relays tells the client where it stands, as OpenAI's
/// own errors do: the gateway's `x-ratelimit-*` in place of the provider's (which
/// describe the gateway's credential), in both limit modes. The error is not charged:
/// upstream mode's count stays, reserve mode's hold comes back.
#[tokio::test]
async fn relayed_upstream_errors_carry_the_limit_headers() {
    let sim = simulator().await;
    for mode in ["upstream", "reserve"] {
        let limits = RateLimits::default().with_mode(mode.parse().unwrap());
        let url = gateway(sim, &limits).await;
        let r = small_chat(&url, "tenant-e", None).await;
        assert_eq!(r.status(), 200, "{mode}");
        let spent = total(&r.json().await.unwrap());
        let mut told = Vec::new();
        for code in [400, 500] {
            let r = small_chat(&url, "tenant-e", Some(code)).await;
            assert_eq!(r.status().as_u16(), code, "{mode}");
            let h = r.headers().clone();
            assert_eq!(h["x-ratelimit-limit-tokens"], BUDGET.to_string().as_str());
            assert!(h.contains_key("x-ratelimit-reset-tokens"), "{h:?}");
            // The simulated provider's own request limits are not passed off as the
            // gateway's.
            assert!(!h.contains_key("x-ratelimit-limit-requests"), "{h:?}");
            told.push(remaining_tokens(&h));
            let v: Value = r.json().await.unwrap();
            assert!(v["error"]["message"].is_string(), "{v}");
        }
        if mode == "upstream" {
            assert_eq!(told[0], BUDGET - spent, "{mode}");
        } else {
            // Its own hold (the prompt's estimate and one output token) is part of
            // what a reserve-mode request is told.
            assert!(told[0] < BUDGET - spent, "{mode}: {told:?}");
        }
        // Neither error was charged: the next request stands where they did.
        let r = small_chat(&url, "tenant-e", None).await;
        assert_eq!(r.status(), 200, "{mode}");
        told.push(remaining_tokens(r.headers()));
        assert!(told.iter().all(|t| *t == told[0]), "{mode}: {told:?}");
    }
}

/// In reserve mode an embeddings request holds the estimate of its `input` before the
/// call (no output), rather than being charged only once it has been answered: the
/// response tells the hold, and an input larger than what is left is refused up front.
#[tokio::test]
async fn reserve_mode_embeddings_hold_their_input_estimate() {
    let sim = simulator().await;
    let limits = RateLimits::default().with_mode("reserve".parse().unwrap());
    let url = gateway(sim, &limits).await;
    let embed = |input: Value| {
        client()
            .post(format!("{url}/v1/embeddings"))
            .header("x-tenant-id", "tenant-m")
            .json(&json!({"model": "gpt-sim", "input": input}))
            .send()
    };
    // 40 bytes, counted as 10 tokens (bytes/4: `gpt-sim` has no tokenizer).
    let r = embed(json!(["abcd".repeat(5), "abcd".repeat(5)]))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(remaining_tokens(r.headers()), BUDGET - 10);
    let used = r.json::<Value>().await.unwrap()["usage"]["total_tokens"]
        .as_u64()
        .unwrap();
    assert!(used > 0 && used < BUDGET, "{used}");
    // A token array is counted exactly: more than what is left is refused at once.
    let too_many: Vec<u64> = (0..=BUDGET - used).collect();
    let r = embed(json!(too_many)).await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(remaining_tokens(r.headers()), BUDGET - used);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded", "{v}");
    // What fits is admitted, holding exactly its length.
    let fits: Vec<u64> = (0..BUDGET - used).collect();
    let r = embed(json!(fits)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(remaining_tokens(r.headers()), 0);
}

fn redis_limits(url: &str) -> RateLimits {
    let store: Arc<dyn LimitStore> =
        Arc::new(RedisStore::new(&Secret::new(url), DEFAULT_TIMEOUT).unwrap());
    RateLimits::new(Some(store))
}

#[tokio::test]
async fn redis_budget_is_shared_by_instances_and_fails_open() {
    let Some(mut redis) = redis_server() else {
        return;
    };
    let sim = simulator().await;
    let (a, b) = (redis_limits(&redis.url), redis_limits(&redis.url));
    let (one, two) = (gateway(sim, &a).await, gateway(sim, &b).await);

    // Alternating between the instances spends one budget, not two.
    let observer =
        RedisStore::new(&Secret::new(redis.url.as_str()), Duration::from_secs(2)).unwrap();
    let (_, spent, headers, body) = spend_settled(&[&one, &two], "tenant-a", Some(&observer)).await;
    assert_eq!(bucket(&observer, "tenant-a").await, spent);
    assert!((BUDGET..2 * BUDGET).contains(&spent), "{spent}");
    assert_openai_429(&headers, &body);
    assert_eq!(chat(&one, "tenant-a").await.0, 429);
    assert_eq!(chat(&two, "tenant-a").await.0, 429);
    assert_eq!(chat(&two, "tenant-b").await.0, 200);

    // Redis goes away: requests are served (even the spent tenant's), promptly.
    redis.kill();
    for url in [&one, &two, &one, &two] {
        let started = Instant::now();
        let (status, _, body) = chat(url, "tenant-a").await;
        assert_eq!(status, 200, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    assert!(
        a.stats()
            .store_error
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
}

fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{addr} never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `aigw run` with `AIGW_REDIS_URL`: a per-client-address rule (the address comes from
/// the connection) refuses the third request of the day, the refusal is counted on
/// `/metrics`, and the Redis password never reaches the log.
#[tokio::test]
async fn aigw_run_limits_by_client_address_in_redis() {
    let Some(redis) = redis_server() else {
        return;
    };
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("limits.yaml");
    let rules = r#"
        - clientSelectors: [{sourceCIDR: {type: Distinct, value: 127.0.0.0/8}}]
          limit: {requests: 2, unit: Day}"#;
    std::fs::write(&config, yaml_with(sim, rules)).unwrap();
    let log = dir.path().join("aigw.log");
    let (listen, admin) = (free_addr(), free_addr());
    let mut gw = Command::new(env!("CARGO_BIN_EXE_aigw"))
        .arg("run")
        .arg(&config)
        .args([
            "--listen",
            &listen.to_string(),
            "--admin",
            &admin.to_string(),
        ])
        .env("AIGW_REDIS_URL", &redis.url)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_listening(listen);
    let url = format!("http://{listen}");
    let statuses = [
        chat(&url, "t").await.0,
        chat(&url, "t").await.0,
        chat(&url, "other-tenant").await.0,
    ];
    let metrics = client()
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    gw.kill().unwrap();
    gw.wait().unwrap();
    // The budget is the address's, whatever the headers say.
    assert_eq!(statuses, [200, 200, 429]);
    assert!(
        metrics.contains("aigw_ratelimit_decisions_total{decision=\"over_limit\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("aigw_ratelimit_decisions_total{decision=\"ok\"} 2"));
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("global rate limits counted in Redis"), "{log}");
    assert!(log.contains("redis://***@127.0.0.1"), "{log}");
    assert!(!log.contains("s3cret"), "{log}");
}
