//! SigV4 signatures must equal botocore's `SigV4Auth` for the same request and instant.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

mod common;

use aigw_auth::ManualClock;
use aigw_auth::aws::{AwsCredentialSource, SigV4Config, SigV4Provider};
use aigw_core::{CredentialProvider, OutgoingRequest, Secret};
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

// 2026-01-02T03:04:05Z
const T: u64 = 1_767_323_045;
const AMZ_DATE: &str = "20260102T030405Z";

struct Case {
    name: &'static str,
    authority: &'static str,
    path: &'static str,
    body: &'static str,
    session_token: Option<&'static str>,
    expect_region: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "converse, model id with colon, long-term keys",
            authority: "bedrock-runtime.us-east-1.amazonaws.com",
            path: "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
            body: r#"{"messages":[{"role":"user","content":[{"text":"hi"}]}],"inferenceConfig":{"maxTokens":16}}"#,
            session_token: None,
            expect_region: "us-east-1",
        },
        Case {
            name: "converse-stream with session token",
            authority: "bedrock-runtime.us-east-1.amazonaws.com",
            path: "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream",
            body: r#"{"messages":[{"role":"user","content":[{"text":"stream please \u00e9"}]}]}"#,
            session_token: Some("FwoGZXIvYXdzEDEaDTESTSESSIONTOKEN//+=="),
            expect_region: "us-east-1",
        },
        Case {
            name: "region taken from the dialled host, not the configured one",
            authority: "bedrock-runtime.eu-west-3.amazonaws.com",
            path: "/model/mistral.mistral-large-2402-v1%3A0/converse",
            body: "{}",
            session_token: Some("tok"),
            expect_region: "eu-west-3",
        },
        Case {
            name: "model id without colon, inference profile ARN-like id",
            authority: "bedrock-runtime-fips.us-west-2.amazonaws.com",
            path: "/model/us.amazon.nova-lite-v1%3A0/converse",
            body: "",
            session_token: None,
            expect_region: "us-west-2",
        },
        Case {
            name: "custom endpoint with port and a query string: configured region",
            authority: "bedrock-proxy.internal:8443",
            path: "/model/amazon.titan-embed-text-v2%3A0/invoke?trace=ENABLED&x-id=a%20b",
            body: r#"{"inputText":"hello"}"#,
            session_token: None,
            expect_region: "us-east-1",
        },
    ]
}

fn request(c: &Case) -> OutgoingRequest {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("content-length", HeaderValue::from(c.body.len()));
    // A stale client header must be replaced, never signed or forwarded.
    headers.insert(
        "authorization",
        HeaderValue::from_static("Bearer client-key"),
    );
    OutgoingRequest {
        method: Method::POST,
        scheme: "https".into(),
        authority: c.authority.into(),
        path: c.path.into(),
        headers,
        body: Bytes::from_static(c.body.as_bytes()),
    }
}

#[tokio::test]
async fn signatures_match_botocore() {
    let Some(python) = common::python("signatures_match_botocore") else {
        return;
    };
    let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_secs(T)));
    let mut ours = Vec::new();
    let mut inputs = Vec::new();
    for c in cases() {
        let provider = SigV4Provider::new(
            "default/aws",
            SigV4Config::new(
                "us-east-1",
                AwsCredentialSource::Static {
                    access_key_id: Secret::new("AKIDEXAMPLE"),
                    secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                    session_token: c.session_token.map(Secret::new),
                },
            ),
        )
        .with_clock(clock.clone());
        let cred = provider.credential().await.unwrap();
        let mut req = request(&c);
        provider.apply(&cred, &mut req).unwrap();
        // The wire path is untouched: `:` stays `%3A` exactly once.
        assert_eq!(req.path, c.path, "{}", c.name);
        ours.push(req);
        inputs.push(json!({
            "method": "POST",
            "url": format!("https://{}{}", c.authority, c.path),
            "body_b64": base64::engine::general_purpose::STANDARD.encode(c.body),
            "access_key": "AKIDEXAMPLE",
            "secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "token": c.session_token,
            "region": c.expect_region,
            "service": "bedrock",
            "time": AMZ_DATE,
        }));
    }
    let theirs = common::run_py(&python, "sigv4_sign.py", &json!(inputs));
    for ((c, req), want) in cases().iter().zip(&ours).zip(theirs.as_array().unwrap()) {
        let got_auth = req.headers["authorization"].to_str().unwrap();
        assert_eq!(
            got_auth,
            want["Authorization"].as_str().unwrap(),
            "{}",
            c.name
        );
        assert!(req.headers["authorization"].is_sensitive());
        assert_eq!(req.headers["x-amz-date"], AMZ_DATE, "{}", c.name);
        assert!(
            got_auth.contains(&format!("/{}/bedrock/aws4_request", c.expect_region)),
            "{}: {got_auth}",
            c.name
        );
        match c.session_token {
            Some(t) => {
                assert_eq!(req.headers["x-amz-security-token"], t);
                assert_eq!(want["X-Amz-Security-Token"].as_str(), Some(t));
                assert!(got_auth.contains("SignedHeaders=host;x-amz-date;x-amz-security-token,"));
            }
            None => {
                assert!(req.headers.get("x-amz-security-token").is_none());
                assert!(
                    got_auth.contains("SignedHeaders=host;x-amz-date,"),
                    "{got_auth}"
                );
            }
        }
        // content-length stays on the request but is not signed.
        assert!(req.headers.contains_key("content-length"));
    }
}

#[tokio::test]
async fn signing_the_raw_colon_would_differ() {
    // Guards the double-encoding: a path with a raw `:` signs differently from `%3A`.
    let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_secs(T)));
    let provider = SigV4Provider::new(
        "default/aws",
        SigV4Config::new(
            "us-east-1",
            AwsCredentialSource::Static {
                access_key_id: Secret::new("AKIDEXAMPLE"),
                secret_access_key: Secret::new("secret"),
                session_token: None,
            },
        ),
    )
    .with_clock(clock);
    let cred = provider.credential().await.unwrap();
    let mut encoded = request(&cases()[0]);
    let mut raw = request(&cases()[0]);
    raw.path = raw.path.replace("%3A", ":");
    provider.apply(&cred, &mut encoded).unwrap();
    provider.apply(&cred, &mut raw).unwrap();
    assert_ne!(
        encoded.headers["authorization"],
        raw.headers["authorization"]
    );
}
