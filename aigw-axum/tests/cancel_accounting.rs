//! Cancel accounting through `aigw run`: a client that hangs up after a few chunks of
//! an OpenAI, an Anthropic and an OpenAI→Bedrock stream is charged the provider's final
//! usage when the upstream completes within the drain bound, and an `estimated` charge
//! otherwise — never zero. Read from the access log and `/metrics` the process writes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use aigw_axum::simulator::{Simulator, SimulatorConfig};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

mod peers;
use peers::{Proc, free_addr, wait_listening};

/// Content chunks of every simulated reply, and the pause between them.
const CHUNKS: &str = "24";
const INTERVAL_MS: &str = "20";

fn config(sim: SocketAddr) -> String {
    let port = sim.port();
    let backend = |name: &str, schema: &str| {
        format!(
            "---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIServiceBackend\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  schema: {{name: {schema}}}\n  backendRef: {{name: sim, kind: Backend, group: gateway.envoyproxy.io}}\n"
        )
    };
    let mut y = format!(
        "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {{name: sim, namespace: default}}\nspec:\n  endpoints: [{{ip: {{address: 127.0.0.1, port: {port}}}}}]\n"
    );
    y.push_str(&backend("openai", "OpenAI"));
    y.push_str(&backend("anthropic", "Anthropic"));
    y.push_str(&backend("bedrock", "AWSBedrock"));
    // Metered routes (costs configured) ask every stream for its usage.
    y.push_str(
        "---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIGatewayRoute\nmetadata: {name: r, namespace: default}\nspec:\n  llmRequestCosts: [{metadataKey: llm_total_token, type: TotalToken}]\n  rules:\n",
    );
    for (model, backend) in [
        ("gpt-4o-mini", "openai"),
        ("claude-sim", "anthropic"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "bedrock"),
    ] {
        y.push_str(&format!(
            "    - matches: [{{headers: [{{type: Exact, name: x-ai-eg-model, value: \"{model}\"}}]}}]\n      backendRefs: [{{name: {backend}}}]\n"
        ));
    }
    y
}

struct Gateway {
    _proc: Proc,
    url: String,
    admin: String,
    log: std::path::PathBuf,
}

async fn start(dir: &Path, sim: SocketAddr, drain: &str) -> Gateway {
    start_with(dir, sim, drain, &[]).await
}

/// As [`start`], with more environment for `aigw run`.
async fn start_with(dir: &Path, sim: SocketAddr, drain: &str, env: &[(&str, &str)]) -> Gateway {
    let cfg = dir.join(format!("gw-{drain}.yaml"));
    std::fs::write(&cfg, config(sim)).unwrap();
    let log = dir.join(format!("gw-{drain}.log"));
    let (listen, admin) = (free_addr(), free_addr());
    let child = Command::new(env!("CARGO_BIN_EXE_aigw"))
        .args(["--log-json", "run"])
        .arg(&cfg)
        .args([
            "--listen",
            &listen.to_string(),
            "--admin",
            &admin.to_string(),
        ])
        // The bound is configurable from the environment as well as by flag.
        .env("AIGW_CANCEL_DRAIN_TIMEOUT", drain)
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    wait_listening(listen);
    Gateway {
        _proc: proc,
        url: format!("http://{listen}"),
        admin: format!("http://{admin}"),
        log,
    }
}

#[derive(Clone, Copy, Debug)]
enum Api {
    OpenAI,
    Anthropic,
    Bedrock,
}

impl Api {
    fn request(self, url: &str, extra: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let prompt = "tell me a long story about a gateway that counts every token";
        let (path, body) = match self {
            Self::OpenAI => (
                "/v1/chat/completions",
                json!({"model": "gpt-4o-mini", "stream": true,
                       "messages": [{"role": "user", "content": prompt}]}),
            ),
            Self::Bedrock => (
                "/v1/chat/completions",
                json!({"model": "anthropic.claude-3-haiku-20240307-v1:0", "stream": true,
                       "messages": [{"role": "user", "content": prompt}]}),
            ),
            Self::Anthropic => (
                "/v1/messages",
                json!({"model": "claude-sim", "stream": true, "max_tokens": 256,
                       "messages": [{"role": "user", "content": prompt}]}),
            ),
        };
        let mut r = reqwest::Client::new()
            .post(format!("{url}{path}"))
            .header("x-sim-chunks", CHUNKS)
            .header("x-sim-chunk-interval-ms", INTERVAL_MS)
            .json(&body);
        for (k, v) in extra {
            r = r.header(*k, *v);
        }
        r
    }
}

/// The access-log lines of `log` so far.
fn access_lines(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "aigw::access")
        .map(|v| v["fields"].clone())
        .collect()
}

/// Waits for the `n`th access-log line and returns it.
async fn nth_line(log: &Path, n: usize, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let lines = access_lines(log);
        if let Some(l) = lines.get(n) {
            return l.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no access-log line {n}: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads the whole stream; returns the access-log line it produced.
async fn read_whole(gw: &Gateway, api: Api, seen: &mut usize) -> Value {
    let r = api.request(&gw.url, &[]).send().await.unwrap();
    assert_eq!(r.status(), 200, "{api:?}");
    let body = r.text().await.unwrap();
    assert!(!body.is_empty());
    let line = nth_line(&gw.log, *seen, Duration::from_secs(30)).await;
    *seen += 1;
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["token_source"], "reported", "{line}");
    line
}

/// Reads `n` chunks of a stream and hangs up; returns the access-log line.
async fn hang_up_after(
    gw: &Gateway,
    api: Api,
    n: usize,
    extra: &[(&str, &str)],
    seen: &mut usize,
    within: Duration,
) -> Value {
    let mut r = api.request(&gw.url, extra).send().await.unwrap();
    assert_eq!(r.status(), 200, "{api:?}");
    for _ in 0..n {
        r.chunk().await.unwrap().unwrap();
    }
    drop(r);
    let line = nth_line(&gw.log, *seen, within).await;
    *seen += 1;
    assert_eq!(line["status"], 499, "{line}");
    line
}

fn tokens(line: &Value, field: &str) -> u64 {
    line[field].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_ups_are_charged_the_final_usage_or_an_estimate() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = listener.local_addr().unwrap();
    tokio::spawn(
        Simulator::new(SimulatorConfig::default()).serve(listener, std::future::pending()),
    );
    let dir = tempfile::tempdir().unwrap();
    // A drain bound far above the ~0.5 s a reply takes, far below a stalled upstream.
    let gw = start(dir.path(), sim, "3s").await;
    let mut seen = 0;
    for api in [Api::OpenAI, Api::Anthropic, Api::Bedrock] {
        let whole = read_whole(&gw, api, &mut seen).await;
        let (input, output) = (
            tokens(&whole, "input_tokens"),
            tokens(&whole, "output_tokens"),
        );
        assert!(input > 0 && output > 4, "{api:?}: {whole}");

        // The upstream completes within the bound: the provider's own figures.
        let drained = hang_up_after(&gw, api, 3, &[], &mut seen, Duration::from_secs(30)).await;
        assert_eq!(drained["token_source"], "reported", "{api:?}: {drained}");
        assert_eq!(
            tokens(&drained, "input_tokens"),
            input,
            "{api:?}: {drained}"
        );
        assert_eq!(
            tokens(&drained, "output_tokens"),
            output,
            "{api:?}: {drained}"
        );

        // The upstream stalls past the bound: an estimate from what was delivered.
        let stalled = [("x-sim-stall-after-chunks", "8")];
        let started = Instant::now();
        let cut = hang_up_after(&gw, api, 3, &stalled, &mut seen, Duration::from_secs(30)).await;
        assert!(started.elapsed() >= Duration::from_secs(3), "{api:?}");
        assert_eq!(cut["token_source"], "estimated", "{api:?}: {cut}");
        let (ei, eo) = (tokens(&cut, "input_tokens"), tokens(&cut, "output_tokens"));
        println!(
            "{api:?}: reported {input} in / {output} out; cut and estimated {ei} in / {eo} out"
        );
        assert!(ei > 0 && eo > 0, "never zero: {api:?}: {cut}");
        // At most what the whole reply costs, and within the documented bound of the
        // reported input (a fifth of the prompt's tokens, plus the message overhead).
        assert!(eo < output, "{api:?}: {eo} of {output}");
        assert!(
            ei.abs_diff(input) <= input / 5 + 8,
            "{api:?}: {ei} vs {input}"
        );
    }

    // The metric says which charges were estimated.
    let metrics = reqwest::get(format!("{}/metrics", gw.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = |source: &str| {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("aigw_metered_tokens_total{")
                    && l.contains(&format!("aigw_token_source=\"{source}\""))
            })
            .count()
    };
    assert!(series("reported") >= 6, "{metrics}");
    assert!(series("estimated") >= 3, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_draining_a_hang_up_is_estimated_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = listener.local_addr().unwrap();
    tokio::spawn(
        Simulator::new(SimulatorConfig::default()).serve(listener, std::future::pending()),
    );
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), sim, "0").await;
    let mut seen = 0;
    for api in [Api::OpenAI, Api::Anthropic, Api::Bedrock] {
        let line = hang_up_after(&gw, api, 4, &[], &mut seen, Duration::from_secs(30)).await;
        assert_eq!(line["token_source"], "estimated", "{api:?}: {line}");
        assert!(tokens(&line, "output_tokens") > 0, "{api:?}: {line}");
        assert!(tokens(&line, "input_tokens") > 0, "{api:?}: {line}");
    }
}

/// The byte bound ends a drain too: an upstream still streaming when the drain has read
/// `--cancel-drain-max-bytes` is left there, and the hang-up is charged an estimate —
/// long before the time bound, although the reply would have completed within it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_byte_bound_ends_a_drain() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = listener.local_addr().unwrap();
    tokio::spawn(
        Simulator::new(SimulatorConfig::default()).serve(listener, std::future::pending()),
    );
    let dir = tempfile::tempdir().unwrap();
    let bound = [("AIGW_CANCEL_DRAIN_MAX_BYTES", "256")];
    let gw = start_with(dir.path(), sim, "30s", &bound).await;
    let mut seen = 0;
    for api in [Api::OpenAI, Api::Anthropic, Api::Bedrock] {
        let started = Instant::now();
        let line = hang_up_after(&gw, api, 3, &[], &mut seen, Duration::from_secs(20)).await;
        assert_eq!(line["token_source"], "estimated", "{api:?}: {line}");
        assert!(tokens(&line, "output_tokens") > 0, "{api:?}: {line}");
        assert!(started.elapsed() < Duration::from_secs(20), "{api:?}");
    }
}
