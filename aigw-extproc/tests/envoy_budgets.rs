//! Money budgets behind a real Envoy: a budget that runs out mid-stream ends the
//! stream, through Envoy and `aigw-extproc`, with the error event the official OpenAI
//! and Anthropic SDKs raise; the next request is refused up front with the 429 they
//! do not retry; the spend is counted in Prometheus.
//!
//! The prices are made up for the test (large, so a few tokens cost cents).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

mod common;

use aigw_axum::simulator::{Simulator, SimulatorConfig};
use common::envoy::{Envoy, envoy_binary, free_port};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PRICES: &str = r#"
prices:
  - {model: gpt-4o-mini, input: "0.15", output: "2000"}
  - {model: claude-sonnet-4, provider: anthropic, input: "0.3", output: "2000"}
"#;

/// One route per SDK, each with a budget of 20 cents that cuts streams off.
const BUDGETS: &str = r#"
budgets:
  - {name: gpt, route: default/gpt, limit_usd: "0.20", period: day, cutoff: true}
  - {name: claude, route: default/claude, limit_usd: "0.20", period: month, cutoff: true}
"#;

fn config(sim: u16) -> String {
    let route = |name: &str, model: &str, backend: &str| {
        format!(
            r#"---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gw, kind: Gateway, group: gateway.networking.k8s.io}}]
  rules:
    - matches: [{{headers: [{{type: Exact, name: x-ai-eg-model, value: {model}}}]}}]
      backendRefs: [{{name: {backend}}}]
"#
        )
    };
    format!(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: c
  listeners: [{{name: http, protocol: HTTP, port: 80}}]
{}{}---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata: {{name: openai, namespace: default}}
spec:
  schema: {{name: OpenAI}}
  backendRef: {{name: sim, kind: Backend, group: gateway.envoyproxy.io}}
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata: {{name: anthropic, namespace: default}}
spec:
  schema: {{name: Anthropic}}
  backendRef: {{name: sim, kind: Backend, group: gateway.envoyproxy.io}}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: sim, namespace: default}}
spec:
  endpoints: [{{ip: {{address: 127.0.0.1, port: {sim}}}}}]
"#,
        route("gpt", "gpt-4o-mini", "openai"),
        route("claude", "claude-sonnet-4", "anthropic"),
    )
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
    while !reqwest::get(url)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{url} never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Envoy in front of `aigw-extproc` with the price table and budgets in `dir`.
async fn stack(envoy_bin: &Path, dir: &Path, config: &Path) -> (Envoy, Proc, String, String) {
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
    let extproc = Proc(
        Command::new(env!("CARGO_BIN_EXE_aigw-extproc"))
            .arg("--config")
            .arg(config)
            .args(["--listen", &extproc_addr])
            .args(["--admin", &format!("127.0.0.1:{admin}")])
            .arg("--pricing-file")
            .arg(dir.join("prices.yaml"))
            .arg("--budgets-file")
            .arg(dir.join("budgets.yaml"))
            .env_remove("AIGW_REDIS_URL")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("extproc.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let admin = format!("http://127.0.0.1:{admin}");
    wait_http_ok(&format!("{admin}/health")).await;
    let envoy = Envoy::start(envoy_bin, &bootstrap, dir, envoy_admin).await;
    (envoy, extproc, format!("http://127.0.0.1:{listen}"), admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_cut_off_through_envoy_is_raised_by_the_official_sdks() {
    let Some(envoy_bin) = envoy_binary() else {
        return;
    };
    let Some(py) = std::env::var_os("AIGW_PYTHON") else {
        assert!(
            std::env::var("AIGW_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
            "AIGW_REQUIRE_EXTERNAL=1 but AIGW_PYTHON is not set"
        );
        return;
    };
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = l.local_addr().unwrap().port();
    tokio::spawn(Simulator::new(SimulatorConfig::default()).serve(l, std::future::pending()));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gateway.yaml");
    std::fs::write(&cfg, config(sim)).unwrap();
    std::fs::write(dir.path().join("prices.yaml"), PRICES).unwrap();
    std::fs::write(dir.path().join("budgets.yaml"), BUDGETS).unwrap();
    let (_envoy, _extproc, base, admin) = stack(&envoy_bin, dir.path(), &cfg).await;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../aigw-axum/tests/py/budget_sdk.py");
    let plan = json!({"url": base, "openai_key": "sk-unused", "anthropic_key": "sk-unused",
                      "chunks": 600});
    let out = Command::new(&py)
        .arg(script)
        .arg(plan.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("{r:#}");
    for sdk in ["openai", "anthropic"] {
        let case = &r[sdk];
        assert!(
            case["raised"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("ran out during the response")),
            "{sdk}: the stream ends with the budget's error event: {case}"
        );
        assert!(
            !case["text"].as_str().unwrap().is_empty(),
            "{sdk}: text arrived before the cut: {case}"
        );
        assert_eq!(case["refused"]["status"], 429, "{sdk}: {case}");
        assert_eq!(case["refused"]["should_retry"], "false", "{sdk}: {case}");
    }
    assert_eq!(r["openai"]["raised"]["class"], "APIError", "{r}");
    assert_eq!(r["openai"]["refused"]["code"], "insufficient_quota", "{r}");
    assert_eq!(r["anthropic"]["refused"]["class"], "RateLimitError", "{r}");

    // Counted where an operator looks: each budget cut one stream and refused one
    // request; the spend of each route is its cut stream's: the budget, plus what the
    // upstream had sent in the chunks Envoy handed over before it closed the upstream
    // (read for their usage only, never delivered).
    let deadline = Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        let m = reqwest::get(format!("{admin}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if m.contains("aigw_spend_usd_total{") && m.matches("route=\"default/").count() >= 2
            || Instant::now() > deadline
        {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for budget in ["gpt", "claude"] {
        assert!(
            metrics.contains(&format!(
                "aigw_budget_cutoffs_total{{budget=\"{budget}\"}} 1"
            )),
            "{metrics}"
        );
        assert!(
            metrics.contains(&format!(
                "aigw_budget_refusals_total{{budget=\"{budget}\"}} 1"
            )),
            "{metrics}"
        );
    }
    for route in ["default/claude", "default/gpt"] {
        let spent: f64 = metrics
            .lines()
            .find(|l| {
                l.starts_with("aigw_spend_usd_total{") && l.contains(&format!("route=\"{route}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or_else(|| panic!("no spend for {route}: {metrics}"))
            .parse()
            .unwrap();
        println!("{route} spent {spent}");
        assert!((0.20..0.25).contains(&spent), "{route} spent {spent}");
    }
}
