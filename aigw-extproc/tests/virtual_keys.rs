//! Virtual keys checked by the ExtProc from the request headers Envoy sends: no key or
//! a revoked one is a 401 immediate response, a valid one continues with the client's
//! credential removed and the identity headers set in Envoy's request (client copies
//! replaced), and a model the key may not use is a 403.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use aigw_core::keys::{KeyRegistry, KeySpec, MemoryKeyStore};
use aigw_extproc::metrics::Metrics;
use aigw_extproc::server::{Bound, ListenAddr, serve_grpc};
use aigw_extproc::{Processor, Runtime};
use arc_swap::ArcSwap;
use common::{TestCatalog, TestFactory};
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::ext_proc::v3::common_response::ResponseStatus;
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_client::ExternalProcessorClient;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Msg;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response as Reply;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    CommonResponse, HttpBody, HttpHeaders, ProcessingRequest, ProcessingResponse,
};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

async fn client(keys: Arc<KeyRegistry>) -> ExternalProcessorClient<Channel> {
    let runtime = Runtime::new(
        Arc::new(TestCatalog {
            upstream: "upstream.test:443".into(),
        }),
        Arc::new(TestFactory),
    );
    let processor = Processor::new(
        Arc::new(ArcSwap::from_pointee(runtime)),
        Arc::new(Metrics::default()),
    )
    .with_virtual_keys(keys);
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

struct Stream {
    tx: mpsc::Sender<ProcessingRequest>,
    rx: Streaming<ProcessingResponse>,
}

async fn open(c: &mut ExternalProcessorClient<Channel>) -> Stream {
    let (tx, rx) = mpsc::channel(8);
    let rx = c
        .process(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    Stream { tx, rx }
}

impl Stream {
    async fn send(&mut self, req: ProcessingRequest) -> ProcessingResponse {
        self.tx.send(req).await.unwrap();
        self.rx.message().await.unwrap().expect("a reply")
    }
}

fn headers(extra: &[(&str, &str)]) -> ProcessingRequest {
    let mut pairs = vec![
        (":path", "/v1/chat/completions"),
        (":method", "POST"),
        ("x-request-id", "rid-k"),
        ("content-type", "application/json"),
    ];
    pairs.extend_from_slice(extra);
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
            end_of_stream: false,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn body(model: &str) -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Msg::RequestBody(HttpBody {
            body: format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#)
                .into_bytes(),
            end_of_stream: true,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn immediate_status(r: &ProcessingResponse) -> i32 {
    match r.response.as_ref().unwrap() {
        Reply::ImmediateResponse(i) => i.status.as_ref().unwrap().code,
        other => panic!("expected an immediate response, got {other:?}"),
    }
}

fn common(r: &ProcessingResponse) -> &CommonResponse {
    match r.response.as_ref().unwrap() {
        Reply::RequestHeaders(h) => h.response.as_ref().unwrap(),
        Reply::RequestBody(b) => b.response.as_ref().unwrap(),
        other => panic!("not a common response: {other:?}"),
    }
}

fn set_header<'a>(c: &'a CommonResponse, name: &str) -> Option<&'a str> {
    c.header_mutation
        .as_ref()?
        .set_headers
        .iter()
        .filter_map(|o| o.header.as_ref())
        .find(|h| h.key == name)
        .map(|h| std::str::from_utf8(&h.raw_value).unwrap())
}

fn removed(c: &CommonResponse, name: &str) -> bool {
    c.header_mutation
        .as_ref()
        .is_some_and(|m| m.remove_headers.iter().any(|h| h == name))
}

#[tokio::test]
async fn the_processor_checks_virtual_keys_from_the_request_headers() {
    let keys = Arc::new(
        KeyRegistry::open(Arc::new(MemoryKeyStore::default()))
            .await
            .unwrap(),
    );
    let (info, key) = keys
        .create(KeySpec {
            team: Some("search".into()),
            models: vec!["gpt-test".into()],
            ..KeySpec::default()
        })
        .await
        .unwrap();
    let (_, other) = keys
        .create(KeySpec {
            models: vec!["gpt-other".into()],
            ..KeySpec::default()
        })
        .await
        .unwrap();
    let mut c = client(keys.clone()).await;

    // No key, and a key that is not a virtual key: 401 before routing.
    let mut s = open(&mut c).await;
    assert_eq!(immediate_status(&s.send(headers(&[])).await), 401);
    let mut s = open(&mut c).await;
    let r = s
        .send(headers(&[("authorization", "Bearer sk-not-ours")]))
        .await;
    assert_eq!(immediate_status(&r), 401);

    // A valid key: the credential goes, the verified identity replaces the client's.
    let mut s = open(&mut c).await;
    let bearer = format!("Bearer {}", key.expose());
    let r = s
        .send(headers(&[
            ("authorization", &bearer),
            ("x-aigw-client-id", "spoofed"),
        ]))
        .await;
    let h = common(&r);
    assert_eq!(h.status, ResponseStatus::Continue as i32);
    assert!(removed(h, "authorization"));
    assert_eq!(set_header(h, "x-aigw-client-id"), Some(info.id.as_str()));
    assert_eq!(set_header(h, "x-aigw-team"), Some("search"));
    assert_eq!(set_header(h, "x-aigw-client-kind"), Some("virtual_key"));
    let r = s.send(body("gpt-test")).await;
    assert_eq!(set_header(common(&r), "x-ai-eg-model"), Some("gpt-test"));

    // A model the key may not use: 403 once the body names it.
    let mut s = open(&mut c).await;
    s.send(headers(&[("x-api-key", other.expose())])).await;
    assert_eq!(immediate_status(&s.send(body("gpt-test")).await), 403);

    // Revoked: 401.
    keys.revoke(&info.id).await.unwrap();
    let mut s = open(&mut c).await;
    assert_eq!(
        immediate_status(&s.send(headers(&[("authorization", &bearer)])).await),
        401
    );
}
