//! Azure Entra ID client credentials against oauth2-mock-server shaped like Entra.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

mod common;

use aigw_auth::azure::{AzureClientAuth, AzureConfig, AzureProvider};
use aigw_auth::{KeySource, Rotating};
use aigw_core::{CredentialMaterial, CredentialProvider, OutgoingRequest};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::SystemTime;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const SECRET: &str = "entra-client-secret-value";
const ASSERTION: &str = "eyJhbGciOiJSUzI1NiJ9.federated-assertion.sig";

fn start(test: &str) -> Option<(common::Peer, u16)> {
    let npm = common::npm_dir(test)?;
    let port = common::free_port();
    let mut child = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/js/entra_mock.mjs"
        ))
        .args([&port.to_string(), TENANT, CLIENT, SECRET, ASSERTION])
        .env("AIGW_NPM_DIR", npm)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "READY");
    Some((common::Peer(child), port))
}

fn config(port: u16, auth: AzureClientAuth) -> AzureConfig {
    let mut c = AzureConfig::new(TENANT, CLIENT, auth);
    c.authority = format!("http://127.0.0.1:{port}");
    c
}

#[tokio::test]
async fn client_secret_and_assertion_get_tokens() {
    let Some((_peer, port)) = start("client_secret_and_assertion_get_tokens") else {
        return;
    };
    for auth in [
        AzureClientAuth::ClientSecret(KeySource::value(SECRET)),
        AzureClientAuth::AssertionToken(KeySource::value(ASSERTION)),
    ] {
        let p = Rotating::new(Arc::new(AzureProvider::new("ns/azure", config(port, auth))));
        let c = p.credential().await.unwrap();
        let CredentialMaterial::Token(t) = &c.material else {
            panic!("no token");
        };
        // The mock issues an RS256 JWT access token.
        assert_eq!(t.expose().split('.').count(), 3);
        let left = c
            .expires_at
            .unwrap()
            .duration_since(SystemTime::now())
            .unwrap();
        assert!(left.as_secs() > 3500 && left.as_secs() <= 3599, "{left:?}");
        let mut r = OutgoingRequest {
            method: Method::POST,
            scheme: "https".into(),
            authority: "my.openai.azure.com".into(),
            path: "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21".into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        };
        p.apply(&c, &mut r).unwrap();
        assert_eq!(
            r.headers["authorization"],
            format!("Bearer {}", t.expose()).as_str()
        );
    }
}

#[tokio::test]
async fn wrong_secret_is_a_503_with_entra_code_and_no_secret() {
    let Some((_peer, port)) = start("wrong_secret_is_a_503_with_entra_code_and_no_secret") else {
        return;
    };
    let p = AzureProvider::new(
        "ns/azure",
        config(
            port,
            AzureClientAuth::ClientSecret(KeySource::value("not-the-secret")),
        ),
    );
    let e = p.credential().await.unwrap_err();
    assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
    let msg = e.to_string();
    assert!(
        msg.contains("ns/azure") && msg.contains("invalid_client"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("/{TENANT}/oauth2/v2.0/token")),
        "{msg}"
    );
    assert!(!msg.contains("not-the-secret"), "{msg}");
}

#[tokio::test]
async fn federated_assertion_from_a_discovered_oidc_provider() {
    let Some((_peer, port)) = start("federated_assertion_from_a_discovered_oidc_provider") else {
        return;
    };
    // The OIDC provider: discovery document plus a client-credentials token endpoint
    // whose access token is the federated assertion Entra expects.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let token_endpoint = format!("{issuer}/connect/token");
    let discovery =
        serde_json::json!({"issuer": issuer, "token_endpoint": token_endpoint}).to_string();
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || {
                let d = discovery.clone();
                async move { ([(http::header::CONTENT_TYPE, "application/json")], d) }
            }),
        )
        .route(
            "/connect/token",
            axum::routing::post(|| async {
                (
                    [(http::header::CONTENT_TYPE, "application/json")],
                    serde_json::json!({"access_token": ASSERTION, "token_type": "Bearer", "expires_in": 600}).to_string(),
                )
            }),
        );
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let oidc = aigw_auth::OidcClientCredentials {
        token_endpoint: String::new(),
        issuer: Some(issuer),
        client_id: "workload".into(),
        client_secret: aigw_core::Secret::new("workload-secret"),
        scopes: vec!["api://AzureADTokenExchange".into()],
        audience: None,
        secret_in_body: false,
    };
    let p = AzureProvider::new(
        "ns/azure-fed",
        config(port, AzureClientAuth::AssertionFromOidc(oidc)),
    );
    let c = p.credential().await.unwrap();
    assert!(
        matches!(&c.material, CredentialMaterial::Token(t) if t.expose().split('.').count() == 3)
    );
    server.abort();
}
