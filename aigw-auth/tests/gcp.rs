//! GCP: service-account JWTs cross-verified with google-auth both ways, the jwt-bearer
//! exchange, workload identity federation (STS + iamcredentials) against a stub that
//! checks the documented request fields, and the metadata server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

mod common;

use aigw_auth::gcp::{
    CLOUD_PLATFORM_SCOPE, GcpConfig, GcpCredentialSource, GcpProvider, ServiceAccountKey,
    SubjectToken, WorkloadIdentityConfig,
};
use aigw_auth::{KeySource, ManualClock, Rotating};
use aigw_core::{CredentialMaterial, CredentialProvider, OutgoingRequest};
use axum::extract::Path;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header::CONTENT_TYPE};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const T: u64 = 1_767_323_045;
const TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

fn claims_of(token: &str, public_pem: &str, aud: &str) -> (jsonwebtoken::Header, Value) {
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_pem.as_bytes()).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[aud]);
    v.validate_exp = false; // the assertion is issued at a fixed instant in the past
    let data = jsonwebtoken::decode::<Value>(token, &key, &v).unwrap();
    (data.header, data.claims)
}

#[tokio::test]
async fn service_account_jwt_matches_google_auth_both_ways() {
    let Some(python) = common::python("service_account_jwt_matches_google_auth_both_ways") else {
        return;
    };
    let made = common::run_py(
        &python,
        "gcp_jwt.py",
        &json!({"mode": "make", "time": T, "token_uri": TOKEN_URI}),
    );
    let public_pem = made["public_pem"].as_str().unwrap();
    let key = ServiceAccountKey::from_json(made["sa_json"].as_str().unwrap()).unwrap();
    assert!(!format!("{key:?}").contains("PRIVATE KEY"));
    let ours = key
        .assertion(CLOUD_PLATFORM_SCOPE, UNIX_EPOCH + Duration::from_secs(T))
        .unwrap();

    // google-auth verifies ours.
    let verified = common::run_py(
        &python,
        "gcp_jwt.py",
        &json!({"mode": "verify", "time": T + 10, "token": ours.expose(), "public_pem": public_pem, "audience": TOKEN_URI}),
    );
    // We verify google-auth's.
    let (their_header, their_claims) =
        claims_of(made["assertion"].as_str().unwrap(), public_pem, TOKEN_URI);
    let (our_header, our_claims) = claims_of(ours.expose(), public_pem, TOKEN_URI);

    assert_eq!(our_claims, their_claims, "same claims as google-auth");
    assert_eq!(verified["claims"], our_claims);
    assert_eq!(our_header.kid, their_header.kid);
    assert_eq!(verified["header"]["alg"], "RS256");
    assert_eq!(
        verified["header"]["kid"],
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert_eq!(
        our_claims["iss"],
        "vertex@aigw-test.iam.gserviceaccount.com"
    );
    assert_eq!(our_claims["scope"], CLOUD_PLATFORM_SCOPE);
    assert_eq!(our_claims["iat"], T);
    assert_eq!(our_claims["exp"], T + 3600);
}

async fn serve(app: axum::Router) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (port, h)
}

fn json_response(
    status: StatusCode,
    v: Value,
) -> (StatusCode, [(http::HeaderName, &'static str); 1], String) {
    (status, [(CONTENT_TYPE, "application/json")], v.to_string())
}

fn vertex_request() -> OutgoingRequest {
    OutgoingRequest {
        method: Method::POST,
        scheme: "https".into(),
        authority: "us-east5-aiplatform.googleapis.com".into(),
        path: "/publishers/anthropic/models/claude-3-5-haiku@20241022:rawPredict".into(),
        headers: HeaderMap::new(),
        body: Bytes::new(),
    }
}

#[tokio::test]
async fn service_account_key_exchanges_assertion_for_token() {
    let Some(python) = common::python("service_account_key_exchanges_assertion_for_token") else {
        return;
    };
    // Reserve the stub's address first: the key's token_uri must point at it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let token_uri = format!("http://127.0.0.1:{port}/token");
    let made = common::run_py(
        &python,
        "gcp_jwt.py",
        &json!({"mode": "make", "time": T, "token_uri": token_uri}),
    );
    let public_pem = made["public_pem"].as_str().unwrap().to_owned();
    let aud = token_uri.clone();
    let app = axum::Router::new().route(
        "/token",
        post(move |body: String| {
            let public_pem = public_pem.clone();
            let aud = aud.clone();
            async move {
                let form: Vec<(String, String)> = body
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.replace("%3A", ":")))
                    .collect();
                let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                if get("grant_type").as_deref() != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
                    return json_response(StatusCode::BAD_REQUEST, json!({"error": "unsupported_grant_type"}));
                }
                let (_, claims) = claims_of(&get("assertion").unwrap(), &public_pem, &aud);
                assert_eq!(claims["scope"], CLOUD_PLATFORM_SCOPE);
                json_response(
                    StatusCode::OK,
                    json!({"access_token": "ya29.from-sa", "expires_in": 3599, "token_type": "Bearer"}),
                )
            }
        }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let sa_file = dir.path().join("service_account.json");
    std::fs::write(&sa_file, made["sa_json"].as_str().unwrap()).unwrap();
    let p = Rotating::new(Arc::new(GcpProvider::new(
        "ns/gcp-sa",
        GcpConfig {
            project: "aigw-test".into(),
            region: "us-east5".into(),
            source: GcpCredentialSource::ServiceAccountKey(KeySource::file(&sa_file)),
        },
    )));
    let c = p.credential().await.unwrap();
    assert!(matches!(&c.material, CredentialMaterial::Token(t) if t.expose() == "ya29.from-sa"));
    let mut r = vertex_request();
    p.apply(&c, &mut r).unwrap();
    assert_eq!(r.headers["authorization"], "Bearer ya29.from-sa");
    assert_eq!(
        r.path,
        "/v1/projects/aigw-test/locations/us-east5/publishers/anthropic/models/claude-3-5-haiku@20241022:rawPredict"
    );
    server.abort();
}

/// Google STS and iamcredentials, checking the fields their REST references document.
fn wif_stub(expect_subject: &'static str) -> axum::Router {
    axum::Router::new()
        .route(
            "/v1/token",
            post(move |headers: HeaderMap, body: String| async move {
                let v: Value = serde_json::from_str(&body).unwrap_or_default();
                let ok = headers.get(CONTENT_TYPE).is_some_and(|c| c == "application/json")
                    && v["grantType"] == "urn:ietf:params:oauth:grant-type:token-exchange"
                    && v["audience"] == "//iam.googleapis.com/projects/wif-proj/locations/global/workloadIdentityPools/aigw-pool/providers/aigw-oidc"
                    && v["scope"] == CLOUD_PLATFORM_SCOPE
                    && v["requestedTokenType"] == "urn:ietf:params:oauth:token-type:access_token"
                    && v["subjectTokenType"] == "urn:ietf:params:oauth:token-type:jwt"
                    && v["subjectToken"] == expect_subject;
                if ok {
                    json_response(StatusCode::OK, json!({
                        "access_token": "federated-token",
                        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                        "token_type": "Bearer",
                        "expires_in": 3600
                    }))
                } else {
                    json_response(StatusCode::BAD_REQUEST, json!({"error": "invalid_request", "error_description": "unexpected token exchange request"}))
                }
            }),
        )
        .route(
            "/v1/projects/-/serviceAccounts/{target}",
            post(|Path(target): Path<String>, headers: HeaderMap, body: String| async move {
                let v: Value = serde_json::from_str(&body).unwrap_or_default();
                let ok = target == "vertex-sa@wif-proj.iam.gserviceaccount.com:generateAccessToken"
                    && headers.get("authorization").is_some_and(|a| a == "Bearer federated-token")
                    && v["scope"] == json!([CLOUD_PLATFORM_SCOPE])
                    && v["lifetime"] == "3600s";
                if ok {
                    json_response(StatusCode::OK, json!({
                        "accessToken": "ya29.impersonated",
                        "expireTime": "2030-01-01T00:00:00Z"
                    }))
                } else {
                    json_response(StatusCode::FORBIDDEN, json!({"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "bad impersonation request"}}))
                }
            }),
        )
}

fn wif_config(port: u16, service_account: Option<&str>) -> GcpConfig {
    GcpConfig {
        project: "vertex-proj".into(),
        region: "europe-west4".into(),
        source: GcpCredentialSource::WorkloadIdentity(Box::new(WorkloadIdentityConfig {
            project_id: "wif-proj".into(),
            pool: "aigw-pool".into(),
            provider: "aigw-oidc".into(),
            subject_token: SubjectToken::Token(KeySource::value("eyJ.subject.sig")),
            service_account: service_account.map(Into::into),
            sts_endpoint: Some(format!("http://127.0.0.1:{port}/v1/token")),
            iam_endpoint: Some(format!("http://127.0.0.1:{port}")),
        })),
    }
}

#[tokio::test]
async fn workload_identity_exchange_and_impersonation() {
    let (port, server) = serve(wif_stub("eyJ.subject.sig")).await;
    let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_secs(T)));

    let p = GcpProvider::new("ns/gcp-wif", wif_config(port, Some("vertex-sa")))
        .with_clock(clock.clone());
    let c = p.credential().await.unwrap();
    assert!(
        matches!(&c.material, CredentialMaterial::Token(t) if t.expose() == "ya29.impersonated")
    );
    assert_eq!(
        c.expires_at,
        Some(UNIX_EPOCH + Duration::from_secs(1_893_456_000))
    );
    let mut r = vertex_request();
    p.apply(&c, &mut r).unwrap();
    assert!(
        r.path
            .starts_with("/v1/projects/vertex-proj/locations/europe-west4/publishers/")
    );

    // Without impersonation the federated token itself is used.
    let p = GcpProvider::new("ns/gcp-wif", wif_config(port, None)).with_clock(clock.clone());
    let c = p.credential().await.unwrap();
    assert!(matches!(&c.material, CredentialMaterial::Token(t) if t.expose() == "federated-token"));
    assert_eq!(
        c.expires_at,
        Some(UNIX_EPOCH + Duration::from_secs(T + 3600))
    );

    // A refused impersonation surfaces Google's status, naming the policy.
    let p = GcpProvider::new("ns/gcp-wif", wif_config(port, Some("other-sa")));
    let e = p.credential().await.unwrap_err().to_string();
    assert!(
        e.contains("ns/gcp-wif") && e.contains("PERMISSION_DENIED"),
        "{e}"
    );
    assert!(!e.contains("federated-token"), "{e}");
    server.abort();
}

#[tokio::test]
async fn metadata_server_token() {
    let app = axum::Router::new().route(
        "/computeMetadata/v1/instance/service-accounts/default/token",
        get(|headers: HeaderMap| async move {
            if headers.get("metadata-flavor").is_some_and(|v| v == "Google") {
                json_response(StatusCode::OK, json!({"access_token": "ya29.metadata", "expires_in": 1800, "token_type": "Bearer"}))
            } else {
                json_response(StatusCode::FORBIDDEN, json!({"error": "missing Metadata-Flavor"}))
            }
        }),
    );
    let (port, server) = serve(app).await;
    let p = GcpProvider::new(
        "ns/gcp-md",
        GcpConfig {
            project: "p".into(),
            region: "us-central1".into(),
            source: GcpCredentialSource::MetadataServer {
                endpoint: Some(format!("http://127.0.0.1:{port}")),
            },
        },
    );
    let before = SystemTime::now();
    let c = p.credential().await.unwrap();
    assert!(matches!(&c.material, CredentialMaterial::Token(t) if t.expose() == "ya29.metadata"));
    let exp = c.expires_at.unwrap();
    assert!(
        exp >= before + Duration::from_secs(1800)
            && exp <= SystemTime::now() + Duration::from_secs(1800)
    );
    server.abort();
}

/// STS for a Kubernetes cluster's pool: records the subject tokens it exchanges, and can
/// be taken down (503).
fn k8s_sts(
    down: Arc<std::sync::atomic::AtomicBool>,
    subjects: Arc<std::sync::Mutex<Vec<String>>>,
) -> axum::Router {
    use std::sync::atomic::Ordering;
    axum::Router::new().route(
        "/v1/token",
        post(move |body: String| {
            let (down, subjects) = (down.clone(), subjects.clone());
            async move {
                if down.load(Ordering::SeqCst) {
                    return json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "unavailable"}));
                }
                let v: Value = serde_json::from_str(&body).unwrap_or_default();
                assert_eq!(
                    v["audience"],
                    "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/k8s-pool/providers/k8s"
                );
                assert_eq!(v["subjectTokenType"], "urn:ietf:params:oauth:token-type:jwt");
                let mut s = subjects.lock().unwrap();
                s.push(v["subjectToken"].as_str().unwrap().to_owned());
                json_response(StatusCode::OK, json!({
                    "access_token": format!("fed-{}", s.len()),
                    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                    "token_type": "Bearer",
                    "expires_in": 3600
                }))
            }
        }),
    )
}

/// On Kubernetes: `GOOGLE_APPLICATION_CREDENTIALS` names an `external_account`
/// configuration whose subject token is the pod's projected service-account token.
/// The token file is re-read on each exchange (the kubelet rotates it); an STS outage
/// keeps the last access token in use until it expires, then fails with an error naming
/// the policy; STS back, the next refresh recovers.
#[tokio::test]
async fn external_account_from_a_projected_token_rotates_through_an_sts_outage() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let down = Arc::new(AtomicBool::new(false));
    let subjects = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (port, server) = serve(k8s_sts(down.clone(), subjects.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "sa-token-1\n").unwrap();
    let config = dir.path().join("gcp-wif.json");
    std::fs::write(
        &config,
        json!({
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/k8s-pool/providers/k8s",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": format!("http://127.0.0.1:{port}/v1/token"),
            "credential_source": { "file": token, "format": { "type": "text" } }
        })
        .to_string(),
    )
    .unwrap();
    let source = aigw_auth::application_credentials("ns/gcp", config.clone()).unwrap();
    assert!(
        matches!(source, GcpCredentialSource::WorkloadIdentity(_)),
        "{source:?}"
    );

    let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_secs(T)));
    let provider = GcpProvider::new(
        "ns/gcp",
        GcpConfig {
            project: "p".into(),
            region: "us-central1".into(),
            source,
        },
    )
    .with_clock(clock.clone());
    let rot = Rotating::new(Arc::new(provider)).with_clock(clock.clone());
    assert_eq!(common::bearer_of(&rot.credential().await.unwrap()), "fed-1");

    // The kubelet rotates the token; STS goes down.
    std::fs::write(&token, "sa-token-2\n").unwrap();
    down.store(true, Ordering::SeqCst);
    common::outage_until_expiry_then_recovery(
        &rot,
        &clock,
        || down.store(false, Ordering::SeqCst),
        ("fed-1", "fed-2", "ns/gcp"),
    )
    .await;
    assert_eq!(*subjects.lock().unwrap(), ["sa-token-1", "sa-token-2"]);
    server.abort();
}

#[test]
fn external_account_configurations_are_checked() {
    let cfg = |v: Value| WorkloadIdentityConfig::from_external_account(&v.to_string());
    let base = json!({
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k",
        "token_url": "https://sts.googleapis.com/v1/token",
        "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@proj.iam.gserviceaccount.com:generateAccessToken",
        "credential_source": { "file": "/var/run/secrets/tokens/gcp" }
    });
    let c = cfg(base.clone()).unwrap();
    assert_eq!(c.audience(), base["audience"].as_str().unwrap());
    assert_eq!(
        c.service_account_email().as_deref(),
        Some("sa@proj.iam.gserviceaccount.com")
    );
    assert_eq!(
        c.iam_endpoint.as_deref(),
        Some("https://iamcredentials.googleapis.com")
    );
    let mut url = base.clone();
    url["credential_source"] = json!({ "url": "http://169.254.169.254/token" });
    assert!(cfg(url).unwrap_err().contains("credential_source.file"));
    let mut json_format = base.clone();
    json_format["credential_source"]["format"] =
        json!({ "type": "json", "subject_token_field_name": "t" });
    assert!(cfg(json_format).unwrap_err().contains("not supported"));
    let mut aud = base;
    aud["audience"] = json!("//iam.googleapis.com/locations/global/workforcePools/w/providers/k");
    assert!(
        cfg(aud)
            .unwrap_err()
            .contains("not a workload identity pool provider")
    );
}
