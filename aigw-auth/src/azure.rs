//! Azure OpenAI with Entra ID tokens (`AzureCredentials` policies): OAuth2 client
//! credentials with a client secret or a client assertion (a federated OIDC token).

use crate::api_key::set_bearer;
use crate::clock::{Clock, SystemClock};
use crate::error::AuthError;
use crate::oidc::{ClientCredentialsRequest, OidcClientCredentials, client_credentials};
use crate::source::{KeySource, SecretReader};
use crate::transport::{HttpClient, LazyHttp};
use aigw_core::{Credential, CredentialMaterial, CredentialProvider, OutgoingRequest, Result};
use async_trait::async_trait;
use std::sync::Arc;

/// The Entra ID authority of the public cloud.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The scope of Azure OpenAI / Cognitive Services.
pub const COGNITIVE_SERVICES_SCOPE: &str = "https://cognitiveservices.azure.com/.default";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the application authenticates to Entra ID.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AzureClientAuth {
    /// A client secret (policy Secret key `client-secret`).
    ClientSecret(KeySource),
    /// A federated token used as client assertion, read from a source (e.g. the
    /// `AZURE_FEDERATED_TOKEN_FILE` of workload identity).
    AssertionToken(KeySource),
    /// A federated token obtained from an OIDC provider (`oidcExchangeToken`).
    AssertionFromOidc(OidcClientCredentials),
}

/// Configuration of an [`AzureProvider`].
#[derive(Debug, Clone)]
pub struct AzureConfig {
    /// Directory (tenant) id.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// The client's authentication.
    pub auth: AzureClientAuth,
    /// The authority; default [`DEFAULT_AUTHORITY`]. The token URL is
    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub authority: String,
    /// The scope; default [`COGNITIVE_SERVICES_SCOPE`].
    pub scope: String,
}

impl AzureConfig {
    /// A configuration for the public cloud and Azure OpenAI's scope.
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        auth: AzureClientAuth,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            auth,
            authority: DEFAULT_AUTHORITY.to_owned(),
            scope: COGNITIVE_SERVICES_SCOPE.to_owned(),
        }
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority.trim_end_matches('/'),
            self.tenant_id
        )
    }
}

/// Entra ID access tokens sent as `Authorization: Bearer`. Wrap in [`crate::Rotating`].
#[derive(Debug)]
pub struct AzureProvider {
    name: String,
    config: AzureConfig,
    reader: Option<SecretReader>,
    http: LazyHttp,
    clock: Arc<dyn Clock>,
}

impl AzureProvider {
    /// A provider for policy `name`.
    pub fn new(name: impl Into<String>, config: AzureConfig) -> Self {
        let reader = match &config.auth {
            AzureClientAuth::ClientSecret(s) | AzureClientAuth::AssertionToken(s) => {
                Some(SecretReader::new(s.clone()))
            }
            AzureClientAuth::AssertionFromOidc(_) => None,
        };
        Self {
            name: name.into(),
            config,
            reader,
            http: LazyHttp::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses `http` for token requests.
    #[must_use]
    pub fn with_http_client(self, http: HttpClient) -> Self {
        self.http.set(http);
        self
    }

    /// Computes token expiry from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    async fn fetch(&self) -> Result<Credential, AuthError> {
        let http = self.http.get(&self.name)?;
        let read = || async {
            match &self.reader {
                Some(r) => r.read(&self.name).await,
                None => Err(AuthError::config(&self.name, "no credential source")),
            }
        };
        let (secret, assertion) = match &self.config.auth {
            AzureClientAuth::ClientSecret(_) => (Some(read().await?), None),
            AzureClientAuth::AssertionToken(_) => (None, Some(read().await?)),
            AzureClientAuth::AssertionFromOidc(oidc) => {
                let t = oidc.fetch(&http, &self.name, self.clock.now()).await?;
                (None, Some(t.token))
            }
        };
        let mut extra = Vec::new();
        if let Some(a) = &assertion {
            extra.push(("client_assertion_type", ASSERTION_TYPE.to_owned()));
            extra.push(("client_assertion", a.expose().to_owned()));
        }
        let scopes = [self.config.scope.clone()];
        let token = client_credentials(
            &http,
            &self.name,
            self.clock.now(),
            ClientCredentialsRequest {
                token_endpoint: &self.config.token_url(),
                client_id: &self.config.client_id,
                client_secret: secret.as_ref(),
                scopes: &scopes,
                extra,
                secret_in_body: true,
            },
        )
        .await?;
        Ok(Credential {
            material: CredentialMaterial::Token(token.token),
            expires_at: token.expires_at,
        })
    }
}

#[async_trait]
impl CredentialProvider for AzureProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn credential(&self) -> Result<Credential> {
        Ok(self.fetch().await?)
    }

    fn apply(&self, credential: &Credential, request: &mut OutgoingRequest) -> Result<()> {
        let CredentialMaterial::Token(token) = &credential.material else {
            return Err(AuthError::apply(&self.name, "expected an access token").into());
        };
        set_bearer(&self.name, token, request)
    }
}
