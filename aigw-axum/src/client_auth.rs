//! Client authentication (the gateway's first security layer).
//!
//! Two mechanisms, configurable per listener and usable together:
//! * **static API keys**, stored only as SHA-256 digests, accepted where each family of
//!   SDK sends them: `Authorization: Bearer` (OpenAI), `x-api-key` (Anthropic) and
//!   `api-key` (Azure OpenAI);
//! * **JWT** bearer tokens (RS256/ES256 and the other asymmetric algorithms
//!   `jsonwebtoken` verifies), keys from a JWKS document, issuer and audience checked.
//!
//! Settings come from the `aigw run` flags and from Envoy Gateway `SecurityPolicy`
//! objects ([`crate::client_auth_config`]); the layer's settings can be replaced at run
//! time ([`ClientAuthLayer::set`]) when the configuration is reloaded.
//!
//! A rejected request gets a 401 in the error shape of the API it called, with a
//! `WWW-Authenticate` challenge, and never reaches routing. An accepted request carries
//! an `Arc<`[`ClientIdentity`]`>` extension (its id, kind and team) that the gateway puts
//! on the exchange, and the identity headers ([`aigw_core::identity_headers`]) that
//! rate-limit and quota selectors can match, replacing any copy the client sent.
//!
//! Gateway-issued virtual keys ([`aigw_core::keys`]) are checked by the same layer once
//! a [`KeyRegistry`] is installed ([`ClientAuthLayer::set_virtual_keys`]); with one
//! installed, every request must authenticate.

use crate::identity::ClientId;
use aigw_core::api::Endpoint;
use aigw_core::error::ClientApi;
pub use aigw_core::identity::ClientIdentity;
use aigw_core::identity::{IdentityKind, VerifiedClaims};
use aigw_core::keys::KeyRegistry;
use aigw_core::keys::token::presented;
use aigw_core::{Error, Secret};
use arc_swap::{ArcSwap, ArcSwapOption};
use axum::body::Body;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// One accepted API key: a name for logs and its SHA-256 digest.
#[derive(Clone)]
pub struct ApiKeyEntry {
    name: Arc<str>,
    digest: [u8; 32],
}

impl fmt::Debug for ApiKeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyEntry")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ApiKeyEntry {
    /// Hashes a plaintext key; the plaintext is not kept.
    pub fn from_secret(name: impl Into<Arc<str>>, key: &Secret) -> Self {
        Self {
            name: name.into(),
            digest: Sha256::digest(key.expose().as_bytes()).into(),
        }
    }

    /// An entry from a hex-encoded SHA-256 digest (for configs that never hold the key).
    pub fn from_sha256_hex(name: impl Into<Arc<str>>, hex_digest: &str) -> Result<Self, Error> {
        let bytes = hex::decode(hex_digest.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| Error::internal("an API key digest must be 64 hex characters"))?;
        Ok(Self {
            name: name.into(),
            digest: bytes,
        })
    }
}

/// JWT verification settings.
///
/// Clones share one key set, so a background refresh ([`JwtSettings::set_jwks_json`])
/// reaches every copy.
#[derive(Clone)]
pub struct JwtSettings {
    keys: Arc<ArcSwap<JwkSet>>,
    /// Signalled when a token names a key the set lacks (the issuer may have rotated).
    unknown_key: Arc<tokio::sync::Notify>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    claim_for_identity: String,
}

impl fmt::Debug for JwtSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSettings")
            .field("keys", &self.keys.load().keys.len())
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .finish()
    }
}

impl JwtSettings {
    /// Settings from a JWKS JSON document (`{"keys":[...]}`), as served at a
    /// `jwks_uri` or stored in a file.
    pub fn from_jwks_json(jwks: &[u8]) -> Result<Self, Error> {
        let settings = Self::empty();
        settings.set_jwks_json(jwks)?;
        Ok(settings)
    }

    /// Settings with no keys yet (every token is rejected until
    /// [`JwtSettings::set_jwks_json`] installs some), for keys fetched from a URL.
    pub fn empty() -> Self {
        Self {
            keys: Arc::new(ArcSwap::from_pointee(JwkSet { keys: Vec::new() })),
            unknown_key: Arc::new(tokio::sync::Notify::new()),
            issuers: Vec::new(),
            audiences: Vec::new(),
            claim_for_identity: "sub".to_owned(),
        }
    }

    /// Replaces the key set with a JWKS JSON document; on error the old keys stay.
    pub fn set_jwks_json(&self, jwks: &[u8]) -> Result<(), Error> {
        let keys: JwkSet = serde_json::from_slice(jwks)
            .map_err(|e| Error::internal(format!("invalid JWKS document: {e}")))?;
        self.keys.store(Arc::new(keys));
        Ok(())
    }

    /// Number of keys currently installed.
    pub fn key_count(&self) -> usize {
        self.keys.load().keys.len()
    }

    /// A handle on the key set that does not keep it alive: a refresh task holding it
    /// ends once the settings are dropped (e.g. replaced by a configuration reload).
    pub fn downgrade(&self) -> std::sync::Weak<ArcSwap<JwkSet>> {
        Arc::downgrade(&self.keys)
    }

    /// Notified whenever a token names a key id the set does not hold, so a refresher
    /// can fetch the issuer's keys early.
    pub fn unknown_key_signal(&self) -> Arc<tokio::sync::Notify> {
        self.unknown_key.clone()
    }

    /// Requires one of these issuers (`iss`).
    #[must_use]
    pub fn issuers(mut self, issuers: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.issuers = issuers.into_iter().map(Into::into).collect();
        self
    }

    /// Requires one of these audiences (`aud`).
    #[must_use]
    pub fn audiences(mut self, audiences: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    fn verify(&self, token: &str) -> Result<(Arc<str>, VerifiedClaims), &'static str> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed token")?;
        if matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            // Symmetric algorithms would let anyone holding the JWKS forge tokens.
            return Err("token algorithm not allowed");
        }
        let keys = self.keys.load();
        let jwk = match &header.kid {
            Some(kid) => keys.find(kid),
            None if keys.keys.len() == 1 => keys.keys.first(),
            None => None,
        }
        .ok_or_else(|| {
            self.unknown_key.notify_one();
            "no key matches the token"
        })?;
        let key = DecodingKey::from_jwk(jwk).map_err(|_| "unusable key")?;
        let mut validation = Validation::new(header.alg);
        if !self.issuers.is_empty() {
            validation.set_issuer(&self.issuers);
        }
        if self.audiences.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.audiences);
        }
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key,
            &validation,
        )
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => "token expired",
            jsonwebtoken::errors::ErrorKind::InvalidIssuer => "token issuer not accepted",
            jsonwebtoken::errors::ErrorKind::InvalidAudience => "token audience not accepted",
            _ => "token verification failed",
        })?;
        let id = data
            .claims
            .get(&self.claim_for_identity)
            .and_then(|v| v.as_str())
            .unwrap_or("jwt");
        Ok((Arc::from(id), VerifiedClaims(Arc::new(data.claims))))
    }
}

/// Client authentication settings for one listener.
///
/// Besides the listener's own mechanisms it may carry per-route settings
/// ([`ClientAuth::route`]): a SecurityPolicy that targets one route's HTTPRoute replaces
/// the listener's policy for that route, as in Envoy Gateway. The route is known only
/// once the gateway has read the body's model, so with route settings present the layer
/// defers its decision to the gateway ([`PendingAuth`]).
#[derive(Debug, Clone, Default)]
pub struct ClientAuth {
    api_keys: Vec<ApiKeyEntry>,
    key_headers: Vec<HeaderName>,
    jwt: Vec<JwtSettings>,
    routes: HashMap<String, ClientAuth>,
}

impl ClientAuth {
    /// No mechanism configured: every request is rejected until one is added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts a static API key.
    #[must_use]
    pub fn api_key(mut self, entry: ApiKeyEntry) -> Self {
        self.api_keys.push(entry);
        self
    }

    /// Also reads API keys from this header (in addition to `Authorization: Bearer`,
    /// `x-api-key` and `api-key`), as a SecurityPolicy's `extractFrom.headers` asks.
    #[must_use]
    pub fn key_header(mut self, name: HeaderName) -> Self {
        if !self.key_headers.contains(&name) {
            self.key_headers.push(name);
        }
        self
    }

    /// Accepts JWTs verified with these settings; with several, a token verified by any
    /// of them is accepted.
    #[must_use]
    pub fn jwt(mut self, settings: JwtSettings) -> Self {
        self.jwt.push(settings);
        self
    }

    /// Authenticates requests routed to `route` (`namespace/name` of the
    /// AIGatewayRoute) with `auth` instead of the listener's settings.
    #[must_use]
    pub fn route(mut self, route: impl Into<String>, auth: ClientAuth) -> Self {
        self.routes.insert(route.into(), auth);
        self
    }

    /// Adds every mechanism of `other` (not its route settings).
    #[must_use]
    pub fn merge(mut self, other: &ClientAuth) -> Self {
        self.api_keys.extend(other.api_keys.iter().cloned());
        for h in &other.key_headers {
            self = self.key_header(h.clone());
        }
        self.jwt.extend(other.jwt.iter().cloned());
        self
    }

    /// Whether the listener itself has no mechanism (route settings aside).
    pub fn is_empty(&self) -> bool {
        self.api_keys.is_empty() && self.jwt.is_empty()
    }

    /// The route-level settings, by route.
    pub const fn routes(&self) -> &HashMap<String, ClientAuth> {
        &self.routes
    }

    /// The configured JWT providers.
    pub fn jwt_settings(&self) -> &[JwtSettings] {
        &self.jwt
    }

    /// The credential a request presents, from the first header that carries one
    /// (`Authorization: Bearer`, `x-api-key`, `api-key`, then the configured ones).
    pub fn presented<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        presented(headers, &self.key_headers)
    }

    /// Authenticates a request from its headers.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<ClientIdentity, Error> {
        self.authenticate_with_claims(headers)
            .map(|(identity, _)| identity)
    }

    /// Authenticates a request from its headers; a verified JWT's claims come with the
    /// identity (what an MCPRoute's authorization rules read).
    pub fn authenticate_with_claims(
        &self,
        headers: &HeaderMap,
    ) -> Result<(ClientIdentity, Option<VerifiedClaims>), Error> {
        let bearer = bearer(headers);
        let Some(presented) = self.presented(headers) else {
            return Err(unauthorized(
                "no credentials: send an API key or a bearer token",
            ));
        };

        if !self.api_keys.is_empty() {
            let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
            // Compare every entry without early exit so timing does not reveal which
            // prefix of the table matched.
            let mut found: Option<&ApiKeyEntry> = None;
            for entry in &self.api_keys {
                if aigw_core::secret::constant_time_eq(&entry.digest, &digest) {
                    found = Some(entry);
                }
            }
            if let Some(entry) = found {
                let identity = ClientIdentity::new(entry.name.clone(), IdentityKind::StaticKey);
                return Ok((identity, None));
            }
        }
        if let Some(token) = bearer.filter(|t| t.matches('.').count() == 2)
            && !self.jwt.is_empty()
        {
            let mut why = "token verification failed";
            for jwt in &self.jwt {
                match jwt.verify(token) {
                    Ok((id, claims)) => {
                        return Ok((ClientIdentity::new(id, IdentityKind::Jwt), Some(claims)));
                    }
                    Err(e) => why = e,
                }
            }
            return Err(unauthorized(why));
        }
        Err(unauthorized("invalid API key or token"))
    }

    /// Removes every header a client credential is read from. The gateway injects the
    /// upstream's own credentials, so a client's key or token must not travel on (as
    /// Envoy Gateway drops a verified JWT unless `forward` is set).
    pub fn strip_credentials(&self, headers: &mut HeaderMap) {
        headers.remove(header::AUTHORIZATION);
        headers.remove("x-api-key");
        headers.remove("api-key");
        for h in &self.key_headers {
            headers.remove(h);
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

fn unauthorized(message: &str) -> Error {
    Error::Unauthorized {
        message: message.to_owned(),
    }
}

/// Writes a refused authentication to the audit trail: the client's address, how it
/// presented itself, the path and route, why — never what it presented.
pub(crate) fn audit_failure(
    headers: &HeaderMap,
    extensions: &http::Extensions,
    path: &str,
    route: Option<&str>,
    error: &Error,
) {
    if !aigw_core::audit::enabled() {
        return;
    }
    let scheme = aigw_core::audit::presented_scheme(headers);
    let peer = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let reason = match error {
        Error::Unauthorized { message } => message.clone(),
        other => other.to_string(),
    };
    aigw_core::audit::emit(&aigw_core::audit::AuditEvent::AuthFailure {
        peer,
        claimed: None,
        scheme,
        path,
        route,
        reason: &reason,
    });
}

/// Renders a refused request in the called API's error shape (401 with a challenge;
/// a virtual key over its rate limit gets the 429 with `retry-after`).
fn reject(path: &str, error: &Error) -> Response<Body> {
    let api = Endpoint::from_path(path).map_or(ClientApi::OpenAI, Endpoint::client_api);
    let mut response = crate::error::error_response(api, error);
    if response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"aigw\""),
        );
    }
    response
}

/// Inserted into the request by [`ClientAuthLayer`] when route-level settings exist: the
/// gateway calls [`PendingAuth::resolve`] once routing has chosen the route.
#[derive(Debug, Clone)]
pub struct PendingAuth {
    auth: Arc<ClientAuth>,
}

impl PendingAuth {
    /// Authenticates for `route`: with the route's own settings when it has them,
    /// else with the listener's (no listener mechanism: the request passes
    /// unauthenticated). On success the credential headers are removed, the identity
    /// headers set and the identity returned.
    pub fn resolve(
        &self,
        route: &str,
        headers: &mut HeaderMap,
    ) -> Result<Option<ClientIdentity>, Error> {
        Ok(self
            .resolve_with_claims(route, headers)?
            .map(|(identity, _)| identity))
    }

    /// [`PendingAuth::resolve`], with a verified JWT's claims.
    pub fn resolve_with_claims(
        &self,
        route: &str,
        headers: &mut HeaderMap,
    ) -> Result<Option<(ClientIdentity, Option<VerifiedClaims>)>, Error> {
        let auth = match self.auth.routes.get(route) {
            Some(r) => r,
            None if self.auth.is_empty() => return Ok(None),
            None => &*self.auth,
        };
        let (identity, claims) = auth.authenticate_with_claims(headers)?;
        auth.strip_credentials(headers);
        aigw_core::identity_headers::apply(headers, &identity);
        Ok(Some((identity, claims)))
    }
}

/// Puts an authenticated identity on a request: the identity headers limits select on,
/// the [`ClientId`] meters charge, and the identity the exchange records.
fn attach<B>(request: &mut Request<B>, identity: Arc<ClientIdentity>) {
    tracing::debug!(client = %identity.id, kind = identity.kind.as_str(), "client authenticated");
    aigw_core::identity_headers::apply(request.headers_mut(), &identity);
    request
        .extensions_mut()
        .insert(ClientId(identity.id.clone()));
    request.extensions_mut().insert(identity);
}

/// A tower layer that authenticates clients before the gateway sees the request.
///
/// Clones share their settings; [`ClientAuthLayer::set`] replaces them for every
/// service the layer produced. With no settings and no virtual keys, requests pass
/// unauthenticated.
#[derive(Debug, Clone)]
pub struct ClientAuthLayer {
    auth: Arc<ArcSwapOption<ClientAuth>>,
    keys: Arc<ArcSwapOption<KeyRegistry>>,
}

impl ClientAuthLayer {
    /// Wraps settings.
    pub fn new(auth: ClientAuth) -> Self {
        Self {
            auth: Arc::new(ArcSwapOption::from_pointee(auth)),
            keys: Arc::new(ArcSwapOption::empty()),
        }
    }

    /// A layer that lets every request through until settings are installed.
    pub fn disabled() -> Self {
        Self {
            auth: Arc::new(ArcSwapOption::empty()),
            keys: Arc::new(ArcSwapOption::empty()),
        }
    }

    /// Replaces the settings (`None`: no client authentication); requests already
    /// admitted are not affected.
    pub fn set(&self, auth: Option<ClientAuth>) {
        self.auth.store(auth.map(Arc::new));
    }

    /// Accepts gateway-issued virtual keys from `keys` (`None`: no longer). While a
    /// registry is installed every request must authenticate, with a virtual key or
    /// with one of the configured mechanisms.
    pub fn set_virtual_keys(&self, keys: Option<Arc<KeyRegistry>>) {
        self.keys.store(keys);
    }

    /// The installed virtual-key registry.
    pub fn virtual_keys(&self) -> Option<Arc<KeyRegistry>> {
        self.keys.load_full()
    }

    /// Whether client authentication is on.
    pub fn is_enabled(&self) -> bool {
        self.auth.load().is_some() || self.keys.load().is_some()
    }

    /// Authenticates a request whose route (`namespace/name`) is known up front, such as
    /// an MCPRoute's: with the route's own settings when it has them, else with the
    /// listener's. On success the credential headers are removed and the identity
    /// attached, as for LLM requests; on failure the 401 to send back.
    ///
    /// A virtual key is checked against the keys already loaded (the call cannot wait
    /// for the store); its per-minute limits are counted by
    /// [`ClientAuthLayer::count_virtual_key`].
    pub fn admit<B>(
        &self,
        route: &str,
        mut request: Request<B>,
    ) -> Result<Request<B>, Box<Response<Body>>> {
        let auth = self.auth.load_full();
        if let Some(keys) = self.keys.load_full() {
            let extra = auth.as_ref().map_or(&[][..], |a| &a.key_headers[..]);
            if let Some(credential) = presented(request.headers(), extra)
                .filter(|c| aigw_core::keys::token::is_virtual_key(c))
            {
                let grant = keys
                    .authenticate_cached(credential)
                    .and_then(|g| g.allows_route(route).map(|()| g))
                    .map_err(|e| Box::new(refuse(&request, Some(route), &e)))?;
                match &auth {
                    Some(a) => a.strip_credentials(request.headers_mut()),
                    None => ClientAuth::default().strip_credentials(request.headers_mut()),
                }
                attach(&mut request, grant.identity.clone());
                request.extensions_mut().insert(grant);
                return Ok(request);
            }
            if auth.is_none() {
                let error = unauthorized("no credentials: send a virtual key");
                return Err(Box::new(refuse(&request, Some(route), &error)));
            }
        }
        let Some(auth) = auth else {
            return Ok(request);
        };
        let pending = PendingAuth { auth };
        match pending.resolve_with_claims(route, request.headers_mut()) {
            Ok(None) => Ok(request),
            Ok(Some((identity, claims))) => {
                attach(&mut request, Arc::new(identity));
                // An MCPRoute without OAuth of its own reads the gateway-verified
                // token's claims in its authorization rules.
                if let Some(claims) = claims {
                    request.extensions_mut().insert(claims);
                }
                Ok(request)
            }
            Err(error) => Err(Box::new(refuse(&request, Some(route), &error))),
        }
    }
}

impl ClientAuthLayer {
    /// Counts a request [`ClientAuthLayer::admit`] let in with a virtual key against the
    /// key's per-minute limits, as every LLM request of the key is: one request toward
    /// `rpm`, and refused while the key's minute of tokens (`tpm`) is used up — it adds
    /// no tokens itself (an MCP call has none). On refusal, the 429 to send back. Other
    /// requests pass untouched.
    pub async fn count_virtual_key<B: Send>(
        &self,
        route: &str,
        request: Request<B>,
    ) -> Result<Request<B>, Box<Response<Body>>> {
        let grant = request
            .extensions()
            .get::<aigw_core::keys::Grant>()
            .cloned();
        let (Some(grant), Some(keys)) = (grant, self.keys.load_full()) else {
            return Ok(request);
        };
        match keys.admit(&grant).await {
            Ok(()) => Ok(request),
            Err(e) => Err(Box::new(refuse(&request, Some(route), &e))),
        }
    }
}

/// Audits and renders a refused request.
fn refuse<B>(request: &Request<B>, route: Option<&str>, error: &Error) -> Response<Body> {
    tracing::debug!(path = request.uri().path(), %error, "client rejected");
    audit_failure(
        request.headers(),
        request.extensions(),
        request.uri().path(),
        route,
        error,
    );
    reject(request.uri().path(), error)
}

impl<S> Layer<S> for ClientAuthLayer {
    type Service = ClientAuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientAuthService {
            inner,
            auth: self.auth.clone(),
            keys: self.keys.clone(),
        }
    }
}

/// The service produced by [`ClientAuthLayer`].
#[derive(Debug, Clone)]
pub struct ClientAuthService<S> {
    inner: S,
    auth: Arc<ArcSwapOption<ClientAuth>>,
    keys: Arc<ArcSwapOption<KeyRegistry>>,
}

impl<S, B> Service<Request<B>> for ClientAuthService<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let auth = self.auth.load_full();
        if let Some(keys) = self.keys.load_full() {
            let extra = auth.as_ref().map_or(&[][..], |a| &a.key_headers[..]);
            if let Some(credential) = presented(request.headers(), extra)
                .filter(|c| aigw_core::keys::token::is_virtual_key(c))
            {
                // The service that was polled ready serves this request; the clone
                // takes its place for the next one (tower's usual hand-over).
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                let credential = Secret::new(credential);
                return Box::pin(virtual_key(keys, auth, credential, request, inner));
            }
            if auth.is_none() {
                let error = unauthorized("no credentials: send a virtual key");
                return Box::pin(futures::future::ready(Ok(refuse(&request, None, &error))));
            }
        }
        let Some(auth) = auth else {
            aigw_core::identity_headers::strip(request.headers_mut());
            return Box::pin(self.inner.call(request));
        };
        if !auth.routes.is_empty() {
            // Which policy applies depends on the route; the gateway decides.
            request.extensions_mut().insert(PendingAuth { auth });
            return Box::pin(self.inner.call(request));
        }
        match auth.authenticate(request.headers()) {
            Ok(identity) => {
                auth.strip_credentials(request.headers_mut());
                attach(&mut request, Arc::new(identity));
                Box::pin(self.inner.call(request))
            }
            Err(error) => Box::pin(futures::future::ready(Ok(refuse(&request, None, &error)))),
        }
    }
}

/// Serves a request that presented a virtual key: authenticated against the
/// registry, counted against the key's per-minute limits, then passed on with the
/// key's identity and [`aigw_core::keys::Grant`] (the gateway checks its models and
/// routes once the route is known).
async fn virtual_key<S, B>(
    keys: Arc<KeyRegistry>,
    auth: Option<Arc<ClientAuth>>,
    credential: Secret,
    mut request: Request<B>,
    mut inner: S,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    let admitted = match keys.authenticate(credential.expose()).await {
        Ok(grant) => keys.admit(&grant).await.map(|()| grant),
        Err(e) => Err(e),
    };
    let grant = match admitted {
        Ok(grant) => grant,
        Err(error) => return Ok(refuse(&request, None, &error)),
    };
    match auth {
        Some(a) => a.strip_credentials(request.headers_mut()),
        None => ClientAuth::default().strip_credentials(request.headers_mut()),
    }
    attach(&mut request, grant.identity.clone());
    request.extensions_mut().insert(grant);
    inner.call(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn keys() -> ClientAuth {
        ClientAuth::new()
            .api_key(ApiKeyEntry::from_secret(
                "team-a",
                &Secret::new("sk-team-a"),
            ))
            .api_key(ApiKeyEntry::from_secret(
                "team-b",
                &Secret::new("sk-team-b"),
            ))
    }

    #[test]
    fn accepts_keys_in_all_three_sdk_headers() {
        let auth = keys();
        for h in [
            headers(&[("authorization", "Bearer sk-team-b")]),
            headers(&[("x-api-key", "sk-team-b")]),
            headers(&[("api-key", "sk-team-b")]),
        ] {
            assert_eq!(auth.authenticate(&h).unwrap().id.as_ref(), "team-b");
        }
    }

    #[test]
    fn rejects_missing_and_wrong_keys_with_401() {
        let auth = keys();
        let e = auth.authenticate(&HeaderMap::new()).unwrap_err();
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        let e = auth
            .authenticate(&headers(&[("authorization", "Bearer sk-team-c")]))
            .unwrap_err();
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        assert!(!e.to_string().contains("sk-team-c"));
    }

    #[test]
    fn digest_entry_matches_plaintext() {
        let hex_digest = hex::encode(Sha256::digest(b"sk-x"));
        let auth =
            ClientAuth::new().api_key(ApiKeyEntry::from_sha256_hex("x", &hex_digest).unwrap());
        assert!(
            auth.authenticate(&headers(&[("x-api-key", "sk-x")]))
                .is_ok()
        );
        assert!(ApiKeyEntry::from_sha256_hex("x", "abc").is_err());
    }

    #[tokio::test]
    async fn layer_admits_strips_credentials_and_sets_the_client_id() {
        use tower::ServiceExt;
        let layer = ClientAuthLayer::disabled();
        let echo = tower::service_fn(|req: Request<Body>| async move {
            let id = req.extensions().get::<ClientId>().map(|c| c.0.to_string());
            let auth = req.headers().contains_key(header::AUTHORIZATION);
            Ok::<_, std::convert::Infallible>(Response::new(Body::from(format!("{id:?} {auth}"))))
        });
        let svc = layer.layer(echo);
        let req = || {
            Request::post("/v1/chat/completions")
                .header("authorization", "Bearer sk-team-a")
                .body(Body::empty())
                .unwrap()
        };
        let text = |r: Response<Body>| async move {
            let b = http_body_util::BodyExt::collect(r.into_body())
                .await
                .unwrap();
            String::from_utf8(b.to_bytes().to_vec()).unwrap()
        };
        // Disabled: passes through untouched.
        let r = svc.clone().oneshot(req()).await.unwrap();
        assert_eq!(text(r).await, "None true");
        layer.set(Some(keys()));
        let r = svc.clone().oneshot(req()).await.unwrap();
        assert_eq!(text(r).await, "Some(\"team-a\") false");
        let bad = Request::post("/v1/messages")
            .header("x-api-key", "sk-nope")
            .body(Body::empty())
            .unwrap();
        let r = svc.clone().oneshot(bad).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(text(r).await.contains("authentication_error"));
    }

    #[tokio::test]
    async fn virtual_keys_guard_routes_admitted_up_front() {
        use aigw_core::keys::{KeySpec, MemoryKeyStore};
        let keys = Arc::new(
            KeyRegistry::open(Arc::new(MemoryKeyStore::default()))
                .await
                .unwrap(),
        );
        let (info, key) = keys
            .create(KeySpec {
                team: Some("tools".into()),
                routes: vec!["default/mcp".into()],
                ..KeySpec::default()
            })
            .await
            .unwrap();
        let layer = ClientAuthLayer::disabled();
        layer.set_virtual_keys(Some(keys));
        let req = |h: Option<&str>| {
            let mut b = Request::post("/mcp").header("x-aigw-team", "spoofed");
            if let Some(v) = h {
                b = b.header("authorization", v);
            }
            b.body(Body::empty()).unwrap()
        };
        let refused = layer.admit("default/mcp", req(None)).unwrap_err();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let bearer = format!("Bearer {}", key.expose());
        let admitted = layer.admit("default/mcp", req(Some(&bearer))).unwrap();
        assert!(!admitted.headers().contains_key(header::AUTHORIZATION));
        assert_eq!(admitted.headers()["x-aigw-team"], "tools");
        let id = admitted.extensions().get::<Arc<ClientIdentity>>().unwrap();
        assert_eq!(id.id.as_ref(), info.id);
        let other = layer
            .admit("default/other", req(Some(&bearer)))
            .unwrap_err();
        assert_eq!(other.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn rejection_uses_the_called_apis_error_shape() {
        let e = unauthorized("nope");
        let r = reject("/v1/messages", &e);
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
    }

    const JWKS: &[u8] = include_bytes!("../tests/fixtures/jwt/jwks.json");
    const RS256: &[u8] = include_bytes!("../tests/fixtures/jwt/rs256.pem");
    const ES256: &[u8] = include_bytes!("../tests/fixtures/jwt/es256.pem");

    fn token(alg: Algorithm, kid: &str, claims: serde_json::Value) -> String {
        let key = match alg {
            Algorithm::RS256 => jsonwebtoken::EncodingKey::from_rsa_pem(RS256).unwrap(),
            _ => jsonwebtoken::EncodingKey::from_ec_pem(ES256).unwrap(),
        };
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn jwt_auth() -> ClientAuth {
        ClientAuth::new().jwt(
            JwtSettings::from_jwks_json(JWKS)
                .unwrap()
                .issuers(["https://issuer.example"])
                .audiences(["aigw"]),
        )
    }

    #[test]
    fn jwt_rs256_and_es256_accepted_with_subject_as_identity() {
        let auth = jwt_auth();
        for (alg, kid) in [(Algorithm::RS256, "rsa-1"), (Algorithm::ES256, "ec-1")] {
            let t = token(
                alg,
                kid,
                serde_json::json!({"sub":"alice","iss":"https://issuer.example","aud":"aigw","exp":now()+60}),
            );
            let h = headers(&[("authorization", &format!("Bearer {t}"))]);
            assert_eq!(
                auth.authenticate(&h).unwrap().id.as_ref(),
                "alice",
                "{alg:?}"
            );
        }
    }

    #[test]
    fn jwt_wrong_issuer_audience_expiry_or_key_rejected() {
        let auth = jwt_auth();
        let cases = [
            (
                "rsa-1",
                serde_json::json!({"sub":"a","iss":"https://evil","aud":"aigw","exp":now()+60}),
                "issuer",
            ),
            (
                "rsa-1",
                serde_json::json!({"sub":"a","iss":"https://issuer.example","aud":"other","exp":now()+60}),
                "audience",
            ),
            (
                "rsa-1",
                serde_json::json!({"sub":"a","iss":"https://issuer.example","aud":"aigw","exp":now()-600}),
                "expired",
            ),
            (
                "nope",
                serde_json::json!({"sub":"a","iss":"https://issuer.example","aud":"aigw","exp":now()+60}),
                "no key",
            ),
        ];
        for (kid, claims, why) in cases {
            let t = token(Algorithm::RS256, kid, claims);
            let e = auth
                .authenticate(&headers(&[("authorization", &format!("Bearer {t}"))]))
                .unwrap_err();
            assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
            assert!(e.to_string().contains(why), "{e} should mention {why}");
        }
        // A token signed by the EC key but claiming the RSA key id fails verification.
        let forged = token(
            Algorithm::ES256,
            "rsa-1",
            serde_json::json!({"sub":"a","iss":"https://issuer.example","aud":"aigw","exp":now()+60}),
        );
        assert!(
            auth.authenticate(&headers(&[("authorization", &format!("Bearer {forged}"))]))
                .is_err()
        );
    }
}
