//! The `ExternalProcessor` gRPC service.
//!
//! Envoy opens one bidirectional stream per HTTP request per filter instance. A stream
//! whose first message carries request `attributes` other than the client's address
//! comes from the upstream-level filter (one per attempt, inside the cluster); any other
//! stream is the router-level filter.
//! Every message gets exactly one reply, so each stream is a plain `unfold` over its
//! inbound messages: no task, no channel.

mod keys;
mod router;
mod upstream;

use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::state::Registry;
use crate::wire;
use aigw_core::{ClientApi, Error};
use arc_swap::ArcSwap;
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::ExternalProcessor;
use envoy_types::pb::envoy::service::ext_proc::v3::{ProcessingRequest, ProcessingResponse};
use futures::Stream;
use std::pin::Pin;
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

pub(crate) use router::RouterStream;

/// Handles shared by every stream.
#[derive(Debug, Clone)]
pub struct Processor {
    runtime: Arc<ArcSwap<Runtime>>,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    prefixes: Arc<aigw_core::api::EndpointPrefixes>,
    telemetry: aigw_core::telemetry::Telemetry,
    spending: Option<Arc<aigw_core::budget::Spending>>,
    keys: Option<Arc<aigw_core::keys::KeyRegistry>>,
}

impl Processor {
    /// A processor over a swappable runtime.
    pub fn new(runtime: Arc<ArcSwap<Runtime>>, metrics: Arc<Metrics>) -> Self {
        Self {
            runtime,
            registry: Arc::new(Registry::default()),
            metrics,
            prefixes: Arc::default(),
            telemetry: aigw_core::telemetry::Telemetry::disabled(),
            spending: None,
            keys: None,
        }
    }

    /// Prices every request and enforces money budgets through `spending` (see
    /// [`aigw_core::budget`]): a spent budget is a local reply before any upstream is
    /// involved, and a stream whose `cutoff` budget runs out gets the client API's
    /// error event, the rest of the upstream's answer read for its usage only.
    #[must_use]
    pub fn with_spending(mut self, spending: Arc<aigw_core::budget::Spending>) -> Self {
        self.spending = Some(spending);
        self
    }

    /// Requires a gateway-issued virtual key ([`aigw_core::keys`]) on every request:
    /// without a valid one the client gets a 401 as an immediate response.
    #[must_use]
    pub fn with_virtual_keys(mut self, keys: std::sync::Arc<aigw_core::keys::KeyRegistry>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Records a span per request through `telemetry` (see [`aigw_core::telemetry`]).
    #[must_use]
    pub fn with_telemetry(mut self, telemetry: aigw_core::telemetry::Telemetry) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// Serves the endpoints under these prefixes (upstream's `rootPrefix` and
    /// `endpointPrefixes`) instead of the default layout.
    #[must_use]
    pub fn with_prefixes(mut self, prefixes: aigw_core::api::EndpointPrefixes) -> Self {
        self.prefixes = Arc::new(prefixes);
        self
    }

    /// The in-flight request registry (for tests and admin).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The tonic service, with decode limits raised for large buffered bodies.
    pub fn into_service(
        self,
        max_message_size: usize,
    ) -> envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::ExternalProcessorServer<Self>
    {
        envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::ExternalProcessorServer::new(self)
            .max_decoding_message_size(max_message_size)
            .max_encoding_message_size(max_message_size)
    }
}

/// Which filter a stream belongs to, learned from its first message.
enum Kind {
    Unknown,
    Router(Box<RouterStream>),
    Upstream,
}

struct StreamCtx {
    processor: Processor,
    inbound: Streaming<ProcessingRequest>,
    kind: Kind,
}

impl StreamCtx {
    async fn handle(&mut self, msg: ProcessingRequest) -> ProcessingResponse {
        self.processor.metrics.message();
        if matches!(self.kind, Kind::Unknown) {
            self.kind = if is_router(&msg) {
                Kind::Router(Box::new(
                    RouterStream::new(
                        self.processor.runtime.load_full(),
                        self.processor.registry.clone(),
                        self.processor.metrics.clone(),
                        self.processor.prefixes.clone(),
                        self.processor.telemetry.clone(),
                    )
                    .with_spending(self.processor.spending.clone())
                    .with_virtual_keys(self.processor.keys.clone()),
                ))
            } else {
                Kind::Upstream
            };
        }
        match &mut self.kind {
            Kind::Router(r) => r.handle(msg).await,
            Kind::Upstream | Kind::Unknown => upstream::handle(&self.processor.registry, msg).await,
        }
    }
}

type ProcessStream = Pin<Box<dyn Stream<Item = Result<ProcessingResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ExternalProcessor for Processor {
    type ProcessStream = ProcessStream;

    async fn process(
        &self,
        request: Request<Streaming<ProcessingRequest>>,
    ) -> Result<Response<Self::ProcessStream>, Status> {
        let ctx = StreamCtx {
            processor: self.clone(),
            inbound: request.into_inner(),
            kind: Kind::Unknown,
        };
        let out = futures::stream::unfold(ctx, |mut ctx| async move {
            match ctx.inbound.message().await {
                Ok(Some(msg)) => {
                    let reply = ctx.handle(msg).await;
                    Some((Ok(reply), ctx))
                }
                // Envoy closed its side (request done, or client went away): dropping the
                // context ends the request's registration and settles its meter.
                Ok(None) => None,
                Err(status) => {
                    tracing::debug!(%status, "ext_proc stream ended with an error");
                    None
                }
            }
        });
        Ok(Response::new(Box::pin(out)))
    }
}

/// Whether a stream's first message comes from the router-level filter: it carries no
/// attributes, or the client address only that filter asks for.
fn is_router(msg: &ProcessingRequest) -> bool {
    msg.attributes.is_empty()
        || wire::attribute(&msg.attributes, wire::ATTR_SOURCE_ADDRESS).is_some()
}

/// An immediate reply carrying an error in the client API's envelope. A refusal by the
/// gateway's own rate limits carries `Retry-After` and `x-envoy-ratelimited: true`, as
/// Envoy's rate-limit filter answers; a spent money budget `x-should-retry: false`.
pub(crate) fn error_reply(error: &Error, api: ClientApi) -> ProcessingResponse {
    tracing::debug!(%error, status = %error.status(), "answering locally");
    let mut headers = wire::Mutation::default();
    if let Some(after) = error.retry_after() {
        headers.set("retry-after", after.as_secs().max(1).to_string());
    }
    if matches!(error, Error::RateLimited { .. }) {
        headers.set("x-envoy-ratelimited", "true");
    }
    if let Some(status) = error.limit_status() {
        for (name, value) in status.headers() {
            headers.set(name.as_str(), value.as_bytes());
        }
    }
    if matches!(error, Error::BudgetExceeded { .. }) {
        // The OpenAI and Anthropic SDKs raise at once instead of retrying a spent budget.
        headers.set("x-should-retry", "false");
    }
    wire::immediate_with(
        error.status(),
        "application/json",
        headers,
        error.to_body(api),
    )
}
