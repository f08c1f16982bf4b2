//! The upstream-level stream: one per attempt, inside the chosen cluster. Translates the
//! original body for that backend, applies mutations and credentials, and rewrites the
//! request Envoy is about to send.

use super::error_reply;
use crate::credentials;
use crate::state::Registry;
use crate::wire::{self, Headers, Metadata, Mutation};
use aigw_core::{ClientApi, Error};
use envoy_types::pb::envoy::service::ext_proc::v3::common_response::ResponseStatus;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Msg;
use envoy_types::pb::envoy::service::ext_proc::v3::{ProcessingRequest, ProcessingResponse};
use http::HeaderName;
use std::sync::Arc;

/// The route of an attempt: Envoy's route metadata (`aigw_route_name`), else the route part of a
/// per-rule backend name (`{ns}/{backend}/route/{route}/…` → `{ns}/{route}`).
fn route_name(
    attributes: &std::collections::HashMap<String, envoy_types::pb::google::protobuf::Struct>,
    backend_name: &str,
) -> Option<String> {
    if let Some(r) = wire::attribute(attributes, wire::ATTR_ROUTE_NAME).filter(|r| !r.is_empty()) {
        return Some(r.to_owned());
    }
    let parts: Vec<&str> = backend_name.split('/').collect();
    match parts.as_slice() {
        [ns, _, "route", route, "rule", _, "ref", _] => Some(format!("{ns}/{route}")),
        _ => None,
    }
}

/// Client headers that never reach a backend: its own credentials replace them, and
/// translators need uncompressed bytes.
const STRIPPED: [&str; 5] = [
    "authorization",
    "x-api-key",
    "api-key",
    "proxy-authorization",
    "accept-encoding",
];

fn pass() -> ProcessingResponse {
    wire::request_headers_response(wire::common(
        ResponseStatus::Continue,
        Mutation::default(),
        None,
        false,
    ))
}

/// Handles the (single) request-headers message of an upstream-level stream.
pub(crate) async fn handle(registry: &Registry, msg: ProcessingRequest) -> ProcessingResponse {
    let Some(Msg::RequestHeaders(h)) = msg.request else {
        // The upstream filter is configured for request headers only; anything else is
        // acknowledged unchanged.
        return match msg.request {
            Some(Msg::RequestBody(_)) => wire::request_body_response(Default::default()),
            Some(Msg::ResponseHeaders(_)) => wire::response_headers_response(Default::default()),
            Some(Msg::ResponseBody(_)) => wire::response_body_response(Default::default()),
            _ => pass(),
        };
    };
    let seen = Headers::from_pb_owned(h.headers);
    let Some(id) = seen
        .map
        .get(wire::INTERNAL_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
    else {
        // Not a request the router-level filter took in (e.g. a non-AI route sharing the
        // cluster): leave it alone.
        return pass();
    };
    let Some(state) = registry.get(id) else {
        return error_reply(
            &Error::internal("the router-level state of this request is gone"),
            ClientApi::OpenAI,
        );
    };
    let backend_name = wire::attribute(&msg.attributes, wire::ATTR_HOST_BACKEND)
        .or_else(|| wire::attribute(&msg.attributes, wire::ATTR_CLUSTER_BACKEND))
        .map(str::to_owned);

    let mut guard = state.lock().await;
    let st = &mut *guard;
    let api = st
        .exchange
        .as_ref()
        .map_or(ClientApi::OpenAI, |x| x.client_api());
    let Some(backend_name) = backend_name else {
        return error_reply(
            &Error::internal("the upstream filter did not receive the backend name attribute"),
            api,
        );
    };
    let Some(target) = st.runtime.catalog.target(&backend_name) else {
        return error_reply(
            &Error::internal(format!("backend {backend_name:?} is not configured")),
            api,
        );
    };
    let runtime = st.runtime.clone();
    let Some(exchange) = st.exchange.as_mut() else {
        return error_reply(&Error::internal("request body was not processed"), api);
    };
    if !st.reserved {
        st.reserved = true;
        if let Err(e) = exchange.reserve(runtime.meter.clone(), &target, None).await {
            return error_reply(&e, api);
        }
    }
    if exchange.route().is_none() {
        // Envoy routed: costs of the route it names, else the global ones.
        let route = route_name(&msg.attributes, &backend_name);
        if let Some(costs) = runtime.catalog.route_costs(route.as_deref().unwrap_or("")) {
            exchange.set_costs(costs);
        }
        if let Some(route) = route {
            exchange.set_route(Arc::from(route));
        }
    }
    st.attempts += 1;
    let mut attempt = match exchange.attempt(&target, runtime.factory.as_ref()) {
        Ok(a) => a,
        Err(e) => return error_reply(&e, api),
    };
    // Sign for the host Envoy sends. The generated routes rewrite `Host` to the chosen
    // endpoint's hostname (no port), but whether this filter sees the rewritten value
    // depends on connection-pool timing, so the processor pins it explicitly below.
    let host = wire::attribute(&msg.attributes, wire::ATTR_UPSTREAM_HOST)
        .map(str::to_owned)
        .unwrap_or_else(|| attempt.request().authority.clone());
    let host = wire::strip_port(&host).to_owned();
    // A target without endpoints (Envoy holds them): an AWS backend signs for the
    // default Bedrock host of its region, as upstream (the downstream authority would
    // sign for the wrong host); any other keeps the host Envoy chose.
    let host = match runtime.catalog.default_signing_host(&backend_name) {
        _ if !host.is_empty() => host,
        Some(h) => h.to_owned(),
        None => wire::strip_port(&seen.authority).to_owned(),
    };
    attempt.request_mut().authority = host.clone();
    let staged = runtime.catalog.metadata_credential(&backend_name);
    {
        // Metadata the upstream filter was sent wins over what the router filter saw;
        // the router filter is where the bootstrap forwards the namespaces.
        let headers = &mut attempt.request_mut().headers;
        match staged {
            Some(md) => md.stage(
                &[msg.metadata_context.as_ref(), st.metadata.as_ref()],
                headers,
            ),
            None => credentials::strip_internal(headers),
        }
    }
    if let Some(cred) = target.credential.as_ref() {
        let applied = match cred.credential().await {
            Ok(c) => cred.apply(&c, attempt.request_mut()),
            Err(e) => Err(e),
        };
        if let Err(e) = applied {
            return error_reply(&e, api);
        }
    }

    let req = attempt.request();
    tracing::debug!(
        backend = %backend_name,
        authority = %req.authority,
        path = %req.path,
        attempt = st.attempts,
        "upstream attempt"
    );
    let mut m = Mutation::default();
    if req.path != seen.path {
        m.set(":path", req.path.as_bytes());
    }
    if req.authority != seen.authority {
        m.set(":authority", req.authority.as_bytes());
    }
    if req.method.as_str() != seen.method {
        m.set(":method", req.method.as_str());
    }
    for name in req.headers.keys() {
        if *name == http::header::CONTENT_LENGTH || *name == http::header::HOST {
            continue;
        }
        let want = req.headers.get_all(name);
        if !want.iter().eq(seen.map.get_all(name).iter())
            && let Some(v) = want.iter().next()
        {
            m.set(name.as_str(), v.as_bytes());
        }
    }
    for name in seen.map.keys() {
        if req.headers.contains_key(name) {
            continue;
        }
        // `x-aigw-*` carries per-request credentials (overrides, internal staging):
        // never forwarded, whether or not a provider consumed it.
        if STRIPPED.contains(&name.as_str())
            || name.as_str().starts_with("x-aigw-")
            || st.previous_set.iter().any(|p| p == name.as_str())
        {
            m.remove(name.as_str());
        }
    }
    m.remove(wire::UPSTREAM_HOST_HEADER);
    // A stored-response request has no body: its exchange body only describes it.
    let body_changed = exchange.endpoint() != aigw_core::api::Endpoint::ResponsesStored && {
        let original = exchange.body();
        !(req.body.as_ptr() == original.as_ptr() && req.body.len() == original.len())
    };
    let mut md = Metadata::default();
    md.number("content_length", req.body.len() as f64)
        .string("backend_name", backend_name.clone());
    let (status, body) = if body_changed {
        (ResponseStatus::ContinueAndReplace, Some(req.body.clone()))
    } else {
        (ResponseStatus::Continue, None)
    };
    st.previous_set = m
        .sets()
        .iter()
        .filter(|(n, _)| !n.starts_with(':') && HeaderName::from_bytes(n.as_bytes()).is_ok())
        .map(|(n, _)| n.clone())
        .collect();
    st.backend_name = Some(backend_name);
    st.attempt = Some(attempt);
    let mut reply = wire::request_headers_response(wire::common(status, m, body, false));
    reply.dynamic_metadata = md.into_pb();
    reply
}

#[cfg(test)]
mod tests {
    use super::route_name;
    use crate::wire::{self, strip_port};
    use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
    use std::collections::HashMap;

    #[test]
    fn route_from_metadata_then_backend_name() {
        let mut attrs = HashMap::new();
        assert_eq!(
            route_name(&attrs, "ns/b/route/r/rule/0/ref/1").as_deref(),
            Some("ns/r")
        );
        assert_eq!(route_name(&attrs, "testupstream-openai"), None);
        let mut fields = std::collections::BTreeMap::new();
        fields.insert(
            wire::ATTR_ROUTE_NAME.to_owned(),
            Value {
                kind: Some(Kind::StringValue("team/chat".into())),
            },
        );
        attrs.insert(
            "envoy.filters.http.ext_proc/aigateway".to_owned(),
            Struct {
                fields: fields.into_iter().collect(),
            },
        );
        assert_eq!(
            route_name(&attrs, "ns/b/route/r/rule/0/ref/1").as_deref(),
            Some("team/chat")
        );
    }

    #[test]
    fn strips_ports() {
        assert_eq!(strip_port("a.example:443"), "a.example");
        assert_eq!(strip_port("a.example"), "a.example");
        assert_eq!(strip_port("[::1]:8080"), "[::1]");
        assert_eq!(strip_port("::1"), "::1");
    }
}
