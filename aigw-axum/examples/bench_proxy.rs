//! The thinnest HTTP/1 proxy hyper makes: the floor the end-to-end benchmarks compare the
//! gateway against (`FLOOR=1` in `scripts/bench-e2e.sh` and `scripts/bench-streams.sh`,
//! `CASES=floor` in `scripts/bench-callgrind.sh`).
//!
//! It is built from the same parts as `aigw run` — hyper's HTTP/1 server connection,
//! `hyper_util`'s pooled client, a one-thread tokio runtime, TCP_NODELAY on both sides —
//! and does nothing else: no routing, parsing, credentials, metering or logging. Each
//! request goes to the one upstream with its path, headers (less `connection`) and body
//! unchanged, and the
//! response streams back as it arrives. What this adds over talking to the upstream
//! directly is what any proxy built on these parts costs on the machine, before it does
//! any work of its own.
//!
//! ```sh
//! bench_proxy 127.0.0.1:1985 127.0.0.1:1976
//! ```

use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;

/// The same allocator as the `aigw` binary, so memory figures compare like with like.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

type Body = BoxBody<bytes::Bytes, hyper::Error>;

/// The pooled client and the upstream every request goes to.
struct Forward {
    client: Client<HttpConnector, Incoming>,
    upstream: Authority,
}

impl Forward {
    async fn call(&self, mut req: Request<Incoming>) -> Result<Response<Body>, hyper::Error> {
        let mut parts = std::mem::take(req.uri_mut()).into_parts();
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(self.upstream.clone());
        // Hop-by-hop: the client's `connection: close` is not the upstream connection's.
        req.headers_mut().remove(http::header::CONNECTION);
        match Uri::from_parts(parts) {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => return Ok(status(StatusCode::BAD_REQUEST)),
        }
        match self.client.request(req).await {
            Ok(resp) => Ok(resp.map(BodyExt::boxed)),
            Err(_) => Ok(status(StatusCode::BAD_GATEWAY)),
        }
    }
}

fn status(code: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *resp.status_mut() = code;
    resp
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        return Err("usage: bench_proxy LISTEN_ADDR UPSTREAM_HOST:PORT".into());
    };
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let forward = Arc::new(Forward {
        client: Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build(connector),
        upstream: upstream.parse()?,
    });
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let forward = forward.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let forward = forward.clone();
                async move { forward.call(req).await }
            });
            // A connection error is the client's hang-up; nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
