//! The ExtProc's credential providers: what only Envoy's metadata can serve. Building,
//! caching across reloads and the failure policy are the shared planner's
//! ([`aigw_core::planner::credentials`]).
//!
//! Every policy type goes through [`aigw_auth::provider_for`]. The one variant only an
//! ExtProc can serve, `credentialOverride.fromDynamicMetadata`, is built here: the
//! configured provider wrapped in aigw-auth's [`CredentialOverride`] reading internal
//! headers, which the upstream-level stream fills from the request's dynamic metadata
//! (Envoy forwards the namespace in `metadata_context`) just before the credential is
//! applied. Internal headers sent by a client are always dropped first, so only Envoy
//! metadata can supply that credential.

use aigw_auth::{AuthOptions, CredentialOverride, OverrideKind};
use aigw_core::config::{CredentialOverrideSource, ResolvedSecurityPolicy, SecurityPolicyKind};
use aigw_core::{CredentialProvider, Error, Result};
use envoy_types::pb::envoy::config::core::v3::Metadata as PbMetadata;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::sync::Arc;

pub use aigw_core::planner::{ProviderCache, ProviderSet};

/// The internal header a metadata token or key is staged in.
pub const METADATA_TOKEN_HEADER: &str = "x-aigw-internal-metadata-credential";
/// The internal header prefix AWS metadata credentials are staged under.
pub const METADATA_AWS_PREFIX: &str = "x-aigw-internal-metadata-aws-";

const AWS_ACCESS_KEY_ID: &str = "x-aigw-internal-metadata-aws-access-key-id";
const AWS_SECRET_ACCESS_KEY: &str = "x-aigw-internal-metadata-aws-secret-access-key";
const AWS_SESSION_TOKEN: &str = "x-aigw-internal-metadata-aws-session-token";

/// Every internal staging header; none of them may come from a client or reach a backend.
pub const INTERNAL_HEADERS: [&str; 4] = [
    METADATA_TOKEN_HEADER,
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN,
];

/// Where a policy's per-request credential sits in Envoy's dynamic metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataCredential {
    /// The metadata namespace (the filter that wrote it, e.g. ext_authz).
    pub namespace: String,
    /// The key within the namespace.
    pub key: String,
    /// AWS: the value is a struct `accessKeyId`/`secretAccessKey`/`sessionToken`;
    /// otherwise a string.
    pub aws: bool,
}

impl MetadataCredential {
    /// Drops any client-sent staging header from `headers`, then stages the credential
    /// found in the first of `sources` that has it (Envoy sends an empty
    /// `metadata_context` where nothing is forwarded) where the provider's override
    /// wrapper reads it.
    pub fn stage(&self, sources: &[Option<&PbMetadata>], headers: &mut HeaderMap) {
        strip_internal(headers);
        let Some(value) = sources.iter().flatten().find_map(|m| {
            m.filter_metadata
                .get(&self.namespace)
                .and_then(|s| s.fields.get(&self.key))
        }) else {
            return;
        };
        if self.aws {
            if let Some(Kind::StructValue(s)) = &value.kind {
                put(headers, AWS_ACCESS_KEY_ID, field(s, "accessKeyId"));
                put(headers, AWS_SECRET_ACCESS_KEY, field(s, "secretAccessKey"));
                put(headers, AWS_SESSION_TOKEN, field(s, "sessionToken"));
            }
        } else {
            put(headers, METADATA_TOKEN_HEADER, string(value));
        }
    }
}

/// Removes every internal staging header.
pub fn strip_internal(headers: &mut HeaderMap) {
    for name in INTERNAL_HEADERS {
        headers.remove(name);
    }
}

fn string(v: &Value) -> Option<&str> {
    match &v.kind {
        Some(Kind::StringValue(s)) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    }
}

fn field<'a>(s: &'a Struct, name: &str) -> Option<&'a str> {
    s.fields.get(name).and_then(string)
}

fn put(headers: &mut HeaderMap, name: &'static str, value: Option<&str>) {
    if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
        let mut v = v;
        v.set_sensitive(true);
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// The override header family of a policy type.
fn override_kind(policy: &ResolvedSecurityPolicy) -> Result<OverrideKind> {
    Ok(match &policy.kind {
        SecurityPolicyKind::APIKey { .. } => OverrideKind::ApiKey,
        SecurityPolicyKind::AzureAPIKey { .. } => OverrideKind::AzureApiKey,
        SecurityPolicyKind::AnthropicAPIKey { .. } => OverrideKind::AnthropicApiKey,
        SecurityPolicyKind::AWSCredentials { .. } => OverrideKind::Aws,
        SecurityPolicyKind::AzureCredentials { .. } => OverrideKind::AzureAccessToken,
        SecurityPolicyKind::GCPCredentials { .. } => OverrideKind::GcpAccessToken,
        other => {
            return Err(Error::Credential {
                policy: policy.name.clone(),
                message: format!(
                    "credentialOverride is not supported for policy type {}",
                    other.type_name()
                ),
            });
        }
    })
}

/// The metadata source of a policy's credential override, if it has one.
pub fn metadata_source(policy: &ResolvedSecurityPolicy) -> Option<MetadataCredential> {
    match &policy.credential_override.as_ref()?.source {
        CredentialOverrideSource::DynamicMetadata { namespace, key } => Some(MetadataCredential {
            namespace: namespace.clone(),
            key: key.clone(),
            aws: matches!(policy.kind, SecurityPolicyKind::AWSCredentials { .. }),
        }),
        CredentialOverrideSource::RequestHeader(_) => None,
    }
}

/// Builds the provider for `policy`: aigw-auth's for every type, with the
/// `fromDynamicMetadata` override wired to the internal staging headers.
pub fn provider_for(
    policy: &ResolvedSecurityPolicy,
    options: &AuthOptions,
) -> Result<Arc<dyn CredentialProvider>> {
    let Some(md) = metadata_source(policy) else {
        return aigw_auth::provider_for(policy, options);
    };
    let fallback = policy
        .credential_override
        .as_ref()
        .is_none_or(|o| o.fallback_to_configured);
    let kind = override_kind(policy)?;
    let mut configured = policy.clone();
    configured.credential_override = None;
    let base = aigw_auth::provider_for(&configured, options)?;
    let header = if md.aws {
        METADATA_AWS_PREFIX
    } else {
        METADATA_TOKEN_HEADER
    };
    Ok(Arc::new(
        CredentialOverride::new(base, kind)
            .with_header(header)
            .fallback_to_configured(fallback),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::google::protobuf::Struct;

    fn sv(s: &str) -> Value {
        Value {
            kind: Some(Kind::StringValue(s.into())),
        }
    }

    fn md(ns: &str, key: &str, v: Value) -> PbMetadata {
        let mut inner = Struct::default();
        inner.fields.insert(key.into(), v);
        let mut m = PbMetadata::default();
        m.filter_metadata.insert(ns.into(), inner);
        m
    }

    #[test]
    fn stages_token_and_drops_client_copies() {
        let src = MetadataCredential {
            namespace: "envoy.filters.http.ext_authz".into(),
            key: "x-aigw-api-key".into(),
            aws: false,
        };
        let mut h = HeaderMap::new();
        h.insert(METADATA_TOKEN_HEADER, HeaderValue::from_static("client"));
        h.insert(AWS_ACCESS_KEY_ID, HeaderValue::from_static("client"));
        src.stage(&[None], &mut h);
        assert!(h.is_empty(), "client-sent staging headers survive: {h:?}");

        let m = md(
            "envoy.filters.http.ext_authz",
            "x-aigw-api-key",
            sv("from-md"),
        );
        h.insert(METADATA_TOKEN_HEADER, HeaderValue::from_static("client"));
        src.stage(&[Some(&PbMetadata::default()), Some(&m)], &mut h);
        assert_eq!(h[METADATA_TOKEN_HEADER], "from-md");

        // Another namespace or key is not ours.
        let other = md("other", "x-aigw-api-key", sv("nope"));
        src.stage(&[Some(&other)], &mut h);
        assert!(h.is_empty());
    }

    #[test]
    fn stages_aws_struct() {
        let src = MetadataCredential {
            namespace: "ns".into(),
            key: "x-aigw-aws-credentials".into(),
            aws: true,
        };
        let mut s = Struct::default();
        s.fields.insert("accessKeyId".into(), sv("AKIA"));
        s.fields.insert("secretAccessKey".into(), sv("secret"));
        let m = md(
            "ns",
            "x-aigw-aws-credentials",
            Value {
                kind: Some(Kind::StructValue(s)),
            },
        );
        let mut h = HeaderMap::new();
        src.stage(&[Some(&PbMetadata::default()), Some(&m)], &mut h);
        assert_eq!(h[AWS_ACCESS_KEY_ID], "AKIA");
        assert_eq!(h[AWS_SECRET_ACCESS_KEY], "secret");
        assert!(!h.contains_key(AWS_SESSION_TOKEN));
        assert!(h[AWS_ACCESS_KEY_ID].is_sensitive());
    }
}
