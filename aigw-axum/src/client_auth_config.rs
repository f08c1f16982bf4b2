//! Client authentication settings from `aigw run` flags and Envoy Gateway
//! `SecurityPolicy` objects, and the JWKS fetches behind remote key sets.
//!
//! * `--client-api-keys FILE`: one key per line, `name:sha256:<64 hex>` (the SHA-256 of
//!   the key, so the file never holds it) or `name:<plaintext key>`; `#` comments and
//!   blank lines are skipped.
//! * `--jwt-jwks FILE|URL` with `--jwt-issuer` and `--jwt-audience`.
//! * Every `SecurityPolicy` targeting a Gateway or an HTTPRoute contributes its
//!   `apiKeyAuth` (each key of each `credentialRefs` Secret is a client id, its value the
//!   key; `extractFrom.headers` adds header names) and its `jwt.providers[]` (issuer,
//!   audiences, `remoteJWKS.uri` or `localJWKS`). The standalone gateway has one
//!   listener, so the policies of every targeted Gateway apply to all of it; a policy
//!   targeting an HTTPRoute applies to the AIGatewayRoute of that name only, and there
//!   replaces the Gateway's policy (Envoy Gateway's precedence). Route-level decisions
//!   are taken after routing, so such requests are read and routed before a missing
//!   credential is refused.
//!
//! Remote key sets are fetched once at start ([`prime`]) and then refreshed in the
//! background ([`spawn_refresh`]) until their settings are dropped.

use crate::client::HttpClient;
use crate::client_auth::{ApiKeyEntry, ClientAuth, JwtSettings};
use aigw_core::config::{Config, JwtProvider};
use aigw_core::{Error, Secret};
use bytes::Bytes;
use http::HeaderName;
use http_body_util::{BodyExt, Full, Limited};
use jsonwebtoken::jwk::JwkSet;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The shortest gap between two refreshes triggered by unknown key ids, so a stream of
/// forged `kid`s cannot turn the gateway into a JWKS load generator.
pub const MIN_EARLY_REFRESH: Duration = Duration::from_secs(10);

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Client authentication flags of `aigw run`.
#[derive(Debug, Clone, Default)]
pub struct ClientAuthFlags {
    /// The API key file.
    pub api_keys_file: Option<PathBuf>,
    /// A JWKS file path or `http(s)://` URL.
    pub jwks: Option<String>,
    /// Required issuer.
    pub issuer: Option<String>,
    /// Accepted audiences.
    pub audiences: Vec<String>,
}

/// The outcome of [`build`]: the settings (`None` when nothing asks for client
/// authentication) and the JWT providers whose keys must be fetched from a URL.
#[derive(Debug, Default)]
pub struct ClientAuthPlan {
    /// Settings for the listener.
    pub auth: Option<ClientAuth>,
    /// Providers with remote key sets, and their URLs.
    pub remote: Vec<(JwtSettings, String)>,
}

fn invalid(message: String) -> Error {
    Error::internal(message)
}

/// Parses an API key file (see the module docs).
pub fn parse_api_keys(text: &str) -> Result<Vec<ApiKeyEntry>, Error> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, rest)) = line.split_once(':') else {
            return Err(invalid(format!(
                "API key file line {}: expected `name:sha256:<hex>` or `name:<key>`",
                i + 1
            )));
        };
        let name = name.trim();
        if name.is_empty() || rest.is_empty() {
            return Err(invalid(format!(
                "API key file line {}: empty name or key",
                i + 1
            )));
        }
        let entry = match rest.strip_prefix("sha256:") {
            Some(hex) => ApiKeyEntry::from_sha256_hex(name, hex)
                .map_err(|e| invalid(format!("API key file line {}: {e}", i + 1)))?,
            None => ApiKeyEntry::from_secret(name, &Secret::new(rest.trim())),
        };
        out.push(entry);
    }
    Ok(out)
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Builds the client authentication settings from the flags and the configuration.
/// `secrets_dir` is searched (`<namespace>/<name>/<key>`) for Secrets the
/// configuration does not contain.
pub fn build(
    config: Option<&Config>,
    secrets_dir: Option<&Path>,
    flags: &ClientAuthFlags,
) -> Result<ClientAuthPlan, Error> {
    let mut auth = ClientAuth::new();
    let mut remote = Vec::new();
    let mut wanted = false;

    if let Some(path) = &flags.api_keys_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
        for entry in parse_api_keys(&text)? {
            auth = auth.api_key(entry);
        }
        wanted = true;
    }
    if let Some(jwks) = &flags.jwks {
        let settings = if is_url(jwks) {
            let s = JwtSettings::empty();
            remote.push((s.clone(), jwks.clone()));
            s
        } else {
            let bytes =
                std::fs::read(jwks).map_err(|e| invalid(format!("cannot read {jwks}: {e}")))?;
            JwtSettings::from_jwks_json(&bytes)?
        };
        auth = auth.jwt(
            settings
                .issuers(flags.issuer.iter().cloned())
                .audiences(flags.audiences.iter().cloned()),
        );
        wanted = true;
    }

    let mut routes: HashMap<String, ClientAuth> = HashMap::new();
    for policy in config.map_or(&[][..], |c| &c.envoy_security_policies[..]) {
        let spec = &policy.spec;
        if spec.api_key_auth.is_none() && spec.jwt.is_none() {
            continue;
        }
        if !spec
            .targets()
            .any(|t| matches!(t.kind.as_str(), "Gateway" | "HTTPRoute"))
        {
            tracing::warn!(
                policy = %policy.label(),
                "SecurityPolicy targets neither a Gateway nor an HTTPRoute; not applied"
            );
            continue;
        }
        let ns = policy.metadata.namespace();
        let mut own = ClientAuth::new();
        if let Some(keys) = &spec.api_key_auth {
            for r in &keys.credential_refs {
                let secret_ns = r
                    .namespace
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(ns);
                let entries = secret_entries(config, secrets_dir, secret_ns, &r.name)?;
                if entries.is_empty() {
                    return Err(invalid(format!(
                        "{}: Secret {secret_ns}/{} holds no API keys",
                        policy.label(),
                        r.name
                    )));
                }
                for (client, key) in entries {
                    own = own.api_key(ApiKeyEntry::from_secret(client, &key));
                }
            }
            for from in &keys.extract_from {
                for h in &from.headers {
                    let name = HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).map_err(
                        |_| invalid(format!("{}: invalid header name {h:?}", policy.label())),
                    )?;
                    own = own.key_header(name);
                }
            }
        }
        if let Some(jwt) = &spec.jwt {
            for provider in &jwt.providers {
                let settings = provider_settings(config, ns, provider, &mut remote)
                    .map_err(|e| invalid(format!("{}: {e}", policy.label())))?;
                own = own.jwt(settings);
            }
        }
        if own.is_empty() {
            continue;
        }
        wanted = true;
        for target in spec.targets() {
            match target.kind.as_str() {
                // The standalone gateway is one listener: every targeted Gateway's
                // policy guards it.
                "Gateway" => auth = auth.merge(&own),
                // Upstream generates one HTTPRoute per AIGatewayRoute, of the same
                // name: a policy on it guards that route only, replacing the
                // listener's policy there.
                "HTTPRoute" => {
                    let r = routes.entry(format!("{ns}/{}", target.name)).or_default();
                    *r = std::mem::take(r).merge(&own);
                }
                _ => {}
            }
        }
    }
    for (route, route_auth) in routes {
        auth = auth.route(route, route_auth);
    }
    Ok(ClientAuthPlan {
        auth: wanted.then_some(auth),
        remote,
    })
}

fn provider_settings(
    config: Option<&Config>,
    ns: &str,
    p: &JwtProvider,
    remote: &mut Vec<(JwtSettings, String)>,
) -> Result<JwtSettings, String> {
    let settings = if let Some(r) = &p.remote_jwks {
        let s = JwtSettings::empty();
        remote.push((s.clone(), r.uri.clone()));
        s
    } else if let Some(local) = &p.local_jwks {
        let doc = match (&local.inline, &local.value_ref) {
            (Some(inline), _) => inline.clone(),
            (None, Some(r)) => config
                .and_then(|c| {
                    c.config_maps
                        .iter()
                        .find(|m| m.metadata.name == r.name && m.metadata.namespace() == ns)
                })
                .and_then(|m| m.spec.get("jwks").cloned())
                .ok_or_else(|| {
                    format!(
                        "JWT provider {:?}: ConfigMap {ns}/{} with key `jwks` not found",
                        p.name, r.name
                    )
                })?,
            (None, None) => {
                return Err(format!("JWT provider {:?}: localJWKS has no keys", p.name));
            }
        };
        JwtSettings::from_jwks_json(doc.as_bytes()).map_err(|e| e.to_string())?
    } else {
        return Err(format!(
            "JWT provider {:?} needs remoteJWKS or localJWKS",
            p.name
        ));
    };
    Ok(settings
        .issuers(p.issuer.iter().cloned())
        .audiences(p.audiences.iter().cloned()))
}

/// Every key of a Secret: from the configuration, else from `<dir>/<ns>/<name>/`.
fn secret_entries(
    config: Option<&Config>,
    dir: Option<&Path>,
    ns: &str,
    name: &str,
) -> Result<Vec<(String, Secret)>, Error> {
    if let Some(doc) = config.and_then(|c| {
        c.secrets
            .iter()
            .find(|s| s.metadata.name == name && s.metadata.namespace() == ns)
    }) {
        return Ok(doc
            .data
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect());
    }
    if let Some(dir) = dir {
        let path = dir.join(ns).join(name);
        if let Ok(entries) = std::fs::read_dir(&path) {
            let mut out = Vec::new();
            for e in entries.flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                // Mounted Secrets carry `..data` symlinks and hidden bookkeeping.
                if file.starts_with('.') || !e.path().is_file() {
                    continue;
                }
                let value = std::fs::read_to_string(e.path())
                    .map_err(|err| invalid(format!("cannot read {}: {err}", e.path().display())))?;
                out.push((file, Secret::new(value.trim_end_matches(['\n', '\r']))));
            }
            out.sort_by(|a, b| a.0.cmp(&b.0));
            return Ok(out);
        }
    }
    Err(invalid(format!(
        "Secret {ns}/{name} (client API keys) is neither in the configuration nor in the secrets directory"
    )))
}

/// Fetches a JWKS document with the gateway's upstream client.
pub async fn fetch_jwks(client: &HttpClient, uri: &str, timeout: Duration) -> Result<Bytes, Error> {
    let request = http::Request::get(uri)
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::new()))
        .map_err(|e| invalid(format!("invalid JWKS URL {uri}: {e}")))?;
    let response = tokio::time::timeout(timeout, client.request(request))
        .await
        .map_err(|_| invalid(format!("JWKS fetch from {uri} timed out")))?
        .map_err(|e| invalid(format!("JWKS fetch from {uri}: {e}")))?;
    if !response.status().is_success() {
        return Err(invalid(format!(
            "JWKS fetch from {uri}: status {}",
            response.status()
        )));
    }
    let body = tokio::time::timeout(
        timeout,
        Limited::new(response.into_body(), MAX_JWKS_BYTES).collect(),
    )
    .await
    .map_err(|_| invalid(format!("JWKS fetch from {uri} timed out")))?
    .map_err(|e| invalid(format!("JWKS fetch from {uri}: {e}")))?;
    let bytes = body.to_bytes();
    serde_json::from_slice::<JwkSet>(&bytes)
        .map_err(|e| invalid(format!("JWKS from {uri} is invalid: {e}")))?;
    Ok(bytes)
}

/// Fetches every remote key set once; failures are logged, and those providers reject
/// tokens until a refresh succeeds.
pub async fn prime(client: &HttpClient, remote: &[(JwtSettings, String)]) {
    for (settings, uri) in remote {
        match fetch_jwks(client, uri, Duration::from_secs(10)).await {
            Ok(bytes) => {
                if let Err(e) = settings.set_jwks_json(&bytes) {
                    tracing::error!(%uri, error = %e, "JWKS rejected");
                } else {
                    tracing::info!(%uri, keys = settings.key_count(), "JWKS loaded");
                }
            }
            Err(e) => {
                tracing::error!(%uri, error = %e, "JWKS not loaded; JWTs are rejected until it is")
            }
        }
    }
}

/// Refreshes every remote key set every `interval` (every 5 s while a set has no keys
/// yet), and early — at most every [`MIN_EARLY_REFRESH`] — when a token names a key the
/// set lacks (the issuer rotated its keys). Each task ends when its settings are dropped.
pub fn spawn_refresh(client: HttpClient, remote: Vec<(JwtSettings, String)>, interval: Duration) {
    spawn_refresh_with(client, remote, interval, MIN_EARLY_REFRESH);
}

fn spawn_refresh_with(
    client: HttpClient,
    remote: Vec<(JwtSettings, String)>,
    interval: Duration,
    min_early: Duration,
) {
    for (settings, uri) in remote {
        let weak = settings.downgrade();
        let unknown_key = settings.unknown_key_signal();
        let client = client.clone();
        drop(settings);
        tokio::spawn(async move {
            let mut last = tokio::time::Instant::now();
            loop {
                let empty = weak.upgrade().is_none_or(|k| k.load().keys.is_empty());
                let wait = if empty {
                    interval.min(Duration::from_secs(5))
                } else {
                    interval
                };
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = unknown_key.notified() => {
                        tokio::time::sleep_until(last + min_early).await;
                    }
                }
                last = tokio::time::Instant::now();
                if weak.upgrade().is_none() {
                    return;
                }
                match fetch_jwks(&client, &uri, Duration::from_secs(10)).await {
                    Ok(bytes) => {
                        let Some(keys) = weak.upgrade() else { return };
                        if let Ok(set) = serde_json::from_slice::<JwkSet>(&bytes) {
                            keys.store(Arc::new(set));
                            tracing::debug!(%uri, "JWKS refreshed");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%uri, error = %e, "JWKS refresh failed; keeping the previous keys")
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;
    use sha2::Digest;

    fn h(name: &'static str, v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(name, v.parse().unwrap());
        m
    }

    #[test]
    fn api_key_file_digests_and_plaintext() {
        let digest = hex::encode(sha2::Sha256::digest(b"sk-hashed"));
        let text = format!("# clients\nhashed:sha256:{digest}\n\nplain:sk-plain\n");
        let mut auth = ClientAuth::new();
        for e in parse_api_keys(&text).unwrap() {
            auth = auth.api_key(e);
        }
        assert_eq!(
            auth.authenticate(&h("x-api-key", "sk-hashed"))
                .unwrap()
                .id
                .as_ref(),
            "hashed"
        );
        assert_eq!(
            auth.authenticate(&h("api-key", "sk-plain"))
                .unwrap()
                .id
                .as_ref(),
            "plain"
        );
        assert!(parse_api_keys("nocolon").is_err());
        assert!(parse_api_keys("a:sha256:abc").is_err());
    }

    const POLICY: &str = r#"apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata:
  name: keys
  namespace: default
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: Gateway
      name: aigw
  apiKeyAuth:
    credentialRefs:
      - name: client-keys
    extractFrom:
      - headers: ["X-Client-Key"]
---
apiVersion: v1
kind: Secret
metadata:
  name: client-keys
  namespace: default
stringData:
  team-a: sk-a
  team-b: sk-b
"#;

    #[test]
    fn security_policy_api_keys_from_a_secret_and_extra_header() {
        let config = Config::from_yaml_str(POLICY, "p.yaml").unwrap();
        let plan = build(Some(&config), None, &ClientAuthFlags::default()).unwrap();
        let auth = plan.auth.unwrap();
        assert_eq!(
            auth.authenticate(&h("x-client-key", "sk-b"))
                .unwrap()
                .id
                .as_ref(),
            "team-b"
        );
        assert_eq!(
            auth.authenticate(&h("authorization", "Bearer sk-a"))
                .unwrap()
                .id
                .as_ref(),
            "team-a"
        );
        assert!(auth.authenticate(&h("x-client-key", "sk-c")).is_err());
    }

    #[test]
    fn security_policy_secret_from_the_secrets_dir() {
        let yaml = POLICY.split("---").next().unwrap();
        let config = Config::from_yaml_str(yaml, "p.yaml").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let sdir = dir.path().join("default/client-keys");
        std::fs::create_dir_all(&sdir).unwrap();
        std::fs::write(sdir.join("team-z"), "sk-z\n").unwrap();
        let plan = build(Some(&config), Some(dir.path()), &ClientAuthFlags::default()).unwrap();
        assert_eq!(
            plan.auth
                .unwrap()
                .authenticate(&h("x-api-key", "sk-z"))
                .unwrap()
                .id
                .as_ref(),
            "team-z"
        );
        // Without the directory the Secret is missing: an error, not an open gateway.
        assert!(build(Some(&config), None, &ClientAuthFlags::default()).is_err());
    }

    #[tokio::test]
    async fn remote_jwks_fetched_at_start_and_refreshed() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { include_str!("../tests/fixtures/jwt/jwks.json") }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let flags = ClientAuthFlags {
            jwks: Some(format!("http://{addr}/jwks.json")),
            issuer: Some("https://issuer.example".into()),
            ..Default::default()
        };
        let plan = build(None, None, &flags).unwrap();
        let auth = plan.auth.unwrap();
        assert_eq!(auth.jwt_settings()[0].key_count(), 0);
        let client = crate::client::build_client(&Default::default()).unwrap();
        prime(&client, &plan.remote).await;
        assert!(auth.jwt_settings()[0].key_count() >= 2);
        spawn_refresh(client, plan.remote, Duration::from_millis(20));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(hits.load(std::sync::atomic::Ordering::SeqCst) >= 3);
        // Dropping the settings ends the refresh.
        drop(auth);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let after = hits.load(std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), after);
    }

    #[tokio::test]
    async fn unknown_key_id_triggers_an_early_refresh() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { include_str!("../tests/fixtures/jwt/jwks.json") }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let flags = ClientAuthFlags {
            jwks: Some(format!("http://{addr}/jwks.json")),
            ..Default::default()
        };
        let plan = build(None, None, &flags).unwrap();
        let auth = plan.auth.unwrap();
        let client = crate::client::build_client(&Default::default()).unwrap();
        prime(&client, &plan.remote).await;
        spawn_refresh_with(
            client,
            plan.remote,
            Duration::from_secs(3600),
            Duration::from_millis(50),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A token naming a key the set lacks: rejected, and the keys are fetched again.
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!(
            "../tests/fixtures/jwt/rs256.pem"
        ))
        .unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some("rotated-in".into());
        let token = jsonwebtoken::encode(
            &header,
            &serde_json::json!({"sub": "a", "exp": 4_000_000_000u64}),
            &key,
        )
        .unwrap();
        assert!(
            auth.authenticate(&h("authorization", &format!("Bearer {token}")))
                .is_err()
        );
        let start = std::time::Instant::now();
        while hits.load(std::sync::atomic::Ordering::SeqCst) < 2 {
            assert!(start.elapsed() < Duration::from_secs(2), "no early refresh");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn no_policy_and_no_flags_means_no_authentication() {
        let plan = build(None, None, &ClientAuthFlags::default()).unwrap();
        assert!(plan.auth.is_none());
    }

    #[test]
    fn jwt_providers_local_and_remote() {
        let jwks = include_str!("../tests/fixtures/jwt/jwks.json").replace('\n', " ");
        let yaml = format!(
            r#"apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata:
  name: jwt
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: HTTPRoute
      name: r
  jwt:
    providers:
      - name: local
        issuer: https://issuer.example
        localJWKS:
          type: Inline
          inline: '{jwks}'
      - name: remote
        remoteJWKS:
          uri: https://idp.example/jwks.json
"#
        );
        let config = Config::from_yaml_str(&yaml, "j.yaml").unwrap();
        let plan = build(Some(&config), None, &ClientAuthFlags::default()).unwrap();
        let auth = plan.auth.unwrap();
        // The policy targets an HTTPRoute: its providers guard that route only.
        assert!(auth.jwt_settings().is_empty());
        let route = &auth.routes()["default/r"];
        assert_eq!(route.jwt_settings().len(), 2);
        assert!(route.jwt_settings()[0].key_count() >= 2);
        assert_eq!(plan.remote.len(), 1);
        assert_eq!(plan.remote[0].1, "https://idp.example/jwks.json");
        assert_eq!(plan.remote[0].0.key_count(), 0);
    }

    #[test]
    fn httproute_policies_become_route_settings_and_gateway_policies_the_listeners() {
        let yaml = r#"apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata:
  name: gw
  namespace: ns
spec:
  targetRefs:
    - {group: gateway.networking.k8s.io, kind: Gateway, name: g}
  apiKeyAuth:
    credentialRefs: [{name: gw-keys}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata:
  name: route
  namespace: ns
spec:
  targetRefs:
    - {group: gateway.networking.k8s.io, kind: HTTPRoute, name: r1}
  apiKeyAuth:
    credentialRefs: [{name: route-keys}]
    extractFrom:
      - headers: [X-Team-Key]
---
apiVersion: v1
kind: Secret
metadata: {name: gw-keys, namespace: ns}
stringData: {a: key-a}
---
apiVersion: v1
kind: Secret
metadata: {name: route-keys, namespace: ns}
stringData: {b: key-b}
"#;
        let config = Config::from_yaml_str(yaml, "p.yaml").unwrap();
        let auth = build(Some(&config), None, &ClientAuthFlags::default())
            .unwrap()
            .auth
            .unwrap();
        assert_eq!(auth.routes().len(), 1);
        assert!(auth.authenticate(&h("x-api-key", "key-a")).is_ok());
        assert!(auth.authenticate(&h("x-api-key", "key-b")).is_err());
        let route = &auth.routes()["ns/r1"];
        assert_eq!(
            &*route.authenticate(&h("x-team-key", "key-b")).unwrap().id,
            "b"
        );
        assert!(route.authenticate(&h("x-api-key", "key-a")).is_err());
    }
}
