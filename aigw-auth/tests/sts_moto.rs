//! STS AssumeRoleWithWebIdentity against moto_server: IRSA token files and the
//! `oidcExchangeToken` flow, then SigV4 with the temporary credentials.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

mod common;

use aigw_auth::aws::{AwsCredentialSource, SigV4Config, SigV4Provider};
use aigw_auth::{KeySource, OidcClientCredentials, Rotating};
use aigw_core::{CredentialMaterial, CredentialProvider, OutgoingRequest, Secret};
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, Method};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

const ROLE: &str = "arn:aws:iam::123456789012:role/bedrock-invoker";

async fn moto(test: &str) -> Option<(common::Peer, String)> {
    let bin = common::venv_bin(test)?;
    let port = common::free_port();
    let child = Command::new(bin.join("moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let peer = common::Peer(child);
    common::wait_for_port(port).await;
    Some((peer, format!("http://127.0.0.1:{port}/")))
}

fn bedrock_request() -> OutgoingRequest {
    OutgoingRequest {
        method: Method::POST,
        scheme: "https".into(),
        authority: "bedrock-runtime.us-east-1.amazonaws.com".into(),
        path: "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse".into(),
        headers: HeaderMap::new(),
        body: Bytes::from_static(b"{}"),
    }
}

fn assert_temporary(material: &CredentialMaterial) {
    let CredentialMaterial::Aws {
        access_key_id,
        session_token,
        ..
    } = material
    else {
        panic!("not AWS credentials");
    };
    // moto issues ASIA… keys for assumed roles.
    assert!(access_key_id.expose().starts_with("ASIA"));
    assert!(session_token.as_ref().is_some_and(|t| !t.is_empty()));
}

#[tokio::test]
async fn web_identity_token_file_assumes_role() {
    let Some((_moto, endpoint)) = moto("web_identity_token_file_assumes_role").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.irsa.sig\n").unwrap();
    let mut cfg = SigV4Config::new(
        "us-east-1",
        AwsCredentialSource::WebIdentity {
            token: KeySource::file(&token_file),
            role_arn: ROLE.into(),
            session_name: "aigw-test".into(),
        },
    );
    cfg.sts_endpoint = Some(endpoint);
    let p = Rotating::new(Arc::new(SigV4Provider::new("ns/aws-irsa", cfg)));
    let c = p.credential().await.unwrap();
    assert_temporary(&c.material);
    assert!(c.expires_at.unwrap() > SystemTime::now());
    let mut r = bedrock_request();
    p.apply(&c, &mut r).unwrap();
    let CredentialMaterial::Aws {
        access_key_id,
        session_token,
        ..
    } = &c.material
    else {
        unreachable!()
    };
    let auth = r.headers["authorization"].to_str().unwrap();
    assert!(auth.starts_with(&format!(
        "AWS4-HMAC-SHA256 Credential={}/",
        access_key_id.expose()
    )));
    assert_eq!(
        r.headers["x-amz-security-token"],
        session_token.as_ref().unwrap().expose()
    );
    // Cached: a second call does not go to STS again.
    let again = p.credential().await.unwrap();
    assert_eq!(again, c);
    assert_eq!(p.stats().refreshed, 1);
}

#[tokio::test]
async fn oidc_client_credentials_then_sts() {
    let Some((_moto, endpoint)) = moto("oidc_client_credentials_then_sts").await else {
        return;
    };
    // The OIDC provider: client credentials with HTTP Basic, as RFC 6749 prefers.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let app = axum::Router::new().route(
        "/oauth2/token",
        post(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                use base64::Engine;
                let want = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode("aigw-client:oidc-secret")
                );
                let ok = headers.get("authorization").is_some_and(|v| v == want.as_str())
                    && body.contains("grant_type=client_credentials")
                    && body.contains("scope=sts");
                let json = [(http::header::CONTENT_TYPE, "application/json")];
                if ok {
                    (
                        http::StatusCode::OK,
                        json,
                        r#"{"access_token":"eyJ.oidc-access.sig","token_type":"Bearer","expires_in":300}"#,
                    )
                } else {
                    (http::StatusCode::UNAUTHORIZED, json, r#"{"error":"invalid_client"}"#)
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let oidc_port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut cfg = SigV4Config::new(
        "us-east-1",
        AwsCredentialSource::OidcExchange {
            oidc: OidcClientCredentials {
                token_endpoint: format!("http://127.0.0.1:{oidc_port}/oauth2/token"),
                issuer: None,
                client_id: "aigw-client".into(),
                client_secret: Secret::new("oidc-secret"),
                scopes: vec!["sts".into()],
                audience: None,
                secret_in_body: false,
            },
            role_arn: ROLE.into(),
            session_name: "ns-aws-oidc".into(),
        },
    );
    cfg.sts_endpoint = Some(endpoint);
    let p = SigV4Provider::new("ns/aws-oidc", cfg);
    let c = p.credential().await.unwrap();
    assert_temporary(&c.material);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    server.abort();
}

#[tokio::test]
async fn sts_unreachable_is_a_503_naming_policy() {
    let port = common::free_port();
    let mut cfg = SigV4Config::new(
        "us-east-1",
        AwsCredentialSource::WebIdentity {
            token: KeySource::value("tok"),
            role_arn: ROLE.into(),
            session_name: "s".into(),
        },
    );
    cfg.sts_endpoint = Some(format!("http://127.0.0.1:{port}/"));
    let e = SigV4Provider::new("ns/aws", cfg)
        .credential()
        .await
        .unwrap_err();
    assert_eq!(e.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    let msg = e.to_string();
    assert!(
        msg.contains("ns/aws") && msg.contains("connection failed"),
        "{msg}"
    );
}
