//! What an authorization service is asked about and what it decides, shared by the
//! HTTP ([`super::extauth`]) and gRPC ([`super::extauth_grpc`]) protocols.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};

/// The request as the service sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checked<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    /// The body, when `bodyToExtAuth` asks for it.
    pub(crate) body: Option<&'a Bytes>,
    /// The client's address, when the packaging knows it (a gRPC check's source).
    #[cfg_attr(not(feature = "mcp-ext-authz-grpc"), allow(dead_code))]
    pub(crate) peer: Option<std::net::SocketAddr>,
}

/// The service's decision.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Go ahead: these headers on every backend request (replacing client headers of
    /// the same name), those client headers never forwarded, these on the answer.
    Allow {
        add: Vec<(HeaderName, HeaderValue)>,
        remove: Vec<HeaderName>,
        respond: Vec<(HeaderName, HeaderValue)>,
    },
    /// Refused: the response for the client.
    Deny {
        status: StatusCode,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Bytes,
    },
}

impl Verdict {
    pub(crate) fn allow(add: Vec<(HeaderName, HeaderValue)>) -> Self {
        Self::Allow {
            add,
            remove: Vec::new(),
            respond: Vec::new(),
        }
    }
}
