//! A `grpc` authorization service of `securityPolicy.extAuth` (feature
//! `mcp-ext-authz-grpc`): the `envoy.service.auth.v3.Authorization/Check` call Envoy's
//! `ext_authz` filter makes, and what the filter does with the answer.
//!
//! The request's attributes are Envoy's: the client's address, the request id,
//! method, path (with the query), host, scheme, protocol, size and headers (lower-case
//! names, repeated values joined with `,`; every header and the `:authority`, `:method`,
//! `:path`, `:scheme` pseudo-headers unless `headersToExtAuth` names the ones to send),
//! the body with `bodyToExtAuth` (`body` when it is UTF-8, else `raw_body`), and the
//! `contextExtensions`. An OK status lets the request through: the `ok_response`'s
//! `headers` reach every backend request, its `headers_to_remove` are not forwarded and
//! its `response_headers_to_add` go on the answer to the client. Any other status
//! refuses it with the `denied_response`'s status (403 when unset), headers and body.
//! A call that fails (no connection, a gRPC error, the timeout) is the service being
//! unreachable: 403, or through with `failOpen`.
//!
//! The packaging supplies the connection ([`super::McpUpstream::grpc_channel`]), so
//! TLS to the service is dialled as the packaging dials any backend.

use super::backend::McpBackend;
use super::extauth_verdict::{Checked, Verdict};
use envoy_types::pb::envoy::config::core::v3::{
    Address, HeaderValueOption, Metadata, SocketAddress, address,
    header_value_option::HeaderAppendAction, socket_address,
};
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, CheckResponse, attribute_context,
    authorization_client::AuthorizationClient, check_response,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use tonic::transport::Channel;

/// The gRPC side of a route's `extAuth`.
#[derive(Debug, Default)]
pub(crate) struct GrpcAuth {
    /// `contextExtensions`, resolved at load.
    pub(crate) context_extensions: BTreeMap<String, String>,
    /// `includeRouteMetadata`: the MCPRoute (namespace, name), sent as the route
    /// metadata Envoy Gateway attaches to the HTTPRoute upstream generates for it.
    pub(crate) route: Option<(String, String)>,
    /// The connection, set once the packaging supplied it.
    pub(crate) channel: OnceLock<Channel>,
}

/// gRPC status `OK`.
const OK: i32 = 0;

impl GrpcAuth {
    /// Makes the call; `Err` when the service gave no decision.
    pub(crate) async fn check(
        &self,
        upstream: &dyn super::McpUpstream,
        service: &McpBackend,
        only: &[HeaderName],
        timeout: std::time::Duration,
        req: Checked<'_>,
    ) -> Result<Verdict, String> {
        let channel = match self.channel.get() {
            Some(c) => c.clone(),
            None => {
                // Loaded outside a runtime: connect on first use.
                let c = upstream.grpc_channel(service)?;
                let _ = self.channel.set(c.clone());
                c
            }
        };
        let mut client = AuthorizationClient::new(channel);
        let mut call = tonic::Request::new(self.request(only, req));
        call.set_timeout(timeout);
        let sent = tokio::time::timeout(timeout, client.check(call)).await;
        match sent {
            Ok(Ok(resp)) => Ok(verdict(resp.into_inner(), req.headers)),
            Ok(Err(status)) => Err(format!(
                "gRPC status {:?}: {}",
                status.code(),
                status.message()
            )),
            Err(_) => Err("timed out".into()),
        }
    }

    /// The `CheckRequest` Envoy's filter sends for `req`; `only` is `headersToExtAuth`
    /// (all headers when empty).
    pub(crate) fn request(&self, only: &[HeaderName], req: Checked<'_>) -> CheckRequest {
        let uri = req.uri;
        let host = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| {
                req.headers
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let scheme = uri.scheme_str().unwrap_or("http").to_string();
        let mut headers = HashMap::new();
        let pseudo = [
            (":authority", host.as_str()),
            (":method", req.method.as_str()),
            (":path", path.as_str()),
            (":scheme", scheme.as_str()),
        ];
        for (k, v) in pseudo {
            if only.is_empty() || only.iter().any(|n| n.as_str() == k) {
                headers.insert(k.to_string(), v.to_string());
            }
        }
        for name in req.headers.keys() {
            if !only.is_empty() && !only.contains(name) {
                continue;
            }
            let joined = req
                .headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join(",");
            headers.insert(name.as_str().to_string(), joined);
        }
        let size = req
            .body
            .map_or_else(|| content_length(req.headers), |b| b.len() as i64);
        let (body, raw_body) = match req.body {
            Some(b) => match std::str::from_utf8(b) {
                Ok(s) => (s.to_string(), Vec::new()),
                Err(_) => (String::new(), b.to_vec()),
            },
            None => (String::new(), Vec::new()),
        };
        let http = attribute_context::HttpRequest {
            id: request_id(req.headers),
            method: req.method.as_str().to_string(),
            headers,
            path,
            host,
            scheme,
            size,
            protocol: "HTTP/1.1".into(),
            body,
            raw_body,
            ..Default::default()
        };
        CheckRequest {
            attributes: Some(AttributeContext {
                source: req.peer.map(|p| attribute_context::Peer {
                    address: Some(socket(p)),
                    ..Default::default()
                }),
                request: Some(attribute_context::Request {
                    time: Some(now()),
                    http: Some(http),
                }),
                context_extensions: self
                    .context_extensions
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                metadata_context: self
                    .route
                    .as_ref()
                    .map(|(ns, name)| route_metadata(ns, name)),
                ..Default::default()
            }),
        }
    }
}

/// Envoy Gateway's route metadata (`includeRouteMetadata`) for an MCPRoute: the
/// HTTPRoute upstream's controller generates for it (`ai-eg-mcp-main-{name}`), under
/// `envoy-gateway` → `resources`.
fn route_metadata(ns: &str, name: &str) -> Metadata {
    use envoy_types::pb::google::protobuf::{ListValue, Struct, Value, value::Kind};
    let s = |v: &str| Value {
        kind: Some(Kind::StringValue(v.to_string())),
    };
    let resource = Struct {
        fields: [
            ("kind".to_string(), s("HTTPRoute")),
            ("namespace".to_string(), s(ns)),
            ("name".to_string(), s(&format!("ai-eg-mcp-main-{name}"))),
        ]
        .into_iter()
        .collect(),
    };
    let resources = Value {
        kind: Some(Kind::ListValue(ListValue {
            values: vec![Value {
                kind: Some(Kind::StructValue(resource)),
            }],
        })),
    };
    Metadata {
        filter_metadata: [(
            "envoy-gateway".to_string(),
            Struct {
                fields: [("resources".to_string(), resources)].into_iter().collect(),
            },
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    }
}

/// What Envoy's filter does with a `CheckResponse`.
pub(crate) fn verdict(resp: CheckResponse, client: &HeaderMap) -> Verdict {
    let code = resp.status.as_ref().map_or(OK, |s| s.code);
    if code == OK {
        let Some(check_response::HttpResponse::OkResponse(ok)) = resp.http_response else {
            return Verdict::allow(Vec::new());
        };
        let mut add = Vec::new();
        for h in &ok.headers {
            if let Some((name, value)) = header(h)
                && applies(h, client.contains_key(&name))
            {
                add.push((name, value));
            }
        }
        let remove = ok
            .headers_to_remove
            .iter()
            .filter_map(|n| HeaderName::try_from(n.as_str()).ok())
            .collect();
        let respond = ok
            .response_headers_to_add
            .iter()
            .filter_map(header)
            .collect();
        return Verdict::Allow {
            add,
            remove,
            respond,
        };
    }
    let mut status = StatusCode::FORBIDDEN;
    let (mut headers, mut body) = (Vec::new(), bytes::Bytes::new());
    if let Some(check_response::HttpResponse::DeniedResponse(d)) = resp.http_response {
        if let Some(s) = d
            .status
            .and_then(|s| u16::try_from(s.code).ok())
            .filter(|c| *c > 0)
            .and_then(|c| StatusCode::from_u16(c).ok())
        {
            status = s;
        }
        headers = d.headers.iter().filter_map(header).collect();
        body = bytes::Bytes::from(d.body);
    }
    Verdict::Deny {
        status,
        headers,
        body,
    }
}

/// Whether a header of the ok response applies, given whether the client sent one of
/// that name (Envoy's `append` and `append_action`).
// Envoy's filter still honours the deprecated `append` when a service sets it.
#[allow(deprecated)]
fn applies(h: &HeaderValueOption, present: bool) -> bool {
    if h.append.is_some() {
        return true;
    }
    match HeaderAppendAction::try_from(h.append_action) {
        Ok(HeaderAppendAction::AddIfAbsent) => !present,
        Ok(HeaderAppendAction::OverwriteIfExists) => present,
        _ => true,
    }
}

fn header(h: &HeaderValueOption) -> Option<(HeaderName, HeaderValue)> {
    let hv = h.header.as_ref()?;
    let name = HeaderName::try_from(hv.key.as_str()).ok()?;
    let value = if hv.raw_value.is_empty() {
        HeaderValue::try_from(hv.value.as_str()).ok()?
    } else {
        HeaderValue::from_bytes(&hv.raw_value).ok()?
    };
    (!value.is_empty() || h.keep_empty_value).then_some((name, value))
}

fn content_length(headers: &HeaderMap) -> i64 {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1)
}

/// The request's `x-request-id`, or a fresh one (Envoy always has one).
fn request_id(headers: &HeaderMap) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    if let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        return id.to_string();
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{t:x}-{n:x}")
}

fn socket(p: std::net::SocketAddr) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: p.ip().to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(
                p.port(),
            ))),
            ..Default::default()
        })),
    }
}

fn now() -> envoy_types::pb::google::protobuf::Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    envoy_types::pb::google::protobuf::Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::HeaderValue as PbHeader;
    use envoy_types::pb::envoy::service::auth::v3::{DeniedHttpResponse, OkHttpResponse};
    use envoy_types::pb::envoy::r#type::v3::HttpStatus;
    use envoy_types::pb::google::rpc;

    fn opt(key: &str, value: &str, action: HeaderAppendAction) -> HeaderValueOption {
        HeaderValueOption {
            header: Some(PbHeader {
                key: key.into(),
                value: value.into(),
                ..Default::default()
            }),
            append_action: action as i32,
            ..Default::default()
        }
    }

    #[test]
    fn ok_answers_follow_envoys_append_actions() {
        let mut client = HeaderMap::new();
        client.insert("x-present", HeaderValue::from_static("c"));
        let resp = CheckResponse {
            status: Some(rpc::Status::default()),
            http_response: Some(check_response::HttpResponse::OkResponse(OkHttpResponse {
                headers: vec![
                    opt("x-set", "1", HeaderAppendAction::OverwriteIfExistsOrAdd),
                    opt("x-present", "2", HeaderAppendAction::AddIfAbsent),
                    opt("x-absent", "3", HeaderAppendAction::OverwriteIfExists),
                    opt("x-present", "4", HeaderAppendAction::OverwriteIfExists),
                ],
                headers_to_remove: vec!["x-secret".into()],
                response_headers_to_add: vec![opt("x-r", "5", HeaderAppendAction::default())],
                ..Default::default()
            })),
            ..Default::default()
        };
        let Verdict::Allow {
            add,
            remove,
            respond,
        } = verdict(resp, &client)
        else {
            panic!("allowed")
        };
        let add: Vec<_> = add
            .iter()
            .map(|(k, v)| format!("{k}={}", v.to_str().unwrap()))
            .collect();
        assert_eq!(add, ["x-set=1", "x-present=4"]);
        assert_eq!(remove, ["x-secret"]);
        assert_eq!(respond.len(), 1);
    }

    #[test]
    fn refusals_carry_the_services_answer_or_403() {
        let denied = |http_response| CheckResponse {
            status: Some(rpc::Status {
                code: 16,
                ..Default::default()
            }),
            http_response,
            ..Default::default()
        };
        let full = denied(Some(check_response::HttpResponse::DeniedResponse(
            DeniedHttpResponse {
                status: Some(HttpStatus { code: 429 }),
                headers: vec![opt("retry-after", "3", HeaderAppendAction::default())],
                body: "slow down".into(),
            },
        )));
        let Verdict::Deny {
            status,
            headers,
            body,
        } = verdict(full, &HeaderMap::new())
        else {
            panic!("denied")
        };
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[0].0, "retry-after");
        assert_eq!(body, "slow down");
        let Verdict::Deny { status, .. } = verdict(denied(None), &HeaderMap::new()) else {
            panic!("denied")
        };
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
