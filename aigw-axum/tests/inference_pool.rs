//! InferencePool routing in `aigw run`: a fake endpoint picker speaking the Gateway API
//! Inference Extension's endpoint picker protocol (an Envoy ext_proc server that checks
//! what it receives against the protocol document) steers each request to the model
//! server it names; when the picker is down, `failureMode` decides (FailClose: 503
//! naming the pool; FailOpen: an endpoint the picker named before); its own
//! `ImmediateResponse` (429: shed) reaches the client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod peers;

use axum::body::Bytes;
use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::{
    ExternalProcessor, ExternalProcessorServer,
};
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Msg;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response as Reply;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    BodyResponse, CommonResponse, HeaderMutation, HeadersResponse, ImmediateResponse,
    ProcessingRequest, ProcessingResponse,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use futures::Stream;
use peers::{Proc, free_addr, wait_listening};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

/// What the picker saw of one request.
#[derive(Debug, Default, Clone)]
struct Seen {
    path: String,
    model_in_body: String,
    authorization: Option<String>,
    served: Option<String>,
}

/// The picker: the endpoint named by the test header `test-epp-endpoint-selection` (as
/// the extension's conformance picker does), else the first one it was given.
#[derive(Clone)]
struct Picker {
    endpoints: Vec<String>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

type Replies = Pin<Box<dyn Stream<Item = Result<ProcessingResponse, Status>> + Send>>;

fn destination(endpoint: &str) -> ProcessingResponse {
    // Both ways the protocol allows, with the same value (it forbids different ones).
    let lb = Struct {
        fields: HashMap::from([(
            "x-gateway-destination-endpoint".to_owned(),
            Value {
                kind: Some(Kind::StringValue(endpoint.to_owned())),
            },
        )]),
    };
    ProcessingResponse {
        response: Some(Reply::RequestHeaders(HeadersResponse {
            response: Some(CommonResponse {
                clear_route_cache: true,
                header_mutation: Some(HeaderMutation {
                    set_headers: vec![HeaderValueOption {
                        header: Some(HeaderValue {
                            key: "x-gateway-destination-endpoint".into(),
                            raw_value: endpoint.as_bytes().to_vec(),
                            ..HeaderValue::default()
                        }),
                        ..HeaderValueOption::default()
                    }],
                    ..HeaderMutation::default()
                }),
                ..CommonResponse::default()
            }),
        })),
        dynamic_metadata: Some(Struct {
            fields: HashMap::from([(
                "envoy.lb".to_owned(),
                Value {
                    kind: Some(Kind::StructValue(lb)),
                },
            )]),
        }),
        ..ProcessingResponse::default()
    }
}

impl Picker {
    /// One stream, checked against the protocol: request headers first (pseudo-headers
    /// present, more to come), then the whole body; the answer only once the body is
    /// complete; then the response headers carrying `envoy.lb` /
    /// `x-gateway-destination-endpoint-served`.
    async fn serve(
        self,
        mut stream: Streaming<ProcessingRequest>,
        tx: mpsc::Sender<Result<ProcessingResponse, Status>>,
    ) {
        let mut seen = Seen::default();
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut body = Vec::new();
        while let Ok(Some(req)) = stream.message().await {
            match req.request {
                Some(Msg::RequestHeaders(h)) => {
                    assert!(!h.end_of_stream, "a chat request has a body");
                    for v in h.headers.unwrap().headers {
                        let value = String::from_utf8(v.raw_value).unwrap();
                        headers.push((v.key, value));
                    }
                    let get =
                        |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                    assert_eq!(get(":method").as_deref(), Some("POST"));
                    seen.path = get(":path").unwrap();
                    seen.authorization = get("authorization");
                }
                Some(Msg::RequestBody(b)) => {
                    body.extend_from_slice(&b.body);
                    if !b.end_of_stream {
                        continue;
                    }
                    assert!(!headers.is_empty(), "headers come before the body");
                    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    seen.model_in_body = json["model"].as_str().unwrap_or_default().into();
                    if headers.iter().any(|(k, _)| k == "x-test-shed") {
                        let _ = tx
                            .send(Ok(ProcessingResponse {
                                response: Some(Reply::ImmediateResponse(ImmediateResponse {
                                    status: Some(HttpStatus { code: 429 }),
                                    body: b"request shed: servers saturated".to_vec(),
                                    ..ImmediateResponse::default()
                                })),
                                ..ProcessingResponse::default()
                            }))
                            .await;
                        self.seen.lock().unwrap().push(seen);
                        return;
                    }
                    let pick = headers
                        .iter()
                        .find(|(k, _)| k == "test-epp-endpoint-selection")
                        .map_or_else(|| self.endpoints[0].clone(), |(_, v)| v.clone());
                    let _ = tx.send(Ok(destination(&pick))).await;
                    let _ = tx
                        .send(Ok(ProcessingResponse {
                            response: Some(Reply::RequestBody(BodyResponse {
                                response: Some(CommonResponse::default()),
                            })),
                            ..ProcessingResponse::default()
                        }))
                        .await;
                }
                Some(Msg::ResponseHeaders(_)) => {
                    let md = req.metadata_context.unwrap();
                    let lb = &md.filter_metadata["envoy.lb"];
                    if let Some(Kind::StringValue(s)) =
                        lb.fields["x-gateway-destination-endpoint-served"]
                            .kind
                            .as_ref()
                    {
                        seen.served = Some(s.clone());
                    }
                    let _ = tx
                        .send(Ok(ProcessingResponse {
                            response: Some(Reply::ResponseHeaders(HeadersResponse::default())),
                            ..ProcessingResponse::default()
                        }))
                        .await;
                }
                other => panic!("unexpected message {other:?}"),
            }
        }
        self.seen.lock().unwrap().push(seen);
    }
}

#[tonic::async_trait]
impl ExternalProcessor for Picker {
    type ProcessStream = Replies;

    async fn process(
        &self,
        request: Request<Streaming<ProcessingRequest>>,
    ) -> Result<Response<Replies>, Status> {
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(self.clone().serve(request.into_inner(), tx));
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

/// Starts the picker on `addr`; dropping the handle's sender stops it.
fn start_picker(
    addr: SocketAddr,
    picker: Picker,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(ExternalProcessorServer::new(picker))
            .serve_with_shutdown(addr, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (stop, task)
}

/// An OpenAI-compatible model server that says who it is.
async fn model_server(name: &'static str) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hosts = Arc::new(Mutex::new(Vec::new()));
    let seen = hosts.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let host = headers.get("host").map(|h| h.to_str().unwrap().to_owned());
                seen.lock().unwrap().push(host.unwrap_or_default());
                let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
                axum::Json(serde_json::json!({
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 1,
                    "model": req["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                        "message": {"role": "assistant", "content": format!("served by {name}")}}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
                }))
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hosts)
}

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let pool = |name: &str, mode: &str| {
        format!(
            "---\napiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  targetPorts:\n    - number: 8000\n  selector:\n    matchLabels:\n      app: vllm\n  endpointPickerRef:\n    name: {name}-epp\n    port:\n      number: 9002\n    failureMode: {mode}\n"
        )
    };
    let rule = |model: &str, pool: &str| {
        format!(
            "    - matches:\n        - headers:\n            - {{type: Exact, name: x-ai-eg-model, value: {model}}}\n      backendRefs:\n        - {{group: inference.networking.k8s.io, kind: InferencePool, name: {pool}}}\n"
        )
    };
    let yaml = format!(
        "apiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIGatewayRoute\nmetadata:\n  name: llama\n  namespace: default\nspec:\n  rules:\n{}{}{}{}",
        rule("llama-closed", "closed"),
        rule("llama-open", "open"),
        pool("closed", "FailClose"),
        pool("open", "FailOpen"),
    );
    let path = dir.join("pools.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// `aigw run` over the pools' configuration, each pool's picker at its URL; the process
/// and the gateway's base URL.
fn gateway(dir: &std::path::Path, pickers: &[(&str, &str)]) -> (Proc, String) {
    let path = config(dir);
    let (listen, admin) = (free_addr(), free_addr());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aigw"));
    cmd.args([
        "run",
        path.to_str().unwrap(),
        "--listen",
        &listen.to_string(),
    ])
    .args(["--admin", &admin.to_string()]);
    for (pool, url) in pickers {
        cmd.args(["--endpoint-picker", &format!("{pool}={url}")]);
    }
    let p = Proc(
        cmd.env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(listen);
    (p, format!("http://{listen}"))
}

async fn chat(
    client: &reqwest::Client,
    base: &str,
    model: &str,
    extra: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let mut req = client
        .post(format!("{base}/v1/chat/completions"))
        .header("authorization", "Bearer client-key")
        .json(
            &serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
        );
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

fn content(v: &serde_json::Value) -> &str {
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aigw_run_routes_pools_through_their_endpoint_picker() {
    let (a, a_hosts) = model_server("a").await;
    let (b, _) = model_server("b").await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let picker = Picker {
        endpoints: vec![a.to_string()],
        seen: seen.clone(),
    };
    let picker_addr = free_addr();
    let (stop, task) = start_picker(picker_addr, picker.clone());

    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{picker_addr}");
    let (_gw, base) = gateway(
        dir.path(),
        &[("default/closed", &url), ("default/open", &url)],
    );
    let client = reqwest::Client::new();

    // The picker's choice is where the request goes, whichever it names.
    let (status, body) = chat(&client, &base, "llama-closed", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content(&body), "served by a");
    let b_str = b.to_string();
    let (status, body) = chat(
        &client,
        &base,
        "llama-closed",
        &[("test-epp-endpoint-selection", b_str.as_str())],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content(&body), "served by b");
    // The model server is reached as the endpoint, not as a Service name.
    assert_eq!(a_hosts.lock().unwrap()[0], a.to_string());
    // The picker saw the request as the model server gets it, without backend
    // credentials, and was told which endpoint served it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0].path, "/v1/chat/completions");
        assert_eq!(seen[0].model_in_body, "llama-closed");
        assert_eq!(seen[0].served.as_deref(), Some(a.to_string().as_str()));
        assert_eq!(seen[1].served.as_deref(), Some(b_str.as_str()));
    }
    // The picker's ImmediateResponse is the client's answer.
    let (status, body) = chat(&client, &base, "llama-closed", &[("x-test-shed", "1")]).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("request shed"),
        "{body}"
    );

    // FailOpen learns the endpoints the picker names.
    let (status, body) = chat(&client, &base, "llama-open", &[]).await;
    assert_eq!((status, content(&body)), (200, "served by a"), "{body}");

    // Picker outage.
    stop.send(()).unwrap();
    task.await.unwrap();
    let (status, body) = chat(&client, &base, "llama-closed", &[]).await;
    assert_eq!(status, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("InferencePool default/closed"),
        "{message}"
    );
    assert!(message.contains("FailClose"), "{message}");
    let (status, body) = chat(&client, &base, "llama-open", &[]).await;
    assert_eq!((status, content(&body)), (200, "served by a"), "{body}");

    // The picker is back: routing resumes through it.
    let (_stop, _task) = start_picker(picker_addr, picker);
    let mut ok = false;
    for _ in 0..50 {
        let (status, body) = chat(
            &client,
            &base,
            "llama-closed",
            &[("test-epp-endpoint-selection", b_str.as_str())],
        )
        .await;
        if status == 200 {
            assert_eq!(content(&body), "served by b");
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "routing did not resume after the picker came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_with_no_known_endpoint_fails_open_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens at the picker's address.
    let down = format!("http://{}", free_addr());
    let (_gw, base) = gateway(dir.path(), &[("default/open", &down)]);
    let client = reqwest::Client::new();
    let (status, body) = chat(&client, &base, "llama-open", &[]).await;
    assert_eq!(status, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("InferencePool default/open"), "{message}");
    assert!(
        message.contains("no endpoint of the pool is known yet"),
        "{message}"
    );
}
