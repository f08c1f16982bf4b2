//! BackendSecurityPolicies with their secret values resolved, for `aigw-auth`.

use super::Resource;
use super::aigateway::{
    BackendSecurityPolicySpec, BackendSecurityPolicyType, CredentialOverride, OidcExchangeToken,
};
use super::meta::{SecretObjectReference, non_empty};
use super::secret::{SecretLookupError, SecretSource};
use crate::secret::Secret;
use serde_json::Value;

/// A BackendSecurityPolicy ready to build a credential provider from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSecurityPolicy {
    /// `namespace/name` of the policy.
    pub name: String,
    /// The mechanism with its secrets.
    pub kind: SecurityPolicyKind,
    /// Per-request credential override, if configured.
    pub credential_override: Option<ResolvedCredentialOverride>,
}

/// The mechanism of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecurityPolicyKind {
    /// `Authorization: Bearer <key>`.
    APIKey {
        /// The key.
        key: Secret,
    },
    /// `api-key: <key>`.
    AzureAPIKey {
        /// The key.
        key: Secret,
    },
    /// `x-api-key: <key>`.
    AnthropicAPIKey {
        /// The key.
        key: Secret,
    },
    /// AWS SigV4.
    AWSCredentials {
        /// Region.
        region: String,
        /// The credentials INI file contents, when given; otherwise the default chain
        /// (env, web identity, ECS/EC2) or the OIDC exchange.
        credentials_file: Option<Secret>,
        /// Profile in the file (default `default`).
        profile: String,
        /// OIDC → STS AssumeRoleWithWebIdentity.
        oidc_exchange: Option<AwsOidcExchange>,
    },
    /// Azure Entra ID bearer token.
    AzureCredentials {
        /// Client id.
        client_id: String,
        /// Tenant id.
        tenant_id: String,
        /// Client secret or OIDC.
        auth: AzureAuth,
    },
    /// GCP bearer token plus `/v1/projects/{p}/locations/{r}` path prefix.
    GCPCredentials {
        /// Project (`None` in passthrough mode: from the `gcp-project` header).
        project: Option<String>,
        /// Region (`None` in passthrough mode: from the `gcp-region` header).
        region: Option<String>,
        /// How to obtain a token.
        auth: GcpAuth,
    },
}

impl SecurityPolicyKind {
    /// The upstream `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::APIKey { .. } => "APIKey",
            Self::AzureAPIKey { .. } => "AzureAPIKey",
            Self::AnthropicAPIKey { .. } => "AnthropicAPIKey",
            Self::AWSCredentials { .. } => "AWSCredentials",
            Self::AzureCredentials { .. } => "AzureCredentials",
            Self::GCPCredentials { .. } => "GCPCredentials",
        }
    }
}

/// OIDC client-credentials settings (Envoy Gateway `OIDC`), with the client secret
/// resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// Issuer URL.
    pub issuer: Option<String>,
    /// Token endpoint, when not discovered from the issuer.
    pub token_endpoint: Option<String>,
    /// Client id.
    pub client_id: Option<String>,
    /// Client secret, when a `clientSecret` ref is given and resolves.
    pub client_secret: Option<Secret>,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Grant type (default `client_credentials`).
    pub grant_type: Option<String>,
    /// Audience.
    pub aud: Option<String>,
    /// The `oidc` object as written, for settings not listed here.
    pub raw: Value,
}

/// AWS OIDC exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsOidcExchange {
    /// The OIDC settings.
    pub oidc: OidcSettings,
    /// The role to assume.
    pub role_arn: String,
}

/// Azure authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AzureAuth {
    /// Client secret (Secret key `client-secret`).
    ClientSecret(Secret),
    /// OIDC token as client assertion.
    Oidc(Box<OidcSettings>),
    /// An access token minted elsewhere (the upstream controller writes it into the
    /// ExtProc's filter configuration and rotates it there).
    AccessToken(Secret),
}

/// GCP authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcpAuth {
    /// Service account JSON (Secret key `service_account.json`).
    ServiceAccountJson(Secret),
    /// Workload identity federation.
    WorkloadIdentity {
        /// Project id of the pool.
        project_id: String,
        /// Pool name.
        pool: String,
        /// Provider name.
        provider: String,
        /// OIDC settings.
        oidc: Box<OidcSettings>,
        /// Service account to impersonate.
        service_account: Option<String>,
    },
    /// Application default credentials.
    ApplicationDefault,
    /// Passthrough: the caller authenticates.
    Passthrough,
    /// An access token minted elsewhere (the upstream controller's filter
    /// configuration).
    AccessToken(Secret),
}

/// Where a per-request credential comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialOverrideSource {
    /// A request header (for AWS a header prefix).
    RequestHeader(String),
    /// Envoy dynamic metadata.
    DynamicMetadata {
        /// Namespace.
        namespace: String,
        /// Key.
        key: String,
    },
}

/// A resolved `credentialOverride` with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedCredentialOverride {
    /// The source.
    pub source: CredentialOverrideSource,
    /// Use the configured credential when the override is absent (default true).
    pub fallback_to_configured: bool,
}

/// The default override header (or AWS prefix) per policy type.
pub(crate) fn default_override_header(t: BackendSecurityPolicyType) -> &'static str {
    match t {
        BackendSecurityPolicyType::APIKey => "x-aigw-api-key",
        BackendSecurityPolicyType::AnthropicAPIKey => "x-aigw-anthropic-api-key",
        BackendSecurityPolicyType::AzureAPIKey => "x-aigw-azure-api-key",
        BackendSecurityPolicyType::AzureCredentials => "x-aigw-azure-access-token",
        BackendSecurityPolicyType::GCPCredentials => "x-aigw-gcp-access-token",
        BackendSecurityPolicyType::AWSCredentials => "x-aigw-aws-",
    }
}

fn resolve_override(
    t: BackendSecurityPolicyType,
    o: &CredentialOverride,
) -> Option<ResolvedCredentialOverride> {
    if let Some(h) = &o.from_request_headers {
        return Some(ResolvedCredentialOverride {
            source: CredentialOverrideSource::RequestHeader(
                non_empty(h.header.as_deref())
                    .unwrap_or(default_override_header(t))
                    .to_ascii_lowercase(),
            ),
            fallback_to_configured: h.fallback_to_configured.unwrap_or(true),
        });
    }
    o.from_dynamic_metadata
        .as_ref()
        .map(|m| ResolvedCredentialOverride {
            source: CredentialOverrideSource::DynamicMetadata {
                namespace: m.namespace.clone(),
                key: non_empty(m.key.as_deref())
                    .map(str::to_string)
                    .unwrap_or_else(|| match t {
                        BackendSecurityPolicyType::AWSCredentials => {
                            "x-aigw-aws-credentials".to_string()
                        }
                        other => default_override_header(other).to_string(),
                    }),
            },
            fallback_to_configured: m.fallback_to_configured.unwrap_or(true),
        })
}

/// A failed resolution: the spec field and the lookup error.
pub(crate) type ResolveFailure = (String, String);

fn secret(
    secrets: &SecretSource,
    ns: &str,
    r: &SecretObjectReference,
    key: &str,
    field: &str,
) -> Result<Secret, ResolveFailure> {
    let rns = non_empty(r.namespace.as_deref()).unwrap_or(ns);
    secrets
        .resolve(rns, &r.name, key)
        .map_err(|e: SecretLookupError| (field.to_string(), e.to_string()))
}

fn oidc(
    secrets: &SecretSource,
    ns: &str,
    o: &OidcExchangeToken,
    field: &str,
) -> Result<OidcSettings, ResolveFailure> {
    let client_secret = match &o.oidc.client_secret {
        Some(r) => Some(secret(
            secrets,
            ns,
            r,
            "client-secret",
            &format!("{field}.oidc.clientSecret"),
        )?),
        None => None,
    };
    Ok(OidcSettings {
        issuer: o.oidc.provider.issuer.clone(),
        token_endpoint: o.oidc.provider.token_endpoint.clone(),
        client_id: o.oidc.client_id.clone(),
        client_secret,
        scopes: o.oidc.scopes.clone(),
        grant_type: o.grant_type.clone(),
        aud: o.aud.clone(),
        raw: serde_json::to_value(&o.oidc).unwrap_or_default(),
    })
}

impl ResolvedSecurityPolicy {
    /// Resolves a policy's secrets. The error names the spec field and what is missing.
    pub(crate) fn resolve(
        policy: &Resource<BackendSecurityPolicySpec>,
        secrets: &SecretSource,
    ) -> Result<Self, ResolveFailure> {
        let ns = policy.namespace();
        let spec = &policy.spec;
        let missing = |f: &str| {
            (
                format!("spec.{f}"),
                format!("required when type is {:?}", spec.policy_type),
            )
        };
        let kind = match spec.policy_type {
            BackendSecurityPolicyType::APIKey => {
                let h = spec.api_key.as_ref().ok_or_else(|| missing("apiKey"))?;
                SecurityPolicyKind::APIKey {
                    key: secret(
                        secrets,
                        ns,
                        &h.secret_ref,
                        "apiKey",
                        "spec.apiKey.secretRef",
                    )?,
                }
            }
            BackendSecurityPolicyType::AzureAPIKey => {
                let h = spec
                    .azure_api_key
                    .as_ref()
                    .ok_or_else(|| missing("azureAPIKey"))?;
                SecurityPolicyKind::AzureAPIKey {
                    key: secret(
                        secrets,
                        ns,
                        &h.secret_ref,
                        "apiKey",
                        "spec.azureAPIKey.secretRef",
                    )?,
                }
            }
            BackendSecurityPolicyType::AnthropicAPIKey => {
                let h = spec
                    .anthropic_api_key
                    .as_ref()
                    .ok_or_else(|| missing("anthropicAPIKey"))?;
                SecurityPolicyKind::AnthropicAPIKey {
                    key: secret(
                        secrets,
                        ns,
                        &h.secret_ref,
                        "apiKey",
                        "spec.anthropicAPIKey.secretRef",
                    )?,
                }
            }
            BackendSecurityPolicyType::AWSCredentials => {
                let a = spec
                    .aws_credentials
                    .as_ref()
                    .ok_or_else(|| missing("awsCredentials"))?;
                let (credentials_file, profile) = match &a.credentials_file {
                    Some(f) => (
                        Some(secret(
                            secrets,
                            ns,
                            &f.secret_ref,
                            "credentials",
                            "spec.awsCredentials.credentialsFile.secretRef",
                        )?),
                        non_empty(f.profile.as_deref())
                            .unwrap_or("default")
                            .to_string(),
                    ),
                    None => (None, "default".to_string()),
                };
                let oidc_exchange = match &a.oidc_exchange_token {
                    Some(o) => Some(AwsOidcExchange {
                        oidc: oidc(secrets, ns, o, "spec.awsCredentials.oidcExchangeToken")?,
                        role_arn: o.aws_role_arn.clone().unwrap_or_default(),
                    }),
                    None => None,
                };
                SecurityPolicyKind::AWSCredentials {
                    region: a.region.clone(),
                    credentials_file,
                    profile,
                    oidc_exchange,
                }
            }
            BackendSecurityPolicyType::AzureCredentials => {
                let a = spec
                    .azure_credentials
                    .as_ref()
                    .ok_or_else(|| missing("azureCredentials"))?;
                let auth = match (&a.client_secret_ref, &a.oidc_exchange_token) {
                    (Some(r), _) => AzureAuth::ClientSecret(secret(
                        secrets,
                        ns,
                        r,
                        "client-secret",
                        "spec.azureCredentials.clientSecretRef",
                    )?),
                    (None, Some(o)) => AzureAuth::Oidc(Box::new(oidc(
                        secrets,
                        ns,
                        o,
                        "spec.azureCredentials.oidcExchangeToken",
                    )?)),
                    (None, None) => {
                        return Err((
                            "spec.azureCredentials".into(),
                            "exactly one of clientSecretRef or oidcExchangeToken must be specified"
                                .into(),
                        ));
                    }
                };
                SecurityPolicyKind::AzureCredentials {
                    client_id: a.client_id.clone(),
                    tenant_id: a.tenant_id.clone(),
                    auth,
                }
            }
            BackendSecurityPolicyType::GCPCredentials => {
                let g = spec
                    .gcp_credentials
                    .as_ref()
                    .ok_or_else(|| missing("gcpCredentials"))?;
                let auth = if let Some(f) = &g.credentials_file {
                    GcpAuth::ServiceAccountJson(secret(
                        secrets,
                        ns,
                        &f.secret_ref,
                        "service_account.json",
                        "spec.gcpCredentials.credentialsFile.secretRef",
                    )?)
                } else if let Some(w) = &g.workload_identity_federation_config {
                    GcpAuth::WorkloadIdentity {
                        project_id: w.project_id.clone(),
                        pool: w.workload_identity_pool_name.clone(),
                        provider: w.workload_identity_provider_name.clone(),
                        oidc: Box::new(oidc(
                            secrets,
                            ns,
                            &w.oidc_exchange_token,
                            "spec.gcpCredentials.workloadIdentityFederationConfig.oidcExchangeToken",
                        )?),
                        service_account: w
                            .service_account_impersonation
                            .as_ref()
                            .map(|s| s.service_account_name.clone()),
                    }
                } else if g.is_passthrough {
                    GcpAuth::Passthrough
                } else {
                    GcpAuth::ApplicationDefault
                };
                SecurityPolicyKind::GCPCredentials {
                    project: g.project_name.clone().filter(|s| !s.is_empty()),
                    region: g.region.clone().filter(|s| !s.is_empty()),
                    auth,
                }
            }
        };
        Ok(Self {
            name: policy.key(),
            kind,
            credential_override: spec
                .credential_override
                .as_ref()
                .and_then(|o| resolve_override(spec.policy_type, o)),
        })
    }
}
