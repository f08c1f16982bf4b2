//! The default [`CredentialResolver`]: BackendSecurityPolicies to `aigw-auth` providers.

use crate::config::CredentialResolver;
use aigw_auth::aws::{AwsCredentialSource, SigV4Config, SigV4Provider};
use aigw_auth::gcp::{GcpConfig, GcpCredentialSource, GcpProvider};
use aigw_auth::{ApiKeyProvider, KeySource, Rotating};
use aigw_core::config::{GcpAuth, ResolvedSecurityPolicy, SecurityPolicyKind};
use aigw_core::{CredentialProvider, Error, Result};
use std::sync::Arc;

/// Maps a resolved policy to its provider. Keys are served as configured; AWS
/// credentials go through the rotation wrapper so temporary keys refresh ahead of
/// expiry. Policies this build cannot serve yet are reported at first use.
pub fn provider_for(policy: &ResolvedSecurityPolicy) -> Result<Arc<dyn CredentialProvider>> {
    let name = policy.name.clone();
    Ok(match &policy.kind {
        SecurityPolicyKind::APIKey { key } => {
            Arc::new(ApiKeyProvider::bearer(name, KeySource::Value(key.clone())))
        }
        SecurityPolicyKind::AzureAPIKey { key } => {
            Arc::new(ApiKeyProvider::azure(name, KeySource::Value(key.clone())))
        }
        SecurityPolicyKind::AnthropicAPIKey { key } => Arc::new(ApiKeyProvider::anthropic(
            name,
            KeySource::Value(key.clone()),
        )),
        SecurityPolicyKind::AWSCredentials {
            region,
            credentials_file,
            profile,
            oidc_exchange: None,
        } => {
            let source = match credentials_file {
                Some(file) => AwsCredentialSource::SharedFile {
                    source: KeySource::Value(file.clone()),
                    profile: profile.clone(),
                },
                None => AwsCredentialSource::DefaultChain,
            };
            let inner = SigV4Provider::new(name, SigV4Config::new(region.clone(), source));
            Arc::new(Rotating::new(Arc::new(inner)))
        }
        SecurityPolicyKind::GCPCredentials {
            project,
            region,
            auth,
        } => {
            let source = match auth {
                GcpAuth::ServiceAccountJson(key) => {
                    GcpCredentialSource::ServiceAccountKey(KeySource::Value(key.clone()))
                }
                GcpAuth::ApplicationDefault => {
                    GcpCredentialSource::MetadataServer { endpoint: None }
                }
                _ => {
                    return Err(Error::Credential {
                        policy: name,
                        message: "GCP workload identity federation and passthrough are not supported by the standalone gateway yet".into(),
                    });
                }
            };
            let config = GcpConfig {
                project: project.clone().unwrap_or_default(),
                region: region.clone().unwrap_or_default(),
                source,
            };
            Arc::new(Rotating::new(Arc::new(GcpProvider::new(name, config))))
        }
        other => {
            return Err(Error::Credential {
                policy: name,
                message: format!(
                    "BackendSecurityPolicy type {} is not supported by the standalone gateway yet",
                    other.type_name()
                ),
            });
        }
    })
}

/// [`provider_for`] as a [`CredentialResolver`].
pub fn default_resolver() -> CredentialResolver {
    Arc::new(provider_for)
}
