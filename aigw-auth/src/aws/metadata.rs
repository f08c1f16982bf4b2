//! Credentials from AWS metadata endpoints: the container endpoint (ECS task roles and
//! EKS Pod Identity) and the EC2 instance metadata service (IMDSv2).

use super::sts::parse_rfc3339;
use crate::error::AuthError;
use crate::source::{KeySource, SecretReader};
use crate::transport::{HttpClient, summarize_error};
use aigw_core::{Credential, CredentialMaterial, Secret};
use serde::Deserialize;

/// The ECS container credentials host for `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
const ECS_HOST: &str = "http://169.254.170.2";
/// The EC2 instance metadata service.
pub(crate) const IMDS_ENDPOINT: &str = "http://169.254.169.254";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetadataCredentials {
    access_key_id: String,
    secret_access_key: String,
    token: Option<String>,
    expiration: Option<String>,
}

fn parse(policy: &str, endpoint: &str, status: u16, body: &[u8]) -> Result<Credential, AuthError> {
    let fail = |message: String| AuthError::TokenEndpoint {
        policy: policy.to_owned(),
        endpoint: endpoint.to_owned(),
        status: Some(status),
        message,
    };
    if !(200..300).contains(&status) {
        return Err(fail(summarize_error(status, body)));
    }
    let c: MetadataCredentials = serde_json::from_slice(body)
        .map_err(|_| fail("response lacks AccessKeyId or SecretAccessKey".to_owned()))?;
    let expires_at = match c.expiration.as_deref() {
        Some(e) => {
            Some(parse_rfc3339(e).ok_or_else(|| fail(format!("unparseable Expiration {e:?}")))?)
        }
        None => None,
    };
    Ok(Credential {
        material: CredentialMaterial::Aws {
            access_key_id: Secret::new(c.access_key_id),
            secret_access_key: Secret::new(c.secret_access_key),
            session_token: c.token.filter(|t| !t.is_empty()).map(Secret::new),
        },
        expires_at,
    })
}

/// The container endpoint from `AWS_CONTAINER_CREDENTIALS_FULL_URI` or
/// `…_RELATIVE_URI`, with its authorization token source
/// (`AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` or `AWS_CONTAINER_AUTHORIZATION_TOKEN`).
pub(crate) fn container_from_env() -> Option<(String, Option<KeySource>)> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let uri = var("AWS_CONTAINER_CREDENTIALS_FULL_URI").or_else(|| {
        var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").map(|r| format!("{ECS_HOST}{r}"))
    })?;
    let auth = var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        .map(KeySource::file)
        .or_else(|| {
            var("AWS_CONTAINER_AUTHORIZATION_TOKEN").map(|t| KeySource::Value(Secret::new(t)))
        });
    Some((uri, auth))
}

/// GET the container endpoint, with the `Authorization` token when one is configured.
pub(crate) async fn container(
    http: &HttpClient,
    policy: &str,
    uri: &str,
    auth: Option<&KeySource>,
) -> Result<Credential, AuthError> {
    let mut req = http.request(http::Method::GET, uri);
    if let Some(source) = auth {
        let token = SecretReader::new(source.clone()).read(policy).await?;
        req = req.header(http::header::AUTHORIZATION, token.expose());
    }
    let resp = http.send(policy, uri, req).await?;
    parse(
        policy,
        crate::transport::strip_query(uri),
        resp.status,
        &resp.body,
    )
}

/// IMDSv2: a session token, the instance profile's role name, then its credentials.
pub(crate) async fn instance(
    http: &HttpClient,
    policy: &str,
    endpoint: &str,
) -> Result<Credential, AuthError> {
    let base = endpoint.trim_end_matches('/');
    let token_url = format!("{base}/latest/api/token");
    let resp = http
        .send(
            policy,
            &token_url,
            http.request(http::Method::PUT, &token_url)
                .header("x-aws-ec2-metadata-token-ttl-seconds", "21600"),
        )
        .await?;
    let fail = |url: &str, status: u16, message: String| AuthError::TokenEndpoint {
        policy: policy.to_owned(),
        endpoint: url.to_owned(),
        status: Some(status),
        message,
    };
    if !(200..300).contains(&resp.status) {
        return Err(fail(
            &token_url,
            resp.status,
            summarize_error(resp.status, &resp.body),
        ));
    }
    let session = Secret::new(String::from_utf8_lossy(&resp.body).trim().to_owned());
    let roles_url = format!("{base}/latest/meta-data/iam/security-credentials/");
    let get = |url: &str| {
        http.request(http::Method::GET, url)
            .header("x-aws-ec2-metadata-token", session.expose())
    };
    let resp = http.send(policy, &roles_url, get(&roles_url)).await?;
    if !(200..300).contains(&resp.status) {
        return Err(fail(
            &roles_url,
            resp.status,
            "no instance profile attached".to_owned(),
        ));
    }
    let role = String::from_utf8_lossy(&resp.body)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    if role.is_empty() {
        return Err(fail(
            &roles_url,
            resp.status,
            "no instance profile attached".to_owned(),
        ));
    }
    let creds_url = format!("{roles_url}{role}");
    let resp = http.send(policy, &creds_url, get(&creds_url)).await?;
    parse(policy, &creds_url, resp.status, &resp.body)
}
