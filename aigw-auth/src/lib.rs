//! # aigw-auth
//!
//! [`CredentialProvider`](aigw_core::CredentialProvider) implementations for every
//! BackendSecurityPolicy type (API keys, AWS SigV4 with STS, Azure Entra ID, GCP service
//! accounts and workload identity) and one rotation wrapper that makes all of them
//! refresh ahead of expiry, single-flight and retry safely.
//!
//! Every provider implements "fetch once" ([`credential`](aigw_core::CredentialProvider::credential))
//! and "write onto the final request" ([`apply`](aigw_core::CredentialProvider::apply)).
//! [`Rotating`] adds caching and refresh to any of them; [`CredentialOverride`] adds
//! per-request credentials from `x-aigw-*` headers. Secrets only ever live in
//! [`aigw_core::Secret`].
//!
//! | policy type | provider | on the request |
//! |---|---|---|
//! | `APIKey` | [`ApiKeyProvider::bearer`] | `Authorization: Bearer` |
//! | `AzureAPIKey` | [`ApiKeyProvider::azure`] | `api-key` |
//! | `AnthropicAPIKey` | [`ApiKeyProvider::anthropic`] | `x-api-key` |
//! | `AWSCredentials` | [`aws::SigV4Provider`] | SigV4 (`bedrock`) over the final body |
//! | `AzureCredentials` | [`azure::AzureProvider`] | `Authorization: Bearer` (Entra ID) |
//! | `GCPCredentials` | [`gcp::GcpProvider`] | `Authorization: Bearer` + `/v1/projects/{p}/locations/{r}` |
//!
//! [`provider_for`] builds the right stack from a resolved policy of `aigw-core`'s config.

mod api_key;
pub mod aws;
pub mod azure;
mod clock;
mod credential_override;
mod error;
pub mod gcp;
mod oidc;
mod policy;
mod rotation;
mod source;
mod transport;

pub use api_key::{ApiKeyHeader, ApiKeyProvider};
pub use clock::{Clock, ManualClock, SystemClock};
pub use credential_override::{CredentialOverride, OVERRIDE_HEADERS, OverrideKind};
pub use error::AuthError;
pub use oidc::OidcClientCredentials;
pub use policy::{AuthOptions, application_credentials, provider_for, resolver};
pub use rotation::{RefreshObserver, RefreshOutcome, Rotating, RotationConfig, RotationStats};
pub use source::{KeySource, SecretReader};
pub use transport::{DEFAULT_TIMEOUT, HttpClient};
