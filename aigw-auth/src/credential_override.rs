//! Per-request upstream credentials taken from request headers (`credentialOverride`).
//!
//! Bring-your-own-key setups let a caller send its own upstream key in an `x-aigw-*`
//! header. The wrapper turns that header into a [`Credential`] of the configured policy's
//! kind and lets the wrapped provider apply it, so an AWS override is SigV4-signed and a
//! GCP token still gets the project path prefix. Override headers never leave the gateway.

use crate::error::AuthError;
use aigw_core::{
    Credential, CredentialMaterial, CredentialProvider, OutgoingRequest, Result, Secret,
};
use async_trait::async_trait;
use http::HeaderMap;
use std::sync::Arc;

/// Every default override header; all are removed from every request passing the wrapper.
pub const OVERRIDE_HEADERS: &[&str] = &[
    "x-aigw-api-key",
    "x-aigw-azure-api-key",
    "x-aigw-anthropic-api-key",
    "x-aigw-azure-access-token",
    "x-aigw-gcp-access-token",
    "x-aigw-aws-access-key-id",
    "x-aigw-aws-secret-access-key",
    "x-aigw-aws-session-token",
];

/// Which kind of credential the override header carries (follows the policy type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OverrideKind {
    /// `APIKey`: header `x-aigw-api-key`.
    ApiKey,
    /// `AzureAPIKey`: header `x-aigw-azure-api-key`.
    AzureApiKey,
    /// `AnthropicAPIKey`: header `x-aigw-anthropic-api-key`.
    AnthropicApiKey,
    /// `AzureCredentials`: an Entra ID access token in `x-aigw-azure-access-token`.
    AzureAccessToken,
    /// `GCPCredentials`: an OAuth access token in `x-aigw-gcp-access-token`.
    GcpAccessToken,
    /// `AWSCredentials`: headers with prefix `x-aigw-aws-` followed by `access-key-id`,
    /// `secret-access-key` and optionally `session-token`.
    Aws,
}

impl OverrideKind {
    /// The default header (for [`OverrideKind::Aws`], the header prefix).
    pub const fn default_header(self) -> &'static str {
        match self {
            Self::ApiKey => "x-aigw-api-key",
            Self::AzureApiKey => "x-aigw-azure-api-key",
            Self::AnthropicApiKey => "x-aigw-anthropic-api-key",
            Self::AzureAccessToken => "x-aigw-azure-access-token",
            Self::GcpAccessToken => "x-aigw-gcp-access-token",
            Self::Aws => "x-aigw-aws-",
        }
    }
}

/// Wraps a configured provider with per-request credentials from request headers.
///
/// * Override present: it is applied through the wrapped provider.
/// * Absent and `fallback_to_configured` (the default): the configured credential is used.
/// * Absent without fallback: `401` ([`aigw_core::Error::Unauthorized`]).
///
/// With fallback off, [`credential`](CredentialProvider::credential) does not consult the
/// wrapped provider at all, so a policy may carry no usable configured credential.
#[derive(Debug)]
pub struct CredentialOverride {
    inner: Arc<dyn CredentialProvider>,
    kind: OverrideKind,
    header: String,
    fallback_to_configured: bool,
}

impl CredentialOverride {
    /// Overrides of `kind` in the default header, falling back to `inner`.
    pub fn new(inner: Arc<dyn CredentialProvider>, kind: OverrideKind) -> Self {
        Self {
            inner,
            kind,
            header: kind.default_header().to_owned(),
            fallback_to_configured: true,
        }
    }

    /// Reads the override from `header` (for AWS: the header prefix).
    #[must_use]
    pub fn with_header(mut self, header: impl Into<String>) -> Self {
        self.header = header.into().to_ascii_lowercase();
        self
    }

    /// Whether a request without override uses the configured credential (default `true`).
    #[must_use]
    pub const fn fallback_to_configured(mut self, fallback: bool) -> Self {
        self.fallback_to_configured = fallback;
        self
    }

    fn header_names(&self) -> Vec<String> {
        if self.kind == OverrideKind::Aws {
            ["access-key-id", "secret-access-key", "session-token"]
                .iter()
                .map(|s| format!("{}{s}", self.header))
                .collect()
        } else {
            vec![self.header.clone()]
        }
    }

    /// Removes every override header and returns the override credential, if one was sent.
    fn take_override(&self, headers: &mut HeaderMap) -> Result<Option<Credential>, AuthError> {
        let mut found: Vec<Option<Secret>> = Vec::new();
        for name in self.header_names() {
            let v = headers.remove(name.as_str());
            let v = match v {
                Some(v) => Some(Secret::new(
                    v.to_str()
                        .map_err(|_| AuthError::MissingOverride {
                            message: format!("header {name} is not valid text"),
                        })?
                        .trim()
                        .to_owned(),
                )),
                None => None,
            }
            .filter(|s| !s.is_empty());
            found.push(v);
        }
        for name in OVERRIDE_HEADERS {
            headers.remove(*name);
        }
        let material = match (self.kind, found.as_mut_slice()) {
            (OverrideKind::Aws, [id, secret, token]) => match (id.take(), secret.take()) {
                (Some(access_key_id), Some(secret_access_key)) => CredentialMaterial::Aws {
                    access_key_id,
                    secret_access_key,
                    session_token: token.take(),
                },
                (None, None) if token.is_none() => return Ok(None),
                _ => {
                    return Err(AuthError::MissingOverride {
                        message: format!(
                            "AWS credential override needs both {0}access-key-id and {0}secret-access-key",
                            self.header
                        ),
                    });
                }
            },
            (_, [v]) => match v.take() {
                Some(t) => CredentialMaterial::Token(t),
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        Ok(Some(Credential::long_lived(material)))
    }
}

#[async_trait]
impl CredentialProvider for CredentialOverride {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn credential(&self) -> Result<Credential> {
        if self.fallback_to_configured {
            self.inner.credential().await
        } else {
            Ok(Credential::long_lived(CredentialMaterial::None))
        }
    }

    fn apply(&self, credential: &Credential, request: &mut OutgoingRequest) -> Result<()> {
        if let Some(over) = self.take_override(&mut request.headers)? {
            tracing::debug!(
                policy = self.inner.name(),
                "applying per-request credential override"
            );
            return self.inner.apply(&over, request);
        }
        if self.fallback_to_configured && credential.material != CredentialMaterial::None {
            return self.inner.apply(credential, request);
        }
        Err(AuthError::MissingOverride {
            message: format!(
                "this backend requires per-request credentials in {}",
                self.header_names().join(", ")
            ),
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ApiKeyProvider, KeySource};
    use bytes::Bytes;
    use http::{HeaderValue, Method, StatusCode};

    fn request(extra: &[(&'static str, &'static str)]) -> OutgoingRequest {
        let mut headers = HeaderMap::new();
        for (k, v) in extra {
            headers.insert(*k, HeaderValue::from_static(v));
        }
        headers.insert("x-aigw-gcp-access-token", HeaderValue::from_static("stray"));
        OutgoingRequest {
            method: Method::POST,
            scheme: "https".into(),
            authority: "api.openai.com".into(),
            path: "/v1/chat/completions".into(),
            headers,
            body: Bytes::new(),
        }
    }

    fn wrapped(fallback: bool) -> CredentialOverride {
        CredentialOverride::new(
            Arc::new(ApiKeyProvider::bearer(
                "ns/p",
                KeySource::value("configured"),
            )),
            OverrideKind::ApiKey,
        )
        .fallback_to_configured(fallback)
    }

    fn assert_stripped(r: &OutgoingRequest) {
        for h in OVERRIDE_HEADERS {
            assert!(!r.headers.contains_key(*h), "{h} leaked upstream");
        }
    }

    #[tokio::test]
    async fn override_wins_and_is_stripped() {
        let p = wrapped(true);
        let c = p.credential().await.unwrap();
        let mut r = request(&[("x-aigw-api-key", "caller-key")]);
        p.apply(&c, &mut r).unwrap();
        assert_eq!(r.headers["authorization"], "Bearer caller-key");
        assert_stripped(&r);
    }

    #[tokio::test]
    async fn fallback_uses_configured() {
        let p = wrapped(true);
        let c = p.credential().await.unwrap();
        let mut r = request(&[]);
        p.apply(&c, &mut r).unwrap();
        assert_eq!(r.headers["authorization"], "Bearer configured");
        assert_stripped(&r);
    }

    #[tokio::test]
    async fn missing_without_fallback_is_401() {
        let p = wrapped(false);
        let c = p.credential().await.unwrap();
        assert_eq!(c.material, CredentialMaterial::None);
        let mut r = request(&[]);
        let e = p.apply(&c, &mut r).unwrap_err();
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        assert!(e.to_string().contains("x-aigw-api-key"), "{e}");
        assert!(!r.headers.contains_key("authorization"));
        assert_stripped(&r);
    }

    #[tokio::test]
    async fn custom_header_is_honoured() {
        let p = wrapped(false).with_header("X-My-Key");
        let c = p.credential().await.unwrap();
        let mut r = request(&[("x-my-key", "mine")]);
        p.apply(&c, &mut r).unwrap();
        assert_eq!(r.headers["authorization"], "Bearer mine");
        assert!(!r.headers.contains_key("x-my-key"));
    }

    #[tokio::test]
    async fn aws_override_is_signed_and_partial_is_rejected() {
        use crate::aws::{AwsCredentialSource, SigV4Config, SigV4Provider};
        let inner = Arc::new(SigV4Provider::new(
            "ns/aws",
            SigV4Config::new(
                "us-east-1",
                AwsCredentialSource::Static {
                    access_key_id: Secret::new("AKIACONFIGURED"),
                    secret_access_key: Secret::new("s"),
                    session_token: None,
                },
            ),
        ));
        let p = CredentialOverride::new(inner, OverrideKind::Aws).fallback_to_configured(false);
        let c = p.credential().await.unwrap();
        let mut r = request(&[
            ("x-aigw-aws-access-key-id", "AKIACALLER"),
            ("x-aigw-aws-secret-access-key", "callersecret"),
            ("x-aigw-aws-session-token", "callertoken"),
        ]);
        r.authority = "bedrock-runtime.us-east-1.amazonaws.com".into();
        p.apply(&c, &mut r).unwrap();
        let auth = r.headers["authorization"].to_str().unwrap();
        assert!(auth.contains("Credential=AKIACALLER/"), "{auth}");
        assert_eq!(r.headers["x-amz-security-token"], "callertoken");
        assert_stripped(&r);

        let mut r = request(&[("x-aigw-aws-access-key-id", "AKIACALLER")]);
        let e = p.apply(&c, &mut r).unwrap_err();
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        assert_stripped(&r);
    }
}
