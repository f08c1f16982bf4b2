//! The real Claude Code CLI (`claude -p`, npm `@anthropic-ai/claude-code`, pinned in
//! `scripts/test.sh`) through `aigw run` to every backend family, each with one tool
//! round trip: Anthropic, Bedrock Converse and Bedrock InvokeModel (through a hop that
//! recomputes every SigV4 signature with botocore and validates every body against
//! botocore's `bedrock-runtime` service model), Vertex Gemini and Vertex Anthropic (a
//! service-account token exchange), and OpenAI. The upstreams are `aigw simulate`.
//!
//! Nothing leaves loopback: Claude Code's non-essential traffic is off through its
//! documented environment variables, `HOME` is a temporary folder, and the prompt asks
//! the simulated model to call the CLI's `Read` tool on a real file, so the tool's
//! output travelling back proves the round trip.
//!
//! Needs `AIGW_CLAUDE` (the CLI) and `AIGW_PYTHON` (the test venv with botocore), set by
//! `scripts/test.sh`; skipped with a note when missing, unless `AIGW_REQUIRE_EXTERNAL=1`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod peers;
use peers::{aigw_run, backend, botocore_checker, external, policy, secret, simulator_process};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const AWS_KEY: &str = "AKIDCLAUDECODETEST";
const AWS_SECRET: &str = "claude-code-test-secret";
const REGION: &str = "us-east-1";

/// (model as the user passes it to `claude --model`, the backend it routes to).
const CELLS: [(&str, &str); 6] = [
    ("claude-opus-5-5", "anthropic"),
    ("global.anthropic.claude-opus-5-5-v1:0", "bedrock-converse"),
    ("us.anthropic.claude-sonnet-5-5-v1:0", "bedrock-invoke"),
    ("gemini-3.5-pro", "vertex-gemini"),
    ("claude-haiku-5-5", "vertex-anthropic"),
    ("gpt-5.5", "openai"),
];

/// A plain HTTP/1.1 request; returns the status line and the body.
fn http(addr: SocketAddr, method: &str, path: &str) -> (String, String) {
    let mut c = TcpStream::connect(addr).unwrap();
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

/// The gateway's configuration: the upstream project's YAML, one backend per cell.
fn config(sim: SocketAddr, checker: SocketAddr) -> String {
    let mut y = String::new();
    for (name, schema, addr) in [
        ("anthropic", "Anthropic", sim),
        ("openai", "OpenAI", sim),
        ("vertex-gemini", "GCPVertexAI", sim),
        ("vertex-anthropic", "GCPAnthropic", sim),
        ("bedrock-converse", "AWSBedrock", checker),
        ("bedrock-invoke", "AWSAnthropic", checker),
    ] {
        y.push_str(&backend(name, schema, addr));
    }
    y.push_str(&secret("sim-key", "apiKey", "sk-simulated"));
    y.push_str(&policy(
        "anthropic-key",
        &["anthropic"],
        "  type: AnthropicAPIKey\n  anthropicAPIKey:\n    secretRef:\n      name: sim-key\n",
    ));
    y.push_str(&policy(
        "openai-key",
        &["openai"],
        "  type: APIKey\n  apiKey:\n    secretRef:\n      name: sim-key\n",
    ));
    y.push_str(&secret(
        "aws",
        "credentials",
        &format!(
            "[default]\naws_access_key_id = {AWS_KEY}\naws_secret_access_key = {AWS_SECRET}\n"
        ),
    ));
    y.push_str(&policy(
        "aws",
        &["bedrock-converse", "bedrock-invoke"],
        &format!("  type: AWSCredentials\n  awsCredentials:\n    region: {REGION}\n    credentialsFile:\n      secretRef:\n        name: aws\n"),
    ));
    let pem = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../aigw-auth/tests/fixtures/test-rsa-key.pem"),
    )
    .unwrap();
    let key = serde_json::json!({
        "type": "service_account",
        "project_id": "cc-project",
        "private_key_id": "test",
        "private_key": pem,
        "client_email": "gateway@cc-project.iam.gserviceaccount.com",
        "token_uri": format!("http://{checker}/token"),
    });
    y.push_str(&secret("gcp", "service_account.json", &key.to_string()));
    y.push_str(&policy(
        "gcp",
        &["vertex-gemini", "vertex-anthropic"],
        "  type: GCPCredentials\n  gcpCredentials:\n    projectName: cc-project\n    region: us-east5\n    credentialsFile:\n      secretRef:\n        name: gcp\n",
    ));
    let rules: String = CELLS
        .iter()
        .map(|(model, backend)| {
            format!(
                "    - matches:\n        - headers:\n            - type: Exact\n              name: x-ai-eg-model\n              value: \"{model}\"\n      backendRefs:\n        - name: {backend}\n"
            )
        })
        .collect();
    y.push_str(&format!(
        "---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIGatewayRoute\nmetadata:\n  name: agents\n  namespace: default\nspec:\n  rules:\n{rules}"
    ));
    y
}

/// `claude -p` with a tool-using prompt; returns its stream-json output lines.
fn claude(
    bin: &Path,
    gateway: &str,
    model: &str,
    work: &Path,
    home: &Path,
    log: &Path,
) -> Vec<serde_json::Value> {
    let file = work.join("notes.txt");
    let prompt = format!(
        "Please call a tool: Read file_path={} and tell me what it says",
        file.display()
    );
    let out = Command::new(bin)
        .args(["-p", &prompt, "--model", model])
        .args([
            "--allowedTools",
            "Read",
            "--output-format",
            "stream-json",
            "--verbose",
        ])
        .current_dir(work)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("ANTHROPIC_BASE_URL", gateway)
        .env("ANTHROPIC_API_KEY", "sk-ant-client")
        // Claude Code's documented switches for traffic other than the model API.
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_ERROR_REPORTING", "1")
        .env("DISABLE_BUG_COMMAND", "1")
        // A failure shows at once instead of after ten backed-off retries.
        .env("CLAUDE_CODE_MAX_RETRIES", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{model}: {}\n{stdout}\n{}\ngateway log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(log).unwrap_or_default()
    );
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn claude_code_with_a_tool_round_trip_through_every_backend() {
    let Some(bin) = external("AIGW_CLAUDE") else {
        return;
    };
    let Some(python) = external("AIGW_PYTHON") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (work, home) = (dir.path().join("work"), dir.path().join("home"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(work.join("notes.txt"), "remember the milk\n").unwrap();

    let aigw = Path::new(env!("CARGO_BIN_EXE_aigw"));
    let (_sim, sim) = simulator_process(aigw);
    let checks = dir.path().join("bedrock-checks.jsonl");
    let (_checker, checker) =
        botocore_checker(&python, sim, (AWS_KEY, AWS_SECRET, REGION), &checks);

    let cfg = dir.path().join("aigw.yaml");
    std::fs::write(&cfg, config(sim, checker)).unwrap();
    let log = dir.path().join("gateway.log");
    let (_gw, listen, admin) = aigw_run(aigw, &cfg, &log);
    let gateway = format!("http://{listen}");

    for (model, backend) in CELLS {
        let events = claude(&bin, &gateway, model, &work, &home, &log);
        let tool_result = events
            .iter()
            .filter(|e| e["type"] == "user")
            .flat_map(|e| {
                e["message"]["content"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .find(|b| b["type"] == "tool_result")
            .unwrap_or_else(|| panic!("{model} ({backend}): no tool result in {events:?}"));
        assert!(
            tool_result["content"]
                .to_string()
                .contains("remember the milk"),
            "{model} ({backend}): {tool_result}"
        );
        assert_ne!(tool_result["is_error"], true, "{model}: {tool_result}");
        let result = events.iter().find(|e| e["type"] == "result").unwrap();
        assert_eq!(result["subtype"], "success", "{model}: {result}");
        assert_eq!(result["num_turns"], 2, "{model}: {result}");
        assert!(
            result["result"]
                .as_str()
                .unwrap_or_default()
                .contains("Hello from the aigw simulator"),
            "{model}: {result}"
        );
    }

    // Every Bedrock request was signed as AWS verifies it, and its body is one the
    // service model accepts.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&checks)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for op in ["ConverseStream", "InvokeModelWithResponseStream"] {
        assert_eq!(
            lines.iter().filter(|l| l["op"] == op).count(),
            2,
            "{op}: {lines:?}"
        );
    }
    for l in &lines {
        assert_eq!(l["sigv4"], true, "{l}");
        assert_eq!(l["errors"], "", "{l}");
    }

    // Reachability probes and unserved paths answer and are in the access log.
    let (status, body) = http(listen, "GET", "/");
    assert!(status.contains("200"), "{status}");
    assert!(body.starts_with("aigw "), "{body}");
    assert!(http(listen, "HEAD", "/").0.contains("200"));
    assert!(http(listen, "GET", "/not-an-api").0.contains("404"));

    // The fields no equivalent exists for are counted per backend (and logged).
    let (_, metrics) = http(admin, "GET", "/metrics");
    for backend in ["bedrock-converse", "vertex-gemini", "openai"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("aigw_dropped_fields_total{")
                    && l.contains("field=\"context_management.clear_thinking\"")
                    && l.contains(&format!("default/{backend}"))),
            "{backend}: {metrics}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let log = std::fs::read_to_string(&log).unwrap();
    for (model, _) in CELLS {
        let served = log
            .lines()
            .filter(|l| {
                l.contains("aigw::access")
                    && l.contains(&format!("model=\"{model}\""))
                    && l.contains("status=200")
            })
            .count();
        assert_eq!(served, 2, "{model}: {log}");
    }
    assert!(
        log.lines().any(|l| l.contains("aigw::access")
            && l.contains("path=\"/not-an-api\"")
            && l.contains("status=404")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("context_management.clear_thinking")),
        "{log}"
    );
}
