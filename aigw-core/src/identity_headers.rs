//! The client identity as request headers, so that every limit can select on it.
//!
//! Rate-limit rules (`clientSelectors[].headers` of a BackendTrafficPolicy) and
//! QuotaPolicy bucket rules select requests by header, as upstream users already do
//! with `x-user-id`-style headers. Once a client has authenticated, the adapter calls
//! [`apply`]: it removes any copy of these headers the client sent (a client must not
//! choose whose budget it spends) and sets them from the verified identity, before any
//! limit runs. A rule then limits per key with
//! `{name: x-aigw-client-id, type: Distinct}` or per team with `x-aigw-team`.
//!
//! The headers never travel upstream: the exchange strips them from every attempt.

use crate::identity::ClientIdentity;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The authenticated client's id (static key name, virtual key id, JWT subject).
pub const CLIENT_ID: HeaderName = HeaderName::from_static("x-aigw-client-id");
/// The authenticated client's team, when its credential names one.
pub const TEAM: HeaderName = HeaderName::from_static("x-aigw-team");
/// How the client authenticated (`static_key`, `virtual_key`, `jwt`).
pub const CLIENT_KIND: HeaderName = HeaderName::from_static("x-aigw-client-kind");

/// Every header this module sets.
pub const ALL: [HeaderName; 3] = [CLIENT_ID, TEAM, CLIENT_KIND];

static ALL_NAMES: [HeaderName; 3] = ALL;

static ALL_SET: std::sync::LazyLock<crate::strip_headers::HeaderSet> =
    std::sync::LazyLock::new(|| crate::strip_headers::HeaderSet::new(&ALL_NAMES));

/// Removes client-sent copies of the identity headers.
pub fn strip(headers: &mut HeaderMap) {
    crate::strip_headers::remove_all(headers, &ALL_SET);
}

/// Replaces the identity headers with the verified identity's (a value that is not a
/// valid header value is left out rather than mangled).
pub fn apply(headers: &mut HeaderMap, identity: &ClientIdentity) {
    strip(headers);
    if let Ok(v) = HeaderValue::from_str(&identity.id) {
        headers.insert(CLIENT_ID, v);
    }
    if let Some(team) = identity.team.as_deref()
        && let Ok(v) = HeaderValue::from_str(team)
    {
        headers.insert(TEAM, v);
    }
    headers.insert(
        CLIENT_KIND,
        HeaderValue::from_static(identity.kind.as_str()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentityKind;
    use std::sync::Arc;

    #[test]
    fn client_copies_are_replaced_by_the_verified_identity() {
        let mut h = HeaderMap::new();
        h.insert(CLIENT_ID, HeaderValue::from_static("someone-else"));
        h.insert(TEAM, HeaderValue::from_static("other-team"));
        let mut id = ClientIdentity::new("k1", IdentityKind::VirtualKey);
        id.team = Some(Arc::from("search"));
        apply(&mut h, &id);
        assert_eq!(h[CLIENT_ID], "k1");
        assert_eq!(h[TEAM], "search");
        assert_eq!(h[CLIENT_KIND], "virtual_key");
        let id = ClientIdentity::new("alice", IdentityKind::Jwt);
        apply(&mut h, &id);
        assert_eq!(h[CLIENT_ID], "alice");
        assert!(
            !h.contains_key(TEAM),
            "no team: the old value must not stay"
        );
    }
}
