//! The official `openai` and `anthropic` Python SDKs against the `aigw` binary: simulator
//! mode (OpenAI, Bedrock with SigV4 verified by the simulator, Anthropic), and a
//! configuration with a failing priority-0 backend, an exact-model route (404) and a
//! body limit (413).
//!
//! Needs the test venv (`AIGW_PYTHON`, set by `scripts/test.sh`); skipped with a note
//! when it is missing, unless `AIGW_REQUIRE_EXTERNAL=1`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod peers;
use peers::{Proc, free_addr, wait_listening};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn python() -> Option<PathBuf> {
    match std::env::var_os("AIGW_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var("AIGW_REQUIRE_EXTERNAL").as_deref() == Ok("1") => {
            panic!("AIGW_PYTHON is not set but AIGW_REQUIRE_EXTERNAL=1")
        }
        None => {
            eprintln!("skipping: AIGW_PYTHON is not set (run scripts/test.sh)");
            None
        }
    }
}

fn aigw(args: &[&str]) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_aigw"))
            .args(args)
            .env_remove("OPENAI_API_KEY")
            .env_remove("AZURE_OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// `aigw run` with no configuration and no provider keys: simulator mode.
fn simulator_mode_gateway() -> (Proc, String) {
    let (p, url, _) = simulator_mode_gateway_with(&[]);
    (p, url)
}

/// Simulator mode with extra `aigw run` arguments; also returns the admin address.
fn simulator_mode_gateway_with(extra: &[&str]) -> (Proc, String, SocketAddr) {
    let (listen, admin) = (free_addr(), free_addr());
    let (listen_s, admin_s) = (listen.to_string(), admin.to_string());
    let mut args = vec!["run", "--listen", &listen_s, "--admin", &admin_s];
    args.extend_from_slice(extra);
    let p = aigw(&args);
    wait_listening(listen);
    (p, format!("http://{listen}"), admin)
}

/// A plain HTTP/1.1 GET; returns the body.
fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut c = TcpStream::connect(addr).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

/// The sample value of the first series line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn genai_metrics_on_the_admin_listener_after_sdk_requests() {
    let Some(py) = python() else { return };
    let (_gw, url, admin) = simulator_mode_gateway_with(&[]);
    sdk(
        &py,
        &url,
        &["openai_chat", "openai_chat_stream", "anthropic_messages"],
    );
    let text = http_get(admin, "/metrics");
    for needle in [
        "# TYPE gen_ai_client_token_usage histogram",
        "# TYPE gen_ai_server_request_duration_seconds histogram",
        "# TYPE gen_ai_server_time_to_first_token_seconds histogram",
        "# TYPE gen_ai_server_time_per_output_token_seconds histogram",
        "# TYPE aigw_gateway_overhead_seconds histogram",
        "# TYPE aigw_requests_total counter",
        "gen_ai_operation_name=\"chat\"",
        "gen_ai_operation_name=\"messages\"",
        "gen_ai_provider_name=\"openai\"",
        "gen_ai_provider_name=\"anthropic\"",
        "gen_ai_original_model=\"gpt-4o-mini\"",
        "gen_ai_token_type=\"input\"",
        "gen_ai_token_type=\"output\"",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    assert!(!text.contains("# EOF"), "{text}");
    // One streamed chat: TTFT observed once, with a plausible value.
    let ttft = sample(&text, "gen_ai_server_time_to_first_token_seconds_count{").unwrap();
    assert!(ttft >= 1.0, "{text}");
    // Three requests, all with an overhead sample; the overhead is a small share of
    // the total.
    let overhead_count: f64 = text
        .lines()
        .filter(|l| l.starts_with("aigw_gateway_overhead_seconds_count{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(overhead_count, 3.0, "{text}");
    // Valid exposition, when promtool is installed (apt-get install prometheus).
    if let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let report = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        // promtool exits 3 for lint-only findings (e.g. naming advice); 1 is a parse error.
        assert_ne!(out.status.code(), Some(1), "promtool: {report}\n{text}");
        assert!(
            !report.contains("error while linting"),
            "promtool: {report}"
        );
    } else {
        eprintln!("note: promtool not installed; exposition not validated");
    }
}

fn sdk(python: &PathBuf, base: &str, checks: &[&str]) -> serde_json::Value {
    sdk_with_key(python, base, "client-key", checks)
}

/// Runs SDK checks whose clients present `key` (an API key or a JWT).
fn sdk_with_key(python: &PathBuf, base: &str, key: &str, checks: &[&str]) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/sdk_checks.py");
    run_checks(
        Command::new(python)
            .env("AIGW_CLIENT_KEY", key)
            .arg(script)
            .arg(base),
        checks,
    )
}

#[test]
fn openai_sdk_against_openai_backend() {
    let Some(py) = python() else { return };
    let (_gw, url) = simulator_mode_gateway();
    let r = sdk(
        &py,
        &url,
        &[
            "openai_chat",
            "openai_chat_stream",
            "openai_tools",
            "openai_tools_stream",
            "openai_embeddings",
            "upstream_503",
        ],
    );
    assert_eq!(r["openai_chat"]["model"], "gpt-4o-mini");
    assert!(r["openai_chat_stream"]["chunks"].as_u64().unwrap() >= 3);
    assert_eq!(r["openai_tools"]["tool"], "get_weather");
    assert!(r["openai_embeddings"]["dims"].as_u64().unwrap() > 0);
    assert_eq!(r["upstream_503"]["status"], 503);
}

#[test]
fn both_sdks_against_bedrock_backend_signed_with_sigv4() {
    let Some(py) = python() else { return };
    let (_gw, url) = simulator_mode_gateway();
    // The simulator rejects a request whose SigV4 signature does not verify (403), so
    // every success below is also a signature check.
    let r = sdk(
        &py,
        &url,
        &[
            "bedrock_chat",
            "bedrock_chat_stream",
            "bedrock_tools",
            "bedrock_messages",
            "bedrock_messages_stream",
        ],
    );
    assert!(r["bedrock_chat"]["usage"].as_u64().unwrap() > 0);
    assert_eq!(r["bedrock_tools"]["tool"], "get_weather");
    assert!(
        r["bedrock_messages_stream"]["output_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn openai_sdk_against_vertex_backend_with_a_metadata_server_token() {
    let Some(py) = python() else { return };
    let (_gw, url) = simulator_mode_gateway();
    // The simulator's Vertex endpoints refuse any bearer token but the one its metadata
    // endpoint hands out, so every success is also a GCP credential check.
    let r = sdk(
        &py,
        &url,
        &["vertex_chat", "vertex_chat_stream", "vertex_tools"],
    );
    assert!(r["vertex_chat"]["usage"].as_u64().unwrap() > 0);
    assert!(r["vertex_chat_stream"]["chunks"].as_u64().unwrap() >= 3);
    assert_eq!(r["vertex_tools"]["tool"], "get_weather");
}

#[test]
fn both_sdks_against_anthropic_backend() {
    let Some(py) = python() else { return };
    let (_gw, url) = simulator_mode_gateway();
    let r = sdk(
        &py,
        &url,
        &[
            "anthropic_messages",
            "anthropic_messages_stream",
            "anthropic_chat",
            "anthropic_chat_stream",
        ],
    );
    assert_eq!(r["anthropic_messages"]["model"], "claude-3-5-sonnet");
    assert!(
        r["anthropic_chat"]["text"]
            .as_str()
            .unwrap()
            .contains("simulator")
    );
}

const FALLBACK_CONFIG: &str = r#"
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata:
  name: fallback
  namespace: default
spec:
  rules:
    - matches:
        - headers:
            - type: Exact
              name: x-ai-eg-model
              value: fallback-model
      backendRefs:
        - name: primary
          priority: 0
        - name: secondary
          priority: 1
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata:
  name: primary
  namespace: default
spec:
  schema:
    name: OpenAI
  backendRef:
    name: primary
    kind: Backend
    group: gateway.envoyproxy.io
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata:
  name: secondary
  namespace: default
spec:
  schema:
    name: OpenAI
  backendRef:
    name: secondary
    kind: Backend
    group: gateway.envoyproxy.io
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata:
  name: primary
  namespace: default
spec:
  endpoints:
    - ip:
        address: 127.0.0.1
        port: PRIMARY_PORT
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata:
  name: secondary
  namespace: default
spec:
  endpoints:
    - ip:
        address: 127.0.0.1
        port: SECONDARY_PORT
"#;

#[test]
fn fallback_unknown_model_and_oversize_body_through_a_config_file() {
    let Some(py) = python() else { return };
    let (bad, good) = (free_addr(), free_addr());
    let _bad = aigw(&[
        "simulate",
        "--listen",
        &bad.to_string(),
        "--fail-status",
        "503",
    ]);
    let _good = aigw(&["simulate", "--listen", &good.to_string()]);
    wait_listening(bad);
    wait_listening(good);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gateway.yaml");
    std::fs::write(
        &cfg,
        FALLBACK_CONFIG
            .replace("PRIMARY_PORT", &bad.port().to_string())
            .replace("SECONDARY_PORT", &good.port().to_string()),
    )
    .unwrap();
    let (listen, admin) = (free_addr(), free_addr());
    let _gw = aigw(&[
        "run",
        cfg.to_str().unwrap(),
        "--listen",
        &listen.to_string(),
        "--admin",
        &admin.to_string(),
        "--max-body-bytes",
        "65536",
    ]);
    wait_listening(listen);
    let r = sdk(
        &py,
        &format!("http://{listen}"),
        &[
            "fallback_chat",
            "fallback_chat_stream",
            "unknown_model_404",
            "unknown_model_404_anthropic",
            "oversize_413",
        ],
    );
    assert!(
        r["fallback_chat"]["text"]
            .as_str()
            .unwrap()
            .contains("simulator")
    );
    let msg = r["unknown_model_404"]["body"]["error"]["message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("no-such-model"), "{msg}");
    assert_eq!(r["unknown_model_404_anthropic"]["body"]["type"], "error");
    assert_eq!(
        r["oversize_413"]["body"]["error"]["code"],
        "request_too_large"
    );

    // The failing primary was tried first on both fallback requests (the oversize body
    // never left the gateway), and the healthy secondary answered them.
    let hits = |addr| sim_hits(addr, "/v1/chat/completions");
    assert!(hits(bad) >= 2, "primary hits: {}", hits(bad));
    assert_eq!(hits(good), 2);
}

/// Requests a simulator counted for `path` (from its `/__sim/stats`).
fn sim_hits(addr: SocketAddr, path: &str) -> u64 {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /__sim/stats HTTP/1.0\r\nHost: sim\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let body = raw.split_once("\r\n\r\n").unwrap().1;
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    find_count(&v, path)
}

fn find_count(v: &serde_json::Value, path: &str) -> u64 {
    match v {
        serde_json::Value::Object(m) => m
            .get(path)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or_else(|| m.values().map(|x| find_count(x, path)).sum()),
        _ => 0,
    }
}

/// A JWT signed with the fixture RSA key (`kid` `rsa-1` in `tests/fixtures/jwt/jwks.json`).
fn jwt(iss: &str, aud: &str, sub: &str) -> String {
    let key =
        jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!("fixtures/jwt/rs256.pem")).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    jsonwebtoken::encode(
        &header,
        &serde_json::json!({"iss": iss, "aud": aud, "sub": sub, "exp": exp}),
        &key,
    )
    .unwrap()
}

#[test]
fn client_api_keys_from_the_cli_reject_and_admit_both_sdks() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "# clients\nteam-a:sk-team-a\n").unwrap();
    let (_gw, url, admin) =
        simulator_mode_gateway_with(&["--client-api-keys", keys.to_str().unwrap()]);
    let r = sdk_with_key(
        &py,
        &url,
        "sk-team-a",
        &[
            "auth_rejected_openai",
            "auth_rejected_anthropic",
            "openai_chat",
            "openai_chat_stream",
            "anthropic_messages",
        ],
    );
    assert_eq!(r["auth_rejected_openai"]["status"], 401);
    assert_eq!(r["auth_rejected_anthropic"]["status"], 401);
    assert_eq!(
        r["auth_rejected_anthropic"]["type"], "authentication_error",
        "{r}"
    );
    assert_eq!(r["openai_chat"]["model"], "gpt-4o-mini");
    // Rejected requests never reach the gateway: three admitted requests recorded.
    let text = http_get(admin, "/metrics");
    let total: f64 = text
        .lines()
        .filter(|l| l.starts_with("aigw_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(total, 3.0, "{text}");
}

#[test]
fn security_policy_jwt_and_api_keys_from_the_config() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let jwks = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/jwt/jwks.json"
    ))
    .unwrap()
    .replace('\n', " ");
    let sim_listen = free_addr();
    let _sim = aigw(&["simulate", "--listen", &sim_listen.to_string()]);
    wait_listening(sim_listen);
    let yaml = format!(
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
              value: gpt-4o-mini
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
        port: {port}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata:
  name: client-auth
  namespace: default
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: Gateway
      name: aigw
  apiKeyAuth:
    credentialRefs:
      - name: client-keys
    extractFrom:
      - headers: ["x-api-key"]
  jwt:
    providers:
      - name: idp
        issuer: https://issuer.example
        audiences: [aigw]
        localJWKS:
          type: Inline
          inline: '{jwks}'
---
apiVersion: v1
kind: Secret
metadata:
  name: client-keys
  namespace: default
stringData:
  team-b: sk-team-b
"#,
        port = sim_listen.port()
    );
    let cfg = dir.path().join("aigw.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let (listen, admin) = (free_addr(), free_addr());
    let _gw = aigw(&[
        "run",
        cfg.to_str().unwrap(),
        "--listen",
        &listen.to_string(),
        "--admin",
        &admin.to_string(),
    ]);
    wait_listening(listen);
    let url = format!("http://{listen}");

    // The Secret's key, and a JWT from the configured issuer, are both admitted.
    let r = sdk_with_key(
        &py,
        &url,
        "sk-team-b",
        &["auth_rejected_openai", "openai_chat"],
    );
    assert_eq!(r["auth_rejected_openai"]["status"], 401);
    let good = jwt("https://issuer.example", "aigw", "alice");
    let r = sdk_with_key(&py, &url, &good, &["openai_chat_stream"]);
    assert!(r["openai_chat_stream"]["chunks"].as_u64().unwrap() >= 3);
    // A token for another audience, or from another issuer, is not.
    for bad in [
        jwt("https://issuer.example", "someone-else", "mallory"),
        jwt("https://evil.example", "aigw", "mallory"),
    ] {
        let out = Command::new(&py)
            .env("AIGW_CLIENT_KEY", &bad)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/interop/sdk_checks.py"
            ))
            .arg(&url)
            .arg("openai_chat")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("AuthenticationError"), "{err}");
    }
    let _ = admin;
}

/// OpenAI errors reach the `openai` SDK exactly as the provider sent them: status, the
/// body byte for byte (OpenAI's pretty-printed JSON), `request_id` from `x-request-id`,
/// and the rate-limit, processing-time and retry headers.
#[test]
fn openai_errors_pass_through_byte_for_byte() {
    let Some(py) = python() else {
        return;
    };
    let (_gw, url) = simulator_mode_gateway();
    let r = sdk(&py, &url, &["upstream_errors"])["upstream_errors"].clone();
    for (status, class) in [
        (400, "BadRequestError"),
        (404, "NotFoundError"),
        (429, "RateLimitError"),
    ] {
        let e = &r[status.to_string()];
        assert_eq!(e["status"], status, "{r}");
        assert_eq!(e["type"], class, "{r}");
        let id = e["request_id"].as_str().unwrap();
        assert!(id.starts_with("req_sim"), "{r}");
        assert_eq!(e["headers"]["x-request-id"], id, "{r}");
        assert_eq!(e["headers"]["openai-processing-ms"], "17", "{r}");
        assert_eq!(
            e["headers"]["x-ratelimit-remaining-requests"], "9999",
            "{r}"
        );
        assert_eq!(e["headers"]["x-ratelimit-limit-tokens"], "30000000", "{r}");
        assert_eq!(
            e["headers"]["content-type"], "application/json; charset=utf-8",
            "{r}"
        );
        assert_eq!(e["byte_exact"], true, "{status}: byte for byte: {r}");
    }
    assert_eq!(r["429"]["headers"]["retry-after"], "1", "{r}");
}

/// Runs `tests/interop/media_checks.py` against `base`.
fn media(python: &PathBuf, base: &str, checks: &[&str]) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/media_checks.py");
    run_checks(Command::new(python).arg(script).arg(base), checks)
}

/// Runs a check script with `checks` as arguments; its stdout is one JSON object.
fn run_checks(cmd: &mut Command, checks: &[&str]) -> serde_json::Value {
    let out = cmd.args(checks).output().unwrap();
    assert!(
        out.status.success(),
        "checks failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Images, audio (speech as bytes and as SSE, a transcription and a translation of a
/// WAV file made by the test), Cohere rerank and vLLM tokenize through `aigw run` in
/// simulator mode, with the official `openai` and `cohere` SDKs; each metered per
/// operation, and an endpoint a backend does not serve is a 422 naming both.
#[test]
fn media_rerank_and_tokenize_with_the_official_sdks() {
    let Some(py) = python() else {
        return;
    };
    let (_gw, url, admin) = simulator_mode_gateway_with(&[]);
    let r = media(
        &py,
        &url,
        &[
            "images",
            "speech",
            "speech_sse",
            "transcription",
            "translation",
            "rerank",
            "tokenize",
            "unsupported",
        ],
    );
    assert_eq!(r["images"]["count"], 1, "{r}");
    assert_eq!(r["images"]["png"], true, "{r}");
    assert_eq!(r["images"]["output_tokens"], 272, "{r}");
    assert_eq!(r["speech"]["status"], 200, "{r}");
    assert_eq!(r["speech"]["content_type"], "audio/mpeg", "{r}");
    assert_eq!(r["speech"]["id3"], true, "{r}");
    assert_eq!(r["speech"]["has_text"], true, "{r}");
    assert_eq!(r["speech_sse"]["first"], "speech.audio.delta", "{r}");
    assert_eq!(r["speech_sse"]["last"], "speech.audio.done", "{r}");
    assert_eq!(
        r["transcription"]["text"], "Simulated transcription by whisper-1 of 0.5 seconds of audio.",
        "{r}"
    );
    assert_eq!(r["transcription"]["usage_type"], "duration", "{r}");
    assert_eq!(r["transcription"]["seconds"], 1.0, "{r}");
    assert!(
        r["transcription"]["total_tokens"].as_u64().unwrap() > 0,
        "{r}"
    );
    assert_eq!(r["translation"]["duration"], 1.0, "{r}");
    assert_eq!(
        r["translation"]["text"], "Simulated translation by whisper-1 of 1.0 seconds of audio.",
        "{r}"
    );
    assert_eq!(r["rerank"]["order"], serde_json::json!([1, 0]), "{r}");
    assert_eq!(r["rerank"]["units"], 1.0, "{r}");
    assert_eq!(r["tokenize"]["status"], 200, "{r}");
    assert_eq!(r["tokenize"]["count"], 4, "{r}");
    assert_eq!(r["unsupported"]["status"], 422, "{r}");
    let msg = r["unsupported"]["message"].as_str().unwrap();
    assert!(
        msg.contains("image_generation") && msg.contains("Anthropic"),
        "{r}"
    );
    // Metered like chat: per-operation token usage.
    let metrics = http_get(admin, "/metrics");
    for op in [
        "image_generation",
        "speech",
        "transcription",
        "rerank",
        "tokenize",
    ] {
        let needle = format!("gen_ai_operation_name=\"{op}\"");
        assert!(metrics.contains(&needle), "missing {needle} in\n{metrics}");
    }
    // Audio is metered beside tokens: the 0.5 s transcription (billed as 1 s by
    // whisper-1, 0 s reported by the token-billed model), the 1.0 s translation, and
    // the characters of every speech input.
    let value = |prefix: &str, op: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with(prefix) && l.contains(&format!("gen_ai_operation_name=\"{op}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!(
        value("aigw_audio_seconds_total{", "transcription"),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        value("aigw_audio_seconds_total{", "translation"),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        value("aigw_speech_characters_total{", "speech"),
        47.0,
        "{metrics}"
    );
}

/// Endpoint prefixes as upstream's (`--root-prefix`, `--endpoint-prefixes`): the
/// `openai`, `anthropic` and `cohere` SDKs reach the gateway under `/ai`, `/ai/claude`
/// and `/ai/rr`; the default layout is then not served.
#[test]
fn endpoint_prefixes_move_every_family() {
    let Some(py) = python() else {
        return;
    };
    let (_gw, url, _) = simulator_mode_gateway_with(&[
        "--root-prefix",
        "/ai",
        "--endpoint-prefixes",
        "anthropic:/claude,cohere:/rr",
    ]);
    let script = r#"
import json, sys
import anthropic, cohere, openai, requests
b = sys.argv[1]
o = openai.OpenAI(base_url=b + "/ai/v1", api_key="k", max_retries=0)
a = anthropic.Anthropic(base_url=b + "/ai/claude", api_key="k", max_retries=0)
c = cohere.ClientV2(api_key="k", base_url=b + "/ai/rr")
chat = o.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
msg = a.messages.create(model="claude-sonnet-4", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
rr = c.v2.rerank(model="rerank-v3.5", query="a", documents=["a", "b"])
default = requests.post(b + "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": []}).status_code
print(json.dumps({"chat": chat.choices[0].message.content is not None, "msg": msg.type,
                  "rerank": len(rr.results), "default_layout": default}))
"#;
    let out = Command::new(&py)
        .args(["-c", script, &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["chat"], true, "{r}");
    assert_eq!(r["msg"], "message", "{r}");
    assert_eq!(r["rerank"], 2, "{r}");
    assert_eq!(r["default_layout"], 404, "{r}");
}

/// The simulator answers like a model, through `aigw run` in simulator mode, in every
/// dialect: a request offering tools gets a tool call (and after the tool's result, text);
/// a JSON schema gets a conforming object (the SDKs' own `parse` helpers validate it
/// against the Pydantic model); a reasoning request streams its reasoning first —
/// natively (Anthropic thinking) and translated (Gemini thoughts to OpenAI
/// `reasoning_content`, Bedrock Converse reasoning to Anthropic thinking).
#[test]
fn the_simulator_answers_like_a_model() {
    let Some(py) = python() else {
        return;
    };
    let (_gw, url) = simulator_mode_gateway();
    let script = r#"
import json, sys
import anthropic, openai, pydantic
b = sys.argv[1]
o = openai.OpenAI(base_url=b + "/v1", api_key="k", max_retries=0)
a = anthropic.Anthropic(base_url=b, api_key="k", max_retries=0)
out = {}
tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
msgs = [{"role": "user", "content": "what is the weather in Paris?"}]
for model in ["gpt-4o-mini", "claude-sonnet-4", "gemini-2.5-flash", "bedrock/amazon.nova-pro-v1:0"]:
    r = o.chat.completions.create(model=model, messages=msgs, tools=tools)
    call = r.choices[0].message.tool_calls[0]
    follow = msgs + [r.choices[0].message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    r2 = o.chat.completions.create(model=model, messages=follow, tools=tools)
    none = o.chat.completions.create(model=model, messages=msgs, tools=tools, tool_choice="none")
    out["tools " + model] = {"call": call.function.name, "finish": r.choices[0].finish_reason,
                             "then": r2.choices[0].finish_reason,
                             "text": r2.choices[0].message.content is not None,
                             "none": none.choices[0].finish_reason}

class Weather(pydantic.BaseModel):
    city: str
    temperatures: list[float]
    unit: str
for model in ["gpt-4o-mini", "claude-sonnet-4", "gemini-2.5-flash", "bedrock/amazon.nova-pro-v1:0"]:
    p = o.chat.completions.parse(model=model, messages=msgs, response_format=Weather)
    out["schema " + model] = p.choices[0].message.parsed.model_dump()
rp = o.responses.parse(model="gpt-4o-mini", input="weather?", text_format=Weather)
out["schema responses"] = rp.output_parsed.model_dump()

def thinking(model):
    kinds, sig = [], None
    with a.messages.stream(model=model, max_tokens=2000, messages=[{"role": "user", "content": "think"}],
                           thinking={"type": "enabled", "budget_tokens": 1024}) as s:
        for e in s:
            if e.type == "content_block_delta":
                kinds.append(e.delta.type)
        m = s.get_final_message()
    return {"deltas": sorted(set(kinds)), "blocks": [b.type for b in m.content],
            "signed": bool(m.content[0].signature)}
out["thinking claude-sonnet-4"] = thinking("claude-sonnet-4")
out["thinking bedrock"] = thinking("bedrock/anthropic.claude-sonnet-4")
reasoning = []
for c in o.chat.completions.create(model="gemini-2.5-flash", messages=msgs, reasoning_effort="low", stream=True):
    for ch in c.choices:
        rc = getattr(ch.delta, "reasoning_content", None) or (ch.delta.model_extra or {}).get("reasoning_content")
        if rc:
            reasoning.append(rc)
out["reasoning gemini"] = "".join(reasoning)
print(json.dumps(out))
"#;
    let out = Command::new(&py)
        .args(["-c", script, &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for model in [
        "gpt-4o-mini",
        "claude-sonnet-4",
        "gemini-2.5-flash",
        "bedrock/amazon.nova-pro-v1:0",
    ] {
        let t = &r[format!("tools {model}")];
        assert_eq!(t["call"], "get_weather", "{model}: {r}");
        assert_eq!(t["finish"], "tool_calls", "{model}: {r}");
        assert_eq!(t["then"], "stop", "{model}: {r}");
        assert_eq!(t["text"], true, "{model}: {r}");
        assert_eq!(t["none"], "stop", "{model}: {r}");
        let s = &r[format!("schema {model}")];
        assert_eq!(s["city"], "simulated", "{model}: {r}");
        assert!(s["temperatures"].is_array(), "{model}: {r}");
    }
    assert_eq!(r["schema responses"]["unit"], "simulated", "{r}");
    for k in ["thinking claude-sonnet-4", "thinking bedrock"] {
        let t = &r[k];
        assert_eq!(
            t["blocks"],
            serde_json::json!(["thinking", "text"]),
            "{k}: {r}"
        );
        assert_eq!(t["signed"], true, "{k}: {r}");
        let deltas = t["deltas"].as_array().unwrap();
        assert!(
            deltas.contains(&"thinking_delta".into()) && deltas.contains(&"signature_delta".into()),
            "{k}: {r}"
        );
    }
    assert!(
        r["reasoning gemini"]
            .as_str()
            .unwrap()
            .starts_with("The user wrote"),
        "{r}"
    );
}
