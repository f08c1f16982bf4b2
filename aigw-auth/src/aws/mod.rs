//! AWS credentials and SigV4 signing for Bedrock (`AWSCredentials` policies).

mod metadata;
mod profile;
mod sign;
mod sts;

pub use sign::{SERVICE, region_from_host};
pub(crate) use sts::parse_rfc3339;

use crate::clock::{Clock, SystemClock};
use crate::error::AuthError;
use crate::oidc::OidcClientCredentials;
use crate::source::{KeySource, SecretReader};
use crate::transport::{HttpClient, LazyHttp};
use aigw_core::{
    Credential, CredentialMaterial, CredentialProvider, OutgoingRequest, Result, Secret,
};
use async_trait::async_trait;
use sign::{AwsKeys, sign_request};
use std::sync::Arc;
use std::time::Duration;

/// Where AWS credentials come from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AwsCredentialSource {
    /// Fixed keys.
    Static {
        /// Access key id.
        access_key_id: Secret,
        /// Secret access key.
        secret_access_key: Secret,
        /// Session token of temporary keys.
        session_token: Option<Secret>,
    },
    /// A shared credentials file (the policy Secret's `credentials` key, or a file that is
    /// re-read when it changes) and the profile to use.
    SharedFile {
        /// The file contents or path.
        source: KeySource,
        /// The profile, usually `default`.
        profile: String,
    },
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, read on each fetch.
    Environment,
    /// A web-identity token file exchanged through STS (EKS IRSA).
    WebIdentity {
        /// The token, usually a projected service-account token file.
        token: KeySource,
        /// The role to assume.
        role_arn: String,
        /// The role session name.
        session_name: String,
    },
    /// An OAuth2 client-credentials token from an OIDC provider exchanged through STS
    /// (`oidcExchangeToken`).
    OidcExchange {
        /// The OIDC provider.
        oidc: OidcClientCredentials,
        /// The role to assume.
        role_arn: String,
        /// The role session name.
        session_name: String,
    },
    /// A container credentials endpoint (ECS task roles, EKS Pod Identity).
    ContainerEndpoint {
        /// The full URI.
        uri: String,
        /// The `Authorization` token, if the endpoint needs one.
        auth: Option<KeySource>,
    },
    /// The EC2 instance metadata service (IMDSv2).
    InstanceMetadata {
        /// Base URL; default `http://169.254.169.254`.
        endpoint: Option<String>,
    },
    /// Like the AWS SDKs: the environment if it holds keys, else the shared credentials
    /// file (`AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`, profile `AWS_PROFILE`)
    /// if it exists, else IRSA variables, else the container endpoint variables, else
    /// IMDSv2 (`AWS_EC2_METADATA_SERVICE_ENDPOINT`; off with
    /// `AWS_EC2_METADATA_DISABLED=true`).
    DefaultChain,
}

impl AwsCredentialSource {
    /// IRSA from `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN` and optional
    /// `AWS_ROLE_SESSION_NAME`; `None` when the first two are not set.
    pub fn web_identity_from_env() -> Option<Self> {
        let token = std::env::var("AWS_WEB_IDENTITY_TOKEN_FILE")
            .ok()
            .filter(|v| !v.is_empty())?;
        let role_arn = std::env::var("AWS_ROLE_ARN")
            .ok()
            .filter(|v| !v.is_empty())?;
        let session_name = std::env::var("AWS_ROLE_SESSION_NAME")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "aigw".to_owned());
        Some(Self::WebIdentity {
            token: KeySource::file(token),
            role_arn,
            session_name,
        })
    }
}

/// Configuration of a [`SigV4Provider`].
#[derive(Debug, Clone)]
pub struct SigV4Config {
    /// The configured region; a Bedrock runtime host name overrides it per request.
    pub region: String,
    /// Where credentials come from.
    pub source: AwsCredentialSource,
    /// The STS endpoint; default `https://sts.{region}.amazonaws.com/`.
    pub sts_endpoint: Option<String>,
    /// Requested lifetime of assumed-role credentials (STS default: one hour).
    pub session_duration: Option<Duration>,
}

impl SigV4Config {
    /// A configuration with the default STS endpoint and session duration.
    pub fn new(region: impl Into<String>, source: AwsCredentialSource) -> Self {
        Self {
            region: region.into(),
            source,
            sts_endpoint: None,
            session_duration: None,
        }
    }
}

/// Signs requests with AWS SigV4 for service `bedrock`.
///
/// [`credential`](CredentialProvider::credential) fetches keys from the configured source
/// (STS for the web-identity flows; wrap in [`crate::Rotating`] to cache them);
/// [`apply`](CredentialProvider::apply) signs the final request. Signing reads the time
/// from the provider's clock.
#[derive(Debug)]
pub struct SigV4Provider {
    name: String,
    config: SigV4Config,
    reader: Option<SecretReader>,
    http: LazyHttp,
    clock: Arc<dyn Clock>,
}

impl SigV4Provider {
    /// A provider for policy `name`.
    pub fn new(name: impl Into<String>, config: SigV4Config) -> Self {
        let reader = match &config.source {
            AwsCredentialSource::SharedFile { source, .. }
            | AwsCredentialSource::WebIdentity { token: source, .. } => {
                Some(SecretReader::new(source.clone()))
            }
            _ => None,
        };
        Self {
            name: name.into(),
            config,
            reader,
            http: LazyHttp::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses `http` for STS and OIDC requests.
    #[must_use]
    pub fn with_http_client(self, http: HttpClient) -> Self {
        self.http.set(http);
        self
    }

    /// Reads signing time from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The configured endpoint, else the AWS SDKs' `AWS_ENDPOINT_URL_STS` /
    /// `AWS_ENDPOINT_URL` (VPC endpoints, FIPS, test doubles), else the regional STS.
    fn sts_endpoint(&self) -> String {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        self.config
            .sts_endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_STS"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://sts.{}.amazonaws.com/", self.config.region))
    }

    async fn assume(
        &self,
        role_arn: &str,
        session_name: &str,
        token: &Secret,
    ) -> Result<Credential, AuthError> {
        let http = self.http.get(&self.name)?;
        let endpoint = self.sts_endpoint();
        sts::assume_role_with_web_identity(
            &http,
            &self.name,
            sts::AssumeRole {
                endpoint: &endpoint,
                role_arn,
                session_name,
                web_identity_token: token,
                duration: self.config.session_duration,
            },
        )
        .await
    }

    async fn fetch(&self, source: &AwsCredentialSource) -> Result<Credential, AuthError> {
        match source {
            AwsCredentialSource::Static {
                access_key_id,
                secret_access_key,
                session_token,
            } => Ok(Credential::long_lived(CredentialMaterial::Aws {
                access_key_id: access_key_id.clone(),
                secret_access_key: secret_access_key.clone(),
                session_token: session_token.clone(),
            })),
            AwsCredentialSource::SharedFile { profile, .. } => {
                let contents = self.read_source().await?;
                profile::parse(contents.expose(), profile)
                    .map(Credential::long_lived)
                    .map_err(|m| AuthError::source(&self.name, m))
            }
            AwsCredentialSource::Environment => from_env(&self.name),
            AwsCredentialSource::WebIdentity {
                role_arn,
                session_name,
                ..
            } => {
                let token = self.read_source().await?;
                self.assume(role_arn, session_name, &token).await
            }
            AwsCredentialSource::OidcExchange {
                oidc,
                role_arn,
                session_name,
            } => {
                let http = self.http.get(&self.name)?;
                let token = oidc.fetch(&http, &self.name, self.clock.now()).await?;
                self.assume(role_arn, session_name, &token.token).await
            }
            AwsCredentialSource::ContainerEndpoint { uri, auth } => {
                let http = self.http.get(&self.name)?;
                metadata::container(&http, &self.name, uri, auth.as_ref()).await
            }
            AwsCredentialSource::InstanceMetadata { endpoint } => {
                let http = self.http.get(&self.name)?;
                let endpoint = endpoint.as_deref().unwrap_or(metadata::IMDS_ENDPOINT);
                metadata::instance(&http, &self.name, endpoint).await
            }
            AwsCredentialSource::DefaultChain => self.default_chain().await,
        }
    }

    async fn read_source(&self) -> Result<Secret, AuthError> {
        match &self.reader {
            Some(r) => r.read(&self.name).await,
            None => Err(AuthError::config(
                &self.name,
                "credential source has no reader",
            )),
        }
    }

    async fn default_chain(&self) -> Result<Credential, AuthError> {
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
            return from_env(&self.name);
        }
        let shared = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".aws/credentials"))
            })
            .filter(|p| p.is_file());
        if let Some(path) = shared {
            let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_owned());
            let contents = SecretReader::new(KeySource::File(path))
                .read(&self.name)
                .await?;
            return profile::parse(contents.expose(), &profile)
                .map(Credential::long_lived)
                .map_err(|m| AuthError::source(&self.name, m));
        }
        if let Some(AwsCredentialSource::WebIdentity {
            token,
            role_arn,
            session_name,
        }) = AwsCredentialSource::web_identity_from_env()
        {
            let token = SecretReader::new(token).read(&self.name).await?;
            return self.assume(&role_arn, &session_name, &token).await;
        }
        let http = self.http.get(&self.name)?;
        if let Some((uri, auth)) = metadata::container_from_env() {
            return metadata::container(&http, &self.name, &uri, auth.as_ref()).await;
        }
        if std::env::var("AWS_EC2_METADATA_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(AuthError::source(
                &self.name,
                "no AWS credentials found in the default chain",
            ));
        }
        let endpoint = std::env::var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .ok()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| metadata::IMDS_ENDPOINT.to_owned());
        metadata::instance(&http, &self.name, &endpoint).await
    }

    /// The region a request to `authority` is signed for.
    pub fn signing_region<'a>(&'a self, authority: &'a str) -> &'a str {
        region_from_host(authority).unwrap_or(&self.config.region)
    }
}

fn from_env(policy: &str) -> Result<Credential, AuthError> {
    let get = |k: &str| {
        std::env::var(k)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Secret::new)
    };
    match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key_id), Some(secret_access_key)) => {
            Ok(Credential::long_lived(CredentialMaterial::Aws {
                access_key_id,
                secret_access_key,
                session_token: get("AWS_SESSION_TOKEN"),
            }))
        }
        _ => Err(AuthError::source(
            policy,
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set",
        )),
    }
}

#[async_trait]
impl CredentialProvider for SigV4Provider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn credential(&self) -> Result<Credential> {
        Ok(self.fetch(&self.config.source).await?)
    }

    fn apply(&self, credential: &Credential, request: &mut OutgoingRequest) -> Result<()> {
        let CredentialMaterial::Aws {
            access_key_id,
            secret_access_key,
            session_token,
        } = &credential.material
        else {
            return Err(AuthError::apply(&self.name, "expected AWS credentials").into());
        };
        let region = self.signing_region(&request.authority).to_owned();
        let keys = AwsKeys {
            access_key_id,
            secret_access_key,
            session_token: session_token.as_ref(),
        };
        sign_request(request, &keys, &region, SERVICE, self.clock.now())
            .map_err(|m| AuthError::apply(&self.name, m))?;
        tracing::trace!(policy = %self.name, region = %region, "signed request with SigV4");
        Ok(())
    }
}
