//! The default [`CredentialResolver`]: BackendSecurityPolicies to `aigw-auth`
//! providers ([`aigw_auth::provider_for`]: API keys, AWS SigV4 from a file, the default
//! chain or OIDC/STS web identity, Azure Entra client secret or federated assertion, GCP
//! service account, metadata server, workload identity federation or passthrough — with
//! rotation ahead of expiry and `credentialOverride` headers).
//!
//! The resolver is called once per policy per configuration load by the shared
//! planner, which keeps the providers of unchanged policies across reloads, so rotation
//! state outlives a reload. The credential-failure policy is the planner's
//! ([`aigw_core::planner::credentials`]): a policy that cannot be turned into a provider
//! fails the load; a credential that cannot be fetched at request time fails the
//! attempt with a 503-class error and the gateway fails over to the next backend.

use crate::config::CredentialResolver;
use aigw_auth::gcp::{GcpConfig, GcpCredentialSource, GcpProvider};
use aigw_auth::{AuthOptions, Rotating};
use aigw_core::config::{GcpAuth, ResolvedSecurityPolicy, SecurityPolicyKind};
use aigw_core::credential::Credential;
use aigw_core::{CredentialProvider, Error, OutgoingRequest, Result};
use std::sync::Arc;

/// Maps a resolved policy to its provider with default [`AuthOptions`].
pub fn provider_for(policy: &ResolvedSecurityPolicy) -> Result<Arc<dyn CredentialProvider>> {
    aigw_auth::provider_for(policy, &AuthOptions::default())
}

/// A resolver over [`aigw_auth::provider_for`] with `options` ([`aigw_auth::resolver`]).
pub fn resolver(options: AuthOptions) -> CredentialResolver {
    aigw_auth::resolver(options)
}

/// Like [`resolver`], but GCP application default credentials ask the metadata server
/// at `endpoint` (e.g. `http://127.0.0.1:8080`) for tokens instead of
/// `$GCE_METADATA_HOST` or `metadata.google.internal` — how simulator mode gives its
/// Vertex backend real, rotating GCP tokens from the bundled simulator.
pub fn resolver_with_gcp_metadata(options: AuthOptions, endpoint: String) -> CredentialResolver {
    let fallback = resolver(options.clone());
    Arc::new(move |policy: &ResolvedSecurityPolicy| {
        let SecurityPolicyKind::GCPCredentials {
            project,
            region,
            auth: GcpAuth::ApplicationDefault,
        } = &policy.kind
        else {
            return fallback(policy);
        };
        let config = GcpConfig {
            project: project.clone().unwrap_or_default(),
            region: region.clone().unwrap_or_default(),
            source: GcpCredentialSource::MetadataServer {
                endpoint: Some(endpoint.clone()),
            },
        };
        let provider =
            GcpProvider::new(policy.name.clone(), config).with_clock(options.clock.clone());
        let rotating = Rotating::new(Arc::new(provider))
            .with_config(options.rotation)
            .with_clock(options.clock.clone());
        Ok(Arc::new(rotating) as Arc<dyn CredentialProvider>)
    })
}

/// [`resolver`] with default options.
pub fn default_resolver() -> CredentialResolver {
    resolver(AuthOptions::default())
}

/// A provider whose every request for a credential fails with a fixed error, so
/// attempts on its backends fail over: for an embedder's own planner that keeps a
/// backend configured but out of service.
#[derive(Debug, Clone)]
pub struct Unavailable {
    policy: String,
    message: String,
}

impl Unavailable {
    /// The provider for `policy`, failing with `error`'s description.
    pub fn new(policy: impl Into<String>, error: &Error) -> Self {
        Self {
            policy: policy.into(),
            message: error.to_string(),
        }
    }
}

#[async_trait::async_trait]
impl CredentialProvider for Unavailable {
    fn name(&self) -> &str {
        &self.policy
    }

    async fn credential(&self) -> Result<Credential> {
        Err(Error::Credential {
            policy: self.policy.clone(),
            message: self.message.clone(),
        })
    }

    fn apply(&self, _credential: &Credential, _request: &mut OutgoingRequest) -> Result<()> {
        Err(Error::Credential {
            policy: self.policy.clone(),
            message: self.message.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigw_core::config::{Config, SecretSource};

    fn policy(yaml_spec: &str) -> ResolvedSecurityPolicy {
        let yaml = format!(
            r#"apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata:
  name: r
spec:
  rules:
    - backendRefs:
        - name: b
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata:
  name: b
spec:
  schema:
    name: OpenAI
  backendRef:
    name: b
    kind: Backend
    group: gateway.envoyproxy.io
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata:
  name: b
spec:
  endpoints:
    - fqdn:
        hostname: example.com
        port: 443
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: BackendSecurityPolicy
metadata:
  name: p
spec:
  targetRefs:
    - group: aigateway.envoyproxy.io
      kind: AIServiceBackend
      name: b
{yaml_spec}
"#
        );
        let config = Config::from_yaml_str(&yaml, "t.yaml").unwrap();
        let snap = aigw_core::routing::Snapshot::compile_with_secrets(
            &config,
            &SecretSource::from_config(&config),
        )
        .unwrap();
        let m = snap.route("gpt", &http::HeaderMap::new()).unwrap();
        let c = m.attempt_order(0).into_iter().next().unwrap();
        (*c.target.security_policy.clone().unwrap()).clone()
    }

    #[tokio::test]
    async fn api_key_policy_resolves_through_aigw_auth() {
        let p = policy(
            "  type: APIKey\n  apiKey:\n    secretRef:\n      name: k\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: k\nstringData:\n  apiKey: sk-upstream\n",
        );
        let provider = (default_resolver())(&p).unwrap();
        let c = provider.credential().await.unwrap();
        let mut req = OutgoingRequest {
            method: http::Method::POST,
            scheme: "https".into(),
            authority: "example.com".into(),
            path: "/v1/chat/completions".into(),
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::new(),
        };
        provider.apply(&c, &mut req).unwrap();
        assert_eq!(req.headers["authorization"], "Bearer sk-upstream");
    }

    #[tokio::test]
    async fn unavailable_provider_fails_every_credential_request_with_503() {
        let e = Error::Credential {
            policy: "default/p".into(),
            message: "no token endpoint".into(),
        };
        let p = Unavailable::new("default/p", &e);
        let err = p.credential().await.unwrap_err();
        assert_eq!(err.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(err.to_string().contains("no token endpoint"));
    }
}
