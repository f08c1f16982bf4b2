//! API keys sent in a header: OpenAI-style `Authorization: Bearer`, Azure `api-key`,
//! Anthropic `x-api-key`.

use crate::error::AuthError;
use crate::source::{KeySource, SecretReader};
use aigw_core::{
    Credential, CredentialMaterial, CredentialProvider, OutgoingRequest, Result, Secret,
};
use async_trait::async_trait;
use http::{HeaderName, HeaderValue};

/// How an API key is written onto the request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiKeyHeader {
    /// `Authorization: Bearer <key>` (policy type `APIKey`).
    Bearer,
    /// `api-key: <key>` (policy type `AzureAPIKey`).
    AzureApiKey,
    /// `x-api-key: <key>` (policy type `AnthropicAPIKey`).
    AnthropicApiKey,
}

/// A long-lived API key from a value, a file or an environment variable.
///
/// ```
/// use aigw_auth::{ApiKeyProvider, KeySource};
/// let p = ApiKeyProvider::anthropic("default/anthropic", KeySource::env("ANTHROPIC_API_KEY"));
/// assert!(!format!("{p:?}").contains("sk-"));
/// ```
#[derive(Debug)]
pub struct ApiKeyProvider {
    name: String,
    header: ApiKeyHeader,
    reader: SecretReader,
}

impl ApiKeyProvider {
    /// A provider writing `header` from `source`.
    pub fn new(name: impl Into<String>, header: ApiKeyHeader, source: KeySource) -> Self {
        Self {
            name: name.into(),
            header,
            reader: SecretReader::new(source),
        }
    }

    /// `Authorization: Bearer <key>`.
    pub fn bearer(name: impl Into<String>, source: KeySource) -> Self {
        Self::new(name, ApiKeyHeader::Bearer, source)
    }

    /// Azure OpenAI's `api-key: <key>`.
    pub fn azure(name: impl Into<String>, source: KeySource) -> Self {
        Self::new(name, ApiKeyHeader::AzureApiKey, source)
    }

    /// Anthropic's `x-api-key: <key>`.
    pub fn anthropic(name: impl Into<String>, source: KeySource) -> Self {
        Self::new(name, ApiKeyHeader::AnthropicApiKey, source)
    }

    /// The header this provider writes.
    pub const fn header(&self) -> &ApiKeyHeader {
        &self.header
    }
}

#[async_trait]
impl CredentialProvider for ApiKeyProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn credential(&self) -> Result<Credential> {
        let key = self.reader.read(&self.name).await?;
        Ok(Credential::long_lived(CredentialMaterial::Token(key)))
    }

    fn apply(&self, credential: &Credential, request: &mut OutgoingRequest) -> Result<()> {
        let CredentialMaterial::Token(key) = &credential.material else {
            return Err(AuthError::apply(&self.name, "expected an API key credential").into());
        };
        match self.header {
            ApiKeyHeader::Bearer => set_bearer(&self.name, key, request),
            ApiKeyHeader::AzureApiKey => set_secret_header(
                &self.name,
                HeaderName::from_static("api-key"),
                key.expose(),
                request,
            ),
            ApiKeyHeader::AnthropicApiKey => set_secret_header(
                &self.name,
                HeaderName::from_static("x-api-key"),
                key.expose(),
                request,
            ),
        }
    }
}

/// Writes `Authorization: Bearer <token>`, marked sensitive.
pub(crate) fn set_bearer(
    policy: &str,
    token: &Secret,
    request: &mut OutgoingRequest,
) -> Result<()> {
    // Built in one exact-size buffer that becomes the header's bytes: no formatting
    // pass and no second copy.
    let key = token.expose().as_bytes();
    let mut value = Vec::with_capacity(7 + key.len());
    value.extend_from_slice(b"Bearer ");
    value.extend_from_slice(key);
    let v = HeaderValue::from_maybe_shared(bytes::Bytes::from(value))
        .map_err(|_| invalid(policy, &http::header::AUTHORIZATION))?;
    insert_sensitive(http::header::AUTHORIZATION, v, request);
    Ok(())
}

fn invalid(policy: &str, name: &HeaderName) -> aigw_core::Error {
    AuthError::apply(
        policy,
        format!("credential is not a valid {name} header value"),
    )
    .into()
}

/// Inserts a header carrying secret material, marked sensitive so HTTP/2 never
/// indexes it and `Debug` never prints it.
fn insert_sensitive(name: HeaderName, mut v: HeaderValue, request: &mut OutgoingRequest) {
    v.set_sensitive(true);
    request.headers.insert(name, v);
}

/// Writes a header carrying secret material, marked sensitive so HTTP/2 never indexes it.
pub(crate) fn set_secret_header(
    policy: &str,
    name: HeaderName,
    value: &str,
    request: &mut OutgoingRequest,
) -> Result<()> {
    let v = HeaderValue::try_from(value).map_err(|_| invalid(policy, &name))?;
    insert_sensitive(name, v, request);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, Method};

    pub(crate) fn request() -> OutgoingRequest {
        OutgoingRequest {
            method: Method::POST,
            scheme: "https".into(),
            authority: "api.example.com".into(),
            path: "/v1/chat/completions".into(),
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"{}"),
        }
    }

    async fn applied(p: &ApiKeyProvider) -> OutgoingRequest {
        let c = p.credential().await.unwrap();
        let mut r = request();
        p.apply(&c, &mut r).unwrap();
        r
    }

    #[tokio::test]
    async fn each_kind_writes_its_header() {
        let r = applied(&ApiKeyProvider::bearer("p", KeySource::value("k1"))).await;
        assert_eq!(r.headers["authorization"], "Bearer k1");
        assert!(r.headers["authorization"].is_sensitive());
        let r = applied(&ApiKeyProvider::azure("p", KeySource::value("k2"))).await;
        assert_eq!(r.headers["api-key"], "k2");
        assert!(r.headers.get("authorization").is_none());
        let r = applied(&ApiKeyProvider::anthropic("p", KeySource::value("k3"))).await;
        assert_eq!(r.headers["x-api-key"], "k3");
    }

    #[tokio::test]
    async fn env_source_is_read() {
        // Edition 2024 makes `set_var` unsafe (and the crate forbids unsafe), so read a
        // variable every test environment has.
        let p = ApiKeyProvider::bearer("ns/p", KeySource::env("PATH"));
        let r = applied(&p).await;
        let want = format!("Bearer {}", std::env::var("PATH").unwrap().trim());
        assert_eq!(r.headers["authorization"], want.as_str());
        let missing = "AIGW_AUTH_TEST_SURELY_UNSET";
        let p = ApiKeyProvider::bearer("ns/p", KeySource::env(missing));
        let e = p.credential().await.unwrap_err();
        assert!(e.to_string().contains(missing));
    }

    #[tokio::test]
    async fn key_with_newline_is_rejected_without_echo() {
        let p = ApiKeyProvider::bearer("ns/p", KeySource::value("bad\u{1}key"));
        let c = p.credential().await.unwrap();
        let e = p.apply(&c, &mut request()).unwrap_err().to_string();
        assert!(!e.contains("bad"), "{e}");
    }
}
