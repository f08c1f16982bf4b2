//! `provider_for`: resolved BackendSecurityPolicies become the right provider stack.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use aigw_auth::{AuthOptions, provider_for};
use aigw_core::config::{
    AzureAuth, CredentialOverrideSource, GcpAuth, ResolvedCredentialOverride,
    ResolvedSecurityPolicy, SecurityPolicyKind,
};
use aigw_core::{CredentialProvider, OutgoingRequest, Secret};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

fn policy(
    kind: SecurityPolicyKind,
    over: Option<ResolvedCredentialOverride>,
) -> ResolvedSecurityPolicy {
    ResolvedSecurityPolicy {
        name: "team/policy".into(),
        kind,
        credential_override: over,
    }
}

fn request(authority: &str, path: &str) -> OutgoingRequest {
    OutgoingRequest {
        method: Method::POST,
        scheme: "https".into(),
        authority: authority.into(),
        path: path.into(),
        headers: HeaderMap::new(),
        body: Bytes::from_static(b"{}"),
    }
}

async fn applied(
    p: &dyn CredentialProvider,
    mut r: OutgoingRequest,
) -> aigw_core::Result<OutgoingRequest> {
    let c = p.credential().await?;
    p.apply(&c, &mut r)?;
    Ok(r)
}

#[tokio::test]
async fn api_key_types_write_their_headers_and_do_not_rotate() {
    let opts = AuthOptions::default();
    for (kind, header, value) in [
        (
            SecurityPolicyKind::APIKey {
                key: Secret::new("k1"),
            },
            "authorization",
            "Bearer k1",
        ),
        (
            SecurityPolicyKind::AzureAPIKey {
                key: Secret::new("k2"),
            },
            "api-key",
            "k2",
        ),
        (
            SecurityPolicyKind::AnthropicAPIKey {
                key: Secret::new("k3"),
            },
            "x-api-key",
            "k3",
        ),
    ] {
        let p = provider_for(&policy(kind, None), &opts).unwrap();
        assert_eq!(p.name(), "team/policy");
        assert!(!format!("{p:?}").contains("Rotating"));
        let r = applied(&*p, request("api.example.com", "/v1/chat/completions"))
            .await
            .unwrap();
        assert_eq!(r.headers[header], value);
    }
}

#[tokio::test]
async fn override_without_fallback_requires_the_header() {
    let over = ResolvedCredentialOverride {
        source: CredentialOverrideSource::RequestHeader("x-aigw-anthropic-api-key".into()),
        fallback_to_configured: false,
    };
    let p = provider_for(
        &policy(
            SecurityPolicyKind::AnthropicAPIKey {
                key: Secret::new("configured"),
            },
            Some(over),
        ),
        &AuthOptions::default(),
    )
    .unwrap();
    let e = applied(&*p, request("api.anthropic.com", "/v1/messages"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
    let mut r = request("api.anthropic.com", "/v1/messages");
    r.headers.insert(
        "x-aigw-anthropic-api-key",
        HeaderValue::from_static("caller"),
    );
    let r = applied(&*p, r).await.unwrap();
    assert_eq!(r.headers["x-api-key"], "caller");
    assert!(!r.headers.contains_key("x-aigw-anthropic-api-key"));
}

#[tokio::test]
async fn aws_credentials_file_signs_with_its_profile_and_rotates() {
    let p = provider_for(
        &policy(
            SecurityPolicyKind::AWSCredentials {
                region: "us-west-2".into(),
                credentials_file: Some(Secret::new(
                    "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = a\n[bedrock]\naws_access_key_id = AKIABEDROCK\naws_secret_access_key = b\n",
                )),
                profile: "bedrock".into(),
                oidc_exchange: None,
            },
            None,
        ),
        &AuthOptions::default(),
    )
    .unwrap();
    assert!(format!("{p:?}").contains("Rotating"));
    let r = applied(
        &*p,
        request(
            "bedrock-runtime.us-west-2.amazonaws.com",
            "/model/m/converse",
        ),
    )
    .await
    .unwrap();
    let auth = r.headers["authorization"].to_str().unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIABEDROCK/"),
        "{auth}"
    );
    assert!(auth.contains("/us-west-2/bedrock/aws4_request"));
}

#[tokio::test]
async fn azure_and_gcp_token_types_rotate() {
    let opts = AuthOptions::default();
    let azure = provider_for(
        &policy(
            SecurityPolicyKind::AzureCredentials {
                client_id: "c".into(),
                tenant_id: "t".into(),
                auth: AzureAuth::ClientSecret(Secret::new("s")),
            },
            None,
        ),
        &opts,
    )
    .unwrap();
    let dbg = format!("{azure:?}");
    assert!(
        dbg.contains("Rotating") && dbg.contains("AzureProvider"),
        "{dbg}"
    );
    let gcp = provider_for(
        &policy(
            SecurityPolicyKind::GCPCredentials {
                project: Some("p".into()),
                region: Some("r".into()),
                auth: GcpAuth::ServiceAccountJson(Secret::new("{}")),
            },
            None,
        ),
        &opts,
    )
    .unwrap();
    assert!(format!("{gcp:?}").contains("Rotating"));
    // The key is not valid JSON for a service account: a clear 503, not a panic.
    let e = gcp.credential().await.unwrap_err();
    assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(e.to_string().contains("team/policy"), "{e}");
}

#[tokio::test]
async fn gcp_passthrough_takes_project_and_region_from_headers() {
    let p = provider_for(
        &policy(
            SecurityPolicyKind::GCPCredentials {
                project: None,
                region: None,
                auth: GcpAuth::Passthrough,
            },
            None,
        ),
        &AuthOptions::default(),
    )
    .unwrap();
    let mut r = request(
        "us-central1-aiplatform.googleapis.com",
        "/publishers/google/models/gemini-2.0-flash:generateContent",
    );
    r.headers.insert(
        "authorization",
        HeaderValue::from_static("Bearer caller-token"),
    );
    r.headers
        .insert("gcp-project", HeaderValue::from_static("caller-proj"));
    r.headers
        .insert("gcp-region", HeaderValue::from_static("us-central1"));
    let r = applied(&*p, r).await.unwrap();
    assert_eq!(r.headers["authorization"], "Bearer caller-token");
    assert_eq!(
        r.path,
        "/v1/projects/caller-proj/locations/us-central1/publishers/google/models/gemini-2.0-flash:generateContent"
    );
    assert!(!r.headers.contains_key("gcp-project"));
}

#[test]
fn dynamic_metadata_override_is_rejected_clearly() {
    let over = ResolvedCredentialOverride {
        source: CredentialOverrideSource::DynamicMetadata {
            namespace: "envoy.filters.http.ext_authz".into(),
            key: "x-aigw-api-key".into(),
        },
        fallback_to_configured: true,
    };
    let e = provider_for(
        &policy(
            SecurityPolicyKind::APIKey {
                key: Secret::new("k"),
            },
            Some(over),
        ),
        &AuthOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("fromDynamicMetadata"), "{e}");
}
