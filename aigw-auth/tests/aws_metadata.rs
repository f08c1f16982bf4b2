//! AWS credentials from the container endpoint (ECS, EKS Pod Identity) and IMDSv2,
//! against stubs answering as those services document.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use aigw_auth::KeySource;
use aigw_auth::aws::{AwsCredentialSource, SigV4Config, SigV4Provider};
use aigw_core::{CredentialMaterial, CredentialProvider};
use axum::routing::{get, put};
use http::{HeaderMap, StatusCode};
use std::time::{Duration, UNIX_EPOCH};

const CREDS: &str = r#"{"Code":"Success","LastUpdated":"2026-01-01T00:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIAMETADATA","SecretAccessKey":"md-secret","Token":"md-session","Expiration":"2030-01-01T00:00:00Z"}"#;

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn assert_metadata_creds(c: &aigw_core::Credential) {
    let CredentialMaterial::Aws {
        access_key_id,
        secret_access_key,
        session_token,
    } = &c.material
    else {
        panic!("not AWS");
    };
    assert_eq!(access_key_id.expose(), "ASIAMETADATA");
    assert_eq!(secret_access_key.expose(), "md-secret");
    assert_eq!(session_token.as_ref().unwrap().expose(), "md-session");
    assert_eq!(
        c.expires_at,
        Some(UNIX_EPOCH + Duration::from_secs(1_893_456_000))
    );
}

#[tokio::test]
async fn container_endpoint_with_pod_identity_token() {
    let base = serve(axum::Router::new().route(
        "/v1/credentials",
        get(|h: HeaderMap| async move {
            if h.get("authorization")
                .is_some_and(|v| v == "pod-identity-token")
            {
                (StatusCode::OK, CREDS)
            } else {
                (
                    StatusCode::UNAUTHORIZED,
                    r#"{"Code":"AccessDenied","Message":"no token"}"#,
                )
            }
        }),
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("eks-pod-identity-token");
    std::fs::write(&token_file, "pod-identity-token\n").unwrap();
    let p = SigV4Provider::new(
        "ns/pod",
        SigV4Config::new(
            "us-east-1",
            AwsCredentialSource::ContainerEndpoint {
                uri: format!("{base}/v1/credentials"),
                auth: Some(KeySource::file(&token_file)),
            },
        ),
    );
    assert_metadata_creds(&p.credential().await.unwrap());

    let p = SigV4Provider::new(
        "ns/pod",
        SigV4Config::new(
            "us-east-1",
            AwsCredentialSource::ContainerEndpoint {
                uri: format!("{base}/v1/credentials"),
                auth: None,
            },
        ),
    );
    let e = p.credential().await.unwrap_err();
    assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(e.to_string().contains("HTTP 401"), "{e}");
}

#[tokio::test]
async fn imds_v2_session_role_and_credentials() {
    let app = axum::Router::new()
        .route(
            "/latest/api/token",
            put(|h: HeaderMap| async move {
                if h.contains_key("x-aws-ec2-metadata-token-ttl-seconds") {
                    (StatusCode::OK, "imds-session")
                } else {
                    (StatusCode::BAD_REQUEST, "")
                }
            }),
        )
        .route(
            "/latest/meta-data/iam/security-credentials/",
            get(|h: HeaderMap| async move {
                if h.get("x-aws-ec2-metadata-token")
                    .is_some_and(|v| v == "imds-session")
                {
                    (StatusCode::OK, "bedrock-instance-role\n")
                } else {
                    (StatusCode::UNAUTHORIZED, "")
                }
            }),
        )
        .route(
            "/latest/meta-data/iam/security-credentials/bedrock-instance-role",
            get(|h: HeaderMap| async move {
                if h.get("x-aws-ec2-metadata-token")
                    .is_some_and(|v| v == "imds-session")
                {
                    (StatusCode::OK, CREDS)
                } else {
                    (StatusCode::UNAUTHORIZED, "")
                }
            }),
        );
    let base = serve(app).await;
    let p = SigV4Provider::new(
        "ns/ec2",
        SigV4Config::new(
            "us-east-1",
            AwsCredentialSource::InstanceMetadata {
                endpoint: Some(base),
            },
        ),
    );
    assert_metadata_creds(&p.credential().await.unwrap());
}
