//! The one thing the MCP gateway needs from its packaging: a way to send an HTTP request
//! to a backend and stream its answer. Each adapter implements it over its own pooled
//! client, so the core stays free of any HTTP client.

use super::backend::McpBackend;
use super::jsonrpc::Message;
use super::sse::SseParser;
use bytes::Bytes;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use std::collections::VecDeque;
use std::fmt;

/// A backend's response body.
pub type UpstreamBody = BoxStream<'static, Result<Bytes, UpstreamError>>;

/// A transport failure talking to a backend (connect, reset, timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError(pub String);

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UpstreamError {}

/// Sends requests to MCP servers.
///
/// ```
/// use aigw_core::mcp::{McpBackend, McpUpstream, UpstreamBody, UpstreamError};
/// use futures::future::BoxFuture;
///
/// #[derive(Debug)]
/// struct Unreachable;
///
/// impl McpUpstream for Unreachable {
///     fn send(
///         &self,
///         _backend: &McpBackend,
///         _request: http::Request<bytes::Bytes>,
///     ) -> BoxFuture<'static, Result<http::Response<UpstreamBody>, UpstreamError>> {
///         Box::pin(async { Err(UpstreamError("no network".into())) })
///     }
/// }
/// ```
pub trait McpUpstream: Send + Sync + fmt::Debug + 'static {
    /// Sends `request` (absolute URI, final headers) to `backend`; the response body is
    /// streamed. The backend's TLS settings say how to connect.
    fn send(
        &self,
        backend: &McpBackend,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'static, Result<http::Response<UpstreamBody>, UpstreamError>>;

    /// Whether this client can reach `backend` as configured (checked at load, so a
    /// TLS setting the packaging cannot honour fails the load instead of every call).
    fn check(&self, backend: &McpBackend) -> Result<(), String> {
        let _ = backend;
        Ok(())
    }

    /// A gRPC connection to `service` (the `grpc` authorization service of an
    /// MCPRoute's `extAuth`), made once at load and reused for every check; it connects
    /// lazily. By default plain-text HTTP/2 only: a packaging that dials TLS overrides it
    /// with its own connector.
    #[cfg(feature = "mcp-ext-authz-grpc")]
    fn grpc_channel(&self, service: &McpBackend) -> Result<tonic::transport::Channel, String> {
        if service.tls().is_some() {
            return Err(format!(
                "{}: TLS to a gRPC authorization service is not supported by this packaging",
                service.url()
            ));
        }
        let endpoint = tonic::transport::Endpoint::from_shared(service.url())
            .map_err(|e| format!("{}: {e}", service.url()))?
            .connect_timeout(std::time::Duration::from_secs(10))
            .tcp_nodelay(true);
        Ok(endpoint.connect_lazy())
    }

    /// GETs a document (a remote JWKS) and returns its body.
    fn fetch(&self, url: &str) -> BoxFuture<'static, Result<Bytes, UpstreamError>> {
        let url = url.to_string();
        Box::pin(async move {
            Err(UpstreamError(format!(
                "cannot fetch {url}: not supported by this packaging"
            )))
        })
    }
}

/// Largest document [`read_document`] accepts.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// How long a document fetch may take.
const DOCUMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A backend's response with its body as [`McpUpstream::send`] returns it: what an
/// adapter's HTTP client answered, whatever the client.
pub fn stream_response<B>(resp: http::Response<B>) -> http::Response<UpstreamBody>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: fmt::Display,
{
    resp.map(|b| {
        http_body_util::BodyDataStream::new(b)
            .map(|r| r.map_err(|e| UpstreamError(e.to_string())))
            .boxed()
    })
}

/// The GET of a document for [`McpUpstream::fetch`] (a JWKS, an issuer's metadata).
pub fn document_request(
    url: &str,
) -> Result<http::Request<http_body_util::Full<Bytes>>, UpstreamError> {
    http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        .body(http_body_util::Full::new(Bytes::new()))
        .map_err(|e| UpstreamError(format!("{url}: {e}")))
}

/// Reads the answer to [`document_request`]: a success status, at most 1 MiB, within
/// 10 s; anything else is an error naming `url`.
pub async fn read_document<B, E>(
    url: &str,
    response: impl std::future::Future<Output = Result<http::Response<B>, E>>,
) -> Result<Bytes, UpstreamError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
    E: std::error::Error,
{
    use http_body_util::BodyExt as _;
    let resp = tokio::time::timeout(DOCUMENT_TIMEOUT, response)
        .await
        .map_err(|_| UpstreamError(format!("{url}: timed out")))?
        .map_err(|e| UpstreamError(format!("{url}: {}", error_chain(&e))))?;
    if !resp.status().is_success() {
        return Err(UpstreamError(format!("{url} answered {}", resp.status())));
    }
    let body = http_body_util::Limited::new(resp.into_body(), MAX_DOCUMENT_BYTES)
        .collect()
        .await
        .map_err(|e| UpstreamError(format!("{url}: {e}")))?;
    Ok(body.to_bytes())
}

/// An error with its sources, `a: b: c` (a client's top-level error rarely says why).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// One message read from a backend, with the SSE event id it came under.
#[derive(Debug)]
pub(crate) struct Item {
    /// The backend's event id (SSE only).
    pub(crate) event_id: Option<String>,
    /// The message (`None` for an event carrying no JSON-RPC message, e.g. a priming
    /// event that only sets an id).
    pub(crate) msg: Option<Message>,
}

/// Reads the messages of a backend response: one JSON body, or an SSE stream.
pub(crate) struct Incoming {
    body: UpstreamBody,
    sse: Option<SseParser>,
    json: Vec<u8>,
    queue: VecDeque<Item>,
    done: bool,
    limit: usize,
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("sse", &self.sse.is_some())
            .finish_non_exhaustive()
    }
}

impl Incoming {
    /// Starts reading a response; `limit` bounds a JSON body.
    pub(crate) fn new(resp: http::Response<UpstreamBody>, limit: usize) -> Self {
        let sse = is_sse(resp.headers());
        Self {
            body: resp.into_body(),
            sse: sse.then(SseParser::default),
            json: Vec::new(),
            queue: VecDeque::new(),
            done: false,
            limit,
        }
    }

    /// The next message, `None` at the end of the body.
    pub(crate) async fn next(&mut self) -> Option<Result<Item, UpstreamError>> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    if let Err(e) = self.push(&chunk) {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                None => {
                    self.done = true;
                    self.finish();
                }
            }
        }
    }

    fn push(&mut self, chunk: &[u8]) -> Result<(), UpstreamError> {
        match &mut self.sse {
            Some(p) => {
                let events = p.feed(chunk).map_err(|e| UpstreamError(e.into()))?;
                for ev in events {
                    self.queue.push_back(Item {
                        event_id: ev.id,
                        msg: Message::decode(ev.data.as_bytes()).ok(),
                    });
                }
            }
            None => {
                self.json.extend_from_slice(chunk);
                if self.json.len() > self.limit {
                    return Err(UpstreamError("response body too large".into()));
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self) {
        match &mut self.sse {
            Some(p) => {
                if let Some(ev) = p.finish() {
                    self.queue.push_back(Item {
                        event_id: ev.id,
                        msg: Message::decode(ev.data.as_bytes()).ok(),
                    });
                }
            }
            None if !self.json.is_empty() => {
                // A body labelled JSON that is an SSE stream after all (upstream falls
                // back the same way).
                let body = std::mem::take(&mut self.json);
                match Message::decode(&body) {
                    Ok(m) => self.queue.push_back(Item {
                        event_id: None,
                        msg: Some(m),
                    }),
                    Err(_) => {
                        let mut p = SseParser::default();
                        let mut events = p.feed(&body).unwrap_or_default();
                        events.extend(p.finish());
                        for ev in events {
                            self.queue.push_back(Item {
                                event_id: ev.id,
                                msg: Message::decode(ev.data.as_bytes()).ok(),
                            });
                        }
                    }
                }
            }
            None => {}
        }
    }
}

/// Whether a response is an event stream.
pub(crate) fn is_sse(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(ct: &str, chunks: Vec<&'static str>) -> http::Response<UpstreamBody> {
        let s = futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c)))).boxed();
        http::Response::builder()
            .header("content-type", ct)
            .body(s)
            .unwrap()
    }

    #[tokio::test]
    async fn reads_json_and_sse() {
        let mut j = Incoming::new(
            resp(
                "application/json",
                vec![r#"{"jsonrpc":"2.0","#, r#""id":1,"result":{}}"#],
            ),
            1024,
        );
        let m = j.next().await.unwrap().unwrap();
        assert_eq!(m.msg.unwrap().id(), Some(&serde_json::json!(1)));
        assert!(j.next().await.is_none());

        let mut s = Incoming::new(
            resp(
                "text/event-stream",
                vec![
                    "id: p\ndata: \n\nevent: message\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n",
                    "\n",
                ],
            ),
            1024,
        );
        let a = s.next().await.unwrap().unwrap();
        assert_eq!((a.event_id.as_deref(), a.msg.is_none()), (Some("p"), true));
        let b = s.next().await.unwrap().unwrap();
        assert_eq!(b.msg.unwrap().method(), "x");
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn json_body_is_bounded() {
        let mut j = Incoming::new(resp("application/json", vec!["0123456789"]), 4);
        assert!(j.next().await.unwrap().is_err());
    }
}
