//! The router-level stream: reads the buffered request, sets the routing headers, and
//! later translates the response of whichever attempt answered.

use super::error_reply;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::state::{Registration, Registry, Shared};
use crate::wire::{self, Headers, Metadata, Mutation};
use aigw_core::api::Endpoint;
use aigw_core::exchange::{Exchange, ExchangeRecord, ResponseStart};
use aigw_core::{ClientApi, Error};
use aigw_providers::responses::{retrieve, store};
use bytes::{Bytes, BytesMut};
use envoy_types::pb::envoy::service::ext_proc::v3::common_response::ResponseStatus;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Msg;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    HttpBody, HttpHeaders, ProcessingRequest, ProcessingResponse,
};
use http::{HeaderMap, HeaderValue, StatusCode};
use std::net::IpAddr;
use std::sync::Arc;

/// The response phase of a request.
#[derive(Debug)]
enum Phase {
    /// Request not yet answered.
    Request,
    /// A success being translated.
    Success,
    /// An upstream error, buffered until complete, then normalised.
    Error {
        status: StatusCode,
        headers: HeaderMap,
        body: BytesMut,
    },
    /// Not ours to touch (Envoy's own local reply, or a request we answered locally).
    Passthrough,
}

/// State of one router-level stream.
#[derive(Debug)]
pub(crate) struct RouterStream {
    runtime: Arc<Runtime>,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    /// Where the endpoints are mounted.
    prefixes: Arc<aigw_core::api::EndpointPrefixes>,
    /// Spans for the requests of this stream.
    telemetry: aigw_core::telemetry::Telemetry,
    /// Prices and money budgets, when configured.
    spending: Option<Arc<aigw_core::budget::Spending>>,
    /// The request path in the default layout (under the prefixes), when it is under
    /// the root prefix.
    canon: Option<String>,
    endpoint: Option<Endpoint>,
    headers: Headers,
    /// The client's address, from the `source.address` attribute.
    client_ip: Option<IpAddr>,
    body: BytesMut,
    registration: Option<Registration>,
    phase: Phase,
    /// Gateway-issued virtual keys, when the processor checks them.
    keys: Option<Arc<aigw_core::keys::KeyRegistry>>,
    /// The request's virtual key, once checked.
    grant: Option<aigw_core::keys::Grant>,
}

fn continue_reply(
    build: fn(envoy_types::pb::envoy::service::ext_proc::v3::CommonResponse) -> ProcessingResponse,
) -> ProcessingResponse {
    build(wire::common(
        ResponseStatus::Continue,
        Mutation::default(),
        None,
        false,
    ))
}

impl RouterStream {
    /// Prices the stream's requests and enforces their money budgets.
    pub(crate) fn with_spending(
        mut self,
        spending: Option<Arc<aigw_core::budget::Spending>>,
    ) -> Self {
        self.spending = spending;
        self
    }

    /// A fresh stream.
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
        prefixes: Arc<aigw_core::api::EndpointPrefixes>,
        telemetry: aigw_core::telemetry::Telemetry,
    ) -> Self {
        Self {
            runtime,
            registry,
            metrics,
            prefixes,
            telemetry,
            spending: None,
            canon: None,
            endpoint: None,
            headers: Headers::default(),
            client_ip: None,
            body: BytesMut::new(),
            registration: None,
            phase: Phase::Request,
            keys: None,
            grant: None,
        }
    }

    /// Requires a virtual key from `keys` on every request.
    pub(crate) fn with_virtual_keys(
        mut self,
        keys: Option<Arc<aigw_core::keys::KeyRegistry>>,
    ) -> Self {
        self.keys = keys;
        self
    }

    fn api(&self) -> ClientApi {
        self.endpoint
            .map_or(ClientApi::OpenAI, Endpoint::client_api)
    }

    /// Handles one message.
    pub(crate) async fn handle(&mut self, msg: ProcessingRequest) -> ProcessingResponse {
        match msg.request {
            Some(Msg::RequestHeaders(h)) => {
                self.client_ip = wire::attribute(&msg.attributes, wire::ATTR_SOURCE_ADDRESS)
                    .and_then(wire::client_ip);
                self.request_headers(h, msg.metadata_context).await
            }
            Some(Msg::RequestBody(b)) => self.request_body(b).await,
            Some(Msg::ResponseHeaders(h)) => self.response_headers(h).await,
            Some(Msg::ResponseBody(b)) => self.response_body(b).await,
            Some(Msg::RequestTrailers(_)) => ProcessingResponse {
                response: Some(
                    envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response::RequestTrailers(
                        Default::default(),
                    ),
                ),
                ..ProcessingResponse::default()
            },
            Some(Msg::ResponseTrailers(_)) => ProcessingResponse {
                response: Some(
                    envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response::ResponseTrailers(
                        Default::default(),
                    ),
                ),
                ..ProcessingResponse::default()
            },
            None => continue_reply(wire::request_headers_response),
        }
    }

    async fn request_headers(
        &mut self,
        h: HttpHeaders,
        mut metadata: Option<envoy_types::pb::envoy::config::core::v3::Metadata>,
    ) -> ProcessingResponse {
        self.headers = Headers::from_pb_owned(h.headers);
        self.canon = self
            .prefixes
            .canonical(&self.headers.path)
            .map(std::borrow::Cow::into_owned);
        if let Some(reply) = self.stored_response(&mut metadata).await {
            if self.registration.is_none() {
                self.phase = Phase::Passthrough;
            }
            return reply;
        }
        let Some(endpoint) = self.canon.as_deref().and_then(Endpoint::from_path) else {
            self.phase = Phase::Passthrough;
            let e = Error::UnsupportedPath {
                path: self.headers.path.clone(),
            };
            return error_reply(&e, ClientApi::OpenAI);
        };
        self.endpoint = Some(endpoint);
        if endpoint.is_local() {
            self.phase = Phase::Passthrough;
            return self.models(endpoint);
        }
        let mut m = Mutation::default();
        if let Some(keys) = self.keys.clone() {
            match super::keys::check(&keys, &mut self.headers.map, &self.headers.path).await {
                Ok((grant, mutation)) => {
                    self.grant = Some(grant);
                    m = mutation;
                }
                Err(e) => {
                    self.phase = Phase::Passthrough;
                    return error_reply(&e, endpoint.client_api());
                }
            }
        }
        if h.end_of_stream {
            self.phase = Phase::Passthrough;
            return error_reply(
                &Error::bad_request("the request has no body"),
                endpoint.client_api(),
            );
        }
        let request_id = self
            .headers
            .map
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("req")
            .to_owned();
        let reg = self.registry.register(
            &request_id,
            Shared {
                runtime: self.runtime.clone(),
                exchange: None,
                attempt: None,
                backend_name: None,
                reserved: false,
                attempts: 0,
                previous_set: Vec::new(),
                metadata,
            },
        );
        m.set(wire::INTERNAL_REQUEST_ID, reg.id().as_bytes());
        self.registration = Some(reg);
        wire::request_headers_response(wire::common(ResponseStatus::Continue, m, None, false))
    }

    async fn request_body(&mut self, b: HttpBody) -> ProcessingResponse {
        // BUFFERED mode sends the whole body in one message: keep its buffer as is.
        let whole = if b.end_of_stream && self.body.is_empty() {
            Some(Bytes::from(b.body))
        } else {
            self.body.extend_from_slice(&b.body);
            None
        };
        let len = whole.as_ref().map_or(self.body.len(), Bytes::len);
        if let Some(limit) = self.runtime.catalog.body_limit()
            && len as u64 > limit
        {
            self.body = BytesMut::new();
            let e = Error::PayloadTooLarge {
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            };
            return self.fail_request(&e);
        }
        if !b.end_of_stream {
            // Only with a STREAMED request body mode; keep collecting.
            return continue_reply(wire::request_body_response);
        }
        let (Some(endpoint), Some(reg)) = (self.endpoint, self.registration.as_ref()) else {
            return continue_reply(wire::request_body_response);
        };
        let body = match whole {
            Some(b) => b,
            None => std::mem::take(&mut self.body).freeze(),
        };
        let mut headers = std::mem::take(&mut self.headers.map);
        // Routes with `hostnames` match on `host`, which Envoy sends as `:authority`
        // (never forwarded: the upstream request's host is the backend's).
        if let Some(h) = host(&self.headers.authority)
            && let Ok(v) = HeaderValue::from_str(h)
        {
            headers.insert(http::header::HOST, v);
        }
        if let Ok(v) = HeaderValue::from_str(reg.id()) {
            headers.insert(wire::INTERNAL_REQUEST_ID, v);
        }
        if endpoint == Endpoint::Responses
            && store::mirrored()
            && let Some(previous) = store::previous_response_id(&body)
        {
            store::hydrate(&previous).await;
        }
        let mut exchange = match Exchange::new(endpoint, headers, body) {
            Ok(x) => x,
            Err(e) => return self.fail_request(&e),
        };
        exchange.set_telemetry(&self.telemetry);
        if let Some(s) = &self.spending {
            exchange.set_spending(s.clone());
        }
        // A native passthrough forwards the client's query (`?beta=true` from Anthropic
        // clients); the exchange appends it only where the translator says so.
        exchange.set_query(self.headers.path.split_once('?').map(|(_, q)| q));
        let model = exchange.info().model.clone();
        let info = match self.runtime.catalog.resolve(&model, exchange.headers()) {
            Ok(r) => r,
            Err(e) => return self.fail_request(&e),
        };
        if let Some(grant) = &self.grant {
            if let Err(e) = grant.allows(&model, &info.route) {
                return self.fail_request(&e);
            }
            exchange.set_identity(grant.identity.clone());
        }
        exchange.set_force_include_usage(self.runtime.catalog.wants_usage(&info.route));
        if let Some(ip) = self.client_ip {
            exchange.set_client_ip(ip);
        }
        // Behind upstream's controller the route is only known once Envoy has routed
        // (the upstream filter's route attribute): an empty one is set there.
        if !info.route.is_empty() {
            exchange.set_route(info.route.clone());
        }
        // The exchange computes the cost values itself when it ends and hands them to
        // the meter, and the meter guard can compute them when it is dropped.
        if let Some(costs) = info.costs {
            exchange.set_costs(costs);
        }
        // Reserve here, with the first backend standing in for whichever Envoy picks:
        // a refusal is then a local reply before any upstream is involved.
        let reserved = match &info.first {
            Some(target) => {
                if let Err(e) = exchange
                    .reserve(self.runtime.meter.clone(), target, None)
                    .await
                {
                    return self.fail_request(&e);
                }
                true
            }
            None => false,
        };

        let mut m = Mutation::default();
        m.set(wire::MODEL_HEADER, model.as_bytes())
            .set(wire::ORIGINAL_PATH_HEADER, self.headers.path.as_bytes())
            .set(
                wire::ENVOY_ORIGINAL_PATH_HEADER,
                self.headers.path.as_bytes(),
            );
        {
            let mut st = reg.state().lock().await;
            st.exchange = Some(exchange);
            st.reserved = reserved;
        }
        wire::request_body_response(wire::common(ResponseStatus::Continue, m, None, true))
    }

    fn fail_request(&mut self, e: &Error) -> ProcessingResponse {
        self.phase = Phase::Passthrough;
        let r = error_reply(e, self.api());
        self.registration = None;
        r
    }

    /// A request on a stored Responses API response (which names no model to route
    /// by): answered from the conversation store, or — when a passthrough backend
    /// produced it — routed there by the model it was made with, the upstream-level
    /// stream sending it with that backend's credentials.
    async fn stored_response(
        &mut self,
        metadata: &mut Option<envoy_types::pb::envoy::config::core::v3::Metadata>,
    ) -> Option<ProcessingResponse> {
        let method = http::Method::from_bytes(self.headers.method.as_bytes()).ok()?;
        let canon = self.canon.clone()?;
        let op = retrieve::parse(&method, &canon)?;
        if store::mirrored() {
            store::hydrate(op.id()).await;
        }
        let query = self.headers.path.split_once('?').map(|(_, q)| q);
        if !retrieve::held(op)
            && let Some((plan, model)) = self.runtime.catalog.plan_stored_response(op.id())
        {
            return Some(self.route_stored_response(&method, plan, &model, metadata.take()));
        }
        let reply = retrieve::answer(op, query);
        let mut out = wire::immediate(reply.status, "application/json", reply.body);
        if let Some(
            envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response::ImmediateResponse(r),
        ) = out.response.as_mut()
        {
            r.details = String::new();
        }
        Some(out)
    }

    fn route_stored_response(
        &mut self,
        method: &http::Method,
        plan: aigw_core::exchange::Plan,
        model: &str,
        metadata: Option<envoy_types::pb::envoy::config::core::v3::Metadata>,
    ) -> ProcessingResponse {
        self.endpoint = Some(Endpoint::ResponsesStored);
        let path = self.canon.clone().unwrap_or_default();
        let mut headers = self.headers.map.clone();
        if let Some(h) = host(&self.headers.authority)
            && let Ok(v) = HeaderValue::from_str(h)
        {
            headers.insert(http::header::HOST, v);
        }
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("req")
            .to_owned();
        let mut exchange = match Exchange::stored_response(headers, method, &path, model) {
            Ok(x) => x,
            Err(e) => return self.fail_request(&e),
        };
        exchange.set_query(path.split_once('?').map(|(_, q)| q));
        if let Some(ip) = self.client_ip {
            exchange.set_client_ip(ip);
        }
        exchange.apply_plan(&plan);
        let reg = self.registry.register(
            &request_id,
            Shared {
                runtime: self.runtime.clone(),
                exchange: Some(exchange),
                attempt: None,
                backend_name: None,
                reserved: false,
                attempts: 0,
                previous_set: Vec::new(),
                metadata,
            },
        );
        let mut m = Mutation::default();
        m.set(wire::INTERNAL_REQUEST_ID, reg.id().as_bytes())
            .set(wire::MODEL_HEADER, model.as_bytes())
            .set(wire::ORIGINAL_PATH_HEADER, self.headers.path.as_bytes())
            .set(
                wire::ENVOY_ORIGINAL_PATH_HEADER,
                self.headers.path.as_bytes(),
            );
        self.registration = Some(reg);
        wire::request_headers_response(wire::common(ResponseStatus::Continue, m, None, true))
    }

    fn models(&self, endpoint: Endpoint) -> ProcessingResponse {
        let data: Vec<serde_json::Value> = self
            .runtime
            .catalog
            .models(host(&self.headers.authority))
            .into_iter()
            .map(|m| match endpoint {
                Endpoint::AnthropicModels => serde_json::json!({
                    "type": "model", "id": m.id, "display_name": m.id,
                    "created_at": aigw_core::routing::unix_to_rfc3339(m.created),
                }),
                _ => serde_json::json!({
                    "id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by,
                }),
            })
            .collect();
        let body = match endpoint {
            Endpoint::AnthropicModels => serde_json::json!({
                "data": data, "has_more": false, "first_id": null, "last_id": null,
            }),
            _ => serde_json::json!({ "object": "list", "data": data }),
        };
        let mut out = wire::immediate(
            StatusCode::OK,
            "application/json",
            Bytes::from(body.to_string()),
        );
        if let Some(
            envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response::ImmediateResponse(r),
        ) = out.response.as_mut()
        {
            r.details = String::new();
        }
        out
    }

    async fn response_headers(&mut self, h: HttpHeaders) -> ProcessingResponse {
        let seen = Headers::from_pb_owned(h.headers);
        let status = seen.status.unwrap_or(StatusCode::OK);
        let Some(reg) = self.registration.as_ref() else {
            self.phase = Phase::Passthrough;
            return continue_reply(wire::response_headers_response);
        };
        let state = reg.state().clone();
        let mut st = state.lock().await;
        let Some(attempt) = st.attempt.as_mut() else {
            // No upstream attempt happened: Envoy answered itself (no healthy upstream,
            // timeout, …). Forward untouched.
            drop(st);
            self.phase = Phase::Passthrough;
            return continue_reply(wire::response_headers_response);
        };
        let streaming = attempt.streaming();
        match attempt.response_headers(status, &seen.map) {
            Ok(ResponseStart::Success(out)) => {
                self.phase = Phase::Success;
                let mut m = Mutation::default();
                diff_headers(&seen.map, &out, &mut m);
                let reply = wire::common(ResponseStatus::Continue, m, None, false);
                let mut md = None;
                if h.end_of_stream {
                    drop(st);
                    md = self.finish(status, None).await;
                }
                let mut resp = wire::response_headers_response(reply);
                if streaming && status == StatusCode::OK && !h.end_of_stream {
                    resp.mode_override = Some(wire::streamed_response_mode());
                }
                resp.dynamic_metadata = md;
                resp
            }
            Ok(ResponseStart::Error { .. }) => {
                self.phase = Phase::Error {
                    status,
                    headers: seen.map,
                    body: BytesMut::new(),
                };
                drop(st);
                if h.end_of_stream {
                    return self.error_body(true, wire::response_headers_response).await;
                }
                continue_reply(wire::response_headers_response)
            }
            Err(e) => {
                drop(st);
                self.fail_response(&e, wire::response_headers_response)
                    .await
            }
        }
    }

    async fn response_body(&mut self, b: HttpBody) -> ProcessingResponse {
        match &mut self.phase {
            Phase::Success => {}
            Phase::Error { body, .. } => {
                body.extend_from_slice(&b.body);
                if !b.end_of_stream {
                    return continue_reply(wire::response_body_response);
                }
                return self.error_body(false, wire::response_body_response).await;
            }
            Phase::Request | Phase::Passthrough => {
                return continue_reply(wire::response_body_response);
            }
        }
        let Some(reg) = self.registration.as_ref() else {
            return continue_reply(wire::response_body_response);
        };
        let state = reg.state().clone();
        let mut st = state.lock().await;
        let st = &mut *st;
        let (Some(exchange), Some(attempt)) = (st.exchange.as_mut(), st.attempt.as_mut()) else {
            return continue_reply(wire::response_body_response);
        };
        let input = Bytes::from(b.body);
        let out = match exchange.chunk(attempt, input.clone(), b.end_of_stream) {
            Ok(o) => o,
            Err(e) => {
                let event = exchange.stream_error_event(&e);
                tracing::warn!(error = %e, "response translation failed");
                let md = if b.end_of_stream {
                    self.finish_locked(st, StatusCode::BAD_GATEWAY, Some(&e))
                } else {
                    None
                };
                let mut r = wire::response_body_response(wire::common(
                    ResponseStatus::Continue,
                    Mutation::default(),
                    Some(event),
                    false,
                ));
                r.dynamic_metadata = md;
                return r;
            }
        };
        // A translator that forwards the chunk returns the very same bytes: then nothing
        // travels back over gRPC.
        let unchanged = out.as_ptr() == input.as_ptr() && out.len() == input.len();
        let md = if b.end_of_stream {
            self.finish_locked(st, StatusCode::OK, None)
        } else {
            None
        };
        let mut r = wire::response_body_response(wire::common(
            ResponseStatus::Continue,
            Mutation::default(),
            (!unchanged).then_some(out),
            false,
        ));
        r.dynamic_metadata = md;
        r
    }

    async fn error_body(
        &mut self,
        _from_headers: bool,
        build: fn(
            envoy_types::pb::envoy::service::ext_proc::v3::CommonResponse,
        ) -> ProcessingResponse,
    ) -> ProcessingResponse {
        let Phase::Error {
            status,
            headers,
            body,
        } = std::mem::replace(&mut self.phase, Phase::Passthrough)
        else {
            return continue_reply(build);
        };
        let Some(reg) = self.registration.as_ref() else {
            return continue_reply(build);
        };
        let state = reg.state().clone();
        let mut st = state.lock().await;
        let st = &mut *st;
        let Some(attempt) = st.attempt.as_mut() else {
            return continue_reply(build);
        };
        let (out_status, m, out_body) = match attempt.error(status, &headers, &body) {
            Ok(er) => {
                let mut m = Mutation::default();
                m.extend_from(&er.headers);
                (er.status, m, er.body)
            }
            Err(e) => {
                let mut m = Mutation::default();
                m.set("content-type", "application/json");
                (e.status(), m, e.to_body(self.api()))
            }
        };
        let mut m = m;
        if out_status != status {
            m.set(":status", out_status.as_str());
        }
        m.remove("content-length");
        let err = Error::Upstream {
            status: out_status,
            message: String::from_utf8_lossy(&out_body).into_owned(),
        };
        let md = self.finish_locked(st, out_status, Some(&err));
        let mut r = build(wire::common(
            ResponseStatus::Continue,
            m,
            Some(out_body),
            false,
        ));
        r.dynamic_metadata = md;
        r
    }

    async fn fail_response(
        &mut self,
        e: &Error,
        build: fn(
            envoy_types::pb::envoy::service::ext_proc::v3::CommonResponse,
        ) -> ProcessingResponse,
    ) -> ProcessingResponse {
        let _ = build;
        let md = self.finish(e.status(), Some(e)).await;
        let mut r = error_reply(e, self.api());
        r.dynamic_metadata = md;
        self.phase = Phase::Passthrough;
        r
    }

    async fn finish(
        &mut self,
        status: StatusCode,
        error: Option<&Error>,
    ) -> Option<envoy_types::pb::google::protobuf::Struct> {
        let reg = self.registration.as_ref()?;
        let state = reg.state().clone();
        let mut st = state.lock().await;
        self.finish_locked(&mut st, status, error)
    }

    /// Charges a finished request's tokens to its virtual key's tokens-per-minute window.
    fn charge_key(&self, r: &ExchangeRecord) {
        if let (Some(keys), Some(identity)) = (&self.keys, r.identity.as_deref())
            && identity.kind == aigw_core::identity::IdentityKind::VirtualKey
        {
            let tokens = r.usage.input.unwrap_or(0) + r.usage.output.unwrap_or(0);
            keys.charge_tokens(&identity.id, tokens);
        }
    }

    fn finish_locked(
        &self,
        st: &mut Shared,
        status: StatusCode,
        error: Option<&Error>,
    ) -> Option<envoy_types::pb::google::protobuf::Struct> {
        let exchange = st.exchange.take()?;
        let mut record = exchange.finish(status, error);
        if record.costs.is_empty() {
            // The exchange computed them when it knew the route's costs.
            record.costs = st.runtime.catalog.costs(&record);
        }
        self.metrics.record(&record);
        self.charge_key(&record);
        let mut md = metadata(&record, st.backend_name.as_deref());
        // `-logRequestHeaderAttributes`: the mapped headers as dynamic metadata for
        // Envoy's access log, as upstream sets them.
        let log = self.telemetry.log_attributes();
        for (name, v) in record
            .request_labels
            .iter()
            .filter(|(n, _)| log.contains(n))
        {
            md.string(name.to_string(), v.clone());
        }
        md.into_pb()
    }
}

impl Drop for RouterStream {
    /// Envoy closed the stream before the response ended: the client went away (Envoy
    /// then resets the upstream request too, so no more of it can be read here). The
    /// exchange finishes as a 499, settled with the usage seen — estimated from what
    /// was delivered when the provider's final report had not arrived.
    fn drop(&mut self) {
        let Some(reg) = self.registration.as_ref() else {
            return;
        };
        // The upstream-level stream may still hold the state for a moment; it then
        // drops the exchange itself, which settles the meter the same way.
        let Ok(mut st) = reg.state().try_lock() else {
            return;
        };
        if let Some(exchange) = st.exchange.take() {
            let e = Error::internal("the client closed the connection");
            let status = StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST);
            let mut record = exchange.finish(status, Some(&e));
            if record.costs.is_empty() {
                record.costs = st.runtime.catalog.costs(&record);
            }
            self.metrics.record(&record);
            self.charge_key(&record);
        }
    }
}

/// The host of an `:authority`, without port; `None` when Envoy sent none.
fn host(authority: &str) -> Option<&str> {
    let h = crate::wire::strip_port(authority);
    (!h.is_empty()).then_some(h)
}

/// Edits that turn `seen` into `want` (response headers).
fn diff_headers(seen: &HeaderMap, want: &HeaderMap, m: &mut Mutation) {
    for name in seen.keys() {
        if !want.contains_key(name) {
            m.remove(name.as_str());
        }
    }
    for (name, value) in want {
        if seen.get(name) != Some(value) {
            m.set(name.as_str(), value.as_bytes());
        }
    }
}

/// The end-of-request dynamic metadata, as upstream writes it.
pub(crate) fn metadata(r: &ExchangeRecord, backend_name: Option<&str>) -> Metadata {
    let mut md = Metadata::default();
    for (k, v) in &r.costs {
        md.number(k.clone(), *v as f64);
    }
    if let Some(m) = &r.effective_model {
        md.string("model_name_override", m.clone());
    }
    if let Some(b) = &r.backend {
        // `ns/name` of the AIServiceBackend: the first two segments of the per-rule
        // name (a name without them as it is, as upstream does).
        md.string(
            "ai_service_backend_name",
            aigw_core::cost::short_backend_name(b),
        );
    }
    if let Some(b) = backend_name {
        md.string("backend_name", b);
    }
    if let Some(route) = &r.route {
        md.string("route_name", route.to_string());
    }
    if let Some(m) = &r.response_model {
        md.string("response_model", m.clone());
    }
    // Whether the token counts are the provider's or the gateway's estimate (a stream
    // cut upstream), for the access log.
    md.string("token_source", r.usage_source.as_str());
    if r.stream
        && let Some(t) = r.time_to_first_byte
    {
        md.number("token_latency_ttft", t.as_secs_f64() * 1000.0);
        if let (Some(total), Some(out)) = (r.latency, r.usage.output)
            && out > 1
        {
            let itl = total.saturating_sub(t).as_secs_f64() * 1000.0 / (out - 1) as f64;
            md.number("token_latency_itl", itl);
        }
    }
    md
}
