//! Workload identity federation: an external OIDC token exchanged at Google STS, then
//! optionally traded for a service account's token through `iamcredentials`.

use super::service_account::CLOUD_PLATFORM_SCOPE;
use crate::aws::parse_rfc3339;
use crate::error::AuthError;
use crate::oidc::OidcClientCredentials;
use crate::source::KeySource;
use crate::transport::{HttpClient, strip_query, summarize_error};
use aigw_core::Secret;
use serde::Deserialize;
use serde_json::json;
use std::time::SystemTime;

const DEFAULT_STS: &str = "https://sts.googleapis.com/v1/token";
const DEFAULT_IAM: &str = "https://iamcredentials.googleapis.com";

/// Where the external (subject) token comes from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SubjectToken {
    /// An OIDC provider's client-credentials token (`oidcExchangeToken`).
    Oidc(OidcClientCredentials),
    /// A JWT read from a source (e.g. a projected token file).
    Token(KeySource),
}

/// `workloadIdentityFederationConfig` of a GCPCredentials policy.
#[derive(Debug, Clone)]
pub struct WorkloadIdentityConfig {
    /// The project (`projectID`) of the pool; also the service account's project.
    pub project_id: String,
    /// The workload identity pool.
    pub pool: String,
    /// The pool's provider.
    pub provider: String,
    /// The external token.
    pub subject_token: SubjectToken,
    /// Service account to impersonate (`name` or full email), if any.
    pub service_account: Option<String>,
    /// STS token endpoint; default `https://sts.googleapis.com/v1/token`.
    pub sts_endpoint: Option<String>,
    /// IAM credentials base URL; default `https://iamcredentials.googleapis.com`.
    pub iam_endpoint: Option<String>,
}

impl WorkloadIdentityConfig {
    /// The STS audience naming the pool provider.
    pub fn audience(&self) -> String {
        format!(
            "//iam.googleapis.com/projects/{}/locations/global/workloadIdentityPools/{}/providers/{}",
            self.project_id, self.pool, self.provider
        )
    }

    /// Reads a Google `external_account` credential configuration (what
    /// `gcloud iam workload-identity-pools create-cred-config` writes and
    /// `GOOGLE_APPLICATION_CREDENTIALS` points at): the pool provider from `audience`,
    /// STS at `token_url`, the service account of `service_account_impersonation_url`,
    /// and the subject token re-read from `credential_source.file` on every exchange
    /// (on Kubernetes, a projected service-account token the kubelet rotates).
    pub fn from_external_account(json: &str) -> Result<Self, String> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
        let field = |name: &str| v.get(name).and_then(serde_json::Value::as_str);
        if field("type") != Some("external_account") {
            return Err(format!("type is {:?}, not external_account", field("type")));
        }
        let audience = field("audience").ok_or("audience is missing")?;
        let rest = audience
            .strip_prefix("//iam.googleapis.com/projects/")
            .ok_or_else(|| {
                format!("audience {audience:?} is not a workload identity pool provider")
            })?;
        let parts: Vec<&str> = rest.split('/').collect();
        let [
            project,
            "locations",
            "global",
            "workloadIdentityPools",
            pool,
            "providers",
            provider,
        ] = parts[..]
        else {
            return Err(format!(
                "audience {audience:?} is not a workload identity pool provider"
            ));
        };
        let source = v
            .get("credential_source")
            .ok_or("credential_source is missing")?;
        let format = source
            .pointer("/format/type")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("text");
        if format != "text" {
            return Err(format!(
                "credential_source.format.type {format:?} is not supported (only a text token file)"
            ));
        }
        let file = source
            .get("file")
            .and_then(serde_json::Value::as_str)
            .ok_or("credential_source.file is missing (only file-sourced tokens are supported)")?;
        let (iam_endpoint, service_account) = match field("service_account_impersonation_url") {
            Some(url) => {
                let (base, target) = url
                    .split_once("/v1/projects/-/serviceAccounts/")
                    .ok_or_else(|| {
                        format!("unexpected service_account_impersonation_url {url:?}")
                    })?;
                let email = target.trim_end_matches(":generateAccessToken");
                (Some(base.to_owned()), Some(email.to_owned()))
            }
            None => (None, None),
        };
        Ok(Self {
            project_id: project.to_owned(),
            pool: pool.to_owned(),
            provider: provider.to_owned(),
            subject_token: SubjectToken::Token(KeySource::File(file.into())),
            service_account,
            sts_endpoint: field("token_url").map(str::to_owned),
            iam_endpoint,
        })
    }

    /// The email of the service account to impersonate.
    pub fn service_account_email(&self) -> Option<String> {
        self.service_account.as_ref().map(|sa| {
            if sa.contains('@') {
                sa.clone()
            } else {
                format!("{sa}@{}.iam.gserviceaccount.com", self.project_id)
            }
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateAccessTokenResponse {
    access_token: String,
    expire_time: String,
}

/// STS exchange followed by optional impersonation.
pub(crate) async fn fetch(
    http: &HttpClient,
    policy: &str,
    cfg: &WorkloadIdentityConfig,
    subject: &Secret,
    now: SystemTime,
) -> Result<(Secret, Option<SystemTime>), AuthError> {
    let sts = cfg.sts_endpoint.as_deref().unwrap_or(DEFAULT_STS);
    let body = json!({
        "grantType": "urn:ietf:params:oauth:grant-type:token-exchange",
        "audience": cfg.audience(),
        "scope": CLOUD_PLATFORM_SCOPE,
        "requestedTokenType": "urn:ietf:params:oauth:token-type:access_token",
        "subjectToken": subject.expose(),
        "subjectTokenType": "urn:ietf:params:oauth:token-type:jwt",
    });
    let req = http
        .request(http::Method::POST, sts)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    let resp = http.send(policy, sts, req).await?;
    let (federated, expiry) =
        super::service_account::parse_token_response(policy, sts, resp.status, &resp.body, now)?;
    let Some(email) = cfg.service_account_email() else {
        return Ok((federated, expiry));
    };
    let url = format!(
        "{}/v1/projects/-/serviceAccounts/{email}:generateAccessToken",
        cfg.iam_endpoint
            .as_deref()
            .unwrap_or(DEFAULT_IAM)
            .trim_end_matches('/')
    );
    let req = http
        .request(http::Method::POST, &url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", federated.expose()),
        )
        .body(json!({"scope": [CLOUD_PLATFORM_SCOPE], "lifetime": "3600s"}).to_string());
    let resp = http.send(policy, &url, req).await?;
    let fail = |message: String| AuthError::TokenEndpoint {
        policy: policy.to_owned(),
        endpoint: strip_query(&url).to_owned(),
        status: Some(resp.status),
        message,
    };
    if !(200..300).contains(&resp.status) {
        return Err(fail(summarize_error(resp.status, &resp.body)));
    }
    let t: GenerateAccessTokenResponse = serde_json::from_slice(&resp.body)
        .map_err(|_| fail("response lacks accessToken or expireTime".to_owned()))?;
    let expires = parse_rfc3339(&t.expire_time)
        .ok_or_else(|| fail(format!("unparseable expireTime {:?}", t.expire_time)))?;
    Ok((Secret::new(t.access_token), Some(expires)))
}
