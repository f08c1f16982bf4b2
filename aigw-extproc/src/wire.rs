//! Conversions between the ext_proc protobuf messages and `http`/gateway types.
//!
//! Everything that knows the shape of an Envoy message lives here, so the processing
//! logic reads as HTTP.

use aigw_core::HeaderMutation;
use bytes::Bytes;
use envoy_types::pb::envoy::config::core::v3::{
    HeaderMap as PbHeaderMap, HeaderValue as PbHeaderValue, HeaderValueOption,
    header_value_option::HeaderAppendAction,
};
use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::{
    ProcessingMode, processing_mode::BodySendMode,
};
use envoy_types::pb::envoy::service::ext_proc::v3::{
    BodyMutation, BodyResponse, CommonResponse, HeaderMutation as PbHeaderMutation,
    HeadersResponse, ImmediateResponse, ProcessingResponse, body_mutation,
    common_response::ResponseStatus, processing_response::Response,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::google::protobuf::{ListValue, Struct, Value, value::Kind};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use std::collections::BTreeMap;

/// The dynamic metadata namespace Envoy's rate-limit filter and access logs read.
pub const METADATA_NAMESPACE: &str = "io.envoy.ai_gateway";

/// The filter metadata namespace carrying per-endpoint backend names in the bootstrap.
pub const ENDPOINT_METADATA_NAMESPACE: &str = "aigateway.envoy.io";

/// Header carrying the id that ties a request's router-level and upstream-level streams.
pub const INTERNAL_REQUEST_ID: &str = "x-ai-eg-internal-req-id";
/// Header routes match on.
pub const MODEL_HEADER: &str = "x-ai-eg-model";
/// The client's path before any rewrite, as upstream records it.
pub const ORIGINAL_PATH_HEADER: &str = "x-ai-eg-original-path";
/// Envoy's own original-path header, set alongside for access logs.
pub const ENVOY_ORIGINAL_PATH_HEADER: &str = "x-envoy-original-path";
/// Internal header upstream always strips before the request leaves.
pub const UPSTREAM_HOST_HEADER: &str = "x-ai-eg-upstream-host";

/// The request attribute naming the per-rule backend of the chosen endpoint.
pub const ATTR_HOST_BACKEND: &str = "xds.upstream_host_metadata.filter_metadata['aigateway.envoy.io']['per_route_rule_backend_name']";
/// The same name on the cluster (clusters without per-endpoint metadata).
pub const ATTR_CLUSTER_BACKEND: &str =
    "xds.cluster_metadata.filter_metadata['aigateway.envoy.io']['per_route_rule_backend_name']";
/// The upstream host the endpoint dials.
pub const ATTR_UPSTREAM_HOST: &str =
    "xds.upstream_host_metadata.filter_metadata['aigateway.envoy.io']['upstream_host']";
/// The route name on the matched route.
pub const ATTR_ROUTE_NAME: &str =
    "xds.route_metadata.filter_metadata['aigateway.envoy.io']['aigw_route_name']";

/// The client's address (`ip:port`), which the router-level filter asks Envoy for:
/// rate-limit `sourceCIDR` selectors match on it.
pub const ATTR_SOURCE_ADDRESS: &str = "source.address";

/// Every request attribute the router-level filter asks Envoy for.
pub const ROUTER_ATTRIBUTES: [&str; 1] = [ATTR_SOURCE_ADDRESS];

/// Every request attribute the upstream-level filter asks Envoy for.
pub const UPSTREAM_ATTRIBUTES: [&str; 4] = [
    ATTR_HOST_BACKEND,
    ATTR_CLUSTER_BACKEND,
    ATTR_UPSTREAM_HOST,
    ATTR_ROUTE_NAME,
];

/// Request headers as Envoy sent them: pseudo-headers apart, the rest as a `HeaderMap`.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    /// `:path`.
    pub path: String,
    /// `:method`.
    pub method: String,
    /// `:authority`.
    pub authority: String,
    /// `:status` on responses.
    pub status: Option<StatusCode>,
    /// Regular headers.
    pub map: HeaderMap,
}

impl Headers {
    /// Reads an Envoy header map; values arrive in `raw_value` (or `value` on old Envoys).
    /// Headers with names or values `http` rejects are skipped: they cannot matter to
    /// translation and forwarding them is Envoy's job.
    pub fn from_pb(pb: Option<&PbHeaderMap>) -> Self {
        Self::from_pb_owned(pb.cloned())
    }

    /// As [`Headers::from_pb`], taking the message so values move instead of being copied.
    pub fn from_pb_owned(pb: Option<PbHeaderMap>) -> Self {
        let mut out = Self::default();
        let Some(pb) = pb else { return out };
        out.map.reserve(pb.headers.len());
        for h in pb.headers {
            let raw: Vec<u8> = if h.raw_value.is_empty() {
                h.value.into_bytes()
            } else {
                h.raw_value
            };
            match h.key.as_str() {
                ":path" => out.path = into_string(raw),
                ":method" => out.method = into_string(raw),
                ":authority" => out.authority = into_string(raw),
                ":status" => {
                    out.status = std::str::from_utf8(&raw)
                        .ok()
                        .and_then(|s| s.parse::<u16>().ok())
                        .and_then(|s| StatusCode::from_u16(s).ok());
                }
                k if k.starts_with(':') => {}
                k => {
                    if let (Ok(n), Ok(v)) = (
                        HeaderName::from_bytes(k.as_bytes()),
                        HeaderValue::from_maybe_shared(Bytes::from(raw)),
                    ) {
                        out.map.append(n, v);
                    }
                }
            }
        }
        out
    }
}

fn into_string(raw: Vec<u8>) -> String {
    String::from_utf8(raw).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// An ext_proc header mutation under construction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mutation {
    set: Vec<(String, Vec<u8>)>,
    remove: Vec<String>,
}

impl Mutation {
    /// Sets (overwrites or adds) a header, pseudo-headers included.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> &mut Self {
        let name = name.into();
        self.set.retain(|(n, _)| *n != name);
        self.remove.retain(|n| *n != name);
        self.set.push((name, value.into()));
        self
    }

    /// Removes a header.
    pub fn remove(&mut self, name: impl Into<String>) -> &mut Self {
        let name = name.into();
        self.set.retain(|(n, _)| *n != name);
        if !self.remove.contains(&name) {
            self.remove.push(name);
        }
        self
    }

    /// Adds a gateway header mutation.
    pub fn extend_from(&mut self, m: &HeaderMutation) -> &mut Self {
        for n in &m.remove {
            self.remove(n.as_str());
        }
        for (n, v) in &m.set {
            self.set(n.as_str(), v.as_bytes());
        }
        self
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    /// The value set for a header, if any.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.set
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Headers this mutation removes.
    pub fn removed(&self) -> &[String] {
        &self.remove
    }

    /// Headers this mutation sets.
    pub fn sets(&self) -> &[(String, Vec<u8>)] {
        &self.set
    }

    /// The protobuf form; `None` when empty so the reply stays minimal.
    pub fn to_pb(&self) -> Option<PbHeaderMutation> {
        self.clone().into_pb()
    }

    /// As [`Mutation::to_pb`], moving names and values into the message.
    pub fn into_pb(self) -> Option<PbHeaderMutation> {
        if self.is_empty() {
            return None;
        }
        Some(PbHeaderMutation {
            set_headers: self
                .set
                .into_iter()
                .map(|(key, raw_value)| HeaderValueOption {
                    header: Some(PbHeaderValue {
                        key,
                        value: String::new(),
                        raw_value,
                    }),
                    append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
                    ..HeaderValueOption::default()
                })
                .collect(),
            remove_headers: self.remove,
        })
    }
}

/// Builds a `CommonResponse`. A body whose buffer is not shared moves into the
/// message without a copy.
pub fn common(
    status: ResponseStatus,
    headers: Mutation,
    body: Option<Bytes>,
    clear_route_cache: bool,
) -> CommonResponse {
    CommonResponse {
        status: status as i32,
        header_mutation: headers.into_pb(),
        body_mutation: body.map(|b| BodyMutation {
            mutation: Some(body_mutation::Mutation::Body(Vec::from(b))),
        }),
        trailers: None,
        clear_route_cache,
    }
}

/// A reply to request headers.
pub fn request_headers_response(c: CommonResponse) -> ProcessingResponse {
    ProcessingResponse {
        response: Some(Response::RequestHeaders(HeadersResponse {
            response: Some(c),
        })),
        ..ProcessingResponse::default()
    }
}

/// A reply to a request body.
pub fn request_body_response(c: CommonResponse) -> ProcessingResponse {
    ProcessingResponse {
        response: Some(Response::RequestBody(BodyResponse { response: Some(c) })),
        ..ProcessingResponse::default()
    }
}

/// A reply to response headers.
pub fn response_headers_response(c: CommonResponse) -> ProcessingResponse {
    ProcessingResponse {
        response: Some(Response::ResponseHeaders(HeadersResponse {
            response: Some(c),
        })),
        ..ProcessingResponse::default()
    }
}

/// A reply to a response body (chunk).
pub fn response_body_response(c: CommonResponse) -> ProcessingResponse {
    ProcessingResponse {
        response: Some(Response::ResponseBody(BodyResponse { response: Some(c) })),
        ..ProcessingResponse::default()
    }
}

/// Switches the response body to STREAMED (sent with the response-headers reply).
pub fn streamed_response_mode() -> ProcessingMode {
    ProcessingMode {
        response_body_mode: BodySendMode::Streamed as i32,
        ..ProcessingMode::default()
    }
}

/// An immediate (local) reply: Envoy answers the client and stops processing.
pub fn immediate(status: StatusCode, content_type: &str, body: Bytes) -> ProcessingResponse {
    immediate_with(status, content_type, Mutation::default(), body)
}

/// As [`immediate`], with more response headers.
pub fn immediate_with(
    status: StatusCode,
    content_type: &str,
    mut headers: Mutation,
    body: Bytes,
) -> ProcessingResponse {
    headers.set("content-type", content_type.as_bytes());
    ProcessingResponse {
        response: Some(Response::ImmediateResponse(ImmediateResponse {
            status: Some(HttpStatus {
                code: i32::from(status.as_u16()),
            }),
            headers: headers.into_pb(),
            body: Vec::from(body),
            grpc_status: None,
            details: String::from("aigw"),
        })),
        ..ProcessingResponse::default()
    }
}

/// Dynamic metadata for namespace [`METADATA_NAMESPACE`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata(BTreeMap<String, Value>);

impl Metadata {
    /// Adds a string value.
    pub fn string(&mut self, key: impl Into<String>, v: impl Into<String>) -> &mut Self {
        self.0.insert(
            key.into(),
            Value {
                kind: Some(Kind::StringValue(v.into())),
            },
        );
        self
    }

    /// Adds a number (protobuf `Struct` numbers are doubles).
    pub fn number(&mut self, key: impl Into<String>, v: f64) -> &mut Self {
        self.0.insert(
            key.into(),
            Value {
                kind: Some(Kind::NumberValue(v)),
            },
        );
        self
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `dynamic_metadata` struct: `{ "io.envoy.ai_gateway": { ... } }`.
    pub fn to_pb(&self) -> Option<Struct> {
        self.clone().into_pb()
    }

    /// As [`Metadata::to_pb`], moving the values.
    pub fn into_pb(self) -> Option<Struct> {
        if self.0.is_empty() {
            return None;
        }
        let inner = Struct {
            fields: self.0.into_iter().collect(),
        };
        Some(Struct {
            fields: [(
                METADATA_NAMESPACE.to_owned(),
                Value {
                    kind: Some(Kind::StructValue(inner)),
                },
            )]
            .into_iter()
            .collect(),
        })
    }
}

/// Reads a string attribute from the ext_proc `attributes` map (keyed by filter name,
/// then by attribute expression). Envoy sends CEL values as protobuf `Value`s.
pub fn attribute<'a>(
    attributes: &'a std::collections::HashMap<String, Struct>,
    name: &str,
) -> Option<&'a str> {
    attributes.values().find_map(|s| match s.fields.get(name) {
        Some(Value {
            kind: Some(Kind::StringValue(v)),
        }) if !v.is_empty() => Some(v.as_str()),
        Some(Value {
            kind: Some(Kind::ListValue(ListValue { values })),
        }) => values.iter().find_map(|v| match &v.kind {
            Some(Kind::StringValue(s)) if !s.is_empty() => Some(s.as_str()),
            _ => None,
        }),
        _ => None,
    })
}

/// The IP of an Envoy address attribute: `ip:port`, `[v6]:port`, or a bare IP.
pub fn client_ip(address: &str) -> Option<std::net::IpAddr> {
    address
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| address.parse())
        .ok()
}

/// `host` of `host:port` (IPv6 literals keep their brackets).
pub fn strip_port(authority: &str) -> &str {
    match authority.rsplit_once(':') {
        Some((host, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains(':') || host.ends_with(']')) =>
        {
            host
        }
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_prefer_raw_value_and_split_pseudo_headers() {
        let pb = PbHeaderMap {
            headers: vec![
                PbHeaderValue {
                    key: ":path".into(),
                    value: String::new(),
                    raw_value: b"/v1/chat/completions".to_vec(),
                },
                PbHeaderValue {
                    key: "x-a".into(),
                    value: "old".into(),
                    raw_value: Vec::new(),
                },
                PbHeaderValue {
                    key: ":status".into(),
                    value: String::new(),
                    raw_value: b"200".to_vec(),
                },
            ],
        };
        let h = Headers::from_pb(Some(&pb));
        assert_eq!(h.path, "/v1/chat/completions");
        assert_eq!(h.status, Some(StatusCode::OK));
        assert_eq!(h.map.get("x-a").unwrap(), "old");
        assert!(h.map.get(":path").is_none());
    }

    #[test]
    fn mutation_last_edit_wins() {
        let mut m = Mutation::default();
        m.set("a", "1").remove("a").set("b", "2").set("b", "3");
        let pb = m.to_pb().unwrap();
        assert_eq!(pb.remove_headers, vec!["a".to_owned()]);
        assert_eq!(pb.set_headers.len(), 1);
        assert_eq!(pb.set_headers[0].header.as_ref().unwrap().raw_value, b"3");
        assert!(Mutation::default().to_pb().is_none());
    }

    #[test]
    fn client_ip_reads_envoy_addresses() {
        assert_eq!(
            client_ip("10.1.2.3:41234"),
            Some("10.1.2.3".parse().unwrap())
        );
        assert_eq!(client_ip("[::1]:8080"), Some("::1".parse().unwrap()));
        assert_eq!(
            client_ip("2001:db8::7"),
            Some("2001:db8::7".parse().unwrap())
        );
        assert_eq!(client_ip("192.0.2.9"), Some("192.0.2.9".parse().unwrap()));
        assert_eq!(client_ip("/run/envoy.sock"), None);
        assert_eq!(client_ip(""), None);
    }

    #[test]
    fn metadata_nests_under_namespace() {
        let mut m = Metadata::default();
        m.number("llm_total_token", 12.0)
            .string("backend_name", "b");
        let s = m.to_pb().unwrap();
        let Some(Kind::StructValue(inner)) = &s.fields[METADATA_NAMESPACE].kind else {
            panic!("not a struct")
        };
        assert_eq!(
            inner.fields["llm_total_token"].kind,
            Some(Kind::NumberValue(12.0))
        );
    }
}
