//! Virtual keys checked by the processor itself: Envoy hands it the request headers,
//! so a request without a valid key (or over its key's rate) gets the 401 (429) as an
//! immediate response in the client API's error shape, before any routing.
//!
//! On success the credential headers are removed (the upstream gets the backend's own
//! credentials, never the client's key) and the identity headers set in Envoy's request,
//! where Envoy's own rate-limit filter and routes can match them, as the exchange's
//! limits do.

use crate::wire::Mutation;
use aigw_core::Error;
use aigw_core::identity_headers;
use aigw_core::keys::{Grant, KeyRegistry, token};
use http::HeaderMap;

/// The credential headers a client key arrives in (those the SDKs use).
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "x-api-key", "api-key"];

/// Authenticates the request's virtual key and counts it against the key's
/// per-minute limits. On success `headers` (what the exchange will see) lose the
/// credential and gain the identity headers, and the returned mutation does the same
/// to Envoy's copy.
pub(super) async fn check(
    keys: &KeyRegistry,
    headers: &mut HeaderMap,
    path: &str,
) -> Result<(Grant, Mutation), Error> {
    let result = match token::presented(headers, &[]) {
        Some(k) if token::is_virtual_key(k) => match keys.authenticate(k).await {
            Ok(grant) => keys.admit(&grant).await.map(|()| grant),
            Err(e) => Err(e),
        },
        _ => Err(Error::Unauthorized {
            message: "no credentials: send a virtual key".into(),
        }),
    };
    let grant = match result {
        Ok(g) => g,
        Err(e) => {
            audit(headers, path, &e);
            return Err(e);
        }
    };
    let mut m = Mutation::default();
    for h in CREDENTIAL_HEADERS {
        headers.remove(h);
        m.remove(h);
    }
    identity_headers::apply(headers, &grant.identity);
    for h in &identity_headers::ALL {
        match headers.get(h) {
            Some(v) => m.set(h.as_str(), v.as_bytes()),
            None => m.remove(h.as_str()),
        };
    }
    Ok((grant, m))
}

fn audit(headers: &HeaderMap, path: &str, e: &Error) {
    if !aigw_core::audit::enabled() {
        return;
    }
    let scheme = if headers.contains_key(http::header::AUTHORIZATION) {
        "bearer"
    } else if headers.contains_key("x-api-key") {
        "x-api-key"
    } else if headers.contains_key("api-key") {
        "api-key"
    } else {
        "none"
    };
    let reason = match e {
        Error::Unauthorized { message } => message.clone(),
        other => other.to_string(),
    };
    aigw_core::audit::emit(&aigw_core::audit::AuditEvent::AuthFailure {
        peer: None,
        claimed: None,
        scheme,
        path,
        route: None,
        reason: &reason,
    });
}
