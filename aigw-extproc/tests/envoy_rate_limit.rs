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
use common::envoy::{Envoy, envoy_binary, free_port};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Total tokens per tenant per hour.
const BUDGET: u64 = 30;
const REDIS_PASSWORD: &str = "s3cret-e2e";

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

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_http_ok(url: &str) {
    let start = Instant::now();
    loop {
        if reqwest::get(url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{url} never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Envoy in front of an `aigw-extproc` over `config`; `redis` goes in through
/// `AIGW_REDIS_URL`.
struct Stack {
    envoy: Envoy,
    _extproc: Proc,
    base: String,
    admin: String,
    extproc_log: PathBuf,
}

impl Stack {
    async fn start(envoy_bin: &Path, dir: &Path, config: &Path, redis: Option<&str>) -> Self {
        Self::start_with(envoy_bin, dir, config, redis, &[]).await
    }

    /// As [`Stack::start`], with more `aigw-extproc` arguments.
    async fn start_with(
        envoy_bin: &Path,
        dir: &Path,
        config: &Path,
        redis: Option<&str>,
        args: &[&str],
    ) -> Self {
        let sock = dir.join("extproc.sock");
        let extproc_addr = format!("unix://{}", sock.display());
        let (listen, envoy_admin, admin) = (free_port(), free_port(), free_port());
        let out = Command::new(env!("CARGO_BIN_EXE_aigw-extproc"))
            .arg("envoy-config")
            .arg(config)
            .args(["--extproc", &extproc_addr])
            .args(["--listen", &format!("127.0.0.1:{listen}")])
            .args(["--admin", &format!("127.0.0.1:{envoy_admin}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bootstrap = dir.join("envoy.yaml");
        std::fs::write(&bootstrap, &out.stdout).unwrap();
        let extproc_log = dir.join("extproc.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aigw-extproc"));
        cmd.arg("--config")
            .arg(config)
            .args(["--listen", &extproc_addr])
            .args(["--admin", &format!("127.0.0.1:{admin}")])
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("AIGW_REDIS_URL")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&extproc_log).unwrap());
        if let Some(url) = redis {
            cmd.env("AIGW_REDIS_URL", url);
        }
        let extproc = Proc(cmd.spawn().unwrap());
        let admin = format!("http://127.0.0.1:{admin}");
        wait_http_ok(&format!("{admin}/health")).await;
        let envoy = Envoy::start(envoy_bin, &bootstrap, dir, envoy_admin).await;
        Self {
            envoy,
            _extproc: extproc,
            base: format!("http://127.0.0.1:{listen}"),
            admin,
            extproc_log,
        }
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.extproc_log).unwrap_or_default()
    }
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
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
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

fn decisions(metrics: &str, decision: &str) -> u64 {
    let prefix = format!("aigw_ratelimit_decisions_total{{decision=\"{decision}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {decision} decisions in\n{metrics}"))
        .parse()
        .unwrap()
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
    let stack = Stack::start(&envoy_bin, dir.path(), &cfg, None).await;
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
    let stack = Stack::start(&envoy_bin, dir.path(), &cfg, None).await;

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
    let stack = Stack::start(&envoy_bin, dir.path(), &cfg, None).await;

    // An admitted response carries the x-ratelimit-* headers as header mutations.
    let a = chat(&stack.base, "tenant-headers").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.headers["x-ratelimit-limit-tokens"], "30");
    assert_eq!(a.headers["x-ratelimit-remaining-tokens"], "30");
    let b = chat(&stack.base, "tenant-headers").await;
    let remaining: u64 = b.headers["x-ratelimit-remaining-tokens"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(remaining < 30, "{remaining}");

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

struct RedisServer {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_server() -> Option<RedisServer> {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("redis-server"))
            .find(|f| f.is_file())
    });
    let Some(bin) = found else {
        assert!(
            std::env::var("AIGW_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
            "redis-server is not on PATH and AIGW_REQUIRE_EXTERNAL=1"
        );
        eprintln!("skipping: redis-server is not on PATH");
        return None;
    };
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--requirepass", REDIS_PASSWORD])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(RedisServer {
        child,
        url: format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"),
        _dir: dir,
    })
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
    let stack = Stack::start(&envoy_bin, dir.path(), &cfg, Some(&redis.url)).await;
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

/// Sends requests one after the other until one is refused; returns the output tokens
/// of the admitted ones and every `x-ratelimit-remaining-tokens` seen.
async fn spend_output(url: String, tenant: &'static str) -> (u64, Vec<u64>) {
    let (mut used, mut remaining) = (0, Vec::new());
    loop {
        let a = post(
            &url,
            "/v1/chat/completions",
            &[("x-tenant-id", tenant), ("x-sim-chunks", "20")],
            json!({"model": "gpt-sim", "max_tokens": PER_REQUEST,
                   "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        let left = a.headers["x-ratelimit-remaining-tokens"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        remaining.push(left);
        match a.status {
            200 => used += a.body["usage"]["completion_tokens"].as_u64().unwrap(),
            429 => {
                assert_openai_429(&a);
                return (used, remaining);
            }
            s => panic!("{s}: {}", a.body),
        }
    }
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
    let stack = Stack::start_with(&envoy_bin, dir.path(), &cfg, Some(&redis.url), &args).await;
    let reserve = "reserve".parse::<LimitMode>().unwrap();
    let gateway = standalone_with(&cfg, &redis.url, reserve, Duration::from_secs(2)).await;
    let mut tasks = Vec::new();
    for i in 0..4 {
        let url = if i % 2 == 0 {
            stack.base.clone()
        } else {
            gateway.clone()
        };
        tasks.push(tokio::spawn(spend_output(url, "tenant-r")));
    }
    let mut used = 0;
    for t in tasks {
        let (u, remaining) = t.await.unwrap();
        used += u;
        for w in remaining.windows(2) {
            assert!(w[1] < w[0] || w[1] == 0, "{remaining:?}");
        }
    }
    assert_eq!(used, OUTPUT_BUDGET);
    assert_eq!(decisions(&stack.metrics().await, "store_error"), 0);
}
