//! Route `hostnames` in the processor: `/v1/models` lists a host's models only, and the
//! routing check answers 404 for a model whose routes serve other hosts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aigw_core::config::Config;
use aigw_extproc::config::ConfigCatalog;
use aigw_extproc::metrics::Metrics;
use aigw_extproc::server::{Bound, ListenAddr, serve_grpc};
use aigw_extproc::{Processor, Runtime};
use arc_swap::ArcSwap;
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_client::ExternalProcessorClient;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Msg;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response as Reply;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    HttpBody, HttpHeaders, ProcessingRequest, ProcessingResponse,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

async fn client() -> ExternalProcessorClient<Channel> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostnames.yaml");
    let config = Config::load_paths(&[path]).unwrap();
    let runtime = Runtime::new(
        Arc::new(ConfigCatalog::new(&config).unwrap()),
        Arc::new(aigw_providers::ProviderFactory),
    );
    let processor = Processor::new(
        Arc::new(ArcSwap::from_pointee(runtime)),
        Arc::new(Metrics::default()),
    );
    let bound = Bound::bind(&ListenAddr::parse("127.0.0.1:0").unwrap())
        .await
        .unwrap();
    let Some(ListenAddr::Tcp(addr)) = bound.local_addr() else {
        panic!("tcp")
    };
    tokio::spawn(serve_grpc(
        bound,
        processor,
        64 << 20,
        Arc::new(AtomicBool::new(false)),
        std::future::pending(),
    ));
    ExternalProcessorClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn headers(path: &str, authority: &str, eos: bool) -> ProcessingRequest {
    let pairs = [
        (":path", path),
        (":method", if eos { "GET" } else { "POST" }),
        (":authority", authority),
        ("content-type", "application/json"),
    ];
    ProcessingRequest {
        request: Some(Msg::RequestHeaders(HttpHeaders {
            headers: Some(HeaderMap {
                headers: pairs
                    .iter()
                    .map(|(k, v)| HeaderValue {
                        key: (*k).into(),
                        value: String::new(),
                        raw_value: v.as_bytes().to_vec(),
                    })
                    .collect(),
            }),
            end_of_stream: eos,
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Sends `msgs` on one stream; returns the last reply.
async fn exchange(
    c: &mut ExternalProcessorClient<Channel>,
    msgs: Vec<ProcessingRequest>,
) -> ProcessingResponse {
    let (tx, rx) = mpsc::channel(8);
    let mut replies = c
        .process(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    for m in msgs {
        tx.send(m).await.unwrap();
        last = replies.message().await.unwrap();
    }
    last.unwrap()
}

async fn model_ids(c: &mut ExternalProcessorClient<Channel>, authority: &str) -> Vec<String> {
    let r = exchange(c, vec![headers("/v1/models", authority, true)]).await;
    let Some(Reply::ImmediateResponse(i)) = r.response else {
        panic!("not answered locally: {r:?}")
    };
    let body: serde_json::Value = serde_json::from_slice(&i.body).unwrap();
    let mut ids: Vec<String> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn models_are_listed_per_host() {
    let mut c = client().await;
    assert_eq!(
        model_ids(&mut c, "a.tenant.example:1975").await,
        ["shared-model", "tenant-model"]
    );
    assert_eq!(model_ids(&mut c, "other.example").await, ["shared-model"]);
}

#[tokio::test]
async fn scoped_model_routes_only_on_its_hosts() {
    let mut c = client().await;
    let body = |model: &str| ProcessingRequest {
        request: Some(Msg::RequestBody(HttpBody {
            body: format!(r#"{{"model":"{model}","messages":[]}}"#).into_bytes(),
            end_of_stream: true,
            ..Default::default()
        })),
        ..Default::default()
    };
    let path = "/v1/chat/completions";
    let r = exchange(
        &mut c,
        vec![headers(path, "other.example", false), body("tenant-model")],
    )
    .await;
    let Some(Reply::ImmediateResponse(i)) = r.response else {
        panic!("expected a local 404: {r:?}")
    };
    assert_eq!(i.status.unwrap().code, 404);

    let r = exchange(
        &mut c,
        vec![
            headers(path, "a.tenant.example", false),
            body("tenant-model"),
        ],
    )
    .await;
    assert!(
        matches!(r.response, Some(Reply::RequestBody(_))),
        "routed: {r:?}"
    );
}
