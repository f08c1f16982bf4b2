//! An InferencePool behind Envoy 1.40: the bootstrap `aigw-extproc envoy-config` prints
//! sends the pool's rule through `aigw-extproc` (the AI ext_proc) and then the pool's
//! endpoint picker (a fake speaking the Gateway API Inference Extension's protocol over
//! ext_proc, full-duplex streamed, checked against the protocol document), and Envoy
//! delivers the request to the model server the picker names
//! (`x-gateway-destination-endpoint`, ORIGINAL_DST). With the picker down the request
//! fails (FailClose) and reaches no model server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod common;

use axum::body::Bytes;
use common::envoy::{Envoy, envoy_binary, free_port};
use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::{
    ExternalProcessor, ExternalProcessorServer,
};
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Msg;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response as Reply;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    BodyMutation, BodyResponse, CommonResponse, HeaderMutation, HeadersResponse, ProcessingRequest,
    ProcessingResponse, StreamedBodyResponse, TrailersResponse, body_mutation,
};
use futures::Stream;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

/// What the picker saw of one request.
#[derive(Debug, Default, Clone)]
struct Seen {
    path: String,
    model_in_body: String,
    response_body: Vec<u8>,
}

/// The picker: names `endpoint` for every request.
#[derive(Clone)]
struct Picker {
    endpoint: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

type Replies = Pin<Box<dyn Stream<Item = Result<ProcessingResponse, Status>> + Send>>;

fn reply(r: Reply) -> Result<ProcessingResponse, Status> {
    Ok(ProcessingResponse {
        response: Some(r),
        ..ProcessingResponse::default()
    })
}

/// A body chunk handed back unchanged, as full-duplex streaming requires.
fn streamed(body: Vec<u8>, end_of_stream: bool) -> CommonResponse {
    CommonResponse {
        body_mutation: Some(BodyMutation {
            mutation: Some(body_mutation::Mutation::StreamedResponse(
                StreamedBodyResponse {
                    body,
                    end_of_stream,
                    ..StreamedBodyResponse::default()
                },
            )),
        }),
        ..CommonResponse::default()
    }
}

impl Picker {
    /// One stream, checked against the protocol: the request headers first (without
    /// end of stream: a chat request has a body), then the body in chunks; the picker
    /// answers the headers with the destination only once the body is complete, then
    /// hands the body back; the response passes through unchanged.
    async fn serve(
        self,
        mut stream: Streaming<ProcessingRequest>,
        tx: mpsc::Sender<Result<ProcessingResponse, Status>>,
    ) {
        let mut seen = Seen::default();
        let mut got_headers = false;
        let mut body = Vec::new();
        while let Ok(Some(req)) = stream.message().await {
            match req.request {
                Some(Msg::RequestHeaders(h)) => {
                    assert!(!h.end_of_stream, "a chat request has a body");
                    for v in h.headers.unwrap().headers {
                        if v.key == ":path" {
                            seen.path = String::from_utf8(v.raw_value).unwrap();
                        }
                    }
                    got_headers = true;
                }
                Some(Msg::RequestBody(b)) => {
                    assert!(got_headers, "headers come before the body");
                    body.extend_from_slice(&b.body);
                    if !b.end_of_stream {
                        continue;
                    }
                    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    seen.model_in_body = json["model"].as_str().unwrap_or_default().into();
                    let destination = HeaderMutation {
                        set_headers: vec![HeaderValueOption {
                            header: Some(HeaderValue {
                                key: "x-gateway-destination-endpoint".into(),
                                raw_value: self.endpoint.as_bytes().to_vec(),
                                ..HeaderValue::default()
                            }),
                            ..HeaderValueOption::default()
                        }],
                        ..HeaderMutation::default()
                    };
                    let _ = tx
                        .send(reply(Reply::RequestHeaders(HeadersResponse {
                            response: Some(CommonResponse {
                                header_mutation: Some(destination),
                                ..CommonResponse::default()
                            }),
                        })))
                        .await;
                    let _ = tx
                        .send(reply(Reply::RequestBody(BodyResponse {
                            response: Some(streamed(std::mem::take(&mut body), true)),
                        })))
                        .await;
                }
                Some(Msg::ResponseHeaders(_)) => {
                    let _ = tx
                        .send(reply(Reply::ResponseHeaders(HeadersResponse::default())))
                        .await;
                }
                Some(Msg::ResponseBody(b)) => {
                    seen.response_body.extend_from_slice(&b.body);
                    let _ = tx
                        .send(reply(Reply::ResponseBody(BodyResponse {
                            response: Some(streamed(b.body, b.end_of_stream)),
                        })))
                        .await;
                }
                Some(Msg::ResponseTrailers(_)) => {
                    let _ = tx
                        .send(reply(Reply::ResponseTrailers(TrailersResponse::default())))
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
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(self.clone().serve(request.into_inner(), tx));
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

/// An OpenAI-compatible model server; records the model of each request.
async fn model_server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let models = Arc::new(Mutex::new(Vec::new()));
    let seen = models.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |body: Bytes| {
            let seen = seen.clone();
            async move {
                let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
                seen.lock()
                    .unwrap()
                    .push(req["model"].as_str().unwrap_or_default().to_owned());
                axum::Json(serde_json::json!({
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 1,
                    "model": req["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "served by the pool"}}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
                }))
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, models)
}

const CONFIG: &str = "apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata:
  name: llama
  namespace: default
spec:
  llmRequestCosts:
    - {metadataKey: llm_input_token, type: InputToken}
    - {metadataKey: llm_output_token, type: OutputToken}
    - {metadataKey: llm_total_token, type: TotalToken}
  rules:
    - matches:
        - headers:
            - {type: Exact, name: x-ai-eg-model, value: llama}
      backendRefs:
        - {group: inference.networking.k8s.io, kind: InferencePool, name: vllm}
---
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata:
  name: vllm
  namespace: default
spec:
  targetPorts: [{number: 8000}]
  selector: {matchLabels: {app: vllm}}
  endpointPickerRef: {name: vllm-epp, port: {number: 9002}}
";

async fn chat(base: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(
            &serde_json::json!({"model": "llama", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .header("x-gateway-destination-endpoint", "127.0.0.1:1")
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_request_goes_to_the_endpoint_its_picker_names() {
    let Some(envoy_bin) = envoy_binary() else {
        return;
    };
    let (model, models) = model_server().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    // Bound before Envoy starts, so the first request finds it.
    let picker_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let picker_port = picker_listener.local_addr().unwrap().port();
    let (stop_picker, stopped) = tokio::sync::oneshot::channel::<()>();
    let picker = Picker {
        endpoint: model.to_string(),
        seen: seen.clone(),
    };
    let picker_task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(ExternalProcessorServer::new(picker))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(picker_listener),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .unwrap();
    });

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pools.yaml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let sock = dir.path().join("extproc.sock");
    let extproc_addr = format!("unix://{}", sock.display());
    let (listen, envoy_admin, admin) = (free_port(), free_port(), free_port());
    let picker_flag = format!("default/vllm=http://127.0.0.1:{picker_port}");
    let bootstrap = common::envoy::envoy_config(
        &cfg,
        &extproc_addr,
        (listen, envoy_admin),
        &["--endpoint-picker", &picker_flag],
        dir.path(),
    );
    let _extproc = common::envoy::start_extproc(
        &cfg,
        &extproc_addr,
        admin,
        Some(&dir.path().join("extproc.log")),
    )
    .await;
    let envoy = Envoy::start(&envoy_bin, &bootstrap, dir.path(), envoy_admin).await;
    let base = format!("http://127.0.0.1:{listen}");

    // The client's own destination header is dropped; the picker's wins.
    let (status, body) = chat(&base).await;
    assert_eq!(status, 200, "{body}\n{}", envoy.output());
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "served by the pool"
    );
    assert_eq!(*models.lock().unwrap(), ["llama"]);
    // The picker records a request when Envoy closes its stream, which may be just
    // after the client has the answer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while seen.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let picked = seen.lock().unwrap().clone();
    assert_eq!(picked.len(), 1, "{picked:?}");
    assert_eq!(picked[0].path, "/v1/chat/completions");
    assert_eq!(picked[0].model_in_body, "llama");
    assert!(
        String::from_utf8_lossy(&picked[0].response_body).contains("served by the pool"),
        "the picker sees the response stream"
    );
    // The ExtProc metered the pool's answer.
    let line = envoy
        .access_log_line(|v| v["gen_ai.request.model"] == "llama")
        .await;
    assert_eq!(
        line["gen_ai.usage.input_tokens"],
        5,
        "{line}\n{}",
        std::fs::read_to_string(dir.path().join("extproc.log")).unwrap_or_default()
    );

    // Picker down (FailClose): Envoy's ext_proc failure, 500, and no model server
    // sees the request.
    let _ = stop_picker.send(());
    picker_task.await.unwrap();
    let (status, body) = chat(&base).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(models.lock().unwrap().len(), 1);
}
