//! The ext_proc gRPC listener's bounds (`aigw_extproc::grpc_limits`): connections beyond
//! the cap are closed at once and a freed slot serves again; on shutdown, a stream
//! still open at the drain deadline no longer holds the listener up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aigw_core::config::Config;
use aigw_extproc::config::ConfigCatalog;
use aigw_extproc::grpc_limits::GrpcLimits;
use aigw_extproc::metrics::Metrics;
use aigw_extproc::server::{Bound, ListenAddr, serve_grpc_with};
use aigw_extproc::{Processor, Runtime};
use arc_swap::ArcSwap;
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_client::ExternalProcessorClient;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Msg;
use envoy_types::pb::envoy::service::ext_proc::v3::{HttpHeaders, ProcessingRequest};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

fn processor() -> Processor {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostnames.yaml");
    let config = Config::load_paths(&[path]).unwrap();
    let runtime = Runtime::new(
        Arc::new(ConfigCatalog::new(&config).unwrap()),
        Arc::new(aigw_providers::ProviderFactory),
    );
    Processor::new(
        Arc::new(ArcSwap::from_pointee(runtime)),
        Arc::new(Metrics::default()),
    )
}

/// Serves on a free port within `limits` until `stop` fires; the task returns how long
/// after `stop` the listener took to finish.
async fn serve(
    limits: GrpcLimits,
) -> (
    SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Duration>,
) {
    let bound = Bound::bind(&ListenAddr::parse("127.0.0.1:0").unwrap())
        .await
        .unwrap();
    let Some(ListenAddr::Tcp(addr)) = bound.local_addr() else {
        panic!("tcp")
    };
    let (stop_tx, stop) = oneshot::channel::<()>();
    let (stopped_at_tx, stopped_at) = oneshot::channel::<Instant>();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.await;
            let _ = stopped_at_tx.send(Instant::now());
        };
        let ready = Arc::new(AtomicBool::new(false));
        serve_grpc_with(bound, processor(), 64 << 20, &limits, ready, shutdown)
            .await
            .unwrap();
        stopped_at.await.unwrap().elapsed()
    });
    (addr, stop_tx, task)
}

/// Whether the listener closes `conn` within `limit` (reading what it sends, such as
/// its HTTP/2 SETTINGS, meanwhile).
async fn closed_within(conn: &mut TcpStream, limit: Duration) -> bool {
    let mut b = [0u8; 256];
    tokio::time::timeout(limit, async {
        while let Ok(n) = conn.read(&mut b).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let limits = GrpcLimits {
        max_connections: 2,
        ..GrpcLimits::default()
    };
    let (addr, _stop, _task) = serve(limits).await;
    // Two peers that never complete the handshake hold both slots.
    let mut held = vec![
        TcpStream::connect(addr).await.unwrap(),
        TcpStream::connect(addr).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        let mut extra = TcpStream::connect(addr).await.unwrap();
        let started = Instant::now();
        assert!(closed_within(&mut extra, Duration::from_secs(2)).await);
        assert!(started.elapsed() < Duration::from_millis(500));
    }
    assert!(!closed_within(&mut held[0], Duration::from_millis(200)).await);
    // A freed slot serves a real client again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(
        health.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_stream_is_cut_at_the_drain_deadline() {
    let limits = GrpcLimits {
        drain_timeout: Duration::from_millis(300),
        ..GrpcLimits::default()
    };
    let (addr, stop, task) = serve(limits).await;
    // A request whose headers arrived and whose body never does: its stream stays open.
    let (tx, _replies) = open_stream(addr).await;
    stop.send(()).unwrap();
    let took = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the listener waited on the open stream past the drain deadline")
        .unwrap();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "{took:?}"
    );
    drop(tx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_ends_within_the_drain_deadline_ends_the_drain() {
    let limits = GrpcLimits {
        drain_timeout: Duration::from_secs(10),
        ..GrpcLimits::default()
    };
    let (addr, stop, task) = serve(limits).await;
    let (tx, mut replies) = open_stream(addr).await;
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!task.is_finished(), "the open stream was not waited for");
    // Envoy ends the stream: the listener stops at once, well before the deadline.
    drop(tx);
    while let Ok(Some(_)) = replies.message().await {}
    let took = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the drain outlived the last stream")
        .unwrap();
    assert!(took < Duration::from_secs(3), "{took:?}");
}

/// Opens an ext_proc stream on `addr` and sends a request's headers (its body never
/// comes): the stream stays open until the sender is dropped.
async fn open_stream(
    addr: SocketAddr,
) -> (
    mpsc::Sender<ProcessingRequest>,
    tonic::Streaming<envoy_types::pb::envoy::service::ext_proc::v3::ProcessingResponse>,
) {
    let mut client = ExternalProcessorClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel(8);
    let mut replies = client
        .process(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let pairs = [(":path", "/v1/chat/completions"), (":method", "POST")];
    tx.send(ProcessingRequest {
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
            ..Default::default()
        })),
        ..Default::default()
    })
    .await
    .unwrap();
    replies.message().await.unwrap();
    (tx, replies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_at_the_first_byte_timeout() {
    let limits = GrpcLimits {
        first_byte_timeout: Some(Duration::from_millis(300)),
        ..GrpcLimits::default()
    };
    let (addr, _stop, _task) = serve(limits).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(2)).await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    // A client that speaks at once is served past the deadline.
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    tokio::time::sleep(Duration::from_millis(600)).await;
    health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();
}
