//! Envoy 1.40 with the bootstrap `aigw-extproc envoy-config` prints, the
//! `aigw-extproc` binary on a Unix domain socket, and the bundled provider simulator as
//! every upstream; driven by the official `openai` and `anthropic` SDKs.
//!
//! The simulator verifies API keys and recomputes Bedrock SigV4 signatures, so each
//! success is also a credential check. Needs the test venv (`AIGW_PYTHON`,
//! `AIGW_VENV_BIN`, set by `scripts/test.sh`); skipped with a note when missing unless
//! `AIGW_REQUIRE_EXTERNAL=1`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod common;

use aigw_axum::simulator::{AwsCredentials, Simulator, SimulatorConfig};
use common::envoy::{Envoy, envoy_binary, free_port};
use std::path::{Path, PathBuf};
use std::process::Command;

const OPENAI_KEY: &str = "sk-e2e-openai";
const ANTHROPIC_KEY: &str = "sk-ant-e2e";
const AWS_KEY_ID: &str = "AKIDE2ETEST";
const AWS_SECRET: &str = "e2e-secret-key";

fn python() -> Option<PathBuf> {
    match std::env::var_os("AIGW_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                std::env::var("AIGW_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
                "AIGW_PYTHON is not set but AIGW_REQUIRE_EXTERNAL=1"
            );
            eprintln!("skipping: AIGW_PYTHON is not set (run scripts/test.sh)");
            None
        }
    }
}

async fn simulator(config: SimulatorConfig) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(Simulator::new(config).serve(l, std::future::pending()));
    port
}

fn backend(name: &str, port: u16, schema: &str) -> String {
    format!(
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  endpoints:\n    - ip:\n        address: 127.0.0.1\n        port: {port}\n\
         ---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIServiceBackend\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  schema:\n    name: {schema}\n  backendRef:\n    name: {name}\n    kind: Backend\n    group: gateway.envoyproxy.io\n"
    )
}

fn policy(name: &str, key: &str, value: &str, spec: &str) -> String {
    // A block scalar keeps a trailing newline: only for multi-line values (files).
    let value = if value.contains('\n') {
        format!("|\n    {}", value.replace('\n', "\n    "))
    } else {
        value.to_owned()
    };
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}-credentials\n  namespace: default\ntype: Opaque\nstringData:\n  {key}: {value}\n\
         ---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: BackendSecurityPolicy\nmetadata:\n  name: {name}-credentials\n  namespace: default\nspec:\n  targetRefs:\n    - group: aigateway.envoyproxy.io\n      kind: AIServiceBackend\n      name: {name}\n{spec}"
    )
}

fn config_yaml(good: u16, broken: u16) -> String {
    let mut y = String::new();
    y += &backend("sim-openai", good, "OpenAI");
    y += &backend("sim-bedrock", good, "AWSBedrock");
    y += &backend("sim-anthropic", good, "Anthropic");
    y += &backend("sim-broken", broken, "OpenAI");
    y += &backend("sim-cohere", good, "Cohere");
    y += &policy(
        "sim-cohere",
        "apiKey",
        OPENAI_KEY,
        "  type: APIKey\n  apiKey:\n    secretRef:\n      name: sim-cohere-credentials\n",
    );
    y += &policy(
        "sim-openai",
        "apiKey",
        OPENAI_KEY,
        "  type: APIKey\n  apiKey:\n    secretRef:\n      name: sim-openai-credentials\n",
    );
    y += &policy(
        "sim-anthropic",
        "apiKey",
        ANTHROPIC_KEY,
        "  type: AnthropicAPIKey\n  anthropicAPIKey:\n    secretRef:\n      name: sim-anthropic-credentials\n",
    );
    y += &policy(
        "sim-bedrock",
        "credentials",
        &format!(
            "[default]\naws_access_key_id = {AWS_KEY_ID}\naws_secret_access_key = {AWS_SECRET}"
        ),
        "  type: AWSCredentials\n  awsCredentials:\n    region: us-east-1\n    credentialsFile:\n      secretRef:\n        name: sim-bedrock-credentials\n",
    );
    let exact = |m: &str| {
        format!(
            "        - headers:\n            - type: Exact\n              name: x-ai-eg-model\n              value: {m}\n"
        )
    };
    let regex = |m: &str| {
        format!(
            "        - headers:\n            - type: RegularExpression\n              name: x-ai-eg-model\n              value: \"{m}\"\n"
        )
    };
    y += "---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIGatewayRoute\nmetadata:\n  name: e2e\n  namespace: default\nspec:\n  rules:\n";
    y += &format!(
        "    - matches:\n{}      backendRefs:\n        - name: sim-broken\n          priority: 0\n        - name: sim-openai\n          priority: 1\n",
        exact("fallback-model")
    );
    y += &format!(
        "    - matches:\n{}      backendRefs:\n        - name: sim-bedrock\n",
        regex("bedrock/.*")
    );
    y += &format!(
        "    - matches:\n{}      backendRefs:\n        - name: sim-anthropic\n",
        regex("claude-.*")
    );
    y += &format!(
        "    - matches:\n{}{}{}{}{}      backendRefs:\n        - name: sim-openai\n",
        exact("gpt-4o-mini"),
        exact("text-embedding-3-small"),
        exact("gpt-image-1"),
        exact("gpt-4o-mini-tts"),
        exact("whisper-1")
    );
    y += &format!(
        "    - matches:\n{}      backendRefs:\n        - name: sim-openai\n",
        exact("gpt-4o-mini-transcribe")
    );
    // Bedrock's Rerank API takes the model's ARN.
    y += &format!(
        "    - matches:\n{}      backendRefs:\n        - name: sim-bedrock\n          modelNameOverride: \"arn:aws:bedrock:us-east-1::foundation-model/cohere.rerank-v3-5:0\"\n",
        exact("bedrock-rerank")
    );
    y += &format!(
        "    - matches:\n{}      backendRefs:\n        - name: sim-cohere\n",
        exact("rerank-v3.5")
    );
    y += "  llmRequestCosts:\n    - metadataKey: llm_input_token\n      type: InputToken\n    - metadataKey: llm_output_token\n      type: OutputToken\n    - metadataKey: llm_total_token\n      type: TotalToken\n";
    y
}

fn sdk(python: &Path, base: &str, checks: &[&str]) -> serde_json::Value {
    // The SDK harness shared with the standalone gateway's interop tests.
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../aigw-axum/tests/interop/sdk_checks.py"
    );
    let out = Command::new(python)
        .arg(script)
        .arg(base)
        .args(checks)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "SDK checks failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The OpenAI SDK's Responses calls (create, typed event stream, a function-call round
/// trip) for one model, with the harness shared with the standalone gateway's tests.
fn responses(python: &Path, base: &str, model: &str, extra: &[&str]) -> serde_json::Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../aigw-axum/tests/interop/responses_checks.py"
    );
    let out = Command::new(python)
        .args([script, base, model, "create", "stream", "tools"])
        .args(extra)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdks_through_envoy_and_extproc() {
    let (Some(py), Some(envoy)) = (python(), envoy_binary()) else {
        return;
    };
    let good = simulator(
        SimulatorConfig::default()
            .with_openai_keys([OPENAI_KEY])
            .with_anthropic_keys([ANTHROPIC_KEY])
            .with_aws(AwsCredentials::new(AWS_KEY_ID, AWS_SECRET, "us-east-1")),
    )
    .await;
    let broken = simulator(SimulatorConfig {
        fail_status: Some(500),
        ..SimulatorConfig::default()
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("aigw.yaml");
    std::fs::write(&cfg, config_yaml(good, broken)).unwrap();
    let sock = dir.path().join("extproc.sock");
    let extproc_addr = format!("unix://{}", sock.display());
    let (listen, envoy_admin, admin) = (free_port(), free_port(), free_port());

    let bootstrap =
        common::envoy::envoy_config(&cfg, &extproc_addr, (listen, envoy_admin), &[], dir.path());

    let _extproc = common::envoy::start_extproc(&cfg, &extproc_addr, admin, None).await;
    let envoy = Envoy::start(&envoy, &bootstrap, dir.path(), envoy_admin).await;

    let base = format!("http://127.0.0.1:{listen}");
    let py2 = py.clone();
    let base2 = base.clone();
    let r = tokio::task::spawn_blocking(move || {
        sdk(
            &py2,
            &base2,
            &[
                "openai_chat",
                "openai_chat_stream",
                "openai_embeddings",
                "bedrock_chat",
                "bedrock_chat_stream",
                "bedrock_messages_stream",
                "anthropic_messages",
                "anthropic_messages_stream",
                "fallback_chat",
                "fallback_chat_stream",
                "unknown_model_404",
                "unknown_model_404_anthropic",
                "upstream_errors",
            ],
        )
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", envoy.output()));
    assert_eq!(r["openai_chat"]["model"], "gpt-4o-mini");
    assert!(r["openai_chat_stream"]["chunks"].as_u64().unwrap() >= 3);
    assert!(r["openai_embeddings"]["dims"].as_u64().unwrap() > 0);
    assert!(r["bedrock_chat"]["usage"].as_u64().unwrap() > 0);
    assert!(
        r["bedrock_messages_stream"]["output_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(r["fallback_chat"]["usage"].as_u64().unwrap() > 0);
    assert_eq!(r["unknown_model_404"]["status"], 404);
    assert_eq!(r["unknown_model_404_anthropic"]["body"]["type"], "error");
    // OpenAI's errors reach the SDK byte for byte, with the provider's headers.
    for status in ["400", "404", "429"] {
        let e = &r["upstream_errors"][status];
        assert_eq!(e["byte_exact"], true, "{status}: {e}");
        assert_eq!(e["headers"]["x-request-id"], e["request_id"], "{e}");
        assert!(
            e["request_id"].as_str().unwrap().starts_with("req_sim"),
            "{e}"
        );
        assert_eq!(
            e["headers"]["x-ratelimit-remaining-requests"], "9999",
            "{e}"
        );
        assert_eq!(e["headers"]["openai-processing-ms"], "17", "{e}");
    }

    // Token metadata reaches Envoy's access log (written when the stream ends).
    let bedrock = envoy
        .access_log_line(|v| {
            v["gen_ai.request.model"] == "bedrock/anthropic.claude-3-haiku"
                && v["response_code"] == 200
        })
        .await;
    let total = bedrock["gen_ai.usage.total_tokens"].as_f64().unwrap();
    let input = bedrock["gen_ai.usage.input_tokens"].as_f64().unwrap();
    let output = bedrock["gen_ai.usage.output_tokens"].as_f64().unwrap();
    assert!(
        total > 0.0 && (input + output - total).abs() < f64::EPSILON,
        "{bedrock}"
    );
    assert_eq!(bedrock["ai_gateway.backend"], "default/sim-bedrock");
    let fallback = envoy
        .access_log_line(|v| {
            v["gen_ai.request.model"] == "fallback-model" && v["response_code"] == 200
        })
        .await;
    assert_eq!(
        fallback["ai_gateway.backend"], "default/sim-openai",
        "{fallback}"
    );

    // The Responses API through Envoy: passed through to OpenAI, translated for
    // Anthropic and Bedrock (SigV4-signed by the ext_proc server).
    for model in [
        "gpt-4o-mini",
        "claude-sonnet-4",
        "bedrock/anthropic.claude-3-haiku",
    ] {
        let (py2, base2) = (py.clone(), base.clone());
        // Passed-through responses are read back from the backend that made them.
        let extra: &[&str] = if model == "gpt-4o-mini" {
            &["retrieve"]
        } else {
            &[]
        };
        let r = tokio::task::spawn_blocking(move || responses(&py2, &base2, model, extra))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", envoy.output()));
        assert_eq!(r["create"]["status"], "completed", "{model}: {r}");
        assert_eq!(
            r["stream"]["text"], r["stream"]["final_text"],
            "{model}: {r}"
        );
        assert_eq!(r["tools"]["tool"], "get_weather", "{model}: {r}");
        assert_eq!(r["tools"]["stream_args_match"], true, "{model}: {r}");
        if !extra.is_empty() {
            let r = &r["retrieve"];
            assert_eq!(r["got_id"], r["id"], "{r}");
            assert_eq!(r["got_streamed_text"], r["streamed_text"], "{r}");
            assert_eq!(r["rest"], serde_json::json!(["third words"]), "{r}");
            assert_eq!(
                r["after_delete"],
                serde_json::json!([404, "invalid_request_error"]),
                "{r}"
            );
        }
    }
    let translated = envoy
        .access_log_line(|v| {
            v["gen_ai.request.model"] == "claude-sonnet-4" && v["response_code"] == 200
        })
        .await;
    assert!(
        translated["gen_ai.usage.output_tokens"].as_f64().unwrap() > 0.0,
        "{translated}"
    );
    media_through_envoy(&py, &base).await;
    translated_media_through_envoy(&py, &base).await;
    beta_query_reaches_only_the_native_backend(&base, good).await;
}

/// Images, rerank and tokenize translated for Bedrock and Anthropic, through Envoy and
/// the ExtProc (upstream-level translation, SigV4 verified by the simulator).
async fn translated_media_through_envoy(py: &Path, base: &str) {
    let script = r#"
import base64, json, sys
import cohere, openai, requests
b = sys.argv[1]
o = openai.OpenAI(base_url=b + "/v1", api_key="k", max_retries=0)
img = o.images.generate(model="bedrock/amazon.titan-image-generator-v2:0", prompt="a lighthouse", n=2)
rr = cohere.ClientV2(api_key="k", base_url=b + "/cohere").v2.rerank(
    model="bedrock-rerank", query="capital of France",
    documents=["Berlin is in Germany", "Paris is the capital of France"], top_n=1)
t = requests.post(b + "/tokenize", json={"model": "claude-sonnet-4", "prompt": "four words right here"})
print(json.dumps({"images": len(img.data),
                  "png": base64.b64decode(img.data[0].b64_json).startswith(b"\x89PNG"),
                  "rerank": [x.index for x in rr.results], "tokenize": t.json()}))
"#;
    let (py, base) = (py.to_owned(), base.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(py)
            .args(["-c", script, &base])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "translated media checks failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["images"], 2, "{r}");
    assert_eq!(r["png"], true, "{r}");
    assert_eq!(r["rerank"], serde_json::json!([1]), "{r}");
    assert!(r["tokenize"]["count"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["tokenize"]["tokens"], serde_json::json!([]), "{r}");
}

/// `POST /v1/messages?beta=true` (Claude Code's form) through Envoy: the native
/// Anthropic backend receives the query, the translated Bedrock backend does not.
async fn beta_query_reaches_only_the_native_backend(base: &str, sim: u16) {
    let http = reqwest::Client::new();
    for model in ["claude-sonnet-4", "bedrock/anthropic.claude-3-haiku"] {
        let r = http
            .post(format!("{base}/v1/messages?beta=true"))
            .header("anthropic-version", "2023-06-01")
            .header("x-api-key", "client-key")
            .json(&serde_json::json!({
                "model": model,
                "max_tokens": 32,
                "messages": [{"role": "user", "content": "hi"}],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{model}: {}", r.text().await.unwrap());
    }
    let stats: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{sim}/__sim/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let queries = stats["queries"].as_object().unwrap();
    assert!(queries.contains_key("/v1/messages?beta=true"), "{stats}");
    assert!(
        queries
            .keys()
            .all(|k| k == "/v1/messages?beta=true" || !k.contains("beta")),
        "the query reached a translated backend: {stats}"
    );
    assert!(
        stats["paths"]
            .as_object()
            .unwrap()
            .keys()
            .any(|p| p.starts_with("/model/") && p.contains("claude-3-haiku")),
        "{stats}"
    );
}

/// Images, audio (bytes, SSE, a WAV transcription and translation), Cohere rerank and
/// vLLM tokenize through Envoy and the ExtProc, with the shared SDK harness.
async fn media_through_envoy(py: &Path, base: &str) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../aigw-axum/tests/interop/media_checks.py"
    );
    let (py, base) = (py.to_owned(), base.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(py)
            .arg(script)
            .arg(base)
            .args([
                "images",
                "speech",
                "speech_sse",
                "transcription",
                "translation",
                "rerank",
                "tokenize",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "media checks failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["images"]["png"], true, "{r}");
    assert_eq!(r["speech"]["id3"], true, "{r}");
    assert_eq!(r["speech"]["has_text"], true, "{r}");
    assert_eq!(r["speech_sse"]["last"], "speech.audio.done", "{r}");
    assert!(
        r["transcription"]["text"]
            .as_str()
            .unwrap()
            .contains("0.5 seconds"),
        "{r}"
    );
    assert!(
        r["translation"]["text"]
            .as_str()
            .unwrap()
            .contains("translation"),
        "{r}"
    );
    assert_eq!(r["rerank"]["order"], serde_json::json!([1, 0]), "{r}");
    assert_eq!(r["tokenize"]["count"], 4, "{r}");
}
