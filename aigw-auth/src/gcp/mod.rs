//! GCP Vertex AI credentials (`GCPCredentials` policies): service-account keys, workload
//! identity federation, or the metadata server; plus the project path prefix.

mod service_account;
mod wif;

pub use service_account::{CLOUD_PLATFORM_SCOPE, ServiceAccountKey};
pub use wif::{SubjectToken, WorkloadIdentityConfig};

use crate::api_key::set_bearer;
use crate::clock::{Clock, SystemClock};
use crate::error::AuthError;
use crate::source::{KeySource, SecretReader};
use crate::transport::{HttpClient, LazyHttp};
use aigw_core::{Credential, CredentialMaterial, CredentialProvider, OutgoingRequest, Result};
use async_trait::async_trait;
use std::sync::Arc;

const DEFAULT_METADATA: &str = "http://metadata.google.internal";
const METADATA_TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

/// Where GCP credentials come from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum GcpCredentialSource {
    /// A service-account JSON key (policy Secret key `service_account.json`).
    ServiceAccountKey(KeySource),
    /// Workload identity federation.
    WorkloadIdentity(Box<WorkloadIdentityConfig>),
    /// The instance metadata server (GKE workload identity, GCE). `endpoint` defaults to
    /// `$GCE_METADATA_HOST` or `http://metadata.google.internal`.
    MetadataServer {
        /// Base URL of the metadata server.
        endpoint: Option<String>,
    },
    /// The caller sends its own `Authorization`; only the path prefix is added.
    Passthrough,
    /// An access token obtained and rotated elsewhere (the upstream controller writes
    /// it into the ExtProc's filter configuration), read from its source each fetch.
    AccessToken(KeySource),
}

/// Configuration of a [`GcpProvider`].
#[derive(Debug, Clone)]
pub struct GcpConfig {
    /// The project requests are billed to (`projectName`). Empty: taken from the
    /// request's `gcp-project` header.
    pub project: String,
    /// The Vertex AI region. Empty: taken from the request's `gcp-region` header.
    pub region: String,
    /// Where credentials come from.
    pub source: GcpCredentialSource,
}

/// OAuth access tokens for Vertex AI, plus the `/v1/projects/{project}/locations/{region}`
/// prefix on the translated path (which starts with `/publishers/...`). Wrap in
/// [`crate::Rotating`].
#[derive(Debug)]
pub struct GcpProvider {
    name: String,
    config: GcpConfig,
    prefix: String,
    reader: Option<SecretReader>,
    http: LazyHttp,
    clock: Arc<dyn Clock>,
}

impl GcpProvider {
    /// A provider for policy `name`.
    pub fn new(name: impl Into<String>, config: GcpConfig) -> Self {
        let reader = match &config.source {
            GcpCredentialSource::ServiceAccountKey(s) | GcpCredentialSource::AccessToken(s) => {
                Some(SecretReader::new(s.clone()))
            }
            GcpCredentialSource::WorkloadIdentity(w) => match &w.subject_token {
                SubjectToken::Token(s) => Some(SecretReader::new(s.clone())),
                SubjectToken::Oidc(_) => None,
            },
            GcpCredentialSource::MetadataServer { .. } | GcpCredentialSource::Passthrough => None,
        };
        let prefix = format!(
            "/v1/projects/{}/locations/{}",
            config.project, config.region
        );
        Self {
            name: name.into(),
            config,
            prefix,
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

    /// Reads time (assertion `iat`, expiries) from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The path prefix this provider prepends.
    pub fn path_prefix(&self) -> &str {
        &self.prefix
    }

    async fn read(&self) -> Result<aigw_core::Secret, AuthError> {
        match &self.reader {
            Some(r) => r.read(&self.name).await,
            None => Err(AuthError::config(&self.name, "no credential source")),
        }
    }

    async fn fetch(&self) -> Result<Credential, AuthError> {
        match &self.config.source {
            GcpCredentialSource::Passthrough => {
                return Ok(Credential::long_lived(CredentialMaterial::None));
            }
            GcpCredentialSource::AccessToken(_) => {
                return Ok(Credential::long_lived(CredentialMaterial::Token(
                    self.read().await?,
                )));
            }
            _ => {}
        }
        let http = self.http.get(&self.name)?;
        let now = self.clock.now();
        let (token, expires_at) = match &self.config.source {
            GcpCredentialSource::ServiceAccountKey(_) => {
                let json = self.read().await?;
                let key = ServiceAccountKey::from_json(json.expose())
                    .map_err(|m| AuthError::source(&self.name, m))?;
                service_account::exchange(&http, &self.name, &key, now).await?
            }
            GcpCredentialSource::WorkloadIdentity(cfg) => {
                let subject = match &cfg.subject_token {
                    SubjectToken::Token(_) => self.read().await?,
                    SubjectToken::Oidc(oidc) => oidc.fetch(&http, &self.name, now).await?.token,
                };
                wif::fetch(&http, &self.name, cfg, &subject, now).await?
            }
            GcpCredentialSource::Passthrough | GcpCredentialSource::AccessToken(_) => {
                unreachable_passthrough(&self.name)?
            }
            GcpCredentialSource::MetadataServer { endpoint } => {
                let base = endpoint
                    .clone()
                    .or_else(|| {
                        std::env::var("GCE_METADATA_HOST")
                            .ok()
                            .filter(|h| !h.is_empty())
                            .map(|h| format!("http://{h}"))
                    })
                    .unwrap_or_else(|| DEFAULT_METADATA.to_owned());
                let url = format!("{}{METADATA_TOKEN_PATH}", base.trim_end_matches('/'));
                let req = http
                    .request(http::Method::GET, &url)
                    .header("metadata-flavor", "Google");
                let resp = http.send(&self.name, &url, req).await?;
                service_account::parse_token_response(
                    &self.name,
                    &url,
                    resp.status,
                    &resp.body,
                    now,
                )?
            }
        };
        Ok(Credential {
            material: CredentialMaterial::Token(token),
            expires_at,
        })
    }
}

#[async_trait]
impl CredentialProvider for GcpProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn credential(&self) -> Result<Credential> {
        Ok(self.fetch().await?)
    }

    fn apply(&self, credential: &Credential, request: &mut OutgoingRequest) -> Result<()> {
        match &credential.material {
            CredentialMaterial::Token(token) => set_bearer(&self.name, token, request)?,
            CredentialMaterial::None
                if matches!(self.config.source, GcpCredentialSource::Passthrough) => {}
            _ => return Err(AuthError::apply(&self.name, "expected an access token").into()),
        }
        let mut from_header = |name: &str| {
            request
                .headers
                .remove(name)
                .and_then(|v| v.to_str().ok().map(str::to_owned))
                .filter(|v| !v.is_empty())
        };
        let project = from_header("gcp-project");
        let region = from_header("gcp-region");
        if request.path.starts_with("/v1/projects/") {
            return Ok(());
        }
        let prefix = if self.config.project.is_empty() || self.config.region.is_empty() {
            let p = non_empty_or(&self.config.project, project);
            let r = non_empty_or(&self.config.region, region);
            match (p, r) {
                (Some(p), Some(r)) => format!("/v1/projects/{p}/locations/{r}"),
                _ => {
                    return Err(AuthError::MissingOverride {
                        message: "GCP project and region are required (gcp-project and gcp-region headers)".to_owned(),
                    }
                    .into());
                }
            }
        } else {
            self.prefix.clone()
        };
        request.path = format!("{prefix}{}", request.path);
        Ok(())
    }
}

fn non_empty_or(configured: &str, header: Option<String>) -> Option<String> {
    if configured.is_empty() {
        header
    } else {
        Some(configured.to_owned())
    }
}

fn unreachable_passthrough(
    policy: &str,
) -> Result<(aigw_core::Secret, Option<std::time::SystemTime>), AuthError> {
    Err(AuthError::config(
        policy,
        "passthrough policies fetch no token",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigw_core::Secret;
    use bytes::Bytes;
    use http::{HeaderMap, Method};

    #[test]
    fn prefix_is_prepended_once() {
        let p = GcpProvider::new(
            "ns/gcp",
            GcpConfig {
                project: "my-proj".into(),
                region: "us-central1".into(),
                source: GcpCredentialSource::MetadataServer { endpoint: None },
            },
        );
        let mut r = OutgoingRequest {
            method: Method::POST,
            scheme: "https".into(),
            authority: "us-central1-aiplatform.googleapis.com".into(),
            path: "/publishers/google/models/gemini-2.0-flash:streamGenerateContent?alt=sse".into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        };
        let c = Credential::long_lived(CredentialMaterial::Token(Secret::new("ya29.t")));
        p.apply(&c, &mut r).unwrap();
        assert_eq!(
            r.path,
            "/v1/projects/my-proj/locations/us-central1/publishers/google/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(r.headers["authorization"], "Bearer ya29.t");
        p.apply(&c, &mut r).unwrap();
        assert!(r.path.matches("/v1/projects/").count() == 1);
    }

    #[test]
    fn wif_audience_and_email() {
        let cfg = WorkloadIdentityConfig {
            project_id: "p1".into(),
            pool: "pool".into(),
            provider: "prov".into(),
            subject_token: SubjectToken::Token(KeySource::value("t")),
            service_account: Some("vertex".into()),
            sts_endpoint: None,
            iam_endpoint: None,
        };
        assert_eq!(
            cfg.audience(),
            "//iam.googleapis.com/projects/p1/locations/global/workloadIdentityPools/pool/providers/prov"
        );
        assert_eq!(
            cfg.service_account_email().unwrap(),
            "vertex@p1.iam.gserviceaccount.com"
        );
    }
}
