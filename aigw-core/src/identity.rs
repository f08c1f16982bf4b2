//! Who a request is from, as every packaging hands it to the core.
//!
//! An authentication step in front of the gateway (static API keys, JWTs, gateway-issued
//! virtual keys) resolves the client to one [`ClientIdentity`]. Limits, budgets, metric
//! labels and the access log read it from the exchange ([`crate::exchange::Exchange::set_identity`]),
//! so every limit can be per key or per team whatever the credential was.

use crate::budget::BudgetSpec;
use std::sync::Arc;

/// How the client proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    /// A static API key from a file or a Secret (its configured name is the id).
    StaticKey,
    /// A gateway-issued virtual key (its key id is the id, never the key itself).
    VirtualKey,
    /// A verified JWT (its subject is the id).
    Jwt,
}

impl IdentityKind {
    /// The kind's name in logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::StaticKey => "static_key",
            Self::VirtualKey => "virtual_key",
            Self::Jwt => "jwt",
        }
    }
}

/// The authenticated client of one request. Holds no secret: only identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// Stable identifier: the static key's name, the virtual key's id, the JWT subject.
    pub id: Arc<str>,
    /// How the client authenticated.
    pub kind: IdentityKind,
    /// The team the client belongs to, when known (a virtual key's metadata, a claim).
    pub team: Option<Arc<str>>,
    /// The owner recorded with the credential, when known.
    pub owner: Option<Arc<str>>,
    /// A money budget attached to the credential itself (a virtual key's budget).
    pub budget: Option<BudgetSpec>,
}

impl ClientIdentity {
    /// An identity with only an id and a kind.
    pub fn new(id: impl Into<Arc<str>>, kind: IdentityKind) -> Self {
        Self {
            id: id.into(),
            kind,
            team: None,
            owner: None,
            budget: None,
        }
    }
}

/// The claims of a JWT the gateway verified (the gateway-level client authentication:
/// a Gateway SecurityPolicy's `jwt`, `aigw run --jwt-jwks`), carried as a request
/// extension so the MCP authorization rules of a route without OAuth of its own can
/// read them (`request.auth.jwt.claims`, rule `source.jwt`). Only code of the process
/// sets extensions: a client cannot forge it.
#[derive(Debug, Clone)]
pub struct VerifiedClaims(pub Arc<serde_json::Map<String, serde_json::Value>>);

impl VerifiedClaims {
    /// The `sub` claim, or `""`.
    pub fn subject(&self) -> &str {
        self.0
            .get("sub")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
    }
}
