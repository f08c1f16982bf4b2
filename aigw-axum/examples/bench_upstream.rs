//! A fast fixed-response upstream for the end-to-end benchmarks (`scripts/bench-e2e.sh
//! UPSTREAM=fast`).
//!
//! `aigw simulate` parses every request, checks its credentials (SigV4 included) and
//! generates its reply, which costs it as much CPU as the gateway spends; on a 2-core
//! machine where the load generator, the upstream and the gateway share the cores, that
//! hides the gateway's own share. This server answers every request with bytes captured
//! from the simulator beforehand, read once at start-up, without looking at the body
//! beyond the `"stream":true` switch, so the wire is still the provider's own.
//!
//! ```sh
//! bench_upstream 127.0.0.1:1977 DIR
//! ```
//! `DIR` holds `openai.json`, `openai-stream.sse`, `bedrock.json` and
//! `bedrock-stream.bin`: the bodies for `POST /v1/chat/completions` (non-stream and
//! stream), `POST /model/{id}/converse` and `POST /model/{id}/converse-stream`.

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

/// The captured bodies, served as they are.
struct Replies {
    openai: Bytes,
    openai_stream: Bytes,
    bedrock: Bytes,
    bedrock_stream: Bytes,
}

impl Replies {
    fn load(dir: &Path) -> std::io::Result<Self> {
        let read = |name: &str| std::fs::read(dir.join(name)).map(Bytes::from);
        Ok(Self {
            openai: read("openai.json")?,
            openai_stream: read("openai-stream.sse")?,
            bedrock: read("bedrock.json")?,
            bedrock_stream: read("bedrock-stream.bin")?,
        })
    }

    /// The reply for a request path and body, with its content type.
    fn pick(&self, path: &str, body: &[u8]) -> Option<(&'static str, Bytes)> {
        if path == "/v1/chat/completions" {
            return Some(if wants_stream(body) {
                ("text/event-stream", self.openai_stream.clone())
            } else {
                ("application/json", self.openai.clone())
            });
        }
        if path.starts_with("/model/") && path.ends_with("/converse-stream") {
            return Some((
                "application/vnd.amazon.eventstream",
                self.bedrock_stream.clone(),
            ));
        }
        if path.starts_with("/model/") && path.ends_with("/converse") {
            return Some(("application/json", self.bedrock.clone()));
        }
        None
    }
}

/// Whether the request body asks for a stream (`"stream":true`, with or without a
/// space after the colon).
fn wants_stream(body: &[u8]) -> bool {
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    has(b"\"stream\":true") || has(b"\"stream\": true")
}

async fn answer(
    replies: Arc<Replies>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let mut resp = match replies.pick(&path, &body) {
        Some((content_type, bytes)) => {
            let mut r = Response::new(Full::new(bytes));
            if let Ok(v) = header::HeaderValue::from_str(content_type) {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            r
        }
        None => Response::new(Full::new(Bytes::from_static(b"not found"))),
    };
    if resp.headers().get(header::CONTENT_TYPE).is_none() {
        *resp.status_mut() = StatusCode::NOT_FOUND;
    }
    Ok(resp)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(dir)) = (args.next(), args.next()) else {
        return Err("usage: bench_upstream LISTEN_ADDR DIR".into());
    };
    let replies = Arc::new(Replies::load(Path::new(&dir))?);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let replies = replies.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(replies.clone(), req));
            // A connection error is the client's hang-up; nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
