//! The [`CredentialProvider`] trait: upstream credentials for a backend.

use crate::error::Result;
use crate::secret::Secret;
use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Method};
use std::fmt;
use std::time::SystemTime;

/// Secret material obtained from a credential source.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialMaterial {
    /// A bearer token or API key.
    Token(Secret),
    /// AWS credentials for SigV4 signing.
    Aws {
        /// The access key id (not secret by itself, but kept out of logs anyway).
        access_key_id: Secret,
        /// The secret access key.
        secret_access_key: Secret,
        /// The session token of temporary credentials.
        session_token: Option<Secret>,
    },
    /// Nothing to apply (e.g. a per-request override with no configured fallback).
    None,
}

impl fmt::Debug for CredentialMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token([REDACTED])"),
            Self::Aws { session_token, .. } => write!(
                f,
                "Aws([REDACTED], session_token: {})",
                if session_token.is_some() { "yes" } else { "no" }
            ),
            Self::None => f.write_str("None"),
        }
    }
}

/// A credential with its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The secret material.
    pub material: CredentialMaterial,
    /// When it stops being valid; `None` for long-lived keys.
    pub expires_at: Option<SystemTime>,
}

impl Credential {
    /// A credential that never expires.
    pub const fn long_lived(material: CredentialMaterial) -> Self {
        Self {
            material,
            expires_at: None,
        }
    }
}

/// The final request as it will leave the gateway, after translation and mutations.
///
/// Providers edit headers and path (GCP prepends its project path) and may read the
/// body (SigV4 hashes it). `authority` is the upstream host actually dialled, never the
/// client's `Host`/`:authority`.
#[derive(Debug, Clone)]
pub struct OutgoingRequest {
    /// HTTP method.
    pub method: Method,
    /// `https` or `http`.
    pub scheme: String,
    /// The upstream `host[:port]` the request is sent to.
    pub authority: String,
    /// Path and query, already percent-encoded as it goes on the wire.
    pub path: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// The final body.
    pub body: Bytes,
}

/// Supplies and applies upstream credentials for one BackendSecurityPolicy.
///
/// Two steps, kept apart on purpose:
/// * [`credential`](CredentialProvider::credential) is async and may do I/O (a token
///   endpoint, STS). Plain providers fetch every time they are asked; the shared
///   rotation wrapper in `aigw-auth` caches, refreshes ahead of expiry and
///   single-flights, and implements this same trait, so they compose like tower layers.
/// * [`apply`](CredentialProvider::apply) is sync and runs on the *final* request, after
///   translation and mutations, so SigV4 signs exactly the bytes that are sent.
///
/// The trait is object safe: adapters hold `Arc<dyn CredentialProvider>`.
///
/// ```
/// use aigw_core::{Credential, CredentialMaterial, CredentialProvider, OutgoingRequest, Result, Secret};
/// use http::HeaderValue;
///
/// #[derive(Debug)]
/// struct StaticBearer(Secret);
///
/// #[async_trait::async_trait]
/// impl CredentialProvider for StaticBearer {
///     fn name(&self) -> &str { "default/static" }
///     async fn credential(&self) -> Result<Credential> {
///         Ok(Credential::long_lived(CredentialMaterial::Token(self.0.clone())))
///     }
///     fn apply(&self, c: &Credential, req: &mut OutgoingRequest) -> Result<()> {
///         if let CredentialMaterial::Token(t) = &c.material {
///             let mut v = HeaderValue::try_from(format!("Bearer {}", t.expose()))
///                 .map_err(|_| aigw_core::Error::internal("token is not a valid header value"))?;
///             v.set_sensitive(true);
///             req.headers.insert(http::header::AUTHORIZATION, v);
///         }
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait CredentialProvider: Send + Sync + fmt::Debug {
    /// The policy this provider serves (`namespace/name`), for errors and metrics.
    fn name(&self) -> &str;

    /// Returns a currently valid credential.
    async fn credential(&self) -> Result<Credential>;

    /// Writes the credential onto the final outgoing request.
    fn apply(&self, credential: &Credential, request: &mut OutgoingRequest) -> Result<()>;
}
