//! Envoy Gateway `SecurityPolicy` (`gateway.envoyproxy.io/v1alpha1`): the client
//! authentication parts a gateway without Envoy honours itself — `apiKeyAuth` and
//! `jwt`. Other sections (CORS, basic auth, OIDC, ext-auth, authorization) configure
//! Envoy and are accepted without being read.

use super::meta::{PolicyTargetReference, SecretObjectReference};
use serde::Deserialize;

/// `SecurityPolicy.spec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityPolicySpec {
    /// Targets (Gateway, HTTPRoute, …).
    #[serde(default)]
    pub target_refs: Vec<PolicyTargetReference>,
    /// Deprecated single target.
    #[serde(default)]
    pub target_ref: Option<PolicyTargetReference>,
    /// Static API keys.
    #[serde(default)]
    pub api_key_auth: Option<ApiKeyAuth>,
    /// JWT providers.
    #[serde(default)]
    pub jwt: Option<JwtAuth>,
}

impl SecurityPolicySpec {
    /// Every target, the deprecated `targetRef` included.
    pub fn targets(&self) -> impl Iterator<Item = &PolicyTargetReference> {
        self.target_refs.iter().chain(self.target_ref.iter())
    }
}

/// `apiKeyAuth`: each key of each referenced Secret's data is a client id, its value
/// that client's key.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyAuth {
    /// Secrets holding the keys.
    #[serde(default)]
    pub credential_refs: Vec<SecretObjectReference>,
    /// Where the key is read from.
    #[serde(default)]
    pub extract_from: Vec<ExtractFrom>,
}

/// One `extractFrom` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtractFrom {
    /// Header names.
    #[serde(default)]
    pub headers: Vec<String>,
    /// Query parameters.
    #[serde(default)]
    pub params: Vec<String>,
    /// Cookies.
    #[serde(default)]
    pub cookies: Vec<String>,
}

/// `jwt`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JwtAuth {
    /// Providers; a token verified by any of them is accepted.
    #[serde(default)]
    pub providers: Vec<JwtProvider>,
    /// Whether a request without a token is let through.
    #[serde(default)]
    pub optional: Option<bool>,
}

/// One `jwt.providers[]` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JwtProvider {
    /// Provider name.
    #[serde(default)]
    pub name: String,
    /// Required `iss`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Accepted `aud` values.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Keys fetched from a URL.
    #[serde(default, rename = "remoteJWKS")]
    pub remote_jwks: Option<RemoteJwks>,
    /// Keys given in the policy.
    #[serde(default, rename = "localJWKS")]
    pub local_jwks: Option<LocalJwks>,
}

/// `remoteJWKS`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteJwks {
    /// The JWKS URL.
    pub uri: String,
}

/// `localJWKS`: `type: Inline` with `inline`, or `type: ValueRef` naming a ConfigMap
/// whose `jwks` key holds the document.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalJwks {
    /// `Inline` or `ValueRef`.
    #[serde(default, rename = "type")]
    pub jwks_type: Option<String>,
    /// The JWKS document.
    #[serde(default)]
    pub inline: Option<String>,
    /// A ConfigMap reference.
    #[serde(default)]
    pub value_ref: Option<LocalObjectRef>,
}

/// A local object reference (`group`, `kind`, `name`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectRef {
    /// Group.
    #[serde(default)]
    pub group: Option<String>,
    /// Kind.
    #[serde(default)]
    pub kind: Option<String>,
    /// Name.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn security_policy_api_keys_and_jwt_are_typed() {
        let yaml = r#"apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata:
  name: client-auth
  namespace: default
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: Gateway
      name: aigw
  cors:
    allowOrigins: ["*"]
  apiKeyAuth:
    credentialRefs:
      - name: client-keys
    extractFrom:
      - headers: ["x-client-key"]
  jwt:
    providers:
      - name: idp
        issuer: https://issuer.example
        audiences: [aigw]
        remoteJWKS:
          uri: https://issuer.example/jwks.json
      - name: local
        localJWKS:
          type: Inline
          inline: '{"keys":[]}'
"#;
        let c = Config::from_yaml_str(yaml, "t.yaml").unwrap();
        assert!(c.ignored.is_empty(), "{:?}", c.ignored);
        let p = &c.envoy_security_policies[0];
        assert_eq!(p.metadata.name, "client-auth");
        assert_eq!(p.spec.targets().next().unwrap().kind, "Gateway");
        let keys = p.spec.api_key_auth.as_ref().unwrap();
        assert_eq!(keys.credential_refs[0].name, "client-keys");
        assert_eq!(keys.extract_from[0].headers, ["x-client-key"]);
        let jwt = p.spec.jwt.as_ref().unwrap();
        assert_eq!(
            jwt.providers[0].issuer.as_deref(),
            Some("https://issuer.example")
        );
        assert_eq!(jwt.providers[0].audiences, ["aigw"]);
        assert_eq!(
            jwt.providers[0].remote_jwks.as_ref().unwrap().uri,
            "https://issuer.example/jwks.json"
        );
        assert_eq!(
            jwt.providers[1]
                .local_jwks
                .as_ref()
                .unwrap()
                .inline
                .as_deref(),
            Some("{\"keys\":[]}")
        );
    }
}
