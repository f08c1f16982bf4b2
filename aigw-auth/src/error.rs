//! Errors of credential providers.
//!
//! Messages name the policy and what failed, never secret material: upstream error bodies
//! are reduced to their error code and a truncated description before they get here.

use aigw_core::Error;

/// Everything that can go wrong while obtaining or applying upstream credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A credential source (file, environment variable, profile) could not be read.
    #[error("credentials for policy {policy} unavailable: {message}")]
    Source {
        /// The BackendSecurityPolicy (`namespace/name`).
        policy: String,
        /// What failed.
        message: String,
    },
    /// A token endpoint (STS, Entra ID, Google OAuth, metadata server) failed or refused.
    #[error("credentials for policy {policy} unavailable: {endpoint} failed: {message}")]
    TokenEndpoint {
        /// The BackendSecurityPolicy (`namespace/name`).
        policy: String,
        /// Which endpoint (URL without query).
        endpoint: String,
        /// HTTP status, if a response arrived.
        status: Option<u16>,
        /// The error code and description the endpoint returned, or the transport error.
        message: String,
    },
    /// The provider's configuration cannot work.
    #[error("invalid credential configuration for policy {policy}: {message}")]
    Config {
        /// The BackendSecurityPolicy (`namespace/name`).
        policy: String,
        /// What is wrong.
        message: String,
    },
    /// Signing or writing credentials onto the request failed.
    #[error("cannot apply credentials of policy {policy}: {message}")]
    Apply {
        /// The BackendSecurityPolicy (`namespace/name`).
        policy: String,
        /// What failed.
        message: String,
    },
    /// A per-request credential override was required but missing or incomplete.
    #[error("missing upstream credentials: {message}")]
    MissingOverride {
        /// Which header is missing.
        message: String,
    },
    /// No valid credential exists and refreshing it failed.
    #[error("credentials for policy {policy} unavailable: {message}")]
    Expired {
        /// The BackendSecurityPolicy (`namespace/name`).
        policy: String,
        /// The last refresh failure.
        message: String,
    },
}

impl AuthError {
    pub(crate) fn source(policy: &str, message: impl Into<String>) -> Self {
        Self::Source {
            policy: policy.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn config(policy: &str, message: impl Into<String>) -> Self {
        Self::Config {
            policy: policy.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn apply(policy: &str, message: impl Into<String>) -> Self {
        Self::Apply {
            policy: policy.to_owned(),
            message: message.into(),
        }
    }
}

impl From<AuthError> for Error {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::MissingOverride { message } => Error::Unauthorized { message },
            AuthError::Config { .. } | AuthError::Apply { .. } => Error::internal(e.to_string()),
            AuthError::Source { ref policy, .. }
            | AuthError::TokenEndpoint { ref policy, .. }
            | AuthError::Expired { ref policy, .. } => {
                let policy = policy.clone();
                let full = e.to_string();
                // The core error prefixes "credentials for policy X unavailable: " itself.
                let prefix = format!("credentials for policy {policy} unavailable: ");
                let message = full.strip_prefix(&prefix).unwrap_or(&full).to_owned();
                Error::Credential { policy, message }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn token_endpoint_failure_is_503_naming_policy() {
        let e: Error = AuthError::TokenEndpoint {
            policy: "ns/p".into(),
            endpoint: "https://sts.example/".into(),
            status: Some(500),
            message: "InternalFailure".into(),
        }
        .into();
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let text = e.to_string();
        assert_eq!(
            text,
            "credentials for policy ns/p unavailable: https://sts.example/ failed: InternalFailure"
        );
    }

    #[test]
    fn missing_override_is_401() {
        let e: Error = AuthError::MissingOverride {
            message: "x".into(),
        }
        .into();
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
    }
}
