//! MCPRoute client authentication: MCP-spec OAuth (a bearer JWT verified against the
//! route's JWKS, issuer and audiences; RFC 9728 protected-resource metadata;
//! `WWW-Authenticate` challenges). The authorization rules are in `authz`.
//!
//! Upstream has Envoy verify the token and parses it unverified in its proxy; here the
//! gateway verifies it itself, so every packaging is protected the same way.

use crate::config::MCPRouteOAuth;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the keys come from.
#[derive(Debug)]
pub(crate) enum Keys {
    /// `localJWKS.inline`.
    Local(Arc<JwkSet>),
    /// `remoteJWKS.uri`, or (no `jwks`) the `jwks_uri` of the issuer's RFC 8414
    /// metadata; fetched through the packaging's client and cached.
    Remote {
        uri: Option<String>,
        ttl: Duration,
        cache: Mutex<Option<(Instant, Arc<JwkSet>)>>,
    },
}

/// How long the authorization server's metadata is kept.
const AS_METADATA_TTL: Duration = Duration::from_secs(300);
/// How long the fallback document is served before the issuer is asked again.
const AS_FALLBACK_TTL: Duration = Duration::from_secs(30);

/// A route's OAuth settings, compiled.
#[derive(Debug)]
pub(crate) struct OAuth {
    pub(crate) issuer: String,
    audiences: Vec<String>,
    pub(crate) keys: Keys,
    /// The RFC 9728 document.
    pub(crate) metadata: Value,
    /// Its URL, named in challenges.
    pub(crate) metadata_url: String,
    /// `scopesSupported`, for the fallback authorization-server document.
    scopes_supported: Vec<String>,
    /// The issuer's RFC 8414 metadata (fetched: `true`), or the fallback (`false`).
    as_metadata: Mutex<Option<(Instant, bool, Arc<Value>)>>,
}

/// The keys could not be had (remote JWKS unreachable and nothing cached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeysUnavailable(pub(crate) String);

impl OAuth {
    /// The current keys: local, or the remote set (cached for its TTL; a stale set
    /// keeps serving while the JWKS endpoint is down).
    pub(crate) async fn keys(
        &self,
        upstream: &dyn super::McpUpstream,
    ) -> Result<Arc<JwkSet>, KeysUnavailable> {
        let (uri, ttl, cache) = match &self.keys {
            Keys::Local(k) => return Ok(k.clone()),
            Keys::Remote { uri, ttl, cache } => (uri, *ttl, cache),
        };
        let cached = cache.lock().ok().and_then(|c| c.clone());
        if let Some((at, k)) = &cached
            && at.elapsed() < ttl
        {
            return Ok(k.clone());
        }
        let uri = match uri {
            Some(u) => u.clone(),
            None => match self.discovered_jwks_uri(upstream).await {
                Ok(u) => u,
                Err(e) => {
                    return cached.map(|(_, k)| k).ok_or(KeysUnavailable(e));
                }
            },
        };
        let uri = &uri;
        let fetched = upstream.fetch(uri).await.map_err(|e| e.0).and_then(|b| {
            serde_json::from_slice::<JwkSet>(&b).map_err(|e| format!("not a JWK set: {e}"))
        });
        match (fetched, cached) {
            (Ok(k), _) => {
                let k = Arc::new(k);
                if let Ok(mut c) = cache.lock() {
                    *c = Some((Instant::now(), k.clone()));
                }
                Ok(k)
            }
            (Err(e), Some((_, stale))) => {
                tracing::warn!(target: "aigw::mcp", jwks = %uri, error = %e, "JWKS refresh failed; the cached keys keep serving");
                Ok(stale)
            }
            (Err(e), None) => Err(KeysUnavailable(format!("JWKS {uri}: {e}"))),
        }
    }
}

impl OAuth {
    /// The issuer's authorization-server metadata (RFC 8414), served to MCP clients of
    /// the 2025-03-26 revision as upstream does: fetched from the issuer's well-known
    /// locations (RFC 8414 and OpenID, inserted before and appended after the issuer's
    /// path, in upstream's order) and cached; when none answers, upstream's fallback
    /// document (Keycloak's endpoint layout under the issuer).
    pub(crate) async fn as_metadata(&self, upstream: &dyn super::McpUpstream) -> Arc<Value> {
        if let Some((_, _, doc)) = self.cached_as_metadata() {
            return doc;
        }
        match self.fetch_as_metadata(upstream).await {
            Ok(doc) => doc,
            Err(e) => {
                tracing::warn!(target: "aigw::mcp", issuer = %self.issuer, error = %e, "authorization server metadata unavailable; serving the fallback document");
                let doc = Arc::new(self.fallback_as_metadata());
                if let Ok(mut c) = self.as_metadata.lock() {
                    *c = Some((Instant::now(), false, doc.clone()));
                }
                doc
            }
        }
    }

    fn cached_as_metadata(&self) -> Option<(Instant, bool, Arc<Value>)> {
        let c = self.as_metadata.lock().ok()?.clone()?;
        let ttl = if c.1 {
            AS_METADATA_TTL
        } else {
            AS_FALLBACK_TTL
        };
        (c.0.elapsed() < ttl).then_some(c)
    }

    async fn fetch_as_metadata(
        &self,
        upstream: &dyn super::McpUpstream,
    ) -> Result<Arc<Value>, String> {
        let mut last = String::from("no well-known location");
        for url in well_known_urls(&self.issuer) {
            let doc = upstream
                .fetch(&url)
                .await
                .map_err(|e| e.0)
                .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()));
            match doc {
                Ok(d) if d.get("issuer").is_some() || d.get("jwks_uri").is_some() => {
                    let doc = Arc::new(d);
                    if let Ok(mut c) = self.as_metadata.lock() {
                        *c = Some((Instant::now(), true, doc.clone()));
                    }
                    return Ok(doc);
                }
                Ok(_) => last = format!("{url}: not authorization server metadata"),
                Err(e) => last = format!("{url}: {e}"),
            }
        }
        Err(last)
    }

    /// The `jwks_uri` of the issuer's metadata (never of the fallback document).
    async fn discovered_jwks_uri(
        &self,
        upstream: &dyn super::McpUpstream,
    ) -> Result<String, String> {
        let doc = match self.cached_as_metadata() {
            Some((_, true, doc)) => doc,
            _ => self.fetch_as_metadata(upstream).await?,
        };
        doc.get("jwks_uri")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("the metadata of issuer {} has no jwks_uri", self.issuer))
    }

    fn fallback_as_metadata(&self) -> Value {
        let a = self.issuer.trim_end_matches('/');
        json!({
            "issuer": a,
            "authorization_endpoint": format!("{a}/protocol/openid-connect/auth"),
            "token_endpoint": format!("{a}/protocol/openid-connect/token"),
            "jwks_uri": format!("{a}/protocol/openid-connect/certs"),
            "scopes_supported": self.scopes_supported,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        })
    }
}

/// Upstream's four candidate locations of an issuer's metadata.
fn well_known_urls(issuer: &str) -> Vec<String> {
    let issuer = issuer.trim_end_matches('/');
    let (origin, path) = match issuer.find("://").map(|i| i + 3) {
        Some(start) => match issuer[start..].find('/') {
            Some(p) => issuer.split_at(start + p),
            None => (issuer, ""),
        },
        None => (issuer, ""),
    };
    vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{origin}/.well-known/openid-configuration{path}"),
        format!("{origin}{path}/.well-known/oauth-authorization-server"),
        format!("{origin}{path}/.well-known/openid-configuration"),
    ]
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused(pub(crate) &'static str);

impl OAuth {
    pub(crate) fn compile(o: &MCPRouteOAuth, route_path: &str) -> Result<Self, String> {
        let keys = match o.jwks.as_ref() {
            Some(j) => match (&j.local_jwks, &j.remote_jwks) {
                (Some(l), _) => {
                    let text = l
                        .inline
                        .as_deref()
                        .ok_or("localJWKS: only an inline key set is supported")?;
                    Keys::Local(Arc::new(
                        serde_json::from_str(text)
                            .map_err(|e| format!("localJWKS.inline is not a JWK set: {e}"))?,
                    ))
                }
                (None, Some(r)) => Keys::Remote {
                    uri: Some(r.uri.clone()),
                    ttl: r
                        .cache_duration
                        .as_deref()
                        .and_then(|d| crate::config::parse_duration(d).ok())
                        .unwrap_or(Duration::from_secs(300)),
                    cache: Mutex::new(None),
                },
                (None, None) => return Err("jwks needs remoteJWKS or localJWKS".into()),
            },
            // As upstream: discovered from the issuer's authorization-server metadata.
            None => Keys::Remote {
                uri: None,
                ttl: Duration::from_secs(300),
                cache: Mutex::new(None),
            },
        };
        let prm = o
            .protected_resource_metadata
            .as_ref()
            .ok_or("protectedResourceMetadata is required")?;
        let mut metadata = Map::new();
        metadata.insert("resource".into(), json!(prm.resource));
        metadata.insert("authorization_servers".into(), json!([o.issuer]));
        metadata.insert("bearer_methods_supported".into(), json!(["header"]));
        if let Some(n) = &prm.resource_name {
            metadata.insert("resource_name".into(), json!(n));
        }
        if !prm.scopes_supported.is_empty() {
            metadata.insert("scopes_supported".into(), json!(prm.scopes_supported));
        }
        if !prm.resource_signing_alg_values_supported.is_empty() {
            metadata.insert(
                "resource_signing_alg_values_supported".into(),
                json!(prm.resource_signing_alg_values_supported),
            );
        }
        if let Some(d) = &prm.resource_documentation {
            metadata.insert("resource_documentation".into(), json!(d));
        }
        if let Some(p) = &prm.resource_policy_uri {
            metadata.insert("resource_policy_uri".into(), json!(p));
        }
        Ok(Self {
            issuer: o.issuer.clone(),
            audiences: o.audiences.clone(),
            keys,
            metadata: Value::Object(metadata),
            metadata_url: metadata_url(&prm.resource, route_path),
            scopes_supported: prm.scopes_supported.clone(),
            as_metadata: Mutex::new(None),
        })
    }

    /// Verifies a token with `keys`: signature, expiry, issuer, audience.
    pub(crate) fn verify(&self, keys: &JwkSet, token: &str) -> Result<Map<String, Value>, Refused> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refused("malformed token"))?;
        let candidates: Vec<_> = match &header.kid {
            Some(kid) => keys.find(kid).into_iter().collect(),
            None => keys.keys.iter().collect(),
        };
        if candidates.is_empty() {
            return Err(Refused("unknown signing key"));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        if self.audiences.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.audiences);
        }
        validation.set_required_spec_claims(&["exp", "iss"]);
        let mut last = Refused("invalid signature");
        for jwk in candidates {
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation) {
                Ok(d) => return Ok(d.claims),
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind as K;
                    last = Refused(match e.kind() {
                        K::ExpiredSignature => "token expired",
                        K::ImmatureSignature => "token not yet valid",
                        K::InvalidIssuer => "token issuer not accepted",
                        K::InvalidAudience => "token audience not accepted",
                        K::InvalidAlgorithm => "token algorithm not accepted",
                        K::MissingRequiredClaim(_) => "token lacks exp or iss",
                        _ => "invalid signature",
                    });
                }
            }
        }
        Err(last)
    }

    /// `WWW-Authenticate` for a missing or refused token.
    pub(crate) fn challenge(&self, refused: Option<&Refused>) -> String {
        match refused {
            Some(r) => format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\", resource_metadata=\"{}\"",
                r.0, self.metadata_url
            ),
            None => format!("Bearer resource_metadata=\"{}\"", self.metadata_url),
        }
    }
}

/// RFC 9728 §3.1: the well-known URI is inserted between the host and the resource path.
fn metadata_url(resource: &str, route_path: &str) -> String {
    let (origin, path) = match resource.find("://").map(|i| i + 3) {
        Some(start) => match resource[start..].find('/') {
            Some(p) => resource.split_at(start + p),
            None => (resource, route_path),
        },
        None => (resource, route_path),
    };
    format!(
        "{origin}/.well-known/oauth-protected-resource{}",
        path.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_metadata_locations() {
        assert_eq!(
            well_known_urls("https://idp.example/realms/x/"),
            [
                "https://idp.example/.well-known/oauth-authorization-server/realms/x",
                "https://idp.example/.well-known/openid-configuration/realms/x",
                "https://idp.example/realms/x/.well-known/oauth-authorization-server",
                "https://idp.example/realms/x/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            well_known_urls("http://127.0.0.1:8080")[0],
            "http://127.0.0.1:8080/.well-known/oauth-authorization-server"
        );
    }

    #[test]
    fn well_known_url_follows_rfc9728() {
        assert_eq!(
            metadata_url("https://gw.example/mcp", "/mcp"),
            "https://gw.example/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("https://gw.example", "/mcp"),
            "https://gw.example/.well-known/oauth-protected-resource/mcp"
        );
    }
}
