//! Every provider, at trace log level, against local stub endpoints: no secret value may
//! appear in captured logs, error messages or Debug output.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use aigw_auth::aws::{AwsCredentialSource, SigV4Config, SigV4Provider};
use aigw_auth::azure::{AzureClientAuth, AzureConfig, AzureProvider};
use aigw_auth::gcp::{
    GcpConfig, GcpCredentialSource, GcpProvider, SubjectToken, WorkloadIdentityConfig,
};
use aigw_auth::{
    ApiKeyProvider, CredentialOverride, KeySource, ManualClock, OidcClientCredentials,
    OverrideKind, Rotating,
};
use aigw_core::{Credential, CredentialProvider, OutgoingRequest, Secret};
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header::CONTENT_TYPE};
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const API_KEY: &str = "sk-value-key-111";
const FILE_KEY: &str = "sk-file-key-222";
const OVERRIDE_KEY: &str = "sk-override-333";
const AWS_AKID: &str = "AKIAREDACTIONSTATIC";
const AWS_SECRET: &str = "awsStaticSecret444";
const AWS_SESSION: &str = "awsStaticSession555";
const AWS_FILE_SECRET: &str = "awsFileSecret666";
const WEB_IDENTITY: &str = "web-identity-token-777";
const OIDC_SECRET: &str = "oidc-client-secret-888";
const OIDC_TOKEN: &str = "oidc-access-token-789";
const STS_AKID: &str = "ASIAREDACTIONSTSKEY";
const STS_SECRET: &str = "stsSecretKeyValue123";
const STS_SESSION: &str = "stsSessionTokenValue456";
const ENTRA_SECRET: &str = "entra-client-secret-999";
const ENTRA_WRONG: &str = "entra-wrong-secret-000";
const ENTRA_TOKEN: &str = "entra-access-token-abc";
const SA_TOKEN: &str = "ya29.sa-token-def";
const WIF_SUBJECT: &str = "wif-subject-token-aaa";
const FEDERATED: &str = "federated-token-ghi";
const IMPERSONATED: &str = "ya29.impersonated-jkl";
const METADATA_TOKEN: &str = "ya29.metadata-mno";
const CONTAINER_AUTH: &str = "pod-identity-token-ppp";
const MD_SECRET: &str = "mdSecretAccessKeyQqq";
const MD_SESSION: &str = "mdSessionTokenRrr";
const IMDS_SESSION: &str = "imds-session-sss";
const MD_CREDS: &str = r#"{"AccessKeyId":"ASIAREDACTIONMETA","SecretAccessKey":"mdSecretAccessKeyQqq","Token":"mdSessionTokenRrr","Expiration":"2099-01-01T00:00:00Z"}"#;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn json_ok(v: serde_json::Value) -> (StatusCode, [(http::HeaderName, &'static str); 1], String) {
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
}

/// Every token endpoint in one stub. Error answers echo the request body, as careless
/// servers do, to prove error summaries never carry it along.
fn stub() -> axum::Router {
    axum::Router::new()
        .route(
            "/sts",
            post(|body: String| async move {
                if !body.contains(WEB_IDENTITY) && !body.contains(OIDC_TOKEN) {
                    return (StatusCode::BAD_REQUEST, format!("<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>bad</Message><Echo>{body}</Echo></Error></ErrorResponse>"));
                }
                (StatusCode::OK, format!(
                    "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>\
                     <AccessKeyId>{STS_AKID}</AccessKeyId><SecretAccessKey>{STS_SECRET}</SecretAccessKey>\
                     <SessionToken>{STS_SESSION}</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration>\
                     </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
                ))
            }),
        )
        .route(
            "/oidc/token",
            post(|| async { json_ok(json!({"access_token": OIDC_TOKEN, "token_type": "Bearer", "expires_in": 300})) }),
        )
        .route(
            "/tenant/oauth2/v2.0/token",
            post(|body: String| async move {
                if body.contains(ENTRA_SECRET) {
                    json_ok(json!({"access_token": ENTRA_TOKEN, "token_type": "Bearer", "expires_in": 3599}))
                } else {
                    (StatusCode::UNAUTHORIZED, [(CONTENT_TYPE, "application/json")],
                     json!({"error": "invalid_client", "error_description": "AADSTS7000215", "echo": body}).to_string())
                }
            }),
        )
        .route(
            "/google/token",
            post(|| async { json_ok(json!({"access_token": SA_TOKEN, "expires_in": 3599})) }),
        )
        .route(
            "/v1/token",
            post(|| async { json_ok(json!({"access_token": FEDERATED, "expires_in": 3600, "token_type": "Bearer"})) }),
        )
        .route(
            "/v1/projects/-/serviceAccounts/{t}",
            post(|| async { json_ok(json!({"accessToken": IMPERSONATED, "expireTime": "2099-01-01T00:00:00Z"})) }),
        )
        .route(
            "/computeMetadata/v1/instance/service-accounts/default/token",
            get(|| async { json_ok(json!({"access_token": METADATA_TOKEN, "expires_in": 600})) }),
        )
        .route("/container", get(|| async { MD_CREDS }))
        .route("/latest/api/token", axum::routing::put(|| async { IMDS_SESSION }))
        .route(
            "/latest/meta-data/iam/security-credentials/",
            get(|| async { "role" }),
        )
        .route(
            "/latest/meta-data/iam/security-credentials/role",
            get(|| async { MD_CREDS }),
        )
        .route(
            "/down",
            post(|body: String| async move { (StatusCode::INTERNAL_SERVER_ERROR, body) }),
        )
}

fn request(authority: &str) -> OutgoingRequest {
    let mut headers = HeaderMap::new();
    // Every provider gets the caller's override header; only the override wrapper uses
    // it, and it must come out sensitive or stripped.
    let mut over = HeaderValue::from_static(OVERRIDE_KEY);
    over.set_sensitive(true);
    headers.insert("x-aigw-api-key", over);
    OutgoingRequest {
        method: Method::POST,
        scheme: "https".into(),
        authority: authority.into(),
        path: "/model/m%3A0/converse".into(),
        headers,
        body: Bytes::from_static(b"{}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_errors_or_debug_output() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server = tokio::spawn(async move { axum::serve(listener, stub()).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{FILE_KEY}\n")).unwrap();
    let aws_file = dir.path().join("credentials");
    std::fs::write(
        &aws_file,
        format!("[prod]\naws_access_key_id = AKIAREDACTIONFILE\naws_secret_access_key = {AWS_FILE_SECRET}\n"),
    )
    .unwrap();
    let pem = include_str!("fixtures/test-rsa-key.pem");
    let sa_json = json!({
        "type": "service_account",
        "client_email": "sa@p.iam.gserviceaccount.com",
        "private_key_id": "kid1",
        "private_key": pem,
        "token_uri": format!("{base}/google/token"),
    })
    .to_string();
    let oidc = OidcClientCredentials {
        token_endpoint: format!("{base}/oidc/token"),
        issuer: None,
        client_id: "client".into(),
        client_secret: Secret::new(OIDC_SECRET),
        scopes: vec!["openid".into()],
        audience: Some("sts.amazonaws.com".into()),
        secret_in_body: false,
    };
    let sigv4 = |source: AwsCredentialSource| {
        let mut c = SigV4Config::new("us-east-1", source);
        c.sts_endpoint = Some(format!("{base}/sts"));
        Arc::new(SigV4Provider::new("ns/aws", c)) as Arc<dyn CredentialProvider>
    };
    let azure = |secret: &str| {
        let mut c = AzureConfig::new(
            "tenant",
            "client",
            AzureClientAuth::ClientSecret(KeySource::value(secret)),
        );
        c.authority = base.clone();
        Arc::new(AzureProvider::new("ns/azure", c)) as Arc<dyn CredentialProvider>
    };
    let wif = |sa: Option<&str>| WorkloadIdentityConfig {
        project_id: "p".into(),
        pool: "pool".into(),
        provider: "prov".into(),
        subject_token: SubjectToken::Token(KeySource::value(WIF_SUBJECT)),
        service_account: sa.map(Into::into),
        sts_endpoint: Some(format!("{base}/v1/token")),
        iam_endpoint: Some(base.clone()),
    };
    let gcp = |source: GcpCredentialSource| {
        Arc::new(GcpProvider::new(
            "ns/gcp",
            GcpConfig {
                project: "p".into(),
                region: "r".into(),
                source,
            },
        )) as Arc<dyn CredentialProvider>
    };

    let providers: Vec<Arc<dyn CredentialProvider>> = vec![
        Arc::new(ApiKeyProvider::bearer("ns/k1", KeySource::value(API_KEY))),
        Arc::new(ApiKeyProvider::azure("ns/k2", KeySource::file(&key_file))),
        Arc::new(ApiKeyProvider::anthropic(
            "ns/k3",
            KeySource::value(API_KEY),
        )),
        Arc::new(CredentialOverride::new(
            Arc::new(ApiKeyProvider::bearer("ns/k4", KeySource::value(API_KEY))),
            OverrideKind::ApiKey,
        )),
        sigv4(AwsCredentialSource::Static {
            access_key_id: Secret::new(AWS_AKID),
            secret_access_key: Secret::new(AWS_SECRET),
            session_token: Some(Secret::new(AWS_SESSION)),
        }),
        sigv4(AwsCredentialSource::SharedFile {
            source: KeySource::file(&aws_file),
            profile: "prod".into(),
        }),
        sigv4(AwsCredentialSource::WebIdentity {
            token: KeySource::value(WEB_IDENTITY),
            role_arn: "arn:aws:iam::1:role/r".into(),
            session_name: "s".into(),
        }),
        sigv4(AwsCredentialSource::OidcExchange {
            oidc: oidc.clone(),
            role_arn: "arn:aws:iam::1:role/r".into(),
            session_name: "s".into(),
        }),
        sigv4(AwsCredentialSource::ContainerEndpoint {
            uri: format!("{base}/container"),
            auth: Some(KeySource::value(CONTAINER_AUTH)),
        }),
        sigv4(AwsCredentialSource::InstanceMetadata {
            endpoint: Some(base.clone()),
        }),
        azure(ENTRA_SECRET),
        Arc::new(Rotating::new(azure(ENTRA_SECRET))),
        gcp(GcpCredentialSource::ServiceAccountKey(KeySource::value(
            sa_json.as_str(),
        ))),
        gcp(GcpCredentialSource::WorkloadIdentity(Box::new(wif(Some(
            "sa",
        ))))),
        gcp(GcpCredentialSource::WorkloadIdentity(Box::new(wif(None)))),
        gcp(GcpCredentialSource::MetadataServer {
            endpoint: Some(base.clone()),
        }),
    ];
    let failing: Vec<Arc<dyn CredentialProvider>> = vec![
        azure(ENTRA_WRONG),
        sigv4(AwsCredentialSource::WebIdentity {
            token: KeySource::value("not-accepted-token-zzz"),
            role_arn: "r".into(),
            session_name: "s".into(),
        }),
        {
            let mut c = SigV4Config::new(
                "us-east-1",
                AwsCredentialSource::WebIdentity {
                    token: KeySource::value(WEB_IDENTITY),
                    role_arn: "r".into(),
                    session_name: "s".into(),
                },
            );
            // Answers 500 echoing the form (the token included) back.
            c.sts_endpoint = Some(format!("{base}/down"));
            Arc::new(SigV4Provider::new("ns/aws-down", c))
        },
        Arc::new(
            CredentialOverride::new(
                Arc::new(ApiKeyProvider::bearer("ns/k5", KeySource::value(API_KEY))),
                OverrideKind::Aws,
            )
            .fallback_to_configured(false),
        ),
    ];

    let mut seen = String::new();
    let mut successes = 0;
    for p in providers.iter().chain(&failing) {
        seen.push_str(&format!("{p:?}\n"));
        match p.credential().await {
            Ok(c) => {
                seen.push_str(&format!("{c:?} {:?}\n", c.material));
                let mut r = request("bedrock-runtime.us-east-1.amazonaws.com");
                match p.apply(&c, &mut r) {
                    Ok(()) => successes += 1,
                    Err(e) => seen.push_str(&format!("{e} {e:?}\n")),
                }
                seen.push_str(&format!("{r:?}\n"));
            }
            Err(e) => seen.push_str(&format!(
                "{e} {e:?} {}\n",
                String::from_utf8_lossy(&e.to_body(aigw_core::ClientApi::OpenAI))
            )),
        }
    }
    // Partial AWS override: 401, message without the value.
    let over = &failing[3];
    let mut r = request("bedrock-runtime.us-east-1.amazonaws.com");
    r.headers.insert(
        "x-aigw-aws-secret-access-key",
        HeaderValue::from_static(AWS_SECRET),
    );
    let e = over
        .apply(
            &Credential::long_lived(aigw_core::CredentialMaterial::None),
            &mut r,
        )
        .unwrap_err();
    assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
    seen.push_str(&format!("{e} {e:?} {r:?}\n"));

    // Rotation past expiry with the endpoint down.
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let rot = Rotating::new(azure(ENTRA_SECRET)).with_clock(clock.clone());
    rot.credential().await.unwrap();
    clock.advance(Duration::from_secs(7200));
    server.abort();
    let e = rot.credential().await.unwrap_err();
    assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
    seen.push_str(&format!("{e} {e:?} {rot:?}\n"));

    assert_eq!(successes, providers.len(), "every provider worked:\n{seen}");
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "trace logging captured nothing"
    );
    let all = format!("{logs}\n{seen}");
    let pem_line = pem.lines().nth(3).unwrap();
    let secrets = [
        API_KEY,
        FILE_KEY,
        OVERRIDE_KEY,
        AWS_AKID,
        AWS_SECRET,
        AWS_SESSION,
        AWS_FILE_SECRET,
        WEB_IDENTITY,
        OIDC_SECRET,
        OIDC_TOKEN,
        STS_AKID,
        STS_SECRET,
        STS_SESSION,
        ENTRA_SECRET,
        ENTRA_WRONG,
        ENTRA_TOKEN,
        SA_TOKEN,
        WIF_SUBJECT,
        FEDERATED,
        IMPERSONATED,
        METADATA_TOKEN,
        "not-accepted-token-zzz",
        pem_line,
        CONTAINER_AUTH,
        MD_SECRET,
        MD_SESSION,
        IMDS_SESSION,
        "ASIAREDACTIONMETA",
    ];
    let leaks: Vec<&str> = secrets
        .iter()
        .copied()
        .filter(|s| all.contains(s))
        .collect();
    assert!(leaks.is_empty(), "leaked {leaks:?}");
    // The failures are reported, naming their policy.
    assert!(
        seen.contains("ns/azure") && seen.contains("invalid_client"),
        "{seen}"
    );
    assert!(seen.contains("InvalidIdentityToken"), "{seen}");
    assert!(seen.contains("ns/aws-down"), "{seen}");
}
