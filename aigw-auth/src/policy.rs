//! From a resolved BackendSecurityPolicy to a ready credential provider.

use crate::api_key::ApiKeyProvider;
use crate::aws::{AwsCredentialSource, SigV4Config, SigV4Provider};
use crate::azure::{AzureClientAuth, AzureConfig, AzureProvider};
use crate::clock::{Clock, SystemClock};
use crate::credential_override::{CredentialOverride, OverrideKind};
use crate::error::AuthError;
use crate::gcp::{
    GcpConfig, GcpCredentialSource, GcpProvider, SubjectToken, WorkloadIdentityConfig,
};
use crate::oidc::OidcClientCredentials;
use crate::rotation::{RefreshObserver, Rotating, RotationConfig};
use crate::source::KeySource;
use crate::transport::HttpClient;
use aigw_core::config::{
    AzureAuth, CredentialOverrideSource, GcpAuth, OidcSettings, ResolvedSecurityPolicy,
    SecurityPolicyKind,
};
use aigw_core::{CredentialProvider, Result};
use std::sync::Arc;

/// Settings shared by every provider [`provider_for`] builds.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// Client for token endpoints; one is built per provider when `None`.
    pub http: Option<HttpClient>,
    /// Rotation tuning for expiring credentials.
    pub rotation: RotationConfig,
    /// Clock for rotation and signing.
    pub clock: Arc<dyn Clock>,
    /// Receives refresh outcomes (metrics).
    pub observer: Option<Arc<dyn RefreshObserver>>,
    /// STS endpoint for AWS web-identity flows; default `https://sts.{region}.amazonaws.com/`.
    pub aws_sts_endpoint: Option<String>,
}

impl Default for AuthOptions {
    fn default() -> Self {
        Self {
            http: None,
            rotation: RotationConfig::default(),
            clock: Arc::new(SystemClock),
            observer: None,
            aws_sts_endpoint: None,
        }
    }
}

fn oidc_credentials(policy: &str, o: &OidcSettings) -> Result<OidcClientCredentials, AuthError> {
    let client_id = o
        .client_id
        .clone()
        .ok_or_else(|| AuthError::config(policy, "oidcExchangeToken.oidc.clientID is required"))?;
    let client_secret = o.client_secret.clone().ok_or_else(|| {
        AuthError::config(policy, "oidcExchangeToken.oidc.clientSecret is required")
    })?;
    if o.token_endpoint.is_none() && o.issuer.is_none() {
        return Err(AuthError::config(
            policy,
            "oidcExchangeToken.oidc.provider needs tokenEndpoint or issuer",
        ));
    }
    Ok(OidcClientCredentials {
        token_endpoint: o.token_endpoint.clone().unwrap_or_default(),
        issuer: o.issuer.clone(),
        client_id,
        client_secret,
        scopes: o.scopes.clone(),
        audience: o.aud.clone(),
        secret_in_body: false,
    })
}

/// Builds the provider for `policy`: API keys as they are, every token-based type inside
/// [`Rotating`], and the [`CredentialOverride`] wrapper outermost when configured.
///
/// Fails for settings this crate cannot serve: `credentialOverride.fromDynamicMetadata`
/// (only the ExtProc adapter sees Envoy metadata) and incomplete OIDC settings.
pub fn provider_for(
    policy: &ResolvedSecurityPolicy,
    options: &AuthOptions,
) -> Result<Arc<dyn CredentialProvider>> {
    let name = policy.name.as_str();
    let rotating = |p: Arc<dyn CredentialProvider>| -> Arc<dyn CredentialProvider> {
        let mut r = Rotating::new(p)
            .with_config(options.rotation)
            .with_clock(options.clock.clone());
        if let Some(o) = &options.observer {
            r = r.with_observer(o.clone());
        }
        Arc::new(r)
    };
    let (base, kind): (Arc<dyn CredentialProvider>, OverrideKind) = match &policy.kind {
        SecurityPolicyKind::APIKey { key } => (
            Arc::new(ApiKeyProvider::bearer(name, KeySource::Value(key.clone()))),
            OverrideKind::ApiKey,
        ),
        SecurityPolicyKind::AzureAPIKey { key } => (
            Arc::new(ApiKeyProvider::azure(name, KeySource::Value(key.clone()))),
            OverrideKind::AzureApiKey,
        ),
        SecurityPolicyKind::AnthropicAPIKey { key } => (
            Arc::new(ApiKeyProvider::anthropic(
                name,
                KeySource::Value(key.clone()),
            )),
            OverrideKind::AnthropicApiKey,
        ),
        SecurityPolicyKind::AWSCredentials {
            region,
            credentials_file,
            profile,
            oidc_exchange,
        } => {
            let source = match (credentials_file, oidc_exchange) {
                (Some(file), _) => AwsCredentialSource::SharedFile {
                    source: KeySource::Value(file.clone()),
                    profile: if profile.is_empty() {
                        "default".to_owned()
                    } else {
                        profile.clone()
                    },
                },
                (None, Some(x)) => AwsCredentialSource::OidcExchange {
                    oidc: oidc_credentials(name, &x.oidc)?,
                    role_arn: x.role_arn.clone(),
                    // Upstream names the session after the policy.
                    session_name: session_name(name),
                },
                (None, None) => AwsCredentialSource::DefaultChain,
            };
            let mut cfg = SigV4Config::new(region.clone(), source);
            cfg.sts_endpoint.clone_from(&options.aws_sts_endpoint);
            let mut p = SigV4Provider::new(name, cfg).with_clock(options.clock.clone());
            if let Some(h) = &options.http {
                p = p.with_http_client(h.clone());
            }
            (rotating(Arc::new(p)), OverrideKind::Aws)
        }
        SecurityPolicyKind::AzureCredentials {
            auth: AzureAuth::AccessToken(token),
            ..
        } => (
            // Minted and rotated by whoever wrote it: sent as it is.
            Arc::new(ApiKeyProvider::bearer(
                name,
                KeySource::Value(token.clone()),
            )),
            OverrideKind::AzureAccessToken,
        ),
        SecurityPolicyKind::AzureCredentials {
            client_id,
            tenant_id,
            auth,
        } => {
            let auth = match auth {
                AzureAuth::AccessToken(_) => {
                    return Err(AuthError::config(name, "unreachable: access token").into());
                }
                AzureAuth::ClientSecret(s) => {
                    AzureClientAuth::ClientSecret(KeySource::Value(s.clone()))
                }
                AzureAuth::Oidc(o) => {
                    AzureClientAuth::AssertionFromOidc(oidc_credentials(name, o)?)
                }
            };
            let mut p = AzureProvider::new(
                name,
                AzureConfig::new(tenant_id.clone(), client_id.clone(), auth),
            )
            .with_clock(options.clock.clone());
            if let Some(h) = &options.http {
                p = p.with_http_client(h.clone());
            }
            (rotating(Arc::new(p)), OverrideKind::AzureAccessToken)
        }
        SecurityPolicyKind::GCPCredentials {
            project,
            region,
            auth,
        } => {
            let source = match auth {
                GcpAuth::ServiceAccountJson(s) => {
                    GcpCredentialSource::ServiceAccountKey(KeySource::Value(s.clone()))
                }
                GcpAuth::WorkloadIdentity {
                    project_id,
                    pool,
                    provider,
                    oidc,
                    service_account,
                } => GcpCredentialSource::WorkloadIdentity(Box::new(WorkloadIdentityConfig {
                    project_id: project_id.clone(),
                    pool: pool.clone(),
                    provider: provider.clone(),
                    subject_token: SubjectToken::Oidc(oidc_credentials(name, oidc)?),
                    service_account: service_account.clone(),
                    sts_endpoint: None,
                    iam_endpoint: None,
                })),
                GcpAuth::ApplicationDefault => {
                    match std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
                        Some(path) if !path.is_empty() => {
                            application_credentials(name, path.into())?
                        }
                        _ => GcpCredentialSource::MetadataServer { endpoint: None },
                    }
                }
                GcpAuth::Passthrough => GcpCredentialSource::Passthrough,
                GcpAuth::AccessToken(t) => {
                    GcpCredentialSource::AccessToken(KeySource::Value(t.clone()))
                }
            };
            let passthrough = matches!(
                source,
                GcpCredentialSource::Passthrough | GcpCredentialSource::AccessToken(_)
            );
            let cfg = GcpConfig {
                project: project.clone().unwrap_or_default(),
                region: region.clone().unwrap_or_default(),
                source,
            };
            let mut p = GcpProvider::new(name, cfg).with_clock(options.clock.clone());
            if let Some(h) = &options.http {
                p = p.with_http_client(h.clone());
            }
            let p: Arc<dyn CredentialProvider> = Arc::new(p);
            (
                if passthrough { p } else { rotating(p) },
                OverrideKind::GcpAccessToken,
            )
        }
        other => {
            return Err(AuthError::config(
                name,
                format!("policy type {} is not supported", other.type_name()),
            )
            .into());
        }
    };
    let Some(over) = &policy.credential_override else {
        return Ok(base);
    };
    match &over.source {
        CredentialOverrideSource::RequestHeader(header) => Ok(Arc::new(
            CredentialOverride::new(base, kind)
                .with_header(header.clone())
                .fallback_to_configured(over.fallback_to_configured),
        )),
        CredentialOverrideSource::DynamicMetadata { .. } => Err(AuthError::config(
            name,
            "credentialOverride.fromDynamicMetadata is only available behind Envoy (aigw-extproc)",
        )
        .into()),
    }
}

/// [`provider_for`] with `options`, as the planner's credential resolver
/// ([`aigw_core::planner::CredentialResolver`]): a policy it cannot serve fails the
/// configuration load, naming the policy.
pub fn resolver(options: AuthOptions) -> aigw_core::planner::CredentialResolver {
    std::sync::Arc::new(move |policy: &ResolvedSecurityPolicy| provider_for(policy, &options))
}

/// An STS `RoleSessionName` from a policy name (`[\w+=,.@-]{2,64}`).
fn session_name(policy: &str) -> String {
    let s: String = policy
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if s.len() < 2 { format!("aigw-{s}") } else { s }
}

/// `GOOGLE_APPLICATION_CREDENTIALS`: an `external_account` configuration (workload
/// identity federation from a token file, e.g. a projected service-account token on
/// Kubernetes) or a service-account key, read on every refresh.
pub fn application_credentials(
    name: &str,
    path: std::path::PathBuf,
) -> std::result::Result<GcpCredentialSource, AuthError> {
    let Ok(text) = std::fs::read_to_string(&path) else {
        // Not readable yet: a key file read at the first refresh, as before.
        return Ok(GcpCredentialSource::ServiceAccountKey(KeySource::File(
            path,
        )));
    };
    let is_external = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .is_some_and(|v| v["type"] == "external_account");
    if !is_external {
        return Ok(GcpCredentialSource::ServiceAccountKey(KeySource::File(
            path,
        )));
    }
    WorkloadIdentityConfig::from_external_account(&text)
        .map(|c| GcpCredentialSource::WorkloadIdentity(Box::new(c)))
        .map_err(|e| AuthError::config(name, format!("{}: {e}", path.display())))
}
