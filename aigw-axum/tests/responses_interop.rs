//! The OpenAI Responses API end to end with clients we did not write, through the
//! `aigw` binary in simulator mode (the simulator verifies each provider's wire: SigV4
//! for Bedrock, the Vertex path and token, Anthropic's headers):
//!
//! * the `openai` Python SDK — `responses.create`, `responses.stream` (typed events,
//!   sequence numbers), a function-call round trip and `responses.input_tokens` — on
//!   OpenAI (passthrough), Anthropic, Bedrock Converse and Gemini on Vertex AI, and
//!   (from a configuration file) Claude on Bedrock InvokeModel and on Vertex AI, and a
//!   chat-only OpenAI-compatible server (`aigw.run/responses: translate`);
//! * the `openai` SDK's `responses.retrieve`, `responses.input_items.list` and
//!   `responses.delete` on stored responses of translated backends;
//! * the OpenAI Agents SDK running a two-turn tool-using agent on Anthropic and Bedrock;
//! * Codex CLI (`codex exec` with a custom model provider on the Responses wire) running
//!   a tool on Anthropic and Bedrock.
//!
//! Needs the test venv (`AIGW_PYTHON`) and Codex under `AIGW_NPM_DIR`, both installed by
//! `scripts/test.sh`; skipped with a note when missing, unless `AIGW_REQUIRE_EXTERNAL=1`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod peers;
use peers::{Proc, external, free_addr, redis_server, wait_listening};
use serde_json::Value;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `aigw run` with no configuration and no provider keys: simulator mode. Returns the
/// process, the base URL and the admin address.
fn gateway() -> (Proc, String, SocketAddr) {
    gateway_with(&[])
}

/// [`gateway`] with extra environment variables.
fn gateway_with(env: &[(&str, &str)]) -> (Proc, String, SocketAddr) {
    let (listen, admin) = (free_addr(), free_addr());
    let p = Proc(
        Command::new(env!("CARGO_BIN_EXE_aigw"))
            .envs(env.iter().copied())
            .args([
                "run",
                "--listen",
                &listen.to_string(),
                "--admin",
                &admin.to_string(),
            ])
            .env_remove("OPENAI_API_KEY")
            .env_remove("AZURE_OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(listen);
    (p, format!("http://{listen}"), admin)
}

fn checks(python: &PathBuf, base: &str, model: &str, names: &[&str]) -> Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/responses_checks.py"
    );
    let out = Command::new(python)
        .arg(script)
        .arg(base)
        .arg(model)
        .args(names)
        .env_remove("OPENAI_API_KEY")
        .env("OPENAI_AGENTS_DISABLE_TRACING", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "Responses checks failed for {model}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

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
    out.split_once("\r\n\r\n").unwrap().1.to_owned()
}

const STREAM_EVENTS: [&str; 8] = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.output_item.done",
    "response.completed",
];

fn openai_sdk_on(model: &str, provider: &str) {
    let Some(py) = external("AIGW_PYTHON") else {
        return;
    };
    let (_gw, url, admin) = gateway();
    let r = checks(
        &py,
        &url,
        model,
        &["create", "stream", "tools", "input_tokens", "chain"],
    );
    // A stored turn continued by `previous_response_id` (on translated backends through
    // the gateway's conversation store): the follow-up is answered after the tool result.
    assert_eq!(r["chain"]["previous"], r["chain"]["first_id"], "{r}");
    assert!(
        r["chain"]["answer"].as_str().unwrap().contains(model),
        "{r}"
    );
    let expected = format!("Model {model} received 3 words.");
    assert!(
        r["create"]["text"].as_str().unwrap().ends_with(&expected),
        "{r}"
    );
    assert_eq!(r["create"]["status"], "completed");
    assert!(r["create"]["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(r["create"]["usage"][0], 5, "{r}");
    assert_eq!(r["create"]["usage"][1], 10, "{r}");
    let events: Vec<&str> = r["stream"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for e in STREAM_EVENTS {
        assert!(events.contains(&e), "{e} missing from {events:?}");
    }
    assert_eq!(events.first(), Some(&"response.created"));
    assert_eq!(events.last(), Some(&"response.completed"));
    assert_eq!(r["stream"]["text"], r["stream"]["final_text"]);
    assert_eq!(r["stream"]["usage"][1], 10, "{r}");
    assert_eq!(r["tools"]["tool"], "get_weather");
    assert_eq!(r["tools"]["args"]["city"], "simulated");
    assert!(r["tools"]["answer"].as_str().unwrap().contains(model));
    assert_eq!(r["tools"]["stream_args_match"], true);
    assert_eq!(r["input_tokens"]["input_tokens"], 4, "{r}");
    // Metered like chat: per-operation token usage on the admin listener.
    let metrics = http_get(admin, "/metrics");
    for needle in [
        "gen_ai_operation_name=\"responses\"".to_owned(),
        "gen_ai_operation_name=\"responses_input_tokens\"".to_owned(),
        format!("gen_ai_provider_name=\"{provider}\""),
        "gen_ai_token_type=\"output\"".to_owned(),
    ] {
        assert!(metrics.contains(&needle), "missing {needle} in\n{metrics}");
    }
}

#[test]
fn openai_sdk_responses_passthrough_to_openai() {
    openai_sdk_on("gpt-4o-mini", "openai");
}

#[test]
fn openai_sdk_responses_translated_to_anthropic() {
    openai_sdk_on("claude-sonnet-4", "anthropic");
}

#[test]
fn openai_sdk_responses_translated_to_bedrock_signed_with_sigv4() {
    openai_sdk_on("bedrock/anthropic.claude-sonnet-4", "aws.bedrock");
}

#[test]
fn openai_sdk_responses_translated_to_gemini_on_vertex() {
    openai_sdk_on("gemini-2.5-flash", "gcp.vertex_ai");
}

#[test]
fn agents_sdk_two_turn_tool_agent_on_anthropic_and_bedrock() {
    let Some(py) = external("AIGW_PYTHON") else {
        return;
    };
    let (_gw, url, _) = gateway();
    for model in ["claude-sonnet-4", "bedrock/anthropic.claude-sonnet-4"] {
        let r = checks(&py, &url, model, &["agent"]);
        // One tool call per turn, each answered by the model in text afterwards.
        assert_eq!(r["agent"]["tool_calls"], 2, "{model}: {r}");
        assert!(
            r["agent"]["second"].as_str().unwrap().contains(model),
            "{r}"
        );
        // Turn two replays turn one (user, call, output, answer) plus its own four.
        assert_eq!(r["agent"]["items"], 8, "{model}: {r}");
    }
}

/// Runs `codex exec` against the gateway with `model`, HOME and CODEX_HOME in a
/// temporary directory, and returns its combined output.
fn codex_exec(codex: &PathBuf, base: &str, model: &str) -> String {
    let home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let codex_home = home.path().join("codex");
    let work = home.path().join("work");
    std::fs::create_dir_all(&codex_home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        codex_home.join("config.toml"),
        format!(
            "model = \"{model}\"\nmodel_provider = \"aigw\"\n\
             check_for_update_on_startup = false\n\n\
             [model_providers.aigw]\nname = \"aigw\"\nbase_url = \"{base}/v1\"\n\
             wire_api = \"responses\"\n"
        ),
    )
    .unwrap();
    let out = Command::new(codex)
        .args([
            "exec",
            "--skip-git-repo-check",
            "please call a tool to list the files here",
        ])
        .current_dir(&work)
        .env("HOME", home.path())
        .env("CODEX_HOME", &codex_home)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "codex exec failed:\n{text}");
    text
}

#[test]
fn codex_exec_runs_a_tool_on_anthropic_and_bedrock() {
    let Some(npm) = external("AIGW_NPM_DIR") else {
        return;
    };
    let codex = npm.join("node_modules/.bin/codex");
    if !codex.exists() {
        assert!(
            std::env::var("AIGW_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
            "{} is missing (scripts/test.sh installs it)",
            codex.display()
        );
        eprintln!("skipping: {} is missing", codex.display());
        return;
    }
    let (_gw, url, admin) = gateway();
    for model in ["claude-sonnet-4", "bedrock/anthropic.claude-sonnet-4"] {
        let text = codex_exec(&codex, &url, model);
        // Codex ran the simulated model's shell call, sent its output back and printed
        // the model's final answer.
        assert!(text.contains("exec"), "{model}: {text}");
        assert!(text.contains("simulated"), "{model}: {text}");
        let answer = format!("Hello from the aigw simulator. Model {model}");
        assert!(text.contains(&answer), "{model}: {text}");
    }
    // Two Responses requests per run (the tool call, then the answer), none refused.
    let metrics = http_get(admin, "/metrics");
    let requests: f64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("gen_ai_server_request_duration_seconds_count{")
                && l.contains("gen_ai_operation_name=\"responses\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(requests >= 4.0, "{metrics}");
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("aigw_requests_total{") && l.contains("status=\"422\"")),
        "{metrics}"
    );
}

/// A Backend + AIServiceBackend pair at the simulator.
fn backend_yaml(name: &str, port: u16, schema: &str) -> String {
    format!(
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  endpoints:\n    - ip:\n        address: 127.0.0.1\n        port: {port}\n\
         ---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIServiceBackend\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  schema:\n    name: {schema}\n  backendRef:\n    name: {name}\n    kind: Backend\n    group: gateway.envoyproxy.io\n"
    )
}

fn policy_yaml(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: BackendSecurityPolicy\nmetadata:\n  name: {name}-credentials\n  namespace: default\nspec:\n  targetRefs:\n    - group: aigateway.envoyproxy.io\n      kind: AIServiceBackend\n      name: {name}\n{spec}"
    )
}

/// Claude through Bedrock InvokeModel (`AWSAnthropic`, SigV4 verified) and through
/// Vertex AI (`GCPAnthropic`, the Vertex path and a metadata-server token verified),
/// configured with the upstream YAML; the simulator runs in-process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_responses_on_claude_via_bedrock_invoke_and_vertex() {
    use aigw_axum::simulator::{AwsCredentials, SIM_GCP_TOKEN, Simulator, SimulatorConfig};
    let Some(py) = external("AIGW_PYTHON") else {
        return;
    };
    let (key_id, secret) = ("AKIDRESPONSESTEST", "responses-test-secret");
    let sim = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = sim.local_addr().unwrap().port();
    let config = SimulatorConfig::default()
        .with_aws(AwsCredentials::new(key_id, secret, "us-east-1"))
        .with_gcp_tokens([SIM_GCP_TOKEN]);
    tokio::spawn(Simulator::new(config).serve(sim, std::future::pending()));

    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut y = backend_yaml("claude-invoke", port, "AWSAnthropic");
    y += &backend_yaml("claude-vertex", port, "GCPAnthropic");
    y += &format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: claude-invoke-credentials\n  namespace: default\ntype: Opaque\nstringData:\n  credentials: |\n    [default]\n    aws_access_key_id = {key_id}\n    aws_secret_access_key = {secret}\n"
    );
    y += &policy_yaml(
        "claude-invoke",
        "  type: AWSCredentials\n  awsCredentials:\n    region: us-east-1\n    credentialsFile:\n      secretRef:\n        name: claude-invoke-credentials\n",
    );
    y += &policy_yaml(
        "claude-vertex",
        "  type: GCPCredentials\n  gcpCredentials:\n    projectName: sim-project\n    region: us-central1\n",
    );
    y += "---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIGatewayRoute\nmetadata:\n  name: claude\n  namespace: default\nspec:\n  rules:\n\
          \x20   - matches:\n        - headers:\n            - type: RegularExpression\n              name: x-ai-eg-model\n              value: \"anthropic\\\\..*\"\n      backendRefs:\n        - name: claude-invoke\n\
          \x20   - matches:\n        - headers:\n            - type: RegularExpression\n              name: x-ai-eg-model\n              value: \"claude-.*\"\n      backendRefs:\n        - name: claude-vertex\n";
    let cfg = dir.path().join("aigw.yaml");
    std::fs::write(&cfg, y).unwrap();

    let (listen, admin) = (free_addr(), free_addr());
    let _gw = Proc(
        Command::new(env!("CARGO_BIN_EXE_aigw"))
            .arg("run")
            .arg(&cfg)
            .args(["--listen", &listen.to_string()])
            .args(["--admin", &admin.to_string()])
            .env("GCE_METADATA_HOST", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://{listen}");
    tokio::task::spawn_blocking(move || {
        wait_listening(listen);
        for model in ["anthropic.claude-sonnet-4-v1:0", "claude-sonnet-4@20250514"] {
            let r = checks(&py, &base, model, &["create", "stream", "tools", "chain"]);
            assert_eq!(r["create"]["status"], "completed", "{model}: {r}");
            assert!(
                r["create"]["text"].as_str().unwrap().contains(model),
                "{model}: {r}"
            );
            assert_eq!(
                r["stream"]["text"], r["stream"]["final_text"],
                "{model}: {r}"
            );
            assert_eq!(r["tools"]["tool"], "get_weather", "{model}: {r}");
            assert_eq!(r["tools"]["stream_args_match"], true, "{model}: {r}");
            assert_eq!(
                r["chain"]["previous"], r["chain"]["first_id"],
                "{model}: {r}"
            );
        }
        // Both Claude platforms were reached on their own paths.
        let stats = http_get(SocketAddr::from(([127, 0, 0, 1], port)), "/__sim/stats");
        for path in [
            "/invoke",
            "/invoke-with-response-stream",
            ":rawPredict",
            ":streamRawPredict",
        ] {
            assert!(stats.contains(path), "{path} missing from {stats}");
        }
    })
    .await
    .unwrap();
}

/// Stored responses read back with the `openai` SDK: `responses.retrieve` (after
/// `create` and after a stream), `responses.input_items.list` paged with
/// `limit`/`order`/`after` and auto-paged, `responses.delete`, then a 404 in OpenAI's
/// error shape — from the gateway's store for translated backends, and from the
/// OpenAI backend that produced them for passed-through ones (the gateway remembers
/// which backend made each id).
#[test]
fn openai_sdk_retrieves_lists_and_deletes_stored_responses() {
    let Some(py) = external("AIGW_PYTHON") else {
        return;
    };
    let (_gw, url, admin) = gateway();
    for model in [
        "claude-sonnet-4",
        "bedrock/anthropic.claude-sonnet-4",
        "gpt-4o-mini",
    ] {
        let r = checks(&py, &url, model, &["retrieve"])["retrieve"].clone();
        assert_eq!(r["got_id"], r["id"], "{model}: {r}");
        assert_eq!(r["got_text"], r["made_text"], "{r}");
        assert_eq!(r["status"], "completed");
        assert_eq!(r["got_streamed_id"], r["streamed_id"], "{r}");
        assert_eq!(r["got_streamed_text"], r["streamed_text"], "{r}");
        assert_eq!(
            r["page"],
            serde_json::json!(["first words", "second words"]),
            "{r}"
        );
        assert_eq!(r["has_more"], true);
        assert_eq!(r["rest"], serde_json::json!(["third words"]), "{r}");
        assert_eq!(r["rest_has_more"], false);
        // Newest first by default, as OpenAI lists them.
        assert_eq!(
            r["every"],
            serde_json::json!(["third words", "second words", "first words"]),
            "{r}"
        );
        assert_eq!(
            r["deleted"],
            serde_json::json!({"id": r["id"], "object": "response", "deleted": true}),
            "{r}"
        );
        assert_eq!(
            r["after_delete"],
            serde_json::json!([404, "invalid_request_error"]),
            "{r}"
        );
    }
    // The passed-through retrievals reached the OpenAI backend, metered and logged.
    let metrics = http_get(admin, "/metrics");
    for needle in [
        "gen_ai_operation_name=\"responses_retrieve\"",
        "gen_ai_provider_name=\"openai\"",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
}

/// An OpenAI-compatible server with Chat Completions only (vLLM, Ollama), marked with
/// the `aigw.run/responses: translate` annotation: the `openai` SDK's Responses calls
/// (create, stream, a tool round trip, a `previous_response_id` chain, retrieve / list /
/// delete) are translated to `/v1/chat/completions` on the simulator's OpenAI endpoint,
/// which never sees `/v1/responses`. A plain OpenAI backend next to it passes
/// `/v1/responses` through with the client's query string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_responses_on_a_chat_only_openai_compatible_server() {
    use aigw_axum::simulator::{Simulator, SimulatorConfig};
    let Some(py) = external("AIGW_PYTHON") else {
        return;
    };
    let sim = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = sim.local_addr().unwrap().port();
    tokio::spawn(Simulator::new(SimulatorConfig::default()).serve(sim, std::future::pending()));

    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut y = backend_yaml("vllm", port, "OpenAI").replace(
        "  name: vllm\n  namespace: default\nspec:\n  schema:",
        "  name: vllm\n  namespace: default\n  annotations:\n    aigw.run/responses: translate\nspec:\n  schema:",
    );
    y += &backend_yaml("openai", port, "OpenAI");
    y += "---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIGatewayRoute\nmetadata:\n  name: models\n  namespace: default\nspec:\n  rules:\n\
          \x20   - matches:\n        - headers:\n            - type: RegularExpression\n              name: x-ai-eg-model\n              value: \"Qwen/.*\"\n      backendRefs:\n        - name: vllm\n\
          \x20   - matches:\n        - headers:\n            - type: RegularExpression\n              name: x-ai-eg-model\n              value: \"gpt-.*\"\n      backendRefs:\n        - name: openai\n";
    assert!(y.contains("aigw.run/responses: translate"));
    let cfg = dir.path().join("aigw.yaml");
    std::fs::write(&cfg, y).unwrap();

    let (listen, admin) = (free_addr(), free_addr());
    let _gw = Proc(
        Command::new(env!("CARGO_BIN_EXE_aigw"))
            .arg("run")
            .arg(&cfg)
            .args(["--listen", &listen.to_string()])
            .args(["--admin", &admin.to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://{listen}");
    tokio::task::spawn_blocking(move || {
        wait_listening(listen);
        let sim = SocketAddr::from(([127, 0, 0, 1], port));
        let model = "Qwen/Qwen3-8B";
        let r = checks(
            &py,
            &base,
            model,
            &["create", "stream", "tools", "chain", "retrieve"],
        );
        assert_eq!(r["create"]["status"], "completed", "{r}");
        assert!(r["create"]["text"].as_str().unwrap().contains(model), "{r}");
        assert_eq!(r["stream"]["text"], r["stream"]["final_text"], "{r}");
        assert_eq!(r["tools"]["tool"], "get_weather", "{r}");
        assert_eq!(r["tools"]["stream_args_match"], true, "{r}");
        assert_eq!(r["chain"]["previous"], r["chain"]["first_id"], "{r}");
        assert_eq!(r["retrieve"]["got_id"], r["retrieve"]["id"], "{r}");
        assert_eq!(r["retrieve"]["has_more"], true, "{r}");
        let stats: Value = serde_json::from_str(&http_get(sim, "/__sim/stats")).unwrap();
        assert!(
            stats["paths"]["/v1/chat/completions"].as_u64().unwrap() >= 6,
            "{stats}"
        );
        assert!(stats["paths"].get("/v1/responses").is_none(), "{stats}");

        // The passthrough backend gets `/v1/responses` with the query string as sent.
        let r = checks(&py, &base, "gpt-4o-mini", &["query"]);
        assert_eq!(r["query"]["status"], "completed", "{r}");
        let stats: Value = serde_json::from_str(&http_get(sim, "/__sim/stats")).unwrap();
        assert_eq!(stats["paths"]["/v1/responses"], 1, "{stats}");
        assert_eq!(
            stats["queries"]["/v1/responses?aigw_check=q+1"], 1,
            "{stats}"
        );
    })
    .await
    .unwrap();
}

/// Two `aigw run` instances sharing Redis (`AIGW_REDIS_URL`): a translated (Anthropic)
/// response stored by the first is continued by `previous_response_id` on the second,
/// which also reads it back and lists its input — the conversation store's shared tier.
#[test]
fn previous_response_id_continues_on_another_instance_through_redis() {
    let Some(py) = external("AIGW_PYTHON") else {
        return;
    };
    let Some(redis) = redis_server() else {
        return;
    };
    let (_a, url_a, _) = gateway_with(&[("AIGW_REDIS_URL", &redis.url)]);
    let (_b, url_b, _) = gateway_with(&[("AIGW_REDIS_URL", &redis.url)]);
    let script = r#"
import json, sys, time
from openai import OpenAI
a = OpenAI(base_url=sys.argv[1] + "/v1", api_key="k", max_retries=0)
b = OpenAI(base_url=sys.argv[2] + "/v1", api_key="k", max_retries=0)
first = a.responses.create(model="claude-sonnet-4", input="first turn words")
time.sleep(0.3)  # the write to Redis is off the request path
second = b.responses.create(model="claude-sonnet-4", previous_response_id=first.id,
                            input="second turn")
got = b.responses.retrieve(first.id)
items = [i.content[0].text for i in b.responses.input_items.list(second.id, order="asc")]
print(json.dumps({"first": first.id, "previous": second.previous_response_id,
                  "got": got.id, "items": items, "status": second.status}))
"#;
    let out = Command::new(&py)
        .args(["-c", script, &url_a, &url_b])
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["previous"], r["first"], "{r}");
    assert_eq!(r["got"], r["first"], "{r}");
    assert_eq!(r["status"], "completed", "{r}");
    let items = r["items"].as_array().unwrap();
    assert_eq!(items.first().unwrap(), "first turn words", "{r}");
    assert_eq!(items.last().unwrap(), "second turn", "{r}");
    assert_eq!(
        items.len(),
        3,
        "turn 1's input, its answer, turn 2's input: {r}"
    );
}

/// The first thing a client asks, in simulator mode: `client.models.list()` of the
/// `openai` and `anthropic` SDKs lists the models the gateway routes.
#[test]
fn sdks_list_the_simulator_models() {
    let Some(py) = external("AIGW_PYTHON") else {
        return;
    };
    let (_gw, url, _) = gateway();
    let script = r#"
import json, sys
import anthropic, openai
o = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="k", max_retries=0)
a = anthropic.Anthropic(base_url=sys.argv[1] + "/anthropic", api_key="k", max_retries=0)
print(json.dumps({"openai": [[m.id, m.owned_by] for m in o.models.list()],
                  "anthropic": [m.id for m in a.models.list()]}))
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
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    for model in [
        "gpt-4o-mini",
        "claude-sonnet-4",
        "bedrock/anthropic.claude-sonnet-4",
        "gemini-2.5-flash",
    ] {
        assert!(
            r["openai"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!([model, "aigw-simulator"])),
            "{model}: {r}"
        );
        assert!(
            r["anthropic"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!(model)),
            "{model}: {r}"
        );
    }
}
