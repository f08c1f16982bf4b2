//! Service-account keys: an RS256 JWT assertion exchanged at the OAuth token endpoint
//! (RFC 7523 `jwt-bearer` grant).

use crate::error::AuthError;
use crate::transport::{HttpClient, summarize_error};
use aigw_core::Secret;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The scope Vertex AI needs.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime of an assertion; Google accepts at most one hour.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);

/// A parsed service-account JSON key (`service_account.json`).
#[derive(Clone, Deserialize)]
pub struct ServiceAccountKey {
    /// The service account's email, the assertion's issuer.
    pub client_email: String,
    /// The key id, sent as the JWT `kid`.
    #[serde(default)]
    pub private_key_id: Option<String>,
    #[serde(deserialize_with = "secret_string")]
    private_key: Secret,
    /// The token endpoint and assertion audience.
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
}

fn secret_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    String::deserialize(d).map(Secret::new)
}

fn default_token_uri() -> String {
    DEFAULT_TOKEN_URI.to_owned()
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("private_key", &self.private_key)
            .field("token_uri", &self.token_uri)
            .finish()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

impl ServiceAccountKey {
    /// Parses the JSON key file contents. Errors never include the contents.
    pub fn from_json(json: &str) -> Result<Self, String> {
        serde_json::from_str(json).map_err(|e| {
            format!(
                "invalid service-account JSON (line {}, column {}): expected client_email and private_key",
                e.line(),
                e.column()
            )
        })
    }

    /// The signed RS256 assertion for `scope` issued at `now`, as google-auth builds it:
    /// `iss` = the service account, `aud` = the token URI, one hour lifetime, `kid` = key id.
    pub fn assertion(&self, scope: &str, now: SystemTime) -> Result<Secret, String> {
        let iat = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| "clock before 1970".to_owned())?
            .as_secs();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid.clone_from(&self.private_key_id);
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(self.private_key.expose().as_bytes())
            .map_err(|_| "private_key is not an RSA PEM key".to_owned())?;
        let claims = Claims {
            iss: &self.client_email,
            scope,
            aud: &self.token_uri,
            iat,
            exp: iat + ASSERTION_LIFETIME.as_secs(),
        };
        jsonwebtoken::encode(&header, &claims, &key)
            .map(Secret::new)
            .map_err(|e| format!("cannot sign the assertion: {}", e.kind_name()))
    }
}

trait KindName {
    fn kind_name(&self) -> &'static str;
}

impl KindName for jsonwebtoken::errors::Error {
    fn kind_name(&self) -> &'static str {
        use jsonwebtoken::errors::ErrorKind as K;
        match self.kind() {
            K::InvalidRsaKey(_) | K::InvalidKeyFormat => "invalid key",
            K::InvalidAlgorithm | K::InvalidAlgorithmName => "invalid algorithm",
            _ => "signing error",
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct OAuthTokenResponse {
    pub(crate) access_token: String,
    #[serde(default)]
    pub(crate) expires_in: Option<u64>,
}

/// Exchanges the assertion for an access token.
pub(crate) async fn exchange(
    http: &HttpClient,
    policy: &str,
    key: &ServiceAccountKey,
    now: SystemTime,
) -> Result<(Secret, Option<SystemTime>), AuthError> {
    let assertion = key
        .assertion(CLOUD_PLATFORM_SCOPE, now)
        .map_err(|m| AuthError::source(policy, m))?;
    let req = http.post_form(
        &key.token_uri,
        &[
            ("grant_type", JWT_BEARER),
            ("assertion", assertion.expose()),
        ],
    );
    let resp = http.send(policy, &key.token_uri, req).await?;
    parse_token_response(policy, &key.token_uri, resp.status, &resp.body, now)
}

pub(crate) fn parse_token_response(
    policy: &str,
    endpoint: &str,
    status: u16,
    body: &[u8],
    now: SystemTime,
) -> Result<(Secret, Option<SystemTime>), AuthError> {
    let fail = |message: String| AuthError::TokenEndpoint {
        policy: policy.to_owned(),
        endpoint: crate::transport::strip_query(endpoint).to_owned(),
        status: Some(status),
        message,
    };
    if !(200..300).contains(&status) {
        return Err(fail(summarize_error(status, body)));
    }
    let t: OAuthTokenResponse =
        serde_json::from_slice(body).map_err(|_| fail("response lacks access_token".to_owned()))?;
    Ok((
        Secret::new(t.access_token),
        t.expires_in.map(|s| now + Duration::from_secs(s)),
    ))
}
