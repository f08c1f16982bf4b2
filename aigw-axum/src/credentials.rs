//! The default [`CredentialResolver`]: BackendSecurityPolicies to `aigw-auth` providers.

use crate::config::CredentialResolver;
use aigw_auth::aws::{AwsCredentialSource, SigV4Config, SigV4Provider};
use aigw_auth::{ApiKeyProvider, KeySource, Rotating};
use aigw_core::config::{ResolvedSecurityPolicy, SecurityPolicyKind};
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
