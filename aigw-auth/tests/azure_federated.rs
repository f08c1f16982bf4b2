//! Azure workload-identity style federation: the client assertion is a token file the
//! kubelet rotates (`AzureClientAuth::AssertionToken` over a file), exchanged at an
//! Entra ID token endpoint stub that checks the client-credentials-with-assertion form.
//! The file is re-read on every exchange; an endpoint outage keeps the last access token
//! in use until it expires, then fails naming the policy; the endpoint back, the rotated
//! assertion is exchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use aigw_auth::azure::{AzureClientAuth, AzureConfig, AzureProvider};
use aigw_auth::{KeySource, ManualClock, Rotating};
use aigw_core::CredentialProvider;
use axum::routing::post;
use http::StatusCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";

fn form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            let d = |s: &str| {
                let s = s.replace('+', " ");
                let mut out = Vec::new();
                let b = s.as_bytes();
                let mut i = 0;
                while i < b.len() {
                    if b[i] == b'%' && i + 2 < b.len() {
                        let h = u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap();
                        out.push(h);
                        i += 3;
                    } else {
                        out.push(b[i]);
                        i += 1;
                    }
                }
                String::from_utf8(out).unwrap()
            };
            (d(k), d(v))
        })
        .collect()
}

fn entra(down: Arc<AtomicBool>, assertions: Arc<Mutex<Vec<String>>>) -> axum::Router {
    axum::Router::new().route(
        &format!("/{TENANT}/oauth2/v2.0/token"),
        post(move |body: String| {
            let (down, assertions) = (down.clone(), assertions.clone());
            async move {
                if down.load(Ordering::SeqCst) {
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(http::header::CONTENT_TYPE, "application/json")],
                        "{\"error\":\"temporarily_unavailable\"}".to_owned(),
                    );
                }
                let f = form(&body);
                let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                assert_eq!(get("grant_type").as_deref(), Some("client_credentials"));
                assert_eq!(get("client_id").as_deref(), Some(CLIENT));
                assert_eq!(
                    get("client_assertion_type").as_deref(),
                    Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                );
                assert_eq!(
                    get("scope").as_deref(),
                    Some("https://cognitiveservices.azure.com/.default")
                );
                assert!(get("client_secret").is_none());
                let mut a = assertions.lock().unwrap();
                a.push(get("client_assertion").unwrap());
                let body = serde_json::json!({
                    "token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600,
                    "access_token": format!("entra-{}", a.len()),
                });
                (
                    StatusCode::OK,
                    [(http::header::CONTENT_TYPE, "application/json")],
                    body.to_string(),
                )
            }
        }),
    )
}

#[tokio::test]
async fn federated_token_file_rotates_through_an_entra_outage() {
    let down = Arc::new(AtomicBool::new(false));
    let assertions = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = entra(down.clone(), assertions.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("azure-identity-token");
    std::fs::write(&token, "eyJ.projected-1.sig\n").unwrap();
    let mut config = AzureConfig::new(
        TENANT,
        CLIENT,
        AzureClientAuth::AssertionToken(KeySource::File(token.clone())),
    );
    config.authority = format!("http://127.0.0.1:{port}");
    let clock = Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(1_767_323_045),
    ));
    let provider = AzureProvider::new("ns/azure-wi", config).with_clock(clock.clone());
    let rot = Rotating::new(Arc::new(provider)).with_clock(clock.clone());
    assert_eq!(
        common::bearer_of(&rot.credential().await.unwrap()),
        "entra-1"
    );

    // The kubelet rotates the token; Entra ID goes down.
    std::fs::write(&token, "eyJ.projected-2.sig\n").unwrap();
    down.store(true, Ordering::SeqCst);
    common::outage_until_expiry_then_recovery(
        &rot,
        &clock,
        || down.store(false, Ordering::SeqCst),
        ("entra-1", "entra-2", "ns/azure-wi"),
    )
    .await;
    assert_eq!(
        *assertions.lock().unwrap(),
        ["eyJ.projected-1.sig", "eyJ.projected-2.sig"]
    );
    server.abort();
}
