//! MCPRoute client security: MCP-spec OAuth (a bearer JWT verified against the route's
//! JWKS, issuer and audiences; RFC 9728 protected-resource metadata; `WWW-Authenticate`
//! challenges) and the authorization rules (JWT scopes and claims, tool targets; first
//! match wins, default deny; `tools/list` filtered by the same rules).
//!
//! Upstream has Envoy verify the token and parses it unverified in its proxy; here the
//! gateway verifies it itself, so every packaging is protected the same way.

use crate::config::{MCPRouteAuthorization, MCPRouteOAuth};
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
    /// `remoteJWKS.uri`, fetched through the packaging's client and cached.
    Remote {
        uri: String,
        ttl: Duration,
        cache: Mutex<Option<(Instant, Arc<JwkSet>)>>,
    },
}

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
                    uri: r.uri.clone(),
                    ttl: r
                        .cache_duration
                        .as_deref()
                        .and_then(|d| crate::config::parse_duration(d).ok())
                        .unwrap_or(Duration::from_secs(300)),
                    cache: Mutex::new(None),
                },
                (None, None) => return Err("jwks needs remoteJWKS or localJWKS".into()),
            },
            None => Keys::Remote {
                // RFC 8414 discovery is not done: the conventional location is assumed.
                uri: format!("{}/.well-known/jwks.json", o.issuer.trim_end_matches('/')),
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

/// One compiled rule.
#[derive(Debug)]
struct Rule {
    scopes: Vec<String>,
    claims: Vec<(Vec<String>, Vec<String>)>,
    has_source: bool,
    tools: Vec<(String, String)>,
    allow: bool,
}

/// A route's authorization rules.
#[derive(Debug)]
pub(crate) struct Authorization {
    rules: Vec<Rule>,
    default_allow: bool,
}

/// The decision for one call.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Go ahead.
    Allow,
    /// Refused; the scopes a matching allow rule would have needed, for the challenge.
    Deny(Vec<String>),
}

impl Authorization {
    pub(crate) fn compile(a: &MCPRouteAuthorization) -> Result<Self, String> {
        let mut rules = Vec::new();
        for (i, r) in a.rules.iter().enumerate() {
            if r.cel.is_some() {
                return Err(format!(
                    "rules[{i}].cel: CEL authorization conditions are not supported by this gateway yet; the route is refused rather than served with the rule ignored"
                ));
            }
            let allow = match r.action.as_deref().unwrap_or("Allow") {
                "Allow" => true,
                "Deny" => false,
                other => return Err(format!("rules[{i}].action: unknown action {other:?}")),
            };
            let (scopes, claims) = match &r.source {
                Some(s) => (
                    s.jwt.scopes.clone(),
                    s.jwt
                        .claims
                        .iter()
                        .map(|c| {
                            (
                                c.name.split('.').map(str::to_string).collect(),
                                c.values.clone(),
                            )
                        })
                        .collect(),
                ),
                None => (Vec::new(), Vec::new()),
            };
            let tools = r
                .target
                .iter()
                .flat_map(|t| &t.tools)
                .map(|t| (t.backend.clone(), t.tool.clone()))
                .collect();
            rules.push(Rule {
                scopes,
                claims,
                has_source: r.source.is_some(),
                tools,
                allow,
            });
        }
        let default_allow = match a.default_action.as_deref().unwrap_or("Deny") {
            "Allow" => true,
            "Deny" => false,
            other => return Err(format!("defaultAction: unknown action {other:?}")),
        };
        Ok(Self {
            rules,
            default_allow,
        })
    }

    /// Whether the token's holder may call `tool` of `backend`: the first rule whose
    /// source and target both match decides; none matching, the default action.
    pub(crate) fn decide(
        &self,
        claims: Option<&Map<String, Value>>,
        backend: &str,
        tool: &str,
    ) -> Decision {
        let scopes = claims.map(token_scopes).unwrap_or_default();
        let mut wanted = Vec::new();
        for r in &self.rules {
            let target =
                r.tools.is_empty() || r.tools.iter().any(|(b, t)| b == backend && t == tool);
            if !target {
                continue;
            }
            let source = !r.has_source
                || (claims.is_some()
                    && r.scopes.iter().all(|s| scopes.contains(&s.as_str()))
                    && r.claims
                        .iter()
                        .all(|(path, values)| claim_matches(claims, path, values)));
            if source {
                return if r.allow {
                    Decision::Allow
                } else {
                    Decision::Deny(Vec::new())
                };
            }
            if r.allow {
                wanted.extend(
                    r.scopes
                        .iter()
                        .filter(|s| !scopes.contains(&s.as_str()))
                        .cloned(),
                );
            }
        }
        if self.default_allow {
            Decision::Allow
        } else {
            Decision::Deny(wanted)
        }
    }
}

/// `scope` (space-separated) or `scp` (array or string).
fn token_scopes(claims: &Map<String, Value>) -> Vec<&str> {
    let mut out = Vec::new();
    for k in ["scope", "scp"] {
        match claims.get(k) {
            Some(Value::String(s)) => out.extend(s.split_whitespace()),
            Some(Value::Array(a)) => out.extend(a.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    out
}

fn claim_matches(claims: Option<&Map<String, Value>>, path: &[String], values: &[String]) -> bool {
    let mut cur = claims.and_then(|c| c.get(path.first()?));
    for p in path.iter().skip(1) {
        cur = cur.and_then(|v| v.get(p));
    }
    match cur {
        Some(Value::String(s)) => values.iter().any(|v| v == s),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .any(|s| values.iter().any(|v| v == s)),
        Some(Value::Bool(b)) => values.iter().any(|v| v == &b.to_string()),
        Some(Value::Number(n)) => values.iter().any(|v| v == &n.to_string()),
        _ => false,
    }
}

/// `WWW-Authenticate` for a refused call.
pub(crate) fn insufficient_scope(scopes: &[String], metadata_url: Option<&str>) -> String {
    let mut s = String::from("Bearer error=\"insufficient_scope\"");
    if !scopes.is_empty() {
        s.push_str(&format!(", scope=\"{}\"", scopes.join(" ")));
    }
    if let Some(u) = metadata_url {
        s.push_str(&format!(", resource_metadata=\"{u}\""));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn first_match_wins_default_deny() {
        let a: MCPRouteAuthorization = serde_json::from_value(json!({
            "rules": [
                {"source": {"jwt": {"scopes": ["admin"]}}, "action": "Allow"},
                {"target": {"tools": [{"backend": "gh", "tool": "delete"}]}, "action": "Deny"},
                {"source": {"jwt": {"scopes": ["read"], "claims": [{"name": "org.id", "values": ["acme"]}]}},
                 "target": {"tools": [{"backend": "gh", "tool": "list"}]}}
            ]
        }))
        .unwrap();
        let a = Authorization::compile(&a).unwrap();
        let claims = |v: Value| v.as_object().cloned().unwrap();
        let admin = claims(json!({"scope": "admin"}));
        let reader = claims(json!({"scope": "read", "org": {"id": "acme"}}));
        let other_org = claims(json!({"scp": ["read"], "org": {"id": "evil"}}));
        assert_eq!(a.decide(Some(&admin), "gh", "delete"), Decision::Allow);
        assert_eq!(
            a.decide(Some(&reader), "gh", "delete"),
            Decision::Deny(vec![])
        );
        assert_eq!(a.decide(Some(&reader), "gh", "list"), Decision::Allow);
        assert_eq!(
            a.decide(Some(&other_org), "gh", "list"),
            Decision::Deny(vec!["admin".into()])
        );
        assert_eq!(
            a.decide(None, "gh", "list"),
            Decision::Deny(vec!["admin".into(), "read".into()])
        );
        let cel: MCPRouteAuthorization =
            serde_json::from_value(json!({"rules": [{"cel": "true"}]})).unwrap();
        assert!(Authorization::compile(&cel).is_err());
    }
}
