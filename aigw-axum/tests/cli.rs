//! The `aigw` binary's commands: `validate` (every error, one line per valid file),
//! `version`, and `run` with configuration hot reload (valid changes swap in, invalid
//! ones are logged and the running configuration is kept).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod peers;
use peers::free_addr;

const AIGW: &str = env!("CARGO_BIN_EXE_aigw");

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `aigw simulate` on a free port; it stops when the handle drops.
fn simulator() -> (SocketAddr, Proc) {
    let sim = free_addr();
    let proc = Proc(
        Command::new(AIGW)
            .args(["simulate", "--listen", &sim.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    (sim, proc)
}

fn wait_listening(addr: SocketAddr) {
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{addr} never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn route_yaml(model: &str, sim_port: u16) -> String {
    format!(
        r#"apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata:
  name: r
  namespace: default
spec:
  rules:
    - matches:
        - headers:
            - type: Exact
              name: x-ai-eg-model
              value: {model}
      backendRefs:
        - name: sim
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata:
  name: sim
  namespace: default
spec:
  schema:
    name: OpenAI
  backendRef:
    name: sim
    kind: Backend
    group: gateway.envoyproxy.io
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata:
  name: sim
  namespace: default
spec:
  endpoints:
    - ip:
        address: 127.0.0.1
        port: {sim_port}
"#
    )
}

#[test]
fn validate_prints_one_line_per_valid_file_and_every_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), route_yaml("m1", 1)).unwrap();
    let out = Command::new(AIGW)
        .arg("validate")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("a.yaml: ok: 1 route(s), 1 AI service backend(s), 1 backend(s)"));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIGatewayRoute\nmetadata:\n  name: r2\n  namespace: default\nspec:\n  rules:\n    - backendRefs:\n        - name: missing-one\n        - name: missing-two\n",
    )
    .unwrap();
    let out = Command::new(AIGW)
        .arg("validate")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("missing-one") && stderr.contains("missing-two"),
        "{stderr}"
    );
}

/// The `aigw` binary asks pools' endpoint pickers: a pool backendRef validates without
/// a warning; a pool whose picker reference is unusable is an error naming the field.
#[test]
fn validate_accepts_inference_pools_and_names_a_broken_picker_reference() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), route_yaml("m1", 1)).unwrap();
    let pool = "apiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIGatewayRoute\nmetadata:\n  name: pool-route\n  namespace: default\nspec:\n  rules:\n    - backendRefs:\n        - name: vllm\n          group: inference.networking.k8s.io\n          kind: InferencePool\n---\napiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata:\n  name: vllm\n  namespace: default\nspec:\n  targetPorts:\n    - number: 8000\n  selector:\n    matchLabels:\n      app: vllm\n  endpointPickerRef:\n    name: vllm-epp\n    port:\n      number: 9002\n";
    std::fs::write(dir.path().join("pool.yaml"), pool).unwrap();
    let validate = || {
        Command::new(AIGW)
            .arg("validate")
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = validate();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("InferencePool"), "{stderr}");

    let broken = pool.replace("    port:\n      number: 9002\n", "");
    std::fs::write(dir.path().join("pool.yaml"), broken).unwrap();
    let out = validate();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("InferencePool/default/vllm")
            && stderr.contains("spec.endpointPickerRef.port.number"),
        "{stderr}"
    );
}

#[test]
fn version_prints_the_crate_version() {
    let out = Command::new(AIGW).arg("version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("aigw {}", env!("CARGO_PKG_VERSION"))
    );
}

/// An invalid telemetry setting stops `aigw run` before it serves, naming the variable
/// (a credential in an OTLP header setting is never echoed).
#[test]
fn run_refuses_an_invalid_otel_setting_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gw.yaml");
    std::fs::write(&cfg, route_yaml("m", 9)).unwrap();
    for (var, value) in [
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
        ("OTEL_METRICS_EXPORTER", "statsd"),
        ("AI_GATEWAY_TRACING_SEMCONV", "otel"),
        (
            "OTEL_AIGW_METRICS_REQUEST_HEADER_ATTRIBUTES",
            "authorization:auth",
        ),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api key=sk-otlp-secret-1"),
    ] {
        let child = Command::new(AIGW)
            .args(["run", cfg.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .args(["--admin", "127.0.0.1:0"])
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
            .env(var, value)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A start-up that wrongly succeeds must not hang the test.
        let (status, stderr) = exit_within(child, Duration::from_secs(60));
        assert!(!status.success(), "{var}={value} started:\n{stderr}");
        assert!(
            stderr.contains(&format!("invalid {var}")),
            "{var}: {stderr}"
        );
        assert!(!stderr.contains("sk-otlp-secret-1"), "{stderr}");
    }
}

async fn chat_status(url: &str, model: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .json(&serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn run_hot_reloads_valid_changes_and_keeps_the_config_on_invalid_ones() {
    let (sim, _sim) = simulator();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gateway.yaml");
    std::fs::write(&cfg, route_yaml("first", sim.port())).unwrap();
    let (listen, admin) = (free_addr(), free_addr());
    let _gw = Proc(
        Command::new(AIGW)
            .args(["run", "--reload-interval-ms", "100", "--listen"])
            .arg(listen.to_string())
            .arg("--admin")
            .arg(admin.to_string())
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(sim);
    wait_listening(listen);
    wait_listening(admin);
    let url = format!("http://{listen}");
    assert_eq!(chat_status(&url, "first").await, 200);
    assert_eq!(chat_status(&url, "second").await, 404);
    let ready = reqwest::get(format!("http://{admin}/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
    // The allocator's figures (the binary allocates with jemalloc): what is in use,
    // never more than the pages that hold it.
    let memory = reqwest::get(format!("http://{admin}/memory"))
        .await
        .unwrap();
    assert_eq!(memory.status(), 200);
    let memory: serde_json::Value = serde_json::from_str(&memory.text().await.unwrap()).unwrap();
    let field = |k: &str| memory[k].as_u64().unwrap_or(0);
    assert!(
        field("allocated") > 0 && field("allocated") <= field("active"),
        "{memory}"
    );

    std::fs::write(&cfg, route_yaml("second", sim.port())).unwrap();
    let start = Instant::now();
    while chat_status(&url, "second").await != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "reload never applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(chat_status(&url, "first").await, 404);

    std::fs::write(&cfg, "apiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIGatewayRoute\nmetadata: {name: broken}\nspec:\n  rules:\n    - backendRefs: [{name: nowhere}]\n").unwrap();
    let start = Instant::now();
    loop {
        let metrics = reqwest::get(format!("http://{admin}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("aigw_config_reloads_total{result=\"failure\"} 1") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(chat_status(&url, "second").await, 200, "old config kept");
}

/// `aigw run` on the bundled simulator, logging JSON lines to a pipe.
fn run_logging(listen: SocketAddr, admin: SocketAddr, extra: &[&str]) -> Child {
    Command::new(AIGW)
        .args(["--log-json", "run", "--listen"])
        .arg(listen.to_string())
        .arg("--admin")
        .arg(admin.to_string())
        .args(extra)
        .env_remove("OPENAI_API_KEY")
        .env_remove("AZURE_OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Starts a stream of `chunks` chunks `interval_ms` apart and reads its first bytes.
async fn start_stream(
    listen: SocketAddr,
    chunks: u32,
    interval_ms: u32,
) -> (reqwest::Response, String) {
    let mut r = reqwest::Client::new()
        .post(format!("http://{listen}/v1/chat/completions"))
        .header("x-sim-chunks", chunks.to_string())
        .header("x-sim-chunk-interval-ms", interval_ms.to_string())
        .json(&serde_json::json!({"model": "gpt-4o-mini", "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let first = String::from_utf8(r.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    (r, first)
}

fn sigterm(child: &Child) {
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// Waits for the process to exit (within `limit`) and returns its status and log.
fn exit_within(child: Child, limit: Duration) -> (std::process::ExitStatus, String) {
    let start = Instant::now();
    let mut child = child;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn access_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter(|l| l.contains("\"target\":\"aigw::access\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn sigterm_drains_in_flight_streams_then_exits_zero() {
    let (listen, admin) = (free_addr(), free_addr());
    let gw = run_logging(listen, admin, &["--drain-timeout", "10s"]);
    wait_listening(listen);
    let (mut r, mut text) = start_stream(listen, 6, 200).await;
    sigterm(&gw);
    let signalled = Instant::now();
    // The listener closes at once: new connections are refused while the stream runs.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        TcpStream::connect(listen).is_err(),
        "a new connection was accepted after SIGTERM"
    );
    while let Some(c) = r.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&c));
    }
    assert!(text.contains("data: [DONE]"), "stream cut short: {text}");
    assert!(
        signalled.elapsed() > Duration::from_millis(600),
        "the stream ended early"
    );
    let (status, log) = exit_within(gw, Duration::from_secs(10));
    assert!(status.success(), "{status}\n{log}");
    // Its usage was recorded and written out before the exit.
    let lines = access_lines(&log);
    assert_eq!(lines.len(), 1, "{log}");
    let span = &lines[0]["span"];
    assert_eq!(span["status"], 200, "{log}");
    assert!(span["output_tokens"].as_u64().unwrap() > 0, "{log}");
    assert!(
        log.contains("drained: every in-flight request finished"),
        "{log}"
    );
}

#[tokio::test]
async fn the_drain_deadline_bounds_the_exit_and_records_cut_streams() {
    let (listen, admin) = (free_addr(), free_addr());
    let gw = run_logging(listen, admin, &["--drain-timeout", "500ms"]);
    wait_listening(listen);
    let (mut r, _) = start_stream(listen, 100, 200).await;
    sigterm(&gw);
    let signalled = Instant::now();
    let (status, log) = exit_within(gw, Duration::from_secs(5));
    assert!(status.success(), "{status}\n{log}");
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "{:?}",
        signalled.elapsed()
    );
    // The client sees the stream end without its terminator.
    let mut rest = String::new();
    while let Ok(Some(c)) = r.chunk().await {
        rest.push_str(&String::from_utf8_lossy(&c));
    }
    assert!(!rest.contains("[DONE]"));
    let lines = access_lines(&log);
    assert_eq!(lines.len(), 1, "{log}");
    assert_eq!(lines[0]["span"]["status"], 499, "{log}");
}

const KEY_POLICY: &str = r#"---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata:
  name: client-keys
  namespace: default
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: Gateway
      name: aigw
  apiKeyAuth:
    credentialRefs:
      - name: client-keys
---
apiVersion: v1
kind: Secret
metadata:
  name: client-keys
  namespace: default
stringData:
  team-a: sk-team-a
"#;

async fn chat_status_with_key(url: &str, key: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .header("x-api-key", key)
        .json(&serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn security_policy_added_by_a_reload_turns_client_authentication_on() {
    let (sim, _sim) = simulator();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gateway.yaml");
    std::fs::write(&cfg, route_yaml("m", sim.port())).unwrap();
    let (listen, admin) = (free_addr(), free_addr());
    let _gw = Proc(
        Command::new(AIGW)
            .args(["run", "--reload-interval-ms", "100", "--listen"])
            .arg(listen.to_string())
            .arg("--admin")
            .arg(admin.to_string())
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(sim);
    wait_listening(listen);
    let url = format!("http://{listen}");
    assert_eq!(chat_status_with_key(&url, "anything").await, 200);

    std::fs::write(&cfg, route_yaml("m", sim.port()) + KEY_POLICY).unwrap();
    let start = Instant::now();
    while chat_status_with_key(&url, "anything").await != 401 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "policy never applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(chat_status_with_key(&url, "sk-team-a").await, 200);

    // Removing the policy turns authentication off again.
    std::fs::write(&cfg, route_yaml("m", sim.port())).unwrap();
    let start = Instant::now();
    while chat_status_with_key(&url, "anything").await != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "policy never removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn json_access_log_carries_the_client_and_the_request_span() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "team-a:sk-team-a\n").unwrap();
    let (listen, admin) = (free_addr(), free_addr());
    let mut gw = run_logging(
        listen,
        admin,
        &["--client-api-keys", keys.to_str().unwrap()],
    );
    wait_listening(listen);
    let status = reqwest::Client::new()
        .post(format!("http://{listen}/v1/chat/completions"))
        .bearer_auth("sk-team-a")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .json(&serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = gw.kill();
    let out = gw.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let line = log
        .lines()
        .find(|l| l.contains("\"target\":\"aigw::access\""))
        .unwrap_or_else(|| panic!("no access log line in\n{log}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["fields"]["client"], "team-a", "{line}");
    assert_eq!(v["span"]["name"], "aigw.request", "{line}");
    assert_eq!(v["span"]["client"], "team-a", "{line}");
    assert_eq!(v["span"]["status"], 200, "{line}");
    assert_eq!(
        v["span"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "{line}"
    );
    assert!(v["span"]["output_tokens"].as_u64().unwrap() > 0, "{line}");
}

const LOCKED_ROUTE: &str = r#"---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata:
  name: locked
  namespace: default
spec:
  rules:
    - matches:
        - headers:
            - type: Exact
              name: x-ai-eg-model
              value: locked
      backendRefs:
        - name: sim
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata:
  name: locked-keys
  namespace: default
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: HTTPRoute
      name: locked
  apiKeyAuth:
    credentialRefs:
      - name: locked-keys
---
apiVersion: v1
kind: Secret
metadata:
  name: locked-keys
  namespace: default
stringData:
  team-b: sk-team-b
"#;

async fn status_for(url: &str, path: &str, model: &str, key: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .json(&serde_json::json!({"model": model, "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}]}));
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn security_policy_on_an_httproute_guards_that_route_and_replaces_the_gateways() {
    let (sim, _sim) = simulator();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gateway.yaml");
    std::fs::write(
        &cfg,
        route_yaml("m", sim.port()) + KEY_POLICY + LOCKED_ROUTE,
    )
    .unwrap();
    let (listen, admin) = (free_addr(), free_addr());
    let _gw = Proc(
        Command::new(AIGW)
            .args(["run", "--listen"])
            .arg(listen.to_string())
            .arg("--admin")
            .arg(admin.to_string())
            .arg(&cfg)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(sim);
    wait_listening(listen);
    let url = format!("http://{listen}");
    let chat = "/v1/chat/completions";
    // Route `r` has no policy of its own: the Gateway's applies.
    assert_eq!(status_for(&url, chat, "m", Some("sk-team-a")).await.0, 200);
    assert_eq!(status_for(&url, chat, "m", Some("sk-team-b")).await.0, 401);
    // Route `locked` has its own policy, which replaces the Gateway's there.
    assert_eq!(
        status_for(&url, chat, "locked", Some("sk-team-b")).await.0,
        200
    );
    let (status, body) = status_for(&url, chat, "locked", Some("sk-team-a")).await;
    assert_eq!(status, 401, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["error"]["message"].as_str().is_some(), "{body}");
    // No key at all, on the Anthropic endpoint: 401 in Anthropic's error shape.
    let (status, body) = status_for(&url, "/v1/messages", "locked", None).await;
    assert_eq!(status, 401, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["type"], "error", "{body}");
    assert_eq!(v["error"]["type"], "authentication_error", "{body}");
    // An unknown model is still a 404, whatever the credentials.
    assert_eq!(status_for(&url, chat, "nope", None).await.0, 404);
}

/// The audit trail (`--audit-log`): the load at start, a reload naming what it added,
/// changed and removed by checksum, a rejected reload, and client-authentication
/// failures (scheme, path, reason) — never a key, neither the configured nor the
/// presented one.
#[tokio::test]
async fn audit_log_records_reloads_and_auth_failures_without_secrets() {
    let (sim, _sim) = simulator();
    let dir = tempfile::tempdir().unwrap();
    let cfg_dir = dir.path().join("config");
    std::fs::create_dir(&cfg_dir).unwrap();
    let cfg = cfg_dir.join("gateway.yaml");
    let audit = dir.path().join("audit.jsonl");
    std::fs::write(&cfg, route_yaml("m", sim.port())).unwrap();
    let (listen, admin) = (free_addr(), free_addr());
    let _gw = Proc(
        Command::new(AIGW)
            .args(["run", "--reload-interval-ms", "100", "--audit-log"])
            .arg(&audit)
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--admin")
            .arg(admin.to_string())
            .arg(&cfg_dir)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(sim);
    wait_listening(listen);
    let url = format!("http://{listen}");
    std::fs::write(&cfg, route_yaml("m", sim.port()) + KEY_POLICY).unwrap();
    let start = Instant::now();
    while chat_status_with_key(&url, "sk-presented-SECRET-1").await != 401 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "policy never applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::write(&cfg, "kind: AIGatewayRoute\nmetadata: {name: broken}\nspec:\n  rules:\n    - backendRefs: [{name: nowhere}]\n").unwrap();
    let start = Instant::now();
    let lines = loop {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.iter().any(|l| l["outcome"] == "rejected") {
            assert!(!text.contains("sk-team-a"), "{text}");
            assert!(!text.contains("sk-presented-SECRET-1"), "{text}");
            break lines;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let load = &lines[0];
    assert_eq!(load["event"], "config.load", "{load}");
    assert!(
        load["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["change"] == "added" && c["checksum"].as_str().unwrap().len() == 64),
        "{load}"
    );
    let reload = lines
        .iter()
        .find(|l| l["event"] == "config.reload" && l["outcome"] == "applied")
        .unwrap();
    let added: Vec<&str> = reload["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["change"] == "added")
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert!(
        added.contains(&"SecurityPolicy") && added.contains(&"Secret"),
        "{reload}"
    );
    let failure = lines.iter().find(|l| l["event"] == "auth.failure").unwrap();
    assert_eq!(failure["scheme"], "x-api-key", "{failure}");
    assert_eq!(failure["path"], "/v1/chat/completions", "{failure}");
    assert_eq!(failure["peer"], "127.0.0.1", "{failure}");
    assert!(
        failure["reason"].as_str().unwrap().contains("invalid"),
        "{failure}"
    );
    let rejected = lines.iter().find(|l| l["outcome"] == "rejected").unwrap();
    assert!(rejected["error"].as_str().is_some(), "{rejected}");
}
