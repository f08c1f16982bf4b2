//! The test peer of the gRPC `extAuth` tests: an `envoy.service.auth.v3.Authorization`
//! server (envoy-types' protobuf service over tonic) that decides on the `x-user`
//! header and records every `CheckRequest`.
//!
//! * `alice`: allowed, `x-authz-user: alice` for the backend, `x-drop-me` removed,
//!   `x-authz-decision: allow` on the answer;
//! * `broken`: a gRPC `INTERNAL` error (no decision);
//! * anyone else: `PERMISSION_DENIED` with a 401, `www-authenticate` and a body.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse,
    HeaderValue, HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use envoy_types::pb::google::rpc;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The authorization service: decides on the `x-user` header and records every check.
#[derive(Clone, Default)]
pub struct Authz {
    pub seen: Arc<Mutex<Vec<CheckRequest>>>,
}

fn header(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl Authorization for Authz {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let req = request.into_inner();
        self.seen.lock().unwrap().push(req.clone());
        let user = req
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref())
            .and_then(|h| h.headers.get("x-user").cloned())
            .unwrap_or_default();
        let resp = match user.as_str() {
            "alice" => CheckResponse {
                status: Some(rpc::Status::default()),
                http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                    headers: vec![header("x-authz-user", "alice")],
                    headers_to_remove: vec!["x-drop-me".into()],
                    response_headers_to_add: vec![header("x-authz-decision", "allow")],
                    ..Default::default()
                })),
                ..Default::default()
            },
            "broken" => return Err(tonic::Status::internal("the policy store is down")),
            _ => CheckResponse {
                status: Some(rpc::Status {
                    code: 7, // PERMISSION_DENIED
                    ..Default::default()
                }),
                http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                    status: Some(HttpStatus { code: 401 }),
                    headers: vec![header("www-authenticate", "Custom realm=\"authz\"")],
                    body: "who are you?".into(),
                })),
                ..Default::default()
            },
        };
        Ok(tonic::Response::new(resp))
    }
}

pub async fn start_authz() -> (Authz, SocketAddr) {
    let authz = Authz::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = AuthorizationServer::new(authz.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (authz, addr)
}

/// The HTTP attributes of a check.
pub fn http_of(c: &CheckRequest) -> &HttpRequest {
    c.attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
        .unwrap()
}
