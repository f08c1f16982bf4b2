//! The framework-free part of the admin HTTP API (feature `keys`), over `http` types,
//! so every packaging serves the same API on its admin listener:
//!
//! * `POST /admin/keys` — issues a virtual key; the reply holds the key, once;
//! * `GET /admin/keys`, `GET /admin/keys/{id}` — keys without their secrets;
//! * `POST /admin/keys/{id}/rotate` — a new secret for the same key (shown once);
//! * `DELETE /admin/keys/{id}` — revokes (every replica refuses it within a second);
//! * `GET /admin/usage?…` — spend and tokens per group ([`crate::budget::UsageQuery`]);
//! * `GET /admin/budgets` — every budget's limit, spend and remainder.
//!
//! Every call presents the admin token as `Authorization: Bearer <token>`, compared in
//! constant time: 401 without it, 403 when the gateway has no token configured. Every
//! change goes to the audit log. An adapter hands each admin request to
//! [`AdminApi::handle`] and sends back the response it returns.

use crate::audit::{self, AuditEvent};
use crate::budget::{Spending, UsageQuery};
use crate::keys::{KeyInfo, KeyRegistry, KeySpec};
use crate::{Error, Secret};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;

/// The admin token, held as its SHA-256 digest so comparisons take the same time
/// whatever the presented token's length.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken([REDACTED])")
    }
}

impl AdminToken {
    /// A token; `None` when it is empty (an empty token would admit anyone).
    pub fn new(token: &Secret) -> Option<Self> {
        let t = token.expose().trim();
        (!t.is_empty()).then(|| Self {
            digest: Sha256::digest(t.as_bytes()).into(),
        })
    }

    /// Whether `headers` carry this token as a bearer credential.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
        else {
            return false;
        };
        let d: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        crate::secret::constant_time_eq(&d, &self.digest)
    }

    /// The 401 for a request without the token (audited).
    pub fn refusal(headers: &HeaderMap, path: &str, peer: Option<IpAddr>) -> Response<Bytes> {
        audit::emit(&AuditEvent::AuthFailure {
            peer,
            claimed: None,
            scheme: if headers.contains_key(header::AUTHORIZATION) {
                "bearer"
            } else {
                "none"
            },
            path,
            route: None,
            reason: "admin token missing or wrong",
        });
        let mut r = error(StatusCode::UNAUTHORIZED, "admin token missing or wrong");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"aigw-admin\""),
        );
        r
    }
}

/// One admin request, as the adapter received it.
#[derive(Debug, Clone, Copy)]
pub struct AdminRequest<'a> {
    /// The method.
    pub method: &'a Method,
    /// The path, without the query.
    pub path: &'a str,
    /// The query string, when any.
    pub query: Option<&'a str>,
    /// The request headers (the token).
    pub headers: &'a HeaderMap,
    /// The client's address, for the audit log.
    pub peer: Option<IpAddr>,
    /// The body.
    pub body: &'a [u8],
}

/// The keys and spend admin API, served from a key registry and a spend engine.
#[derive(Debug, Clone, Default)]
pub struct AdminApi {
    token: Option<AdminToken>,
    keys: Option<Arc<KeyRegistry>>,
    spending: Option<Arc<Spending>>,
}

impl AdminApi {
    /// An API guarded by `token` (`None`: every call is refused with a 403).
    pub fn new(token: Option<AdminToken>) -> Self {
        Self {
            token,
            keys: None,
            spending: None,
        }
    }

    /// Serves the virtual keys of `registry`.
    #[must_use]
    pub fn keys(mut self, registry: Arc<KeyRegistry>) -> Self {
        self.keys = Some(registry);
        self
    }

    /// Serves the usage and budgets of `spending`.
    #[must_use]
    pub fn spending(mut self, spending: Arc<Spending>) -> Self {
        self.spending = Some(spending);
        self
    }

    /// The token guarding the API.
    pub const fn token(&self) -> Option<&AdminToken> {
        self.token.as_ref()
    }

    /// Whether `path` is one of this API's.
    pub fn serves(path: &str) -> bool {
        path == "/admin/keys"
            || path.starts_with("/admin/keys/")
            || path == "/admin/usage"
            || path == "/admin/budgets"
    }

    /// Answers the request of `parts` with `body`, from `peer`; `None` when its path is
    /// not this API's.
    pub async fn handle_parts(
        &self,
        parts: &http::request::Parts,
        peer: Option<IpAddr>,
        body: &[u8],
    ) -> Option<Response<Bytes>> {
        let req = AdminRequest {
            method: &parts.method,
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &parts.headers,
            peer,
            body,
        };
        self.handle(&req).await
    }

    /// Answers an admin request; `None` when its path is not this API's.
    pub async fn handle(&self, req: &AdminRequest<'_>) -> Option<Response<Bytes>> {
        if !Self::serves(req.path) {
            return None;
        }
        let Some(token) = &self.token else {
            return Some(error(
                StatusCode::FORBIDDEN,
                "the admin API is disabled: start the gateway with --admin-token",
            ));
        };
        if !token.admits(req.headers) {
            return Some(AdminToken::refusal(req.headers, req.path, req.peer));
        }
        Some(self.route(req).await)
    }

    async fn route(&self, req: &AdminRequest<'_>) -> Response<Bytes> {
        let segments: Vec<&str> = req.path.trim_start_matches("/admin/").split('/').collect();
        match (req.method, segments.as_slice()) {
            (&Method::GET, ["usage"]) => self.usage(req.query).await,
            (&Method::GET, ["budgets"]) => self.budgets().await,
            (_, ["keys", ..]) => match &self.keys {
                Some(keys) => keys_call(keys, req, &segments[1..]).await,
                None => error(
                    StatusCode::NOT_FOUND,
                    "virtual keys are not enabled on this gateway (start it with --virtual-keys)",
                ),
            },
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        }
    }

    async fn usage(&self, query: Option<&str>) -> Response<Bytes> {
        let Some(spending) = &self.spending else {
            return no_spending();
        };
        let params: Vec<(String, String)> = query
            .map(|q| {
                url_pairs(q)
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let now = crate::pricing::unix_now();
        let q = match UsageQuery::parse(params.iter().map(|(k, v)| (k.as_str(), v.as_str())), now) {
            Ok(q) => q,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e),
        };
        match spending.usage(&q).await {
            Ok(report) => json_response(StatusCode::OK, &json!(report)),
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        }
    }

    async fn budgets(&self) -> Response<Bytes> {
        let Some(spending) = &self.spending else {
            return no_spending();
        };
        match spending.budget_states().await {
            Ok(b) => json_response(StatusCode::OK, &json!({ "budgets": b })),
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        }
    }
}

/// `/admin/keys[/{id}[/rotate]]`, `rest` being what follows `keys`.
async fn keys_call(keys: &KeyRegistry, req: &AdminRequest<'_>, rest: &[&str]) -> Response<Bytes> {
    match (req.method, rest) {
        (&Method::GET, []) => {
            fresh(keys).await;
            let list: Vec<Value> = keys.list().iter().map(view).collect();
            json_response(StatusCode::OK, &json!({ "keys": list }))
        }
        (&Method::POST, []) => {
            let spec: KeySpec = if req.body.iter().all(u8::is_ascii_whitespace) {
                KeySpec::default()
            } else {
                match serde_json::from_slice(req.body) {
                    Ok(s) => s,
                    Err(e) => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            &format!("invalid key request: {e}"),
                        );
                    }
                }
            };
            match keys.create(spec).await {
                Ok((info, key)) => {
                    audited(req.peer, "key.create", &info.id);
                    with_secret(&info, &key, StatusCode::CREATED)
                }
                Err(e) => from_core(&e),
            }
        }
        (&Method::GET, [id]) => {
            fresh(keys).await;
            match keys.get(id) {
                Some(info) => json_response(StatusCode::OK, &view(&info)),
                None => error(StatusCode::NOT_FOUND, "no such key"),
            }
        }
        (&Method::DELETE, [id]) => match keys.revoke(id).await {
            Ok(info) => {
                audited(req.peer, "key.revoke", &info.id);
                json_response(StatusCode::OK, &view(&info))
            }
            Err(e) => from_core(&e),
        },
        (&Method::POST, [id, "rotate"]) => match keys.rotate(id).await {
            Ok((info, key)) => {
                audited(req.peer, "key.rotate", &info.id);
                with_secret(&info, &key, StatusCode::OK)
            }
            Err(e) => from_core(&e),
        },
        (_, [] | [_] | [_, "rotate"]) => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => error(StatusCode::NOT_FOUND, "no such admin resource"),
    }
}

/// `key=value` pairs of a query string, percent-decoded (`+` as a space).
fn url_pairs(
    q: &str,
) -> impl Iterator<Item = (std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> {
    q.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (decode(k), decode(v))
    })
}

fn decode(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (b == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (b, escaped) {
            (_, Some(decoded)) => {
                out.push(decoded);
                i += 2;
            }
            (b'+', None) => out.push(b' '),
            (b, None) => out.push(b),
        }
        i += 1;
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Brings the registry up to date with the store, so a key created or revoked on
/// another replica a moment ago shows as it is.
async fn fresh(keys: &KeyRegistry) {
    if let Err(e) = keys.refresh().await {
        tracing::warn!(error = %e, "virtual key store unreachable: listing the keys last loaded");
    }
}

fn audited(peer: Option<IpAddr>, action: &str, target: &str) {
    let actor = peer.map_or_else(
        || "admin-token".to_owned(),
        |ip| format!("admin-token@{ip}"),
    );
    audit::emit(&AuditEvent::Admin {
        action,
        actor: &actor,
        target,
    });
    tracing::info!(action, key = target, "admin action");
}

/// A key as the API shows it: its record and its status, never its secret.
pub fn view(info: &KeyInfo) -> Value {
    let mut v = serde_json::to_value(info).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert(
            "status".into(),
            Value::from(info.status(crate::pricing::unix_now())),
        );
    }
    v
}

/// A reply carrying a key: the only place a key is ever written.
fn with_secret(info: &KeyInfo, key: &Secret, status: StatusCode) -> Response<Bytes> {
    let mut v = view(info);
    if let Value::Object(m) = &mut v {
        m.insert("key".into(), Value::from(key.expose()));
    }
    let mut r = json_response(status, &v);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn json_response(status: StatusCode, body: &Value) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `{"error":{"message":…}}` with `status`.
pub fn error(status: StatusCode, message: &str) -> Response<Bytes> {
    json_response(status, &json!({"error": {"message": message}}))
}

fn from_core(e: &Error) -> Response<Bytes> {
    let status = match e {
        Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, &e.to_string())
}

fn no_spending() -> Response<Bytes> {
    error(
        StatusCode::NOT_FOUND,
        "spend is not recorded on this gateway (start it with --pricing-file)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_compared_whole_and_never_printed() {
        let t = AdminToken::new(&Secret::new("s3cret-admin".to_owned())).unwrap();
        let mut h = HeaderMap::new();
        assert!(!t.admits(&h));
        h.insert(
            header::AUTHORIZATION,
            "Bearer s3cret-admin".parse().unwrap(),
        );
        assert!(t.admits(&h));
        h.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(!t.admits(&h));
        assert!(!format!("{t:?}").contains("s3cret"));
        assert!(AdminToken::new(&Secret::new(" ".to_owned())).is_none());
    }

    #[test]
    fn queries_are_percent_decoded() {
        let pairs: Vec<(String, String)> =
            url_pairs("from=2026-12-06T00%3A00%3A00Z&group_by=key,model&x=a+b&bad=%zz")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        assert_eq!(pairs[0].1, "2026-12-06T00:00:00Z");
        assert_eq!(pairs[1].1, "key,model");
        assert_eq!(pairs[2].1, "a b");
        assert_eq!(pairs[3].1, "%zz");
    }

    #[tokio::test]
    async fn calls_without_the_token_or_the_feature_are_refused() {
        let api = AdminApi::new(AdminToken::new(&Secret::new("t".to_owned())));
        let mut headers = HeaderMap::new();
        fn req<'a>(h: &'a HeaderMap, path: &'a str) -> AdminRequest<'a> {
            AdminRequest {
                method: &Method::GET,
                path,
                query: None,
                headers: h,
                peer: None,
                body: b"",
            }
        }
        // Not ours.
        assert!(api.handle(&req(&headers, "/metrics")).await.is_none());
        let r = api.handle(&req(&headers, "/admin/keys")).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        headers.insert(header::AUTHORIZATION, "Bearer t".parse().unwrap());
        let r = api.handle(&req(&headers, "/admin/keys")).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = api.handle(&req(&headers, "/admin/usage")).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let disabled = AdminApi::new(None);
        let r = disabled
            .handle(&req(&headers, "/admin/budgets"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
}
