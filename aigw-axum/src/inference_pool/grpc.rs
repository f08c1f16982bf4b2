//! The endpoint-picker client: one Envoy ext_proc stream per request, as Envoy's
//! picker filter drives it.
//!
//! The exchange (the Inference Extension's endpoint picker protocol over
//! `envoy.service.ext_proc.v3.ExternalProcessor/Process`):
//!
//! 1. `request_headers` (pseudo-headers included, `end_of_stream: false`), with the
//!    `protocol_config` announcing a buffered request body and no response body;
//! 2. `request_body`, the whole body, `end_of_stream: true`;
//! 3. the picker answers the headers (a header mutation setting
//!    `x-gateway-destination-endpoint`, and/or dynamic metadata
//!    `envoy.lb/x-gateway-destination-endpoint`) and the body (unchanged, replaced, or
//!    streamed back in full-duplex chunks) — or an `ImmediateResponse` (503: no ready
//!    endpoint, 429: shed);
//! 4. once the upstream answers, `response_headers` with metadata
//!    `envoy.lb/x-gateway-destination-endpoint-served`, and the stream ends.

use super::{
    DESTINATION_ENDPOINT, DESTINATION_ENDPOINT_SERVED, EndpointPicker, METADATA_NAMESPACE,
    PickError, PickRequest, Picked, PickerResolver, ServedReport, parse_endpoints,
};
use aigw_core::routing::InferencePoolTarget;
use async_trait::async_trait;
use bytes::Bytes;
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue, Metadata};
use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::processing_mode::BodySendMode;
use envoy_types::pb::envoy::service::ext_proc::v3::body_mutation::Mutation;
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_client::ExternalProcessorClient;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Msg;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response as Reply;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    CommonResponse, HttpBody, HttpHeaders, ProcessingRequest, ProcessingResponse,
    ProtocolConfiguration,
};
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use http::{HeaderName, StatusCode};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::Streaming;
use tonic::transport::{Channel, Endpoint};

/// How long the picker may take to answer the served report before the stream is
/// dropped anyway.
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Pickers over ext_proc: each pool's `<service>.<namespace>.svc:<port>` over TLS, as
/// upstream's Envoy wiring dials it, unless an address is given for the pool.
#[derive(Debug, Clone)]
pub struct ExtProcPickers {
    addresses: BTreeMap<String, String>,
    connect_timeout: Duration,
}

impl Default for ExtProcPickers {
    fn default() -> Self {
        Self {
            addresses: BTreeMap::new(),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl ExtProcPickers {
    /// Dials `address` (`http://host:port` for plain-text gRPC, `https://host:port` for
    /// TLS) for the pool `namespace/name`.
    #[must_use]
    pub fn with_address(mut self, pool: impl Into<String>, address: impl Into<String>) -> Self {
        self.addresses.insert(pool.into(), address.into());
        self
    }

    /// Parses `namespace/name=URL` (the `--endpoint-picker` flag).
    pub fn with_flag(self, flag: &str) -> Result<Self, String> {
        let (pool, url) = flag
            .split_once('=')
            .filter(|(p, u)| p.contains('/') && !u.is_empty())
            .ok_or_else(|| format!("expected NAMESPACE/POOL=URL, found {flag:?}"))?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "the picker URL must be http:// or https://, found {url:?}"
            ));
        }
        Ok(self.with_address(pool, url))
    }
}

impl PickerResolver for ExtProcPickers {
    fn picker(&self, pool: &InferencePoolTarget) -> Result<Arc<dyn EndpointPicker>, String> {
        let url = self
            .addresses
            .get(&pool.name)
            .cloned()
            .unwrap_or_else(|| format!("https://{}", pool.picker_authority()));
        Ok(Arc::new(ExtProcPicker::connect_lazy(
            &url,
            self.connect_timeout,
        )?))
    }
}

/// One picker's ext_proc client (connects on first use, reconnects after failures).
#[derive(Debug, Clone)]
pub struct ExtProcPicker {
    client: ExternalProcessorClient<Channel>,
    url: String,
}

impl ExtProcPicker {
    /// A client for the picker at `url` (`http://` or `https://`; TLS without
    /// certificate verification, as upstream's Envoy configuration dials pickers, whose
    /// certificates are self-signed by default).
    pub fn connect_lazy(url: &str, connect_timeout: Duration) -> Result<Self, String> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| format!("invalid picker address {url:?}: {e}"))?
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true);
        let connector = crate::client::grpc_connector().map_err(|e| e.to_string())?;
        Ok(Self {
            client: ExternalProcessorClient::new(endpoint.connect_with_connector_lazy(connector)),
            url: url.to_owned(),
        })
    }

    async fn exchange(&self, request: PickRequest<'_>) -> Result<Picked, PickError> {
        let (tx, rx) = mpsc::channel::<ProcessingRequest>(4);
        let headers = request_headers(&request);
        let body = request.body.to_vec();
        // Capacity 4: both messages fit before the stream opens.
        let queued = tx.try_send(headers).is_ok()
            && tx
                .try_send(ProcessingRequest {
                    request: Some(Msg::RequestBody(HttpBody {
                        body,
                        end_of_stream: true,
                        ..HttpBody::default()
                    })),
                    ..ProcessingRequest::default()
                })
                .is_ok();
        if !queued {
            return Err(PickError::Failed("request stream closed".into()));
        }
        let mut client = self.client.clone();
        let mut replies = client
            .process(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .map_err(|s| self.failed(&s))?
            .into_inner();
        let answer = read_answer(&mut replies, request.body)
            .await
            .map_err(|e| match e {
                AnswerError::Status(s) => self.failed(&s),
                other => other.into(),
            })?;
        Ok(Picked {
            endpoints: answer.endpoints,
            set_headers: answer.set_headers,
            remove_headers: answer.remove_headers,
            body: answer.body,
            report: Some(Box::new(Report { tx, replies })),
        })
    }

    fn failed(&self, status: &tonic::Status) -> PickError {
        PickError::Failed(format!(
            "{} ({:?}: {})",
            self.url,
            status.code(),
            status.message()
        ))
    }
}

#[async_trait]
impl EndpointPicker for ExtProcPicker {
    async fn pick(&self, request: PickRequest<'_>, timeout: Duration) -> Result<Picked, PickError> {
        match tokio::time::timeout(timeout, self.exchange(request)).await {
            Ok(r) => r,
            Err(_) => Err(PickError::Failed(format!(
                "{}: no answer within {timeout:?}",
                self.url
            ))),
        }
    }
}

fn header_value(key: &str, value: &[u8]) -> HeaderValue {
    HeaderValue {
        key: key.to_owned(),
        raw_value: value.to_vec(),
        ..HeaderValue::default()
    }
}

/// The first message: the request's headers as Envoy sends them (pseudo-headers first)
/// and the processing mode this client follows.
fn request_headers(request: &PickRequest<'_>) -> ProcessingRequest {
    let mut headers = vec![
        header_value(":method", request.method.as_str().as_bytes()),
        header_value(":scheme", b"http"),
        header_value(":authority", request.authority.as_bytes()),
        header_value(":path", request.path.as_bytes()),
    ];
    for (name, value) in request.headers {
        headers.push(header_value(name.as_str(), value.as_bytes()));
    }
    ProcessingRequest {
        request: Some(Msg::RequestHeaders(HttpHeaders {
            headers: Some(HeaderMap { headers }),
            end_of_stream: false,
            ..HttpHeaders::default()
        })),
        protocol_config: Some(ProtocolConfiguration {
            request_body_mode: BodySendMode::Buffered as i32,
            response_body_mode: BodySendMode::None as i32,
            send_body_without_waiting_for_header_response: true,
        }),
        ..ProcessingRequest::default()
    }
}

/// What the picker answered for the request.
#[derive(Debug, Default)]
struct Answer {
    endpoints: Vec<String>,
    set_headers: Vec<(HeaderName, http::HeaderValue)>,
    remove_headers: Vec<HeaderName>,
    body: Option<Bytes>,
}

#[derive(Debug)]
enum AnswerError {
    Status(tonic::Status),
    Pick(PickError),
}

impl From<AnswerError> for PickError {
    fn from(e: AnswerError) -> Self {
        match e {
            AnswerError::Status(s) => Self::Failed(format!("{:?}: {}", s.code(), s.message())),
            AnswerError::Pick(p) => p,
        }
    }
}

fn protocol(message: impl Into<String>) -> AnswerError {
    AnswerError::Pick(PickError::Failed(message.into()))
}

/// Reads replies until the headers and the whole body are answered.
async fn read_answer(
    replies: &mut Streaming<ProcessingResponse>,
    sent_body: &Bytes,
) -> Result<Answer, AnswerError> {
    let mut answer = Answer::default();
    let mut from_metadata = Vec::new();
    let mut headers_done = false;
    let mut streamed: Option<Vec<u8>> = None;
    loop {
        let Some(reply) = replies.message().await.map_err(AnswerError::Status)? else {
            return Err(protocol("the picker closed the stream before answering"));
        };
        if let Some(md) = &reply.dynamic_metadata {
            from_metadata = metadata_endpoints(md);
        }
        match reply.response {
            Some(Reply::ImmediateResponse(r)) => {
                let code = r.status.map_or(0, |s| s.code);
                let status = u16::try_from(code)
                    .ok()
                    .and_then(|c| StatusCode::from_u16(c).ok())
                    .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let message = if r.details.is_empty() {
                    String::from_utf8_lossy(&r.body).into_owned()
                } else {
                    r.details
                };
                return Err(AnswerError::Pick(PickError::Rejected { status, message }));
            }
            Some(Reply::RequestHeaders(h)) => {
                apply_headers(&mut answer, h.response.as_ref())?;
                headers_done = true;
            }
            Some(Reply::RequestBody(b)) => {
                let common = b.response.as_ref();
                let mutation = common.and_then(|c| c.body_mutation.as_ref());
                match mutation.and_then(|m| m.mutation.as_ref()) {
                    Some(Mutation::StreamedResponse(s)) => {
                        let buf = streamed.get_or_insert_with(Vec::new);
                        buf.extend_from_slice(&s.body);
                        if !s.end_of_stream {
                            continue;
                        }
                    }
                    Some(Mutation::Body(body)) => answer.body = Some(Bytes::from(body.clone())),
                    Some(Mutation::ClearBody(true)) => answer.body = Some(Bytes::new()),
                    Some(Mutation::ClearBody(false)) | None => {}
                }
                apply_headers(&mut answer, common)?;
                if let Some(buf) = streamed.take() {
                    answer.body = Some(Bytes::from(buf));
                }
                if headers_done {
                    break;
                }
            }
            Some(Reply::RequestTrailers(_)) => {}
            Some(other) => return Err(protocol(format!("unexpected reply {other:?}"))),
            None => return Err(protocol("a reply without a response")),
        }
    }
    if answer.endpoints.is_empty() {
        answer.endpoints = from_metadata;
    } else if !from_metadata.is_empty() && from_metadata != answer.endpoints {
        tracing::warn!(header = ?answer.endpoints, metadata = ?from_metadata, "endpoint picker named different endpoints in the header and the metadata; using the header");
    }
    if answer.endpoints.is_empty() {
        return Err(protocol(format!(
            "the picker named no endpoint ({DESTINATION_ENDPOINT} missing or not ip:port)"
        )));
    }
    if answer.body.as_ref() == Some(sent_body) {
        answer.body = None;
    }
    Ok(answer)
}

/// Header mutations: the destination is taken out, the rest applies to the request.
fn apply_headers(answer: &mut Answer, common: Option<&CommonResponse>) -> Result<(), AnswerError> {
    let Some(m) = common.and_then(|c| c.header_mutation.as_ref()) else {
        return Ok(());
    };
    for opt in &m.set_headers {
        let Some(h) = &opt.header else { continue };
        let value: &[u8] = if h.raw_value.is_empty() {
            h.value.as_bytes()
        } else {
            &h.raw_value
        };
        if h.key.eq_ignore_ascii_case(DESTINATION_ENDPOINT) {
            answer.endpoints = parse_endpoints(&String::from_utf8_lossy(value));
            continue;
        }
        if h.key.starts_with(':') {
            continue;
        }
        let name = HeaderName::try_from(h.key.as_str())
            .map_err(|_| protocol(format!("invalid header name {:?}", h.key)))?;
        let value = http::HeaderValue::from_bytes(value)
            .map_err(|_| protocol(format!("invalid value for header {:?}", h.key)))?;
        answer.set_headers.push((name, value));
    }
    for key in &m.remove_headers {
        if let Ok(name) = HeaderName::try_from(key.as_str()) {
            answer.remove_headers.push(name);
        }
    }
    Ok(())
}

/// `envoy.lb` / `x-gateway-destination-endpoint` of the dynamic metadata.
fn metadata_endpoints(md: &Struct) -> Vec<String> {
    let inner = match md
        .fields
        .get(METADATA_NAMESPACE)
        .and_then(|v| v.kind.as_ref())
    {
        Some(Kind::StructValue(s)) => s,
        _ => return Vec::new(),
    };
    match inner
        .fields
        .get(DESTINATION_ENDPOINT)
        .and_then(|v| v.kind.as_ref())
    {
        Some(Kind::StringValue(s)) => parse_endpoints(s),
        _ => Vec::new(),
    }
}

/// The open stream, kept until the upstream answers.
struct Report {
    tx: mpsc::Sender<ProcessingRequest>,
    replies: Streaming<ProcessingResponse>,
}

impl ServedReport for Report {
    fn served(self: Box<Self>, endpoint: &str, status: StatusCode, headers: &http::HeaderMap) {
        let mut list = vec![header_value(":status", status.as_str().as_bytes())];
        for (name, value) in headers {
            list.push(header_value(name.as_str(), value.as_bytes()));
        }
        let served = Struct {
            fields: HashMap::from([(
                DESTINATION_ENDPOINT_SERVED.to_owned(),
                Value {
                    kind: Some(Kind::StringValue(endpoint.to_owned())),
                },
            )]),
        };
        let message = ProcessingRequest {
            request: Some(Msg::ResponseHeaders(HttpHeaders {
                headers: Some(HeaderMap { headers: list }),
                // No response body is sent to the picker (announced in the protocol
                // configuration).
                end_of_stream: true,
                ..HttpHeaders::default()
            })),
            metadata_context: Some(Metadata {
                filter_metadata: HashMap::from([(METADATA_NAMESPACE.to_owned(), served)]),
                ..Metadata::default()
            }),
            ..ProcessingRequest::default()
        };
        let Self { tx, mut replies } = *self;
        tokio::spawn(async move {
            if tx.send(message).await.is_err() {
                return;
            }
            // Its reply to the response headers; then the stream ends.
            let _ = tokio::time::timeout(REPORT_TIMEOUT, replies.message()).await;
            drop(tx);
        });
    }
}
