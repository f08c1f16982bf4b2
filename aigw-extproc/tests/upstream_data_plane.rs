//! aigw-extproc as a drop-in for upstream's ExtProc image, in the shape of upstream's
//! own data-plane test environment (`tests/data-plane/`): a static Envoy 1.40
//! configuration with the router-level ext_proc filter and, per cluster, the
//! upstream-level one reading the per-endpoint `per_route_rule_backend_name`
//! metadata; the ExtProc started with upstream's flags (`-configPath`,
//! `-extProcAddr unix://…`, `-adminPort`, …) and an upstream filter configuration;
//! the bundled provider simulator as every provider (it checks each API key and token),
//! with Bedrock behind a hop that recomputes every SigV4 signature with botocore.
//!
//! Needs Envoy and the test venv (`AIGW_VENV_BIN`, `AIGW_PYTHON`, set by
//! `scripts/test.sh`); skipped with a note when missing unless `AIGW_REQUIRE_EXTERNAL=1`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod common;

use aigw_axum::simulator::{Simulator, SimulatorConfig};
use common::envoy::{Envoy, Proc, envoy_binary, free_port, wait_http_ok};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const OPENAI_KEY: &str = "sk-dp-openai";
const AZURE_TOKEN: &str = "eyJ.dp-azure-token";
const AZURE_KEY: &str = "dp-azure-key";
const ANTHROPIC_KEY: &str = "sk-ant-dp";
const GCP_TOKEN: &str = "ya29.dp-gcp";
const AWS_KEY_ID: &str = "AKIDDATAPLANE";
const AWS_SECRET: &str = "dp-secret-key";
const REGION: &str = "us-east-1";

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("AIGW_PYTHON").map(PathBuf::from);
    if p.is_none() {
        assert!(
            std::env::var("AIGW_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
            "AIGW_PYTHON is not set but AIGW_REQUIRE_EXTERNAL=1"
        );
        eprintln!("skipping: AIGW_PYTHON is not set (run scripts/test.sh)");
    }
    p
}

/// The filter configuration, as the upstream controller writes it (our own copy of
/// what upstream's data-plane tests configure).
fn filter_config() -> String {
    format!(
        r#"version: v1.1.0
uuid: 00000000-0000-4000-8000-00000000d47a
globalLLMRequestCosts:
  - metadataKey: used_token
    type: TotalToken
llmRequestCosts:
  - metadataKey: used_token
    routeName: test-ns/openai-route
    type: OutputToken
  - metadataKey: some_cel
    routeName: test-ns/openai-route
    type: CEL
    cel: "input_tokens + output_tokens * 2u"
backends:
  - name: testupstream-openai
    schema: {{name: OpenAI, prefix: v1}}
    auth: {{apiKey: {{key: {OPENAI_KEY}}}}}
  - name: testupstream-modelname-override
    schema: {{name: OpenAI, prefix: v1}}
    modelNameOverride: override-model
    auth: {{apiKey: {{key: {OPENAI_KEY}}}}}
  - name: testupstream-azure
    schema: {{name: AzureOpenAI, version: 2025-01-01-preview}}
    auth: {{azure: {{accessToken: {AZURE_TOKEN}}}}}
  - name: testupstream-azure-key
    schema: {{name: AzureOpenAI, version: 2025-01-01-preview}}
    auth: {{azureAPIKey: {{key: {AZURE_KEY}}}}}
  - name: testupstream-aws
    schema: {{name: AWSBedrock}}
    auth:
      aws:
        credentialFileLiteral: "[default]\naws_access_key_id = {AWS_KEY_ID}\naws_secret_access_key = {AWS_SECRET}\n"
        region: {REGION}
  - name: testupstream-aws-nohost
    schema: {{name: AWSBedrock}}
    auth:
      aws:
        credentialFileLiteral: "[default]\naws_access_key_id = {AWS_KEY_ID}\naws_secret_access_key = {AWS_SECRET}\n"
        region: {REGION}
  - name: testupstream-anthropic
    schema: {{name: Anthropic}}
    auth: {{anthropicAPIKey: {{key: {ANTHROPIC_KEY}}}}}
  - name: testupstream-gcp-vertexai
    schema: {{name: GCPVertexAI}}
    auth: {{gcp: {{accessToken: {GCP_TOKEN}, region: us-central1, projectName: dp-project}}}}
  - name: testupstream-gcp-anthropicai
    schema: {{name: GCPAnthropic, version: vertex-2023-10-16}}
    auth: {{gcp: {{accessToken: {GCP_TOKEN}, region: us-east5, projectName: dp-project}}}}
  - name: testupstream-body-mutation
    schema: {{name: OpenAI, prefix: v1}}
    auth: {{apiKey: {{key: {OPENAI_KEY}}}}}
    httpBodyMutation:
      set: [{{path: service_tier, value: '"flex"'}}]
models:
  - {{Name: gpt-4o-mini, OwnedBy: openai, CreatedAt: "2025-01-01T00:00:00Z"}}
  - {{Name: claude-sonnet-4, OwnedBy: anthropic, CreatedAt: "2025-01-01T00:00:00Z"}}
mcpConfig:
  backendListenerAddr: http://127.0.0.1:10088
  routes: []
"#
    )
}

/// One `x-test-backend` value: its cluster, endpoint port and per-endpoint backend
/// name, and the route name on the route's metadata (as the extension server sets it).
struct Case {
    header: &'static str,
    port: u16,
    route_name: Option<&'static str>,
    /// The provider's hostname: the endpoint's `hostname` (Envoy rewrites `Host` to
    /// it) and its `upstream_host` metadata, as the extension server writes both.
    upstream_host: Option<&'static str>,
    /// The cluster endpoint's hostname (Envoy rewrites `Host` to it).
    hostname: Option<&'static str>,
}

fn route_yaml(c: &Case) -> String {
    let md = c.route_name.map_or(String::new(), |r| {
        format!(
            "\n                          metadata:\n                            filter_metadata:\n                              aigateway.envoy.io:\n                                aigw_route_name: \"{r}\""
        )
    });
    format!(
        r#"
                        - match:
                            prefix: "/"
                            headers:
                              - name: x-test-backend
                                string_match: {{exact: {h}}}
                          route:
                            cluster: testupstream-{h}
                            auto_host_rewrite: {rewrite}{md}"#,
        h = c.header,
        rewrite = c.hostname.is_some()
    )
}

fn cluster_yaml(c: &Case) -> String {
    format!(
        r#"
    - name: testupstream-{h}
      connect_timeout: 1s
      type: STATIC
      per_connection_buffer_limit_bytes: 52428800
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config:
            http_protocol_options: {{}}
          http_filters:
            - name: upstream_extproc
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
                allow_mode_override: true
                request_attributes:
                  - xds.upstream_host_metadata.filter_metadata['aigateway.envoy.io']['per_route_rule_backend_name']
                  - xds.upstream_host_metadata.filter_metadata['aigateway.envoy.io']['upstream_host']
                  - xds.route_metadata.filter_metadata['aigateway.envoy.io']['aigw_route_name']
                processing_mode:
                  request_header_mode: SEND
                  request_body_mode: NONE
                  response_header_mode: SKIP
                  response_body_mode: NONE
                grpc_service:
                  envoy_grpc: {{cluster_name: extproc_cluster}}
                  timeout: 30s
                message_timeout: 60s
                metadataOptions:
                  receivingNamespaces:
                    untyped: [io.envoy.ai_gateway]
            - name: envoy.filters.http.header_mutation
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation
                mutations:
                  request_mutations:
                    - append:
                        append_action: ADD_IF_ABSENT
                        header:
                          key: content-length
                          value: "%DYNAMIC_METADATA(io.envoy.ai_gateway:content_length)%"
            - name: envoy.filters.http.upstream_codec
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec
      load_assignment:
        cluster_name: testupstream-{h}
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address: {{address: 127.0.0.1, port_value: {port}}}{hostname}
                metadata:
                  filter_metadata:
                    aigateway.envoy.io:
                      per_route_rule_backend_name: "testupstream-{h}"{upstream_host}"#,
        h = c.header,
        port = c.port,
        hostname = c.hostname.map_or(String::new(), |h| format!(
            "\n                  hostname: {h}"
        )),
        upstream_host = c.upstream_host.map_or(String::new(), |h| format!(
            "\n                      upstream_host: {h}"
        )),
    )
}

fn envoy_yaml(listen: u16, admin: u16, sock: &Path, cases: &[Case]) -> String {
    let routes: String = cases.iter().map(route_yaml).collect();
    let clusters: String = cases.iter().map(cluster_yaml).collect();
    format!(
        r#"admin:
  address:
    socket_address: {{address: 127.0.0.1, port_value: {admin}}}
static_resources:
  listeners:
    - address:
        socket_address: {{address: 127.0.0.1, port_value: {listen}}}
      per_connection_buffer_limit_bytes: 52428800
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: ingress_http
                codec_type: auto
                access_log:
                  - name: log_used_token
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
                      log_format:
                        json_format:
                          test_backend: "%REQ(x-test-backend)%"
                          response_code: "%RESPONSE_CODE%"
                          used_token: "%DYNAMIC_METADATA(io.envoy.ai_gateway:used_token)%"
                          some_cel: "%DYNAMIC_METADATA(io.envoy.ai_gateway:some_cel)%"
                          backend_name: "%DYNAMIC_METADATA(io.envoy.ai_gateway:backend_name)%"
                          route_name: "%DYNAMIC_METADATA(io.envoy.ai_gateway:route_name)%"
                          model_name_override: "%DYNAMIC_METADATA(io.envoy.ai_gateway:model_name_override)%"
                          response_model: "%DYNAMIC_METADATA(io.envoy.ai_gateway:response_model)%"
                route_config:
                  virtual_hosts:
                    - name: local_route
                      domains: ["*"]
                      routes:{routes}
                http_filters:
                  - name: envoy.filters.http.ext_proc
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
                      allow_mode_override: true
                      processing_mode:
                        request_header_mode: SEND
                        request_body_mode: BUFFERED
                        response_header_mode: SEND
                        response_body_mode: BUFFERED
                      grpc_service:
                        envoy_grpc: {{cluster_name: extproc_cluster}}
                        timeout: 30s
                      message_timeout: 60s
                      metadataOptions:
                        receivingNamespaces:
                          untyped: [io.envoy.ai_gateway]
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
                      suppress_envoy_headers: true
  clusters:
    - name: extproc_cluster
      connect_timeout: 5s
      type: STATIC
      per_connection_buffer_limit_bytes: 52428800
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config:
            http2_protocol_options: {{}}
      load_assignment:
        cluster_name: extproc_cluster
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    pipe: {{path: "{sock}"}}{clusters}
"#,
        sock = sock.display()
    )
}

/// The simulator checking every credential, or (behind the botocore hop, which
/// checks SigV4 itself and forwards under its own host) none.
async fn simulator(check: bool) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let cfg = if check {
        SimulatorConfig::default()
            .with_openai_keys([OPENAI_KEY])
            .with_azure_bearer_tokens([AZURE_TOKEN])
            .with_azure_api_keys([AZURE_KEY])
            .with_anthropic_keys([ANTHROPIC_KEY])
            .with_gcp_tokens([GCP_TOKEN])
    } else {
        SimulatorConfig::default()
    };
    tokio::spawn(Simulator::new(cfg).serve(l, std::future::pending()));
    port
}

fn wait_listening(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{port} never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Gateway {
    base: String,
    http: reqwest::Client,
    envoy: Envoy,
}

impl Gateway {
    async fn post(&self, backend: &str, path: &str, body: Value) -> (u16, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-test-backend", backend)
            .header("anthropic-version", "2023-06-01")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    async fn ok_json(&self, backend: &str, path: &str, body: Value) -> Value {
        let (status, text) = self.post(backend, path, body).await;
        assert_eq!(
            status,
            200,
            "{backend} {path}: {text}\n{}",
            self.envoy.output()
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    async fn log(&self, backend: &'static str) -> Value {
        self.envoy
            .access_log_line(move |v| v["test_backend"] == backend)
            .await
    }
}

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hello"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_data_plane_environment() {
    let (Some(py), Some(envoy_bin)) = (python(), envoy_binary()) else {
        return;
    };
    let sim = simulator(true).await;
    let unchecked = simulator(false).await;
    let dir = tempfile::tempdir().unwrap();

    // Bedrock goes through botocore's signature check.
    let checker = free_port();
    let checks = dir.path().join("bedrock-checks.jsonl");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../aigw-axum/tests/py/bedrock_botocore_proxy.py"
    );
    let _checker = Proc(
        Command::new(&py)
            .arg(script)
            .args([
                &checker.to_string(),
                &format!("127.0.0.1:{unchecked}"),
                AWS_KEY_ID,
                AWS_SECRET,
                REGION,
            ])
            .arg(&checks)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(checker);

    let cfg = dir.path().join("filter-config.yaml");
    std::fs::write(&cfg, filter_config()).unwrap();
    let sock = dir.path().join("run.sock");
    let admin = free_port();
    let mcp_port = free_port();
    let log = dir.path().join("extproc.log");
    let _extproc = Proc(
        Command::new(env!("CARGO_BIN_EXE_aigw-extproc"))
            .arg("-configPath")
            .arg(&cfg)
            .arg(format!("-extProcAddr=unix://{}", sock.display()))
            .args(["-adminPort", &admin.to_string()])
            .args([
                "-logLevel",
                "info",
                "-logFormat",
                "json",
                "-enableRedaction",
            ])
            .args(["-maxRecvMsgSize", "536870912", "-rootPrefix", "/"])
            .args([
                "-endpointPrefixes",
                "openai:/,cohere:/cohere,anthropic:/anthropic",
            ])
            .args(["-mcpAddr", &format!("127.0.0.1:{mcp_port}")])
            .args(["-mcpSessionEncryptionSeed", "seed"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_http_ok(&format!("http://127.0.0.1:{admin}/health")).await;
    let extproc_log = std::fs::read_to_string(&log).unwrap();
    // The MCP proxy serves the (empty) mcpConfig on -mcpAddr.
    wait_listening(mcp_port);
    assert!(!extproc_log.contains(OPENAI_KEY) && !extproc_log.contains(AWS_SECRET));
    let metrics = reqwest::get(format!("http://127.0.0.1:{admin}/metrics"))
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);

    let cases = [
        Case {
            header: "openai",
            port: sim,
            route_name: Some("test-ns/openai-route"),
            upstream_host: None,
            hostname: None,
        },
        Case {
            header: "modelname-override",
            port: sim,
            route_name: None,
            upstream_host: None,
            hostname: None,
        },
        Case {
            header: "azure",
            port: sim,
            route_name: None,
            upstream_host: None,
            hostname: None,
        },
        Case {
            header: "azure-key",
            port: sim,
            route_name: None,
            upstream_host: None,
            hostname: None,
        },
        Case {
            header: "aws",
            port: checker,
            route_name: None,
            upstream_host: Some("bedrock-runtime.us-east-1.amazonaws.com"),
            hostname: Some("bedrock-runtime.us-east-1.amazonaws.com"),
        },
        // No `upstream_host` endpoint metadata: signed for the region's default
        // Bedrock host, as upstream (not for the downstream authority).
        Case {
            header: "aws-nohost",
            port: checker,
            route_name: None,
            upstream_host: None,
            hostname: Some("bedrock-runtime.us-east-1.amazonaws.com"),
        },
        Case {
            header: "anthropic",
            port: sim,
            route_name: None,
            upstream_host: None,
            hostname: None,
        },
        Case {
            header: "gcp-vertexai",
            port: sim,
            route_name: None,
            upstream_host: None,
            hostname: None,
        },
        Case {
            header: "gcp-anthropicai",
            port: sim,
            route_name: None,
            upstream_host: None,
            hostname: None,
        },
        Case {
            header: "body-mutation",
            port: sim,
            route_name: None,
            upstream_host: None,
            hostname: None,
        },
    ];
    let (listen, envoy_admin) = (free_port(), free_port());
    let bootstrap = dir.path().join("envoy.yaml");
    std::fs::write(&bootstrap, envoy_yaml(listen, envoy_admin, &sock, &cases)).unwrap();
    let envoy = Envoy::start(&envoy_bin, &bootstrap, dir.path(), envoy_admin).await;
    let gw = Gateway {
        base: format!("http://127.0.0.1:{listen}"),
        http: reqwest::Client::new(),
        envoy,
    };

    // Chat: route-scoped costs (the route named by Envoy's route metadata).
    let r = gw
        .ok_json("openai", "/v1/chat/completions", chat("gpt-4o-mini", false))
        .await;
    let (input, output) = (
        r["usage"]["prompt_tokens"].as_u64().unwrap(),
        r["usage"]["completion_tokens"].as_u64().unwrap(),
    );
    let l = gw.log("openai").await;
    assert_eq!(l["used_token"].as_u64(), Some(output), "{l}");
    assert_eq!(l["some_cel"].as_u64(), Some(input + 2 * output), "{l}");
    assert_eq!(l["backend_name"], "testupstream-openai", "{l}");
    assert_eq!(l["route_name"], "test-ns/openai-route", "{l}");

    // Streaming chat: usage is forced on (costs are configured) and counted.
    let (status, text) = gw
        .post("openai", "/v1/chat/completions", chat("gpt-4o-mini", true))
        .await;
    assert_eq!(status, 200, "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(text.contains("\"usage\""), "usage forced on: {text}");

    // Embeddings and completions.
    let r = gw
        .ok_json(
            "openai",
            "/v1/embeddings",
            json!({"model": "text-embedding-3-small", "input": "hi"}),
        )
        .await;
    assert!(
        !r["data"][0]["embedding"].as_array().unwrap().is_empty(),
        "{r}"
    );
    let r = gw
        .ok_json(
            "openai",
            "/v1/completions",
            json!({"model": "babbage-002", "prompt": "hi"}),
        )
        .await;
    assert!(r["choices"][0]["text"].is_string(), "{r}");

    // Model name override: the backend gets the override, metadata says so, and the
    // other routes fall back to the global cost (total tokens).
    let r = gw
        .ok_json(
            "modelname-override",
            "/v1/chat/completions",
            chat("gpt-4o-mini", false),
        )
        .await;
    assert_eq!(r["model"], "override-model", "{r}");
    let l = gw.log("modelname-override").await;
    assert_eq!(l["model_name_override"], "override-model", "{l}");
    assert_eq!(
        l["used_token"].as_u64(),
        r["usage"]["total_tokens"].as_u64(),
        "global cost: {l}"
    );

    // Azure with the controller-minted access token, and with an API key.
    for backend in ["azure", "azure-key"] {
        let r = gw
            .ok_json(backend, "/v1/chat/completions", chat("gpt-4o", false))
            .await;
        assert_eq!(r["object"], "chat.completion", "{backend}: {r}");
    }

    // Bedrock Converse, signed for the host Envoy sends to (checked by botocore).
    let (status, text) = gw
        .post(
            "aws",
            "/v1/chat/completions",
            chat("us.amazon.nova-micro-v1:0", false),
        )
        .await;
    assert_eq!(
        status,
        200,
        "{text}\n{}",
        std::fs::read_to_string(&checks).unwrap_or_default()
    );
    let r = gw
        .ok_json(
            "aws",
            "/v1/chat/completions",
            chat("us.amazon.nova-micro-v1:0", false),
        )
        .await;
    assert!(r["usage"]["total_tokens"].as_u64().unwrap() > 0, "{r}");
    let (status, text) = gw
        .post(
            "aws",
            "/v1/chat/completions",
            chat("us.amazon.nova-micro-v1:0", true),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("data: [DONE]"), "{text}");
    let (status, text) = gw
        .post(
            "aws-nohost",
            "/v1/chat/completions",
            chat("us.amazon.nova-micro-v1:0", false),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let lines = std::fs::read_to_string(&checks).unwrap();
    let last: Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
    assert_eq!(
        last["host"], "bedrock-runtime.us-east-1.amazonaws.com",
        "{last}"
    );
    assert!(lines.lines().count() >= 2, "{lines}");
    for l in lines.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["sigv4"], true, "botocore rejected the signature: {v}");
        assert_eq!(v["errors"], "", "botocore rejected the body: {v}");
    }

    // Anthropic, native, on upstream's default path.
    let r = gw
        .ok_json(
            "anthropic",
            "/anthropic/v1/messages",
            json!({"model": "claude-sonnet-4", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r["type"], "message", "{r}");

    // Vertex AI: Gemini and Claude, token plus project/region path.
    let r = gw
        .ok_json(
            "gcp-vertexai",
            "/v1/chat/completions",
            chat("gemini-2.5-flash", false),
        )
        .await;
    assert_eq!(r["object"], "chat.completion", "{r}");
    let r = gw
        .ok_json(
            "gcp-anthropicai",
            "/anthropic/v1/messages",
            json!({"model": "claude-sonnet-4@20250514", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r["type"], "message", "{r}");

    // Body mutation.
    let r = gw
        .ok_json(
            "body-mutation",
            "/v1/chat/completions",
            chat("gpt-4o-mini", false),
        )
        .await;
    assert_eq!(r["object"], "chat.completion", "{r}");

    // /v1/models answered locally from the filter configuration's list.
    let models: Value = gw
        .http
        .get(format!("{}/v1/models", gw.base))
        .header("x-test-backend", "openai")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["claude-sonnet-4", "gpt-4o-mini"], "{models}");
    assert_eq!(models["data"][0]["created"], 1_735_689_600, "{models}");

    // A configuration from a controller of another version is refused on reload; the
    // previous one keeps serving.
    std::fs::write(
        &cfg,
        filter_config().replace("version: v1.1.0", "version: v1.2.0"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("config version mismatch")
    {
        assert!(
            Instant::now() < deadline,
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = gw
        .ok_json("openai", "/v1/chat/completions", chat("gpt-4o-mini", false))
        .await;
    assert_eq!(r["object"], "chat.completion");
}
