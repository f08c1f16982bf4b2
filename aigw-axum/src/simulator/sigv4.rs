//! SigV4 verification: recompute the request's signature and compare.
//!
//! The signature is recomputed with `aws-sigv4` over exactly what was received: the raw
//! (still percent-encoded) path, the headers the client listed in `SignedHeaders`, the
//! hash of the received body and the client's `x-amz-date`. AWS SDKs send a Bedrock
//! model id `…-v1:0` as `…-v1%3A0` and sign it double-encoded (`%253A`); signing the
//! raw path in `PercentEncodingMode::Double` reproduces exactly that.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4::SigningParams;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderMap, Method, Uri, header};
use time::PrimitiveDateTime;
use time::macros::format_description;

use super::AwsCredentials;

/// Why a request's SigV4 authentication was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SigV4Failure {
    /// No `Authorization` header (or not a SigV4 one).
    Missing,
    /// Unknown access key id or session token.
    Unrecognized,
    /// Credential scope names the wrong region or service.
    Scope(String),
    /// The recomputed signature differs.
    Signature,
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
struct AuthHeader<'a> {
    access_key: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Option<AuthHeader<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256")?.trim_start();
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed_headers = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let mut scope = credential?.split('/');
    let access_key = scope.next()?;
    let _date = scope.next()?;
    let region = scope.next()?;
    let service = scope.next()?;
    Some(AuthHeader {
        access_key,
        region,
        service,
        signed_headers: signed_headers?,
        signature: signature?,
    })
}

fn parse_amz_date(value: &str) -> Option<SystemTime> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    let dt = PrimitiveDateTime::parse(value, format).ok()?;
    Some(dt.assume_utc().into())
}

/// Verifies the request's SigV4 signature for service `bedrock`.
pub(crate) fn verify(
    aws: &AwsCredentials,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), SigV4Failure> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_authorization)
        .ok_or(SigV4Failure::Missing)?;
    if auth.access_key != aws.access_key_id {
        return Err(SigV4Failure::Unrecognized);
    }
    let token = headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok());
    if let Some(expected) = &aws.session_token
        && token != Some(expected.expose())
    {
        return Err(SigV4Failure::Unrecognized);
    }
    if auth.region != aws.region {
        return Err(SigV4Failure::Scope(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            auth.region
        )));
    }
    if auth.service != "bedrock" {
        return Err(SigV4Failure::Scope(format!(
            "Credential should be scoped to correct service: 'bedrock'. (scope names '{}')",
            auth.service
        )));
    }
    let time = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_amz_date)
        .ok_or(SigV4Failure::Signature)?;

    // The signer adds x-amz-date and the session token itself; everything else the
    // client signed is passed through as received.
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .ok_or(SigV4Failure::Signature)?;
    let mut signed = Vec::new();
    for name in auth.signed_headers.split(';') {
        match name {
            "x-amz-date" | "x-amz-security-token" => {}
            "host" => signed.push(("host", host)),
            _ => {
                let mut any = false;
                for value in headers.get_all(name) {
                    let value = value.to_str().map_err(|_| SigV4Failure::Signature)?;
                    signed.push((name, value));
                    any = true;
                }
                if !any {
                    return Err(SigV4Failure::Signature);
                }
            }
        }
    }
    let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let target = format!("http://simulator{path}");

    let identity: Identity = Credentials::new(
        aws.access_key_id.clone(),
        aws.secret_access_key.expose().to_owned(),
        token.map(str::to_owned),
        None,
        "aigw-simulator",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.excluded_headers = None;
    let params = SigningParams::builder()
        .identity(&identity)
        .region(&aws.region)
        .name("bedrock")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|_| SigV4Failure::Signature)?
        .into();
    let request = SignableRequest::new(
        method.as_str(),
        target,
        signed.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|_| SigV4Failure::Signature)?;
    let output = sign(request, &params).map_err(|_| SigV4Failure::Signature)?;
    if output.signature().as_bytes() == auth.signature.as_bytes() {
        Ok(())
    } else {
        Err(SigV4Failure::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn aws() -> AwsCredentials {
        AwsCredentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "us-east-1",
        )
    }

    /// Signs like a client would (with `aws-sigv4`), over a path carrying `%3A`.
    fn signed_headers(body: &[u8], path: &str) -> HeaderMap {
        let identity: Identity = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "t",
        )
        .into();
        let params = SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("bedrock")
            .time(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000))
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let url = format!("https://bedrock-runtime.us-east-1.amazonaws.com{path}");
        let req = SignableRequest::new(
            "POST",
            url,
            [("content-type", "application/json")].into_iter(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(req, &params).unwrap().into_parts();
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert(
            "host",
            HeaderValue::from_static("bedrock-runtime.us-east-1.amazonaws.com"),
        );
        for (k, v) in instructions.headers() {
            headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn accepts_valid_and_rejects_tampering() {
        let path = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse";
        let body = br#"{"messages":[]}"#;
        let headers = signed_headers(body, path);
        let uri: Uri = path.parse().unwrap();
        assert_eq!(verify(&aws(), &Method::POST, &uri, &headers, body), Ok(()));
        assert_eq!(
            verify(&aws(), &Method::POST, &uri, &headers, b"{}"),
            Err(SigV4Failure::Signature)
        );
        let other: Uri = "/model/anthropic.claude-3-haiku-20240307-v1:0/converse"
            .parse()
            .unwrap();
        assert_eq!(
            verify(&aws(), &Method::POST, &other, &headers, body),
            Err(SigV4Failure::Signature)
        );
        let mut wrong = aws();
        wrong.access_key_id = "AKIDOTHER".into();
        assert_eq!(
            verify(&wrong, &Method::POST, &uri, &headers, body),
            Err(SigV4Failure::Unrecognized)
        );
        assert_eq!(
            verify(&aws(), &Method::POST, &uri, &HeaderMap::new(), body),
            Err(SigV4Failure::Missing)
        );
    }
}
